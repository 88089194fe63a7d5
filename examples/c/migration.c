/* Live migration through views, from C (examples/migration.cpp's twin).
 * The source VM A and a migration helper share one storage (the helper is
 * a second view of A's owner); the helper saves a full snapshot, then
 * increments while A keeps converting; the destination restores and
 * applies them and ends with the same runs, poison and quarantine. Then
 * intra-host: VM B opens a view on A's storage, A closes, and B carries on
 * with the same memory (no page copied). */
#include <guestmem/c/guestmem.h>

#include <stdio.h>
#include <stdlib.h>

#define PAGES 4096

static int fail(const char* what, const guestmem_error* err) {
    fprintf(stderr, "%s: %s (%s, page %llu)\n", what, err->message, guestmem_errc_name(err->code),
            (unsigned long long)err->page);
    return 1;
}

/* Save through `v` into a new buffer: a full snapshot (since NULL) or an
 * increment; its size in *len and its generation in *gen. NULL on error. */
static uint8_t* save(const guestmem_view* v, const uint64_t* since, size_t* len, uint64_t* gen, guestmem_error* err) {
    guestmem_snapshot_header h = {0};
    size_t need = 0;
    uint8_t* buf;
    h.size = sizeof h;
    if ((since ? guestmem_view_increment_size(v, *since, &need, err) : guestmem_view_saved_size(v, &need, err)) !=
        GUESTMEM_OK)
        return NULL;
    buf = malloc(need);
    if (buf == NULL ||
        (since ? guestmem_view_save_increment(v, *since, buf, need, len, err) : guestmem_view_save(v, buf, need, len, err)) !=
            GUESTMEM_OK ||
        guestmem_snapshot_check(buf, *len, &h, err) != GUESTMEM_OK) {
        free(buf);
        return NULL;
    }
    *gen = h.generation; /* the next base: from the bytes just written */
    return buf;
}

/* 1 when x and y agree on every page's shareability and on poison and
 * quarantine, of which x has some. */
static int same_state(const guestmem_view* x, const guestmem_view* y, uint64_t pages) {
    guestmem_stats sx = {0}, sy = {0};
    guestmem_error err = {0};
    uint64_t p;
    err.size = sizeof err;
    sx.size = sy.size = sizeof sx;
    for (p = 0; p < pages; ++p) {
        uint32_t a = 9, b = 8;
        if (guestmem_view_shareability_at(x, p, &a, &err) != GUESTMEM_OK ||
            guestmem_view_shareability_at(y, p, &b, &err) != GUESTMEM_OK || a != b)
            return 0;
    }
    if (guestmem_view_get_stats(x, &sx, &err) != GUESTMEM_OK || guestmem_view_get_stats(y, &sy, &err) != GUESTMEM_OK)
        return 0;
    return sx.runs == sy.runs && sx.poisoned_folios == sy.poisoned_folios && sx.poisoned_folios > 0 &&
           sx.quarantined_pages == sy.quarantined_pages && sx.quarantined_pages > 0;
}

