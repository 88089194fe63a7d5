// guestmem/range_map/detail/run_tree.hpp — the B+-tree underneath
// guestmem::range_map: keys are run starts, leaves hold starts and values.
//
// Invariants (checked by range_map::coalesced()):
//  - key 0 is always present (the domain has no gaps); keys are < size;
//  - inner separators are exact (the smallest key of the right subtree), so
//    a descent for page p always lands in the leaf holding p's run;
//  - every non-root node holds at least min_fill entries (leaf: capacity/2,
//    inner: 8 children); the root leaf holds >= 1 run, the root inner >= 2;
//  - a tree with a single run holds no node at all (`root == nullptr`, the
//    value lives in `single`).
//
// Mutation is split so that it cannot fail half way: the only allocations
// are the pool refills done by range_map::prepare_assign (before anything is
// touched); commit_assign() runs entirely on pooled nodes. An assign adds at
// most two keys, both into one leaf, so it splits at most one node per level
// plus a new root: `height + 1` nodes (1 for a tree that has no node yet).
// Deletions and rebalancing only free nodes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <guestmem/core/types.hpp>
#include <guestmem/range_map/detail/nodes.hpp>
#include <guestmem/range_map/detail/run_tree_base.hpp>

namespace guestmem::detail {

template <class Value, class Allocator>
class run_tree : public run_tree_base<Value> {
    template <class, class> friend struct run_tree_loader;  // the bulk load (run_loader.hpp)
    using base = run_tree_base<Value>;
    using base::root_;
    using base::height_;
    using base::size_;
    using base::single_;
    using base::runs_;

public:
    using leaf = rm_leaf<Value>;
    using inner = rm_inner;
    using base::at;
    using base::find_leaf;
    using base::prefetch_node;
    using base::run_start;
    static constexpr unsigned max_height = 32;

    run_tree(page_index size, Value initial, const Allocator& a) noexcept : base(size, initial), nodes_(a) {}
    run_tree(run_tree&& o) noexcept : base(o.size_, o.single_), nodes_(static_cast<rm_node_source<Allocator>&&>(o.nodes_)) {
        root_ = o.root_;
        height_ = o.height_;
        runs_ = o.runs_;
        o.root_ = nullptr;
        o.height_ = 0;
        o.runs_ = 1;
    }
    ~run_tree() { drop_all(); }

    // ---- read side ------------------------------------------------------

    [[nodiscard]] const rm_node_source<Allocator>& nodes() const noexcept { return nodes_; }
    /// Node memory held now (tree and pool), in bytes.
    [[nodiscard]] std::size_t memory_bytes() const noexcept { return (nodes_.live() + nodes_.pooled()) * rm_node_bytes; }
    /// The map is one run (and holds no node).
    [[nodiscard]] bool one_run() const noexcept { return root_ == nullptr; }

    /// Nodes the next commit_assign can take from the pool.
    [[nodiscard]] std::size_t nodes_needed() const noexcept { return root_ ? height_ + 1u : 1u; }
    /// What the pool keeps after a commit: the next assign's need plus two.
    /// A map flipping between one run (needs 1) and a one-leaf tree (takes
    /// 1, then needs 2) would otherwise allocate a node in prepare_assign and
    /// free it at the next collapse on every flip — the common pattern of
    /// converting a range and converting it back. At most 2 nodes (512 B)
    /// more than the bare need.
    [[nodiscard]] std::size_t nodes_kept() const noexcept { return nodes_needed() + 2u; }

    /// Full structural check (for tests and fuzzers): coalesced runs that
    /// cover [0, size), exact separators, fill bounds, sentinel padding,
    /// consistent leaf links and run count.
    [[nodiscard]] bool check() const noexcept {
        if (root_ == nullptr) return height_ == 0 && runs_ == 1 && size_ > 0;
        const leaf* prev = nullptr;
        std::size_t runs = 0;
        bool have_last = false;
        Value last{};
        if (!check_node(root_, 0, 0, key_pad, prev, runs, have_last, last)) return false;
        return prev->next == nullptr && runs == runs_ && runs_ >= 2;
    }

    // ---- write side (no allocation) -------------------------------------

