// tests/model/reference_model.hpp — the reference model of a guest memory
// object: deliberately simple, obviously correct, slow. It knows nothing of
// B+-trees, folio records or pin-run trees: every page has one plain state
// (shareability, allocated, poisoned, draining = mappability none, pins),
// stored as runs of equal states in a std::map so a 1 GiB object costs a few
// entries, and every operation applies its rule page by page over a range.
//
// What the model does not predict is how folios split and merge (the object
// chooses); where a rule is per leaf folio (poison hits a whole leaf, a leaf
// with a pin anywhere drains, the last unpin on a leaf ends draining), the
// caller passes the object's leaf geometry, which the harness separately
// validates against invariants (aligned, standard order, inside a top-level
// folio the model placed, uniform in shareability unless poisoned). Top-level
// folios (what allocate places and punch_hole frees whole) are modelled.
//
// Each operation returns the expected outcome (success, or the exact error
// code and first offending page, and the vetoing binding) and applies its
// effect on success. Consumers are modelled by the calls each should have
// received and each binding's sequence number, and by the page each reports
// it could not drop while committing (quarantined: that 4K page is poisoned).
//
// Views (view/memory_view.hpp): every binding belongs to one of
// max_views views, each open or closed and with its access policy; a call
// through a closed view is not_bound; closing a view releases its
// bindings as unbind does; faults and pins follow the view's policy; a
// bind with replay populates each shared run of its range, and a veto there
// aborts the runs populated before and leaves no binding.
//
// Failure paths: punch_hole cannot fail for a valid range (the part past
// the end is ignored). A truncated top folio with pins or poison is
// detached: its pages are a hole; its pins stay counted on the pages and
// are its own (detached_pins) until the last one drops, and no folio over
// its range may be pinned meanwhile; its poisoned pages are quarantined
// (allocate refuses them) until release_quarantine frees it.
#pragma once

#include <guestmem/core/access_policy.hpp>
#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/core/types.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace guestmem::model {

struct page_state {
    shareability share = shareability::guest_only;
    bool allocated = false;
    bool poisoned = false;
    bool draining = false;  ///< the page's leaf is in mappability none
    bool quarantined = false;   ///< truncated while poisoned: allocate refuses it
    bool detached_pins = false; ///< its pins belong to a folio truncated while pinned
    std::uint32_t pins = 0;
    /// Pins on the live folio at this page (not a detached one's).
    [[nodiscard]] std::uint32_t live_pins() const { return detached_pins ? 0 : pins; }
    friend bool operator==(const page_state&, const page_state&) = default;
};

/// Expected outcome of one call.
struct expect {
    bool ok = true;
    errc code = errc::invalid_argument;
    page_index page = no_page;
    std::uint64_t consumer = no_binding;
    static expect success() { return {}; }
    static expect fail(errc c, page_index p, std::uint64_t who = no_binding) { return {false, c, p, who}; }
};

/// One leaf folio of the object, as the object reports it.
struct leaf {
    page_index first = 0;
    folio_order order = 0;
    folio_order top_order = 0;
    frame_number frame = 0;
    guestmem::mappability mappability = mappability::all;
    bool poisoned = false;
    [[nodiscard]] page_index end() const { return first + (page_index{1} << order); }
    friend bool operator==(const leaf&, const leaf&) = default;
};
using leaf_list = std::vector<leaf>;  // sorted by first

[[nodiscard]] inline const leaf* leaf_at(const leaf_list& leaves, page_index p) {
    auto it = std::upper_bound(leaves.begin(), leaves.end(), p, [](page_index x, const leaf& l) { return x < l.first; });
    if (it == leaves.begin()) return nullptr;
    --it;
    return p < it->end() ? &*it : nullptr;
}

struct consumer_tally {
    std::uint64_t prepares = 0, commits = 0, aborts = 0, memory_failures = 0, populates = 0;
    page_index veto_page = no_page;  ///< prepares whose pages contain it refuse
    page_index leak_page = no_page;  ///< commits whose pages contain it report it leaked
    friend bool operator==(const consumer_tally&, const consumer_tally&) = default;
};

