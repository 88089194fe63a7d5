/// @file
/// The guest memory object: one guest's memory as the four parts see it
/// together. The shareability map says who may map each page, the folio
/// table says what backs it, the notifier set says who has it mapped.
/// `convert` changes ownership all or nothing:
///
///     1. validate   bad input is refused before anything is touched
///     2. plan       which folios split (to shared) or may merge (to guest_only)
///     3. prepare    the map and the folio table take every node and split
///                   the commit needs (out_of_memory)
///     4. check      no unexpected reference on a page going guest_only (busy)
///     5. prepare    every overlapping consumer (prepare_round); any may veto
///                   (vetoed)
///     6. commit     consumers drop mappings, folios restructure, the map
///                   changes, mappability moves — none of this can fail
///     7. abort      a failure in 2–5 aborts the prepared consumers in reverse
///                   order, then the folio table's and the map's prepare:
///                   nothing changed
///
/// Every layer spells its two phases prepare_X / commit_X / abort_X
/// (docs/DESIGN.md §The two-phase protocol in every layer).
#pragma once

#include <algorithm>
#include <cinttypes>
#include <concepts>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <shared_mutex>

#include <guestmem/core/access_policy.hpp>
#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/folio/allocator.hpp>
#include <guestmem/folio/folio_table.hpp>
#include <guestmem/folio/mappability.hpp>
#include <guestmem/memory/change_log.hpp>
#include <guestmem/memory/config.hpp>
#include <guestmem/memory/detail/counters.hpp>
#include <guestmem/memory/detail/fault_errors.hpp>
#include <guestmem/memory/lock.hpp>
#include <guestmem/memory/options.hpp>
#include <guestmem/memory/reentry.hpp>
#include <guestmem/notifier/binding.hpp>
#include <guestmem/notifier/consumer.hpp>
#include <guestmem/notifier/notifier_set.hpp>
#include <guestmem/range_map/range_map.hpp>

namespace guestmem {

/// One guest's memory (docs/DESIGN.md §Guest memory object): owns the
/// shareability map, the folio table, the notifier set and one lock, and is
/// the only place that orders their steps. Policies: folios come from
/// `Allocator`, bindings point to `Consumer` (the virtual `consumer` base
/// by default), the lock is a `Lock`, map, folio and pin records come from
/// `NodeAllocator`; guest_memory_with names them.
///
/// Locking (docs/DESIGN.md §Locking and callbacks): fault, the queries,
/// stats() and dump() take the lock shared; allocate, punch_hole,
/// release_quarantine, convert, pin, unpin, memory_failure, bind and unbind
/// take it exclusive, and every consumer callback runs under it. A callback
/// that calls back into the object gets errc::would_deadlock from every call
/// that returns an error (memory/reentry.hpp); pins, stats, dump and
/// generation answer it without the lock, as the object was before the
/// round. read_begin and read_retry take no lock; nor do size() and
/// max_order(). The parts themselves (runs, map, folio table, notifier set)
/// are read through locked(guard), a view that needs a guard from
/// lock_shared() or lock_exclusive() (memory/locked.hpp).
///
/// Errors are returned (errc), never thrown; a call that fails has changed
/// nothing. Costs below count runs of the shareability map, top-level
/// folios, leaf folios (leaves), pin runs and bindings.
template <folio_allocator Allocator, invalidation_consumer Consumer = consumer, lock_policy Lock = sharded_shared_mutex<>,
          class NodeAllocator = std::allocator<std::byte>>
class guest_memory {
public:
    using allocator_type = Allocator;                          ///< the folio allocator policy
    using consumer_type = Consumer;                            ///< what bindings point to
    using binding_type = binding<Consumer>;                    ///< a binding's storage (the embedder's)
    using share_map = range_map<shareability, NodeAllocator>;  ///< the shareability map's type

    /// An object of `cfg.pages` pages whose folios come from `allocator`
    /// (which must outlive it). Construction cannot fail: a max_order above
    /// what the allocator supports is lowered to it (check_config says so);
    /// an invalid `cfg.initial` is taken as guest_only.
    /// Lock:      none (nothing shares the object yet).
    /// Cost:      O(1) (the map is one run; the folio table holds no folio).
    /// Allocates: nothing.
    guest_memory(Allocator& allocator, const guest_memory_config& cfg, const NodeAllocator& nodes = {})
        : alloc_(allocator),
          size_(std::min(cfg.pages, max_file_pages)),
          max_order_(clamp_order(allocator, cfg.max_order)),
          shares_(size_, is_valid(cfg.initial) ? cfg.initial : shareability::guest_only, nodes),
          folios_(allocator, size_, max_order_, nodes) {}

