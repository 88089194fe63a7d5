// tests/kvm_router_test.cpp — the exit router
// (include/guestmem/kvm/exit_router.hpp) over synthesized kvm_run exits:
// MAP_GPA_RANGE hypercalls in both directions and in 32-bit mode, every bad
// guest input (EINVAL, a log line, nothing changed), EAGAIN for a pinned
// page and a veto, memory-fault exits in both directions and their
// failures, exits that are not the router's, and the same request carried
// without a hypercall exit. The GPA map's tests are in kvm_test.cpp.
#include <doctest/doctest.h>

#include <guestmem/kvm/exit_router.hpp>

#include "support/kvm_support.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>

using namespace guestmem;
using namespace guestmem::test_support;

namespace {

constexpr std::uint64_t enc = KVM_MAP_GPA_RANGE_ENCRYPTED;

// A zeroed kvm_run (it is large: on the heap).
std::unique_ptr<kvm_run> zeroed_run() {
    auto run = std::make_unique<kvm_run>();
    std::memset(run.get(), 0, sizeof(kvm_run));
    return run;
}

std::unique_ptr<kvm_run> hypercall(std::uint64_t gpa, std::uint64_t npages, std::uint64_t attrs,
                                   bool long_mode = true) {
    auto run = zeroed_run();
    run->exit_reason = KVM_EXIT_HYPERCALL;
    run->hypercall.nr = KVM_HC_MAP_GPA_RANGE;
    run->hypercall.args[0] = gpa;
    run->hypercall.args[1] = npages;
    run->hypercall.args[2] = attrs;
    run->hypercall.longmode = long_mode ? KVM_EXIT_HYPERCALL_LONG_MODE : 0;
    run->hypercall.ret = 0xdeadbeef;  // the router must overwrite it
    return run;
}

std::unique_ptr<kvm_run> memory_fault(std::uint64_t gpa, std::uint64_t size, std::uint64_t flags) {
    auto run = zeroed_run();
    run->exit_reason = KVM_EXIT_MEMORY_FAULT;
    kvm_set_memory_fault(*run, {flags, gpa, size});
    return run;
}

// These tests show the guest's view of EAGAIN: guest_retries. The retry
// policy's own tests are in kvm_retry_test.cpp.
struct routed_vm : two_slot_vm {
    log_lines log;
    exit_router<sim_memory> router{map, &log_lines::sink, &log, router_options{.retries = retry_policy::guest_retries}};
};

} // namespace

TEST_CASE("a MAP_GPA_RANGE hypercall with ENCRYPTED across both slots is one conversion to guest_only, ret 0") {
    routed_vm vm;
    auto run = hypercall(0x7f000, 2, enc);
    const exit_outcome out = vm.router.handle(*run);
    CHECK(out.disposition == exit_disposition::resume);
    CHECK(out.why);
    CHECK(out.hypercall_ret == 0);
    CHECK(run->hypercall.ret == 0);
    CHECK(vm.mem.stats().conversions == 1);
    CHECK(vm.rec.count(call_kind::prepare) == 1);
    CHECK(vm.mem.shareability_at(0x7f).value() == shareability::guest_only);
    CHECK(vm.mem.shareability_at(0x80).value() == shareability::guest_only);
    CHECK(vm.log.lines.empty());
}

TEST_CASE("a MAP_GPA_RANGE hypercall without ENCRYPTED converts back to shared") {
    routed_vm vm;
    REQUIRE(vm.map.convert(0, 256, shareability::guest_only));
    auto run = hypercall(0x10000, 4, KVM_MAP_GPA_RANGE_DECRYPTED);
    CHECK(vm.router.handle(*run).disposition == exit_disposition::resume);
    CHECK(run->hypercall.ret == 0);
    CHECK(vm.mem.shareability_at(0x10).value() == shareability::shared);
    CHECK(vm.mem.shareability_at(0x13).value() == shareability::shared);
    CHECK(vm.mem.shareability_at(0x14).value() == shareability::guest_only);
    CHECK(vm.private_pages() == 252);
}

TEST_CASE("the 2M and 1G page-size hints are accepted and do not change what is converted") {
    routed_vm vm;
    auto run2m = hypercall(0x1000, 1, enc | KVM_MAP_GPA_RANGE_PAGE_SZ_2M);
    vm.router.handle(*run2m);
    CHECK(run2m->hypercall.ret == 0);
    auto run1g = hypercall(0x2000, 1, enc | KVM_MAP_GPA_RANGE_PAGE_SZ_1G);
    vm.router.handle(*run1g);
    CHECK(run1g->hypercall.ret == 0);
    CHECK(vm.private_pages() == 2);
}

