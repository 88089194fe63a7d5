/* tests/c/bad_input_test.c — every bad input the C ABI can be handed: NULL
 * handles and out-pointers, bad struct sizes, bad enumeration values, ranges
 * near 2^64, unpinning more than was pinned, stale binding ids. Each gets
 * its code, the page it names and a message; none crashes; and the object's
 * state (its dump and its stats) is the same after the call as before. */
#include "c_test.h"

static guestmem_memory* obj;  /* the object every call is made on */
static recorder rec;
static guestmem_consumer_ops ops;
static char log_[C_TEST_LOG_SIZE];

#define ANY_PAGE 1 /* the entry does not check the page */

typedef struct bad_call {
    const char* what;
    int32_t (*call)(guestmem_error* err);
    int32_t code;
    uint64_t page;
    int any_page;
} bad_call;

static const uint64_t top = UINT64_MAX - 1;

/* ---- NULL handles and out-pointers --------------------------------------- */
static int32_t null_allocate(guestmem_error* e) { return guestmem_allocate(NULL, 0, 1, e); }
static int32_t null_punch(guestmem_error* e) { return guestmem_punch_hole(NULL, 0, 1, e); }
static int32_t null_release(guestmem_error* e) { return guestmem_release_quarantine(NULL, 0, 1, e); }
static int32_t null_convert(guestmem_error* e) { return guestmem_convert(NULL, 0, 1, GUESTMEM_SHARED, NULL, e); }
static int32_t null_fault(guestmem_error* e) {
    guestmem_fault_result f;
    f.size = sizeof f;
    return guestmem_fault(NULL, 0, GUESTMEM_SHARED, GUESTMEM_HOST, &f, e);
}
static int32_t null_pin(guestmem_error* e) { return guestmem_pin(NULL, 0, 1, GUESTMEM_HOST, e); }
static int32_t null_unpin(guestmem_error* e) { return guestmem_unpin(NULL, 0, 1, e); }
static int32_t null_failure(guestmem_error* e) { return guestmem_memory_failure(NULL, 0, e); }
static int32_t null_bind(guestmem_error* e) { return guestmem_bind(NULL, &ops, &rec, 0, 1, 0, NULL, NULL, e); }
static int32_t null_unbind(guestmem_error* e) { return guestmem_unbind(NULL, 1, e); }
static int32_t null_share_at(guestmem_error* e) {
    uint32_t v;
    return guestmem_shareability_at(NULL, 0, &v, e);
}
static int32_t null_map_at(guestmem_error* e) {
    uint32_t v;
    return guestmem_mappability_at(NULL, 0, &v, e);
}
static int32_t null_pins(guestmem_error* e) {
    uint32_t v;
    return guestmem_pins(NULL, 0, &v, e);
}
static int stop(void* c, uint64_t b, uint64_t en, uint32_t s) {
    (void)c, (void)b, (void)en, (void)s;
    return 1;
}
static int32_t null_runs(guestmem_error* e) { return guestmem_runs(NULL, 0, 1, stop, NULL, e); }
static int32_t null_stats(guestmem_error* e) {
    guestmem_stats s;
    s.size = sizeof s;
    return guestmem_get_stats(NULL, &s, e);
}
static int32_t null_info(guestmem_error* e) {
    guestmem_info i;
    i.size = sizeof i;
    return guestmem_get_info(NULL, &i, e);
}
static int32_t null_dump(guestmem_error* e) { return guestmem_dump(NULL, NULL, 0, NULL, e); }
static void ignore(void* c, const char* d, size_t n) { (void)c, (void)d, (void)n; }
static int32_t null_dump_to(guestmem_error* e) { return guestmem_dump_to(NULL, ignore, NULL, e); }
static int32_t fault_out_null(guestmem_error* e) { return guestmem_fault(obj, 0, GUESTMEM_SHARED, GUESTMEM_HOST, NULL, e); }
static int32_t fault_out_small(guestmem_error* e) {
    guestmem_fault_result f;
    f.size = 8;
    return guestmem_fault(obj, 0, GUESTMEM_SHARED, GUESTMEM_HOST, &f, e);
}
static int32_t share_at_out_null(guestmem_error* e) { return guestmem_shareability_at(obj, 0, NULL, e); }
static int32_t map_at_out_null(guestmem_error* e) { return guestmem_mappability_at(obj, 0, NULL, e); }
static int32_t pins_out_null(guestmem_error* e) { return guestmem_pins(obj, 0, NULL, e); }
static int32_t runs_fn_null(guestmem_error* e) { return guestmem_runs(obj, 0, 1, NULL, NULL, e); }
static int32_t stats_size_0(guestmem_error* e) {
    guestmem_stats s;
    s.size = 0;
    return guestmem_get_stats(obj, &s, e);
}
static int32_t info_out_null(guestmem_error* e) { return guestmem_get_info(obj, NULL, e); }
static int32_t dump_buf_null(guestmem_error* e) { return guestmem_dump(obj, NULL, 10, NULL, e); }
static int32_t dump_to_fn_null(guestmem_error* e) { return guestmem_dump_to(obj, NULL, NULL, e); }
static int32_t bind_ops_null(guestmem_error* e) { return guestmem_bind(obj, NULL, &rec, 600, 700, 0, NULL, NULL, e); }
static int32_t bind_ops_small(guestmem_error* e) {
    guestmem_consumer_ops o = ops;
    o.size = 4;
    return guestmem_bind(obj, &o, log_, 600, 700, 0, NULL, NULL, e);
}
static int32_t bind_ops_reserved(guestmem_error* e) {
    guestmem_consumer_ops o = ops;
    o.reserved0 = 1;
    return guestmem_bind(obj, &o, log_, 600, 700, 0, NULL, NULL, e);
}

