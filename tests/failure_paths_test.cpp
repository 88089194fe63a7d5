// tests/failure_paths_test.cpp — the failure paths a VMM's security rests
// on, each on the simulated allocator and on real memory (memfd): a page a
// consumer could not drop is never handed out again (after punch_hole, on
// the fd backends too, where a frame is a file offset), never merged into
// a huge folio, never freed by the punch or the unbind that reported it;
// memory failure reaches every binding of the folio; truncation cannot fail
// and never frees a pinned folio under its pin holder; punch_hole's bounds
// are guest_memfd's. Then a leak at every consumer position of every commit
// site, against the same run without the leak.
#include <doctest/doctest.h>

#include <cstring>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include <guestmem/testing/simulated_allocator.hpp>
#include <guestmem/linux/memfd_allocator.hpp>
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/testing/recording_consumer.hpp>

using namespace guestmem;

namespace {

constexpr std::byte secret{0xab};

/// What each backend can show: the simulated allocator hands out unique
/// fake frames; memfd's frames are file offsets with real contents.
template <class Alloc>
struct backend;

template <>
struct backend<simulated_allocator> {
    static constexpr bool real = false;
    static constexpr folio_order huge = order_1g;  // the largest folio a test builds
    simulated_allocator alloc;
    static std::optional<backend> make(page_index) { return backend{simulated_allocator()}; }
    void write(page_index, std::byte) {}
    [[nodiscard]] bool holds(page_index, std::byte) const { return true; }
};

template <>
struct backend<memfd_allocator> {
    static constexpr bool real = true;
    static constexpr folio_order huge = order_2m;
    memfd_allocator alloc;
    static std::optional<backend> make(page_index pages) {
        auto a = memfd_allocator::create(pages, order_2m);
        REQUIRE(a);
        return backend{std::move(a).value()};
    }
    void write(page_index p, std::byte v) { std::memset(alloc.data() + p * page_size, int(v), page_size); }
    /// Through the allocator's own mapping: what the file holds at p.
    [[nodiscard]] bool holds(page_index p, std::byte v) const {
        const std::byte* b = alloc.data() + p * page_size;
        for (std::size_t i = 0; i < page_size; ++i)
            if (b[i] != v) return false;
        return true;
    }
};

template <class Alloc>
using memory = guest_memory<Alloc, consumer, null_lock>;

/// The code and page a call failed with; errc{} and no_page when it
/// succeeded (so a test that expected a failure fails instead of aborting).
template <class R>
errc code_of(const R& r) {
    return r ? errc{} : r.error().code();
}
template <class R>
page_index page_of(const R& r) {
    return r ? no_page : r.error().page();
}

/// Every fault kind on p is refused; none hands out a frame.
template <class Mem>
bool unreachable(const Mem& mem, page_index p) {
    for (shareability w : {shareability::shared, shareability::guest_only})
        for (accessor a : {accessor::host, accessor::hypervisor, accessor::device, accessor::trusted_device})
            if (mem.fault(p, w, a)) return false;
    return true;
}

} // namespace

