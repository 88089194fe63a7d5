/// @file
/// KVM's side of the memory attributes, as a test sees it: a
/// scripted_ioctl observer that applies every attribute call the script
/// answered with success to a per-page model of what KVM holds (one per
/// fd), and, when told the kernel makes partial progress, the part
/// [offset, error_offset) of a call refused with EAGAIN. verify_in_step
/// compares that model with an object's shareability runs over a binding:
/// the check the differential fuzzer runs after every round, and what a
/// real KVM cannot be asked (it has no get-attributes ioctl).
///
/// Costs: O(pages) per call applied, O(pages) per check. Allocates (a
/// std::map of private pages): test code only. Not thread-safe.
#pragma once

#include <cinttypes>
#include <cstdint>
#include <map>
#include <utility>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/testing/scripted_ioctl.hpp>

namespace guestmem::testing {

/// A page-by-page model of the attributes KVM holds, kept up to date from
/// the attribute ioctls a scripted_ioctl answered, for tests to compare
/// with an object's shareability (verify_in_step).
class kvm_attribute_model final : public scripted_ioctl::observer {
public:
    /// With `partial_progress`, an EAGAIN whose error_offset lies inside the
    /// range counts as the kernel having changed [offset, error_offset).
    explicit kvm_attribute_model(bool partial_progress = false) noexcept : partial_(partial_progress) {}

    /// Apply an answered call (see the file description).
    void answered(const scripted_ioctl::call_record& rec) noexcept override {
        std::uint64_t end = rec.address + rec.size;
        if (rec.result < 0) {
            if (!partial_ || rec.result != -EAGAIN || rec.request != KVM_SET_MEMORY_ATTRIBUTES2) return;
            if (rec.error_offset <= rec.address || rec.error_offset >= end) return;
            end = rec.error_offset;
        }
        for (std::uint64_t p = rec.address / page_size; p < end / page_size; ++p) {
            if (rec.attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE) private_[{rec.fd, p}] = true;
            else private_.erase({rec.fd, p});
        }
    }
    /// Start KVM's view of `fd` with target pages `t` private.
    void set_private(int fd, page_range t) {
        for (std::uint64_t p = t.begin; p < t.end; ++p) private_[{fd, p}] = true;
    }
    /// Whether KVM holds target page `p` of `fd` private.
    [[nodiscard]] bool is_private(int fd, std::uint64_t p) const { return private_.count({fd, p}) != 0; }

    /// Whether KVM's view of `fd` over the binding of object pages `pages`
    /// at `target_base` matches `mem`'s shareability, page by page: ok, or
    /// errc::retry at the first object page that differs.
    template <class Memory>
    [[nodiscard]] status verify_in_step(const Memory& mem, int fd, page_range pages, std::uint64_t target_base) const {
        for (page_index p = pages.begin; p < pages.end; ++p) {
            const bool object_private = mem.shareability_at(p).value() == shareability::guest_only;
            const bool kvm_private = is_private(fd, target_base + (p - pages.begin));
            if (object_private != kvm_private)
                return error::make(errc::retry, p,
                                   "object page %#" PRIx64 " is %s but KVM holds target page %#" PRIx64 " %s", p,
                                   object_private ? "guest_only" : "shared", target_base + (p - pages.begin),
                                   kvm_private ? "private" : "shared");
        }
        return ok();
    }

private:
    bool partial_;
    std::map<std::pair<int, std::uint64_t>, bool> private_;
};

} // namespace guestmem::testing
