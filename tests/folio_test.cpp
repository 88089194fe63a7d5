// Tests for the folio part: the mappability table (every cell), the
// simulated and fault-injecting allocators, and the folio table — populate,
// split only as far as needed, level-by-level merge, deferred work fired by
// the last unpin, poison, truncation. Exhaustive fault injection, record
// memory and the randomised run are in folio_restructure_test.cpp (the same
// test_folio binary); the helpers both use are in support/folio_support.hpp.
#include <doctest/doctest.h>

#include <guestmem/testing/fault_injecting_allocator.hpp>
#include <guestmem/folio/folio_table.hpp>
#include <guestmem/folio/mappability.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include "support/folio_support.hpp"

#include <optional>
#include <random>
#include <vector>

#include <cstdint>
#include <sstream>
#include <string>

using namespace guestmem;
using namespace guestmem::test_support;

TEST_CASE("mappability: every (state, event) cell of the table") {
    struct expect { mappability from; mappability_event e; bool ok; mappability to; errc why; };
    using M = mappability;
    using E = mappability_event;
    const expect cases[] = {
        {M::all, E::share, true, M::all, {}},
        {M::all, E::unshare, true, M::guest, {}},
        {M::all, E::unshare_deferred, true, M::none, {}},
        {M::all, E::last_unpin, true, M::all, {}},
        {M::all, E::host_fault, true, M::all, {}},
        {M::all, E::guest_fault, true, M::all, {}},
        {M::guest, E::share, true, M::all, {}},
        {M::guest, E::unshare, true, M::guest, {}},
        {M::guest, E::unshare_deferred, true, M::guest, {}},
        {M::guest, E::last_unpin, true, M::guest, {}},
        {M::guest, E::host_fault, false, M::guest, errc::permission_denied},
        {M::guest, E::guest_fault, true, M::guest, {}},
        {M::none, E::share, true, M::all, {}},
        {M::none, E::unshare, true, M::guest, {}},
        {M::none, E::unshare_deferred, true, M::none, {}},
        {M::none, E::last_unpin, true, M::guest, {}},
        {M::none, E::host_fault, false, M::none, errc::permission_denied},
        {M::none, E::guest_fault, false, M::none, errc::retry},
    };
    int seen = 0;
    for (M s : all_mappabilities)
        for (E e : all_mappability_events) {
            const auto t = next_mappability(s, e);
            bool found = false;
            for (const auto& c : cases) {
                if (c.from != s || c.e != e) continue;
                found = true;
                CAPTURE(to_string(s));
                CAPTURE(to_string(e));
                CHECK(t.allowed == c.ok);
                if (c.ok) CHECK(t.next == c.to);
                else CHECK(t.refusal == c.why);
                // The one-byte copy the conversion path reads agrees.
                const std::uint8_t b = detail::mappability_next[std::size_t(s)][std::size_t(e)];
                CHECK(b == (c.ok ? std::uint8_t(c.to) : detail::refused));
                CHECK_FALSE(t.why.empty());
            }
            CHECK(found);
            ++seen;
        }
    CHECK(seen == 18);
    CHECK_FALSE(next_mappability(static_cast<M>(3), E::share).allowed);
    CHECK_FALSE(next_mappability(M::all, static_cast<E>(6)).allowed);

    std::ostringstream os;
    write_mappability_dot(os);
    const std::string dot = os.str();
    CHECK(dot.rfind("digraph mappability {", 0) == 0);
    CHECK(dot.find("all -> none [label=\"unshare_deferred\"]") != std::string::npos);
    CHECK(dot.find("none -> guest [label=\"last_unpin\"]") != std::string::npos);
    CHECK(dot.find("none -> all [label=\"share\"]") != std::string::npos);
    CHECK(dot.find("none -> refused [label=\"guest_fault (retry)\"") != std::string::npos);
    std::size_t edges = 0;
    for (std::size_t at = dot.find(" -> "); at != std::string::npos; at = dot.find(" -> ", at + 1)) ++edges;
    CHECK(edges == 18);
}

