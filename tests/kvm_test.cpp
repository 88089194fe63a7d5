// tests/kvm_test.cpp — the GPA map (include/guestmem/kvm/gpa_map.hpp):
// adding and removing slots and every refusal, lookups at slot boundaries,
// splitting GPA ranges, and conversions through it: one all-or-nothing
// convert across slots of one object, refusal across objects, holes and
// non-contiguous object pages, errors translated to guest frames; reader
// registration and read sections on one thread. The exit router's tests are
// in kvm_router_test.cpp (the same test_kvm binary); the map and router
// under threads (slot hot-plug included) in kvm_concurrency_test.cpp
// (test_concurrency).
#include <doctest/doctest.h>

#include <guestmem/kvm/gpa_map.hpp>

#include "support/kvm_support.hpp"

#include <cstdint>
#include <string>
#include <vector>

using namespace guestmem;
using namespace guestmem::test_support;

namespace {

bool message_has(const error& e, const char* s) { return std::string(e.message()).find(s) != std::string::npos; }

template <class Map>
std::vector<std::uint32_t> ids(const Map& m) {
    std::vector<std::uint32_t> v;
    for (const auto& s : m) v.push_back(s.id);
    return v;
}

struct one_object {
    simulated_allocator alloc;
    sim_memory mem{alloc, {.pages = 1024, .initial = shareability::shared, .max_order = order_4k}};
};

} // namespace

TEST_CASE("add_slot keeps the slots sorted by GPA, and find answers at every slot boundary") {
    one_object o;
    gpa_map<sim_memory> map;
    REQUIRE(map.add_slot(7, 0x100000, 16, o.mem, 100));
    REQUIRE(map.add_slot(3, 0x0, 16, o.mem, 0));
    REQUIRE(map.add_slot(5, 0x10000, 16, o.mem, 16));  // right after slot 3: no hole
    CHECK(ids(map) == std::vector<std::uint32_t>{3, 5, 7});
    CHECK(map.size() == 3);

    CHECK(map.find(0x0)->id == 3);
    CHECK(map.find(0xffff)->id == 3);  // last byte of slot 3
    CHECK(map.find(0x10000)->id == 5);  // first byte of slot 5
    CHECK(map.find(0x1ffff)->id == 5);
    CHECK(map.find(0x20000) == nullptr);  // one past slot 5: a hole
    CHECK(map.find(0xfffff) == nullptr);  // last byte before slot 7
    CHECK(map.find(0x100000)->id == 7);
    CHECK(map.find(0x10ffff)->id == 7);
    CHECK(map.find(0x110000) == nullptr);
    CHECK(map.find(UINT64_MAX) == nullptr);

    const auto* s7 = map.find(0x100000);
    CHECK(s7->frames == page_range{0x100, 0x110});
    CHECK(s7->object_page(0x105) == 105);
    CHECK(s7->pages() == page_range{100, 116});
    CHECK(s7->gpa() == 0x100000);
    CHECK(map.find_slot(5)->frames.begin == 0x10);
    CHECK(map.find_slot(4) == nullptr);
}

TEST_CASE("add_slot refuses an unaligned GPA with invalid_range at its frame, and nothing changes") {
    one_object o;
    gpa_map<sim_memory> map;
    auto r = map.add_slot(1, 0x1800, 4, o.mem, 0);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_range);
    CHECK(r.error().page() == 1);
    CHECK(message_has(r.error(), "slot 1: GPA 0x1800 is not aligned"));
    CHECK(map.empty());
}

TEST_CASE("add_slot refuses an empty slot") {
    one_object o;
    gpa_map<sim_memory> map;
    auto r = map.add_slot(1, 0x2000, 0, o.mem, 0);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_range);
    CHECK(r.error().page() == 2);
    CHECK(message_has(r.error(), "has 0 pages"));
    CHECK(map.empty());
}

