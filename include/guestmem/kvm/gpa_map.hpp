/// @file
/// The guest physical address (GPA) map of a VM: which memslot, which guest
/// memory object and which page of it back each guest frame. A VMM adds one
/// slot per KVM memslot (slot id, GPA base, size in pages, object, first
/// object page), looks GPAs up, splits GPA ranges into per-object page
/// ranges, and converts GPA ranges through the objects.
///
/// Units: GPAs are byte addresses (`gpa`), sizes and counts are 4 KiB pages,
/// and a guest frame number (GFN, `gpa / 4096`) is what every error of this
/// header carries in error().page(). The guest physical space is 2^64 bytes,
/// so GFNs end at 2^52 (max_gfn).
///
/// Policies (docs/DESIGN.md §KVM layer):
/// - Overlap: two slots never share a GPA frame, and two slots never map the
///   same page of one object (no aliases). guest_memfd refuses to bind one
///   file range to two memslots, and a conversion through one alias would
///   silently change what the other GPA reaches; refusing aliases also makes
///   the object page -> GFN translation of errors unique. Both are
///   already_bound (KVM's EEXIST for overlapping memslots): an overlap at
///   the first GFN both slots hold, an alias at the GFN (in the new slot) of
///   the lowest object page another slot already maps.
/// - Conversion across slots: a GPA range inside one object whose slots
///   follow each other without a hole and map contiguous object pages is ONE
///   `Memory::convert` (all or nothing, one round of consumers). A range
///   that reaches a hole, a second object, or a jump in object pages is
///   refused with invalid_range at the first GFN where it breaks, before any
///   object is touched: guest_memory has no two-phase protocol across
///   objects, and converting the parts one by one could leave half done.
/// - Errors from `Memory::convert` come back with error().page() translated
///   from the object page to its GFN; the message starts with the GFN and
///   the object page, then the object's own message.
///
/// Costs: lookup O(log slots) (binary search over slots sorted by GPA);
/// add_slot and remove_slot O(slots + MaxReaders) plus the wait for the read
/// sections open when they publish; for_each_piece and convert O(log slots
/// + slots crossed). Capacity is fixed (`MaxSlots` slots, `MaxReaders`
/// registered readers); nothing allocates: the map holds two slot tables
/// and the reader records inside itself (about 2 x 40 x MaxSlots + 64 x
/// MaxReaders bytes: 9 KiB with the defaults).
///
/// Locking (docs/DESIGN.md §KVM layer, detail/grace_period.hpp): slots may
/// change while vCPU threads look up and convert. Readers take no lock: a
/// thread registers a `reader` once (register_reader) and wraps each lookup
/// or conversion, with everything it does with the slot it found, in a
/// `read_section` (a store and a fence on the reader's own record, no
/// atomic read-modify-write). Slots live in an immutable table published by
/// pointer; add_slot and remove_slot serialise on the map's writer mutex,
/// build the other table, publish it, and wait until every read section
/// open at that moment has ended before they return. So after remove_slot
/// returns, no thread still routes through the removed slot (its object may
/// go). Calls made outside any read section (find, convert, iteration,
/// size) are safe only while no other thread changes slots; a writer must
/// not be called inside a read section of its own thread (it would wait for
/// itself). Conversions take each object's own exclusive lock, so those of
/// one object serialise (each all or nothing) and faults, under its shared
/// lock, never see a range half converted. Needs no Linux header.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cinttypes>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>
#include <type_traits>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/kvm/detail/grace_period.hpp>
#include <guestmem/memory/config.hpp>

namespace guestmem {

/// One past the largest guest frame number: the 2^64-byte guest physical
/// space holds 2^52 pages.
inline constexpr std::uint64_t max_gfn = std::uint64_t{1} << (64 - page_shift);

/// What a gpa_map needs of a guest memory object: its size in pages and an
/// all-or-nothing convert (guest_memory satisfies it).
template <class M>
concept gpa_memory = requires(M& m, const M& cm, page_range r, shareability s, convert_options o) {
    { cm.size() } -> std::convertible_to<page_index>;
    { m.convert(r, s, o) } -> std::same_as<status>;
};

/// One memslot in a gpa_map: guest frames `frames` are object pages
/// [first, first + frames.size()) of `*memory`.
template <class Memory>
struct gpa_slot {
    std::uint32_t id = 0;      ///< the VMM's slot id (KVM's memslot number)
    page_range frames;         ///< guest frame numbers the slot covers
    Memory* memory = nullptr;  ///< the object backing it (not owned)
    page_index first = 0;      ///< object page of frames.begin

