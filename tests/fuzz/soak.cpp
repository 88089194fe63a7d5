// guestmem_soak — a long differential run without libFuzzer: seeded random
// byte strings through the same harness as the fuzz target and the replay
// test (tests/fuzz/harness.hpp), until a target number of API operations
// has run. Every call is compared against the reference model and the
// invariants are checked; a divergence aborts with the harness's message.
// Built with the optimiser and no sanitizer, it runs an order of magnitude
// more operations per second than the instrumented fuzz target, which is
// what a 10^7-operation run needs on a 2-core machine.
//
//   guestmem_soak [operations=10000000] [seed=1]
//
// A progress line (operations done, share, time spent and left) goes to
// stderr every 2 seconds.
#include "harness.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

int main(int argc, char** argv) {
    const std::uint64_t target = argc > 1 ? std::strtoull(argv[1], nullptr, 0) : 10'000'000ull;
    const std::uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 0) : 1;
    std::mt19937_64 rng(seed);
    std::vector<std::uint8_t> bytes;
    std::uint64_t inputs = 0;
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    auto next_report = start + std::chrono::seconds(2);
    while (guestmem::fuzz::operation_count() < target) {
        bytes.resize(8 + rng() % 400);
        for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
        guestmem::fuzz::run_one(bytes.data(), bytes.size());
        ++inputs;
        // A progress line every 2 seconds (the clock is read every 256 inputs).
        if ((inputs & 0xff) == 0 && clock::now() >= next_report) {
            const std::uint64_t ops = guestmem::fuzz::operation_count();
            const double secs = std::chrono::duration<double>(clock::now() - start).count();
            std::fprintf(stderr, "guestmem_soak: %" PRIu64 " / %" PRIu64 " operations (%.0f%%), %" PRIu64 " inputs, %.0f s, ~%.0f s left\n",
                         ops, target, 100.0 * double(ops) / double(target), inputs, secs,
                         ops ? secs * double(target - std::min(ops, target)) / double(ops) : 0.0);
            next_report = clock::now() + std::chrono::seconds(2);
        }
    }
    std::printf("guestmem_soak: seed %" PRIu64 ": %" PRIu64 " inputs, %" PRIu64 " API operations, 0 divergences\n",
                seed, inputs, guestmem::fuzz::operation_count());
    return 0;
}
