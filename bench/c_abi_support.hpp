// bench/c_abi_support.hpp — the C-ABI object the benchmarks and the
// callgrind hot paths measure: a simulated-allocator object of `pages`
// pages, shared, in 2 MiB folios, populated, with three C consumers (each
// a callback table counting what it is told) bound over all of it at
// bases 0x100000, 0x200000 and 0x300000 — the C twin of the C++ objects
// beside it in bench_c_abi.cpp and hotpaths.cpp.
#pragma once

#include <guestmem/c/guestmem.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace guestmem::bench_support {

/// What one C consumer was told.
struct c_counts {
    std::uint64_t prepared = 0, committed_pages = 0, aborted = 0;
};
inline int32_t c_prepare(void* ctx, const guestmem_invalidation*, guestmem_error*) {
    ++static_cast<c_counts*>(ctx)->prepared;
    return GUESTMEM_OK;
}
inline void c_commit(void* ctx, const guestmem_invalidation* inv, guestmem_commit_report*) {
    static_cast<c_counts*>(ctx)->committed_pages += inv->page_end - inv->page_begin;
}
inline void c_abort(void* ctx, const guestmem_invalidation*) { ++static_cast<c_counts*>(ctx)->aborted; }

/// The object described above, its consumers counting into `counts`; null
/// with `failed` naming the call that failed.
inline guestmem_memory* make_c_object(std::uint64_t pages, std::array<c_counts, 3>& counts, const char*& failed) {
    guestmem_config cfg;
    std::memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.allocator = GUESTMEM_ALLOC_SIMULATED;
    cfg.pages = pages;
    cfg.initial = GUESTMEM_SHARED;
    cfg.max_order = GUESTMEM_ORDER_2M;
    guestmem_memory* mem = nullptr;
    if (guestmem_create(&cfg, &mem, nullptr) != GUESTMEM_OK) return failed = "guestmem_create", nullptr;
    guestmem_consumer_ops ops;
    std::memset(&ops, 0, sizeof ops);
    ops.size = sizeof ops;
    ops.prepare = c_prepare;
    ops.commit = c_commit;
    ops.abort = c_abort;
    for (std::size_t i = 0; i < 3; ++i)
        if (guestmem_bind(mem, &ops, &counts[i], 0, pages, 0x100000 * (i + 1), nullptr, nullptr, nullptr) !=
            GUESTMEM_OK) {
            guestmem_destroy(mem);
            return failed = "guestmem_bind", nullptr;
        }
    if (guestmem_allocate(mem, 0, pages, nullptr) != GUESTMEM_OK) {
        guestmem_destroy(mem);
        return failed = "guestmem_allocate", nullptr;
    }
    return mem;
}

} // namespace guestmem::bench_support
