// Tests for the guest memory object: the seeds' scenarios, conversion all
// or nothing, faults with access control, pins, poison, bindings, stats and
// dump. Failure injection through convert is in
// guest_memory_injection_test.cpp (the same test_guest_memory binary); the
// helpers both use are in support/memory_support.hpp.
#include <doctest/doctest.h>

#include <guestmem/testing/simulated_allocator.hpp>
#include <guestmem/memory/guest_memory.hpp>

#include "support/memory_support.hpp"

#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <new>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace guestmem;
using namespace guestmem::test_support;

TEST_CASE("two-phase round: A and B prepare, C vetoes: nothing changes, A and B are aborted in reverse order") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 4 * p2m, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 4 * p2m}));
    std::vector<test_consumer::call> journal;
    test_consumer a("A", &journal), b("B", &journal), c("C", &journal);
    binding<consumer> ba, bb, bc;
    REQUIRE(mem.bind(ba, a, {0, 4 * p2m}, 0x1000));
    REQUIRE(mem.bind(bb, b, {0, 4 * p2m}, 0x2000));
    auto hc = mem.bind(bc, c, {p2m, 2 * p2m}, 0x3000);
    REQUIRE(hc);
    c.veto = true;
    const snapshot before(mem);

    auto r = mem.convert({p2m + 5, p2m + 6}, shareability::guest_only);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::vetoed);
    CHECK(r.error().page() == p2m + 5);
    CHECK(r.error().binding_id() == hc.value().id);
    CHECK(std::string(r.error().message()).find("C cannot split its mapping") != std::string::npos);
    CHECK(snapshot(mem) == before);
    CHECK(mem.shareability_at(p2m + 5).value() == shareability::shared);
    // A and B prepared, then aborted in reverse order; nobody committed.
    REQUIRE(journal.size() == 5);
    CHECK(std::string{journal[0].what, journal[1].what, journal[2].what, journal[3].what, journal[4].what} == "pppaa");
    CHECK(journal[3].inv.target.begin == 0x2000 + p2m + 5);  // B aborted first
    CHECK(journal[4].inv.target.begin == 0x1000 + p2m + 5);
    CHECK(a.count('c') + b.count('c') + c.count('c') == 0);
    CHECK(c.count('a') == 0);  // the vetoing consumer did not prepare anything to abort
    CHECK(mem.stats().vetoes == 1);
    CHECK(mem.stats().rollbacks == 1);

    // Once C lets go, the same conversion goes through and everyone commits once.
    c.veto = false;
    REQUIRE(mem.convert({p2m + 5, p2m + 6}, shareability::guest_only));
    CHECK(a.count('c') == 1);
    CHECK(b.count('c') == 1);
    CHECK(c.count('c') == 1);
    CHECK(c.calls.back().inv.target == page_range{0x3000 + 5, 0x3000 + 6});
    CHECK(mem.shareability_at(p2m + 5).value() == shareability::guest_only);
}

TEST_CASE("a pinned page makes shared -> guest_only busy with that exact page; it succeeds after unpin") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 2 * p2m, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 2 * p2m}));
    REQUIRE(mem.pin({700, 701}, accessor::device));
    const snapshot before(mem, {690, 710});
    auto r = mem.convert({600, 800}, shareability::guest_only);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::busy);
    CHECK(r.error().page() == 700);
    CHECK(std::string(r.error().message()).find("0x2bc") != std::string::npos);
    CHECK(snapshot(mem, {690, 710}) == before);
    CHECK(mem.stats().busy_refusals == 1);
    REQUIRE(mem.unpin({700, 701}));
    REQUIRE(mem.convert({600, 800}, shareability::guest_only));
    CHECK(mem.shareability_at(700).value() == shareability::guest_only);
    CHECK(mem.mappability_at(700).value() == mappability::guest);
}

