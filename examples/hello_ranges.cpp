// hello_ranges — the library's vocabulary in a few lines: page ranges,
// folio orders and the errors bad input gets. (Placeholder until the guest
// memory object lands; the demo VMM will replace it as the README's "run".)
#include <guestmem/guestmem.hpp>

#include <cstdio>

int main() {
    using namespace guestmem;
    std::printf("a 1 GiB folio holds %llu base pages\n", static_cast<unsigned long long>(pages_in(order_1g)));
    for (page_range r : {page_range{0x200, 0x100}, page_range{0x40, 0x40}, page_range{0, 0x2000}}) {
        auto s = check_range(r, 0x1000);
        std::printf("check_range: %.*s\n", static_cast<int>(s ? 2 : s.error().message().size()),
                    s ? "ok" : s.error().message().data());
        if (s) return 1;  // every one of these is bad input
    }
    return 0;
}
