//! A small virtio-style ring walk over shared and private pages through
//! GuardedMemory: descriptors in a shared page point at buffers; a buffer in
//! a guest_only page stops the walk with an error naming its GPA, and a
//! conversion racing a device access is serialised by the access's pin.
use std::io::Read;
use std::sync::atomic::Ordering;

use guestmem_tracker::{Config, Content, ConvertOptions, ErrorCode, Memory, Shareability, PAGE_SIZE};
use guestmem_vm_memory::{Error, GuardedMemory};
use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

const LOW: u64 = 0; // region 0: descriptor table (page 0), avail ring (page 1), used ring (page 2), buffers
const HIGH: u64 = 0x10_0000; // region 1: buffers; pages 4 and 5 guest_only
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;

fn memfd(pages: u64) -> Memory {
    let m = Memory::new(&Config::memfd(pages)).unwrap();
    m.allocate(0..pages).unwrap();
    m
}

/// Two memfd regions, both shared but for region 1's pages 4 and 5.
fn guest() -> GuardedMemory<GuestMemoryMmap> {
    let g = GuardedMemory::from_memfd(vec![(GuestAddress(HIGH), memfd(8)), (GuestAddress(LOW), memfd(8))]).unwrap();
    g.convert(GuestAddress(HIGH + 4 * PAGE_SIZE), 2 * PAGE_SIZE, Shareability::GuestOnly).unwrap();
    g
}

/// The driver's side: writes descriptor `i` with the unchecked memory (the
/// guest itself, which may write anywhere).
fn put_desc(g: &GuardedMemory<GuestMemoryMmap>, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
    let d = GuestAddress(LOW + u64::from(i) * 16);
    let m = g.inner();
    m.write_obj(addr, d).unwrap();
    m.write_obj(len, GuestAddress(d.0 + 8)).unwrap();
    m.write_obj(flags, GuestAddress(d.0 + 12)).unwrap();
    m.write_obj(next, GuestAddress(d.0 + 14)).unwrap();
}

fn publish(g: &GuardedMemory<GuestMemoryMmap>, heads: &[u16]) {
    let m = g.inner();
    for (i, h) in heads.iter().enumerate() {
        m.write_obj(*h, GuestAddress(LOW + PAGE_SIZE + 4 + 2 * i as u64)).unwrap();
    }
    m.write_obj(heads.len() as u16, GuestAddress(LOW + PAGE_SIZE + 2)).unwrap();
}

/// The device's side: walks every published chain through the guarded
/// memory, gathering readable buffers and filling writable ones with 0xd0;
/// returns the bytes read per chain and records each chain in the used ring.
fn device_walk(g: &GuardedMemory<GuestMemoryMmap>) -> Result<Vec<Vec<u8>>, Error> {
    let avail_idx: u16 = g.load(GuestAddress(LOW + PAGE_SIZE + 2), Ordering::Acquire)?;
    let mut out = Vec::new();
    for slot in 0..avail_idx {
        let mut d: u16 = g.read_obj(GuestAddress(LOW + PAGE_SIZE + 4 + 2 * u64::from(slot)))?;
        let head = d;
        let mut got = Vec::new();
        let mut written = 0u32;
        loop {
            let base = GuestAddress(LOW + u64::from(d) * 16);
            let addr: u64 = g.read_obj(base)?;
            let len: u32 = g.read_obj(GuestAddress(base.0 + 8))?;
            let flags: u16 = g.read_obj(GuestAddress(base.0 + 12))?;
            if flags & F_WRITE != 0 {
                g.write_slice(&vec![0xd0; len as usize], GuestAddress(addr))?;
                written += len;
            } else {
                let mut buf = vec![0; len as usize];
                g.read_slice(&mut buf, GuestAddress(addr))?;
                got.extend_from_slice(&buf);
            }
            if flags & F_NEXT == 0 {
                break;
            }
            d = g.read_obj(GuestAddress(base.0 + 14))?;
        }
        let used = GuestAddress(LOW + 2 * PAGE_SIZE + 4 + 8 * u64::from(slot));
        g.write_obj(u32::from(head), used)?;
        g.write_obj(written, GuestAddress(used.0 + 4))?;
        g.store(slot + 1, GuestAddress(LOW + 2 * PAGE_SIZE + 2), Ordering::Release)?;
        out.push(got);
    }
    Ok(out)
}

