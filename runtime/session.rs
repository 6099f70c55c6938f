//! Text in, text out: a prompt becomes tokens, the model runs prefill then decode, and
//! the caller iterates over events — text pieces that are always whole UTF-8, the
//! start and end of a think span, and a final summary. Stops on an end-of-generation
//! token, a stop string, the token limit, a full context, or a cancellation flag set
//! from any thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::chat::{ChatTemplate, Message};
use crate::error::{Error, Result};
use crate::sampler::{Sampler, SamplerOptions};
use crate::tokenizer::Tokenizer;
use crate::Model;

/// What to generate from.
#[derive(Clone, Copy, Debug)]
pub enum Prompt<'a> {
    /// Text used as is (no chat template); special tokens in it are parsed.
    Raw(&'a str),
    /// Token ids used as is.
    Ids(&'a [u32]),
    /// A conversation, rendered with the session's chat template (the model's own
    /// unless [`Session::set_template`] chose another). A template that opens a think
    /// span (DeepSeek-R1) makes generation start inside it.
    Chat(&'a [Message]),
}

/// Options of one `generate` call.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    pub sampler: SamplerOptions,
    /// Generation stops before any of these strings; they are not emitted.
    pub stop: Vec<String>,
    /// Set to true (from any thread) to stop after the current token.
    pub cancel: Option<Arc<AtomicBool>>,
    /// The prompt already opened a think span (the R1 template ends with "<think>\n").
    pub starts_in_think: bool,
    /// Report each sampled token with this many of the highest logits
    /// ([`Event::Token`]); 0 reports the ids only.
    pub top_logprobs: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 512,
            sampler: SamplerOptions::default(),
            stop: Vec::new(),
            cancel: None,
            starts_in_think: false,
            top_logprobs: 0,
        }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    EndOfGeneration,
    StopString,
    MaxTokens,
    Cancelled,
    /// The context is full.
    ContextFull,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub stop: StopReason,
    pub prompt_tokens: usize,
    /// Prompt tokens that were already in the KV cache from the previous call.
    pub reused_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A sampled token (before its text, which may come later or not at all) and the
    /// highest logits it was chosen from, descending.
    Token {
        id: u32,
        top: Vec<(u32, f32)>,
    },
    /// Generated text, whole UTF-8 characters only.
    Text(String),
    ThinkStart,
    ThinkEnd,
    /// Always the last event.
    Done(Summary),
}

/// A conversation with one model: the tokens in its KV cache carry over between
/// `generate` calls, so a prompt that extends the last one only evaluates what is new.
pub struct Session<'m> {
    model: &'m mut Model,
    template: Option<ChatTemplate>,
    /// Tokens whose keys and values are in the cache, in order.
    cached: Vec<u32>,
}

