// Tests for guestmem::range_map: boundaries (page 0, last page, 2^64-1),
// coalescing after every kind of assign, error codes and messages, a
// randomised differential test against a per-page model, out-of-memory
// injected at every allocation, reservations that make assign infallible,
// and the run view with std::ranges and range-v3.
#include <doctest/doctest.h>

#include <guestmem/range_map/range_map.hpp>

#include "support/failing_allocator.hpp"

#include <range/v3/algorithm/count_if.hpp>
#include <range/v3/numeric/accumulate.hpp>
#include <range/v3/range/concepts.hpp>
#include <range/v3/range/conversion.hpp>
#include <range/v3/view/filter.hpp>
#include <range/v3/view/transform.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <new>
#include <random>
#include <ranges>
#include <string>
#include <vector>

using namespace guestmem;

namespace {

constexpr page_index top = std::numeric_limits<page_index>::max();

/// The counting / failing allocator (nullptr is the range map's documented exhaustion signal).
using alloc_state = test_support::alloc_control;
template <class T>
using test_allocator = test_support::failing_allocator<T>;

using u8map = range_map<std::uint8_t>;
using counted_map = range_map<std::uint8_t, test_allocator<std::uint8_t>>;

template <class Map>
std::vector<run<typename Map::value_type>> all_runs(const Map& m, page_range w) {
    std::vector<run<typename Map::value_type>> out;
    for (auto r : m.runs(w)) out.push_back(r);
    return out;
}

template <class V>
std::vector<run<V>> model_runs(const std::vector<V>& model, page_range w) {
    std::vector<run<V>> out;
    for (page_index p = w.begin; p < w.end; ++p) {
        if (!out.empty() && out.back().value == model[p])
            out.back().range.end = p + 1;
        else
            out.push_back({{p, p + 1}, model[p]});
    }
    return out;
}

/// A naive coalesced std::map reference for huge sparse domains.
struct map_model {
    std::map<page_index, std::uint8_t> m;
    page_index size;
    map_model(page_index n, std::uint8_t v) : size(n) { m[0] = v; }
    std::uint8_t at(page_index p) const { return std::prev(m.upper_bound(p))->second; }
    void assign(page_range r, std::uint8_t v) {
        const bool has_after = r.end < size;
        const std::uint8_t after = has_after ? at(r.end) : 0;
        m.erase(m.lower_bound(r.begin), has_after ? m.upper_bound(r.end) : m.end());
        m[r.begin] = v;
        if (has_after) m[r.end] = after;
        for (auto it = std::next(m.begin()); it != m.end();)  // coalesce
            it = std::prev(it)->second == it->second ? m.erase(it) : std::next(it);
    }
};

} // namespace

static_assert(std::ranges::forward_range<u8map::run_view>);
static_assert(std::ranges::view<u8map::run_view>);
static_assert(std::forward_iterator<u8map::iterator>);
static_assert(ranges::forward_range<u8map::run_view>);
static_assert(ranges::viewable_range<u8map::run_view&>);  // lvalue views pipe into range-v3
static_assert(std::ranges::borrowed_range<u8map::run_view>);
static_assert(sizeof(detail::rm_leaf<std::uint8_t>) <= 256 && sizeof(detail::rm_inner) <= 256);

TEST_CASE("a new map is one run and holds no node") {
    alloc_state st;
    counted_map m(top, 1, test_allocator<std::uint8_t>(&st));
    CHECK(m.size() == top);
    CHECK(m.run_count() == 1);
    CHECK(m.memory_bytes() == 0);
    CHECK(st.calls == 0);
    CHECK(m.at(0) == 1);
    CHECK(m.at(top - 1) == 1);
    CHECK(m.all_of({0, top}, 1));
    CHECK(m.find_first_not({0, top}, 1) == no_page);
    CHECK(m.find_first_not({0, top}, 0) == 0);
    CHECK(m.count({0, top}, 1) == top);
    CHECK(m.count({5, 9}, 0) == 0);
    CHECK(all_runs(m, {0, top}) == std::vector<run<std::uint8_t>>{{{0, top}, 1}});
    CHECK(all_runs(m, {7, 9}) == std::vector<run<std::uint8_t>>{{{7, 9}, 1}});
    CHECK(m.coalesced());
    // Assigning the value it already has allocates nothing either.
    CHECK(m.assign({3, 9}, 1));
    CHECK(m.run_count() == 1);
    CHECK(m.memory_bytes() == 0 + 256);  // the one node reserved for the first change
    m.abort_assign();
    CHECK(m.memory_bytes() == 0);
    CHECK(st.live == 0);
}

