// tests/fuzz/harness_kvm.hpp — the differential harness's KVM mode: bytes
// decode into conversions (mixed ranges, both ways, deferred or not), pins
// and unpins, a later irrevocable consumer's vetoes and kernel refusals of
// the attribute ioctl (every errno the consumer names, EAGAIN with partial
// progress at any page, failing undos), on a small object with a
// kvm_attributes_consumer attached over two bindings (VM fd or guest_memfd
// target, any content mode) driving a scripted ioctl. KVM's side is kept by
// testing::kvm_attribute_model (the kernel's partial progress included).
// After every call it checks: the object's shareability against a per-page
// reference model (a failed call changed nothing; busy exactly when a
// pinned page would go guest_only without defer); the code against what
// the model predicts; and, after every round, that KVM's attributes match
// the object page by page everywhere except inside the consumer's own
// stale() record, which verify_in_step reports (so a stale page is never
// unreported). A divergence prints what differed and aborts.
#pragma once

#include <cerrno>
#include <cstdarg>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <guestmem/kvm/attributes_consumer.hpp>
#include <guestmem/memory/guest_memory.hpp>
#include <guestmem/testing/kvm_attribute_model.hpp>
#include <guestmem/testing/recording_consumer.hpp>
#include <guestmem/testing/scripted_ioctl.hpp>
#include <guestmem/testing/simulated_allocator.hpp>

namespace guestmem::fuzz {

/// See the file description.
class kvm_harness {
public:
    static constexpr page_index pages = 96;
    static constexpr std::size_t max_calls = 200;

    void run(const std::uint8_t* data, std::size_t size) {
        data_ = data;
        size_ = size;
        pos_ = 0;
        const std::uint8_t cfg = u8();
        const attributes_target where = (cfg & 1) ? attributes_target::guest_memfd : attributes_target::vm;
        const attributes_content content =
            where == attributes_target::vm ? attributes_content::unspecified : static_cast<attributes_content>((cfg >> 1) % 3);
        const shareability initial = (cfg & 8) ? shareability::shared : shareability::guest_only;
        simulated_allocator alloc{UINT64_MAX, order_4k};
        guest_memory<simulated_allocator> mem{alloc, {pages, initial, order_4k}};
        if (!mem.allocate({0, pages})) diverge("allocate failed");
        testing::scripted_ioctl io{KVM_MEMORY_ATTRIBUTE_PRIVATE};
        testing::kvm_attribute_model kvm_side(/*partial_progress=*/true);
        io.observe(&kvm_side);
        // KVM starts where the object starts (the VMM set it up so).
        if (initial == shareability::guest_only) {
            kvm_side.set_private(fd, {low_base, low_base + 64});
            kvm_side.set_private(fd, {high_base, high_base + (pages - 64)});
        }
        kvm_attributes_consumer kvm(where, fd, content, io);
        if (where == attributes_target::guest_memfd && content == attributes_content::zero)
            io.fail_call(2, EOPNOTSUPP);  // the zero probe's answer: understood
        guest_memory<simulated_allocator>::binding_type low, high, lslot;
        recording_consumer late("late");
        if (!kvm.attach(mem, low, {0, 64}, low_base)) diverge("attach low failed");
        if (!kvm.attach(mem, high, {64, pages}, high_base)) diverge("attach high failed");
        if (!mem.bind(lslot, late, {0, pages}, 0, binding_class::irrevocable)) diverge("bind late failed");
        std::vector<shareability> model(pages, initial);
        std::vector<std::uint32_t> pins(pages, 0);
        page_index veto = no_page;
        for (std::size_t n = 0; n < max_calls && pos_ < size_; ++n) {
            const std::uint8_t op = u8();
            const page_index b = u8() % pages, len = 1 + u8() % 40;
            const page_range r{b, std::min<page_index>(pages, b + len)};
            switch (op % 8) {
            case 0: case 1: case 2: {  // convert
                const shareability to = (op & 8) ? shareability::shared : shareability::guest_only;
                const bool defer = (op & 16) != 0;
                bool noop = true, pinned = false;
                for (page_index p = r.begin; p < r.end; ++p) {
                    noop = noop && model[p] == to;
                    pinned = pinned || pins[p] != 0;
                }
                const std::uint64_t calls_before = io.calls();
                auto s = mem.convert(r, to, {.content = content_policy::preserve, .defer_if_pinned = defer});
                ++ops_;
                if (noop) {
                    if (!s) diverge("a no-op conversion failed: %s", msg(s));
                } else if (to == shareability::guest_only && pinned && !defer) {
                    if (s || s.error().code() != errc::busy) diverge("a pinned conversion was not busy: %s", msg(s));
                    if (io.calls() != calls_before) diverge("a busy conversion reached KVM");
                } else if (veto != no_page && veto >= r.begin && veto < r.end) {
                    // The late consumer vetoes, unless the kernel refused first (KVM's ioctl prepares before it).
                    const bool kvm_first = !s && (s.error().binding_id() == low.id() || s.error().binding_id() == high.id());
                    if (s || s.error().code() != errc::vetoed || (s.error().binding_id() != lslot.id() && !kvm_first))
                        diverge("the late consumer's veto was not the answer: %s", msg(s));
                } else if (!s && !(s.error().code() == errc::vetoed &&
                                   (s.error().binding_id() == low.id() || s.error().binding_id() == high.id()))) {
                    diverge("a conversion failed for no reason the model has: %s", msg(s));
                }
                if (s)
                    for (page_index p = r.begin; p < r.end; ++p) model[p] = to;
                break;
            }
            case 3: {  // pin (host, shared pages only) or unpin
                if (op & 8) {
                    bool all = true;
                    for (page_index p = r.begin; p < r.end; ++p) all = all && pins[p] != 0;
                    auto s = mem.unpin(r);
                    if (bool(s) != all) diverge("unpin answered %s, the model says %d", msg(s), all);
                    if (s)
                        for (page_index p = r.begin; p < r.end; ++p) --pins[p];
                } else {
                    auto s = mem.pin(r, accessor::trusted_device);
                    if (s)
                        for (page_index p = r.begin; p < r.end; ++p) ++pins[p];
                }
                ++ops_;
                break;
            }
            case 4: veto = (op & 8) ? no_page : b; late.veto_at(veto); break;
            case 5: {  // the kernel refuses the n-th attribute call from now
                static constexpr int errs[] = {EAGAIN, ENOMEM, EINVAL, EFAULT, EIO, EAGAIN};
                const int err = errs[(op >> 3) % 6];
                const std::uint64_t at = 1 + u8() % 3;
                const std::uint64_t base = (u8() & 1) ? low_base : high_base;
                io.fail_call(at, err, (base + u8() % 64) * page_size);
                break;
            }
            case 6: io.fail_from((op & 8) ? 0 : 1 + u8() % 3, EIO); break;  // undos may fail too
            default: io.fail_from(0, 0); io.fail_call(0, 0); break;
            }
            check(mem, kvm, kvm_side);
        }
        io.fail_from(0, 0);
    }