/* ---- bad enumeration values and options ----------------------------------- */
static guestmem_convert_options options(void) {
    guestmem_convert_options o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    return o;
}
static int32_t convert_to_2(guestmem_error* e) { return guestmem_convert(obj, 600, 601, 2, NULL, e); }
static int32_t convert_to_257(guestmem_error* e) { return guestmem_convert(obj, 600, 601, 257, NULL, e); }
static int32_t convert_content_2(guestmem_error* e) {
    guestmem_convert_options o = options();
    o.content = 2;
    return guestmem_convert(obj, 600, 601, GUESTMEM_SHARED, &o, e);
}
static int32_t convert_content_256(guestmem_error* e) {
    guestmem_convert_options o = options();
    o.content = 256;
    return guestmem_convert(obj, 600, 601, GUESTMEM_SHARED, &o, e);
}
static int32_t convert_defer_2(guestmem_error* e) {
    guestmem_convert_options o = options();
    o.defer_if_pinned = 2;
    return guestmem_convert(obj, 600, 601, GUESTMEM_SHARED, &o, e);
}
static int32_t convert_opts_reserved(guestmem_error* e) {
    guestmem_convert_options o = options();
    o.reserved[6] = 1;
    return guestmem_convert(obj, 600, 601, GUESTMEM_SHARED, &o, e);
}
static int32_t convert_opts_small(guestmem_error* e) {
    guestmem_convert_options o = options();
    o.size = 4;
    return guestmem_convert(obj, 600, 601, GUESTMEM_SHARED, &o, e);
}
static int32_t fault_wanted_2(guestmem_error* e) {
    guestmem_fault_result f;
    f.size = sizeof f;
    return guestmem_fault(obj, 5, 2, GUESTMEM_HOST, &f, e);
}
static int32_t fault_who_4(guestmem_error* e) {
    guestmem_fault_result f;
    f.size = sizeof f;
    return guestmem_fault(obj, 5, GUESTMEM_SHARED, 4, &f, e);
}
static int32_t fault_who_256(guestmem_error* e) {
    guestmem_fault_result f;
    f.size = sizeof f;
    return guestmem_fault(obj, 5, GUESTMEM_SHARED, 256, &f, e);
}
static int32_t pin_who_7(guestmem_error* e) { return guestmem_pin(obj, 10, 11, 7, e); }