TEST_CASE("outside long mode the hypercall's arguments are masked to 32 bits") {
    routed_vm vm;
    const std::uint64_t junk = 0xabcd'0000'0000'0000ULL;
    auto run32 = hypercall(junk | 0x7f000, junk | 2, junk | enc, /*long_mode=*/false);
    CHECK(vm.router.handle(*run32).disposition == exit_disposition::resume);
    CHECK(run32->hypercall.ret == 0);
    CHECK(vm.private_pages() == 2);

    // The same arguments in long mode are taken whole: a GPA in no slot.
    auto run64 = hypercall(junk | 0x1000, 1, enc, /*long_mode=*/true);
    vm.router.handle(*run64);
    CHECK(run64->hypercall.ret == EINVAL);
    CHECK(vm.private_pages() == 2);
}

TEST_CASE("each bad guest input gets EINVAL and a log line, never reaches convert, and changes nothing") {
    struct bad {
        const char* what;
        std::uint64_t gpa, npages, attrs;
        errc code;
        const char* logged;
    };
    const bad cases[] = {
        {"an unaligned GPA", 0x7f800, 1, enc, errc::invalid_range, "is not aligned"},
        {"zero pages", 0x7f000, 0, enc, errc::invalid_range, "has 0 pages"},
        {"a GPA outside every slot", 0x200000, 1, enc, errc::invalid_range, "is in no slot"},
        {"a count that runs past 2^64", 0x7f000, UINT64_MAX - 5, enc, errc::invalid_range,
         "run past the end of the 64-bit guest physical space"},
        {"a count that reaches past the last slot of the object", 0xff000, 2, enc, errc::invalid_range,
         "GPA frame 0x100 of the range [0xff, 0x101) is in no slot"},
        {"a range over a hole into another object", 0xff000, 0x302, enc, errc::invalid_range, "is in no slot"},
        {"unknown attribute bits", 0x7f000, 1, enc | (1u << 5), errc::invalid_argument, "have unknown bits 0x20"},
        {"a page-size hint of 3", 0x7f000, 1, enc | 3, errc::invalid_argument, "page-size hint 3 is not 0"},
        {"a page-size hint of 15", 0x7f000, 1, 15, errc::invalid_argument, "page-size hint 15"},
    };
    for (const bad& c : cases) {
        CAPTURE(c.what);
        routed_vm vm;
        const snapshot before(vm.mem);
        auto run = hypercall(c.gpa, c.npages, c.attrs);
        const exit_outcome out = vm.router.handle(*run);
        CHECK(out.disposition == exit_disposition::resume);
        CHECK(run->hypercall.ret == EINVAL);
        CHECK(out.hypercall_ret == EINVAL);
        REQUIRE_FALSE(out.why);
        CHECK(out.why.error() == c.code);
        REQUIRE(vm.log.lines.size() == 1);
        CHECK(vm.log.any_contains("MAP_GPA_RANGE"));
        CHECK(vm.log.any_contains("-> EINVAL"));
        CHECK(vm.log.any_contains(c.logged));
        CHECK(snapshot(vm.mem) == before);
        CHECK(vm.rec.total_calls() == 0);  // no consumer was even asked
        CHECK(vm.mem.stats().noop_conversions == 0);
    }
}

TEST_CASE("a range across two adjacent objects is refused with EINVAL naming the second object's first frame") {
    routed_vm vm;
    REQUIRE(vm.map.remove_slot(3));
    REQUIRE(vm.map.add_slot(3, 1024 * kib, 64, vm.other, 0));
    auto run = hypercall(0xff000, 2, enc);
    const exit_outcome out = vm.router.handle(*run);
    CHECK(run->hypercall.ret == EINVAL);
    CHECK(out.why.error().page() == 0x100);
    CHECK(vm.log.any_contains("a conversion across objects is refused"));
    CHECK(vm.private_pages() == 0);
    CHECK(vm.other.stats().guest_only_pages == 0);
}

TEST_CASE("a pinned page makes the private conversion EAGAIN with its GPA frame logged; after unpin it succeeds") {
    routed_vm vm;
    REQUIRE(vm.mem.pin({0x90, 0x91}, accessor::device));
    auto run = hypercall(0x7f000, 0x20, enc);
    const exit_outcome out = vm.router.handle(*run);
    CHECK(out.disposition == exit_disposition::resume);
    CHECK(run->hypercall.ret == EAGAIN);
    CHECK(out.why.error() == errc::busy);
    CHECK(out.why.error().page() == 0x90);
    CHECK(vm.log.any_contains("-> EAGAIN (busy at GPA frame 0x90)"));
    CHECK(vm.private_pages() == 0);
    REQUIRE(vm.mem.unpin({0x90, 0x91}));
    auto retry = hypercall(0x7f000, 0x20, enc);
    vm.router.handle(*retry);
    CHECK(retry->hypercall.ret == 0);
    CHECK(vm.private_pages() == 0x20);
}

