// Tests for the folio table, part 2 (the test_folio binary, with
// folio_test.cpp): exhaustive fault injection, record memory accounting, a
// randomised run against a per-page model, and the compact piece records of
// a split. The helpers shared with part 1 are in support/folio_support.hpp.
#include <doctest/doctest.h>

#include <guestmem/folio/folio_table.hpp>
#include <guestmem/testing/fault_injecting_allocator.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include "support/folio_support.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace guestmem;
using namespace guestmem::test_support;

TEST_CASE("exhaustive fault injection: populate and prepare_conversion leave the table unchanged") {
    const page_index n = pages_1g + 2048;
    share_map m(n);
    m.assign({5, 6}, S);
    m.assign({pages_1g + 700, pages_1g + 1600}, S);
    auto setup = [&](auto& t) {
        REQUIRE(t.populate({pages_1g, pages_1g + 512}, m));
        REQUIRE(t.pin({pages_1g + 10, pages_1g + 20}));
    };
    // Count the fallible points first.
    std::uint64_t points = 0;
    {
        simulated_allocator inner;
        fi_alloc fa(inner);
        folio_table<fi_alloc> t(fa, n, order_1g);
        setup(t);
        fa.fail_at(0);
        REQUIRE(t.populate({0, n}, m));
        points = fa.calls();
    }
    // 1G + two splits; 2M [+512, +1024) + split; 2M [+1024, +1536) (uniform); 2M [+1536, +2048) + split
    CHECK(points == 3 + 2 + 1 + 2);
    for (std::uint64_t k = 1; k <= points; ++k) {
        CAPTURE(k);
        simulated_allocator inner, ref_inner;
        fi_alloc fa(inner);
        folio_table<fi_alloc> t(fa, n, order_1g);
        sim_table ref(ref_inner, n, order_1g);
        setup(t);
        setup(ref);
        fa.fail_at(k);
        auto s = t.populate({0, n}, m);
        REQUIRE_FALSE(s);
        CHECK(s.error() == errc::out_of_memory);
        CHECK(t == ref);
        CHECK(inner.pages_in_use() == ref_inner.pages_in_use());
        CHECK(inner.splits_in_place() == ref_inner.splits_in_place());
        CHECK(inner.reserved_splits() == 0);
        CHECK(t.check_counters());
    }
    // Reserve: a conversion needing four splits (two 1G-level, two 2M-level).
    {
        const page_index n2 = 2 * pages_1g;
        share_map m2(n2);
        const page_range r{pages_1g - 100, pages_1g + 100};
        std::uint64_t reserve_points = 0;
        for (std::uint64_t k = 0;; ++k) {
            simulated_allocator inner, ref_inner;
            fi_alloc fa(inner);
            folio_table<fi_alloc> t(fa, n2, order_1g);
            sim_table ref(ref_inner, n2, order_1g);
            REQUIRE(t.populate({0, n2}, m2));
            REQUIRE(ref.populate({0, n2}, m2));
            auto p = plan_of(t, r, S, m2);
            CHECK(p.splits() == 4);
            fa.fail_at(k);
            auto s = t.prepare_conversion(p);
            if (k == 0) {
                REQUIRE(s);
                reserve_points = fa.calls();
                t.abort_conversion(p);
                CHECK(t == ref);
                CHECK(inner.reserved_splits() == 0);
                continue;
            }
            if (k > reserve_points) break;
            CAPTURE(k);
            REQUIRE_FALSE(s);
            CHECK(s.error() == errc::out_of_memory);
            CHECK(s.error().page() != no_page);
            CHECK_FALSE(p.prepared());
            CHECK(inner.reserved_splits() == 0);
            CHECK(t == ref);
        }
        CHECK(reserve_points == 4);
    }
}

