// guestmem/guestmem.hpp — the umbrella header: everything an embedder needs
// from one include. Linux-only backends live under <guestmem/linux/...> and
// are included separately.
#pragma once

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/folio/allocator.hpp>
#include <guestmem/notifier/consumer.hpp>
