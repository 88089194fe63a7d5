// Tests for access policies per view (core/access_policy.hpp) and replay
// on bind (view/replay.hpp): the full accessor x shareability x policy
// table for fault and pin, the mappability table still deciding, and a
// consumer bound to live memory told exactly the shared runs of its range
// (checked against the reference model), with a veto rolling the bind back.
#include <doctest/doctest.h>

#include "model/reference_model.hpp"
#include "support/view_support.hpp"

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

using namespace guestmem;
using namespace guestmem::test_support;

namespace {

struct policy_case {
    const char* name;
    access_policy policy;
    // may_map[accessor][shareability]: host, hypervisor, device, trusted_device x shared, guest_only
    bool may_map[4][2];
};

// Written out by hand (not computed with the code under test).
const policy_case policy_table[] = {
    {"confidential", {confidentiality::confidential, true}, {{true, false}, {true, true}, {true, false}, {true, true}}},
    {"confidential, no trusted devices", {confidentiality::confidential, false}, {{true, false}, {true, true}, {true, false}, {true, false}}},
    {"non_confidential", {confidentiality::non_confidential, true}, {{true, true}, {true, true}, {true, true}, {true, true}}},
};

constexpr accessor accessors[] = {accessor::host, accessor::hypervisor, accessor::device, accessor::trusted_device};
constexpr shareability shares[] = {shareability::shared, shareability::guest_only};

} // namespace

TEST_CASE("every accessor x shareability x policy: fault and pin through a view follow the view's policy") {
    for (const policy_case& pc : policy_table) {
        CAPTURE(pc.name);
        two_vms t(pc.policy, access_policy{});
        REQUIRE(t.a.convert({0, 512}, shareability::shared));  // page 0: shared; page 512: guest_only
        CHECK(t.a.policy().value() == pc.policy);
        for (int ai = 0; ai < 4; ++ai)
            for (int si = 0; si < 2; ++si) {
                const accessor who = accessors[ai];
                const shareability s = shares[si];
                const page_index page = s == shareability::shared ? 0 : 512;
                CAPTURE(to_string(who));
                CAPTURE(to_string(s));
                CHECK(pc.policy.may_map(who, s) == pc.may_map[ai][si]);
                auto f = t.a.fault(page, s, who);
                CHECK(bool(f) == pc.may_map[ai][si]);
                if (f) CHECK(f.value().mappability == (s == shareability::shared ? mappability::all : mappability::guest));
                else CHECK(f.error().code() == errc::permission_denied);
                auto p = t.a.pin({page, page + 1}, who);
                CHECK(bool(p) == pc.may_map[ai][si]);
                if (p) REQUIRE(t.a.unpin({page, page + 1}));
                else CHECK(p.error().code() == errc::permission_denied);
                // The other view (confidential) keeps its own rules.
                CHECK(bool(t.b.fault(page, s, who)) == may_access(who, s));
            }
    }
}

TEST_CASE("a policy decides who, the mappability table still decides when: a draining page is retry for everyone") {
    two_vms t(access_policy{.mode = confidentiality::non_confidential}, access_policy{}, shareability::shared);
    REQUIRE(t.a.pin({0, 1}, accessor::device));
    REQUIRE(t.a.convert({0, 512}, shareability::guest_only, {.defer_if_pinned = true}));
    auto host = t.a.fault(1, shareability::guest_only, accessor::host);  // non_confidential: a guest-side fault
    REQUIRE(!host);
    CHECK(host.error().code() == errc::retry);
    CHECK(t.b.fault(1, shareability::guest_only, accessor::host).error().code() == errc::permission_denied);
    CHECK(t.a.fault(1, shareability::shared, accessor::host).error().code() == errc::permission_denied);  // not shared
    CHECK(t.a.pin({1, 2}, accessor::host).error().code() == errc::busy);
    REQUIRE(t.a.unpin({0, 1}));
    CHECK(t.a.fault(1, shareability::guest_only, accessor::host));
}

