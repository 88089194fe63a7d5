//! [`Memory`], the owner of one guest memory object, and the guards that
//! borrow it: [`Binding`] (a consumer bound to pages; unbinds on drop) and
//! [`Pinned`] (pins on pages; unpins on drop).
use std::ffi::CString;
use std::ops::Range;
use std::os::raw::c_void;
use std::os::unix::io::RawFd;
use std::ptr::{self, NonNull};

use guestmem_sys as sys;

use crate::consumer::{self, Consumer};
use crate::error::{check, raw_error, Error, ErrorCode};
use crate::types::*;

/// How to create an object: the allocator, the size in 4 KiB pages and the
/// options that differ from the defaults (all pages shared, 4 KiB folios).
#[derive(Clone, Copy)]
pub struct Config {
    raw: sys::guestmem_config,
}

impl Config {
    fn with(allocator: u32, pages: u64) -> Self {
        // SAFETY: guestmem_config is plain data; all-zero is its default.
        let mut raw: sys::guestmem_config = unsafe { std::mem::zeroed() };
        raw.size = std::mem::size_of::<sys::guestmem_config>() as u32;
        raw.allocator = allocator;
        raw.pages = pages;
        Config { raw }
    }

    /// A simulated object (books only, fake frames) of `pages` pages.
    pub fn simulated(pages: u64) -> Self {
        Self::with(sys::GUESTMEM_ALLOC_SIMULATED, pages)
    }

    /// An object backed by a memfd of `pages` pages (frames: file pages).
    pub fn memfd(pages: u64) -> Self {
        Self::with(sys::GUESTMEM_ALLOC_MEMFD, pages)
    }

    /// An object backed by a KVM guest_memfd of `pages` pages, made on the
    /// VM fd `vm_fd` (used during creation only; not owned).
    pub fn guest_memfd(pages: u64, vm_fd: RawFd) -> Self {
        let mut c = Self::with(sys::GUESTMEM_ALLOC_GUEST_MEMFD, pages);
        c.raw.vm_fd = vm_fd;
        c
    }

    /// The shareability every page starts with (default: shared).
    pub fn initial(mut self, share: Shareability) -> Self {
        self.raw.initial = share.to_raw();
        self
    }

    /// The largest folio `allocate` uses (default: 4 KiB).
    pub fn max_order(mut self, order: Order) -> Self {
        self.raw.max_order = order.to_raw();
        self
    }

    /// guest_memfd only: `GUEST_MEMFD_FLAG_*` (0: MMAP | INIT_SHARED).
    pub fn guest_memfd_flags(mut self, flags: u64) -> Self {
        self.raw.guest_memfd_flags = flags;
        self
    }

    /// Simulated only: capacity in pages (0: unlimited).
    pub fn simulated_capacity(mut self, pages: u64) -> Self {
        self.raw.simulated_capacity = pages;
        self
    }
}

/// One guest memory object: which pages are shared or guest_only, the folios
/// backing them, the pins on them and the consumers told of every change.
///
/// Threads: `Memory` is `Send` and `Sync`. The C object locks internally
/// (faults and queries take its shared lock, everything that changes it the
/// exclusive one), so every `&self` method may run on any thread at once;
/// [`Memory::runs`] takes no lock in C, hence `&mut self` here.
///
/// Drop: every binding was already dropped (the borrow checker sees to it);
/// the C object is destroyed, then the folios and the allocator go.
pub struct Memory {
    raw: NonNull<sys::guestmem_memory>,
    pages: u64,
}

// SAFETY: the C object's functions may be called from any thread, and all
// but guestmem_runs concurrently (they lock); runs needs &mut self.
unsafe impl Send for Memory {}
// SAFETY: as above.
unsafe impl Sync for Memory {}

/// Refuses a call from inside a consumer callback (the object's lock is held).
#[inline]
fn not_in_callback() -> Result<(), Error> {
    if consumer::in_callback() {
        Err(Error::new(
            ErrorCode::InvalidArgument,
            "a guestmem call from inside a consumer callback would deadlock on the object's lock",
        ))
    } else {
        Ok(())
    }
}

