// Benchmarks of the C ABI (libguestmem_c, issue 18) side by side with the
// C++ object it wraps, on the same workload in the same run:
//
// BM_CABI_Convert4K/<path>   path = cxx | c_abi
//   4 KiB conversions with 3 bound consumers that count what they are told,
//   as BM_Convert4K/end_to_end_3_consumers: a 16 GiB object, initially
//   shared, populated with 2 MiB folios on the simulated allocator, 4096
//   random pages made guest_only first; each iteration converts one page of
//   a random list to guest_only, the next one back (every folio the list
//   touches split beforehand: the steady state). cxx calls
//   guest_memory::convert with `consumer` subclasses; c_abi calls
//   guestmem_convert through the shared library with consumers given as C
//   function-pointer tables (each callback a call through a pointer, the
//   invalidation copied into a C struct).
// BM_CABI_FaultShared/<path>
//   One shared host fault per iteration on a random shared page of the same
//   kind of object (guest_memory::fault against guestmem_fault into a
//   guestmem_fault_result), one thread.
//
// BM_CABI_SnapshotSave/<path>
//   A full snapshot of the prepared object above (4096 guest_only pages and
//   the split folios of 65536 round-tripped ones: 8193 runs) into a buffer:
//   snapshot::save(mem, span) against guestmem_snapshot_save.
// BM_CABI_SnapshotRestore/<path>
//   Each iteration makes a fresh object of the same shape, restores that
//   snapshot into it and destroys it: guest_memory + snapshot::restore
//   against guestmem_create + guestmem_snapshot_restore + guestmem_destroy.
//
// The goal: the C ABI costs at most 10% over the C++ path (time ratio
// c_abi / cxx <= 1.10 for each).
#include <benchmark/benchmark.h>

#include <guestmem/c/guestmem.h>
#include <guestmem/guestmem.hpp>
#include <guestmem/snapshot/snapshot.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include "c_abi_support.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <span>
#include <vector>

namespace {

using namespace guestmem;

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "bench_c_abi: %s\n", what);
    std::abort();
}

constexpr page_index object_pages = 16 * 262144;  // 16 GiB
constexpr std::size_t nwork = 1u << 16;

/// Distinct random pages of [0, hi), isolated from each other (no two
/// adjacent), so every conversion of one is a real change.
std::vector<page_index> isolated_pages(std::mt19937_64& rng, page_index hi, std::size_t n,
                                       std::vector<page_index>& taken) {
    std::vector<page_index> out;
    while (out.size() < n) {
        const page_index p = 1 + rng() % (hi - 2);
        auto it = std::lower_bound(taken.begin(), taken.end(), p - 1);
        if (it != taken.end() && *it <= p + 1) continue;
        taken.insert(std::lower_bound(taken.begin(), taken.end(), p), p);
        out.push_back(p);
    }
    return out;
}

/// The pages both paths use: background guest_only pages, conversion
/// pages, and shared pages to fault.
struct workload {
    std::vector<page_index> background, work, faults;
    workload() {
        std::mt19937_64 rng(42);
        std::vector<page_index> taken;
        background = isolated_pages(rng, object_pages, 4096, taken);
        work = isolated_pages(rng, object_pages, nwork, taken);
        faults = isolated_pages(rng, object_pages, nwork, taken);
    }
};
const workload& the_workload() {
    static const workload w;
    return w;
}

// ---- the C++ path -------------------------------------------------------------

struct counting_consumer final : consumer {
    std::uint64_t prepared = 0, committed_pages = 0, aborted = 0;
    status prepare(const invalidation&) override {
        ++prepared;
        return ok();
    }
    void commit(const invalidation& inv, commit_report&) noexcept override { committed_pages += inv.pages.size(); }
    void abort(const invalidation&) noexcept override { ++aborted; }
    void memory_failure(const invalidation&) noexcept override {}
};

struct cxx_object {
    simulated_allocator frames;
    guest_memory<simulated_allocator> mem{frames, {.pages = object_pages, .initial = shareability::shared,
                                                   .max_order = order_2m}};
    std::array<counting_consumer, 3> consumers;
    std::array<binding<consumer>, 3> slots;
    cxx_object() {
        for (std::size_t i = 0; i < 3; ++i)
            if (!mem.bind(slots[i], consumers[i], {0, object_pages}, 0x100000 * (i + 1))) die("bind");
        if (!mem.allocate({0, object_pages})) die("allocate");
    }
    [[gnu::noinline]] bool convert(page_index p, shareability to) { return bool(mem.convert({p, p + 1}, to)); }
    // Not inlined, in both paths, so callgrind can count one fault alone
    // (--toggle-collect='*cxx_object::fault*' against '*c_object::fault*').
    [[gnu::noinline]] bool fault(page_index p) {
        auto r = mem.fault(p, shareability::shared, accessor::host);
        benchmark::DoNotOptimize(r);
        return bool(r);
    }
    std::uint64_t prepared() const { return consumers[0].prepared; }
};

