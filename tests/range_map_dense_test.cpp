// Tests for the range map's dense layout (two-valued values: bool,
// shareability): chunks that cross between immediate, array and bitmap
// encodings and back, assigns across chunk edges and the padded last chunk,
// a randomised differential test against a per-page model over several
// chunks, sparse 2^64-page domains, out-of-memory at every allocation of an
// assign and of a load, reservations, and the memory bounds the layout
// promises (2 bytes per boundary, at most 1/8 byte per page).
#include <doctest/doctest.h>

#include <guestmem/range_map/range_map.hpp>

#include "support/failing_allocator.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <utility>
#include <vector>

using namespace guestmem;

namespace {

constexpr page_index chunk = page_index{1} << 16;
using alloc_state = test_support::alloc_control;
using bool_alloc = test_support::failing_allocator<bool>;
using bmap = range_map<bool, bool_alloc>;

static_assert(two_valued<bool>::enabled && two_valued<shareability>::enabled && !two_valued<std::uint8_t>::enabled);
static_assert(std::forward_iterator<bmap::iterator>);
static_assert(std::ranges::borrowed_range<bmap::run_view>);

template <class Map>
std::vector<run<bool>> runs_of(const Map& m, page_range w) {
    std::vector<run<bool>> out;
    for (auto r : m.runs(w)) out.push_back(r);
    return out;
}

std::vector<run<bool>> model_runs(const std::vector<char>& model, page_range w) {
    std::vector<run<bool>> out;
    for (page_index p = w.begin; p < w.end; ++p) {
        if (!out.empty() && out.back().value == bool(model[p]))
            out.back().range.end = p + 1;
        else
            out.push_back({{p, p + 1}, bool(model[p])});
    }
    return out;
}

/// Flip every other page of [b, e) (to !value of its left neighbour's pattern).
void alternate(bmap& m, page_index b, page_index e, std::vector<char>* model = nullptr) {
    for (page_index p = b; p < e; p += 2) {
        REQUIRE(m.assign({p, p + 1}, true));
        if (model) (*model)[p] = 1;
    }
}

/// Assign r on m with its k-th allocation failing, k = 1, 2, ... until the
/// assign succeeds (the value alternates with k); then the same assign on
/// `same`. Each failure must be out_of_memory at r.begin and leave m as it
/// was: equal to `same`, no allocation kept, the same memory_bytes().
/// Returns the failures.
int assign_failing_each_allocation(bmap& m, bmap& same, alloc_state& st, page_range r) {
    int failures = 0;
    for (long k = 1;; ++k) {
        const long live = st.live;
        const std::size_t bytes = m.memory_bytes();
        st.fail_at = st.calls + k;
        status s = m.assign(r, k % 2 == 0);
        st.fail_at = 0;
        if (s) {
            REQUIRE(same.assign(r, k % 2 == 0));
            return failures;
        }
        ++failures;
        CHECK(s.error().code() == errc::out_of_memory);
        CHECK(s.error().page() == r.begin);
        CHECK(st.live == live);
        CHECK(m.memory_bytes() == bytes);
        REQUIRE(m == same);
    }
}

} // namespace

// Sanitizer builds check memory, not breadth: the two long randomised
// loops below run a quarter of their operations there (each still checked
// against the model); the other builds run them all.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int sanitizer_divisor = 4;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr int sanitizer_divisor = 4;
#else
constexpr int sanitizer_divisor = 1;
#endif
#else
constexpr int sanitizer_divisor = 1;
#endif