impl Memory {
    /// Creates an object as `config` says.
    ///
    /// Errors: `InvalidArgument` (0 pages, a bad max_order or vm_fd),
    /// `NotSupported` (an order the allocator cannot do; no guest_memfd),
    /// `OutOfMemory`, the memfd's or guest_memfd's system errors.
    pub fn new(config: &Config) -> Result<Memory, Error> {
        not_in_callback()?;
        let mut err = raw_error();
        let mut out = ptr::null_mut();
        // SAFETY: valid config and out-pointers.
        let rc = unsafe { sys::guestmem_create(&config.raw, &mut out, err.ptr()) };
        check(rc, &err)?;
        let raw = NonNull::new(out).ok_or_else(|| Error::new(ErrorCode::OutOfMemory, "guestmem_create gave NULL"))?;
        Ok(Memory { raw, pages: config.raw.pages })
    }

    /// The raw handle, for calls this crate does not wrap. It stays owned by
    /// `self`: do not destroy it.
    pub fn as_raw(&self) -> *mut sys::guestmem_memory {
        self.raw.as_ptr()
    }

    /// Object size in 4 KiB pages.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// What the object is and what backs it (the fd for memslots, the mapping).
    pub fn info(&self) -> Info {
        let mut err = raw_error();
        // SAFETY: zeroed plain data, size set; a valid object.
        let mut raw: sys::guestmem_info = unsafe { std::mem::zeroed() };
        raw.size = std::mem::size_of::<sys::guestmem_info>() as u32;
        let rc = unsafe { sys::guestmem_get_info(self.raw.as_ptr(), &mut raw, err.ptr()) };
        debug_assert_eq!(rc, 0, "guestmem_get_info cannot fail with a valid object");
        Info {
            allocator: AllocatorKind::from_raw(raw.allocator),
            pages: raw.pages,
            max_order: raw.max_order,
            fd: (raw.fd >= 0).then(|| raw.fd),
            data: raw.data.cast(),
            bytes: raw.bytes,
        }
    }

    /// Backs every hole in `pages` with folios (fallocate), all or nothing.
    ///
    /// Errors: `InvalidRange`; `Poisoned` (a quarantined page); `OutOfMemory`;
    /// the allocator's errors.
    pub fn allocate(&self, pages: Range<u64>) -> Result<(), Error> {
        not_in_callback()?;
        let mut err = raw_error();
        // SAFETY: a valid object and error.
        check(unsafe { sys::guestmem_allocate(self.raw.as_ptr(), pages.start, pages.end, err.ptr()) }, &err)
    }

    /// Truncates `pages` (fallocate PUNCH_HOLE); consumers are told, not asked.
    ///
    /// Errors: `InvalidRange` (empty, inverted, or ending past 2^63 bytes).
    pub fn punch_hole(&self, pages: Range<u64>) -> Result<(), Error> {
        not_in_callback()?;
        let mut err = raw_error();
        // SAFETY: as above.
        check(unsafe { sys::guestmem_punch_hole(self.raw.as_ptr(), pages.start, pages.end, err.ptr()) }, &err)
    }

    /// Frees the quarantined folios overlapping `pages`, once the consumer
    /// that reported them has really dropped them.
    ///
    /// Errors: `InvalidRange`; `Busy` (such a folio is still pinned).
    pub fn release_quarantine(&self, pages: Range<u64>) -> Result<(), Error> {
        not_in_callback()?;
        let mut err = raw_error();
        // SAFETY: as above.
        check(unsafe { sys::guestmem_release_quarantine(self.raw.as_ptr(), pages.start, pages.end, err.ptr()) }, &err)
    }

    /// Changes every page of `pages` to `to`, all or nothing, preserving the
    /// contents. Every bound consumer overlapping them prepares, then commits
    /// (or, after a veto, the ones that prepared abort).
    ///
    /// Errors, in order: `InvalidRange`; `Poisoned`; `OutOfMemory`; `Busy`
    /// (to guest_only over a pinned page); `Vetoed` (with the binding).
    /// A range already all `to` succeeds at once.
    pub fn convert(&self, pages: Range<u64>, to: Shareability) -> Result<(), Error> {
        not_in_callback()?;
        let mut err = raw_error();
        // SAFETY: a valid object and error; NULL options mean the defaults.
        let rc = unsafe {
            sys::guestmem_convert(self.raw.as_ptr(), pages.start, pages.end, to.to_raw(), ptr::null(), err.ptr())
        };
        check(rc, &err)
    }

