// guestmem/folio/detail/folio_dump.hpp — folio_table::dump(): a readable
// listing of top-level folios, their split structure (runs of identical
// intact pieces collapsed into one line) and the pin runs.
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

inline void dump_rec(std::ostream& os, const folio_rec& x, page_index first, int depth) {
    const std::string_view m = to_string(x.map);
    if (!x.split()) {
        if (x.poisoned())
            dump_line(os, depth, "[%#" PRIx64 ", %#" PRIx64 ") order %u frame %#" PRIx64 " %.*s POISONED at %#" PRIx64,
                      first, first + pages_in(x.order), unsigned{x.order}, x.frame, int(m.size()), m.data(), x.poison);
        else
            dump_line(os, depth, "[%#" PRIx64 ", %#" PRIx64 ") order %u frame %#" PRIx64 " %.*s", first,
                      first + pages_in(x.order), unsigned{x.order}, x.frame, int(m.size()), m.data());
        return;
    }
    dump_line(os, depth, "[%#" PRIx64 ", %#" PRIx64 ") order %u frame %#" PRIx64 " split to order %u", first,
              first + pages_in(x.order), unsigned{x.order}, x.frame, unsigned{next_lower_order(x.order)});
    const folio_order co = next_lower_order(x.order);
    std::uint32_t i = 0;
    while (i < split_fanout) {
        const folio_rec& c = x.children[i];
        std::uint32_t j = i + 1;
        if (!c.split() && !c.poisoned())
            while (j < split_fanout && !x.children[j].split() && !x.children[j].poisoned() &&
                   x.children[j].map == c.map)
                ++j;
        if (j - i == 1) {
            dump_rec(os, c, first + (std::uint64_t{i} << co), depth + 1);
        } else {
            const std::string_view cm = to_string(c.map);
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
                      " quarantined pages",
                      size_, unsigned{max_order_}, c.top_folios, c.allocated_pages, c.split_folios, c.pinned_pages,
                      c.poisoned_folios, c.quarantined_pages);
    for (const auto& t : tops_) detail::dump_rec(os, t.rec, t.first, 1);
    pins_.for_each([&](page_index b, page_index e, std::uint32_t n) {
        detail::dump_line(os, 1, "pins [%#" PRIx64 ", %#" PRIx64 ") x%u", b, e, n);
    });
}

} // namespace guestmem