/* ---- ranges near 2^64 and past the end ------------------------------------ */
static int32_t allocate_top(guestmem_error* e) { return guestmem_allocate(obj, top, UINT64_MAX, e); }
static int32_t convert_top(guestmem_error* e) { return guestmem_convert(obj, top, UINT64_MAX, GUESTMEM_SHARED, NULL, e); }
static int32_t convert_inverted(guestmem_error* e) { return guestmem_convert(obj, 10, 5, GUESTMEM_SHARED, NULL, e); }
static int32_t convert_empty(guestmem_error* e) { return guestmem_convert(obj, 7, 7, GUESTMEM_SHARED, NULL, e); }
static int32_t pin_across_end(guestmem_error* e) { return guestmem_pin(obj, 1000, UINT64_MAX, GUESTMEM_HOST, e); }
static int32_t unpin_top(guestmem_error* e) { return guestmem_unpin(obj, top, UINT64_MAX, e); }
static int32_t punch_top(guestmem_error* e) { return guestmem_punch_hole(obj, top, UINT64_MAX, e); }
static int32_t punch_inverted(guestmem_error* e) { return guestmem_punch_hole(obj, 9, 3, e); }
static int32_t release_top(guestmem_error* e) { return guestmem_release_quarantine(obj, top, UINT64_MAX, e); }
static int32_t fault_top(guestmem_error* e) {
    guestmem_fault_result f;
    f.size = sizeof f;
    return guestmem_fault(obj, top, GUESTMEM_SHARED, GUESTMEM_HOST, &f, e);
}
static int32_t failure_top(guestmem_error* e) { return guestmem_memory_failure(obj, top, e); }
static int32_t share_at_top(guestmem_error* e) {
    uint32_t v;
    return guestmem_shareability_at(obj, top, &v, e);
}
static int32_t map_at_top(guestmem_error* e) {
    uint32_t v;
    return guestmem_mappability_at(obj, top, &v, e);
}
static int32_t runs_to_top(guestmem_error* e) { return guestmem_runs(obj, 0, UINT64_MAX, stop, NULL, e); }
static int32_t bind_target_wraps(guestmem_error* e) {
    return guestmem_bind(obj, &ops, log_, 600, 616, UINT64_MAX - 3, NULL, NULL, e);
}
static int32_t bind_top(guestmem_error* e) { return guestmem_bind(obj, &ops, log_, top, UINT64_MAX, 0, NULL, NULL, e); }

/* ---- pins and bindings ---------------------------------------------------- */
static int32_t unpin_more_than_pinned(guestmem_error* e) { return guestmem_unpin(obj, 0, 8, e); }
static int32_t unpin_never_pinned(guestmem_error* e) { return guestmem_unpin(obj, 10, 11, e); }
static int32_t unbind_0(guestmem_error* e) { return guestmem_unbind(obj, 0, e); }
static int32_t unbind_unknown(guestmem_error* e) { return guestmem_unbind(obj, 999, e); }
static int32_t bind_overlapping(guestmem_error* e) { return guestmem_bind(obj, &ops, &rec, 5, 6, 0, NULL, NULL, e); }

