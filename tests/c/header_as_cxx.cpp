// The C header compiled as C++ (-Wall -Wextra -Wpedantic -Werror): its
// declarations get C linkage, and a C++ caller sees the same ABI.
#include <guestmem/c/guestmem.h>

#include <type_traits>

static_assert(std::is_standard_layout_v<guestmem_error> && sizeof(guestmem_error) == 184);
static_assert(std::is_standard_layout_v<guestmem_config> && sizeof(guestmem_config) == 80);
static_assert(sizeof(guestmem_convert_options) == 16 && sizeof(guestmem_fault_result) == 32);
static_assert(sizeof(guestmem_invalidation) == 64 && sizeof(guestmem_stats) == 176);
static_assert(std::is_same_v<decltype(&guestmem_convert), int32_t (*)(guestmem_memory*, uint64_t, uint64_t, uint32_t,
                                                                     const guestmem_convert_options*, guestmem_error*)>);