TEST_CASE("simulated and fault-injecting allocators") {
    simulated_allocator a(1024, order_2m);
    CHECK(a.max_order() == order_2m);
    CHECK(a.allocate(0, order_1g).error() == errc::not_supported);
    auto f = a.allocate(0, order_2m);
    REQUIRE(f);
    CHECK(is_aligned(f.value(), order_2m));
    CHECK(a.pages_in_use() == 512);
    CHECK(a.allocate(512, order_2m));
    CHECK(a.allocate(1024, order_4k).error() == errc::out_of_memory);
    a.set_split_limit(1);
    CHECK(a.prepare_split(f.value(), order_2m, order_4k));
    CHECK(a.prepare_split(f.value(), order_2m, order_4k).error() == errc::out_of_memory);
    a.commit_split(f.value(), order_2m, order_4k);
    CHECK(a.reserved_splits() == 0);
    CHECK(a.splits_in_place() == 1);
    a.merge(f.value(), order_4k, order_2m);
    CHECK(a.merges() == 1);

    simulated_allocator b;
    fi_alloc fi(b);
    fi.fail_at(2);
    CHECK(fi.allocate(0, order_4k));
    auto r = fi.prepare_split(0x100000, order_2m, order_4k);
    CHECK(r.error() == errc::out_of_memory);
    CHECK(std::string(r.error().message()).find("injected") != std::string::npos);
    CHECK(fi.allocate(1, order_4k));  // one-shot
    CHECK(fi.calls() == 3);
    fi.count(fault_point::allocate);
    fi.fail_at(1, true);
    CHECK(fi.prepare_split(0x100000, order_2m, order_4k));  // not counted
    CHECK_FALSE(fi.allocate(2, order_4k));
    CHECK_FALSE(fi.allocate(2, order_4k));  // sticky
    CHECK(fi.injected() == 3);
}

TEST_CASE("populate chooses the largest fitting order") {
    simulated_allocator a;
    const page_index n = pages_1g + 512 + 3;
    sim_table t(a, n, order_1g);
    share_map m(n);
    REQUIRE(t.populate({0, n}, m));
    CHECK(t.lookup(0)->order == order_1g);
    CHECK(t.lookup(pages_1g)->order == order_2m);
    CHECK(t.lookup(pages_1g + 512)->order == order_4k);
    auto c = t.stats();
    CHECK(c.folios_by_order[2] == 1);
    CHECK(c.folios_by_order[1] == 1);
    CHECK(c.folios_by_order[0] == 3);
    CHECK(c.allocated_pages == n);
    CHECK(a.pages_in_use() == n);
    CHECK(t.first_hole({0, n}) == no_page);

    // Unaligned range into holes, and max_order below the allocator's.
    simulated_allocator b;
    sim_table u(b, 4096, order_2m);
    REQUIRE(u.populate({600, 700}, m));
    REQUIRE(u.populate({1, 1030}, m));  // fills around the existing folios
    CHECK(u.lookup(1)->order == order_4k);
    CHECK(u.lookup(511)->order == order_4k);
    CHECK(u.lookup(512)->order == order_4k);  // [512, 600) could not hold a 2M
    CHECK(u.lookup(1029)->order == order_4k);
    CHECK_FALSE(u.allocated(0));
    CHECK(u.first_hole({0, 2000}) == 0);
    CHECK(u.first_hole({1, 2000}) == 1030);
    CHECK(u.stats().allocated_pages == 1029);
    REQUIRE(u.populate({1024, 1536}, m));
    CHECK(u.lookup(1100)->order == order_4k);  // 1024..1029 existed
    REQUIRE(u.populate({1536, 2048}, m));
    CHECK(u.lookup(1600)->order == order_2m);
    CHECK(u.populate({0, 5000}, m).error() == errc::invalid_range);
    CHECK(u.populate({10, 5}, m).error() == errc::invalid_range);
    CHECK(u.check_counters());
}

TEST_CASE("populate splits at once, only as far as shareability needs") {
    simulated_allocator a;
    sim_table t(a, pages_1g, order_1g);
    share_map m(pages_1g);
    m.assign({5, 6}, S);
    REQUIRE(t.populate({0, pages_1g}, m));
    auto c = t.stats();
    CHECK(c.split_folios == 2);
    CHECK(c.folios_by_order[1] == 511);
    CHECK(c.folios_by_order[0] == 512);
    CHECK(c.folios_by_order[2] == 0);
    auto v = t.lookup(5);
    CHECK(v->order == order_4k);
    CHECK(v->mappability == mappability::all);
    CHECK(v->top_order == order_1g);
    CHECK(t.lookup(6)->mappability == mappability::guest);
    CHECK(t.lookup(100000)->order == order_2m);
    CHECK(t.lookup(100000)->frame == t.lookup(0)->frame + align_down(100000, order_2m));
    CHECK(a.splits_in_place() == 2);
    CHECK(dump(t).find("511 x order 9 guest") != std::string::npos);
}

