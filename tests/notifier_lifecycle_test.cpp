// Tests for the two-phase notifier set, part 2 (the test_notifier binary,
// with notifier_test.cpp): sequence numbers and read_begin / read_retry,
// memory failure, commit-time reports, destruction while bound, rounds held
// by their owner (prepare_round), allocation-freedom and a closed consumer
// type. The helpers shared with part 1 are in support/notifier_support.hpp;
// the binary's operator new hook is here, in the translation unit of the
// test that reads it (with the replacement in another TU, clang may elide
// the test's own new/delete pair and the "hook really counts" check fails).
// Under -fno-exceptions, REQUIRE ends the program instead of the test case
// (as in part 1: one doctest configuration for the whole binary's tests).
#ifndef DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#define DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#endif
#include <doctest/doctest.h>

#include <guestmem/notifier/binding.hpp>
#include <guestmem/notifier/consumer.hpp>
#include <guestmem/notifier/notifier_set.hpp>
#include <guestmem/testing/recording_consumer.hpp>

#include "support/notifier_support.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <type_traits>

using namespace guestmem;
using namespace guestmem::test_support;

// ---- a global allocation counter for this test binary ----------------------
// Clang's sanitizer runtimes define operator new/delete in static archives,
// so replacing them does not link there: the allocation test is skipped.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define GUESTMEM_TEST_NO_NEW_HOOK 1
#endif
#endif
#ifndef GUESTMEM_TEST_NO_NEW_HOOK
#define GUESTMEM_TEST_NO_NEW_HOOK 0
#endif

namespace {
std::atomic<long> g_allocations{0};
[[maybe_unused]] void* counted_alloc(std::size_t n) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    std::abort();
}
} // namespace

#if !GUESTMEM_TEST_NO_NEW_HOOK
void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

TEST_CASE("read_begin / read_retry see every overlapping invalidation and no other") {
    set_t set;
    recording_consumer a("a"), b("b");
    binding<> in, out;
    REQUIRE(set.bind(in, a, R(0, 16), 0));
    REQUIRE(set.bind(out, b, R(100, 116), 0));
    commit_report report;

    auto probe = [&](auto&& op) {
        const auto si = set.read_begin(in), so = set.read_begin(out);
        CHECK_FALSE(set.read_retry(in, si));
        op();
        CHECK(set.read_retry(in, si));
        CHECK_FALSE(set.read_retry(out, so));
        CHECK(in.sequence() % 2 == 0);
        CHECK(out.sequence() % 2 == 0);
    };
    SUBCASE("committed round") {
        probe([&] {
            auto r = set.prepare_round(R(8, 64), invalidation_cause::to_shared);
            REQUIRE(r);
            set.commit_round(report);
        });
    }
    SUBCASE("aborted round") {
        probe([&] {
            auto r = set.prepare_round(R(8, 64), invalidation_cause::to_shared);
            REQUIRE(r);
            set.abort_round();
        });
    }
    SUBCASE("vetoed round") {
        a.veto_on_prepare(1);
        probe([&] { CHECK_FALSE(set.prepare_round(R(15, 64), invalidation_cause::to_guest_only)); });
    }
    SUBCASE("truncation") {
        probe([&] { set.invalidate(R(0, 1), invalidation_cause::truncate, report); });
    }
    SUBCASE("memory failure") {
        probe([&] { set.memory_failure(R(15, 16), order_2m, shareability::guest_only); });
    }
    SUBCASE("a read that began while an invalidation was in flight retries") {
        auto r = set.prepare_round(R(0, 16), invalidation_cause::to_shared);
        REQUIRE(r);
        const auto s = set.read_begin(in);
        CHECK(s % 2 == 1);
        set.commit_round(report);
        CHECK(set.read_retry(in, s));
        const auto after = set.read_begin(in);
        CHECK_FALSE(set.read_retry(in, after));
    }
    SUBCASE("nested invalidation while a round is in flight keeps the sequence odd but changes it") {
        auto r = set.prepare_round(R(0, 16), invalidation_cause::to_shared);
        REQUIRE(r);
        const auto s = in.sequence();
        set.memory_failure(R(3, 4), order_4k, shareability::guest_only);
        CHECK(in.sequence() % 2 == 1);
        CHECK(in.sequence() != s);
        set.invalidate(R(0, 2), invalidation_cause::truncate, report);
        CHECK(in.sequence() % 2 == 1);
        set.commit_round(report);
        CHECK(in.sequence() % 2 == 0);
    }
}

