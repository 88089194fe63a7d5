// tests/reentry_test.cpp — a consumer callback (or unblock notifier) that
// calls back into the object whose lock its thread holds gets
// errc::would_deadlock instead of hanging (memory/reentry.hpp), from every
// callback site and every call that returns an error; the calls without an
// error channel answer without the lock; a callback of one object may still
// use another; and the unblock notifier is told of exactly the changes
// that can unblock a refused conversion. The object's lock in these tests
// notices a thread locking what it already holds (and then does not wait),
// so without the detection the tests fail instead of hanging.
#ifndef DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#define DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#endif
#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <sstream>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

using namespace guestmem;

namespace {

/// A shared mutex that records a thread locking it while it holds it
/// exclusively (a self-deadlock) and then returns instead of waiting.
class self_detecting_lock {
public:
    void lock() {
        if (owner_ == std::this_thread::get_id()) { self_deadlocks.fetch_add(1); return; }
        m_.lock();
        owner_ = std::this_thread::get_id();
    }
    void unlock() {
        owner_ = {};
        m_.unlock();
    }
    void lock_shared() {
        if (owner_ == std::this_thread::get_id()) { self_deadlocks.fetch_add(1); return; }
        m_.lock_shared();
    }
    void unlock_shared() {
        if (owner_ == std::this_thread::get_id()) return;
        m_.unlock_shared();
    }
    static inline std::atomic<int> self_deadlocks{0};

private:
    std::shared_mutex m_;
    std::thread::id owner_{};
};

using memory = guest_memory<simulated_allocator, consumer, self_detecting_lock>;

/// A consumer that runs `hook` from the callback named `at`.
struct reentering_consumer final : consumer {
    enum site { prepare_site, commit_site, abort_site, failure_site, none };
    site at = none;
    std::function<void()> hook;
    status veto = ok();
    status prepare(const invalidation&) override {
        if (at == prepare_site) hook();
        return veto;
    }
    void commit(const invalidation&, commit_report&) noexcept override {
        if (at == commit_site) hook();
    }
    void abort(const invalidation&) noexcept override {
        if (at == abort_site) hook();
    }
    void memory_failure(const invalidation&) noexcept override {
        if (at == failure_site) hook();
    }
};

struct object {
    simulated_allocator alloc{UINT64_MAX, order_4k};
    memory mem{alloc, {64, shareability::shared, order_4k}};
    object() {
        REQUIRE(mem.allocate({0, 64}));
        self_detecting_lock::self_deadlocks = 0;
    }
    ~object() { CHECK(self_detecting_lock::self_deadlocks == 0); }
};

template <class R>
void check_would_deadlock(const R& s, const char* call) {
    REQUIRE_FALSE(s);
    CHECK(s.error().code() == errc::would_deadlock);
    INFO(std::string(s.error().message()));
    CHECK(s.error().message().find(std::string("guest_memory::") + call) != std::string_view::npos);
}

} // namespace

TEST_CASE("every call that can fail, made from a consumer's prepare on the same object, is would_deadlock, not a hang") {
    object o;
    reentering_consumer c;
    memory::binding_type slot, other;
    REQUIRE(o.mem.bind(slot, c, {0, 64}, 0));
    std::vector<std::function<void()>> calls = {
        [&] { check_would_deadlock(o.mem.shareability_at(3), "shareability_at"); },
        [&] { check_would_deadlock(o.mem.mappability_at(3), "mappability_at"); },
        [&] { check_would_deadlock(o.mem.fault(3, shareability::shared, accessor::host), "fault"); },
        [&] { check_would_deadlock(o.mem.convert({0, 1}, shareability::shared), "convert"); },
        [&] { check_would_deadlock(o.mem.allocate({0, 1}), "allocate"); },
        [&] { check_would_deadlock(o.mem.punch_hole({0, 1}), "punch_hole"); },
        [&] { check_would_deadlock(o.mem.release_quarantine({0, 1}), "release_quarantine"); },
        [&] { check_would_deadlock(o.mem.pin({40, 41}, accessor::host), "pin"); },
        [&] { check_would_deadlock(o.mem.unpin({40, 41}), "unpin"); },
        [&] { check_would_deadlock(o.mem.memory_failure(3), "memory_failure"); },
        [&] { check_would_deadlock(o.mem.bind(other, c, {0, 1}, 0), "bind"); },
        [&] { check_would_deadlock(o.mem.unbind(binding_handle{slot.id()}), "unbind"); },
    };
    for (std::size_t i = 0; i < calls.size(); ++i) {
        CAPTURE(i);
        c.at = reentering_consumer::prepare_site;
        c.hook = calls[i];
        REQUIRE(o.mem.convert({0, 8}, shareability::guest_only));
        REQUIRE(o.mem.convert({0, 8}, shareability::shared));
    }
    // Outside the callback every call works again.
    c.at = reentering_consumer::none;
    CHECK(o.mem.shareability_at(3));
    CHECK(o.mem.stats().bindings == 1);
}

