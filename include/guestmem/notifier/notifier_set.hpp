/// @file
/// The consumers bound to one guest memory object and the two-phase
/// invalidation protocol (docs/DESIGN.md §Two-phase invalidation).
///
/// A vetoable invalidation is a round: prepare_round bumps the sequence of
/// every overlapping binding (odd = in flight) and asks each, in binding
/// order, to prepare; the first veto aborts every binding already prepared,
/// in reverse order, ends the sequences and returns the veto (which binding,
/// which page, why). Otherwise the owner then calls commit_round (cannot
/// fail; consumers report pages they could not drop) or abort_round. One
/// round at a time: the owner's exclusive lock already serialises them.
/// Truncation, release and memory failure are not vetoable: invalidate()
/// still calls prepare, ignores (and counts) refusals, then commits.
///
/// Binding order is object page order: bindings sorted by their first page,
/// ties by bind order (like the kernel's gmem bindings xarray, keyed by
/// pgoff). Within a round, irrevocable bindings (binding_class) prepare
/// after every ordinary one. Everything here is intrusive: no operation
/// allocates.
///
/// Costs: the bindings are indexed by object page range (an augmented AVL
/// tree, notifier/detail/binding_index.hpp) and by id (a Boost.Intrusive
/// red-black tree), so with B bindings of which k overlap the range, a
/// round, invalidate() and memory_failure() visit O((k + 1) log B) nodes
/// (not all B), and bind/unbind are O((k + 1) log B) and O(log B). A round
/// searches the index once: the bindings it finds are threaded on an
/// intrusive round list that every later phase (prepare, commit, abort,
/// end) walks in O(k).
///
/// Locking: every member that changes the set (and the destructor) must run
/// under the owner's exclusive lock, as must destroying a bound binding; the
/// const members (binding_count, for_each_binding, stats, ...) under the
/// owner's lock, shared being enough (guest_memory's stats and dump do so);
/// read_begin/read_retry (and binding::sequence) need none. Consumer
/// callbacks must not bind or unbind on the set that calls them. Each
/// member states its own in a `Lock:` field.
#pragma once

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/set.hpp>

#include <atomic>
#include <cinttypes>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/notifier/binding.hpp>
#include <guestmem/notifier/consumer.hpp>
#include <guestmem/notifier/detail/binding_index.hpp>

namespace guestmem {

namespace detail {
/// Binding ids come from one process-wide counter, so an id is never reused
/// and a handle from another notifier_set never names a binding here.
inline std::uint64_t next_binding_id() noexcept {
    static std::atomic<std::uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

template <class C>
concept named_consumer = requires(const C& c) {
    { c.name() } -> std::convertible_to<std::string_view>;
};
} // namespace detail

/// The bindings of one guest memory object, in object page order, and the
/// two-phase invalidation protocol (see the file description). `C`: the
/// consumer type (the virtual `consumer` base by default).
///
/// Locking: the members that change the set run under the owner's
/// exclusive lock (guest_memory takes it), the const ones under its lock
/// (shared is enough), read_begin and read_retry under none; consumer
/// callbacks run inside the members that invalidate, under that lock, and
/// must not bind or unbind here. No member allocates or throws. Costs (B
/// bindings, k of them overlapping the range at hand) are stated per member
/// in a `Cost:` field, plus the consumers' own callbacks.
template <invalidation_consumer C = consumer>
class notifier_set {
    struct id_of {
        using type = std::uint64_t;
        type operator()(const binding<C>& b) const noexcept { return b.id_; }
    };
    using id_set = boost::intrusive::set<
        binding<C>, boost::intrusive::member_hook<binding<C>, detail::binding_id_hook, &binding<C>::id_hook_>,
        boost::intrusive::constant_time_size<false>, boost::intrusive::key_of_value<id_of>>;
    using round_list = boost::intrusive::list<
        binding<C>, boost::intrusive::member_hook<binding<C>, detail::binding_round_hook, &binding<C>::round_hook_>,
        boost::intrusive::constant_time_size<false>>;

public:
    /// Totals since construction, as stats() returns them.
    struct counters {
        /// Every two-phase round begun: prepare_round, invalidate, and the
        /// release sent by unbind and by the destructor.
        std::uint64_t rounds = 0, commits = 0, aborts = 0, vetoes = 0, ignored_vetoes = 0, memory_failures = 0;
        /// @var counters::commits
        /// Rounds that ended committed (commit_round, invalidate, releases).