TEST_CASE("read_begin / read_retry from another thread while rounds run") {
    set_t set;
    recording_consumer a("a");
    binding<> s;
    REQUIRE(set.bind(s, a, R(0, 16), 0));
    std::atomic<bool> stop{false};
    std::atomic<long> odd_seen{0}, retries{0};
    std::thread reader([&] {
        while (!stop.load(std::memory_order_acquire)) {
            const auto seq = set.read_begin(s);
            if (seq % 2 == 1) odd_seen.fetch_add(1, std::memory_order_relaxed);
            if (set.read_retry(s, seq)) retries.fetch_add(1, std::memory_order_relaxed);
        }
    });
    commit_report report;
    for (int i = 0; i < 2000; ++i) {
        auto r = set.prepare_round(R(0, 4), invalidation_cause::to_shared);
        if (r) set.commit_round(report);
        set.memory_failure(R(1, 2), order_4k, shareability::guest_only);
    }
    stop.store(true, std::memory_order_release);
    reader.join();
    CHECK(s.sequence() == 2000 * 4);
    CHECK(retries.load() >= odd_seen.load());  // an odd read_begin always retries
}

namespace {
struct seq_probe {
    const binding<>* b = nullptr;
    int calls = 0;
    int odd = 0;
};
void check_odd(void* ctx, const recording_consumer&, call_kind, const invalidation& inv) {
    auto* p = static_cast<seq_probe*>(ctx);
    ++p->calls;
    if (p->b->sequence() % 2 == 1 && inv.sequence == p->b->sequence()) ++p->odd;
}
} // namespace

TEST_CASE("sequence is odd exactly while in flight (seen from inside the callbacks)") {
    set_t set;
    recording_consumer a("a");
    binding<> s;
    REQUIRE(set.bind(s, a, R(0, 16), 0));
    seq_probe p{&s};
    a.on_call(&check_odd, &p);
    commit_report report;
    CHECK(s.sequence() == 0);
    auto r = set.prepare_round(R(0, 4), invalidation_cause::to_shared);
    REQUIRE(r);
    CHECK(s.sequence() == 1);
    set.commit_round(report);
    CHECK(s.sequence() == 2);
    auto r2 = set.prepare_round(R(0, 4), invalidation_cause::to_guest_only);
    REQUIRE(r2);
    set.abort_round();
    CHECK(s.sequence() == 4);
    a.veto_on_prepare(1);
    CHECK_FALSE(set.prepare_round(R(0, 4), invalidation_cause::to_guest_only));
    CHECK(s.sequence() == 6);
    set.invalidate(R(0, 4), invalidation_cause::truncate, report);
    CHECK(s.sequence() == 8);
    set.memory_failure(R(2, 3), order_4k, shareability::guest_only);
    CHECK(s.sequence() == 10);
    CHECK(p.calls == 8);  // prepare+commit, prepare+abort, prepare (veto), prepare+commit, memory_failure
    CHECK(p.odd == p.calls);
    a.on_call(nullptr, nullptr);
}

TEST_CASE("memory_failure reaches every binding overlapping the folio, once, clipped, with order and shareability") {
    set_t set;
    recording_consumer a("a"), b("b"), c("c");
    binding<> sa, sb, sc, sa2;
    REQUIRE(set.bind(sa, a, R(0, 512), 0x10000));
    REQUIRE(set.bind(sa2, a, R(600, 700), 0));
    REQUIRE(set.bind(sb, b, R(256, 1024), 0x20));
    REQUIRE(set.bind(sc, c, R(1024, 1536), 0));
    // The 2M folio [512, 1024) failed: a binding over any of its pages
    // hears of it, not only one over the failed page.
    set.memory_failure(R(512, 1024), order_2m, shareability::shared);
    REQUIRE(a.size() == 1);
    CHECK(a[0].kind == call_kind::memory_failure);
    CHECK(a[0].inv.pages == R(600, 700));
    CHECK(a[0].inv.target == R(0, 100));
    CHECK(a[0].inv.order == order_2m);
    CHECK(a[0].inv.share == shareability::shared);
    CHECK(a[0].inv.cause == invalidation_cause::memory_failure);
    CHECK_FALSE(a[0].inv.vetoable);
    CHECK(a[0].inv.binding_id == sa2.id());
    REQUIRE(b.size() == 1);
    CHECK(b[0].inv.pages == R(512, 1024));
    CHECK(b[0].inv.target == R(0x20 + 256, 0x20 + 768));
    CHECK(c.total_calls() == 0);
    CHECK(sa.sequence() == 0);
    CHECK(sa2.sequence() == 2);
    CHECK(sb.sequence() == 2);
    CHECK(sc.sequence() == 0);
    set.memory_failure(R(0, 1), order_4k, shareability::guest_only);
    REQUIRE(a.size() == 2);
    CHECK(a[1].inv.pages == R(0, 1));
    CHECK(a[1].inv.share == shareability::guest_only);
    set.memory_failure(R(5000, 5001), order_4k, shareability::shared);  // covered by nothing
    set.memory_failure(R(7, 7), order_4k, shareability::shared);        // empty: nobody told
    CHECK(a.total_calls() + b.total_calls() + c.total_calls() == 3);
    CHECK(set.stats().memory_failures == 4);
}