TEST_CASE("a router with defer_if_pinned converts a pinned range at once") {
    routed_vm vm;
    exit_router<sim_memory> deferring(vm.map, &log_lines::sink, &vm.log, convert_options{.defer_if_pinned = true});
    CHECK(deferring.options().defer_if_pinned);
    REQUIRE(vm.mem.pin({0x90, 0x91}, accessor::device));
    CHECK(deferring.handle_map_gpa_range(0x90000, 1, enc) == 0);
    CHECK(vm.mem.shareability_at(0x90).value() == shareability::guest_only);
}

TEST_CASE("a consumer's veto makes the hypercall EAGAIN, and nothing changes") {
    routed_vm vm;
    vm.rec.veto_at(0x80);
    auto run = hypercall(0x7f000, 2, enc);
    const exit_outcome out = vm.router.handle(*run);
    CHECK(run->hypercall.ret == EAGAIN);
    CHECK(out.why.error() == errc::vetoed);
    CHECK(out.why.error().page() == 0x80);
    CHECK(vm.private_pages() == 0);
}

TEST_CASE("a poisoned page makes the hypercall EINVAL: retrying cannot help") {
    routed_vm vm;
    REQUIRE(vm.mem.memory_failure(0x85));
    auto run = hypercall(0x80000, 8, enc);
    const exit_outcome out = vm.router.handle(*run);
    CHECK(run->hypercall.ret == EINVAL);
    CHECK(out.why.error() == errc::poisoned);
    CHECK(out.why.error().page() == 0x85);
    CHECK(vm.log.any_contains("-> EINVAL (poisoned at GPA frame 0x85)"));
}

TEST_CASE("hypercall_return maps transient errors to EAGAIN and every other error to EINVAL") {
    CHECK(hypercall_return(errc::busy) == EAGAIN);
    CHECK(hypercall_return(errc::retry) == EAGAIN);
    CHECK(hypercall_return(errc::out_of_memory) == EAGAIN);
    CHECK(hypercall_return(errc::vetoed) == EAGAIN);
    for (errc e : {errc::invalid_range, errc::invalid_argument, errc::poisoned, errc::not_allocated,
                   errc::permission_denied, errc::not_supported, errc::already_bound, errc::not_bound,
                   static_cast<errc>(99)}) {
        CAPTURE(to_string(e));
        CHECK(hypercall_return(e) == EINVAL);
    }
    CHECK(EAGAIN == 11);
    CHECK(EINVAL == 22);
}

TEST_CASE("a private memory fault converts its range to guest_only and resumes") {
    routed_vm vm;
    auto run = memory_fault(0x7f000, 0x2000, KVM_MEMORY_EXIT_FLAG_PRIVATE);
    const exit_outcome out = vm.router.handle(*run);
    CHECK(out.disposition == exit_disposition::resume);
    CHECK(out.why);
    CHECK(out.hypercall_ret == 0);
    CHECK(vm.mem.stats().conversions == 1);
    CHECK(vm.private_pages() == 2);
    CHECK(vm.mem.shareability_at(0x80).value() == shareability::guest_only);
}

TEST_CASE("a shared memory fault converts its range back to shared and resumes") {
    routed_vm vm;
    REQUIRE(vm.map.convert(0, 256, shareability::guest_only));
    auto run = memory_fault(0x3000, 0x1000, 0);
    CHECK(vm.router.handle(*run).disposition == exit_disposition::resume);
    CHECK(vm.mem.shareability_at(3).value() == shareability::shared);
    CHECK(vm.private_pages() == 255);
}

TEST_CASE("a memory fault over a bad range fails with the reason and a log line, and nothing changes") {
    struct bad {
        const char* what;
        std::uint64_t gpa, size;
        const char* logged;
    };
    const bad cases[] = {
        {"a size that is not whole pages", 0x1000, 0x800, "not a whole number of 4096-byte pages"},
        {"an unaligned GPA", 0x1010, 0x1000, "is not aligned"},
        {"a size of 0", 0x1000, 0, "has 0 pages"},
        {"a GPA in no slot", 0x300000, 0x1000, "is in no slot"},
    };
    for (const bad& c : cases) {
        CAPTURE(c.what);
        routed_vm vm;
        const snapshot before(vm.mem);
        auto run = memory_fault(c.gpa, c.size, KVM_MEMORY_EXIT_FLAG_PRIVATE);
        const exit_outcome out = vm.router.handle(*run);
        CHECK(out.disposition == exit_disposition::failed);
        REQUIRE_FALSE(out.why);
        CHECK(out.why.error() == errc::invalid_range);
        REQUIRE(vm.log.lines.size() == 1);
        CHECK(vm.log.any_contains("memory fault gpa="));
        CHECK(vm.log.any_contains(c.logged));
        CHECK(snapshot(vm.mem) == before);
        CHECK(vm.rec.total_calls() == 0);
    }
}

