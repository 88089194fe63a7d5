/// @file
/// The umbrella header: everything an embedder needs from one include.
/// Linux-only backends live under `<guestmem/linux/...>` and are included
/// separately (`<guestmem/linux/linux.hpp>`). Test doubles (the simulated
/// and fault-injecting allocators, the recording consumer, the touch probe)
/// live under `<guestmem/testing/...>`, outside this header.
#pragma once

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/core/version.hpp>
#include <guestmem/folio/allocator.hpp>
#include <guestmem/folio/folio_table.hpp>
#include <guestmem/folio/mappability.hpp>
#include <guestmem/memory/config.hpp>
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/memory/lock.hpp>
#include <guestmem/notifier/binding.hpp>
#include <guestmem/notifier/consumer.hpp>
#include <guestmem/notifier/notifier_set.hpp>
#include <guestmem/range_map/range_map.hpp>
#include <guestmem/view/memory_view.hpp>
