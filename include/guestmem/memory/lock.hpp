// guestmem/memory/lock.hpp — the lock policy of a guest memory object.
// Faults take the lock shared; every mutation (allocate, punch_hole,
// convert, pin, unpin, memory_failure, bind, unbind) takes it exclusive.
// std::shared_mutex is the default; `null_lock` is for single-threaded
// embedders that serialise calls themselves and want to pay nothing.
#pragma once

#include <concepts>
#include <mutex>
#include <shared_mutex>

namespace guestmem {

/// Any type with lock/unlock and lock_shared/unlock_shared (SharedLockable).
template <class L>
concept lock_policy = requires(L& l) {
    l.lock();
    l.unlock();
    l.lock_shared();
    l.unlock_shared();
};

/// A lock that does nothing, for embedders with one thread per object.
struct null_lock {
    constexpr void lock() noexcept {}
    constexpr void unlock() noexcept {}
    constexpr void lock_shared() noexcept {}
    constexpr void unlock_shared() noexcept {}
};

static_assert(lock_policy<std::shared_mutex>);
static_assert(lock_policy<null_lock>);

} // namespace guestmem