    guest_memory(const guest_memory&) = delete;
    guest_memory& operator=(const guest_memory&) = delete;

    /// Validate a configuration before constructing with it.
    /// Errors:    in this order, each at no_page: invalid_argument (0 pages;
    ///            more than 2^51 pages: past the largest file offset, 2^63
    ///            bytes, which guest_memfd's size and fallocate allow, so
    ///            every page an object has can also be punched; an initial
    ///            shareability that is not shared or guest_only; a max_order
    ///            other than order_4k, order_2m, order_1g); not_supported
    ///            (max_order above the allocator's).
    /// Lock:      none.
    /// Cost:      O(1).
    [[nodiscard]] static status check_config(const Allocator& allocator, const guest_memory_config& cfg) noexcept {
        if (cfg.pages == 0) return error::make(errc::invalid_argument, no_page, "an object of 0 pages holds nothing");
        if (cfg.pages > max_file_pages)
            return error::make(errc::invalid_argument, no_page,
                               "an object of %#" PRIx64 " pages ends past the largest file offset (2^63 bytes, 2^51 pages)",
                               cfg.pages);
        if (!is_valid(cfg.initial))
            return error::make(errc::invalid_argument, no_page, "initial shareability %u is not shared or guest_only",
                               unsigned(cfg.initial));
        if (cfg.max_order != order_4k && cfg.max_order != order_2m && cfg.max_order != order_1g)
            return error::make(errc::invalid_argument, no_page, "folio order %u is not 0, 9 or 18",
                               unsigned(cfg.max_order));
        if (cfg.max_order > allocator.max_order())
            return error::make(errc::not_supported, no_page, "the allocator hands out folios up to order %u, not %u",
                               unsigned(allocator.max_order()), unsigned(cfg.max_order));
        return ok();
    }

    /// Object size in base pages, fixed at construction.
    /// Lock: none. Cost: O(1).
    [[nodiscard]] page_index size() const noexcept { return size_; }
    /// Largest order allocate() uses: the configured one, lowered to the
    /// allocator's.
    /// Lock: none. Cost: O(1).
    [[nodiscard]] folio_order max_order() const noexcept { return max_order_; }

    // ---- population -------------------------------------------------------

    /// fallocate: back every hole in `r` with folios of the largest order
    /// that fits, split at once where shareability is mixed. All or nothing:
    /// on error the folios this call made are freed.
    /// Errors:    would_deadlock (no_page) first, when called from a
    ///            consumer callback of this object (memory/reentry.hpp);
    ///            then invalid_range (r empty, inverted or past size());
    ///            poisoned (r holds a quarantined page: release_quarantine
    ///            first);
    ///            out_of_memory (records, or the allocator); any other error
    ///            of the allocator's allocate or prepare_split, passed on (an
    ///            fd backend's errno, mapped by errc_from_errno).
    /// Lock:      exclusive.
    /// Cost:      O(log folios + folios made), plus 512 piece states per split.
    /// Allocates: folios from Allocator; folio records and piece arrays from
    ///            NodeAllocator.
    status allocate(page_range r) {
        if (detail::this_thread_holds(this)) [[unlikely]] return detail::reentered("allocate");
        std::unique_lock guard(lock_);
        if (auto s = check_range(r, size_); !s) return s;
        return folios_.populate(r, shares_);
    }

    /// Truncate (fallocate PUNCH_HOLE): cannot fail for a valid range.
    /// Consumers are told (not vetoable) and pages they report they could
    /// not drop are quarantined first; then whole folios leave the object
    /// (freed, or detached while pinned or poisoned: see the README's
    /// failure semantics) and the covered pages of partly covered huge
    /// folios are zeroed. Shareability is kept. As with guest_memfd, the
    /// part of `r` at or past the object's end is ignored (punching there
    /// succeeds). Consumers' refusals in prepare are ignored (counted).
    /// Errors:    would_deadlock (no_page) first, when called from a
    ///            consumer callback of this object; then invalid_range for an
    ///            empty or inverted range, or one ending past the largest file
    ///            offset (2^63 bytes); nothing else.
    /// Lock:      exclusive; consumer callbacks and the unblock notifier run
    ///            under it.
    /// Cost:      O(bindings + log folios + folios removed + pages zeroed).
    /// Allocates: nothing (frees folios and records).
    status punch_hole(page_range r);

