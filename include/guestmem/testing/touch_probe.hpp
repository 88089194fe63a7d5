// guestmem/testing/touch_probe.hpp — find out, without risking the
// caller, whether the host can really touch an address: fork a child that
// reads (or writes) it and see how the child ends. This is how the tests and
// the demo check that the host-mapping consumer's PROT_NONE is real.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace guestmem::testing {

enum class touch_outcome { survived, sigsegv, sigbus, other };

[[nodiscard]] constexpr const char* to_string(touch_outcome t) noexcept {
    switch (t) {
    case touch_outcome::survived: return "survived";
    case touch_outcome::sigsegv: return "SIGSEGV";
    case touch_outcome::sigbus: return "SIGBUS";
    case touch_outcome::other: return "other";
    }
    return "?";
}

/// Fork; the child restores the default SIGSEGV/SIGBUS disposition (so a
/// sanitizer's handler does not turn the fault into an exit code), touches
/// `addr` and _exits 0. Returns how the child ended.
[[nodiscard]] inline touch_outcome touch_in_child(volatile std::byte* addr, bool write) noexcept {
    const pid_t pid = ::fork();
    if (pid < 0) return touch_outcome::other;
    if (pid == 0) {
        struct sigaction sa {};
        sa.sa_handler = SIG_DFL;
        ::sigaction(SIGSEGV, &sa, nullptr);
        ::sigaction(SIGBUS, &sa, nullptr);
        if (write)
            *addr = std::byte{0x5a};
        else
            (void)*addr;
        ::_exit(0);
    }
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return touch_outcome::other;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return touch_outcome::survived;
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) return touch_outcome::sigsegv;
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS) return touch_outcome::sigbus;
    return touch_outcome::other;
}

} // namespace guestmem::testing
