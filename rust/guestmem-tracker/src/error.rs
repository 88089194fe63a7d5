//! The error every fallible call returns: the C ABI's code as an enum, the
//! first offending page, the vetoing binding and the library's message.
use std::fmt;
use std::mem::MaybeUninit;

use guestmem_sys as sys;

/// What went wrong (the C ABI's `GUESTMEM_ERR_*` codes, the C++ `errc`).
/// A code this crate does not know (a newer library) is `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Empty, inverted, overflowing or out-of-bounds range.
    InvalidRange,
    /// The allocator (or a reservation) ran out.
    OutOfMemory,
    /// An unexpected reference (a pin) blocks the operation.
    Busy,
    /// A consumer refused a conversion.
    Vetoed,
    /// The page is poisoned or quarantined.
    Poisoned,
    /// No folio backs the page (a hole).
    NotAllocated,
    /// The accessor may not map or pin this page.
    PermissionDenied,
    /// The allocator, platform or ABI version cannot do this.
    NotSupported,
    /// A bad argument (enumeration value, struct size, handle).
    InvalidArgument,
    /// The consumer already has a binding overlapping the pages.
    AlreadyBound,
    /// Unbind of an unknown or stale binding.
    NotBound,
    /// The mapping went stale: fault again.
    Retry,
    /// A consumer callback called back into its own object (refused, never a hang).
    WouldDeadlock,
    /// A code this version of the crate does not name.
    Unknown(i32),
}

impl ErrorCode {
    /// The code for a raw `GUESTMEM_ERR_*` value (0 is not an error: `Unknown(0)`).
    pub fn from_raw(code: i32) -> Self {
        match code as u32 {
            sys::GUESTMEM_ERR_INVALID_RANGE => ErrorCode::InvalidRange,
            sys::GUESTMEM_ERR_OUT_OF_MEMORY => ErrorCode::OutOfMemory,
            sys::GUESTMEM_ERR_BUSY => ErrorCode::Busy,
            sys::GUESTMEM_ERR_VETOED => ErrorCode::Vetoed,
            sys::GUESTMEM_ERR_POISONED => ErrorCode::Poisoned,
            sys::GUESTMEM_ERR_NOT_ALLOCATED => ErrorCode::NotAllocated,
            sys::GUESTMEM_ERR_PERMISSION_DENIED => ErrorCode::PermissionDenied,
            sys::GUESTMEM_ERR_NOT_SUPPORTED => ErrorCode::NotSupported,
            sys::GUESTMEM_ERR_INVALID_ARGUMENT => ErrorCode::InvalidArgument,
            sys::GUESTMEM_ERR_ALREADY_BOUND => ErrorCode::AlreadyBound,
            sys::GUESTMEM_ERR_NOT_BOUND => ErrorCode::NotBound,
            sys::GUESTMEM_ERR_RETRY => ErrorCode::Retry,
            sys::GUESTMEM_ERR_WOULD_DEADLOCK => ErrorCode::WouldDeadlock,
            _ => ErrorCode::Unknown(code),
        }
    }

    /// The raw `GUESTMEM_ERR_*` value.
    pub fn to_raw(self) -> i32 {
        (match self {
            ErrorCode::InvalidRange => sys::GUESTMEM_ERR_INVALID_RANGE,
            ErrorCode::OutOfMemory => sys::GUESTMEM_ERR_OUT_OF_MEMORY,
            ErrorCode::Busy => sys::GUESTMEM_ERR_BUSY,
            ErrorCode::Vetoed => sys::GUESTMEM_ERR_VETOED,
            ErrorCode::Poisoned => sys::GUESTMEM_ERR_POISONED,
            ErrorCode::NotAllocated => sys::GUESTMEM_ERR_NOT_ALLOCATED,
            ErrorCode::PermissionDenied => sys::GUESTMEM_ERR_PERMISSION_DENIED,
            ErrorCode::NotSupported => sys::GUESTMEM_ERR_NOT_SUPPORTED,
            ErrorCode::InvalidArgument => sys::GUESTMEM_ERR_INVALID_ARGUMENT,
            ErrorCode::AlreadyBound => sys::GUESTMEM_ERR_ALREADY_BOUND,
            ErrorCode::NotBound => sys::GUESTMEM_ERR_NOT_BOUND,
            ErrorCode::Retry => sys::GUESTMEM_ERR_RETRY,
            ErrorCode::WouldDeadlock => sys::GUESTMEM_ERR_WOULD_DEADLOCK,
            ErrorCode::Unknown(c) => return c,
        }) as i32
    }

