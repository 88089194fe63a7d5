// tests/linux_test.cpp — the Linux backends against the real kernel: the
// memfd and guest_memfd allocators (fallocate, punch hole, zero, the order
// the kernel really used), the host-mapping consumer (a forked child that
// touches a guest_only page dies with SIGSEGV, a shared page survives), and
// KVM memslots. Tests that need /dev/kvm skip with a message without it.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <guestmem/testing/touch_probe.hpp>
#include <guestmem/linux/linux.hpp>
#include <guestmem/memory/guest_memory.hpp>

#include "support/real_kvm.hpp"

using namespace guestmem;
using test_support::test_vm;
using testing::touch_in_child;
using testing::touch_outcome;

namespace {

bool all_bytes(const std::byte* p, std::size_t n, std::byte v) {
    for (std::size_t i = 0; i < n; ++i)
        if (p[i] != v) return false;
    return true;
}

invalidation make_inv(host_mapping_consumer& c, page_range pages, invalidation_cause cause) {
    invalidation inv;
    inv.pages = pages;
    inv.target = {c.target_base(pages.begin), c.target_base(pages.begin) + pages.size()};
    inv.cause = cause;
    inv.vetoable = is_vetoable(cause);
    inv.sequence = 1;
    inv.binding_id = 7;
    return inv;
}

// Run prepare + commit as the notifier set would; returns prepare's status.
status convert_view(host_mapping_consumer& c, page_range pages, invalidation_cause cause, commit_report& report) {
    const invalidation inv = make_inv(c, pages, cause);
    auto s = c.prepare(inv);
    if (!s) return s;
    c.commit(inv, report);
    return ok();
}

constexpr std::uint64_t two52 = std::uint64_t{1} << 52;                 // the first page whose byte offset is 2^64
constexpr std::uint64_t top_page_byte = UINT64_MAX & ~std::uint64_t{4095};  // 2^64 - 4 KiB
constexpr std::uint64_t two63 = std::uint64_t{1} << 63;                     // one past the largest file offset

std::string text(const error& e) { return std::string(e.message()); }

// memslot::bind on no VM (fd -1): a config that passed validation reached
// the ioctl, which says EBADF.
bool reached_ioctl(const result<memslot>& r) {
    return !r && r.error().code() == errc::invalid_argument &&
           text(r.error()).find("KVM_SET_USER_MEMORY_REGION2 of slot") != std::string::npos &&
           text(r.error()).find("Bad file descriptor") != std::string::npos;
}

} // namespace

TEST_CASE("kvm_uapi: definitions match the kernel's layout") {
    CHECK(sizeof(kvm_userspace_memory_region2) == 160);
    CHECK(sizeof(kvm_create_guest_memfd) == 64);
    CHECK(KVM_MEM_GUEST_MEMFD == (1UL << 2));
    CHECK(GUEST_MEMFD_FLAG_MMAP == 1);
    CHECK(GUEST_MEMFD_FLAG_INIT_SHARED == 2);
    CHECK(KVM_CREATE_GUEST_MEMFD == _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd));
    CHECK(KVM_SET_USER_MEMORY_REGION2 == _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2));
}

TEST_CASE("errno errors carry the library code and the kernel's text") {
    const error e = errno_error(ENOSPC, 3, "fallocate of pages [%#x, %#x) failed", 3, 4);
    CHECK(e.code() == errc::out_of_memory);
    CHECK(e.page() == 3);
    CHECK(std::string(e.message()) == "fallocate of pages [0x3, 0x4) failed: No space left on device (errno 28)");
    CHECK(errc_from_errno(ENOTTY) == errc::not_supported);
    CHECK(errc_from_errno(EEXIST) == errc::already_bound);
    CHECK(errc_from_errno(EINVAL) == errc::invalid_argument);
}

