// src/c/guestmem_c.cpp — the exported functions of libguestmem_c, one per
// declaration in include/guestmem/c/guestmem.h, in its order. Each checks
// what C can pass and C++ cannot receive (NULL, struct sizes, enumeration
// values), then calls the object's C++ member and reports its status.
#include "c_object.hpp"

#include <new>
#include <ostream>
#include <streambuf>

using namespace guestmem;
using namespace guestmem::c_abi;

namespace {

[[gnu::cold]] int32_t null_object(guestmem_error* err) noexcept {
    return fail(err, errc::invalid_argument, no_page, "the guestmem_memory handle is NULL");
}

/// The C++ member's result<T>: the value into *out, or the error.
template <class T, class U>
int32_t deliver(const result<T>& r, U* out, guestmem_error* err) noexcept {
    if (!r) return put(err, r.error());
    *out = static_cast<U>(r.value());
    return succeed(err);
}

/// guestmem_dump's sink: copy what fits into the caller's buffer, count all.
struct buffer_sink {
    char* buf;
    std::size_t cap;
    std::size_t len = 0;
    static void write(void* self, const char* data, std::size_t n) {
        auto* s = static_cast<buffer_sink*>(self);
        if (s->cap > 0 && s->len < s->cap - 1) {
            const std::size_t room = s->cap - 1 - s->len;
            std::memcpy(s->buf + s->len, data, n < room ? n : room);
        }
        s->len += n;
    }
};

} // namespace