    /// [`Memory::convert`] with options (zeroing, deferring over pins).
    pub fn convert_with(&self, pages: Range<u64>, to: Shareability, opts: &ConvertOptions) -> Result<(), Error> {
        not_in_callback()?;
        // SAFETY: plain data; all-zero means the defaults.
        let mut raw_opts: sys::guestmem_convert_options = unsafe { std::mem::zeroed() };
        raw_opts.size = std::mem::size_of::<sys::guestmem_convert_options>() as u32;
        raw_opts.content = match opts.content {
            Content::Preserve => sys::GUESTMEM_CONTENT_PRESERVE,
            Content::Zero => sys::GUESTMEM_CONTENT_ZERO,
        };
        raw_opts.defer_if_pinned = u8::from(opts.defer_if_pinned);
        let mut err = raw_error();
        // SAFETY: valid object, options and error.
        let rc = unsafe {
            sys::guestmem_convert(self.raw.as_ptr(), pages.start, pages.end, to.to_raw(), &raw_opts, err.ptr())
        };
        check(rc, &err)
    }

    /// Looks up `page` for a mapping of shareability `wanted` by `who`. Pair
    /// it with [`Binding::read_begin`] / [`Binding::read_retry`].
    ///
    /// Errors: `InvalidRange`; `PermissionDenied`; `NotAllocated`;
    /// `Poisoned`; `Retry` (pins still drain: fault again).
    pub fn fault(&self, page: u64, wanted: Shareability, who: Accessor) -> Result<Fault, Error> {
        not_in_callback()?;
        let mut err = raw_error();
        // SAFETY: zeroed plain data, size set.
        let mut out: sys::guestmem_fault_result = unsafe { std::mem::zeroed() };
        out.size = std::mem::size_of::<sys::guestmem_fault_result>() as u32;
        // SAFETY: valid object, out and error.
        let rc =
            unsafe { sys::guestmem_fault(self.raw.as_ptr(), page, wanted.to_raw(), who.to_raw(), &mut out, err.ptr()) };
        check(rc, &err)?;
        Ok(Fault {
            order: out.order,
            mappability: Mappability::from_raw(u32::from(out.mappability)),
            frame: out.frame,
            folio_first: out.folio_first,
            folio_frame: out.folio_frame,
        })
    }