    /// Free the quarantined folios overlapping `r`: folios truncated while
    /// poisoned, or while holding a page a consumer reported it could not
    /// drop. Their frames go back to the allocator (memfd and guest_memfd
    /// punch them, so their contents are gone) and their pages may be
    /// allocated again. Call it once the consumer has really dropped the
    /// page. Nothing quarantined there is not an error.
    /// Errors:    in this order: would_deadlock (no_page: called from a
    ///            consumer callback of this object); invalid_range;
    ///            busy (nothing freed) while such a folio is still pinned
    ///            (its first pinned page named).
    /// Lock:      exclusive; the unblock notifier runs under it.
    /// Cost:      O(detached folios + leaves freed).
    /// Allocates: nothing.
    status release_quarantine(page_range r) {
        if (detail::this_thread_holds(this)) [[unlikely]] return detail::reentered("release_quarantine");
        std::unique_lock guard(lock_);
        detail::hold_marker held(this);  // the unblock notifier runs under it
        auto s = folios_.release_quarantine(r);
        if (s) unblocked(r);
        return s;
    }

    // ---- conversion -------------------------------------------------------

    /// Change the shareability of every page in `r` to `to`, all or
    /// nothing. On failure error().page() is the first offending page and,
    /// for a veto, error().binding_id() the vetoing binding.
    /// Errors:    in the order checked: would_deadlock (no_page: called from
    ///            a consumer callback of this object, memory/reentry.hpp);
    ///            invalid_range (r empty, inverted or past size()); invalid_argument (`to` or opts.content not a
    ///            valid value); then a range already all `to` succeeds at
    ///            once (a no-op); poisoned (a poisoned page in r);
    ///            out_of_memory (map nodes, piece arrays or the allocator's
    ///            split reservation); busy (to guest_only without
    ///            opts.defer_if_pinned: the first pinned page); vetoed (a
    ///            consumer's prepare refused).
    /// Lock:      exclusive; consumer callbacks (and, when something
    ///            changed, the unblock notifier) run under it.
    /// Cost:      O(log runs + log folios + bindings + leaves in r), plus 512
    ///            piece states per split or merge.
    /// Allocates: map nodes and piece arrays from NodeAllocator, and the
    ///            allocator's split reservation, all reserved before anything
    ///            changes (a steady-state conversion reuses pooled nodes).
    status convert(page_range r, shareability to, convert_options opts = {});

    /// Bumped by every conversion that changes something (snapshot/changes.hpp
    /// lists what changed since a generation).
    /// Lock: shared; none from a consumer callback of this object. Cost: O(1).
    [[nodiscard]] std::uint64_t generation() const {
        return read_shared([&] { return changes_.generation(); });
    }

    // ---- faults -----------------------------------------------------------

    /// Look up `page` for a mapping of shareability `wanted` by `who`.
    /// Shared faults: host, hypervisor or device, on shared pages.
    /// Guest-only faults: hypervisor or trusted device, on guest_only pages.
    /// Pair with read_begin/read_retry on the caller's binding so a mapping
    /// is never installed after an invalidation ran in between. Writes
    /// nothing. `policy` decides who may map guest_only pages
    /// (core/access_policy.hpp; today's rules).
    /// Errors:    in order: would_deadlock (no_page: called from a consumer
    ///            callback of this object); invalid_range (page past
    ///            size()); invalid_argument (`wanted` or `who` invalid);
    ///            permission_denied (a host or device asks for guest_only,
    ///            the page is not `wanted`, or a host-side fault on a folio
    ///            not in mappability all);
    ///            not_allocated (a hole); poisoned; retry (a guest-side fault
    ///            on a folio in mappability none, draining its pins).
    /// Lock:      shared (with the default sharded lock a try-lock first: the
    ///            re-entry check costs nothing until it fails).
    /// Cost:      O(log runs + log folios).
    /// Allocates: nothing.
    template <access_rule Policy = confidential>
    [[gnu::always_inline]] inline result<fault_result> fault(page_index page, shareability wanted, accessor who,
                                                              Policy policy = {}) const {
        // Nothing on this path writes shared memory but the lock itself, so
        // faults scale with a lock whose readers write only their own line.
        if constexpr (detail::is_sharded_lock<Lock>) {
            // Its try_lock_shared fails for the thread holding it exclusive:
            // the re-entry check costs nothing until then.
            if (!lock_.try_lock_shared()) [[unlikely]] {
                if (detail::this_thread_holds(this)) return detail::reentered("fault");
                lock_.lock_shared();
            }
        } else {
            if (detail::this_thread_holds(this)) [[unlikely]] return detail::reentered("fault");
            lock_.lock_shared();
        }
        std::shared_lock guard(lock_, std::adopt_lock);
        return fault_locked(page, wanted, who, policy);
    }

