// src/c/c_object.hpp — what stands behind the C ABI's opaque handles
// (include/guestmem/c/guestmem.h): the object (one guest_memory over one of
// three allocators, chosen at create time), the consumers built from C
// function-pointer tables, the bindings, and the error plumbing. Private to
// libguestmem_c: none of these types is exported or seen by a C caller.
#pragma once

#define GUESTMEM_C_BUILDING 1
#include <guestmem/c/guestmem.h>

#include <guestmem/guestmem.hpp>
#include <guestmem/linux/guest_memfd_allocator.hpp>
#include <guestmem/linux/memfd_allocator.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

#include <atomic>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <streambuf>
#include <mutex>
#include <string_view>
#include <utility>

namespace guestmem::c_abi {

// ---- errors ---------------------------------------------------------------

/// Fill `err` (if it has room for the fixed fields) and return `code`.
inline int32_t put(guestmem_error* err, int32_t code, std::uint64_t page, std::uint64_t binding,
                   std::string_view msg) noexcept {
    constexpr std::size_t head = offsetof(guestmem_error, message);
    if (err == nullptr || err->size < head) return code;
    err->code = code;
    err->page = page;
    err->binding_id = binding;
    std::size_t room = err->size - head;
    if (room > sizeof err->message) room = sizeof err->message;
    if (room > 0) {
        const std::size_t n = msg.size() < room - 1 ? msg.size() : room - 1;
        if (n > 0) std::memcpy(err->message, msg.data(), n);  // an empty view may hold nullptr
        err->message[n] = '\0';
    }
    return code;
}

/// Success: code 0, no page, no binding, empty message.
inline int32_t succeed(guestmem_error* err) noexcept { return put(err, GUESTMEM_OK, no_page, no_binding, {}); }

/// A C++ error, as it is.
inline int32_t put(guestmem_error* err, const error& e) noexcept {
    return put(err, static_cast<int32_t>(e.code()), e.page(), e.binding_id(), e.message());
}

/// A status: success or its error.
inline int32_t report(guestmem_error* err, const status& s) noexcept { return s ? succeed(err) : put(err, s.error()); }

/// An error made here (bad arguments the C++ API cannot even receive).
[[gnu::cold]] inline int32_t fail(guestmem_error* err, errc code, std::uint64_t page, const char* fmt, ...) noexcept
    __attribute__((format(printf, 4, 5)));
inline int32_t fail(guestmem_error* err, errc code, std::uint64_t page, const char* fmt, ...) noexcept {
    char text[GUESTMEM_MESSAGE_SIZE];
    std::va_list args;
    va_start(args, fmt);
    std::vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    return put(err, static_cast<int32_t>(code), page, no_binding, text);
}

/// True when bytes [known, size) of the struct at `p` are all zero: the
/// fields a newer caller set that this library does not know are unused.
inline bool tail_is_zero(const void* p, std::uint32_t size, std::size_t known) noexcept {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = known; i < size; ++i)
        if (b[i] != 0) return false;
    return true;
}

/// Check an input struct (NULL, size, unknown tail). 0 when usable.
template <class T>
int32_t check_input(const T* p, const char* what, guestmem_error* err) noexcept {
    if (p == nullptr) return fail(err, errc::invalid_argument, no_page, "%s is NULL", what);
    if (p->size < sizeof(T))
        return fail(err, errc::invalid_argument, no_page, "%s->size is %u; this ABI's struct has %zu bytes", what,
                    unsigned{p->size}, sizeof(T));
    if (!tail_is_zero(p, p->size, sizeof(T)))
        return fail(err, errc::not_supported, no_page,
                    "%s sets fields past the %zu bytes this library knows (size %u): a newer ABI's", what, sizeof(T),
                    unsigned{p->size});
    return GUESTMEM_OK;
}

/// Check an output struct (NULL, size). 0 when writable.
template <class T>
int32_t check_output(const T* p, const char* what, guestmem_error* err) noexcept {
    if (p == nullptr) return fail(err, errc::invalid_argument, no_page, "%s is NULL", what);
    if (p->size < sizeof(T))
        return fail(err, errc::invalid_argument, no_page, "%s->size is %u; this ABI's struct has %zu bytes", what,
                    unsigned{p->size}, sizeof(T));
    return GUESTMEM_OK;
}

