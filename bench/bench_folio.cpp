// Folio restructuring cost: splitting a huge folio for one shared page and
// merging it back when the page is private again, per level:
//   BM_FolioSplitMerge/1g_to_2m   a 2M-aligned window shared: 1G -> 512 x 2M
//   BM_FolioSplitMerge/1g_to_4k   one page shared: 1G -> 2M, one 2M -> 4K
//   BM_FolioSplitMerge/2m_to_4k   one page shared in a 2M folio
// Counters split_ns and merge_ns time each half (plan + prepare + commit,
// then merge_eligible) on its own.
#include <benchmark/benchmark.h>

#include <guestmem/folio/folio_table.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <chrono>

namespace {

using namespace guestmem;

/// The plan of converting r to `to`, as the guest memory object makes it.
template <class Table, class Map>
typename Table::plan plan_of(const Table& t, page_range r, shareability to, const Map& m) {
    typename Table::plan p{r, to};
    t.plan_into(p, m);
    return p;
}

/// O(1) share map: everything guest_only except one shared window.
struct window_map {
    page_range shared{0, 0};
    shareability at(page_index p) const { return shared.contains(p) ? shareability::shared : shareability::guest_only; }
    bool all_of(page_range r, shareability s) const {
        if (s == shareability::guest_only) return !r.overlaps(shared);
        return shared.contains(r);
    }
};

void split_merge(benchmark::State& state, folio_order top, page_range window, unsigned expect_splits) {
    simulated_allocator alloc;
    folio_table<simulated_allocator> table(alloc, pages_in(top), top);
    window_map map;
    if (!table.populate({0, pages_in(top)}, map)) {
        state.SkipWithError("populate failed");
        return;
    }
    using clock = std::chrono::steady_clock;
    clock::duration split_time{}, merge_time{};
    for (auto _ : state) {
        const auto t0 = clock::now();
        auto p = plan_of(table, window, shareability::shared, map);
        if (p.splits() != expect_splits || !table.prepare_conversion(p)) {
            state.SkipWithError("plan or prepare failed");
            return;
        }
        table.commit_conversion(p, true);
        map.shared = window;
        const auto t1 = clock::now();
        auto q = plan_of(table, window, shareability::guest_only, map);
        if (!table.prepare_conversion(q)) {
            state.SkipWithError("plan or prepare failed");
            return;
        }
        table.commit_conversion(q, true);
        map.shared = {0, 0};
        table.merge_eligible(window, map);
        const auto t2 = clock::now();
        split_time += t1 - t0;
        merge_time += t2 - t1;
        benchmark::DoNotOptimize(table.lookup(window.begin));
    }
    if (table.stats().split_folios != 0) state.SkipWithError("not merged back");
    const double n = static_cast<double>(state.iterations());
    state.counters["split_ns"] = std::chrono::duration<double, std::nano>(split_time).count() / n;
    state.counters["merge_ns"] = std::chrono::duration<double, std::nano>(merge_time).count() / n;
    state.counters["splits"] = expect_splits;
}

void BM_FolioSplitMerge_1g_to_2m(benchmark::State& s) { split_merge(s, order_1g, {512, 1024}, 1); }
void BM_FolioSplitMerge_1g_to_4k(benchmark::State& s) { split_merge(s, order_1g, {5, 6}, 2); }
void BM_FolioSplitMerge_2m_to_4k(benchmark::State& s) { split_merge(s, order_2m, {5, 6}, 1); }

} // namespace

BENCHMARK(BM_FolioSplitMerge_1g_to_2m)->Name("BM_FolioSplitMerge/1g_to_2m");
BENCHMARK(BM_FolioSplitMerge_1g_to_4k)->Name("BM_FolioSplitMerge/1g_to_4k");
BENCHMARK(BM_FolioSplitMerge_2m_to_4k)->Name("BM_FolioSplitMerge/2m_to_4k");
