// tests/kvm_concurrency_test.cpp — the KVM layer under threads (meant for
// the tsan preset; part of test_concurrency): vCPU threads routing memory
// fault and MAP_GPA_RANGE exits through one exit_router at once while
// other threads fault and pin, and slots added and removed while vCPU
// threads look up and route. Iteration counts are fixed; nothing depends on
// wall time.
//
// The guarantees checked:
// - conversions serialise per object: a consumer sees prepare..commit /
//   abort rounds that never overlap, and what it was told equals the
//   object's state at the end, page for page;
// - each routed conversion is all or nothing: in the region a vCPU thread
//   converts alone, the object after each exit equals that thread's model
//   (target state on success, unchanged on EAGAIN / failure);
// - faults never see a torn state: blocks converted only as wholes are
//   never seen half shared by two faults between which no invalidation
//   began (read_begin / read_retry);
// - after remove_slot returns no thread routes through the removed slot:
//   per-slot "in use" counters the test owns are 0 then, a reader that
//   finds a slot always finds it present, and the writer destroys and
//   rebuilds the removed slot's object right away (TSan sees any use).
#include <doctest/doctest.h>

#include <guestmem/kvm/exit_router.hpp>

#include "support/kvm_support.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using namespace guestmem;
using namespace guestmem::test_support;

namespace {

struct lcg {
    std::uint64_t s;
    std::uint64_t next() { return s = s * 6364136223846793005ull + 1442695040888963407ull, s >> 33; }
};

// Starts every thread at once.
struct start_line {
    std::atomic<int> ready{0};
    int n;
    explicit start_line(int threads) : n(threads) {}
    void wait() {
        ready.fetch_add(1);
        while (ready.load() < n) std::this_thread::yield();
    }
};

// Counts the router's log lines (called from several threads at once).
struct counting_log {
    std::atomic<std::uint64_t> lines{0};
    static void sink(void* self, std::string_view) { static_cast<counting_log*>(self)->lines.fetch_add(1); }
};

/// A consumer that checks rounds never overlap on its object and keeps what
/// each commit told it; vetoes every 13th vetoable prepare.
class serial_consumer final : public consumer {
public:
    explicit serial_consumer(page_index pages) : told_private(pages, 0) {}
    std::vector<std::uint8_t> told_private;  // written in commit only (rounds are serial)
    std::atomic<std::uint64_t> overlaps{0}, commits{0}, aborts{0}, prepares{0};

    status prepare(const invalidation& inv) override {
        if (inside_.exchange(true)) overlaps.fetch_add(1);
        if (inv.vetoable && prepares.fetch_add(1) % 13 == 12) {
            inside_.store(false);  // a refused prepare ends the round (no abort for the refuser)
            return error::make(errc::vetoed, inv.pages.begin, "busy");
        }
        return ok();
    }
    void commit(const invalidation& inv, commit_report&) noexcept override {
        for (page_index p = inv.pages.begin; p < inv.pages.end; ++p) {
            if (inv.cause == invalidation_cause::to_guest_only) told_private[p] = 1;
            if (inv.cause == invalidation_cause::to_shared) told_private[p] = 0;
        }
        commits.fetch_add(1);
        inside_.store(false);
    }
    void abort(const invalidation&) noexcept override {
        aborts.fetch_add(1);
        inside_.store(false);
    }
    void memory_failure(const invalidation&) noexcept override {}

private:
    std::atomic<bool> inside_{false};
};

kvm_run zeroed_run() {
    kvm_run r;
    std::memset(&r, 0, sizeof r);
    return r;
}

} // namespace

