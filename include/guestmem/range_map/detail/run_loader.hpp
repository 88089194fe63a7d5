// guestmem/range_map/detail/run_loader.hpp — range_map::load(): build the
// whole B+-tree from an ordered run sequence in one pass, bottom-up, instead
// of one assign per run. Leaves are filled to capacity - 2 and inner nodes
// to fanout - 2, evenly, so every node meets its minimum fill and the next
// assigns rarely split. Every node is taken from the allocator before the
// old tree is dropped: on out_of_memory the map is unchanged. A run of
// length 0 from the source stops the load (the source found bad input):
// the nodes built so far go back to the pool and the map is unchanged.
// O(runs), no memory besides the nodes (a right spine of one open node per
// level).
#pragma once

#include <cstddef>
#include <cstdint>

#include <guestmem/range_map/detail/run_tree.hpp>

namespace guestmem::detail {

/// How a bulk load of a range map ended.
enum class load_outcome : std::uint8_t {
    loaded,     ///< the map holds the new runs
    no_memory,  ///< a node or block could not be had: the map is unchanged
    stopped,    ///< the source yielded a length of 0: the map is unchanged
};

template <class Value, class Allocator>
struct run_tree_loader {
    using tree = run_tree<Value, Allocator>;
    using leaf = rm_leaf<Value>;
    using inner = rm_inner;
    static constexpr unsigned leaf_target = leaf::capacity - 2;
    static constexpr unsigned inner_target = inner::fanout - 2;

    /// Nodes per level (0 = leaves) for n >= 2 runs; returns the height.
    static unsigned plan(std::size_t n, std::size_t (&per)[tree::max_height]) noexcept {
        std::size_t c = n <= leaf::capacity ? 1 : (n + leaf_target - 1) / leaf_target;
        per[0] = c;
        unsigned h = 1;
        while (c > 1) {
            c = c <= inner::fanout ? 1 : (c + inner_target - 1) / inner_target;
            per[h++] = c;
        }
        return h;
    }

    /// Replace t's runs with the n runs next() yields as (length, value).
    /// Preconditions: n >= 1, lengths summing to t.size() (a length of 0
    /// stops the load), no two neighbours equal. t is unchanged unless the
    /// outcome is loaded.
    template <class Next>
    static load_outcome load(tree& t, std::size_t n, Next& next) noexcept {
        if (n == 1) {
            const auto first = next();
            if (first.first == 0) return load_outcome::stopped;
            t.drop_all();
            t.single_ = first.second;
            return load_outcome::loaded;
        }
        std::size_t per[tree::max_height] = {};
        const unsigned h = plan(n, per);
        std::size_t total = 0;
        for (unsigned l = 0; l < h; ++l) total += per[l];
        const std::size_t pooled = t.nodes_.pooled();
        if (!t.nodes_.fill(total)) return load_outcome::no_memory;
        inner* open[tree::max_height] = {};
        std::size_t made[tree::max_height] = {};  // nodes finished per level
        page_index first_key[tree::max_height] = {};  // smallest key under each open node
        void* root = nullptr;
        // Append `node` (whose smallest key is `key`) under level `l` (>= 1).
        auto push = [&](auto& self, unsigned l, void* node, page_index key) noexcept -> void {
            if (l == h) {
                root = node;
                return;
            }
            inner*& in = open[l];
            if (in == nullptr) in = t.new_inner();
            if (in->count > 0) in->keys[in->count - 1] = key;
            if (in->count == 0) first_key[l] = key;
            in->child[in->count++] = node;
            const std::size_t want = per[l - 1] / per[l] + (made[l] < per[l - 1] % per[l] ? 1 : 0);
            if (in->count < want) return;
            inner* done = in;
            in = nullptr;
            ++made[l];
            self(self, l + 1, done, first_key[l]);
        };
        // Stopped: every node taken hangs under an open node (finished
        // ones are pushed at once), or is the leaf being filled.
        auto give_back = [&](auto& self, void* node, unsigned level) noexcept -> void {
            if (level > 0) {
                inner* in = static_cast<inner*>(node);
                for (unsigned i = 0; i < in->count; ++i) self(self, in->child[i], level - 1);
            }
            t.free_node(node);
        };
        page_index start = 0;
        leaf* prev = nullptr;
        for (std::size_t j = 0; j < per[0]; ++j) {
            const std::size_t count = n / per[0] + (j < n % per[0] ? 1 : 0);
            leaf* lf = t.new_leaf();
            for (std::size_t i = 0; i < count; ++i) {
                const auto r = next();
                if (r.first == 0) [[unlikely]] {
                    t.free_node(lf);
                    for (unsigned l = 1; l < h; ++l)
                        if (open[l] != nullptr) give_back(give_back, open[l], l);
                    t.nodes_.trim(pooled);  // the pool as it was, too
                    return load_outcome::stopped;
                }
                lf->keys[i] = start;
                lf->vals[i] = r.second;
                start += r.first;
            }
            lf->count = static_cast<std::uint16_t>(count);
            if (prev != nullptr) prev->next = lf;
            prev = lf;
            push(push, 1, lf, lf->keys[0]);
        }
        t.drop_all();  // the old tree, now that the new one is whole
        t.root_ = root;
        t.height_ = h;
        t.runs_ = n;
        return load_outcome::loaded;
    }
};

} // namespace guestmem::detail
