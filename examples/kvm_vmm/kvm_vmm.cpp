// examples/kvm_vmm/kvm_vmm.cpp — a small VMM that runs a real KVM guest whose
// memory is owned by guestmem, and serves the guest's conversion requests
// through guestmem's GPA map and exit router. Read it in this order:
//
//   guest_abi.hpp     the request registers, the two transports, the script
//   guest_code.cpp    the guest: the script assembled into real-mode code
//   vmm.hpp           the VMM's service of each request (router, IOMMU pins,
//                     host reads and touches) and its checks
//   kvm_plumbing.cpp  VM, vCPUs, and the probe that picks the transport
//   hotplug.hpp       vCPU 1 and memslot 2, added and removed while it runs
//   converter_vcpu.hpp  vCPU 1's thread (real and simulated)
//   this file         the run loop, the mid-run snapshot, the report, main
//
// The guest's memory is a 4 MiB KVM guest_memfd (two 2 MiB folios), one
// guestmem object, reached by the guest through two memslots: GPA [0, 512K)
// = object pages [0, 0x80) and GPA [512K, 1M) = pages [0x80, 0x100), so a
// request over GFNs 0x7f..0x80 crosses slots (and is still one conversion).
// The host sees the object through a view that guestmem's host-mapping
// consumer mprotects: a default KVM VM does not enforce private memory
// itself (KVM_CAP_MEMORY_ATTRIBUTES is 0), so the library does it in
// userspace. KVM itself (the hypervisor, which may touch private pages)
// reads guest memory through the allocator's own mapping, given to the
// memslots as userspace_addr.
//
// The guest asks for conversions with KVM_HC_MAP_GPA_RANGE's registers. The
// VMM probes first whether a `vmcall` reaches it as KVM_EXIT_HYPERCALL and
// completes; where it does not, the same (gpa, pages, attributes) travel by
// port I/O into the same router. The demo says which in one line, and why.
// Halfway through, between two requests, the VMM saves the ownership state,
// builds a new object from the snapshot and the guest runs on to the end on
// it (midrun_snapshot, below), with vCPU 1 parked meanwhile.
// Two vCPUs run at once: vCPU 0 runs the script; vCPU 1 shares and unshares
// a page of a second object (a 2 MiB guest_memfd) through memslot 2, which
// a third thread adds to and removes from KVM and the GPA map, over and
// over, while both run (hotplug.hpp). Every exit is routed in a read
// section of the GPA map, so removing the slot waits for vCPU 1's request
// in flight and none reaches the object afterwards.
// Without /dev/kvm or guest_memfd support (or with --simulated) the same
// script runs on the simulated allocator, and the demo says so. Exit
// status: 0 when every check passed.
#include <sys/ioctl.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <thread>
#include <tuple>
#include <vector>

#include <guestmem/kvm/attributes_consumer.hpp>
#include <guestmem/snapshot/snapshot.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include "converter_vcpu.hpp"
#include "guest_abi.hpp"
#include "hotplug.hpp"
#include "kvm_plumbing.hpp"
#include "vmm.hpp"

using namespace guestmem;
using namespace kvm_demo;

