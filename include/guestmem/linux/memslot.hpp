/// @file
/// Bind object pages to a KVM memslot: KVM_SET_USER_MEMORY_REGION2 with
/// KVM_MEM_GUEST_MEMFD, so guest physical [gpa, gpa + size) is backed by
/// guest_memfd pages [first, first + n).
///
/// userspace_addr: with GUEST_MEMFD_FLAG_MMAP (Linux 6.18) KVM's page faults
/// take every page from the guest_memfd itself, but KVM still reads guest
/// memory through userspace_addr wherever it emulates (the instruction
/// emulator; on a software-virtualized host such as kvm_pvm, real mode). So
/// point it at a mapping that stays accessible — the allocator's own
/// (`alloc.data()`), which is the hypervisor's path (accessor::hypervisor may
/// touch guest_only pages) — not at the host view the host-mapping consumer
/// protects, or the guest's emulated accesses to private pages fail.
///
/// The configuration is checked before the ioctl (memslot::check_config):
/// KVM takes byte quantities (pages * 4 KiB) and adds them in 64 bits, and a
/// product that wrapped would reach it as a different, valid-looking slot
/// (memory_size 0 even means "delete the slot"). Kernel errors come back as
/// library errors (EINVAL -> invalid_argument, EEXIST -> already_bound,
/// ENOTTY/EOPNOTSUPP -> not_supported, ...) with the errno text. A `memslot`
/// deletes its slot when destroyed.
#pragma once

#include <sys/ioctl.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <utility>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/linux/detail/sys.hpp>
#include <guestmem/linux/kvm_uapi.hpp>

namespace guestmem {

/// What to bind: slot number, guest physical base, object pages of the
/// guest_memfd and the host view address of the first of them.
struct memslot_config {
    std::uint32_t slot = 0;            ///< KVM slot id (address space in the high 16 bits)
    std::uint64_t guest_phys_addr = 0; ///< guest physical address of pages.begin (page-aligned)
    int guest_memfd = -1;              ///< the guest_memfd's fd (not owned)
    page_range pages;                 ///< guest_memfd pages (offset = pages.begin * 4 KiB)
    void* userspace_addr = nullptr;   ///< a host mapping of pages.begin KVM may read (page-aligned; see above)
    std::uint32_t extra_flags = 0;    ///< e.g. KVM_MEM_LOG_DIRTY_PAGES
};

/// A KVM memslot backed by a guest_memfd. Move-only; deletes the slot on
/// destruction (or on unbind()). Locking: none; KVM serialises memslot
/// ioctls itself, and one memslot object must not be used from two
/// threads at once.
class memslot {
public:
    /// Not bound: a placeholder to move a bound memslot into.
    memslot() = default;
    /// Take over `o`'s slot; `o` is left unbound (its destructor deletes nothing).
    memslot(memslot&& o) noexcept : vm_fd_(std::exchange(o.vm_fd_, -1)), cfg_(o.cfg_), kernel_ns_(o.kernel_ns_) {}
    /// Delete this memslot's slot, if bound (an error is ignored), then take
    /// over `o`'s.
    memslot& operator=(memslot&& o) noexcept {
        if (this != &o) {
            (void)unbind();
            vm_fd_ = std::exchange(o.vm_fd_, -1);
            cfg_ = o.cfg_;
            kernel_ns_ = o.kernel_ns_;
        }
        return *this;
    }
    memslot(const memslot&) = delete;
    memslot& operator=(const memslot&) = delete;
    /// Deletes the slot, if bound; an error is ignored.
    ~memslot() { (void)unbind(); }

