// tests/fuzz/fuzz_target.cpp — the libFuzzer entry point: every input is a
// sequence of API calls decoded and checked against the reference model by
// tests/fuzz/harness.hpp. A divergence aborts (libFuzzer saves the input).
// At exit it prints how many API calls ran in this process, so a long run
// can report its operation count.
#include "harness.hpp"

#include <cstdio>
#include <cstdlib>

namespace {
void print_operations() {
    std::fprintf(stderr, "guestmem_fuzz: %llu API operations executed so far, 0 divergences\n",
                 static_cast<unsigned long long>(guestmem::fuzz::operation_count()));
}
} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    std::atexit(print_operations);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto before = guestmem::fuzz::operation_count();
    guestmem::fuzz::run_one(data, size);
    // libFuzzer's SIGINT path skips atexit: report progress every 2^20 calls too.
    if ((before >> 20) != (guestmem::fuzz::operation_count() >> 20)) print_operations();
    return 0;
}
