//! An OpenAI-compatible HTTP server for one model: `/v1/chat/completions` (R1's reasoning
//! in `reasoning_content`, as DeepSeek's API), `/v1/completions`, `/v1/models`, `/health`.
//!
//!   cargo run --release --example serve -- --model models/SmolLM2-135M-Instruct.Q4_1.gguf
//!
//! Why std's TcpListener and a thread per connection instead of tokio/axum or a server
//! crate: the library is synchronous and runs one request at a time anyway (worker.rs),
//! so an async runtime would only add build time and binary size — a lot of both on a
//! Raspberry Pi — and hide the two things that matter here: bounding every read
//! (http.rs) and noticing a client that leaves mid-stream, which this file does by
//! peeking at the socket between tokens.

#[path = "../common/mod.rs"]
mod common;
mod http;
mod openai;
mod worker;

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{fail, Args};
use edgeseek::{GenerateOptions, Model, StopReason};
use openai::{ApiError, Envelope, Input};
use serde_json::json;
use worker::{Job, JobInput, Queue, Reply};

struct Server {
    model_id: String,
    /// When the model was loaded (the `created` of `/v1/models`).
    created: u64,
    has_template: bool,
    queue: Queue,
    limits: http::Limits,
    timeout: Duration,
    connections: AtomicUsize,
    max_connections: usize,
    next_id: AtomicU64,
}