struct model_binding {
    unsigned consumer = 0;
    unsigned slot = 0;
    page_range pages{};
    std::uint64_t base = 0;
    std::uint64_t id = 0;
    std::uint64_t sequence = 0;
    unsigned view = 0;  ///< the view it was bound through
};

struct event_counts {
    std::uint64_t conversions = 0, noop = 0, vetoes = 0, busy_refusals = 0, zeroed_pages = 0, commit_quarantines = 0;
};

/// A top folio truncated while pinned or poisoned.
struct detached_top {
    page_index first = 0;
    folio_order order = 0;
    bool holds_pins = false;
    std::vector<page_range> poisoned;  ///< its quarantined pages
    [[nodiscard]] page_range range() const { return {first, first + pages_in(order)}; }
};

class reference_model {
public:
    static constexpr unsigned max_consumers = 4, max_views = 3;

    reference_model(page_index size, shareability initial, folio_order max_order) : size_(size), max_order_(max_order) {
        page_state s;
        s.share = initial;
        runs_[0] = s;
        view_open_[0] = true;
    }

    // ---- views ------------------------------------------------------------
    void open_view(unsigned v, access_policy p) {
        view_open_[v] = true;
        policy_[v] = p;
    }
    [[nodiscard]] bool view_open(unsigned v) const { return view_open_[v]; }
    [[nodiscard]] access_policy policy(unsigned v) const { return policy_[v]; }
    /// A call through view v: not_bound once it is closed.
    [[nodiscard]] expect through(unsigned v) const {
        return view_open_[v] ? expect::success() : expect::fail(errc::not_bound, no_page);
    }
    /// Close view v: each of its bindings is released, as unbind.
    expect close_view(unsigned v, const leaf_list& leaves) {
        if (!view_open_[v]) return expect::fail(errc::not_bound, no_page);
        for (std::size_t i = 0; i < bindings_.size();)
            if (bindings_[i].view == v) (void)unbind(bindings_[i].id, leaves, v);
            else ++i;
        view_open_[v] = false;
        return expect::success();
    }
    /// A bind with replay over r by consumer c, after bind() accepted it:
    /// one populate per shared run of r; a veto aborts the runs before it.
    expect replay(unsigned c, page_range r) {
        std::vector<page_range> runs;
        visit(r, [&](page_index b, page_index e, const page_state& s) {
            if (s.share != shareability::shared) return;
            if (!runs.empty() && runs.back().end == b) runs.back().end = e;
            else runs.push_back({b, e});
        });
        consumer_tally& t = tally_[c];
        for (std::size_t i = 0; i < runs.size(); ++i) {
            ++t.populates;
            if (t.veto_page != no_page && runs[i].contains(t.veto_page)) {
                t.aborts += i;
                return expect::fail(errc::vetoed, t.veto_page);
            }
        }
        return expect::success();
    }

    [[nodiscard]] page_index size() const { return size_; }
    [[nodiscard]] const std::map<page_index, folio_order>& tops() const { return tops_; }
    [[nodiscard]] const std::vector<model_binding>& bindings() const { return bindings_; }
    [[nodiscard]] const consumer_tally& tally(unsigned c) const { return tally_[c]; }
    [[nodiscard]] const event_counts& events() const { return events_; }
    void set_veto(unsigned c, page_index p) { tally_[c].veto_page = p; }
    void set_leak(unsigned c, page_index p) { tally_[c].leak_page = p; }
    [[nodiscard]] const std::vector<detached_top>& detached() const { return detached_; }
    [[nodiscard]] std::uint64_t detached_pages() const {
        std::uint64_t n = 0;
        for (const detached_top& d : detached_) n += d.holds_pins ? pages_in(d.order) : 0;
        return n;
    }
    [[nodiscard]] std::uint64_t quarantined_pages() const {
        std::uint64_t n = 0;
        for (const detached_top& d : detached_)
            for (page_range q : d.poisoned) n += q.size();
        return n;
    }

    /// The state of one page.
    [[nodiscard]] page_state at(page_index p) const { return std::prev(runs_.upper_bound(p))->second; }

