// examples/kvm_vmm/hotplug.hpp — the demo's second vCPU and its memslot
// hot-plug: while vCPU 0 runs the script, vCPU 1 asks again and again to
// share and unshare a page of a second guest memory object, reached through
// memslot 2, which another thread adds to and removes from the GPA map (and
// KVM) while both vCPUs run. Used by the real guest and the simulated run.
//
// What it shows and checks:
// - vCPU 1's requests travel through the same GPA map as vCPU 0's, each in
//   its own read section: while slot 2 is in the map they convert (0),
//   while it is not they are refused (EINVAL: a GPA in no slot);
// - remove_slot returns only when no vCPU can still route through slot 2:
//   a consumer bound over the second object sees no conversion round after
//   the hot-plug thread marked the slot absent (it does so only after
//   remove_slot returned);
// - pause_gate: the VMM's "stop the other vCPUs" for the mid-run snapshot,
//   which rebuilds the first object (where vCPU 1's code lives) in place.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string_view>
#include <thread>

#include <guestmem/kvm/exit_router.hpp>
#include <guestmem/kvm/gpa_map.hpp>
#include <guestmem/memory/guest_memory.hpp>

#include "guest_abi.hpp"

namespace kvm_demo {

using namespace guestmem;

/// What vCPU 1's requests got, counted as they come back (several threads).
struct converter_tally {
    std::atomic<std::uint64_t> requests{0}, converted{0}, refused_einval{0}, refused_eagain{0}, unexpected{0};
    std::atomic<std::uint64_t> while_vcpu0_ran{0};  // requests served while vCPU 0 was running
    std::atomic<bool> vcpu0_running{false};
    void count(std::uint64_t ret) {
        requests.fetch_add(1);
        if (ret == 0) converted.fetch_add(1);
        else if (ret == ret_einval) refused_einval.fetch_add(1);
        else if (ret == ret_eagain) refused_eagain.fetch_add(1);
        else unexpected.fetch_add(1);
        if (vcpu0_running.load()) while_vcpu0_ran.fetch_add(1);
    }
};

/// The router's log sink for vCPU 1: its EINVALs while slot 2 is out are
/// expected, so they are counted, not printed.
inline void count_router_line(void* n, std::string_view) { static_cast<std::atomic<std::uint64_t>*>(n)->fetch_add(1); }

/// A consumer over the second object: every conversion round must come
/// while slot 2 is in the map (`present` is cleared only after remove_slot
/// returned).
class hot_watch final : public consumer {
public:
    std::atomic<bool> present{false};
    std::atomic<std::uint64_t> rounds{0}, after_removal{0};
    status prepare(const invalidation&) override {
        rounds.fetch_add(1);
        if (!present.load()) after_removal.fetch_add(1);
        return ok();
    }
    void commit(const invalidation&, commit_report&) noexcept override {}
    void abort(const invalidation&) noexcept override {}
    void memory_failure(const invalidation&) noexcept override {}
    std::string_view name() const noexcept override { return "hot-plug watch"; }
};

/// Stops the other vCPUs between two of their exits (QEMU's
/// pause_all_vcpus, for one other vCPU): they park before KVM_RUN.
class pause_gate {
public:
    /// vCPU 1, before each KVM_RUN (or request): park while a pause is asked.
    void park_if_requested() {
        std::unique_lock g(m_);
        if (!pause_) return;
        parked_ = true;
        cv_.notify_all();
        cv_.wait(g, [&] { return !pause_; });
        parked_ = false;
    }
    /// vCPU 1 is done (halted): nothing left to pause.
    void finished() {
        std::lock_guard g(m_);
        done_ = true;
        cv_.notify_all();
    }
    /// Ask the others to park and wait (at most 5 s) until they have.
    bool pause_others() {
        std::unique_lock g(m_);
        pause_ = true;
        return cv_.wait_for(g, std::chrono::seconds(5), [&] { return parked_ || done_; });
    }
    void resume_others() {
        std::lock_guard g(m_);
        pause_ = false;
        cv_.notify_all();
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    bool pause_ = false, parked_ = false, done_ = false;
};

/// Wait (at most 5 s) until `counter` exceeds `from`.
inline bool wait_past(const std::atomic<std::uint64_t>& counter, std::uint64_t from) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (counter.load() <= from) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
}

/// The hot-plug thread: `rounds` times, plug slot 2 (KVM first: `plug`,
/// then the GPA map), wait for vCPU 1 to convert through it, unplug it (the
/// map first, then KVM: `unplug`), wait for vCPU 1 to be refused. Returns
/// the rounds completed; `why` says what stopped it early.
template <class Map, class Memory, class Plug, class Unplug>
int hotplug_rounds(Map& map, Memory& hot, hot_watch& watch, const converter_tally& t, int rounds, Plug&& plug,
                   Unplug&& unplug, const char*& why) {
    for (int r = 0; r < rounds; ++r) {
        if (!plug()) return why = "the KVM memslot could not be added", r;
        watch.present.store(true);
        if (!map.add_slot(hot_slot_id, hot_gpa, hot_pages, hot, 0)) return why = "add_slot refused slot 2", r;
        if (!wait_past(t.converted, t.converted.load() + 1)) return why = "vCPU 1 converted nothing through slot 2", r;
        if (!map.remove_slot(hot_slot_id)) return why = "remove_slot refused slot 2", r;
        watch.present.store(false);  // from here on no vCPU may reach the object through slot 2
        if (!unplug()) return why = "the KVM memslot could not be removed", r;
        if (!wait_past(t.refused_einval, t.refused_einval.load()))
            return why = "vCPU 1 was not refused while slot 2 was out", r;
    }
    return rounds;
}

} // namespace kvm_demo
