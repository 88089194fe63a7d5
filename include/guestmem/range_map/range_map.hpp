/// @file
/// The shareability range map (docs/DESIGN.md §Range map): an ordered map
/// of maximal runs [begin, end) -> Value over the pages [0, size) of one
/// guest memory object, always coalesced.
///
/// Two layouts, chosen by Value, behind this one interface:
///  - dense, for a Value with two values (shareability, bool, or any type
///    that specialises two_valued<Value>, two_valued.hpp): only the run
///    boundaries are stored, in chunks of 2^16 pages that are an immediate
///    (up to 3 boundaries, no allocation), an array of 16-bit offsets (2
///    bytes per boundary) or a bitmap (8 KiB, above 4,096 boundaries). The
///    chunks are found through a direct array (8 bytes per chunk, up to 4
///    TiB objects) or, for larger domains, a coalesced run tree. Never more
///    than 1/8 byte per page, however fragmented. Measured timings and
///    bytes per run against CRoaring and absl::btree_map are in
///    bench/RESULTS.md (section "Claims in headers"), not here.
///  - generic, for any other Value: a B+-tree of 256-byte nodes (16-way
///    inner nodes; leaves of run starts and values, 26 runs per leaf for a
///    one-byte Value), ~15 bytes per run.
/// A map that is one run holds no node and no chunk block. Costs: at()
/// O(log runs) (dense: O(1) to the chunk + O(log 4096)); assign() O(log
/// runs + runs removed); the run view O(log runs) to start, then O(1) per
/// run (dense: one search in a chunk per run).
///
/// Memory comes only from the Allocator (rebound to 256-byte node storage,
/// and for the dense layout also to 64-bit words for chunk blocks and the
/// direct array). The allocator reports exhaustion by returning nullptr
/// from allocate(); the map turns that into errc::out_of_memory and leaves
/// itself unchanged. (A throwing allocator also leaves the map unchanged,
/// but the library is built for -fno-exceptions, where the nullptr
/// convention is the policy.)
///
/// Infallible commits: prepare_assign(r) takes from the allocator everything a
/// following commit_assign(r, v) can need, for either v (tree: one node
/// per tree level plus a new root; dense: blocks for the at most two partly
/// covered chunks and the top's nodes or direct array); commit_assign()
/// then cannot fail. Unused reserved memory stays with the map (counted in
/// memory_bytes()) until abort_assign() or the destructor. assign()
/// is prepare_assign() + commit_assign() and keeps the few leftover nodes
/// (and a dense map's direct array) for the next call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <ranges>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/range_map/detail/nodes.hpp>
#include <guestmem/range_map/run_view.hpp>
#include <guestmem/range_map/two_valued.hpp>
#include <guestmem/range_map/detail/run_tree.hpp>
#include <guestmem/range_map/detail/run_loader.hpp>

namespace guestmem {


/// Coalesced map page -> Value over [0, size), stored as run boundaries in
/// chunks (a two-valued Value) or as maximal runs in a B+-tree of 256-byte
/// nodes (any other Value); see the file description for the layouts, the
/// costs and the prepare_assign / commit_assign split.
///
/// `Value`: small (at most 8 bytes), trivially copyable and
/// equality-comparable (a shareability, a pin count). `Allocator`: any
/// standard allocator; it is rebound to node storage and reports
/// exhaustion by returning nullptr.
///
/// Locking: none. The map is a plain data structure: concurrent const
/// calls are safe, and any mutation (assign, prepare_assign, commit_assign,
/// abort_assign) must be serialised against every other call by the
/// owner (guest_memory does it with its exclusive lock).
template <class Value, class Allocator = std::allocator<Value>>
class range_map {
    static_assert(detail::rm_value_ok<Value>, "range_map values must be trivially copyable and at most 8 bytes");
    using tree_type = detail::range_map_layout<Value, Allocator>;
    static constexpr bool dense = two_valued<Value>::enabled;

public:
    using value_type = Value;             ///< the value of each page
    using allocator_type = Allocator;     ///< the allocator nodes come from (rebound)
    using iterator = run_iterator<Value>; ///< iterator over the runs of a run_view

