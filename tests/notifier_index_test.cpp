// Tests for the notifier set's range index (part 4 of test_notifier): the
// set finds the bindings of a range through an augmented tree instead of a
// walk over all of them, so these check, against a plain list model, that
// random binds, unbinds, destructions, rounds (committed, vetoed, aborted),
// truncations and memory failures reach exactly the overlapping bindings,
// in object page order with ties by bind order and irrevocable ones last.
#ifndef DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#define DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#endif
#include <doctest/doctest.h>

#include <guestmem/notifier/binding.hpp>
#include <guestmem/notifier/notifier_set.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <utility>
#include <vector>

using namespace guestmem;

namespace {

/// One call a consumer saw: which entry point (p prepare, c commit, a
/// abort, m memory failure) and for which binding.
struct call {
    char kind;
    std::uint64_t id;
    page_range pages;
    friend bool operator==(const call&, const call&) = default;
};

struct logging_consumer final : consumer {
    std::vector<call>* log = nullptr;
    std::uint64_t veto_id = 0;  // refuse the prepare of this binding
    status prepare(const invalidation& inv) override {
        log->push_back({'p', inv.binding_id, inv.pages});
        if (inv.binding_id == veto_id) return error::make(errc::vetoed, inv.pages.begin, "test veto");
        return ok();
    }
    void commit(const invalidation& inv, commit_report&) noexcept override { log->push_back({'c', inv.binding_id, inv.pages}); }
    void abort(const invalidation& inv) noexcept override { log->push_back({'a', inv.binding_id, inv.pages}); }
    void memory_failure(const invalidation& inv) noexcept override { log->push_back({'m', inv.binding_id, inv.pages}); }
};

/// The model: every live binding, kept in bind order.
struct model_binding {
    page_range pages;
    std::uint64_t id;
    std::size_t owner;
    binding_class cls;
};

/// Model bindings overlapping `r` in binding order (first page, then bind
/// order), optionally one class only.
std::vector<model_binding> overlapping(const std::vector<model_binding>& live, page_range r,
                                       std::optional<binding_class> cls = std::nullopt) {
    std::vector<model_binding> out;
    for (const model_binding& b : live)
        if (b.pages.overlaps(r) && (!cls || b.cls == *cls)) out.push_back(b);
    std::stable_sort(out.begin(), out.end(),
                     [](const model_binding& a, const model_binding& b) { return a.pages.begin < b.pages.begin; });
    return out;
}

} // namespace

