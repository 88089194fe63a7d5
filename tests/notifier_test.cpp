// Tests for the two-phase notifier set, part 1: bindings and their
// validation, unbind and handles, prepare / commit / abort with vetoes at
// every position, non-vetoable causes, clipping and translation, multiple
// bindings per consumer. Part 2 (notifier_lifecycle_test.cpp, the same
// test_notifier binary): sequence numbers, memory failure, commit reports,
// destruction, allocation-freedom (with the binary's operator new hook), a
// closed consumer type. The helpers both use are in
// support/notifier_support.hpp.
// Under -fno-exceptions, REQUIRE ends the program instead of the test case.
#ifndef DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#define DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#endif
#include <doctest/doctest.h>

#include <guestmem/notifier/binding.hpp>
#include <guestmem/notifier/consumer.hpp>
#include <guestmem/notifier/notifier_set.hpp>
#include <guestmem/testing/recording_consumer.hpp>

#include "support/notifier_support.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <iterator>
#include <type_traits>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <thread>

using namespace guestmem;
using namespace guestmem::test_support;

namespace {

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

} // namespace

TEST_CASE("bind: validation, double bind, overlapping bindings of one consumer") {
    set_t set;
    recording_consumer a("a"), b("b");
    binding<> s1, s2, s3, s4;

    SUBCASE("empty and inverted ranges") {
        auto e = set.bind(s1, a, R(5, 5), 0);
        REQUIRE_FALSE(e);
        CHECK(e.error().code() == errc::invalid_range);
        CHECK(e.error().page() == 5);
        CHECK(e.error().message() == "range [0x5, 0x5) is empty");
        auto i = set.bind(s1, a, R(0x200, 0x100), 0);
        REQUIRE_FALSE(i);
        CHECK(i.error().code() == errc::invalid_range);
        CHECK(i.error().message() == "range [0x200, 0x100) is inverted");
        CHECK_FALSE(s1.is_bound());
        CHECK(set.binding_count() == 0);
    }
    SUBCASE("target base overflowing 2^64") {
        auto e = set.bind(s1, a, R(0x10, 0x20), UINT64_MAX - 0xf + 1);
        REQUIRE_FALSE(e);
        CHECK(e.error().code() == errc::invalid_range);
        CHECK(e.error().page() == 0x10);
        CHECK(e.error().message() ==
              "binding of pages [0x10, 0x20) at target base 0xfffffffffffffff1 overflows past 2^64");
        // The largest base that still fits is fine.
        auto ok1 = set.bind(s1, a, R(0x10, 0x20), UINT64_MAX - 0x10);
        REQUIRE(ok1);
        CHECK(s1.target() == R(UINT64_MAX - 0x10, UINT64_MAX));
    }
    SUBCASE("double bind of one slot") {
        auto h = set.bind(s1, a, R(0, 16), 100);
        REQUIRE(h);
        CHECK(s1.is_bound());
        CHECK(s1.id() == h.value().id);
        CHECK(s1.owner() == &a);
        CHECK(s1.pages() == R(0, 16));
        CHECK(s1.target_base() == 100);
        auto again = set.bind(s1, b, R(100, 116), 0);
        REQUIRE_FALSE(again);
        CHECK(again.error().code() == errc::already_bound);
        CHECK(again.error().page() == 100);
        CHECK(std::string(again.error().message()) ==
              "binding slot is already bound (binding " + std::to_string(h.value().id) + " over pages [0, 0x10))");
        // Bound to another set: still refused.
        set_t other;
        auto foreign = other.bind(s1, b, R(0, 1), 0);
        REQUIRE_FALSE(foreign);
        CHECK(foreign.error().code() == errc::already_bound);
        CHECK(set.binding_count() == 1);
        CHECK(other.binding_count() == 0);
    }
    SUBCASE("one consumer: overlapping rejected, adjacent allowed; different consumers may overlap") {
        auto h1 = set.bind(s1, a, R(10, 20), 0);
        REQUIRE(h1);
        auto over = set.bind(s2, a, R(5, 11), 0);
        REQUIRE_FALSE(over);
        CHECK(over.error().code() == errc::already_bound);
        CHECK(over.error().page() == 10);
        CHECK(std::string(over.error().message()) == "consumer already has binding " + std::to_string(h1.value().id) +
                                                         " over pages [0xa, 0x14), which overlaps [0x5, 0xb)");
        auto inside = set.bind(s2, a, R(12, 13), 0);
        REQUIRE_FALSE(inside);
        CHECK(inside.error().page() == 12);
        CHECK_FALSE(s2.is_bound());
        CHECK(set.bind(s2, a, R(20, 30), 0));   // adjacent after
        CHECK(set.bind(s3, a, R(0, 10), 0));    // adjacent before
        CHECK(set.bind(s4, b, R(0, 30), 0));    // another consumer overlapping all
        CHECK(set.binding_count() == 4);
        // Binding order is page order (ties by bind order).
        std::array<page_index, 4> begins{};
        std::size_t i = 0;
        set.for_each_binding([&](const binding<>& x) { begins[i++] = x.pages().begin; });
        CHECK(begins == std::array<page_index, 4>{0, 0, 10, 20});
    }
}

