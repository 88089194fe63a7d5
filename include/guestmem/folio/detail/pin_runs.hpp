// guestmem/folio/detail/pin_runs.hpp — unexpected references (pins from GUP,
// an IOMMU, I/O in flight) as per-page counts stored sparsely: maximal runs
// [begin, end) -> count > 0, coalesced, in a Boost.Intrusive rbtree whose
// nodes come from the embedder's allocator. An IOMMU pinning 1 GiB costs
// one run, not 262144 counters. Every change is all or nothing: the nodes
// it needs are taken before anything is touched.
#pragma once

#include <boost/intrusive/set.hpp>

#include <cinttypes>
#include <cstdint>
#include <iterator>
#include <memory>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>

namespace guestmem::detail {

struct pin_run : boost::intrusive::set_base_hook<> {
    page_index begin = 0;
    page_index end = 0;
    std::uint32_t count = 0;
    pin_run* next_spare = nullptr;
};

struct pin_run_key {
    using type = page_index;
    page_index operator()(const pin_run& r) const noexcept { return r.begin; }
};

template <class NodeAllocator>
class pin_runs {
    using node_alloc = typename std::allocator_traits<NodeAllocator>::template rebind_alloc<pin_run>;
    using node_traits = std::allocator_traits<node_alloc>;
    using set_type = boost::intrusive::set<pin_run, boost::intrusive::key_of_value<pin_run_key>>;
    using iterator = typename set_type::iterator;

public:
    explicit pin_runs(const NodeAllocator& a) noexcept : alloc_(a) {}
    pin_runs(const pin_runs&) = delete;
    pin_runs& operator=(const pin_runs&) = delete;
    ~pin_runs() { set_.clear_and_dispose([this](pin_run* n) { put(n); }); }

    [[nodiscard]] std::uint64_t pinned_pages() const noexcept { return pinned_pages_; }
    [[nodiscard]] std::uint64_t runs() const noexcept { return set_.size(); }

    [[nodiscard]] std::uint32_t count(page_index p) const noexcept {
        auto it = at_or_after(set_, p);
        return it != set_.end() && it->begin <= p ? it->count : 0;
    }

    /// First pinned page in r, or no_page.
    [[nodiscard, gnu::always_inline]] page_index first_pinned(page_range r) const noexcept {
        if (set_.empty()) return no_page;  // nothing pinned anywhere: the usual case, tested inline
        return first_pinned_in(r);
    }

private:
    [[nodiscard, gnu::noinline]] page_index first_pinned_in(page_range r) const noexcept {
        auto it = at_or_after(set_, r.begin);
        if (it != set_.end() && it->begin < r.end) return it->begin > r.begin ? it->begin : r.begin;
        return no_page;
    }

public:
    /// +1 on every page of r.
    [[nodiscard]] status pin(page_range r) noexcept {
        std::size_t need = 0;
        page_index cur = r.begin;
        auto it = at_or_after(set_, r.begin);
        if (it != set_.end() && it->begin < r.begin) ++need;
        for (; it != set_.end() && it->begin < r.end; ++it) {
            if (it->count == UINT32_MAX)
                return error::make(errc::busy, it->begin > r.begin ? it->begin : r.begin,
                                   "page %#" PRIx64 " already has the maximum number of pins",
                                   it->begin > r.begin ? it->begin : r.begin);
            if (it->begin > cur) ++need;
            if (it->end > r.end) ++need;
            cur = it->end;
        }
        if (cur < r.end) ++need;
        if (auto s = take_spares(need, r); !s) return s;
        split_at(r.begin);
        split_at(r.end);
        cur = r.begin;
        it = set_.lower_bound(r.begin);
        while (cur < r.end) {
            if (it != set_.end() && it->begin == cur) {
                ++it->count;
                cur = it->end;
                ++it;
            } else {
                const page_index gap_end = it != set_.end() && it->begin < r.end ? it->begin : r.end;
                pin_run* n = spare();
                n->begin = cur;
                n->end = gap_end;
                n->count = 1;
                set_.insert_before(it, *n);
                pinned_pages_ += gap_end - cur;
                cur = gap_end;
            }
        }
        normalize(r);
        drop_spares();
        return ok();
    }

