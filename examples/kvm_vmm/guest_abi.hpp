// examples/kvm_vmm/guest_abi.hpp — what the demo's guest and VMM agree on:
// the request registers, the two transports a conversion request travels
// by, the script of requests, and the guest code assembled from it
// (guest_code.cpp).
//
// A request, whatever its transport, is the KVM hypercall register layout:
//   in:  EAX = op (KVM_HC_MAP_GPA_RANGE = 12 for a conversion, or one of the
//              demo's own ops below), EBX = GPA, ECX = page count,
//              EDX = MAP_GPA_RANGE attributes (bit 4: to private)
//        SI = script step, DI = the result the guest expects, BP = the GFN
//        it expects with it (0xffff: any)
//   out: AX = result: for MAP_GPA_RANGE the hypercall's return value (0,
//        EINVAL 22, EAGAIN 11); for the demo's ops 0 or a guestmem errc;
//        BX = the GFN the VMM names (port I/O only; 0xffff: none)
// Transports: `vmcall` (KVM_EXIT_HYPERCALL, when the host completes it) or
// `out 0x10, al` (KVM_EXIT_IO) carrying the same registers. The demo's own
// ops (host reads, DMA pins) always use port I/O. The guest checks each
// result itself and reports `out 0x11, ax` with AL = step, AH = 1 (as
// expected) or 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <guestmem/core/error.hpp>
#include <guestmem/linux/kvm_uapi.hpp>

namespace kvm_demo {

constexpr std::uint16_t port_request = 0x10, port_report = 0x11, port_probe = 0x12;

enum op : std::uint16_t {
    op_map_gpa_range = KVM_HC_MAP_GPA_RANGE,  // convert (gpa, pages) by the attributes' ENCRYPTED bit
    op_host_read = 0x21,      // the host reads the pattern back through its view
    op_dma_unmap = 0x22,      // the virtual device finishes DMA: drop its pin
    op_host_touch = 0x23,     // the host (wrongly) touches the page: must be refused
    op_dma_map = 0x24,        // the virtual device maps the page for DMA: pin it
    op_write_pattern = 0x100, // not a request: the guest writes the pattern itself
    op_repeat = 0x101,        // not a request: run the steps up to op_end_repeat `count` times
    op_end_repeat = 0x102,
};
constexpr std::uint32_t to_shared = KVM_MAP_GPA_RANGE_DECRYPTED;
constexpr std::uint32_t to_private = KVM_MAP_GPA_RANGE_ENCRYPTED;
constexpr std::uint16_t any_page = 0xffff;
constexpr std::uint16_t pattern = 0xa55a;
constexpr std::uint16_t mismatch = 0x80;  // VMM-defined result: data not as expected
constexpr std::uint16_t code(guestmem::errc e) { return static_cast<std::uint16_t>(e); }
constexpr std::uint16_t ret_einval = 22, ret_eagain = 11;  // MAP_GPA_RANGE's return values

/// How the guest's MAP_GPA_RANGE requests reach the VMM.
enum class transport : std::uint8_t { port_io, hypercall };

struct step {
    const char* what;
    std::uint16_t op;
    std::uint32_t gpa, count, attributes;
    std::uint16_t expect, expect_page;
};

/// The script (guest_code.cpp). The VMM's own checks key on these indices.
extern const step script[];
extern const std::size_t steps;
constexpr std::size_t step_first_share = 0, step_busy_unshare = 4, step_dma_done = 5, step_merged = 6,
                      step_cross_slots = 9;

constexpr std::uint16_t code_gpa = 0x1000;   // the guest runs from 0000:1000
constexpr std::uint16_t probe_gpa = 0x6000;  // the transport probe's code
constexpr std::uint16_t loop_counter_gpa = 0x7000;
constexpr std::uint16_t stack_top = 0x8000;

/// The script as real-mode machine code, loaded at code_gpa; MAP_GPA_RANGE
/// requests go by `how`.
std::vector<std::uint8_t> assemble_guest(transport how);

// vCPU 1 (hotplug.hpp): its code, stack and the word that stops it; the
// page it shares and unshares is in memslot 2, which comes and goes.
constexpr std::uint16_t port_tally = 0x13;            // vCPU 1 reports each request's result (AX)
constexpr std::uint16_t converter_code_gpa = 0x5000;  // vCPU 1 runs from 0000:5000
constexpr std::uint16_t converter_stack_top = 0x9000;
constexpr std::uint16_t stop_gpa = 0x7010;            // vCPU 1 halts when the VMM sets this word
constexpr std::uint32_t hot_slot_id = 2;
constexpr std::uint32_t hot_gpa = 0x100000;           // memslot 2: GPA [1M, 1M + 64K), the second object
constexpr std::uint64_t hot_pages = 16;

/// vCPU 1's code, loaded at converter_code_gpa: until the word at stop_gpa
/// is not 0, MAP_GPA_RANGE hot_gpa (1 page) to shared, then to private,
/// each by `how`, reporting each result with `out 0x13, ax`; then `hlt`.
std::vector<std::uint8_t> assemble_converter(transport how);

/// The probe, loaded at probe_gpa: one `vmcall` MAP_GPA_RANGE of the page at
/// probe_gpa to private, then `out 0x12, ax` with the hypercall's return
/// value, then `hlt`.
std::vector<std::uint8_t> assemble_probe();

} // namespace kvm_demo