TEST_CASE("unbind: release delivery; unknown, stale and foreign handles") {
    set_t set;
    recording_consumer a("a"), b("b");
    binding<> s1, s2;
    auto h1 = set.bind(s1, a, R(0x10, 0x20), 0x1000);
    auto h2 = set.bind(s2, b, R(0x18, 0x30), 0x40);
    REQUIRE(h1);
    REQUIRE(h2);
    CHECK(h1.value().id != h2.value().id);

    a.veto_at(0x10);  // release is not vetoable: ignored
    a.leak_at(0x11);
    commit_report report;
    const auto seq0 = s1.sequence();
    auto released = set.unbind(h1.value(), report);
    REQUIRE(released);
    CHECK(released.value() == R(0x10, 0x20));  // the range the release covered
    CHECK_FALSE(s1.is_bound());
    CHECK(s1.id() == 0);
    CHECK(s1.owner() == nullptr);
    CHECK(s1.sequence() == seq0 + 2);
    REQUIRE(a.size() == 2);
    CHECK(a[0].kind == call_kind::prepare);
    CHECK(a[1].kind == call_kind::commit);
    for (const auto& c : a) {
        CHECK(c.inv.cause == invalidation_cause::release);
        CHECK_FALSE(c.inv.vetoable);
        CHECK(c.inv.pages == R(0x10, 0x20));
        CHECK(c.inv.target == R(0x1000, 0x1010));
        CHECK(c.inv.binding_id == h1.value().id);
        CHECK(c.inv.sequence % 2 == 1);
    }
    CHECK(a[0].vetoed);
    REQUIRE(report.size() == 1);
    CHECK(report.begin()->page == 0x11);
    CHECK(report.begin()->what == commit_report::kind::leaked);
    CHECK(set.stats().ignored_vetoes == 1);
    REQUIRE(set.last_ignored_veto().has_value());
    CHECK(set.last_ignored_veto()->binding_id() == h1.value().id);
    CHECK(b.total_calls() == 0);  // the other binding heard nothing
    CHECK(set.binding_count() == 1);

    // Stale: the same handle again.
    auto stale = set.unbind(h1.value());
    REQUIRE_FALSE(stale);
    CHECK(stale.error().code() == errc::not_bound);
    CHECK(stale.error().page() == no_page);
    CHECK(stale.error().binding_id() == no_binding);
    CHECK(std::string(stale.error().message()) == "binding " + std::to_string(h1.value().id) +
                                                       " is not bound to this notifier set (unknown, already "
                                                       "unbound, or from another set)");
    // Unknown: the default handle and a never-issued id.
    CHECK(set.unbind(binding_handle{}).error().code() == errc::not_bound);
    CHECK(set.unbind(binding_handle{UINT64_MAX}).error().code() == errc::not_bound);

    // Rebinding the same slot storage yields a new generation id; the old
    // handle stays stale.
    auto h3 = set.bind(s1, a, R(0x10, 0x20), 0x1000);
    REQUIRE(h3);
    CHECK(h3.value().id != h1.value().id);
    CHECK(set.unbind(h1.value()).error().code() == errc::not_bound);
    CHECK(s1.is_bound());

    // Foreign: a handle from another set, even one whose slot layout is the same.
    set_t other;
    recording_consumer c("c");
    binding<> so;
    auto ho = other.bind(so, c, R(0x10, 0x20), 0x1000);
    REQUIRE(ho);
    CHECK(set.unbind(ho.value()).error().code() == errc::not_bound);
    CHECK(other.unbind(h2.value()).error().code() == errc::not_bound);
    CHECK(so.is_bound());
    CHECK(s2.is_bound());
    CHECK(c.total_calls() == 0);
    CHECK(set.unbind(h3.value()));
    CHECK(set.unbind(h2.value()));
    CHECK(set.binding_count() == 0);
}