TEST_CASE("multi-level split and merge: one shared page in a 1G folio") {
    simulated_allocator a;
    sim_table t(a, pages_1g, order_1g);
    share_map m(pages_1g);
    REQUIRE(t.populate({0, pages_1g}, m));
    CHECK(t.lookup(7)->order == order_1g);

    auto p = plan_of(t, {7, 8}, S, m);
    CHECK(p.splits() == 2);
    REQUIRE(t.prepare_conversion(p));
    CHECK(a.reserved_splits() == 2);
    t.commit_conversion(p, true);
    m.assign({7, 8}, S);
    CHECK(a.reserved_splits() == 0);
    auto c = t.stats();
    CHECK(c.split_folios == 2);
    CHECK(c.folios_by_order[1] == 511);
    CHECK(c.folios_by_order[0] == 512);
    CHECK(t.lookup(7)->mappability == mappability::all);
    CHECK(t.lookup(8)->mappability == mappability::guest);
    CHECK(t.lookup(8)->order == order_4k);
    CHECK(t.lookup(600)->order == order_2m);

    convert(t, m, {7, 8}, G);
    CHECK(t.lookup(7)->order == order_1g);
    CHECK(t.lookup(7)->mappability == mappability::guest);
    CHECK(a.merges() == 2);
    CHECK(t.stats().split_folios == 0);

    // A range across two 2M boundaries inside one 1G: three splits.
    auto q = plan_of(t, {100, 2000}, S, m);
    CHECK(q.splits() == 3);
    REQUIRE(t.prepare_conversion(q));
    t.commit_conversion(q, true);
    m.assign({100, 2000}, S);
    CHECK(t.lookup(99)->order == order_4k);
    CHECK(t.lookup(100)->mappability == mappability::all);
    CHECK(t.lookup(600)->order == order_2m);  // wholly shared 2M piece stays intact
    CHECK(t.lookup(600)->mappability == mappability::all);
    CHECK(t.lookup(1999)->order == order_4k);
    CHECK(t.lookup(2000)->mappability == mappability::guest);
    // Shared ranges are not merged; back to guest_only merges everything.
    t.merge_eligible({0, pages_1g}, m);
    CHECK(t.stats().split_folios == 3);
    convert(t, m, {100, 2000}, G);
    CHECK(t.lookup(0)->order == order_1g);
    CHECK(a.splits_in_place() == 0);
    CHECK(t.check_counters());

    // Whole range converted: no split at all.
    auto w = plan_of(t, {0, pages_1g}, S, m);
    CHECK(w.splits() == 0);
}

TEST_CASE("abort_conversion releases the reservation and a prepared plan aborts itself") {
    simulated_allocator a;
    sim_table t(a, pages_1g, order_1g);
    share_map m(pages_1g);
    REQUIRE(t.populate({0, pages_1g}, m));
    simulated_allocator a2;
    sim_table twin(a2, pages_1g, order_1g);
    REQUIRE(twin.populate({0, pages_1g}, m));
    {
        auto p = plan_of(t, {3, 4}, S, m);
        REQUIRE(t.prepare_conversion(p));
        CHECK(a.reserved_splits() == 2);
        t.abort_conversion(p);
        CHECK(a.reserved_splits() == 0);
        CHECK(t == twin);
        REQUIRE(t.prepare_conversion(p));
        auto moved = std::move(p);
        CHECK(moved.prepared());
        CHECK_FALSE(p.prepared());
    }
    CHECK(a.reserved_splits() == 0);
    CHECK(t == twin);
}

