/// @file
/// An allocator policy that only keeps books: it hands out fake, naturally
/// aligned frame numbers, enforces a capacity in pages (so running out of
/// memory is testable) and an optional limit on split metadata, and counts
/// everything it is asked to do. The default allocator for tests, benchmarks
/// and simulation.
#pragma once

#include <cstdint>
#include <cinttypes>

#include <guestmem/core/error.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/folio/allocator.hpp>

namespace guestmem {

/// An allocator policy that keeps books only: fake, naturally aligned
/// frame numbers (from 0x100000 up, never reused), a capacity in pages, an
/// optional limit on split metadata, and counters of every call. Without
/// refcounted_frames: a folio truncated while pinned keeps its frames until
/// its last unpin. Every call is O(1). Locking: none (called under the
/// owner's exclusive lock); not for use from several threads at once.
class simulated_allocator {
public:
    /// An allocator of at most `capacity_pages` pages in use at once
    /// (unlimited by default) handing out folios up to `max_order`
    /// (clamped to max_supported_order).
    explicit simulated_allocator(std::uint64_t capacity_pages = UINT64_MAX, folio_order max_order = order_1g) noexcept
        : capacity_(capacity_pages), max_order_(max_order > max_supported_order ? max_supported_order : max_order) {}

    /// The largest order allocate() accepts.
    [[nodiscard]] folio_order max_order() const noexcept { return max_order_; }

    /// A fresh folio of `order`; frames are never reused, so a stale frame
    /// number is easy to spot in a dump. Errors (at `index`): not_supported
    /// for an order above max_order(); out_of_memory when the folio would
    /// take the pages in use past capacity().
    [[nodiscard]] result<frame_number> allocate(page_index index, folio_order order) noexcept {
        if (order > max_order_)
            return error::make(errc::not_supported, index, "folio of order %u at page %#" PRIx64
                               " is larger than the allocator's order %u", unsigned{order}, index, unsigned{max_order_});
        const std::uint64_t n = pages_in(order);
        if (in_use_ > capacity_ || capacity_ - in_use_ < n)
            return error::make(errc::out_of_memory, index,
                               "no memory for a folio of order %u at page %#" PRIx64 " (%" PRIu64 " of %" PRIu64
                               " pages in use)", unsigned{order}, index, in_use_, capacity_);
        const frame_number f = align_up(next_frame_, order);
        next_frame_ = f + n;
        in_use_ += n;
        ++folios_;
        ++allocations_;
        return f;
    }

    /// Take back a folio (or one piece of a split one) of `order`: its
    /// pages leave pages_in_use(). The frame is not checked or reused.
    void free(page_index, frame_number, folio_order order) noexcept {
        in_use_ -= pages_in(order);
        --folios_;
        ++frees_;
    }

    /// Split metadata: one unit per split, bounded by the split limit
    /// (set_split_limit). Error: out_of_memory (at no_page) when the
    /// reservations outstanding plus the splits in place reach it.
    [[nodiscard]] status prepare_split(frame_number frame, folio_order from, folio_order to) noexcept {
        if (reserved_ + split_now_ >= split_limit_)
            return error::make(errc::out_of_memory, no_page,
                               "no metadata memory to split the order-%u folio at frame %#" PRIx64 " to order %u",
                               unsigned{from}, frame, unsigned{to});
        ++reserved_;
        ++reservations_;
        return ok();
    }
    /// Give back one unused reservation.
    void abort_split(frame_number, folio_order, folio_order) noexcept { --reserved_; }
    /// A split folio is 2^(from - to) folios from then on: each may be
    /// freed on its own (a truncated folio's healthy pieces are). Uses one
    /// reservation; the split stays in place (counted against the split
    /// limit) until merged.
    void commit_split(frame_number, folio_order from, folio_order to) noexcept {
        --reserved_;
        ++split_now_;
        ++splits_;
        folios_ += pages_in(from - to) - 1;
    }
    /// Pieces of order `from` back into one folio of order `to`: releases
    /// the split's metadata unit.
    void merge(frame_number, folio_order from, folio_order to) noexcept {
        --split_now_;
        ++merges_;
        folios_ -= pages_in(to - from) - 1;
    }
    /// Count a request to clear `pages` pages (there are no contents to clear).
    void zero(page_index, frame_number, std::uint64_t pages) noexcept {
        zeroed_ += pages;
        ++zero_calls_;
    }

    // ---- configuration and statistics ---------------------------------
    /// Change the capacity (pages in use at once). Lowering it below
    /// pages_in_use() frees nothing; later allocations fail until enough
    /// pages are freed.
    void set_capacity(std::uint64_t pages) noexcept { capacity_ = pages; }
    /// Limit on split metadata (reservations plus splits in place).
    void set_split_limit(std::uint64_t n) noexcept { split_limit_ = n; }
    /// The capacity in pages.
    [[nodiscard]] std::uint64_t capacity() const noexcept { return capacity_; }
    /// Pages of the folios handed out and not freed.
    [[nodiscard]] std::uint64_t pages_in_use() const noexcept { return in_use_; }
    /// Folios handed out and not freed, a split one counting as its pieces.
    [[nodiscard]] std::uint64_t folios_in_use() const noexcept { return folios_; }
    /// Successful allocate() calls.
    [[nodiscard]] std::uint64_t allocations() const noexcept { return allocations_; }
    /// free() calls.
    [[nodiscard]] std::uint64_t frees() const noexcept { return frees_; }
    /// Split reservations outstanding (taken, neither used nor given back).
    [[nodiscard]] std::uint64_t reserved_splits() const noexcept { return reserved_; }
    /// Reservations ever taken.
    [[nodiscard]] std::uint64_t reservations() const noexcept { return reservations_; }
    /// Splits currently in place (split minus merged).
    [[nodiscard]] std::uint64_t splits_in_place() const noexcept { return split_now_; }
    /// split() calls.
    [[nodiscard]] std::uint64_t splits() const noexcept { return splits_; }
    /// merge() calls.
    [[nodiscard]] std::uint64_t merges() const noexcept { return merges_; }
    /// Pages zero() was asked to clear, in total.
    [[nodiscard]] std::uint64_t zeroed_pages() const noexcept { return zeroed_; }
    /// zero() calls.
    [[nodiscard]] std::uint64_t zero_calls() const noexcept { return zero_calls_; }

private:
    std::uint64_t capacity_;
    folio_order max_order_;
    std::uint64_t split_limit_ = UINT64_MAX;
    frame_number next_frame_ = 0x100000;  // leave low frames unused, as a real machine would
    std::uint64_t in_use_ = 0, folios_ = 0, allocations_ = 0, frees_ = 0;
    std::uint64_t reserved_ = 0, reservations_ = 0, split_now_ = 0, splits_ = 0, merges_ = 0;
    std::uint64_t zeroed_ = 0, zero_calls_ = 0;
};

static_assert(folio_allocator<simulated_allocator>);

} // namespace guestmem
