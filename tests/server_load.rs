//! A bounded load test of the `serve` example on loopback: 16 concurrent clients × 4
//! requests on SmolLM2, whole and streamed, a quarter of them leaving after the first
//! streamed token. Every request that stays gets the answer a lone request gets (greedy),
//! none is lost, the ones that leave are cancelled within a token, and the server's
//! memory is flat afterwards. Prints requests/s and time to first token (a measurement
//! for docs/server.md, not an assertion).

mod common;

use std::io::{BufReader, Write};
use std::time::{Duration, Instant};

use common::server::{chat_body, read_chunk, read_head, request, sse_events, Server};
use serde_json::{json, Value};

const MODEL: &str = "smollm2";
const CLIENTS: usize = 16;
const REQUESTS_PER_CLIENT: usize = 4;
const COUNTRIES: [&str; 4] = ["France", "Germany", "Italy", "Spain"];

fn question(i: usize) -> String {
    format!(
        "What is the capital of {}? Answer in one sentence.",
        COUNTRIES[i % COUNTRIES.len()]
    )
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Whole,
    Streamed,
    /// Streamed, and the client hangs up after the first text.
    Leaves,
}

/// What one request saw.
struct Outcome {
    kind: Kind,
    question: usize,
    /// The answer (None for clients that left).
    answer: Option<String>,
    /// Time to the first text (streamed) or to the whole answer.
    first_token: Duration,
}

fn content_of(whole: &Value) -> String {
    whole["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no content: {whole}"))
        .to_string()
}

fn run_request(server: &Server, kind: Kind, q: usize) -> Outcome {
    let greedy = json!({"temperature": 0, "max_tokens": 24});
    let t = Instant::now();
    let (answer, first_token) = match kind {
        Kind::Whole => {
            let (status, v) = server.json(
                "POST",
                "/v1/chat/completions",
                &chat_body(MODEL, &question(q), greedy),
            );
            assert_eq!(status, 200, "{v}");
            (Some(content_of(&v)), t.elapsed())
        }
        Kind::Streamed => {
            let mut extra = greedy;
            extra["stream"] = true.into();
            let (text, first) = stream(server, &chat_body(MODEL, &question(q), extra), false);
            (Some(text), first)
        }
        Kind::Leaves => {
            let long = json!({"max_tokens": 300, "stream": true, "seed": q});
            let body = chat_body(MODEL, "Write a long story about a lighthouse keeper.", long);
            (None, stream(server, &body, true).1)
        }
    };
    Outcome {
        kind,
        question: q,
        answer,
        first_token,
    }
}

/// A streamed chat: its text and the time to its first text; `leave` hangs up there.
fn stream(server: &Server, body: &str, leave: bool) -> (String, Duration) {
    let t = Instant::now();
    let c = server.connect();
    let mut w = c.try_clone().unwrap();
    w.write_all(request("POST", "/v1/chat/completions", body, false).as_bytes())
        .unwrap();
    let mut r = BufReader::new(c);
    let head = read_head(&mut r);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (mut text, mut first, mut done) = (String::new(), None, false);
    while let Some(chunk) = read_chunk(&mut r) {
        for event in sse_events(&chunk) {
            done |= event == json!("[DONE]");
            if let Some(piece) = event["choices"][0]["delta"]["content"].as_str() {
                text.push_str(piece);
                if !piece.is_empty() && first.is_none() {
                    first = Some(t.elapsed());
                }
            }
        }
        if let (true, Some(first)) = (leave, first) {
            return (text, first);
        }
    }
    assert!(done, "the stream ended without [DONE]");
    (text, first.expect("a streamed answer has text"))
}

