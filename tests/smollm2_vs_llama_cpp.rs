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

use common::{compare, generate_json, golden, golden_mean_diff, load, smollm2, tolerances};
use edgeseek::{DeviceOptions, LoadOptions};

/// Against llama.cpp on identical (dequantized) weights: summation order and f16
/// rounding of K/V/Q over 30 layers, with logits up to ~35; llama.cpp's own f16-KV vs
/// f32-KV difference is 0.023 here. 0.1 leaves room for our different (but exact)
/// f32 reduction order.
const TOL_SAME_WEIGHTS: f32 = 0.1;

fn check(opts: &LoadOptions, reference: &str) {
    let g = golden("smollm2-135m-instruct-q4_1.json");
    let mut model = load(&smollm2(), opts);
    if model.device().q8_matvec {
        return check_8bit(&mut model, &g, reference);
    }
    let spread = g["spread"]["quant_vs_dequant_f32"].as_f64().unwrap() as f32;
    let (tol_d, tol) = tolerances(&model, spread, TOL_SAME_WEIGHTS);
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

/// With 8-bit activations (prefill and decode) we are one more 8-bit run, held to what
/// llama.cpp's own 8-bit runs do on this model, measured from the golden:
/// - their largest top-8 distance from the exact (dequantized) run is 0.69, and 1.15
///   between two of them (f16 vs f32 KV), where KV precision alone moves the exact
///   run 0.023. That maximum is a tail statistic of a chaotic quantity: reordering our
///   f32 sums alone moved ours from 0.82 to 1.26. So the maximum is only a guard
///   (twice the larger spread), and
/// - the mean distance, which is stable, must stay within 1.5x of theirs (0.16).
///
/// Against the quantized run both follow from the triangle inequality.
fn check_8bit(model: &mut edgeseek::Model, g: &serde_json::Value, reference: &str) {
    let spread = |k: &str| g["spread"][k].as_f64().unwrap() as f32;
    let noise_max = spread("quant_vs_dequant_f32").max(spread("f16kv_vs_f32kv"));
    let noise_mean = golden_mean_diff(g, "quant", "dequant_f32").max(golden_mean_diff(
        g,
        "f32_kv",
        "dequant_f32_f32_kv",
    ));
    let (max_d, mean_d) = (2.0 * noise_max + TOL_SAME_WEIGHTS, 1.5 * noise_mean);
    // Argmax must agree wherever llama.cpp's margin exceeds its own disagreement.
    let tie = noise_max + TOL_SAME_WEIGHTS;
    let d = compare(model, g, reference, tie);
    eprintln!(
        "SmolLM2 (8-bit) vs llama.cpp '{reference}': mean {} (tol {mean_d}), {d:?}",
        d.mean_logit()
    );
    assert_eq!(d.steps, 96, "3 prompts x 32 steps");
    assert!(
        d.mean_logit() <= mean_d && d.max_logit <= max_d && d.argmax_mismatch.is_empty(),
        "vs '{reference}': mean logit diff {} (tol {mean_d}), max {} (tol {max_d}), \
         argmax mismatches {:?}",
        d.mean_logit(),
        d.max_logit,
        d.argmax_mismatch
    );
    let mean_q = mean_d + golden_mean_diff(g, "quant", reference);
    let max_q = max_d + spread("quant_vs_dequant_f32");
    let q = compare(model, g, "quant", tie);
    eprintln!(
        "SmolLM2 (8-bit) vs llama.cpp 'quant': mean {} (tol {mean_q}), {q:?}",
        q.mean_logit()
    );
    assert!(
        q.mean_logit() <= mean_q && q.max_logit <= max_q && q.argmax_mismatch.is_empty(),
        "vs 'quant': mean logit diff {} (tol {mean_q}), max {} (tol {max_q}), argmax \
         mismatches {:?}",
        q.mean_logit(),
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
/// pipelines (lavapipe JIT-compiles each to machine code). Measured here at 75 MiB,
/// then 81 MiB once MatVecQ8 took four rows by four blocks per invocation (larger
/// inlined code; 45 MiB before the 8-bit kernels);
/// on lavapipe "GPU memory" is itself anonymous host memory, so the weights, KV cache
/// and scratch buffers count in the process's anonymous RSS once each.
const FIXED_OVERHEAD: u64 = 96 << 20;

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
