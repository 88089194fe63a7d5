/// @file
/// A consumer that is a real host userspace view of the object (a MAP_SHARED
/// mapping of its fd) and enforces shareability on it with mprotect: pages
/// converted to guest_only become PROT_NONE (a host touch faults with SIGSEGV),
/// pages converted back to shared become PROT_READ | PROT_WRITE again.
///
/// Bind it over object pages [b, e) with target_base(b) (the view's virtual
/// page number for object page b): its target pages are host virtual
/// addresses >> 12.
///
/// Two phases: prepare does everything that can fail — it checks the target
/// lies inside the view, reserves the bookkeeping for one more run of
/// protected pages, and checks that the VMAs the view splits into (each
/// maximal run of equal protection is one VMA) stay under a budget derived
/// from /proc/sys/vm/max_map_count, so commit's mprotect cannot hit ENOMEM
/// for want of VMAs. If mprotect still fails in commit, the pages are
/// reported as leaked (the object quarantines them); commit never fails.
///
/// Non-vetoable causes: truncate leaves protections as they are (a hole
/// keeps its shareability; the kernel already dropped the pages from every
/// mapping), release leaves them too (PROT_NONE is the safe side; the view
/// goes away with the consumer), memory_failure makes the poisoned page
/// PROT_NONE so a host touch faults instead of consuming poison.
///
/// Thread safety: prepare/commit/abort run under the object's exclusive
/// lock; call the queries under the object's lock or when no conversion is
/// in flight.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/core/types.hpp>
#include <guestmem/linux/detail/protection_runs.hpp>
#include <guestmem/linux/detail/sys.hpp>
#include <guestmem/notifier/consumer.hpp>

namespace guestmem {

/// vm.max_map_count (65530 when unreadable, the kernel's default).
[[nodiscard]] inline std::uint64_t max_map_count() noexcept {
    std::uint64_t v = 65530;
    if (std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
        unsigned long long x = 0;
        if (std::fscanf(f, "%llu", &x) == 1 && x > 0) v = x;
        std::fclose(f);
    }
    return v;
}

/// What a host_mapping_consumer counts.
struct host_mapping_counters {
    std::uint64_t protected_ranges = 0;    ///< successful mprotect(PROT_NONE)
    std::uint64_t unprotected_ranges = 0;  ///< successful mprotect(PROT_READ | PROT_WRITE)
    std::uint64_t vetoes = 0;              ///< prepares refused (view bounds, VMA budget, bookkeeping memory)
    std::uint64_t leaked_pages = 0;        ///< pages reported because mprotect failed in commit
    std::uint64_t poisoned_pages = 0;      ///< pages protected by memory_failure
};

/// A consumer that is a host view of the object: a MAP_SHARED mapping
/// whose guest_only pages it keeps PROT_NONE with mprotect, so a host touch
/// of a private page faults (SIGSEGV). Bind it with target_base(first) as
/// the target base: its target pages are host virtual page numbers. All
/// fallible work (view bounds, bookkeeping memory, the VMA budget) is done
/// in prepare; commit cannot fail and reports pages it could not protect as
/// leaked. See the file description for what each cause does.
///
/// Locking: prepare, commit, abort and memory_failure run under the owning
/// object's exclusive lock; call map, attach, apply, set_vma_limit and the
/// queries under that lock too, or while no invalidation is in flight.
class host_mapping_consumer final : public consumer {
public:
    /// No view yet: map() or attach() one before binding.
    host_mapping_consumer() = default;
    /// Unmaps the view if map() created it (an attached one is left alone).
    ~host_mapping_consumer() override = default;

    /// Map [file_offset, file_offset + bytes) of `fd` MAP_SHARED read/write
    /// as this consumer's view (owned; unmapped by the destructor). Object
    /// page file_offset / 4 KiB is the view's first page. Errors:
    /// already_bound; shared_mapping::map's (misaligned, empty, or a file
    /// range past the largest file offset); attach's.
    [[nodiscard]] status map(int fd, std::uint64_t file_offset, std::uint64_t bytes) noexcept {
        if (view_)
            return error::make(errc::already_bound, no_page, "host view already mapped at %p", static_cast<void*>(view_));
        auto m = detail::sys::shared_mapping::map(fd, file_offset, bytes, "the host view");
        if (!m) return m.error();
        owned_ = std::move(m).value();
        return attach(owned_.data(), bytes, file_offset / page_size);
    }

