//! A tiny VMM-shaped program: guest memory for a confidential guest (a KVM
//! guest_memfd where /dev/kvm and the kernel allow, else a memfd), a
//! stage-2 consumer written in Rust bound over it, a guest that shares the
//! pages of its virtio ring, a conversion the stage-2 vetoes (and that rolls
//! back), and a device model reading the ring through the vm-memory adapter,
//! refused at the one private page it was handed. No vCPU runs. Exits 0 when
//! every step did what it should, else panics (status 101).
use std::collections::BTreeSet;
use std::sync::Mutex;

use guestmem_tracker::{
    CommitReport, Config, Consumer, ErrorCode, Invalidation, Memory, Order, Shareability, Veto, PAGE_SIZE,
};
use guestmem_vm_memory::{Error as AccessError, GuardedMemory};
use vm_memory::{Bytes, GuestAddress};

const GPA_BASE: u64 = 0x8000_0000;
const PAGES: u64 = 512; // 2 MiB of guest memory
const VMSA_PAGE: u64 = 100; // a page the stage-2 will not let the guest share

/// The stage-2 tables, reduced to the set of GFNs mapped private.
struct Stage2 {
    private_gfns: Mutex<BTreeSet<u64>>,
}

impl Consumer for Stage2 {
    fn name(&self) -> &str {
        "stage2"
    }
    fn prepare(&self, inv: &Invalidation) -> Result<(), Veto> {
        if inv.vetoable() && inv.pages().contains(&VMSA_PAGE) {
            return Err(Veto::new("the VMSA page stays private").at(VMSA_PAGE));
        }
        Ok(())
    }
    fn commit(&self, inv: &Invalidation, _report: &mut CommitReport<'_>) {
        // Unmap the invalidated GFNs; the next guest access faults them back in.
        let mut gfns = self.private_gfns.lock().unwrap();
        for gfn in inv.targets() {
            gfns.remove(&gfn);
        }
    }
}

/// A KVM VM fd, if /dev/kvm can make one (the fd stays open for the program).
fn kvm_vm() -> Option<i32> {
    // SAFETY: plain open/ioctl on a path and a fresh fd.
    unsafe {
        let kvm = libc::open(b"/dev/kvm\0".as_ptr().cast(), libc::O_RDWR | libc::O_CLOEXEC);
        if kvm < 0 {
            println!("tiny_vmm: no /dev/kvm: guest memory is a memfd");
            return None;
        }
        const KVM_CREATE_VM: libc::c_ulong = 0xAE01;
        const KVM_X86_SW_PROTECTED_VM: libc::c_ulong = 3;
        let mut vm = libc::ioctl(kvm, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
        if vm < 0 {
            println!("tiny_vmm: KVM refused a software-protected VM: trying a default VM");
            vm = libc::ioctl(kvm, KVM_CREATE_VM, 0 as libc::c_ulong);
        }
        if vm < 0 {
            println!("tiny_vmm: KVM refused a VM: guest memory is a memfd");
            return None;
        }
        Some(vm)
    }
}

fn guest_memory() -> GuardedMemory<vm_memory::GuestMemoryMmap> {
    let memfd = Config::memfd(PAGES).initial(Shareability::GuestOnly).max_order(Order::Huge2M);
    if let Some(vm) = kvm_vm() {
        let cfg = Config::guest_memfd(PAGES, vm).initial(Shareability::GuestOnly).max_order(Order::Huge2M);
        match Memory::new(&cfg).and_then(|m| m.allocate(0..PAGES).map(|_| m)) {
            Ok(m) => match GuardedMemory::from_memfd(vec![(GuestAddress(GPA_BASE), m)]) {
                Ok(g) => {
                    println!("tiny_vmm: guest memory is a KVM guest_memfd");
                    return g;
                }
                Err(e) => println!("tiny_vmm: guest_memfd cannot be mapped ({}): guest memory is a memfd", e),
            },
            Err(e) => println!("tiny_vmm: no guest_memfd ({}): guest memory is a memfd", e),
        }
    }
    let m = Memory::new(&memfd).expect("memfd guest memory");
    m.allocate(0..PAGES).expect("allocate");
    GuardedMemory::from_memfd(vec![(GuestAddress(GPA_BASE), m)]).expect("map the memfd")
}

fn main() {
    let guest = guest_memory();
    let (mem, _) = guest.memory_at(GuestAddress(GPA_BASE)).unwrap();
    let base_gfn = GPA_BASE / PAGE_SIZE;
    let stage2 = Stage2 { private_gfns: Mutex::new((base_gfn..base_gfn + PAGES).collect()) };
    let s2 = mem.bind(stage2, 0..PAGES, base_gfn).expect("bind the stage-2");

    // The guest shares pages 0..4 for its virtio ring (a hypercall exit).
    guest.convert(GuestAddress(GPA_BASE), 4 * PAGE_SIZE, Shareability::Shared).expect("share the ring");
    assert!(!s2.consumer().private_gfns.lock().unwrap().contains(&base_gfn));
    println!("tiny_vmm: shared GPA {:#x}..{:#x}; stage-2 unmapped them", GPA_BASE, GPA_BASE + 4 * PAGE_SIZE);

    // The guest asks to share pages 96..104: the stage-2 vetoes, nothing changes.
    let err = mem.convert(96..104, Shareability::Shared).unwrap_err();
    assert_eq!((err.code(), err.page(), err.binding()), (ErrorCode::Vetoed, Some(VMSA_PAGE), Some(s2.id())));
    assert_eq!(mem.shareability_at(96).unwrap(), Shareability::GuestOnly);
    assert!(s2.consumer().private_gfns.lock().unwrap().contains(&(base_gfn + 96)));
    println!("tiny_vmm: conversion of pages 96..104 vetoed and rolled back: {}", err);

    // The guest fills a descriptor in its shared ring; the device reads it.
    let desc = GuestAddress(GPA_BASE);
    guest.inner().write_obj(GPA_BASE + PAGE_SIZE, desc).unwrap(); // buffer: shared page 1
    guest.inner().write_slice(b"ping", GuestAddress(GPA_BASE + PAGE_SIZE)).unwrap();
    let buf_gpa: u64 = guest.read_obj(desc).expect("the device reads the shared descriptor");
    let mut bytes = [0u8; 4];
    guest.read_slice(&mut bytes, GuestAddress(buf_gpa)).expect("the device reads the shared buffer");
    assert_eq!(&bytes, b"ping");
    println!("tiny_vmm: the device read {:?} from GPA {:#x}", std::str::from_utf8(&bytes).unwrap(), buf_gpa);

    // A buggy (or malicious) descriptor points at private memory: refused.
    let private = GPA_BASE + 200 * PAGE_SIZE;
    guest.inner().write_obj(private, desc).unwrap();
    let buf_gpa: u64 = guest.read_obj(desc).unwrap();
    match guest.read_slice(&mut bytes, GuestAddress(buf_gpa)) {
        Err(e @ AccessError::Refused { .. }) if e.is_guest_only() => println!("tiny_vmm: {}", e),
        other => panic!("a device read of a private page was not refused: {:?}", other),
    }
    drop(s2);
    println!("tiny_vmm: ok");
}
