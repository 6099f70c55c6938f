//! examples/c/chat.c, built with the system C compiler against libedgeseek.a (static) and
//! libedgeseek.so (dynamic), answers on SmolLM2 as the Rust examples do.

mod common;

use std::ffi::OsStr;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

use common::{cc, gpu_command, header, library, scratch, smollm2, STRICT};

const QUESTION: &str = "What is the capital of France? Answer in one sentence.";

/// Compiles examples/c/chat.c into `dir`, linked with `link` (after the source).
fn build_chat(dir: &std::path::Path, link: &[&OsStr]) -> PathBuf {
    let exe = dir.join("chat");
    let src = header::repo_root().join("examples/c/chat.c");
    let include = header::repo_root().join("include");
    let mut args: Vec<&OsStr> = STRICT.iter().map(OsStr::new).collect();
    args.extend([OsStr::new("-I"), include.as_os_str(), src.as_os_str()]);
    args.extend([OsStr::new("-o"), exe.as_os_str()]);
    args.extend(link);
    cc(&args);
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
    let lib = library();
    let dir = scratch("chat_static");
    let archive = lib.archive();
    let mut link = vec![archive.as_os_str()];
    link.extend(lib.native_static_libs.iter().map(OsStr::new));
    let exe = build_chat(&dir, &link);
    let answer = run(&exe, Some(QUESTION), "");
    assert!(answer.contains("Paris"), "{answer}");
}

#[test]
fn the_dynamically_linked_c_chat_holds_a_conversation() {
    let lib = library();
    let dir = scratch("chat_dynamic");
    let rpath = format!("-Wl,-rpath,{}", lib.dir.display());
    let exe = build_chat(
        &dir,
        &[
            OsStr::new("-L"),
            lib.dir.as_os_str(),
            OsStr::new("-ledgeseek"),
            OsStr::new(&rpath),
        ],
    );
    // The REPL: one line per turn, the second continuing the first, then end of input.
    let answer = run(&exe, None, &format!("{QUESTION}\nAnd of Italy?\n"));
    let (first, second) = answer.split_once("\n> ").unwrap_or((&answer, ""));
    assert!(first.contains("Paris"), "{answer}");
    assert!(second.contains("Rome"), "{answer}");
}
