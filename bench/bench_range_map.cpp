// Benchmarks for the shareability range map (issues 3 and 19) against its peers:
//   guestmem      guestmem::range_map<bool>: the map the project uses (its
//                 shareability is two-valued); values 0/1 cast to bool
//   guestmem_u8   guestmem::range_map<std::uint8_t>, the generic map (the
//                 256-byte-node B+-tree), kept so one run shows the bool map
//                 against the previous one
//   std_map       a coalescing interval map on std::map<start, value>
//   boost_icl     boost::icl::interval_map with set (overwrite) semantics,
//                 partial_enricher (both values stored), right-open intervals
//   absl_btree    the std_map algorithm on absl::btree_map<start, value>
//                 (Debian's libabsl-dev; 256-byte nodes), hinted inserts and
//                 range erases; left out when absl is not found
//   roaring       CRoaring (Debian's libroaring-dev, 0.2.66): a
//                 roaring_bitmap_t of the pages whose value is 1, built by
//                 add_range then run_optimize + shrink_to_fit; assign is
//                 add_range / remove_range (no run_optimize after it: that
//                 would cost a pass over the containers); at is contains;
//                 all_of is contains_range (value 1) or range_cardinality == 0
//                 (value 0); IterateRuns walks the containers of the window
//                 (the run, array and bitset containers that roaring.h
//                 declares) and yields maximal runs across container
//                 boundaries, since the library's own iterator yields one
//                 value at a time (2^17 calls per window). Left out when
//                 libroaring is not found
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
// overhead; absl_btree: the btree's own bytes_used() (leaf and internal
// nodes at their allocated sizes, plus the tree object), reached through
// the protected tree_ member of a class derived from absl::btree_map, since
// the public API does not expose it; roaring: the n_bytes_* fields of
// roaring_bitmap_statistics (container payloads: 4 bytes per run, 2 per
// array value, 8 KiB per bitset; equal to the allocation after
// shrink_to_fit) plus 16 bytes per container struct plus the container
// index (8-byte pointer, 2-byte key, 1-byte type per allocated slot) plus
// the bitmap object; roaring also reports portable_bytes_per_run, its
// portable serialised size; vector: capacity; bitmap: 64 MiB / runs).
// Each structure is built once per (impl, runs) and shared by its benchmarks.
// BM_AlternatingPages/<impl>: the worst case a guest can force, every page
// alternating (page p holds p & 1) over 2^22 pages (16 GiB): built untimed
// by 2^21 single-page assigns of 1 over a map of 0 (counter build_s: how
// long that took), then the timed loop is point queries of random pages;
// counter bytes_per_page (roaring also portable_bytes_per_page). Impls:
// guestmem, guestmem_u8, roaring (run_optimize keeps bitset containers
// here), bitmap, absl_btree.
// Quick run: guestmem_bench --benchmark_filter='BM_(PointQuery|Assign|AllOf|IterateRuns|AlternatingPages)/' --benchmark_min_time=0.2
#define BOOST_ICL_USE_STATIC_BOUNDED_INTERVALS 1
#include <benchmark/benchmark.h>
#include <boost/icl/interval_map.hpp>

#include <guestmem/range_map/range_map.hpp>

#include "run_shapes.hpp"

#if GUESTMEM_HAVE_ABSL
#include <absl/container/btree_map.h>
#endif
#if GUESTMEM_HAVE_ROARING
#include <roaring/roaring.h>
#endif

#include <algorithm>
#include <chrono>
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
constexpr page_index alt_domain = page_index{1} << 22;  // BM_AlternatingPages: 16 GiB
constexpr page_index window = 262144;  // 1 GiB of 4 KiB pages
constexpr std::size_t nops = 1u << 16;
constexpr std::size_t npoints = 1u << 22;  // more pages than any cache holds lines for

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "bench_range_map: %s\n", what);
    std::abort();
}

// ---- peers ---------------------------------------------------------------

/// all_of over an ordered map of run start -> value (std::map, absl::btree_map).
template <class Starts>
bool starts_all_of(const Starts& m, page_index b, page_index e, u8 v) {
    for (auto it = std::prev(m.upper_bound(b)); it != m.end() && it->first < e; ++it)
        if (it->second != v) return false;
    return true;
}

