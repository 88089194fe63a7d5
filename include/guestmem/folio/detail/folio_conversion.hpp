// guestmem/folio/detail/folio_conversion.hpp — the bodies of folio_table's
// conversion steps, declared and documented in folio_table.hpp: plan_into
// and plan_ends (which leaves at the two ends of the range split),
// prepare_splits (the fallible part), move_leaf and commit_walk (split, then
// move mappability; cannot fail), try_merge (pieces back into their folio
// once all are plain guest), and do_split / do_merge / all_plain_guest.
#pragma once

#include <cinttypes>
#include <cstring>

#include <guestmem/folio/folio_table.hpp>

namespace guestmem {

template <folio_allocator A, class NodeAllocator>
template <class ShareMap>
[[gnu::always_inline]] inline void folio_table<A, NodeAllocator>::plan_into(plan& p, const ShareMap& share) const noexcept {
    p.count = 0;
    p.leaf = {};
    // The top holding range.begin, from the fault path's direct index when
    // it is of the largest order (no tree walk), else the first at or after.
    const top* hit = index_.find(p.range.begin);
    const auto it = hit != nullptr ? tops_.iterator_to(*hit) : detail::top_at_or_after(tops_, p.range.begin);
    p.first_top = it == tops_.end() ? nullptr : &*it;
    if (it == tops_.end()) return;  // all holes: nothing to split
    // The range ends where a top folio inside it ends (a uniform conversion
    // of whole folios): no leaf crosses an end of the range, nothing splits.
    if (it->first >= p.range.begin && it->end() == p.range.end) return;
    // One page inside a 4 KiB leaf of a split folio (a 4 KiB conversion):
    // what plan_ends finds (that leaf, nothing to split), without its call.
    if (it->first <= p.range.begin && it->split()) {
        const ref x = descend(it->ref(), p.range.begin);
        if (x.order == order_4k && x.end() >= p.range.end) {
            p.leaf = x;
            return;
        }
    }
    plan_ends(p, it, share);
}

template <folio_allocator A, class NodeAllocator>
template <class ShareMap>
[[gnu::noinline]] void folio_table<A, NodeAllocator>::plan_ends(plan& p, typename detail::top_folio_set::const_iterator it,
                                                                const ShareMap& share) const noexcept {
    const page_range r = p.range;
    // Leaves of a top folio that lies inside the range are never mixed
    // afterwards: only a top crossing an end of the range can need a split.
    const auto inside = [&](const top& t) { return t.first >= r.begin && t.end() <= r.end; };
    if (it->first <= r.begin && !inside(*it)) {
        const ref x = descend(it->ref(), r.begin);
        plan_splits(p, x, r.begin, share);
        // One leaf holds the whole range and needs no split: the last
        // page would find the same leaf and plan the same nothing, and the
        // commit moves that leaf alone.
        if (p.count == 0 && x.end() >= r.end) {
            p.leaf = x;
            return;
        }
    }
    const page_index last = r.end - 1;
    if (it->end() <= last) it = detail::top_at_or_after(tops_, last);
    if (it != tops_.end() && it->first <= last && !inside(*it))
        plan_splits(p, descend(it->ref(), last), last, share);
}

template <folio_allocator A, class NodeAllocator>
inline status folio_table<A, NodeAllocator>::prepare_splits(plan& p) {
    for (unsigned k = 0; k < p.count; ++k) {
        auto& op = p.ops[k];
        op.children = alloc_pieces(next_lower_order(op.from));
        if (op.children == nullptr) {
            abort_ops(p);
            return error::make(errc::out_of_memory, op.first,
                               "no memory for the records to split the order-%u folio at page %#" PRIx64,
                               unsigned{op.from}, op.first);
        }
        if (auto s = alloc_->prepare_split(op.frame, op.from, next_lower_order(op.from)); !s) {
            abort_ops(p);
            return error::make(errc::out_of_memory, op.first, "cannot split the order-%u folio at page %#" PRIx64
                               ": %.*s", unsigned{op.from}, op.first, int(s.error().message().size()),
                               s.error().message().data());
        }
        op.reserved = true;
    }
    p.owner_ = this;
    return ok();
}

template <folio_allocator A, class NodeAllocator>
[[gnu::always_inline]] inline std::uint64_t folio_table<A, NodeAllocator>::move_leaf(const ref& x,
                                                                                   shareability to) noexcept {
    if (to != shareability::guest_only) {
        fire(x, mappability_event::share);
        return 0;
    }
    // A leaf that still holds pins drains (unshare_deferred) whatever the
    // caller asked: without deferral the caller refused pins inside the
    // range, so a pinned leaf here is one already private and draining
    // (none stays none) or pinned by the guest side (guest stays guest).
    // Only an unpinned leaf may settle at once.
    if (live_first_pinned({x.first, x.end()}) == no_page) {
        fire(x, mappability_event::unshare);
        return 0;
    }
    const bool was_none = x.map() == mappability::none;
    fire(x, mappability_event::unshare_deferred);
    return !was_none && x.map() == mappability::none;
}

template <folio_allocator A, class NodeAllocator>
[[gnu::noinline]] std::uint64_t folio_table<A, NodeAllocator>::commit_walk(plan& p) noexcept {
    unsigned settle_mask = 0;
    std::uint64_t drained = 0;  // leaves in the range this commit moved into none
    for (unsigned k = 0; k < p.count; ++k) {
        auto& op = p.ops[k];
        if (!op.reserved) continue;  // contract violation: commit without prepare
        const ref leaf = find_leaf(op.first);
        op.reserved = false;
        if (leaf && !leaf.split() && leaf.order == op.from && !leaf.poisoned()) {
            // Pieces of a folio in none inherit none: those without pins
            // settle below (pieces in the range are settled by their event).
            if (leaf.map() == mappability::none) settle_mask |= 1u << k;
            do_split(leaf, op.children);
        } else {
            free_pieces(op.children, next_lower_order(op.from));
            alloc_->abort_split(op.frame, op.from, next_lower_order(op.from));
        }
        op.children = nullptr;
    }
    const page_range r = p.range;
    walk_from(*this, top_iterator(p.first_top), r, [&](const ref& x, folio_order) { drained += move_leaf(x, p.to); });
    for (unsigned k = 0; k < p.count; ++k)
        if ((settle_mask >> k) & 1u) settle({p.ops[k].first, p.ops[k].first + pages_in(p.ops[k].from)});
    p.count = 0;
    p.owner_ = nullptr;
    return drained;
}

template <folio_allocator A, class NodeAllocator>
template <class ShareMap>
inline void folio_table<A, NodeAllocator>::plan_splits(plan& p, const ref& x, page_index b,
                                                      const ShareMap& share) noexcept {
    if (x.poisoned()) return;
    page_index first = x.first;
    frame_number frame = x.frame;
    folio_order o = x.order;
    while (o > order_4k && mixed_after(page_range{first, first + pages_in(o)}, p.range, p.to, share)) {
        bool dup = false;
        for (unsigned k = 0; k < p.count; ++k) dup |= p.ops[k].first == first && p.ops[k].from == o;
        if (!dup) p.ops[p.count++] = typename plan::split_op{first, frame, o, nullptr, false};
        const folio_order co = next_lower_order(o);
        const page_index child = align_down(b, co);
        frame += child - first;
        first = child;
        o = co;
    }
}

template <folio_allocator A, class NodeAllocator>
template <class ShareMap>
inline void folio_table<A, NodeAllocator>::try_merge(const ref& x, page_range r, const ShareMap& share) noexcept {
    const folio_order co = next_lower_order(x.order);
    const std::uint64_t lo = r.begin > x.first ? (r.begin - x.first) >> co : 0;
    const page_index end_off = std::min(r.end, x.end()) - x.first;
    const std::uint64_t hi = (end_off + pages_in(co) - 1) >> co;
    const std::uint8_t* st = x.pieces()->state;
    if (co > order_4k)
        for (std::uint64_t i = lo; i < hi; ++i)
            if ((st[i] & detail::st_split) != 0) try_merge(x.child(i), r, share);
    if (!all_plain_guest(st)) return;
    const page_range R{x.first, x.end()};
    if (live_first_pinned(R) != no_page || !share.all_of(R, shareability::guest_only)) return;
    do_merge(x);
}

template <folio_allocator A, class NodeAllocator>
inline void folio_table<A, NodeAllocator>::do_split(const ref& x, pieces* children) noexcept {
    const folio_order co = next_lower_order(x.order);
    if (co > order_4k) ::new (static_cast<void*>(children)) wide_pieces;
    else ::new (static_cast<void*>(children)) pieces;
    std::memset(children->state, static_cast<int>(x.map()), fanout);
    alloc_->commit_split(x.frame, x.order, co);
    x.aux->sub = children;
    *x.st |= detail::st_split;
    --c_.folios_by_order[detail::order_slot(x.order)];
    c_.folios_by_order[detail::order_slot(co)] += fanout;
    ++c_.split_folios;
}

template <folio_allocator A, class NodeAllocator>
inline void folio_table<A, NodeAllocator>::do_merge(const ref& x) noexcept {
    const folio_order co = next_lower_order(x.order);
    alloc_->merge(x.frame, co, x.order);
    free_pieces(x.pieces(), co);
    x.aux->sub = nullptr;
    *x.st = static_cast<std::uint8_t>(mappability::guest);
    c_.folios_by_order[detail::order_slot(co)] -= fanout;
    ++c_.folios_by_order[detail::order_slot(x.order)];
    --c_.split_folios;
}

// A folio with shared pieces left is usually refused in its first word.
template <folio_allocator A, class NodeAllocator>
inline bool folio_table<A, NodeAllocator>::all_plain_guest(const std::uint8_t* st) noexcept {
    constexpr std::uint64_t guest8 = 0x0101010101010101ull * static_cast<std::uint8_t>(mappability::guest);
    for (std::uint32_t i = 0; i < fanout; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, st + i, sizeof w);
        if (w != guest8) return false;
    }
    return true;
}

} // namespace guestmem
