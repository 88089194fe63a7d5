/* tests/c/kvm_retry_test.c — the C router's retry policy (guestmem_kvm.h,
 * ABI 0.3): under GUESTMEM_VMM_RETRIES a transient refusal is RETRY_LATER
 * with the wait fd, the run untouched and the vCPU's state pending; the
 * object signals the eventfd when the pin drops; after the retry limit (a
 * test clock: no timed assertions) the guest gets EINVAL or the fault
 * fails; another request restarts the clock; GUESTMEM_GUEST_RETRIES (and
 * ABI 0.2's create) keep EAGAIN; bad input is refused. */
#define _GNU_SOURCE
#include "c_test.h"

#include <errno.h>
#include <linux/kvm.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define GPA(gfn) ((uint64_t)(gfn) << 12)
#define MS 1000000ull

typedef struct lines {
    int n;
    char last[512];
} lines;

static void log_line(void* ctx, const char* line, size_t len) {
    lines* l = (lines*)ctx;
    ++l->n;
    if (len >= sizeof l->last) len = sizeof l->last - 1;
    memcpy(l->last, line, len);
    l->last[len] = '\0';
}

static uint64_t test_clock(void* ctx) { return *(const uint64_t*)ctx; }

static guestmem_exit_outcome new_outcome(void) {
    guestmem_exit_outcome o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.disposition = 77;
    o.wait_fd = 77;
    return o;
}

static guestmem_vcpu_retry new_vcpu(void) {
    guestmem_vcpu_retry v;
    memset(&v, 0, sizeof v);
    v.size = sizeof v;
    return v;
}

/* One object of 1024 pages at GPA 0 behind a router retrying for 100 ms of
 * `clock`, with `efd` as its wait fd (signalled by the object). */
typedef struct vm {
    guestmem_memory* mem;
    guestmem_gpa_map* map;
    guestmem_exit_router* router;
    int efd;
    uint64_t clock;
    lines log;
} vm;

static int vm_open(vm* v, uint32_t policy) {
    guestmem_exit_router_config cfg;
    guestmem_router_retry_options ro;
    guestmem_error err = new_error();
    memset(v, 0, sizeof *v);
    memset(&cfg, 0, sizeof cfg);
    memset(&ro, 0, sizeof ro);
    v->mem = new_simulated(1024, GUESTMEM_SHARED);
    v->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    v->clock = 1000 * MS;
    cfg.size = sizeof cfg;
    cfg.log = log_line;
    cfg.log_ctx = &v->log;
    ro.size = sizeof ro;
    ro.policy = policy;
    ro.retry_limit_ns = 100 * MS;
    ro.wait_fd = v->efd;
    ro.now_ns = test_clock;
    ro.now_ctx = &v->clock;
    if (v->efd < 0 || guestmem_gpa_map_create(&v->map, &err) != GUESTMEM_OK ||
        guestmem_gpa_map_add_slot(v->map, 0, 0, 1024, v->mem, 0, &err) != GUESTMEM_OK ||
        guestmem_allocate(v->mem, 0, 1024, &err) != GUESTMEM_OK ||
        guestmem_set_unblock_eventfd(v->mem, v->efd, &err) != GUESTMEM_OK ||
        guestmem_exit_router_create_with_retry(v->map, &cfg, &ro, &v->router, &err) != GUESTMEM_OK) {
        fprintf(stderr, "vm_open: %s\n", err.message);
        return 0;
    }
    return 1;
}

static void vm_close(vm* v) {
    guestmem_exit_router_destroy(v->router);
    guestmem_gpa_map_destroy(v->map);
    guestmem_destroy(v->mem);
    close(v->efd);
}

/* 1 if the eventfd was signalled since the last drain (and drain it). */
static int drain(int efd) {
    uint64_t n = 0;
    return read(efd, &n, sizeof n) == (ssize_t)sizeof n && n > 0;
}

static struct kvm_run map_gpa_range(uint64_t gpa, uint64_t npages, uint64_t attrs) {
    struct kvm_run run;
    memset(&run, 0, sizeof run);
    run.exit_reason = KVM_EXIT_HYPERCALL;
    run.hypercall.nr = 12; /* KVM_HC_MAP_GPA_RANGE */
    run.hypercall.args[0] = gpa;
    run.hypercall.args[1] = npages;
    run.hypercall.args[2] = attrs;
    run.hypercall.longmode = 1;
    run.hypercall.ret = 99;
    return run;
}