int main(void) {
    guestmem_config cfg = {0}, dst_cfg;
    guestmem_error err = {0};
    guestmem_snapshot_header h = {0};
    guestmem_fault_result before = {0}, after = {0};
    guestmem_view *a = NULL, *helper = NULL, *dst = NULL, *b = NULL;
    guestmem_owner owner_a, owner_b;
    uint64_t g = 0, round, dst_gen = 0;
    size_t len = 0;
    uint8_t* bytes;
    int same;
    err.size = sizeof err;
    h.size = sizeof h;
    before.size = after.size = sizeof before;
    cfg.size = sizeof cfg;
    cfg.allocator = GUESTMEM_ALLOC_SIMULATED;
    cfg.pages = PAGES;
    cfg.initial = GUESTMEM_GUEST_ONLY;
    cfg.max_order = GUESTMEM_ORDER_2M;

    /* Source: VM A's view, and the migration helper (another view of A's owner). */
    if (guestmem_view_open_storage(&cfg, NULL, NULL, &a, &err) != GUESTMEM_OK ||
        guestmem_view_owner(a, &owner_a, &err) != GUESTMEM_OK ||
        guestmem_view_open(a, owner_a, NULL, &helper, &err) != GUESTMEM_OK)
        return fail("source", &err);
    if (guestmem_view_allocate(a, 0, PAGES, &err) != GUESTMEM_OK ||
        guestmem_view_convert(a, 0, 64, GUESTMEM_SHARED, NULL, &err) != GUESTMEM_OK)
        return fail("source setup", &err);
    /* A page went bad in one 2 MiB folio (poisoned), and one in another
       folio, then truncated (its bad page quarantined): the destination
       must know both. */
    if (guestmem_view_memory_failure(a, 3900, &err) != GUESTMEM_OK ||
        guestmem_view_memory_failure(a, 3000, &err) != GUESTMEM_OK ||
        guestmem_view_punch_hole(a, 2560, 3072, &err) != GUESTMEM_OK)
        return fail("poison", &err);

    /* Pre-copy: a full snapshot into a fresh storage of its shape. */
    bytes = save(helper, NULL, &len, &g, &err);
    if (bytes == NULL || guestmem_snapshot_check(bytes, len, &h, &err) != GUESTMEM_OK) return fail("full save", &err);
    dst_cfg = cfg;
    dst_cfg.pages = h.pages;
    dst_cfg.max_order = h.max_order;
    if (guestmem_view_open_storage(&dst_cfg, NULL, NULL, &dst, &err) != GUESTMEM_OK ||
        guestmem_view_restore(dst, bytes, len, &err) != GUESTMEM_OK)
        return fail("restore", &err);
    free(bytes);
    /* Increments while the guest runs on and converts. */
    for (round = 1; round <= 3; ++round) {
        if (guestmem_view_convert(a, round * 512, round * 512 + 100, GUESTMEM_SHARED, NULL, &err) != GUESTMEM_OK)
            return fail("guest conversion", &err);
        bytes = save(helper, &g, &len, &g, &err);
        if (bytes == NULL || guestmem_view_apply_increment(dst, bytes, len, &err) != GUESTMEM_OK)
            return fail("increment", &err);
        free(bytes);
    }
    if (guestmem_view_generation(dst, &dst_gen, &err) != GUESTMEM_OK) return fail("generation", &err);
    same = same_state(a, dst, PAGES);
    printf("destination at generation %llu (source %llu), same runs, poison and quarantine: %s\n",
           (unsigned long long)dst_gen, (unsigned long long)g, same ? "yes" : "no");

    /* Intra-host: VM B takes A's storage over; A's close tells B's consumers nothing. */
    if (guestmem_view_add_owner(a, &owner_b, &err) != GUESTMEM_OK ||
        guestmem_view_open(a, owner_b, NULL, &b, &err) != GUESTMEM_OK ||
        guestmem_view_fault(b, 7, GUESTMEM_SHARED, GUESTMEM_HYPERVISOR, &before, &err) != GUESTMEM_OK)
        return fail("VM B", &err);
    if (guestmem_view_close_owner(a, owner_a, &err) != GUESTMEM_OK) return fail("close A", &err); /* A and its helper */
    if (guestmem_view_convert(b, 64, 128, GUESTMEM_SHARED, NULL, &err) != GUESTMEM_OK ||
        guestmem_view_fault(b, 7, GUESTMEM_SHARED, GUESTMEM_HYPERVISOR, &after, &err) != GUESTMEM_OK)
        return fail("VM B continues", &err);
    printf("VM B continues on the same frame: %s; A's helper saves no more: %s\n",
           before.frame == after.frame ? "yes" : "no",
           guestmem_view_saved_size(helper, &len, &err) == GUESTMEM_ERR_NOT_BOUND ? "yes" : "no");
    same = same && before.frame == after.frame && err.code == GUESTMEM_ERR_NOT_BOUND;
    guestmem_view_free(b);
    guestmem_view_free(helper);
    guestmem_view_free(a);
    guestmem_view_free(dst);
    return same ? 0 : 1;
}
