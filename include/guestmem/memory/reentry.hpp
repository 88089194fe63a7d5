/// @file
/// Two small hooks of the guest memory object that live outside it:
///
/// - Re-entry detection. Every consumer callback runs under the object's
///   exclusive lock, so a callback that calls back into the same object
///   (even a read such as shareability_at) would wait for its own thread
///   forever. Each thread keeps a list of the objects whose exclusive lock
///   it holds while running their callbacks (a node on the stack per
///   object, so a callback of A that converts B, whose callback reads A, is
///   caught too); every locking call of the object checks it first and
///   returns errc::would_deadlock instead of hanging, in every build type.
///   Cost: one thread-local load and a branch per call while no lock is
///   held; a walk of the (short) list otherwise.
/// - unblock_notifier: told, under the object's lock, when something that
///   can unblock a refused conversion happened (a pin dropped, a range
///   changed shareability, pages left the object, a binding went away). The
///   object stays platform-free; kvm/retry_notifier.hpp implements it with
///   an eventfd for the exit router's vmm_retries policy.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>

namespace guestmem {

/// Told when a refused conversion may now succeed (see the file
/// description). Called under the object's exclusive lock: it must not
/// call into the object (would_deadlock) and should be quick (an eventfd
/// write). Never told of failed calls.
class unblock_notifier {
public:
    unblock_notifier() = default;
    unblock_notifier(const unblock_notifier&) = delete;
    unblock_notifier& operator=(const unblock_notifier&) = delete;
    virtual ~unblock_notifier() = default;
    /// Something changed over object pages `pages` (all of them for an unbind).
    virtual void unblocked(page_range pages) noexcept = 0;
};

namespace detail {

/// One object whose exclusive lock this thread holds while it runs the
/// object's callbacks; `outer` is the one it held before (or nullptr).
struct held_object {
    const void* object;
    const held_object* outer;
};

/// This thread's innermost held object (nullptr: none). Constant-initialised:
/// a plain thread-local load.
inline thread_local const held_object* held_objects = nullptr;

[[gnu::noinline]] inline bool held_deeper(const void* object) noexcept {
    for (const held_object* h = held_objects; h != nullptr; h = h->outer)
        if (h->object == object) return true;
    return false;
}

/// Whether this thread runs a callback of `object` (holds its lock). O(1)
/// while it holds none.
[[gnu::always_inline]] inline bool this_thread_holds(const void* object) noexcept {
    return held_objects != nullptr && held_deeper(object);
}

/// Marks `object` held by this thread for the marker's lifetime (take the
/// lock first, then build the marker).
class hold_marker {
public:
    explicit hold_marker(const void* object) noexcept : node_{object, held_objects} { held_objects = &node_; }
    hold_marker(const hold_marker&) = delete;
    hold_marker& operator=(const hold_marker&) = delete;
    ~hold_marker() { held_objects = node_.outer; }

private:
    held_object node_;
};

/// Whether `L` is a sharded_shared_mutex (memory/lock.hpp), whose
/// try_lock_shared is defined for the thread holding it exclusive.
template <class L>
inline constexpr bool is_sharded_lock = requires(L& l) {
    { l.try_lock_shared() } -> std::same_as<bool>;
    typename L::sharded_tag;
};

/// errc::would_deadlock for a call of `call` made from a callback.
[[gnu::cold, gnu::noinline]] inline error reentered(const char* call) noexcept {
    return error::make(errc::would_deadlock, no_page,
                       "guest_memory::%s was called from a consumer callback (or unblock notifier) of the same "
                       "object, on the thread that holds its lock: it would wait for itself forever; defer the call "
                       "until the callback returns",
                       call);
}

} // namespace detail
} // namespace guestmem
