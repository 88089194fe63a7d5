// examples/kvm_vmm/vmm.hpp — the VMM's side of each request: a simulated
// IOMMU whose DMA mappings pin pages, and the service of each request
// through the GPA map and the exit router (works on the real guest_memfd
// allocator and on the simulated one), with its timings and checks.
#pragma once

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <utility>
#include <cstdio>

#include <guestmem/kvm/exit_router.hpp>
#include <guestmem/kvm/gpa_map.hpp>
#include <guestmem/linux/linux.hpp>
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/testing/touch_probe.hpp>

#include "guest_abi.hpp"

namespace kvm_demo {

using namespace guestmem;

// A simulated IOMMU: a consumer bound over the guest's memory whose DMA
// mappings hold pins (unexpected references, like VFIO's). While a page is
// pinned, guestmem refuses to make it guest_only (busy, that page).
template <class Memory>
class iommu_consumer final : public consumer {
public:
    explicit iommu_consumer(Memory& mem) : mem_(mem) {}
    status map_dma(page_index p) { return mem_.pin({p, p + 1}, accessor::device); }
    status unmap_dma(page_index p) { return mem_.unpin({p, p + 1}); }
    // Nothing pinned can reach a to_guest_only commit (guestmem checks
    // references first), so the IOMMU has nothing to refuse or drop here.
    status prepare(const invalidation&) override { return ok(); }
    void commit(const invalidation&, commit_report&) noexcept override {}
    void abort(const invalidation&) noexcept override {}
    void memory_failure(const invalidation&) noexcept override {}
    std::string_view name() const noexcept override { return "iommu"; }

private:
    Memory& mem_;
};

using clock_type = std::chrono::steady_clock;
inline std::uint64_t ns_since(clock_type::time_point t0) {
    return std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count());
}

struct timings {
    std::uint64_t convert_ns = 0, convert_kernel_ns = 0, converts = 0;  // inside the router's conversions
    std::uint64_t library_ns = 0, library_kernel_ns = 0;                // every guestmem call
    std::uint64_t service_ns = 0, service_kernel_ns = 0;                // request service, with KVM_GET/SET_REGS
    // A conversion as the guest sees it: from the vCPU exit carrying the
    // request to the guest's next exit (KVM re-entered, result consumed).
    std::uint64_t round_trip_ns = 0, round_trip_library_ns = 0, round_trips = 0;

    timings operator-(const timings& o) const {
        return {convert_ns - o.convert_ns,       convert_kernel_ns - o.convert_kernel_ns, converts - o.converts,
                library_ns - o.library_ns,       library_kernel_ns - o.library_kernel_ns, service_ns - o.service_ns,
                service_kernel_ns - o.service_kernel_ns, round_trip_ns - o.round_trip_ns,
                round_trip_library_ns - o.round_trip_library_ns, round_trips - o.round_trips};
    }
};

struct checks {
    int passed = 0, failed = 0;
    void expect(bool ok, const char* what) {
        ++(ok ? passed : failed);
        std::printf("  [%s] %s\n", ok ? " ok " : "FAIL", what);
    }
};

struct reply {
    std::uint16_t result = 0, page = any_page;
};

/// The router's log sink: every refused request, one line.
inline void print_router_line(void*, std::string_view line) {
    std::printf("         %.*s\n", int(line.size()), line.data());
}

template <class Allocator>
struct vmm {
    using memory = guest_memory<Allocator>;
    using map_type = gpa_map<memory>;
    memory& mem;
    Allocator& alloc;
    host_mapping_consumer* view;  // null when simulated
    iommu_consumer<memory>& iommu;
    map_type& map;
    exit_router<memory>& router;
    timings t{};
    checks c{};
    std::uint64_t conversions_before = 0;  // stats().conversions when the last request arrived
    /// vCPU 0's identity as a reader of the GPA map: slot 2 comes and goes
    /// while it runs (hotplug.hpp), so every lookup and conversion of its
    /// requests runs in a read section of it.
    typename map_type::reader me{};
    /// Called once, after the device's DMA is done (no pin left): the VMM
    /// snapshots the object and carries on with a restored one (run_kvm).
    void (*pause)(void*) = nullptr;
    void* pause_ctx = nullptr;

    std::uint64_t kernel_now() const { return view ? view->kernel().ns() + kernel_of(alloc) : 0; }
    template <class A>
    static std::uint64_t kernel_of(const A& a) {
        if constexpr (requires { a.kernel().ns(); })
            return a.kernel().ns();
        else
            return 0;
    }

    /// Time a guestmem call; `is_convert` also books it as a conversion.
    template <class F>
    auto timed(bool is_convert, F&& f) {
        const std::uint64_t k0 = kernel_now();
        const auto t0 = clock_type::now();
        auto r = f();
        const std::uint64_t ns = ns_since(t0), k = kernel_now() - k0;
        t.library_ns += ns;
        t.library_kernel_ns += k;
        if (is_convert) {
            t.convert_ns += ns;
            t.convert_kernel_ns += k;
            ++t.converts;
        }
        return r;
    }

    static reply from(const status& s) {
        if (s) return {};
        return {code(s.error().code()), s.error().page() == no_page ? any_page : std::uint16_t(s.error().page())};
    }
    static reply from(const exit_outcome& o) {
        return {std::uint16_t(o.hypercall_ret),
                o.why || o.why.error().page() == no_page ? any_page : std::uint16_t(o.why.error().page())};
    }