TEST_CASE("re-entry is caught from commit, abort, memory_failure and an unbind's release too") {
    object o;
    reentering_consumer c;
    memory::binding_type slot;
    REQUIRE(o.mem.bind(slot, c, {0, 64}, 0));
    int seen = 0;
    c.hook = [&] {
        ++seen;
        check_would_deadlock(o.mem.shareability_at(1), "shareability_at");
    };
    c.at = reentering_consumer::commit_site;
    REQUIRE(o.mem.convert({0, 4}, shareability::guest_only));
    CHECK(seen == 1);
    c.at = reentering_consumer::abort_site;
    memory::binding_type vslot;
    reentering_consumer vetoer;
    vetoer.veto = error::make(errc::busy, 2, "no");
    REQUIRE(o.mem.bind(vslot, vetoer, {0, 64}, 0));
    REQUIRE_FALSE(o.mem.convert({0, 4}, shareability::shared));
    CHECK(seen == 2);
    REQUIRE(o.mem.unbind(binding_handle{vslot.id()}));
    c.at = reentering_consumer::failure_site;
    REQUIRE(o.mem.memory_failure(20));
    CHECK(seen == 3);
    c.at = reentering_consumer::commit_site;  // punch_hole commits (truncate)
    REQUIRE(o.mem.punch_hole({30, 31}));
    CHECK(seen == 4);
    c.at = reentering_consumer::prepare_site;  // unbind's release prepares
    REQUIRE(o.mem.unbind(binding_handle{slot.id()}));
    CHECK(seen == 5);
}

TEST_CASE("pins, stats, generation and dump answer a callback without the lock, as the object was before the round") {
    object o;
    reentering_consumer c;
    memory::binding_type slot;
    REQUIRE(o.mem.bind(slot, c, {0, 64}, 0));
    REQUIRE(o.mem.pin({50, 51}, accessor::host));
    std::uint64_t shared_seen = 0, generation_seen = 0;
    std::uint32_t pins_seen = 0;
    c.at = reentering_consumer::prepare_site;
    c.hook = [&] {
        shared_seen = o.mem.stats().shared_pages;
        generation_seen = o.mem.generation();
        pins_seen = o.mem.pins(50);
        std::ostringstream os;
        o.mem.dump(os);
        CHECK(os.str().find("guest_memory: 64 pages") != std::string::npos);
    };
    const std::uint64_t generation = o.mem.generation();
    REQUIRE(o.mem.convert({0, 8}, shareability::guest_only));
    CHECK(shared_seen == 64);
    CHECK(generation_seen == generation);
    CHECK(pins_seen == 1);
}

TEST_CASE("a callback of one object may use another; a callback nested through it that reaches the first is caught") {
    object a;
    simulated_allocator alloc_b{UINT64_MAX, order_4k};
    memory b{alloc_b, {16, shareability::shared, order_4k}};
    REQUIRE(b.allocate({0, 16}));
    reentering_consumer on_a, on_b;
    memory::binding_type sa, sb;
    REQUIRE(a.mem.bind(sa, on_a, {0, 64}, 0));
    REQUIRE(b.bind(sb, on_b, {0, 16}, 0));
    bool b_converted = false, nested_caught = false;
    on_a.at = reentering_consumer::prepare_site;
    on_a.hook = [&] { b_converted = bool(b.convert({0, 2}, shareability::guest_only)); };
    on_b.at = reentering_consumer::prepare_site;
    on_b.hook = [&] {
        auto s = a.mem.shareability_at(0);
        nested_caught = !s && s.error().code() == errc::would_deadlock;
        check_would_deadlock(b.shareability_at(0), "shareability_at");
    };
    REQUIRE(a.mem.convert({0, 8}, shareability::guest_only));
    CHECK(b_converted);
    CHECK(nested_caught);
    CHECK(b.shareability_at(0).value() == shareability::guest_only);
}

namespace {
struct counting_notifier final : unblock_notifier {
    std::vector<page_range> seen;
    std::function<void()> hook;
    void unblocked(page_range pages) noexcept override {
        seen.push_back(pages);
        if (hook) hook();
    }
};
} // namespace

