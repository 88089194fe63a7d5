// Tests for the vocabulary: orders and alignment, page ranges and their
// validation messages, the error category and result type.
#include <doctest/doctest.h>

#include <guestmem/guestmem.hpp>

#include <limits>
#include <ostream>
#include <string>
#include <system_error>

using namespace guestmem;

TEST_CASE("orders and alignment") {
    CHECK(pages_in(order_4k) == 1);
    CHECK(pages_in(order_2m) == 512);
    CHECK(pages_in(order_1g) == 262144);
    CHECK(is_aligned(0, order_1g));
    CHECK(is_aligned(512, order_2m));
    CHECK_FALSE(is_aligned(513, order_2m));
    CHECK(align_down(1023, order_2m) == 512);
    CHECK(align_up(513, order_2m) == 1024);
    CHECK(align_up(512, order_2m) == 512);
    constexpr auto top = std::numeric_limits<page_index>::max();
    CHECK(align_up(top, order_2m) == align_down(top, order_2m));  // saturates, never wraps to 0
    CHECK(largest_fitting_order(0, 1u << 18, order_1g) == order_1g);
    CHECK(largest_fitting_order(0, (1u << 18) - 1, order_1g) == order_2m);
    CHECK(largest_fitting_order(512, 1u << 18, order_1g) == order_2m);
    CHECK(largest_fitting_order(1, 1u << 18, order_1g) == order_4k);
    CHECK(largest_fitting_order(0, 1u << 18, order_2m) == order_2m);
    CHECK(largest_fitting_order(5, 5, order_1g) == order_4k);
    CHECK(next_lower_order(order_1g) == order_2m);
    CHECK(next_lower_order(order_2m) == order_4k);
    CHECK(next_lower_order(order_4k) == order_4k);
}

TEST_CASE("enumerations: names, validity and access rules") {
    CHECK(to_string(shareability::guest_only) == "guest_only");
    CHECK(to_string(mappability::none) == "none");
    CHECK(to_string(accessor::trusted_device) == "trusted_device");
    CHECK_FALSE(is_valid(static_cast<shareability>(7)));
    CHECK_FALSE(is_valid(static_cast<mappability>(3)));
    CHECK_FALSE(is_valid(static_cast<accessor>(4)));
    CHECK(to_string(static_cast<accessor>(9)) == "invalid accessor");
    for (auto a : {accessor::host, accessor::hypervisor, accessor::device, accessor::trusted_device})
        CHECK(may_access(a, shareability::shared));
    CHECK_FALSE(may_access(accessor::host, shareability::guest_only));
    CHECK_FALSE(may_access(accessor::device, shareability::guest_only));
    CHECK(may_access(accessor::hypervisor, shareability::guest_only));
    CHECK(may_access(accessor::trusted_device, shareability::guest_only));
}

TEST_CASE("page_range arithmetic") {
    page_range r{10, 20};
    CHECK(r.size() == 10);
    CHECK(r.contains(10));
    CHECK_FALSE(r.contains(20));
    CHECK(r.contains(page_range{12, 20}));
    CHECK(r.overlaps(page_range{19, 30}));
    CHECK_FALSE(r.overlaps(page_range{20, 30}));
    CHECK(r.intersect(page_range{15, 40}) == page_range{15, 20});
    CHECK(r.intersect(page_range{30, 40}).empty());
    CHECK(page_range{5, 3}.empty());
    CHECK(page_range{5, 3}.size() == 0);
}

static std::string msg(const status& s) { return std::string(s.error().message()); }

