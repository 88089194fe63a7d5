/// @file
/// The one seam between the KVM layer and the kernel: every ioctl the KVM
/// consumers make goes through a `kvm_ioctl`, so a test (or an embedder's
/// own fault injection) can answer any call with any errno at any position
/// without a confidential-VM host. `system_kvm_ioctl()` is the real thing.
///
/// Cost: one virtual call in front of a system call. Locking: none of its
/// own; the real one is thread-safe, a test double is as safe as it says.
/// Linux only.
#pragma once

#if !defined(__linux__)
#error "guestmem/kvm is Linux-only"
#endif

#include <sys/ioctl.h>

#include <cerrno>

namespace guestmem {

/// An ioctl(2) the KVM layer can be handed: the result (>= 0) on success,
/// minus the errno on failure (never -1 with errno set).
class kvm_ioctl {
public:
    kvm_ioctl() = default;
    kvm_ioctl(const kvm_ioctl&) = delete;
    kvm_ioctl& operator=(const kvm_ioctl&) = delete;
    virtual ~kvm_ioctl() = default;
    /// ioctl(fd, request, arg): its non-negative result, or -errno.
    /// `arg` is the request's argument (a struct pointer, or an integer cast
    /// to a pointer for requests such as KVM_CHECK_EXTENSION).
    [[nodiscard]] virtual long call(int fd, unsigned long request, void* arg) noexcept = 0;
};

/// The real system call.
class system_ioctl final : public kvm_ioctl {
public:
    /// The ioctl(2) system call itself, errno folded into the result.
    [[nodiscard]] long call(int fd, unsigned long request, void* arg) noexcept override {
        const long r = ::ioctl(fd, request, arg);
        return r < 0 ? -static_cast<long>(errno) : r;
    }
};

/// The process-wide real ioctl (stateless, so one suffices).
[[nodiscard]] inline kvm_ioctl& system_kvm_ioctl() noexcept {
    static system_ioctl real;
    return real;
}

} // namespace guestmem