    /// f(begin, end, state) over the runs overlapping r, clipped.
    template <class F>
    void visit(page_range r, F&& f) const {
        for (auto it = std::prev(runs_.upper_bound(r.begin)); it != runs_.end() && it->first < r.end; ++it) {
            const page_index e = std::next(it) == runs_.end() ? size_ : std::next(it)->first;
            f(std::max(it->first, r.begin), std::min(e, r.end), it->second);
        }
    }
    /// First page of r whose state satisfies pred, or no_page.
    template <class P>
    [[nodiscard]] page_index first_where(page_range r, P&& pred) const {
        page_index found = no_page;
        visit(r, [&](page_index b, page_index, const page_state& s) {
            if (found == no_page && pred(s)) found = b;
        });
        return found;
    }
    template <class P>
    [[nodiscard]] std::uint64_t count_where(page_range r, P&& pred) const {
        std::uint64_t n = 0;
        visit(r, [&](page_index b, page_index e, const page_state& s) { n += pred(s) ? e - b : 0; });
        return n;
    }

    // ---- the API ----------------------------------------------------------

    [[nodiscard]] expect check(page_range r) const {
        if (r.begin > r.end) return expect::fail(errc::invalid_range, r.begin);
        if (r.begin == r.end) return expect::fail(errc::invalid_range, r.begin);
        if (r.end > size_) return expect::fail(errc::invalid_range, std::max(r.begin, size_));
        return expect::success();
    }

    expect allocate(page_range r) {
        if (auto e = check(r); !e.ok) return e;
        if (page_index q = first_where(r, [](const page_state& s) { return s.quarantined; }); q != no_page)
            return expect::fail(errc::poisoned, q);
        page_index p = r.begin;
        while (p < r.end) {
            auto next = tops_.upper_bound(p);
            if (next != tops_.begin()) {
                auto prev = std::prev(next);
                if (prev->first + pages_in(prev->second) > p) {
                    p = prev->first + pages_in(prev->second);
                    continue;
                }
            }
            const page_index hole_end = next != tops_.end() && next->first < r.end ? next->first : r.end;
            folio_order o = order_4k;
            for (folio_order cand : {order_1g, order_2m})
                if (cand <= max_order_ && p % pages_in(cand) == 0 && hole_end - p >= pages_in(cand)) {
                    o = cand;
                    break;
                }
            tops_[p] = o;
            update({p, p + pages_in(o)}, [](page_state& s) { s.allocated = true; });
            p += pages_in(o);
        }
        return expect::success();
    }

    /// `leaves`: the geometry at the call (for pages consumers leak).
    expect punch_hole(page_range r, const leaf_list& leaves) {
        if (r.begin >= r.end || r.end > (page_index{1} << 51)) return expect::fail(errc::invalid_range, r.begin);
        if (r.begin >= size_) return expect::success();
        r.end = std::min(r.end, size_);
        invalidate_all(r, leaves);
        for (auto it = tops_.begin(); it != tops_.end();) {
            const page_range t{it->first, it->first + pages_in(it->second)};
            if (!t.overlaps(r)) {
                ++it;
                continue;
            }
            if (r.contains(t)) {
                const bool pinned = first_where(t, [](const page_state& x) { return x.live_pins() != 0; }) != no_page;
                detached_top d{t.begin, it->second, pinned, {}};
                visit(t, [&](page_index b, page_index e, const page_state& x) {
                    if (x.poisoned) d.poisoned.push_back({b, e});
                });
                if (pinned || !d.poisoned.empty()) detached_.push_back(d);
                update(t, [&](page_state& x) {
                    x.allocated = false;
                    x.draining = false;
                    if (x.poisoned) x.quarantined = true;
                    x.poisoned = false;
                    if (pinned) x.detached_pins = true;
                });
                it = tops_.erase(it);
            } else {
                events_.zeroed_pages += count_where(t.intersect(r), [](const page_state& x) { return !x.poisoned; });
                ++it;
            }
        }
        return expect::success();
    }

    /// Free the quarantined detached folios overlapping r.
    expect release_quarantine(page_range r) {
        if (auto e = check(r); !e.ok) return e;
        auto here = [&](const detached_top& d) { return d.range().overlaps(r) && !d.poisoned.empty(); };
        for (const detached_top& d : by_end())
            if (here(d) && d.holds_pins)
                return expect::fail(errc::busy, first_where(d.range(), [](const page_state& x) { return x.pins != 0; }));
        for (auto it = detached_.begin(); it != detached_.end();) {
            if (!here(*it)) {
                ++it;
                continue;
            }
            for (page_range q : it->poisoned) update(q, [](page_state& x) { x.quarantined = false; });
            it = detached_.erase(it);
        }
        return expect::success();
    }

