// examples/kvm_vmm/kvm_vmm.cpp — a small VMM that runs a real KVM guest whose
// memory is owned by guestmem. Read it top to bottom:
//
//   1. the request ABI between guest and VMM (port I/O "hypercalls"),
//   2. the guest: a script of requests, assembled into 16-bit real-mode code,
//   3. a simulated IOMMU: a second consumer whose DMA mappings pin pages,
//   4. the VMM's service of each request with guestmem (convert, pin, fault),
//   5. KVM plumbing: VM, guest_memfd, memslot, vCPU and the run loop,
//   6. the report.
//
// The guest's memory is a 4 MiB KVM guest_memfd (two 2 MiB folios), bound
// to the VM by a memslot and to the host by a view that guestmem's
// host-mapping consumer mprotects: a default KVM VM does not enforce private
// memory itself (KVM_CAP_MEMORY_ATTRIBUTES is 0), so the library does it in
// userspace. KVM itself (the hypervisor, which may touch private pages)
// reads guest memory through the allocator's own mapping, given to the
// memslot as userspace_addr. Without /dev/kvm or guest_memfd support (or
// with --simulated) the same script runs on the simulated allocator, and
// the demo says so. Exit status: 0 when every check passed.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <guestmem/testing/simulated_allocator.hpp>
#include <guestmem/testing/touch_probe.hpp>
#include <guestmem/linux/linux.hpp>
#include <guestmem/memory/guest_memory.hpp>

using namespace guestmem;

