/// @file
/// One memory, several VMs (docs/DESIGN.md §Views). A shared storage is one
/// guest_memory (shareability, folios, pins, poison, and the one notifier
/// set every round runs over); each VM instance (an owner) opens views of
/// it, each view with its own bindings and its own access policy:
///
///     auto a = memory_view<guest_memory<memfd_allocator>>::open_storage(frames, cfg);  // VM A, first view
///     auto vm_b = a.value().add_owner();                                               // VM B
///     auto b = a.value().open_view(vm_b.value(), {.mode = confidentiality::non_confidential});
///
/// - A conversion through any view changes the one storage and runs one
///   two-phase round over every view's consumers: a veto in view B aborts
///   the consumers view A had prepared, and the conversion fails.
/// - Lifetime: the storage lives until its last view closes (then its
///   folios go back to the allocator); the control block (tables, counts,
///   the storage's own bytes), one allocation from the embedder's
///   `ControlAllocator`, lives until the last memory_view object referring
///   to it is destroyed. Closing a view releases exactly the bindings made
///   through it (each consumer gets its `release`).
/// - Owners: every view belongs to an owner; helpers (a migration helper,
///   an IOMMU domain) are views opened for the same owner. close_owner
///   closes them all; a later call through any of them gets not_bound.
/// - Stale handles are refused by generation: view, owner and binding
///   handles carry {slot, generation}, and a slot reused after a close has
///   a new generation. Nothing is decided by comparing pointers.
/// - Each view's access_policy decides who may fault or pin what through
///   it; bind replays the current shared runs to the new consumer
///   (view/replay.hpp) unless told not to.
///
/// A single-VM embedder keeps using guest_memory directly: views cost it
/// nothing. Costs through a view: one extra lock (the view table's, the
/// storage's lock policy: shared for faults, queries and memory operations,
/// exclusive for open, close, bind and unbind) and an O(1) generation check;
/// close and unbind are O(bindings). Locking: view table lock first, then
/// the storage's own; consumer callbacks run under both and must not call
/// into any view of the storage. Errors are returned, never thrown.
#pragma once

#include <cinttypes>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <shared_mutex>
#include <utility>

#include <guestmem/core/access_policy.hpp>
#include <guestmem/core/error.hpp>
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/snapshot/changes.hpp>
#include <guestmem/snapshot/restore.hpp>
#include <guestmem/snapshot/save.hpp>
#include <guestmem/view/detail/storage_block.hpp>
#include <guestmem/view/handles.hpp>
#include <guestmem/view/replay.hpp>

namespace guestmem {

/// A view of a shared storage (see the file description): a move-only
/// handle {control block, view id}. `Memory` is the storage's guest_memory
/// type; `ControlAllocator` a standard allocator (rebound to the block; it
/// signals exhaustion by returning nullptr) for the one control block.
/// Every call checks the view's generation first: a closed view (closed
/// through itself, by its owner's close, or moved from) gets not_bound and
/// changes nothing.
template <class Memory, class ControlAllocator = std::allocator<std::byte>>
class memory_view {
    using block = detail::storage_block<Memory, ControlAllocator>;
    using traits = typename block::traits;
    using vb_access = typename block::vb_access;

public:
    using memory_type = Memory;                                      ///< the storage's type
    using allocator_type = typename traits::allocator;               ///< its folio allocator
    using node_allocator_type = typename traits::node_allocator;     ///< its record allocator
    using consumer_type = typename traits::consumer;                 ///< what bindings point to
    using binding_type = view_binding<consumer_type>;                ///< a binding's storage (the embedder's)

    /// An empty view.
    /// Errors:    none itself; every call on it gets not_bound.
    /// Lock:      none.
    /// Cost:      O(1).
    memory_view() noexcept = default;
    memory_view(const memory_view&) = delete;
    memory_view& operator=(const memory_view&) = delete;
    /// Take over `o`'s view; `o` is left empty.
    /// Lock: none. Cost: O(1).
    memory_view(memory_view&& o) noexcept : b_(std::exchange(o.b_, nullptr)), id_(std::exchange(o.id_, {})) {}
    /// Close this view (if open), then take over `o`'s.
    /// Lock: as close(). Cost: as close(), then O(1).
    memory_view& operator=(memory_view&& o) noexcept {
        if (this != &o) {
            reset();
            b_ = std::exchange(o.b_, nullptr);
            id_ = std::exchange(o.id_, {});
        }
        return *this;
    }
    /// Closes the view if still open (see close), then lets go of the
    /// control block (the last memory_view frees it).
    /// Lock:      the view table's, exclusive, while it closes; the storage's
    ///            as unbind and destruction take it.
    /// Cost:      close()'s; O(1) for a closed view.
    /// Allocates: nothing (frees the control block with the last reference).
    ~memory_view() { reset(); }

