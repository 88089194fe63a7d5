// guestmem-replay — replay a conversion trace (docs/TRACES.md) through
// guestmem and through the two per-page stores VMMs and KVM use today, and
// print each one's throughput and memory on the same operations.
//
//   guestmem-replay TRACE [--json]          replay a trace file
//   guestmem-replay --generate NAME FILE    write a generated trace
//                   (NAME: cvm_boot, dma_churn, virtio_mem, tib_1m_runs)
//   guestmem-replay --help | --version
// Arguments are parsed by CLI11; --json is written by nlohmann::json, so a
// trace path with quotes or backslashes comes out escaped.
//
// The peers keep only what they keep in real life:
//   xarray (KVM)  KVM's per-page memory attributes: one xarray entry per
//                 private page, stored page by page, 64-slot nodes of
//                 576 bytes (KVM_SET_MEMORY_ATTRIBUTES stores each index).
//   bitmap (QEMU) one bit per page of shared state, set and cleared a word
//                 at a time (RamBlockAttributes' bitmap).
// They track shareability only: allocate, punch, pin and unpin cost them
// nothing, and a fault is one lookup. guestmem does the whole job (folios,
// pins, mappability), so the comparison is generous to the peers.
//
// Exit status: 0, or 2 for bad usage or an unreadable trace (--help says so).
#include "trace.hpp"

#include <guestmem/core/version.hpp>
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace guestmem;
using trace::op;

// ---- guestmem, with its node memory counted --------------------------------

std::uint64_t live_bytes = 0, peak_bytes = 0;

/// std::allocator that counts the bytes it holds (the object's node allocator).
template <class T>
struct counting_allocator {
    using value_type = T;
    counting_allocator() = default;
    template <class U>
    counting_allocator(const counting_allocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        live_bytes += n * sizeof(T);
        peak_bytes = std::max(peak_bytes, live_bytes);
        return std::allocator<T>().allocate(n);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        live_bytes -= n * sizeof(T);
        std::allocator<T>().deallocate(p, n);
    }
    template <class U>
    bool operator==(const counting_allocator<U>&) const noexcept { return true; }
};

using memory = guest_memory<simulated_allocator, consumer, null_lock, counting_allocator<std::byte>>;

// ---- KVM's xarray of attributes, modelled ------------------------------------

class xarray_model {
    struct node {
        std::array<std::uintptr_t, 64> slot{};  // inner: child pointers; leaf: value entries (0 = none)
        std::uint32_t used = 0;
    };

public:
    static constexpr std::uint64_t kernel_node_bytes = 576;  // sizeof(struct xa_node) on x86-64

    explicit xarray_model(std::uint64_t pages) {
        while ((std::uint64_t{1} << (6 * height_)) < pages) ++height_;
        root_ = new_node();
    }
    ~xarray_model() { free_rec(root_, height_); }
    xarray_model(const xarray_model&) = delete;
    xarray_model& operator=(const xarray_model&) = delete;

    void store(std::uint64_t index, bool is_private) {
        node* n = root_;
        node* parents[12];
        int depth = 0;
        for (int level = height_ - 1; level > 0; --level) {
            const unsigned s = (index >> (6 * level)) & 63;
            if (n->slot[s] == 0) {
                if (!is_private) return;  // erasing an absent entry
                n->slot[s] = reinterpret_cast<std::uintptr_t>(new_node());
                ++n->used;
            }
            parents[depth++] = n;
            n = reinterpret_cast<node*>(n->slot[s]);
        }
        const unsigned s = index & 63;
        const bool had = n->slot[s] != 0;
        if (is_private && !had) {
            n->slot[s] = 1;
            ++n->used;
        } else if (!is_private && had) {
            n->slot[s] = 0;
            if (--n->used == 0 && depth > 0) {  // the xarray frees an empty node
                node* parent = parents[depth - 1];
                parent->slot[(index >> 6) & 63] = 0;
                --parent->used;
                delete n;
                --nodes_;
            }
        }
    }
    [[nodiscard]] bool is_private(std::uint64_t index) const {
        const node* n = root_;
        for (int level = height_ - 1; level > 0; --level) {
            const std::uintptr_t c = n->slot[(index >> (6 * level)) & 63];
            if (c == 0) return false;
            n = reinterpret_cast<const node*>(c);
        }
        return n->slot[index & 63] != 0;
    }
    [[nodiscard]] std::uint64_t bytes() const { return nodes_ * kernel_node_bytes; }

private:
    node* new_node() {
        ++nodes_;
        return new node;
    }
    void free_rec(node* n, int level) {
        if (level > 1)
            for (std::uintptr_t c : n->slot)
                if (c) free_rec(reinterpret_cast<node*>(c), level - 1);
        delete n;
    }
    int height_ = 1;
    node* root_ = nullptr;
    std::uint64_t nodes_ = 0;
};