// Four slots of 256 pages over one 1024-page object, GPA-contiguous and
// object-contiguous (a range across slots is one conversion). vCPU i alone
// converts pages [160 i, 160 i + 160); all vCPUs convert [640, 1024) in
// whole aligned 16-page blocks (across the slot boundary at 768 too).
TEST_CASE("vCPU threads routing exits through one router at once: per-object serial, all or nothing, never torn") {
    constexpr page_index pages = 1024, own = 160, shared_lo = 640, block = 16;
    constexpr int vcpus = 4, exits_per_vcpu = 1200;
    simulated_allocator alloc;
    sim_memory mem{alloc, {.pages = pages, .initial = shareability::shared, .max_order = order_2m}};
    REQUIRE(mem.allocate({0, pages}));
    serial_consumer c(pages);
    binding<consumer> b;
    REQUIRE(mem.bind(b, c, {0, pages}, 0));
    gpa_map<sim_memory> map;
    for (std::uint32_t k = 0; k < 4; ++k) REQUIRE(map.add_slot(k, k * 256 * page_size, 256, mem, k * 256));
    counting_log log;
    // guest_retries: every answer is final and checkable here (a transient
    // refusal is EAGAIN to the guest, failed for a memory fault); the
    // vmm_retries default would hand them back as retry_later instead
    // (tests/kvm_retry_test.cpp covers that policy).
    exit_router<sim_memory> router(map, &counting_log::sink, &log, router_options{.retries = retry_policy::guest_retries});

    std::atomic<std::uint64_t> model_mismatch{0}, bad_answers{0}, torn{0}, fault_pairs{0}, routed_ok{0}, refused{0},
        pins{0}, failures{0};
    start_line line(vcpus + 3);

    auto vcpu = [&](int id) {
        gpa_map<sim_memory>::reader me;
        if (!map.register_reader(me)) failures.fetch_add(1);
        line.wait();
        lcg rng{std::uint64_t(100 + id)};
        std::vector<std::uint8_t> model(own, 0);  // own region: 1 = guest_only
        const page_index base = page_index(id) * own;
        for (int i = 0; i < exits_per_vcpu; ++i) {
            const bool mine = rng.next() % 3 != 0;
            page_range r;
            if (mine) {
                const page_index p = base + rng.next() % own;
                r = {p, std::min<page_index>(p + 1 + rng.next() % 32, base + own)};
            } else {
                const page_index first = shared_lo / block + rng.next() % ((pages - shared_lo) / block);
                const page_index last = std::min<page_index>(first + 1 + rng.next() % 4, pages / block);
                r = {first * block, last * block};
            }
            const bool to_private = rng.next() & 1;
            const bool as_fault = rng.next() & 1;
            kvm_run run = zeroed_run();
            if (as_fault) {
                run.exit_reason = KVM_EXIT_MEMORY_FAULT;
                kvm_set_memory_fault(run, {to_private ? std::uint64_t{KVM_MEMORY_EXIT_FLAG_PRIVATE} : 0,
                                           r.begin * page_size, r.size() * page_size});
            } else {
                run.exit_reason = KVM_EXIT_HYPERCALL;
                run.hypercall.nr = KVM_HC_MAP_GPA_RANGE;
                run.hypercall.args[0] = r.begin * page_size;
                run.hypercall.args[1] = r.size();
                run.hypercall.args[2] = to_private ? KVM_MAP_GPA_RANGE_ENCRYPTED : 0;
                run.hypercall.longmode = KVM_EXIT_HYPERCALL_LONG_MODE;
            }
            exit_outcome o;
            {
                auto section = map.read(me);
                o = router.handle(run);
            }
            const bool done = bool(o.why);
            // The only refusals possible here are transient: a pin (busy) or the consumer's veto.
            if (!done && o.why.error().code() != errc::busy && o.why.error().code() != errc::vetoed) bad_answers.fetch_add(1);
            if (!as_fault && run.hypercall.ret != (done ? 0 : EAGAIN)) bad_answers.fetch_add(1);
            if (as_fault && o.disposition != (done ? exit_disposition::resume : exit_disposition::failed))
                bad_answers.fetch_add(1);
            (done ? routed_ok : refused).fetch_add(1, std::memory_order_relaxed);
            if (!mine) continue;
            for (page_index p = r.begin; p < r.end; ++p) {
                if (done) model[p - base] = to_private ? 1 : 0;
                const bool priv = mem.shareability_at(p).value() == shareability::guest_only;
                if (priv != (model[p - base] != 0)) model_mismatch.fetch_add(1);
            }
        }
    };
    auto faulter = [&](std::uint64_t seed) {
        line.wait();
        lcg rng{seed};
        for (int i = 0; i < 6000; ++i) {
            const page_index blk = shared_lo + block * (rng.next() % ((pages - shared_lo) / block));
            const std::uint64_t seq = mem.read_begin(b);
            const bool first = bool(mem.fault(blk, shareability::shared, accessor::host));
            if (i % 3 == 0) std::this_thread::yield();
            const bool last = bool(mem.fault(blk + block - 1, shareability::shared, accessor::host));
            if (mem.read_retry(b, seq)) continue;
            fault_pairs.fetch_add(1, std::memory_order_relaxed);
            if (first != last) torn.fetch_add(1);
        }
    };
    auto pinner = [&] {
        line.wait();
        lcg rng{77};
        for (int i = 0; i < 2000; ++i) {
            const page_index p = rng.next() % pages;
            if (mem.pin({p, p + 1}, accessor::device)) {
                pins.fetch_add(1, std::memory_order_relaxed);
                std::this_thread::yield();
                if (!mem.unpin({p, p + 1})) failures.fetch_add(1);
            }
        }
    };

    std::vector<std::thread> threads;
    for (int i = 0; i < vcpus; ++i) threads.emplace_back(vcpu, i);
    threads.emplace_back(faulter, 11);
    threads.emplace_back(faulter, 12);
    threads.emplace_back(pinner);
    for (auto& t : threads) t.join();

    CHECK(failures.load() == 0);
    CHECK(bad_answers.load() == 0);
    CHECK(model_mismatch.load() == 0);
    CHECK(c.overlaps.load() == 0);
    CHECK(torn.load() == 0);
    CHECK(routed_ok.load() > 0);
    CHECK(refused.load() > 0);
    CHECK(fault_pairs.load() > 0);
    CHECK(log.lines.load() == refused.load());  // one log line per refusal, from every thread
    for (page_index p = 0; p < pages; ++p) {
        CAPTURE(p);
        REQUIRE((mem.shareability_at(p).value() == shareability::guest_only) == (c.told_private[p] != 0));
    }
    for (page_index blk = shared_lo; blk < pages; blk += block) {
        const shareability first = mem.shareability_at(blk).value();
        const auto guard = mem.lock_shared();
        CHECK(mem.locked(guard).shareability_map().all_of({blk, blk + block}, first));
    }
    CHECK(mem.stats().pinned_pages == 0);
    MESSAGE(routed_ok.load() << " exits converted, " << refused.load() << " refused (pins, vetoes), " << c.commits.load()
                             << " commits, " << fault_pairs.load() << " fault pairs checked, " << pins.load() << " pins");
}

