//! Just enough HTTP/1.1 for the OpenAI API, on std's TcpStream: requests with a
//! Content-Length or chunked body under a size limit, `Expect: 100-continue` (curl
//! sends it for bodies over 1 KiB), keep-alive, JSON responses, and server-sent events
//! as a chunked body so the connection stays reusable.
//!
//! Every read is bounded: the request head by `Limits::max_head_bytes`, the body by
//! `Limits::max_body_bytes`, the time by `Conn`: a whole request must arrive within the
//! timeout of its first byte, and a connection idle that long between requests closes.
//! A client that breaks a rule gets a status and the connection is closed.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A connection's reading half. Every read waits at most until the current request's
/// deadline or, between requests, the idle timeout: a client sending a byte now and then
/// cannot hold a thread longer than that.
pub struct Conn {
    stream: TcpStream,
    timeout: Duration,
    deadline: Option<Instant>,
}

impl Conn {
    pub fn new(stream: TcpStream, timeout: Duration) -> Conn {
        Conn {
            stream,
            timeout,
            deadline: None,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let wait = match self.deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => self.timeout,
        };
        if wait.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "past the request's deadline",
            ));
        }
        self.stream.set_read_timeout(Some(wait))?;
        self.stream.read(buf)
    }
}

pub struct Limits {
    pub max_head_bytes: usize,
    pub max_body_bytes: usize,
}

pub struct Request {
    pub method: String,
    /// The path without its query string.
    pub path: String,
    pub body: Vec<u8>,
    /// The client keeps the connection open after the response (HTTP/1.1 unless it said
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// HTTP/1.1 (chunked responses allowed) rather than 1.0.
    pub http11: bool,
}

/// Why no request could be read.
pub enum ReadError {
    /// The client closed the connection (or went idle past the timeout) between requests:
    /// no response is owed.
    Closed,
    /// The request broke a rule: answer with this status and message, then close.
    Reject { status: u16, message: String },
}

fn reject(status: u16, message: impl Into<String>) -> ReadError {
    ReadError::Reject {
        status,
        message: message.into(),
    }
}

/// Reads one request. `out` is the same connection, for the `100 Continue` interim
/// response.
pub fn read_request(
    input: &mut BufReader<Conn>,
    out: &mut TcpStream,
    limits: &Limits,
) -> Result<Request, ReadError> {
    // Between requests: wait up to the idle timeout for a first byte, then give the whole
    // request the timeout from there.
    input.get_mut().deadline = None;
    match input.fill_buf() {
        Ok([]) | Err(_) => return Err(ReadError::Closed),
        Ok(_) => {}
    }
    let conn = input.get_mut();
    conn.deadline = Some(Instant::now() + conn.timeout);
    let mut head_left = limits.max_head_bytes;
    let request_line = match read_line(input, &mut head_left) {
        Ok(Some(line)) => line,
        Ok(None) => return Err(ReadError::Closed),
        Err(e) => return Err(head_error(e)),
    };
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && t.starts_with('/') => (m, t, v),
        _ => return Err(reject(400, "malformed HTTP request line")),
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(reject(505, format!("unsupported HTTP version '{version}'"))),
    };
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut expect_continue = false;
    let mut keep_alive = http11;
    loop {
        let line = match read_line(input, &mut head_left) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(reject(400, "the connection closed inside the request head")),
            Err(e) => return Err(head_error(e)),
        };
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(reject(400, format!("malformed header line '{line}'")));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| reject(400, format!("Content-Length '{value}'")))?;
                if content_length.is_some_and(|m| m != n) {
                    return Err(reject(400, "conflicting Content-Length headers"));
                }
                content_length = Some(n);
            }
            "transfer-encoding" => {
                if !value.eq_ignore_ascii_case("chunked") {
                    return Err(reject(501, format!("Transfer-Encoding '{value}'")));
                }
                chunked = true;
            }
            "expect" => expect_continue = value.eq_ignore_ascii_case("100-continue"),
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            }
            _ => {}
        }
    }
    if chunked && content_length.is_some() {
        // RFC 9112 6.3: a request with both is a smuggling risk; refuse it.
        return Err(reject(400, "both Content-Length and Transfer-Encoding"));
    }
    if let Some(n) = content_length {
        if n > limits.max_body_bytes {
            return Err(reject(
                413,
                format!(
                    "the request body has {n} bytes; the limit is {} bytes",
                    limits.max_body_bytes
                ),
            ));
        }
    }
    if expect_continue && http11 && (chunked || content_length.unwrap_or(0) > 0) {
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| ReadError::Closed)?;
    }
    let body = if chunked {
        read_chunked(input, limits.max_body_bytes)?
    } else {
        let n = content_length.unwrap_or(0);
        let mut body = vec![0u8; n];
        input.read_exact(&mut body).map_err(body_error)?;
        body
    };
    let path = target.split('?').next().unwrap_or(target).to_string();
    Ok(Request {
        method: method.to_string(),
        path,
        body,
        keep_alive,
        http11,
    })
}