    /// Takes one pin (GUP, IOMMU, I/O in flight) on every page of `pages` for
    /// `who`, all or nothing; the guard drops it. While pinned, a conversion
    /// to guest_only of those pages fails with `Busy`.
    ///
    /// Errors: `InvalidRange`; `PermissionDenied` (a guest_only page, for the
    /// host or a device: the page names it); `Busy`; `NotAllocated`;
    /// `Poisoned`; `OutOfMemory`.
    pub fn pin(&self, pages: Range<u64>, who: Accessor) -> Result<Pinned<'_>, Error> {
        not_in_callback()?;
        let mut err = raw_error();
        // SAFETY: a valid object and error.
        let rc = unsafe { sys::guestmem_pin(self.raw.as_ptr(), pages.start, pages.end, who.to_raw(), err.ptr()) };
        check(rc, &err)?;
        Ok(Pinned { mem: self, pages })
    }

    /// A hardware error hit `page`: poisons its leaf folio and tells every
    /// binding overlapping it, once.
    ///
    /// Errors: `InvalidRange`; `NotAllocated` (a hole).
    pub fn memory_failure(&self, page: u64) -> Result<(), Error> {
        not_in_callback()?;
        let mut err = raw_error();
        // SAFETY: a valid object and error.
        check(unsafe { sys::guestmem_memory_failure(self.raw.as_ptr(), page, err.ptr()) }, &err)
    }

    /// Binds `consumer` over object pages `pages`, translated to
    /// `target_base` in the consumer's own numbers (a GFN, an IOVA / 4K).
    /// The guard owns the consumer and unbinds it when dropped; it cannot
    /// outlive `self`.
    ///
    /// Errors: `InvalidRange` (also a target range passing 2^64);
    /// `OutOfMemory`.
    pub fn bind<C: Consumer>(&self, consumer: C, pages: Range<u64>, target_base: u64) -> Result<Binding<'_, C>, Error> {
        not_in_callback()?;
        let name = consumer.name();
        let name = CString::new(name.split('\0').next().unwrap_or("")).unwrap_or_default();
        // Zeroed, then filled: members a later ABI appends (hooks for views)
        // stay NULL, which means "nothing to do".
        // SAFETY: plain data; all-zero is a valid (empty) table.
        let mut ops: sys::guestmem_consumer_ops = unsafe { std::mem::zeroed() };
        ops.size = std::mem::size_of::<sys::guestmem_consumer_ops>() as u32;
        ops.prepare = Some(consumer::prepare_trampoline::<C>);
        ops.commit = Some(consumer::commit_trampoline::<C>);
        ops.abort = Some(consumer::abort_trampoline::<C>);
        ops.memory_failure = Some(consumer::memory_failure_trampoline::<C>);
        ops.name = name.as_ptr();
        let boxed = Box::into_raw(Box::new(consumer));
        let mut id = 0u64;
        let mut handle = ptr::null_mut();
        let mut err = raw_error();
        // SAFETY: ops and name live through the call (the library copies
        // them); ctx is the box, alive until the binding's unbind returns.
        let rc = unsafe {
            sys::guestmem_bind(
                self.raw.as_ptr(),
                &ops,
                boxed.cast::<c_void>(),
                pages.start,
                pages.end,
                target_base,
                &mut id,
                &mut handle,
                err.ptr(),
            )
        };
        if let Err(e) = check(rc, &err) {
            // SAFETY: not bound: no one else holds the pointer.
            drop(unsafe { Box::from_raw(boxed) });
            return Err(e);
        }
        Ok(Binding { mem: self, consumer: boxed, id, handle })
    }

    /// The shareability of `page`. Errors: `InvalidRange`.
    pub fn shareability_at(&self, page: u64) -> Result<Shareability, Error> {
        not_in_callback()?;
        let mut err = raw_error();
        let mut out = 0u32;
        // SAFETY: valid object, out and error.
        check(unsafe { sys::guestmem_shareability_at(self.raw.as_ptr(), page, &mut out, err.ptr()) }, &err)?;
        Ok(Shareability::from_raw(out))
    }

    /// The mappability of the folio holding `page`. Errors: `InvalidRange`;
    /// `NotAllocated`.
    pub fn mappability_at(&self, page: u64) -> Result<Mappability, Error> {
        not_in_callback()?;
        let mut err = raw_error();
        let mut out = 0u32;
        // SAFETY: valid object, out and error.
        check(unsafe { sys::guestmem_mappability_at(self.raw.as_ptr(), page, &mut out, err.ptr()) }, &err)?;
        Ok(Mappability::from_raw(out))
    }

    /// The pins on `page` (0 past the end).
    pub fn pins(&self, page: u64) -> u32 {
        let mut err = raw_error();
        let mut out = 0u32;
        // SAFETY: valid object, out and error (cannot fail with them).
        unsafe { sys::guestmem_pins(self.raw.as_ptr(), page, &mut out, err.ptr()) };
        out
    }

    /// The shareability runs overlapping `pages`, clipped to it. Takes no
    /// lock in C, so it needs the object to itself: `&mut self` (no binding
    /// or pin guard may be alive; see [`Memory::shareability_at`] for a
    /// locked per-page query).
    ///
    /// Errors: `InvalidRange`.
    pub fn runs(&mut self, pages: Range<u64>) -> Result<Vec<Run>, Error> {
        not_in_callback()?;
        unsafe extern "C" fn push(ctx: *mut c_void, begin: u64, end: u64, share: u32) -> i32 {
            // SAFETY: ctx is the Vec below, alive through the call.
            let runs = &mut *(ctx as *mut Vec<Run>);
            runs.push(Run { pages: begin..end, share: Shareability::from_raw(share) });
            0
        }
        let mut runs: Vec<Run> = Vec::new();
        let mut err = raw_error();
        // SAFETY: exclusive access to the object; push only touches `runs`.
        let rc = unsafe {
            sys::guestmem_runs(
                self.raw.as_ptr(),
                pages.start,
                pages.end,
                Some(push),
                (&mut runs as *mut Vec<Run>).cast(),
                err.ptr(),
            )
        };
        check(rc, &err)?;
        Ok(runs)
    }

    /// Census and counters.
    pub fn stats(&self) -> Stats {
        let mut err = raw_error();
        // SAFETY: zeroed plain data, size set.
        let mut out: Stats = unsafe { std::mem::zeroed() };
        out.size = std::mem::size_of::<Stats>() as u32;
        // SAFETY: valid object, out and error (cannot fail with them).
        unsafe { sys::guestmem_get_stats(self.raw.as_ptr(), &mut out, err.ptr()) };
        out
    }

    /// A readable map of runs, folios and consumers.
    pub fn dump(&self) -> String {
        unsafe extern "C" fn append(ctx: *mut c_void, data: *const std::os::raw::c_char, len: usize) {
            // SAFETY: ctx is the Vec below; data holds len bytes.
            let out = &mut *(ctx as *mut Vec<u8>);
            out.extend_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), len));
        }
        if consumer::in_callback() {
            return String::new();
        }
        let mut out: Vec<u8> = Vec::new();
        let mut err = raw_error();
        // SAFETY: valid object; append only touches `out`.
        unsafe { sys::guestmem_dump_to(self.raw.as_ptr(), Some(append), (&mut out as *mut Vec<u8>).cast(), err.ptr()) };
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: owned; no binding or pin guard is alive (they borrow self);
        // a leaked (mem::forget) binding's consumer is 'static and leaked too,
        // so the release destroy sends it is still valid.
        unsafe { sys::guestmem_destroy(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory").field("pages", &self.pages).finish()
    }
}