TEST_CASE("merge deferred by a pin, fired by the unpin") {
    simulated_allocator a;
    sim_table t(a, pages_1g, order_1g);
    share_map m(pages_1g);
    m.assign({5, 6}, S);
    REQUIRE(t.populate({0, pages_1g}, m));
    REQUIRE(t.pin({5, 6}));
    CHECK(t.pins(5) == 1);
    convert(t, m, {5, 6}, G, /*defer=*/true);
    CHECK(t.lookup(5)->mappability == mappability::none);
    CHECK(t.lookup(5)->order == order_4k);
    CHECK(t.stats().split_folios == 2);  // the pin holds the merge back
    REQUIRE(t.unpin({5, 6}, m));
    CHECK(t.lookup(5)->order == order_1g);  // at once, not on a later call
    CHECK(t.lookup(5)->mappability == mappability::guest);
    CHECK(t.stats().split_folios == 0);
    CHECK(t.stats().pinned_pages == 0);

    // A pin on a guest_only 2M piece elsewhere also holds the merge back.
    convert(t, m, {5, 6}, S);
    REQUIRE(t.pin({4096, 4097}));
    convert(t, m, {5, 6}, G);
    CHECK(t.lookup(5)->order == order_2m);  // 4K pieces merged back to 2M
    CHECK(t.lookup(5)->top_order == order_1g);
    CHECK(t.stats().split_folios == 1);
    REQUIRE(t.unpin({4096, 4097}, m));
    CHECK(t.lookup(5)->order == order_1g);
}

TEST_CASE("none -> guest fired by the last unpin; none -> all when shared again") {
    simulated_allocator a;
    sim_table t(a, 16, order_1g);
    share_map m(16, S);
    REQUIRE(t.populate({0, 16}, m));
    CHECK(t.lookup(3)->order == order_4k);
    CHECK(t.lookup(3)->mappability == mappability::all);
    REQUIRE(t.pin({2, 4}));
    REQUIRE(t.pin({3, 5}));
    convert(t, m, {0, 8}, G, true);
    CHECK(t.lookup(0)->mappability == mappability::guest);
    CHECK(t.lookup(2)->mappability == mappability::none);
    CHECK(t.lookup(3)->mappability == mappability::none);
    CHECK(t.lookup(4)->mappability == mappability::none);
    CHECK(t.lookup(5)->mappability == mappability::guest);
    CHECK_FALSE(next_mappability(t.lookup(3)->mappability, mappability_event::guest_fault).allowed);
    REQUIRE(t.unpin({2, 4}, m));
    CHECK(t.lookup(2)->mappability == mappability::guest);
    CHECK(t.lookup(3)->mappability == mappability::none);  // still one pin
    REQUIRE(t.unpin({3, 4}, m));
    CHECK(t.lookup(3)->mappability == mappability::guest);
    CHECK(t.lookup(4)->mappability == mappability::none);
    convert(t, m, {4, 5}, S);
    CHECK(t.lookup(4)->mappability == mappability::all);  // shared again before the pin drained
    REQUIRE(t.unpin({4, 5}, m));
    CHECK(t.lookup(4)->mappability == mappability::all);
    // Pins decide, not the caller's flag: even a caller that skipped its
    // busy check cannot make a pinned leaf mappable by the guest; it drains,
    // and the last unpin finishes it.
    REQUIRE(t.pin({6, 7}));
    convert(t, m, {6, 7}, S);
    convert(t, m, {6, 7}, G, false);
    CHECK(t.lookup(6)->mappability == mappability::none);
    REQUIRE(t.unpin({6, 7}, m));
    CHECK(t.lookup(6)->mappability == mappability::guest);

    // A pinned page in a split 2M piece: only the leaf with the pin waits.
    simulated_allocator b;
    sim_table u(b, 512, order_2m);
    share_map mu(512, S);
    REQUIRE(u.populate({0, 512}, mu));
    CHECK(u.lookup(0)->order == order_2m);
    REQUIRE(u.pin({10, 11}));
    convert(u, mu, {0, 256}, G, true);
    CHECK(u.lookup(10)->mappability == mappability::none);
    CHECK(u.lookup(11)->mappability == mappability::guest);
    convert(u, mu, {256, 512}, G, true);
    CHECK(u.lookup(300)->order == order_4k);  // none leaf holds the merge back
    REQUIRE(u.unpin({10, 11}, mu));
    CHECK(u.lookup(10)->order == order_2m);
    CHECK(u.lookup(10)->mappability == mappability::guest);
}

