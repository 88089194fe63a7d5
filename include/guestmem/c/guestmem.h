/** @file
 * The C ABI of guestmem (libguestmem_c): one guest memory object behind an
 * opaque handle, for VMMs written in C, Rust or anything else that can call
 * C. It covers the C++ `guestmem::guest_memory` API (allocate, punch_hole,
 * release_quarantine, convert, fault, pin/unpin, memory_failure,
 * bind/unbind with a consumer given as a table of C function pointers,
 * read_begin/read_retry, queries, stats, dump) with the allocator chosen at
 * create time: simulated (books only), memfd or KVM guest_memfd.
 *
 * Conventions, for every function below:
 * - A function that can fail returns an `int32_t` error code: 0
 *   (GUESTMEM_OK) on success, else one of the GUESTMEM_ERR_* values. Its
 *   last parameter `err` may be NULL; when it is not, the callee fills it
 *   (see guestmem_error): on success its code is 0 and its message empty.
 * - A call that fails has changed nothing (as in C++).
 * - Page ranges are half-open [begin, end) of 4 KiB page indices.
 * - Enumerations travel as `uint32_t` (C enums have no fixed size); any
 *   value outside the named ones is refused with GUESTMEM_ERR_INVALID_ARGUMENT.
 * - A NULL object, handle or required out-pointer is refused with
 *   GUESTMEM_ERR_INVALID_ARGUMENT; nothing is dereferenced.
 * - No C++ exception or type crosses this boundary.
 * - Thread safety: each function's comment ends with a `Thread safety:`
 *   line. "Any thread" means the call takes the object's lock itself
 *   (shared for faults and queries, exclusive for changes), so it may run
 *   concurrently with any other call on the same object except its
 *   destroy; anything less is said there. Consumer callbacks run under the
 *   object's exclusive lock and must not call back into the object.
 *   Handles themselves carry no lock: a destroy or free must not race any
 *   other call on the same handle.
 *
 * ABI rules (what stays stable within GUESTMEM_ABI_MAJOR):
 * - Every struct that crosses the boundary begins with `uint32_t size`,
 *   which the caller sets to `sizeof` the struct it was compiled with. A
 *   newer library reads and writes only the first `size` bytes; an older
 *   library refuses an input struct with non-zero bytes past the part it
 *   knows (GUESTMEM_ERR_NOT_SUPPORTED), so new fields are appended, and
 *   their zero value means "as before". Fields named `reserved` must be 0.
 * - Existing functions never change their signature; new behaviour comes as
 *   new functions and a higher guestmem_abi_version() minor (0.2 added
 *   views, snapshots and the KVM layer: guestmem_views.h,
 *   guestmem_snapshot.h and guestmem_kvm.h, which this header includes;
 *   0.3 the snapshot calls through views and the router's retry policy).
 * - Only the `guestmem_` functions listed in src/c/exported_symbols.txt are
 *   exported (the CTest test `c_abi_symbols` checks it).
 */
#ifndef GUESTMEM_C_GUESTMEM_H
#define GUESTMEM_C_GUESTMEM_H

#include <stddef.h>
#include <stdint.h>

/// @cond GUESTMEM_C_INTERNAL
#if defined(GUESTMEM_C_BUILDING)
#define GUESTMEM_C_API __attribute__((visibility("default")))
#else
#define GUESTMEM_C_API
#endif
/// @endcond

