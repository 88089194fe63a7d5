// Snapshots through views (docs/SNAPSHOT.md §Views, issue 26): save,
// save_increment, restore and apply_increment on a shared storage, under
// the view table's lock, with snapshot/'s validation and rules; and the
// migration story end to end: a source VM and its migration helper share a
// storage, the destination restores and applies increments, and ends equal
// in runs, poison and quarantine; intra-host, a second VM takes the memory
// over with no page content copied.
#include <doctest/doctest.h>

#include <guestmem/snapshot/snapshot.hpp>

#include "support/snapshot_support.hpp"
#include "support/view_support.hpp"

#include <cstdint>
#include <random>
#include <span>
#include <tuple>
#include <utility>
#include <vector>

using namespace guestmem;
using namespace guestmem::test_support;

namespace {

/// A full snapshot of the storage through view v (sized by saved_size()).
bytes save_view(const counted_view& v) {
    auto need = v.saved_size();
    REQUIRE(need);
    bytes out(need.value());
    auto n = v.save(out);
    REQUIRE(n);
    out.resize(n.value());
    return out;
}

/// An increment since generation g through view v (sized by increment_size()).
bytes increment_view(const counted_view& v, std::uint64_t g) {
    auto need = v.increment_size(g);
    REQUIRE(need);
    bytes out(need.value());
    auto n = v.save_increment(g, out);
    REQUIRE(n);
    out.resize(n.value());
    return out;
}

/// A fresh storage of view_pages pages (nothing allocated) with one view.
struct fresh_storage {
    simulated_allocator frames;
    alloc_control nodes, control;
    counted_view v;
    fresh_storage() {
        auto s = counted_view::open_storage(frames, {.pages = view_pages, .max_order = order_2m}, {.max_views = 4, .max_owners = 2},
                                            failing_allocator<std::byte>(&control), failing_allocator<std::byte>(&nodes));
        REQUIRE(s);
        v = std::move(s.value());
    }
};

/// Runs, poisoned leaves' pages and quarantined folios: what migration must carry.
auto carried(const counted_memory& m) {
    const snap_state s = state_of(m);
    std::vector<page_index> poison;
    for (const auto& l : s.leaves)
        if (std::get<4>(l)) poison.push_back(std::get<5>(l));
    return std::tuple(s.runs, poison, s.detached);
}

} // namespace

TEST_CASE("a view saves its storage and a fresh storage restores it through a view, byte for byte") {
    two_vms t;
    REQUIRE(t.a.convert({100, 300}, shareability::shared));
    REQUIRE(t.b.convert({600, 1200}, shareability::shared));
    REQUIRE(t.b.memory_failure(700));
    const bytes full = save_view(t.b);
    CHECK(full == save_bytes(*t.a.storage()));  // the same bytes as snapshot::save of the storage
    fresh_storage d;
    REQUIRE(d.v.restore(full));
    CHECK(state_of(*d.v.storage()) == state_of(*t.a.storage()));
    CHECK(save_view(d.v) == full);
    CHECK(d.v.generation().value() == t.a.generation().value());
}

TEST_CASE("every snapshot call through a closed view gets not_bound and changes nothing") {
    two_vms t;
    REQUIRE(t.a.convert({0, 64}, shareability::shared));
    const bytes full = save_view(t.a);
    const bytes inc = increment_view(t.a, 0);
    const snap_state before = state_of(*t.a.storage());
    REQUIRE(t.b.close());
    bytes out(4096);
    CHECK(t.b.generation().error().code() == errc::not_bound);
    CHECK(t.b.saved_size().error().code() == errc::not_bound);
    CHECK(t.b.save(out).error().code() == errc::not_bound);
    CHECK(t.b.increment_size(0).error().code() == errc::not_bound);
    CHECK(t.b.save_increment(0, out).error().code() == errc::not_bound);
    CHECK(t.b.restore(full).error().code() == errc::not_bound);
    CHECK(t.b.apply_increment(inc).error().code() == errc::not_bound);
    CHECK(state_of(*t.a.storage()) == before);
    counted_view empty;
    CHECK(empty.save(out).error().code() == errc::not_bound);
}