static const bad_call table[] = {
    {"allocate on a NULL object", null_allocate, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"punch_hole on a NULL object", null_punch, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"release_quarantine on a NULL object", null_release, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"convert on a NULL object", null_convert, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"fault on a NULL object", null_fault, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"pin on a NULL object", null_pin, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"unpin on a NULL object", null_unpin, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"memory_failure on a NULL object", null_failure, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"bind on a NULL object", null_bind, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"unbind on a NULL object", null_unbind, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"shareability_at on a NULL object", null_share_at, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"mappability_at on a NULL object", null_map_at, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"pins on a NULL object", null_pins, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"runs on a NULL object", null_runs, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"get_stats on a NULL object", null_stats, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"get_info on a NULL object", null_info, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"dump on a NULL object", null_dump, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"dump_to on a NULL object", null_dump_to, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"fault into a NULL result", fault_out_null, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"fault into a result of size 8", fault_out_small, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"shareability_at into NULL", share_at_out_null, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"mappability_at into NULL", map_at_out_null, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"pins into NULL", pins_out_null, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"runs with a NULL callback", runs_fn_null, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"get_stats into a struct of size 0", stats_size_0, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"get_info into NULL", info_out_null, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"dump into a NULL buffer of 10 bytes", dump_buf_null, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"dump_to a NULL writer", dump_to_fn_null, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"bind with NULL ops", bind_ops_null, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"bind with ops of size 4", bind_ops_small, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"bind with ops->reserved0 set", bind_ops_reserved, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"convert to shareability 2", convert_to_2, GUESTMEM_ERR_INVALID_ARGUMENT, 600, 0},
    {"convert to shareability 257", convert_to_257, GUESTMEM_ERR_INVALID_ARGUMENT, 600, 0},
    {"convert with content 2", convert_content_2, GUESTMEM_ERR_INVALID_ARGUMENT, 600, 0},
    {"convert with content 256", convert_content_256, GUESTMEM_ERR_INVALID_ARGUMENT, 600, 0},
    {"convert with defer_if_pinned 2", convert_defer_2, GUESTMEM_ERR_INVALID_ARGUMENT, 600, 0},
    {"convert with a reserved option byte set", convert_opts_reserved, GUESTMEM_ERR_INVALID_ARGUMENT, 600, 0},
    {"convert with options of size 4", convert_opts_small, GUESTMEM_ERR_INVALID_ARGUMENT, GUESTMEM_NO_PAGE, 0},
    {"fault wanting shareability 2", fault_wanted_2, GUESTMEM_ERR_INVALID_ARGUMENT, 5, 0},
    {"fault by accessor 4", fault_who_4, GUESTMEM_ERR_INVALID_ARGUMENT, 5, 0},
    {"fault by accessor 256", fault_who_256, GUESTMEM_ERR_INVALID_ARGUMENT, 5, 0},
    {"pin by accessor 7", pin_who_7, GUESTMEM_ERR_INVALID_ARGUMENT, 10, 0},
    {"allocate [2^64 - 2, 2^64 - 1)", allocate_top, GUESTMEM_ERR_INVALID_RANGE, UINT64_MAX - 1, 0},
    {"convert [2^64 - 2, 2^64 - 1)", convert_top, GUESTMEM_ERR_INVALID_RANGE, UINT64_MAX - 1, 0},
    {"convert the inverted [10, 5)", convert_inverted, GUESTMEM_ERR_INVALID_RANGE, 10, 0},
    {"convert the empty [7, 7)", convert_empty, GUESTMEM_ERR_INVALID_RANGE, 7, 0},
    {"pin [1000, 2^64 - 1)", pin_across_end, GUESTMEM_ERR_INVALID_RANGE, 1024, 0},
    {"unpin [2^64 - 2, 2^64 - 1)", unpin_top, GUESTMEM_ERR_INVALID_RANGE, UINT64_MAX - 1, 0},
    {"punch_hole [2^64 - 2, 2^64 - 1)", punch_top, GUESTMEM_ERR_INVALID_RANGE, UINT64_MAX - 1, 0},
    {"punch_hole the inverted [9, 3)", punch_inverted, GUESTMEM_ERR_INVALID_RANGE, 9, 0},
    {"release_quarantine [2^64 - 2, 2^64 - 1)", release_top, GUESTMEM_ERR_INVALID_RANGE, 0, ANY_PAGE},
    {"fault at page 2^64 - 2", fault_top, GUESTMEM_ERR_INVALID_RANGE, UINT64_MAX - 1, 0},
    {"memory_failure at page 2^64 - 2", failure_top, GUESTMEM_ERR_INVALID_RANGE, UINT64_MAX - 1, 0},
    {"shareability_at page 2^64 - 2", share_at_top, GUESTMEM_ERR_INVALID_RANGE, UINT64_MAX - 1, 0},
    {"mappability_at page 2^64 - 2", map_at_top, GUESTMEM_ERR_INVALID_RANGE, UINT64_MAX - 1, 0},
    {"runs over [0, 2^64 - 1)", runs_to_top, GUESTMEM_ERR_INVALID_RANGE, 1024, 0},
    {"bind with a target passing 2^64", bind_target_wraps, GUESTMEM_ERR_INVALID_RANGE, 0, ANY_PAGE},
    {"bind [2^64 - 2, 2^64 - 1)", bind_top, GUESTMEM_ERR_INVALID_RANGE, UINT64_MAX - 1, 0},
    {"unpin [0, 8) when only [0, 4) is pinned", unpin_more_than_pinned, GUESTMEM_ERR_INVALID_ARGUMENT, 4, 0},
    {"unpin a page never pinned", unpin_never_pinned, GUESTMEM_ERR_INVALID_ARGUMENT, 10, 0},
    {"unbind id 0", unbind_0, GUESTMEM_ERR_NOT_BOUND, 0, ANY_PAGE},
    {"unbind an id never handed out", unbind_unknown, GUESTMEM_ERR_NOT_BOUND, 0, ANY_PAGE},
    {"bind a consumer over pages it already has", bind_overlapping, GUESTMEM_ERR_ALREADY_BOUND, 0, ANY_PAGE},
};

