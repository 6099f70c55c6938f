//! examples/bench as CI runs it (tiny settings) on a dense and a MoE fixture, and the
//! expert-cache flags of the examples: the JSON fields the README documents, and a
//! budget below the minimum refused with exit code 1.

mod common;

use common::{example_exe, example_json, fixture, generate_json};
use serde_json::Value;

fn bench_json(args: &[&str]) -> Value {
    example_json("bench", args)
}

fn positive(v: &Value, key: &str) -> f64 {
    let x = v[key]
        .as_f64()
        .or_else(|| v[key]["median"].as_f64())
        .unwrap_or_else(|| panic!("no {key} in {v}"));
    assert!(x > 0.0, "{key} = {x} in {v}");
    x
}

#[test]
fn bench_smoke_on_a_dense_fixture() {
    let model = fixture("qwen2-Q4_K_M.gguf");
    let j = bench_json(&[
        "--model",
        model.to_str().unwrap(),
        "--prompt-tokens",
        "5",
        "--gen-tokens",
        "3",
        "--repeat",
        "2",
    ]);
    for key in ["load_s", "ttft_s", "prefill_tok_s", "decode_tok_s"] {
        positive(&j, key);
    }
    for key in [
        "gpu_weights_bytes",
        "gpu_kv_bytes",
        "gpu_scratch_bytes",
        "anon_rss_bytes",
    ] {
        positive(&j, key);
    }
    assert_eq!(j["gpu_expert_cache_bytes"].as_u64(), Some(0), "{j}");
    assert!(
        j["experts"].is_null(),
        "a dense model has no expert counters: {j}"
    );
}

#[test]
fn bench_smoke_on_a_moe_fixture_streaming_with_prefetch() {
    let model = fixture("qwen3moe-Q4_K_M.gguf");
    let j = bench_json(&[
        "--model",
        model.to_str().unwrap(),
        "--prompt-tokens",
        "5",
        "--gen-tokens",
        "6",
        "--repeat",
        "2",
        "--expert-cache-mb",
        "min",
        "--prefetch",
    ]);
    positive(&j, "decode_tok_s");
    positive(&j, "gpu_expert_cache_bytes");
    let e = &j["experts"];
    // 2 repeats x 5 decoded tokens.
    assert_eq!(e["tokens"].as_u64(), Some(10), "{j}");
    for key in [
        "misses",
        "evictions",
        "bytes_read",
        "bytes_read_per_token",
        "prefetched",
    ] {
        positive(e, key);
    }
    let acc = e["prediction_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{j}");
}

#[test]
fn generate_reports_expert_counters_and_decimal_budgets_work() {
    let model = fixture("deepseek2-lite-Q4_K_M.gguf");
    let j = generate_json(&[
        "--model",
        model.to_str().unwrap(),
        "--prompt-ids",
        "5,6,7",
        "--max-tokens",
        "4",
        "--expert-cache-mb",
        "0.75",
    ]);
    let cache = j["gpu_expert_cache_bytes"].as_u64().unwrap();
    assert!(cache > 0 && cache <= 786_432, "0.75 MiB budget: {j}");
    assert!(j["experts"]["misses"].as_u64().unwrap() > 0, "{j}");
    assert_eq!(j["ids"].as_array().unwrap().len(), 4, "{j}");
}

#[test]
fn an_expert_budget_below_the_minimum_is_refused_with_exit_code_1() {
    let model = fixture("deepseek2-lite-Q4_K_M.gguf");
    let out = std::process::Command::new(example_exe("generate"))
        .args(["--model", model.to_str().unwrap(), "--prompt-ids", "5"])
        .args(["--expert-cache-mb", "0.01"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("deepseek2-lite-Q4_K_M.gguf") && stderr.contains("2 experts"),
        "{stderr}"
    );
    let out = std::process::Command::new(example_exe("generate"))
        .args(["--model", model.to_str().unwrap(), "--prompt-ids", "5"])
        .args(["--expert-cache-mb", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "bad argument");
}

#[test]
fn memory_budget_flag_streams_and_a_too_small_one_exits_with_1() {
    let model = fixture("qwen2-Q4_K_M.gguf");
    let size = std::fs::metadata(&model).unwrap().len() as f64;
    let mb = format!("{:.3}", 0.5 * size / 1048576.0);
    let j = bench_json(&[
        "--model",
        model.to_str().unwrap(),
        "--prompt-tokens",
        "5",
        "--gen-tokens",
        "3",
        "--repeat",
        "1",
        "--ctx",
        "16",
        "--max-batch",
        "8",
        "--max-resident-mb",
        &mb,
    ]);
    assert!(j["plan"]["budget_bytes"].as_u64().is_some(), "{j}");
    positive(&j["plan"], "dense_streamed_bytes_per_token");
    positive(&j, "dense_streamed_per_token");
    positive(&j, "gpu_stream_ring_bytes");

    let out = std::process::Command::new(example_exe("generate"))
        .args(["--model", model.to_str().unwrap(), "--prompt-ids", "5"])
        .args(["--max-resident-mb", "0.05"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("qwen2-Q4_K_M.gguf") && stderr.contains("memory budget for a context"),
        "{stderr}"
    );
}
