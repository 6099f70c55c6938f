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
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-openai");
    if dir.join("openai").is_dir() {
        return dir;
    }
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg("--target")
        .arg(&dir)
        .arg(OPENAI_PIP)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed to run the openai client: {e}"));
    assert!(
        out.status.success(),
        "pip could not install {OPENAI_PIP} into {} (PyPI must be reachable): {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

#[test]
fn the_openai_python_client_talks_to_the_server() {
    let package = openai_package();
    let smollm2 = common::repo().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        smollm2.exists(),
        "{} is missing: run models/fetch-smollm2.sh",
        smollm2.display()
    );
    let chat = Server::start(&[
        "--model",
        smollm2.to_str().unwrap(),
        "--model-name",
        "smollm2",
    ]);
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