    /// Fill the pool so that `assigns` commits in a row (the dense map's
    /// top level makes up to three) cannot run dry: each may grow the tree
    /// by one level. All or nothing.
    [[nodiscard]] bool reserve(std::size_t assigns = 1) noexcept {
        return nodes_.fill(assigns * (nodes_needed() + assigns - 1));
    }
    /// Keep only what the next assign needs (after commits with trim = false).
    void trim_pool() noexcept { nodes_.trim(nodes_kept()); }
    /// Back to one run of v (the pool stays).
    void reset(Value v) noexcept {
        drop_all();
        single_ = v;
    }

    /// Give back all pooled nodes.
    void release() noexcept { nodes_.trim(0); }

    /// Assign [b, e) := v. Preconditions: b < e <= size; the pool holds
    /// nodes_needed() nodes (reserve() succeeded since the last change).
    /// With trim = false the pool keeps every node left (for a next commit
    /// on the same reservation).
    void commit_assign(page_index b, page_index e, Value v, bool trim = true) noexcept {
        if (b == 0 && e == size_) {
            drop_all();
            single_ = v;
            if (trim) nodes_.trim(nodes_kept());
            return;
        }
        if (root_ == nullptr) {  // one run becomes two or three: one fresh leaf
            if (single_ == v) return;  // nothing changes (the pool stays as reserved)
            leaf* lf = new_leaf();
            unsigned n = 0;
            if (b > 0) {
                lf->keys[n] = 0;
                lf->vals[n++] = single_;
            }
            lf->keys[n] = b;
            lf->vals[n++] = v;
            if (e < size_) {
                lf->keys[n] = e;
                lf->vals[n++] = single_;
            }
            lf->count = static_cast<std::uint16_t>(n);
            runs_ = n;
            root_ = lf;
            height_ = 1;
            if (trim) nodes_.trim(nodes_kept());
            return;
        }
        if (height_ == 1 && becomes_single(b, e, v)) {  // the last other runs are covered: back to no node
            runs_ = 1;
            leaf_root_to_single(v);
            if (trim) nodes_.trim(nodes_kept());
            return;
        }
        if (assign_in_leaf(b, e, v)) {
            collapse_if_single();
            if (trim) nodes_.trim(nodes_kept());
            return;
        }
        assign_across_leaves(b, e, v, trim);
    }

private:
    /// commit_assign's general case (the range spans leaves, or its leaf
    /// must split), out of line so the common cases above stay small.
    [[gnu::noinline]] void assign_across_leaves(page_index b, page_index e, Value v, bool trim) noexcept {
        const bool has_prev = b > 0;
        const Value prev = has_prev ? at(b - 1) : v;
        const bool has_after = e < size_;
        const Value after = has_after ? at(e) : v;
        const bool want_b = !has_prev || !(prev == v);
        const bool want_e = has_after && !(after == v);
        const bool e_present = has_after && run_start(e) == e;
        // 1. Remove the keys that must go: (b, e) always, b when it merges
        //    into the run before, e when the run at e merges into ours.
        const page_index lo = want_b ? b + 1 : b;
        const page_index hi = (has_after && !want_e) ? e + 1 : e;
        if (lo < hi) erase_keys(lo, hi);
        // 2. Add or update key b and add key e; they are neighbours now.
        if (want_b || (want_e && !e_present)) {
            leaf* lf = const_cast<leaf*>(descend(want_b ? b : e));
            const unsigned pos = lf->find(want_b ? b : e);  // >= 1: key 0 is first
            page_index nk[2];
            Value nv[2];
            unsigned n = 0;
            if (want_b) {
                if (lf->keys[pos - 1] == b) {
                    lf->vals[pos - 1] = v;
                } else {
                    nk[n] = b;
                    nv[n++] = v;
                }
            }
            if (want_e && !e_present) {
                nk[n] = e;
                nv[n++] = after;
            }
            if (n) insert_into_leaf(lf, pos, nk, nv, n);
        }
        collapse_if_single();
        // Keep what the next assign needs; nodes freed by merges go back.
        if (trim) nodes_.trim(nodes_kept());
    }

    struct step {
        inner* node;
        unsigned idx;
    };

