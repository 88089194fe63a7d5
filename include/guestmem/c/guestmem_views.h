/** @file
 * The C ABI of views (ABI 0.2; C++ guestmem::memory_view): one shared
 * storage, several VMs (owners), each opening views with their own access
 * policy and their own consumers. A conversion through any view runs one
 * two-phase round over every view's consumers. Included by guestmem.h; the
 * conventions there (error struct, size-prefixed structs, NULL-safety,
 * enumerations as uint32_t) hold here too.
 *
 * Handles and lifetimes:
 * - guestmem_view: one view. guestmem_view_close() closes it (its bindings
 *   are released) but the handle stays valid: every later call through it
 *   gets GUESTMEM_ERR_NOT_BOUND. guestmem_view_free() closes it if still
 *   open and frees the handle. A view closed by its owner's close is the
 *   same: closed, handle valid until freed. The storage (its folios) goes
 *   when its last view closes; the allocator and the control block when
 *   the last handle is freed, in any order.
 * - Owners are guestmem_owner values (slot and generation); a closed
 *   owner's value is refused with NOT_BOUND, never confused with a later one.
 * - guestmem_view_binding: one binding made through a view; valid until
 *   guestmem_view_unbind of its id or guestmem_view_free of its view (a
 *   close leaves it valid and unbound).
 *
 * Costs: as guestmem.h's calls, plus the view table's lock (shared for the
 * storage's operations, exclusive for open, close, bind and unbind) and an
 * O(1) generation check. Thread safety: "any thread" as in guestmem.h, with
 * the view table lock taken before the storage's; consumer callbacks run
 * under both and must not call into any view of the storage.
 */
#ifndef GUESTMEM_C_GUESTMEM_VIEWS_H
#define GUESTMEM_C_GUESTMEM_VIEWS_H

#include <guestmem/c/guestmem.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The access rules a view applies to faults and pins through it. */
enum guestmem_confidentiality {
    GUESTMEM_CONFIDENTIAL = 0,     /**< guest_only pages: hypervisor (and trusted devices) only */
    GUESTMEM_NON_CONFIDENTIAL = 1  /**< every accessor may map every page */
};

/** Whether a view's bind tells the new consumer the current shared runs. */
enum guestmem_replay_mode {
    GUESTMEM_REPLAY_NONE = 0,      /**< bind only */
    GUESTMEM_REPLAY_POPULATED = 1  /**< bind, then populate each shared run (guestmem_consumer_ops::populate) */
};

/** A view's access policy (NULL where accepted: confidential, trusted devices). */
typedef struct guestmem_access_policy {
    uint32_t size;            /**< set by the caller: sizeof(guestmem_access_policy) */
    uint32_t mode;            /**< a guestmem_confidentiality */
    uint8_t trusted_devices;  /**< confidential: 1 lets GUESTMEM_TRUSTED_DEVICE map guest_only pages (0 or 1) */
    uint8_t reserved[7];      /**< must be 0 */
} guestmem_access_policy;

/** How a storage is opened (NULL: 8 views, 4 owners). */
typedef struct guestmem_storage_options {
    uint32_t size;        /**< set by the caller: sizeof(guestmem_storage_options) */
    uint32_t max_views;   /**< view table size, fixed; 0 means 8 */
    uint32_t max_owners;  /**< owner table size, fixed; 0 means 4 */
    uint32_t reserved0;   /**< must be 0 */
} guestmem_storage_options;

/** An owner (a VM) of views, as a value: compare both fields. */
typedef struct guestmem_owner {
    uint32_t slot;        /**< its slot in the storage's owner table */
    uint32_t reserved;    /**< 0 */
    uint64_t generation;  /**< the slot's generation when the owner was added (0: never a live owner) */
} guestmem_owner;

/** One view of a shared storage (opaque). */
typedef struct guestmem_view guestmem_view;
/** One binding made through a view (opaque). */
typedef struct guestmem_view_binding guestmem_view_binding;

/** Open a shared storage as `cfg` says (as guestmem_create) with one owner
 * and its first view, whose policy is `policy` (may be NULL); `*out`
 * receives the view (NULL on error). Errors: those of guestmem_create;
 * INVALID_ARGUMENT (NULL out; opts or policy with a bad size, mode,
 * trusted_devices or reserved bytes); NOT_SUPPORTED (unknown tail bytes);
 * OUT_OF_MEMORY. Allocates: the control block and the handle.
 * Thread safety: any thread. */
