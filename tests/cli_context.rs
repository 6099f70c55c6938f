//! examples/generate at the end of the context: generation stops with "stop":
//! "context_full" and keeps every token it produced, on both paths (--prompt-ids through
//! Model::eval, --prompt through a Session), and a prompt that does not fit is refused.
//!
//! How many tokens fit: the last token sampled is never evaluated, so it needs no room in
//! the KV cache. With n_ctx 16 and a 5-token prompt, positions 5..=15 hold the first 11
//! generated tokens and the 12th is sampled from the logits after position 15:
//! 16 - 5 + 1 = 12 tokens.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{fixture, generate_exe, generate_json, smollm2};
use serde_json::Value;

/// Five prompt tokens, as the raw SmolLM2 prompt below also is.
const IDS: &str = "1,2,3,4,5";
/// SmolLM2 has no BOS on raw text: five tokens.
const TEXT: &str = "The capital of France is";

fn ids(j: &Value, key: &str) -> Vec<u64> {
    j[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {j}"))
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

/// generate --json on `model` with a prompt (`--prompt-ids ...` or `--prompt ... --raw`),
/// a context and a token limit.
fn run(model: &Path, prompt: &[&str], ctx: usize, max_tokens: usize) -> Value {
    let (ctx, max) = (ctx.to_string(), max_tokens.to_string());
    let mut args = vec!["--model", model.to_str().unwrap()];
    args.extend_from_slice(prompt);
    args.extend_from_slice(&["--ctx", &ctx, "--max-tokens", &max]);
    generate_json(&args)
}

/// A prompt one token longer than the context: exit 1 with the sizes, no JSON, no panic.
fn assert_refused(out: Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "(101 is a panic) {stderr}");
    assert!(out.stdout.is_empty(), "no JSON on failure");
    assert!(
        stderr.contains("the prompt has 5 tokens; the context holds 4"),
        "{stderr}"
    );
}

fn generate(model: &Path, args: &[&str]) -> Output {
    Command::new(generate_exe())
        .args(["--model", model.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn prompt_ids_stop_at_a_full_context_and_keep_every_token() {
    let m = fixture("qwen2-Q8_0.gguf");
    let full = run(&m, &["--prompt-ids", IDS], 16, 40);
    assert_eq!(full["stop"], "context_full", "{full}");
    let got = ids(&full, "ids");
    assert_eq!(got.len(), 12, "16 - 5 + 1: {full}");
    assert_eq!(full["steps"].as_array().unwrap().len(), 12);

    // Asking for exactly what fits is the token limit, not a full context.
    let exact = run(&m, &["--prompt-ids", IDS], 16, 12);
    assert_eq!(exact["stop"], "max_tokens", "{exact}");
    assert_eq!(ids(&exact, "ids"), got);
    let fewer = run(&m, &["--prompt-ids", IDS], 16, 11);
    assert_eq!(fewer["stop"], "max_tokens", "{fewer}");
    assert_eq!(ids(&fewer, "ids"), got[..11]);
}

#[test]
fn prompt_ids_that_fill_the_context_give_one_token_and_longer_ones_are_refused() {
    let m = fixture("qwen2-Q8_0.gguf");
    let j = run(&m, &["--prompt-ids", IDS], 5, 40);
    assert_eq!(j["stop"], "context_full", "{j}");
    assert_eq!(ids(&j, "ids").len(), 1, "{j}");
    assert_refused(generate(
        &m,
        &[
            "--prompt-ids",
            IDS,
            "--ctx",
            "4",
            "--max-tokens",
            "2",
            "--json",
        ],
    ));
}

#[test]
fn text_prompt_stops_at_a_full_context_and_keeps_its_text() {
    let m = smollm2();
    let j = run(&m, &["--prompt", TEXT, "--raw"], 16, 40);
    assert_eq!(j["stop"], "context_full", "{j}");
    assert_eq!(ids(&j, "prompt_ids").len(), 5, "{j}");
    let got = ids(&j, "ids");
    assert_eq!(got.len(), 12, "16 - 5 + 1: {j}");
    assert!(j["text"].as_str().unwrap().contains("Paris"), "{j}");

    // The same prompt as ids through Model::eval: the same tokens, the same stop.
    let prompt: Vec<String> = ids(&j, "prompt_ids").iter().map(u64::to_string).collect();
    let by_ids = run(&m, &["--prompt-ids", &prompt.join(",")], 16, 40);
    assert_eq!(by_ids["stop"], "context_full", "{by_ids}");
    assert_eq!(ids(&by_ids, "ids"), got);

    let exact = run(&m, &["--prompt", TEXT, "--raw"], 16, 12);
    assert_eq!(exact["stop"], "max_tokens", "{exact}");
    assert_eq!(ids(&exact, "ids"), got);
}

#[test]
fn a_text_prompt_that_fills_the_context_gives_one_token_and_a_longer_one_is_refused() {
    let m = smollm2();
    let j = run(&m, &["--prompt", TEXT, "--raw"], 5, 40);
    assert_eq!(j["stop"], "context_full", "{j}");
    assert_eq!(ids(&j, "ids").len(), 1, "{j}");
    assert_refused(generate(
        &m,
        &["--prompt", TEXT, "--raw", "--ctx", "4", "--json"],
    ));
}

#[test]
fn text_output_names_the_stop_on_stderr_unless_it_is_the_limit() {
    let m = fixture("qwen2-Q8_0.gguf");
    let args = |max: &'static str| ["--prompt-ids", IDS, "--ctx", "16", "--max-tokens", max];
    let out = generate(&m, &args("40"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.split_whitespace().count(), 12, "the ids: {stdout}");
    assert!(
        stderr.contains("stopped after 12 tokens: context full"),
        "{stderr}"
    );
    let out = generate(&m, &args("3"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("stopped"), "{stderr}");
}

#[test]
fn chat_says_when_the_context_is_full_and_reset_starts_over() {
    let m = smollm2();
    // SmolLM2's template with its default system prompt makes "What is 2+2?" 36 tokens:
    // the answer is cut after 5, and the next question no longer fits at all.
    let out = common::chat(
        &[
            "--model",
            m.to_str().unwrap(),
            "--ctx",
            "40",
            "--max-tokens",
            "40",
            "--temperature",
            "0",
        ],
        b"What is 2+2?\nAnd 3+3?\n/reset\nWhat is 2+2?\n/exit\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout.matches("(context full: /reset)").count(),
        2,
        "both answers, before and after /reset: {stdout}"
    );
    assert!(
        stdout.contains("the context holds 40: /reset starts a new one)"),
        "{stdout}"
    );
    assert!(!stderr.contains("error"), "{stderr}");
}