TEST_CASE("deferred unshare: unshare of a pinned page goes all -> none; the last unpin finishes it and re-merges 1G") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = p1g, .initial = shareability::guest_only, .max_order = order_1g});
    REQUIRE(mem.allocate({0, p1g}));
    CHECK(mem.stats().folios_1g == 1);
    // Share one page: 1G -> 2M -> 4K only as far as needed.
    REQUIRE(mem.convert({3 * p2m + 7, 3 * p2m + 8}, shareability::shared));
    auto s = mem.stats();
    CHECK(s.folios_1g == 0);
    CHECK(s.folios_2m == 511);
    CHECK(s.folios_4k == 512);
    CHECK(mem.mappability_at(3 * p2m + 7).value() == mappability::all);
    // The host pins the shared page (GUP), then the guest unshares it.
    REQUIRE(mem.pin({3 * p2m + 7, 3 * p2m + 8}, accessor::host));
    REQUIRE(mem.convert({3 * p2m + 7, 3 * p2m + 8}, shareability::guest_only, {.defer_if_pinned = true}));
    CHECK(mem.shareability_at(3 * p2m + 7).value() == shareability::guest_only);
    CHECK(mem.mappability_at(3 * p2m + 7).value() == mappability::none);
    CHECK(mem.stats().deferred_folios == 1);
    CHECK(mem.stats().folios_1g == 0);  // not merged while referenced
    // Nobody may map it while references drain, not even the hypervisor.
    auto f = mem.fault(3 * p2m + 7, shareability::guest_only, accessor::hypervisor);
    REQUIRE_FALSE(f);
    CHECK(f.error().code() == errc::retry);
    CHECK(std::string(f.error().message()) == "page 0x607 (mappability none): pins still draining: retry once they drop");
    // The last unpin fires the deferred work at once: no vCPU run involved.
    REQUIRE(mem.unpin({3 * p2m + 7, 3 * p2m + 8}));
    s = mem.stats();
    CHECK(s.folios_1g == 1);
    CHECK(s.folios_2m == 0);
    CHECK(s.folios_4k == 0);
    CHECK(s.split_folios == 0);
    CHECK(mem.mappability_at(3 * p2m + 7).value() == mappability::guest);
    CHECK(mem.fault(3 * p2m + 7, shareability::guest_only, accessor::hypervisor).value().order == order_1g);
}

TEST_CASE("the deferred counter counts folios a conversion sent to none, not those already draining") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 8, .initial = shareability::shared, .max_order = order_4k});
    REQUIRE(mem.allocate({0, 8}));
    REQUIRE(mem.pin({1, 2}, accessor::host));
    REQUIRE(mem.convert({0, 4}, shareability::guest_only, {.defer_if_pinned = true}));
    CHECK(mem.mappability_at(1).value() == mappability::none);
    CHECK(mem.stats().deferred_folios == 1);
    // Page 2 is shared again, then the whole range unshared again while page
    // 1 still drains: page 1 was already in none, nothing new was deferred.
    REQUIRE(mem.convert({2, 3}, shareability::shared));
    REQUIRE(mem.convert({0, 4}, shareability::guest_only, {.defer_if_pinned = true}));
    CHECK(mem.mappability_at(1).value() == mappability::none);
    CHECK(mem.stats().deferred_folios == 1);
    REQUIRE(mem.unpin({1, 2}));
    CHECK(mem.mappability_at(1).value() == mappability::guest);
}

TEST_CASE("deferred unshare: none -> all when the range is shared again before references drain") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = p2m, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, p2m}));
    REQUIRE(mem.pin({0, 1}, accessor::host));
    REQUIRE(mem.convert({0, 1}, shareability::guest_only, {.defer_if_pinned = true}));
    CHECK(mem.mappability_at(0).value() == mappability::none);
    auto pin_again = mem.pin({0, 1}, accessor::trusted_device);
    REQUIRE_FALSE(pin_again);
    CHECK(pin_again.error().code() == errc::busy);
    REQUIRE(mem.convert({0, 1}, shareability::shared));
    CHECK(mem.mappability_at(0).value() == mappability::all);
    REQUIRE(mem.unpin({0, 1}));
    CHECK(mem.mappability_at(0).value() == mappability::all);
}

TEST_CASE("round trips shared -> guest_only -> shared for 4K, 2M and 1G layouts") {
    for (folio_order order : {order_4k, order_2m, order_1g}) {
        CAPTURE(unsigned(order));
        simulated_allocator alloc;
        sim_memory mem(alloc, {.pages = 2 * p1g, .initial = shareability::shared, .max_order = order});
        REQUIRE(mem.allocate({0, order == order_4k ? 4096 : 2 * p1g}));
        const snapshot start(mem);
        for (page_range r : {page_range{0, 1}, page_range{10, 20}, page_range{p2m - 1, p2m + 1}, page_range{0, p2m},
                             page_range{p1g - 3, p1g + 3}}) {
            if (order == order_4k && r.end > 4096) continue;
            CAPTURE(r.begin);
            REQUIRE(mem.convert(r, shareability::guest_only));
            {
                const auto guard = mem.lock_shared();
                CHECK(mem.locked(guard).shareability_map().all_of(r, shareability::guest_only));
                CHECK(mem.locked(guard).shareability_map().coalesced());
            }
            REQUIRE(mem.convert(r, shareability::shared));
            CHECK(snapshot(mem).runs == start.runs);
        }
        // Shared -> private of everything then back: folios are uniform again.
        REQUIRE(mem.convert({0, 2 * p1g}, shareability::guest_only));
        CHECK(mem.stats().runs == 1);
        if (order != order_4k) CHECK(mem.stats().split_folios == 0);
        REQUIRE(mem.convert({0, 2 * p1g}, shareability::shared));
        CHECK(mem.stats().shared_pages == 2 * p1g);
    }
}

