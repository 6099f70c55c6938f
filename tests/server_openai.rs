//! The official `openai` Python client against the `serve` example: chat whole and
//! streamed, usage, stop strings, text completions, errors as the SDK's exceptions
//! (SmolLM2), and `reasoning_content` on the DeepSeek-R1 template (a tiny qwen2 fixture).
//! The checks are in tests/openai_client.py; the client is pip-installed into cargo's
//! target directory on first use.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::server::Server;

/// The client version the checks were written against.
const OPENAI_PIP: &str = "openai==3.63.0";

/// A directory holding the `openai` package (installed on first use).
fn openai_package() -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    // Named by version: another pin installs beside it. Installed into a scratch
    // directory and renamed, so an interrupted install is never taken for a whole one.
    let dir = base.join(format!("python-{}", OPENAI_PIP.replace("==", "-")));
    if dir.is_dir() {
        return dir;
    }
    let scratch = base.join(format!("python-openai-partial-{}", std::process::id()));
    std::fs::remove_dir_all(&scratch).ok();
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg("--target")
        .arg(&scratch)
        .arg(OPENAI_PIP)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed to run the openai client: {e}"));
    assert!(
        out.status.success(),
        "pip could not install {OPENAI_PIP} into {} (PyPI must be reachable): {}",
        scratch.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    if std::fs::rename(&scratch, &dir).is_err() {
        // Another test process installed it first.
        std::fs::remove_dir_all(&scratch).ok();
    }
    dir
}

#[test]
fn the_openai_python_client_talks_to_the_server() {
    let package = openai_package();
    let chat = Server::smollm2("smollm2", &[]);
    // Random weights: the reply never leaves the think span the template opens.
    let r1 = Server::start(&[
        "--model",
        common::fixture("qwen2-Q8_0.gguf").to_str().unwrap(),
        "--template",
        "deepseek-r1",
        "--model-name",
        "tiny-r1",
    ]);
    let out = Command::new("python3")
        .arg(common::repo().join("tests/openai_client.py"))
        .args(["--url", &format!("http://{}/v1", chat.addr)])
        .args(["--model", "smollm2"])
        .args(["--r1-url", &format!("http://{}/v1", r1.addr)])
        .args(["--r1-model", "tiny-r1"])
        .env("PYTHONPATH", &package)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    println!("{stdout}");
}
