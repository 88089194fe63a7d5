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
#include <linux/kvm_para.h>
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

// ---- memory attributes of the VM (KVM_CAP_MEMORY_ATTRIBUTES) ---------------
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

// ---- memory attributes on the guest_memfd itself ------------------------
// From the guest_memfd in-place conversion series (v7, 2026; not merged in
// the kernels this project is tested on). Its capability number is not final
// across the series' versions, so guestmem probes for the ioctl by calling it
// (ENOTTY: absent) rather than by KVM_CHECK_EXTENSION.
#ifndef KVM_SET_MEMORY_ATTRIBUTES2
/// Argument of KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd fd: set the
/// attributes of a byte range of the file; on EAGAIN the kernel writes the
/// offset of the page with unexpected references to error_offset.
struct kvm_memory_attributes2 {
    __u64 offset;        ///< in: byte offset into the guest_memfd (page-aligned)
    __u64 size;          ///< in: size in bytes (page-aligned, non-zero)
    __u64 attributes;    ///< in: KVM_MEMORY_ATTRIBUTE_* bits to set
    __u64 flags;         ///< in: content mode, KVM_SET_MEMORY_ATTRIBUTES2_{ZERO,PRESERVE} or 0 (unspecified)
    __u64 error_offset;  ///< in: must be 0; out: on an error, the byte offset of the page it stopped at
    __u64 reserved[11];  ///< must be 0
};
/// guest_memfd ioctl: set the attributes of a range of the file.
#define KVM_SET_MEMORY_ATTRIBUTES2 _IOWR(KVMIO, 0xd2, struct kvm_memory_attributes2)
#endif

// Content modes of KVM_SET_MEMORY_ATTRIBUTES2 (the same series, v7: its
// uapi names and values; not final until merged). A kernel without them
// refuses any flag with EINVAL; one with them refuses a mode the VM type
// cannot honour with EOPNOTSUPP, and ZERO to private always.
#ifndef KVM_SET_MEMORY_ATTRIBUTES2_ZERO
/// Content mode: after the conversion, everyone allowed to read the pages reads zeros (to shared only).
#define KVM_SET_MEMORY_ATTRIBUTES2_ZERO (1ULL << 0)
#endif
#ifndef KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE
/// Content mode: the conversion keeps the pages' last written (unencrypted) contents.
#define KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE (1ULL << 1)
#endif

// ---- exits and hypercalls a conversion arrives through --------------------
#ifndef KVM_EXIT_MEMORY_FAULT
/// Exit reason: the guest accessed a page whose private/shared attribute does
/// not match the access (KVM_RUN fails with EFAULT or EHWPOISON and fills
/// kvm_run's memory_fault member; see guestmem::kvm_memory_fault_of).
#define KVM_EXIT_MEMORY_FAULT 39
#endif
#ifndef KVM_MEMORY_EXIT_FLAG_PRIVATE
/// memory_fault.flags: the guest accessed the range as private.
#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)
#endif
#ifndef KVM_EXIT_HYPERCALL_LONG_MODE
/// hypercall.flags: the guest was in 64-bit mode when it made the call.
#define KVM_EXIT_HYPERCALL_LONG_MODE (1ULL << 0)
#endif
#ifndef KVM_CAP_EXIT_HYPERCALL
/// Capability: the mask of hypercalls KVM can forward to userspace as
/// KVM_EXIT_HYPERCALL (enable with KVM_ENABLE_CAP, args[0] = the mask).
#define KVM_CAP_EXIT_HYPERCALL 201
#endif
#ifndef KVM_HC_MAP_GPA_RANGE
/// Hypercall: the guest converts (gpa, npages) to private or shared.
#define KVM_HC_MAP_GPA_RANGE 12
#endif
#ifndef KVM_MAP_GPA_RANGE_PAGE_SZ_4K
/// KVM_HC_MAP_GPA_RANGE attributes, bits 3:0: the page-size hint.
#define KVM_MAP_GPA_RANGE_PAGE_SZ_4K 0
#define KVM_MAP_GPA_RANGE_PAGE_SZ_2M (1 << 0)  ///< page-size hint: 2 MiB
#define KVM_MAP_GPA_RANGE_PAGE_SZ_1G (1 << 1)  ///< page-size hint: 1 GiB
#endif
#ifndef KVM_MAP_GPA_RANGE_ENCRYPTED
/// KVM_HC_MAP_GPA_RANGE attributes, bit 4: 1 = to private (encrypted), 0 = to shared.
#define KVM_MAP_GPA_RANGE_ENCRYPTED (1 << 4)
#define KVM_MAP_GPA_RANGE_DECRYPTED 0  ///< bit 4 clear: to shared (decrypted)
#endif

namespace guestmem {

/// kvm_run's memory_fault member (Linux 6.8+), which Debian 12's kvm.h
/// lacks: read from the exit union, where the kernel writes it.
struct kvm_memory_fault_exit {
    std::uint64_t flags;  ///< KVM_MEMORY_EXIT_FLAG_* (PRIVATE: the access was private)
    std::uint64_t gpa;    ///< guest physical address of the range (page-aligned)
    std::uint64_t size;   ///< size of the range in bytes
};

/// The memory_fault member of `run` (meaningful when exit_reason is
/// KVM_EXIT_MEMORY_FAULT).
[[nodiscard]] inline kvm_memory_fault_exit kvm_memory_fault_of(const kvm_run& run) noexcept {
    kvm_memory_fault_exit f{};
    static_assert(sizeof f <= sizeof run.padding, "the exit union holds memory_fault");
    __builtin_memcpy(&f, &run.padding, sizeof f);  // the union's members all start where padding does
    return f;
}

/// Store `f` where the kernel would (for tests that synthesize exits).
inline void kvm_set_memory_fault(kvm_run& run, const kvm_memory_fault_exit& f) noexcept {
    __builtin_memcpy(&run.padding, &f, sizeof f);
}

} // namespace guestmem

static_assert(sizeof(kvm_memory_attributes2) == 16 * 8, "kvm_memory_attributes2 layout");
static_assert(sizeof(kvm_userspace_memory_region2) == 4 + 4 + 8 * 4 + 4 + 4 + 8 * 14,
              "kvm_userspace_memory_region2 layout");
static_assert(sizeof(kvm_create_guest_memfd) == 64, "kvm_create_guest_memfd layout");
