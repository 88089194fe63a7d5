/// @file
/// The folio allocator policy over real memory: a memfd (shmem) of the object's
/// size. allocate = fallocate of the folio's byte range, free = punch hole,
/// frames = file page offsets.
///
/// Huge folios: the allocator advises MADV_HUGEPAGE on its own 2 MiB-aligned
/// mapping, so shmem backs 2 MiB-aligned fallocated ranges with PMD-sized
/// transparent hugepages *when the system allows it*: shmem THP is governed
/// by /sys/kernel/mm/transparent_hugepage/shmem_enabled, and with "never"
/// (Debian's default) every folio is 4 KiB whatever the library tracks.
/// `real_order(page)` reports what the kernel really used and
/// `shmem_thp_setting()` what the system is set to. max_order is order_2m:
/// shmem's largest THP is PMD-sized (1 GiB would be hugetlbfs, not shmem).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <string>

#include <guestmem/core/error.hpp>
#include <guestmem/folio/allocator.hpp>
#include <guestmem/linux/fd_backing.hpp>
#include <guestmem/linux/detail/sys.hpp>

namespace guestmem {

/// Folio allocator policy backed by a memfd. Move-only; owns the fd and its
/// mapping. See fd_backing for the shared members (fd(),
/// data(), kernel(), counters(), real_order()). Locking: none of its own
/// (see fd_backing).
class memfd_allocator : public fd_backing {
public:
    /// No memfd: a placeholder to move a created allocator into.
    memfd_allocator() = default;

    /// A memfd of `pages` base pages (named `name` in /proc/self/fd), sized
    /// with ftruncate and mapped with MADV_HUGEPAGE. `max_order` is the
    /// largest folio the library may ask for (at most order_2m, shmem's THP
    /// size). Errors: invalid_argument when `pages` is 0 or the memfd would
    /// pass 2^52 bytes; not_supported for a max_order above order_2m;
    /// memfd_create's, ftruncate's and mmap's errno mapped by
    /// errc_from_errno (e.g. out_of_memory), with the kernel's text.
    [[nodiscard]] static result<memfd_allocator> create(page_index pages, folio_order max_order = order_2m,
                                                        const char* name = "guestmem") noexcept {
        if (pages == 0 || pages > (std::uint64_t{1} << 52) / page_size)
            return error::make(errc::invalid_argument, no_page, "memfd of %#" PRIx64 " pages: size out of range", pages);
        if (max_order > order_2m)
            return error::make(errc::not_supported, no_page,
                               "memfd allocator: order %u requested, shmem transparent hugepages stop at order %u",
                               unsigned{max_order}, unsigned{order_2m});
        unique_fd fd{::memfd_create(name, MFD_CLOEXEC)};
        if (!fd) return errno_error(errno, no_page, "memfd_create(\"%s\") failed", name);
        if (::ftruncate(fd.get(), static_cast<off_t>(pages * page_size)) != 0)
            return errno_error(errno, no_page, "sizing the memfd to %#" PRIx64 " pages failed", pages);
        auto b = fd_backing::adopt(std::move(fd), pages * page_size, max_order, true, "memfd");
        if (!b) return b.error();
        memfd_allocator a;
        static_cast<fd_backing&>(a) = std::move(b).value();
        return a;
    }

    /// The system's shmem THP policy: the bracketed word of
    /// /sys/kernel/mm/transparent_hugepage/shmem_enabled ("never",
    /// "advise", "always", "within_size", ...), or "unavailable" when the
    /// file cannot be read. Reads the file on every call (allocates the
    /// returned string).
    [[nodiscard]] static std::string shmem_thp_setting() {
        std::string s = "unavailable";
        if (std::FILE* f = std::fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r")) {
            char buf[256] = {};
            if (std::fgets(buf, sizeof buf, f)) {
                const char* open = std::strchr(buf, '[');
                const char* close = open ? std::strchr(open, ']') : nullptr;
                if (open && close) s.assign(open + 1, close);
            }
            std::fclose(f);
        }
        return s;
    }

    /// True when shmem may back this allocator's MADV_HUGEPAGE mapping with
    /// PMD-sized folios at all ("advise", "always", "within_size", "force").
    [[nodiscard]] static bool shmem_thp_possible() {
        const std::string s = shmem_thp_setting();
        return s == "advise" || s == "always" || s == "within_size" || s == "force";
    }
};

static_assert(folio_allocator<memfd_allocator>);

} // namespace guestmem
