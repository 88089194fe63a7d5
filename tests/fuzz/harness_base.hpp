// tests/fuzz/harness_base.hpp — the differential harness's state and checks
// (split from harness.hpp, which decodes the calls): the storage and view
// types, the observation of everything a caller can see, and the checks run
// after every call (results against the model, "a failed call changed
// nothing", invariants, faults on a probe page through every open view).
#pragma once


#include <guestmem/testing/fault_injecting_allocator.hpp>
#include <guestmem/testing/simulated_allocator.hpp>
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/view/memory_view.hpp>
#include <guestmem/testing/recording_consumer.hpp>

#include "../model/reference_model.hpp"
#include "../support/failing_allocator.hpp"
#include "snapshot_check.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <tuple>
#include <vector>

namespace guestmem::fuzz {

/// API calls executed by every harness in this process.
inline std::uint64_t& operation_count() {
    static std::uint64_t n = 0;
    return n;
}

/// Node allocator with a shared control: the fail_at-th call (counted from
/// the start) returns nullptr. Standard allocator interface.
using node_control = test_support::alloc_control;
template <class T>
using counting_node_allocator = test_support::failing_allocator<T>;

using injecting_allocator = fault_injecting_allocator<simulated_allocator>;
using memory_type = guest_memory<injecting_allocator, consumer, null_lock, counting_node_allocator<std::byte>>;
/// The harness reaches the storage through views (VM A's main view, never
/// closed; VM A's helper; VM B's view).
using view_type = memory_view<memory_type>;

/// Everything observable about the object (not event counters), for "a
/// failed call changed nothing".
struct observation {
    std::vector<std::tuple<page_index, page_index, shareability>> runs;
    model::leaf_list leaves;
    std::vector<std::tuple<page_index, page_index, std::uint32_t>> pins;
    std::vector<std::tuple<std::uint64_t, page_index, page_index, std::uint64_t, std::uint64_t>> bindings;
    std::vector<std::tuple<page_index, folio_order, bool, bool>> detached;
    std::vector<std::uint64_t> consumer_calls;
    std::uint64_t pages_in_use = 0, splits = 0, zeroed = 0;
    friend bool operator==(const observation&, const observation&) = default;
};

template <class Mem>
model::leaf_list leaves_of(const Mem& mem) {
    model::leaf_list out;
    mem.locked(mem.lock_shared()).folios().for_each_folio({0, mem.size()}, [&](const folio_view& v) {
        out.push_back({v.first, v.order, v.top_order, v.frame, v.mappability, v.poisoned});
    });
    return out;
}


/// The harness's state and checks; harness (harness.hpp) adds the decoding of calls.
class harness_base {
public:
    static constexpr unsigned consumers = 3, slots = 2, views = 3;
    static constexpr std::size_t max_calls = 400;

protected:
    struct ctx {
        const memory_type& mem;  ///< the storage (VM A's main view keeps it alive)
        model::reference_model& ref;
        injecting_allocator& alloc;
        simulated_allocator& inner;
        node_control& ctl;
        recording_consumer (&cons)[consumers];
        view_binding<consumer> (&slot)[consumers][slots];
        std::uint64_t (&stale)[consumers][slots];
        view_type (&view)[views];
        owner_id vm_b{};
        bool big;
        std::uint64_t arm_alloc = 0, arm_nodes = 0;
        const char* op = "";
    };

    // ---- decoding ---------------------------------------------------------
    std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
    std::uint16_t u16() { return std::uint16_t(u8() | (u8() << 8)); }

    page_index point(const ctx& c) {
        const page_index s = c.mem.size();
        const page_index pal[] = {0, 1, 7, 511, 512, 513, 1024, 1536, s / 2, s - 513, s - 512, s - 1, s,
                                  pages_in(order_1g) - 1, pages_in(order_1g), pages_in(order_1g) + 1};
        const std::uint8_t k = u8();
        if (!c.big && k < 128) return u16() % s;
        const page_index base = pal[k % std::size(pal)];
        return std::min<page_index>(base + (k >> 4) % 4, s);
    }
    page_range range(const ctx& c) {
        const std::uint8_t mode = u8();
        const page_index s = c.mem.size();
        if (mode >= 240) {
            switch (mode % 6) {
            case 0: return {0, s};
            case 1: { page_index b = point(c); return {b + 1 + u8() % 4, b}; }        // inverted
            case 2: { page_index b = point(c); return {b, b}; }                        // empty
            case 3: return {s - 1 - u8() % 4, s + 1 + u8() % 4};                       // past size
            case 4: return {UINT64_MAX - 1 - u8() % 4, UINT64_MAX};                     // near 2^64
            default: return {s, s + 1};
            }
        }
        page_index b = point(c);
        if (b >= s) b = s - 1;
        const std::uint64_t lens[] = {1, 2, 3, 8, 511, 512, 513, 1024, 4096, pages_in(order_1g)};
        std::uint64_t len = mode < 128 ? 1 + u8() % 64 : lens[mode % std::size(lens)];
        if (mode % 16 == 15) len = s - b;
        if ((mode & 64) && b >= 512) b &= ~page_index{511};
        return {b, std::min<page_index>(b + len, s)};
    }

