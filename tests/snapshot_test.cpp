// Tests for the snapshot part (include/guestmem/snapshot/, docs/SNAPSHOT.md):
// round trips to identical bytes and identical state after random
// histories, the sizes the format promises, the refusals of save, restore
// that rolls back when memory runs out, and migration increments. Every
// rejection of a malformed snapshot, with its offset, is in
// snapshot_reject_test.cpp (the same test_snapshot binary).
#include <doctest/doctest.h>

#include <guestmem/testing/fault_injecting_allocator.hpp>

#include "support/failing_allocator.hpp"
#include "support/snapshot_support.hpp"

#include <sstream>
#include <string>

using namespace guestmem;
using namespace guestmem::test_support;
namespace snap = guestmem::snapshot;

namespace {

using sim_mem = guest_memory<simulated_allocator, consumer, null_lock>;
constexpr page_index p2m = pages_in(order_2m);

/// Restore `b` into a fresh object made from its header; the new state.
snap_state restored_state(const bytes& b, bytes* resaved = nullptr) {
    auto h = snap::read_header(b);
    REQUIRE(h);
    simulated_allocator alloc;
    sim_mem m(alloc, h.value().config());
    auto s = snap::restore(m, b);
    REQUIRE_MESSAGE(s, (s ? "" : std::string(s.error().message())));
    if (resaved) *resaved = save_bytes(m);
    return state_of(m);
}

} // namespace

TEST_CASE("save then restore then save gives identical bytes and an identical state after random histories") {
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
        std::mt19937_64 rng(seed);
        simulated_allocator alloc;
        const bool big = seed % 4 == 0;
        sim_mem m(alloc, {.pages = big ? pages_in(order_1g) + 515 : 3 * p2m + 37,
                          .initial = seed % 2 ? shareability::shared : shareability::guest_only,
                          .max_order = big ? order_1g : order_2m});
        random_history(m, rng, 60);
        const bytes first = save_bytes(m);
        REQUIRE_FALSE(first.empty());
        REQUIRE(snap::check(first));
        bytes second;
        CHECK(restored_state(first, &second) == state_of(m));
        CHECK(second == first);
    }
}

TEST_CASE("a restored object has the saved runs, folio orders, splits, poison and quarantine") {
    simulated_allocator alloc;
    sim_mem m(alloc, {.pages = pages_in(order_1g) + 1024, .initial = shareability::guest_only, .max_order = order_1g});
    REQUIRE(m.allocate({0, pages_in(order_1g) + 1024}));
    REQUIRE(m.convert({5, 6}, shareability::shared));           // 1G -> 2M, one 2M -> 4K
    REQUIRE(m.memory_failure(3 * p2m + 7));                      // poisons a 2M piece
    REQUIRE(m.memory_failure(pages_in(order_1g) + 600));         // poisons a 2M top folio
    REQUIRE(m.punch_hole({pages_in(order_1g) + 512, pages_in(order_1g) + 1024}));  // quarantined
    const auto st = m.stats();
    REQUIRE(st.split_folios == 2);
    REQUIRE(st.poisoned_folios == 1);
    REQUIRE(st.quarantined_pages == p2m);
    const bytes b = save_bytes(m);
    bytes again;
    const snap_state r = restored_state(b, &again);
    CHECK(r == state_of(m));
    CHECK(again == b);
    std::ostringstream os;
    REQUIRE(snap::inspect(b, os));
    CHECK(os.str().find("quarantined folios: 1") != std::string::npos);
    CHECK(os.str().find("poisoned leaves: 1") != std::string::npos);
}

TEST_CASE("an object of one run and no folio saves in a few dozen bytes") {
    simulated_allocator alloc;
    sim_mem m(alloc, {.pages = page_index{1} << 28, .initial = shareability::guest_only, .max_order = order_1g});
    auto n = snap::saved_size(m);
    REQUIRE(n);
    CHECK(n.value() <= 32);  // 29: the page count of 1 TiB takes 5 bytes, twice; a 4-byte CRC-32C
    CHECK(save_bytes(m).size() == n.value());
}

TEST_CASE("a 1 TiB object of 10^6 runs saves in at most 4 bytes per run and restores to the same runs") {
    simulated_allocator alloc;
    const page_index pages = page_index{1} << 28;
    sim_mem m(alloc, {.pages = pages, .initial = shareability::guest_only, .max_order = order_1g});
    std::mt19937_64 rng(7);
    const page_index step = pages / 1000000;
    for (page_index p = 0; p + step <= pages; p += 2 * step) REQUIRE(m.convert({p + rng() % 8, p + step}, shareability::shared));
    REQUIRE(m.stats().runs >= 999990);
    const bytes b = save_bytes(m);
    CHECK(double(b.size()) / double(m.stats().runs) <= 4.0);
    bytes again;
    CHECK(std::get<0>(restored_state(b, &again).runs.back()) == std::get<0>(state_of(m).runs.back()));
    CHECK(again == b);
}

