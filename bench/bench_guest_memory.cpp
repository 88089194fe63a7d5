// Benchmarks for the guest memory object (issues 6 and 9).
//
// BM_ConvertUniform1G/<impl>
//   One conversion of a uniform 1 GiB range (262144 pages) per iteration,
//   alternating guest_only -> shared -> guest_only. The object is 4 GiB,
//   populated with four 1 GiB folios; the range is the second folio, so the
//   conversion walks real folio records (mappability moves) but needs no
//   split. No consumer is bound: the peers only store attributes.
//     guestmem         guest_memory::convert, the whole protocol
//     per_page_loop    KVM's approach (kvm_vm_set_mem_attributes): one
//                      xa_store per page into an xarray-like 64-way radix
//                      tree over the object's 2^20 indices (4 levels), each
//                      store walking from the root like xa_store does. Kind
//                      to the peer: nodes are preallocated (as after the
//                      kernel's xa_reserve pass, which is a second per-page
//                      loop not timed here), no xa_lock, no RCU, no
//                      cond_resched.
//     per_page_vector  a flat std::vector<uint8_t>, one byte per page (the
//                      cheapest per-page store there is; the compiler may
//                      turn it into a memset). Context, not a goal peer.
//
// BM_Convert4K/end_to_end_3_consumers
//   4 KiB conversions through the whole protocol with 3 bound consumers
//   (each covers the whole object and counts the pages it is told about),
//   the default lock (sharded_shared_mutex<>). 16 GiB object, initially shared,
//   populated with 2 MiB folios; 4096 random pages made guest_only first
//   (~8k runs in the map). Each iteration converts one page of a random
//   list to guest_only, the next iteration converts it back to shared.
//   The list is run through once before timing, so every folio that a
//   page of it lives in is already split: the timed loop is the steady
//   state (no split-record allocation inside it).
// BM_Convert4K/end_to_end_3_consumers_split_merge
//   The same, but initially guest_only: to shared splits the page's 2 MiB
//   folio to 4 KiB (reserving 512 records), back to guest_only re-merges
//   it (a 512-byte piece array). The worst case of a 4 KiB conversion;
//   context, not a goal.
//
// *_node_cache variants (diagnostic, not goals): the same with a node
//   allocator that recycles single freed nodes instead of calling
//   operator new(align_val_t)/delete. Since guest_memory::convert keeps the
//   range map's reserved nodes between conversions, the default path makes
//   no allocator call in the steady state; these rows show that a caching
//   allocator now adds nothing.
//
// BM_Fault/shared_lock/threads:N (N = 1, 2)
//   Shared faults from the host on random shared pages of a 4 GiB object
//   under the default std::shared_mutex while one converter thread (started
//   by thread 0 before the timed loop, stopped after it) converts pages of
//   another region at a fixed rate: one guest_only+shared pair every
//   500 us (4000 conversions/s), sleeping in between. A fixed rate, not a
//   busy loop, because the machine has 2 cores: a busy converter would
//   take a whole core from the faulting threads in the 2-thread run and
//   none in the 1-thread run, and the ratio would measure the scheduler.
//   The converter takes the lock exclusively ~4000 times a second in both
//   runs (counter conversions_per_s). Real time: items_per_second is the
//   total fault rate, faults_per_s_per_thread the per-thread rate.
// BM_Fault/sharded_lock/threads:N
//   The same with the library's sharded_shared_mutex lock policy, whose
//   readers count in their own cache line: the 1.7x goal's row.
// BM_FaultParts/<part>/threads:N
//   What bounds the fault path's scaling, measured alone on the same
//   threads: shared_mutex = lock_shared + unlock_shared of one
//   std::shared_mutex; shared_counter = one relaxed fetch_add on one
//   shared std::atomic (what a fault counter in the object would cost; the
//   object keeps none); private_work = thread-private arithmetic only, whose
//   2-thread ratio is the parallelism the machine gave this run (other
//   users share it).
//
// BM_ObjectMemory/guestmem/<runs> (runs = 1000, 100000, 1000000)
//   An object over 2^28 pages (1 TiB), not populated, with <runs> runs
//   made by convert() at random boundaries (bench/run_shapes.hpp, the same
//   shape as the range map benchmark and guestmem_hotpaths point_query).
//   Counter bytes_per_run: every byte the object holds (sizeof plus all node
//   memory, counted by the node allocator), per run; map_bytes_per_run: the
//   shareability map alone. The timed loop is an object-level point query
//   (shareability_at, which takes the shared lock).
#include <benchmark/benchmark.h>

