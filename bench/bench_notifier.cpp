// Benchmarks for the notifier set's range index (issue 28, part 1).
//
// A VMM binds one guest memory object many times (per vCPU, device, IOMMU
// domain, vhost-user backend, memory listener), and a conversion of one
// 4 KiB page should not visit every binding. Every row below has B bindings
// of which exactly one overlaps the page acted on: binding i covers pages
// [64 i, 64 i + 64) of the object, each for its own consumer (a trivial
// counting consumer, virtual calls like the default `consumer`), and the
// page acted on lies in the binding in the middle (i = B / 2), so the list
// walk visits about half the bindings to reach it (its walk stops at the
// first binding starting past the range; a binding that started before the
// range and ended after it could be anywhere before).
//
// BM_ConvertManyBindings/<impl>/B   one vetoable round (prepare_round +
//   commit_round, the consumers' part of guest_memory::convert) over the page
//     index       notifier_set (the augmented interval tree)
//     list_walk   the algorithm the set had before: bindings in one
//                 intrusive list in page order, every round walking it
//                 (prepare up to the range end, commit over the whole list
//                 for the prepared flags), kept here as the peer
//   Goal: index at B = 10,000 <= 2x index at B = 1.
// BM_ConvertManyBindings/guestmem/B  guest_memory::convert of the page, the
//   whole protocol (lock, range map, folio table, notifier), an object of
//   max(1 GiB, B * 256 KiB) in 2 MiB folios (the one holding the page is
//   split), alternating shared / guest_only. Context: the end-to-end
//   price of many bindings.
// BM_TruncateManyBindings/<impl>/B, BM_MemoryFailureManyBindings/<impl>/B
//   the same for invalidate(truncate) and memory_failure (a 4 KiB folio).
// BM_BindChurn/<impl>/10000  10^4 bindings (disjoint ranges) bound in one
//   random order and unbound in another; the counter s_per_op is the time of
//   one bind or unbind (iteration time / 2*10^4). list_walk: the old bind (one
//   walk for the overlap check and the insertion point) and unbind (a walk
//   to find the id).
#include <benchmark/benchmark.h>

#include <guestmem/guestmem.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <boost/intrusive/list.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace guestmem;

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "bench_notifier: %s\n", what);
    std::exit(2);
}

struct counting_consumer final : consumer {
    std::uint64_t n = 0;
    status prepare(const invalidation&) override { return ok(); }
    void commit(const invalidation& inv, commit_report&) noexcept override { n += inv.pages.size(); }
    void abort(const invalidation&) noexcept override {}
    void memory_failure(const invalidation& inv) noexcept override { n += inv.pages.size(); }
};

constexpr page_index binding_pages = 64;

/// The peer: the list walk the notifier set had before its index, reduced
/// to what a round does (sequence bumps, virtual prepare/commit with the
/// clipped and translated invalidation, the prepared flags).
class list_walk_set {
public:
    struct slot {
        boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> hook;
        page_range pages{};
        std::uint64_t target_base = 0, id = 0;
        consumer* owner = nullptr;
        std::atomic<std::uint64_t> sequence{0};
        std::uint32_t depth = 0;
        bool prepared = false;
        void begin() noexcept {
            if (depth++ == 0)
                sequence.fetch_add(1, std::memory_order_acq_rel);
            else
                sequence.fetch_add(2, std::memory_order_acq_rel);
        }
        void end() noexcept {
            if (depth > 0 && --depth == 0)
                sequence.store(sequence.load(std::memory_order_relaxed) + 1, std::memory_order_release);
        }
    };
    using list_type = boost::intrusive::list<
        slot, boost::intrusive::member_hook<slot, decltype(slot::hook), &slot::hook>,
        boost::intrusive::constant_time_size<false>>;

