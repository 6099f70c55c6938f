//! The `serve` example over raw HTTP on SmolLM2: OpenAI's error object for every kind of
//! bad input (never a crash or a hung connection), keep-alive, chunked and
//! `Expect: 100-continue` bodies, and a client that leaves mid-stream cancelling its
//! generation within a token while the next request is unaffected.

mod common;

use std::io::{BufReader, Read, Write};
use std::time::{Duration, Instant};

use common::server::{
    chat_body, read_chunk, read_head, read_response, request, sse_events, Server,
};
use serde_json::{json, Value};

const MODEL: &str = "smollm2";
const QUESTION: &str = "What is the capital of France? Answer in one sentence.";

fn smollm2() -> Server {
    // A small context and body limit so the limits are cheap to reach; a short timeout
    // for the slow clients.
    Server::smollm2(
        MODEL,
        &["--ctx", "256", "--max-body-kb", "16", "--timeout-s", "2"],
    )
}

/// The error object of a refused request: its status and the object's fields.
fn refused(server: &Server, method: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, v) = server.json(method, path, body);
    let e = &v["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty())
            && e["type"].is_string()
            && e.get("param").is_some()
            && e.get("code").is_some(),
        "not an OpenAI error object: {v}"
    );
    (status, e.clone())
}

#[test]
fn bad_requests_get_openai_errors_and_the_server_carries_on() {
    let s = smollm2();
    let user = json!([{"role": "user", "content": "hi"}]);
    let with = |extra: Value| {
        let mut v = json!({"model": MODEL, "messages": user});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v.to_string()
    };
    let chat = "/v1/chat/completions";
    let cases: Vec<(String, u16, Value, Value)> = vec![
        ("{\"model\": ".into(), 400, Value::Null, Value::Null),
        ("[1, 2]".into(), 400, Value::Null, Value::Null),
        (
            json!({"model": MODEL, "messages": "hi"}).to_string(),
            400,
            json!("messages"),
            Value::Null,
        ),
        (
            json!({"model": MODEL, "messages": []}).to_string(),
            400,
            json!("messages"),
            Value::Null,
        ),
        (
            with(json!({"max_tokens": "5"})),
            400,
            json!("max_tokens"),
            Value::Null,
        ),
        (
            with(json!({"temperature": "hot"})),
            400,
            json!("temperature"),
            Value::Null,
        ),
        (with(json!({"n": 3})), 400, json!("n"), Value::Null),
        (
            json!({"model": "gpt-4o", "messages": user}).to_string(),
            404,
            Value::Null,
            json!("model_not_found"),
        ),
        (
            chat_body(MODEL, &"word ".repeat(400), json!({})),
            400,
            json!("messages"),
            json!("context_length_exceeded"),
        ),
    ];
    for (body, status, param, code) in cases {
        let (got, e) = refused(&s, "POST", chat, &body);
        assert_eq!(got, status, "{body}: {e}");
        assert_eq!((&e["param"], &e["code"]), (&param, &code), "{body}: {e}");
    }
    // Over the body limit (16 KiB here): 413.
    let big = chat_body(MODEL, &"x".repeat(20_000), json!({}));
    let (status, e) = refused(&s, "POST", chat, &big);
    assert_eq!((status, &e["code"]), (413, &json!("request_too_large")));
    // A prompt over the context on the other endpoint names its own parameter.
    let long = json!({"model": MODEL, "prompt": "word ".repeat(400)}).to_string();
    let (status, e) = refused(&s, "POST", "/v1/completions", &long);
    assert_eq!((status, &e["param"]), (400, &json!("prompt")));
    assert_eq!(refused(&s, "POST", "/v1/nothing", "{}").0, 404);
    assert_eq!(refused(&s, "GET", "/v1/models/gpt-4o", "").0, 404);
    // A known path with the wrong method: 405 and the methods it takes.
    let mut c = s.connect();
    c.write_all(request("GET", chat, "", false).as_bytes())
        .unwrap();
    let r = read_response(&mut BufReader::new(c));
    assert_eq!((r.status, r.header("allow")), (405, Some("POST, OPTIONS")));

    // Not HTTP at all: a 400 and the connection closes.
    let mut c = s.connect();
    c.write_all(b"HELLO THERE\r\n\r\n").unwrap();
    let r = read_response(&mut BufReader::new(c));
    assert_eq!(r.status, 400);
    // A head over 64 KiB.
    let mut c = s.connect();
    let head = format!(
        "GET /health HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    c.write_all(head.as_bytes()).ok();
    assert_eq!(read_response(&mut BufReader::new(c)).status, 431);
    // A client that promises 100 bytes and sends 10: a 408 after the timeout, not a
    // thread waiting forever.
    let mut c = s.connect();
    let t = Instant::now();
    c.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"model\":")
        .unwrap();
    let r = read_response(&mut BufReader::new(c));
    assert_eq!(r.status, 408);
    assert!(t.elapsed() < Duration::from_secs(60));
    // Nor can one that sends a byte now and then: the whole request must arrive within
    // the timeout (2 s here) of its first byte.
    let mut c = s.connect();
    let t = Instant::now();
    let dribble = request("POST", chat, &chat_body(MODEL, QUESTION, json!({})), false);
    let mut status = None;
    for byte in dribble.as_bytes() {
        if c.write_all(&[*byte]).is_err() {
            break; // the server answered and closed
        }
        std::thread::sleep(Duration::from_millis(250));
        if t.elapsed() > Duration::from_secs(4) {
            status = Some(read_response(&mut BufReader::new(c.try_clone().unwrap())).status);
            break;
        }
    }
    let status = status.unwrap_or_else(|| read_response(&mut BufReader::new(c)).status);
    assert_eq!(status, 408);

    // After all that the server still answers.
    let (status, v) = s.json(
        "POST",
        chat,
        &chat_body(MODEL, QUESTION, json!({"temperature": 0, "max_tokens": 48})),
    );
    assert_eq!(status, 200, "{v}");
    let answer = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(answer.contains("Paris"), "{v}");
    let h = s.health();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["requests"]["completed"], 1, "{h}");
}

