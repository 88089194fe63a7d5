/// @file
/// The allocator policy: where folios come from. A policy hands out
/// naturally aligned folios of an order, takes them back, and restructures
/// them (split a huge folio into smaller ones, merge the pieces back).
/// Splitting needs metadata memory (hugetlb restores the vmemmap of the tail
/// pages) and so may fail; here that fallible part is a separate
/// `prepare_split` so the split itself, done at commit time, cannot.
/// Merging frees metadata and never fails.
///
/// Implementations: simulated_allocator and fault_injecting_allocator
/// (guestmem/testing/), memfd_allocator and guest_memfd_allocator
/// (guestmem/linux/).
#pragma once

#include <concepts>
#include <cstdint>

#include <guestmem/core/error.hpp>
#include <guestmem/core/types.hpp>

namespace guestmem {

/// What an allocator policy must provide.
///
/// Locking: the folio table calls the policy only while its owner
/// serialises mutations (guest_memory's exclusive lock); faults never call
/// it. A policy shared by several objects must serialise itself.
///
/// - `max_order()`: the largest folio order it can hand out.
/// - `allocate(index, order)`: a new folio of `order` to back object pages
///   [index, index + 2^order); `index` is aligned to `order`. Returns the
///   frame number of its first page (the folio's pages are frames
///   frame .. frame + 2^order - 1). May fail with out_of_memory.
/// - `free(index, frame, order)`: give a folio back: a whole allocation,
///   or one piece of a split one (a truncated folio holding poison goes
///   back piece by piece, its poisoned pieces kept). Cannot fail.
/// - `prepare_split(frame, from, to)`: take what splitting the folio at
///   `frame` from order `from` into pieces of order `to` needs. May fail.
/// - `commit_split(frame, from, to)`: split, consuming what prepare_split
///   took. Cannot fail.
/// - `abort_split(frame, from, to)`: give back what prepare_split took,
///   unused. Cannot fail.
///   (The same prepare / commit / abort as every layer: docs/DESIGN.md
///   §The two-phase protocol in every layer.)
/// - `merge(frame, from, to)`: pieces of order `from` back into one folio
///   of order `to` (the reverse of commit_split: `from` is the smaller order here).
///   Cannot fail.
/// - `zero(index, frame, pages)`: clear the contents of `pages` base pages
///   starting at `frame` (backing object page `index`). Cannot fail.
///
/// Optional: `static constexpr bool refcounted_frames = true` when the
/// memory behind a frame lives on by itself while anything still holds a
/// reference to it (the kernel's folio refcount, for memfd and guest_memfd:
/// a GUP pin or an IOMMU mapping keeps the page, whatever the file does).
/// Such an allocator gets free() for a folio truncated while pinned at once,
/// as the kernel drops a pinned folio from the file at once; otherwise the
/// folio table holds its frames until its last unpin.
template <class A>
concept folio_allocator = requires(A& a, const A& ca, page_index index, frame_number frame, folio_order order,
                                   folio_order big, folio_order small, std::uint64_t pages) {
    { ca.max_order() } noexcept -> std::same_as<folio_order>;
    { a.allocate(index, order) } -> std::same_as<result<frame_number>>;
    { a.free(index, frame, order) } noexcept;
    { a.prepare_split(frame, big, small) } -> std::same_as<status>;
    { a.abort_split(frame, big, small) } noexcept;
    { a.commit_split(frame, big, small) } noexcept;
    { a.merge(frame, small, big) } noexcept;
    { a.zero(index, frame, pages) } noexcept;
};

/// True when A declares `static constexpr bool refcounted_frames = true`
/// (see folio_allocator); false when it declares it false or not at all.
template <class A>
inline constexpr bool refcounted_frames_v = requires { requires A::refcounted_frames; };

} // namespace guestmem
