/// @file
/// Which folios back which pages of one guest memory object
/// (docs/DESIGN.md §Folio table): each top-level folio's order and frame,
/// how it is split (only as far as needed, level by level: 1G -> 2M -> 4K),
/// per-leaf mappability, pins (unexpected references) as sparse runs, and
/// poison. Restructuring for a conversion is a plan: plan_into (pure),
/// prepare_conversion (every fallible step: split metadata and records),
/// then commit_conversion, which cannot fail; or abort_conversion, which
/// changes nothing. Merges, truncation and commit_conversion never allocate. The last unpin on a folio fires its deferred
/// work at once (none -> guest, re-merge).
///
/// Truncation cannot fail. A folio it removes that is pinned or holds poison
/// is *detached*, not freed: its pages are a hole again, but its record and
/// frames live on outside the table (folio/detail/folio_detach.hpp). A
/// pinned one is freed on its last unpin; a poisoned (quarantined) one only
/// by release_quarantine, and until then its poisoned pages cannot be
/// populated again (the fd backends number frames by file offset, so the
/// same page would come back with its old contents).
///
/// Invariant kept by populate/commit_conversion: every leaf that is not poisoned is
/// uniform in shareability. Poisoned leaves are never split or merged.
#pragma once

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <cstdint>
#include <iterator>
#include <memory>
#include <new>
#include <optional>
#include <utility>
#include <ostream>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/folio/allocator.hpp>
#include <guestmem/folio/detail/folio_node.hpp>
#include <guestmem/folio/conversion_plan.hpp>
#include <guestmem/folio/detail/pin_runs.hpp>
#include <guestmem/folio/detail/top_index.hpp>
#include <guestmem/folio/mappability.hpp>

namespace guestmem {

/// A leaf folio as the table reports it.
struct folio_view {
    page_index first;    ///< the leaf's first page
    folio_order order;   ///< the leaf's order (a piece of a split folio has its own)
    frame_number frame;  ///< frame of its first page
    guestmem::mappability mappability;  ///< the leaf's mappability (all, guest, none)
    bool poisoned;  ///< the leaf is poisoned (never faulted, pinned, merged or split)
    folio_order top_order;           ///< order of the top-level folio it belongs to
    page_index poison_page = no_page;  ///< first poisoned page, when poisoned
    [[nodiscard]] page_range range() const noexcept { return {first, first + pages_in(order)}; }  ///< its pages
};

/// Which folios back which pages of one object (see the file description).
/// `A`: the folio allocator policy; `NodeAllocator`: where records come from.
/// Locking: none; the owner serialises it (guest_memory: mutations under its
/// exclusive lock, queries under its shared lock). A lookup is O(log folios).
template <folio_allocator A, class NodeAllocator = std::allocator<std::byte>>
class folio_table {
    using ref = detail::folio_ref;
    using top = detail::top_folio;
    using pieces = detail::piece_array;
    using wide_pieces = detail::wide_piece_array;
    template <class T>
    using rebind = typename std::allocator_traits<NodeAllocator>::template rebind_alloc<T>;
    using top_alloc_t = rebind<top>;
    using pieces_alloc_t = rebind<pieces>;
    using wide_alloc_t = rebind<wide_pieces>;
    using top_traits = std::allocator_traits<top_alloc_t>;
    static constexpr std::uint32_t fanout = detail::split_fanout;

public:
    using counters = folio_counters;  ///< what stats() returns

    /// What a conversion must restructure (folio/conversion_plan.hpp).
    /// Movable; a plan destroyed while prepared aborts itself.
    using plan = conversion_plan<folio_table>;

