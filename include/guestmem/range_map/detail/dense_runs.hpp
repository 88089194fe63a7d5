// guestmem/range_map/detail/dense_runs.hpp — the dense layout of a range map
// whose Value has two values (two_valued.hpp): only run boundaries are
// stored. The domain is cut into chunks of 2^16 pages, and a chunk is an
// immediate, an array of 16-bit offsets or a bitmap (chunk.hpp). The top
// maps chunk index -> chunk entry:
//  - up to 2^16 chunks (4 TiB), a direct array, 8 bytes per chunk, taken
//    by the first reserve that needs it and given back by release() once
//    the map is one run again;
//  - above that, a coalesced run tree (run_tree.hpp): runs of equal chunks
//    are one top run, so a sparse map over a 2^64-page domain costs O(runs).
// A dense chunk never costs more than 1/8 byte per page.
//
// Costs: at() O(1) to the chunk (tree top: O(log top runs)) + O(log 4096);
// assign() the same + the boundaries of the (at most two) partly covered
// chunks + the runs and whole chunks removed; a walk over the runs O(1)
// per boundary inside an array chunk, one lookup per chunk change. An
// assign of whole chunks of a direct top (a conversion of whole 1 GiB
// folios) reserves nothing and, when the range was one uniform value,
// costs a compare and a store per chunk plus its two neighbours.
//
// Infallible commits, as for the B+-tree: reserve(b, e) takes everything an
// assign of [b, e) to either value can need — chunk blocks for the (at most
// two) partly covered chunks, sized for the larger outcome, and the direct
// array or top-tree nodes for up to three top assigns — before anything
// changes. commit_assign() then only frees.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include <guestmem/core/types.hpp>
#include <guestmem/range_map/detail/chunk.hpp>
#include <guestmem/range_map/detail/dense_read.hpp>
#include <guestmem/range_map/detail/run_loader.hpp>
#include <guestmem/range_map/detail/run_tree.hpp>
#include <guestmem/range_map/two_valued.hpp>

namespace guestmem::detail {

template <class Value, class Allocator>
class dense_runs : public dense_read {
    using tv = two_valued<Value>;
    using top_tree = run_tree<chunk_entry, Allocator>;
    using word_alloc = typename std::allocator_traits<Allocator>::template rebind_alloc<std::uint64_t>;
    using word_traits = std::allocator_traits<word_alloc>;
    static constexpr std::uint32_t mask = chunk_pages - 1;

    /// [b, e) cut into whole chunks [full_lo, full_hi) and up to two partly
    /// covered chunks, each with its local range [lo, hi) (hi == 2^16 when
    /// the assign reaches the chunk's end or the map's end).
    struct parts {
        page_index full_lo = 0, full_hi = 0;
        unsigned n = 0;
        page_index chunk[2] = {};
        std::uint32_t lo[2] = {}, hi[2] = {};
        void partial(page_index c, std::uint32_t l, std::uint32_t h) noexcept {
            chunk[n] = c;
            lo[n] = l;
            hi[n++] = h;
        }
    };

    /// A partly covered chunk as reserve() found it, and the block it took.
    struct pending {
        chunk_entry entry = 0;
        chunk_block* fresh = nullptr;
        chunk_change change;
    };

public:
    dense_runs(page_index size, Value initial, const Allocator& a) noexcept
        : dense_read(&top_, size, tv::bit(initial)), top_(chunks_of(size), uniform_entry(tv::bit(initial)), a),
          words_(a), direct_(chunks_of(size) <= direct_top_chunks) {}
    dense_runs(dense_runs&& o) noexcept
        : dense_read(&top_, o.size_, o.single_bit_), top_(static_cast<top_tree&&>(o.top_)), words_(o.words_),
          direct_(o.direct_), block_words_(o.block_words_) {
        runs_ = o.runs_;
        dir_ = o.dir_;
        for (unsigned k = 0; k < 2; ++k) pending_[k] = o.pending_[k];
        o.top_.reset(uniform_entry(false));  // o's blocks and directory are ours now
        o.dir_ = nullptr;
        o.runs_ = 1;
        o.block_words_ = 0;
        o.pending_[0] = o.pending_[1] = pending{};
    }
    ~dense_runs() {
        release_pending();
        free_blocks(0, chunks_);
        free_dir();
    }

    // ---- read side ------------------------------------------------------

