// bench/run_shapes.hpp — the one generator of "N random runs" that the
// benchmarks build their maps from: bench_range_map.cpp (every peer),
// bench_guest_memory.cpp (BM_ObjectMemory) and hotpaths.cpp (point_query).
// Sharing it keeps the callgrind hot-path counts and the Google Benchmark
// times measuring the same map shape. Run starts are random over the
// domain (seed depends only on the run count); assigning value 1 over every
// run in build_order (the odd runs, shuffled) to a map that is all 0 leaves
// exactly `runs` coalesced runs of alternating value.
#pragma once

#include <guestmem/core/types.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

namespace guestmem::bench_support {

struct run_shape {
    page_index domain = 0;
    std::vector<page_index> starts;        ///< sorted, distinct, starts[0] == 0, one per run
    std::vector<std::size_t> build_order;  ///< the odd runs, shuffled: the runs to assign value 1
    std::mt19937_64 rng;                   ///< the stream after the shape: draw query points from it

    std::size_t runs() const noexcept { return starts.size(); }
    /// Value of run `run` once build_order has been assigned 1 over a map of 0.
    static constexpr std::uint8_t value_of(std::size_t run) noexcept { return std::uint8_t(run & 1); }
    page_index end_of(std::size_t run) const noexcept { return run + 1 < starts.size() ? starts[run + 1] : domain; }
};

/// `runs` (>= 1) random runs over [0, domain).
inline run_shape random_run_shape(std::size_t runs, page_index domain) {
    if (runs == 0 || runs > domain) std::abort();
    run_shape r;
    r.domain = domain;
    r.rng.seed(runs * 7919 + 1);
    std::vector<page_index>& s = r.starts;
    s.reserve(runs + runs / 8);
    while (s.size() < runs - 1) {  // runs - 1 distinct starts in [1, domain)
        while (s.size() < runs - 1) s.push_back(1 + r.rng() % (domain - 1));
        std::sort(s.begin(), s.end());
        s.erase(std::unique(s.begin(), s.end()), s.end());
    }
    s.insert(s.begin(), 0);
    for (std::size_t i = 1; i < runs; i += 2) r.build_order.push_back(i);
    std::shuffle(r.build_order.begin(), r.build_order.end(), r.rng);
    return r;
}

} // namespace guestmem::bench_support