    /// All holes; max_order lowered to the allocator's. Allocates nothing.
    folio_table(A& alloc, page_index size, folio_order max_order, const NodeAllocator& na = {}) noexcept
        : alloc_(&alloc), size_(size), max_order_(std::min({max_order, alloc.max_order(), max_supported_order})),
          top_alloc_(na), pieces_alloc_(na), wide_alloc_(na), pins_(na), index_(size, max_order_, na) {}
    folio_table(const folio_table&) = delete;
    folio_table& operator=(const folio_table&) = delete;
    /// Frees every folio except poisoned leaves, and pinned folios unless
    /// the allocator's frames are refcounted (live or detached): those are
    /// never given back, so no pin holder or consumer that could not drop a
    /// page loses it under its feet.
    ~folio_table() {
        while (!tops_.empty()) {
            auto it = tops_.begin();
            const bool pinned = !refcounted_frames_v<A> && live_first_pinned(it->range()) != no_page;
            if (pinned) {
                erase_record(tops_, it, false, true);
            } else if (detail::any_poison(it->ref())) {
                give_back_leaves(*it, false);
                erase_record(tops_, it, false, true);
            } else {
                free_top(it);
            }
        }
        while (!detached_.empty()) erase_record(detached_, detached_.begin(), false, false);
        release_spares();
    }

    [[nodiscard]] page_index size() const noexcept { return size_; }            ///< pages covered
    [[nodiscard]] folio_order max_order() const noexcept { return max_order_; }  ///< largest order populate uses
    [[nodiscard]] A& allocator() noexcept { return *alloc_; }                    ///< the allocator policy

    // ---- queries ---------------------------------------------------------
    /// The leaf holding p, or nullopt for a hole. O(log folios).
    [[nodiscard]] std::optional<folio_view> lookup(page_index p) const noexcept {
        if (const top* t = index_.find(p)) return view(descend(t->ref(), p), t->order);
        auto it = detail::top_at_or_after(tops_, p);
        if (it == tops_.end() || it->first > p) return std::nullopt;
        return view(descend(it->ref(), p), it->order);
    }
    /// Does a folio back p? O(log folios).
    [[nodiscard]] bool allocated(page_index p) const noexcept {
        auto it = detail::top_at_or_after(tops_, p);
        return it != tops_.end() && it->first <= p;
    }
    /// First page of r no folio backs, or no_page. O(log folios + folios in r).
    [[nodiscard]] page_index first_hole(page_range r) const noexcept {
        page_index cur = r.begin;
        for (auto it = detail::top_at_or_after(tops_, r.begin); cur < r.end; ++it) {
            if (it == tops_.end() || it->first > cur) return cur;
            cur = it->end();
        }
        return no_page;
    }
    /// Is the leaf holding p poisoned (false for a hole)? O(log folios).
    [[nodiscard]] bool poisoned(page_index p) const noexcept {
        auto v = lookup(p);
        return v && v->poisoned;
    }
    [[nodiscard]] std::uint32_t pins(page_index p) const noexcept { return pins_.count(p); }  ///< raw count at p
    /// Pins are counted per page index. Pins at the pages of a folio that
    /// was truncated while pinned belong to that detached folio, not to a
    /// folio populated there since: first_pinned and the conversion steps
    /// see only the live folios' pins; pins(p) is the raw count.
    [[nodiscard, gnu::always_inline]] page_index first_pinned(page_range r) const noexcept { return live_first_pinned(r); }
    /// Visit pin runs: f(begin, end, count).
    template <class F>
    void for_each_pin_run(F&& f) const { pins_.for_each(f); }

    /// Leaves overlapping r, in order, as folio_view.
    template <class F>
    void for_each_folio(page_range r, F&& f) const {
        walk(*this, r, [&](const ref& x, folio_order top_order) { f(view(x, top_order)); });
    }

    /// The counters, pinned_pages filled in. O(1).
    [[nodiscard]] counters stats() const noexcept {
        counters c = c_;
        c.pinned_pages = pins_.pinned_pages();
        return c;
    }

    /// Visit the detached folios (truncated while pinned or poisoned):
    /// f(first, order, frame, holds_pins, quarantined).
    template <class F>
    void for_each_detached(F&& f) const {
        for (const top& d : detached_) f(d.first, d.order, d.frame, d.holds_pins, detail::any_poison(d.ref()));
    }

    // ---- populate (fallocate) and truncate (punch hole) ----------------
    /// Fill the holes in r with folios of the largest standard order that
    /// fits, each split at once as far as `share` needs. All or nothing.
    /// Refused (poisoned, nothing changed) where r holds a page quarantined
    /// by an earlier truncation (see release_quarantine); invalid_range;
    /// out_of_memory, or the allocator's own error, passed on.
    template <class ShareMap>
    [[nodiscard]] status populate(page_range r, const ShareMap& share);

