/// @file
/// The consumer interface: what a stage-2 table, an IOMMU domain or a host
/// view implements to be told, in two phases, that part of the object is
/// about to change hands (docs/DESIGN.md §Two-phase invalidation).
/// `prepare` may do fallible work and veto; `commit` cannot fail and reports
/// trouble (a page it could not drop) instead; `abort` undoes a prepare.
/// Truncation, release and memory failure are not vetoable.
///
/// Every callback runs under the owning object's exclusive lock: it must not
/// call back into the object, nor bind or unbind on the set calling it.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/core/types.hpp>

namespace guestmem {

/// Why an invalidation happens.
enum class invalidation_cause : std::uint8_t {
    to_shared,       ///< convert guest_only -> shared (vetoable)
    to_guest_only,   ///< convert shared -> guest_only (vetoable)
    truncate,        ///< punch_hole (not vetoable)
    release,         ///< the object or the binding goes away (not vetoable)
    memory_failure,  ///< a page was poisoned (not vetoable)
    /// populate (and its abort): a binding made on live memory is told
    /// each shared run of its range (view/replay.hpp); never a round's cause
    replay,
};

/// True for the conversion causes (to_shared, to_guest_only), the only ones
/// a consumer may veto.
[[nodiscard]] constexpr bool is_vetoable(invalidation_cause c) noexcept {
    return c == invalidation_cause::to_shared || c == invalidation_cause::to_guest_only;
}

/// The enumerator's name ("to_shared", ...), or "invalid cause".
[[nodiscard]] constexpr std::string_view to_string(invalidation_cause c) noexcept {
    switch (c) {
    case invalidation_cause::to_shared: return "to_shared";
    case invalidation_cause::to_guest_only: return "to_guest_only";
    case invalidation_cause::truncate: return "truncate";
    case invalidation_cause::release: return "release";
    case invalidation_cause::memory_failure: return "memory_failure";
    case invalidation_cause::replay: return "replay";
    }
    return "invalid cause";
}

/// One consumer's view of one invalidation, clipped to one of its bindings.
/// Built by the notifier set for each callback; valid during the call only.
struct invalidation {
    page_range pages;               ///< object page indices, clipped to the binding
    page_range target;              ///< the same pages in the consumer's own page numbers (GFN, IOVA/4K, VA/4K)
    invalidation_cause cause = invalidation_cause::release;  ///< why (a conversion, truncate, release, memory_failure)
    /// True in the prepare, commit and abort of a conversion round (prepare
    /// may then veto); false for truncate, release and memory_failure, whose
    /// prepare result is ignored.
    bool vetoable = false;
    folio_order order = order_4k;   ///< memory_failure: order of the failed folio
    /// memory_failure: whether the failed folio's pages were shared or
    /// guest_only when it failed (a leaf folio is uniform in shareability).
    shareability share = shareability::guest_only;
    std::uint64_t sequence = 0;     ///< the binding's sequence number while this is in flight (odd)
    std::uint64_t binding_id = 0;   ///< generation-unique id of the binding
};

/// What consumers report back while committing: pages they could not drop
/// (leaked) or found poisoned. The owner quarantines them. Fixed capacity:
/// reporting never allocates; past the capacity, `overflowed()` is set and
/// the owner quarantines the whole invalidated range conservatively.
///
/// Locking: none of its own; consumers fill it in commit, under the
/// object's exclusive lock. Every member is O(1) and cannot fail.
class commit_report {
public:
    static constexpr std::size_t capacity = 32;  ///< entries kept; past that, overflowed()
    /// What a consumer reports about a page.
    enum class kind : std::uint8_t {
        leaked,   ///< it could not drop its mapping of the page
        poisoned  ///< it found the page poisoned
    };
    /// One reported page.
    struct entry {
        page_index page;           ///< object page index (not the consumer's number)
        kind what;                 ///< leaked or poisoned
        std::uint64_t binding_id;  ///< the reporting binding (invalidation::binding_id), or 0
    };

