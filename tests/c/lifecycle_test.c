/* tests/c/lifecycle_test.c — the C ABI's library functions, creation over
 * each allocator, what every bad configuration gets, and the error and
 * config structs' size rules (how the ABI grows without breaking). */
#define _POSIX_C_SOURCE 200809L /* open's O_CLOEXEC under -std=c99 */
#include "c_test.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

static guestmem_config config(uint32_t allocator, uint64_t pages) {
    guestmem_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.allocator = allocator;
    cfg.pages = pages;
    cfg.initial = GUESTMEM_GUEST_ONLY;
    cfg.max_order = GUESTMEM_ORDER_2M;
    return cfg;
}

static void the_library_reports_the_abi_version_of_this_header(void) {
    CHECK(guestmem_abi_version() == GUESTMEM_ABI_VERSION);
    CHECK(guestmem_abi_version() >> 16 == GUESTMEM_ABI_MAJOR);
}

static void every_error_code_has_a_name_and_unknown_codes_say_so(void) {
    CHECK(strcmp(guestmem_errc_name(GUESTMEM_OK), "ok") == 0);
    CHECK(strcmp(guestmem_errc_name(GUESTMEM_ERR_INVALID_RANGE), "invalid_range") == 0);
    CHECK(strcmp(guestmem_errc_name(GUESTMEM_ERR_BUSY), "busy") == 0);
    CHECK(strcmp(guestmem_errc_name(GUESTMEM_ERR_RETRY), "retry") == 0);
    CHECK(strcmp(guestmem_errc_name(GUESTMEM_ERR_WOULD_DEADLOCK), "would_deadlock") == 0);
    CHECK(strcmp(guestmem_errc_name(14), "unknown guestmem error") == 0);
    CHECK(strcmp(guestmem_errc_name(-1), "unknown guestmem error") == 0);
}

static void a_simulated_object_is_created_described_and_destroyed(void) {
    guestmem_config cfg = config(GUESTMEM_ALLOC_SIMULATED, 4096);
    guestmem_memory* mem = NULL;
    guestmem_error err = new_error();
    guestmem_info info;
    CHECK_CODE(guestmem_create(&cfg, &mem, &err), GUESTMEM_OK, err);
    CHECK(mem != NULL && err.code == 0 && err.message[0] == '\0');
    info.size = sizeof info;
    CHECK_CODE(guestmem_get_info(mem, &info, &err), GUESTMEM_OK, err);
    CHECK(info.allocator == GUESTMEM_ALLOC_SIMULATED && info.pages == 4096 && info.max_order == GUESTMEM_ORDER_2M);
    CHECK(info.fd == -1 && info.data == NULL && info.bytes == 0);
    guestmem_destroy(mem);
}

