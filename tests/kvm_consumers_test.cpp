// Tests for the KVM layer's consumers: the memory-attributes consumer
// (kvm/attributes_consumer.hpp) driven through a scripted ioctl, so every
// kernel error at every position is exercised without a confidential-VM
// host, plus its probe on this machine's real KVM; and the discard consumer
// (kvm/discard_consumer.hpp) over real memfds and, where KVM allows, a real
// guest_memfd, showing the discarded pages gone (reads zero, blocks freed).
#ifndef DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#define DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#endif
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <guestmem/kvm/attributes_consumer.hpp>
#include <guestmem/kvm/discard_consumer.hpp>
#include <guestmem/linux/kvm_uapi.hpp>
#include <guestmem/linux/system.hpp>
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/testing/recording_consumer.hpp>
#include <guestmem/testing/scripted_ioctl.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include "support/real_kvm.hpp"

using namespace guestmem;
using namespace guestmem::testing;
using test_support::test_vm;

namespace {

using memory = guest_memory<simulated_allocator>;
constexpr std::uint64_t private_attr = KVM_MEMORY_ATTRIBUTE_PRIVATE;

bool contains(std::string_view haystack, std::string_view needle) { return haystack.find(needle) != std::string_view::npos; }

/// A 64-page object, all shared, allocated in 4K folios.
struct object {
    simulated_allocator alloc{UINT64_MAX, order_4k};
    memory mem{alloc, {64, shareability::shared, order_4k}};
    object() { REQUIRE(mem.allocate({0, 64})); }
};

/// Calls to `request` in the scripted log.
std::vector<scripted_ioctl::call_record> calls_to(const scripted_ioctl& io, unsigned long request) {
    std::vector<scripted_ioctl::call_record> out;
    for (std::size_t i = 0; i < io.calls() && i < scripted_ioctl::capacity; ++i)
        if (io[i].request == request) out.push_back(io[i]);
    return out;
}

} // namespace

// ---- attributes consumer: probe and attach --------------------------------

TEST_CASE("attributes consumer: attach says not_supported when the VM lacks the PRIVATE attribute, and binds nothing") {
    object o;
    scripted_ioctl io(/*KVM_CHECK_EXTENSION answers*/ 0);
    kvm_attributes_consumer kvm(attributes_target::vm, 42, io);
    memory::binding_type slot;
    auto h = kvm.attach(o.mem, slot, {0, 64}, 0x100);
    REQUIRE_FALSE(h);
    CHECK(h.error().code() == errc::not_supported);
    CHECK(contains(h.error().message(), "KVM_CAP_MEMORY_ATTRIBUTES on VM fd 42 reports 0, without PRIVATE (0x8)"));
    CHECK_FALSE(slot.is_bound());
    REQUIRE(io.calls() == 1);
    CHECK(io[0].request == KVM_CHECK_EXTENSION);
    CHECK(io[0].fd == 42);
}

TEST_CASE("attributes consumer: the guest_memfd interface is probed by calling it (ENOTTY: absent, EINVAL: present)") {
    object o;
    memory::binding_type slot;
    scripted_ioctl absent;
    absent.fail_call(1, ENOTTY);
    kvm_attributes_consumer a(attributes_target::guest_memfd, 7, absent);
    auto h = a.attach(o.mem, slot, {0, 64}, 0);
    REQUIRE_FALSE(h);
    CHECK(h.error().code() == errc::not_supported);
    CHECK(contains(h.error().message(), "no KVM_SET_MEMORY_ATTRIBUTES2 on guest_memfd"));
    CHECK(absent[0].request == KVM_SET_MEMORY_ATTRIBUTES2);
    CHECK(absent[0].size == 0);

    scripted_ioctl present;
    present.fail_call(1, EINVAL);  // the kernel refuses the empty range: the ioctl exists
    kvm_attributes_consumer b(attributes_target::guest_memfd, 7, present);
    REQUIRE(b.attach(o.mem, slot, {0, 64}, 0));
    CHECK(slot.prepare_class() == binding_class::irrevocable);

    scripted_ioctl broken;
    broken.fail_call(1, EBADF);
    kvm_attributes_consumer c(attributes_target::guest_memfd, 7, broken);
    memory::binding_type other;
    auto e = c.attach(o.mem, other, {0, 64}, 0);
    REQUIRE_FALSE(e);
    CHECK(e.error().code() == errc::invalid_argument);
    CHECK(contains(e.error().message(), "probing KVM_SET_MEMORY_ATTRIBUTES2 on guest_memfd fd 7 failed"));
}

