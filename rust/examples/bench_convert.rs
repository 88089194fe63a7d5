//! The safe crate's overhead over the C ABI for a 4 KiB conversion with 3
//! consumers: the same object (simulated, 16 GiB, 2 MiB folios, populated,
//! ~8k shareability runs of background, as bench/hotpaths.cpp's
//! c_convert_4k) converted one page back and forth, through
//! `guestmem_sys::guestmem_convert` with three `extern "C"` consumers (NULL
//! error pointer: the cheapest C caller) and through
//! `guestmem_tracker::Memory::convert` with three Rust `Consumer`s doing
//! the same counting.
//!
//! Usage: bench_convert raw|safe N   one path, N conversions in the function
//!                                    measure_raw / measure_safe (for
//!                                    valgrind --tool=callgrind
//!                                    --toggle-collect=measure_raw)
//!        bench_convert time [N]     both paths timed, interleaved rounds,
//!                                    median ratio safe/raw
use std::os::raw::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use guestmem_tracker::{sys, CommitReport, Config, Consumer, Invalidation, Memory, Order, Shareability};

const PAGES: u64 = 16 << 18;

/// The same tiny xorshift for both paths' background and work list.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Default)]
struct Counts {
    prepared: u64,
    committed_pages: u64,
}
unsafe extern "C" fn c_prepare(
    ctx: *mut c_void,
    _: *const sys::guestmem_invalidation,
    _: *mut sys::guestmem_error,
) -> i32 {
    (*(ctx as *mut Counts)).prepared += 1;
    0
}
unsafe extern "C" fn c_commit(
    ctx: *mut c_void,
    inv: *const sys::guestmem_invalidation,
    _: *mut sys::guestmem_commit_report,
) {
    (*(ctx as *mut Counts)).committed_pages += (*inv).page_end - (*inv).page_begin;
}

