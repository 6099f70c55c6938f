//! The JSON of examples/generate and examples/bench against docs/cli.md: every field the
//! docs list is there, with its type, exactly when the docs say it is, and no field is
//! undocumented. Field names and their "present" column come from the docs' tables; the
//! types are in `GENERATE` and `BENCH` below, and a name in one but not the other fails,
//! so adding a field means documenting it and giving it a type here.

mod common;

use std::collections::BTreeSet;

use common::{example_json, fixture, generate_json, repo, smollm2};
use serde_json::Value;

/// What a field's value must be.
type Check = fn(&Value) -> bool;

fn count(v: &Value) -> bool {
    v.is_u64()
}
fn number(v: &Value) -> bool {
    v.is_number()
}
fn text(v: &Value) -> bool {
    v.is_string()
}
fn flag(v: &Value) -> bool {
    v.is_boolean()
}
fn ids(v: &Value) -> bool {
    v.as_array().is_some_and(|a| a.iter().all(count))
}
fn stop(v: &Value) -> bool {
    let reasons = [
        "max_tokens",
        "end_of_generation",
        "stop_string",
        "cancelled",
        "context_full",
    ];
    v.as_str().is_some_and(|s| reasons.contains(&s))
}
/// `[{"id": ID, "top": [[id, logit or null], ...]}, ...]`
fn steps(v: &Value) -> bool {
    let pair = |p: &Value| {
        p.as_array()
            .is_some_and(|p| p.len() == 2 && count(&p[0]) && (number(&p[1]) || p[1].is_null()))
    };
    v.as_array().is_some_and(|a| {
        a.iter().all(|s| {
            has_exactly(s, &["id", "top"])
                && count(&s["id"])
                && s["top"].as_array().is_some_and(|t| t.iter().all(pair))
        })
    })
}
/// One FNV-1a digest per run, as 16 hex digits.
fn digests(v: &Value) -> bool {
    v.as_array().is_some_and(|a| {
        !a.is_empty()
            && a.iter().all(|d| {
                d.as_str()
                    .is_some_and(|d| d.len() == 16 && d.chars().all(|c| c.is_ascii_hexdigit()))
            })
    })
}
/// `{"median", "min", "max"}` over the runs.
fn stat(v: &Value) -> bool {
    has_exactly(v, &["median", "min", "max"])
        && ["median", "min", "max"].iter().all(|k| number(&v[k]))
}
fn plan(v: &Value) -> bool {
    let counts = [
        "dense_resident_bytes",
        "dense_streamed_bytes_per_token",
        "stream_buffers_bytes",
        "streamed_layers",
    ];
    has_exactly(
        v,
        &[&counts[..], &["budget_bytes", "output_streamed"]].concat(),
    ) && counts.iter().all(|k| count(&v[k]))
        && (v["budget_bytes"].is_null() || count(&v["budget_bytes"]))
        && flag(&v["output_streamed"])
}
/// `{"prefill": [...], "decode": [...]}` of `{"kernel", "calls", "ms"}`.
fn profile(v: &Value) -> bool {
    let row = |r: &Value| {
        has_exactly(r, &["kernel", "calls", "ms"])
            && text(&r["kernel"])
            && count(&r["calls"])
            && number(&r["ms"])
    };
    has_exactly(v, &["prefill", "decode"])
        && ["prefill", "decode"].iter().all(|k| {
            v[k].as_array()
                .is_some_and(|a| !a.is_empty() && a.iter().all(row))
        })
}
/// The expert counters: their names come from the docs' `experts` paragraph.
fn experts(v: &Value) -> bool {
    let fields = expert_fields();
    let names: Vec<&str> = fields.iter().map(String::as_str).collect();
    has_exactly(v, &names)
        && names.iter().all(|k| {
            let check: Check = match *k {
                "hit_rate"
                | "bytes_read_per_token"
                | "stall_s"
                | "stall_s_per_token"
                | "prediction_accuracy"
                | "prefetch_s" => number,
                _ => count,
            };
            check(&v[k])
        })
}

fn has_exactly(v: &Value, keys: &[&str]) -> bool {
    v.as_object().is_some_and(|o| {
        o.keys().map(String::as_str).collect::<BTreeSet<_>>()
            == keys.iter().copied().collect::<BTreeSet<_>>()
    })
}

const GENERATE: &[(&str, Check)] = &[
    ("ids", ids),
    ("prompt_ids", ids),
    ("steps", steps),
    ("prompt_tokens", count),
    ("stop", stop),
    ("load_s", number),
    ("prefill_tok_s", number),
    ("decode_tok_s", number),
    ("peak_rss_bytes", count),
    ("anon_rss_bytes", count),
    ("file_rss_bytes", count),
    ("model_file_rss_bytes", count),
    ("model_file_bytes", count),
    ("adapter", text),
    ("f16_kv", flag),
    ("text", text),
    ("reasoning", text),
    ("answer", text),
    ("gpu_weights_bytes", count),
    ("gpu_expert_cache_bytes", count),
    ("gpu_kv_bytes", count),
    ("gpu_scratch_bytes", count),
    ("gpu_stream_ring_bytes", count),
    ("experts", experts),
];

const BENCH: &[(&str, Check)] = &[
    ("model", text),
    ("adapter", text),
    ("prompt_tokens", count),
    ("gen_tokens", count),
    ("repeat", count),
    ("load_s", number),
    ("ttft_s", stat),
    ("prefill_tok_s", stat),
    ("decode_tok_s", stat),
    ("gpu_weights_bytes", count),
    ("gpu_expert_cache_bytes", count),
    ("gpu_kv_bytes", count),
    ("gpu_scratch_bytes", count),
    ("gpu_stream_ring_bytes", count),
    ("experts", experts),
    ("anon_rss_bytes", count),
    ("peak_rss_bytes", count),
    ("model_file_bytes", count),
    ("plan", plan),
    ("dense_streamed_per_token", count),
    ("logits_digest", digests),
    ("profile", profile),
];

