//! The safe API over libguestmem_c: every call, every error path, the
//! consumer protocol (prepare/commit/abort, veto, leak reports, release),
//! panics in callbacks, and the thread-safety claims.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use guestmem_tracker::*;

fn object(pages: u64) -> Memory {
    let m = Memory::new(&Config::simulated(pages).initial(Shareability::GuestOnly).max_order(Order::Huge2M)).unwrap();
    m.allocate(0..pages).unwrap();
    m
}

/// Records what it is told; vetoes conversions touching `veto_page`.
#[derive(Default)]
struct Recorder {
    veto_page: Option<u64>,
    leak_page: Option<u64>,
    log: Mutex<Vec<(&'static str, Cause, std::ops::Range<u64>, std::ops::Range<u64>)>>,
}

impl Consumer for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn prepare(&self, inv: &Invalidation) -> Result<(), Veto> {
        self.log.lock().unwrap().push(("prepare", inv.cause(), inv.pages(), inv.targets()));
        match self.veto_page {
            Some(p) if inv.pages().contains(&p) => Err(Veto::new("the page holds an MMIO mapping").at(p)),
            _ => Ok(()),
        }
    }
    fn commit(&self, inv: &Invalidation, report: &mut CommitReport<'_>) {
        self.log.lock().unwrap().push(("commit", inv.cause(), inv.pages(), inv.targets()));
        if let Some(p) = self.leak_page.filter(|p| inv.pages().contains(p)) {
            report.leaked(p);
        }
    }
    fn abort(&self, inv: &Invalidation) {
        self.log.lock().unwrap().push(("abort", inv.cause(), inv.pages(), inv.targets()));
    }
    fn memory_failure(&self, inv: &Invalidation) {
        self.log.lock().unwrap().push(("memory_failure", inv.cause(), inv.pages(), inv.targets()));
    }
}

fn phases(r: &Recorder) -> Vec<&'static str> {
    r.log.lock().unwrap().iter().map(|e| e.0).collect()
}

#[test]
fn a_conversion_prepares_then_commits_each_consumer_in_its_own_numbers() {
    let mem = object(64);
    let a = mem.bind(Recorder::default(), 0..64, 0x80000).unwrap();
    let b = mem.bind(Recorder::default(), 16..32, 0x100).unwrap();
    mem.convert(16..18, Shareability::Shared).unwrap();
    assert_eq!(mem.shareability_at(16).unwrap(), Shareability::Shared);
    assert_eq!(mem.shareability_at(18).unwrap(), Shareability::GuestOnly);
    let log = a.consumer().log.lock().unwrap().clone();
    assert_eq!(log[0], ("prepare", Cause::ToShared, 16..18, 0x80010..0x80012));
    assert_eq!(log[1], ("commit", Cause::ToShared, 16..18, 0x80010..0x80012));
    assert_eq!(b.consumer().log.lock().unwrap()[1], ("commit", Cause::ToShared, 16..18, 0x100..0x102));
    assert_ne!(a.id(), b.id());
}

#[test]
fn a_veto_rolls_the_conversion_back_and_names_page_binding_and_reason() {
    let mem = object(64);
    let ok = mem.bind(Recorder::default(), 0..64, 0).unwrap();
    let vetoer = mem.bind(Recorder { veto_page: Some(9), ..Default::default() }, 0..64, 0).unwrap();
    let err = mem.convert(8..12, Shareability::Shared).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Vetoed);
    assert_eq!(err.page(), Some(9));
    assert_eq!(err.binding(), Some(vetoer.id()));
    assert!(err.message().contains("MMIO"), "{}", err);
    assert!(err.to_string().contains("vetoed"), "{}", err);
    for p in 8..12 {
        assert_eq!(mem.shareability_at(p).unwrap(), Shareability::GuestOnly);
    }
    assert!(phases(ok.consumer()).contains(&"abort"), "{:?}", phases(ok.consumer()));
    assert!(!phases(ok.consumer()).contains(&"commit"));
    assert_eq!(mem.stats().vetoes, 1);
    let source: &dyn std::error::Error = &err;
    assert!(source.source().is_none());
}

