// Benchmarks for the shareability range map (issue 3) against its peers:
//   guestmem      guestmem::range_map<std::uint8_t> (256-byte-node B+-tree)
//   std_map       a coalescing interval map on std::map<start, value>
//   boost_icl     boost::icl::interval_map with set (overwrite) semantics,
//                 partial_enricher (both values stored), right-open intervals
//   sorted_vector sorted run starts + values (queries only: no cheap assign)
//   bitmap        2 bits per page, QEMU's approach
// Names: BM_<Operation>/<impl>/<runs>, runs in {1000, 100000, 1000000},
// random run starts over a 2^28-page (1 TiB) domain (bench/run_shapes.hpp,
// shared with BM_ObjectMemory and guestmem_hotpaths), two alternating values
// (so every structure holds exactly `runs` coalesced runs; checked at setup).
// Operations: PointQuery (random page), Assign (random 4 KiB-2 MiB range
// inside a run set to the other value: a split, or a merge when it touches
// the run's end; the next iteration assigns the old value back, coalescing,
// so the structure stays at `runs` runs), AllOf over a random 1 GiB window
// (with the value at its first page), IterateRuns over a random 1 GiB window.
// Counter bytes_per_run: bytes of structure per run (guestmem: all node
// memory; std::map / ICL: node payload as allocated, without malloc's own
// overhead; vector: capacity; bitmap: 64 MiB / runs).
// Each structure is built once per (impl, runs) and shared by its benchmarks.
// Quick run: guestmem_bench --benchmark_filter='BM_(PointQuery|Assign|AllOf|IterateRuns)/' --benchmark_min_time=0.2
#define BOOST_ICL_USE_STATIC_BOUNDED_INTERVALS 1
#include <benchmark/benchmark.h>
#include <boost/icl/interval_map.hpp>

#include <guestmem/range_map/range_map.hpp>

#include "run_shapes.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using guestmem::page_index;
using u8 = std::uint8_t;

constexpr page_index domain = page_index{1} << 28;
constexpr page_index window = 262144;  // 1 GiB of 4 KiB pages
constexpr std::size_t nops = 1u << 16;
constexpr std::size_t npoints = 1u << 22;  // more pages than any cache holds lines for

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "bench_range_map: %s\n", what);
    std::abort();
}

// ---- peers ---------------------------------------------------------------

struct guestmem_impl {
    guestmem::range_map<u8> m{domain, 0};
    u8 at(page_index p) const { return m.at(p); }
    void assign(page_index b, page_index e, u8 v) {
        if (!m.assign({b, e}, v)) die("guestmem assign failed");
    }
    bool all_of(page_index b, page_index e, u8 v) const { return m.all_of({b, e}, v); }
    std::uint64_t iterate(page_index b, page_index e) const {
        std::uint64_t s = 0;
        for (auto r : m.runs({b, e})) s += r.range.size() * r.value + 1;
        return s;
    }
    std::size_t runs() const { return m.run_count(); }
    double bytes() const { return double(m.memory_bytes()); }
};