TEST_CASE("converting a range already in the target state succeeds and notifies nobody") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 1024, .initial = shareability::guest_only});
    test_consumer a("A");
    binding<consumer> ba;
    REQUIRE(mem.bind(ba, a, {0, 1024}, 0));
    REQUIRE(mem.convert({0, 1024}, shareability::guest_only));
    CHECK(a.calls.empty());
    CHECK(mem.stats().noop_conversions == 1);
    CHECK(mem.stats().conversions == 0);
}

TEST_CASE("truncation keeps shareability, tells consumers (not vetoable) and zeroes partial huge folios") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 4 * p2m, .initial = shareability::guest_only, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 4 * p2m}));
    REQUIRE(mem.convert({100, 200}, shareability::shared));
    test_consumer a("A");
    a.veto = true;  // truncation is not vetoable
    binding<consumer> ba;
    REQUIRE(mem.bind(ba, a, {0, 4 * p2m}, 0));
    REQUIRE(mem.punch_hole({p2m, 3 * p2m}));
    CHECK(a.count('c') == 1);
    CHECK(a.calls.back().inv.cause == invalidation_cause::truncate);
    CHECK_FALSE(a.calls.back().inv.vetoable);
    CHECK(mem.stats().allocated_pages == 2 * p2m);
    CHECK(mem.shareability_at(150).value() == shareability::shared);
    auto hole = mem.fault(p2m, shareability::guest_only, accessor::hypervisor);
    REQUIRE_FALSE(hole);
    CHECK(hole.error().code() == errc::not_allocated);
    // A partial punch of a 2M folio zeroes and keeps it.
    const auto zeroed = alloc.zeroed_pages();
    REQUIRE(mem.punch_hole({3 * p2m + 10, 3 * p2m + 20}));
    CHECK(alloc.zeroed_pages() == zeroed + 10);
    CHECK(mem.stats().allocated_pages == 2 * p2m);
    // Punching a pinned folio cannot fail: it leaves the object (a hole
    // again) but is not freed while pinned.
    REQUIRE(mem.pin({150, 151}, accessor::host));
    const auto frees = alloc.frees();
    REQUIRE(mem.punch_hole({0, p2m}));
    CHECK(mem.stats().allocated_pages == p2m);
    CHECK(mem.stats().detached_pages == p2m);
    CHECK(alloc.frees() == frees);
    CHECK(mem.fault(150, shareability::shared, accessor::host).error().code() == errc::not_allocated);
}

TEST_CASE("conversion of a partly allocated range; the state is kept for pages allocated later") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 4 * p2m, .initial = shareability::guest_only, .max_order = order_2m});
    REQUIRE(mem.allocate({0, p2m}));
    REQUIRE(mem.convert({p2m - 10, p2m + 10}, shareability::shared));
    CHECK(mem.shareability_at(p2m + 5).value() == shareability::shared);
    REQUIRE(mem.allocate({p2m, 2 * p2m}));
    // The newly allocated 2M range holds 10 shared pages: its folio is split at once.
    auto f = mem.fault(p2m + 5, shareability::shared, accessor::host);
    REQUIRE(f);
    CHECK(f.value().order == order_4k);
    auto g = mem.fault(p2m + 100, shareability::guest_only, accessor::hypervisor);
    REQUIRE(g);
    CHECK(g.value().order == order_4k);  // its 2M folio holds mixed pages
}

