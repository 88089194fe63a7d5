/// @file
/// The exit router: turns the two ways a KVM guest asks for a conversion
/// into gpa_map conversions, after KVM_RUN returns.
/// - KVM_EXIT_MEMORY_FAULT (the implicit conversion): the guest touched
///   [gpa, gpa + size) as private (flags has KVM_MEMORY_EXIT_FLAG_PRIVATE)
///   or as shared while the range is the other way; the router converts it
///   to guest_only or shared. KVM_RUN reports this exit with -1 and errno
///   EFAULT (or EHWPOISON): hand the run to the router before treating that
///   as a failure.
/// - KVM_EXIT_HYPERCALL with nr KVM_HC_MAP_GPA_RANGE (the explicit
///   conversion SEV-SNP and TDX Linux guests issue): args[0] the GPA,
///   args[1] the page count, args[2] the attributes (bit 4 ENCRYPTED: to
///   private; bits 3:0 the page-size hint 0 = 4K, 1 = 2M, 2 = 1G). Outside
///   long mode (hypercall.longmode bit 0 clear) the arguments are 32-bit and
///   are masked. The router writes hypercall.ret, which KVM hands to the
///   guest on the next KVM_RUN: 0, EINVAL (22) or EAGAIN (11, "retry").
///   The page-size hint is checked, then ignored: the objects split and
///   merge folios as a conversion needs.
/// The same request can come in without the hypercall exit (a VMM whose
/// hypercalls do not reach userspace carries it over port I/O):
/// handle_map_gpa_range takes (gpa, npages, attributes) and returns the
/// value for the guest.
///
/// Bad guest input (an unaligned GPA, 0 pages, a count that runs past the
/// guest physical space, unknown attribute bits, a page-size hint above 2, a
/// GFN in no slot, a range across objects or non-contiguous object pages)
/// never reaches Memory::convert: the guest gets EINVAL, the VMM a log line,
/// nothing changes. Conversion errors map to the hypercall's return value
/// (hypercall_return):
///
/// | guestmem errc                                   | hypercall.ret | why                              |
/// | ----------------------------------------------- | ------------- | -------------------------------- |
/// | (success, a no-op included)                     | 0             |                                  |
/// | busy, retry, out_of_memory, vetoed              | EAGAIN (11)   | transient: a pin, a draining     |
/// |                                                 |               | folio, memory, a consumer's veto |
/// | invalid_range, invalid_argument, poisoned,      | EINVAL (22)   | the request cannot succeed as    |
/// | not_allocated, permission_denied, not_supported,|               | asked; retrying would not help   |
/// | already_bound, not_bound, anything else         |               |                                  |
///
/// A guest retries EAGAIN without bound, so a consumer that vetoes forever
/// keeps the guest retrying: the router logs every refusal so the VMM sees it.
///
/// Retries (router_options::retries). Only kernels with the MAP_GPA_RANGE
/// return-code change hand EAGAIN to the guest as "retry" (TDX turns it into
/// TDG.VP.VMCALL_RETRY; SEV-SNP guests treat any non-zero value as failure);
/// older kernels fail the guest's conversion on any non-zero value. No
/// capability says which, so the default is retry_policy::vmm_retries: a
/// transient refusal (the four EAGAIN codes above) does not complete the
/// exit; the router returns exit_disposition::retry_later with
/// exit_outcome::wait_fd (router_options::wait_fd, e.g. an
/// eventfd_unblock_notifier the objects signal when a pin drops or a range
/// changes), and the VMM re-enters the same exit (handle() again, run
/// untouched) once it is readable. After router_options::retry_limit_ns of
/// retrying the same request the guest gets EINVAL (a memory fault: failed)
/// and the VMM a log line naming the page, its references and the vetoing
/// binding. retry_policy::guest_retries is the EAGAIN behaviour above, for a
/// VMM that knows its kernel passes EAGAIN on and its guest retries it.
/// Each vCPU's pending retry is a retry_state: pass one per vCPU to
/// handle(run, state); handle(run) keeps one per thread (one vCPU per
/// thread, as KVM VMMs run them).
///
/// Costs: the gpa_map's conversion plus, on failure, one formatted log line
/// (a 256-byte stack buffer; nothing allocates). Locking: none of its own;
/// it uses the gpa_map (see its locking) and the objects' locks. One router
/// may serve several vCPU threads if the log sink is thread-safe. Linux only.
#pragma once