TEST_CASE("commit_report collects leaked and poisoned pages from consumers") {
    set_t set;
    recording_consumer a("a"), b("b");
    binding<> sa, sb;
    REQUIRE(set.bind(sa, a, R(0, 64), 0));
    REQUIRE(set.bind(sb, b, R(32, 128), 0));
    a.leak_at(5);
    b.poison_at(40);
    b.leak_at(100);  // outside the invalidated range: not reported
    commit_report report;
    auto r = set.prepare_round(R(0, 64), invalidation_cause::to_guest_only);
    REQUIRE(r);
    set.commit_round(report);
    REQUIRE(report.size() == 2);
    CHECK(report.begin()[0].page == 5);
    CHECK(report.begin()[0].what == commit_report::kind::leaked);
    CHECK(report.begin()[0].binding_id == sa.id());
    CHECK(report.begin()[1].page == 40);
    CHECK(report.begin()[1].what == commit_report::kind::poisoned);
    CHECK(report.begin()[1].binding_id == sb.id());
    // Non-vetoable invalidations report too.
    report.clear();
    set.invalidate(R(90, 110), invalidation_cause::truncate, report);
    REQUIRE(report.size() == 1);
    CHECK(report.begin()->page == 100);
}

TEST_CASE("destruction: a bound binding unlinks itself; the set releases what is left") {
    recording_consumer a("a"), b("b");
    SUBCASE("binding destroyed while bound") {
        set_t set;
        binding<> keep;
        REQUIRE(set.bind(keep, a, R(0, 16), 0));
        std::uint64_t gone_id = 0;
        {
            binding<> temp;
            auto h = set.bind(temp, b, R(0, 16), 0);
            REQUIRE(h);
            gone_id = h.value().id;
            CHECK(set.binding_count() == 2);
        }
        CHECK(set.binding_count() == 1);
        CHECK(b.total_calls() == 0);  // no notification: its owner is going away
        commit_report report;
        set.invalidate(R(0, 16), invalidation_cause::truncate, report);
        CHECK(b.total_calls() == 0);
        CHECK(a.commits() == 1);
        CHECK(set.unbind(binding_handle{gone_id}).error().code() == errc::not_bound);
    }
    SUBCASE("binding destroyed during a round") {
        set_t set;
        binding<> keep;
        REQUIRE(set.bind(keep, a, R(0, 16), 0));
        auto temp = std::make_unique<binding<>>();
        REQUIRE(set.bind(*temp, b, R(0, 16), 0));
        auto r = set.prepare_round(R(0, 16), invalidation_cause::to_shared);
        REQUIRE(r);
        temp.reset();
        commit_report report;
        set.commit_round(report);
        CHECK(a.commits() == 1);
        CHECK(b.commits() == 0);
    }
    SUBCASE("set destroyed with bindings and an active round") {
        binding<> sa, sb;
        auto set = std::make_unique<set_t>();
        REQUIRE(set->bind(sa, a, R(0, 16), 0));
        REQUIRE(set->bind(sb, b, R(8, 32), 0));
        a.veto_at(0);  // release ignores it
        auto r = set->prepare_round(R(20, 24), invalidation_cause::to_shared);  // b only
        REQUIRE(r);
        set.reset();  // the set aborts its round, then releases its bindings
        CHECK_FALSE(sa.is_bound());
        CHECK_FALSE(sb.is_bound());
        CHECK(b.aborts() == 1);
        CHECK(a.commits() == 1);
        CHECK(b.commits() == 1);
        CHECK(a[1].inv.cause == invalidation_cause::release);
        CHECK(a[1].inv.pages == R(0, 16));
        CHECK(sa.sequence() % 2 == 0);
        CHECK(sb.sequence() % 2 == 0);
    }
}

