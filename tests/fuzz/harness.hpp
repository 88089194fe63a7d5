// tests/fuzz/harness.hpp — the differential harness shared by the libFuzzer
// target (fuzz_target.cpp) and the deterministic replay in
// reliability_test.cpp. It decodes bytes into a sequence of API calls on a
// small guest memory object (allocate, punch_hole, release_quarantine,
// convert both ways with and without defer_if_pinned and content zero, pin,
// unpin, faults for every accessor x shareability, memory_failure, bind,
// unbind, consumer vetoes, pages consumers report they could not drop at
// every commit site, injected allocator and node-allocator failures), runs each against the
// object and the reference model (tests/model/reference_model.hpp), and
// after every call checks the object against the model and its invariants:
// results (code and first page) agree; a failed call changed nothing
// (snapshot); no host or untrusted device ever gets a guest_only page, and a
// folio a fault hands out is uniform in shareability; consumers got exactly
// the predicted prepare/commit/abort/memory_failure calls; every binding's
// sequence is even (begin/end balanced) and as predicted; the map is
// coalesced; a split folio whose range is guest_only, unpinned, unpoisoned
// and not draining has been merged; pins agree page for page; the folios
// truncated while pinned or poisoned (detached, quarantined) are as
// modelled, and no quarantined page is ever populated or faulted again.
//
// Byte format: byte 0 picks the configuration (bit 0: 1573 pages with 2M
// folios, or 1G + 515 pages with 1G folios; bit 1: initially shared); then
// each call is an opcode byte followed by its operands (see step()). Reading
// past the end yields zeros; decoding stops at the end or after max_calls.
// A divergence prints what differed and aborts (libFuzzer reports a crash).
#pragma once

#include <guestmem/testing/fault_injecting_allocator.hpp>
#include <guestmem/testing/simulated_allocator.hpp>
#include <guestmem/memory/guest_memory.hpp>
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
    mem.folios().for_each_folio({0, mem.size()}, [&](const folio_view& v) {
        out.push_back({v.first, v.order, v.top_order, v.frame, v.mappability, v.poisoned});
    });
    return out;
}

class harness {
public:
    static constexpr unsigned consumers = 3, slots = 2;
    static constexpr std::size_t max_calls = 400;

    void run(const std::uint8_t* data, std::size_t size) {
        data_ = data;
        size_ = size;
        pos_ = 0;
        const std::uint8_t cfg = u8();
        const bool big = cfg & 1;
        const shareability initial = (cfg & 2) ? shareability::shared : shareability::guest_only;
        const page_index pages = big ? pages_in(order_1g) + 515 : 3 * 512 + 37;
        const folio_order max_order = big ? order_1g : order_2m;
        simulated_allocator inner;
        injecting_allocator alloc(inner);
        node_control ctl;
        recording_consumer cons[consumers] = {recording_consumer("c0"), recording_consumer("c1"), recording_consumer("c2")};
        binding<consumer> slot[consumers][slots];
        std::uint64_t stale[consumers][slots] = {};
        memory_type mem(alloc, {.pages = pages, .initial = initial, .max_order = max_order},
                        counting_node_allocator<std::byte>(&ctl));
        model::reference_model ref(pages, initial, max_order);
        ctx c{mem, ref, alloc, inner, ctl, cons, slot, stale, big};
        ctx_ = &c;
        check_all(c, "initial state", no_page);
        for (std::size_t n = 0; n < max_calls && pos_ < size_; ++n) step(c);
        ctx_ = nullptr;
    }

private:
    struct ctx {
        memory_type& mem;
        model::reference_model& ref;
        injecting_allocator& alloc;
        simulated_allocator& inner;
        node_control& ctl;
        recording_consumer (&cons)[consumers];
        binding<consumer> (&slot)[consumers][slots];
        std::uint64_t (&stale)[consumers][slots];
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