        /// @var counters::aborts
        /// Rounds that ended aborted (a veto, abort_round, or the destructor).

        /// @var counters::vetoes
        /// Refusals by prepare that aborted a vetoable round.

        /// @var counters::ignored_vetoes
        /// Refusals by prepare of a non-vetoable invalidation (not obeyed;
        /// the last one is last_ignored_veto()).

        /// @var counters::memory_failures
        /// Calls to memory_failure().
    };

    /// An empty set: no binding, no round, counters at 0.
    /// Lock: none (nothing shares it yet). Cost: O(1); allocates nothing.
    notifier_set() = default;
    notifier_set(const notifier_set&) = delete;
    notifier_set& operator=(const notifier_set&) = delete;
    notifier_set(notifier_set&&) = delete;
    notifier_set& operator=(notifier_set&&) = delete;

    /// Aborts a round still in flight, then releases and unlinks every
    /// remaining binding (a non-vetoable `release` to each).
    /// Lock:      the owner's exclusive lock, like every mutation; consumer
    ///            callbacks run under it.
    /// Cost:      O(B log B) plus the consumers' abort, prepare and commit
    ///            callbacks.
    /// Allocates: nothing.
    ~notifier_set() {
        if (in_round_) abort_active();
        commit_report discarded;
        while (!index_.empty()) release_and_unlink(as_binding(*index_.leftmost()), discarded);
    }

    /// Bind `slot` to `pages` of the object for `owner`, translating
    /// pages.begin to `target_base` in the consumer's space. The owner
    /// checks `pages` against its size. `cls`: when it prepares within a
    /// round (binding_class).
    /// Errors:    in this order, nothing changed: invalid_range (`pages` empty
    ///            or inverted); invalid_argument (an unknown `cls`);
    ///            invalid_range (the target range passes 2^64);
    ///            already_bound (`slot` is bound); busy (a round is in
    ///            flight); already_bound (`owner` has a binding overlapping
    ///            `pages`, at the first shared page).
    /// Lock:      the owner's exclusive lock.
    /// Cost:      O((k + 1) log B), k the bindings overlapping `pages`.
    /// Allocates: nothing (the binding is intrusive: `slot` is the record).
    [[nodiscard]] result<binding_handle> bind(binding<C>& slot, C& owner, page_range pages, std::uint64_t target_base,
                                              binding_class cls = binding_class::ordinary) {
        if (auto s = check_range(pages, no_page); !s) return s.error();
        if (cls != binding_class::ordinary && cls != binding_class::irrevocable)
            return error::make(errc::invalid_argument, pages.begin, "binding of pages [%#" PRIx64 ", %#" PRIx64
                               ") has an unknown binding class %d", pages.begin, pages.end, static_cast<int>(cls));
        if (target_base > UINT64_MAX - pages.size())
            return error::make(errc::invalid_range, pages.begin,
                               "binding of pages [%#" PRIx64 ", %#" PRIx64 ") at target base %#" PRIx64
                               " overflows past 2^64",
                               pages.begin, pages.end, target_base);
        if (slot.is_bound())
            return error::make(errc::already_bound, pages.begin,
                               "binding slot is already bound (binding %" PRIu64 " over pages [%#" PRIx64 ", %#" PRIx64
                               "))",
                               slot.id_, slot.pages_.begin, slot.pages_.end);
        if (in_round_)
            return error::make(errc::busy, pages.begin,
                               "cannot bind pages [%#" PRIx64 ", %#" PRIx64 ") while an invalidation round over [%#" PRIx64
                               ", %#" PRIx64 ") is in flight",
                               pages.begin, pages.end, active_pages_.begin, active_pages_.end);
        const binding<C>* mine = nullptr;  // the owner's first binding overlapping `pages`
        index_.visit(pages, [&](detail::binding_node& n) {
            if (as_binding(n).owner_ != &owner) return true;
            mine = &as_binding(n);
            return false;
        });
        if (mine != nullptr)
            return error::make(errc::already_bound, std::max(pages.begin, mine->pages_.begin),
                               "consumer already has binding %" PRIu64 " over pages [%#" PRIx64 ", %#" PRIx64
                               "), which overlaps [%#" PRIx64 ", %#" PRIx64 ")",
                               mine->id_, mine->pages_.begin, mine->pages_.end, pages.begin, pages.end);
        slot.pages_ = pages;
        slot.target_base_ = target_base;
        slot.id_ = detail::next_binding_id();
        slot.owner_ = &owner;
        slot.depth_ = 0;
        slot.prepared_ = false;
        slot.class_ = cls;
        has_irrevocable_ = has_irrevocable_ || cls == binding_class::irrevocable;
        index_.insert(slot);
        ids_.insert_unique(slot);  // ids are never reused: always inserts
        return binding_handle{slot.id_};
    }