TEST_CASE("a dense map answers like a per-page model across chunk edges (randomised)") {
    for (const std::uint32_t seed : {1u, 2u, 3u}) {
        CAPTURE(seed);
        std::mt19937_64 rng(seed);
        const page_index size = 3 * chunk + 1000 + seed;  // a padded last chunk
        alloc_state st;
        bmap m(size, false, bool_alloc(&st));
        std::vector<char> model(size, 0);
        auto rnd = [&](page_index n) { return page_index(rng() % n); };
        for (int op = 0; op < 6000 / sanitizer_divisor; ++op) {
            page_index b = rnd(size);
            switch (rnd(6)) {
                case 0: b = (rnd(4) * chunk + size - 3 + rnd(6)) % size; break;  // near a chunk edge
                case 1: b = std::min(size - 1, rnd(4) * chunk); break;
                default: break;
            }
            page_index len = rnd(8) == 0 ? 1 + rnd(2 * chunk) : 1 + rnd(rnd(4) == 0 ? 600 : 6);
            const page_range r{b, std::min(size, b + len)};
            const bool v = rnd(2);
            REQUIRE(m.assign(r, v));
            std::fill(model.begin() + std::ptrdiff_t(r.begin), model.begin() + std::ptrdiff_t(r.end), char(v));
            REQUIRE(m.coalesced());
            for (int q = 0; q < 4; ++q) {
                const page_index p = rnd(size);
                REQUIRE(m.at(p) == bool(model[p]));
            }
            const page_index wb = rnd(size), we = std::min(size, wb + 1 + rnd(3 * chunk));
            REQUIRE(runs_of(m, {wb, we}) == model_runs(model, {wb, we}));
            if (op % 500 == 0) REQUIRE(m.run_count() == model_runs(model, {0, size}).size());
        }
        // Make one chunk dense (a bitmap), check, and thin it out again.
        alternate(m, chunk + 1, 2 * chunk - 1, &model);
        REQUIRE(m.coalesced());
        REQUIRE(runs_of(m, {0, size}) == model_runs(model, {0, size}));
        for (page_index p = chunk + 1; p < 2 * chunk - 200; p += 16) {
            REQUIRE(m.assign({p, p + 15}, false));
            std::fill(model.begin() + std::ptrdiff_t(p), model.begin() + std::ptrdiff_t(p + 15), 0);
        }
        REQUIRE(m.coalesced());
        REQUIRE(runs_of(m, {0, size}) == model_runs(model, {0, size}));
        REQUIRE(m.run_count() == model_runs(model, {0, size}).size());
        REQUIRE(m.assign({0, size}, true));
        CHECK(m.run_count() == 1);
        m.abort_assign();
        CHECK(m.memory_bytes() == 0);
        CHECK(st.live == 0);
    }
}

TEST_CASE("assigns of whole chunks keep the run count right whatever their neighbours hold (randomised)") {
    // Whole-chunk assigns take dense_runs' shortcut (no reservation; a
    // uniform range only looks at its two neighbours): mixed with partial
    // assigns so the neighbours and the range itself are immediates, arrays
    // and bitmaps, and with the padded last chunk.
    for (const std::uint32_t seed : {11u, 12u}) {
        CAPTURE(seed);
        std::mt19937_64 rng(seed);
        const page_index chunks = 6, size = (chunks - 1) * chunk + 777;
        alloc_state st;
        bmap m(size, false, bool_alloc(&st));
        std::vector<char> model(size, 0);
        auto rnd = [&](page_index n) { return page_index(rng() % n); };
        for (int op = 0; op < 700 / sanitizer_divisor; ++op) {
            page_range r;
            if (rnd(2) == 0) {
                const page_index lo = rnd(chunks), hi = lo + 1 + rnd(std::min<page_index>(3, chunks - lo));
                r = {lo * chunk, std::min(size, hi * chunk)};
            } else {
                const page_index b = rnd(4) == 0 ? rnd(chunks) * chunk + rnd(3) : rnd(size);
                r = {std::min(b, size - 1), std::min(size, std::min(b, size - 1) + 1 + rnd(rnd(3) == 0 ? 6000 : 40))};
            }
            const bool v = rnd(2);
            REQUIRE(m.assign(r, v));
            std::fill(model.begin() + std::ptrdiff_t(r.begin), model.begin() + std::ptrdiff_t(r.end), char(v));
            REQUIRE(m.coalesced());
            REQUIRE(m.run_count() == model_runs(model, {0, size}).size());
            for (const page_index p : {r.begin, r.end - 1, r.begin ? r.begin - 1 : 0, r.end < size ? r.end : 0})
                REQUIRE(m.at(p) == bool(model[p]));
        }
        REQUIRE(runs_of(m, {0, size}) == model_runs(model, {0, size}));
        // A prepared whole-chunk assign that is abandoned leaves the map as it was.
        const auto before = runs_of(m, {0, size});
        REQUIRE(m.prepare_assign({chunk, 3 * chunk}));
        m.abort_assign();
        CHECK(runs_of(m, {0, size}) == before);
        REQUIRE(m.coalesced());
    }
}