#ifdef __cplusplus
extern "C" {
#endif

/** ABI major version: bumped only by an incompatible change (then the soname
 * libguestmem_c.so.N, N the major, changes too). */
#define GUESTMEM_ABI_MAJOR 0
/** ABI minor version: bumped when functions or struct fields are added. */
#define GUESTMEM_ABI_MINOR 3
/** The version this header describes, as guestmem_abi_version() returns it:
 * major << 16 | minor. */
#define GUESTMEM_ABI_VERSION ((GUESTMEM_ABI_MAJOR << 16) | GUESTMEM_ABI_MINOR)

/** The page index that names no page (2^64 - 1): guestmem_error::page of an
 * error that is not about a page. */
#define GUESTMEM_NO_PAGE UINT64_MAX
/** The binding id of an error no consumer caused (2^64 - 1). */
#define GUESTMEM_NO_BINDING UINT64_MAX
/** Size of guestmem_error::message, terminator included. */
#define GUESTMEM_MESSAGE_SIZE 160

/** Error codes; the values equal the C++ `guestmem::errc` ones. */
enum guestmem_errc {
    GUESTMEM_OK = 0,                     /**< success */
    GUESTMEM_ERR_INVALID_RANGE = 1,      /**< empty, inverted, overflowing or out-of-bounds range */
    GUESTMEM_ERR_OUT_OF_MEMORY = 2,      /**< the allocator (or a reservation, or the wrapper) ran out */
    GUESTMEM_ERR_BUSY = 3,               /**< an unexpected reference (pin) blocks the operation */
    GUESTMEM_ERR_VETOED = 4,             /**< a consumer refused a conversion */
    GUESTMEM_ERR_POISONED = 5,           /**< the page is poisoned or quarantined */
    GUESTMEM_ERR_NOT_ALLOCATED = 6,      /**< no folio backs the page (a hole) */
    GUESTMEM_ERR_PERMISSION_DENIED = 7,  /**< the accessor may not map or pin this page */
    GUESTMEM_ERR_NOT_SUPPORTED = 8,      /**< the allocator, platform or this ABI version cannot do this */
    GUESTMEM_ERR_INVALID_ARGUMENT = 9,   /**< NULL handle, bad enumeration value, bad struct size */
    GUESTMEM_ERR_ALREADY_BOUND = 10,     /**< the consumer already has a binding overlapping the pages */
    GUESTMEM_ERR_NOT_BOUND = 11,         /**< unbind of an unknown or stale binding id */
    GUESTMEM_ERR_RETRY = 12,             /**< the mapping went stale: fault again */
    GUESTMEM_ERR_WOULD_DEADLOCK = 13     /**< a consumer callback called back into its own object */
};

/** Per page: who may map it. */
enum guestmem_shareability {
    GUESTMEM_SHARED = 0,     /**< the host, the hypervisor and every device may map it */
    GUESTMEM_GUEST_ONLY = 1  /**< private: only the hypervisor and trusted devices may map it */
};

/** Per leaf folio: the transient state while a conversion drains pins. */
enum guestmem_mappability {
    GUESTMEM_MAPPABLE_ALL = 0,    /**< a shared folio: everyone may map it */
    GUESTMEM_MAPPABLE_GUEST = 1,  /**< a guest_only folio: the guest side may map it */
    GUESTMEM_MAPPABLE_NONE = 2    /**< pins still drain: no one may map it (faults get RETRY) */
};

/** Who asks for a mapping in a fault or a pin. */
enum guestmem_accessor {
    GUESTMEM_HOST = 0,           /**< host userspace */
    GUESTMEM_HYPERVISOR = 1,     /**< the hypervisor's stage-2 tables */
    GUESTMEM_DEVICE = 2,         /**< an untrusted device behind an IOMMU */
    GUESTMEM_TRUSTED_DEVICE = 3  /**< a device the guest trusts */
};

/** Why a consumer is told to let go. Later ABI versions may add causes: a
 * consumer must treat a value it does not know like GUESTMEM_CAUSE_RELEASE
 * (not vetoable; drop the mappings of the pages it names). */
enum guestmem_cause {
    GUESTMEM_CAUSE_TO_SHARED = 0,       /**< conversion guest_only -> shared (vetoable) */
    GUESTMEM_CAUSE_TO_GUEST_ONLY = 1,   /**< conversion shared -> guest_only (vetoable) */
    GUESTMEM_CAUSE_TRUNCATE = 2,        /**< punch_hole (not vetoable) */
    GUESTMEM_CAUSE_RELEASE = 3,         /**< unbind or destroy (not vetoable) */
    GUESTMEM_CAUSE_MEMORY_FAILURE = 4,  /**< a folio was poisoned (not vetoable) */
    GUESTMEM_CAUSE_REPLAY = 5           /**< ABI 0.2: populate (and its abort) on a view's bind with replay */
};

/** What a conversion does to the pages' contents. */
enum guestmem_content {
    GUESTMEM_CONTENT_PRESERVE = 0,  /**< keep the bytes (the default) */
    GUESTMEM_CONTENT_ZERO = 1       /**< clear the converted pages */
};

/** Where the object's folios come from (guestmem_config::allocator). */
enum guestmem_allocator_kind {
    GUESTMEM_ALLOC_SIMULATED = 0,   /**< books only: fake frame numbers, no memory (tests, simulation) */
    GUESTMEM_ALLOC_MEMFD = 1,       /**< a memfd of the object's size; frames are file page offsets */
    GUESTMEM_ALLOC_GUEST_MEMFD = 2  /**< a KVM guest_memfd made on guestmem_config::vm_fd */
};

/** Folio orders: log2 of a folio's page count. */
enum guestmem_order {
    GUESTMEM_ORDER_4K = 0,  /**< one 4 KiB page */
    GUESTMEM_ORDER_2M = 9,  /**< 512 pages */
    GUESTMEM_ORDER_1G = 18  /**< 262144 pages */
};

/** A failed call's description, filled by the callee. The caller sets
 * `size` (to sizeof(guestmem_error)); the callee writes only within it, and
 * nothing at all when `size` is below offsetof(guestmem_error, message) (a
 * shorter message buffer is filled and truncated to what fits). */
typedef struct guestmem_error {
    uint32_t size;        /**< set by the caller: sizeof(guestmem_error) */
    int32_t code;         /**< GUESTMEM_OK or a GUESTMEM_ERR_* value */
    uint64_t page;        /**< first offending page (the kernel's error_offset), or GUESTMEM_NO_PAGE */
    uint64_t binding_id;  /**< the vetoing consumer's binding, or GUESTMEM_NO_BINDING */
    char message[GUESTMEM_MESSAGE_SIZE];  /**< a sentence in the caller's terms, NUL-terminated */
} guestmem_error;

/** How to create an object (guestmem_create). Zero-initialise it, then set
 * `size`, `pages` and what differs from the defaults. */
typedef struct guestmem_config {
    uint32_t size;          /**< set by the caller: sizeof(guestmem_config) */
    uint32_t allocator;     /**< a guestmem_allocator_kind (0: simulated) */
    uint64_t pages;         /**< object size in 4 KiB pages; must be > 0 */
    uint32_t initial;       /**< initial shareability of every page (0: shared; GUESTMEM_GUEST_ONLY is the usual) */
    uint32_t max_order;     /**< largest folio: GUESTMEM_ORDER_4K, _2M or _1G (memfd, guest_memfd: at most 2M) */
    int32_t vm_fd;          /**< guest_memfd only: the KVM VM fd the guest_memfd is made on (not owned) */
    uint32_t reserved0;     /**< must be 0 */
    uint64_t guest_memfd_flags;  /**< guest_memfd only: GUEST_MEMFD_FLAG_*; 0 means MMAP | INIT_SHARED */
    uint64_t simulated_capacity; /**< simulated only: capacity in pages; 0 means unlimited */
    uint64_t reserved[4];   /**< must be 0: room for later fields */
} guestmem_config;

/** Per-conversion options (guestmem_convert; NULL means all defaults). */
typedef struct guestmem_convert_options {
    uint32_t size;             /**< set by the caller: sizeof(guestmem_convert_options) */
    uint32_t content;          /**< a guestmem_content (0: preserve) */
    uint8_t defer_if_pinned;   /**< 1: to guest_only proceeds while pinned; pinned folios drain (mappability none) */
    uint8_t reserved[7];       /**< must be 0 */
} guestmem_convert_options;

/** What a successful fault may map. */
typedef struct guestmem_fault_result {
    uint32_t size;         /**< set by the caller: sizeof(guestmem_fault_result) */
    uint8_t order;         /**< order of the folio holding the page: the largest mapping size usable */
    uint8_t mappability;   /**< a guestmem_mappability: the folio's when the fault was answered */
    uint8_t reserved[2];   /**< written as 0 */
    uint64_t frame;        /**< frame of the faulting page (memfd, guest_memfd: the file page offset) */
    uint64_t folio_first;  /**< first page of the folio */
    uint64_t folio_frame;  /**< first frame of the folio */
} guestmem_fault_result;

/** Census and counters (guestmem_get_stats): the C++ guest_memory_stats. */
typedef struct guestmem_stats {
    uint32_t size;                /**< set by the caller: sizeof(guestmem_stats) */
    uint32_t reserved0;           /**< written as 0 */
    uint64_t pages;               /**< object size in pages */
    uint64_t shared_pages;        /**< pages that are shared */
    uint64_t guest_only_pages;    /**< pages that are guest_only */
    uint64_t runs;                /**< runs in the shareability map */
    uint64_t allocated_pages;     /**< pages backed by a folio */
    uint64_t folios_4k;           /**< leaf folios of 4 KiB */
    uint64_t folios_2m;           /**< leaf folios of 2 MiB */
    uint64_t folios_1g;           /**< leaf folios of 1 GiB */
    uint64_t split_folios;        /**< folios split into smaller pieces */
    uint64_t pinned_pages;        /**< pages with at least one pin */
    uint64_t poisoned_folios;     /**< poisoned leaf folios still in the object */
    uint64_t quarantined_pages;   /**< truncated poisoned or leaked pages kept out of use */
    uint64_t detached_pages;      /**< pages of folios truncated while pinned */
    uint64_t bindings;            /**< consumer bindings bound */
    uint64_t conversions;         /**< conversions that changed something */
    uint64_t noop_conversions;    /**< conversions of a range already in the target state */
    uint64_t vetoes;              /**< conversions refused by a consumer */
    uint64_t busy;                /**< conversions refused by a pin */
    uint64_t rollbacks;           /**< conversions undone after reserving */
    uint64_t deferred;            /**< folios a deferred conversion sent to mappability none */
    uint64_t quarantined;         /**< pages poisoned because a consumer could not drop them */
} guestmem_stats;

/** What the object is and what backs it (guestmem_get_info). */
typedef struct guestmem_info {
    uint32_t size;        /**< set by the caller: sizeof(guestmem_info) */
    uint32_t allocator;   /**< the guestmem_allocator_kind it was created with */
    uint64_t pages;       /**< object size in pages */
    uint32_t max_order;   /**< the largest folio order allocate uses */
    int32_t fd;           /**< memfd or guest_memfd fd (owned by the object; for memslots), or -1 */
    void* data;           /**< the allocator's own MAP_SHARED mapping of the file, or NULL (simulated) */
    uint64_t bytes;       /**< size of the file and of `data` in bytes, or 0 (simulated) */
} guestmem_info;

/** One consumer's view of one invalidation, clipped to one of its bindings;
 * valid during the callback only. */
typedef struct guestmem_invalidation {
    uint32_t size;          /**< sizeof(guestmem_invalidation) of the library: read only fields within it */
    uint32_t cause;         /**< a guestmem_cause */
    uint64_t page_begin;    /**< object pages [page_begin, page_end), clipped to the binding */
    uint64_t page_end;      /**< one past the last object page */
    uint64_t target_begin;  /**< the same pages in the consumer's own numbers (GFN, IOVA / 4K, ...) */
    uint64_t target_end;    /**< one past the last target page */
    uint64_t sequence;      /**< the binding's sequence while this is in flight (odd) */
    uint64_t binding_id;    /**< the binding this is about */
    uint8_t vetoable;       /**< 1 in the prepare, commit and abort of a conversion */
    uint8_t order;          /**< memory failure: order of the failed folio */
    uint8_t share;          /**< memory failure: the failed folio's guestmem_shareability */
    uint8_t reserved[5];    /**< 0 */
} guestmem_invalidation;

/** Where a consumer's commit reports pages it could not drop (opaque; valid
 * during the commit callback only). */
typedef struct guestmem_commit_report guestmem_commit_report;

/** A consumer: four callbacks and a name, called with the `ctx` given to
 * guestmem_bind. All run under the object's exclusive lock and must not call
 * into the object. The table is copied at bind time. */
typedef struct guestmem_consumer_ops {
    uint32_t size;  /**< set by the caller: sizeof(guestmem_consumer_ops) */
    uint32_t reserved0;  /**< must be 0 */
    /** Check and do the fallible work. Return 0 to accept, or a GUESTMEM_ERR_*
     * code (GUESTMEM_ERR_VETOED is the usual) to refuse; `why` is
     * pre-filled (code VETOED, page_begin, empty message) and may be given a
     * page and a message. Only a vetoable invalidation's refusal is obeyed. A
     * code that is not a GUESTMEM_ERR_* value is taken as a veto whose
     * message says so. NULL: always accept. */
    int32_t (*prepare)(void* ctx, const guestmem_invalidation* inv, guestmem_error* why);
    /** Drop the mappings of inv's pages. Cannot fail: report a page it could
     * not drop with guestmem_report_leaked. NULL: nothing to do. */
    void (*commit)(void* ctx, const guestmem_invalidation* inv, guestmem_commit_report* report);
    /** Undo what a successful prepare did. Cannot fail. NULL: nothing to do. */
    void (*abort)(void* ctx, const guestmem_invalidation* inv);
    /** The folio of order inv->order holding inv's pages was poisoned: unmap
     * them. Single phase, once per binding. NULL: nothing to do. */
    void (*memory_failure)(void* ctx, const guestmem_invalidation* inv);
    /** A short name for veto messages and dumps (copied, at most 31
     * characters kept), or NULL for "consumer". */
    const char* name;
    /** ABI 0.2 (a caller built against 0.1 passes the smaller size, read
     * as NULL here). A view's bind with replay (guestmem_view_bind) calls
     * it once per shared run of the new binding, cause
     * GUESTMEM_CAUSE_REPLAY, in page order, before the bind returns;
     * return and `why` as prepare. A refusal unbinds it again: every run
     * populated before gets an abort and no release follows. NULL: accept
     * without a call. Never called for guestmem_bind. */
    int32_t (*populate)(void* ctx, const guestmem_invalidation* inv, guestmem_error* why);
} guestmem_consumer_ops;

/** A guest memory object (opaque). */
typedef struct guestmem_memory guestmem_memory;
/** A binding of a consumer to a page range (opaque; valid until its unbind
 * or the object's destroy). */
typedef struct guestmem_binding guestmem_binding;

/** Called by guestmem_runs for each shareability run, clipped to the range
 * asked for; return 0 to go on, anything else to stop. */
typedef int (*guestmem_run_fn)(void* ctx, uint64_t begin, uint64_t end, uint32_t shareability);
/** Called by guestmem_dump_to with successive pieces of the dump (not
 * NUL-terminated). */
typedef void (*guestmem_write_fn)(void* ctx, const char* data, size_t len);

/* ---- library ------------------------------------------------------------ */

/** The ABI version of the library loaded: major << 16 | minor. A program
 * built against this header works with a library of the same major and a
 * minor at least GUESTMEM_ABI_MINOR. Cannot fail.
 * Thread safety: any thread, no lock. */
GUESTMEM_C_API uint32_t guestmem_abi_version(void);

/** The name of an error code ("busy", ...; "ok" for 0), or "unknown
 * guestmem error". Never NULL; a static string.
 * Thread safety: any thread, no lock. */
GUESTMEM_C_API const char* guestmem_errc_name(int32_t code);

/* ---- lifetime ----------------------------------------------------------- */

/** Create an object as `cfg` says; `*out` receives it (NULL on error).
 * Errors: INVALID_ARGUMENT (NULL cfg or out; cfg->size too small; a bad
 * allocator kind, initial shareability or max_order; 0 pages; non-zero
 * reserved fields; vm_fd < 0 for guest_memfd); NOT_SUPPORTED (unknown
 * non-zero bytes past the known config; a max_order the allocator cannot
 * do; no guest_memfd on this kernel or VM); OUT_OF_MEMORY; the memfd's or
 * guest_memfd's system errors, mapped to codes, with the kernel's text.
 * Thread safety: any thread; the new object is the caller's alone until it shares the handle. */
GUESTMEM_C_API int32_t guestmem_create(const guestmem_config* cfg, guestmem_memory** out, guestmem_error* err);

/** Destroy an object: every binding is released (consumers get a release
 * invalidation), then the folios and the allocator go. NULL is a no-op. The
 * guestmem_binding handles of the object die with it. A slot of a
 * guestmem_gpa_map over the object holds a reference: the object then lives
 * on (for the map) until that slot is removed or the map destroyed; the
 * caller's handle must not be used after destroy either way.
 * Thread safety: no other call on `mem` (or its bindings) may run or follow. */
GUESTMEM_C_API void guestmem_destroy(guestmem_memory* mem);

/** What `mem` is and what backs it, into `*out` (out->size set by the
 * caller). Errors: INVALID_ARGUMENT (NULL mem or out, out->size too small).
 * Thread safety: any thread, no lock (the fields never change). */
GUESTMEM_C_API int32_t guestmem_get_info(const guestmem_memory* mem, guestmem_info* out, guestmem_error* err);

/* ---- population --------------------------------------------------------- */

/** Back every hole in [begin, end) with folios (fallocate), all or nothing.
 * Errors: INVALID_ARGUMENT (NULL mem); INVALID_RANGE; POISONED (a
 * quarantined page); OUT_OF_MEMORY; the allocator's errors.
 * Thread safety: any thread (exclusive lock). */
GUESTMEM_C_API int32_t guestmem_allocate(guestmem_memory* mem, uint64_t begin, uint64_t end, guestmem_error* err);

/** Truncate [begin, end) (fallocate PUNCH_HOLE); consumers are told, not
 * asked. The part at or past the end is ignored. Errors: INVALID_ARGUMENT
 * (NULL mem); INVALID_RANGE (empty, inverted, or ending past 2^63 bytes).
 * Thread safety: any thread (exclusive lock). */
GUESTMEM_C_API int32_t guestmem_punch_hole(guestmem_memory* mem, uint64_t begin, uint64_t end, guestmem_error* err);

/** Free the quarantined folios overlapping [begin, end) once the consumer
 * really dropped them. Errors: INVALID_ARGUMENT (NULL mem); INVALID_RANGE;
 * BUSY (such a folio is still pinned).
 * Thread safety: any thread (exclusive lock). */
GUESTMEM_C_API int32_t guestmem_release_quarantine(guestmem_memory* mem, uint64_t begin, uint64_t end,
                                                   guestmem_error* err);

/* ---- conversion --------------------------------------------------------- */

/** Change every page of [begin, end) to shareability `to`, all or nothing;
 * `opts` may be NULL. On failure err->page is the first offending page and,
 * for a veto, err->binding_id the vetoing binding. Errors, in order:
 * INVALID_ARGUMENT (NULL mem; opts->size too small or reserved bytes set);
 * INVALID_RANGE; INVALID_ARGUMENT (bad `to` or content); POISONED;
 * OUT_OF_MEMORY; BUSY (to guest_only over a pinned page, without
 * defer_if_pinned); VETOED. A range already all `to` succeeds at once.
 * Thread safety: any thread (exclusive lock; consumers are called under it). */
GUESTMEM_C_API int32_t guestmem_convert(guestmem_memory* mem, uint64_t begin, uint64_t end, uint32_t to,
                                        const guestmem_convert_options* opts, guestmem_error* err);

/* ---- faults ------------------------------------------------------------- */

/** Look up `page` for a mapping of shareability `wanted` by `who`; `*out`
 * (out->size set by the caller) says what to map. Pair it with
 * guestmem_read_begin / guestmem_read_retry. Errors: INVALID_ARGUMENT (NULL
 * mem or out, out->size too small, bad `wanted` or `who`); INVALID_RANGE;
 * PERMISSION_DENIED; NOT_ALLOCATED; POISONED; RETRY.
 * Thread safety: any thread (shared lock). */
GUESTMEM_C_API int32_t guestmem_fault(const guestmem_memory* mem, uint64_t page, uint32_t wanted, uint32_t who,
                                      guestmem_fault_result* out, guestmem_error* err);

/** The sequence of `binding`, read before a fault (odd while an
 * invalidation over it is in flight). No lock. NULL gives 1 (odd: retry).
 * Thread safety: any thread, no lock (one atomic load). */
GUESTMEM_C_API uint64_t guestmem_read_begin(const guestmem_binding* binding);

/** Nonzero if an invalidation over `binding` was in flight at read_begin
 * or has run since `seq`: drop the fault's answer and fault again. No lock.
 * NULL gives 1.
 * Thread safety: any thread, no lock (one atomic load). */
GUESTMEM_C_API int guestmem_read_retry(const guestmem_binding* binding, uint64_t seq);

/* ---- unexpected references ---------------------------------------------- */

/** Take one pin (GUP, IOMMU, I/O in flight) on every page of [begin, end)
 * for `who`, all or nothing. Errors: INVALID_ARGUMENT (NULL mem, bad
 * `who`); INVALID_RANGE; PERMISSION_DENIED (a guest_only page, for the host
 * or a device); BUSY; NOT_ALLOCATED; POISONED; OUT_OF_MEMORY.
 * Thread safety: any thread (exclusive lock). */
GUESTMEM_C_API int32_t guestmem_pin(guestmem_memory* mem, uint64_t begin, uint64_t end, uint32_t who,
                                    guestmem_error* err);

/** Drop one pin on every page of [begin, end), all or nothing; the last
 * pin finishes deferred work. Errors: INVALID_ARGUMENT (NULL mem; a page
 * with no pin); INVALID_RANGE; OUT_OF_MEMORY.
 * Thread safety: any thread (exclusive lock). */
GUESTMEM_C_API int32_t guestmem_unpin(guestmem_memory* mem, uint64_t begin, uint64_t end, guestmem_error* err);

/* ---- memory failure ----------------------------------------------------- */

/** A hardware error hit `page`: poison its leaf folio and tell every binding
 * overlapping it, once. Errors: INVALID_ARGUMENT (NULL mem); INVALID_RANGE;
 * NOT_ALLOCATED (a hole).
 * Thread safety: any thread (exclusive lock). */
GUESTMEM_C_API int32_t guestmem_memory_failure(guestmem_memory* mem, uint64_t page, guestmem_error* err);

/* ---- consumers ---------------------------------------------------------- */

/** Bind the consumer (`ops`, `ctx`) over object pages [begin, end),
 * translated to `target_base` in the consumer's numbers. A consumer is
 * identified by `ctx` and its callbacks: binding the same one twice over
 * overlapping pages is ALREADY_BOUND. `*id_out` (may be NULL) gets the
 * binding id for guestmem_unbind, `*binding_out` (may be NULL) the handle
 * for read_begin/read_retry. Errors: INVALID_ARGUMENT (NULL mem or ops,
 * ops->size too small or reserved set); INVALID_RANGE (also a target range
 * passing 2^64); ALREADY_BOUND; OUT_OF_MEMORY.
 * Thread safety: any thread (exclusive lock). */
GUESTMEM_C_API int32_t guestmem_bind(guestmem_memory* mem, const guestmem_consumer_ops* ops, void* ctx,
                                     uint64_t begin, uint64_t end, uint64_t target_base, uint64_t* id_out,
                                     guestmem_binding** binding_out, guestmem_error* err);

/** Unbind: the consumer gets a release invalidation first; pages it reports
 * are quarantined. The binding's handle dies. Errors: INVALID_ARGUMENT
 * (NULL mem); NOT_BOUND (unknown or stale id).
 * Thread safety: any thread (exclusive lock); the binding's handle must not be in use by another thread. */
GUESTMEM_C_API int32_t guestmem_unbind(guestmem_memory* mem, uint64_t binding_id, guestmem_error* err);

/** The id of `binding` (0 for NULL).
 * Thread safety: any thread, no lock. */
GUESTMEM_C_API uint64_t guestmem_binding_id(const guestmem_binding* binding);

/** From a commit callback: the consumer could not drop object page `page`
 * (the owner quarantines its leaf folio). `binding_id` is the
 * invalidation's. NULL report: no-op.
 * Thread safety: only from the commit callback that got `report`. */
GUESTMEM_C_API void guestmem_report_leaked(guestmem_commit_report* report, uint64_t page, uint64_t binding_id);

/** From a commit callback: the consumer found object page `page` poisoned
 * (quarantined likewise). NULL report: no-op.
 * Thread safety: only from the commit callback that got `report`. */
GUESTMEM_C_API void guestmem_report_poisoned(guestmem_commit_report* report, uint64_t page, uint64_t binding_id);

/* ---- queries ------------------------------------------------------------ */

/** The shareability of `page` into `*out`. Errors: INVALID_ARGUMENT (NULL
 * mem or out); INVALID_RANGE.
 * Thread safety: any thread (shared lock). */
GUESTMEM_C_API int32_t guestmem_shareability_at(const guestmem_memory* mem, uint64_t page, uint32_t* out,
                                                guestmem_error* err);

/** The mappability of the folio holding `page` into `*out`. Errors:
 * INVALID_ARGUMENT (NULL mem or out); INVALID_RANGE; NOT_ALLOCATED.
 * Thread safety: any thread (shared lock). */
GUESTMEM_C_API int32_t guestmem_mappability_at(const guestmem_memory* mem, uint64_t page, uint32_t* out,
                                               guestmem_error* err);

/** The pins on `page` into `*out` (0 past the end). Errors: INVALID_ARGUMENT
 * (NULL mem or out).
 * Thread safety: any thread (shared lock). */
GUESTMEM_C_API int32_t guestmem_pins(const guestmem_memory* mem, uint64_t page, uint32_t* out, guestmem_error* err);

/** Call `fn` for each shareability run overlapping [begin, end), clipped to
 * it, until `fn` returns nonzero. Errors: INVALID_ARGUMENT (NULL mem or fn);
 * INVALID_RANGE.
 * Thread safety: shared lock, held while `fn` runs: `fn` must not call into
 * the object. */
GUESTMEM_C_API int32_t guestmem_runs(const guestmem_memory* mem, uint64_t begin, uint64_t end, guestmem_run_fn fn,
                                     void* ctx, guestmem_error* err);

/** Census and counters into `*out` (out->size set by the caller). Errors:
 * INVALID_ARGUMENT (NULL mem or out, out->size too small).
 * Thread safety: any thread (shared lock). */
GUESTMEM_C_API int32_t guestmem_get_stats(const guestmem_memory* mem, guestmem_stats* out, guestmem_error* err);

/** A readable map of runs, folios and consumers into `buf` (`cap` bytes,
 * always NUL-terminated when cap > 0, truncated if short); `*needed` (may
 * be NULL) gets the full length plus 1. `buf` may be NULL when cap is 0.
 * Errors: INVALID_ARGUMENT (NULL mem; NULL buf with cap > 0). Truncation is
 * not an error: compare `*needed` with `cap`.
 * Thread safety: any thread (shared lock, held while the dump is written). */
GUESTMEM_C_API int32_t guestmem_dump(const guestmem_memory* mem, char* buf, size_t cap, size_t* needed,
                                     guestmem_error* err);

/** The same dump, handed to `fn` piece by piece. Errors: INVALID_ARGUMENT
 * (NULL mem or fn).
 * Thread safety: any thread (shared lock, held while `fn` runs: it must not call into `mem`). */
GUESTMEM_C_API int32_t guestmem_dump_to(const guestmem_memory* mem, guestmem_write_fn fn, void* ctx,
                                        guestmem_error* err);

#ifdef __cplusplus
} /* extern "C" */
#endif

#include <guestmem/c/guestmem_views.h>     /* IWYU pragma: export */
#include <guestmem/c/guestmem_snapshot.h>  /* IWYU pragma: export */
#include <guestmem/c/guestmem_kvm.h>       /* IWYU pragma: export */

#endif /* GUESTMEM_C_GUESTMEM_H */
