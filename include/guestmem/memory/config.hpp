/// @file
/// The plain types a guest memory object is configured and queried with:
/// its configuration, per-conversion options, what a fault hands back, and
/// the statistics it keeps. Plain values: no lock, no allocation.
#pragma once

#include <cstdint>
#include <string_view>

#include <guestmem/core/types.hpp>

namespace guestmem {

/// What happens to the contents of converted pages.
enum class content_policy : std::uint8_t {
    preserve,  ///< keep the bytes (in-place conversion, the default)
    zero,      ///< clear converted pages through the allocator (pKVM and Hafnium zero on reclaim)
};

/// The enumerator's name ("preserve", "zero"), or "invalid content policy".
[[nodiscard]] constexpr std::string_view to_string(content_policy c) noexcept {
    return c == content_policy::preserve ? "preserve" : c == content_policy::zero ? "zero" : "invalid content policy";
}

/// How to build a guest memory object (guest_memory::check_config says
/// whether a configuration is usable: pages > 0, a valid initial
/// shareability, max_order one of order_4k, order_2m, order_1g and no larger
/// than the allocator's).
struct guest_memory_config {
    page_index pages = 0;                            ///< object size in base pages
    shareability initial = shareability::guest_only; ///< shared = the kernel's GUEST_MEMFD_FLAG_INIT_SHARED
    folio_order max_order = order_2m;                ///< largest folio allocate() populates with
};

/// Per-conversion choices (guest_memory::convert's third argument).
struct convert_options {
    /// What happens to the converted pages' contents; a value other than
    /// preserve or zero makes the conversion fail with invalid_argument.
    content_policy content = content_policy::preserve;
    /// shared -> guest_only normally refuses (busy, first pinned page) while
    /// any page has an unexpected reference: the kernel's EAGAIN +
    /// error_offset. With this set, the conversion proceeds as pKVM's flow
    /// does (docs/DESIGN.md §Unexpected references): pinned folios go to mappability `none` and finish
    /// (none -> guest, hugepage re-merge) the moment their last pin drops.
    bool defer_if_pinned = false;
};

/// A successful fault: what the caller may map.
struct fault_result {
    frame_number frame = 0;       ///< frame of the faulting page
    page_index folio_first = 0;   ///< first page of the folio holding it
    frame_number folio_frame = 0; ///< first frame of that folio
    folio_order order = order_4k; ///< order of that folio: the largest mapping size usable
    /// Mappability of that folio when the fault was answered (`all` for a
    /// shared page, `guest` for a guest_only one: faults in `none` are
    /// refused with retry).
    guestmem::mappability mappability = mappability::all;
};

/// Counters and a census, as guest_memory::stats() returns them: a
/// snapshot taken under the object's shared lock. The census fields
/// describe the object now; the event counters (from `conversions` on)
/// count since construction. Faults are not counted.
struct guest_memory_stats {
    page_index pages = 0;                 ///< object size in base pages
    std::uint64_t shared_pages = 0;       ///< pages whose shareability is shared
    std::uint64_t guest_only_pages = 0;   ///< pages whose shareability is guest_only
    std::uint64_t runs = 0;               ///< runs in the shareability map
    std::uint64_t allocated_pages = 0;    ///< pages backed by a folio (holes excluded)
    /// Leaf folios of 4 KiB. Here and in folios_2m and folios_1g, the
    /// pieces of a split folio count as leaves of their own order; the
    /// split folio itself does not count.
    std::uint64_t folios_4k = 0, folios_2m = 0, folios_1g = 0;
    /// @var guest_memory_stats::folios_2m
    /// Leaf folios of 2 MiB (declared with folios_4k).

    /// @var guest_memory_stats::folios_1g
    /// Leaf folios of 1 GiB (declared with folios_4k).

    std::uint64_t split_folios = 0;       ///< folios currently split into smaller pieces
    std::uint64_t pinned_pages = 0;       ///< pages with at least one pin (unexpected reference)
    std::uint64_t poisoned_folios = 0;    ///< poisoned leaf folios still in the object
    std::uint64_t quarantined_pages = 0;  ///< truncated poisoned or leaked pages kept out of use (release_quarantine)
    std::uint64_t detached_pages = 0;     ///< pages of folios truncated while pinned, freed on their last unpin
    std::uint64_t bindings = 0;           ///< consumer bindings currently bound
    std::uint64_t conversions = 0;        ///< conversions that changed something
    std::uint64_t noop_conversions = 0;   ///< conversions of a range already in the target state
    std::uint64_t vetoes = 0;             ///< conversions refused by a consumer
    std::uint64_t busy_refusals = 0;      ///< conversions refused with busy: an unexpected reference (pin) to guest_only
    std::uint64_t rollbacks = 0;          ///< conversions undone after their prepare (veto, busy, out of memory)
    std::uint64_t deferred_folios = 0;    ///< leaf folios a deferred conversion moved to mappability none (not those already draining)
    /// Leaf folios a conversion's commit quarantined (poisoned) because a
    /// consumer reported a page in them (leaked: it could not drop it, or
    /// poisoned). An event count; quarantined_pages is the census of
    /// truncated quarantined pages held now.
    std::uint64_t commit_quarantines = 0;
};

} // namespace guestmem
