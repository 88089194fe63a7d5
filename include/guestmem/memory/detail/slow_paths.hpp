/// @file
/// The guest memory object's slow paths, out of line so guest_memory.hpp
/// reads as the protocol: stats and dump, the refusals convert and
/// punch_hole build (cold), the scans for a poisoned or unmappable page,
/// zeroing a range's contents, and quarantining the pages consumers
/// reported leaked. Included by guest_memory.hpp; not a header of its own.
/// Costs: stats O(log runs); dump O(runs + folios + bindings); the scans
/// and zeroing O(folios in the range); quarantine O(reported pages), or
/// O(folios in the range) when the report overflowed.
#pragma once

#include <cinttypes>
#include <ostream>

#include <guestmem/memory/guest_memory.hpp>

namespace guestmem {

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
guest_memory_stats guest_memory<Allocator, Consumer, Lock, NodeAllocator>::stats_locked() const {
    guest_memory_stats s = counters_.snapshot();
    s.pages = size_;
    if (size_ != 0) {
        s.shared_pages = shares_.count({0, size_}, shareability::shared);
        s.guest_only_pages = size_ - s.shared_pages;
    }
    s.runs = shares_.run_count();
    const auto f = folios_.stats();
    s.allocated_pages = f.allocated_pages;
    s.folios_4k = f.folios_by_order[0];
    s.folios_2m = f.folios_by_order[1];
    s.folios_1g = f.folios_by_order[2];
    s.split_folios = f.split_folios;
    s.pinned_pages = f.pinned_pages;
    s.poisoned_folios = f.poisoned_folios;
    s.quarantined_pages = f.quarantined_pages;
    s.detached_pages = f.detached_pages;
    s.bindings = notifier_.binding_count();
    return s;
}

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
void guest_memory<Allocator, Consumer, Lock, NodeAllocator>::dump_locked(std::ostream& os) const {
    os << "guest_memory: " << size_ << " pages, max order " << unsigned(max_order_) << ", "
       << shares_.run_count() << " runs\n";
    if (size_ == 0) return;
    os << "runs:\n";
    for (const auto& run : shares_.runs({0, size_}))
        os << "  [" << std::hex << "0x" << run.range.begin << ", 0x" << run.range.end << std::dec << ") "
           << to_string(run.value) << '\n';
    os << "folios:\n";
    folios_.dump(os);
    os << "consumers:\n";
    notifier_.for_each_binding([&](const binding_type& b) {
        os << "  binding " << b.id() << ": pages [0x" << std::hex << b.pages().begin << ", 0x" << b.pages().end
           << ") -> target 0x" << b.target_base() << std::dec << ", sequence " << b.sequence() << '\n';
    });
}

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
error guest_memory<Allocator, Consumer, Lock, NodeAllocator>::bad_conversion_argument(
    page_range r, shareability to, convert_options opts) noexcept {
    if (!is_valid(to))
        return error::make(errc::invalid_argument, r.begin, "shareability %u is not shared or guest_only",
                           unsigned(to));
    return error::make(errc::invalid_argument, r.begin, "content policy %u is not preserve or zero",
                       unsigned(opts.content));
}
template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
error guest_memory<Allocator, Consumer, Lock, NodeAllocator>::bad_punch_range(page_range r) noexcept {
    if (r.begin >= r.end) return detail::range_error(r, max_file_pages);
    return error::make(errc::invalid_range, r.begin,
                       "range [%#" PRIx64 ", %#" PRIx64 ") ends past the largest file offset (2^63 bytes)", r.begin,
                       r.end);
}
template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
error guest_memory<Allocator, Consumer, Lock, NodeAllocator>::poisoned_in(page_index p, page_range r) noexcept {
    return error::make(errc::poisoned, p, "page %#" PRIx64 " in [%#" PRIx64 ", %#" PRIx64 ") is poisoned", p,
                       r.begin, r.end);
}
template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
error guest_memory<Allocator, Consumer, Lock, NodeAllocator>::pinned_in(page_index p, page_range r) const noexcept {
    return error::make(errc::busy, p,
                       "page %#" PRIx64 " has %" PRIu32 " unexpected references; [%#" PRIx64 ", %#" PRIx64
                       ") cannot become guest_only until they are dropped",
                       p, folios_.pins(p), r.begin, r.end);
}

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
page_index guest_memory<Allocator, Consumer, Lock, NodeAllocator>::first_poisoned(page_range r) const {
    if (poison_events_ == 0) return no_page;
    page_index found = no_page;
    folios_.for_each_folio(r, [&](const folio_view& v) {
        if (found == no_page && v.poisoned) found = v.first > r.begin ? v.first : r.begin;
    });
    return found;
}

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
page_index guest_memory<Allocator, Consumer, Lock, NodeAllocator>::first_unmappable(page_range r) const {
    page_index found = no_page;
    folios_.for_each_folio(r, [&](const folio_view& v) {
        if (found == no_page && v.mappability == mappability::none) found = v.first > r.begin ? v.first : r.begin;
    });
    return found;
}

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
void guest_memory<Allocator, Consumer, Lock, NodeAllocator>::zero_contents(page_range r) noexcept {
    folios_.for_each_folio(r, [&](const folio_view& v) {
        const page_range part = r.intersect({v.first, v.first + pages_in(v.order)});
        alloc_.zero(part.begin, v.frame + (part.begin - v.first), part.size());
    });
}

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
void guest_memory<Allocator, Consumer, Lock, NodeAllocator>::quarantine_reported(const commit_report& report,
                                                                                 page_range r) noexcept {
    for (const auto& e : report) {
        if (e.page < size_ && folios_.lookup(e.page) && !folios_.poisoned(e.page)) {
            folios_.poison_alone(e.page);  // 4K for a leaked 4K page, on every path
            ++poison_events_, changes_.poisoned();
            ++counters_.commit_quarantines;
        }
    }
    if (!report.overflowed()) return;
    for (page_index p = r.begin; p < r.end;) {
        auto f = folios_.lookup(p);
        if (!f) {
            ++p;
            continue;
        }
        if (!f->poisoned) {
            folios_.poison(p);
            ++poison_events_, changes_.poisoned();
            ++counters_.commit_quarantines;
        }
        p = f->first + pages_in(f->order);
    }
}

} // namespace guestmem