/// Why a line of the request could not be read.
enum LineError {
    TooLong,
    Malformed(&'static str),
    Io(io::Error),
}

/// One CRLF- (or LF-) terminated line of at most `*left` bytes, counted against it;
/// None at a clean end of stream before any byte.
fn read_line(input: &mut BufReader<Conn>, left: &mut usize) -> Result<Option<String>, LineError> {
    let mut line = Vec::new();
    let n = input
        .by_ref()
        .take(*left as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(LineError::Io)?;
    if n == 0 {
        return Ok(None);
    }
    if n > *left {
        return Err(LineError::TooLong);
    }
    if line.last() != Some(&b'\n') {
        return Err(LineError::Malformed("the connection closed inside a line"));
    }
    *left -= n;
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| LineError::Malformed("a header line is not UTF-8"))
}

fn head_error(e: LineError) -> ReadError {
    match e {
        LineError::TooLong => reject(431, "the request head is too large"),
        LineError::Malformed(what) => reject(400, format!("malformed request head: {what}")),
        LineError::Io(e) if is_timeout(&e) => reject(408, "timed out reading the request"),
        LineError::Io(_) => ReadError::Closed,
    }
}

fn line_error_in_body(e: LineError) -> ReadError {
    match e {
        LineError::TooLong => reject(400, "chunk-size lines or trailers too long"),
        LineError::Malformed(what) => reject(400, format!("malformed chunked body: {what}")),
        LineError::Io(e) => body_error(e),
    }
}

fn body_error(e: io::Error) -> ReadError {
    if is_timeout(&e) {
        reject(408, "timed out reading the request body")
    } else if e.kind() == io::ErrorKind::UnexpectedEof {
        reject(400, "the connection closed inside the request body")
    } else {
        ReadError::Closed
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A chunked body (RFC 9112 7.1), at most `limit` bytes of data; trailers are skipped.
fn read_chunked(input: &mut BufReader<Conn>, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    // Chunk-size lines and trailers are small; 64 KiB of them is plenty.
    let mut lines_left = 64 * 1024;
    loop {
        let line = read_line(input, &mut lines_left)
            .map_err(line_error_in_body)?
            .ok_or_else(|| reject(400, "the connection closed inside the request body"))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| reject(400, format!("malformed chunk size '{size_text}'")))?;
        if size == 0 {
            // Trailers up to the empty line.
            while !read_line(input, &mut lines_left)
                .map_err(line_error_in_body)?
                .ok_or_else(|| reject(400, "the connection closed inside the trailers"))?
                .is_empty()
            {}
            return Ok(body);
        }
        if body.len().saturating_add(size) > limit {
            return Err(reject(
                413,
                format!("the request body is over the limit of {limit} bytes"),
            ));
        }
        let start = body.len();
        body.resize(start + size, 0);
        input.read_exact(&mut body[start..]).map_err(body_error)?;
        let mut crlf = [0u8; 2];
        input.read_exact(&mut crlf).map_err(body_error)?;
        if &crlf != b"\r\n" {
            return Err(reject(400, "a chunk does not end with CRLF"));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Headers every response carries: browsers' chat UIs call the API from another
/// origin, so CORS is open (the server holds no cookies or credentials).
fn head(status: u16, content_type: &str, keep_alive: bool) -> String {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nAccess-Control-Allow-Origin: *\r\nConnection: {}\r\n",
        reason(status),
        if keep_alive { "keep-alive" } else { "close" },
    )
}

/// A whole response with a JSON body.
pub fn write_json(
    out: &mut impl Write,
    status: u16,
    body: &str,
    keep_alive: bool,
) -> io::Result<()> {
    write_json_with(out, status, body, keep_alive, "")
}

/// As [`write_json`], with `extra` header lines (each ending in CRLF).
pub fn write_json_with(
    out: &mut impl Write,
    status: u16,
    body: &str,
    keep_alive: bool,
    extra: &str,
) -> io::Result<()> {
    let mut msg = head(status, "application/json", keep_alive);
    msg.push_str(extra);
    msg.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    msg.push_str(body);
    out.write_all(msg.as_bytes())?;
    out.flush()
}

/// The answer to a CORS preflight (`OPTIONS`): any origin may POST JSON.
pub fn write_preflight(out: &mut impl Write, keep_alive: bool) -> io::Result<()> {
    let mut msg = head(204, "text/plain", keep_alive);
    msg.push_str("Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n");
    msg.push_str("Access-Control-Allow-Headers: Authorization, Content-Type\r\n");
    msg.push_str("Content-Length: 0\r\n\r\n");
    out.write_all(msg.as_bytes())?;
    out.flush()
}

/// A stream of server-sent events: one chunk per event of a chunked body (HTTP/1.1),
/// or for an HTTP/1.0 client, which knows no chunks, a body that ends with the
/// connection.
pub struct EventStream<'a> {
    out: &'a mut TcpStream,
    chunked: bool,
}

impl<'a> EventStream<'a> {
    /// Sends the head. Without `http11` the connection closes after the stream.
    pub fn start(
        out: &'a mut TcpStream,
        keep_alive: bool,
        http11: bool,
    ) -> io::Result<EventStream<'a>> {
        let mut msg = head(200, "text/event-stream", keep_alive && http11);
        msg.push_str("Cache-Control: no-cache\r\n");
        if http11 {
            msg.push_str("Transfer-Encoding: chunked\r\n");
        }
        msg.push_str("\r\n");
        out.write_all(msg.as_bytes())?;
        out.flush()?;
        Ok(EventStream {
            out,
            chunked: http11,
        })
    }

    /// `data: {data}` and the blank line that ends the event.
    pub fn send(&mut self, data: &str) -> io::Result<()> {
        let event = format!("data: {data}\n\n");
        if self.chunked {
            let chunk = format!("{:x}\r\n{event}\r\n", event.len());
            self.out.write_all(chunk.as_bytes())?;
        } else {
            self.out.write_all(event.as_bytes())?;
        }
        self.out.flush()
    }

    /// Ends the body; whether the connection can carry the next request.
    pub fn finish(self) -> io::Result<bool> {
        if self.chunked {
            self.out.write_all(b"0\r\n\r\n")?;
            self.out.flush()?;
        }
        Ok(self.chunked)
    }
}

/// Has the client closed its end? A non-blocking peek reads 0 bytes only at end of
/// stream; pending bytes (a pipelined request) or none yet mean it is still there.
pub fn peer_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    };
    if stream.set_nonblocking(false).is_err() {
        return true;
    }
    closed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Sends `raw` from a client socket and reads it as the server would.
    fn read(raw: &[u8], max_body_bytes: usize) -> (Result<Request, ReadError>, Vec<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.write_all(raw).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut out = server.try_clone().unwrap();
        let mut input = BufReader::new(Conn::new(server, Duration::from_secs(5)));
        let limits = Limits {
            max_head_bytes: 1024,
            max_body_bytes,
        };
        let r = read_request(&mut input, &mut out, &limits);
        drop(out);
        drop(input);
        let mut sent = Vec::new();
        client.read_to_end(&mut sent).unwrap();
        (r, sent)
    }