    /// `to`/`content` as raw values so invalid enumerations can be modelled.
    expect convert(page_range r, shareability to, unsigned content, bool defer, const leaf_list& after) {
        if (auto e = check(r); !e.ok) return e;
        if (!is_valid(to)) return expect::fail(errc::invalid_argument, r.begin);
        if (content > 1) return expect::fail(errc::invalid_argument, r.begin);
        if (first_where(r, [&](const page_state& s) { return s.share != to; }) == no_page) {
            ++events_.noop;
            return expect::success();
        }
        if (page_index p = first_where(r, [](const page_state& s) { return s.poisoned; }); p != no_page)
            return expect::fail(errc::poisoned, p);
        const bool to_private = to == shareability::guest_only;
        if (to_private && !defer) {
            if (page_index p = first_where(r, [](const page_state& s) { return s.live_pins() != 0; }); p != no_page) {
                ++events_.busy_refusals;
                return expect::fail(errc::busy, p);
            }
        }
        // Prepare in binding order; the first refusal aborts the prepared, newest first.
        std::vector<std::size_t> prepared;
        for (std::size_t i = 0; i < bindings_.size(); ++i) {
            model_binding& b = bindings_[i];
            if (!b.pages.overlaps(r)) continue;
            consumer_tally& t = tally_[b.consumer];
            ++t.prepares;
            const page_range clipped = b.pages.intersect(r);
            if (t.veto_page != no_page && clipped.contains(t.veto_page)) {
                for (auto k = prepared.rbegin(); k != prepared.rend(); ++k) ++tally_[bindings_[*k].consumer].aborts;
                bump_sequences(r);
                ++events_.vetoes;
                return expect::fail(errc::vetoed, t.veto_page, b.id);
            }
            prepared.push_back(i);
        }
        for (std::size_t i : prepared) ++tally_[bindings_[i].consumer].commits;
        bump_sequences(r);
        // Deferred unshare: a leaf that held shared pages and still has a
        // pin anywhere drains (mappability none). A leaf that was already
        // guest_only keeps its state: guest-side pins need no draining.
        std::vector<page_range> drain;
        if (to_private && defer)
            for (const leaf& l : after) {
                const page_range lr{l.first, l.end()};
                if (!lr.overlaps(r)) continue;
                if (at(lr.intersect(r).begin).share == shareability::shared &&
                    first_where(lr, [](const page_state& s) { return s.live_pins() != 0; }) != no_page)
                    drain.push_back(lr);
            }
        update(r, [&](page_state& s) {
            s.share = to;
            if (!to_private) s.draining = false;
        });
        for (page_range lr : drain) update(lr, [](page_state& s) { s.draining = true; });
        if (content == 1) events_.zeroed_pages += count_where(r, [](const page_state& s) { return s.allocated; });
        for (std::size_t i : prepared) leak(bindings_[i], r, after);
        ++events_.conversions;
        return expect::success();
    }

    expect pin(page_range r, accessor who, access_policy policy = {}) {
        if (auto e = check(r); !e.ok) return e;
        if (!is_valid(who)) return expect::fail(errc::invalid_argument, r.begin);
        if (!trusted(who, policy)) {
            if (page_index p = first_where(r, [](const page_state& s) { return s.share != shareability::shared; });
                p != no_page)
                return expect::fail(errc::permission_denied, p);
        }
        if (page_index p = first_where(r, [](const page_state& s) { return s.allocated && s.draining; }); p != no_page)
            return expect::fail(errc::busy, p);
        if (page_index p = first_where(r, [](const page_state& s) { return !s.allocated; }); p != no_page)
            return expect::fail(errc::not_allocated, p);
        for (auto& [first, order] : tops_) {
            const page_range t{first, first + pages_in(order)};
            if (!t.overlaps(r)) continue;
            for (const detached_top& d : detached_)
                if (d.holds_pins && d.range().overlaps(t)) return expect::fail(errc::busy, std::max(t.begin, r.begin));
        }
        if (page_index p = first_where(r, [](const page_state& s) { return s.poisoned; }); p != no_page)
            return expect::fail(errc::poisoned, p);
        update(r, [](page_state& s) { ++s.pins; });
        return expect::success();
    }