    static model::expect st_expect(const status& st) {
        return st ? model::expect::success() : model::expect::fail(st.error().code(), st.error().page(), st.error().binding_id());
    }

    /// An out_of_memory result is legitimate only if a failure was injected
    /// during the call, the model says the call would otherwise succeed (or
    /// fail only after its reservations: busy, vetoed), and nothing changed.
    template <class Would>
    bool oom(ctx& c, const status& st, std::uint64_t calls_before, std::int64_t nodes_before, const observation& before,
             Would&& would_fn, bool late_errors = false) {
        if (st || st.error().code() != errc::out_of_memory) return false;
        const model::expect would = would_fn();
        if (c.alloc.injected() == calls_before && c.ctl.failures == nodes_before)
            diverge(c, "out_of_memory without an injected failure: %s", msg(st));
        const bool late = would.ok || (late_errors && (would.code == errc::busy || would.code == errc::vetoed));
        if (!late)
            diverge(c, "out_of_memory where the model expects %s at page %#" PRIx64, std::string(to_string(would.code)).c_str(), would.page);
        if (!(before == observe(c))) diverge(c, "a call failing with out_of_memory changed the object");
        return true;
    }

    void compare(ctx& c, const status& st, const model::expect& want) {
        if (bool(st) != want.ok) {
            if (st) diverge(c, "call succeeded; the model expects %s at page %#" PRIx64, std::string(to_string(want.code)).c_str(), want.page);
            diverge(c, "call failed (%s); the model expects success", msg(st));
        }
        if (st) return;
        const error& e = st.error();
        if (e.code() != want.code || e.page() != want.page)
            diverge(c, "got %s at page %#" PRIx64 " (%s); the model expects %s at page %#" PRIx64,
                    std::string(to_string(e.code())).c_str(), e.page(), msg(st), std::string(to_string(want.code)).c_str(), want.page);
        if (want.consumer != no_binding && e.binding_id() != want.consumer)
            diverge(c, "veto names binding %" PRIu64 ", expected %" PRIu64, e.binding_id(), want.consumer);
        if (e.message().empty()) diverge(c, "error without a message");
    }

    void check_fault(ctx& c, page_index p, shareability wanted, accessor who, unsigned v = 0) {
        auto r = c.view[v].fault(p, wanted, who);
        const access_policy policy = c.ref.policy(v);
        const model::expect want = c.ref.view_open(v) ? c.ref.fault(p, wanted, who, policy) : c.ref.through(v);
        compare(c, r ? status(ok()) : status(r.error()), want);
        if (!r) return;
        const fault_result& f = r.value();
        const page_range folio{f.folio_first, f.folio_first + pages_in(f.order)};
        if (!folio.contains(p) || f.frame != f.folio_frame + (p - f.folio_first) || folio.end > c.mem.size())
            diverge(c, "fault of page %#" PRIx64 " returned an inconsistent folio", p);
        if (!policy.may_map(who, shareability::guest_only) &&
            c.ref.first_where(folio, [](const model::page_state& s) { return s.share != shareability::shared; }) != no_page)
            diverge(c, "an untrusted accessor got a folio [%#" PRIx64 ", %#" PRIx64 ") holding guest_only pages", folio.begin, folio.end);
        if (c.ref.first_where(folio, [&](const model::page_state& s) { return s.share != wanted || s.poisoned || s.draining; }) != no_page)
            diverge(c, "fault handed out a folio that is not uniformly mappable");
    }