#[test]
fn one_connection_carries_many_requests_in_every_body_framing() {
    let s = smollm2();
    let body = chat_body(MODEL, QUESTION, json!({"temperature": 0, "max_tokens": 48}));
    let c = s.connect();
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    // Content-Length, keep-alive.
    w.write_all(request("POST", "/v1/chat/completions", &body, true).as_bytes())
        .unwrap();
    let first = read_response(&mut r);
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), Some("keep-alive"));
    let first: Value = serde_json::from_slice(&first.body).unwrap();
    // Chunked request body, on the same connection.
    let (a, b) = body.split_at(body.len() / 2);
    let chunked = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    w.write_all(chunked.as_bytes()).unwrap();
    let second = read_response(&mut r);
    assert_eq!(second.status, 200);
    let second: Value = serde_json::from_slice(&second.body).unwrap();
    // curl's `Expect: 100-continue`: the interim response, then the answer.
    let expect = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    w.write_all(expect.as_bytes()).unwrap();
    let interim = read_response(&mut r);
    assert_eq!(interim.status, 100);
    w.write_all(body.as_bytes()).unwrap();
    let third = read_response(&mut r);
    assert_eq!(third.status, 200);
    let third: Value = serde_json::from_slice(&third.body).unwrap();
    // Greedy, same conversation: the same answer each time.
    let content = |v: &Value| v["choices"][0]["message"]["content"].clone();
    assert!(
        content(&first).as_str().unwrap().contains("Paris"),
        "{first}"
    );
    assert_eq!(content(&first), content(&second));
    assert_eq!(content(&first), content(&third));
    // A streamed answer on the same connection ends its chunked body properly.
    let stream = chat_body(
        MODEL,
        QUESTION,
        json!({"temperature": 0, "max_tokens": 48, "stream": true}),
    );
    w.write_all(request("POST", "/v1/chat/completions", &stream, true).as_bytes())
        .unwrap();
    let streamed = read_response(&mut r);
    assert_eq!(streamed.header("content-type"), Some("text/event-stream"));
    let events = sse_events(&streamed.body);
    assert_eq!(events.last(), Some(&json!("[DONE]")));
    let text: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(json!(text), content(&first));
    // And the connection still serves.
    w.write_all(request("GET", "/health", "", false).as_bytes())
        .unwrap();
    assert_eq!(read_response(&mut r).status, 200);
    // An HTTP/1.0 client knows no chunks: the stream is the body up to the close.
    let mut c = s.connect();
    let old =
        request("POST", "/v1/chat/completions", &stream, false).replacen("HTTP/1.1", "HTTP/1.0", 1);
    c.write_all(old.as_bytes()).unwrap();
    let r = read_response(&mut BufReader::new(c));
    assert_eq!((r.status, r.header("transfer-encoding")), (200, None));
    let events = sse_events(&r.body);
    assert_eq!(events.last(), Some(&json!("[DONE]")));
}