    [[nodiscard, gnu::always_inline]] Value at(page_index p) const noexcept { return tv::value(bit_at(p)); }
    [[nodiscard]] Value single() const noexcept { return tv::value(single_bit_); }
    /// Top-map nodes, chunk blocks and reserved blocks, in bytes.
    [[nodiscard]] std::size_t memory_bytes() const noexcept {
        std::size_t w = block_words_;
        for (const pending& p : pending_)
            if (p.fresh) w += p.fresh->words;
        return top_.memory_bytes() + w * 8 + (dir_ ? chunks_ * 8 : 0);
    }

    /// Structural check: a valid top map of canonical chunks, no boundary
    /// past the size, and the run count and block sizes it implies.
    [[nodiscard]] bool check() const noexcept {
        if (!top_.check() || top_.size() != chunks_of(size_)) return false;
        if (pending_[0].fresh || pending_[1].fresh) return false;
        std::size_t boundaries = 0, words = 0;
        bool ok = true, have_prev = false, prev_last = false;
        if (direct_ && !top_.one_run()) return false;  // the tree top stays unused
        const std::uint32_t last_len = std::uint32_t(size_ - ((chunks_ - 1) << chunk_shift));
        for_each_top_run(0, chunks_, [&](page_index c0, page_index c1, chunk_entry e) {
            if (!chunk_ok(e, c1 == chunks_ ? last_len : chunk_pages)) ok = false;
            if (!is_immediate(e)) {
                if (c1 - c0 != 1) ok = false;  // a block belongs to one chunk
                words += block_of(e)->words;
            }
            const std::size_t inside = chunk_boundaries(e);
            boundaries += inside * (c1 - c0);
            if (have_prev && prev_last != chunk_first(e)) ++boundaries;
            if (chunk_last(e) != chunk_first(e)) boundaries += c1 - c0 - 1;
            have_prev = true;
            prev_last = chunk_last(e);
        });
        if (runs_ == 1 && single_bit_ != chunk_first(top_at(0))) return false;
        return ok && words == block_words_ && runs_ == boundaries + 1 &&
               (runs_ > 1 || top_.one_run() || direct_) && (!direct_ || runs_ == 1 || dir_);
    }

    // ---- write side -------------------------------------------------------

    /// Take what commit_assign(b, e, either value) needs. All or nothing;
    /// false when the allocator refused (the map is unchanged).
    [[nodiscard, gnu::always_inline]] bool reserve(page_index b, page_index e) noexcept {
        if (whole_direct(b, e)) {  // whole chunks of an existing direct top: nothing to take
            release_pending();
            return true;
        }
        return reserve_parts(b, e);
    }

private:
    [[nodiscard, gnu::noinline]] bool reserve_parts(page_index b, page_index e) noexcept {
        release_pending();
        const parts P = split(b, e);
        for (unsigned k = 0; k < P.n; ++k) {
            const chunk_entry old = top_at(P.chunk[k]);
            pending_[k].entry = old;
            pending_[k].change = chunk_change(old, P.lo[k], P.hi[k]);
            const std::uint32_t most = pending_[k].change.most();
            const block_need need = block_words_for(old, most);
            if (need.words == 0) continue;
            chunk_block* blk = allocate_block(need);
            if (blk == nullptr) {
                release_pending();
                return false;
            }
            pending_[k].fresh = blk;
        }
        if (direct_ ? !make_dir() : !top_.reserve(P.n + (P.full_lo < P.full_hi))) {
            release_pending();
            return false;
        }
        return true;
    }

public:
    /// Give back what reserve() took and commit_assign() did not use, and
    /// the top map's spare nodes.
    void release() noexcept {
        release_pending();
        if (!direct_)
            top_.release();
        else if (runs_ == 1)
            free_dir();
    }

    /// Give back the chunk blocks reserve() took and commit_assign() did not use.
    /// Inline test: most reserves take no block (a rewrite in place).
    [[gnu::always_inline]] void release_pending() noexcept {
        if (pending_[0].fresh != nullptr || pending_[1].fresh != nullptr) release_blocks();
    }

private:
    [[gnu::noinline]] void release_blocks() noexcept {
        for (pending& p : pending_) {
            if (p.fresh) deallocate_block(p.fresh);
            p.fresh = nullptr;  // entry and change are rewritten by the next reserve
        }
    }

public:

