// Saves through views racing the last close (issue 26), meant for the tsan
// preset: saver threads save the shared storage through their own views in
// a loop while a converter changes it and a closer closes every view, the
// last close destroying the storage. Each save holds the view table's lock,
// so it either completes (the bytes pass snapshot::check) or finds its view
// closed (not_bound); once a view answers not_bound it never saves again.
// A save that ran unlocked through storage() would read a storage being
// destroyed (tsan reports it). Iteration counts are fixed; the closer waits
// until every saver has completed a save, so the race is real each round,
// and nothing depends on wall time.
#include <doctest/doctest.h>

#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/snapshot/snapshot.hpp>
#include <guestmem/testing/simulated_allocator.hpp>
#include <guestmem/view/memory_view.hpp>

#include <atomic>
#include <cstdint>
#include <shared_mutex>
#include <thread>
#include <utility>
#include <vector>

using namespace guestmem;

namespace {

using race_memory = guest_memory<simulated_allocator, consumer, std::shared_mutex>;
using race_view = memory_view<race_memory>;
constexpr page_index race_pages = 2 * 512;

struct saver_tally {
    std::uint64_t saved = 0, refused = 0, other = 0, bad_bytes = 0, saved_after_refusal = 0;
};

void save_until_closed(const race_view& v, std::atomic<int>& ready, saver_tally& t) {
    std::vector<std::uint8_t> buf(64 * 1024);
    bool counted = false;
    for (;;) {
        auto n = v.save(buf);
        if (n) {
            if (t.refused != 0) ++t.saved_after_refusal;
            ++t.saved;
            if (!snapshot::check(std::span<const std::uint8_t>(buf.data(), n.value()))) ++t.bad_bytes;
            if (!counted) {
                counted = true;
                ready.fetch_add(1, std::memory_order_release);
            }
            continue;
        }
        if (n.error().code() == errc::not_bound) {
            if (!counted) ready.fetch_add(1, std::memory_order_release);
            ++t.refused;
            return;
        }
        ++t.other;
        return;
    }
}

} // namespace

TEST_CASE("saves through views racing the last close each either complete or get not_bound") {
    for (int round = 0; round < 40; ++round) {
        CAPTURE(round);
        simulated_allocator frames;
        auto first = race_view::open_storage(frames, {.pages = race_pages, .max_order = order_2m});
        REQUIRE(first);
        race_view a = std::move(first.value());
        auto owner = a.owner();
        REQUIRE(owner);
        auto second = a.open_view(owner.value(), {});
        auto third = a.open_view(owner.value(), {});
        REQUIRE(second);
        REQUIRE(third);
        race_view b = std::move(second.value()), c = std::move(third.value());
        REQUIRE(a.allocate({0, race_pages}));
        std::atomic<int> ready{0};
        saver_tally ta, tb;
        std::uint64_t conversions = 0;
        std::thread sa([&] { save_until_closed(a, ready, ta); });
        std::thread sb([&] { save_until_closed(b, ready, tb); });
        std::thread conv([&] {  // changes the storage through c until c is closed
            for (std::uint64_t i = 0;; ++i) {
                const page_index p = (i * 37) % race_pages;
                auto s = c.convert({p, p + 1}, (i & 1) ? shareability::guest_only : shareability::shared);
                if (!s) return;
                ++conversions;
            }
        });
        while (ready.load(std::memory_order_acquire) < 2) std::this_thread::yield();
        CHECK(c.close());
        CHECK(a.close());
        CHECK(b.close());  // the last close: the storage is destroyed now
        sa.join();
        sb.join();
        conv.join();
        CHECK(a.open_views() == 0);
        for (const saver_tally* t : {&ta, &tb}) {
            CHECK(t->saved >= 1);
            CHECK(t->refused == 1);
            CHECK(t->other == 0);
            CHECK(t->bad_bytes == 0);
            CHECK(t->saved_after_refusal == 0);
        }
        CHECK(frames.pages_in_use() == 0);  // the storage's folios went back
    }
}
