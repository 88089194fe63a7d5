/* Two VMs on one storage through views, then a snapshot saved, checked and
 * restored into a fresh object, all from C. */
#include <guestmem/c/guestmem.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char* what, const guestmem_error* err) {
    fprintf(stderr, "%s: %s (%s, page %llu)\n", what, err->message, guestmem_errc_name(err->code),
            (unsigned long long)err->page);
    return 1;
}

int main(void) {
    guestmem_config cfg = {0};
    guestmem_access_policy plain = {0};
    guestmem_error err = {0};
    guestmem_snapshot_header h = {0};
    guestmem_view *vm_a = NULL, *vm_b = NULL;
    guestmem_memory *src = NULL, *copy = NULL;
    guestmem_owner owner_b = {0, 0, 0};
    uint32_t share = 0;
    size_t size = 0;
    uint8_t* bytes;
    err.size = sizeof err;
    cfg.size = sizeof cfg;
    cfg.allocator = GUESTMEM_ALLOC_SIMULATED;
    cfg.pages = 4096;
    cfg.initial = GUESTMEM_SHARED;
    cfg.max_order = GUESTMEM_ORDER_2M;

    /* VM A opens the storage (a confidential view); VM B gets its own owner
       and a non-confidential view of the same pages. */
    if (guestmem_view_open_storage(&cfg, NULL, NULL, &vm_a, &err) != GUESTMEM_OK) return fail("open_storage", &err);
    plain.size = sizeof plain;
    plain.mode = GUESTMEM_NON_CONFIDENTIAL;
    if (guestmem_view_add_owner(vm_a, &owner_b, &err) != GUESTMEM_OK ||
        guestmem_view_open(vm_a, owner_b, &plain, &vm_b, &err) != GUESTMEM_OK)
        return fail("second VM", &err);
    if (guestmem_view_allocate(vm_a, 0, 4096, &err) != GUESTMEM_OK ||
        guestmem_view_convert(vm_a, 512, 1024, GUESTMEM_GUEST_ONLY, NULL, &err) != GUESTMEM_OK)
        return fail("convert", &err);
    if (guestmem_view_shareability_at(vm_b, 600, &share, &err) != GUESTMEM_OK || share != GUESTMEM_GUEST_ONLY)
        return fail("VM B sees the conversion", &err);
    guestmem_view_free(vm_b); /* closes VM B's view; the storage stays for A */
    guestmem_view_free(vm_a); /* the last view: the storage goes */

    /* A snapshot of an object's ownership state, restored elsewhere. */
    if (guestmem_create(&cfg, &src, &err) != GUESTMEM_OK || guestmem_allocate(src, 0, 4096, &err) != GUESTMEM_OK ||
        guestmem_convert(src, 100, 300, GUESTMEM_GUEST_ONLY, NULL, &err) != GUESTMEM_OK)
        return fail("source", &err);
    if (guestmem_snapshot_saved_size(src, &size, &err) != GUESTMEM_OK) return fail("saved_size", &err);
    bytes = malloc(size);
    if (bytes == NULL || guestmem_snapshot_save(src, bytes, size, &size, &err) != GUESTMEM_OK)
        return fail("save", &err);
    h.size = sizeof h;
    if (guestmem_snapshot_check(bytes, size, &h, &err) != GUESTMEM_OK) return fail("check", &err);
    cfg.pages = h.pages; /* the snapshot says what object it needs */
    cfg.max_order = h.max_order;
    if (guestmem_create(&cfg, &copy, &err) != GUESTMEM_OK ||
        guestmem_snapshot_restore(copy, bytes, size, &err) != GUESTMEM_OK)
        return fail("restore", &err);
    if (guestmem_shareability_at(copy, 200, &share, &err) != GUESTMEM_OK || share != GUESTMEM_GUEST_ONLY)
        return fail("restored state", &err);
    printf("snapshot of %zu bytes restored: %llu pages, generation %llu\n", size, (unsigned long long)h.pages,
           (unsigned long long)h.generation);
    free(bytes);
    guestmem_destroy(copy);
    guestmem_destroy(src);
    return 0;
}
