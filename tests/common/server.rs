//! The `serve` example as a child process, and a small raw HTTP/1.1 client for it:
//! the tests speak bytes on a socket so that they can send what real clients must
//! never send, and leave in the middle of a stream.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct Server {
    child: Child,
    /// host:port it listens on.
    pub addr: String,
}

impl Server {
    /// Starts `serve` with `args` on a free port; returns once it listens (after the load).
    /// `$EDGESEEK_SERVE` names another build of it.
    pub fn start(args: &[&str]) -> Server {
        // EDGESEEK_SERVE: another build of the server, e.g. the release one for the
        // load test's measurement (docs/server.md).
        let exe = std::env::var_os("EDGESEEK_SERVE")
            .map_or_else(|| super::example_exe("serve"), Into::into);
        let mut child = Command::new(exe)
            .args(args)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Its first line says where it listens. Read on a thread that then keeps reading
        // (so a later line never meets a closed pipe), with a bound on the wait.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            tx.send(first).ok();
            lines.for_each(drop);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(600))
            .unwrap_or_else(|_| panic!("serve did not say where it listens in 10 minutes"));
        let addr = match line.trim().rsplit_once("http://") {
            Some((_, addr)) => addr.to_string(),
            None => {
                let status = child.wait().unwrap();
                panic!("serve did not start ({status}): its first line was {line:?}");
            }
        };
        Server { child, addr }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s
    }

    /// One request on a new connection (`Connection: close`): status and body.
    pub fn call(&self, method: &str, path: &str, body: &str) -> (u16, Vec<u8>) {
        let mut s = self.connect();
        s.write_all(request(method, path, body, false).as_bytes())
            .unwrap();
        let r = read_response(&mut BufReader::new(s));
        (r.status, r.body)
    }

    /// As [`Server::call`], the body read as JSON.
    pub fn json(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (status, body) = self.call(method, path, body);
        let v = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: {status} with a body that is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        (status, v)
    }

    pub fn health(&self) -> Value {
        let (status, v) = self.json("GET", "/health", "");
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Polls `/health` until `done` holds (panics after `within`); the last reading.
    pub fn wait_for(&self, what: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let t = std::time::Instant::now();
        loop {
            let h = self.health();
            if done(&h) {
                return h;
            }
            assert!(t.elapsed() < within, "{what}: not after {within:?}: {h}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server on SmolLM2 (fetched if missing, as `common::smollm2` does), named
    /// `name`, with `args` added.
    pub fn smollm2(name: &str, args: &[&str]) -> Server {
        let model = super::smollm2();
        let mut all = vec!["--model", model.to_str().unwrap(), "--model-name", name];
        all.extend_from_slice(args);
        Server::start(&all)
    }

    /// The server process's resident memory, from /proc (Linux).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kb * 1024
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A request's bytes; `keep_alive` false adds `Connection: close`.
pub fn request(method: &str, path: &str, body: &str, keep_alive: bool) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        if keep_alive { "" } else { "Connection: close\r\n" },
    )
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response: status, headers, and a body by Content-Length, chunks, or to the end.
pub fn read_response(r: &mut impl BufRead) -> Response {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':').unwrap();
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if (100..200).contains(&status) || status == 204 {
        // No body (RFC 9110 15.2, 15.3.5).
    } else if let Some(n) = resp.header("content-length") {
        let mut body = vec![0; n.parse().unwrap()];
        r.read_exact(&mut body).unwrap();
        resp.body = body;
    } else if resp.header("transfer-encoding") == Some("chunked") {
        while let Some(chunk) = read_chunk(r) {
            resp.body.extend(chunk);
        }
    } else {
        r.read_to_end(&mut resp.body).unwrap();
    }
    resp
}

/// The status line and headers of a response, as text (the body left unread).
pub fn read_head(r: &mut impl BufRead) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            return head;
        }
        head.push_str(&line);
    }
}

/// One chunk of a chunked body; None after the last.
pub fn read_chunk(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut size = String::new();
    r.read_line(&mut size).unwrap();
    let n = usize::from_str_radix(size.trim(), 16).unwrap();
    let mut chunk = vec![0; n + 2];
    r.read_exact(&mut chunk).unwrap();
    chunk.truncate(n);
    (n > 0).then_some(chunk)
}

/// The JSON payloads of a server-sent-event body (`data: {...}` lines, `[DONE]` kept as
/// a string).
pub fn sse_events(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or(Value::String(d.to_string())))
        .collect()
}

/// A chat request body for `model`.
pub fn chat_body(model: &str, question: &str, extra: Value) -> String {
    let mut v = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": question}],
    });
    if let (Value::Object(o), Value::Object(e)) = (&mut v, extra) {
        o.extend(e);
    }
    v.to_string()
}
