//! The safe Rust API of guestmem: one guest memory object ([`Memory`]) that
//! tracks which pages are shared or guest_only, the folios backing them and
//! the pins on them, and tells every bound [`Consumer`] (stage-2 tables,
//! IOMMU domains, device mappings) of each change in two phases — prepare
//! (may veto), then commit or abort — so a conversion is all or nothing.
//!
//! It wraps `libguestmem_c` (through `guestmem-sys`): every call maps to one
//! C call plus an error conversion; consumer callbacks come back through
//! `extern "C"` trampolines that catch panics.
//!
//! ```
//! use guestmem_tracker::{Accessor, Config, Consumer, ErrorCode, Invalidation, Memory, Shareability, Veto};
//!
//! struct Stage2;
//! impl Consumer for Stage2 {
//!     fn prepare(&self, inv: &Invalidation) -> Result<(), Veto> {
//!         if inv.pages().contains(&7) { Err(Veto::new("page 7 is an MMIO hole").at(7)) } else { Ok(()) }
//!     }
//! }
//!
//! let mem = Memory::new(&Config::simulated(16).initial(Shareability::GuestOnly)).unwrap();
//! mem.allocate(0..16).unwrap();
//! let s2 = mem.bind(Stage2, 0..16, 0x80000).unwrap();
//! mem.convert(0..4, Shareability::Shared).unwrap();
//! let err = mem.convert(4..8, Shareability::Shared).unwrap_err();
//! assert_eq!((err.code(), err.page(), err.binding()), (ErrorCode::Vetoed, Some(7), Some(s2.id())));
//! assert_eq!(mem.shareability_at(4).unwrap(), Shareability::GuestOnly); // rolled back
//! assert!(mem.pin(0..4, Accessor::Device).is_ok());
//! ```
//!
//! Threads: [`Memory`] and [`Binding`] are `Send + Sync` because the C
//! object locks internally (see [`Memory`]); consumers must be
//! `Send + Sync` because their callbacks run on whichever thread changed
//! the object. No guestmem call may be made from inside a callback.
//!
//! Naming: the crate is `guestmem-tracker`, not `guestmem`, because openvmm
//! (one of the VMMs meant to use it) already has a workspace crate named
//! `guestmem` (its guest memory accessor); the same name would force a
//! rename in every such workspace.
#![deny(missing_docs)]

mod consumer;
mod error;
mod memory;
mod types;

pub use consumer::{CommitReport, Consumer, Invalidation, Veto};
pub use error::{Error, ErrorCode};
pub use memory::{Binding, Config, Memory, Pinned};
pub use types::{
    Accessor, AllocatorKind, Cause, Content, ConvertOptions, Fault, Info, Mappability, Order, Run, Shareability, Stats,
};

/// The raw bindings this crate wraps (for calls it does not cover).
pub use guestmem_sys as sys;

/// Bytes per guest page (every page index is in 4 KiB pages).
pub const PAGE_SIZE: u64 = 4096;

/// The README's Rust quick start, compiled and run as a doc-test.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
