//! Where the SmolLM2 test model is: $EDGESEEK_SMOLLM2, else models/ (as the root's
//! tests/common/mod.rs looks it up; these tests do not fetch it). Shared by tests/ and
//! src/tests.rs (through `#[path]`).

use std::path::{Path, PathBuf};

pub const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The model's path; panics with what to do when it is missing: never skips.
pub fn path() -> PathBuf {
    let (path, from) = match std::env::var_os("EDGESEEK_SMOLLM2") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), " (EDGESEEK_SMOLLM2)"),
        _ => (
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../models")
                .join(FILE),
            "",
        ),
    };
    assert!(
        path.exists(),
        "the SmolLM2 test model {}{from} is missing: run models/fetch-smollm2.sh, or set \
         EDGESEEK_SMOLLM2 to {FILE}",
        path.display()
    );
    path
}