TEST_CASE("assign at the boundaries of a 2^64-1 page domain") {
    u8map m(top, 0);
    REQUIRE(m.assign({0, 1}, 1));
    REQUIRE(m.assign({top - 1, top}, 2));
    CHECK(m.run_count() == 3);
    CHECK(m.at(0) == 1);
    CHECK(m.at(1) == 0);
    CHECK(m.at(top - 2) == 0);
    CHECK(m.at(top - 1) == 2);
    CHECK(all_runs(m, {0, top}) ==
          std::vector<run<std::uint8_t>>{{{0, 1}, 1}, {{1, top - 1}, 0}, {{top - 1, top}, 2}});
    CHECK(m.find_first_not({1, top}, 0) == top - 1);
    CHECK(m.find_first_not({0, top}, 1) == 1);
    CHECK(m.count({0, top}, 0) == top - 2);
    CHECK(m.all_of({top - 1, top}, 2));
    CHECK_FALSE(m.all_of({top - 2, top}, 0));
    CHECK(m.coalesced());
    REQUIRE(m.assign({1, top - 1}, 2));  // touches the right neighbour
    CHECK(all_runs(m, {0, top}) == std::vector<run<std::uint8_t>>{{{0, 1}, 1}, {{1, top}, 2}});
    REQUIRE(m.assign({0, 1}, 2));  // touches it on the left: one run again
    CHECK(m.run_count() == 1);
    CHECK(m.at(0) == 2);
    m.abort_assign();
    CHECK(m.memory_bytes() == 0);
    CHECK(m.coalesced());

    u8map one(1, 0);
    REQUIRE(one.assign({0, 1}, 3));
    CHECK(one.at(0) == 3);
    CHECK(one.run_count() == 1);
    CHECK(one.count({0, 1}, 3) == 1);
}

TEST_CASE("coalescing after every kind of assign") {
    u8map m(1000, 0);
    using R = std::vector<run<std::uint8_t>>;
    SUBCASE("inside a run splits it in three") {
        REQUIRE(m.assign({100, 200}, 1));
        CHECK(all_runs(m, {0, 1000}) == R{{{0, 100}, 0}, {{100, 200}, 1}, {{200, 1000}, 0}});
        REQUIRE(m.assign({120, 130}, 1));  // same value inside: nothing changes
        CHECK(m.run_count() == 3);
        REQUIRE(m.assign({100, 200}, 0));  // undo: both neighbours merge
        CHECK(m.run_count() == 1);
    }
    SUBCASE("prefix and suffix of a run") {
        REQUIRE(m.assign({0, 10}, 1));
        REQUIRE(m.assign({990, 1000}, 1));
        CHECK(all_runs(m, {0, 1000}) == R{{{0, 10}, 1}, {{10, 990}, 0}, {{990, 1000}, 1}});
        REQUIRE(m.assign({10, 990}, 1));
        CHECK(m.run_count() == 1);
    }
    SUBCASE("across several runs, touching neighbours on both sides") {
        for (page_index p = 100; p < 200; p += 10) REQUIRE(m.assign({p, p + 5}, std::uint8_t(1 + p % 3)));
        CHECK(m.run_count() == 21);
        REQUIRE(m.assign({50, 500}, 2));
        CHECK(all_runs(m, {0, 1000}) == R{{{0, 50}, 0}, {{50, 500}, 2}, {{500, 1000}, 0}});
        REQUIRE(m.assign({500, 1000}, 2));  // touches the left neighbour
        CHECK(all_runs(m, {0, 1000}) == R{{{0, 50}, 0}, {{50, 1000}, 2}});
        REQUIRE(m.assign({0, 50}, 2));
        CHECK(m.run_count() == 1);
    }
    SUBCASE("exactly covering one run between two equal neighbours") {
        REQUIRE(m.assign({10, 20}, 1));
        REQUIRE(m.assign({20, 30}, 2));
        REQUIRE(m.assign({30, 40}, 1));
        REQUIRE(m.assign({20, 30}, 1));
        CHECK(all_runs(m, {0, 1000}) == R{{{0, 10}, 0}, {{10, 40}, 1}, {{40, 1000}, 0}});
    }
    SUBCASE("whole domain") {
        for (page_index p = 0; p < 1000; p += 2) REQUIRE(m.assign({p, p + 1}, 1));
        CHECK(m.run_count() == 1000);
        CHECK(m.coalesced());
        REQUIRE(m.assign({0, 1000}, 3));
        CHECK(m.run_count() == 1);
        CHECK(m.at(999) == 3);
        m.abort_assign();
        CHECK(m.memory_bytes() == 0);
    }
    CHECK(m.coalesced());
}