    /// Punch a hole (cannot fail): top-level folios wholly inside r leave
    /// the table; those pinned or holding poison are detached (see the file
    /// comment), the others freed. The covered pages of partly covered
    /// folios are zeroed, skipping poisoned leaves.
    void truncate(page_range r) noexcept;

    /// The first page of r quarantined by a truncation (a poisoned leaf of
    /// a detached folio), or no_page.
    [[nodiscard]] page_index first_quarantined(page_range r) const noexcept;

    /// Free every quarantined folio (detached with poison) overlapping r:
    /// its frames go back to the allocator (the fd backends punch them, so
    /// the old contents are gone) and its pages may be populated again.
    /// Call it once every consumer that reported a page there has really
    /// dropped it. Errors: invalid_range; busy (nothing freed) while such a
    /// folio is still pinned, naming its first pinned page. Freeing nothing
    /// is not an error.
    [[nodiscard]] status release_quarantine(page_range r) noexcept;

    // ---- pins -------------------------------------------------------------
    /// Take one unexpected reference on every page of r. All or nothing.
    /// Errors: invalid_range; not_allocated (a hole); busy (a folio over one
    /// truncated while pinned, or a count at its maximum); poisoned; out_of_memory.
    [[nodiscard]] status pin(page_range r) {
        if (auto s = check_range(r, size_); !s) return s;
        if (page_index h = first_hole(r); h != no_page)
            return error::make(errc::not_allocated, h, "pin of page %#" PRIx64 " which is not allocated", h);
        if (c_.detached_pages != 0)
            if (page_index p = first_over_detached_pins(r); p != no_page)
                return error::make(errc::busy, p,
                                   "page %#" PRIx64 " lies in a folio that overlaps one truncated while pinned; it "
                                   "can be pinned once that folio's last pin is dropped",
                                   p);
        if (c_.poisoned_folios != 0) {
            page_index bad = no_page;
            walk(*this, r, [&](const ref& x, folio_order) {
                if (bad == no_page && x.poisoned()) bad = std::max(x.first, r.begin);
            });
            if (bad != no_page)
                return error::make(errc::poisoned, bad, "pin of page %#" PRIx64 " which is poisoned", bad);
        }
        return pins_.pin(r);
    }

    /// Drop one pin on every page of r (refused, nothing changed, if a page
    /// has none). A folio whose last pin drops runs its deferred work now:
    /// none -> guest, then the merge check; a detached one is freed (or,
    /// holding poison, stays quarantined). Errors: invalid_range,
    /// invalid_argument (a page without pins), out_of_memory.
    template <class ShareMap>
    [[nodiscard]] status unpin(page_range r, const ShareMap& share) {
        if (auto s = check_range(r, size_); !s) return s;
        if (auto s = pins_.unpin(r); !s) return s;
        settle(r);
        merge_eligible(r, share);
        if (c_.detached_pages != 0) drain_detached(r);
        return ok();
    }

    // ---- conversion: plan, prepare, commit / abort ----------------------
    /// Plan, into a caller's plan built as plan{r, to}, which folios the
    /// conversion of r to `to` must split; `share` is the state before.
    /// Pure: nothing changes. The range is validated once, by the caller
    /// (guest_memory::convert). Preconditions: r valid for this table, `to`
    /// valid, p holds no reservation. Complexity: O(log folios).
    template <class ShareMap>
    void plan_into(plan& p, const ShareMap& share) const noexcept;

    /// Take everything commit_conversion needs: split metadata from the
    /// allocator and the record arrays. All or nothing. Error: out_of_memory.
    [[nodiscard]] status prepare_conversion(plan& p) {
        if (p.count == 0) {  // most conversions split nothing
            p.owner_ = this;
            return ok();
        }
        return prepare_splits(p);
    }

    /// Give back what prepare_conversion took; the table is unchanged.
    void abort_conversion(plan& p) noexcept {
        abort_ops(p);
        p.owner_ = nullptr;
    }

