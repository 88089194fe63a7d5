/// @file
/// The error model: `errc` codes in a std::error_category named "guestmem",
/// an `error` value that carries the code, the first offending page, the
/// vetoing consumer and a message in the caller's terms, and `result<T>`
/// built on Boost.Outcome's basic_result.
///
/// Why Boost.Outcome: it is the well-kept result type in Debian's Boost
/// 1.74, and `basic_result` with the `terminate` policy compiles under
/// -fno-exceptions (the `boost/outcome/result.hpp` convenience header does
/// not: it pulls in `boost/exception_ptr.hpp`). The message is formatted
/// into a fixed buffer inside the error so that failing never allocates.
#pragma once

#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/terminate.hpp>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include <guestmem/core/types.hpp>

namespace guestmem {

/// Error codes. Zero is never used: a default std::error_code means success.
enum class errc : int {
    invalid_range = 1,  ///< empty, inverted, unaligned, overflowing or out-of-bounds range
    out_of_memory,      ///< the allocator policy (or a reservation) ran out
    busy,               ///< an unexpected reference (pin) blocks the operation
    vetoed,             ///< a consumer refused a vetoable invalidation
    poisoned,           ///< the page is poisoned and is never handed out again
    not_allocated,      ///< no folio backs the page (a hole)
    permission_denied,  ///< the accessor may not map this page
    not_supported,      ///< the policy or platform cannot do this
    invalid_argument,   ///< a bad enumeration value or parameter other than a range
    already_bound,      ///< double bind, or a binding overlapping one of the same consumer
    not_bound,          ///< unbind of an unknown or stale binding
    retry,              ///< the mapping went stale (mappability none, or an invalidation ran)
    would_deadlock,     ///< a consumer callback called back into the object whose lock its thread holds
};

/// The enumerator's name ("invalid_range", ...), or "unknown guestmem error"
/// for any other value. Also the category's message for a code.
[[nodiscard]] constexpr std::string_view to_string(errc e) noexcept {
    switch (e) {
    case errc::invalid_range: return "invalid_range";
    case errc::out_of_memory: return "out_of_memory";
    case errc::busy: return "busy";
    case errc::vetoed: return "vetoed";
    case errc::poisoned: return "poisoned";
    case errc::not_allocated: return "not_allocated";
    case errc::permission_denied: return "permission_denied";
    case errc::not_supported: return "not_supported";
    case errc::invalid_argument: return "invalid_argument";
    case errc::already_bound: return "already_bound";
    case errc::not_bound: return "not_bound";
    case errc::retry: return "retry";
    case errc::would_deadlock: return "would_deadlock";
    }
    return "unknown guestmem error";
}

namespace detail {
class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "guestmem"; }
    std::string message(int code) const override {
        return std::string(to_string(static_cast<errc>(code)));
    }
};
} // namespace detail

/// The "guestmem" error category (one instance per program, built on first
/// use; thread-safe). Its message(code) is to_string(errc(code)).
[[nodiscard]] inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}

/// `e` as a std::error_code in error_category(). Found by ADL, so an errc
/// converts implicitly: `std::error_code ec = errc::busy;`.
[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

} // namespace guestmem

template <> struct std::is_error_code_enum<guestmem::errc> : std::true_type {};

namespace guestmem {

/// "No page": error::page() of an error that is not about a page, and what
/// lookups return when they find nothing (2^64 - 1, never a valid index).
inline constexpr page_index no_page = std::numeric_limits<page_index>::max();
/// "No binding": error::binding_id() of an error no consumer caused.
inline constexpr std::uint64_t no_binding = std::numeric_limits<std::uint64_t>::max();

/// A failed operation: what went wrong (code), where (the first offending
/// page, as the kernel's error_offset), who (the vetoing consumer's binding
/// id, if any) and a sentence in the caller's terms. Trivially copyable;
/// building one never allocates.
class error {
public:
    /// Size of the message buffer, terminator included: longer messages are
    /// truncated to 159 characters.
    static constexpr std::size_t max_message = 160;

    /// An empty message. Only the terminator is written: Outcome's result
    /// stores an error beside every value, so every successful `status`
    /// builds one, and zero-filling the buffer cost ~40 instructions each.
    constexpr error() noexcept { text_[0] = '\0'; }

    /// An error of `code` at `page` (no_page when it is not about a page),
    /// its message formatted printf-style from `fmt` and the arguments that
    /// follow, truncated to max_message - 1 characters. Never allocates.
    /// Example: `error::make(errc::invalid_range, 0x200, "page %llu is past
    /// the end", 0x200ull)`.
    [[nodiscard]] static error make(errc code, page_index page, const char* fmt, ...) noexcept
        __attribute__((format(printf, 3, 4))) {
        error e;
        e.code_ = code;
        e.page_ = page;
        std::va_list args;
        va_start(args, fmt);
        std::vsnprintf(e.text_, max_message, fmt, args);
        va_end(args);
        return e;
    }

    /// What went wrong (invalid_argument for a default-constructed error).
    [[nodiscard]] constexpr errc code() const noexcept { return code_; }
    /// code() as a std::error_code in the "guestmem" category.
    [[nodiscard]] std::error_code error_code() const noexcept { return make_error_code(code_); }
    /// First offending page, or `no_page` when the error is not about a page.
    [[nodiscard]] constexpr page_index page() const noexcept { return page_; }
    /// Id of the binding whose consumer vetoed (binding_handle::id), or
    /// `no_binding` when no consumer caused the error.
    [[nodiscard]] constexpr std::uint64_t binding_id() const noexcept { return binding_; }
    /// The sentence in the caller's terms. The view points into this error:
    /// it is valid as long as the error is.
    [[nodiscard]] std::string_view message() const noexcept { return text_; }

    /// Attach the vetoing consumer's binding id (used by the notifier set).
    constexpr error& with_binding_id(std::uint64_t id) noexcept {
        binding_ = id;
        return *this;
    }

    /// True when the error's code is `b` (`r.error() == errc::busy`).
    friend bool operator==(const error& a, errc b) noexcept { return a.code_ == b; }

private:
    errc code_ = errc::invalid_argument;
    page_index page_ = no_page;
    std::uint64_t binding_ = no_binding;
    char text_[max_message];  // NOLINT: written up to its terminator only
};

/// std::error_code interop: `std::error_code ec = make_error_code(err);`
[[nodiscard]] inline std::error_code make_error_code(const error& e) noexcept { return e.error_code(); }

namespace outcome = BOOST_OUTCOME_V2_NAMESPACE;

/// The return type of every fallible operation. `[[nodiscard]]` comes from
/// Outcome (BOOST_OUTCOME_NODISCARD on basic_result). Accessing the value of
/// a failed result terminates (there are no exceptions to throw).
template <class T>
using result = outcome::basic_result<T, error, outcome::policy::terminate>;

/// result<void>, for operations that return nothing but may fail.
using status = result<void>;

/// The success value for `status`: `return ok();`. (A `result<T>` is
/// returned from a T.)
[[nodiscard]] constexpr auto ok() noexcept { return outcome::success(); }

} // namespace guestmem