TEST_CASE("protection_runs: assign coalesces, splits, and counts VMAs") {
    detail::sys::protection_runs r;
    REQUIRE(r.reserve(8));
    CHECK(r.segments(100) == 1);
    r.assign({10, 20}, true);
    CHECK(r.size() == 1);
    CHECK(r.segments(100) == 3);
    CHECK(r.protected_at(10));
    CHECK(r.protected_at(19));
    CHECK_FALSE(r.protected_at(20));
    CHECK_FALSE(r.protected_at(9));
    r.assign({20, 30}, true);  // touching: coalesces
    CHECK(r.size() == 1);
    CHECK(r.begin()->end == 30);
    r.assign({15, 16}, false);  // punch a hole in the middle
    CHECK(r.size() == 2);
    CHECK(r.segments(100) == 5);
    CHECK_FALSE(r.protected_at(15));
    r.assign({0, 100}, true);
    CHECK(r.size() == 1);
    CHECK(r.segments(100) == 1);
    r.assign({0, 50}, false);
    CHECK(r.size() == 1);
    CHECK(r.begin()->begin == 50);
    CHECK(r.segments(100) == 2);
    r.assign({40, 60}, false);
    CHECK(r.size() == 1);
    CHECK(r.begin()->begin == 60);
    r.assign({60, 100}, false);
    CHECK(r.size() == 0);
    CHECK(r.segments(100) == 1);
}

TEST_CASE("memfd_allocator: fallocate, punch hole, zero, errors") {
    auto a = memfd_allocator::create(1024);
    REQUIRE_MESSAGE(a, (a ? "" : std::string(a.error().message())));
    memfd_allocator& alloc = a.value();
    CHECK(alloc.max_order() == order_2m);
    CHECK(alloc.pages() == 1024);

    auto f = alloc.allocate(512, order_2m);
    REQUIRE(f);
    CHECK(f.value() == 512);  // frames are file page offsets
    auto g = alloc.allocate(3, order_4k);
    REQUIRE(g);
    CHECK(g.value() == 3);
    CHECK(alloc.kernel().calls() == 2);

    std::byte* mem = alloc.data();
    std::memset(mem + 512 * page_size, 0xab, 512 * page_size);
    std::memset(mem + 3 * page_size, 0xcd, page_size);

    alloc.zero(600, 600, 2);
    CHECK(all_bytes(mem + 600 * page_size, 2 * page_size, std::byte{0}));
    CHECK(all_bytes(mem + 602 * page_size, page_size, std::byte{0xab}));

    auto order = alloc.real_order(512);
    if (order)
        MESSAGE("memfd 2M folio at page 0x200: kernel really used order " << unsigned{order.value()}
                << " (shmem THP setting: " << memfd_allocator::shmem_thp_setting() << ")");
    else
        MESSAGE("real_order unavailable: " << order.error().message());
    if (order && !memfd_allocator::shmem_thp_possible()) CHECK(order.value() == order_4k);

    alloc.free(512, 512, order_2m);
    CHECK(all_bytes(mem + 512 * page_size, 512 * page_size, std::byte{0}));  // the hole reads back zero
    CHECK(all_bytes(mem + 3 * page_size, page_size, std::byte{0xcd}));
    CHECK(alloc.counters().freed_folios == 1);
    CHECK(alloc.counters().failed_frees == 0);

    auto bad = alloc.allocate(5, order_2m);
    REQUIRE_FALSE(bad);
    CHECK(bad.error() == errc::invalid_range);
    auto past = alloc.allocate(1024, order_4k);
    REQUIRE_FALSE(past);
    CHECK(past.error() == errc::invalid_range);
    CHECK(std::string(past.error().message()).find("ends past") != std::string::npos);
    auto big = alloc.allocate(0, order_1g);
    REQUIRE_FALSE(big);
    CHECK(big.error() == errc::not_supported);

    CHECK(alloc.prepare_split(512, order_2m, order_4k));
    alloc.commit_split(512, order_2m, order_4k);
    alloc.merge(512, order_4k, order_2m);
    CHECK(alloc.counters().splits == 1);
    CHECK(alloc.counters().merges == 1);

    auto too_big = memfd_allocator::create(1024, order_1g);
    REQUIRE_FALSE(too_big);
    CHECK(too_big.error() == errc::not_supported);
}