TEST_CASE("a memory fault with flag bits other than PRIVATE fails with invalid_argument") {
    routed_vm vm;
    auto run = memory_fault(0x1000, 0x1000, KVM_MEMORY_EXIT_FLAG_PRIVATE | 1);
    const exit_outcome out = vm.router.handle(*run);
    CHECK(out.disposition == exit_disposition::failed);
    CHECK(out.why.error() == errc::invalid_argument);
    CHECK(out.why.error().page() == 1);
    CHECK(vm.log.any_contains("have bits other than PRIVATE"));
    CHECK(vm.private_pages() == 0);
}

TEST_CASE("a private memory fault on a pinned page fails with busy: the VMM decides what to do") {
    routed_vm vm;
    REQUIRE(vm.mem.pin({0x7f, 0x80}, accessor::host));
    auto run = memory_fault(0x7f000, 0x2000, KVM_MEMORY_EXIT_FLAG_PRIVATE);
    const exit_outcome out = vm.router.handle(*run);
    CHECK(out.disposition == exit_disposition::failed);
    CHECK(out.why.error() == errc::busy);
    CHECK(out.why.error().page() == 0x7f);
    CHECK(vm.log.any_contains("to guest_only failed (busy at GPA frame 0x7f)"));
    CHECK(vm.private_pages() == 0);
}

TEST_CASE("exits other than memory faults and MAP_GPA_RANGE are not mine and leave the run untouched") {
    routed_vm vm;
    for (std::uint32_t reason : {KVM_EXIT_IO, KVM_EXIT_HLT, KVM_EXIT_MMIO, KVM_EXIT_SHUTDOWN, KVM_EXIT_INTR}) {
        CAPTURE(reason);
        auto run = zeroed_run();
        run->exit_reason = reason;
        const exit_outcome out = vm.router.handle(*run);
        CHECK(out.disposition == exit_disposition::not_mine);
        CHECK(out.why);
    }
    auto other_call = hypercall(0x1000, 1, enc);
    other_call->hypercall.nr = KVM_HC_KICK_CPU;
    CHECK(vm.router.handle(*other_call).disposition == exit_disposition::not_mine);
    CHECK(other_call->hypercall.ret == 0xdeadbeef);
    CHECK(vm.private_pages() == 0);
    CHECK(vm.log.lines.empty());
}

TEST_CASE("handle_map_gpa_range serves the same request without a hypercall exit (the port I/O transport)") {
    routed_vm vm;
    CHECK(vm.router.handle_map_gpa_range(0x7f000, 2, enc) == 0);
    CHECK(vm.private_pages() == 2);
    CHECK(vm.router.handle_map_gpa_range(0x7f000, 2, KVM_MAP_GPA_RANGE_DECRYPTED) == 0);
    CHECK(vm.private_pages() == 0);
    CHECK(vm.router.handle_map_gpa_range(0x7f001, 2, enc) == EINVAL);
    REQUIRE(vm.mem.pin({0x7f, 0x80}, accessor::device));
    CHECK(vm.router.handle_map_gpa_range(0x7f000, 2, enc) == EAGAIN);
    CHECK(vm.log.lines.size() == 2);
    CHECK(&vm.router.map() == &vm.map);
}

TEST_CASE("a router without a log sink refuses bad input the same way") {
    routed_vm vm;
    exit_router quiet(vm.map);  // the map's types are deduced
    static_assert(std::is_same_v<decltype(quiet), exit_router<sim_memory, 64>>);
    auto run = hypercall(0x7f800, 1, enc);
    quiet.handle(*run);
    CHECK(run->hypercall.ret == EINVAL);
    CHECK(vm.private_pages() == 0);
}

TEST_CASE("a log line longer than the buffer is cut, not overrun") {
    routed_vm vm;
    vm.rec.veto_at(0x10);
    CHECK(vm.router.handle_map_gpa_range(UINT64_MAX - 0xfff, UINT64_MAX, UINT64_MAX) == EINVAL);
    REQUIRE(vm.log.lines.size() == 1);
    CHECK(vm.log.lines[0].size() <= 255);
    CHECK(to_string(exit_disposition::resume) == "resume");
    CHECK(to_string(exit_disposition::failed) == "failed");
    CHECK(to_string(exit_disposition::not_mine) == "not_mine");
    CHECK(to_string(static_cast<exit_disposition>(9)) == "invalid disposition");
}