static void a_simulated_object_runs_out_of_its_capacity(void) {
    guestmem_config cfg = config(GUESTMEM_ALLOC_SIMULATED, 2048);
    guestmem_memory* mem = NULL;
    guestmem_error err = new_error();
    cfg.simulated_capacity = 1024;
    CHECK_CODE(guestmem_create(&cfg, &mem, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_allocate(mem, 0, 1024, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_allocate(mem, 1024, 1536, &err), GUESTMEM_ERR_OUT_OF_MEMORY, err);
    CHECK(err.page == 1024);
    guestmem_destroy(mem);
}

static void a_memfd_object_hands_out_its_fd_and_mapping(void) {
    guestmem_config cfg = config(GUESTMEM_ALLOC_MEMFD, 1024);
    guestmem_memory* mem = NULL;
    guestmem_error err = new_error();
    guestmem_info info;
    guestmem_convert_options zero;
    unsigned char* bytes;
    CHECK_CODE(guestmem_create(&cfg, &mem, &err), GUESTMEM_OK, err);
    info.size = sizeof info;
    CHECK_CODE(guestmem_get_info(mem, &info, &err), GUESTMEM_OK, err);
    CHECK(info.allocator == GUESTMEM_ALLOC_MEMFD && info.fd >= 0 && info.data != NULL && info.bytes == 1024 * 4096);
    CHECK_CODE(guestmem_allocate(mem, 0, 1024, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_convert(mem, 0, 1, GUESTMEM_SHARED, NULL, &err), GUESTMEM_OK, err);
    bytes = (unsigned char*)info.data;
    bytes[100] = 0xab;
    memset(&zero, 0, sizeof zero);
    zero.size = sizeof zero;
    zero.content = GUESTMEM_CONTENT_ZERO;
    CHECK_CODE(guestmem_convert(mem, 0, 1, GUESTMEM_GUEST_ONLY, &zero, &err), GUESTMEM_OK, err);
    CHECK(bytes[100] == 0); /* zeroed through the allocator */
    guestmem_destroy(mem);
}

/* Each allocator's object has its own fault path (c_abi::fault_of<A>): the
 * memfd one answers, refuses and checks its arguments like the simulated one. */
static void a_memfd_object_answers_and_refuses_faults(void) {
    guestmem_config cfg = config(GUESTMEM_ALLOC_MEMFD, 1024);
    guestmem_memory* mem = NULL;
    guestmem_error err = new_error();
    guestmem_fault_result f;
    CHECK_CODE(guestmem_create(&cfg, &mem, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_allocate(mem, 0, 1024, &err), GUESTMEM_OK, err);
    CHECK_CODE(guestmem_convert(mem, 512, 513, GUESTMEM_SHARED, NULL, &err), GUESTMEM_OK, err);
    memset(&f, 0xff, sizeof f);
    f.size = sizeof f;
    err = new_error();
    err.code = GUESTMEM_ERR_BUSY; /* a success must overwrite it */
    CHECK_CODE(guestmem_fault(mem, 512, GUESTMEM_SHARED, GUESTMEM_HOST, &f, &err), GUESTMEM_OK, err);
    CHECK(err.code == GUESTMEM_OK && err.page == GUESTMEM_NO_PAGE && err.message[0] == '\0');
    CHECK(f.order == GUESTMEM_ORDER_4K && f.folio_first == 512 && f.frame == f.folio_frame);
    CHECK(f.mappability == GUESTMEM_MAPPABLE_ALL && f.reserved[0] == 0 && f.reserved[1] == 0);
    CHECK_CODE(guestmem_fault(mem, 513, GUESTMEM_SHARED, GUESTMEM_HOST, &f, &err), GUESTMEM_ERR_PERMISSION_DENIED, err);
    CHECK(err.page == 513 && err.message[0] != '\0');
    CHECK_CODE(guestmem_fault(mem, 513, GUESTMEM_GUEST_ONLY, GUESTMEM_HYPERVISOR, &f, &err), GUESTMEM_OK, err);
    CHECK(f.folio_first <= 513 && f.frame == f.folio_frame + (513 - f.folio_first) && f.mappability == GUESTMEM_MAPPABLE_GUEST);
    CHECK_CODE(guestmem_fault(mem, 1024, GUESTMEM_SHARED, GUESTMEM_HOST, &f, &err), GUESTMEM_ERR_INVALID_RANGE, err);
    CHECK_CODE(guestmem_fault(mem, 512, GUESTMEM_SHARED, 4, &f, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_fault(mem, 512, 0x100, GUESTMEM_HOST, &f, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK_CODE(guestmem_fault(mem, 512, GUESTMEM_SHARED, GUESTMEM_HOST, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    guestmem_destroy(mem);
}

static void a_memfd_object_refuses_1g_folios(void) {
    guestmem_config cfg = config(GUESTMEM_ALLOC_MEMFD, 1024);
    guestmem_memory* mem = (guestmem_memory*)&cfg; /* must be overwritten with NULL */
    guestmem_error err = new_error();
    cfg.max_order = GUESTMEM_ORDER_1G;
    CHECK_CODE(guestmem_create(&cfg, &mem, &err), GUESTMEM_ERR_NOT_SUPPORTED, err);
    CHECK(mem == NULL && strstr(err.message, "order") != NULL);
}

static void a_guest_memfd_object_needs_a_kvm_vm(void) {
    guestmem_config cfg = config(GUESTMEM_ALLOC_GUEST_MEMFD, 512);
    guestmem_memory* mem = NULL;
    guestmem_error err = new_error();
    int kvm, vm;
    cfg.vm_fd = -1;
    CHECK_CODE(guestmem_create(&cfg, &mem, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(strstr(err.message, "vm_fd") != NULL);
    cfg.vm_fd = open("/dev/null", O_RDONLY); /* not a VM: KVM_CHECK_EXTENSION fails */
    CHECK(cfg.vm_fd >= 0);
    CHECK(guestmem_create(&cfg, &mem, &err) != GUESTMEM_OK && mem == NULL && err.message[0] != '\0');
    close(cfg.vm_fd);
    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        printf("     (no /dev/kvm: the guest_memfd object itself is not created)\n");
        return;
    }
    vm = ioctl(kvm, 0xAE01 /* KVM_CREATE_VM */, 0);
    if (vm >= 0) {
        cfg.vm_fd = vm;
        if (guestmem_create(&cfg, &mem, &err) == GUESTMEM_OK) {
            guestmem_info info;
            info.size = sizeof info;
            CHECK_CODE(guestmem_get_info(mem, &info, &err), GUESTMEM_OK, err);
            CHECK(info.allocator == GUESTMEM_ALLOC_GUEST_MEMFD && info.fd >= 0 && info.bytes == 512 * 4096);
            CHECK_CODE(guestmem_allocate(mem, 0, 512, &err), GUESTMEM_OK, err);
            guestmem_destroy(mem);
        } else {
            printf("     (this kernel has no usable guest_memfd: %s)\n", err.message);
            CHECK(err.code == GUESTMEM_ERR_NOT_SUPPORTED || err.code == GUESTMEM_ERR_INVALID_ARGUMENT);
        }
        close(vm);
    }
    close(kvm);
}

/* One bad configuration: what to change, the code it gets, a word of its message. */
typedef struct bad_config {
    const char* what;
    void (*spoil)(guestmem_config*);
    int32_t code;
    const char* says;
} bad_config;

static void zero_pages(guestmem_config* c) { c->pages = 0; }
static void no_such_allocator(guestmem_config* c) { c->allocator = 3; }
static void no_such_shareability(guestmem_config* c) { c->initial = 2; }
static void no_such_order(guestmem_config* c) { c->max_order = 10; }
static void a_size_too_small(guestmem_config* c) { c->size = 8; }
static void reserved_field_set(guestmem_config* c) { c->reserved[3] = 1; }
static void reserved0_set(guestmem_config* c) { c->reserved0 = 1; }
static void memfd_near_2_64(guestmem_config* c) { c->allocator = GUESTMEM_ALLOC_MEMFD; c->pages = UINT64_MAX; }
static void guest_memfd_near_2_64(guestmem_config* c) {
    c->allocator = GUESTMEM_ALLOC_GUEST_MEMFD;
    c->pages = UINT64_MAX / 4096 + 1; /* pages * 4096 would wrap to 0 */
}

static void every_bad_configuration_is_refused_with_a_clear_error(void) {
    static const bad_config table[] = {
        {"0 pages", zero_pages, GUESTMEM_ERR_INVALID_ARGUMENT, "0 pages"},
        {"allocator 3", no_such_allocator, GUESTMEM_ERR_INVALID_ARGUMENT, "allocator 3"},
        {"initial 2", no_such_shareability, GUESTMEM_ERR_INVALID_ARGUMENT, "shareability 2"},
        {"max_order 10", no_such_order, GUESTMEM_ERR_INVALID_ARGUMENT, "order 10"},
        {"size 8", a_size_too_small, GUESTMEM_ERR_INVALID_ARGUMENT, "size is 8"},
        {"reserved[3] = 1", reserved_field_set, GUESTMEM_ERR_INVALID_ARGUMENT, "reserved"},
        {"reserved0 = 1", reserved0_set, GUESTMEM_ERR_INVALID_ARGUMENT, "reserved"},
        {"memfd of 2^64 - 1 pages", memfd_near_2_64, GUESTMEM_ERR_INVALID_ARGUMENT, "largest file"},
        {"guest_memfd of 2^52 pages", guest_memfd_near_2_64, GUESTMEM_ERR_INVALID_ARGUMENT, "largest file"},
    };
    size_t i;
    for (i = 0; i < sizeof table / sizeof table[0]; ++i) {
        guestmem_config cfg = config(GUESTMEM_ALLOC_SIMULATED, 64);
        guestmem_memory* mem = NULL;
        guestmem_error err = new_error();
        table[i].spoil(&cfg);
        if (guestmem_create(&cfg, &mem, &err) != table[i].code || mem != NULL || err.code != table[i].code ||
            strstr(err.message, table[i].says) == NULL) {
            fprintf(stderr, "config with %s: got %s (%s)\n", table[i].what, guestmem_errc_name(err.code), err.message);
            CHECK(0);
        }
    }
}

static void create_refuses_null_arguments(void) {
    guestmem_config cfg = config(GUESTMEM_ALLOC_SIMULATED, 64);
    guestmem_memory* mem = NULL;
    guestmem_error err = new_error();
    CHECK_CODE(guestmem_create(NULL, &mem, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(mem == NULL && strstr(err.message, "cfg is NULL") != NULL);
    CHECK_CODE(guestmem_create(&cfg, NULL, &err), GUESTMEM_ERR_INVALID_ARGUMENT, err);
    CHECK(strstr(err.message, "out") != NULL);
    CHECK(guestmem_create(&cfg, NULL, NULL) == GUESTMEM_ERR_INVALID_ARGUMENT); /* err may be NULL */
}

/* A config as a newer header would make it: this one plus a field. */
typedef struct newer_config {
    guestmem_config v1;
    uint64_t future_field;
} newer_config;

static void a_newer_callers_config_works_unless_it_sets_a_field_this_library_lacks(void) {
    newer_config cfg;
    guestmem_memory* mem = NULL;
    guestmem_error err = new_error();
    memset(&cfg, 0, sizeof cfg);
    cfg.v1 = config(GUESTMEM_ALLOC_SIMULATED, 64);
    cfg.v1.size = sizeof cfg;
    CHECK_CODE(guestmem_create(&cfg.v1, &mem, &err), GUESTMEM_OK, err); /* the new field left 0: as before */
    guestmem_destroy(mem);
    cfg.future_field = 1;
    CHECK_CODE(guestmem_create(&cfg.v1, &mem, &err), GUESTMEM_ERR_NOT_SUPPORTED, err);
    CHECK(mem == NULL && strstr(err.message, "newer ABI") != NULL);
}

static void a_short_error_struct_gets_a_truncated_message_and_a_tiny_one_nothing(void) {
    guestmem_config cfg = config(GUESTMEM_ALLOC_SIMULATED, 0);
    guestmem_memory* mem = NULL;
    unsigned char raw[sizeof(guestmem_error)];
    guestmem_error* err = (guestmem_error*)raw;
    size_t head = offsetof(guestmem_error, message);
    memset(raw, 0x5a, sizeof raw);
    err->size = (uint32_t)(head + 8);
    CHECK(guestmem_create(&cfg, &mem, err) == GUESTMEM_ERR_INVALID_ARGUMENT);
    CHECK(err->code == GUESTMEM_ERR_INVALID_ARGUMENT && err->page == GUESTMEM_NO_PAGE);
    CHECK(strlen(err->message) == 7 && raw[head + 8] == 0x5a); /* nothing written past size */
    memset(raw, 0x5a, sizeof raw);
    err->size = 4;
    CHECK(guestmem_create(&cfg, &mem, err) == GUESTMEM_ERR_INVALID_ARGUMENT);
    CHECK(raw[4] == 0x5a && raw[sizeof raw - 1] == 0x5a);
}

int main(void) {
    RUN(the_library_reports_the_abi_version_of_this_header);
    RUN(every_error_code_has_a_name_and_unknown_codes_say_so);
    RUN(a_simulated_object_is_created_described_and_destroyed);
    RUN(a_simulated_object_runs_out_of_its_capacity);
    RUN(a_memfd_object_hands_out_its_fd_and_mapping);
    RUN(a_memfd_object_answers_and_refuses_faults);
    RUN(a_memfd_object_refuses_1g_folios);
    RUN(a_guest_memfd_object_needs_a_kvm_vm);
    RUN(every_bad_configuration_is_refused_with_a_clear_error);
    RUN(create_refuses_null_arguments);
    RUN(a_newer_callers_config_works_unless_it_sets_a_field_this_library_lacks);
    RUN(a_short_error_struct_gets_a_truncated_message_and_a_tiny_one_nothing);
    return C_TEST_RESULT();
}