// Eight slot ids, each over its own 64-page object at GPA id * 1 MiB. A
// writer adds and removes them at random; after each remove_slot returns it
// checks the slot's in-use counter, marks it absent, and destroys and
// rebuilds its object. Four readers look GPAs up, use the slot they find
// (its object's stats, a conversion of its pages) and route
// MAP_GPA_RANGE requests through the router, all in read sections.
TEST_CASE("slots added and removed while vCPU threads look up and route: no thread uses a slot after remove_slot") {
    constexpr std::uint32_t ids = 8;
    constexpr page_index slot_pages = 64;
    constexpr int readers = 4, min_lookups = 1000, max_lookups = 200000, changes = 600;
    simulated_allocator alloc;
    const guest_memory_config cfg{.pages = slot_pages, .initial = shareability::shared, .max_order = order_4k};
    std::array<std::unique_ptr<sim_memory>, ids> objects;
    for (auto& o : objects) o = std::make_unique<sim_memory>(alloc, cfg);
    std::array<std::uint64_t, ids> generation{};  // plain: written by the writer after removal only
    std::array<std::atomic<int>, ids> in_use{};
    std::array<std::atomic<bool>, ids> present{};
    gpa_map<sim_memory, ids> map;
    counting_log log;
    exit_router<sim_memory, ids> router(map, &counting_log::sink, &log);
    std::atomic<std::uint64_t> found{0}, holes{0}, routed{0}, used_absent{0}, bad_slot{0}, in_use_after_remove{0},
        removals{0}, failures{0};
    std::atomic<bool> writer_done{false};
    std::atomic<int> readers_done{0};  // the writer stops waiting for lookups once every reader has left
    std::atomic<std::uint64_t> lookups_made{0};
    start_line line(readers + 1);

    auto reader = [&](std::uint64_t seed) {
        gpa_map<sim_memory, ids>::reader me;
        if (!map.register_reader(me)) failures.fetch_add(1);
        line.wait();
        lcg rng{seed};
        // At least min_lookups, and until the writer is done (so lookups
        // overlap every change however the threads are scheduled), at most
        // max_lookups. Between two sections the thread yields, as a vCPU
        // thread runs its guest between two exits: a thread preempted
        // inside its section would hold every writer up.
        for (int i = 0; i < max_lookups && (i < min_lookups || !writer_done.load()); ++i) {
            if (i != 0) std::this_thread::yield();
            lookups_made.fetch_add(1, std::memory_order_relaxed);
            const std::uint64_t gpa = (rng.next() % (ids * 256)) * page_size;  // each id's MiB: 64 pages mapped, 192 a hole
            auto section = map.read(me);
            const auto* s = map.find(gpa);
            if (s == nullptr) {
                holes.fetch_add(1, std::memory_order_relaxed);
                continue;
            }
            const std::uint32_t id = s->id;
            found.fetch_add(1, std::memory_order_relaxed);
            if (id != gpa >> 20 || !s->frames.contains(gpa >> page_shift) || s->frames.size() != slot_pages ||
                s->memory != objects[id].get())
                bad_slot.fetch_add(1);
            in_use[id].fetch_add(1);
            if (!present[id].load()) used_absent.fetch_add(1);
            std::uint64_t g = generation[id];  // a race with the writer's rebuild if the slot were gone
            g += s->memory->stats().conversions;
            if (i % 2 == 1) {
                // Hold the slot across a reschedule: a writer that did not
                // wait for this section would remove the slot and destroy
                // its object now, under our feet.
                std::this_thread::yield();
                if (!present[id].load()) used_absent.fetch_add(1);
                g += generation[id] + s->memory->stats().conversions;
            }
            if (i % 4 == 0) {
                // Through the slot: its object directly, then the router by GPA.
                const page_index p = s->object_page(gpa >> page_shift);
                if (!s->memory->convert({p, p + 1}, (i & 8) ? shareability::guest_only : shareability::shared))
                    failures.fetch_add(1);
                const std::uint64_t ret = router.handle_map_gpa_range(gpa, 1, (i & 8) ? 0 : KVM_MAP_GPA_RANGE_ENCRYPTED);
                // A newer table may already lack the slot: EINVAL then, never EAGAIN here (no pins, no consumers).
                if (ret == 0) routed.fetch_add(1, std::memory_order_relaxed);
                else if (ret != EINVAL) failures.fetch_add(1);
            }
            in_use[id].fetch_sub(1);
            (void)g;
        }
        readers_done.fetch_add(1);
    };
    auto writer = [&] {
        line.wait();
        lcg rng{5};
        for (int i = 0; i < changes; ++i) {
            // Let the readers make 16 lookups between two changes, so every
            // table is read (progress, not time: no sleep).
            const std::uint64_t seen = lookups_made.load();
            // (A starved writer may find every reader gone at max_lookups: then it goes on alone.)
            while (lookups_made.load() < seen + 16 && readers_done.load() < readers) std::this_thread::yield();
            const std::uint32_t id = std::uint32_t(rng.next() % ids);
            if (!present[id].load()) {
                present[id].store(true);
                if (!map.add_slot(id, std::uint64_t(id) << 20, slot_pages, *objects[id], 0)) failures.fetch_add(1);
                continue;
            }
            if (!map.remove_slot(id)) failures.fetch_add(1);
            if (in_use[id].load() != 0) in_use_after_remove.fetch_add(1);
            present[id].store(false);
            // Nobody may reach the object now: destroy it and build a new one.
            objects[id].reset();
            objects[id] = std::make_unique<sim_memory>(alloc, cfg);
            ++generation[id];
            removals.fetch_add(1, std::memory_order_relaxed);
        }
        writer_done.store(true);
    };

    std::vector<std::thread> threads;
    for (int i = 0; i < readers; ++i) threads.emplace_back(reader, 31 + i);
    threads.emplace_back(writer);
    for (auto& t : threads) t.join();

    CHECK(failures.load() == 0);
    CHECK(bad_slot.load() == 0);
    CHECK(used_absent.load() == 0);
    CHECK(in_use_after_remove.load() == 0);
    CHECK(found.load() > 0);
    CHECK(holes.load() > 0);
    CHECK(removals.load() > 0);
    CHECK(routed.load() > 0);
    // The map ends as the writer's model says.
    for (std::uint32_t id = 0; id < ids; ++id) {
        CAPTURE(id);
        const auto* s = map.find_slot(id);
        CHECK((s != nullptr) == present[id].load());
    }
    MESSAGE(found.load() << " lookups found a slot, " << holes.load() << " a hole, " << routed.load()
                         << " routed conversions, " << removals.load() << " removals (each followed by the object's "
                         << "destruction)");
}

TEST_CASE("remove_slot does not return while a read section that could see the slot is open") {
    two_slot_vm vm;
    gpa_map<sim_memory>::reader me;
    REQUIRE(vm.map.register_reader(me));
    std::atomic<bool> writer_started{false}, removed{false};
    std::atomic<int> seen_removed_inside{0};
    std::thread writer;
    {
        auto section = vm.map.read(me);
        const auto* s = vm.map.find(slot2_gpa);
        REQUIRE(s != nullptr);
        writer = std::thread([&] {
            writer_started.store(true);
            if (vm.map.remove_slot(2)) removed.store(true);
        });
        while (!writer_started.load()) std::this_thread::yield();
        for (int i = 0; i < 2000; ++i) {  // give the writer every chance to (wrongly) return
            if (removed.load()) seen_removed_inside.fetch_add(1);
            std::this_thread::yield();
        }
        CHECK(s->id == 2);  // still readable: the old table is not reused while the section is open
        CHECK(s->memory == &vm.mem);
    }
    writer.join();
    CHECK(seen_removed_inside.load() == 0);
    CHECK(removed.load());
    CHECK(vm.map.find(slot2_gpa) == nullptr);
}
