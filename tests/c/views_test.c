/* tests/c/views_test.c — the C ABI's views (guestmem_views.h): a storage
 * opened from C, owners, views with their own access policies, one
 * conversion round over every view's consumers, bind with replay and its
 * rollback, closes, and every call's refusal of bad input. */
#include "c_test.h"

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

static guestmem_access_policy policy(uint32_t mode, uint8_t trusted) {
    guestmem_access_policy p;
    memset(&p, 0, sizeof p);
    p.size = sizeof p;
    p.mode = mode;
    p.trusted_devices = trusted;
    return p;
}

static void a_veto_in_one_view_fails_a_conversion_made_through_another(void) {
    char log[C_TEST_LOG_SIZE] = "";
    recorder a = new_recorder('a', log), b = new_recorder('b', log);
    guestmem_consumer_ops ops = recorder_ops();
    guestmem_error err = new_error();
    guestmem_view* va = open_storage(1024, GUESTMEM_SHARED);
    guestmem_view* vb = NULL;
    guestmem_owner vm_b;
    uint32_t share = 9;
    CHECK_CODE(guestmem_view_add_owner(va, &vm_b, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_open(va, vm_b, NULL, &vb, &err), GUESTMEM_OK, err);
    CHECK(guestmem_view_open_views(va) == 2);
    CHECK_CODE(guestmem_view_allocate(va, 0, 1024, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_bind(va, &ops, &a, 0, 1024, 0, GUESTMEM_REPLAY_NONE, NULL, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_bind(vb, &ops, &b, 0, 1024, 0, GUESTMEM_REPLAY_NONE, NULL, NULL, &err), GUESTMEM_OK, err);
    b.veto_with = GUESTMEM_ERR_VETOED;
    CHECK_CODE(guestmem_view_convert(va, 0, 16, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_ERR_VETOED, err);
    CHECK(a.aborted == 1 && b.prepared == 1);
    CHECK_CODE(guestmem_view_shareability_at(vb, 0, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_SHARED);
    b.veto_with = 0;
    CHECK_CODE(guestmem_view_convert(va, 0, 16, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    CHECK(a.committed == 1 && b.committed == 1);
    CHECK_CODE(guestmem_view_shareability_at(vb, 8, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_GUEST_ONLY);
    guestmem_view_free(vb);
    guestmem_view_free(va);
}

static void each_view_faults_under_its_own_access_policy(void) {
    guestmem_error err = new_error();
    guestmem_access_policy open_p = policy(GUESTMEM_NON_CONFIDENTIAL, 1);
    guestmem_view* cvm = open_storage(1024, GUESTMEM_GUEST_ONLY);
    guestmem_view* plain = NULL;
    guestmem_fault_result f;
    guestmem_owner owner;
    memset(&f, 0, sizeof f);
    f.size = sizeof f;
    CHECK_CODE(guestmem_view_owner(cvm, &owner, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_open(cvm, owner, &open_p, &plain, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_allocate(cvm, 0, 512, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_fault(cvm, 3, GUESTMEM_GUEST_ONLY, GUESTMEM_HOST, &f, &err),
               GUESTMEM_ERR_PERMISSION_DENIED, err);
    CHECK_CODE(guestmem_view_fault(plain, 3, GUESTMEM_GUEST_ONLY, GUESTMEM_HOST, &f, &err), GUESTMEM_OK, err);
    CHECK(f.folio_first == 0 && f.order == 9);
    CHECK_CODE(guestmem_view_pin(cvm, 3, 4, GUESTMEM_HOST, &err), GUESTMEM_ERR_PERMISSION_DENIED, err);
    CHECK_CODE(guestmem_view_pin(plain, 3, 4, GUESTMEM_HOST, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_unpin(plain, 3, 4, &err), GUESTMEM_OK, err);
    guestmem_view_free(plain);
    guestmem_view_free(cvm);
}

static void bind_with_replay_populates_each_shared_run_and_a_refusal_unbinds(void) {
    char log[C_TEST_LOG_SIZE] = "";
    recorder r = new_recorder('r', log);
    guestmem_consumer_ops ops = recorder_ops();
    guestmem_error err = new_error();
    guestmem_view* v = open_storage(1024, GUESTMEM_GUEST_ONLY);
    guestmem_stats st;
    uint64_t id = 0;
    CHECK_CODE(guestmem_view_convert(v, 10, 20, GUESTMEM_SHARED, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_convert(v, 30, 40, GUESTMEM_SHARED, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_bind(v, &ops, &r, 0, 1024, 0, GUESTMEM_REPLAY_POPULATED, &id, NULL, &err), GUESTMEM_OK,
               err);
    CHECK(strcmp(log, "rR10 rR30 ") == 0);
    CHECK(r.last.cause == GUESTMEM_CAUSE_REPLAY && r.last.page_end == 40);
    CHECK_CODE(guestmem_view_unbind(v, id, &err), GUESTMEM_OK, err);
    log[0] = '\0';
    r.veto_populate = GUESTMEM_ERR_VETOED;
    CHECK_CODE(guestmem_view_bind(v, &ops, &r, 0, 1024, 0, GUESTMEM_REPLAY_POPULATED, &id, NULL, &err),
               GUESTMEM_ERR_VETOED, err);
    CHECK(err.page == 10);
    CHECK(strcmp(log, "rR10 ") == 0);
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    CHECK_CODE(guestmem_view_get_stats(v, &st, &err), GUESTMEM_OK, err);
    CHECK(st.bindings == 0);
    guestmem_view_free(v);
}

static void closing_a_view_releases_its_bindings_and_later_calls_are_not_bound(void) {
    char log[C_TEST_LOG_SIZE] = "";
    recorder r = new_recorder('r', log);
    guestmem_consumer_ops ops = recorder_ops();
    guestmem_error err = new_error();
    guestmem_view* v = open_storage(64, GUESTMEM_SHARED);
    guestmem_view* w = NULL;
    guestmem_view_binding* b = NULL;
    guestmem_owner owner;
    uint64_t id = 0, seq;
    CHECK_CODE(guestmem_view_owner(v, &owner, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_open(v, owner, NULL, &w, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_bind(w, &ops, &r, 0, 64, 0, GUESTMEM_REPLAY_NONE, &id, &b, &err), GUESTMEM_OK, err);
    CHECK(guestmem_view_binding_id(b) == id && id != 0);
    seq = guestmem_view_read_begin(b);
    CHECK(!guestmem_view_read_retry(b, seq));
    CHECK_CODE(guestmem_view_close(w, &err), GUESTMEM_OK, err);
    CHECK(r.last.cause == GUESTMEM_CAUSE_RELEASE);
    CHECK(!guestmem_view_is_open(w) && guestmem_view_is_open(v));
    CHECK_CODE(guestmem_view_close(w, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_allocate(w, 0, 1, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_unbind(w, id, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_unbind(v, id, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK(guestmem_view_open_views(v) == 1);
    guestmem_view_free(w);
    guestmem_view_free(v);
}

static void closing_an_owner_closes_its_views_and_makes_it_stale(void) {
    guestmem_error err = new_error();
    guestmem_view* v = open_storage(64, GUESTMEM_SHARED);
    guestmem_view *b1 = NULL, *b2 = NULL, *again = NULL;
    guestmem_owner vm_b, vm_c;
    CHECK_CODE(guestmem_view_add_owner(v, &vm_b, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_open(v, vm_b, NULL, &b1, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_open(v, vm_b, NULL, &b2, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_close_owner(v, vm_b, &err), GUESTMEM_OK, err);
    CHECK(!guestmem_view_is_open(b1) && !guestmem_view_is_open(b2));
    CHECK_CODE(guestmem_view_open(v, vm_b, NULL, &again, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK(again == NULL);
    CHECK_CODE(guestmem_view_close_owner(v, vm_b, &err), GUESTMEM_ERR_NOT_BOUND, err);
    /* the slot's next owner is a new value: the stale one still names nothing */
    CHECK_CODE(guestmem_view_add_owner(v, &vm_c, &err), GUESTMEM_OK, err);
    CHECK(vm_c.slot == vm_b.slot && vm_c.generation != vm_b.generation);
    CHECK_CODE(guestmem_view_open(v, vm_b, NULL, &again, &err), GUESTMEM_ERR_NOT_BOUND, err);
    guestmem_view_free(b2);
    guestmem_view_free(b1);
    guestmem_view_free(v);
}

static void full_tables_are_out_of_memory(void) {
    guestmem_config cfg = simulated_config(64, GUESTMEM_SHARED);
    guestmem_storage_options o;
    guestmem_error err = new_error();
    guestmem_view *v = NULL, *w = NULL;
    guestmem_owner owner;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.max_views = 1;
    o.max_owners = 1;
    CHECK_CODE(guestmem_view_open_storage(&cfg, &o, NULL, &v, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_add_owner(v, &owner, &err), GUESTMEM_ERR_OUT_OF_MEMORY, err);
    CHECK_CODE(guestmem_view_owner(v, &owner, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_open(v, owner, NULL, &w, &err), GUESTMEM_ERR_OUT_OF_MEMORY, err);
    CHECK(w == NULL);
    guestmem_view_free(v);
}

static void view_calls_refuse_bad_input_and_change_nothing(void) {
    guestmem_config cfg = simulated_config(64, GUESTMEM_SHARED);
    guestmem_access_policy bad = policy(2, 1);
    guestmem_storage_options o;
    guestmem_consumer_ops ops = recorder_ops();
    guestmem_fault_result f;
    guestmem_stats st;
    guestmem_error err = new_error();
    guestmem_view *v = NULL, *w = (guestmem_view*)&o;
    guestmem_owner owner = {0, 0, 0};
    uint32_t share = 0;
    memset(&o, 0, sizeof o);
    memset(&f, 0, sizeof f);
    memset(&st, 0, sizeof st);
    CHECK_CODE(guestmem_view_open_storage(&cfg, NULL, NULL, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_open_storage(NULL, NULL, NULL, &v, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_open_storage(&cfg, &o, NULL, &v, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err); /* size 0 */
    o.size = sizeof o;
    o.reserved0 = 1;
    CHECK_CODE(guestmem_view_open_storage(&cfg, &o, NULL, &v, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_open_storage(&cfg, NULL, &bad, &v, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    bad = policy(0, 2);
    CHECK_CODE(guestmem_view_open_storage(&cfg, NULL, &bad, &v, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(v == NULL);
    cfg.pages = 0;
    CHECK_CODE(guestmem_view_open_storage(&cfg, NULL, NULL, &v, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    cfg.pages = 64;
    CHECK_CODE(guestmem_view_open_storage(&cfg, NULL, NULL, &v, &err), GUESTMEM_OK, err);
    /* NULL handles */
    CHECK_CODE(guestmem_view_add_owner(NULL, &owner, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_add_owner(v, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_owner(NULL, &owner, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_owner(v, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_open(NULL, owner, NULL, &w, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_open(v, owner, NULL, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_open(v, owner, &bad, &w, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(w == NULL);
    owner.slot = 0;
    owner.reserved = 0;
    owner.generation = 0xdead;
    CHECK_CODE(guestmem_view_open(v, owner, NULL, &w, &err), GUESTMEM_ERR_NOT_BOUND, err);
    owner.slot = 1000; /* past the owner table */
    owner.generation = 1;
    CHECK_CODE(guestmem_view_open(v, owner, NULL, &w, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_owner(v, &owner, &err), GUESTMEM_OK, err);
    owner.reserved = 1; /* a real owner with reserved bytes set names none */
    CHECK_CODE(guestmem_view_open(v, owner, NULL, &w, &err), GUESTMEM_ERR_NOT_BOUND, err);
    owner.reserved = 0;
    owner.generation = 0xdead;
    CHECK_CODE(guestmem_view_close(NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_close_owner(NULL, owner, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_close_owner(v, owner, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK(guestmem_view_is_open(NULL) == 0 && guestmem_view_open_views(NULL) == 0);
    CHECK_CODE(guestmem_view_allocate(NULL, 0, 1, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_punch_hole(NULL, 0, 1, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_release_quarantine(NULL, 0, 1, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_convert(NULL, 0, 1, GUESTMEM_SHARED, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_fault(NULL, 0, 0, 0, &f, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_pin(NULL, 0, 1, 0, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_unpin(NULL, 0, 1, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_memory_failure(NULL, 0, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_shareability_at(NULL, 0, &share, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_shareability_at(v, 0, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_get_stats(NULL, &st, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_get_stats(v, &st, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err); /* size 0 */
    CHECK_CODE(guestmem_view_fault(v, 0, 0, 0, &f, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err); /* size 0 */
    CHECK_CODE(guestmem_view_fault(v, 0, 0, 0, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    /* bad values reach the storage's own checks */
    CHECK_CODE(guestmem_view_allocate(v, 8, 4, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    CHECK_CODE(guestmem_view_convert(v, 0, 1, 7, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_pin(v, 0, 1, 0x100, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_memory_failure(v, 0, &err), GUESTMEM_ERR_NOT_ALLOCATED, err);
    CHECK_CODE(guestmem_view_unpin(v, 0, 1, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    /* bind */
    CHECK_CODE(guestmem_view_bind(NULL, &ops, NULL, 0, 1, 0, 0, NULL, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_bind(v, NULL, NULL, 0, 1, 0, 0, NULL, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_bind(v, &ops, NULL, 0, 1, 0, 2, NULL, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_bind(v, &ops, NULL, 0, 65, 0, 0, NULL, NULL, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    CHECK_CODE(guestmem_view_unbind(NULL, 1, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_view_unbind(v, 12345, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK(guestmem_view_binding_id(NULL) == 0);
    CHECK(guestmem_view_read_begin(NULL) == 1 && guestmem_view_read_retry(NULL, 0) != 0);
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    CHECK_CODE(guestmem_view_get_stats(v, &st, &err), GUESTMEM_OK, err);
    CHECK(st.bindings == 0 && st.allocated_pages == 0 && st.shared_pages == 64);
    guestmem_view_free(NULL);
    guestmem_view_free(v);
}

/* A consumer table as a caller built against ABI 0.1 passes it: no
 * populate field. It binds, and a replay makes no call. */
static void a_consumer_table_of_abi_0_1_still_binds_and_is_not_replayed_to(void) {
    char log[C_TEST_LOG_SIZE] = "";
    recorder r = new_recorder('r', log);
    guestmem_consumer_ops ops = recorder_ops();
    guestmem_error err = new_error();
    guestmem_view* v = open_storage(64, GUESTMEM_SHARED);
    ops.size = (uint32_t)offsetof(guestmem_consumer_ops, populate);
    CHECK_CODE(guestmem_view_bind(v, &ops, &r, 0, 64, 0, GUESTMEM_REPLAY_POPULATED, NULL, NULL, &err), GUESTMEM_OK,
               err);
    CHECK(r.populated == 0);
    ops.size = (uint32_t)offsetof(guestmem_consumer_ops, name);
    CHECK_CODE(guestmem_view_bind(v, &ops, &r, 0, 64, 0, GUESTMEM_REPLAY_NONE, NULL, NULL, &err),
               GUESTMEM_ERR_INVALID_ARGUMENT, err);
    guestmem_view_free(v);
}

int main(void) {
    RUN(a_veto_in_one_view_fails_a_conversion_made_through_another);
    RUN(each_view_faults_under_its_own_access_policy);
    RUN(bind_with_replay_populates_each_shared_run_and_a_refusal_unbinds);
    RUN(closing_a_view_releases_its_bindings_and_later_calls_are_not_bound);
    RUN(closing_an_owner_closes_its_views_and_makes_it_stale);
    RUN(full_tables_are_out_of_memory);
    RUN(view_calls_refuse_bad_input_and_change_nothing);
    RUN(a_consumer_table_of_abi_0_1_still_binds_and_is_not_replayed_to);
    return C_TEST_RESULT();
}