namespace {

// ============================================================================
// 1. The request ABI. The guest puts a request in registers and executes
//    `out 0x10, al`; KVM exits to us with KVM_EXIT_IO; we serve it and put
//    the result back in registers before resuming the vCPU:
//      in:  AX = op, BX = first guest frame (GPA >> 12), CX = page count,
//           SI = script step (for the log)
//      out: AX = 0 or the guestmem errc value, BX = offending frame or 0xffff
//    The guest checks the result itself and reports `out 0x11, ax` with
//    AL = step, AH = 1 (as expected) or 0 (not).
// ============================================================================
constexpr std::uint16_t port_request = 0x10, port_report = 0x11;
enum op : std::uint16_t {
    op_share = 1,         // convert [BX, BX+CX) to shared
    op_unshare = 2,       // convert [BX, BX+CX) to guest_only
    op_host_read = 3,     // the host reads the pattern back through its view
    op_dma_unmap = 4,     // the virtual device finishes DMA: drop its pin
    op_host_touch = 5,    // the host (wrongly) touches the page: must be refused
    op_dma_map = 6,       // the virtual device maps the page for DMA: pin it
    op_write_pattern = 0x100,  // not a request: the guest writes the pattern itself
    op_repeat = 0x101,         // not a request: run the steps up to op_end_repeat `count` times
    op_end_repeat = 0x102,
};
constexpr std::uint16_t any_page = 0xffff;
constexpr std::uint16_t pattern = 0xa55a;
constexpr std::uint16_t mismatch = 0x80;  // VMM-defined result: data not as expected
constexpr std::uint16_t code(errc e) { return static_cast<std::uint16_t>(e); }

// ============================================================================
// 2. The guest: a script, and the real-mode code it assembles into.
// ============================================================================
struct step {
    const char* what;
    std::uint16_t op, gfn, count, expect, expect_page;
};
constexpr step script[] = {
    {"share 2 pages inside the first 2M folio", op_share, 0x10, 2, 0, any_page},
    {"guest writes 0xa55a over the shared pages", op_write_pattern, 0x10, 2, 0, any_page},
    {"host reads the guest's pattern through its view", op_host_read, 0x10, 2, 0, any_page},
    {"device maps page 0x11 for DMA (pins it)", op_dma_map, 0x11, 1, 0, any_page},
    {"unshare while the device pins 0x11: busy at 0x11", op_unshare, 0x10, 2, code(errc::busy), 0x11},
    {"device finishes DMA (unpins 0x11)", op_dma_unmap, 0x11, 1, 0, any_page},
    {"unshare again: ok, the 2M folio merges back", op_unshare, 0x10, 2, 0, any_page},
    {"host touches private page 0x10: refused", op_host_touch, 0x10, 1, 0, any_page},
    {"host reads private page 0x10: permission_denied", op_host_read, 0x10, 1, code(errc::permission_denied), 0x10},
    {"warm loop: 32 rounds of", op_repeat, 0, 32, 0, any_page},
    {"  share page 0x20 (splits the 2M folio)", op_share, 0x20, 1, 0, any_page},
    {"  unshare page 0x20 (merges it back)", op_unshare, 0x20, 1, 0, any_page},
    {"end of loop", op_end_repeat, 0, 0, 0, any_page},
};
constexpr std::size_t steps = sizeof script / sizeof script[0];

constexpr std::uint16_t code_gpa = 0x1000;  // the guest runs from 0000:1000
constexpr std::uint16_t stack_top = 0x8000;

/// Assemble the script into real-mode machine code, loaded at `code_gpa`.
std::vector<std::uint8_t> assemble_guest() {
    std::vector<std::uint8_t> c;
    auto b = [&](std::initializer_list<std::uint8_t> bytes) { c.insert(c.end(), bytes); };
    auto w = [&](std::uint8_t opcode, std::uint16_t imm) { b({opcode, std::uint8_t(imm), std::uint8_t(imm >> 8)}); };
    std::vector<std::size_t> calls;  // where `call request` needs its rel16
    std::size_t loop = 0;            // where op_repeat's body starts

    b({0xfa});                    // cli
    b({0x31, 0xc0});              // xor ax, ax
    b({0x8e, 0xd8});              // mov ds, ax
    b({0x8e, 0xd0});              // mov ss, ax
    w(0xbc, stack_top);           // mov sp, 0x8000
    for (std::size_t i = 0; i < steps; ++i) {
        const step& s = script[i];
        if (s.op == op_write_pattern) {
            w(0xb8, std::uint16_t(s.gfn << 8));  // mov ax, gfn * 4096 / 16 (the page's segment)
            b({0x8e, 0xc0});                     // mov es, ax
            b({0x31, 0xff});                     // xor di, di
            w(0xb9, std::uint16_t(s.count * 2048));  // mov cx, words in the pages
            w(0xb8, pattern);                    // mov ax, 0xa55a
            b({0xfc});                           // cld
            b({0xf3, 0xab});                     // rep stosw   (es:di <- ax, cx times)
            continue;
        }
        if (s.op == op_repeat) {
            w(0xba, s.count);                    // mov dx, rounds   (the VMM never touches dx)
            loop = c.size();
            continue;
        }
        if (s.op == op_end_repeat) {
            b({0x4a});                           // dec dx
            b({0x75, std::uint8_t(loop - (c.size() + 2))});  // jnz back to the loop body
            continue;
        }
        w(0xbe, std::uint16_t(i));        // mov si, step
        w(0xb8, s.op);                    // mov ax, op
        w(0xbb, s.gfn);                   // mov bx, first frame
        w(0xb9, s.count);                 // mov cx, count
        w(0xbf, s.expect);                // mov di, expected result
        w(0xbd, s.expect_page);           // mov bp, expected frame (0xffff: any)
        b({0xe8, 0, 0});                  // call request
        calls.push_back(c.size());
    }
    b({0xf4});                            // hlt: the VMM's run loop ends here
    const std::size_t request = c.size();
    b({0xe6, port_request});              // request: out 0x10, al      (VMM fills ax, bx)
    b({0x39, 0xf8});                      //          cmp ax, di
    b({0x75, 0x11});                      //          jne bad
    b({0x81, 0xfd, 0xff, 0xff});          //          cmp bp, 0xffff
    b({0x74, 0x04});                      //          je good
    b({0x39, 0xeb});                      //          cmp bx, bp
    b({0x75, 0x07});                      //          jne bad
    b({0x89, 0xf0});                      // good:    mov ax, si
    b({0xb4, 0x01});                      //          mov ah, 1
    b({0xe7, port_report});               //          out 0x11, ax
    b({0xc3});                            //          ret
    b({0x89, 0xf0});                      // bad:     mov ax, si
    b({0xb4, 0x00});                      //          mov ah, 0
    b({0xe7, port_report});               //          out 0x11, ax
    b({0xc3});                            //          ret
    for (std::size_t after : calls) {     // patch each call's rel16 = target - next instruction
        const auto rel = static_cast<std::uint16_t>(request - after);
        c[after - 2] = std::uint8_t(rel);
        c[after - 1] = std::uint8_t(rel >> 8);
    }
    return c;
}

// ============================================================================
// 3. A simulated IOMMU: a consumer bound over the guest's memory whose DMA
//    mappings hold pins (unexpected references, like VFIO's). While a page
//    is pinned, guestmem refuses to make it guest_only (busy, that page).
// ============================================================================
template <class Memory>
class iommu_consumer final : public consumer {
public:
    explicit iommu_consumer(Memory& mem) : mem_(mem) {}
    status map_dma(page_index p) {
        if (auto s = mem_.pin({p, p + 1}, accessor::device); !s) return s;
        ++mapped_;
        return ok();
    }
    status unmap_dma(page_index p) {
        if (auto s = mem_.unpin({p, p + 1}); !s) return s;
        --mapped_;
        return ok();
    }
    // Nothing pinned can reach a to_guest_only commit (guestmem checks
    // references first), so the IOMMU has nothing to refuse or drop here.
    status prepare(const invalidation&) override { return ok(); }
    void commit(const invalidation&, commit_report&) noexcept override {}
    void abort(const invalidation&) noexcept override {}
    void memory_failure(const invalidation&) noexcept override {}
    std::string_view name() const noexcept override { return "iommu"; }

private:
    Memory& mem_;
    int mapped_ = 0;
};

// ============================================================================
// 4. Serving requests. Works on any allocator: the real guest_memfd one, or
//    the simulated one when there is no KVM (then `view` is null).
// ============================================================================
using clock_type = std::chrono::steady_clock;
std::uint64_t ns_since(clock_type::time_point t0) {
    return std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count());
}

