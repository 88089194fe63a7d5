// Snapshot save and restore (include/guestmem/snapshot/, docs/SNAPSHOT.md)
// against the two ways a VMM dumps shareability today, at 10^3, 10^5 and
// 10^6 random runs (bench/run_shapes.hpp) over a 2^28-page (1 TiB) object
// with no folio (the runs are what the goals are about):
//
//   BM_SnapshotSave/<impl>/<runs>     one snapshot per iteration into a buffer
//   BM_SnapshotRestore/<impl>/<runs>  one snapshot read back per iteration
//
//   guestmem  snapshot::save into a caller's buffer; snapshot::restore into
//             a fresh guest_memory (constructed and destroyed outside the
//             timing), which validates everything, checksum included
//   bitmap    QEMU's approach: one bit per page, the bitmap copied out and
//             back (its state already is the bitmap, so this is a 32 MiB
//             memcpy each way, whatever the runs)
//   memcpy    (restore only) a memcpy of the guestmem snapshot's bytes: the
//             floor a restore of them could reach at memory speed
//   roaring   CRoaring's portable serialisation of the set of shared pages
//             (run containers after run_optimize): serialize into a buffer,
//             deserialize_safe back (Debian's libroaring-dev; these rows are
//             absent from a build without it: CMake says so)
//
// Counters: bytes (snapshot size), bytes_per_run, and items_per_second in
// runs per second.
#include <benchmark/benchmark.h>

#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/snapshot/snapshot.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include "run_shapes.hpp"

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#if GUESTMEM_HAVE_ROARING
#include <roaring/roaring.h>
#endif

namespace {

using namespace guestmem;
using mem_type = guest_memory<simulated_allocator, consumer, null_lock>;
constexpr page_index domain = page_index{1} << 28;

using bytes = std::vector<std::uint8_t>;

/// The object of `runs` runs, built once per run count (building 10^6 runs
/// by convert takes longer than the benchmark itself).
mem_type& object_with(std::size_t runs) {
    static std::map<std::size_t, std::unique_ptr<std::pair<simulated_allocator, std::unique_ptr<mem_type>>>> cache;
    auto& slot = cache[runs];
    if (!slot) {
        slot = std::make_unique<std::pair<simulated_allocator, std::unique_ptr<mem_type>>>();
        slot->second = std::make_unique<mem_type>(slot->first, guest_memory_config{.pages = domain, .initial = shareability::shared,
                                                                                   .max_order = order_1g});
        const auto shape = bench_support::random_run_shape(runs, domain);
        for (std::size_t i : shape.build_order)
            if (!slot->second->convert({shape.starts[i], shape.end_of(i)}, shareability::guest_only)) std::abort();
    }
    return *slot->second;
}

bytes saved(const mem_type& m) {
    bytes b(snapshot::saved_size(m).value());
    if (!snapshot::save(m, std::span<std::uint8_t>(b))) std::abort();
    return b;
}

void finish(benchmark::State& state, std::size_t runs, std::size_t size) {
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * runs));
    state.counters["bytes"] = static_cast<double>(size);
    state.counters["bytes_per_run"] = static_cast<double>(size) / static_cast<double>(runs);
}

void BM_SnapshotSave_guestmem(benchmark::State& state) {
    const std::size_t runs = static_cast<std::size_t>(state.range(0));
    const mem_type& m = object_with(runs);
    bytes b(snapshot::saved_size(m).value());
    for (auto _ : state) {
        auto r = snapshot::save(m, std::span<std::uint8_t>(b));
        benchmark::DoNotOptimize(r);
    }
    finish(state, runs, b.size());
}

void BM_SnapshotRestore_guestmem(benchmark::State& state) {
    const std::size_t runs = static_cast<std::size_t>(state.range(0));
    const bytes b = saved(object_with(runs));
    const auto cfg = snapshot::read_header(b).value().config();
    for (auto _ : state) {
        state.PauseTiming();
        simulated_allocator alloc;
        auto fresh = std::make_unique<mem_type>(alloc, cfg);
        state.ResumeTiming();
        if (!snapshot::restore(*fresh, b)) state.SkipWithError("restore failed");
        state.PauseTiming();
        fresh.reset();
        state.ResumeTiming();
    }
    finish(state, runs, b.size());
}

/// The floor: a memcpy of the snapshot's bytes (what restoring them could
/// cost at memory speed).
void BM_SnapshotRestore_memcpy(benchmark::State& state) {
    const std::size_t runs = static_cast<std::size_t>(state.range(0));
    const bytes b = saved(object_with(runs));
    bytes to(b.size());
    for (auto _ : state) {
        std::memcpy(to.data(), b.data(), b.size());
        benchmark::DoNotOptimize(to.data());
        benchmark::ClobberMemory();
    }
    finish(state, runs, b.size());
}

