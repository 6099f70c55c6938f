//! Bad model files through `examples/generate`: a clear error naming the file and the
//! problem on stderr, a non-zero exit, no panic, well under a second (every check
//! happens before the GPU is touched). The bad files are a real fixture with one
//! field broken.

mod common;

use std::path::{Path, PathBuf};

use common::generate_exe;
use std::process::Command;
use std::time::{Duration, Instant};

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle in fixture")
}

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgeseek-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Runs generate on `path`; asserts failure, no panic, speed, and every needle in stderr.
fn expect_error(path: &Path, needles: &[&str]) {
    let t = Instant::now();
    let out = Command::new(generate_exe())
        .args([
            "--model",
            path.to_str().unwrap(),
            "--prompt-ids",
            "1,2,3",
            "--max-tokens",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    let elapsed = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}: exit 0", path.display());
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}: exit code (101 is a panic): {stderr}",
        path.display()
    );
    assert!(out.stdout.is_empty(), "no JSON on failure");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(path.file_name().unwrap().to_str().unwrap()),
        "names the file: {stderr}"
    );
    for n in needles {
        assert!(stderr.contains(n), "expected '{n}' in: {stderr}");
    }
    assert!(
        elapsed < Duration::from_secs(1),
        "{}: took {elapsed:?}",
        path.display()
    );
}

fn base() -> Vec<u8> {
    std::fs::read(common::fixture("llama-Q8_0.gguf")).unwrap()
}

#[test]
fn truncated_header() {
    expect_error(&scratch("trunc-header.gguf", &base()[..20]), &["bad file"]);
}

#[test]
fn truncated_tensor_data() {
    let b = base();
    expect_error(
        &scratch("trunc-data.gguf", &b[..b.len() * 3 / 5]),
        &["past the end"],
    );
}

#[test]
fn tensor_count_2_pow_40() {
    let mut b = base();
    b[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes()); // header: magic, version, n_tensors
    expect_error(&scratch("tensor-count.gguf", &b), &["bad file", "tensor"]);
}

#[test]
fn string_length_2_pow_62() {
    let mut b = base();
    // general.architecture's value: u32 type, u64 length, bytes.
    let at = find(&b, b"general.architecture") + "general.architecture".len() + 4;
    b[at..at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    expect_error(&scratch("string-len.gguf", &b), &["bad file", "string"]);
}

#[test]
fn tensor_offset_past_end_of_file() {
    let mut b = base();
    // Tensor info: u64 name length, name, u32 n_dims, u64 dims[n], u32 type, u64 offset.
    let name = b"output_norm.weight";
    let at = find(&b, name) + name.len() + 4 + 8 + 4;
    b[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    expect_error(
        &scratch("offset.gguf", &b),
        &["output_norm.weight", "past the end"],
    );
}

#[test]
fn unknown_architecture() {
    let mut b = base();
    let at = find(&b, b"general.architecture") + "general.architecture".len() + 12;
    b[at..at + 5].copy_from_slice(b"mamba");
    expect_error(
        &scratch("arch.gguf", &b),
        &["unsupported", "architecture 'mamba'"],
    );
}

#[test]
fn unsupported_weight_type() {
    let mut b = base();
    let name = b"output_norm.weight";
    let at = find(&b, name) + name.len() + 4 + 8;
    b[at..at + 4].copy_from_slice(&39u32.to_le_bytes()); // MXFP4
    expect_error(
        &scratch("wtype.gguf", &b),
        &["unsupported", "output_norm.weight", "MXFP4"],
    );
}

#[test]
fn missing_file() {
    expect_error(Path::new("/nonexistent/model.gguf"), &["model.gguf"]);
}

#[test]
fn directory_as_model() {
    // Before: "No such device (os error 19)" from mapping a directory.
    let dir = std::env::temp_dir()
        .join(format!("edgeseek-cli-{}", std::process::id()))
        .join("a_model_dir");
    std::fs::create_dir_all(&dir).unwrap();
    let with_slash = PathBuf::from(format!("{}/", dir.display()));
    expect_error(
        &with_slash,
        &[
            "a_model_dir",
            "is a directory, not a file",
            "expected a GGUF model file",
        ],
    );
}