#[test]
fn bad_ranges_and_arguments_are_refused_and_change_nothing() {
    let mem = object(16);
    assert_eq!(Memory::new(&Config::simulated(0)).unwrap_err().code(), ErrorCode::InvalidArgument);
    assert_eq!(mem.convert(4..4, Shareability::Shared).unwrap_err().code(), ErrorCode::InvalidRange);
    assert_eq!(mem.convert(15..17, Shareability::Shared).unwrap_err().code(), ErrorCode::InvalidRange);
    assert_eq!(mem.allocate(8..4).unwrap_err().code(), ErrorCode::InvalidRange);
    assert_eq!(mem.punch_hole(5..5).unwrap_err().code(), ErrorCode::InvalidRange);
    assert_eq!(mem.release_quarantine(0..99).unwrap_err().code(), ErrorCode::InvalidRange);
    assert_eq!(mem.pin(0..17, Accessor::Hypervisor).unwrap_err().code(), ErrorCode::InvalidRange);
    assert_eq!(mem.memory_failure(16).unwrap_err().code(), ErrorCode::InvalidRange);
    assert_eq!(mem.shareability_at(16).unwrap_err().code(), ErrorCode::InvalidRange);
    assert_eq!(mem.mappability_at(16).unwrap_err().code(), ErrorCode::InvalidRange);
    assert_eq!(mem.fault(16, Shareability::Shared, Accessor::Host).unwrap_err().code(), ErrorCode::InvalidRange);
    assert_eq!(mem.bind(Recorder::default(), 0..17, 0).unwrap_err().code(), ErrorCode::InvalidRange);
    let opts = ConvertOptions { content: Content::Zero, defer_if_pinned: true };
    assert_eq!(mem.convert_with(9..3, Shareability::Shared, &opts).unwrap_err().code(), ErrorCode::InvalidRange);
    assert_eq!(mem.bind(Recorder::default(), 0..2, u64::MAX).unwrap_err().code(), ErrorCode::InvalidRange);
    assert_eq!(mem.stats().guest_only_pages, 16);
    assert_eq!(mem.stats().bindings, 0);
}

#[test]
fn an_error_without_a_page_or_binding_says_so() {
    let mem = object(4);
    let err = mem.convert(0..0, Shareability::Shared).unwrap_err();
    assert_eq!(err.binding(), None);
    assert!(!err.message().is_empty());
    assert_eq!(ErrorCode::from_raw(ErrorCode::Busy.to_raw()), ErrorCode::Busy);
    assert_eq!(ErrorCode::from_raw(77), ErrorCode::Unknown(77));
    assert_eq!(ErrorCode::Retry.name(), "retry");
    assert_eq!(ErrorCode::from_raw(13), ErrorCode::WouldDeadlock);
    assert_eq!(ErrorCode::WouldDeadlock.to_raw(), 13);
    assert_eq!(ErrorCode::WouldDeadlock.name(), "would_deadlock");
    assert_eq!(ErrorCode::from_raw(-5), ErrorCode::Unknown(-5));
    assert_eq!(ErrorCode::Unknown(-5).to_raw(), -5);
}

#[test]
fn a_pin_refuses_guest_only_pages_for_devices_and_blocks_conversion_to_guest_only() {
    let mem = object(16);
    mem.convert(0..4, Shareability::Shared).unwrap();
    let err = mem.pin(2..6, Accessor::Device).unwrap_err();
    assert_eq!((err.code(), err.page()), (ErrorCode::PermissionDenied, Some(4)));
    assert_eq!(mem.pins(2), 0, "all or nothing");
    let pin = mem.pin(0..4, Accessor::Device).unwrap();
    assert_eq!(mem.pins(1), 1);
    let err = mem.convert(0..4, Shareability::GuestOnly).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Busy);
    assert_eq!(pin.pages(), 0..4);
    drop(pin);
    assert_eq!(mem.pins(1), 0);
    mem.convert(0..4, Shareability::GuestOnly).unwrap();
}

