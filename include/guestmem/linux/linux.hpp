/// @file
/// The Linux parts in one include: the memfd and KVM guest_memfd allocator
/// policies, the host-mapping consumer that enforces shareability on a real
/// host view with mprotect, the KVM memslot helper, and the guest_memfd
/// uapi definitions they need. Linux only; not part of
/// `<guestmem/guestmem.hpp>`.
#pragma once

#include <guestmem/linux/fd_backing.hpp>
#include <guestmem/linux/guest_memfd_allocator.hpp>
#include <guestmem/linux/host_mapping_consumer.hpp>
#include <guestmem/linux/kvm_uapi.hpp>
#include <guestmem/linux/memfd_allocator.hpp>
#include <guestmem/linux/memslot.hpp>
#include <guestmem/linux/system.hpp>
