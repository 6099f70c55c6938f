//! The MoE architectures against llama.cpp on tiny random-weight fixtures: deepseek2 in
//! DeepSeek-V2-Lite style (plain q, legacy attn_kv_b, softmax router, two shared
//! experts, YaRN), deepseek2 in V3/R1 style (q_a/q_b, split attn_k_b/attn_v_b, sigmoid
//! router with selection bias and expert groups, normalised and scaled weights) and
//! qwen3moe; each in F32, Q8_0 and Q4_K_M. Then streaming: the smallest expert cache
//! gives bitwise the logits of the all-resident one, after really missing and evicting.
//! Fixtures and goldens: tests/fixtures/make_moe_fixtures.py, make_moe_goldens.py.

mod common;

use common::{compare, fixture, golden, load};
use edgeseek::{DeviceOptions, ExpertBudget, LoadOptions};

const MODELS: [&str; 3] = ["deepseek2-lite", "deepseek2-v3", "qwen3moe"];
const FORMATS: [&str; 3] = ["F32", "Q8_0", "Q4_K_M"];

/// As for the dense fixtures (tests/models_vs_llama_cpp.rs): f32 summation order and
/// KV rounding only, against llama.cpp run on the same (dequantized) weights.
const TOL_SAME_WEIGHTS: f32 = 0.05;

fn check_all(opts: &LoadOptions, path_name: &str) {
    let f32_kv = opts.device.no_f16;
    let mut report = Vec::new();
    for m in MODELS {
        for fmt in FORMATS {
            let name = format!("{m}-{fmt}");
            let g = golden(&format!("{name}.json"));
            let quantized = fmt != "F32";
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
        "{path_name}: max |logit - llama.cpp| per MoE fixture:\n  {}",
        report.join("\n  ")
    );
}

#[test]
fn moe_fixtures_match_llama_cpp() {
    check_all(&LoadOptions::default(), "default");
}

#[test]
fn moe_fixtures_match_llama_cpp_without_f16_under_downlevel_limits() {
    let opts = LoadOptions {
        device: DeviceOptions {
            no_f16: true,
            downlevel: true,
            ..Default::default()
        },
        ..Default::default()
    };
    check_all(&opts, "no-f16 downlevel");
}

/// Prefill of the golden's 33-token prompt, then 24 greedy steps: every step's logits.
fn trajectory(model: &mut edgeseek::Model, prompt: &[u32]) -> Vec<Vec<f32>> {
    model.reset();
    let mut out = vec![model.eval(prompt).expect("prefill").to_vec()];
    for _ in 0..24 {
        let next = edgeseek::sampler::argmax(out.last().unwrap());
        out.push(model.eval(&[next]).expect("decode").to_vec());
    }
    out
}

#[test]
fn smallest_expert_cache_gives_bitwise_the_all_resident_logits() {
    for m in MODELS {
        for fmt in ["F32", "Q4_K_M"] {
            let name = format!("{m}-{fmt}");
            let g = golden(&format!("{name}.json"));
            let prompt = common::ids(&g["prompts"][2]["ids"]);
            let path = fixture(&format!("{name}.gguf"));

            let mut resident = load(&path, &LoadOptions::default());
            let all = trajectory(&mut resident, &prompt);
            let st = resident
                .expert_stats()
                .expect("a MoE model has expert stats");
            assert_eq!(
                st.misses, 0,
                "{name}: all experts resident from load: {st:?}"
            );

            // The smallest cache, and the same with next-layer prefetch in decode.
            for prefetch in [false, true] {
                let opts = LoadOptions {
                    expert_cache_bytes: ExpertBudget::Min,
                    prefetch,
                    ..Default::default()
                };
                let mut small = load(&path, &opts);
                let mem = small.memory();
                assert!(
                    mem.expert_cache < resident.memory().expert_cache / 2,
                    "{name}: the minimum cache is small: {mem:?}"
                );
                let streamed = trajectory(&mut small, &prompt);
                let st = small.expert_stats().unwrap();
                assert!(
                    st.misses > 0 && st.evictions > 0 && st.bytes_read > 0,
                    "{name}: the smallest cache must miss and evict: {st:?}"
                );
                for (i, (a, b)) in all.iter().zip(&streamed).enumerate() {
                    let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(
                        same,
                        "{name}: step {i} differs between budgets (prefetch {prefetch})"
                    );
                }
                if prefetch && m != "deepseek2-v3" {
                    // (v3 has a single MoE layer: nothing to predict.)
                    assert!(
                        st.predicted > 0 && st.prefetched > 0,
                        "{name}: prefetch ran: {st:?}"
                    );
                }
                eprintln!(
                "{name}: min cache {} KiB, prefetch {prefetch}: {} hits, {} misses, {} evictions, {} KiB read, prediction accuracy {:.2}",
                mem.expert_cache >> 10,
                st.hits,
                st.misses,
                st.evictions,
                st.bytes_read >> 10,
                st.prediction_accuracy()
            );
            }
        }
    }
}

#[test]
fn expert_budgets_below_the_minimum_are_refused_with_the_minimum() {
    let path = fixture("deepseek2-v3-Q4_K_M.gguf");
    let opts = LoadOptions {
        expert_cache_bytes: ExpertBudget::Bytes(100_000),
        ..Default::default()
    };
    let err = edgeseek::Model::load(&path, &opts).err().expect("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("deepseek2-v3-Q4_K_M.gguf")
            && msg.contains("4 experts")
            && msg.contains("limit is 100000"),
        "{msg}"
    );
}

/// Bad MoE files: a clear error naming the file and the tensor or key, no panic.
#[test]
fn bad_moe_files_are_refused_naming_the_problem() {
    let cases = [
        (
            "moe-expert-count-mismatch.gguf",
            &["blk.0.ffn_gate_exps.weight", "expected", "expert_count 4"][..],
        ),
        (
            "moe-used-gt-count.gguf",
            &["expert used count 5", "expert count of 4"][..],
        ),
        ("moe-missing-shexp.gguf", &["missing tensor", "shexp"][..]),
        (
            "qwen3moe-expert-count-mismatch.gguf",
            &["blk.0.ffn_gate_exps.weight", "expected", "expert_count 4"][..],
        ),
    ];
    for (file, needles) in cases {
        let path = common::repo().join("tests/fixtures/models/bad").join(file);
        let err = edgeseek::Model::load(&path, &LoadOptions::default())
            .err()
            .unwrap_or_else(|| panic!("{file} loaded"));
        let msg = err.to_string();
        assert!(msg.contains(file), "{file}: {msg}");
        for n in needles {
            assert!(msg.contains(n), "{file}: '{n}' not in: {msg}");
        }
        eprintln!("{file}: {msg}");
    }
}