TEST_CASE("bad ranges are refused with the caller's range in the message") {
    u8map m(0x100, 0);
    REQUIRE(m.assign({0x10, 0x20}, 1));
    u8map before(0x100, 0);
    REQUIRE(before.assign({0x10, 0x20}, 1));
    struct bad {
        page_range r;
        page_index page;
        const char* text;
    };
    for (const bad& b : {bad{{0x200, 0x100}, 0x200, "range [0x200, 0x100) is inverted"},
                         bad{{0x30, 0x30}, 0x30, "range [0x30, 0x30) is empty"},
                         bad{{0xf0, 0x101}, 0x100, "range [0xf0, 0x101) ends past the object's 0x100 pages"},
                         bad{{0, top}, 0x100, "range [0, 0xffffffffffffffff) ends past the object's 0x100 pages"}}) {
        CAPTURE(b.text);
        auto s = m.assign(b.r, 2);
        REQUIRE_FALSE(s);
        CHECK(s.error() == errc::invalid_range);
        CHECK(s.error().page() == b.page);
        CHECK(s.error().message() == b.text);
        auto t = m.prepare_assign(b.r);
        REQUIRE_FALSE(t);
        CHECK(t.error().code() == errc::invalid_range);
        CHECK(t.error().message() == b.text);
        CHECK(m == before);
        CHECK(m.coalesced());
    }
}

template <class V>
static void differential(std::uint32_t seed, page_index size, int ops, int values) {
    std::mt19937_64 rng(seed);
    range_map<V> m(size, V{0});
    std::vector<V> model(size, V{0});
    auto rnd = [&](std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng); };
    auto random_range = [&]() {
        const page_index b = rnd(size);
        std::uint64_t len;
        const auto pick = rnd(64);
        if (pick == 0)
            len = 1 + rnd(size);  // wipes many runs at once
        else if (pick < 40)
            len = 1 + rnd(4);
        else
            len = 1 + rnd(48);
        return page_range{b, std::min<page_index>(size, b + len)};
    };
    std::size_t max_runs = 0;
    for (int op = 0; op < ops; ++op) {
        const page_range r = random_range();
        const V v = V(rnd(values));
        REQUIRE(m.assign(r, v));
        std::fill(model.begin() + std::ptrdiff_t(r.begin), model.begin() + std::ptrdiff_t(r.end), v);
        REQUIRE(m.coalesced());
        max_runs = std::max(max_runs, m.run_count());
        // Every query once per step, on random pages and windows.
        const page_index p = rnd(size);
        REQUIRE(m.at(p) == model[p]);
        REQUIRE(m.at(r.begin) == v);
        REQUIRE(m.at(r.end - 1) == v);
        const page_range w = random_range();
        const V q = V(rnd(values));
        page_index first = no_page;
        std::uint64_t cnt = 0;
        for (page_index i = w.begin; i < w.end; ++i) {
            if (model[i] != q && first == no_page) first = i;
            cnt += model[i] == q;
        }
        REQUIRE(m.find_first_not(w, q) == first);
        REQUIRE(m.all_of(w, q) == (first == no_page));
        REQUIRE(m.count(w, q) == cnt);
        REQUIRE(all_runs(m, w) == model_runs(model, w));
        if (op % 512 == 0) {
            REQUIRE(all_runs(m, {0, size}) == model_runs(model, {0, size}));
            REQUIRE(m.run_count() == model_runs(model, {0, size}).size());
        }
    }
    REQUIRE(all_runs(m, {0, size}) == model_runs(model, {0, size}));
    CHECK(max_runs > size / 16);  // the tree grew several levels
}

