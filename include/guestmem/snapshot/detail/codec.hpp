// guestmem/snapshot/detail/codec.hpp — the byte level of the snapshot
// format: LEB128 varints (minimal length only, at most 10 bytes, no bit
// past 64), the checksum's hashers (CRC-32C; version 1's 64-bit hash), a reader that names the byte offset of
// every error, and a writer that stages bytes in a fixed 4 KiB buffer,
// hashes them and hands them to the caller's sink in chunks. Nothing here
// allocates or throws. CRC-32C costs O(n): on x86-64 with SSE4.2 (checked
// at run time, or known at compile time) the crc32 instruction, 8 bytes a
// step (~0.1 ns a byte); elsewhere Boost.CRC's table lookup a byte (~1-2 ns
// a byte).
#pragma once

#include <cinttypes>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define GUESTMEM_SNAPSHOT_CRC32C_X86 1
#else
#define GUESTMEM_SNAPSHOT_CRC32C_X86 0
#endif

#include <boost/crc.hpp>

#include <guestmem/core/error.hpp>

namespace guestmem::snapshot::detail {

/// The portable CRC-32C: Boost.CRC's table-driven byte loop (CRC-32C's
/// parameters below, as hasher documents them).
using crc32c_portable = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

#if GUESTMEM_SNAPSHOT_CRC32C_X86
/// CRC-32C with SSE4.2's crc32 instruction, 8 bytes at a time: `crc` (the
/// raw register, neither initial value nor final xor applied) after
/// p[0, n). Call it only where crc32c_hardware() is true.
[[nodiscard]] __attribute__((target("sse4.2"))) inline std::uint32_t crc32c_sse42(std::uint32_t crc, const std::uint8_t* p,
                                                                                   std::size_t n) noexcept {
    std::uint64_t c = crc;
    for (; n >= 8; p += 8, n -= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);  // x86 is little-endian: the bytes in order
        c = _mm_crc32_u64(c, w);
    }
    auto c32 = static_cast<std::uint32_t>(c);
    for (; n != 0; ++p, --n) c32 = _mm_crc32_u8(c32, *p);
    return c32;
}
#endif

/// Does this CPU run crc32c_sse42()? Known at compile time under -msse4.2
/// (or -march with it), else asked of the CPU (cpuid, read once by the
/// runtime at start-up).
[[nodiscard]] inline bool crc32c_hardware() noexcept {
#if GUESTMEM_SNAPSHOT_CRC32C_X86 && defined(__SSE4_2__)
    return true;
#elif GUESTMEM_SNAPSHOT_CRC32C_X86
    return __builtin_cpu_supports("sse4.2");
#else
    return false;
#endif
}

/// The checksum's state (docs/SNAPSHOT.md §Checksum), format version 2
/// on: CRC-32C (Castagnoli: polynomial 0x1EDC6F41, reflected, initial value
/// and final xor 0xFFFFFFFF; "123456789" gives 0xE3069283), as iSCSI, ext4
/// and every language's crc32c package compute it. The crc32 instruction
/// where the CPU has it, else crc32c_portable (Boost.CRC); no allocation.
class hasher {
public:
    void update(const std::uint8_t* p, std::size_t n) noexcept {
#if GUESTMEM_SNAPSHOT_CRC32C_X86
        if (crc32c_hardware()) {
            raw_ = crc32c_sse42(raw_, p, n);
            return;
        }
#endif
        portable_.process_bytes(p, n);
    }
    [[nodiscard]] std::uint32_t finish() const noexcept {
#if GUESTMEM_SNAPSHOT_CRC32C_X86
        if (crc32c_hardware()) return raw_ ^ 0xFFFFFFFFu;
#endif
        return portable_.checksum();
    }

private:
    std::uint32_t raw_ = 0xFFFFFFFFu;  // the crc32 instruction's register
    crc32c_portable portable_;         // used where the CPU has no crc32 instruction
};

/// The checksum of format version 1 (read, never written): a 64-bit hash
/// of the bytes as little-endian 8-byte words, the last one padded with
/// zeros, then the length, mixed by rotate-multiply steps. One update()
/// per checksum: a tail is padded at once.
class hasher_v1 {
public:
    void update(const std::uint8_t* p, std::size_t n) noexcept {
        total_ += n;
        for (; n >= 8; p += 8, n -= 8) mix(load(p));
        if (n != 0) {
            std::uint8_t tail[8] = {};
            std::memcpy(tail, p, n);
            mix(load(tail));
        }
    }
    [[nodiscard]] std::uint64_t finish() const noexcept {
        std::uint64_t x = state_ ^ total_;
        x ^= x >> 31;
        x *= 0xbf58476d1ce4e5b9ull;
        x ^= x >> 29;
        return x;
    }

private:
    static std::uint64_t load(const std::uint8_t* p) noexcept {
        std::uint64_t w = 0;
        for (unsigned i = 0; i < 8; ++i) w |= std::uint64_t(p[i]) << (8 * i);
        return w;
    }
    void mix(std::uint64_t w) noexcept {
        const std::uint64_t x = state_ ^ w;
        state_ = ((x << 27) | (x >> 37)) * 0x9e3779b97f4a7c15ull;
    }
    std::uint64_t state_ = 0x6a09e667f3bcc908ull;
    std::uint64_t total_ = 0;
};