TEST_CASE("record memory: failures are all or nothing; commit_conversion, merge and truncate allocate nothing") {
    using ctable = folio_table<simulated_allocator, counting_alloc<std::byte>>;
    const page_index n = pages_1g + 1024;
    share_map m(n);
    m.assign({5, 6}, S);
    // Every node allocation of populate, pin and prepare_conversion can fail.
    node_stats probe;
    std::uint64_t populate_calls = 0, pin_calls = 0, reserve_calls = 0;
    {
        simulated_allocator a;
        ctable t(a, n, order_1g, counting_alloc<std::byte>(&probe));
        REQUIRE(t.populate({0, n}, m));
        populate_calls = probe.calls;
        REQUIRE(t.pin({0, 4}));
        REQUIRE(t.pin({2, 8}));
        pin_calls = probe.calls - populate_calls;
        auto p = plan_of(t, {pages_1g + 3, pages_1g + 4}, S, m);
        REQUIRE(t.prepare_conversion(p));
        reserve_calls = probe.calls - populate_calls - pin_calls;
        t.abort_conversion(p);
    }
    CHECK(probe.allocs == probe.deallocs);
    CHECK(populate_calls == 1 + 1 + 2 + 2);  // the folio index (top_index), 1G + its two split arrays, 2M x2
    CHECK(pin_calls == 1 + 2);
    CHECK(reserve_calls == 1);
    for (std::uint64_t k = 1; k <= populate_calls + pin_calls + reserve_calls; ++k) {
        CAPTURE(k);
        node_stats st, ref_st;
        simulated_allocator a, ra;
        ctable t(a, n, order_1g, counting_alloc<std::byte>(&st));
        ctable ref(ra, n, order_1g, counting_alloc<std::byte>(&ref_st));
        st.fail_at = k;
        if (k <= populate_calls) {
            CHECK(t.populate({0, n}, m).error() == errc::out_of_memory);
            CHECK(t == ref);
            CHECK(a.pages_in_use() == 0);
            CHECK(a.reserved_splits() == 0);
            CHECK(a.splits_in_place() == 0);
            continue;
        }
        REQUIRE(t.populate({0, n}, m));
        REQUIRE(ref.populate({0, n}, m));
        REQUIRE(ref.pin({0, 4}));
        if (k <= populate_calls + pin_calls) {
            auto s1 = t.pin({0, 4});
            auto s2 = s1 ? t.pin({2, 8}) : s1;
            CHECK(s2.error() == errc::out_of_memory);
            if (!s1) REQUIRE(ref.unpin({0, 4}, m));
            CHECK(t == ref);
            continue;
        }
        REQUIRE(t.pin({0, 4}));
        REQUIRE(t.pin({2, 8}));
        REQUIRE(ref.pin({2, 8}));
        auto p = plan_of(t, {pages_1g + 3, pages_1g + 4}, S, m);
        CHECK(t.prepare_conversion(p).error() == errc::out_of_memory);
        CHECK(t == ref);
    }

    // commit_conversion, merge_eligible, unpin's deferred work and truncate: no allocation.
    node_stats st;
    simulated_allocator a;
    ctable t(a, n, order_1g, counting_alloc<std::byte>(&st));
    share_map g(n);
    REQUIRE(t.populate({0, n}, g));
    REQUIRE(t.pin({100, 101}));
    auto p = plan_of(t, {100, 101}, S, g);
    REQUIRE(t.prepare_conversion(p));
    const auto before = st.allocs;
    t.commit_conversion(p, true);
    g.assign({100, 101}, S);
    t.merge_eligible({0, n}, g);
    auto q = plan_of(t, {100, 101}, G, g);
    CHECK(q.splits() == 0);
    t.commit_conversion(q, true);
    g.assign({100, 101}, G);
    t.merge_eligible({100, 101}, g);
    CHECK(t.lookup(100)->mappability == mappability::none);
    CHECK(t.stats().split_folios == 2);
    CHECK(t.unpin({100, 101}, g));  // whole-run unpin needs no node
    CHECK(t.lookup(100)->order == order_1g);
    t.poison(pages_1g + 3);
    t.truncate({pages_1g, pages_1g + 10});
    t.truncate({0, n});
    CHECK(st.allocs == before);
    CHECK(st.deallocs > 0);
}