TEST_CASE("randomised differential test against a per-page model") {
    differential<std::uint8_t>(1, 4096, 100000, 2);
    differential<std::uint32_t>(2, 4096, 20000, 5);
    differential<std::uint8_t>(3, 700, 20000, 3);
}

TEST_CASE("sparse huge domains against a std::map reference") {
    for (page_index size : {page_index{1} << 40, top}) {
        std::mt19937_64 rng(size);
        u8map m(size, 0);
        map_model ref(size, 0);
        for (int op = 0; op < 20000; ++op) {
            page_index b = rng() % size;
            if (op % 7 == 0) b = size - 1 - rng() % 3;
            if (op % 11 == 0) b = rng() % 3;
            const page_index len = op % 5 == 0 ? rng() % (size - b) + 1 : rng() % 100000 + 1;
            const page_range r{b, b + std::min(len, size - b)};
            const auto v = std::uint8_t(rng() % 3);
            REQUIRE(m.assign(r, v));
            ref.assign(r, v);
            REQUIRE(m.run_count() == ref.m.size());
            const page_index p = rng() % size;
            REQUIRE(m.at(p) == ref.at(p));
            REQUIRE(m.at(size - 1) == ref.at(size - 1));
        }
        REQUIRE(m.coalesced());
        std::vector<run<std::uint8_t>> expect;
        for (auto it = ref.m.begin(); it != ref.m.end(); ++it) {
            const auto nx = std::next(it);
            expect.push_back({{it->first, nx == ref.m.end() ? size : nx->first}, it->second});
        }
        CHECK(all_runs(m, {0, size}) == expect);
    }
}

namespace {
/// Deterministic fragmented map for the allocation tests.
void fragment(counted_map& m, int n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    for (int i = 0; i < n; ++i) {
        const page_index b = rng() % (m.size() - 64);
        REQUIRE(m.assign({b, b + 1 + rng() % 60}, std::uint8_t(rng() % 3)));
    }
}
} // namespace

TEST_CASE("out of memory at every allocation of an assign leaves the map unchanged") {
    alloc_state st;
    const test_allocator<std::uint8_t> a(&st);
    for (int runs_wanted : {0, 20, 3000, 40000}) {
        CAPTURE(runs_wanted);
        counted_map m(1u << 22, 0, a), same(1u << 22, 0, a);
        fragment(m, runs_wanted, 7);
        fragment(same, runs_wanted, 7);
        m.abort_assign();
        for (const bool via_reserve : {false, true}) {
            const std::size_t bytes = m.memory_bytes();
            int failures = 0;
            for (long k = 1;; ++k) {
                st.fail_at = st.calls + k;
                const long live = st.live;
                const page_range r{12345, 12346};  // splits a run: adds two starts
                status s = via_reserve ? m.prepare_assign(r) : m.assign(r, 2 + std::uint8_t(k % 2));
                st.fail_at = 0;
                if (s) break;
                ++failures;
                CHECK(s.error().code() == errc::out_of_memory);
                CHECK(s.error().page() == 12345);
                CHECK(std::string(s.error().message()) == "no memory for range map nodes to assign [0x3039, 0x303a)");
                CHECK(st.live == live);
                CHECK(m.memory_bytes() == bytes);
                REQUIRE(m == same);
                REQUIRE(m.coalesced());
            }
            CHECK(failures >= (runs_wanted > 1000 ? 3 : 1));  // one per tree level plus a root
            m.abort_assign();
            REQUIRE(same.assign({12345, 12346}, m.at(12345)));
            REQUIRE(m == same);
        }
    }
    CHECK(st.live == 0);
}

