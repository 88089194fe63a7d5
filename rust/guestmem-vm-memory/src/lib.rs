//! vm-memory's [`Bytes<GuestAddress>`] for device emulation in a
//! confidential guest: [`GuardedMemory`] wraps a [`GuestMemory`] (e.g.
//! `GuestMemoryMmap`) and one guestmem [`Memory`] per region, and refuses
//! any access touching a guest_only page with an error naming the GPA;
//! every other access is delegated to the wrapped memory.
//!
//! Serialisation with conversions: an access first pins the pages it
//! touches (as [`Accessor::Device`] by default, [`GuardedMemory::with_accessor`]
//! changes it) and holds the pins until the bytes are copied. A pin on a
//! guest_only page is refused (`PermissionDenied`, naming the page), and a
//! conversion to guest_only of a pinned page fails with `Busy` (or, with
//! `defer_if_pinned`, leaves the folio unmappable by anyone until the
//! access unpins), so a device never reads a page the guest already uses
//! as private. Cost: one
//! pin and one unpin (each one lock round trip in libguestmem_c) per region
//! touched per access.
//!
//! The pages must be allocated in the guestmem object (a hole refuses the
//! access with `NotAllocated`). With [`GuardedMemory::from_memfd`] the
//! bytes *are* the guestmem object's memfd, so what a conversion does to
//! the contents (zeroing) is what devices see.
//!
//! [`GuardedMemory::inner`] gives the wrapped memory back for accesses that
//! must bypass the check (the VMM's own loader before the guest runs); a
//! device model should only get the `GuardedMemory`.
#![deny(missing_docs)]

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::io::{AsRawFd, BorrowedFd};
use std::sync::atomic::Ordering;

use guestmem_tracker::{Accessor, Memory, Pinned, Shareability, PAGE_SIZE};
use vm_memory::{
    AtomicAccess, Bytes, FileOffset, GuestAddress, GuestMemory, GuestMemoryError, GuestMemoryMmap, GuestMemoryRegion,
};

/// Why an access or a setup failed.
#[derive(Debug)]
pub enum Error {
    /// guestmem refused the access at guest-physical address `gpa`: the page
    /// is guest_only (`PermissionDenied`), a hole, poisoned or draining.
    Refused {
        /// The first refused guest-physical address of the access.
        gpa: GuestAddress,
        /// guestmem's error (code, page within its object, message).
        source: guestmem_tracker::Error,
    },
    /// The wrapped memory's own error (address outside guest memory, I/O).
    Memory(GuestMemoryError),
    /// The regions and the guestmem objects given do not match.
    Setup(String),
}

impl Error {
    /// True if the access was refused because it touched a guest_only page.
    pub fn is_guest_only(&self) -> bool {
        matches!(self, Error::Refused { source, .. } if source.code() == guestmem_tracker::ErrorCode::PermissionDenied)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused { gpa, source } if self.is_guest_only() => {
                write!(f, "device access to GPA {:#x} refused: the page is guest_only ({})", gpa.0, source)
            }
            Error::Refused { gpa, source } => write!(f, "device access to GPA {:#x} refused: {}", gpa.0, source),
            Error::Memory(e) => write!(f, "guest memory: {}", e),
            Error::Setup(s) => write!(f, "guest memory setup: {}", s),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Refused { source, .. } => Some(source),
            Error::Memory(e) => Some(e),
            Error::Setup(_) => None,
        }
    }
}

impl From<GuestMemoryError> for Error {
    fn from(e: GuestMemoryError) -> Self {
        Error::Memory(e)
    }
}

struct Region {
    start: u64,
    end: u64,
    mem: Memory,
}

/// A [`GuestMemory`] whose [`Bytes`] accesses are checked against guestmem:
/// see the crate documentation. `Send`/`Sync` when the wrapped memory is.
pub struct GuardedMemory<M: GuestMemory> {
    inner: M,
    regions: Vec<Region>,
    who: Accessor,
}

