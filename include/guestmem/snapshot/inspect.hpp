/// @file
/// A readable listing of a snapshot (what `guestmem-snap show` prints):
/// the header, then each section's entries in page terms, at most
/// `max_items` per section (0: all). The snapshot is checked first, so
/// only a valid one is listed. O(bytes) plus the output; the stream may
/// allocate, nothing else does.
#pragma once

#include <cinttypes>
#include <cstdio>
#include <ostream>
#include <span>

#include <guestmem/snapshot/detail/cursors.hpp>
#include <guestmem/snapshot/detail/validate.hpp>

namespace guestmem::snapshot {

/// Check `bytes` (as check()) and write a readable listing to `os`, at
/// most `max_items` entries per section (0: all).
/// Errors:    those of check() (then nothing is written).
/// Lock:      none (no object).
/// Cost:      O(bytes) plus the output.
/// Allocates: what check() does, and whatever `os` does.
inline status inspect(std::span<const std::uint8_t> bytes, std::ostream& os, std::size_t max_items = 32) {
    auto Lr = detail::validate(bytes, std::allocator<std::byte>{});
    if (!Lr) return Lr.error();
    const detail::layout& L = Lr.value();
    const std::uint8_t* d = bytes.data();
    char line[200];
    auto put = [&](const char* fmt, auto... args) {
        std::snprintf(line, sizeof line, fmt, args...);
        os << line << '\n';
    };
    auto cut = [&](std::size_t i, std::size_t n) {
        if (max_items == 0 || i < max_items) return false;
        put("  ... %zu more", n - i);
        return true;
    };
    put("guestmem snapshot, format %u, %s: %zu bytes", unsigned(L.h.version),
        L.h.kind == kind::full ? "full" : "increment", bytes.size());
    put("object: %" PRIu64 " pages (%" PRIu64 " MiB), max folio order %u, generation %" PRIu64, L.h.pages, L.h.pages >> 8,
        unsigned(L.h.max_order), L.h.generation);
    std::size_t pos = 0;
    if (L.h.kind == kind::increment) {
        put("applies on top of generation %" PRIu64 "; %zu changed runs:", L.h.base_generation, L.change_count);
        pos = L.changes_at;
        page_index end = 0;
        for (std::size_t i = 0; i < L.change_count && !cut(i, L.change_count); ++i) {
            const page_index b = end + detail::raw_varint(d, pos);
            end = b + detail::raw_varint(d, pos);
            put("  [%#" PRIx64 ", %#" PRIx64 ") %s", b, end, d[pos++] == 0 ? "shared" : "guest_only");
        }
        return ok();
    }
    put("runs: %zu (%.2f bytes per run in the snapshot)", L.run_count, double(bytes.size()) / double(L.run_count));
    detail::run_cursor runs;
    runs.start(d, L.runs_at, L.run_count, L.first_value);
    for (std::size_t i = 0; runs.valid && !cut(i, L.run_count); ++i, runs.next())
        put("  [%#" PRIx64 ", %#" PRIx64 ") %s", runs.begin, runs.end, runs.value == shareability::shared ? "shared" : "guest_only");
    put("folios: %zu extents", L.extent_count);
    detail::top_cursor tops;
    tops.start(d, L.tops_at, L.extent_count);
    for (std::size_t i = 0; tops.valid && !cut(i, L.extent_count); ++i, tops.next())
        put("  [%#" PRIx64 ", %#" PRIx64 ") %" PRIu64 " x order %u", tops.first, tops.end, (tops.end - tops.first) >> tops.order,
            unsigned(tops.order));
    put("split folios: %zu", L.split_count);
    detail::split_cursor splits;
    splits.start(d, L.splits_at, L.split_count);
    for (std::size_t i = 0; splits.valid && !cut(i, L.split_count); ++i, splits.next())
        put("  order %u at %#" PRIx64 " into order %u", unsigned(splits.order), splits.page,
            unsigned(next_lower_order(splits.order)));
    put("poisoned leaves: %zu", L.poison_count);
    pos = L.poison_at;
    page_index page = 0;
    for (std::size_t i = 0; i < L.poison_count && !cut(i, L.poison_count); ++i) {
        page = i == 0 ? detail::raw_varint(d, pos) : page + 1 + detail::raw_varint(d, pos);
        put("  page %#" PRIx64, page);
    }
    put("quarantined folios: %zu", L.quarantine_count);
    pos = L.quarantine_at;
    for (std::size_t i = 0; i < L.quarantine_count && !cut(i, L.quarantine_count); ++i) {
        const page_index first = detail::raw_varint(d, pos);
        const unsigned o = d[pos++];
        const std::size_t k = detail::raw_varint(d, pos);
        put("  order %u at %#" PRIx64 ", %zu poisoned leaves:", o, first, k);
        page = first;
        for (std::size_t j = 0; j < k; ++j) {
            page = j == 0 ? first + detail::raw_varint(d, pos) : page + 1 + detail::raw_varint(d, pos);
            const unsigned lo = d[pos++];
            const unsigned m = d[pos++];
            put("    page %#" PRIx64 " (order-%u leaf, mappability %s)", page, lo, m == 0 ? "all" : m == 1 ? "guest" : "none");
        }
    }
    return ok();
}

} // namespace guestmem::snapshot
