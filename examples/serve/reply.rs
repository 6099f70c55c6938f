//! From the model thread's replies to the client's response: waiting for them while
//! watching the socket, splitting R1's reasoning from the answer, and writing a whole
//! response or a stream of chunks for either endpoint.

use std::io;
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use edgeseek::{StopReason, Summary};
use serde_json::{json, Value};

use crate::http::{self, EventStream};
use crate::openai::{self, ApiError, Envelope};
use crate::worker::{Cancel, Reply};

/// How often a connection waiting for its next reply looks at its client's socket.
const WATCH_INTERVAL: Duration = Duration::from_millis(20);

/// Waits for the model thread's replies while watching the client's socket: a client
/// that closes its connection cancels its generation (the model thread checks the flag
/// before every token).
pub struct Waiter {
    pub replies: Receiver<Reply>,
    pub conn: TcpStream,
    pub cancel: Arc<Cancel>,
}

impl Waiter {
    /// The next reply; None when the client has gone. The socket is checked with every
    /// reply (so at every token however fast they come) and every `WATCH_INTERVAL`.
    pub fn next(&self) -> Option<Reply> {
        loop {
            let reply = match self.replies.recv_timeout(WATCH_INTERVAL) {
                Ok(r) => Some(r),
                Err(RecvTimeoutError::Timeout) => None,
                // The model thread dropped the job without a last reply: it panicked.
                Err(RecvTimeoutError::Disconnected) => {
                    return Some(Reply::Failed(ApiError::server(
                        500,
                        "the generation failed inside edgeseek (see the server's log)",
                    )))
                }
            };
            if http::peer_closed(&self.conn) {
                self.cancel.client_gone();
                return None;
            }
            if reply.is_some() {
                return reply;
            }
        }
    }

    /// A write to the client failed: it is as good as gone.
    pub fn abandon(&self) {
        self.cancel.client_gone();
    }
}

pub fn finish_reason(stop: StopReason) -> &'static str {
    match stop {
        StopReason::MaxTokens | StopReason::ContextFull => "length",
        StopReason::EndOfGeneration | StopReason::StopString | StopReason::Cancelled => "stop",
    }
}

fn usage_of(s: &Summary) -> Value {
    openai::usage(s.prompt_tokens, s.generated_tokens)
}

/// Leading and trailing white space of a text channel dropped as it streams, so that a
/// streamed reply and a whole one read the same: the answer after R1's "</think>" starts
/// with "\n\n", which DeepSeek's API does not return.
#[derive(Default)]
struct Trim {
    started: bool,
    /// White space held back until text follows it.
    held: String,
}

impl Trim {
    fn push(&mut self, piece: &str) -> Option<String> {
        let piece = if self.started {
            piece
        } else {
            piece.trim_start()
        };
        if piece.is_empty() {
            return None;
        }
        self.started = true;
        let body = piece.trim_end();
        if body.is_empty() {
            self.held.push_str(piece);
            return None;
        }
        let mut out = std::mem::take(&mut self.held);
        out.push_str(body);
        self.held.push_str(&piece[body.len()..]);
        Some(out)
    }
}

/// The reply's two channels: reasoning inside a think span, the answer outside it.
#[derive(Default)]
struct Channels {
    in_think: bool,
    thought: bool,
    reasoning: Trim,
    content: Trim,
}

/// What a reply adds to a chat response.
enum ChatPiece {
    Reasoning(String),
    Content(String),
    Nothing,
    Done(Summary),
    Failed(ApiError),
}

impl Channels {
    fn take(&mut self, reply: Reply) -> ChatPiece {
        match reply {
            Reply::ThinkStart => {
                self.in_think = true;
                self.thought = true;
                ChatPiece::Nothing
            }
            Reply::ThinkEnd => {
                self.in_think = false;
                ChatPiece::Nothing
            }
            Reply::Text(t) if self.in_think => self
                .reasoning
                .push(&t)
                .map_or(ChatPiece::Nothing, ChatPiece::Reasoning),
            Reply::Text(t) => self
                .content
                .push(&t)
                .map_or(ChatPiece::Nothing, ChatPiece::Content),
            Reply::Done(s) => ChatPiece::Done(s),
            Reply::Failed(e) => ChatPiece::Failed(e),
            Reply::Started => ChatPiece::Nothing,
        }
    }
}

