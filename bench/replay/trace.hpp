// bench/replay/trace.hpp — the conversion trace format (docs/TRACES.md),
// its reader and writer, and the generators for the patterns VMMs see.
//
// A trace is a 32-byte header and then 24-byte records, all little-endian:
//
//   header: "GMTRACE\0" (8) | version u32 = 1 | record size u32 = 24 |
//           object pages u64 | max folio order u8 | initial u8 (0 guest_only,
//           1 shared) | 6 zero bytes
//   record: op u8 | 7 zero bytes | first page u64 | page count u64
//
// One operation per record (op values below). Generators are
// deterministic (seeded): the same name and scale give the same bytes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace guestmem::trace {

/// What a record asks for.
enum class op : std::uint8_t {
    share = 1,          ///< convert [first, first + count) to shared
    unshare = 2,        ///< convert it to guest_only
    punch = 3,          ///< punch_hole (truncate) it
    allocate = 4,       ///< allocate (populate) it
    pin = 5,            ///< pin it (a device's DMA mapping)
    unpin = 6,          ///< drop that pin
    host_fault = 7,     ///< the host faults each page as shared
    guest_fault = 8,    ///< the hypervisor faults each page as guest_only (a private fault)
};

constexpr std::uint8_t last_op = 8;

/// The name of an op ("share", ...), or "?".
inline const char* name(op o) {
    static const char* names[] = {"?", "share", "unshare", "punch", "allocate", "pin", "unpin", "host_fault", "guest_fault"};
    const auto i = static_cast<std::uint8_t>(o);
    return i <= last_op ? names[i] : "?";
}

/// One record.
struct record {
    op what;
    std::uint64_t first;
    std::uint64_t count;
};

/// A whole trace in memory.
struct trace_file {
    std::uint64_t pages = 0;
    std::uint8_t max_order = 9;
    bool initial_shared = false;
    std::vector<record> records;
};

constexpr char magic[8] = {'G', 'M', 'T', 'R', 'A', 'C', 'E', '\0'};
constexpr std::uint32_t version = 1, record_size = 24, header_size = 32;

