/// @file
/// A consumer that records every call it gets (prepare / commit / abort /
/// memory_failure, with the invalidation) and can be told to misbehave: veto a
/// prepare that touches a page, veto the N-th prepare, fail with a chosen code,
/// report a page as leaked or poisoned while committing. For tests, examples
/// and the fuzzer.
///
/// It allocates nothing: calls go into a fixed-capacity log (the oldest
/// entries are kept, later ones are counted as dropped) and per-kind
/// counters, optionally also into a `call_journal` shared by several
/// consumers so tests can check the order across consumers. A plain
/// function-pointer hook runs inside every call (to look at sequence
/// numbers while an invalidation is in flight, for example).
#pragma once

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <guestmem/core/error.hpp>
#include <guestmem/notifier/consumer.hpp>

namespace guestmem {

class recording_consumer;

/// Which consumer entry point was called.
enum class call_kind : std::uint8_t {
    prepare,         ///< consumer::prepare
    commit,          ///< consumer::commit
    abort,           ///< consumer::abort
    memory_failure,  ///< consumer::memory_failure
    populate         ///< consumer::populate (replay on bind)
};

/// The enumerator's name ("prepare", "commit", "abort", "memory_failure"),
/// or "invalid call".
[[nodiscard]] constexpr std::string_view to_string(call_kind k) noexcept {
    switch (k) {
    case call_kind::prepare: return "prepare";
    case call_kind::commit: return "commit";
    case call_kind::abort: return "abort";
    case call_kind::memory_failure: return "memory_failure";
    case call_kind::populate: return "populate";
    }
    return "invalid call";
}

/// One recorded call.
struct recorded_call {
    const recording_consumer* who = nullptr;  ///< the consumer that was called
    call_kind kind = call_kind::prepare;      ///< which entry point
    invalidation inv{};                       ///< the invalidation it was given (a copy)
    bool vetoed = false;  ///< prepare only: this call refused
};

/// A fixed-capacity, shared log of calls across several consumers: pass
/// the same journal to several recording_consumer constructors to see the
/// order of calls across them. Keeps the first `capacity` calls and counts
/// the rest as dropped; never allocates. Not thread-safe (consumers are
/// called under the owner's exclusive lock).
class call_journal {
public:
    /// The most calls the journal keeps.
    static constexpr std::size_t capacity = 256;
    /// Append `c`, or count it as dropped when the journal is full.
    void add(const recorded_call& c) noexcept {
        if (size_ < capacity)
            calls_[size_++] = c;
        else
            ++dropped_;
    }
    /// Calls kept (at most capacity).
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    /// Calls not kept because the journal was full.
    [[nodiscard]] std::size_t dropped() const noexcept { return dropped_; }
    /// The i-th call kept, oldest first. Precondition: i < size().
    [[nodiscard]] const recorded_call& operator[](std::size_t i) const noexcept { return calls_[i]; }
    /// The calls kept, oldest first, as a contiguous range [begin(), end()).
    [[nodiscard]] const recorded_call* begin() const noexcept { return calls_.data(); }
    /// One past the last call kept.
    [[nodiscard]] const recorded_call* end() const noexcept { return calls_.data() + size_; }
    /// Forget every call and the dropped count.
    void clear() noexcept { size_ = dropped_ = 0; }

private:
    std::array<recorded_call, capacity> calls_{};
    std::size_t size_ = 0;
    std::size_t dropped_ = 0;
};

/// The recording consumer: logs every call (the first `capacity` of them,
/// plus per-kind counters) and misbehaves on request (vetoes, leak and
/// poison reports). `final`: usable through the virtual `consumer` base
/// (heterogeneous sets) and as a closed type
/// (`notifier_set<recording_consumer>`). Never allocates. Not thread-safe:
/// the owner calls it under its exclusive lock; configure and read it
/// under that lock or while no invalidation is in flight.
class recording_consumer final : public consumer {
public:
    /// The most calls the consumer's own log keeps.
    static constexpr std::size_t capacity = 128;
    /// A hook run inside every call, after the call is recorded: `context`
    /// as given to on_call, this consumer, the kind of call and its
    /// invalidation.
    using hook_fn = void (*)(void* context, const recording_consumer& self, call_kind kind, const invalidation& inv);

