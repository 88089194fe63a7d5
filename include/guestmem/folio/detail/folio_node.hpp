// guestmem/folio/detail/folio_node.hpp — the records behind the folio table.
// A top-level folio (one allocation) is a node in an intrusive rbtree keyed
// by its first page; a split folio points at one array of 512 records of
// the next lower standard order (the "metadata memory" a split needs, like
// hugetlb's vmemmap restore), recursively. A 1 GiB folio split to 2M costs
// one array of 512 small records, never 262144 per-page entries.
#pragma once

#include <boost/intrusive/set.hpp>

#include <algorithm>
#include <cstdint>
#include <iterator>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/core/types.hpp>

namespace guestmem {

/// What folio_table::stats() reports.
struct folio_counters {
    std::uint64_t folios_by_order[3] = {};  ///< leaf folios: [0] 4K, [1] 2M, [2] 1G
    std::uint64_t split_folios = 0;         ///< folios currently split into pieces
    std::uint64_t pinned_pages = 0;         ///< pages with at least one pin
    std::uint64_t poisoned_folios = 0;      ///< poisoned leaves still in the table
    std::uint64_t allocated_pages = 0;      ///< pages backed by a folio
    std::uint64_t top_folios = 0;           ///< allocations (top-level folios)
    std::uint64_t quarantined_pages = 0;    ///< poisoned folios truncated and never returned
    friend bool operator==(const folio_counters&, const folio_counters&) = default;
};

} // namespace guestmem

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

/// Recount leaves, splits and poison under x.
inline void count_rec(const folio_rec& x, folio_counters& c) noexcept {
    if (!x.split()) {
        ++c.folios_by_order[detail::order_slot(x.order)];
        if (x.poisoned()) ++c.poisoned_folios;
        return;
    }
    ++c.split_folios;
    for (std::uint32_t i = 0; i < split_fanout; ++i) count_rec(x.children[i], c);
}

/// Visit the leaves under x that overlap r: f(rec&, first, top_order).
template <class Rec, class F>
void walk_rec(Rec& x, page_index first, page_range r, folio_order top_order, F& f) {
    if (!x.split()) return f(x, first, top_order);
    const folio_order co = next_lower_order(x.order);
    const std::uint64_t lo = r.begin > first ? (r.begin - first) >> co : 0;
    const page_index end_off = std::min(r.end, first + pages_in(x.order)) - first;
    const std::uint64_t hi = (end_off + pages_in(co) - 1) >> co;
    for (std::uint64_t i = lo; i < hi; ++i) walk_rec(x.children[i], first + (i << co), r, top_order, f);
}

} // namespace guestmem::detail
