// guestmem_hotpaths — the hot paths alone, for an instruction count under
// callgrind that is stable run to run (bench/report runs it):
//
//   valgrind --tool=callgrind --instr-atstart=no guestmem_hotpaths <path> [iterations]
//
// Setup runs uninstrumented; only the timed loop runs between
// CALLGRIND_START_INSTRUMENTATION and CALLGRIND_STOP_INSTRUMENTATION, so
// the total instruction count divided by the iterations is the cost of one
// operation (plus a few instructions of loop and operand fetch). Natively
// the macros do nothing and the program just runs the loop.
//
// Paths (same setups as bench/bench_range_map.cpp and bench_guest_memory.cpp):
//   point_query   range_map<bool>::at (the two-valued map guest_memory
//                 keeps), 10^6 random runs over 2^28 pages
//                 (bench/run_shapes.hpp, as BM_PointQuery/guestmem/1000000)
//   convert_4k    guest_memory::convert of one 4 KiB page, alternating
//                 guest_only / shared, 3 bound consumers, std::shared_mutex,
//                 16 GiB object of 2 MiB folios (already split), ~8k runs
//   convert_1g    guest_memory::convert of a uniform 1 GiB folio, alternating
//   fault         guest_memory::fault, shared, by the host, random page
//   fault_opaque_args  the same with the shareability and accessor hidden
//                 from the optimiser (as values read from an exit would be):
//                 the C++ side of the C ABI's fault comparison
//   c_convert_4k  convert_4k through the C ABI (guestmem_convert, libguestmem_c,
//                 the 3 consumers given as C callback tables)
//   c_fault       fault through the C ABI (guestmem_fault)
//   gpa_lookup    gpa_map::find of a random mapped GPA, 32 slots of 1 MiB
//                 with 1 MiB holes between them, inside a read section
//                 (entered and left around every lookup, as a vCPU thread
//                 routing one exit does)
#include <valgrind/callgrind.h>

#include <guestmem/guestmem.hpp>
#include <guestmem/kvm/gpa_map.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include "run_shapes.hpp"

#if GUESTMEM_HOTPATHS_C_ABI
#include "c_abi_support.hpp"
#endif

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string_view>
#include <vector>

namespace {

using namespace guestmem;

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "guestmem_hotpaths: %s\n", what);
    std::exit(2);
}

struct counting_consumer final : consumer {
    std::uint64_t n = 0;
    status prepare(const invalidation&) override { return ok(); }
    void commit(const invalidation& inv, commit_report&) noexcept override { n += inv.pages.size(); }
    void abort(const invalidation&) noexcept override {}
    void memory_failure(const invalidation&) noexcept override {}
};

struct wired {
    simulated_allocator frames;
    guest_memory<simulated_allocator> mem;
    std::array<counting_consumer, 3> consumers;
    std::array<binding<consumer>, 3> slots;
    wired(page_index pages, shareability initial, folio_order order)
        : mem(frames, {.pages = pages, .initial = initial, .max_order = order}) {
        for (std::size_t i = 0; i < 3; ++i)
            if (!mem.bind(slots[i], consumers[i], {0, pages}, 0x100000 * (i + 1))) die("bind");
        if (!mem.allocate({0, pages})) die("allocate");
    }
};

volatile std::uint64_t sink;

std::uint64_t point_query(std::size_t n) {
    constexpr page_index domain = page_index{1} << 28;
    constexpr std::size_t runs = 1000000;
    bench_support::run_shape shape = bench_support::random_run_shape(runs, domain);
    range_map<bool> m(domain, false);
    for (std::size_t i : shape.build_order)
        if (!m.assign({shape.starts[i], shape.end_of(i)}, true)) die("assign");
    if (m.run_count() != runs) die("runs");
    std::vector<page_index> pts(n);
    for (auto& p : pts) p = shape.rng() % domain;
    std::uint64_t sum = 0;
    CALLGRIND_START_INSTRUMENTATION;
    for (std::size_t i = 0; i < n; ++i) sum += m.at(pts[i]);
    CALLGRIND_STOP_INSTRUMENTATION;
    return sum;
}

