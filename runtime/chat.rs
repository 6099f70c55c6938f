//! Chat templates without a template engine: each known GGUF `tokenizer.chat_template` is
//! recognised by markers in its Jinja source and rendered by a few lines of Rust that produce,
//! byte for byte, what the Jinja source renders under Hugging Face transformers
//! (`apply_chat_template(..., add_generation_prompt=True)` with the file's bos token).
//! tests/fixtures/make_chat_goldens.py renders the real templates; tests/chat_templates.rs
//! holds this file to them.
//!
//! The templates accept more than [`ChatTemplate::render`] does: a system message anywhere
//! (DeepSeek-R1 hoists the last one to the front and drops the others; ChatML renders it in
//! place) and tool turns. `render` takes the part every template agrees on — at most one
//! system message, first, then user and assistant turns in any order — and refuses the rest
//! with [`Error::Invalid`] instead of silently dropping text.
//!
//! Keep the whole reply text (think span included) as the assistant turn of the history:
//! the DeepSeek-R1 template removes earlier think spans itself, keeping what follows
//! "</think>" exactly (usually "\n\n" and the answer).

use crate::error::{Error, Result};
use crate::file::gguf::GgufFile;

/// Who says a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role as the templates spell it ("system", "user", "assistant").
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Message {
        Message::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Message {
        Message::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Message {
        Message::new(Role::Assistant, content)
    }
}

/// The chat templates edgeseek renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatTemplate {
    /// DeepSeek-R1 and its distills (Qwen, Llama) as DeepSeek has shipped the template since
    /// February 2025: `bos system <｜User｜>u <｜Assistant｜>a<｜end▁of▁sentence｜> ...`, earlier
    /// replies cut to what follows their last "</think>", and the generation prompt
    /// "<｜Assistant｜><think>\n" opens the think span for the model.
    DeepSeekR1,
    /// The same template as the distills were first released with (January 2025; what early
    /// GGUF conversions carry): the generation prompt is "<｜Assistant｜>" alone and the model
    /// writes "<think>" itself (or skips thinking).
    DeepSeekR1Original,
    /// Plain ChatML: `<|im_start|>role\ncontent<|im_end|>\n` per message, then
    /// `<|im_start|>assistant\n`. No bos token, no default system prompt.
    ChatMl,
    /// SmolLM2-Instruct's ChatML: as [`ChatTemplate::ChatMl`], but a conversation that does not
    /// open with a system message gets [`SMOLLM2_SYSTEM`] as one.
    SmolLm2,
    /// Meta Llama 3 Instruct: `bos` once, then
    /// `<|start_header_id|>role<|end_header_id|>\n\n` + content with surrounding white space
    /// removed + `<|eot_id|>` per message, then the assistant header. (Llama 3.1 and later add
    /// a dated system block; they are not this template.)
    Llama3,
}

/// The system prompt SmolLM2-Instruct's template inserts when the conversation has none.
pub const SMOLLM2_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

const R1_USER: &str = "<｜User｜>";
const R1_ASSISTANT: &str = "<｜Assistant｜>";
const R1_END: &str = "<｜end▁of▁sentence｜>";
const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";

/// The GGUF metadata key holding the Jinja source.
const KEY_TEMPLATE: &str = "tokenizer.chat_template";

impl ChatTemplate {
    /// Every template, for listing the names a user may pass to [`ChatTemplate::from_name`].
    pub const ALL: [ChatTemplate; 5] = [
        ChatTemplate::DeepSeekR1,
        ChatTemplate::DeepSeekR1Original,
        ChatTemplate::ChatMl,
        ChatTemplate::SmolLm2,
        ChatTemplate::Llama3,
    ];

    /// The template a `tokenizer.chat_template` Jinja source renders like, recognised by the
    /// markers that decide its output (not by string equality, so that reformatted or
    /// re-quoted copies still match); `None` when edgeseek cannot render it exactly.
    pub fn detect(jinja: &str) -> Option<ChatTemplate> {
        let src = Source::new(jinja);
        detect_deepseek_r1(&src)
            .or_else(|| detect_chatml(&src))
            .or_else(|| detect_llama3(&src))
    }

    /// The template of a GGUF file (`tokenizer.chat_template`): `None` when the file has none
    /// or one that [`ChatTemplate::detect`] does not know.
    pub fn from_gguf(file: &GgufFile) -> Result<Option<ChatTemplate>> {
        Ok(file.get_str(KEY_TEMPLATE)?.and_then(ChatTemplate::detect))
    }

