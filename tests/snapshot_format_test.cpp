// The snapshot format's version and checksum (docs/SNAPSHOT.md §Checksum):
// version 2 ends with a CRC-32C that a plain bitwise CRC (the reference
// model below, as any other language would write it) recomputes; a
// version 1 snapshot saved before the change (its 8-byte checksum of its
// own) still restores; a damaged one of either version is rejected at its
// checksum's offset; versions past 2 are not_supported.
#include <doctest/doctest.h>

#include "support/snapshot_support.hpp"

#include <random>
#include <string>
#include <vector>

using namespace guestmem;
using namespace guestmem::test_support;
namespace snap = guestmem::snapshot;

namespace {

using sim_mem = guest_memory<simulated_allocator, consumer, null_lock>;

/// CRC-32C bit by bit: reflected polynomial 0x82F63B78, initial value and
/// final xor 0xFFFFFFFF.
std::uint32_t crc32c_reference(const std::uint8_t* p, std::size_t n) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) {
        crc ^= p[i];
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

std::uint64_t load_le(const std::uint8_t* p, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t(p[i]) << (8 * i);
    return v;
}

/// tests/fuzz/snapshot_corpus/full_12 as saved by format version 1: the
/// object of seed 12 below after its random history.
const std::uint8_t v1_full_12[] = {
    0x47, 0x4d, 0x53, 0x4e, 0x01, 0x01, 0x83, 0x84, 0x10, 0x12, 0x1d, 0xbd, 0x01, 0x01, 0x35, 0xc7,
    0x18, 0x1b, 0xa9, 0x57, 0x07, 0xd5, 0x11, 0x01, 0xa9, 0x0c, 0x0c, 0x82, 0x0b, 0x01, 0xf6, 0xc2,
    0x01, 0x06, 0xd7, 0x49, 0x80, 0x20, 0xa4, 0x12, 0x25, 0x98, 0x87, 0x01, 0x07, 0xcd, 0x9d, 0x01,
    0x2d, 0xfe, 0x33, 0x01, 0xce, 0x22, 0x81, 0x04, 0x89, 0x20, 0x80, 0x20, 0x8b, 0x65, 0x27, 0xe8,
    0x29, 0x3b, 0xa4, 0x6c, 0x23, 0xb3, 0x54, 0x07, 0x86, 0x39, 0x24, 0xbb, 0xc9, 0x01, 0x1c, 0x8d,
    0xbe, 0x01, 0x1a, 0xc7, 0x14, 0x2f, 0xad, 0x13, 0x34, 0xc8, 0x56, 0x19, 0x86, 0x86, 0x01, 0x80,
    0x04, 0xcc, 0x11, 0x81, 0x04, 0xaf, 0x12, 0x35, 0xea, 0x27, 0x14, 0x99, 0x0d, 0x00, 0x02, 0xb6,
    0x46, 0x00, 0x29, 0xb6, 0xd3, 0x01, 0x00, 0x17, 0xde, 0x9f, 0x02, 0x00, 0x21, 0xc0, 0xaf, 0x01,
    0x00, 0x80, 0x04, 0x95, 0x07, 0x00, 0x02, 0xd1, 0xc0, 0x02, 0x00, 0x17, 0x8d, 0x94, 0x01, 0x00,
    0x81, 0x04, 0xae, 0x4a, 0x00, 0x80, 0x04, 0xe5, 0x6d, 0x00, 0x32, 0xbd, 0xc4, 0x01, 0x00, 0xeb,
    0x03, 0x00, 0x09, 0x01, 0x00, 0x00, 0x15, 0xb0, 0x3b, 0x00, 0x2f, 0x86, 0x0d, 0x00, 0x86, 0x03,
    0x00, 0x09, 0x07, 0x00, 0x00, 0x7a, 0xc5, 0x6c, 0x00, 0x07, 0x80, 0x14, 0x00, 0x40, 0xcd, 0xb0,
    0x01, 0x00, 0x2d, 0x01, 0x80, 0xbc, 0x0d, 0x09, 0x00, 0x00, 0xfa, 0xa4, 0x3a, 0xd9, 0xf7, 0x6c,
    0x1d, 0xf1,
};

/// The object full_12 was saved from (tests/fuzz/make_snapshot_corpus.cpp, seed 12).
void make_seed_12(sim_mem& m) {
    std::mt19937_64 rng(12);
    random_history(m, rng, 10 + 12 * 6);
}
constexpr guest_memory_config seed_12_config{
    .pages = pages_in(order_1g) + 515, .initial = shareability::guest_only, .max_order = order_1g};

} // namespace

TEST_CASE("the checksum is CRC-32C: the standard check value and a bitwise CRC agree with it") {
    const std::string check = "123456789";
    const auto* p = reinterpret_cast<const std::uint8_t*>(check.data());
    CHECK(snap::checksum(p, check.size()) == 0xE3069283u);
    CHECK(crc32c_reference(p, check.size()) == 0xE3069283u);
    CHECK(snap::checksum(p, 0) == 0u);
}

