// Concurrency stress (issue 8), meant for the tsan preset: fault threads
// (the object's shared lock) install mappings into a consumer's own page
// tables with read_begin / read_retry, a pin thread pins and unpins, and a
// control thread converts both ways (with and without defer_if_pinned) and
// punches and refills holes. Iteration counts are fixed; nothing depends on
// wall time.
//
// Why the check is sound: the consumer keeps, under its own lock, what it
// was told by commit (a shadow of each page's shareability) and what it has
// mapped. An install happens under that lock only if read_retry says no
// invalidation began since the lookup; the install then asserts that the
// shadow agrees with the kind of mapping (a host/device mapping of a page
// the consumer was told is guest_only, or a guest_only mapping of a page it
// was told is shared, is a stale install). Independently of the
// notifications, the control thread checks after every successful convert
// that no mapping of the wrong kind survives in the converted range: a
// fault that looked up before the conversion and installed after it would
// show up there even if no commit had been delivered at all.
#include <doctest/doctest.h>

#include <guestmem/testing/simulated_allocator.hpp>
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/view/memory_view.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

using namespace guestmem;

namespace {

constexpr page_index pages = 4 * 512;

/// A stage-2/IOMMU-like consumer: host (shared) and guest (guest_only) mappings per page.
class mapping_consumer final : public consumer {
public:
    std::mutex lock;
    std::vector<std::uint8_t> host_mapped = std::vector<std::uint8_t>(pages, 0);
    std::vector<std::uint8_t> guest_mapped = std::vector<std::uint8_t>(pages, 0);
    std::vector<std::uint8_t> told_private = std::vector<std::uint8_t>(pages, 0);  // initial: shared
    std::uint64_t violations = 0, installs = 0, retries = 0, commits = 0, prepares = 0;

    status prepare(const invalidation& inv) override {
        std::lock_guard g(lock);
        // Refuse every 11th vetoable prepare: aborts interleave with faults too.
        if (inv.vetoable && ++prepares % 11 == 0) return error::make(errc::vetoed, inv.pages.begin, "busy mapping");
        return ok();
    }
    void commit(const invalidation& inv, commit_report&) noexcept override {
        std::lock_guard g(lock);
        ++commits;
        for (page_index p = inv.pages.begin; p < inv.pages.end; ++p) {
            switch (inv.cause) {
            case invalidation_cause::to_guest_only: host_mapped[p] = 0; told_private[p] = 1; break;
            case invalidation_cause::to_shared: guest_mapped[p] = 0; told_private[p] = 0; break;
            default: host_mapped[p] = guest_mapped[p] = 0; break;
            }
        }
    }
    void abort(const invalidation&) noexcept override {}
    void memory_failure(const invalidation& inv) noexcept override {
        std::lock_guard g(lock);
        host_mapped[inv.pages.begin] = guest_mapped[inv.pages.begin] = 0;
    }
};

/// Fault `page` for `who` and install it the mmu_interval_notifier way.
template <class memory>
void fault_and_install(memory& mem, const binding<consumer>& b, mapping_consumer& c, page_index page, shareability want,
                       accessor who) {
    for (unsigned attempt = 0;; ++attempt) {
        const std::uint64_t seq = mem.read_begin(b);
        auto r = mem.fault(page, want, who);
        if (!r) return;  // refused (wrong shareability, draining, hole): nothing to install
        // Widen the window between lookup and install (a page-table walk
        // would take time here), so conversions land in it.
        if ((page + attempt) % 4 == 0) std::this_thread::yield();
        std::lock_guard g(c.lock);
        if (mem.read_retry(b, seq)) {
            ++c.retries;
            continue;
        }
        const bool told_private = c.told_private[page] != 0;
        if (want == shareability::shared ? told_private : !told_private) ++c.violations;
        (want == shareability::shared ? c.host_mapped : c.guest_mapped)[page] = 1;
        ++c.installs;
        return;
    }
}

struct lcg {
    std::uint64_t s;
    std::uint64_t next() { return s = s * 6364136223846793005ull + 1442695040888963407ull, s >> 33; }
};

} // namespace

