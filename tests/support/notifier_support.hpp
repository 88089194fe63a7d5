// tests/support/notifier_support.hpp — what the test_notifier sources
// share: the set type, the R(b, e) range shorthand, a fleet of recording
// consumers with one binding slot each, and two checks of a round's journal.
#pragma once

#include <doctest/doctest.h>

#include <guestmem/notifier/binding.hpp>
#include <guestmem/notifier/consumer.hpp>
#include <guestmem/notifier/notifier_set.hpp>
#include <guestmem/testing/recording_consumer.hpp>

#include <array>
#include <cstddef>
#include <memory>

namespace guestmem::test_support {

using set_t = notifier_set<>;

constexpr page_range R(page_index b, page_index e) { return {b, e}; }

/// n recording consumers sharing one journal, each with one binding slot.
template <std::size_t N>
struct fleet {
    call_journal journal;
    std::array<std::unique_ptr<recording_consumer>, N> c;
    std::array<binding<>, N> slot;
    std::array<binding_handle, N> h{};
    fleet() {
        static constexpr const char* names[] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"};
        for (std::size_t i = 0; i < N; ++i) c[i] = std::make_unique<recording_consumer>(names[i], &journal);
    }
};

/// One committed round over bindings 0..2 of f: three prepares, then three
/// commits, each in binding order, vetoable, with `cause`.
inline void check_committed_in_order(fleet<3>& f, invalidation_cause cause) {
    REQUIRE(f.journal.size() == 6);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(f.journal[i].kind == call_kind::prepare);
        CHECK(f.journal[i].who == f.c[i].get());
        CHECK(f.journal[3 + i].kind == call_kind::commit);
        CHECK(f.journal[3 + i].who == f.c[i].get());
        CHECK(f.journal[3 + i].inv.vetoable);
        CHECK(f.journal[3 + i].inv.cause == cause);
    }
}

/// A round over page 15 (bindings 0 and 1 of the [10i, 10i + 20) layout)
/// aborted after its prepare: aborts newest first, binding 2 untouched, the
/// sequences of 0 and 1 ended.
inline void check_aborted_0_and_1(fleet<3>& f) {
    REQUIRE(f.journal.size() == 4);
    CHECK(f.journal[2].kind == call_kind::abort);
    CHECK(f.journal[2].who == f.c[1].get());
    CHECK(f.journal[3].kind == call_kind::abort);
    CHECK(f.journal[3].who == f.c[0].get());
    CHECK(f.c[2]->total_calls() == 0);
    CHECK(f.slot[0].sequence() == 2);
    CHECK(f.slot[2].sequence() == 0);
}

} // namespace guestmem::test_support