    /// The object page behind guest frame `gfn`. Precondition: frames.contains(gfn).
    /// Lock: none. Cost: O(1).
    [[nodiscard]] constexpr page_index object_page(std::uint64_t gfn) const noexcept { return first + (gfn - frames.begin); }
    /// The object pages the slot maps: [first, first + frames.size()).
    /// Lock: none. Cost: O(1).
    [[nodiscard]] constexpr page_range pages() const noexcept { return {first, first + frames.size()}; }
    /// The guest physical address of the slot's first byte.
    /// Lock: none. Cost: O(1).
    [[nodiscard]] constexpr std::uint64_t gpa() const noexcept { return frames.begin << page_shift; }
};

/// One part of a GPA range that lies in one slot: guest frames `frames`
/// are object pages `pages` of `*memory` (same size).
template <class Memory>
struct gpa_piece {
    std::uint32_t slot_id = 0;  ///< the slot the part lies in
    Memory* memory = nullptr;   ///< the object behind the slot
    page_range frames;          ///< the part's guest frame numbers
    page_range pages;           ///< the same part as object pages
};

/// The guest frames of a GPA range: `gpa` page-aligned, `pages` > 0, and
/// the end at most 2^64 bytes.
/// Errors:    invalid_range (at gpa / 4096): an unaligned GPA, 0 pages, or a
///            range running past the guest physical space.
/// Lock:      none.
/// Cost:      O(1).
/// Allocates: nothing.
[[nodiscard]] inline result<page_range> gfn_range(std::uint64_t gpa, std::uint64_t pages) noexcept {
    const std::uint64_t gfn = gpa >> page_shift;
    if (gpa % page_size != 0)
        return error::make(errc::invalid_range, gfn, "GPA %#" PRIx64 " is not aligned to %" PRIu64 "-byte pages", gpa,
                           page_size);
    if (pages == 0) return error::make(errc::invalid_range, gfn, "GPA range at %#" PRIx64 " has 0 pages", gpa);
    if (pages > max_gfn - gfn)
        return error::make(errc::invalid_range, gfn,
                           "%#" PRIx64 " pages at GPA %#" PRIx64 " run past the end of the 64-bit guest physical space",
                           pages, gpa);
    return page_range{gfn, gfn + pages};
}

/// The guest physical address map: up to `MaxSlots` memslots over one or
/// several `Memory` objects, sorted by GPA, read by up to `MaxReaders`
/// registered readers while slots change. See the file comment for the
/// overlap and cross-object policies, costs and locking. Holds pointers to
/// the objects: each must outlive its slots (until remove_slot returns).
template <gpa_memory Memory, std::size_t MaxSlots = 64, std::size_t MaxReaders = 64>
class gpa_map {
    static_assert(MaxSlots > 0, "a gpa_map holds at least one slot");

public:
    using memory_type = Memory;              ///< the guest memory object type
    using slot_type = gpa_slot<Memory>;      ///< one slot
    using piece_type = gpa_piece<Memory>;    ///< one per-slot part of a range

    /// An empty map (no slot, no reader).
    /// Lock: none. Cost: O(MaxSlots) (zeroes both tables); allocates nothing.
    gpa_map() noexcept = default;
    gpa_map(const gpa_map&) = delete;
    gpa_map& operator=(const gpa_map&) = delete;

    /// A thread's identity as a reader of one map (one per vCPU thread).
    /// Registered with register_reader, unregistered by its destructor or
    /// unregister(), which must come before the map's destruction; used by
    /// one thread at a time. Not copyable or movable.
    class reader {
    public:
        /// Not registered yet.
        /// Lock: none. Cost: O(1).
        reader() noexcept = default;
        reader(const reader&) = delete;
        reader& operator=(const reader&) = delete;
        /// Unregisters (see unregister()).
        /// Lock: the map's writer mutex, when registered. Cost: O(1).
        ~reader() { unregister(); }
        /// True between a successful register_reader and unregister.
        /// Lock: none. Cost: O(1).
        [[nodiscard]] bool registered() const noexcept { return record_ != nullptr; }
        /// Give the record back (a no-op when not registered). Must be
        /// called outside any read section of this reader.
        /// Lock: the map's writer mutex.
        /// Cost: O(1).
        void unregister() noexcept {
            if (record_ == nullptr) return;
            std::lock_guard g(map_->writer_);
            map_->readers_.release(*record_);
            record_ = nullptr;
            map_ = nullptr;
        }