/// The classic coalescing interval map: key = run start, always has key 0,
/// no two adjacent keys with equal values.
struct std_map_impl {
    std::map<page_index, u8> m{{0, 0}};
    u8 at(page_index p) const { return std::prev(m.upper_bound(p))->second; }
    void assign(page_index b, page_index e, u8 v) {
        auto lo = m.lower_bound(b);
        auto hi = m.upper_bound(e);
        const bool has_after = e < domain;
        const u8 after = has_after ? std::prev(hi)->second : 0;
        const bool want_b = b == 0 || std::prev(lo)->second != v;
        const bool want_e = has_after && after != v;
        const bool b_present = lo != m.end() && lo->first == b;
        const bool e_present = has_after && std::prev(hi)->first == e;
        auto from = lo;
        if (want_b && b_present) {
            lo->second = v;
            from = std::next(lo);
        }
        auto to = (want_e && e_present) ? std::prev(hi) : hi;
        m.erase(from, to);
        if (want_b && !b_present) m.emplace_hint(to, b, v);
        if (want_e && !e_present) m.emplace_hint(hi, e, after);
    }
    bool all_of(page_index b, page_index e, u8 v) const {
        for (auto it = std::prev(m.upper_bound(b)); it != m.end() && it->first < e; ++it)
            if (it->second != v) return false;
        return true;
    }
    std::uint64_t iterate(page_index b, page_index e) const {
        std::uint64_t s = 0;
        for (auto it = std::prev(m.upper_bound(b)); it != m.end() && it->first < e; ++it) {
            auto nx = std::next(it);
            const page_index rb = std::max(it->first, b), re = std::min(nx == m.end() ? domain : nx->first, e);
            s += (re - rb) * it->second + 1;
        }
        return s;
    }
    std::size_t runs() const { return m.size(); }
    double bytes() const {
        return double(m.size() * (sizeof(std::_Rb_tree_node_base) + sizeof(std::pair<const page_index, u8>)));
    }
};

struct icl_impl {
    using map_type = boost::icl::interval_map<page_index, u8, boost::icl::partial_enricher>;
    using interval = map_type::interval_type;
    map_type m;
    icl_impl() { m.set(std::make_pair(interval(0, domain), u8{0})); }
    u8 at(page_index p) const { return m.find(p)->second; }
    void assign(page_index b, page_index e, u8 v) { m.set(std::make_pair(interval(b, e), v)); }
    bool all_of(page_index b, page_index e, u8 v) const {
        for (auto it = m.find(b); it != m.end() && it->first.lower() < e; ++it)
            if (it->second != v) return false;
        return true;
    }
    std::uint64_t iterate(page_index b, page_index e) const {
        std::uint64_t s = 0;
        for (auto it = m.find(b); it != m.end() && it->first.lower() < e; ++it) {
            const page_index rb = std::max(it->first.lower(), b), re = std::min(it->first.upper(), e);
            s += (re - rb) * it->second + 1;
        }
        return s;
    }
    std::size_t runs() const { return m.iterative_size(); }
    double bytes() const {
        return double(m.iterative_size() *
                      (sizeof(std::_Rb_tree_node_base) + sizeof(std::pair<const interval, u8>)));
    }
};

struct sorted_vector_impl {
    std::vector<page_index> starts;
    std::vector<u8> vals;
    std::size_t find(page_index p) const {
        return std::size_t(std::upper_bound(starts.begin(), starts.end(), p) - starts.begin()) - 1;
    }
    u8 at(page_index p) const { return vals[find(p)]; }
    void assign(page_index, page_index, u8) { die("sorted_vector has no assign benchmark"); }
    bool all_of(page_index b, page_index e, u8 v) const {
        for (std::size_t i = find(b); i < starts.size() && starts[i] < e; ++i)
            if (vals[i] != v) return false;
        return true;
    }
    std::uint64_t iterate(page_index b, page_index e) const {
        std::uint64_t s = 0;
        for (std::size_t i = find(b); i < starts.size() && starts[i] < e; ++i) {
            const page_index rb = std::max(starts[i], b);
            const page_index re = std::min(i + 1 < starts.size() ? starts[i + 1] : domain, e);
            s += (re - rb) * vals[i] + 1;
        }
        return s;
    }
    std::size_t runs() const { return starts.size(); }
    double bytes() const { return double(starts.capacity() * sizeof(page_index) + vals.capacity()); }
};