TEST_CASE("guest_memory's fault and pin take a policy type; without one they keep today's rules") {
    simulated_allocator frames;
    guest_memory<simulated_allocator> mem(frames, {.pages = 512});
    REQUIRE(mem.allocate({0, 512}));
    CHECK(mem.fault(3, shareability::guest_only, accessor::host).error().code() == errc::permission_denied);
    CHECK(mem.fault(3, shareability::guest_only, accessor::host, non_confidential{}));
    CHECK(mem.fault(3, shareability::guest_only, accessor::device, confidential{}).error().code() == errc::permission_denied);
    CHECK(mem.pin({0, 4}, accessor::host).error().code() == errc::permission_denied);
    REQUIRE(mem.pin({0, 4}, accessor::host, non_confidential{}));
    CHECK(mem.pins(2) == 1);
    static_assert(access_rule<access_policy> && !access_rule<int>);
    CHECK(to_string(confidentiality::non_confidential) == "non_confidential");
    CHECK(to_string(confidentiality(9)) == "invalid confidentiality");
    CHECK(!access_policy{.mode = confidentiality(9)}.valid());
}

namespace {
/// The shared runs of r in the model, coalesced.
std::vector<page_range> model_shared_runs(const model::reference_model& m, page_range r) {
    std::vector<page_range> out;
    m.visit(r, [&](page_index b, page_index e, const model::page_state& s) {
        if (s.share != shareability::shared) return;
        if (!out.empty() && out.back().end == b) out.back().end = e;
        else out.push_back({b, e});
    });
    return out;
}
} // namespace

TEST_CASE("a consumer bound after random conversions is told exactly the shared runs of its range") {
    std::mt19937_64 rng(16);
    for (int round = 0; round < 40; ++round) {
        CAPTURE(round);
        two_vms t;
        model::reference_model ref(view_pages, shareability::guest_only, order_2m);
        REQUIRE(ref.allocate({0, view_pages}).ok);
        const int conversions = int(rng() % 40);
        for (int i = 0; i < conversions; ++i) {
            const page_index b = rng() % view_pages;
            const page_range r{b, std::min<page_index>(view_pages, b + 1 + rng() % 300)};
            const shareability to = (rng() & 1) ? shareability::shared : shareability::guest_only;
            REQUIRE(bool((i & 1 ? t.a : t.b).convert(r, to)) == ref.convert(r, to, 0, false, {}).ok);
        }
        const page_index b = rng() % view_pages;
        const page_range range{b, std::min<page_index>(view_pages, b + 1 + rng() % 1500)};
        recording_consumer late("late");
        vbinding s;
        auto h = t.b.bind(s, late, range, 0x1000);
        REQUIRE(h);
        const auto want = model_shared_runs(ref, range);
        REQUIRE(late.size() == want.size());
        for (std::size_t i = 0; i < want.size(); ++i) {
            const recorded_call& call = late[i];
            CHECK(call.kind == call_kind::populate);
            CHECK(call.inv.cause == invalidation_cause::replay);
            CHECK(call.inv.pages == want[i]);
            CHECK(call.inv.target.begin == 0x1000 + (want[i].begin - range.begin));
            CHECK(call.inv.binding_id == h.value().binding.id);
        }
        CHECK(late.prepares() + late.commits() + late.aborts() == 0);
        REQUIRE(t.b.unbind(h.value()));  // unbind keeps its release
        CHECK(late[late.size() - 1].inv.cause == invalidation_cause::release);
    }
}

TEST_CASE("a veto during replay aborts the runs populated before and leaves no binding") {
    two_vms t;
    for (page_index p : {10, 30, 50, 70}) REQUIRE(t.a.convert({p, p + 5}, shareability::shared));
    recording_consumer late("late");
    late.veto_at(52);
    vbinding s;
    const auto bindings_before = t.a.stats().value().bindings;
    auto h = t.b.bind(s, late, {0, 100}, 0);
    REQUIRE(!h);
    CHECK(h.error().code() == errc::vetoed);
    CHECK(h.error().page() == 52);
    CHECK(h.error().binding_id() != 0);
    CHECK(!s.is_bound());
    CHECK(t.a.stats().value().bindings == bindings_before);
    REQUIRE(late.size() == 5);  // populate x3 (the third refused), abort of the first two, newest first
    CHECK(late[0].kind == call_kind::populate);
    CHECK(late[2].vetoed);
    CHECK(late[3].kind == call_kind::abort);
    CHECK(late[3].inv.pages == page_range{30, 35});
    CHECK(late[4].inv.pages == page_range{10, 15});
    CHECK(late[4].inv.cause == invalidation_cause::replay);
    REQUIRE(t.a.convert({0, 100}, shareability::shared));
    CHECK(late.size() == 5);  // no binding, no call
    REQUIRE(t.b.close());
    CHECK(late.size() == 5);  // and nothing to release
    late.clear_vetoes();
}