TEST_CASE("prepare_assign makes commit_assign allocation-free") {
    alloc_state st;
    counted_map m(1u << 20, 0, test_allocator<std::uint8_t>(&st));
    std::mt19937 rng(11);
    std::size_t peak = 0;
    for (int i = 0; i < 60000; ++i) {
        const page_index b = rng() % ((1u << 20) - 300);
        const page_range r{b, b + 1 + (i % 13 == 0 ? rng() % 300 : rng() % 4)};
        const auto v = std::uint8_t(rng() % 2);
        REQUIRE(m.prepare_assign(r));
        const long calls = st.calls;
        m.commit_assign(r, v);
        REQUIRE(st.calls == calls);
        if (i % 5 == 0) m.abort_assign();  // the next prepare_assign starts from nothing
        peak = std::max(peak, m.run_count());
    }
    CHECK(peak > 20000);
    CHECK(m.coalesced());
    m.abort_assign();
    // Memory is O(runs): at most one 256-byte node per min-filled leaf, plus inners.
    CHECK(m.memory_bytes() <= m.run_count() * 256 / detail::rm_leaf<std::uint8_t>::min_fill * 17 / 16 + 512);
    m.commit_assign({0, 1u << 20}, 1);  // whole domain needs no node
    CHECK(m.run_count() == 1);
    CHECK(m.memory_bytes() == 0);
    CHECK(st.live == 0);
}

TEST_CASE("runs() works with std::ranges and range-v3") {
    u8map m(100, 0);
    REQUIRE(m.assign({10, 20}, 1));
    REQUIRE(m.assign({30, 40}, 1));
    REQUIRE(m.assign({50, 60}, 2));
    const auto v = m.runs({15, 55});
    CHECK(std::ranges::distance(v) == 5);
    CHECK(std::ranges::count_if(v, [](const run<std::uint8_t>& r) { return r.value == 1; }) == 2);
#if !(defined(__clang__) && __clang_major__ < 15 && defined(__GLIBCXX__))
    // (clang 14 cannot instantiate libstdc++ 12's own views at all.)
    auto sizes = v | std::views::filter([](auto r) { return r.value != 0; }) |
                 std::views::transform([](auto r) { return r.range.size(); });
    std::vector<std::uint64_t> got(sizes.begin(), sizes.end());
    CHECK(got == std::vector<std::uint64_t>{5, 10, 5});
#endif
    CHECK((*std::ranges::find_if(m.runs({15, 55}), [](auto r) { return r.value == 2; })).range == page_range{50, 55});
    auto it = v.begin();
    auto copy = it;
    ++it;
    CHECK((*copy).range == page_range{15, 20});
    CHECK((*it).range == page_range{20, 30});
    CHECK(!v.empty());
    CHECK(v.front().value == 1);
    CHECK(m.runs({5, 5}).empty());

    // range-v3 pipelines
    CHECK(ranges::count_if(v, [](const run<std::uint8_t>& r) { return r.value == 0; }) == 2);
    const auto ones = v | ranges::views::filter([](auto r) { return r.value == 1; }) |
                      ranges::views::transform([](auto r) { return r.range; }) | ranges::to<std::vector>();
    CHECK(ones == std::vector<page_range>{{15, 20}, {30, 40}});
    CHECK(ranges::accumulate(v | ranges::views::transform([](auto r) { return r.range.size(); }), std::uint64_t{0}) ==
          40);
}

TEST_CASE("equality, move and run counts") {
    u8map a(1000, 0), b(1000, 0);
    CHECK(a == b);
    REQUIRE(a.assign({1, 2}, 1));
    CHECK_FALSE(a == b);
    REQUIRE(b.assign({1, 2}, 1));
    CHECK(a == b);
    CHECK_FALSE(a == u8map(999, 0));
    u8map c(std::move(a));
    CHECK(c == b);
    CHECK(c.run_count() == 3);
    CHECK(c.at(1) == 1);
    CHECK(c.coalesced());
}

