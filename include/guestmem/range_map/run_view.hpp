/// @file
/// What range_map::runs() returns: a view (a std::ranges view, borrowed:
/// its iterators point into the map) of the runs overlapping a window,
/// clipped to it, and its forward iterator, which walks the leaves of the
/// run tree through their `next` links (generic values) or from boundary to
/// boundary (two-valued values, two_valued.hpp). Read it while nothing
/// mutates the map: views and iterators take no lock, and any change to the
/// map invalidates them.
#pragma once

#include <cstddef>
#include <iterator>
#include <ranges>

#include <guestmem/core/page_range.hpp>
#include <guestmem/range_map/detail/dense_runs.hpp>
#include <guestmem/range_map/detail/nodes.hpp>
#include <guestmem/range_map/detail/run_tree.hpp>
#include <guestmem/range_map/two_valued.hpp>

namespace guestmem {

/// One maximal run of equal values (clipped to the window of the query).
template <class Value>
struct run {
    page_range range;  ///< the run's pages, clipped to the query's window (never empty)
    Value value;       ///< the value of every page in `range`
    /// Same range and same value.
    /// Lock: none. Cost: O(1).
    friend constexpr bool operator==(const run&, const run&) noexcept = default;
};

namespace detail {
/// The layout a range_map of Value uses: boundaries only for a two-valued
/// Value, the B+-tree of run starts and values otherwise.
template <class Value, class Allocator>
using range_map_layout = std::conditional_t<two_valued<Value>::enabled, dense_runs<Value, Allocator>,
                                            run_tree<Value, Allocator>>;
} // namespace detail

/// Forward iterator over the runs of a run_view, clipped to the view's
/// window. Two iterators of the same view are equal when they stand on the
/// same (clipped) run start; the end iterator stands on the window's end.
/// Dereferencing yields a run by value (so it models a C++20
/// forward_iterator but only a legacy input iterator). Valid until the map
/// changes. Every operation is O(1) for the B+-tree layout; for the dense
/// layout (a two-valued Value), ++ is O(log boundaries of a chunk), plus
/// O(log chunks) when it crosses into another chunk.
template <class Value, bool Dense = two_valued<Value>::enabled>
class run_iterator {
    using leaf = detail::rm_leaf<Value>;

public:
    using value_type = run<Value>;                       ///< a run
    using reference = run<Value>;                        ///< runs are returned by value
    using difference_type = std::ptrdiff_t;              ///< required by the iterator concepts
    using iterator_concept = std::forward_iterator_tag;  ///< a C++20 forward iterator
    using iterator_category = std::input_iterator_tag;   ///< legacy: input only, since reference is a prvalue

    /// A singular iterator (equal to any other default-constructed one).
    /// Lock: none. Cost: O(1).
    run_iterator() = default;
    /// The run the iterator stands on, clipped to the window. Precondition:
    /// not the end iterator.
    /// Lock: none (nothing may mutate the map meanwhile). Cost: O(1).
    [[nodiscard]] run<Value> operator*() const noexcept {
        const page_index next = next_start();
        return {{begin_, next < clip_end_ ? next : clip_end_}, leaf_ ? leaf_->vals[idx_] : single_};
    }

    /// Move to the next run (or to the end). Precondition: not the end iterator.
    /// Lock: none. Cost: O(1).
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
    /// Move to the next run; returns the iterator as it was.
    /// Lock: none. Cost: as the prefix ++.
    run_iterator operator++(int) noexcept {
        run_iterator old = *this;
        ++*this;
        return old;
    }

    /// Same (clipped) run start. Meaningful for iterators of one view only.
    /// Lock: none. Cost: O(1).
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

/// The run iterator of a two-valued map (the dense layout): it stands on a
/// run and knows where the next boundary is; the value flips at each one.
/// Same contract as the generic iterator above; ++ is O(1) while the next
/// boundary is in the same array chunk.
template <class Value>
class run_iterator<Value, true> {
    using tv = two_valued<Value>;

public:
    using value_type = run<Value>;                       ///< a run
    using reference = run<Value>;                        ///< runs are returned by value
    using difference_type = std::ptrdiff_t;              ///< required by the iterator concepts
    using iterator_concept = std::forward_iterator_tag;  ///< a C++20 forward iterator
    using iterator_category = std::input_iterator_tag;   ///< legacy: input only, since reference is a prvalue

