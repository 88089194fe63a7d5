/// @file
/// Save an object's ownership state as a full snapshot (docs/SNAPSHOT.md):
/// its shareability runs, its folios (orders, splits), poison and
/// quarantined folios, with a checksum. Bindings, pins and rounds are
/// runtime state and are not saved; an object holding a pin (or a folio
/// still draining one) is refused with `busy` naming the page, since its
/// state would not be what a restore can rebuild.
///
/// Output goes to a caller's buffer or to a sink callback in chunks of at
/// most 4 KiB; nothing is allocated (a 4 KiB staging buffer lives on the
/// stack) and nothing throws. Costs, under the object's shared lock: one
/// pass over the runs, folio records and poison into a buffer, two into a
/// sink: O(runs + leaves + quarantined folios). 33 bytes for a 1 TiB
/// object of one run; the measured size at 10^6 random runs is in
/// bench/RESULTS.md (section "Claims in headers").
#pragma once

#include <cinttypes>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <type_traits>

#include <guestmem/core/error.hpp>
#include <guestmem/folio/folio_table.hpp>
#include <guestmem/snapshot/detail/codec.hpp>
#include <guestmem/snapshot/format.hpp>

namespace guestmem::snapshot {

namespace detail {

/// Can the object be saved? busy for a pinned page or a leaf in
/// mappability none (draining pins), naming the page. `v`: its locked view.
template <class View>
status check_saveable(const View& v, page_index size) noexcept {
    const auto& f = v.folios();
    if (f.stats().pinned_pages != 0) {
        page_index first = no_page;
        f.for_each_pin_run([&](page_index b, page_index, std::uint32_t) { first = std::min(first, b); });
        return error::make(errc::busy, first,
                           "page %#" PRIx64 " is pinned: pins are runtime state, so save refuses until they are dropped", first);
    }
    page_index draining = no_page;
    f.for_each_folio({0, size}, [&](const folio_view& fv) {
        if (draining == no_page && fv.mappability == mappability::none) draining = fv.first;
    });
    if (draining != no_page)
        return error::make(errc::busy, draining, "the folio at page %#" PRIx64 " is still draining its pins (mappability none)",
                           draining);
    return ok();
}

/// The body of a full snapshot (docs/SNAPSHOT.md §Full snapshot) of an
/// object of `size` pages, read through its locked view `v`.
template <class View, class W>
void write_full_body(const View& v, page_index size, W& w) {
    const auto& map = v.shareability_map();
    const auto& f = v.folios();
    // runs
    bool first = true;
    for (const auto& r : map.runs({0, size})) {
        if (first) {
            w.byte(static_cast<std::uint8_t>(r.value));
            w.varint(map.run_count());
            first = false;
        }
        w.varint(r.range.size());
    }
    // folio extents: runs of adjacent top folios of one order
    std::uint64_t extents = 0;
    {
        page_index end = no_page;
        folio_order o = 0;
        f.for_each_top([&](page_index p, folio_order order) {
            if (p != end || order != o) ++extents;
            end = p + pages_in(order);
            o = order;
        });
    }
    w.varint(extents);
    {
        page_index prev_end = 0, start = 0, end = 0;
        folio_order o = 0;
        std::uint64_t n = 0;
        auto flush = [&] {
            if (n == 0) return;
            w.varint(start - prev_end);
            w.byte(o);
            w.varint(n);
            prev_end = end;
        };
        f.for_each_top([&](page_index p, folio_order order) {
            if (n == 0 || p != end || order != o) {
                flush();
                start = p, o = order, n = 0;
            }
            ++n;
            end = p + pages_in(order);
        });
        flush();
    }
    // splits
    const auto counts = f.stats();
    w.varint(counts.split_folios);
    page_index prev = 0;
    f.for_each_split([&](page_index p, folio_order o) {
        w.varint(p - prev);
        w.byte(o);
        prev = p;
    });
    // poison
    w.varint(counts.poisoned_folios);
    bool any = false;
    page_index last = 0;
    f.for_each_poisoned([&](page_index p, folio_order, mappability) {
        w.varint(any ? p - last - 1 : p);
        any = true;
        last = p;
    });
    // quarantined folios
    std::uint64_t detached = 0;
    f.for_each_detached_poison([&](page_index, folio_order, auto&&) { ++detached; });
    w.varint(detached);
    f.for_each_detached_poison([&](page_index d_first, folio_order d_order, auto&& leaves) {
        w.varint(d_first);
        w.byte(d_order);
        std::uint64_t k = 0;
        leaves([&](page_index, folio_order, mappability) { ++k; });
        w.varint(k);
        page_index at = d_first;
        bool started = false;
        leaves([&](page_index p, folio_order o, mappability m) {
            w.varint(started ? p - at - 1 : p - at);
            w.byte(o);
            w.byte(static_cast<std::uint8_t>(m));
            started = true;
            at = p;
        });
    });
}

/// Header (docs/SNAPSHOT.md §Header), then the body, then the checksum.
template <class W>
void write_header(W& w, kind k, page_index pages, folio_order max_order, std::uint64_t generation, std::uint64_t base,
                  std::size_t body) noexcept {
    w.bytes(magic, 4);
    w.byte(format_version);
    w.byte(static_cast<std::uint8_t>(k));
    w.varint(pages);
    w.byte(max_order);
    w.varint(generation);
    if (k == kind::increment) w.varint(base);
    w.varint(body);
}

/// Run `body(w)` twice: once counting, once writing to `sink` between
/// the header and the checksum. Returns the bytes written.
template <class Sink, class Body>
result<std::size_t> emit(Sink& sink, std::size_t capacity, kind k, page_index pages, folio_order max_order,
                         std::uint64_t generation, std::uint64_t base, Body&& body) {
    writer<Sink> counting(nullptr);
    body(counting);
    const std::size_t body_size = counting.written();
    writer<Sink> sizing(nullptr);
    write_header(sizing, k, pages, max_order, generation, base, body_size);
    const std::size_t total = sizing.written() + body_size + checksum_bytes;
    if (total > capacity)
        return error::make(errc::invalid_argument, no_page, "the snapshot needs %zu bytes; the buffer holds %zu", total, capacity);
    writer<Sink> out(&sink);
    write_header(out, k, pages, max_order, generation, base, body_size);
    body(out);
    out.seal();
    if (out.failed())
        return error::make(errc::out_of_memory, no_page, "the sink refused the snapshot's bytes (it needs %zu)", total);
    return total;
}

/// The largest header: magic, version, kind, four varints, the order.
inline constexpr std::size_t max_header_bytes = 4 + 1 + 1 + 10 + 1 + 10 + 10 + 10;

/// A sink writing into [at, end); false once a chunk does not fit.
struct bounded_sink {
    std::uint8_t* at;
    std::uint8_t* end;
    bool operator()(const std::uint8_t* p, std::size_t n) noexcept {
        if (n > static_cast<std::size_t>(end - at)) return false;
        std::memcpy(at, p, n);
        at += n;
        return true;
    }
};

/// A sink writing into a span (the capacity was checked before).
struct span_sink {
    std::uint8_t* at;
    bool operator()(const std::uint8_t* p, std::size_t n) noexcept {
        std::memcpy(at, p, n);
        at += n;
        return true;
    }
};

} // namespace detail

/// Save `mem`'s ownership state as a full snapshot, handing the bytes to
/// `sink` in order (a callable `bool(const std::uint8_t* data, std::size_t
/// n)`, called with chunks of at most 4 KiB; returning false stops the
/// save). Returns the snapshot's size.
/// Errors:    in this order: busy (a pinned page, or a folio draining its
///            pins: the page named; nothing was handed to the sink);
///            out_of_memory (no_page: the sink refused; what it took is not
///            a snapshot).
/// Lock:      the object's, shared, held throughout (sink calls included).
/// Cost:      O(runs + leaves + quarantined folios), two passes (one counts).
/// Allocates: nothing (a 4 KiB staging buffer on the stack).
template <class Memory, class Sink>
    requires std::is_invocable_r_v<bool, Sink&, const std::uint8_t*, std::size_t>
result<std::size_t> save(const Memory& mem, Sink&& sink) {
    const auto guard = mem.lock_shared();
    const auto v = mem.locked(guard);
    if (auto s = detail::check_saveable(v, mem.size()); !s) return s.error();
    return detail::emit(sink, SIZE_MAX, kind::full, mem.size(), mem.max_order(), v.changes().generation(), 0,
                        [&](auto& w) { detail::write_full_body(v, mem.size(), w); });
}

/// Save `mem` as a full snapshot into `out`; returns the bytes used. One
/// pass: the body is written after room for the largest header, then
/// moved down behind the header.
/// Errors:    in this order: busy as save(mem, sink); invalid_argument
///            (no_page) when `out` is too small (its contents are then
///            unspecified; the message says the size needed: see saved_size()).
/// Lock:      the object's, shared, held throughout.
/// Cost:      O(runs + leaves + quarantined folios): one pass and a memmove
///            (two passes when `out` has no room for the largest header).
/// Allocates: nothing.
template <class Memory>
result<std::size_t> save(const Memory& mem, std::span<std::uint8_t> out) {
    const auto guard = mem.lock_shared();
    const auto v = mem.locked(guard);
    if (auto s = detail::check_saveable(v, mem.size()); !s) return s.error();
    const std::uint64_t gen = v.changes().generation();
    // Room for the header: its fixed part plus the body size's varint,
    // which takes at most as many bytes as the buffer's size does.
    detail::writer<detail::span_sink> fixed(nullptr);
    detail::write_header(fixed, kind::full, mem.size(), mem.max_order(), gen, 0, 0);
    const std::size_t room = fixed.written() - 1 + detail::varint_size(out.size());
    if (out.size() >= room + checksum_bytes) {
        detail::bounded_sink body_sink{out.data() + room, out.data() + out.size() - checksum_bytes};
        detail::writer<detail::bounded_sink> body(&body_sink, false);
        detail::write_full_body(v, mem.size(), body);
        body.flush();
        if (!body.failed()) {
            std::uint8_t head[detail::max_header_bytes];
            detail::bounded_sink head_sink{head, head + sizeof head};
            detail::writer<detail::bounded_sink> h(&head_sink, false);
            detail::write_header(h, kind::full, mem.size(), mem.max_order(), gen, 0, body.written());
            h.flush();
            const std::size_t n = h.written(), total = n + body.written() + checksum_bytes;
            std::memmove(out.data() + n, out.data() + room, body.written());
            std::memcpy(out.data(), head, n);
            const std::uint64_t sum = checksum(out.data(), n + body.written());
            for (unsigned i = 0; i < checksum_bytes; ++i) out[n + body.written() + i] = std::uint8_t(sum >> (8 * i));
            return total;
        }
    }
    // Too small for the one-pass layout (which needs room for the largest
    // header): two passes, which also say the size needed.
    detail::span_sink exact{out.data()};
    return detail::emit(exact, out.size(), kind::full, mem.size(), mem.max_order(), gen, 0,
                        [&](auto& w) { detail::write_full_body(v, mem.size(), w); });
}

/// The size of the full snapshot save() would write now (the state may
/// change before the save unless the caller keeps other threads out).
/// Errors:    busy as save().
/// Lock:      the object's, shared.
/// Cost:      O(runs + leaves + quarantined folios) (a counting pass).
/// Allocates: nothing.
template <class Memory>
result<std::size_t> saved_size(const Memory& mem) {
    const auto guard = mem.lock_shared();
    const auto v = mem.locked(guard);
    if (auto s = detail::check_saveable(v, mem.size()); !s) return s.error();
    detail::writer<detail::span_sink> counting(nullptr);
    detail::write_full_body(v, mem.size(), counting);
    detail::writer<detail::span_sink> head(nullptr);
    detail::write_header(head, kind::full, mem.size(), mem.max_order(), 0, 0, counting.written());
    const std::size_t gen_bytes = detail::varint_size(v.changes().generation()) - 1;
    return head.written() + gen_bytes + counting.written() + checksum_bytes;
}

} // namespace guestmem::snapshot