    /// Assign [b, e) := v. Preconditions: b < e <= size(); reserve(b, e)
    /// succeeded and nothing changed since. Cannot fail; only frees.
    [[gnu::always_inline]] void commit_assign(page_index b, page_index e, Value value) noexcept {
        if (whole_direct(b, e))  // reserve() took nothing: nothing to give back
            whole_chunks(b >> chunk_shift, chunks_of(e), tv::bit(value));
        else
            commit_parts(b, e, tv::bit(value));
    }

private:
    [[gnu::noinline]] void commit_parts(page_index b, page_index e, bool v) noexcept {
        const parts P = split(b, e);
        if (P.n == 1 && P.full_lo == P.full_hi && P.lo[0] > 0 && P.hi[0] < chunk_pages) {
            // Inside one chunk, away from its edges: only that chunk's own
            // boundaries change.
            const chunk_entry old = pending_[0].entry;
            const std::size_t before = chunk_boundaries(old);
            const chunk_entry now = rewrite(pending_[0], v);
            runs_ = runs_ - before + chunk_boundaries(now);
            if (now != old) set_top(P.chunk[0], P.chunk[0] + 1, now, true);
            if (runs_ == 1) single_bit_ = chunk_first(now);
            release_pending();
            return;
        }
        const page_index wlo = b ? b - 1 : 0, whi = e < size_ ? e + 1 : size_;
        if (direct_ && P.n == 0) {  // whole chunks of a direct top: count as we go
            whole_chunks(P.full_lo, P.full_hi, v);
            release_pending();
            return;
        }
        const std::size_t before = boundaries_between(wlo, whi);
        // After the change the window [b-1, e+1) holds at most two
        // boundaries: at b and at e, where a neighbour differs from v.
        const std::size_t after = (b > 0 && bit_at(b - 1) != v) + (e < size_ && bit_at(e) != v);
        if (P.full_lo < P.full_hi) {
            free_blocks(P.full_lo, P.full_hi);
            set_top(P.full_lo, P.full_hi, uniform_entry(v), false);
        }
        for (unsigned k = 0; k < P.n; ++k) {
            const chunk_entry now = rewrite(pending_[k], v);
            if (now != pending_[k].entry) set_top(P.chunk[k], P.chunk[k] + 1, now, false);
        }
        if (!direct_) top_.trim_pool();
        release_pending();
        runs_ = runs_ - before + after;
        if (runs_ == 1) single_bit_ = chunk_first(top_at(0));
    }

public:
    /// [lo, hi) := v for whole chunks of a direct top. A range of one
    /// uniform value (the whole-folio conversion) is rewritten inline in
    /// one compare-and-store pass and its two neighbours give the run
    /// count; anything else takes mixed_chunks: one pass that counts the
    /// boundaries it removes (at lo's start, inside, at hi's start) and
    /// frees the blocks, then the two neighbours say what is left.
    [[gnu::always_inline]] void whole_chunks(page_index lo, page_index hi, bool v) noexcept {
        const chunk_entry u = uniform_entry(v);
        const chunk_entry w = dir_[lo];
        if ((w | 2u) == uniform_entry(true) && w != u) {
            // [lo, hi) one uniform value before (a whole-folio conversion):
            // only the two edges can hold boundaries, before and after. The
            // entries are rewritten as they are compared; a chunk that
            // differs puts the ones before it back and takes the full pass.
            page_index c = lo;
            do dir_[c++] = u;
            while (c < hi && dir_[c] == w);
            if (c == hi) [[likely]] {
                const bool was = (w >> 1) & 1u;
                // The boundary at lo (at hi) appears when that neighbour was
                // equal to the old value, and goes when it differed.
                if (lo > 0) runs_ = fast_last(dir_[lo - 1]) == was ? runs_ + 1 : runs_ - 1;
                if (hi < chunks_) runs_ = fast_first(dir_[hi]) == was ? runs_ + 1 : runs_ - 1;
                if (runs_ == 1) single_bit_ = v;
                return;
            }
            while (c > lo) dir_[--c] = w;
        }
        mixed_chunks(lo, hi, v);
    }

private:
    [[gnu::noinline]] void mixed_chunks(page_index lo, page_index hi, bool v) noexcept {
        std::size_t before = 0;
        bool prev = lo > 0 && chunk_last(dir_[lo - 1]);
        for (page_index c = lo; c < hi; ++c) {
            const chunk_entry e = dir_[c];
            if ((e | 2u) == uniform_entry(true)) {  // uniform: the common case, no boundary inside
                const bool u = (e >> 1) & 1u;
                before += c > 0 && u != prev;
                prev = u;
            } else {
                before += (c > 0 && chunk_first(e) != prev) + chunk_boundaries(e);
                prev = chunk_last(e);
                if (!is_immediate(e)) free_block(mutable_block_of(e));
            }
            dir_[c] = uniform_entry(v);
        }
        if (hi < chunks_ && chunk_first(dir_[hi]) != prev) ++before;
        const std::size_t after = (lo > 0 && chunk_last(dir_[lo - 1]) != v) + (hi < chunks_ && chunk_first(dir_[hi]) != v);
        runs_ = runs_ - before + after;
        if (runs_ == 1) single_bit_ = v;
    }

public:

