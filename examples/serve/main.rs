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
mod reply;
mod worker;

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{fail, Args};
use edgeseek::Model;
use openai::{ApiError, Envelope, Input};
use serde_json::json;
use worker::{Cancel, Job, JobInput, Queue, Reply};

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
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin on the error.
                eprintln!("serve: accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let Some(slot) = ConnectionSlot::take(&server) else {
            let e = ApiError::server(503, "too many connections; retry later");
            let mut stream = stream;
            http::write_json(&mut stream, e.status, &e.to_json(), false).ok();
            // The request is unread: half-close so the client reads the 503 rather than a
            // reset. (No draining here: that would stall the accept loop.)
            stream.shutdown(std::net::Shutdown::Write).ok();
            continue;
        };
        let spawned = std::thread::Builder::new()
            .name("connection".into())
            .spawn(move || serve_connection(stream, &slot.0));
        if let Err(e) = spawned {
            // The closure, and the slot in it, were dropped: the count is right.
            eprintln!("serve: cannot start a thread for a connection: {e}");
        }
    }
}

/// One of `--max-connections`, held by a connection's thread and given back when it
/// ends, however it ends (a panic included).
struct ConnectionSlot(Arc<Server>);

impl ConnectionSlot {
    fn take(server: &Arc<Server>) -> Option<ConnectionSlot> {
        let open = server.connections.fetch_add(1, Ordering::SeqCst);
        let slot = ConnectionSlot(server.clone());
        (open < server.max_connections).then_some(slot)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Requests on one connection, until the client closes it or a response closes it.
fn serve_connection(stream: TcpStream, server: &Server) {
    // A client that stops reading must not hold the thread either: a write that cannot
    // proceed for the timeout fails, and the generation is cancelled.
    if stream.set_write_timeout(Some(server.timeout)).is_err() {
        return;
    }
    stream.set_nodelay(true).ok();
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut input = BufReader::new(http::Conn::new(stream, server.timeout));
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
    let path = request.path.trim_end_matches('/');
    let model_not_found = |id: &str| {
        ApiError::invalid(None, format!("the model '{id}' does not exist"))
            .with_status(404)
            .with_code("model_not_found")
    };
    let result = match (request.method.as_str(), path) {
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
                Err(model_not_found(id))
            }
        }
        ("POST", "/v1/chat/completions") if !server.has_template => Err(ApiError::invalid(
            Some("messages"),
            "the model file has no chat template (pass --template); use /v1/completions",
        )),
        ("POST", "/v1/chat/completions") => {
            match openai::chat_request(&request.body, &server.model_id) {
                Ok(r) => return generate(server, r, request, out),
                Err(e) => Err(e),
            }
        }
        ("POST", "/v1/completions") => {
            match openai::completion_request(&request.body, &server.model_id) {
                Ok(r) => return generate(server, r, request, out),
                Err(e) => Err(e),
            }
        }
        (method, path) => match allowed_methods(path) {
            Some(allow) => {
                let e = ApiError::invalid(None, format!("method {method} is not allowed here"))
                    .with_status(405);
                let allow = format!("Allow: {allow}\r\n");
                http::write_json_with(out, 405, &e.to_json(), keep, &allow)?;
                return Ok(true);
            }
            None => Err(ApiError::not_found(format!("no route {path}"))),
        },
    };
    match result {
        Ok(body) => http::write_json(out, 200, &body, keep)?,
        Err(e) => http::write_json(out, e.status, &e.to_json(), keep)?,
    }
    Ok(true)
}

/// The methods a known path takes (a 405's `Allow`); None for unknown paths.
fn allowed_methods(path: &str) -> Option<&'static str> {
    match path {
        "/health" | "/v1/models" => Some("GET, OPTIONS"),
        p if p.starts_with("/v1/models/") => Some("GET, OPTIONS"),
        "/v1/chat/completions" | "/v1/completions" => Some("POST, OPTIONS"),
        _ => None,
    }
}

fn health(server: &Server) -> String {
    let s = &server.queue.stats;
    let n = |v: &AtomicU64| v.load(Ordering::SeqCst);
    json!({
        "status": "ok",
        "model": server.model_id,
        "queue_length": s.queued.load(Ordering::SeqCst),
        "running": s.running.load(Ordering::SeqCst),
        "connections": server.connections.load(Ordering::SeqCst),
        "requests": {
            "completed": n(&s.completed),
            "cancelled": n(&s.cancelled),
            "failed": n(&s.failed),
        },
        "cancellation": {
            "max_tokens_after_disconnect": n(&s.max_tokens_after_disconnect),
            "last_cancelled_generated_tokens": n(&s.last_cancelled_generated),
        },
    })
    .to_string()
}

/// Queues a generation and answers it, streamed or whole.
fn generate(
    server: &Server,
    request: openai::Request,
    http: &http::Request,
    stream: &mut TcpStream,
) -> io::Result<bool> {
    let chat = matches!(request.input, Input::Chat(_));
    let n = server.next_id.fetch_add(1, Ordering::SeqCst);
    let id = format!("{}-{n}", if chat { "chatcmpl" } else { "cmpl" });
    let cancel = Arc::new(Cancel::default());
    let (reply, replies) = mpsc::channel();
    let job = Job {
        input: match request.input {
            Input::Chat(m) => JobInput::Chat(m),
            Input::Text(t) => JobInput::Text(t),
        },
        opts: request.params.generate_options(&cancel.flag, n),
        repeatable: request.params.seed.is_some(),
        cancel: cancel.clone(),
        reply,
    };
    let out = reply::Out {
        stream,
        keep_alive: http.keep_alive,
        http11: http.http11,
    };
    if let Err(e) = server.queue.submit(job) {
        return reply::refuse(out, &e);
    }
    let waiter = reply::Waiter {
        replies,
        conn: out.stream.try_clone()?,
        cancel,
    };
    // The first reply says whether the request was accepted: errors get a status.
    match waiter.next() {
        Some(Reply::Started) => {}
        Some(Reply::Failed(e)) => return reply::refuse(out, &e),
        Some(_) => {
            // The model thread sends Started or Failed first; anything else is our bug.
            waiter.abandon();
            let e = ApiError::server(500, "the model thread replied out of order");
            reply::refuse(out, &e)?;
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
        (true, true) => reply::stream_chat(&waiter, &envelope, p.include_usage, out),
        (true, false) => reply::whole_chat(&waiter, &envelope, out),
        (false, true) => reply::stream_text(&waiter, &envelope, p.include_usage, out),
        (false, false) => reply::whole_text(&waiter, &envelope, out),
    }
}