    /// Build a shared storage of `cfg.pages` pages on `frames` (which must
    /// outlive it) with one owner and its first view, whose policy is
    /// `opts.policy`.
    /// Errors:    in this order, at no_page, nothing made: invalid_argument
    ///            (max_views or max_owners 0, then an invalid policy); then
    ///            what guest_memory::check_config refuses (invalid_argument,
    ///            not_supported); out_of_memory (`ctl` returned nullptr).
    /// Lock:      none (nothing shares the storage yet).
    /// Cost:      O(max_views + max_owners).
    /// Allocates: one control block from `ctl` (tables and the storage);
    ///            the storage itself allocates nothing until used.
    [[nodiscard]] static result<memory_view> open_storage(allocator_type& frames, const guest_memory_config& cfg,
                                                          const storage_options& opts = {},
                                                          const ControlAllocator& ctl = {},
                                                          const node_allocator_type& nodes = {}) {
        if (opts.max_views == 0 || opts.max_owners == 0)
            return error::make(errc::invalid_argument, no_page, "a storage needs room for a view and an owner (%u views, %u owners)",
                               unsigned(opts.max_views), unsigned(opts.max_owners));
        if (!opts.policy.valid()) return bad_policy(opts.policy);
        if (auto s = Memory::check_config(frames, cfg); !s) return s.error();
        block* b = block::make(ctl, opts.max_views, opts.max_owners);
        if (b == nullptr)
            return error::make(errc::out_of_memory, no_page, "the control allocator refused the storage's control block");
        ::new (static_cast<void*>(b->memory_bytes)) Memory(frames, cfg, nodes);
        b->owners[0].open = true;
        b->owners[0].generation = 1;
        return memory_view(b, b->open_slot(0, owner_id{0, 1}, opts.policy));
    }

    // ---- views and owners -------------------------------------------------

    /// This view's id ({0, 0} for an empty view).
    /// Lock: none. Cost: O(1).
    [[nodiscard]] view_id id() const noexcept { return id_; }
    /// True while the view is open.
    /// Lock: the view table's, shared. Cost: O(1).
    [[nodiscard]] bool is_open() const {
        if (b_ == nullptr) return false;
        std::shared_lock g(b_->lock);
        return b_->live(id_);
    }
    /// The owner of this view.
    /// Errors:    not_bound (view closed).
    /// Lock:      the view table's, shared.
    /// Cost:      O(1).
    [[nodiscard]] result<owner_id> owner() const {
        if (b_ == nullptr) return closed();
        std::shared_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        return b_->views[id_.slot].owner;
    }
    /// This view's access policy.
    /// Errors:    not_bound (view closed).
    /// Lock:      the view table's, shared.
    /// Cost:      O(1).
    [[nodiscard]] result<access_policy> policy() const {
        if (b_ == nullptr) return closed();
        std::shared_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        return b_->views[id_.slot].policy;
    }
    /// Open views of the storage (0 once the storage is gone).
    /// Lock: the view table's, shared. Cost: O(1).
    [[nodiscard]] std::uint32_t open_views() const {
        if (b_ == nullptr) return 0;
        std::shared_lock g(b_->lock);
        return b_->open_views;
    }

    /// A new owner (a VM) on this storage, with no view yet.
    /// Errors:    in this order, at no_page: not_bound (this view closed);
    ///            out_of_memory (the owner table is full).
    /// Lock:      the view table's, exclusive.
    /// Cost:      O(max_owners).
    /// Allocates: nothing (the owner table is in the control block).
    [[nodiscard]] result<owner_id> add_owner() {
        if (b_ == nullptr) return closed();
        std::unique_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        for (std::uint32_t i = 0; i < b_->max_owners; ++i) {
            auto& o = b_->owners[i];
            if (o.open) continue;
            o.open = true;
            o.views = 0;
            if (++o.generation == 0) o.generation = 1;  // 0 never names a live owner
            return owner_id{i, o.generation};
        }
        return error::make(errc::out_of_memory, no_page, "the storage's owner table (%u owners) is full",
                           unsigned(b_->max_owners));
    }

