// tests/kvm_attributes_test.cpp — the attributes consumer
// (kvm/attributes_consumer.hpp) over mixed ranges, partial progress and
// content modes, with KVM's side kept by testing::kvm_attribute_model over
// the scripted ioctl: an aborted round over a mixed range leaves KVM in
// step with the object page by page; the undo after partial progress
// covers exactly what the kernel changed, at every point; a failed undo is
// what verify_in_step reports; the content flags reach the kernel and a
// mode it cannot honour is refused at attach with its answer.
#ifndef DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#define DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#endif
#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

#include <guestmem/kvm/attributes_consumer.hpp>
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/testing/kvm_attribute_model.hpp>
#include <guestmem/testing/recording_consumer.hpp>
#include <guestmem/testing/scripted_ioctl.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

using namespace guestmem;
using namespace guestmem::testing;

// A namespace of its own: test_kvm is one unity build, and the other kvm
// test files define helpers of the same names.
namespace kvm_attributes_test {
namespace {

using memory = guest_memory<simulated_allocator>;
constexpr std::uint64_t private_attr = KVM_MEMORY_ATTRIBUTE_PRIVATE;
constexpr int fd = 9;

bool contains(std::string_view haystack, std::string_view needle) { return haystack.find(needle) != std::string_view::npos; }

/// A 64-page object, all shared, in 4K folios; KVM's side modelled; the
/// attributes consumer bound over all of it at target page 0; a recording
/// consumer bound irrevocable after it (so it prepares after KVM's ioctl
/// and its veto aborts a round KVM already saw).
struct rig {
    simulated_allocator alloc{UINT64_MAX, order_4k};
    memory mem{alloc, {64, shareability::shared, order_4k}};
    scripted_ioctl io{private_attr};
    kvm_attribute_model kvm_side;
    kvm_attributes_consumer kvm;
    recording_consumer late{"late"};
    memory::binding_type kslot, lslot;
    explicit rig(attributes_target where = attributes_target::vm, bool partial = false,
                 attributes_content content = attributes_content::unspecified)
        : kvm_side(partial), kvm(where, fd, content, io) {
        REQUIRE(mem.allocate({0, 64}));
        io.observe(&kvm_side);
        if (where == attributes_target::guest_memfd && content == attributes_content::zero)
            io.fail_call(2, EOPNOTSUPP);  // the zero probe: understood
        REQUIRE(kvm.attach(mem, kslot, {0, 64}, 0));
        REQUIRE(mem.bind(lslot, late, {0, 64}, 0, binding_class::irrevocable));
    }
    void in_step() {
        auto s = kvm_side.verify_in_step(mem, fd, {0, 64}, 0);
        INFO(std::string(s ? std::string_view("ok") : s.error().message()));
        CHECK(s);
        CHECK(kvm.verify_in_step({0, 64}));
    }
};

} // namespace

TEST_CASE("an aborted round over a mixed range leaves KVM's attributes as the object holds them, run by run") {
    for (const attributes_target where : {attributes_target::vm, attributes_target::guest_memfd}) {
        CAPTURE(static_cast<int>(where));
        rig r(where);
        REQUIRE(r.mem.convert({0, 8}, shareability::guest_only));  // [0, 8) private, [8, 16) shared
        r.in_step();
        const std::uint64_t before = r.io.calls();
        r.late.veto_at(3);
        auto s = r.mem.convert({0, 16}, shareability::guest_only);
        REQUIRE_FALSE(s);
        CHECK(s.error().binding_id() == r.lslot.id());
        // The set over [0, 16), then one undo per run: [0, 8) private, [8, 16) shared.
        REQUIRE(r.io.calls() == before + 3);
        CHECK(r.io[before + 1].address == 0);
        CHECK(r.io[before + 1].size == 8 * page_size);
        CHECK(r.io[before + 1].attributes == private_attr);
        CHECK(r.io[before + 2].address == 8 * page_size);
        CHECK(r.io[before + 2].size == 8 * page_size);
        CHECK(r.io[before + 2].attributes == 0);
        r.in_step();
        // The pages the guest asks for again are a no-op for the object; KVM still agrees.
        r.late.veto_at(no_page);
        REQUIRE(r.mem.convert({0, 8}, shareability::guest_only));
        r.in_step();
        CHECK(r.kvm_side.is_private(fd, 0));
        // The same the other way: [0, 8) private, [8, 16) shared, to shared over [0, 16), vetoed.
        r.late.veto_at(12);
        REQUIRE_FALSE(r.mem.convert({0, 16}, shareability::shared));
        r.in_step();
        CHECK(r.kvm.stats().undo_failures == 0);
    }
}

TEST_CASE("after partial progress the undo covers exactly the pages the kernel changed, at every point of the range") {
    for (std::uint64_t stop = 0; stop <= 16; ++stop) {
        CAPTURE(stop);
        rig r(attributes_target::guest_memfd, /*partial=*/true);
        REQUIRE(r.mem.convert({4, 8}, shareability::guest_only));  // mixed: [0,4) shared, [4,8) private, [8,16) shared
        const std::uint64_t before = r.io.calls();
        // The kernel changed [0, stop) and stopped there (stop 16: past the range, names no page).
        r.io.fail_call(1, EAGAIN, stop * page_size);
        auto s = r.mem.convert({0, 16}, shareability::guest_only);
        REQUIRE_FALSE(s);
        CHECK(s.error().code() == errc::vetoed);
        CHECK(s.error().page() == (stop < 16 ? stop : 0));
        r.in_step();
        // The undo calls cover [0, stop) and nothing else, one per run of the object.
        std::uint64_t covered = 0;
        for (std::uint64_t i = before + 1; i < r.io.calls(); ++i) {
            CHECK(r.io[i].address == covered * page_size);
            covered += r.io[i].size / page_size;
            const bool was_private = r.io[i].address >= 4 * page_size && r.io[i].address < 8 * page_size;
            CHECK(r.io[i].attributes == (was_private ? private_attr : 0));
        }
        CHECK(covered == (stop < 16 ? stop : 0));
        CHECK(r.kvm.stats().partial_undos == (stop > 0 && stop < 16 ? 1u : 0u));
    }
}

TEST_CASE("a failed undo is what verify_in_step reports, at the first stale target page, until cleared") {
    rig r;
    REQUIRE(r.mem.convert({0, 8}, shareability::guest_only));
    r.late.veto_at(9);
    r.io.fail_call(3, EIO);  // the set and the undo of [0, 8) succeed; the undo of [8, 16) (to shared) fails
    REQUIRE_FALSE(r.mem.convert({0, 16}, shareability::guest_only));
    CHECK(r.kvm.stats().undo_failures == 1);
    CHECK(r.kvm.stale() == page_range{8, 16});
    auto v = r.kvm.verify_in_step({4, 32});
    REQUIRE_FALSE(v);
    CHECK(v.error().code() == errc::retry);
    CHECK(v.error().page() == 8);
    CHECK(contains(v.error().message(), "1 undo(s) failed"));
    CHECK(r.kvm.verify_in_step({0, 8}));
    CHECK(r.kvm.verify_in_step({16, 64}));
    // KVM's side really is stale there: the model agrees with the consumer's record.
    CHECK_FALSE(r.kvm_side.verify_in_step(r.mem, fd, {8, 16}, 8));
    CHECK(r.kvm_side.verify_in_step(r.mem, fd, {0, 8}, 0));
    CHECK(r.kvm_side.verify_in_step(r.mem, fd, {16, 64}, 16));
    r.kvm.clear_stale();
    CHECK(r.kvm.verify_in_step({0, 64}));
}

TEST_CASE("a binding made with bind() directly has no runs to read: its undo falls back and is reported stale") {
    simulated_allocator alloc{UINT64_MAX, order_4k};
    memory mem{alloc, {64, shareability::shared, order_4k}};
    REQUIRE(mem.allocate({0, 64}));
    scripted_ioctl io{private_attr};
    kvm_attributes_consumer kvm(attributes_target::vm, fd, io);
    recording_consumer late("late");
    memory::binding_type kslot, lslot;
    REQUIRE(mem.bind(kslot, kvm, {0, 64}, 0, binding_class::irrevocable));
    REQUIRE(mem.bind(lslot, late, {0, 64}, 0, binding_class::irrevocable));
    late.veto_at(1);
    REQUIRE_FALSE(mem.convert({0, 4}, shareability::guest_only));
    CHECK(kvm.stale() == page_range{0, 4});
    CHECK_FALSE(kvm.verify_in_step({0, 64}));
}

TEST_CASE("the content mode reaches KVM_SET_MEMORY_ATTRIBUTES2: PRESERVE both ways, ZERO to shared only, undo never zeroes") {
    struct row {
        attributes_content content;
        std::uint64_t to_private, to_shared, undo;
    };
    const row rows[] = {
        {attributes_content::unspecified, 0, 0, 0},
        {attributes_content::preserve, KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE, KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE,
         KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE},
        {attributes_content::zero, 0, KVM_SET_MEMORY_ATTRIBUTES2_ZERO, 0},
    };
    for (const row& x : rows) {
        CAPTURE(static_cast<int>(x.content));
        rig r(attributes_target::guest_memfd, false, x.content);
        std::uint64_t n = r.io.calls();
        REQUIRE(r.mem.convert({0, 8}, shareability::guest_only));
        CHECK(r.io[n].flags == x.to_private);
        n = r.io.calls();
        REQUIRE(r.mem.convert({0, 4}, shareability::shared));
        CHECK(r.io[n].flags == x.to_shared);
        r.late.veto_at(2);
        n = r.io.calls();
        REQUIRE_FALSE(r.mem.convert({0, 8}, shareability::shared));
        REQUIRE(r.io.calls() == n + 3);  // the set, then the undo of [0, 4) shared and [4, 8) private
        CHECK(r.io[n + 1].flags == x.undo);
        CHECK(r.io[n + 2].flags == x.undo);
        r.in_step();
    }
}

TEST_CASE("attach asks the kernel for the content mode by calling it, and refuses what it cannot honour with its answer") {
    struct row {
        attributes_content content;
        int answer;  // the content probe's errno, 0 for success
        bool accepted;
        errc code;
        const char* text;
    };
    const row rows[] = {
        {attributes_content::preserve, 0, true, errc::not_supported, ""},
        {attributes_content::preserve, EOPNOTSUPP, false, errc::not_supported, "PRESERVE at file page 0x20: EOPNOTSUPP (this VM cannot honour it)"},
        {attributes_content::preserve, EINVAL, false, errc::not_supported, "PRESERVE at file page 0x20: EINVAL (this kernel has no content flags)"},
        {attributes_content::preserve, EIO, false, errc::invalid_argument, "probing KVM_SET_MEMORY_ATTRIBUTES2 with PRESERVE"},
        {attributes_content::zero, EOPNOTSUPP, true, errc::not_supported, ""},
        {attributes_content::zero, EINVAL, false, errc::not_supported, "ZERO at file page 0x20: EINVAL (this kernel has no content flags)"},
        {attributes_content::zero, 0, true, errc::not_supported, ""},
    };
    for (const row& x : rows) {
        CAPTURE(static_cast<int>(x.content));
        CAPTURE(x.answer);
        simulated_allocator alloc{UINT64_MAX, order_4k};
        memory mem{alloc, {64, shareability::shared, order_4k}};
        REQUIRE(mem.convert({8, 9}, shareability::guest_only));
        scripted_ioctl io{private_attr};
        kvm_attributes_consumer kvm(attributes_target::guest_memfd, fd, x.content, io);
        if (x.answer != 0) io.fail_call(2, x.answer);  // call 1: the ioctl's probe; call 2: the content probe
        memory::binding_type slot;
        auto h = kvm.attach(mem, slot, {8, 16}, 0x20);
        const std::uint64_t code_of_eio = static_cast<std::uint64_t>(errc_from_errno(EIO));
        (void)code_of_eio;
        REQUIRE(io.calls() >= 2);
        CHECK(io[1].address == 0x20 * page_size);
        CHECK(io[1].size == page_size);
        if (x.content == attributes_content::preserve) {
            CHECK(io[1].flags == KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE);
            CHECK(io[1].attributes == private_attr);  // what the object holds at page 8: no conversion
        } else {
            CHECK(io[1].flags == KVM_SET_MEMORY_ATTRIBUTES2_ZERO);
            CHECK(io[1].attributes == private_attr);  // ZERO to private: refused by design, changes nothing
        }
        CHECK(bool(h) == x.accepted);
        if (!x.accepted) {
            INFO(std::string(h.error().message()));
            if (x.answer == EIO) CHECK(h.error().code() == errc_from_errno(EIO));
            else CHECK(h.error().code() == x.code);
            CHECK(contains(h.error().message(), x.text));
            CHECK(h.error().page() == 8);
            CHECK(mem.stats().bindings == 0);
        }
    }
}

TEST_CASE("a kernel that zeroes to private after all gets the probed page set back at once") {
    simulated_allocator alloc{UINT64_MAX, order_4k};
    memory mem{alloc, {64, shareability::shared, order_4k}};
    scripted_ioctl io{private_attr};
    kvm_attributes_consumer kvm(attributes_target::guest_memfd, fd, attributes_content::zero, io);
    memory::binding_type slot;
    REQUIRE(kvm.attach(mem, slot, {0, 64}, 0));
    REQUIRE(io.calls() == 3);
    CHECK(io[2].attributes == 0);  // page 0 is shared in the object: set back
    CHECK(io[2].flags == 0);
}

TEST_CASE("content flags on the VM ioctl are refused at attach: KVM_SET_MEMORY_ATTRIBUTES has none") {
    simulated_allocator alloc{UINT64_MAX, order_4k};
    memory mem{alloc, {64, shareability::shared, order_4k}};
    scripted_ioctl io{private_attr};
    kvm_attributes_consumer kvm(attributes_target::vm, fd, attributes_content::preserve, io);
    memory::binding_type slot;
    auto h = kvm.attach(mem, slot, {0, 64}, 0);
    REQUIRE_FALSE(h);
    CHECK(h.error().code() == errc::not_supported);
    CHECK(contains(h.error().message(), "takes no content flags"));
    CHECK(io.calls() == 1);  // the capability only
    CHECK(content_of(content_policy::zero) == attributes_content::zero);
    CHECK(content_of(content_policy::preserve) == attributes_content::preserve);
}

TEST_CASE("a content mode the kernel refuses during a conversion is a veto with the kernel's errno, and KVM stays in step") {
    struct row {
        int err;
        errc code;
        const char* name;
    };
    const row rows[] = {{EOPNOTSUPP, errc::not_supported, "EOPNOTSUPP"},
                        {ENOTTY, errc::not_supported, "ENOTTY"},
                        {EIO, errc_from_errno(EIO), "EIO"},
                        {EINVAL, errc::invalid_argument, "EINVAL"}};
    for (const row& x : rows) {
        CAPTURE(x.err);
        rig r(attributes_target::guest_memfd, /*partial=*/true, attributes_content::preserve);
        r.io.fail_call(1, x.err, 3 * page_size);  // only EAGAIN's error_offset means progress
        auto s = r.mem.convert({0, 8}, shareability::guest_only);
        REQUIRE_FALSE(s);
        CHECK(s.error().code() == errc::vetoed);
        CHECK(s.error().binding_id() == r.kslot.id());
        CHECK(s.error().page() == 0);
        INFO(std::string(s.error().message()));
        CHECK(contains(s.error().message(), x.name));
        CHECK(contains(s.error().message(), to_string(x.code)));
        CHECK(r.kvm.stats().partial_undos == 0);
        r.in_step();
    }
}

} // namespace kvm_attributes_test