// Both lock policies a VMM would pick for faulting threads: the default
// (sharded_shared_mutex) and std::shared_mutex. Two control threads convert
// at once, so writers also contend with each other.
TEST_CASE_TEMPLATE("faults under the shared lock never install a mapping that a concurrent conversion made stale", Lock,
                   sharded_shared_mutex<>, std::shared_mutex) {
    using memory = guest_memory<simulated_allocator, consumer, Lock>;
    simulated_allocator alloc;
    memory mem(alloc, {.pages = pages, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, pages}));
    mapping_consumer c;
    binding<consumer> b;
    REQUIRE(mem.bind(b, c, {0, pages}, 0));

    std::atomic<std::uint64_t> conversions{0}, stale_after_convert{0}, pins{0}, thread_failures{0};

    std::atomic<int> ready{0};
    auto start = [&] {
        ready.fetch_add(1);
        while (ready.load() < 6) std::this_thread::yield();
    };
    auto faulter = [&](std::uint64_t seed, accessor who, shareability want) {
        start();
        lcg rng{seed};
        for (int i = 0; i < 20000; ++i) fault_and_install(mem, b, c, rng.next() % pages, want, who);
    };
    auto pinner = [&] {
        start();
        lcg rng{99};
        for (int i = 0; i < 3000; ++i) {
            const page_index p = rng.next() % pages;
            const page_range r{p, std::min<page_index>(p + 1 + rng.next() % 4, pages)};
            if (mem.pin(r, accessor::host)) {
                pins.fetch_add(1, std::memory_order_relaxed);
                std::this_thread::yield();
                if (!mem.unpin(r)) thread_failures.fetch_add(1);
            }
        }
    };
    // Each converter owns half of the object: its check after a conversion
    // (no mapping of the wrong kind left in the range) holds only while no
    // other thread may convert that range back in between.
    auto control = [&](std::uint64_t seed, page_index lo, page_index hi) {
        start();
        lcg rng{seed};
        for (int i = 0; i < 1500; ++i) {
            const page_index p = lo + rng.next() % (hi - lo);
            const page_range r{p, std::min<page_index>(p + 1 + rng.next() % 700, hi)};
            const unsigned what = rng.next() % 8;
            if (what == 7) {
                // Truncate and refill (refused while pinned: that is fine).
                if (mem.punch_hole(r) && !mem.allocate(r)) thread_failures.fetch_add(1);
                continue;
            }
            const shareability to = what < 4 ? shareability::guest_only : shareability::shared;
            if (!mem.convert(r, to, {.defer_if_pinned = what == 1 || what == 2})) continue;
            conversions.fetch_add(1, std::memory_order_relaxed);
            std::lock_guard g(c.lock);
            for (page_index q = r.begin; q < r.end; ++q)
                if ((to == shareability::guest_only ? c.host_mapped : c.guest_mapped)[q]) stale_after_convert.fetch_add(1);
        }
    };

    // A fixed array, not a vector: g++ 12 at -O3 reports a false
    // -Warray-bounds inside vector<thread>'s growth path.
    std::thread threads[] = {std::thread(faulter, 1, accessor::host, shareability::shared),
                             std::thread(faulter, 2, accessor::device, shareability::shared),
                             std::thread(faulter, 3, accessor::hypervisor, shareability::guest_only),
                             std::thread(pinner),
                             std::thread(control, 7, 0, pages / 2),
                             std::thread(control, 8, pages / 2, pages)};
    for (auto& t : threads) t.join();

    // Every thread has joined; still, read the consumer under its lock and
    // query the object after letting go of it (the object's lock is never
    // taken while holding a consumer's lock: commit takes them the other way).
    std::unique_lock g(c.lock);
    const std::vector<std::uint8_t> told_private = c.told_private;
    g.unlock();
    CHECK(thread_failures.load() == 0);
    CHECK(c.violations == 0);
    CHECK(stale_after_convert.load() == 0);
    CHECK(c.installs > 0);
    CHECK(conversions.load() > 0);
    CHECK(c.commits > 0);
    // The object agrees with what the consumer was told, page for page.
    for (page_index p = 0; p < pages; ++p) {
        CAPTURE(p);
        const bool priv = mem.shareability_at(p).value() == shareability::guest_only;
        REQUIRE(priv == (told_private[p] != 0));
    }
    CHECK(mem.stats().pinned_pages == 0);
    {
        const auto guard = mem.lock_shared();
        CHECK(mem.locked(guard).shareability_map().coalesced());
    }
    MESSAGE(c.installs << " installs, " << c.retries << " read_retry retries, " << conversions.load() << " conversions, "
                       << pins.load() << " pins");
}