    /// Open another view of the same storage for owner `o` (another VM, or
    /// a helper of this view's own owner: open_view(owner().value(), ...)),
    /// with access policy `p`.
    /// Errors:    in this order, at no_page: not_bound (this view closed, or
    ///            `o` closed or stale); invalid_argument (invalid `p`);
    ///            out_of_memory (the view table is full).
    /// Lock:      the view table's, exclusive.
    /// Cost:      O(max_views).
    /// Allocates: nothing (the view table is in the control block).
    [[nodiscard]] result<memory_view> open_view(owner_id o, access_policy p) {
        if (b_ == nullptr) return closed();
        std::unique_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        if (!b_->live(o))
            return error::make(errc::not_bound, no_page, "owner %u.%" PRIu64 " is closed (or from another storage)",
                               unsigned(o.slot), o.generation);
        if (!p.valid()) return bad_policy(p);
        for (std::uint32_t i = 0; i < b_->max_views; ++i)
            if (!b_->views[i].open) {
                b_->refs.fetch_add(1, std::memory_order_relaxed);
                return memory_view(b_, b_->open_slot(i, o, p));
            }
        return error::make(errc::out_of_memory, no_page, "the storage's view table (%u views) is full",
                           unsigned(b_->max_views));
    }

    /// Close this view: each binding made through it is released (unbind),
    /// then the view is gone; the last view to close destroys the storage
    /// (folios freed). The memory_view object stays, empty of rights.
    /// Errors:    not_bound (already closed).
    /// Lock:      the view table's, exclusive; then the storage's exclusive
    ///            lock per unbind, the consumers' release callbacks under both.
    /// Cost:      O(bindings) plus the consumers' callbacks (and, for the
    ///            last view, destroying the storage: its folios freed).
    /// Allocates: nothing.
    status close() {
        if (b_ == nullptr) return closed();
        std::unique_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        b_->close_view(id_.slot);
        return ok();
    }

    /// Close owner `o`: every view it owns closes (as close()), and the
    /// owner id goes stale. May be this view's own owner.
    /// Errors:    not_bound (this view closed, then `o` closed or stale).
    /// Lock:      as close().
    /// Cost:      O(max_views + bindings) plus the consumers' callbacks.
    /// Allocates: nothing.
    status close_owner(owner_id o) {
        if (b_ == nullptr) return closed();
        std::unique_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        if (!b_->live(o))
            return error::make(errc::not_bound, no_page, "owner %u.%" PRIu64 " is already closed (or from another storage)",
                               unsigned(o.slot), o.generation);
        for (std::uint32_t i = 0; i < b_->max_views; ++i)
            if (b_->views[i].open && b_->views[i].owner == o) b_->close_view(i);
        b_->owners[o.slot].open = false;
        return ok();
    }

    // ---- the storage's operations, through this view ------------------------