    // ---- state checks -----------------------------------------------------
    observation observe(ctx& c) {
        observation o;
        o.leaves = leaves_of(c.mem);
        {
            const auto guard = c.mem.lock_shared();
            const auto parts = c.mem.locked(guard);
            for (const auto& r : parts.shareability_map().runs({0, c.mem.size()})) o.runs.emplace_back(r.range.begin, r.range.end, r.value);
            parts.folios().for_each_pin_run([&](page_index b, page_index e, std::uint32_t n) { o.pins.emplace_back(b, e, n); });
            parts.notifiers().for_each_binding([&](const binding<consumer>& b) {
                o.bindings.emplace_back(b.id(), b.pages().begin, b.pages().end, b.target_base(), b.sequence());
            });
            parts.folios().for_each_detached([&](page_index first, folio_order order, frame_number, bool pinned, bool quarantined) {
                o.detached.emplace_back(first, order, pinned, quarantined);
            });
        }
        for (auto& k : c.cons) o.consumer_calls.push_back(k.total_calls());
        o.pages_in_use = c.inner.pages_in_use();
        o.splits = c.inner.splits_in_place();
        o.zeroed = c.inner.zeroed_pages();
        return o;
    }

    void check_all(ctx& c, const char* what, page_index probe) {
        c.op = what;
        const memory_type& mem = c.mem;
        last_ = observe(c);
        c.ref.settle(last_.leaves);  // the last unpin on a leaf ends its draining at once
        const model::reference_model& ref = c.ref;
        {
            const auto guard = mem.lock_shared();
            const auto& map = mem.locked(guard).shareability_map();
            if (!map.coalesced()) diverge(c, "shareability map not coalesced");
            for (const auto& r : map.runs({0, mem.size()}))
                if (page_index p = ref.first_where(r.range, [&](const model::page_state& s) { return s.share != r.value; }); p != no_page)
                    diverge(c, "page %#" PRIx64 " is %s in the object", p, std::string(to_string(r.value)).c_str());
        }
        // Leaves: aligned, inside a modelled top folio, uniform, flags as modelled.
        const model::leaf_list& leaves = last_.leaves;
        struct flat_run {
            page_index begin, end;
            model::page_state s;
        };
        std::vector<flat_run> flat;
        ref.visit({0, mem.size()}, [&](page_index b, page_index e, const model::page_state& x) { flat.push_back({b, e, x}); });
        std::size_t j = 0;
        std::uint64_t leaf_pages = 0, poisoned = 0;
        page_index prev_end = 0;
        std::vector<std::pair<page_index, folio_order>> split_blocks;
        for (const model::leaf& l : leaves) {
            const page_range lr{l.first, l.end()};
            leaf_pages += lr.size();
            if (l.first < prev_end || l.first % pages_in(l.order) != 0 || lr.end > mem.size() ||
                (l.order != order_4k && l.order != order_2m && l.order != order_1g) || l.order > l.top_order)
                diverge(c, "leaf at %#" PRIx64 " of order %u is malformed", l.first, unsigned(l.order));
            prev_end = lr.end;
            const page_index top = align_down(l.first, l.top_order);
            auto t = ref.tops().find(top);
            if (t == ref.tops().end() || t->second != l.top_order)
                diverge(c, "leaf at %#" PRIx64 " belongs to a top folio (%#" PRIx64 ", order %u) the model did not place", l.first, top, unsigned(l.top_order));
            while (j < flat.size() && flat[j].end <= l.first) ++j;
            if (j == flat.size()) diverge(c, "leaf at %#" PRIx64 " lies past the model", l.first);
            const model::page_state s0 = flat[j].s;
            bool uniform = true;
            for (std::size_t k = j; k < flat.size() && flat[k].begin < lr.end; ++k) {
                const model::page_state& s = flat[k].s;
                uniform = uniform && s.allocated && s.poisoned == s0.poisoned && s.draining == s0.draining &&
                          (s0.poisoned || s.share == s0.share);
            }
            if (!uniform) diverge(c, "leaf [%#" PRIx64 ", %#" PRIx64 ") is not uniform in the model", lr.begin, lr.end);
            if (l.poisoned != s0.poisoned) diverge(c, "leaf at %#" PRIx64 " poisoned=%d, model %d", l.first, l.poisoned, s0.poisoned);
            poisoned += l.poisoned;
            const mappability m = s0.draining ? mappability::none : s0.share == shareability::shared ? mappability::all : mappability::guest;
            if (!l.poisoned && l.mappability != m)
                diverge(c, "leaf at %#" PRIx64 " is in mappability %s, model says %s", l.first, std::string(to_string(l.mappability)).c_str(), std::string(to_string(m)).c_str());
            for (folio_order o = next_higher(l.order); o != 0 && o <= l.top_order; o = next_higher(o))
                split_blocks.emplace_back(align_down(l.first, o), o);
        }
        std::sort(split_blocks.begin(), split_blocks.end());
        split_blocks.erase(std::unique(split_blocks.begin(), split_blocks.end()), split_blocks.end());
        const std::uint64_t allocated = ref.count_where({0, mem.size()}, [](const model::page_state& s) { return s.allocated; });
        if (leaf_pages != allocated) diverge(c, "leaves cover %" PRIu64 " pages, the model allocated %" PRIu64, leaf_pages, allocated);
        for (auto [b, o] : split_blocks) {
            const page_range blk{b, b + pages_in(o)};
            if (ref.first_where(blk, [](const model::page_state& s) {
                    return s.share != shareability::guest_only || s.live_pins() != 0 || s.poisoned || s.draining;
                }) == no_page)
                diverge(c, "split folio [%#" PRIx64 ", %#" PRIx64 ") is guest_only, unpinned and unpoisoned but not merged", blk.begin, blk.end);
        }
        // Pins, page for page (the object's runs are coalesced and nonzero).
        std::vector<std::tuple<page_index, page_index, std::uint32_t>> want_pins, got_pins;
        ref.visit({0, mem.size()}, [&](page_index b, page_index e, const model::page_state& s) {
            if (s.pins == 0) return;
            if (!want_pins.empty() && std::get<1>(want_pins.back()) == b && std::get<2>(want_pins.back()) == s.pins)
                std::get<1>(want_pins.back()) = e;
            else
                want_pins.emplace_back(b, e, s.pins);
        });
        mem.locked(mem.lock_shared()).folios().for_each_pin_run([&](page_index b, page_index e, std::uint32_t n) { got_pins.emplace_back(b, e, n); });
        if (want_pins != got_pins) diverge(c, "pins differ (%zu runs in the object, %zu in the model)", got_pins.size(), want_pins.size());
        // Bindings: order, ranges, sequences even and as predicted; consumer calls.
        std::size_t i = 0;
        if (mem.locked(mem.lock_shared()).notifiers().round_in_flight()) diverge(c, "an invalidation round is still in flight");
        mem.locked(mem.lock_shared()).notifiers().for_each_binding([&](const binding<consumer>& b) {
            if (i >= ref.bindings().size()) diverge(c, "object has more bindings than the model");
            const auto& m = ref.bindings()[i++];
            if (b.id() != m.id || b.pages() != m.pages || b.target_base() != m.base)
                diverge(c, "binding %zu differs (id %" PRIu64 " vs %" PRIu64 ")", i - 1, b.id(), m.id);
            if (b.sequence() % 2 != 0) diverge(c, "binding %" PRIu64 " has an odd sequence after the call", m.id);
            if (b.sequence() != m.sequence) diverge(c, "binding %" PRIu64 " sequence %" PRIu64 ", model %" PRIu64, m.id, b.sequence(), m.sequence);
        });
        if (i != ref.bindings().size()) diverge(c, "object has fewer bindings than the model");
        for (unsigned k = 0; k < consumers; ++k) {
            const auto& t = ref.tally(k);
            const auto& r = c.cons[k];
            if (r.prepares() != t.prepares || r.commits() != t.commits || r.aborts() != t.aborts || r.memory_failures() != t.memory_failures ||
                r.populates() != t.populates)
                diverge(c, "consumer %u got p%" PRIu64 " c%" PRIu64 " a%" PRIu64 " m%" PRIu64 " r%" PRIu64 ", model p%" PRIu64 " c%" PRIu64 " a%" PRIu64 " m%" PRIu64 " r%" PRIu64,
                        k, r.prepares(), r.commits(), r.aborts(), r.memory_failures(), r.populates(), t.prepares, t.commits, t.aborts, t.memory_failures, t.populates);
        }
        // Census and counters.
        const guest_memory_stats s = mem.stats();
        const auto& ev = ref.events();
        const std::uint64_t shared = ref.count_where({0, mem.size()}, [](const model::page_state& x) { return x.share == shareability::shared; });
        const std::uint64_t pinned = ref.count_where({0, mem.size()}, [](const model::page_state& x) { return x.pins != 0; });
        if (s.shared_pages != shared || s.allocated_pages != allocated || s.pinned_pages != pinned || s.poisoned_folios != poisoned ||
            s.bindings != ref.bindings().size() || s.split_folios != split_blocks.size() || s.split_folios > c.inner.splits_in_place() || s.conversions != ev.conversions ||
            s.noop_conversions != ev.noop || s.vetoes != ev.vetoes || s.busy_refusals != ev.busy_refusals)
            diverge(c, "stats differ: shared %" PRIu64 "/%" PRIu64 " allocated %" PRIu64 "/%" PRIu64 " pinned %" PRIu64 "/%" PRIu64
                       " poisoned %" PRIu64 "/%" PRIu64 " bindings %" PRIu64 "/%zu split %" PRIu64 "/%" PRIu64 " conversions %" PRIu64 "/%" PRIu64
                       " noop %" PRIu64 "/%" PRIu64 " vetoes %" PRIu64 "/%" PRIu64 " busy %" PRIu64 "/%" PRIu64 " (object/model)",
                    s.shared_pages, shared, s.allocated_pages, allocated, s.pinned_pages, pinned, s.poisoned_folios, poisoned,
                    s.bindings, ref.bindings().size(), s.split_folios, std::uint64_t(split_blocks.size()), s.conversions, ev.conversions,
                    s.noop_conversions, ev.noop, s.vetoes, ev.vetoes, s.busy_refusals, ev.busy_refusals);
        if (c.inner.reserved_splits() != 0) diverge(c, "%" PRIu64 " split reservations leaked", c.inner.reserved_splits());
        // Truncated folios kept for pins or poison, as modelled; every
        // quarantined page refuses populate.
        std::vector<std::tuple<page_index, folio_order, bool, bool>> want_detached;
        for (const model::detached_top& d : ref.by_end()) want_detached.emplace_back(d.first, d.order, d.holds_pins, !d.poisoned.empty());
        if (want_detached != last_.detached)
            diverge(c, "detached folios differ (%zu in the object, %zu in the model)", last_.detached.size(), want_detached.size());
        if (s.detached_pages != ref.detached_pages() || s.quarantined_pages != ref.quarantined_pages() || s.commit_quarantines != ev.commit_quarantines)
            diverge(c, "detached %" PRIu64 "/%" PRIu64 " quarantined pages %" PRIu64 "/%" PRIu64 " leaks quarantined %" PRIu64 "/%" PRIu64 " (object/model)",
                    s.detached_pages, ref.detached_pages(), s.quarantined_pages, ref.quarantined_pages(), s.commit_quarantines, ev.commit_quarantines);
        for (const model::detached_top& d : ref.detached())
            for (page_range q : d.poisoned)
                if (const auto guard = mem.lock_shared(); mem.locked(guard).folios().first_quarantined(d.range()) == no_page ||
                                                         mem.locked(guard).folios().allocated(q.begin))
                    diverge(c, "quarantined page %#" PRIx64 " is not kept out of the object", q.begin);
        if (c.inner.zeroed_pages() != ev.zeroed_pages)
            diverge(c, "allocator zeroed %" PRIu64 " pages, model %" PRIu64, c.inner.zeroed_pages(), ev.zeroed_pages);
        // Faults on a probe page, every accessor x shareability.
        if (probe != no_page && probe < mem.size())
            for (shareability w : {shareability::shared, shareability::guest_only})
                for (accessor a : {accessor::host, accessor::hypervisor, accessor::device, accessor::trusted_device})
                    for (unsigned v = 0; v < views; ++v)
                        if (c.ref.view_open(v)) check_fault(c, probe, w, a, v);
        if (operation_count() % 16 == 5)  // save, restore into a fresh object, compare, save again (snapshot_check.hpp)
            if (const char* bad = snapshot_round_trip(mem, fresh_object(mem))) diverge(c, "snapshot: %s", bad);
    }

