// migration — live migration through views. The source VM A and a
// migration helper share one storage (the helper is a view of A's owner);
// the helper saves a full snapshot, then increments while A keeps
// converting; the destination restores and applies them, and ends with the
// same runs. Then intra-host: VM B opens a view on A's storage, A closes,
// and B carries on with the same memory (no page copied).
#include <guestmem/guestmem.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

using namespace guestmem;
using storage = memory_view<guest_memory<simulated_allocator>>;

// Save through a view into a vector: a full snapshot (since == nullptr) or an increment.
static std::vector<std::uint8_t> save(const storage& v, const std::uint64_t* since) {
    auto need = since ? v.increment_size(*since) : v.saved_size();
    std::vector<std::uint8_t> out(need ? need.value() : 0);
    auto n = since ? v.save_increment(*since, out) : v.save(out);
    out.resize(n ? n.value() : 0);
    return out;
}

static bool same_runs(const storage& x, const storage& y, page_index pages) {
    for (page_index p = 0; p < pages; ++p)
        if (x.shareability_at(p).value() != y.shareability_at(p).value()) return false;
    return true;
}

int main() {
    constexpr page_index pages = 4096;
    const guest_memory_config cfg{.pages = pages, .initial = shareability::guest_only, .max_order = order_2m};
    simulated_allocator src_frames, dst_frames;

    // Source: VM A's view, and the migration helper (another view of A's owner).
    storage a = std::move(storage::open_storage(src_frames, cfg).value());
    storage helper = std::move(a.open_view(a.owner().value(), {}).value());
    if (!a.allocate({0, pages}) || !a.convert({0, 64}, shareability::shared)) return 1;

    // Pre-copy: a full snapshot, then increments while A keeps converting.
    std::vector<std::uint8_t> bytes = save(helper, nullptr);
    storage dst = std::move(storage::open_storage(dst_frames, snapshot::read_header(bytes).value().config()).value());
    if (!dst.restore(bytes)) return 1;
    std::uint64_t g = snapshot::read_header(bytes).value().generation;
    for (page_index round = 1; round <= 3; ++round) {
        if (!a.convert({round * 512, round * 512 + 100}, shareability::shared)) return 1;  // the guest runs on
        bytes = save(helper, &g);
        g = snapshot::read_header(bytes).value().generation;  // the next base: from the bytes just written
        if (!dst.apply_increment(bytes)) return 1;
    }
    std::printf("destination at generation %llu, same runs: %s\n", (unsigned long long)dst.generation().value(),
                same_runs(a, dst, pages) ? "yes" : "no");

    // Intra-host: VM B takes A's storage over; A's close tells B's consumers nothing.
    owner_id vm_b = a.add_owner().value();
    storage b = std::move(a.open_view(vm_b, {}).value());
    const frame_number before = b.fault(7, shareability::shared, accessor::hypervisor).value().frame;
    if (!a.close_owner(a.owner().value())) return 1;  // A and its helper close
    if (!b.convert({64, 128}, shareability::shared)) return 1;
    const frame_number after = b.fault(7, shareability::shared, accessor::hypervisor).value().frame;
    std::printf("VM B continues on the same frame: %s\n", before == after ? "yes" : "no");
    return same_runs(b, dst, 64) && before == after ? 0 : 1;
}
