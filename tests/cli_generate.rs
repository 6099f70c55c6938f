//! examples/generate as a script would use it: text prompts through the chat template,
//! the JSON fields, tokenizing without weights.

mod common;

use std::process::Command;

use common::{generate_exe, repo, smollm2};
use serde_json::Value;

fn generate(args: &[&str]) -> Value {
    let out = Command::new(generate_exe())
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn text_prompt_gives_text_answer_and_prompt_ids() {
    let m = smollm2();
    let j = generate(&[
        "--model",
        m.to_str().unwrap(),
        "--prompt",
        "What is 2+2?",
        "--max-tokens",
        "24",
        "--ctx",
        "128",
    ]);
    let text = j["text"].as_str().unwrap();
    assert!(text.contains('4'), "{text}");
    // SmolLM2 does not think: all of it is the answer.
    assert_eq!(j["reasoning"], "");
    assert_eq!(j["answer"].as_str().unwrap(), text.trim());
    // ChatML with SmolLM2's default system prompt, ending with the assistant header.
    let ids: Vec<u64> = j["prompt_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(&ids[..3], &[1, 9690, 198], "<|im_start|>system\\n");
    assert_eq!(
        &ids[ids.len() - 3..],
        &[1, 520, 9531, 198][1..],
        "assistant\\n"
    );
    assert_eq!(j["prompt_tokens"].as_u64().unwrap() as usize, ids.len());
    for k in [
        "ids",
        "steps",
        "prefill_tok_s",
        "decode_tok_s",
        "anon_rss_bytes",
    ] {
        assert!(!j[k].is_null(), "missing {k}");
    }
}

#[test]
fn max_tokens_zero_tokenizes_a_vocabulary_only_file() {
    let vocab = repo().join("tests/fixtures/vocab/deepseek-r1-distill-qwen.vocab.gguf");
    let j = generate(&[
        "--model",
        vocab.to_str().unwrap(),
        "--prompt",
        "Hello",
        "--max-tokens",
        "0",
    ]);
    let ids: Vec<u64> = j["prompt_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // <｜begin▁of▁sentence｜><｜User｜>Hello<｜Assistant｜>: one BOS, from the template.
    assert_eq!(ids.first(), Some(&151646));
    assert_eq!(ids.iter().filter(|&&i| i == 151646).count(), 1);
    assert_eq!(ids[ids.len() - 1], 151645);
    assert_eq!(j["ids"].as_array().unwrap().len(), 0);
}