#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string_view>

#include <guestmem/core/error.hpp>
#include <guestmem/kvm/gpa_map.hpp>
#include <guestmem/linux/kvm_uapi.hpp>
#include <guestmem/memory/config.hpp>

namespace guestmem {

/// What the VMM does after the router looked at an exit.
enum class exit_disposition : std::uint8_t {
    resume,    ///< handled: run the vCPU again (a hypercall's result, failure included, is in hypercall.ret)
    failed,    ///< a memory fault the router could not serve (exit_outcome::why says why): the VMM decides
    not_mine,  ///< not a conversion exit: the VMM handles it as before
    /// vmm_retries: a transient refusal; the exit is not completed. Wait
    /// until exit_outcome::wait_fd is readable (or a short while, if it is
    /// -1), then hand the same run to handle() again.
    retry_later,
};

/// Who retries a transiently refused conversion (see the file comment).
enum class retry_policy : std::uint8_t {
    vmm_retries,    ///< the router returns retry_later and the VMM re-enters the exit (the safe default)
    guest_retries,  ///< the guest gets EAGAIN (kernels with the MAP_GPA_RANGE return-code change)
};

/// How a router converts and retries.
struct router_options {
    convert_options convert{};                      ///< what every conversion is made with
    retry_policy retries = retry_policy::vmm_retries;  ///< who retries a transient refusal
    /// How long one request may be retried before the guest gets EINVAL
    /// (a memory fault: failed). Default 1 s.
    std::uint64_t retry_limit_ns = 1'000'000'000;
    /// The waitable handed back with retry_later (an eventfd the objects'
    /// unblock notifier signals), or -1.
    int wait_fd = -1;
    /// The clock retries are timed by, in ns (nullptr: CLOCK_MONOTONIC).
    std::uint64_t (*now_ns)() noexcept = nullptr;
};

/// One vCPU's pending retry (vmm_retries): the request being retried and
/// when its first refusal came. Zero-initialise; one per vCPU.
struct retry_state {
    bool pending = false;         ///< a request is being retried
    std::uint32_t exit_reason = 0;  ///< KVM_EXIT_HYPERCALL or KVM_EXIT_MEMORY_FAULT (0: a bare map_gpa_range)
    std::uint64_t a = 0;          ///< the request's gpa
    std::uint64_t b = 0;          ///< its npages (MAP_GPA_RANGE) or size in bytes (memory fault)
    std::uint64_t c = 0;          ///< its attributes (MAP_GPA_RANGE) or flags (memory fault)
    std::uint64_t since_ns = 0;   ///< when its first refusal came
    std::uint64_t attempts = 0;   ///< refusals so far
};

/// The enumerator's name ("resume", "failed", "not_mine"), or "invalid disposition".
/// Lock: none. Cost: O(1).
[[nodiscard]] constexpr std::string_view to_string(exit_disposition d) noexcept {
    switch (d) {
    case exit_disposition::resume: return "resume";
    case exit_disposition::failed: return "failed";
    case exit_disposition::not_mine: return "not_mine";
    case exit_disposition::retry_later: return "retry_later";
    }
    return "invalid disposition";
}

/// The router's answer for one exit or request.
struct exit_outcome {
    exit_disposition disposition = exit_disposition::not_mine;  ///< what the VMM does next
    /// ok, or why the conversion was refused (errors carry a GFN in page()).
    /// For a hypercall, a failure here was reported to the guest too.
    status why = ok();
    /// For a MAP_GPA_RANGE request: the value the guest gets (0, EINVAL or
    /// EAGAIN), also written to hypercall.ret for a hypercall exit. 0 otherwise.
    std::uint64_t hypercall_ret = 0;
    /// retry_later: the fd to wait on (router_options::wait_fd), or -1.
    int wait_fd = -1;
};

/// The hypercall return value for a guestmem error code (the file
/// comment's table): EAGAIN for busy, retry, out_of_memory and vetoed;
/// EINVAL for every other code.
/// Errors:    none: it maps codes, it cannot fail.
/// Lock:      none.
/// Cost:      O(1).
[[nodiscard]] constexpr std::uint64_t hypercall_return(errc e) noexcept {
    switch (e) {
    case errc::busy:
    case errc::retry:
    case errc::out_of_memory:
    case errc::vetoed: return EAGAIN;
    default: return EINVAL;
    }
}
static_assert(EINVAL == 22 && EAGAIN == 11, "KVM's hypercall return values are Linux errno values");

/// The attribute bits KVM_HC_MAP_GPA_RANGE defines: the page-size hint
/// (bits 3:0) and ENCRYPTED (bit 4). Any other bit is refused.
inline constexpr std::uint64_t map_gpa_range_known_attributes = 0xfULL | KVM_MAP_GPA_RANGE_ENCRYPTED;
/// The largest page-size hint KVM_HC_MAP_GPA_RANGE defines (2: 1 GiB).
inline constexpr std::uint64_t map_gpa_range_max_page_size_hint = KVM_MAP_GPA_RANGE_PAGE_SZ_1G;

/// Routes conversion exits of KVM vCPUs into a gpa_map (see the file
/// comment). Holds a reference to the map, which must outlive it;
/// `MaxSlots` and `MaxReaders` are the map's (gpa_map).
template <gpa_memory Memory, std::size_t MaxSlots = 64, std::size_t MaxReaders = 64>
class exit_router {
public:
    using map_type = gpa_map<Memory, MaxSlots, MaxReaders>;  ///< the map conversions go through
    /// A log sink: called with `context` and one line (not terminated by a
    /// newline; valid during the call only) for every refused request.
    using log_fn = void (*)(void* context, std::string_view line);

