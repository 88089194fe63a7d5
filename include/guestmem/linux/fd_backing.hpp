/// @file
/// The folio allocator policy over any file that supports fallocate and
/// punch-hole (a memfd or a KVM guest_memfd). Both Linux allocators are
/// this plus how their fd is made.
///
/// Frames are file page offsets: the folio backing object pages
/// [index, index + 2^order) is file pages [index, index + 2^order), so frame
/// == index. allocate = fallocate(PUNCH_HOLE | KEEP_SIZE) then
/// fallocate(FALLOC_FL_KEEP_SIZE) of the folio's bytes (guest_memfd refuses
/// a mode without KEEP_SIZE; on a memfd whose size is already the object's,
/// mode 0 and KEEP_SIZE do the same); free = fallocate(PUNCH_HOLE |
/// KEEP_SIZE).
///
/// Because a frame is a file offset, a page the object never freed (a
/// quarantined or pinned page when the object was destroyed, or one written
/// through data() while a hole) would come back from a plain fallocate with
/// its old contents. The punch before each allocation makes every folio
/// handed out fresh, zeroed memory, whatever the file held there. While an
/// object lives, it never asks for a page it still keeps. The backing keeps
/// its own MAP_SHARED mapping of the whole file so zero() is a memset that
/// cannot fail.
///
/// Split and merge are bookkeeping: the kernel splits a transparent huge
/// folio by itself when part of it is punched out or mapped at base-page
/// granularity, and allocates nothing the embedder could reserve for it. So
/// prepare_split never fails here (there is no real resource to model); the
/// orders the library tracks are its own accounting, and real_order() says
/// what the kernel really used.
#pragma once

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstring>

#include <guestmem/core/error.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/linux/detail/sys.hpp>
#include <guestmem/linux/system.hpp>

namespace guestmem {

/// Counters an fd-backed allocator keeps (read them with counters(); the
/// time spent in the kernel is kernel()). Plain integers: read them under
/// the same serialisation as the allocator's calls.
struct fd_backing_counters {
    std::uint64_t allocated_folios = 0;  ///< successful allocate() calls
    std::uint64_t freed_folios = 0;      ///< successful free() calls (folios punched out)
    std::uint64_t failed_frees = 0;  ///< punch-holes the kernel refused (pages stay allocated)
    std::uint64_t splits = 0;            ///< split() calls (bookkeeping only)
    std::uint64_t merges = 0;            ///< merge() calls (bookkeeping only)
};

/// A folio allocator policy over a file that supports fallocate and
/// punch-hole: frames are file page offsets (frame == object page), and
/// the backing owns the fd and a MAP_SHARED mapping of the whole file. See
/// the file description for why every allocation punches first and why
/// split and merge are bookkeeping. The base of memfd_allocator and
/// guest_memfd_allocator, which say how the fd is made.
///
/// Move-only. Locking: none; the owning object calls the policy under its
/// exclusive lock. The queries are plain reads (kernel() is atomic).
class fd_backing {
public:
    /// No file: an empty backing to move a real one into (adopt() makes one).
    fd_backing() = default;
    /// Take over the other backing's fd, mapping and counters.
    fd_backing(fd_backing&&) noexcept = default;
    /// Unmap and close what this backing holds, then take over the other's.
    fd_backing& operator=(fd_backing&&) noexcept = default;

    /// Take ownership of `fd` (a file of exactly `bytes`) and map it
    /// MAP_SHARED, 2 MiB-aligned. `huge_advice` asks for transparent
    /// hugepages on the mapping (MADV_HUGEPAGE; a hint, ignored where the
    /// kernel has THP off). `what` names the file in messages ("memfd") and
    /// must outlive the backing (a string literal). Errors: invalid_argument
    /// for a max_order above max_supported_order; the mapping's
    /// (invalid_argument for an empty or misaligned size or one past the
    /// largest file offset, or mmap's errno mapped by errc_from_errno). On
    /// error `fd` is closed.
    [[nodiscard]] static result<fd_backing> adopt(unique_fd fd, std::uint64_t bytes, folio_order max_order,
                                                  bool huge_advice, const char* what) noexcept {
        if (max_order > max_supported_order)
            return error::make(errc::invalid_argument, no_page, "max_order %u exceeds the library's largest order %u",
                               unsigned{max_order}, unsigned{max_supported_order});
        auto map = detail::sys::shared_mapping::map(fd.get(), 0, bytes, what);
        if (!map) return map.error();
        if (huge_advice) (void)::madvise(map.value().data(), bytes, MADV_HUGEPAGE);
        fd_backing b;
        b.fd_ = std::move(fd);
        b.map_ = std::move(map).value();
        b.pages_ = bytes / page_size;
        b.max_order_ = max_order;
        b.what_ = what;
        return b;
    }

    // ---- the folio_allocator policy --------------------------------------

