/** @file
 * The C ABI of the KVM layer (ABI 0.2; C++ guestmem/kvm/): a GPA map of
 * memslots over guest memory objects, the exit router that turns
 * KVM_EXIT_MEMORY_FAULT and KVM_HC_MAP_GPA_RANGE exits into conversions,
 * and the two KVM consumers (KVM memory attributes; discard of the other
 * backing), attached to an object. Included by guestmem.h; its
 * conventions hold here. Linux only.
 *
 * Units: GPAs are bytes, counts are 4 KiB pages, and every error's `page`
 * here is a guest frame number (GPA / 4096).
 *
 * Lifetimes: a map slot holds a reference on its object, so
 * guestmem_destroy of an object still in a map leaves it alive for the map
 * until the slot is removed or the map destroyed. A router holds a
 * reference on its map likewise. The KVM consumers belong to the object
 * they are attached to: they go with their binding (guestmem_unbind, or
 * the object's end).
 *
 * Costs: map lookups O(log slots), add/remove O(slots), conversions
 * O(log slots + slots crossed) plus the object's convert; the router adds
 * one formatted log line on a refusal (no allocation). Capacity: 64 slots.
 */
#ifndef GUESTMEM_C_GUESTMEM_KVM_H
#define GUESTMEM_C_GUESTMEM_KVM_H

#include <guestmem/c/guestmem.h>

