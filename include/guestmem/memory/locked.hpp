/// @file
/// The locked tier of guest_memory (the "advanced" API beside the normal
/// one, which takes the lock in each call): guest_memory::locked_view, the
/// object's parts read-only for a caller that holds the object's lock,
/// and guest_memory::load, the door restore uses to fill a fresh object.
///
///     auto guard = mem.lock_shared();
///     auto parts = mem.locked(guard);
///     for (const auto& r : parts.runs({0, mem.size()}).value()) ...
///
/// A view is made only from a guard of the object's own lock, so the type
/// says who may read the parts without locking: keep the view no longer
/// than the guard, and call no locking member of the object meanwhile (the
/// lock is not recursive). Cost: O(1) to make; each part's own costs.
#pragma once

#include <cassert>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <utility>

#include <guestmem/memory/guest_memory.hpp>

namespace guestmem {

/// The parts of one object, read-only, while the caller holds its lock
/// (see the file comment). Copyable; valid while the guard it came from
/// holds the lock.
template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
class guest_memory<Allocator, Consumer, Lock, NodeAllocator>::locked_view {
public:
    /// The shareability runs overlapping `r`, clipped to it.
    /// Errors:    invalid_range (r empty, inverted or past size()).
    /// Lock:      none taken: the caller's guard holds the object's lock.
    /// Cost:      O(log runs) to begin, O(1) per run.
    /// Allocates: nothing.
    [[nodiscard]] auto runs(page_range r) const -> result<decltype(std::declval<const share_map&>().runs(r))> {
        if (auto s = check_range(r, m_->size_); !s) return s.error();
        return m_->shares_.runs(r);
    }
    /// The shareability map.
    /// Lock: none taken (the caller's guard). Cost: O(1).
    [[nodiscard]] const share_map& shareability_map() const noexcept { return m_->shares_; }
    /// The folio table.
    /// Lock: none taken (the caller's guard). Cost: O(1).
    [[nodiscard]] const folio_table<Allocator, NodeAllocator>& folios() const noexcept { return m_->folios_; }
    /// The notifier set.
    /// Lock: none taken (the caller's guard). Cost: O(1).
    [[nodiscard]] const notifier_set<Consumer>& notifiers() const noexcept { return m_->notifier_; }
    /// The generation and the log of converted ranges (memory/change_log.hpp).
    /// Lock: none taken (the caller's guard). Cost: O(1).
    [[nodiscard]] const change_log& changes() const noexcept { return m_->changes_; }

private:
    friend guest_memory;
    explicit locked_view(const guest_memory& m) noexcept : m_(&m) {}
    const guest_memory* m_;
};

// Hidden from Doxygen, which cannot match this definition (trailing return
// type) to its documented declaration in guest_memory.
/// @cond
template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
template <class Guard>
    requires std::same_as<Guard, std::shared_lock<Lock>> || std::same_as<Guard, std::unique_lock<Lock>>
auto guest_memory<Allocator, Consumer, Lock, NodeAllocator>::locked(const Guard& held) const noexcept -> locked_view {
    assert(held.owns_lock() && held.mutex() == &lock_);
    (void)held;
    return locked_view(*this);
}
/// @endcond

template <folio_allocator Allocator, invalidation_consumer Consumer, lock_policy Lock, class NodeAllocator>
template <class NextRun, class Build>
status guest_memory<Allocator, Consumer, Lock, NodeAllocator>::load(std::size_t run_count, NextRun&& next_run, Build&& build,
                                                                    std::uint64_t generation) {
    std::unique_lock guard(lock_);
    if (!folios_.empty() || shares_.run_count() != 1)
        return error::make(errc::invalid_argument, no_page,
                           "restore needs a fresh object (one run, no folio, no pin); this one has %zu runs and %" PRIu64
                           " allocated pages",
                           shares_.run_count(), folios_.stats().allocated_pages);
    const shareability before = shares_.at(0);
    if (auto s = shares_.load(run_count, next_run); !s) return s;
    auto loader = folios_.load();
    if (auto s = build(loader); !s) {
        loader.abort();  // the folios made go back
        auto one = [&] { return std::pair<page_index, shareability>{size_, before}; };
        (void)shares_.load(1, one);  // one run needs no node: cannot fail
        return s;
    }
    poison_events_ += loader.commit(shares_);
    changes_.reset(generation);
    return ok();
}

} // namespace guestmem
