/** @file
 * The C ABI of snapshots (ABI 0.2; C++ guestmem::snapshot, docs/SNAPSHOT.md):
 * save an object's ownership state (runs, folios, poison, quarantine) as a
 * full snapshot, check and restore one into a fresh object, and follow a
 * migration with increments (what changed since a generation). Included by
 * guestmem.h; its conventions hold here.
 *
 * Costs: save and saved_size O(runs + leaves) under the object's shared
 * lock; restore O(bytes + runs + leaves) under its exclusive lock; check
 * and inspect O(bytes) with no object; increments O(k log k + runs in the
 * changed ranges), k <= 128 change-log entries. Nothing here allocates
 * except check's sort of quarantined leaves and inspect's formatting.
 * Errors about the snapshot's bytes say "offset N:" in the message.
 */
#ifndef GUESTMEM_C_GUESTMEM_SNAPSHOT_H
#define GUESTMEM_C_GUESTMEM_SNAPSHOT_H

#include <guestmem/c/guestmem.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What a snapshot holds (guestmem_snapshot_header::kind). */
enum guestmem_snapshot_kind {
    GUESTMEM_SNAPSHOT_FULL = 1,      /**< a whole object's state (guestmem_snapshot_restore) */
    GUESTMEM_SNAPSHOT_INCREMENT = 2  /**< shareability changed since a generation (guestmem_snapshot_apply_increment) */
};

/** A snapshot's header, as guestmem_snapshot_check decodes it. */
typedef struct guestmem_snapshot_header {
    uint32_t size;             /**< set by the caller: sizeof(guestmem_snapshot_header) */
    uint32_t kind;             /**< a guestmem_snapshot_kind */
    uint64_t pages;            /**< the object's size in pages */
    uint32_t max_order;        /**< its largest folio order (0, 9 or 18) */
    uint32_t reserved0;        /**< written as 0 */
    uint64_t generation;       /**< the object's generation when saved */
    uint64_t base_generation;  /**< increments: the generation they apply on top of (else 0) */
    uint64_t body_offset;      /**< where the body starts */
    uint64_t body_size;        /**< body bytes (the checksum follows) */
} guestmem_snapshot_header;

/** A snapshot sink: takes the next `len` bytes (chunks of at most 4 KiB);
 * return 0 to go on, anything else to stop the save (OUT_OF_MEMORY). */
typedef int (*guestmem_sink_fn)(void* ctx, const uint8_t* data, size_t len);

/** The object's generation (rises with every conversion that changed
 * something, and with poison) into `*out`. Errors: INVALID_ARGUMENT (NULL
 * mem or out). Thread safety: any thread (shared lock). */
GUESTMEM_C_API int32_t guestmem_generation(const guestmem_memory* mem, uint64_t* out, guestmem_error* err);

/** The size guestmem_snapshot_save would need now, into `*out`. Errors:
 * INVALID_ARGUMENT (NULL mem or out); BUSY (a pinned page or a folio
 * draining its pins, at that page). Thread safety: any thread (shared
 * lock); the size holds only while no other thread changes the object. */
GUESTMEM_C_API int32_t guestmem_snapshot_saved_size(const guestmem_memory* mem, size_t* out, guestmem_error* err);

/** Save `mem` as a full snapshot into `buf` (`cap` bytes); `*written`
 * (may be NULL) gets its size. Errors: INVALID_ARGUMENT (NULL mem; NULL buf
 * with cap > 0; `cap` too small: the message says the size needed, and
 * buf's contents are unspecified); BUSY (as saved_size; nothing written).
 * Thread safety: any thread (shared lock, held throughout). */
GUESTMEM_C_API int32_t guestmem_snapshot_save(const guestmem_memory* mem, uint8_t* buf, size_t cap, size_t* written,
                                              guestmem_error* err);

/** Save `mem` as a full snapshot through `fn` (in order); `*written` (may
 * be NULL) gets its size. Errors: INVALID_ARGUMENT (NULL mem or fn); BUSY
 * (nothing handed to fn); OUT_OF_MEMORY (fn stopped it: what it took is not
 * a snapshot). Thread safety: any thread (shared lock, held while `fn`
 * runs: it must not call into `mem`). */