// ---- the C path ---------------------------------------------------------------

using guestmem::bench_support::c_counts;

struct c_object {
    guestmem_memory* mem = nullptr;
    std::array<c_counts, 3> consumers;
    c_object() {
        const char* failed = nullptr;
        mem = bench_support::make_c_object(object_pages, consumers, failed);
        if (mem == nullptr) die(failed);
    }
    ~c_object() { guestmem_destroy(mem); }
    c_object(const c_object&) = delete;
    c_object& operator=(const c_object&) = delete;
    [[gnu::noinline]] bool convert(page_index p, shareability to) {
        return guestmem_convert(mem, p, p + 1, static_cast<uint32_t>(to), nullptr, nullptr) == GUESTMEM_OK;
    }
    [[gnu::noinline]] bool fault(page_index p) {
        guestmem_fault_result r;
        r.size = sizeof r;
        const bool ok = guestmem_fault(mem, p, GUESTMEM_SHARED, GUESTMEM_HOST, &r, nullptr) == GUESTMEM_OK;
        benchmark::DoNotOptimize(r);
        return ok;
    }
    std::uint64_t prepared() const { return consumers[0].prepared; }
};

/// One object per path, set up once: background pages converted, every
/// work page's folio split by a round trip. The snapshot benchmarks take
/// their own (`for_snapshots`): the conversion benchmarks move an object's
/// generation by as many conversions as they ran, which differs between
/// the two paths once repetitions interleave, and the two paths' snapshots
/// must be the same bytes.
enum class use { conversions, for_snapshots };
template <class Object, use U = use::conversions>
Object& prepared_object() {
    static std::unique_ptr<Object> o;
    if (!o) {
        o = std::make_unique<Object>();
        const workload& w = the_workload();
        for (page_index p : w.background)
            if (!o->convert(p, shareability::guest_only)) die("background conversion");
        for (page_index p : w.work)
            if (!o->convert(p, shareability::guest_only) || !o->convert(p, shareability::shared)) die("warm-up");
    }
    return *o;
}

// The timed loops are functions of their own, set-up excluded, so callgrind
// counts the steady state alone:
//   valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*timed_*'
//     guestmem_bench --benchmark_filter=BM_CABI_Convert4K/c_abi
// (instructions / iterations, the latter from the benchmark's output).
template <class Object>
[[gnu::noinline]] std::size_t timed_convert_4k(benchmark::State& state, Object& o) {
    const auto& work = the_workload().work;
    std::size_t i = 0;
    for (auto _ : state) {
        const page_index p = work[(i >> 1) & (nwork - 1)];
        if (!o.convert(p, (i & 1) ? shareability::shared : shareability::guest_only)) die("a timed conversion failed");
        ++i;
    }
    return i;
}

template <class Object>
void bm_convert_4k(benchmark::State& state) {
    Object& o = prepared_object<Object>();
    const std::uint64_t before = o.prepared();
    const std::size_t i = timed_convert_4k(state, o);
    if (i & 1) {
        const page_index p = the_workload().work[(i >> 1) & (nwork - 1)];
        if (!o.convert(p, shareability::shared)) die("restore failed");
    }
    if (o.prepared() - before < i) die("consumers were not told");
    state.SetItemsProcessed(state.iterations());
}

template <class Object>
[[gnu::noinline]] void timed_fault_shared(benchmark::State& state, Object& o) {
    const auto& faults = the_workload().faults;
    std::size_t i = 0;
    for (auto _ : state) {
        if (!o.fault(faults[i & (nwork - 1)])) die("a shared fault failed");
        ++i;
    }
}

template <class Object>
void bm_fault_shared(benchmark::State& state) {
    Object& o = prepared_object<Object>();
    timed_fault_shared(state, o);
    state.SetItemsProcessed(state.iterations());
}

// ---- snapshots ----------------------------------------------------------------

/// The snapshot of each path's prepared object, taken once.
template <class Object>
const std::vector<std::uint8_t>& saved_bytes();

template <>
const std::vector<std::uint8_t>& saved_bytes<cxx_object>() {
    static const std::vector<std::uint8_t> bytes = [] {
        const auto& mem = prepared_object<cxx_object, use::for_snapshots>().mem;
        auto n = snapshot::saved_size(mem);
        if (!n) die("saved_size");
        std::vector<std::uint8_t> b(n.value());
        if (!snapshot::save(mem, std::span<std::uint8_t>(b))) die("save");
        return b;
    }();
    return bytes;
}