#include <guestmem/guestmem.hpp>
#include <guestmem/testing/recording_consumer.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include "run_shapes.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace guestmem;

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "bench_guest_memory: %s\n", what);
    std::abort();
}

/// A consumer doing trivial work: counts what it is told.
struct counting_consumer final : consumer {
    std::uint64_t prepared = 0, committed_pages = 0, aborted = 0, failures = 0;
    status prepare(const invalidation&) override {
        ++prepared;
        return ok();
    }
    void commit(const invalidation& inv, commit_report&) noexcept override { committed_pages += inv.pages.size(); }
    void abort(const invalidation&) noexcept override { ++aborted; }
    void memory_failure(const invalidation&) noexcept override { ++failures; }
};

constexpr page_index gib_pages = 262144;  // 1 GiB of 4 KiB pages

/// Diagnostic node allocator: single objects freed go to a per-type free
/// list and are handed out again; arrays go to std::allocator. It shows
/// what the conversion path would cost if the range map kept its reserved
/// nodes between conversions instead of freeing them after every commit
/// (variants *_node_cache below; not the default configuration).
template <class T>
struct node_cache_allocator {
    using value_type = T;
    node_cache_allocator() = default;
    template <class U>
    node_cache_allocator(const node_cache_allocator<U>&) noexcept {}
    // Never destroyed: fixtures held in function statics free their nodes at
    // exit, after a list of this kind would be gone if it were a static
    // object (which static goes first depends on which benchmark ran first,
    // so interleaved repetitions crashed at exit).
    static std::vector<T*>& free_list() {
        static auto* l = new std::vector<T*>;
        return *l;
    }
    T* allocate(std::size_t n) {
        if (n == 1 && !free_list().empty()) {
            T* p = free_list().back();
            free_list().pop_back();
            return p;
        }
        return std::allocator<T>{}.allocate(n);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        if (n == 1 && free_list().size() < 64) {
            free_list().push_back(p);
            return;
        }
        std::allocator<T>{}.deallocate(p, n);
    }
    template <class U>
    bool operator==(const node_cache_allocator<U>&) const noexcept {
        return true;
    }
};

// ---- BM_ConvertUniform1G ----------------------------------------------------

template <class NodeAllocator = std::allocator<std::byte>>
void bm_convert_uniform_guestmem(benchmark::State& state) {
    simulated_allocator frames;
    guest_memory<simulated_allocator, consumer, sharded_shared_mutex<>, NodeAllocator> mem(frames, {.pages = 4 * gib_pages, .initial = shareability::guest_only,
                                                   .max_order = order_1g});
    if (!mem.allocate({0, 4 * gib_pages})) die("allocate failed");
    if (mem.stats().folios_1g != 4) die("expected four 1 GiB folios");
    const page_range r{gib_pages, 2 * gib_pages};
    bool to_shared = true;
    for (auto _ : state) {
        auto s = mem.convert(r, to_shared ? shareability::shared : shareability::guest_only);
        benchmark::DoNotOptimize(s);
        to_shared = !to_shared;
    }
    const auto st = mem.stats();
    if (st.split_folios != 0 || st.runs > 3) die("uniform conversion restructured the object");
    state.SetItemsProcessed(state.iterations());
    state.counters["pages_per_s"] = benchmark::Counter(double(state.iterations()) * double(gib_pages),
                                                       benchmark::Counter::kIsRate);
}

