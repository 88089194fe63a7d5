// tests/support/failing_allocator.hpp — the one node allocator the tests
// use to count allocations and to fail the N-th one. A standard allocator
// whose copies share one control block; allocate() returns nullptr on the
// fail_at-th call (counted from the start; 0 = never), the library's
// documented out-of-memory signal. Memory honours the node type's
// alignment (the range map's nodes are over-aligned).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace guestmem::test_support {

struct alloc_control {
    std::int64_t calls = 0;     ///< allocate() calls, failed ones included
    std::int64_t fail_at = 0;   ///< the call number that returns nullptr (0 = never)
    std::int64_t failures = 0;  ///< calls that returned nullptr
    std::int64_t allocs = 0;    ///< successful allocations
    std::int64_t deallocs = 0;
    std::int64_t live = 0;      ///< allocations not yet given back
};

template <class T>
struct failing_allocator {
    using value_type = T;
    alloc_control* ctl;

    explicit failing_allocator(alloc_control* c) noexcept : ctl(c) {}
    template <class U>
    failing_allocator(const failing_allocator<U>& o) noexcept : ctl(o.ctl) {}

    T* allocate(std::size_t n) noexcept {
        if (++ctl->calls == ctl->fail_at) {
            ++ctl->failures;
            return nullptr;
        }
        ++ctl->allocs;
        ++ctl->live;
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{alignof(T)}, std::nothrow));
    }
    void deallocate(T* p, std::size_t) noexcept {
        ++ctl->deallocs;
        --ctl->live;
        ::operator delete(p, std::align_val_t{alignof(T)});
    }
    template <class U>
    bool operator==(const failing_allocator<U>& o) const noexcept {
        return ctl == o.ctl;
    }
};

} // namespace guestmem::test_support