TEST_CASE("attributes consumer: attach refuses a target whose byte addresses pass 2^64") {
    object o;
    scripted_ioctl io(private_attr);
    kvm_attributes_consumer kvm(attributes_target::vm, 3, io);
    memory::binding_type slot;
    auto h = kvm.attach(o.mem, slot, {0, 64}, (UINT64_MAX >> page_shift) - 10);
    REQUIRE_FALSE(h);
    CHECK(h.error().code() == errc::invalid_range);
    CHECK(h.error().page() == 0);
    CHECK_FALSE(slot.is_bound());
}

TEST_CASE("attributes consumer on a real default VM: not_supported at bind time, said in its message") {
    test_vm v;
    if (!v) {
        MESSAGE("skipped: " << v.why_not);
        return;
    }
    object o;
    kvm_attributes_consumer kvm(attributes_target::vm, v.vm.get());
    memory::binding_type slot;
    auto h = kvm.attach(o.mem, slot, {0, 64}, 0);
    if (h) {
        MESSAGE("this host's default VM supports PRIVATE attributes; the not_supported path is covered by the scripted test");
        return;
    }
    CHECK(h.error().code() == errc::not_supported);
    MESSAGE("real KVM says: " << std::string(h.error().message()));
}

// ---- attributes consumer: conversions -------------------------------------

TEST_CASE("attributes consumer: each conversion sets KVM's attribute over the binding's GPAs") {
    object o;
    scripted_ioctl io(private_attr);
    kvm_attributes_consumer kvm(attributes_target::vm, 9, io);
    memory::binding_type slot;
    REQUIRE(kvm.attach(o.mem, slot, {16, 48}, 0x100000 >> page_shift));  // object page 16 is GPA 1 MiB
    REQUIRE(o.mem.convert({20, 24}, shareability::guest_only));
    REQUIRE(o.mem.convert({10, 30}, shareability::shared));
    auto sets = calls_to(io, KVM_SET_MEMORY_ATTRIBUTES);
    REQUIRE(sets.size() == 2);
    CHECK(sets[0].address == 0x100000 + 4 * page_size);
    CHECK(sets[0].size == 4 * page_size);
    CHECK(sets[0].attributes == private_attr);
    CHECK(sets[1].address == 0x100000);  // clipped to the binding: object pages [16, 30)
    CHECK(sets[1].size == 14 * page_size);
    CHECK(sets[1].attributes == 0);
    CHECK(kvm.stats().sets == 2);
    // Truncation and memory failure leave KVM's attributes alone.
    REQUIRE(o.mem.punch_hole({20, 21}));
    REQUIRE(o.mem.memory_failure(30));
    CHECK(calls_to(io, KVM_SET_MEMORY_ATTRIBUTES).size() == 2);
}

TEST_CASE("attributes consumer prepares after every ordinary consumer, so their veto never reaches KVM") {
    object o;
    scripted_ioctl io(private_attr);
    kvm_attributes_consumer kvm(attributes_target::vm, 9, io);
    call_journal journal;
    recording_consumer stage2("stage2", &journal);
    memory::binding_type kslot, sslot;
    REQUIRE(kvm.attach(o.mem, kslot, {0, 64}, 0));  // first in binding order, yet prepares last
    REQUIRE(o.mem.bind(sslot, stage2, {0, 64}, 0));
    stage2.veto_at(5);
    auto r = o.mem.convert({0, 8}, shareability::guest_only);
    REQUIRE_FALSE(r);
    CHECK(r.error().binding_id() == sslot.id());
    CHECK(calls_to(io, KVM_SET_MEMORY_ATTRIBUTES).empty());
    CHECK(o.mem.shareability_at(0).value() == shareability::shared);
}

