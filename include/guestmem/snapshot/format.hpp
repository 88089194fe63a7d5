/// @file
/// The snapshot format's vocabulary (docs/SNAPSHOT.md has it field by
/// field): the magic, the version, the two kinds (a full snapshot and an
/// increment), the header every snapshot starts with, read_header() to
/// learn the object a snapshot needs before constructing it, and the
/// checksum (CRC-32C from format version 2; version 1's 64-bit hash is
/// still read). Everything here is plain functions on byte spans: no lock, no
/// allocation, no exception; O(header) except checksum(), O(bytes).
#pragma once

#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include <guestmem/core/error.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/memory/config.hpp>
#include <guestmem/snapshot/detail/codec.hpp>

/// Saving, checking and restoring an object's ownership state, and
/// tracking what changed for migration (docs/SNAPSHOT.md).
namespace guestmem::snapshot {

/// The four bytes every snapshot starts with: "GMSN".
inline constexpr std::uint8_t magic[4] = {'G', 'M', 'S', 'N'};
/// The format version this library writes: 2, whose checksum is CRC-32C.
inline constexpr std::uint8_t format_version = 2;
/// The oldest version it reads: 1, the same layout with an 8-byte checksum
/// of its own (checksum_v1()).
inline constexpr std::uint8_t oldest_format_version = 1;
/// Size of the checksum that ends a snapshot of format_version (a
/// little-endian CRC-32C).
inline constexpr std::size_t checksum_bytes = 4;

/// Size of the checksum that ends a snapshot of `version` (8 for version 1,
/// 4 from version 2 on).
/// Lock: none. Cost: O(1).
[[nodiscard]] constexpr std::size_t checksum_size(std::uint8_t version) noexcept { return version == 1 ? 8 : 4; }

/// What a snapshot holds.
enum class kind : std::uint8_t {
    full = 1,       ///< an object's whole ownership state (restore())
    increment = 2,  ///< the shareability changed since a generation (apply_increment())
};

/// A snapshot's header, as read_header() decodes it.
struct header {
    std::uint8_t version = format_version; ///< the format version it was written in
    snapshot::kind kind = kind::full;      ///< full snapshot or increment
    page_index pages = 0;                  ///< the object's size in pages
    folio_order max_order = order_4k;      ///< the object's largest folio order
    std::uint64_t generation = 0;          ///< the object's generation when saved
    std::uint64_t base_generation = 0;     ///< increments: the generation they apply on top of
    std::size_t body_offset = 0;           ///< where the body starts
    std::size_t body_size = 0;             ///< body bytes (the checksum follows them)

