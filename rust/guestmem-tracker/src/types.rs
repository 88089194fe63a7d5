//! The C ABI's enumerations and small structs as Rust types.
use std::ops::Range;

use guestmem_sys as sys;

/// Per page: who may map it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shareability {
    /// The host, the hypervisor and every device may map it.
    Shared,
    /// Private: only the hypervisor and trusted devices may map it.
    GuestOnly,
}

impl Shareability {
    #[inline]
    pub(crate) fn to_raw(self) -> u32 {
        match self {
            Shareability::Shared => sys::GUESTMEM_SHARED,
            Shareability::GuestOnly => sys::GUESTMEM_GUEST_ONLY,
        }
    }
    #[inline]
    pub(crate) fn from_raw(v: u32) -> Self {
        if v == sys::GUESTMEM_GUEST_ONLY {
            Shareability::GuestOnly
        } else {
            Shareability::Shared
        }
    }
}

/// Per leaf folio: the transient state while a conversion drains pins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mappability {
    /// A shared folio: everyone may map it.
    All,
    /// A guest_only folio: the guest side may map it.
    Guest,
    /// Pins still drain: no one may map it (faults get `Retry`).
    None,
}

impl Mappability {
    #[inline]
    pub(crate) fn from_raw(v: u32) -> Self {
        match v {
            sys::GUESTMEM_MAPPABLE_ALL => Mappability::All,
            sys::GUESTMEM_MAPPABLE_GUEST => Mappability::Guest,
            _ => Mappability::None,
        }
    }
}

/// Who asks for a mapping in a fault or a pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Accessor {
    /// Host userspace (the VMM's own reads and writes).
    Host,
    /// The hypervisor's stage-2 tables.
    Hypervisor,
    /// An untrusted device behind an IOMMU (device emulation).
    Device,
    /// A device the guest trusts.
    TrustedDevice,
}

impl Accessor {
    #[inline]
    pub(crate) fn to_raw(self) -> u32 {
        match self {
            Accessor::Host => sys::GUESTMEM_HOST,
            Accessor::Hypervisor => sys::GUESTMEM_HYPERVISOR,
            Accessor::Device => sys::GUESTMEM_DEVICE,
            Accessor::TrustedDevice => sys::GUESTMEM_TRUSTED_DEVICE,
        }
    }
}

/// Why a consumer is told to let go. A cause this crate does not know (a
/// newer library) is `Unknown`: treat it like `Release`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// Conversion guest_only -> shared (vetoable).
    ToShared,
    /// Conversion shared -> guest_only (vetoable).
    ToGuestOnly,
    /// `punch_hole` (not vetoable).
    Truncate,
    /// Unbind or destroy (not vetoable).
    Release,
    /// A folio was poisoned (not vetoable).
    MemoryFailure,
    /// A cause added after this crate: drop the mappings as for `Release`.
    Unknown(u32),
}

impl Cause {
    #[inline]
    pub(crate) fn from_raw(v: u32) -> Self {
        match v {
            sys::GUESTMEM_CAUSE_TO_SHARED => Cause::ToShared,
            sys::GUESTMEM_CAUSE_TO_GUEST_ONLY => Cause::ToGuestOnly,
            sys::GUESTMEM_CAUSE_TRUNCATE => Cause::Truncate,
            sys::GUESTMEM_CAUSE_RELEASE => Cause::Release,
            sys::GUESTMEM_CAUSE_MEMORY_FAILURE => Cause::MemoryFailure,
            other => Cause::Unknown(other),
        }
    }
}

/// Folio sizes, as the log2 of their page count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Order {
    /// One 4 KiB page.
    Page4K,
    /// 2 MiB: 512 pages.
    Huge2M,
    /// 1 GiB: 262144 pages (simulated allocator only).
    Huge1G,
}

impl Order {
    #[inline]
    pub(crate) fn to_raw(self) -> u32 {
        match self {
            Order::Page4K => sys::GUESTMEM_ORDER_4K,
            Order::Huge2M => sys::GUESTMEM_ORDER_2M,
            Order::Huge1G => sys::GUESTMEM_ORDER_1G,
        }
    }
}

/// Where an object's folios come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllocatorKind {
    /// Books only: fake frame numbers, no memory (tests, simulation).
    Simulated,
    /// A memfd of the object's size; frames are file page offsets.
    Memfd,
    /// A KVM guest_memfd made on a VM fd.
    GuestMemfd,
    /// A kind added after this crate.
    Unknown(u32),
}

impl AllocatorKind {
    #[inline]
    pub(crate) fn from_raw(v: u32) -> Self {
        match v {
            sys::GUESTMEM_ALLOC_SIMULATED => AllocatorKind::Simulated,
            sys::GUESTMEM_ALLOC_MEMFD => AllocatorKind::Memfd,
            sys::GUESTMEM_ALLOC_GUEST_MEMFD => AllocatorKind::GuestMemfd,
            other => AllocatorKind::Unknown(other),
        }
    }
}

/// What a conversion does to the pages' contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Content {
    /// Keep the bytes.
    #[default]
    Preserve,
    /// Clear the converted pages.
    Zero,
}

/// Per-conversion options ([`Memory::convert_with`](crate::Memory::convert_with)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConvertOptions {
    /// What happens to the pages' bytes.
    pub content: Content,
    /// To guest_only proceeds while pinned: pinned folios go to mappability
    /// `None` and finish when their last pin drops (the pKVM way).
    pub defer_if_pinned: bool,
}

/// What a successful fault may map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Order of the folio holding the page: the largest mapping size usable.
    pub order: u8,
    /// The folio's mappability when the fault was answered.
    pub mappability: Mappability,
    /// Frame of the faulting page (memfd, guest_memfd: the file page offset).
    pub frame: u64,
    /// First page of the folio.
    pub folio_first: u64,
    /// First frame of the folio.
    pub folio_frame: u64,
}

/// What an object is and what backs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    /// The allocator it was created with.
    pub allocator: AllocatorKind,
    /// Object size in pages.
    pub pages: u64,
    /// The largest folio order `allocate` uses (log2 of pages).
    pub max_order: u32,
    /// The memfd or guest_memfd (owned by the object; for memslots), if any.
    pub fd: Option<std::os::unix::io::RawFd>,
    /// The allocator's own `MAP_SHARED` mapping of the file, or null (simulated).
    pub data: *mut u8,
    /// Size of the file and of `data` in bytes (0: simulated).
    pub bytes: u64,
}

/// One shareability run: pages `pages` all have shareability `share`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// The pages of the run, clipped to the range asked for.
    pub pages: Range<u64>,
    /// Their shareability.
    pub share: Shareability,
}

/// Census and counters of an object (the C ABI's `guestmem_stats`; its
/// fields are documented in `guestmem.h`).
pub type Stats = sys::guestmem_stats;