TEST_CASE("save refuses busy, naming the page, while a page is pinned or a folio drains its pins") {
    simulated_allocator alloc;
    sim_mem m(alloc, {.pages = 2 * p2m, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(m.allocate({0, 2 * p2m}));
    REQUIRE(m.pin({700, 702}, accessor::device));
    auto r = snap::saved_size(m);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::busy);
    CHECK(r.error().page() == 700);
    REQUIRE(m.convert({512, 1024}, shareability::guest_only, {.defer_if_pinned = true}));  // 700 drains
    bool called = false;
    auto s = snap::save(m, [&](const std::uint8_t*, std::size_t) { return called = true; });
    REQUIRE_FALSE(s);
    CHECK(s.error() == errc::busy);
    CHECK_FALSE(called);
    REQUIRE(m.unpin({700, 702}));
    CHECK(snap::saved_size(m));
}

TEST_CASE("save into a buffer too small writes nothing and says the size needed; a refusing sink is out_of_memory") {
    simulated_allocator alloc;
    sim_mem m(alloc, {.pages = 4096, .initial = shareability::guest_only, .max_order = order_2m});
    REQUIRE(m.convert({1, 2}, shareability::shared));
    const std::size_t need = snap::saved_size(m).value();
    bytes small(need - 1, 0xee);
    auto r = snap::save(m, std::span<std::uint8_t>(small));
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_argument);
    CHECK(std::string(r.error().message()).find(std::to_string(need)) != std::string::npos);
    CHECK(small == bytes(need - 1, 0xee));
    bytes exact(need);
    CHECK(snap::save(m, std::span<std::uint8_t>(exact)).value() == need);
    CHECK(exact == save_bytes(m));
    auto s = snap::save(m, [](const std::uint8_t*, std::size_t) { return false; });
    REQUIRE_FALSE(s);
    CHECK(s.error() == errc::out_of_memory);
}

TEST_CASE("restore refuses an object that is not fresh or not of the snapshot's shape, and changes nothing") {
    simulated_allocator alloc;
    sim_mem src(alloc, {.pages = 4096, .initial = shareability::guest_only, .max_order = order_2m});
    REQUIRE(src.convert({1, 2}, shareability::shared));
    const bytes b = save_bytes(src);
    sim_mem used(alloc, {.pages = 4096, .initial = shareability::guest_only, .max_order = order_2m});
    REQUIRE(used.allocate({0, 512}));
    const snap_state before = state_of(used);
    auto r = snap::restore(used, b);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_argument);
    CHECK(snap::error_offset(r.error()) == SIZE_MAX);
    CHECK(state_of(used) == before);
    sim_mem other(alloc, {.pages = 4097, .initial = shareability::guest_only, .max_order = order_2m});
    CHECK(snap::restore(other, b).error() == errc::invalid_argument);
    sim_mem order(alloc, {.pages = 4096, .initial = shareability::guest_only, .max_order = order_4k});
    CHECK(snap::restore(order, b).error() == errc::invalid_argument);
    sim_mem converted(alloc, {.pages = 4096, .initial = shareability::guest_only, .max_order = order_2m});
    REQUIRE(converted.convert({9, 10}, shareability::shared));
    CHECK(snap::restore(converted, b).error() == errc::invalid_argument);
}

