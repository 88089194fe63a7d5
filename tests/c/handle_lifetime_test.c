/* tests/c/handle_lifetime_test.c — handles used after a close, and handles
 * freed in every order, touch no freed memory (run under the asan-ubsan
 * preset, AddressSanitizer and LeakSanitizer prove it; under the others the
 * answers are checked): a closed view answers NOT_BOUND until it is freed,
 * an object destroyed while a GPA map slot holds it lives on for the map,
 * a map destroyed while a router holds it lives on for the router, and the
 * KVM consumers go with their object. */
#define _GNU_SOURCE
#include "c_test.h"

#include <sys/mman.h>
#include <unistd.h>

static guestmem_view* open_storage(void) {
    guestmem_config cfg = simulated_config(256, GUESTMEM_SHARED);
    guestmem_view* v = NULL;
    guestmem_error err = new_error();
    if (guestmem_view_open_storage(&cfg, NULL, NULL, &v, &err) != GUESTMEM_OK) abort();
    return v;
}

static void a_closed_view_answers_not_bound_until_it_is_freed(void) {
    char log[C_TEST_LOG_SIZE] = "";
    recorder r = new_recorder('r', log);
    guestmem_consumer_ops ops = recorder_ops();
    guestmem_error err = new_error();
    guestmem_view* v = open_storage();
    guestmem_view_binding* b = NULL;
    guestmem_fault_result f;
    guestmem_owner owner;
    uint64_t id = 0, seq;
    uint32_t share;
    memset(&f, 0, sizeof f);
    f.size = sizeof f;
    CHECK_CODE(guestmem_view_allocate(v, 0, 256, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_bind(v, &ops, &r, 0, 256, 0, GUESTMEM_REPLAY_POPULATED, &id, &b, &err), GUESTMEM_OK, err);
    seq = guestmem_view_read_begin(b);
    CHECK_CODE(guestmem_view_close(v, &err), GUESTMEM_OK, err); /* the last view: the storage goes */
    CHECK(r.last.cause == GUESTMEM_CAUSE_RELEASE);
    CHECK(guestmem_view_read_retry(b, seq) != 0); /* the release ran since */
    CHECK_CODE(guestmem_view_close(v, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_fault(v, 1, GUESTMEM_SHARED, GUESTMEM_HOST, &f, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_convert(v, 0, 1, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_shareability_at(v, 0, &share, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_add_owner(v, &owner, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_bind(v, &ops, &r, 0, 1, 0, 0, NULL, NULL, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_unbind(v, id, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK(guestmem_view_open_views(v) == 0 && !guestmem_view_is_open(v));
    guestmem_view_free(v);
}

static void views_closed_by_their_owner_and_freed_in_any_order_leave_nothing_behind(void) {
    char log[C_TEST_LOG_SIZE] = "";
    recorder r = new_recorder('r', log);
    guestmem_consumer_ops ops = recorder_ops();
    guestmem_error err = new_error();
    guestmem_view* first = open_storage();
    guestmem_view *b1 = NULL, *b2 = NULL;
    guestmem_owner vm_b;
    CHECK_CODE(guestmem_view_add_owner(first, &vm_b, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_open(first, vm_b, NULL, &b1, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_open(first, vm_b, NULL, &b2, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_bind(b1, &ops, &r, 0, 128, 0, 0, NULL, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_bind(b2, &ops, &r, 128, 256, 0, 0, NULL, NULL, &err), GUESTMEM_OK, err);
    /* the first view goes first; its storage stays for VM B's views */
    guestmem_view_free(first);
    CHECK_CODE(guestmem_view_allocate(b1, 0, 8, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_view_close_owner(b2, vm_b, &err), GUESTMEM_OK, err); /* closes b2 itself too */
    CHECK_CODE(guestmem_view_allocate(b1, 0, 8, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_view_allocate(b2, 0, 8, &err), GUESTMEM_ERR_NOT_BOUND, err);
    guestmem_view_free(b1);
    CHECK_CODE(guestmem_view_close(b2, &err), GUESTMEM_ERR_NOT_BOUND, err);
    guestmem_view_free(b2);
}

static void an_object_destroyed_while_a_map_slot_holds_it_lives_on_for_the_map(void) {
    guestmem_memory* mem = new_simulated(64, GUESTMEM_SHARED);
    guestmem_gpa_map* map = NULL;
    guestmem_exit_router* router = NULL;
    guestmem_exit_outcome o;
    guestmem_error err = new_error();
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    CHECK_CODE(guestmem_gpa_map_create(&map, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 7, 0x100000, 64, mem, 0, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_exit_router_create(map, NULL, &router, &err), GUESTMEM_OK, err);
    guestmem_destroy(mem);
    CHECK_CODE(guestmem_gpa_map_convert(map, 0x100000, 4, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    guestmem_gpa_map_destroy(map); /* the router still holds it */
    CHECK_CODE(guestmem_exit_router_map_gpa_range(router, 0x100000, 4, 0, &o, &err), GUESTMEM_OK, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RESUME && o.hypercall_ret == 0);
    guestmem_exit_router_destroy(router); /* the map, then the object, go here */
}

static void a_removed_slot_lets_go_of_its_object(void) {
    guestmem_memory* mem = new_simulated(64, GUESTMEM_SHARED);
    guestmem_gpa_map* map = NULL;
    guestmem_error err = new_error();
    CHECK_CODE(guestmem_gpa_map_create(&map, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 1, 0, 64, mem, 0, &err), GUESTMEM_OK, err);
    guestmem_destroy(mem);
    CHECK_CODE(guestmem_gpa_map_remove_slot(map, 1, &err), GUESTMEM_OK, err); /* the object goes here */
    CHECK_CODE(guestmem_gpa_map_convert(map, 0, 1, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    guestmem_gpa_map_destroy(map);
}

static void kvm_consumers_go_with_their_object(void) {
    guestmem_memory* mem = new_simulated(64, GUESTMEM_SHARED);
    guestmem_discard_config cfg;
    guestmem_error err = new_error();
    uint64_t a = 0, b = 0;
    int fd = memfd_create("guestmem-c-lifetime", 0);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, 64 * 4096) == 0);
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.shared_fd = fd;
    cfg.private_fd = -1;
    CHECK_CODE(guestmem_discard_attach(mem, &cfg, 0, 32, &a, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_discard_attach(mem, &cfg, 32, 64, &b, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_unbind(mem, a, &err), GUESTMEM_OK, err);
    guestmem_destroy(mem); /* b's consumer goes here */
    close(fd);
}

int main(void) {
    RUN(a_closed_view_answers_not_bound_until_it_is_freed);
    RUN(views_closed_by_their_owner_and_freed_in_any_order_leave_nothing_behind);
    RUN(an_object_destroyed_while_a_map_slot_holds_it_lives_on_for_the_map);
    RUN(a_removed_slot_lets_go_of_its_object);
    RUN(kvm_consumers_go_with_their_object);
    return C_TEST_RESULT();
}
