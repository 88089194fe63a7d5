/// @file
/// The customisation point that selects the range map's dense layout: a
/// Value with exactly two values (bool, shareability) needs no stored
/// values at all, because in a coalesced map the runs alternate. For such
/// a Value, range_map stores only run boundaries, 2 bytes each, in chunks
/// of 2^16 pages that switch to a bitmap where boundaries are denser than
/// one per 16 pages (docs/DESIGN.md §Range map, "dense layout").
#pragma once

#include <type_traits>

#include <guestmem/core/types.hpp>

namespace guestmem {

/// Says whether `Value` has exactly two values, and which. The primary
/// template says no (`enabled == false`): such a map uses the generic
/// B+-tree of run starts and values. Specialise it, with the same members
/// as the bool specialisation, for another two-valued type; every value
/// stored in the map must then be one of the two.
template <class Value>
struct two_valued {
    static constexpr bool enabled = false;  ///< not two-valued: the generic layout
};

/// bool: false is bit 0, true is bit 1.
template <>
struct two_valued<bool> {
    static constexpr bool enabled = true;  ///< two-valued: the dense layout
    /// The bit that stands for v.
    static constexpr bool bit(bool v) noexcept { return v; }
    /// The value a bit stands for.
    static constexpr bool value(bool b) noexcept { return b; }
};

/// shareability: shared is bit 0, guest_only bit 1.
template <>
struct two_valued<shareability> {
    static constexpr bool enabled = true;  ///< two-valued: the dense layout
    /// The bit that stands for v.
    static constexpr bool bit(shareability v) noexcept { return v == shareability::guest_only; }
    /// The value a bit stands for.
    static constexpr shareability value(bool b) noexcept { return b ? shareability::guest_only : shareability::shared; }
};

} // namespace guestmem
