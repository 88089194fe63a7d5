/// @file
/// A consumer that keeps KVM's own private/shared view in step with the
/// object: every conversion sets KVM's PRIVATE memory attribute over the
/// pages (to_guest_only) or clears it (to_shared), so KVM maps each page
/// from guest_memfd or from the shared backing as the object says.
///
/// Two kernel interfaces, picked at construction (attributes_target):
/// - `vm`: KVM_SET_MEMORY_ATTRIBUTES on the VM fd, over guest physical
///   addresses. Bind it over a memslot's object pages with target_base =
///   the slot's first GFN (GPA >> 12). Supported where KVM_CAP_MEMORY_ATTRIBUTES
///   reports KVM_MEMORY_ATTRIBUTE_PRIVATE (confidential and
///   KVM_X86_SW_PROTECTED_VM VMs; a default VM reports 0).
/// - `guest_memfd`: KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd fd, over
///   file offsets (the in-place conversion series). Bind it with
///   target_base = the guest_memfd page of the binding's first object page.
///   Probed by calling it on an empty range (ENOTTY: absent).
///
/// Ordering. The ioctl runs in prepare, because it can fail (ENOMEM; EAGAIN
/// when the kernel finds a page with unexpected references), and it is the
/// one step of a round that cannot be undone cheaply: bind it with
/// `attach`, which binds it as binding_class::irrevocable, so it prepares
/// after every vetoable consumer has prepared. If the kernel refuses, the
/// round aborts every earlier consumer and nothing changed; if an earlier
/// consumer vetoes, the ioctl never ran. commit has nothing left to do.
/// abort (only reached when a later irrevocable binding vetoes, or the
/// owner aborts a prepared round) sets the attributes back, best effort: a
/// failure there is counted (counters::undo_failures), since abort cannot
/// fail.
///
/// Kernel errors come back as the consumer's veto with the page: EAGAIN ->
/// busy at the page the kernel names (error_offset; the first page for the
/// VM ioctl, which names none), ENOMEM -> out_of_memory, EINVAL and EFAULT
/// -> invalid_argument, ENOTTY/EOPNOTSUPP -> not_supported, each with the
/// errno's name ("KVM_SET_MEMORY_ATTRIBUTES2(private): EAGAIN at page 0xc"). guest_memory::convert then returns errc::vetoed at that
/// page with this binding's id, the consumer's code in the message
/// ("... (busy)"), as for any consumer's refusal.
///
/// Non-vetoable causes (truncate, release, memory_failure) leave KVM's
/// attributes alone: truncation does not change them in KVM either.
///
/// Cost: one ioctl per binding per conversion, plus a virtual call.
/// A default VM (type 0) reports no attributes: only confidential VM types
/// and KVM_X86_SW_PROTECTED_VM have them.
///
/// Locking: its callbacks run under the object's exclusive lock; probe and
/// attach take the object's lock through bind(). Linux only.
#pragma once

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/kvm/ioctl.hpp>
#include <guestmem/linux/kvm_uapi.hpp>
#include <guestmem/linux/system.hpp>
#include <guestmem/notifier/binding.hpp>
#include <guestmem/notifier/consumer.hpp>

namespace guestmem {

/// Which kernel interface a kvm_attributes_consumer drives.
enum class attributes_target : std::uint8_t {
    vm,           ///< KVM_SET_MEMORY_ATTRIBUTES on the VM fd; targets are GFNs
    guest_memfd,  ///< KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd fd; targets are file pages
};

/// Sets or clears KVM_MEMORY_ATTRIBUTE_PRIVATE over the pages of every
/// committed conversion (the file comment has the two kernel interfaces
/// and the errors); attach() binds it as binding_class::irrevocable, so it prepares
/// after every other consumer.
class kvm_attributes_consumer final : public consumer {
public:
    /// What the consumer counts (read under the object's lock).
    struct counters {
        std::uint64_t sets = 0;           ///< attribute ioctls that succeeded in prepare
        std::uint64_t refusals = 0;       ///< attribute ioctls the kernel refused (each a veto)
        std::uint64_t undos = 0;          ///< aborts that set the attributes back
        std::uint64_t undo_failures = 0;  ///< of those, ioctls that failed (the attributes may be stale)
    };