/// An xarray-like radix tree: 64 slots per node, value entries stored per
/// index (xa_mk_value: (v << 1) | 1), every store walking from the root.
class xarray_like {
    static constexpr unsigned bits = 6;
    static constexpr std::uint64_t mask = (1u << bits) - 1;
    struct node {
        std::array<std::uintptr_t, 64> slots{};  // child node pointer or value entry
    };

public:
    explicit xarray_like(std::uint64_t indices) {
        while ((std::uint64_t{1} << (bits * levels_)) < indices) ++levels_;
        root_ = make();
        for (std::uint64_t i = 0; i < indices; i += 64) reserve(i);  // xa_reserve pass, untimed
    }
    void store(std::uint64_t index, std::uint8_t v) noexcept {
        node* n = root_;
        for (unsigned shift = bits * (levels_ - 1); shift > 0; shift -= bits)
            n = reinterpret_cast<node*>(n->slots[(index >> shift) & mask]);
        n->slots[index & mask] = (std::uintptr_t{v} << 1) | 1;
    }
    [[nodiscard]] std::uint8_t load(std::uint64_t index) const noexcept {
        const node* n = root_;
        for (unsigned shift = bits * (levels_ - 1); shift > 0; shift -= bits)
            n = reinterpret_cast<const node*>(n->slots[(index >> shift) & mask]);
        return std::uint8_t(n->slots[index & mask] >> 1);
    }

private:
    node* make() { return &pool_.emplace_back(); }
    void reserve(std::uint64_t index) {
        node* n = root_;
        for (unsigned shift = bits * (levels_ - 1); shift > 0; shift -= bits) {
            auto& slot = n->slots[(index >> shift) & mask];
            if (slot == 0) slot = reinterpret_cast<std::uintptr_t>(make());
            n = reinterpret_cast<node*>(slot);
        }
    }
    unsigned levels_ = 1;
    std::deque<node> pool_;  // stable addresses
    node* root_ = nullptr;
};

void bm_convert_uniform_per_page_loop(benchmark::State& state) {
    xarray_like xa(4 * gib_pages);
    std::uint8_t v = 1;
    for (auto _ : state) {
        for (page_index p = gib_pages; p < 2 * gib_pages; ++p) xa.store(p, v);
        benchmark::ClobberMemory();
        v ^= 1;
    }
    if (xa.load(gib_pages + 12345) != (v ^ 1) || xa.load(3) != 0) die("xarray-like peer stored the wrong values");
    state.SetItemsProcessed(state.iterations());
    state.counters["pages_per_s"] = benchmark::Counter(double(state.iterations()) * double(gib_pages),
                                                       benchmark::Counter::kIsRate);
}

void bm_convert_uniform_per_page_vector(benchmark::State& state) {
    std::vector<std::uint8_t> attrs(4 * gib_pages, 0);
    std::uint8_t v = 1;
    for (auto _ : state) {
        for (page_index p = gib_pages; p < 2 * gib_pages; ++p) attrs[p] = v;
        benchmark::ClobberMemory();
        v ^= 1;
    }
    benchmark::DoNotOptimize(attrs.data());
    state.SetItemsProcessed(state.iterations());
    state.counters["pages_per_s"] = benchmark::Counter(double(state.iterations()) * double(gib_pages),
                                                       benchmark::Counter::kIsRate);
}

// ---- BM_Convert4K -------------------------------------------------------------

template <class Lock = sharded_shared_mutex<>, class NodeAllocator = std::allocator<std::byte>>
struct wired_object {
    using memory = guest_memory<simulated_allocator, consumer, Lock, NodeAllocator>;
    simulated_allocator frames;
    memory mem;
    std::array<counting_consumer, 3> consumers;
    std::array<binding<consumer>, 3> slots;

    wired_object(page_index pages, shareability initial, folio_order order)
        : mem(frames, {.pages = pages, .initial = initial, .max_order = order}) {
        for (std::size_t i = 0; i < consumers.size(); ++i)
            if (!mem.bind(slots[i], consumers[i], {0, pages}, 0x100000 * (i + 1))) die("bind failed");
        if (!mem.allocate({0, pages})) die("allocate failed");
    }
};