    /// Replace every run with the n runs next() yields as (length, value).
    /// Preconditions as range_map::load (a length of 0 stops the load).
    /// The map is unchanged unless the outcome is loaded.
    template <class Next>
    [[nodiscard]] load_outcome load(std::size_t n, Next& next) noexcept;  // range_map/detail/dense_load.hpp

    // ---- one chunk's inside (a 4 KiB conversion) ------------------------------

    /// Is [b, e) inside one chunk, clear of its first page and of its end
    /// (and of the map's), with the direct top allocated? Then only that
    /// chunk's own boundaries change, and reserve_inside / commit_inside do
    /// what reserve / commit_assign do, without cutting the range into
    /// parts. Precondition: b < e <= size(). O(1).
    [[nodiscard, gnu::always_inline]] bool inside_one_chunk(page_index b, page_index e) const noexcept {
        return dir_ != nullptr && ((b ^ (e - 1)) >> chunk_shift) == 0 && (b & mask) != 0 && (e & mask) != 0 &&
               e != size_;
    }
    /// reserve(b, e) when inside_one_chunk(b, e): the same blocks taken,
    /// the same result.
    /// `guess`: see chunk_change (any value is safe).
    [[nodiscard]] bool reserve_inside(page_index b, page_index e, std::uint32_t guess) noexcept {
        release_pending();
        pending& p = pending_[0];
        p.entry = dir_[b >> chunk_shift];
        p.change = chunk_change(p.entry, std::uint32_t(b) & mask, std::uint32_t(e) & mask, guess);
        const block_need need = block_words_for(p.entry, p.change.most());
        if (need.words == 0) return true;
        p.fresh = allocate_block(need);
        return p.fresh != nullptr;
    }
    /// commit_assign(b, e, value) after reserve_inside(b, e) (so
    /// inside_one_chunk(b, e) still holds): the same change.
    void commit_inside(page_index b, Value value) noexcept {
        const chunk_entry old = pending_[0].entry;
        const std::size_t before = chunk_boundaries(old);
        const chunk_entry now = rewrite(pending_[0], tv::bit(value));
        runs_ = runs_ - before + chunk_boundaries(now);
        dir_[b >> chunk_shift] = now;
        if (runs_ == 1) single_bit_ = chunk_first(now);
        release_pending();
    }

private:
    /// [b, e) is whole chunks (it may end at the map's end) of a direct top
    /// that exists: no partly covered chunk, nothing to reserve.
    [[nodiscard, gnu::always_inline]] bool whole_direct(page_index b, page_index e) const noexcept {
        // b's offset first: a partial assign (a 4 KiB conversion) leaves at the first test.
        return (b & mask) == 0 && ((e & mask) == 0 || e == size_) && dir_ != nullptr;
    }
    /// chunk_first / chunk_last with the immediate case inline.
    [[nodiscard, gnu::always_inline]] static bool fast_first(chunk_entry e) noexcept {
        return is_immediate(e) ? (e >> 1) & 1u : chunk_first(e);
    }
    [[nodiscard, gnu::always_inline]] static bool fast_last(chunk_entry e) noexcept {
        return is_immediate(e) ? ((e >> 1) ^ (e >> 2)) & 1u : chunk_last(e);
    }