    /// -1 on every page of r; refused (nothing changed) if a page has no pins.
    [[nodiscard]] status unpin(page_range r) noexcept {
        page_index cur = r.begin;
        std::size_t need = 0;
        auto it = at_or_after(set_, r.begin);
        if (it != set_.end() && it->begin < r.begin) ++need;
        while (cur < r.end) {
            if (it == set_.end() || it->begin > cur)
                return error::make(errc::invalid_argument, cur, "unpin of page %#" PRIx64 " which has no pins", cur);
            if (it->end > r.end) ++need;
            cur = it->end;
            ++it;
        }
        if (auto s = take_spares(need, r); !s) return s;
        split_at(r.begin);
        split_at(r.end);
        for (it = set_.lower_bound(r.begin); it != set_.end() && it->begin < r.end; ++it)
            if (--it->count == 0) pinned_pages_ -= it->end - it->begin;
        normalize(r);
        drop_spares();
        return ok();
    }

    /// Visit runs in order: f(begin, end, count).
    template <class F>
    void for_each(F&& f) const {
        for (const pin_run& r : set_) f(r.begin, r.end, r.count);
    }

    template <class Other>
    [[nodiscard]] bool same_runs(const Other& b) const noexcept {
        if (runs() != b.runs() || pinned_pages() != b.pinned_pages()) return false;
        auto i = set_.begin();
        bool same = true;
        b.for_each([&](page_index begin, page_index end, std::uint32_t count) {
            same = same && i->begin == begin && i->end == end && i->count == count;
            ++i;
        });
        return same;
    }

private:
    template <class Set>
    static auto at_or_after(Set& s, page_index p) noexcept {
        auto it = s.upper_bound(p);
        if (it != s.begin()) {
            auto prev = std::prev(it);
            if (prev->end > p) return prev;
        }
        return it;
    }

    [[nodiscard]] status take_spares(std::size_t n, page_range r) noexcept {
        for (std::size_t i = 0; i < n; ++i) {
            pin_run* p = node_traits::allocate(alloc_, 1);
            if (p == nullptr) {
                drop_spares();
                return error::make(errc::out_of_memory, r.begin,
                                   "no memory to record pins on [%#" PRIx64 ", %#" PRIx64 ")", r.begin, r.end);
            }
            std::construct_at(p);
            p->next_spare = spares_;
            spares_ = p;
        }
        return ok();
    }
    pin_run* spare() noexcept {
        pin_run* p = spares_;
        spares_ = p->next_spare;
        p->next_spare = nullptr;
        return p;
    }
    void drop_spares() noexcept {
        while (spares_ != nullptr) put(spare());
    }
    void put(pin_run* p) noexcept {
        std::destroy_at(p);
        node_traits::deallocate(alloc_, p, 1);
    }

    /// Make p a run boundary (uses one spare if it cuts a run).
    void split_at(page_index p) noexcept {
        auto it = at_or_after(set_, p);
        if (it == set_.end() || it->begin >= p) return;
        pin_run* n = spare();
        n->begin = p;
        n->end = it->end;
        n->count = it->count;
        it->end = p;
        set_.insert_before(std::next(it), *n);
    }

    /// Drop zero runs and coalesce equal neighbours touching r.
    void normalize(page_range r) noexcept {
        auto it = at_or_after(set_, r.begin > 0 ? r.begin - 1 : 0);
        while (it != set_.end() && it->begin <= r.end) {
            if (it->count == 0) {
                it = set_.erase_and_dispose(it, [this](pin_run* n) { put(n); });
                continue;
            }
            auto next = std::next(it);
            if (next != set_.end() && next->begin == it->end && next->count == it->count) {
                it->end = next->end;
                set_.erase_and_dispose(next, [this](pin_run* n) { put(n); });
                continue;
            }
            it = next;
        }
    }

    set_type set_;
    node_alloc alloc_;
    pin_run* spares_ = nullptr;
    std::uint64_t pinned_pages_ = 0;
};

} // namespace guestmem::detail
