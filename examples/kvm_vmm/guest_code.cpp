// examples/kvm_vmm/guest_code.cpp — the guest: its script of requests and
// the 16-bit real-mode code they assemble into (the ABI is in guest_abi.hpp).
#include "guest_abi.hpp"

#include <initializer_list>

namespace kvm_demo {

using guestmem::errc;

// GPAs: memslot 0 is GPA [0, 512K) = object pages [0, 0x80), memslot 1 is
// [512K, 1M) = pages [0x80, 0x100) of the same guest_memfd.
const step script[] = {
    {"share 2 pages inside the first 2M folio", op_map_gpa_range, 0x10000, 2, to_shared, 0, any_page},
    {"guest writes 0xa55a over the shared pages", op_write_pattern, 0x10000, 2, 0, 0, any_page},
    {"host reads the guest's pattern through its view", op_host_read, 0x10000, 2, 0, 0, any_page},
    {"device maps page 0x11 for DMA (pins it)", op_dma_map, 0x11000, 1, 0, 0, any_page},
    {"unshare while the device pins 0x11: EAGAIN (busy at 0x11)", op_map_gpa_range, 0x10000, 2, to_private,
     ret_eagain, 0x11},
    {"device finishes DMA (unpins 0x11)", op_dma_unmap, 0x11000, 1, 0, 0, any_page},
    {"unshare again: ok, the 2M folio merges back", op_map_gpa_range, 0x10000, 2, to_private, 0, any_page},
    {"host touches private page 0x10: refused", op_host_touch, 0x10000, 1, 0, 0, any_page},
    {"host reads private page 0x10: permission_denied", op_host_read, 0x10000, 1, 0, code(errc::permission_denied),
     0x10},
    {"share GFNs 0x7f..0x80, across memslots 0 and 1", op_map_gpa_range, 0x7f000, 2, to_shared, 0, any_page},
    {"unshare them again across both memslots", op_map_gpa_range, 0x7f000, 2, to_private, 0, any_page},
    {"an unaligned GPA: EINVAL, refused before convert", op_map_gpa_range, 0x7f800, 1, to_shared, ret_einval,
     any_page},
    {"a range running past the last memslot: EINVAL", op_map_gpa_range, 0xff000, 2, to_shared, ret_einval, 0x100},
    {"warm loop: 32 rounds of", op_repeat, 0, 32, 0, 0, any_page},
    {"  share page 0x20 (splits the 2M folio)", op_map_gpa_range, 0x20000, 1, to_shared, 0, any_page},
    {"  unshare page 0x20 (merges it back)", op_map_gpa_range, 0x20000, 1, to_private, 0, any_page},
    {"end of loop", op_end_repeat, 0, 0, 0, 0, any_page},
};
const std::size_t steps = sizeof script / sizeof script[0];

namespace {
struct code_buffer {
    std::vector<std::uint8_t> c;
    // push_back, not insert(end, list): g++ 12 -O3 warns (-Wstringop-overflow) about its own inlined insert.
    void b(std::initializer_list<std::uint8_t> bytes) { for (std::uint8_t x : bytes) c.push_back(x); }
    void w(std::uint8_t opcode, std::uint16_t imm) { b({opcode, std::uint8_t(imm), std::uint8_t(imm >> 8)}); }
    // mov e<reg>, imm32 in real mode: the operand-size prefix, then B8+reg.
    void d(std::uint8_t opcode, std::uint32_t imm) {
        b({0x66, opcode, std::uint8_t(imm), std::uint8_t(imm >> 8), std::uint8_t(imm >> 16), std::uint8_t(imm >> 24)});
    }
    void prologue(std::uint16_t sp = stack_top) {
        b({0xfa});            // cli
        b({0x31, 0xc0});      // xor ax, ax
        b({0x8e, 0xd8});      // mov ds, ax
        b({0x8e, 0xd0});      // mov ss, ax
        w(0xbc, sp);          // mov sp, 0x8000 (vCPU 0) or 0x9000 (vCPU 1)
    }
};
constexpr std::uint8_t mov_eax = 0xb8, mov_ecx = 0xb9, mov_edx = 0xba, mov_ebx = 0xbb;
} // namespace

std::vector<std::uint8_t> assemble_guest(transport how) {
    code_buffer g;
    struct call_site {
        std::size_t after;
        bool hypercall;
    };
    std::vector<call_site> calls;  // where `call request_*` needs its rel16
    std::size_t loop = 0;          // where op_repeat's body starts

    g.prologue();
    for (std::size_t i = 0; i < steps; ++i) {
        const step& s = script[i];
        if (s.op == op_write_pattern) {
            g.w(0xb8, std::uint16_t(s.gpa >> 4));     // mov ax, the page's segment
            g.b({0x8e, 0xc0});                        // mov es, ax
            g.b({0x31, 0xff});                        // xor di, di
            g.w(0xb9, std::uint16_t(s.count * 2048)); // mov cx, words in the pages
            g.w(0xb8, pattern);                       // mov ax, 0xa55a
            g.b({0xfc});                              // cld
            g.b({0xf3, 0xab});                        // rep stosw   (es:di <- ax, cx times)
            continue;
        }
        if (s.op == op_repeat) {
            g.b({0xc7, 0x06, std::uint8_t(loop_counter_gpa), std::uint8_t(loop_counter_gpa >> 8),
                 std::uint8_t(s.count), std::uint8_t(s.count >> 8)});  // mov word [counter], rounds
            loop = g.c.size();
            continue;
        }
        if (s.op == op_end_repeat) {
            g.b({0xff, 0x0e, std::uint8_t(loop_counter_gpa), std::uint8_t(loop_counter_gpa >> 8)});  // dec word [counter]
            const std::size_t back = g.c.size() + 2 - loop;
            if (back > 128) __builtin_trap();  // the loop body must fit a short jump
            g.b({0x75, std::uint8_t(-static_cast<int>(back))});  // jnz back to the loop body
            continue;
        }
        const bool by_hypercall = how == transport::hypercall && s.op == op_map_gpa_range;
        g.w(0xbe, std::uint16_t(i));             // mov si, step
        g.d(mov_eax, s.op);                      // mov eax, op (the hypercall number for MAP_GPA_RANGE)
        g.d(mov_ebx, s.gpa);                     // mov ebx, gpa
        g.d(mov_ecx, s.count);                   // mov ecx, pages
        g.d(mov_edx, s.attributes);              // mov edx, attributes
        g.w(0xbf, s.expect);                     // mov di, expected result
        g.w(0xbd, by_hypercall ? any_page : s.expect_page);  // mov bp, expected frame (a vmcall returns none)
        g.b({0xe8, 0, 0});                       // call request_io / request_hc
        calls.push_back({g.c.size(), by_hypercall});
    }
    g.b({0xf4});                                 // hlt: the VMM's run loop ends here
    const std::size_t request_io = g.c.size();
    g.b({0xe6, std::uint8_t(port_request)});     // request_io: out 0x10, al   (VMM fills ax, bx)
    const std::size_t check = g.c.size();
    g.b({0x39, 0xf8});                           // check:   cmp ax, di
    g.b({0x75, 0x11});                           //          jne bad
    g.b({0x81, 0xfd, 0xff, 0xff});               //          cmp bp, 0xffff
    g.b({0x74, 0x04});                           //          je good
    g.b({0x39, 0xeb});                           //          cmp bx, bp
    g.b({0x75, 0x07});                           //          jne bad
    g.b({0x89, 0xf0});                           // good:    mov ax, si
    g.b({0xb4, 0x01});                           //          mov ah, 1
    g.b({0xe7, std::uint8_t(port_report)});      //          out 0x11, ax
    g.b({0xc3});                                 //          ret
    g.b({0x89, 0xf0});                           // bad:     mov ax, si
    g.b({0xb4, 0x00});                           //          mov ah, 0
    g.b({0xe7, std::uint8_t(port_report)});      //          out 0x11, ax
    g.b({0xc3});                                 //          ret
    const std::size_t request_hc = g.c.size();
    g.b({0x0f, 0x01, 0xc1});                     // request_hc: vmcall   (KVM puts hypercall.ret in eax)
    g.b({0xeb, std::uint8_t(-static_cast<int>(g.c.size() + 2 - check))});  // jmp check
    for (const call_site& site : calls) {        // patch each call's rel16 = target - next instruction
        const auto rel = static_cast<std::uint16_t>((site.hypercall ? request_hc : request_io) - site.after);
        g.c[site.after - 2] = std::uint8_t(rel);
        g.c[site.after - 1] = std::uint8_t(rel >> 8);
    }
    return g.c;
}

std::vector<std::uint8_t> assemble_converter(transport how) {
    code_buffer g;
    g.prologue(converter_stack_top);
    const std::size_t loop = g.c.size();
    g.b({0x83, 0x3e, std::uint8_t(stop_gpa), std::uint8_t(stop_gpa >> 8), 0x00});  // cmp word [stop], 0
    g.b({0x75, 0});                                                               // jne end (patched)
    const std::size_t jne_end = g.c.size();
    for (std::uint32_t attributes : {to_shared, to_private}) {
        g.d(mov_eax, KVM_HC_MAP_GPA_RANGE);
        g.d(mov_ebx, hot_gpa);
        g.d(mov_ecx, 1);
        g.d(mov_edx, attributes);
        if (how == transport::hypercall)
            g.b({0x0f, 0x01, 0xc1});                 // vmcall (KVM puts hypercall.ret in eax)
        else
            g.b({0xe6, std::uint8_t(port_request)}); // out 0x10, al (the VMM puts the result in ax)
        g.b({0xe7, std::uint8_t(port_tally)});       // out 0x13, ax: report the result
    }
    const std::size_t back = g.c.size() + 2 - loop;
    if (back > 128) __builtin_trap();  // the loop must fit a short jump
    g.b({0xeb, std::uint8_t(-static_cast<int>(back))});  // jmp loop
    g.c[jne_end - 1] = std::uint8_t(g.c.size() - jne_end);
    g.b({0xf4});                                     // end: hlt
    return g.c;
}

std::vector<std::uint8_t> assemble_probe() {
    code_buffer g;
    g.prologue();
    g.d(mov_eax, KVM_HC_MAP_GPA_RANGE);
    g.d(mov_ebx, probe_gpa);
    g.d(mov_ecx, 1);
    g.d(mov_edx, to_private);
    g.b({0x0f, 0x01, 0xc1});                 // vmcall
    g.b({0xe7, std::uint8_t(port_probe)});   // out 0x12, ax: what the vmcall returned
    g.b({0xf4});                             // hlt
    return g.c;
}

} // namespace kvm_demo
