/// @file
/// A kvm_ioctl test double: records every call (fd, request and, for the
/// memory-attribute requests, the range and attributes asked for) and
/// answers from a script — "fail the n-th call with errno e", "fail
/// every call from the n-th on" (for EAGAIN on
/// KVM_SET_MEMORY_ATTRIBUTES2 it also writes the error offset the kernel
/// would), an answer for KVM_CHECK_EXTENSION, or passing through to a real
/// ioctl. Lets every kernel error at every position be tested without a
/// confidential-VM host.
///
/// Fixed capacity (64 recorded calls, the rest are counted, not kept); no
/// allocation. Not thread-safe: one test thread drives it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include <guestmem/kvm/ioctl.hpp>
#include <guestmem/linux/kvm_uapi.hpp>

namespace guestmem::testing {

/// A kvm_ioctl that records each call and answers from a script (fail
/// the n-th call, or every call from the n-th on, with an errno; answer
/// KVM_CHECK_EXTENSION; or pass through to the real ioctl).
class scripted_ioctl final : public kvm_ioctl {
public:
    /// One recorded call.
    struct call_record {
        int fd = -1;                      ///< the fd the call was made on
        unsigned long request = 0;        ///< the ioctl request number
        std::uint64_t address = 0;        ///< attribute requests: GPA (VM ioctl) or file offset (guest_memfd ioctl)
        std::uint64_t size = 0;           ///< attribute requests: bytes
        std::uint64_t attributes = 0;     ///< attribute requests: KVM_MEMORY_ATTRIBUTE_* bits
        long result = 0;                  ///< what the call returned (>= 0, or -errno)
        std::uint64_t flags = 0;          ///< KVM_SET_MEMORY_ATTRIBUTES2: the content flags
        std::uint64_t error_offset = 0;   ///< KVM_SET_MEMORY_ATTRIBUTES2: error_offset as the call left it
    };
    /// Told of every attribute call once answered (testing::kvm_attribute_model keeps KVM's side from it).
    class observer {
    public:
        virtual ~observer() = default;
        /// `rec` is the call as recorded (result and error_offset included).
        virtual void answered(const call_record& rec) noexcept = 0;
    };
    static constexpr std::size_t capacity = 64;  ///< calls kept; later ones are only counted

    /// Answer every call with 0 (success) and KVM_CHECK_EXTENSION with
    /// `extension_answer` until told otherwise.
    explicit scripted_ioctl(long extension_answer = 0) noexcept : extension_(extension_answer) {}

    /// Fail the n-th call from now (1 = the next one) with `err`, once. For
    /// an EAGAIN on KVM_SET_MEMORY_ATTRIBUTES2, the kernel's error_offset is
    /// set to `error_offset` (a byte offset into the guest_memfd).
    void fail_call(std::uint64_t n, int err, std::uint64_t error_offset = 0) noexcept {
        fail_countdown_ = n;
        fail_errno_ = err;
        error_offset_ = error_offset;
    }
    /// Fail every call from the n-th from now on (1 = the next one) with
    /// `err`, until fail_from(0, 0).
    void fail_from(std::uint64_t n, int err) noexcept {
        fail_from_ = n == 0 ? 0 : calls_ + n;
        fail_from_errno_ = err;
    }
    /// What KVM_CHECK_EXTENSION returns from now on.
    void answer_extension(long value) noexcept { extension_ = value; }
    /// Tell `o` of every attribute call (nullptr: nobody).
    void observe(observer* o) noexcept { observer_ = o; }
    /// Forward calls that the script does not fail to `real` (nullptr: answer 0).
    void pass_through(kvm_ioctl* real) noexcept { real_ = real; }

    /// Calls made (including those past capacity).
    [[nodiscard]] std::uint64_t calls() const noexcept { return calls_; }
    /// The i-th recorded call (i < min(calls(), capacity)).
    [[nodiscard]] const call_record& operator[](std::size_t i) const noexcept { return log_[i]; }

    /// Record, then answer from the script (see the file description).
    [[nodiscard]] long call(int fd, unsigned long request, void* arg) noexcept override {
        call_record rec{fd, request, 0, 0, 0, 0, 0, 0};
        if (request == KVM_SET_MEMORY_ATTRIBUTES) {
            const auto* a = static_cast<const kvm_memory_attributes*>(arg);
            rec.address = a->address;
            rec.size = a->size;
            rec.attributes = a->attributes;
        } else if (request == KVM_SET_MEMORY_ATTRIBUTES2) {
            const auto* a = static_cast<const kvm_memory_attributes2*>(arg);
            rec.address = a->offset;
            rec.size = a->size;
            rec.attributes = a->attributes;
            rec.flags = a->flags;
        }
        long r = 0;
        if (fail_countdown_ != 0 && --fail_countdown_ == 0) {
            r = -static_cast<long>(fail_errno_);
            if (fail_errno_ == EAGAIN && request == KVM_SET_MEMORY_ATTRIBUTES2)
                static_cast<kvm_memory_attributes2*>(arg)->error_offset = error_offset_;
        } else if (fail_from_ != 0 && calls_ + 1 >= fail_from_) {
            r = -static_cast<long>(fail_from_errno_);
        } else if (request == KVM_CHECK_EXTENSION && real_ == nullptr) {
            r = extension_;
        } else if (real_ != nullptr) {
            r = real_->call(fd, request, arg);
        }
        rec.result = r;
        if (request == KVM_SET_MEMORY_ATTRIBUTES2) rec.error_offset = static_cast<kvm_memory_attributes2*>(arg)->error_offset;
        if (observer_ != nullptr && (request == KVM_SET_MEMORY_ATTRIBUTES || request == KVM_SET_MEMORY_ATTRIBUTES2))
            observer_->answered(rec);
        if (calls_ < capacity) log_[calls_] = rec;
        ++calls_;
        return r;
    }

private:
    std::array<call_record, capacity> log_{};
    std::uint64_t calls_ = 0;
    std::uint64_t fail_countdown_ = 0;
    int fail_errno_ = 0;
    std::uint64_t error_offset_ = 0;
    std::uint64_t fail_from_ = 0;  // 1-based call number (counting calls_) from which every call fails
    int fail_from_errno_ = 0;
    long extension_ = 0;
    kvm_ioctl* real_ = nullptr;
    observer* observer_ = nullptr;
};

} // namespace guestmem::testing
