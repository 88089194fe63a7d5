/// @file
/// Access policies: who may fault or pin which shareability (docs/DESIGN.md
/// §Views). A policy answers one question, "may accessor `who` map a page
/// of shareability `s`?"; the mappability table (folio/mappability.hpp)
/// still decides every state change and whether a folio can be mapped now.
/// guest_memory's fault and pin take a policy as their last argument,
/// `confidential` by default (today's rules, core/types.hpp may_access);
/// a memory_view passes its own per-view `access_policy` value.
///
/// An accessor the policy lets map guest_only pages faults as the guest
/// side (mappability_event::guest_fault: allowed in `guest`, retry in
/// `none`); any other accessor faults as the host (host_fault).
///
/// Everything here is a plain value or constexpr function: O(1), no lock,
/// no allocation.
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>

#include <guestmem/core/types.hpp>

namespace guestmem {

/// What a policy type must provide: `p.may_map(who, s)` says whether
/// accessor `who` may fault or pin a page of shareability `s`. A stateless
/// policy (confidential, non_confidential) costs nothing at the call site.
template <class P>
concept access_rule = requires(const P& p, accessor who, shareability s) {
    { p.may_map(who, s) } -> std::same_as<bool>;
};

/// Today's rules, the default of guest_memory's fault and pin: shared pages
/// are open to every accessor; guest_only pages to the hypervisor and
/// trusted devices only (may_access). For confidential VMs (SEV-SNP, TDX,
/// pKVM, CCA).
struct confidential {
    /// may_access(who, s).
    [[nodiscard]] static constexpr bool may_map(accessor who, shareability s) noexcept { return may_access(who, s); }
};

/// No hardware keeps the host out ("allow any and all userspace
/// mappings"): every accessor may fault and pin shared and guest_only
/// pages alike. Conversions still run their two-phase rounds: consumers
/// are told as for a confidential VM.
struct non_confidential {
    /// Always true.
    [[nodiscard]] static constexpr bool may_map(accessor, shareability) noexcept { return true; }
};

static_assert(access_rule<confidential> && access_rule<non_confidential>);

/// The two modes a per-view access_policy chooses between.
enum class confidentiality : std::uint8_t {
    confidential,      ///< the `confidential` rules
    non_confidential,  ///< the `non_confidential` rules
};

/// The enumerator's name ("confidential", "non_confidential"), or
/// "invalid confidentiality".
[[nodiscard]] constexpr std::string_view to_string(confidentiality c) noexcept {
    switch (c) {
    case confidentiality::confidential: return "confidential";
    case confidentiality::non_confidential: return "non_confidential";
    }
    return "invalid confidentiality";
}

/// A policy chosen at run time, one per view: a mode, and whether this VM
/// trusts devices (a VM type without device assignment into its trust
/// domain sets trusted_devices = false: its trusted_device accessor is then
/// treated as an untrusted device under confidential rules).
struct access_policy {
    confidentiality mode = confidentiality::confidential;  ///< the rules
    bool trusted_devices = true;  ///< confidential mode: trusted_device may map guest_only pages

    /// The decision: non_confidential allows everything; confidential
    /// allows shared pages to all and guest_only pages to the hypervisor,
    /// and to trusted_device when trusted_devices is set.
    [[nodiscard]] constexpr bool may_map(accessor who, shareability s) const noexcept {
        if (mode == confidentiality::non_confidential || s == shareability::shared) return true;
        return who == accessor::hypervisor || (trusted_devices && who == accessor::trusted_device);
    }
    /// True when `mode` is a named enumerator.
    [[nodiscard]] constexpr bool valid() const noexcept {
        return mode == confidentiality::confidential || mode == confidentiality::non_confidential;
    }
    /// Same mode and device trust.
    friend constexpr bool operator==(const access_policy&, const access_policy&) noexcept = default;
};

static_assert(access_rule<access_policy>);

} // namespace guestmem
