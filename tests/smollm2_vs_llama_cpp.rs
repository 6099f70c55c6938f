//! The real model in CI: SmolLM2-135M-Instruct Q4_1 (llama architecture, tied output)
//! against llama.cpp, 3 prompts x 32 greedy steps (tests/fixtures/make_smollm2_goldens.py).
//!
//! What llama.cpp disagrees with itself about on this model (golden "spread_detail"):
//! its quantized run rounds activations to 8 bits inside matmuls and moves the top
//! logits by up to 0.69 (1.15 with f32 KV) from the same model with exactly dequantized
//! F32 weights, while KV precision alone moves the dequantized run by only 0.023. Our
//! shaders dequantize exactly, so the dequantized runs are the reference to match
//! with f32 activations; our 8-bit decode activations (MatVecQ8, the default on
//! CPU-backed devices) are an approximation of the same kind as llama.cpp's.

mod common;

use common::{compare, generate_json, golden, load, smollm2, tolerances};
use edgeseek::{DeviceOptions, LoadOptions};

/// Against llama.cpp on identical (dequantized) weights: summation order and f16
/// rounding of K/V/Q over 30 layers, with logits up to ~35; llama.cpp's own f16-KV vs
/// f32-KV difference is 0.023 here. 0.1 leaves room for our different (but exact)
/// f32 reduction order.
const TOL_SAME_WEIGHTS: f32 = 0.1;

fn check(opts: &LoadOptions, reference: &str) {
    let g = golden("smollm2-135m-instruct-q4_1.json");
    let mut model = load(&smollm2(), opts);
    let spread = |k: &str| g["spread"][k].as_f64().unwrap() as f32;
    // With 8-bit activations (prefill and decode) we are one more 8-bit run, and on this
    // model such runs scatter more widely than quant vs dequant (0.69): llama.cpp's
    // quantized run alone moves 1.15 between f16 and f32 KV, where its dequantized
    // run moves 0.023. Ours measured 0.82 from both. So the 8-bit noise here is the
    // larger of the two spreads; with f32 activations it does not apply.
    let noise = match model.device().q8_matvec {
        true => spread("quant_vs_dequant_f32").max(spread("f16kv_vs_f32kv")),
        false => spread("quant_vs_dequant_f32"),
    };
    let (tol_d, tol) = tolerances(&model, noise, TOL_SAME_WEIGHTS);
    let d = compare(&mut model, &g, reference, tol_d);
    eprintln!("SmolLM2 vs llama.cpp '{reference}': {d:?}");
    assert_eq!(d.steps, 96, "3 prompts x 32 steps");
    assert!(
        d.max_logit <= tol_d && d.argmax_mismatch.is_empty(),
        "vs '{reference}': max logit diff {} (tol {tol_d}), argmax mismatches {:?}",
        d.max_logit,
        d.argmax_mismatch
    );
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
    check(
        &LoadOptions {
            n_ctx: Some(256),
            ..Default::default()
        },
        "dequant_f32",
    );
}

#[test]
fn smollm2_matches_llama_cpp_with_f32_activations() {
    let device = DeviceOptions {
        f32_activations: true,
        ..Default::default()
    };
    check(
        &LoadOptions {
            device,
            n_ctx: Some(256),
            ..Default::default()
        },
        "dequant_f32",
    );
}

#[test]
fn smollm2_matches_llama_cpp_with_f32_kv_and_downlevel_limits() {
    let device = DeviceOptions {
        no_f16: true,
        downlevel: true,
        ..Default::default()
    };
    check(
        &LoadOptions {
            device,
            n_ctx: Some(256),
            ..Default::default()
        },
        "dequant_f32_f32_kv",
    );
}

/// Bytes the runtime holds beyond what it uploaded: wgpu, the driver, compiled
/// pipelines. Measured here at about 66 MiB on lavapipe (45 MiB before the 8-bit
/// kernels; MatMulQ8 and AttentionRows added about 2 MiB each);
/// on lavapipe "GPU memory" is itself anonymous host memory, so the weights, KV cache
/// and scratch buffers count in the process's anonymous RSS once each.
const FIXED_OVERHEAD: u64 = 80 << 20;

#[test]
fn smollm2_weights_are_resident_once_and_the_file_is_released() {
    let model = smollm2();
    let j = generate_json(&[
        "--model",
        model.to_str().unwrap(),
        "--prompt-ids",
        "504,3575,282",
        "--max-tokens",
        "3",
        "--ctx",
        "512",
    ]);
    let n = |k: &str| j[k].as_u64().unwrap_or_else(|| panic!("no '{k}' in {j}"));
    let gpu = n("gpu_weights_bytes") + n("gpu_kv_bytes") + n("gpu_scratch_bytes");
    eprintln!(
        "anon RSS {} MiB for {} MiB of GPU buffers; model file resident {} of {} bytes; peak {} MiB",
        n("anon_rss_bytes") >> 20,
        gpu >> 20,
        n("model_file_rss_bytes"),
        n("model_file_bytes"),
        n("peak_rss_bytes") >> 20
    );
    assert!(
        n("model_file_rss_bytes") * 10 < n("model_file_bytes"),
        "the mmap is still resident: {j}"
    );
    assert!(
        n("anon_rss_bytes") <= gpu + FIXED_OVERHEAD,
        "weights held more than once? {j}"
    );
    // Weights were uploaded: not a trivially small model.
    assert!(n("gpu_weights_bytes") > 90_000_000);
}
