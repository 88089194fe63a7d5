// Every rejection of a malformed, truncated or hostile snapshot
// (docs/SNAPSHOT.md §Validation): the error code and the byte offset the
// message names, one test per check. Snapshots are made by hand with
// snap_builder and resealed, so each reaches the check behind the checksum.
#include <doctest/doctest.h>

#include "support/failing_allocator.hpp"
#include "support/snapshot_support.hpp"

#include <algorithm>
#include <string>
#include <vector>

using namespace guestmem;
using namespace guestmem::test_support;
namespace snap = guestmem::snapshot;

namespace {

/// check() refuses `b` with `code`, naming `offset`; restore() refuses it
/// the same way and leaves a fresh object as it was.
void rejected(const bytes& b, std::size_t offset, const char* what, errc code = errc::invalid_argument) {
    CAPTURE(what);
    auto r = snap::check(b);
    REQUIRE_FALSE(r);
    CAPTURE(std::string(r.error().message()));
    CHECK(r.error() == code);
    CHECK(snap::error_offset(r.error()) == offset);
    CHECK(std::string(r.error().message()).find(what) != std::string::npos);
    simulated_allocator alloc;
    guest_memory<simulated_allocator, consumer, null_lock> m(alloc, {.pages = 4096, .initial = shareability::shared, .max_order = order_2m});
    const snap_state before = state_of(m);
    auto s = snap::restore(m, b);
    REQUIRE_FALSE(s);
    CHECK(snap::error_offset(s.error()) == offset);
    CHECK(s.error() == code);
    CHECK(std::string(s.error().message()) == std::string(r.error().message()));  // restore's one pass words it as check()
    CHECK(state_of(m) == before);
}

snap_builder base() { return snap_builder{}; }

} // namespace

TEST_CASE("a valid hand-made snapshot passes, so each rejection below is caused by its one change") {
    auto b = base();
    b.one_run().no_folios();
    REQUIRE(snap::check(b.done()));
    auto p = base();  // a run boundary inside a poisoned leaf is allowed
    p.b(1).v(2).v(5).v(4091).v(1).v(0).b(9).v(1).v(0).v(1).v(3).v(0);
    REQUIRE(snap::check(p.done()));
}

TEST_CASE("header rejections name their offsets") {
    auto ok_b = base();
    ok_b.one_run().no_folios();
    const bytes good = ok_b.done();
    bytes x = good;
    x[0] = 'X';
    rejected(x, 0, "not a guestmem snapshot");
    x = good;
    x[4] = 3;
    rejected(x, 4, "format version 3", errc::not_supported);
    x = good;
    x[5] = 3;
    rejected(x, 5, "kind 3");
    auto z = base();
    z.pages = 0;
    z.one_run().no_folios();
    rejected(z.done(), 6, "an object of 0 pages");
    z.pages = (page_index{1} << 51) + 1;
    rejected(z.done(), 6, "pages");
    auto o = base();
    o.max_order = 10;
    o.one_run().no_folios();
    rejected(o.done(), 8, "max order 10");
    bytes t(good.begin(), good.end() - 1);
    rejected(t, t.size(), "truncated");
    rejected(bytes{'G', 'M', 'S', 'N', 1, 1, 0x80}, 6, "truncated");
    bytes tr = good;
    tr.push_back(0);
    rejected(tr, good.size(), "trailing bytes");
    bytes cs = good;
    cs[12] ^= 1;
    rejected(cs, good.size() - snap::checksum_bytes, "checksum");
}