    leaf* new_leaf() noexcept {
        leaf* lf = ::new (nodes_.take()) leaf;
        std::fill(std::begin(lf->keys), std::end(lf->keys), key_pad);
        lf->next = nullptr;
        lf->count = 0;
        return lf;
    }
    inner* new_inner() noexcept {
        inner* in = ::new (nodes_.take()) inner;
        std::fill(std::begin(in->keys), std::end(in->keys), key_pad);
        in->count = 0;
        return in;
    }
    void free_node(void* p) noexcept { nodes_.give(p); }

    /// Descend to the leaf covering p, recording the path in path_.
    const leaf* descend(page_index p) noexcept {
        void* n = root_;
        for (unsigned l = 0; l + 1 < height_; ++l) {
            inner* in = static_cast<inner*>(n);
            const unsigned i = in->find(p);
            path_[l] = {in, i};
            n = in->child[i];
            prefetch_node(n);
        }
        return static_cast<leaf*>(n);
    }

    /// Smallest key after the leaf at the bottom of path_ (its next leaf's
    /// first key), or key_pad for the last leaf: read from the separators
    /// on the path, which are in cache, instead of from the next leaf.
    [[nodiscard]] page_index leaf_upper() const noexcept {
        for (unsigned l = height_ - 1; l-- > 0;) {
            const inner* in = path_[l].node;
            if (path_[l].idx + 1u < in->count) return in->keys[path_[l].idx];
        }
        return key_pad;
    }

    /// The leaf at the bottom of path_ got a new smallest key m: fix the
    /// one separator that names it.
    void fix_min(unsigned level, page_index m) noexcept {
        for (unsigned l = level; l-- > 0;) {
            if (path_[l].idx > 0) {
                path_[l].node->keys[path_[l].idx - 1] = m;
                return;
            }
        }
    }

    /// The common case in one descent: the run before b, the run holding b
    /// and the run holding e are all in b's leaf. Returns false (having
    /// changed nothing) when they are not.
    bool assign_in_leaf(page_index b, page_index e, Value v) noexcept {
        leaf* lf = const_cast<leaf*>(descend(b));
        const unsigned i = lf->find(b) - 1;
        Value prev = v;
        const bool has_prev = b > 0;
        if (has_prev) {
            if (lf->keys[i] < b)
                prev = lf->vals[i];
            else if (i > 0)
                prev = lf->vals[i - 1];
            else
                return false;  // the run before b is in the previous leaf
        }
        const bool has_after = e < size_;
        if (leaf_upper() <= e) return false;  // the run at e starts in a later leaf
        const unsigned s = lf->keys[i] == b ? i : i + 1;  // keys < b
        const unsigned t = has_after ? lf->find(e) : lf->count;  // keys <= e
        const Value after = has_after ? lf->vals[t - 1] : v;
        const bool want_b = !has_prev || !(prev == v);
        const bool want_e = has_after && !(after == v);
        page_index nk[2];
        Value nv[2];
        unsigned n = 0;
        if (want_b) {
            nk[n] = b;
            nv[n++] = v;
        }
        if (want_e) {
            nk[n] = e;
            nv[n++] = after;
        }
        if (n == t - s) {  // same number of starts: rewrite in place
            std::copy(nk, nk + n, lf->keys + s);
            std::copy(nv, nv + n, lf->vals + s);
            return true;
        }
        const unsigned removed = t - s;
        std::copy(lf->keys + t, lf->keys + lf->count, lf->keys + s);
        std::copy(lf->vals + t, lf->vals + lf->count, lf->vals + s);
        lf->count = static_cast<std::uint16_t>(lf->count - removed);
        std::fill(lf->keys + lf->count, lf->keys + lf->count + removed, key_pad);
        runs_ -= removed;
        if (n) insert_into_leaf(lf, s, nk, nv, n);
        rebalance_leaf(lf);
        return true;
    }

    /// Remove every key k with lo <= k < hi (lo >= 1).
    void erase_keys(page_index lo, page_index hi) noexcept {
        for (;;) {
            leaf* lf = const_cast<leaf*>(descend(lo));
            unsigned pos = lf->find(lo - 1);  // first key >= lo
            if (pos == lf->count) {
                if (lf->next == nullptr || lf->next->keys[0] >= hi) return;
                lf = const_cast<leaf*>(descend(lf->next->keys[0]));
                pos = 0;
            }
            unsigned j = pos;
            while (j < lf->count && lf->keys[j] < hi) ++j;
            if (j == pos) return;
            const bool more = j == lf->count;
            const unsigned n = j - pos;
            std::copy(lf->keys + j, lf->keys + lf->count, lf->keys + pos);
            std::copy(lf->vals + j, lf->vals + lf->count, lf->vals + pos);
            lf->count = static_cast<std::uint16_t>(lf->count - n);
            std::fill(lf->keys + lf->count, lf->keys + lf->count + n, key_pad);
            runs_ -= n;
            if (pos == 0 && lf->count > 0) fix_min(height_ - 1, lf->keys[0]);
            rebalance_leaf(lf);
            if (!more) return;
        }
    }

