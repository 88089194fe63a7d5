/// @file
/// The values views are named by (docs/DESIGN.md §Views): view and owner
/// ids as {slot, generation}, the handle a view's bind returns, the options
/// a storage is opened with, and view_binding, the embedder's storage for
/// one binding made through a view. No check anywhere rests on a pointer:
/// a slot reused after a close carries a new generation, so a stale id or
/// handle never names the new occupant.
///
/// Plain values and O(1) members; no lock of their own (view_binding's
/// fields are written by memory_view under its table lock), no allocation.
#pragma once

#include <boost/intrusive/list.hpp>

#include <cstdint>

#include <guestmem/core/access_policy.hpp>
#include <guestmem/notifier/binding.hpp>
#include <guestmem/notifier/consumer.hpp>

namespace guestmem {

/// A view of a shared storage: its slot in the storage's view table and
/// the generation the slot had when the view was opened. Generation 0 is
/// never a live view. Generations are 64-bit: a slot would have to be
/// reopened 2^64 times (centuries at one open per nanosecond) before an
/// old id could match again, so a stale id never names a later view.
struct view_id {
    std::uint32_t slot = 0;        ///< index in the storage's view table
    std::uint64_t generation = 0;  ///< bumped on every open of the slot (64-bit: never wraps in practice)
    /// Same slot and generation.
    friend constexpr bool operator==(const view_id&, const view_id&) noexcept = default;
};

/// An owner (a VM) of views: slot in the storage's owner table and
/// generation. Closing the owner closes every view it owns; generation 0
/// is never a live owner. 64-bit generation, as view_id's.
struct owner_id {
    std::uint32_t slot = 0;        ///< index in the storage's owner table
    std::uint64_t generation = 0;  ///< bumped on every opening of the slot (64-bit, as view_id's)
    /// Same slot and generation.
    friend constexpr bool operator==(const owner_id&, const owner_id&) noexcept = default;
};

/// What a view's bind returns: the binding's process-unique id and the view
/// it was made through. A view refuses (not_bound) a handle whose view is
/// not itself, exactly (slot and generation).
struct view_binding_handle {
    binding_handle binding;  ///< the binding in the storage's notifier set
    view_id view;            ///< the view that made it
    /// Same binding and view.
    friend constexpr bool operator==(const view_binding_handle&, const view_binding_handle&) noexcept = default;
};

/// Whether a view's bind replays the current state to the new consumer.
enum class replay_mode : std::uint8_t {
    none,       ///< bind only (the consumer learns of later changes only)
    populated,  ///< bind, then populate each shared run (view/replay.hpp); the default
};

/// How memory_view::open_storage builds a shared storage.
struct storage_options {
    std::uint32_t max_views = 8;   ///< view table size, fixed (allocated with the control block)
    std::uint32_t max_owners = 4;  ///< owner table size, fixed
    access_policy policy{};        ///< the first view's access policy
};

namespace detail {
using view_hook = boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
template <class M>
struct view_binding_access;
} // namespace detail

/// Storage for one binding made through a view: the binding itself (linked
/// into the storage's notifier set) and a hook linking it into its view's
/// list, so closing the view unbinds exactly its bindings. Owned by the
/// embedder, typically a member of the consumer. Destroying it while bound
/// unlinks it from both (no notification), under the same rule as
/// binding: no other call into the storage meanwhile. Not copyable or
/// movable; every member is O(1).
template <invalidation_consumer C = consumer>
class view_binding {
public:
    view_binding() = default;
    view_binding(const view_binding&) = delete;
    view_binding& operator=(const view_binding&) = delete;

    /// True while bound (between a view's bind and its unbind or close).
    [[nodiscard]] bool is_bound() const noexcept { return inner_.is_bound(); }
    /// The binding in the storage's notifier set (pages, target, sequence).
    [[nodiscard]] const binding<C>& get() const noexcept { return inner_; }
    /// The view it was bound through (meaningful while bound).
    [[nodiscard]] view_id view() const noexcept { return view_; }
    /// The handle its bind returned (meaningful while bound).
    [[nodiscard]] view_binding_handle handle() const noexcept { return {handle_, view_}; }

private:
    template <class M>
    friend struct detail::view_binding_access;

    binding<C> inner_;
    detail::view_hook view_hook_;
    view_id view_{};
    binding_handle handle_{};
};

namespace detail {
/// memory_view's access to a view_binding's private parts.
template <class C>
struct view_binding_access<view_binding<C>> {
    static binding<C>& inner(view_binding<C>& b) noexcept { return b.inner_; }
    static view_hook& hook(view_binding<C>& b) noexcept { return b.view_hook_; }
    static void set(view_binding<C>& b, view_id v, binding_handle h) noexcept {
        b.view_ = v;
        b.handle_ = h;
    }
    static binding_handle handle(const view_binding<C>& b) noexcept { return b.handle_; }
    /// A view's bindings, in bind order (intrusive: linking allocates nothing).
    using list = boost::intrusive::list<
        view_binding<C>, boost::intrusive::member_hook<view_binding<C>, view_hook, &view_binding<C>::view_hook_>,
        boost::intrusive::constant_time_size<false>>;
};
} // namespace detail

} // namespace guestmem