std::uint64_t convert_4k(std::size_t n) {
    constexpr page_index pages = page_index{16} << 18;
    wired w(pages, shareability::shared, order_2m);
    std::mt19937_64 rng(42);
    for (int i = 0; i < 4096; ++i) {  // background: ~8k runs
        const page_index p = rng() % pages;
        if (!w.mem.convert({p, p + 1}, shareability::guest_only)) die("background");
    }
    std::vector<page_index> work;
    while (work.size() < 4096) {
        const page_index p = 1 + rng() % (pages - 2);
        if (w.mem.shareability_at(p - 1).value() == shareability::shared &&
            w.mem.shareability_at(p).value() == shareability::shared &&
            w.mem.shareability_at(p + 1).value() == shareability::shared)
            work.push_back(p);
    }
    std::sort(work.begin(), work.end());
    work.erase(std::unique(work.begin(), work.end()), work.end());
    std::shuffle(work.begin(), work.end(), rng);
    for (page_index p : work)  // split every folio the loop touches
        if (!w.mem.convert({p, p + 1}, shareability::guest_only) || !w.mem.convert({p, p + 1}, shareability::shared))
            die("warm-up");
    std::uint64_t ok_count = 0;
    CALLGRIND_START_INSTRUMENTATION;
    for (std::size_t i = 0; i < n; ++i) {
        const page_index p = work[(i >> 1) % work.size()];
        ok_count += bool(w.mem.convert({p, p + 1}, (i & 1) ? shareability::shared : shareability::guest_only));
    }
    CALLGRIND_STOP_INSTRUMENTATION;
    if (ok_count != n) die("a conversion failed");
    return ok_count;
}

std::uint64_t convert_1g(std::size_t n) {
    constexpr page_index g = 262144;
    simulated_allocator frames;
    guest_memory<simulated_allocator> mem(frames, {.pages = 4 * g, .initial = shareability::guest_only,
                                                   .max_order = order_1g});
    if (!mem.allocate({0, 4 * g})) die("allocate");
    std::uint64_t ok_count = 0;
    CALLGRIND_START_INSTRUMENTATION;
    for (std::size_t i = 0; i < n; ++i)
        ok_count += bool(mem.convert({g, 2 * g}, (i & 1) ? shareability::guest_only : shareability::shared));
    CALLGRIND_STOP_INSTRUMENTATION;
    if (ok_count != n) die("a conversion failed");
    return ok_count;
}

/// `v`, with the compiler made to forget it is a constant (as an argument
/// read from a vCPU exit would be).
template <class T>
T opaque(T v) {
    asm volatile("" : "+r"(v));
    return v;
}

template <bool OpaqueArgs = false>
std::uint64_t fault(std::size_t n) {
    constexpr page_index pages = page_index{4} << 18;
    wired w(pages, shareability::shared, order_2m);
    std::mt19937_64 rng(7);
    for (int i = 0; i < 4096; ++i) {  // split some folios in the upper half, as in the benchmark
        const page_index p = pages / 2 + rng() % (pages / 2);
        if (!w.mem.convert({p, p + 1}, shareability::guest_only) || !w.mem.convert({p, p + 1}, shareability::shared))
            die("warm-up");
    }
    std::vector<page_index> pts(n);
    for (auto& p : pts) p = rng() % (pages / 2);
    std::uint64_t sum = 0;
    CALLGRIND_START_INSTRUMENTATION;
    for (std::size_t i = 0; i < n; ++i) {
        auto r = OpaqueArgs ? w.mem.fault(pts[i], opaque(shareability::shared), opaque(accessor::host))
                            : w.mem.fault(pts[i], shareability::shared, accessor::host);
        sum += r ? r.value().frame : 0;
    }
    CALLGRIND_STOP_INSTRUMENTATION;
    return sum;
}

/// The lookup loop (a template so the same source also builds against a
/// gpa_map without readers, for the before/after comparison).
template <class Map>
std::uint64_t lookups(Map& map, const std::vector<std::uint64_t>& gpas) {
    std::uint64_t sum = 0;
    if constexpr (requires { typename Map::reader; }) {
        typename Map::reader me;
        if (!map.register_reader(me)) die("register_reader");
        CALLGRIND_START_INSTRUMENTATION;
        for (std::uint64_t gpa : gpas) {
            auto section = map.read(me);
            sum += map.find(gpa)->id;
        }
        CALLGRIND_STOP_INSTRUMENTATION;
    } else {
        CALLGRIND_START_INSTRUMENTATION;
        for (std::uint64_t gpa : gpas) sum += map.find(gpa)->id;
        CALLGRIND_STOP_INSTRUMENTATION;
    }
    return sum;
}

std::uint64_t gpa_lookup(std::size_t n) {
    using memory = guest_memory<simulated_allocator>;
    using map_type = gpa_map<memory>;
    simulated_allocator frames;
    memory mem(frames, {.pages = 32 * 256, .initial = shareability::shared, .max_order = order_4k});
    map_type map;
    for (std::uint32_t k = 0; k < 32; ++k)
        if (!map.add_slot(k, std::uint64_t(k) << 21, 256, mem, k * 256)) die("add_slot");
    std::mt19937_64 rng(3);
    std::vector<std::uint64_t> gpas(n);
    for (auto& g : gpas) g = (std::uint64_t(rng() % 32) << 21) + (rng() % 256) * page_size + rng() % page_size;
    return lookups(map, gpas);
}