GUESTMEM_C_API int32_t guestmem_view_open_storage(const guestmem_config* cfg, const guestmem_storage_options* opts,
                                                  const guestmem_access_policy* policy, guestmem_view** out,
                                                  guestmem_error* err);

/** A new owner (a VM) of the storage, with no view yet, into `*owner_out`.
 * Errors: INVALID_ARGUMENT (NULL view or owner_out); NOT_BOUND (view
 * closed); OUT_OF_MEMORY (owner table full). Cost: O(max_owners).
 * Thread safety: any thread (view table lock exclusive). */
GUESTMEM_C_API int32_t guestmem_view_add_owner(guestmem_view* view, guestmem_owner* owner_out, guestmem_error* err);

/** The owner of `view` into `*owner_out`. Errors: INVALID_ARGUMENT (NULL
 * view or owner_out); NOT_BOUND (view closed).
 * Thread safety: any thread (view table lock shared). */
GUESTMEM_C_API int32_t guestmem_view_owner(const guestmem_view* view, guestmem_owner* owner_out, guestmem_error* err);

/** Open another view of `view`'s storage for `owner` with `policy` (NULL:
 * the default); `*out` receives it (NULL on error). Errors: INVALID_ARGUMENT
 * (NULL view or out, a bad policy); NOT_BOUND (view closed, owner closed or
 * stale); OUT_OF_MEMORY (view table full, or no memory for the handle).
 * Cost: O(max_views). Thread safety: any thread (view table lock exclusive). */
GUESTMEM_C_API int32_t guestmem_view_open(guestmem_view* view, guestmem_owner owner, const guestmem_access_policy* policy,
                                          guestmem_view** out, guestmem_error* err);

/** Close `view`: the bindings made through it are released, then the view
 * is gone (the last view destroys the storage). The handle stays valid
 * (calls through it get NOT_BOUND) until guestmem_view_free. Errors:
 * INVALID_ARGUMENT (NULL view); NOT_BOUND (already closed). Cost:
 * O(bindings). Thread safety: any thread (view table lock exclusive). */
GUESTMEM_C_API int32_t guestmem_view_close(guestmem_view* view, guestmem_error* err);

/** Close every view of `owner` (as guestmem_view_close; `view` itself if
 * it is one of them) and make `owner` stale. Errors: INVALID_ARGUMENT (NULL
 * view); NOT_BOUND (view closed; owner closed or stale). Cost: O(max_views
 * + bindings). Thread safety: any thread (view table lock exclusive). */
GUESTMEM_C_API int32_t guestmem_view_close_owner(guestmem_view* view, guestmem_owner owner, guestmem_error* err);

/** Close `view` if open, then free the handle and its bindings' handles.
 * NULL is a no-op. Thread safety: no other call on this handle may run or
 * follow; other views' handles are unaffected. */
GUESTMEM_C_API void guestmem_view_free(guestmem_view* view);

/** 1 while `view` is open, else 0 (NULL: 0). Thread safety: any thread. */
GUESTMEM_C_API int guestmem_view_is_open(const guestmem_view* view);

/** Open views of the storage (0 once it is gone, or for NULL).
 * Thread safety: any thread. */
GUESTMEM_C_API uint32_t guestmem_view_open_views(const guestmem_view* view);

/* ---- the storage's operations, through a view ----------------------------
 * Each is its guestmem.h twin on the storage, after the view's check:
 * errors INVALID_ARGUMENT (NULL view), NOT_BOUND (view closed), then the
 * twin's. Thread safety: any thread (view table lock shared, then the
 * storage's lock as the twin takes it). */

/** guestmem_allocate through `view`.
 * Thread safety: any thread (view table lock shared; exclusive object lock). */
GUESTMEM_C_API int32_t guestmem_view_allocate(guestmem_view* view, uint64_t begin, uint64_t end, guestmem_error* err);
/** guestmem_punch_hole through `view` (every view's consumers are told).
 * Thread safety: any thread (view table lock shared; exclusive object lock). */
GUESTMEM_C_API int32_t guestmem_view_punch_hole(guestmem_view* view, uint64_t begin, uint64_t end,
                                                guestmem_error* err);
/** guestmem_release_quarantine through `view`.
 * Thread safety: any thread (view table lock shared; exclusive object lock). */
GUESTMEM_C_API int32_t guestmem_view_release_quarantine(guestmem_view* view, uint64_t begin, uint64_t end,
                                                        guestmem_error* err);