inline void put64(unsigned char* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
inline void put32(unsigned char* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
inline std::uint64_t get64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
inline std::uint32_t get32(const unsigned char* p) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

/// Write `t` to `path`; false (with errno) on failure.
inline bool write(const trace_file& t, const char* path) {
    std::FILE* f = std::fopen(path, "wb");
    if (!f) return false;
    unsigned char h[header_size] = {};
    std::memcpy(h, magic, 8);
    put32(h + 8, version);
    put32(h + 12, record_size);
    put64(h + 16, t.pages);
    h[24] = t.max_order;
    h[25] = t.initial_shared ? 1 : 0;
    bool ok = std::fwrite(h, 1, sizeof h, f) == sizeof h;
    unsigned char r[record_size];
    for (const record& x : t.records) {
        std::memset(r, 0, sizeof r);
        r[0] = static_cast<unsigned char>(x.what);
        put64(r + 8, x.first);
        put64(r + 16, x.count);
        ok = ok && std::fwrite(r, 1, sizeof r, f) == sizeof r;
    }
    return std::fclose(f) == 0 && ok;
}

/// Read `path` into `t`; on failure, `why` says what and where (byte offset).
inline bool read(const char* path, trace_file& t, std::string& why) {
    std::FILE* f = std::fopen(path, "rb");
    if (!f) {
        why = std::string("cannot open ") + path;
        return false;
    }
    unsigned char h[header_size];
    if (std::fread(h, 1, sizeof h, f) != sizeof h || std::memcmp(h, magic, 8) != 0 || get32(h + 8) != version ||
        get32(h + 12) != record_size) {
        std::fclose(f);
        why = "byte 0: not a version-1 guestmem trace (bad magic, version or record size)";
        return false;
    }
    t.pages = get64(h + 16);
    t.max_order = h[24];
    t.initial_shared = h[25] == 1;
    if (t.pages == 0 || t.pages > (std::uint64_t{1} << 40) || (t.max_order != 0 && t.max_order != 9 && t.max_order != 18) ||
        h[25] > 1) {
        std::fclose(f);
        why = "byte 16: object size, max order or initial state out of range";
        return false;
    }
    t.records.clear();
    unsigned char r[record_size];
    std::uint64_t offset = header_size;
    for (;;) {
        const std::size_t got = std::fread(r, 1, sizeof r, f);
        if (got == 0) break;
        if (got != sizeof r) {
            std::fclose(f);
            why = "byte " + std::to_string(offset) + ": truncated record";
            return false;
        }
        const record x{static_cast<op>(r[0]), get64(r + 8), get64(r + 16)};
        if (r[0] == 0 || r[0] > last_op || x.count == 0 || x.first >= t.pages || x.count > t.pages - x.first) {
            std::fclose(f);
            why = "byte " + std::to_string(offset) + ": bad record (op " + std::to_string(r[0]) + ", pages [" +
                  std::to_string(x.first) + ", +" + std::to_string(x.count) + "))";
            return false;
        }
        t.records.push_back(x);
        offset += sizeof r;
    }
    std::fclose(f);
    return true;
}

// ---- generators -----------------------------------------------------------

constexpr std::uint64_t mib = 256;  // pages per MiB
constexpr std::uint64_t gib = 1024 * mib;

/// The generator names, for --help and the report.
constexpr std::string_view generators[] = {"cvm_boot", "dma_churn", "virtio_mem", "tib_1m_runs"};

/// A confidential guest's boot: 8 GiB, all private, allocated in 2 MiB
/// folios; a 64 MiB bounce buffer shared in 2 MiB chunks; a shared page per
/// vCPU (32, GHCB-like); 8 virtio queues of 3 rings (4-64 KiB); ~2,000
/// scattered 4 KiB set_memory_decrypted/encrypted pairs as drivers probe;
/// then private faults everywhere and host faults on the shared pages.
inline trace_file cvm_boot(std::uint64_t seed) {
    trace_file t{8 * gib, 9, false, {}};
    std::mt19937_64 rng(seed);
    auto& r = t.records;
    for (std::uint64_t p = 0; p < t.pages; p += 512 * mib) r.push_back({op::allocate, p, 512 * mib});
    std::vector<std::pair<std::uint64_t, std::uint64_t>> shared;
    const std::uint64_t swiotlb = 1 * gib;  // 64 MiB at 4 GiB-ish: in 2 MiB chunks
    for (std::uint64_t c = 0; c < 32; ++c) shared.push_back({swiotlb + c * 512, 512});
    for (std::uint64_t cpu = 0; cpu < 32; ++cpu) shared.push_back({2 * gib + cpu * 4096 + 17, 1});
    for (std::uint64_t q = 0; q < 8; ++q)
        for (std::uint64_t ring = 0; ring < 3; ++ring)
            shared.push_back({3 * gib + q * 1024 + ring * 64, 1 + rng() % 16});
    for (auto [p, n] : shared) r.push_back({op::share, p, n});
    auto in_shared = [&](std::uint64_t p) {
        for (auto [s, n] : shared)
            if (p >= s && p < s + n) return true;
        return false;
    };
    for (int i = 0; i < 2000; ++i) {
        const std::uint64_t p = rng() % t.pages;
        if (in_shared(p)) continue;  // drivers probe private pages, not the shared regions
        r.push_back({op::share, p, 1});
        r.push_back({op::unshare, p, 1});
    }
    for (int i = 0; i < 200000; ++i) {
        if (i % 4 == 0) {
            auto [p, n] = shared[rng() % shared.size()];
            r.push_back({op::host_fault, p + rng() % n, 1});
        } else {
            const std::uint64_t p = rng() % t.pages;
            // Skip the shared regions (a private fault there would be refused, as KVM would exit instead).
            if (!in_shared(p)) r.push_back({op::guest_fault, p, 1});
        }
    }
    return t;
}

/// Steady DMA churn: a 16 GiB private guest sharing 4-64 KiB buffers at
/// random and unsharing them after use (at most 256 in flight); the
/// device pins each while it maps it, and the host faults them.
inline trace_file dma_churn(std::uint64_t seed) {
    trace_file t{16 * gib, 9, false, {}};
    std::mt19937_64 rng(seed);
    auto& r = t.records;
    for (std::uint64_t p = 0; p < t.pages; p += 512 * mib) r.push_back({op::allocate, p, 512 * mib});
    std::vector<std::pair<std::uint64_t, std::uint64_t>> live;
    for (int i = 0; i < 100000; ++i) {
        if (live.size() >= 256 || (!live.empty() && rng() % 2)) {
            const std::size_t k = rng() % live.size();
            auto [p, n] = live[k];
            r.push_back({op::unpin, p, n});
            r.push_back({op::unshare, p, n});
            live[k] = live.back();
            live.pop_back();
            continue;
        }
        const std::uint64_t n = 1 + rng() % 16;
        const std::uint64_t p = rng() % (t.pages - n);
        bool overlaps = false;
        for (auto [q, m] : live) overlaps = overlaps || (p < q + m && q < p + n);
        if (overlaps) continue;
        r.push_back({op::share, p, n});
        r.push_back({op::pin, p, n});
        r.push_back({op::host_fault, p, n});
        live.push_back({p, n});
    }
    return t;
}

/// virtio-mem in a shared (non-confidential) 64 GiB guest: 128 MiB blocks
/// plugged (allocated) and unplugged (punched) at random, half plugged at
/// any time, with host faults in plugged blocks.
inline trace_file virtio_mem(std::uint64_t seed) {
    trace_file t{64 * gib, 9, true, {}};
    std::mt19937_64 rng(seed);
    auto& r = t.records;
    const std::uint64_t block = 128 * mib, blocks = t.pages / block;
    std::vector<bool> plugged(blocks, false);
    for (std::uint64_t b = 0; b < blocks; b += 2) {
        r.push_back({op::allocate, b * block, block});
        plugged[b] = true;
    }
    for (int i = 0; i < 20000; ++i) {
        const std::uint64_t b = rng() % blocks;
        if (plugged[b]) {
            if (rng() % 4 == 0) {
                r.push_back({op::punch, b * block, block});
                plugged[b] = false;
            } else {
                r.push_back({op::host_fault, b * block + rng() % block, 1});
            }
        } else {
            r.push_back({op::allocate, b * block, block});
            plugged[b] = true;
        }
    }
    return t;
}

/// A 1 TiB private guest with 10^6 runs: 5 * 10^5 scattered shared
/// ranges of 1-16 pages (no two touching), then 10^5 lookups by fault.
/// Not allocated (faults on holes still pay the lookups).
inline trace_file tib_1m_runs(std::uint64_t seed) {
    trace_file t{1024 * gib, 18, false, {}};
    std::mt19937_64 rng(seed);
    auto& r = t.records;
    const std::uint64_t stride = t.pages / 500000;  // one shared range per stride: they never touch
    for (std::uint64_t i = 0; i < 500000; ++i) r.push_back({op::share, i * stride + rng() % (stride / 2), 1 + rng() % 16});
    std::shuffle(r.begin(), r.end(), rng);
    for (int i = 0; i < 100000; ++i) r.push_back({op::host_fault, rng() % t.pages, 1});
    return t;
}

/// The generator called `name` (seeded), or false.
inline bool generate(std::string_view name, std::uint64_t seed, trace_file& out) {
    if (name == "cvm_boot") out = cvm_boot(seed);
    else if (name == "dma_churn") out = dma_churn(seed);
    else if (name == "virtio_mem") out = virtio_mem(seed);
    else if (name == "tib_1m_runs") out = tib_1m_runs(seed);
    else return false;
    return true;
}

} // namespace guestmem::trace