TEST_CASE("randomised against a per-page model") {
    const page_index n = 4096;
    std::mt19937_64 rng(12345);
    simulated_allocator a;
    sim_table t(a, n, order_2m);
    share_map m(n);
    std::vector<bool> alloc(n, false), poison(n, false), quarantined(n, false);
    std::vector<std::uint32_t> pins(n, 0);
    auto rand_range = [&] {
        std::uniform_int_distribution<page_index> pick(0, n - 1);
        page_index b = pick(rng), len = 1 + pick(rng) % (rng() % 4 == 0 ? 1200 : 40);
        if (rng() % 3 == 0) b = align_down(b, order_2m);
        return page_range{b, std::min(n, b + len)};
    };
    auto backed = [&](page_range r) {
        for (page_index p = r.begin; p < r.end; ++p)
            if (!alloc[p]) return false;
        return true;
    };
    std::uint64_t checks = 0;
    for (int op = 0; op < 10000; ++op) {
        const page_range r = rand_range();
        switch (rng() % 11) {
        case 0:
        case 1: {
            page_range pr = r;
            if (rng() % 4 != 0) pr = {align_down(r.begin, order_2m), std::min(n, align_up(r.end, order_2m))};
            // Pages truncated while poisoned stay quarantined: populate refuses them.
            page_index q = no_page;
            for (page_index p = pr.begin; p < pr.end && q == no_page; ++p)
                if (quarantined[p]) q = p;
            auto s = t.populate(pr, m);
            REQUIRE(bool(s) == (q == no_page));
            if (!s) {
                CHECK(s.error().code() == errc::poisoned);
                CHECK(s.error().page() == q);
                break;
            }
            for (page_index p = pr.begin; p < pr.end; ++p) alloc[p] = true;
            break;
        }
        case 2:
        case 3: {
            page_range tr = r;
            if (rng() % 2) tr = {align_down(r.begin, order_2m), std::min(n, align_up(r.end, order_2m))};
            if (t.first_pinned(tr) != no_page) break;
            t.truncate(tr);
            const page_range r = tr;
            for (page_index p = r.begin; p < r.end; ++p) alloc[p] = t.allocated(p);
            for (page_index p = r.begin; p < r.end; ++p)
                if (!alloc[p] && poison[p]) {
                    poison[p] = false;
                    quarantined[p] = true;
                }
            break;
        }
        case 4:
        case 5:
        case 6: {
            // Small shared windows, often unshared again over whole 2M blocks,
            // so both splits and merges are frequent.
            if (rng() % 2) {
                convert(t, m, {r.begin, std::min(n, r.begin + 1 + rng() % 16)}, S, true);
            } else {
                page_range gr = r;
                if (rng() % 2) gr = {align_down(r.begin, order_2m), std::min(n, align_up(r.end, order_2m))};
                convert(t, m, gr, G, true);
            }
            break;
        }
        case 7: {
            const page_index b = rand_range().begin;
            const page_range r{b, std::min(n, b + 1 + rng() % 8)};  // pins are short-lived and small
            auto s = t.pin(r);
            bool bad = !backed(r);
            for (page_index p = r.begin; p < r.end && !bad; ++p) bad = poison[p];
            CHECK(bool(s) == !bad);
            if (s)
                for (page_index p = r.begin; p < r.end; ++p) ++pins[p];
            break;
        }
        case 8:
        case 9: {
            page_range r = rand_range();
            if (rng() % 4 != 0) {  // usually a piece of an existing pin run
                std::vector<page_range> runs;
                t.for_each_pin_run([&](page_index b, page_index e, std::uint32_t) { runs.push_back({b, e}); });
                if (!runs.empty()) {
                    const page_range pr = runs[rng() % runs.size()];
                    const page_index b = rng() % 2 ? pr.begin : pr.begin + rng() % pr.size();
                    r = {b, rng() % 2 ? pr.end : b + 1 + rng() % (pr.end - b)};
                }
            }
            bool ok = true;
            for (page_index p = r.begin; p < r.end; ++p) ok = ok && pins[p] > 0;
            auto s = t.unpin(r, m);
            CHECK(bool(s) == ok);
            if (s)
                for (page_index p = r.begin; p < r.end; ++p) --pins[p];
            break;
        }
        case 10:
            if (rng() % 64 == 0) {
                t.poison(r.begin);
                if (auto v = t.lookup(r.begin))
                    for (page_index p = v->first; p < v->first + pages_in(v->order); ++p) poison[p] = true;
            }
            break;
        }
        // Check the table against the model: pages every op in and around r,
        // everything every 16 ops.
        const bool full = op % 16 == 0;
        const page_range cr = full ? page_range{0, n} : page_range{r.begin > 0 ? r.begin - 1 : 0, std::min(n, r.end + 1)};
        page_index bad = no_page;
        if (!full) {
            // Around r: both edges and a few pages inside.
            page_index probe[20] = {cr.begin, cr.begin + 1, cr.end - 2, cr.end - 1};
            for (int i = 4; i < 20; ++i) probe[i] = cr.begin + rng() % cr.size();
            for (page_index p : probe)
                if (p < n && (t.allocated(p) != alloc[p] || t.pins(p) != pins[p])) bad = p;
            REQUIRE(bad == no_page);
            continue;
        }
        // Full check without per-page lookups: expand leaves and pin runs.
        std::vector<bool> t_alloc(n, false);
        std::vector<std::uint32_t> t_pins(n, 0);
        t.for_each_folio({0, n}, [&](const folio_view& v) {
            for (page_index p = v.first; p < v.first + pages_in(v.order); ++p) t_alloc[p] = true;
        });
        t.for_each_pin_run([&](page_index b, page_index e, std::uint32_t c) {
            for (page_index p = b; p < e; ++p) t_pins[p] = c;
        });
        REQUIRE(t_alloc == alloc);
        REQUIRE(t_pins == pins);
        std::uint64_t pinned = 0;
        for (auto c : pins) pinned += c > 0;
        REQUIRE(t.stats().pinned_pages == pinned);
        const char* fail = nullptr;
        page_index fail_at = 0;
        t.for_each_folio({0, n}, [&](const folio_view& v) {
            ++checks;
            auto expect = [&](bool ok, const char* what) {
                if (!ok && fail == nullptr) {
                    fail = what;
                    fail_at = v.first;
                }
            };
            const page_range fr = v.range();
            expect(v.poisoned == poison[v.first], "poison differs from the model");
            if (v.poisoned) return;
            const shareability s = m.at(v.first);
            expect(m.all_of(fr, s), "leaf not uniform in shareability");
            bool any_pin = false;
            for (page_index p = fr.begin; p < fr.end; ++p) any_pin = any_pin || pins[p] > 0;
            if (s == S) expect(v.mappability == mappability::all, "shared leaf not in all");
            else if (v.mappability == mappability::none) expect(any_pin, "none leaf without pins");
            else expect(v.mappability == mappability::guest, "guest_only leaf not in guest");
            // No missed merge: a split 2M whose range is guest_only, unpinned, unpoisoned.
            if (v.top_order == order_2m && v.order == order_4k && is_aligned(v.first, order_2m)) {
                const page_range tr{v.first, v.first + 512};
                bool mergeable = m.all_of(tr, G);
                for (page_index p = tr.begin; p < tr.end && mergeable; ++p) mergeable = pins[p] == 0 && !poison[p];
                expect(!mergeable, "missed merge");
            }
        });
        CAPTURE(fail_at);
        REQUIRE(fail == nullptr);
        REQUIRE(t.check_counters());
    }
    CHECK(checks > 5000);
    CHECK(a.splits() > 20);
    CHECK(a.merges() > 20);
    CHECK(a.reserved_splits() == 0);
}

