//! What the C tests share: the built library, the system C compiler and the model.
//!
//! capi's crate types are cdylib and staticlib only (an rlib would collide with the
//! edgeseek crate's libedgeseek.rlib), so no Rust target depends on the library and
//! `cargo test` does not build it by itself. The tests build it with the cargo that
//! runs them, in the same target directory and profile (nothing but capi's own crate
//! is compiled: the rest is what `cargo test` just built), so the libraries are the
//! code under test.

#![allow(dead_code)] // each test binary uses part of it

pub mod compiler;
pub mod header;
pub mod smollm2;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub struct Library {
    /// target/<profile>: libedgeseek.so (.dylib) and libedgeseek.a.
    pub dir: PathBuf,
    /// What the staticlib needs after it on the link line ("-ldl -lgcc_s ... -lc").
    pub native_static_libs: Vec<String>,
}

impl Library {
    pub fn shared(&self) -> PathBuf {
        let name = if cfg!(target_os = "macos") {
            "libedgeseek.dylib"
        } else {
            "libedgeseek.so"
        };
        self.dir.join(name)
    }
    pub fn archive(&self) -> PathBuf {
        self.dir.join("libedgeseek.a")
    }
}

/// Builds the C library (once per test binary) and says where it is.
pub fn library() -> &'static Library {
    static LIBRARY: OnceLock<Library> = OnceLock::new();
    LIBRARY.get_or_init(build)
}

fn build() -> Library {
    // The test runs from target/<profile dir>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("the test's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("target/").to_path_buf();
    let dir_name = profile_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // `cargo test` builds with the test profile into target/debug, `cargo test --release`
    // with the release profile into target/release; a custom profile has its own dir.
    let profile = match dir_name.as_str() {
        "debug" => "test",
        other => other,
    };
    let manifest = header::repo_root().join("Cargo.toml");
    // `cargo build`, not `cargo rustc -- --print native-static-libs`: with the test
    // profile `cargo rustc` builds the test harness instead of the library.
    // `-p edgeseek --example hello`: an example needs edgeseek's dev-dependencies, whose
    // features cargo then unifies into the shared dependencies (naga's "msl-out"), as the
    // root's `cargo test` does. Without it this build would want naga, wgpu and edgeseek
    // compiled a second time with fewer features (minutes on a fresh clone); with it,
    // after `cargo test` at the root only capi itself is compiled here.
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--profile",
            profile,
            "-p",
            "edgeseek-capi",
            "--lib",
        ])
        .args(["-p", "edgeseek", "--example", "hello"])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "building the C library failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let library = Library {
        dir: profile_dir,
        native_static_libs: native_static_libs(),
    };
    for path in [library.shared(), library.archive()] {
        assert!(path.exists(), "cargo built no {}", path.display());
    }
    library
}

/// The native libraries a Rust staticlib needs on this platform, as rustc prints them
/// for an empty one (std's: "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc" on Linux).
/// libedgeseek.a needs the same: `cargo rustc --release -p edgeseek-capi --crate-type
/// staticlib -- --print native-static-libs` prints only an extra leading -ldl (wgpu
/// loads Vulkan with dlopen), which std's list has already. Were a dependency to add
/// one, the static link below would fail with its undefined symbols, not pass quietly.
fn native_static_libs() -> Vec<String> {
    // The rustc beside the cargo running the tests (same toolchain), else PATH's.
    let cargo = std::path::PathBuf::from(env!("CARGO"));
    let sibling = cargo.with_file_name(format!("rustc{}", std::env::consts::EXE_SUFFIX));
    let rustc = if sibling.exists() {
        sibling
    } else {
        "rustc".into()
    };
    let dir = std::env::temp_dir().join(format!("edgeseek-native-libs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("empty.rs");
    std::fs::write(&src, "").unwrap();
    let out = Command::new(&rustc)
        .args([
            "--crate-type",
            "staticlib",
            "--print",
            "native-static-libs",
            "-o",
        ])
        .arg(dir.join("libempty.a"))
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", rustc.display()));
    std::fs::remove_dir_all(&dir).ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find_map(|l| l.split_once("native-static-libs:"))
        .map(|(_, libs)| libs.split_whitespace().map(str::to_string).collect())
        .unwrap_or_else(|| panic!("rustc printed no native-static-libs:\n{stderr}"))
}

/// A scratch directory for one test's outputs (under target/, removed first).
pub fn scratch(name: &str) -> PathBuf {
    let dir = library().dir.join("capi-tests").join(name);
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A command for a program that opens the GPU. GPU tests run on Mesa's lavapipe where
/// there is no GPU; its window-system probe wants a runtime directory.
pub fn gpu_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let xdg = std::env::temp_dir().join("edgeseek-xdg");
        std::fs::create_dir_all(&xdg).unwrap();
        cmd.env("XDG_RUNTIME_DIR", xdg);
    }
    cmd
}