    [[nodiscard]] parts split(page_index b, page_index e) const noexcept {
        parts P;
        const page_index cb = b >> chunk_shift, ce = (e - 1) >> chunk_shift;
        const std::uint32_t ob = std::uint32_t(b) & mask;
        const std::uint32_t he = (e == size_ || (e & mask) == 0) ? chunk_pages : std::uint32_t(e) & mask;
        if (cb == ce) {
            if (ob == 0 && he == chunk_pages) {
                P.full_lo = cb;
                P.full_hi = cb + 1;
            } else {
                P.partial(cb, ob, he);
            }
            return P;
        }
        P.full_lo = cb;
        if (ob != 0) {
            P.partial(cb, ob, chunk_pages);
            P.full_lo = cb + 1;
        }
        P.full_hi = ce + 1;
        if (he != chunk_pages) {
            P.partial(ce, 0, he);
            P.full_hi = ce;
        }
        return P;
    }

    struct block_need {
        std::uint32_t words;  // 0: no new block
        bool bitmap;
    };

    /// The block a chunk needs for up to `most` boundaries: none (words 0)
    /// when it becomes an immediate or can be rewritten in place. A bitmap
    /// stays one while either outcome keeps >= to_array_below boundaries
    /// (the two outcomes differ by at most two); an array is rewritten in
    /// place while it has room and is less than twice the size it needs.
    [[nodiscard]] static block_need block_words_for(chunk_entry old, std::uint32_t most) noexcept {
        if (most <= immediate_max) return {0, false};
        const bool was_block = !is_immediate(old);
        if (was_block && block_of(old)->bitmap())
            return most >= to_array_below + 2 ? block_need{0, false} : block_need{array_block_words(most), false};
        if (most > to_bitmap_above) return {bitmap_block_words, true};
        if (was_block && block_of(old)->capacity >= most && block_of(old)->words <= 2 * array_block_words(most))
            return {0, false};
        return {array_block_words(most), false};
    }

    /// The chunk's new entry after [lo, hi) := v, written in place, into the
    /// reserved block, or as an immediate; frees the block it replaces.
    chunk_entry rewrite(pending& p, bool v) noexcept {
        const chunk_entry old = p.entry;
        const chunk_change& c = p.change;
        const std::uint32_t lo = c.lo, hi = c.hi;
        const std::uint32_t count = c.after(v);
        const bool first = lo == 0 ? v : chunk_first(old);
        chunk_block* ob = is_immediate(old) ? nullptr : mutable_block_of(old);
        if (count <= immediate_max) {
            std::uint16_t off[immediate_max];
            std::uint32_t n = 0;
            rewritten_boundaries(old, c, v, [&](std::uint32_t q) { off[n++] = std::uint16_t(q); });
            if (ob) free_block(ob);
            return pack_immediate(first, off, n);
        }
        chunk_block* nb = p.fresh;
        if (nb == nullptr) {  // in place
            if (ob->bitmap()) {
                bitmap_fill(ob->bits(), lo, hi, v);
            } else {
                std::uint16_t* o = ob->offsets();
                const std::uint32_t news = c.at_lo[v] + c.at_hi[v];
                const std::uint32_t from = ob->count - c.kept_above;
                std::memmove(o + c.kept_below + news, o + from, c.kept_above * sizeof(std::uint16_t));
                std::uint16_t* w = o + c.kept_below;
                if (c.at_lo[v]) *w++ = std::uint16_t(lo);
                if (c.at_hi[v]) *w++ = std::uint16_t(hi);
                ob->first = first;
            }
            ob->count = count;
            return old;
        }
        p.fresh = nullptr;
        block_words_ += nb->words;
        nb->count = count;
        nb->first = first;
        if (nb->bitmap()) {
            bitmap_from(nb->bits(), first, [&](auto&& emit) { rewritten_boundaries(old, c, v, emit); });
        } else {
            std::uint16_t* w = nb->offsets();
            rewritten_boundaries(old, c, v, [&](std::uint32_t q) { *w++ = std::uint16_t(q); });
        }
        if (ob) free_block(ob);
        return reinterpret_cast<chunk_entry>(nb);
    }

    /// Calls f(c0, c1, entry) for each top run overlapping chunks [lo, hi),
    /// clipped to it.
    template <class F>
    void for_each_top_run(page_index lo, page_index hi, F&& f) const noexcept {
        if (direct_) {
            if (dir_ == nullptr) return f(lo, hi, uniform_entry(single_bit_));
            for (page_index c = lo; c < hi; ++c) f(c, c + 1, dir_[c]);
            return;
        }
        page_index c = lo;
        while (c < hi) {
            page_index end;
            const chunk_entry e = top_.at(c, end);
            f(c, end < hi ? end : hi, e);
            c = end;
        }
    }

