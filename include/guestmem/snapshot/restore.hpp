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

#include <guestmem/snapshot/detail/access.hpp>
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

using internals = guestmem::detail::snapshot_internals;

/// Is `mem` fresh enough to restore into: one run, no folio, no pin?
template <class Memory>
status check_fresh(Memory& mem, const header& h) noexcept {
    if (mem.size() != h.pages || mem.max_order() != h.max_order)
        return error::make(errc::invalid_argument, no_page,
                           "the snapshot is of %" PRIu64 " pages with folios up to order %u; the object has %" PRIu64
                           " pages and order %u",
                           h.pages, unsigned(h.max_order), mem.size(), unsigned(mem.max_order()));
    const auto& f = internals::folios(mem);
    const auto c = f.stats();
    if (c.top_folios != 0 || !internals::detached(f).empty() || internals::pin_runs(f) != 0 ||
        internals::shares(mem).run_count() != 1)
        return error::make(errc::invalid_argument, no_page,
                           "restore needs a fresh object (one run, no folio, no pin); this one has %zu runs and %" PRIu64
                           " allocated pages", internals::shares(mem).run_count(), c.allocated_pages);
    return ok();
}

/// Create the folios of a validated full snapshot. On error the caller
/// drops everything made.
template <class Memory>
status build_folios(Memory& mem, const std::uint8_t* d, const layout& L) noexcept {
    auto& f = internals::folios(mem);
    auto& map = internals::shares(mem);
    // Quarantined folios first (the table has no live top yet).
    std::size_t pos = L.quarantine_at;
    for (std::size_t i = 0; i < L.quarantine_count; ++i) {
        const page_index first = raw_varint(d, pos);
        const folio_order o = d[pos++];
        const std::size_t k = raw_varint(d, pos);
        auto t = internals::make_top(f, first, o);
        if (!t) return t.error();
        page_index page = first;
        for (std::size_t j = 0; j < k; ++j) {
            page = j == 0 ? first + raw_varint(d, pos) : page + 1 + raw_varint(d, pos);
            const folio_order lo = d[pos++];
            const auto m = static_cast<mappability>(d[pos++]);
            guestmem::detail::folio_ref x = t.value()->ref();
            while (x.order > lo) {
                if (!x.split())
                    if (auto s = internals::split(f, x); !s) return s;
                x = x.child((page - x.first) >> next_lower_order(x.order));
            }
            f.poison(page);
            x.set_map(m);
        }
        internals::detach_last(f);
    }
    // Live folios, splits, poison; then every leaf's mappability.
    top_cursor tops;
    tops.start(d, L.tops_at, L.extent_count);
    split_cursor splits;
    splits.start(d, L.splits_at, L.split_count);
    for (; tops.valid; tops.next()) {
        for (page_index p = tops.first; p < tops.end; p += pages_in(tops.order)) {
            auto t = internals::make_top(f, p, tops.order);
            if (!t) return t.error();
            for (; splits.valid && splits.page < p + pages_in(tops.order); splits.next()) {
                const auto x = internals::record(*t.value(), splits.page, splits.order);
                if (auto s = internals::split(f, x); !s) return s;
            }
        }
    }
    poison_cursor poison;
    poison.start(d, L.poison_at, L.poison_count);
    for (std::size_t i = 0; i < L.poison_count; ++i) {
        f.poison(poison.page);
        (void)poison.any_in(poison.page + 1, poison.page + 2);
    }
    run_cursor runs;
    runs.start(d, L.runs_at, L.run_count, L.first_value);
    (void)map;
    for (const auto& t : internals::tops(f)) {
        auto set = [&](auto& self, const guestmem::detail::folio_ref& x) -> void {
            if (x.split()) {
                for (std::uint32_t i = 0; i < guestmem::detail::split_fanout; ++i) self(self, x.child(i));
                return;
            }
            runs.seek(x.first);
            x.set_map(runs.value == shareability::shared ? mappability::all : mappability::guest);
        };
        set(set, t.ref());
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
/// Lock:      the object's, exclusive, held throughout.
/// Cost:      O(bytes + runs + leaves + quarantined leaves · log).
/// Allocates: the map's nodes from the object's NodeAllocator, folios from
///            its Allocator, folio records; std::allocator to sort
///            quarantined leaves while validating.
template <class Memory>
status restore(Memory& mem, std::span<const std::uint8_t> bytes) {
    std::unique_lock guard(detail::internals::lock(mem));
    auto Lr = detail::validate(bytes, std::allocator<std::byte>{});
    if (!Lr) return Lr.error();
    const detail::layout& L = Lr.value();
    if (L.h.kind != kind::full)
        return error::make(errc::invalid_argument, no_page, "offset 5: an increment cannot be restored on its own; "
                                                            "restore a full snapshot, then apply_increment");
    if (auto s = detail::check_fresh(mem, L.h); !s) return s;
    auto& map = detail::internals::shares(mem);
    const shareability before = map.at(0);
    detail::run_cursor runs;
    runs.start(bytes.data(), L.runs_at, L.run_count, L.first_value);
    bool first = true;
    auto next = [&] {
        if (!first) runs.next();
        first = false;
        return std::pair<page_index, shareability>{runs.end - runs.begin, runs.value};
    };
    if (auto s = map.load(L.run_count, next); !s) return s;
    auto& f = detail::internals::folios(mem);
    if (auto s = detail::build_folios(mem, bytes.data(), L); !s) {
        detail::internals::drop_all(f);
        auto one = [&] { return std::pair<page_index, shareability>{mem.size(), before}; };
        (void)map.load(1, one);  // one run needs no node: cannot fail
        return s;
    }
    detail::internals::poison_events(mem) += L.poison_count + L.quarantine_count;
    detail::internals::changes(mem).reset(L.h.generation);
    return ok();
}

} // namespace guestmem::snapshot