    /// fault() without the refusal's words, for a caller that asks fault()
    /// for them only when it needs them (the C ABI's guestmem_fault): the
    /// answer, or nothing. No error object on the path, so a caller that is
    /// a function of its own (not inlined into a loop) keeps a small frame.
    /// Errors:    none reported: std::nullopt stands for every refusal
    ///            fault() words, and for a shared lock not free at once.
    /// Lock:      shared; with the default sharded lock by try-lock only
    ///            (never waits); with another `Lock`, as fault().
    /// Cost:      O(log runs + log folios), as fault.
    /// Allocates: nothing.
    template <access_rule Policy = confidential>
    [[gnu::always_inline]] inline std::optional<fault_result> try_fault(page_index page, shareability wanted,
                                                                         accessor who, Policy policy = {}) const noexcept;

    /// The sequence of binding `b`, read before fault (odd while an
    /// invalidation over `b` is in flight).
    /// Lock: none (one atomic load). Cost: O(1).
    [[nodiscard]] std::uint64_t read_begin(const binding_type& b) const noexcept { return notifier_.read_begin(b); }
    /// True if an invalidation over `b` was in flight at read_begin or has
    /// run since `seq`: drop the fault's answer and fault again. Call it
    /// under the lock the consumer's commit takes, just before installing.
    /// Lock: none on the object (one atomic load). Cost: O(1).
    [[nodiscard]] bool read_retry(const binding_type& b, std::uint64_t seq) const noexcept {
        return notifier_.read_retry(b, seq);
    }

    // ---- unexpected references --------------------------------------------

    /// Take an unexpected reference (GUP pin, IOMMU mapping, I/O in flight)
    /// on every page of `r` on behalf of `who`. All or nothing. `policy`:
    /// as fault's.
    /// Errors:    in the order checked: would_deadlock (no_page: called from
    ///            a consumer callback of this object); invalid_range;
    ///            invalid_argument (`who` invalid); permission_denied (a guest_only page, for the
    ///            host or an untrusted device); busy (a page in mappability
    ///            none); not_allocated (a hole); busy (a folio overlapping one
    ///            truncated while pinned); poisoned; busy (a page at 2^32 - 1
    ///            pins); out_of_memory (pin records).
    /// Lock:      exclusive.
    /// Cost:      O(log runs + runs in r + log folios + leaves in r + pin runs in r).
    /// Allocates: pin records from NodeAllocator.
    template <access_rule Policy = confidential>
    status pin(page_range r, accessor who, Policy policy = {});

    /// Drop one unexpected reference on every page of `r`. The last one on a
    /// folio fires the deferred work at once (none -> guest, re-merge) or,
    /// for a detached folio, frees it. All or nothing.
    /// Errors:    in this order: would_deadlock (no_page: called from a
    ///            consumer callback of this object); invalid_range;
    ///            invalid_argument (a page of r has no pin); out_of_memory
    ///            (records to cut a pin run at r's ends).
    /// Lock:      exclusive; the unblock notifier runs under it.
    /// Cost:      O(log folios + leaves in r + pin runs in r + detached
    ///            folios), plus 512 piece states per merge.
    /// Allocates: pin records from NodeAllocator (to cut a pin run).
    status unpin(page_range r) {
        if (detail::this_thread_holds(this)) [[unlikely]] return detail::reentered("unpin");
        std::unique_lock guard(lock_);
        detail::hold_marker held(this);  // the unblock notifier runs under it
        if (auto s = check_range(r, size_); !s) return s;
        auto s = folios_.unpin(r, shares_);
        if (s) unblocked(r);
        return s;
    }

    // ---- memory failure ---------------------------------------------------

