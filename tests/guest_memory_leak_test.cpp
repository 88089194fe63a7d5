// A 4K page a consumer leaks costs 4K on every path (issue 26): during a
// conversion (failure_paths_test.cpp), during punch_hole's truncate commit
// and during an unbind's release. The leaf holding the page is split down
// to 4K and only that piece is poisoned; truncation then quarantines just
// it, and the rest of the huge folio goes back and can be refilled. On the
// simulated allocator and on memfd (where a frame is a file offset with
// real contents).
#include <doctest/doctest.h>

#include <guestmem/linux/memfd_allocator.hpp>
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/testing/recording_consumer.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <cstring>
#include <memory>

using namespace guestmem;

namespace {

constexpr page_index huge = pages_in(order_2m);
constexpr page_index leaked = 300;
constexpr std::byte secret{0x5a};

template <class Alloc>
struct leak_backend;

template <>
struct leak_backend<simulated_allocator> {
    static constexpr bool real = false;
    simulated_allocator alloc;
    static std::unique_ptr<leak_backend> make() { return std::make_unique<leak_backend>(); }
    void write(page_index, std::byte) {}
    [[nodiscard]] bool holds(page_index, std::byte) const { return true; }
    [[nodiscard]] std::uint64_t in_use() const { return alloc.pages_in_use(); }
};

template <>
struct leak_backend<memfd_allocator> {
    static constexpr bool real = true;
    memfd_allocator alloc;
    explicit leak_backend(memfd_allocator a) : alloc(std::move(a)) {}
    static std::unique_ptr<leak_backend> make() {
        auto a = memfd_allocator::create(2 * huge, order_2m);
        REQUIRE(a);
        return std::make_unique<leak_backend>(std::move(a).value());
    }
    void write(page_index p, std::byte v) { std::memset(alloc.data() + p * page_size, int(v), page_size); }
    [[nodiscard]] bool holds(page_index p, std::byte v) const {
        const std::byte* b = alloc.data() + p * page_size;
        for (std::size_t i = 0; i < page_size; ++i)
            if (b[i] != v) return false;
        return true;
    }
    [[nodiscard]] std::uint64_t in_use() const { return 0; }  // not counted: checked through holds()
};

template <class Alloc>
using leak_memory = guest_memory<Alloc, consumer, null_lock>;

/// After a leak of page `leaked` was quarantined by a truncation of [0, huge):
/// only that page is out of the object; every other page refills.
template <class Alloc>
void only_the_leaked_page_is_kept(leak_memory<Alloc>& mem, leak_backend<Alloc>& be) {
    CHECK(mem.stats().quarantined_pages == 1);
    if constexpr (!leak_backend<Alloc>::real) CHECK(be.in_use() == huge + 1);  // the other 2M folio and the leaked piece
    auto refused = mem.allocate({leaked, leaked + 1});
    REQUIRE(!refused);
    CHECK(refused.error().code() == errc::poisoned);
    CHECK(refused.error().page() == leaked);
    REQUIRE(mem.allocate({0, leaked}));  // 511 of the 512 pages come back
    REQUIRE(mem.allocate({leaked + 1, huge}));
    CHECK(mem.stats().allocated_pages == 2 * huge - 1);
    if constexpr (leak_backend<Alloc>::real) CHECK(be.holds(leaked, secret));  // kept for the consumer that still maps it
    CHECK(mem.release_quarantine({0, huge}));
    REQUIRE(mem.allocate({leaked, leaked + 1}));
    CHECK(mem.locked(mem.lock_shared()).folios().check_counters());
}

} // namespace

TEST_CASE_TEMPLATE("a page leaked while punch_hole truncates an unsplit 2M folio costs 4K, not the folio", Alloc,
                   simulated_allocator, memfd_allocator) {
    auto be = leak_backend<Alloc>::make();
    leak_memory<Alloc> mem(be->alloc, {.pages = 2 * huge, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 2 * huge}));
    REQUIRE(mem.locked(mem.lock_shared()).folios().lookup(leaked)->order == order_2m);
    be->write(leaked, secret);
    recording_consumer c("vhost");
    binding<consumer> slot;
    REQUIRE(mem.bind(slot, c, {0, 2 * huge}, 0));
    c.leak_at(leaked);
    REQUIRE(mem.punch_hole({0, huge}));
    c.clear_reports();
    only_the_leaked_page_is_kept(mem, *be);
}

TEST_CASE_TEMPLATE("a page leaked while an unbind releases an unsplit 2M folio costs 4K, not the folio", Alloc,
                   simulated_allocator, memfd_allocator) {
    auto be = leak_backend<Alloc>::make();
    leak_memory<Alloc> mem(be->alloc, {.pages = 2 * huge, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 2 * huge}));
    be->write(leaked, secret);
    recording_consumer c("vfio");
    binding<consumer> slot;
    auto h = mem.bind(slot, c, {0, huge}, 0);
    REQUIRE(h);
    c.leak_at(leaked);
    REQUIRE(mem.unbind(h.value()));
    auto leaf = mem.locked(mem.lock_shared()).folios().lookup(leaked);
    REQUIRE(leaf);
    CHECK(leaf->poisoned);
    CHECK(leaf->order == order_4k);  // split out of its 2M folio
    for (page_index p : {page_index{0}, leaked - 1, leaked + 1, huge - 1}) {  // its neighbours still fault
        auto f = mem.fault(p, shareability::shared, accessor::hypervisor);
        REQUIRE(f);
        CHECK(f.value().mappability == mappability::all);
    }
    CHECK(mem.stats().poisoned_folios == 1);
    REQUIRE(mem.punch_hole({0, huge}));
    only_the_leaked_page_is_kept(mem, *be);
}

TEST_CASE("an object past the largest file offset (2^51 pages) is refused at construction, one of 2^51 pages is not") {
    using sim = guest_memory<simulated_allocator, consumer, null_lock>;
    simulated_allocator frames(UINT64_MAX, order_1g);
    constexpr page_index limit = page_index{1} << 51;
    auto too_big = sim::check_config(frames, {.pages = limit + 1});
    REQUIRE(!too_big);
    CHECK(too_big.error().code() == errc::invalid_argument);
    CHECK(too_big.error().message().find("largest file offset") != std::string_view::npos);
    CHECK(!sim::check_config(frames, {.pages = UINT64_MAX}));
    REQUIRE(sim::check_config(frames, {.pages = limit}));
    // At the limit, allocation and truncation agree on the tail.
    sim mem(frames, {.pages = limit, .initial = shareability::shared, .max_order = order_1g});
    REQUIRE(mem.allocate({limit - 1, limit}));
    REQUIRE(mem.convert({limit - 1, limit}, shareability::guest_only));
    REQUIRE(mem.punch_hole({limit - 1, limit}));
    CHECK(mem.stats().allocated_pages == 0);
}

TEST_CASE("an object constructed past the largest file offset is lowered to it, so its tail can still be truncated") {
    using sim = guest_memory<simulated_allocator, consumer, null_lock>;
    simulated_allocator frames(UINT64_MAX, order_1g);
    constexpr page_index limit = page_index{1} << 51;
    sim mem(frames, {.pages = UINT64_MAX, .initial = shareability::shared, .max_order = order_1g});
    CHECK(mem.size() == limit);
    auto past = mem.allocate({limit, limit + 1});
    REQUIRE(!past);
    CHECK(past.error().code() == errc::invalid_range);
    REQUIRE(mem.allocate({limit - 1, limit}));
    REQUIRE(mem.punch_hole({limit - 1, limit}));  // what allocate may make, punch_hole may take away
    CHECK(mem.stats().allocated_pages == 0);
}
