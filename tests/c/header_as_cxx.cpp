// The C header compiled as C++ (-Wall -Wextra -Wpedantic -Werror): its
// declarations get C linkage, and a C++ caller sees the same ABI.
#include <guestmem/c/guestmem.h>

#include <cstddef>
#include <type_traits>

static_assert(std::is_standard_layout_v<guestmem_error> && sizeof(guestmem_error) == 184);
static_assert(std::is_standard_layout_v<guestmem_config> && sizeof(guestmem_config) == 80);
static_assert(sizeof(guestmem_convert_options) == 16 && sizeof(guestmem_fault_result) == 32);
static_assert(sizeof(guestmem_invalidation) == 64 && sizeof(guestmem_stats) == 176);
static_assert(std::is_same_v<decltype(&guestmem_convert), int32_t (*)(guestmem_memory*, uint64_t, uint64_t, uint32_t,
                                                                     const guestmem_convert_options*, guestmem_error*)>);

// ABI 0.2: the consumer table grew at its end only (0.1 callers pass 48 bytes).
static_assert(offsetof(guestmem_consumer_ops, populate) == 48 && sizeof(guestmem_consumer_ops) == 56);
static_assert(sizeof(guestmem_access_policy) == 16 && sizeof(guestmem_storage_options) == 16);
static_assert(sizeof(guestmem_snapshot_header) == 56);
static_assert(sizeof(guestmem_gpa_slot) == 40);
static_assert(sizeof(guestmem_exit_router_config) == 24 && sizeof(guestmem_discard_config) == 32);
static_assert(sizeof(guestmem_kvm_attributes_stats) == 40 && sizeof(guestmem_discard_stats) == 48);
static_assert(sizeof(guestmem_owner) == 16);

// ABI 0.3: the exit outcome grew at its end only (0.2 callers pass 16 bytes);
// the retry options and the vCPU retry state are new.
static_assert(offsetof(guestmem_exit_outcome, wait_fd) == 16 && sizeof(guestmem_exit_outcome) == 24);
static_assert(sizeof(guestmem_router_retry_options) == 40 && sizeof(guestmem_vcpu_retry) == 56);
