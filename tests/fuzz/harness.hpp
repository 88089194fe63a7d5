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
// Views: the storage is reached through three views (view/memory_view.hpp):
// VM A's main view (never closed), VM A's helper and VM B's view, each with
// its access policy. The high nibble of an opcode byte picks the view of
// most calls (0 for the corpus's plain opcodes); a call through a closed
// view must be not_bound and change nothing; binds with the nibble >= 8 replay the shared runs
// to the new consumer (populate, vetoable); opcode 14 with the nibble >= 12
// closes or reopens the helper, or closes or re-adds VM B (its view and
// bindings go with it). The checks live in harness_base.hpp.
//
// Byte format: byte 0 picks the configuration (bit 0: 1573 pages with 2M
// folios, or 1G + 515 pages with 1G folios; bit 1: initially shared; bits
// 2-3 and 4-5: the helper's and VM B's access policy); then
// each call is an opcode byte followed by its operands (see step()). Reading
// past the end yields zeros; decoding stops at the end or after max_calls.
// A divergence prints what differed and aborts (libFuzzer reports a crash).
#pragma once

#include "harness_base.hpp"

namespace guestmem::fuzz {

class harness : harness_base {
public:
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
        view_binding<consumer> slot[consumers][slots];
        std::uint64_t stale[consumers][slots] = {};
        view_type view[views];  // after the consumers and slots: closed (releasing them) before they go
        auto first = view_type::open_storage(alloc, {.pages = pages, .initial = initial, .max_order = max_order}, {}, {},
                                             counting_node_allocator<std::byte>(&ctl));
        if (!first) std::abort();
        view[0] = std::move(first.value());
        const access_policy helper = policy_code(cfg >> 2), vm_b = policy_code(cfg >> 4);
        view[1] = std::move(view[0].open_view(view[0].owner().value(), helper).value());
        const owner_id b = view[0].add_owner().value();
        view[2] = std::move(view[0].open_view(b, vm_b).value());
        model::reference_model ref(pages, initial, max_order);
        ref.open_view(1, helper);
        ref.open_view(2, vm_b);
        ctx c{*view[0].storage(), ref, alloc, inner, ctl, cons, slot, stale, view, b, big};
        ctx_ = &c;
        check_all(c, "initial state", no_page);
        for (std::size_t n = 0; n < max_calls && pos_ < size_; ++n) step(c);
        ctx_ = nullptr;
    }


private:
    static access_policy policy_code(unsigned k) {
        if (k % 4 == 0) return {};
        if (k % 4 == 1) return {.mode = confidentiality::confidential, .trusted_devices = false};
        return {.mode = confidentiality::non_confidential};
    }