    /// Unbind: deliver a non-vetoable `release` over the binding's whole
    /// range (prepare result ignored, then commit), then unlink. Commit-time
    /// reports go to `report`; the range released is returned, for an owner
    /// that quarantines what the reports name.
    /// Errors:    not_bound (no_page: an unknown, stale or foreign handle),
    ///            the only one; nothing changed.
    /// Lock:      the owner's exclusive lock; the consumer's release
    ///            callbacks run under it.
    /// Cost:      O(log B) plus the consumer's prepare and commit.
    /// Allocates: nothing.
    [[nodiscard]] result<page_range> unbind(binding_handle h, commit_report& report) {
        binding<C>* b = find(h.id);
        if (b == nullptr)
            return error::make(errc::not_bound, no_page,
                               "binding %" PRIu64 " is not bound to this notifier set (unknown, already unbound, or "
                               "from another set)",
                               h.id);
        const page_range pages = b->pages_;
        release_and_unlink(*b, report);
        return pages;
    }
    /// As above; commit-time reports are discarded.
    /// Errors:    not_bound (no_page), as above.
    /// Lock:      the owner's exclusive lock.
    /// Cost:      as above.
    /// Allocates: nothing.
    [[nodiscard]] status unbind(binding_handle h) {
        commit_report discarded;
        if (auto r = unbind(h, discarded); !r) return r.error();
        return ok();
    }

