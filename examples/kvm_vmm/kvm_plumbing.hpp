// examples/kvm_vmm/kvm_plumbing.hpp — the KVM side of the demo: the VM, a
// vCPU in real mode, and the probe that decides how the guest's
// MAP_GPA_RANGE requests travel (kvm_plumbing.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include <guestmem/kvm/exit_router.hpp>
#include <guestmem/linux/system.hpp>

#include "guest_abi.hpp"

namespace kvm_demo {

/// One vCPU: its fd and its mapped kvm_run.
struct vcpu {
    guestmem::unique_fd fd;
    kvm_run* run = nullptr;
    std::size_t run_size = 0;
    vcpu() = default;
    vcpu(const vcpu&) = delete;
    vcpu& operator=(const vcpu&) = delete;
    ~vcpu();
};

struct kvm_handles {
    guestmem::unique_fd kvm, vm;
};

/// Open /dev/kvm and create a default (type 0) VM; false (with why) if not possible.
bool open_vm(kvm_handles& h, const char*& why);

/// Create vCPU `id` in real mode at 0000:rip.
guestmem::status create_vcpu(const kvm_handles& h, vcpu& v, unsigned id, std::uint16_t rip);

/// How the guest's MAP_GPA_RANGE requests will travel, and the one-line reason.
struct transport_choice {
    transport how = transport::port_io;
    char why[320] = {};
};

/// Serves a KVM_EXIT_HYPERCALL during the probe (the router's handle).
using hypercall_server = guestmem::exit_outcome (*)(void* context, kvm_run& run);

/// Decide the transport: enable KVM_CAP_EXIT_HYPERCALL for MAP_GPA_RANGE
/// if KVM offers it, then run the probe code (already loaded at probe_gpa)
/// on a throwaway vCPU (id 1) under a watchdog (a periodic SIGALRM that
/// interrupts KVM_RUN, and a 500 ms deadline). Hypercall only when the vCPU
/// exited with KVM_EXIT_HYPERCALL, `serve` answered it, and the guest then
/// reported the return value on port 0x12: anything else is port I/O, with
/// what happened. Never blocks longer than the deadline.
transport_choice probe_transport(const kvm_handles& h, hypercall_server serve, void* context);

} // namespace kvm_demo