impl<M: GuestMemory> GuardedMemory<M> {
    /// Wraps `inner`; `memories[i]` tracks its i-th region (in address
    /// order) and must have exactly the region's size in pages.
    ///
    /// Errors: `Setup` (a count or size mismatch, a region not page-aligned).
    pub fn new(inner: M, memories: Vec<Memory>) -> Result<Self, Error> {
        if memories.len() != inner.num_regions() {
            return Err(Error::Setup(format!(
                "{} guestmem objects for {} regions",
                memories.len(),
                inner.num_regions()
            )));
        }
        let mut regions = Vec::with_capacity(memories.len());
        for (r, mem) in inner.iter().zip(memories) {
            let start = r.start_addr().0;
            let len = r.len();
            if start % PAGE_SIZE != 0 || len % PAGE_SIZE != 0 || mem.pages().checked_mul(PAGE_SIZE) != Some(len) {
                return Err(Error::Setup(format!(
                    "region at GPA {:#x} of {:#x} bytes: guestmem object of {} pages does not match \
                     (regions must be page-aligned and the same size)",
                    start,
                    len,
                    mem.pages()
                )));
            }
            regions.push(Region { start, end: start + len, mem });
        }
        regions.sort_by_key(|r| r.start);
        Ok(GuardedMemory { inner, regions, who: Accessor::Device })
    }

    /// The accessor the pins are taken for (default: `Device`; a trusted
    /// device or the hypervisor may reach guest_only pages).
    pub fn with_accessor(mut self, who: Accessor) -> Self {
        self.who = who;
        self
    }

    /// The wrapped memory: accesses through it are NOT checked.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The guestmem object of the region holding `gpa`, and the page of
    /// `gpa` within it.
    pub fn memory_at(&self, gpa: GuestAddress) -> Option<(&Memory, u64)> {
        let r = self.region_of(gpa.0)?;
        Some((&r.mem, (gpa.0 - r.start) / PAGE_SIZE))
    }

    /// The guestmem objects, one per region in address order.
    pub fn memories(&self) -> impl Iterator<Item = (GuestAddress, &Memory)> {
        self.regions.iter().map(|r| (GuestAddress(r.start), &r.mem))
    }

    /// Converts the pages covering `[gpa, gpa + len)` (one region) to `to`.
    ///
    /// Errors: `Memory(InvalidGuestAddress)` (not inside one region);
    /// `Refused` with guestmem's conversion error (`Vetoed`, `Busy`, ...).
    pub fn convert(&self, gpa: GuestAddress, len: u64, to: Shareability) -> Result<(), Error> {
        let r = self.region_of(gpa.0).ok_or(GuestMemoryError::InvalidGuestAddress(gpa))?;
        let end = gpa.0.checked_add(len).filter(|&e| e <= r.end && len > 0);
        let end = end.ok_or(GuestMemoryError::InvalidGuestAddress(gpa))?;
        let pages = (gpa.0 - r.start) / PAGE_SIZE..(end - r.start + PAGE_SIZE - 1) / PAGE_SIZE;
        r.mem.convert(pages, to).map_err(|e| Error::Refused { gpa: page_gpa(r, &e, gpa.0), source: e })
    }

    fn region_of(&self, gpa: u64) -> Option<&Region> {
        let i = self.regions.partition_point(|r| r.end <= gpa);
        self.regions.get(i).filter(|r| r.start <= gpa)
    }

    /// Pins every page of `[addr, addr + len)` that a region covers, or
    /// names the first refused GPA.
    fn pin(&self, addr: u64, len: usize) -> Result<Pins<'_>, Error> {
        let mut pins = Pins { first: None, more: Vec::new() };
        if len == 0 {
            return Ok(pins);
        }
        let end = addr.saturating_add(len as u64);
        let mut i = self.regions.partition_point(|r| r.end <= addr);
        while let Some(r) = self.regions.get(i) {
            if r.start >= end {
                break;
            }
            let lo = addr.max(r.start);
            let hi = end.min(r.end);
            let pages = (lo - r.start) / PAGE_SIZE..(hi - r.start + PAGE_SIZE - 1) / PAGE_SIZE;
            let pin = r.mem.pin(pages, self.who).map_err(|e| Error::Refused { gpa: page_gpa(r, &e, lo), source: e })?;
            if pins.first.is_none() {
                pins.first = Some(pin);
            } else {
                pins.more.push(pin);
            }
            i += 1;
        }
        Ok(pins)
    }
}

/// The GPA an error of region `r` names: its page's, or `lo` if that is later.
fn page_gpa(r: &Region, e: &guestmem_tracker::Error, lo: u64) -> GuestAddress {
    GuestAddress(e.page().map_or(lo, |p| (r.start + p * PAGE_SIZE).max(lo)))
}

