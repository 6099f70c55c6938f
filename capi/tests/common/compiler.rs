//! The system C compiler, as every C test here runs it: `$CC`, else `cc` (the one Rust
//! links with). Shared by tests/ and src/layout_tests.rs (through `#[path]`), so that
//! both honour $CC the same way.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// The flags every C file here is compiled with.
pub const STRICT: [&str; 5] = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"];

/// The C compiler's command: `$CC`, else `cc`.
pub fn name() -> String {
    std::env::var("CC")
        .ok()
        .filter(|cc| !cc.is_empty())
        .unwrap_or_else(|| "cc".into())
}

/// Runs the C compiler with `args`; fails, never skips, without one.
pub fn cc(args: &[&OsStr]) {
    let compiler = name();
    let started = std::time::Instant::now();
    let out = Command::new(&compiler)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the C compiler `{compiler}` ({e}): install gcc or clang, or set CC")
        });
    assert!(
        out.status.success(),
        "{compiler} {:?} failed:\n{}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{compiler}: {:.1} s for {:?}",
        started.elapsed().as_secs_f64(),
        args.last().unwrap()
    );
}

/// Compiles the C file `src` into `exe` with the strict flags and `include` on the header
/// path, then `extra` (libraries, rpath) at the end of the line.
pub fn compile(include: &Path, src: &Path, exe: &Path, extra: &[&OsStr]) {
    let mut args: Vec<&OsStr> = STRICT.iter().map(OsStr::new).collect();
    args.extend([
        OsStr::new("-I"),
        include.as_os_str(),
        src.as_os_str(),
        OsStr::new("-o"),
        exe.as_os_str(),
    ]);
    args.extend_from_slice(extra);
    cc(&args);
}