/// The bitmap peer's state: one bit per page, 1 = shared.
std::vector<std::uint64_t> bitmap_of(const mem_type& m) {
    std::vector<std::uint64_t> bits(domain / 64);
    const auto guard = m.lock_shared();
    for (const auto& r : m.locked(guard).shareability_map().runs({0, domain}))
        if (r.value == shareability::shared)
            for (page_index p = r.range.begin; p < r.range.end; ++p) bits[p / 64] |= std::uint64_t{1} << (p % 64);
    return bits;
}

void BM_SnapshotSave_bitmap(benchmark::State& state) {
    const std::size_t runs = static_cast<std::size_t>(state.range(0));
    const auto bits = bitmap_of(object_with(runs));
    bytes out(bits.size() * 8);
    for (auto _ : state) {
        std::memcpy(out.data(), bits.data(), out.size());
        benchmark::ClobberMemory();
    }
    finish(state, runs, out.size());
}

void BM_SnapshotRestore_bitmap(benchmark::State& state) {
    const std::size_t runs = static_cast<std::size_t>(state.range(0));
    const auto bits = bitmap_of(object_with(runs));
    bytes in(bits.size() * 8);
    std::memcpy(in.data(), bits.data(), in.size());
    std::vector<std::uint64_t> back(bits.size());
    for (auto _ : state) {
        std::memcpy(back.data(), in.data(), in.size());
        benchmark::ClobberMemory();
    }
    finish(state, runs, in.size());
}

#if GUESTMEM_HAVE_ROARING
roaring_bitmap_t* roaring_of(const mem_type& m) {
    roaring_bitmap_t* r = roaring_bitmap_create();
    const auto guard = m.lock_shared();
    for (const auto& x : m.locked(guard).shareability_map().runs({0, domain}))
        if (x.value == shareability::shared) roaring_bitmap_add_range(r, x.range.begin, x.range.end);
    roaring_bitmap_run_optimize(r);
    return r;
}

void BM_SnapshotSave_roaring(benchmark::State& state) {
    const std::size_t runs = static_cast<std::size_t>(state.range(0));
    roaring_bitmap_t* r = roaring_of(object_with(runs));
    std::vector<char> out(roaring_bitmap_portable_size_in_bytes(r));
    for (auto _ : state) benchmark::DoNotOptimize(roaring_bitmap_portable_serialize(r, out.data()));
    finish(state, runs, out.size());
    roaring_bitmap_free(r);
}

void BM_SnapshotRestore_roaring(benchmark::State& state) {
    const std::size_t runs = static_cast<std::size_t>(state.range(0));
    roaring_bitmap_t* r = roaring_of(object_with(runs));
    std::vector<char> in(roaring_bitmap_portable_size_in_bytes(r));
    roaring_bitmap_portable_serialize(r, in.data());
    roaring_bitmap_free(r);
    for (auto _ : state) {
        roaring_bitmap_t* back = roaring_bitmap_portable_deserialize_safe(in.data(), in.size());
        if (back == nullptr) state.SkipWithError("deserialize failed");
        state.PauseTiming();
        roaring_bitmap_free(back);
        state.ResumeTiming();
    }
    finish(state, runs, in.size());
}
#endif

void run_counts(benchmark::internal::Benchmark* b) {
    for (int runs : {1000, 100000, 1000000}) b->Arg(runs);
    b->Unit(benchmark::kMicrosecond);
}

} // namespace

BENCHMARK(BM_SnapshotSave_guestmem)->Name("BM_SnapshotSave/guestmem")->Apply(run_counts);
BENCHMARK(BM_SnapshotSave_bitmap)->Name("BM_SnapshotSave/bitmap")->Apply(run_counts);
BENCHMARK(BM_SnapshotRestore_guestmem)->Name("BM_SnapshotRestore/guestmem")->Apply(run_counts);
BENCHMARK(BM_SnapshotRestore_bitmap)->Name("BM_SnapshotRestore/bitmap")->Apply(run_counts);
BENCHMARK(BM_SnapshotRestore_memcpy)->Name("BM_SnapshotRestore/memcpy")->Apply(run_counts);
#if GUESTMEM_HAVE_ROARING
BENCHMARK(BM_SnapshotSave_roaring)->Name("BM_SnapshotSave/roaring")->Apply(run_counts);
BENCHMARK(BM_SnapshotRestore_roaring)->Name("BM_SnapshotRestore/roaring")->Apply(run_counts);
#endif