TEST_CASE("check_range refuses bad ranges with the caller's numbers") {
    CHECK(check_range({0, 0x1000}, 0x1000));
    auto inverted = check_range({0x200, 0x100}, 0x1000);
    REQUIRE_FALSE(inverted);
    CHECK(inverted.error().code() == errc::invalid_range);
    CHECK(inverted.error().page() == 0x200);
    CHECK(msg(inverted) == "range [0x200, 0x100) is inverted");

    auto empty = check_range({0x40, 0x40}, 0x1000);
    REQUIRE_FALSE(empty);
    CHECK(empty.error().code() == errc::invalid_range);
    CHECK(msg(empty) == "range [0x40, 0x40) is empty");

    auto past = check_range({0xff0, 0x1010}, 0x1000);
    REQUIRE_FALSE(past);
    CHECK(past.error().page() == 0x1000);  // the first page that is out of bounds
    CHECK(msg(past) == "range [0xff0, 0x1010) ends past the object's 0x1000 pages");

    auto beyond = check_range({0x2000, 0x3000}, 0x1000);
    REQUIRE_FALSE(beyond);
    CHECK(beyond.error().page() == 0x2000);

    constexpr auto top = std::numeric_limits<page_index>::max();
    CHECK(check_range({top - 1, top}, top));
    CHECK_FALSE(check_range({top - 1, top}, top - 1));
}

TEST_CASE("check_aligned_range and check_page") {
    CHECK(check_aligned_range({512, 1024}, 4096, order_2m));
    auto s = check_aligned_range({512, 1000}, 4096, order_2m);
    REQUIRE_FALSE(s);
    CHECK(s.error().page() == 1000);
    CHECK(msg(s) == "range [0x200, 0x3e8) is not aligned to order-9 folios (512 pages)");
    auto s2 = check_aligned_range({1, 512}, 4096, order_2m);
    REQUIRE_FALSE(s2);
    CHECK(s2.error().page() == 1);
    CHECK_FALSE(check_aligned_range({0x200, 0x100}, 4096, order_2m));
    CHECK(check_page(4095, 4096));
    auto p = check_page(4096, 4096);
    REQUIRE_FALSE(p);
    CHECK(p.error().code() == errc::invalid_range);
    CHECK(msg(p) == "page 0x1000 is past the object's 0x1000 pages");
}

TEST_CASE("make_range and range_from_bytes refuse overflow and misalignment") {
    auto r = make_range(0x10, 0x20);
    REQUIRE(r);
    CHECK(r.value() == page_range{0x10, 0x30});
    constexpr auto top = std::numeric_limits<page_index>::max();
    auto wraps = make_range(top - 4, 8);
    REQUIRE_FALSE(wraps);
    CHECK(wraps.error().code() == errc::invalid_range);
    CHECK(std::string(wraps.error().message()).find("overflows past 2^64") != std::string::npos);
    auto zero = make_range(3, 0);
    REQUIRE_FALSE(zero);
    CHECK(std::string(zero.error().message()) == "range of 0 pages at 0x3 is empty");

    auto b = range_from_bytes(0x2000, 0x3000);
    REQUIRE(b);
    CHECK(b.value() == page_range{2, 5});
    auto un = range_from_bytes(0x2001, 0x1000);
    REQUIRE_FALSE(un);
    CHECK(un.error().code() == errc::invalid_range);
    CHECK(std::string(un.error().message()) == "byte range at 0x2001 of length 0x1000 is not aligned to 4096-byte pages");
    CHECK_FALSE(range_from_bytes(0, 0));
}

TEST_CASE("range_from_bytes refuses a byte range that ends past 2^64, and takes one that ends at it") {
    constexpr std::uint64_t top_page_byte = std::numeric_limits<std::uint64_t>::max() & ~std::uint64_t{4095};  // 2^64 - 4096
    // The example: the last page plus one more wraps to 0x1000.
    auto wraps = range_from_bytes(top_page_byte, 0x2000);
    REQUIRE_FALSE(wraps);
    CHECK(wraps.error().code() == errc::invalid_range);
    CHECK(wraps.error().page() == (top_page_byte >> 12));
    CHECK(std::string(wraps.error().message()) ==
          "byte range at 0xfffffffffffff000 of length 0x2000 overflows past 2^64");
    // The largest range that does not wrap ends exactly at 2^64: its pages end at 2^52.
    auto last = range_from_bytes(top_page_byte, 0x1000);
    REQUIRE(last);
    CHECK(last.value() == page_range{(std::uint64_t{1} << 52) - 1, std::uint64_t{1} << 52});
    // The same edge from the length's side: everything but page 0 fits, one page more does not.
    auto all_but_first = range_from_bytes(0x1000, top_page_byte);
    REQUIRE(all_but_first);
    CHECK(all_but_first.value() == page_range{1, std::uint64_t{1} << 52});
    auto past = range_from_bytes(0x2000, top_page_byte);
    REQUIRE_FALSE(past);
    CHECK(past.error().page() == 2);
    CHECK(std::string(past.error().message()) ==
          "byte range at 0x2000 of length 0xfffffffffffff000 overflows past 2^64");
    // From 0, the largest aligned length (2^64 - 4 KiB) fits.
    CHECK(range_from_bytes(0, top_page_byte).value() == page_range{0, (std::uint64_t{1} << 52) - 1});
    // Length 0 is still empty, even at the top.
    auto empty = range_from_bytes(top_page_byte, 0);
    REQUIRE_FALSE(empty);
    CHECK(std::string(empty.error().message()) == "range of 0 pages at 0xfffffffffffff is empty");
}