TEST_CASE("compact pieces: implicit frames, poison pages and inherited none settled after a split") {
    simulated_allocator a;
    const page_index n = pages_1g;
    sim_table t(a, n, order_1g);
    share_map m(n, S);
    REQUIRE(t.populate({0, n}, m));
    const frame_number f0 = t.lookup(0)->frame;
    // The whole 1G goes guest_only while page 3 is pinned: one leaf in none.
    REQUIRE(t.pin({3, 4}));
    convert(t, m, {0, n}, G, true);
    CHECK(t.lookup(0)->order == order_1g);
    CHECK(t.lookup(0)->mappability == mappability::none);
    // Sharing page 700 splits 1G -> 2M -> 4K; pieces inherit none and every
    // one without a pin settles to guest at once.
    convert(t, m, {700, 701}, S);
    CHECK(t.stats().split_folios == 2);
    CHECK(t.lookup(700)->mappability == mappability::all);
    CHECK(t.lookup(701)->mappability == mappability::guest);
    CHECK(t.lookup(3)->mappability == mappability::none);
    CHECK(t.lookup(3)->order == order_2m);
    CHECK(t.lookup(pages_in(order_2m) * 7)->mappability == mappability::guest);
    CHECK(t.check_counters());
    // Frames and first pages of pieces follow from the parent's.
    for (page_index p : {page_index{512}, page_index{700}, page_index{1023}, page_index{5 * 512 + 9}}) {
        auto v = t.lookup(p);
        REQUIRE(v);
        CHECK(v->frame == f0 + v->first);
        CHECK(v->top_order == order_1g);
        CHECK(v->first == align_down(p, v->order));
    }
    // Poison on a 4K piece and inside a 2M piece reports the exact page.
    t.poison(701);
    t.poison(9 * 512 + 77);
    CHECK(t.lookup(701)->poison_page == 701);
    CHECK(t.lookup(9 * 512)->poisoned);
    CHECK(t.lookup(9 * 512)->poison_page == 9 * 512 + 77);
    CHECK_FALSE(t.lookup(702)->poisoned);
    CHECK(t.lookup(702)->poison_page == no_page);
    CHECK(t.stats().poisoned_folios == 2);
    CHECK(t.check_counters());
    CHECK(dump(t).find("POISONED at 0x124d") != std::string::npos);
    // Snapshots see a difference deep inside a piece array.
    simulated_allocator b;
    sim_table u(b, n, order_1g);
    share_map mu(n, S);
    REQUIRE(u.populate({0, n}, mu));
    REQUIRE(u.pin({3, 4}));
    convert(u, mu, {0, n}, G, true);
    convert(u, mu, {700, 701}, S);
    u.poison(701);
    CHECK_FALSE(t == u);
    u.poison(9 * 512 + 77);
    CHECK(t == u);
    REQUIRE(t.unpin({3, 4}, m));
    CHECK_FALSE(t == u);
    REQUIRE(u.unpin({3, 4}, mu));
    CHECK(t == u);
    CHECK(t.lookup(3)->mappability == mappability::guest);
    // Unpoisoned pieces merged as far as they can: 2M piece 1 holds page 700.
    convert(t, m, {700, 701}, G);
    CHECK(t.lookup(0)->order == order_2m);
    CHECK(t.lookup(700)->order == order_4k);  // poisoned 701 blocks it
}