    // ---- one call ---------------------------------------------------------
    void step(ctx& c) {
        const std::uint8_t op_byte = u8();
        const std::uint8_t opcode = std::uint8_t(op_byte % 16);
        observation& before = last_;  // the state as the last full check saw it (unchanged since)
        const model::leaf_list& before_leaves = before.leaves;
        const auto calls_before = c.alloc.injected();
        const auto nodes_before = c.ctl.failures;
        if (c.arm_alloc) c.alloc.fail_at(c.arm_alloc);
        if (c.arm_nodes) c.ctl.fail_at = c.ctl.calls + c.arm_nodes;
        std::optional<status> st;        // mutating calls
        model::expect want;
        page_index probe = no_page;
        auto dry = [&](auto&& f) { return [&c, f] { model::reference_model copy = c.ref; return f(copy); }; };
        switch (opcode) {
        case 0: case 1: {
            c.op = "allocate";
            const page_range r = range(c);
            probe = r.begin;
            note("[%#" PRIx64 ", %#" PRIx64 ")", r.begin, r.end);
            st = c.mem.allocate(r);
            if (!oom(c, *st, calls_before, nodes_before, before, dry([&](auto& m) { return m.allocate(r); })))
                want = c.ref.allocate(r);
            else want = st_expect(*st);
            break;
        }
        case 2: {
            const page_range r = range(c);
            probe = r.begin;
            note("[%#" PRIx64 ", %#" PRIx64 ")", r.begin, r.end);
            if (op_byte >= 0xf0) {  // one in sixteen: free what truncation quarantined
                c.op = "release_quarantine";
                st = c.mem.release_quarantine(r);
                want = c.ref.release_quarantine(r);
            } else {
                c.op = "punch_hole";
                st = c.mem.punch_hole(r);
                want = c.ref.punch_hole(r, before_leaves);
            }
            break;
        }
        case 3: case 4: case 5: {
            c.op = "convert";
            const page_range r = range(c);
            const std::uint8_t f = u8();
            shareability to = (f & 1) ? shareability::shared : shareability::guest_only;
            unsigned content = (f >> 2) & 1;
            if (f >= 248) (f & 2) ? (void)(to = static_cast<shareability>(2 + f % 5)) : (void)(content = 2 + f % 3);
            const bool defer = f & 2;
            probe = r.begin;
            note("[%#" PRIx64 ", %#" PRIx64 ") to %u content %u defer %d", r.begin, r.end, unsigned(to), content, defer);
            st = c.mem.convert(r, to, {.content = static_cast<content_policy>(content), .defer_if_pinned = defer});
            const model::leaf_list after = (*st || st->error().code() == errc::out_of_memory) ? leaves_of(c.mem) : model::leaf_list{};
            if (!oom(c, *st, calls_before, nodes_before, before,
                     dry([&](auto& m) { return m.convert(r, to, content, defer, after); }), true))
                want = c.ref.convert(r, to, content, defer, after);
            else want = st_expect(*st);
            break;
        }
        case 6: {
            c.op = "pin";
            const page_range r = range(c);
            const std::uint8_t f = u8();
            const accessor who = f >= 250 ? static_cast<accessor>(4 + f % 3) : static_cast<accessor>(f % 4);
            probe = r.begin;
            note("[%#" PRIx64 ", %#" PRIx64 ") by %u", r.begin, r.end, unsigned(who));
            st = c.mem.pin(r, who);
            if (!oom(c, *st, calls_before, nodes_before, before, dry([&](auto& m) { return m.pin(r, who); })))
                want = c.ref.pin(r, who);
            else want = st_expect(*st);
            break;
        }
        case 7: {
            c.op = "unpin";
            page_range r = range(c);
            if (u8() & 1) {  // aim at a pinned page
                c.mem.folios().for_each_pin_run([&](page_index b, page_index e, std::uint32_t) { r = {b, std::min(e, b + 1 + (e - b) / 2)}; });
            }
            probe = r.begin;
            note("[%#" PRIx64 ", %#" PRIx64 ")", r.begin, r.end);
            st = c.mem.unpin(r);
            if (!oom(c, *st, calls_before, nodes_before, before, dry([&](auto& m) { return m.unpin(r); })))
                want = c.ref.unpin(r);
            else want = st_expect(*st);
            break;
        }
        case 8: case 9: {
            c.op = "fault";
            const page_index p = u8() == 255 ? UINT64_MAX - u8() : point(c);
            const std::uint8_t f = u8();
            const shareability wanted = f >= 252 ? static_cast<shareability>(2 + f % 4) : static_cast<shareability>(f & 1);
            const accessor who = (f >= 244 && f < 252) ? static_cast<accessor>(4 + f % 8) : static_cast<accessor>((f >> 1) % 4);
            check_fault(c, p, wanted, who);
            probe = p < c.mem.size() ? p : no_page;
            break;
        }
        case 10: {
            c.op = "memory_failure";
            const page_index p = u8() == 255 ? UINT64_MAX : point(c);
            probe = p < c.mem.size() ? p : no_page;
            note("%#" PRIx64, p);
            st = c.mem.memory_failure(p);
            want = c.ref.memory_failure(p, before_leaves);
            break;
        }
        case 11: {
            c.op = "bind";
            const unsigned k = u8() % consumers, s = u8() % slots;
            const page_range r = range(c);
            const std::uint8_t b = u8();
            const std::uint64_t base = b == 255 ? UINT64_MAX - u8() : std::uint64_t(b % 8) << 20;
            note("consumer %u slot %u [%#" PRIx64 ", %#" PRIx64 ") base %#" PRIx64, k, s, r.begin, r.end, base);
            want = c.ref.bind(k, s, r, base);
            auto h = c.mem.bind(c.slot[k][s], c.cons[k], r, base);
            if (h) {
                c.ref.bound(k, s, r, base, h.value().id, c.slot[k][s].sequence());  // a reused slot keeps counting
                st = ok();
            } else {
                st = status(h.error());
            }
            probe = r.begin < c.mem.size() ? r.begin : no_page;
            break;
        }
        case 12: {
            c.op = "unbind";
            const unsigned k = u8() % consumers, s = u8() % slots;
            const std::uint8_t how = u8() % 4;
            std::uint64_t id = c.ref.id_of(k, s).value_or(c.stale[k][s]);
            if (how == 1) id = c.stale[k][s];
            if (how == 2) id = how * 0x9e3779b97f4a7c15ull;
            if (auto cur = c.ref.id_of(k, s); cur && *cur == id) c.stale[k][s] = id;
            st = c.mem.unbind(binding_handle{id});
            want = c.ref.unbind(id, before_leaves);
            break;
        }
        case 13: {
            const std::uint8_t kb = u8();
            const unsigned k = kb % consumers;
            const page_index p = (u8() & 1) ? point(c) : no_page;
            note("consumer %u at %#" PRIx64, k, p);
            if (kb & 0x80) {  // the page the consumer cannot drop at its next commits
                c.op = "leak";
                c.cons[k].leak_at(p);
                c.ref.set_leak(k, p);
            } else {
                c.op = "veto";
                c.cons[k].veto_at(p);
                c.ref.set_veto(k, p);
            }
            break;
        }
        case 14: c.op = "arm allocator failure"; c.arm_alloc = 1 + u8() % 4; break;
        default: c.op = "arm node failure"; c.arm_nodes = 1 + u8() % 8; break;
        }
        if (opcode < 14) {
            c.alloc.fail_at(0);
            c.ctl.fail_at = 0;
            c.arm_alloc = c.arm_nodes = 0;
        }
        ++operation_count();
        if (trace()) std::fprintf(stderr, "[%zu] %s %s -> %s\n", pos_, c.op, args_, st ? msg(*st) : "-");
        args_[0] = 0;
        if (st) {
            compare(c, *st, want);
            if (!*st) {
                // A veto is seen by consumers (prepare, abort, a sequence
                // bump): the model checks those; everything else is unchanged.
                observation now = observe(c);
                observation was = before;
                if (st->error().code() == errc::vetoed) {
                    for (auto* o : {&was, &now}) {
                        o->consumer_calls.clear();
                        for (auto& b : o->bindings) std::get<4>(b) = 0;
                    }
                }
                if (!(was == now))
                    diverge(c, "a failed call (%s) changed the object's observable state:%s%s%s%s%s%s", msg(*st),
                            was.runs == now.runs ? "" : " runs", was.leaves == now.leaves ? "" : " folios",
                            was.pins == now.pins ? "" : " pins", was.bindings == now.bindings ? "" : " bindings",
                            was.consumer_calls == now.consumer_calls ? "" : " consumer calls",
                            was.pages_in_use == now.pages_in_use && was.splits == now.splits && was.zeroed == now.zeroed ? "" : " allocator");
            }
        }
        // Full check after anything that changed state (a success, or a veto
        // seen by consumers), and every 16th call regardless. A failed call
        // was compared with the last full check's snapshot above; faults
        // change nothing and are checked against the model one by one.
        if ((st && (*st || st->error().code() == errc::vetoed)) || operation_count() % 16 == 0)
            check_all(c, c.op, probe);
        else if (probe != no_page && opcode == 8)
            for (accessor a : {accessor::host, accessor::device}) check_fault(c, probe, shareability::shared, a);
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

    void check_fault(ctx& c, page_index p, shareability wanted, accessor who) {
        auto r = c.mem.fault(p, wanted, who);
        const model::expect want = c.ref.fault(p, wanted, who);
        compare(c, r ? status(ok()) : status(r.error()), want);
        if (!r) return;
        const fault_result& f = r.value();
        const page_range folio{f.folio_first, f.folio_first + pages_in(f.order)};
        if (!folio.contains(p) || f.frame != f.folio_frame + (p - f.folio_first) || folio.end > c.mem.size())
            diverge(c, "fault of page %#" PRIx64 " returned an inconsistent folio", p);
        if (!may_access(who, shareability::guest_only) &&
            c.ref.first_where(folio, [](const model::page_state& s) { return s.share != shareability::shared; }) != no_page)
            diverge(c, "an untrusted accessor got a folio [%#" PRIx64 ", %#" PRIx64 ") holding guest_only pages", folio.begin, folio.end);
        if (c.ref.first_where(folio, [&](const model::page_state& s) { return s.share != wanted || s.poisoned || s.draining; }) != no_page)
            diverge(c, "fault handed out a folio that is not uniformly mappable");
    }

    // ---- state checks -----------------------------------------------------
    observation observe(ctx& c) {
        observation o;
        for (const auto& r : c.mem.shareability_map().runs({0, c.mem.size()})) o.runs.emplace_back(r.range.begin, r.range.end, r.value);
        o.leaves = leaves_of(c.mem);
        c.mem.folios().for_each_pin_run([&](page_index b, page_index e, std::uint32_t n) { o.pins.emplace_back(b, e, n); });
        c.mem.notifiers().for_each_binding([&](const binding<consumer>& b) {
            o.bindings.emplace_back(b.id(), b.pages().begin, b.pages().end, b.target_base(), b.sequence());
        });
        c.mem.folios().for_each_detached([&](page_index first, folio_order order, frame_number, bool pinned, bool quarantined) {
            o.detached.emplace_back(first, order, pinned, quarantined);
        });
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
        if (!mem.shareability_map().coalesced()) diverge(c, "shareability map not coalesced");
        for (const auto& r : mem.shareability_map().runs({0, mem.size()}))
            if (page_index p = ref.first_where(r.range, [&](const model::page_state& s) { return s.share != r.value; }); p != no_page)
                diverge(c, "page %#" PRIx64 " is %s in the object", p, std::string(to_string(r.value)).c_str());
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
        mem.folios().for_each_pin_run([&](page_index b, page_index e, std::uint32_t n) { got_pins.emplace_back(b, e, n); });
        if (want_pins != got_pins) diverge(c, "pins differ (%zu runs in the object, %zu in the model)", got_pins.size(), want_pins.size());
        // Bindings: order, ranges, sequences even and as predicted; consumer calls.
        std::size_t i = 0;
        if (mem.notifiers().round_in_flight()) diverge(c, "an invalidation round is still in flight");
        mem.notifiers().for_each_binding([&](const binding<consumer>& b) {
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
            if (r.prepares() != t.prepares || r.commits() != t.commits || r.aborts() != t.aborts || r.memory_failures() != t.memory_failures)
                diverge(c, "consumer %u got p%" PRIu64 " c%" PRIu64 " a%" PRIu64 " m%" PRIu64 ", model p%" PRIu64 " c%" PRIu64 " a%" PRIu64 " m%" PRIu64,
                        k, r.prepares(), r.commits(), r.aborts(), r.memory_failures(), t.prepares, t.commits, t.aborts, t.memory_failures);
        }
        // Census and counters.
        const guest_memory_stats s = mem.stats();
        const auto& ev = ref.events();
        const std::uint64_t shared = ref.count_where({0, mem.size()}, [](const model::page_state& x) { return x.share == shareability::shared; });
        const std::uint64_t pinned = ref.count_where({0, mem.size()}, [](const model::page_state& x) { return x.pins != 0; });
        if (s.shared_pages != shared || s.allocated_pages != allocated || s.pinned_pages != pinned || s.poisoned_folios != poisoned ||
            s.bindings != ref.bindings().size() || s.split_folios != split_blocks.size() || s.split_folios > c.inner.splits_in_place() || s.conversions != ev.conversions ||
            s.noop_conversions != ev.noop || s.vetoes != ev.vetoes || s.busy != ev.busy)
            diverge(c, "stats differ: shared %" PRIu64 "/%" PRIu64 " allocated %" PRIu64 "/%" PRIu64 " pinned %" PRIu64 "/%" PRIu64
                       " poisoned %" PRIu64 "/%" PRIu64 " bindings %" PRIu64 "/%zu split %" PRIu64 "/%" PRIu64 " conversions %" PRIu64 "/%" PRIu64
                       " noop %" PRIu64 "/%" PRIu64 " vetoes %" PRIu64 "/%" PRIu64 " busy %" PRIu64 "/%" PRIu64 " (object/model)",
                    s.shared_pages, shared, s.allocated_pages, allocated, s.pinned_pages, pinned, s.poisoned_folios, poisoned,
                    s.bindings, ref.bindings().size(), s.split_folios, std::uint64_t(split_blocks.size()), s.conversions, ev.conversions,
                    s.noop_conversions, ev.noop, s.vetoes, ev.vetoes, s.busy, ev.busy);
        if (c.inner.reserved_splits() != 0) diverge(c, "%" PRIu64 " split reservations leaked", c.inner.reserved_splits());
        // Truncated folios kept for pins or poison, as modelled; every
        // quarantined page refuses populate.
        std::vector<std::tuple<page_index, folio_order, bool, bool>> want_detached;
        for (const model::detached_top& d : ref.by_end()) want_detached.emplace_back(d.first, d.order, d.holds_pins, !d.poisoned.empty());
        if (want_detached != last_.detached)
            diverge(c, "detached folios differ (%zu in the object, %zu in the model)", last_.detached.size(), want_detached.size());
        if (s.detached_pages != ref.detached_pages() || s.quarantined_pages != ref.quarantined_pages() || s.quarantined != ev.quarantined)
            diverge(c, "detached %" PRIu64 "/%" PRIu64 " quarantined pages %" PRIu64 "/%" PRIu64 " leaks quarantined %" PRIu64 "/%" PRIu64 " (object/model)",
                    s.detached_pages, ref.detached_pages(), s.quarantined_pages, ref.quarantined_pages(), s.quarantined, ev.quarantined);
        for (const model::detached_top& d : ref.detached())
            for (page_range q : d.poisoned)
                if (mem.folios().first_quarantined(d.range()) == no_page || mem.folios().allocated(q.begin))
                    diverge(c, "quarantined page %#" PRIx64 " is not kept out of the object", q.begin);
        if (c.inner.zeroed_pages() != ev.zeroed_pages)
            diverge(c, "allocator zeroed %" PRIu64 " pages, model %" PRIu64, c.inner.zeroed_pages(), ev.zeroed_pages);
        // Faults on a probe page, every accessor x shareability.
        if (probe != no_page && probe < mem.size())
            for (shareability w : {shareability::shared, shareability::guest_only})
                for (accessor a : {accessor::host, accessor::hypervisor, accessor::device, accessor::trusted_device})
                    check_fault(c, probe, w, a);
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

/// Run one input through a fresh harness.
inline void run_one(const std::uint8_t* data, std::size_t size) {
    harness h;
    h.run(data, size);
}

} // namespace guestmem::fuzz
