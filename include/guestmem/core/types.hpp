/// @file
/// The vocabulary every part shares: page indices, folio orders and their
/// alignment arithmetic, and the shareability / mappability / accessor
/// enumerations (docs/DESIGN.md §Vocabulary). Everything here is constexpr,
/// O(1) and lock-free: plain values and pure functions.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

/// Guest memory ownership for hypervisors: who may map each page of a
/// guest's memory (shareability), which folios back it, and which consumers
/// must let go before ownership changes. Everything public lives here;
/// `guestmem::detail` is implementation only and `guestmem::testing` holds
/// test helpers (see README.md, "The parts").
namespace guestmem {

/// Offset of a base page inside one guest memory object.
using page_index = std::uint64_t;

/// A frame number handed out by an allocator policy (a PFN, a file page
/// offset, or a fake number for the simulated allocator).
using frame_number = std::uint64_t;

/// log2 of the base page size: 12.
inline constexpr unsigned page_shift = 12;
/// Base page size in bytes: 4 KiB. A page_index times page_size is a byte offset.
inline constexpr std::uint64_t page_size = std::uint64_t{1} << page_shift;

/// log2 of a folio's page count (0 = one 4 KiB page).
using folio_order = std::uint8_t;
/// Order of a 4 KiB base page (1 page).
inline constexpr folio_order order_4k = 0;
/// Order of a 2 MiB folio (512 pages, a PMD mapping on x86-64 and arm64).
inline constexpr folio_order order_2m = 9;
/// Order of a 1 GiB folio (262144 pages, a PUD mapping).
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

/// Start of the naturally aligned folio of `order` that holds `page`
/// (`page` rounded down to a multiple of 2^order).
[[nodiscard]] constexpr page_index align_down(page_index page, folio_order order) noexcept {
    return page & ~(pages_in(order) - 1);
}

/// Smallest start aligned to `order` that is >= `page`. Saturates to the
/// largest aligned value below 2^64 instead of wrapping.
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
/// fits inside [page, end): the order populate uses for the next folio of a
/// hole. Returns order_4k when only a base page fits (or `end <= page`).
/// O(1): at most three standard orders are tried.
[[nodiscard]] constexpr folio_order largest_fitting_order(page_index page, page_index end,
                                                          folio_order limit) noexcept {
    for (folio_order order : standard_orders) {
        if (order > limit || order == order_4k) continue;
        if (is_aligned(page, order) && end > page && end - page >= pages_in(order)) return order;
    }
    return order_4k;
}

/// Per page: may the host and devices map it, or only the guest side?
/// Kept as coalesced runs by the object's range_map.
enum class shareability : std::uint8_t {
    shared,      ///< the host, the hypervisor and every device may map it
    guest_only   ///< private to the guest: only the hypervisor's stage-2 and trusted devices may map it
};

/// Per leaf folio, the transient state while a conversion drains host
/// references (docs/DESIGN.md §Mappability): mappable by all, by the guest
/// only, or by no one. folio/mappability.hpp holds the transitions.
enum class mappability : std::uint8_t {
    all,    ///< a shared folio: every accessor may map it
    guest,  ///< a guest_only folio the host may no longer reach: the guest side may map it
    none    ///< a guest_only folio whose pins still drain: no one may map it (faults get retry)
};

/// Who asks for a mapping in a fault or a pin.
enum class accessor : std::uint8_t {
    host,            ///< host userspace (a VMM thread, a host view)
    hypervisor,      ///< the hypervisor's stage-2 tables (may map guest_only pages)
    device,          ///< an untrusted device behind an IOMMU (shared pages only)
    trusted_device   ///< a device the guest trusts (may map guest_only pages)
};

/// True when `s` is one of the named enumerators (guards casts from raw input).
[[nodiscard]] constexpr bool is_valid(shareability s) noexcept {
    return s == shareability::shared || s == shareability::guest_only;
}
/// True when `m` is one of the named enumerators.
[[nodiscard]] constexpr bool is_valid(mappability m) noexcept {
    return m == mappability::all || m == mappability::guest || m == mappability::none;
}
/// True when `a` is one of the named enumerators.
[[nodiscard]] constexpr bool is_valid(accessor a) noexcept {
    return a == accessor::host || a == accessor::hypervisor || a == accessor::device ||
           a == accessor::trusted_device;
}

/// The enumerator's name ("shared", "guest_only"), or "invalid shareability"
/// for any other value. The view points to a string literal.
[[nodiscard]] constexpr std::string_view to_string(shareability s) noexcept {
    switch (s) {
    case shareability::shared: return "shared";
    case shareability::guest_only: return "guest_only";
    }
    return "invalid shareability";
}
/// The enumerator's name ("all", "guest", "none"), or "invalid mappability".
[[nodiscard]] constexpr std::string_view to_string(mappability m) noexcept {
    switch (m) {
    case mappability::all: return "all";
    case mappability::guest: return "guest";
    case mappability::none: return "none";
    }
    return "invalid mappability";
}
/// The enumerator's name ("host", "hypervisor", "device",
/// "trusted_device"), or "invalid accessor".
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
