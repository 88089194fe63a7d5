/* tests/c/object_test.c — the object through the C ABI: population, the
 * pinned-unshare seed scenario (busy naming the page, or deferred), pins,
 * queries, runs, stats and the dump in both forms. */
#include "c_test.h"

static void allocate_and_punch_hole_populate_and_truncate(void) {
    guestmem_memory* mem = new_simulated(2048, GUESTMEM_GUEST_ONLY);
    guestmem_error err = new_error();
    guestmem_stats st;
    uint32_t m = 99;
    st.size = sizeof st;
    CHECK_CODE(guestmem_mappability_at(mem, 3, &m, &err), GUESTMEM_ERR_NOT_ALLOCATED, err);
    CHECK(err.page == 3 && m == 99);
    CHECK_CODE(guestmem_allocate(mem, 0, 1024, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_get_stats(mem, &st, &err), GUESTMEM_OK, err);
    CHECK(st.allocated_pages == 1024 && st.folios_2m == 2 && st.pages == 2048 && st.guest_only_pages == 2048);
    CHECK_CODE(guestmem_mappability_at(mem, 3, &m, &err), GUESTMEM_OK, err);
    CHECK(m == GUESTMEM_MAPPABLE_GUEST);
    CHECK_CODE(guestmem_punch_hole(mem, 512, 1024, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_punch_hole(mem, 4096, 8192, &err), GUESTMEM_OK, err); /* past the end: nothing there */
    CHECK_CODE(guestmem_get_stats(mem, &st, &err), GUESTMEM_OK, err);
    CHECK(st.allocated_pages == 512);
    CHECK_CODE(guestmem_release_quarantine(mem, 0, 2048, &err), GUESTMEM_OK, err); /* nothing quarantined */
    guestmem_destroy(mem);
}

static void unsharing_a_pinned_page_is_busy_naming_the_page_and_changes_nothing(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_SHARED);
    guestmem_error err = new_error();
    guestmem_stats st;
    uint32_t share = 99, pins = 99;
    st.size = sizeof st;
    CHECK_CODE(guestmem_allocate(mem, 0, 1024, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_pin(mem, 100, 101, GUESTMEM_DEVICE, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_convert(mem, 0, 512, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(err.page == 100 && err.binding_id == GUESTMEM_NO_BINDING && strstr(err.message, "0x64") != NULL);
    CHECK_CODE(guestmem_shareability_at(mem, 100, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_SHARED);
    CHECK_CODE(guestmem_pins(mem, 100, &pins, &err), GUESTMEM_OK, err);
    CHECK(pins == 1);
    CHECK_CODE(guestmem_get_stats(mem, &st, &err), GUESTMEM_OK, err);
    CHECK(st.busy == 1 && st.conversions == 0 && st.shared_pages == 1024);
    guestmem_destroy(mem);
}

static void a_deferred_unshare_drains_the_pinned_folio_until_its_last_unpin(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_SHARED);
    guestmem_error err = new_error();
    guestmem_convert_options defer;
    guestmem_fault_result f;
    uint32_t m = 99;
    memset(&defer, 0, sizeof defer);
    defer.size = sizeof defer;
    defer.defer_if_pinned = 1;
    f.size = sizeof f;
    CHECK_CODE(guestmem_allocate(mem, 0, 1024, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_pin(mem, 100, 101, GUESTMEM_HOST, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_convert(mem, 0, 512, GUESTMEM_GUEST_ONLY, &defer, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_mappability_at(mem, 100, &m, &err), GUESTMEM_OK, err);
    CHECK(m == GUESTMEM_MAPPABLE_NONE);
    CHECK_CODE(guestmem_fault(mem, 100, GUESTMEM_GUEST_ONLY, GUESTMEM_HYPERVISOR, &f, &err), GUESTMEM_ERR_RETRY, err);
    CHECK_CODE(guestmem_unpin(mem, 100, 101, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_mappability_at(mem, 100, &m, &err), GUESTMEM_OK, err);
    CHECK(m == GUESTMEM_MAPPABLE_GUEST);
    CHECK_CODE(guestmem_fault(mem, 100, GUESTMEM_GUEST_ONLY, GUESTMEM_HYPERVISOR, &f, &err), GUESTMEM_OK, err);
    guestmem_destroy(mem);
}

static void pins_count_per_page_and_unpinning_more_than_was_pinned_is_refused(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_SHARED);
    guestmem_error err = new_error();
    uint32_t pins = 99;
    CHECK_CODE(guestmem_pin(mem, 0, 4, GUESTMEM_HOST, &err), GUESTMEM_ERR_NOT_ALLOCATED, err);
    CHECK_CODE(guestmem_allocate(mem, 0, 1024, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_pin(mem, 0, 4, GUESTMEM_HOST, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_pin(mem, 2, 4, GUESTMEM_TRUSTED_DEVICE, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_pins(mem, 3, &pins, &err), GUESTMEM_OK, err);
    CHECK(pins == 2);
    CHECK_CODE(guestmem_pins(mem, 5000, &pins, &err), GUESTMEM_OK, err);
    CHECK(pins == 0); /* past the end: none */
    CHECK_CODE(guestmem_unpin(mem, 0, 4, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_unpin(mem, 0, 4, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(err.page == 0);
    CHECK_CODE(guestmem_pins(mem, 3, &pins, &err), GUESTMEM_OK, err);
    CHECK(pins == 1); /* the refused unpin changed nothing */
    CHECK_CODE(guestmem_convert(mem, 8, 9, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_pin(mem, 8, 9, GUESTMEM_HOST, &err), GUESTMEM_ERR_PERMISSION_DENIED, err);
    CHECK(err.page == 8);
    guestmem_destroy(mem);
}

typedef struct run_list {
    uint64_t begin[8], end[8];
    uint32_t share[8];
    int n, stop_after;
} run_list;

static int collect_run(void* ctx, uint64_t begin, uint64_t end, uint32_t share) {
    run_list* l = (run_list*)ctx;
    l->begin[l->n] = begin;
    l->end[l->n] = end;
    l->share[l->n] = share;
    return ++l->n == l->stop_after || l->n == 8;
}

static void runs_are_reported_clipped_to_the_range_and_stop_when_asked(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_GUEST_ONLY);
    guestmem_error err = new_error();
    run_list l;
    memset(&l, 0, sizeof l);
    CHECK_CODE(guestmem_convert(mem, 10, 20, GUESTMEM_SHARED, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_runs(mem, 0, 1024, collect_run, &l, &err), GUESTMEM_OK, err);
    CHECK(l.n == 3 && l.begin[1] == 10 && l.end[1] == 20 && l.share[1] == GUESTMEM_SHARED && l.end[2] == 1024);
    memset(&l, 0, sizeof l);
    CHECK_CODE(guestmem_runs(mem, 15, 30, collect_run, &l, &err), GUESTMEM_OK, err);
    CHECK(l.n == 2 && l.begin[0] == 15 && l.end[1] == 30 && l.share[1] == GUESTMEM_GUEST_ONLY);
    memset(&l, 0, sizeof l);
    l.stop_after = 1;
    CHECK_CODE(guestmem_runs(mem, 0, 1024, collect_run, &l, &err), GUESTMEM_OK, err);
    CHECK(l.n == 1);
    guestmem_destroy(mem);
}

static void a_conversion_to_the_state_a_range_is_in_is_a_counted_no_op(void) {
    guestmem_memory* mem = new_simulated(64, GUESTMEM_GUEST_ONLY);
    guestmem_error err = new_error();
    guestmem_stats st;
    st.size = sizeof st;
    CHECK_CODE(guestmem_convert(mem, 0, 64, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_get_stats(mem, &st, &err), GUESTMEM_OK, err);
    CHECK(st.noop_conversions == 1 && st.conversions == 0 && st.runs == 1);
    guestmem_destroy(mem);
}

typedef struct text {
    char data[4096];
    size_t len;
} text;

static void append_text(void* ctx, const char* data, size_t len) {
    text* t = (text*)ctx;
    if (t->len + len < sizeof t->data) {
        memcpy(t->data + t->len, data, len);
        t->len += len;
        t->data[t->len] = '\0';
    }
}

static void the_dump_fills_a_buffer_or_says_how_much_it_needs(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_GUEST_ONLY);
    guestmem_consumer_ops ops = recorder_ops();
    char log[C_TEST_LOG_SIZE] = "";
    recorder a = new_recorder('A', log);
    guestmem_error err = new_error();
    char buf[4096], small[10];
    size_t needed = 0, needed_again = 0;
    text t;
    t.len = 0;
    CHECK_CODE(guestmem_bind(mem, &ops, &a, 0, 1024, 0x80000, NULL, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_allocate(mem, 0, 1024, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_dump(mem, NULL, 0, &needed, &err), GUESTMEM_OK, err);
    CHECK(needed > 1 && needed < sizeof buf);
    CHECK_CODE(guestmem_dump(mem, buf, sizeof buf, &needed_again, &err), GUESTMEM_OK, err);
    CHECK(needed_again == needed && strlen(buf) == needed - 1);
    CHECK(strstr(buf, "guest_memory: 1024 pages") != NULL && strstr(buf, "binding 1") != NULL);
    CHECK_CODE(guestmem_dump(mem, small, sizeof small, &needed_again, &err), GUESTMEM_OK, err);
    CHECK(strlen(small) == 9 && strncmp(small, buf, 9) == 0 && needed_again == needed);
    CHECK_CODE(guestmem_dump_to(mem, append_text, &t, &err), GUESTMEM_OK, err);
    CHECK(strcmp(t.data, buf) == 0);
    guestmem_destroy(mem);
}

/* A prepare refusing with any GUESTMEM_ERR_* value, the last one (13,
 * WOULD_DEADLOCK) included, is a veto naming that code; a value past the
 * last is no code: a veto saying so. Nothing changes either way. */
static void a_refusal_names_every_known_code_in_its_veto_and_past_the_last_is_no_code(void) {
    guestmem_memory* mem = new_simulated(64, GUESTMEM_SHARED);
    guestmem_consumer_ops ops = recorder_ops();
    char log[C_TEST_LOG_SIZE] = "";
    recorder r = new_recorder('r', log);
    guestmem_error err = new_error();
    uint32_t share = 9;
    CHECK_CODE(guestmem_bind(mem, &ops, &r, 0, 64, 0, NULL, NULL, &err), GUESTMEM_OK, err);
    r.veto_with = GUESTMEM_ERR_WOULD_DEADLOCK;
    CHECK_CODE(guestmem_convert(mem, 0, 8, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_ERR_VETOED, err);
    CHECK(strstr(err.message, "(would_deadlock)") != NULL);
    r.veto_with = GUESTMEM_ERR_WOULD_DEADLOCK + 1;
    CHECK_CODE(guestmem_convert(mem, 0, 8, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_ERR_VETOED, err);
    CHECK(strstr(err.message, "not a guestmem error code") != NULL);
    CHECK_CODE(guestmem_shareability_at(mem, 0, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_SHARED);
    guestmem_destroy(mem);
}

int main(void) {
    RUN(allocate_and_punch_hole_populate_and_truncate);
    RUN(unsharing_a_pinned_page_is_busy_naming_the_page_and_changes_nothing);
    RUN(a_deferred_unshare_drains_the_pinned_folio_until_its_last_unpin);
    RUN(pins_count_per_page_and_unpinning_more_than_was_pinned_is_refused);
    RUN(runs_are_reported_clipped_to_the_range_and_stop_when_asked);
    RUN(a_conversion_to_the_state_a_range_is_in_is_a_counted_no_op);
    RUN(the_dump_fills_a_buffer_or_says_how_much_it_needs);
    RUN(a_refusal_names_every_known_code_in_its_veto_and_past_the_last_is_no_code);
    return C_TEST_RESULT();
}
