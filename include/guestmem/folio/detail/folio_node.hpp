// guestmem/folio/detail/folio_node.hpp — the records behind the folio table.
// A top-level folio (one allocation) is a node in an intrusive rbtree keyed
// by its first page. A split folio points at one piece array for its 512
// pieces of the next lower standard order (the "metadata memory" a split
// needs, like hugetlb's vmemmap restore), recursively. A piece's frame,
// first page and order are implicit (parent's + i << order), so a piece
// costs one state byte (mappability, poisoned, split); pieces that are
// themselves huge (2M pieces of a 1G folio) add one 8-byte slot for their
// own piece array or their poison page. Splitting 2M -> 4K allocates and
// fills 512 bytes; 1G -> 2M 4.5 KiB of which 512 bytes are written.
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
    std::uint64_t quarantined_pages = 0;    ///< pages of poisoned leaves of truncated folios, kept out of use
    std::uint64_t detached_pages = 0;       ///< pages of truncated folios kept until their last unpin
    friend bool operator==(const folio_counters&, const folio_counters&) = default;
};

} // namespace guestmem

namespace guestmem::detail {

/// Pieces per split: every standard order is 512 times the next lower one.
inline constexpr std::uint32_t split_fanout = 512;

/// State byte of a folio record: mappability in the low two bits, then flags.
inline constexpr std::uint8_t st_map_mask = 3, st_poisoned = 4, st_split = 8;
/// A leaf of a detached folio already given back to the allocator.
inline constexpr std::uint8_t st_freed = 16;

/// The pieces of a folio split one level, as state bytes.
struct piece_array {
    std::uint8_t state[split_fanout];
};
/// Per-record slot: its piece array while split, its poison page while poisoned
/// (a split record is never poisoned and a poisoned one is never split).
union piece_aux {
    piece_array* sub;
    page_index poison;
};
/// Pieces that are huge themselves (order > 4K) also get a slot each; only
/// the slots whose state byte says split or poisoned are meaningful.
struct wide_piece_array : piece_array {
    piece_aux aux[split_fanout];
};

/// One folio record, top-level or piece: where its state lives and what it
/// backs. Cheap to copy; a view into the table, valid until it changes.
struct folio_ref {
    std::uint8_t* st = nullptr;
    piece_aux* aux = nullptr;  ///< nullptr for a 4K piece (poison page = its first page; never split)
    frame_number frame = 0;
    page_index first = 0;
    folio_order order = order_4k;

    [[nodiscard]] explicit operator bool() const noexcept { return st != nullptr; }
    [[nodiscard]] mappability map() const noexcept { return static_cast<mappability>(*st & st_map_mask); }
    void set_map(mappability m) const noexcept {
        *st = static_cast<std::uint8_t>((*st & ~st_map_mask) | static_cast<std::uint8_t>(m));
    }
    [[nodiscard]] bool split() const noexcept { return (*st & st_split) != 0; }
    [[nodiscard]] bool poisoned() const noexcept { return (*st & st_poisoned) != 0; }
    [[nodiscard]] page_index poison_page() const noexcept {
        return !poisoned() ? no_page : aux != nullptr ? aux->poison : first;
    }
    [[nodiscard]] page_index end() const noexcept { return first + pages_in(order); }
    [[nodiscard]] piece_array* pieces() const noexcept { return aux->sub; }
    /// Piece i of a split record.
    [[nodiscard]] folio_ref child(std::uint64_t i) const noexcept {
        const folio_order co = next_lower_order(order);
        piece_array* c = aux->sub;
        piece_aux* ca = co > order_4k ? &static_cast<wide_piece_array*>(c)->aux[i] : nullptr;
        return {&c->state[i], ca, frame + (i << co), first + (i << co), co};
    }
};

/// A top-level folio: its set hook keeps the color in the parent pointer
/// (optimize_size) so the record stays one 64-byte cache line with its
/// end stored for the lookup key.
struct top_folio : boost::intrusive::set_base_hook<boost::intrusive::optimize_size<true>> {
    page_index first = 0;
    page_index last_end = 0;  ///< first + pages_in(order): the set's key
    frame_number frame = 0;
    piece_aux aux{nullptr};
    folio_order order = order_4k;
    std::uint8_t state = 0;  ///< mappability::all, not split, not poisoned
    bool fresh = false;      ///< created by the populate in progress (rolled back on failure)
    bool holds_pins = false; ///< detached: truncated while pinned, kept until its last unpin