    private:
        friend class gpa_map;
        gpa_map* map_ = nullptr;
        detail::reader_record* record_ = nullptr;
        unsigned depth_ = 0;  // nesting of read sections (owner thread only)
    };

    /// A read section (RAII): between its construction and destruction the
    /// slot table the map's calls see cannot be reclaimed, and every slot
    /// found stays usable, its object included: a remove_slot that starts
    /// meanwhile waits for the section to end. Sections of one reader nest.
    /// Precondition: the reader is registered with this map (an
    /// unregistered one is a contract violation: it traps).
    class read_section {
    public:
        /// Enter a section of `r` (the outermost one stores and fences).
        /// Lock:      none, and no atomic read-modify-write.
        /// Cost:      one store and one full fence, on the reader's own cache
        ///            line (nested sections: an increment).
        explicit read_section(reader& r) noexcept : r_(r) {
            if (r.record_ == nullptr) __builtin_trap();
            if (r.depth_++ == 0) detail::enter(*r.record_);
        }
        read_section(const read_section&) = delete;
        read_section& operator=(const read_section&) = delete;
        /// Leave it (the outermost one stores).
        /// Lock: none. Cost: one store on the reader's own cache line.
        ~read_section() {
            if (--r_.depth_ == 0) detail::leave(*r_.record_);
        }

    private:
        reader& r_;
    };

    /// Register `r` as a reader of this map.
    /// Errors:    in this order, nothing changed: already_bound (no_page) when
    ///            `r` is registered (with any map); out_of_memory (no_page)
    ///            when MaxReaders readers are.
    /// Lock:      the writer mutex (waits for a running add_slot or remove_slot).
    /// Cost:      O(MaxReaders).
    /// Allocates: nothing.
    status register_reader(reader& r) {
        if (r.record_ != nullptr)
            return error::make(errc::already_bound, no_page, "this reader is already registered with a gpa_map");
        std::lock_guard g(writer_);
        detail::reader_record* rec = readers_.claim();
        if (rec == nullptr)
            return error::make(errc::out_of_memory, no_page, "the gpa_map already has its %zu readers", MaxReaders);
        r.map_ = this;
        r.record_ = rec;
        r.depth_ = 0;
        return ok();
    }
    /// Enter a read section of `r` (see read_section).
    /// Lock: none. Cost: read_section's.
    [[nodiscard]] read_section read(reader& r) const noexcept { return read_section(r); }
    /// Readers registered now (a snapshot).
    /// Lock: none. Cost: O(MaxReaders).
    [[nodiscard]] std::size_t readers() const noexcept { return readers_.in_use(); }
    /// The most readers the map registers.
    /// Lock: none. Cost: O(1).
    static constexpr std::size_t reader_capacity() noexcept { return MaxReaders; }

    /// The most slots the map holds.
    /// Lock: none. Cost: O(1).
    static constexpr std::size_t capacity() noexcept { return MaxSlots; }
    /// Slots currently in the map.
    /// Lock: none (see the file comment for calls outside a read section). Cost: O(1).
    [[nodiscard]] std::size_t size() const noexcept { return table().count; }
    /// True when the map holds no slot.
    /// Lock: none. Cost: O(1).
    [[nodiscard]] bool empty() const noexcept { return size() == 0; }
    /// The slots, sorted by GPA, of one published table: valid until the
    /// read section it was taken in ends (or, outside any section, until
    /// the next add_slot or remove_slot).
    /// Lock: none. Cost: O(1).
    [[nodiscard]] std::span<const slot_type> slots() const noexcept {
        const table_type& t = table();
        return {t.slots.data(), t.count};
    }
    /// The first slot: with end(), for iteration when no other thread
    /// changes slots (inside a read section, iterate slots() instead: two
    /// loads of the table could see two tables).
    /// Lock: none. Cost: O(1).
    [[nodiscard]] const slot_type* begin() const noexcept { return table().slots.data(); }
    /// One past the last slot (see begin()).
    /// Lock: none. Cost: O(1).
    [[nodiscard]] const slot_type* end() const noexcept {
        const table_type& t = table();
        return t.slots.data() + t.count;
    }

