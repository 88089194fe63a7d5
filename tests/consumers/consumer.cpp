// An embedder's first program: include the umbrella header, validate a
// range, and print the error the library gives for a bad one.
#include <guestmem/guestmem.hpp>

#include <cstdio>

int main() {
    auto bad = guestmem::check_range({0x200, 0x100}, 0x1000);
    if (bad || bad.error().code() != guestmem::errc::invalid_range) return 1;
    std::printf("guestmem says: %.*s\n", static_cast<int>(bad.error().message().size()), bad.error().message().data());
    return guestmem::check_range({0, 0x100}, 0x1000) ? 0 : 1;
}