/// The runs of [b, e) in an ordered map of run start -> value over [0, dom).
template <class Starts>
std::uint64_t starts_iterate(const Starts& m, page_index dom, page_index b, page_index e) {
    std::uint64_t s = 0;
    for (auto it = std::prev(m.upper_bound(b)); it != m.end() && it->first < e; ++it) {
        auto nx = std::next(it);
        const page_index rb = std::max(it->first, b), re = std::min(nx == m.end() ? dom : nx->first, e);
        s += (re - rb) * it->second + 1;
    }
    return s;
}

/// guestmem::range_map<V>: V = bool is the project's map (two values),
/// V = std::uint8_t the generic one (guestmem_u8).
template <class V>
struct guestmem_impl {
    guestmem::range_map<V> m;
    explicit guestmem_impl(page_index d = domain) : m(d, V(0)) {}
    u8 at(page_index p) const { return u8(m.at(p)); }
    void assign(page_index b, page_index e, u8 v) {
        if (!m.assign({b, e}, V(v))) die("guestmem assign failed");
    }
    bool all_of(page_index b, page_index e, u8 v) const { return m.all_of({b, e}, V(v)); }
    std::uint64_t iterate(page_index b, page_index e) const {
        std::uint64_t s = 0;
        for (auto r : m.runs({b, e})) s += r.range.size() * u8(r.value) + 1;
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
    bool all_of(page_index b, page_index e, u8 v) const { return starts_all_of(m, b, e, v); }
    std::uint64_t iterate(page_index b, page_index e) const { return starts_iterate(m, domain, b, e); }
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

#if GUESTMEM_HAVE_ABSL
/// absl::btree_map with its node memory visible: bytes_used() lives on the
/// internal btree, the protected member tree_ of every absl btree container.
struct absl_btree_map : absl::btree_map<page_index, u8> {
    std::size_t bytes_used() const { return this->tree_.bytes_used(); }
};

/// The std_map algorithm on absl::btree_map. absl's iterators do not survive
/// an insert or erase, so every lookup happens before the first change and
/// the inserts are hinted with the iterator erase() returns.
struct absl_btree_impl {
    absl_btree_map m;
    page_index dom;
    explicit absl_btree_impl(page_index d = domain) : dom(d) { m.emplace(page_index{0}, u8{0}); }
    u8 at(page_index p) const { return std::prev(m.upper_bound(p))->second; }
    void assign(page_index b, page_index e, u8 v) {
        auto lo = m.lower_bound(b);                // first start >= b
        const auto hi = m.upper_bound(e);          // first start > e
        const auto last = std::prev(hi);           // the run holding page e (or ending at e)
        const bool has_after = e < dom;
        const u8 after = has_after ? last->second : 0;
        const bool want_b = b == 0 || std::prev(lo)->second != v;
        const bool want_e = has_after && after != v;
        const bool b_present = lo != m.end() && lo->first == b;
        const bool e_present = has_after && last->first == e;
        auto from = lo;
        if (want_b && b_present) {
            lo->second = v;
            from = std::next(lo);
        }
        const auto to = (want_e && e_present) ? last : hi;
        auto it = from == to ? to : m.erase(from, to);  // it: the first start after [b, e) that stays
        if (want_b && !b_present) it = std::next(m.emplace_hint(it, b, v));
        if (want_e && !e_present) m.emplace_hint(it, e, after);
    }
    bool all_of(page_index b, page_index e, u8 v) const { return starts_all_of(m, b, e, v); }
    std::uint64_t iterate(page_index b, page_index e) const { return starts_iterate(m, dom, b, e); }
    std::size_t runs() const { return m.size(); }
    double bytes() const { return double(m.bytes_used()); }
};
#endif

#if GUESTMEM_HAVE_ROARING
/// CRoaring: the set of pages whose value is 1 (the domain fits uint32_t).
struct roaring_impl {
    roaring_bitmap_t* r = roaring_bitmap_create();
    page_index dom;
    explicit roaring_impl(page_index d = domain) : dom(d) {
        if (r == nullptr || d > (page_index{1} << 32)) die("roaring_bitmap_create failed");
    }
    roaring_impl(const roaring_impl&) = delete;
    roaring_impl& operator=(const roaring_impl&) = delete;
    ~roaring_impl() { roaring_bitmap_free(r); }

    /// After the build: the smallest container kinds, no spare capacity.
    void finish_build() {
        roaring_bitmap_run_optimize(r);
        roaring_bitmap_shrink_to_fit(r);
    }
    u8 at(page_index p) const { return u8(roaring_bitmap_contains(r, std::uint32_t(p))); }
    void assign(page_index b, page_index e, u8 v) {
        if (v)
            roaring_bitmap_add_range(r, b, e);
        else
            roaring_bitmap_remove_range(r, b, e);
    }
    bool all_of(page_index b, page_index e, u8 v) const {
        return v ? roaring_bitmap_contains_range(r, b, e) : roaring_bitmap_range_cardinality(r, b, e) == 0;
    }

    /// f(s, t) for each maximal run [s, t) of 1s overlapping [b, e), clipped
    /// to it, in order; runs that continue across a container boundary are
    /// joined.
    template <class F>
    void for_each_one_run(page_index b, page_index e, F&& f) const {
        const roaring_array_t& ra = r->high_low_container;
        page_index ps = 0, pe = 0;
        bool pending = false;
        auto emit = [&](page_index s, page_index t) {
            s = std::max(s, b);
            t = std::min(t, e);
            if (s >= t) return;
            if (pending && s == pe) {
                pe = t;
                return;
            }
            if (pending) f(ps, pe);
            ps = s;
            pe = t;
            pending = true;
        };
        const std::uint16_t* keys = ra.keys;
        for (std::int32_t i = std::int32_t(std::lower_bound(keys, keys + ra.size, std::uint16_t(b >> 16)) - keys);
             i < ra.size && (page_index(keys[i]) << 16) < e; ++i) {
            const page_index base = page_index(keys[i]) << 16;
            const std::uint32_t lo = b > base ? std::uint32_t(b - base) : 0;  // first local page of interest
            const std::uint32_t hi = std::uint32_t(std::min<page_index>(e - base, 65536));
            std::uint8_t type = ra.typecodes[i];
            const void* c = container_unwrap_shared(ra.containers[i], &type);
            if (type == RUN_CONTAINER_TYPE_CODE) {
                const auto* rc = static_cast<const run_container_t*>(c);
                const rle16_t* x = std::partition_point(rc->runs, rc->runs + rc->n_runs, [&](const rle16_t& q) {
                    return std::uint32_t(q.value) + q.length < lo;  // run ends before lo
                });
                for (; x != rc->runs + rc->n_runs && x->value < hi; ++x)
                    emit(base + x->value, base + x->value + x->length + 1);
            } else if (type == ARRAY_CONTAINER_TYPE_CODE) {
                const auto* ac = static_cast<const array_container_t*>(c);
                const std::uint16_t* a = std::lower_bound(ac->array, ac->array + ac->cardinality, lo);
                const std::uint16_t* end = ac->array + ac->cardinality;
                while (a != end && *a < hi) {
                    const std::uint16_t* z = a + 1;
                    while (z != end && *z == z[-1] + 1) ++z;
                    emit(base + *a, base + z[-1] + 1);
                    a = z;
                }
            } else if (type == BITSET_CONTAINER_TYPE_CODE) {
                const std::uint64_t* w = static_cast<const bitset_container_t*>(c)->array;
                auto next = [&](std::uint32_t p, bool one) {  // first page >= p holding `one`, or hi
                    std::uint32_t k = p >> 6;
                    std::uint64_t x = (one ? w[k] : ~w[k]) & (~0ull << (p & 63));
                    while (x == 0) {
                        if (++k >= 1024 || (k << 6) >= hi) return hi;
                        x = one ? w[k] : ~w[k];
                    }
                    return std::min(hi, (k << 6) + std::uint32_t(__builtin_ctzll(x)));
                };
                for (std::uint32_t p = next(lo, true); p < hi;) {
                    const std::uint32_t q = next(p, false);
                    emit(base + p, base + q);
                    p = q < hi ? next(q, true) : hi;
                }
            } else {
                die("roaring container of an unknown type");
            }
        }
        if (pending) f(ps, pe);
    }
    /// Runs of both values in [b, e) (k runs of 1s leave k + 1 gaps, less
    /// the ones at the window's ends) and the sum iterate() reports.
    std::pair<std::size_t, std::uint64_t> runs_in(page_index b, page_index e) const {
        std::size_t ones = 0;
        std::uint64_t sum = 0;
        page_index first = e, last = b;
        for_each_one_run(b, e, [&](page_index s, page_index t) {
            if (ones++ == 0) first = s;
            last = t;
            sum += t - s + 1;
        });
        const std::size_t zeros = ones + 1 - (ones && first == b) - (ones && last == e);
        return {ones + zeros, sum + zeros};
    }
    std::uint64_t iterate(page_index b, page_index e) const { return runs_in(b, e).second; }
    std::size_t runs() const { return runs_in(0, dom).first; }
    double bytes() const {
        roaring_statistics_t st;
        roaring_bitmap_statistics(r, &st);
        const roaring_array_t& ra = r->high_low_container;
        return double(sizeof(roaring_bitmap_t)) + double(ra.allocation_size) * (sizeof(void*) + 2 + 1) +
               16.0 * st.n_containers + double(st.n_bytes_array_containers) + double(st.n_bytes_run_containers) +
               double(st.n_bytes_bitset_containers);
    }
    double portable_bytes() const { return double(roaring_bitmap_portable_size_in_bytes(r)); }
};
#endif

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
    std::vector<std::uint64_t> w;
    explicit bitmap_impl(page_index d = domain) : w(d / 32, 0) {}
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
        if constexpr (requires { m.finish_build(); }) m.finish_build();
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
    if constexpr (requires { m.portable_bytes(); })
        state.counters["portable_bytes_per_run"] = m.portable_bytes() / double(runs);
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

// ---- every page alternating ----------------------------------------------

const std::vector<page_index>& alternating_points() {
    static const std::vector<page_index> pts = [] {
        std::mt19937_64 rng(22);
        std::vector<page_index> v(npoints);
        for (auto& p : v) p = rng() % alt_domain;
        return v;
    }();
    return pts;
}

template <class Impl>
struct alternating {
    std::unique_ptr<Impl> m;
    double build_s = 0;
};

/// Page p holds p & 1: 2^21 single-page assigns of 1 over a map of 0.
template <class Impl>
const alternating<Impl>& get_alternating() {
    static const alternating<Impl> a = [] {
        alternating<Impl> r;
        r.m = std::make_unique<Impl>(alt_domain);
        Impl& m = *r.m;
        const auto t0 = std::chrono::steady_clock::now();
        for (page_index p = 1; p < alt_domain; p += 2) m.assign(p, p + 1, 1);
        if constexpr (requires { m.finish_build(); }) m.finish_build();
        r.build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if constexpr (std::is_same_v<Impl, bitmap_impl>) m.runs_ = alt_domain;
        if (m.runs() != alt_domain) die("alternating: peer does not hold one run per page");
        for (std::size_t i = 0; i < 64; ++i)
            if (m.at(alternating_points()[i]) != (alternating_points()[i] & 1)) die("alternating: peer disagrees");
        return r;
    }();
    return a;
}

template <class Impl>
void bm_alternating(benchmark::State& state) {
    const alternating<Impl>& a = get_alternating<Impl>();
    const std::vector<page_index>& pts = alternating_points();
    const Impl& m = *a.m;
    std::size_t i = 0;
    unsigned sum = 0;
    for (auto _ : state) {
        sum += m.at(pts[i++ & (npoints - 1)]);
        benchmark::DoNotOptimize(sum);
    }
    state.counters["bytes_per_page"] = m.bytes() / double(alt_domain);
    if constexpr (requires { m.portable_bytes(); })
        state.counters["portable_bytes_per_page"] = m.portable_bytes() / double(alt_domain);
    state.counters["build_s"] = a.build_s;
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

template <class Impl>
void register_alternating(const char* name) {
    benchmark::RegisterBenchmark((std::string("BM_AlternatingPages/") + name).c_str(), bm_alternating<Impl>);
}

[[maybe_unused]] const bool registered = [] {
    register_impl<guestmem_impl<bool>>("guestmem", false);
    register_impl<guestmem_impl<u8>>("guestmem_u8", false);
    register_impl<std_map_impl>("std_map", false);
    register_impl<icl_impl>("boost_icl", false);
#if GUESTMEM_HAVE_ABSL
    register_impl<absl_btree_impl>("absl_btree", false);
#endif
#if GUESTMEM_HAVE_ROARING
    register_impl<roaring_impl>("roaring", false);
#endif
    register_impl<sorted_vector_impl>("sorted_vector", true);
    register_impl<bitmap_impl>("bitmap", false);

    register_alternating<guestmem_impl<bool>>("guestmem");
    register_alternating<guestmem_impl<u8>>("guestmem_u8");
#if GUESTMEM_HAVE_ROARING
    register_alternating<roaring_impl>("roaring");
#endif
    register_alternating<bitmap_impl>("bitmap");
#if GUESTMEM_HAVE_ABSL
    register_alternating<absl_btree_impl>("absl_btree");
#endif
    return true;
}();

} // namespace