TEST_CASE("faults: access control, holes, poison and bad input") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 2 * p2m, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 2 * p2m}));
    REQUIRE(mem.convert({p2m, 2 * p2m}, shareability::guest_only));
    for (auto who : {accessor::host, accessor::hypervisor, accessor::device, accessor::trusted_device}) {
        CAPTURE(to_string(who));
        auto shared_fault = mem.fault(1, shareability::shared, who);
        REQUIRE(shared_fault);
        CHECK(shared_fault.value().order == order_2m);
        CHECK(shared_fault.value().frame == shared_fault.value().folio_frame + 1);
        auto private_fault = mem.fault(p2m + 1, shareability::guest_only, who);
        CHECK(bool(private_fault) == may_access(who, shareability::guest_only));
        if (!private_fault) CHECK(private_fault.error().code() == errc::permission_denied);
    }
    auto mismatch = mem.fault(p2m + 1, shareability::shared, accessor::host);
    REQUIRE_FALSE(mismatch);
    CHECK(mismatch.error().code() == errc::permission_denied);
    CHECK(std::string(mismatch.error().message()) == "page 0x201 is guest_only, not shared");
    auto past = mem.fault(2 * p2m, shareability::shared, accessor::host);
    REQUIRE_FALSE(past);
    CHECK(past.error().code() == errc::invalid_range);
    CHECK(mem.fault(0, static_cast<shareability>(5), accessor::host).error().code() == errc::invalid_argument);
    CHECK(mem.fault(0, shareability::shared, static_cast<accessor>(9)).error().code() == errc::invalid_argument);
}

TEST_CASE("try_fault answers exactly what fault answers and nothing wherever fault refuses") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 4 * p2m, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 3 * p2m}));                                 // the last 2 MiB a hole
    REQUIRE(mem.convert({p2m, 2 * p2m}, shareability::guest_only));      // guest_only folio
    REQUIRE(mem.convert({2 * p2m + 5, 2 * p2m + 9}, shareability::guest_only));  // split folio, mixed
    REQUIRE(mem.memory_failure(7));                                      // poisoned folio
    // A thread's first shared hold takes its reader slot; try_fault never
    // takes one (answers nothing), so fault once first, as guestmem_fault does.
    std::thread([&] { CHECK_FALSE(mem.try_fault(2 * p2m, shareability::shared, accessor::host).has_value()); }).join();
    REQUIRE_FALSE(mem.fault(7, shareability::shared, accessor::host));
    std::size_t answers = 0, refusals = 0;
    const page_index pages[] = {0, 7, 100, p2m, p2m + 1, 2 * p2m, 2 * p2m + 5, 2 * p2m + 8, 2 * p2m + 9,
                                3 * p2m - 1, 3 * p2m, 4 * p2m - 1, 4 * p2m, ~page_index{0}};
    for (page_index p : pages)
        for (unsigned w = 0; w < 3; ++w)
            for (unsigned a = 0; a < 5; ++a) {
                const auto wanted = static_cast<shareability>(w);
                const auto who = static_cast<accessor>(a);
                CAPTURE(p);
                CAPTURE(w);
                CAPTURE(a);
                const auto f = mem.fault(p, wanted, who);
                const auto t = mem.try_fault(p, wanted, who);
                REQUIRE(bool(f) == t.has_value());
                if (!f) {
                    ++refusals;
                    continue;
                }
                ++answers;
                CHECK(t->frame == f.value().frame);
                CHECK(t->folio_first == f.value().folio_first);
                CHECK(t->folio_frame == f.value().folio_frame);
                CHECK(t->order == f.value().order);
                CHECK(t->mappability == f.value().mappability);
            }
    CHECK(answers > 10);
    CHECK(refusals > 100);
}