    /// guest_memory::allocate.
    /// Errors:    not_bound (this view closed), then allocate's.
    /// Lock:      the view table's, shared; then allocate's (exclusive).
    /// Cost:      O(1) more than allocate.
    /// Allocates: as allocate.
    status allocate(page_range r) {
        return shared_call([&](Memory& m, const auto&) { return m.allocate(r); });
    }
    /// guest_memory::punch_hole (every view's consumers are told).
    /// Errors:    not_bound (this view closed), then punch_hole's.
    /// Lock:      the view table's, shared; then punch_hole's (exclusive).
    /// Cost:      O(1) more than punch_hole.
    status punch_hole(page_range r) {
        return shared_call([&](Memory& m, const auto&) { return m.punch_hole(r); });
    }
    /// guest_memory::release_quarantine.
    /// Errors:    not_bound (this view closed), then release_quarantine's.
    /// Lock:      the view table's, shared; then release_quarantine's (exclusive).
    /// Cost:      O(1) more than release_quarantine.
    status release_quarantine(page_range r) {
        return shared_call([&](Memory& m, const auto&) { return m.release_quarantine(r); });
    }
    /// guest_memory::convert: one round over every view's consumers; a veto
    /// in any view fails it and aborts the others'.
    /// Errors:    not_bound (this view closed), then convert's.
    /// Lock:      the view table's, shared; then convert's (exclusive), every
    ///            view's consumer callbacks under both.
    /// Cost:      O(1) more than convert.
    /// Allocates: as convert.
    status convert(page_range r, shareability to, convert_options opts = {}) {
        return shared_call([&](Memory& m, const auto&) { return m.convert(r, to, opts); });
    }
    /// guest_memory::fault under this view's access policy.
    /// Errors:    not_bound (this view closed), then fault's.
    /// Lock:      the view table's, shared; then fault's (shared).
    /// Cost:      O(1) more than fault.
    [[nodiscard]] result<fault_result> fault(page_index page, shareability wanted, accessor who) const {
        if (b_ == nullptr) return closed();
        std::shared_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        return b_->memory().fault(page, wanted, who, b_->views[id_.slot].policy);
    }
    /// guest_memory::pin under this view's access policy.
    /// Errors:    not_bound (this view closed), then pin's.
    /// Lock:      the view table's, shared; then pin's (exclusive).
    /// Cost:      O(1) more than pin.
    /// Allocates: as pin.
    status pin(page_range r, accessor who) {
        return shared_call([&](Memory& m, const auto& v) { return m.pin(r, who, v.policy); });
    }
    /// guest_memory::unpin.
    /// Errors:    not_bound (this view closed), then unpin's.
    /// Lock:      the view table's, shared; then unpin's (exclusive).
    /// Cost:      O(1) more than unpin.
    /// Allocates: as unpin.
    status unpin(page_range r) {
        return shared_call([&](Memory& m, const auto&) { return m.unpin(r); });
    }
    /// guest_memory::memory_failure (every view's consumers are told).
    /// Errors:    not_bound (this view closed), then memory_failure's.
    /// Lock:      the view table's, shared; then memory_failure's (exclusive).
    /// Cost:      O(1) more than memory_failure.
    status memory_failure(page_index page) {
        return shared_call([&](Memory& m, const auto&) { return m.memory_failure(page); });
    }
    /// guest_memory::shareability_at.
    /// Errors:    not_bound (this view closed), then shareability_at's.
    /// Lock:      the view table's, shared; then shareability_at's (shared).
    /// Cost:      O(1) more than shareability_at.
    [[nodiscard]] result<shareability> shareability_at(page_index page) const {
        if (b_ == nullptr) return closed();
        std::shared_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        return b_->memory().shareability_at(page);
    }
    /// guest_memory::stats of the storage (bindings of every view).
    /// Errors:    not_bound (this view closed).
    /// Lock:      the view table's, shared; then stats' (shared).
    /// Cost:      O(1) more than stats.
    [[nodiscard]] result<guest_memory_stats> stats() const {
        if (b_ == nullptr) return closed();
        std::shared_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        return b_->memory().stats();
    }
    /// The storage itself, read-only, for tests and dumps: nullptr when this
    /// view is closed. Nothing keeps the storage alive once the call
    /// returns (the last close destroys it): use it while no other thread
    /// closes the last view, and read its parts through its locked tier
    /// (lock_shared(), locked()). To save or restore the storage, use
    /// save()/restore() below, which hold the view table's lock.
    /// Lock:      the view table's, shared, for the liveness check only; the
    ///            storage's calls then take its own lock as they say.
    /// Cost:      O(1).
    [[nodiscard]] const Memory* storage() const {
        if (b_ == nullptr) return nullptr;
        std::shared_lock g(b_->lock);
        return b_->live(id_) ? &b_->memory() : nullptr;
    }

    // ---- snapshots and migration (docs/SNAPSHOT.md §Views) --------------------
    // Each call holds the view table's lock for its whole length, so a
    // concurrent last close either waits for it or has already made the
    // view stale (not_bound): the storage is never destroyed under a save.
    // Buffers are plain bytes (the C ABI wraps these calls as they are).

