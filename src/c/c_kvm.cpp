// src/c/c_kvm.cpp — the C ABI of the KVM layer (include/guestmem/c/guestmem_kvm.h):
// a gpa_map over guestmem_memory objects (which give it size() and
// convert() over their allocator kind), the exit router over it, and the
// KVM consumers, each wrapped in a forwarding c_consumer so it can bind to
// an object whose notifier calls c_consumer directly.
#include "c_object.hpp"

#include <guestmem/kvm/attributes_consumer.hpp>
#include <guestmem/kvm/discard_consumer.hpp>
#include <guestmem/kvm/exit_router.hpp>
#include <guestmem/kvm/gpa_map.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <new>

using namespace guestmem;
using namespace guestmem::c_abi;

namespace {
using c_gpa_map = gpa_map<guestmem_memory>;
using c_router = exit_router<guestmem_memory>;
} // namespace

/// The map and its references: the caller's plus one per router.
struct guestmem_gpa_map {
    c_gpa_map map;
    std::atomic<std::uint32_t> refs{1};
    ~guestmem_gpa_map() {
        for (const auto& s : map) release(s.memory);
    }
};

/// The router, its map's reference, the C log sink and the C clock.
struct guestmem_exit_router {
    guestmem_exit_router(guestmem_gpa_map* m, guestmem_log_fn fn, void* ctx, const router_options& o,
                         guestmem_clock_fn clock, void* clock_ctx) noexcept
        : map(m), log(fn), log_ctx(ctx), now(clock), now_ctx(clock_ctx),
          router(m->map, fn != nullptr ? &forward : nullptr, this, with_clock(o, clock)) {}
    static void forward(void* self, std::string_view line) {
        auto* r = static_cast<guestmem_exit_router*>(self);
        r->log(r->log_ctx, line.data(), line.size());
    }
    /// The C++ router's clock takes no context: the router being called on
    /// this thread is in `current` (set by clock_scope) for the C clock's.
    static inline thread_local const guestmem_exit_router* current = nullptr;
    static std::uint64_t tick() noexcept { return current->now(current->now_ctx); }
    static router_options with_clock(router_options o, guestmem_clock_fn clock) noexcept {
        o.now_ns = clock != nullptr ? &tick : nullptr;
        return o;
    }
    guestmem_gpa_map* map;
    guestmem_log_fn log;
    void* log_ctx;
    guestmem_clock_fn now;
    void* now_ctx;
    c_router router;
};