TEST_CASE("memory failure: every consumer of the folio told once with its order and shareability, page never handed out, conversion refused") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 2 * p2m, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 2 * p2m}));
    test_consumer a("A"), b("B");
    binding<consumer> ba, bb;
    REQUIRE(mem.bind(ba, a, {0, p2m}, 0x100));
    REQUIRE(mem.bind(bb, b, {p2m, 2 * p2m}, 0x900));
    test_consumer c_other("C");  // maps another page of the same folio only
    binding<consumer> bc;
    REQUIRE(mem.bind(bc, c_other, {300, 310}, 0x5000));
    REQUIRE(mem.memory_failure(42));
    REQUIRE(a.count('m') == 1);
    CHECK(a.calls.back().inv.order == order_2m);
    CHECK(a.calls.back().inv.pages == page_range{0, p2m});  // the whole poisoned folio
    CHECK(a.calls.back().inv.target == page_range{0x100, 0x100 + p2m});
    CHECK(a.calls.back().inv.share == shareability::shared);
    REQUIRE(c_other.count('m') == 1);
    CHECK(c_other.calls.back().inv.pages == page_range{300, 310});
    CHECK(c_other.calls.back().inv.target == page_range{0x5000, 0x5000 + 10});
    CHECK(b.calls.empty());
    REQUIRE(mem.memory_failure(42));  // idempotent: no second notification
    CHECK(a.count('m') == 1);
    auto f = mem.fault(42, shareability::shared, accessor::host);
    REQUIRE_FALSE(f);
    CHECK(f.error().code() == errc::poisoned);
    auto c = mem.convert({40, 50}, shareability::guest_only);
    REQUIRE_FALSE(c);
    CHECK(c.error().code() == errc::poisoned);
    CHECK(c.error().page() == 40);  // the poisoned 2M folio covers the whole range
    CHECK(mem.stats().poisoned_folios == 1);
    CHECK(mem.memory_failure(2 * p2m).error().code() == errc::invalid_range);
    REQUIRE(mem.punch_hole({p2m, 2 * p2m}));
    CHECK(mem.memory_failure(p2m).error().code() == errc::not_allocated);
}

TEST_CASE("a page a consumer could not drop during commit is quarantined") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 1024, .initial = shareability::shared, .max_order = order_4k});
    REQUIRE(mem.allocate({0, 1024}));
    test_consumer a("A");
    a.leak_page = 17;
    binding<consumer> ba;
    REQUIRE(mem.bind(ba, a, {0, 1024}, 0));
    REQUIRE(mem.convert({10, 20}, shareability::guest_only));
    CHECK(mem.stats().commit_quarantines == 1);
    auto f = mem.fault(17, shareability::guest_only, accessor::hypervisor);
    REQUIRE_FALSE(f);
    CHECK(f.error().code() == errc::poisoned);
    CHECK(mem.fault(18, shareability::guest_only, accessor::hypervisor));
}

TEST_CASE("pins: access rules, holes, unpinning more than pinned") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 1024, .initial = shareability::shared, .max_order = order_4k});
    REQUIRE(mem.allocate({0, 512}));
    REQUIRE(mem.convert({100, 200}, shareability::guest_only));
    auto host_private = mem.pin({90, 110}, accessor::host);
    REQUIRE_FALSE(host_private);
    CHECK(host_private.error().code() == errc::permission_denied);
    CHECK(host_private.error().page() == 100);
    REQUIRE(mem.pin({90, 110}, accessor::trusted_device));
    auto hole = mem.pin({500, 520}, accessor::device);
    REQUIRE_FALSE(hole);
    CHECK(hole.error().code() == errc::not_allocated);
    CHECK(hole.error().page() == 512);
    CHECK(mem.pins(511) == 0);
    auto under = mem.unpin({80, 95});
    REQUIRE_FALSE(under);
    CHECK(under.error().page() == 80);
    CHECK(mem.pins(90) == 1);  // nothing changed
    REQUIRE(mem.unpin({90, 110}));
    CHECK(mem.pins(90) == 0);
    CHECK(mem.pin({0, 1}, static_cast<accessor>(7)).error().code() == errc::invalid_argument);
    CHECK(mem.unpin({5, 2}).error().code() == errc::invalid_range);
}

TEST_CASE("bind and unbind: bad ranges, double binds, stale handles from an earlier binding") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 1024});
    test_consumer a("A");
    binding<consumer> slot;
    CHECK(mem.bind(slot, a, {0, 2048}, 0).error().code() == errc::invalid_range);
    auto h1 = mem.bind(slot, a, {0, 512}, 0);
    REQUIRE(h1);
    CHECK(mem.bind(slot, a, {512, 1024}, 0).error().code() == errc::already_bound);
    REQUIRE(mem.unbind(h1.value()));
    CHECK(a.calls.back().inv.cause == invalidation_cause::release);
    auto h2 = mem.bind(slot, a, {0, 512}, 0);  // the same storage, a new generation
    REQUIRE(h2);
    CHECK(h2.value().id != h1.value().id);
    CHECK(mem.unbind(h1.value()).error().code() == errc::not_bound);
    CHECK(mem.stats().bindings == 1);
}