    /// Split as planned, then move the mappability of every leaf in the
    /// range: to shared -> all; to guest_only -> guest, or none for leaves
    /// with pins (whatever defer_if_pinned says: pins always drain). Cannot
    /// fail; allocates nothing. Precondition: the plan was prepared and no
    /// folio was populated or truncated since it was made. Returns how many
    /// leaves in the range it moved into mappability none (left draining).
    [[gnu::always_inline]] std::uint64_t commit_conversion(plan& p, [[maybe_unused]] bool defer_if_pinned) noexcept {
        // The range within one whole top folio, or within one leaf the plan
        // found (and nothing to split): one record moves, handled here;
        // everything else walks (commit_walk).
        if (p.count == 0) {
            if (within_first_top(p)) {
                p.owner_ = nullptr;
                const top* t = p.first_top;
                return t->first < p.range.end ? move_leaf(t->ref(), p.to) : 0;
            }
            // One leaf of a split folio holds the range (the plan found it):
            // the walk would visit that leaf alone.
            if (p.leaf) {
                p.owner_ = nullptr;
                return move_leaf(p.leaf, p.to);
            }
        }
        return commit_walk(p);
    }

    /// After the caller updated the map: merge level by level around r every
    /// split folio whose pieces are all guest_only, unpinned, unpoisoned.
    template <class ShareMap>
    void merge_eligible(page_range r, const ShareMap& share) noexcept {
        r.end = std::min(r.end, size_);
        if (r.empty()) return;
        merge_from(detail::top_at_or_after(tops_, r.begin), r, share);
    }

    /// The same after a conversion's commit_conversion, starting from the
    /// top folio its plan found (no second lookup).
    template <class ShareMap>
    [[gnu::always_inline]] void merge_eligible(const plan& p, const ShareMap& share) noexcept {
        if (p.first_top == nullptr || within_first_top(p)) return;  // no split folio to merge
        merge_from(top_iterator(p.first_top), p.range, share);
    }

    // ---- poison -------------------------------------------------------------
    /// Mark the leaf holding p poisoned (never merged, never handed out,
    /// quarantined on truncation). A hole is left alone. Never allocates.
    void poison(page_index p) noexcept {
        const ref leaf = find_leaf(p);
        if (!leaf || leaf.poisoned()) return;
        *leaf.st |= detail::st_poisoned;
        if (leaf.aux != nullptr) leaf.aux->poison = p;
        ++c_.poisoned_folios;
    }

    // ---- export and bulk load (snapshot save and restore; folio_load.hpp) ----
    /// No live or detached folio and no pin: what load() needs. O(1).
    [[nodiscard]] bool empty() const noexcept { return tops_.empty() && detached_.empty() && pins_.runs() == 0; }
    /// Export walks, in page order, O(records visited): live top folios
    /// f(first, order); split records, parents first, f(first, order);
    /// poisoned live leaves f(poison page, order, mappability); detached
    /// folios f(first, order, leaves), leaves(g) calling g as the former
    /// for each of that folio's poisoned leaves.
    template <class F> void for_each_top(F&& f) const;
    template <class F> void for_each_split(F&& f) const;  ///< see for_each_top
    template <class F> void for_each_poisoned(F&& f) const;  ///< see for_each_top
    template <class F> void for_each_detached_poison(F&& f) const;  ///< see for_each_top
    /// Builds folios into an empty table from a saved description; rolls
    /// back unless committed.
    class loader;
    /// Start a bulk load. Precondition: empty(). Lock: exclusive. Allocates nothing.
    [[nodiscard]] loader load() noexcept;

    /// Poison page p's 4K piece alone (a page a consumer leaked): the leaf is
    /// split down to 4K along p's path first; if a split cannot get records
    /// or its reservation, the leaf reached is poisoned whole (never fails).
    /// Allocates: up to two piece arrays. O(log folios + 512 per split).
    void poison_alone(page_index p) noexcept;

    // ---- debugging and comparison ----------------------------------------
    /// Print every folio, leaf and pin run to os.
    void dump(std::ostream& os) const;

    /// Recount everything from the records; true if the counters agree.
    [[nodiscard]] bool check_counters() const noexcept;