/// 2 bits per page, 32 pages per 64-bit word.
struct bitmap_impl {
    std::vector<std::uint64_t> w = std::vector<std::uint64_t>(domain / 32, 0);
    static constexpr std::uint64_t pattern(u8 v) { return 0x5555555555555555ull * v; }
    u8 at(page_index p) const { return u8((w[p / 32] >> (2 * (p % 32))) & 3); }
    void set(page_index p, u8 v) {
        auto& x = w[p / 32];
        const unsigned sh = unsigned(2 * (p % 32));
        x = (x & ~(3ull << sh)) | (std::uint64_t(v) << sh);
    }
    void assign(page_index b, page_index e, u8 v) {
        while (b < e && b % 32) set(b++, v);
        for (; b + 32 <= e; b += 32) w[b / 32] = pattern(v);
        while (b < e) set(b++, v);
    }
    bool all_of(page_index b, page_index e, u8 v) const {
        for (; b < e && b % 32; ++b)
            if (at(b) != v) return false;
        for (; b + 32 <= e; b += 32)
            if (w[b / 32] != pattern(v)) return false;
        for (; b < e; ++b)
            if (at(b) != v) return false;
        return true;
    }
    std::uint64_t iterate(page_index b, page_index e) const {
        // Emit runs: skip whole words equal to the current value.
        std::uint64_t s = 0;
        page_index rb = b;
        u8 cur = at(b);
        page_index p = b + 1;
        while (p < e) {
            if (p % 32 == 0 && p + 32 <= e && w[p / 32] == pattern(cur)) {
                p += 32;
                continue;
            }
            const u8 x = at(p);
            if (x != cur) {
                s += (p - rb) * cur + 1;
                rb = p;
                cur = x;
            }
            ++p;
        }
        return s + (e - rb) * cur + 1;
    }
    std::size_t runs_ = 0;
    std::size_t runs() const { return runs_; }
    double bytes() const { return double(w.size() * sizeof(std::uint64_t)); }
};

// ---- workloads -----------------------------------------------------------

struct workload {
    guestmem::bench_support::run_shape shape;  // starts and build_order (odd runs, shuffled)
    std::vector<page_index> points;
    struct assign_op {
        page_index b, e;
        u8 v, old;
    };
    std::vector<assign_op> assigns;
    struct window_op {
        page_index b;
        u8 v;
    };
    std::vector<window_op> windows;

    const std::vector<page_index>& starts() const { return shape.starts; }
    u8 value_of(std::size_t run) const { return shape.value_of(run); }
    std::size_t run_of(page_index p) const {
        return std::size_t(std::upper_bound(starts().begin(), starts().end(), p) - starts().begin()) - 1;
    }
    page_index end_of(std::size_t run) const { return shape.end_of(run); }
};

const workload& get_workload(std::size_t runs) {
    static std::map<std::size_t, std::unique_ptr<workload>> cache;
    auto& slot = cache[runs];
    if (slot) return *slot;
    slot = std::make_unique<workload>();
    workload& w = *slot;
    w.shape = guestmem::bench_support::random_run_shape(runs, domain);
    std::mt19937_64& rng = w.shape.rng;
    for (std::size_t i = 0; i < npoints; ++i) w.points.push_back(rng() % domain);
    for (std::size_t i = 0; i < nops; ++i) {
        const page_index b = rng() % domain;
        const std::size_t r = w.run_of(b);
        const page_index len = 1 + rng() % 512;  // 4 KiB .. 2 MiB
        const page_index e = std::min(b + len, w.end_of(r));
        w.assigns.push_back({b, e, u8(1 - w.value_of(r)), w.value_of(r)});
        const page_index wb = rng() % (domain - window);
        w.windows.push_back({wb, w.value_of(w.run_of(wb))});
    }
    return w;
}

template <class Impl>
Impl& get_impl(std::size_t runs) {
    static std::map<std::size_t, std::unique_ptr<Impl>> cache;
    auto& slot = cache[runs];
    if (slot) return *slot;
    const workload& w = get_workload(runs);
    slot = std::make_unique<Impl>();
    Impl& m = *slot;
    if constexpr (std::is_same_v<Impl, sorted_vector_impl>) {
        m.starts = w.starts();
        for (std::size_t i = 0; i < runs; ++i) m.vals.push_back(w.value_of(i));
    } else {
        for (std::size_t i : w.shape.build_order) m.assign(w.starts()[i], w.end_of(i), 1);
        if constexpr (std::is_same_v<Impl, bitmap_impl>) m.runs_ = runs;
    }
    if (m.runs() != runs) die("peer does not hold the expected number of coalesced runs");
    for (std::size_t i = 0; i < 64; ++i)
        if (m.at(w.points[i]) != w.value_of(w.run_of(w.points[i]))) die("peer disagrees with the workload");
    return m;
}

