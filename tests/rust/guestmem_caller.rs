// tests/rust/guestmem_caller.rs — a Rust VMM's use of libguestmem_c, with no
// crates: `extern "C"` declarations of the functions it calls, #[repr(C)]
// mirrors of the structs it passes (include/guestmem/c/guestmem.h), and a
// consumer written in Rust. It creates an object, binds two consumers,
// converts a page, faults it, sees a veto roll a conversion back, unbinds,
// and exits 0 (a failed check panics: exit status 101).
#![allow(non_camel_case_types)]
use std::ffi::CStr;
use std::os::raw::{c_char, c_void};
use std::ptr;

const GUESTMEM_OK: i32 = 0;
const GUESTMEM_ERR_VETOED: i32 = 4;
const GUESTMEM_ALLOC_SIMULATED: u32 = 0;
const GUESTMEM_SHARED: u32 = 0;
const GUESTMEM_GUEST_ONLY: u32 = 1;
const GUESTMEM_HOST: u32 = 0;
const GUESTMEM_ORDER_2M: u32 = 9;

#[repr(C)]
struct guestmem_error {
    size: u32,
    code: i32,
    page: u64,
    binding_id: u64,
    message: [c_char; 160],
}

#[repr(C)]
#[derive(Default)]
struct guestmem_config {
    size: u32,
    allocator: u32,
    pages: u64,
    initial: u32,
    max_order: u32,
    vm_fd: i32,
    reserved0: u32,
    guest_memfd_flags: u64,
    simulated_capacity: u64,
    reserved: [u64; 4],
}

#[repr(C)]
struct guestmem_invalidation {
    size: u32,
    cause: u32,
    page_begin: u64,
    page_end: u64,
    target_begin: u64,
    target_end: u64,
    sequence: u64,
    binding_id: u64,
    vetoable: u8,
    order: u8,
    share: u8,
    reserved: [u8; 5],
}

#[repr(C)]
#[derive(Default)]
struct guestmem_fault_result {
    size: u32,
    order: u8,
    mappability: u8,
    reserved: [u8; 2],
    frame: u64,
    folio_first: u64,
    folio_frame: u64,
}

type prepare_fn = extern "C" fn(*mut c_void, *const guestmem_invalidation, *mut guestmem_error) -> i32;
type commit_fn = extern "C" fn(*mut c_void, *const guestmem_invalidation, *mut c_void);
type notify_fn = extern "C" fn(*mut c_void, *const guestmem_invalidation);

#[repr(C)]
struct guestmem_consumer_ops {
    size: u32,
    reserved0: u32,
    prepare: Option<prepare_fn>,
    commit: Option<commit_fn>,
    abort: Option<notify_fn>,
    memory_failure: Option<notify_fn>,
    name: *const c_char,
}

enum guestmem_memory {}
enum guestmem_binding {}

#[link(name = "guestmem_c")]
extern "C" {
    fn guestmem_abi_version() -> u32;
    fn guestmem_create(cfg: *const guestmem_config, out: *mut *mut guestmem_memory, err: *mut guestmem_error) -> i32;
    fn guestmem_destroy(mem: *mut guestmem_memory);
    fn guestmem_allocate(mem: *mut guestmem_memory, begin: u64, end: u64, err: *mut guestmem_error) -> i32;
    fn guestmem_convert(mem: *mut guestmem_memory, begin: u64, end: u64, to: u32, opts: *const c_void,
                        err: *mut guestmem_error) -> i32;
    fn guestmem_fault(mem: *const guestmem_memory, page: u64, wanted: u32, who: u32, out: *mut guestmem_fault_result,
                      err: *mut guestmem_error) -> i32;
    fn guestmem_bind(mem: *mut guestmem_memory, ops: *const guestmem_consumer_ops, ctx: *mut c_void, begin: u64,
                     end: u64, target_base: u64, id_out: *mut u64, binding_out: *mut *mut guestmem_binding,
                     err: *mut guestmem_error) -> i32;
    fn guestmem_unbind(mem: *mut guestmem_memory, binding_id: u64, err: *mut guestmem_error) -> i32;
    fn guestmem_read_begin(binding: *const guestmem_binding) -> u64;
    fn guestmem_read_retry(binding: *const guestmem_binding, seq: u64) -> i32;
    fn guestmem_shareability_at(mem: *const guestmem_memory, page: u64, out: *mut u32, err: *mut guestmem_error) -> i32;
}

/// A stage-2 table of a Rust VMM, as far as the test needs one.
#[derive(Default)]
struct Stage2 {
    refuse: bool,
    prepared: u32,
    unmapped_pages: u64,
    aborted: u32,
}

extern "C" fn stage2_prepare(ctx: *mut c_void, inv: *const guestmem_invalidation, why: *mut guestmem_error) -> i32 {
    let (s, inv, why) = unsafe { (&mut *(ctx as *mut Stage2), &*inv, &mut *why) };
    s.prepared += 1;
    if !s.refuse {
        return GUESTMEM_OK;
    }
    let text = b"a DMA to this page is in flight\0";
    for (i, b) in text.iter().enumerate() {
        why.message[i] = *b as c_char;
    }
    why.page = inv.page_begin;
    GUESTMEM_ERR_VETOED
}

extern "C" fn stage2_commit(ctx: *mut c_void, inv: *const guestmem_invalidation, _report: *mut c_void) {
    let (s, inv) = unsafe { (&mut *(ctx as *mut Stage2), &*inv) };
    s.unmapped_pages += inv.page_end - inv.page_begin;
}

