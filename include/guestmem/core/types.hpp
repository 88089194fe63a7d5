// guestmem/core/types.hpp — the vocabulary every part shares: page indices,
// folio orders and their alignment arithmetic, and the shareability /
// mappability / accessor enumerations (docs/DESIGN.md §Vocabulary).
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

namespace guestmem {

/// Offset of a base page inside one guest memory object.
using page_index = std::uint64_t;

/// A frame number handed out by an allocator policy (a PFN, a file page
/// offset, or a fake number for the simulated allocator).
using frame_number = std::uint64_t;

/// Base page size in bytes (4 KiB) and its log2.
inline constexpr unsigned page_shift = 12;
inline constexpr std::uint64_t page_size = std::uint64_t{1} << page_shift;

/// log2 of a folio's page count.
using folio_order = std::uint8_t;
inline constexpr folio_order order_4k = 0;
inline constexpr folio_order order_2m = 9;
inline constexpr folio_order order_1g = 18;
/// The largest order any part of the library accepts (a 1 GiB folio).
inline constexpr folio_order max_supported_order = order_1g;

/// Pages in a folio of the given order. `order` must be below 64 (the
/// shift is undefined from there on); every order the library accepts is
/// at most max_supported_order, and check_aligned_range refuses larger ones.
[[nodiscard]] constexpr std::uint64_t pages_in(folio_order order) noexcept {
    return std::uint64_t{1} << order;
}

/// True when `page` is the first page of a naturally aligned folio of `order`.
[[nodiscard]] constexpr bool is_aligned(page_index page, folio_order order) noexcept {
    return (page & (pages_in(order) - 1)) == 0;
}

/// Start of the naturally aligned folio of `order` that holds `page`.
[[nodiscard]] constexpr page_index align_down(page_index page, folio_order order) noexcept {
    return page & ~(pages_in(order) - 1);
}

/// Smallest aligned start >= page; saturates to the largest aligned value
/// below 2^64 instead of wrapping.
[[nodiscard]] constexpr page_index align_up(page_index page, folio_order order) noexcept {
    const std::uint64_t mask = pages_in(order) - 1;
    if (page > std::numeric_limits<page_index>::max() - mask) return align_down(std::numeric_limits<page_index>::max(), order);
    return (page + mask) & ~mask;
}

/// The folio orders the library hands out, largest first (1G, 2M, 4K).
inline constexpr folio_order standard_orders[] = {order_1g, order_2m, order_4k};

/// The next standard order below `order` (order_4k stays order_4k).
[[nodiscard]] constexpr folio_order next_lower_order(folio_order order) noexcept {
    // Two compares, not a walk over standard_orders: every descent calls this.
    return order > order_1g ? order_1g : order > order_2m ? order_2m : order_4k;
}
static_assert(next_lower_order(order_1g) == order_2m && next_lower_order(order_2m) == order_4k &&
              next_lower_order(order_4k) == order_4k && next_lower_order(12) == order_2m);

/// Largest standard order <= `limit` whose aligned folio starting at `page`
/// fits inside [page, end). Returns order_4k when only a base page fits.
[[nodiscard]] constexpr folio_order largest_fitting_order(page_index page, page_index end,
                                                          folio_order limit) noexcept {
    for (folio_order order : standard_orders) {
        if (order > limit || order == order_4k) continue;
        if (is_aligned(page, order) && end > page && end - page >= pages_in(order)) return order;
    }
    return order_4k;
}

/// Per page: may the host and devices map it, or only the guest side?
enum class shareability : std::uint8_t { shared, guest_only };

/// Per folio, the transient state while a conversion drains host references
/// (docs/DESIGN.md §Mappability): mappable by all, by the guest only, or by no one.
enum class mappability : std::uint8_t { all, guest, none };

/// Who asks for a mapping in a fault.
enum class accessor : std::uint8_t { host, hypervisor, device, trusted_device };

[[nodiscard]] constexpr bool is_valid(shareability s) noexcept {
    return s == shareability::shared || s == shareability::guest_only;
}
[[nodiscard]] constexpr bool is_valid(mappability m) noexcept {
    return m == mappability::all || m == mappability::guest || m == mappability::none;
}
[[nodiscard]] constexpr bool is_valid(accessor a) noexcept {
    return a == accessor::host || a == accessor::hypervisor || a == accessor::device ||
           a == accessor::trusted_device;
}

[[nodiscard]] constexpr std::string_view to_string(shareability s) noexcept {
    switch (s) {
    case shareability::shared: return "shared";
    case shareability::guest_only: return "guest_only";
    }
    return "invalid shareability";
}
[[nodiscard]] constexpr std::string_view to_string(mappability m) noexcept {
    switch (m) {
    case mappability::all: return "all";
    case mappability::guest: return "guest";
    case mappability::none: return "none";
    }
    return "invalid mappability";
}
[[nodiscard]] constexpr std::string_view to_string(accessor a) noexcept {
    switch (a) {
    case accessor::host: return "host";
    case accessor::hypervisor: return "hypervisor";
    case accessor::device: return "device";
    case accessor::trusted_device: return "trusted_device";
    }
    return "invalid accessor";
}

/// May `who` map a page of shareability `s`? Shared pages: everyone.
/// Guest-only pages: the hypervisor (stage-2) and trusted devices only.
[[nodiscard]] constexpr bool may_access(accessor who, shareability s) noexcept {
    if (s == shareability::shared) return true;
    return who == accessor::hypervisor || who == accessor::trusted_device;
}

} // namespace guestmem
