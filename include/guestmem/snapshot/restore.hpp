/// @file
/// Check a snapshot, and restore a full one into a fresh object
/// (docs/SNAPSHOT.md §Validation, §Restore). Everything is validated
/// before anything is created; a snapshot that fails gets an
/// invalid_argument error (not_supported for another format version)
/// whose message starts "offset N:" with the byte offset at fault, and the
/// object is untouched. Restore then builds the map (one pass, bottom-up)
/// and the folios; if the allocator or the node allocator runs out half
/// way, everything made so far is given back and the object is as it was.
///
/// Costs: O(bytes + runs + leaves + quarantined leaves · log); restore
/// takes the object's exclusive lock. The measured restore time of 10^6
/// runs is in bench/RESULTS.md (section "Claims in headers").
#pragma once

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <span>
#include <tuple>
#include <utility>

#include <guestmem/core/error.hpp>
#include <guestmem/folio/mappability.hpp>
#include <guestmem/snapshot/detail/cursors.hpp>
#include <guestmem/snapshot/detail/validate.hpp>
#include <guestmem/snapshot/format.hpp>

namespace guestmem::snapshot {

/// Validate `bytes` completely (header, checksum, every section and the
/// checks across them) without an object.
/// Errors:    as restore()'s validation: invalid_argument ("offset N: ...",
///            the first byte at fault) for malformed bytes; not_supported
///            for another format version; out_of_memory when sorting
///            quarantined leaves finds no memory.
/// Lock:      none (no object).
/// Cost:      O(bytes + runs + leaves + quarantined leaves · log).
/// Allocates: only to sort quarantined leaves, if there are any
///            (std::allocator).
[[nodiscard]] inline result<header> check(std::span<const std::uint8_t> bytes) noexcept {
    auto L = detail::validate(bytes, std::allocator<std::byte>{});
    if (!L) return L.error();
    return L.value().h;
}

/// The byte offset an error from check(), restore() or read_header()
/// names ("offset N: ..."), or SIZE_MAX for an error that names none
/// (busy, out_of_memory, an object that does not fit).
/// Errors:    none: it reads the message, it cannot fail.
/// Lock:      none.
/// Cost:      O(1) (reads at most the message's first 39 bytes).
[[nodiscard]] inline std::size_t error_offset(const error& e) noexcept {
    const auto m = e.message();
    unsigned long long at = 0;
    int used = 0;
    char buf[40] = {};
    const std::size_t n = m.size() < sizeof buf - 1 ? m.size() : sizeof buf - 1;
    for (std::size_t i = 0; i < n; ++i) buf[i] = m[i];
    if (std::sscanf(buf, "offset %llu:%n", &at, &used) == 1 && used > 0) return static_cast<std::size_t>(at);
    return SIZE_MAX;
}

namespace detail {

/// Is `mem` of the snapshot's shape (size and max order)? The object's
/// load() checks that it is fresh.
template <class Memory>
status check_shape(const Memory& mem, const header& h) noexcept {
    if (mem.size() != h.pages || mem.max_order() != h.max_order)
        return error::make(errc::invalid_argument, no_page,
                           "the snapshot is of %" PRIu64 " pages with folios up to order %u; the object has %" PRIu64
                           " pages and order %u",
                           h.pages, unsigned(h.max_order), mem.size(), unsigned(mem.max_order()));
    return ok();
}

/// Create the folios of a validated full snapshot through the folio
/// table's loader `ld` (which gives everything back on error).
template <class Loader>
status build_folios(Loader& ld, const std::uint8_t* d, const layout& L) noexcept {
    // Quarantined folios first (the table has no live top yet).
    std::size_t pos = L.quarantine_at;
    for (std::size_t i = 0; i < L.quarantine_count; ++i) {
        const page_index first = raw_varint(d, pos);
        const folio_order o = d[pos++];
        const std::size_t k = raw_varint(d, pos);
        page_index page = first;
        std::size_t j = 0;
        auto leaf = [&] {
            page = j++ == 0 ? first + raw_varint(d, pos) : page + 1 + raw_varint(d, pos);
            const folio_order lo = d[pos++];
            const auto m = static_cast<mappability>(d[pos++]);
            return std::tuple<page_index, folio_order, mappability>{page, lo, m};
        };
        if (auto s = ld.add_quarantined(first, o, k, leaf); !s) return s;
    }
    // Live folios, splits, poison; the loader's commit sets mappability.
    top_cursor tops;
    tops.start(d, L.tops_at, L.extent_count);
    split_cursor splits;
    splits.start(d, L.splits_at, L.split_count);
    for (; tops.valid; tops.next()) {
        for (page_index p = tops.first; p < tops.end; p += pages_in(tops.order)) {
            if (auto s = ld.add(p, tops.order); !s) return s;
            for (; splits.valid && splits.page < p + pages_in(tops.order); splits.next())
                if (auto s = ld.split(splits.page, splits.order); !s) return s;
        }
    }
    poison_cursor poison;
    poison.start(d, L.poison_at, L.poison_count);
    for (std::size_t i = 0; i < L.poison_count; ++i) {
        ld.poison(poison.page);
        (void)poison.any_in(poison.page + 1, poison.page + 2);
    }
    return ok();
}

} // namespace detail

/// Restore the full snapshot `bytes` into `mem`, which must be fresh: of
/// the snapshot's size and max order (header::config()), one shareability
/// run, no folio, no pin (bindings may exist: with no folio they map
/// nothing, and they are not told). Afterwards `mem` has the saved runs,
/// folios (orders, splits; frames are the allocator's new ones), poison,
/// quarantined folios and generation; saving it again gives the same
/// bytes.
/// Errors:    in this order: everything check() reports (the object
///            untouched); invalid_argument (an increment; then an object
///            not of the snapshot's shape, or not fresh); out_of_memory or
///            the allocator's error while creating (everything made is
///            given back: the object is as before).
/// Lock:      none while validating; the object's exclusive lock while it
///            loads (guest_memory::load, held throughout the build).
/// Cost:      O(bytes + runs + leaves + quarantined leaves · log).
/// Allocates: the map's nodes from the object's NodeAllocator, folios from
///            its Allocator, folio records; std::allocator to sort
///            quarantined leaves while validating.
template <class Memory>
status restore(Memory& mem, std::span<const std::uint8_t> bytes) {
    auto Lr = detail::validate(bytes, std::allocator<std::byte>{});
    if (!Lr) return Lr.error();
    const detail::layout& L = Lr.value();
    if (L.h.kind != kind::full)
        return error::make(errc::invalid_argument, no_page, "offset 5: an increment cannot be restored on its own; "
                                                            "restore a full snapshot, then apply_increment");
    if (auto s = detail::check_shape(mem, L.h); !s) return s;
    detail::run_cursor runs;
    runs.start(bytes.data(), L.runs_at, L.run_count, L.first_value);
    bool first = true;
    auto next = [&] {
        if (!first) runs.next();
        first = false;
        return std::pair<page_index, shareability>{runs.end - runs.begin, runs.value};
    };
    return mem.load(L.run_count, next, [&](auto& ld) { return detail::build_folios(ld, bytes.data(), L); }, L.h.generation);
}

} // namespace guestmem::snapshot
