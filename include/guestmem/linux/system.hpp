// guestmem/linux/system.hpp — the Linux plumbing an embedder shares with
// the backends: an owned file descriptor, errors for failed system calls
// whose message says what the caller asked for plus the kernel's errno
// text (errc chosen from the errno), and a clock of the time spent inside
// system calls (so an embedder can tell library time from kernel time).
#pragma once

#if !defined(__linux__)
#error "guestmem/linux is Linux-only"
#endif

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>

#include <guestmem/core/error.hpp>
#include <guestmem/core/types.hpp>

namespace guestmem {


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

} // namespace guestmem