// ---- consumers ------------------------------------------------------------

/// A consumer made of a C function-pointer table and its context. One per
/// distinct (ops callbacks, ctx); shared by that consumer's bindings.
class c_consumer final : public consumer {
public:
    c_consumer(const guestmem_consumer_ops& ops, void* ctx) noexcept;
    /// A consumer forwarding to C++ consumer `inner` (the KVM layer's); it
    /// owns `payload`, which holds `inner`, and frees it with `drop` (so
    /// the payload may hold more than the consumer); `tag` says which type
    /// `inner` is (c_consumer::kind).
    c_consumer(consumer* inner, std::uint8_t tag, void* payload, void (*drop)(void*)) noexcept;
    ~c_consumer() override;
    c_consumer(const c_consumer&) = delete;
    c_consumer& operator=(const c_consumer&) = delete;

    /// What stands behind a c_consumer.
    enum kind : std::uint8_t { c_table = 0, kvm_attributes = 1, kvm_discard = 2 };

    status prepare(const invalidation& inv) override;
    /// A view's replay (view/replay.hpp): the C table's populate, if any.
    status populate(const invalidation& inv) override;
    void commit(const invalidation& inv, commit_report& report) noexcept override;
    void abort(const invalidation& inv) noexcept override;
    void memory_failure(const invalidation& inv) noexcept override;
    [[nodiscard]] std::string_view name() const noexcept override { return inner_ != nullptr ? inner_->name() : name_; }

    /// Same callbacks and context: the same consumer (never a forwarding one).
    [[nodiscard]] bool same(const guestmem_consumer_ops& ops, void* ctx) const noexcept {
        return inner_ == nullptr && ctx == ctx_ && ops.prepare == prepare_ && ops.commit == commit_ &&
               ops.abort == abort_ && ops.memory_failure == memory_failure_ && populate_of(ops) == populate_;
    }
    /// The table's populate, NULL when `ops` predates the field.
    static decltype(guestmem_consumer_ops::populate) populate_of(const guestmem_consumer_ops& ops) noexcept {
        return ops.size >= offsetof(guestmem_consumer_ops, populate) + sizeof ops.populate ? ops.populate : nullptr;
    }
    /// The C++ consumer forwarded to, or nullptr; and its kind.
    [[nodiscard]] consumer* inner() const noexcept { return inner_; }
    [[nodiscard]] std::uint8_t tag() const noexcept { return tag_; }

    std::uint32_t bindings = 0;     ///< bindings using this consumer
    c_consumer* next = nullptr;     ///< the object's list of consumers

private:
    decltype(guestmem_consumer_ops::prepare) prepare_;
    decltype(guestmem_consumer_ops::commit) commit_;
    decltype(guestmem_consumer_ops::abort) abort_;
    decltype(guestmem_consumer_ops::memory_failure) memory_failure_;
    decltype(guestmem_consumer_ops::populate) populate_ = nullptr;
    void* ctx_;
    consumer* inner_ = nullptr;  ///< inside payload_; then every C callback above is NULL
    void* payload_ = nullptr;    ///< owned, freed by drop_
    void (*drop_)(void*) = nullptr;
    std::uint8_t tag_ = c_table;
    char name_[32];

    /// A prepare that did not return GUESTMEM_OK, as a defined status
    /// (out of line: the common path never runs it).
    static status refusal(const invalidation& inv, int32_t code, guestmem_error& why) noexcept;
};

/// The C view of an invalidation (every field written, reserved bytes 0).
inline guestmem_invalidation to_c(const invalidation& inv) noexcept {
    guestmem_invalidation c;
    c.size = sizeof c;
    c.cause = static_cast<std::uint32_t>(inv.cause);
    c.page_begin = inv.pages.begin;
    c.page_end = inv.pages.end;
    c.target_begin = inv.target.begin;
    c.target_end = inv.target.end;
    c.sequence = inv.sequence;
    c.binding_id = inv.binding_id;
    c.vetoable = inv.vetoable ? 1 : 0;
    c.order = inv.order;
    c.share = static_cast<std::uint8_t>(inv.share);
    std::memset(c.reserved, 0, sizeof c.reserved);
    return c;
}

