//! The dense architectures against llama.cpp on tiny random-weight fixtures: every
//! architecture (llama, qwen2, qwen3) in every fixture format, on the default path,
//! without f16, under downlevel limits, and with matrices split into tiny bindings.
//! Fixtures and goldens: tests/fixtures/make_fixtures.py, make_goldens.py.

mod common;

use common::{compare, fixture, golden, load};
use edgeseek::{DeviceOptions, LoadOptions};

const ARCHS: [&str; 3] = ["llama", "qwen2", "qwen3"];
const FORMATS: [&str; 6] = ["F32", "F16", "Q8_0", "Q4_0", "Q4_K_M", "Q6_K"];

/// Our kernels dequantize exactly (tests in gpu::kernel_tests), so against llama.cpp
/// run on the same weights (the F32 dequantized copy for quantized fixtures) the only
/// differences are f32 summation order and KV rounding. llama.cpp's own f16-KV and
/// f32-KV runs differ by up to 0.019 on these fixtures (golden "spread"); we allow a
/// little over twice that.
const TOL_SAME_WEIGHTS: f32 = 0.05;

fn check_all(opts: &LoadOptions, path_name: &str) {
    // Without f16 our KV cache is f32: compare with llama.cpp's f32-KV run.
    let f32_kv = opts.device.no_f16;
    let mut report = Vec::new();
    for arch in ARCHS {
        for fmt in FORMATS {
            let name = format!("{arch}-{fmt}");
            let g = golden(&format!("{name}.json"));
            let quantized = !matches!(fmt, "F32" | "F16");
            let reference = match (f32_kv, quantized) {
                (true, _) => "f32_kv",
                (false, true) => "dequant_f32",
                (false, false) => "quant",
            };
            let mut model = load(&fixture(&format!("{name}.gguf")), opts);
            let d = compare(&mut model, &g, reference, TOL_SAME_WEIGHTS);
            assert_eq!(d.steps, 72, "{name}: 3 prompts x 24 steps");
            assert!(
                d.max_logit <= TOL_SAME_WEIGHTS && d.argmax_mismatch.is_empty(),
                "{path_name} {name} vs llama.cpp '{reference}': max logit diff {} (tol {TOL_SAME_WEIGHTS}), argmax mismatches {:?}",
                d.max_logit,
                d.argmax_mismatch
            );
            // Against llama.cpp's own quantized run, which rounds activations to 8 bits
            // inside its matmuls: we may be as far from it as its dequantized run is
            // (the golden's measured spread), plus our own tolerance.
            if quantized {
                let spread = g["spread"]["quant_vs_dequant_f32"].as_f64().unwrap() as f32;
                let tol = spread + TOL_SAME_WEIGHTS;
                let q = compare(&mut model, &g, "quant", tol);
                assert!(
                    q.max_logit <= tol && q.argmax_mismatch.is_empty(),
                    "{path_name} {name} vs llama.cpp 'quant': max logit diff {} (tol {tol}), argmax mismatches {:?}",
                    q.max_logit,
                    q.argmax_mismatch
                );
            }
            report.push(format!(
                "{name}: {:.4} ({} near-ties)",
                d.max_logit, d.near_ties
            ));
        }
    }
    eprintln!(
        "{path_name}: max |logit - llama.cpp| per fixture:\n  {}",
        report.join("\n  ")
    );
}

#[test]
fn fixtures_match_llama_cpp_default_path() {
    check_all(&LoadOptions::default(), "default");
}

#[test]
fn fixtures_match_llama_cpp_without_f16() {
    let opts = LoadOptions {
        device: DeviceOptions {
            no_f16: true,
            ..Default::default()
        },
        ..Default::default()
    };
    check_all(&opts, "no-f16");
}

#[test]
fn fixtures_match_llama_cpp_under_downlevel_limits() {
    let opts = LoadOptions {
        device: DeviceOptions {
            downlevel: true,
            ..Default::default()
        },
        ..Default::default()
    };
    check_all(&opts, "downlevel");
}

#[test]
fn fixtures_match_llama_cpp_with_matrices_split_into_tiny_bindings() {
    // 8 KiB parts: every matrix of the fixtures is split (the smallest, Q4_0 k/v, is
    // 128 rows x 144 bytes = 18 KiB), the embedding table into dozens of parts; and a
    // prefill batch of 5 pushes the 33-token prompt through 7 chunks.
    let opts = LoadOptions {
        max_binding_bytes: Some(8 << 10),
        max_batch: 5,
        ..Default::default()
    };
    check_all(&opts, "split");
}
