/// @file
/// The half-open page range [begin, end) and its validation. Every public
/// entry point validates its ranges here first, so bad input is refused
/// with one consistent message before anything is touched. Every function
/// here is O(1), takes no lock and never allocates (an error's message is
/// formatted into the error itself).
#pragma once

#include <algorithm>
#include <cinttypes>
#include <cstdint>

#include <guestmem/core/error.hpp>
#include <guestmem/core/types.hpp>

namespace guestmem {

/// Half-open [begin, end) of page indices. A plain aggregate: any two
/// values make one, and an empty (begin == end) or inverted (begin > end)
/// range is representable; check_range refuses both as input.
struct page_range {
    page_index begin = 0;  ///< first page in the range
    page_index end = 0;    ///< one past the last page

    /// Number of pages; 0 for an empty or inverted range.
    [[nodiscard]] constexpr std::uint64_t size() const noexcept { return end > begin ? end - begin : 0; }
    /// True when the range holds no page (end <= begin, inverted included).
    [[nodiscard]] constexpr bool empty() const noexcept { return end <= begin; }
    /// True when page `p` lies in [begin, end).
    [[nodiscard]] constexpr bool contains(page_index p) const noexcept { return p >= begin && p < end; }
    /// True when `r` lies inside this range (bounds compared only: an empty
    /// `r` between begin and end counts as contained).
    [[nodiscard]] constexpr bool contains(const page_range& r) const noexcept {
        return r.begin >= begin && r.end <= end;
    }
    /// True when the two ranges share at least one page (never for an empty one).
    [[nodiscard]] constexpr bool overlaps(const page_range& r) const noexcept {
        return r.begin < end && begin < r.end;
    }
    /// Intersection; empty (begin == end) when the ranges do not overlap.
    [[nodiscard]] constexpr page_range intersect(const page_range& r) const noexcept {
        const page_index b = std::max(begin, r.begin);
        const page_index e = std::min(end, r.end);
        return b < e ? page_range{b, e} : page_range{b, b};
    }
    /// Same begin and same end (two empty ranges at different pages differ).
    friend constexpr bool operator==(const page_range&, const page_range&) noexcept = default;
};

/// A range of `count` pages starting at `first`. Errors (invalid_range, at
/// `first`): `count` is 0; `first + count` would wrap past 2^64 (a range
/// ending exactly at 2^64 - 1 is the largest allowed).
[[nodiscard]] inline result<page_range> make_range(page_index first, std::uint64_t count) noexcept {
    if (count == 0)
        return error::make(errc::invalid_range, first, "range of 0 pages at %#" PRIx64 " is empty", first);
    if (first > UINT64_MAX - count)
        return error::make(errc::invalid_range, first,
                           "range of %#" PRIx64 " pages at %#" PRIx64 " overflows past 2^64", count, first);
    return page_range{first, first + count};
}

/// A page range from a byte offset and length (as fallocate takes them).
/// Errors (invalid_range, at page offset / 4 KiB): offset or length not a
/// multiple of the base page size; offset + length past 2^64 (a range
/// ending exactly at 2^64, the last page of the byte space, is fine: its
/// pages end at 2^52); length 0 (make_range's "range of 0 pages" message).
[[nodiscard]] inline result<page_range> range_from_bytes(std::uint64_t offset, std::uint64_t length) noexcept {
    if (offset % page_size != 0 || length % page_size != 0)
        return error::make(errc::invalid_range, offset / page_size,
                           "byte range at %#" PRIx64 " of length %#" PRIx64 " is not aligned to %" PRIu64
                           "-byte pages",
                           offset, length, page_size);
    // In pages: the byte space has 2^52 of them, and first < 2^52, so the
    // room left after `first` is computed without wrapping.
    const page_index first = offset / page_size;
    const std::uint64_t count = length / page_size;
    if (count > (UINT64_MAX >> page_shift) - first + 1)
        return error::make(errc::invalid_range, first,
                           "byte range at %#" PRIx64 " of length %#" PRIx64 " overflows past 2^64", offset, length);
    return make_range(first, count);
}

namespace detail {
/// The errors check_range and check_page return, built out of line: the
/// checks stay two comparisons, always inlined. (Left to itself GCC stops
/// inlining them into a large caller such as guest_memory::convert once a
/// translation unit instantiates it several times, and every call then
/// returns a 190-byte status through memory.)
[[gnu::cold, gnu::noinline]] inline error range_error(page_range r, page_index limit) noexcept {
    if (r.begin > r.end)
        return error::make(errc::invalid_range, r.begin, "range [%#" PRIx64 ", %#" PRIx64 ") is inverted", r.begin,
                           r.end);
    if (r.begin == r.end)
        return error::make(errc::invalid_range, r.begin, "range [%#" PRIx64 ", %#" PRIx64 ") is empty", r.begin,
                           r.end);
    return error::make(errc::invalid_range, std::max(r.begin, limit),
                       "range [%#" PRIx64 ", %#" PRIx64 ") ends past the object's %#" PRIx64 " pages", r.begin, r.end,
                       limit);
}
[[gnu::cold, gnu::noinline]] inline error page_error(page_index p, page_index limit) noexcept {
    return error::make(errc::invalid_range, p, "page %#" PRIx64 " is past the object's %#" PRIx64 " pages", p, limit);
}
} // namespace detail

/// Validate `r` against an object of `limit` pages. Errors (invalid_range):
/// `r` inverted or empty (at r.begin), or ending past `limit` (at
/// max(r.begin, limit), the first page outside the object). The message
/// names the caller's range. Always inlined: two comparisons on success,
/// the error built out of line.
[[nodiscard, gnu::always_inline]] inline status check_range(const page_range& r, page_index limit) noexcept {
    if (r.begin < r.end && r.end <= limit) return ok();
    return detail::range_error(r, limit);
}

/// Validate `r` and require both ends aligned to `order` (for APIs that work
/// on whole folios). Errors, in this order: check_range's; invalid_argument
/// (at r.begin) for an order above max_supported_order (from order 64 on,
/// 2^order pages would not even fit in 64 bits); invalid_range at the first
/// unaligned end (r.begin if it is unaligned, else r.end).
[[nodiscard]] inline status check_aligned_range(const page_range& r, page_index limit, folio_order order) noexcept {
    if (auto s = check_range(r, limit); !s) return s;
    if (order > max_supported_order)
        return error::make(errc::invalid_argument, r.begin, "folio order %u is larger than the largest order %u",
                           unsigned{order}, unsigned{max_supported_order});
    if (!is_aligned(r.begin, order) || !is_aligned(r.end, order))
        return error::make(errc::invalid_range, is_aligned(r.begin, order) ? r.end : r.begin,
                           "range [%#" PRIx64 ", %#" PRIx64 ") is not aligned to order-%u folios (%" PRIu64 " pages)",
                           r.begin, r.end, unsigned{order}, pages_in(order));
    return ok();
}

/// Validate a single page against an object of `limit` pages. Error:
/// invalid_range at `p` when `p >= limit`. Always inlined, like check_range.
[[nodiscard, gnu::always_inline]] inline status check_page(page_index p, page_index limit) noexcept {
    if (p < limit) return ok();
    return detail::page_error(p, limit);
}

} // namespace guestmem
