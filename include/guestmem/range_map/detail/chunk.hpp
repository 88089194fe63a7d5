// guestmem/range_map/detail/chunk.hpp — one chunk of 2^16 pages of the dense
// two-valued range map (dense_runs.hpp): how its run boundaries are encoded,
// read and rewritten.
//
// A chunk is described by its value at offset 0 ("first") and its
// boundaries: the offsets q in [1, 2^16) where the value of page q differs
// from page q-1. Three encodings, chosen by the boundary count, as roaring
// chooses its containers:
//  - immediate (0..3 boundaries): packed into the 64-bit entry itself, no
//    allocation. bit 0 = 1 (the tag), bit 1 = first, bits 2-3 = count,
//    bits 16-63 = up to three 16-bit offsets, ascending, unused ones 0;
//  - array (4..4096): a block of a 16-byte header and sorted 16-bit offsets,
//    2 bytes per boundary;
//  - bitmap (more than 4096; back to an array below 2048): one bit per
//    page, 8 KiB, so a chunk never costs more than 1/8 byte per page.
// An entry with bit 0 clear is a pointer to the block. Equal immediate
// entries mean equal chunks, so the top map may coalesce them.
//
// The last chunk of a map whose size is not a multiple of 2^16 is padded:
// the pages past the size carry the last page's value (assigns that reach
// the map's end extend to the chunk's end), so they never hold a boundary.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace guestmem::detail {

inline constexpr unsigned chunk_shift = 16;
inline constexpr std::uint32_t chunk_pages = std::uint32_t{1} << chunk_shift;
inline constexpr std::uint32_t chunk_words = chunk_pages / 64;  // a bitmap's 64-bit words
inline constexpr std::uint32_t immediate_max = 3;
inline constexpr std::uint32_t to_bitmap_above = 4096;  // an array of more boundaries becomes a bitmap
inline constexpr std::uint32_t to_array_below = 2048;   // a bitmap of fewer boundaries becomes an array

using chunk_entry = std::uint64_t;

/// A chunk of one value: no boundary.
constexpr chunk_entry uniform_entry(bool v) noexcept { return 1u | (chunk_entry{v} << 1); }
constexpr bool is_immediate(chunk_entry e) noexcept { return (e & 1u) != 0; }

/// Header of an array or bitmap block; the offsets or words follow it.
struct chunk_block {
    std::uint32_t count;     // boundaries
    std::uint32_t capacity;  // offset slots of an array; 0 for a bitmap
    std::uint32_t words;     // size of the allocation in 64-bit words (header included)
    std::uint32_t first;     // value at offset 0 (arrays; a bitmap's bit 0 says it)

    [[nodiscard]] bool bitmap() const noexcept { return capacity == 0; }
    [[nodiscard]] std::uint16_t* offsets() noexcept { return reinterpret_cast<std::uint16_t*>(this + 1); }
    [[nodiscard]] const std::uint16_t* offsets() const noexcept {
        return reinterpret_cast<const std::uint16_t*>(this + 1);
    }
    [[nodiscard]] std::uint64_t* bits() noexcept { return reinterpret_cast<std::uint64_t*>(this + 1); }
    [[nodiscard]] const std::uint64_t* bits() const noexcept { return reinterpret_cast<const std::uint64_t*>(this + 1); }
};
static_assert(sizeof(chunk_block) == 16);

inline constexpr std::uint32_t header_words = sizeof(chunk_block) / 8;
inline constexpr std::uint32_t bitmap_block_words = header_words + chunk_words;

/// Allocation size (words) of an array block for `n` boundaries, with a
/// little room to grow: slots rounded up to a multiple of 4 (one word).
constexpr std::uint32_t array_block_words(std::uint32_t n) noexcept { return header_words + (n + n / 8 + 7) / 4; }

inline const chunk_block* block_of(chunk_entry e) noexcept { return reinterpret_cast<const chunk_block*>(e); }
inline chunk_block* mutable_block_of(chunk_entry e) noexcept { return reinterpret_cast<chunk_block*>(e); }