    /// Report that the consumer could not drop `object_page`; the owner
    /// quarantines the leaf holding it.
    void leaked(page_index object_page, std::uint64_t binding_id = 0) noexcept { add({object_page, kind::leaked, binding_id}); }
    /// Report `object_page` poisoned; the owner quarantines it likewise.
    void poisoned(page_index object_page, std::uint64_t binding_id = 0) noexcept {
        add({object_page, kind::poisoned, binding_id});
    }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }  ///< entries kept (at most capacity)
    /// No entry kept and no overflow.
    [[nodiscard]] bool empty() const noexcept { return size_ == 0 && !overflowed_; }
    /// More than capacity pages were reported; the rest were not kept.
    [[nodiscard]] bool overflowed() const noexcept { return overflowed_; }
    [[nodiscard]] const entry* begin() const noexcept { return entries_.data(); }        ///< first entry kept
    [[nodiscard]] const entry* end() const noexcept { return entries_.data() + size_; }  ///< past the last
    /// Forget every entry and the overflow.
    void clear() noexcept {
        size_ = 0;
        overflowed_ = false;
    }

private:
    void add(const entry& e) noexcept {
        if (size_ < capacity)
            entries_[size_++] = e;
        else
            overflowed_ = true;
    }
    std::array<entry, capacity> entries_;  // not zeroed: only [0, size_) is ever read
    std::size_t size_ = 0;
    bool overflowed_ = false;
};

/// The consumer policy as a concept. A closed set of consumer types can be
/// used directly (no virtual dispatch); `consumer` below is the virtual
/// base for heterogeneous sets.
///
/// - `prepare(inv)`: check and do fallible work (allocate, split own huge
///   mappings). Return an error with errc::vetoed (and the page, and why)
///   to refuse. For non-vetoable causes the result is ignored (logged).
/// - `commit(inv, report)`: drop the mappings. Cannot fail; report pages
///   that could not be dropped.
/// - `abort(inv)`: undo what prepare did. Cannot fail.
/// - `memory_failure(inv)`: a folio of order inv.order was poisoned;
///   inv.pages is the part of it this binding covers (the whole folio is
///   lost, not only the failed page), inv.share whether those pages were
///   shared or guest_only. Unmap them. Single phase, cannot fail; sent once
///   per binding overlapping the folio.
///
/// All four run under the object's exclusive lock and must not call back
/// into it, nor bind or unbind; commit, abort and memory_failure are
/// noexcept and cannot fail.
template <class C>
concept invalidation_consumer = requires(C& c, const invalidation& inv, commit_report& report) {
    { c.prepare(inv) } -> std::same_as<status>;
    { c.commit(inv, report) } noexcept;
    { c.abort(inv) } noexcept;
    { c.memory_failure(inv) } noexcept;
};

/// Virtual base class for consumers of different types bound to one object.
/// The contract is the invalidation_consumer concept's: prepare may veto;
/// commit, abort and memory_failure cannot fail; none may bind, unbind or
/// call back into the object, whose exclusive lock they run under.
class consumer {
public:
    consumer() = default;
    consumer(const consumer&) = delete;
    consumer& operator=(const consumer&) = delete;
    virtual ~consumer() = default;

    /// Check and do the fallible work for inv (allocate, split own huge
    /// mappings); keep the mappings. Return an error with errc::vetoed (the
    /// page and why) to refuse; only a vetoable inv's refusal is obeyed.
    virtual status prepare(const invalidation& inv) = 0;
    /// Drop the mappings of inv.pages. Cannot fail: report pages it could
    /// not drop into `report` (commit_report::leaked).
    virtual void commit(const invalidation& inv, commit_report& report) noexcept = 0;
    /// Undo what a successful prepare of inv did (another consumer vetoed,
    /// or the owner gave up). Cannot fail.
    virtual void abort(const invalidation& inv) noexcept = 0;
    /// The folio of order inv.order holding inv.pages was poisoned (its
    /// pages were inv.share): unmap them. Single phase, once; cannot fail.
    virtual void memory_failure(const invalidation& inv) noexcept = 0;
    /// Replay on bind (view/replay.hpp): inv.pages is one shared run of a
    /// binding made on live memory (cause replay); map it if wanted. May
    /// veto (the bind is then rolled back: `abort` with cause replay for
    /// each run populated before, newest first: reverse page order, as a
    /// round's aborts). Default: ok, nothing done.
    virtual status populate(const invalidation& inv) {
        (void)inv;
        return ok();
    }
    /// A short name for dumps and veto messages.
    [[nodiscard]] virtual std::string_view name() const noexcept { return "consumer"; }
};

static_assert(invalidation_consumer<consumer>);

} // namespace guestmem