#define ENCRYPTED (1u << 4)
#define MEMORY_FAULT_EXIT 39 /* KVM_EXIT_MEMORY_FAULT */
#define PRIVATE (1u << 3)     /* KVM_MEMORY_EXIT_FLAG_PRIVATE */

static void a_pinned_page_is_retry_later_with_the_wait_fd_until_the_unpin_signals_it(void) {
    vm v;
    guestmem_error err = new_error();
    guestmem_exit_outcome o = new_outcome();
    guestmem_vcpu_retry cpu = new_vcpu();
    struct kvm_run run = map_gpa_range(GPA(0x90), 2, ENCRYPTED);
    uint32_t share = 9, policy = 9;
    CHECK(vm_open(&v, GUESTMEM_VMM_RETRIES));
    CHECK_CODE(guestmem_exit_router_retry_policy(v.router, &policy, &err), GUESTMEM_OK, err);
    CHECK(policy == GUESTMEM_VMM_RETRIES);
    CHECK_CODE(guestmem_pin(v.mem, 0x90, 0x91, GUESTMEM_HOST, &err), GUESTMEM_OK, err);
    (void)drain(v.efd);
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &run, &cpu, &o, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RETRY_LATER && o.wait_fd == v.efd && o.hypercall_ret == 0);
    CHECK(run.hypercall.ret == 99); /* the exit is not completed */
    CHECK(cpu.pending == 1 && cpu.attempts == 1 && cpu.since_ns == 1000 * MS && cpu.exit_reason == KVM_EXIT_HYPERCALL);
    CHECK(cpu.args[0] == GPA(0x90) && cpu.args[1] == 2 && cpu.args[2] == ENCRYPTED);
    CHECK(!drain(v.efd));
    /* still pinned a little later: retry_later again, same clock */
    v.clock += 10 * MS;
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &run, &cpu, &o, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RETRY_LATER && cpu.attempts == 2 && cpu.since_ns == 1000 * MS);
    /* the unpin signals the wait fd; the re-entered exit succeeds */
    CHECK_CODE(guestmem_unpin(v.mem, 0x90, 0x91, &err), GUESTMEM_OK, err);
    CHECK(drain(v.efd));
    o = new_outcome();
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &run, &cpu, &o, &err), GUESTMEM_OK, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RESUME && o.wait_fd == -1 && run.hypercall.ret == 0);
    CHECK(cpu.pending == 0 && cpu.attempts == 0);
    CHECK_CODE(guestmem_shareability_at(v.mem, 0x91, &share, &err), GUESTMEM_OK, err);
    CHECK(share == GUESTMEM_GUEST_ONLY);
    /* set -1: the object signals nothing any more */
    (void)drain(v.efd);
    CHECK_CODE(guestmem_set_unblock_eventfd(v.mem, -1, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_convert(v.mem, 0, 4, GUESTMEM_GUEST_ONLY, NULL, &err), GUESTMEM_OK, err);
    CHECK(!drain(v.efd));
    vm_close(&v);
}

static void after_the_retry_limit_the_guest_gets_einval_and_a_memory_fault_fails(void) {
    vm v;
    guestmem_error err = new_error();
    guestmem_exit_outcome o = new_outcome();
    guestmem_vcpu_retry cpu = new_vcpu();
    struct kvm_run run = map_gpa_range(GPA(0x90), 1, ENCRYPTED);
    uint64_t fault[3];
    CHECK(vm_open(&v, GUESTMEM_VMM_RETRIES));
    CHECK_CODE(guestmem_pin(v.mem, 0x90, 0x91, GUESTMEM_HOST, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &run, &cpu, &o, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RETRY_LATER);
    v.clock += 99 * MS;
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &run, &cpu, &o, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RETRY_LATER);
    v.clock += 1 * MS;
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &run, &cpu, &o, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RESUME && o.hypercall_ret == EINVAL && run.hypercall.ret == EINVAL);
    CHECK(cpu.pending == 0 && strstr(v.log.last, "gave up retrying") != NULL);
    /* a private memory fault over the pin: retried, then failed */
    CHECK_CODE(guestmem_exit_router_memory_fault(v.router, GPA(0x90), GPA(1), PRIVATE, &o, &err),
               GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_FAILED); /* no retry state: no policy */
    memset(&run, 0, sizeof run);
    run.exit_reason = MEMORY_FAULT_EXIT;
    fault[0] = PRIVATE;
    fault[1] = GPA(0x90);
    fault[2] = GPA(1);
    memcpy(run.padding, fault, sizeof fault); /* flags, gpa, size where the kernel writes them */
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &run, &cpu, &o, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RETRY_LATER && cpu.exit_reason == MEMORY_FAULT_EXIT);
    v.clock += 100 * MS;
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &run, &cpu, &o, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_FAILED && cpu.pending == 0);
    vm_close(&v);
}