impl<'m> Session<'m> {
    pub(crate) fn new(model: &'m mut Model) -> Result<Session<'m>> {
        if model.tokenizer().is_none() {
            return Err(Error::Invalid(
                "the model file has no usable tokenizer".into(),
            ));
        }
        model.reset();
        let template = model.chat_template().cloned();
        Ok(Session {
            model,
            template,
            cached: Vec::new(),
        })
    }

    /// Forgets the cached tokens: the next `generate` evaluates its whole prompt. Its
    /// output then depends on the prompt and options alone. With a cached prefix the
    /// prompt's remaining tokens are evaluated in other batch shapes (one token alone, or
    /// other chunks), whose kernels round differently in the last bits of the logits:
    /// greedy text rarely changes, sampled text can.
    pub fn clear_cache(&mut self) {
        self.cached.clear();
        self.model.reset();
    }

    /// Renders [`Prompt::Chat`] with this template instead of the model's.
    pub fn set_template(&mut self, template: ChatTemplate) {
        self.template = Some(template);
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        self.model.tokenizer().expect("checked in Session::new")
    }

    /// Prompt token ids (BOS as the file says, special tokens parsed) and whether the
    /// prompt opened a think span.
    pub fn encode(&self, prompt: Prompt<'_>) -> Result<(Vec<u32>, bool)> {
        encode_prompt(self.tokenizer(), self.template.as_ref(), prompt)
    }

    /// Starts generating; iterate over the returned events.
    pub fn generate(
        &mut self,
        prompt: Prompt<'_>,
        opts: GenerateOptions,
    ) -> Result<Generation<'_, 'm>> {
        let (ids, opened_think) = self.encode(prompt)?;
        if ids.is_empty() {
            return Err(Error::Invalid("empty prompt".into()));
        }
        // A prompt that fills the context exactly still gives one token: the last
        // sampled token is never evaluated, so it needs no room in the cache.
        let n_ctx = self.model.n_ctx() as usize;
        if ids.len() > n_ctx {
            return Err(Error::Invalid(format!(
                "the prompt has {} tokens; the context holds {n_ctx}",
                ids.len()
            )));
        }
        let sampler = Sampler::new(opts.sampler.clone())?;
        // Reuse the cached prefix; at least the last prompt token is evaluated again
        // so that there are logits to sample from.
        let common = self
            .cached
            .iter()
            .zip(&ids)
            .take_while(|(a, b)| a == b)
            .count();
        let reuse = common.min(ids.len() - 1);
        self.model.rewind(reuse as u32)?;
        self.cached.truncate(reuse);
        let in_think = opts.starts_in_think || opened_think;
        Ok(Generation {
            session: self,
            prompt: ids,
            reuse,
            sampler,
            text: TextStream::new(&opts.stop),
            in_think,
            think_announced: false,
            opts,
            logits: Vec::new(),
            generated: 0,
            started: None,
            decode_start: None,
            prefill_s: 0.0,
            pending: std::collections::VecDeque::new(),
            finished: false,
        })
    }
}

/// Token ids of a prompt and whether it opened a think span; [`Prompt::Chat`] is
/// rendered with `template`. Needs no model: tokenizing alone uses it too.
pub fn encode_prompt(
    tok: &Tokenizer,
    template: Option<&ChatTemplate>,
    prompt: Prompt<'_>,
) -> Result<(Vec<u32>, bool)> {
    match prompt {
        Prompt::Raw(text) => Ok((tok.encode(text, true, true)?, false)),
        Prompt::Ids(ids) => Ok((ids.to_vec(), false)),
        Prompt::Chat(messages) => {
            let t = template.ok_or_else(|| {
                Error::Invalid("the model has no chat template we know; choose one".into())
            })?;
            // The template writes BOS itself; the tokenizer must not add another.
            let bos = tok
                .bos()
                .map(|b| String::from_utf8_lossy(tok.token_bytes(b)).into_owned());
            let text = t.render(messages, bos.as_deref().unwrap_or(""))?;
            Ok((tok.encode(&text, false, true)?, t.opens_think()))
        }
    }
}

/// Bytes of tokens in, whole UTF-8 text out, held back while it could still become a
/// stop string.
struct TextStream {
    bytes: Vec<u8>, // incomplete UTF-8 at the end of what was produced
    held: String,   // text that might be the start of a stop string
    stop: Vec<String>,
}

impl TextStream {
    fn new(stop: &[String]) -> Self {
        TextStream {
            bytes: Vec::new(),
            held: String::new(),
            stop: stop.iter().filter(|s| !s.is_empty()).cloned().collect(),
        }
    }

