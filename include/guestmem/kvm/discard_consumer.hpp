/// @file
/// Discard of the other backing, for VMMs that keep a page's shared and
/// private contents in two files: shared memory in a memfd (or other
/// shmem file) the host maps, private memory in a guest_memfd. After a
/// conversion only one side may hold the page, or memory is charged twice
/// and stale contents come back on the next conversion. This consumer punches
/// the side a conversion leaves:
///
/// | committed cause   | punched                                   |
/// |-------------------|-------------------------------------------|
/// | to_guest_only     | the shared backing's pages                |
/// | to_shared         | the private backing's (guest_memfd) pages |
/// | truncate          | both                                      |
/// | release, memory_failure | nothing                             |
///
/// Punching is FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: the blocks go back
/// to the system and a later read of the shared side returns zeroes. It runs
/// in commit, once no consumer can veto any more, so a vetoed conversion
/// discards nothing. commit cannot fail: a punch the kernel refuses is
/// counted (counters::failures, with last_failure()) and the pages stay
/// charged; nothing is quarantined, because the page the conversion leaves
/// is not reachable through the new side (the VMM maps the shared side only
/// for shared pages, KVM the private side only for private ones).
///
/// One consumer per binding (attach() refuses a second attach, even after
/// an unbind: make a new consumer), since the file pages follow from it:
/// object page p is shared-backing page shared_first + (p - pages.begin)
/// and private-backing page private_first + (p - pages.begin).
///
/// Cost: one fallocate per binding per conversion. Locking: callbacks run
/// under the object's exclusive lock; read the counters under it too. Linux
/// only.
#pragma once

#include <fcntl.h>
#include <linux/falloc.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string_view>

#include <guestmem/core/error.hpp>
#include <guestmem/core/page_range.hpp>
#include <guestmem/linux/system.hpp>
#include <guestmem/notifier/binding.hpp>
#include <guestmem/notifier/consumer.hpp>

namespace guestmem {

/// The two backings of one binding (fds not owned; they must outlive the
/// binding).
struct discard_config {
    int shared_fd = -1;           ///< the shared backing (memfd or shmem file); -1: never punched
    page_index shared_first = 0;  ///< its page for the binding's first object page
    int private_fd = -1;          ///< the private backing (guest_memfd); -1: never punched
    page_index private_first = 0; ///< its page for the binding's first object page
};

/// Punches, after each committed conversion, the backing the pages left:
/// the shared file on to_guest_only, the private one on to_shared, both on
/// truncation (the table in the file comment). A vetoed conversion
/// discards nothing.
class discard_consumer final : public consumer {
public:
    /// What the consumer did (read under the object's lock).
    struct counters {
        std::uint64_t shared_punches = 0;   ///< punches of the shared backing that succeeded
        std::uint64_t shared_pages = 0;     ///< pages they covered
        std::uint64_t private_punches = 0;  ///< punches of the private backing that succeeded
        std::uint64_t private_pages = 0;    ///< pages they covered
        std::uint64_t failures = 0;         ///< punches the kernel refused (the pages stay charged)
    };

    /// A consumer over the backings in `cfg`. Makes no call.
    explicit discard_consumer(const discard_config& cfg) noexcept : cfg_(cfg) {}

    /// Bind to `mem` over object `pages` (ordinary binding; the target is
    /// the shared backing's page numbers). Errors: already_bound (this
    /// consumer was attached before); invalid_range when a backing's
    /// byte offsets (page * 4 KiB) for these pages would pass 2^63, the
    /// largest file offset; bind()'s.
    template <class Memory>
    [[nodiscard]] result<binding_handle> attach(Memory& mem, typename Memory::binding_type& slot, page_range pages) {
        if (attached_)
            return error::make(errc::already_bound, pages.begin,
                               "discard consumer was attached over object pages [%#" PRIx64 ", %#" PRIx64
                               ") already (one binding per discard consumer)",
                               first_page_, first_page_ + pages_);
        if (pages.begin < pages.end)
            for (page_index first : {cfg_.shared_first, cfg_.private_first})
                if (first > max_file_page || pages.size() > max_file_page - first)
                    return error::make(errc::invalid_range, pages.begin,
                                       "discard binding of pages [%#" PRIx64 ", %#" PRIx64 ") from backing page %#" PRIx64
                                       " passes the largest file offset (2^63 bytes)",
                                       pages.begin, pages.end, first);
        auto h = mem.bind(slot, *this, pages, cfg_.shared_first);
        if (!h) return h.error();
        attached_ = true;
        first_page_ = pages.begin;
        pages_ = pages.size();
        return h;
    }

    /// Nothing can fail before the conversion is decided: ok.
    status prepare(const invalidation&) override { return ok(); }
    /// Punch the side the committed cause leaves (see the table above).
    void commit(const invalidation& inv, commit_report&) noexcept override {
        switch (inv.cause) {
        case invalidation_cause::to_guest_only: punch_shared(inv); break;
        case invalidation_cause::to_shared: punch_private(inv); break;
        case invalidation_cause::truncate:
            punch_shared(inv);
            punch_private(inv);
            break;
        default: break;
        }
    }
    /// Nothing was done in prepare: nothing to undo.
    void abort(const invalidation&) noexcept override {}
    /// Nothing: the object quarantines the poisoned folio itself.
    void memory_failure(const invalidation&) noexcept override {}
    /// "discard".
    std::string_view name() const noexcept override { return "discard"; }

    /// The counters. O(1).
    [[nodiscard]] counters stats() const noexcept { return counters_; }
    /// The most recent punch the kernel refused, if any (errno mapped by
    /// errc_from_errno, at the first object page of the punch).
    [[nodiscard]] const std::optional<error>& last_failure() const noexcept { return last_failure_; }

private:
    static constexpr page_index max_file_page = (std::uint64_t{1} << 63) / page_size;

    void punch_shared(const invalidation& inv) noexcept {
        if (cfg_.shared_fd < 0) return;
        if (punch(cfg_.shared_fd, inv.target.begin, inv.pages, "shared")) {
            ++counters_.shared_punches;
            counters_.shared_pages += inv.pages.size();
        }
    }
    void punch_private(const invalidation& inv) noexcept {
        if (cfg_.private_fd < 0) return;
        const page_index file_page = cfg_.private_first + (inv.pages.begin - first_page_);
        if (punch(cfg_.private_fd, file_page, inv.pages, "private")) {
            ++counters_.private_punches;
            counters_.private_pages += inv.pages.size();
        }
    }
    bool punch(int fd, page_index file_page, page_range pages, const char* side) noexcept {
        if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(file_page * page_size),
                        static_cast<off_t>(pages.size() * page_size)) == 0)
            return true;
        const int err = errno;
        ++counters_.failures;
        char what[error::max_message];
        std::snprintf(what, sizeof what,
                      "discarding the %s backing of object pages [%#" PRIx64 ", %#" PRIx64 ") (file pages from %#" PRIx64
                      ") failed",
                      side, pages.begin, pages.end, file_page);
        last_failure_ = errno_error_as(errc_from_errno(err), err, pages.begin, what);
        return false;
    }

    discard_config cfg_;
    bool attached_ = false;
    page_index first_page_ = 0;
    std::uint64_t pages_ = 0;
    counters counters_{};
    std::optional<error> last_failure_;
};

} // namespace guestmem
