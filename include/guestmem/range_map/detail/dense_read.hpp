// guestmem/range_map/detail/dense_read.hpp — the read side of the dense
// two-valued range map: a point lookup and "the next boundary after page p",
// over the top map (chunk index -> chunk entry, itself a coalesced run tree)
// and the chunks (chunk.hpp). Independent of the allocator, so the public
// run iterator can hold a pointer to it.
#pragma once

#include <cstddef>
#include <cstdint>

#include <guestmem/core/types.hpp>
#include <guestmem/range_map/detail/chunk.hpp>
#include <guestmem/range_map/detail/run_tree.hpp>

namespace guestmem::detail {

/// What a reader of a dense map needs: its top map, its size in pages and
/// its run count. A base of dense_runs; run iterators point to it.
struct dense_read {
    using top_base = run_tree_base<chunk_entry>;

    [[nodiscard]] page_index size() const noexcept { return size_; }
    [[nodiscard]] std::size_t runs() const noexcept { return runs_; }
    [[nodiscard]] bool one_run() const noexcept { return runs_ == 1; }

    /// Bit of page p. Precondition: p < size().
    [[nodiscard, gnu::always_inline]] bool bit_at(page_index p) const noexcept {
        if (runs_ == 1) return (top().single() >> 1) & 1u;
        return chunk_value(top().at(p >> chunk_shift), std::uint32_t(p) & (chunk_pages - 1));
    }

    /// Smallest q > p where the value changes (page q differs from q-1),
    /// or size() when none does. O(log chunks) to find the chunk, then the
    /// chunk's own search; skips a run of uniform chunks in one step.
    [[nodiscard]] page_index next_boundary(page_index p) const noexcept {
        if (runs_ == 1) return size_;
        page_index c = p >> chunk_shift;
        std::uint32_t off = std::uint32_t(p) & (chunk_pages - 1);
        page_index run_end;
        chunk_entry e = top().at(c, run_end);
        const page_index chunks = top().size();
        for (;;) {
            const std::uint32_t q = chunk_next_boundary(e, off);
            if (q < chunk_pages) {
                const page_index at = (c << chunk_shift) + q;
                return at < size_ ? at : size_;
            }
            // No boundary left in chunk c: on to the next chunk that starts
            // differently from how this one ends (a uniform top run is all
            // one value: skip it whole).
            const bool last = chunk_last(e);
            const page_index next = chunk_boundaries(e) == 0 ? run_end : c + 1;
            if (next >= chunks) return size_;
            if (next >= run_end) e = top().at(next, run_end);
            c = next;
            off = 0;
            if (chunk_first(e) != last) return c << chunk_shift;
        }
    }

    /// Boundaries q with lo < q < hi.
    [[nodiscard]] std::size_t boundaries_between(page_index lo, page_index hi) const noexcept {
        std::size_t n = 0;
        for (page_index q = next_boundary(lo); q < hi; q = next_boundary(q)) ++n;
        return n;
    }

protected:
    dense_read(const top_base* top, page_index size) noexcept : top_(top), size_(size) {}
    [[nodiscard]] const top_base& top() const noexcept { return *top_; }

    const top_base* top_;  // the derived map's top tree (re-pointed when the map moves)
    page_index size_;
    std::size_t runs_ = 1;
};

/// Chunks needed to cover `size` pages.
constexpr page_index chunks_of(page_index size) noexcept {
    return (size >> chunk_shift) + ((size & (chunk_pages - 1)) != 0);
}

} // namespace guestmem::detail