fn main() {
    let mut args = Args::from_env();
    let model_path = args
        .value("--model")
        .unwrap_or_else(|| fail("--model FILE is required"));
    let host = args.value("--host").unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = args.parsed("--port").unwrap_or(8080);
    let model_id = args.value("--model-name").unwrap_or_else(|| {
        std::path::Path::new(&model_path)
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned())
    });
    let max_body_kb: usize = args.parsed("--max-body-kb").unwrap_or(4096);
    let max_queue: usize = args.parsed("--max-queue").unwrap_or(64);
    let max_connections: usize = args.parsed("--max-connections").unwrap_or(128);
    let template = args.template();
    let timeout_s: f64 = args.parsed("--timeout-s").unwrap_or(30.0);
    if !(timeout_s.is_finite() && timeout_s > 0.0) {
        fail("--timeout-s must be a positive number of seconds");
    }
    let load = args.load_options();
    args.finish();

    // Bind before loading: a port in use fails in milliseconds, not after the load.
    let listener = TcpListener::bind((host.as_str(), port)).unwrap_or_else(|e| {
        eprintln!("serve: cannot listen on {host}:{port}: {e}");
        std::process::exit(1)
    });
    let mut model = Model::load(&model_path, &load).unwrap_or_else(|e| {
        eprintln!("serve: {e}");
        std::process::exit(1)
    });
    if let Err(e) = model.session() {
        eprintln!("serve: {model_path}: {e}");
        std::process::exit(1);
    }
    let server = Arc::new(Server {
        model_id,
        created: unix_now(),
        has_template: template.is_some() || model.chat_template().is_some(),
        queue: worker::start(model, template, max_queue.max(1)),
        limits: http::Limits {
            max_head_bytes: 64 * 1024,
            max_body_bytes: max_body_kb.saturating_mul(1024),
        },
        timeout: Duration::from_secs_f64(timeout_s),
        connections: AtomicUsize::new(0),
        max_connections: max_connections.max(1),
        next_id: AtomicU64::new(1),
    });
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    // Scripts and tests wait for this line (and read the port from it with --port 0).
    println!("serve: '{}' on http://{addr}", server.model_id);
    io::stdout().flush().ok();

    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let server = server.clone();
        if server.connections.fetch_add(1, Ordering::SeqCst) >= server.max_connections {
            server.connections.fetch_sub(1, Ordering::SeqCst);
            let e = ApiError::server(503, "too many connections; retry later");
            let mut stream = stream;
            http::write_json(&mut stream, e.status, &e.to_json(), false).ok();
            continue;
        }
        let spawned = std::thread::Builder::new()
            .name("connection".into())
            .spawn(move || {
                serve_connection(stream, &server);
                server.connections.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            eprintln!("serve: cannot start a thread for a connection");
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Requests on one connection, until the client closes it or a response closes it.
fn serve_connection(stream: TcpStream, server: &Server) {
    if stream.set_read_timeout(Some(server.timeout)).is_err() {
        return;
    }
    stream.set_nodelay(true).ok();
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut input = BufReader::new(stream);
    loop {
        let request = match http::read_request(&mut input, &mut out, &server.limits) {
            Ok(r) => r,
            Err(http::ReadError::Closed) => return,
            Err(http::ReadError::Reject { status, message }) => {
                let mut e = ApiError::invalid(None, message).with_status(status);
                if status == 413 {
                    e.code = Some("request_too_large");
                }
                http::write_json(&mut out, status, &e.to_json(), false).ok();
                close_gracefully(&out);
                return;
            }
        };
        let keep_alive = match respond(&request, server, &mut out) {
            Ok(keep) => keep && request.keep_alive,
            Err(_) => false,
        };
        if !keep_alive {
            close_gracefully(&out);
            return;
        }
    }
}

/// Closes after a response without losing it: a close with unread request bytes makes
/// the kernel send a reset, which can destroy the response before the client reads it.
fn close_gracefully(stream: &TcpStream) {
    stream.shutdown(std::net::Shutdown::Write).ok();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok();
    let mut sink = [0u8; 16 * 1024];
    let mut left = 64usize << 20;
    let mut reader = stream;
    while left > 0 {
        match reader.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// Answers one request; whether the connection may carry another.
fn respond(request: &http::Request, server: &Server, out: &mut TcpStream) -> io::Result<bool> {
    let keep = request.keep_alive;
    let route = (request.method.as_str(), request.path.trim_end_matches('/'));
    let result = match route {
        ("OPTIONS", _) => return http::write_preflight(out, keep).map(|_| true),
        ("GET", "/health") => Ok(health(server)),
        ("GET", "/v1/models") => Ok(json!({
            "object": "list",
            "data": [openai::model_object(&server.model_id, server.created)],
        })
        .to_string()),
        ("GET", path) if path.starts_with("/v1/models/") => {
            let id = &path["/v1/models/".len()..];
            if id == server.model_id {
                Ok(openai::model_object(id, server.created).to_string())
            } else {
                Err(
                    ApiError::not_found(format!("the model '{id}' does not exist"))
                        .with_code("model_not_found"),
                )
            }
        }
        ("POST", "/v1/chat/completions") => {
            match openai::chat_request(&request.body, &server.model_id) {
                Ok(r) if !server.has_template => {
                    drop(r);
                    Err(ApiError::invalid(
                        Some("messages"),
                        "the model file has no chat template; use /v1/completions",
                    ))
                }
                Ok(r) => return generate(server, r, keep, out),
                Err(e) => Err(e),
            }
        }
        ("POST", "/v1/completions") => {
            match openai::completion_request(&request.body, &server.model_id) {
                Ok(r) => return generate(server, r, keep, out),
                Err(e) => Err(e),
            }
        }
        (_, "/health" | "/v1/models" | "/v1/chat/completions" | "/v1/completions") => {
            Err(ApiError::invalid(
                None,
                format!("method {} is not allowed here", request.method),
            )
            .with_status(405))
        }
        (_, path) => Err(ApiError::not_found(format!("no route {path}"))),
    };
    match result {
        Ok(body) => http::write_json(out, 200, &body, keep)?,
        Err(e) => http::write_json(out, e.status, &e.to_json(), keep)?,
    }
    Ok(true)
}

fn health(server: &Server) -> String {
    let s = &server.queue.stats;
    json!({
        "status": "ok",
        "model": server.model_id,
        "queue_length": s.queued.load(Ordering::SeqCst),
        "connections": server.connections.load(Ordering::SeqCst),
        "requests": {
            "completed": s.completed.load(Ordering::SeqCst),
            "cancelled": s.cancelled.load(Ordering::SeqCst),
            "failed": s.failed.load(Ordering::SeqCst),
        },
        "max_tokens_after_cancel": s.max_tokens_after_cancel.load(Ordering::SeqCst),
    })
    .to_string()
}

/// The library's generation options for a request. Unset sampling parameters keep
/// edgeseek's defaults (DeepSeek's advice for R1: temperature 0.6, top-p 0.95); without
/// a seed every request samples differently, as OpenAI's API does.
fn generate_options(p: &openai::Params, cancel: &Arc<AtomicBool>, n: u64) -> GenerateOptions {
    let mut o = GenerateOptions {
        // Unset: until the end of the turn or a full context, as OpenAI's default.
        max_tokens: p.max_tokens.unwrap_or(usize::MAX),
        stop: p.stop.clone(),
        cancel: Some(cancel.clone()),
        ..GenerateOptions::default()
    };
    if let Some(t) = p.temperature {
        o.sampler.temperature = t;
    }
    if let Some(t) = p.top_p {
        o.sampler.top_p = t;
    }
    o.sampler.seed = p.seed.unwrap_or_else(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    });
    o
}

fn finish_reason(stop: StopReason) -> &'static str {
    match stop {
        StopReason::MaxTokens | StopReason::ContextFull => "length",
        StopReason::EndOfGeneration | StopReason::StopString | StopReason::Cancelled => "stop",
    }
}

/// Queues a generation and answers it, streamed or whole.
fn generate(
    server: &Server,
    request: openai::Request,
    keep: bool,
    out: &mut TcpStream,
) -> io::Result<bool> {
    let chat = matches!(request.input, Input::Chat(_));
    let n = server.next_id.fetch_add(1, Ordering::SeqCst);
    let id = format!("{}-{n}", if chat { "chatcmpl" } else { "cmpl" });
    let cancel = Arc::new(AtomicBool::new(false));
    let (reply, replies) = mpsc::channel();
    let job = Job {
        input: match request.input {
            Input::Chat(m) => JobInput::Chat(m),
            Input::Text(t) => JobInput::Text(t),
        },
        opts: generate_options(&request.params, &cancel, n),
        cancel: cancel.clone(),
        reply,
    };
    if let Err(e) = server.queue.submit(job) {
        http::write_json(out, e.status, &e.to_json(), keep)?;
        return Ok(true);
    }
    let waiter = Waiter {
        replies,
        conn: out.try_clone()?,
        cancel,
    };
    // The first reply says whether the request was accepted: errors get a status.
    match waiter.next() {
        Some(Reply::Started) => {}
        Some(Reply::Failed(e)) => {
            http::write_json(out, e.status, &e.to_json(), keep)?;
            return Ok(true);
        }
        Some(_) => {
            // The model thread sends Started or Failed first; anything else is our bug.
            waiter.abandon();
            let e = ApiError::server(500, "the model thread replied out of order");
            http::write_json(out, e.status, &e.to_json(), false)?;
            return Ok(false);
        }
        None => return Ok(false),
    }
    let envelope = Envelope {
        id: &id,
        created: unix_now(),
        model: &server.model_id,
    };
    let p = &request.params;
    match (chat, p.stream) {
        (true, true) => stream_chat(&waiter, &envelope, p.include_usage, out, keep),
        (true, false) => whole_chat(&waiter, &envelope, out, keep),
        (false, true) => stream_text(&waiter, &envelope, p.include_usage, out, keep),
        (false, false) => whole_text(&waiter, &envelope, out, keep),
    }
}

/// Waits for the model thread's replies while watching the client's socket: a client
/// that closes its connection cancels its generation (the model thread checks the flag
/// before every token).
struct Waiter {
    replies: Receiver<Reply>,
    conn: TcpStream,
    cancel: Arc<AtomicBool>,
}

impl Waiter {
    /// The next reply; None when the client has gone.
    fn next(&self) -> Option<Reply> {
        loop {
            match self.replies.recv_timeout(Duration::from_millis(20)) {
                Ok(r) => {
                    if http::peer_closed(&self.conn) {
                        self.cancel.store(true, Ordering::SeqCst);
                        return None;
                    }
                    return Some(r);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if http::peer_closed(&self.conn) {
                        self.cancel.store(true, Ordering::SeqCst);
                        return None;
                    }
                }
                // The model thread dropped the job without a last reply: it panicked.
                Err(RecvTimeoutError::Disconnected) => {
                    return Some(Reply::Failed(ApiError::server(
                        500,
                        "the generation failed inside edgeseek (see the server's log)",
                    )))
                }
            }
        }
    }

    /// Marks the generation cancelled after a failed write to the client.
    fn abandon(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
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
    Done(edgeseek::Summary),
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

fn usage_of(s: &edgeseek::Summary) -> serde_json::Value {
    openai::usage(s.prompt_tokens, s.generated_tokens)
}

fn whole_chat(w: &Waiter, env: &Envelope, out: &mut TcpStream, keep: bool) -> io::Result<bool> {
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
                http::write_json(out, 200, &body, keep)?;
                return Ok(true);
            }
            ChatPiece::Failed(e) => {
                http::write_json(out, e.status, &e.to_json(), keep)?;
                return Ok(true);
            }
        }
    }
}

fn stream_chat(
    w: &Waiter,
    env: &Envelope,
    include_usage: bool,
    out: &mut TcpStream,
    keep: bool,
) -> io::Result<bool> {
    let mut sse = http::EventStream::start(out, keep).inspect_err(|_| w.abandon())?;
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
                sse.send(&last)?;
                if include_usage {
                    sse.send(&env.usage_chunk("chat.completion.chunk", usage_of(&s)))?;
                }
                sse.send("[DONE]")?;
                sse.finish()?;
                return Ok(true);
            }
            ChatPiece::Failed(e) => {
                // Headers are sent: the error travels as an event, as OpenAI's do.
                sse.send(&e.to_json())?;
                sse.finish()?;
                return Ok(true);
            }
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

fn whole_text(w: &Waiter, env: &Envelope, out: &mut TcpStream, keep: bool) -> io::Result<bool> {
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
                http::write_json(out, 200, &body, keep)?;
                return Ok(true);
            }
            Reply::Failed(e) => {
                http::write_json(out, e.status, &e.to_json(), keep)?;
                return Ok(true);
            }
            _ => {}
        }
    }
}

