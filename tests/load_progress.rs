//! `Model::load_with_progress` (chat's progress line): the callback's byte count never
//! goes back, never passes the total, and ends exactly at it — for a model whose output
//! matrix is its token embeddings (SmolLM2), one with its own output matrix, one whose
//! dense layers partly stream under a budget, and a MoE model whose experts are all
//! uploaded at load (the total grows by the experts' bytes once the dense part is done).

mod common;

use std::path::Path;

use common::fixture;
use edgeseek::{LoadOptions, Model};

fn check(path: &Path, opts: &LoadOptions) -> Model {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut calls: Vec<(u64, u64)> = Vec::new();
    let model = Model::load_with_progress(path, opts, &mut |done, total| calls.push((done, total)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!calls.is_empty(), "{name}: no progress");
    let mut last = (0, 0);
    for &(done, total) in &calls {
        assert!(done <= total, "{name}: {done} of {total} bytes");
        assert!(
            done >= last.0 && total >= last.1,
            "{name}: progress went back from {last:?} to {:?}",
            (done, total)
        );
        last = (done, total);
    }
    assert_eq!(last.0, last.1, "{name}: progress ended at {last:?}");
    assert!(last.1 > 0, "{name}");
    model
}

#[test]
fn progress_ends_at_its_total_and_never_passes_it() {
    let opts = LoadOptions {
        n_ctx: Some(64),
        ..Default::default()
    };
    // Tied output (the embeddings are uploaded as the output matrix).
    check(&common::smollm2(), &opts);
    // Its own output matrix.
    check(&fixture("qwen2-Q4_K_M.gguf"), &opts);
    // Dense layers streamed under a budget of 40% of the file.
    let path = fixture("llama-Q4_K_M.gguf");
    let size = std::fs::metadata(&path).unwrap().len();
    let small = LoadOptions {
        max_resident_bytes: Some(size * 4 / 10),
        max_batch: 8,
        ..opts.clone()
    };
    let streamed = check(&path, &small);
    assert!(
        !streamed.plan().streamed_layers.is_empty(),
        "nothing streamed: {:?}",
        streamed.plan()
    );
    drop(streamed);
    // MoE: every expert fits the default cache and is uploaded at load.
    let moe = fixture("deepseek2-lite-Q8_0.gguf");
    let model = Model::load(&moe, &opts).unwrap();
    let (slots, all) = model.expert_slots().unwrap();
    assert!(u64::from(slots) >= all, "the fixture's experts all fit");
    drop(model);
    check(&moe, &opts);
}
