// guestmem/linux/memslot.hpp — bind object pages to a KVM memslot:
// KVM_SET_USER_MEMORY_REGION2 with KVM_MEM_GUEST_MEMFD, so guest physical
// [gpa, gpa + size) is backed by guest_memfd pages [first, first + n).
//
// userspace_addr: with GUEST_MEMFD_FLAG_MMAP (Linux 6.18) KVM's page faults
// take every page from the guest_memfd itself, but KVM still reads guest
// memory through userspace_addr wherever it emulates (the instruction
// emulator; on a software-virtualized host such as kvm_pvm, real mode). So
// point it at a mapping that stays accessible — the allocator's own
// (`alloc.data()`), which is the hypervisor's path (accessor::hypervisor may
// touch guest_only pages) — not at the host view the host-mapping consumer
// protects, or the guest's emulated accesses to private pages fail.
//
// Kernel errors come back as library errors (EINVAL -> invalid_argument,
// EEXIST -> already_bound, ENOTTY/EOPNOTSUPP -> not_supported, ...) with
// the errno text. A `memslot` deletes its slot when destroyed.
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
    std::uint32_t slot = 0;
    std::uint64_t guest_phys_addr = 0;
    int guest_memfd = -1;
    page_range pages;                 ///< guest_memfd pages (offset = pages.begin * 4 KiB)
    void* userspace_addr = nullptr;   ///< a host mapping of pages.begin KVM may read (page-aligned; see above)
    std::uint32_t extra_flags = 0;    ///< e.g. KVM_MEM_LOG_DIRTY_PAGES
};

/// A KVM memslot backed by a guest_memfd. Move-only; deletes the slot on
/// destruction (or on unbind()).
class memslot {
public:
    memslot() = default;
    memslot(memslot&& o) noexcept : vm_fd_(std::exchange(o.vm_fd_, -1)), cfg_(o.cfg_), kernel_ns_(o.kernel_ns_) {}
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
    ~memslot() { (void)unbind(); }

    /// Create the slot on `vm_fd` (not owned; must outlive the memslot).
    [[nodiscard]] static result<memslot> bind(int vm_fd, const memslot_config& cfg) noexcept {
        if (cfg.pages.empty())
            return error::make(errc::invalid_range, cfg.pages.begin, "memslot %u over pages [%#" PRIx64 ", %#" PRIx64 ") is empty",
                               cfg.slot, cfg.pages.begin, cfg.pages.end);
        if (cfg.guest_phys_addr % page_size != 0 || reinterpret_cast<std::uintptr_t>(cfg.userspace_addr) % page_size != 0)
            return error::make(errc::invalid_argument, cfg.pages.begin,
                               "memslot %u: guest physical address %#" PRIx64 " or host address %p is not page-aligned",
                               cfg.slot, cfg.guest_phys_addr, cfg.userspace_addr);
        kvm_userspace_memory_region2 r = region(cfg);
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

    /// Delete the slot (memory_size 0). Idempotent.
    [[nodiscard]] status unbind() noexcept {
        if (vm_fd_ < 0) return ok();
        kvm_userspace_memory_region2 r{};
        r.slot = cfg_.slot;
        const int fd = std::exchange(vm_fd_, -1);
        if (::ioctl(fd, KVM_SET_USER_MEMORY_REGION2, &r) != 0)
            return detail::sys::errno_error(errno, cfg_.pages.begin, "deleting memslot %u failed", cfg_.slot);
        return ok();
    }

    [[nodiscard]] bool is_bound() const noexcept { return vm_fd_ >= 0; }
    [[nodiscard]] const memslot_config& config() const noexcept { return cfg_; }
    /// Guest physical address of object page `p` (inside the slot).
    [[nodiscard]] std::uint64_t gpa_of(page_index p) const noexcept {
        return cfg_.guest_phys_addr + (p - cfg_.pages.begin) * page_size;
    }
    /// Object page of guest physical address `gpa`, or no_page when the
    /// slot does not cover it.
    [[nodiscard]] page_index page_of(std::uint64_t gpa) const noexcept {
        if (gpa < cfg_.guest_phys_addr) return no_page;
        const std::uint64_t p = cfg_.pages.begin + (gpa - cfg_.guest_phys_addr) / page_size;
        return cfg_.pages.contains(p) ? p : no_page;
    }
    /// Nanoseconds the creating ioctl took.
    [[nodiscard]] std::uint64_t kernel_ns() const noexcept { return kernel_ns_; }

    /// The ioctl argument for `cfg`.
    [[nodiscard]] static kvm_userspace_memory_region2 region(const memslot_config& cfg) noexcept {
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
    int vm_fd_ = -1;
    memslot_config cfg_{};
    std::uint64_t kernel_ns_ = 0;
};

} // namespace guestmem