/// Bytes a varint of v takes.
[[nodiscard]] constexpr std::size_t varint_size(std::uint64_t v) noexcept {
    std::size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        ++n;
    }
    return n;
}

/// Reads a snapshot's bytes; every error names the offset it happened at.
class reader {
public:
    reader(const std::uint8_t* data, std::size_t end) noexcept : data_(data), end_(end) {}
    [[nodiscard]] std::size_t offset() const noexcept { return pos_; }
    [[nodiscard]] const std::uint8_t* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t left() const noexcept { return end_ - pos_; }
    void skip(std::size_t n) noexcept { pos_ += n; }
    void seek(std::size_t at) noexcept { pos_ = at; }
    /// The end of what may be read (a section's or the body's end).
    void limit(std::size_t end) noexcept { end_ = end; }

    [[nodiscard]] result<std::uint8_t> byte(const char* what) noexcept {
        if (pos_ >= end_) return fail(pos_, "offset %zu: truncated: %s runs past the end of the body", pos_, what);
        return data_[pos_++];
    }
    [[nodiscard]] result<std::uint64_t> varint(const char* what) noexcept {
        const std::size_t at = pos_;
        std::uint64_t v = 0;
        for (unsigned shift = 0;; shift += 7) {
            if (pos_ >= end_) return fail(at, "offset %zu: truncated: %s (a varint) runs past the end of the body", at, what);
            const std::uint8_t b = data_[pos_++];
            if (shift == 63 && b > 1) return fail(at, "offset %zu: %s (a varint) does not fit in 64 bits", at, what);
            v |= std::uint64_t(b & 0x7f) << shift;
            if ((b & 0x80) == 0) {
                if (b == 0 && shift != 0) return fail(at, "offset %zu: %s (a varint) is longer than needed", at, what);
                return v;
            }
        }
    }
    /// An invalid_argument error whose message starts "offset N:".
    [[nodiscard]] static error fail(std::size_t, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3))) {
        char text[error::max_message];
        std::va_list args;
        va_start(args, fmt);
        std::vsnprintf(text, sizeof text, fmt, args);
        va_end(args);
        return error::make(errc::invalid_argument, no_page, "%s", text);
    }

private:
    const std::uint8_t* data_;
    std::size_t pos_ = 0, end_;
};

/// Stages output in a fixed buffer, hashing it, and hands it to `Sink`
/// (a callable bool(const std::uint8_t*, std::size_t); false stops the
/// save). With a null sink it only counts (the sizing pass).
template <class Sink>
class writer {
public:
    /// `hash`: false when the caller checksums the bytes itself.
    explicit writer(Sink* sink, bool hash = true) noexcept : sink_(sink), hashing_(hash) {}
    [[nodiscard]] std::size_t written() const noexcept { return total_ + fill_; }
    [[nodiscard]] bool failed() const noexcept { return failed_; }

    void byte(std::uint8_t b) noexcept {
        if (fill_ == sizeof buf_) flush();
        buf_[fill_++] = b;
    }
    void bytes(const std::uint8_t* p, std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i) byte(p[i]);
    }
    void varint(std::uint64_t v) noexcept {
        if (sizeof buf_ - fill_ < 10) flush();
        while (v >= 0x80) {
            buf_[fill_++] = std::uint8_t(v | 0x80);
            v >>= 7;
        }
        buf_[fill_++] = std::uint8_t(v);
    }
    /// Append the checksum of everything written so far (4 bytes,
    /// little-endian), then flush.
    void seal() noexcept {
        flush();
        const std::uint32_t sum = hash_.finish();
        for (unsigned i = 0; i < 4; ++i) byte(std::uint8_t(sum >> (8 * i)));
        flush();
    }

    /// Hand the staged bytes to the sink now.
    void flush() noexcept {
        if (fill_ == 0) return;
        if (sink_ != nullptr && !failed_) {
            if (hashing_) hash_.update(buf_, fill_);
            if (!(*sink_)(static_cast<const std::uint8_t*>(buf_), fill_)) failed_ = true;
        }
        total_ += fill_;
        fill_ = 0;
    }
private:
    Sink* sink_;
    bool hashing_;
    hasher hash_;
    std::size_t total_ = 0, fill_ = 0;
    bool failed_ = false;
    std::uint8_t buf_[4096];
};

} // namespace guestmem::snapshot::detail
