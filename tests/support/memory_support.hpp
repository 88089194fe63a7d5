// tests/support/memory_support.hpp — what the test_guest_memory sources
// share: a consumer that logs every call and can veto (test_consumer), the
// object type over the simulated allocator, the 2M / 1G page counts, and a
// snapshot of everything a caller can observe, for before/after checks.
#pragma once

#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace guestmem::test_support {

/// A consumer that logs every call and can be told to veto.
struct test_consumer final : consumer {
    struct call {
        char what;  // 'p'repare, 'c'ommit, 'a'bort, 'm'emory failure
        invalidation inv;
    };
    std::string label;
    std::vector<call>* journal = nullptr;  // shared across consumers to check global order
    std::vector<call> calls;
    bool veto = false;
    page_index leak_page = no_page;  // report this page leaked during commit

    explicit test_consumer(std::string l, std::vector<call>* j = nullptr) : label(std::move(l)), journal(j) {}
    void log(char w, const invalidation& inv) {
        calls.push_back({w, inv});
        if (journal) journal->push_back({w, inv});
    }
    status prepare(const invalidation& inv) override {
        log('p', inv);
        if (veto) return error::make(errc::vetoed, inv.pages.begin, "%s cannot split its mapping", label.c_str());
        return ok();
    }
    void commit(const invalidation& inv, commit_report& report) noexcept override {
        log('c', inv);
        if (leak_page != no_page && inv.pages.contains(leak_page)) report.leaked(leak_page, inv.binding_id);
    }
    void abort(const invalidation& inv) noexcept override { log('a', inv); }
    void memory_failure(const invalidation& inv) noexcept override { log('m', inv); }
    std::string_view name() const noexcept override { return label; }
    std::size_t count(char w) const {
        std::size_t n = 0;
        for (auto& c : calls) n += c.what == w;
        return n;
    }
};

using sim_memory = guest_memory<simulated_allocator>;
inline constexpr page_index p2m = pages_in(order_2m);
inline constexpr page_index p1g = pages_in(order_1g);

/// Everything a caller can observe, for before/after comparisons.
template <class Mem>
struct snapshot {
    std::vector<std::pair<page_range, shareability>> runs;
    std::vector<std::tuple<page_index, folio_order, frame_number, mappability, bool>> folios;
    std::vector<std::uint32_t> pins;
    guest_memory_stats census;

    explicit snapshot(const Mem& m, page_range pin_window = {0, 0}) {
        {
            const auto guard = m.lock_shared();
            const auto parts = m.locked(guard);
            const auto view = parts.runs({0, m.size()});  // keep the result alive across the loop
            for (const auto& r : view.value()) runs.emplace_back(r.range, r.value);
            parts.folios().for_each_folio({0, m.size()}, [&](const folio_view& v) {
                folios.emplace_back(v.first, v.order, v.frame, v.mappability, v.poisoned);
            });
        }
        for (page_index p = pin_window.begin; p < pin_window.end; ++p) pins.push_back(m.pins(p));
        census = m.stats();
    }
    bool operator==(const snapshot& o) const {
        const auto& a = census;
        const auto& b = o.census;
        return runs == o.runs && folios == o.folios && pins == o.pins && a.shared_pages == b.shared_pages &&
               a.allocated_pages == b.allocated_pages && a.split_folios == b.split_folios &&
               a.pinned_pages == b.pinned_pages && a.poisoned_folios == b.poisoned_folios &&
               a.conversions == b.conversions && a.bindings == b.bindings;
    }
};

} // namespace guestmem::test_support