    /// A router converting through `map` with `opts` (e.g. defer_if_pinned),
    /// logging refusals to `log(log_context, line)` (nullptr: no log).
    /// Retries: vmm_retries, 1 s, no wait fd (router_options' defaults).
    /// Lock: none. Cost: O(1); allocates nothing.
    explicit exit_router(map_type& map, log_fn log = nullptr, void* log_context = nullptr,
                         convert_options opts = {}) noexcept
        : map_(map), log_(log), log_context_(log_context), opts_(opts) {}
    /// A router with every option named (router_options).
    /// Lock: none. Cost: O(1); allocates nothing.
    exit_router(map_type& map, log_fn log, void* log_context, const router_options& ro) noexcept
        : map_(map), log_(log), log_context_(log_context), opts_(ro.convert), retry_(ro) {}

    /// Look at `run` after KVM_RUN:
    /// - KVM_EXIT_MEMORY_FAULT: handle_memory_fault(kvm_memory_fault_of(run));
    /// - KVM_EXIT_HYPERCALL with nr KVM_HC_MAP_GPA_RANGE: the arguments,
    ///   masked to 32 bits outside long mode, go to map_gpa_range; its value
    ///   is written to run.hypercall.ret; the disposition is resume;
    /// - anything else (other hypercalls included): not_mine, run untouched.
    /// The retry policy applies as in handle(run, state), with one
    /// retry_state per thread kept by the router (one vCPU per thread):
    /// under vmm_retries a transient refusal is retry_later and leaves the
    /// run as it was (hypercall.ret unwritten).
    /// Errors:    in exit_outcome::why: handle_memory_fault's or
    ///            map_gpa_range's.
    /// Lock:      none of its own: gpa_map::convert's (the object's exclusive
    ///            lock). Call inside a read section of the map when another
    ///            thread may change its slots.
    /// Cost:      O(1) for an exit that is not_mine; else the conversion's,
    ///            plus one formatted log line on failure.
    /// Allocates: nothing itself (a 256-byte stack buffer for the log line);
    ///            the object's convert allocates as it says.
    exit_outcome handle(kvm_run& run) {
        thread_local retry_state mine{};
        thread_local const void* owner = nullptr;
        if (owner != this) {  // another router on this thread: start afresh
            mine = retry_state{};
            owner = this;
        }
        return handle(run, mine);
    }
    /// handle(run) with this vCPU's pending retry in `state` (vmm_retries):
    /// a transient refusal returns retry_later and leaves the run as it was
    /// (hypercall.ret unwritten); the same exit handed back later is
    /// retried, until router_options::retry_limit_ns after its first refusal.
    /// Errors:    in exit_outcome::why, as handle(run).
    /// Lock:      the objects' (through the map), as handle(run); `state` is
    ///            the caller's (one per vCPU).
    /// Cost:      one conversion, plus one clock read on a transient refusal.
    /// Allocates: nothing.
    exit_outcome handle(kvm_run& run, retry_state& state) {
        if (run.exit_reason == KVM_EXIT_MEMORY_FAULT) {
            const kvm_memory_fault_exit f = kvm_memory_fault_of(run);
            exit_outcome out = handle_memory_fault(f);
            return settle(out, state, KVM_EXIT_MEMORY_FAULT, f.gpa, f.size, f.flags);
        }
        if (run.exit_reason != KVM_EXIT_HYPERCALL || run.hypercall.nr != KVM_HC_MAP_GPA_RANGE) return {};
        std::uint64_t gpa = run.hypercall.args[0], npages = run.hypercall.args[1], attrs = run.hypercall.args[2];
        if ((run.hypercall.longmode & KVM_EXIT_HYPERCALL_LONG_MODE) == 0) {
            gpa &= 0xffffffffULL;
            npages &= 0xffffffffULL;
            attrs &= 0xffffffffULL;
        }
        exit_outcome out = map_gpa_range(gpa, npages, attrs);
        out = settle(out, state, KVM_EXIT_HYPERCALL, gpa, npages, attrs);
        if (out.disposition != exit_disposition::retry_later) run.hypercall.ret = out.hypercall_ret;
        return out;
    }

