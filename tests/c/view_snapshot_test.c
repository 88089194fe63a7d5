/* tests/c/view_snapshot_test.c — the C ABI's snapshot calls through views
 * (guestmem_views.h): a full snapshot and increments saved through one view
 * restore and apply through another storage's view (whose consumers are
 * told), and every call's refusal of bad input and of a closed view. */
#include "c_test.h"

#include <stdlib.h>

static guestmem_view* open_storage(uint64_t pages, uint32_t initial) {
    guestmem_config cfg = simulated_config(pages, initial);
    guestmem_view* v = NULL;
    guestmem_error err = new_error();
    if (guestmem_view_open_storage(&cfg, NULL, NULL, &v, &err) != GUESTMEM_OK) {
        fprintf(stderr, "guestmem_view_open_storage: %s\n", err.message);
        abort();
    }
    return v;
}

static int same_runs(const guestmem_view* x, const guestmem_view* y, uint64_t pages) {
    guestmem_error err = new_error();
    uint64_t p;
    for (p = 0; p < pages; ++p) {
        uint32_t a = 9, b = 8;
        if (guestmem_view_shareability_at(x, p, &a, &err) != GUESTMEM_OK ||
            guestmem_view_shareability_at(y, p, &b, &err) != GUESTMEM_OK || a != b)
            return 0;
    }
    return 1;
}

