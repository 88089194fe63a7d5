/// @file
/// The bodies of guest_memory's calls that change the object under its
/// exclusive lock and run consumer rounds: punch_hole, convert, pin,
/// memory_failure and unbind, out of line so guest_memory.hpp reads as the
/// API with each call's contract (Errors, Lock, Cost, Allocates) and the
/// protocol's steps in its file comment. Included by guest_memory.hpp; not
/// a header of its own. Costs: as each call's contract says.
#pragma once

#include <algorithm>
#include <cinttypes>

#include <guestmem/memory/guest_memory.hpp>

namespace guestmem {

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
status guest_memory<Allocator, Consumer, Lock, NodeAllocator>::punch_hole(page_range r) {
    if (detail::this_thread_holds(this)) [[unlikely]] return detail::reentered("punch_hole");
    std::unique_lock guard(lock_);
    detail::hold_marker held(this);
    if (r.begin >= r.end || r.end > max_file_pages) [[unlikely]]
        return bad_punch_range(r);
    if (r.begin >= size_) return ok();  // at or past the end: nothing there
    r.end = std::min(r.end, size_);
    commit_report report;
    notifier_.invalidate(r, invalidation_cause::truncate, report);
    quarantine(report, r);  // before truncate: a reported page must never be freed
    folios_.truncate(r);
    unblocked(r);
    return ok();
}

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
status guest_memory<Allocator, Consumer, Lock, NodeAllocator>::convert(page_range r, shareability to, convert_options opts) {
    if (detail::this_thread_holds(this)) [[unlikely]] return detail::reentered("convert");
    std::unique_lock guard(lock_);
    detail::hold_marker held(this);
    // 1. validate
    if (auto s = check_range(r, size_); !s) return s;
    if (!is_valid(to) || (opts.content != content_policy::preserve && opts.content != content_policy::zero))
        return bad_conversion_argument(r, to, opts);
    // A range whose first page is not `to` changes (most conversions): a
    // one-page range asks all_of, whose search prepare_assign then starts
    // from (the hint); a longer one tests the first page before all_of walks.
    typename share_map::assign_hint hint;
    if ((r.end - r.begin == 1 || shares_.at(r.begin) == to) && shares_.all_of(r, to, hint)) {
        ++counters_.noop_conversions;
        return ok();
    }
    if (poison_events_ != 0)  // never poisoned: no folio walk, no call
        if (page_index p = first_poisoned(r); p != no_page) return poisoned_in(p, r);
    // 2. plan
    typename folio_table<Allocator, NodeAllocator>::plan plan{r, to};
    folios_.plan_into(plan, shares_);
    // 3. prepare the map and the folio table
    if (auto s = shares_.prepare_checked_assign(r, hint); !s) {
        ++counters_.rollbacks;
        return s;
    }
    if (auto s = folios_.prepare_conversion(plan); !s) {
        shares_.abort_assign();
        ++counters_.rollbacks;
        return s;
    }
    auto undo = [&] {
        folios_.abort_conversion(plan);
        shares_.abort_assign();
        ++counters_.rollbacks;
    };
    // 4. check unexpected references
    const bool to_private = to == shareability::guest_only;
    if (to_private && !opts.defer_if_pinned) {
        if (page_index p = folios_.first_pinned(r); p != no_page) {
            undo();
            ++counters_.busy_refusals;
            return pinned_in(p, r);
        }
    }
    // 5. prepare consumers
    if (auto s = notifier_.prepare_round(r, to_private ? invalidation_cause::to_guest_only : invalidation_cause::to_shared);
        !s) {
        undo();
        ++counters_.vetoes;
        return s;
    }
    // 6. commit: nothing below can fail.
    commit_report report;
    notifier_.commit_round(report);
    const std::uint64_t drained = folios_.commit_conversion(plan, opts.defer_if_pinned);  // leaves sent to none
    shares_.commit_assign(r, to);  // keeps the few nodes the next assign needs: no malloc per conversion
    if (opts.content == content_policy::zero) zero_contents(r);
    quarantine(report, r);  // before merging: a merge never absorbs a reported page
    if (to_private) {
        if (opts.defer_if_pinned) counters_.deferred_folios += drained;
        folios_.merge_eligible(plan, shares_);
    }
    ++counters_.conversions;
    changes_.record(r);  // migration tracking (snapshot/changes.hpp)
    unblocked(r);
    return ok();
}

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
template <access_rule Policy>
status guest_memory<Allocator, Consumer, Lock, NodeAllocator>::pin(page_range r, accessor who, Policy policy) {
    if (detail::this_thread_holds(this)) [[unlikely]] return detail::reentered("pin");
    std::unique_lock guard(lock_);
    if (auto s = check_range(r, size_); !s) return s;
    if (!is_valid(who))
        return error::make(errc::invalid_argument, r.begin, "accessor %u is not host, hypervisor, device or trusted_device",
                           unsigned(who));
    if (!policy.may_map(who, shareability::guest_only)) {
        if (page_index p = shares_.find_first_not(r, shareability::shared); p != no_page)
            return error::make(errc::permission_denied, p,
                               "page %#" PRIx64 " is guest_only; the %.*s may not pin it", p,
                               int(to_string(who).size()), to_string(who).data());
    }
    if (page_index p = first_unmappable(r); p != no_page)
        return error::make(errc::busy, p, "page %#" PRIx64 " is draining references (mappability none)", p);
    return folios_.pin(r);
}

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
status guest_memory<Allocator, Consumer, Lock, NodeAllocator>::memory_failure(page_index page) {
    if (detail::this_thread_holds(this)) [[unlikely]] return detail::reentered("memory_failure");
    std::unique_lock guard(lock_);
    detail::hold_marker held(this);
    if (auto s = check_page(page, size_); !s) return s;
    auto f = folios_.lookup(page);
    if (!f) return error::make(errc::not_allocated, page, "page %#" PRIx64 " is a hole; no memory there can fail", page);
    if (f->poisoned) return ok();  // already poisoned, consumers already told
    folios_.poison(page);
    ++poison_events_, changes_.poisoned();
    notifier_.memory_failure(f->range(), f->order, shares_.at(page));
    return ok();
}

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
status guest_memory<Allocator, Consumer, Lock, NodeAllocator>::unbind(binding_handle h) {
    if (detail::this_thread_holds(this)) [[unlikely]] return detail::reentered("unbind");
    std::unique_lock guard(lock_);
    detail::hold_marker held(this);
    commit_report report;
    auto released = notifier_.unbind(h, report);
    if (!released) return released.error();
    quarantine(report, released.value().intersect({0, size_}));
    unblocked({0, size_});
    return ok();
}

} // namespace guestmem