    /// Where an all_of search stood, for a following prepare_assign of the
    /// same range to start from (a dense map's one-page search: the page's
    /// place among its chunk's boundaries). Only a guess: prepare_assign
    /// checks it, so a stale or default hint costs a search, never a wrong
    /// result.
    struct assign_hint {
        std::uint32_t index = ~std::uint32_t{0};  ///< the page's place in its chunk; ~0: none
    };

    /// What runs() returns: the runs of this map overlapping a window.
    using run_view = guestmem::run_view<Value, Allocator>;

    /// One run [0, size) of `initial`. Cannot fail. Precondition: size > 0.
    /// Lock:      none.
    /// Cost:      O(1).
    /// Allocates: nothing.
    range_map(page_index size, Value initial, const Allocator& alloc = {}) noexcept : tree_(size, initial, alloc) {}
    /// Take over `other`'s nodes and reservation; `other` is left one run
    /// and holds no node (only destroy it or let it go).
    /// Lock: none (the caller owns both). Cost: O(1); allocates nothing.
    range_map(range_map&&) noexcept = default;
    range_map(const range_map&) = delete;
    range_map& operator=(const range_map&) = delete;
    range_map& operator=(range_map&&) = delete;
    /// Give every node, block and reservation back to the allocator.
    /// Lock: none (the caller owns the map). Cost: O(nodes).
    ~range_map() = default;

    /// Number of pages covered: the map is defined on [0, size()).
    /// Lock: none. Cost: O(1).
    [[nodiscard]] page_index size() const noexcept { return tree_.size(); }

    /// Set every page of r to v, coalescing with equal neighbours
    /// (prepare_assign + commit_assign).
    /// Errors:    in this order, the map unchanged: invalid_range (r empty,
    ///            inverted or past size()); out_of_memory at r.begin (the
    ///            allocator returned nullptr).
    /// Lock:      none; the owner serialises it against every other call.
    /// Cost:      O(log runs + runs removed).
    /// Allocates: at most one node per tree level plus one (dense: at most
    ///            two chunk blocks, and the direct array or top nodes).
    [[nodiscard]] status assign(page_range r, Value v) noexcept {
        if (auto s = prepare_assign(r); !s) return s;
        commit_assign(r, v);
        return ok();
    }

    /// Replace every run at once with the `run_count` runs `next()` yields,
    /// in order, as (length, value) pairs: built bottom-up in one pass,
    /// much faster than one assign per run (restoring a snapshot).
    /// Preconditions (the caller validated them): run_count >= 1, lengths
    /// summing to size(), no two neighbours equal. A length of 0 stops the
    /// load: a source that checks its runs as it goes (snapshot restore)
    /// gives up that way on bad input. `next` must be copyable: the dense
    /// layout may call a copy of it (kept in registers), so state it holds
    /// by value may not reach the caller's object (hold that by reference).
    /// Errors:    out_of_memory at page 0; invalid_argument (no_page) when
    ///            next() yielded a length of 0. Either way the map is
    ///            unchanged (the new structure is built before the old runs
    ///            go).
    /// Lock:      none; the owner serialises it against every other call.
    /// Cost:      O(runs).
    /// Allocates: about runs / 24 nodes (dense: one block per chunk with
    ///            more than 3 boundaries, plus a 128 KiB scratch buffer for
    ///            the duration of the call).
    template <class Next>
    [[nodiscard]] status load(std::size_t run_count, Next&& next) noexcept {
        detail::load_outcome out;
        if constexpr (dense)
            out = tree_.load(run_count, next);
        else
            out = detail::run_tree_loader<Value, Allocator>::load(tree_, run_count, next);
        if (out == detail::load_outcome::no_memory)
            return error::make(errc::out_of_memory, 0, "no memory for the range map nodes of %zu runs", run_count);
        if (out == detail::load_outcome::stopped)
            return error::make(errc::invalid_argument, no_page, "the run source stopped the load of %zu runs (a length of 0)",
                               run_count);
        return ok();
    }