TEST_CASE("rounds held by their owner: prepare_round, commit_round, abort_round") {
    fleet<3> f;
    set_t set;
    for (std::size_t i = 0; i < 3; ++i) REQUIRE(set.bind(f.slot[i], *f.c[i], R(10 * i, 10 * i + 20), 0));

    SUBCASE("commit: every binding in order, sequences even again") {
        REQUIRE(set.prepare_round(R(0, 100), invalidation_cause::to_guest_only));
        CHECK(set.round_in_flight());
        for (auto& s : f.slot) CHECK(s.sequence() == 1);
        commit_report report;
        set.commit_round(report);
        CHECK_FALSE(set.round_in_flight());
        check_committed_in_order(f, invalidation_cause::to_guest_only);
        for (std::size_t i = 0; i < 3; ++i) CHECK(f.journal[3 + i].inv.pages == R(10 * i, 10 * i + 20));
        for (auto& s : f.slot) CHECK(s.sequence() == 2);
        CHECK(set.stats().rounds == 1);
        CHECK(set.stats().commits == 1);
    }
    SUBCASE("abort_round aborts in reverse and ends the sequences") {
        REQUIRE(set.prepare_round(R(15, 16), invalidation_cause::to_shared));  // bindings 0 and 1
        set.abort_round();
        check_aborted_0_and_1(f);
        CHECK_FALSE(set.round_in_flight());
        CHECK(set.stats().aborts == 1);
        set.abort_round();  // nothing in flight: nothing happens
        CHECK(f.journal.size() == 4);
        CHECK(set.stats().aborts == 1);
    }
    SUBCASE("a begun round excludes other rounds and binds; commit_round and abort_round without one do nothing") {
        REQUIRE(set.prepare_round(R(0, 100), invalidation_cause::to_shared));
        auto again = set.prepare_round(R(0, 1), invalidation_cause::to_shared);
        REQUIRE_FALSE(again);
        CHECK(again.error().code() == errc::busy);
        CHECK(again.error().message() ==
              "cannot prepare pages [0, 0x1) while an invalidation round over [0, 0x64) is in flight");
        binding<> extra;
        recording_consumer x("x");
        CHECK(set.bind(extra, x, R(0, 1), 0).error().code() == errc::busy);
        commit_report report;
        set.commit_round(report);
        CHECK(f.journal.size() == 6);
        set.commit_round(report);
        set.abort_round();
        CHECK(f.journal.size() == 6);
        CHECK(set.stats().commits == 1);
        CHECK(set.stats().aborts == 0);
    }
    SUBCASE("bad causes, bad ranges and vetoes start nothing") {
        auto bad = set.prepare_round(R(0, 8), invalidation_cause::truncate);
        REQUIRE_FALSE(bad);
        CHECK(bad.error().code() == errc::invalid_argument);
        CHECK(bad.error().message() == "prepare_round() of pages [0, 0x8) needs a vetoable cause; truncate is "
                                       "not vetoable (use invalidate())");
        auto empty = set.prepare_round(R(8, 8), invalidation_cause::to_shared);
        REQUIRE_FALSE(empty);
        CHECK(empty.error().code() == errc::invalid_range);
        CHECK(f.journal.size() == 0);
        CHECK(set.stats().rounds == 0);
        f.c[1]->veto_at(12);
        auto vetoed = set.prepare_round(R(0, 100), invalidation_cause::to_guest_only);
        REQUIRE_FALSE(vetoed);
        CHECK(vetoed.error().code() == errc::vetoed);
        CHECK(vetoed.error().page() == 12);
        CHECK(vetoed.error().binding_id() == f.slot[1].id());
        CHECK_FALSE(set.round_in_flight());
        CHECK(f.c[0]->aborts() == 1);
        for (auto& s : f.slot) CHECK(s.sequence() % 2 == 0);
    }
    SUBCASE("unbind during a begun round aborts that binding; commit_round commits the others") {
        REQUIRE(set.prepare_round(R(0, 100), invalidation_cause::to_shared));
        REQUIRE(set.unbind(binding_handle{f.slot[1].id()}));
        CHECK(f.c[1]->aborts() == 1);
        commit_report report;
        set.commit_round(report);
        CHECK(f.c[0]->commits() == 1);
        CHECK(f.c[1]->commits() == 1);  // the release only
        CHECK(f.c[2]->commits() == 1);
    }
    SUBCASE("a set destroyed with a begun round aborts it") {
        binding<> sa;
        recording_consumer a("a");
        {
            set_t other;
            REQUIRE(other.bind(sa, a, R(0, 16), 0));
            REQUIRE(other.prepare_round(R(0, 16), invalidation_cause::to_shared));
        }
        CHECK(a.aborts() == 1);
        CHECK(a.commits() == 1);  // the release
        CHECK(sa.sequence() % 2 == 0);
    }
}

