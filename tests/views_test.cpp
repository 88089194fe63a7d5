// Tests for views of one shared storage (view/memory_view.hpp): conversions
// seen by every view, one round across every view's consumers, close order
// in every permutation with the storage freed exactly at the last close,
// generation-checked handles (ABA), owners and their helpers, and every
// error path of the view API. Access policies and replay on bind are in
// views_policy_replay_test.cpp (the same test_views binary).
#include <doctest/doctest.h>

#include "support/view_support.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <utility>
#include <vector>

using namespace guestmem;
using namespace guestmem::test_support;

TEST_CASE("a conversion through one view is seen through every view") {
    two_vms t;
    REQUIRE(t.a.convert({10, 20}, shareability::shared));
    CHECK(t.b.shareability_at(15).value() == shareability::shared);
    CHECK(t.b.fault(15, shareability::shared, accessor::host));
    REQUIRE(t.b.convert({12, 14}, shareability::guest_only));
    CHECK(t.a.shareability_at(13).value() == shareability::guest_only);
    CHECK(t.a.storage() == t.b.storage());
}

TEST_CASE("every view's consumers take part in one round: a veto in either view aborts the other's") {
    for (bool veto_in_b : {true, false}) {
        CAPTURE(veto_in_b);
        two_vms t;
        recording_consumer ca("a-stage2"), cb("b-iommu");
        vbinding sa, sb;
        // The vetoing view's consumer binds second, so the other has prepared when the veto comes.
        if (veto_in_b) {
            REQUIRE(t.a.bind(sa, ca, {0, view_pages}, 0));
            REQUIRE(t.b.bind(sb, cb, {0, view_pages}, 0));
        } else {
            REQUIRE(t.b.bind(sb, cb, {0, view_pages}, 0));
            REQUIRE(t.a.bind(sa, ca, {0, view_pages}, 0));
        }
        (veto_in_b ? cb : ca).veto_at(100);
        auto r = (veto_in_b ? t.a : t.b).convert({96, 104}, shareability::shared);
        REQUIRE(!r);
        CHECK(r.error().code() == errc::vetoed);
        CHECK(r.error().page() == 100);
        CHECK(r.error().binding_id() == (veto_in_b ? sb : sa).get().id());
        recording_consumer& other = veto_in_b ? ca : cb;
        CHECK(other.prepares() == 1);
        CHECK(other.aborts() == 1);
        CHECK(other.commits() == 0);
        CHECK(t.a.shareability_at(100).value() == shareability::guest_only);
        (veto_in_b ? cb : ca).clear_vetoes();
        REQUIRE(t.b.convert({96, 104}, shareability::shared));
        CHECK(ca.commits() == 1);
        CHECK(cb.commits() == 1);
    }
}

TEST_CASE("closing a view releases exactly its own consumers") {
    two_vms t;
    recording_consumer ca("a"), cb("b");
    vbinding sa, sb;
    REQUIRE(t.a.bind(sa, ca, {0, 64}, 0));
    REQUIRE(t.b.bind(sb, cb, {0, 64}, 0));
    REQUIRE(t.b.close());
    CHECK(!sb.is_bound());
    CHECK(sa.is_bound());
    CHECK(cb.count(call_kind::commit) == 1);
    CHECK(cb[cb.size() - 1].inv.cause == invalidation_cause::release);
    CHECK(ca.commits() == 0);
    CHECK(t.a.stats().value().bindings == 1);
    REQUIRE(t.a.convert({0, 8}, shareability::shared));
    CHECK(ca.commits() == 1);
    CHECK(cb.commits() == 1);  // nothing more after its release
}