    void free_blocks(page_index lo, page_index hi) noexcept {
        if (block_words_ == 0) return;
        for_each_top_run(lo, hi, [&](page_index, page_index, chunk_entry e) {
            if (!is_immediate(e)) free_block(mutable_block_of(e));
        });
    }

    [[nodiscard]] chunk_block* allocate_block(block_need need) noexcept {
        std::uint64_t* w = word_traits::allocate(words_, need.words);
        if (w == nullptr) return nullptr;
        chunk_block* b = ::new (static_cast<void*>(w)) chunk_block{};
        b->words = need.words;
        b->capacity = need.bitmap ? 0 : (need.words - header_words) * 4;
        return b;
    }

    /// load()'s pass over the runs, into this fresh map: boundaries gather
    /// per chunk in `scratch`; each finished chunk becomes an immediate, an
    /// exact-size array or a bitmap, and one top assign (runs of whole
    /// chunks: one top assign for all of them). Not loaded when the
    /// allocator refused or a length was 0 (the caller then drops this map).
    /// Calls a copy of `source` (state it holds by value stays in the copy).
    template <class Next>
    [[nodiscard]] load_outcome fill(std::size_t n, Next& source, std::uint16_t* scratch) noexcept;  // dense_load.hpp
    void deallocate_block(chunk_block* b) noexcept {
        const std::uint32_t words = b->words;
        b->~chunk_block();
        word_traits::deallocate(words_, reinterpret_cast<std::uint64_t*>(b), words);
    }
    void free_block(chunk_block* b) noexcept {
        block_words_ -= b->words;
        deallocate_block(b);
    }

    /// A chunk of `len` pages is canonical: the encoding its count calls
    /// for (with the hysteresis), ascending offsets in [1, len).
    [[nodiscard]] static bool chunk_ok(chunk_entry e, std::uint32_t len) noexcept {
        std::uint32_t prev = 0, n = 0;
        bool ok = true;
        for_each_boundary(e, [&](std::uint32_t q) {
            if (q <= prev || q >= len) ok = false;
            prev = q;
            ++n;
        });
        if (!ok || n != chunk_boundaries(e)) return false;
        if (is_immediate(e)) return (e & 0xfff0u) == 0 && n <= immediate_max && pack_immediate((e >> 1) & 1u, immediate(e).off, n) == e;
        const chunk_block* b = block_of(e);
        if (b->bitmap()) return n >= to_array_below && b->words == bitmap_block_words && chunk_last(e) == chunk_value(e, len - 1);
        return n > immediate_max && n <= to_bitmap_above && n <= b->capacity && b->capacity == (b->words - header_words) * 4;
    }

    /// Entry of chunk c, whatever the top's form.
    [[nodiscard]] chunk_entry top_at(page_index c) const noexcept {
        if (!direct_) return top_.at(c);
        return dir_ ? dir_[c] : uniform_entry(single_bit_);
    }
    /// Chunks [lo, hi) := e (the direct top must exist).
    void set_top(page_index lo, page_index hi, chunk_entry e, bool trim) noexcept {
        if (direct_) {
            for (page_index c = lo; c < hi; ++c) dir_[c] = e;
        } else {
            top_.commit_assign(lo, hi, e, trim);
        }
    }
    /// Allocate the direct top (every chunk uniform) unless it exists.
    [[nodiscard]] bool make_dir() noexcept {
        if (dir_) return true;
        dir_ = word_traits::allocate(words_, chunks_);
        if (dir_ == nullptr) return false;
        for (page_index c = 0; c < chunks_; ++c) dir_[c] = uniform_entry(single_bit_);
        return true;
    }
    void free_dir() noexcept {
        if (dir_) word_traits::deallocate(words_, dir_, chunks_);
        dir_ = nullptr;
    }

    top_tree top_;
    [[no_unique_address]] word_alloc words_;
    bool direct_;  // the top is a direct array (chunks_ <= direct_top_chunks)
    std::size_t block_words_ = 0;  // words held by chunk blocks (reserved ones apart)
    pending pending_[2];
};

} // namespace guestmem::detail

#include <guestmem/range_map/detail/dense_load.hpp>