    /// Full snapshot equality (folios, orders, frames, split structure,
    /// mappability, pins, poison, counters), also across allocator types.
    template <folio_allocator A2, class N2>
    [[nodiscard]] bool same_state(const folio_table<A2, N2>& b) const noexcept;
    /// a.same_state(b).
    friend bool operator==(const folio_table& a, const folio_table& b) noexcept { return a.same_state(b); }
    /// a.same_state(b), across allocator types.
    template <folio_allocator A2, class N2>
    friend bool operator==(const folio_table& a, const folio_table<A2, N2>& b) noexcept { return a.same_state(b); }

private:
    template <folio_allocator, class>
    friend class folio_table;

    static folio_view view(const ref& x, folio_order top_order) noexcept {
        return {x.first, x.order, x.frame, x.map(), x.poisoned(), top_order, x.poison_page()};
    }
    static mappability initial_map(shareability s) noexcept {
        return s == shareability::shared ? mappability::all : mappability::guest;
    }

    template <class Top, class F>
    static void walk_top(Top& t, page_range r, F&& f) {
        // Most tops are whole folios. Two refs, so the whole-folio one
        // can stay in registers: walk_rec takes its own by reference.
        if (!t.split()) return f(t.ref(), t.order);
        detail::walk_rec(t.ref(), r, t.order, f);
    }
    template <class Self, class F>
    static void walk(Self& self, page_range r, F&& f) {
        walk_from(self, detail::top_at_or_after(self.tops_, r.begin), r, f);
    }
    /// walk, from `it` (the top holding r.begin or the first after it).
    template <class Self, class It, class F>
    static void walk_from(Self& self, It it, page_range r, F&& f) {
        for (; it != self.tops_.end() && it->first < r.end; ++it) walk_top(*it, r, f);
    }
    /// Does the rest of p.range lie within p.first_top, a whole (unsplit)
    /// folio? Then the walks of commit_conversion and merge_eligible visit that one
    /// record and nothing else.
    static bool within_first_top(const plan& p) noexcept {
        return p.first_top != nullptr && !p.first_top->split() && p.first_top->end() >= p.range.end;
    }
    typename detail::top_folio_set::iterator top_iterator(const top* t) noexcept {
        return t == nullptr ? tops_.end() : tops_.iterator_to(*const_cast<top*>(t));
    }

    /// The leaf under x holding p.
    static ref descend(ref x, page_index p) noexcept {
        while (x.split()) x = x.child((p - x.first) >> next_lower_order(x.order));
        return x;
    }
    /// The leaf holding p, or a null ref for a hole.
    ref find_leaf(page_index p) noexcept {
        auto it = detail::top_at_or_after(tops_, p);
        if (it == tops_.end() || it->first > p) return {};
        return descend(it->ref(), p);
    }

    /// Piece arrays for pieces of order co: wide when the pieces are huge.
    /// One freed array of each kind is kept for the next split, so a page
    /// shared and unshared over and over (split, merge, split, ...) calls
    /// the NodeAllocator once, not on every conversion.
    pieces* alloc_pieces(folio_order co) noexcept {
        if (co > order_4k) {
            if (wide_pieces* w = std::exchange(spare_wide_, nullptr)) return w;
            return std::allocator_traits<wide_alloc_t>::allocate(wide_alloc_, 1);
        }
        if (pieces* c = std::exchange(spare_narrow_, nullptr)) return c;
        return std::allocator_traits<pieces_alloc_t>::allocate(pieces_alloc_, 1);
    }
    void free_pieces(pieces* c, folio_order co) noexcept {
        if (co > order_4k) {
            if (spare_wide_ == nullptr)
                spare_wide_ = static_cast<wide_pieces*>(c);
            else
                std::allocator_traits<wide_alloc_t>::deallocate(wide_alloc_, static_cast<wide_pieces*>(c), 1);
        } else if (spare_narrow_ == nullptr) {
            spare_narrow_ = c;
        } else {
            std::allocator_traits<pieces_alloc_t>::deallocate(pieces_alloc_, c, 1);
        }
    }
    void release_spares() noexcept {
        if (spare_wide_) std::allocator_traits<wide_alloc_t>::deallocate(wide_alloc_, std::exchange(spare_wide_, nullptr), 1);
        if (spare_narrow_) std::allocator_traits<pieces_alloc_t>::deallocate(pieces_alloc_, std::exchange(spare_narrow_, nullptr), 1);
    }

