// guestmem/folio/detail/folio_populate.hpp — the bodies of folio_table's
// populate (fallocate), declared and documented in folio_table.hpp: fill
// the holes of a range with folios of the largest standard order that
// fits, each split at once as far as the shareability map needs; all or
// nothing (the folios this call created are removed on failure); refused
// where the range holds a quarantined page.
#pragma once

#include <cinttypes>

#include <guestmem/folio/folio_table.hpp>

namespace guestmem {

template <folio_allocator A, class NodeAllocator>
template <class ShareMap>
status folio_table<A, NodeAllocator>::populate(page_range r, const ShareMap& share) {
    if (auto s = check_range(r, size_); !s) return s;
    if (c_.quarantined_pages != 0)
        if (page_index q = first_quarantined(r); q != no_page) return quarantined_error(q, r);
    if (!index_.reserve())
        return error::make(errc::out_of_memory, r.begin, "no memory for the folio index (8 bytes per %s of the object)",
                           max_order_ >= order_1g ? "GiB" : "2 MiB");
    page_index p = r.begin;
    auto it = detail::top_at_or_after(tops_, r.begin);
    status st = ok();
    while (p < r.end) {
        if (it != tops_.end() && it->first <= p) {
            p = it->end();
            ++it;
            continue;
        }
        const page_index hole_end = it != tops_.end() && it->first < r.end ? it->first : r.end;
        const folio_order o = largest_fitting_order(p, hole_end, max_order_);
        st = create(p, o, share, it);
        if (!st) break;
        p += pages_in(o);
    }
    for (auto i = detail::top_at_or_after(tops_, r.begin); i != tops_.end() && i->first < r.end;) {
        if (!i->fresh) {
            ++i;
        } else if (st) {
            i->fresh = false;
            ++i;
        } else {
            i = free_top(i);
        }
    }
    return st;
}

template <folio_allocator A, class NodeAllocator>
template <class ShareMap>
status folio_table<A, NodeAllocator>::split_for(const ref& x, const ShareMap& share) {
    const page_range R{x.first, x.end()};
    const shareability s0 = share.at(x.first);
    if (x.order == order_4k || share.all_of(R, s0)) {
        x.set_map(initial_map(s0));
        return ok();
    }
    if (auto s = split_one(x); !s) return s;
    for (std::uint32_t i = 0; i < fanout; ++i)
        if (auto s = split_for(x.child(i), share); !s) return s;
    return ok();
}

template <folio_allocator A, class NodeAllocator>
status folio_table<A, NodeAllocator>::split_one(const ref& x) noexcept {
    const folio_order co = next_lower_order(x.order);
    pieces* children = alloc_pieces(co);
    if (children == nullptr)
        return error::make(errc::out_of_memory, x.first,
                           "no memory for the records to split the order-%u folio at page %#" PRIx64,
                           unsigned{x.order}, x.first);
    if (auto s = alloc_->prepare_split(x.frame, x.order, co); !s) {
        free_pieces(children, co);
        return s;
    }
    do_split(x, children);
    return ok();
}

template <folio_allocator A, class NodeAllocator>
auto folio_table<A, NodeAllocator>::make_top(page_index p, folio_order o,
                                             typename detail::top_folio_set::iterator hint) noexcept -> result<top*> {
    top* t = top_traits::allocate(top_alloc_, 1);
    if (t == nullptr)
        return error::make(errc::out_of_memory, p, "no memory for the record of a folio at page %#" PRIx64, p);
    auto frame = alloc_->allocate(p, o);
    if (!frame) {
        top_traits::deallocate(top_alloc_, t, 1);
        return frame.error();
    }
    std::construct_at(t);
    t->first = p;
    t->last_end = p + pages_in(o);
    t->frame = frame.value();
    t->order = o;
    link_top(hint, *t);
    ++c_.folios_by_order[detail::order_slot(o)];
    ++c_.top_folios;
    c_.allocated_pages += pages_in(o);
    return t;
}

template <folio_allocator A, class NodeAllocator>
template <class ShareMap>
status folio_table<A, NodeAllocator>::create(page_index p, folio_order o, const ShareMap& share,
                                             typename detail::top_folio_set::iterator hint) {
    auto t = make_top(p, o, hint);
    if (!t) return t.error();
    t.value()->fresh = true;
    return split_for(t.value()->ref(), share);
}

} // namespace guestmem