/* What must not change: the dump and the stats. */
typedef struct state {
    char dump[8192];
    guestmem_stats stats;
} state;

static void snapshot(state* s) {
    guestmem_error err = new_error();
    memset(s, 0, sizeof *s);
    s->stats.size = sizeof s->stats;
    if (guestmem_dump(obj, s->dump, sizeof s->dump, NULL, &err) != 0 || guestmem_get_stats(obj, &s->stats, &err) != 0)
        abort();
}

static void every_bad_input_gets_a_clear_error_and_changes_nothing(void) {
    static state before, after;
    size_t i;
    int bad = 0;
    for (i = 0; i < sizeof table / sizeof table[0]; ++i) {
        guestmem_error err = new_error();
        int32_t code;
        snapshot(&before);
        code = table[i].call(&err);
        snapshot(&after);
        if (code != table[i].code || err.code != code || (!table[i].any_page && err.page != table[i].page) ||
            err.message[0] == '\0' || memcmp(&before, &after, sizeof before) != 0) {
            fprintf(stderr, "%s: got %s at page %#llx (%s)%s; expected %s at %#llx\n", table[i].what,
                    guestmem_errc_name(code), (unsigned long long)err.page, err.message,
                    memcmp(&before, &after, sizeof before) != 0 ? " and the state changed" : "",
                    guestmem_errc_name(table[i].code), (unsigned long long)table[i].page);
            ++bad;
        }
    }
    CHECK(bad == 0);
}

static void a_null_error_struct_is_allowed_everywhere(void) {
    CHECK(guestmem_allocate(NULL, 0, 1, NULL) == GUESTMEM_ERR_INVALID_ARGUMENT);
    CHECK(guestmem_convert(obj, 10, 5, GUESTMEM_SHARED, NULL, NULL) == GUESTMEM_ERR_INVALID_RANGE);
    CHECK(guestmem_read_begin(NULL) == 1 && guestmem_read_retry(NULL, 0) == 1 && guestmem_binding_id(NULL) == 0);
    guestmem_report_leaked(NULL, 0, 0); /* no-ops */
    guestmem_report_poisoned(NULL, 0, 0);
}

int main(void) {
    guestmem_error err = new_error();
    obj = new_simulated(1024, GUESTMEM_GUEST_ONLY);
    ops = recorder_ops();
    rec = new_recorder('R', log_);
    if (guestmem_allocate(obj, 0, 1024, &err) || guestmem_convert(obj, 0, 512, GUESTMEM_SHARED, NULL, &err) ||
        guestmem_pin(obj, 0, 4, GUESTMEM_HOST, &err) ||
        guestmem_bind(obj, &ops, &rec, 0, 1024, 0x80000, NULL, NULL, &err)) {
        fprintf(stderr, "setting up: %s\n", err.message);
        return 1;
    }
    RUN(every_bad_input_gets_a_clear_error_and_changes_nothing);
    RUN(a_null_error_struct_is_allowed_everywhere);
    guestmem_destroy(obj);
    return C_TEST_RESULT();
}