TEST_CASE("check_aligned_range refuses an order whose page count does not fit in 64 bits") {
    CHECK(check_aligned_range({0, pages_in(max_supported_order)}, no_page, max_supported_order));
    for (unsigned order : {unsigned{max_supported_order} + 1, 63u, 64u, 255u}) {
        auto s = check_aligned_range({0, 1}, no_page, static_cast<folio_order>(order));
        REQUIRE_FALSE(s);
        CHECK(s.error().code() == errc::invalid_argument);
        CHECK(s.error().page() == 0);
        CHECK(msg(s) == "folio order " + std::to_string(order) + " is larger than the largest order 18");
    }
}

TEST_CASE("errors convert to std::error_code in the guestmem category") {
    std::error_code ec = errc::busy;
    CHECK(ec.category().name() == std::string("guestmem"));
    CHECK(ec.message() == "busy");
    CHECK(ec.value() == static_cast<int>(errc::busy));
    CHECK(ec != std::error_code{});
    error e = error::make(errc::vetoed, 7, "consumer %s refused page %d", "iommu", 7).with_binding_id(3);
    CHECK(make_error_code(e) == errc::vetoed);
    CHECK(e.binding_id() == 3);
    CHECK(e.page() == 7);
    CHECK(e.message() == "consumer iommu refused page 7");
    CHECK(e == errc::vetoed);
    for (int c = 1; c <= static_cast<int>(errc::would_deadlock); ++c)
        CHECK(error_category().message(c) != "unknown guestmem error");
    CHECK(error_category().message(999) == "unknown guestmem error");
}

TEST_CASE("error messages are truncated, never overflowed") {
    std::string long_name(500, 'x');
    error e = error::make(errc::invalid_argument, no_page, "%s", long_name.c_str());
    CHECK(e.message().size() == error::max_message - 1);
    CHECK(e.page() == no_page);
    CHECK(e.binding_id() == no_binding);
}

TEST_CASE("result carries values and errors") {
    auto half = [](int x) -> result<int> {
        if (x % 2) return error::make(errc::invalid_argument, no_page, "%d is odd", x);
        return x / 2;
    };
    auto a = half(8);
    REQUIRE(a);
    CHECK(a.value() == 4);
    auto b = half(3);
    REQUIRE_FALSE(b);
    CHECK(b.error().message() == "3 is odd");
    status s = ok();
    CHECK(s);
}

// ---- lock policies -------------------------------------------------------

#include <guestmem/memory/lock.hpp>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