TEST_CASE("add_slot refuses a slot whose GPA end would wrap past 2^64, and accepts the last page") {
    one_object o;
    gpa_map<sim_memory> map;
    const std::uint64_t last = UINT64_MAX - page_size + 1;  // GPA of the last page
    auto r = map.add_slot(1, last, 2, o.mem, 0);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_range);
    CHECK(r.error().page() == max_gfn - 1);
    CHECK(message_has(r.error(), "run past the end of the 64-bit guest physical space"));
    auto huge = map.add_slot(1, 0x1000, UINT64_MAX, o.mem, 0);
    REQUIRE_FALSE(huge);
    CHECK(huge.error() == errc::invalid_range);
    CHECK(map.empty());
    REQUIRE(map.add_slot(1, last, 1, o.mem, 0));
    CHECK(map.find(UINT64_MAX)->id == 1);
}

TEST_CASE("add_slot refuses object pages past the object's end at the first GFN past it") {
    one_object o;  // 1024 pages
    gpa_map<sim_memory> map;
    auto r = map.add_slot(1, 0x100000, 32, o.mem, 1000);  // pages [1000, 1032): 24 fit
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_range);
    CHECK(r.error().page() == 0x100 + 24);
    CHECK(message_has(r.error(), "end past the object's 0x400 pages"));

    auto first_outside = map.add_slot(1, 0x100000, 1, o.mem, 1024);
    REQUIRE_FALSE(first_outside);
    CHECK(first_outside.error().page() == 0x100);

    auto wraps = map.add_slot(1, 0x100000, 8, o.mem, UINT64_MAX - 2);  // first + pages wraps
    REQUIRE_FALSE(wraps);
    CHECK(wraps.error() == errc::invalid_range);
    CHECK(wraps.error().page() == 0x100);
    CHECK(map.empty());
}

TEST_CASE("add_slot refuses a slot id already in the map with already_bound") {
    one_object o;
    gpa_map<sim_memory> map;
    REQUIRE(map.add_slot(1, 0, 16, o.mem, 0));
    auto r = map.add_slot(1, 0x100000, 16, o.mem, 16);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::already_bound);
    CHECK(r.error().page() == 0x100);
    CHECK(message_has(r.error(), "slot id 1 is already in the map"));
    CHECK(map.size() == 1);
}

TEST_CASE("add_slot refuses a GPA overlap with already_bound at the first frame both slots hold") {
    one_object o;
    gpa_map<sim_memory> map;
    REQUIRE(map.add_slot(1, 0x10000, 16, o.mem, 0));  // frames [0x10, 0x20)
    SUBCASE("the new slot starts inside") {
        auto r = map.add_slot(2, 0x1f000, 4, o.mem, 100);
        REQUIRE_FALSE(r);
        CHECK(r.error() == errc::already_bound);
        CHECK(r.error().page() == 0x1f);
        CHECK(message_has(r.error(), "is already in slot 1"));
    }
    SUBCASE("the new slot ends inside") {
        auto r = map.add_slot(2, 0x8000, 9, o.mem, 100);
        REQUIRE_FALSE(r);
        CHECK(r.error().page() == 0x10);
    }
    SUBCASE("the new slot covers it") {
        auto r = map.add_slot(2, 0, 64, o.mem, 100);
        REQUIRE_FALSE(r);
        CHECK(r.error().page() == 0x10);
    }
    CHECK(ids(map) == std::vector<std::uint32_t>{1});
}

TEST_CASE("two slots may not map the same object pages, but may map the same pages of two objects") {
    one_object o, p;
    gpa_map<sim_memory> map;
    REQUIRE(map.add_slot(1, 0, 16, o.mem, 8));  // object pages [8, 24)
    auto r = map.add_slot(2, 0x100000, 16, o.mem, 0);  // [0, 16): 8..15 aliased
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::already_bound);
    CHECK(r.error().page() == 0x100 + 8);  // the GFN of object page 8 in the new slot
    CHECK(message_has(r.error(), "object page 0x8 is already mapped by slot 1 (no aliases)"));
    REQUIRE(map.add_slot(2, 0x100000, 8, o.mem, 0));  // [0, 8): next to slot 1's pages, fine
    REQUIRE(map.add_slot(3, 0x200000, 16, p.mem, 8));  // same pages, other object
    CHECK(map.size() == 3);
}

