// tests/fuzz/snapshot_check.hpp — the differential harness's save/restore
// check (harness.hpp calls it after one full check in sixteen): when the object holds no
// pin, save it, check the bytes, restore them into a fresh object of the
// same policies and compare everything observable but frames (runs,
// leaves with mappability and poison, quarantined folios, state counters,
// generation), then save the restored object: the bytes must be the same.
// The original was just checked against the reference model, so the
// restored object equals the model too. With pins, save must be refused
// with busy naming a pinned page.
#pragma once

#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/snapshot/snapshot.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <tuple>
#include <vector>

namespace guestmem::fuzz {

struct snapshot_view {
    std::vector<std::tuple<page_index, page_index, shareability>> runs;
    std::vector<std::tuple<page_index, folio_order, folio_order, mappability, bool, page_index>> leaves;
    std::vector<std::tuple<page_index, folio_order, bool, bool>> detached;
    std::vector<std::uint64_t> counters;
    std::uint64_t generation = 0;
    friend bool operator==(const snapshot_view&, const snapshot_view&) = default;
};

template <class Mem>
snapshot_view view_for_snapshot(const Mem& m) {
    snapshot_view s;
    {
        const auto guard = m.lock_shared();
        const auto parts = m.locked(guard);
        for (const auto& r : parts.shareability_map().runs({0, m.size()})) s.runs.emplace_back(r.range.begin, r.range.end, r.value);
        parts.folios().for_each_folio({0, m.size()}, [&](const folio_view& v) {
            s.leaves.emplace_back(v.first, v.order, v.top_order, v.mappability, v.poisoned, v.poison_page);
        });
        parts.folios().for_each_detached([&](page_index f, folio_order o, frame_number, bool p, bool q) { s.detached.emplace_back(f, o, p, q); });
    }
    const auto st = m.stats();
    s.counters = {st.shared_pages, st.runs, st.allocated_pages, st.folios_4k, st.folios_2m, st.folios_1g, st.split_folios,
                  st.poisoned_folios, st.quarantined_pages, st.detached_pages};
    s.generation = m.generation();
    return s;
}

/// Save, check, restore, compare, save again. Returns a complaint or nullptr.
template <class Mem, class MakeFresh>
const char* snapshot_round_trip(const Mem& mem, MakeFresh&& make_fresh) {
    std::vector<std::uint8_t> first;
    auto sink = [&](const std::uint8_t* p, std::size_t n) {
        first.insert(first.end(), p, p + n);
        return true;
    };
    auto saved = snapshot::save(mem, sink);
    if (mem.stats().pinned_pages != 0) {
        if (saved || saved.error().code() != errc::busy || mem.pins(saved.error().page()) == 0)
            return "save of an object holding pins was not refused with busy naming a pinned page";
        return nullptr;
    }
    if (!saved) return "save failed on an object without pins";
    if (!snapshot::check(first)) return "check refused a snapshot save wrote";
    return make_fresh([&](auto& fresh) -> const char* {
        if (auto s = snapshot::restore(fresh, first); !s) {
            std::fprintf(stderr, "restore: %.*s\n", int(s.error().message().size()), s.error().message().data());
            return "restore of a valid snapshot failed";
        }
        if (!(view_for_snapshot(fresh) == view_for_snapshot(mem))) return "the restored object differs from the saved one";
        std::vector<std::uint8_t> second;
        auto r = snapshot::save(fresh, [&](const std::uint8_t* p, std::size_t n) {
            second.insert(second.end(), p, p + n);
            return true;
        });
        if (!r || second != first) return "saving the restored object gave other bytes";
        return nullptr;
    });
}

/// A maker of a fresh object shaped like `mem` (simulated allocator, no
/// lock), for snapshot_round_trip.
template <class Mem>
auto fresh_object(const Mem& mem) {
    return [&mem](auto&& use) {
        simulated_allocator alloc;
        guest_memory<simulated_allocator, consumer, null_lock> fresh(
            alloc, {.pages = mem.size(), .initial = shareability::guest_only, .max_order = mem.max_order()});
        return use(fresh);
    };
}

} // namespace guestmem::fuzz
