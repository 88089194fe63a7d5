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
/// Mixed ranges. A round's range may hold both kinds of page ([0,8)
/// private, [8,16) shared, converted to guest_only as one range). abort
/// therefore restores KVM's attributes run by run from the object's own
/// shareability runs (the truth: abort runs before anything in the object
/// changed), one ioctl per run, never the whole range to the opposite of the
/// target. Where the kernel reports partial progress (EAGAIN with an
/// error_offset inside the range: [offset, error_offset) was changed), the
/// consumer's own undo covers exactly that part, run by run. The object's
/// runs come through the binding made by attach(); a binding made with
/// bind() directly has none, and its undo falls back to the opposite of
/// the target, correct for a uniform range only (counted in stale()).
///
/// In step. KVM has no ioctl that reads attributes back (neither on the VM
/// nor on a guest_memfd), so verify_in_step() checks the consumer's own
/// record of what it told KVM: every call succeeded except those it counts
/// in undo_failures, whose pages it remembers (stale()). A test checks
/// KVM's side with testing::kvm_attribute_model over the scripted ioctl.
///
/// Content (guest_memfd target only, KVM_SET_MEMORY_ATTRIBUTES2 flags of the
/// in-place conversion series): attributes_content::preserve passes
/// PRESERVE both ways; attributes_content::zero passes ZERO to shared and
/// nothing to private (the series never zeroes to private: the object zeroes
/// those pages itself); unspecified passes 0. attach() asks the kernel
/// first, by calling it, and refuses with not_supported and the kernel's
/// answer (see probe_content). Undo calls pass PRESERVE under preserve and 0
/// otherwise: an undo must not zero pages that kept their shareability.
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

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <type_traits>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/kvm/ioctl.hpp>
#include <guestmem/linux/kvm_uapi.hpp>
#include <guestmem/linux/system.hpp>
#include <guestmem/memory/config.hpp>
#include <guestmem/notifier/binding.hpp>
#include <guestmem/notifier/consumer.hpp>

