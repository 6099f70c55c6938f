//! Chat templates against the official Jinja templates: each template in
//! tests/fixtures/goldens/chat_templates.json (real sources, rendered by jinja2 the way Hugging
//! Face transformers does, see tests/fixtures/make_chat_goldens.py) must be recognised as its
//! family, and `ChatTemplate::render` of what was recognised must give the Jinja text byte for
//! byte (for Llama 3.1 and later: less their dated system block, which we leave out on
//! purpose). Templates of other families must not be recognised. Then think-span splitting.

mod common;

use edgeseek::GgufFile;
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

/// The golden template as `ChatTemplate::detect` recognises it, checked against what the
/// golden says: the family (`family`, or for the first entries, which have none, `name`) and
/// the ChatML default system prompt (`default_system`, or the named template's).
fn detected(t: &Value) -> ChatTemplate {
    let name = str_of(t, "name");
    let source = str_of(t, "source");
    let template = ChatTemplate::detect(str_of(t, "jinja"))
        .unwrap_or_else(|| panic!("'{name}' ({source}) is not recognised"));
    let named;
    let (family, default_system) = match t.get("family") {
        Some(family) => (
            family.as_str().expect("golden: family"),
            t["default_system"].as_str(),
        ),
        None => {
            named = ChatTemplate::from_name(name)
                .unwrap_or_else(|| panic!("golden template '{name}' has no ChatTemplate"));
            (name, named.default_system())
        }
    };
    assert_eq!(template.name(), family, "'{name}' ({source})");
    assert_eq!(
        template.default_system(),
        default_system,
        "'{name}' ({source})"
    );
    template
}

/// Llama 3.1+ renders "Cutting Knowledge Date: ...\nToday Date: ...\n\n" at the start of a
/// system block it always writes; edgeseek leaves that text out, and the block with it when
/// the conversation has no system message.
fn without_dated_system_block(jinja_text: &str) -> String {
    const SYSTEM: &str = "<|start_header_id|>system<|end_header_id|>\n\n";
    let at = jinja_text.find(SYSTEM).expect("a system block") + SYSTEM.len();
    let rest = &jinja_text[at..];
    assert!(rest.starts_with("Cutting Knowledge Date: "), "{rest}");
    let dates = rest.find("Today Date: ").expect("a date");
    let dates_end = dates + rest[dates..].find("\n\n").expect("a blank line") + 2;
    let rest = &rest[dates_end..];
    match rest.strip_prefix("<|eot_id|>") {
        Some(after) => format!("{}{after}", &jinja_text[..at - SYSTEM.len()]),
        None => format!("{}{rest}", &jinja_text[..at]),
    }
}

#[test]
fn each_real_template_is_recognised_as_its_family() {
    let golden = common::golden("chat_templates.json");
    for t in templates(&golden) {
        detected(t);
    }
}

#[test]
fn render_equals_the_jinja_templates_byte_for_byte() {
    let golden = common::golden("chat_templates.json");
    let mut checked = 0;
    for t in templates(&golden) {
        let name = str_of(t, "name");
        let template = detected(t);
        let bos = str_of(t, "bos_token");
        let dated = t["dated_system_block"].as_bool().unwrap_or(false);
        for case in t["cases"].as_array().expect("golden: cases") {
            let mut expected = str_of(case, "expected").to_string();
            if dated {
                expected = without_dated_system_block(&expected);
            }
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
    // 10 templates x 11 cases: a shorter file means the goldens lost cases.
    assert_eq!(checked, 110);
}

#[test]
fn every_named_template_has_goldens() {
    let golden = common::golden("chat_templates.json");
    let covered: Vec<ChatTemplate> = templates(&golden).iter().map(detected).collect();
    for t in ChatTemplate::ALL {
        assert!(covered.contains(&t), "no goldens for {t}");
    }
}

#[test]
fn the_block_left_out_for_llama_3_1_is_the_dated_system_block_alone() {
    let golden = common::golden("chat_templates.json");
    let llama31 = templates(&golden)
        .iter()
        .find(|t| str_of(t, "name") == "llama3.1")
        .expect("golden: llama3.1");
    let first = str_of(&llama31["cases"][0], "expected");
    assert!(first.starts_with(
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n\
         Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>"
    ));
    assert_eq!(
        without_dated_system_block(first),
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 1 + 1?<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n"
    );
}

#[test]
fn templates_of_families_edgeseek_does_not_render_are_not_detected() {
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
fn from_gguf_reads_the_template_of_a_file_and_none_where_it_has_none() {
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
    // Qwen2's ChatML injects a default system prompt, read from the template.
    let qwen2 = open("ggml-vocab-qwen2.gguf");
    let qwen2 = ChatTemplate::from_gguf(&qwen2).unwrap();
    assert_eq!(
        qwen2.as_ref().and_then(ChatTemplate::default_system),
        Some("You are a helpful assistant")
    );
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
