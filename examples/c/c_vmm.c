/* A C VMM's first steps: an object, a stage-2 consumer, a conversion. */
#include <guestmem/c/guestmem.h>

#include <stdio.h>

static int32_t s2_prepare(void* ctx, const guestmem_invalidation* inv, guestmem_error* why) {
    (void)ctx, (void)inv, (void)why;
    return GUESTMEM_OK; /* or fill why->message and return GUESTMEM_ERR_VETOED */
}

static void s2_commit(void* ctx, const guestmem_invalidation* inv, guestmem_commit_report* report) {
    /* unmap target pages [inv->target_begin, inv->target_end); for a page
       you cannot drop: guestmem_report_leaked(report, page, inv->binding_id) */
    (void)report;
    ++*(unsigned*)ctx;
    printf("stage2: unmap GFNs [%#llx, %#llx)\n", (unsigned long long)inv->target_begin,
           (unsigned long long)inv->target_end);
}

int main(void) {
    guestmem_config cfg = {0};
    guestmem_error err = {0};
    guestmem_consumer_ops ops = {0};
    guestmem_memory* mem = NULL;
    guestmem_binding* b = NULL;
    unsigned commits = 0;
    cfg.size = sizeof cfg;                /* every struct starts with its size: set it */
    cfg.allocator = GUESTMEM_ALLOC_MEMFD; /* or GUESTMEM_ALLOC_GUEST_MEMFD with cfg.vm_fd, or SIMULATED */
    cfg.pages = 1024;
    cfg.initial = GUESTMEM_GUEST_ONLY;
    cfg.max_order = GUESTMEM_ORDER_2M;
    err.size = sizeof err;
    if (guestmem_create(&cfg, &mem, &err) != GUESTMEM_OK) {
        fprintf(stderr, "create: %s\n", err.message);
        return 1;
    }
    ops.size = sizeof ops;
    ops.prepare = s2_prepare; /* NULL callbacks are allowed: nothing to do */
    ops.commit = s2_commit;
    ops.name = "stage2";
    /* b is for guestmem_read_begin / guestmem_read_retry around faults */
    if (guestmem_bind(mem, &ops, &commits, 0, 1024, 0x80000 /* base GFN */, NULL, &b, &err) != GUESTMEM_OK ||
        guestmem_allocate(mem, 0, 1024, &err) != GUESTMEM_OK ||
        guestmem_convert(mem, 16, 17, GUESTMEM_SHARED, NULL, &err) != GUESTMEM_OK) {
        fprintf(stderr, "failed at page %llu (binding %llu): %s\n", (unsigned long long)err.page,
                (unsigned long long)err.binding_id, err.message);
        guestmem_destroy(mem);
        return 1;
    }
    guestmem_destroy(mem); /* consumers get their release first */
    return commits >= 1 ? 0 : 1;
}