// ---- QEMU's bitmap, modelled ---------------------------------------------------

class bitmap_model {
public:
    explicit bitmap_model(std::uint64_t pages) : words_((pages + 63) / 64, 0) {}
    void assign(std::uint64_t first, std::uint64_t count, bool shared) {
        std::uint64_t p = first;
        const std::uint64_t end = first + count;
        while (p < end && (p & 63)) set_bit(p++, shared);
        for (; p + 64 <= end; p += 64) words_[p / 64] = shared ? ~std::uint64_t{0} : 0;
        while (p < end) set_bit(p++, shared);
    }
    [[nodiscard]] bool shared(std::uint64_t p) const { return (words_[p / 64] >> (p & 63)) & 1; }
    [[nodiscard]] std::uint64_t bytes() const { return words_.size() * 8; }

private:
    void set_bit(std::uint64_t p, bool v) {
        if (v)
            words_[p / 64] |= std::uint64_t{1} << (p & 63);
        else
            words_[p / 64] &= ~(std::uint64_t{1} << (p & 63));
    }
    std::vector<std::uint64_t> words_;
};

// ---- replay --------------------------------------------------------------------

struct replay_result {
    const char* name;
    double seconds = 0;
    std::uint64_t bytes = 0, ok = 0, refused = 0, runs = 0, folios = 0;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

replay_result replay_guestmem(const trace::trace_file& t) {
    replay_result o{"guestmem"};
    live_bytes = peak_bytes = 0;
    simulated_allocator frames(UINT64_MAX, static_cast<folio_order>(t.max_order));
    memory mem(frames, {t.pages, t.initial_shared ? shareability::shared : shareability::guest_only,
                        static_cast<folio_order>(t.max_order)});
    const auto t0 = std::chrono::steady_clock::now();
    for (const trace::record& r : t.records) {
        const page_range range{r.first, r.first + r.count};
        bool good = true;
        switch (r.what) {
        case op::share: good = bool(mem.convert(range, shareability::shared)); break;
        case op::unshare: good = bool(mem.convert(range, shareability::guest_only)); break;
        case op::punch: good = bool(mem.punch_hole(range)); break;
        case op::allocate: good = bool(mem.allocate(range)); break;
        case op::pin: good = bool(mem.pin(range, accessor::device)); break;
        case op::unpin: good = bool(mem.unpin(range)); break;
        case op::host_fault:
            for (page_index p = range.begin; p < range.end; ++p) good = bool(mem.fault(p, shareability::shared, accessor::host)) && good;
            break;
        case op::guest_fault:
            for (page_index p = range.begin; p < range.end; ++p)
                good = bool(mem.fault(p, shareability::guest_only, accessor::hypervisor)) && good;
            break;
        }
        ++(good ? o.ok : o.refused);
    }
    o.seconds = seconds_since(t0);
    const auto s = mem.stats();
    o.bytes = live_bytes;
    o.runs = s.runs;
    o.folios = s.folios_4k + s.folios_2m + s.folios_1g;
    return o;
}

replay_result replay_xarray(const trace::trace_file& t, double& setup_seconds) {
    replay_result o{"xarray (KVM)"};
    xarray_model x(t.pages);
    const auto s0 = std::chrono::steady_clock::now();
    if (!t.initial_shared)  // a private guest starts with every page's attribute stored
        for (std::uint64_t p = 0; p < t.pages; ++p) x.store(p, true);
    setup_seconds = seconds_since(s0);
    std::uint64_t sink = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const trace::record& r : t.records) {
        switch (r.what) {
        case op::share:
        case op::unshare:
            for (std::uint64_t p = r.first; p < r.first + r.count; ++p) x.store(p, r.what == op::unshare);
            break;
        case op::host_fault:
        case op::guest_fault:
            for (std::uint64_t p = r.first; p < r.first + r.count; ++p) sink += x.is_private(p);
            break;
        default: break;
        }
        ++o.ok;
    }
    o.seconds = seconds_since(t0);
    o.bytes = x.bytes();
    o.refused = sink & 0;  // keep the lookups alive
    return o;
}

