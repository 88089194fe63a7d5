// src/c/c_views.cpp — the C ABI of views (include/guestmem/c/guestmem_views.h):
// a guestmem_view handle is one C++ memory_view over a storage whose
// allocator lives in a block shared by every handle of the storage (it
// must outlive the storage, which the last view's close destroys), plus the
// C consumers and view bindings made through it. Handles outlive their
// views: a closed view's handle answers not_bound until it is freed.
#include "c_object.hpp"

#include <limits>
#include <new>
#include <span>

using namespace guestmem;
using namespace guestmem::c_abi;

namespace {

/// The allocator of one storage, shared by its handles (refcounted).
struct frames_base {
    explicit frames_base(std::uint32_t k) noexcept : kind(k) {}
    frames_base(const frames_base&) = delete;
    frames_base& operator=(const frames_base&) = delete;
    virtual ~frames_base() = default;
    std::uint32_t kind;
    std::atomic<std::uint32_t> refs{1};
};
template <class A>
struct frames final : frames_base {
    frames(std::uint32_t k, A&& a) noexcept : frames_base(k), alloc(std::move(a)) {}
    A alloc;
};
void drop(frames_base* f) noexcept {
    if (f->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete f;
}

template <class A>
using storage_view = memory_view<guest_memory<A, c_consumer>>;

} // namespace

/// A binding made through a view: the C++ view binding and its consumer.
struct guestmem_view_binding {
    view_binding<c_consumer> slot;
    c_consumer* owner = nullptr;
    guestmem_view_binding* next = nullptr;
};

/// One view handle; the memory_view lives in view_object<A>.
struct guestmem_view {
    explicit guestmem_view(frames_base* f) noexcept : fr(f) {}
    guestmem_view(const guestmem_view&) = delete;
    guestmem_view& operator=(const guestmem_view&) = delete;
    /// Runs after the derived memory_view closed the view (bindings
    /// released): frees the lists, then drops the allocator.
    virtual ~guestmem_view() {
        while (bindings != nullptr) {
            guestmem_view_binding* b = bindings;
            bindings = b->next;
            delete b;
        }
        while (consumers != nullptr) {
            c_consumer* c = consumers;
            consumers = c->next;
            delete c;
        }
        drop(fr);
    }
    frames_base* fr;
    c_consumer* consumers = nullptr;
    guestmem_view_binding* bindings = nullptr;
    std::mutex lists;  ///< guards the two lists; taken before the view table's lock
};

namespace {

template <class A>
struct view_object final : guestmem_view {
    view_object(frames<A>* f, storage_view<A>&& v) noexcept : guestmem_view(f), view(std::move(v)) {}
    storage_view<A> view;
};

/// f(the memory_view<...>&) for the handle's allocator kind.
template <class V, class F>
decltype(auto) visit_view(V* v, F&& f) {
    constexpr bool c = std::is_const_v<V>;
    switch (v->fr->kind) {
    case GUESTMEM_ALLOC_MEMFD:
        return f(static_cast<std::conditional_t<c, const view_object<memfd_allocator>, view_object<memfd_allocator>>*>(v)->view);
    case GUESTMEM_ALLOC_GUEST_MEMFD:
        return f(static_cast<std::conditional_t<c, const view_object<guest_memfd_allocator>,
                                                view_object<guest_memfd_allocator>>*>(v)->view);
    default:
        return f(static_cast<std::conditional_t<c, const view_object<simulated_allocator>,
                                                view_object<simulated_allocator>>*>(v)->view);
    }
}

[[gnu::cold]] int32_t null_view(guestmem_error* err) noexcept {
    return fail(err, errc::invalid_argument, no_page, "the guestmem_view handle is NULL");
}

guestmem_owner pack(owner_id o) noexcept { return {o.slot, 0, o.generation}; }
/// The C++ owner id; a generation past what the C++ type holds (or reserved
/// bytes set) names no owner: generation 0, which is never live.
owner_id unpack(const guestmem_owner& c) noexcept {
    using gen = decltype(owner_id::generation);
    owner_id o;
    o.slot = c.slot;
    o.generation = c.reserved == 0 && c.generation <= std::numeric_limits<gen>::max() ? static_cast<gen>(c.generation) : 0;
    return o;
}

/// A C access policy (NULL: the default) into `p`. 0 when valid.
int32_t read_policy(const guestmem_access_policy* c, access_policy& p, guestmem_error* err) noexcept {
    p = {};
    if (c == nullptr) return GUESTMEM_OK;
    if (int32_t rc = check_input(c, "policy", err)) return rc;
    if (c->mode > GUESTMEM_NON_CONFIDENTIAL || c->trusted_devices > 1 || !tail_is_zero(c->reserved, sizeof c->reserved, 0))
        return fail(err, errc::invalid_argument, no_page,
                    "policy: mode %u must be 0 or 1, trusted_devices %u 0 or 1, and the reserved bytes 0",
                    unsigned{c->mode}, unsigned{c->trusted_devices});
    p.mode = static_cast<confidentiality>(c->mode);
    p.trusted_devices = c->trusted_devices != 0;
    return GUESTMEM_OK;
}

template <class T, class U>
int32_t deliver(const result<T>& r, U* out, guestmem_error* err) noexcept {
    if (!r) return put(err, r.error());
    *out = static_cast<U>(r.value());
    return succeed(err);
}

std::span<std::uint8_t> out_span(std::uint8_t* p, std::size_t n) noexcept {
    return n == 0 ? std::span<std::uint8_t>{} : std::span<std::uint8_t>{p, n};
}
std::span<const std::uint8_t> in_span(const std::uint8_t* p, std::size_t n) noexcept {
    return n == 0 ? std::span<const std::uint8_t>{} : std::span<const std::uint8_t>{p, n};
}

} // namespace

extern "C" {

int32_t guestmem_view_open_storage(const guestmem_config* cfg, const guestmem_storage_options* opts,
                                   const guestmem_access_policy* policy, guestmem_view** out, guestmem_error* err) {
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out (where the view goes) is NULL");
    *out = nullptr;
    if (int32_t rc = check_config(cfg, err)) return rc;
    storage_options so;
    if (opts != nullptr) {
        if (int32_t rc = check_input(opts, "opts", err)) return rc;
        if (opts->reserved0 != 0) return fail(err, errc::invalid_argument, no_page, "opts->reserved0 must be 0");
        if (opts->max_views != 0) so.max_views = opts->max_views;
        if (opts->max_owners != 0) so.max_owners = opts->max_owners;
    }
    if (int32_t rc = read_policy(policy, so.policy, err)) return rc;
    return with_allocator(*cfg, err, [&]<class A>(A&& alloc) -> int32_t {
        auto* f = new (std::nothrow) frames<A>(cfg->allocator, std::move(alloc));
        if (f == nullptr) return fail(err, errc::out_of_memory, no_page, "no memory for the storage's allocator");
        auto v = storage_view<A>::open_storage(f->alloc, cxx_config(*cfg), so);
        if (!v) {
            delete f;
            return put(err, v.error());
        }
        auto* h = new (std::nothrow) view_object<A>(f, std::move(v).value());  // takes f's reference
        if (h == nullptr) {
            // The view must close (freeing the storage) before its allocator goes.
            { storage_view<A> dead = std::move(v).value(); }
            delete f;
            return fail(err, errc::out_of_memory, no_page, "no memory for the view handle");
        }
        *out = h;
        return succeed(err);
    });
}

int32_t guestmem_view_add_owner(guestmem_view* view, guestmem_owner* owner_out, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (owner_out == nullptr) return fail(err, errc::invalid_argument, no_page, "owner_out is NULL");
    return visit_view(view, [&](auto& v) {
        auto o = v.add_owner();
        if (!o) return put(err, o.error());
        *owner_out = pack(o.value());
        return succeed(err);
    });
}

int32_t guestmem_view_owner(const guestmem_view* view, guestmem_owner* owner_out, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (owner_out == nullptr) return fail(err, errc::invalid_argument, no_page, "owner_out is NULL");
    return visit_view(view, [&](const auto& v) {
        auto o = v.owner();
        if (!o) return put(err, o.error());
        *owner_out = pack(o.value());
        return succeed(err);
    });
}

int32_t guestmem_view_open(guestmem_view* view, guestmem_owner owner, const guestmem_access_policy* policy,
                           guestmem_view** out, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out (where the view goes) is NULL");
    *out = nullptr;
    access_policy p;
    if (int32_t rc = read_policy(policy, p, err)) return rc;
    return visit_view(view, [&]<class V>(V& v) -> int32_t {
        using A = typename V::allocator_type;
        auto nv = v.open_view(unpack(owner), p);
        if (!nv) return put(err, nv.error());
        auto* f = static_cast<frames<A>*>(view->fr);
        auto* h = new (std::nothrow) view_object<A>(f, std::move(nv).value());
        if (h == nullptr) return fail(err, errc::out_of_memory, no_page, "no memory for the view handle");
        f->refs.fetch_add(1, std::memory_order_relaxed);
        *out = h;
        return succeed(err);
    });
}

int32_t guestmem_view_close(guestmem_view* view, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    return visit_view(view, [&](auto& v) { return report(err, v.close()); });
}

int32_t guestmem_view_close_owner(guestmem_view* view, guestmem_owner owner, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    return visit_view(view, [&](auto& v) { return report(err, v.close_owner(unpack(owner))); });
}

void guestmem_view_free(guestmem_view* view) { delete view; }

int guestmem_view_is_open(const guestmem_view* view) {
    return view != nullptr && visit_view(view, [](const auto& v) { return v.is_open(); }) ? 1 : 0;
}

uint32_t guestmem_view_open_views(const guestmem_view* view) {
    return view != nullptr ? visit_view(view, [](const auto& v) { return v.open_views(); }) : 0;
}

// ---- the storage's operations -------------------------------------------------

int32_t guestmem_view_allocate(guestmem_view* view, uint64_t begin, uint64_t end, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    return visit_view(view, [&](auto& v) { return report(err, v.allocate({begin, end})); });
}

int32_t guestmem_view_punch_hole(guestmem_view* view, uint64_t begin, uint64_t end, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    return visit_view(view, [&](auto& v) { return report(err, v.punch_hole({begin, end})); });
}

int32_t guestmem_view_release_quarantine(guestmem_view* view, uint64_t begin, uint64_t end, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    return visit_view(view, [&](auto& v) { return report(err, v.release_quarantine({begin, end})); });
}

int32_t guestmem_view_convert(guestmem_view* view, uint64_t begin, uint64_t end, uint32_t to,
                              const guestmem_convert_options* opts, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    convert_options o;
    if (int32_t rc = read_convert_options(opts, begin, o, err)) return rc;
    const auto share = to > 0xff ? static_cast<shareability>(0xff) : static_cast<shareability>(to);
    return visit_view(view, [&](auto& v) { return report(err, v.convert({begin, end}, share, o)); });
}

int32_t guestmem_view_fault(const guestmem_view* view, uint64_t page, uint32_t wanted, uint32_t who,
                            guestmem_fault_result* out, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (int32_t rc = check_output(out, "out", err)) return rc;
    const auto w = wanted > 0xff ? static_cast<shareability>(0xff) : static_cast<shareability>(wanted);
    const auto a = who > 0xff ? static_cast<accessor>(0xff) : static_cast<accessor>(who);
    return visit_view(view, [&](const auto& v) {
        auto r = v.fault(page, w, a);
        if (!r) return put(err, r.error());
        write_fault_result(r.value(), out);
        return succeed(err);
    });
}

int32_t guestmem_view_pin(guestmem_view* view, uint64_t begin, uint64_t end, uint32_t who, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    const auto a = who > 0xff ? static_cast<accessor>(0xff) : static_cast<accessor>(who);
    return visit_view(view, [&](auto& v) { return report(err, v.pin({begin, end}, a)); });
}

int32_t guestmem_view_unpin(guestmem_view* view, uint64_t begin, uint64_t end, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    return visit_view(view, [&](auto& v) { return report(err, v.unpin({begin, end})); });
}

int32_t guestmem_view_memory_failure(guestmem_view* view, uint64_t page, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    return visit_view(view, [&](auto& v) { return report(err, v.memory_failure(page)); });
}

int32_t guestmem_view_shareability_at(const guestmem_view* view, uint64_t page, uint32_t* out, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out is NULL");
    return visit_view(view, [&](const auto& v) { return deliver(v.shareability_at(page), out, err); });
}

int32_t guestmem_view_get_stats(const guestmem_view* view, guestmem_stats* out, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (int32_t rc = check_output(out, "out", err)) return rc;
    return visit_view(view, [&](const auto& v) {
        auto s = v.stats();
        if (!s) return put(err, s.error());
        write_stats(s.value(), out);
        return succeed(err);
    });
}

// ---- snapshots of the storage ----------------------------------------------------

int32_t guestmem_view_generation(const guestmem_view* view, uint64_t* out, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out is NULL");
    return visit_view(view, [&](const auto& v) { return deliver(v.generation(), out, err); });
}

int32_t guestmem_view_saved_size(const guestmem_view* view, size_t* out, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out is NULL");
    return visit_view(view, [&](const auto& v) { return deliver(v.saved_size(), out, err); });
}

int32_t guestmem_view_save(const guestmem_view* view, uint8_t* buf, size_t cap, size_t* written, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (buf == nullptr && cap > 0) return fail(err, errc::invalid_argument, no_page, "buf is NULL but cap is %zu", cap);
    return visit_view(view, [&](const auto& v) {
        auto r = v.save(out_span(buf, cap));
        if (!r) return put(err, r.error());
        if (written != nullptr) *written = r.value();
        return succeed(err);
    });
}

int32_t guestmem_view_increment_size(const guestmem_view* view, uint64_t since, size_t* out, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (out == nullptr) return fail(err, errc::invalid_argument, no_page, "out is NULL");
    return visit_view(view, [&](const auto& v) { return deliver(v.increment_size(since), out, err); });
}

int32_t guestmem_view_save_increment(const guestmem_view* view, uint64_t since, uint8_t* buf, size_t cap,
                                     size_t* written, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (buf == nullptr && cap > 0) return fail(err, errc::invalid_argument, no_page, "buf is NULL but cap is %zu", cap);
    return visit_view(view, [&](const auto& v) {
        auto r = v.save_increment(since, out_span(buf, cap));
        if (!r) return put(err, r.error());
        if (written != nullptr) *written = r.value();
        return succeed(err);
    });
}

int32_t guestmem_view_restore(guestmem_view* view, const uint8_t* bytes, size_t len, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (bytes == nullptr && len > 0)
        return fail(err, errc::invalid_argument, no_page, "bytes is NULL but len is %zu", len);
    return visit_view(view, [&](auto& v) { return report(err, v.restore(in_span(bytes, len))); });
}

int32_t guestmem_view_apply_increment(guestmem_view* view, const uint8_t* bytes, size_t len, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (bytes == nullptr && len > 0)
        return fail(err, errc::invalid_argument, no_page, "bytes is NULL but len is %zu", len);
    return visit_view(view, [&](auto& v) { return report(err, v.apply_increment(in_span(bytes, len))); });
}

// ---- bindings -------------------------------------------------------------------

int32_t guestmem_view_bind(guestmem_view* view, const guestmem_consumer_ops* ops, void* ctx, uint64_t begin,
                           uint64_t end, uint64_t target_base, uint32_t replay, uint64_t* id_out,
                           guestmem_view_binding** binding_out, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    if (int32_t rc = check_ops(ops, err)) return rc;
    if (replay > GUESTMEM_REPLAY_POPULATED)
        return fail(err, errc::invalid_argument, begin, "replay mode %u is not none (0) or populated (1)",
                    unsigned{replay});
    std::lock_guard guard(view->lists);
    c_consumer* owner = view->consumers;
    while (owner != nullptr && !owner->same(*ops, ctx)) owner = owner->next;
    const bool fresh = owner == nullptr;
    if (fresh) {
        owner = new (std::nothrow) c_consumer(*ops, ctx);
        if (owner == nullptr) return fail(err, errc::out_of_memory, begin, "no memory for the consumer");
    }
    auto* b = new (std::nothrow) guestmem_view_binding;
    if (b == nullptr) {
        if (fresh) delete owner;
        return fail(err, errc::out_of_memory, begin, "no memory for the binding");
    }
    const auto mode = replay == GUESTMEM_REPLAY_POPULATED ? replay_mode::populated : replay_mode::none;
    auto r = visit_view(view, [&](auto& v) { return v.bind(b->slot, *owner, {begin, end}, target_base, binding_class::ordinary, mode); });
    if (!r) {
        delete b;
        if (fresh) delete owner;
        return put(err, r.error());
    }
    if (fresh) {
        owner->next = view->consumers;
        view->consumers = owner;
    }
    ++owner->bindings;
    b->owner = owner;
    b->next = view->bindings;
    view->bindings = b;
    if (id_out != nullptr) *id_out = r.value().binding.id;
    if (binding_out != nullptr) *binding_out = b;
    return succeed(err);
}

int32_t guestmem_view_unbind(guestmem_view* view, uint64_t binding_id, guestmem_error* err) {
    if (view == nullptr) return null_view(err);
    std::lock_guard guard(view->lists);
    guestmem_view_binding** link = &view->bindings;
    while (*link != nullptr && (*link)->slot.handle().binding.id != binding_id) link = &(*link)->next;
    // An id of no binding here goes to the C++ unbind too, for its not_bound.
    auto s = visit_view(view, [&](auto& v) {
        const view_binding_handle h = *link != nullptr ? (*link)->slot.handle()
                                                       : view_binding_handle{binding_handle{binding_id}, v.id()};
        return v.unbind(h);
    });
    if (!s) return put(err, s.error());
    if (guestmem_view_binding* b = *link) {
        *link = b->next;
        c_consumer* owner = b->owner;
        delete b;
        if (--owner->bindings == 0) {
            c_consumer** c = &view->consumers;
            while (*c != owner) c = &(*c)->next;
            *c = owner->next;
            delete owner;
        }
    }
    return succeed(err);
}

uint64_t guestmem_view_binding_id(const guestmem_view_binding* binding) {
    return binding != nullptr ? binding->slot.handle().binding.id : 0;
}

uint64_t guestmem_view_read_begin(const guestmem_view_binding* binding) {
    return binding != nullptr ? binding->slot.get().sequence() : 1;
}

int guestmem_view_read_retry(const guestmem_view_binding* binding, uint64_t seq) {
    if (binding == nullptr) return 1;
    return (seq & 1) != 0 || binding->slot.get().sequence() != seq;
}

} // extern "C"