    /// Adds a token's bytes; returns the text that is safe to emit, and whether a stop
    /// string was reached (the text before it is returned, the rest dropped).
    fn push(&mut self, token: &[u8]) -> (String, bool) {
        self.bytes.extend_from_slice(token);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.bytes) {
                Ok(s) => {
                    out.push_str(s);
                    self.bytes.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.bytes[..valid]).expect("valid prefix"));
                    match e.error_len() {
                        // Incomplete character at the end: wait for the next token.
                        None => {
                            self.bytes.drain(..valid);
                            break;
                        }
                        // Bytes that can never be UTF-8: replace, as a lossy decode would.
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.bytes.drain(..valid + n);
                        }
                    }
                }
            }
        }
        self.held.push_str(&out);
        if let Some(at) = self
            .stop
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            let before = self.held[..at].to_string();
            self.held.clear();
            return (before, true);
        }
        // Hold back the longest tail that is a proper prefix of a stop string.
        let keep = self
            .stop
            .iter()
            .flat_map(|s| {
                (1..s.len())
                    .filter(|&n| s.is_char_boundary(n))
                    .map(move |n| &s[..n])
            })
            .filter(|p| self.held.ends_with(p))
            .map(|p| p.len())
            .max()
            .unwrap_or(0);
        let emit_to = self.held.len() - keep;
        let emitted = self.held[..emit_to].to_string();
        self.held.drain(..emit_to);
        (emitted, false)
    }

    /// What is left at the end: held text and an incomplete character (lossy).
    fn finish(&mut self) -> String {
        let mut s = std::mem::take(&mut self.held);
        s.push_str(&String::from_utf8_lossy(&self.bytes));
        self.bytes.clear();
        s
    }
}

/// An in-progress generation: an iterator over [`Event`]s.
pub struct Generation<'s, 'm> {
    session: &'s mut Session<'m>,
    prompt: Vec<u32>,
    reuse: usize,
    sampler: Sampler,
    text: TextStream,
    opts: GenerateOptions,
    in_think: bool,
    think_announced: bool,
    logits: Vec<f32>,
    generated: usize,
    started: Option<Instant>,
    decode_start: Option<Instant>,
    prefill_s: f64,
    pending: std::collections::VecDeque<Event>,
    finished: bool,
}

impl Generation<'_, '_> {
    fn prefill(&mut self) -> Result<()> {
        let t = Instant::now();
        self.started = Some(t);
        let new = &self.prompt[self.reuse..];
        self.logits = self.session.model.eval(new)?.to_vec();
        self.session.cached.extend_from_slice(new);
        self.prefill_s = t.elapsed().as_secs_f64();
        self.decode_start = Some(Instant::now());
        Ok(())
    }

    fn summary(&self, stop: StopReason) -> Summary {
        let decode_s = self.decode_start.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let new = self.prompt.len() - self.reuse;
        Summary {
            stop,
            prompt_tokens: self.prompt.len(),
            reused_tokens: self.reuse,
            generated_tokens: self.generated,
            prefill_tok_s: if self.prefill_s > 0.0 {
                new as f64 / self.prefill_s
            } else {
                0.0
            },
            // Decode speed counts the tokens evaluated after the prefill.
            decode_tok_s: if decode_s > 0.0 {
                self.generated.saturating_sub(1) as f64 / decode_s
            } else {
                0.0
            },
        }
    }

    fn end(&mut self, stop: StopReason) {
        let rest = self.text.finish();
        if !rest.is_empty() && stop != StopReason::StopString {
            self.pending.push_back(Event::Text(rest));
        }
        self.pending.push_back(Event::Done(self.summary(stop)));
        self.finished = true;
    }