    /// Begin a vetoable invalidation of `pages`: bump the sequence of every
    /// overlapping binding (odd while in flight) and ask each, in binding
    /// order, ordinary bindings first and irrevocable ones after them, to
    /// prepare. The first veto aborts every binding already prepared,
    /// newest first, ends the sequences and returns the veto;
    /// otherwise the round stays in flight until exactly one of
    /// commit_round and abort_round. Always inlined: a handful of stores.
    /// Errors:    in this order: invalid_argument for a non-vetoable or
    ///            unknown cause; invalid_range for an empty or inverted
    ///            range; busy while another round is in flight (nothing
    ///            changed by these three); vetoed (at the consumer's page if
    ///            it is in the clipped range, else the clipped range's first
    ///            page, with the binding id) when a consumer refuses: the
    ///            round is then aborted and ended.
    /// Lock:      the owner's exclusive lock; prepare (and, on a veto, abort)
    ///            callbacks run under it.
    /// Cost:      O((k + 1) log B) plus the consumers' prepare callbacks;
    ///            O(1) with no binding.
    /// Allocates: nothing.
    [[nodiscard, gnu::always_inline]] inline status prepare_round(page_range pages, invalidation_cause cause) {
        if (!is_vetoable(cause)) return not_vetoable(pages, cause);
        if (auto s = check_range(pages, no_page); !s) return s;
        if (in_round_) return round_busy(pages);
        ++stats_.rounds;
        if (!index_.empty())
            if (auto s = prepare_bindings(pages, cause); !s) return s;
        active_pages_ = pages;
        active_cause_ = cause;
        in_round_ = true;
        return ok();
    }
    /// Commit every prepared binding in binding order, ordinary before
    /// irrevocable (cannot fail;
    /// consumers report pages they could not drop into `report`) and end
    /// the round. Nothing happens when no round is in flight.
    /// Lock:      the owner's exclusive lock; commit callbacks run under it.
    /// Cost:      O((k + 1) log B) plus the consumers' commit callbacks.
    /// Allocates: nothing.
    void commit_round(commit_report& report) noexcept {
        if (!in_round_) return;
        if (!index_.empty()) commit_bindings(report);
        in_round_ = false;
        ++stats_.commits;
    }
    /// The owner changed its mind after a successful prepare_round: abort
    /// every prepared binding in reverse prepare order and end the round.
    /// Nothing happens when no round is in flight. Cannot fail.
    /// Lock:      the owner's exclusive lock; abort callbacks run under it.
    /// Cost:      O(k) (the round's list) plus the consumers' abort callbacks.
    /// Allocates: nothing.
    void abort_round() noexcept {
        if (in_round_) abort_active();
    }

    /// A non-vetoable invalidation (truncate, release, memory failure; any
    /// cause given here is delivered with vetoable == false): prepare all
    /// overlapping bindings, ignoring and counting refusals, then commit all.
    /// Cannot fail; an empty range does nothing.
    /// Lock:      the owner's exclusive lock; prepare and commit callbacks
    ///            run under it.
    /// Cost:      O((k + 1) log B) plus the consumers' callbacks.
    /// Allocates: nothing (a refusal is kept in last_ignored_veto()).
    void invalidate(page_range pages, invalidation_cause cause, commit_report& report) noexcept {
        if (pages.empty()) return;
        ++stats_.rounds;
        if (in_round_) {  // the round list is the active round's: search the index for each phase
            for_overlapping(pages, [](binding<C>& b) { b.begin_invalidation(); });
            for_overlapping(pages, [&](binding<C>& b) { prepare_ignoring_veto(b, pages, cause); });
            for_overlapping(pages, [&](binding<C>& b) { b.owner_->commit(make_invalidation(b, pages, cause, false), report); });
            for_overlapping(pages, [](binding<C>& b) { b.end_invalidation(); });
        } else {
            gather(pages);
            for (binding<C>& b : round_) prepare_ignoring_veto(b, pages, cause);
            for (binding<C>& b : round_) b.owner_->commit(make_invalidation(b, pages, cause, false), report);
            for (binding<C>& b : round_) b.end_invalidation();
            round_.clear();
        }
        ++stats_.commits;
    }

    /// The folio `folio` (of `order`, its pages `share`) was poisoned: one
    /// single-phase notification to every binding overlapping it, clipped
    /// to it, each binding's sequence bumped (begin and end) around it.
    /// Cannot fail.
    /// Lock:      the owner's exclusive lock; memory_failure callbacks run
    ///            under it.
    /// Cost:      O((k + 1) log B) plus the consumers' callbacks.
    /// Allocates: nothing.
    void memory_failure(page_range folio, folio_order order, shareability share) noexcept {
        ++stats_.memory_failures;
        if (folio.empty()) return;
        for_overlapping(folio, [&](binding<C>& b) {
            b.begin_invalidation();
            invalidation inv = make_invalidation(b, folio, invalidation_cause::memory_failure, false);
            inv.order = order;
            inv.share = share;
            b.owner_->memory_failure(inv);
            b.end_invalidation();
        });
    }

