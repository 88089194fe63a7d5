// guestmem/linux/kvm_uapi.hpp — the few KVM guest_memfd definitions that
// Debian 12's linux-libc-dev (6.1) lacks, with the kernel's own names and
// values (include/uapi/linux/kvm.h, Linux 6.8+ for guest_memfd and
// KVM_SET_USER_MEMORY_REGION2, 6.18 for the mmap/init-shared flags).
//
// Every definition is guarded, so newer system headers win; the structs are
// guarded on their ioctl numbers (a header that has the ioctl has the
// struct). Linux only.
#pragma once

#if !defined(__linux__)
#error "guestmem/linux/kvm_uapi.hpp is Linux-only"
#endif

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

// ---- capabilities (KVM_CHECK_EXTENSION) -----------------------------------
#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_CAP_MEMORY_ATTRIBUTES
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#endif
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD 234
#endif
#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES 235
#endif
/// Returns the GUEST_MEMFD_FLAG_* mask a VM accepts (Linux 6.18).
#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
#define KVM_CAP_GUEST_MEMFD_FLAGS 244
#endif

// ---- memslots backed by a guest_memfd -------------------------------------
#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD (1UL << 2)
#endif

#ifndef KVM_SET_USER_MEMORY_REGION2
/// Argument of KVM_SET_USER_MEMORY_REGION2: KVM_SET_USER_MEMORY_REGION's
/// fields plus the guest_memfd (fd, offset) that backs the slot.
struct kvm_userspace_memory_region2 {
    __u32 slot;
    __u32 flags;
    __u64 guest_phys_addr;
    __u64 memory_size;
    __u64 userspace_addr;
    __u64 guest_memfd_offset;
    __u32 guest_memfd;
    __u32 pad1;
    __u64 pad2[14];
};
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#endif

// ---- guest_memfd creation -------------------------------------------------
#ifndef KVM_CREATE_GUEST_MEMFD
/// Argument of KVM_CREATE_GUEST_MEMFD (a VM ioctl returning the new fd).
struct kvm_create_guest_memfd {
    __u64 size;
    __u64 flags;
    __u64 reserved[6];
};
#define KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)
#endif
/// The host may mmap() the guest_memfd.
#ifndef GUEST_MEMFD_FLAG_MMAP
#define GUEST_MEMFD_FLAG_MMAP (1ULL << 0)
#endif
/// Memory starts out shared (host-faultable) rather than private.
#ifndef GUEST_MEMFD_FLAG_INIT_SHARED
#define GUEST_MEMFD_FLAG_INIT_SHARED (1ULL << 1)
#endif

// ---- memory attributes (not enforced for a default VM; listed for probes) --
#ifndef KVM_SET_MEMORY_ATTRIBUTES
struct kvm_memory_attributes {
    __u64 address;
    __u64 size;
    __u64 attributes;
    __u64 flags;
};
#define KVM_SET_MEMORY_ATTRIBUTES _IOW(KVMIO, 0xd2, struct kvm_memory_attributes)
#endif
#ifndef KVM_MEMORY_ATTRIBUTE_PRIVATE
#define KVM_MEMORY_ATTRIBUTE_PRIVATE (1ULL << 3)
#endif

static_assert(sizeof(kvm_userspace_memory_region2) == 4 + 4 + 8 * 4 + 4 + 4 + 8 * 14,
              "kvm_userspace_memory_region2 layout");
static_assert(sizeof(kvm_create_guest_memfd) == 64, "kvm_create_guest_memfd layout");