#[test]
fn a_client_that_leaves_mid_stream_cancels_its_generation() {
    let s = smollm2();
    let long = chat_body(
        MODEL,
        "Write a long story about a dragon who learns to cook.",
        json!({"max_tokens": 200, "stream": true, "seed": 1}),
    );
    let c = s.connect();
    let mut w = c.try_clone().unwrap();
    w.write_all(request("POST", "/v1/chat/completions", &long, false).as_bytes())
        .unwrap();
    let mut r = BufReader::new(c);
    let head = read_head(&mut r);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The role event, then text events until one with text, then hang up.
    read_chunk(&mut r).expect("the role event");
    let mut received = 0;
    while received == 0 {
        let chunk = read_chunk(&mut r).expect("a text event");
        received += sse_events(&chunk)
            .iter()
            .filter(|e| e["choices"][0]["delta"]["content"].is_string())
            .count();
    }
    drop(r);
    drop(w);
    let h = s.wait_for("the stream's cancellation", Duration::from_secs(60), |h| {
        h["requests"]["cancelled"] == 1
    });
    assert_eq!(h["requests"]["completed"], 0, "{h}");
    // Within a token: from the moment the server saw the client gone, at most the token
    // being evaluated then; and end to end, the tokens generated are those the client
    // read, the one evaluated as it left, and one more it had not read yet.
    let c = &h["cancellation"];
    assert!(
        c["max_tokens_after_disconnect"].as_u64().unwrap() <= 1,
        "{h}"
    );
    let generated = c["last_cancelled_generated_tokens"].as_u64().unwrap();
    assert!(
        generated <= received as u64 + 2,
        "{generated} tokens for {received} read: {h}"
    );

    // A client waiting for a whole answer that gives up is noticed too.
    let whole = chat_body(
        MODEL,
        "Write a long story about a dragon who learns to cook.",
        json!({"max_tokens": 200, "seed": 1}),
    );
    let mut c = s.connect();
    c.write_all(request("POST", "/v1/chat/completions", &whole, false).as_bytes())
        .unwrap();
    s.wait_for("the whole answer's start", Duration::from_secs(60), |h| {
        h["running"] == true
    });
    drop(c);
    let h = s.wait_for(
        "the whole answer's cancellation",
        Duration::from_secs(60),
        |h| h["requests"]["cancelled"] == 2,
    );
    assert!(
        h["cancellation"]["max_tokens_after_disconnect"]
            .as_u64()
            .unwrap()
            <= 1,
        "{h}"
    );
    // The next request is unaffected.
    let (status, v) = s.json(
        "POST",
        "/v1/chat/completions",
        &chat_body(MODEL, QUESTION, json!({"temperature": 0, "max_tokens": 48})),
    );
    assert_eq!(status, 200);
    assert!(v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("Paris"));
}

#[test]
fn full_queues_and_connection_limits_are_503_and_a_queued_leaver_is_dropped() {
    let s = Server::smollm2(MODEL, &["--max-queue", "1", "--max-connections", "4"]);
    // Four idle connections hold every slot: the fifth is told to come back later.
    // (The accept loop takes connections in order, so the fifth is the one refused.)
    let idle: Vec<_> = (0..4).map(|_| s.connect()).collect();
    let mut fifth = s.connect();
    let r = read_response(&mut BufReader::new(fifth.try_clone().unwrap()));
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    fifth.write_all(b"GET /health HTTP/1.1\r\n\r\n").ok();
    drop(idle);
    s.wait_for("the idle connections' end", Duration::from_secs(10), |h| {
        h["connections"] == 1
    });

    // One generating, one waiting: a third is 503.
    let long = |stream: bool| {
        chat_body(
            MODEL,
            "Write a long story about a dragon who learns to cook.",
            json!({"max_tokens": 200, "stream": stream, "seed": 1}),
        )
    };
    let mut running = s.connect();
    running
        .write_all(request("POST", "/v1/chat/completions", &long(true), false).as_bytes())
        .unwrap();
    s.wait_for("the first request's start", Duration::from_secs(60), |h| {
        h["running"] == true
    });
    let mut queued = s.connect();
    queued
        .write_all(request("POST", "/v1/chat/completions", &long(false), false).as_bytes())
        .unwrap();
    s.wait_for("the second request queued", Duration::from_secs(10), |h| {
        h["queue_length"] == 1
    });
    let (status, e) = refused(&s, "POST", "/v1/chat/completions", &long(false));
    assert_eq!((status, &e["type"]), (503, &json!("server_error")), "{e}");
    // The queued client leaves, then the running one: both are cancelled, and the
    // queued one never starts.
    drop(queued);
    std::thread::sleep(Duration::from_millis(200));
    drop(running);
    let h = s.wait_for("both cancelled", Duration::from_secs(60), |h| {
        h["requests"]["cancelled"] == 2
    });
    assert_eq!(
        (&h["requests"]["completed"], &h["queue_length"]),
        (&json!(0), &json!(0)),
        "{h}"
    );
    let (status, _) = s.json(
        "POST",
        "/v1/chat/completions",
        &chat_body(MODEL, QUESTION, json!({"temperature": 0, "max_tokens": 8})),
    );
    assert_eq!(status, 200);
}

#[test]
fn models_and_health_describe_the_server() {
    let s = smollm2();
    let (status, v) = s.json("GET", "/v1/models", "");
    assert_eq!(status, 200);
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], MODEL);
    assert_eq!(v["data"][0]["object"], "model");
    let (status, m) = s.json("GET", &format!("/v1/models/{MODEL}"), "");
    assert_eq!((status, &m), (200, &v["data"][0]));
    let h = s.health();
    assert_eq!((&h["status"], &h["model"]), (&json!("ok"), &json!(MODEL)));
    // CORS preflight from a browser chat UI.
    let mut c = s.connect();
    c.write_all(
        b"OPTIONS /v1/chat/completions HTTP/1.1\r\nOrigin: http://x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 204"), "{text}");
    assert!(text.contains("Access-Control-Allow-Origin: *"), "{text}");
}