TEST_CASE("sharded_shared_mutex: writers exclude readers and writers; readers share") {
    sharded_shared_mutex<4> lock;
    // Two plain (non-atomic) words a writer keeps equal: a reader that ever
    // sees them differ ran inside a write. Under TSan a broken lock is also
    // reported as a data race on them.
    std::uint64_t a = 0, b = 0;
    std::atomic<bool> torn{false};
    std::atomic<int> readers_inside{0}, max_readers_inside{0};
    constexpr int writes = 2000, reads = 20000;
    std::vector<std::thread> threads;
    for (int w = 0; w < 2; ++w)
        threads.emplace_back([&] {
            for (int i = 0; i < writes; ++i) {
                std::unique_lock guard(lock);
                ++a;
                ++b;
            }
        });
    for (int r = 0; r < 3; ++r)  // more readers than slots would be fine too; 3 of 4 here
        threads.emplace_back([&] {
            for (int i = 0; i < reads; ++i) {
                std::shared_lock guard(lock);
                const int inside = readers_inside.fetch_add(1) + 1;
                int seen = max_readers_inside.load();
                while (inside > seen && !max_readers_inside.compare_exchange_weak(seen, inside)) {
                }
                if (a != b) torn = true;
                readers_inside.fetch_sub(1);
            }
        });
    for (auto& t : threads) t.join();
    CHECK_FALSE(torn.load());
    CHECK(a == 2 * writes);
    CHECK(b == 2 * writes);
    CHECK(max_readers_inside.load() >= 1);
}

TEST_CASE("sharded_shared_mutex: a reader waits for a writer holding the lock") {
    sharded_shared_mutex<> lock;
    lock.lock();
    std::atomic<bool> read{false};
    std::thread reader([&] {
        std::shared_lock guard(lock);
        read = true;
    });
    for (int i = 0; i < 1000; ++i) std::this_thread::yield();
    CHECK_FALSE(read.load());  // still excluded while the writer holds it
    lock.unlock();
    reader.join();
    CHECK(read.load());
    // More threads than slots share slots and still balance.
    sharded_shared_mutex<1> one;
    std::vector<std::thread> many;
    for (int t = 0; t < 4; ++t)
        many.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) {
                one.lock_shared();
                one.unlock_shared();
            }
        });
    for (auto& t : many) t.join();
    one.lock();  // would hang if a reader count leaked
    one.unlock();
}

// guest_memory_with: the policies by name, in any order, the rest defaulted.
namespace {
struct closed_consumer {
    status prepare(const invalidation&) { return ok(); }
    void commit(const invalidation&, commit_report&) noexcept {}
    void abort(const invalidation&) noexcept {}
    void memory_failure(const invalidation&) noexcept {}
};
struct stub_allocator {
    [[nodiscard]] folio_order max_order() const noexcept { return order_2m; }
    result<frame_number> allocate(page_index i, folio_order) noexcept { return frame_number{i}; }
    void free(page_index, frame_number, folio_order) noexcept {}
    status prepare_split(frame_number, folio_order, folio_order) noexcept { return ok(); }
    void abort_split(frame_number, folio_order, folio_order) noexcept {}
    void commit_split(frame_number, folio_order, folio_order) noexcept {}
    void merge(frame_number, folio_order, folio_order) noexcept {}
    void zero(page_index, frame_number, std::uint64_t) noexcept {}
};
template <class... O>
concept accepted_options = requires { typename guest_memory_with<stub_allocator, O...>; };
} // namespace

TEST_CASE("guest_memory_with names the same type as the positional policies, and refuses what is not an option") {
    static_assert(std::is_same_v<guest_memory_with<stub_allocator>, guest_memory<stub_allocator>>);
    static_assert(std::is_same_v<guest_memory_with<stub_allocator, options::lock<null_lock>>,
                                 guest_memory<stub_allocator, consumer, null_lock>>);
    static_assert(std::is_same_v<guest_memory_with<stub_allocator, options::lock<null_lock>, options::consumer<closed_consumer>>,
                                 guest_memory<stub_allocator, closed_consumer, null_lock>>);
    static_assert(std::is_same_v<guest_memory_with<stub_allocator, options::node_allocator<std::allocator<std::byte>>,
                                                   options::consumer<closed_consumer>>,
                                 guest_memory<stub_allocator, closed_consumer>>);
    static_assert(accepted_options<options::lock<null_lock>>);
    static_assert(!accepted_options<null_lock>);  // a bare policy is not an option
    stub_allocator a;
    guest_memory_with<stub_allocator, options::consumer<closed_consumer>, options::lock<null_lock>> mem(a, {.pages = 8});
    CHECK(mem.allocate({0, 8}));
    CHECK(mem.stats().allocated_pages == 8);
}