namespace {
template <unsigned N>
void check_count_le(std::mt19937_64& rng) {
    const page_index top = std::numeric_limits<page_index>::max();
    for (unsigned used = 0; used <= N; ++used) {
        for (int round = 0; round < 50; ++round) {
            page_index keys[N];
            std::vector<page_index> s;
            while (s.size() < used) {
                const page_index k = round % 3 == 0 ? top - 1 - rng() % 64 : rng() % (top - 1);
                if (std::find(s.begin(), s.end(), k) == s.end()) s.push_back(k);
            }
            std::sort(s.begin(), s.end());
            for (unsigned i = 0; i < N; ++i) keys[i] = i < used ? s[i] : detail::key_pad;
            std::vector<page_index> probes = {0, 1, top - 1, top};
            for (page_index k : s) {
                probes.push_back(k);
                probes.push_back(k - 1);
                probes.push_back(k + 1);
            }
            for (int j = 0; j < 8; ++j) probes.push_back(rng());
            for (page_index p : probes) {
                const auto want = static_cast<unsigned>(std::upper_bound(keys, keys + N, p) - keys);
                REQUIRE(detail::rm_count_le<N>(keys, p) == want);
            }
        }
    }
}
} // namespace

TEST_CASE("node search counts keys <= p exactly, padding and 2^64 limits included") {
    std::mt19937_64 rng(3);
    check_count_le<detail::rm_inner::fanout - 1>(rng);
    check_count_le<detail::rm_leaf<std::uint8_t>::capacity>(rng);
    check_count_le<detail::rm_leaf<std::uint64_t>::capacity>(rng);
    check_count_le<1>(rng);
    check_count_le<2>(rng);
    check_count_le<3>(rng);
}

TEST_CASE("load builds the same tree as the assigns, and a length of 0 stops it anywhere, changing nothing and keeping no node") {
    alloc_state st;
    const test_allocator<std::uint8_t> a(&st);
    const page_index size = 1u << 20;
    counted_map src(size, 0, a);
    std::mt19937_64 rng(28);
    for (int i = 0; i < 6000; ++i) {  // thousands of runs: a tree of three levels
        const page_index b = rng() % size;
        REQUIRE(src.assign({b, std::min(size, b + 1 + rng() % 300)}, std::uint8_t(rng() % 4)));
    }
    std::vector<std::pair<page_index, std::uint8_t>> runs;
    for (auto r : src.runs({0, size})) runs.push_back({r.range.size(), r.value});
    REQUIRE(runs.size() > 2000);
    counted_map dst(size, 7, a);
    REQUIRE(dst.assign({5, 9}, 2));
    const auto before = all_runs(dst, {0, size});
    for (std::size_t stop : {std::size_t{0}, std::size_t{1}, std::size_t{400}, runs.size() / 2, runs.size() - 1}) {
        CAPTURE(stop);
        const long live = st.live;
        std::size_t i = 0;
        auto next = [&] {
            auto r = runs[i];
            if (i++ == stop) r.first = 0;
            return r;
        };
        auto s = dst.load(runs.size(), next);
        REQUIRE_FALSE(s);
        CHECK(s.error() == errc::invalid_argument);
        CHECK(i == stop + 1);  // no run read past the stop
        CHECK(st.live == live);
        CHECK(all_runs(dst, {0, size}) == before);
        CHECK(dst.coalesced());
    }
    std::size_t i = 0;
    auto one = [&] { return std::pair<page_index, std::uint8_t>{i++ == 0 ? 0 : size, 1}; };
    CHECK_FALSE(dst.load(1, one));  // one run of length 0 stops too
    CHECK(all_runs(dst, {0, size}) == before);
    i = 0;
    auto all = [&] { return runs[i++]; };
    REQUIRE(dst.load(runs.size(), all));
    CHECK(all_runs(dst, {0, size}) == all_runs(src, {0, size}));
    CHECK(dst.coalesced());
}