TEST_CASE("pins: holes, poison, runs, unpin below zero") {
    simulated_allocator a;
    sim_table t(a, 4096, order_2m);
    share_map m(4096);
    REQUIRE(t.populate({0, 1024}, m));
    REQUIRE(t.populate({1030, 2048}, m));
    auto e = t.pin({1000, 1100});
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::not_allocated);
    CHECK(e.error().page() == 1024);
    CHECK(std::string(e.error().message()) == "pin of page 0x400 which is not allocated");
    CHECK(t.stats().pinned_pages == 0);
    CHECK(t.pin({0, 5000}).error() == errc::invalid_range);

    REQUIRE(t.pin({0, 1024}));  // a large pin is one run
    REQUIRE(t.pin({10, 20}));
    CHECK(t.pins(9) == 1);
    CHECK(t.pins(10) == 2);
    CHECK(t.pins(1023) == 1);
    CHECK(t.pins(1024) == 0);
    CHECK(t.first_pinned({1024, 2048}) == no_page);
    CHECK(t.first_pinned({500, 2048}) == 500);
    CHECK(t.stats().pinned_pages == 1024);
    int runs = 0;
    t.for_each_pin_run([&](page_index, page_index, std::uint32_t) { ++runs; });
    CHECK(runs == 3);

    simulated_allocator a2;
    sim_table twin(a2, 4096, order_2m);
    REQUIRE(twin.populate({0, 1024}, m));
    REQUIRE(twin.populate({1030, 2048}, m));
    REQUIRE(twin.pin({0, 1024}));
    REQUIRE(twin.pin({10, 20}));
    CHECK(t == twin);
    auto u = t.unpin({15, 1030}, m);
    REQUIRE_FALSE(u);
    CHECK(u.error() == errc::invalid_argument);
    CHECK(u.error().page() == 1024);
    CHECK(std::string(u.error().message()) == "unpin of page 0x400 which has no pins");
    CHECK(t == twin);
    REQUIRE(t.unpin({10, 20}, m));
    REQUIRE(t.unpin({0, 1024}, m));
    runs = 0;
    t.for_each_pin_run([&](page_index, page_index, std::uint32_t) { ++runs; });
    CHECK(runs == 0);
    CHECK(t.unpin({0, 1}, m).error() == errc::invalid_argument);

    t.poison(1600);
    auto p = t.pin({1400, 1700});
    CHECK(p.error() == errc::poisoned);
    CHECK(p.error().page() == 1536);  // the whole 2M folio [0x600, 0x800) reports poisoned
    CHECK(std::string(p.error().message()) == "pin of page 0x600 which is poisoned");
    CHECK(t.stats().pinned_pages == 0);
}

TEST_CASE("poison blocks merge and is reported with the folio order") {
    simulated_allocator a;
    sim_table t(a, pages_1g, order_1g);
    share_map m(pages_1g);
    REQUIRE(t.populate({0, pages_1g}, m));
    convert(t, m, {5, 6}, S);
    convert(t, m, {700, 701}, S);
    t.poison(700);
    t.poison(703);  // another 4K leaf of the same split 2M piece
    auto v = t.lookup(700);
    CHECK(v->poisoned);
    CHECK(v->order == order_4k);
    CHECK(v->poison_page == 700);
    CHECK_FALSE(t.poisoned(701));
    CHECK(t.stats().poisoned_folios == 2);
    t.poison(5000);  // an intact 2M piece: the whole piece is poisoned
    CHECK(t.lookup(5100)->poisoned);
    CHECK(t.lookup(5100)->order == order_2m);
    CHECK(t.lookup(5100)->poison_page == 5000);
    t.poison(5001);  // already poisoned: first page kept
    CHECK(t.lookup(5100)->poison_page == 5000);
    CHECK(t.stats().poisoned_folios == 3);

    convert(t, m, {5, 6}, G);
    convert(t, m, {700, 701}, G);
    CHECK(t.lookup(5)->order == order_2m);     // [0, 512) merged back to 2M
    CHECK(t.lookup(700)->order == order_4k);   // [512, 1024) holds poison: stays split
    CHECK(t.lookup(0)->top_order == order_1g);
    CHECK(t.stats().split_folios == 2);        // 1G and one 2M
    // A poisoned leaf is never split by a conversion.
    auto p = plan_of(t, {5000, 5001}, S, m);
    CHECK(p.splits() == 0);
    // Nothing allocated for poison; truncating frees the healthy leaves and
    // keeps only the poisoned ones (two 4K pages and a 2M piece).
    t.truncate({0, pages_1g});
    CHECK(a.pages_in_use() == 2 + pages_in(order_2m));
    CHECK(t.stats().quarantined_pages == 2 + pages_in(order_2m));
    CHECK(t.first_quarantined({0, pages_1g}) == 700);
    CHECK(t.first_quarantined({704, pages_1g}) == 4608);
    CHECK(t.stats().poisoned_folios == 0);
    CHECK_FALSE(t.allocated(0));
    CHECK(t.check_counters());
}

