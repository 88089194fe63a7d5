// guestmem/testing/fault_injecting_allocator.hpp — wraps any allocator policy
// and fails the N-th fallible call (allocate and/or reserve_split) with
// out_of_memory. It counts those calls, so a test can run an operation once
// to learn how many fallible points it has and then fail each in turn.
#pragma once

#include <cinttypes>
#include <cstdint>

#include <guestmem/core/error.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/folio/allocator.hpp>

namespace guestmem {

/// Which calls count as fallible points.
enum class fault_point : std::uint8_t { allocate = 1, reserve_split = 2, both = 3 };

template <folio_allocator A>
class fault_injecting_allocator {
public:
    explicit fault_injecting_allocator(A& inner, fault_point which = fault_point::both) noexcept
        : inner_(&inner), which_(which) {}

    /// Fail the n-th counted call from now on (1-based; 0 = never). Resets
    /// the call counter. With `sticky`, every call from the n-th on fails.
    void fail_at(std::uint64_t n, bool sticky = false) noexcept {
        fail_at_ = n;
        sticky_ = sticky;
        calls_ = 0;
    }
    void count(fault_point which) noexcept { which_ = which; }
    /// Counted calls since the last fail_at().
    [[nodiscard]] std::uint64_t calls() const noexcept { return calls_; }
    /// Failures injected so far.
    [[nodiscard]] std::uint64_t injected() const noexcept { return injected_; }
    [[nodiscard]] A& inner() noexcept { return *inner_; }

    [[nodiscard]] folio_order max_order() const noexcept { return inner_->max_order(); }

    [[nodiscard]] result<frame_number> allocate(page_index index, folio_order order) noexcept {
        if (should_fail(fault_point::allocate))
            return error::make(errc::out_of_memory, index,
                               "injected failure: no memory for a folio of order %u at page %#" PRIx64,
                               unsigned{order}, index);
        return inner_->allocate(index, order);
    }
    void free(page_index index, frame_number frame, folio_order order) noexcept { inner_->free(index, frame, order); }
    [[nodiscard]] status reserve_split(frame_number frame, folio_order from, folio_order to) noexcept {
        if (should_fail(fault_point::reserve_split))
            return error::make(errc::out_of_memory, no_page,
                               "injected failure: no metadata memory to split the order-%u folio at frame %#" PRIx64
                               " to order %u", unsigned{from}, frame, unsigned{to});
        return inner_->reserve_split(frame, from, to);
    }
    void unreserve_split(frame_number frame, folio_order from, folio_order to) noexcept {
        inner_->unreserve_split(frame, from, to);
    }
    void split(frame_number frame, folio_order from, folio_order to) noexcept { inner_->split(frame, from, to); }
    void merge(frame_number frame, folio_order from, folio_order to) noexcept { inner_->merge(frame, from, to); }
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
