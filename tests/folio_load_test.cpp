// The folio table's export walks and bulk loader (folio/detail/folio_load.hpp):
// what snapshot save reads and restore builds with, tested without the
// snapshot format.
#include <doctest/doctest.h>

#include <guestmem/folio/folio_table.hpp>
#include <guestmem/range_map/range_map.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <tuple>
#include <vector>

using namespace guestmem;

namespace {

using table = folio_table<simulated_allocator>;
using shares = range_map<shareability>;
constexpr page_index pages = 4 * pages_in(order_2m);

using leaf = std::tuple<page_index, folio_order, folio_order, mappability, bool, page_index>;
std::vector<leaf> leaves_of(const table& t) {
    std::vector<leaf> out;
    t.for_each_folio({0, t.size()}, [&](const folio_view& v) {
        out.emplace_back(v.first, v.order, v.top_order, v.mappability, v.poisoned, v.poison_page);
    });
    return out;
}

/// A table with whole, split and poisoned folios and one quarantined folio.
struct source {
    simulated_allocator alloc;
    shares map{pages, shareability::guest_only};
    table t{alloc, pages, order_2m};
    source() {
        REQUIRE(map.assign({pages_in(order_2m) + 3, pages_in(order_2m) + 5}, shareability::shared));
        REQUIRE(t.populate({0, pages}, map));
        t.poison(2 * pages_in(order_2m) + 7);  // a whole 2M folio: poisoned as one leaf
        t.poison(pages_in(order_2m) + 100);    // a 4K piece of the split folio
        t.poison(3 * pages_in(order_2m));
        t.truncate({3 * pages_in(order_2m), pages});  // quarantined: detached with its poison
    }
};

/// Load `src` into `dst` through the exporter and the loader, the way
/// snapshot restore does.
void copy(const table& src, table& dst, const shares& map) {
    auto ld = dst.load();
    std::vector<std::tuple<page_index, folio_order, std::vector<std::tuple<page_index, folio_order, mappability>>>> q;
    src.for_each_detached_poison([&](page_index first, folio_order o, auto&& leaves) {
        std::vector<std::tuple<page_index, folio_order, mappability>> l;
        leaves([&](page_index p, folio_order lo, mappability m) { l.emplace_back(p, lo, m); });
        q.emplace_back(first, o, l);
    });
    for (auto& e : q) {  // (no structured binding: clang 14 cannot capture one)
        const auto& l = std::get<2>(e);
        std::size_t i = 0;
        REQUIRE(ld.add_quarantined(std::get<0>(e), std::get<1>(e), l.size(), [&] { return l[i++]; }));
    }
    std::vector<std::pair<page_index, folio_order>> tops, splits;
    src.for_each_top([&](page_index p, folio_order o) { tops.emplace_back(p, o); });
    src.for_each_split([&](page_index p, folio_order o) { splits.emplace_back(p, o); });
    std::size_t s = 0;
    for (auto [p, o] : tops) {
        REQUIRE(ld.add(p, o));
        for (; s < splits.size() && splits[s].first < p + pages_in(o); ++s) REQUIRE(ld.split(splits[s].first, splits[s].second));
    }
    src.for_each_poisoned([&](page_index p, folio_order, mappability) { ld.poison(p); });
    CHECK(ld.commit(map) == 2 + 1);  // two live poisons, one quarantined folio
}

} // namespace

TEST_CASE("a folio table exported and loaded into an empty one has the same folios, splits, poison and quarantine") {
    source a;
    simulated_allocator alloc2;
    table b(alloc2, pages, order_2m);
    CHECK(b.empty());
    copy(a.t, b, a.map);
    CHECK(leaves_of(b) == leaves_of(a.t));
    CHECK(b.stats() == a.t.stats());
    CHECK(b.check_counters());
    CHECK_FALSE(b.empty());
    CHECK(b.first_quarantined({0, pages}) == a.t.first_quarantined({0, pages}));
    CHECK(alloc2.pages_in_use() == a.alloc.pages_in_use());
}

TEST_CASE("a loader's split that names no record is refused with its page, and the loader still rolls back") {
    simulated_allocator alloc;
    table t(alloc, pages, order_2m);
    {
        auto ld = t.load();
        auto none = ld.split(5, order_2m);  // nothing added yet
        REQUIRE_FALSE(none);
        CHECK(none.error() == errc::invalid_argument);
        CHECK(none.error().page() == 5);
        REQUIRE(ld.add(0, order_2m));
        CHECK(ld.split(1, order_2m).error() == errc::invalid_argument);  // not a record's first page
        CHECK(ld.split(0, order_4k).error() == errc::invalid_argument);  // no 4K record in a whole 2M folio
        REQUIRE(ld.split(0, order_2m));
        CHECK(ld.split(0, order_2m).error() == errc::invalid_argument);  // already split
        CHECK(alloc.pages_in_use() == pages_in(order_2m));
    }  // destroyed uncommitted
    CHECK(t.empty());
    CHECK(t.stats() == folio_counters{});
    CHECK(alloc.pages_in_use() == 0);
}

TEST_CASE("a cancelled loader gives every folio back, quarantined ones included") {
    source a;
    simulated_allocator alloc2;
    table b(alloc2, pages, order_2m);
    auto ld = b.load();
    REQUIRE(ld.add_quarantined(0, order_2m, 1, [] { return std::tuple{page_index{9}, order_4k, mappability::guest}; }));
    REQUIRE(ld.add(pages_in(order_2m), order_2m));
    REQUIRE(ld.split(pages_in(order_2m), order_2m));
    ld.poison(pages_in(order_2m) + 1);
    CHECK(b.first_quarantined({0, pages}) == 9);
    ld.abort();
    CHECK(b.empty());
    CHECK(b.stats() == folio_counters{});
    CHECK(b.first_quarantined({0, pages}) == no_page);
    CHECK(alloc2.pages_in_use() == 0);
    CHECK(b.check_counters());
}
