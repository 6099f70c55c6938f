//! Chat templates without a template engine. A GGUF file's `tokenizer.chat_template` (Jinja) is
//! recognised by the markers of its family, as llama.cpp's `llm_chat_detect_template` does, and
//! the family is rendered by a few lines of Rust:
//!
//! - `<|im_start|>`: ChatML, with the system prompt the template writes when the conversation
//!   has none (SmolLM2, Qwen2.5), if it writes one; but `<|im_sep|>` (Phi-4) or
//!   `<end_of_utterance>` (SmolVLM) beside it is not ChatML;
//! - `<|start_header_id|>` and `<|end_header_id|>`: Llama 3;
//! - `<｜User｜>`, `<｜Assistant｜>` and `<｜end▁of▁sentence｜>`: DeepSeek-R1, whose generation
//!   prompt opens a think span ("<｜Assistant｜><think>\n") or not.
//!
//! The first of these whose markers appear decides, in llama.cpp's order (llama.cpp checks
//! other families in between, whose templates do not carry these markers). Anything else
//! (Mistral, Gemma, Phi, ...) is `None`, and the caller asks for a template.
//!
//! Exactness: for the templates tests/chat_templates.rs holds us to (the R1 distills of January
//! and February 2025, SmolLM2, Qwen2 and Qwen2.5 Instruct, plain ChatML, Llama 3 Instruct),
//! [`ChatTemplate::render`] produces, byte for byte, what the Jinja source renders under Hugging
//! Face transformers (`apply_chat_template(..., add_generation_prompt=True)` with the file's bos
//! token); tests/fixtures/make_chat_goldens.py renders the real templates. Other members of a
//! family get the family's format, as llama.cpp renders them; they may differ in extras such as
//! a Qwen3 template's handling of think spans in the history.
//!
//! Llama 3.1 and later add a system block to every prompt, "Cutting Knowledge Date: December
//! 2023\nToday Date: 26 Jul 2024\n\n" before the system message, even when there is none. We
//! render the plain Llama 3 format without it, as llama.cpp's built-in template does: the block
//! carries no text of the conversation, and its date is not reproducible (3.2's template takes
//! today's date in the host's local time zone from transformers' `strftime_now`; 3.1's and
//! 3.3's fix "26 Jul 2024"). Everything else of a plain chat is the same; the tests check that
//! the real render minus that block equals ours.
//!
//! The templates accept more than `render` does: a system message anywhere (DeepSeek-R1 hoists
//! the last one to the front and drops the others; ChatML renders it in place) and tool turns.
//! `render` takes the part every template agrees on — at most one system message, first, then
//! user and assistant turns in any order — and refuses the rest with [`Error::Invalid`] instead
//! of silently dropping text.
//!
//! Keep the whole reply text (think span included) as the assistant turn of the history:
//! the DeepSeek-R1 template removes earlier think spans itself, keeping what follows
//! "</think>" exactly (usually "\n\n" and the answer).

use std::borrow::Cow;

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

/// The chat template families edgeseek renders.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// ChatML: `<|im_start|>role\ncontent<|im_end|>\n` per message, then
    /// `<|im_start|>assistant\n`. No bos token.
    ChatMl {
        /// The system message written first when the conversation does not open with one:
        /// [`SMOLLM2_SYSTEM`], [`QWEN25_SYSTEM`], or whatever the file's template writes
        /// (`{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n...' }}`).
        default_system: Option<Cow<'static, str>>,
    },
    /// Meta Llama 3 Instruct: `bos` once, then
    /// `<|start_header_id|>role<|end_header_id|>\n\n` + content with surrounding white space
    /// removed + `<|eot_id|>` per message, then the assistant header. Also Llama 3.1 and later,
    /// without their dated system block (see the module comment).
    Llama3,
}

/// The system prompt SmolLM2-Instruct's template inserts when the conversation has none.
pub const SMOLLM2_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// The system prompt Qwen2.5-Instruct's template inserts when the conversation has none.
pub const QWEN25_SYSTEM: &str =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

const R1_USER: &str = "<｜User｜>";
const R1_ASSISTANT: &str = "<｜Assistant｜>";
const R1_END: &str = "<｜end▁of▁sentence｜>";
const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";

/// The GGUF metadata key holding the Jinja source.
const KEY_TEMPLATE: &str = "tokenizer.chat_template";