    /// Add slot `id`: guest frames [gpa / 4096, + pages) are object pages
    /// [first, first + pages) of `memory`.
    /// Errors:    in this order (the first that applies is returned), each at
    ///            a GFN, and nothing changes:
    ///            - invalid_range: gpa unaligned, 0 pages, or past the guest
    ///              physical space (gfn_range); object pages past the
    ///              object's size() (at the GFN of the first page past it);
    ///            - already_bound: `id` is in use (at the new slot's first
    ///              GFN); a GFN already in another slot (at the first shared
    ///              GFN); an object page another slot maps (at the GFN, in
    ///              the new slot, of the lowest such page, naming the slot
    ///              that maps it);
    ///            - out_of_memory: the map already holds capacity() slots.
    /// Lock:      the writer mutex; then publishes the new table and waits
    ///            for the read sections open at that moment to end. Must not
    ///            be called inside a read section of the calling thread.
    /// Cost:      O(slots + MaxReaders) plus that wait.
    /// Allocates: nothing.
    status add_slot(std::uint32_t id, std::uint64_t gpa, std::uint64_t pages, Memory& memory, page_index first) {
        auto frames = gfn_range(gpa, pages);
        if (!frames) return error::make(errc::invalid_range, frames.error().page(), "slot %u: %s", id,
                                        frames.error().message().data());
        const page_range f = frames.value();
        const page_index size = memory.size();
        if (first >= size || pages > size - first) {
            const std::uint64_t inside = first >= size ? 0 : size - first;
            return error::make(errc::invalid_range, f.begin + inside,
                               "slot %u: %#" PRIx64 " object pages from page %#" PRIx64
                               " end past the object's %#" PRIx64 " pages",
                               id, pages, first, size);
        }
        const page_range obj{first, first + pages};
        std::lock_guard g(writer_);
        const table_type& cur = *current_.load(std::memory_order_relaxed);  // only writers store it
        const std::span<const slot_type> all{cur.slots.data(), cur.count};
        for (const slot_type& s : all) {
            if (s.id == id)
                return error::make(errc::already_bound, f.begin, "slot id %u is already in the map (GPA %#" PRIx64 ")",
                                   id, s.gpa());
        }
        for (const slot_type& s : all) {  // sorted and disjoint: the first overlap holds the first shared GFN
            if (s.frames.overlaps(f)) {
                const page_index at = std::max(s.frames.begin, f.begin);
                return error::make(errc::already_bound, at,
                                   "slot %u: GPA frame %#" PRIx64 " is already in slot %u [%#" PRIx64 ", %#" PRIx64 ")",
                                   id, at, s.id, s.frames.begin, s.frames.end);
            }
        }
        const slot_type* alias = nullptr;  // slots are sorted by GPA, not by object page: take the lowest page
        page_index aliased = 0;
        for (const slot_type& s : all) {
            if (s.memory != &memory || !s.pages().overlaps(obj)) continue;
            const page_index p = std::max(s.first, first);
            if (alias == nullptr || p < aliased) {
                alias = &s;
                aliased = p;
            }
        }
        if (alias != nullptr)
            return error::make(errc::already_bound, f.begin + (aliased - first),
                               "slot %u: object page %#" PRIx64 " is already mapped by slot %u (no aliases)", id,
                               aliased, alias->id);
        if (cur.count == MaxSlots)
            return error::make(errc::out_of_memory, f.begin, "slot %u: the map already holds its %zu slots", id,
                               MaxSlots);
        table_type& next = other(cur);
        std::size_t i = 0;
        for (; i < cur.count && cur.slots[i].frames.begin < f.begin; ++i) next.slots[i] = cur.slots[i];
        next.slots[i] = slot_type{id, f, &memory, first};
        for (; i < cur.count; ++i) next.slots[i + 1] = cur.slots[i];
        next.count = cur.count + 1;
        replace(next);
        return ok();
    }

    /// Remove slot `id`. Converts nothing: the object keeps its
    /// shareability. Returns only when no read section that could have
    /// found the slot is still open: from then on no thread routes through
    /// it, and its object may be destroyed.
    /// Errors:    not_bound (no_page) when no slot has that id; nothing changes.
    /// Lock:      the writer mutex; then waits for the read sections open
    ///            when it publishes. Must not be called inside a read section
    ///            of the calling thread.
    /// Cost:      O(slots + MaxReaders) plus the wait for open sections.
    /// Allocates: nothing.
    status remove_slot(std::uint32_t id) {
        std::lock_guard g(writer_);
        const table_type& cur = *current_.load(std::memory_order_relaxed);
        std::size_t at = cur.count;
        for (std::size_t i = 0; i < cur.count; ++i)
            if (cur.slots[i].id == id) at = i;
        if (at == cur.count) return error::make(errc::not_bound, no_page, "no slot with id %u in the map", id);
        table_type& next = other(cur);
        std::size_t n = 0;
        for (std::size_t i = 0; i < cur.count; ++i)
            if (i != at) next.slots[n++] = cur.slots[i];
        next.count = n;
        replace(next);
        return ok();
    }

