/* tests/c/snapshot_test.c — the C ABI's snapshots (guestmem_snapshot.h):
 * save into a buffer and through a sink, check, restore into a fresh
 * object (saving it again gives the same bytes), increments and the
 * changes they carry, inspect, and every call's refusal of bad input. */
#include "c_test.h"

#define BUF 4096

/* An object of 1024 pages, shared, allocated, with runs made guest_only. */
static guestmem_memory* busy_object(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_SHARED);
    guestmem_error err = new_error();
    uint64_t p;
    if (guestmem_allocate(mem, 0, 1024, &err) != GUESTMEM_OK) abort();
    for (p = 3; p < 1000; p += 37)
        if (guestmem_convert(mem, p, p + 5, GUESTMEM_GUEST_ONLY, NULL, &err) != GUESTMEM_OK) abort();
    return mem;
}

typedef struct sink_buf {
    uint8_t data[BUF];
    size_t len;
    size_t stop_after; /* refuse once this many bytes were taken (0: never) */
} sink_buf;

static int sink(void* ctx, const uint8_t* data, size_t len) {
    sink_buf* s = (sink_buf*)ctx;
    if (s->stop_after != 0 && s->len + len > s->stop_after) return 1;
    if (s->len + len > sizeof s->data) return 1;
    memcpy(s->data + s->len, data, len);
    s->len += len;
    return 0;
}

typedef struct text {
    char data[8192];
    size_t len;
} text;

static void append(void* ctx, const char* data, size_t len) {
    text* t = (text*)ctx;
    if (t->len + len >= sizeof t->data) len = sizeof t->data - 1 - t->len;
    memcpy(t->data + t->len, data, len);
    t->len += len;
    t->data[t->len] = '\0';
}