TEST_CASE("memfd_allocator is move-only and keeps working after a move") {
    auto a = memfd_allocator::create(16, order_4k);
    REQUIRE(a);
    memfd_allocator moved = std::move(a).value();
    REQUIRE(moved.allocate(1, order_4k));
    moved.data()[page_size] = std::byte{1};
    memfd_allocator again;
    again = std::move(moved);
    CHECK(again.data()[page_size] == std::byte{1});
}

TEST_CASE("host_mapping_consumer: guest_only pages fault in a child, shared pages do not") {
    auto a = memfd_allocator::create(64, order_4k);
    REQUIRE(a);
    memfd_allocator& alloc = a.value();
    for (page_index p = 0; p < 64; ++p) REQUIRE(alloc.allocate(p, order_4k));

    host_mapping_consumer view;
    REQUIRE(view.map(alloc.fd(), 0, alloc.bytes()));
    CHECK(view.vmas() == 1);
    std::memset(view.address_of(8), 0x11, page_size);
    CHECK(alloc.data()[8 * page_size] == std::byte{0x11});  // the same memory

    commit_report report;
    REQUIRE(convert_view(view, {8, 12}, invalidation_cause::to_guest_only, report));
    CHECK(report.empty());
    CHECK_FALSE(view.accessible(8));
    CHECK_FALSE(view.accessible(11));
    CHECK(view.accessible(12));
    CHECK(view.vmas() == 3);
    CHECK(touch_in_child(view.address_of(8), false) == touch_outcome::sigsegv);
    CHECK(touch_in_child(view.address_of(11), true) == touch_outcome::sigsegv);
    CHECK(touch_in_child(view.address_of(12), true) == touch_outcome::survived);
    CHECK(touch_in_child(view.address_of(7), false) == touch_outcome::survived);
    CHECK(view.counters().protected_ranges == 1);
    CHECK(view.kernel().calls() == 1);

    // Back to shared: the host may touch it again, contents preserved.
    REQUIRE(convert_view(view, {8, 10}, invalidation_cause::to_shared, report));
    CHECK(view.accessible(8));
    CHECK_FALSE(view.accessible(10));
    CHECK(touch_in_child(view.address_of(9), true) == touch_outcome::survived);
    CHECK(view.address_of(9)[0] == std::byte{0x5a});  // the child's write landed in the shared memory
    CHECK(view.address_of(8)[0] == std::byte{0x11});  // contents survive the round trip
    CHECK(touch_in_child(view.address_of(10), false) == touch_outcome::sigsegv);

    // Abort undoes a prepare without touching anything.
    const invalidation inv = make_inv(view, {20, 21}, invalidation_cause::to_guest_only);
    REQUIRE(view.prepare(inv));
    view.abort(inv);
    CHECK(view.accessible(20));

    // Truncate and release change nothing.
    const invalidation tr = make_inv(view, {10, 12}, invalidation_cause::truncate);
    CHECK(view.prepare(tr));
    view.commit(tr, report);
    CHECK_FALSE(view.accessible(10));

    // Memory failure protects the page.
    view.memory_failure(make_inv(view, {30, 31}, invalidation_cause::memory_failure));
    CHECK_FALSE(view.accessible(30));
    CHECK(touch_in_child(view.address_of(30), false) == touch_outcome::sigsegv);
    CHECK(report.empty());
}

