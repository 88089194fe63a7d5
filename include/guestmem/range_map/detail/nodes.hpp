// guestmem/range_map/detail/nodes.hpp — the node layouts of the range map's
// B+-tree and the allocator wrapper that hands them out.
//
// Every node is one 256-byte, 64-byte-aligned block (four cache lines), the
// shape of the Linux maple tree's nodes: an inner node holds 15 separator
// keys and 16 child pointers; a leaf holds the start pages of its runs, the
// runs' values, and a link to the next leaf. Keys past `count` hold the
// sentinel `key_pad` (2^64-1, which is never a run start because a run start
// is below the domain size), so a search can compare a fixed number of keys
// without branching on `count`.
//
// Inner and leaf nodes share one storage type so that a single free list
// ("the pool") can serve both; the pool is what reservations fill.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>

#include <guestmem/core/types.hpp>

namespace guestmem::detail {

inline constexpr std::size_t rm_node_bytes = 256;
inline constexpr page_index key_pad = std::numeric_limits<page_index>::max();

/// Raw storage of one node; what the allocator is rebound to.
struct alignas(64) rm_node_storage {
    unsigned char bytes[rm_node_bytes];
};

/// One halving step of rm_count_le, unrolled at compile time (a runtime
/// loop here costs ~9 instructions a step instead of 3: GCC does not peel
/// it at -O2).
template <unsigned N>
[[nodiscard, gnu::always_inline]] inline const page_index* rm_search_step(const page_index* base,
                                                                         page_index p) noexcept {
    if constexpr (N <= 1) {
        return base;
    } else {
        constexpr unsigned half = N / 2;
        // A conditional move, never a branch: the comparison is a coin toss
        // for random pages, and GCC compiles `?:` here into a jump (which
        // mispredicted ~half the steps: PointQuery 1e6 ~260 -> ~120 ns).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        const page_index* moved = base + half;
        __asm__("cmpq %[k], %[p]\n\tcmovaeq %[m], %[b]"
                : [b] "+r"(base)
                : [k] "m"(base[half - 1]), [p] "r"(p), [m] "r"(moved)
                : "cc");
#else
        base += half & (std::size_t{0} - static_cast<std::size_t>(base[half - 1] <= p));
#endif
        return rm_search_step<N - half>(base, p);
    }
}

/// Number of keys <= p among N sorted keys (padded with key_pad): a
/// branchless binary search of fixed depth (no mispredictions; the node's
/// lines are prefetched together by the descent).
template <unsigned N>
[[nodiscard, gnu::always_inline]] inline unsigned rm_count_le(const page_index* keys, page_index p) noexcept {
    const page_index* base = rm_search_step<N>(keys, p);
    return static_cast<unsigned>(base - keys) + (*base <= p);
}

/// Inner node: child[i] holds the keys in [keys[i-1], keys[i]) (keys[-1] =
/// -inf, keys[count-1] = +inf). Separators are exact: keys[i-1] is the
/// smallest key in child[i]'s subtree.
struct rm_inner {
    static constexpr unsigned fanout = 16;
    static constexpr unsigned min_fill = fanout / 2;
    page_index keys[fanout - 1];
    void* child[fanout];
    std::uint16_t count;  // children in use

    /// Index of the child whose subtree covers page `p`.
    [[nodiscard]] unsigned find(page_index p) const noexcept { return rm_count_le<fanout - 1>(keys, p); }
};
static_assert(sizeof(rm_inner) <= rm_node_bytes);

/// Leaf: runs [keys[i], next start) -> vals[i]; the next start is keys[i+1],
/// the next leaf's keys[0], or the domain size after the last run.
template <class Value>
struct rm_leaf {
    static constexpr unsigned capacity =
        static_cast<unsigned>((rm_node_bytes - 2 * sizeof(void*)) / (sizeof(page_index) + sizeof(Value)));
    static constexpr unsigned min_fill = capacity / 2;
    static_assert(capacity >= 8, "Value is too large for a 256-byte leaf");
    page_index keys[capacity];
    Value vals[capacity];
    rm_leaf* next;
    std::uint16_t count;  // runs in use