#if GUESTMEM_HOTPATHS_C_ABI
// ---- the same two paths through the C ABI ----------------------------------

/// An object like `wired` through the C ABI: simulated allocator, 3 consumers over everything.
struct c_wired {
    guestmem_memory* mem = nullptr;
    std::array<bench_support::c_counts, 3> counts{};
    explicit c_wired(page_index pages) {
        const char* failed = nullptr;
        mem = bench_support::make_c_object(pages, counts, failed);
        if (mem == nullptr) die(failed);
    }
    ~c_wired() { guestmem_destroy(mem); }
    bool convert(page_index p, shareability to) {
        return guestmem_convert(mem, p, p + 1, static_cast<uint32_t>(to), nullptr, nullptr) == GUESTMEM_OK;
    }
    shareability at(page_index p) {
        uint32_t s = 0;
        if (guestmem_shareability_at(mem, p, &s, nullptr) != GUESTMEM_OK) die("shareability_at");
        return static_cast<shareability>(s);
    }
};

std::uint64_t c_convert_4k(std::size_t n) {
    constexpr page_index pages = page_index{16} << 18;
    c_wired w(pages);
    std::mt19937_64 rng(42);
    for (int i = 0; i < 4096; ++i) {  // background: ~8k runs, as convert_4k
        const page_index p = rng() % pages;
        if (!w.convert(p, shareability::guest_only)) die("background");
    }
    std::vector<page_index> work;
    while (work.size() < 4096) {
        const page_index p = 1 + rng() % (pages - 2);
        if (w.at(p - 1) == shareability::shared && w.at(p) == shareability::shared && w.at(p + 1) == shareability::shared)
            work.push_back(p);
    }
    std::sort(work.begin(), work.end());
    work.erase(std::unique(work.begin(), work.end()), work.end());
    std::shuffle(work.begin(), work.end(), rng);
    for (page_index p : work)
        if (!w.convert(p, shareability::guest_only) || !w.convert(p, shareability::shared)) die("warm-up");
    std::uint64_t ok_count = 0;
    CALLGRIND_START_INSTRUMENTATION;
    for (std::size_t i = 0; i < n; ++i) {
        const page_index p = work[(i >> 1) % work.size()];
        ok_count += w.convert(p, (i & 1) ? shareability::shared : shareability::guest_only);
    }
    CALLGRIND_STOP_INSTRUMENTATION;
    if (ok_count != n) die("a conversion failed");
    return ok_count;
}

std::uint64_t c_fault(std::size_t n) {
    constexpr page_index pages = page_index{4} << 18;
    c_wired w(pages);
    std::mt19937_64 rng(7);
    for (int i = 0; i < 4096; ++i) {
        const page_index p = pages / 2 + rng() % (pages / 2);
        if (!w.convert(p, shareability::guest_only) || !w.convert(p, shareability::shared)) die("warm-up");
    }
    std::vector<page_index> pts(n);
    for (auto& p : pts) p = rng() % (pages / 2);
    std::uint64_t sum = 0;
    guestmem_fault_result r;
    std::memset(&r, 0, sizeof r);
    r.size = sizeof r;
    CALLGRIND_START_INSTRUMENTATION;
    for (std::size_t i = 0; i < n; ++i)
        sum += guestmem_fault(w.mem, pts[i], GUESTMEM_SHARED, GUESTMEM_HOST, &r, nullptr) == GUESTMEM_OK ? r.frame : 0;
    CALLGRIND_STOP_INSTRUMENTATION;
    return sum;
}
#endif

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s point_query|convert_4k|convert_1g|fault|fault_opaque_args|gpa_lookup|c_convert_4k|c_fault "
                     "[iterations]\n",
                     argv[0]);
        return 2;
    }
    const std::string_view path = argv[1];
    const std::size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 100000;
    if (n == 0) die("iterations must be > 0");
    std::uint64_t r;
    if (path == "point_query")
        r = point_query(n);
    else if (path == "convert_4k")
        r = convert_4k(n);
    else if (path == "convert_1g")
        r = convert_1g(n);
    else if (path == "fault")
        r = fault(n);
    else if (path == "fault_opaque_args")
        r = fault<true>(n);
    else if (path == "gpa_lookup")
        r = gpa_lookup(n);
#if GUESTMEM_HOTPATHS_C_ABI
    else if (path == "c_convert_4k")
        r = c_convert_4k(n);
    else if (path == "c_fault")
        r = c_fault(n);
#endif
    else
        die("unknown path");
    sink = r;
    std::printf("%.*s %zu\n", int(path.size()), path.data(), n);
    return 0;
}