TEST_CASE_TEMPLATE("a page a consumer could not drop is never handed out again after punch_hole, until release_quarantine",
                   Alloc, simulated_allocator, memfd_allocator) {
    auto be = backend<Alloc>::make(2048);
    memory<Alloc> mem(be->alloc, {.pages = 2048, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 2048}));
    recording_consumer c("iommu");
    binding<consumer> slot;
    REQUIRE(mem.bind(slot, c, {0, 2048}, 0));
    be->write(17, secret);
    c.leak_at(17);
    REQUIRE(mem.convert({16, 18}, shareability::guest_only));
    CHECK(mem.stats().commit_quarantines == 1);
    CHECK(code_of(mem.fault(17, shareability::guest_only, accessor::hypervisor)) == errc::poisoned);
    c.clear_reports();

    REQUIRE(mem.punch_hole({0, 512}));
    CHECK(mem.stats().quarantined_pages == 1);  // one 4K piece, not its 2M folio
    CHECK(mem.stats().allocated_pages == 2048 - 512);
    // The page never comes back: allocate refuses it, naming it, and changes nothing.
    auto again = mem.allocate({0, 512});
    REQUIRE_FALSE(again);
    CHECK(again.error().code() == errc::poisoned);
    CHECK(again.error().page() == 17);
    CHECK(mem.stats().allocated_pages == 2048 - 512);
    REQUIRE(mem.allocate({0, 17}));
    REQUIRE(mem.allocate({18, 512}));
    CHECK(unreachable(mem, 17));
    for (page_index p : {page_index{0}, page_index{16}, page_index{18}, page_index{511}}) {
        auto f = mem.fault(p, p == 16 ? shareability::guest_only : shareability::shared, accessor::hypervisor);
        REQUIRE(f);
        if constexpr (backend<Alloc>::real) CHECK(be->holds(p, std::byte{0}));  // fresh memory
    }
    if constexpr (backend<Alloc>::real) CHECK(be->holds(17, secret));  // kept, and no owner reaches it
    const std::byte theirs{0x3c};
    be->write(18, theirs);  // the new owner's data next to it

    // The way out, once the consumer really dropped the page.
    CHECK(mem.release_quarantine({0, 2048}));
    CHECK(mem.stats().quarantined_pages == 0);
    if constexpr (backend<Alloc>::real) CHECK(be->holds(18, theirs));  // only the quarantined page went
    REQUIRE(mem.allocate({17, 18}));
    CHECK(mem.fault(17, shareability::guest_only, accessor::hypervisor));
    if constexpr (backend<Alloc>::real) CHECK(be->holds(17, std::byte{0}));  // its old contents are gone
    if constexpr (!backend<Alloc>::real) CHECK(be->alloc.pages_in_use() == 2048);
    CHECK(mem.locked(mem.lock_shared()).folios().check_counters());
}

TEST_CASE_TEMPLATE("a page leaked while a split huge folio goes back to guest_only costs one 4K piece and is never merged",
                   Alloc, simulated_allocator, memfd_allocator) {
    constexpr page_index huge = pages_in(backend<Alloc>::huge);
    auto be = backend<Alloc>::make(huge);
    memory<Alloc> mem(be->alloc, {.pages = huge, .initial = shareability::guest_only, .max_order = backend<Alloc>::huge});
    REQUIRE(mem.allocate({0, huge}));
    REQUIRE(mem.convert({5, 6}, shareability::shared));
    recording_consumer c("stage2");
    binding<consumer> slot;
    REQUIRE(mem.bind(slot, c, {0, huge}, 0));
    c.leak_at(5);
    REQUIRE(mem.convert({5, 6}, shareability::guest_only));
    auto leaf = mem.locked(mem.lock_shared()).folios().lookup(5);
    REQUIRE(leaf);
    CHECK(leaf->poisoned);
    CHECK(leaf->order == order_4k);
    CHECK(mem.stats().poisoned_folios == 1);
    CHECK(mem.stats().split_folios >= 1);  // the folio holding it stays split
    // Its neighbours are untouched: guest-mappable, not poisoned.
    for (page_index p : {page_index{4}, page_index{6}, huge - 1}) {
        auto f = mem.fault(p, shareability::guest_only, accessor::hypervisor);
        REQUIRE(f);
        CHECK(f.value().mappability == mappability::guest);
    }
    // Merges never absorb it later either.
    REQUIRE(mem.convert({0, huge}, shareability::guest_only));
    CHECK(mem.locked(mem.lock_shared()).folios().lookup(5)->order == order_4k);
    CHECK(mem.locked(mem.lock_shared()).folios().lookup(5)->poisoned);
}

TEST_CASE_TEMPLATE("a page a consumer reports during punch_hole is kept, not freed", Alloc, simulated_allocator,
                   memfd_allocator) {
    auto be = backend<Alloc>::make(2048);
    memory<Alloc> mem(be->alloc, {.pages = 2048, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 2048}));
    REQUIRE(mem.convert({600, 601}, shareability::guest_only));  // [512, 1024) splits to 4K pieces
    recording_consumer c("vhost");
    binding<consumer> slot;
    REQUIRE(mem.bind(slot, c, {0, 2048}, 0x100));
    be->write(700, secret);
    c.leak_at(700);
    REQUIRE(mem.punch_hole({512, 1024}));
    CHECK(mem.stats().commit_quarantines == 1);
    CHECK(mem.stats().quarantined_pages == 1);
    if constexpr (!backend<Alloc>::real) CHECK(be->alloc.pages_in_use() == 2048 - 511);
    if constexpr (backend<Alloc>::real) CHECK(be->holds(700, secret));  // not punched out of the file
    auto again = mem.allocate({512, 1024});
    REQUIRE_FALSE(again);
    CHECK(again.error().page() == 700);
    CHECK(unreachable(mem, 700));
    // An unsplit folio costs 4K too: the leaked page's piece is split out and kept, the rest goes.
    c.leak_at(1500);
    REQUIRE(mem.punch_hole({1024, 1536}));
    CHECK(mem.stats().quarantined_pages == 1 + 1);
    CHECK(page_of(mem.allocate({1024, 1536})) == 1500);
}

