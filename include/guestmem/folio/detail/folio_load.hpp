// guestmem/folio/detail/folio_load.hpp — the bodies of folio_table's export
// walks and its bulk loader, declared in folio_table.hpp: what a snapshot
// saves (top folios, split records, poisoned leaves, quarantined folios)
// and how a restore builds them back into an empty table without knowing
// the records (the way range_map::load builds a map from runs).
//
// Cost: each walk is O(records it visits). Loading is O(folios + split
// records · 512 piece states + poisoned leaves), plus one pass over the
// shareability runs at commit. A loader that is destroyed uncommitted
// gives every folio it made back (cannot fail).
#pragma once

#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <utility>

#include <guestmem/folio/folio_table.hpp>

namespace guestmem {

/// Builds folios into an empty table (folio_table::load()), in this order:
/// quarantined folios (add_quarantined), then live folios in page order
/// (add, each followed by the splits under it), then poison, then commit.
/// Precondition: the description is consistent (snapshot/ validates it
/// first); a split that names no record is refused with invalid_argument.
/// Lock: the table owner's exclusive lock, held until commit or destruction.
template <folio_allocator A, class NodeAllocator>
class folio_table<A, NodeAllocator>::loader {
public:
    /// A quarantined (detached, poisoned) folio of order o at `first`
    /// whose k poisoned leaves next() returns, in page order, as
    /// {page, leaf order, mappability}: split as far as the leaves need.
    /// Errors: out_of_memory, or the allocator's. Allocates: a record,
    /// a frame, piece arrays.
    template <class Next>
    [[nodiscard]] status add_quarantined(page_index first, folio_order o, std::size_t k, Next&& next) noexcept {
        auto t = add(first, o);
        if (!t) return t;
        for (std::size_t j = 0; j < k; ++j) {
            const auto [page, leaf_order, m] = next();
            ref x = last_->ref();
            while (x.order > leaf_order) {
                if (!x.split())
                    if (auto s = t_->split_one(x); !s) return s;
                x = x.child((page - x.first) >> next_lower_order(x.order));
            }
            t_->poison(page);
            x.set_map(m);
        }
        ++poisons_;
        t_->detach_top(t_->top_iterator(last_), false, true);
        last_ = nullptr;
        return ok();
    }

    /// A live folio of order o at `first`, after every live one so far.
    /// Errors: out_of_memory, or the allocator's. Allocates: a record, a
    /// frame (and the index's slots, once).
    [[nodiscard]] status add(page_index first, folio_order o) noexcept {
        if (!t_->index_.reserve())
            return error::make(errc::out_of_memory, first, "no memory for the folio index of the restored object");
        auto t = t_->make_top(first, o, t_->tops_.end());
        if (!t) return t.error();
        last_ = t.value();
        return ok();
    }

    /// Split the record of order o at page p under the last folio added.
    /// Errors: invalid_argument (no such record); out_of_memory, or the
    /// allocator's. Allocates: a piece array.
    [[nodiscard]] status split(page_index p, folio_order o) noexcept {
        ref x = last_ != nullptr ? last_->ref() : ref{};
        while (x && x.order > o && x.split()) x = x.child((p - x.first) >> next_lower_order(x.order));
        if (!x || x.order != o || x.first != p || x.order == order_4k || x.split())
            return error::make(errc::invalid_argument, p, "no unsplit order-%u record at page %#" PRIx64 " to split",
                               unsigned{o}, p);
        return t_->split_one(x);
    }

    /// Poison the leaf holding p (a hole is left alone). Never allocates.
    void poison(page_index p) noexcept {
        t_->poison(p);
        ++poisons_;
    }

    /// Give every live leaf the mappability its shareability in `share`
    /// implies, and keep what was built. Returns the poison events made
    /// (one per poison() and per quarantined folio). O(leaves + runs).
    template <class ShareMap>
    std::uint64_t commit(const ShareMap& share) noexcept {
        auto runs = share.runs({0, t_->size_});
        auto run = runs.begin();
        for (const top& t : t_->tops_)
            walk_top(t, t.range(), [&](const ref& x, folio_order) {
                while ((*run).range.end <= x.first) ++run;
                x.set_map(initial_map((*run).value));
            });
        t_ = nullptr;
        return poisons_;
    }

    loader(loader&& o) noexcept : t_(std::exchange(o.t_, nullptr)), last_(o.last_), poisons_(o.poisons_) {}
    loader& operator=(loader&&) = delete;
    /// Give back every folio made: the table is empty again (as on
    /// destruction without commit). Cannot fail.
    void abort() noexcept {
        if (t_ != nullptr) std::exchange(t_, nullptr)->drop_all();
    }
    ~loader() { abort(); }

private:
    friend folio_table;
    explicit loader(folio_table& t) noexcept : t_(&t) {}

    folio_table* t_;
    top* last_ = nullptr;
    std::uint64_t poisons_ = 0;
};

template <folio_allocator A, class NodeAllocator>
auto folio_table<A, NodeAllocator>::load() noexcept -> loader {
    return loader(*this);
}

template <folio_allocator A, class NodeAllocator>
void folio_table<A, NodeAllocator>::drop_all() noexcept {
    while (!tops_.empty()) free_top(tops_.begin());
    while (!detached_.empty()) {
        auto it = detached_.begin();
        c_.quarantined_pages -= detail::poisoned_pages(it->ref());
        give_back_leaves(*it, true);
        erase_record(detached_, it, false, false);
    }
}

namespace detail {

/// Visit the split records under x, parents first: f(first, order).
template <class F>
void for_each_split_rec(const folio_ref& x, F& f) {
    if (!x.split()) return;
    f(x.first, x.order);
    for (std::uint32_t i = 0; i < split_fanout; ++i) for_each_split_rec(x.child(i), f);
}

/// Visit the poisoned leaves under x: f(poison page, order, mappability).
template <class F>
void for_each_poisoned_rec(const folio_ref& x, F& f) {
    if (x.split()) {
        for (std::uint32_t i = 0; i < split_fanout; ++i) for_each_poisoned_rec(x.child(i), f);
        return;
    }
    if (x.poisoned()) f(x.poison_page(), x.order, x.map());
}

} // namespace detail

template <folio_allocator A, class NodeAllocator>
template <class F>
void folio_table<A, NodeAllocator>::for_each_top(F&& f) const {
    for (const top& t : tops_) f(t.first, t.order);
}

template <folio_allocator A, class NodeAllocator>
template <class F>
void folio_table<A, NodeAllocator>::for_each_split(F&& f) const {
    for (const top& t : tops_) detail::for_each_split_rec(t.ref(), f);
}

template <folio_allocator A, class NodeAllocator>
template <class F>
void folio_table<A, NodeAllocator>::for_each_poisoned(F&& f) const {
    for (const top& t : tops_) detail::for_each_poisoned_rec(t.ref(), f);
}

template <folio_allocator A, class NodeAllocator>
template <class F>
void folio_table<A, NodeAllocator>::for_each_detached_poison(F&& f) const {
    for (const top& d : detached_) {
        const ref x = d.ref();
        f(d.first, d.order, [&x](auto&& g) { detail::for_each_poisoned_rec(x, g); });
    }
}

} // namespace guestmem
