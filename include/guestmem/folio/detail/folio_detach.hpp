// guestmem/folio/detail/folio_detach.hpp — the bodies of folio_table's
// truncation and of what it leaves behind, declared and documented in
// folio_table.hpp. Truncation never fails and never frees memory someone
// may still reach: a folio it removes that is pinned or poisoned is
// detached (its record moves from the live set to detached_, with its split
// structure, so the pages are a hole again). Its healthy leaves go back to
// the allocator once no pin holds them: on the last unpin (the kernel keeps
// a truncated folio alive by its refcount the same way) or, where the
// allocator's frames are refcounted by the kernel (memfd, guest_memfd), at
// once: the memory lives on for the pin holder while a new folio may fill
// the file range. Its poisoned leaves stay quarantined until
// release_quarantine, and populate refuses their pages. A page a consumer
// leaked is poisoned alone first (poison_alone: its leaf split down to 4K),
// so truncation quarantines 4K for it, not the whole huge folio. Leaves are given
// back one by one, never the whole folio: on the fd backends a frame is a
// file offset, and the rest of the range may hold new folios by then.
//
// Pins stay counted per page index. The pins at the pages of a detached
// folio that holds pins are its own: no folio overlapping it may be pinned
// until it drains (pin() refuses, busy), so the live queries skip its
// range and the attribution is never ambiguous.
#pragma once

#include <cinttypes>

#include <guestmem/folio/folio_table.hpp>