template <>
const std::vector<std::uint8_t>& saved_bytes<c_object>() {
    static const std::vector<std::uint8_t> bytes = [] {
        const guestmem_memory* mem = prepared_object<c_object, use::for_snapshots>().mem;
        std::size_t n = 0;
        if (guestmem_snapshot_saved_size(mem, &n, nullptr) != GUESTMEM_OK) die("guestmem_snapshot_saved_size");
        std::vector<std::uint8_t> b(n);
        if (guestmem_snapshot_save(mem, b.data(), b.size(), nullptr, nullptr) != GUESTMEM_OK) die("guestmem_snapshot_save");
        return b;
    }();
    return bytes;
}

[[gnu::noinline]] std::size_t save_once(const cxx_object& o, std::vector<std::uint8_t>& buf) {
    auto r = snapshot::save(o.mem, std::span<std::uint8_t>(buf));
    return r ? r.value() : 0;
}
[[gnu::noinline]] std::size_t save_once(const c_object& o, std::vector<std::uint8_t>& buf) {
    std::size_t n = 0;
    return guestmem_snapshot_save(o.mem, buf.data(), buf.size(), &n, nullptr) == GUESTMEM_OK ? n : 0;
}

[[gnu::noinline]] bool restore_once(const cxx_object*, const std::vector<std::uint8_t>& bytes) {
    simulated_allocator frames;
    guest_memory<simulated_allocator> mem{frames, {.pages = object_pages, .initial = shareability::shared,
                                                   .max_order = order_2m}};
    return bool(snapshot::restore(mem, std::span<const std::uint8_t>(bytes)));
}
[[gnu::noinline]] bool restore_once(const c_object*, const std::vector<std::uint8_t>& bytes) {
    guestmem_config cfg;
    std::memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.allocator = GUESTMEM_ALLOC_SIMULATED;
    cfg.pages = object_pages;
    cfg.initial = GUESTMEM_SHARED;
    cfg.max_order = GUESTMEM_ORDER_2M;
    guestmem_memory* mem = nullptr;
    if (guestmem_create(&cfg, &mem, nullptr) != GUESTMEM_OK) return false;
    const bool ok = guestmem_snapshot_restore(mem, bytes.data(), bytes.size(), nullptr) == GUESTMEM_OK;
    guestmem_destroy(mem);
    return ok;
}

template <class Object>
[[gnu::noinline]] void timed_snapshot_save(benchmark::State& state, const Object& o, std::vector<std::uint8_t>& buf) {
    for (auto _ : state) {
        const std::size_t n = save_once(o, buf);
        if (n == 0) die("a timed save failed");
        benchmark::DoNotOptimize(buf.data());
    }
}

template <class Object>
void bm_snapshot_save(benchmark::State& state) {
    const Object& o = prepared_object<Object, use::for_snapshots>();
    const auto& expected = saved_bytes<Object>();
    std::vector<std::uint8_t> buf(expected.size());
    timed_snapshot_save(state, o, buf);
    if (buf != expected) die("the timed save wrote other bytes");
    state.SetBytesProcessed(std::int64_t(state.iterations() * expected.size()));
}

template <class Object>
[[gnu::noinline]] void timed_snapshot_restore(benchmark::State& state, const std::vector<std::uint8_t>& bytes) {
    for (auto _ : state)
        if (!restore_once(static_cast<const Object*>(nullptr), bytes)) die("a timed restore failed");
}

template <class Object>
void bm_snapshot_restore(benchmark::State& state) {
    const auto& bytes = saved_bytes<Object>();
    if (bytes != saved_bytes<cxx_object>()) die("the two paths saved different snapshots");
    timed_snapshot_restore<Object>(state, bytes);
    state.SetBytesProcessed(std::int64_t(state.iterations() * bytes.size()));
}

const int registered = [] {
    benchmark::RegisterBenchmark("BM_CABI_Convert4K/cxx", bm_convert_4k<cxx_object>);
    benchmark::RegisterBenchmark("BM_CABI_Convert4K/c_abi", bm_convert_4k<c_object>);
    benchmark::RegisterBenchmark("BM_CABI_FaultShared/cxx", bm_fault_shared<cxx_object>);
    benchmark::RegisterBenchmark("BM_CABI_FaultShared/c_abi", bm_fault_shared<c_object>);
    benchmark::RegisterBenchmark("BM_CABI_SnapshotSave/cxx", bm_snapshot_save<cxx_object>);
    benchmark::RegisterBenchmark("BM_CABI_SnapshotSave/c_abi", bm_snapshot_save<c_object>);
    benchmark::RegisterBenchmark("BM_CABI_SnapshotRestore/cxx", bm_snapshot_restore<cxx_object>);
    benchmark::RegisterBenchmark("BM_CABI_SnapshotRestore/c_abi", bm_snapshot_restore<c_object>);
    return 0;
}();

} // namespace
