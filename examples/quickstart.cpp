// quickstart — wire a consumer to a guest memory object and convert a page.
// This is the whole integration an embedder writes: a consumer with four
// callbacks, a binding, and calls to allocate / convert / fault.
#include <guestmem/guestmem.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <cstdio>

using namespace guestmem;

// A stage-2 table stand-in: it would unmap GFNs in commit.
struct stage2 final : consumer {
    status prepare(const invalidation&) override { return ok(); }  // split own huge mappings here
    void commit(const invalidation& inv, commit_report&) noexcept override {
        std::printf("stage-2: unmap GFN [%#llx, %#llx) for %s\n", (unsigned long long)inv.target.begin,
                    (unsigned long long)inv.target.end, to_string(inv.cause).data());
    }
    void abort(const invalidation&) noexcept override {}
    void memory_failure(const invalidation&) noexcept override {}
};

int main() {
    simulated_allocator frames;                                  // bookkeeping-only folios
    guest_memory<simulated_allocator> mem(frames, {.pages = 1024, .initial = shareability::guest_only});
    stage2 s2;
    binding<consumer> slot;
    if (!mem.bind(slot, s2, {0, 1024}, /*base GFN*/ 0x80000) || !mem.allocate({0, 1024})) return 1;
    if (!mem.convert({16, 17}, shareability::shared)) return 1;  // the guest shares one page
    auto host = mem.fault(16, shareability::shared, accessor::host);
    auto denied = mem.fault(17, shareability::guest_only, accessor::host);
    std::printf("host maps page 16 at frame %#llx; page 17: %s\n", (unsigned long long)host.value().frame,
                denied ? "mapped?!" : denied.error().message().data());
    return host && !denied ? 0 : 1;
}