    /// guest_memory::generation of the storage.
    /// Errors:    not_bound (this view closed).
    /// Lock:      the view table's, shared; then generation's (shared).
    /// Cost:      O(1).
    [[nodiscard]] result<std::uint64_t> generation() const {
        if (b_ == nullptr) return closed();
        std::shared_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        return b_->memory().generation();
    }
    /// snapshot::saved_size: the bytes save() needs now (it may change
    /// before the save while other views convert).
    /// Errors:    not_bound (this view closed), then saved_size's (busy).
    /// Lock:      the view table's, shared; then the storage's, shared.
    /// Cost:      O(runs + leaves).
    /// Allocates: nothing.
    [[nodiscard]] result<std::size_t> saved_size() const {
        return shared_read([&](const Memory& m) { return snapshot::saved_size(m); });
    }
    /// snapshot::save of the storage into `out`: a full snapshot; returns
    /// the bytes used.
    /// Errors:    in this order: not_bound (view closed, also when a
    ///            concurrent close won); busy (a page pinned through any
    ///            view); invalid_argument (`out` too small: see saved_size()).
    /// Lock:      the view table's, shared, held throughout; then the
    ///            storage's, shared.
    /// Cost:      O(runs + leaves).
    /// Allocates: nothing.
    [[nodiscard]] result<std::size_t> save(std::span<std::uint8_t> out) const {
        return shared_read([&](const Memory& m) { return snapshot::save(m, out); });
    }
    /// snapshot::increment_size: the bytes save_increment(since, ...) needs
    /// now.
    /// Errors:    not_bound (this view closed), then those of
    ///            snapshot::for_each_change.
    /// Lock:      the view table's, shared; then the storage's, shared.
    /// Cost:      O(k log k + runs in the changed ranges).
    /// Allocates: nothing.
    [[nodiscard]] result<std::size_t> increment_size(std::uint64_t since) const {
        return shared_read([&](const Memory& m) { return snapshot::increment_size(m, since); });
    }
    /// snapshot::save_increment of what changed since generation `since`
    /// into `out`; returns the bytes used.
    /// Errors:    in this order: not_bound (this view closed);
    ///            invalid_argument (`since` in the future); not_supported
    ///            (`since` older than the change log, or a poison since: save
    ///            a full snapshot); invalid_argument (`out` too small: see
    ///            increment_size()).
    /// Lock:      the view table's, shared, held throughout; then the
    ///            storage's, shared.
    /// Cost:      O(k log k + runs in the changed ranges).
    /// Allocates: nothing.
    [[nodiscard]] result<std::size_t> save_increment(std::uint64_t since, std::span<std::uint8_t> out) const {
        return shared_read([&](const Memory& m) { return snapshot::save_increment(m, since, out); });
    }
    /// snapshot::restore of the full snapshot `bytes` into the storage,
    /// which must be fresh (no folio, one run, of the snapshot's shape).
    /// All or nothing; bindings of any view stay bound and are not told.
    /// Errors:    not_bound (this view closed); then every error of
    ///            snapshot::restore (the storage untouched).
    /// Lock:      the view table's, exclusive (no view calls into the
    ///            storage meanwhile); then restore's (the storage's, exclusive).
    /// Cost:      O(bytes + runs + leaves).
    /// Allocates: as snapshot::restore.
    status restore(std::span<const std::uint8_t> bytes) {
        return exclusive_call([&](Memory& m) { return snapshot::restore(m, bytes); });
    }
    /// snapshot::apply_increment of `bytes` to the storage, which must be
    /// at the increment's base generation. Each of its conversions is one
    /// round over the consumers of every view: a veto in any view stops it
    /// with the storage back at its base generation (applying it again is
    /// safe).
    /// Errors:    not_bound (this view closed); then every error of
    ///            snapshot::apply_increment.
    /// Lock:      the view table's, exclusive (no other view converts
    ///            meanwhile); then each conversion's (the storage's,
    ///            exclusive), every view's consumer callbacks under both.
    /// Cost:      O(bytes + conversions), plus each conversion's cost.
    /// Allocates: as snapshot::apply_increment.
    status apply_increment(std::span<const std::uint8_t> bytes) {
        return exclusive_call([&](Memory& m) { return snapshot::apply_increment(m, bytes); });
    }

    // ---- bindings ------------------------------------------------------------