    bool bind(slot& s, consumer& owner, page_range pages, std::uint64_t base) {
        auto pos = list_.end();
        for (auto it = list_.begin(); it != list_.end(); ++it) {
            if (it->owner == &owner && it->pages.overlaps(pages)) return false;
            if (pos == list_.end() && it->pages.begin > pages.begin) pos = it;
        }
        s.pages = pages;
        s.target_base = base;
        s.id = ++next_id_;
        s.owner = &owner;
        list_.insert(pos, s);
        return true;
    }
    bool unbind(std::uint64_t id) {
        for (slot& s : list_)
            if (s.id == id) {
                commit_report r;
                s.begin();
                (void)s.owner->prepare(make(s, s.pages, invalidation_cause::release, false));
                s.owner->commit(make(s, s.pages, invalidation_cause::release, false), r);
                s.end();
                s.hook.unlink();
                return true;
            }
        return false;
    }
    [[gnu::noinline]] bool round(page_range pages, invalidation_cause cause, commit_report& report) {
        each(pages, [](slot& s) { s.begin(); });
        bool vetoed = false;
        each(pages, [&](slot& s) {
            if (vetoed) return;
            if (!s.owner->prepare(make(s, pages, cause, true))) vetoed = true;
            else s.prepared = true;
        });
        if (vetoed) die("unexpected veto");
        for (slot& s : list_)  // the old commit_bindings: the whole list, for the prepared flags
            if (s.prepared) {
                s.owner->commit(make(s, pages, cause, true), report);
                s.prepared = false;
                s.end();
            }
        return true;
    }
    [[gnu::noinline]] void invalidate(page_range pages, invalidation_cause cause, commit_report& report) {
        each(pages, [](slot& s) { s.begin(); });
        each(pages, [&](slot& s) { (void)s.owner->prepare(make(s, pages, cause, false)); });
        each(pages, [&](slot& s) { s.owner->commit(make(s, pages, cause, false), report); });
        each(pages, [](slot& s) { s.end(); });
    }
    [[gnu::noinline]] void memory_failure(page_range folio) {
        each(folio, [&](slot& s) {
            s.begin();
            s.owner->memory_failure(make(s, folio, invalidation_cause::memory_failure, false));
            s.end();
        });
    }

private:
    template <class F>
    void each(page_range pages, F&& f) {
        for (auto it = list_.begin(); it != list_.end() && it->pages.begin < pages.end; ++it)
            if (it->pages.overlaps(pages)) f(*it);
    }
    static invalidation make(const slot& s, page_range pages, invalidation_cause cause, bool vetoable) {
        invalidation inv;
        inv.pages = s.pages.intersect(pages);
        inv.target = {s.target_base + (inv.pages.begin - s.pages.begin), s.target_base + (inv.pages.end - s.pages.begin)};
        inv.cause = cause;
        inv.vetoable = vetoable;
        inv.sequence = s.sequence.load(std::memory_order_acquire);
        inv.binding_id = s.id;
        return inv;
    }
    list_type list_;
    std::uint64_t next_id_ = 0;
};

/// B bindings of either kind, binding i over [64 i, 64 i + 64), each its own consumer.
struct index_fixture {
    std::vector<counting_consumer> consumers;
    std::vector<binding<>> slots;
    notifier_set<> set;
    explicit index_fixture(std::size_t b) : consumers(b), slots(b) {
        for (std::size_t i = 0; i < b; ++i)
            if (!set.bind(slots[i], consumers[i], {binding_pages * i, binding_pages * (i + 1)}, 0x100000))
                die("bind");
    }
    ~index_fixture() {
        for (auto& s : slots)
            if (s.is_bound() && !set.unbind(binding_handle{s.id()})) die("unbind");
    }
};
struct list_fixture {
    std::vector<counting_consumer> consumers;
    std::vector<list_walk_set::slot> slots;
    list_walk_set set;
    explicit list_fixture(std::size_t b) : consumers(b), slots(b) {
        for (std::size_t i = 0; i < b; ++i)
            if (!set.bind(slots[i], consumers[i], {binding_pages * i, binding_pages * (i + 1)}, 0x100000))
                die("bind");
    }
};

/// The page acted on: in the middle binding, a different page each time.
page_range target_page(std::size_t b, std::size_t i) {
    const page_index p = binding_pages * (b / 2) + (i % binding_pages);
    return {p, p + 1};
}

enum class op { round, truncate, memory_failure };

template <op O>
void bm_index(benchmark::State& state) {
    const auto b = static_cast<std::size_t>(state.range(0));
    index_fixture fx(b);
    commit_report report;
    std::size_t i = 0;
    for (auto _ : state) {
        const page_range r = target_page(b, i++);
        if constexpr (O == op::round) {
            if (!fx.set.prepare_round(r, invalidation_cause::to_shared)) die("round");
            fx.set.commit_round(report);
        } else if constexpr (O == op::truncate) {
            fx.set.invalidate(r, invalidation_cause::truncate, report);
        } else {
            fx.set.memory_failure(r, order_4k, shareability::shared);
        }
    }
    if (fx.consumers[b / 2].n != i) die("the overlapping consumer was not told");
    state.SetItemsProcessed(state.iterations());
}

template <op O>
void bm_list(benchmark::State& state) {
    const auto b = static_cast<std::size_t>(state.range(0));
    list_fixture fx(b);
    commit_report report;
    std::size_t i = 0;
    for (auto _ : state) {
        const page_range r = target_page(b, i++);
        if constexpr (O == op::round)
            fx.set.round(r, invalidation_cause::to_shared, report);
        else if constexpr (O == op::truncate)
            fx.set.invalidate(r, invalidation_cause::truncate, report);
        else
            fx.set.memory_failure(r);
    }
    if (fx.consumers[b / 2].n != i) die("the overlapping consumer was not told");
    state.SetItemsProcessed(state.iterations());
}

