// two_vms — one guest memory, two VM instances (an intra-host migration:
// the source VM and the destination VM see the same memory). Each VM opens
// its own view with its own consumers and access policy; a conversion
// through either view is seen by both and runs one round over both VMs'
// consumers; a device consumer bound late is told the shared pages it may
// map (replay); closing the source VM releases only its consumers, and the
// memory lives until the destination closes too.
#include <guestmem/guestmem.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <cstdio>

using namespace guestmem;

// A stage-2 table or IOMMU stand-in that says what it is told.
struct mapper final : consumer {
    const char* who;
    explicit mapper(const char* w) : who(w) {}
    status prepare(const invalidation&) override { return ok(); }
    void commit(const invalidation& inv, commit_report&) noexcept override {
        std::printf("%s: drop [%#llx, %#llx) for %s\n", who, (unsigned long long)inv.pages.begin,
                    (unsigned long long)inv.pages.end, to_string(inv.cause).data());
    }
    void abort(const invalidation&) noexcept override {}
    void memory_failure(const invalidation&) noexcept override {}
    status populate(const invalidation& inv) override {  // replay on bind: map what is shared now
        std::printf("%s: map shared [%#llx, %#llx)\n", who, (unsigned long long)inv.pages.begin,
                    (unsigned long long)inv.pages.end);
        return ok();
    }
};

int main() {
    using view = memory_view<guest_memory<simulated_allocator>>;
    simulated_allocator frames;
    auto src = view::open_storage(frames, {.pages = 1024});  // the source VM's view (confidential)
    if (!src || !src.value().allocate({0, 1024})) return 1;
    auto dst_vm = src.value().add_owner();                    // the destination VM
    if (!dst_vm) return 1;
    auto dst = src.value().open_view(dst_vm.value(), {});
    if (!dst) return 1;

    mapper src_s2("source stage-2"), dst_s2("destination stage-2"), dst_iommu("destination IOMMU");
    view::binding_type b1, b2, b3;
    if (!src.value().bind(b1, src_s2, {0, 1024}, 0x80000) || !dst.value().bind(b2, dst_s2, {0, 1024}, 0x80000)) return 1;
    if (!src.value().convert({16, 32}, shareability::shared)) return 1;  // both stage-2s drop [16, 32)
    if (!dst.value().bind(b3, dst_iommu, {0, 1024}, 0)) return 1;          // hot-plugged: told [16, 32)
    const bool seen = dst.value().shareability_at(20).value() == shareability::shared;

    if (!src.value().close()) return 1;  // the source VM goes: only its stage-2 is released
    const bool alive = frames.pages_in_use() == 1024 && dst.value().fault(20, shareability::shared, accessor::host);
    const bool late = src.value().convert({0, 1}, shareability::shared).error().code() == errc::not_bound;
    if (!dst.value().close()) return 1;  // the last view: the memory is freed
    std::printf("seen by both: %d, alive after the source closed: %d, late call refused: %d, freed at the end: %d\n",
                seen, alive, late, frames.pages_in_use() == 0);
    return seen && alive && late && frames.pages_in_use() == 0 ? 0 : 1;
}