/// Number of the n ascending offsets that are <= x: a branchless binary
/// search (conditional moves; the comparisons are coin tosses for random
/// pages). The first probe, at the largest power of two k <= n, leaves a
/// window of k + 1 candidate counts; each further step halves a power of
/// two (a shift, a load, a compare, a conditional move, no length to keep).
[[nodiscard, gnu::always_inline]] inline std::uint32_t count_le(const std::uint16_t* a, std::uint32_t n,
                                                                std::uint32_t x) noexcept {
    if (n == 0) return 0;
    std::uint32_t step = std::bit_floor(n);
    // a[k-1] <= x: the count is in [k, n], inside [n-k, n] (n < 2k); else in [0, k).
    const std::uint16_t* base = a;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    // A conditional move, never a branch (GCC compiles `?:` here into a
    // jump that mispredicts half the steps; see rm_search_step).
    {
        const std::uint16_t* moved = a + (n - step);
        const std::uint32_t key = a[step - 1];
        __asm__("cmpl %[k], %[x]\n\tcmovaeq %[m], %[b]" : [b] "+r"(base) : [k] "r"(key), [x] "r"(x), [m] "r"(moved) : "cc");
    }
    // The half step in bytes (2 * step / 2): one scaled address for the
    // probe, one for the move.
    for (std::uintptr_t bytes = step; bytes > 1; bytes >>= 1) {
        const auto at = reinterpret_cast<std::uintptr_t>(base) + bytes;
        const std::uint32_t key = *reinterpret_cast<const std::uint16_t*>(at - 2);
        const std::uint16_t* moved = reinterpret_cast<const std::uint16_t*>(at);
        __asm__("cmpl %[k], %[x]\n\tcmovaeq %[m], %[b]" : [b] "+r"(base) : [k] "r"(key), [x] "r"(x), [m] "r"(moved) : "cc");
    }
#else
    base += (n - step) & (0u - static_cast<std::uint32_t>(a[step - 1] <= x));
    for (step >>= 1; step != 0; step >>= 1) base += step & (0u - static_cast<std::uint32_t>(base[step - 1] <= x));
#endif
    // The window is [i, i + 1] with i = base - a < n.
    return static_cast<std::uint32_t>(base - a) + (*base <= x);
}

/// A chunk's immediate offsets, unpacked.
struct immediate {
    std::uint16_t off[immediate_max];
    std::uint32_t n;
    bool first;
    explicit immediate(chunk_entry e) noexcept
        : off{std::uint16_t(e >> 16), std::uint16_t(e >> 32), std::uint16_t(e >> 48)},
          n(std::uint32_t(e >> 2) & 3u), first((e >> 1) & 1u) {}
};

constexpr chunk_entry pack_immediate(bool first, const std::uint16_t* off, std::uint32_t n) noexcept {
    chunk_entry e = 1u | (chunk_entry{first} << 1) | (chunk_entry{n} << 2);
    for (std::uint32_t i = 0; i < n; ++i) e |= chunk_entry{off[i]} << (16 * (i + 1));
    return e;
}

// ---- bitmaps ----------------------------------------------------------------

/// Word i of a bitmap's boundary mask: bit j set when page 64i+j differs
/// from page 64i+j-1 (bit 0 of word 0 is never set).
[[nodiscard]] inline std::uint64_t boundary_word(const std::uint64_t* w, std::uint32_t i) noexcept {
    const std::uint64_t carry = i ? w[i - 1] >> 63 : w[0] & 1u;
    return w[i] ^ ((w[i] << 1) | carry);
}

[[nodiscard]] inline std::uint32_t bitmap_boundaries(const std::uint64_t* w) noexcept {
    std::uint32_t n = 0;
    for (std::uint32_t i = 0; i < chunk_words; ++i) n += static_cast<std::uint32_t>(std::popcount(boundary_word(w, i)));
    return n;
}

/// Boundaries at offsets in [lo, hi] (inclusive, hi < 2^16).
[[nodiscard]] inline std::uint32_t bitmap_boundaries_in(const std::uint64_t* w, std::uint32_t lo,
                                                        std::uint32_t hi) noexcept {
    std::uint32_t n = 0;
    for (std::uint32_t i = lo / 64; i <= hi / 64; ++i) {
        std::uint64_t m = boundary_word(w, i);
        if (i == lo / 64) m &= ~std::uint64_t{0} << (lo % 64);
        if (i == hi / 64 && hi % 64 != 63) m &= (std::uint64_t{1} << (hi % 64 + 1)) - 1;
        n += static_cast<std::uint32_t>(std::popcount(m));
    }
    return n;
}

/// Set pages [lo, hi) (hi <= 2^16) of a bitmap to v.
inline void bitmap_fill(std::uint64_t* w, std::uint32_t lo, std::uint32_t hi, bool v) noexcept {
    while (lo < hi) {
        const std::uint32_t i = lo / 64, s = lo % 64;
        const std::uint32_t n = (hi - lo < 64 - s) ? hi - lo : 64 - s;
        const std::uint64_t m = (n == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << n) - 1)) << s;
        w[i] = v ? (w[i] | m) : (w[i] & ~m);
        lo += n;
    }
}

// ---- reading a chunk ----------------------------------------------------------