fn cli_md() -> String {
    let p = repo().join("docs/cli.md");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The names in backticks in `s`.
fn backticked(s: &str) -> Vec<String> {
    s.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The table under "### JSON output" in the "## {example}" section of docs/cli.md:
/// (field, second column) per field; a row may name several fields.
fn documented(example: &str) -> Vec<(String, String)> {
    let doc = cli_md();
    let section = doc
        .split(&format!("\n## {example}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("docs/cli.md has no '## {example}'"));
    let section = section.split("\n## ").next().unwrap();
    let json = section
        .split("### JSON output\n")
        .nth(1)
        .unwrap_or_else(|| panic!("'## {example}' has no '### JSON output'"));
    let rows = json
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2); // the header and its separator
    let mut fields = Vec::new();
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        for name in backticked(cells[1]) {
            fields.push((name, cells[2].to_string()));
        }
    }
    assert!(!fields.is_empty(), "no fields documented for {example}");
    fields
}

/// The names in the bench section's "`experts`: `tokens`, `hits`, ..." paragraph.
fn expert_fields() -> Vec<String> {
    let doc = cli_md();
    let para = doc
        .split("\n`experts`: ")
        .nth(1)
        .expect("docs/cli.md lists the expert counters after '`experts`: '");
    let para = para.split("\n\n").next().unwrap();
    // Field names only: the remarks in parentheses also quote `--prefetch`.
    backticked(para)
        .into_iter()
        .filter(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect()
}

/// The documented names and the ones this test has types for are the same.
fn assert_types_for_every_field(example: &str, types: &[(&str, Check)]) {
    let documented: BTreeSet<String> = documented(example).into_iter().map(|f| f.0).collect();
    let typed: BTreeSet<String> = types.iter().map(|t| t.0.to_string()).collect();
    assert_eq!(
        documented, typed,
        "docs/cli.md's {example} fields (left) and this test's types (right) differ"
    );
}

/// `j` has exactly the fields in `expected`, each of its type.
fn assert_fields(j: &Value, expected: &[&str], types: &[(&str, Check)]) {
    let got: BTreeSet<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = expected.iter().copied().collect();
    assert_eq!(got, want, "fields of {j}");
    for (name, check) in types {
        if want.contains(name) {
            assert!(check(&j[name]), "{name} has the wrong type: {}", j[name]);
        }
    }
}

/// generate's fields whose "present" condition holds for a run.
fn generate_fields(weights: bool, text_prompt: bool, moe: bool) -> Vec<String> {
    documented("generate")
        .into_iter()
        .filter(|(name, present)| match present.as_str() {
            "always" => true,
            "weights loaded" => weights,
            "text prompts" => text_prompt,
            "MoE models" => moe,
            other => panic!("{name}: unknown condition '{other}': teach this test"),
        })
        .map(|f| f.0)
        .collect()
}

#[test]
fn every_generate_field_is_documented_and_has_a_type() {
    assert_types_for_every_field("generate", GENERATE);
}

#[test]
fn every_bench_field_is_documented_and_has_a_type() {
    assert_types_for_every_field("bench", BENCH);
    assert!(expert_fields().len() >= 10, "{:?}", expert_fields());
}

#[test]
fn generate_json_has_the_documented_fields() {
    let check = |j: Value, weights, text_prompt, moe| {
        let want = generate_fields(weights, text_prompt, moe);
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        assert_fields(&j, &want, GENERATE);
    };
    let m = smollm2();
    let j = generate_json(&[
        "--model",
        m.to_str().unwrap(),
        "--prompt",
        "Hi",
        "--max-tokens",
        "3",
        "--ctx",
        "64",
        "--top-logprobs",
        "2",
    ]);
    assert_eq!(j["steps"][0]["top"].as_array().unwrap().len(), 2, "{j}");
    check(j, true, true, false);

    let moe = fixture("deepseek2-lite-Q4_K_M.gguf");
    let j = generate_json(&[
        "--model",
        moe.to_str().unwrap(),
        "--prompt-ids",
        "5,6,7",
        "--max-tokens",
        "2",
    ]);
    check(j, true, false, true);

    let j = generate_json(&[
        "--model",
        m.to_str().unwrap(),
        "--prompt-ids",
        "5,6,7",
        "--max-tokens",
        "0",
    ]);
    check(j, false, false, false);
}

#[test]
fn bench_json_has_the_documented_fields() {
    let all: Vec<&str> = BENCH.iter().map(|t| t.0).collect();
    let tiny = ["--prompt-tokens", "5", "--gen-tokens", "3", "--repeat", "1"];

    let moe = fixture("qwen3moe-Q4_K_M.gguf");
    let mut args = vec!["--model", moe.to_str().unwrap(), "--profile"];
    args.extend_from_slice(&["--expert-cache-mb", "min"]);
    args.extend_from_slice(&tiny);
    assert_fields(&example_json("bench", &args), &all, BENCH);

    // Without --profile on a dense model: no profile, no expert counters.
    let dense = fixture("qwen2-Q4_K_M.gguf");
    let mut args = vec!["--model", dense.to_str().unwrap()];
    args.extend_from_slice(&tiny);
    let some: Vec<&str> = all
        .iter()
        .copied()
        .filter(|&f| f != "profile" && f != "experts")
        .collect();
    let j = example_json("bench", &args);
    assert_fields(&j, &some, BENCH);
    assert_eq!(j["model"], dense.to_str().unwrap(), "the path as given");
}
