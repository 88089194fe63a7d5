// guestmem/folio/detail/folio_node.hpp — the records behind the folio table.
// A top-level folio (one allocation) is a node in an intrusive rbtree keyed
// by its first page; a split folio points at one array of 512 records of
// the next lower standard order (the "metadata memory" a split needs, like
// hugetlb's vmemmap restore), recursively. A 1 GiB folio split to 2M costs
// one array of 512 small records, never 262144 per-page entries.
#pragma once

#include <boost/intrusive/set.hpp>

#include <cstdint>

#include <guestmem/core/error.hpp>
#include <guestmem/core/types.hpp>

namespace guestmem::detail {

/// Pieces per split: every standard order is 512 times the next lower one.
inline constexpr std::uint32_t split_fanout = 512;

struct folio_rec {
    frame_number frame = 0;
    folio_rec* children = nullptr;  ///< split_fanout records of next_lower_order(order) while split
    page_index poison = no_page;    ///< first poisoned page of this leaf, or no_page
    folio_order order = order_4k;
    mappability map = mappability::all;

    [[nodiscard]] bool split() const noexcept { return children != nullptr; }
    [[nodiscard]] bool poisoned() const noexcept { return poison != no_page; }
};

struct top_folio : boost::intrusive::set_base_hook<> {
    page_index first = 0;
    folio_rec rec;
    bool fresh = false;  ///< created by the populate in progress (rolled back on failure)

    [[nodiscard]] page_index end() const noexcept { return first + pages_in(rec.order); }
};

struct top_folio_key {
    using type = page_index;
    page_index operator()(const top_folio& t) const noexcept { return t.first; }
};

using top_folio_set = boost::intrusive::set<top_folio, boost::intrusive::key_of_value<top_folio_key>>;

/// Index into per-order counters: 4K -> 0, 2M -> 1, 1G -> 2.
[[nodiscard]] constexpr unsigned order_slot(folio_order o) noexcept {
    return o >= order_1g ? 2 : o >= order_2m ? 1 : 0;
}

/// Does any leaf under rec carry poison?
[[nodiscard]] inline bool any_poison(const folio_rec& rec) noexcept {
    if (!rec.split()) return rec.poisoned();
    for (std::uint32_t i = 0; i < split_fanout; ++i)
        if (any_poison(rec.children[i])) return true;
    return false;
}

[[nodiscard]] inline bool same_structure(const folio_rec& a, const folio_rec& b) noexcept {
    if (a.frame != b.frame || a.order != b.order || a.map != b.map || a.poison != b.poison ||
        a.split() != b.split())
        return false;
    if (a.split())
        for (std::uint32_t i = 0; i < split_fanout; ++i)
            if (!same_structure(a.children[i], b.children[i])) return false;
    return true;
}

/// Top-level folio holding p, or the first one after p.
template <class Set>
[[nodiscard]] auto top_at_or_after(Set& s, page_index p) noexcept {
    auto it = s.upper_bound(p);
    if (it != s.begin()) {
        auto prev = std::prev(it);
        if (prev->end() > p) return prev;
    }
    return it;
}

} // namespace guestmem::detail
