// guestmem/range_map/run_view.hpp — what range_map::runs() returns: a
// view (a std::ranges view, borrowed: its iterators point into the map) of
// the runs overlapping a window, clipped to it, and its forward iterator,
// which walks the leaves of the run tree through their `next` links. Read
// it while nothing mutates the map.
#pragma once

#include <cstddef>
#include <iterator>
#include <ranges>

#include <guestmem/core/page_range.hpp>
#include <guestmem/range_map/detail/nodes.hpp>
#include <guestmem/range_map/detail/run_tree.hpp>

namespace guestmem {

/// One maximal run of equal values (clipped to the window of the query).
template <class Value>
struct run {
    page_range range;
    Value value;
    friend constexpr bool operator==(const run&, const run&) noexcept = default;
};

/// Iterator over runs clipped to [begin, clip_end). Two iterators of the
/// same view are equal when they stand on the same (clipped) run start; the
/// end iterator stands on clip_end. A null leaf means the map has no node
/// and is one run of `single`.
template <class Value>
class run_iterator {
    using leaf = detail::rm_leaf<Value>;

public:
    using value_type = run<Value>;
    using reference = run<Value>;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::forward_iterator_tag;
    using iterator_category = std::input_iterator_tag;  // reference is a prvalue

    run_iterator() = default;
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
    template <class, class>
    friend class run_view;
    run_iterator(const leaf* lf, unsigned idx, page_index begin, page_index clip_end, page_index size,
                 Value single) noexcept
        : leaf_(lf), idx_(idx), begin_(begin), clip_end_(clip_end), size_(size), single_(single) {}

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

template <class Value, class Allocator>
class range_map;

#if defined(__clang__) && __clang_major__ < 15 && defined(__GLIBCXX__)
/// clang 14 cannot instantiate libstdc++ 12's view_interface (the ranges
/// concepts then fail for every type derived from it); there the view gets
/// the few members it needs from this stand-in, and is still a std view.
namespace detail {
template <class View>
struct rm_view_base : std::ranges::view_base {
    [[nodiscard]] bool empty() const noexcept {
        const View& v = static_cast<const View&>(*this);
        return v.begin() == v.end();
    }
    explicit operator bool() const noexcept { return !empty(); }
    [[nodiscard]] auto front() const noexcept { return *static_cast<const View&>(*this).begin(); }
};
} // namespace detail
#else
namespace detail {
template <class View>
using rm_view_base = std::ranges::view_interface<View>;
} // namespace detail
#endif

/// The runs of a range_map overlapping a window, clipped to it, in page
/// order (range_map::runs). A std::ranges forward view; cheap to copy.
template <class Value, class Allocator>
class run_view : public detail::rm_view_base<run_view<Value, Allocator>> {
    using tree_type = detail::run_tree<Value, Allocator>;

public:
    using iterator = run_iterator<Value>;

    /// An empty view.
    run_view() = default;

    [[nodiscard]] iterator begin() const noexcept {
        if (tree_ == nullptr || window_.empty()) return end();
        if (tree_->root() == nullptr)
            return iterator(nullptr, 0, window_.begin, window_.end, tree_->size(), tree_->single());
        unsigned idx;
        const auto* lf = tree_->find_leaf(window_.begin, idx);
        return iterator(lf, idx, window_.begin, window_.end, tree_->size(), Value{});
    }
    [[nodiscard]] iterator end() const noexcept {
        const page_index e = window_.empty() ? window_.begin : window_.end;
        return iterator(nullptr, 0, e, e, 0, Value{});
    }

private:
    template <class, class>
    friend class range_map;
    run_view(const tree_type* t, page_range window) noexcept : tree_(t), window_(window) {}

    const tree_type* tree_ = nullptr;
    page_range window_{};
};


} // namespace guestmem

/// The run view's iterators point into the map, not into the view: a run
/// view is a borrowed range (std::ranges algorithms may return its
/// iterators even when called on a temporary view).
template <class Value, class Allocator>
inline constexpr bool std::ranges::enable_borrowed_range<guestmem::run_view<Value, Allocator>> = true;