struct timings {
    std::uint64_t convert_ns = 0, convert_kernel_ns = 0, converts = 0;  // inside guest_memory::convert
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

template <class Allocator>
struct vmm {
    using memory = guest_memory<Allocator>;
    memory& mem;
    Allocator& alloc;
    host_mapping_consumer* view;  // null when simulated
    iommu_consumer<memory>& iommu;
    page_index slot_pages;        // guest frames [0, slot_pages) are object pages [0, slot_pages)
    timings t;
    checks c;

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

    reply serve(std::uint16_t o, std::uint16_t gfn, std::uint16_t count) {
        if (count == 0 || gfn >= slot_pages || count > slot_pages - gfn) return {code(errc::invalid_range), gfn};
        const page_range r{gfn, page_index{gfn} + count};
        switch (o) {
        case op_share: return from(timed(true, [&] { return mem.convert(r, shareability::shared); }));
        case op_unshare: return from(timed(true, [&] { return mem.convert(r, shareability::guest_only); }));
        case op_dma_map: return from(timed(false, [&] { return iommu.map_dma(r.begin); }));
        case op_dma_unmap: return from(timed(false, [&] { return iommu.unmap_dma(r.begin); }));
        case op_host_read:
            for (page_index p = r.begin; p < r.end; ++p) {
                // Ask guestmem first: may the host map this page?
                auto f = timed(false, [&] { return mem.fault(p, shareability::shared, accessor::host); });
                if (!f) return {code(f.error().code()), std::uint16_t(f.error().page())};
                if (!view) continue;  // simulated: no bytes to read
                const auto* words = reinterpret_cast<const std::uint16_t*>(view->address_of(p));
                for (std::size_t i = 0; i < page_size / 2; ++i)
                    if (words[i] != pattern) return {mismatch, std::uint16_t(p)};
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
                if (how != testing::touch_outcome::sigsegv) return {mismatch, gfn};
            }
            return refused ? reply{} : reply{mismatch, gfn};
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
        const auto s = mem.stats();
        if (i == 0) {
            std::printf("         folios now: %" PRIu64 " x 2M, %" PRIu64 " x 4K, %" PRIu64 " split\n", s.folios_2m,
                        s.folios_4k, s.split_folios);
            c.expect(s.folios_2m == 1 && s.split_folios == 1,
                     "sharing 2 pages split only the 2M folio holding them; the other stays whole");
        }
        if (i == 4)
            std::printf("         guestmem said: %s at page %#x\n", to_string(errc(rep.result)).data(), rep.page);
        if (i == 6) {
            std::printf("         folios now: %" PRIu64 " x 2M, %" PRIu64 " x 4K, %" PRIu64 " split\n", s.folios_2m,
                        s.folios_4k, s.split_folios);
            c.expect(s.folios_2m == 2 && s.split_folios == 0, "the whole 2M range is private again: merged back");
        }
    }
};

// ============================================================================
// 5. KVM plumbing.
// ============================================================================
constexpr std::uint64_t guest_bytes = 4 << 20;  // two 2 MiB folios
constexpr page_index slot_pages = 256;          // real mode reaches the first 1 MiB

struct kvm_handles {
    unique_fd kvm, vm, vcpu;
    kvm_run* run = nullptr;
    std::size_t run_size = 0;
    ~kvm_handles() {
        if (run) ::munmap(run, run_size);
    }
};

/// Open /dev/kvm and create a default (type 0) VM; false (with why) if not possible.
bool open_vm(kvm_handles& h, const char*& why) {
    h.kvm = unique_fd{::open("/dev/kvm", O_RDWR | O_CLOEXEC)};
    if (!h.kvm) return why = "cannot open /dev/kvm", false;
    h.vm = unique_fd{::ioctl(h.kvm.get(), KVM_CREATE_VM, 0)};
    if (!h.vm) return why = "KVM_CREATE_VM failed", false;
    (void)::ioctl(h.vm.get(), KVM_SET_TSS_ADDR, 0xfffbd000UL);  // needed by real mode on some Intel hosts
    return true;
}

/// One vCPU in real mode at 0000:code_gpa.
status create_vcpu(kvm_handles& h) {
    h.vcpu = unique_fd{::ioctl(h.vm.get(), KVM_CREATE_VCPU, 0)};
    if (!h.vcpu) return errno_error(errno, no_page, "KVM_CREATE_VCPU failed");
    const int size = ::ioctl(h.kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size <= 0) return errno_error(errno, no_page, "KVM_GET_VCPU_MMAP_SIZE failed");
    void* run = ::mmap(nullptr, std::size_t(size), PROT_READ | PROT_WRITE, MAP_SHARED, h.vcpu.get(), 0);
    if (run == MAP_FAILED) return errno_error(errno, no_page, "mmap of kvm_run failed");
    h.run = static_cast<kvm_run*>(run);
    h.run_size = std::size_t(size);
    kvm_sregs sregs{};
    if (::ioctl(h.vcpu.get(), KVM_GET_SREGS, &sregs) != 0) return errno_error(errno, no_page, "KVM_GET_SREGS failed");
    for (kvm_segment* seg : {&sregs.cs, &sregs.ds, &sregs.es, &sregs.ss}) seg->base = seg->selector = 0;
    if (::ioctl(h.vcpu.get(), KVM_SET_SREGS, &sregs) != 0) return errno_error(errno, no_page, "KVM_SET_SREGS failed");
    kvm_regs regs{};
    regs.rip = code_gpa;
    regs.rflags = 0x2;
    if (::ioctl(h.vcpu.get(), KVM_SET_REGS, &regs) != 0) return errno_error(errno, no_page, "KVM_SET_REGS failed");
    return ok();
}

/// Run the vCPU until the guest halts, serving its requests.
template <class Allocator>
void run_guest(kvm_handles& h, vmm<Allocator>& v, int& reports, int& guest_failures) {
    bool reported[steps] = {};
    bool in_flight = false;  // a conversion whose round trip ends at the next exit
    clock_type::time_point conv_exit{};
    std::uint64_t conv_library = 0;
    for (int exits = 0; exits < 100000; ++exits) {
        if (::ioctl(h.vcpu.get(), KVM_RUN, 0) != 0) {
            if (errno == EINTR) continue;
            std::printf("KVM_RUN failed: %s\n", std::strerror(errno));
            ++guest_failures;
            return;
        }
        const auto exit_time = clock_type::now();
        if (in_flight) {
            v.t.round_trip_ns += std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(exit_time - conv_exit).count());
            v.t.round_trip_library_ns += conv_library;
            ++v.t.round_trips;
            in_flight = false;
        }
        kvm_run& run = *h.run;
        if (run.exit_reason == KVM_EXIT_HLT) return;
        if (run.exit_reason != KVM_EXIT_IO || run.io.direction != KVM_EXIT_IO_OUT) {
            std::printf("unexpected exit %u", run.exit_reason);
            if (run.exit_reason == KVM_EXIT_INTERNAL_ERROR) {
                std::printf(" (suberror %u", run.internal.suberror);
                for (unsigned k = 0; k < run.internal.ndata && k < 4; ++k)
                    std::printf(", %#llx", static_cast<unsigned long long>(run.internal.data[k]));
                std::printf(")");
            }
            std::printf("\n");
            ++guest_failures;
            return;
        }
        if (run.io.port == port_report) {  // the guest's verdict on a step
            std::uint16_t v16 = 0;
            std::memcpy(&v16, reinterpret_cast<const char*>(&run) + run.io.data_offset, sizeof v16);
            const unsigned i = v16 & 0xff;
            const bool pass = (v16 >> 8) == 1;
            if (!pass || i >= steps || !reported[i])
                std::printf("  [%s] guest: step %u: %s\n", pass ? " ok " : "FAIL", i, i < steps ? script[i].what : "?");
            if (i < steps) reported[i] = true;
            ++reports;
            if (!pass) ++guest_failures;
            continue;
        }
        // A request: read the registers, serve, write the result back.
        const auto t0 = clock_type::now();
        const timings before = v.t;
        kvm_regs regs{};
        const int got = ::ioctl(h.vcpu.get(), KVM_GET_REGS, &regs);
        std::uint64_t ioctl_ns = ns_since(t0);
        if (got != 0) {
            std::printf("KVM_GET_REGS failed: %s\n", std::strerror(errno));
            ++guest_failures;
            return;
        }
        const std::size_t i = regs.rsi & 0xffff;
        v.before(i);
        const reply rep = v.serve(std::uint16_t(regs.rax), std::uint16_t(regs.rbx), std::uint16_t(regs.rcx));
        regs.rax = rep.result;
        regs.rbx = rep.page;
        const auto k1 = clock_type::now();
        const int set = ::ioctl(h.vcpu.get(), KVM_SET_REGS, &regs);
        ioctl_ns += ns_since(k1);
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

// ============================================================================
// 6. The report.
// ============================================================================
/// Library vs kernel time for one set of timings.
void print_times(const char* title, const timings& t) {
    auto us = [](std::uint64_t ns) { return double(ns) / 1000.0; };
    auto pct = [](std::uint64_t part, std::uint64_t whole) { return whole ? 100.0 * double(part) / double(whole) : 0.0; };
    const std::uint64_t lib = t.convert_ns - t.convert_kernel_ns;
    std::printf("  %s: %" PRIu64 " conversions\n", title, t.converts);
    std::printf("    inside convert():       %8.1f us = library %7.1f us (%4.1f%%) + kernel mprotect %7.1f us\n",
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
                s.conversions, s.noop_conversions, splits, merges, s.vetoes, s.busy, s.rollbacks);
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

/// The same script without KVM: requests are served in order, the
/// guest's own expectations are checked here instead of by the guest.
int run_simulated(const char* why) {
    std::printf("kvm_vmm: no real KVM guest (%s); running the same script on the simulated allocator\n", why);
    simulated_allocator alloc(UINT64_MAX, order_2m);
    guest_memory<simulated_allocator> mem(alloc, {guest_bytes / page_size, shareability::shared, order_2m});
    iommu_consumer<guest_memory<simulated_allocator>> iommu(mem);
    binding<> iommu_slot;
    vmm<simulated_allocator> v{mem, alloc, nullptr, iommu, slot_pages, {}, {}};
    v.c.expect(bool(mem.allocate({0, mem.size()})), "allocate the 4 MiB as two 2M folios");
    v.c.expect(bool(mem.bind(iommu_slot, iommu, {0, slot_pages}, 0x80000)), "bind the IOMMU at IOVA 0x80000000");
    v.c.expect(bool(mem.convert({0, mem.size()}, shareability::guest_only)), "hand all memory to the guest (private)");
    v.t = {};
    std::size_t loop = 0, rounds = 0;
    bool seen[steps] = {};
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
        const reply rep = v.serve(s.op, s.gfn, s.count);
        const bool pass = rep.result == s.expect && (s.expect_page == any_page || rep.page == s.expect_page);
        if (!pass || !seen[i]) std::printf("  [%s] step %zu: %s\n", pass ? " ok " : "FAIL", i, s.what);
        seen[i] = true;
        ++(pass ? v.c.passed : v.c.failed);
        v.after(i, rep);
    }
    return report(v, alloc.splits(), alloc.merges());
}

int run_kvm(kvm_handles& h, guest_memfd_allocator& alloc) {
    std::printf("kvm_vmm: real KVM guest, memory = 4 MiB guest_memfd (flags MMAP | INIT_SHARED)\n");
    // The object: 1024 pages, initially shared (INIT_SHARED), in 2M folios.
    using memory = guest_memory<guest_memfd_allocator>;
    memory mem(alloc, {alloc.pages(), shareability::shared, order_2m});
    iommu_consumer<memory> iommu(mem);
    host_mapping_consumer view;
    binding<> view_slot, iommu_slot;
    vmm<guest_memfd_allocator> v{mem, alloc, &view, iommu, slot_pages, {}, {}};

    v.c.expect(bool(mem.allocate({0, mem.size()})), "allocate the 4 MiB as two 2M folios (fallocate)");
    if (auto o = alloc.real_order(0))
        std::printf("         the kernel really backs them with order-%u folios (guestmem tracks order 9)\n",
                    unsigned{o.value()});
    v.c.expect(bool(view.map(alloc.fd(), 0, alloc.bytes())), "map the host view of the guest_memfd");
    v.c.expect(bool(mem.bind(view_slot, view, {0, mem.size()}, view.target_base(0))), "bind the host view");
    v.c.expect(bool(mem.bind(iommu_slot, iommu, {0, slot_pages}, 0x80000)), "bind the IOMMU at IOVA 0x80000000");
    auto slot = memslot::bind(h.vm.get(), {0, 0, alloc.fd(), {0, slot_pages}, alloc.data()});
    if (!slot) std::printf("         %s\n", slot.error().message().data());
    v.c.expect(bool(slot), "memslot 0: GPA [0, 1 MiB) -> guest_memfd pages [0, 0x100)");

    // Load the guest while memory is still shared, then hand it all over.
    const std::vector<std::uint8_t> code = assemble_guest();
    std::memcpy(view.address_of(code_gpa / page_size), code.data(), code.size());
    std::printf("         guest code: %zu bytes at %#x\n", code.size(), code_gpa);
    v.c.expect(bool(mem.convert({0, mem.size()}, shareability::guest_only)), "hand all memory to the guest (private)");
    v.c.expect(testing::touch_in_child(view.address_of(1), false) == testing::touch_outcome::sigsegv,
               "the host can no longer read the guest's code page");
    v.t = {};  // measure the guest's requests only

    if (auto s = create_vcpu(h); !s) {
        std::printf("  %s\n", s.error().message().data());
        ++v.c.failed;
        return report(v, alloc.splits(), alloc.merges());
    }
    int reports = 0, guest_failures = 0;
    run_guest(h, v, reports, guest_failures);
    int expected_reports = 0, repeat = 1;
    for (const step& s : script) {
        if (s.op == op_repeat) repeat = s.count;
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
