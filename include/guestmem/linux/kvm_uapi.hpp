/// @file
/// The few KVM guest_memfd definitions that Debian 12's linux-libc-dev
/// (6.1) lacks, with the kernel's own names and values
/// (include/uapi/linux/kvm.h, Linux 6.8+ for guest_memfd and
/// KVM_SET_USER_MEMORY_REGION2, 6.18 for the mmap/init-shared flags).
///
/// Every definition is guarded, so newer system headers win; the structs are
/// guarded on their ioctl numbers (a header that has the ioctl has the
/// struct). Linux only. The reference documents the fallback definitions;
/// the kernel's documentation (Documentation/virt/kvm/api.rst) is the
/// authority on what they mean.
#pragma once

#if !defined(__linux__)
#error "guestmem/linux/kvm_uapi.hpp is Linux-only"
#endif

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

// ---- capabilities (KVM_CHECK_EXTENSION) -----------------------------------
#ifndef KVM_CAP_USER_MEMORY2
/// Capability: KVM_SET_USER_MEMORY_REGION2 is available.
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_CAP_MEMORY_ATTRIBUTES
/// Capability: returns the KVM_MEMORY_ATTRIBUTE_* mask the VM supports.
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#endif
#ifndef KVM_CAP_GUEST_MEMFD
/// Capability: KVM_CREATE_GUEST_MEMFD is available (non-zero) for this VM.
#define KVM_CAP_GUEST_MEMFD 234
#endif
#ifndef KVM_CAP_VM_TYPES
/// Capability: returns the mask of VM types KVM_CREATE_VM accepts.
#define KVM_CAP_VM_TYPES 235
#endif
#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
/// Capability: returns the GUEST_MEMFD_FLAG_* mask a VM accepts (Linux 6.18).
#define KVM_CAP_GUEST_MEMFD_FLAGS 244
#endif

// ---- memslots backed by a guest_memfd -------------------------------------
#ifndef KVM_MEM_GUEST_MEMFD
/// Memslot flag: the slot's private memory comes from a guest_memfd
/// (kvm_userspace_memory_region2::guest_memfd at guest_memfd_offset).
#define KVM_MEM_GUEST_MEMFD (1UL << 2)
#endif

#ifndef KVM_SET_USER_MEMORY_REGION2
/// Argument of KVM_SET_USER_MEMORY_REGION2: KVM_SET_USER_MEMORY_REGION's
/// fields plus the guest_memfd (fd, offset) that backs the slot.
struct kvm_userspace_memory_region2 {
    __u32 slot;                ///< slot id (address space in the high 16 bits)
    __u32 flags;               ///< KVM_MEM_* flags (KVM_MEM_GUEST_MEMFD here)
    __u64 guest_phys_addr;     ///< guest physical address of the slot's first byte
    __u64 memory_size;         ///< size in bytes; 0 deletes the slot
    __u64 userspace_addr;      ///< host virtual address KVM reads the slot through
    __u64 guest_memfd_offset;  ///< byte offset of the slot's first page in the guest_memfd
    __u32 guest_memfd;         ///< the guest_memfd's file descriptor
    __u32 pad1;                ///< must be 0
    __u64 pad2[14];            ///< must be 0
};
/// VM ioctl: create, move or delete a memslot (a kvm_userspace_memory_region2).
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#endif

// ---- guest_memfd creation -------------------------------------------------
#ifndef KVM_CREATE_GUEST_MEMFD
/// Argument of KVM_CREATE_GUEST_MEMFD (a VM ioctl returning the new fd).
struct kvm_create_guest_memfd {
    __u64 size;         ///< size in bytes (a multiple of the page size)
    __u64 flags;        ///< GUEST_MEMFD_FLAG_* bits
    __u64 reserved[6];  ///< must be 0
};
/// VM ioctl: create a guest_memfd (a kvm_create_guest_memfd); returns its fd.
#define KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)
#endif
#ifndef GUEST_MEMFD_FLAG_MMAP
/// guest_memfd flag: the host may mmap() the guest_memfd.
#define GUEST_MEMFD_FLAG_MMAP (1ULL << 0)
#endif
#ifndef GUEST_MEMFD_FLAG_INIT_SHARED
/// guest_memfd flag: memory starts out shared (host-faultable) rather than private.
#define GUEST_MEMFD_FLAG_INIT_SHARED (1ULL << 1)
#endif

// ---- memory attributes (not enforced for a default VM; listed for probes) --
#ifndef KVM_SET_MEMORY_ATTRIBUTES
/// Argument of KVM_SET_MEMORY_ATTRIBUTES: set the attributes of a guest
/// physical range.
struct kvm_memory_attributes {
    __u64 address;     ///< guest physical address of the range (page-aligned)
    __u64 size;        ///< size of the range in bytes (page-aligned)
    __u64 attributes;  ///< KVM_MEMORY_ATTRIBUTE_* bits to set (the others are cleared)
    __u64 flags;       ///< must be 0
};
/// VM ioctl: set memory attributes (a kvm_memory_attributes).
#define KVM_SET_MEMORY_ATTRIBUTES _IOW(KVMIO, 0xd2, struct kvm_memory_attributes)
#endif
#ifndef KVM_MEMORY_ATTRIBUTE_PRIVATE
/// Memory attribute: the range is private to the guest.
#define KVM_MEMORY_ATTRIBUTE_PRIVATE (1ULL << 3)
#endif

static_assert(sizeof(kvm_userspace_memory_region2) == 4 + 4 + 8 * 4 + 4 + 4 + 8 * 14,
              "kvm_userspace_memory_region2 layout");
static_assert(sizeof(kvm_create_guest_memfd) == 64, "kvm_create_guest_memfd layout");