namespace {

constexpr std::uint64_t guest_bytes = 4 << 20;  // two 2 MiB folios
constexpr page_index slot_pages = 128;          // each memslot: 512 KiB; real mode reaches the first 1 MiB
constexpr std::uint64_t slot1_gpa = slot_pages * page_size;
constexpr std::uint64_t hot_bytes = 2 << 20;  // the second object: one 2 MiB folio, memslot 2 maps its first pages
constexpr int hotplug_round_count = 4;
// This demo's guest code reads EAGAIN in hypercall.ret and says so on port
// 0x13, so the routers hand transient refusals to the guest (guest_retries).
// A VMM whose kernel or guest does not know EAGAIN keeps the default,
// vmm_retries (README, "Wiring guestmem into a KVM VMM").
constexpr router_options demo_routing{.retries = retry_policy::guest_retries};

/// Add the two slots to the GPA map (ids 0 and 1, as the KVM memslots).
template <class Map, class Memory>
bool add_slots(Map& map, Memory& mem) {
    return map.add_slot(0, 0, slot_pages, mem, 0) && map.add_slot(1, slot1_gpa, slot_pages, mem, slot_pages);
}

/// The guest's report of one step (port 0x11).
void guest_report(const kvm_run& run, bool* reported, int& reports, int& guest_failures) {
    std::uint16_t v16 = 0;
    std::memcpy(&v16, reinterpret_cast<const char*>(&run) + run.io.data_offset, sizeof v16);
    const unsigned i = v16 & 0xff;
    const bool pass = (v16 >> 8) == 1;
    if (!pass || i >= steps || !reported[i])
        std::printf("  [%s] guest: step %u: %s\n", pass ? " ok " : "FAIL", i, i < steps ? script[i].what : "?");
    if (i < steps) reported[i] = true;
    ++reports;
    if (!pass) ++guest_failures;
}

void print_unexpected(const kvm_run& run) {
    std::printf("unexpected exit %u", run.exit_reason);
    if (run.exit_reason == KVM_EXIT_INTERNAL_ERROR) {
        std::printf(" (suberror %u", run.internal.suberror);
        for (unsigned k = 0; k < run.internal.ndata && k < 4; ++k)
            std::printf(", %#llx", static_cast<unsigned long long>(run.internal.data[k]));
        std::printf(")");
    }
    std::printf("\n");
}

/// Run the vCPU until the guest halts, serving its requests: hypercall
/// exits through the router, port I/O requests through vmm::serve.
template <class Allocator>
void run_guest(const vcpu& cpu, vmm<Allocator>& v, int& reports, int& guest_failures) {
    bool reported[64] = {};
    bool in_flight = false;  // a conversion whose round trip ends at the next exit
    clock_type::time_point conv_exit{};
    std::uint64_t conv_library = 0;
    for (int exits = 0; exits < 100000; ++exits) {
        // A memory-fault exit comes back as -1/EFAULT with exit_reason set: the router takes it.
        const int rc = ::ioctl(cpu.fd.get(), KVM_RUN, 0);
        kvm_run& run = *cpu.run;
        if (rc != 0 && errno == EINTR) continue;
        if (rc != 0 && run.exit_reason != KVM_EXIT_MEMORY_FAULT) {
            std::printf("KVM_RUN failed: %s\n", std::strerror(errno));
            ++guest_failures;
            return;
        }
        const auto exit_time = clock_type::now();
        if (in_flight) {
            v.t.round_trip_ns +=
                std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(exit_time - conv_exit).count());
            v.t.round_trip_library_ns += conv_library;
            ++v.t.round_trips;
            in_flight = false;
        }
        if (run.exit_reason == KVM_EXIT_HLT) return;
        if (run.exit_reason == KVM_EXIT_IO && run.io.direction == KVM_EXIT_IO_OUT && run.io.port == port_report) {
            guest_report(run, reported, reports, guest_failures);
            continue;
        }
        const bool by_hypercall = run.exit_reason == KVM_EXIT_HYPERCALL || run.exit_reason == KVM_EXIT_MEMORY_FAULT;
        const bool by_port = run.exit_reason == KVM_EXIT_IO && run.io.direction == KVM_EXIT_IO_OUT &&
                             run.io.port == port_request;
        if (!by_hypercall && !by_port) {
            print_unexpected(run);
            ++guest_failures;
            return;
        }
        // A request: read the registers, serve, write the result back (a
        // hypercall's result goes back through hypercall.ret instead).
        const auto t0 = clock_type::now();
        const timings before = v.t;
        kvm_regs regs{};
        const int got = ::ioctl(cpu.fd.get(), KVM_GET_REGS, &regs);
        std::uint64_t ioctl_ns = ns_since(t0);
        if (got != 0) {
            std::printf("KVM_GET_REGS failed: %s\n", std::strerror(errno));
            ++guest_failures;
            return;
        }
        const std::size_t i = regs.rsi & 0xffff;
        v.before(i);
        reply rep;
        int set = 0;
        if (by_hypercall) {
            rep = v.serve_exit(run);
        } else {
            rep = v.serve(std::uint16_t(regs.rax), std::uint32_t(regs.rbx), std::uint32_t(regs.rcx),
                          std::uint32_t(regs.rdx));
            regs.rax = rep.result;
            regs.rbx = rep.page;
            const auto k1 = clock_type::now();
            set = ::ioctl(cpu.fd.get(), KVM_SET_REGS, &regs);
            ioctl_ns += ns_since(k1);
        }
        const timings d = v.t - before;
        v.t.service_ns += ns_since(t0);
        v.t.service_kernel_ns += ioctl_ns + d.library_kernel_ns;
        if (set != 0) {
            std::printf("KVM_SET_REGS failed: %s\n", std::strerror(errno));
            ++guest_failures;
            return;
        }
        if (d.converts) {
            in_flight = true;
            conv_exit = exit_time;
            conv_library = d.convert_ns - d.convert_kernel_ns;
        }
        if (i < steps) v.after(i, rep);
    }
    std::printf("the guest did not halt\n");
    ++guest_failures;
}