/** guestmem_convert through `view`: one round over every view's consumers;
 * a veto in any view fails it.
 * Thread safety: any thread (view table lock shared; exclusive object lock, consumers called under both). */
GUESTMEM_C_API int32_t guestmem_view_convert(guestmem_view* view, uint64_t begin, uint64_t end, uint32_t to,
                                             const guestmem_convert_options* opts, guestmem_error* err);
/** guestmem_fault under the view's access policy.
 * Thread safety: any thread (view table lock shared; shared object lock). */
GUESTMEM_C_API int32_t guestmem_view_fault(const guestmem_view* view, uint64_t page, uint32_t wanted, uint32_t who,
                                           guestmem_fault_result* out, guestmem_error* err);
/** guestmem_pin under the view's access policy.
 * Thread safety: any thread (view table lock shared; exclusive object lock). */
GUESTMEM_C_API int32_t guestmem_view_pin(guestmem_view* view, uint64_t begin, uint64_t end, uint32_t who,
                                         guestmem_error* err);
/** guestmem_unpin through `view`.
 * Thread safety: any thread (view table lock shared; exclusive object lock). */
GUESTMEM_C_API int32_t guestmem_view_unpin(guestmem_view* view, uint64_t begin, uint64_t end, guestmem_error* err);
/** guestmem_memory_failure through `view` (every view's consumers are told).
 * Thread safety: any thread (view table lock shared; exclusive object lock). */
GUESTMEM_C_API int32_t guestmem_view_memory_failure(guestmem_view* view, uint64_t page, guestmem_error* err);
/** guestmem_shareability_at through `view`.
 * Thread safety: any thread (view table lock shared; shared object lock). */
GUESTMEM_C_API int32_t guestmem_view_shareability_at(const guestmem_view* view, uint64_t page, uint32_t* out,
                                                     guestmem_error* err);
/** guestmem_get_stats of the storage (bindings of every view).
 * Thread safety: any thread (view table lock shared; shared object lock). */
GUESTMEM_C_API int32_t guestmem_view_get_stats(const guestmem_view* view, guestmem_stats* out, guestmem_error* err);

/* ---- snapshots of the storage, through a view -----------------------------
 * Each is its guestmem_snapshot.h twin on the storage (same bytes, same
 * format), with the view table lock held for the whole call (shared to
 * save, exclusive to restore or apply), so no view closes the storage
 * under it. Errors: INVALID_ARGUMENT (NULL view),
 * NOT_BOUND (view closed), then the twin's. A migration saves through a
 * helper's view of the source VM's storage while the VM converts through
 * its own (examples/c/migration.c). */

/** guestmem_generation of the storage into `*out`. Errors: INVALID_ARGUMENT
 * (NULL view or out); NOT_BOUND (view closed). Cost: O(1).
 * Thread safety: any thread (view table lock shared; shared object lock). */
GUESTMEM_C_API int32_t guestmem_view_generation(const guestmem_view* view, uint64_t* out, guestmem_error* err);

/** guestmem_snapshot_saved_size of the storage into `*out` (other views may
 * change it before the save). Errors: INVALID_ARGUMENT (NULL view or out);
 * NOT_BOUND; BUSY (a pinned page). Cost: O(runs + leaves).
 * Thread safety: any thread (view table lock shared; shared object lock). */
GUESTMEM_C_API int32_t guestmem_view_saved_size(const guestmem_view* view, size_t* out, guestmem_error* err);

/** guestmem_snapshot_save of the storage into `buf` (`cap` bytes); `*written`
 * (may be NULL) gets its size. Errors: INVALID_ARGUMENT (NULL view; NULL buf
 * with cap > 0; `cap` too small); NOT_BOUND; BUSY. Cost: O(runs + leaves).
 * Thread safety: any thread (view table lock shared; shared object lock). */
GUESTMEM_C_API int32_t guestmem_view_save(const guestmem_view* view, uint8_t* buf, size_t cap, size_t* written,
                                          guestmem_error* err);

/** The bytes guestmem_view_save_increment(view, since, ...) needs now, into
 * `*out`. Errors: INVALID_ARGUMENT (NULL view or out; `since` past the
 * storage's generation); NOT_BOUND; NOT_SUPPORTED (`since` older than the
 * change log, or poison since: save a full snapshot). Cost: O(k log k +
 * runs in the changed ranges).
 * Thread safety: any thread (view table lock shared; shared object lock). */
