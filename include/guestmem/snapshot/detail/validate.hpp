// guestmem/snapshot/detail/validate.hpp — every check a snapshot body must
// pass (docs/SNAPSHOT.md §Validation). First each section's syntax, in
// order (counts, varints, ranges, order and alignment, canonical form),
// then the checks across sections with forward-only cursors: leaves
// uniform in shareability, no split folio that would have merged,
// quarantined leaves apart from each other and from live folios. Each
// error names the byte offset of the field at fault. run_length() is the
// one check of a run length: restore's single pass (restore.hpp) makes it
// as it loads, then check_after_runs() for the rest. O(bytes + runs +
// extents + splits + poison), plus a sort of the quarantined leaves (a
// temporary array from `Alloc`, only when there are any).
#pragma once

#include <algorithm>
#include <cinttypes>
#include <memory>
#include <span>

#include <guestmem/snapshot/detail/cursors.hpp>
#include <guestmem/snapshot/format.hpp>

namespace guestmem::snapshot::detail {

/// Where each section of a checked full snapshot lies, and its counts.
struct layout {
    header h;
    shareability first_value = shareability::shared;
    std::size_t runs_at = 0, run_count = 0;
    std::size_t tops_at = 0, extent_count = 0;
    std::size_t splits_at = 0, split_count = 0;
    std::size_t poison_at = 0, poison_count = 0;
    std::size_t quarantine_at = 0, quarantine_count = 0;
    std::size_t changes_at = 0, change_count = 0;  // increments
};

inline bool standard(std::uint8_t o) noexcept { return o == order_4k || o == order_2m || o == order_1g; }

/// A count field: at most `left / min_bytes` entries can follow.
inline result<std::size_t> count_field(reader& in, const char* what, std::size_t min_bytes) noexcept {
    const std::size_t at = in.offset();
    auto n = in.varint(what);
    if (!n) return n.error();
    if (n.value() > in.left() / min_bytes)
        return reader::fail(at, "offset %zu: truncated: %s says %" PRIu64 " entries, the body has room for %zu", at, what,
                            n.value(), in.left() / min_bytes);
    return static_cast<std::size_t>(n.value());
}

#define GUESTMEM_SNAP_TRY(var, expr)            \
    auto var##_r = (expr);                      \
    if (!var##_r) return var##_r.error();       \
    const auto var = var##_r.value()

/// The runs section's start: the first run's shareability and the run count.
inline status check_runs_start(reader& in, layout& L) noexcept {
    const std::size_t vat = in.offset();
    GUESTMEM_SNAP_TRY(v, in.byte("the first run's shareability"));
    if (v > 1) return reader::fail(vat, "offset %zu: shareability %u is neither 0 (shared) nor 1 (guest_only)", vat, unsigned(v));
    L.first_value = static_cast<shareability>(v);
    GUESTMEM_SNAP_TRY(n, count_field(in, "the run count", 1));
    if (n == 0) return reader::fail(vat + 1, "offset %zu: a snapshot of 0 runs (an object has at least one)", vat + 1);
    L.run_count = n;
    L.runs_at = in.offset();
    return ok();
}

/// run_length()'s other cases: a varint of more than two bytes, or one
/// that may be bad.
[[gnu::noinline]] inline std::uint64_t run_length_slow(const std::uint8_t* d, std::size_t& at, std::size_t end,
                                                       page_index room) noexcept {
    reader in(d, end);
    in.seek(at);
    const auto v = in.varint("a run length");
    if (!v || v.value() == 0 || v.value() > room) return 0;
    at = in.offset();
    return v.value();
}

/// The run length at d[at], the body ending at `end`, `room` pages not yet
/// covered: the length, `at` moved past it; or 0 (`at` unchanged) when it
/// is not a canonical varint inside the body, is 0, or is longer than
/// `room` (check_runs() words which). The one check of a run length, for
/// check() and for restore's single pass alike. The common case inline
/// and without a branch on the byte count: a canonical one- or two-byte
/// length inside the body and not past the object.
[[gnu::always_inline]] inline std::uint64_t run_length(const std::uint8_t* d, std::size_t& at, std::size_t end,
                                                       page_index room) noexcept {
    if (at + 2 <= end) [[likely]] {
        const std::uint64_t b0 = d[at], b1 = d[at + 1];
        const std::uint64_t two = b0 >> 7;
        const std::uint64_t hi = b1 & (0 - two);  // the second byte, or 0
        const std::uint64_t len = (b0 & 0x7f) | ((hi & 0x7f) << 7);
        const bool fits = ((hi & 0x80) == 0) & (len != 0) & ((hi != 0) | (two == 0)) & (len <= room);
        if (fits) [[likely]] {
            at += 1 + two;
            return len;
        }
    }
    return run_length_slow(d, at, end, room);
}

/// The error of a run length that run_length() refused.
inline error run_length_error(reader& in, std::size_t at, std::size_t i, page_index pages) noexcept {
    in.seek(at);
    const auto len = in.varint("a run length");
    if (!len) return len.error();
    if (len.value() == 0)
        return reader::fail(at, "offset %zu: run %zu is empty (runs are maximal: its neighbours would be one run)", at, i);
    return reader::fail(at, "offset %zu: run %zu ends past the object's %" PRIu64 " pages", at, i, pages);
}

/// The runs cover the whole object (after the last length, at `at`).
inline status check_runs_cover(std::size_t at, page_index sum, const layout& L) noexcept {
    if (sum != L.h.pages)
        return reader::fail(at, "offset %zu: the runs cover %" PRIu64 " of the object's %" PRIu64 " pages", at, sum, L.h.pages);
    return ok();
}

inline status check_runs(reader& in, layout& L) noexcept {
    if (auto s = check_runs_start(in, L); !s) return s;
    page_index sum = 0;
    const std::uint8_t* d = in.data();
    const std::size_t end = in.offset() + in.left();
    std::size_t at = in.offset();
    for (std::size_t i = 0; i < L.run_count; ++i) {
        const std::uint64_t len = run_length(d, at, end, L.h.pages - sum);
        if (len == 0) [[unlikely]]
            return run_length_error(in, at, i, L.h.pages);
        sum += len;
    }
    in.seek(at);
    return check_runs_cover(at, sum, L);
}

inline status check_tops(reader& in, layout& L) noexcept {
    GUESTMEM_SNAP_TRY(n, count_field(in, "the folio extent count", 3));
    L.extent_count = n;
    L.tops_at = in.offset();
    page_index end = 0;
    folio_order prev_order = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t at = in.offset();
        GUESTMEM_SNAP_TRY(gap, in.varint("an extent's gap"));
        const std::size_t oat = in.offset();
        GUESTMEM_SNAP_TRY(o, in.byte("an extent's order"));
        const std::size_t cat = in.offset();
        GUESTMEM_SNAP_TRY(count, in.varint("an extent's folio count"));
        if (!standard(o) || o > L.h.max_order)
            return reader::fail(oat, "offset %zu: folio order %u is not 0, 9 or 18 up to the max order %u", oat, unsigned(o),
                                unsigned(L.h.max_order));
        if (count == 0) return reader::fail(cat, "offset %zu: an extent of 0 folios", cat);
        if (i != 0 && gap == 0 && o == prev_order)
            return reader::fail(at, "offset %zu: extent %zu continues the previous one (same order, no gap): not canonical", at, i);
        if (gap > L.h.pages - end) return reader::fail(at, "offset %zu: extent %zu starts past the object's end", at, i);
        const page_index first = end + gap;
        if (!is_aligned(first, o))
            return reader::fail(at, "offset %zu: an order-%u folio at page %#" PRIx64 " is not aligned", at, unsigned(o), first);
        if (count > ((L.h.pages - first) >> o))
            return reader::fail(cat, "offset %zu: %" PRIu64 " order-%u folios from page %#" PRIx64 " end past the object's end", cat,
                                count, unsigned(o), first);
        end = first + (count << o);
        prev_order = o;
    }
    return ok();
}

inline status check_splits(reader& in, layout& L) noexcept {
    GUESTMEM_SNAP_TRY(n, count_field(in, "the split count", 2));
    L.split_count = n;
    L.splits_at = in.offset();
    top_cursor tops;
    tops.start(in.data(), L.tops_at, L.extent_count);
    page_index page = 0, split_1g = no_page;
    folio_order prev = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t at = in.offset();
        GUESTMEM_SNAP_TRY(delta, in.varint("a split's page delta"));
        GUESTMEM_SNAP_TRY(o, in.byte("a split's order"));
        if (delta > L.h.pages - page) return reader::fail(at, "offset %zu: split %zu lies past the object's end", at, i);
        page += delta;
        if (o != order_2m && o != order_1g)
            return reader::fail(at, "offset %zu: split %zu is of an order-%u folio (only 9 and 18 split)", at, i, unsigned(o));
        if (i != 0 && delta == 0 && o >= prev)
            return reader::fail(at, "offset %zu: split %zu is out of order (by page, then from the larger order down)", at, i);
        const page_index t = page < L.h.pages ? tops.top_at(page) : no_page;
        const bool top_itself = t == page && tops.order == o;
        const bool piece = t != no_page && tops.order == order_1g && o == order_2m && split_1g == t && is_aligned(page, o);
        if (!top_itself && !piece)
            return reader::fail(at, "offset %zu: split %zu names an order-%u folio at page %#" PRIx64 " that does not exist", at, i,
                                unsigned(o), page);
        if (o == order_1g) split_1g = page;
        prev = o;
    }
    return ok();
}

