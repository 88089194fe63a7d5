// tests/fuzz/make_snapshot_corpus.cpp — writes the seed corpus of the
// snapshot fuzz target (tests/fuzz/snapshot_corpus/): full snapshots of
// objects after seeded random histories (folios of every order, splits,
// poison, quarantine) and increments on top of generation 0.
//   make_snapshot_corpus <directory>
#include "../support/snapshot_support.hpp"

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    using namespace guestmem;
    using namespace guestmem::test_support;
    if (argc != 2) return 2;
    auto write = [&](const std::string& name, const bytes& b) {
        const std::string path = std::string(argv[1]) + "/" + name;
        std::FILE* f = std::fopen(path.c_str(), "wb");
        if (!f || std::fwrite(b.data(), 1, b.size(), f) != b.size()) return false;
        return std::fclose(f) == 0;
    };
    for (std::uint64_t seed = 1; seed <= 16; ++seed) {
        std::mt19937_64 rng(seed);
        simulated_allocator alloc;
        const bool big = seed % 4 == 0;
        guest_memory<simulated_allocator, consumer, null_lock> m(
            alloc, {.pages = big ? pages_in(order_1g) + 515 : 3 * 512 + 37,
                    .initial = seed % 2 ? shareability::shared : shareability::guest_only,
                    .max_order = big ? order_1g : order_2m});
        random_history(m, rng, 10 + int(seed) * 6);
        if (!write("full_" + std::to_string(seed), save_bytes(m))) return 1;
        if (seed % 3 == 0) {
            bytes inc;
            auto r = snapshot::save_increment(m, 0, [&](const std::uint8_t* p, std::size_t n) {
                inc.insert(inc.end(), p, p + n);
                return true;
            });
            if (r && !write("increment_" + std::to_string(seed), inc)) return 1;
        }
    }
    return 0;
}