TEST_CASE("host_mapping_consumer: prepare vetoes what commit could not do") {
    auto a = memfd_allocator::create(64, order_4k);
    REQUIRE(a);
    host_mapping_consumer view;
    REQUIRE(view.map(a.value().fd(), 0, a.value().bytes()));
    commit_report report;

    SUBCASE("the VMA budget") {
        view.set_vma_limit(3);
        auto s = convert_view(view, {4, 5}, invalidation_cause::to_guest_only, report);
        REQUIRE(s);  // 1 + 2 <= 3
        CHECK(view.vmas() == 3);
        auto v = convert_view(view, {10, 11}, invalidation_cause::to_guest_only, report);
        REQUIRE_FALSE(v);
        CHECK(v.error() == errc::vetoed);
        CHECK(v.error().page() == 10);
        CHECK(std::string(v.error().message()).find("VMA budget") != std::string::npos);
        CHECK(view.accessible(10));
        CHECK(view.counters().vetoes == 1);
    }
    SUBCASE("targets outside the view") {
        invalidation inv = make_inv(view, {4, 5}, invalidation_cause::to_guest_only);
        inv.target = {inv.target.begin + 1000, inv.target.end + 1000};
        auto v = view.prepare(inv);
        REQUIRE_FALSE(v);
        CHECK(v.error() == errc::vetoed);
        // A commit without a successful prepare cannot protect them: leaked.
        view.commit(inv, report);
        REQUIRE(report.size() == 1);
        CHECK(report.begin()->page == 4);
        CHECK(report.begin()->what == commit_report::kind::leaked);
        CHECK(report.begin()->binding_id == 7);
    }
    SUBCASE("apply sets protection outside a conversion") {
        REQUIRE(view.apply({0, 64}, shareability::guest_only));
        CHECK(view.vmas() == 1);
        CHECK(touch_in_child(view.address_of(63), false) == touch_outcome::sigsegv);
        auto bad = view.apply({60, 70}, shareability::shared);
        REQUIRE_FALSE(bad);
        CHECK(bad.error() == errc::invalid_range);
    }
}

TEST_CASE("memslot::bind refuses, before any ioctl, a slot whose guest_memfd offset or size wraps 64 bits") {
    const int no_vm = -1;
    auto cfg = [](page_range pages) { return memslot_config{1, 0, 5, pages, nullptr}; };

    // guest_memfd_offset = pages.begin * 4 KiB: page 2^52 would reach KVM as offset 0.
    auto offset = memslot::bind(no_vm, cfg({two52, two52 + 1}));
    REQUIRE_FALSE(offset);
    CHECK(offset.error().code() == errc::invalid_range);
    CHECK(offset.error().page() == two52);
    CHECK(text(offset.error()) == "memslot 1: guest_memfd offset of page 0x10000000000000 (page * 4 KiB) overflows 64 bits");
    CHECK(reached_ioctl(memslot::bind(no_vm, cfg({two52 - 2, two52 - 1}))));

    // memory_size = pages * 4 KiB: 2^52 pages would reach KVM as 0, which deletes the slot.
    auto size = memslot::bind(no_vm, cfg({0, two52}));
    REQUIRE_FALSE(size);
    CHECK(size.error().code() == errc::invalid_range);
    CHECK(size.error().page() == 0);
    CHECK(text(size.error()) ==
          "memslot 1: memory size of 0x10000000000000 pages [0, 0x10000000000000) (pages * 4 KiB) overflows 64 bits");
    CHECK(reached_ioctl(memslot::bind(no_vm, cfg({0, two52 - 1}))));

    // The end of the guest_memfd range: begin and size fit, their sum does not.
    auto end = memslot::bind(no_vm, cfg({1, two52}));
    REQUIRE_FALSE(end);
    CHECK(end.error().code() == errc::invalid_range);
    CHECK(end.error().page() == two52);
    CHECK(text(end.error()) == "memslot 1: guest_memfd pages [0x1, 0x10000000000000) end at page 0x10000000000000, "
                               "whose byte offset (page * 4 KiB) overflows 64 bits");
    CHECK(reached_ioctl(memslot::bind(no_vm, cfg({1, two52 - 1}))));

    // Inverted and empty ranges are told apart.
    auto inverted = memslot::bind(no_vm, cfg({0x20, 0x10}));
    REQUIRE_FALSE(inverted);
    CHECK(inverted.error().code() == errc::invalid_range);
    CHECK(inverted.error().page() == 0x20);
    CHECK(text(inverted.error()) == "memslot 1 over pages [0x20, 0x10) is inverted");
    auto empty = memslot::bind(no_vm, cfg({0x20, 0x20}));
    CHECK((!empty && text(empty.error()) == "memslot 1 over pages [0x20, 0x20) is empty"));

    // region() is checked the same way, and fills the byte fields of a config that fits.
    auto bad = memslot::region(cfg({two52, two52 + 1}));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code() == errc::invalid_range);
    auto r = memslot::region({1, 0x100000, 5, {two52 - 2, two52 - 1}, nullptr});
    REQUIRE(r);
    CHECK(r.value().guest_memfd_offset == top_page_byte - 0x1000);
    CHECK(r.value().memory_size == 0x1000);
}