inline status check_poison(reader& in, layout& L) noexcept {
    GUESTMEM_SNAP_TRY(n, count_field(in, "the poison count", 1));
    L.poison_count = n;
    L.poison_at = in.offset();
    leaf_locator loc;
    loc.tops.start(in.data(), L.tops_at, L.extent_count);
    loc.splits.start(in.data(), L.splits_at, L.split_count);
    page_index page = 0, prev_leaf = no_page;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t at = in.offset();
        GUESTMEM_SNAP_TRY(delta, in.varint("a poisoned page"));
        if (i == 0 ? delta >= L.h.pages : delta >= L.h.pages - page - 1)
            return reader::fail(at, "offset %zu: poisoned page %zu lies past the object's end", at, i);
        page = i == 0 ? delta : page + delta + 1;
        const auto leaf = loc.locate(page);
        if (leaf.first == no_page)
            return reader::fail(at, "offset %zu: poisoned page %#" PRIx64 " is a hole (only a folio can be poisoned)", at, page);
        if (leaf.first == prev_leaf)
            return reader::fail(at, "offset %zu: poisoned page %#" PRIx64 " is in a leaf already poisoned", at, page);
        prev_leaf = leaf.first;
    }
    return ok();
}

/// A quarantined poisoned leaf, for the overlap checks.
struct q_leaf {
    page_index first, end;
    std::size_t at;
    friend bool operator<(const q_leaf& a, const q_leaf& b) noexcept { return a.first < b.first; }
};

