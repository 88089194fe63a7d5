// guestmem/snapshot/detail/access.hpp — the snapshot part's window into a
// guest_memory and its folio table (both befriend detail::snapshot_access):
// their lock, map, records and change log, and the few record-level steps
// restore needs that the public API does not offer, because it decides
// folio orders and splits itself: create a top folio of a given order,
// split a record, set a leaf's mappability, detach a quarantined folio,
// and drop everything again (restore's rollback, which cannot fail).
#pragma once

#include <memory>

#include <guestmem/core/error.hpp>
#include <guestmem/folio/folio_table.hpp>

namespace guestmem::detail {

template <>
struct snapshot_access<void> {
    template <class M> static auto& lock(const M& m) noexcept { return m.lock_; }
    template <class M> static auto& shares(M& m) noexcept { return m.shares_; }
    template <class M> static auto& folios(M& m) noexcept { return m.folios_; }
    template <class M> static auto& changes(M& m) noexcept { return m.changes_; }
    template <class M> static auto& notifier(M& m) noexcept { return m.notifier_; }
    template <class M> static auto& counters(M& m) noexcept { return m.counters_; }
    template <class M> static auto& poison_events(M& m) noexcept { return m.poison_events_; }

    template <class F> static const auto& tops(const F& f) noexcept { return f.tops_; }
    template <class F> static const auto& detached(const F& f) noexcept { return f.detached_; }
    template <class F> static std::uint64_t pin_runs(const F& f) noexcept { return f.pins_.runs(); }

    /// A new top folio of order o at p, appended after every live top
    /// (restore creates them in page order). Errors: out_of_memory, or the
    /// allocator's.
    template <class F>
    static result<top_folio*> make_top(F& f, page_index p, folio_order o) noexcept {
        if (!f.index_.reserve())
            return error::make(errc::out_of_memory, p, "no memory for the folio index of the restored object");
        top_folio* t = F::top_traits::allocate(f.top_alloc_, 1);
        if (t == nullptr)
            return error::make(errc::out_of_memory, p, "no memory for the record of a folio at page %#" PRIx64, p);
        auto frame = f.alloc_->allocate(p, o);
        if (!frame) {
            F::top_traits::deallocate(f.top_alloc_, t, 1);
            return frame.error();
        }
        std::construct_at(t);
        t->first = p;
        t->last_end = p + pages_in(o);
        t->frame = frame.value();
        t->order = o;
        f.link_top(f.tops_.end(), *t);
        ++f.c_.folios_by_order[order_slot(o)];
        ++f.c_.top_folios;
        f.c_.allocated_pages += pages_in(o);
        return t;
    }

    /// Split record x one level (its pieces inherit its state byte).
    template <class F>
    static status split(F& f, const folio_ref& x) noexcept {
        const folio_order co = next_lower_order(x.order);
        auto* children = f.alloc_pieces(co);
        if (children == nullptr)
            return error::make(errc::out_of_memory, x.first, "no memory to split the order-%u folio at page %#" PRIx64,
                               unsigned{x.order}, x.first);
        if (auto s = f.alloc_->reserve_split(x.frame, x.order, co); !s) {
            f.free_pieces(children, co);
            return s;
        }
        f.do_split(x, children);
        return ok();
    }

    /// The record of order o at page p under the live top t (descending
    /// through splits); a null ref if there is none.
    static folio_ref record(const top_folio& t, page_index p, folio_order o) noexcept {
        folio_ref x = t.ref();
        while (x.order > o && x.split()) x = x.child((p - x.first) >> next_lower_order(x.order));
        return x.order == o && x.first == p ? x : folio_ref{};
    }

    /// Move the last live top (a quarantined folio being restored) to the
    /// detached set, as truncation would: its healthy leaves go back.
    template <class F>
    static void detach_last(F& f) noexcept {
        auto it = std::prev(f.tops_.end());
        f.detach_top(it, false, true);
    }

    /// Restore's rollback: every folio goes back to the allocator, the
    /// table is as constructed. Cannot fail.
    template <class F>
    static void drop_all(F& f) noexcept {
        while (!f.tops_.empty()) f.free_top(f.tops_.begin());
        while (!f.detached_.empty()) {
            auto it = f.detached_.begin();
            f.c_.quarantined_pages -= poisoned_pages(it->ref());
            f.give_back_leaves(*it, true);
            f.erase_record(f.detached_, it, false, false);
        }
    }
};

using snapshot_internals = snapshot_access<void>;

} // namespace guestmem::detail