TEST_CASE("memslot::bind refuses, before any ioctl, a slot whose guest physical or host addresses wrap 64 bits") {
    const int no_vm = -1;
    // 16 pages from 2^64 - 16 pages end exactly at 2^64, which KVM's 64-bit sum makes 0.
    auto gpa = memslot::bind(no_vm, {2, top_page_byte - 15 * page_size, 5, {0x100, 0x110}, nullptr});
    REQUIRE_FALSE(gpa);
    CHECK(gpa.error().code() == errc::invalid_range);
    CHECK(gpa.error().page() == 0x110);  // the first page whose address would be 2^64
    CHECK(text(gpa.error()) ==
          "memslot 2: guest physical addresses from 0xffffffffffff0000 for pages [0x100, 0x110) overflow 64 bits at page 0x110");
    CHECK(reached_ioctl(memslot::bind(no_vm, {2, top_page_byte - 16 * page_size, 5, {0x100, 0x110}, nullptr})));
    auto far = memslot::bind(no_vm, {2, top_page_byte, 5, {0x100, 0x110}, nullptr});
    CHECK((!far && far.error().page() == 0x101));

    auto host = memslot::bind(no_vm, {3, 0, 5, {0x100, 0x110}, reinterpret_cast<void*>(top_page_byte - 15 * page_size)});
    REQUIRE_FALSE(host);
    CHECK(host.error().code() == errc::invalid_range);
    CHECK(host.error().page() == 0x110);
    CHECK(text(host.error()) ==
          "memslot 3: host addresses from 0xffffffffffff0000 for pages [0x100, 0x110) overflow 64 bits at page 0x110");
    CHECK(reached_ioctl(
        memslot::bind(no_vm, {3, 0, 5, {0x100, 0x110}, reinterpret_cast<void*>(top_page_byte - 16 * page_size)})));
}

TEST_CASE("memslot::gpa_of answers no_gpa outside the slot instead of wrapping") {
    const memslot none;
    CHECK(none.gpa_of(0) == memslot::no_gpa);
    CHECK(none.gpa_of(two52 - 1) == memslot::no_gpa);
    CHECK(none.gpa_of(two52) == memslot::no_gpa);  // 2^52 * 4 KiB would wrap to GPA 0
    CHECK(none.page_of(0) == no_page);
    CHECK(none.page_of(UINT64_MAX) == no_page);
}

TEST_CASE("shared_mapping::map refuses a file range past the largest file offset before mmap") {
    auto a = memfd_allocator::create(16, order_4k);
    REQUIRE(a);
    const int fd = a.value().fd();
    auto past = detail::sys::shared_mapping::map(fd, two63 - page_size, page_size, "the test file");
    REQUIRE_FALSE(past);
    CHECK(past.error().code() == errc::invalid_argument);
    CHECK(text(past.error()) == "cannot map the test file: offset 0x7ffffffffffff000 + length 0x1000 passes the largest "
                                "file offset 0x7fffffffffffffff");
    auto last = detail::sys::shared_mapping::map(fd, two63 - 2 * page_size, page_size, "the test file");
    CHECK_MESSAGE(last, (last ? "" : text(last.error())));
    // A length whose 2 MiB alignment slack would wrap the reservation's size.
    auto huge = detail::sys::shared_mapping::map(fd, 0, top_page_byte, "the test file");
    CHECK((!huge && text(huge.error()).find("passes the largest file offset") != std::string::npos));
    // The host view goes through the same check.
    host_mapping_consumer view;
    auto v = view.map(fd, two63 - page_size, page_size);
    CHECK((!v && text(v.error()).find("passes the largest file offset") != std::string::npos));
}