/// Quarantine records: syntax; with `out` non-null, their leaves are
/// stored there too (the caller sized it from a counting pass).
inline status check_quarantine(reader& in, layout& L, q_leaf* out, std::size_t& leaves) noexcept {
    GUESTMEM_SNAP_TRY(n, count_field(in, "the quarantined folio count", 3));
    L.quarantine_count = n;
    L.quarantine_at = in.offset();
    leaves = 0;
    page_index prev_end = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t at = in.offset();
        GUESTMEM_SNAP_TRY(first, in.varint("a quarantined folio's page"));
        const std::size_t oat = in.offset();
        GUESTMEM_SNAP_TRY(o, in.byte("a quarantined folio's order"));
        if (!standard(o) || o > L.h.max_order)
            return reader::fail(oat, "offset %zu: folio order %u is not 0, 9 or 18 up to the max order %u", oat, unsigned(o),
                                unsigned(L.h.max_order));
        if (first >= L.h.pages || pages_in(o) > L.h.pages - first || !is_aligned(first, o))
            return reader::fail(at, "offset %zu: a quarantined order-%u folio at page %#" PRIx64 " is unaligned or past the end",
                                at, unsigned(o), first);
        const page_index end = first + pages_in(o);
        if (end < prev_end)
            return reader::fail(at, "offset %zu: quarantined folio %zu is out of order (by end page)", at, i);
        prev_end = end;
        const std::size_t cat = in.offset();
        GUESTMEM_SNAP_TRY(k, count_field(in, "a quarantined folio's poisoned leaf count", 3));
        if (k == 0) return reader::fail(cat, "offset %zu: a quarantined folio without a poisoned leaf", cat);
        page_index page = first, leaf_end = first;
        for (std::size_t j = 0; j < k; ++j) {
            const std::size_t lat = in.offset();
            GUESTMEM_SNAP_TRY(delta, in.varint("a quarantined leaf's poisoned page"));
            GUESTMEM_SNAP_TRY(lo, in.byte("a quarantined leaf's order"));
            const std::size_t mat = in.offset();
            GUESTMEM_SNAP_TRY(m, in.byte("a quarantined leaf's mappability"));
            if (j == 0 ? delta >= end - first : delta >= end - page - 1)
                return reader::fail(lat, "offset %zu: a poisoned page past its quarantined folio", lat);
            page = j == 0 ? first + delta : page + delta + 1;
            if (!standard(lo) || lo > o)
                return reader::fail(lat, "offset %zu: leaf order %u is not 0, 9 or 18 up to its folio's %u", lat, unsigned(lo),
                                    unsigned(o));
            if (m > 2) return reader::fail(mat, "offset %zu: mappability %u is not 0, 1 or 2", mat, unsigned(m));
            const page_index lf = align_down(page, lo);
            if (lf < leaf_end)
                return reader::fail(lat, "offset %zu: the poisoned leaf at page %#" PRIx64 " overlaps the previous one", lat, lf);
            leaf_end = lf + pages_in(lo);
            if (out != nullptr) out[leaves] = {lf, leaf_end, lat};
            ++leaves;
        }
    }
    return ok();
}