/// Distinct random pages of [lo, hi), none in `exclude` (sorted).
std::vector<page_index> random_pages(std::mt19937_64& rng, page_index lo, page_index hi, std::size_t n,
                                     const std::vector<page_index>& exclude = {}) {
    std::vector<page_index> out;
    std::vector<page_index> seen = exclude;
    while (out.size() < n) {
        const page_index p = lo + rng() % (hi - lo);
        auto it = std::lower_bound(seen.begin(), seen.end(), p);
        if (it != seen.end() && *it == p) continue;
        seen.insert(it, p);
        out.push_back(p);
    }
    return out;
}

/// The 4 KiB conversion workload, built once per initial state and shared
/// by every call of its benchmark (the timed loop restores it).
template <class NodeAllocator>
struct convert_4k_fixture {
    static constexpr page_index pages = 16 * gib_pages;  // 16 GiB
    static constexpr std::size_t nwork = 1u << 16;
    shareability initial, other;
    wired_object<sharded_shared_mutex<>, NodeAllocator> w;
    std::vector<page_index> work;

    explicit convert_4k_fixture(shareability init)
        : initial(init),
          other(init == shareability::shared ? shareability::guest_only : shareability::shared),
          w(pages, init, order_2m) {
        std::mt19937_64 rng(42);
        std::vector<page_index> background;
        if (initial == shareability::shared) background = random_pages(rng, 0, pages, 4096);
        // Isolated pages only: a work page never touches a background page,
        // so every conversion is a real change (never a no-op).
        std::vector<page_index> exclude;
        for (page_index p : background)
            for (page_index q : {p - 1, p, p + 1}) exclude.push_back(q);
        std::sort(exclude.begin(), exclude.end());
        exclude.erase(std::unique(exclude.begin(), exclude.end()), exclude.end());
        work = random_pages(rng, 0, pages, nwork, exclude);
        for (page_index p : background)
            if (!w.mem.convert({p, p + 1}, other)) die("background conversion failed");
        if (initial == shareability::shared)
            for (page_index p : work)  // warm up: split every folio the timed loop touches
                if (!w.mem.convert({p, p + 1}, other) || !w.mem.convert({p, p + 1}, initial)) die("warm-up failed");
    }
};

template <class NodeAllocator = std::allocator<std::byte>>
void bm_convert_4k(benchmark::State& state, shareability initial) {
    using fixture = convert_4k_fixture<NodeAllocator>;
    static std::map<shareability, std::unique_ptr<fixture>> cache;
    auto& slot = cache[initial];
    if (!slot) slot = std::make_unique<fixture>(initial);
    fixture& fx = *slot;
    auto& w = fx.w;
    const auto& work = fx.work;
    const shareability other = fx.other;
    constexpr std::size_t nwork = fixture::nwork;
    const auto before = w.mem.stats();
    std::size_t i = 0;
    for (auto _ : state) {
        const page_index p = work[(i >> 1) & (nwork - 1)];
        auto s = w.mem.convert({p, p + 1}, (i & 1) ? initial : other);
        benchmark::DoNotOptimize(s);
        ++i;
    }
    if (i & 1) {
        const page_index p = work[(i >> 1) & (nwork - 1)];
        if (!w.mem.convert({p, p + 1}, initial)) die("restore failed");
    }
    const auto after = w.mem.stats();
    if (after.conversions - before.conversions != i + (i & 1)) die("a timed conversion did not change anything");
    if (w.consumers[0].prepared < i) die("consumers were not notified");
    state.SetItemsProcessed(state.iterations());
    state.counters["runs_in_map"] = double(after.runs);
    state.counters["split_folios"] = double(after.split_folios);
}

// ---- BM_Fault -----------------------------------------------------------------

constexpr page_index fault_pages = 4 * gib_pages;
constexpr page_index fault_region = 2 * gib_pages;  // faults below, converter above
constexpr std::size_t nfault = 1u << 20;
constexpr std::chrono::microseconds converter_period{500};

template <class Lock>
struct fault_fixture {
    wired_object<Lock> w{fault_pages, shareability::shared, order_2m};
    std::vector<page_index> faults;
    std::vector<page_index> converted;
    fault_fixture() {
        std::mt19937_64 rng(7);
        for (std::size_t i = 0; i < nfault; ++i) faults.push_back(rng() % fault_region);
        converted = random_pages(rng, fault_region, fault_pages, 4096);
        for (page_index p : converted)  // pre-split their folios
            if (!w.mem.convert({p, p + 1}, shareability::guest_only) || !w.mem.convert({p, p + 1}, shareability::shared))
                die("fault fixture warm-up failed");
    }
};

