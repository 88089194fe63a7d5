// Tests for the guest memory object, part 2 (the test_guest_memory binary,
// with guest_memory_test.cpp): exhaustive failure injection through
// convert — every allocator call, every node allocation (the folio records'
// and the range map's own), every veto position — with the whole observable
// state compared against the snapshot from before. The consumer and the
// snapshot are in support/memory_support.hpp.
#include <doctest/doctest.h>

#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/testing/fault_injecting_allocator.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include "support/failing_allocator.hpp"
#include "support/memory_support.hpp"

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <shared_mutex>
#include <string>

using namespace guestmem;
using namespace guestmem::test_support;

namespace {

/// Node allocator whose N-th allocation (1-based, across copies) returns nullptr.
using test_support::alloc_control;
using test_support::failing_allocator;

/// An object of one 1G folio whose node allocator can be told to fail.
struct node_fixture {
    alloc_control ctl;
    simulated_allocator alloc;
    guest_memory<simulated_allocator, consumer, std::shared_mutex, failing_allocator<std::byte>> mem{
        alloc, {.pages = p1g, .initial = shareability::guest_only, .max_order = order_1g},
        failing_allocator<std::byte>(&ctl)};
};
/// Arm: the n-th node allocation from here fails.
void fail_nth_node(node_fixture& f, std::uint64_t n) { f.ctl.fail_at = f.ctl.calls + n; }

/// Bind the three consumers, 30 2M folios apart, each to the object's end.
template <class Mem, class Consumers, class Slots>
void bind_three(Mem& mem, Consumers& consumers, Slots& slots) {
    for (std::size_t i = 0; i < std::size(consumers); ++i)
        REQUIRE(mem.bind(slots[i], consumers[i], {i * p2m * 30, p1g}, 0x10000 * (i + 1)));
}

/// Converts `target` to shared on a fresh Fixture (its `mem` set up by
/// `scenario` with three consumers) with one fallible step failing, for
/// N = 1, 2, ... until the conversion succeeds: `arm(fixture, n)` makes the
/// n-th counted call from then on fail. Every failed conversion must be
/// out_of_memory, leave everything observable equal to the snapshot from
/// before and call no consumer. Returns how many steps could be failed;
/// `first_message`, when given, receives the message of the first failure.
template <class Fixture, class Scenario, class Arm>
std::uint64_t fail_each_step_until_success(const Scenario& scenario, page_range target, const Arm& arm,
                                           std::string* first_message = nullptr) {
    for (std::uint64_t n = 1;; ++n) {
        CAPTURE(n);
        Fixture f;
        test_consumer consumers[3] = {test_consumer("A"), test_consumer("B"), test_consumer("C")};
        binding<consumer> slots[3];
        scenario(f.mem, consumers, slots);
        const snapshot before(f.mem);
        arm(f, n);
        auto r = f.mem.convert(target, shareability::shared);
        if (r) return n - 1;
        if (n == 1 && first_message) *first_message = std::string(r.error().message());
        CHECK(r.error().code() == errc::out_of_memory);
        CHECK(snapshot(f.mem) == before);
        for (auto& c : consumers) CHECK(c.calls.empty());
    }
}

} // namespace

TEST_CASE("exhaustive failure injection through convert: every split, every node allocation, every veto position") {
    // Layout: a 1G folio, partly shared; the conversion below needs splits
    // (to shared) and map nodes, and has three consumers.
    auto scenario = [](auto& mem, auto& consumers, auto& slots) {
        REQUIRE(mem.allocate({0, p1g}));
        REQUIRE(mem.convert({p2m * 3, p2m * 3 + 9}, shareability::shared));
        REQUIRE(mem.convert({p2m * 100 + 1, p2m * 100 + 2}, shareability::shared));
        bind_three(mem, consumers, slots);
    };
    const page_range target{p2m * 7 + 3, p2m * 90 + 77};

    SUBCASE("allocator split reservations") {
        struct fixture {
            simulated_allocator inner;
            fault_injecting_allocator<simulated_allocator> alloc{inner};
            guest_memory<fault_injecting_allocator<simulated_allocator>> mem{
                alloc, {.pages = p1g, .initial = shareability::guest_only, .max_order = order_1g}};
        };
        const auto points = fail_each_step_until_success<fixture>(scenario, target, [](fixture& f, std::uint64_t n) {
            f.alloc.fail_at(n);  // counts allocate and prepare_split calls from here
        });
        CHECK(points >= 2);  // two 2M folios split at the ends of the range
    }

    SUBCASE("node allocations") {
        CHECK(fail_each_step_until_success<node_fixture>(scenario, target, fail_nth_node) >= 1);
    }

    SUBCASE("node allocations when the map's own reservation must allocate (a map with no node yet)") {
        // No conversion before: the map is one run, its node pool empty.
        auto fresh = [](auto& mem, auto& consumers, auto& slots) {
            REQUIRE(mem.allocate({0, p1g}));
            bind_three(mem, consumers, slots);
        };
        std::string first;
        const auto points = fail_each_step_until_success<node_fixture>(fresh, target, fail_nth_node, &first);
        CHECK(points >= 2);  // the map's node, then the piece arrays of the splits
        CHECK(first.find("range map nodes") != std::string::npos);
    }

    SUBCASE("veto at every consumer position") {
        for (std::size_t veto = 0; veto < 3; ++veto) {
            CAPTURE(veto);
            simulated_allocator alloc;
            sim_memory mem(alloc, {.pages = p1g, .initial = shareability::guest_only, .max_order = order_1g});
            test_consumer consumers[3] = {test_consumer("A"), test_consumer("B"), test_consumer("C")};
            binding<consumer> slots[3];
            scenario(mem, consumers, slots);
            consumers[veto].veto = true;
            const snapshot before(mem);
            auto r = mem.convert(target, shareability::shared);
            REQUIRE_FALSE(r);
            CHECK(r.error().code() == errc::vetoed);
            CHECK(snapshot(mem) == before);
            for (std::size_t i = 0; i < 3; ++i) {
                CHECK(consumers[i].count('c') == 0);
                CHECK(consumers[i].count('a') == (i < veto ? 1u : 0u));
                CHECK(consumers[i].count('p') == (i <= veto ? 1u : 0u));
            }
        }
    }
}