static void a_saved_object_restores_into_a_fresh_one_that_saves_the_same_bytes(void) {
    static uint8_t a[BUF], b[BUF];
    static sink_buf s;
    guestmem_memory* mem = busy_object();
    guestmem_memory* fresh;
    guestmem_error err = new_error();
    guestmem_snapshot_header h;
    size_t size = 0, n = 0, m = 0;
    uint64_t gen = 0, gen2 = 0;
    uint32_t share = 9;
    CHECK_CODE(guestmem_snapshot_saved_size(mem, &size, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_snapshot_save(mem, a, sizeof a, &n, &err), GUESTMEM_OK, err);
    CHECK(n == size && n > 0);
    memset(&s, 0, sizeof s);
    CHECK_CODE(guestmem_snapshot_save_to(mem, sink, &s, &m, &err), GUESTMEM_OK, err);
    CHECK(m == n && s.len == n && memcmp(s.data, a, n) == 0);
    memset(&h, 0, sizeof h);
    h.size = sizeof h;
    CHECK_CODE(guestmem_snapshot_check(a, n, &h, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_generation(mem, &gen, &err), GUESTMEM_OK, err);
    CHECK(h.kind == GUESTMEM_SNAPSHOT_FULL && h.pages == 1024 && h.max_order == 9 && h.generation == gen && gen > 0);
    fresh = new_simulated(h.pages, GUESTMEM_SHARED);
    CHECK_CODE(guestmem_snapshot_restore(fresh, a, n, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_shareability_at(fresh, 40, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_GUEST_ONLY);
    CHECK_CODE(guestmem_generation(fresh, &gen2, &err), GUESTMEM_OK, err);
    CHECK(gen2 == gen);
    CHECK_CODE(guestmem_snapshot_save(fresh, b, sizeof b, &m, &err), GUESTMEM_OK, err);
    CHECK(m == n && memcmp(a, b, n) == 0);
    /* not fresh any more: refused, nothing changed */
    CHECK_CODE(guestmem_snapshot_restore(fresh, a, n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    guestmem_destroy(fresh);
    guestmem_destroy(mem);
}

static void an_increment_carries_the_changes_since_a_generation(void) {
    static uint8_t full[BUF], inc[BUF];
    guestmem_memory* src = busy_object();
    guestmem_memory* dst;
    guestmem_error err = new_error();
    guestmem_snapshot_header h;
    size_t n = 0, k = 0, needed = 0;
    uint64_t base = 0, gs = 0, gd = 0;
    uint32_t share = 9;
    CHECK_CODE(guestmem_snapshot_save(src, full, sizeof full, &n, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_generation(src, &base, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_convert(src, 500, 510, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_snapshot_for_each_change(src, base, NULL, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_save_increment(src, base, inc, 4, &needed, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(needed > 4);
    CHECK_CODE(guestmem_snapshot_save_increment(src, base, inc, sizeof inc, &k, &err), GUESTMEM_OK, err);
    CHECK(k == needed);
    memset(&h, 0, sizeof h);
    h.size = sizeof h;
    CHECK_CODE(guestmem_snapshot_check(inc, k, &h, &err), GUESTMEM_OK, err);
    CHECK(h.kind == GUESTMEM_SNAPSHOT_INCREMENT && h.base_generation == base);
    dst = new_simulated(1024, GUESTMEM_SHARED);
    CHECK_CODE(guestmem_snapshot_apply_increment(dst, inc, k, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err); /* not at base */
    CHECK_CODE(guestmem_snapshot_restore(dst, full, n, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_snapshot_restore(dst, inc, k, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err); /* an increment */
    CHECK_CODE(guestmem_snapshot_apply_increment(dst, inc, k, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_shareability_at(dst, 505, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_GUEST_ONLY);
    CHECK_CODE(guestmem_generation(src, &gs, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_generation(dst, &gd, &err), GUESTMEM_OK, err);
    CHECK(gs == gd);
    CHECK_CODE(guestmem_snapshot_apply_increment(dst, full, n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err); /* full */
    CHECK_CODE(guestmem_snapshot_save_increment(src, gs + 1, inc, sizeof inc, &k, &err), GUESTMEM_ERR_INVALID_ARGUMENT,
               err);
    guestmem_destroy(dst);
    guestmem_destroy(src);
}

typedef struct run_log {
    uint64_t begin[8], end[8];
    uint32_t share[8];
    int n, stop_at;
} run_log;

static int record_run(void* ctx, uint64_t begin, uint64_t end, uint32_t shareability) {
    run_log* l = (run_log*)ctx;
    if (l->n < 8) {
        l->begin[l->n] = begin;
        l->end[l->n] = end;
        l->share[l->n] = shareability;
    }
    ++l->n;
    return l->n == l->stop_at;
}

static void for_each_change_visits_the_current_runs_of_what_changed_and_stops_when_asked(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_SHARED);
    guestmem_error err = new_error();
    run_log l;
    uint64_t base = 0;
    CHECK_CODE(guestmem_generation(mem, &base, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_convert(mem, 100, 110, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_convert(mem, 200, 220, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_convert(mem, 205, 210, GUESTMEM_SHARED, NULL, &err), GUESTMEM_OK, err);
    memset(&l, 0, sizeof l);
    CHECK_CODE(guestmem_snapshot_for_each_change(mem, base, record_run, &l, &err), GUESTMEM_OK, err);
    CHECK(l.n == 4);
    CHECK(l.begin[0] == 100 && l.end[0] == 110 && l.share[0] == GUESTMEM_GUEST_ONLY);
    CHECK(l.begin[1] == 200 && l.end[1] == 205);
    CHECK(l.begin[2] == 205 && l.end[2] == 210 && l.share[2] == GUESTMEM_SHARED);
    memset(&l, 0, sizeof l);
    l.stop_at = 1;
    CHECK_CODE(guestmem_snapshot_for_each_change(mem, base, record_run, &l, &err), GUESTMEM_OK, err);
    CHECK(l.n == 1);
    guestmem_destroy(mem);
}

static void a_pinned_object_is_busy_to_save_and_a_refusing_sink_is_out_of_memory(void) {
    static uint8_t a[BUF];
    static sink_buf s;
    guestmem_memory* mem = busy_object();
    guestmem_error err = new_error();
    size_t n = 0;
    CHECK_CODE(guestmem_pin(mem, 600, 601, GUESTMEM_HOST, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_snapshot_saved_size(mem, &n, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(err.page == 600);
    CHECK_CODE(guestmem_snapshot_save(mem, a, sizeof a, &n, &err), GUESTMEM_ERR_BUSY, err);
    memset(&s, 0, sizeof s);
    CHECK_CODE(guestmem_snapshot_save_to(mem, sink, &s, &n, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(s.len == 0);
    CHECK_CODE(guestmem_unpin(mem, 600, 601, &err), GUESTMEM_OK, err);
    s.stop_after = 8;
    CHECK_CODE(guestmem_snapshot_save_to(mem, sink, &s, &n, &err), GUESTMEM_ERR_OUT_OF_MEMORY, err);
    CHECK_CODE(guestmem_snapshot_save(mem, a, 8, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(strstr(err.message, "needs") != NULL);
    guestmem_destroy(mem);
}

static void a_damaged_snapshot_is_refused_with_its_offset_and_inspect_lists_a_good_one(void) {
    static uint8_t a[BUF];
    static text t;
    guestmem_memory* mem = busy_object();
    guestmem_memory* fresh = new_simulated(1024, GUESTMEM_SHARED);
    guestmem_error err = new_error();
    uint32_t share = 9;
    size_t n = 0;
    CHECK_CODE(guestmem_snapshot_save(mem, a, sizeof a, &n, &err), GUESTMEM_OK, err);
    memset(&t, 0, sizeof t);
    CHECK_CODE(guestmem_snapshot_inspect(a, n, 4, append, &t, &err), GUESTMEM_OK, err);
    CHECK(t.len > 0 && strstr(t.data, "1024") != NULL);
    a[n / 2] ^= 0x40;
    CHECK_CODE(guestmem_snapshot_check(a, n, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(strstr(err.message, "offset") != NULL);
    CHECK_CODE(guestmem_snapshot_restore(fresh, a, n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_shareability_at(fresh, 3, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_SHARED);
    t.len = 0;
    t.data[0] = '\0';
    CHECK_CODE(guestmem_snapshot_inspect(a, n, 4, append, &t, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(t.len == 0);
    CHECK_CODE(guestmem_snapshot_check(a, 3, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_check(NULL, 0, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    guestmem_destroy(fresh);
    guestmem_destroy(mem);
}

static void snapshot_calls_refuse_null_and_short_arguments(void) {
    static uint8_t a[BUF];
    guestmem_memory* mem = new_simulated(64, GUESTMEM_SHARED);
    guestmem_error err = new_error();
    guestmem_snapshot_header h;
    size_t n = 0;
    uint64_t g = 0;
    memset(&h, 0, sizeof h);
    CHECK_CODE(guestmem_generation(NULL, &g, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_generation(mem, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_saved_size(NULL, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_saved_size(mem, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_save(NULL, a, sizeof a, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_save(mem, NULL, 16, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_save(mem, NULL, 0, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err); /* too small */
    CHECK_CODE(guestmem_snapshot_save_to(NULL, sink, NULL, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_save_to(mem, NULL, NULL, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_save(mem, a, sizeof a, &n, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_snapshot_check(a, n, &h, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err); /* h.size 0 */
    CHECK_CODE(guestmem_snapshot_check(NULL, n, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_restore(NULL, a, n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_restore(mem, NULL, n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_for_each_change(NULL, 0, record_run, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_save_increment(NULL, 0, a, sizeof a, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_save_increment(mem, 0, NULL, 4, &n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_apply_increment(NULL, a, n, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_apply_increment(mem, NULL, 4, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_inspect(a, n, 0, NULL, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_snapshot_inspect(NULL, 4, 0, append, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    guestmem_destroy(mem);
}

int main(void) {
    RUN(a_saved_object_restores_into_a_fresh_one_that_saves_the_same_bytes);
    RUN(an_increment_carries_the_changes_since_a_generation);
    RUN(for_each_change_visits_the_current_runs_of_what_changed_and_stops_when_asked);
    RUN(a_pinned_object_is_busy_to_save_and_a_refusing_sink_is_out_of_memory);
    RUN(a_damaged_snapshot_is_refused_with_its_offset_and_inspect_lists_a_good_one);
    RUN(snapshot_calls_refuse_null_and_short_arguments);
    return C_TEST_RESULT();
}
