/* tests/c/consumers_test.c — the C ABI's consumers: the seed scenarios
 * (a veto by the second of three consumers rolls back the first; memory
 * failure tells consumers), what a misbehaving prepare gets, leak reports
 * and quarantine, bind/unbind and read_begin/read_retry. */
#include "c_test.h"

static char log_[C_TEST_LOG_SIZE];

static void a_veto_by_the_second_of_three_consumers_rolls_back_the_first(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_GUEST_ONLY);
    guestmem_consumer_ops ops = recorder_ops();
    recorder a = new_recorder('A', log_), b = new_recorder('B', log_), c = new_recorder('C', log_);
    uint64_t id_b = 0;
    guestmem_error err = new_error();
    guestmem_stats st;
    uint32_t share = 99;
    log_[0] = '\0';
    CHECK_CODE(guestmem_bind(mem, &ops, &a, 0, 1024, 0x80000, NULL, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_bind(mem, &ops, &b, 0, 1024, 0x80000, &id_b, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_bind(mem, &ops, &c, 0, 1024, 0x80000, NULL, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_allocate(mem, 0, 1024, &err), GUESTMEM_OK, err);
    b.veto_with = GUESTMEM_ERR_VETOED;
    CHECK_CODE(guestmem_convert(mem, 16, 17, GUESTMEM_SHARED, NULL, &err), GUESTMEM_ERR_VETOED, err);
    CHECK(err.code == GUESTMEM_ERR_VETOED && err.page == 16 && err.binding_id == id_b);
    CHECK(strstr(err.message, "recorder B says no") != NULL);
    CHECK(strcmp(log_, "AP16 BP16 AA16 ") == 0); /* C never asked; A told to undo */
    CHECK(c.prepared == 0 && a.committed == 0 && b.aborted == 0);
    CHECK(a.last.target_begin == 0x80000 + 16 && a.last.vetoable == 1 && a.last.cause == GUESTMEM_CAUSE_TO_SHARED);
    CHECK_CODE(guestmem_shareability_at(mem, 16, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_GUEST_ONLY);
    st.size = sizeof st;
    CHECK_CODE(guestmem_get_stats(mem, &st, &err), GUESTMEM_OK, err);
    CHECK(st.vetoes == 1 && st.conversions == 0 && st.rollbacks == 1 && st.bindings == 3);
    b.veto_with = 0; /* once B agrees, all three commit */
    log_[0] = '\0';
    CHECK_CODE(guestmem_convert(mem, 16, 17, GUESTMEM_SHARED, NULL, &err), GUESTMEM_OK, err);
    CHECK(err.code == 0 && err.message[0] == '\0' && err.page == GUESTMEM_NO_PAGE);
    CHECK(strcmp(log_, "AP16 BP16 CP16 AC16 BC16 CC16 ") == 0);
    guestmem_destroy(mem);
}

static int32_t veto_code;
static int32_t prepare_returning(void* ctx, const guestmem_invalidation* inv, guestmem_error* why) {
    (void)ctx;
    (void)inv;
    memset(why->message, 'x', sizeof why->message); /* no terminator: the library must cope */
    return veto_code;
}

static void a_prepare_returning_an_unknown_code_is_a_veto_that_says_so(void) {
    static const int32_t codes[] = {777, -1, 14, INT32_MIN};
    guestmem_memory* mem = new_simulated(64, GUESTMEM_GUEST_ONLY);
    guestmem_consumer_ops ops;
    guestmem_error err = new_error();
    size_t i;
    memset(&ops, 0, sizeof ops);
    ops.size = sizeof ops;
    ops.prepare = prepare_returning;
    ops.name = "wild";
    CHECK_CODE(guestmem_bind(mem, &ops, NULL, 0, 64, 0, NULL, NULL, &err), GUESTMEM_OK, err);
    for (i = 0; i < sizeof codes / sizeof codes[0]; ++i) {
        char expected[64];
        veto_code = codes[i];
        snprintf(expected, sizeof expected, "prepare returned %ld", (long)codes[i]);
        CHECK_CODE(guestmem_convert(mem, 3, 5, GUESTMEM_SHARED, NULL, &err), GUESTMEM_ERR_VETOED, err);
        CHECK(err.page == 3 && strstr(err.message, expected) != NULL);
        CHECK(strstr(err.message, "not a guestmem error code") != NULL && strstr(err.message, "wild") != NULL);
    }
    guestmem_destroy(mem);
}

static int32_t prepare_out_of_room(void* ctx, const guestmem_invalidation* inv, guestmem_error* why) {
    (void)ctx;
    (void)inv;
    snprintf(why->message, sizeof why->message, "no room for a split");
    return GUESTMEM_ERR_OUT_OF_MEMORY;
}

static void a_prepare_returning_another_known_code_is_a_veto_naming_it(void) {
    guestmem_memory* mem = new_simulated(64, GUESTMEM_GUEST_ONLY);
    guestmem_consumer_ops ops;
    guestmem_error err = new_error();
    memset(&ops, 0, sizeof ops);
    ops.size = sizeof ops;
    ops.prepare = prepare_out_of_room;
    CHECK_CODE(guestmem_bind(mem, &ops, NULL, 0, 64, 0, NULL, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_convert(mem, 0, 1, GUESTMEM_SHARED, NULL, &err), GUESTMEM_ERR_VETOED, err);
    CHECK(strstr(err.message, "no room for a split (out_of_memory)") != NULL);
    CHECK(strstr(err.message, "consumer") != NULL); /* ops.name NULL: the default name */
    guestmem_destroy(mem);
}

static void memory_failure_tells_every_consumer_once_with_the_whole_folio(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_GUEST_ONLY);
    guestmem_consumer_ops ops = recorder_ops();
    recorder a = new_recorder('A', log_), b = new_recorder('B', log_);
    guestmem_error err = new_error();
    guestmem_fault_result f;
    guestmem_stats st;
    CHECK_CODE(guestmem_bind(mem, &ops, &a, 0, 1024, 0, NULL, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_bind(mem, &ops, &b, 256, 1024, 0, NULL, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_memory_failure(mem, 5, &err), GUESTMEM_ERR_NOT_ALLOCATED, err);
    CHECK(err.page == 5);
    CHECK_CODE(guestmem_allocate(mem, 0, 1024, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_memory_failure(mem, 5, &err), GUESTMEM_OK, err);
    CHECK(a.failed == 1 && b.failed == 1);
    CHECK(a.last.cause == GUESTMEM_CAUSE_MEMORY_FAILURE && a.last.order == GUESTMEM_ORDER_2M);
    CHECK(a.last.page_begin == 0 && a.last.page_end == 512 && a.last.share == GUESTMEM_GUEST_ONLY);
    CHECK(b.last.page_begin == 256 && b.last.page_end == 512); /* clipped to its binding */
    CHECK_CODE(guestmem_memory_failure(mem, 6, &err), GUESTMEM_OK, err);
    CHECK(a.failed == 1 && b.failed == 1); /* the same folio: no one told again */
    f.size = sizeof f;
    CHECK_CODE(guestmem_fault(mem, 5, GUESTMEM_GUEST_ONLY, GUESTMEM_HYPERVISOR, &f, &err), GUESTMEM_ERR_POISONED, err);
    st.size = sizeof st;
    CHECK_CODE(guestmem_get_stats(mem, &st, &err), GUESTMEM_OK, err);
    CHECK(st.poisoned_folios == 1);
    guestmem_destroy(mem);
}

static void a_page_a_consumer_could_not_drop_is_quarantined_until_released(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_SHARED);
    guestmem_consumer_ops ops = recorder_ops();
    recorder a = new_recorder('A', log_);
    guestmem_error err = new_error();
    guestmem_stats st;
    st.size = sizeof st;
    a.leak = 1;
    a.leak_page = 7;
    CHECK_CODE(guestmem_bind(mem, &ops, &a, 0, 1024, 0, NULL, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_allocate(mem, 0, 1024, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_convert(mem, 0, 512, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_get_stats(mem, &st, &err), GUESTMEM_OK, err);
    CHECK(st.quarantined == 1 && st.poisoned_folios == 1);
    a.leak = 0;
    CHECK_CODE(guestmem_punch_hole(mem, 0, 512, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_get_stats(mem, &st, &err), GUESTMEM_OK, err);
    CHECK(st.quarantined_pages == 1); /* the leaked 4K piece, split out of its 2 MiB folio */
    CHECK_CODE(guestmem_allocate(mem, 0, 512, &err), GUESTMEM_ERR_POISONED, err);
    CHECK(err.page == 7);
    CHECK_CODE(guestmem_release_quarantine(mem, 0, 512, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_allocate(mem, 0, 512, &err), GUESTMEM_OK, err);
    guestmem_destroy(mem);
}

static void a_fault_is_retried_when_an_invalidation_ran_after_read_begin(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_SHARED);
    guestmem_consumer_ops ops = recorder_ops();
    recorder a = new_recorder('A', log_);
    guestmem_binding* binding = NULL;
    uint64_t id = 0, seq;
    guestmem_error err = new_error();
    guestmem_fault_result f;
    CHECK_CODE(guestmem_bind(mem, &ops, &a, 0, 1024, 0x100, &id, &binding, &err), GUESTMEM_OK, err);
    CHECK(binding != NULL && guestmem_binding_id(binding) == id && id != 0);
    CHECK_CODE(guestmem_allocate(mem, 0, 1024, &err), GUESTMEM_OK, err);
    seq = guestmem_read_begin(binding);
    CHECK(seq % 2 == 0);
    f.size = sizeof f;
    CHECK_CODE(guestmem_fault(mem, 600, GUESTMEM_SHARED, GUESTMEM_HOST, &f, &err), GUESTMEM_OK, err);
    CHECK(f.order == GUESTMEM_ORDER_2M && f.folio_first == 512 && f.frame == f.folio_frame + 88);
    CHECK(f.mappability == GUESTMEM_MAPPABLE_ALL);
    CHECK(!guestmem_read_retry(binding, seq));
    CHECK_CODE(guestmem_convert(mem, 600, 601, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    CHECK(guestmem_read_retry(binding, seq));
    CHECK_CODE(guestmem_fault(mem, 600, GUESTMEM_SHARED, GUESTMEM_HOST, &f, &err), GUESTMEM_ERR_PERMISSION_DENIED, err);
    CHECK_CODE(guestmem_fault(mem, 600, GUESTMEM_GUEST_ONLY, GUESTMEM_HYPERVISOR, &f, &err), GUESTMEM_OK, err);
    CHECK(f.order == GUESTMEM_ORDER_4K && f.mappability == GUESTMEM_MAPPABLE_GUEST); /* split for the 4K page */
    guestmem_destroy(mem);
}

static void one_consumer_may_not_bind_overlapping_pages_twice_but_may_bind_elsewhere(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_GUEST_ONLY);
    guestmem_consumer_ops ops = recorder_ops();
    recorder a = new_recorder('A', log_);
    uint64_t first = 0, second = 0;
    guestmem_error err = new_error();
    guestmem_stats st;
    st.size = sizeof st;
    CHECK_CODE(guestmem_bind(mem, &ops, &a, 0, 512, 0, &first, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_bind(mem, &ops, &a, 256, 768, 0, NULL, NULL, &err), GUESTMEM_ERR_ALREADY_BOUND, err);
    CHECK_CODE(guestmem_bind(mem, &ops, &a, 512, 1024, 0x1000, &second, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_unbind(mem, first, &err), GUESTMEM_OK, err);
    CHECK(a.last.cause == GUESTMEM_CAUSE_RELEASE && a.last.binding_id == first);
    CHECK_CODE(guestmem_unbind(mem, first, &err), GUESTMEM_ERR_NOT_BOUND, err); /* stale id */
    CHECK_CODE(guestmem_convert(mem, 700, 701, GUESTMEM_SHARED, NULL, &err), GUESTMEM_OK, err);
    CHECK(a.last.binding_id == second && a.last.target_begin == 0x1000 + 188);
    CHECK_CODE(guestmem_get_stats(mem, &st, &err), GUESTMEM_OK, err);
    CHECK(st.bindings == 1);
    CHECK_CODE(guestmem_unbind(mem, second, &err), GUESTMEM_OK, err);
    guestmem_destroy(mem);
}

static void destroying_an_object_releases_its_consumers(void) {
    guestmem_memory* mem = new_simulated(64, GUESTMEM_GUEST_ONLY);
    guestmem_consumer_ops ops = recorder_ops();
    recorder a = new_recorder('A', log_);
    guestmem_error err = new_error();
    CHECK_CODE(guestmem_bind(mem, &ops, &a, 0, 64, 0, NULL, NULL, &err), GUESTMEM_OK, err);
    guestmem_destroy(mem);
    CHECK(a.committed == 1 && a.last.cause == GUESTMEM_CAUSE_RELEASE);
    guestmem_destroy(NULL); /* a no-op */
}

/* A C callback that calls back into its own object: every call that can
 * fail says WOULD_DEADLOCK (and never hangs); stats answer as before the round. */
static guestmem_memory* reentered_mem;
static int reentry_checks;
static void reenter(void) {
    guestmem_error err = new_error();
    uint32_t share = 99;
    guestmem_fault_result f;
    guestmem_stats st;
    f.size = sizeof f;
    st.size = sizeof st;
    CHECK_CODE(guestmem_shareability_at(reentered_mem, 0, &share, &err), GUESTMEM_ERR_WOULD_DEADLOCK, err);
    CHECK(share == 99 && strstr(err.message, "guest_memory::shareability_at") != NULL);
    CHECK(strstr(err.message, "consumer callback") != NULL);
    CHECK_CODE(guestmem_fault(reentered_mem, 0, GUESTMEM_SHARED, GUESTMEM_HOST, &f, &err), GUESTMEM_ERR_WOULD_DEADLOCK,
               err);
    CHECK_CODE(guestmem_convert(reentered_mem, 0, 1, GUESTMEM_SHARED, NULL, &err), GUESTMEM_ERR_WOULD_DEADLOCK, err);
    CHECK_CODE(guestmem_pin(reentered_mem, 0, 1, GUESTMEM_HOST, &err), GUESTMEM_ERR_WOULD_DEADLOCK, err);
    CHECK_CODE(guestmem_get_stats(reentered_mem, &st, &err), GUESTMEM_OK, err);
    CHECK(st.guest_only_pages == 64); /* before the round */
    ++reentry_checks;
}
static int32_t prepare_reentering(void* ctx, const guestmem_invalidation* inv, guestmem_error* why) {
    (void)ctx;
    (void)why;
    if (inv->cause == GUESTMEM_CAUSE_TO_SHARED) reenter(); /* not the release guestmem_destroy sends */
    return 0;
}

static void a_c_callback_calling_back_into_its_object_gets_would_deadlock_not_a_hang(void) {
    guestmem_memory* mem = new_simulated(64, GUESTMEM_GUEST_ONLY);
    guestmem_consumer_ops ops;
    guestmem_error err = new_error();
    uint32_t share = 99;
    memset(&ops, 0, sizeof ops);
    ops.size = sizeof ops;
    ops.prepare = prepare_reentering;
    ops.name = "reentering";
    reentered_mem = mem;
    reentry_checks = 0;
    CHECK_CODE(guestmem_allocate(mem, 0, 64, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_bind(mem, &ops, NULL, 0, 64, 0, NULL, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_convert(mem, 0, 8, GUESTMEM_SHARED, NULL, &err), GUESTMEM_OK, err);
    CHECK(reentry_checks == 1);
    CHECK_CODE(guestmem_shareability_at(mem, 0, &share, &err), GUESTMEM_OK, err); /* outside: fine again */
    CHECK(share == GUESTMEM_SHARED);
    CHECK(strcmp(guestmem_errc_name(GUESTMEM_ERR_WOULD_DEADLOCK), "would_deadlock") == 0);
    guestmem_destroy(mem);
}

int main(void) {
    RUN(a_veto_by_the_second_of_three_consumers_rolls_back_the_first);
    RUN(a_prepare_returning_an_unknown_code_is_a_veto_that_says_so);
    RUN(a_prepare_returning_another_known_code_is_a_veto_naming_it);
    RUN(memory_failure_tells_every_consumer_once_with_the_whole_folio);
    RUN(a_page_a_consumer_could_not_drop_is_quarantined_until_released);
    RUN(a_fault_is_retried_when_an_invalidation_ran_after_read_begin);
    RUN(one_consumer_may_not_bind_overlapping_pages_twice_but_may_bind_elsewhere);
    RUN(destroying_an_object_releases_its_consumers);
    RUN(a_c_callback_calling_back_into_its_object_gets_would_deadlock_not_a_hang);
    return C_TEST_RESULT();
}