TEST_CASE("veto at every position of 1..5 consumers") {
    auto run = [](auto& f, std::size_t n, std::size_t pos, bool by_page) {
        set_t set;
        // Binding i covers [i, 100) at target 1000*i: binding order is i.
        for (std::size_t i = 0; i < n; ++i) {
            auto h = set.bind(f.slot[i], *f.c[i], R(i, 100), 1000 * i);
            REQUIRE(h);
            f.h[i] = h.value();
        }
        std::array<std::uint64_t, 5> seq{};
        for (std::size_t i = 0; i < n; ++i) seq[i] = set.read_begin(f.slot[i]);
        const page_index veto_page = by_page ? 50 + pos : pos;
        if (by_page)
            f.c[pos]->veto_at(veto_page);  // a page inside its clipped range
        else
            f.c[pos]->veto_on_prepare(1);
        auto r = set.prepare_round(R(0, 100), invalidation_cause::to_guest_only);
        REQUIRE_FALSE(r);
        const error& e = r.error();
        CHECK(e.code() == errc::vetoed);
        CHECK(e.binding_id() == f.h[pos].id);
        CHECK(e.page() == veto_page);
#if defined(__GNUC__) && !defined(__clang__)  // GCC 12 bug 105651: bogus -Wrestrict in char_traits.h
#pragma GCC diagnostic push                   // for "literal" + std::string&& at -O3 (Release)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
        const std::string prefix = "c" + std::to_string(pos) + " (binding " + std::to_string(f.h[pos].id) +
                                   ") vetoed to_guest_only of [";
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
        CHECK(contains(e.message(), prefix));
        CHECK(contains(e.message(), "refuses page"));
        // Journal: prepare 0..pos, then abort pos-1..0, nothing else.
        REQUIRE(f.journal.size() == pos + 1 + pos);
        for (std::size_t i = 0; i <= pos; ++i) {
            CHECK(f.journal[i].kind == call_kind::prepare);
            CHECK(f.journal[i].who == f.c[i].get());
        }
        for (std::size_t k = 0; k < pos; ++k) {
            const auto& call = f.journal[pos + 1 + k];
            CHECK(call.kind == call_kind::abort);
            CHECK(call.who == f.c[pos - 1 - k].get());
            CHECK(call.inv.pages == R(pos - 1 - k, 100));
            CHECK(call.inv.vetoable);
        }
        for (std::size_t i = 0; i < n; ++i) {
            CHECK(f.c[i]->commits() == 0);
            CHECK(f.c[i]->aborts() == (i < pos ? 1u : 0u));
            CHECK(f.c[i]->prepares() == (i <= pos ? 1u : 0u));
            CHECK(f.slot[i].sequence() % 2 == 0);                 // ended
            CHECK(set.read_retry(f.slot[i], seq[i]));             // and noticed
        }
        CHECK_FALSE(set.round_in_flight());
        const auto st = set.stats();
        CHECK(st.rounds == 1);
        CHECK(st.vetoes == 1);
        CHECK(st.aborts == 1);
        CHECK(st.commits == 0);
    };
    for (std::size_t n = 1; n <= 5; ++n) {
        for (std::size_t pos = 0; pos < n; ++pos) {
            for (bool by_page : {false, true}) {
                CAPTURE(n);
                CAPTURE(pos);
                CAPTURE(by_page);
                fleet<5> f;
                run(f, n, pos, by_page);
            }
        }
    }
}