TEST_CASE("restore gives everything back when the allocator or the node allocator fails at any step") {
    simulated_allocator seed_alloc;
    sim_mem src(seed_alloc, {.pages = pages_in(order_1g) + 1024, .initial = shareability::guest_only, .max_order = order_1g});
    REQUIRE(src.allocate({0, pages_in(order_1g) + 1024}));
    REQUIRE(src.convert({5, 6}, shareability::shared));
    for (page_index p = 2 * p2m; p < 40 * p2m; p += 3 * p2m + 1) REQUIRE(src.convert({p, p + 1}, shareability::shared));
    REQUIRE(src.memory_failure(pages_in(order_1g) + 700));
    REQUIRE(src.punch_hole({pages_in(order_1g) + 512, pages_in(order_1g) + 1024}));
    const bytes b = save_bytes(src);
    using inj = fault_injecting_allocator<simulated_allocator>;
    using inj_mem = guest_memory<inj, consumer, null_lock, failing_allocator<std::byte>>;
    int failures = 0;
    for (std::uint64_t k = 1;; ++k) {  // the k-th fallible allocator call fails
        simulated_allocator inner;
        inj alloc(inner);
        alloc_control ctl;
        inj_mem m(alloc, snap::read_header(b).value().config(), failing_allocator<std::byte>(&ctl));
        const snap_state fresh = state_of(m);
        alloc.fail_at(k);
        auto r = snap::restore(m, b);
        if (r) {
            CHECK(state_of(m).runs == state_of(src).runs);
            break;
        }
        ++failures;
        CHECK(r.error() == errc::out_of_memory);
        CHECK(state_of(m) == fresh);
        CHECK(inner.pages_in_use() == 0);
        CHECK(inner.reserved_splits() == 0);
    }
    for (std::int64_t k = 1;; ++k) {  // the k-th node allocation fails
        simulated_allocator inner;
        inj alloc(inner);
        alloc_control ctl;
        inj_mem m(alloc, snap::read_header(b).value().config(), failing_allocator<std::byte>(&ctl));
        const snap_state fresh = state_of(m);
        ctl.fail_at = k;
        auto r = snap::restore(m, b);
        if (r) break;
        ++failures;
        CHECK(r.error() == errc::out_of_memory);
        CHECK(state_of(m) == fresh);
        CHECK(inner.pages_in_use() == 0);
        CHECK(ctl.live <= 3);  // at most the range map's pooled spare nodes and the folio index (folio/detail/top_index.hpp)
    }
    CHECK(failures > 10);
}

TEST_CASE("full snapshot plus increments restores the same state as one full save after random conversions") {
    for (std::uint64_t seed = 1; seed <= 12; ++seed) {
        std::mt19937_64 rng(seed);
        simulated_allocator alloc, alloc2;
        const guest_memory_config cfg{.pages = 5000 + seed, .initial = shareability::guest_only, .max_order = order_2m};
        sim_mem src(alloc, cfg);
        const bool folios = seed % 3 == 0;
        if (folios) REQUIRE(src.allocate({0, cfg.pages}));
        sim_mem dst(alloc2, cfg);
        REQUIRE(snap::restore(dst, save_bytes(src)));
        std::uint64_t gen = src.generation();
        for (int round = 0; round < 5; ++round) {
            for (int i = 0; i < 30; ++i) {
                const page_index b = rng() % cfg.pages, e = std::min<page_index>(cfg.pages, b + 1 + rng() % 700);
                (void)src.convert({b, e}, rng() % 2 ? shareability::shared : shareability::guest_only);
            }
            bytes inc;
            auto r = snap::save_increment(src, gen, [&](const std::uint8_t* p, std::size_t n) {
                inc.insert(inc.end(), p, p + n);
                return true;
            });
            REQUIRE(r);
            REQUIRE(snap::check(inc));
            REQUIRE(snap::apply_increment(dst, inc));
            gen = src.generation();
            CHECK(dst.generation() == gen);
            CHECK(state_of(dst).runs == state_of(src).runs);
        }
        if (!folios) CHECK(save_bytes(dst) == save_bytes(src));
        else CHECK(state_of(dst).counters[3] == state_of(src).counters[3]);  // allocated pages
    }
}

TEST_CASE("for_each_change visits the current runs of the converted ranges only") {
    simulated_allocator alloc;
    sim_mem m(alloc, {.pages = 1 << 20, .initial = shareability::guest_only, .max_order = order_2m});
    const std::uint64_t g0 = m.generation();
    REQUIRE(m.convert({100, 200}, shareability::shared));
    REQUIRE(m.convert({150, 160}, shareability::guest_only));
    REQUIRE(m.convert({5000, 5001}, shareability::shared));
    CHECK(m.generation() == g0 + 3);
    std::vector<std::tuple<page_index, page_index, shareability>> seen;
    REQUIRE(snap::for_each_change(m, g0, [&](const run<shareability>& r) { seen.emplace_back(r.range.begin, r.range.end, r.value); }));
    using T = std::tuple<page_index, page_index, shareability>;
    CHECK(seen == std::vector<T>{T{100, 150, shareability::shared}, T{150, 160, shareability::guest_only},
                                 T{160, 200, shareability::shared}, T{5000, 5001, shareability::shared}});
    seen.clear();
    REQUIRE(snap::for_each_change(m, g0 + 2, [&](const run<shareability>& r) { seen.emplace_back(r.range.begin, r.range.end, r.value); }));
    CHECK(seen == std::vector<T>{T{5000, 5001, shareability::shared}});
    REQUIRE(m.convert({5000, 5001}, shareability::shared));  // a no-op conversion is no change
    CHECK(m.generation() == g0 + 3);
}

