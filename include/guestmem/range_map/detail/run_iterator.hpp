// guestmem/range_map/detail/run_iterator.hpp — the forward iterator behind
// range_map::runs(): walks the leaves of the run tree through their `next`
// links and yields each run clipped to the window it was asked for.
#pragma once

#include <cstddef>
#include <iterator>

#include <guestmem/core/page_range.hpp>
#include <guestmem/range_map/detail/nodes.hpp>

namespace guestmem {

/// One maximal run of equal values (clipped to the window of the query).
template <class Value>
struct run {
    page_range range;
    Value value;
    friend constexpr bool operator==(const run&, const run&) noexcept = default;
};

namespace detail {

/// Iterator over runs clipped to [begin, clip_end). Two iterators of the
/// same view are equal when they stand on the same (clipped) run start; the
/// end iterator stands on clip_end. A null leaf means the map has no node
/// and is one run of `single`.
template <class Value>
class run_iterator {
public:
    using leaf = rm_leaf<Value>;
    using value_type = run<Value>;
    using reference = run<Value>;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::forward_iterator_tag;
    using iterator_category = std::input_iterator_tag;  // reference is a prvalue

    run_iterator() = default;
    run_iterator(const leaf* lf, unsigned idx, page_index begin, page_index clip_end, page_index size,
                 Value single) noexcept
        : leaf_(lf), idx_(idx), begin_(begin), clip_end_(clip_end), size_(size), single_(single) {}

    [[nodiscard]] run<Value> operator*() const noexcept {
        const page_index next = next_start();
        return {{begin_, next < clip_end_ ? next : clip_end_}, leaf_ ? leaf_->vals[idx_] : single_};
    }

    run_iterator& operator++() noexcept {
        const page_index next = next_start();
        if (next >= clip_end_) {
            begin_ = clip_end_;
            return *this;
        }
        begin_ = next;
        if (idx_ + 1u < leaf_->count) {
            ++idx_;
        } else {
            leaf_ = leaf_->next;
            idx_ = 0;
        }
        return *this;
    }
    run_iterator operator++(int) noexcept {
        run_iterator old = *this;
        ++*this;
        return old;
    }

    friend bool operator==(const run_iterator& a, const run_iterator& b) noexcept { return a.begin_ == b.begin_; }

private:
    /// Unclipped end of the current run.
    [[nodiscard]] page_index next_start() const noexcept {
        if (leaf_ == nullptr) return size_;
        if (idx_ + 1u < leaf_->count) return leaf_->keys[idx_ + 1];
        return leaf_->next ? leaf_->next->keys[0] : size_;
    }

    const leaf* leaf_ = nullptr;
    unsigned idx_ = 0;
    page_index begin_ = 0;
    page_index clip_end_ = 0;
    page_index size_ = 0;
    Value single_{};
};

} // namespace detail
} // namespace guestmem