    /// One token: sample, classify, queue its events, evaluate it.
    fn step(&mut self) -> Result<()> {
        if self.started.is_none() {
            self.prefill()?;
            if self.in_think && !self.think_announced {
                self.think_announced = true;
                self.pending.push_back(Event::ThinkStart);
            }
        }
        let cancelled = self
            .opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed));
        if cancelled {
            self.end(StopReason::Cancelled);
            return Ok(());
        }
        if self.generated >= self.opts.max_tokens {
            self.end(StopReason::MaxTokens);
            return Ok(());
        }
        let id = self.sampler.sample(&self.logits, &self.session.cached);
        self.generated += 1;
        let top = crate::sampler::top_k(&self.logits, self.opts.top_logprobs);
        self.pending.push_back(Event::Token { id, top });
        let tok = self.session.tokenizer();
        if tok.is_eog(id) {
            self.end(StopReason::EndOfGeneration);
            return Ok(());
        }
        let bytes = tok.token_bytes(id).to_vec();
        match bytes.as_slice() {
            b"<think>" if !self.in_think => {
                self.in_think = true;
                self.pending.push_back(Event::ThinkStart);
            }
            b"</think>" if self.in_think => {
                let rest = self.text.finish();
                if !rest.is_empty() {
                    self.pending.push_back(Event::Text(rest));
                }
                self.in_think = false;
                self.pending.push_back(Event::ThinkEnd);
            }
            _ => {
                let (piece, stopped) = self.text.push(&bytes);
                if !piece.is_empty() {
                    self.pending.push_back(Event::Text(piece));
                }
                if stopped {
                    self.end(StopReason::StopString);
                    return Ok(());
                }
            }
        }
        // No room to evaluate this token: it is the last one. With n_ctx 16 and a
        // 5-token prompt that is the 12th (positions 5..=15 hold the first 11). When
        // it was also the last one asked for, the token limit is why generation ended.
        if self.session.model.position() >= self.session.model.n_ctx() {
            let stop = if self.generated >= self.opts.max_tokens {
                StopReason::MaxTokens
            } else {
                StopReason::ContextFull
            };
            self.end(stop);
            return Ok(());
        }
        self.logits.copy_from_slice(self.session.model.eval(&[id])?);
        self.session.cached.push(id);
        Ok(())
    }
}

impl Iterator for Generation<'_, '_> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        while self.pending.is_empty() && !self.finished {
            if let Err(e) = self.step() {
                self.finished = true;
                return Some(Err(e));
            }
        }
        self.pending.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::TextStream;

    fn feed(stop: &[&str], tokens: &[&[u8]]) -> (Vec<String>, bool, String) {
        let stop: Vec<String> = stop.iter().map(|s| s.to_string()).collect();
        let mut ts = TextStream::new(&stop);
        let mut out = Vec::new();
        for t in tokens {
            let (s, stopped) = ts.push(t);
            out.push(s);
            if stopped {
                return (out, true, String::new());
            }
        }
        let rest = ts.finish();
        (out, false, rest)
    }

    #[test]
    fn multibyte_characters_split_across_tokens_are_held_until_complete() {
        // "مر" (Arabic), "中" (Chinese), "😀" (emoji) split at every byte.
        let text = "مر中😀";
        let bytes = text.as_bytes();
        let tokens: Vec<&[u8]> = bytes.chunks(1).collect();
        let (pieces, stopped, rest) = feed(&[], &tokens);
        assert!(!stopped && rest.is_empty());
        assert_eq!(pieces.concat(), text);
        // Every piece is whole characters: the emoji appears in one piece.
        assert!(pieces.iter().any(|p| p == "😀"));
        assert_eq!(pieces.iter().filter(|p| !p.is_empty()).count(), 4);
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let (pieces, _, rest) = feed(&[], &[b"a\xffb", b"\xe4\xb8"]);
        assert_eq!(pieces.concat(), "a\u{fffd}b");
        assert_eq!(
            rest, "\u{fffd}",
            "an incomplete character at the end is lossy"
        );
    }

    #[test]
    fn stop_strings_are_held_back_and_not_emitted() {
        let (pieces, stopped, _) =
            feed(&["<|im_end|>"], &[b"Hello", b" <|im", b"_en", b"d|> more"]);
        assert!(stopped);
        assert_eq!(pieces.concat(), "Hello ");
        // A prefix that turns out not to be the stop string is released.
        let (pieces, stopped, rest) = feed(&["STOP"], &[b"ST", b"ART"]);
        assert!(!stopped);
        assert_eq!(pieces.concat() + &rest, "START");
    }
}
