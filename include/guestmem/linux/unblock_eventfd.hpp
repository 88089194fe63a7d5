/// @file
/// An unblock_notifier (memory/reentry.hpp) that signals an eventfd: the
/// waitable the exit router hands back with exit_disposition::retry_later
/// under retry_policy::vmm_retries. Set it on every object behind the
/// router's gpa_map (guest_memory::set_unblock_notifier) and give its fd()
/// to router_options::wait_fd; the VMM polls the fd, drain()s it, and
/// re-enters the exit.
///
/// Spurious wake-ups are expected and harmless: any unpin, changing
/// conversion, punch, quarantine release or unbind on any of the objects
/// signals it, and the re-entered exit may be refused again. A signal
/// between the refusal and the poll is not lost (the counter stays
/// non-zero until drained).
///
/// Costs: unblocked() is one write(2) of 8 bytes (non-blocking; a full
/// counter is already readable, so EAGAIN is ignored); drain() one read(2).
/// Owns the fd. Linux only.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include <guestmem/core/error.hpp>
#include <guestmem/linux/system.hpp>
#include <guestmem/memory/reentry.hpp>

namespace guestmem {

/// An unblock_notifier that makes an eventfd readable whenever an object
/// may have stopped refusing a conversion; the fd is what router_options::
/// wait_fd hands to a VMM waiting on retry_later.
class eventfd_unblock_notifier final : public unblock_notifier {
public:
    /// A notifier over a new non-blocking, close-on-exec eventfd. Errors:
    /// the errno of eventfd(2), mapped by errc_from_errno (EMFILE, ENOMEM...).
    /// Cost: one system call. Allocates: the kernel's eventfd only.
    [[nodiscard]] static result<eventfd_unblock_notifier> create() noexcept {
        const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0) return errno_error(errno, no_page, "eventfd for the unblock notifier");
        return eventfd_unblock_notifier(fd);
    }
    /// Take over `o`'s eventfd; `o` is left without one.
    /// Lock: none. Cost: O(1).
    eventfd_unblock_notifier(eventfd_unblock_notifier&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    eventfd_unblock_notifier& operator=(eventfd_unblock_notifier&&) = delete;
    ~eventfd_unblock_notifier() override {
        if (fd_ >= 0) ::close(fd_);
    }

    /// The eventfd to poll (router_options::wait_fd).
    [[nodiscard]] int fd() const noexcept { return fd_; }
    /// Add 1 to the eventfd's counter (readable until drained).
    void unblocked(page_range) noexcept override {
        const std::uint64_t one = 1;
        ssize_t n;
        do n = ::write(fd_, &one, sizeof one);
        while (n < 0 && errno == EINTR);
    }
    /// Reset the counter; true if it was signalled since the last drain.
    /// Errors: none (an empty counter is false). Lock: none; any thread.
    /// Cost: one read(2).
    bool drain() noexcept {
        std::uint64_t v = 0;
        ssize_t n;
        do n = ::read(fd_, &v, sizeof v);
        while (n < 0 && errno == EINTR);
        return n == sizeof v && v != 0;
    }

private:
    explicit eventfd_unblock_notifier(int fd) noexcept : fd_(fd) {}
    int fd_ = -1;
};

} // namespace guestmem