TEST_CASE("an alias is reported at the GFN of the lowest aliased object page, even when a later slot maps it") {
    one_object o;
    gpa_map<sim_memory> map;
    REQUIRE(map.add_slot(1, 0, 8, o.mem, 8));          // GPA-first slot: object pages [8, 16)
    REQUIRE(map.add_slot(2, 0x100000, 2, o.mem, 2));   // GPA-later slot: object pages [2, 4)
    auto r = map.add_slot(3, 0x200000, 16, o.mem, 0);  // [0, 16): pages 2..3 and 8..15 are aliased
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::already_bound);
    CHECK(r.error().page() == 0x200 + 2);  // object page 2, not slot 1's page 8
    CHECK(message_has(r.error(), "object page 0x2 is already mapped by slot 2 (no aliases)"));
    CHECK(ids(map) == std::vector<std::uint32_t>{1, 2});
}

TEST_CASE("a full map reports an id in use, an overlap and an alias as already_bound before out_of_memory") {
    one_object o;
    gpa_map<sim_memory, 2> map;
    REQUIRE(map.add_slot(1, 0, 4, o.mem, 0));
    REQUIRE(map.add_slot(2, 0x10000, 4, o.mem, 16));
    auto id = map.add_slot(2, 0x80000, 1, o.mem, 100);
    REQUIRE_FALSE(id);
    CHECK(id.error() == errc::already_bound);
    auto overlap = map.add_slot(3, 0x2000, 4, o.mem, 100);
    REQUIRE_FALSE(overlap);
    CHECK(overlap.error() == errc::already_bound);
    CHECK(overlap.error().page() == 2);
    auto alias = map.add_slot(3, 0x80000, 4, o.mem, 18);
    REQUIRE_FALSE(alias);
    CHECK(alias.error() == errc::already_bound);
    CHECK(alias.error().page() == 0x80);
    auto full = map.add_slot(3, 0x80000, 4, o.mem, 100);  // nothing wrong with it but the room
    REQUIRE_FALSE(full);
    CHECK(full.error() == errc::out_of_memory);
    CHECK(ids(map) == std::vector<std::uint32_t>{1, 2});
}

TEST_CASE("a reader registers once per map, up to the reader capacity, and its record is reused after unregister") {
    one_object o;
    gpa_map<sim_memory, 4, 2> map;
    static_assert(gpa_map<sim_memory, 4, 2>::reader_capacity() == 2);
    gpa_map<sim_memory, 4, 2>::reader a, b, c;
    CHECK_FALSE(a.registered());
    REQUIRE(map.register_reader(a));
    CHECK(a.registered());
    auto twice = map.register_reader(a);
    REQUIRE_FALSE(twice);
    CHECK(twice.error() == errc::already_bound);
    CHECK(message_has(twice.error(), "already registered"));
    REQUIRE(map.register_reader(b));
    auto full = map.register_reader(c);
    REQUIRE_FALSE(full);
    CHECK(full.error() == errc::out_of_memory);
    CHECK(message_has(full.error(), "already has its 2 readers"));
    CHECK_FALSE(c.registered());
    CHECK(map.readers() == 2);
    a.unregister();
    CHECK_FALSE(a.registered());
    CHECK(map.readers() == 1);
    REQUIRE(map.register_reader(c));
    {
        gpa_map<sim_memory, 4, 2>::reader scoped;  // the destructor unregisters
        CHECK_FALSE(map.register_reader(scoped));
        c.unregister();
        REQUIRE(map.register_reader(scoped));
        CHECK(map.readers() == 2);
    }
    CHECK(map.readers() == 1);
}

TEST_CASE("inside a read section, lookups and conversions see the slots; sections nest; writers run outside them") {
    two_slot_vm vm;
    gpa_map<sim_memory>::reader me;
    REQUIRE(vm.map.register_reader(me));
    {
        auto outer = vm.map.read(me);
        {
            auto inner = vm.map.read(me);
            const auto* s = vm.map.find(slot2_gpa);
            REQUIRE(s != nullptr);
            CHECK(s->id == 2);
        }
        CHECK(vm.map.slots().size() == 3);
        REQUIRE(vm.map.convert(0x7f000, 2, shareability::guest_only));
        CHECK(vm.private_pages() == 2);
    }
    REQUIRE(vm.map.remove_slot(2));  // no section open: returns at once
    {
        auto section = vm.map.read(me);
        CHECK(vm.map.find(slot2_gpa) == nullptr);
        CHECK(vm.map.find_slot(3) != nullptr);
        auto hole = vm.map.convert(slot2_gpa, 1, shareability::guest_only);
        REQUIRE_FALSE(hole);
        CHECK(hole.error() == errc::invalid_range);
    }
}