TEST_CASE("a chunk goes from immediate to array to bitmap and back, and memory follows") {
    alloc_state st;
    bmap m(4 * chunk, false, bool_alloc(&st));
    REQUIRE(m.assign({10, 11}, true));
    m.abort_assign();
    CHECK(m.memory_bytes() == 4 * 8);  // two boundaries: an immediate, in the direct top (8 B per chunk)
    CHECK(m.run_count() == 3);
    REQUIRE(m.assign({20, 21}, true));
    m.abort_assign();
    CHECK(m.memory_bytes() > 4 * 8);  // four boundaries: an array block
    CHECK(m.memory_bytes() < 512);
    alternate(m, chunk, 2 * chunk);  // 2^16 - 1 boundaries in chunk 1
    m.abort_assign();
    CHECK(m.run_count() == 5 + chunk);
    const std::size_t dense = m.memory_bytes();
    CHECK(dense <= 8192 + 16 + 600 + 4 * 8);  // one bitmap, the array of chunk 0, the direct top
    REQUIRE(m.assign({chunk, chunk + chunk / 2}, false));  // half the bitmap's boundaries go
    m.abort_assign();
    CHECK(m.memory_bytes() == dense);  // still a bitmap (32,767 boundaries)
    REQUIRE(m.assign({chunk, 2 * chunk - 64}, false));  // 64 left: an array again
    m.abort_assign();
    CHECK(m.memory_bytes() < 2048);
    CHECK(m.run_count() == 5 + 64);
    REQUIRE(m.coalesced());
    REQUIRE(m.assign({0, 4 * chunk}, false));
    m.abort_assign();
    CHECK(m.memory_bytes() == 0);
    CHECK(st.live == 0);
}

TEST_CASE("every page alternating costs at most 1/8 byte per page") {
    const page_index size = page_index{1} << 20;
    range_map<shareability> m(size, shareability::shared);
    for (page_index p = 1; p < size; p += 2) REQUIRE(m.assign({p, p + 1}, shareability::guest_only));
    m.abort_assign();
    CHECK(m.run_count() == size);
    CHECK(m.coalesced());
    CHECK(double(m.memory_bytes()) / double(size) <= 0.13);  // 16 bitmaps of 8 KiB + their top map
    CHECK(m.at(12345) == shareability::guest_only);
    CHECK(m.at(12346) == shareability::shared);
    std::size_t n = 0;
    for (auto r : m.runs({1000, 2000})) {
        CHECK(r.range.size() == 1);
        CHECK((r.value == shareability::guest_only) == (r.range.begin % 2 == 1));
        ++n;
    }
    CHECK(n == 1000);
}

TEST_CASE("random runs cost about 2 bytes per boundary") {
    const page_index size = page_index{1} << 28;
    range_map<bool> m(size, false);
    std::mt19937_64 rng(5);
    for (int i = 0; i < 100000; ++i) {
        const page_index b = rng() % (size - 8);
        REQUIRE(m.assign({b, b + 1 + rng() % 8}, true));
    }
    m.abort_assign();
    REQUIRE(m.coalesced());
    const double per_run = double(m.memory_bytes()) / double(m.run_count());
    CAPTURE(m.run_count());
    CHECK(per_run < 4.0);
}