    /// A hypercall or memory-fault exit: the router writes hypercall.ret
    /// itself. A memory fault it could not serve fails a check (this VMM
    /// has no better answer to it).
    reply serve_exit(kvm_run& run) {
        auto section = map.read(me);
        conversions_before = mem.stats().conversions;
        const exit_outcome o = timed(true, [&] { return router.handle(run); });
        if (o.disposition == exit_disposition::failed)
            c.expect(false, "a memory-fault exit the router could not serve (its log line says why)");
        return from(o);
    }

    /// A port I/O request (the registers of guest_abi.hpp).
    reply serve(std::uint16_t o, std::uint32_t gpa, std::uint32_t count, std::uint32_t attributes) {
        auto section = map.read(me);
        conversions_before = mem.stats().conversions;
        if (o == op_map_gpa_range)  // the same request a vmcall carries, into the same router
            return from(timed(true, [&] { return router.map_gpa_range(gpa, count, attributes); }));
        // The demo's own ops: the GPA map says which object pages they mean.
        const auto* slot = map.find(gpa);
        const std::uint64_t gfn = gpa >> page_shift;
        if (slot == nullptr || gpa % page_size != 0 || count == 0 || count > slot->frames.end - gfn)
            return {code(errc::invalid_range), std::uint16_t(gfn)};
        const page_range r{slot->object_page(gfn), slot->object_page(gfn) + count};
        auto as_gfn = [&](reply rep) {  // object page -> GFN (same slot)
            if (rep.page != any_page) rep.page = std::uint16_t(slot->frames.begin + (rep.page - slot->first));
            return rep;
        };
        switch (o) {
        case op_dma_map: return as_gfn(from(timed(false, [&] { return iommu.map_dma(r.begin); })));
        case op_dma_unmap: return as_gfn(from(timed(false, [&] { return iommu.unmap_dma(r.begin); })));
        case op_host_read:
            for (page_index p = r.begin; p < r.end; ++p) {
                // Ask guestmem first: may the host map this page?
                auto f = timed(false, [&] { return mem.fault(p, shareability::shared, accessor::host); });
                if (!f) return as_gfn({code(f.error().code()), std::uint16_t(f.error().page())});
                if (!view) continue;  // simulated: no bytes to read
                const auto* words = reinterpret_cast<const std::uint16_t*>(view->address_of(p));
                for (std::size_t i = 0; i < page_size / 2; ++i)
                    if (words[i] != pattern) return as_gfn({mismatch, std::uint16_t(p)});
            }
            return {};
        case op_host_touch: {
            // guestmem refuses the host's fault, and the view really faults.
            auto f = timed(false, [&] { return mem.fault(r.begin, shareability::shared, accessor::host); });
            const bool refused = !f && f.error().code() == errc::permission_denied;
            c.expect(refused, "guestmem refuses the host's fault on the private page (permission_denied)");
            if (view) {
                const auto how = testing::touch_in_child(view->address_of(r.begin), false);
                std::printf("         a forked child touching it through the host view: %s\n", testing::to_string(how));
                c.expect(how == testing::touch_outcome::sigsegv, "the host view really faults (child killed by SIGSEGV)");
                if (how != testing::touch_outcome::sigsegv) return {mismatch, std::uint16_t(gfn)};
            }
            return refused ? reply{} : reply{mismatch, std::uint16_t(gfn)};
        }
        default: return {code(errc::invalid_argument), any_page};
        }
    }

    /// Timings at the start of the warm loop (steady state, caches hot).
    timings at_loop{};
    bool loop_seen = false;
    void before(std::size_t i) {
        if (loop_seen || i >= steps) return;
        for (std::size_t k = 0; k < i; ++k)
            if (script[k].op == op_repeat) {
                at_loop = t;
                loop_seen = true;
            }
    }

    /// Structural checks the VMM makes after a step was served.
    void after(std::size_t i, const reply& rep) {
        if (i == step_dma_done && pause) std::exchange(pause, nullptr)(pause_ctx);
        const auto s = mem.stats();
        if (i == step_first_share) {
            std::printf("         folios now: %" PRIu64 " x 2M, %" PRIu64 " x 4K, %" PRIu64 " split\n", s.folios_2m,
                        s.folios_4k, s.split_folios);
            c.expect(s.folios_2m == 1 && s.split_folios == 1,
                     "sharing 2 pages split only the 2M folio holding them; the other stays whole");
        }
        if (i == step_busy_unshare)
            std::printf("         the guest got %u (EAGAIN: ask again), the router's reason: busy at GPA frame %#x\n",
                        rep.result, rep.page);
        if (i == step_merged) {
            std::printf("         folios now: %" PRIu64 " x 2M, %" PRIu64 " x 4K, %" PRIu64 " split\n", s.folios_2m,
                        s.folios_4k, s.split_folios);
            c.expect(s.folios_2m == 2 && s.split_folios == 0, "the whole 2M range is private again: merged back");
        }
        if (i == step_cross_slots) {
            auto section = map.read(me);
            const auto* a = map.find(0x7f000);
            const auto* b = map.find(0x80000);
            c.expect(rep.result == 0 && a && b && a->id != b->id && s.conversions == conversions_before + 1,
                     "GFNs 0x7f..0x80 lie in two memslots and were shared by one all-or-nothing conversion");
        }
    }
};

} // namespace kvm_demo
