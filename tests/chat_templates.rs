//! Chat templates against the official Jinja templates: every golden in
//! tests/fixtures/goldens/chat_templates.json (rendered by jinja2 the way Hugging Face
//! transformers does, see tests/fixtures/make_chat_goldens.py) must come out of
//! `ChatTemplate::render` byte for byte, and each stored Jinja source must be recognised.
//! Then think-span splitting.

mod common;

use edgeseek::file::gguf::GgufFile;
use edgeseek::{split_think, ChatTemplate, Message, Role, ThinkSplit};
use serde_json::Value;

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("golden: '{key}' is not a string in {v}"))
}

fn messages(case: &Value) -> Vec<Message> {
    case["messages"]
        .as_array()
        .expect("golden: messages")
        .iter()
        .map(|m| {
            let role = match str_of(m, "role") {
                "system" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => panic!("golden: role {other}"),
            };
            Message::new(role, str_of(m, "content"))
        })
        .collect()
}

fn templates(golden: &Value) -> &[Value] {
    golden["templates"].as_array().expect("golden: templates")
}

#[test]
fn render_equals_the_jinja_templates_byte_for_byte() {
    let golden = common::golden("chat_templates.json");
    let mut checked = 0;
    for t in templates(&golden) {
        let name = str_of(t, "name");
        let template = ChatTemplate::from_name(name)
            .unwrap_or_else(|| panic!("golden template '{name}' has no ChatTemplate"));
        let bos = str_of(t, "bos_token");
        for case in t["cases"].as_array().expect("golden: cases") {
            let expected = str_of(case, "expected");
            let got = template
                .render(&messages(case), bos)
                .unwrap_or_else(|e| panic!("{name} / {}: {e}", str_of(case, "name")));
            assert_eq!(
                got,
                expected,
                "{name} / {}: rendered text differs from the Jinja template's",
                str_of(case, "name")
            );
            checked += 1;
        }
    }
    // 5 templates x 11 cases: a shorter file means the goldens lost cases.
    assert_eq!(checked, 55);
}

#[test]
fn every_template_in_the_goldens_is_covered_and_detected_from_its_source() {
    let golden = common::golden("chat_templates.json");
    let mut seen = Vec::new();
    for t in templates(&golden) {
        let name = str_of(t, "name");
        assert_eq!(
            ChatTemplate::detect(str_of(t, "jinja")).map(ChatTemplate::name),
            Some(name),
            "the Jinja source of '{name}' ({})",
            str_of(t, "source")
        );
        seen.push(name);
    }
    for t in ChatTemplate::ALL {
        assert!(seen.contains(&t.name()), "no goldens for {t}");
    }
}

#[test]
fn templates_edgeseek_cannot_render_exactly_are_not_detected() {
    let golden = common::golden("chat_templates.json");
    let unknown = golden["unrecognised"]
        .as_array()
        .expect("golden: unrecognised");
    assert!(!unknown.is_empty());
    for t in unknown {
        assert_eq!(
            ChatTemplate::detect(str_of(t, "jinja")),
            None,
            "{}",
            str_of(t, "source")
        );
    }
}

#[test]
fn from_gguf_reads_the_r1_distill_template_and_none_where_a_file_has_no_template() {
    let vocab = common::repo().join("tests/fixtures/vocab");
    let open = |name: &str| GgufFile::open(&vocab.join(name)).unwrap_or_else(|e| panic!("{e}"));
    let r1 = open("deepseek-r1-distill-qwen.vocab.gguf");
    // This file carries the January 2025 template: its prompt ends at "<｜Assistant｜>".
    assert_eq!(
        ChatTemplate::from_gguf(&r1).unwrap(),
        Some(ChatTemplate::DeepSeekR1Original)
    );
    let llama3 = open("ggml-vocab-llama-bpe.gguf");
    assert_eq!(ChatTemplate::from_gguf(&llama3).unwrap(), None);
    // Qwen2's ChatML injects a default system prompt edgeseek does not know.
    let qwen2 = open("ggml-vocab-qwen2.gguf");
    assert_eq!(ChatTemplate::from_gguf(&qwen2).unwrap(), None);
}

fn split(text: &str, prompt_opened: bool) -> (&str, &str, bool) {
    let ThinkSplit {
        reasoning,
        answer,
        thinking,
    } = split_think(text, prompt_opened);
    (reasoning, answer, thinking)
}

#[test]
fn split_think_takes_the_span_the_model_opened() {
    let text = "<think>\nOne plus one is two.\n</think>\n\nThe answer is 2.";
    assert_eq!(
        split(text, false),
        ("One plus one is two.", "The answer is 2.", false)
    );
    // Leading white space before the tag, and a repeated tag after a prompt that opened it.
    assert_eq!(split("\n <think>a</think>b", false), ("a", "b", false));
    assert_eq!(split("<think>\na</think>b", true), ("a", "b", false));
}

#[test]
fn split_think_after_a_prompt_that_opened_the_span() {
    let text = "One plus one is two.\n</think>\n\nThe answer is 2.";
    assert_eq!(
        split(text, true),
        ("One plus one is two.", "The answer is 2.", false)
    );
    // Still thinking: everything so far is reasoning.
    assert_eq!(split("One plus", true), ("One plus", "", true));
    assert_eq!(split("", true), ("", "", true));
    // An empty span (R1's way of skipping thought).
    assert_eq!(split("\n\n</think>\n\nHi.", true), ("", "Hi.", false));
}

#[test]
fn split_think_without_a_span() {
    assert_eq!(
        split("  Just an answer.\n", false),
        ("", "Just an answer.", false)
    );
    assert_eq!(split("", false), ("", "", false));
    // "<think>" not at the start is text, not a span.
    assert_eq!(
        split("Use <think> tags.", false),
        ("", "Use <think> tags.", false)
    );
}

#[test]
fn split_think_edge_cases() {
    // Unclosed span: all reasoning, still thinking.
    assert_eq!(split("<think>\nhmm", false), ("hmm", "", true));
    // A closing tag with no opening one: what precedes it is reasoning (as R1 re-renders it).
    assert_eq!(split("so 4.</think>4", false), ("so 4.", "4", false));
    // The first closing tag ends the span; later ones belong to the answer.
    assert_eq!(
        split("<think>a</think>b</think>c", false),
        ("a", "b</think>c", false)
    );
    // Non-ASCII around the tags.
    assert_eq!(
        split("<think>用户问首都 🤔</think>\n\nباريس", false),
        ("用户问首都 🤔", "باريس", false)
    );
}