    /// The library's name of the code ("busy", "vetoed", ...).
    pub fn name(self) -> &'static str {
        // SAFETY: guestmem_errc_name accepts any value and returns a static,
        // NUL-terminated string (never NULL).
        let name = unsafe { std::ffi::CStr::from_ptr(sys::guestmem_errc_name(self.to_raw())) };
        name.to_str().unwrap_or("unknown guestmem error")
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed call: nothing changed (the C ABI's rule). Carries the code, the
/// first offending page (the kernel's `error_offset`), for a veto the
/// binding that refused, and the library's sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    page: Option<u64>,
    binding: Option<u64>,
    message: String,
}

impl Error {
    /// An error made on the Rust side (no page, no binding).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error { code, page: None, binding: None, message: message.into() }
    }

    /// What went wrong.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The first offending page, if the error is about a page.
    pub fn page(&self) -> Option<u64> {
        self.page
    }

    /// The id of the binding whose consumer vetoed, if one did.
    pub fn binding(&self) -> Option<u64> {
        self.binding
    }

    /// The library's sentence describing the failure (may be empty).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error a call returning `rc` described in `raw`.
    pub(crate) fn from_raw(rc: i32, raw: &RawError) -> Self {
        let p = raw.0.as_ptr();
        // SAFETY: raw_error initialised the header and message[0]; the
        // callee writes a NUL-terminated message, so every byte read (up to
        // the first NUL, within the array) is initialised.
        unsafe {
            let msg = std::ptr::addr_of!((*p).message).cast::<u8>();
            let mut len = 0;
            while len < sys::GUESTMEM_MESSAGE_SIZE as usize && *msg.add(len) != 0 {
                len += 1;
            }
            let bytes = std::slice::from_raw_parts(msg, len);
            let (code, page, binding) = ((*p).code, (*p).page, (*p).binding_id);
            Error {
                code: ErrorCode::from_raw(if code != 0 { code } else { rc }),
                page: (page != sys::GUESTMEM_NO_PAGE).then(|| page),
                binding: (binding != sys::GUESTMEM_NO_BINDING).then(|| binding),
                message: String::from_utf8_lossy(bytes).into_owned(),
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "guestmem: {}", self.code)?;
        } else {
            write!(f, "guestmem: {} ({})", self.message, self.code)?;
        }
        if let Some(p) = self.page {
            write!(f, " at page {}", p)?;
        }
        if let Some(b) = self.binding {
            write!(f, ", binding {}", b)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// A `guestmem_error` for a call to fill: its header and the message's
/// first byte are set, the rest of the 160-byte message is left for the
/// callee (zeroing it would cost more than the rest of the wrapper).
pub(crate) struct RawError(MaybeUninit<sys::guestmem_error>);

impl RawError {
    /// The pointer to hand to the C call.
    #[inline]
    pub(crate) fn ptr(&mut self) -> *mut sys::guestmem_error {
        self.0.as_mut_ptr()
    }
}

/// A fresh [`RawError`].
#[inline]
pub(crate) fn raw_error() -> RawError {
    let mut e = MaybeUninit::<sys::guestmem_error>::uninit();
    let p = e.as_mut_ptr();
    // SAFETY: writes to fields of our own uninitialised struct.
    unsafe {
        std::ptr::addr_of_mut!((*p).size).write(std::mem::size_of::<sys::guestmem_error>() as u32);
        std::ptr::addr_of_mut!((*p).code).write(0);
        std::ptr::addr_of_mut!((*p).page).write(sys::GUESTMEM_NO_PAGE);
        std::ptr::addr_of_mut!((*p).binding_id).write(sys::GUESTMEM_NO_BINDING);
        std::ptr::addr_of_mut!((*p).message).cast::<u8>().write(0);
    }
    RawError(e)
}

/// Ok for 0, else the error `raw` describes.
#[inline]
pub(crate) fn check(rc: i32, raw: &RawError) -> Result<(), Error> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::from_raw(rc, raw))
    }
}