    fn status(r: &Result<Request, ReadError>) -> u16 {
        match r {
            Ok(_) => 200,
            Err(ReadError::Closed) => 0,
            Err(ReadError::Reject { status, .. }) => *status,
        }
    }

    #[test]
    fn bodies_by_length_or_in_chunks() {
        let (r, _) = read(
            b"POST /v1/x?a=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            100,
        );
        let r = r.ok().unwrap();
        assert_eq!(
            (
                r.method.as_str(),
                r.path.as_str(),
                &r.body[..],
                r.keep_alive
            ),
            ("POST", "/v1/x", &b"hello"[..], true)
        );
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let r = read(chunked, 100).0.ok().unwrap();
        assert_eq!((&r.body[..], r.keep_alive), (&b"hello"[..], false));
        let r = read(b"GET / HTTP/1.0\r\n\r\n", 100).0.ok().unwrap();
        assert!(!r.keep_alive && r.body.is_empty());
    }

    #[test]
    fn expect_continue_gets_its_interim_response() {
        let (r, sent) = read(
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
            100,
        );
        assert_eq!(r.ok().unwrap().body, b"hi");
        assert_eq!(sent, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn requests_that_break_the_rules_get_a_status() {
        let cases: [(&[u8], u16); 10] = [
            (b"", 0),
            (b"GARBAGE\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413),
            (b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort", 400),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n",
                413,
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(
                status(&read(raw, 100).0),
                want,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 2000));
        huge.extend(b"\r\n\r\n");
        assert_eq!(status(&read(&huge, 100).0), 431);
    }
}