    [[nodiscard]] page_index end() const noexcept { return last_end; }
    [[nodiscard]] page_range range() const noexcept { return {first, last_end}; }
    [[nodiscard]] bool split() const noexcept { return (state & st_split) != 0; }
    /// The record (const tops hand out a ref only read through).
    [[nodiscard]] folio_ref ref() const noexcept {
        auto& t = const_cast<top_folio&>(*this);
        return {&t.state, &t.aux, frame, first, order};
    }
};

/// Tops are keyed by their end (one past their last page): tops never
/// overlap, so this is the same order as by first page, and "the top
/// holding p, or the first one after p" is one upper_bound(p) descent.
struct top_folio_key {
    using type = page_index;
    page_index operator()(const top_folio& t) const noexcept { return t.last_end; }
};

using top_folio_set = boost::intrusive::set<top_folio, boost::intrusive::key_of_value<top_folio_key>>;
/// Detached tops (truncated while pinned or poisoned) may overlap each
/// other and the live ones: the same records, in a multiset.
using detached_folio_set = boost::intrusive::multiset<top_folio, boost::intrusive::key_of_value<top_folio_key>>;

/// Index into per-order counters: 4K -> 0, 2M -> 1, 1G -> 2.
[[nodiscard]] constexpr unsigned order_slot(folio_order o) noexcept {
    return o >= order_1g ? 2 : o >= order_2m ? 1 : 0;
}

/// Pages of the poisoned leaves under x.
[[nodiscard]] inline std::uint64_t poisoned_pages(const folio_ref& x) noexcept {
    if (!x.split()) return x.poisoned() ? pages_in(x.order) : 0;
    std::uint64_t n = 0;
    for (std::uint32_t i = 0; i < split_fanout; ++i) n += poisoned_pages(x.child(i));
    return n;
}

/// Does any leaf under x carry poison?
[[nodiscard]] inline bool any_poison(const folio_ref& x) noexcept {
    if (!x.split()) return x.poisoned();
    for (std::uint32_t i = 0; i < split_fanout; ++i)
        if (any_poison(x.child(i))) return true;
    return false;
}

[[nodiscard]] inline bool same_structure(const folio_ref& a, const folio_ref& b) noexcept {
    if (a.frame != b.frame || a.order != b.order || *a.st != *b.st || a.poison_page() != b.poison_page())
        return false;
    if (a.split())
        for (std::uint32_t i = 0; i < split_fanout; ++i)
            if (!same_structure(a.child(i), b.child(i))) return false;
    return true;
}

/// Top-level folio holding p, or the first one after p: the first top
/// whose end is past p.
template <class Set>
[[nodiscard]] auto top_at_or_after(Set& s, page_index p) noexcept {
    return s.upper_bound(p);
}

/// Recount leaves, splits and poison under x.
inline void count_rec(const folio_ref& x, folio_counters& c) noexcept {
    if (!x.split()) {
        ++c.folios_by_order[detail::order_slot(x.order)];
        if (x.poisoned()) ++c.poisoned_folios;
        return;
    }
    ++c.split_folios;
    for (std::uint32_t i = 0; i < split_fanout; ++i) count_rec(x.child(i), c);
}

/// Visit the leaves under x that overlap r: f(const folio_ref&, top_order).
template <class F>
void walk_rec(const folio_ref& x, page_range r, folio_order top_order, F& f) {
    if (!x.split()) return f(x, top_order);
    const folio_order co = next_lower_order(x.order);
    const std::uint64_t lo = r.begin > x.first ? (r.begin - x.first) >> co : 0;
    const page_index end_off = std::min(r.end, x.end()) - x.first;
    const std::uint64_t hi = (end_off + pages_in(co) - 1) >> co;
    for (std::uint64_t i = lo; i < hi; ++i) walk_rec(x.child(i), r, top_order, f);
}

} // namespace guestmem::detail