    /// A consumer over `fd` (a VM fd for attributes_target::vm, a
    /// guest_memfd fd for attributes_target::guest_memfd; not owned), making
    /// its calls through `io` (the real ioctl by default; a test double to
    /// inject kernel errors). Makes no call: probe() or attach() does.
    kvm_attributes_consumer(attributes_target where, int fd, kvm_ioctl& io = system_kvm_ioctl()) noexcept
        : where_(where), fd_(fd), io_(io) {}

    /// Ask the kernel whether it supports the PRIVATE attribute through
    /// this interface. Errors: not_supported, saying what the kernel
    /// reported (the VM's KVM_CAP_MEMORY_ATTRIBUTES mask lacks PRIVATE, or
    /// the guest_memfd ioctl is absent); another errno from the probe, mapped
    /// by errc_from_errno; invalid_argument for an unknown target. One ioctl.
    [[nodiscard]] status probe() noexcept {
        if (where_ == attributes_target::vm) {
            const long mask = io_.call(fd_, KVM_CHECK_EXTENSION, reinterpret_cast<void*>(long{KVM_CAP_MEMORY_ATTRIBUTES}));
            if (mask < 0)
                return errno_error(static_cast<int>(-mask), no_page,
                                   "KVM_CHECK_EXTENSION(KVM_CAP_MEMORY_ATTRIBUTES) on VM fd %d failed", fd_);
            if ((static_cast<unsigned long>(mask) & KVM_MEMORY_ATTRIBUTE_PRIVATE) == 0)
                return error::make(errc::not_supported, no_page,
                                   "KVM_CAP_MEMORY_ATTRIBUTES on VM fd %d reports %#lx, without PRIVATE (%#llx): this VM "
                                   "type keeps no private/shared attributes",
                                   fd_, static_cast<unsigned long>(mask),
                                   static_cast<unsigned long long>(KVM_MEMORY_ATTRIBUTE_PRIVATE));
            probed_ = true;
            return ok();
        }
        if (where_ != attributes_target::guest_memfd)
            return error::make(errc::invalid_argument, no_page, "unknown attributes target %d", static_cast<int>(where_));
        kvm_memory_attributes2 empty{};  // size 0: a kernel that has the ioctl refuses it with EINVAL
        const long r = io_.call(fd_, KVM_SET_MEMORY_ATTRIBUTES2, &empty);
        if (r == -ENOTTY || r == -EOPNOTSUPP || r == -ENOSYS)
            return errno_error_as(errc::not_supported, static_cast<int>(-r), no_page,
                                  "this kernel has no KVM_SET_MEMORY_ATTRIBUTES2 on guest_memfd (in-place conversion)");
        if (r < 0 && r != -EINVAL)
            return errno_error(static_cast<int>(-r), no_page, "probing KVM_SET_MEMORY_ATTRIBUTES2 on guest_memfd fd %d failed",
                               fd_);
        probed_ = true;
        return ok();
    }

    /// Probe (once), then bind this consumer to `mem` over object `pages`,
    /// translated to `target_base` (the first GFN for the VM interface, the
    /// first guest_memfd page for the guest_memfd one), as an irrevocable
    /// binding so it prepares after every vetoable consumer. Errors:
    /// probe()'s (not_supported where the kernel lacks the capability: said
    /// here, at bind time, never silently); invalid_range when the target's
    /// byte addresses (target * 4 KiB) would pass 2^64; bind()'s.
    template <class Memory>
    [[nodiscard]] result<binding_handle> attach(Memory& mem, typename Memory::binding_type& slot, page_range pages,
                                                std::uint64_t target_base) {
        if (!probed_)
            if (auto s = probe(); !s) return s.error();
        if (pages.begin < pages.end && (target_base > last_byte_page || pages.size() > last_byte_page + 1 - target_base))
            return error::make(errc::invalid_range, pages.begin,
                               "attributes binding of pages [%#" PRIx64 ", %#" PRIx64 ") at target page %#" PRIx64
                               ": its byte addresses (page * 4 KiB) pass 2^64",
                               pages.begin, pages.end, target_base);
        return mem.bind(slot, *this, pages, target_base, binding_class::irrevocable);
    }