replay_result replay_bitmap(const trace::trace_file& t) {
    replay_result o{"bitmap (QEMU)"};
    bitmap_model b(t.pages);
    if (t.initial_shared) b.assign(0, t.pages, true);
    std::uint64_t sink = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const trace::record& r : t.records) {
        switch (r.what) {
        case op::share: b.assign(r.first, r.count, true); break;
        case op::unshare: b.assign(r.first, r.count, false); break;
        case op::host_fault:
        case op::guest_fault:
            for (std::uint64_t p = r.first; p < r.first + r.count; ++p) sink += b.shared(p);
            break;
        default: break;
        }
        ++o.ok;
    }
    o.seconds = seconds_since(t0);
    o.bytes = b.bytes();
    o.refused = sink & 0;
    return o;
}

constexpr const char* kHelpFooter = R"(Traces: docs/TRACES.md. --json prints one JSON object (strings escaped).

Exit status:
  0  the trace was replayed (or generated)
  2  usage error, an unknown generator, or a trace that cannot be read or
     written (the message names the byte at fault))";

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"Replay a conversion trace through guestmem, KVM's xarray and QEMU's bitmap; "
                 "print each one's throughput and memory.",
                 "guestmem-replay"};
    app.footer(kHelpFooter);
    app.set_version_flag("--version", std::string("guestmem-replay ") + guestmem::version_string);
    std::string path;
    bool json = false;
    std::vector<std::string> gen;
    std::string names;
    for (auto g : trace::generators) names += (names.empty() ? "" : ", ") + std::string(g);
    app.add_option("TRACE", path, "the trace file to replay");
    app.add_flag("--json", json, "print the results as one JSON object");
    app.add_option("--generate", gen, "write the generated trace NAME (" + names + ") to FILE")
        ->expected(2)
        ->type_name("NAME FILE")
        ->excludes("TRACE")
        ->excludes("--json");
    try {
        app.parse(argc, argv);
        if (gen.empty() && path.empty()) throw CLI::RequiredError("TRACE or --generate");
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;  // --help and --version exit 0 on stdout
    }
    if (!gen.empty()) {
        trace::trace_file t;
        if (!trace::generate(gen[0], 1, t)) {
            std::fprintf(stderr, "guestmem-replay: no generator %s (%s)\n", gen[0].c_str(), names.c_str());
            return 2;
        }
        if (!trace::write(t, gen[1].c_str())) {
            std::perror(gen[1].c_str());
            return 2;
        }
        std::printf("%s: %zu records over %" PRIu64 " pages\n", gen[1].c_str(), t.records.size(), t.pages);
        return 0;
    }
    trace::trace_file t;
    std::string why;
    if (!trace::read(path.c_str(), t, why)) {
        std::fprintf(stderr, "guestmem-replay: %s: %s\n", path.c_str(), why.c_str());
        return 2;
    }
    double xarray_setup = 0;
    const replay_result results[] = {replay_guestmem(t), replay_xarray(t, xarray_setup), replay_bitmap(t)};
    const double n = static_cast<double>(t.records.size());
    if (json) {
        using json_t = nlohmann::ordered_json;  // fields in the order written here
        json_t out = {{"trace", path}, {"pages", t.pages}, {"records", t.records.size()}, {"results", json_t::array()}};
        for (const replay_result& o : results)
            out["results"].push_back({{"name", o.name}, {"ops_per_second", std::llround(n / o.seconds)}, {"bytes", o.bytes},
                                      {"ok", o.ok}, {"refused", o.refused}, {"runs", o.runs}, {"folios", o.folios}});
        out["xarray_setup_seconds"] = std::round(xarray_setup * 1000) / 1000;
        // Invalid UTF-8 in a path is replaced, not thrown on.
        std::printf("%s\n", out.dump(-1, ' ', false, json_t::error_handler_t::replace).c_str());
        return 0;
    }
    std::printf("trace %s: %" PRIu64 " pages (%.1f GiB), %zu records\n", path.c_str(), t.pages,
                double(t.pages) / (1 << 18), t.records.size());
    std::printf("  %-14s %14s %14s %12s %10s %10s\n", "", "records/s", "bytes", "bytes/page", "runs", "folios");
    for (const replay_result& o : results) {
        std::printf("  %-14s %14.0f %14" PRIu64 " %12.4f", o.name, n / o.seconds, o.bytes, double(o.bytes) / double(t.pages));
        if (o.runs)
            std::printf(" %10" PRIu64 " %10" PRIu64 " (%" PRIu64 " refused)\n", o.runs, o.folios, o.refused);
        else
            std::printf(" %10s %10s\n", "-", "-");
    }
    if (xarray_setup > 0) std::printf("  (xarray setup, every page stored private first: %.2f s, not counted)\n", xarray_setup);
    return 0;
}