TEST_CASE("attributes consumer: every kernel error becomes a named code at its page, and every earlier consumer aborts") {
    struct row {
        int err;
        errc code;
        const char* text;
    };
    const row rows[] = {{EAGAIN, errc::busy, "(private): EAGAIN at page"},
                        {ENOMEM, errc::out_of_memory, "(private): ENOMEM at page"},
                        {EINVAL, errc::invalid_argument, "(private): EINVAL at page"},
                        {EFAULT, errc::invalid_argument, "(private): EFAULT at page"}};
    for (const row& x : rows) {
        for (const attributes_target where : {attributes_target::vm, attributes_target::guest_memfd}) {
            CAPTURE(x.err);
            CAPTURE(static_cast<int>(where));
            object o;
            scripted_ioctl io(private_attr);
            if (where == attributes_target::guest_memfd) io.fail_call(1, EINVAL);  // the probe: present
            kvm_attributes_consumer kvm(where, 9, io);
            call_journal journal;
            recording_consumer stage2("stage2", &journal);
            memory::binding_type kslot, sslot;
            // Object pages [8, 40) are guest_memfd pages [108, 140) (or GFNs from 108).
            REQUIRE(kvm.attach(o.mem, kslot, {8, 40}, 108));
            REQUIRE(o.mem.bind(sslot, stage2, {0, 64}, 0));
            const std::uint64_t before = io.calls();
            // The kernel names page 12 of the range (file page 112, object page 12) where it can.
            io.fail_call(1, x.err, 112 * page_size);
            const auto vetoes = o.mem.stats().vetoes;
            auto r = o.mem.convert({10, 20}, shareability::guest_only);
            REQUIRE_FALSE(r);
            CHECK(r.error().code() == errc::vetoed);
            CHECK(r.error().binding_id() == kslot.id());
            INFO(std::string(r.error().message()));
            CHECK(contains(r.error().message(), to_string(x.code)));
            CHECK(contains(r.error().message(), x.text));
            const bool names_page = x.err == EAGAIN && where == attributes_target::guest_memfd;
            CHECK(r.error().page() == (names_page ? 12u : 10u));
            // EAGAIN at file page 112 on the guest_memfd: the kernel changed [110, 112), which is set back.
            CHECK(io.calls() == before + (names_page ? 2 : 1));
            if (names_page) {
                CHECK(io[before + 1].address == 110 * page_size);
                CHECK(io[before + 1].size == 2 * page_size);
                CHECK(io[before + 1].attributes == 0);
            }
            // stage2 prepared first, then was aborted: nothing changed.
            REQUIRE(journal.size() == 2);
            CHECK(journal[0].kind == call_kind::prepare);
            CHECK(journal[1].kind == call_kind::abort);
            CHECK(o.mem.stats().vetoes == vetoes + 1);
            for (page_index p = 10; p < 20; ++p) CHECK(o.mem.shareability_at(p).value() == shareability::shared);
            CHECK(kvm.stats().refusals == 1);
            // The kernel's own error, as the consumer returns it, carries the code itself.
            invalidation inv;
            inv.pages = {10, 20};
            inv.target = {110, 120};
            inv.cause = invalidation_cause::to_guest_only;
            inv.vetoable = true;
            io.fail_call(1, x.err, 115 * page_size);
            auto own = kvm.prepare(inv);
            REQUIRE_FALSE(own);
            CHECK(own.error().code() == x.code);
            CHECK(own.error().page() == (names_page ? 15u : 10u));
        }
    }
}