GUESTMEM_C_API int32_t guestmem_snapshot_save_to(const guestmem_memory* mem, guestmem_sink_fn fn, void* ctx,
                                                 size_t* written, guestmem_error* err);

/** Validate `len` bytes at `bytes` completely (header, checksum, every
 * section), with no object; `*out` (may be NULL; out->size set by the
 * caller) gets the header. Errors: INVALID_ARGUMENT (NULL bytes with len >
 * 0, out->size too small, any defect: "offset N: ..."); NOT_SUPPORTED
 * (another format version). Thread safety: any thread, no lock. */
GUESTMEM_C_API int32_t guestmem_snapshot_check(const uint8_t* bytes, size_t len, guestmem_snapshot_header* out,
                                               guestmem_error* err);

/** Restore the full snapshot at `bytes` into `mem`, which must be fresh:
 * created with the snapshot's pages and max_order (guestmem_snapshot_check
 * tells them), one shareability run, no folio, no pin. Afterwards `mem`
 * has the saved runs, folios, poison, quarantine and generation. Errors:
 * INVALID_ARGUMENT (NULL mem, NULL bytes with len > 0, everything check
 * reports, an increment, an object that is not fresh or not of the
 * snapshot's shape); NOT_SUPPORTED; OUT_OF_MEMORY or the allocator's error
 * (everything made is given back). Nothing changes on error.
 * Thread safety: any thread (exclusive lock). */
GUESTMEM_C_API int32_t guestmem_snapshot_restore(guestmem_memory* mem, const uint8_t* bytes, size_t len,
                                                 guestmem_error* err);

/** Call `fn(ctx, begin, end, shareability)` for the current runs of every
 * range converted since generation `since`, in page order, until it
 * returns nonzero. Errors: INVALID_ARGUMENT (NULL mem or fn; `since` past
 * the object's generation); NOT_SUPPORTED (`since` older than the change
 * log holds, or poison since: save a full snapshot). Thread safety: any
 * thread (shared lock, held while `fn` runs: it must not call into `mem`). */
GUESTMEM_C_API int32_t guestmem_snapshot_for_each_change(const guestmem_memory* mem, uint64_t since,
                                                         guestmem_run_fn fn, void* ctx, guestmem_error* err);

/** Save what changed since generation `since` as an increment into `buf`
 * (`cap` bytes); `*needed` (may be NULL) gets its size, also when `cap` is
 * too small. Errors: for_each_change's; INVALID_ARGUMENT (NULL buf with cap
 * > 0; `cap` too small). Pins are no obstacle. Thread safety: any thread
 * (shared lock). */
GUESTMEM_C_API int32_t guestmem_snapshot_save_increment(const guestmem_memory* mem, uint64_t since, uint8_t* buf,
                                                        size_t cap, size_t* needed, guestmem_error* err);

/** Apply the increment at `bytes` to `mem`, which must be at its base
 * generation: validated first, then made with conversions (consumers are
 * told). Errors: INVALID_ARGUMENT (NULL mem, NULL bytes with len > 0,
 * everything check reports, a full snapshot, another size or generation;
 * nothing changed); any conversion error, with `mem` left at the base
 * generation so applying it again is safe. Thread safety: any thread (each
 * conversion takes the exclusive lock), while no other thread converts
 * `mem`. */
GUESTMEM_C_API int32_t guestmem_snapshot_apply_increment(guestmem_memory* mem, const uint8_t* bytes, size_t len,
                                                         guestmem_error* err);

/** Check the snapshot at `bytes` and hand a readable listing of it to `fn`
 * (at most `max_items` entries per section; 0: all). Errors:
 * INVALID_ARGUMENT (NULL fn, NULL bytes with len > 0); check's (then
 * nothing is written). Thread safety: any thread, no lock. */
GUESTMEM_C_API int32_t guestmem_snapshot_inspect(const uint8_t* bytes, size_t len, size_t max_items,
                                                 guestmem_write_fn fn, void* ctx, guestmem_error* err);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GUESTMEM_C_GUESTMEM_SNAPSHOT_H */