    /// Use an existing mapping (not owned) of object pages
    /// [first_object_page, first_object_page + bytes / 4 KiB). Errors:
    /// invalid_argument for a null, empty or misaligned view or one whose
    /// end address (view + bytes) overflows 64 bits; invalid_range (at
    /// first_object_page) when the object pages would end past 2^64 - 1;
    /// out_of_memory for the bookkeeping.
    [[nodiscard]] status attach(std::byte* view, std::uint64_t bytes, page_index first_object_page) noexcept {
        const auto addr = reinterpret_cast<std::uintptr_t>(view);
        if (!view || bytes == 0 || bytes % page_size != 0 || addr % page_size != 0)
            return error::make(errc::invalid_argument, no_page, "host view %p of %#" PRIx64 " bytes is not page-aligned",
                               static_cast<void*>(view), bytes);
        if (addr > UINTPTR_MAX - bytes)
            return error::make(errc::invalid_argument, no_page,
                               "host view %p of %#" PRIx64 " bytes: its end address overflows 64 bits",
                               static_cast<void*>(view), bytes);
        if (first_object_page > UINT64_MAX - bytes / page_size)
            return error::make(errc::invalid_range, first_object_page,
                               "host view of %#" PRIx64 " pages from object page %#" PRIx64 " overflows past 2^64",
                               bytes / page_size, first_object_page);
        if (!runs_.reserve(8)) return error::make(errc::out_of_memory, no_page, "no memory for the host view's bookkeeping");
        view_ = view;
        view_pages_ = bytes / page_size;
        first_page_ = first_object_page;
        vma_limit_ = std::max<std::uint64_t>(3, max_map_count() / 4);
        return ok();
    }

    // ---- queries -----------------------------------------------------------

    /// First byte of the view, or nullptr when nothing is mapped.
    [[nodiscard]] std::byte* data() const noexcept { return view_; }
    /// Size of the view in bytes (0 when nothing is mapped).
    [[nodiscard]] std::uint64_t bytes() const noexcept { return view_pages_ * page_size; }
    /// Host address of object page `p`, or nullptr when `p` is outside
    /// object_pages() (or nothing is mapped).
    [[nodiscard]] std::byte* address_of(page_index p) const noexcept {
        if (!object_pages().contains(p)) return nullptr;
        return view_ + (p - first_page_) * page_size;
    }
    /// The target_base to bind object pages starting at `first` with (the
    /// host virtual page number of `first`), or no_page when `first` is
    /// outside object_pages(): a bind with no_page as target base is refused
    /// (its target would pass 2^64).
    [[nodiscard]] std::uint64_t target_base(page_index first) const noexcept {
        if (!object_pages().contains(first)) return no_page;
        return view_vpn() + (first - first_page_);
    }
    /// Object pages the view covers (attach refused views whose end wraps).
    [[nodiscard]] page_range object_pages() const noexcept { return {first_page_, first_page_ + view_pages_}; }
    /// May the host touch object page `p` through the view right now?
    /// False for pages outside object_pages(): the view cannot reach them.
    [[nodiscard]] bool accessible(page_index p) const noexcept {
        return object_pages().contains(p) && !runs_.protected_at(p - first_page_);
    }
    /// VMAs the view currently splits into (runs of equal protection).
    [[nodiscard]] std::uint64_t vmas() const noexcept { return runs_.segments(view_pages_); }
    /// The VMA budget prepare enforces: it vetoes a conversion that could
    /// take the view past it.
    [[nodiscard]] std::uint64_t vma_limit() const noexcept { return vma_limit_; }
    /// Override the VMA budget (default: vm.max_map_count / 4, leaving the
    /// rest for the process and other views).
    void set_vma_limit(std::uint64_t limit) noexcept { vma_limit_ = limit; }
    /// What the consumer has done so far (host_mapping_counters).
    [[nodiscard]] const host_mapping_counters& counters() const noexcept { return counters_; }
    /// Time and number of mprotect calls.
    [[nodiscard]] const detail::sys::kernel_clock& kernel() const noexcept { return clock_; }
    /// The same clock, writable (to reset() it between measurements).
    [[nodiscard]] detail::sys::kernel_clock& kernel() noexcept { return clock_; }
    /// "host_mapping", for dumps and veto messages.
    [[nodiscard]] std::string_view name() const noexcept override { return "host_mapping"; }

    /// Set the protection of object pages outside a conversion (e.g. after
    /// binding to an object whose pages start guest_only): PROT_NONE for
    /// guest_only, PROT_READ | PROT_WRITE for shared. Errors: invalid_range
    /// (at pages.begin) when `pages` is empty or not inside object_pages();
    /// out_of_memory for the bookkeeping; mprotect's errno mapped by
    /// errc_from_errno. On error the recorded protections are unchanged.
    [[nodiscard]] status apply(page_range pages, shareability s) noexcept {
        const page_range view = object_pages();
        if (!view.contains(pages) || pages.empty())
            return error::make(errc::invalid_range, pages.begin,
                               "pages [%#" PRIx64 ", %#" PRIx64 ") are not inside the host view [%#" PRIx64 ", %#" PRIx64 ")",
                               pages.begin, pages.end, view.begin, view.end);
        if (!runs_.reserve(runs_.size() + pending_ + 2))
            return error::make(errc::out_of_memory, pages.begin, "no memory for the host view's bookkeeping");
        const bool prot = s == shareability::guest_only;
        if (mprotect_pages(pages, prot) != 0)
            return detail::sys::errno_error(errno, pages.begin, "mprotect of host view pages [%#" PRIx64 ", %#" PRIx64 ") failed",
                                            pages.begin, pages.end);
        runs_.assign(relative(pages), prot);
        return ok();
    }

    // ---- the consumer interface --------------------------------------------