/// Counts like the C consumer; one writer at a time (callbacks run under the
/// object's exclusive lock), so a relaxed load and store, no atomic RMW.
#[derive(Default)]
struct Counting {
    prepared: AtomicU64,
    committed_pages: AtomicU64,
}
impl Consumer for Counting {
    fn prepare(&self, _: &Invalidation) -> Result<(), guestmem_tracker::Veto> {
        self.prepared.store(self.prepared.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        Ok(())
    }
    fn commit(&self, inv: &Invalidation, _: &mut CommitReport<'_>) {
        let n = inv.pages().end - inv.pages().start;
        self.committed_pages.store(self.committed_pages.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }
}

fn config() -> Config {
    Config::simulated(PAGES).initial(Shareability::Shared).max_order(Order::Huge2M)
}

/// Background guest_only pages, then up to 4096 pages whose neighbours are
/// shared (so each conversion splits and re-merges a run), warmed up.
fn shape(convert: &mut dyn FnMut(u64, Shareability) -> bool, at: &dyn Fn(u64) -> Shareability) -> Vec<u64> {
    let mut rng = Rng(42);
    for _ in 0..4096 {
        assert!(convert(rng.next() % PAGES, Shareability::GuestOnly), "background");
    }
    let mut work = Vec::new();
    while work.len() < 4096 {
        let p = 1 + rng.next() % (PAGES - 2);
        if [p - 1, p, p + 1].iter().all(|&q| at(q) == Shareability::Shared) && !work.contains(&p) {
            work.push(p);
        }
    }
    for &p in &work {
        assert!(convert(p, Shareability::GuestOnly) && convert(p, Shareability::Shared), "warm-up");
    }
    work
}

fn target(i: usize) -> Shareability {
    if i & 1 == 1 {
        Shareability::Shared
    } else {
        Shareability::GuestOnly
    }
}

struct Raw {
    mem: *mut sys::guestmem_memory,
    _counts: Vec<Box<Counts>>,
    work: Vec<u64>,
}

fn raw_setup() -> Raw {
    let mem = Memory::new(&config()).unwrap();
    mem.allocate(0..PAGES).unwrap();
    let mem = std::mem::ManuallyDrop::new(mem).as_raw();
    let mut counts: Vec<Box<Counts>> = (0..3).map(|_| Box::new(Counts::default())).collect();
    for (i, c) in counts.iter_mut().enumerate() {
        // SAFETY: zeroed plain data; callbacks valid; ctx outlives the object.
        unsafe {
            let mut ops: sys::guestmem_consumer_ops = std::mem::zeroed();
            ops.size = std::mem::size_of::<sys::guestmem_consumer_ops>() as u32;
            ops.prepare = Some(c_prepare);
            ops.commit = Some(c_commit);
            let ctx = (&mut **c as *mut Counts).cast();
            let base = 0x100000 * (i as u64 + 1);
            let rc = sys::guestmem_bind(
                mem,
                &ops,
                ctx,
                0,
                PAGES,
                base,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            assert_eq!(rc, 0);
        }
    }
    let conv = |p: u64, to: Shareability| -> bool {
        let to = if to == Shareability::Shared { sys::GUESTMEM_SHARED } else { sys::GUESTMEM_GUEST_ONLY };
        // SAFETY: a valid object; NULL options and error.
        unsafe { sys::guestmem_convert(mem, p, p + 1, to, std::ptr::null(), std::ptr::null_mut()) == 0 }
    };
    let at = |p: u64| -> Shareability {
        let mut s = 0u32;
        // SAFETY: valid object and out-pointer.
        unsafe { sys::guestmem_shareability_at(mem, p, &mut s, std::ptr::null_mut()) };
        if s == sys::GUESTMEM_SHARED {
            Shareability::Shared
        } else {
            Shareability::GuestOnly
        }
    };
    let work = shape(&mut { conv }, &at);
    Raw { mem, _counts: counts, work }
}

#[no_mangle]
#[inline(never)]
pub fn measure_raw(mem: *mut sys::guestmem_memory, work: &[u64], n: usize) -> u64 {
    let mut ok = 0u64;
    for i in 0..n {
        let p = work[(i >> 1) % work.len()];
        let to = if target(i) == Shareability::Shared { sys::GUESTMEM_SHARED } else { sys::GUESTMEM_GUEST_ONLY };
        // SAFETY: a valid object; NULL options and error.
        ok +=
            u64::from(unsafe { sys::guestmem_convert(mem, p, p + 1, to, std::ptr::null(), std::ptr::null_mut()) } == 0);
    }
    ok
}

fn safe_setup() -> (Memory, Vec<u64>) {
    let mem = Memory::new(&config()).unwrap();
    mem.allocate(0..PAGES).unwrap();
    let work = {
        let mut conv = |p: u64, to: Shareability| mem.convert(p..p + 1, to).is_ok();
        let at = |p: u64| mem.shareability_at(p).unwrap();
        shape(&mut conv, &at)
    };
    (mem, work)
}

#[no_mangle]
#[inline(never)]
pub fn measure_safe(mem: &Memory, work: &[u64], n: usize) -> u64 {
    let mut ok = 0u64;
    for i in 0..n {
        let p = work[(i >> 1) % work.len()];
        ok += u64::from(mem.convert(p..p + 1, target(i)).is_ok());
    }
    ok
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("time");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    match mode {
        "raw" => {
            let r = raw_setup();
            assert_eq!(measure_raw(r.mem, &r.work, n), n as u64);
        }
        "safe" => {
            let (mem, work) = safe_setup();
            let bindings: Vec<_> =
                (0..3).map(|i| mem.bind(Counting::default(), 0..PAGES, 0x100000 * (i + 1)).unwrap()).collect();
            assert_eq!(measure_safe(&mem, &work, n), n as u64);
            assert_eq!(bindings[2].consumer().committed_pages.load(Ordering::Relaxed), n as u64);
        }
        "time" => {
            let r = raw_setup();
            let (mem, work) = safe_setup();
            let _b: Vec<_> =
                (0..3).map(|i| mem.bind(Counting::default(), 0..PAGES, 0x100000 * (i + 1)).unwrap()).collect();
            let mut ratios = Vec::new();
            let (mut raw_ns, mut safe_ns) = (Vec::new(), Vec::new());
            for _ in 0..9 {
                let t = Instant::now();
                assert_eq!(measure_raw(r.mem, &r.work, n), n as u64);
                let raw = t.elapsed().as_nanos() as f64 / n as f64;
                let t = Instant::now();
                assert_eq!(measure_safe(&mem, &work, n), n as u64);
                let safe = t.elapsed().as_nanos() as f64 / n as f64;
                raw_ns.push(raw);
                safe_ns.push(safe);
                ratios.push(safe / raw);
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(|a, b| a.partial_cmp(b).unwrap());
                v[v.len() / 2]
            };
            println!(
                "bench_convert: 4K conversion, 3 consumers: raw C ABI {:.1} ns, safe crate {:.1} ns, safe/raw {:.3}x (median of 9 interleaved rounds of {})",
                median(&mut raw_ns),
                median(&mut safe_ns),
                median(&mut ratios),
                n
            );
        }
        _ => {
            eprintln!("usage: bench_convert raw|safe|time [N]");
            std::process::exit(2);
        }
    }
}
