// src/c/c_object.cpp — the C ABI's object and consumers: creating an object
// over the allocator a guestmem_config names, freeing the wrapper's lists,
// and turning C++ invalidations into C callbacks (and a C consumer's answer,
// whatever it is, into a defined C++ status).
#include "c_object.hpp"

#include <new>

namespace guestmem::c_abi {

status c_consumer::refusal(const invalidation& inv, int32_t code, guestmem_error& why) noexcept {
    // Whatever the callback did to `why`, read it as a bounded string.
    why.message[sizeof why.message - 1] = '\0';
    if (!is_known_code(code))
        return error::make(errc::vetoed, inv.pages.begin,
                           "prepare returned %" PRId32 ", which is not a guestmem error code; taken as a veto", code);
    return error::make(static_cast<errc>(code), why.page, "%s", why.message[0] != '\0' ? why.message : "refused");
}

c_consumer::c_consumer(const guestmem_consumer_ops& ops, void* ctx) noexcept
    : prepare_(ops.prepare), commit_(ops.commit), abort_(ops.abort), memory_failure_(ops.memory_failure), ctx_(ctx) {
    const char* n = ops.name != nullptr ? ops.name : "consumer";
    std::size_t len = 0;
    while (len + 1 < sizeof name_ && n[len] != '\0') ++len;
    std::memcpy(name_, n, len);
    name_[len] = '\0';
}

void c_consumer::abort(const invalidation& inv) noexcept {
    if (abort_ == nullptr) return;
    const guestmem_invalidation c = to_c(inv);
    abort_(ctx_, &c);
}

void c_consumer::memory_failure(const invalidation& inv) noexcept {
    if (memory_failure_ == nullptr) return;
    const guestmem_invalidation c = to_c(inv);
    memory_failure_(ctx_, &c);
}

namespace {

template <class A>
int32_t make_object(std::uint32_t kind, A&& alloc, const guest_memory_config& cfg, guestmem_memory** out,
                     guestmem_error* err) noexcept {
    if (auto s = guest_memory<A, c_consumer>::check_config(alloc, cfg); !s) return put(err, s.error());
    auto* o = new (std::nothrow) object<A>(kind, std::move(alloc), cfg);
    if (o == nullptr) return fail(err, errc::out_of_memory, no_page, "no memory for the object");
    *out = o;
    return succeed(err);
}

} // namespace

int32_t create(const guestmem_config& cfg, guestmem_memory** out, guestmem_error* err) noexcept {
    const guest_memory_config c{.pages = cfg.pages,
                                .initial = static_cast<shareability>(cfg.initial),
                                .max_order = static_cast<folio_order>(cfg.max_order)};
    switch (cfg.allocator) {
    case GUESTMEM_ALLOC_SIMULATED:
        return make_object(cfg.allocator,
                           simulated_allocator(cfg.simulated_capacity == 0 ? UINT64_MAX : cfg.simulated_capacity),
                           c, out, err);
    case GUESTMEM_ALLOC_MEMFD: {
        auto a = memfd_allocator::create(cfg.pages, c.max_order, "guestmem");
        if (!a) return put(err, a.error());
        return make_object(cfg.allocator, std::move(a).value(), c, out, err);
    }
    case GUESTMEM_ALLOC_GUEST_MEMFD: {
        auto a = guest_memfd_allocator::create(cfg.vm_fd, cfg.pages * page_size, c.max_order,
                                               cfg.guest_memfd_flags != 0 ? cfg.guest_memfd_flags
                                                                          : default_guest_memfd_flags);
        if (!a) return put(err, a.error());
        return make_object(cfg.allocator, std::move(a).value(), c, out, err);
    }
    default:
        return fail(err, errc::invalid_argument, no_page,
                    "allocator %u is not simulated (0), memfd (1) or guest_memfd (2)", unsigned{cfg.allocator});
    }
}

} // namespace guestmem::c_abi

guestmem_memory::~guestmem_memory() {
    // The derived object's guest_memory is gone: it released every binding.
    while (bindings != nullptr) {
        guestmem_binding* b = bindings;
        bindings = b->next;
        delete b;
    }
    while (consumers != nullptr) {
        guestmem::c_abi::c_consumer* c = consumers;
        consumers = c->next;
        delete c;
    }
}