TEST_CASE("a full map refuses one more slot with out_of_memory, and removing a slot makes room") {
    one_object o;
    gpa_map<sim_memory, 2> map;
    static_assert(gpa_map<sim_memory, 2>::capacity() == 2);
    REQUIRE(map.add_slot(1, 0, 1, o.mem, 0));
    REQUIRE(map.add_slot(2, 0x1000, 1, o.mem, 1));
    auto r = map.add_slot(3, 0x2000, 1, o.mem, 2);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::out_of_memory);
    CHECK(r.error().page() == 2);
    CHECK(message_has(r.error(), "already holds its 2 slots"));
    REQUIRE(map.remove_slot(1));
    REQUIRE(map.add_slot(3, 0x2000, 1, o.mem, 2));
    CHECK(ids(map) == std::vector<std::uint32_t>{2, 3});
}

TEST_CASE("remove_slot of an unknown id is not_bound; a removed slot's GPA becomes a hole and can be reused") {
    one_object o;
    gpa_map<sim_memory> map;
    REQUIRE(map.add_slot(1, 0, 16, o.mem, 0));
    REQUIRE(map.add_slot(2, 0x10000, 16, o.mem, 16));
    REQUIRE(map.add_slot(3, 0x20000, 16, o.mem, 32));
    auto r = map.remove_slot(9);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::not_bound);
    CHECK(r.error().page() == no_page);
    CHECK(map.size() == 3);
    REQUIRE(map.remove_slot(2));
    CHECK(ids(map) == std::vector<std::uint32_t>{1, 3});
    CHECK(map.find(0x10000) == nullptr);
    CHECK(map.find(0x20000)->id == 3);
    REQUIRE(map.add_slot(2, 0x10000, 16, o.mem, 16));
    CHECK(ids(map) == std::vector<std::uint32_t>{1, 2, 3});
}

TEST_CASE("for_each_piece splits a GPA range into per-slot, per-object page ranges in GPA order") {
    two_slot_vm vm;
    REQUIRE(vm.map.remove_slot(3));
    REQUIRE(vm.map.add_slot(3, 1024 * kib, 64, vm.other, 0));  // right after slot 2: [1M, 1M + 256K)
    std::vector<gpa_piece<sim_memory>> pieces;
    REQUIRE(vm.map.for_each_piece(0x7e000, 0x90, [&](const gpa_piece<sim_memory>& p) { pieces.push_back(p); }));
    REQUIRE(pieces.size() == 3);
    CHECK(pieces[0].slot_id == 1);
    CHECK(pieces[0].frames == page_range{0x7e, 0x80});
    CHECK(pieces[0].pages == page_range{0x7e, 0x80});
    CHECK(pieces[0].memory == &vm.mem);
    CHECK(pieces[1].slot_id == 2);
    CHECK(pieces[1].frames == page_range{0x80, 0x100});
    CHECK(pieces[1].pages == page_range{128, 256});
    CHECK(pieces[2].slot_id == 3);
    CHECK(pieces[2].frames == page_range{0x100, 0x10e});
    CHECK(pieces[2].pages == page_range{0, 14});
    CHECK(pieces[2].memory == &vm.other);
}

TEST_CASE("for_each_piece refuses a range reaching a hole before calling the visitor at all") {
    two_slot_vm vm;
    int calls = 0;
    auto r = vm.map.for_each_piece(0xff000, 2, [&](const gpa_piece<sim_memory>&) { ++calls; });
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_range);
    CHECK(r.error().page() == 0x100);
    CHECK(message_has(r.error(), "GPA frame 0x100 of the range [0xff, 0x101) is in no slot"));
    CHECK(calls == 0);
    auto outside = vm.map.for_each_piece(0x200000, 1, [&](const gpa_piece<sim_memory>&) { ++calls; });
    REQUIRE_FALSE(outside);
    CHECK(outside.error().page() == 0x200);
    CHECK(calls == 0);
}

