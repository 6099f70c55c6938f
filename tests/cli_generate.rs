//! examples/generate as a script would use it: text prompts through the chat template,
//! the JSON fields, tokenizing without weights.

mod common;

use std::process::Command;

use common::{generate_json, repo, smollm2};

#[test]
fn text_prompt_gives_text_answer_and_prompt_ids() {
    let m = smollm2();
    let j = generate_json(&[
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
    let j = generate_json(&[
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

#[test]
fn chat_answers_resets_and_exits_on_commands_from_stdin() {
    let m = smollm2();
    let out = common::chat(
        &[
            "--model",
            m.to_str().unwrap(),
            "--max-tokens",
            "24",
            "--ctx",
            "256",
            "--temperature",
            "0",
        ],
        b"What is 2+2?\n/reset\n/exit\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains('4'), "answered: {stdout}");
    assert!(stdout.contains("(new conversation)"), "{stdout}");
    assert!(stderr.contains("tok/s"), "speed after the answer: {stderr}");
}

#[test]
fn chat_without_a_model_says_where_to_get_the_default() {
    let out = Command::new(common::example_exe("chat"))
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf")
            && stderr.contains("huggingface.co"),
        "{stderr}"
    );
}
