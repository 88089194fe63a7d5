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

c_consumer::c_consumer(consumer* inner, std::uint8_t tag, void* payload, void (*drop)(void*)) noexcept
    : prepare_(nullptr), commit_(nullptr), abort_(nullptr), memory_failure_(nullptr), ctx_(nullptr), inner_(inner),
      payload_(payload), drop_(drop), tag_(tag) {
    name_[0] = '\0';
}

c_consumer::~c_consumer() {
    if (drop_ != nullptr) drop_(payload_);
}

status c_consumer::populate(const invalidation& inv) {
    if (populate_ == nullptr) return inner_ != nullptr ? inner_->populate(inv) : ok();
    const guestmem_invalidation c = to_c(inv);
    guestmem_error why = refusal_template(inv);
    const int32_t code = populate_(ctx_, &c, &why);
    if (code == GUESTMEM_OK) return ok();
    return refusal(inv, code, why);
}

c_consumer::c_consumer(const guestmem_consumer_ops& ops, void* ctx) noexcept
    : prepare_(ops.prepare), commit_(ops.commit), abort_(ops.abort), memory_failure_(ops.memory_failure),
      populate_(populate_of(ops)), ctx_(ctx) {
    const char* n = ops.name != nullptr ? ops.name : "consumer";
    std::size_t len = 0;
    while (len + 1 < sizeof name_ && n[len] != '\0') ++len;
    std::memcpy(name_, n, len);
    name_[len] = '\0';
}

void c_consumer::abort(const invalidation& inv) noexcept {
    if (abort_ == nullptr) {
        if (inner_ != nullptr) inner_->abort(inv);
        return;
    }
    const guestmem_invalidation c = to_c(inv);
    abort_(ctx_, &c);
}

void c_consumer::memory_failure(const invalidation& inv) noexcept {
    if (memory_failure_ == nullptr) {
        if (inner_ != nullptr) inner_->memory_failure(inv);
        return;
    }
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
    return with_allocator(cfg, err, [&](auto&& alloc) {
        return make_object(cfg.allocator, std::move(alloc), cxx_config(cfg), out, err);
    });
}

int32_t check_config(const guestmem_config* cfg, guestmem_error* err) noexcept {
    if (int32_t rc = check_input(cfg, "cfg", err)) return rc;
    if (cfg->reserved0 != 0 || !tail_is_zero(cfg->reserved, sizeof cfg->reserved, 0))
        return fail(err, errc::invalid_argument, no_page, "cfg's reserved fields must be 0");
    if (cfg->pages == 0) return fail(err, errc::invalid_argument, no_page, "an object of 0 pages holds nothing");
    if (cfg->initial != GUESTMEM_SHARED && cfg->initial != GUESTMEM_GUEST_ONLY)
        return fail(err, errc::invalid_argument, no_page, "initial shareability %u is not shared (0) or guest_only (1)",
                    unsigned{cfg->initial});
    if (cfg->max_order != GUESTMEM_ORDER_4K && cfg->max_order != GUESTMEM_ORDER_2M && cfg->max_order != GUESTMEM_ORDER_1G)
        return fail(err, errc::invalid_argument, no_page, "folio order %u is not 0, 9 or 18", unsigned{cfg->max_order});
    if (cfg->allocator != GUESTMEM_ALLOC_SIMULATED && cfg->allocator != GUESTMEM_ALLOC_MEMFD &&
        cfg->allocator != GUESTMEM_ALLOC_GUEST_MEMFD)
        return fail(err, errc::invalid_argument, no_page,
                    "allocator %u is not simulated (0), memfd (1) or guest_memfd (2)", unsigned{cfg->allocator});
    if (cfg->allocator != GUESTMEM_ALLOC_SIMULATED && cfg->pages > (std::uint64_t{1} << (63 - page_shift)))
        return fail(err, errc::invalid_argument, no_page, "%#" PRIx64 " pages is past the largest file (2^63 bytes)",
                    cfg->pages);
    if (cfg->allocator == GUESTMEM_ALLOC_GUEST_MEMFD && cfg->vm_fd < 0)
        return fail(err, errc::invalid_argument, no_page, "guest_memfd needs a KVM VM fd; vm_fd is %d", int{cfg->vm_fd});
    return GUESTMEM_OK;
}

void adopt(guestmem_memory* mem, guestmem_binding* b, c_consumer* owner, bool fresh) noexcept {
    if (fresh) {
        owner->next = mem->consumers;
        mem->consumers = owner;
    }
    ++owner->bindings;
    b->owner = owner;
    b->next = mem->bindings;
    mem->bindings = b;
}

int32_t check_ops(const guestmem_consumer_ops* ops, guestmem_error* err) noexcept {
    // ABI 0.1's table ends at `name`: a caller built against it passes that size.
    constexpr std::size_t v1 = offsetof(guestmem_consumer_ops, name) + sizeof(ops->name);
    if (ops == nullptr) return fail(err, errc::invalid_argument, no_page, "ops is NULL");
    if (ops->size < v1)
        return fail(err, errc::invalid_argument, no_page, "ops->size is %u; this ABI's struct has at least %zu bytes",
                    unsigned{ops->size}, v1);
    if (ops->size > sizeof *ops && !tail_is_zero(ops, ops->size, sizeof *ops))
        return fail(err, errc::not_supported, no_page,
                    "ops sets fields past the %zu bytes this library knows (size %u): a newer ABI's", sizeof *ops,
                    unsigned{ops->size});
    if (ops->reserved0 != 0) return fail(err, errc::invalid_argument, no_page, "ops->reserved0 must be 0");
    return GUESTMEM_OK;
}

} // namespace guestmem::c_abi

guestmem_memory::~guestmem_memory() {
    // The derived object's guest_memory is gone: it released every binding
    // and no longer tells the unblock notifier anything.
    delete unblock;
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

guestmem::page_index guestmem_memory::size() const noexcept {
    return guestmem::c_abi::visit(this, [](const auto& g, const auto&) { return g.size(); });
}

guestmem::status guestmem_memory::convert(guestmem::page_range r, guestmem::shareability to,
                                          guestmem::convert_options o) {
    return guestmem::c_abi::visit(this, [&](auto& g, auto&) { return g.convert(r, to, o); });
}