/// A consumer bound to pages of a [`Memory`]: owns the consumer, unbinds on
/// drop (the consumer gets its release first), cannot outlive the `Memory`.
/// `Send` and `Sync` (the consumer is, and the sequence reads are lock-free).
/// Dropping one inside a consumer callback aborts the process (the unbind
/// would deadlock on the object's lock). `mem::forget` of a binding leaks
/// its consumer, which the `Memory`'s drop still releases.
///
/// The borrow checker, not a run-time check, keeps a binding from
/// outliving its object:
///
/// ```compile_fail
/// # use guestmem_tracker::{Config, Consumer, Memory};
/// struct Nop;
/// impl Consumer for Nop {}
/// let mem = Memory::new(&Config::simulated(8)).unwrap();
/// let binding = mem.bind(Nop, 0..8, 0).unwrap();
/// drop(mem); // error: `mem` is still borrowed by `binding`
/// drop(binding);
/// ```
pub struct Binding<'m, C: Consumer> {
    mem: &'m Memory,
    consumer: *mut C,
    id: u64,
    handle: *mut sys::guestmem_binding,
}

// SAFETY: C is Send + Sync; the handle is only read with the lock-free,
// thread-safe guestmem_read_begin/read_retry; unbind may run on any thread.
unsafe impl<C: Consumer> Send for Binding<'_, C> {}
// SAFETY: as above.
unsafe impl<C: Consumer> Sync for Binding<'_, C> {}

impl<'m, C: Consumer> Binding<'m, C> {
    /// The binding id (what invalidations and veto errors name).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The consumer (callbacks may run on it meanwhile, from other threads).
    pub fn consumer(&self) -> &C {
        // SAFETY: the box lives until drop; only shared references exist.
        unsafe { &*self.consumer }
    }

    /// The binding's sequence, read before a fault (odd while an
    /// invalidation over it is in flight). Lock-free.
    pub fn read_begin(&self) -> u64 {
        // SAFETY: the handle is valid while the binding is.
        unsafe { sys::guestmem_read_begin(self.handle) }
    }

