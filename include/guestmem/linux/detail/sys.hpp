// guestmem/linux/detail/sys.hpp — Linux plumbing private to the backends:
// an owning mapping aligned for PMD (2 MiB) transparent hugepages, and the
// file-offset limits. The public part (fds, errno errors, the kernel clock)
// is linux/system.hpp.
#pragma once

#if !defined(__linux__)
#error "guestmem/linux is Linux-only"
#endif

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

#include <guestmem/core/error.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/linux/system.hpp>

namespace guestmem::detail::sys {

// The public plumbing (linux/system.hpp), under the names the backends use.
using guestmem::errc_from_errno;
using guestmem::errno_error;
using guestmem::errno_error_as;
using guestmem::errno_text;
using guestmem::kernel_clock;
using guestmem::unique_fd;

/// PMD size: the alignment a mapping needs so that 2 MiB folios can be
/// mapped with one page-table entry.
inline constexpr std::uint64_t pmd_bytes = page_size << order_2m;

/// The largest file offset (off_t is signed: 2^63 - 1).
inline constexpr std::uint64_t max_file_offset = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());

/// An owned MAP_SHARED read/write mapping of [offset, offset + bytes) of a
/// file, placed at a 2 MiB-aligned address (so a PMD-sized folio at a
/// 2 MiB-aligned file offset can be mapped huge).
class shared_mapping {
public:
    shared_mapping() = default;
    shared_mapping(shared_mapping&& o) noexcept
        : addr_(std::exchange(o.addr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
    shared_mapping& operator=(shared_mapping&& o) noexcept {
        if (this != &o) {
            reset();
            addr_ = std::exchange(o.addr_, nullptr);
            bytes_ = std::exchange(o.bytes_, 0);
        }
        return *this;
    }
    shared_mapping(const shared_mapping&) = delete;
    shared_mapping& operator=(const shared_mapping&) = delete;
    ~shared_mapping() { reset(); }

    /// Map `bytes` of `fd` from file offset `offset`. `what` names the file
    /// in the error message. Errors, before any system call:
    /// invalid_argument when offset or bytes is misaligned, bytes is 0, or
    /// offset + bytes passes max_file_offset (which also keeps the
    /// reservation's bytes + 2 MiB from wrapping). Then the kernel's.
    [[nodiscard]] static result<shared_mapping> map(int fd, std::uint64_t offset, std::uint64_t bytes,
                                                    const char* what) noexcept {
        if (bytes == 0 || bytes % page_size != 0 || offset % page_size != 0)
            return error::make(errc::invalid_argument, no_page,
                               "cannot map %s: offset %#llx / length %#llx not page-aligned or empty", what,
                               static_cast<unsigned long long>(offset), static_cast<unsigned long long>(bytes));
        if (bytes > max_file_offset || offset > max_file_offset - bytes)
            return error::make(errc::invalid_argument, no_page,
                               "cannot map %s: offset %#llx + length %#llx passes the largest file offset %#llx", what,
                               static_cast<unsigned long long>(offset), static_cast<unsigned long long>(bytes),
                               static_cast<unsigned long long>(max_file_offset));
        // Reserve address space with 2 MiB of slack, then place the file
        // mapping at the first 2 MiB boundary and give back the slack.
        const std::uint64_t span = bytes + pmd_bytes;
        void* probe = ::mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (probe == MAP_FAILED)
            return errno_error(errno, no_page, "reserving %#llx bytes of address space for %s failed",
                               static_cast<unsigned long long>(span), what);
        const auto base = reinterpret_cast<std::uintptr_t>(probe);
        const std::uintptr_t aligned = (base + pmd_bytes - 1) & ~(pmd_bytes - 1);
        void* addr = ::mmap(reinterpret_cast<void*>(aligned), bytes, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd, static_cast<off_t>(offset));
        if (addr == MAP_FAILED) {
            const int err = errno;
            ::munmap(probe, span);
            return errno_error(err, no_page, "mmap(MAP_SHARED) of %#llx bytes of %s failed",
                               static_cast<unsigned long long>(bytes), what);
        }
        if (aligned > base) ::munmap(probe, aligned - base);
        const std::uintptr_t end = aligned + bytes;
        if (base + span > end) ::munmap(reinterpret_cast<void*>(end), base + span - end);
        shared_mapping m;
        m.addr_ = static_cast<std::byte*>(addr);
        m.bytes_ = bytes;
        return m;
    }

    [[nodiscard]] std::byte* data() const noexcept { return addr_; }
    [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }
    [[nodiscard]] explicit operator bool() const noexcept { return addr_ != nullptr; }
    void reset() noexcept {
        if (addr_) ::munmap(addr_, bytes_);
        addr_ = nullptr;
        bytes_ = 0;
    }

private:
    std::byte* addr_ = nullptr;
    std::uint64_t bytes_ = 0;
};

} // namespace guestmem::detail::sys
