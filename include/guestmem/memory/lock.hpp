/// @file
/// The lock policy of a guest memory object. Faults take the lock shared;
/// every mutation (allocate, punch_hole, convert, pin, unpin,
/// memory_failure, bind, unbind) takes it exclusive. `sharded_shared_mutex<>`
/// is the default: its readers write only their own cache line, so faults
/// on several threads scale (about 2x fault throughput on 2 threads against
/// 1.2-1.3x with std::shared_mutex, bench/RESULTS.md), and its uncontended
/// read side is about a third of std::shared_mutex's instructions; a writer
/// pays a scan of the reader slots (16 cache lines). `null_lock` is for
/// single-threaded embedders that serialise calls themselves and want to pay
/// nothing; std::shared_mutex (or any lock_policy) for an embedder that
/// prefers the standard one, or one object per thread of many.
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <thread>

namespace guestmem {

/// Any type with lock/unlock and lock_shared/unlock_shared (the shape of
/// SharedLockable; try_lock is not required). guest_memory's `Lock`
/// parameter.
template <class L>
concept lock_policy = requires(L& l) {
    l.lock();
    l.unlock();
    l.lock_shared();
    l.unlock_shared();
};

/// A lock that does nothing, for embedders with one thread per object (or
/// that serialise every call to the object themselves, faults included).
struct null_lock {
    constexpr void lock() noexcept {}           ///< does nothing
    constexpr void unlock() noexcept {}         ///< does nothing
    constexpr void lock_shared() noexcept {}    ///< does nothing
    constexpr void unlock_shared() noexcept {}  ///< does nothing
};

/// A reader-writer lock in the shape of Linux's percpu_rw_semaphore: each
/// thread counts itself in one of `Slots` padded reader slots, so readers on
/// different threads write different cache lines, and the uncontended read
/// side is one atomic increment and one load. A writer raises a flag (new
/// readers back off, so writers are not starved), then waits for every slot
/// to drain. Writers are rare here (conversions); faults are the readers.
/// std::shared_mutex instead bounces one reader count between all cores.
///
/// A thread takes a slot on first use (round robin) and keeps it; threads
/// beyond `Slots` share slots, which stays correct but shares cache lines.
/// Not recursive; a thread may not upgrade from shared to exclusive. The
/// object takes `Slots` + 1 cache lines.
template <std::size_t Slots = 16>
class sharded_shared_mutex {
    static_assert(Slots > 0);

public:
    /// Marks this lock's try_lock_shared as safe from the exclusive holder (memory/reentry.hpp).
    using sharded_tag = void;
    /// The number of reader slots (try_lock_shared_slot's "nothing held").
    static constexpr std::size_t slots = Slots;
    sharded_shared_mutex() = default;
    sharded_shared_mutex(const sharded_shared_mutex&) = delete;
    sharded_shared_mutex& operator=(const sharded_shared_mutex&) = delete;

    /// Take the lock shared. Uncontended: one atomic increment and one load
    /// on this thread's own slot. While a writer holds or waits for the
    /// lock, the reader backs off and yields until it is released.
    void lock_shared() noexcept {
        auto& mine = slots_[slot_index()].readers;
        for (;;) {
            // Dekker with lock(): both sides write, then read the other's
            // variable, all sequentially consistent, so at least one sees
            // the other.
            mine.fetch_add(1, std::memory_order_seq_cst);
            if (!writer_.load(std::memory_order_seq_cst)) return;
            mine.fetch_sub(1, std::memory_order_release);
            while (writer_.load(std::memory_order_acquire)) std::this_thread::yield();
        }
    }
    /// Take the lock shared if no writer holds or waits for it: lock_shared's
    /// uncontended path, false (nothing held) instead of waiting. Well
    /// defined from the thread that holds the lock exclusive (false), which
    /// guest_memory's fault relies on to check for re-entry only then.
    [[nodiscard]] bool try_lock_shared() noexcept {
        auto& mine = slots_[slot_index()].readers;
        mine.fetch_add(1, std::memory_order_seq_cst);
        if (!writer_.load(std::memory_order_seq_cst)) return true;
        mine.fetch_sub(1, std::memory_order_release);
        return false;
    }
    /// Release a shared hold taken by this thread.
    void unlock_shared() noexcept { slots_[slot_index()].readers.fetch_sub(1, std::memory_order_release); }
    /// try_lock_shared with no call on any path, for the fastest readers
    /// (guest_memory::try_fault): the slot this thread counted itself in, or
    /// `Slots` (nothing held) when a writer holds or waits for the lock or
    /// this thread has no slot yet (it takes one on its first lock_shared or
    /// try_lock_shared). Release with unlock_shared_slot.
    [[nodiscard]] std::size_t try_lock_shared_slot() noexcept {
        const std::size_t i = this_slot;
        if (i == Slots) [[unlikely]]
            return Slots;
        slots_[i].readers.fetch_add(1, std::memory_order_seq_cst);
        if (!writer_.load(std::memory_order_seq_cst)) [[likely]]
            return i;
        slots_[i].readers.fetch_sub(1, std::memory_order_release);
        return Slots;
    }
    /// Release the hold try_lock_shared_slot took in slot `i`.
    void unlock_shared_slot(std::size_t i) noexcept { slots_[i].readers.fetch_sub(1, std::memory_order_release); }

    /// Take the lock exclusive: raise the writer flag (the flag is also the
    /// writers' lock: one exchange; a second writer yields until it drops),
    /// then wait, yielding, until every slot's readers have left. O(Slots):
    /// the uncontended case is one pass of straight-line loads (the slots'
    /// counts OR-ed together, no branch per slot); only a slot seen busy is
    /// waited for, slot by slot.
    void lock() noexcept {
        while (writer_.exchange(true, std::memory_order_seq_cst))
            while (writer_.load(std::memory_order_relaxed)) std::this_thread::yield();
        // The same seq_cst loads as the wait below, each slot read once: a
        // slot seen at 0 after the exchange stays free of readers (they see
        // the flag and back off), so all zero means the lock is ours.
        std::uint32_t busy = 0;
#pragma GCC unroll 16
        for (auto& s : slots_) busy |= s.readers.load(std::memory_order_seq_cst);
        if (busy != 0) [[unlikely]]
            wait_for_readers();
    }
    /// Release the exclusive hold: readers and the next writer may enter.
    void unlock() noexcept { writer_.store(false, std::memory_order_release); }

private:
    [[gnu::noinline]] void wait_for_readers() noexcept {
        for (auto& s : slots_)
            while (s.readers.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
    }

    struct alignas(64) slot {
        std::atomic<std::uint32_t> readers{0};
    };
    /// A thread keeps one slot for its lifetime (round robin on first use),
    /// so unlock_shared finds the slot lock_shared counted in.
    /// The thread-local is constant-initialised (Slots: none yet), so each
    /// access is a plain TLS load, with no initialisation guard.
    static inline thread_local std::size_t this_slot = Slots;
    static std::size_t slot_index() noexcept {
        if (this_slot == Slots) [[unlikely]]
            this_slot = take_slot();
        return this_slot;
    }
    [[gnu::noinline]] static std::size_t take_slot() noexcept {
        static std::atomic<std::size_t> next{0};
        return next.fetch_add(1, std::memory_order_relaxed) % Slots;
    }

    slot slots_[Slots];
    alignas(64) std::atomic<bool> writer_{false};  // a writer holds or waits for the lock
};

static_assert(lock_policy<std::shared_mutex>);
static_assert(lock_policy<null_lock>);
static_assert(lock_policy<sharded_shared_mutex<>>);

} // namespace guestmem
