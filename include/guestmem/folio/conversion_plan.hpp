/// @file
/// folio_table::plan: what a conversion must restructure. At most four
/// splits (the leaves holding the first and last page of the range, each at
/// most two levels), each with its reserved piece array and allocator
/// reservation. Built by folio_table::plan_into, filled by
/// prepare_conversion, consumed by commit_conversion or abort_conversion;
/// its working state is the table's alone.
#pragma once

#include <algorithm>
#include <iterator>

#include <guestmem/core/page_range.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/folio/detail/folio_node.hpp>

namespace guestmem {

/// What a conversion must restructure: at most four splits (the leaves
/// holding the first and last page of the range, each at most two
/// levels). `Table` is the folio_table that plans, prepares and commits it
/// (only it can fill the plan). Movable; a plan destroyed or assigned over
/// while prepared aborts itself on its table.
///
/// Life cycle: built as plan{r, to}, filled by folio_table::plan_into ->
/// prepare_conversion (fallible: split metadata and piece arrays) ->
/// commit_conversion (cannot fail) or abort_conversion (changes nothing). Locking: none of its own; it is used
/// under the same serialisation as its table (guest_memory's exclusive
/// lock), and a prepared plan must not outlive its table.
template <class Table>
class conversion_plan {
public:
    /// The most splits one conversion can need.
    static constexpr unsigned max_splits = 4;

    /// An empty plan (nothing to convert).
    conversion_plan() = default;
    /// A plan for converting r to `to`, to be filled by plan_into.
    conversion_plan(page_range r, shareability t) noexcept : range(r), to(t) {}
    conversion_plan(const conversion_plan&) = delete;
    conversion_plan& operator=(const conversion_plan&) = delete;
    /// Take over `o`'s splits and reservation; `o` is left unprepared with
    /// no split (destroying it aborts nothing).
    conversion_plan(conversion_plan&& o) noexcept { take(o); }
    /// Abort this plan's reservation, if any, then take over `o`'s.
    conversion_plan& operator=(conversion_plan&& o) noexcept {
        if (this != &o) {
            release();
            take(o);
        }
        return *this;
    }
    /// Aborts the reservation, if the plan still holds one.
    ~conversion_plan() { release(); }

    /// The range the plan was made for.
    [[nodiscard]] page_range pages() const noexcept { return range; }
    /// The shareability the range converts to.
    [[nodiscard]] shareability target() const noexcept { return to; }
    /// How many folios the conversion splits.
    [[nodiscard]] unsigned splits() const noexcept { return count; }
    /// True between a successful prepare_conversion and its commit or abort.
    [[nodiscard]] bool prepared() const noexcept { return owner_ != nullptr; }

private:
    friend Table;
    struct split_op {  // no initializers: only ops[0, count) are ever read
        page_index first;
        frame_number frame;
        folio_order from;
        detail::piece_array* children;  ///< reserved piece array
        bool reserved;                  ///< allocator reservation held
    };

    page_range range{};
    shareability to = shareability::shared;
    /// The top folio holding range.begin or the first after it (null: none),
    /// found by the plan and reused by commit_conversion and merge_eligible: the set of
    /// top folios does not change during a conversion.
    const detail::top_folio* first_top = nullptr;
    /// The one leaf holding the whole range, when the plan found it and
    /// splits nothing (null otherwise): commit_conversion moves it alone,
    /// without a walk. The leaves do not change before the commit.
    detail::folio_ref leaf{};
    split_op ops[max_splits];
    unsigned count = 0;

    void take(conversion_plan& o) noexcept {
        range = o.range;
        to = o.to;
        first_top = o.first_top;
        leaf = o.leaf;
        count = o.count;
        std::copy(o.ops, o.ops + o.count, ops);
        owner_ = o.owner_;
        o.owner_ = nullptr;
        o.count = 0;
    }
    void release() noexcept {
        if (owner_ != nullptr) owner_->abort_conversion(*this);
    }
    Table* owner_ = nullptr;
};

} // namespace guestmem
