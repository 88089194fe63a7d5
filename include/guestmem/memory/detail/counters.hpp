// guestmem/memory/detail/counters.hpp — the event counters a guest memory
// object keeps for stats(). Mutations count under the exclusive lock;
// faults run concurrently under the shared lock, so their counters are
// relaxed atomics (a count, not a synchronisation point).
#pragma once

#include <atomic>
#include <cstdint>

#include <guestmem/memory/config.hpp>

namespace guestmem::detail {

struct memory_counters {
    std::uint64_t conversions = 0;
    std::uint64_t noop_conversions = 0;
    std::uint64_t vetoes = 0;
    std::uint64_t busy = 0;
    std::uint64_t rollbacks = 0;
    std::uint64_t deferred = 0;
    std::uint64_t quarantined = 0;
    std::atomic<std::uint64_t> faults{0};
    std::atomic<std::uint64_t> refused_faults{0};

    [[nodiscard]] guest_memory_stats snapshot() const noexcept {
        guest_memory_stats s;
        s.conversions = conversions;
        s.noop_conversions = noop_conversions;
        s.vetoes = vetoes;
        s.busy = busy;
        s.rollbacks = rollbacks;
        s.deferred = deferred;
        s.quarantined = quarantined;
        s.faults = faults.load(std::memory_order_relaxed);
        s.refused_faults = refused_faults.load(std::memory_order_relaxed);
        return s;
    }
};

} // namespace guestmem::detail