    __attribute__((format(printf, 2, 3))) void note(const char* fmt, ...) {
        if (!trace()) return;
        std::va_list args;
        va_start(args, fmt);
        std::vsnprintf(args_, sizeof args_, fmt, args);
        va_end(args);
    }

    static bool trace() {
        static const bool on = std::getenv("GUESTMEM_FUZZ_TRACE") != nullptr;
        return on;
    }

    static folio_order next_higher(folio_order o) {
        return o == order_4k ? order_2m : o == order_2m ? order_1g : 0;
    }

    static const char* msg(const status& st) {
        static thread_local char buf[error::max_message + 1];
        if (st) return "ok";
        const auto m = st.error().message();
        std::snprintf(buf, sizeof buf, "%.*s", int(m.size()), m.data());
        return buf;
    }

    [[noreturn]] __attribute__((format(printf, 3, 4))) void diverge(ctx& c, const char* fmt, ...) {
        std::fprintf(stderr, "guestmem fuzz divergence after call %" PRIu64 " (%s), input offset %zu: ", operation_count(), c.op, pos_);
        std::va_list args;
        va_start(args, fmt);
        std::vfprintf(stderr, fmt, args);
        va_end(args);
        std::fprintf(stderr, "\n");
        std::abort();
    }

    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0, pos_ = 0;
    ctx* ctx_ = nullptr;
    observation last_;
    char args_[128] = {};
};


} // namespace guestmem::fuzz