namespace {

void drop(guestmem_gpa_map* m) noexcept {
    if (m->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete m;
}

[[gnu::cold]] int32_t null_handle(guestmem_error* err, const char* what) noexcept {
    return fail(err, errc::invalid_argument, no_page, "the %s handle is NULL", what);
}

/// ABI 0.2's guestmem_exit_outcome: size, disposition, hypercall_ret (no wait_fd).
constexpr std::uint32_t outcome_v02_size = offsetof(guestmem_exit_outcome, wait_fd);

/// The router's outcome for C: disposition and guest value out (wait_fd
/// where the caller's struct has it), why's code back.
int32_t deliver(const exit_outcome& o, guestmem_exit_outcome* out, guestmem_error* err) noexcept {
    static_assert(GUESTMEM_EXIT_RESUME == int(exit_disposition::resume) &&
                  GUESTMEM_EXIT_FAILED == int(exit_disposition::failed) &&
                  GUESTMEM_EXIT_NOT_MINE == int(exit_disposition::not_mine) &&
                  GUESTMEM_EXIT_RETRY_LATER == int(exit_disposition::retry_later));
    out->disposition = static_cast<uint32_t>(o.disposition);
    out->hypercall_ret = o.hypercall_ret;
    if (out->size >= sizeof *out) {
        out->wait_fd = o.disposition == exit_disposition::retry_later ? o.wait_fd : -1;
        out->reserved0 = 0;
    }
    return report(err, o.why);
}

/// Refuse the router call's own arguments, with disposition failed when out
/// is usable (an ABI 0.2 outcome, without wait_fd, still is).
int32_t router_args(const guestmem_exit_router* r, const void* run, guestmem_exit_outcome* out,
                    guestmem_error* err) noexcept {
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out is NULL");
    if (out->size < outcome_v02_size)
        return fail(err, errc::invalid_argument, no_page, "out->size is %u; this ABI's struct has %zu bytes",
                    unsigned{out->size}, sizeof *out);
    out->disposition = GUESTMEM_EXIT_FAILED;
    out->hypercall_ret = 0;
    if (out->size >= sizeof *out) {
        out->wait_fd = -1;
        out->reserved0 = 0;
    }
    if (r == nullptr) return null_handle(err, "guestmem_exit_router");
    if (run == nullptr) return fail(err, errc::invalid_argument, no_page, "run is NULL");
    return GUESTMEM_OK;
}

/// A C vCPU retry state into `s`. 0 when valid.
int32_t read_vcpu(const guestmem_vcpu_retry* v, retry_state& s, guestmem_error* err) noexcept {
    if (v == nullptr) return fail(err, errc::invalid_argument, no_page, "vcpu (the retry state) is NULL");
    if (v->size < sizeof *v)
        return fail(err, errc::invalid_argument, no_page, "vcpu->size is %u; this ABI's struct has %zu bytes",
                    unsigned{v->size}, sizeof *v);
    if (v->pending > 1 || !tail_is_zero(v->reserved, sizeof v->reserved, 0))
        return fail(err, errc::invalid_argument, no_page, "vcpu: pending %u must be 0 or 1 and the reserved bytes 0",
                    unsigned{v->pending});
    s = retry_state{v->pending != 0, v->exit_reason, v->args[0], v->args[1], v->args[2], v->since_ns, v->attempts};
    return GUESTMEM_OK;
}

void write_vcpu(const retry_state& s, guestmem_vcpu_retry* v) noexcept {
    v->pending = s.pending ? 1 : 0;
    v->exit_reason = s.exit_reason;
    v->args[0] = s.a;
    v->args[1] = s.b;
    v->args[2] = s.c;
    v->since_ns = s.since_ns;
    v->attempts = s.attempts;
}

/// Makes `r` the router whose C clock this thread's calls read.
struct clock_scope {
    explicit clock_scope(const guestmem_exit_router* r) noexcept : prev(guestmem_exit_router::current) {
        guestmem_exit_router::current = r;
    }
    ~clock_scope() { guestmem_exit_router::current = prev; }
    clock_scope(const clock_scope&) = delete;
    clock_scope& operator=(const clock_scope&) = delete;
    const guestmem_exit_router* prev;
};

/// An unblock notifier signalling an eventfd it does not own.
class borrowed_eventfd final : public unblock_notifier {
public:
    explicit borrowed_eventfd(int fd) noexcept : fd_(fd) {}
    void unblocked(page_range) noexcept override {
        const std::uint64_t one = 1;
        ssize_t n;
        do n = ::write(fd_, &one, sizeof one);
        while (n < 0 && errno == EINTR);  // EAGAIN: the counter is full, so already readable
    }

private:
    int fd_;
};

int32_t create_router(guestmem_gpa_map* map, const guestmem_exit_router_config* cfg,
                      const guestmem_router_retry_options* retry, bool v02, guestmem_exit_router** out,
                      guestmem_error* err) noexcept {
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out (where the router goes) is NULL");
    *out = nullptr;
    if (map == nullptr) return null_handle(err, "guestmem_gpa_map");
    router_options o;
    guestmem_log_fn log = nullptr;
    void* log_ctx = nullptr;
    guestmem_clock_fn clock = nullptr;
    void* clock_ctx = nullptr;
    if (cfg != nullptr) {
        if (int32_t rc = check_input(cfg, "cfg", err)) return rc;
        if (cfg->defer_if_pinned > 1 || !tail_is_zero(cfg->reserved, sizeof cfg->reserved, 0))
            return fail(err, errc::invalid_argument, no_page, "cfg: defer_if_pinned must be 0 or 1 and the reserved bytes 0");
        o.convert.defer_if_pinned = cfg->defer_if_pinned != 0;
        log = cfg->log;
        log_ctx = cfg->log_ctx;
    }
    if (v02) o.retries = retry_policy::guest_retries;
    if (retry != nullptr) {
        if (int32_t rc = check_input(retry, "retry", err)) return rc;
        if (retry->policy > GUESTMEM_GUEST_RETRIES || retry->reserved0 != 0 || retry->wait_fd < -1)
            return fail(err, errc::invalid_argument, no_page,
                        "retry: policy %u must be 0 or 1, wait_fd %d -1 or an fd, and reserved0 0",
                        unsigned{retry->policy}, int{retry->wait_fd});
        o.retries = retry->policy == GUESTMEM_GUEST_RETRIES ? retry_policy::guest_retries : retry_policy::vmm_retries;
        if (retry->retry_limit_ns != 0) o.retry_limit_ns = retry->retry_limit_ns;
        o.wait_fd = retry->wait_fd;
        clock = retry->now_ns;
        clock_ctx = retry->now_ctx;
    }
    auto* r = new (std::nothrow) guestmem_exit_router(map, log, log_ctx, o, clock, clock_ctx);
    if (r == nullptr) return fail(err, errc::out_of_memory, no_page, "no memory for the exit router");
    map->refs.fetch_add(1, std::memory_order_relaxed);
    *out = r;
    return succeed(err);
}

/// What a KVM consumer's attach() takes for the object: it binds the
/// consumer's forwarding c_consumer into the object, and reads the
/// object's shareability for it (a consumer may keep a pointer to it to
/// read runs later: it lives beside the consumer, as long as it).
struct memory_shim {
    using binding_type = binding<c_consumer>;
    using runs_type = decltype(std::declval<const guest_memory<simulated_allocator, c_consumer>&>().runs_in_callback({}));
    guestmem_memory* mem = nullptr;
    c_consumer* wrapper = nullptr;
    result<binding_handle> bind(binding_type& slot, consumer&, page_range pages, std::uint64_t target,
                                binding_class cls = binding_class::ordinary) {
        return visit(mem, [&](auto& g, auto&) { return g.bind(slot, *wrapper, pages, target, cls); });
    }
    [[nodiscard]] page_index size() const { return mem->size(); }
    [[nodiscard]] result<shareability> shareability_at(page_index p) const {
        return visit(static_cast<const guestmem_memory*>(mem), [&](const auto& g, const auto&) { return g.shareability_at(p); });
    }
    [[nodiscard]] runs_type runs_in_callback(page_range r) const {
        return visit(static_cast<const guestmem_memory*>(mem),
                     [&](const auto& g, const auto&) -> runs_type { return g.runs_in_callback(r); });
    }
};

/// A KVM consumer and the object shim it was attached through, freed together.
template <class C>
struct kvm_pack {
    template <class... Args>
    explicit kvm_pack(Args&&... args) noexcept : consumer(std::forward<Args>(args)...) {}
    memory_shim shim;
    C consumer;
    static void drop(void* p) noexcept { delete static_cast<kvm_pack*>(p); }
};

/// Attach the consumer of `pack` (new'd; taken over) of kind `tag` to `mem`
/// with attach(consumer, shim, slot): on success the binding is the object's.
template <class C, class Attach>
int32_t attach_cxx(guestmem_memory* mem, kvm_pack<C>* pack, std::uint8_t tag, uint64_t begin, uint64_t* id_out,
                   guestmem_error* err, Attach&& attach) noexcept {
    if (pack == nullptr) return fail(err, errc::out_of_memory, begin, "no memory for the consumer");
    auto* owner = new (std::nothrow) c_consumer(&pack->consumer, tag, pack, &kvm_pack<C>::drop);
    if (owner == nullptr) {
        delete pack;
        return fail(err, errc::out_of_memory, begin, "no memory for the consumer");
    }
    auto* b = new (std::nothrow) guestmem_binding;
    if (b == nullptr) {
        delete owner;
        return fail(err, errc::out_of_memory, begin, "no memory for the binding");
    }
    pack->shim = {mem, owner};
    std::lock_guard guard(mem->lists);
    auto r = attach(pack->consumer, pack->shim, b->slot);
    if (!r) {
        delete b;
        delete owner;
        return put(err, r.error());
    }
    adopt(mem, b, owner, true);
    if (id_out != nullptr) *id_out = r.value().id;
    return succeed(err);
}

/// The forwarding consumer of kind `tag` behind binding `id`, or nullptr.
/// The caller holds mem->lists.
consumer* find_inner(const guestmem_memory* mem, uint64_t id, std::uint8_t tag) noexcept {
    for (const guestmem_binding* b = mem->bindings; b != nullptr; b = b->next)
        if (b->slot.id() == id) return b->owner->tag() == tag ? b->owner->inner() : nullptr;
    return nullptr;
}

} // namespace

extern "C" {

// ---- GPA map ----------------------------------------------------------------------

int32_t guestmem_gpa_map_create(guestmem_gpa_map** out, guestmem_error* err) {
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out (where the map goes) is NULL");
    *out = new (std::nothrow) guestmem_gpa_map;
    if (*out == nullptr) return fail(err, errc::out_of_memory, no_page, "no memory for the GPA map");
    return succeed(err);
}

void guestmem_gpa_map_destroy(guestmem_gpa_map* map) {
    if (map != nullptr) drop(map);
}

int32_t guestmem_gpa_map_add_slot(guestmem_gpa_map* map, uint32_t id, uint64_t gpa, uint64_t pages,
                                  guestmem_memory* mem, uint64_t first, guestmem_error* err) {
    if (map == nullptr) return null_handle(err, "guestmem_gpa_map");
    if (mem == nullptr) return null_handle(err, "guestmem_memory");
    if (auto s = map->map.add_slot(id, gpa, pages, *mem, first); !s) return put(err, s.error());
    retain(mem);
    return succeed(err);
}

int32_t guestmem_gpa_map_remove_slot(guestmem_gpa_map* map, uint32_t id, guestmem_error* err) {
    if (map == nullptr) return null_handle(err, "guestmem_gpa_map");
    const auto* slot = map->map.find_slot(id);
    guestmem_memory* mem = slot != nullptr ? slot->memory : nullptr;
    if (auto s = map->map.remove_slot(id); !s) return put(err, s.error());
    release(mem);
    return succeed(err);
}

int32_t guestmem_gpa_map_find(const guestmem_gpa_map* map, uint64_t gpa, guestmem_gpa_slot* out, guestmem_error* err) {
    if (map == nullptr) return null_handle(err, "guestmem_gpa_map");
    if (int32_t rc = check_output(out, "out", err)) return rc;
    const auto* s = map->map.find(gpa);
    if (s == nullptr)
        return fail(err, errc::invalid_range, gpa >> page_shift, "GPA %#" PRIx64 " is in no slot", gpa);
    out->id = s->id;
    out->gpa = s->gpa();
    out->pages = s->frames.size();
    out->memory = s->memory;
    out->first = s->first;
    return succeed(err);
}

uint32_t guestmem_gpa_map_slots(const guestmem_gpa_map* map) {
    return map != nullptr ? static_cast<uint32_t>(map->map.size()) : 0;
}

int32_t guestmem_gpa_map_convert(guestmem_gpa_map* map, uint64_t gpa, uint64_t pages, uint32_t to,
                                 const guestmem_convert_options* opts, guestmem_error* err) {
    if (map == nullptr) return null_handle(err, "guestmem_gpa_map");
    convert_options o;
    if (int32_t rc = read_convert_options(opts, gpa >> page_shift, o, err)) return rc;
    if (to > GUESTMEM_GUEST_ONLY)
        return fail(err, errc::invalid_argument, gpa >> page_shift, "shareability %u is not shared (0) or guest_only (1)",
                    unsigned{to});
    return report(err, map->map.convert(gpa, pages, static_cast<shareability>(to), o));
}

// ---- exit router ------------------------------------------------------------------

int32_t guestmem_exit_router_create(guestmem_gpa_map* map, const guestmem_exit_router_config* cfg,
                                    guestmem_exit_router** out, guestmem_error* err) {
    return create_router(map, cfg, nullptr, true, out, err);
}

int32_t guestmem_exit_router_create_with_retry(guestmem_gpa_map* map, const guestmem_exit_router_config* cfg,
                                               const guestmem_router_retry_options* retry,
                                               guestmem_exit_router** out, guestmem_error* err) {
    return create_router(map, cfg, retry, false, out, err);
}

int32_t guestmem_exit_router_retry_policy(const guestmem_exit_router* router, uint32_t* out, guestmem_error* err) {
    if (router == nullptr) return null_handle(err, "guestmem_exit_router");
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out is NULL");
    *out = router->router.retries() == retry_policy::guest_retries ? GUESTMEM_GUEST_RETRIES : GUESTMEM_VMM_RETRIES;
    return succeed(err);
}

void guestmem_exit_router_destroy(guestmem_exit_router* router) {
    if (router == nullptr) return;
    guestmem_gpa_map* map = router->map;
    delete router;
    drop(map);
}

int32_t guestmem_exit_router_handle(guestmem_exit_router* router, struct kvm_run* run, guestmem_exit_outcome* out,
                                    guestmem_error* err) {
    if (int32_t rc = router_args(router, run, out, err)) return rc;
    clock_scope scope(router);
    return deliver(router->router.handle(*run), out, err);
}

int32_t guestmem_exit_router_handle_retry(guestmem_exit_router* router, struct kvm_run* run, guestmem_vcpu_retry* vcpu,
                                          guestmem_exit_outcome* out, guestmem_error* err) {
    if (int32_t rc = router_args(router, run, out, err)) return rc;
    retry_state st;
    if (int32_t rc = read_vcpu(vcpu, st, err)) return rc;
    clock_scope scope(router);
    const exit_outcome o = router->router.handle(*run, st);
    write_vcpu(st, vcpu);
    return deliver(o, out, err);
}

int32_t guestmem_exit_router_memory_fault(guestmem_exit_router* router, uint64_t gpa, uint64_t size, uint64_t flags,
                                          guestmem_exit_outcome* out, guestmem_error* err) {
    if (int32_t rc = router_args(router, router, out, err)) return rc;
    return deliver(router->router.handle_memory_fault({.flags = flags, .gpa = gpa, .size = size}), out, err);
}

int32_t guestmem_exit_router_map_gpa_range(guestmem_exit_router* router, uint64_t gpa, uint64_t npages,
                                           uint64_t attributes, guestmem_exit_outcome* out, guestmem_error* err) {
    if (int32_t rc = router_args(router, router, out, err)) return rc;
    return deliver(router->router.map_gpa_range(gpa, npages, attributes), out, err);
}

int32_t guestmem_exit_router_map_gpa_range_retry(guestmem_exit_router* router, uint64_t gpa, uint64_t npages,
                                                 uint64_t attributes, guestmem_vcpu_retry* vcpu,
                                                 guestmem_exit_outcome* out, guestmem_error* err) {
    if (int32_t rc = router_args(router, router, out, err)) return rc;
    retry_state st;
    if (int32_t rc = read_vcpu(vcpu, st, err)) return rc;
    clock_scope scope(router);
    const exit_outcome o = router->router.map_gpa_range(gpa, npages, attributes, st);
    write_vcpu(st, vcpu);
    return deliver(o, out, err);
}

int32_t guestmem_set_unblock_eventfd(guestmem_memory* mem, int32_t fd, guestmem_error* err) {
    if (mem == nullptr) return null_handle(err, "guestmem_memory");
    if (fd < -1) return fail(err, errc::invalid_argument, no_page, "fd %d is not -1 or an fd", int{fd});
    borrowed_eventfd* n = nullptr;
    if (fd >= 0) {
        n = new (std::nothrow) borrowed_eventfd(fd);
        if (n == nullptr) return fail(err, errc::out_of_memory, no_page, "no memory for the unblock notifier");
    }
    visit(mem, [&](auto& g, auto&) { g.set_unblock_notifier(n); });
    delete mem->unblock;  // no longer in use: the set above took the exclusive lock
    mem->unblock = n;
    return succeed(err);
}

// ---- KVM consumers ------------------------------------------------------------------

int32_t guestmem_kvm_attributes_attach(guestmem_memory* mem, int32_t fd, uint32_t target, uint64_t begin,
                                       uint64_t end, uint64_t target_base, uint64_t* id_out, guestmem_error* err) {
    if (mem == nullptr) return null_handle(err, "guestmem_memory");
    if (target > GUESTMEM_KVM_ATTRIBUTES_GUEST_MEMFD)
        return fail(err, errc::invalid_argument, begin, "attributes target %u is not vm (0) or guest_memfd (1)",
                    unsigned{target});
    auto* c = new (std::nothrow) kvm_pack<kvm_attributes_consumer>(static_cast<attributes_target>(target), fd);
    return attach_cxx(mem, c, c_consumer::kvm_attributes, begin, id_out, err,
                      [&](kvm_attributes_consumer& k, memory_shim& shim, binding<c_consumer>& slot) {
                          return k.attach(shim, slot, {begin, end}, target_base);
                      });
}

int32_t guestmem_kvm_attributes_get_stats(const guestmem_memory* mem, uint64_t binding_id,
                                          guestmem_kvm_attributes_stats* out, guestmem_error* err) {
    if (mem == nullptr) return null_handle(err, "guestmem_memory");
    if (int32_t rc = check_output(out, "out", err)) return rc;
    std::lock_guard guard(mem->lists);
    auto* c = static_cast<kvm_attributes_consumer*>(find_inner(mem, binding_id, c_consumer::kvm_attributes));
    if (c == nullptr)
        return fail(err, errc::not_bound, no_page, "binding %" PRIu64 " is no KVM attributes consumer's", binding_id);
    const auto s = c->stats();
    out->reserved0 = 0;
    out->sets = s.sets;
    out->refusals = s.refusals;
    out->undos = s.undos;
    out->undo_failures = s.undo_failures;
    return succeed(err);
}

int32_t guestmem_discard_attach(guestmem_memory* mem, const guestmem_discard_config* cfg, uint64_t begin,
                                uint64_t end, uint64_t* id_out, guestmem_error* err) {
    if (mem == nullptr) return null_handle(err, "guestmem_memory");
    if (int32_t rc = check_input(cfg, "cfg", err)) return rc;
    if (cfg->reserved0 != 0) return fail(err, errc::invalid_argument, begin, "cfg->reserved0 must be 0");
    const discard_config d{.shared_fd = cfg->shared_fd,
                           .shared_first = cfg->shared_first,
                           .private_fd = cfg->private_fd,
                           .private_first = cfg->private_first};
    auto* c = new (std::nothrow) kvm_pack<discard_consumer>(d);
    return attach_cxx(mem, c, c_consumer::kvm_discard, begin, id_out, err,
                      [&](discard_consumer& k, memory_shim& shim, binding<c_consumer>& slot) {
                          return k.attach(shim, slot, {begin, end});
                      });
}

int32_t guestmem_discard_get_stats(const guestmem_memory* mem, uint64_t binding_id, guestmem_discard_stats* out,
                                   guestmem_error* err) {
    if (mem == nullptr) return null_handle(err, "guestmem_memory");
    if (int32_t rc = check_output(out, "out", err)) return rc;
    std::lock_guard guard(mem->lists);
    auto* c = static_cast<discard_consumer*>(find_inner(mem, binding_id, c_consumer::kvm_discard));
    if (c == nullptr)
        return fail(err, errc::not_bound, no_page, "binding %" PRIu64 " is no discard consumer's", binding_id);
    const auto s = c->stats();
    out->last_failure = c->last_failure() ? static_cast<int32_t>(c->last_failure()->code()) : GUESTMEM_OK;
    out->shared_punches = s.shared_punches;
    out->shared_pages = s.shared_pages;
    out->private_punches = s.private_punches;
    out->private_pages = s.private_pages;
    out->failures = s.failures;
    return succeed(err);
}

} // extern "C"