/// Library vs kernel time for one set of timings.
void print_times(const char* title, const timings& t) {
    auto us = [](std::uint64_t ns) { return double(ns) / 1000.0; };
    auto pct = [](std::uint64_t part, std::uint64_t whole) { return whole ? 100.0 * double(part) / double(whole) : 0.0; };
    const std::uint64_t lib = t.convert_ns - t.convert_kernel_ns;
    std::printf("  %s: %" PRIu64 " conversion requests\n", title, t.converts);
    std::printf("    inside the router:      %8.1f us = library %7.1f us (%4.1f%%) + kernel mprotect %7.1f us\n",
                us(t.convert_ns), us(lib), pct(lib, t.convert_ns), us(t.convert_kernel_ns));
    if (t.round_trips)
        std::printf("    as the guest sees them: %8.1f us exit-to-next-exit, of which library %7.1f us (%4.1f%%)\n",
                    us(t.round_trip_ns), us(t.round_trip_library_ns), pct(t.round_trip_library_ns, t.round_trip_ns));
}

template <class Allocator>
int report(vmm<Allocator>& v, std::uint64_t splits, std::uint64_t merges) {
    const auto s = v.mem.stats();
    const timings& t = v.t;
    const timings warm = t - v.at_loop;
    auto pct = [](std::uint64_t part, std::uint64_t whole) { return whole ? 100.0 * double(part) / double(whole) : 0.0; };
    std::printf("\nreport\n");
    std::printf("  conversions %" PRIu64 " (no-op %" PRIu64 "), splits %" PRIu64 ", merges %" PRIu64 ", vetoes %" PRIu64
                ", busy %" PRIu64 ", rollbacks %" PRIu64 "\n",
                s.conversions, s.noop_conversions, splits, merges, s.vetoes, s.busy_refusals, s.rollbacks);
    print_times("all guest requests (the first few run cold: the library's code and data touched for the first time)", t);
    print_times("warm loop (steady state)", warm);
    if (t.service_ns) {
        const std::uint64_t lib = t.library_ns - t.library_kernel_ns;
        std::printf("  request service (all requests, exit to re-entry): %.1f us = library %.1f us (%.1f%%) + kernel "
                    "(KVM_GET/SET_REGS, mprotect) %.1f us + VMM (forked touch probe, checks) %.1f us\n",
                    double(t.service_ns) / 1000, double(lib) / 1000, pct(lib, t.service_ns),
                    double(t.service_kernel_ns) / 1000,
                    double(t.service_ns - std::min(t.service_ns, lib + t.service_kernel_ns)) / 1000);
    }
    if (warm.round_trips) {
        const double share = pct(warm.round_trip_library_ns, warm.round_trip_ns);
        std::printf("  goal (library <= 5%% of conversion wall time, guest-visible, steady state): %s (%.1f%%)\n",
                    share <= 5.0 ? "met" : "NOT met", share);
    }
    std::printf("  checks: %d passed, %d failed\n", v.c.passed, v.c.failed);
    return v.c.failed == 0 ? 0 : 1;
}


