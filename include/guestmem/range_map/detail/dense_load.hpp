/// @file
/// dense_runs' load side, declared in dense_runs.hpp: load() replaces every
/// run with the runs a source yields, building the chunks straight from the
/// boundaries (no per-run assign) in a fresh map that takes the old one's
/// place only when the whole load succeeded; fill() is its pass over the
/// runs. Included by dense_runs.hpp; not a header of its own. Cost: O(runs +
/// chunks); allocates the chunk blocks and top nodes the runs need, and a
/// 128 KiB scratch array for the duration of the load.
#pragma once

#include <cstring>

#include <guestmem/range_map/detail/dense_runs.hpp>

namespace guestmem::detail {

template <class Value, class Allocator>
template <class Next>
inline load_outcome dense_runs<Value, Allocator>::load(std::size_t n, Next& next) noexcept {
    if (n == 1) {
        const auto r = next();
        if (r.first == 0) return load_outcome::stopped;
        release_pending();
        free_blocks(0, chunks_);
        free_dir();
        top_.reset(uniform_entry(tv::bit(r.second)));
        top_.release();  // one run holds no node, spare ones included
        runs_ = 1;
        single_bit_ = tv::bit(r.second);
        block_words_ = 0;
        return load_outcome::loaded;
    }
    dense_runs fresh(size_, Value{}, Allocator(words_));
    std::uint64_t* scratch = word_traits::allocate(words_, chunk_pages / 4);  // 2^16 offsets
    if (scratch == nullptr) return load_outcome::no_memory;
    const load_outcome out = fresh.fill(n, next, reinterpret_cast<std::uint16_t*>(scratch));
    word_traits::deallocate(words_, scratch, chunk_pages / 4);
    if (out != load_outcome::loaded) return out;  // fresh gives back what it took
    release_pending();
    free_blocks(0, chunks_);
    free_dir();
    top_.~top_tree();
    ::new (static_cast<void*>(&top_)) top_tree(static_cast<top_tree&&>(fresh.top_));
    fresh.top_.reset(uniform_entry(false));
    dir_ = fresh.dir_;
    fresh.dir_ = nullptr;
    runs_ = fresh.runs_;
    block_words_ = fresh.block_words_;
    fresh.block_words_ = 0;
    return load_outcome::loaded;
}

template <class Value, class Allocator>
template <class Next>
inline load_outcome dense_runs<Value, Allocator>::fill(std::size_t n, Next& source, std::uint16_t* scratch) noexcept {
    constexpr load_outcome no_memory = load_outcome::no_memory;
    // A copy the compiler can keep in registers: a source that holds its
    // state by value (restore's decoder) is then not stored and reloaded
    // around every run (blocks and the top are written in the loop).
    Next next(source);
    const auto r0 = next();
    if (r0.first == 0) return load_outcome::stopped;
    bool cur = tv::bit(r0.second);
    page_index pos = r0.first;
    top_.reset(uniform_entry(cur));
    single_bit_ = cur;
    if (direct_ && !make_dir()) return no_memory;
    page_index chunk = 0;
    bool first = cur;
    std::uint32_t k = 0;
    auto put = [&](page_index lo, page_index hi, chunk_entry e) {
        if (!direct_ && !top_.reserve()) return false;
        set_top(lo, hi, e, true);
        return true;
    };
    auto finish = [&]() -> bool {
        chunk_entry e;
        if (k <= immediate_max) {
            e = pack_immediate(first, scratch, k);
        } else {
            const bool bitmap = k > to_bitmap_above;
            chunk_block* b = allocate_block({bitmap ? bitmap_block_words : array_block_words(k), bitmap});
            if (b == nullptr) return false;
            block_words_ += b->words;
            b->count = k;
            b->first = first;
            if (bitmap)
                bitmap_from(b->bits(), first, [&](auto&& emit) {
                    for (std::uint32_t i = 0; i < k; ++i) emit(std::uint32_t{scratch[i]});
                });
            else
                std::memcpy(b->offsets(), scratch, k * sizeof(std::uint16_t));
            e = reinterpret_cast<chunk_entry>(b);
        }
        if (!put(chunk, chunk + 1, e)) {
            if (!is_immediate(e)) free_block(mutable_block_of(e));
            return false;
        }
        return true;
    };
    for (std::size_t i = 1; i < n; ++i) {
        const auto r = next();
        if (r.first == 0) [[unlikely]]
            return load_outcome::stopped;
        const page_index c = pos >> chunk_shift;
        if (c != chunk) {
            if (!finish()) return no_memory;
            if (c > chunk + 1 && !put(chunk + 1, c, uniform_entry(cur))) return no_memory;
            chunk = c;
            first = cur;
            k = 0;
        }
        if (const std::uint32_t off = std::uint32_t(pos) & mask; off != 0)
            scratch[k++] = std::uint16_t(off);
        else
            first = tv::bit(r.second);
        cur = tv::bit(r.second);
        pos += r.first;
    }
    if (!finish()) return no_memory;
    if (chunk + 1 < chunks_ && !put(chunk + 1, chunks_, uniform_entry(cur))) return no_memory;
    runs_ = n;
    return load_outcome::loaded;
}

} // namespace guestmem::detail
