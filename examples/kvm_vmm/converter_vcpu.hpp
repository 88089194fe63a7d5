// examples/kvm_vmm/converter_vcpu.hpp — vCPU 1's thread (hotplug.hpp says
// what it is for): on the real guest, a KVM_RUN loop serving its
// MAP_GPA_RANGE requests (vmcall exits or port I/O) through the router,
// each exit in a read section of the GPA map; in the simulated run, the
// same requests as direct calls.
#pragma once

#include <sys/ioctl.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "hotplug.hpp"
#include "kvm_plumbing.hpp"

namespace kvm_demo {

/// Run vCPU 1 until its guest halts (the VMM set the stop word) or fails;
/// false (with a line printed) on a failure.
template <class Map, class Router>
bool run_converter(const vcpu& cpu, Map& map, Router& router, pause_gate& gate, converter_tally& tally) {
    typename Map::reader me;  // this vCPU thread's identity as a reader of the map
    if (!map.register_reader(me)) {
        std::printf("  vCPU 1: could not register as a reader of the GPA map\n");
        gate.finished();
        return false;
    }
    bool ok = true;
    for (int exits = 0;; ++exits) {
        if (exits > 10'000'000) {
            std::printf("  vCPU 1: did not halt\n");
            ok = false;
            break;
        }
        gate.park_if_requested();
        const int rc = ::ioctl(cpu.fd.get(), KVM_RUN, 0);
        kvm_run& run = *cpu.run;
        if (rc != 0 && errno == EINTR) continue;
        if (rc != 0) {
            std::printf("  vCPU 1: KVM_RUN failed: %s\n", std::strerror(errno));
            ok = false;
            break;
        }
        if (run.exit_reason == KVM_EXIT_HLT) break;
        if (run.exit_reason == KVM_EXIT_HYPERCALL) {
            auto section = map.read(me);  // slot 2 may come and go: route inside a read section
            (void)router.handle(run);     // the guest reports hypercall.ret on port 0x13
            continue;
        }
        if (run.exit_reason == KVM_EXIT_IO && run.io.direction == KVM_EXIT_IO_OUT && run.io.port == port_tally) {
            std::uint16_t ax = 0;
            std::memcpy(&ax, reinterpret_cast<const char*>(&run) + run.io.data_offset, sizeof ax);
            tally.count(ax);
            continue;
        }
        if (run.exit_reason == KVM_EXIT_IO && run.io.direction == KVM_EXIT_IO_OUT && run.io.port == port_request) {
            kvm_regs regs{};
            if (::ioctl(cpu.fd.get(), KVM_GET_REGS, &regs) != 0) {
                ok = false;
                break;
            }
            {
                auto section = map.read(me);
                regs.rax = router.handle_map_gpa_range(regs.rbx & 0xffffffff, regs.rcx & 0xffffffff,
                                                       regs.rdx & 0xffffffff);
            }
            if (::ioctl(cpu.fd.get(), KVM_SET_REGS, &regs) != 0) {
                ok = false;
                break;
            }
            continue;
        }
        std::printf("  vCPU 1: unexpected exit %u\n", run.exit_reason);
        ok = false;
        break;
    }
    gate.finished();
    return ok;
}

/// The simulated vCPU 1: the same two requests, directly, until `stop`.
template <class Map, class Router>
bool simulate_converter(Map& map, Router& router, const std::atomic<bool>& stop, converter_tally& tally) {
    typename Map::reader me;
    if (!map.register_reader(me)) return false;
    while (!stop.load()) {
        for (std::uint32_t attributes : {to_shared, to_private}) {
            std::uint64_t ret;
            {
                auto section = map.read(me);
                ret = router.handle_map_gpa_range(hot_gpa, 1, attributes);
            }
            tally.count(ret);
        }
        std::this_thread::yield();
    }
    return true;
}

} // namespace kvm_demo