namespace guestmem {

/// Which kernel interface a kvm_attributes_consumer drives.
enum class attributes_target : std::uint8_t {
    vm,           ///< KVM_SET_MEMORY_ATTRIBUTES on the VM fd; targets are GFNs
    guest_memfd,  ///< KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd fd; targets are file pages
};

/// What a kvm_attributes_consumer asks KVM to do with the contents of the
/// pages it converts (KVM_SET_MEMORY_ATTRIBUTES2's content flags).
enum class attributes_content : std::uint8_t {
    unspecified,  ///< flags 0: KVM promises nothing (the only choice for the VM ioctl)
    preserve,     ///< KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE both ways (content_policy::preserve)
    zero,         ///< KVM_SET_MEMORY_ATTRIBUTES2_ZERO to shared (content_policy::zero)
};

/// The attributes_content matching an object's content_policy.
[[nodiscard]] constexpr attributes_content content_of(content_policy c) noexcept {
    return c == content_policy::zero ? attributes_content::zero : attributes_content::preserve;
}

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
        std::uint64_t partial_undos = 0;  ///< refusals after partial progress whose changed part was set back
    };
    /// Bindings one consumer can read the object's runs for (attach refuses more).
    static constexpr std::size_t max_bindings = 64;

    /// A consumer over `fd` (a VM fd for attributes_target::vm, a
    /// guest_memfd fd for attributes_target::guest_memfd; not owned), making
    /// its calls through `io` (the real ioctl by default; a test double to
    /// inject kernel errors). Makes no call: probe() or attach() does.
    kvm_attributes_consumer(attributes_target where, int fd, kvm_ioctl& io = system_kvm_ioctl()) noexcept
        : where_(where), fd_(fd), io_(io) {}
    /// The same, asking KVM for `content` on every conversion (guest_memfd
    /// target only; attach refuses it on the VM target).
    kvm_attributes_consumer(attributes_target where, int fd, attributes_content content,
                            kvm_ioctl& io = system_kvm_ioctl()) noexcept
        : where_(where), fd_(fd), io_(io), content_(content) {}

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
        if (content_ != attributes_content::unspecified)
            if (auto s = probe_content(mem, pages, target_base); !s) return s.error();
        std::size_t free_entry = max_bindings;
        for (std::size_t i = 0; i < max_bindings && free_entry == max_bindings; ++i)
            if (readers_[i].mem == nullptr) free_entry = i;
        if (free_entry == max_bindings)
            return error::make(errc::not_supported, pages.begin,
                               "a kvm_attributes_consumer reads the runs of at most %zu bindings", max_bindings);
        auto h = mem.bind(slot, *this, pages, target_base, binding_class::irrevocable);
        if (h) readers_[free_entry] = {h.value().id, &mem, &each_run_of<Memory>};
        return h;
    }

    /// Ask the kernel whether it honours this consumer's content mode, by
    /// calling it over the binding's first page (`pages`.begin at
    /// `target_base`): for preserve, a set to the attribute the object holds
    /// there, with PRESERVE (no conversion where KVM agrees with the object;
    /// else it brings that page in step); for zero, a set to PRIVATE with
    /// ZERO, which a kernel with content flags refuses with EOPNOTSUPP before
    /// changing anything (it never zeroes to private) and one without them
    /// refuses with EINVAL (unknown flag); should a kernel accept it, the
    /// page is set back at once. Errors: not_supported with the kernel's
    /// answer (content flags on the VM ioctl; EINVAL: no content flags;
    /// EOPNOTSUPP: not for this VM type), or the probe's other errno mapped
    /// by errc_from_errno; shareability_at's. Lock: the object's, shared,
    /// for the first page's shareability. Cost: one or two ioctls.
    /// Allocates: nothing.
    template <class Memory>
    [[nodiscard]] status probe_content(const Memory& mem, page_range pages, std::uint64_t target_base) noexcept {
        if (content_ == attributes_content::unspecified) return ok();
        if (where_ == attributes_target::vm)
            return error::make(errc::not_supported, pages.begin,
                               "KVM_SET_MEMORY_ATTRIBUTES (VM fd %d) takes no content flags: %s needs the guest_memfd "
                               "target (KVM_SET_MEMORY_ATTRIBUTES2)",
                               fd_, content_name(content_));
        auto held = mem.shareability_at(pages.begin);
        if (!held) return held.error();
        const bool is_private = held.value() == shareability::guest_only;
        const bool zero = content_ == attributes_content::zero;
        kvm_memory_attributes2 a{};
        a.offset = target_base * page_size;
        a.size = page_size;
        a.attributes = zero || is_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
        a.flags = zero ? KVM_SET_MEMORY_ATTRIBUTES2_ZERO : KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE;
        const long r = io_.call(fd_, KVM_SET_MEMORY_ATTRIBUTES2, &a);
        if (zero && r == -EOPNOTSUPP) return ok();  // understood, and refused to private as designed
        if (zero && r >= 0 && !is_private) {        // a kernel that zeroes to private: set the page back
            kvm_memory_attributes2 back{};
            back.offset = a.offset;
            back.size = page_size;
            (void)io_.call(fd_, KVM_SET_MEMORY_ATTRIBUTES2, &back);
        }
        if (r >= 0) return ok();
        const int err = static_cast<int>(-r);
        const char* name = strerrorname_np(err);
        if (err == EINVAL || err == EOPNOTSUPP)
            return error::make(errc::not_supported, pages.begin,
                               "KVM_SET_MEMORY_ATTRIBUTES2 with %s at file page %#" PRIx64 ": %s (%s)",
                               content_name(content_), target_base, name ? name : "unknown errno",
                               err == EINVAL ? "this kernel has no content flags" : "this VM cannot honour it");
        return error::make(errc_from_errno(err), pages.begin,
                           "probing KVM_SET_MEMORY_ATTRIBUTES2 with %s at file page %#" PRIx64 ": %s",
                           content_name(content_), target_base, name ? name : "unknown errno");
    }

    /// Set the attributes for a conversion (PRIVATE for to_guest_only,
    /// none for to_shared) over inv.target; the kernel's refusal is the veto
    /// (see the file description). After partial progress (EAGAIN with an
    /// error_offset inside the range) the changed part is set back, run by
    /// run, before the veto is returned. Non-vetoable causes: ok, no call
    /// (a release forgets the binding's reader).
    status prepare(const invalidation& inv) override {
        if (!inv.vetoable) {
            if (inv.cause == invalidation_cause::release) forget(inv.binding_id);
            return ok();
        }
        const bool to_private = inv.cause == invalidation_cause::to_guest_only;
        std::uint64_t changed_end = inv.target.begin;  // the kernel's progress when it refuses
        if (auto s = set(inv, inv.target, to_private, content_flags(to_private), &changed_end); !s) {
            ++counters_.refusals;
            if (changed_end > inv.target.begin) {
                ++counters_.partial_undos;
                restore(inv, {inv.target.begin, changed_end});
            }
            return s;
        }
        ++counters_.sets;
        return ok();
    }
    /// Nothing left to do: prepare made the change.
    void commit(const invalidation&, commit_report&) noexcept override {}
    /// Set KVM's attributes back to what the object holds, run by run (best
    /// effort; see counters::undo_failures and stale()).
    void abort(const invalidation& inv) noexcept override {
        if (!inv.vetoable) return;
        ++counters_.undos;
        restore(inv, inv.target);
    }
    /// KVM's attributes are unchanged by a memory failure.
    void memory_failure(const invalidation&) noexcept override {}
    /// "kvm-attributes".
    std::string_view name() const noexcept override { return "kvm-attributes"; }

    /// The counters. O(1).
    [[nodiscard]] counters stats() const noexcept { return counters_; }
    /// The interface this consumer drives.
    [[nodiscard]] attributes_target target() const noexcept { return where_; }
    /// The content mode it asks KVM for.
    [[nodiscard]] attributes_content content() const noexcept { return content_; }

    /// The target pages (GFNs or guest_memfd pages) where KVM's attributes
    /// may differ from the object's: the hull of every range whose undo
    /// failed or fell back to a whole-range undo, empty if none. Lock: as
    /// verify_in_step. Cost: O(1).
    [[nodiscard]] page_range stale() const noexcept { return stale_; }

    /// Whether KVM holds, over target pages `target`, what this consumer
    /// last told it without a failure: ok, or errc::retry at the first
    /// stale target page with the cause (an undo the kernel refused, or a
    /// binding without the object's runs). This is the consumer's own
    /// record (KVM cannot be asked: it has no get-attributes ioctl); call it
    /// after a round the VMM doubts, e.g. once undo_failures moved.
    /// Errors: retry (above). Lock: none of its own (read it under the
    /// object's lock, or while no round runs). Cost: O(1). Allocates: nothing.
    [[nodiscard]] status verify_in_step(page_range target) const noexcept {
        const page_range bad = target.intersect(stale_);
        if (bad.empty()) return ok();
        return error::make(errc::retry, bad.begin,
                           "KVM's attributes over target pages [%#" PRIx64 ", %#" PRIx64 ") may be stale from page %#" PRIx64
                           ": %" PRIu64 " undo(s) failed and %" PRIu64 " fell back to a whole-range undo",
                           target.begin, target.end, bad.begin, counters_.undo_failures, fallbacks_);
    }
    /// Forget the stale record (after the VMM set KVM's attributes over it
    /// again itself). Lock: as verify_in_step. Cost: O(1).
    void clear_stale() noexcept { stale_ = {}; }

