// tests/support/folio_support.hpp — what the test_folio sources share: a
// per-page stand-in for the range map (share_map), the table and allocator
// types they test, and the plan / convert / dump shortcuts that drive a
// folio table the way the guest memory object does.
#pragma once

#include <doctest/doctest.h>

#include <guestmem/folio/folio_table.hpp>
#include <guestmem/testing/fault_injecting_allocator.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include "failing_allocator.hpp"

#include <sstream>
#include <string>
#include <vector>

namespace guestmem::test_support {

inline constexpr auto S = shareability::shared;
inline constexpr auto G = shareability::guest_only;
inline constexpr page_index pages_1g = pages_in(order_1g);

/// Trivial per-page stand-in for the range map.
struct share_map {
    std::vector<shareability> v;
    explicit share_map(page_index n, shareability s = G) : v(n, s) {}
    shareability at(page_index p) const { return v[p]; }
    bool all_of(page_range r, shareability s) const {
        for (page_index p = r.begin; p < r.end; ++p)
            if (v[p] != s) return false;
        return true;
    }
    void assign(page_range r, shareability s) {
        for (page_index p = r.begin; p < r.end; ++p) v[p] = s;
    }
};

/// Node allocator that counts and can fail the N-th allocation.
using node_stats = alloc_control;
template <class T>
using counting_alloc = failing_allocator<T>;

using sim_table = folio_table<simulated_allocator>;
using fi_alloc = fault_injecting_allocator<simulated_allocator>;

/// The plan of converting r to `to`, made the way the guest memory object
/// makes it (plan{r, to}, then plan_into).
template <class Table, class Map>
typename Table::plan plan_of(const Table& t, page_range r, shareability to, const Map& m) {
    typename Table::plan p{r, to};
    t.plan_into(p, m);
    return p;
}

/// Convert through the whole plan / prepare_conversion / commit_conversion / merge sequence.
template <class T>
void convert(T& t, share_map& m, page_range r, shareability to, bool defer = true) {
    auto p = plan_of(t, r, to, m);
    REQUIRE(t.prepare_conversion(p));
    t.commit_conversion(p, defer);
    m.assign(r, to);
    t.merge_eligible(r, m);
}

inline std::string dump(const auto& t) {
    std::ostringstream os;
    t.dump(os);
    return os.str();
}

} // namespace guestmem::test_support