impl ChatTemplate {
    /// The templates with a name, for [`ChatTemplate::from_name`] (`--template`): each family,
    /// and the ChatML default system prompts of SmolLM2 and Qwen2.5.
    pub const ALL: [ChatTemplate; 6] = [
        ChatTemplate::DeepSeekR1,
        ChatTemplate::DeepSeekR1Original,
        ChatTemplate::ChatMl {
            default_system: None,
        },
        ChatTemplate::ChatMl {
            default_system: Some(Cow::Borrowed(SMOLLM2_SYSTEM)),
        },
        ChatTemplate::ChatMl {
            default_system: Some(Cow::Borrowed(QWEN25_SYSTEM)),
        },
        ChatTemplate::Llama3,
    ];

    /// The family a `tokenizer.chat_template` Jinja source belongs to, recognised by its
    /// markers (see the module comment); `None` for families edgeseek does not render, and for
    /// a ChatML template whose default system prompt it cannot read.
    pub fn detect(jinja: &str) -> Option<ChatTemplate> {
        let src = Source::new(jinja);
        if src.has_text("<|im_start|>") {
            // Phi-4 and SmolVLM use ChatML's marker for formats of their own (llama.cpp).
            if src.has_text("<|im_sep|>") || src.has_text("<end_of_utterance>") {
                return None;
            }
            let default_system = chatml_default_system(&src)?;
            return Some(ChatTemplate::ChatMl {
                default_system: default_system.map(named_or_owned),
            });
        }
        if src.has_text("<|start_header_id|>") && src.has_text("<|end_header_id|>") {
            return Some(ChatTemplate::Llama3);
        }
        if [R1_USER, R1_ASSISTANT, R1_END]
            .iter()
            .all(|m| src.has_text(m))
        {
            // The February 2025 templates end with `{{'<｜Assistant｜><think>\n'}}`.
            return Some(if src.has_code("'<｜Assistant｜><think>\n'") {
                ChatTemplate::DeepSeekR1
            } else {
                ChatTemplate::DeepSeekR1Original
            });
        }
        None
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

    /// The family's name, llama.cpp's where it has one ("chatml", "llama3"); "smollm2" and
    /// "qwen2.5" for ChatML with their default system prompts. ChatML with another default
    /// system prompt (read from a file) is "chatml" too: [`ChatTemplate::default_system`] tells
    /// them apart.
    pub fn name(&self) -> &'static str {
        match self {
            ChatTemplate::DeepSeekR1 => "deepseek-r1",
            ChatTemplate::DeepSeekR1Original => "deepseek-r1-original",
            ChatTemplate::ChatMl { default_system } => match default_system.as_deref() {
                Some(SMOLLM2_SYSTEM) => "smollm2",
                Some(QWEN25_SYSTEM) => "qwen2.5",
                _ => "chatml",
            },
            ChatTemplate::Llama3 => "llama3",
        }
    }

    /// The system message the template writes when a conversation has none.
    pub fn default_system(&self) -> Option<&str> {
        match self {
            ChatTemplate::ChatMl { default_system } => default_system.as_deref(),
            _ => None,
        }
    }

    /// Does the rendered prompt end inside an open think span (R1 appends "<think>\n" after
    /// "<｜Assistant｜>")? Then the reply starts with reasoning and "</think>" ends it.
    pub fn opens_think(&self) -> bool {
        *self == ChatTemplate::DeepSeekR1
    }

    /// The prompt text the official template renders for `messages` with
    /// `add_generation_prompt = true`; `bos_token` is the file's bos token text (used by the
    /// DeepSeek-R1 and Llama 3 templates). The text contains special-token text such as
    /// "<｜User｜>": tokenize it with special tokens parsed, and without adding another BOS where
    /// the template already wrote one.
    ///
    /// `Error::Invalid` for an empty conversation, or a system message that is not the first.
    pub fn render(&self, messages: &[Message], bos_token: &str) -> Result<String> {
        check_conversation(messages)?;
        let capacity = messages.iter().map(|m| m.content.len() + 40).sum::<usize>() + 200;
        let mut out = String::with_capacity(capacity);
        match self {
            ChatTemplate::DeepSeekR1 | ChatTemplate::DeepSeekR1Original => {
                render_deepseek_r1(&mut out, messages, bos_token, self.opens_think())
            }
            ChatTemplate::ChatMl { default_system } => {
                render_chatml(&mut out, messages, default_system.as_deref())
            }
            ChatTemplate::Llama3 => render_llama3(&mut out, messages, bos_token),
        }
        Ok(out)
    }
}