    /// The kernel keeps a page alive while anything references it, so a
    /// folio truncated while pinned is punched at once (see folio_allocator).
    static constexpr bool refcounted_frames = true;

    /// The largest order allocate() accepts (adopt's `max_order`).
    [[nodiscard]] folio_order max_order() const noexcept { return max_order_; }

    /// Back object pages [index, index + 2^order) with fresh, zeroed file
    /// pages: punch the range out, then fallocate(KEEP_SIZE) it. Returns
    /// the frame, which is `index`. Errors: not_supported for an order
    /// above max_order(); invalid_range (at `index`) when `index` is not
    /// aligned to `order` or the folio ends past the file; the kernel's
    /// errno mapped by errc_from_errno (ENOSPC -> out_of_memory, ...) with
    /// its text. Two system calls, timed by kernel().
    [[nodiscard]] result<frame_number> allocate(page_index index, folio_order order) noexcept {
        if (auto s = check_folio(index, order, "allocate"); !s) return s.error();
        const std::uint64_t off = index * page_size, len = pages_in(order) * page_size;
        const int rc = clock_.time([&] {
            // Drop whatever the file still holds there (see the file comment).
            if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                            static_cast<off_t>(len)) != 0)
                return -1;
            return ::fallocate(fd_.get(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off), static_cast<off_t>(len));
        });
        if (rc != 0)
            return errno_error(errno, index, "fallocate of %s pages [%#" PRIx64 ", %#" PRIx64 ") (order %u) failed",
                               what_, index, index + pages_in(order), unsigned{order});
        ++counters_.allocated_folios;
        return frame_number{index};
    }

    /// Punch the folio out of the file (one system call, timed by
    /// kernel()). Cannot fail: a punch the kernel refuses is counted in
    /// failed_frees and its pages stay allocated. A frame outside the file
    /// (only a caller breaking the contract can pass one) is counted as a
    /// failed free and left alone: the byte offset could wrap.
    void free(page_index index, frame_number frame, folio_order order) noexcept {
        (void)index;
        if (!inside(frame, pages_in(order))) {
            ++counters_.failed_frees;
            return;
        }
        const std::uint64_t off = frame * page_size, len = pages_in(order) * page_size;
        const int rc = clock_.time([&] {
            return ::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                               static_cast<off_t>(len));
        });
        if (rc != 0)
            ++counters_.failed_frees;  // cannot fail by contract: the pages stay allocated, counted
        else
            ++counters_.freed_folios;
    }

    /// Nothing to reserve: the kernel splits its huge folios itself. Error:
    /// invalid_argument when `to` is not below `from` or `from` is above
    /// max_order().
    [[nodiscard]] status prepare_split(frame_number, folio_order from, folio_order to) noexcept {
        if (to >= from || from > max_order_)
            return error::make(errc::invalid_argument, no_page, "cannot split an order-%u folio into order-%u pieces",
                               unsigned{from}, unsigned{to});
        return ok();  // nothing to reserve: the kernel splits THPs itself
    }
    /// Nothing was reserved: does nothing.
    void abort_split(frame_number, folio_order, folio_order) noexcept {}
    /// Bookkeeping only: counts the split.
    void commit_split(frame_number, folio_order, folio_order) noexcept { ++counters_.splits; }
    /// Bookkeeping only: counts the merge.
    void merge(frame_number, folio_order, folio_order) noexcept { ++counters_.merges; }

    /// Clear `pages` pages from `frame` through the allocator's own mapping
    /// (a memset: no system call, cannot fail; O(pages)). A span outside
    /// the file (a contract violation) is left alone rather than written
    /// past the mapping.
    void zero(page_index, frame_number frame, std::uint64_t pages) noexcept {
        if (!inside(frame, pages)) return;
        std::memset(map_.data() + frame * page_size, 0, pages * page_size);
    }

    // ---- Linux-specific ----------------------------------------------------

    /// The file descriptor (owned by this allocator).
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    /// Object size in base pages.
    [[nodiscard]] page_index pages() const noexcept { return pages_; }
    /// Object size in bytes.
    [[nodiscard]] std::uint64_t bytes() const noexcept { return pages_ * page_size; }
    /// The allocator's own mapping of the whole file (for loading contents;
    /// it is never protected, so do not hand it to code the host-mapping
    /// consumer is meant to police).
    [[nodiscard]] std::byte* data() const noexcept { return map_.data(); }
    /// Time and number of fallocate calls (allocate and free).
    [[nodiscard]] const kernel_clock& kernel() const noexcept { return clock_; }
    /// The same clock, writable (to reset() it between measurements).
    [[nodiscard]] kernel_clock& kernel() noexcept { return clock_; }
    /// Folios allocated and freed, refused punches, splits and merges.
    [[nodiscard]] const fd_backing_counters& counters() const noexcept { return counters_; }
    /// Splits the library asked for (bookkeeping only here).
    [[nodiscard]] std::uint64_t splits() const noexcept { return counters_.splits; }
    /// Merges the library asked for (bookkeeping only here).
    [[nodiscard]] std::uint64_t merges() const noexcept { return counters_.merges; }

    /// The order of the folio the kernel really backs `page` with, found via
    /// /proc/self/pagemap (the page's PFN through this allocator's mapping)
    /// and /proc/kpageflags (compound head/tail bits): the largest order o
    /// such that a compound folio of exactly 2^o pages, naturally aligned,
    /// holds the page. Needs CAP_SYS_ADMIN (PFNs are hidden otherwise:
    /// not_supported). The page must be allocated; reading it maps it.
    /// Errors: invalid_range when `page` is past the file; not_supported
    /// when either /proc file cannot be opened or read, or the PFN is
    /// hidden. A few system calls (up to about 3 per order tried).
    [[nodiscard]] result<folio_order> real_order(page_index page) const noexcept {
        if (page >= pages_)
            return error::make(errc::invalid_range, page, "page %#" PRIx64 " is past the object's %#" PRIx64 " pages",
                               page, pages_);
        volatile const std::byte* p = map_.data() + page * page_size;
        (void)*p;  // map it into our page tables so pagemap has its PFN
        unique_fd pagemap{::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)};
        unique_fd flags{::open("/proc/kpageflags", O_RDONLY | O_CLOEXEC)};
        if (!pagemap || !flags)
            return errno_error_as(errc::not_supported, errno, page, "cannot open /proc/self/pagemap or /proc/kpageflags");
        std::uint64_t entry = 0;
        const auto vpn = reinterpret_cast<std::uintptr_t>(p) / page_size;
        if (::pread(pagemap.get(), &entry, sizeof entry, static_cast<off_t>(vpn * sizeof entry)) != sizeof entry)
            return errno_error_as(errc::not_supported, errno, page, "reading /proc/self/pagemap failed");
        const std::uint64_t pfn = entry & ((std::uint64_t{1} << 55) - 1);
        if (!(entry >> 63) || pfn == 0)
            return error::make(errc::not_supported, page,
                               "the PFN of page %#" PRIx64 " is hidden (pagemap needs CAP_SYS_ADMIN)", page);
        auto kflags = [&](std::uint64_t f) -> std::uint64_t {
            std::uint64_t v = 0;
            if (::pread(flags.get(), &v, sizeof v, static_cast<off_t>(f * sizeof v)) != sizeof v) return 0;
            return v;
        };
        constexpr std::uint64_t head = std::uint64_t{1} << 15, tail = std::uint64_t{1} << 16;
        if (!(kflags(pfn) & (head | tail))) return folio_order{order_4k};
        for (unsigned o = order_1g; o >= 1; --o) {
            const std::uint64_t n = std::uint64_t{1} << o;
            const std::uint64_t first = page & ~(n - 1);
            if (first + n > pages_) continue;
            if (pfn < page - first) continue;  // no folio that large can start below PFN 0
            const std::uint64_t head_pfn = pfn - (page - first);
            if (head_pfn & (n - 1)) continue;
            if (!(kflags(head_pfn) & head)) continue;
            if (!(kflags(head_pfn + n - 1) & tail)) continue;
            if (kflags(head_pfn + n) & tail) continue;  // the folio is larger still
            return static_cast<folio_order>(o);
        }
        return folio_order{order_4k};
    }