    /// A hardware error hit `page`: poison the leaf folio holding it (never
    /// handed out or merged again; quarantined when truncated) and tell
    /// every binding overlapping that folio, once, clipped to it, with its
    /// order and whether its pages were shared or guest_only (the kernel's
    /// guest_memfd error_folio). A folio already poisoned is not told again.
    /// Errors:    in this order: would_deadlock (no_page: called from a
    ///            consumer callback of this object); invalid_range past the
    ///            end; not_allocated for a hole.
    /// Lock:      exclusive; consumers' memory_failure runs under it.
    /// Cost:      O(log folios + log runs + bindings).
    /// Allocates: nothing.
    status memory_failure(page_index page);

    // ---- consumers ----------------------------------------------------------

    /// Bind `c` over object pages `pages`, translated to `target_base` in
    /// the consumer's own page numbers. `slot` is the consumer's storage for
    /// this binding; several per consumer, several consumers per object.
    /// `cls`: irrevocable for a consumer whose prepare cannot be undone
    /// cheaply (it then prepares after every ordinary binding; see
    /// binding_class).
    /// Errors:    in the order checked, nothing changed: would_deadlock
    ///            (no_page: called from a consumer callback of this object);
    ///            invalid_range (`pages` empty, inverted or past size()); invalid_argument
    ///            (unknown `cls`); invalid_range (a target range passing
    ///            2^64); already_bound (`slot` is bound); already_bound (`c`
    ///            has a binding overlapping `pages`) (notifier_set::bind).
    /// Lock:      exclusive.
    /// Cost:      O(bindings).
    /// Allocates: nothing.
    result<binding_handle> bind(binding_type& slot, Consumer& c, page_range pages, std::uint64_t target_base,
                                binding_class cls = binding_class::ordinary) {
        if (detail::this_thread_holds(this)) [[unlikely]] return detail::reentered("bind");
        std::unique_lock guard(lock_);
        if (auto s = check_range(pages, size_); !s) return s.error();
        return notifier_.bind(slot, c, pages, target_base, cls);
    }

    /// Unbind; the consumer gets a `release` invalidation first, and pages
    /// it reports it could not drop are quarantined like any commit's.
    /// Errors:    would_deadlock (no_page: called from a consumer callback of
    ///            this object); then not_bound (no_page) for a stale handle
    ///            (from an earlier binding or another object), the only other.
    /// Lock:      exclusive; the release's prepare and commit, and the unblock
    ///            notifier, run under it.
    /// Cost:      O(bindings).
    /// Allocates: nothing.
    status unbind(binding_handle h);

    // ---- queries ------------------------------------------------------------

    /// The shareability of `page`.
    /// Errors:    in this order: would_deadlock (no_page: called from a
    ///            consumer callback of this object); invalid_range (page past
    ///            size()).
    /// Lock:      shared.
    /// Cost:      O(log runs).
    [[nodiscard]] result<shareability> shareability_at(page_index page) const {
        if (detail::this_thread_holds(this)) [[unlikely]] return detail::reentered("shareability_at");
        std::shared_lock guard(lock_);
        if (auto s = check_page(page, size_); !s) return s.error();
        return shares_.at(page);
    }

    /// Mappability of the leaf folio holding `page`.
    /// Errors:    in this order: would_deadlock (no_page: called from a
    ///            consumer callback of this object); invalid_range (page past
    ///            size()); not_allocated (a hole).
    /// Lock:      shared.
    /// Cost:      O(log folios).
    [[nodiscard]] result<mappability> mappability_at(page_index page) const {
        if (detail::this_thread_holds(this)) [[unlikely]] return detail::reentered("mappability_at");
        std::shared_lock guard(lock_);
        if (auto s = check_page(page, size_); !s) return s.error();
        auto f = folios_.lookup(page);
        if (!f) return error::make(errc::not_allocated, page, "page %#" PRIx64 " is not allocated", page);
        return f->mappability;
    }

    /// Pins on `page`: the raw per-page count, a detached folio's included;
    /// 0 past the end. No error.
    /// Lock: shared; none from a consumer callback of this object. Cost: O(log pin runs).
    [[nodiscard]] std::uint32_t pins(page_index page) const {
        return read_shared([&] { return page < size_ ? folios_.pins(page) : 0; });
    }

    /// Census and counters, a snapshot (guest_memory_stats). No error.
    /// Lock:      shared; none when called from a consumer callback of this
    ///            object (it reads the state as before the round).
    /// Cost:      O(runs + bindings).
    [[nodiscard]] guest_memory_stats stats() const { return read_shared([&] { return stats_locked(); }); }
    /// A readable map of runs, folios and consumers, written to `os`.
    /// Lock:      shared; none when called from a consumer callback of this
    ///            object (as stats()).
    /// Cost:      O(runs + leaves + bindings).
    /// Allocates: whatever `os` does.
    void dump(std::ostream& os) const { read_shared([&] { dump_locked(os); }); }