TEST_CASE("a view's save refuses a page pinned through another view, and its buffers are checked") {
    two_vms t;
    REQUIRE(t.a.convert({0, 64}, shareability::shared));
    REQUIRE(t.b.pin({3, 4}, accessor::device));
    bytes out(4096);
    auto busy = t.a.save(out);
    REQUIRE(!busy);
    CHECK(busy.error().code() == errc::busy);
    CHECK(busy.error().page() == 3);
    CHECK(t.a.saved_size().error().code() == errc::busy);
    REQUIRE(t.b.unpin({3, 4}));
    bytes tiny(8);
    auto small = t.a.save(tiny);
    REQUIRE(!small);
    CHECK(small.error().code() == errc::invalid_argument);
    auto small_inc = t.a.save_increment(0, tiny);
    REQUIRE(!small_inc);
    CHECK(small_inc.error().code() == errc::invalid_argument);
    CHECK(small_inc.error().message().find("the increment needs") != std::string_view::npos);
    CHECK(t.a.save_increment(t.a.generation().value() + 1, out).error().code() == errc::invalid_argument);  // the future
}

TEST_CASE("a view restores only into a fresh storage, and refuses bad bytes, leaving the storage untouched") {
    two_vms src;
    REQUIRE(src.a.convert({5, 9}, shareability::shared));
    const bytes full = save_view(src.a);
    // not fresh: the two_vms storage is allocated
    two_vms busy;
    const snap_state before = state_of(*busy.a.storage());
    auto r = busy.b.restore(full);
    REQUIRE(!r);
    CHECK(r.error().code() == errc::invalid_argument);
    CHECK(state_of(*busy.a.storage()) == before);
    // damaged bytes and an increment
    fresh_storage d;
    bytes bad = full;
    bad[bad.size() / 2] ^= 1;
    auto damaged = d.v.restore(bad);
    REQUIRE(!damaged);
    CHECK(snapshot::error_offset(damaged.error()) != SIZE_MAX);
    const bytes inc = increment_view(src.a, 0);
    CHECK(d.v.restore(inc).error().code() == errc::invalid_argument);
    CHECK(d.v.apply_increment(full).error().code() == errc::invalid_argument);
    CHECK(d.v.storage()->stats().allocated_pages == 0);
    CHECK(d.v.generation().value() == 0);
}

TEST_CASE("an increment applied through a view is one round over every view's consumers; a veto leaves the base generation") {
    two_vms src;
    const bytes full = save_view(src.a);
    const std::uint64_t base = src.a.generation().value();
    REQUIRE(src.a.convert({512, 1024}, shareability::shared));
    REQUIRE(src.b.convert({1500, 1600}, shareability::shared));
    const bytes inc = increment_view(src.b, base);

    fresh_storage d;
    REQUIRE(d.v.restore(full));
    auto helper_owner = d.v.add_owner();
    REQUIRE(helper_owner);
    auto other = d.v.open_view(helper_owner.value(), {});
    REQUIRE(other);
    recording_consumer in_d("in_d"), in_other("in_other");
    vbinding sd, so;
    REQUIRE(d.v.bind(sd, in_d, {0, view_pages}, 0));
    REQUIRE(other.value().bind(so, in_other, {0, view_pages}, 0));
    in_other.veto_at(1550);  // the second change, in the other view
    const snap_state at_base = state_of(*d.v.storage());
    auto vetoed = d.v.apply_increment(inc);
    REQUIRE(!vetoed);
    CHECK(vetoed.error().code() == errc::vetoed);
    CHECK(vetoed.error().page() == 1550);
    CHECK(d.v.generation().value() == base);  // still at the base
    CHECK(in_d.aborts() == 1);                // the round over both views: in_d prepared, then aborted
    CHECK(in_other.vetoes() == 1);    // the vetoer is not aborted
    CHECK(d.v.storage()->shareability_at(1550).value() == shareability::guest_only);
    (void)at_base;
    in_other.clear_vetoes();
    REQUIRE(other.value().apply_increment(inc));  // again, through the other view: safe
    CHECK(d.v.generation().value() == src.a.generation().value());
    CHECK(state_of(*d.v.storage()).runs == state_of(*src.a.storage()).runs);
    CHECK(in_d.commits() == in_other.commits());
    CHECK(in_d.commits() >= 2);
}