    /// Bind `c` over `pages` through this view (guest_memory::bind), then,
    /// with replay_mode::populated, replay each shared run of `pages` to
    /// it (view/replay.hpp): a veto there leaves it unbound.
    /// Errors:    in this order: not_bound (view closed); invalid_argument
    ///            (bad `mode`); guest_memory::bind's; vetoed (from populate).
    /// Lock:      the view table's, exclusive (no conversion runs between the
    ///            bind and its replay); then the storage's, the consumer's
    ///            replay callbacks under both.
    /// Cost:      O(bindings + log runs + shared runs).
    /// Allocates: nothing (`slot` is the record; the view's list is intrusive).
    [[nodiscard]] result<view_binding_handle> bind(binding_type& slot, consumer_type& c, page_range pages,
                                                   std::uint64_t target_base, binding_class cls = binding_class::ordinary,
                                                   replay_mode mode = replay_mode::populated) {
        if (b_ == nullptr) return closed();
        std::unique_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        if (mode != replay_mode::none && mode != replay_mode::populated)
            return error::make(errc::invalid_argument, pages.begin, "replay mode %u is not none or populated",
                               unsigned(mode));
        binding<consumer_type>& inner = vb_access::inner(slot);
        auto h = mode == replay_mode::populated ? bind_replaying(b_->memory(), inner, c, pages, target_base, cls)
                                                : b_->memory().bind(inner, c, pages, target_base, cls);
        if (!h) return h.error();
        vb_access::set(slot, id_, h.value());
        b_->views[id_.slot].bindings.push_back(slot);
        return view_binding_handle{h.value(), id_};
    }

    /// Unbind a binding made through this view (its consumer gets its
    /// release).
    /// Errors:    not_bound (this view closed; the handle from another view,
    ///            a closed one, or another storage; or already unbound).
    /// Lock:      the view table's, exclusive; then guest_memory::unbind's.
    /// Cost:      O(bindings).
    /// Allocates: nothing.
    status unbind(view_binding_handle h) {
        if (b_ == nullptr) return closed();
        std::unique_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        if (h.view != id_)
            return error::make(errc::not_bound, no_page,
                               "binding %" PRIu64 " was made through view %u.%" PRIu64 ", not view %u.%" PRIu64, h.binding.id, unsigned(h.view.slot), h.view.generation, unsigned(id_.slot),
                               id_.generation);
        auto& list = b_->views[id_.slot].bindings;
        for (auto it = list.begin(); it != list.end(); ++it) {
            if (vb_access::handle(*it) != h.binding) continue;
            binding_type& vb = *it;
            list.erase(it);
            vb_access::set(vb, {}, {});
            return b_->memory().unbind(h.binding);
        }
        return error::make(errc::not_bound, no_page, "binding %" PRIu64 " is not bound through view %u.%" PRIu64, h.binding.id,
                           unsigned(id_.slot), id_.generation);
    }

    /// The sequence of `b` (odd while an invalidation over it is in
    /// flight), read before fault.
    /// Lock: none (one atomic load). Cost: O(1).
    [[nodiscard]] std::uint64_t read_begin(const binding_type& b) const noexcept { return b.get().sequence(); }
    /// True if an invalidation over `b` ran since read_begin returned `seq`
    /// (or was then in flight): fault again.
    /// Lock: none (one atomic load). Cost: O(1).
    [[nodiscard]] bool read_retry(const binding_type& b, std::uint64_t seq) const noexcept {
        return (seq & 1) != 0 || b.get().sequence() != seq;
    }

private:
    memory_view(block* b, view_id id) noexcept : b_(b), id_(id) {}

    template <class F>
    status shared_call(F&& f) {
        if (b_ == nullptr) return closed();
        std::shared_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        return f(b_->memory(), b_->views[id_.slot]);
    }

    template <class F>
    auto shared_read(F&& f) const -> decltype(f(std::declval<const Memory&>())) {
        if (b_ == nullptr) return closed();
        std::shared_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        return f(std::as_const(b_->memory()));
    }

    template <class F>
    status exclusive_call(F&& f) {
        if (b_ == nullptr) return closed();
        std::unique_lock g(b_->lock);
        if (!b_->live(id_)) return closed();
        return f(b_->memory());
    }

    void reset() noexcept {
        if (b_ == nullptr) return;
        {
            std::unique_lock g(b_->lock);
            if (b_->live(id_)) b_->close_view(id_.slot);
        }
        if (b_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) block::unmake(b_);
        b_ = nullptr;
        id_ = {};
    }

    [[gnu::cold]] error closed() const noexcept {
        return error::make(errc::not_bound, no_page,
                           "view %u.%" PRIu64 " is closed (closed, its owner closed, moved from, or never opened)",
                           unsigned(id_.slot), id_.generation);
    }
    [[gnu::cold]] static error bad_policy(access_policy p) noexcept {
        return error::make(errc::invalid_argument, no_page, "access policy mode %u is not confidential or non_confidential",
                           unsigned(p.mode));
    }

    block* b_ = nullptr;
    view_id id_{};
};

} // namespace guestmem
