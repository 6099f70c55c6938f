//! The serve example's own unit tests (the HTTP reader, request checks, reply shaping),
//! compiled here from its modules: `cargo test` does not run examples' tests, and
//! marking the example `test = true` would make cargo build its test harness instead of
//! the server the other tests start.

#![allow(dead_code)] // the modules serve the example; the tests use part of them

#[path = "../examples/serve/http.rs"]
mod http;
#[path = "../examples/serve/openai.rs"]
mod openai;
#[path = "../examples/serve/reply.rs"]
mod reply;
#[path = "../examples/serve/worker.rs"]
mod worker;