extern "C" fn stage2_abort(ctx: *mut c_void, _inv: *const guestmem_invalidation) {
    unsafe { (*(ctx as *mut Stage2)).aborted += 1 };
}

fn new_error() -> guestmem_error {
    guestmem_error { size: std::mem::size_of::<guestmem_error>() as u32, code: 0, page: 0, binding_id: 0, message: [0; 160] }
}

fn message(err: &guestmem_error) -> String {
    unsafe { CStr::from_ptr(err.message.as_ptr()) }.to_string_lossy().into_owned()
}

fn check(rc: i32, err: &guestmem_error, what: &str) {
    assert!(rc == GUESTMEM_OK, "{} failed: code {}: {}", what, rc, message(err));
}

fn main() {
    assert_eq!(std::mem::size_of::<guestmem_config>(), 80);
    assert_eq!(std::mem::size_of::<guestmem_invalidation>(), 64);
    assert_eq!(unsafe { guestmem_abi_version() } >> 16, 0, "ABI major 0 expected");
    let mut err = new_error();
    let cfg = guestmem_config {
        size: std::mem::size_of::<guestmem_config>() as u32,
        allocator: GUESTMEM_ALLOC_SIMULATED,
        pages: 1024,
        initial: GUESTMEM_GUEST_ONLY,
        max_order: GUESTMEM_ORDER_2M,
        ..Default::default()
    };
    let mut mem: *mut guestmem_memory = ptr::null_mut();
    check(unsafe { guestmem_create(&cfg, &mut mem, &mut err) }, &err, "create");

    let ops = |name: &'static [u8]| guestmem_consumer_ops {
        size: std::mem::size_of::<guestmem_consumer_ops>() as u32,
        reserved0: 0,
        prepare: Some(stage2_prepare),
        commit: Some(stage2_commit),
        abort: Some(stage2_abort),
        memory_failure: None,
        name: name.as_ptr() as *const c_char,
    };
    let stage2_ops = ops(b"rust-stage2\0");
    let iommu_ops = ops(b"rust-iommu\0");
    let mut stage2 = Box::new(Stage2::default());
    let mut iommu = Box::new(Stage2::default());
    let (mut stage2_id, mut iommu_id) = (0u64, 0u64);
    let mut binding: *mut guestmem_binding = ptr::null_mut();
    check(unsafe { guestmem_bind(mem, &stage2_ops, &mut *stage2 as *mut Stage2 as *mut c_void, 0, 1024, 0x80000,
                                 &mut stage2_id, &mut binding, &mut err) }, &err, "bind stage2");
    check(unsafe { guestmem_bind(mem, &iommu_ops, &mut *iommu as *mut Stage2 as *mut c_void, 0, 1024, 0,
                                 &mut iommu_id, ptr::null_mut(), &mut err) }, &err, "bind iommu");
    check(unsafe { guestmem_allocate(mem, 0, 1024, &mut err) }, &err, "allocate");

    // Share one page: both consumers are asked, then both let go of it.
    check(unsafe { guestmem_convert(mem, 16, 17, GUESTMEM_SHARED, ptr::null(), &mut err) }, &err, "convert");
    assert_eq!((stage2.prepared, stage2.unmapped_pages, iommu.unmapped_pages), (1, 1, 1));

    // The host faults the shared page in, and nothing ran in between.
    let seq = unsafe { guestmem_read_begin(binding) };
    let mut fault = guestmem_fault_result { size: std::mem::size_of::<guestmem_fault_result>() as u32, ..Default::default() };
    check(unsafe { guestmem_fault(mem, 16, GUESTMEM_SHARED, GUESTMEM_HOST, &mut fault, &mut err) }, &err, "fault");
    assert_eq!(fault.order, 0, "the shared page was split out of its 2 MiB folio");
    assert_eq!(unsafe { guestmem_read_retry(binding, seq) }, 0);

    // The IOMMU refuses to give it back: the conversion is rolled back.
    iommu.refuse = true;
    let rc = unsafe { guestmem_convert(mem, 16, 17, GUESTMEM_GUEST_ONLY, ptr::null(), &mut err) };
    assert_eq!(rc, GUESTMEM_ERR_VETOED, "{}", message(&err));
    assert_eq!((err.page, err.binding_id), (16, iommu_id));
    let text = message(&err);
    assert!(text.contains("rust-iommu") && text.contains("a DMA to this page is in flight"), "{}", text);
    assert_eq!(stage2.aborted, 1, "stage2 prepared first, so it is told to undo");
    let mut share = 99u32;
    check(unsafe { guestmem_shareability_at(mem, 16, &mut share, &mut err) }, &err, "shareability_at");
    assert_eq!(share, GUESTMEM_SHARED);
    println!("rust caller: the veto said \"{}\"", text);

    iommu.refuse = false;
    check(unsafe { guestmem_convert(mem, 16, 17, GUESTMEM_GUEST_ONLY, ptr::null(), &mut err) }, &err, "convert back");
    check(unsafe { guestmem_unbind(mem, iommu_id, &mut err) }, &err, "unbind");
    unsafe { guestmem_destroy(mem) };
    assert!(stage2.unmapped_pages >= 2);
    println!("rust caller: ok (stage2 binding {}, iommu binding {})", stage2_id, iommu_id);
}