TEST_CASE("sharded_shared_mutex: writers exclude each other and every reader; readers share") {
    sharded_shared_mutex<4> m;  // fewer slots than threads: slots are shared too
    std::uint64_t guarded = 0;  // written by writers only, under the lock (TSan sees any race)
    std::atomic<int> writers_inside{0}, readers_inside{0}, max_readers{0};
    std::atomic<std::uint64_t> violations{0};
    auto writer = [&] {
        for (int i = 0; i < 2000; ++i) {
            std::unique_lock g(m);
            if (writers_inside.fetch_add(1) != 0 || readers_inside.load() != 0) violations.fetch_add(1);
            ++guarded;
            writers_inside.fetch_sub(1);
        }
    };
    auto reader = [&] {
        std::uint64_t seen = 0;
        for (int i = 0; i < 4000; ++i) {
            std::shared_lock g(m);
            const int now = readers_inside.fetch_add(1) + 1;
            int prev = max_readers.load();
            while (now > prev && !max_readers.compare_exchange_weak(prev, now)) {}
            if (writers_inside.load() != 0) violations.fetch_add(1);
            if (guarded < seen) violations.fetch_add(1);  // writes only ever add
            seen = guarded;
            readers_inside.fetch_sub(1);
        }
    };
    std::thread threads[8];  // 2 writers, 6 readers (an array: see above)
    for (int i = 0; i < 8; ++i) threads[i] = i < 2 ? std::thread(writer) : std::thread(reader);
    for (auto& t : threads) t.join();
    CHECK(violations.load() == 0);
    CHECK(guarded == 4000);
    MESSAGE("most readers inside at once: " << max_readers.load());
}

// Views (view/memory_view.hpp) under threads: two VMs' views fault and
// convert the same storage while a helper view of VM B is opened, bound
// (with replay), unbound and closed over and over. Every view call takes
// the view table's lock, then the storage's; TSan checks the pairs, and the
// storage must end exactly as the last conversions left it and be freed
// when the last view closes.
TEST_CASE("views: faults and conversions through two VMs' views race a helper view opening and closing") {
    using view = memory_view<guest_memory<simulated_allocator>>;
    simulated_allocator frames;
    auto a = view::open_storage(frames, {.pages = pages, .initial = shareability::shared, .max_order = order_2m},
                                {.max_views = 8, .max_owners = 4});
    REQUIRE(a);
    REQUIRE(a.value().allocate({0, pages}));
    auto vm_b = a.value().add_owner();
    REQUIRE(vm_b);
    auto b = a.value().open_view(vm_b.value(), {});
    REQUIRE(b);
    std::atomic<int> ready{0};
    std::atomic<std::uint64_t> faults{0}, conversions{0}, helper_rounds{0}, failures{0};
    auto start = [&] {
        ready.fetch_add(1);
        while (ready.load() < 4) std::this_thread::yield();
    };
    auto faulter = [&](view& v, std::uint64_t seed) {
        start();
        lcg rng{seed};
        for (int i = 0; i < 20000; ++i)
            if (v.fault(rng.next() % pages, shareability::shared, accessor::host)) faults.fetch_add(1, std::memory_order_relaxed);
    };
    auto converter = [&] {
        start();
        lcg rng{3};
        for (int i = 0; i < 2000; ++i) {
            view& v = (i & 1) ? b.value() : a.value();
            const page_index p = rng.next() % pages;
            const page_range r{p, std::min<page_index>(p + 1 + rng.next() % 64, pages)};
            if (v.convert(r, (rng.next() & 1) ? shareability::guest_only : shareability::shared))
                conversions.fetch_add(1, std::memory_order_relaxed);
        }
    };
    auto helper = [&] {
        start();
        mapping_consumer c;
        for (int i = 0; i < 300; ++i) {
            auto h = a.value().open_view(vm_b.value(), {});
            if (!h) {
                failures.fetch_add(1);
                continue;
            }
            view::binding_type slot;
            auto bound = h.value().bind(slot, c, {0, pages}, 0);  // replayed: told every shared run
            if (!bound || !h.value().unbind(bound.value()) || !h.value().close()) failures.fetch_add(1);
            helper_rounds.fetch_add(1, std::memory_order_relaxed);
        }
    };
    std::thread threads[] = {std::thread(faulter, std::ref(a.value()), 11), std::thread(faulter, std::ref(b.value()), 12),
                             std::thread(converter), std::thread(helper)};  // an array: see above
    for (auto& t : threads) t.join();
    CHECK(failures.load() == 0);
    CHECK(helper_rounds.load() == 300);
    CHECK(conversions.load() > 0);
    CHECK(faults.load() > 0);
    CHECK(a.value().open_views() == 2);
    CHECK(a.value().stats().value().bindings == 0);
    REQUIRE(a.value().close());
    CHECK(frames.pages_in_use() == pages);  // B's view keeps the storage
    REQUIRE(b.value().close());
    CHECK(frames.pages_in_use() == 0);
    MESSAGE(faults.load() << " faults, " << conversions.load() << " conversions, " << helper_rounds.load()
                          << " helper views opened, bound with replay, unbound and closed");
}