fn stream_text(
    w: &Waiter,
    env: &Envelope,
    include_usage: bool,
    out: &mut TcpStream,
    keep: bool,
) -> io::Result<bool> {
    let mut sse = http::EventStream::start(out, keep).inspect_err(|_| w.abandon())?;
    loop {
        let Some(reply) = w.next() else {
            return Ok(false);
        };
        if let Some(t) = text_of(&reply) {
            sse.send(&env.text_completion(t, None, None))
                .inspect_err(|_| w.abandon())?;
            continue;
        }
        match reply {
            Reply::Done(s) => {
                sse.send(&env.text_completion("", Some(finish_reason(s.stop)), None))?;
                if include_usage {
                    sse.send(&env.usage_chunk("text_completion", usage_of(&s)))?;
                }
                sse.send("[DONE]")?;
                sse.finish()?;
                return Ok(true);
            }
            Reply::Failed(e) => {
                sse.send(&e.to_json())?;
                sse.finish()?;
                return Ok(true);
            }
            _ => {}
        }
    }
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
    fn request_parameters_become_generation_options() {
        let cancel = Arc::new(AtomicBool::new(false));
        let p = openai::Params {
            max_tokens: Some(7),
            temperature: Some(0.0),
            top_p: Some(0.5),
            seed: Some(42),
            stop: vec!["\n".into()],
            ..Default::default()
        };
        let o = generate_options(&p, &cancel, 1);
        assert_eq!(o.max_tokens, 7);
        assert_eq!(o.sampler.temperature, 0.0);
        assert_eq!(o.sampler.top_p, 0.5);
        assert_eq!(o.sampler.seed, 42);
        assert_eq!(o.stop, vec!["\n".to_string()]);
        // Unset: edgeseek's defaults, no token limit, and a seed per request.
        let unset = openai::Params::default();
        let (a, b) = (
            generate_options(&unset, &cancel, 1),
            generate_options(&unset, &cancel, 2),
        );
        assert_eq!(
            a.sampler.temperature,
            GenerateOptions::default().sampler.temperature
        );
        assert_eq!(a.max_tokens, usize::MAX);
        assert_ne!(a.sampler.seed, b.sampler.seed);
    }

    #[test]
    fn stop_reasons_map_to_openai_finish_reasons() {
        assert_eq!(finish_reason(StopReason::EndOfGeneration), "stop");
        assert_eq!(finish_reason(StopReason::StopString), "stop");
        assert_eq!(finish_reason(StopReason::MaxTokens), "length");
        assert_eq!(finish_reason(StopReason::ContextFull), "length");
    }
}