extern "C" {

// ---- library ------------------------------------------------------------------

uint32_t guestmem_abi_version(void) { return GUESTMEM_ABI_VERSION; }

// Every GUESTMEM_ERR_* is its errc (codes pass through by value), up to the
// last one is_known_code() accepts.
static_assert(GUESTMEM_ERR_INVALID_RANGE == int(errc::invalid_range) && GUESTMEM_ERR_OUT_OF_MEMORY == int(errc::out_of_memory) &&
              GUESTMEM_ERR_BUSY == int(errc::busy) && GUESTMEM_ERR_VETOED == int(errc::vetoed) &&
              GUESTMEM_ERR_POISONED == int(errc::poisoned) && GUESTMEM_ERR_NOT_ALLOCATED == int(errc::not_allocated) &&
              GUESTMEM_ERR_PERMISSION_DENIED == int(errc::permission_denied) &&
              GUESTMEM_ERR_NOT_SUPPORTED == int(errc::not_supported) &&
              GUESTMEM_ERR_INVALID_ARGUMENT == int(errc::invalid_argument) &&
              GUESTMEM_ERR_ALREADY_BOUND == int(errc::already_bound) && GUESTMEM_ERR_NOT_BOUND == int(errc::not_bound) &&
              GUESTMEM_ERR_RETRY == int(errc::retry) && GUESTMEM_ERR_WOULD_DEADLOCK == int(errc::would_deadlock));

const char* guestmem_errc_name(int32_t code) {
    if (code == GUESTMEM_OK) return "ok";
    // to_string returns views of string literals: NUL-terminated.
    return to_string(static_cast<errc>(code)).data();
}

// ---- lifetime -----------------------------------------------------------------

int32_t guestmem_create(const guestmem_config* cfg, guestmem_memory** out, guestmem_error* err) {
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out (where the object goes) is NULL");
    *out = nullptr;
    if (int32_t rc = check_config(cfg, err)) return rc;
    return create(*cfg, out, err);
}

void guestmem_destroy(guestmem_memory* mem) { release(mem); }

int32_t guestmem_get_info(const guestmem_memory* mem, guestmem_info* out, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (int32_t rc = check_output(out, "out", err)) return rc;
    visit(mem, [&](const auto& g, const auto& alloc) {
        out->allocator = mem->kind;
        out->pages = g.size();
        out->max_order = g.max_order();
        if constexpr (std::is_base_of_v<fd_backing, std::decay_t<decltype(alloc)>>) {
            out->fd = alloc.fd();
            out->data = alloc.data();
            out->bytes = alloc.bytes();
        } else {
            out->fd = -1;
            out->data = nullptr;
            out->bytes = 0;
        }
    });
    return succeed(err);
}

// ---- population ---------------------------------------------------------------

int32_t guestmem_allocate(guestmem_memory* mem, uint64_t begin, uint64_t end, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    return visit(mem, [&](auto& g, auto&) { return report(err, g.allocate({begin, end})); });
}

int32_t guestmem_punch_hole(guestmem_memory* mem, uint64_t begin, uint64_t end, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    return visit(mem, [&](auto& g, auto&) { return report(err, g.punch_hole({begin, end})); });
}

int32_t guestmem_release_quarantine(guestmem_memory* mem, uint64_t begin, uint64_t end, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    return visit(mem, [&](auto& g, auto&) { return report(err, g.release_quarantine({begin, end})); });
}

// ---- conversion ---------------------------------------------------------------

// Flattened for the same reason as guestmem_fault below: the conversion
// path inlined as it is into a C++ caller.
[[gnu::flatten]] int32_t guestmem_convert(guestmem_memory* mem, uint64_t begin, uint64_t end, uint32_t to,
                         const guestmem_convert_options* opts, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    convert_options o;
    if (int32_t rc = read_convert_options(opts, begin, o, err)) return rc;
    // Likewise for `to`: the C++ side refuses 0xff as not shared or guest_only.
    const auto share = to > 0xff ? static_cast<shareability>(0xff) : static_cast<shareability>(to);
    return visit(mem, [&](auto& g, auto&) { return report(err, g.convert({begin, end}, share, o)); });
}

// ---- faults ---------------------------------------------------------------------

// guestmem_fault: in c_fault.cpp.

uint64_t guestmem_read_begin(const guestmem_binding* binding) {
    return binding != nullptr ? binding->slot.sequence() : 1;
}

int guestmem_read_retry(const guestmem_binding* binding, uint64_t seq) {
    if (binding == nullptr) return 1;
    return (seq & 1) != 0 || binding->slot.sequence() != seq;
}

// ---- unexpected references ----------------------------------------------------

int32_t guestmem_pin(guestmem_memory* mem, uint64_t begin, uint64_t end, uint32_t who, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    const auto a = who > 0xff ? static_cast<accessor>(0xff) : static_cast<accessor>(who);
    return visit(mem, [&](auto& g, auto&) { return report(err, g.pin({begin, end}, a)); });
}

int32_t guestmem_unpin(guestmem_memory* mem, uint64_t begin, uint64_t end, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    return visit(mem, [&](auto& g, auto&) { return report(err, g.unpin({begin, end})); });
}

// ---- memory failure -----------------------------------------------------------

int32_t guestmem_memory_failure(guestmem_memory* mem, uint64_t page, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    return visit(mem, [&](auto& g, auto&) { return report(err, g.memory_failure(page)); });
}

// ---- consumers ----------------------------------------------------------------

int32_t guestmem_bind(guestmem_memory* mem, const guestmem_consumer_ops* ops, void* ctx, uint64_t begin,
                      uint64_t end, uint64_t target_base, uint64_t* id_out, guestmem_binding** binding_out,
                      guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (int32_t rc = check_ops(ops, err)) return rc;
    std::lock_guard guard(mem->lists);
    c_consumer* owner = mem->consumers;
    while (owner != nullptr && !owner->same(*ops, ctx)) owner = owner->next;
    const bool fresh = owner == nullptr;
    if (fresh) {
        owner = new (std::nothrow) c_consumer(*ops, ctx);
        if (owner == nullptr) return fail(err, errc::out_of_memory, begin, "no memory for the consumer");
    }
    auto* b = new (std::nothrow) guestmem_binding;
    if (b == nullptr) {
        if (fresh) delete owner;
        return fail(err, errc::out_of_memory, begin, "no memory for the binding");
    }
    auto r = visit(mem, [&](auto& g, auto&) { return g.bind(b->slot, *owner, {begin, end}, target_base); });
    if (!r) {
        delete b;
        if (fresh) delete owner;
        return put(err, r.error());
    }
    adopt(mem, b, owner, fresh);
    if (id_out != nullptr) *id_out = r.value().id;
    if (binding_out != nullptr) *binding_out = b;
    return succeed(err);
}

int32_t guestmem_unbind(guestmem_memory* mem, uint64_t binding_id, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    std::lock_guard guard(mem->lists);
    guestmem_binding** link = &mem->bindings;
    while (*link != nullptr && (*link)->slot.id() != binding_id) link = &(*link)->next;
    // An id of no binding here goes to the C++ unbind too, for its not_bound.
    auto s = visit(mem, [&](auto& g, auto&) { return g.unbind(binding_handle{binding_id}); });
    if (!s) return put(err, s.error());
    if (guestmem_binding* b = *link) {
        *link = b->next;
        c_consumer* owner = b->owner;
        delete b;
        if (--owner->bindings == 0) {
            c_consumer** c = &mem->consumers;
            while (*c != owner) c = &(*c)->next;
            *c = owner->next;
            delete owner;
        }
    }
    return succeed(err);
}

uint64_t guestmem_binding_id(const guestmem_binding* binding) { return binding != nullptr ? binding->slot.id() : 0; }

void guestmem_report_leaked(guestmem_commit_report* report, uint64_t page, uint64_t binding_id) {
    if (report != nullptr) reinterpret_cast<commit_report*>(report)->leaked(page, binding_id);
}

void guestmem_report_poisoned(guestmem_commit_report* report, uint64_t page, uint64_t binding_id) {
    if (report != nullptr) reinterpret_cast<commit_report*>(report)->poisoned(page, binding_id);
}

// ---- queries ------------------------------------------------------------------

int32_t guestmem_shareability_at(const guestmem_memory* mem, uint64_t page, uint32_t* out, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out is NULL");
    return visit(mem, [&](const auto& g, const auto&) { return deliver(g.shareability_at(page), out, err); });
}

int32_t guestmem_mappability_at(const guestmem_memory* mem, uint64_t page, uint32_t* out, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out is NULL");
    return visit(mem, [&](const auto& g, const auto&) { return deliver(g.mappability_at(page), out, err); });
}

int32_t guestmem_pins(const guestmem_memory* mem, uint64_t page, uint32_t* out, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out is NULL");
    *out = visit(mem, [&](const auto& g, const auto&) { return g.pins(page); });
    return succeed(err);
}

int32_t guestmem_runs(const guestmem_memory* mem, uint64_t begin, uint64_t end, guestmem_run_fn fn, void* ctx,
                      guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (fn == nullptr) return fail(err, errc::invalid_argument, no_page, "fn (the run callback) is NULL");
    return visit(mem, [&](const auto& g, const auto&) {
        const auto guard = g.lock_shared();
        auto view = g.locked(guard).runs({begin, end});
        if (!view) return put(err, view.error());
        for (const auto& run : view.value())
            if (fn(ctx, run.range.begin, run.range.end, static_cast<uint32_t>(run.value)) != 0) break;
        return succeed(err);
    });
}

int32_t guestmem_get_stats(const guestmem_memory* mem, guestmem_stats* out, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (int32_t rc = check_output(out, "out", err)) return rc;
    write_stats(visit(mem, [&](const auto& g, const auto&) { return g.stats(); }), out);
    return succeed(err);
}

int32_t guestmem_dump(const guestmem_memory* mem, char* buf, size_t cap, size_t* needed, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (buf == nullptr && cap > 0) return fail(err, errc::invalid_argument, no_page, "buf is NULL but cap is %zu", cap);
    buffer_sink sink{buf, cap};
    if (int32_t rc = guestmem_dump_to(mem, &buffer_sink::write, &sink, err)) return rc;
    if (cap > 0) buf[sink.len < cap - 1 ? sink.len : cap - 1] = '\0';
    if (needed != nullptr) *needed = sink.len + 1;
    return succeed(err);
}

int32_t guestmem_dump_to(const guestmem_memory* mem, guestmem_write_fn fn, void* ctx, guestmem_error* err) {
    if (mem == nullptr) return null_object(err);
    if (fn == nullptr) return fail(err, errc::invalid_argument, no_page, "fn (the writer) is NULL");
    callback_buf sb(fn, ctx);
    std::ostream os(&sb);
    visit(mem, [&](const auto& g, const auto&) { g.dump(os); });
    return succeed(err);
}

} // extern "C"
