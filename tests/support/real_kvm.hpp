// tests/support/real_kvm.hpp — a default KVM VM for the tests that need
// real KVM (test_linux, test_kvm), or the reason there is none, for the
// skip message.
#pragma once

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <guestmem/linux/kvm_uapi.hpp>
#include <guestmem/linux/system.hpp>

namespace guestmem::test_support {

/// A KVM VM (type 0), or why_not says why there is none.
struct test_vm {
    unique_fd kvm, vm;
    std::string why_not;
    test_vm() {
        kvm = unique_fd{::open("/dev/kvm", O_RDWR | O_CLOEXEC)};
        if (!kvm) {
            why_not = std::string("/dev/kvm unavailable: ") + std::strerror(errno);
            return;
        }
        vm = unique_fd{::ioctl(kvm.get(), KVM_CREATE_VM, 0)};
        if (!vm) why_not = std::string("KVM_CREATE_VM failed: ") + std::strerror(errno);
    }
    explicit operator bool() const { return bool(vm); }
};

} // namespace guestmem::test_support
