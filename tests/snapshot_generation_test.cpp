// Generation edges of snapshots and migration tracking (docs/SNAPSHOT.md
// §Migration): generations count modulo 2^64 and compare as serial
// numbers, so an object restored at 2^64 - 1 goes to 0 on its next
// conversion and everything keeps working across the wrap: for_each_change,
// increments, their validation and apply_increment, the poison rule. The
// other edge: a base generation newer (in serial order) than the
// increment's generation is still refused. And an increment whose changed
// range the log widened over a page poisoned before the snapshot applies
// (only the pages that differ are converted).
#include <doctest/doctest.h>

#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/snapshot/snapshot.hpp>
#include <guestmem/testing/recording_consumer.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include "support/snapshot_support.hpp"

#include <cstdint>
#include <shared_mutex>
#include <vector>

using namespace guestmem;
using namespace guestmem::test_support;

namespace {
using gen_memory = guest_memory<simulated_allocator, consumer, std::shared_mutex>;

/// A full snapshot of a fresh 4096-page object (one guest_only run) at generation g.
bytes fresh_at(std::uint64_t g) {
    snap_builder s;
    s.generation = g;
    s.one_run().no_folios();
    return s.done();
}

bytes increment_of(const gen_memory& m, std::uint64_t since) {
    bytes out(4096);
    auto n = snapshot::save_increment(m, since, out);
    REQUIRE(n);
    out.resize(n.value());
    return out;
}

std::vector<page_range> changed_since(const gen_memory& m, std::uint64_t g) {
    std::vector<page_range> out;
    REQUIRE(snapshot::for_each_change(m, g, [&](const auto& r) { out.push_back(r.range); }));
    return out;
}
} // namespace

TEST_CASE("an object restored at generation 2^64 - 1 goes to 0 on its next conversion, and increments work across the wrap") {
    for (std::uint64_t start : {UINT64_MAX, UINT64_MAX - 1}) {
        CAPTURE(start);
        const bytes full = fresh_at(start);
        REQUIRE(snapshot::check(full));
        simulated_allocator frames;
        gen_memory src(frames, {.pages = 4096, .max_order = order_2m});
        REQUIRE(snapshot::restore(src, full));
        CHECK(src.generation() == start);
        REQUIRE(src.allocate({0, 4096}));
        REQUIRE(src.convert({10, 20}, shareability::shared));
        REQUIRE(src.convert({100, 700}, shareability::shared));
        CHECK(src.generation() == start + 2);  // wrapped: 1 or 0
        CHECK(changed_since(src, start) == std::vector<page_range>{{10, 20}, {100, 700}});
        CHECK(changed_since(src, start + 1) == std::vector<page_range>{{100, 700}});
        CHECK(changed_since(src, start + 2).empty());
        CHECK(snapshot::for_each_change(src, start + 3, [](const auto&) {}).error().code() == errc::invalid_argument);  // the future
        const bytes inc = increment_of(src, start);
        auto h = snapshot::check(inc);
        REQUIRE(h);
        CHECK(h.value().base_generation == start);
        CHECK(h.value().generation == start + 2);
        gen_memory dst(frames, {.pages = 4096, .max_order = order_2m});
        REQUIRE(snapshot::restore(dst, full));
        REQUIRE(dst.allocate({0, 4096}));
        REQUIRE(snapshot::apply_increment(dst, inc));
        CHECK(dst.generation() == src.generation());
        CHECK(state_of(dst).runs == state_of(src).runs);
        // and on from the wrapped generation
        REQUIRE(src.convert({15, 30}, shareability::guest_only));
        REQUIRE(snapshot::apply_increment(dst, increment_of(src, start + 2)));
        CHECK(state_of(dst).runs == state_of(src).runs);
    }
}

TEST_CASE("a poison after 2^64 - 1 still stops increments from before it, across the wrap") {
    simulated_allocator frames;
    gen_memory m(frames, {.pages = 4096, .max_order = order_2m});
    REQUIRE(snapshot::restore(m, fresh_at(UINT64_MAX)));
    REQUIRE(m.allocate({0, 4096}));
    REQUIRE(m.memory_failure(5));
    CHECK(m.generation() == 0);
    auto refused = snapshot::for_each_change(m, UINT64_MAX, [](const auto&) {});
    REQUIRE(!refused);
    CHECK(refused.error().code() == errc::not_supported);
    REQUIRE(m.convert({600, 700}, shareability::shared));  // outside the poisoned 2M folio
    CHECK(changed_since(m, 0) == std::vector<page_range>{{600, 700}});  // from after the poison: fine
}

TEST_CASE("an increment's base generation is checked in serial order: 2^64 - 1 then 0 is accepted, 0 then 2^64 - 1 is not") {
    auto inc = [](std::uint64_t base, std::uint64_t gen) {
        snap_builder s;
        s.kind = 2;
        s.base = base;
        s.generation = gen;
        s.v(1).v(5).v(3).b(0);  // one change: pages [5, 8) shared
        return s.done();
    };
    auto forward = snapshot::check(inc(UINT64_MAX, 0));
    REQUIRE(forward);
    CHECK(forward.value().base_generation == UINT64_MAX);
    auto backward = snapshot::check(inc(0, UINT64_MAX));
    REQUIRE(!backward);
    CHECK(backward.error().code() == errc::invalid_argument);
    CHECK(backward.error().message().find("is newer than the generation") != std::string_view::npos);
    CHECK(snapshot::error_offset(backward.error()) == 19);  // magic 4, version, kind, pages 2, order, generation 10 bytes
    CHECK(!snapshot::check(inc(5, 4)));
    CHECK(snapshot::check(inc(4, 4)));
}

TEST_CASE("an increment whose changed range was widened over a page poisoned before the snapshot applies") {
    simulated_allocator frames;
    gen_memory src(frames, {.pages = 4096, .max_order = order_2m});
    REQUIRE(src.allocate({0, 4096}));
    REQUIRE(src.convert({100, 200}, shareability::shared));  // splits the first 2M folio
    REQUIRE(src.memory_failure(150));                         // one 4K piece poisoned, shared
    bytes full(4096);
    auto n = snapshot::save(src, full);
    REQUIRE(n);
    full.resize(n.value());
    const std::uint64_t g = src.generation();
    REQUIRE(src.convert({200, 250}, shareability::shared));  // touches the log's newest entry: it widens to [100, 250)
    CHECK(changed_since(src, g) == std::vector<page_range>{{100, 250}});
    gen_memory dst(frames, {.pages = 4096, .max_order = order_2m});
    REQUIRE(snapshot::restore(dst, full));
    recording_consumer c("c");
    binding<consumer> b;
    REQUIRE(dst.bind(b, c, {0, 4096}, 0));
    REQUIRE(snapshot::apply_increment(dst, increment_of(src, g)));  // the poisoned page 150 is not converted again
    CHECK(dst.generation() == src.generation());
    CHECK(state_of(dst).runs == state_of(src).runs);
    REQUIRE(c.prepares() == 1);  // one round: only [200, 250) differed
    CHECK(c[c.size() - 1].inv.pages == page_range{200, 250});
}
