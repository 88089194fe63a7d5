/* A C VMM's first program against the installed package: create an object,
 * bind a consumer that refuses, see the veto name the page, and exit 0.
 * Built by find_package(guestmem COMPONENTS c) and by pkg-config guestmem-c. */
#include <guestmem/c/guestmem.h>

#include <stdio.h>
#include <string.h>

static int32_t refuse(void* ctx, const guestmem_invalidation* inv, guestmem_error* why) {
    (void)ctx;
    why->page = inv->page_begin;
    snprintf(why->message, sizeof why->message, "still mapped by the device");
    return GUESTMEM_ERR_VETOED;
}

int main(void) {
    guestmem_config cfg;
    guestmem_consumer_ops ops;
    guestmem_memory* mem = NULL;
    guestmem_error err;
    int32_t rc;
    memset(&cfg, 0, sizeof cfg);
    memset(&ops, 0, sizeof ops);
    memset(&err, 0, sizeof err);
    err.size = sizeof err;
    cfg.size = sizeof cfg;
    cfg.pages = 1024;
    cfg.initial = GUESTMEM_GUEST_ONLY;
    cfg.max_order = GUESTMEM_ORDER_2M;
    ops.size = sizeof ops;
    ops.prepare = refuse;
    ops.name = "iommu";
    if (guestmem_abi_version() >> 16 != GUESTMEM_ABI_MAJOR) return 1;
    if (guestmem_create(&cfg, &mem, &err) != GUESTMEM_OK) return 2;
    if (guestmem_bind(mem, &ops, NULL, 0, 1024, 0, NULL, NULL, &err) != GUESTMEM_OK) return 3;
    rc = guestmem_convert(mem, 16, 17, GUESTMEM_SHARED, NULL, &err);
    printf("guestmem says: %s\n", err.message);
    guestmem_destroy(mem);
    return rc == GUESTMEM_ERR_VETOED && err.page == 16 ? 0 : 4;
}