    /// A singular iterator (equal to any other default-constructed one).
    /// Lock: none. Cost: O(1).
    run_iterator() = default;
    /// The run the iterator stands on, clipped to the window. Precondition:
    /// not the end iterator.
    /// Lock: none (nothing may mutate the map meanwhile). Cost: O(1).
    [[nodiscard]] run<Value> operator*() const noexcept {
        return {{begin_, next_ < clip_end_ ? next_ : clip_end_}, tv::value(bit_)};
    }
    /// Move to the next run (or to the end). Precondition: not the end
    /// iterator.
    /// Lock:      none.
    /// Cost:      O(1) while the next boundary is in the same array chunk;
    ///            else O(log boundaries of a chunk), O(log chunks) more when
    ///            it crosses chunks.
    run_iterator& operator++() noexcept {
        if (next_ >= clip_end_) {
            begin_ = clip_end_;
            return *this;
        }
        begin_ = next_;
        bit_ = !bit_;
        next_ = map_->step(begin_, clip_end_, cursor_);
        return *this;
    }
    /// Move to the next run; returns the iterator as it was.
    /// Lock: none. Cost: as the prefix ++.
    run_iterator operator++(int) noexcept {
        run_iterator old = *this;
        ++*this;
        return old;
    }
    /// Same (clipped) run start. Meaningful for iterators of one view only.
    /// Lock: none. Cost: O(1).
    friend bool operator==(const run_iterator& a, const run_iterator& b) noexcept { return a.begin_ == b.begin_; }

private:
    template <class, class>
    friend class run_view;
    run_iterator(const detail::dense_read* m, page_index begin, page_index clip_end) noexcept
        : map_(m), begin_(begin), next_(begin), clip_end_(clip_end) {
        if (m) next_ = m->next_boundary(begin, clip_end, bit_, &cursor_);
    }

    const detail::dense_read* map_ = nullptr;
    page_index begin_ = 0;
    page_index next_ = 0;  // unclipped end of the current run
    page_index clip_end_ = 0;
    detail::dense_cursor cursor_;  // the rest of the current array chunk's boundaries
    bool bit_ = false;
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
/// order (range_map::runs). A std::ranges forward view and a borrowed
/// range (its iterators point into the map, not into the view); cheap to
/// copy (a pointer and a window). Valid until the map changes; takes no
/// lock.
template <class Value, class Allocator>
class run_view : public detail::rm_view_base<run_view<Value, Allocator>> {
    using tree_type = detail::range_map_layout<Value, Allocator>;
    static constexpr bool dense = two_valued<Value>::enabled;

public:
    using iterator = run_iterator<Value>;  ///< the view's (forward) iterator

    /// An empty view.
    /// Lock: none. Cost: O(1).
    run_view() = default;

    /// The first run overlapping the window, clipped to it.
    /// Lock:      none (nothing may mutate the map meanwhile).
    /// Cost:      O(log runs): one descent of the tree (O(1) for a map of
    ///            one run; dense: O(1) to the chunk, then a search in it).
    [[nodiscard]] iterator begin() const noexcept {
        if (tree_ == nullptr || window_.empty()) return end();
        if constexpr (dense) {
            return iterator(tree_, window_.begin, window_.end);
        } else {
            if (tree_->root() == nullptr)
                return iterator(nullptr, 0, window_.begin, window_.end, tree_->size(), tree_->single());
            unsigned idx;
            const auto* lf = tree_->find_leaf(window_.begin, idx);
            return iterator(lf, idx, window_.begin, window_.end, tree_->size(), Value{});
        }
    }
    /// The end iterator: stands on the window's end.
    /// Lock: none. Cost: O(1).
    [[nodiscard]] iterator end() const noexcept {
        const page_index e = window_.empty() ? window_.begin : window_.end;
        if constexpr (dense)
            return iterator(nullptr, e, e);
        else
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

// The run view's iterators point into the map, not into the view: a run
// view is a borrowed range (std::ranges algorithms may return its
// iterators even when called on a temporary view). Hidden from Doxygen,
// which cannot match this variable template specialization to a declaration
// (run_view's own documentation says it is borrowed).
/// @cond
template <class Value, class Allocator>
inline constexpr bool std::ranges::enable_borrowed_range<guestmem::run_view<Value, Allocator>> = true;
/// @endcond