    /// A template by its [`ChatTemplate::name`] (ASCII case ignored), for an explicit override.
    pub fn from_name(name: &str) -> Option<ChatTemplate> {
        ChatTemplate::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            ChatTemplate::DeepSeekR1 => "deepseek-r1",
            ChatTemplate::DeepSeekR1Original => "deepseek-r1-original",
            ChatTemplate::ChatMl => "chatml",
            ChatTemplate::SmolLm2 => "smollm2",
            ChatTemplate::Llama3 => "llama3",
        }
    }

    /// Does the rendered prompt end inside an open think span (R1 appends "<think>\n" after
    /// "<｜Assistant｜>")? Then the reply starts with reasoning and "</think>" ends it.
    pub fn opens_think(self) -> bool {
        self == ChatTemplate::DeepSeekR1
    }

    /// The prompt text the official template renders for `messages` with
    /// `add_generation_prompt = true`; `bos_token` is the file's bos token text (used by the
    /// DeepSeek-R1 and Llama 3 templates). The text contains special-token text such as
    /// "<｜User｜>": tokenize it with special tokens parsed, and without adding another BOS where
    /// the template already wrote one.
    ///
    /// `Error::Invalid` for an empty conversation, or a system message that is not the first.
    pub fn render(self, messages: &[Message], bos_token: &str) -> Result<String> {
        check_conversation(messages)?;
        let capacity = messages.iter().map(|m| m.content.len() + 40).sum::<usize>() + 200;
        let mut out = String::with_capacity(capacity);
        match self {
            ChatTemplate::DeepSeekR1 | ChatTemplate::DeepSeekR1Original => {
                render_deepseek_r1(&mut out, messages, bos_token, self.opens_think())
            }
            ChatTemplate::ChatMl => render_chatml(&mut out, messages, None),
            ChatTemplate::SmolLm2 => render_chatml(&mut out, messages, Some(SMOLLM2_SYSTEM)),
            ChatTemplate::Llama3 => render_llama3(&mut out, messages, bos_token),
        }
        Ok(out)
    }
}

