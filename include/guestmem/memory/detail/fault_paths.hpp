/// @file
/// The fault path after the lock (fault_locked: the checks inline, every
/// refusal built out of line, so the whole path inlines into the caller's
/// loop) and the body of guest_memory::try_fault: the same checks in order,
/// each refusal answered with nothing instead of an error, and the default
/// sharded lock taken by try-lock only, so the whole path is straight-line code with
/// no error object and no call (the C ABI's guestmem_fault runs it and asks
/// fault() for the words only when it answers nothing). Included by
/// guest_memory.hpp; not a header of its own. Cost: O(log runs + log folios).
#pragma once

#include <mutex>
#include <optional>
#include <shared_mutex>

#include <guestmem/memory/guest_memory.hpp>

namespace guestmem {

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
template <class Policy>
[[gnu::always_inline]] inline result<fault_result>
guest_memory<Allocator, Consumer, Lock, NodeAllocator>::fault_locked(page_index page, shareability wanted, accessor who,
                                                                     Policy policy) const {
    if (page >= size_ || !is_valid(wanted) || !is_valid(who) || !policy.may_map(who, wanted)) [[unlikely]]
        return detail::fault_argument_error(page, size_, wanted, who);
    if (const shareability actual = shares_.at(page); actual != wanted) [[unlikely]]
        return detail::fault_shareability_error(page, actual, wanted);
    auto f = folios_.lookup(page);
    if (!f || f->poisoned) [[unlikely]]
        return detail::fault_folio_error(page, !f);
    // The mappability table decides: host faults need `all`; guest-side
    // faults are refused (retry) while the folio drains references.
    const auto event =
        policy.may_map(who, shareability::guest_only) ? mappability_event::guest_fault : mappability_event::host_fault;
    if (const auto t = next_mappability(f->mappability, event); !t.allowed) [[unlikely]]
        return detail::fault_mappability_error(page, f->mappability, t);
    return fault_result{f->frame + (page - f->first), f->first, f->frame, f->order, f->mappability};
}

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
template <access_rule Policy>
[[gnu::always_inline]] inline std::optional<fault_result>
guest_memory<Allocator, Consumer, Lock, NodeAllocator>::try_fault(page_index page, shareability wanted, accessor who,
                                                                  Policy policy) const noexcept {
    if constexpr (detail::is_sharded_lock<Lock>) {
        // No call on the path: the slot's own try-lock (nothing when this
        // thread has no slot yet, or a writer holds the lock, which is also
        // how a re-entered call answers nothing here and fault() words
        // would_deadlock).
        const std::size_t slot = lock_.try_lock_shared_slot();
        if (slot == lock_.slots) [[unlikely]]
            return std::nullopt;
        const auto answer = probe(page, wanted, who, policy);
        lock_.unlock_shared_slot(slot);
        return answer;
    } else {
        if (detail::this_thread_holds(this)) [[unlikely]] return std::nullopt;
        std::shared_lock guard(lock_);
        return probe(page, wanted, who, policy);
    }
}

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
template <class Policy>
[[gnu::always_inline]] inline std::optional<fault_result>
guest_memory<Allocator, Consumer, Lock, NodeAllocator>::probe(page_index page, shareability wanted, accessor who,
                                                              Policy policy) const noexcept {
    if (page >= size_ || !is_valid(wanted) || !is_valid(who) || !policy.may_map(who, wanted)) [[unlikely]]
        return std::nullopt;
    if (shares_.at(page) != wanted) [[unlikely]]
        return std::nullopt;
    auto f = folios_.lookup(page);
    if (!f || f->poisoned) [[unlikely]]
        return std::nullopt;
    const auto event =
        policy.may_map(who, shareability::guest_only) ? mappability_event::guest_fault : mappability_event::host_fault;
    if (!next_mappability(f->mappability, event).allowed) [[unlikely]]
        return std::nullopt;
    return fault_result{f->frame + (page - f->first), f->first, f->frame, f->order, f->mappability};
}

} // namespace guestmem
