/// @file
/// The publication scheme behind gpa_map's lock-free readers: a fixed table
/// of reader records and the grace period a writer waits for before it may
/// reuse (or stop honouring) what it unpublished. It is the shape of
/// userspace RCU's "memb" flavour without its allocations, and of KVM's
/// kvm->srcu around memslots.
///
/// - A reader is a registered record (one per thread that reads, e.g. one
///   per vCPU thread), claimed under the writer's lock. Its `seq` is odd
///   while the thread is inside a read section and even outside; only the
///   owner thread writes it, so entering is a plain load and a store (no
///   atomic read-modify-write), then one full fence, and leaving is one
///   release store. Sections nest: only the outermost touches `seq`.
/// - A writer publishes a new pointer (release), issues a full fence, then
///   synchronize(): for every record whose `seq` it reads odd it waits until
///   `seq` changes (that section has ended; a later one started after the
///   publication and can only see the new pointer). Dekker's argument: the
///   reader's store to `seq` and the writer's store of the pointer are each
///   followed by a full fence before the other side's load, so at least one
///   of them sees the other: the writer waits for the reader, or the reader
///   loads the new pointer.
/// - Under ThreadSanitizer, which does not model fences, the same stores and
///   loads are made seq_cst instead (equivalent ordering, visible to it).
///
/// Costs: enter/leave O(1), touching only the reader's own cache line;
/// synchronize O(MaxReaders) loads plus the wait for the sections it sees
/// (it yields while waiting). Allocates nothing: the records are an array
/// inside the owner. Caveats: a thread must not call synchronize() (a
/// writer) while inside one of its own read sections: it would wait for
/// itself; records are cache-line aligned, so MaxReaders costs 64 bytes each.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

#if defined(__SANITIZE_THREAD__)
#define GUESTMEM_DETAIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GUESTMEM_DETAIL_TSAN 1
#endif
#endif

namespace guestmem::detail {

#if defined(GUESTMEM_DETAIL_TSAN)
inline constexpr bool fences_as_seq_cst = true;
#else
inline constexpr bool fences_as_seq_cst = false;
#endif

/// One reader's record: written by its owner only (seq), claimed and
/// released under the writer's lock (used).
struct alignas(64) reader_record {
    std::atomic<std::uint64_t> seq{0};  ///< odd: inside a read section
    std::atomic<bool> used{false};      ///< claimed by a registered reader
};

/// Store the pointer a writer publishes, then the full fence before
/// synchronize()'s loads.
template <class T>
inline void publish(std::atomic<T*>& where, T* p) noexcept {
    if constexpr (fences_as_seq_cst) {
        where.store(p, std::memory_order_seq_cst);
    } else {
        where.store(p, std::memory_order_release);
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
}

/// Load the published pointer inside a read section.
template <class T>
[[nodiscard]] inline T* read_published(const std::atomic<T*>& where) noexcept {
    return where.load(fences_as_seq_cst ? std::memory_order_seq_cst : std::memory_order_acquire);
}

/// Begin a read section on `r` (the caller owns it; not inside one).
inline void enter(reader_record& r) noexcept {
    const std::uint64_t s = r.seq.load(std::memory_order_relaxed);
    if constexpr (fences_as_seq_cst) {
        r.seq.store(s + 1, std::memory_order_seq_cst);
    } else {
        r.seq.store(s + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
}

/// End the read section on `r`: everything read in it happens before a
/// writer's synchronize() that waited for it.
inline void leave(reader_record& r) noexcept {
    r.seq.store(r.seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

/// The records of up to MaxReaders readers and the writer's grace period.
/// claim() and release() run under the owner's writer lock.
template <std::size_t MaxReaders>
class reader_table {
    static_assert(MaxReaders > 0, "at least one reader");

public:
    /// A free record, now used; nullptr when all MaxReaders are. O(MaxReaders).
    [[nodiscard]] reader_record* claim() noexcept {
        for (reader_record& r : records_) {
            if (r.used.load(std::memory_order_relaxed)) continue;
            r.used.store(true, std::memory_order_relaxed);
            return &r;
        }
        return nullptr;
    }
    /// Give a record back (its owner is outside any read section).
    void release(reader_record& r) noexcept { r.used.store(false, std::memory_order_relaxed); }
    /// Records in use.
    [[nodiscard]] std::size_t in_use() const noexcept {
        std::size_t n = 0;
        for (const reader_record& r : records_) n += r.used.load(std::memory_order_relaxed) ? 1 : 0;
        return n;
    }

    /// Wait until every read section that was open when the caller's last
    /// publish() fenced has ended. O(MaxReaders) plus the wait.
    void synchronize() const noexcept {
        constexpr auto order = fences_as_seq_cst ? std::memory_order_seq_cst : std::memory_order_acquire;
        for (const reader_record& r : records_) {
            const std::uint64_t s = r.seq.load(order);
            if ((s & 1) == 0) continue;
            while (r.seq.load(order) == s) std::this_thread::yield();
        }
    }

private:
    std::array<reader_record, MaxReaders> records_{};
};

} // namespace guestmem::detail