impl std::fmt::Display for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn check_conversation(messages: &[Message]) -> Result<()> {
    if messages.is_empty() {
        return Err(Error::Invalid("a chat with no messages".into()));
    }
    if let Some(i) = messages.iter().skip(1).position(|m| m.role == Role::System) {
        return Err(Error::Invalid(format!(
            "message {} of the chat is a system message; only the first may be",
            i + 2
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rendering. Each function is the Jinja template's loop, for the messages check_conversation
// admits.

/// DeepSeek-R1 (distill) template:
/// `{{bos_token}}{{ns.system_prompt}}` then per message `'<｜User｜>' + content` or
/// `'<｜Assistant｜>' + content.split('</think>')[-1] + '<｜end▁of▁sentence｜>'`, then the
/// generation prompt. No separator between the system prompt and the first "<｜User｜>".
fn render_deepseek_r1(out: &mut String, messages: &[Message], bos: &str, open_think: bool) {
    out.push_str(bos);
    for m in messages {
        match m.role {
            Role::System => out.push_str(&m.content),
            Role::User => {
                out.push_str(R1_USER);
                out.push_str(&m.content);
            }
            Role::Assistant => {
                out.push_str(R1_ASSISTANT);
                out.push_str(after_last_think_close(&m.content));
                out.push_str(R1_END);
            }
        }
    }
    out.push_str(R1_ASSISTANT);
    if open_think {
        out.push_str("<think>\n");
    }
}

/// `content.split('</think>')[-1]`: everything after the last "</think>", or all of it.
fn after_last_think_close(content: &str) -> &str {
    match content.rfind(THINK_CLOSE) {
        Some(i) => &content[i + THINK_CLOSE.len()..],
        None => content,
    }
}

/// ChatML; `default_system` is written first when the first message is not a system message
/// (`{% if loop.first and messages[0]['role'] != 'system' %}`).
fn render_chatml(out: &mut String, messages: &[Message], default_system: Option<&str>) {
    if let Some(system) = default_system {
        if messages[0].role != Role::System {
            push_chatml(out, "system", system);
        }
    }
    for m in messages {
        push_chatml(out, m.role.as_str(), &m.content);
    }
    out.push_str("<|im_start|>assistant\n");
}

fn push_chatml(out: &mut String, role: &str, content: &str) {
    out.push_str("<|im_start|>");
    out.push_str(role);
    out.push('\n');
    out.push_str(content);
    out.push_str("<|im_end|>\n");
}

/// Llama 3 Instruct: `bos_token` before the first message only; content goes through Jinja's
/// `trim` filter (Python `str.strip()`).
fn render_llama3(out: &mut String, messages: &[Message], bos: &str) {
    out.push_str(bos);
    for m in messages {
        out.push_str("<|start_header_id|>");
        out.push_str(m.role.as_str());
        out.push_str("<|end_header_id|>\n\n");
        out.push_str(m.content.trim_matches(is_python_space));
        out.push_str("<|eot_id|>");
    }
    out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/// Python's `str.isspace()`, which `str.strip()` removes: Unicode White_Space (Rust's
/// `char::is_whitespace`) plus the information separators U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

// ---------------------------------------------------------------------------------------------
// Recognising Jinja sources.

/// A Jinja source in two normalised forms.
struct Source {
    /// `\n` escapes inside string literals made real newlines: GGUF files carry either
    /// spelling (the R1 file has the escape, SmolLM2's the character).
    text: String,
    /// `text` with spaces, tabs and Jinja's `-` white-space control removed, double quotes
    /// made single and `message.x` made `message['x']`: for matching code structure.
    code: String,
}

impl Source {
    fn new(jinja: &str) -> Source {
        let text = jinja.replace("\\n", "\n");
        let mut code: String = text.chars().filter(|&c| c != ' ' && c != '\t').collect();
        for (from, to) in [
            ("{{-", "{{"),
            ("-}}", "}}"),
            ("{%-", "{%"),
            ("-%}", "%}"),
            ("\"", "'"),
            ("message.role", "message['role']"),
            ("message.content", "message['content']"),
        ] {
            code = code.replace(from, to);
        }
        Source { text, code }
    }
    fn has(&self, code: &str) -> bool {
        self.code.contains(code)
    }
    fn has_any(&self, words: &[&str]) -> bool {
        words.iter().any(|w| self.text.contains(w))
    }
}

/// The R1 distill template: users, assistants with their think span cut, bos first. Variants
/// that render differently for plain chats are refused: DeepSeek-V3/R1-0528 templates write
/// "<｜Assistant｜>" after each user turn (`is_last_user`), some re-uploads add an
/// `enable_thinking` switch.
fn detect_deepseek_r1(src: &Source) -> Option<ChatTemplate> {
    let body = src.has("bos_token")
        && src.has("'<｜User｜>'+message['content']")
        && src.has("'<｜Assistant｜>'+content+'<｜end▁of▁sentence｜>'")
        && src.has("split('</think>')[-1]")
        && !src.has_any(&["is_last_user", "enable_thinking"]);
    if !body {
        return None;
    }
    if src.has("{{'<｜Assistant｜><think>\n'}}") {
        Some(ChatTemplate::DeepSeekR1)
    } else if src.has("{{'<｜Assistant｜>'}}") {
        Some(ChatTemplate::DeepSeekR1Original)
    } else {
        None
    }
}

/// ChatML with no extras (tools, think handling, bos, trimming), with no default system
/// prompt or SmolLM2's.
fn detect_chatml(src: &Source) -> Option<ChatTemplate> {
    let plain = src.has("'<|im_start|>'+message['role']+'\n'+message['content']+'<|im_end|>'")
        && src.has("'<|im_start|>assistant\n'")
        && !src.has_any(&[
            "tools",
            "<think>",
            "bos_token",
            "trim",
            "strip",
            "reasoning",
            "enable_thinking",
        ]);
    if !plain {
        return None;
    }
    if !src.has("!='system'") {
        return Some(ChatTemplate::ChatMl);
    }
    // `{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n...` :
    // the injected prompt must be one we know.
    let marker = "<|im_start|>system\n";
    let start = src.text.find(marker)? + marker.len();
    let len = src.text[start..].find("<|im_end|>")?;
    (&src.text[start..start + len] == SMOLLM2_SYSTEM).then_some(ChatTemplate::SmolLm2)
}

/// Llama 3 Instruct's template; Llama 3.1+ (dated system block, tools) is refused.
fn detect_llama3(src: &Source) -> Option<ChatTemplate> {
    let ok = src.has("bos_token")
        && src.has(
            "'<|start_header_id|>'+message['role']+'<|end_header_id|>\n\n'+message['content']|trim+'<|eot_id|>'",
        )
        && src.has("'<|start_header_id|>assistant<|end_header_id|>\n\n'")
        && !src.has_any(&["tools", "Cutting Knowledge", "date_string", "<think>"]);
    ok.then_some(ChatTemplate::Llama3)
}

// ---------------------------------------------------------------------------------------------
// Think spans in generated text.

/// Generated text cut at its think span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThinkSplit<'a> {
    /// The text inside the span, white space around it removed.
    pub reasoning: &'a str,
    /// The text after the span (or all the text when there is none), white space around it
    /// removed.
    pub answer: &'a str,
    /// The span is open and not yet closed: all text so far is reasoning (a reply still
    /// streaming, or one cut off by a token limit).
    pub thinking: bool,
}

/// Splits generated text at its think span. The span runs from a leading "<think>" (or from
/// the start when `prompt_opened`, i.e. [`ChatTemplate::opens_think`], or when a "</think>"
/// comes without an opening tag) to the first "</think>". Text with neither tag is all answer.
///
/// Use it on partial text while streaming as well as on the final reply. (The first "</think>"
/// ends the span, as when streaming; the R1 template, re-rendering history, cuts at the last.)
pub fn split_think(text: &str, prompt_opened: bool) -> ThinkSplit<'_> {
    let after_open = text.trim_start().strip_prefix(THINK_OPEN);
    let span = match after_open {
        Some(rest) => rest,
        None if prompt_opened || text.contains(THINK_CLOSE) => text,
        None => {
            return ThinkSplit {
                reasoning: "",
                answer: text.trim(),
                thinking: false,
            }
        }
    };
    match span.find(THINK_CLOSE) {
        Some(i) => ThinkSplit {
            reasoning: span[..i].trim(),
            answer: span[i + THINK_CLOSE.len()..].trim(),
            thinking: false,
        },
        None => ThinkSplit {
            reasoning: span.trim(),
            answer: "",
            thinking: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_space_is_exactly_pythons_str_isspace() {
        // [hex(c) for c in range(0x110000) if chr(c).isspace()], CPython 3.
        const PYTHON: &[u32] = &[
            0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000,
            0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028,
            0x2029, 0x202f, 0x205f, 0x3000,
        ];
        let ours: Vec<u32> = (0..=0x10ffff)
            .filter_map(char::from_u32)
            .filter(|&c| is_python_space(c))
            .map(u32::from)
            .collect();
        assert_eq!(ours, PYTHON);
    }

    #[test]
    fn names_round_trip() {
        for t in ChatTemplate::ALL {
            assert_eq!(ChatTemplate::from_name(t.name()), Some(t));
        }
        assert_eq!(
            ChatTemplate::from_name("DeepSeek-R1"),
            Some(ChatTemplate::DeepSeekR1)
        );
        assert_eq!(ChatTemplate::from_name("r1"), None);
    }

    #[test]
    fn only_the_current_r1_template_opens_think() {
        let open: Vec<_> = ChatTemplate::ALL
            .into_iter()
            .filter(|t| t.opens_think())
            .collect();
        assert_eq!(open, [ChatTemplate::DeepSeekR1]);
    }

    #[test]
    fn refuses_empty_chats_and_late_system_messages() {
        for t in ChatTemplate::ALL {
            assert!(matches!(t.render(&[], "<s>"), Err(Error::Invalid(_))));
            let late = [Message::user("hi"), Message::system("be brief")];
            assert!(matches!(t.render(&late, "<s>"), Err(Error::Invalid(_))));
            let two = [Message::system("a"), Message::system("b")];
            assert!(matches!(t.render(&two, "<s>"), Err(Error::Invalid(_))));
            assert!(t.render(&[Message::system("only")], "<s>").is_ok());
        }
    }

    #[test]
    fn r1_variants_differ_only_in_the_generation_prompt() {
        let chat = [Message::user("hi")];
        let new = ChatTemplate::DeepSeekR1.render(&chat, "<B>").unwrap();
        let old = ChatTemplate::DeepSeekR1Original
            .render(&chat, "<B>")
            .unwrap();
        assert_eq!(old, "<B><｜User｜>hi<｜Assistant｜>");
        assert_eq!(new, format!("{old}<think>\n"));
    }

    #[test]
    fn detect_refuses_lookalikes_it_would_render_differently() {
        // R1-0528 / V3 style: "<｜Assistant｜>" written after every user turn.
        let r1_0528 = "{{bos_token}}{% set ns = namespace(is_last_user=false) %}{%- for message in messages %}{%- if message['role'] == 'user' %}{{'<｜User｜>' + message['content'] + '<｜Assistant｜>'}}{%- endif %}{%- if message['role'] == 'assistant' %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{% if add_generation_prompt and not ns.is_last_user %}{{'<｜Assistant｜>'}}{% endif %}";
        assert_eq!(ChatTemplate::detect(r1_0528), None);
        // Llama 3.1: a dated system block in every prompt.
        let llama31 = "{{- bos_token }}{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}{{- \"Cutting Knowledge Date: December 2023\\n\" }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";
        assert_eq!(ChatTemplate::detect(llama31), None);
        // ChatML with a default system prompt we do not know.
        let qwen2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        assert_eq!(ChatTemplate::detect(qwen2), None);
        assert_eq!(ChatTemplate::detect(""), None);
        assert_eq!(ChatTemplate::detect("{{ messages }}"), None);
    }

    #[test]
    fn detect_tolerates_reformatting() {
        // Double quotes, white-space control, attribute access, spaces.
        let chatml = "{%- for message in messages -%}\n  {{- \"<|im_start|>\" + message.role + \"\\n\" + message.content + \"<|im_end|>\" + \"\\n\" -}}\n{%- endfor -%}\n{%- if add_generation_prompt -%}{{- \"<|im_start|>assistant\\n\" -}}{%- endif -%}";
        assert_eq!(ChatTemplate::detect(chatml), Some(ChatTemplate::ChatMl));
    }
}