    expect unpin(page_range r) {
        if (auto e = check(r); !e.ok) return e;
        if (page_index p = first_where(r, [](const page_state& s) { return s.pins == 0; }); p != no_page)
            return expect::fail(errc::invalid_argument, p);
        update(r, [](page_state& s) { --s.pins; });
        // A detached folio whose last pin dropped is freed (or stays quarantined).
        for (auto it = detached_.begin(); it != detached_.end();) {
            if (!it->holds_pins || !it->range().overlaps(r) ||
                first_where(it->range(), [](const page_state& x) { return x.pins != 0; }) != no_page) {
                ++it;
                continue;
            }
            it->holds_pins = false;
            update(it->range(), [](page_state& x) { x.detached_pins = false; });
            it = it->poisoned.empty() ? detached_.erase(it) : std::next(it);
        }
        return expect::success();
    }

    /// `leaves`: the geometry at the call (a poisoned leaf never changes shape).
    expect memory_failure(page_index page, const leaf_list& leaves) {
        if (page >= size_) return expect::fail(errc::invalid_range, page);
        const page_state s = at(page);
        if (!s.allocated) return expect::fail(errc::not_allocated, page);
        if (s.poisoned) return expect::success();
        const leaf* l = leaf_at(leaves, page);
        if (l == nullptr) return expect::fail(errc::not_allocated, page);  // geometry disagrees; the checker reports it
        update({l->first, l->end()}, [](page_state& x) { x.poisoned = true; });
        for (model_binding& b : bindings_)
            if (b.pages.overlaps({l->first, l->end()})) {
                ++tally_[b.consumer].memory_failures;
                b.sequence += 2;
            }
        return expect::success();
    }

    /// A fault's expected outcome; on success, the order is the leaf's.
    [[nodiscard]] expect fault(page_index page, shareability wanted, accessor who, access_policy policy = {}) const {
        if (page >= size_) return expect::fail(errc::invalid_range, page);
        if (!is_valid(wanted) || !is_valid(who)) return expect::fail(errc::invalid_argument, page);
        if (wanted == shareability::guest_only && !trusted(who, policy)) return expect::fail(errc::permission_denied, page);
        const page_state s = at(page);
        if (s.share != wanted) return expect::fail(errc::permission_denied, page);
        if (!s.allocated) return expect::fail(errc::not_allocated, page);
        if (s.poisoned) return expect::fail(errc::poisoned, page);
        if (s.draining) return expect::fail(errc::retry, page);  // mappability table: guest_fault in none
        return expect::success();
    }

    /// bind: the id comes from the object (it is process-wide); the model
    /// predicts whether it is accepted and where it goes in binding order.
    expect bind(unsigned c, unsigned slot, page_range r, std::uint64_t base) const {
        if (auto e = check(r); !e.ok) return e;
        if (base > UINT64_MAX - r.size()) return expect::fail(errc::invalid_range, r.begin);
        for (const model_binding& b : bindings_)
            if (b.consumer == c && b.slot == slot) return expect::fail(errc::already_bound, r.begin);
        for (const model_binding& b : bindings_)
            if (b.consumer == c && b.pages.overlaps(r))
                return expect::fail(errc::already_bound, std::max(r.begin, b.pages.begin));
        return expect::success();
    }
    void bound(unsigned c, unsigned slot, page_range r, std::uint64_t base, std::uint64_t id, std::uint64_t sequence,
               unsigned view = 0) {
        auto pos = std::find_if(bindings_.begin(), bindings_.end(), [&](const model_binding& b) { return b.pages.begin > r.begin; });
        bindings_.insert(pos, model_binding{c, slot, r, base, id, sequence, view});
    }
    /// `leaves`: the geometry at the call (for a page the release leaks).
    expect unbind(std::uint64_t id, const leaf_list& leaves, unsigned view = 0) {
        auto it = std::find_if(bindings_.begin(), bindings_.end(),
                               [&](const model_binding& b) { return b.id == id && id != 0 && b.view == view; });
        if (it == bindings_.end()) return expect::fail(errc::not_bound, no_page);
        ++tally_[it->consumer].prepares;
        ++tally_[it->consumer].commits;
        leak(*it, it->pages, leaves);
        bindings_.erase(it);
        return expect::success();
    }
    [[nodiscard]] std::optional<std::uint64_t> id_of(unsigned c, unsigned slot) const {
        for (const model_binding& b : bindings_)
            if (b.consumer == c && b.slot == slot) return b.id;
        return std::nullopt;
    }