    /// The slot holding guest physical address `gpa` (any byte of a page),
    /// or nullptr in a hole; valid as slots() is.
    /// Lock: none. Cost: O(log slots).
    [[nodiscard]] const slot_type* find(std::uint64_t gpa) const noexcept {
        const table_type& t = table();
        const std::size_t i = index_of(t, gpa >> page_shift);
        return i == t.count ? nullptr : &t.slots[i];
    }

    /// The slot with id `id`, or nullptr; valid as slots() is.
    /// Lock: none. Cost: O(slots).
    [[nodiscard]] const slot_type* find_slot(std::uint32_t id) const noexcept {
        for (const slot_type& s : slots())
            if (s.id == id) return &s;
        return nullptr;
    }

    /// Call `fn(const piece_type&)` for each per-slot part of the GPA range
    /// [gpa, gpa + pages * 4 KiB), in GPA order. The whole range is checked
    /// first. `fn` may return void, or a status.
    /// Errors:    in this order: invalid_range, before `fn` is called at all:
    ///            the range is invalid (gfn_range), or a GFN in it is in no
    ///            slot (at the first such GFN); then the first failed status
    ///            of `fn`, which stops the walk, returned as is.
    /// Lock:      none (one published table is walked; see the file comment).
    /// Cost:      O(log slots + slots crossed) plus the calls of `fn`.
    /// Allocates: nothing.
    template <class F>
    status for_each_piece(std::uint64_t gpa, std::uint64_t pages, F&& fn) const {
        auto frames = gfn_range(gpa, pages);
        if (!frames) return frames.error();
        const table_type& t = table();  // both walks see one table
        if (auto s = walk(t, frames.value(), [](const piece_type&) -> status { return ok(); }); !s) return s;
        return walk(t, frames.value(), [&](const piece_type& p) -> status {
            if constexpr (std::is_void_v<std::invoke_result_t<F&, const piece_type&>>) {
                fn(p);
                return ok();
            } else {
                return fn(p);
            }
        });
    }

    /// Convert the GPA range [gpa, gpa + pages * 4 KiB) to `to` with one
    /// all-or-nothing Memory::convert.
    /// Errors:    in this order, nothing changed by any:
    ///            - invalid_range (from this map, the object untouched): the
    ///              range is invalid (gfn_range); a GFN is in no slot; the
    ///              range reaches a second object, or a slot whose object
    ///              pages do not follow the previous slot's (at the first GFN
    ///              of that slot's part);
    ///            - any error of Memory::convert, with error().page()
    ///              translated to the GFN of the offending object page, the
    ///              binding id kept, and the message prefixed "GPA frame <gfn>
    ///              (object page <page>): " (an error about no page keeps
    ///              no_page and names the GPA range instead).
    /// Lock:      none of the map's; the object's convert takes its own
    ///            exclusive lock.
    /// Cost:      O(log slots + slots crossed) plus the object's convert.
    /// Allocates: nothing itself; the object's convert allocates as it says.
    status convert(std::uint64_t gpa, std::uint64_t pages, shareability to, convert_options opts = {}) {
        auto frames = gfn_range(gpa, pages);
        if (!frames) return frames.error();
        const page_range f = frames.value();
        Memory* memory = nullptr;
        page_range obj{};
        auto plan = [&](const piece_type& p) -> status {
            if (memory == nullptr) {
                memory = p.memory;
                obj = p.pages;
                return ok();
            }
            if (p.memory != memory)
                return error::make(errc::invalid_range, p.frames.begin,
                                   "GPA frame %#" PRIx64 " (slot %u) is in another guest memory object than GPA frame "
                                   "%#" PRIx64 ": a conversion across objects is refused",
                                   p.frames.begin, p.slot_id, f.begin);
            if (p.pages.begin != obj.end)
                return error::make(errc::invalid_range, p.frames.begin,
                                   "GPA frame %#" PRIx64 " (slot %u) is object page %#" PRIx64 ", not %#" PRIx64
                                   ": the range's object pages are not contiguous",
                                   p.frames.begin, p.slot_id, p.pages.begin, obj.end);
            obj.end = p.pages.end;
            return ok();
        };
        if (auto s = walk(table(), f, plan); !s) return s;
        status s = memory->convert(obj, to, opts);
        if (s) return s;
        return translate(s.error(), f, obj);
    }