TEST_CASE("the crc32 instruction and the table path agree with a bitwise CRC-32C at every length, alignment and split") {
    std::mt19937_64 rng(28);
    std::vector<std::uint8_t> buf(4096 + 16);
    for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
    const bool hw = snap::detail::crc32c_hardware();
    const std::string path = hw ? "yes" : "no (only the table path is compared)";
    MESSAGE("crc32 instruction on this CPU: " << path);
    for (std::size_t len : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4096}) {
        for (std::size_t align = 0; align < 8; ++align) {
            const std::uint8_t* p = buf.data() + align;
            const std::uint32_t want = crc32c_reference(p, len);
            CHECK(snap::checksum(p, len) == want);
            snap::detail::crc32c_portable portable;  // in two pieces, as the writer hashes
            const std::size_t half = len / 3;
            portable.process_bytes(p, half);
            portable.process_bytes(p + half, len - half);
            CHECK(portable.checksum() == want);
#if GUESTMEM_SNAPSHOT_CRC32C_X86
            if (hw) CHECK((snap::detail::crc32c_sse42(0xFFFFFFFFu, p, len) ^ 0xFFFFFFFFu) == want);
#endif
            // The writer hashes in pieces: any split gives the same CRC.
            const std::size_t cut = len == 0 ? 0 : static_cast<std::size_t>(rng() % (len + 1));
            snap::detail::hasher h;
            h.update(p, cut);
            h.update(p + cut, len - cut);
            CHECK(h.finish() == want);
        }
    }
}

TEST_CASE("a saved snapshot is format version 2 and ends with the CRC-32C of the bytes before it") {
    simulated_allocator alloc;
    sim_mem m(alloc, seed_12_config);
    make_seed_12(m);
    const bytes b = save_bytes(m);
    REQUIRE(b.size() > 4 + snap::checksum_bytes);
    CHECK(b[4] == 2);
    CHECK(snap::format_version == 2);
    const std::size_t at = b.size() - 4;
    CHECK(load_le(b.data() + at, 4) == crc32c_reference(b.data(), at));
    auto h = snap::read_header(b);
    REQUIRE(h);
    CHECK(h.value().version == 2);
    CHECK(h.value().body_offset + h.value().body_size + 4 == b.size());
}

TEST_CASE("a version 1 snapshot saved before the CRC-32C change still checks and restores to the state it was saved from") {
    const bytes old(std::begin(v1_full_12), std::end(v1_full_12));
    REQUIRE(old[4] == 1);
    auto h = snap::check(old);
    REQUIRE_MESSAGE(h, (h ? "" : std::string(h.error().message())));
    CHECK(h.value().version == 1);
    CHECK(h.value().body_offset + h.value().body_size + 8 == old.size());

    simulated_allocator a1, a2;
    sim_mem restored(a1, h.value().config());
    auto s = snap::restore(restored, old);
    REQUIRE_MESSAGE(s, (s ? "" : std::string(s.error().message())));
    sim_mem original(a2, seed_12_config);
    make_seed_12(original);
    CHECK(state_of(restored) == state_of(original));

    // Saving it again writes version 2: the same header and body, a CRC-32C.
    const bytes now = save_bytes(restored);
    REQUIRE(now.size() == old.size() - 4);
    CHECK(now[4] == 2);
    bytes old_as_v2(old.begin(), old.end() - 8);
    old_as_v2[4] = 2;
    CHECK(bytes(now.begin(), now.end() - 4) == old_as_v2);
}

TEST_CASE("a corrupted version 2 snapshot is rejected at the checksum's offset, and nothing is restored") {
    simulated_allocator alloc;
    sim_mem m(alloc, seed_12_config);
    make_seed_12(m);
    const bytes good = save_bytes(m);
    const std::size_t sum_at = good.size() - 4;
    for (const std::size_t flip : {good.size() / 2, sum_at - 1, sum_at, good.size() - 1}) {
        bytes bad = good;
        bad[flip] ^= 0x10;
        auto r = snap::check(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error() == errc::invalid_argument);
        CHECK(snap::error_offset(r.error()) == sum_at);
        CHECK(std::string(r.error().message()).find("checksum") != std::string::npos);
        simulated_allocator a2;
        sim_mem fresh(a2, seed_12_config);
        const auto before = state_of(fresh);
        CHECK_FALSE(snap::restore(fresh, bad));
        CHECK(state_of(fresh) == before);
    }
}

TEST_CASE("a corrupted version 1 snapshot is rejected at its 8-byte checksum's offset") {
    bytes bad(std::begin(v1_full_12), std::end(v1_full_12));
    const std::size_t sum_at = bad.size() - 8;
    bad[sum_at - 3] ^= 0x01;
    auto r = snap::check(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_argument);
    CHECK(snap::error_offset(r.error()) == sum_at);
}

TEST_CASE("format versions 0 and 3 are not_supported at offset 4, and reseal uses each version's own checksum") {
    for (const std::uint8_t v : {std::uint8_t{0}, std::uint8_t{3}}) {
        bytes b(std::begin(v1_full_12), std::end(v1_full_12));
        b[4] = v;
        auto r = snap::read_header(b);
        REQUIRE_FALSE(r);
        CHECK(r.error() == errc::not_supported);
        CHECK(snap::error_offset(r.error()) == 4);
    }
    bytes v1(std::begin(v1_full_12), std::end(v1_full_12));
    v1.back() ^= 0xff;
    snap::reseal(v1);
    CHECK(bytes(v1) == bytes(std::begin(v1_full_12), std::end(v1_full_12)));
}
