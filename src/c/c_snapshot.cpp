// src/c/c_snapshot.cpp — the C ABI of snapshots
// (include/guestmem/c/guestmem_snapshot.h): each call checks what C can pass
// and C++ cannot receive, then calls guestmem::snapshot on the object's
// guest_memory (whatever its allocator) and reports the status.
#include "c_object.hpp"

#include <guestmem/snapshot/snapshot.hpp>

#include <ostream>
#include <span>
#include <streambuf>

using namespace guestmem;
using namespace guestmem::c_abi;

namespace {

[[gnu::cold]] int32_t null_object(guestmem_error* err) noexcept {
    return fail(err, errc::invalid_argument, no_page, "the guestmem_memory handle is NULL");
}

[[gnu::cold]] int32_t null_bytes(guestmem_error* err, std::size_t len) noexcept {
    return fail(err, errc::invalid_argument, no_page, "bytes is NULL but len is %zu", len);
}

std::span<const std::uint8_t> bytes_of(const uint8_t* p, std::size_t len) noexcept {
    return len == 0 ? std::span<const std::uint8_t>{} : std::span<const std::uint8_t>{p, len};
}

/// Copies what fits into [buf, buf + cap) and counts every byte.
struct counting_sink {
    std::uint8_t* buf;
    std::size_t cap;
    std::size_t len = 0;
    bool operator()(const std::uint8_t* p, std::size_t n) noexcept {
        if (len <= cap && n <= cap - len) std::memcpy(buf + len, p, n);
        len += n;
        return true;
    }
};

} // namespace

extern "C" {

int32_t guestmem_generation(const guestmem_memory* mem, uint64_t* out, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out is NULL");
    *out = visit(mem, [](const auto& g, const auto&) { return g.generation(); });
    return succeed(err);
}

int32_t guestmem_snapshot_saved_size(const guestmem_memory* mem, size_t* out, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out is NULL");
    return visit(mem, [&](const auto& g, const auto&) {
        auto r = snapshot::saved_size(g);
        if (!r) return put(err, r.error());
        *out = r.value();
        return succeed(err);
    });
}

int32_t guestmem_snapshot_save(const guestmem_memory* mem, uint8_t* buf, size_t cap, size_t* written,
                               guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (buf == nullptr && cap > 0) return fail(err, errc::invalid_argument, no_page, "buf is NULL but cap is %zu", cap);
    static std::uint8_t none[1];
    return visit(mem, [&](const auto& g, const auto&) {
        auto r = snapshot::save(g, std::span<std::uint8_t>(buf != nullptr ? buf : none, cap));
        if (!r) return put(err, r.error());
        if (written != nullptr) *written = r.value();
        return succeed(err);
    });
}

int32_t guestmem_snapshot_save_to(const guestmem_memory* mem, guestmem_sink_fn fn, void* ctx, size_t* written,
                                  guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (fn == nullptr) return fail(err, errc::invalid_argument, no_page, "fn (the sink) is NULL");
    auto sink = [&](const std::uint8_t* p, std::size_t n) { return fn(ctx, p, n) == 0; };
    return visit(mem, [&](const auto& g, const auto&) {
        auto r = snapshot::save(g, sink);
        if (!r) return put(err, r.error());
        if (written != nullptr) *written = r.value();
        return succeed(err);
    });
}

int32_t guestmem_snapshot_check(const uint8_t* bytes, size_t len, guestmem_snapshot_header* out,
                                guestmem_error* err) {
    if (bytes == nullptr && len > 0) return null_bytes(err, len);
    if (out != nullptr)
        if (int32_t rc = check_output(out, "out", err)) return rc;
    auto h = snapshot::check(bytes_of(bytes, len));
    if (!h) return put(err, h.error());
    if (out != nullptr) {
        const snapshot::header& v = h.value();
        out->kind = static_cast<uint32_t>(v.kind);
        out->pages = v.pages;
        out->max_order = v.max_order;
        out->reserved0 = 0;
        out->generation = v.generation;
        out->base_generation = v.base_generation;
        out->body_offset = v.body_offset;
        out->body_size = v.body_size;
    }
    return succeed(err);
}

int32_t guestmem_snapshot_restore(guestmem_memory* mem, const uint8_t* bytes, size_t len, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (bytes == nullptr && len > 0) return null_bytes(err, len);
    return visit(mem, [&](auto& g, auto&) { return report(err, snapshot::restore(g, bytes_of(bytes, len))); });
}

int32_t guestmem_snapshot_for_each_change(const guestmem_memory* mem, uint64_t since, guestmem_run_fn fn, void* ctx,
                                          guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (fn == nullptr) return fail(err, errc::invalid_argument, no_page, "fn (the run callback) is NULL");
    bool stopped = false;
    return visit(mem, [&](const auto& g, const auto&) {
        return report(err, snapshot::for_each_change(g, since, [&](const auto& r) {
                          if (!stopped && fn(ctx, r.range.begin, r.range.end, static_cast<uint32_t>(r.value)) != 0)
                              stopped = true;
                      }));
    });
}

int32_t guestmem_snapshot_save_increment(const guestmem_memory* mem, uint64_t since, uint8_t* buf, size_t cap,
                                         size_t* needed, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (buf == nullptr && cap > 0) return fail(err, errc::invalid_argument, no_page, "buf is NULL but cap is %zu", cap);
    counting_sink sink{buf, cap};
    return visit(mem, [&](const auto& g, const auto&) {
        auto r = snapshot::save_increment(g, since, sink);
        if (!r) return put(err, r.error());
        if (needed != nullptr) *needed = r.value();
        if (r.value() > cap)
            return fail(err, errc::invalid_argument, no_page, "the increment needs %zu bytes; the buffer holds %zu",
                        r.value(), cap);
        return succeed(err);
    });
}

int32_t guestmem_snapshot_apply_increment(guestmem_memory* mem, const uint8_t* bytes, size_t len,
                                          guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (bytes == nullptr && len > 0) return null_bytes(err, len);
    return visit(mem, [&](auto& g, auto&) { return report(err, snapshot::apply_increment(g, bytes_of(bytes, len))); });
}

int32_t guestmem_snapshot_inspect(const uint8_t* bytes, size_t len, size_t max_items, guestmem_write_fn fn, void* ctx,
                                  guestmem_error* err) {
    if (fn == nullptr) return fail(err, errc::invalid_argument, no_page, "fn (the writer) is NULL");
    if (bytes == nullptr && len > 0) return null_bytes(err, len);
    callback_buf sb(fn, ctx);
    std::ostream os(&sb);
    return report(err, snapshot::inspect(bytes_of(bytes, len), os, max_items));
}

} // extern "C"