    /// Opcode 14, nibble >= 12: the views' and owners' lifecycle.
    model::expect lifecycle(ctx& c, const model::leaf_list& before_leaves, std::optional<status>& st) {
        const std::uint8_t kind = u8();
        const access_policy p = policy_code(kind >> 2);
        switch (kind % 4) {
        case 0:
            c.op = "close the helper view";
            st = c.view[1].close();
            return c.ref.close_view(1, before_leaves);
        case 1:
            c.op = "open a helper view";
            if (c.ref.view_open(1)) return {};
            if (auto r = c.view[0].open_view(c.view[0].owner().value(), p); r) c.view[1] = std::move(r.value());
            else diverge(c, "opening a helper view failed");
            c.ref.open_view(1, p);
            st = ok();
            return {};
        case 2: {
            c.op = "close VM B";
            st = c.view[0].close_owner(c.vm_b);
            return c.ref.view_open(2) ? c.ref.close_view(2, before_leaves) : model::expect::fail(errc::not_bound, no_page);
        }
        default:
            c.op = "add VM B";
            if (c.ref.view_open(2)) return {};
            auto o = c.view[0].add_owner();
            if (!o) diverge(c, "adding an owner failed");
            auto r = c.view[0].open_view(o.value(), p);
            if (!r) diverge(c, "opening VM B's view failed");
            c.vm_b = o.value();
            c.view[2] = std::move(r.value());
            c.ref.open_view(2, p);
            st = ok();
            return {};
        }
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
        const unsigned v = (op_byte >> 4) % views;  // the view most calls go through
        view_type& through = c.view[v];
        const bool closed = !c.ref.view_open(v);  // then the call must be not_bound and change nothing
        const model::expect not_bound = model::expect::fail(errc::not_bound, no_page);
        if (opcode == 14 && (op_byte >> 4) >= 12) {
            want = lifecycle(c, before_leaves, st);
        } else switch (opcode) {
        case 0: case 1: {
            c.op = "allocate";
            const page_range r = range(c);
            probe = r.begin;
            note("[%#" PRIx64 ", %#" PRIx64 ")", r.begin, r.end);
            st = through.allocate(r);
            if (!oom(c, *st, calls_before, nodes_before, before, dry([&](auto& m) { return m.allocate(r); })))
                want = closed ? not_bound : c.ref.allocate(r);
            else want = st_expect(*st);
            break;
        }
        case 2: {
            const page_range r = range(c);
            probe = r.begin;
            note("[%#" PRIx64 ", %#" PRIx64 ")", r.begin, r.end);
            if (op_byte >= 0xf0) {  // one in sixteen: free what truncation quarantined
                c.op = "release_quarantine";
                st = through.release_quarantine(r);
                want = closed ? not_bound : c.ref.release_quarantine(r);
            } else {
                c.op = "punch_hole";
                st = through.punch_hole(r);
                want = closed ? not_bound : c.ref.punch_hole(r, before_leaves);
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
            st = through.convert(r, to, {.content = static_cast<content_policy>(content), .defer_if_pinned = defer});
            const model::leaf_list after = (*st || st->error().code() == errc::out_of_memory) ? leaves_of(c.mem) : model::leaf_list{};
            if (!oom(c, *st, calls_before, nodes_before, before,
                     dry([&](auto& m) { return m.convert(r, to, content, defer, after); }), true))
                want = closed ? not_bound : c.ref.convert(r, to, content, defer, after);
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
            st = through.pin(r, who);
            if (!oom(c, *st, calls_before, nodes_before, before, dry([&](auto& m) { return m.pin(r, who, c.ref.policy(v)); })))
                want = closed ? not_bound : c.ref.pin(r, who, c.ref.policy(v));
            else want = st_expect(*st);
            break;
        }
        case 7: {
            c.op = "unpin";
            page_range r = range(c);
            if (u8() & 1) {  // aim at a pinned page
                c.mem.locked(c.mem.lock_shared()).folios().for_each_pin_run([&](page_index b, page_index e, std::uint32_t) { r = {b, std::min(e, b + 1 + (e - b) / 2)}; });
            }
            probe = r.begin;
            note("[%#" PRIx64 ", %#" PRIx64 ")", r.begin, r.end);
            st = through.unpin(r);
            if (!oom(c, *st, calls_before, nodes_before, before, dry([&](auto& m) { return m.unpin(r); })))
                want = closed ? not_bound : c.ref.unpin(r);
            else want = st_expect(*st);
            break;
        }
        case 8: case 9: {
            c.op = "fault";
            const page_index p = u8() == 255 ? UINT64_MAX - u8() : point(c);
            const std::uint8_t f = u8();
            const shareability wanted = f >= 252 ? static_cast<shareability>(2 + f % 4) : static_cast<shareability>(f & 1);
            const accessor who = (f >= 244 && f < 252) ? static_cast<accessor>(4 + f % 8) : static_cast<accessor>((f >> 1) % 4);
            check_fault(c, p, wanted, who, v);
            probe = p < c.mem.size() ? p : no_page;
            break;
        }
        case 10: {
            c.op = "memory_failure";
            const page_index p = u8() == 255 ? UINT64_MAX : point(c);
            probe = p < c.mem.size() ? p : no_page;
            note("%#" PRIx64, p);
            st = through.memory_failure(p);
            want = closed ? not_bound : c.ref.memory_failure(p, before_leaves);
            break;
        }
        case 11: {
            c.op = "bind";
            const unsigned k = u8() % consumers, s = u8() % slots;
            const page_range r = range(c);
            const std::uint8_t b = u8();
            const std::uint64_t base = b == 255 ? UINT64_MAX - u8() : std::uint64_t(b % 8) << 20;
            note("consumer %u slot %u [%#" PRIx64 ", %#" PRIx64 ") base %#" PRIx64, k, s, r.begin, r.end, base);
            const bool replay = (op_byte >> 4) >= 8;
            want = closed ? not_bound : c.ref.bind(k, s, r, base);
            auto h = through.bind(c.slot[k][s], c.cons[k], r, base, binding_class::ordinary,
                                  replay ? replay_mode::populated : replay_mode::none);
            if (want.ok && replay && !closed) want = c.ref.replay(k, r);
            if (h) {
                c.ref.bound(k, s, r, base, h.value().binding.id, c.slot[k][s].get().sequence(), v);  // a reused slot keeps counting
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
            const view_binding_handle handle =
                c.slot[k][s].is_bound() && c.slot[k][s].handle().binding.id == id ? c.slot[k][s].handle()
                                                                                  : view_binding_handle{{id}, through.id()};
            st = through.unbind(handle);
            want = closed ? not_bound : c.ref.unbind(id, before_leaves, v);
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
        if (opcode < 14 || (opcode == 14 && (op_byte >> 4) >= 12)) {
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

};

/// Run one input through a fresh harness.
inline void run_one(const std::uint8_t* data, std::size_t size) {
    harness h;
    h.run(data, size);
}

} // namespace guestmem::fuzz