    /// Validate `cfg` the way bind() does, before any system call:
    /// - invalid_range at pages.begin: the pages are empty or inverted;
    /// - invalid_argument at pages.begin: guest_phys_addr or userspace_addr
    ///   is not page-aligned;
    /// - invalid_range: a byte quantity KVM computes in 64 bits would wrap
    ///   (an end of exactly 2^64 wraps too: KVM adds in 64 bits). At
    ///   pages.begin when guest_memfd_offset (pages.begin * 4 KiB) or
    ///   memory_size (pages.size() * 4 KiB; 0 would delete the slot)
    ///   overflows; at page 2^52 (the first whose offset overflows) when the
    ///   end of the guest_memfd range does; at the first page whose guest
    ///   physical or host address would be 2^64 when guest_phys_addr +
    ///   memory_size or userspace_addr + memory_size does.
    [[nodiscard]] static status check_config(const memslot_config& cfg) noexcept {
        const page_range& p = cfg.pages;
        if (p.empty())
            return error::make(errc::invalid_range, p.begin, "memslot %u over pages [%#" PRIx64 ", %#" PRIx64 ") is %s",
                               cfg.slot, p.begin, p.end, p.begin > p.end ? "inverted" : "empty");
        const auto host = reinterpret_cast<std::uintptr_t>(cfg.userspace_addr);
        if (cfg.guest_phys_addr % page_size != 0 || host % page_size != 0)
            return error::make(errc::invalid_argument, p.begin,
                               "memslot %u: guest physical address %#" PRIx64 " or host address %p is not page-aligned",
                               cfg.slot, cfg.guest_phys_addr, cfg.userspace_addr);
        if (p.begin > last_byte_page)
            return error::make(errc::invalid_range, p.begin,
                               "memslot %u: guest_memfd offset of page %#" PRIx64 " (page * 4 KiB) overflows 64 bits",
                               cfg.slot, p.begin);
        if (p.size() > last_byte_page)
            return error::make(errc::invalid_range, p.begin,
                               "memslot %u: memory size of %#" PRIx64 " pages [%#" PRIx64 ", %#" PRIx64
                               ") (pages * 4 KiB) overflows 64 bits",
                               cfg.slot, p.size(), p.begin, p.end);
        if (p.end > last_byte_page)
            return error::make(errc::invalid_range, last_byte_page + 1,
                               "memslot %u: guest_memfd pages [%#" PRIx64 ", %#" PRIx64 ") end at page %#" PRIx64
                               ", whose byte offset (page * 4 KiB) overflows 64 bits",
                               cfg.slot, p.begin, p.end, p.end);
        const std::uint64_t bytes = p.size() * page_size;
        if (cfg.guest_phys_addr > UINT64_MAX - bytes)
            return error::make(errc::invalid_range, first_wrapping_page(cfg.guest_phys_addr, p.begin),
                               "memslot %u: guest physical addresses from %#" PRIx64 " for pages [%#" PRIx64 ", %#" PRIx64
                               ") overflow 64 bits at page %#" PRIx64,
                               cfg.slot, cfg.guest_phys_addr, p.begin, p.end,
                               first_wrapping_page(cfg.guest_phys_addr, p.begin));
        if (host > UINT64_MAX - bytes)
            return error::make(errc::invalid_range, first_wrapping_page(host, p.begin),
                               "memslot %u: host addresses from %p for pages [%#" PRIx64 ", %#" PRIx64
                               ") overflow 64 bits at page %#" PRIx64,
                               cfg.slot, cfg.userspace_addr, p.begin, p.end, first_wrapping_page(host, p.begin));
        return ok();
    }

    /// Create the slot on `vm_fd` (not owned; must outlive the memslot).
    /// Errors: check_config's (before any ioctl), then the kernel's errno
    /// mapped by errc_from_errno, at pages.begin, with its text.
    [[nodiscard]] static result<memslot> bind(int vm_fd, const memslot_config& cfg) noexcept {
        auto reg = region(cfg);
        if (!reg) return reg.error();
        kvm_userspace_memory_region2 r = reg.value();
        detail::sys::kernel_clock clock;
        if (clock.time([&] { return ::ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION2, &r); }) != 0)
            return detail::sys::errno_error(errno, cfg.pages.begin,
                                            "KVM_SET_USER_MEMORY_REGION2 of slot %u (GPA %#" PRIx64 ", guest_memfd pages [%#" PRIx64
                                            ", %#" PRIx64 ")) failed",
                                            cfg.slot, cfg.guest_phys_addr, cfg.pages.begin, cfg.pages.end);
        memslot m;
        m.vm_fd_ = vm_fd;
        m.cfg_ = cfg;
        m.kernel_ns_ = clock.ns();
        return m;
    }