/// A GUESTMEM_ERR_* value guestmem knows.
inline bool is_known_code(int32_t code) noexcept {
    return code >= static_cast<int32_t>(errc::invalid_range) && code <= static_cast<int32_t>(errc::would_deadlock);
}

/// The error a C prepare or populate fills in when it refuses: VETOED at
/// the invalidation's first page and binding, its message empty.
inline guestmem_error refusal_template(const invalidation& inv) noexcept {
    guestmem_error why;
    why.size = sizeof why;
    why.code = GUESTMEM_ERR_VETOED;
    why.page = inv.pages.begin;
    why.binding_id = inv.binding_id;
    why.message[0] = '\0';
    return why;
}

// prepare and commit run once per binding per conversion: inline, so the
// notifier's loops call the C callback with nothing in between.
inline status c_consumer::prepare(const invalidation& inv) {
    if (prepare_ == nullptr) return inner_ != nullptr ? inner_->prepare(inv) : ok();
    const guestmem_invalidation c = to_c(inv);
    guestmem_error why = refusal_template(inv);
    const int32_t code = prepare_(ctx_, &c, &why);
    if (code == GUESTMEM_OK) [[likely]]
        return ok();
    return refusal(inv, code, why);
}

inline void c_consumer::commit(const invalidation& inv, commit_report& report) noexcept {
    if (commit_ == nullptr) {
        if (inner_ != nullptr) inner_->commit(inv, report);
        return;
    }
    const guestmem_invalidation c = to_c(inv);
    commit_(ctx_, &c, reinterpret_cast<guestmem_commit_report*>(&report));
}

} // namespace guestmem::c_abi

/// A binding: the C++ binding's storage and the consumer it belongs to.
struct guestmem_binding {
    guestmem::binding<guestmem::c_abi::c_consumer> slot;  ///< linked into the object's notifier set
    guestmem::c_abi::c_consumer* owner = nullptr;  ///< its consumer
    guestmem_binding* next = nullptr;              ///< the object's list of bindings
};

/// The object: the allocator kind and the lists the wrapper keeps. The
/// guest_memory itself lives in c_abi::object<A>, which derives from this.
/// The lists are freed after the guest_memory is gone (it releases the
/// bindings first), so the base's destructor frees them.
struct guestmem_memory {
    explicit guestmem_memory(std::uint32_t k) noexcept : kind(k) {}
    guestmem_memory(const guestmem_memory&) = delete;
    guestmem_memory& operator=(const guestmem_memory&) = delete;
    virtual ~guestmem_memory();

    std::uint32_t kind;                          ///< guestmem_allocator_kind
    guestmem::c_abi::c_consumer* consumers = nullptr;
    guestmem_binding* bindings = nullptr;
    /// Guards the two lists (bind, unbind, attach, the KVM consumers'
    /// counters); taken before the object's lock.
    mutable std::mutex lists;
    /// The caller's reference (guestmem_destroy drops it) plus one per
    /// gpa_map slot over the object: the last one deletes it.
    std::atomic<std::uint32_t> refs{1};
    /// The unblock notifier guestmem_set_unblock_eventfd made (owned), or nullptr.
    guestmem::unblock_notifier* unblock = nullptr;
    /// guestmem_fault for this object's allocator (c_abi::fault_of<A>,
    /// c_fault.cpp), set by object<A>: the fault jumps straight to its
    /// instantiation instead of testing `kind` (visit) on every call.
    using fault_entry = int32_t (*)(const guestmem_memory*, uint64_t, uint32_t, uint32_t, guestmem_fault_result*,
                                    guestmem_error*) noexcept;
    fault_entry fault = nullptr;

