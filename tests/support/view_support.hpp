// tests/support/view_support.hpp — what the test_views sources share: a
// storage type whose record and control allocations are counted
// (failing_allocator), and a fixture with one storage, two owners (VM A and
// VM B), a view each, and recording consumers.
#pragma once

#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/testing/recording_consumer.hpp>
#include <guestmem/testing/simulated_allocator.hpp>
#include <guestmem/view/memory_view.hpp>

#include "failing_allocator.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <utility>

namespace guestmem::test_support {

using counted_memory = guest_memory<simulated_allocator, consumer, std::shared_mutex, failing_allocator<std::byte>>;
using counted_view = memory_view<counted_memory, failing_allocator<std::byte>>;
using vbinding = view_binding<consumer>;

inline constexpr page_index view_pages = 4 * 512;

/// One storage of view_pages pages, all allocated, initially guest_only;
/// VM A's view `a`, VM B's view `b` (owners `vm_a`, `vm_b`).
struct two_vms {
    simulated_allocator frames;
    alloc_control nodes, control;
    counted_view a, b;
    owner_id vm_a{}, vm_b{};

    explicit two_vms(access_policy pa = {}, access_policy pb = {}, shareability initial = shareability::guest_only) {
        auto first = counted_view::open_storage(frames, {.pages = view_pages, .initial = initial, .max_order = order_2m},
                                                {.max_views = 6, .max_owners = 3, .policy = pa},
                                                failing_allocator<std::byte>(&control), failing_allocator<std::byte>(&nodes));
        REQUIRE(first);
        a = std::move(first.value());
        vm_a = a.owner().value();
        auto o = a.add_owner();
        REQUIRE(o);
        vm_b = o.value();
        auto second = a.open_view(vm_b, pb);
        REQUIRE(second);
        b = std::move(second.value());
        REQUIRE(a.allocate({0, view_pages}));
    }
};

} // namespace guestmem::test_support
