// guestmem/linux/detail/protection_runs.hpp — which pages of a host view are
// currently PROT_NONE, as sorted, disjoint, coalesced runs of view-relative
// page numbers. The host-mapping consumer reserves capacity in its fallible
// prepare (each assignment adds at most one run), so the assignment done in
// its commit never allocates. Storage is a nothrow-allocated array: growing
// reports failure instead of throwing. The run count also gives the number
// of VMAs the view splits into (one per maximal run of equal protection),
// which the consumer keeps under vm.max_map_count.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include <guestmem/core/page_range.hpp>

namespace guestmem::detail::sys {

class protection_runs {
public:
    /// Make room for `n` runs in total. May fail (returns false); never throws.
    [[nodiscard]] bool reserve(std::size_t n) noexcept {
        if (n <= cap_) return true;
        const std::size_t want = std::max(n, cap_ * 2);
        std::unique_ptr<page_range[]> p(new (std::nothrow) page_range[want]);
        if (!p) return false;
        if (size_) std::memcpy(static_cast<void*>(p.get()), runs_.get(), size_ * sizeof(page_range));
        runs_ = std::move(p);
        cap_ = want;
        return true;
    }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return cap_; }
    [[nodiscard]] const page_range* begin() const noexcept { return runs_.get(); }
    [[nodiscard]] const page_range* end() const noexcept { return runs_.get() + size_; }

    /// Is view page `p` protected?
    [[nodiscard]] bool protected_at(std::uint64_t p) const noexcept {
        const page_range* it = std::upper_bound(begin(), end(), p, [](std::uint64_t v, const page_range& r) { return v < r.end; });
        return it != end() && it->begin <= p;
    }

    /// Maximal runs of equal protection over a view of `view_pages` pages
    /// (= VMAs the view occupies, if the kernel merges equal neighbours).
    [[nodiscard]] std::size_t segments(std::uint64_t view_pages) const noexcept {
        if (size_ == 0) return view_pages ? 1 : 0;
        std::size_t gaps = size_ - 1;
        if (runs_[0].begin > 0) ++gaps;
        if (runs_[size_ - 1].end < view_pages) ++gaps;
        return size_ + gaps;
    }

    /// Protect (`prot` = true) or unprotect [r.begin, r.end). Needs
    /// capacity() >= size() + 1; never allocates.
    void assign(page_range r, bool prot) noexcept {
        if (r.empty()) return;
        page_range* b = runs_.get();
        page_range* e = b + size_;
        if (prot) {
            // Runs overlapping or touching [r.begin, r.end] merge into one.
            page_range* i = std::lower_bound(b, e, r.begin, [](const page_range& x, std::uint64_t v) { return x.end < v; });
            page_range* j = std::upper_bound(i, e, r.end, [](std::uint64_t v, const page_range& x) { return v < x.begin; });
            page_range merged = r;
            if (i != j) {
                merged.begin = std::min(r.begin, i->begin);
                merged.end = std::max(r.end, (j - 1)->end);
            }
            replace(static_cast<std::size_t>(i - b), static_cast<std::size_t>(j - i), &merged, 1);
        } else {
            // Runs strictly overlapping [r.begin, r.end) lose that part.
            page_range* i = std::upper_bound(b, e, r.begin, [](std::uint64_t v, const page_range& x) { return v < x.end; });
            page_range* j = std::lower_bound(i, e, r.end, [](const page_range& x, std::uint64_t v) { return x.begin < v; });
            if (i == j) return;
            page_range keep[2];
            std::size_t n = 0;
            if (i->begin < r.begin) keep[n++] = {i->begin, r.begin};
            if ((j - 1)->end > r.end) keep[n++] = {r.end, (j - 1)->end};
            replace(static_cast<std::size_t>(i - b), static_cast<std::size_t>(j - i), keep, n);
        }
    }

private:
    // Replace `count` runs at `at` with `n` new ones (capacity permitting).
    void replace(std::size_t at, std::size_t count, const page_range* with, std::size_t n) noexcept {
        if (size_ - count + n > cap_) return;  // no room: caller broke the reservation contract
        page_range* b = runs_.get();
        const std::size_t tail = size_ - at - count;
        if (n != count && tail) std::memmove(static_cast<void*>(b + at + n), b + at + count, tail * sizeof(page_range));
        for (std::size_t k = 0; k < n; ++k) b[at + k] = with[k];
        size_ = size_ - count + n;
    }

    std::unique_ptr<page_range[]> runs_;
    std::size_t size_ = 0;
    std::size_t cap_ = 0;
};

} // namespace guestmem::detail::sys
