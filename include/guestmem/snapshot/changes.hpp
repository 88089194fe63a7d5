/// @file
/// Migration tracking (docs/SNAPSHOT.md §Migration): an object's
/// generation (guest_memory::generation()) rises with every conversion
/// that changes something, and a bounded log inside the object keeps the
/// ranges converted, newest last (128 entries; a conversion touching the
/// newest entry's range widens it instead of taking one). Here:
/// for_each_change() visits the current runs of every range converted
/// since a generation G, save_increment() writes them as an increment, and
/// apply_increment() converts a restored object forward. Cost: O(k log k +
/// runs in the changed ranges) for k log entries, never O(object). When G
/// is older than what the log still holds, the answer is not_supported:
/// save a full snapshot instead. Increments carry shareability only: the
/// destination's folios split and merge as its own conversions make them.
/// Generations compare modulo 2^64 (serial numbers, memory/detail/
/// change_log.hpp): an object restored at 2^64 - 1 goes to 0 on its next
/// conversion, and increments from 2^64 - 1 keep working.
/// A page poisoned or quarantined after G also raises the generation and
/// makes every walk from G not_supported (save a full snapshot): an
/// increment never silently drops poison.
#pragma once

#include <algorithm>
#include <cinttypes>
#include <mutex>
#include <shared_mutex>
#include <span>

#include <guestmem/memory/change_log.hpp>
#include <guestmem/snapshot/detail/validate.hpp>
#include <guestmem/snapshot/save.hpp>

namespace guestmem::snapshot {

namespace detail {

/// The ranges converted since `since`, sorted and merged (touching ones
/// joined) into `out` (capacity: the log's); their count. `log`: the
/// object's change log, read under its lock.
inline result<std::size_t> changed_ranges(const change_log& log, std::uint64_t since, page_range* out) noexcept {
    if (log.in_future(since))
        return error::make(errc::invalid_argument, no_page, "generation %" PRIu64 " is in the future (the object is at %" PRIu64 ")",
                           since, log.generation());
    if (!log.covers(since))
        return error::make(errc::not_supported, no_page,
                           "generation %" PRIu64 " is older than the change log (it keeps the changes after %" PRIu64
                           "): save a full snapshot",
                           since, log.floor());
    if (log.poisoned_since(since))
        return error::make(errc::not_supported, no_page,
                           "a page was poisoned or quarantined at generation %" PRIu64 ", after %" PRIu64
                           ": increments carry shareability only, save a full snapshot",
                           log.last_poison(), since);
    std::size_t n = 0;
    log.for_each_since(since, [&](page_range r) { out[n++] = r; });
    std::sort(out, out + n, [](page_range a, page_range b) { return a.begin < b.begin; });
    std::size_t m = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (m != 0 && out[i].begin <= out[m - 1].end)
            out[m - 1].end = std::max(out[m - 1].end, out[i].end);
        else
            out[m++] = out[i];
    }
    return m;
}

} // namespace detail

/// Visit the current runs of every range whose shareability changed
/// since generation `since`, clipped to those ranges, in page order:
/// f(const run<shareability>&). Runs that a conversion changed and a later
/// one changed back are visited too (with their current value).
/// Errors:    in this order, at no_page, before `f` is called:
///            invalid_argument (`since` past the object's generation, in
///            serial order modulo 2^64);
///            not_supported (`since` older than the log holds; or a page
///            poisoned or quarantined after `since`: save a full snapshot).
/// Lock:      the object's, shared, held while f runs (f must not call
///            into the object).
/// Cost:      O(k log k + runs visited), k <= 128 log entries.
/// Allocates: nothing (the ranges are sorted in a stack array).
template <class Memory, class F>
status for_each_change(const Memory& mem, std::uint64_t since, F&& f) {
    const auto guard = mem.lock_shared();
    const auto v = mem.locked(guard);
    page_range ranges[change_log::capacity];
    auto n = detail::changed_ranges(v.changes(), since, ranges);
    if (!n) return n.error();
    for (std::size_t i = 0; i < n.value(); ++i)
        for (const auto& r : v.shareability_map().runs(ranges[i])) f(r);
    return ok();
}

/// Save what changed since generation `since` as an increment
/// (docs/SNAPSHOT.md §Increment) to `sink` (as save()). Pins are no
/// obstacle: only shareability is saved.
/// Errors:    in this order: those of for_each_change(); out_of_memory
///            (no_page) when the sink refuses.
/// Lock:      the object's, shared, held throughout (sink calls included).
/// Cost:      O(k log k + runs in the changed ranges), two passes.
/// Allocates: nothing (a 4 KiB staging buffer on the stack).
template <class Memory, class Sink>
    requires std::is_invocable_r_v<bool, Sink&, const std::uint8_t*, std::size_t>
result<std::size_t> save_increment(const Memory& mem, std::uint64_t since, Sink&& sink) {
    const auto guard = mem.lock_shared();
    const auto v = mem.locked(guard);
    page_range ranges[change_log::capacity];
    auto n = detail::changed_ranges(v.changes(), since, ranges);
    if (!n) return n.error();
    const auto& map = v.shareability_map();
    auto body = [&](auto& w) {
        std::uint64_t count = 0;
        for (std::size_t i = 0; i < n.value(); ++i) count += std::ranges::distance(map.runs(ranges[i]));
        w.varint(count);
        page_index end = 0;
        for (std::size_t i = 0; i < n.value(); ++i)
            for (const auto& r : map.runs(ranges[i])) {
                w.varint(r.range.begin - end);
                w.varint(r.range.size());
                w.byte(static_cast<std::uint8_t>(r.value));
                end = r.range.end;
            }
    };
    return detail::emit(sink, SIZE_MAX, kind::increment, mem.size(), mem.max_order(),
                        v.changes().generation(), since, body);
}

