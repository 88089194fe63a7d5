/// @file
/// The Linux plumbing an embedder shares with the backends: an owned file
/// descriptor, errors for failed system calls whose message says what the
/// caller asked for plus the kernel's errno text (errc chosen from the
/// errno), and a clock of the time spent inside system calls (so an
/// embedder can tell library time from kernel time). Linux only.
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


/// The library code an errno maps to: ENOMEM, ENOSPC, EDQUOT, EFBIG ->
/// out_of_memory; EBUSY, EAGAIN -> busy; EPERM, EACCES -> permission_denied;
/// ENOTTY, ENOSYS, EOPNOTSUPP, ENODEV, ENXIO -> not_supported; EEXIST ->
/// already_bound; EHWPOISON -> poisoned; anything else -> invalid_argument.
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

/// An error for a failed system call, at `page`, with the code
/// errc_from_errno(err): the text formatted printf-style from `fmt` (what
/// was asked, in the caller's terms) followed by the errno's description
/// and number, e.g. "fallocate of pages [0x200, 0x400) failed: No space
/// left on device (errno 28)". Never allocates; the whole message is
/// truncated to error::max_message - 1 characters. errno_error_as takes an
/// explicit code instead.
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

/// Like errno_error, with an explicit `code` (for when the caller knows
/// better than the errno mapping) and a plain `what` string.
[[nodiscard]] inline error errno_error_as(errc code, int err, page_index page, const char* what) noexcept {
    return error::make(code, page, "%s: %s (errno %d)", what, errno_text(err), err);
}

/// Time and calls spent inside system calls, updated with relaxed atomics
/// so that any thread may read it, with no lock, while the allocator or
/// consumer that owns it works; a reading taken while calls run may pair a
/// newer time with an older count.
class kernel_clock {
public:
    /// Zero time, zero calls.
    kernel_clock() = default;
    /// A copy of `o`'s current readings (not atomic as a pair).
    kernel_clock(const kernel_clock& o) noexcept : ns_(o.ns()), calls_(o.calls()) {}
    /// Take `o`'s current readings (not atomic as a pair).
    kernel_clock& operator=(const kernel_clock& o) noexcept {
        ns_.store(o.ns(), std::memory_order_relaxed);
        calls_.store(o.calls(), std::memory_order_relaxed);
        return *this;
    }

    /// Run `f` (a system call), add its wall time (steady_clock) and one
    /// call, and return what `f` returned. noexcept when `f` is.
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

    /// Nanoseconds spent inside timed calls since construction or reset().
    [[nodiscard]] std::uint64_t ns() const noexcept { return ns_.load(std::memory_order_relaxed); }
    /// Number of timed calls since construction or reset().
    [[nodiscard]] std::uint64_t calls() const noexcept { return calls_.load(std::memory_order_relaxed); }
    /// Back to zero time and zero calls.
    void reset() noexcept {
        ns_.store(0, std::memory_order_relaxed);
        calls_.store(0, std::memory_order_relaxed);
    }

private:
    std::atomic<std::uint64_t> ns_{0};
    std::atomic<std::uint64_t> calls_{0};
};

/// An owned file descriptor: closed by the destructor and by reset().
/// Move-only. -1 means "none". Not thread-safe (a plain int).
class unique_fd {
public:
    /// No descriptor (-1).
    unique_fd() = default;
    /// Take ownership of `fd` (a negative value means none, so the result
    /// of a failed open() can be passed as is).
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    /// Take `o`'s descriptor; `o` holds none.
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    /// Close the descriptor held, then take `o`'s.
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    /// Closes the descriptor, if one is held.
    ~unique_fd() { reset(); }

    /// The descriptor (still owned), or -1.
    [[nodiscard]] int get() const noexcept { return fd_; }
    /// True when a descriptor is held.
    [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
    /// Close the descriptor, if one is held (close's result is ignored),
    /// and hold none.
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

} // namespace guestmem
