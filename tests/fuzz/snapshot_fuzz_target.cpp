// tests/fuzz/snapshot_fuzz_target.cpp — libFuzzer over the snapshot reader:
// every input is taken as a snapshot twice, as it is (most mutations then
// fail the checksum) and resealed (its checksum recomputed, so mutations
// reach every check behind it). A rejection must be a clear error: a
// message naming a byte offset inside the input. A snapshot check()
// accepts must restore into a fresh object (increments: apply to one at
// their base generation 0), and saving that object must give the input's
// bytes back: the format has one encoding per state (an older version's
// input restores, and its current-version save must be canonical). ASan and UBSan watch
// for crashes, leaks and undefined behaviour. A full snapshot check()
// refuses must be refused by restore() too, with the same error, the
// object left as it was (restore checks as it loads). Seeds: snapshot_corpus/,
// valid snapshots of random histories (make_snapshot_corpus.cpp).
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/snapshot/snapshot.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

namespace {

using namespace guestmem;
using mem_type = guest_memory<simulated_allocator, consumer, null_lock>;

[[noreturn]] void fail(const char* what, const error* e = nullptr) {
    std::fprintf(stderr, "guestmem_snapshot_fuzz: %s", what);
    if (e) std::fprintf(stderr, ": %.*s", int(e->message().size()), e->message().data());
    std::fprintf(stderr, "\n");
    std::abort();
}

/// restore() checks the run lengths as it loads them (one pass): on a full
/// snapshot check() refuses, it must refuse with check()'s very error and
/// leave the fresh object as it was.
void restore_refused(const std::vector<std::uint8_t>& b, const error& e) {
    auto h = snapshot::read_header(b);
    if (!h || h.value().kind != snapshot::kind::full || h.value().pages > (page_index{1} << 19)) return;
    simulated_allocator alloc;
    mem_type m(alloc, h.value().config());
    auto s = snapshot::restore(m, b);
    if (s) fail("restore accepted a snapshot check() refused", &e);
    if (s.error().code() != e.code() || s.error().message() != e.message()) fail("restore refused with another error than check()'s", &s.error());
    const auto st = m.stats();
    if (st.runs != 1 || st.shared_pages != 0 || st.allocated_pages != 0 || alloc.pages_in_use() != 0 || m.generation() != 0)
        fail("a refused restore changed the object", &s.error());
}

void exercise(const std::vector<std::uint8_t>& b) {
    auto r = snapshot::check(b);
    if (!r) {
        const error& e = r.error();
        if (e.message().empty()) fail("a rejection without a message");
        if (e.code() == errc::invalid_argument && snapshot::error_offset(e) > b.size()) fail("a rejection naming an offset past the input", &e);
        if (e.code() != errc::invalid_argument && e.code() != errc::not_supported) fail("an unexpected error code", &e);
        restore_refused(b, e);
        return;
    }
    const snapshot::header h = r.value();
    if (h.pages > (page_index{1} << 19)) return;  // keep each input fast: at most 2 GiB objects are built
    simulated_allocator alloc;
    mem_type m(alloc, h.config());
    if (h.kind == snapshot::kind::increment) {
        if (h.base_generation != 0) return;
        if (auto s = snapshot::apply_increment(m, b); !s) fail("an increment check() accepted did not apply", &s.error());
        if (m.generation() != h.generation) fail("the applied increment left another generation");
        return;
    }
    if (auto s = snapshot::restore(m, b); !s) fail("a snapshot check() accepted did not restore", &s.error());
    std::vector<std::uint8_t> again;
    auto s = snapshot::save(m, [&](const std::uint8_t* p, std::size_t n) {
        again.insert(again.end(), p, p + n);
        return true;
    });
    if (!s) fail("saving a restored object failed", &s.error());
    if (h.version == snapshot::format_version) {
        if (again != b) fail("saving a restored object gave other bytes (two encodings of one state)");
        return;
    }
    // An older version restores, and saves in the current one: that save
    // must check, and be its own canonical encoding.
    auto h2 = snapshot::check(std::span<const std::uint8_t>(again));
    if (!h2) fail("the current-version save of an older snapshot does not check", &h2.error());
    if (h2.value().version != snapshot::format_version) fail("a save wrote an older format version");
    mem_type m2(alloc, h2.value().config());
    if (auto r2 = snapshot::restore(m2, std::span<const std::uint8_t>(again)); !r2)
        fail("the current-version save of an older snapshot did not restore", &r2.error());
    std::vector<std::uint8_t> third;
    auto s2 = snapshot::save(m2, [&](const std::uint8_t* p, std::size_t n) {
        third.insert(third.end(), p, p + n);
        return true;
    });
    if (!s2) fail("saving the re-restored object failed", &s2.error());
    if (third != again) fail("saving a restored object gave other bytes (two encodings of one state)");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> b(data, data + size);
    exercise(b);
    if (size >= guestmem::snapshot::checksum_bytes) {
        guestmem::snapshot::reseal(b);
        exercise(b);
    }
    return 0;
}