    /// Like mmu_interval_read_begin: the binding's current sequence (odd
    /// while an invalidation is in flight: read_retry will then say retry).
    /// Lock: none (one atomic load). Cost: O(1).
    [[nodiscard]] std::uint64_t read_begin(const binding<C>& b) const noexcept { return b.sequence(); }
    /// True if an invalidation over `b` was in flight at read_begin, or
    /// began or ran since. Call under the consumer's own lock before
    /// installing a mapping.
    /// Lock: none on the owner (one atomic load). Cost: O(1).
    [[nodiscard]] bool read_retry(const binding<C>& b, std::uint64_t seq) const noexcept {
        return (seq & 1) != 0 || b.sequence() != seq;
    }

    /// f(const binding<C>&) for each binding, in binding order.
    /// Lock: the owner's lock (shared is enough). Cost: O(B) plus the calls of `f`.
    template <class F>
    void for_each_binding(F&& f) const {
        index_.for_each([&](const detail::binding_node& n) { f(as_binding(n)); });
    }
    /// Number of bindings.
    /// Lock: the owner's lock (shared is enough). Cost: O(1).
    [[nodiscard]] std::size_t binding_count() const noexcept { return index_.size(); }
    /// The counters since construction.
    /// Lock: the owner's lock (shared is enough). Cost: O(1).
    [[nodiscard]] counters stats() const noexcept { return stats_; }
    /// The most recent refusal of a non-vetoable invalidation (the "log"),
    /// with the binding id attached; empty if none happened.
    /// Lock: the owner's lock (shared is enough). Cost: O(1).
    [[nodiscard]] const std::optional<error>& last_ignored_veto() const noexcept { return last_ignored_veto_; }
    /// True between a successful prepare_round and its commit or abort.
    /// Lock: the owner's lock (shared is enough). Cost: O(1).
    [[nodiscard]] bool round_in_flight() const noexcept { return in_round_; }

private:
    static binding<C>& as_binding(detail::binding_node& n) noexcept { return static_cast<binding<C>&>(n); }
    static const binding<C>& as_binding(const detail::binding_node& n) noexcept {
        return static_cast<const binding<C>&>(n);
    }

    binding<C>* find(std::uint64_t id) noexcept {
        if (id == 0) return nullptr;
        auto it = ids_.find(id);
        return it == ids_.end() ? nullptr : &*it;
    }

    // prepare_round's refusals, built out of line so the round's fast path
    // stays small enough to inline.
    [[gnu::cold, gnu::noinline]] static error not_vetoable(page_range pages, invalidation_cause cause) noexcept {
        return error::make(errc::invalid_argument, pages.begin,
                           "prepare_round() of pages [%#" PRIx64 ", %#" PRIx64 ") needs a vetoable cause; %.*s is "
                           "not vetoable (use invalidate())",
                           pages.begin, pages.end, static_cast<int>(to_string(cause).size()), to_string(cause).data());
    }
    [[gnu::cold, gnu::noinline]] error round_busy(page_range pages) const noexcept {
        return error::make(errc::busy, pages.begin,
                           "cannot prepare pages [%#" PRIx64 ", %#" PRIx64 ") while an invalidation round over [%#" PRIx64
                           ", %#" PRIx64 ") is in flight",
                           pages.begin, pages.end, active_pages_.begin, active_pages_.end);
    }

    /// The consumers' half of prepare, out of line: a set with no binding
    /// runs none of it, and the caller's inlined fast path does not carry
    /// the veto handling.
    [[gnu::noinline]] status prepare_bindings(page_range pages, invalidation_cause cause) {
        gather(pages);
        if (!has_irrevocable_) {  // the common case: one pass, no class test
            for (binding<C>& b : round_)
                if (auto s = prepare_one(b, pages, cause); !s) return s;
            return ok();
        }
        bool irrevocable = false;  // an irrevocable binding was passed over: a second pass
        for (binding<C>& b : round_) {
            if (b.class_ != binding_class::ordinary) {
                irrevocable = true;
                continue;
            }
            if (auto s = prepare_one(b, pages, cause); !s) return s;
        }
        if (irrevocable)
            for (binding<C>& b : round_)
                if (b.class_ != binding_class::ordinary)
                    if (auto s = prepare_one(b, pages, cause); !s) return s;
        return ok();
    }

