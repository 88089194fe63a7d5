/// @file
/// The object's generation counter
/// and a bounded log of the ranges whose shareability changed, for
/// migration (snapshot/changes.hpp reads it; docs/SNAPSHOT.md §Migration).
/// Every conversion that changes something bumps the generation and logs
/// its range (a poison or quarantine event bumps it too, and is remembered:
/// increments carry shareability only, so one made across it is refused); a range that overlaps or touches the newest entry widens it
/// instead of taking a slot (a guest converting page after page costs one
/// entry). The log holds `capacity` entries inside the object (no heap):
/// when it is full the oldest entry goes and `floor` rises to its
/// generation, so a reader asking about an older generation is told to
/// save a full snapshot instead. O(1) per conversion.
///
/// Generations count modulo 2^64 and compare as serial numbers (a is newer
/// than b when a - b, taken as a signed 64-bit value, is positive): the one
/// after 2^64 - 1 is 0, and an object restored near the top keeps logging
/// and answering across the wrap. Generations compared must lie within 2^63
/// of each other; one further back than that reads as the future.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <guestmem/core/page_range.hpp>

namespace guestmem {

/// Generation counter and bounded log of converted ranges (see the file
/// comment). Lock: the owner's (guest_memory: written under its exclusive
/// lock, read through guest_memory::locked_view).
class change_log {
public:
    /// Ranges the log holds before it widens or drops its oldest entries.
    static constexpr std::size_t capacity = 128;
    /// One logged range: object pages [begin, end), last changed at `generation`.
    struct entry {
        page_index begin = 0;          ///< first page of the range
        page_index end = 0;            ///< one past its last page
        std::uint64_t generation = 0;  ///< the newest change the entry covers
    };

    /// Is a newer than b (serial-number order, modulo 2^64)?
    /// Lock: none. Cost: O(1).
    [[nodiscard]] static constexpr bool newer(std::uint64_t a, std::uint64_t b) noexcept {
        return static_cast<std::int64_t>(a - b) > 0;
    }

    /// The current generation.
    /// Lock: the owner's (shared is enough). Cost: O(1).
    [[nodiscard]] std::uint64_t generation() const noexcept { return gen_; }
    /// The oldest generation G for which every change after G is logged.
    /// Lock: the owner's (shared is enough). Cost: O(1).
    [[nodiscard]] std::uint64_t floor() const noexcept { return floor_; }
    /// floor() <= g <= generation(), counted from the floor (across a wrap).
    /// Lock: the owner's (shared is enough). Cost: O(1).
    [[nodiscard]] bool covers(std::uint64_t g) const noexcept { return g - floor_ <= gen_ - floor_; }
    /// Is g newer than the current generation?
    /// Lock: the owner's (shared is enough). Cost: O(1).
    [[nodiscard]] bool in_future(std::uint64_t g) const noexcept { return newer(g, gen_); }

    /// A conversion changed `r`: the generation rises and `r` is logged,
    /// widening the newest entry when it overlaps or touches it, else taking
    /// a slot (the oldest goes, and the floor rises, when the log is full).
    /// Lock: the owner's, exclusive. Cost: O(1); allocates nothing.
    [[gnu::always_inline]] void record(page_range r) noexcept {
        ++gen_;
        if (count_ > 0) {
            entry& last = slot(count_ - 1);
            if (r.begin <= last.end && last.begin <= r.end) {
                last = {std::min(last.begin, r.begin), std::max(last.end, r.end), gen_};
                return;
            }
        }
        if (count_ == capacity) {
            floor_ = slot(0).generation;
            head_ = (head_ + 1) % capacity;
            --count_;
        }
        slot(count_++) = {r.begin, r.end, gen_};
    }

    /// A page was poisoned or quarantined: the generation rises, and an
    /// increment from an older generation cannot carry it (last_poison()).
    /// Lock: the owner's, exclusive. Cost: O(1).
    void poisoned() noexcept {
        last_poison_ = ++gen_;
        any_poison_ = true;
    }
    /// The generation of the newest poison or quarantine event (meaningful
    /// when poisoned_since() can be true).
    /// Lock: the owner's (shared is enough). Cost: O(1).
    [[nodiscard]] std::uint64_t last_poison() const noexcept { return last_poison_; }
    /// Was a page poisoned or quarantined after generation g?
    /// Lock: the owner's (shared is enough). Cost: O(1).
    [[nodiscard]] bool poisoned_since(std::uint64_t g) const noexcept { return any_poison_ && newer(last_poison_, g); }

    /// Visit, oldest first, the ranges of every entry newer than g.
    /// Precondition: covers(g).
    /// Lock: the owner's (shared is enough). Cost: O(capacity) plus the calls of `f`.
    template <class F>
    void for_each_since(std::uint64_t g, F&& f) const {
        for (std::size_t i = 0; i < count_; ++i)
            if (const entry& e = slot(i); newer(e.generation, g)) f(page_range{e.begin, e.end});
    }

    /// Start over at generation g with nothing logged (after a restore).
    /// Lock: the owner's, exclusive. Cost: O(1).
    void reset(std::uint64_t g) noexcept {
        gen_ = floor_ = g;
        head_ = count_ = 0;
        last_poison_ = 0;
        any_poison_ = false;
    }

private:
    entry& slot(std::size_t i) noexcept { return entries_[(head_ + i) % capacity]; }
    const entry& slot(std::size_t i) const noexcept { return entries_[(head_ + i) % capacity]; }

    entry entries_[capacity];
    std::size_t head_ = 0, count_ = 0;
    std::uint64_t gen_ = 0, floor_ = 0, last_poison_ = 0;
    bool any_poison_ = false;
};

} // namespace guestmem