TEST_CASE("migration: the helper saves a full snapshot and increments while the source converts; the destination ends equal") {
    std::mt19937_64 rng(26);
    for (int round = 0; round < 10; ++round) {
        CAPTURE(round);
        two_vms src;  // owner A's view `a`; the helper is a view of the same owner
        auto helper_r = src.a.open_view(src.vm_a, {});
        REQUIRE(helper_r);
        counted_view& helper = helper_r.value();
        // history before the full snapshot: conversions, poison, a quarantined leak
        for (int i = 0; i < 20; ++i) {
            const page_index b = rng() % view_pages;
            const page_range r{b, std::min<page_index>(view_pages, b + 1 + rng() % 700)};
            (void)src.a.convert(r, (rng() & 1) ? shareability::shared : shareability::guest_only);
        }
        REQUIRE(src.a.memory_failure(rng() % view_pages));
        recording_consumer leaky("leaky");
        vbinding lb;
        REQUIRE(src.a.bind(lb, leaky, {0, view_pages}, 0));
        const page_index leaked = 1024 + rng() % 512;
        leaky.leak_at(leaked);
        REQUIRE(src.a.punch_hole({1024, 1536}));
        leaky.clear_reports();
        REQUIRE(src.a.allocate({0, 1024}));

        fresh_storage dst;
        bytes last = save_view(helper);
        REQUIRE(dst.v.restore(last));
        std::uint64_t g = snapshot::read_header(last).value().generation;
        for (int pass = 0; pass < 4; ++pass) {  // the source keeps converting between increments
            for (int i = 0; i < 10; ++i) {
                const page_index b = rng() % 1024;
                const page_range r{b, std::min<page_index>(1024, b + 1 + rng() % 300)};
                (void)src.a.convert(r, (rng() & 1) ? shareability::shared : shareability::guest_only);
            }
            last = increment_view(helper, g);
            g = snapshot::read_header(last).value().generation;
            auto applied = dst.v.apply_increment(last);
            if (!applied) MESSAGE(applied.error().message());
            REQUIRE(applied);
            CHECK(dst.v.generation().value() == g);
        }
        CHECK(g == src.a.generation().value());
        const auto there = carried(*dst.v.storage());
        CHECK(there == carried(*src.a.storage()));
        CHECK(!std::get<2>(there).empty());  // the leaked page's folio came along, quarantined
        REQUIRE(src.a.close());
        CHECK(leaky.size() > 0);
    }
}

TEST_CASE("intra-host migration: VM B takes A's storage over with no page copied, and A's consumers hear nothing after its close") {
    two_vms t;  // VM A's view a, VM B's view b, on one storage
    REQUIRE(t.a.convert({0, 512}, shareability::shared));
    recording_consumer a_map("a_map"), b_map("b_map");
    vbinding sa, sb;
    REQUIRE(t.a.bind(sa, a_map, {0, view_pages}, 0));
    auto before = t.b.fault(7, shareability::shared, accessor::hypervisor);
    REQUIRE(before);
    const auto allocations = t.frames.allocations();
    const auto zeroed = t.frames.zeroed_pages();
    REQUIRE(t.a.close_owner(t.vm_a));  // A goes away
    CHECK(a_map[a_map.size() - 1].inv.cause == invalidation_cause::release);
    const std::size_t a_calls = a_map.size();
    REQUIRE(t.b.bind(sb, b_map, {0, view_pages}, 0));
    REQUIRE(t.b.convert({512, 1024}, shareability::shared));
    REQUIRE(t.b.punch_hole({1536, 2048}));
    auto after = t.b.fault(7, shareability::shared, accessor::hypervisor);
    REQUIRE(after);
    CHECK(after.value().frame == before.value().frame);  // the same memory, not a copy
    CHECK(t.frames.allocations() == allocations);
    CHECK(t.frames.zeroed_pages() == zeroed);
    CHECK(a_map.size() == a_calls);  // nothing after A's close
    CHECK(b_map.commits() >= 2);
    CHECK(t.a.save(std::span<std::uint8_t>{}).error().code() == errc::not_bound);
}