#[test]
fn a_ring_over_shared_pages_is_walked_across_both_regions() {
    let g = guest();
    g.inner().write_slice(b"hello, ", GuestAddress(LOW + 3 * PAGE_SIZE)).unwrap();
    g.inner().write_slice(b"device", GuestAddress(HIGH + 2 * PAGE_SIZE + 100)).unwrap();
    put_desc(&g, 0, LOW + 3 * PAGE_SIZE, 7, F_NEXT, 1);
    put_desc(&g, 1, HIGH + 2 * PAGE_SIZE + 100, 6, F_NEXT, 2);
    put_desc(&g, 2, HIGH + 3 * PAGE_SIZE, 64, F_WRITE, 0);
    publish(&g, &[0]);
    assert_eq!(device_walk(&g).unwrap(), vec![b"hello, device".to_vec()]);
    let mut back = [0u8; 64];
    g.inner().read_slice(&mut back, GuestAddress(HIGH + 3 * PAGE_SIZE)).unwrap();
    assert_eq!(back, [0xd0; 64]);
    assert_eq!(g.inner().read_obj::<u32>(GuestAddress(LOW + 2 * PAGE_SIZE + 8)).unwrap(), 64);
}

#[test]
fn a_descriptor_into_a_guest_only_page_stops_the_walk_naming_the_gpa() {
    let g = guest();
    let private = HIGH + 4 * PAGE_SIZE + 0x123;
    put_desc(&g, 0, LOW + 3 * PAGE_SIZE, 8, F_NEXT, 1);
    put_desc(&g, 1, private, 16, 0, 0);
    publish(&g, &[0]);
    let err = device_walk(&g).unwrap_err();
    assert!(err.is_guest_only(), "{}", err);
    match &err {
        Error::Refused { gpa, source } => {
            assert_eq!(gpa.0, private);
            assert_eq!(source.page(), Some(4), "the page within region 1's object");
        }
        other => panic!("{:?}", other),
    }
    assert!(err.to_string().contains(&format!("{:#x}", private)), "{}", err);
    // The guest shares the page: the same walk now reads it.
    g.convert(GuestAddress(HIGH + 4 * PAGE_SIZE), PAGE_SIZE, Shareability::Shared).unwrap();
    assert_eq!(device_walk(&g).unwrap()[0].len(), 24);
}

#[test]
fn an_access_straddling_into_a_private_page_names_that_page_start_and_writes_nothing() {
    let g = guest();
    let start = HIGH + 4 * PAGE_SIZE - 8;
    let err = g.write_slice(&[0xee; 16], GuestAddress(start)).unwrap_err();
    match err {
        Error::Refused { gpa, .. } => assert_eq!(gpa.0, HIGH + 4 * PAGE_SIZE),
        other => panic!("{:?}", other),
    }
    assert_eq!(g.inner().read_obj::<u64>(GuestAddress(start)).unwrap(), 0, "nothing written");
    let err = g.load::<u32>(GuestAddress(HIGH + 5 * PAGE_SIZE), Ordering::Relaxed).unwrap_err();
    assert!(err.is_guest_only());
    let mut sink = Vec::new();
    assert!(g.write_all_to(GuestAddress(HIGH + 5 * PAGE_SIZE), &mut sink, 4).unwrap_err().is_guest_only());
    assert!(sink.is_empty());
}

/// A source that, half-way through a device write into guest memory,
/// tries to convert the page being written to guest_only.
struct RacingReader<'a> {
    g: &'a GuardedMemory<GuestMemoryMmap>,
    seen: Option<ErrorCode>,
}
impl Read for RacingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.seen.is_none() {
            let r = self.g.convert(GuestAddress(LOW + 6 * PAGE_SIZE), PAGE_SIZE, Shareability::GuestOnly);
            self.seen = Some(match r {
                Err(Error::Refused { source, .. }) => source.code(),
                other => panic!("the conversion was not held off: {:?}", other),
            });
        }
        buf.fill(0xab);
        Ok(buf.len())
    }
}