    void rebalance_leaf(leaf* x) noexcept {
        if (height_ == 1 || x->count >= leaf::min_fill) return;
        const unsigned pl = height_ - 2;
        inner* p = path_[pl].node;
        const unsigned ci = path_[pl].idx;
        const unsigned li = ci > 0 ? ci - 1 : 0;
        leaf* l = static_cast<leaf*>(p->child[li]);
        leaf* r = static_cast<leaf*>(p->child[li + 1]);
        const bool left_was_empty = l->count == 0;
        const unsigned total = l->count + r->count;
        if (total <= leaf::capacity) {
            std::copy(r->keys, r->keys + r->count, l->keys + l->count);
            std::copy(r->vals, r->vals + r->count, l->vals + l->count);
            l->count = static_cast<std::uint16_t>(total);
            l->next = r->next;
            free_node(r);
            if (left_was_empty) fix_min(height_ - 1, l->keys[0]);
            remove_child(pl, li);
            return;
        }
        const unsigned nl = total / 2;
        if (l->count < nl) {  // move r's head to l's tail
            const unsigned m = nl - l->count;
            std::copy(r->keys, r->keys + m, l->keys + l->count);
            std::copy(r->vals, r->vals + m, l->vals + l->count);
            std::copy(r->keys + m, r->keys + r->count, r->keys);
            std::copy(r->vals + m, r->vals + r->count, r->vals);
            std::fill(r->keys + r->count - m, r->keys + r->count, key_pad);
            r->count = static_cast<std::uint16_t>(r->count - m);
            l->count = static_cast<std::uint16_t>(nl);
        } else {  // move l's tail to r's head
            const unsigned m = l->count - nl;
            std::copy_backward(r->keys, r->keys + r->count, r->keys + r->count + m);
            std::copy_backward(r->vals, r->vals + r->count, r->vals + r->count + m);
            std::copy(l->keys + nl, l->keys + l->count, r->keys);
            std::copy(l->vals + nl, l->vals + l->count, r->vals);
            std::fill(l->keys + nl, l->keys + l->count, key_pad);
            r->count = static_cast<std::uint16_t>(r->count + m);
            l->count = static_cast<std::uint16_t>(nl);
        }
        if (left_was_empty) fix_min(height_ - 1, l->keys[0]);
        p->keys[li] = r->keys[0];
    }

    /// Inner node at path level `level` loses child li+1 (merged into li).
    void remove_child(unsigned level, unsigned li) noexcept {
        inner* n = path_[level].node;
        std::copy(n->keys + li + 1, n->keys + n->count - 1, n->keys + li);
        std::copy(n->child + li + 2, n->child + n->count, n->child + li + 1);
        --n->count;
        n->keys[n->count - 1] = key_pad;
        rebalance_inner(level);
    }

