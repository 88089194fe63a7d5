//! The examples run to completion: tiny_vmm does every step it prints, and
//! bench_convert's two paths agree on what they measured (a short run).
use std::process::Command;

#[test]
fn the_tiny_vmm_shares_its_ring_sees_a_veto_roll_back_and_is_refused_a_private_read() {
    let out = Command::new(env!("CARGO_BIN_EXE_tiny_vmm")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", text, String::from_utf8_lossy(&out.stderr));
    print!("{}", text);
    assert!(text.contains("vetoed and rolled back"));
    assert!(text.contains("the device read \"ping\""));
    assert!(text.contains(&format!("GPA {:#x} refused: the page is guest_only", 0x8000_0000u64 + 200 * 4096)));
    assert!(text.ends_with("tiny_vmm: ok\n"));
}

#[test]
fn both_benchmark_paths_run_their_conversions() {
    for mode in ["raw", "safe"] {
        let out = Command::new(env!("CARGO_BIN_EXE_bench_convert")).args([mode, "1000"]).output().unwrap();
        assert!(out.status.success(), "{}: {}", mode, String::from_utf8_lossy(&out.stderr));
    }
}
