// tests/kvm_retry_test.cpp — the exit router's retry policy
// (kvm/exit_router.hpp, router_options): under vmm_retries (the default) a
// transient refusal returns retry_later with the wait fd and leaves the
// exit uncompleted; the eventfd notifier (linux/unblock_eventfd.hpp) is
// signalled when the pin drops; re-entering the exit then completes it;
// after the retry limit (a test clock: no timed assertions) the guest gets
// EINVAL and the log names the page and the vetoing binding; a new request
// restarts the clock; guest_retries keeps EAGAIN.
#include <doctest/doctest.h>

#include <poll.h>

#include <guestmem/kvm/exit_router.hpp>
#include <guestmem/linux/unblock_eventfd.hpp>

#include "support/kvm_support.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

using namespace guestmem;
using namespace guestmem::test_support;

// A namespace of its own: test_kvm is one unity build, and the other kvm
// test files define helpers of the same names.
namespace kvm_retry_test {
namespace {

constexpr std::uint64_t enc = KVM_MAP_GPA_RANGE_ENCRYPTED;
constexpr std::uint64_t ms = 1'000'000;

std::uint64_t test_clock_ns = 0;
std::uint64_t test_clock() noexcept { return test_clock_ns; }

std::unique_ptr<kvm_run> hypercall(std::uint64_t gpa, std::uint64_t npages, std::uint64_t attrs) {
    auto run = std::make_unique<kvm_run>();
    std::memset(run.get(), 0, sizeof(kvm_run));
    run->exit_reason = KVM_EXIT_HYPERCALL;
    run->hypercall.nr = KVM_HC_MAP_GPA_RANGE;
    run->hypercall.args[0] = gpa;
    run->hypercall.args[1] = npages;
    run->hypercall.args[2] = attrs;
    run->hypercall.longmode = KVM_EXIT_HYPERCALL_LONG_MODE;
    run->hypercall.ret = 0xdeadbeef;
    return run;
}

std::unique_ptr<kvm_run> memory_fault(std::uint64_t gpa, std::uint64_t size, std::uint64_t flags) {
    auto run = std::make_unique<kvm_run>();
    std::memset(run.get(), 0, sizeof(kvm_run));
    run->exit_reason = KVM_EXIT_MEMORY_FAULT;
    kvm_set_memory_fault(*run, {flags, gpa, size});
    return run;
}

/// Readable now? (poll with a zero timeout: a readiness check, not a timing.)
bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

struct retrying_vm : two_slot_vm {
    log_lines log;
    eventfd_unblock_notifier efd = eventfd_unblock_notifier::create().value();
    exit_router<sim_memory> router{map, &log_lines::sink, &log,
                                   router_options{.retry_limit_ns = 100 * ms, .wait_fd = efd.fd(), .now_ns = &test_clock}};
    retrying_vm() {
        test_clock_ns = 1'000 * ms;
        mem.set_unblock_notifier(&efd);
        other.set_unblock_notifier(&efd);
    }
    ~retrying_vm() {
        mem.set_unblock_notifier(nullptr);
        other.set_unblock_notifier(nullptr);
    }
};

} // namespace

TEST_CASE("vmm_retries is the default: a router built without options retries in the VMM") {
    two_slot_vm vm;
    exit_router<sim_memory> plain(vm.map);
    CHECK(plain.retries() == retry_policy::vmm_retries);
    REQUIRE(vm.mem.pin({0x90, 0x91}, accessor::device));
    auto run = hypercall(0x90000, 1, enc);
    const exit_outcome out = plain.handle(*run);
    CHECK(out.disposition == exit_disposition::retry_later);
    CHECK(out.wait_fd == -1);
    CHECK(run->hypercall.ret == 0xdeadbeef);
    CHECK(to_string(exit_disposition::retry_later) == "retry_later");
}

TEST_CASE("a pinned page leaves the exit pending with the eventfd; the unpin signals it and the re-entered exit completes") {
    retrying_vm vm;
    REQUIRE(vm.mem.pin({0x90, 0x91}, accessor::device));
    vm.efd.drain();
    auto run = hypercall(0x7f000, 0x20, enc);
    retry_state vcpu0;
    exit_outcome out = vm.router.handle(*run, vcpu0);
    CHECK(out.disposition == exit_disposition::retry_later);
    CHECK(out.wait_fd == vm.efd.fd());
    CHECK(out.why.error() == errc::busy);
    CHECK(out.why.error().page() == 0x90);
    CHECK(run->hypercall.ret == 0xdeadbeef);  // not completed: KVM must not hand anything to the guest yet
    CHECK(vcpu0.pending);
    CHECK(vm.private_pages() == 0);
    CHECK_FALSE(readable(vm.efd.fd()));
    // Re-entering before anything changed: still pending.
    test_clock_ns += 10 * ms;
    out = vm.router.handle(*run, vcpu0);
    CHECK(out.disposition == exit_disposition::retry_later);
    CHECK(vcpu0.attempts == 2);
    REQUIRE(vm.mem.unpin({0x90, 0x91}));
    CHECK(readable(vm.efd.fd()));
    CHECK(vm.efd.drain());
    CHECK_FALSE(readable(vm.efd.fd()));
    out = vm.router.handle(*run, vcpu0);
    CHECK(out.disposition == exit_disposition::resume);
    CHECK(run->hypercall.ret == 0);
    CHECK_FALSE(vcpu0.pending);
    CHECK(vm.private_pages() == 0x20);
    CHECK(readable(vm.efd.fd()));  // the conversion changed a range: signalled too (harmless)
}

TEST_CASE("after the retry limit the guest gets EINVAL and the log names the page and its references") {
    retrying_vm vm;
    REQUIRE(vm.mem.pin({0x90, 0x91}, accessor::device));
    auto run = hypercall(0x90000, 1, enc);
    retry_state st;
    CHECK(vm.router.handle(*run, st).disposition == exit_disposition::retry_later);
    test_clock_ns += 99 * ms;
    CHECK(vm.router.handle(*run, st).disposition == exit_disposition::retry_later);
    test_clock_ns += 1 * ms;
    const exit_outcome out = vm.router.handle(*run, st);
    CHECK(out.disposition == exit_disposition::resume);
    CHECK(out.hypercall_ret == EINVAL);
    CHECK(run->hypercall.ret == EINVAL);
    CHECK(out.why.error() == errc::busy);
    CHECK_FALSE(st.pending);
    INFO(vm.log.lines.back());
    CHECK(vm.log.any_contains("gave up retrying MAP_GPA_RANGE gpa=0x90000 (the guest gets EINVAL) after 3 attempts over 100 ms: busy at GPA frame 0x90"));
    CHECK(vm.log.any_contains("1 unexpected references"));
    CHECK(vm.log.any_contains("no binding vetoed"));
    CHECK(vm.log.any_contains("the guest gets EINVAL"));
}

TEST_CASE("a veto is retried too, and giving up names the vetoing binding") {
    retrying_vm vm;
    vm.rec.veto_at(0x80);
    auto run = hypercall(0x80000, 1, enc);
    retry_state st;
    CHECK(vm.router.handle(*run, st).disposition == exit_disposition::retry_later);
    test_clock_ns += 100 * ms;
    const exit_outcome out = vm.router.handle(*run, st);
    CHECK(run->hypercall.ret == EINVAL);
    CHECK(out.why.error() == errc::vetoed);
    CHECK(vm.log.any_contains("vetoed by binding " + std::to_string(vm.b.id())));
}

TEST_CASE("a different request restarts the retry clock; a success or a lasting error forgets the pending one") {
    retrying_vm vm;
    REQUIRE(vm.mem.pin({0x90, 0x91}, accessor::device));
    retry_state st;
    auto first = hypercall(0x90000, 1, enc);
    CHECK(vm.router.handle(*first, st).disposition == exit_disposition::retry_later);
    test_clock_ns += 90 * ms;
    auto second = hypercall(0x90000, 2, enc);  // another request: its own clock
    CHECK(vm.router.handle(*second, st).disposition == exit_disposition::retry_later);
    CHECK(st.since_ns == test_clock_ns);
    test_clock_ns += 90 * ms;
    CHECK(vm.router.handle(*second, st).disposition == exit_disposition::retry_later);
    // A request that cannot succeed (bad attributes) is EINVAL at once and forgets the pending one.
    auto bad = hypercall(0x90000, 1, enc | 0x100);
    CHECK(vm.router.handle(*bad, st).hypercall_ret == EINVAL);
    CHECK_FALSE(st.pending);
}

TEST_CASE("a memory fault on a pinned page is retried by the VMM, then fails after the limit") {
    retrying_vm vm;
    REQUIRE(vm.mem.pin({0x7f, 0x80}, accessor::host));
    auto run = memory_fault(0x7f000, 0x2000, KVM_MEMORY_EXIT_FLAG_PRIVATE);
    retry_state st;
    exit_outcome out = vm.router.handle(*run, st);
    CHECK(out.disposition == exit_disposition::retry_later);
    CHECK(out.wait_fd == vm.efd.fd());
    test_clock_ns += 100 * ms;
    out = vm.router.handle(*run, st);
    CHECK(out.disposition == exit_disposition::failed);
    CHECK(out.why.error() == errc::busy);
    CHECK(vm.log.any_contains("gave up retrying memory fault gpa=0x7f000"));
}

TEST_CASE("handle(run) keeps the pending retry per thread; the bare transport has its own overload") {
    retrying_vm vm;
    REQUIRE(vm.mem.pin({0x90, 0x91}, accessor::device));
    auto run = hypercall(0x90000, 1, enc);
    CHECK(vm.router.handle(*run).disposition == exit_disposition::retry_later);
    test_clock_ns += 100 * ms;
    CHECK(vm.router.handle(*run).disposition == exit_disposition::resume);  // the same thread's state: timed out
    CHECK(run->hypercall.ret == EINVAL);
    retry_state st;
    exit_outcome out = vm.router.map_gpa_range(0x90000, 1, enc, st);
    CHECK(out.disposition == exit_disposition::retry_later);
    CHECK(out.hypercall_ret == 0);
    CHECK(vm.router.handle_map_gpa_range(0x90000, 1, enc) == EAGAIN);  // no policy on the raw call
}

TEST_CASE("guest_retries hands EAGAIN to the guest and keeps nothing pending") {
    retrying_vm vm;
    exit_router<sim_memory> guest(vm.map, &log_lines::sink, &vm.log,
                                  router_options{.retries = retry_policy::guest_retries, .wait_fd = vm.efd.fd()});
    REQUIRE(vm.mem.pin({0x90, 0x91}, accessor::device));
    auto run = hypercall(0x90000, 1, enc);
    retry_state st;
    const exit_outcome out = guest.handle(*run, st);
    CHECK(out.disposition == exit_disposition::resume);
    CHECK(run->hypercall.ret == EAGAIN);
    CHECK(out.wait_fd == -1);
    CHECK_FALSE(st.pending);
}

} // namespace kvm_retry_test