TEST_CASE("truncate frees whole folios and zeroes partial ones") {
    simulated_allocator a;
    sim_table t(a, 2048, order_2m);
    share_map m(2048);
    REQUIRE(t.populate({0, 2048}, m));
    CHECK(a.pages_in_use() == 2048);
    t.truncate({512, 1034});
    CHECK(a.pages_in_use() == 1536);
    CHECK(a.frees() == 1);
    CHECK(a.zeroed_pages() == 10);
    CHECK(a.zero_calls() == 1);
    CHECK_FALSE(t.allocated(600));
    CHECK(t.allocated(1033));
    CHECK(t.first_hole({0, 2048}) == 512);
    // A split folio partially truncated: zero across pieces, skipping poison.
    convert(t, m, {1100, 1101}, S);
    t.poison(1105);
    t.truncate({1090, 1110});
    CHECK(a.zeroed_pages() == 10 + 19);
    CHECK(a.zero_calls() == 3);
    // Whole split folio: merged back in the allocator, then freed.
    convert(t, m, {1600, 1601}, S);
    const auto merges = a.merges();
    t.truncate({1536, 2048});
    CHECK(a.merges() == merges + 1);
    CHECK(a.splits_in_place() == 1);  // [1024, 1536) is still split (poison)
    CHECK(a.pages_in_use() == 1024);
    t.truncate({0, 100000});  // clamped
    CHECK(a.pages_in_use() == 1);  // only the poisoned 4K leaf is kept
    CHECK(t.stats().quarantined_pages == 1);
    CHECK(t.stats().allocated_pages == 0);
    CHECK(t.check_counters());
}

TEST_CASE("destructor returns every folio except poisoned leaves") {
    simulated_allocator a;
    {
        sim_table t(a, pages_1g + 1024, order_1g);
        share_map m(pages_1g + 1024);
        m.assign({3, 4}, S);
        REQUIRE(t.populate({0, pages_1g + 1024}, m));
        t.poison(pages_1g + 600);
        t.poison(3);  // a 4K piece of the split 1G folio: only it is kept
    }
    CHECK(a.pages_in_use() == 512 + 1);
    // The split 1G folio went back piece by piece (its poisoned 4K piece
    // kept), so its two splits (1G -> 2M, 2M -> 4K) were never merged.
    CHECK(a.splits_in_place() == 2);
    CHECK(a.folios_in_use() == 2);  // the poisoned 2M folio and the 4K piece
}

TEST_CASE("lookup answers the same through the folio index as by walking the folios, after every kind of change") {
    // 16 MiB in 2 MiB folios (the index covers them) plus a 4K tail (not indexed).
    const page_index n = 8 * 512 + 3;
    simulated_allocator a;
    sim_table t(a, n, order_2m);
    share_map m(n);
    std::mt19937_64 rng(5);
    auto check_all = [&] {
        std::vector<std::optional<folio_view>> walked(n);
        t.for_each_folio({0, n}, [&](const folio_view& v) {
            for (page_index p = v.first; p < v.first + pages_in(v.order); ++p) walked[p] = v;
        });
        for (page_index p = 0; p < n; ++p) {
            CAPTURE(p);
            const auto got = t.lookup(p);
            REQUIRE(bool(got) == bool(walked[p]));
            if (got) {
                CHECK(got->first == walked[p]->first);
                CHECK(got->order == walked[p]->order);
                CHECK(got->frame == walked[p]->frame);
            }
        }
    };
    REQUIRE(t.populate({0, n}, m));
    check_all();
    for (int round = 0; round < 40; ++round) {
        const page_index p = rng() % n, len = 1 + rng() % 700;
        const page_range r{p, std::min(n, p + len)};
        switch (rng() % 4) {
        case 0: t.truncate(r); break;                   // whole folios leave the index, partial ones stay
        case 1: REQUIRE(t.populate(r, m)); break;       // holes refilled (2M where aligned, else smaller)
        case 2: {                                       // split and merge back through a conversion
            convert(t, m, r, m.at(p) == S ? G : S);
            break;
        }
        default:                                        // a pinned folio truncated: detached, not live
            if (t.pin({p, p + 1})) {
                t.truncate({p & ~page_index{511}, std::min(n, (p & ~page_index{511}) + 512)});
                REQUIRE(t.unpin({p, p + 1}, m));
            }
        }
        check_all();
    }
}