    /// Tell `n` (nullptr: nobody) whenever a refused conversion may now
    /// succeed (memory/reentry.hpp): after an unpin, a conversion that
    /// changed something, a punch_hole, a release_quarantine and an unbind,
    /// under the exclusive lock. `n` must outlive the object or be replaced
    /// first.
    /// Errors:    none.
    /// Lock:      exclusive (not from a callback: it would wait for itself).
    /// Cost:      O(1).
    /// Allocates: nothing.
    void set_unblock_notifier(unblock_notifier* n) {
        std::unique_lock guard(lock_);
        unblock_ = n;
    }

private:
    guest_memory_stats stats_locked() const;   // memory/detail/slow_paths.hpp
    void dump_locked(std::ostream& os) const;  // memory/detail/slow_paths.hpp
    // A read without an error channel: from a callback (this thread holds
    // the lock exclusively) it reads without taking it.
    template <class F>
    auto read_shared(F f) const {
        if (detail::this_thread_holds(this)) [[unlikely]] return f();
        std::shared_lock guard(lock_);
        return f();
    }
    void unblocked(page_range r) noexcept {
        if (unblock_ != nullptr) [[unlikely]] unblock_->unblocked(r);
    }

public:

    // ---- the locked tier and the restore door (memory/locked.hpp) ----------

    class locked_view;
    /// The lock, taken shared, as a guard for locked().
    /// Lock:      shared until the guard goes (do not call the locking
    ///            members meanwhile).
    /// Cost:      the lock's.
    [[nodiscard]] std::shared_lock<Lock> lock_shared() const { return std::shared_lock<Lock>(lock_); }
    /// The lock, taken exclusive, as a guard for locked().
    /// Lock:      exclusive until the guard goes (do not call the locking
    ///            members meanwhile).
    /// Cost:      the lock's.
    [[nodiscard]] std::unique_lock<Lock> lock_exclusive() const { return std::unique_lock<Lock>(lock_); }
    /// The parts, read-only, for a caller holding `held` (a guard from
    /// lock_shared() or lock_exclusive()): runs, the map, the folio table,
    /// the notifier set, the change log. Precondition: `held` owns this
    /// object's lock (asserted).
    /// Lock:      none taken: `held` is the caller's.
    /// Cost:      O(1).
    template <class Guard>
        requires std::same_as<Guard, std::shared_lock<Lock>> || std::same_as<Guard, std::unique_lock<Lock>>
    [[nodiscard]] locked_view locked(const Guard& held) const noexcept;
    /// The shareability runs overlapping `r`, clipped to it, read from inside
    /// one of this object's consumer callbacks (they run under its exclusive
    /// lock, so the callback holds no guard to pass to locked()): how an
    /// abort restores state run by run (kvm_attributes_consumer's does).
    /// Errors:    in this order: invalid_argument (no_page: this thread runs
    ///            no callback of this object: take lock_shared() and use
    ///            locked() instead); invalid_range (r empty, inverted or past
    ///            size()).
    /// Lock:      none taken (the round holds it).
    /// Cost:      O(log runs) to begin, O(1) per run.
    /// Allocates: nothing.
    [[nodiscard]] auto runs_in_callback(page_range r) const -> result<decltype(std::declval<const share_map&>().runs(r))> {
        if (!detail::this_thread_holds(this)) [[unlikely]]
            return error::make(errc::invalid_argument, no_page,
                               "runs_in_callback is for consumer callbacks of this object; this thread runs none "
                               "(hold lock_shared() and read locked(guard).runs instead)");
        if (auto s = check_range(r, size_); !s) return s.error();
        return shares_.runs(r);
    }