/// The hot-plug part's checks (after every thread joined).
template <class Allocator>
void check_hotplug(vmm<Allocator>& v, const converter_tally& t, const hot_watch& w, int rounds_done,
                   const char* why, bool converter_ok, std::uint64_t quiet_lines) {
    std::printf("\nvCPU 1 and memslot 2\n");
    std::printf("  %d of %d hot-plug rounds%s%s\n", rounds_done, hotplug_round_count, why ? ": stopped because " : "",
                why ? why : "");
    std::printf("  vCPU 1's requests: %" PRIu64 " converted, %" PRIu64 " EINVAL (slot 2 out; %" PRIu64
                " router lines counted, not printed), %" PRIu64 " EAGAIN, %" PRIu64 " other; %" PRIu64
                " served while vCPU 0 ran its script\n",
                t.converted.load(), t.refused_einval.load(), quiet_lines, t.refused_eagain.load(), t.unexpected.load(),
                t.while_vcpu0_ran.load());
    std::printf("  the second object saw %" PRIu64 " conversion rounds, %" PRIu64 " of them after a remove_slot returned\n",
                w.rounds.load(), w.after_removal.load());
    v.c.expect(converter_ok, "vCPU 1 ran until the VMM stopped it");
    v.c.expect(rounds_done == hotplug_round_count,
               "memslot 2 was added to the GPA map (and to KVM, on a real guest) and removed again 4 times while the vCPUs ran");
    v.c.expect(t.converted > 0 && t.refused_einval > 0 && t.refused_eagain == 0 && t.unexpected == 0,
               "vCPU 1's requests converted while slot 2 was in the map and got EINVAL while it was out, nothing else");
    v.c.expect(w.after_removal == 0 && w.rounds > 0 && w.rounds <= t.converted,
               "no conversion reached the second object after remove_slot returned");
}