/// Leaves uniform in shareability (a run boundary inside a leaf must be
/// in a poisoned one), and no split folio that would have merged.
inline status check_across(const std::uint8_t* d, const layout& L) noexcept {
    if (L.extent_count == 0) return ok();  // no folio: no leaf, no split
    leaf_locator loc;
    loc.tops.start(d, L.tops_at, L.extent_count);
    loc.splits.start(d, L.splits_at, L.split_count);
    poison_cursor poison;
    poison.start(d, L.poison_at, L.poison_count);
    run_cursor runs;
    runs.start(d, L.runs_at, L.run_count, L.first_value);
    while (runs.valid) {
        const std::size_t at = runs.at;
        const page_index b = runs.end;
        if (!runs.next()) break;
        const auto leaf = loc.locate(b);
        if (leaf.first == no_page || leaf.first == b || poison.any_in(leaf.first, leaf.end())) continue;
        return reader::fail(at, "offset %zu: the run ending at page %#" PRIx64 " splits the order-%u leaf at %#" PRIx64
                                " (a leaf that is not poisoned is uniform in shareability)", at, b, unsigned(leaf.order), leaf.first);
    }
    split_cursor splits;
    splits.start(d, L.splits_at, L.split_count);
    poison.start(d, L.poison_at, L.poison_count);
    runs.start(d, L.runs_at, L.run_count, L.first_value);
    while (splits.valid) {
        const std::size_t at = splits.at;
        const page_index p = splits.page, e = p + pages_in(splits.order);
        const folio_order o = splits.order;
        const bool child = splits.next() && splits.page < e;
        if (child || poison.any_in(p, e)) continue;
        runs.seek(p);
        run_cursor scan = runs;
        bool shared = false;
        for (; scan.valid && scan.begin < e; scan.next())
            if (scan.value == shareability::shared) {
                shared = true;
                break;
            }
        if (!shared)
            return reader::fail(at, "offset %zu: the order-%u folio at page %#" PRIx64 " is split, but whole guest_only pieces "
                                    "with no poison merge back", at, unsigned(o), p);
    }
    return ok();
}

} // namespace guestmem::snapshot::detail