    /// Load a saved state into a fresh object (snapshot restore): the map
    /// from `run_count` runs next_run() returns as {pages, shareability},
    /// then the folios build(folio_table::loader&) makes, then the
    /// generation. All or nothing.
    /// Errors:    in this order, the object as before: invalid_argument
    ///            (no_page: not fresh, more than one run, a folio or a pin);
    ///            out_of_memory (map nodes, at page 0); whatever build returns
    ///            (the folios it made go back, the map is one run again).
    /// Lock:      exclusive, held while build runs (it must not call into the
    ///            object).
    /// Cost:      O(runs + what build makes).
    /// Allocates: map nodes from NodeAllocator; what build makes through the
    ///            loader (folios, records).
    template <class NextRun, class Build>
    [[nodiscard]] status load(std::size_t run_count, NextRun&& next_run, Build&& build, std::uint64_t generation);
    /// Start the change log over at generation `g`, nothing logged (an
    /// increment applied, or abandoned at its base).
    /// Lock: exclusive. Cost: O(1).
    void restart_generation(std::uint64_t g) {
        std::unique_lock guard(lock_);
        changes_.reset(g);
    }

private:
    /// The largest page count whose byte size is a valid file offset
    /// (2^63 bytes): punch_hole's bound, as fallocate's EFBIG.
    static constexpr page_index max_file_pages = page_index{1} << (63 - page_shift);

    static folio_order clamp_order(const Allocator& a, folio_order wanted) noexcept {
        folio_order limit = wanted < a.max_order() ? wanted : a.max_order();
        for (folio_order o : standard_orders)
            if (o <= limit) return o;
        return order_4k;
    }

    // The fault path after the lock, and try_fault's (memory/detail/fault_paths.hpp).
    template <class Policy>
    [[gnu::always_inline]] inline result<fault_result> fault_locked(page_index page, shareability wanted, accessor who,
                                                                     Policy policy) const;
    template <class Policy>
    [[gnu::always_inline]] inline std::optional<fault_result> probe(page_index page, shareability wanted, accessor who,
                                                                     Policy policy) const noexcept;
    // Out of line in memory/detail/slow_paths.hpp: the refusals convert and
    // punch_hole build (cold, so the compiler has room to inline the steps
    // every conversion runs), the scans for a poisoned or unmappable page,
    // zeroing, and quarantining what consumers reported leaked.
    [[gnu::cold, gnu::noinline]] static error bad_conversion_argument(page_range r, shareability to,
                                                                       convert_options opts) noexcept;
    [[gnu::cold, gnu::noinline]] static error bad_punch_range(page_range r) noexcept;
    [[gnu::cold, gnu::noinline]] static error poisoned_in(page_index p, page_range r) noexcept;
    [[gnu::cold, gnu::noinline]] error pinned_in(page_index p, page_range r) const noexcept;
    page_index first_poisoned(page_range r) const;
    page_index first_unmappable(page_range r) const;
    void zero_contents(page_range r) noexcept;
    [[gnu::cold, gnu::noinline]] void quarantine_reported(const commit_report& report, page_range r) noexcept;

    /// Poison the leaf folios holding the pages consumers could not drop
    /// while committing (before any merge or truncation, so a leaked 4K
    /// piece stays a 4K piece and is never freed). Past the report's
    /// capacity every folio in the invalidated range is quarantined.
    void quarantine(const commit_report& report, page_range r) noexcept {
        if (!report.empty()) [[unlikely]] quarantine_reported(report, r);
    }
    Allocator& alloc_;
    page_index size_;
    folio_order max_order_;
    mutable Lock lock_;
    share_map shares_;
    folio_table<Allocator, NodeAllocator> folios_;
    std::uint64_t poison_events_ = 0;
    detail::memory_counters counters_;
    change_log changes_;
    unblock_notifier* unblock_ = nullptr;
    notifier_set<Consumer> notifier_;  // last: destroyed first, releasing consumers before folios go
};

/// guest_memory with its policies named (memory/options.hpp): any of
/// options::consumer<C>, options::lock<L>, options::node_allocator<N>, in
/// any order, the rest defaulted. The same type as the positional form
/// (an option given twice, or a non-option, does not compile).
template <folio_allocator Allocator, class... Options>
    requires(detail::is_any_option<Options> && ...)
using guest_memory_with =
    guest_memory<Allocator, typename detail::pick_option<options::consumer, consumer, Options...>::type,
                 typename detail::pick_option<options::lock, sharded_shared_mutex<>, Options...>::type,
                 typename detail::pick_option<options::node_allocator, std::allocator<std::byte>, Options...>::type>;

} // namespace guestmem

#include <guestmem/memory/detail/fault_paths.hpp>
#include <guestmem/memory/detail/ownership_changes.hpp>
#include <guestmem/memory/detail/slow_paths.hpp>
#include <guestmem/memory/locked.hpp>