/// The same script without KVM: requests are served in order, the
/// guest's own expectations are checked here instead of by the guest.
int run_simulated(const char* why) {
    std::printf("kvm_vmm: no real KVM guest (%s); running the same script on the simulated allocator\n", why);
    std::printf("kvm_vmm: transport: direct calls of the router's handle_map_gpa_range (no guest to carry them)\n");
    using memory = guest_memory<simulated_allocator>;
    simulated_allocator alloc(UINT64_MAX, order_2m);
    memory mem(alloc, {guest_bytes / page_size, shareability::shared, order_2m});
    iommu_consumer<memory> iommu(mem);
    binding<> iommu_slot;
    gpa_map<memory> map;
    exit_router<memory> router(map, print_router_line, nullptr, demo_routing);
    vmm<simulated_allocator> v{mem, alloc, nullptr, iommu, map, router};
    v.c.expect(bool(map.register_reader(v.me)), "vCPU 0 registered as a reader of the GPA map");
    v.c.expect(bool(mem.allocate({0, mem.size()})), "allocate the 4 MiB as two 2M folios");
    v.c.expect(bool(mem.bind(iommu_slot, iommu, {0, 2 * slot_pages}, 0x80000)), "bind the IOMMU at IOVA 0x80000000");
    v.c.expect(add_slots(map, mem), "GPA map: slot 0 = GPA [0, 512K) -> pages [0, 0x80), slot 1 = [512K, 1M) -> [0x80, 0x100)");
    v.c.expect(bool(mem.convert({0, mem.size()}, shareability::guest_only)), "hand all memory to the guest (private)");

    // vCPU 1 (a thread) and the hot-plug thread, over a second object.
    simulated_allocator alloc2(UINT64_MAX, order_2m);  // its own frames: the report's splits stay the script's
    memory hot(alloc2, {hot_bytes / page_size, shareability::guest_only, order_2m});
    hot_watch watch;
    binding<> watch_slot;
    v.c.expect(hot.allocate({0, hot.size()}) && hot.bind(watch_slot, watch, {0, hot.size()}, 0),
               "a second object (2 MiB, private) for memslot 2, watched by a consumer");
    std::atomic<std::uint64_t> quiet_lines{0};
    exit_router<memory> router1(map, count_router_line, &quiet_lines, demo_routing);
    converter_tally tally;
    std::atomic<bool> stop{false};
    bool converter_ok = false;
    int rounds_done = 0;
    const char* why_stopped = nullptr;
    std::thread vcpu1([&] { converter_ok = simulate_converter(map, router1, stop, tally); });
    std::thread plugger([&] {
        rounds_done = hotplug_rounds(map, hot, watch, tally, hotplug_round_count, [] { return true; },
                                     [] { return true; }, why_stopped);
    });
    wait_past(tally.requests, 0);  // let vCPU 1 get going before the (fast) script runs
    tally.vcpu0_running.store(true);

    v.t = {};
    std::size_t loop = 0, rounds = 0;
    bool seen[64] = {};
    for (std::size_t i = 0; i < steps; ++i) {
        const step& s = script[i];
        if (s.op == op_write_pattern) {
            std::printf("  [skip] step %zu: %s (no real memory to write)\n", i, s.what);
            continue;
        }
        if (s.op == op_repeat) {
            loop = i;
            rounds = s.count;
            continue;
        }
        if (s.op == op_end_repeat) {
            if (--rounds) i = loop;
            continue;
        }
        v.before(i);
        const reply rep = v.serve(s.op, s.gpa, s.count, s.attributes);
        const bool pass = rep.result == s.expect && (s.expect_page == any_page || rep.page == s.expect_page);
        if (!pass || !seen[i]) std::printf("  [%s] step %zu: %s\n", pass ? " ok " : "FAIL", i, s.what);
        seen[i] = true;
        ++(pass ? v.c.passed : v.c.failed);
        v.after(i, rep);
        std::this_thread::sleep_for(std::chrono::microseconds(100));  // the guest would run between requests
    }
    tally.vcpu0_running.store(false);
    plugger.join();
    stop.store(true);
    vcpu1.join();
    check_hotplug(v, tally, watch, rounds_done, why_stopped, converter_ok, quiet_lines.load());
    return report(v, alloc.splits(), alloc.merges());
}

// ============================================================================
// Mid-run snapshot: what a VMM that upgrades itself in place does. Between
// two guest requests (no pin held: the device's DMA is done) it saves the
// ownership state, copies the guest's memory out (the snapshot holds no
// contents), lets the old object go, builds a new one in its place from the
// snapshot, copies the memory back and binds its consumers again. The guest
// never notices; the rest of its script runs on the new object. The new
// object is constructed where the old one was, so the GPA map, the router
// and the IOMMU, which refer to it, refer to the new one.
// ============================================================================
struct midrun_snapshot {
    using memory = guest_memory<guest_memfd_allocator>;
    memory& mem;
    guest_memfd_allocator& alloc;
    host_mapping_consumer& view;
    binding<>& view_slot;
    iommu_consumer<memory>& iommu;
    binding<>& iommu_slot;
    checks& c;
    kvm_attributes_consumer* attributes = nullptr;  // bound where the VM keeps attributes
    binding<>* attr_slots = nullptr;               // its two bindings (one per memslot)
    pause_gate* others = nullptr;                  // vCPU 1: its code lives in this object's memory

    static void take(void* self) {
        auto& s = *static_cast<midrun_snapshot*>(self);
        if (s.others == nullptr) return s.run();
        const bool parked = s.others->pause_others();
        s.c.expect(parked, "vCPU 1 parked (out of KVM_RUN) for the snapshot");
        if (parked) s.run();
        s.others->resume_others();
    }