TEST_CASE("read_begin/read_retry see a conversion that ran between lookup and install") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 1024, .initial = shareability::shared, .max_order = order_4k});
    REQUIRE(mem.allocate({0, 1024}));
    test_consumer a("A");
    binding<consumer> ba;
    REQUIRE(mem.bind(ba, a, {0, 1024}, 0));
    auto seq = mem.read_begin(ba);
    REQUIRE(mem.fault(5, shareability::shared, accessor::host));
    CHECK_FALSE(mem.read_retry(ba, seq));
    seq = mem.read_begin(ba);
    REQUIRE(mem.fault(5, shareability::shared, accessor::host));
    REQUIRE(mem.convert({5, 6}, shareability::guest_only));
    CHECK(mem.read_retry(ba, seq));  // the looked-up mapping is stale: retry
}

TEST_CASE("content policy zero clears converted pages through the allocator") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 1024, .initial = shareability::shared, .max_order = order_4k});
    REQUIRE(mem.allocate({0, 1024}));
    const auto before = alloc.zeroed_pages();
    REQUIRE(mem.convert({0, 64}, shareability::guest_only, {.content = content_policy::zero}));
    CHECK(alloc.zeroed_pages() == before + 64);
    REQUIRE(mem.convert({0, 64}, shareability::shared));
    CHECK(alloc.zeroed_pages() == before + 64);  // preserve is the default
    CHECK(mem.convert({0, 1}, shareability::guest_only, {.content = static_cast<content_policy>(4)}).error().code() ==
          errc::invalid_argument);
}

TEST_CASE("bad input changes nothing: inverted, empty, out of bounds, unknown enums") {
    simulated_allocator alloc;
    sim_memory mem(alloc, {.pages = 1024, .initial = shareability::shared, .max_order = order_4k});
    REQUIRE(mem.allocate({0, 1024}));
    const snapshot before(mem);
    CHECK(mem.convert({0x200, 0x100}, shareability::guest_only).error().message() == "range [0x200, 0x100) is inverted");
    CHECK(mem.convert({5, 5}, shareability::guest_only).error().code() == errc::invalid_range);
    CHECK(mem.convert({1000, 1025}, shareability::guest_only).error().page() == 1024);
    CHECK(mem.convert({0, 1}, static_cast<shareability>(3)).error().code() == errc::invalid_argument);
    CHECK(mem.allocate({0, 0}).error().code() == errc::invalid_range);
    CHECK(mem.punch_hole({UINT64_MAX - 1, UINT64_MAX}).error().code() == errc::invalid_range);
    CHECK(mem.memory_failure(UINT64_MAX).error().code() == errc::invalid_range);
    CHECK(mem.shareability_at(1024).error().code() == errc::invalid_range);
    CHECK(mem.locked(mem.lock_shared()).runs({3, 2}).error().code() == errc::invalid_range);
    CHECK(snapshot(mem) == before);
    CHECK(sim_memory::check_config(alloc, {.pages = 0}).error().code() == errc::invalid_argument);
    CHECK(sim_memory::check_config(alloc, {.pages = 8, .max_order = 5}).error().code() == errc::invalid_argument);
    simulated_allocator small(UINT64_MAX, order_2m);
    CHECK(sim_memory::check_config(small, {.pages = 8, .max_order = order_1g}).error().code() == errc::not_supported);
    CHECK(sim_memory::check_config(alloc, {.pages = 8}));
}

TEST_CASE("stats and dump describe runs, folios and consumers") {
    simulated_allocator alloc;
    guest_memory<simulated_allocator, consumer, null_lock> mem(
        alloc, {.pages = 2 * p2m, .initial = shareability::guest_only, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 2 * p2m}));
    REQUIRE(mem.convert({8, 16}, shareability::shared));
    test_consumer a("A");
    binding<consumer> ba;
    REQUIRE(mem.bind(ba, a, {0, p2m}, 0x80000));
    auto s = mem.stats();
    CHECK(s.pages == 2 * p2m);
    CHECK(s.shared_pages == 8);
    CHECK(s.guest_only_pages == 2 * p2m - 8);
    CHECK(s.runs == 3);
    CHECK(s.folios_2m == 1);
    CHECK(s.folios_4k == 512);
    CHECK(s.split_folios == 1);
    CHECK(s.conversions == 1);
    CHECK(s.bindings == 1);
    std::ostringstream os;
    mem.dump(os);
    const std::string text = os.str();
    CHECK(text.find("[0x8, 0x10) shared") != std::string::npos);
    CHECK(text.find("binding") != std::string::npos);
    CHECK(text.find("0x80000") != std::string::npos);
}