static void a_different_request_restarts_the_clock_and_bare_requests_retry_too(void) {
    vm v;
    guestmem_error err = new_error();
    guestmem_exit_outcome o = new_outcome();
    guestmem_vcpu_retry cpu = new_vcpu();
    struct kvm_run first = map_gpa_range(GPA(0x90), 1, ENCRYPTED), second = map_gpa_range(GPA(0x90), 2, ENCRYPTED);
    CHECK(vm_open(&v, GUESTMEM_VMM_RETRIES));
    CHECK_CODE(guestmem_pin(v.mem, 0x90, 0x91, GUESTMEM_HOST, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &first, &cpu, &o, &err), GUESTMEM_ERR_BUSY, err);
    v.clock += 90 * MS;
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &second, &cpu, &o, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RETRY_LATER && cpu.since_ns == v.clock && cpu.attempts == 1);
    v.clock += 90 * MS;
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &second, &cpu, &o, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RETRY_LATER);
    /* a bare request with its own state: retry_later, nothing for the guest yet */
    cpu = new_vcpu();
    CHECK_CODE(guestmem_exit_router_map_gpa_range_retry(v.router, GPA(0x90), 1, ENCRYPTED, &cpu, &o, &err),
               GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RETRY_LATER && o.hypercall_ret == 0 && o.wait_fd == v.efd);
    CHECK(cpu.pending == 1 && cpu.exit_reason == 0);
    /* a lasting error forgets the pending request */
    CHECK_CODE(guestmem_exit_router_map_gpa_range_retry(v.router, 5, 1, 0, &cpu, &o, &err), GUESTMEM_ERR_INVALID_RANGE,
               err);
    CHECK(o.disposition == GUESTMEM_EXIT_RESUME && o.hypercall_ret == EINVAL && cpu.pending == 0);
    vm_close(&v);
}