    /// Delete the slot (memory_size 0). Idempotent: ok when not bound. The
    /// memslot is unbound afterwards even when the ioctl fails; the error
    /// (the kernel's errno mapped by errc_from_errno, at pages.begin) says
    /// the slot may still exist.
    [[nodiscard]] status unbind() noexcept {
        if (vm_fd_ < 0) return ok();
        kvm_userspace_memory_region2 r{};
        r.slot = cfg_.slot;
        const int fd = std::exchange(vm_fd_, -1);
        if (::ioctl(fd, KVM_SET_USER_MEMORY_REGION2, &r) != 0)
            return detail::sys::errno_error(errno, cfg_.pages.begin, "deleting memslot %u failed", cfg_.slot);
        return ok();
    }

    /// True between a successful bind() and unbind() (or a move away).
    [[nodiscard]] bool is_bound() const noexcept { return vm_fd_ >= 0; }
    /// The configuration the slot was bound with (kept after unbind()).
    [[nodiscard]] const memslot_config& config() const noexcept { return cfg_; }
    /// What gpa_of returns for a page the slot does not cover: 2^64 - 1,
    /// never page-aligned, so never a page's guest physical address.
    static constexpr std::uint64_t no_gpa = UINT64_MAX;
    /// Guest physical address of object page `p`, or no_gpa when `p` is
    /// outside config().pages (and for a memslot that was never bound).
    /// Never wraps: bind() refused every slot whose addresses reach 2^64.
    [[nodiscard]] std::uint64_t gpa_of(page_index p) const noexcept {
        if (!cfg_.pages.contains(p)) return no_gpa;
        return cfg_.guest_phys_addr + (p - cfg_.pages.begin) * page_size;
    }
    /// Object page of guest physical address `gpa`, or no_page when the
    /// slot does not cover it. Never wraps (the offset into the slot is
    /// compared with its size before it is added to pages.begin).
    [[nodiscard]] page_index page_of(std::uint64_t gpa) const noexcept {
        if (gpa < cfg_.guest_phys_addr) return no_page;
        const std::uint64_t offset = (gpa - cfg_.guest_phys_addr) / page_size;
        return offset < cfg_.pages.size() ? cfg_.pages.begin + offset : no_page;
    }
    /// Nanoseconds the creating ioctl took.
    [[nodiscard]] std::uint64_t kernel_ns() const noexcept { return kernel_ns_; }

    /// The ioctl argument for `cfg`, or check_config's error (its byte
    /// fields would wrap, or the pages are empty or misaligned).
    [[nodiscard]] static result<kvm_userspace_memory_region2> region(const memslot_config& cfg) noexcept {
        if (auto s = check_config(cfg); !s) return s.error();
        kvm_userspace_memory_region2 r{};
        r.slot = cfg.slot;
        r.flags = static_cast<__u32>(KVM_MEM_GUEST_MEMFD) | cfg.extra_flags;
        r.guest_phys_addr = cfg.guest_phys_addr;
        r.memory_size = cfg.pages.size() * page_size;
        r.userspace_addr = reinterpret_cast<std::uintptr_t>(cfg.userspace_addr);
        r.guest_memfd_offset = cfg.pages.begin * page_size;
        r.guest_memfd = static_cast<__u32>(cfg.guest_memfd);
        return r;
    }

private:
    /// The last page whose byte offset (page * 4 KiB) fits in 64 bits: 2^52 - 1.
    static constexpr page_index last_byte_page = UINT64_MAX >> page_shift;

    /// The first page of a slot starting at `first`, at page-aligned address
    /// `base`, whose address would be 2^64 (base != 0: only called once
    /// base + the slot's size has been found to wrap).
    [[nodiscard]] static page_index first_wrapping_page(std::uint64_t base, page_index first) noexcept {
        return first + ((UINT64_MAX - base) >> page_shift) + 1;
    }

    int vm_fd_ = -1;
    memslot_config cfg_{};
    std::uint64_t kernel_ns_ = 0;
};

} // namespace guestmem