#[test]
fn a_deferred_conversion_drains_through_mappability_none_until_the_last_unpin() {
    let mem = object(16);
    mem.convert(0..1, Shareability::Shared).unwrap();
    let pin = mem.pin(0..1, Accessor::Host).unwrap();
    let opts = ConvertOptions { defer_if_pinned: true, ..Default::default() };
    mem.convert_with(0..1, Shareability::GuestOnly, &opts).unwrap();
    assert_eq!(mem.mappability_at(0).unwrap(), Mappability::None);
    assert_eq!(mem.fault(0, Shareability::GuestOnly, Accessor::Hypervisor).unwrap_err().code(), ErrorCode::Retry);
    pin.unpin().map_err(|(_, e)| e).unwrap();
    assert_eq!(mem.mappability_at(0).unwrap(), Mappability::Guest);
    let f = mem.fault(0, Shareability::GuestOnly, Accessor::Hypervisor).unwrap();
    assert_eq!(f.mappability, Mappability::Guest);
}

#[test]
fn faults_follow_the_table_and_holes_are_not_allocated() {
    let mem = Memory::new(&Config::simulated(1024).max_order(Order::Huge2M)).unwrap();
    assert_eq!(mem.fault(3, Shareability::Shared, Accessor::Host).unwrap_err().code(), ErrorCode::NotAllocated);
    assert_eq!(mem.mappability_at(3).unwrap_err().code(), ErrorCode::NotAllocated);
    assert_eq!(mem.memory_failure(3).unwrap_err().code(), ErrorCode::NotAllocated);
    mem.allocate(0..1024).unwrap();
    let f = mem.fault(3, Shareability::Shared, Accessor::Host).unwrap();
    assert_eq!((f.order, f.folio_first, f.mappability), (9, 0, Mappability::All));
    assert_eq!(
        mem.fault(3, Shareability::GuestOnly, Accessor::Device).unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    let info = mem.info();
    assert_eq!((info.allocator, info.pages, info.fd, info.bytes), (AllocatorKind::Simulated, 1024, None, 0));
}

#[test]
fn the_sequence_tells_a_fault_to_retry_after_an_invalidation() {
    let mem = object(16);
    let b = mem.bind(Recorder::default(), 0..16, 0).unwrap();
    let seq = b.read_begin();
    assert_eq!(seq % 2, 0);
    assert!(!b.read_retry(seq));
    mem.convert(0..1, Shareability::Shared).unwrap();
    assert!(b.read_retry(seq));
}

#[test]
fn punch_memory_failure_unbind_and_leaks_reach_the_consumer() {
    let mem = object(16);
    let b = mem.bind(Recorder { leak_page: Some(3), ..Default::default() }, 0..16, 0).unwrap();
    mem.punch_hole(0..2).unwrap();
    mem.memory_failure(8).unwrap();
    mem.convert(2..4, Shareability::Shared).unwrap(); // the commit leaks page 3
    assert_eq!(mem.stats().quarantined, 1, "{}", mem.dump());
    assert_eq!(mem.fault(3, Shareability::Shared, Accessor::Host).unwrap_err().code(), ErrorCode::Poisoned);
    assert!(mem.dump().contains("POISONED at 0x3"), "{}", mem.dump());
    let r = b.unbind();
    let log = r.log.lock().unwrap();
    assert_eq!(log[0].1, Cause::Truncate);
    assert_eq!(log[2].0, "memory_failure");
    assert_eq!(log.last().unwrap().1, Cause::Release);
    assert_eq!(mem.stats().bindings, 0);
}

#[test]
fn runs_list_the_shareability_map_when_no_guard_is_alive() {
    let mut mem = object(16);
    mem.convert(4..8, Shareability::Shared).unwrap();
    let runs = mem.runs(0..16).unwrap();
    assert_eq!(
        runs,
        vec![
            Run { pages: 0..4, share: Shareability::GuestOnly },
            Run { pages: 4..8, share: Shareability::Shared },
            Run { pages: 8..16, share: Shareability::GuestOnly }
        ]
    );
    assert_eq!(mem.runs(0..17).unwrap_err().code(), ErrorCode::InvalidRange);
}

struct Panicky(&'static str);
impl Consumer for Panicky {
    fn prepare(&self, _: &Invalidation) -> Result<(), Veto> {
        if self.0 == "prepare" {
            panic!("stage-2 walker bug");
        }
        Ok(())
    }
    fn commit(&self, _: &Invalidation, _: &mut CommitReport<'_>) {
        if self.0 == "commit" {
            panic!("cannot fail, but did");
        }
    }
}

#[test]
fn a_panic_in_prepare_becomes_a_veto_carrying_its_message() {
    let mem = object(8);
    let b = mem.bind(Panicky("prepare"), 0..8, 0).unwrap();
    let err = mem.convert(0..1, Shareability::Shared).unwrap_err();
    assert_eq!((err.code(), err.binding()), (ErrorCode::Vetoed, Some(b.id())));
    assert!(err.message().contains("stage-2 walker bug"), "{}", err);
    assert_eq!(mem.shareability_at(0).unwrap(), Shareability::GuestOnly);
}

#[test]
fn a_panic_in_commit_aborts_the_process_instead_of_unwinding_into_c() {
    if std::env::var_os("GUESTMEM_PANIC_CHILD").is_some() {
        let mem = object(8);
        let _b = mem.bind(Panicky("commit"), 0..8, 0).unwrap();
        let _ = mem.convert(0..1, Shareability::Shared);
        std::process::exit(0); // not reached: the commit aborts
    }
    // Through a shell that turns core dumps off: the abort is the expected outcome.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -c 0; exec \"$0\" \"$@\"")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "a_panic_in_commit_aborts_the_process_instead_of_unwinding_into_c", "--nocapture"])
        .env("GUESTMEM_PANIC_CHILD", "1")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(6), "{:?}", out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("panicked in commit"));
}

/// Tries to call back into the object from its prepare.
struct Reentrant(Arc<Memory>, Mutex<Option<ErrorCode>>);
impl Consumer for Reentrant {
    fn prepare(&self, _: &Invalidation) -> Result<(), Veto> {
        *self.1.lock().unwrap() = self.0.convert(5..6, Shareability::Shared).err().map(|e| e.code());
        Ok(())
    }
}

#[test]
fn a_call_into_guestmem_from_a_callback_is_refused_instead_of_deadlocking() {
    let mem = Arc::new(object(8));
    let b = mem.bind(Reentrant(mem.clone(), Mutex::new(None)), 0..8, 0).unwrap();
    mem.convert(0..1, Shareability::Shared).unwrap();
    assert_eq!(*b.consumer().1.lock().unwrap(), Some(ErrorCode::InvalidArgument));
    drop(b);
}

#[test]
fn memory_and_bindings_are_send_and_sync_and_work_from_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Memory>();
    send_sync::<Binding<'static, Recorder>>();
    send_sync::<Pinned<'static>>();
    struct Count(AtomicU64);
    impl Consumer for Count {
        fn commit(&self, inv: &Invalidation, _: &mut CommitReport<'_>) {
            self.0.fetch_add(inv.pages().end - inv.pages().start, Ordering::Relaxed);
        }
    }
    let mem = object(1024);
    let b = mem.bind(Count(AtomicU64::new(0)), 0..1024, 0).unwrap();
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let mem = &mem;
            s.spawn(move || {
                for i in 0..200u64 {
                    let p = t * 512 + i;
                    mem.convert(p..p + 1, Shareability::Shared).unwrap();
                    mem.fault(p, Shareability::Shared, Accessor::Host).unwrap();
                }
            });
        }
    });
    assert_eq!(b.consumer().0.load(Ordering::Relaxed), 400);
    assert_eq!(mem.stats().shared_pages, 400);
}

#[test]
fn a_forgotten_binding_is_released_by_the_memory_and_leaks_only_its_consumer() {
    let released = Arc::new(AtomicU64::new(0));
    struct R(Arc<AtomicU64>);
    impl Consumer for R {
        fn commit(&self, inv: &Invalidation, _: &mut CommitReport<'_>) {
            if inv.cause() == Cause::Release {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let mem = object(8);
    std::mem::forget(mem.bind(R(released.clone()), 0..8, 0).unwrap());
    drop(mem);
    assert_eq!(released.load(Ordering::Relaxed), 1);
}