TEST_CASE_TEMPLATE("a page an unbind's release could not drop is quarantined", Alloc, simulated_allocator,
                   memfd_allocator) {
    auto be = backend<Alloc>::make(1024);
    memory<Alloc> mem(be->alloc, {.pages = 1024, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 1024}));
    recording_consumer c("vfio");
    binding<consumer> slot;
    auto h = mem.bind(slot, c, {512, 1024}, 0);
    REQUIRE(h);
    c.leak_at(33);  // outside its binding: never reported
    REQUIRE(mem.unbind(h.value()));
    CHECK(mem.stats().commit_quarantines == 0);
    h = mem.bind(slot, c, {512, 1024}, 0);
    REQUIRE(h);
    c.leak_at(600);
    REQUIRE(mem.unbind(h.value()));
    CHECK(mem.stats().commit_quarantines == 1);
    CHECK(code_of(mem.fault(600, shareability::shared, accessor::host)) == errc::poisoned);
    CHECK(mem.fault(0, shareability::shared, accessor::host));
}

TEST_CASE_TEMPLATE("memory failure reaches a binding over any page of the folio, with the pages' shareability", Alloc,
                   simulated_allocator, memfd_allocator) {
    auto be = backend<Alloc>::make(1024);
    memory<Alloc> mem(be->alloc, {.pages = 1024, .initial = shareability::guest_only, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 1024}));
    recording_consumer near("near"), far("far"), other("other");
    binding<consumer> s1, s2, s3;
    REQUIRE(mem.bind(s1, near, {0, 16}, 0x1000));
    REQUIRE(mem.bind(s2, far, {500, 600}, 0x2000));   // another page of the same 2M folio, and beyond it
    REQUIRE(mem.bind(s3, other, {512, 1024}, 0x3000));  // the next folio only
    REQUIRE(mem.memory_failure(3));
    REQUIRE(near.memory_failures() == 1);
    CHECK(near[0].inv.pages == page_range{0, 16});
    CHECK(near[0].inv.share == shareability::guest_only);
    CHECK(near[0].inv.order == order_2m);
    REQUIRE(far.memory_failures() == 1);
    CHECK(far[0].inv.pages == page_range{500, 512});  // clipped to the folio
    CHECK(far[0].inv.target == page_range{0x2000, 0x2000 + 12});
    CHECK(other.total_calls() == 0);
    REQUIRE(mem.memory_failure(7));  // already poisoned: nobody told twice
    CHECK(near.memory_failures() + far.memory_failures() == 2);
    REQUIRE(mem.convert({550, 551}, shareability::shared));
    REQUIRE(mem.memory_failure(550));  // a shared 4K piece
    CHECK(far[far.size() - 1].kind == call_kind::memory_failure);
    CHECK(far[far.size() - 1].inv.share == shareability::shared);
    CHECK(far[far.size() - 1].inv.pages == page_range{550, 551});
    CHECK(far[far.size() - 1].inv.order == order_4k);
    CHECK(other.memory_failures() == 1);
}