private:
    /// [frame, frame + pages) lies inside the file (no byte offset wraps:
    /// adopt caps the file below 2^63 bytes).
    [[nodiscard]] bool inside(frame_number frame, std::uint64_t pages) const noexcept {
        return frame < pages_ && pages <= pages_ - frame;
    }

    [[nodiscard]] status check_folio(page_index index, folio_order order, const char* op) const noexcept {
        if (order > max_order_)
            return error::make(errc::not_supported, index, "%s of an order-%u folio: this %s allocator goes up to order %u",
                               op, unsigned{order}, what_, unsigned{max_order_});
        if (!is_aligned(index, order))
            return error::make(errc::invalid_range, index, "%s: page %#" PRIx64 " is not aligned to order %u", op, index,
                               unsigned{order});
        if (index >= pages_ || pages_ - index < pages_in(order))
            return error::make(errc::invalid_range, index,
                               "%s: folio [%#" PRIx64 ", %#" PRIx64 ") ends past the object's %#" PRIx64 " pages", op,
                               index, index + pages_in(order), pages_);
        return ok();
    }

    unique_fd fd_;
    detail::sys::shared_mapping map_;
    page_index pages_ = 0;
    folio_order max_order_ = order_4k;
    const char* what_ = "file";
    kernel_clock clock_;
    fd_backing_counters counters_;
};

} // namespace guestmem