TEST_CASE("attributes consumer: with two slots, the second slot's refusal sets the first slot's attributes back") {
    object o;
    scripted_ioctl io(private_attr);
    kvm_attributes_consumer kvm(attributes_target::vm, 9, io);
    memory::binding_type low, high;
    REQUIRE(kvm.attach(o.mem, low, {0, 32}, 0));        // slot 0: GFN 0
    REQUIRE(kvm.attach(o.mem, high, {32, 64}, 0x1000));  // slot 1: GFN 0x1000
    const std::uint64_t base = io.calls();

    SUBCASE("the undo succeeds") {
        io.fail_call(2, ENOMEM);
        auto r = o.mem.convert({30, 34}, shareability::guest_only);
        REQUIRE_FALSE(r);
        CHECK(r.error().binding_id() == high.id());
        REQUIRE(io.calls() == base + 3);
        CHECK(io[base].attributes == private_attr);      // slot 0 set private
        CHECK(io[base + 1].address == 0x1000 * page_size);  // slot 1 refused
        CHECK(io[base + 2].address == 30 * page_size);   // slot 0 set back to shared
        CHECK(io[base + 2].attributes == 0);
        CHECK(kvm.stats().undos == 1);
        CHECK(kvm.stats().undo_failures == 0);
    }
    SUBCASE("the undo fails too: counted, the conversion still refused") {
        io.fail_from(2, EIO);
        auto r = o.mem.convert({30, 34}, shareability::guest_only);
        REQUIRE_FALSE(r);
        CHECK(kvm.stats().undo_failures == 1);
        CHECK(o.mem.shareability_at(30).value() == shareability::shared);
    }
}

// ---- discard consumer -----------------------------------------------------

namespace {

/// A 64-page memfd filled with byte `fill`.
unique_fd filled_memfd(const char* name, unsigned char fill) {
    unique_fd fd{::memfd_create(name, MFD_CLOEXEC)};
    REQUIRE(fd);
    REQUIRE(::ftruncate(fd.get(), 64 * page_size) == 0);
    std::vector<unsigned char> page(page_size, fill);
    for (page_index p = 0; p < 64; ++p)
        REQUIRE(::pwrite(fd.get(), page.data(), page_size, static_cast<off_t>(p * page_size)) == static_cast<ssize_t>(page_size));
    return fd;
}

/// True if every byte of file page `p` reads `value`.
bool page_reads(int fd, page_index p, unsigned char value) {
    std::vector<unsigned char> page(page_size);
    if (::pread(fd, page.data(), page_size, static_cast<off_t>(p * page_size)) != static_cast<ssize_t>(page_size)) return false;
    for (unsigned char b : page)
        if (b != value) return false;
    return true;
}

/// 4 KiB pages of the file that hold blocks.
std::uint64_t charged_pages(int fd) {
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    return static_cast<std::uint64_t>(st.st_blocks) * 512 / page_size;
}

} // namespace

TEST_CASE("discard: to_guest_only punches the shared backing, to_shared the private one; the pages read zero, their blocks are freed") {
    object o;
    unique_fd shared = filled_memfd("shared", 0xaa), priv = filled_memfd("private", 0xbb);
    // Object pages [0, 64) are shared-backing pages [0, 64) and private-backing pages [0, 64).
    discard_consumer d({shared.get(), 0, priv.get(), 0});
    memory::binding_type slot;
    REQUIRE(d.attach(o.mem, slot, {0, 64}));
    REQUIRE(charged_pages(shared.get()) == 64);

    REQUIRE(o.mem.convert({8, 16}, shareability::guest_only));
    for (page_index p = 8; p < 16; ++p) CHECK(page_reads(shared.get(), p, 0));
    CHECK(page_reads(shared.get(), 7, 0xaa));
    CHECK(page_reads(shared.get(), 16, 0xaa));
    CHECK(charged_pages(shared.get()) == 56);
    CHECK(charged_pages(priv.get()) == 64);  // the private side keeps the guest's pages

    REQUIRE(o.mem.convert({8, 12}, shareability::shared));
    for (page_index p = 8; p < 12; ++p) CHECK(page_reads(priv.get(), p, 0));
    CHECK(page_reads(priv.get(), 12, 0xbb));
    CHECK(charged_pages(priv.get()) == 60);
    CHECK(d.stats().shared_punches == 1);
    CHECK(d.stats().shared_pages == 8);
    CHECK(d.stats().private_punches == 1);
    CHECK(d.stats().private_pages == 4);
    CHECK(d.stats().failures == 0);
}