    /// Serve a memory-fault exit: convert [f.gpa, f.gpa + f.size) to
    /// guest_only when f.flags has KVM_MEMORY_EXIT_FLAG_PRIVATE, else to
    /// shared. resume on success; failed (logged) on any error.
    /// Errors:    in exit_outcome::why, in this order: invalid_argument (at
    ///            f.gpa / 4096) when flags has a bit other than PRIVATE;
    ///            invalid_range when the range is bad or in no slot (before
    ///            any conversion; gpa_map::convert_bytes); then any error of
    ///            the object's convert, at a GFN (gpa_map::convert).
    /// Lock:      as handle().
    /// Cost:      gpa_map::convert's, plus one formatted log line on failure.
    /// Allocates: as handle().
    exit_outcome handle_memory_fault(const kvm_memory_fault_exit& f) {
        if ((f.flags & ~std::uint64_t{KVM_MEMORY_EXIT_FLAG_PRIVATE}) != 0) {
            error e = error::make(errc::invalid_argument, f.gpa >> page_shift,
                                  "memory fault flags %#" PRIx64 " have bits other than PRIVATE", f.flags);
            log("memory fault gpa=%#" PRIx64 " size=%#" PRIx64 " refused: %s", f.gpa, f.size, e.message().data());
            return {exit_disposition::failed, e, 0};
        }
        const shareability to =
            (f.flags & KVM_MEMORY_EXIT_FLAG_PRIVATE) != 0 ? shareability::guest_only : shareability::shared;
        status s = map_.convert_bytes(f.gpa, f.size, to, opts_);
        if (s) return {exit_disposition::resume, ok(), 0};
        log("memory fault gpa=%#" PRIx64 " size=%#" PRIx64 " to %s failed (%s at GPA frame %#" PRIx64 "): %s", f.gpa,
            f.size, to_string(to).data(), to_string(s.error().code()).data(), s.error().page(),
            s.error().message().data());
        return {exit_disposition::failed, s, 0};
    }

