// guestmem/memory/detail/counters.hpp — the event counters a guest memory
// object keeps for stats(). Every one counts under the exclusive lock.
// Faults are deliberately not counted: they run concurrently under the
// shared lock, and a shared counter would be the one cache line every
// faulting thread writes (it halved 2-thread fault throughput).
#pragma once

#include <cstdint>

#include <guestmem/memory/config.hpp>

namespace guestmem::detail {

struct memory_counters {
    std::uint64_t conversions = 0;
    std::uint64_t noop_conversions = 0;
    std::uint64_t vetoes = 0;
    std::uint64_t busy_refusals = 0;
    std::uint64_t rollbacks = 0;
    std::uint64_t deferred_folios = 0;
    std::uint64_t commit_quarantines = 0;

    [[nodiscard]] guest_memory_stats snapshot() const noexcept {
        guest_memory_stats s;
        s.conversions = conversions;
        s.noop_conversions = noop_conversions;
        s.vetoes = vetoes;
        s.busy_refusals = busy_refusals;
        s.rollbacks = rollbacks;
        s.deferred_folios = deferred_folios;
        s.commit_quarantines = commit_quarantines;
        return s;
    }
};

} // namespace guestmem::detail
