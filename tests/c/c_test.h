/* tests/c/c_test.h — what the plain-C tests of the C ABI share: a check
 * macro that names the failed condition, a runner that calls each test by
 * its sentence-like name, and a recording consumer whose callbacks log what
 * they are told and can be told to veto or leak a page. C99, no C++. */
#ifndef GUESTMEM_C_TEST_H
#define GUESTMEM_C_TEST_H

#include <guestmem/c/guestmem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int c_test_failures;

/* Fail the current test (it returns) when `cond` is false. */
#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);     \
            ++c_test_failures;                                                           \
            return;                                                                      \
        }                                                                                \
    } while (0)

/* CHECK that a call returned `code`, printing the error it gave otherwise. */
#define CHECK_CODE(call, code, err)                                                      \
    do {                                                                                 \
        int32_t rc_ = (call);                                                            \
        if (rc_ != (code)) {                                                             \
            fprintf(stderr, "%s:%d: %s returned %s (%s), expected %s\n", __FILE__,       \
                    __LINE__, #call, guestmem_errc_name(rc_), (err).message,             \
                    guestmem_errc_name(code));                                           \
            ++c_test_failures;                                                           \
            return;                                                                      \
        }                                                                                \
    } while (0)

/* Run one test, announcing it by name ("a_veto_rolls_back" -> "a veto rolls back"). */
#define RUN(test)                                                                        \
    do {                                                                                 \
        int before_ = c_test_failures;                                                   \
        char name_[] = #test;                                                            \
        size_t i_;                                                                       \
        for (i_ = 0; name_[i_] != '\0'; ++i_)                                            \
            if (name_[i_] == '_') name_[i_] = ' ';                                       \
        test();                                                                          \
        printf("%s: %s\n", c_test_failures == before_ ? "ok  " : "FAIL", name_);         \
    } while (0)

/* The exit status of a test program. */
#define C_TEST_RESULT() (c_test_failures == 0 ? 0 : 1)

/* An error struct ready to be filled. */
static inline guestmem_error new_error(void) {
    guestmem_error e;
    memset(&e, 0, sizeof e);
    e.size = sizeof e;
    return e;
}

/* A simulated-allocator config of `pages` pages, 2 MiB folios, all `initial`. */
static inline guestmem_config simulated_config(uint64_t pages, uint32_t initial) {
    guestmem_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.allocator = GUESTMEM_ALLOC_SIMULATED;
    cfg.pages = pages;
    cfg.initial = initial;
    cfg.max_order = GUESTMEM_ORDER_2M;
    return cfg;
}

/* A simulated object of `pages` pages, 2 MiB folios, all `initial`. */
static inline guestmem_memory* new_simulated(uint64_t pages, uint32_t initial) {
    guestmem_config cfg;
    guestmem_memory* mem = NULL;
    guestmem_error err = new_error();
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.allocator = GUESTMEM_ALLOC_SIMULATED;
    cfg.pages = pages;
    cfg.initial = initial;
    cfg.max_order = GUESTMEM_ORDER_2M;
    if (guestmem_create(&cfg, &mem, &err) != GUESTMEM_OK) {
        fprintf(stderr, "guestmem_create: %s\n", err.message);
        abort();
    }
    return mem;
}

/* ---- a recording consumer ---------------------------------------------- */

/* Every recorder appends to one shared log: "<name><event>[first page] ". */
typedef struct recorder {
    char name;              /* one letter in the log */
    char* log;              /* shared log, C_TEST_LOG_SIZE bytes */
    int32_t veto_with;      /* prepare's answer (0: accept) */
    uint64_t leak_page;     /* commit reports this page as leaked, when leak is set */
    int leak;
    int32_t veto_populate;  /* populate's answer (0: accept) */
    int prepared, committed, aborted, failed, populated;
    guestmem_invalidation last;  /* the last invalidation it was told about */
} recorder;

#define C_TEST_LOG_SIZE 1024

static inline void recorder_log(recorder* r, char event, uint64_t page) {
    size_t len = strlen(r->log);
    snprintf(r->log + len, C_TEST_LOG_SIZE - len, "%c%c%llu ", r->name, event, (unsigned long long)page);
}

static inline int32_t recorder_prepare(void* ctx, const guestmem_invalidation* inv, guestmem_error* why) {
    recorder* r = (recorder*)ctx;
    r->last = *inv;
    ++r->prepared;
    recorder_log(r, 'P', inv->page_begin);
    if (r->veto_with != 0) snprintf(why->message, sizeof why->message, "recorder %c says no", r->name);
    return r->veto_with;
}
static inline void recorder_commit(void* ctx, const guestmem_invalidation* inv, guestmem_commit_report* report) {
    recorder* r = (recorder*)ctx;
    r->last = *inv;
    ++r->committed;
    recorder_log(r, 'C', inv->page_begin);
    if (r->leak && r->leak_page >= inv->page_begin && r->leak_page < inv->page_end)
        guestmem_report_leaked(report, r->leak_page, inv->binding_id);
}
static inline void recorder_abort(void* ctx, const guestmem_invalidation* inv) {
    recorder* r = (recorder*)ctx;
    r->last = *inv;
    ++r->aborted;
    recorder_log(r, 'A', inv->page_begin);
}
static inline void recorder_memory_failure(void* ctx, const guestmem_invalidation* inv) {
    recorder* r = (recorder*)ctx;
    r->last = *inv;
    ++r->failed;
    recorder_log(r, 'F', inv->page_begin);
}

static inline int32_t recorder_populate(void* ctx, const guestmem_invalidation* inv, guestmem_error* why) {
    recorder* r = (recorder*)ctx;
    r->last = *inv;
    ++r->populated;
    recorder_log(r, 'R', inv->page_begin);
    if (r->veto_populate != 0) snprintf(why->message, sizeof why->message, "recorder %c refuses the replay", r->name);
    return r->veto_populate;
}

/* The recorder's callback table. */
static inline guestmem_consumer_ops recorder_ops(void) {
    guestmem_consumer_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.size = sizeof ops;
    ops.prepare = recorder_prepare;
    ops.commit = recorder_commit;
    ops.abort = recorder_abort;
    ops.memory_failure = recorder_memory_failure;
    ops.name = "recorder";
    ops.populate = recorder_populate;
    return ops;
}

/* A recorder named `name` writing to `log`. */
static inline recorder new_recorder(char name, char* log) {
    recorder r;
    memset(&r, 0, sizeof r);
    r.name = name;
    r.log = log;
    return r;
}

#endif