template <class Lock>
fault_fixture<Lock>& get_fault_fixture() {
    static fault_fixture<Lock> f;  // built once, by whichever thread comes first
    return f;
}

/// One converter thread at a fixed rate.
template <class Lock>
class converter {
public:
    explicit converter(fault_fixture<Lock>& f) : f_(f), t_([this] { run(); }) {}
    ~converter() { stop(); }
    void stop() {
        if (t_.joinable()) {
            stop_.store(true, std::memory_order_relaxed);
            t_.join();
        }
    }
    [[nodiscard]] std::uint64_t conversions() const noexcept { return n_.load(std::memory_order_relaxed); }

private:
    void run() {
        std::size_t i = 0;
        auto next = std::chrono::steady_clock::now();
        while (!stop_.load(std::memory_order_relaxed)) {
            const page_index p = f_.converted[i++ % f_.converted.size()];
            if (!f_.w.mem.convert({p, p + 1}, shareability::guest_only) ||
                !f_.w.mem.convert({p, p + 1}, shareability::shared))
                die("converter failed");
            n_.fetch_add(2, std::memory_order_relaxed);
            next += converter_period;
            std::this_thread::sleep_until(next);
        }
    }
    fault_fixture<Lock>& f_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> n_{0};
    std::thread t_;
};

template <class Lock>
void bm_fault(benchmark::State& state) {
    auto& f = get_fault_fixture<Lock>();
    std::unique_ptr<converter<Lock>> conv;
    std::chrono::steady_clock::time_point t0;
    if (state.thread_index() == 0) {
        conv = std::make_unique<converter<Lock>>(f);
        t0 = std::chrono::steady_clock::now();
    }
    std::size_t i = std::size_t(state.thread_index()) * (nfault / 2);
    std::uint64_t refused = 0;
    for (auto _ : state) {
        auto r = f.w.mem.fault(f.faults[i++ & (nfault - 1)], shareability::shared, accessor::host);
        refused += !r;
        benchmark::DoNotOptimize(r);
    }
    if (refused != 0) die("a shared fault on a shared page was refused");
    state.SetItemsProcessed(state.iterations());
    state.counters["faults_per_s_per_thread"] = benchmark::Counter(
        double(state.iterations()), benchmark::Counter::kIsRate | benchmark::Counter::kAvgThreads);
    if (conv) {
        conv->stop();
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        state.counters["conversions_per_s"] = double(conv->conversions()) / secs;
    }
}

std::shared_mutex parts_mutex;
alignas(64) std::atomic<std::uint64_t> parts_counter{0};

void bm_fault_part_shared_mutex(benchmark::State& state) {
    for (auto _ : state) {
        parts_mutex.lock_shared();
        parts_mutex.unlock_shared();
    }
    state.SetItemsProcessed(state.iterations());
}

/// Thread-private work only (a private xorshift): its 2-thread / 1-thread
/// ratio is the parallelism the machine actually gave this run.
void bm_fault_part_private_work(benchmark::State& state) {
    std::uint64_t x = 88172645463325252ull + std::uint64_t(state.thread_index());
    for (auto _ : state) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        benchmark::DoNotOptimize(x);
    }
    state.SetItemsProcessed(state.iterations());
}

void bm_fault_part_shared_counter(benchmark::State& state) {
    for (auto _ : state) parts_counter.fetch_add(1, std::memory_order_relaxed);
    state.SetItemsProcessed(state.iterations());
}

// ---- BM_ObjectMemory ------------------------------------------------------------

