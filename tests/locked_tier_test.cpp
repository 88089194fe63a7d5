// guest_memory's locked tier and restore door (memory/locked.hpp):
// locked(guard), load() and restart_generation().
#include <doctest/doctest.h>

#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <utility>

using namespace guestmem;

namespace {
using sim_memory = guest_memory<simulated_allocator>;
/// next_run for load(): [0, 512) shared, [512, 1024) guest_only.
auto two_runs() {
    return [n = 0]() mutable {
        return std::pair<page_index, shareability>{512, n++ == 0 ? shareability::shared : shareability::guest_only};
    };
}
} // namespace

TEST_CASE("the locked view reads runs, folios and the change log under the caller's guard") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 1024, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 512}));
    REQUIRE(mem.convert({8, 16}, shareability::guest_only));
    {
        const auto guard = mem.lock_shared();
        const auto parts = mem.locked(guard);
        const auto runs = parts.runs({0, 1024});
        REQUIRE(runs);
        int n = 0;
        for (const auto& r : runs.value()) n += r.value == shareability::guest_only ? 1 : 0;
        CHECK(n == 1);
        CHECK(parts.shareability_map().run_count() == 3);
        CHECK(parts.folios().lookup(8)->order == order_4k);
        CHECK(parts.notifiers().binding_count() == 0);
        CHECK(parts.changes().generation() == 1);
        auto bad = parts.runs({3, 2});
        REQUIRE_FALSE(bad);
        CHECK(bad.error() == errc::invalid_range);
        CHECK(bad.error().page() == 3);
    }
    const auto guard = mem.lock_exclusive();
    CHECK(mem.locked(guard).changes().generation() == 1);
}

TEST_CASE("load refuses an object that is not fresh, without calling build or changing anything") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 1024, .initial = shareability::guest_only});
    REQUIRE(mem.allocate({0, 1}));
    bool built = false;
    auto one = [] { return std::pair<page_index, shareability>{1024, shareability::shared}; };
    auto s = mem.load(1, one, [&](auto&) { built = true; return status(ok()); }, 7);
    REQUIRE_FALSE(s);
    CHECK(s.error() == errc::invalid_argument);
    CHECK_FALSE(built);
    CHECK(mem.shareability_at(0).value() == shareability::guest_only);
    CHECK(mem.stats().allocated_pages == 1);
    CHECK(mem.generation() == 0);
}

TEST_CASE("load whose build fails gives back every folio and the map, and keeps the generation") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 1024, .initial = shareability::guest_only, .max_order = order_2m});
    auto two = two_runs();
    auto s = mem.load(2, two, [](auto& ld) -> status {
        if (auto a = ld.add(0, order_2m); !a) return a;
        return error::make(errc::out_of_memory, 512, "the build ran out");
    }, 9);
    REQUIRE_FALSE(s);
    CHECK(s.error() == errc::out_of_memory);
    CHECK(s.error().page() == 512);
    CHECK(alloc.pages_in_use() == 0);
    CHECK(mem.stats().runs == 1);
    CHECK(mem.shareability_at(0).value() == shareability::guest_only);
    CHECK(mem.stats().allocated_pages == 0);
    CHECK(mem.generation() == 0);
}

TEST_CASE("load fills a fresh object: runs, folios with their mappability, generation") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 1024, .initial = shareability::guest_only, .max_order = order_2m});
    auto two = two_runs();
    REQUIRE(mem.load(2, two, [](auto& ld) -> status {
        if (auto a = ld.add(0, order_2m); !a) return a;
        return ld.add(512, order_2m);
    }, 9));
    CHECK(mem.generation() == 9);
    CHECK(mem.mappability_at(0).value() == mappability::all);
    CHECK(mem.mappability_at(600).value() == mappability::guest);
    CHECK(mem.stats().folios_2m == 2);
    mem.restart_generation(4);
    CHECK(mem.generation() == 4);
    const auto guard = mem.lock_shared();
    CHECK(mem.locked(guard).changes().floor() == 4);
}