namespace guestmem::snapshot::detail {

/// An increment's changes: (gap from the previous change's end, length,
/// shareability), in page order, apart or of different values.
inline status check_changes(reader& in, layout& L) noexcept {
    GUESTMEM_SNAP_TRY(n, count_field(in, "the change count", 3));
    L.change_count = n;
    L.changes_at = in.offset();
    page_index end = 0;
    std::uint8_t prev = 2;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t at = in.offset();
        GUESTMEM_SNAP_TRY(gap, in.varint("a change's gap"));
        const std::size_t lat = in.offset();
        GUESTMEM_SNAP_TRY(len, in.varint("a change's length"));
        const std::size_t vat = in.offset();
        GUESTMEM_SNAP_TRY(v, in.byte("a change's shareability"));
        if (gap > L.h.pages - end) return reader::fail(at, "offset %zu: change %zu starts past the object's end", at, i);
        if (len == 0) return reader::fail(lat, "offset %zu: change %zu is empty", lat, i);
        if (len > L.h.pages - end - gap) return reader::fail(lat, "offset %zu: change %zu ends past the object's end", lat, i);
        if (v > 1) return reader::fail(vat, "offset %zu: shareability %u is neither 0 (shared) nor 1 (guest_only)", vat, unsigned(v));
        if (i != 0 && gap == 0 && v == prev)
            return reader::fail(at, "offset %zu: change %zu continues the previous one with the same value: not canonical", at, i);
        end += gap + len;
        prev = v;
    }
    return ok();
}

/// A full snapshot's sections after the runs (`in` at their end, `L`
/// filled by check_runs), and the checks across sections: the rest of
/// validate(), which restore's single pass runs after its runs.
template <class Alloc>
status check_after_runs(reader& in, layout& L, const Alloc& a) noexcept {
    const std::size_t body_end = L.h.body_offset + L.h.body_size;
    const std::uint8_t* d = in.data();
    if (auto s = check_tops(in, L); !s) return s.error();
    if (auto s = check_splits(in, L); !s) return s.error();
    if (auto s = check_poison(in, L); !s) return s.error();
    const std::size_t q_at = in.offset();
    std::size_t q = 0;
    if (auto s = check_quarantine(in, L, nullptr, q); !s) return s.error();
    if (in.offset() != body_end)
        return reader::fail(in.offset(), "offset %zu: %zu bytes after the last section", in.offset(), body_end - in.offset());
    if (auto s = check_across(d, L); !s) return s.error();
    if (q != 0) {
        using traits = typename std::allocator_traits<Alloc>::template rebind_traits<q_leaf>;
        typename traits::allocator_type qa(a);
        q_leaf* leaves = traits::allocate(qa, q);
        if (leaves == nullptr)
            return error::make(errc::out_of_memory, no_page, "no memory to sort %zu quarantined leaves", q);
        in.seek(q_at);
        std::size_t again = 0;
        (void)check_quarantine(in, L, leaves, again);
        std::sort(leaves, leaves + q);
        top_cursor tops;
        tops.start(d, L.tops_at, L.extent_count);
        status st = ok();
        for (std::size_t i = 0; i < q && st; ++i) {
            const q_leaf& x = leaves[i];
            if (i != 0 && leaves[i - 1].end > x.first)
                st = reader::fail(x.at, "offset %zu: the quarantined leaf at page %#" PRIx64 " overlaps another one", x.at, x.first);
            else if (tops.top_at(x.first) != no_page || (tops.valid && tops.first < x.end))
                st = reader::fail(x.at, "offset %zu: the quarantined leaf at page %#" PRIx64 " overlaps a live folio", x.at, x.first);
        }
        traits::deallocate(qa, leaves, q);
        if (!st) return st.error();
    }
    return ok();
}

/// Every check of docs/SNAPSHOT.md §Validation on `bytes`; the layout of
/// its sections when it passes. `a`: where the quarantined leaves' sort
/// array comes from.
template <class Alloc>
result<layout> validate(std::span<const std::uint8_t> bytes, const Alloc& a) noexcept {
    auto hr = read_header(bytes);
    if (!hr) return hr.error();
    layout L;
    L.h = hr.value();
    const std::size_t body_end = L.h.body_offset + L.h.body_size;
    reader in(bytes.data(), body_end);
    in.seek(L.h.body_offset);
    if (L.h.kind == kind::increment) {
        if (auto s = check_changes(in, L); !s) return s.error();
    } else {
        if (auto s = check_runs(in, L); !s) return s.error();
        if (auto s = check_after_runs(in, L, a); !s) return s.error();
        return L;
    }
    if (in.offset() != body_end)
        return reader::fail(in.offset(), "offset %zu: %zu bytes after the last section", in.offset(), body_end - in.offset());
    return L;
}

#undef GUESTMEM_SNAP_TRY

} // namespace guestmem::snapshot::detail