/// `clients` threads, each making `per_client` requests one after another.
fn load(server: &Server, clients: usize, per_client: usize) -> (Vec<Outcome>, Duration) {
    let t = Instant::now();
    let outcomes = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || {
                    (0..per_client)
                        .map(|r| {
                            let kind = match (c + r) % 4 {
                                3 => Kind::Leaves,
                                1 => Kind::Streamed,
                                _ => Kind::Whole,
                            };
                            run_request(server, kind, c + r)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    (outcomes, t.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64()
}

#[test]
fn sixteen_clients_at_once_are_all_answered_and_memory_stays_flat() {
    let server = Server::smollm2(MODEL, &[]);
    // What each question gets asked alone.
    let reference: Vec<String> = (0..COUNTRIES.len())
        .map(|q| run_request(&server, Kind::Whole, q).answer.unwrap())
        .collect();
    assert!(reference[0].contains("Paris"), "{}", reference[0]);

    // One request per client first: threads, buffers and pipelines reach their steady
    // state before memory is measured.
    let (warm, _) = load(&server, CLIENTS, 1);
    let rss_before = server.rss_bytes();
    let (outcomes, wall) = load(&server, CLIENTS, REQUESTS_PER_CLIENT);
    let rss_after = server.rss_bytes();

    for o in warm.iter().chain(&outcomes) {
        if let Some(answer) = &o.answer {
            assert_eq!(
                answer,
                &reference[o.question % COUNTRIES.len()],
                "{:?} request for question {}",
                o.kind,
                o.question
            );
        }
    }
    let stayed = |v: &[Outcome]| v.iter().filter(|o| o.kind != Kind::Leaves).count();
    let left = |v: &[Outcome]| v.len() - stayed(v);
    assert_eq!(outcomes.len(), CLIENTS * REQUESTS_PER_CLIENT);
    // The server's own count: nothing lost, nothing failed, every leaver cancelled. The
    // last leaver's request ends when the worker next writes to its closed socket,
    // which may be after the client has gone: wait for every request to be counted.
    let completed = reference.len() + stayed(&warm) + stayed(&outcomes);
    let cancelled = left(&warm) + left(&outcomes);
    let counted = |h: &Value| {
        let n = |k: &str| h["requests"][k].as_u64().unwrap_or(0) as usize;
        n("completed") + n("cancelled") + n("failed") >= completed + cancelled
    };
    let h = server.wait_for("every request counted", Duration::from_secs(60), counted);
    assert_eq!(h["requests"]["completed"], completed, "{h}");
    assert_eq!(h["requests"]["cancelled"], cancelled, "{h}");
    assert_eq!(h["requests"]["failed"], 0, "{h}");
    assert_eq!(h["queue_length"], 0, "{h}");
    let after = &h["cancellation"]["max_tokens_after_disconnect"];
    assert!(after.as_u64().unwrap() <= 1, "{h}");
    let grown = rss_after as i64 - rss_before as i64;
    assert!(
        grown < 16 << 20,
        "RSS grew by {} MiB under load ({} -> {} MiB)",
        grown >> 20,
        rss_before >> 20,
        rss_after >> 20
    );

    let mut ttft: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.kind != Kind::Whole)
        .map(|o| o.first_token)
        .collect();
    ttft.sort();
    let mut whole: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.kind == Kind::Whole)
        .map(|o| o.first_token)
        .collect();
    whole.sort();
    println!(
        "load: {} requests ({} stayed, {} left early) from {CLIENTS} clients in {:.1} s: {:.2} answered requests/s; \
         streamed time to first text p50 {:.2} s, p90 {:.2} s, max {:.2} s; whole answers p50 {:.2} s; \
         RSS {} -> {} MiB",
        outcomes.len(),
        stayed(&outcomes),
        left(&outcomes),
        wall.as_secs_f64(),
        stayed(&outcomes) as f64 / wall.as_secs_f64(),
        percentile(&ttft, 0.5),
        percentile(&ttft, 0.9),
        percentile(&ttft, 1.0),
        percentile(&whole, 0.5),
        rss_before >> 20,
        rss_after >> 20,
    );
}