private:
    /// The last page whose byte address (page * 4 KiB) fits in 64 bits.
    static constexpr std::uint64_t last_byte_page = UINT64_MAX >> page_shift;

    /// The object's runs over a range, through the binding's object.
    using run_fn = void (*)(void* context, page_range pages, shareability value);
    struct reader {
        std::uint64_t binding_id = 0;
        const void* mem = nullptr;
        void (*each_run)(const void* mem, page_range pages, void* context, run_fn fn) = nullptr;
    };
    template <class Memory>
    static void each_run_of(const void* mem, page_range pages, void* context, run_fn fn) {
        // Callbacks run under the object's exclusive lock already.
        auto runs = static_cast<const Memory*>(mem)->runs_in_callback(pages);
        if (!runs) return;
        for (const auto& run : runs.value()) fn(context, run.range, run.value);
    }
    const reader* reader_of(std::uint64_t binding_id) const noexcept {
        for (const reader& r : readers_)
            if (r.mem != nullptr && r.binding_id == binding_id) return &r;
        return nullptr;
    }
    void forget(std::uint64_t binding_id) noexcept {
        for (reader& r : readers_)
            if (r.mem != nullptr && r.binding_id == binding_id) r = reader{};
    }

    /// Set KVM's attributes over target pages `part` (inside inv.target) back
    /// to what the object holds there, one ioctl per run; without a reader,
    /// the whole part to the opposite of the round's target.
    void restore(const invalidation& inv, page_range part) noexcept {
        const reader* rd = reader_of(inv.binding_id);
        const std::uint64_t flags = content_ == attributes_content::preserve ? KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE : 0;
        if (rd == nullptr) {
            ++fallbacks_;
            mark_stale(part);
            if (!set(inv, part, inv.cause == invalidation_cause::to_shared, flags, nullptr)) ++counters_.undo_failures;
            return;
        }
        struct walk {
            kvm_attributes_consumer* self;
            const invalidation* inv;
            std::uint64_t flags;
        } w{this, &inv, flags};
        const page_range object_part{inv.pages.begin + (part.begin - inv.target.begin),
                                     inv.pages.begin + (part.end - inv.target.begin)};
        rd->each_run(rd->mem, object_part, &w, [](void* context, page_range run, shareability value) {
            auto& x = *static_cast<walk*>(context);
            const page_range t{x.inv->target.begin + (run.begin - x.inv->pages.begin),
                               x.inv->target.begin + (run.end - x.inv->pages.begin)};
            if (!x.self->set(*x.inv, t, value == shareability::guest_only, x.flags, nullptr)) {
                ++x.self->counters_.undo_failures;
                x.self->mark_stale(t);
            }
        });
    }
    void mark_stale(page_range t) noexcept {
        if (t.empty()) return;
        stale_ = stale_.empty() ? t : page_range{std::min(stale_.begin, t.begin), std::max(stale_.end, t.end)};
    }

    /// The content flags of a forward call (file description).
    std::uint64_t content_flags(bool to_private) const noexcept {
        if (where_ != attributes_target::guest_memfd) return 0;
        if (content_ == attributes_content::preserve) return KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE;
        if (content_ == attributes_content::zero && !to_private) return KVM_SET_MEMORY_ATTRIBUTES2_ZERO;
        return 0;
    }
    static const char* content_name(attributes_content c) noexcept {
        return c == attributes_content::preserve ? "PRESERVE" : c == attributes_content::zero ? "ZERO" : "no content flag";
    }

    /// One attribute ioctl over target pages `t` (inside inv.target). On a
    /// refusal with partial progress, `*changed_end` (when given) is the
    /// target page the kernel stopped at.
    status set(const invalidation& inv, page_range t, bool to_private, std::uint64_t flags,
               std::uint64_t* changed_end) noexcept {
        const std::uint64_t attrs = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
        const std::uint64_t addr = t.begin * page_size, bytes = t.size() * page_size;
        long r = 0;
        std::uint64_t error_offset = UINT64_MAX;
        if (where_ == attributes_target::vm) {
            kvm_memory_attributes a{};
            a.address = addr;
            a.size = bytes;
            a.attributes = attrs;
            r = io_.call(fd_, KVM_SET_MEMORY_ATTRIBUTES, &a);
        } else {
            kvm_memory_attributes2 a{};  // error_offset 0 on entry: the kernel refuses anything else (EINVAL)
            a.offset = addr;
            a.size = bytes;
            a.attributes = attrs;
            a.flags = flags;
            r = io_.call(fd_, KVM_SET_MEMORY_ATTRIBUTES2, &a);
            error_offset = a.error_offset;
        }
        if (r >= 0) return ok();
        const int err = static_cast<int>(-r);
        // The page the kernel names (EAGAIN with an error offset inside the range), else the first.
        page_index page = inv.pages.begin + (t.begin - inv.target.begin);
        if (err == EAGAIN && where_ == attributes_target::guest_memfd && error_offset / page_size >= t.begin &&
            error_offset / page_size < t.end) {
            page += error_offset / page_size - t.begin;
            if (changed_end != nullptr) *changed_end = error_offset / page_size;  // [t.begin, here) changed
        }
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
    attributes_content content_ = attributes_content::unspecified;
    bool probed_ = false;
    counters counters_{};
    page_range stale_{};
    std::uint64_t fallbacks_ = 0;
    reader readers_[max_bindings]{};
};

} // namespace guestmem