    /// Set the attributes for a conversion (PRIVATE for to_guest_only,
    /// none for to_shared) over inv.target; the kernel's refusal is the veto
    /// (see the file description). Non-vetoable causes: ok, no call.
    status prepare(const invalidation& inv) override {
        if (!inv.vetoable) return ok();
        const bool to_private = inv.cause == invalidation_cause::to_guest_only;
        if (auto s = set(inv, to_private); !s) {
            ++counters_.refusals;
            return s;
        }
        ++counters_.sets;
        return ok();
    }
    /// Nothing left to do: prepare made the change.
    void commit(const invalidation&, commit_report&) noexcept override {}
    /// Set the attributes back (best effort; see counters::undo_failures).
    void abort(const invalidation& inv) noexcept override {
        if (!inv.vetoable) return;
        ++counters_.undos;
        const bool was_private = inv.cause == invalidation_cause::to_shared;  // what it was before the round
        if (!set(inv, was_private)) ++counters_.undo_failures;
    }
    /// KVM's attributes are unchanged by a memory failure.
    void memory_failure(const invalidation&) noexcept override {}
    /// "kvm-attributes".
    std::string_view name() const noexcept override { return "kvm-attributes"; }

    /// The counters. O(1).
    [[nodiscard]] counters stats() const noexcept { return counters_; }
    /// The interface this consumer drives.
    [[nodiscard]] attributes_target target() const noexcept { return where_; }

private:
    /// The last page whose byte address (page * 4 KiB) fits in 64 bits.
    static constexpr std::uint64_t last_byte_page = UINT64_MAX >> page_shift;

    status set(const invalidation& inv, bool to_private) noexcept {
        const std::uint64_t attrs = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
        const std::uint64_t addr = inv.target.begin * page_size, bytes = inv.target.size() * page_size;
        long r = 0;
        std::uint64_t error_offset = UINT64_MAX;
        if (where_ == attributes_target::vm) {
            kvm_memory_attributes a{};
            a.address = addr;
            a.size = bytes;
            a.attributes = attrs;
            r = io_.call(fd_, KVM_SET_MEMORY_ATTRIBUTES, &a);
        } else {
            kvm_memory_attributes2 a{};
            a.offset = addr;
            a.size = bytes;
            a.attributes = attrs;
            a.error_offset = UINT64_MAX;
            r = io_.call(fd_, KVM_SET_MEMORY_ATTRIBUTES2, &a);
            error_offset = a.error_offset;
        }
        if (r >= 0) return ok();
        const int err = static_cast<int>(-r);
        // The object page the kernel names (EAGAIN with an error offset inside the range), else the first.
        page_index page = inv.pages.begin;
        if (err == EAGAIN && error_offset != UINT64_MAX && error_offset / page_size >= inv.target.begin &&
            error_offset / page_size < inv.target.end)
            page = inv.pages.begin + (error_offset / page_size - inv.target.begin);
        // Short: the notifier wraps it in the veto's own text, and an error's message is bounded.
        const char* what = where_ == attributes_target::vm ? "KVM_SET_MEMORY_ATTRIBUTES" : "KVM_SET_MEMORY_ATTRIBUTES2";
        const char* name = strerrorname_np(err);
        return error::make(code_of(err), page, "%s(%s): %s at page %#" PRIx64, what, to_private ? "private" : "shared",
                           name ? name : "unknown errno", page);
    }

    /// The errc for a kernel error here: the named cases of the file
    /// description, then errc_from_errno.
    static constexpr errc code_of(int err) noexcept {
        switch (err) {
        case EAGAIN: return errc::busy;
        case ENOMEM: return errc::out_of_memory;
        case EINVAL:
        case EFAULT: return errc::invalid_argument;
        default: return errc_from_errno(err);
        }
    }

    attributes_target where_;
    int fd_;
    kvm_ioctl& io_;
    bool probed_ = false;
    counters counters_{};
};

} // namespace guestmem
