//! Consumers written in Rust: the [`Consumer`] trait, what it is told
//! ([`Invalidation`]), how it refuses ([`Veto`]) and reports pages it could
//! not drop ([`CommitReport`]), and the `extern "C"` trampolines that call
//! it from libguestmem_c without letting a panic unwind into C.
use std::any::Any;
use std::marker::PhantomData;
use std::ops::Range;
use std::os::raw::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use guestmem_sys as sys;

use crate::error::ErrorCode;
use crate::types::{Cause, Shareability};

/// One consumer's view of one invalidation, clipped to one of its bindings:
/// a zero-copy view of the library's `guestmem_invalidation`, valid during
/// the callback.
#[repr(transparent)]
pub struct Invalidation(sys::guestmem_invalidation);

impl Invalidation {
    /// Views the library's struct (every field exists from ABI 0.1 on).
    ///
    /// # Safety
    /// `raw` is valid for `'a`.
    #[inline]
    unsafe fn from_raw<'a>(raw: *const sys::guestmem_invalidation) -> &'a Invalidation {
        &*(raw as *const Invalidation)
    }

    /// Why the consumer is told (an unknown cause is to be treated as `Release`).
    #[inline]
    pub fn cause(&self) -> Cause {
        Cause::from_raw(self.0.cause)
    }

    /// Object pages, clipped to the binding.
    #[inline]
    pub fn pages(&self) -> Range<u64> {
        self.0.page_begin..self.0.page_end
    }

    /// The same pages in the consumer's own numbers (GFN, IOVA / 4K, ...).
    #[inline]
    pub fn targets(&self) -> Range<u64> {
        self.0.target_begin..self.0.target_end
    }

    /// The binding's sequence while this is in flight (odd).
    #[inline]
    pub fn sequence(&self) -> u64 {
        self.0.sequence
    }

    /// The binding this is about.
    #[inline]
    pub fn binding(&self) -> u64 {
        self.0.binding_id
    }

    /// True in the prepare, commit and abort of a conversion.
    #[inline]
    pub fn vetoable(&self) -> bool {
        self.0.vetoable != 0
    }

    /// Memory failure: order of the failed folio.
    #[inline]
    pub fn order(&self) -> u8 {
        self.0.order
    }

    /// Memory failure: the failed folio's shareability.
    #[inline]
    pub fn share(&self) -> Shareability {
        Shareability::from_raw(u32::from(self.0.share))
    }
}

impl std::fmt::Debug for Invalidation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invalidation")
            .field("cause", &self.cause())
            .field("pages", &self.pages())
            .field("targets", &self.targets())
            .field("binding", &self.binding())
            .field("sequence", &self.sequence())
            .finish()
    }
}

/// A consumer's refusal of a conversion, returned from [`Consumer::prepare`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Veto {
    /// The code the conversion fails with (`Vetoed` is the usual).
    pub code: ErrorCode,
    /// The page to blame (None: the invalidation's first page).
    pub page: Option<u64>,
    /// Why, in the consumer's terms (at most 159 bytes are kept).
    pub message: String,
}

impl Veto {
    /// A `Vetoed` refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Veto { code: ErrorCode::Vetoed, page: None, message: message.into() }
    }

    /// The same refusal, blaming `page`.
    pub fn at(mut self, page: u64) -> Self {
        self.page = Some(page);
        self
    }
}

/// Where [`Consumer::commit`] reports pages it could not drop; the owner
/// quarantines their leaf folios. Valid during the commit only.
pub struct CommitReport<'a> {
    raw: *mut sys::guestmem_commit_report,
    binding: u64,
    _commit: PhantomData<&'a mut sys::guestmem_commit_report>,
}

impl CommitReport<'_> {
    /// The consumer could not drop object page `page`: it is quarantined.
    pub fn leaked(&mut self, page: u64) {
        // SAFETY: `raw` is the report of the commit running now (or NULL,
        // which the library accepts as a no-op).
        unsafe { sys::guestmem_report_leaked(self.raw, page, self.binding) }
    }

    /// The consumer found object page `page` poisoned: it is quarantined.
    pub fn poisoned(&mut self, page: u64) {
        // SAFETY: as in `leaked`.
        unsafe { sys::guestmem_report_poisoned(self.raw, page, self.binding) }
    }
}