    /// Serve a KVM_HC_MAP_GPA_RANGE request (from a hypercall exit or any
    /// other transport), with no retry policy (handle() and the retry_state
    /// overload apply it): convert `npages` pages at `gpa` to guest_only when
    /// `attributes` has KVM_MAP_GPA_RANGE_ENCRYPTED, else to shared.
    /// Always resume; hypercall_ret is 0, or hypercall_return of the error,
    /// and every failure is logged.
    /// Errors:    in exit_outcome::why, in this order: invalid_argument (at
    ///            gpa / 4096) for unknown attribute bits, then for a
    ///            page-size hint above 2; every invalid_range of
    ///            gpa_map::convert's own checks (these three refused before
    ///            any conversion, EINVAL); then any error of the object's
    ///            convert (EAGAIN or EINVAL, hypercall_return).
    /// Lock:      as handle().
    /// Cost:      gpa_map::convert's, plus one formatted log line on failure.
    /// Allocates: as handle().
    exit_outcome map_gpa_range(std::uint64_t gpa, std::uint64_t npages, std::uint64_t attributes) {
        const page_index gfn = gpa >> page_shift;
        status s = ok();
        if ((attributes & ~map_gpa_range_known_attributes) != 0)
            s = error::make(errc::invalid_argument, gfn, "attributes %#" PRIx64 " have unknown bits %#" PRIx64,
                            attributes, attributes & ~map_gpa_range_known_attributes);
        else if ((attributes & 0xf) > map_gpa_range_max_page_size_hint)
            s = error::make(errc::invalid_argument, gfn, "page-size hint %" PRIu64 " is not 0 (4K), 1 (2M) or 2 (1G)",
                            attributes & 0xf);
        else
            s = map_.convert(gpa, npages,
                             (attributes & KVM_MAP_GPA_RANGE_ENCRYPTED) != 0 ? shareability::guest_only
                                                                              : shareability::shared,
                             opts_);
        if (s) return {exit_disposition::resume, ok(), 0};
        const std::uint64_t ret = hypercall_return(s.error().code());
        log("MAP_GPA_RANGE gpa=%#" PRIx64 " npages=%#" PRIx64 " attributes=%#" PRIx64 " -> %s (%s at GPA frame %#" PRIx64
            "): %s",
            gpa, npages, attributes, ret == EAGAIN ? "EAGAIN" : "EINVAL", to_string(s.error().code()).data(),
            s.error().page(), s.error().message().data());
        return {exit_disposition::resume, s, ret};
    }

    /// map_gpa_range with the retry policy, for a request that came without
    /// a hypercall exit: retry_later (hypercall_ret 0: give the guest
    /// nothing yet; call again with the same state) under vmm_retries.
    /// Errors:    in exit_outcome::why, as map_gpa_range; after
    ///            router_options::retry_limit_ns of retrying, the transient
    ///            error stays with hypercall_ret EINVAL (logged).
    /// Lock:      as handle(); `state` is the caller's (one per vCPU).
    /// Cost:      map_gpa_range's, plus one clock read on a transient refusal.
    /// Allocates: as handle().
    exit_outcome map_gpa_range(std::uint64_t gpa, std::uint64_t npages, std::uint64_t attributes, retry_state& state) {
        return settle(map_gpa_range(gpa, npages, attributes), state, 0, gpa, npages, attributes);
    }