#ifdef __cplusplus
extern "C" {
#endif

/** <linux/kvm.h>'s vCPU run structure (only pointers to it pass here). */
struct kvm_run;

/** A GPA map (opaque). */
typedef struct guestmem_gpa_map guestmem_gpa_map;
/** An exit router over a GPA map (opaque). */
typedef struct guestmem_exit_router guestmem_exit_router;

/** One memslot of a map (guestmem_gpa_map_find). */
typedef struct guestmem_gpa_slot {
    uint32_t size;            /**< set by the caller: sizeof(guestmem_gpa_slot) */
    uint32_t id;              /**< the VMM's slot id (KVM's memslot number) */
    uint64_t gpa;             /**< guest physical address of its first byte */
    uint64_t pages;           /**< its size in pages */
    guestmem_memory* memory;  /**< the object behind it (a reference the map holds; do not destroy it through this) */
    uint64_t first;           /**< the object page of its first GFN */
} guestmem_gpa_slot;

/** What the VMM does after the router looked at an exit. Later ABI
 * versions may add values: treat one you do not know like
 * GUESTMEM_EXIT_FAILED (the exit was not served). */
enum guestmem_exit_disposition {
    GUESTMEM_EXIT_RESUME = 0,   /**< handled: run the vCPU again (a hypercall's result is in hypercall.ret) */
    GUESTMEM_EXIT_FAILED = 1,   /**< a memory fault the router could not serve (err says why): the VMM decides */
    GUESTMEM_EXIT_NOT_MINE = 2, /**< not a conversion exit: handle it as before */
    /** GUESTMEM_VMM_RETRIES (ABI 0.3): a transient refusal; the exit is not
     * completed (run untouched). Wait until the outcome's wait_fd is
     * readable (or a short while if it is -1), then hand the same run back. */
    GUESTMEM_EXIT_RETRY_LATER = 3
};

/** Who retries a transiently refused conversion (BUSY, RETRY, OUT_OF_MEMORY,
 * VETOED) (ABI 0.3, guestmem_router_retry_options::policy). */
enum guestmem_retry_policy {
    /** The router returns GUESTMEM_EXIT_RETRY_LATER and the VMM re-enters the
     * exit; after retry_limit_ns the guest gets EINVAL (a memory fault:
     * FAILED). For kernels that fail the guest's conversion on any non-zero
     * MAP_GPA_RANGE value: the safe choice when unsure. */
    GUESTMEM_VMM_RETRIES = 0,
    /** The guest gets EAGAIN and retries (kernels with the MAP_GPA_RANGE
     * return-code change); ABI 0.2's behaviour. */
    GUESTMEM_GUEST_RETRIES = 1
};

/** The router's answer for one exit or request. */
typedef struct guestmem_exit_outcome {
    uint32_t size;           /**< set by the caller: sizeof(guestmem_exit_outcome) (ABI 0.2's 16 bytes still accepted: no wait_fd then) */
    uint32_t disposition;    /**< a guestmem_exit_disposition */
    uint64_t hypercall_ret;  /**< MAP_GPA_RANGE: what the guest gets (0, EINVAL 22 or EAGAIN 11); else 0 */
    int32_t wait_fd;         /**< ABI 0.3: RETRY_LATER: the fd to poll (guestmem_router_retry_options::wait_fd), else -1 */
    uint32_t reserved0;      /**< written as 0 */
} guestmem_exit_outcome;

/** A log sink: one line (not NUL-terminated, no newline), valid during the call. */
typedef void (*guestmem_log_fn)(void* ctx, const char* line, size_t len);

/** How a router is made (NULL: no log, no options). */
typedef struct guestmem_exit_router_config {
    uint32_t size;            /**< set by the caller: sizeof(guestmem_exit_router_config) */
    uint8_t defer_if_pinned;  /**< 1: conversions to guest_only proceed over pins (guestmem_convert_options) */
    uint8_t reserved[3];      /**< must be 0 */
    guestmem_log_fn log;      /**< called for every refused request, or NULL */
    void* log_ctx;            /**< its first argument */
} guestmem_exit_router_config;

/** A clock for the retry limit: now in ns (monotonic). */
typedef uint64_t (*guestmem_clock_fn)(void* ctx);

/** How a router retries (ABI 0.3; guestmem_exit_router_create_with_retry;
 * NULL: GUESTMEM_VMM_RETRIES, 1 s, no wait fd, CLOCK_MONOTONIC). */
typedef struct guestmem_router_retry_options {
    uint32_t size;            /**< set by the caller: sizeof(guestmem_router_retry_options) */
    uint32_t policy;          /**< a guestmem_retry_policy */
    uint64_t retry_limit_ns;  /**< how long one request is retried before the guest gets EINVAL; 0 means 1 s */
    int32_t wait_fd;          /**< handed back with RETRY_LATER (an eventfd guestmem_set_unblock_eventfd signals), or -1 */
    uint32_t reserved0;       /**< must be 0 */
    guestmem_clock_fn now_ns; /**< the clock retries are timed by, or NULL: CLOCK_MONOTONIC */
    void* now_ctx;            /**< its argument */
} guestmem_router_retry_options;

/** One vCPU's pending retry under GUESTMEM_VMM_RETRIES (ABI 0.3), owned by
 * the caller: zero it, set size, and pass the same one for every exit of
 * that vCPU. The router reads and writes it; the caller only reads it. */
typedef struct guestmem_vcpu_retry {
    uint32_t size;         /**< set by the caller: sizeof(guestmem_vcpu_retry) */
    uint32_t exit_reason;  /**< the pending request's exit (KVM_EXIT_HYPERCALL or _MEMORY_FAULT; 0: a bare request) */
    uint8_t pending;       /**< 1 while a request is being retried (0 or 1) */
    uint8_t reserved[7];   /**< must be 0 */
    uint64_t args[3];      /**< the request: (gpa, npages, attributes) or (gpa, size, flags) */
    uint64_t since_ns;     /**< when its first refusal came */
    uint64_t attempts;     /**< refusals so far */
} guestmem_vcpu_retry;

/** Which kernel interface a KVM attributes consumer drives. */
enum guestmem_kvm_attributes_target {
    GUESTMEM_KVM_ATTRIBUTES_VM = 0,          /**< KVM_SET_MEMORY_ATTRIBUTES on a VM fd; targets are GFNs */
    GUESTMEM_KVM_ATTRIBUTES_GUEST_MEMFD = 1  /**< KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd; targets are file pages */
};

/** What a KVM attributes consumer counted. */
typedef struct guestmem_kvm_attributes_stats {
    uint32_t size;           /**< set by the caller: sizeof(guestmem_kvm_attributes_stats) */
    uint32_t reserved0;      /**< written as 0 */
    uint64_t sets;           /**< attribute ioctls that succeeded */
    uint64_t refusals;       /**< ioctls the kernel refused (each a veto) */
    uint64_t undos;          /**< aborts that set the attributes back */
    uint64_t undo_failures;  /**< of those, ioctls that failed */
} guestmem_kvm_attributes_stats;

/** The two backings a discard consumer punches (fds not owned; they must
 * outlive the binding). */
typedef struct guestmem_discard_config {
    uint32_t size;           /**< set by the caller: sizeof(guestmem_discard_config) */
    int32_t shared_fd;       /**< the shared backing (memfd, shmem file), or -1: never punched */
    uint64_t shared_first;   /**< its page for the binding's first object page */
    int32_t private_fd;      /**< the private backing (guest_memfd), or -1: never punched */
    uint32_t reserved0;      /**< must be 0 */
    uint64_t private_first;  /**< its page for the binding's first object page */
} guestmem_discard_config;

/** What a discard consumer did. */
typedef struct guestmem_discard_stats {
    uint32_t size;             /**< set by the caller: sizeof(guestmem_discard_stats) */
    int32_t last_failure;      /**< the code of the latest refused punch, or GUESTMEM_OK */
    uint64_t shared_punches;   /**< punches of the shared backing */
    uint64_t shared_pages;     /**< pages they covered */
    uint64_t private_punches;  /**< punches of the private backing */
    uint64_t private_pages;    /**< pages they covered */
    uint64_t failures;         /**< punches the kernel refused (the pages stay charged) */
} guestmem_discard_stats;

/* ---- GPA map ------------------------------------------------------------- */

/** An empty map (64 slots) into `*out`. Errors: INVALID_ARGUMENT (NULL
 * out); OUT_OF_MEMORY. Thread safety: any thread. */
GUESTMEM_C_API int32_t guestmem_gpa_map_create(guestmem_gpa_map** out, guestmem_error* err);

/** Drop the caller's reference: the map goes (its slots' references on
 * their objects with it) once no router uses it. NULL: no-op.
 * Thread safety: no other call on this handle may run or follow. */
GUESTMEM_C_API void guestmem_gpa_map_destroy(guestmem_gpa_map* map);

/** Add slot `id`: GPA [gpa, gpa + pages * 4 KiB) is object pages [first,
 * first + pages) of `mem`. Errors (nothing changes): INVALID_ARGUMENT (NULL
 * map or mem); INVALID_RANGE (gpa unaligned, 0 pages, past the guest
 * physical space or the object); ALREADY_BOUND (id in use, a GFN in another
 * slot, an object page another slot maps); OUT_OF_MEMORY (64 slots).
 * Thread safety: not concurrent with any other call on the map. */
GUESTMEM_C_API int32_t guestmem_gpa_map_add_slot(guestmem_gpa_map* map, uint32_t id, uint64_t gpa, uint64_t pages,
                                                 guestmem_memory* mem, uint64_t first, guestmem_error* err);

/** Remove slot `id` (converts nothing). Errors: INVALID_ARGUMENT (NULL
 * map); NOT_BOUND (no such slot). Thread safety: not concurrent with any
 * other call on the map. */
GUESTMEM_C_API int32_t guestmem_gpa_map_remove_slot(guestmem_gpa_map* map, uint32_t id, guestmem_error* err);

/** The slot holding `gpa` into `*out`. Errors: INVALID_ARGUMENT (NULL map
 * or out, out->size too small); INVALID_RANGE (a hole, at gpa / 4096).
 * Thread safety: any thread while no slot is added or removed. */
GUESTMEM_C_API int32_t guestmem_gpa_map_find(const guestmem_gpa_map* map, uint64_t gpa, guestmem_gpa_slot* out,
                                             guestmem_error* err);

/** Slots in the map (0 for NULL). Thread safety: as guestmem_gpa_map_find. */
GUESTMEM_C_API uint32_t guestmem_gpa_map_slots(const guestmem_gpa_map* map);

/** Convert [gpa, gpa + pages * 4 KiB) to `to` with one all-or-nothing
 * conversion of one object (`opts` may be NULL). Errors: INVALID_ARGUMENT
 * (NULL map, bad opts or `to`); INVALID_RANGE (a bad range, a hole, a
 * second object or a jump in object pages: nothing touched); the object's
 * convert errors with `page` the GFN. Thread safety: any thread while no
 * slot is added or removed (each object's lock is taken). */
GUESTMEM_C_API int32_t guestmem_gpa_map_convert(guestmem_gpa_map* map, uint64_t gpa, uint64_t pages, uint32_t to,
                                                const guestmem_convert_options* opts, guestmem_error* err);

/* ---- exit router ----------------------------------------------------------- */

/** A router converting through `map` (it takes a reference) as `cfg` says
 * (may be NULL), into `*out`. It gives the guest EAGAIN for a transient
 * refusal (GUESTMEM_GUEST_RETRIES, ABI 0.2's behaviour); to choose,
 * use guestmem_exit_router_create_with_retry. Errors: INVALID_ARGUMENT (NULL map or out,
 * bad cfg); NOT_SUPPORTED (unknown tail bytes); OUT_OF_MEMORY.
 * Thread safety: any thread. */
GUESTMEM_C_API int32_t guestmem_exit_router_create(guestmem_gpa_map* map, const guestmem_exit_router_config* cfg,
                                                   guestmem_exit_router** out, guestmem_error* err);

/** A router as guestmem_exit_router_create makes, retrying as `retry` says
 * (NULL: GUESTMEM_VMM_RETRIES, 1 s, no wait fd), into `*out` (ABI 0.3).
 * guestmem_exit_router_create keeps ABI 0.2's behaviour (GUESTMEM_GUEST_RETRIES).
 * Errors: those of guestmem_exit_router_create; INVALID_ARGUMENT (retry with
 * a bad size, policy, reserved0 or a wait_fd below -1); NOT_SUPPORTED
 * (unknown tail bytes). Allocates: the router. Thread safety: any thread. */
GUESTMEM_C_API int32_t guestmem_exit_router_create_with_retry(guestmem_gpa_map* map,
                                                              const guestmem_exit_router_config* cfg,
                                                              const guestmem_router_retry_options* retry,
                                                              guestmem_exit_router** out, guestmem_error* err);

/** The router's retry policy (a guestmem_retry_policy) into `*out`. Errors:
 * INVALID_ARGUMENT (NULL router or out). Thread safety: any thread. */
GUESTMEM_C_API int32_t guestmem_exit_router_retry_policy(const guestmem_exit_router* router, uint32_t* out,
                                                         guestmem_error* err);

/** Free the router (and its reference on the map). NULL: no-op.
 * Thread safety: no other call on this handle may run or follow. */
GUESTMEM_C_API void guestmem_exit_router_destroy(guestmem_exit_router* router);

/** Look at `run` after KVM_RUN: a KVM_EXIT_MEMORY_FAULT converts the range
 * (to guest_only when flags has KVM_MEMORY_EXIT_FLAG_PRIVATE); a
 * KVM_EXIT_HYPERCALL of KVM_HC_MAP_GPA_RANGE converts and writes
 * run->hypercall.ret; anything else is GUESTMEM_EXIT_NOT_MINE, run
 * untouched. `out->disposition` says what to do next. Returns GUESTMEM_OK
 * when the request succeeded or was not the router's, else the refusal's
 * code (also in err, page a GFN; for a hypercall the guest was told too).
 * Errors of the call itself: INVALID_ARGUMENT (NULL router, run or out;
 * out->size too small), disposition FAILED when out is usable.
 * Thread safety: any thread, several vCPUs at once, if the log sink is
 * thread-safe (while no slot is added or removed). */
GUESTMEM_C_API int32_t guestmem_exit_router_handle(guestmem_exit_router* router, struct kvm_run* run,
                                                   guestmem_exit_outcome* out, guestmem_error* err);

/** guestmem_exit_router_handle with `vcpu`'s pending retry (ABI 0.3):
 * under GUESTMEM_VMM_RETRIES a transient refusal gives disposition
 * RETRY_LATER, out->wait_fd, the refusal's code, and leaves `run` as it was
 * (hypercall.ret unwritten); the same exit handed back later with the same
 * `vcpu` is retried until retry_limit_ns after its first refusal, then the
 * guest gets EINVAL (a memory fault: FAILED) and the log a line. A success,
 * a lasting error or another request forgets the pending one.
 * guestmem_exit_router_handle keeps one such state per thread instead.
 * Errors: as guestmem_exit_router_handle; INVALID_ARGUMENT (NULL vcpu,
 * vcpu->size too small, pending not 0 or 1, reserved bytes set).
 * Cost: one conversion, plus one clock read on a transient refusal.
 * Thread safety: as guestmem_exit_router_handle; `vcpu` is one thread's at a time. */
GUESTMEM_C_API int32_t guestmem_exit_router_handle_retry(guestmem_exit_router* router, struct kvm_run* run,
                                                         guestmem_vcpu_retry* vcpu, guestmem_exit_outcome* out,
                                                         guestmem_error* err);

/** Serve a memory-fault exit given by its fields (flags, gpa, size in
 * bytes), as guestmem_exit_router_handle does. Same returns and errors;
 * an unknown flag bit is INVALID_ARGUMENT with disposition FAILED.
 * Thread safety: as guestmem_exit_router_handle. */
GUESTMEM_C_API int32_t guestmem_exit_router_memory_fault(guestmem_exit_router* router, uint64_t gpa, uint64_t size,
                                                         uint64_t flags, guestmem_exit_outcome* out,
                                                         guestmem_error* err);

/** Serve a KVM_HC_MAP_GPA_RANGE request from any transport, with no retry
 * policy: disposition always RESUME, hypercall_ret 0, EINVAL or EAGAIN for
 * the guest. Same
 * returns and errors as guestmem_exit_router_handle.
 * Thread safety: as guestmem_exit_router_handle. */
GUESTMEM_C_API int32_t guestmem_exit_router_map_gpa_range(guestmem_exit_router* router, uint64_t gpa, uint64_t npages,
                                                          uint64_t attributes, guestmem_exit_outcome* out,
                                                          guestmem_error* err);

/** guestmem_exit_router_map_gpa_range with `vcpu`'s pending retry (ABI
 * 0.3): under GUESTMEM_VMM_RETRIES a transient refusal is RETRY_LATER with
 * hypercall_ret 0 (tell the guest nothing yet; call again with the same
 * `vcpu`), as guestmem_exit_router_handle_retry. Errors: as it.
 * Thread safety: as guestmem_exit_router_handle_retry. */
GUESTMEM_C_API int32_t guestmem_exit_router_map_gpa_range_retry(guestmem_exit_router* router, uint64_t gpa,
                                                                uint64_t npages, uint64_t attributes,
                                                                guestmem_vcpu_retry* vcpu,
                                                                guestmem_exit_outcome* out, guestmem_error* err);

/** Make `mem` signal the eventfd `fd` (not owned; it must stay open while
 * set) whenever a refused conversion may now succeed: after an unpin, a
 * conversion that changed something, a punch, a quarantine release or an
 * unbind (ABI 0.3). Give the same fd to guestmem_router_retry_options::wait_fd;
 * the VMM polls it, reads it to reset it, and re-enters the exit. Spurious
 * wake-ups are expected. -1 stops the signalling. Errors: INVALID_ARGUMENT
 * (NULL mem, fd below -1); OUT_OF_MEMORY. Allocates: a small notifier.
 * Thread safety: any thread (exclusive lock), not from a consumer callback,
 * and not concurrently with another guestmem_set_unblock_eventfd on `mem`. */
GUESTMEM_C_API int32_t guestmem_set_unblock_eventfd(guestmem_memory* mem, int32_t fd, guestmem_error* err);

/* ---- KVM consumers ---------------------------------------------------------- */

/** Attach a consumer that sets KVM's PRIVATE memory attribute on every
 * conversion, through `target` on `fd` (a VM fd or a guest_memfd; not
 * owned), over object pages [begin, end) at `target_base` (the first GFN,
 * or the first guest_memfd page). It probes the kernel first and binds as
 * an irrevocable binding (it prepares after every vetoable consumer); the
 * kernel's refusal in a conversion is a veto. `*id_out` (may be NULL) gets
 * the binding id (guestmem_unbind frees the consumer). Errors:
 * INVALID_ARGUMENT (NULL mem, bad target); NOT_SUPPORTED (the kernel lacks
 * the attribute: said here, never silently); the probe's errno mapped;
 * INVALID_RANGE; guestmem_bind's. Thread safety: any thread (exclusive lock). */
GUESTMEM_C_API int32_t guestmem_kvm_attributes_attach(guestmem_memory* mem, int32_t fd, uint32_t target,
                                                      uint64_t begin, uint64_t end, uint64_t target_base,
                                                      uint64_t* id_out, guestmem_error* err);

/** The counters of the attributes consumer of binding `binding_id`.
 * Errors: INVALID_ARGUMENT (NULL mem or out, out->size too small);
 * NOT_BOUND (no such binding, or not an attributes consumer's).
 * Thread safety: no lock: read while no conversion runs on `mem`. */
GUESTMEM_C_API int32_t guestmem_kvm_attributes_get_stats(const guestmem_memory* mem, uint64_t binding_id,
                                                         guestmem_kvm_attributes_stats* out, guestmem_error* err);

/** Attach a consumer that punches the backing a committed conversion
 * leaves (to guest_only: the shared one; to shared: the private one;
 * truncate: both) over object pages [begin, end). Errors: INVALID_ARGUMENT
 * (NULL mem, bad cfg); NOT_SUPPORTED (unknown tail bytes); INVALID_RANGE
 * (file offsets past 2^63); guestmem_bind's. `*id_out` as above.
 * Thread safety: any thread (exclusive lock). */
GUESTMEM_C_API int32_t guestmem_discard_attach(guestmem_memory* mem, const guestmem_discard_config* cfg,
                                               uint64_t begin, uint64_t end, uint64_t* id_out, guestmem_error* err);

/** The counters of the discard consumer of binding `binding_id`. Errors as
 * guestmem_kvm_attributes_get_stats. Thread safety: as it. */
GUESTMEM_C_API int32_t guestmem_discard_get_stats(const guestmem_memory* mem, uint64_t binding_id,
                                                  guestmem_discard_stats* out, guestmem_error* err);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GUESTMEM_C_GUESTMEM_KVM_H */