    /// A consumer named `name` (truncated to 32 characters; used in veto
    /// messages and dumps) that also records into `journal` when not null.
    /// The journal must outlive the consumer.
    explicit recording_consumer(std::string_view name = "recorder", call_journal* journal = nullptr) noexcept
        : journal_(journal) {
        const std::size_t n = std::min(name.size(), name_.size());
        std::copy_n(name.data(), n, name_.begin());
        name_len_ = n;
    }

    // ---- misbehaviour -------------------------------------------------
    /// Refuse every prepare whose pages contain `page` (until clear_vetoes).
    void veto_at(page_index page) noexcept { veto_page_ = page; }
    /// Refuse the n-th prepare call from now (1 = the next one), once.
    void veto_on_prepare(std::uint64_t n) noexcept { veto_countdown_ = n; }
    /// The code a refusal carries (errc::vetoed by default).
    void veto_code(errc code) noexcept { veto_code_ = code; }
    /// Stop vetoing: forget veto_at and veto_on_prepare, and go back to
    /// errc::vetoed.
    void clear_vetoes() noexcept {
        veto_page_ = no_page;
        veto_countdown_ = 0;
        veto_code_ = errc::vetoed;
    }
    /// While committing an invalidation that covers `page`, report it leaked.
    void leak_at(page_index page) noexcept { leak_page_ = page; }
    /// While committing an invalidation that covers `page`, report it poisoned.
    void poison_at(page_index page) noexcept { poison_page_ = page; }
    /// Stop reporting leaked and poisoned pages.
    void clear_reports() noexcept { leak_page_ = poison_page_ = no_page; }
    /// Run `fn(context, *this, kind, inv)` inside every call (nullptr: none).
    void on_call(hook_fn fn, void* context) noexcept {
        hook_ = fn;
        hook_context_ = context;
    }

    // ---- consumer interface -------------------------------------------
    /// Record the call and refuse it when told to (veto_at a page in
    /// inv.pages, or the veto_on_prepare countdown reaching this call):
    /// then the error has the code set by veto_code (errc::vetoed by
    /// default), is at the veto page (or at inv.pages.begin for a
    /// countdown veto) and names this consumer. Refuses non-vetoable causes
    /// too (the owner then ignores the refusal). Otherwise ok.
    status prepare(const invalidation& inv) override {
        ++prepares_;
        bool refuse = false;
        page_index page = inv.pages.begin;
        if (veto_page_ != no_page && inv.pages.contains(veto_page_)) {
            refuse = true;
            page = veto_page_;
        }
        if (veto_countdown_ != 0 && --veto_countdown_ == 0) refuse = true;
        record(call_kind::prepare, inv, refuse);
        if (!refuse) return ok();
        ++vetoes_;
        return error::make(veto_code_, page, "%.*s refuses page %#" PRIx64, static_cast<int>(name_len_), name_.data(),
                           page);
    }
    /// Record the call; report the leak_at / poison_at page as leaked /
    /// poisoned when inv.pages contains it.
    void commit(const invalidation& inv, commit_report& report) noexcept override {
        ++commits_;
        record(call_kind::commit, inv, false);
        if (leak_page_ != no_page && inv.pages.contains(leak_page_)) report.leaked(leak_page_, inv.binding_id);
        if (poison_page_ != no_page && inv.pages.contains(poison_page_)) report.poisoned(poison_page_, inv.binding_id);
    }
    /// Record the call.
    void abort(const invalidation& inv) noexcept override {
        ++aborts_;
        record(call_kind::abort, inv, false);
    }
    /// Record the call.
    void memory_failure(const invalidation& inv) noexcept override {
        ++memory_failures_;
        record(call_kind::memory_failure, inv, false);
    }
    /// Record the call; refuse it (as prepare does) when veto_at names a
    /// page of inv.pages.
    status populate(const invalidation& inv) override {
        ++populates_;
        const bool refuse = veto_page_ != no_page && inv.pages.contains(veto_page_);
        record(call_kind::populate, inv, refuse);
        if (!refuse) return ok();
        ++vetoes_;
        return error::make(veto_code_, veto_page_, "%.*s refuses to map page %#" PRIx64, static_cast<int>(name_len_),
                           name_.data(), veto_page_);
    }
    /// The name given to the constructor (at most 32 characters).
    [[nodiscard]] std::string_view name() const noexcept override { return {name_.data(), name_len_}; }