    [[nodiscard]] std::uint64_t operations() const noexcept { return ops_; }

private:
    static constexpr int fd = 7;
    static constexpr std::uint64_t low_base = 0x100, high_base = 0x4000;

    template <class Memory>
    void check(const Memory& mem, const kvm_attributes_consumer& kvm, const testing::kvm_attribute_model& kvm_side) {
        // KVM in step with the object wherever the consumer does not say otherwise.
        for (page_index p = 0; p < pages; ++p) {
            const std::uint64_t t = p < 64 ? low_base + p : high_base + (p - 64);
            const bool object_private = mem.shareability_at(p).value() == shareability::guest_only;
            if (object_private != kvm_side.is_private(fd, t) && kvm.verify_in_step({t, t + 1}))
                diverge("object page %#" PRIx64 " is %s but KVM holds target page %#" PRIx64
                        " the other way, and verify_in_step says it is in step",
                        p, object_private ? "guest_only" : "shared", t);
        }
    }

    static const char* msg(const status& s) { return s ? "ok" : s.error().message().data(); }

    [[noreturn, gnu::format(printf, 2, 3)]] void diverge(const char* fmt, ...) const {
        std::fprintf(stderr, "kvm harness divergence at byte %zu: ", pos_);
        va_list args;
        va_start(args, fmt);
        std::vfprintf(stderr, fmt, args);
        va_end(args);
        std::fputc('\n', stderr);
        std::abort();
    }

    std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }

    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0, pos_ = 0;
    std::uint64_t ops_ = 0;
};

/// Run one input through a fresh KVM harness; the API calls it made.
inline std::uint64_t run_one_kvm(const std::uint8_t* data, std::size_t size) {
    kvm_harness h;
    h.run(data, size);
    return h.operations();
}

} // namespace guestmem::fuzz