TEST_CASE("random binds, unbinds and rounds reach exactly the overlapping bindings, in binding order") {
    constexpr std::size_t owners = 6, slots = 48;
    constexpr page_index space = 512;
    std::vector<call> log;
    std::array<logging_consumer, owners> consumers;
    for (auto& c : consumers) c.log = &log;
    auto set = std::make_unique<notifier_set<>>();
    std::array<std::unique_ptr<binding<>>, slots> slot;
    for (auto& s : slot) s = std::make_unique<binding<>>();
    std::array<std::size_t, slots> slot_owner{};
    std::vector<model_binding> live;
    std::mt19937_64 rng(20261207);
    auto pick = [&](std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng); };
    auto random_range = [&] {
        const page_index b = pick(space - 1);
        const page_index len = pick(4) == 0 ? 1 + pick(space - b) : 1 + pick(std::min<page_index>(16, space - b));
        return page_range{b, b + len};
    };
    auto forget = [&](std::uint64_t id) {
        std::erase_if(live, [&](const model_binding& m) { return m.id == id; });
    };

    for (int step = 0; step < 6000; ++step) {
        log.clear();
        const std::uint64_t op = pick(10);
        if (op < 3) {  // bind a free slot
            const std::size_t s = pick(slots);
            if (slot[s]->is_bound()) continue;
            const std::size_t o = pick(owners);
            const page_range r = random_range();
            const binding_class cls = pick(8) == 0 ? binding_class::irrevocable : binding_class::ordinary;
            const bool clash = std::any_of(live.begin(), live.end(),
                                           [&](const model_binding& m) { return m.owner == o && m.pages.overlaps(r); });
            auto h = set->bind(*slot[s], consumers[o], r, 1000 * o, cls);
            REQUIRE(h.has_value() == !clash);
            if (clash) {
                CHECK(h.error().code() == errc::already_bound);
                CHECK_FALSE(slot[s]->is_bound());
                continue;
            }
            slot_owner[s] = o;
            live.push_back({r, h.value().id, o, cls});
        } else if (op == 3) {  // unbind (or destroy) a bound slot
            const std::size_t s = pick(slots);
            if (!slot[s]->is_bound()) {
                CHECK_FALSE(set->unbind(binding_handle{12345678}).has_value());
                continue;
            }
            const std::uint64_t id = slot[s]->id();
            const page_range r = slot[s]->pages();
            if (pick(2) == 0) {
                REQUIRE(set->unbind(binding_handle{id}).has_value());
                CHECK(log == std::vector<call>{{'p', id, r}, {'c', id, r}});
                CHECK_FALSE(set->unbind(binding_handle{id}).has_value());  // stale handle
            } else {
                slot[s] = std::make_unique<binding<>>();  // destroyed while bound: unlinks, no call
                CHECK(log.empty());
            }
            forget(id);
        } else if (op < 7) {  // a vetoable round, maybe vetoed, committed or aborted
            const page_range r = random_range();
            const auto hit = overlapping(live, r);
            std::uint64_t veto = 0;
            if (!hit.empty() && pick(3) == 0) veto = hit[pick(hit.size())].id;
            for (auto& c : consumers) c.veto_id = veto;
            // Expected prepare order: ordinary bindings, then irrevocable ones.
            std::vector<model_binding> order = overlapping(live, r, binding_class::ordinary);
            for (const auto& m : overlapping(live, r, binding_class::irrevocable)) order.push_back(m);
            std::vector<call> want;
            std::vector<model_binding> prepared;
            bool vetoed = false;
            for (const auto& m : order) {
                want.push_back({'p', m.id, m.pages.intersect(r)});
                if (m.id == veto) {
                    vetoed = true;
                    break;
                }
                prepared.push_back(m);
            }
            const bool abort = !vetoed && pick(4) == 0;
            if (vetoed || abort)
                for (auto it = prepared.rbegin(); it != prepared.rend(); ++it) want.push_back({'a', it->id, it->pages.intersect(r)});
            else
                for (const auto& m : prepared) want.push_back({'c', m.id, m.pages.intersect(r)});
            status st = set->prepare_round(r, invalidation_cause::to_shared);
            REQUIRE(st.has_value() == !vetoed);
            if (vetoed) {
                CHECK(st.error().binding_id() == veto);
            } else if (abort) {
                set->abort_round();
            } else {
                commit_report report;
                set->commit_round(report);
            }
            for (auto& c : consumers) c.veto_id = 0;
            CHECK(log == want);
        } else if (op < 9) {  // truncate: prepare all, commit all, in binding order
            const page_range r = random_range();
            std::vector<call> want;
            for (const auto& m : overlapping(live, r)) want.push_back({'p', m.id, m.pages.intersect(r)});
            for (const auto& m : overlapping(live, r)) want.push_back({'c', m.id, m.pages.intersect(r)});
            commit_report report;
            set->invalidate(r, invalidation_cause::truncate, report);
            CHECK(log == want);
        } else {  // memory failure of a 4-page folio
            const page_index b = pick(space / 4) * 4;
            const page_range f{b, b + 4};
            std::vector<call> want;
            for (const auto& m : overlapping(live, f)) want.push_back({'m', m.id, m.pages.intersect(f)});
            set->memory_failure(f, folio_order{2}, shareability::shared);
            CHECK(log == want);
        }
        REQUIRE(set->binding_count() == live.size());
        // for_each_binding gives binding order.
        std::vector<std::uint64_t> ids;
        set->for_each_binding([&](const binding<>& b) { ids.push_back(b.id()); });
        std::vector<std::uint64_t> want_ids;
        for (const auto& m : overlapping(live, {0, space})) want_ids.push_back(m.id);
        REQUIRE(ids == want_ids);
        // Every sequence is even again (no invalidation in flight).
        for (const auto& s : slot) CHECK(s->sequence() % 2 == 0);
    }
    // Destroying the set releases what is left, in binding order.
    log.clear();
    std::vector<call> want;
    for (const auto& m : overlapping(live, {0, space})) {
        want.push_back({'p', m.id, m.pages});
        want.push_back({'c', m.id, m.pages});
    }
    set.reset();
    CHECK(log == want);
    for (const auto& s : slot) CHECK_FALSE(s->is_bound());
}

TEST_CASE("a round over one page of ten thousand disjoint bindings calls only the binding over it") {
    std::vector<call> log;
    logging_consumer c;
    c.log = &log;
    notifier_set<> set;
    std::vector<std::unique_ptr<binding<>>> slots;
    for (page_index i = 0; i < 10000; ++i) {
        slots.push_back(std::make_unique<binding<>>());
        REQUIRE(set.bind(*slots.back(), c, {16 * i, 16 * i + 16}, 0).has_value());
    }
    REQUIRE(set.prepare_round({16 * 5000 + 3, 16 * 5000 + 4}, invalidation_cause::to_shared).has_value());
    commit_report report;
    set.commit_round(report);
    const std::uint64_t id = slots[5000]->id();
    CHECK(log == std::vector<call>{{'p', id, {80003, 80004}}, {'c', id, {80003, 80004}}});
    CHECK(slots[5000]->sequence() == 2);
    CHECK(slots[4999]->sequence() == 0);
    CHECK(slots[5001]->sequence() == 0);
}