/// The pins an access holds (most accesses touch one region: no allocation).
struct Pins<'a> {
    first: Option<Pinned<'a>>,
    more: Vec<Pinned<'a>>,
}

impl GuardedMemory<GuestMemoryMmap> {
    /// Maps each guestmem object's memfd (`Config::memfd`, or a guest_memfd
    /// with mmap support) at its GPA, so devices see the very bytes guestmem
    /// tracks.
    ///
    /// Errors: `Setup` (an object without an fd; mmap failure; overlapping
    /// regions).
    pub fn from_memfd(regions: Vec<(GuestAddress, Memory)>) -> Result<Self, Error> {
        let mut ranges = Vec::with_capacity(regions.len());
        let mut memories = Vec::with_capacity(regions.len());
        let mut sorted = regions;
        sorted.sort_by_key(|(gpa, _)| gpa.0);
        for (gpa, mem) in sorted {
            let info = mem.info();
            let fd = info.fd.ok_or_else(|| Error::Setup(format!("guestmem object at GPA {:#x} has no fd", gpa.0)))?;
            // SAFETY: the fd is the object's, open while `mem` lives; it is
            // only duplicated here.
            let owned = unsafe { BorrowedFd::borrow_raw(fd) }
                .try_clone_to_owned()
                .map_err(|e| Error::Setup(format!("dup of the guestmem fd {}: {}", fd, e)))?;
            let file = File::from(owned);
            debug_assert!(file.as_raw_fd() >= 0);
            ranges.push((gpa, info.bytes as usize, Some(FileOffset::new(file, 0))));
            memories.push(mem);
        }
        let inner = GuestMemoryMmap::from_ranges_with_files(ranges).map_err(|e| Error::Setup(e.to_string()))?;
        Self::new(inner, memories)
    }
}

impl<M: GuestMemory> Bytes<GuestAddress> for GuardedMemory<M> {
    type E = Error;

    fn write(&self, buf: &[u8], addr: GuestAddress) -> Result<usize, Error> {
        let _pins = self.pin(addr.0, buf.len())?;
        Ok(self.inner.write(buf, addr)?)
    }

    fn read(&self, buf: &mut [u8], addr: GuestAddress) -> Result<usize, Error> {
        let _pins = self.pin(addr.0, buf.len())?;
        Ok(self.inner.read(buf, addr)?)
    }

    fn write_slice(&self, buf: &[u8], addr: GuestAddress) -> Result<(), Error> {
        let _pins = self.pin(addr.0, buf.len())?;
        Ok(self.inner.write_slice(buf, addr)?)
    }

    fn read_slice(&self, buf: &mut [u8], addr: GuestAddress) -> Result<(), Error> {
        let _pins = self.pin(addr.0, buf.len())?;
        Ok(self.inner.read_slice(buf, addr)?)
    }

    fn read_from<F: Read>(&self, addr: GuestAddress, src: &mut F, count: usize) -> Result<usize, Error> {
        let _pins = self.pin(addr.0, count)?;
        Ok(self.inner.read_from(addr, src, count)?)
    }

    fn read_exact_from<F: Read>(&self, addr: GuestAddress, src: &mut F, count: usize) -> Result<(), Error> {
        let _pins = self.pin(addr.0, count)?;
        Ok(self.inner.read_exact_from(addr, src, count)?)
    }

    fn write_to<F: Write>(&self, addr: GuestAddress, dst: &mut F, count: usize) -> Result<usize, Error> {
        let _pins = self.pin(addr.0, count)?;
        Ok(self.inner.write_to(addr, dst, count)?)
    }

    fn write_all_to<F: Write>(&self, addr: GuestAddress, dst: &mut F, count: usize) -> Result<(), Error> {
        let _pins = self.pin(addr.0, count)?;
        Ok(self.inner.write_all_to(addr, dst, count)?)
    }

    fn store<T: AtomicAccess>(&self, val: T, addr: GuestAddress, order: Ordering) -> Result<(), Error> {
        let _pins = self.pin(addr.0, std::mem::size_of::<T>())?;
        Ok(self.inner.store(val, addr, order)?)
    }

    fn load<T: AtomicAccess>(&self, addr: GuestAddress, order: Ordering) -> Result<T, Error> {
        let _pins = self.pin(addr.0, std::mem::size_of::<T>())?;
        Ok(self.inner.load(addr, order)?)
    }
}