TEST_CASE("a generation older than the change log holds is not_supported; a future one is invalid_argument") {
    simulated_allocator alloc;
    sim_mem m(alloc, {.pages = 1 << 20, .initial = shareability::guest_only, .max_order = order_2m});
    for (page_index i = 0; i < 200; ++i) REQUIRE(m.convert({i * 10, i * 10 + 1}, shareability::shared));
    auto none = [](const run<shareability>&) {};
    auto old = snap::for_each_change(m, 0, none);
    REQUIRE_FALSE(old);
    CHECK(old.error() == errc::not_supported);
    CHECK(snap::for_each_change(m, 200 - 128, none));
    CHECK(snap::for_each_change(m, 201, none).error() == errc::invalid_argument);
    auto inc = snap::save_increment(m, 0, [](const std::uint8_t*, std::size_t) { return true; });
    CHECK(inc.error() == errc::not_supported);
}

TEST_CASE("apply_increment refuses a full snapshot, another size and another base generation, changing nothing") {
    simulated_allocator alloc;
    sim_mem src(alloc, {.pages = 4096, .initial = shareability::guest_only, .max_order = order_2m});
    sim_mem dst(alloc, {.pages = 4096, .initial = shareability::guest_only, .max_order = order_2m});
    REQUIRE(src.convert({1, 2}, shareability::shared));
    bytes inc;
    REQUIRE(snap::save_increment(src, 0, [&](const std::uint8_t* p, std::size_t n) { inc.insert(inc.end(), p, p + n); return true; }));
    CHECK(snap::apply_increment(dst, save_bytes(src)).error() == errc::invalid_argument);
    sim_mem wrong(alloc, {.pages = 4095, .initial = shareability::guest_only, .max_order = order_2m});
    CHECK(snap::apply_increment(wrong, inc).error() == errc::invalid_argument);
    REQUIRE(dst.convert({7, 8}, shareability::shared));  // dst is at generation 1, the increment's base is 0
    auto r = snap::apply_increment(dst, inc);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_argument);
    CHECK(dst.shareability_at(1).value() == shareability::guest_only);
    CHECK(snap::restore(dst, inc).error() == errc::invalid_argument);
}

TEST_CASE("apply_increment stops at a conversion that fails at the base generation, and applying it again completes") {
    simulated_allocator alloc, alloc2;
    const guest_memory_config cfg{.pages = 4096, .initial = shareability::shared, .max_order = order_2m};
    sim_mem src(alloc, cfg), dst(alloc2, cfg);
    REQUIRE(src.convert({10, 20}, shareability::guest_only));
    REQUIRE(src.convert({1000, 1010}, shareability::guest_only));
    bytes inc;
    REQUIRE(snap::save_increment(src, 0, [&](const std::uint8_t* p, std::size_t n) { inc.insert(inc.end(), p, p + n); return true; }));
    REQUIRE(dst.allocate({0, 4096}));
    REQUIRE(dst.pin({1005, 1006}, accessor::device));  // the second change must wait for this pin
    auto r = snap::apply_increment(dst, inc);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::busy);
    CHECK(r.error().page() == 1005);
    CHECK(dst.shareability_at(15).value() == shareability::guest_only);  // the first change was made
    CHECK(dst.shareability_at(1005).value() == shareability::shared);
    CHECK(dst.generation() == 0);  // still at the base: the increment can be applied again
    REQUIRE(dst.unpin({1005, 1006}));
    REQUIRE(snap::apply_increment(dst, inc));
    CHECK(dst.generation() == src.generation());
    CHECK(state_of(dst).runs == state_of(src).runs);
}

TEST_CASE("an increment across a poison or quarantine event is refused: it would drop the poison") {
    simulated_allocator alloc;
    sim_mem m(alloc, {.pages = 4096, .initial = shareability::guest_only, .max_order = order_2m});
    REQUIRE(m.allocate({0, 4096}));
    REQUIRE(m.convert({10, 20}, shareability::shared));
    const std::uint64_t g = m.generation();
    REQUIRE(m.convert({30, 40}, shareability::shared));
    auto none = [](const run<shareability>&) {};
    REQUIRE(snap::for_each_change(m, g, none));
    REQUIRE(m.memory_failure(600));
    CHECK(m.generation() == g + 2);  // the poison event raised it too
    auto across = snap::save_increment(m, g, [](const std::uint8_t*, std::size_t) { return true; });
    REQUIRE_FALSE(across);
    CHECK(across.error() == errc::not_supported);
    CHECK(std::string(across.error().message()).find("poisoned or quarantined at generation") != std::string::npos);
    CHECK(snap::for_each_change(m, g, none).error() == errc::not_supported);
    // From the poison event on, increments work again.
    const std::uint64_t after = m.generation();
    REQUIRE(m.convert({50, 60}, shareability::shared));
    CHECK(snap::for_each_change(m, after, none));
}