    void run() {
        std::printf("         mid-run snapshot, between two guest requests:\n");
        auto size = snapshot::saved_size(mem);
        std::vector<std::uint8_t> bytes(size ? size.value() : 0);
        auto saved = size ? snapshot::save(mem, std::span<std::uint8_t>(bytes)) : result<std::size_t>(size.error());
        if (!saved) {
            std::printf("         save: %s\n", saved.error().message().data());
            c.expect(false, "save the ownership state mid-run");
            return;
        }
        bytes.resize(saved.value());
        auto runs_of = [](const memory& m) {
            std::vector<std::tuple<page_index, page_index, shareability>> out;
            const auto guard = m.lock_shared();
            auto view = m.locked(guard).runs({0, m.size()});
            if (view)
                for (const auto& r : view.value()) out.emplace_back(r.range.begin, r.range.end, r.value);
            return out;
        };
        const auto runs_before = runs_of(mem);
        const auto stats_before = mem.stats();
        std::vector<std::uint8_t> contents(alloc.bytes());
        std::memcpy(contents.data(), alloc.data(), contents.size());  // the hypervisor's path reads private pages too
        std::printf("           saved %zu bytes (%" PRIu64 " runs, %" PRIu64 " folios); guest memory copied out\n",
                    bytes.size(), stats_before.runs, stats_before.folios_2m + stats_before.folios_4k);

        const auto hdr = snapshot::read_header(bytes);
        std::destroy_at(&mem);  // consumers released, folios punched out of the guest_memfd
        std::construct_at(&mem, alloc, hdr ? hdr.value().config() : guest_memory_config{alloc.pages()});
        auto restored = hdr ? snapshot::restore(mem, bytes) : status(hdr.error());
        if (!restored) std::printf("           restore: %s\n", restored.error().message().data());
        std::memcpy(alloc.data(), contents.data(), contents.size());
        const auto runs_after = runs_of(mem);
        const auto s = mem.stats();
        c.expect(bool(restored) && runs_after == runs_before && s.folios_2m == stats_before.folios_2m &&
                     s.folios_4k == stats_before.folios_4k && s.split_folios == stats_before.split_folios,
                 "a new object restored from the snapshot: same runs, same folios and splits");
        c.expect(mem.bind(view_slot, view, {0, mem.size()}, view.target_base(0)) &&
                     mem.bind(iommu_slot, iommu, {0, 2 * slot_pages}, 0x80000),
                 "the host view and the IOMMU bound to the new object; the guest continues on it");
        if (attributes)
            c.expect(attributes->attach(mem, attr_slots[0], {0, slot_pages}, 0) &&
                         attributes->attach(mem, attr_slots[1], {slot_pages, 2 * slot_pages}, slot1_gpa / page_size),
                     "KVM's attributes consumer bound to the new object");
    }
};