    void rebalance_inner(unsigned level) noexcept {
        inner* n = path_[level].node;
        if (level == 0) {
            if (n->count == 1) {
                root_ = n->child[0];
                free_node(n);
                --height_;
            }
            return;
        }
        if (n->count >= inner::min_fill) return;
        inner* p = path_[level - 1].node;
        const unsigned ci = path_[level - 1].idx;
        const unsigned li = ci > 0 ? ci - 1 : 0;
        inner* l = static_cast<inner*>(p->child[li]);
        inner* r = static_cast<inner*>(p->child[li + 1]);
        page_index keys[2 * inner::fanout];
        void* kids[2 * inner::fanout];
        unsigned nk = 0, nc = 0;
        for (unsigned i = 0; i < l->count; ++i) kids[nc++] = l->child[i];
        for (unsigned i = 0; i + 1 < l->count; ++i) keys[nk++] = l->keys[i];
        keys[nk++] = p->keys[li];
        for (unsigned i = 0; i < r->count; ++i) kids[nc++] = r->child[i];
        for (unsigned i = 0; i + 1 < r->count; ++i) keys[nk++] = r->keys[i];
        if (nc <= inner::fanout) {
            std::copy(kids, kids + nc, l->child);
            std::copy(keys, keys + nk, l->keys);
            l->count = static_cast<std::uint16_t>(nc);
            free_node(r);
            remove_child(level - 1, li);
            return;
        }
        const unsigned nl = nc / 2;
        std::fill(std::begin(l->keys), std::end(l->keys), key_pad);
        std::fill(std::begin(r->keys), std::end(r->keys), key_pad);
        std::copy(kids, kids + nl, l->child);
        std::copy(keys, keys + nl - 1, l->keys);
        l->count = static_cast<std::uint16_t>(nl);
        p->keys[li] = keys[nl - 1];
        std::copy(kids + nl, kids + nc, r->child);
        std::copy(keys + nl, keys + nk, r->keys);
        r->count = static_cast<std::uint16_t>(nc - nl);
    }

    /// Insert n (<= 2) consecutive entries at pos (>= 1) of leaf lf, whose
    /// path is in path_. Splits take nodes from the pool.
    void insert_into_leaf(leaf* lf, unsigned pos, const page_index* nk, const Value* nv, unsigned n) noexcept {
        runs_ += n;
        const unsigned total = lf->count + n;
        if (total <= leaf::capacity) {
            std::copy_backward(lf->keys + pos, lf->keys + lf->count, lf->keys + total);
            std::copy_backward(lf->vals + pos, lf->vals + lf->count, lf->vals + total);
            std::copy(nk, nk + n, lf->keys + pos);
            std::copy(nv, nv + n, lf->vals + pos);
            lf->count = static_cast<std::uint16_t>(total);
            return;
        }
        page_index keys[leaf::capacity + 2];
        Value vals[leaf::capacity + 2];
        std::copy(lf->keys, lf->keys + pos, keys);
        std::copy(lf->vals, lf->vals + pos, vals);
        std::copy(nk, nk + n, keys + pos);
        std::copy(nv, nv + n, vals + pos);
        std::copy(lf->keys + pos, lf->keys + lf->count, keys + pos + n);
        std::copy(lf->vals + pos, lf->vals + lf->count, vals + pos + n);
        const unsigned nl = total / 2;
        leaf* r = new_leaf();
        std::fill(std::begin(lf->keys), std::end(lf->keys), key_pad);
        std::copy(keys, keys + nl, lf->keys);
        std::copy(vals, vals + nl, lf->vals);
        lf->count = static_cast<std::uint16_t>(nl);
        std::copy(keys + nl, keys + total, r->keys);
        std::copy(vals + nl, vals + total, r->vals);
        r->count = static_cast<std::uint16_t>(total - nl);
        r->next = lf->next;
        lf->next = r;
        insert_child(height_ - 1, lf, r->keys[0], r);
    }

    /// `left` (at path level `level`, or the root when level == 0) split
    /// off `right` whose smallest key is `sep`: link it into the parent.
    void insert_child(unsigned level, void* left, page_index sep, void* right) noexcept {
        if (level == 0) {
            inner* root = new_inner();
            root->child[0] = left;
            root->child[1] = right;
            root->keys[0] = sep;
            root->count = 2;
            root_ = root;
            ++height_;
            return;
        }
        inner* p = path_[level - 1].node;
        const unsigned at = path_[level - 1].idx + 1;  // right's child index
        if (p->count < inner::fanout) {
            std::copy_backward(p->child + at, p->child + p->count, p->child + p->count + 1);
            std::copy_backward(p->keys + at - 1, p->keys + p->count - 1, p->keys + p->count);
            p->child[at] = right;
            p->keys[at - 1] = sep;
            ++p->count;
            return;
        }
        page_index keys[inner::fanout];
        void* kids[inner::fanout + 1];
        std::copy(p->child, p->child + at, kids);
        kids[at] = right;
        std::copy(p->child + at, p->child + p->count, kids + at + 1);
        std::copy(p->keys, p->keys + at - 1, keys);
        keys[at - 1] = sep;
        std::copy(p->keys + at - 1, p->keys + p->count - 1, keys + at);
        const unsigned nc = inner::fanout + 1, nl = nc / 2 + 1;
        inner* r = new_inner();
        std::fill(std::begin(p->keys), std::end(p->keys), key_pad);
        std::copy(kids, kids + nl, p->child);
        std::copy(keys, keys + nl - 1, p->keys);
        p->count = static_cast<std::uint16_t>(nl);
        std::copy(kids + nl, kids + nc, r->child);
        std::copy(keys + nl, keys + nc - 1, r->keys);
        r->count = static_cast<std::uint16_t>(nc - nl);
        insert_child(level - 1, p, keys[nl - 1], r);
    }

