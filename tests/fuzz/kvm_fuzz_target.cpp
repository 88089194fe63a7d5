// tests/fuzz/kvm_fuzz_target.cpp — the libFuzzer entry point of the
// differential harness's KVM mode (tests/fuzz/harness_kvm.hpp): every input
// is a sequence of conversions, pins, vetoes and kernel refusals, checked
// after every call against a per-page model and KVM's attribute model. A
// divergence aborts (libFuzzer saves the input). Any bytes are a valid
// input, so it starts from the main fuzzer's seed corpus.
#include "harness_kvm.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    (void)guestmem::fuzz::run_one_kvm(data, size);
    return 0;
}
