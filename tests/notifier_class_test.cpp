// Tests for the two-phase notifier set, part 3 (the same test_notifier
// binary): binding classes. An irrevocable binding (a consumer whose
// prepare cannot be undone cheaply, such as KVM's memory attributes)
// prepares after every ordinary binding, so an ordinary veto never reaches
// it, and its own refusal still rolls every ordinary binding back.
#ifndef DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#define DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#endif
#include <doctest/doctest.h>

#include <guestmem/notifier/binding.hpp>
#include <guestmem/notifier/notifier_set.hpp>
#include <guestmem/testing/recording_consumer.hpp>

#include "support/notifier_support.hpp"

#include <string>
#include <vector>

using namespace guestmem;
using namespace guestmem::test_support;

// ---- binding classes: an irrevocable binding prepares last ----------------

namespace {

/// Who did what, in journal order, as "prepare c0" strings.
std::vector<std::string> calls_of(const fleet<3>& f) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < f.journal.size(); ++i) {
        // Names from a table: building "c" + to_string(k) here trips g++ 12's -O3
        // -Wrestrict/-Wmaybe-uninitialized false positives inside std::string.
        static constexpr const char* names[3] = {"c0", "c1", "c2"};
        const char* who = "?";
        for (std::size_t k = 0; k < 3; ++k)
            if (f.journal[i].who == f.c[k].get()) who = names[k];
        out.push_back(std::string(to_string(f.journal[i].kind)) + " " + who);
    }
    return out;
}

/// c0 irrevocable over [0, 20) (bound first, so first in binding order),
/// c1 and c2 ordinary over [0, 20) and [10, 30).
void bind_irrevocable_first(set_t& set, fleet<3>& f) {
    REQUIRE(set.bind(f.slot[0], *f.c[0], R(0, 20), 0, binding_class::irrevocable));
    REQUIRE(set.bind(f.slot[1], *f.c[1], R(0, 20), 0));
    REQUIRE(set.bind(f.slot[2], *f.c[2], R(10, 30), 0));
}

} // namespace

TEST_CASE("an irrevocable binding prepares after every ordinary one and commits after them") {
    set_t set;
    fleet<3> f;
    bind_irrevocable_first(set, f);
    CHECK(f.slot[0].prepare_class() == binding_class::irrevocable);
    CHECK(f.slot[1].prepare_class() == binding_class::ordinary);
    REQUIRE(set.prepare_round(R(0, 30), invalidation_cause::to_guest_only));
    commit_report report;
    set.commit_round(report);
    CHECK(calls_of(f) == std::vector<std::string>{"prepare c1", "prepare c2", "prepare c0", "commit c1", "commit c2",
                                                  "commit c0"});
    for (auto& s : f.slot) CHECK(s.sequence() == 2);
}

TEST_CASE("an ordinary veto ends the round before the irrevocable binding is asked") {
    set_t set;
    fleet<3> f;
    bind_irrevocable_first(set, f);
    f.c[2]->veto_at(12);
    auto r = set.prepare_round(R(0, 30), invalidation_cause::to_shared);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::vetoed);
    CHECK(r.error().binding_id() == f.slot[2].id());
    CHECK(calls_of(f) == std::vector<std::string>{"prepare c1", "prepare c2", "abort c1"});
    CHECK(f.c[0]->total_calls() == 0);
    for (auto& s : f.slot) CHECK(s.sequence() == 2);
}

TEST_CASE("an irrevocable binding's refusal aborts every ordinary binding, newest first") {
    set_t set;
    fleet<3> f;
    bind_irrevocable_first(set, f);
    f.c[0]->veto_code(errc::busy);
    f.c[0]->veto_at(3);
    auto r = set.prepare_round(R(0, 30), invalidation_cause::to_guest_only);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::vetoed);
    CHECK(r.error().page() == 3);
    CHECK(r.error().binding_id() == f.slot[0].id());
    CHECK(std::string(r.error().message()).find("(busy)") != std::string::npos);
    CHECK(calls_of(f) == std::vector<std::string>{"prepare c1", "prepare c2", "prepare c0", "abort c2", "abort c1"});
    CHECK_FALSE(set.round_in_flight());
}

TEST_CASE("abort_round after a successful prepare aborts the irrevocable binding first") {
    set_t set;
    fleet<3> f;
    bind_irrevocable_first(set, f);
    REQUIRE(set.prepare_round(R(0, 30), invalidation_cause::to_shared));
    set.abort_round();
    CHECK(calls_of(f) == std::vector<std::string>{"prepare c1", "prepare c2", "prepare c0", "abort c0", "abort c2",
                                                  "abort c1"});
}

TEST_CASE("bind refuses an unknown binding class and binds nothing") {
    set_t set;
    recording_consumer a("a");
    binding<> s;
    auto r = set.bind(s, a, R(0, 4), 0, static_cast<binding_class>(7));
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::invalid_argument);
    CHECK(r.error().page() == 0);
    CHECK(r.error().message() == "binding of pages [0, 0x4) has an unknown binding class 7");
    CHECK_FALSE(s.is_bound());
    CHECK(to_string(binding_class::irrevocable) == "irrevocable");
    CHECK(to_string(static_cast<binding_class>(7)) == "invalid binding class");
}