namespace guestmem {

template <folio_allocator A, class NodeAllocator>
inline void folio_table<A, NodeAllocator>::truncate(page_range r) noexcept {
    r.end = std::min(r.end, size_);
    if (r.empty()) return;
    for (auto it = detail::top_at_or_after(tops_, r.begin); it != tops_.end() && it->first < r.end;) {
        if (r.begin <= it->first && it->end() <= r.end) {
            const bool pinned = live_first_pinned(it->range()) != no_page;
            const bool poisoned = detail::any_poison(it->ref());
            it = pinned || poisoned ? detach_top(it, pinned, poisoned) : free_top(it);
            continue;
        }
        // Partially covered: zero the covered pages, skipping poisoned leaves.
        page_index run = no_page, run_end = 0;
        frame_number run_frame = 0;
        auto flush = [&] {
            if (run != no_page) alloc_->zero(run, run_frame, run_end - run);
            run = no_page;
        };
        walk_top(*it, r, [&](const ref& x, folio_order) {
            const page_index b = std::max(x.first, r.begin), e = std::min(x.end(), r.end);
            if (x.poisoned()) return flush();
            if (run == no_page) {
                run = b;
                run_frame = x.frame + (b - x.first);
            }
            run_end = e;
        });
        flush();
        ++it;
    }
}

template <folio_allocator A, class NodeAllocator>
typename detail::top_folio_set::iterator folio_table<A, NodeAllocator>::detach_top(
    typename detail::top_folio_set::iterator it, bool pinned, bool poisoned) noexcept {
    top& t = *it;
    index_.remove(t);
    auto next = tops_.erase(it);
    counters gone{};
    detail::count_rec(t.ref(), gone);
    for (unsigned k = 0; k < 3; ++k) c_.folios_by_order[k] -= gone.folios_by_order[k];
    c_.split_folios -= gone.split_folios;
    c_.poisoned_folios -= gone.poisoned_folios;
    --c_.top_folios;
    c_.allocated_pages -= pages_in(t.order);
    t.holds_pins = pinned;
    if (pinned) c_.detached_pages += pages_in(t.order);
    if (poisoned) c_.quarantined_pages += detail::poisoned_pages(t.ref());
    detached_.insert(t);
    // A backend that keeps pinned memory alive itself lets the folio leave
    // the file now, as the kernel does; the record stays for its pins.
    if (refcounted_frames_v<A> || !pinned) give_back_leaves(t, false);
    return next;
}

template <folio_allocator A, class NodeAllocator>
void folio_table<A, NodeAllocator>::drain_detached(page_range r) noexcept {
    for (auto it = detached_.begin(); it != detached_.end();) {
        top& d = *it;
        if (!d.holds_pins || !d.range().overlaps(r) || pins_.first_pinned(d.range()) != no_page) {
            ++it;
            continue;
        }
        d.holds_pins = false;  // its last pin is gone
        c_.detached_pages -= pages_in(d.order);
        give_back_leaves(d, false);
        if (detail::any_poison(d.ref())) {
            ++it;  // stays quarantined
            continue;
        }
        it = erase_record(detached_, it, false, false);
    }
}

template <folio_allocator A, class NodeAllocator>
void folio_table<A, NodeAllocator>::give_back_leaves(const top& d, bool poisoned_too) noexcept {
    walk_top(d, d.range(), [&](const ref& x, folio_order) {
        if ((*x.st & detail::st_freed) != 0 || (x.poisoned() && !poisoned_too)) return;
        alloc_->free(x.first, x.frame, x.order);
        *x.st |= detail::st_freed;
    });
}

template <folio_allocator A, class NodeAllocator>
void folio_table<A, NodeAllocator>::poison_alone(page_index p) noexcept {
    ref leaf = find_leaf(p);
    if (!leaf || leaf.poisoned()) return;
    while (leaf.order > order_4k) {
        const folio_order co = next_lower_order(leaf.order);
        pieces* children = alloc_pieces(co);
        if (children == nullptr) break;
        if (auto s = alloc_->prepare_split(leaf.frame, leaf.order, co); !s) {
            free_pieces(children, co);
            break;
        }
        do_split(leaf, children);
        leaf = leaf.child(static_cast<std::uint32_t>((p - leaf.first) >> co));
    }
    poison(p);
}

template <folio_allocator A, class NodeAllocator>
page_index folio_table<A, NodeAllocator>::skip_detached_pins(page_index p, page_range r) const noexcept {
    while (p != no_page) {
        const top* holder = nullptr;
        for (const top& d : detached_)
            if (d.holds_pins && d.range().contains(p)) holder = &d;
        if (holder == nullptr) return p;
        if (holder->end() >= r.end) return no_page;
        r.begin = holder->end();
        p = pins_.first_pinned(r);
    }
    return no_page;
}

template <folio_allocator A, class NodeAllocator>
page_index folio_table<A, NodeAllocator>::first_over_detached_pins(page_range r) const noexcept {
    for (auto it = detail::top_at_or_after(tops_, r.begin); it != tops_.end() && it->first < r.end; ++it)
        for (const top& d : detached_)
            if (d.holds_pins && d.range().overlaps(it->range())) return std::max(it->first, r.begin);
    return no_page;
}

template <folio_allocator A, class NodeAllocator>
page_index folio_table<A, NodeAllocator>::first_quarantined(page_range r) const noexcept {
    page_index found = no_page;
    for (const top& d : detached_) {
        if (!d.range().overlaps(r)) continue;
        auto visit = [&](const ref& x, folio_order) {
            if (x.poisoned()) found = std::min(found, std::max(x.first, r.begin));
        };
        walk_top(d, r, visit);
    }
    return found;
}

template <folio_allocator A, class NodeAllocator>
status folio_table<A, NodeAllocator>::release_quarantine(page_range r) noexcept {
    if (auto s = check_range(r, size_); !s) return s;
    auto quarantined_here = [&](const top& d) { return d.range().overlaps(r) && detail::any_poison(d.ref()); };
    for (const top& d : detached_)
        if (quarantined_here(d) && d.holds_pins) {
            const page_index p = pins_.first_pinned(d.range());
            return error::make(errc::busy, p,
                               "the quarantined folio [%#" PRIx64 ", %#" PRIx64 ") is still pinned at page %#" PRIx64
                               "; it is released after its last unpin",
                               d.first, d.end(), p);
        }
    for (auto it = detached_.begin(); it != detached_.end();) {
        if (!quarantined_here(*it)) {
            ++it;
            continue;
        }
        c_.quarantined_pages -= detail::poisoned_pages(it->ref());
        give_back_leaves(*it, true);
        it = erase_record(detached_, it, false, false);
    }
    return ok();
}

template <folio_allocator A, class NodeAllocator>
error folio_table<A, NodeAllocator>::quarantined_error(page_index q, page_range r) noexcept {
    return error::make(errc::poisoned, q,
                       "page %#" PRIx64 " in [%#" PRIx64 ", %#" PRIx64 ") is quarantined: it was truncated while poisoned "
                       "or while a consumer could not drop it; release_quarantine frees it",
                       q, r.begin, r.end);
}

} // namespace guestmem