TEST_CASE("a sparse 2^64-page dense map against a std::map reference") {
    constexpr page_index size = std::numeric_limits<page_index>::max();
    std::mt19937_64 rng(9);
    range_map<bool> m(size, false);
    std::map<page_index, bool> ref{{0, false}};  // run starts
    auto ref_at = [&](page_index p) { return std::prev(ref.upper_bound(p))->second; };
    for (int op = 0; op < 4000; ++op) {
        page_index b = rng() % size;
        if (op % 7 == 0) b = size - 1 - rng() % 3;
        if (op % 11 == 0) b = std::min(size - 1, (rng() % 5) * chunk - (rng() % 2));
        const page_index len = op % 9 == 0 ? 1 + rng() % (size - b) : 1 + rng() % 200000;
        const page_range r{b, b + std::min(len, size - b)};
        const bool v = rng() & 1;
        REQUIRE(m.assign(r, v));
        const bool after = r.end < size ? ref_at(r.end) : false;
        ref.erase(ref.lower_bound(r.begin), r.end < size ? ref.upper_bound(r.end) : ref.end());
        ref[r.begin] = v;
        if (r.end < size) ref[r.end] = after;
        for (auto it = std::next(ref.begin()); it != ref.end();) it = std::prev(it)->second == it->second ? ref.erase(it) : std::next(it);
        REQUIRE(m.run_count() == ref.size());
        const page_index p = rng() % size;
        REQUIRE(m.at(p) == ref_at(p));
    }
    REQUIRE(m.coalesced());
    std::vector<run<bool>> expect;
    for (auto it = ref.begin(); it != ref.end(); ++it) {
        const auto nx = std::next(it);
        expect.push_back({{it->first, nx == ref.end() ? size : nx->first}, it->second});
    }
    CHECK(runs_of(m, {0, size}) == expect);
}

TEST_CASE("out of memory at every allocation of a dense assign leaves the map unchanged") {
    alloc_state st;
    const bool_alloc a(&st);
    bmap m(8 * chunk, false, a), same(8 * chunk, false, a);
    for (bmap* x : {&m, &same}) {
        alternate(*x, 3 * chunk + 2, 3 * chunk + 4098);   // an array of 4,096 boundaries: full
        alternate(*x, 5 * chunk + 1, 6 * chunk);          // a bitmap
        for (page_index p : {page_index{100}, 2 * chunk + 50, 4 * chunk + 70, 7 * chunk + 9})
            REQUIRE(x->assign({p, p + 3}, true));  // immediates
        x->abort_assign();
    }
    struct change {
        page_range r;
        bool allocates;
    };
    const change cases[] = {{{3 * chunk + 10000, 3 * chunk + 10001}, true},  // the array grows into a bitmap
                            {{5 * chunk + 8, 6 * chunk - 100}, true},        // the bitmap thins to an array
                            {{chunk - 5, 7 * chunk + 3}, false},             // edge chunks stay immediates
                            {{7, 8}, true}};                                 // an immediate becomes an array
    for (const change& ch : cases) {  // (clang 14 cannot capture structured bindings in CAPTURE)
        const page_range r = ch.r;
        const bool allocates = ch.allocates;
        CAPTURE(r.begin);
        CHECK(assign_failing_each_allocation(m, same, st, r) == (allocates ? 1 : 0));
        REQUIRE(m.coalesced());
        REQUIRE(m == same);
    }
}