template <class Impl>
void set_counters(benchmark::State& state, const Impl& m, std::size_t runs) {
    state.counters["bytes_per_run"] = m.bytes() / double(runs);
}

template <class Impl>
void bm_point_query(benchmark::State& state, std::size_t runs) {
    const workload& w = get_workload(runs);
    const Impl& m = get_impl<Impl>(runs);
    std::size_t i = 0;
    unsigned sum = 0;
    for (auto _ : state) {
        sum += m.at(w.points[i++ & (npoints - 1)]);
        benchmark::DoNotOptimize(sum);
    }
    set_counters(state, m, runs);
}

template <class Impl>
void bm_assign(benchmark::State& state, std::size_t runs) {
    const workload& w = get_workload(runs);
    Impl& m = get_impl<Impl>(runs);
    std::size_t i = 0;
    for (auto _ : state) {
        const auto& op = w.assigns[(i >> 1) & (nops - 1)];
        m.assign(op.b, op.e, (i & 1) ? op.old : op.v);
        ++i;
    }
    if (i & 1) {  // put the last range back (untimed)
        const auto& op = w.assigns[(i >> 1) & (nops - 1)];
        m.assign(op.b, op.e, op.old);
    }
    if (m.runs() != runs) die("assign benchmark did not restore the structure");
    set_counters(state, m, runs);
}

template <class Impl>
void bm_all_of(benchmark::State& state, std::size_t runs) {
    const workload& w = get_workload(runs);
    const Impl& m = get_impl<Impl>(runs);
    std::size_t i = 0, hits = 0;
    for (auto _ : state) {
        const auto& op = w.windows[i++ & (nops - 1)];
        hits += m.all_of(op.b, op.b + window, op.v);
        benchmark::DoNotOptimize(hits);
    }
    set_counters(state, m, runs);
}

template <class Impl>
void bm_iterate(benchmark::State& state, std::size_t runs) {
    const workload& w = get_workload(runs);
    const Impl& m = get_impl<Impl>(runs);
    std::size_t i = 0;
    std::uint64_t sum = 0;
    for (auto _ : state) {
        const page_index b = w.windows[i++ & (nops - 1)].b;
        sum += m.iterate(b, b + window);
        benchmark::DoNotOptimize(sum);
    }
    set_counters(state, m, runs);
}

template <class Impl>
void register_impl(const char* name, bool queries_only) {
    for (std::size_t runs : {std::size_t{1000}, std::size_t{100000}, std::size_t{1000000}}) {
        const std::string tail = std::string("/") + name + "/" + std::to_string(runs);
        benchmark::RegisterBenchmark(("BM_PointQuery" + tail).c_str(), bm_point_query<Impl>, runs);
        if (!queries_only) benchmark::RegisterBenchmark(("BM_Assign" + tail).c_str(), bm_assign<Impl>, runs);
        benchmark::RegisterBenchmark(("BM_AllOf" + tail).c_str(), bm_all_of<Impl>, runs);
        benchmark::RegisterBenchmark(("BM_IterateRuns" + tail).c_str(), bm_iterate<Impl>, runs);
    }
}

[[maybe_unused]] const bool registered = [] {
    register_impl<guestmem_impl>("guestmem", false);
    register_impl<std_map_impl>("std_map", false);
    register_impl<icl_impl>("boost_icl", false);
    register_impl<sorted_vector_impl>("sorted_vector", true);
    register_impl<bitmap_impl>("bitmap", false);
    return true;
}();

} // namespace
