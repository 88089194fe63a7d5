/// @file
/// The bindings of one notifier_set indexed by object page range: an
/// intrusive AVL tree keyed by (first page, bind order), each node carrying
/// the largest end page of its subtree (an augmented interval tree, like
/// the kernel's interval trees behind mmu_interval_notifier).
///
/// Costs (B bindings, k of them overlapping the query): insert and erase
/// O(log B); visiting the bindings that overlap a range, in key order,
/// O((k + 1) log B); leftmost O(log B); size O(1). Nothing
/// allocates: the node lives in the binding. The recursion depth of insert
/// and erase is the tree height, at most 1.44 log2(B) + 2 (~22 for 10^4
/// bindings); the visit is iterative.
///
/// Caveats: not thread-safe (the owner's exclusive lock serialises every
/// mutation); a callback of a visit must not insert or erase.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <guestmem/core/page_range.hpp>

namespace guestmem::detail {

class binding_index;

/// The part of a binding the index links. Keyed by (pages_.begin, id_);
/// ids grow with bind order, so key order is object page order with ties
/// by bind order.
struct binding_node {
    binding_node* left_ = nullptr;
    binding_node* right_ = nullptr;
    binding_index* index_ = nullptr;  // the index holding the node; nullptr when unlinked
    page_range pages_{};
    std::uint64_t id_ = 0;
    page_index max_end_ = 0;  // the largest pages_.end in this subtree
    std::int32_t height_ = 0;

    [[nodiscard]] bool linked() const noexcept { return index_ != nullptr; }
};

/// The tree (see the file description). Not copyable or movable: nodes
/// point back at it.
class binding_index {
public:
    binding_index() = default;
    binding_index(const binding_index&) = delete;
    binding_index& operator=(const binding_index&) = delete;
    binding_index(binding_index&&) = delete;
    binding_index& operator=(binding_index&&) = delete;
    /// Unlinks whatever is left (no callback: the owner releases first).
    ~binding_index() { clear(root_); }

    [[nodiscard]] bool empty() const noexcept { return root_ == nullptr; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

    /// Link `n` (unlinked, its key set). O(log B).
    void insert(binding_node& n) noexcept {
        n.left_ = n.right_ = nullptr;
        n.height_ = 1;
        n.max_end_ = n.pages_.end;
        n.index_ = this;
        root_ = insert(root_, &n);
        ++size_;
    }
    /// Unlink `n` (linked here). O(log B).
    void erase(binding_node& n) noexcept {
        root_ = erase(root_, &n);
        n.left_ = n.right_ = nullptr;
        n.index_ = nullptr;
        --size_;
    }
    /// The first node in key order, or nullptr. O(log B).
    [[nodiscard]] binding_node* leftmost() const noexcept {
        binding_node* t = root_;
        if (t != nullptr)
            while (t->left_ != nullptr) t = t->left_;
        return t;
    }

    /// f(binding_node&) -> bool (false stops) for each node overlapping
    /// `q`, in key order. Returns false if f stopped it.
    template <class F>
    [[gnu::always_inline]] inline bool visit(page_range q, F&& f) {
        return root_ == nullptr || visit_in_order(root_, q, f);
    }
    /// f(const binding_node&) for every node, in key order.
    template <class F>
    void for_each(F&& f) const {
        for_each(root_, f);
    }

private:
    // An AVL tree of height h holds at least Fib(h + 2) - 1 nodes: 64
    // levels would take more nodes than an address space holds.
    static constexpr unsigned max_height = 64;

    static std::int32_t height(const binding_node* n) noexcept { return n != nullptr ? n->height_ : 0; }
    static bool less(const binding_node* a, const binding_node* b) noexcept {
        return a->pages_.begin < b->pages_.begin || (a->pages_.begin == b->pages_.begin && a->id_ < b->id_);
    }
    static void pull(binding_node* n) noexcept {
        n->height_ = 1 + std::max(height(n->left_), height(n->right_));
        page_index m = n->pages_.end;
        if (n->left_ != nullptr) m = std::max(m, n->left_->max_end_);
        if (n->right_ != nullptr) m = std::max(m, n->right_->max_end_);
        n->max_end_ = m;
    }
    static binding_node* rotate_right(binding_node* y) noexcept {
        binding_node* x = y->left_;
        y->left_ = x->right_;
        x->right_ = y;
        pull(y);
        pull(x);
        return x;
    }
    static binding_node* rotate_left(binding_node* x) noexcept {
        binding_node* y = x->right_;
        x->right_ = y->left_;
        y->left_ = x;
        pull(x);
        pull(y);
        return y;
    }
    static binding_node* balance(binding_node* n) noexcept {
        pull(n);
        const std::int32_t bf = height(n->left_) - height(n->right_);
        if (bf > 1) {
            if (height(n->left_->left_) < height(n->left_->right_)) n->left_ = rotate_left(n->left_);
            return rotate_right(n);
        }
        if (bf < -1) {
            if (height(n->right_->right_) < height(n->right_->left_)) n->right_ = rotate_right(n->right_);
            return rotate_left(n);
        }
        return n;
    }
    static binding_node* insert(binding_node* t, binding_node* n) noexcept {
        if (t == nullptr) return n;
        if (less(n, t))
            t->left_ = insert(t->left_, n);
        else
            t->right_ = insert(t->right_, n);
        return balance(t);
    }
    static binding_node* erase_min(binding_node* t, binding_node*& min) noexcept {
        if (t->left_ == nullptr) {
            min = t;
            return t->right_;
        }
        t->left_ = erase_min(t->left_, min);
        return balance(t);
    }
    static binding_node* erase(binding_node* t, binding_node* n) noexcept {
        if (t == n) {
            binding_node* l = t->left_;
            binding_node* r = t->right_;
            if (r == nullptr) return l;
            binding_node* m = nullptr;
            r = erase_min(r, m);
            m->left_ = l;
            m->right_ = r;
            return balance(m);
        }
        if (less(n, t))
            t->left_ = erase(t->left_, n);
        else
            t->right_ = erase(t->right_, n);
        return balance(t);
    }
    /// In-order walk pruned by max_end_, iterative with an explicit stack
    /// (the tree height is below 64 for any B that fits in memory): a
    /// point query is one tight descent, no call per level.
    template <class F>
    static bool visit_in_order(binding_node* t, page_range q, F& f) {
        binding_node* stack[max_height];
        unsigned n = 0;
        for (;;) {
            while (t != nullptr) {
                if (t->max_end_ <= q.begin) break;  // nothing in this subtree reaches q
                if (t->pages_.begin >= q.end) {      // t and its right subtree start past q
                    t = t->left_;
                    continue;
                }
                stack[n++] = t;
                t = t->left_;
            }
            if (n == 0) return true;
            t = stack[--n];
            if (t->pages_.end > q.begin && !f(*t)) return false;
            t = t->right_;
        }
    }
    template <class F>
    static void for_each(const binding_node* t, F& f) {
        for (; t != nullptr; t = t->right_) {
            for_each(t->left_, f);
            f(*t);
        }
    }
    static void clear(binding_node* t) noexcept {
        while (t != nullptr) {
            clear(t->left_);
            binding_node* r = t->right_;
            t->left_ = t->right_ = nullptr;
            t->index_ = nullptr;
            t = r;
        }
    }

    binding_node* root_ = nullptr;
    std::size_t size_ = 0;
};

} // namespace guestmem::detail