static void guest_retries_and_the_abi_0_2_create_give_the_guest_eagain(void) {
    vm v;
    guestmem_error err = new_error();
    guestmem_exit_outcome o = new_outcome();
    guestmem_vcpu_retry cpu = new_vcpu();
    guestmem_exit_router* old = NULL;
    guestmem_exit_router* dflt = NULL;
    struct kvm_run run = map_gpa_range(GPA(0x90), 1, ENCRYPTED);
    uint32_t policy = 9;
    CHECK(vm_open(&v, GUESTMEM_GUEST_RETRIES));
    CHECK_CODE(guestmem_pin(v.mem, 0x90, 0x91, GUESTMEM_HOST, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &run, &cpu, &o, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RESUME && run.hypercall.ret == EAGAIN && o.wait_fd == -1 && cpu.pending == 0);
    CHECK_CODE(guestmem_exit_router_create(v.map, NULL, &old, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_exit_router_retry_policy(old, &policy, &err), GUESTMEM_OK, err);
    CHECK(policy == GUESTMEM_GUEST_RETRIES);
    run = map_gpa_range(GPA(0x90), 1, ENCRYPTED);
    CHECK_CODE(guestmem_exit_router_handle(old, &run, &o, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RESUME && run.hypercall.ret == EAGAIN);
    /* create_with_retry with NULL options: the C++ default, vmm_retries;
       handle() keeps this thread's state */
    CHECK_CODE(guestmem_exit_router_create_with_retry(v.map, NULL, NULL, &dflt, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_exit_router_retry_policy(dflt, &policy, &err), GUESTMEM_OK, err);
    CHECK(policy == GUESTMEM_VMM_RETRIES);
    run = map_gpa_range(GPA(0x90), 1, ENCRYPTED);
    CHECK_CODE(guestmem_exit_router_handle(dflt, &run, &o, &err), GUESTMEM_ERR_BUSY, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RETRY_LATER && o.wait_fd == -1 && run.hypercall.ret == 99);
    guestmem_exit_router_destroy(dflt);
    guestmem_exit_router_destroy(old);
    vm_close(&v);
}

static void retry_calls_refuse_bad_input(void) {
    vm v;
    guestmem_error err = new_error();
    guestmem_exit_outcome o = new_outcome();
    guestmem_vcpu_retry cpu = new_vcpu();
    guestmem_router_retry_options ro;
    guestmem_exit_router* r = NULL;
    struct kvm_run run = map_gpa_range(GPA(0x90), 1, ENCRYPTED);
    unsigned char big[sizeof(guestmem_router_retry_options) + 8];
    uint32_t policy = 0;
    CHECK(vm_open(&v, GUESTMEM_VMM_RETRIES));
    /* the vCPU state */
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &run, NULL, &o, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(o.disposition == GUESTMEM_EXIT_FAILED);
    cpu.size = 8;
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &run, &cpu, &o, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    cpu = new_vcpu();
    cpu.pending = 2;
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &run, &cpu, &o, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    cpu = new_vcpu();
    cpu.reserved[6] = 1;
    CHECK_CODE(guestmem_exit_router_map_gpa_range_retry(v.router, GPA(0x90), 1, 0, &cpu, &o, &err),
               GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(run.hypercall.ret == 99);
    cpu = new_vcpu();
    CHECK_CODE(guestmem_exit_router_handle_retry(NULL, &run, &cpu, &o, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, NULL, &cpu, &o, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_exit_router_handle_retry(v.router, &run, &cpu, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    /* an ABI 0.2 outcome (no wait_fd) is still served; a shorter one is not */
    o = new_outcome();
    o.size = 16;
    o.wait_fd = 77;
    CHECK_CODE(guestmem_exit_router_map_gpa_range(v.router, GPA(8), 1, 0, &o, &err), GUESTMEM_OK, err);
    CHECK(o.disposition == GUESTMEM_EXIT_RESUME && o.wait_fd == 77);
    o.size = 8;
    CHECK_CODE(guestmem_exit_router_map_gpa_range(v.router, GPA(8), 1, 0, &o, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    /* the retry options */
    memset(&ro, 0, sizeof ro);
    ro.size = 8;
    ro.wait_fd = -1;
    CHECK_CODE(guestmem_exit_router_create_with_retry(v.map, NULL, &ro, &r, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(r == NULL);
    ro.size = sizeof ro;
    ro.policy = 2;
    CHECK_CODE(guestmem_exit_router_create_with_retry(v.map, NULL, &ro, &r, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    ro.policy = GUESTMEM_GUEST_RETRIES;
    ro.wait_fd = -2;
    CHECK_CODE(guestmem_exit_router_create_with_retry(v.map, NULL, &ro, &r, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    ro.wait_fd = -1;
    ro.reserved0 = 1;
    CHECK_CODE(guestmem_exit_router_create_with_retry(v.map, NULL, &ro, &r, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    ro.reserved0 = 0;
    memset(big, 0, sizeof big);
    memcpy(big, &ro, sizeof ro);
    big[sizeof ro + 3] = 1;
    ((guestmem_router_retry_options*)(void*)big)->size = sizeof big;
    CHECK_CODE(guestmem_exit_router_create_with_retry(v.map, NULL, (const guestmem_router_retry_options*)(void*)big, &r,
                                                      &err),
               GUESTMEM_ERR_NOT_SUPPORTED, err);
    CHECK_CODE(guestmem_exit_router_create_with_retry(NULL, NULL, &ro, &r, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_exit_router_create_with_retry(v.map, NULL, &ro, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(r == NULL);
    CHECK_CODE(guestmem_exit_router_retry_policy(NULL, &policy, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_exit_router_retry_policy(v.router, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    /* the unblock eventfd */
    CHECK_CODE(guestmem_set_unblock_eventfd(NULL, v.efd, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_set_unblock_eventfd(v.mem, -2, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    vm_close(&v);
}

int main(void) {
    RUN(a_pinned_page_is_retry_later_with_the_wait_fd_until_the_unpin_signals_it);
    RUN(after_the_retry_limit_the_guest_gets_einval_and_a_memory_fault_fails);
    RUN(a_different_request_restarts_the_clock_and_bare_requests_retry_too);
    RUN(guest_retries_and_the_abi_0_2_create_give_the_guest_eagain);
    RUN(retry_calls_refuse_bad_input);
    return C_TEST_RESULT();
}
