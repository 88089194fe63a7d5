/// @file
/// Replay on bind (docs/DESIGN.md §Views): a consumer bound to memory that
/// is already live (a VFIO device hot-plugged, a vhost-user backend that
/// connects late) is told the current state of its range: one `populate`
/// call per shared run of the binding, clipped to it, in page order, with
/// cause invalidation_cause::replay. Populate may veto; the bind is then
/// rolled back: every run populated before gets an `abort` (cause replay,
/// newest first, i.e. in reverse page order, as a two-phase round aborts
/// its prepared consumers) and the binding is unlinked without a release, so the
/// consumer ends as if it had never been bound. Guest_only runs are not
/// replayed (they are not the consumer's to map; a trusted device learns
/// them from its own VM).
///
/// A consumer type opts in by having `status populate(const invalidation&)`
/// (detected with a `requires`); the virtual `consumer` base has one that
/// does nothing and returns ok, so every virtual consumer is replayed to
/// and an old one needs no change. A closed consumer type without populate
/// is bound without a replay.
///
/// Costs: O(log runs + shared runs in the range) populate calls; a veto
/// after k runs costs k aborts, each found backwards by a binary search
/// of O(log pages · log runs).
/// Locking: bind_replaying runs the bind and the replay as one step; the
/// caller must make sure no other thread calls into the object meanwhile
/// (memory_view does it under its view table's exclusive lock; a single-VM
/// embedder that calls guest_memory from several threads serialises the
/// call itself). The replay reads the runs under the object's shared lock
/// (its locked tier), so its callbacks, like every consumer callback, run
/// under the object's lock and must not call back into it.
#pragma once

#include <cinttypes>
#include <concepts>
#include <memory>
#include <string_view>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/notifier/binding.hpp>
#include <guestmem/notifier/consumer.hpp>

namespace guestmem {

/// A consumer type that takes replays: `c.populate(inv)` returns status.
template <class C>
concept populating_consumer = requires(C& c, const invalidation& inv) {
    { c.populate(inv) } -> std::same_as<status>;
};
static_assert(populating_consumer<consumer>);

namespace detail {
/// The replay invalidation one binding sees for one shared run.
template <class C>
invalidation replay_invalidation(const binding<C>& b, page_range run) noexcept {
    invalidation inv;
    inv.pages = run;
    inv.target = {b.translate(run.begin), b.translate(run.end)};
    inv.cause = invalidation_cause::replay;
    inv.vetoable = true;
    inv.sequence = b.sequence();
    inv.binding_id = b.id();
    return inv;
}

template <class C>
std::string_view replay_name(const C& c) noexcept {
    if constexpr (requires { { c.name() } -> std::convertible_to<std::string_view>; })
        return std::string_view(c.name());
    else
        return "consumer";
}

/// The first page of the run holding page q, not before `lo` (binary
/// search over all_of, which stops at the first other value: O(log pages ·
/// log runs)).
template <class Map>
page_index run_start(const Map& map, page_index lo, page_index q) noexcept {
    const auto v = map.at(q);
    page_index hi = q;
    while (lo < hi) {
        const page_index mid = lo + (hi - lo) / 2;
        if (map.all_of({mid, q + 1}, v))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

[[gnu::cold, gnu::noinline]] inline error replay_veto(std::string_view name, std::uint64_t id, page_range run,
                                                       const error& why) noexcept {
    const page_index page = run.contains(why.page()) ? why.page() : run.begin;
    const std::string_view reason = why.message();
    error e = error::make(errc::vetoed, page,
                          "%.*s (binding %" PRIu64 ") vetoed the replay of shared pages [%#" PRIx64 ", %#" PRIx64
                          "): %.*s; the bind is rolled back",
                          int(name.size()), name.data(), id, run.begin, run.end, int(reason.size()), reason.data());
    e.with_binding_id(id);
    return e;
}
} // namespace detail

/// Tell the consumer of bound binding `b` every shared run of its range in
/// `mem` (populate, cause replay). On a veto, abort the runs populated
/// before (newest first) and return the veto: code vetoed, the consumer's
/// page when it lies in the run (else the run's first page), the binding's
/// id. Changes nothing in `mem`. A consumer type without populate: ok, no
/// call. Same locking rule as bind_replaying. O(log runs + shared runs).
template <class Memory, class C>
[[nodiscard]] status replay_populated(const Memory& mem, binding<C>& b) {
    if constexpr (!populating_consumer<C>) {
        (void)mem;
        (void)b;
        return ok();
    } else {
        C& c = *b.owner();
        const auto guard = mem.lock_shared();
        const auto& map = mem.locked(guard).shareability_map();
        for (const auto& run : map.runs(b.pages())) {
            if (run.value != shareability::shared) continue;
            status s = c.populate(detail::replay_invalidation(b, run.range));
            if (s) continue;
            // The runs before this one, populated: undo them, newest first.
            for (page_index at = run.range.begin; at > b.pages().begin;) {
                const page_index start = detail::run_start(map, b.pages().begin, at - 1);
                if (map.at(at - 1) == shareability::shared) c.abort(detail::replay_invalidation(b, {start, at}));
                at = start;
            }
            return detail::replay_veto(detail::replay_name(c), b.id(), run.range, s.error());
        }
        return ok();
    }
}

/// bind, then replay_populated: the binding is made and its consumer told
/// each shared run of `pages`; if the consumer vetoes, the populated runs
/// are aborted, `slot` is unlinked without a release (it is left unbound)
/// and the veto is returned. Errors: those of Memory::bind, and vetoed.
/// The caller guarantees no other thread calls into `mem` during the call
/// (see the file comment). O(bindings + log runs + shared runs in pages).
template <class Memory, class C>
[[nodiscard]] result<binding_handle> bind_replaying(Memory& mem, binding<C>& slot, C& c, page_range pages,
                                                    std::uint64_t target_base,
                                                    binding_class cls = binding_class::ordinary) {
    auto h = mem.bind(slot, c, pages, target_base, cls);
    if (!h) return h;
    if (auto s = replay_populated(mem, slot); !s) {
        // A bound binding destroyed unlinks itself and tells no one (see
        // binding.hpp): the rollback of a bind nobody else has seen.
        std::destroy_at(&slot);
        std::construct_at(&slot);
        return s.error();
    }
    return h;
}

} // namespace guestmem
