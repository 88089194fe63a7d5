// guestmem/linux/detail/sys.hpp — small Linux plumbing shared by the Linux
// backends: turning an errno into a library error whose message says what
// the caller asked for plus the kernel's errno text, an owning fd, an owning
// mapping aligned for PMD (2 MiB) transparent hugepages, and a counter of
// the time spent inside system calls (so an embedder can tell library time
// from kernel time).
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

namespace guestmem::detail::sys {

/// The library code an errno maps to.
[[nodiscard]] constexpr errc errc_from_errno(int err) noexcept {
    switch (err) {
    case ENOMEM:
    case ENOSPC:
    case EDQUOT:
    case EFBIG: return errc::out_of_memory;
    case EBUSY:
    case EAGAIN: return errc::busy;
    case EPERM:
    case EACCES: return errc::permission_denied;
    case ENOTTY:
    case ENOSYS:
    case EOPNOTSUPP:
    case ENODEV:
    case ENXIO: return errc::not_supported;
    case EEXIST: return errc::already_bound;
    case EHWPOISON: return errc::poisoned;
    default: return errc::invalid_argument;
    }
}

/// The kernel's text for an errno (thread-safe, never allocates).
[[nodiscard]] inline const char* errno_text(int err) noexcept {
    const char* s = strerrordesc_np(err);
    return s ? s : "unknown errno";
}

/// An error for a failed system call: `what` (printf-style, in the caller's
/// terms) followed by the errno's name-free description, e.g.
/// "fallocate of pages [0x200, 0x400) failed: No space left on device".
/// `code` overrides the errno mapping when the caller knows better.
[[nodiscard]] inline error errno_error(int err, page_index page, const char* fmt, ...) noexcept
    __attribute__((format(printf, 3, 4)));
[[nodiscard]] inline error errno_error(int err, page_index page, const char* fmt, ...) noexcept {
    char what[error::max_message];
    std::va_list args;
    va_start(args, fmt);
    std::vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    return error::make(errc_from_errno(err), page, "%s: %s (errno %d)", what, errno_text(err), err);
}

/// Same, with an explicit code.
[[nodiscard]] inline error errno_error_as(errc code, int err, page_index page, const char* what) noexcept {
    return error::make(code, page, "%s: %s (errno %d)", what, errno_text(err), err);
}

/// Time and calls spent inside system calls, updated with relaxed atomics
/// (allocators may be called from concurrent faults).
class kernel_clock {
public:
    kernel_clock() = default;
    kernel_clock(const kernel_clock& o) noexcept : ns_(o.ns()), calls_(o.calls()) {}
    kernel_clock& operator=(const kernel_clock& o) noexcept {
        ns_.store(o.ns(), std::memory_order_relaxed);
        calls_.store(o.calls(), std::memory_order_relaxed);
        return *this;
    }

    /// Run `f` (a system call) and account its wall time.
    template <class F>
    auto time(F&& f) noexcept(noexcept(f())) {
        const auto t0 = std::chrono::steady_clock::now();
        auto r = std::forward<F>(f)();
        const auto t1 = std::chrono::steady_clock::now();
        ns_.fetch_add(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()),
                      std::memory_order_relaxed);
        calls_.fetch_add(1, std::memory_order_relaxed);
        return r;
    }

    [[nodiscard]] std::uint64_t ns() const noexcept { return ns_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t calls() const noexcept { return calls_.load(std::memory_order_relaxed); }
    void reset() noexcept {
        ns_.store(0, std::memory_order_relaxed);
        calls_.store(0, std::memory_order_relaxed);
    }

private:
    std::atomic<std::uint64_t> ns_{0};
    std::atomic<std::uint64_t> calls_{0};
};

/// An owned file descriptor.
class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

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