impl std::fmt::Display for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())?;
        match self.default_system() {
            Some(system) if self.name() == "chatml" => write!(f, " (default system {system:?})"),
            _ => Ok(()),
        }
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
    /// `text` with spaces, tabs and Jinja's `-` white-space control removed and double quotes
    /// made single: for matching code structure.
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
        ] {
            code = code.replace(from, to);
        }
        Source { text, code }
    }
    fn has_text(&self, text: &str) -> bool {
        self.text.contains(text)
    }
    fn has_code(&self, code: &str) -> bool {
        self.code.contains(code)
    }
}

/// The system prompt a ChatML template writes when the conversation opens without one, read
/// from the string literal `'<|im_start|>system\n...<|im_end|>'` that SmolLM2's, Qwen2's and
/// Qwen2.5's templates write it with: `Some(None)` when there is no such literal (the block
/// is built from variables, or there is no default), `None` when the literal holds escapes
/// other than `\n` (we would render it wrong).
fn chatml_default_system(src: &Source) -> Option<Option<&str>> {
    const OPEN: &str = "<|im_start|>system\n";
    const CLOSE: &str = "<|im_end|>";
    let text = src.text.as_str();
    for (at, _) in text.match_indices(OPEN) {
        let quote = match text[..at].chars().next_back() {
            Some(q @ ('\'' | '"')) => q,
            _ => continue,
        };
        let body = &text[at + OPEN.len()..];
        let literal = &body[..body.find(quote).unwrap_or(body.len())];
        if let Some(end) = literal.find(CLOSE) {
            let system = &literal[..end];
            return (!system.contains('\\')).then_some(Some(system));
        }
        if literal.ends_with('\\') {
            return None; // an escaped quote: the literal goes on
        }
    }
    Some(None)
}