/// Where a response goes and how the connection is used.
pub struct Out<'a> {
    pub stream: &'a mut TcpStream,
    pub keep_alive: bool,
    pub http11: bool,
}

impl Out<'_> {
    fn json(&mut self, status: u16, body: &str) -> io::Result<bool> {
        http::write_json(self.stream, status, body, self.keep_alive)?;
        Ok(true)
    }

    fn error(&mut self, e: &ApiError) -> io::Result<bool> {
        self.json(e.status, &e.to_json())
    }

    fn events(&mut self, w: &Waiter) -> io::Result<EventStream<'_>> {
        EventStream::start(self.stream, self.keep_alive, self.http11).inspect_err(|_| w.abandon())
    }
}

/// Ends a stream: its last chunk, the usage chunk when asked for, `[DONE]`. Whether
/// the connection can carry another request.
fn end_stream(mut sse: EventStream, last: &str, usage: Option<String>) -> io::Result<bool> {
    sse.send(last)?;
    if let Some(u) = usage {
        sse.send(&u)?;
    }
    sse.send("[DONE]")?;
    sse.finish()
}

/// An error after the stream has started (its head is sent): one event with OpenAI's
/// error object, as OpenAI sends them, then the end of the body.
fn fail_stream(mut sse: EventStream, e: &ApiError) -> io::Result<bool> {
    sse.send(&e.to_json())?;
    sse.finish()
}

pub fn whole_chat(w: &Waiter, env: &Envelope, mut out: Out) -> io::Result<bool> {
    let mut ch = Channels::default();
    let (mut reasoning, mut content) = (String::new(), String::new());
    loop {
        let Some(reply) = w.next() else {
            return Ok(false);
        };
        match ch.take(reply) {
            ChatPiece::Reasoning(t) => reasoning.push_str(&t),
            ChatPiece::Content(t) => content.push_str(&t),
            ChatPiece::Nothing => {}
            ChatPiece::Done(s) => {
                let body = env.chat_completion(
                    &content,
                    ch.thought.then_some(reasoning.as_str()),
                    finish_reason(s.stop),
                    usage_of(&s),
                );
                return out.json(200, &body);
            }
            ChatPiece::Failed(e) => return out.error(&e),
        }
    }
}

pub fn stream_chat(
    w: &Waiter,
    env: &Envelope,
    include_usage: bool,
    mut out: Out,
) -> io::Result<bool> {
    let mut sse = out.events(w)?;
    let first = env.chat_chunk(
        json!({"role": "assistant", "content": ""}),
        None,
        include_usage,
    );
    sse.send(&first).inspect_err(|_| w.abandon())?;
    let mut ch = Channels::default();
    loop {
        let Some(reply) = w.next() else {
            return Ok(false);
        };
        let data = match ch.take(reply) {
            ChatPiece::Reasoning(t) => {
                env.chat_chunk(json!({"reasoning_content": t}), None, include_usage)
            }
            ChatPiece::Content(t) => env.chat_chunk(json!({"content": t}), None, include_usage),
            ChatPiece::Nothing => continue,
            ChatPiece::Done(s) => {
                let last = env.chat_chunk(json!({}), Some(finish_reason(s.stop)), include_usage);
                let usage =
                    include_usage.then(|| env.usage_chunk("chat.completion.chunk", usage_of(&s)));
                return end_stream(sse, &last, usage);
            }
            ChatPiece::Failed(e) => return fail_stream(sse, &e),
        };
        sse.send(&data).inspect_err(|_| w.abandon())?;
    }
}

