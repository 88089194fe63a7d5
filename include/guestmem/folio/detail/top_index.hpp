// guestmem/folio/detail/top_index.hpp — a direct-mapped index of the live
// top-level folios of the table's largest order, for the fault path's
// lookup: slot i holds the top-level folio that starts at page i << order,
// if there is one of that order, else null. A lookup that finds its slot
// filled skips the rbtree walk (about 80 instructions at 2,048 folios); one
// that finds it empty (a hole, or smaller top-level folios) falls back to
// the tree, so the index is only ever a shortcut.
//
// Cost: 8 bytes per max-order block of the object (4 KiB per GiB with 2 MiB
// folios, 8 bytes per GiB with 1 GiB ones), taken from the node allocator
// by the first populate (reserve(): its failure is that populate's
// out_of_memory, like any record's). Kept only for max orders of 2 MiB and
// up and at most 2^22 slots (32 MiB; an object of more than 8 TiB in 2 MiB
// folios goes without, and every lookup walks the tree).
// Locking: the owner's (mutations under its exclusive lock, find under its
// shared lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include <guestmem/core/types.hpp>
#include <guestmem/folio/detail/folio_node.hpp>

namespace guestmem::detail {

template <class NodeAllocator>
class top_index {
    using slot_alloc = typename std::allocator_traits<NodeAllocator>::template rebind_alloc<top_folio*>;
    using traits = std::allocator_traits<slot_alloc>;

public:
    static constexpr std::uint64_t max_slots = std::uint64_t{1} << 22;

    top_index(page_index size, folio_order order, const NodeAllocator& na) noexcept
        : alloc_(na), order_(order), count_((size + pages_in(order) - 1) >> order),
          usable_(order >= order_2m && count_ > 0 && count_ <= max_slots) {}
    top_index(const top_index&) = delete;
    top_index& operator=(const top_index&) = delete;
    ~top_index() {
        if (slots_ != nullptr) traits::deallocate(alloc_, slots_, count_);
    }

    /// The top-level folio of the largest order holding p, or null (not
    /// indexed: ask the tree). O(1).
    [[nodiscard, gnu::always_inline]] const top_folio* find(page_index p) const noexcept {
        if (slots_ == nullptr) return nullptr;
        const std::uint64_t i = p >> order_;
        return i < count_ ? slots_[i] : nullptr;
    }
    /// Make sure the slots exist (the first call allocates them); false
    /// when the node allocator has no memory for them. O(slots) once.
    [[nodiscard]] bool reserve() noexcept {
        if (!usable_ || slots_ != nullptr) return true;
        slots_ = traits::allocate(alloc_, count_);
        if (slots_ == nullptr) return false;
        for (std::uint64_t i = 0; i < count_; ++i) slots_[i] = nullptr;
        return true;
    }
    /// Index `t` if it has the largest order (after a successful reserve()).
    void add(top_folio& t) noexcept {
        if (slots_ != nullptr && t.order == order_) slots_[t.first >> order_] = &t;
    }
    /// Forget `t` (it leaves the live set).
    void remove(const top_folio& t) noexcept {
        if (slots_ == nullptr || t.order != order_) return;
        top_folio*& s = slots_[t.first >> order_];
        if (s == &t) s = nullptr;
    }

private:
    slot_alloc alloc_;
    folio_order order_;
    std::uint64_t count_;
    bool usable_;
    top_folio** slots_ = nullptr;
};

} // namespace guestmem::detail