    /// map_gpa_range's value for the guest only: 0, EINVAL or EAGAIN (no
    /// retry policy: the guest retries, as with guest_retries).
    /// Errors:    map_gpa_range's, as the value (the error itself is logged).
    /// Lock:      as handle().
    /// Cost:      map_gpa_range's.
    std::uint64_t handle_map_gpa_range(std::uint64_t gpa, std::uint64_t npages, std::uint64_t attributes) {
        return map_gpa_range(gpa, npages, attributes).hypercall_ret;
    }

    /// The map conversions go through.
    /// Lock: none. Cost: O(1).
    [[nodiscard]] map_type& map() const noexcept { return map_; }
    /// The options every conversion is made with.
    /// Lock: none. Cost: O(1).
    [[nodiscard]] convert_options options() const noexcept { return opts_; }
    /// Who retries a transient refusal.
    /// Lock: none. Cost: O(1).
    [[nodiscard]] retry_policy retries() const noexcept { return retry_.retries; }

private:
    static std::uint64_t monotonic_ns() noexcept {
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC, &ts);
        return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
    }
    /// A transient refusal: hypercall_return's EAGAIN codes.
    static bool transient(const exit_outcome& out) noexcept {
        return !out.why && hypercall_return(out.why.error().code()) == EAGAIN;
    }
    /// Apply the retry policy to a served request (see the file comment).
    exit_outcome settle(exit_outcome out, retry_state& st, std::uint32_t reason, std::uint64_t a, std::uint64_t b,
                        std::uint64_t c) {
        if (retry_.retries != retry_policy::vmm_retries || !transient(out)) {
            st = retry_state{};
            return out;
        }
        const std::uint64_t now = retry_.now_ns != nullptr ? retry_.now_ns() : monotonic_ns();
        if (!st.pending || st.exit_reason != reason || st.a != a || st.b != b || st.c != c)
            st = retry_state{true, reason, a, b, c, now, 0};
        ++st.attempts;
        if (now - st.since_ns < retry_.retry_limit_ns) {
            out.disposition = exit_disposition::retry_later;
            out.hypercall_ret = 0;
            out.wait_fd = retry_.wait_fd;
            return out;
        }
        // Retried too long: give up.
        const error& e = out.why.error();
        char holder[48] = "no binding vetoed";
        if (e.binding_id() != no_binding) std::snprintf(holder, sizeof holder, "vetoed by binding %" PRIu64, e.binding_id());
        log("gave up retrying %s gpa=%#" PRIx64 "%s after %" PRIu64 " attempts over %" PRIu64 " ms: %s at GPA frame %#" PRIx64
            " (%s): %s",
            reason == KVM_EXIT_MEMORY_FAULT ? "memory fault" : "MAP_GPA_RANGE", a,
            reason == KVM_EXIT_MEMORY_FAULT ? "" : " (the guest gets EINVAL)", st.attempts,
            (now - st.since_ns) / 1'000'000, to_string(e.code()).data(), e.page(), holder, e.message().data());
        st = retry_state{};
        if (reason != KVM_EXIT_MEMORY_FAULT) {
            out.disposition = exit_disposition::resume;
            out.hypercall_ret = EINVAL;
        }
        return out;
    }

    void log(const char* fmt, ...) const __attribute__((format(printf, 2, 3))) {
        if (log_ == nullptr) return;
        char line[256] = "guestmem exit_router: ";
        const std::size_t prefix = std::strlen(line);
        std::va_list args;
        va_start(args, fmt);
        const int n = std::vsnprintf(line + prefix, sizeof line - prefix, fmt, args);
        va_end(args);
        if (n < 0) return;
        const std::size_t len = prefix + std::size_t(n);
        log_(log_context_, std::string_view(line, len < sizeof line ? len : sizeof line - 1));
    }

    map_type& map_;
    log_fn log_;
    void* log_context_;
    convert_options opts_;
    router_options retry_{};
};

} // namespace guestmem
