/* tests/c/kvm_test.c — the C ABI's KVM layer (guestmem_kvm.h): the GPA map
 * over objects (slots, lookups, conversions across slots, refusals), the
 * exit router fed struct kvm_run exits and bare requests, the discard
 * consumer on memfds, the attributes consumer where KVM has the PRIVATE
 * attribute (skipped with a reason elsewhere), and bad input. */
#define _GNU_SOURCE
#include "c_test.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define GPA(gfn) ((uint64_t)(gfn) << 12)

static guestmem_gpa_map* new_map(void) {
    guestmem_gpa_map* m = NULL;
    guestmem_error err = new_error();
    if (guestmem_gpa_map_create(&m, &err) != GUESTMEM_OK) abort();
    return m;
}

static void the_map_converts_a_range_across_contiguous_slots_of_one_object(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_SHARED);
    guestmem_memory* other = new_simulated(64, GUESTMEM_SHARED);
    guestmem_gpa_map* map = new_map();
    guestmem_error err = new_error();
    guestmem_gpa_slot s;
    uint32_t share = 9;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 1, GPA(0x100), 512, mem, 0, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 2, GPA(0x300), 512, mem, 512, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 3, GPA(0x300) + GPA(512), 64, other, 0, &err), GUESTMEM_OK, err);
    CHECK(guestmem_gpa_map_slots(map) == 3);
    CHECK_CODE(guestmem_gpa_map_find(map, GPA(0x305) + 7, &s, &err), GUESTMEM_OK, err);
    CHECK(s.id == 2 && s.gpa == GPA(0x300) && s.pages == 512 && s.memory == mem && s.first == 512);
    /* slots 1 and 2 follow each other in GPA and in object pages: one conversion */
    CHECK_CODE(guestmem_gpa_map_convert(map, GPA(0x2ff), 2, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_shareability_at(mem, 511, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_GUEST_ONLY);
    CHECK_CODE(guestmem_shareability_at(mem, 512, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_GUEST_ONLY);
    /* a range reaching the hole below slot 1 */
    CHECK_CODE(guestmem_gpa_map_convert(map, GPA(0xff), 2, GUESTMEM_GUEST_ONLY, NULL, &err),
               GUESTMEM_ERR_INVALID_RANGE, err);
    CHECK(err.page == 0xff);
    CHECK_CODE(guestmem_gpa_map_find(map, GPA(0x50), &s, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    CHECK(err.page == 0x50);
    CHECK_CODE(guestmem_gpa_map_convert(map, GPA(0x310), 16, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_shareability_at(mem, 512 + 0x10, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_GUEST_ONLY);
    /* across slot 2 into slot 3: a second object, refused before either is touched */
    CHECK_CODE(guestmem_gpa_map_convert(map, GPA(0x300) + GPA(510), 4, GUESTMEM_GUEST_ONLY, NULL, &err),
               GUESTMEM_ERR_INVALID_RANGE, err);
    CHECK(err.page == 0x300 + 512);
    CHECK_CODE(guestmem_shareability_at(mem, 1023, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_SHARED);
    /* overlaps and aliases */
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 4, GPA(0x100), 1, other, 63, &err), GUESTMEM_ERR_ALREADY_BOUND, err);
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 4, GPA(0x10000), 1, mem, 3, &err), GUESTMEM_ERR_ALREADY_BOUND, err);
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 1, GPA(0x10000), 1, other, 63, &err), GUESTMEM_ERR_ALREADY_BOUND, err);
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 4, GPA(0x10000), 2, other, 63, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    CHECK_CODE(guestmem_gpa_map_remove_slot(map, 3, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_gpa_map_remove_slot(map, 3, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK(guestmem_gpa_map_slots(map) == 2);
    guestmem_gpa_map_destroy(map);
    guestmem_destroy(other);
    guestmem_destroy(mem);
}

typedef struct lines {
    int n;
    char last[300];
} lines;

static void log_line(void* ctx, const char* line, size_t len) {
    lines* l = (lines*)ctx;
    ++l->n;
    if (len >= sizeof l->last) len = sizeof l->last - 1;
    memcpy(l->last, line, len);
    l->last[len] = '\0';
}

static guestmem_exit_outcome new_outcome(void) {
    guestmem_exit_outcome o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.disposition = 77;
    return o;
}

static void the_router_serves_hypercall_and_memory_fault_exits_from_a_kvm_run(void) {
    char log[C_TEST_LOG_SIZE] = "";
    recorder r = new_recorder('r', log);
    guestmem_consumer_ops ops = recorder_ops();
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_SHARED);
    guestmem_gpa_map* map = new_map();
    guestmem_exit_router* router = NULL;
    guestmem_exit_router_config cfg;
    guestmem_error err = new_error();
    guestmem_exit_outcome o = new_outcome();
    struct kvm_run run;
    uint64_t fault[3];
    uint32_t share = 9;
    lines l;
    memset(&l, 0, sizeof l);
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.log = log_line;
    cfg.log_ctx = &l;
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 0, GPA(0x1000), 1024, mem, 0, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_exit_router_create(map, &cfg, &router, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_bind(mem, &ops, &r, 0, 1024, 0x1000, NULL, NULL, &err), GUESTMEM_OK, err);
    /* MAP_GPA_RANGE to private, 64-bit guest */
    memset(&run, 0, sizeof run);
    run.exit_reason = KVM_EXIT_HYPERCALL;
    run.hypercall.nr = 12; /* KVM_HC_MAP_GPA_RANGE */
    run.hypercall.args[0] = GPA(0x1010);
    run.hypercall.args[1] = 4;
    run.hypercall.args[2] = 1u << 4; /* ENCRYPTED */
    run.hypercall.longmode = 1;
    run.hypercall.ret = 99;
    CHECK_CODE(guestmem_exit_router_handle(router, &run, &o, &err), GUESTMEM_OK, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RESUME && o.hypercall_ret == 0 && run.hypercall.ret == 0);
    CHECK_CODE(guestmem_shareability_at(mem, 0x12, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_GUEST_ONLY);
    /* a veto is transient: EAGAIN for the guest, logged */
    r.veto_with = GUESTMEM_ERR_VETOED;
    run.hypercall.args[2] = 0;
    CHECK_CODE(guestmem_exit_router_handle(router, &run, &o, &err), GUESTMEM_ERR_VETOED, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RESUME && run.hypercall.ret == EAGAIN && l.n == 1);
    CHECK(err.page == 0x1010 && strstr(l.last, "EAGAIN") != NULL);
    r.veto_with = 0;
    /* a page-size hint above 2: EINVAL, nothing converted */
    run.hypercall.args[2] = 3;
    CHECK_CODE(guestmem_exit_router_handle(router, &run, &o, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(run.hypercall.ret == EINVAL && l.n == 2);
    /* KVM_EXIT_MEMORY_FAULT (39): flags, gpa, size where the kernel writes them */
    memset(&run, 0, sizeof run);
    run.exit_reason = 39;
    fault[0] = 0; /* to shared */
    fault[1] = GPA(0x1010);
    fault[2] = 4 * 4096;
    memcpy(run.padding, fault, sizeof fault);
    o = new_outcome();
    CHECK_CODE(guestmem_exit_router_handle(router, &run, &o, &err), GUESTMEM_OK, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RESUME);
    CHECK_CODE(guestmem_shareability_at(mem, 0x12, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_SHARED);
    /* another exit: not the router's, run untouched */
    memset(&run, 0, sizeof run);
    run.exit_reason = KVM_EXIT_IO;
    o = new_outcome();
    CHECK_CODE(guestmem_exit_router_handle(router, &run, &o, &err), GUESTMEM_OK, err);
    CHECK(o.disposition == GUESTMEM_EXIT_NOT_MINE);
    guestmem_exit_router_destroy(router);
    guestmem_gpa_map_destroy(map);
    guestmem_destroy(mem);
}

static void the_router_serves_bare_requests_and_fails_what_it_cannot_serve(void) {
    guestmem_memory* mem = new_simulated(1024, GUESTMEM_SHARED);
    guestmem_gpa_map* map = new_map();
    guestmem_exit_router* router = NULL;
    guestmem_error err = new_error();
    guestmem_exit_outcome o = new_outcome();
    uint32_t share = 9;
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 0, 0, 1024, mem, 0, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_exit_router_create(map, NULL, &router, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_exit_router_memory_fault(router, GPA(8), GPA(8), 1u << 3, &o, &err), GUESTMEM_OK, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RESUME);
    CHECK_CODE(guestmem_shareability_at(mem, 15, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_GUEST_ONLY);
    CHECK_CODE(guestmem_exit_router_memory_fault(router, GPA(8), GPA(8), 1u << 5, &o, &err),
               GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(o.disposition == GUESTMEM_EXIT_FAILED);
    CHECK_CODE(guestmem_exit_router_memory_fault(router, GPA(2000), GPA(1), 0, &o, &err), GUESTMEM_ERR_INVALID_RANGE,
               err);
    CHECK(o.disposition == GUESTMEM_EXIT_FAILED && err.page == 2000);
    CHECK_CODE(guestmem_exit_router_map_gpa_range(router, GPA(8), 8, 0, &o, &err), GUESTMEM_OK, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RESUME && o.hypercall_ret == 0);
    CHECK_CODE(guestmem_exit_router_map_gpa_range(router, 5, 8, 0, &o, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RESUME && o.hypercall_ret == EINVAL);
    CHECK_CODE(guestmem_exit_router_map_gpa_range(router, GPA(8), 8, 1u << 7, &o, &err),
               GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(o.hypercall_ret == EINVAL);
    guestmem_exit_router_destroy(router);
    guestmem_gpa_map_destroy(map);
    guestmem_destroy(mem);
}

static void the_discard_consumer_punches_the_shared_backing_a_conversion_leaves(void) {
    guestmem_memory* mem = new_simulated(64, GUESTMEM_SHARED);
    guestmem_discard_config cfg;
    guestmem_discard_stats st;
    guestmem_kvm_attributes_stats ast;
    guestmem_error err = new_error();
    uint64_t id = 0;
    char byte = 'x';
    int fd = memfd_create("guestmem-c-discard", 0);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, 64 * 4096) == 0);
    CHECK(pwrite(fd, "data", 4, 5 * 4096) == 4);
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.shared_fd = fd;
    cfg.private_fd = -1;
    CHECK_CODE(guestmem_discard_attach(mem, &cfg, 0, 64, &id, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_convert(mem, 4, 8, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    CHECK_CODE(guestmem_discard_get_stats(mem, id, &st, &err), GUESTMEM_OK, err);
    CHECK(st.shared_punches == 1 && st.shared_pages == 4 && st.failures == 0 && st.last_failure == GUESTMEM_OK);
    CHECK(pread(fd, &byte, 1, 5 * 4096) == 1 && byte == 0);
    /* the binding is not an attributes consumer's, and an unknown id is no one's */
    memset(&ast, 0, sizeof ast);
    ast.size = sizeof ast;
    CHECK_CODE(guestmem_kvm_attributes_get_stats(mem, id, &ast, &err), GUESTMEM_ERR_NOT_BOUND, err);
    CHECK_CODE(guestmem_discard_get_stats(mem, id + 1000, &st, &err), GUESTMEM_ERR_NOT_BOUND, err);
    /* the consumer goes with its binding */
    CHECK_CODE(guestmem_unbind(mem, id, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_discard_get_stats(mem, id, &st, &err), GUESTMEM_ERR_NOT_BOUND, err);
    /* file offsets past 2^63 */
    cfg.shared_first = (1ull << 51);
    CHECK_CODE(guestmem_discard_attach(mem, &cfg, 0, 64, &id, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    close(fd);
    guestmem_destroy(mem);
}

static int kvm_vm(unsigned long type) {
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm;
    if (kvm < 0) return -1;
    vm = ioctl(kvm, KVM_CREATE_VM, type);
    close(kvm);
    return vm;
}

static void the_attributes_consumer_is_refused_where_kvm_lacks_the_attribute_and_sets_it_where_it_has_it(void) {
    guestmem_memory* mem = new_simulated(64, GUESTMEM_SHARED);
    guestmem_kvm_attributes_stats st;
    guestmem_stats ms;
    guestmem_error err = new_error();
    uint64_t id = 0;
    int vm, private_vm;
    memset(&ms, 0, sizeof ms);
    ms.size = sizeof ms;
    CHECK_CODE(guestmem_kvm_attributes_attach(mem, -1, GUESTMEM_KVM_ATTRIBUTES_VM, 0, 64, 0, &id, &err),
               GUESTMEM_ERR_INVALID_ARGUMENT, err); /* EBADF */
    CHECK_CODE(guestmem_kvm_attributes_attach(mem, 0, 2, 0, 64, 0, &id, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    vm = kvm_vm(0);
    if (vm < 0) {
        printf("skip: /dev/kvm is not usable here (%s): the attributes consumer's KVM cases not run\n",
               strerror(errno));
    } else {
        CHECK_CODE(guestmem_kvm_attributes_attach(mem, vm, GUESTMEM_KVM_ATTRIBUTES_VM, 0, 64, 0x100, &id, &err),
                   GUESTMEM_ERR_NOT_SUPPORTED, err);
        close(vm);
    }
    CHECK_CODE(guestmem_get_stats(mem, &ms, &err), GUESTMEM_OK, err);
    CHECK(ms.bindings == 0);
    private_vm = vm = kvm_vm(3); /* KVM_X86_SW_PROTECTED_VM: has the PRIVATE attribute */
    if (vm < 0) {
        printf("skip: no KVM_X86_SW_PROTECTED_VM here (%s): the attribute-setting case not run\n", strerror(errno));
    } else {
        CHECK_CODE(guestmem_kvm_attributes_attach(mem, vm, GUESTMEM_KVM_ATTRIBUTES_VM, 0, 64, 0x100, &id, &err),
                   GUESTMEM_OK, err);
        CHECK_CODE(guestmem_convert(mem, 0, 8, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
        memset(&st, 0, sizeof st);
        st.size = sizeof st;
        CHECK_CODE(guestmem_kvm_attributes_get_stats(mem, id, &st, &err), GUESTMEM_OK, err);
        CHECK(st.sets == 1 && st.refusals == 0);
    }
    guestmem_destroy(mem); /* the binding (and its consumer) go before the fd it uses */
    if (private_vm >= 0) close(private_vm);
}

static void kvm_calls_refuse_null_and_bad_arguments(void) {
    guestmem_memory* mem = new_simulated(64, GUESTMEM_SHARED);
    guestmem_gpa_map* map = new_map();
    guestmem_exit_router* router = NULL;
    guestmem_exit_router_config rc;
    guestmem_convert_options co;
    guestmem_discard_config dc;
    guestmem_discard_stats ds;
    guestmem_kvm_attributes_stats as;
    guestmem_gpa_slot s;
    guestmem_exit_outcome o = new_outcome();
    guestmem_error err = new_error();
    struct kvm_run run;
    memset(&rc, 0, sizeof rc);
    memset(&co, 0, sizeof co);
    memset(&dc, 0, sizeof dc);
    memset(&ds, 0, sizeof ds);
    memset(&as, 0, sizeof as);
    memset(&s, 0, sizeof s);
    memset(&run, 0, sizeof run);
    CHECK_CODE(guestmem_gpa_map_create(NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_gpa_map_add_slot(NULL, 0, 0, 1, mem, 0, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 0, 0, 1, NULL, 0, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 0, 5, 1, mem, 0, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 0, 0, 0, mem, 0, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 0, 0, 65, mem, 0, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    CHECK(guestmem_gpa_map_slots(map) == 0 && guestmem_gpa_map_slots(NULL) == 0);
    CHECK_CODE(guestmem_gpa_map_remove_slot(NULL, 0, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_gpa_map_add_slot(map, 0, 0, 64, mem, 0, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_gpa_map_find(NULL, 0, &s, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_gpa_map_find(map, 0, &s, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err); /* size 0 */
    CHECK_CODE(guestmem_gpa_map_find(map, 0, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_gpa_map_convert(NULL, 0, 1, GUESTMEM_SHARED, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_gpa_map_convert(map, 0, 1, 2, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_gpa_map_convert(map, 0, 1, GUESTMEM_GUEST_ONLY, &co, &err), GUESTMEM_ERR_INVALID_ARGUMENT,
               err); /* opts size 0 */
    CHECK_CODE(guestmem_gpa_map_convert(map, 0, 0, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    /* router */
    CHECK_CODE(guestmem_exit_router_create(map, NULL, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_exit_router_create(NULL, NULL, &router, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_exit_router_create(map, &rc, &router, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err); /* size 0 */
    rc.size = sizeof rc;
    rc.defer_if_pinned = 2;
    CHECK_CODE(guestmem_exit_router_create(map, &rc, &router, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    rc.defer_if_pinned = 0;
    rc.reserved[1] = 1;
    CHECK_CODE(guestmem_exit_router_create(map, &rc, &router, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(router == NULL);
    CHECK_CODE(guestmem_exit_router_create(map, NULL, &router, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_exit_router_handle(NULL, &run, &o, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(o.disposition == GUESTMEM_EXIT_FAILED);
    CHECK_CODE(guestmem_exit_router_handle(router, NULL, &o, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_exit_router_handle(router, &run, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    o.size = 4;
    CHECK_CODE(guestmem_exit_router_handle(router, &run, &o, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    o = new_outcome();
    CHECK_CODE(guestmem_exit_router_memory_fault(NULL, 0, 4096, 0, &o, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_exit_router_memory_fault(router, 0, 4096, 0, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_exit_router_memory_fault(router, 0, 100, 0, &o, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    CHECK_CODE(guestmem_exit_router_map_gpa_range(NULL, 0, 1, 0, &o, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_exit_router_map_gpa_range(router, 0, 1, 0, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    guestmem_exit_router_destroy(NULL);
    guestmem_exit_router_destroy(router);
    /* consumers */
    CHECK_CODE(guestmem_kvm_attributes_attach(NULL, 0, 0, 0, 1, 0, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_kvm_attributes_get_stats(NULL, 1, &as, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_kvm_attributes_get_stats(mem, 1, &as, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err); /* size 0 */
    CHECK_CODE(guestmem_kvm_attributes_get_stats(mem, 1, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_discard_attach(NULL, &dc, 0, 1, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_discard_attach(mem, NULL, 0, 1, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_discard_attach(mem, &dc, 0, 1, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err); /* size 0 */
    dc.size = sizeof dc;
    dc.shared_fd = dc.private_fd = -1;
    dc.reserved0 = 1;
    CHECK_CODE(guestmem_discard_attach(mem, &dc, 0, 1, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    dc.reserved0 = 0;
    CHECK_CODE(guestmem_discard_attach(mem, &dc, 0, 65, NULL, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    CHECK_CODE(guestmem_discard_get_stats(NULL, 1, &ds, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_discard_get_stats(mem, 1, &ds, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err); /* size 0 */
    guestmem_gpa_map_destroy(NULL);
    guestmem_gpa_map_destroy(map);
    guestmem_destroy(mem);
}

int main(void) {
    RUN(the_map_converts_a_range_across_contiguous_slots_of_one_object);
    RUN(the_router_serves_hypercall_and_memory_fault_exits_from_a_kvm_run);
    RUN(the_router_serves_bare_requests_and_fails_what_it_cannot_serve);
    RUN(the_discard_consumer_punches_the_shared_backing_a_conversion_leaves);
    RUN(the_attributes_consumer_is_refused_where_kvm_lacks_the_attribute_and_sets_it_where_it_has_it);
    RUN(kvm_calls_refuse_null_and_bad_arguments);
    return C_TEST_RESULT();
}