TEST_CASE("veto: the consumer's own code is kept in the message, the code is vetoed") {
    set_t set;
    recording_consumer a("stage2");
    binding<> s;
    auto h = set.bind(s, a, R(0x200, 0x400), 0x80000);
    REQUIRE(h);
    a.veto_code(errc::out_of_memory);
    a.veto_on_prepare(1);
    auto r = set.prepare_round(R(0x100, 0x300), invalidation_cause::to_shared);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::vetoed);
    CHECK(r.error().page() == 0x200);
    CHECK(r.error().binding_id() == h.value().id);
    CHECK(std::string(r.error().message()) == "stage2 (binding " + std::to_string(h.value().id) +
                                                  ") vetoed to_shared of [0x200, 0x300): stage2 refuses page 0x200 "
                                                  "(out_of_memory)");
    CHECK(make_error_code(r.error()) == std::error_code(errc::vetoed));
}

TEST_CASE("successful rounds: commit in binding order, abort in reverse, one round at a time") {
    fleet<3> f;
    set_t set;
    for (std::size_t i = 0; i < 3; ++i) REQUIRE(set.bind(f.slot[i], *f.c[i], R(10 * i, 10 * i + 20), 0));

    SUBCASE("commit") {
        auto r = set.prepare_round(R(0, 100), invalidation_cause::to_shared);
        REQUIRE(r);
        CHECK(set.round_in_flight());
        for (auto& s : f.slot) CHECK(s.sequence() % 2 == 1);  // in flight between prepare and commit
        commit_report report;
        set.commit_round(report);
        CHECK_FALSE(set.round_in_flight());
        CHECK(report.empty());
        check_committed_in_order(f, invalidation_cause::to_shared);
        for (auto& s : f.slot) CHECK(s.sequence() == 2);
        // Committing or aborting a finished round does nothing.
        set.commit_round(report);
        set.abort_round();
        CHECK(f.journal.size() == 6);
        CHECK(set.stats().commits == 1);
        CHECK(set.stats().aborts == 0);
    }
    SUBCASE("abort after a successful prepare") {
        auto r = set.prepare_round(R(15, 16), invalidation_cause::to_guest_only);  // bindings 0 and 1 only
        REQUIRE(r);
        set.abort_round();
        check_aborted_0_and_1(f);
        CHECK(set.stats().aborts == 1);
        CHECK_FALSE(set.round_in_flight());
    }
    SUBCASE("a second round or a bind waits for the round in flight") {
        REQUIRE(set.prepare_round(R(0, 100), invalidation_cause::to_shared));
        auto busy = set.prepare_round(R(0, 1), invalidation_cause::to_shared);
        REQUIRE_FALSE(busy);
        CHECK(busy.error().code() == errc::busy);
        CHECK(busy.error().page() == 0);
        CHECK(busy.error().message() ==
              "cannot prepare pages [0, 0x1) while an invalidation round over [0, 0x64) is in flight");
        binding<> extra;
        recording_consumer x("x");
        auto bb = set.bind(extra, x, R(0, 1), 0);
        REQUIRE_FALSE(bb);
        CHECK(bb.error().code() == errc::busy);
        CHECK(bb.error().message() ==
              "cannot bind pages [0, 0x1) while an invalidation round over [0, 0x64) is in flight");
        set.abort_round();
        CHECK_FALSE(set.round_in_flight());
        CHECK(f.c[0]->aborts() == 1);
        CHECK(f.c[1]->aborts() == 1);
        CHECK(f.c[2]->aborts() == 1);
        for (auto& s : f.slot) CHECK(s.sequence() % 2 == 0);
    }
    SUBCASE("unbind during a round aborts that binding first, then releases it") {
        auto h = set.bind(f.slot[0], *f.c[0], R(0, 1), 0);  // already bound: refused
        CHECK(h.error().code() == errc::already_bound);
        auto r = set.prepare_round(R(0, 100), invalidation_cause::to_shared);
        REQUIRE(r);
        const std::uint64_t id1 = f.slot[1].id();
        REQUIRE(set.unbind(binding_handle{id1}));
        CHECK(f.c[1]->aborts() == 1);
        CHECK(f.c[1]->commits() == 1);  // the release
        CHECK(f.c[1]->count(call_kind::prepare) == 2);
        CHECK(f.slot[1].sequence() % 2 == 0);
        commit_report report;
        set.commit_round(report);
        CHECK(f.c[0]->commits() == 1);
        CHECK(f.c[1]->commits() == 1);
        CHECK(f.c[2]->commits() == 1);
    }
}