TEST_CASE("guest_memfd_allocator::create refuses a size past the largest file size before any ioctl") {
    auto past = guest_memfd_allocator::create(-1, two63);
    REQUIRE_FALSE(past);
    CHECK(past.error().code() == errc::invalid_argument);
    CHECK(text(past.error()) == "guest_memfd size 0x8000000000000000 bytes is past the largest file size 0x7fffffffffffffff");
    CHECK_FALSE(guest_memfd_allocator::create(-1, top_page_byte));
    // The largest size passes the check and reaches the kernel (which has no VM -1).
    auto largest = guest_memfd_allocator::create(-1, two63 - page_size);
    REQUIRE_FALSE(largest);
    CHECK(text(largest.error()).find("KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD) failed") != std::string::npos);
}

TEST_CASE("host_mapping_consumer::attach refuses a view whose end address or object pages wrap 64 bits") {
    // attach only records the view: no address here is touched.
    host_mapping_consumer at_top;
    auto s = at_top.attach(reinterpret_cast<std::byte*>(top_page_byte), page_size, 0);
    REQUIRE_FALSE(s);
    CHECK(s.error().code() == errc::invalid_argument);
    CHECK(text(s.error()) == "host view 0xfffffffffffff000 of 0x1000 bytes: its end address overflows 64 bits");
    host_mapping_consumer below_top;
    REQUIRE(below_top.attach(reinterpret_cast<std::byte*>(top_page_byte - page_size), page_size, 0));
    CHECK(below_top.target_base(0) == (top_page_byte >> 12) - 1);

    auto* some_view = reinterpret_cast<std::byte*>(std::uintptr_t{0x10000});
    host_mapping_consumer past;
    auto p = past.attach(some_view, 2 * page_size, UINT64_MAX - 1);
    REQUIRE_FALSE(p);
    CHECK(p.error().code() == errc::invalid_range);
    CHECK(p.error().page() == UINT64_MAX - 1);
    CHECK(text(p.error()) == "host view of 0x2 pages from object page 0xfffffffffffffffe overflows past 2^64");
    host_mapping_consumer last;
    REQUIRE(last.attach(some_view, 2 * page_size, UINT64_MAX - 2));
    CHECK(last.object_pages() == page_range{UINT64_MAX - 2, UINT64_MAX});
    CHECK(last.address_of(UINT64_MAX - 1) == some_view + page_size);
}

TEST_CASE("host_mapping_consumer: pages outside the view have no address, no target base and no access") {
    auto a = memfd_allocator::create(32, order_4k);
    REQUIRE(a);
    memfd_allocator& alloc = a.value();
    host_mapping_consumer view;
    REQUIRE(view.map(alloc.fd(), 16 * page_size, 16 * page_size));  // object pages [16, 32)
    CHECK(view.object_pages() == page_range{16, 32});
    CHECK(view.address_of(16) == view.data());
    CHECK(view.address_of(31) == view.data() + 15 * page_size);
    CHECK(view.address_of(15) == nullptr);  // 15 - 16 would wrap to a page below the view
    CHECK(view.address_of(32) == nullptr);
    CHECK(view.target_base(16) == reinterpret_cast<std::uintptr_t>(view.data()) / page_size);
    CHECK(view.target_base(15) == no_page);
    CHECK(view.target_base(32) == no_page);

    REQUIRE(view.apply({16, 32}, shareability::guest_only));
    CHECK_FALSE(view.accessible(16));
    CHECK_FALSE(view.accessible(31));
    CHECK_FALSE(view.accessible(15));  // 15 - 16 wrapped to 2^64 - 1, a page no run covers: "accessible"
    CHECK_FALSE(view.accessible(32));
    REQUIRE(view.apply({16, 32}, shareability::shared));
    CHECK(view.accessible(16));
    CHECK_FALSE(view.accessible(15));

    // Binding pages outside the view with their target_base is refused, not
    // translated to a wrapped address.
    guest_memory<memfd_allocator> mem(alloc, {.pages = 32, .initial = shareability::shared, .max_order = order_4k});
    binding<> slot;
    auto b = mem.bind(slot, view, {15, 16}, view.target_base(15));
    REQUIRE_FALSE(b);
    CHECK(b.error().code() == errc::invalid_range);
    CHECK(b.error().page() == 15);
    REQUIRE(mem.bind(slot, view, {16, 32}, view.target_base(16)));
}

