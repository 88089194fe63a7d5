// guestmem/view/detail/storage_block.hpp — the control block of a shared
// storage: the guest_memory itself (constructed in place, destroyed when
// the last view closes), the view and owner tables (fixed size, laid out
// after the block in the same allocation) and two counts: open views keep
// the storage alive, memory_view objects (open or stale) keep the block
// alive. One allocation from the embedder's control allocator; nothing
// else is allocated here. The table lock (the storage's lock policy) guards
// the tables and the open count; refs is atomic.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <shared_mutex>

#include <guestmem/core/access_policy.hpp>
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/view/handles.hpp>

namespace guestmem::detail {

/// The policies of a guest_memory type, named.
template <class M>
struct memory_traits;
template <folio_allocator A, invalidation_consumer C, lock_policy L, class N>
struct memory_traits<guest_memory<A, C, L, N>> {
    using allocator = A;
    using consumer = C;
    using lock = L;
    using node_allocator = N;
};

template <class Memory, class ControlAllocator>
struct storage_block {
    using traits = memory_traits<Memory>;
    using consumer_type = typename traits::consumer;
    using vb_access = view_binding_access<view_binding<consumer_type>>;

    struct view_record {
        std::uint64_t generation = 0;
        bool open = false;
        owner_id owner{};
        access_policy policy{};
        typename vb_access::list bindings;
    };
    struct owner_record {
        std::uint64_t generation = 0;
        bool open = false;
        std::uint32_t views = 0;
    };
    using unit_allocator = typename std::allocator_traits<ControlAllocator>::template rebind_alloc<storage_block>;

    mutable typename traits::lock lock;
    std::atomic<std::uint64_t> refs{1};
    std::uint32_t open_views = 0;
    std::uint32_t max_views = 0, max_owners = 0;
    std::size_t units = 0;
    unit_allocator alloc;
    view_record* views = nullptr;
    owner_record* owners = nullptr;
    alignas(Memory) unsigned char memory_bytes[sizeof(Memory)];

    explicit storage_block(const unit_allocator& a) : alloc(a) {}

    Memory& memory() noexcept { return *std::launder(reinterpret_cast<Memory*>(memory_bytes)); }
    const Memory& memory() const noexcept { return *std::launder(reinterpret_cast<const Memory*>(memory_bytes)); }

    bool live(view_id v) const noexcept {
        return v.generation != 0 && v.slot < max_views && views[v.slot].open && views[v.slot].generation == v.generation;
    }
    bool live(owner_id o) const noexcept {
        return o.generation != 0 && o.slot < max_owners && owners[o.slot].open && owners[o.slot].generation == o.generation;
    }

    static std::size_t units_for(std::uint32_t max_views, std::uint32_t max_owners) noexcept {
        const std::size_t bytes = sizeof(storage_block) + std::size_t(max_views) * sizeof(view_record) +
                                  std::size_t(max_owners) * sizeof(owner_record);
        return (bytes + sizeof(storage_block) - 1) / sizeof(storage_block);
    }

    /// One allocation: the block, then the view table, then the owner
    /// table. nullptr when the allocator returns nullptr.
    static storage_block* make(const ControlAllocator& ctl, std::uint32_t max_views, std::uint32_t max_owners) {
        unit_allocator a(ctl);
        const std::size_t n = units_for(max_views, max_owners);
        storage_block* b = std::allocator_traits<unit_allocator>::allocate(a, n);
        if (b == nullptr) return nullptr;
        ::new (static_cast<void*>(b)) storage_block(a);
        b->units = n;
        b->max_views = max_views;
        b->max_owners = max_owners;
        auto* raw = reinterpret_cast<unsigned char*>(b) + sizeof(storage_block);
        b->views = reinterpret_cast<view_record*>(raw);
        for (std::uint32_t i = 0; i < max_views; ++i) ::new (static_cast<void*>(b->views + i)) view_record();
        raw += std::size_t(max_views) * sizeof(view_record);
        static_assert(alignof(owner_record) <= alignof(view_record) && alignof(view_record) <= alignof(storage_block));
        b->owners = reinterpret_cast<owner_record*>(raw);
        for (std::uint32_t i = 0; i < max_owners; ++i) ::new (static_cast<void*>(b->owners + i)) owner_record();
        return b;
    }

    /// Free the block (the storage must already be destroyed: no view open).
    static void unmake(storage_block* b) noexcept {
        unit_allocator a(b->alloc);
        const std::size_t n = b->units;
        for (std::uint32_t i = 0; i < b->max_owners; ++i) std::destroy_at(b->owners + i);
        for (std::uint32_t i = 0; i < b->max_views; ++i) std::destroy_at(b->views + i);
        std::destroy_at(b);
        std::allocator_traits<unit_allocator>::deallocate(a, b, n);
    }

    /// Open view slot `i` for owner `o` (table lock held exclusive).
    view_id open_slot(std::uint32_t i, owner_id o, access_policy p) noexcept {
        view_record& v = views[i];
        v.open = true;
        v.owner = o;
        v.policy = p;
        if (++v.generation == 0) v.generation = 1;  // 0 never names a live view
        ++owners[o.slot].views;
        ++open_views;
        return {i, v.generation};
    }

    /// Close view slot `i` (table lock held exclusive): release each of its
    /// bindings (unbind: the consumer gets its release), then free the
    /// slot; the last open view destroys the storage.
    void close_view(std::uint32_t i) noexcept {
        view_record& v = views[i];
        while (!v.bindings.empty()) {
            view_binding<consumer_type>& vb = v.bindings.front();
            (void)memory().unbind(vb_access::handle(vb));  // cannot fail for a bound binding
            vb_access::hook(vb).unlink();
            vb_access::set(vb, {}, {});
        }
        v.open = false;
        --owners[v.owner.slot].views;
        if (--open_views == 0) std::destroy_at(&memory());
    }
};

} // namespace guestmem::detail