    [[nodiscard]] status prepare_splits(plan& p);  // prepare_conversion, when the plan splits

    std::uint64_t commit_walk(plan& p) noexcept;

    /// Move one leaf of a conversion to `to`; 1 if it went into none (left
    /// draining its pins), else 0. Always inlined: commit_conversion and commit_walk's
    /// per-leaf visit both use it.
    [[gnu::always_inline]] inline std::uint64_t move_leaf(const ref& x, shareability to) noexcept;

    /// Plan the splits of leaf x (holding page b, an end of p.range) and of
    /// its pieces holding b, while they would be mixed after the conversion.
    template <class ShareMap>
    static void plan_splits(plan& p, const ref& x, page_index b, const ShareMap& share) noexcept;
    /// plan_into past its fast exit: the leaves at both ends of the range,
    /// starting from `it`, the top holding p.range.begin or the first after.
    template <class ShareMap>
    void plan_ends(plan& p, typename detail::top_folio_set::const_iterator it, const ShareMap& share) const noexcept;

    /// Would R be mixed once [r) becomes `to` (R overlaps r)?
    template <class ShareMap>
    static bool mixed_after(page_range R, page_range r, shareability to, const ShareMap& share) {
        if (R.begin < r.begin && !share.all_of(page_range{R.begin, r.begin}, to)) return true;
        if (R.end > r.end && !share.all_of(page_range{r.end, R.end}, to)) return true;
        return false;
    }

    void fire(const ref& x, mappability_event e) noexcept {
        const std::uint8_t next = detail::mappability_next[static_cast<std::size_t>(x.map())][static_cast<std::size_t>(e)];
        if (next != detail::refused) x.set_map(static_cast<mappability>(next));
    }

    /// Leaves in r stuck in none with no pins left: last_unpin.
    void settle(page_range r) noexcept {
        walk(*this, r, [&](const ref& x, folio_order) {
            if (x.map() == mappability::none && live_first_pinned({x.first, x.end()}) == no_page)
                fire(x, mappability_event::last_unpin);
        });
    }

    /// Pieces inherit x's mappability: one byte each, frames implicit.
    void do_split(const ref& x, pieces* children) noexcept;
    /// Pieces (all leaves) back into x. Frees records; cannot fail.
    void do_merge(const ref& x) noexcept;

    /// merge_eligible's walk, from `it` (the top holding r.begin or the first after it).
    template <class ShareMap>
    void merge_from(typename detail::top_folio_set::iterator it, page_range r, const ShareMap& share) noexcept {
        for (; it != tops_.end() && it->first < r.end; ++it)
            if (it->split()) try_merge(it->ref(), r, share);
    }

    template <class ShareMap>
    void try_merge(const ref& x, page_range r, const ShareMap& share) noexcept;

    /// Is every piece a plain guest leaf (not split, not poisoned)? Eight
    /// state bytes per compare, stopping at the first that is not.
    static bool all_plain_guest(const std::uint8_t* st) noexcept;

    /// Split a fresh folio as far as `share` needs (populate).
    template <class ShareMap>
    [[nodiscard]] status split_for(const ref& x, const ShareMap& share);
    /// Split record x one level (its pieces inherit its state byte):
    /// records, the allocator's reservation, then do_split.
    [[nodiscard]] status split_one(const ref& x) noexcept;
    /// A new live top folio of order o at p (record, frame, link, counts),
    /// inserted before `hint`. Errors: out_of_memory, or the allocator's.
    [[nodiscard]] result<top*> make_top(page_index p, folio_order o, typename detail::top_folio_set::iterator hint) noexcept;
    /// Every folio back to the allocator, the table as constructed (a
    /// loader's rollback). Cannot fail.
    void drop_all() noexcept;
    /// A fresh top folio of order o at p, split as `share` needs, inserted before `hint`.
    template <class ShareMap>
    [[nodiscard]] status create(page_index p, folio_order o, const ShareMap& share,
                                typename detail::top_folio_set::iterator hint);

