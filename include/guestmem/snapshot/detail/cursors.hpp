// guestmem/snapshot/detail/cursors.hpp — forward-only readers over the
// sections of a snapshot body whose syntax was already checked (so they
// decode without checks), used by the validator's cross-section checks and
// by restore. Each moves monotonically, so a check over n runs, folios,
// splits and poison entries costs O(n) in total.
#pragma once

#include <cstddef>
#include <cstdint>

#include <guestmem/core/error.hpp>
#include <guestmem/core/types.hpp>

namespace guestmem::snapshot::detail {

/// Decode a varint known to be well formed.
inline std::uint64_t raw_varint(const std::uint8_t* d, std::size_t& pos) noexcept {
    std::uint64_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
        const std::uint8_t b = d[pos++];
        v |= std::uint64_t(b & 0x7f) << shift;
        if ((b & 0x80) == 0) return v;
    }
}

/// raw_varint for the runs section, where lengths of one or two bytes
/// (runs under 2^14 pages) are the rule and which byte count comes next is
/// a coin toss: decoded without a branch on it. Reads d[pos + 1] even for a
/// one-byte varint: the bytes were validated, so a checksum follows the
/// body and that byte exists.
inline std::uint64_t run_varint(const std::uint8_t* d, std::size_t& pos) noexcept {
    const std::uint64_t b0 = d[pos], b1 = d[pos + 1];
    if (((b0 & b1) & 0x80) == 0) [[likely]] {
        const std::uint64_t two = b0 >> 7;  // 1: a second byte follows
        pos += 1 + two;
        return (b0 & 0x7f) | (((b1 & 0x7f) << 7) & (0 - two));
    }
    return raw_varint(d, pos);
}

/// The runs section: [begin, end) -> value, one run after another.
struct run_cursor {
    const std::uint8_t* d = nullptr;
    std::size_t pos = 0;       // next length varint
    std::size_t left = 0;      // runs not yet read
    std::size_t at = 0;        // offset of the current run's length
    page_index begin = 0, end = 0;
    shareability value = shareability::shared;
    bool valid = false;

    void start(const std::uint8_t* data, std::size_t lengths_at, std::size_t count, shareability first) noexcept {
        d = data;
        pos = lengths_at;
        left = count;
        begin = end = 0;
        value = first == shareability::shared ? shareability::guest_only : shareability::shared;  // flipped by next()
        valid = false;
        next();
    }
    bool next() noexcept {
        if (left == 0) return valid = false;
        --left;
        begin = end;
        at = pos;
        end = begin + run_varint(d, pos);
        value = value == shareability::shared ? shareability::guest_only : shareability::shared;
        return valid = true;
    }
    /// Move to the run holding p (p never decreases between calls).
    void seek(page_index p) noexcept {
        while (valid && end <= p) next();
    }
};

/// The folio extents section: runs of `count` top folios of one order.
struct top_cursor {
    const std::uint8_t* d = nullptr;
    std::size_t pos = 0, left = 0;
    page_index first = 0, end = 0;  // the current extent
    folio_order order = 0;
    bool valid = false;

    void start(const std::uint8_t* data, std::size_t at, std::size_t count) noexcept {
        d = data;
        pos = at;
        left = count;
        end = 0;
        valid = false;
        next();
    }
    bool next() noexcept {
        if (left == 0) return valid = false;
        --left;
        first = end + raw_varint(d, pos);
        order = d[pos++];
        end = first + (raw_varint(d, pos) << order);
        return valid = true;
    }
    /// The top folio holding p, as its first page (no_page for a hole);
    /// p never decreases between calls.
    page_index top_at(page_index p) noexcept {
        while (valid && end <= p) next();
        if (!valid || p < first) return no_page;
        return first + (((p - first) >> order) << order);
    }
};

/// The split section: (first page, order) of each split folio, by page,
/// then by order from the top down.
struct split_cursor {
    const std::uint8_t* d = nullptr;
    std::size_t pos = 0, left = 0, at = 0;
    page_index page = 0;
    folio_order order = 0;
    bool valid = false;

    void start(const std::uint8_t* data, std::size_t from, std::size_t count) noexcept {
        d = data;
        pos = from;
        left = count;
        page = 0;
        valid = false;
        next();
    }
    bool next() noexcept {
        if (left == 0) return valid = false;
        --left;
        at = pos;
        page += raw_varint(d, pos);
        order = d[pos++];
        return valid = true;
    }
    /// Is the folio of order o at q split? Queries come in (q, -o) order.
    bool is_split(page_index q, folio_order o) noexcept {
        while (valid && (page < q || (page == q && order > o))) next();
        return valid && page == q && order == o;
    }
};

/// The poison section: poisoned pages, increasing.
struct poison_cursor {
    const std::uint8_t* d = nullptr;
    std::size_t pos = 0, left = 0;
    page_index page = 0;
    bool valid = false;

    void start(const std::uint8_t* data, std::size_t from, std::size_t count) noexcept {
        d = data;
        pos = from;
        left = count;
        page = 0;
        valid = false;
        if (left != 0) {
            --left;
            page = raw_varint(d, pos);
            valid = true;
        }
    }
    /// Is a page of [b, e) poisoned? b never decreases between calls.
    bool any_in(page_index b, page_index e) noexcept {
        while (valid && page < b) {
            if (left == 0) {
                valid = false;
                break;
            }
            --left;
            page += 1 + raw_varint(d, pos);
        }
        return valid && page < e;
    }
};

/// The leaf folio holding a page, from the extents and the splits.
struct leaf_locator {
    top_cursor tops;
    split_cursor splits;
    page_index cached_top = no_page;
    bool cached_split = false;

    struct leaf {
        page_index first = no_page;  // no_page: a hole
        folio_order order = 0;
        [[nodiscard]] page_index end() const noexcept { return first + pages_in(order); }
    };
    /// p never decreases between calls.
    leaf locate(page_index p) noexcept {
        const page_index t = tops.top_at(p);
        if (t == no_page) return {};
        const folio_order o = tops.order;
        if (t != cached_top) {
            cached_top = t;
            cached_split = splits.is_split(t, o);
        }
        if (!cached_split) return {t, o};
        const folio_order co = next_lower_order(o);
        const page_index piece = align_down(p, co);
        if (co == order_4k || !splits.is_split(piece, co)) return {piece, co};
        return {p, order_4k};
    }
};

} // namespace guestmem::snapshot::detail