GUESTMEM_C_API int32_t guestmem_view_increment_size(const guestmem_view* view, uint64_t since, size_t* out,
                                                    guestmem_error* err);

/** guestmem_snapshot_save_increment of the storage since generation `since`
 * into `buf` (`cap` bytes); `*written` (may be NULL) gets its size. Errors:
 * increment_size's; INVALID_ARGUMENT (NULL buf with cap > 0; `cap` too
 * small). Cost: as increment_size.
 * Thread safety: any thread (view table lock shared; shared object lock). */
GUESTMEM_C_API int32_t guestmem_view_save_increment(const guestmem_view* view, uint64_t since, uint8_t* buf,
                                                    size_t cap, size_t* written, guestmem_error* err);

/** guestmem_snapshot_restore of the full snapshot at `bytes` into the
 * storage, which must be fresh. Errors: INVALID_ARGUMENT (NULL view; NULL
 * bytes with len > 0); NOT_BOUND; then the twin's (nothing changes on
 * error). Cost: O(bytes + runs + leaves).
 * Thread safety: any thread (view table lock exclusive, then the object's). */
GUESTMEM_C_API int32_t guestmem_view_restore(guestmem_view* view, const uint8_t* bytes, size_t len,
                                             guestmem_error* err);

/** guestmem_snapshot_apply_increment of `bytes` to the storage (every view's
 * consumers are told of its conversions). Errors: INVALID_ARGUMENT (NULL
 * view; NULL bytes with len > 0); NOT_BOUND; then the twin's (the storage
 * stays at the base generation on error). Cost: one conversion per run.
 * Thread safety: any thread (view table lock exclusive, so no other view
 * converts meanwhile; exclusive object lock per conversion). */
GUESTMEM_C_API int32_t guestmem_view_apply_increment(guestmem_view* view, const uint8_t* bytes, size_t len,
                                                     guestmem_error* err);

/* ---- bindings --------------------------------------------------------------- */

/** Bind the consumer (`ops`, `ctx`) over storage pages [begin, end) through
 * `view`, at `target_base`; with `replay` GUESTMEM_REPLAY_POPULATED its
 * populate callback is then told each shared run (a refusal leaves it
 * unbound: the error is VETOED with the consumer's page, and the binding id
 * it had). `*binding_out` and `*id_out` (each may be NULL) get the handle
 * and the id for guestmem_view_unbind. Errors: INVALID_ARGUMENT (NULL view
 * or ops, bad ops, bad `replay`); NOT_BOUND (view closed); then
 * guestmem_bind's; VETOED (replay). Cost: O(bindings + log runs + shared
 * runs). Thread safety: any thread (view table lock exclusive, so no
 * conversion runs between the bind and its replay). */
GUESTMEM_C_API int32_t guestmem_view_bind(guestmem_view* view, const guestmem_consumer_ops* ops, void* ctx,
                                          uint64_t begin, uint64_t end, uint64_t target_base, uint32_t replay,
                                          uint64_t* id_out, guestmem_view_binding** binding_out, guestmem_error* err);

/** Unbind binding `binding_id` made through `view` (its consumer gets a
 * release); its handle dies. Errors: INVALID_ARGUMENT (NULL view);
 * NOT_BOUND (view closed; an id not bound through this view).
 * Thread safety: any thread (view table lock exclusive); the binding's
 * handle must not be in use by another thread. */
GUESTMEM_C_API int32_t guestmem_view_unbind(guestmem_view* view, uint64_t binding_id, guestmem_error* err);

/** The id of `binding` (0 for NULL). Thread safety: any thread, no lock. */
GUESTMEM_C_API uint64_t guestmem_view_binding_id(const guestmem_view_binding* binding);

/** The sequence of `binding`, read before a fault through its view (odd
 * while an invalidation over it is in flight). NULL gives 1.
 * Thread safety: any thread, no lock (one atomic load). */
GUESTMEM_C_API uint64_t guestmem_view_read_begin(const guestmem_view_binding* binding);

/** Nonzero if an invalidation over `binding` was in flight at read_begin or
 * ran since `seq`: fault again. NULL gives 1.
 * Thread safety: any thread, no lock (one atomic load). */
GUESTMEM_C_API int guestmem_view_read_retry(const guestmem_view_binding* binding, uint64_t seq);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GUESTMEM_C_GUESTMEM_VIEWS_H */