/// guest_memory::convert end to end with B bindings.
void bm_guestmem(benchmark::State& state) {
    const auto b = static_cast<std::size_t>(state.range(0));
    const page_index pages = std::max<page_index>(page_index{1} << 18, binding_pages * b);
    simulated_allocator frames;
    guest_memory<simulated_allocator> mem(frames, {.pages = pages, .initial = shareability::shared, .max_order = order_2m});
    if (!mem.allocate({0, pages})) die("allocate");
    std::vector<counting_consumer> consumers(b);
    std::vector<binding<>> slots(b);
    for (std::size_t i = 0; i < b; ++i)
        if (!mem.bind(slots[i], consumers[i], {binding_pages * i, binding_pages * (i + 1)}, 0x100000)) die("bind");
    std::size_t i = 0;
    for (auto _ : state) {
        const page_range r = target_page(b, i >> 1);
        auto s = mem.convert(r, (i & 1) ? shareability::shared : shareability::guest_only);
        benchmark::DoNotOptimize(s);
        ++i;
    }
    if (i & 1) (void)mem.convert(target_page(b, i >> 1), shareability::shared);
    for (auto& s : slots) (void)mem.unbind(binding_handle{s.id()});
    state.SetItemsProcessed(state.iterations());
}

constexpr std::size_t churn_n = 10000;

/// Seconds per bind or unbind: 2 * 10^4 operations an iteration.
benchmark::Counter per_op() {
    return benchmark::Counter(double(2 * churn_n),
                              benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

struct churn_plan {
    std::vector<std::size_t> bind_order, unbind_order;
    churn_plan() : bind_order(churn_n), unbind_order(churn_n) {
        std::iota(bind_order.begin(), bind_order.end(), 0);
        std::iota(unbind_order.begin(), unbind_order.end(), 0);
        std::mt19937_64 rng(7);
        std::shuffle(bind_order.begin(), bind_order.end(), rng);
        std::shuffle(unbind_order.begin(), unbind_order.end(), rng);
    }
};

void bm_churn_index(benchmark::State& state) {
    static const churn_plan plan;
    counting_consumer c;
    std::vector<binding<>> slots(churn_n);
    std::vector<binding_handle> h(churn_n);
    notifier_set<> set;
    for (auto _ : state) {
        for (std::size_t i : plan.bind_order) {
            auto r = set.bind(slots[i], c, {binding_pages * i, binding_pages * (i + 1)}, 0);
            if (!r) die("bind");
            h[i] = r.value();
        }
        for (std::size_t i : plan.unbind_order)
            if (!set.unbind(h[i])) die("unbind");
    }
    state.counters["s_per_op"] = per_op();
}

void bm_churn_list(benchmark::State& state) {
    static const churn_plan plan;
    counting_consumer c;
    std::vector<list_walk_set::slot> slots(churn_n);
    list_walk_set set;
    for (auto _ : state) {
        for (std::size_t i : plan.bind_order)
            if (!set.bind(slots[i], c, {binding_pages * i, binding_pages * (i + 1)}, 0)) die("bind");
        for (std::size_t i : plan.unbind_order)
            if (!set.unbind(slots[i].id)) die("unbind");
    }
    state.counters["s_per_op"] = per_op();
}

[[maybe_unused]] const bool registered = [] {
    const std::vector<std::int64_t> counts{1, 10, 100, 1000, 10000};
    auto add = [&](const char* name, void (*fn)(benchmark::State&)) {
        auto* b = benchmark::RegisterBenchmark(name, fn);
        for (std::int64_t n : counts) b->Arg(n);
    };
    add("BM_ConvertManyBindings/index", bm_index<op::round>);
    add("BM_ConvertManyBindings/list_walk", bm_list<op::round>);
    add("BM_ConvertManyBindings/guestmem", bm_guestmem);
    add("BM_TruncateManyBindings/index", bm_index<op::truncate>);
    add("BM_TruncateManyBindings/list_walk", bm_list<op::truncate>);
    add("BM_MemoryFailureManyBindings/index", bm_index<op::memory_failure>);
    add("BM_MemoryFailureManyBindings/list_walk", bm_list<op::memory_failure>);
    benchmark::RegisterBenchmark("BM_BindChurn/index/10000", bm_churn_index)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_BindChurn/list_walk/10000", bm_churn_list)->Unit(benchmark::kMillisecond);
    return true;
}();

} // namespace