TEST_CASE_TEMPLATE("punch_hole of a pinned folio cannot fail: a hole at once, fresh memory may fill it, freed on its last unpin",
                   Alloc, simulated_allocator, memfd_allocator) {
    auto be = backend<Alloc>::make(2048);
    memory<Alloc> mem(be->alloc, {.pages = 2048, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 2048}));
    REQUIRE(mem.pin({10, 11}, accessor::device));
    const auto old_frame = mem.fault(10, shareability::shared, accessor::host).value().frame;
    REQUIRE(mem.punch_hole({0, 512}));
    CHECK(mem.stats().allocated_pages == 1536);
    CHECK(mem.stats().detached_pages == 512);
    CHECK(code_of(mem.fault(10, shareability::shared, accessor::host)) == errc::not_allocated);
    CHECK(code_of(mem.pin({10, 11}, accessor::device)) == errc::not_allocated);
    if constexpr (!backend<Alloc>::real) CHECK(be->alloc.pages_in_use() == 2048);  // held for the pin holder

    // Fresh memory fills the range; it cannot be pinned while the old folio is.
    REQUIRE(mem.allocate({0, 512}));
    const auto fresh = mem.fault(10, shareability::shared, accessor::host);
    REQUIRE(fresh);
    if constexpr (!backend<Alloc>::real) CHECK(fresh.value().frame != old_frame);
    (void)old_frame;
    auto busy = mem.pin({8, 12}, accessor::device);
    REQUIRE_FALSE(busy);
    CHECK(busy.error().code() == errc::busy);
    CHECK(busy.error().page() == 8);
    be->write(10, secret);  // the new folio's data

    // The last unpin frees the old folio, and only it.
    REQUIRE(mem.unpin({10, 11}));
    CHECK(mem.stats().detached_pages == 0);
    if constexpr (!backend<Alloc>::real) CHECK(be->alloc.pages_in_use() == 2048);
    if constexpr (backend<Alloc>::real) CHECK(be->holds(10, secret));
    CHECK(code_of(mem.unpin({10, 11})) == errc::invalid_argument);  // no pins left
    REQUIRE(mem.pin({8, 12}, accessor::device));
    REQUIRE(mem.unpin({8, 12}));
    CHECK(mem.locked(mem.lock_shared()).folios().check_counters());
}

