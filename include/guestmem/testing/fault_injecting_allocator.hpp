/// @file
/// Wraps any allocator policy and fails the N-th fallible call (allocate and/or
/// prepare_split) with out_of_memory. It counts those calls, so a test can run
/// an operation once to learn how many fallible points it has and then fail
/// each in turn.
#pragma once

#include <cinttypes>
#include <cstdint>

#include <guestmem/core/error.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/folio/allocator.hpp>

namespace guestmem {

/// Which calls count as fallible points (a bit mask).
enum class fault_point : std::uint8_t {
    allocate = 1,       ///< allocate() calls
    prepare_split = 2,  ///< prepare_split() calls
    both = 3            ///< allocate() and prepare_split() calls
};

/// An allocator policy that forwards every call to another policy `A` and
/// fails the n-th counted fallible call (see fail_at) with out_of_memory,
/// without calling `A` for it. The infallible calls are forwarded as they
/// are. Holds a pointer to the inner allocator, which must outlive it.
/// Locking: none (like every policy, called under the owner's exclusive
/// lock); not for use from several threads at once.
template <folio_allocator A>
class fault_injecting_allocator {
public:
    /// Wrap `inner`, counting the calls `which` selects. Injects nothing
    /// until fail_at() is called.
    explicit fault_injecting_allocator(A& inner, fault_point which = fault_point::both) noexcept
        : inner_(&inner), which_(which) {}

    /// Fail the n-th counted call from now on (1-based; 0 = never). Resets
    /// the call counter. With `sticky`, every call from the n-th on fails.
    void fail_at(std::uint64_t n, bool sticky = false) noexcept {
        fail_at_ = n;
        sticky_ = sticky;
        calls_ = 0;
    }
    /// Count (and fail) only the calls `which` selects from now on; the
    /// counter is kept.
    void count(fault_point which) noexcept { which_ = which; }
    /// Counted calls since the last fail_at().
    [[nodiscard]] std::uint64_t calls() const noexcept { return calls_; }
    /// Failures injected so far.
    [[nodiscard]] std::uint64_t injected() const noexcept { return injected_; }
    /// The wrapped allocator.
    [[nodiscard]] A& inner() noexcept { return *inner_; }

    /// The inner allocator's max_order().
    [[nodiscard]] folio_order max_order() const noexcept { return inner_->max_order(); }

    /// The inner allocator's allocate(), unless this is the call chosen to
    /// fail: then out_of_memory at `index` ("injected failure: ...").
    [[nodiscard]] result<frame_number> allocate(page_index index, folio_order order) noexcept {
        if (should_fail(fault_point::allocate))
            return error::make(errc::out_of_memory, index,
                               "injected failure: no memory for a folio of order %u at page %#" PRIx64,
                               unsigned{order}, index);
        return inner_->allocate(index, order);
    }
    /// Forwarded to the inner allocator.
    void free(page_index index, frame_number frame, folio_order order) noexcept { inner_->free(index, frame, order); }
    /// The inner allocator's prepare_split(), unless this is the call
    /// chosen to fail: then out_of_memory at no_page.
    [[nodiscard]] status prepare_split(frame_number frame, folio_order from, folio_order to) noexcept {
        if (should_fail(fault_point::prepare_split))
            return error::make(errc::out_of_memory, no_page,
                               "injected failure: no metadata memory to split the order-%u folio at frame %#" PRIx64
                               " to order %u", unsigned{from}, frame, unsigned{to});
        return inner_->prepare_split(frame, from, to);
    }
    /// Forwarded to the inner allocator.
    void abort_split(frame_number frame, folio_order from, folio_order to) noexcept {
        inner_->abort_split(frame, from, to);
    }
    /// Forwarded to the inner allocator.
    void commit_split(frame_number frame, folio_order from, folio_order to) noexcept { inner_->commit_split(frame, from, to); }
    /// Forwarded to the inner allocator.
    void merge(frame_number frame, folio_order from, folio_order to) noexcept { inner_->merge(frame, from, to); }
    /// Forwarded to the inner allocator.
    void zero(page_index index, frame_number frame, std::uint64_t pages) noexcept { inner_->zero(index, frame, pages); }

private:
    bool should_fail(fault_point kind) noexcept {
        if ((static_cast<unsigned>(which_) & static_cast<unsigned>(kind)) == 0) return false;
        ++calls_;
        const bool fail = fail_at_ != 0 && (calls_ == fail_at_ || (sticky_ && calls_ > fail_at_));
        if (fail) ++injected_;
        return fail;
    }

    A* inner_;
    fault_point which_;
    std::uint64_t fail_at_ = 0;
    bool sticky_ = false;
    std::uint64_t calls_ = 0;
    std::uint64_t injected_ = 0;
};

} // namespace guestmem