    /// Number of keys <= p (the run covering p is at find(p) - 1).
    [[nodiscard]] unsigned find(page_index p) const noexcept { return rm_count_le<capacity>(keys, p); }
};

template <class Value>
inline constexpr bool rm_value_ok = std::is_trivially_copyable_v<Value> && sizeof(Value) <= 8;

/// The allocator policy, rebound to node storage, with one rule: a null
/// return from allocate() means "out of memory" and is reported, never
/// dereferenced. Freed nodes are kept on an intrusive free list (the pool)
/// so that reservations and the rebalancing of an assign need no allocator
/// calls on the commit path.
template <class Allocator>
class rm_node_source {
    using traits = typename std::allocator_traits<Allocator>::template rebind_traits<rm_node_storage>;
    using alloc_type = typename std::allocator_traits<Allocator>::template rebind_alloc<rm_node_storage>;

    struct free_node {
        free_node* next;
    };

public:
    explicit rm_node_source(const Allocator& a) noexcept : alloc_(a) {}
    rm_node_source(rm_node_source&& o) noexcept
        : alloc_(o.alloc_), pool_(o.pool_), pooled_(o.pooled_), live_(o.live_) {
        o.pool_ = nullptr;
        o.pooled_ = 0;
        o.live_ = 0;
    }
    rm_node_source(const rm_node_source&) = delete;
    rm_node_source& operator=(const rm_node_source&) = delete;
    rm_node_source& operator=(rm_node_source&&) = delete;
    ~rm_node_source() { trim(0); }

    /// Make the pool hold at least `n` nodes. All or nothing: on failure
    /// the nodes taken by this call are given back and false is returned.
    [[nodiscard]] bool fill(std::size_t n) noexcept { return pooled_ >= n || refill(n); }

    /// Give pooled nodes back to the allocator until at most `keep` remain.
    void trim(std::size_t keep) noexcept {
        while (pooled_ > keep) {
            free_node* f = pool_;
            pool_ = f->next;
            --pooled_;
            f->~free_node();
            traits::deallocate(alloc_, reinterpret_cast<rm_node_storage*>(f), 1);
        }
    }

    /// Take a node from the pool (precondition: the pool is not empty).
    [[nodiscard]] void* take() noexcept {
        free_node* f = pool_;
        pool_ = f->next;
        --pooled_;
        ++live_;
        f->~free_node();
        return f;
    }

    /// Return a node (already destroyed) to the pool.
    void give(void* p) noexcept {
        --live_;
        push(static_cast<rm_node_storage*>(p));
    }

    /// Return a node straight to the allocator.
    void release(void* p) noexcept {
        --live_;
        traits::deallocate(alloc_, static_cast<rm_node_storage*>(p), 1);
    }

    [[nodiscard]] std::size_t pooled() const noexcept { return pooled_; }
    [[nodiscard]] std::size_t live() const noexcept { return live_; }

private:
    /// fill's allocating part, out of line: in the steady state the pool
    /// already holds what a conversion needs.
    [[gnu::noinline]] bool refill(std::size_t n) noexcept {
        std::size_t added = 0;
        while (pooled_ < n) {
            rm_node_storage* p = traits::allocate(alloc_, 1);
            if (p == nullptr) {
                trim(pooled_ - added);
                return false;
            }
            push(p);
            ++added;
        }
        return true;
    }

    void push(rm_node_storage* p) noexcept {
        pool_ = ::new (static_cast<void*>(p)) free_node{pool_};
        ++pooled_;
    }

    [[no_unique_address]] alloc_type alloc_;
    free_node* pool_ = nullptr;
    std::size_t pooled_ = 0;
    std::size_t live_ = 0;
};

} // namespace guestmem::detail