TEST_CASE("discard: file pages follow the binding, clipped to it") {
    object o;
    unique_fd shared = filled_memfd("shared", 1), priv = filled_memfd("private", 2);
    discard_consumer d({shared.get(), 40, priv.get(), 4});  // object page 32 -> shared 40, private 4
    memory::binding_type slot;
    REQUIRE(d.attach(o.mem, slot, {32, 48}));
    REQUIRE(o.mem.convert({30, 34}, shareability::guest_only));  // only [32, 34) is bound
    CHECK(page_reads(shared.get(), 40, 0));
    CHECK(page_reads(shared.get(), 41, 0));
    CHECK(page_reads(shared.get(), 42, 1));
    CHECK(page_reads(shared.get(), 39, 1));
    REQUIRE(o.mem.convert({33, 34}, shareability::shared));
    CHECK(page_reads(priv.get(), 5, 0));
    CHECK(page_reads(priv.get(), 4, 2));
}

TEST_CASE("discard: a vetoed conversion discards nothing; truncation discards both sides") {
    object o;
    unique_fd shared = filled_memfd("shared", 3), priv = filled_memfd("private", 4);
    discard_consumer d({shared.get(), 0, priv.get(), 0});
    recording_consumer stage2("stage2");
    memory::binding_type dslot, sslot;
    REQUIRE(d.attach(o.mem, dslot, {0, 64}));
    REQUIRE(o.mem.bind(sslot, stage2, {0, 64}, 0));
    stage2.veto_at(2);
    REQUIRE_FALSE(o.mem.convert({0, 4}, shareability::guest_only));
    CHECK(page_reads(shared.get(), 0, 3));
    CHECK(charged_pages(shared.get()) == 64);
    stage2.clear_vetoes();
    REQUIRE(o.mem.punch_hole({60, 64}));
    CHECK(page_reads(shared.get(), 60, 0));
    CHECK(page_reads(priv.get(), 63, 0));
    CHECK(charged_pages(shared.get()) == 60);
    CHECK(charged_pages(priv.get()) == 60);
}

TEST_CASE("discard: a punch the kernel refuses is counted and named; the conversion still happens") {
    object o;
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    unique_fd r{pipe_fds[0]}, w{pipe_fds[1]};
    discard_consumer d({w.get(), 0, -1, 0});
    memory::binding_type slot;
    REQUIRE(d.attach(o.mem, slot, {0, 64}));
    REQUIRE(o.mem.convert({4, 6}, shareability::guest_only));
    CHECK(o.mem.shareability_at(4).value() == shareability::guest_only);
    CHECK(d.stats().failures == 1);
    REQUIRE(d.last_failure());
    CHECK(d.last_failure()->page() == 4);
    CHECK(contains(d.last_failure()->message(), "discarding the shared backing of object pages [0x4, 0x6)"));
    REQUIRE(o.mem.convert({4, 6}, shareability::shared));  // private_fd -1: nothing to punch
    CHECK(d.stats().failures == 1);
    CHECK(d.stats().private_punches == 0);
}