/// The size of the increment save_increment(mem, since, ...) would write
/// now (the state may change before the save unless the caller keeps other
/// threads out).
/// Errors:    those of for_each_change().
/// Lock:      the object's, shared.
/// Cost:      O(k log k + runs in the changed ranges).
/// Allocates: nothing.
template <class Memory>
result<std::size_t> increment_size(const Memory& mem, std::uint64_t since) {
    return save_increment(mem, since, [](const std::uint8_t*, std::size_t) noexcept { return true; });
}

/// Save what changed since generation `since` as an increment into `out`;
/// returns the bytes used.
/// Errors:    in this order: those of for_each_change(); invalid_argument
///            (no_page) when `out` is too small (its contents are then
///            unspecified; the message says the size needed: see
///            increment_size()).
/// Lock:      the object's, shared, for each pass (a too-small `out` takes
///            it again to measure: not held in between).
/// Cost:      O(k log k + runs in the changed ranges).
/// Allocates: nothing.
template <class Memory>
result<std::size_t> save_increment(const Memory& mem, std::uint64_t since, std::span<std::uint8_t> out) {
    detail::bounded_sink sink{out.data(), out.data() + out.size()};
    auto n = save_increment(mem, since, sink);
    if (n || n.error().code() != errc::out_of_memory) return n;
    const auto need = increment_size(mem, since);
    return error::make(errc::invalid_argument, no_page, "the increment needs %zu bytes; the buffer holds %zu",
                       need ? need.value() : std::size_t{0}, out.size());
}

/// Apply the increment `bytes` to `mem`, which must be at the increment's
/// base generation (restored from the full snapshot it follows, or from
/// the previous increment): every change is validated first, then the
/// pages whose shareability differs are converted with convert(), so
/// consumers are told and folios split or merge as usual (pages already
/// right, a poisoned one among them, are left alone); `mem` ends at the
/// increment's generation. Call it while no other thread converts `mem`.
/// Errors:    in this order: everything check() reports (nothing changed);
///            invalid_argument (a full snapshot, then another size, then
///            another generation than the base; nothing changed); any error
///            of convert() (busy, vetoed, out_of_memory...), with the
///            changes before it made and `mem` left at the base generation
///            (its change log emptied), so applying the same increment
///            again is safe.
/// Lock:      none held across the call: the object's shared lock while it
///            reads which pages of a change differ (released before the
///            conversion), convert()'s exclusive lock for each conversion
///            (consumer callbacks under it), and the exclusive lock to set
///            the generation (restart_generation).
/// Cost:      O(bytes + conversions), plus two map lookups per part it
///            converts and each convert()'s cost.
/// Allocates: as convert() for each conversion; std::allocator to sort
///            quarantined leaves while validating (an increment has none).
template <class Memory>
status apply_increment(Memory& mem, std::span<const std::uint8_t> bytes) {
    auto Lr = detail::validate(bytes, std::allocator<std::byte>{});
    if (!Lr) return Lr.error();
    const detail::layout& L = Lr.value();
    if (L.h.kind != kind::increment)
        return error::make(errc::invalid_argument, no_page, "offset 5: a full snapshot is restored, not applied as an increment");
    if (L.h.pages != mem.size())
        return error::make(errc::invalid_argument, no_page, "the increment is of %" PRIu64 " pages; the object has %" PRIu64,
                           L.h.pages, mem.size());
    if (const auto g = mem.generation(); g != L.h.base_generation)
        return error::make(errc::invalid_argument, no_page,
                           "the increment applies on top of generation %" PRIu64 "; the object is at %" PRIu64,
                           L.h.base_generation, g);
    std::size_t pos = L.changes_at;
    page_index end = 0;
    for (std::size_t i = 0; i < L.change_count; ++i) {
        const page_index b = end + detail::raw_varint(bytes.data(), pos);
        end = b + detail::raw_varint(bytes.data(), pos);
        const auto v = static_cast<shareability>(bytes[pos++]);
        // Convert only the pages that differ: a run of the increment may
        // span a poisoned page it did not change (a poisoned page never
        // changes shareability, so source and destination agree on it).
        const shareability other = v == shareability::shared ? shareability::guest_only : shareability::shared;
        for (page_index p = b; p < end;) {
            page_index q, e;
            {
                const auto guard = mem.lock_shared();  // released before convert takes the lock
                const auto& map = mem.locked(guard).shareability_map();
                q = map.find_first_not({p, end}, v);
                if (q == no_page) break;
                e = std::min(end, map.find_first_not({q, end}, other));
            }
            if (auto s = mem.convert({q, e}, v); !s) {
                mem.restart_generation(L.h.base_generation);  // still at the base: retry is safe
                return s;
            }
            p = e;
        }
    }
    mem.restart_generation(L.h.generation);
    return ok();
}

} // namespace guestmem::snapshot