/// The text a completion reply adds; think tags come back as the text they were.
fn text_of(reply: &Reply) -> Option<&str> {
    match reply {
        Reply::Text(t) => Some(t),
        Reply::ThinkStart => Some("<think>"),
        Reply::ThinkEnd => Some("</think>"),
        _ => None,
    }
}

pub fn whole_text(w: &Waiter, env: &Envelope, mut out: Out) -> io::Result<bool> {
    let mut text = String::new();
    loop {
        let Some(reply) = w.next() else {
            return Ok(false);
        };
        if let Some(t) = text_of(&reply) {
            text.push_str(t);
            continue;
        }
        match reply {
            Reply::Done(s) => {
                let body =
                    env.text_completion(&text, Some(finish_reason(s.stop)), Some(usage_of(&s)));
                return out.json(200, &body);
            }
            Reply::Failed(e) => return out.error(&e),
            _ => {}
        }
    }
}

pub fn stream_text(
    w: &Waiter,
    env: &Envelope,
    include_usage: bool,
    mut out: Out,
) -> io::Result<bool> {
    let mut sse = out.events(w)?;
    // With include_usage every chunk carries "usage": null, as OpenAI's do.
    let null_usage = include_usage.then_some(Value::Null);
    loop {
        let Some(reply) = w.next() else {
            return Ok(false);
        };
        if let Some(t) = text_of(&reply) {
            sse.send(&env.text_completion(t, None, null_usage.clone()))
                .inspect_err(|_| w.abandon())?;
            continue;
        }
        match reply {
            Reply::Done(s) => {
                let last = env.text_completion("", Some(finish_reason(s.stop)), null_usage);
                let usage = include_usage.then(|| env.usage_chunk("text_completion", usage_of(&s)));
                return end_stream(sse, &last, usage);
            }
            Reply::Failed(e) => return fail_stream(sse, &e),
            _ => {}
        }
    }
}

/// Answers a request that failed before its generation started.
pub fn refuse(mut out: Out, e: &ApiError) -> io::Result<bool> {
    out.error(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trimmed(pieces: &[&str]) -> String {
        let mut t = Trim::default();
        pieces.iter().filter_map(|p| t.push(p)).collect()
    }

    #[test]
    fn white_space_around_a_channel_is_dropped_as_it_streams() {
        assert_eq!(
            trimmed(&["\n", "\nThe", " answer", " ", "is", " 2.", "\n\n"]),
            "The answer is 2."
        );
        assert_eq!(trimmed(&["a ", " ", "\n", "b"]), "a  \nb");
        assert_eq!(trimmed(&[" ", "\n"]), "");
    }

    #[test]
    fn reasoning_and_answer_go_to_their_own_channels() {
        let replies = [
            Reply::Started,
            Reply::ThinkStart,
            Reply::Text("\nOne plus one".into()),
            Reply::Text(" is two.\n".into()),
            Reply::ThinkEnd,
            Reply::Text("\n\n".into()),
            Reply::Text("2".into()),
        ];
        let mut ch = Channels::default();
        let (mut reasoning, mut content) = (String::new(), String::new());
        for r in replies {
            match ch.take(r) {
                ChatPiece::Reasoning(t) => reasoning.push_str(&t),
                ChatPiece::Content(t) => content.push_str(&t),
                ChatPiece::Nothing => {}
                _ => panic!("no Done or Failed was sent"),
            }
        }
        assert!(ch.thought);
        assert_eq!(reasoning, "One plus one is two.");
        assert_eq!(content, "2");
    }

    #[test]
    fn stop_reasons_map_to_openai_finish_reasons() {
        assert_eq!(finish_reason(StopReason::EndOfGeneration), "stop");
        assert_eq!(finish_reason(StopReason::StopString), "stop");
        assert_eq!(finish_reason(StopReason::MaxTokens), "length");
        assert_eq!(finish_reason(StopReason::ContextFull), "length");
    }
}