    bool check_node(const void* n, unsigned level, page_index lo, page_index hi, const leaf*& prev,
                    std::size_t& runs, bool& have_last, Value& last) const noexcept {
        const bool is_root = level == 0;
        if (level + 1 < height_) {
            const inner* in = static_cast<const inner*>(n);
            if (in->count < (is_root ? 2u : inner::min_fill) || in->count > inner::fanout) return false;
            for (unsigned i = in->count - 1; i < inner::fanout - 1; ++i)
                if (in->keys[i] != key_pad) return false;
            for (unsigned i = 0; i < in->count; ++i) {
                const page_index clo = i ? in->keys[i - 1] : lo;
                const page_index chi = i + 1 < in->count ? in->keys[i] : hi;
                if (i && !(clo > lo && clo < hi)) return false;
                if (i && in->keys[i - 1] <= (i > 1 ? in->keys[i - 2] : lo)) return false;
                if (!check_node(in->child[i], level + 1, clo, chi, prev, runs, have_last, last)) return false;
            }
            return true;
        }
        const leaf* lf = static_cast<const leaf*>(n);
        if (lf->count < (is_root ? 1u : leaf::min_fill) || lf->count > leaf::capacity) return false;
        if (prev && prev->next != lf) return false;
        if (lf->keys[0] != lo) return false;  // exact separators; key 0 first
        for (unsigned i = lf->count; i < leaf::capacity; ++i)
            if (lf->keys[i] != key_pad) return false;
        for (unsigned i = 0; i < lf->count; ++i) {
            if (lf->keys[i] >= size_ || (i && lf->keys[i] <= lf->keys[i - 1])) return false;
            if (hi != key_pad && lf->keys[i] >= hi) return false;
            if (have_last && last == lf->vals[i]) return false;  // not coalesced
            have_last = true;
            last = lf->vals[i];
        }
        runs += lf->count;
        prev = lf;
        return true;
    }

    /// One run left: go back to holding no node at all.
    /// Root is the only leaf: is every run that reaches outside [b, e)
    /// already v (so the assign leaves one run)?
    [[nodiscard]] bool becomes_single(page_index b, page_index e, Value v) const noexcept {
        const leaf* lf = static_cast<const leaf*>(root_);
        for (unsigned i = 0; i < lf->count; ++i) {
            const page_index next = i + 1 < lf->count ? lf->keys[i + 1] : size_;
            if (!(lf->vals[i] == v) && (lf->keys[i] < b || next > e)) return false;
        }
        return true;
    }

    void collapse_if_single() noexcept {
        if (runs_ != 1 || root_ == nullptr || height_ != 1) return;
        leaf_root_to_single(static_cast<leaf*>(root_)->vals[0]);
    }
    /// The root is a leaf and the map is now one run of v: back to no node
    /// (the leaf goes to the pool).
    void leaf_root_to_single(Value v) noexcept {
        single_ = v;
        free_node(root_);
        root_ = nullptr;
        height_ = 0;
    }

    void drop(void* n, unsigned level) noexcept {
        if (level + 1 < height_) {
            inner* in = static_cast<inner*>(n);
            for (unsigned i = 0; i < in->count; ++i) drop(in->child[i], level + 1);
        }
        nodes_.release(n);
    }

    /// Free the whole tree (not the pool): back to one run.
    void drop_all() noexcept {
        if (root_) drop(root_, 0);
        root_ = nullptr;
        height_ = 0;
        runs_ = 1;
    }

    rm_node_source<Allocator> nodes_;
    step path_[max_height] = {};
};

} // namespace guestmem::detail