/// A std::allocator that counts the bytes held (per object, through a
/// pointer shared by every rebound copy).
template <class T>
struct counting_allocator {
    using value_type = T;
    std::int64_t* held;
    explicit counting_allocator(std::int64_t* h) noexcept : held(h) {}
    template <class U>
    counting_allocator(const counting_allocator<U>& o) noexcept : held(o.held) {}
    T* allocate(std::size_t n) {
        *held += std::int64_t(n * sizeof(T));
        return std::allocator<T>{}.allocate(n);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        *held -= std::int64_t(n * sizeof(T));
        std::allocator<T>{}.deallocate(p, n);
    }
    template <class U>
    bool operator==(const counting_allocator<U>& o) const noexcept {
        return held == o.held;
    }
};

struct memory_object {
    static constexpr page_index domain = page_index{1} << 28;
    using memory = guest_memory<simulated_allocator, consumer, std::shared_mutex, counting_allocator<std::byte>>;
    std::int64_t held = 0;
    simulated_allocator frames;
    memory mem{frames, {.pages = domain, .initial = shareability::guest_only}, counting_allocator<std::byte>(&held)};
    std::vector<page_index> points;

    explicit memory_object(std::size_t runs) {
        bench_support::run_shape shape = bench_support::random_run_shape(runs, domain);
        for (std::size_t i : shape.build_order)
            if (!mem.convert({shape.starts[i], shape.end_of(i)}, shareability::shared))
                die("memory object conversion failed");
        if (mem.stats().runs != runs) die("memory object does not hold the expected runs");
        for (std::size_t i = 0; i < (1u << 20); ++i) points.push_back(shape.rng() % domain);
    }
};

void bm_object_memory(benchmark::State& state, std::size_t runs) {
    static std::map<std::size_t, std::unique_ptr<memory_object>> cache;
    auto& slot = cache[runs];
    if (!slot) slot = std::make_unique<memory_object>(runs);
    memory_object& o = *slot;
    std::size_t i = 0;
    unsigned sum = 0;
    for (auto _ : state) {
        sum += unsigned(o.mem.shareability_at(o.points[i++ & ((1u << 20) - 1)]).value());
        benchmark::DoNotOptimize(sum);
    }
    state.counters["bytes_per_run"] = (double(sizeof(o.mem)) + double(o.held)) / double(runs);
    state.counters["map_bytes_per_run"] = double(o.mem.locked(o.mem.lock_shared()).shareability_map().memory_bytes()) / double(runs);
}

[[maybe_unused]] const bool registered = [] {
    benchmark::RegisterBenchmark("BM_ConvertUniform1G/guestmem", bm_convert_uniform_guestmem<>);
    benchmark::RegisterBenchmark("BM_ConvertUniform1G/per_page_loop", bm_convert_uniform_per_page_loop);
    benchmark::RegisterBenchmark("BM_ConvertUniform1G/per_page_vector", bm_convert_uniform_per_page_vector);
    benchmark::RegisterBenchmark("BM_ConvertUniform1G/guestmem_node_cache",
                                 bm_convert_uniform_guestmem<node_cache_allocator<std::byte>>);
    benchmark::RegisterBenchmark("BM_Convert4K/end_to_end_3_consumers", bm_convert_4k<>, shareability::shared);
    benchmark::RegisterBenchmark("BM_Convert4K/end_to_end_3_consumers_split_merge", bm_convert_4k<>,
                                 shareability::guest_only);
    benchmark::RegisterBenchmark("BM_Convert4K/end_to_end_3_consumers_node_cache",
                                 bm_convert_4k<node_cache_allocator<std::byte>>, shareability::shared);
    benchmark::RegisterBenchmark("BM_Fault/shared_lock", bm_fault<std::shared_mutex>)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark("BM_Fault/sharded_lock", bm_fault<sharded_shared_mutex<>>)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark("BM_FaultParts/shared_mutex", bm_fault_part_shared_mutex)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark("BM_FaultParts/private_work", bm_fault_part_private_work)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark("BM_FaultParts/shared_counter", bm_fault_part_shared_counter)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    for (std::size_t runs : {std::size_t{1000}, std::size_t{100000}, std::size_t{1000000}})
        benchmark::RegisterBenchmark(("BM_ObjectMemory/guestmem/" + std::to_string(runs)).c_str(), bm_object_memory,
                                     runs);
    return true;
}();

} // namespace