TEST_CASE("bind, unbind and full rounds allocate nothing") {
    if (GUESTMEM_TEST_NO_NEW_HOOK) {
        MESSAGE("skipped: operator new cannot be replaced under this sanitizer runtime");
        return;
    }
    fleet<3> f;  // allocated up front
    f.c[1]->leak_at(3);
    long before = 0, after = 0;
    bool all_ok = true;
    commit_report report;
    {
        before = g_allocations.load();
        set_t set;
        for (std::size_t i = 0; i < 3; ++i) {
            auto h = set.bind(f.slot[i], *f.c[i], R(0, 16), 0);
            all_ok = all_ok && h.has_value();
            if (h) f.h[i] = h.value();
        }
        {
            auto r = set.prepare_round(R(0, 8), invalidation_cause::to_guest_only);
            all_ok = all_ok && r.has_value();
            if (r) set.commit_round(report);
        }
        {
            auto r = set.prepare_round(R(0, 8), invalidation_cause::to_shared);
            if (r) set.abort_round();
        }
        f.c[2]->veto_on_prepare(1);
        all_ok = all_ok && !set.prepare_round(R(0, 8), invalidation_cause::to_shared);
        set.invalidate(R(0, 16), invalidation_cause::truncate, report);
        set.memory_failure(R(3, 4), order_2m, shareability::guest_only);
        const auto s = set.read_begin(f.slot[0]);
        all_ok = all_ok && !set.read_retry(f.slot[0], s);
        all_ok = all_ok && set.unbind(f.h[0], report).has_value();
        {
            binding<> temp;
            all_ok = all_ok && set.bind(temp, *f.c[0], R(100, 101), 0).has_value();
        }
        // set destroyed with two bindings
    }
    after = g_allocations.load();
    CHECK(all_ok);
    CHECK(after - before == 0);
    CHECK(f.c[1]->commits() == 3);  // the committed round, the truncation, the release
    CHECK(report.size() >= 1);
    // Sanity: the hook really counts.
    auto p = std::make_unique<int>(1);
    CHECK(g_allocations.load() > after);
}

namespace {
/// A closed consumer type: no virtual functions, no name().
struct plain_consumer {
    int prepares = 0, commits = 0, aborts = 0, failures = 0;
    bool refuse = false;
    status prepare(const invalidation& inv) {
        ++prepares;
        if (refuse) return error::make(errc::vetoed, inv.pages.begin, "page %#llx is pinned",
                                       static_cast<unsigned long long>(inv.pages.begin));
        return ok();
    }
    void commit(const invalidation&, commit_report&) noexcept { ++commits; }
    void abort(const invalidation&) noexcept { ++aborts; }
    void memory_failure(const invalidation&) noexcept { ++failures; }
};
static_assert(invalidation_consumer<plain_consumer>);
static_assert(!std::is_polymorphic_v<plain_consumer>);
} // namespace

TEST_CASE("a closed, non-virtual consumer type") {
    notifier_set<plain_consumer> set;
    plain_consumer x, y;
    binding<plain_consumer> sx, sy;
    auto hx = set.bind(sx, x, R(0, 8), 0);
    REQUIRE(hx);
    REQUIRE(set.bind(sy, y, R(4, 12), 0));
    CHECK(sx.owner() == &x);
    auto r = set.prepare_round(R(0, 12), invalidation_cause::to_shared);
    REQUIRE(r);
    commit_report report;
    set.commit_round(report);
    CHECK(x.commits == 1);
    CHECK(y.commits == 1);
    y.refuse = true;
    auto v = set.prepare_round(R(6, 7), invalidation_cause::to_guest_only);
    REQUIRE_FALSE(v);
    CHECK(v.error().binding_id() == sy.id());
    CHECK(std::string(v.error().message()) == "consumer (binding " + std::to_string(sy.id()) +
                                                  ") vetoed to_guest_only of [0x6, 0x7): page 0x6 is pinned");
    CHECK(x.aborts == 1);
    set.memory_failure(R(5, 6), order_4k, shareability::guest_only);
    CHECK(x.failures == 1);
    CHECK(y.failures == 1);
    CHECK(set.unbind(hx.value()));
    CHECK(x.commits == 2);  // the committed round and the release

    // The recording consumer works as a closed type too.
    notifier_set<recording_consumer> rs;
    recording_consumer rc("closed");
    binding<recording_consumer> rb;
    REQUIRE(rs.bind(rb, rc, R(0, 1), 7));
    rs.memory_failure(R(0, 1), order_1g, shareability::guest_only);
    CHECK(rc[0].inv.target == R(7, 8));
    CHECK(rc[0].inv.order == order_1g);
}