/// Value at offset `off` of the chunk `e`.
[[nodiscard, gnu::always_inline]] inline bool chunk_value(chunk_entry e, std::uint32_t off) noexcept {
    if (is_immediate(e)) {
        const std::uint32_t n = std::uint32_t(e >> 2) & 3u;
        const std::uint32_t c = (n > 0 && std::uint16_t(e >> 16) <= off) + (n > 1 && std::uint16_t(e >> 32) <= off) +
                                (n > 2 && std::uint16_t(e >> 48) <= off);
        return ((e >> 1) ^ c) & 1u;
    }
    const chunk_block* b = block_of(e);
    if (b->bitmap()) return (b->bits()[off / 64] >> (off % 64)) & 1u;
    return (b->first ^ count_le(b->offsets(), b->count, off)) & 1u;
}

/// chunk_value(e, off), and in `index` the count of boundaries <= off of
/// an array or immediate chunk (~0 for a bitmap): a guess chunk_change may
/// reuse for the same offset (see chunk_change).
[[nodiscard, gnu::always_inline]] inline bool chunk_value(chunk_entry e, std::uint32_t off, std::uint32_t& index) noexcept {
    index = ~std::uint32_t{0};
    if (is_immediate(e)) return chunk_value(e, off);
    const chunk_block* b = block_of(e);
    if (b->bitmap()) return (b->bits()[off / 64] >> (off % 64)) & 1u;
    index = count_le(b->offsets(), b->count, off);
    return (b->first ^ index) & 1u;
}

[[nodiscard]] inline bool chunk_first(chunk_entry e) noexcept {
    if (is_immediate(e)) return (e >> 1) & 1u;
    const chunk_block* b = block_of(e);
    return b->bitmap() ? (b->bits()[0] & 1u) : b->first != 0;
}

[[nodiscard]] inline std::uint32_t chunk_boundaries(chunk_entry e) noexcept {
    return is_immediate(e) ? std::uint32_t(e >> 2) & 3u : block_of(e)->count;
}

/// Value of the chunk's last page (offset 2^16 - 1; padding included).
[[nodiscard]] inline bool chunk_last(chunk_entry e) noexcept {
    if (!is_immediate(e) && block_of(e)->bitmap()) return block_of(e)->bits()[chunk_words - 1] >> 63;
    return (chunk_first(e) ^ chunk_boundaries(e)) & 1u;
}

/// Smallest boundary offset > off, or chunk_pages when there is none; and
/// the value at off, from the same search. For an array chunk, *at (when
/// given) points to the boundary returned, so a caller can step to the
/// next ones without searching; otherwise it is set to null.
[[nodiscard]] inline std::uint32_t chunk_next_boundary(chunk_entry e, std::uint32_t off, bool& value,
                                                       const std::uint16_t** at = nullptr) noexcept {
    if (at) *at = nullptr;
    if (is_immediate(e)) {
        const immediate im(e);
        std::uint32_t i = 0;
        while (i < im.n && im.off[i] <= off) ++i;
        value = (im.first ^ i) & 1u;
        return i < im.n ? im.off[i] : chunk_pages;
    }
    const chunk_block* b = block_of(e);
    if (!b->bitmap()) {
        const std::uint32_t i = count_le(b->offsets(), b->count, off);
        value = (b->first ^ i) & 1u;
        if (i >= b->count) return chunk_pages;
        if (at) *at = b->offsets() + i;
        return b->offsets()[i];
    }
    value = (b->bits()[off / 64] >> (off % 64)) & 1u;
    const std::uint32_t q = off + 1;
    if (q >= chunk_pages) return chunk_pages;
    std::uint32_t i = q / 64;
    std::uint64_t m = boundary_word(b->bits(), i) & (~std::uint64_t{0} << (q % 64));
    while (m == 0) {
        if (++i == chunk_words) return chunk_pages;
        m = boundary_word(b->bits(), i);
    }
    return i * 64 + static_cast<std::uint32_t>(std::countr_zero(m));
}

/// Calls f(offset) for every boundary of the chunk, ascending.
template <class F>
void for_each_boundary(chunk_entry e, F&& f) noexcept {
    if (is_immediate(e)) {
        const immediate im(e);
        for (std::uint32_t i = 0; i < im.n; ++i) f(std::uint32_t{im.off[i]});
        return;
    }
    const chunk_block* b = block_of(e);
    if (!b->bitmap()) {
        for (std::uint32_t i = 0; i < b->count; ++i) f(std::uint32_t{b->offsets()[i]});
        return;
    }
    for (std::uint32_t i = 0; i < chunk_words; ++i)
        for (std::uint64_t m = boundary_word(b->bits(), i); m != 0; m &= m - 1)
            f(i * 64 + static_cast<std::uint32_t>(std::countr_zero(m)));
}

// ---- rewriting a chunk --------------------------------------------------------