TEST_CASE("non-vetoable causes commit despite vetoes and count them") {
    for (auto cause : {invalidation_cause::truncate, invalidation_cause::release, invalidation_cause::memory_failure}) {
        CAPTURE(to_string(cause));
        fleet<3> f;
        set_t set;
        for (std::size_t i = 0; i < 3; ++i) REQUIRE(set.bind(f.slot[i], *f.c[i], R(0, 64), 0));
        f.c[0]->veto_at(3);
        f.c[2]->veto_on_prepare(1);
        commit_report report;
        set.invalidate(R(0, 8), cause, report);
        for (std::size_t i = 0; i < 3; ++i) {
            CHECK(f.c[i]->prepares() == 1);
            CHECK(f.c[i]->commits() == 1);
            CHECK(f.c[i]->aborts() == 0);
            CHECK(f.slot[i].sequence() == 2);
        }
        // prepare all (in order), then commit all (in order)
        REQUIRE(f.journal.size() == 6);
        for (std::size_t i = 0; i < 3; ++i) {
            CHECK(f.journal[i].kind == call_kind::prepare);
            CHECK(f.journal[3 + i].kind == call_kind::commit);
            CHECK_FALSE(f.journal[i].inv.vetoable);
            CHECK(f.journal[i].inv.cause == cause);
        }
        const auto st = set.stats();
        CHECK(st.ignored_vetoes == 2);
        CHECK(st.vetoes == 0);
        CHECK(st.commits == 1);
        CHECK(st.rounds == 1);
        REQUIRE(set.last_ignored_veto().has_value());
        CHECK(set.last_ignored_veto()->binding_id() == f.slot[2].id());
        CHECK(set.last_ignored_veto()->code() == errc::vetoed);

        // prepare_round refuses non-vetoable causes outright.
        auto r = set.prepare_round(R(0, 8), cause);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == errc::invalid_argument);
        CHECK(r.error().page() == 0);
        CHECK(std::string(r.error().message()) == "prepare_round() of pages [0, 0x8) needs a vetoable cause; " +
                                                      std::string(to_string(cause)) +
                                                      " is not vetoable (use invalidate())");
        CHECK(f.journal.size() == 6);
    }
}

TEST_CASE("prepare_round: bad causes and ranges touch nothing") {
    set_t set;
    recording_consumer a("a");
    binding<> s;
    REQUIRE(set.bind(s, a, R(0, 64), 0));
    auto bad = set.prepare_round(R(0, 8), static_cast<invalidation_cause>(9));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code() == errc::invalid_argument);
    CHECK(bad.error().message() == "prepare_round() of pages [0, 0x8) needs a vetoable cause; invalid cause is "
                                   "not vetoable (use invalidate())");
    auto empty = set.prepare_round(R(8, 8), invalidation_cause::to_shared);
    REQUIRE_FALSE(empty);
    CHECK(empty.error().code() == errc::invalid_range);
    CHECK(empty.error().message() == "range [0x8, 0x8) is empty");
    auto inverted = set.prepare_round(R(9, 8), invalidation_cause::to_shared);
    REQUIRE_FALSE(inverted);
    CHECK(inverted.error().code() == errc::invalid_range);
    CHECK(inverted.error().page() == 9);
    commit_report report;
    set.invalidate(R(9, 8), invalidation_cause::truncate, report);  // empty/inverted: nothing
    CHECK(a.total_calls() == 0);
    CHECK(s.sequence() == 0);
    CHECK(set.stats().rounds == 0);
    // A range overlapping no binding is a successful, empty round.
    auto none = set.prepare_round(R(64, 128), invalidation_cause::to_shared);
    REQUIRE(none);
    set.commit_round(report);
    CHECK(a.total_calls() == 0);
    CHECK(s.sequence() == 0);
}