    /// Like convert, for a byte length (as KVM_EXIT_MEMORY_FAULT reports it).
    /// Errors:    invalid_range at gpa / 4096 when `bytes` is not a multiple
    ///            of 4 KiB; then convert's.
    /// Lock:      convert's.
    /// Cost:      convert's.
    /// Allocates: as convert.
    status convert_bytes(std::uint64_t gpa, std::uint64_t bytes, shareability to, convert_options opts = {}) {
        if (bytes % page_size != 0)
            return error::make(errc::invalid_range, gpa >> page_shift,
                               "GPA range at %#" PRIx64 " of %#" PRIx64 " bytes is not a whole number of %" PRIu64
                               "-byte pages",
                               gpa, bytes, page_size);
        return convert(gpa, bytes / page_size, to, opts);
    }

private:
    // One published slot table: immutable while it is current or may be
    // read by a section that began while it was.
    struct table_type {
        std::size_t count = 0;
        std::array<slot_type, MaxSlots> slots{};
    };

    [[nodiscard]] const table_type& table() const noexcept { return *detail::read_published(current_); }
    // The table that is not `cur` (free: the last writer waited for its readers).
    [[nodiscard]] table_type& other(const table_type& cur) noexcept {
        return &cur == &tables_[0] ? tables_[1] : tables_[0];
    }
    // Publish `next` and wait until no read section can still see the old table.
    void replace(table_type& next) noexcept {
        detail::publish(current_, static_cast<const table_type*>(&next));
        readers_.synchronize();
    }

    // Index of the slot holding `gfn` in `t`, or t.count.
    [[nodiscard]] static std::size_t index_of(const table_type& t, std::uint64_t gfn) noexcept {
        std::size_t lo = 0, hi = t.count;  // first slot beginning after gfn
        while (lo < hi) {
            const std::size_t mid = lo + (hi - lo) / 2;
            if (t.slots[mid].frames.begin <= gfn)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == 0 || !t.slots[lo - 1].frames.contains(gfn)) return t.count;
        return lo - 1;
    }

    // Call fn(piece) -> status for each part of `f` (a valid GFN range) in
    // table `t`; invalid_range at the first GFN in no slot.
    template <class F>
    static status walk(const table_type& t, page_range f, F&& fn) {
        std::size_t i = index_of(t, f.begin);
        page_index at = f.begin;
        while (at < f.end) {
            if (i == t.count || !t.slots[i].frames.contains(at)) return hole(at, f);
            const slot_type& s = t.slots[i];
            const page_range part{at, std::min(f.end, s.frames.end)};
            if (auto st = fn(piece_type{s.id, s.memory, part, {s.object_page(part.begin), s.object_page(part.begin) + part.size()}});
                !st)
                return st;
            at = part.end;
            ++i;
        }
        return ok();
    }

    [[gnu::cold]] static error hole(page_index at, page_range f) noexcept {
        return error::make(errc::invalid_range, at,
                           "GPA frame %#" PRIx64 " of the range [%#" PRIx64 ", %#" PRIx64 ") is in no slot", at,
                           f.begin, f.end);
    }

    // The object's error with its page as a GFN (`obj` maps linearly onto `f`).
    [[gnu::cold]] static error translate(const error& e, page_range f, page_range obj) noexcept {
        const page_index p = e.page();
        const page_index gfn = obj.contains(p) ? f.begin + (p - obj.begin) : no_page;
        const std::string_view m = e.message();
        error out = gfn == no_page ? error::make(e.code(), no_page, "GPA range [%#" PRIx64 ", %#" PRIx64 "): %.*s",
                                                 f.begin, f.end, int(m.size()), m.data())
                                   : error::make(e.code(), gfn, "GPA frame %#" PRIx64 " (object page %#" PRIx64 "): %.*s",
                                                 gfn, p, int(m.size()), m.data());
        return out.with_binding_id(e.binding_id());
    }

    std::array<table_type, 2> tables_{};  // the current one and the one the next writer fills
    std::atomic<const table_type*> current_{&tables_[0]};
    detail::reader_table<MaxReaders> readers_;
    std::mutex writer_;  // serialises add_slot, remove_slot and reader (un)registration
};

} // namespace guestmem