TEST_CASE("a memfd reused after its object kept a quarantined page hands out fresh memory there") {
    auto be = backend<memfd_allocator>::make(1024);
    {
        memory<memfd_allocator> mem(be->alloc, {.pages = 1024, .initial = shareability::shared, .max_order = order_2m});
        REQUIRE(mem.allocate({0, 1024}));
        recording_consumer c("c");
        binding<consumer> slot;
        REQUIRE(mem.bind(slot, c, {0, 1024}, 0));
        be->write(77, secret);
        c.leak_at(77);
        REQUIRE(mem.punch_hole({0, 512}));
        CHECK(mem.stats().quarantined_pages == 1);  // the leaked 4K piece, split out of its 2M folio
        CHECK(be->holds(77, secret));
    }  // the object goes; its quarantined page stays in the file
    CHECK(be->holds(77, secret));
    memory<memfd_allocator> next(be->alloc, {.pages = 1024, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(next.allocate({0, 1024}));
    CHECK(be->holds(77, std::byte{0}));  // the new owner never reads the old bytes
}

TEST_CASE("destroying the object with pins or poison outstanding never frees that memory") {
    simulated_allocator alloc;
    {
        memory<simulated_allocator> mem(alloc, {.pages = 2048, .initial = shareability::shared, .max_order = order_2m});
        REQUIRE(mem.allocate({0, 2048}));
        REQUIRE(mem.pin({3, 4}, accessor::device));  // a live pinned folio
        REQUIRE(mem.pin({600, 601}, accessor::device));
        REQUIRE(mem.punch_hole({512, 1024}));        // a detached pinned folio
        REQUIRE(mem.memory_failure(1500));           // a poisoned folio
    }
    CHECK(alloc.pages_in_use() == 3 * 512);
}

TEST_CASE("punch_hole's bounds are guest_memfd's: at or past the end succeeds, empty and past 2^63 bytes do not") {
    simulated_allocator alloc;
    memory<simulated_allocator> mem(alloc, {.pages = 1024, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 1024}));
    recording_consumer c("c");
    binding<consumer> slot;
    REQUIRE(mem.bind(slot, c, {0, 1024}, 0));
    CHECK(mem.punch_hole({1024, 1025}));                         // at the end
    CHECK(mem.punch_hole({2048, 4096}));                         // after the end
    CHECK(mem.punch_hole({(page_index{1} << 51) - 1, page_index{1} << 51}));  // the last file page
    CHECK(c.total_calls() == 0);                                 // nothing there: nobody told
    CHECK(mem.stats().allocated_pages == 1024);
    CHECK(mem.punch_hole({1000, 1100}));  // across the end: the part inside is punched
    CHECK(c.commits() == 1);
    CHECK(c[c.size() - 1].inv.pages == page_range{1000, 1024});
    struct bad {
        page_range r;
        const char* why;
    };
    for (bad b : {bad{{5, 5}, "is empty"}, bad{{9, 3}, "is inverted"},
                  bad{{1, (page_index{1} << 51) + 1}, "ends past the largest file offset"},
                  bad{{UINT64_MAX - 1, UINT64_MAX}, "ends past the largest file offset"}}) {
        auto s = mem.punch_hole(b.r);
        REQUIRE_FALSE(s);
        CHECK(s.error().code() == errc::invalid_range);
        CHECK(s.error().page() == b.r.begin);
        CHECK(std::string(s.error().message()).find(b.why) != std::string::npos);
    }
}

TEST_CASE("release_quarantine: busy while the quarantined folio is pinned, nothing freed") {
    simulated_allocator alloc;
    memory<simulated_allocator> mem(alloc, {.pages = 1024, .initial = shareability::shared, .max_order = order_2m});
    REQUIRE(mem.allocate({0, 1024}));
    REQUIRE(mem.pin({40, 41}, accessor::device));
    REQUIRE(mem.memory_failure(40));
    REQUIRE(mem.punch_hole({0, 512}));  // pinned and poisoned: detached and quarantined
    CHECK(mem.stats().detached_pages == 512);
    CHECK(mem.stats().quarantined_pages == 512);
    auto busy = mem.release_quarantine({0, 1});
    REQUIRE_FALSE(busy);
    CHECK(busy.error().code() == errc::busy);
    CHECK(busy.error().page() == 40);
    CHECK(mem.stats().quarantined_pages == 512);
    REQUIRE(mem.unpin({40, 41}));  // the last unpin: still quarantined for its poison
    CHECK(mem.stats().detached_pages == 0);
    CHECK(mem.stats().quarantined_pages == 512);
    CHECK(code_of(mem.allocate({0, 512})) == errc::poisoned);
    REQUIRE(mem.release_quarantine({0, 1}));
    REQUIRE(mem.allocate({0, 512}));
    CHECK(mem.release_quarantine({0, 1024}));  // nothing quarantined: not an error
    CHECK(code_of(mem.release_quarantine({5, 3})) == errc::invalid_range);
    CHECK(alloc.pages_in_use() == 1024);
}

// ---- exhaustive: a leak at every consumer position of every commit site ----

namespace {

enum class site { to_shared, to_guest_only, punch_hole, unbind };

/// Everything observable, with the leaked page's leaf set apart.
struct picture {
    std::vector<std::tuple<page_index, page_index, shareability>> runs;
    std::vector<std::tuple<page_index, folio_order, frame_number, mappability, bool>> leaves;
    std::vector<std::uint64_t> calls;
    std::uint64_t allocated = 0, pinned = 0, bindings = 0;
    friend bool operator==(const picture&, const picture&) = default;
};

template <class Mem>
picture picture_of(const Mem& mem, const recording_consumer (&c)[3], page_index leaked) {
    picture p;
    {
        const auto guard = mem.lock_shared();
        const auto parts = mem.locked(guard);
        for (const auto& r : parts.shareability_map().runs({0, mem.size()})) p.runs.emplace_back(r.range.begin, r.range.end, r.value);
        parts.folios().for_each_folio({0, mem.size()}, [&](const folio_view& v) {
            // The leaked page's leaf is poisoned in the leaking run: compare its shape only.
            const bool own = v.range().contains(leaked);
            p.leaves.emplace_back(v.first, v.order, v.frame, own ? mappability::none : v.mappability, own ? false : v.poisoned);
        });
    }
    for (const auto& k : c) p.calls.push_back(k.total_calls());
    const auto s = mem.stats();
    p.allocated = s.allocated_pages;
    p.pinned = s.pinned_pages;
    p.bindings = s.bindings;
    return p;
}

/// Run `where` with the consumer at `position` (the one whose binding an
/// unbind releases) reporting page `leak` when `leaking`; without, record
/// the baseline.
template <class Alloc>
void run_site(site where, int position, bool leaking, page_index leak, std::optional<picture>& baseline) {
    constexpr page_index n = 2048;
    auto be = backend<Alloc>::make(n);
    memory<Alloc> mem(be->alloc, {.pages = n, .initial = shareability::guest_only, .max_order = order_2m});
    REQUIRE(mem.allocate({0, n}));
    REQUIRE(mem.convert({300, 301}, shareability::shared));  // [0, 512) split into 4K pieces
    REQUIRE(mem.convert({100, 101}, shareability::shared));  // and kept split by a page outside the sites
    recording_consumer c[3] = {recording_consumer("c0"), recording_consumer("c1"), recording_consumer("c2")};
    binding<consumer> slots[3];
    const page_range bound[3] = {{0, n}, {0, 1024}, {256, n}};
    binding_handle handles[3];
    for (int k = 0; k < 3; ++k) {
        auto h = mem.bind(slots[k], c[k], bound[k], 0x10000 * (k + 1));
        REQUIRE(h);
        handles[k] = h.value();
    }
    if (leaking) c[position].leak_at(leak);
    switch (where) {
    case site::to_shared: REQUIRE(mem.convert({296, 320}, shareability::shared)); break;
    case site::to_guest_only: REQUIRE(mem.convert({296, 320}, shareability::guest_only)); break;
    case site::punch_hole: REQUIRE(mem.punch_hole({256, 400})); break;  // partial: the folio is kept
    case site::unbind: REQUIRE(mem.unbind(handles[position])); break;
    }
    const picture now = picture_of(mem, c, leak);
    if (!leaking) {
        CHECK(mem.stats().commit_quarantines == 0);
        baseline = now;
        return;
    }
    // Nothing else changed: the same runs, folios, calls, as without the leak.
    REQUIRE(baseline);
    CHECK(now == *baseline);
    // The leaked page is quarantined as its own 4K piece ...
    CHECK(mem.stats().commit_quarantines == 1);
    auto leaf = mem.locked(mem.lock_shared()).folios().lookup(leak);
    REQUIRE(leaf);
    CHECK(leaf->poisoned);
    CHECK(leaf->order == order_4k);
    CHECK(mem.stats().poisoned_folios == 1);
    CHECK(unreachable(mem, leak));
    // ... and stays out of reach after truncation: no fault and no
    // allocation ever returns its frame.
    const frame_number kept = leaf->frame;
    REQUIRE(mem.punch_hole({0, n}));
    CHECK(page_of(mem.allocate({0, n})) == leak);
    REQUIRE(mem.allocate({0, leak}));
    REQUIRE(mem.allocate({leak + 1, n}));
    CHECK(unreachable(mem, leak));
    for (page_index p = 0; p < n; ++p)
        if (auto f = mem.fault(p, mem.shareability_at(p).value(), accessor::hypervisor)) CHECK(f.value().frame != kept);
}

} // namespace

TEST_CASE_TEMPLATE("a leak at every consumer position of every commit site quarantines that page and changes nothing else",
                   Alloc, simulated_allocator, memfd_allocator) {
    for (site where : {site::to_shared, site::to_guest_only, site::punch_hole, site::unbind}) {
        for (int k = 0; k < 3; ++k) {
            CAPTURE(int(where));
            CAPTURE(k);
            std::optional<picture> baseline;
            run_site<Alloc>(where, k, false, 310, baseline);
            run_site<Alloc>(where, k, true, 310, baseline);
        }
    }
}

TEST_CASE("memfd_allocator: free and zero of a span outside the file are refused, never wrapped past the mapping") {
    auto made = memfd_allocator::create(16, order_4k);
    REQUIRE(made);
    memfd_allocator a = std::move(made).value();
    std::memset(a.data() + 15 * page_size, 0x5a, page_size);
    a.free(0, 16, order_4k);                        // one past the end
    a.free(0, page_index{1} << 52, order_4k);       // its byte offset would wrap
    CHECK(a.counters().failed_frees == 2);
    CHECK(a.counters().freed_folios == 0);
    a.zero(0, 15, 2);                               // crosses the end: left alone
    a.zero(0, UINT64_MAX - 1, 4);
    CHECK(a.data()[15 * page_size] == std::byte{0x5a});
    a.zero(0, 15, 1);                               // inside: cleared
    CHECK(a.data()[15 * page_size] == std::byte{0});
}
