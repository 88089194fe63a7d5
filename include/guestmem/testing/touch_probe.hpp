/// @file
/// Find out, without risking the caller, whether the host can really touch an
/// address: fork a child that reads (or writes) it and see how the child ends.
/// This is how the tests and the demo check that the host-mapping consumer's
/// PROT_NONE is real.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

/// Test helpers that are not allocator or consumer doubles (those live in
/// namespace guestmem, in the other guestmem/testing headers).
namespace guestmem::testing {

/// How a touch_in_child child ended.
enum class touch_outcome {
    survived,  ///< the touch succeeded: the child exited with status 0
    sigsegv,   ///< the child died of SIGSEGV (e.g. the page is PROT_NONE)
    sigbus,    ///< the child died of SIGBUS (e.g. a poisoned or truncated page)
    other      ///< fork or waitpid failed, or the child ended any other way
};

/// "survived", "SIGSEGV", "SIGBUS", "other", or "?" for any other value.
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
/// `addr` (a write of 0x5a when `write`, else a read) and _exits 0.
/// Returns how the child ended; waits for it (retrying on EINTR). Costs a
/// fork: use it in tests, not on hot paths. Call it only where forking is
/// safe (no other thread holds a lock the child would need: the child
/// only touches, restores two signal dispositions and exits).
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