static void a_full_snapshot_and_increments_saved_through_a_view_rebuild_another_storage(void) {
    char log[C_TEST_LOG_SIZE] = "";
    recorder r = new_recorder('r', log);
    guestmem_consumer_ops ops = recorder_ops();
    guestmem_error err = new_error();
    guestmem_snapshot_header h;
    guestmem_view* src = open_storage(2048, GUESTMEM_GUEST_ONLY);
    guestmem_view* helper = NULL;
    guestmem_view* dst = open_storage(2048, GUESTMEM_GUEST_ONLY);
    guestmem_view* dst_vm = NULL;
    guestmem_owner owner;
    uint8_t buf[4096];
    size_t need = 0, n = 0;
    uint64_t g = 0, g_src = 0, g_dst = 0;
    memset(&h, 0, sizeof h);
    h.size = sizeof h;
    CHECK_CODE(guestmem_view_owner(src, &owner, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_open(src, owner, NULL, &helper, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_allocate(src, 0, 2048, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_convert(src, 0, 100, GUESTMEM_SHARED, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_saved_size(helper, &need, &err), GUESTMEM_OK, err);
    CHECK(need > 0 && need <= sizeof buf);
    CHECK_CODE(guestmem_view_save(helper, buf, sizeof buf, &n, &err), GUESTMEM_OK, err);
    CHECK(n == need);
    CHECK_CODE(guestmem_snapshot_check(buf, n, &h, &err), GUESTMEM_OK, err);
    CHECK(h.kind == GUESTMEM_SNAPSHOT_FULL && h.pages == 2048);
    CHECK_CODE(guestmem_view_generation(src, &g_src, &err), GUESTMEM_OK, err);
    CHECK(h.generation == g_src);
    CHECK_CODE(guestmem_view_restore(dst, buf, n, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_generation(dst, &g_dst, &err), GUESTMEM_OK, err);
    CHECK(g_dst == g_src && same_runs(src, dst, 2048));
    /* A second VM view on the destination hears the increment's conversion. */
    CHECK_CODE(guestmem_view_owner(dst, &owner, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_open(dst, owner, NULL, &dst_vm, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_bind(dst_vm, &ops, &r, 0, 2048, 0, GUESTMEM_REPLAY_NONE, NULL, NULL, &err), GUESTMEM_OK,
               err);
    g = g_src;
    CHECK_CODE(guestmem_view_convert(src, 1000, 1100, GUESTMEM_SHARED, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_increment_size(helper, g, &need, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_save_increment(helper, g, buf, sizeof buf, &n, &err), GUESTMEM_OK, err);
    CHECK(n == need);
    CHECK_CODE(guestmem_snapshot_check(buf, n, &h, &err), GUESTMEM_OK, err);
    CHECK(h.kind == GUESTMEM_SNAPSHOT_INCREMENT && h.base_generation == g);
    CHECK_CODE(guestmem_view_apply_increment(dst, buf, n, &err), GUESTMEM_OK, err);
    CHECK(r.committed >= 1 && same_runs(src, dst, 2048));
    CHECK_CODE(guestmem_view_generation(src, &g_src, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_generation(dst_vm, &g_dst, &err), GUESTMEM_OK, err);
    CHECK(g_dst == g_src && g_src > g);
    /* Applying it again is refused (the destination left its base). */
    CHECK_CODE(guestmem_view_apply_increment(dst, buf, n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    guestmem_view_free(dst_vm);
    guestmem_view_free(dst);
    guestmem_view_free(helper);
    guestmem_view_free(src);
}

static void view_snapshot_calls_refuse_bad_input_and_change_nothing(void) {
    guestmem_error err = new_error();
    guestmem_view* v = open_storage(512, GUESTMEM_SHARED);
    guestmem_view* fresh = open_storage(512, GUESTMEM_SHARED);
    guestmem_view* other = open_storage(1024, GUESTMEM_SHARED);
    uint8_t buf[4096], small[8];
    size_t n = 0, full = 0, inc = 0;
    uint64_t g = 0, g2 = 0;
    CHECK_CODE(guestmem_view_allocate(v, 0, 512, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_convert(v, 0, 8, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_generation(v, &g, &err), GUESTMEM_OK, err);
    /* NULL view, NULL outputs, NULL buffers with a capacity. */
    CHECK_CODE(guestmem_view_generation(NULL, &g2, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_generation(v, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_saved_size(NULL, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_saved_size(v, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_save(NULL, buf, sizeof buf, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_save(v, NULL, 16, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_increment_size(NULL, 0, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_increment_size(v, 0, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_save_increment(NULL, 0, buf, sizeof buf, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_save_increment(v, 0, NULL, 16, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_restore(NULL, buf, 16, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_restore(fresh, NULL, 16, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_apply_increment(NULL, buf, 16, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_apply_increment(fresh, NULL, 16, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    /* Buffers too small: refused, the size needed reported by the size calls. */
    CHECK_CODE(guestmem_view_saved_size(v, &full, &err), GUESTMEM_OK, err);
    CHECK(full > sizeof small);
    CHECK_CODE(guestmem_view_save(v, small, sizeof small, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_save(v, NULL, 0, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_increment_size(v, 0, &inc, &err), GUESTMEM_OK, err);
    CHECK(inc > sizeof small);
    CHECK_CODE(guestmem_view_save_increment(v, 0, small, sizeof small, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    /* A generation the storage has not reached. */
    CHECK_CODE(guestmem_view_increment_size(v, g + 1, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_save_increment(v, g + 1, buf, sizeof buf, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    /* Bytes that are no snapshot, a snapshot of another shape, a storage
       that is not fresh, an increment given to restore, a full snapshot
       given to apply_increment: refused, nothing changes. */
    memset(buf, 0xa5, sizeof buf);
    CHECK_CODE(guestmem_view_restore(fresh, buf, 64, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_save(v, buf, sizeof buf, &full, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_restore(other, buf, full, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_restore(v, buf, full, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_apply_increment(fresh, buf, full, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_save_increment(v, 0, buf, sizeof buf, &inc, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_restore(fresh, buf, inc, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_generation(fresh, &g2, &err), GUESTMEM_OK, err);
    CHECK(g2 == 0);
    CHECK_CODE(guestmem_view_generation(v, &g2, &err), GUESTMEM_OK, err);
    CHECK(g2 == g);
    guestmem_view_free(other);
    guestmem_view_free(fresh);
    guestmem_view_free(v);
}

static void a_pinned_page_is_busy_to_a_full_save_and_poison_ends_increments(void) {
    guestmem_error err = new_error();
    guestmem_view* v = open_storage(512, GUESTMEM_SHARED);
    uint8_t buf[4096];
    size_t n = 7;
    uint64_t g = 0;
    CHECK_CODE(guestmem_view_allocate(v, 0, 512, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_generation(v, &g, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_pin(v, 3, 4, GUESTMEM_HOST, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_saved_size(v, &n, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(n == 7);
    CHECK_CODE(guestmem_view_save(v, buf, sizeof buf, &n, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(n == 7);
    /* Pins are no obstacle to an increment. */
    CHECK_CODE(guestmem_view_convert(v, 100, 110, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_save_increment(v, g, buf, sizeof buf, &n, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_unpin(v, 3, 4, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_memory_failure(v, 200, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_increment_size(v, g, &n, &err), GUESTMEM_ERR_NOT_SUPPORTED, err);
    CHECK_CODE(guestmem_view_save_increment(v, g, buf, sizeof buf, &n, &err), GUESTMEM_ERR_NOT_SUPPORTED, err);
    CHECK_CODE(guestmem_view_save(v, buf, sizeof buf, &n, &err), GUESTMEM_OK, err);
    guestmem_view_free(v);
}

static void a_closed_view_answers_not_bound_to_every_snapshot_call(void) {
    guestmem_error err = new_error();
    guestmem_view* v = open_storage(512, GUESTMEM_SHARED);
    guestmem_view* w = NULL;
    guestmem_owner owner;
    uint8_t buf[4096];
    size_t n = 0, len = 0;
    uint64_t g = 0;
    CHECK_CODE(guestmem_view_owner(v, &owner, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_open(v, owner, NULL, &w, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_save(w, buf, sizeof buf, &len, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_close(w, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_generation(w, &g, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_saved_size(w, &n, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_save(w, buf, sizeof buf, &n, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_increment_size(w, 0, &n, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_save_increment(w, 0, buf, sizeof buf, &n, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_restore(w, buf, len, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_apply_increment(w, buf, len, &err), GUESTMEM_ERR_NOT_BOUND, err);
    /* The storage's last view closed: its handle is not bound either. */
    CHECK_CODE(guestmem_view_close(v, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_save(v, buf, sizeof buf, &n, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_restore(v, buf, len, &err), GUESTMEM_ERR_NOT_BOUND, err);
    guestmem_view_free(w);
    guestmem_view_free(v);
}

int main(void) {
    RUN(a_full_snapshot_and_increments_saved_through_a_view_rebuild_another_storage);
    RUN(view_snapshot_calls_refuse_bad_input_and_change_nothing);
    RUN(a_pinned_page_is_busy_to_a_full_save_and_poison_ends_increments);
    RUN(a_closed_view_answers_not_bound_to_every_snapshot_call);
    return C_TEST_RESULT();
}