TEST_CASE("closing views in every order frees the storage exactly when the last one closes") {
    std::array<int, 3> order{0, 1, 2};
    do {
        CAPTURE(order[0]);
        CAPTURE(order[1]);
        CAPTURE(order[2]);
        two_vms t;
        auto helper = t.a.open_view(t.vm_a, {});
        REQUIRE(helper);
        counted_view* views[3] = {&t.a, &t.b, &helper.value()};
        recording_consumer cons[3] = {recording_consumer("a"), recording_consumer("b"), recording_consumer("h")};
        vbinding slots[3];
        for (int i = 0; i < 3; ++i) REQUIRE(views[i]->bind(slots[i], cons[i], {0, 512}, 0));
        REQUIRE(t.a.convert({0, 1}, shareability::shared));  // split a folio: records and frames in use
        CHECK(t.frames.pages_in_use() == view_pages);
        for (int k = 0; k < 3; ++k) {
            CHECK(t.frames.pages_in_use() == view_pages);
            CHECK(t.nodes.live > 0);
            REQUIRE(views[order[k]]->close());
            CHECK(cons[order[k]].count(call_kind::commit) == 2);  // the conversion, then its release
            CHECK(views[order[0]]->open_views() == unsigned(2 - k));
        }
        CHECK(t.frames.pages_in_use() == 0);  // the last close destroyed the storage
        CHECK(t.nodes.live == 0);
        CHECK(t.control.live == 1);  // the control block waits for the last memory_view object
    } while (std::next_permutation(order.begin(), order.end()));
}

TEST_CASE("the control block is freed when the last memory_view object goes, open or not") {
    simulated_allocator frames;
    alloc_control control, records;
    {
        auto v = counted_view::open_storage(frames, {.pages = 512}, {}, failing_allocator<std::byte>(&control),
                                            failing_allocator<std::byte>(&records));
        REQUIRE(v);
        CHECK(control.live == 1);
        counted_view moved = std::move(v.value());
        CHECK(!v.value().is_open());
        CHECK(moved.is_open());
    }
    CHECK(control.live == 0);
    CHECK(control.allocs == 1);
}

TEST_CASE("ABA: a view closed and a new one opened at the same address gets no old callbacks and its handles differ") {
    two_vms t;
    recording_consumer old_c("old"), new_c("new");
    vbinding old_slot, new_slot;
    auto old_h = t.b.bind(old_slot, old_c, {0, 64}, 0);
    REQUIRE(old_h);
    const view_id old_id = t.b.id();
    counted_view* where = &t.b;
    REQUIRE(t.b.close());
    std::destroy_at(where);  // a new view constructed at the very same address
    std::construct_at(where, std::move(t.a.open_view(t.vm_b, {}).value()));
    CHECK(where == &t.b);
    CHECK(t.b.id().slot == old_id.slot);  // the same slot, reused ...
    CHECK(t.b.id() != old_id);            // ... with a new generation
    auto stale = t.b.unbind(old_h.value());
    REQUIRE(!stale);
    CHECK(stale.error().code() == errc::not_bound);
    auto new_h = t.b.bind(new_slot, new_c, {0, 64}, 0);
    REQUIRE(new_h);
    CHECK(new_h.value() != old_h.value());
    old_c.clear();
    REQUIRE(t.a.convert({0, 64}, shareability::shared));
    CHECK(old_c.total_calls() == 0);
    CHECK(new_c.commits() == 1);
}

TEST_CASE("a binding handle is refused by any view but the one that made it, and once unbound") {
    two_vms t;
    recording_consumer c("c");
    vbinding s;
    auto h = t.a.bind(s, c, {0, 8}, 0);
    REQUIRE(h);
    auto wrong = t.b.unbind(h.value());
    REQUIRE(!wrong);
    CHECK(wrong.error().code() == errc::not_bound);
    CHECK(s.is_bound());
    view_binding_handle forged = h.value();
    forged.view.generation += 1;
    CHECK(t.a.unbind(forged).error().code() == errc::not_bound);
    REQUIRE(t.a.unbind(h.value()));
    CHECK(c[c.size() - 1].inv.cause == invalidation_cause::release);
    CHECK(!s.is_bound());
    auto again = t.a.unbind(h.value());
    REQUIRE(!again);
    CHECK(again.error().code() == errc::not_bound);
}