TEST_CASE("discard: attach refuses a second binding and a file range past 2^63 bytes") {
    object o;
    discard_consumer d({-1, 0, -1, 0});
    memory::binding_type a, b;
    REQUIRE(d.attach(o.mem, a, {0, 8}));
    auto again = d.attach(o.mem, b, {8, 16});
    REQUIRE_FALSE(again);
    CHECK(again.error().code() == errc::already_bound);
    CHECK_FALSE(b.is_bound());
    discard_consumer far({-1, (std::uint64_t{1} << 51) - 4, -1, 0});
    auto past = far.attach(o.mem, b, {0, 8});
    REQUIRE_FALSE(past);
    CHECK(past.error().code() == errc::invalid_range);
    CHECK_FALSE(b.is_bound());
}

TEST_CASE("discard over a real guest_memfd: to_shared frees the private pages (not resident, read zero)") {
    test_vm v;
    if (!v) {
        MESSAGE("skipped: " << v.why_not);
        return;
    }
    kvm_create_guest_memfd g{};
    g.size = 64 * page_size;
    g.flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;  // mappable, so the test can look inside
    unique_fd gmem{::ioctl(v.vm.get(), KVM_CREATE_GUEST_MEMFD, &g)};
    if (!gmem) {
        MESSAGE("skipped: KVM_CREATE_GUEST_MEMFD with MMAP | INIT_SHARED failed: " << std::strerror(errno));
        return;
    }
    auto* view = static_cast<unsigned char*>(::mmap(nullptr, 64 * page_size, PROT_READ | PROT_WRITE, MAP_SHARED, gmem.get(), 0));
    REQUIRE(view != MAP_FAILED);
    std::memset(view, 0x5a, 64 * page_size);
    object o;
    REQUIRE(o.mem.convert({0, 64}, shareability::guest_only));
    discard_consumer d({-1, 0, gmem.get(), 0});
    memory::binding_type slot;
    REQUIRE(d.attach(o.mem, slot, {0, 64}));
    REQUIRE(o.mem.convert({16, 24}, shareability::shared));
    unsigned char resident[64] = {};
    REQUIRE(::mincore(view, 64 * page_size, resident) == 0);
    for (page_index p = 16; p < 24; ++p) CHECK((resident[p] & 1) == 0);
    CHECK((resident[15] & 1) == 1);
    CHECK((resident[24] & 1) == 1);
    CHECK(view[16 * page_size] == 0);
    CHECK(view[15 * page_size] == 0x5a);
    CHECK(d.stats().private_pages == 8);
    ::munmap(view, 64 * page_size);
}

TEST_CASE("attributes consumer on a real software-protected VM (type 1) sets KVM's attributes, where the host allows it") {
    test_vm v;
    if (!v) {
        MESSAGE("skipped: " << v.why_not);
        return;
    }
    constexpr unsigned long sw_protected_vm = 1;  // KVM_X86_SW_PROTECTED_VM
    const int fd = ::ioctl(v.kvm.get(), KVM_CREATE_VM, sw_protected_vm);
    const std::string why = fd < 0 ? std::strerror(errno) : "";
    unique_fd vm{fd};
    if (!vm) {
        const int types = ::ioctl(v.kvm.get(), KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES);
        MESSAGE("skipped: KVM_CREATE_VM(KVM_X86_SW_PROTECTED_VM) refused here: " << why << " (KVM_CAP_VM_TYPES = "
                                                                                << types << ")");
        return;
    }
    object o;
    kvm_attributes_consumer kvm(attributes_target::vm, vm.get());
    memory::binding_type slot;
    auto h = kvm.attach(o.mem, slot, {0, 64}, 0);
    if (!h) {
        MESSAGE("skipped: type-1 VM created but " << std::string(h.error().message()));
        CHECK(h.error().code() == errc::not_supported);
        return;
    }
    REQUIRE(o.mem.convert({0, 8}, shareability::guest_only));
    CHECK(kvm.stats().sets == 1);
    REQUIRE(o.mem.convert({0, 8}, shareability::shared));
    CHECK(kvm.stats().sets == 2);
}