/// What assigning [lo, hi) := v (hi <= 2^16, hi == 2^16 when the assign
/// reaches the chunk's end) does to a chunk's boundaries: `kept_below` of
/// them stay before lo, `kept_above` stay after hi, and a boundary appears
/// at lo and at hi when the neighbouring value differs from v.
struct chunk_change {
    std::uint32_t lo = 0, hi = 0;
    std::uint32_t kept_below = 0, kept_above = 0;
    bool at_lo[2] = {}, at_hi[2] = {};  // indexed by v

    [[nodiscard]] std::uint32_t after(bool v) const noexcept { return kept_below + kept_above + at_lo[v] + at_hi[v]; }
    [[nodiscard]] std::uint32_t most() const noexcept { return after(false) > after(true) ? after(false) : after(true); }

    /// For a bitmap, kept_below is 0 and kept_above counts every kept
    /// boundary (only their sum is used): O(hi - lo) instead of O(chunk).
    chunk_change() = default;
    /// `guess`: what count_le(offsets, count, lo) may be (a value read
    /// by chunk_value(e, lo, index) before); checked in two compares and
    /// searched for when wrong, so any value is safe (~0: no guess).
    chunk_change(chunk_entry e, std::uint32_t lo_, std::uint32_t hi_, std::uint32_t guess = ~std::uint32_t{0}) noexcept
        : lo(lo_), hi(hi_) {
        const std::uint32_t n = chunk_boundaries(e);
        bool before = false, after_v = false;
        if (!is_immediate(e) && block_of(e)->bitmap()) {
            const std::uint64_t* w = block_of(e)->bits();
            kept_below = 0;
            kept_above = n - bitmap_boundaries_in(w, lo ? lo : 1, hi < chunk_pages ? hi : chunk_pages - 1);
            if (lo) before = (w[(lo - 1) / 64] >> ((lo - 1) % 64)) & 1u;
            if (hi < chunk_pages) after_v = (w[hi / 64] >> (hi % 64)) & 1u;
        } else {
            // An immediate's offsets unpacked, or an array's in place (an
            // array never pays for the unpacking, nor a bitmap test).
            std::uint16_t unpacked[immediate_max];
            const std::uint16_t* o;
            bool first;
            if (is_immediate(e)) {
                const immediate im(e);
                for (std::uint32_t i = 0; i < immediate_max; ++i) unpacked[i] = im.off[i];
                o = unpacked;
                first = im.first;
            } else {
                o = block_of(e)->offsets();
                first = block_of(e)->first != 0;
            }
            if (lo) {
                // Boundaries <= lo - 1: those <= lo, less one at lo itself.
                std::uint32_t i = guess;
                if (i > n || (i > 0 && o[i - 1] > lo) || (i < n && o[i] <= lo)) i = count_le(o, n, lo);
                kept_below = i - (i > 0 && o[i - 1] == lo);
            } else {
                kept_below = 0;
            }
            // The boundaries in [lo, hi] are the ones the assign removes:
            // step over them rather than search again (O(runs removed)).
            std::uint32_t upto_hi = kept_below;
            while (upto_hi < n && o[upto_hi] <= hi) ++upto_hi;
            kept_above = n - upto_hi;
            before = (first ^ kept_below) & 1u;  // the value flips at each boundary
            after_v = (first ^ upto_hi) & 1u;
        }
        for (int v = 0; v < 2; ++v) {
            at_lo[v] = lo > 0 && before != bool(v);
            at_hi[v] = hi < chunk_pages && after_v != bool(v);
        }
    }
};

/// Write the boundaries of the rewritten chunk, in order, through out(offset):
/// the kept ones below lo, the new ones, the kept ones above hi.
template <class Out>
void rewritten_boundaries(chunk_entry e, const chunk_change& c, bool v, Out&& out) noexcept {
    bool news = false;
    auto emit_new = [&] {
        if (c.at_lo[v]) out(c.lo);
        if (c.at_hi[v]) out(c.hi);
        news = true;
    };
    for_each_boundary(e, [&](std::uint32_t q) {
        if (q < c.lo) {
            out(q);
        } else {
            if (!news) emit_new();
            if (q > c.hi) out(q);
        }
    });
    if (!news) emit_new();
}

/// Build a bitmap from a first value and ascending boundaries.
template <class Each>
void bitmap_from(std::uint64_t* w, bool first, Each&& each) noexcept {
    std::memset(w, 0, chunk_words * 8);
    bool cur = first;
    std::uint32_t from = 0;
    each([&](std::uint32_t q) {
        if (cur) bitmap_fill(w, from, q, true);
        from = q;
        cur = !cur;
    });
    if (cur) bitmap_fill(w, from, chunk_pages, true);
}

} // namespace guestmem::detail