TEST_CASE("closing an owner closes every view it owns, and a helper's late call gets not_bound") {
    two_vms t;
    auto helper = t.b.open_view(t.vm_b, {});  // VM B's migration helper
    REQUIRE(helper);
    recording_consumer iommu("b-iommu");
    vbinding s;
    REQUIRE(helper.value().bind(s, iommu, {0, 16}, 0));
    REQUIRE(t.a.close_owner(t.vm_b));
    CHECK(!t.b.is_open());
    CHECK(!helper.value().is_open());
    CHECK(!s.is_bound());
    CHECK(iommu.count(call_kind::commit) == 1);  // its release
    auto late = helper.value().pin({0, 1}, accessor::device);
    REQUIRE(!late);
    CHECK(late.error().code() == errc::not_bound);
    CHECK(helper.value().fault(0, shareability::guest_only, accessor::hypervisor).error().code() == errc::not_bound);
    CHECK(t.b.convert({0, 1}, shareability::shared).error().code() == errc::not_bound);
    CHECK(t.a.open_view(t.vm_b, {}).error().code() == errc::not_bound);  // the owner is gone too
    CHECK(t.a.close_owner(t.vm_b).error().code() == errc::not_bound);
    CHECK(t.a.is_open());
    CHECK(t.a.open_views() == 1);
}

TEST_CASE("a view may close its own owner, and the storage goes with the owner's last view") {
    simulated_allocator frames;
    auto v = memory_view<guest_memory<simulated_allocator>>::open_storage(frames, {.pages = 512});
    REQUIRE(v);
    REQUIRE(v.value().allocate({0, 512}));
    CHECK(frames.pages_in_use() == 512);
    REQUIRE(v.value().close_owner(v.value().owner().value()));
    CHECK(frames.pages_in_use() == 0);
    CHECK(v.value().owner().error().code() == errc::not_bound);
    CHECK(v.value().close().error().code() == errc::not_bound);
}

TEST_CASE("every call through an empty, moved-from or closed view gets not_bound and changes nothing") {
    two_vms t;
    counted_view empty;
    counted_view moved_to = std::move(t.b);
    vbinding s;
    recording_consumer c("c");
    for (counted_view* v : {&empty, &t.b}) {
        CHECK(!v->is_open());
        CHECK(v->open_views() == 0);
        CHECK(v->storage() == nullptr);
        CHECK(v->owner().error().code() == errc::not_bound);
        CHECK(v->policy().error().code() == errc::not_bound);
        CHECK(v->add_owner().error().code() == errc::not_bound);
        CHECK(v->open_view(t.vm_a, {}).error().code() == errc::not_bound);
        CHECK(v->close().error().code() == errc::not_bound);
        CHECK(v->close_owner(t.vm_a).error().code() == errc::not_bound);
        CHECK(v->allocate({0, 1}).error().code() == errc::not_bound);
        CHECK(v->punch_hole({0, 1}).error().code() == errc::not_bound);
        CHECK(v->release_quarantine({0, 1}).error().code() == errc::not_bound);
        CHECK(v->convert({0, 1}, shareability::shared).error().code() == errc::not_bound);
        CHECK(v->fault(0, shareability::guest_only, accessor::hypervisor).error().code() == errc::not_bound);
        CHECK(v->pin({0, 1}, accessor::hypervisor).error().code() == errc::not_bound);
        CHECK(v->unpin({0, 1}).error().code() == errc::not_bound);
        CHECK(v->memory_failure(0).error().code() == errc::not_bound);
        CHECK(v->shareability_at(0).error().code() == errc::not_bound);
        CHECK(v->stats().error().code() == errc::not_bound);
        CHECK(v->bind(s, c, {0, 1}, 0).error().code() == errc::not_bound);
        CHECK(v->unbind({}).error().code() == errc::not_bound);
    }
    CHECK(!s.is_bound());
    CHECK(c.total_calls() == 0);
    CHECK(moved_to.is_open());
    REQUIRE(moved_to.close());
    for (auto st : {moved_to.convert({0, 1}, shareability::shared), moved_to.allocate({0, 1})})
        CHECK(st.error().code() == errc::not_bound);
    CHECK(t.a.shareability_at(0).value() == shareability::guest_only);
}