/// A default system prompt read from a file: the named constant when it is one we know
/// (so that [`ChatTemplate::name`] finds it), else an owned copy.
fn named_or_owned(text: &str) -> Cow<'static, str> {
    match [SMOLLM2_SYSTEM, QWEN25_SYSTEM]
        .into_iter()
        .find(|n| *n == text)
    {
        Some(named) => Cow::Borrowed(named),
        None => Cow::Owned(text.to_string()),
    }
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

    const CHATML: ChatTemplate = ChatTemplate::ChatMl {
        default_system: None,
    };

    #[test]
    fn names_round_trip_and_the_old_names_still_work() {
        for t in ChatTemplate::ALL {
            assert_eq!(ChatTemplate::from_name(t.name()), Some(t));
        }
        assert_eq!(
            ChatTemplate::from_name("DeepSeek-R1"),
            Some(ChatTemplate::DeepSeekR1)
        );
        let named = [
            "deepseek-r1",
            "deepseek-r1-original",
            "chatml",
            "smollm2",
            "llama3",
        ];
        assert!(named.iter().all(|n| ChatTemplate::from_name(n).is_some()));
        assert_eq!(
            ChatTemplate::from_name("smollm2")
                .as_ref()
                .and_then(ChatTemplate::default_system),
            Some(SMOLLM2_SYSTEM)
        );
        assert_eq!(ChatTemplate::from_name("r1"), None);
    }

    #[test]
    fn display_shows_a_default_system_prompt_without_a_name() {
        let qwen2 = ChatTemplate::ChatMl {
            default_system: Some("You are a helpful assistant.".into()),
        };
        assert_eq!(
            qwen2.to_string(),
            "chatml (default system \"You are a helpful assistant.\")"
        );
        assert_eq!(CHATML.to_string(), "chatml");
        assert_eq!(
            ChatTemplate::from_name("qwen2.5").unwrap().to_string(),
            "qwen2.5"
        );
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
    fn chatml_writes_its_default_system_prompt_only_when_the_chat_has_none() {
        let t = ChatTemplate::ChatMl {
            default_system: Some("Be kind.".into()),
        };
        let default = "<|im_start|>system\nBe kind.<|im_end|>\n";
        let user = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
        let chat = [Message::user("hi")];
        assert_eq!(t.render(&chat, "").unwrap(), format!("{default}{user}"));
        let own = [Message::system("Be brief."), Message::user("hi")];
        let own_system = "<|im_start|>system\nBe brief.<|im_end|>\n";
        assert_eq!(t.render(&own, "").unwrap(), format!("{own_system}{user}"));
        assert_eq!(CHATML.render(&chat, "").unwrap(), user);
    }

    #[test]
    fn detect_goes_by_family_markers_in_llama_cpp_order() {
        // R1-0528 / V3 style ("<｜Assistant｜>" after each user turn): the R1 family; its
        // generation prompt does not open a think span.
        let r1_0528 = "{{bos_token}}{% set ns = namespace(is_last_user=false) %}{%- for message in messages %}{%- if message['role'] == 'user' %}{{'<｜User｜>' + message['content'] + '<｜Assistant｜>'}}{%- endif %}{%- if message['role'] == 'assistant' %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{% if add_generation_prompt and not ns.is_last_user %}{{'<｜Assistant｜>'}}{% endif %}";
        assert_eq!(
            ChatTemplate::detect(r1_0528),
            Some(ChatTemplate::DeepSeekR1Original)
        );
        // Llama 3.1: dated system block and all, the Llama 3 family.
        let llama31 = "{{- bos_token }}{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}{{- \"Cutting Knowledge Date: December 2023\\n\" }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";
        assert_eq!(ChatTemplate::detect(llama31), Some(ChatTemplate::Llama3));
        // ChatML comes first: a Llama 3 fine-tune in ChatML (Hermes) is ChatML.
        let hermes = "<|start_header_id|><|end_header_id|>{{'<|im_start|>' + message['role']}}";
        assert_eq!(ChatTemplate::detect(hermes), Some(CHATML));
        // Formats we do not render, among them two that use ChatML's marker.
        for other in [
            "{{ '<|im_start|>' + message['role'] + '<|im_sep|>' + message['content'] }}",
            "<|im_start|>{{ message['role'] }}: {{ message['content'] }}<end_of_utterance>",
            "{{ bos_token }}{{ '<start_of_turn>' + role + '\\n' + message['content'] }}",
            "{{ '[INST] ' + message['content'] + ' [/INST]' }}",
            "{{ '<|user|>\\n' + message['content'] + '<|end|>\\n<|assistant|>\\n' }}",
            "",
            "{{ messages }}",
        ] {
            assert_eq!(ChatTemplate::detect(other), None, "{other}");
        }
    }

    #[test]
    fn detect_reads_the_default_system_prompt_of_a_chatml_template() {
        let qwen2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        let t = ChatTemplate::detect(qwen2).unwrap();
        assert_eq!(t.default_system(), Some("You are a helpful assistant."));
        // Built from variables: no default to read, and none rendered.
        let built = "{{ '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}";
        assert_eq!(ChatTemplate::detect(built), Some(CHATML));
        // An escaped quote we would not render right: refused rather than guessed.
        let escaped = "{{ '<|im_start|>system\\nYou\\'re kind.<|im_end|>\\n' }}";
        assert_eq!(ChatTemplate::detect(escaped), None);
    }

    #[test]
    fn default_system_prompts_from_files_are_read_and_known_ones_named() {
        let jinja = |system: &str| format!("{{{{ '<|im_start|>system\\n{system}<|im_end|>' }}}}");
        let text = "A prompt seen in a file.";
        let t = ChatTemplate::detect(&jinja(text)).expect("ChatML");
        assert_eq!(t.default_system(), Some(text));
        assert_eq!(t.name(), "chatml");
        let smollm2 = ChatTemplate::detect(&jinja(SMOLLM2_SYSTEM)).unwrap();
        assert_eq!(smollm2.name(), "smollm2");
    }

    #[test]
    fn detect_tolerates_reformatting() {
        // Double quotes, white-space control, attribute access, spaces.
        let chatml = "{%- for message in messages -%}\n  {{- \"<|im_start|>\" + message.role + \"\\n\" + message.content + \"<|im_end|>\" + \"\\n\" -}}\n{%- endfor -%}\n{%- if add_generation_prompt -%}{{- \"<|im_start|>assistant\\n\" -}}{%- endif -%}";
        assert_eq!(ChatTemplate::detect(chatml), Some(CHATML));
        let r1 = "{{ bos_token }}{{ \"<｜User｜>\" + message.content }}{{ \"<｜Assistant｜>\" + content + \"<｜end▁of▁sentence｜>\" }}{%- if add_generation_prompt -%}{{- \"<｜Assistant｜><think>\\n\" -}}{%- endif -%}";
        assert_eq!(ChatTemplate::detect(r1), Some(ChatTemplate::DeepSeekR1));
    }
}
