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

/// Chunks needed to cover `size` pages.
constexpr page_index chunks_of(page_index size) noexcept {
    return (size >> chunk_shift) + ((size & (chunk_pages - 1)) != 0);
}

/// Up to this many chunks (2^16 chunks: 4 TiB of 4 KiB pages, a 512 KiB
/// array) the top map is a direct array of entries, one per chunk: O(1)
/// to find a chunk. Above it, a coalesced run tree (O(log top runs), and
/// O(runs) memory however large the domain).
inline constexpr page_index direct_top_chunks = page_index{1} << 16;

/// Where a walk over the boundaries stands inside an array chunk: the next
/// boundaries of that chunk, so stepping to them needs no search.
struct dense_cursor {
    const std::uint16_t* next = nullptr;  // the chunk's next boundary offset
    const std::uint16_t* end = nullptr;   // past its last
    page_index base = 0;                  // the chunk's first page
};

/// What a reader of a dense map needs: its top map (direct array or run
/// tree), its size in pages and its run count. A base of dense_runs; run
/// iterators point to it.
struct dense_read {
    using top_base = run_tree_base<chunk_entry>;

    [[nodiscard]] page_index size() const noexcept { return size_; }
    [[nodiscard]] std::size_t runs() const noexcept { return runs_; }
    [[nodiscard]] bool one_run() const noexcept { return runs_ == 1; }

    /// Bit of page p. Precondition: p < size().
    [[nodiscard, gnu::always_inline]] bool bit_at(page_index p) const noexcept {
        if (runs_ == 1) return single_bit_;
        return chunk_value(entry(p >> chunk_shift), std::uint32_t(p) & (chunk_pages - 1));
    }

    /// bit_at(p), and in `index` a guess for a following reserve_inside
    /// of p (see chunk_value).
    [[nodiscard, gnu::always_inline]] bool bit_at(page_index p, std::uint32_t& index) const noexcept {
        index = ~std::uint32_t{0};
        if (runs_ == 1) return single_bit_;
        return chunk_value(entry(p >> chunk_shift), std::uint32_t(p) & (chunk_pages - 1), index);
    }

    /// Smallest q > p where the value changes (page q differs from q-1),
    /// or size() when none does; `limit` when there is none below it (the
    /// caller does not care past its window). O(1) (direct top) or O(log
    /// chunks) to find the chunk, then the chunk's own search; a tree top
    /// skips a run of uniform chunks in one step.
    /// Also gives the bit of page p, from the same search, and with a
    /// cursor, where the walk stands (see dense_cursor).
    [[nodiscard]] page_index next_boundary(page_index p, page_index limit, bool& bit,
                                           dense_cursor* cursor = nullptr) const noexcept {
        if (cursor) cursor->next = cursor->end = nullptr;
        if (runs_ == 1) {
            bit = single_bit_;
            return size_;
        }
        const page_index home = p >> chunk_shift;
        page_index c = home;
        page_index run_end;
        chunk_entry e = entry(c, run_end);
        const page_index chunks = chunks_;
        if ((e | 2u) == uniform_entry(true) && dir_) {  // a uniform chunk: skip it and its likes
            bit = (e >> 1) & 1u;
            const page_index next = skip_equal(c + 1, e, limit);
            if (next >= chunks) return size_;
            if ((next << chunk_shift) >= limit) return limit;
            c = next;
            e = dir_[c];
            if (chunk_first(e) != bit) return c << chunk_shift;
        }
        bool at_p;
        const std::uint16_t* pos;
        std::uint32_t q = chunk_next_boundary(e, c == home ? std::uint32_t(p) & (chunk_pages - 1) : 0, at_p, &pos);
        if (c == home) bit = at_p;
        for (;;) {
            if (q < chunk_pages) {
                const page_index at = (c << chunk_shift) + q;
                if (cursor && pos) {
                    cursor->next = pos + 1;
                    cursor->end = block_of(e)->offsets() + block_of(e)->count;
                    cursor->base = c << chunk_shift;
                }
                return at < size_ ? at : size_;
            }
            // No boundary left in chunk c: on to the next chunk that starts
            // differently from how this one ends (a uniform top run is all
            // one value: skip it whole).
            const bool last = chunk_last(e);
            page_index next = chunk_boundaries(e) == 0 ? run_end : c + 1;
            if (dir_) next = skip_equal(next, uniform_entry(last), limit);  // the uniform chunks of our value
            if (next >= chunks) return size_;
            if ((next << chunk_shift) >= limit) return limit;
            if (next >= run_end) e = entry(next, run_end);
            c = next;
            if (chunk_first(e) != last) return c << chunk_shift;
            q = chunk_next_boundary(e, 0, at_p, &pos);
        }
    }

    /// First chunk from `c` on whose direct-top entry is not `e`, looking no
    /// further than the chunk holding `limit` (a tight loop over dir_).
    [[nodiscard]] page_index skip_equal(page_index c, chunk_entry e, page_index limit) const noexcept {
        const page_index stop = (limit >> chunk_shift) + 1 < chunks_ ? (limit >> chunk_shift) + 1 : chunks_;
        while (c < stop && dir_[c] == e) ++c;
        return c;
    }

    /// The boundary after the one a walk stands on: from the cursor when it
    /// has one left in its chunk (O(1)), else by next_boundary.
    [[nodiscard]] page_index step(page_index p, page_index limit, dense_cursor& cursor) const noexcept {
        if (cursor.next != cursor.end) return cursor.base + *cursor.next++;
        bool bit;
        return next_boundary(p, limit, bit, &cursor);
    }

    /// Boundaries q with lo < q < hi.
    [[nodiscard]] std::size_t boundaries_between(page_index lo, page_index hi) const noexcept {
        std::size_t n = 0;
        dense_cursor cur;
        bool bit;
        for (page_index q = next_boundary(lo, hi, bit, &cur); q < hi; q = step(q, hi, cur)) ++n;
        return n;
    }

protected:
    dense_read(const top_base* top, page_index size, bool initial) noexcept
        : top_(top), size_(size), chunks_(chunks_of(size)), single_bit_(initial) {}
    [[nodiscard]] const top_base& top() const noexcept { return *top_; }

    /// Entry of chunk c (precondition: more than one run).
    [[nodiscard, gnu::always_inline]] chunk_entry entry(page_index c) const noexcept {
        return dir_ ? dir_[c] : top().at(c);
    }
    /// Entry of chunk c and the end of its top run.
    [[nodiscard]] chunk_entry entry(page_index c, page_index& run_end) const noexcept {
        if (dir_) {
            run_end = c + 1;
            return dir_[c];
        }
        return top().at(c, run_end);
    }

    const top_base* top_;          // the derived map's top tree (re-pointed when the map moves)
    chunk_entry* dir_ = nullptr;   // the direct top, when in use and allocated
    page_index size_;
    page_index chunks_;
    std::size_t runs_ = 1;
    bool single_bit_;              // the value while runs_ == 1
};

} // namespace guestmem::detail