TEST_CASE("varints that are longer than needed or past 64 bits are rejected") {
    bytes b = {'G', 'M', 'S', 'N', 1, 1, 0x80, 0xa0, 0x00, 9, 0};
    rejected(b, 6, "longer than needed");
    bytes w = {'G', 'M', 'S', 'N', 1, 1, 0x80, 0x20, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    rejected(w, 9, "does not fit in 64 bits");
}

TEST_CASE("an increment whose base generation is newer than its generation is rejected") {
    auto b = base();
    b.kind = 2;
    b.generation = 1;
    b.base = 2;
    b.v(0);
    rejected(b.done(), 10, "base generation 2");
}

TEST_CASE("run section rejections: shareability, count, empty run, past the end, not covering") {
    auto a = base();
    const std::size_t at = a.here();
    a.b(2).v(1).v(4096).no_folios();
    rejected(a.done(), at, "shareability 2");
    auto c = base();
    c.b(1).v(0).no_folios();
    rejected(c.done(), at + 1, "0 runs");
    auto big = base();
    big.b(1).v(100).v(4096).no_folios();
    rejected(big.done(), at + 1, "the run count says 100");
    auto e = base();
    e.b(1).v(3).v(4000);
    const std::size_t empty_at = e.here();
    e.v(0).v(96).no_folios();
    rejected(e.done(), empty_at, "run 1 is empty");
    auto p = base();
    p.b(1).v(2).v(4000);
    const std::size_t past_at = p.here();
    p.v(200).no_folios();
    rejected(p.done(), past_at, "ends past");
    auto s = base();
    s.b(1).v(1).v(4000);
    const std::size_t short_at = s.here();
    s.no_folios();
    rejected(s.done(), short_at, "cover 4000 of");
}

TEST_CASE("run lengths of one and two bytes, which the run check decodes inline, are held to the same rules") {
    auto ok = base();  // one- and two-byte lengths mixed pass
    ok.b(1).v(3).v(100).v(3000).v(996).no_folios();
    REQUIRE(snap::check(ok.done()));
    auto n = base();  // 96 written in two bytes
    n.b(1).v(2).v(4000);
    const std::size_t long_at = n.here();
    n.b(0x80 | 96).b(0).no_folios();
    rejected(n.done(), long_at, "longer than needed");
    auto p = base();  // a two-byte length past the object
    p.b(1).v(2).v(3000);
    const std::size_t past_at = p.here();
    p.v(1200).no_folios();
    rejected(p.done(), past_at, "ends past");
    auto z = base();  // an empty run after two-byte ones
    z.b(1).v(3).v(3000);
    const std::size_t empty_at = z.here();
    z.v(0).v(1096).no_folios();
    rejected(z.done(), empty_at, "run 1 is empty");
}

TEST_CASE("folio extent rejections: order, count, continuation, gap, alignment, end") {
    struct extent_case {
        std::uint64_t gap, count;
        std::uint8_t order;
        int field;  // 0 extent, 1 order, 2 count
        const char* what;
    };
    const extent_case cases[] = {{0, 1, 10, 1, "order 10"}, {0, 1, 18, 1, "order 18"}, {0, 0, 9, 2, "0 folios"},
                                 {5000, 1, 0, 0, "past the object's end"}, {1, 1, 9, 0, "not aligned"},
                                 {0, 9, 9, 2, "end past"}};
    for (const auto& k : cases) {
        auto b = base();
        b.one_run().v(1);
        const std::size_t at = b.here();
        b.v(k.gap).b(k.order).v(k.count).v(0).v(0).v(0);
        rejected(b.done(), at + (k.field == 0 ? 0 : k.field == 1 ? snap::detail::varint_size(k.gap) : snap::detail::varint_size(k.gap) + 1), k.what);
    }
    auto c = base();
    c.one_run().v(2).v(0).b(9).v(1);
    const std::size_t at = c.here();
    c.v(0).b(9).v(1).v(0).v(0).v(0);
    rejected(c.done(), at, "continues the previous one");
}

TEST_CASE("split rejections: past the end, order, out of order, a folio that does not exist") {
    auto past = base();
    past.one_run().v(1).v(0).b(9).v(1).v(1);
    const std::size_t at = past.here();
    past.v(5000).b(9).v(0).v(0);
    rejected(past.done(), at, "past the object's end");
    auto ord = base();
    ord.one_run().v(1).v(0).b(9).v(1).v(1);
    ord.v(0).b(0).v(0).v(0);
    rejected(ord.done(), at, "order-0 folio");
    auto dup = base();
    dup.b(0).v(3).v(5).v(5).v(4086).v(1).v(0).b(9).v(1).v(2).v(0).b(9);
    const std::size_t dup_at = dup.here();
    dup.v(0).b(9).v(0).v(0);
    rejected(dup.done(), dup_at, "out of order");
    auto none = base();
    none.one_run().v(1).v(0).b(9).v(1).v(1);
    const std::size_t none_at = none.here();
    none.v(512).b(9).v(0).v(0);
    rejected(none.done(), none_at, "does not exist");
    auto piece = base();  // a 2M piece of a 1G folio that is not split
    piece.pages = pages_in(order_1g);
    piece.max_order = order_1g;
    piece.one_run().v(1).v(0).b(18).v(1).v(1);
    const std::size_t piece_at = piece.here();
    piece.v(512).b(9).v(0).v(0);
    rejected(piece.done(), piece_at, "does not exist");
}

TEST_CASE("poison rejections: past the end, a hole, a leaf poisoned twice") {
    auto past = base();
    past.one_run().v(1).v(0).b(9).v(1).v(0).v(1);
    const std::size_t at = past.here();
    past.v(5000).v(0);
    rejected(past.done(), at, "past the object's end");
    auto hole = base();
    hole.one_run().v(1).v(0).b(9).v(1).v(0).v(1);
    hole.v(600).v(0);
    rejected(hole.done(), at, "is a hole");
    auto twice = base();
    twice.one_run().v(1).v(0).b(9).v(1).v(0).v(2).v(3);
    const std::size_t twice_at = twice.here();
    twice.v(0).v(0);
    rejected(twice.done(), twice_at, "already poisoned");
}

TEST_CASE("quarantine rejections: order, alignment, ordering, no poison, leaves past, too big, mappability, overlap") {
    auto q = [] {
        auto b = base();
        b.one_run().no_folios();
        b.body.pop_back();  // the quarantine count follows
        return b;
    };
    auto order = q();
    order.v(1).v(0);
    const std::size_t order_at = order.here();
    order.b(10).v(1).v(0).b(0).b(1);
    rejected(order.done(), order_at, "order 10");
    auto unaligned = q();
    unaligned.v(1);
    const std::size_t rec_at = unaligned.here();
    unaligned.v(1).b(9).v(1).v(0).b(0).b(1);
    rejected(unaligned.done(), rec_at, "unaligned");
    auto ordering = q();
    ordering.v(2).v(512).b(9).v(1).v(0).b(0).b(1);
    const std::size_t second_at = ordering.here();
    ordering.v(0).b(9).v(1).v(0).b(0).b(1);
    rejected(ordering.done(), second_at, "out of order");
    auto nopoison = q();
    nopoison.v(1).v(0).b(9);
    const std::size_t k_at = nopoison.here();
    nopoison.v(0);
    rejected(nopoison.done(), k_at, "without a poisoned leaf");
    auto leafpast = q();
    leafpast.v(1).v(0).b(0).v(1);
    const std::size_t leaf_at = leafpast.here();
    leafpast.v(1).b(0).b(1);
    rejected(leafpast.done(), leaf_at, "past its quarantined folio");
    auto big = q();
    big.v(1).v(0).b(0).v(1).v(0).b(9).b(1);
    rejected(big.done(), leaf_at, "leaf order 9");
    auto map = q();
    map.v(1).v(0).b(0).v(1).v(0).b(0);
    const std::size_t map_at = map.here();
    map.b(3);
    rejected(map.done(), map_at, "mappability 3");
    auto inner = q();
    inner.v(1).v(0).b(9).v(2).v(0).b(9).b(1);
    const std::size_t second_leaf = inner.here();
    inner.v(0).b(0).b(1);
    rejected(inner.done(), second_leaf, "overlaps the previous one");
}

TEST_CASE("a quarantined leaf overlapping another folio's quarantined leaf or a live folio is rejected") {
    auto across = base();
    across.one_run().v(0).v(0).v(0).v(2).v(1).b(0).v(1);
    const std::size_t a_leaf = across.here();
    across.v(0).b(0).b(1).v(0).b(9).v(1).v(0).b(9).b(1);
    rejected(across.done(), a_leaf, "overlaps another one");
    auto live = base();
    live.one_run().v(1).v(0).b(0).v(1).v(0).v(0).v(1).v(0).b(0).v(1);
    const std::size_t l_leaf = live.here();
    live.v(0).b(0).b(1);
    rejected(live.done(), l_leaf, "overlaps a live folio");
}

TEST_CASE("bytes left after the last section are rejected") {
    auto b = base();
    b.one_run().no_folios();
    const std::size_t at = b.here();
    b.b(0);
    rejected(b.done(), at, "bytes after the last section");
}

TEST_CASE("a run boundary inside a leaf that is not poisoned is rejected") {
    auto b = base();
    b.b(1).v(3);
    const std::size_t at = b.here();
    b.v(5).v(5).v(4086).v(1).v(0).b(9).v(1).v(0).v(0).v(0);
    rejected(b.done(), at, "splits the order-9 leaf");
}

TEST_CASE("a split folio whose pieces are all guest_only with no poison is rejected: it would have merged") {
    auto b = base();
    b.one_run().v(1).v(0).b(9).v(1).v(1);
    const std::size_t at = b.here();
    b.v(0).b(9).v(0).v(0);
    rejected(b.done(), at, "merge back");
}

TEST_CASE("increment change rejections: past the end, empty, too long, shareability, not canonical") {
    auto inc = [] {
        auto b = base();
        b.kind = 2;
        b.generation = 3;
        b.base = 1;
        return b;
    };
    auto past = inc();
    past.v(1);
    const std::size_t at = past.here();
    past.v(5000).v(1).b(0);
    rejected(past.done(), at, "starts past");
    auto empty = inc();
    empty.v(1).v(0);
    const std::size_t len_at = empty.here();
    empty.v(0).b(0);
    rejected(empty.done(), len_at, "is empty");
    auto longer = inc();
    longer.v(1).v(4000).v(97).b(0);
    rejected(longer.done(), len_at + 1, "ends past");
    auto value = inc();
    value.v(1).v(0).v(1);
    const std::size_t v_at = value.here();
    value.b(2);
    rejected(value.done(), v_at, "shareability 2");
    auto canon = inc();
    canon.v(2).v(0).v(1).b(1);
    const std::size_t c_at = canon.here();
    canon.v(0).v(1).b(1);
    rejected(canon.done(), c_at, "not canonical");
}

TEST_CASE("a body that ends inside a field is truncated at that field's offset") {
    auto empty = base();
    const std::size_t at = empty.here();
    rejected(empty.done(), at, "truncated: the first run's shareability");
    auto half = base();
    half.b(1);
    rejected(half.done(), at + 1, "truncated: the run count");
    auto cut = base();
    cut.b(1).v(1).v(4096).v(1).v(1 << 14);  // a 3-byte gap, then the body ends
    const std::size_t order_at = cut.here();
    rejected(cut.done(), order_at, "truncated: an extent's order");
}

TEST_CASE("restore checks the run lengths as it loads them: a bad one deep in the runs, or a bad section after them, changes nothing") {
    // 8 chunks of 2^16 pages, thousands of runs: the map is well into its
    // build when the defect comes.
    const page_index pages = 8 * (page_index{1} << 16);
    std::mt19937_64 rng(28);
    std::vector<page_index> lengths;
    for (page_index sum = 0; sum < pages;) {
        const page_index len = std::min<page_index>(pages - sum, 1 + rng() % 400);
        lengths.push_back(len);
        sum += len;
    }
    REQUIRE(lengths.size() > 2000);
    const std::size_t bad = lengths.size() * 3 / 4;
    auto make = [&](page_index bad_length, bool short_cover, bool trailing, std::size_t* at) {
        snap_builder x;
        x.pages = pages;
        x.b(0).v(lengths.size() - (short_cover ? 1 : 0));
        for (std::size_t i = 0; i + (short_cover ? 1 : 0) < lengths.size(); ++i) {
            if (i == bad && at != nullptr) *at = x.here();
            x.v(i == bad ? bad_length : lengths[i]);
        }
        if (short_cover && at != nullptr) *at = x.here();
        x.no_folios();
        if (trailing) {
            if (at != nullptr) *at = x.here();
            x.b(0);
        }
        return x.done();
    };
    struct variant {
        const char* what;
        page_index length;
        bool short_cover, trailing;
    };
    for (const variant& v : {variant{"is empty", 0, false, false}, variant{"ends past", pages, false, false},
                             variant{"longer than needed", 0, false, false}, variant{"the runs cover", 1, true, false},
                             variant{"bytes after the last section", 1, false, true}}) {
        CAPTURE(v.what);
        std::size_t at = 0;
        bytes b = make(v.length == 1 ? lengths[bad] : v.length, v.short_cover, v.trailing, &at);
        if (std::string(v.what) == "longer than needed") {  // lengths[bad] with a needless 0x80 0x00 tail
            snap_builder x;
            x.pages = pages;
            x.b(0).v(lengths.size());
            for (std::size_t i = 0; i < lengths.size(); ++i) {
                if (i == bad) {
                    at = x.here();
                    x.b(std::uint8_t(0x80 | (lengths[i] & 0x7f))).b(std::uint8_t(0x80 | (lengths[i] >> 7))).b(0);
                } else {
                    x.v(lengths[i]);
                }
            }
            x.no_folios();
            b = x.done();
        }
        auto r = snap::check(b);
        REQUIRE_FALSE(r);
        CHECK(snap::error_offset(r.error()) == at);
        CHECK(std::string(r.error().message()).find(v.what) != std::string::npos);
        simulated_allocator alloc;
        alloc_control ctl;
        guest_memory<simulated_allocator, consumer, null_lock, failing_allocator<std::byte>> m(
            alloc, snap::read_header(b).value().config(), failing_allocator<std::byte>(&ctl));
        const snap_state before = state_of(m);
        const auto live = ctl.live;
        auto s = snap::restore(m, b);
        REQUIRE_FALSE(s);
        CHECK(s.error() == r.error().code());
        CHECK(std::string(s.error().message()) == std::string(r.error().message()));
        CHECK(state_of(m) == before);
        CHECK(ctl.live == live);  // every block and node the load took is back
    }
    const bytes good = make(lengths[bad], false, false, nullptr);  // the same bytes without the defect restore
    simulated_allocator alloc;
    guest_memory<simulated_allocator, consumer, null_lock> m(alloc, snap::read_header(good).value().config());
    REQUIRE(snap::restore(m, good));
    CHECK(state_of(m).runs.size() == lengths.size());
}