TEST_CASE("the unblock notifier hears of unpins, changing conversions, punch_hole, release_quarantine and unbinds only") {
    object o;
    counting_notifier n;
    o.mem.set_unblock_notifier(&n);
    REQUIRE(o.mem.pin({4, 6}, accessor::host));
    CHECK(n.seen.empty());
    REQUIRE_FALSE(o.mem.convert({0, 8}, shareability::guest_only));  // busy: nothing unblocked
    CHECK(n.seen.empty());
    REQUIRE(o.mem.unpin({4, 6}));
    REQUIRE(n.seen.size() == 1);
    CHECK(n.seen[0] == page_range{4, 6});
    REQUIRE(o.mem.convert({0, 8}, shareability::guest_only));
    REQUIRE(o.mem.convert({0, 8}, shareability::guest_only));  // a no-op: not told
    REQUIRE(n.seen.size() == 2);
    CHECK(n.seen[1] == page_range{0, 8});
    REQUIRE(o.mem.punch_hole({10, 12}));
    REQUIRE(o.mem.release_quarantine({10, 12}));
    reentering_consumer c;
    memory::binding_type slot;
    REQUIRE(o.mem.bind(slot, c, {0, 64}, 0));
    REQUIRE(o.mem.unbind(binding_handle{slot.id()}));
    REQUIRE(n.seen.size() == 5);
    CHECK(n.seen[4] == page_range{0, 64});
    // A notifier that calls into the object gets would_deadlock too.
    n.hook = [&] { check_would_deadlock(o.mem.shareability_at(0), "shareability_at"); };
    REQUIRE(o.mem.convert({0, 8}, shareability::shared));
    CHECK(n.seen.size() == 6);
    o.mem.set_unblock_notifier(nullptr);
    REQUIRE(o.mem.convert({0, 8}, shareability::guest_only));
    CHECK(n.seen.size() == 6);
}

TEST_CASE("with the default lock a fault from a callback is would_deadlock too (its try-lock path)") {
    simulated_allocator alloc{UINT64_MAX, order_4k};
    guest_memory<simulated_allocator> mem{alloc, {16, shareability::shared, order_4k}};
    REQUIRE(mem.allocate({0, 16}));
    reentering_consumer c;
    guest_memory<simulated_allocator>::binding_type slot;
    REQUIRE(mem.bind(slot, c, {0, 16}, 0));
    bool caught = false;
    c.at = reentering_consumer::prepare_site;
    c.hook = [&] {
        auto r = mem.fault(3, shareability::shared, accessor::host);
        caught = !r && r.error().code() == errc::would_deadlock;
    };
    REQUIRE(mem.convert({0, 4}, shareability::guest_only));
    CHECK(caught);
    c.at = reentering_consumer::none;
    CHECK(mem.fault(8, shareability::shared, accessor::host));
}

TEST_CASE("try_fault answers nothing from a callback of its own object, with the default lock and with another") {
    simulated_allocator alloc{UINT64_MAX, order_4k};
    guest_memory<simulated_allocator> mem{alloc, {16, shareability::shared, order_4k}};
    REQUIRE(mem.allocate({0, 16}));
    REQUIRE(mem.fault(0, shareability::shared, accessor::host));  // this thread holds a reader slot now
    reentering_consumer c;
    guest_memory<simulated_allocator>::binding_type slot;
    REQUIRE(mem.bind(slot, c, {0, 16}, 0));
    int answered = 0, asked = 0;
    c.at = reentering_consumer::prepare_site;
    c.hook = [&] {
        ++asked;
        answered += mem.try_fault(8, shareability::shared, accessor::host).has_value();
    };
    REQUIRE(mem.convert({0, 4}, shareability::guest_only));
    CHECK(asked == 1);
    CHECK(answered == 0);
    c.at = reentering_consumer::none;
    CHECK(mem.try_fault(8, shareability::shared, accessor::host).has_value());

    object o;  // a lock without the sharded try-lock: the re-entry check answers
    reentering_consumer d;
    memory::binding_type dslot;
    REQUIRE(o.mem.bind(dslot, d, {0, 64}, 0));
    bool none = false;
    d.at = reentering_consumer::prepare_site;
    d.hook = [&] { none = !o.mem.try_fault(8, shareability::shared, accessor::host).has_value(); };
    REQUIRE(o.mem.convert({0, 4}, shareability::guest_only));
    CHECK(none);
    d.at = reentering_consumer::none;
    CHECK(o.mem.try_fault(8, shareability::shared, accessor::host).has_value());
}
