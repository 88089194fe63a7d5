/// @file
/// The folio allocator policy over a KVM guest_memfd: real memory bound to one
/// real VM, created with KVM_CREATE_GUEST_MEMFD on a VM fd the embedder passes
/// in, with GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED so the host
/// can map it (the library's host-mapping consumer then polices which pages the
/// host may touch: on a default VM the kernel does not enforce private memory).
///
/// allocate = fallocate(KEEP_SIZE) (guest_memfd refuses any other mode),
/// free = punch hole, frames = guest_memfd page offsets (what a memslot's
/// guest_memfd_offset counts in).
///
/// Orders: max_order is bookkeeping. Linux 6.18's guest_memfd allocates
/// order-0 folios only (huge guest_memfd folios are out-of-tree RFCs), so
/// a 2 MiB folio the library tracks is 512 kernel pages; real_order() says
/// so. The library's split/merge structure still matters to its own
/// consumers (stage-2 block mappings, IOMMU superpages) and to what a
/// hugepage-capable kernel would do.
#pragma once

#include <sys/ioctl.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>

#include <guestmem/core/error.hpp>
#include <guestmem/folio/allocator.hpp>
#include <guestmem/linux/fd_backing.hpp>
#include <guestmem/linux/detail/sys.hpp>
#include <guestmem/linux/kvm_uapi.hpp>

namespace guestmem {

/// The guest_memfd flags the allocator asks for by default: mmap-able and
/// initially shared (Linux 6.18).
inline constexpr std::uint64_t default_guest_memfd_flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;

/// The GUEST_MEMFD_FLAG_* mask `vm_fd` accepts (KVM_CAP_GUEST_MEMFD_FLAGS;
/// 0 on a kernel that has guest_memfd but no such capability). Errors:
/// not_supported when the kernel has no guest_memfd for this VM
/// (KVM_CAP_GUEST_MEMFD is 0); the errno of a failed KVM_CHECK_EXTENSION
/// mapped by errc_from_errno (e.g. invalid_argument for a bad fd). Two
/// ioctls.
[[nodiscard]] inline result<std::uint64_t> guest_memfd_supported_flags(int vm_fd) noexcept {
    const int has = ::ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD);
    if (has < 0) return errno_error(errno, no_page, "KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD) failed");
    if (has == 0)
        return error::make(errc::not_supported, no_page, "this kernel or VM type has no guest_memfd (KVM_CAP_GUEST_MEMFD is 0)");
    const int flags = ::ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
    return std::uint64_t(flags > 0 ? flags : 0);
}

/// Folio allocator policy backed by a KVM guest_memfd. Move-only; owns the
/// guest_memfd and the allocator's own mapping of it. See fd_backing for
/// the shared members; locking: none of its own (see fd_backing).
class guest_memfd_allocator : public fd_backing {
public:
    /// No guest_memfd: a placeholder to move a created allocator into.
    guest_memfd_allocator() = default;

    /// A guest_memfd of `bytes` (a multiple of 4 KiB) for the VM `vm_fd`
    /// (not owned; it must outlive nothing: the guest_memfd holds its own
    /// reference to the VM). Errors: invalid_argument, before any ioctl,
    /// for a size that is 0, not a multiple of 4 KiB, or past the largest
    /// file offset (the kernel reads the size as a signed 64-bit number),
    /// or flags without GUEST_MEMFD_FLAG_MMAP; the errors of
    /// guest_memfd_supported_flags; not_supported when the VM does not
    /// accept `flags` or the kernel refuses the ioctl (out_of_memory for
    /// ENOMEM), with the errno text; fd_backing::adopt's errors (mapping
    /// the guest_memfd).
    [[nodiscard]] static result<guest_memfd_allocator> create(int vm_fd, std::uint64_t bytes,
                                                              folio_order max_order = order_2m,
                                                              std::uint64_t flags = default_guest_memfd_flags) noexcept {
        if (bytes == 0 || bytes % page_size != 0)
            return error::make(errc::invalid_argument, no_page,
                               "guest_memfd size %#" PRIx64 " bytes is not a non-zero multiple of 4 KiB", bytes);
        if (bytes > detail::sys::max_file_offset)
            return error::make(errc::invalid_argument, no_page,
                               "guest_memfd size %#" PRIx64 " bytes is past the largest file size %#" PRIx64, bytes,
                               detail::sys::max_file_offset);
        if ((flags & GUEST_MEMFD_FLAG_MMAP) == 0)
            return error::make(errc::invalid_argument, no_page,
                               "guest_memfd_allocator needs GUEST_MEMFD_FLAG_MMAP (it zeroes through a mapping)");
        auto supported = guest_memfd_supported_flags(vm_fd);
        if (!supported) return supported.error();
        if ((supported.value() & flags) != flags)
            return error::make(errc::not_supported, no_page,
                               "guest_memfd flags %#" PRIx64 " requested, this VM accepts only %#" PRIx64, flags,
                               supported.value());
        kvm_create_guest_memfd arg{};
        arg.size = bytes;
        arg.flags = flags;
        unique_fd fd{::ioctl(vm_fd, KVM_CREATE_GUEST_MEMFD, &arg)};
        if (!fd) {
            const int err = errno;
            return errno_error_as(err == ENOMEM ? errc::out_of_memory : errc::not_supported, err, no_page,
                                               "KVM_CREATE_GUEST_MEMFD refused");
        }
        auto b = fd_backing::adopt(std::move(fd), bytes, max_order, false, "guest_memfd");
        if (!b) return b.error();
        guest_memfd_allocator a;
        static_cast<fd_backing&>(a) = std::move(b).value();
        a.flags_ = flags;
        return a;
    }

    /// The GUEST_MEMFD_FLAG_* the guest_memfd was created with.
    [[nodiscard]] std::uint64_t flags() const noexcept { return flags_; }

private:
    std::uint64_t flags_ = 0;
};

static_assert(folio_allocator<guest_memfd_allocator>);

} // namespace guestmem