    /// After every call: a draining leaf whose pins are all gone is guest-mappable (last_unpin fires at once).
    void settle(const leaf_list& leaves) {
        if (count_where({0, size_}, [](const page_state& s) { return s.draining; }) == 0) return;
        for (const leaf& l : leaves) {
            const page_range lr{l.first, l.end()};
            if (first_where(lr, [](const page_state& s) { return s.draining; }) == no_page) continue;
            if (first_where(lr, [](const page_state& s) { return s.live_pins() != 0; }) == no_page)
                update(lr, [](page_state& s) { s.draining = false; });
        }
    }

    /// detached_ in the library's order (by end; ties in detach order).
    [[nodiscard]] std::vector<detached_top> by_end() const {
        std::vector<detached_top> v = detached_;
        std::stable_sort(v.begin(), v.end(), [](const detached_top& a, const detached_top& b) { return a.range().end < b.range().end; });
        return v;
    }

private:
    /// May `who` map guest_only pages under `p`? (The model's own spelling
    /// of the rule: non_confidential lets everyone; otherwise the
    /// hypervisor, and trusted devices where the view trusts them.)
    static bool trusted(accessor who, access_policy p) {
        return p.mode == confidentiality::non_confidential || who == accessor::hypervisor ||
               (who == accessor::trusted_device && p.trusted_devices);
    }

    template <class F>
    void update(page_range r, F&& f) {
        split(r.begin);
        split(r.end);
        for (auto it = runs_.find(r.begin); it != runs_.end() && it->first < r.end; ++it) f(it->second);
        // coalesce around and inside r
        auto it = std::prev(runs_.upper_bound(r.begin > 0 ? r.begin - 1 : 0));
        while (it != runs_.end() && it->first <= r.end) {
            auto next = std::next(it);
            if (next != runs_.end() && next->second == it->second)
                runs_.erase(next);
            else
                it = next;
        }
    }
    void split(page_index p) {
        if (p >= size_) return;
        auto it = std::prev(runs_.upper_bound(p));
        if (it->first != p) runs_.emplace_hint(std::next(it), p, it->second);
    }
    void bump_sequences(page_range r) {
        for (model_binding& b : bindings_)
            if (b.pages.overlaps(r)) b.sequence += 2;
    }
    void invalidate_all(page_range r, const leaf_list& leaves) {
        for (model_binding& b : bindings_)
            if (b.pages.overlaps(r)) {
                ++tally_[b.consumer].prepares;
                ++tally_[b.consumer].commits;
                b.sequence += 2;
            }
        for (model_binding& b : bindings_)
            if (b.pages.overlaps(r)) leak(b, r, leaves);
    }
    /// b's consumer committed an invalidation of r: the page it leaks there,
    /// if allocated and not yet poisoned, is poisoned alone (its leaf split
    /// down to 4K: quarantine costs 4K on every path).
    void leak(const model_binding& b, page_range r, const leaf_list& leaves) {
        const page_index p = tally_[b.consumer].leak_page;
        if (p == no_page || !b.pages.intersect(r).contains(p) || p >= size_) return;
        const page_state s = at(p);
        const leaf* l = leaf_at(leaves, p);
        if (!s.allocated || s.poisoned || l == nullptr) return;
        update({p, p + 1}, [](page_state& x) { x.poisoned = true; });
        ++events_.commit_quarantines;
    }

    page_index size_;
    folio_order max_order_;
    std::map<page_index, page_state> runs_;
    std::map<page_index, folio_order> tops_;
    std::vector<detached_top> detached_;  // in detach order
    std::vector<model_binding> bindings_;
    consumer_tally tally_[max_consumers];
    bool view_open_[max_views] = {};
    access_policy policy_[max_views] = {};
    event_counts events_;
};

} // namespace guestmem::model