    /// Search the index once: begin an invalidation over every binding
    /// overlapping `pages` and thread it, in binding order, on the round
    /// list (empty before).
    void gather(page_range pages) noexcept {
        index_.visit(pages, [&](detail::binding_node& n) {
            binding<C>& b = as_binding(n);
            b.begin_invalidation();
            round_.push_back(b);
            return true;
        });
    }

    /// Prepare one binding; on a veto, abort everyone already prepared
    /// (reverse prepare order), end every sequence the round began and
    /// return the veto. The success path is inlined into the loops.
    [[gnu::always_inline]] inline status prepare_one(binding<C>& b, page_range pages, invalidation_cause cause) {
        status st = b.owner_->prepare(make_invalidation(b, pages, cause, true));
        if (st) [[likely]] {
            b.prepared_ = true;
            return ok();
        }
        return veto_round(b, pages, cause, st.error());
    }

    /// A veto: abort everyone already prepared, end the sequences, count,
    /// and describe it. Out of line: the round's common path never runs it.
    [[gnu::cold, gnu::noinline]] error veto_round(binding<C>& b, page_range pages, invalidation_cause cause,
                                                  const error& why) {
        error e = describe_veto(b, pages, cause, why);
        abort_prepared(pages, cause);
        end_round_list();
        ++stats_.vetoes;
        ++stats_.aborts;
        return e;
    }

    /// Abort every prepared binding in reverse prepare order: irrevocable
    /// ones (prepared last) newest first, then ordinary ones newest first.
    /// Leaves the sequences to the caller.
    void abort_prepared(page_range pages, invalidation_cause cause) noexcept {
        for (binding_class cls : {binding_class::irrevocable, binding_class::ordinary})
            for (auto it = round_.rbegin(); it != round_.rend(); ++it) {
                if (!it->prepared_ || it->class_ != cls) continue;
                it->owner_->abort(make_invalidation(*it, pages, cause, true));
                it->prepared_ = false;
            }
    }
    /// End the sequence of every binding on the round list and empty it.
    void end_round_list() noexcept {
        for (binding<C>& b : round_) b.end_invalidation();
        round_.clear();
    }

    /// The consumers' half of commit (the active round's pages and cause).
    [[gnu::noinline]] void commit_bindings(commit_report& report) noexcept {
        if (!has_irrevocable_) {
            for (binding<C>& b : round_)
                if (b.prepared_) commit_one(b, report);
            round_.clear();
            return;
        }
        bool irrevocable = false;
        for (binding<C>& b : round_) {
            if (!b.prepared_) continue;
            if (b.class_ != binding_class::ordinary) {
                irrevocable = true;
                continue;
            }
            commit_one(b, report);
        }
        if (irrevocable)
            for (binding<C>& b : round_)
                if (b.prepared_) commit_one(b, report);
        round_.clear();
    }
    [[gnu::always_inline]] inline void commit_one(binding<C>& b, commit_report& report) noexcept {
        b.owner_->commit(make_invalidation(b, active_pages_, active_cause_, true), report);
        b.prepared_ = false;
        b.end_invalidation();
    }

    /// f(binding<C>&) for each binding overlapping `pages`, in binding order.
    template <class F>
    [[gnu::always_inline]] inline void for_overlapping(page_range pages, F&& f) noexcept {
        index_.visit(pages, [&](detail::binding_node& n) {
            f(as_binding(n));
            return true;
        });
    }

    /// The invalidation one binding sees: clipped to it and translated
    /// into its consumer's space (base + max(pgoff, start) - pgoff, as guest_memfd does).
    static invalidation make_invalidation(const binding<C>& b, page_range pages, invalidation_cause cause,
                                          bool vetoable) noexcept {
        invalidation inv;
        inv.pages = b.pages_.intersect(pages);
        inv.target = {b.translate(inv.pages.begin), b.translate(inv.pages.end)};
        inv.cause = cause;
        inv.vetoable = vetoable;
        inv.sequence = b.sequence();
        inv.binding_id = b.id_;
        return inv;
    }

