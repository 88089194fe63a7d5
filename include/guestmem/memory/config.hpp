// guestmem/memory/config.hpp — the plain types a guest memory object is
// configured and queried with: its configuration, per-conversion options,
// what a fault hands back, and the statistics it keeps.
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

[[nodiscard]] constexpr std::string_view to_string(content_policy c) noexcept {
    return c == content_policy::preserve ? "preserve" : c == content_policy::zero ? "zero" : "invalid content policy";
}

/// How to build a guest memory object.
struct guest_memory_config {
    page_index pages = 0;                            ///< object size in base pages
    shareability initial = shareability::guest_only; ///< shared = the kernel's GUEST_MEMFD_FLAG_INIT_SHARED
    folio_order max_order = order_2m;                ///< largest folio allocate() populates with
};

/// Per-conversion choices.
struct convert_options {
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
    guestmem::mappability mappability = mappability::all;
};

/// Counters and a census, as `stats()` returns them.
struct guest_memory_stats {
    page_index pages = 0;
    std::uint64_t shared_pages = 0;
    std::uint64_t guest_only_pages = 0;
    std::uint64_t runs = 0;               ///< runs in the shareability map
    std::uint64_t allocated_pages = 0;
    std::uint64_t folios_4k = 0, folios_2m = 0, folios_1g = 0;  ///< leaf folios by order
    std::uint64_t split_folios = 0;       ///< folios currently split into smaller pieces
    std::uint64_t pinned_pages = 0;
    std::uint64_t poisoned_folios = 0;
    std::uint64_t quarantined_pages = 0;  ///< truncated poisoned or leaked pages kept out of use (release_quarantine)
    std::uint64_t detached_pages = 0;     ///< pages of folios truncated while pinned, freed on their last unpin
    std::uint64_t bindings = 0;
    std::uint64_t conversions = 0;        ///< conversions that changed something
    std::uint64_t noop_conversions = 0;   ///< conversions of a range already in the target state
    std::uint64_t vetoes = 0;             ///< conversions refused by a consumer
    std::uint64_t busy = 0;               ///< conversions refused by an unexpected reference
    std::uint64_t rollbacks = 0;          ///< conversions undone after reserving (veto, busy, out of memory)
    std::uint64_t deferred = 0;           ///< folios a deferred conversion moved to mappability none (not those already draining)
    std::uint64_t quarantined = 0;        ///< pages poisoned because a consumer could not drop them
};

} // namespace guestmem
