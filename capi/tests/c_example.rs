//! examples/c/chat.c, built by examples/c/Makefile with the system C compiler against
//! libedgeseek.a (static) and libedgeseek.so (dynamic), answers on SmolLM2 as the Rust
//! examples do.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::compiler::{self, STRICT};
use common::{gpu_command, header, library, scratch, smollm2};

const QUESTION: &str = "What is the capital of France? Answer in one sentence.";

/// Builds examples/c/chat.c with its Makefile's `target` into `dir`, as a user would
/// (`make -C examples/c [static]`) but against the library under test: the test's
/// target directory (through CARGO_TARGET_DIR, as cargo users set it) and profile, the
/// test's C compiler and strict flags, and the native libraries rustc names here.
fn make_chat(target: &str, dir: &Path) -> PathBuf {
    let lib = library();
    let target_dir = lib.dir.parent().expect("target/<profile>");
    let profile = lib.dir.file_name().unwrap().to_str().unwrap();
    let started = std::time::Instant::now();
    let out = Command::new("make")
        .arg("-C")
        .arg(header::repo_root().join("examples/c"))
        .arg(target)
        .env("CARGO_TARGET_DIR", target_dir)
        .arg(format!("PROFILE={profile}"))
        .arg(format!("OUT={}", dir.display()))
        .arg(format!("CC={}", compiler::name()))
        .arg(format!("CFLAGS={}", STRICT.join(" ")))
        .arg(format!("NATIVE_LIBS={}", lib.native_static_libs.join(" ")))
        .output()
        .unwrap_or_else(|e| panic!("cannot run `make` ({e}): install make"));
    assert!(
        out.status.success(),
        "make {target} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("make {target}: {:.1} s", started.elapsed().as_secs_f64());
    let exe = dir.join(if target == "static" {
        "chat-static"
    } else {
        "chat"
    });
    assert!(exe.exists(), "make {target} made no {}", exe.display());
    exe
}

/// Runs the chat program greedily for at most 48 tokens; its stdout.
fn run(exe: &std::path::Path, question: Option<&str>, stdin: &str) -> String {
    let mut cmd = gpu_command(exe);
    cmd.args(["-n", "48"]).arg(smollm2::path());
    cmd.args(question);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} failed: {}\n{stdout}{}",
        exe.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_statically_linked_c_chat_answers_paris() {
    let dir = scratch("chat_static");
    let exe = make_chat("static", &dir);
    let answer = run(&exe, Some(QUESTION), "");
    assert!(answer.contains("Paris"), "{answer}");
}

#[test]
fn the_dynamically_linked_c_chat_holds_a_conversation() {
    let dir = scratch("chat_dynamic");
    let exe = make_chat("all", &dir);
    // The REPL: one line per turn, the second continuing the first, then end of input.
    let answer = run(&exe, None, &format!("{QUESTION}\nAnd of Italy?\n"));
    let (first, second) = answer.split_once("\n> ").unwrap_or((&answer, ""));
    assert!(first.contains("Paris"), "{answer}");
    assert!(second.contains("Rome"), "{answer}");

    // -n takes a whole number of tokens from 1 up, or the program stops (status 2)
    // before loading anything.
    for bad in ["abc", "12x", "0", "-3", ""] {
        let out = Command::new(&exe)
            .args(["-n", bad, "model.gguf"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "-n '{bad}': {stderr}");
        assert!(stderr.contains("-n wants a whole number"), "{stderr}");
    }
}