    // ---- what happened -------------------------------------------------
    /// prepare calls since the last clear() (the dropped ones included).
    [[nodiscard]] std::uint64_t prepares() const noexcept { return prepares_; }
    /// commit calls since the last clear().
    [[nodiscard]] std::uint64_t commits() const noexcept { return commits_; }
    /// abort calls since the last clear().
    [[nodiscard]] std::uint64_t aborts() const noexcept { return aborts_; }
    /// memory_failure calls since the last clear().
    [[nodiscard]] std::uint64_t memory_failures() const noexcept { return memory_failures_; }
    /// populate calls since the last clear().
    [[nodiscard]] std::uint64_t populates() const noexcept { return populates_; }
    /// Prepares and populates this consumer refused.
    [[nodiscard]] std::uint64_t vetoes() const noexcept { return vetoes_; }
    /// All calls since the last clear(): the five counters added.
    [[nodiscard]] std::uint64_t total_calls() const noexcept {
        return prepares_ + commits_ + aborts_ + memory_failures_ + populates_;
    }
    /// The first `capacity` calls since the last clear().
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    /// Calls not logged because the log was full.
    [[nodiscard]] std::size_t dropped() const noexcept { return dropped_; }
    /// The i-th logged call, oldest first. Precondition: i < size().
    [[nodiscard]] const recorded_call& operator[](std::size_t i) const noexcept { return calls_[i]; }
    /// The logged calls, oldest first, as a contiguous range [begin(), end()).
    [[nodiscard]] const recorded_call* begin() const noexcept { return calls_.data(); }
    /// One past the last logged call.
    [[nodiscard]] const recorded_call* end() const noexcept { return calls_.data() + size_; }
    /// Number of logged calls of one kind (dropped calls are not counted). O(size()).
    [[nodiscard]] std::size_t count(call_kind k) const noexcept {
        return static_cast<std::size_t>(std::count_if(begin(), end(), [k](const recorded_call& c) { return c.kind == k; }));
    }
    /// Forget the log and counters (not the misbehaviour settings).
    void clear() noexcept {
        size_ = dropped_ = 0;
        prepares_ = commits_ = aborts_ = memory_failures_ = vetoes_ = populates_ = 0;
    }

private:
    void record(call_kind kind, const invalidation& inv, bool vetoed) noexcept {
        const recorded_call c{this, kind, inv, vetoed};
        if (size_ < capacity)
            calls_[size_++] = c;
        else
            ++dropped_;
        if (journal_ != nullptr) journal_->add(c);
        if (hook_ != nullptr) hook_(hook_context_, *this, kind, inv);
    }

    std::array<char, 32> name_{};
    std::size_t name_len_ = 0;
    call_journal* journal_ = nullptr;
    hook_fn hook_ = nullptr;
    void* hook_context_ = nullptr;
    page_index veto_page_ = no_page;
    std::uint64_t veto_countdown_ = 0;
    errc veto_code_ = errc::vetoed;
    page_index leak_page_ = no_page;
    page_index poison_page_ = no_page;
    std::uint64_t prepares_ = 0, commits_ = 0, aborts_ = 0, memory_failures_ = 0, vetoes_ = 0, populates_ = 0;
    std::array<recorded_call, capacity> calls_{};
    std::size_t size_ = 0;
    std::size_t dropped_ = 0;
};

static_assert(invalidation_consumer<recording_consumer>);

} // namespace guestmem