TEST_CASE("for_each_piece refuses an unaligned, empty or overflowing range, and stops at a visitor's error") {
    two_slot_vm vm;
    auto noop = [](const gpa_piece<sim_memory>&) {};
    CHECK(vm.map.for_each_piece(0x800, 1, noop).error() == errc::invalid_range);
    CHECK(vm.map.for_each_piece(0x1000, 0, noop).error() == errc::invalid_range);
    CHECK(vm.map.for_each_piece(0x1000, max_gfn, noop).error() == errc::invalid_range);
    int calls = 0;
    auto r = vm.map.for_each_piece(0x7f000, 2, [&](const gpa_piece<sim_memory>& p) -> status {
        ++calls;
        return error::make(errc::busy, p.frames.begin, "stop");
    });
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::busy);
    CHECK(r.error().page() == 0x7f);
    CHECK(calls == 1);
}

TEST_CASE("a conversion over two slots of one object is one convert: one round of consumers, one conversion") {
    two_slot_vm vm;
    const auto before = vm.mem.stats().conversions;
    REQUIRE(vm.map.convert(0x7f000, 2, shareability::guest_only));  // GFN 0x7f in slot 1, 0x80 in slot 2
    CHECK(vm.mem.stats().conversions == before + 1);
    REQUIRE(vm.rec.count(call_kind::prepare) == 1);
    CHECK(vm.rec[0].inv.pages == page_range{0x7f, 0x81});
    CHECK(vm.mem.shareability_at(0x7f).value() == shareability::guest_only);
    CHECK(vm.mem.shareability_at(0x80).value() == shareability::guest_only);
    CHECK(vm.private_pages() == 2);
}

TEST_CASE("a veto in the second slot's part rolls back the whole range, and the error names the GPA frame") {
    two_slot_vm vm;
    vm.rec.veto_at(0x90);  // object page 0x90 = GPA frame 0x90 in slot 2
    const snapshot before(vm.mem);
    auto r = vm.map.convert(0x70000, 0x30, shareability::guest_only);  // frames [0x70, 0xa0)
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::vetoed);
    CHECK(r.error().page() == 0x90);
    CHECK(r.error().binding_id() != no_binding);
    CHECK(message_has(r.error(), "GPA frame 0x90 (object page 0x90): "));
    CHECK(snapshot(vm.mem) == before);
    CHECK(vm.private_pages() == 0);
    CHECK(vm.mem.stats().vetoes == 1);
}

TEST_CASE("a conversion across two objects is refused at the first frame of the second object; neither changes") {
    two_slot_vm vm;
    REQUIRE(vm.map.remove_slot(3));
    REQUIRE(vm.map.add_slot(3, 1024 * kib, 64, vm.other, 0));  // adjacent to slot 2, another object
    const snapshot before(vm.mem), before_other(vm.other);
    auto r = vm.map.convert(0xfe000, 4, shareability::guest_only);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_range);
    CHECK(r.error().page() == 0x100);
    CHECK(message_has(r.error(), "a conversion across objects is refused"));
    CHECK(snapshot(vm.mem) == before);
    CHECK(snapshot(vm.other) == before_other);
    CHECK(vm.rec.total_calls() == 0);
}

TEST_CASE("adjacent slots whose object pages do not follow each other are refused at the second slot's first frame") {
    one_object o;
    gpa_map<sim_memory> map;
    REQUIRE(map.add_slot(1, 0, 16, o.mem, 0));
    REQUIRE(map.add_slot(2, 0x10000, 16, o.mem, 32));  // GPA-adjacent, object pages [32, 48)
    const snapshot before(o.mem);
    auto r = map.convert(0xf000, 2, shareability::guest_only);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_range);
    CHECK(r.error().page() == 0x10);
    CHECK(message_has(r.error(), "is object page 0x20, not 0x10"));
    CHECK(snapshot(o.mem) == before);
    REQUIRE(map.convert(0x10000, 16, shareability::guest_only));  // inside one slot: fine
    CHECK(o.mem.shareability_at(32).value() == shareability::guest_only);
}

TEST_CASE("a conversion reaching a hole between slots is refused at the hole's first frame") {
    two_slot_vm vm;
    const snapshot before(vm.mem);
    auto r = vm.map.convert(0xff000, 2, shareability::guest_only);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_range);
    CHECK(r.error().page() == 0x100);
    CHECK(snapshot(vm.mem) == before);
    auto unmapped = vm.map.convert(0x200000, 1, shareability::guest_only);
    REQUIRE_FALSE(unmapped);
    CHECK(unmapped.error().page() == 0x200);
}

