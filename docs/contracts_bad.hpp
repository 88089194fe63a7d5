/// @file
/// The self-test of docs/contracts.cmake (not a header of the library, and
/// not compiled): six public functions whose contract is missing or written
/// as prose, which the check must find (EXPECT=6), among declarations it must
/// accept or skip. Marked "finds:" and "accepts:" below.
#pragma once

#include <functional>

namespace example {

/// finds: a free function with Lock but no Cost field.
/// Lock: none.
inline int free_function(int x) { return x; }

/// accepts: a free function with every field.
/// Errors:    invalid_range (at x) when x < 0.
/// Lock:      none.
/// Cost:      O(1).
/// Allocates: nothing.
template <class T = int>
inline T good_template(T x) { return x; }

namespace detail {
inline int internal_helper(int x) { return x; }  // accepts: detail is not public
} // namespace detail

struct options {
    std::function<void(int)> on_event;  ///< accepts: a data member, not a function
    int count{0};                       ///< accepts: a data member
    int (*hook)(int) noexcept = nullptr;  ///< accepts: a pointer to a function, a data member
};

class widget {
public:
    /// accepts: a trivial constructor with both fields on one line.
    /// Lock: none. Cost: O(1).
    explicit widget(int n, options o = {}) noexcept : n_{n}, m_(o.count) {}
    widget(const widget&) = delete;  // accepts: deleted, nothing to state

    int undocumented() const;  // finds: no doc comment

    /// finds: the old prose form. Errors, nothing changed: not_bound when
    /// `id` is unknown. Lock: exclusive. O(log n).
    int prose(int id);

    /// finds: names an error code without an Errors: field.
    /// Returns invalid_range when n is 0.
    /// Lock: shared.
    /// Cost: O(1).
    int names_code(int n);

    /// finds: an Error prose label (busy when pinned).
    /// Lock: exclusive.
    /// Cost: O(1).
    int error_label();

    /// Lock: none. Cost: O(1).
    int no_summary() const;  // finds: the fields come first

    /// accepts: operators are functions too, and this one has its fields.
    /// Lock: none. Cost: O(1).
    bool operator==(const widget& o) const noexcept { return n_ == o.n_; }

private:
    class hidden {
    public:
        int not_public_api();  // accepts: inside a private nested class
    };
    int private_member();  // accepts: private
    int n_;
    int m_;
};

// accepts: an out-of-class definition (the declaration has the contract)
inline int widget::prose(int id) { return id; }

} // namespace example