#[test]
fn a_conversion_racing_a_device_access_waits_for_it_with_busy() {
    let g = guest();
    let mut src = RacingReader { g: &g, seen: None };
    g.read_exact_from(GuestAddress(LOW + 6 * PAGE_SIZE), &mut src, 256).unwrap();
    assert_eq!(src.seen, Some(ErrorCode::Busy));
    assert_eq!(g.inner().read_obj::<u8>(GuestAddress(LOW + 6 * PAGE_SIZE + 255)).unwrap(), 0xab);
    // Access over: the conversion goes through, and the device is locked out.
    g.convert(GuestAddress(LOW + 6 * PAGE_SIZE), PAGE_SIZE, Shareability::GuestOnly).unwrap();
    assert!(g.read_obj::<u8>(GuestAddress(LOW + 6 * PAGE_SIZE)).unwrap_err().is_guest_only());
}

#[test]
fn the_device_sees_the_bytes_guestmem_tracks_a_zeroing_conversion_clears_them() {
    let g = guest();
    let gpa = GuestAddress(LOW + 7 * PAGE_SIZE);
    g.write_obj(0x1122_3344_5566_7788u64, gpa).unwrap();
    let (mem, page) = g.memory_at(gpa).unwrap();
    assert_eq!(page, 7);
    let zero = ConvertOptions { content: Content::Zero, ..Default::default() };
    mem.convert_with(7..8, Shareability::GuestOnly, &zero).unwrap();
    mem.convert(7..8, Shareability::Shared).unwrap();
    assert_eq!(g.read_obj::<u64>(gpa).unwrap(), 0);
}

#[test]
fn addresses_outside_guest_memory_and_mismatched_setups_are_refused() {
    let g = guest();
    match g.read_obj::<u32>(GuestAddress(0x8000_0000)).unwrap_err() {
        Error::Memory(GuestMemoryError::InvalidGuestAddress(a)) => assert_eq!(a.0, 0x8000_0000),
        other => panic!("{:?}", other),
    }
    assert!(matches!(
        g.convert(GuestAddress(LOW + 7 * PAGE_SIZE), 2 * PAGE_SIZE, Shareability::Shared),
        Err(Error::Memory(_))
    ));
    let anon = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x4000)]).unwrap();
    let wrong = GuardedMemory::new(anon, vec![memfd(3)]);
    assert!(matches!(wrong, Err(Error::Setup(_))));
    let anon = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x4000)]).unwrap();
    assert!(matches!(GuardedMemory::new(anon, vec![]), Err(Error::Setup(_))));
    let sim = Memory::new(&Config::simulated(4)).unwrap();
    assert!(matches!(GuardedMemory::from_memfd(vec![(GuestAddress(0), sim)]), Err(Error::Setup(_))));
}

#[test]
fn a_hole_in_the_guestmem_object_refuses_the_access() {
    let anon = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x4000)]).unwrap();
    let mem = Memory::new(&Config::simulated(4)).unwrap();
    mem.allocate(0..2).unwrap();
    let g = GuardedMemory::new(anon, vec![mem]).unwrap();
    g.write_obj(7u32, GuestAddress(0x1000)).unwrap();
    match g.read_obj::<u32>(GuestAddress(0x2004)).unwrap_err() {
        Error::Refused { gpa, source } => {
            assert_eq!((gpa.0, source.code()), (0x2004, ErrorCode::NotAllocated));
        }
        other => panic!("{:?}", other),
    }
}

/// Vetoes every conversion.
struct NoSharing;
impl guestmem_tracker::Consumer for NoSharing {
    fn prepare(&self, _: &guestmem_tracker::Invalidation) -> Result<(), guestmem_tracker::Veto> {
        Err(guestmem_tracker::Veto::new("no sharing today"))
    }
}

#[test]
fn a_vetoed_conversion_through_the_adapter_is_refused_with_the_veto_and_its_gpa() {
    let g = guest();
    let (mem, _) = g.memory_at(GuestAddress(HIGH)).unwrap();
    let b = mem.bind(NoSharing, 0..8, 0).unwrap();
    match g.convert(GuestAddress(HIGH + 5 * PAGE_SIZE), PAGE_SIZE, Shareability::Shared).unwrap_err() {
        Error::Refused { gpa, source } => {
            assert_eq!(
                (gpa.0, source.code(), source.binding()),
                (HIGH + 5 * PAGE_SIZE, ErrorCode::Vetoed, Some(b.id()))
            );
        }
        other => panic!("{:?}", other),
    }
    assert!(g.read_obj::<u8>(GuestAddress(HIGH + 5 * PAGE_SIZE)).unwrap_err().is_guest_only());
}