    /// Take now everything that commit_assign(r, any value) can need
    /// (tree: height + 1 nodes, fewer when the pool already holds some;
    /// dense: a block for each partly covered chunk that must grow or change
    /// encoding, and the direct array or top nodes). Always inlined: on the
    /// conversion path it is a compare of the pool against the tree height
    /// (see check_range for why it is forced).
    /// Errors:    in this order: invalid_range (r empty, inverted or past
    ///            size()); out_of_memory at r.begin (then nothing new is
    ///            reserved).
    /// Lock:      none; the owner serialises it against every other call.
    /// Cost:      O(1) when the pool already holds enough (tree: a compare
    ///            with the height), else one allocation per missing node or block.
    /// Allocates: what it reserves: up to height + 1 nodes (dense: up to two
    ///            chunk blocks, and the direct array or top nodes).
    [[nodiscard, gnu::always_inline]] inline status prepare_assign(page_range r) noexcept {
        return prepare_assign(r, assign_hint{});
    }
    /// The same, starting from where all_of(r, v, hint) stood (a checked
    /// guess: any hint gives the same result).
    /// Errors:    as prepare_assign(r): invalid_range, then out_of_memory.
    /// Lock:      none; the owner serialises it against every other call.
    /// Cost:      as prepare_assign(r), less one search when the hint is right.
    /// Allocates: as prepare_assign(r).
    [[nodiscard, gnu::always_inline]] inline status prepare_assign(page_range r, const assign_hint& hint) noexcept {
        if (auto s = check_range(r, size()); !s) return s;
        return prepare_checked_assign(r, hint);
    }
    /// The same for a range its caller has already checked against size()
    /// (guest_memory::convert checks against the object's size, the map's):
    /// the range is not checked twice.
    /// Precondition: check_range(r, size()) succeeds.
    /// Errors:    out_of_memory at r.begin (then nothing new is reserved).
    /// Lock:      none; the owner serialises it against every other call.
    /// Cost:      as prepare_assign.
    /// Allocates: as prepare_assign.
    [[nodiscard, gnu::always_inline]] inline status prepare_checked_assign(page_range r, const assign_hint& hint) noexcept {
        bool reserved;
        if constexpr (dense)
            reserved = tree_.inside_one_chunk(r.begin, r.end) ? tree_.reserve_inside(r.begin, r.end, hint.index)
                                                               : tree_.reserve(r.begin, r.end);
        else
            reserved = tree_.reserve();
        if (!reserved) return no_nodes_for(r);
        return ok();
    }

    /// Assign on reserved nodes. Preconditions: r is valid, prepare_assign(r)
    /// succeeded and the map has not changed since. Cannot fail. Of the
    /// reservation left over, at most the next assignment's need plus two
    /// nodes stay pooled.
    /// Lock:      none; the owner serialises it against every other call.
    /// Cost:      O(log runs + runs removed).
    /// Allocates: nothing (frees the surplus of the reservation).
    /// Always inlined: a test, then one call.
    [[gnu::always_inline]] inline void commit_assign(page_range r, Value v) noexcept {
        if constexpr (dense)
            if (tree_.inside_one_chunk(r.begin, r.end)) return tree_.commit_inside(r.begin, v);  // as prepared
        tree_.commit_assign(r.begin, r.end, v);
    }

    /// Give reserved, unused nodes and blocks back to the allocator (after a
    /// prepare_assign whose assignment is abandoned), and a one-run dense map's
    /// direct array. Cannot fail.
    /// Lock:      none; the owner serialises it against every other call.
    /// Cost:      O(nodes and blocks reserved).
    /// Allocates: nothing.
    void abort_assign() noexcept { tree_.release(); }

    /// Value of page p. Precondition: p < size().
    /// Lock:      none (const: concurrent const calls are safe).
    /// Cost:      O(log runs) (dense: O(1) to the chunk, then a search of its
    ///            at most 4,096 boundaries); O(1) for a map of one run.
    [[nodiscard, gnu::always_inline]] Value at(page_index p) const noexcept { return tree_.at(p); }

    /// The runs overlapping r, clipped to r, in order. An empty window gives
    /// an empty view. Precondition: r.end <= size(). The view is valid
    /// until the map changes.
    /// Lock:      none (const).
    /// Cost:      O(1) to make; O(log runs) to begin, O(1) per run after that.
    /// Allocates: nothing.
    [[nodiscard]] run_view runs(page_range r) const noexcept { return run_view(&tree_, r); }