TEST_CASE("a pinned page comes back as busy at its GPA frame, not its object page") {
    two_slot_vm vm;
    REQUIRE(vm.map.remove_slot(3));
    REQUIRE(vm.map.add_slot(3, other_gpa, 64, vm.other, 0));
    REQUIRE(vm.other.pin({5, 6}, accessor::device));
    auto r = vm.map.convert(other_gpa, 64, shareability::guest_only);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::busy);
    CHECK(r.error().page() == (other_gpa >> page_shift) + 5);
    CHECK(message_has(r.error(), "GPA frame 0x405 (object page 0x5): "));
    CHECK(vm.other.stats().guest_only_pages == 0);
    REQUIRE(vm.other.unpin({5, 6}));
    REQUIRE(vm.map.convert(other_gpa, 64, shareability::guest_only));
    CHECK(vm.other.stats().guest_only_pages == 64);
}

TEST_CASE("an object's argument error comes back at the range's first GPA frame with the object's message") {
    two_slot_vm vm;
    auto r = vm.map.convert(0x81000, 1, static_cast<shareability>(7));
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_argument);
    CHECK(r.error().page() == 0x81);
    CHECK(message_has(r.error(), "GPA frame 0x81 (object page 0x81): shareability 7 is not shared or guest_only"));
}

TEST_CASE("convert_bytes converts whole pages and refuses a length that is not a whole number of pages") {
    two_slot_vm vm;
    auto r = vm.map.convert_bytes(0x1000, 0x1800, shareability::guest_only);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_range);
    CHECK(r.error().page() == 1);
    CHECK(message_has(r.error(), "not a whole number of 4096-byte pages"));
    CHECK(vm.private_pages() == 0);
    CHECK(vm.map.convert_bytes(0x1000, 0, shareability::guest_only).error() == errc::invalid_range);
    REQUIRE(vm.map.convert_bytes(0x1000, 0x2000, shareability::guest_only));
    CHECK(vm.private_pages() == 2);
}

TEST_CASE("a conversion already in the target state succeeds without a conversion round") {
    two_slot_vm vm;
    REQUIRE(vm.map.convert(0, 256, shareability::shared));
    CHECK(vm.mem.stats().conversions == 0);
    CHECK(vm.mem.stats().noop_conversions == 1);
    CHECK(vm.rec.total_calls() == 0);
}

namespace {
// A gpa_memory that answers every convert with a chosen error: for the
// translation of errors the real object does not produce.
struct scripted_memory {
    page_index pages = 64;
    error answer = error::make(errc::out_of_memory, no_page, "no memory for records");
    int converts = 0;
    page_range last{};
    page_index size() const { return pages; }
    status convert(page_range r, shareability, convert_options) {
        ++converts;
        last = r;
        return answer;
    }
};
static_assert(gpa_memory<scripted_memory>);
} // namespace

TEST_CASE("an object's error about no page keeps no_page and names the GPA range instead") {
    scripted_memory m;
    gpa_map<scripted_memory> map;
    REQUIRE(map.add_slot(1, 0x10000, 16, m, 0));
    REQUIRE(map.add_slot(2, 0x20000, 16, m, 16));
    auto r = map.convert(0x1f000, 2, shareability::guest_only);
    REQUIRE_FALSE(r);
    CHECK(m.converts == 1);
    CHECK(m.last == page_range{15, 17});
    CHECK(r.error() == errc::out_of_memory);
    CHECK(r.error().page() == no_page);
    CHECK(message_has(r.error(), "GPA range [0x1f, 0x21): no memory for records"));
    CHECK(r.error().binding_id() == no_binding);
}

TEST_CASE("an object's error at a page outside the converted range is kept without a GPA frame") {
    scripted_memory m;
    m.answer = error::make(errc::busy, 40, "page 40 is elsewhere").with_binding_id(9);
    gpa_map<scripted_memory> map;
    REQUIRE(map.add_slot(1, 0x10000, 16, m, 0));
    auto r = map.convert(0x10000, 4, shareability::guest_only);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::busy);
    CHECK(r.error().page() == no_page);
    CHECK(r.error().binding_id() == 9);
}
