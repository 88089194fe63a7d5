// guestmem/memory/detail/fault_errors.hpp — the refusals of
// guest_memory::fault, built out of line so the fault path itself stays
// small enough to inline into the caller's loop. Internal: the messages are
// documented with fault().
#pragma once

#include <cinttypes>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/folio/mappability.hpp>

namespace guestmem::detail {

/// A fault refused before any lookup: the page past `size`, a bad enum, or
/// an accessor the access policy keeps from `wanted`.
[[gnu::cold, gnu::noinline]] inline error fault_argument_error(page_index page, page_index size, shareability wanted,
                                                                accessor who) noexcept {
    if (auto s = check_page(page, size); !s) return s.error();
    if (!is_valid(wanted))
        return error::make(errc::invalid_argument, page, "shareability %u is not shared or guest_only", unsigned(wanted));
    if (!is_valid(who))
        return error::make(errc::invalid_argument, page, "accessor %u is not host, hypervisor, device or trusted_device",
                           unsigned(who));
    const auto who_name = to_string(who);
    return error::make(errc::permission_denied, page, "the %.*s may not take a guest_only fault (page %#" PRIx64 ")",
                       int(who_name.size()), who_name.data(), page);
}

/// The page is not `wanted`.
[[gnu::cold, gnu::noinline]] inline error fault_shareability_error(page_index page, shareability actual,
                                                                    shareability wanted) noexcept {
    return error::make(errc::permission_denied, page, "page %#" PRIx64 " is %s, not %s", page,
                       actual == shareability::shared ? "shared" : "guest_only",
                       wanted == shareability::shared ? "shared" : "guest_only");
}

/// No folio backs the page (`hole`), or its folio is poisoned.
[[gnu::cold, gnu::noinline]] inline error fault_folio_error(page_index page, bool hole) noexcept {
    if (hole) return error::make(errc::not_allocated, page, "page %#" PRIx64 " is not allocated", page);
    return error::make(errc::poisoned, page, "page %#" PRIx64 " is poisoned", page);
}

/// The mappability table refused the fault (`t`, from mappability `m`).
[[gnu::cold, gnu::noinline]] inline error fault_mappability_error(page_index page, mappability m,
                                                                   mappability_transition t) noexcept {
    return error::make(t.refusal, page, "page %#" PRIx64 " (mappability %s): %.*s", page, to_string(m).data(),
                       int(t.why.size()), t.why.data());
}

} // namespace guestmem::detail