    static std::string_view consumer_name(const binding<C>& b) noexcept {
        if constexpr (detail::named_consumer<C>)
            return std::string_view(b.owner_->name());
        else
            return "consumer";
    }

    /// The caller-facing veto: code vetoed, the consumer's page (if it is in
    /// the clipped range, else the first clipped page), the binding id, and
    /// the consumer's name and reason.
    static error describe_veto(const binding<C>& b, page_range pages, invalidation_cause cause, const error& why) noexcept {
        const page_range clipped = b.pages_.intersect(pages);
        const page_index page = clipped.contains(why.page()) ? why.page() : clipped.begin;
        const std::string_view name = consumer_name(b);
        const std::string_view reason = why.message();
        const std::string_view code = why.code() == errc::vetoed ? std::string_view{} : to_string(why.code());
        const std::string_view cause_name = to_string(cause);
        error e = error::make(errc::vetoed, page,
                              "%.*s (binding %" PRIu64 ") vetoed %.*s of [%#" PRIx64 ", %#" PRIx64 "): %.*s%s%.*s%s",
                              static_cast<int>(name.size()), name.data(), b.id_, static_cast<int>(cause_name.size()),
                              cause_name.data(), clipped.begin, clipped.end, static_cast<int>(reason.size()),
                              reason.data(), code.empty() ? "" : " (", static_cast<int>(code.size()), code.data(),
                              code.empty() ? "" : ")");
        e.with_binding_id(b.id_);
        return e;
    }

    void prepare_ignoring_veto(binding<C>& b, page_range pages, invalidation_cause cause) noexcept {
        status st = b.owner_->prepare(make_invalidation(b, pages, cause, false));
        if (st) return;
        ++stats_.ignored_vetoes;
        last_ignored_veto_ = describe_veto(b, pages, cause, st.error());
    }

    /// Abort the round in flight, as a veto does: every prepared binding,
    /// in reverse prepare order, then every sequence the round began ends.
    void abort_active() noexcept {
        abort_prepared(active_pages_, active_cause_);
        end_round_list();
        in_round_ = false;
        ++stats_.aborts;
    }

    /// Release one binding: if the active round prepared it, abort it for
    /// that round first; then prepare (ignored) and commit a `release` over
    /// its whole range, and unlink it.
    void release_and_unlink(binding<C>& b, commit_report& report) noexcept {
        if (b.prepared_) {
            b.owner_->abort(make_invalidation(b, active_pages_, active_cause_, true));
            b.prepared_ = false;
            b.end_invalidation();
        }
        if (b.round_hook_.is_linked()) b.round_hook_.unlink();  // leaves the active round
        ++stats_.rounds;
        b.begin_invalidation();
        prepare_ignoring_veto(b, b.pages_, invalidation_cause::release);
        b.owner_->commit(make_invalidation(b, b.pages_, invalidation_cause::release, false), report);
        b.end_invalidation();
        ++stats_.commits;
        index_.erase(b);
        b.id_hook_.unlink();
        b.owner_ = nullptr;
        b.id_ = 0;
        b.depth_ = 0;
    }

    detail::binding_index index_;  // by (first page, bind order): binding order
    id_set ids_;                   // by id, for unbind
    round_list round_;             // the bindings of the round in flight, in binding order
    counters stats_{};
    bool in_round_ = false;  // a round begun by prepare_round is in flight
    // An irrevocable binding was ever bound (never cleared: a destroyed
    // binding unlinks itself unseen, so the flag can only be conservative).
    // While false, rounds take the one-pass path with no class tests.
    bool has_irrevocable_ = false;
    page_range active_pages_{};
    invalidation_cause active_cause_ = invalidation_cause::release;
    std::optional<error> last_ignored_veto_;
};

} // namespace guestmem