    /// Do all pages of r equal v? Precondition: r valid (check_range).
    /// Lock: none (const). Cost: O(log runs + runs in r); O(1) for a map of one run.
    [[nodiscard]] bool all_of(page_range r, Value v) const noexcept {
        assign_hint unused;
        return all_of(r, v, unused);
    }
    /// The same, leaving in `hint` what prepare_assign(r, hint) can reuse.
    /// Lock: none (const). Cost: as above.
    /// Always inlined: the one-page search and find_first_not are calls.
    [[nodiscard, gnu::always_inline]] inline bool all_of(page_range r, Value v, assign_hint& hint) const noexcept {
        hint.index = ~std::uint32_t{0};
        if (tree_.one_run()) return tree_.single() == v;  // one run: answered inline
        if constexpr (dense)
            if (r.end - r.begin == 1) return page_is(r.begin, v, hint);  // one page: a point lookup
        return find_first_not(r, v) == no_page;
    }

    /// First page of r whose value is not v, or no_page.
    /// Precondition: r valid (check_range).
    /// Lock: none (const). Cost: O(log runs + runs in r).
    [[nodiscard]] page_index find_first_not(page_range r, Value v) const noexcept {
        if (tree_.one_run()) return tree_.single() == v ? no_page : r.begin;  // one run: no walk
        if constexpr (dense) {  // two values: the first page, else the first boundary in r
            if (r.end - r.begin == 1)  // one page (a 4 KiB conversion): a point lookup, no boundary search
                return two_valued<Value>::value(tree_.bit_at(r.begin)) == v ? no_page : r.begin;
            bool first = false;
            const page_index q = tree_.next_boundary(r.begin, r.end, first);
            if (!(two_valued<Value>::value(first) == v)) return r.begin;
            return q < r.end ? q : no_page;
        }
        for (const run<Value>& x : runs(r))
            if (!(x.value == v)) return x.range.begin;
        return no_page;
    }

    /// Pages of r whose value is v. Precondition: r valid (check_range).
    /// Lock: none (const). Cost: O(log runs + runs in r).
    [[nodiscard]] std::uint64_t count(page_range r, Value v) const noexcept {
        std::uint64_t n = 0;
        for (const run<Value>& x : runs(r))
            if (x.value == v) n += x.range.size();
        return n;
    }

    /// Number of maximal runs (1 for a uniform map).
    /// Lock: none (const). Cost: O(1).
    [[nodiscard]] std::size_t run_count() const noexcept { return tree_.runs(); }

    /// Memory held now, in bytes: nodes, chunk blocks and the direct array,
    /// reserved ones included.
    /// Lock: none (const). Cost: O(1).
    [[nodiscard]] std::size_t memory_bytes() const noexcept { return tree_.memory_bytes(); }

    /// Invariant check for tests and fuzzers: coalesced (no equal adjacent
    /// runs), no empty runs, [0, size) covered, tree shape intact.
    /// Lock: none (const). Cost: O(nodes).
    [[nodiscard]] bool coalesced() const noexcept { return tree_.check(); }

    /// Same size and same runs (allocators and reservations are not
    /// compared).
    /// Lock: none (const). Cost: O(runs).
    friend bool operator==(const range_map& a, const range_map& b) noexcept {
        if (a.size() != b.size() || a.run_count() != b.run_count()) return false;
        const page_range all{0, a.size()};
        auto ra = a.runs(all);
        auto rb = b.runs(all);
        auto i = ra.begin();
        auto j = rb.begin();
        for (; i != ra.end(); ++i, ++j)
            if (!(*i == *j)) return false;
        return true;
    }

private:
    /// all_of of the one page p (a dense map of more than one run), out of
    /// line: the chunk search and the hint.
    [[gnu::noinline]] bool page_is(page_index p, Value v, assign_hint& hint) const noexcept {
        return two_valued<Value>::value(tree_.bit_at(p, hint.index)) == v;
    }
    [[gnu::cold, gnu::noinline]] static error no_nodes_for(page_range r) noexcept {
        return error::make(errc::out_of_memory, r.begin,
                           "no memory for range map nodes to assign [%#" PRIx64 ", %#" PRIx64 ")", r.begin, r.end);
    }
    tree_type tree_;
};

} // namespace guestmem