    /// Undo every split under x (merging in the allocator when `give_back`)
    /// and, for a live record, drop x's counts.
    void release_rec(const ref& x, bool give_back, bool live) noexcept {
        if (!x.split()) {
            if (!live) return;
            --c_.folios_by_order[detail::order_slot(x.order)];
            if (x.poisoned()) --c_.poisoned_folios;
            return;
        }
        for (std::uint32_t i = 0; i < fanout; ++i) release_rec(x.child(i), give_back, live);
        const folio_order co = next_lower_order(x.order);
        if (give_back) alloc_->merge(x.frame, co, x.order);
        free_pieces(x.pieces(), co);
        x.aux->sub = nullptr;
        *x.st &= static_cast<std::uint8_t>(~detail::st_split);
        if (live) --c_.split_folios;
    }

    /// Give a live top-level folio back: merged and freed.
    typename detail::top_folio_set::iterator free_top(typename detail::top_folio_set::iterator it) noexcept {
        --c_.top_folios;
        c_.allocated_pages -= pages_in(it->order);
        return erase_record(tops_, it, true, true);
    }

    /// Erase a record and its pieces (and, for a live one, its counts);
    /// give its frames back to the allocator when `give_back`.
    template <class Set>
    typename Set::iterator erase_record(Set& set, typename Set::iterator it, bool give_back, bool live) noexcept {
        top& t = *it;
        if (live) index_.remove(t);
        release_rec(t.ref(), give_back, live);
        if (give_back) alloc_->free(t.first, t.frame, t.order);
        auto next = set.erase(it);
        std::destroy_at(&t);
        top_traits::deallocate(top_alloc_, &t, 1);
        return next;
    }

    /// Link a new live top (populate, restore) and index it.
    void link_top(typename detail::top_folio_set::iterator hint, top& t) noexcept {
        tops_.insert_before(hint, t);
        index_.add(t);
    }

    // Detached folios (bodies in folio/detail/folio_detach.hpp).
    typename detail::top_folio_set::iterator detach_top(typename detail::top_folio_set::iterator it, bool pinned,
                                                        bool poisoned) noexcept;
    void drain_detached(page_range r) noexcept;
    /// Free d's leaves not yet given back, leaf by leaf (poisoned ones only
    /// when `poisoned_too`).
    void give_back_leaves(const top& d, bool poisoned_too) noexcept;
    [[nodiscard]] page_index first_over_detached_pins(page_range r) const noexcept;
    [[gnu::cold, gnu::noinline]] static error quarantined_error(page_index q, page_range r) noexcept;

    /// first_pinned without the pins of detached folios: the live path
    /// pays one compare while nothing is detached.
    [[nodiscard, gnu::always_inline]] inline page_index live_first_pinned(page_range r) const noexcept {
        const page_index p = pins_.first_pinned(r);
        if (p == no_page || c_.detached_pages == 0) return p;
        return skip_detached_pins(p, r);
    }
    [[nodiscard, gnu::noinline]] page_index skip_detached_pins(page_index p, page_range r) const noexcept;

    void abort_ops(plan& p) noexcept {
        for (unsigned k = 0; k < p.count; ++k) {
            auto& op = p.ops[k];
            if (op.reserved) alloc_->abort_split(op.frame, op.from, next_lower_order(op.from));
            if (op.children != nullptr) free_pieces(op.children, next_lower_order(op.from));
            op.children = nullptr;
            op.reserved = false;
        }
    }

    A* alloc_;
    page_index size_;
    folio_order max_order_;
    top_alloc_t top_alloc_;
    pieces_alloc_t pieces_alloc_;
    wide_alloc_t wide_alloc_;
    pieces* spare_narrow_ = nullptr;    // one freed 4K-piece array, kept for the next split
    wide_pieces* spare_wide_ = nullptr; // one freed 2M-piece array
    detail::top_folio_set tops_;
    detail::detached_folio_set detached_;  // truncated while pinned or poisoned
    detail::pin_runs<NodeAllocator> pins_;
    detail::top_index<NodeAllocator> index_;  // live tops of max_order_, by block: lookup's shortcut
    counters c_{};
};

} // namespace guestmem

#include <guestmem/folio/detail/folio_conversion.hpp>
#include <guestmem/folio/detail/folio_populate.hpp>
#include <guestmem/folio/detail/folio_detach.hpp>
#include <guestmem/folio/detail/folio_dump.hpp>
#include <guestmem/folio/detail/folio_load.hpp>
