/// @file
/// One binding of a consumer to a range of a guest memory object:
/// (consumer, object pages, base in the consumer's own space), the way a
/// KVM memslot binds a guest_memfd pgoff range to GFNs.
///
/// The embedder owns the storage (typically a member of the consumer; a
/// consumer may own several). The binding carries the node of its set's
/// range index (notifier/detail/binding_index.hpp) and a Boost.Intrusive
/// auto-unlink set hook for the lookup by id, so binding and unbinding
/// allocate nothing, and a binding destroyed while bound unlinks itself
/// (O(log B) for B bindings in its set). It also carries the
/// per-binding sequence number that fault paths read concurrently (like
/// Linux's mmu_interval_notifier): odd while an invalidation over the
/// binding is in flight.
#pragma once

#include <boost/intrusive/list_hook.hpp>
#include <boost/intrusive/set_hook.hpp>

#include <atomic>
#include <cstdint>
#include <string_view>

#include <guestmem/core/page_range.hpp>
#include <guestmem/notifier/consumer.hpp>
#include <guestmem/notifier/detail/binding_index.hpp>

namespace guestmem {

/// When a binding prepares within a conversion round.
///
/// Most consumers' prepare is cheap to undo (abort drops what it did); a few
/// do a step that is not: KVM's own private/shared attributes, a firmware
/// call, a message to another process. Those bind as `irrevocable`: in
/// every round they prepare after all ordinary bindings have prepared, so
/// any ordinary veto ends the round before the irrevocable step runs, and
/// an irrevocable consumer's own refusal still aborts every ordinary one.
/// Among themselves irrevocable bindings keep binding order (with two or
/// more, a later one's veto makes the earlier ones abort: keep to one
/// where the step truly cannot be undone). Commits run ordinary first,
/// then irrevocable; aborts run in reverse of prepare order.
enum class binding_class : std::uint8_t {
    ordinary,     ///< prepares in binding (object page) order, first
    irrevocable,  ///< prepares after every ordinary binding of the round
};

/// The enumerator's name ("ordinary", "irrevocable"), or "invalid binding class".
[[nodiscard]] constexpr std::string_view to_string(binding_class c) noexcept {
    switch (c) {
    case binding_class::ordinary: return "ordinary";
    case binding_class::irrevocable: return "irrevocable";
    }
    return "invalid binding class";
}

/// What bind() hands back: the binding's generation-unique id. Never a
/// pointer; unbind() looks the id up, so a stale or foreign handle is
/// refused instead of dereferenced.
struct binding_handle {
    std::uint64_t id = 0;  ///< the binding's id (binding::id()); 0 is never a live binding
    /// Same id.
    friend constexpr bool operator==(const binding_handle&, const binding_handle&) noexcept = default;
};

// Declared here for the friend below; documented in notifier/notifier_set.hpp
// (hidden from Doxygen so the reference has one declaration to document).
/// @cond
template <invalidation_consumer C>
class notifier_set;
/// @endcond

namespace detail {
/// The hook of the set's id lookup (a Boost.Intrusive red-black tree).
using binding_id_hook = boost::intrusive::set_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
/// The hook of the set's round list: the bindings one round acts on, found
/// once by the index and then walked by each phase.
using binding_round_hook = boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
} // namespace detail

/// Storage for one binding. Owned by the embedder, linked into a
/// notifier_set by bind(). Destroying a bound binding unlinks it (no
/// notification is sent: its consumer is going away too). Like every
/// mutation of the set, that must happen under the owner's exclusive lock.
///
/// Not copyable or movable (the set links to its address). Locking: the
/// queries below read fields the set writes under the owner's exclusive
/// lock, so call them under the owner's lock (shared is enough) or while no
/// bind, unbind or invalidation runs; sequence() alone may be read at any
/// time, with no lock. Every member is O(1) but the destructor of a bound
/// binding (O(log B)).
template <invalidation_consumer C = consumer>
class binding : private detail::binding_node {
public:
    binding() = default;
    binding(const binding&) = delete;
    binding& operator=(const binding&) = delete;
    binding(binding&&) = delete;
    binding& operator=(binding&&) = delete;
    /// A still-bound binding leaves its set's index (O(log B)); the id
    /// hook unlinks itself.
    ~binding() {
        if (index_ != nullptr) index_->erase(*this);
    }

    /// True while the binding is linked into a set (between bind() and
    /// unbind() or the set's destruction).
    [[nodiscard]] bool is_bound() const noexcept { return linked(); }
    /// Object pages covered by this binding (meaningful while bound).
    [[nodiscard]] page_range pages() const noexcept { return pages_; }
    /// Consumer-space page number that pages().begin translates to.
    [[nodiscard]] std::uint64_t target_base() const noexcept { return target_base_; }
    /// The whole binding in the consumer's page numbers. Never wraps:
    /// bind() refuses a target base whose target would end past 2^64 - 1.
    [[nodiscard]] page_range target() const noexcept { return {target_base_, target_base_ + pages_.size()}; }
    /// When the binding prepares within a round (meaningful while bound).
    [[nodiscard]] binding_class prepare_class() const noexcept { return class_; }
    /// Generation-unique id while bound; 0 when not bound.
    [[nodiscard]] std::uint64_t id() const noexcept { return is_bound() ? id_ : 0; }
    /// The bound consumer, or nullptr when not bound.
    [[nodiscard]] C* owner() const noexcept { return is_bound() ? owner_ : nullptr; }
    /// The current sequence number; odd while an invalidation over this
    /// binding is in flight. Safe to call concurrently with invalidations.
    [[nodiscard]] std::uint64_t sequence() const noexcept { return sequence_.load(std::memory_order_acquire); }

    /// Object page -> consumer page, for `p` in [pages().begin, pages().end]
    /// (the end is allowed: it translates to target().end). Unchecked — the
    /// invalidation path calls it on every conversion — and it cannot wrap
    /// for such a `p`, since target() fits; outside that span the caller
    /// gets a meaningless (possibly wrapped) number.
    [[nodiscard]] std::uint64_t translate(page_index p) const noexcept { return target_base_ + (p - pages_.begin); }

private:
    friend class notifier_set<C>;

    /// Begin an invalidation over this binding: the sequence becomes odd
    /// (or, when one is already in flight, changes and stays odd).
    void begin_invalidation() noexcept {
        if (depth_++ == 0)
            sequence_.fetch_add(1, std::memory_order_acq_rel);
        else
            sequence_.fetch_add(2, std::memory_order_acq_rel);
    }
    /// End one; the outermost end makes the sequence even again.
    /// Writers are serialised by the owner's exclusive lock, so the end
    /// needs no read-modify-write: a release store of the next value
    /// publishes everything the invalidation did (begin keeps its full
    /// barrier: nothing the invalidation does may be seen before it).
    void end_invalidation() noexcept {
        if (depth_ > 0 && --depth_ == 0)
            sequence_.store(sequence_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }

    // pages_ and id_ (the index key) live in detail::binding_node.
    detail::binding_id_hook id_hook_;
    detail::binding_round_hook round_hook_;  // linked only while a round over it runs
    std::uint64_t target_base_ = 0;
    C* owner_ = nullptr;
    std::atomic<std::uint64_t> sequence_{0};
    std::uint32_t depth_ = 0;   // nested invalidations in flight; owner's exclusive lock only
    bool prepared_ = false;     // prepared in the set's active round; owner's exclusive lock only
    binding_class class_ = binding_class::ordinary;
};

} // namespace guestmem
