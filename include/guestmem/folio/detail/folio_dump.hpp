// guestmem/folio/detail/folio_dump.hpp — folio_table::dump(): a readable
// listing of top-level folios, their split structure (runs of identical
// intact pieces collapsed into one line) and the pin runs; and the checks
// tests lean on: check_counters() and same_state().
#pragma once

#include <cinttypes>
#include <cstdio>
#include <ostream>

#include <guestmem/folio/folio_table.hpp>

namespace guestmem::detail {

inline void dump_line(std::ostream& os, int depth, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
inline void dump_line(std::ostream& os, int depth, const char* fmt, ...) {
    char buf[200];
    std::va_list args;
    va_start(args, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    for (int i = 0; i < depth; ++i) os << "  ";
    os << buf << '\n';
}

inline void dump_rec(std::ostream& os, const folio_ref& x, int depth) {
    const std::string_view m = to_string(x.map());
    const page_index first = x.first;
    if (!x.split()) {
        if (x.poisoned())
            dump_line(os, depth, "[%#" PRIx64 ", %#" PRIx64 ") order %u frame %#" PRIx64 " %.*s POISONED at %#" PRIx64,
                      first, x.end(), unsigned{x.order}, x.frame, int(m.size()), m.data(), x.poison_page());
        else
            dump_line(os, depth, "[%#" PRIx64 ", %#" PRIx64 ") order %u frame %#" PRIx64 " %.*s", first, x.end(),
                      unsigned{x.order}, x.frame, int(m.size()), m.data());
        return;
    }
    const folio_order co = next_lower_order(x.order);
    dump_line(os, depth, "[%#" PRIx64 ", %#" PRIx64 ") order %u frame %#" PRIx64 " split to order %u", first, x.end(),
              unsigned{x.order}, x.frame, unsigned{co});
    const std::uint8_t* st = x.pieces()->state;
    const auto plain = [](std::uint8_t s) { return (s & (st_split | st_poisoned)) == 0; };
    std::uint32_t i = 0;
    while (i < split_fanout) {
        std::uint32_t j = i + 1;
        if (plain(st[i]))
            while (j < split_fanout && plain(st[j]) && st[j] == st[i]) ++j;
        if (j - i == 1) {
            dump_rec(os, x.child(i), depth + 1);
        } else {
            const std::string_view cm = to_string(static_cast<mappability>(st[i] & st_map_mask));
            dump_line(os, depth + 1, "[%#" PRIx64 ", %#" PRIx64 ") %u x order %u %.*s", first + (std::uint64_t{i} << co),
                      first + (std::uint64_t{j} << co), j - i, unsigned{co}, int(cm.size()), cm.data());
        }
        i = j;
    }
}

} // namespace guestmem::detail

namespace guestmem {

template <folio_allocator A, class NodeAllocator>
void folio_table<A, NodeAllocator>::dump(std::ostream& os) const {
    const counters c = stats();
    detail::dump_line(os, 0,
                      "folio table: %#" PRIx64 " pages, max order %u; %" PRIu64 " top-level folios, %" PRIu64
                      " pages allocated, %" PRIu64 " split, %" PRIu64 " pinned pages, %" PRIu64 " poisoned, %" PRIu64
                      " quarantined pages, %" PRIu64 " detached pinned pages",
                      size_, unsigned{max_order_}, c.top_folios, c.allocated_pages, c.split_folios, c.pinned_pages,
                      c.poisoned_folios, c.quarantined_pages, c.detached_pages);
    for (const auto& t : tops_) detail::dump_rec(os, t.ref(), 1);
    for (const auto& d : detached_) {
        detail::dump_line(os, 1, "detached (truncated while%s%s):", d.holds_pins ? " pinned" : "",
                          detail::any_poison(d.ref()) ? " quarantined" : "");
        detail::dump_rec(os, d.ref(), 2);
    }
    pins_.for_each([&](page_index b, page_index e, std::uint32_t n) {
        detail::dump_line(os, 1, "pins [%#" PRIx64 ", %#" PRIx64 ") x%u", b, e, n);
    });
}

template <folio_allocator A, class NodeAllocator>
bool folio_table<A, NodeAllocator>::check_counters() const noexcept {
    counters c{};
    for (const top& t : tops_) {
        ++c.top_folios;
        c.allocated_pages += pages_in(t.order);
        detail::count_rec(t.ref(), c);
    }
    for (const top& d : detached_) {
        if (d.holds_pins) c.detached_pages += pages_in(d.order);
        c.quarantined_pages += detail::poisoned_pages(d.ref());
    }
    c.pinned_pages = c_.pinned_pages;
    return c == c_;
}

template <folio_allocator A, class NodeAllocator>
template <folio_allocator A2, class N2>
bool folio_table<A, NodeAllocator>::same_state(const folio_table<A2, N2>& b) const noexcept {
    if (size_ != b.size_ || max_order_ != b.max_order_ || !(c_ == b.c_) || !pins_.same_runs(b.pins_) ||
        tops_.size() != b.tops_.size() || detached_.size() != b.detached_.size())
        return false;
    auto j = b.tops_.begin();
    for (auto i = tops_.begin(); i != tops_.end(); ++i, ++j)
        if (i->first != j->first || !detail::same_structure(i->ref(), j->ref())) return false;
    auto dj = b.detached_.begin();
    for (auto i = detached_.begin(); i != detached_.end(); ++i, ++dj)
        if (i->first != dj->first || i->holds_pins != dj->holds_pins || !detail::same_structure(i->ref(), dj->ref()))
            return false;
    return true;
}

} // namespace guestmem
