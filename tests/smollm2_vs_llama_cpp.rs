//! The real model in CI: SmolLM2-135M-Instruct Q4_1 (llama architecture, tied output)
//! against llama.cpp, 3 prompts x 32 greedy steps (tests/fixtures/make_smollm2_goldens.py).
//!
//! What llama.cpp disagrees with itself about on this model (golden "spread_detail"):
//! its quantized run rounds activations to 8 bits inside matmuls and moves the top
//! logits by up to 0.69 (1.15 with f32 KV) from the same model with exactly dequantized
//! F32 weights, while KV precision alone moves the dequantized run by only 0.023. Our
//! shaders dequantize exactly, so the dequantized runs are the reference to match.

mod common;

use common::{compare, golden, load, smollm2};
use edgeseek::{DeviceOptions, LoadOptions};

/// Against llama.cpp on identical (dequantized) weights: summation order and f16
/// rounding of K/V/Q over 30 layers, with logits up to ~35; llama.cpp's own f16-KV vs
/// f32-KV difference is 0.023 here. 0.1 leaves room for our different (but exact)
/// f32 reduction order.
const TOL_SAME_WEIGHTS: f32 = 0.1;

fn check(opts: &LoadOptions, reference: &str) {
    let g = golden("smollm2-135m-instruct-q4_1.json");
    let mut model = load(&smollm2(), opts);
    let d = compare(&mut model, &g, reference, TOL_SAME_WEIGHTS);
    eprintln!("SmolLM2 vs llama.cpp '{reference}': {d:?}");
    assert_eq!(d.steps, 96, "3 prompts x 32 steps");
    assert!(
        d.max_logit <= TOL_SAME_WEIGHTS && d.argmax_mismatch.is_empty(),
        "vs '{reference}': max logit diff {} (tol {TOL_SAME_WEIGHTS}), argmax mismatches {:?}",
        d.max_logit,
        d.argmax_mismatch
    );
    // And against llama.cpp's quantized run: no further than its own dequantized run.
    let spread = g["spread"]["quant_vs_dequant_f32"].as_f64().unwrap() as f32;
    let tol = spread + TOL_SAME_WEIGHTS;
    let q = compare(&mut model, &g, "quant", tol);
    eprintln!("SmolLM2 vs llama.cpp 'quant': {q:?}");
    assert!(
        q.max_logit <= tol && q.argmax_mismatch.is_empty(),
        "vs 'quant': max logit diff {} (tol {tol}), argmax mismatches {:?}",
        q.max_logit,
        q.argmax_mismatch
    );
}

#[test]
fn smollm2_matches_llama_cpp_with_f16_kv() {
    check(&LoadOptions { n_ctx: Some(256), ..Default::default() }, "dequant_f32");
}

#[test]
fn smollm2_matches_llama_cpp_with_f32_kv_and_downlevel_limits() {
    let device = DeviceOptions { no_f16: true, downlevel: true, ..Default::default() };
    check(&LoadOptions { device, n_ctx: Some(256), ..Default::default() }, "dequant_f32_f32_kv");
}
