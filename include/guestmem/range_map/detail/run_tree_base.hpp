// guestmem/range_map/detail/run_tree_base.hpp — the read side of the range
// map's B+-tree (run_tree.hpp): root, height, size, the one-run value and the
// descent to a leaf. It does not depend on the allocator, so that iterators
// and the dense layout's readers (dense_read.hpp) can point to it.
#pragma once

#include <cstddef>
#include <cstdint>

#include <guestmem/core/types.hpp>
#include <guestmem/range_map/detail/nodes.hpp>

namespace guestmem::detail {

/// The read side of a run tree, which does not depend on the allocator:
/// what iterators and the dense map's readers hold a pointer to.
template <class Value>
class run_tree_base {
public:
    using leaf = rm_leaf<Value>;
    using inner = rm_inner;

    [[nodiscard]] page_index size() const noexcept { return size_; }
    [[nodiscard]] std::size_t runs() const noexcept { return runs_; }
    [[nodiscard]] unsigned height() const noexcept { return height_; }
    [[nodiscard]] const void* root() const noexcept { return root_; }
    [[nodiscard]] Value single() const noexcept { return single_; }

    /// Ask for all four cache lines of a node at once: the search reads
    /// them all, and the hardware would otherwise fetch them one by one.
    static void prefetch_node(const void* n) noexcept {
        const char* c = static_cast<const char*>(n);
        __builtin_prefetch(c + 64);
        __builtin_prefetch(c + 128);
        __builtin_prefetch(c + 192);
    }

    /// Leaf holding the run that covers page p, and that run's index.
    /// Precondition: root() != nullptr, p < size().
    [[nodiscard]] const leaf* find_leaf(page_index p, unsigned& idx) const noexcept {
        const void* n = root_;
        for (unsigned l = 1; l < height_; ++l) {
            const inner* in = static_cast<const inner*>(n);
            n = in->child[in->find(p)];
            prefetch_node(n);
        }
        const leaf* lf = static_cast<const leaf*>(n);
        idx = lf->find(p) - 1;
        return lf;
    }

    /// Start of the run covering p. Precondition: root() != nullptr.
    [[nodiscard]] page_index run_start(page_index p) const noexcept {
        unsigned i;
        const leaf* lf = find_leaf(p, i);
        return lf->keys[i];
    }

    /// Value of page p, and the end of its run. Precondition: p < size().
    [[nodiscard]] Value at(page_index p, page_index& run_end) const noexcept {
        if (root_ == nullptr) {
            run_end = size_;
            return single_;
        }
        unsigned i;
        const leaf* lf = find_leaf(p, i);
        run_end = i + 1u < lf->count ? lf->keys[i + 1] : (lf->next ? lf->next->keys[0] : size_);
        return lf->vals[i];
    }

    [[nodiscard]] Value at(page_index p) const noexcept {
        if (root_ == nullptr) return single_;
        unsigned i;
        const leaf* lf = find_leaf(p, i);
        return lf->vals[i];
    }

protected:
    run_tree_base(page_index size, Value initial) noexcept : size_(size), single_(initial) {}

    void* root_ = nullptr;
    unsigned height_ = 0;  // levels; 1 = the root is a leaf
    page_index size_;
    Value single_;
    std::size_t runs_ = 1;
};

} // namespace guestmem::detail
