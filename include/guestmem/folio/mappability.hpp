/// @file
/// The per-folio mappability state machine (docs/DESIGN.md §Mappability:
/// the states of guest_memfd's in-place conversion series) kept as DATA:
/// one table of (state x event) -> next state or refusal drives the folio
/// table and the guest memory object's fault path, a test walks every
/// entry, and write_mappability_dot() renders the same table as a Graphviz
/// graph.
///
///     all   --unshare-->          guest   (no unexpected reference remains)
///     all   --unshare_deferred--> none    (references remain; drain them)
///     none  --last_unpin-->       guest   (fired at once, for every folio size)
///     none  --share-->            all     (shared again before they drained)
///     faults are refused in none; host faults are refused in guest.
///
/// Everything here is constant data and constexpr lookups: O(1), no lock.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <guestmem/core/error.hpp>
#include <guestmem/core/types.hpp>

namespace guestmem {

/// What happens to a folio.
enum class mappability_event : std::uint8_t {
    share,             ///< the folio's pages become shared
    unshare,           ///< the pages become guest_only and no unexpected reference remains
    unshare_deferred,  ///< the pages become guest_only while pins remain (deferral chosen)
    last_unpin,        ///< the last unexpected reference on the folio dropped
    host_fault,        ///< host userspace or an untrusted device asks to map a page
    guest_fault,       ///< the hypervisor's stage-2 or a trusted device asks to map a page
};

/// Number of mappability states: the rows of mappability_table.
inline constexpr std::size_t mappability_state_count = 3;
/// Number of mappability events: the columns of mappability_table.
inline constexpr std::size_t mappability_event_count = 6;
/// Every mappability state, in row order (for walking the table).
inline constexpr mappability all_mappabilities[] = {mappability::all, mappability::guest, mappability::none};
/// Every mappability event, in column order.
inline constexpr mappability_event all_mappability_events[] = {
    mappability_event::share,      mappability_event::unshare,    mappability_event::unshare_deferred,
    mappability_event::last_unpin, mappability_event::host_fault, mappability_event::guest_fault};

/// The enumerator's name ("share", "unshare", ...), or "invalid
/// mappability event".
[[nodiscard]] constexpr std::string_view to_string(mappability_event e) noexcept {
    switch (e) {
    case mappability_event::share: return "share";
    case mappability_event::unshare: return "unshare";
    case mappability_event::unshare_deferred: return "unshare_deferred";
    case mappability_event::last_unpin: return "last_unpin";
    case mappability_event::host_fault: return "host_fault";
    case mappability_event::guest_fault: return "guest_fault";
    }
    return "invalid mappability event";
}

/// One cell of the table. A refused transition leaves the state unchanged
/// and names the error the caller reports.
struct mappability_transition {
    bool allowed;         ///< true: the event moves the folio to `next`; false: it is refused
    mappability next;     ///< meaningful when allowed
    errc refusal;         ///< meaningful when refused
    std::string_view why; ///< one line saying why (a string literal; shown in the graph and in tests)
};

namespace detail {
constexpr mappability_transition go(mappability next, std::string_view why) noexcept {
    return {true, next, errc::invalid_argument, why};
}
constexpr mappability_transition refuse(errc code, std::string_view why) noexcept {
    return {false, mappability::none, code, why};
}
} // namespace detail

/// THE table: rows are states (all, guest, none), columns are events in
/// the order of `mappability_event`. Index it with the enumerators' values,
/// or use next_mappability, which checks them.
inline constexpr mappability_transition mappability_table[mappability_state_count][mappability_event_count] = {
    /* all */ {
        detail::go(mappability::all, "already shared"),
        detail::go(mappability::guest, "no unexpected reference: private at once"),
        detail::go(mappability::none, "pins remain: nobody maps it until they drain"),
        detail::go(mappability::all, "shared folio: nothing deferred"),
        detail::go(mappability::all, "shared: the host may map it"),
        detail::go(mappability::all, "shared: the guest may map it"),
    },
    /* guest */ {
        detail::go(mappability::all, "shared again"),
        detail::go(mappability::guest, "already private"),
        detail::go(mappability::guest, "already private: pins by the guest side need no draining"),
        detail::go(mappability::guest, "private folio: nothing deferred"),
        detail::refuse(errc::permission_denied, "private: the host may not map it"),
        detail::go(mappability::guest, "private: the guest side may map it"),
    },
    /* none */ {
        detail::go(mappability::all, "shared again before the pins drained"),
        detail::go(mappability::guest, "the caller vouches that no reference remains"),
        detail::go(mappability::none, "still draining"),
        detail::go(mappability::guest, "last pin dropped: private at once"),
        detail::refuse(errc::permission_denied, "becoming private: the host may not map it"),
        detail::refuse(errc::retry, "pins still draining: retry once they drop"),
    },
};

/// Look up (state, event). O(1). Invalid enumeration values are refused
/// with invalid_argument (in the returned transition; nothing is thrown).
[[nodiscard]] constexpr mappability_transition next_mappability(mappability from, mappability_event event) noexcept {
    const auto s = static_cast<std::size_t>(from);
    const auto e = static_cast<std::size_t>(event);
    if (s >= mappability_state_count || e >= mappability_event_count)
        return detail::refuse(errc::invalid_argument, "invalid state or event");
    return mappability_table[s][e];
}

namespace detail {
/// The table's next states alone, one byte per (state, event), `refused`
/// where the table refuses: what the conversion's hot path reads (derived
/// from THE table at compile time, so the two cannot disagree).
inline constexpr std::uint8_t refused = 0xff;
inline constexpr auto mappability_next = [] {
    std::array<std::array<std::uint8_t, mappability_event_count>, mappability_state_count> t{};
    for (std::size_t s = 0; s < mappability_state_count; ++s)
        for (std::size_t e = 0; e < mappability_event_count; ++e)
            t[s][e] = mappability_table[s][e].allowed ? static_cast<std::uint8_t>(mappability_table[s][e].next) : refused;
    return t;
}();
} // namespace detail

/// The table as a Graphviz DOT digraph: one solid edge per allowed change of
/// state, dotted self-loops for allowed no-ops, red dashed edges into a
/// "refused" node for refusals. `Out` is any ostream-like sink (`out <<`
/// of string literals and string views). O(states x events).
template <class Out>
void write_mappability_dot(Out& out) {
    out << "digraph mappability {\n"
           "  rankdir=LR;\n"
           "  node [shape=circle];\n"
           "  refused [shape=box, color=red, fontcolor=red];\n";
    for (mappability s : all_mappabilities) {
        for (mappability_event e : all_mappability_events) {
            const mappability_transition t = next_mappability(s, e);
            out << "  " << to_string(s) << " -> ";
            if (!t.allowed) {
                out << "refused [label=\"" << to_string(e) << " (" << to_string(t.refusal)
                    << ")\", style=dashed, color=red];\n";
            } else {
                out << to_string(t.next) << " [label=\"" << to_string(e) << "\"";
                if (t.next == s) out << ", style=dotted";
                out << "];\n";
            }
        }
    }
    out << "}\n";
}

} // namespace guestmem