TEST_CASE("load builds the same dense map as the assigns, and a failed load changes nothing") {
    alloc_state st;
    const bool_alloc a(&st);
    const page_index size = 6 * chunk + 77;
    bmap src(size, false, a);
    std::mt19937_64 rng(3);
    for (int i = 0; i < 3000; ++i) {
        const page_index b = rng() % size;
        REQUIRE(src.assign({b, std::min(size, b + 1 + rng() % 40)}, rng() & 1));
    }
    alternate(src, 2 * chunk, 3 * chunk + 5);  // a bitmap
    REQUIRE(src.assign({4 * chunk, 5 * chunk}, true));  // a whole uniform chunk
    std::vector<std::pair<page_index, bool>> runs;
    for (auto r : src.runs({0, size})) runs.push_back({r.range.size(), r.value});
    int failures = 0;
    for (long k = 1;; ++k) {
        bmap dst(size, true, a);
        REQUIRE(dst.assign({5, 9}, false));
        const auto before = runs_of(dst, {0, size});
        const long live = st.live;
        std::size_t i = 0;
        auto next = [&] { return runs[i++]; };
        st.fail_at = st.calls + k;
        status s = dst.load(runs.size(), next);
        st.fail_at = 0;
        if (s) {
            CHECK(dst.coalesced());
            CHECK(dst == src);
            CHECK(dst.run_count() == src.run_count());
            break;
        }
        ++failures;
        CHECK(s.error().code() == errc::out_of_memory);
        CHECK(st.live == live);
        CHECK(runs_of(dst, {0, size}) == before);
        CHECK(dst.coalesced());
    }
    CHECK(failures >= 3);
}

TEST_CASE("a dense load stopped by a length of 0 anywhere, across chunks of every encoding, changes nothing and keeps no block") {
    alloc_state st;
    const bool_alloc a(&st);
    const page_index size = 6 * chunk + 77;
    bmap src(size, false, a);
    std::mt19937_64 rng(28);
    for (int i = 0; i < 3000; ++i) {
        const page_index b = rng() % size;
        REQUIRE(src.assign({b, std::min(size, b + 1 + rng() % 40)}, rng() & 1));
    }
    alternate(src, 2 * chunk, 3 * chunk + 5);  // a bitmap
    std::vector<std::pair<page_index, bool>> runs;
    for (auto r : src.runs({0, size})) runs.push_back({r.range.size(), r.value});
    bmap dst(size, true, a);
    REQUIRE(dst.assign({5, 9}, false));
    const auto before = runs_of(dst, {0, size});
    for (std::size_t stop : {std::size_t{0}, std::size_t{1}, runs.size() / 3, runs.size() / 2 + 1, runs.size() - 1}) {
        CAPTURE(stop);
        const long live = st.live;
        std::size_t i = 0;
        auto next = [&] {
            auto r = runs[i];
            if (i++ == stop) r.first = 0;
            return r;
        };
        status s = dst.load(runs.size(), next);
        REQUIRE_FALSE(s);
        CHECK(s.error().code() == errc::invalid_argument);
        CHECK(i == stop + 1);
        CHECK(st.live == live);
        CHECK(runs_of(dst, {0, size}) == before);
        CHECK(dst.coalesced());
    }
    std::size_t i = 0;
    auto one = [&] { return std::pair<page_index, bool>{i++ == 0 ? 0 : size, false}; };
    CHECK_FALSE(dst.load(1, one));
    CHECK(runs_of(dst, {0, size}) == before);
}

TEST_CASE("prepare_assign makes a dense commit_assign allocation-free, for either value") {
    alloc_state st;
    bmap m(4 * chunk, false, bool_alloc(&st));
    std::mt19937 rng(11);
    for (int i = 0; i < 40000; ++i) {
        const page_index b = rng() % (4 * chunk - 300);
        const page_range r{b, b + 1 + (i % 13 == 0 ? rng() % (4 * chunk - b - 1) : rng() % 3)};
        REQUIRE(m.prepare_assign(r));
        const long calls = st.calls;
        m.commit_assign(r, rng() % 2);
        REQUIRE(st.calls == calls);
        if (i % 5 == 0) m.abort_assign();
    }
    CHECK(m.coalesced());
    m.abort_assign();
    m.commit_assign({0, 4 * chunk}, true);  // the whole domain needs nothing
    CHECK(m.run_count() == 1);
    CHECK(m.memory_bytes() == 4 * 8);  // the direct top stays until abort_assign
    m.abort_assign();
    CHECK(m.memory_bytes() == 0);
    CHECK(st.live == 0);
}

