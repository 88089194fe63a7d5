// Finds libguestmem_c for the link, in this order:
// 1. GUESTMEM_C_LIB_DIR: the directory holding libguestmem_c.so / .a (a
//    CMake build tree's src/c, or an install's lib directory);
// 2. pkg-config guestmem-c (the installed package's guestmem-c.pc);
// 3. neither: plain `-l guestmem_c`, left to the linker's default paths.
// GUESTMEM_C_STATIC=1 links libguestmem_c.a (plus the C++ runtime it needs)
// instead of the shared library.
use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GUESTMEM_C_LIB_DIR");
    println!("cargo:rerun-if-env-changed=GUESTMEM_C_STATIC");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let want_static = env::var("GUESTMEM_C_STATIC").map(|v| v == "1").unwrap_or(false);
    let kind = if want_static { "static" } else { "dylib" };
    if let Ok(dir) = env::var("GUESTMEM_C_LIB_DIR") {
        println!("cargo:rustc-link-search=native={}", dir);
        println!("cargo:rustc-link-lib={}=guestmem_c", kind);
        println!("cargo:lib_dir={}", dir);
    } else if let Some(dirs) = pkg_config_lib_dirs(want_static) {
        for dir in &dirs {
            println!("cargo:rustc-link-search=native={}", dir);
        }
        println!("cargo:rustc-link-lib={}=guestmem_c", kind);
        if let Some(dir) = dirs.first() {
            println!("cargo:lib_dir={}", dir);
        }
    } else {
        println!(
            "cargo:warning=guestmem-sys: neither GUESTMEM_C_LIB_DIR nor pkg-config guestmem-c found \
             libguestmem_c; linking -l guestmem_c from the default paths"
        );
        println!("cargo:rustc-link-lib={}=guestmem_c", kind);
    }
    if want_static {
        // libguestmem_c.a is C++ inside (Libs.private: -lstdc++ in the .pc).
        println!("cargo:rustc-link-lib=dylib=stdc++");
    }
}

/// The -L directories of `pkg-config --libs guestmem-c`, or None when
/// pkg-config or the package is missing.
fn pkg_config_lib_dirs(want_static: bool) -> Option<Vec<String>> {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let mut cmd = Command::new(pkg_config);
    cmd.arg("--libs");
    if want_static {
        cmd.arg("--static");
    }
    let out = cmd.arg("guestmem-c").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.split_whitespace().filter_map(|w| w.strip_prefix("-L")).map(str::to_string).collect())
}