    /// What a gpa_map needs (kvm/gpa_map.hpp's gpa_memory): defined in
    /// c_object.cpp over the allocator kind.
    [[nodiscard]] guestmem::page_index size() const noexcept;
    guestmem::status convert(guestmem::page_range r, guestmem::shareability to, guestmem::convert_options o);
};

namespace guestmem::c_abi {
/// Take one more reference on `m`.
inline void retain(guestmem_memory* m) noexcept { m->refs.fetch_add(1, std::memory_order_relaxed); }
/// Drop one reference on `m` (NULL: no-op); the last deletes it.
inline void release(guestmem_memory* m) noexcept {
    if (m != nullptr && m->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete m;
}
} // namespace guestmem::c_abi

namespace guestmem::c_abi {

/// guestmem_fault on an object<A> whose `mem` is not NULL (c_fault.cpp,
/// instantiated there for the three allocators).
template <class A>
int32_t fault_of(const guestmem_memory* mem, uint64_t page, uint32_t wanted, uint32_t who, guestmem_fault_result* out,
                 guestmem_error* err) noexcept;

/// One object over allocator A, which it owns (declared first: the
/// guest_memory refers to it and goes first).
template <class A>
struct object final : guestmem_memory {
    object(std::uint32_t k, A&& a, const guest_memory_config& cfg) noexcept
        : guestmem_memory(k), alloc(std::move(a)), mem(alloc, cfg) {
        fault = &fault_of<A>;
    }
    A alloc;
    // A closed consumer type: the notifier calls the C trampolines directly
    // (inlined, below), not through consumer's vtable.
    guest_memory<A, c_consumer> mem;
};

/// f(the guest_memory<A>&, the allocator A&) for the object's allocator kind.
template <class M, class F>
decltype(auto) visit(M* m, F&& f) {
    using base = std::conditional_t<std::is_const_v<M>, const guestmem_memory, guestmem_memory>;
    base* b = m;
    switch (b->kind) {
    case GUESTMEM_ALLOC_MEMFD: {
        auto* o = static_cast<std::conditional_t<std::is_const_v<M>, const object<memfd_allocator>, object<memfd_allocator>>*>(b);
        return f(o->mem, o->alloc);
    }
    case GUESTMEM_ALLOC_GUEST_MEMFD: {
        auto* o = static_cast<std::conditional_t<std::is_const_v<M>, const object<guest_memfd_allocator>,
                                                 object<guest_memfd_allocator>>*>(b);
        return f(o->mem, o->alloc);
    }
    default: {
        auto* o = static_cast<std::conditional_t<std::is_const_v<M>, const object<simulated_allocator>,
                                                 object<simulated_allocator>>*>(b);
        return f(o->mem, o->alloc);
    }
    }
}

/// A guestmem_convert_options (NULL: the defaults) into `o`. 0 when valid.
inline int32_t read_convert_options(const guestmem_convert_options* opts, std::uint64_t page, convert_options& o,
                                    guestmem_error* err) noexcept {
    o = {};
    if (opts == nullptr) return GUESTMEM_OK;
    if (int32_t rc = check_input(opts, "opts", err)) return rc;
    if (!tail_is_zero(opts->reserved, sizeof opts->reserved, 0) || opts->defer_if_pinned > 1)
        return fail(err, errc::invalid_argument, page, "opts: defer_if_pinned must be 0 or 1 and the reserved bytes 0");
    o.defer_if_pinned = opts->defer_if_pinned != 0;
    // A value past uint8_t must not wrap onto a valid policy.
    o.content = opts->content > 0xff ? static_cast<content_policy>(0xff) : static_cast<content_policy>(opts->content);
    return GUESTMEM_OK;
}

/// A fault's answer into the caller's struct (size already checked).
inline void write_fault_result(const fault_result& f, guestmem_fault_result* out) noexcept {
    out->order = f.order;
    out->mappability = static_cast<uint8_t>(f.mappability);
    out->reserved[0] = out->reserved[1] = 0;
    out->frame = f.frame;
    out->folio_first = f.folio_first;
    out->folio_frame = f.folio_frame;
}

/// Census and counters into the caller's struct (size already checked).
inline void write_stats(const guest_memory_stats& s, guestmem_stats* out) noexcept {
    out->reserved0 = 0;
    out->pages = s.pages;
    out->shared_pages = s.shared_pages;
    out->guest_only_pages = s.guest_only_pages;
    out->runs = s.runs;
    out->allocated_pages = s.allocated_pages;
    out->folios_4k = s.folios_4k;
    out->folios_2m = s.folios_2m;
    out->folios_1g = s.folios_1g;
    out->split_folios = s.split_folios;
    out->pinned_pages = s.pinned_pages;
    out->poisoned_folios = s.poisoned_folios;
    out->quarantined_pages = s.quarantined_pages;
    out->detached_pages = s.detached_pages;
    out->bindings = s.bindings;
    out->conversions = s.conversions;
    out->noop_conversions = s.noop_conversions;
    out->vetoes = s.vetoes;
    out->busy = s.busy_refusals;
    out->rollbacks = s.rollbacks;
    out->deferred = s.deferred_folios;
    out->quarantined = s.commit_quarantines;
}

/// Check what guestmem_create refuses before it makes anything. 0 when usable.
int32_t check_config(const guestmem_config* cfg, guestmem_error* err) noexcept;

/// The C++ configuration a checked guestmem_config describes.
inline guest_memory_config cxx_config(const guestmem_config& cfg) noexcept {
    return {.pages = cfg.pages,
            .initial = static_cast<shareability>(cfg.initial),
            .max_order = static_cast<folio_order>(cfg.max_order)};
}

/// Make the allocator a checked `cfg` names and return f(kind, A&&), or
/// the allocator's error.
template <class F>
int32_t with_allocator(const guestmem_config& cfg, guestmem_error* err, F&& f) noexcept {
    const guest_memory_config c = cxx_config(cfg);
    switch (cfg.allocator) {
    case GUESTMEM_ALLOC_MEMFD: {
        auto a = memfd_allocator::create(cfg.pages, c.max_order, "guestmem");
        if (!a) return put(err, a.error());
        return f(std::move(a).value());
    }
    case GUESTMEM_ALLOC_GUEST_MEMFD: {
        auto a = guest_memfd_allocator::create(cfg.vm_fd, cfg.pages * page_size, c.max_order,
                                               cfg.guest_memfd_flags != 0 ? cfg.guest_memfd_flags
                                                                          : default_guest_memfd_flags);
        if (!a) return put(err, a.error());
        return f(std::move(a).value());
    }
    default:
        return f(simulated_allocator(cfg.simulated_capacity == 0 ? UINT64_MAX : cfg.simulated_capacity));
    }
}

/// Create (guestmem_create's work after the config is checked).
int32_t create(const guestmem_config& cfg, guestmem_memory** out, guestmem_error* err) noexcept;

/// Link binding `b` of consumer `owner` (new when `fresh`) into `mem`'s
/// lists, after its C++ bind succeeded.
void adopt(guestmem_memory* mem, guestmem_binding* b, c_consumer* owner, bool fresh) noexcept;

/// The consumer table a caller passes: NULL, size (at least the ABI 0.1
/// struct, up to `name`), reserved0 and an unknown tail checked. 0 when usable.
int32_t check_ops(const guestmem_consumer_ops* ops, guestmem_error* err) noexcept;

/// A std::streambuf that hands everything written to a guestmem_write_fn
/// (guestmem_dump and the snapshot calls that write to a callback).
class callback_buf final : public std::streambuf {
public:
    callback_buf(guestmem_write_fn fn, void* ctx) noexcept : fn_(fn), ctx_(ctx) {}

protected:
    int_type overflow(int_type c) override {
        if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
        const char ch = traits_type::to_char_type(c);
        fn_(ctx_, &ch, 1);
        return c;
    }
    std::streamsize xsputn(const char* s, std::streamsize n) override {
        if (n > 0) fn_(ctx_, s, static_cast<std::size_t>(n));
        return n;
    }

private:
    guestmem_write_fn fn_;
    void* ctx_;
};

} // namespace guestmem::c_abi
