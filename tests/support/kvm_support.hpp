// tests/support/kvm_support.hpp — what the KVM-layer tests share: a small
// VM of one or two simulated objects behind a gpa_map, a recording consumer
// bound over the first object, and a log sink that keeps every line.
#pragma once

#include <guestmem/kvm/gpa_map.hpp>
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/testing/recording_consumer.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include "memory_support.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace guestmem::test_support {

inline constexpr std::uint64_t kib = 1024;
/// GPA of slot 2: slot 1 maps GPA [0, 512K) to object pages [0, 128), slot 2
/// maps [512K, 1M) to pages [128, 256) of the same object.
inline constexpr std::uint64_t slot2_gpa = 512 * kib;
/// GPA of slot 3, over a second object: [4M, 4M + 256K) -> its pages [0, 64).
inline constexpr std::uint64_t other_gpa = 4096 * kib;

/// Two objects (`mem`: 256 pages, `other`: 64 pages, both allocated, shared
/// at first) behind a three-slot map; `rec` bound over all of `mem` at base 0.
struct two_slot_vm {
    simulated_allocator alloc;
    sim_memory mem{alloc, {.pages = 256, .initial = shareability::shared, .max_order = order_4k}};
    sim_memory other{alloc, {.pages = 64, .initial = shareability::shared, .max_order = order_4k}};
    recording_consumer rec{"stage2"};
    binding<consumer> b;
    gpa_map<sim_memory> map;

    two_slot_vm() {
        ok_or_die(mem.allocate({0, 256}));
        ok_or_die(other.allocate({0, 64}));
        ok_or_die(mem.bind(b, rec, {0, 256}, 0));
        ok_or_die(map.add_slot(1, 0, 128, mem, 0));
        ok_or_die(map.add_slot(2, slot2_gpa, 128, mem, 128));
        ok_or_die(map.add_slot(3, other_gpa, 64, other, 0));
    }
    template <class R>
    static void ok_or_die(const R& r) {
        if (!r) __builtin_trap();
    }
    /// Pages of `mem` that are guest_only.
    std::uint64_t private_pages() const { return mem.stats().guest_only_pages; }
};

/// Keeps every line the router logs.
struct log_lines {
    std::vector<std::string> lines;
    static void sink(void* self, std::string_view line) {
        static_cast<log_lines*>(self)->lines.emplace_back(line);
    }
    bool any_contains(std::string_view s) const {
        for (const auto& l : lines)
            if (l.find(s) != std::string::npos) return true;
        return false;
    }
};

} // namespace guestmem::test_support