TEST_CASE("a replay veto after random conversions aborts exactly the runs populated before, newest first") {
    std::mt19937_64 rng(26);
    for (int round = 0; round < 40; ++round) {
        CAPTURE(round);
        two_vms t;
        model::reference_model ref(view_pages, shareability::guest_only, order_2m);
        REQUIRE(ref.allocate({0, view_pages}).ok);
        for (int i = 0; i < 30; ++i) {
            const page_index b = rng() % view_pages;
            const page_range r{b, std::min<page_index>(view_pages, b + 1 + rng() % 200)};
            const shareability to = (rng() & 1) ? shareability::shared : shareability::guest_only;
            REQUIRE(bool(t.a.convert(r, to)) == ref.convert(r, to, 0, false, {}).ok);
        }
        const page_index b = rng() % view_pages;
        const page_range range{b, std::min<page_index>(view_pages, b + 1 + rng() % 1500)};
        const auto want = model_shared_runs(ref, range);
        if (want.empty()) continue;
        const std::size_t veto = rng() % want.size();  // the run that refuses
        recording_consumer late("late");
        late.veto_at(want[veto].begin);
        vbinding s;
        REQUIRE(!t.b.bind(s, late, range, 0));
        CHECK(!s.is_bound());
        REQUIRE(late.size() == 2 * veto + 1);
        for (std::size_t i = 0; i < veto; ++i) {
            const recorded_call& undo = late[veto + 1 + i];
            CHECK(undo.kind == call_kind::abort);
            CHECK(undo.inv.cause == invalidation_cause::replay);
            CHECK(undo.inv.pages == want[veto - 1 - i]);  // reverse page order
        }
        late.clear_vetoes();
    }
}

TEST_CASE("replay_mode::none binds without telling the current state") {
    two_vms t(access_policy{}, access_policy{}, shareability::shared);
    recording_consumer c("c");
    vbinding s;
    REQUIRE(t.a.bind(s, c, {0, 64}, 0, binding_class::ordinary, replay_mode::none));
    CHECK(c.total_calls() == 0);
}

namespace {
struct closed_base {
    int prepares = 0, aborts = 0;
    status prepare(const invalidation&) { return ok(); }
    void commit(const invalidation&, commit_report&) noexcept {}
    void abort(const invalidation&) noexcept { ++aborts; }
    void memory_failure(const invalidation&) noexcept {}
};
struct closed_populating : closed_base {
    std::vector<page_range> runs;
    status populate(const invalidation& inv) {
        runs.push_back(inv.pages);
        return ok();
    }
};
} // namespace

TEST_CASE("a single-VM guest_memory replays on bind too, and a closed consumer type opts in by having populate") {
    static_assert(populating_consumer<closed_populating> && !populating_consumer<closed_base>);
    simulated_allocator frames;
    guest_memory<simulated_allocator, closed_populating> mem(frames, {.pages = 1024});
    REQUIRE(mem.convert({100, 200}, shareability::shared));
    REQUIRE(mem.convert({300, 301}, shareability::shared));
    closed_populating c;
    binding<closed_populating> slot;
    REQUIRE(bind_replaying(mem, slot, c, {150, 1024}, 0));
    REQUIRE(c.runs.size() == 2);
    CHECK(c.runs[0] == page_range{150, 200});
    CHECK(c.runs[1] == page_range{300, 301});

    guest_memory<simulated_allocator, closed_base> plain(frames, {.pages = 1024, .initial = shareability::shared});
    closed_base quiet;
    binding<closed_base> qslot;
    REQUIRE(bind_replaying(plain, qslot, quiet, {0, 1024}, 0));
    CHECK(qslot.is_bound());
    CHECK(bind_replaying(plain, qslot, quiet, {0, 8}, 0).error().code() == errc::already_bound);
}