    /// The configuration to construct the object a full snapshot restores
    /// into (initial shareability is irrelevant: restore replaces it).
    /// Lock: none. Cost: O(1).
    [[nodiscard]] guest_memory_config config() const noexcept {
        return {.pages = pages, .initial = shareability::guest_only, .max_order = max_order};
    }
};

/// The checksum of `n` bytes (docs/SNAPSHOT.md §Checksum): CRC-32C, the
/// Castagnoli CRC that iSCSI and ext4 use and any language recomputes
/// (reflected, initial value and final xor 0xFFFFFFFF). It catches every
/// burst error up to 32 bits.
/// Lock: none. Cost: O(n): 8 bytes per crc32 instruction where the CPU has
/// SSE4.2, else a table lookup per byte.
[[nodiscard]] inline std::uint32_t checksum(const std::uint8_t* data, std::size_t n) noexcept {
    detail::hasher h;
    h.update(data, n);
    return h.finish();
}

/// The checksum of format version 1 snapshots (read only): a 64-bit hash of
/// the bytes as little-endian 8-byte words, the last one padded with zeros,
/// and the length.
/// Lock: none. Cost: O(n).
[[nodiscard]] inline std::uint64_t checksum_v1(const std::uint8_t* data, std::size_t n) noexcept {
    detail::hasher_v1 h;
    h.update(data, n);
    return h.finish();
}

/// The checksum a snapshot of `version` stores for `n` bytes.
/// Lock: none. Cost: O(n).
[[nodiscard]] inline std::uint64_t checksum_for(std::uint8_t version, const std::uint8_t* data, std::size_t n) noexcept {
    return version == 1 ? checksum_v1(data, n) : checksum(data, n);
}

/// Decode and check the header of `bytes`, its length and its checksum
/// (not the body: check() and restore() do that).
/// Errors:    in the order of the bytes, invalid_argument unless said, each
///            message naming the byte offset ("offset N: ..."): not a
///            snapshot (magic); a version other than 1 or 2 (not_supported);
///            an unknown kind; 0 pages or more than 2^51; a max order other
///            than 0, 9 or 18; an increment's base generation newer than
///            its generation (serial order, modulo 2^64); a varint that is truncated, longer than
///            needed or past 64 bits (where it is read); fewer bytes than
///            the header says (truncated) or more (trailing bytes); a
///            checksum that does not match.
/// Lock:      none.
/// Cost:      O(bytes) (the checksum).
/// Allocates: nothing.
[[nodiscard]] inline result<header> read_header(std::span<const std::uint8_t> bytes) noexcept {
    detail::reader in(bytes.data(), bytes.size());
    header h;
    if (bytes.size() < 4 || std::memcmp(bytes.data(), magic, 4) != 0)
        return in.fail(0, "offset 0: not a guestmem snapshot (the first 4 bytes are not \"GMSN\")");
    in.skip(4);
    const auto version = in.byte("the format version");
    if (!version) return version.error();
    if (version.value() < oldest_format_version || version.value() > format_version)
        return error::make(errc::not_supported, no_page,
                           "offset 4: format version %u is not supported (this library reads %u to %u)",
                           unsigned(version.value()), unsigned(oldest_format_version), unsigned(format_version));
    h.version = version.value();
    const std::size_t sum_bytes = checksum_size(h.version);
    const auto k = in.byte("the kind");
    if (!k) return k.error();
    if (k.value() != std::uint8_t(kind::full) && k.value() != std::uint8_t(kind::increment))
        return in.fail(5, "offset 5: kind %u is neither 1 (full) nor 2 (increment)", unsigned(k.value()));
    h.kind = static_cast<kind>(k.value());
    const std::size_t pages_at = in.offset();
    const auto pages = in.varint("the page count");
    if (!pages) return pages.error();
    if (pages.value() == 0 || pages.value() > (page_index{1} << 51))
        return in.fail(pages_at, "offset %zu: an object of %" PRIu64 " pages (1 to 2^51 are possible)", pages_at, pages.value());
    h.pages = pages.value();
    const std::size_t order_at = in.offset();
    const auto order = in.byte("the max order");
    if (!order) return order.error();
    if (order.value() != order_4k && order.value() != order_2m && order.value() != order_1g)
        return in.fail(order_at, "offset %zu: max order %u is not 0, 9 or 18", order_at, unsigned(order.value()));
    h.max_order = order.value();
    const auto gen = in.varint("the generation");
    if (!gen) return gen.error();
    h.generation = gen.value();
    if (h.kind == kind::increment) {
        const std::size_t base_at = in.offset();
        const auto base = in.varint("the base generation");
        if (!base) return base.error();
        if (static_cast<std::int64_t>(h.generation - base.value()) < 0)  // serial order: across 2^64 - 1 -> 0 too
            return in.fail(base_at, "offset %zu: base generation %" PRIu64 " is newer than the generation %" PRIu64, base_at,
                           base.value(), h.generation);
        h.base_generation = base.value();
    }
    const std::size_t size_at = in.offset();
    const auto body = in.varint("the body size");
    if (!body) return body.error();
    h.body_offset = in.offset();
    const std::size_t have = bytes.size() - h.body_offset;
    if (body.value() > have || have - body.value() < sum_bytes)
        return in.fail(bytes.size(), "offset %zu: truncated: the snapshot ends here, its header (offset %zu) says it is %" PRIu64
                       " bytes long", bytes.size(), size_at, std::uint64_t(h.body_offset + body.value() + sum_bytes));
    h.body_size = static_cast<std::size_t>(body.value());
    const std::size_t end = h.body_offset + h.body_size + sum_bytes;
    if (end != bytes.size())
        return in.fail(end, "offset %zu: %zu trailing bytes after the checksum", end, bytes.size() - end);
    const std::size_t sum_at = h.body_offset + h.body_size;
    std::uint64_t stored = 0;
    for (unsigned i = 0; i < sum_bytes; ++i) stored |= std::uint64_t(bytes[sum_at + i]) << (8 * i);
    const std::uint64_t computed = checksum_for(h.version, bytes.data(), sum_at);
    if (stored != computed)
        return in.fail(sum_at, "offset %zu: checksum %#" PRIx64 " does not match the bytes before it (%#" PRIx64 ")", sum_at,
                       stored, computed);
    return h;
}

/// Recompute and store the checksum of a snapshot whose bytes were edited
/// (tests and tools craft snapshots that reach the checks behind it). The
/// checksum sits in the last checksum_size(version) bytes, the version
/// being byte 4 (format_version's when there is none). No error.
/// Lock: none. Cost: O(bytes).
inline void reseal(std::span<std::uint8_t> bytes) noexcept {
    const std::uint8_t version = bytes.size() > 4 ? bytes[4] : format_version;
    const std::size_t n = checksum_size(version);
    if (bytes.size() < n) return;
    const std::size_t at = bytes.size() - n;
    const std::uint64_t sum = checksum_for(version, bytes.data(), at);
    for (unsigned i = 0; i < n; ++i) bytes[at + i] = std::uint8_t(sum >> (8 * i));
}

} // namespace guestmem::snapshot