int run_kvm(kvm_handles& h, guest_memfd_allocator& alloc) {
    std::printf("kvm_vmm: real KVM guest, memory = 4 MiB guest_memfd (flags MMAP | INIT_SHARED)\n");
    // The object: 1024 pages, initially shared (INIT_SHARED), in 2M folios.
    using memory = guest_memory<guest_memfd_allocator>;
    memory mem(alloc, {alloc.pages(), shareability::shared, order_2m});
    iommu_consumer<memory> iommu(mem);
    host_mapping_consumer view;
    binding<> view_slot, iommu_slot;
    gpa_map<memory> map;
    exit_router<memory> router(map, print_router_line, nullptr, demo_routing);
    vmm<guest_memfd_allocator> v{mem, alloc, &view, iommu, map, router};
    v.c.expect(bool(map.register_reader(v.me)), "vCPU 0 registered as a reader of the GPA map");
    midrun_snapshot snap{mem, alloc, view, view_slot, iommu, iommu_slot, v.c};
    v.pause = &midrun_snapshot::take;
    v.pause_ctx = &snap;

    v.c.expect(bool(mem.allocate({0, mem.size()})), "allocate the 4 MiB as two 2M folios (fallocate)");
    if (auto o = alloc.real_order(0))
        std::printf("         the kernel really backs them with order-%u folios (guestmem tracks order 9)\n",
                    unsigned{o.value()});
    v.c.expect(bool(view.map(alloc.fd(), 0, alloc.bytes())), "map the host view of the guest_memfd");
    v.c.expect(bool(mem.bind(view_slot, view, {0, mem.size()}, view.target_base(0))), "bind the host view");
    v.c.expect(bool(mem.bind(iommu_slot, iommu, {0, 2 * slot_pages}, 0x80000)), "bind the IOMMU at IOVA 0x80000000");
    auto slot0 = memslot::bind(h.vm.get(), {0, 0, alloc.fd(), {0, slot_pages}, alloc.data()});
    if (!slot0) std::printf("         %s\n", slot0.error().message().data());
    auto slot1 = memslot::bind(h.vm.get(), {1, slot1_gpa, alloc.fd(), {slot_pages, 2 * slot_pages},
                                            alloc.data() + slot1_gpa});
    if (!slot1) std::printf("         %s\n", slot1.error().message().data());
    v.c.expect(slot0 && slot1 && add_slots(map, mem),
               "memslots 0 and 1: GPA [0, 512K) -> pages [0, 0x80), GPA [512K, 1M) -> pages [0x80, 0x100), "
               "and the same two slots in the GPA map");

    // KVM's own private/shared attributes: kept in step by a consumer that
    // prepares last, where the VM type has them. A default VM has none: the
    // consumer says so at bind time, and the host view above polices the
    // private pages instead.
    kvm_attributes_consumer attributes(attributes_target::vm, h.vm.get());
    binding<> attr_slots[2];
    auto attr = attributes.attach(mem, attr_slots[0], {0, slot_pages}, 0);
    if (attr) {
        v.c.expect(bool(attributes.attach(mem, attr_slots[1], {slot_pages, 2 * slot_pages}, slot1_gpa / page_size)),
                   "KVM memory attributes kept in step over both memslots (an irrevocable binding)");
        snap.attributes = &attributes;
        snap.attr_slots = attr_slots;
    } else {
        std::printf("kvm_vmm: KVM memory attributes: not used: %s\n", attr.error().message().data());
        v.c.expect(attr.error().code() == errc::not_supported, "the attributes consumer says not_supported at bind time");
    }

    // Which transport? The probe asks, by vmcall, to make its own page
    // private; it runs before anything else, while all memory is shared.
    const std::vector<std::uint8_t> probe = assemble_probe();
    std::memcpy(view.address_of(probe_gpa / page_size), probe.data(), probe.size());
    auto serve = [](void* r, kvm_run& run) { return static_cast<exit_router<memory>*>(r)->handle(run); };
    const transport_choice choice = probe_transport(h, serve, &router);
    std::printf("kvm_vmm: transport: %s, because %s\n",
                choice.how == transport::hypercall ? "vmcall KVM_HC_MAP_GPA_RANGE (KVM_EXIT_HYPERCALL)"
                                                   : "port I/O 0x10 carrying MAP_GPA_RANGE's (gpa, pages, attributes)",
                choice.why);

    // Load the guest while its memory is still shared, then hand it all over.
    const std::vector<std::uint8_t> code = assemble_guest(choice.how);
    std::memcpy(view.address_of(code_gpa / page_size), code.data(), code.size());
    std::printf("         guest code: %zu bytes at %#x\n", code.size(), code_gpa);
    const std::vector<std::uint8_t> code1 = assemble_converter(choice.how);
    std::memcpy(view.address_of(converter_code_gpa / page_size), code1.data(), code1.size());
    std::printf("         vCPU 1's code: %zu bytes at %#x\n", code1.size(), converter_code_gpa);
    v.c.expect(bool(mem.convert({0, mem.size()}, shareability::guest_only)), "hand all memory to the guest (private)");
    v.c.expect(testing::touch_in_child(view.address_of(1), false) == testing::touch_outcome::sigsegv,
               "the host can no longer read the guest's code page");
    v.t = {};  // measure the guest's requests only

    vcpu cpu, cpu1;
    if (auto s = create_vcpu(h, cpu, 0, code_gpa); !s) {
        std::printf("  %s\n", s.error().message().data());
        ++v.c.failed;
        return report(v, alloc.splits(), alloc.merges());
    }

    // vCPU 1 and memslot 2 over a second guest_memfd object (hotplug.hpp).
    auto alloc2 = guest_memfd_allocator::create(h.vm.get(), hot_bytes);
    if (!alloc2) {
        std::printf("  %s\n", alloc2.error().message().data());
        ++v.c.failed;
        return report(v, alloc.splits(), alloc.merges());
    }
    memory hot(alloc2.value(), {alloc2.value().pages(), shareability::shared, order_2m});
    hot_watch watch;
    binding<> watch_slot;
    v.c.expect(hot.allocate({0, hot.size()}) && hot.convert({0, hot.size()}, shareability::guest_only) &&
                   hot.bind(watch_slot, watch, {0, hot.size()}, 0),
               "a second object (2 MiB guest_memfd, private) for memslot 2, watched by a consumer");
    if (auto s = create_vcpu(h, cpu1, 2, converter_code_gpa); !s) {  // id 1 was the probe's
        std::printf("  %s\n", s.error().message().data());
        ++v.c.failed;
        return report(v, alloc.splits(), alloc.merges());
    }
    std::atomic<std::uint64_t> quiet_lines{0};
    exit_router<memory> router1(map, count_router_line, &quiet_lines, demo_routing);
    converter_tally tally;
    pause_gate gate;
    snap.others = &gate;
    memslot hot_kvm;
    auto plug = [&] {
        auto m = memslot::bind(h.vm.get(), {hot_slot_id, hot_gpa, alloc2.value().fd(), {0, hot_pages},
                                            alloc2.value().data()});
        if (!m) std::printf("         %s\n", m.error().message().data());
        if (!m) return false;
        hot_kvm = std::move(m.value());
        return true;
    };
    auto unplug = [&] { return bool(hot_kvm.unbind()); };
    bool converter_ok = false;
    int rounds_done = 0;
    const char* why_stopped = nullptr;
    std::thread vcpu1([&] { converter_ok = run_converter(cpu1, map, router1, gate, tally); });
    std::thread plugger([&] {
        rounds_done = hotplug_rounds(map, hot, watch, tally, hotplug_round_count, plug, unplug, why_stopped);
    });

    int reports = 0, guest_failures = 0;
    tally.vcpu0_running.store(true);
    run_guest(cpu, v, reports, guest_failures);
    tally.vcpu0_running.store(false);
    plugger.join();
    // Stop vCPU 1: the word it polls, written through the hypervisor's mapping.
    __atomic_store_n(reinterpret_cast<std::uint16_t*>(alloc.data() + stop_gpa), std::uint16_t{1}, __ATOMIC_RELEASE);
    vcpu1.join();
    check_hotplug(v, tally, watch, rounds_done, why_stopped, converter_ok, quiet_lines.load());
    int expected_reports = 0, repeat = 1;
    for (std::size_t k = 0; k < steps; ++k) {
        const step& s = script[k];
        if (s.op == op_repeat) repeat = int(s.count);
        else if (s.op == op_end_repeat) repeat = 1;
        else if (s.op != op_write_pattern) expected_reports += repeat;
    }
    v.c.expect(guest_failures == 0 && reports == expected_reports, "the guest ran its whole script and halted");
    return report(v, alloc.splits(), alloc.merges());
}

} // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "--simulated") == 0) return run_simulated("--simulated given");
    kvm_handles h;
    const char* why = nullptr;
    if (!open_vm(h, why)) return run_simulated(why);
    auto alloc = guest_memfd_allocator::create(h.vm.get(), guest_bytes);
    if (!alloc) {
        std::printf("kvm_vmm: %s\n", alloc.error().message().data());
        if (alloc.error().code() == errc::not_supported) return run_simulated("no usable guest_memfd");
        return 1;
    }
    return run_kvm(h, alloc.value());
}