TEST_CASE("clipping and translation: bindings before, inside, after and across the range") {
    // Invalidate [20, 30).
    struct cfg {
        const char* name;
        page_range pages;
        std::uint64_t base;
        bool hit;
        page_range clipped;
        page_range target;
    };
    const cfg cases[] = {
        {"ends_at_begin", R(10, 20), 900, false, {}, {}},
        {"starts_before", R(10, 24), 1000, true, R(20, 24), R(1010, 1014)},
        {"inside", R(22, 25), 5000, true, R(22, 25), R(5000, 5003)},
        {"exact", R(20, 30), 0, true, R(20, 30), R(0, 10)},
        {"starts_inside", R(27, 40), 300, true, R(27, 30), R(300, 303)},
        {"across", R(5, 60), 100, true, R(20, 30), R(115, 125)},
        {"starts_at_end", R(30, 40), 700, false, {}, {}},
        {"far_before", R(0, 3), 1, false, {}, {}},
        {"far_after", R(90, 95), 2, false, {}, {}},
    };
    constexpr std::size_t n = std::size(cases);
    std::array<std::unique_ptr<recording_consumer>, n> c;
    std::array<binding<>, n> slots;
    set_t set;
    for (std::size_t i = 0; i < n; ++i) {
        c[i] = std::make_unique<recording_consumer>(cases[i].name);
        REQUIRE(set.bind(slots[i], *c[i], cases[i].pages, cases[i].base));
    }
    auto check = [&](invalidation_cause cause) {
        for (std::size_t i = 0; i < n; ++i) {
            CAPTURE(cases[i].name);
            if (!cases[i].hit) {
                CHECK(c[i]->total_calls() == 0);
                continue;
            }
            REQUIRE(c[i]->size() == 2);
            for (const auto& call : *c[i]) {
                CHECK(call.inv.pages == cases[i].clipped);
                CHECK(call.inv.target == cases[i].target);
                CHECK(call.inv.cause == cause);
                CHECK(call.inv.binding_id == slots[i].id());
                // guest_memfd's arithmetic: base + max(pgoff, start) - pgoff
                const auto pgoff = cases[i].pages.begin;
                CHECK(call.inv.target.begin == cases[i].base + std::max<page_index>(pgoff, 20) - pgoff);
                CHECK(call.inv.target.end == cases[i].base + std::min<page_index>(cases[i].pages.end, 30) - pgoff);
            }
            c[i]->clear();
        }
    };
    auto r = set.prepare_round(R(20, 30), invalidation_cause::to_guest_only);
    REQUIRE(r);
    commit_report report;
    set.commit_round(report);
    check(invalidation_cause::to_guest_only);
    set.invalidate(R(20, 30), invalidation_cause::truncate, report);
    check(invalidation_cause::truncate);
}

TEST_CASE("multiple bindings per consumer get one clipped invalidation each") {
    set_t set;
    recording_consumer iommu("iommu");
    binding<> lo, hi, far;
    auto h_lo = set.bind(lo, iommu, R(0, 10), 100);
    auto h_hi = set.bind(hi, iommu, R(20, 30), 500);
    auto h_far = set.bind(far, iommu, R(40, 50), 900);
    REQUIRE(h_lo);
    REQUIRE(h_hi);
    REQUIRE(h_far);
    commit_report report;
    set.invalidate(R(5, 25), invalidation_cause::truncate, report);
    REQUIRE(iommu.size() == 4);
    CHECK(iommu[0].kind == call_kind::prepare);
    CHECK(iommu[0].inv.binding_id == h_lo.value().id);
    CHECK(iommu[1].kind == call_kind::prepare);
    CHECK(iommu[1].inv.binding_id == h_hi.value().id);
    CHECK(iommu[2].kind == call_kind::commit);
    CHECK(iommu[2].inv.pages == R(5, 10));
    CHECK(iommu[2].inv.target == R(105, 110));
    CHECK(iommu[2].inv.binding_id == h_lo.value().id);
    CHECK(iommu[3].kind == call_kind::commit);
    CHECK(iommu[3].inv.pages == R(20, 25));
    CHECK(iommu[3].inv.target == R(500, 505));
    CHECK(iommu[3].inv.binding_id == h_hi.value().id);
    CHECK(far.sequence() == 0);

    // A veto on one binding of the consumer aborts the other binding that prepared.
    iommu.clear();
    iommu.veto_at(22);
    auto r = set.prepare_round(R(0, 50), invalidation_cause::to_shared);
    REQUIRE_FALSE(r);
    CHECK(r.error().binding_id() == h_hi.value().id);
    CHECK(r.error().page() == 22);
    REQUIRE(iommu.size() == 3);
    CHECK(iommu[2].kind == call_kind::abort);
    CHECK(iommu[2].inv.binding_id == h_lo.value().id);
    CHECK(iommu.commits() == 0);
}
