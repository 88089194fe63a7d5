/// @file
/// Check a snapshot, and restore a full one into a fresh object
/// (docs/SNAPSHOT.md §Validation, §Restore). A snapshot that fails gets an
/// invalid_argument error (not_supported for another format version)
/// whose message starts "offset N:" with the byte offset at fault, and the
/// object is as it was. Restore reads the run lengths once: each is
/// checked as the map's dense chunks are built from it (range_map::load),
/// and a bad one stops the load before the map changes; the other sections
/// are checked before any folio is made; a failure after the map was
/// loaded puts it back. Any failure then runs check()'s validation over
/// the bytes to report the error check() would (the error path reads the
/// bytes twice; the success path once). If the allocator or the node
/// allocator runs out half way, everything made so far is given back.
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

inline error increment_alone() noexcept {
    return error::make(errc::invalid_argument, no_page, "offset 5: an increment cannot be restored on its own; "
                                                        "restore a full snapshot, then apply_increment");
}

/// restore()'s run source: each run length checked as the map is built
/// from it (run_length(), the check check_runs() makes; a bad one yields
/// length 0, which stops the load, the map unchanged). Its state is held
/// by value, so the map's load, which calls a copy, keeps it in registers;
/// where the lengths end and the pages they cover are written out.
struct checked_runs {
    const std::uint8_t* d;
    std::size_t at, end;
    page_index pages, sum;
    shareability value;  // the previous run's
    std::size_t* end_at;
    page_index* covered;

    std::pair<page_index, shareability> operator()() noexcept {
        const std::uint64_t len = run_length(d, at, end, pages - sum);  // 0: bad, the load stops
        sum += len;
        value = value == shareability::shared ? shareability::guest_only : shareability::shared;
        *end_at = at;
        *covered = sum;
        return {len, value};
    }
};

/// restore()'s single pass: the header and checksum; the shape; then,
/// under the object's lock (guest_memory::load), each run length checked
/// as the map is built from it (checked_runs), then the sections after
/// the runs and the checks across sections, then the folios. Any error
/// leaves the object as it was but may not be the one check() reports
/// first: restore() words that.
template <class Memory>
status restore_one_pass(Memory& mem, std::span<const std::uint8_t> bytes) {
    auto hr = read_header(bytes);
    if (!hr) return hr.error();
    layout L;
    L.h = hr.value();
    if (L.h.kind != kind::full) return increment_alone();
    if (auto s = check_shape(mem, L.h); !s) return s;
    const std::uint8_t* d = bytes.data();
    const std::size_t body_end = L.h.body_offset + L.h.body_size;
    reader in(d, body_end);
    in.seek(L.h.body_offset);
    if (auto s = check_runs_start(in, L); !s) return s;
    std::size_t at = L.runs_at;
    page_index sum = 0;
    checked_runs next{d, L.runs_at, body_end, L.h.pages, 0,
                      L.first_value == shareability::shared ? shareability::guest_only : shareability::shared, &at, &sum};
    auto build = [&](auto& ld) -> status {
        if (auto s = check_runs_cover(at, sum, L); !s) return s;
        in.seek(at);
        if (auto s = check_after_runs(in, L, std::allocator<std::byte>{}); !s) return s;
        return build_folios(ld, d, L);
    };
    return mem.load(L.run_count, next, build, L.h.generation);
}

} // namespace detail

/// Restore the full snapshot `bytes` into `mem`, which must be fresh: of
/// the snapshot's size and max order (header::config()), one shareability
/// run, no folio, no pin (bindings may exist: with no folio they map
/// nothing, and they are not told). Afterwards `mem` has the saved runs,
/// folios (orders, splits; frames are the allocator's new ones), poison,
/// quarantined folios and generation; saving it again gives the same
/// bytes.
/// Errors:    in this order: everything check() reports, as check()
///            reports it; invalid_argument (an increment; then an object
///            not of the snapshot's shape, or not fresh); out_of_memory or
///            the allocator's error while creating. The object is as
///            before whatever the error (what was made is given back).
/// Lock:      none while reading the header and checksum; the object's
///            exclusive lock while it checks the body and loads
///            (guest_memory::load, held throughout).
/// Cost:      O(bytes + runs + leaves + quarantined leaves · log); each
///            run length is decoded once (twice when restore fails).
/// Allocates: the map's nodes from the object's NodeAllocator, folios from
///            its Allocator, folio records; std::allocator to sort
///            quarantined leaves while validating.
template <class Memory>
status restore(Memory& mem, std::span<const std::uint8_t> bytes) {
    status s = detail::restore_one_pass(mem, bytes);
    if (s) return s;
    // The object is as it was. Report what the checks, in their documented
    // order, find first: a malformed byte before the kind, the shape or
    // the object's state, as check() words it.
    auto Lr = detail::validate(bytes, std::allocator<std::byte>{});
    if (!Lr) return Lr.error();
    if (Lr.value().h.kind != kind::full) return detail::increment_alone();
    if (auto shape = detail::check_shape(mem, Lr.value().h); !shape) return shape;
    return s;  // not fresh, out of memory, the allocator's error
}

} // namespace guestmem::snapshot