TEST_CASE("guest_memfd_allocator and memslot on a real KVM VM") {
    test_vm vm;
    if (!vm) {
        MESSAGE("skipped: " << vm.why_not);
        return;
    }
    auto flags = guest_memfd_supported_flags(vm.vm.get());
    if (!flags || (flags.value() & default_guest_memfd_flags) != default_guest_memfd_flags) {
        MESSAGE("skipped: this kernel's guest_memfd lacks MMAP | INIT_SHARED ("
                << (flags ? std::to_string(flags.value()) : std::string(flags.error().message())) << ")");
        return;
    }
    auto a = guest_memfd_allocator::create(vm.vm.get(), 4 << 20);
    REQUIRE_MESSAGE(a, (a ? "" : std::string(a.error().message())));
    guest_memfd_allocator& alloc = a.value();
    CHECK(alloc.flags() == default_guest_memfd_flags);
    CHECK(alloc.pages() == 1024);

    REQUIRE(alloc.allocate(512, order_2m));
    REQUIRE(alloc.allocate(0, order_4k));
    std::memset(alloc.data() + 512 * page_size, 0x77, 512 * page_size);
    auto order = alloc.real_order(600);
    if (order)
        MESSAGE("guest_memfd 2M folio: kernel really used order " << unsigned{order.value()});
    alloc.free(512, 512, order_2m);
    CHECK(alloc.counters().failed_frees == 0);
    CHECK(all_bytes(alloc.data() + 512 * page_size, 512 * page_size, std::byte{0}));

    // Host view + memslot.
    host_mapping_consumer view;
    REQUIRE(view.map(alloc.fd(), 0, alloc.bytes()));
    auto slot = memslot::bind(vm.vm.get(), {0, 0x100000, alloc.fd(), {0, 1024}, alloc.data()});
    REQUIRE_MESSAGE(slot, (slot ? "" : std::string(slot.error().message())));
    CHECK(slot.value().gpa_of(3) == 0x103000);
    CHECK(slot.value().gpa_of(1023) == 0x4ff000);
    CHECK(slot.value().gpa_of(1024) == memslot::no_gpa);
    CHECK(slot.value().page_of(0x103fff) == 3);
    CHECK(slot.value().page_of(0x4fffff) == 1023);
    CHECK(slot.value().page_of(0x500000) == no_page);
    CHECK(slot.value().page_of(UINT64_MAX) == no_page);
    CHECK(slot.value().page_of(0x50000) == no_page);

    // Overlapping GPA range: the kernel says EEXIST.
    auto clash = memslot::bind(vm.vm.get(), {1, 0x100000, alloc.fd(), {0, 16}, view.data()});
    REQUIRE_FALSE(clash);
    CHECK(clash.error() == errc::already_bound);
    CHECK(std::string(clash.error().message()).find("File exists") != std::string::npos);
    // Not a guest_memfd: EINVAL with the errno text.
    auto notgmem = memslot::bind(vm.vm.get(), {2, 0x10000000, 12345, {0, 16}, view.data()});
    REQUIRE_FALSE(notgmem);
    CHECK(notgmem.error() == errc::invalid_argument);
    CHECK(std::string(notgmem.error().message()).find("KVM_SET_USER_MEMORY_REGION2 of slot 2") != std::string::npos);

    CHECK(slot.value().unbind());
    CHECK_FALSE(slot.value().is_bound());

    // The kernel refuses unknown flags: not_supported with the errno text.
    auto refused = guest_memfd_allocator::create(vm.vm.get(), 1 << 20, order_2m, default_guest_memfd_flags | (1ULL << 40));
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == errc::not_supported);
}

