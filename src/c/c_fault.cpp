// src/c/c_fault.cpp — guestmem_fault (include/guestmem/c/guestmem.h), the
// C ABI's hottest read path. guestmem_fault tests the handle and jumps to
// the object's own instantiation (fault_of<A>, stored in the handle by
// object<A>): the arguments checked once, one inlined C++ fault, the
// copy-out. Every refusal is worded out of line by fault_slow, which runs
// the fault again (caveat: if a conversion made the page mappable in
// between, the caller gets that answer instead of the refusal - both are
// what some instant during the call saw).
// In a file of its own so that CMakeLists.txt can build it without GCC's
// IPA-CP: with it, GCC made an out-of-line clone of Outcome's
// error-converting constructor, every error path of the inlined fault
// called it with the result's address, and the result then lived on the
// stack (~14 instructions a fault under callgrind).
// Cost: O(log runs + log folios), as guest_memory::fault; about 12
// instructions more than the fault inlined into a C++ caller.
#include "c_object.hpp"

using namespace guestmem;
using namespace guestmem::c_abi;

namespace {

/// `v` is a shareability / accessor guestmem knows. Compared as the
/// uint32_t the caller passed (so a value past 255 never wraps onto one),
/// in a form GCC folds into one comparison and that lets the C++ fault's own
/// checks of the narrowed value fold away.
constexpr bool valid_shareability(uint32_t v) noexcept {
    return v == uint32_t(shareability::shared) || v == uint32_t(shareability::guest_only);
}
constexpr bool valid_accessor(uint32_t v) noexcept {
    return v == uint32_t(accessor::host) || v == uint32_t(accessor::hypervisor) || v == uint32_t(accessor::device) ||
           v == uint32_t(accessor::trusted_device);
}
static_assert(valid_shareability(GUESTMEM_SHARED) && valid_shareability(GUESTMEM_GUEST_ONLY) && !valid_shareability(2) &&
              !valid_shareability(0x100));
static_assert(valid_accessor(GUESTMEM_HOST) && valid_accessor(GUESTMEM_TRUSTED_DEVICE) && !valid_accessor(4) &&
              !valid_accessor(0x103));

/// guestmem_fault with everything checked and every refusal built: what
/// the hot path hands over to when an argument is wrong or its fault was
/// refused (the fault then runs again and reports what it finds: the same
/// refusal, or an answer if a conversion made the page mappable meanwhile).
[[gnu::cold, gnu::noinline]] int32_t fault_slow(const guestmem_memory* mem, uint64_t page, uint32_t wanted,
                                               uint32_t who, guestmem_fault_result* out, guestmem_error* err) {
    if (mem == nullptr)
        return fail(err, errc::invalid_argument, no_page, "the guestmem_memory handle is NULL");
    if (int32_t rc = check_output(out, "out", err)) return rc;
    // A value past uint8_t must not wrap onto a valid enumerator: the C++
    // side refuses 0xff by value.
    const auto w = wanted > 0xff ? static_cast<shareability>(0xff) : static_cast<shareability>(wanted);
    const auto a = who > 0xff ? static_cast<accessor>(0xff) : static_cast<accessor>(who);
    return visit(mem, [&](const auto& g, const auto&) {
        auto r = g.fault(page, w, a);
        if (!r) return put(err, r.error());
        write_fault_result(r.value(), out);
        return succeed(err);
    });
}

} // namespace


namespace guestmem::c_abi {

// Flattened: left to itself GCC calls the fault out of line. The arguments
// are checked here once (the C++ checks of `wanted` and `who` then fold
// away); the hot path never reads the C++ error, so the fault's answer stays
// in registers.
template <class A>
[[gnu::flatten]] int32_t fault_of(const guestmem_memory* mem, uint64_t page, uint32_t wanted, uint32_t who,
                                  guestmem_fault_result* out, guestmem_error* err) noexcept {
    // Four branches, not one: GCC merges || into setcc/or chains that cost more.
    if (out == nullptr) [[unlikely]]
        return fault_slow(mem, page, wanted, who, out, err);
    if (out->size < sizeof *out) [[unlikely]]
        return fault_slow(mem, page, wanted, who, out, err);
    if (!valid_shareability(wanted)) [[unlikely]]
        return fault_slow(mem, page, wanted, who, out, err);
    if (!valid_accessor(who)) [[unlikely]]
        return fault_slow(mem, page, wanted, who, out, err);
    const auto r = static_cast<const object<A>*>(mem)->mem.try_fault(page, static_cast<shareability>(wanted),
                                                                      static_cast<accessor>(who));
    if (!r) [[unlikely]]
        return fault_slow(mem, page, wanted, who, out, err);
    write_fault_result(*r, out);
    if (err != nullptr) [[unlikely]]
        return succeed(err);
    return GUESTMEM_OK;
}

template int32_t fault_of<simulated_allocator>(const guestmem_memory*, uint64_t, uint32_t, uint32_t,
                                               guestmem_fault_result*, guestmem_error*) noexcept;
template int32_t fault_of<memfd_allocator>(const guestmem_memory*, uint64_t, uint32_t, uint32_t,
                                           guestmem_fault_result*, guestmem_error*) noexcept;
template int32_t fault_of<guest_memfd_allocator>(const guestmem_memory*, uint64_t, uint32_t, uint32_t,
                                                 guestmem_fault_result*, guestmem_error*) noexcept;

} // namespace guestmem::c_abi

extern "C" {

// The object's own instantiation (fault_of<A>), reached by a tail jump.
int32_t guestmem_fault(const guestmem_memory* mem, uint64_t page, uint32_t wanted, uint32_t who,
                       guestmem_fault_result* out, guestmem_error* err) {
    if (mem == nullptr) [[unlikely]]
        return fault_slow(mem, page, wanted, who, out, err);
    return mem->fault(mem, page, wanted, who, out, err);
}

} // extern "C"