    /// True if an invalidation was in flight at `read_begin` or has run since
    /// `seq`: drop the fault's answer and fault again. Lock-free.
    pub fn read_retry(&self, seq: u64) -> bool {
        // SAFETY: as above.
        unsafe { sys::guestmem_read_retry(self.handle, seq) != 0 }
    }

    /// Unbinds now (the consumer gets its release) and gives the consumer back.
    pub fn unbind(self) -> C {
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: ownership moves out of `me`, which is never dropped.
        let consumer = unsafe { me.release() };
        // SAFETY: unbound: the library no longer holds the pointer.
        *unsafe { Box::from_raw(consumer) }
    }

    /// Unbinds and returns the consumer's box pointer (still owned).
    ///
    /// # Safety
    /// Called once, from `drop` or `unbind`.
    unsafe fn release(&self) -> *mut C {
        if consumer::in_callback() {
            eprintln!("guestmem-tracker: a binding dropped inside a consumer callback would deadlock on the object's lock; aborting");
            std::process::abort();
        }
        let mut err = raw_error();
        let rc = sys::guestmem_unbind(self.mem.raw.as_ptr(), self.id, err.ptr());
        if rc != 0 {
            // Cannot happen with a live object and this id; never free a
            // consumer the library may still call.
            eprintln!("guestmem-tracker: unbind failed: {}; aborting", Error::from_raw(rc, &err));
            std::process::abort();
        }
        self.consumer
    }
}

impl<C: Consumer> Drop for Binding<'_, C> {
    fn drop(&mut self) {
        // SAFETY: called once; the box is ours once unbound.
        unsafe { drop(Box::from_raw(self.release())) }
    }
}

/// One pin on each page of a range of a [`Memory`], dropped with the guard.
/// Like a [`Binding`], it borrows the object, so no `&mut self` call such as
/// [`Memory::runs`] can run while pages are pinned:
///
/// ```compile_fail
/// # use guestmem_tracker::{Accessor, Config, Memory};
/// let mut mem = Memory::new(&Config::simulated(8)).unwrap();
/// mem.allocate(0..8).unwrap();
/// let pin = mem.pin(0..1, Accessor::Host).unwrap();
/// let runs = mem.runs(0..8); // error: `mem` is borrowed by `pin`
/// drop(pin);
/// ```
#[must_use = "the pin is dropped at once if the guard is not kept"]
pub struct Pinned<'m> {
    mem: &'m Memory,
    pages: Range<u64>,
}

impl<'m> Pinned<'m> {
    /// The pinned pages.
    pub fn pages(&self) -> Range<u64> {
        self.pages.clone()
    }

    /// Drops the pins now. Errors: `OutOfMemory` (finishing deferred work
    /// needed memory), `InvalidArgument` (called inside a consumer
    /// callback): the pins stay and the guard comes back to retry.
    pub fn unpin(self) -> Result<(), (Pinned<'m>, Error)> {
        let me = std::mem::ManuallyDrop::new(self);
        match me.try_unpin() {
            Ok(()) => Ok(()),
            Err(e) => Err((Pinned { mem: me.mem, pages: me.pages.clone() }, e)),
        }
    }

    fn try_unpin(&self) -> Result<(), Error> {
        not_in_callback()?;
        let mut err = raw_error();
        // SAFETY: a valid object; these pages hold our pin.
        check(unsafe { sys::guestmem_unpin(self.mem.raw.as_ptr(), self.pages.start, self.pages.end, err.ptr()) }, &err)
    }
}

impl Drop for Pinned<'_> {
    /// Drops the pins; if that runs out of memory they stay (the pages
    /// remain pinned: use [`Pinned::unpin`] to see and retry the error).
    fn drop(&mut self) {
        if let Err(e) = self.try_unpin() {
            eprintln!("guestmem-tracker: unpin of pages {:?} failed: {}; the pins stay", self.pages, e);
        }
    }
}

impl<C: Consumer> std::fmt::Debug for Binding<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binding").field("id", &self.id).finish()
    }
}

impl std::fmt::Debug for Pinned<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pinned").field("pages", &self.pages).finish()
    }
}