    /// For a conversion, check everything commit needs and veto (errc::vetoed
    /// at inv.pages.begin, saying why) when the view is not mapped, the
    /// target lies outside it, the change could take the view past
    /// vma_limit(), or the bookkeeping cannot grow. Truncate and release
    /// need nothing: ok. Counts vetoes.
    status prepare(const invalidation& inv) override {
        if (!is_vetoable(inv.cause)) return ok();  // truncate / release: nothing to do (see the top of the file)
        if (!view_) return veto(inv, "the host view is not mapped");
        if (!in_view(inv.target)) return veto(inv, "its target pages are outside the host view");
        // Worst case every pending change adds two VMAs (a run split in three).
        if (runs_.segments(view_pages_) + 2 * (pending_ + 1) > vma_limit_) return veto(inv, "the VMA budget is spent");
        if (!runs_.reserve(runs_.size() + pending_ + 2)) return veto(inv, "no memory for the bookkeeping");
        ++pending_;
        return ok();
    }

    /// For a conversion, mprotect the target: PROT_NONE to guest_only,
    /// PROT_READ | PROT_WRITE to shared. If that fails, every page of
    /// inv.pages is reported leaked (until the report overflows) and the
    /// object quarantines them. Truncate and release change nothing.
    void commit(const invalidation& inv, commit_report& report) noexcept override {
        if (!is_vetoable(inv.cause)) return;
        if (pending_) --pending_;
        const bool prot = inv.cause == invalidation_cause::to_guest_only;
        if (!view_ || !in_view(inv.target) || mprotect_target(inv.target, prot) != 0) {
            // Could not (un)protect: the pages are in an unknown state for
            // the host, so the object must never hand them out again.
            for (page_index p = inv.pages.begin; p < inv.pages.end && !report.overflowed(); ++p) {
                report.leaked(p, inv.binding_id);
                ++counters_.leaked_pages;
            }
            return;
        }
        runs_.assign(relative_target(inv.target), prot);
        ++(prot ? counters_.protected_ranges : counters_.unprotected_ranges);
    }

    /// Forget a conversion's prepare (no protection was changed).
    void abort(const invalidation& inv) noexcept override {
        if (is_vetoable(inv.cause) && pending_) --pending_;
    }

    /// Make the failed folio's pages PROT_NONE so a host touch faults
    /// instead of consuming poison; counted in poisoned_pages. Targets
    /// outside the view, and a failing mprotect, are ignored.
    void memory_failure(const invalidation& inv) noexcept override {
        if (!view_ || !in_view(inv.target)) return;
        if (mprotect_target(inv.target, true) != 0) return;  // nothing more the host can do
        // Bookkeeping: prepare always leaves one spare run; if two failures
        // arrive without a prepare between them, grow (may allocate) or, if
        // that fails, leave the tracking one run short (the kernel state is
        // what protects the host).
        if (runs_.capacity() > runs_.size() + pending_ || runs_.reserve(runs_.size() + pending_ + 2))
            runs_.assign(relative_target(inv.target), true);
        counters_.poisoned_pages += inv.target.size();
    }

private:
    [[nodiscard]] status veto(const invalidation& inv, const char* why) noexcept {
        ++counters_.vetoes;
        return error::make(errc::vetoed, inv.pages.begin,
                           "host view refuses %s of pages [%#" PRIx64 ", %#" PRIx64 "): %s", to_string(inv.cause).data(),
                           inv.pages.begin, inv.pages.end, why);
    }
    [[nodiscard]] std::uint64_t view_vpn() const noexcept { return reinterpret_cast<std::uintptr_t>(view_) / page_size; }
    [[nodiscard]] bool in_view(page_range target) const noexcept {
        return !target.empty() && target.begin >= view_vpn() && target.end <= view_vpn() + view_pages_;
    }
    [[nodiscard]] page_range relative(page_range object) const noexcept {
        return {object.begin - first_page_, object.end - first_page_};
    }
    [[nodiscard]] page_range relative_target(page_range target) const noexcept {
        return {target.begin - view_vpn(), target.end - view_vpn()};
    }
    int mprotect_target(page_range target, bool prot) noexcept {
        void* addr = reinterpret_cast<void*>(target.begin * page_size);
        const std::size_t len = target.size() * page_size;
        return clock_.time([&] { return ::mprotect(addr, len, prot ? PROT_NONE : PROT_READ | PROT_WRITE); });
    }
    int mprotect_pages(page_range object, bool prot) noexcept {
        const std::uint64_t vpn = reinterpret_cast<std::uintptr_t>(address_of(object.begin)) / page_size;
        return mprotect_target({vpn, vpn + object.size()}, prot);
    }

    detail::sys::shared_mapping owned_;
    std::byte* view_ = nullptr;
    std::uint64_t view_pages_ = 0;
    page_index first_page_ = 0;
    std::uint64_t vma_limit_ = 0;
    std::size_t pending_ = 0;
    detail::sys::protection_runs runs_;
    detail::sys::kernel_clock clock_;
    host_mapping_counters counters_;
};

} // namespace guestmem