TEST_CASE("above 2^16 chunks the top is a run tree: out of memory at every allocation changes nothing") {
    alloc_state st;
    const bool_alloc a(&st);
    const page_index size = page_index{1} << 40;  // 2^24 chunks
    bmap m(size, false, a), same(size, false, a);
    std::mt19937_64 rng(4);
    for (int i = 0; i < 3000; ++i) {
        const page_index b = rng() % (size - 100), len = 1 + (i % 3 == 0 ? rng() % (4 * chunk) : rng() % 9);
        const bool v = rng() & 1;
        REQUIRE(m.assign({b, b + len}, v));
        REQUIRE(same.assign({b, b + len}, v));
    }
    m.abort_assign();
    CHECK(m.memory_bytes() < 3000 * 2 * 64);  // O(runs), not 8 B per chunk of the 2^24
    int failures = 0;
    for (int i = 0; i < 200; ++i) {
        const page_index b = rng() % (size - 3 * chunk);
        const page_range r{b, b + 1 + rng() % (3 * chunk)};
        failures += assign_failing_each_allocation(m, same, st, r);
        m.abort_assign();
    }
    CHECK(failures > 200);
    REQUIRE(m.coalesced());
    REQUIRE(m == same);
}

TEST_CASE("prepare_assign from an all_of hint assigns like a per-page model, whether the hint is right, stale or made up (randomised)") {
    for (const std::uint32_t seed : {7u, 8u}) {
        CAPTURE(seed);
        std::mt19937_64 rng(seed);
        const page_index size = 2 * chunk + 777;
        alloc_state st;
        bmap m(size, false, bool_alloc(&st));
        std::vector<char> model(size, 0);
        auto rnd = [&](page_index n) { return page_index(rng() % n); };
        for (int op = 0; op < 8000; ++op) {
            // Mostly one page (the hinted case), clustered so chunks fill up
            // into arrays; sometimes a few pages or a chunk edge.
            page_index b = rnd(4) == 0 ? rnd(size) : chunk / 2 + rnd(3000);
            if (rnd(16) == 0) b = std::min(size - 1, rnd(3) * chunk + rnd(2));
            const page_range r{b, std::min(size, b + (rnd(8) == 0 ? 1 + rnd(5) : 1))};
            const bool v = rnd(2);
            bmap::assign_hint hint;
            switch (rnd(4)) {
                case 0: (void)m.all_of(r, v, hint); break;  // the search of this very range
                case 1: {  // another page's search (a wrong guess, usually)
                    const page_index q = rnd(size);
                    (void)m.all_of({q, q + 1}, v, hint);
                    break;
                }
                case 2: hint.index = std::uint32_t(rng()) % 5000; break;    // made up
                default: break;                                              // none
            }
            REQUIRE(m.all_of(r, v) == std::all_of(model.begin() + std::ptrdiff_t(r.begin),
                                                  model.begin() + std::ptrdiff_t(r.end),
                                                  [&](char c) { return bool(c) == v; }));
            REQUIRE(m.prepare_assign(r, hint));
            m.commit_assign(r, v);
            std::fill(model.begin() + std::ptrdiff_t(r.begin), model.begin() + std::ptrdiff_t(r.end), char(v));
            REQUIRE(m.coalesced());
            if (op % 64 == 0) {
                REQUIRE(runs_of(m, {0, size}) == model_runs(model, {0, size}));
                REQUIRE(m.run_count() == model_runs(model, {0, size}).size());
            }
        }
        REQUIRE(runs_of(m, {0, size}) == model_runs(model, {0, size}));
    }
}
