// examples/kvm_vmm/kvm_plumbing.cpp — VM and vCPU creation, and the probe
// of the hypercall transport (see kvm_plumbing.hpp).
#include "kvm_plumbing.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>

using namespace guestmem;

namespace kvm_demo {

vcpu::~vcpu() {
    if (run) ::munmap(run, run_size);
}

bool open_vm(kvm_handles& h, const char*& why) {
    h.kvm = unique_fd{::open("/dev/kvm", O_RDWR | O_CLOEXEC)};
    if (!h.kvm) return why = "cannot open /dev/kvm", false;
    h.vm = unique_fd{::ioctl(h.kvm.get(), KVM_CREATE_VM, 0)};
    if (!h.vm) return why = "KVM_CREATE_VM failed", false;
    (void)::ioctl(h.vm.get(), KVM_SET_TSS_ADDR, 0xfffbd000UL);  // needed by real mode on some Intel hosts
    return true;
}

status create_vcpu(const kvm_handles& h, vcpu& v, unsigned id, std::uint16_t rip) {
    v.fd = unique_fd{::ioctl(h.vm.get(), KVM_CREATE_VCPU, id)};
    if (!v.fd) return errno_error(errno, no_page, "KVM_CREATE_VCPU failed");
    const int size = ::ioctl(h.kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size <= 0) return errno_error(errno, no_page, "KVM_GET_VCPU_MMAP_SIZE failed");
    void* run = ::mmap(nullptr, std::size_t(size), PROT_READ | PROT_WRITE, MAP_SHARED, v.fd.get(), 0);
    if (run == MAP_FAILED) return errno_error(errno, no_page, "mmap of kvm_run failed");
    v.run = static_cast<kvm_run*>(run);
    v.run_size = std::size_t(size);
    kvm_sregs sregs{};
    if (::ioctl(v.fd.get(), KVM_GET_SREGS, &sregs) != 0) return errno_error(errno, no_page, "KVM_GET_SREGS failed");
    for (kvm_segment* seg : {&sregs.cs, &sregs.ds, &sregs.es, &sregs.ss}) seg->base = seg->selector = 0;
    if (::ioctl(v.fd.get(), KVM_SET_SREGS, &sregs) != 0) return errno_error(errno, no_page, "KVM_SET_SREGS failed");
    kvm_regs regs{};
    regs.rip = rip;
    regs.rflags = 0x2;
    if (::ioctl(v.fd.get(), KVM_SET_REGS, &regs) != 0) return errno_error(errno, no_page, "KVM_SET_REGS failed");
    return ok();
}

namespace {

extern "C" void on_watchdog(int) {}  // only there so SIGALRM interrupts KVM_RUN (EINTR)

/// A periodic SIGALRM for as long as it lives (periodic, so a tick that
/// lands between two KVM_RUNs cannot leave the next one blocked forever).
class watchdog {
public:
    watchdog() {
        struct sigaction sa {};
        sa.sa_handler = on_watchdog;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must come back with EINTR
        armed_ = ::sigaction(SIGALRM, &sa, &old_) == 0;
        itimerval t{};
        t.it_interval.tv_usec = 50'000;
        t.it_value.tv_usec = 50'000;
        armed_ = armed_ && ::setitimer(ITIMER_REAL, &t, nullptr) == 0;
    }
    ~watchdog() {
        itimerval off{};
        (void)::setitimer(ITIMER_REAL, &off, nullptr);
        (void)::sigaction(SIGALRM, &old_, nullptr);
    }
    bool armed() const { return armed_; }
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;

private:
    struct sigaction old_ {};
    bool armed_ = false;
};

} // namespace

transport_choice probe_transport(const kvm_handles& h, hypercall_server serve, void* context) {
    transport_choice out;
    auto say = [&](const char* fmt, auto... args) { std::snprintf(out.why, sizeof out.why, fmt, args...); };

    const int mask = ::ioctl(h.vm.get(), KVM_CHECK_EXTENSION, KVM_CAP_EXIT_HYPERCALL);
    if (mask <= 0 || (mask & (1 << KVM_HC_MAP_GPA_RANGE)) == 0) {
        say("KVM does not offer KVM_CAP_EXIT_HYPERCALL for MAP_GPA_RANGE (KVM_CHECK_EXTENSION: %d)", mask);
        return out;
    }
    kvm_enable_cap cap{};
    cap.cap = KVM_CAP_EXIT_HYPERCALL;
    cap.args[0] = std::uint64_t{1} << KVM_HC_MAP_GPA_RANGE;
    if (::ioctl(h.vm.get(), KVM_ENABLE_CAP, &cap) != 0) {
        say("KVM_ENABLE_CAP(KVM_CAP_EXIT_HYPERCALL) failed: %s", std::strerror(errno));
        return out;
    }
    vcpu probe;
    if (auto s = create_vcpu(h, probe, 1, probe_gpa); !s) {
        say("the probe vCPU could not be created: %s", s.error().message().data());
        return out;
    }
    watchdog dog;
    if (!dog.armed()) {
        say("the probe's watchdog could not be armed (%s), so the probe was not run", std::strerror(errno));
        return out;
    }
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::milliseconds(500);
    bool exited = false;  // KVM_EXIT_HYPERCALL seen and served
    std::uint64_t served_ret = 0;
    int interrupts = 0;
    while (clock::now() < deadline) {
        if (::ioctl(probe.fd.get(), KVM_RUN, 0) != 0) {
            if (errno == EINTR) {
                ++interrupts;
                continue;
            }
            say("KVM_RUN of the probe vCPU failed: %s", std::strerror(errno));
            return out;
        }
        kvm_run& run = *probe.run;
        if (run.exit_reason == KVM_EXIT_HYPERCALL) {
            const exit_outcome o = serve(context, run);
            if (o.disposition == exit_disposition::not_mine) {
                say("the probe's vmcall exited with hypercall %llu, not MAP_GPA_RANGE",
                    static_cast<unsigned long long>(run.hypercall.nr));
                return out;
            }
            exited = true;
            served_ret = run.hypercall.ret;
            continue;
        }
        if (run.exit_reason == KVM_EXIT_IO && run.io.port == port_probe) {
            std::uint16_t ax = 0;
            std::memcpy(&ax, reinterpret_cast<const char*>(&run) + run.io.data_offset, sizeof ax);
            if (exited && ax == served_ret) {
                out.how = transport::hypercall;
                say("a probe vmcall exited as KVM_EXIT_HYPERCALL, the router served it, and the guest got ret %u", ax);
            } else {
                say("a probe vmcall completed without reaching the VMM (the guest got %#x), so KVM does not forward it",
                    ax);
            }
            return out;
        }
        say("the probe vCPU stopped with exit %u before its vmcall completed", run.exit_reason);
        return out;
    }
    kvm_regs regs{};
    const bool got = ::ioctl(probe.fd.get(), KVM_GET_REGS, &regs) == 0;
    const std::size_t vmcall_at = probe_gpa + assemble_probe().size() - 6;  // vmcall, out, hlt end the probe
    char where[64];
    if (got)
        std::snprintf(where, sizeof where, "rip %#llx, the vmcall is at %#zx", static_cast<unsigned long long>(regs.rip),
                      vmcall_at);
    else
        std::snprintf(where, sizeof where, "rip unknown");
    say("KVM offers KVM_CAP_EXIT_HYPERCALL and it is enabled, but a probe vmcall did not complete in 500 ms "
        "(%s; KVM_RUN interrupted %d times; %s)",
        exited ? "its exit was served but the guest never resumed" : "no KVM_EXIT_HYPERCALL", interrupts, where);
    return out;
}

} // namespace kvm_demo