/// A consumer of guest memory ownership changes (a stage-2 table, an IOMMU
/// domain, a device's cached mappings): told of every conversion,
/// truncation, release and memory failure over the pages it is bound to.
///
/// Every method runs under the object's exclusive lock, on the thread that
/// made the call (convert, punch_hole, unbind, drop of the `Memory`, ...),
/// hence `Send + Sync` and `&self`: keep mutable state behind a `Mutex` or
/// atomics. A callback must not call into any guestmem object (the call
/// returns `InvalidArgument` instead of deadlocking).
///
/// Panics: a panic in `prepare` is caught and becomes a veto whose message
/// carries the panic's; a panic in `commit`, `abort` or `memory_failure`
/// (which cannot fail) is caught, printed and the process aborts: it never
/// unwinds into C. (Under `panic = "abort"` every panic aborts.)
pub trait Consumer: Send + Sync + 'static {
    /// A short name for veto messages and dumps (at most 31 bytes kept).
    fn name(&self) -> &str {
        "consumer"
    }

    /// Check and do the fallible work of a conversion; `Err` refuses it (only
    /// a vetoable invalidation's refusal is obeyed). Default: accept.
    fn prepare(&self, inv: &Invalidation) -> Result<(), Veto> {
        let _ = inv;
        Ok(())
    }

    /// Drop the mappings of `inv`'s pages. Cannot fail: report a page that
    /// could not be dropped with [`CommitReport::leaked`]. Default: nothing.
    fn commit(&self, inv: &Invalidation, report: &mut CommitReport<'_>) {
        let _ = (inv, report);
    }

    /// Undo what a successful `prepare` did (another consumer vetoed).
    /// Default: nothing.
    fn abort(&self, inv: &Invalidation) {
        let _ = inv;
    }

    /// The folio of order `inv.order` holding `inv`'s pages was poisoned:
    /// unmap them. Default: nothing.
    fn memory_failure(&self, inv: &Invalidation) {
        let _ = inv;
    }
}

thread_local! {
    /// True while this thread runs a consumer callback (no guestmem call may
    /// be made from there: it would deadlock on the object's lock).
    static IN_CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True while the calling thread is inside a consumer callback.
#[inline]
pub(crate) fn in_callback() -> bool {
    IN_CALLBACK.with(|c| c.get())
}

/// Runs `f` marked as a callback, catching a panic.
#[inline]
fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, Box<dyn Any + Send>> {
    IN_CALLBACK.with(|c| c.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    IN_CALLBACK.with(|c| c.set(false));
    r
}

fn panic_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(a non-string panic payload)"
    }
}

fn abort_on_panic(name: &str, what: &str, payload: &(dyn Any + Send)) -> ! {
    eprintln!(
        "guestmem-tracker: consumer '{}' panicked in {} (which cannot fail): {}; aborting the process",
        name,
        what,
        panic_text(payload)
    );
    std::process::abort()
}

/// Writes `text` into a C message buffer, cut at a character boundary.
fn fill_message(dst: &mut [std::os::raw::c_char], text: &str) {
    let mut n = text.len().min(dst.len() - 1);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    for (d, s) in dst.iter_mut().zip(text.as_bytes()[..n].iter()) {
        *d = *s as std::os::raw::c_char;
    }
    dst[n] = 0;
}

pub(crate) unsafe extern "C" fn prepare_trampoline<C: Consumer>(
    ctx: *mut c_void,
    inv: *const sys::guestmem_invalidation,
    why: *mut sys::guestmem_error,
) -> i32 {
    // SAFETY: ctx is the Box<C> the binding owns (alive until unbind
    // returns); inv and why are valid for the callback (the C contract).
    let consumer = &*(ctx as *const C);
    let inv = Invalidation::from_raw(inv);
    let why = &mut *why;
    match guarded(|| consumer.prepare(inv)) {
        Ok(Ok(())) => 0,
        Ok(Err(veto)) => {
            if let Some(p) = veto.page {
                why.page = p;
            }
            fill_message(&mut why.message, &veto.message);
            match veto.code.to_raw() {
                0 => sys::GUESTMEM_ERR_VETOED as i32,
                code => code,
            }
        }
        Err(payload) => {
            let text = format!("consumer '{}' panicked in prepare: {}", consumer.name(), panic_text(&*payload));
            fill_message(&mut why.message, &text);
            sys::GUESTMEM_ERR_VETOED as i32
        }
    }
}

pub(crate) unsafe extern "C" fn commit_trampoline<C: Consumer>(
    ctx: *mut c_void,
    inv: *const sys::guestmem_invalidation,
    report: *mut sys::guestmem_commit_report,
) {
    // SAFETY: as in prepare_trampoline; report is valid for the commit.
    let consumer = &*(ctx as *const C);
    let inv = Invalidation::from_raw(inv);
    let mut report = CommitReport { raw: report, binding: inv.binding(), _commit: PhantomData };
    if let Err(p) = guarded(|| consumer.commit(inv, &mut report)) {
        abort_on_panic(consumer.name(), "commit", &*p);
    }
}

pub(crate) unsafe extern "C" fn abort_trampoline<C: Consumer>(
    ctx: *mut c_void,
    inv: *const sys::guestmem_invalidation,
) {
    // SAFETY: as in prepare_trampoline.
    let consumer = &*(ctx as *const C);
    let inv = Invalidation::from_raw(inv);
    if let Err(p) = guarded(|| consumer.abort(inv)) {
        abort_on_panic(consumer.name(), "abort", &*p);
    }
}

pub(crate) unsafe extern "C" fn memory_failure_trampoline<C: Consumer>(
    ctx: *mut c_void,
    inv: *const sys::guestmem_invalidation,
) {
    // SAFETY: as in prepare_trampoline.
    let consumer = &*(ctx as *const C);
    let inv = Invalidation::from_raw(inv);
    if let Err(p) = guarded(|| consumer.memory_failure(inv)) {
        abort_on_panic(consumer.name(), "memory_failure", &*p);
    }
}