TEST_CASE("guest_memfd_allocator::create on a non-VM fd fails with the errno text") {
    auto a = memfd_allocator::create(16, order_4k);
    REQUIRE(a);
    auto g = guest_memfd_allocator::create(a.value().fd(), 1 << 20);
    REQUIRE_FALSE(g);
    CHECK(g.error() == errc::not_supported);
    CHECK(std::string(g.error().message()).find("errno") != std::string::npos);
}

TEST_CASE("guest_memory over a memfd with a host view: conversions really protect the host") {
    auto a = memfd_allocator::create(1024, order_2m);
    REQUIRE(a);
    memfd_allocator& alloc = a.value();
    guest_memory<memfd_allocator> mem(alloc, {1024, shareability::shared, order_2m});
    host_mapping_consumer view;
    REQUIRE(view.map(alloc.fd(), 0, alloc.bytes()));
    binding<> slot;
    REQUIRE(mem.bind(slot, view, {0, 1024}, view.target_base(0)));
    REQUIRE(mem.allocate({0, 1024}));
    std::memset(view.address_of(0), 0x42, 1024 * page_size);

    // Everything private: the whole view faults, the allocator's data stays.
    REQUIRE(mem.convert({0, 1024}, shareability::guest_only));
    CHECK(touch_in_child(view.address_of(0), false) == touch_outcome::sigsegv);
    CHECK(touch_in_child(view.address_of(1023), true) == touch_outcome::sigsegv);
    CHECK(alloc.data()[5 * page_size] == std::byte{0x42});

    // Share one page of the first 2M folio: only it becomes accessible.
    REQUIRE(mem.convert({16, 17}, shareability::shared));
    CHECK(touch_in_child(view.address_of(16), true) == touch_outcome::survived);
    CHECK(touch_in_child(view.address_of(15), false) == touch_outcome::sigsegv);
    CHECK(touch_in_child(view.address_of(17), false) == touch_outcome::sigsegv);
    CHECK(view.address_of(16)[0] == std::byte{0x5a});  // the child's write, through shared memory
    CHECK(alloc.splits() >= 1);

    // A pin blocks the unshare (busy at that page) and the view is untouched.
    REQUIRE(mem.pin({16, 17}, accessor::device));
    auto busy = mem.convert({16, 17}, shareability::guest_only);
    REQUIRE_FALSE(busy);
    CHECK(busy.error() == errc::busy);
    CHECK(busy.error().page() == 16);
    CHECK(view.accessible(16));
    REQUIRE(mem.unpin({16, 17}));
    REQUIRE(mem.convert({16, 17}, shareability::guest_only));
    CHECK_FALSE(view.accessible(16));
    CHECK(alloc.merges() >= 1);

    // A veto from the view (VMA budget) leaves everything as it was.
    view.set_vma_limit(view.vmas());
    auto vetoed = mem.convert({100, 101}, shareability::shared);
    REQUIRE_FALSE(vetoed);
    CHECK(vetoed.error() == errc::vetoed);
    CHECK(vetoed.error().page() == 100);
    CHECK(mem.shareability_at(100).value() == shareability::guest_only);
    view.set_vma_limit(1000);

    // Memory failure on a shared page: the view protects it.
    REQUIRE(mem.convert({200, 202}, shareability::shared));
    REQUIRE(mem.memory_failure(201));
    CHECK(view.accessible(200));
    CHECK_FALSE(view.accessible(201));
    CHECK(touch_in_child(view.address_of(201), false) == touch_outcome::sigsegv);
    CHECK(view.counters().poisoned_pages == 1);
}