TEST_CASE("open_storage refuses bad options and a control allocator that runs out") {
    simulated_allocator frames;
    alloc_control control, records;
    failing_allocator<std::byte> ctl(&control), nodes(&records);
    auto no_views = counted_view::open_storage(frames, {.pages = 8}, {.max_views = 0}, ctl, nodes);
    CHECK(no_views.error().code() == errc::invalid_argument);
    auto no_owners = counted_view::open_storage(frames, {.pages = 8}, {.max_owners = 0}, ctl, nodes);
    CHECK(no_owners.error().code() == errc::invalid_argument);
    auto bad_policy = counted_view::open_storage(frames, {.pages = 8}, {.policy = {.mode = confidentiality(7)}}, ctl, nodes);
    CHECK(bad_policy.error().code() == errc::invalid_argument);
    auto empty = counted_view::open_storage(frames, {.pages = 0}, {}, ctl, nodes);
    CHECK(empty.error().code() == errc::invalid_argument);
    simulated_allocator small(UINT64_MAX, order_2m);
    auto too_big = counted_view::open_storage(small, {.pages = 8, .max_order = order_1g}, {}, ctl, nodes);
    CHECK(too_big.error().code() == errc::not_supported);
    CHECK(control.calls == 0);  // refused before anything was allocated
    control.fail_at = 1;
    auto oom = counted_view::open_storage(frames, {.pages = 8}, {}, ctl, nodes);
    REQUIRE(!oom);
    CHECK(oom.error().code() == errc::out_of_memory);
    CHECK(control.live == 0);
}

TEST_CASE("the view and owner tables refuse past their size, and a closed slot is reused") {
    two_vms t;  // 6 views, 3 owners; 2 of each in use
    auto third = t.a.add_owner();
    REQUIRE(third);
    CHECK(t.a.add_owner().error().code() == errc::out_of_memory);
    std::vector<counted_view> more;
    for (int i = 0; i < 4; ++i) more.push_back(std::move(t.a.open_view(third.value(), {}).value()));
    auto full = t.a.open_view(t.vm_a, {});
    REQUIRE(!full);
    CHECK(full.error().code() == errc::out_of_memory);
    REQUIRE(t.a.close_owner(third.value()));
    CHECK(t.a.open_views() == 2);
    auto reopened = t.a.add_owner();
    REQUIRE(reopened);
    CHECK(reopened.value().slot == third.value().slot);
    CHECK(reopened.value() != third.value());
    CHECK(t.a.open_view(third.value(), {}).error().code() == errc::not_bound);
    CHECK(t.a.open_view(reopened.value(), {}));
    CHECK(t.a.open_view(owner_id{99, 1}, {}).error().code() == errc::not_bound);
    CHECK(t.a.open_view(t.vm_a, {.mode = confidentiality(3)}).error().code() == errc::invalid_argument);
}

TEST_CASE("bind through a view refuses a bad replay mode and passes on the storage's bind errors") {
    two_vms t;
    recording_consumer c("c");
    vbinding s, s2;
    CHECK(t.a.bind(s, c, {0, 8}, 0, binding_class::ordinary, replay_mode(9)).error().code() == errc::invalid_argument);
    CHECK(t.a.bind(s, c, {0, view_pages + 1}, 0).error().code() == errc::invalid_range);
    CHECK(t.a.bind(s, c, {0, 8}, 0, binding_class(5)).error().code() == errc::invalid_argument);
    REQUIRE(t.a.bind(s, c, {0, 8}, 0));
    CHECK(t.a.bind(s, c, {16, 24}, 0).error().code() == errc::already_bound);
    CHECK(t.b.bind(s2, c, {4, 12}, 0).error().code() == errc::already_bound);  // same consumer, overlapping
    CHECK(s.view() == t.a.id());
    CHECK(s.handle().view == t.a.id());
    CHECK(t.a.stats().value().bindings == 1);
}

TEST_CASE("a view's bindings destroyed by their owner leave the view's list without a call") {
    two_vms t;
    recording_consumer c("c");
    {
        vbinding s;
        REQUIRE(t.b.bind(s, c, {0, 8}, 0));
    }
    REQUIRE(t.b.close());  // nothing left to release
    CHECK(c.total_calls() == 0);
}

TEST_CASE("read_begin and read_retry through a view follow the binding's sequence") {
    two_vms t(access_policy{}, access_policy{}, shareability::shared);
    recording_consumer c("c");
    vbinding s;
    REQUIRE(t.a.bind(s, c, {0, 8}, 0, binding_class::ordinary, replay_mode::none));
    const auto seq = t.a.read_begin(s);
    CHECK(!t.a.read_retry(s, seq));
    REQUIRE(t.b.convert({0, 1}, shareability::guest_only));
    CHECK(t.a.read_retry(s, seq));
    CHECK(t.a.read_retry(s, seq | 1));
}
