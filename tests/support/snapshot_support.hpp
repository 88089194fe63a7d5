// tests/support/snapshot_support.hpp — what the snapshot tests share: the
// observable state of an object without its frames (a restore gets new
// ones), a byte sink into a vector, a random history of every state-
// changing call, and a builder of hand-made snapshots (header, body,
// checksum) whose offsets the rejection tests assert.
#pragma once

#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/snapshot/snapshot.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <cstdint>
#include <random>
#include <tuple>
#include <vector>

namespace guestmem::test_support {

using bytes = std::vector<std::uint8_t>;

/// What a restore must reproduce: runs, leaves (no frames), quarantined
/// folios, the state counters and the generation.
struct snap_state {
    std::vector<std::tuple<page_index, page_index, shareability>> runs;
    std::vector<std::tuple<page_index, folio_order, folio_order, mappability, bool, page_index>> leaves;
    std::vector<std::tuple<page_index, folio_order, bool, bool>> detached;
    std::vector<std::uint64_t> counters;
    std::uint64_t generation = 0;
    friend bool operator==(const snap_state&, const snap_state&) = default;
};

template <class Mem>
snap_state state_of(const Mem& m) {
    snap_state s;
    {
        const auto guard = m.lock_shared();
        const auto parts = m.locked(guard);
        for (const auto& r : parts.shareability_map().runs({0, m.size()})) s.runs.emplace_back(r.range.begin, r.range.end, r.value);
        parts.folios().for_each_folio({0, m.size()}, [&](const folio_view& v) {
            s.leaves.emplace_back(v.first, v.order, v.top_order, v.mappability, v.poisoned, v.poison_page);
        });
        parts.folios().for_each_detached([&](page_index f, folio_order o, frame_number, bool pinned, bool q) {
            s.detached.emplace_back(f, o, pinned, q);
        });
    }
    const auto st = m.stats();
    s.counters = {st.pages, st.shared_pages, st.runs, st.allocated_pages, st.folios_4k, st.folios_2m, st.folios_1g,
                  st.split_folios, st.pinned_pages, st.poisoned_folios, st.quarantined_pages, st.detached_pages};
    s.generation = m.generation();
    return s;
}

/// save() into a vector (through the sink form).
template <class Mem>
bytes save_bytes(const Mem& m) {
    bytes out;
    auto r = snapshot::save(m, [&](const std::uint8_t* p, std::size_t n) {
        out.insert(out.end(), p, p + n);
        return true;
    });
    return r ? out : bytes{};
}

/// A random history of allocate, convert, punch_hole, memory_failure and
/// release_quarantine calls (no pins: an object holding one is not saved).
template <class Mem>
void random_history(Mem& m, std::mt19937_64& rng, int calls) {
    const page_index n = m.size();
    auto range = [&] {
        const page_index b = rng() % n;
        const page_index lens[] = {1, 2, 7, 512, 513, 1024, 4096};
        const page_index len = rng() % 3 == 0 ? lens[rng() % 7] : 1 + rng() % 64;
        return page_range{b, std::min(n, b + len)};
    };
    for (int i = 0; i < calls; ++i) {
        switch (rng() % 10) {
        case 0: case 1: (void)m.allocate(range()); break;
        case 2: case 3: case 4: (void)m.convert(range(), shareability::shared); break;
        case 5: case 6: (void)m.convert(range(), shareability::guest_only); break;
        case 7: (void)m.punch_hole(range()); break;
        case 8: (void)m.memory_failure(rng() % n); break;
        default: (void)m.release_quarantine(range()); break;
        }
    }
}

/// A hand-made snapshot: header fields, then a body built field by field.
struct snap_builder {
    page_index pages = 4096;
    std::uint8_t max_order = order_2m;
    std::uint8_t kind = 1;
    std::uint64_t generation = 0, base = 0;
    bytes body;

    snap_builder& b(std::uint8_t x) {
        body.push_back(x);
        return *this;
    }
    snap_builder& v(std::uint64_t x) {
        while (x >= 0x80) {
            body.push_back(std::uint8_t(x | 0x80));
            x >>= 7;
        }
        body.push_back(std::uint8_t(x));
        return *this;
    }
    /// The body offset of the next field, as an offset in the snapshot.
    [[nodiscard]] std::size_t here() const { return head().size() + body.size(); }
    /// The sections of an object of one run and no folio.
    snap_builder& one_run(std::uint8_t value = 1) { return b(value).v(1).v(pages); }
    snap_builder& no_folios() { return v(0).v(0).v(0).v(0); }

    [[nodiscard]] bytes head() const {
        snap_builder h;
        h.body = {'G', 'M', 'S', 'N', snapshot::format_version, kind};
        h.v(pages).b(max_order).v(generation);
        if (kind == 2) h.v(base);
        h.v(body.size());
        return h.body;
    }
    [[nodiscard]] bytes done() const {
        bytes out = head();
        out.insert(out.end(), body.begin(), body.end());
        out.resize(out.size() + snapshot::checksum_bytes);
        snapshot::reseal(out);
        return out;
    }
};

} // namespace guestmem::test_support
