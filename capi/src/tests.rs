//! The C functions called directly from Rust, as a C host would call them: error paths
//! first (no model needed), then sessions on SmolLM2 ($EDGESEEK_SMOLLM2, else
//! models/fetch-smollm2.sh's file).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::mpsc;

use crate::*;

/// The message behind `*error`, freed.
fn take(error: *mut c_char) -> String {
    assert!(!error.is_null(), "an error message was expected");
    let s = unsafe { CStr::from_ptr(error) }
        .to_string_lossy()
        .into_owned();
    unsafe { es_string_free(error) };
    s
}

#[path = "../tests/common/smollm2.rs"]
mod smollm2_file;

/// $EDGESEEK_SMOLLM2, else models/SmolLM2-135M-Instruct.Q4_1.gguf.
fn smollm2() -> CString {
    let path = smollm2_file::path();
    let text = path.to_str().expect("the model's path is UTF-8");
    CString::new(text).unwrap()
}

fn load() -> *mut EsModel {
    let mut error = null_mut();
    let m = unsafe { es_model_load(smollm2().as_ptr(), null(), &mut error) };
    assert!(!m.is_null(), "load failed: {}", take(error));
    assert!(error.is_null(), "success leaves *error NULL");
    m
}

fn new_session(m: *mut EsModel) -> *mut EsSession {
    let mut error = null_mut();
    let s = unsafe { es_session_new(m, &mut error) };
    assert!(!s.is_null(), "session failed: {}", take(error));
    s
}

fn greedy(max_tokens: u32) -> EsGenerateOptions {
    EsGenerateOptions {
        temperature: 0.0,
        max_tokens,
        ..EsGenerateOptions::default()
    }
}

/// What a chat sent to its callback, and how the callback answers.
#[derive(Default)]
struct Recorder {
    events: Vec<(EsEventKind, String)>,
    /// Return non-zero on this TEXT event (0-based).
    stop_at_text: Option<usize>,
    /// On the first TEXT event: say so, then wait for the go-ahead.
    first_text: Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>,
    /// On the first TEXT event: try a second chat on this session from inside.
    reenter: Option<*mut EsSession>,
    reentered: Option<(c_int, String)>,
    /// On the first TEXT event: tokenize [`TOKENIZED`] and read the info of this model.
    model: Option<*const EsModel>,
    model_seen: Option<ModelSeen>,
    /// What went wrong inside the callback. A panic may not leave an `extern "C"`
    /// function (it would abort the whole test binary), so the callback records it and
    /// stops the chat, and [`chat`] fails the test after the call.
    failures: Vec<String>,
}

/// What es_tokenize and es_model_info answered while a chat ran.
#[derive(Debug)]
struct ModelSeen {
    tokenize: c_int,
    ids: Vec<u32>,
    arch: String,
}

/// A text and its SmolLM2 token ids.
const TOKENIZED: (&CStr, [u32; 4]) = (c"The capital of France", [504, 3575, 282, 4649]);

impl Recorder {
    fn text(&self) -> String {
        self.events
            .iter()
            .filter(|(k, _)| *k == EsEventKind::Text)
            .map(|(_, t)| t.as_str())
            .collect()
    }
    fn done(&self) -> &str {
        let (kind, text) = self.events.last().expect("events");
        assert_eq!(*kind, EsEventKind::Done, "DONE comes last");
        text
    }
}

/// The tokens of [`TOKENIZED`] and the model's arch, as a C host would ask for them.
fn ask_model(m: *const EsModel) -> ModelSeen {
    let mut ids = [0u32; 8];
    let mut n = 0usize;
    let mut error = null_mut();
    let text = TOKENIZED.0.as_ptr();
    let tokenize = unsafe { es_tokenize(m, text, 0, ids.as_mut_ptr(), 8, &mut n, &mut error) };
    if !error.is_null() {
        unsafe { es_string_free(error) };
    }
    let info = unsafe { es_model_info(m) };
    let arch = match unsafe { info.as_ref() } {
        Some(info) => unsafe { CStr::from_ptr(info.arch) }
            .to_string_lossy()
            .into_owned(),
        None => "es_model_info returned NULL".into(),
    };
    ModelSeen {
        tokenize,
        ids: ids[..n.min(8)].to_vec(),
        arch,
    }
}

/// The callback: records into the Recorder behind `user`; a panic becomes a failure.
unsafe extern "C" fn record(
    kind: EsEventKind,
    text: *const c_char,
    len: usize,
    user: *mut c_void,
) -> c_int {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
        on_event(kind, text, len, user)
    }));
    caught.unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let r = unsafe { &mut *(user as *mut Recorder) };
        r.failures.push(format!("{kind:?} event: {what}"));
        1
    })
}

unsafe fn on_event(kind: EsEventKind, text: *const c_char, len: usize, user: *mut c_void) -> c_int {
    let r = unsafe { &mut *(user as *mut Recorder) };
    let bytes = unsafe { std::slice::from_raw_parts(text.cast::<u8>(), len) };
    let text = std::str::from_utf8(bytes).expect("callback text is whole UTF-8");
    r.events.push((kind, text.to_string()));
    let n_text = r
        .events
        .iter()
        .filter(|(k, _)| *k == EsEventKind::Text)
        .count();
    if kind == EsEventKind::Text && n_text == 1 {
        if let Some((said, go)) = &r.first_text {
            said.send(()).unwrap();
            go.recv().unwrap();
        }
        if let Some(s) = r.reenter {
            let mut error = null_mut();
            let q = c"again";
            let status =
                unsafe { es_session_chat(s, q.as_ptr(), null(), Some(record), user, &mut error) };
            r.reentered = Some((status, take(error)));
        }
        if let Some(m) = r.model {
            r.model_seen = Some(ask_model(m));
        }
    }
    c_int::from(kind == EsEventKind::Text && r.stop_at_text == Some(n_text - 1))
}

fn chat(s: *mut EsSession, q: &str, opts: &EsGenerateOptions, r: &mut Recorder) -> c_int {
    let q = CString::new(q).unwrap();
    let mut error = null_mut();
    let status = unsafe {
        es_session_chat(
            s,
            q.as_ptr(),
            opts,
            Some(record),
            (r as *mut Recorder).cast(),
            &mut error,
        )
    };
    assert!(
        r.failures.is_empty(),
        "the callback failed: {:?}",
        r.failures
    );
    if status != ES_OK {
        panic!("chat failed ({status}): {}", take(error));
    }
    status
}

const FRANCE: &str = "What is the capital of France? Answer in one sentence.";

// ---------------------------------------------------------------------------------------
// Without a model

#[test]
fn null_arguments_are_invalid_argument_errors_with_a_message() {
    let mut error = null_mut();
    assert!(unsafe { es_model_load(null(), null(), &mut error) }.is_null());
    assert_eq!(take(error), "path is NULL");
    assert!(unsafe { es_session_new(null_mut(), &mut error) }.is_null());
    assert_eq!(take(error), "model is NULL");
    let q = c"hi";
    let status = unsafe {
        es_session_chat(
            null_mut(),
            q.as_ptr(),
            null(),
            Some(record),
            null_mut(),
            &mut error,
        )
    };
    assert_eq!(status, ES_ERR_INVALID_ARGUMENT);
    assert_eq!(take(error), "session is NULL");
    let mut n = 0usize;
    let status = unsafe { es_tokenize(null(), q.as_ptr(), 1, null_mut(), 0, &mut n, &mut error) };
    assert_eq!(status, ES_ERR_INVALID_ARGUMENT);
    assert_eq!(take(error), "model is NULL");
    let status = unsafe { es_session_reset(null_mut(), &mut error) };
    assert_eq!(
        (status, take(error).as_str()),
        (ES_ERR_INVALID_ARGUMENT, "session is NULL")
    );
    let status = unsafe { es_session_set_system(null_mut(), null(), &mut error) };
    assert_eq!(
        (status, take(error).as_str()),
        (ES_ERR_INVALID_ARGUMENT, "session is NULL")
    );
    // `error` may be NULL: the status alone.
    assert!(unsafe { es_model_load(null(), null(), null_mut()) }.is_null());
    assert!(unsafe { es_model_info(null()) }.is_null());
}

#[test]
fn a_missing_file_is_null_and_a_message_naming_it() {
    let path = c"/nonexistent/dir/model.gguf";
    let mut error = null_mut();
    assert!(unsafe { es_model_load(path.as_ptr(), null(), &mut error) }.is_null());
    let message = take(error);
    assert!(message.contains("/nonexistent/dir/model.gguf"), "{message}");
}

#[test]
fn freeing_null_is_a_no_op() {
    unsafe {
        es_model_free(null_mut());
        es_session_free(null_mut());
        es_string_free(null_mut());
        es_session_cancel(null_mut());
        es_load_options_default(null_mut());
        es_generate_options_default(null_mut());
    }
}

#[test]
fn option_defaults_are_the_rust_defaults_and_struct_size_is_checked() {
    let mut load = std::mem::MaybeUninit::<EsLoadOptions>::uninit();
    unsafe { es_load_options_default(load.as_mut_ptr()) };
    let load = unsafe { load.assume_init() };
    assert_eq!(
        load.struct_size as usize,
        std::mem::size_of::<EsLoadOptions>()
    );
    let rust = unsafe { EsLoadOptions::read(&load) }.unwrap();
    assert_eq!(
        format!("{rust:?}"),
        format!("{:?}", edgeseek_rs::LoadOptions::default())
    );

    let mut generate = std::mem::MaybeUninit::<EsGenerateOptions>::uninit();
    unsafe { es_generate_options_default(generate.as_mut_ptr()) };
    let generate = unsafe { generate.assume_init() };
    let rust = unsafe { EsGenerateOptions::read(&generate) }.unwrap();
    assert_eq!(
        format!("{rust:?}"),
        format!("{:?}", edgeseek_rs::GenerateOptions::default())
    );

    let uninitialized = EsLoadOptions {
        struct_size: 0,
        ..load
    };
    let mut error = null_mut();
    let path = c"/nonexistent.gguf";
    assert!(unsafe { es_model_load(path.as_ptr(), &uninitialized, &mut error) }.is_null());
    let message = take(error);
    assert!(message.contains("es_load_options_default"), "{message}");

    let bad_eviction = EsLoadOptions {
        eviction: 7,
        ..load
    };
    assert!(unsafe { es_model_load(path.as_ptr(), &bad_eviction, &mut error) }.is_null());
    assert!(take(error).contains("eviction is 7"));

    let stop_null = EsGenerateOptions {
        n_stop: 2,
        ..generate
    };
    assert!(unsafe { EsGenerateOptions::read(&stop_null) }
        .unwrap_err()
        .message
        .contains("stop is NULL"));
    let bad = [c"ok".as_ptr(), c"\xff".as_ptr()];
    let stop_bad = EsGenerateOptions {
        stop: bad.as_ptr(),
        n_stop: 2,
        ..generate
    };
    let failure = unsafe { EsGenerateOptions::read(&stop_bad) }.unwrap_err();
    assert_eq!(failure.status, ES_ERR_INVALID_ARGUMENT);
    assert!(
        failure.message.contains("stop[1] is not UTF-8"),
        "{}",
        failure.message
    );
}

#[test]
fn max_tokens_0_is_refused() {
    let zero = EsGenerateOptions {
        max_tokens: 0,
        ..EsGenerateOptions::default()
    };
    let failure = unsafe { EsGenerateOptions::read(&zero) }.unwrap_err();
    assert_eq!(failure.status, ES_ERR_INVALID_ARGUMENT);
    assert!(
        failure.message.contains("max_tokens is 0"),
        "{}",
        failure.message
    );
}

/// The first fields of an options struct as an older, smaller header would declare it.
#[repr(C, align(8))]
#[allow(dead_code)] // n_ctx is never read: it only gives the struct a second field
struct Smaller {
    struct_size: u32,
    n_ctx: u32,
}

#[test]
fn a_struct_smaller_than_the_librarys_is_refused_without_reading_past_it() {
    // struct_size is read alone; the 8 bytes here are all there is to read (Miri or
    // ASan would flag a read of the whole struct).
    let smaller = Smaller {
        struct_size: std::mem::size_of::<Smaller>() as u32,
        n_ctx: 0,
    };
    let mut error = null_mut();
    let path = c"/nonexistent.gguf";
    let opts = (&smaller as *const Smaller).cast::<EsLoadOptions>();
    assert!(unsafe { es_model_load(path.as_ptr(), opts, &mut error) }.is_null());
    let message = take(error);
    assert!(
        message.starts_with("EsLoadOptions.struct_size is 8 but this library's EsLoadOptions"),
        "{message}"
    );
    let opts = (&smaller as *const Smaller).cast::<EsGenerateOptions>();
    let failure = unsafe { EsGenerateOptions::read(opts) }.unwrap_err();
    assert_eq!(failure.status, ES_ERR_INVALID_ARGUMENT);
    assert!(
        failure
            .message
            .starts_with("EsGenerateOptions.struct_size is 8 but this library's EsGenerateOptions"),
        "{}",
        failure.message
    );
}

#[test]
fn status_names_and_version_are_static_strings() {
    let name = |s| {
        unsafe { CStr::from_ptr(es_status_name(s)) }
            .to_str()
            .unwrap()
    };
    assert_eq!(name(ES_ERR_BUSY), "ES_ERR_BUSY");
    assert_eq!(name(42), "unknown status");
    let version = unsafe { CStr::from_ptr(es_version()) }.to_str().unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
}

// ---------------------------------------------------------------------------------------
// On SmolLM2

#[test]
fn a_greedy_chat_answers_and_the_next_turn_reuses_the_cache() {
    let m = load();
    let info = unsafe { &*es_model_info(m) };
    assert_eq!(
        unsafe { CStr::from_ptr(info.arch) }.to_str().unwrap(),
        "llama"
    );
    assert_eq!(
        unsafe { CStr::from_ptr(info.chat_template) }
            .to_str()
            .unwrap(),
        "smollm2"
    );
    assert_eq!(
        (info.n_vocab, info.opens_think, info.n_expert),
        (49152, 0, 0)
    );

    let s = new_session(m);
    // A cancel before the call belongs to no call: the flag is cleared as a chat starts.
    unsafe { es_session_cancel(s) };
    let mut first = Recorder::default();
    chat(s, FRANCE, &greedy(48), &mut first);
    assert!(first.text().contains("Paris"), "{}", first.text());
    assert_eq!(first.done(), "end_of_generation");

    let mut second = Recorder::default();
    chat(s, "And of Italy?", &greedy(48), &mut second);
    assert!(second.text().contains("Rome"), "{}", second.text());
    let mut summary = EsSummary {
        struct_size: std::mem::size_of::<EsSummary>() as u32,
        ..unsafe { std::mem::zeroed() }
    };
    let mut error = null_mut();
    assert_eq!(
        unsafe { es_session_last_summary(s, &mut summary, &mut error) },
        ES_OK
    );
    // The whole first turn (question and answer) was already in the KV cache.
    assert!(summary.reused_tokens > 20, "{summary:?}");
    assert!(summary.prompt_tokens > summary.reused_tokens);

    // After a reset the conversation and the cache are gone.
    assert_eq!(unsafe { es_session_reset(s, &mut error) }, ES_OK);
    assert_eq!(
        unsafe { es_session_last_summary(s, &mut summary, &mut error) },
        ES_ERR_INVALID_ARGUMENT
    );
    assert!(take(error).contains("no summary yet"));
    unsafe {
        es_session_free(s);
        es_model_free(m);
    }
}

#[test]
fn bad_chat_arguments_are_errors_and_leave_the_conversation_as_it_was() {
    let m = load();
    let s = new_session(m);
    let mut error = null_mut();
    let mut r = Recorder::default();
    let user = (&mut r as *mut Recorder).cast();
    let q = c"hi";
    let status = unsafe { es_session_chat(s, null(), null(), Some(record), user, &mut error) };
    assert_eq!(
        (status, take(error).as_str()),
        (ES_ERR_INVALID_ARGUMENT, "user_message is NULL")
    );
    let status = unsafe { es_session_chat(s, q.as_ptr(), null(), None, user, &mut error) };
    assert_eq!(
        (status, take(error).as_str()),
        (ES_ERR_INVALID_ARGUMENT, "callback is NULL")
    );
    let latin1 = c"caf\xe9?";
    let status = unsafe {
        es_session_chat(
            s,
            latin1.as_ptr().cast(),
            null(),
            Some(record),
            user,
            &mut error,
        )
    };
    assert_eq!(status, ES_ERR_INVALID_ARGUMENT);
    assert!(take(error).contains("user_message is not UTF-8 (invalid byte at offset 3)"));
    let bad_sampler = EsGenerateOptions {
        top_p: 0.0,
        ..greedy(4)
    };
    let status =
        unsafe { es_session_chat(s, q.as_ptr(), &bad_sampler, Some(record), user, &mut error) };
    assert_eq!(status, ES_ERR_INVALID_ARGUMENT);
    assert!(take(error).contains("top-p 0"));
    assert!(r.events.is_empty(), "no event on an error: {:?}", r.events);

    // None of the failed calls entered the conversation: the next turn is the first.
    chat(s, FRANCE, &greedy(48), &mut r);
    let mut summary = EsSummary {
        struct_size: std::mem::size_of::<EsSummary>() as u32,
        ..unsafe { std::mem::zeroed() }
    };
    assert_eq!(
        unsafe { es_session_last_summary(s, &mut summary, &mut error) },
        ES_OK
    );
    assert!(r.text().contains("Paris"), "{}", r.text());
    unsafe {
        es_session_free(s);
        es_model_free(m);
    }
}

#[test]
fn a_second_session_on_a_model_is_refused_until_the_first_is_freed() {
    let m = load();
    let s = new_session(m);
    let mut error = null_mut();
    assert!(unsafe { es_session_new(m, &mut error) }.is_null());
    let message = take(error);
    assert!(
        message.contains(&format!("{:#x}", s as usize)),
        "names the live session: {message}"
    );
    unsafe { es_session_free(s) };
    let again = new_session(m);
    unsafe {
        es_session_free(again);
        es_model_free(m);
    }
}

#[test]
fn the_model_may_be_freed_before_its_session() {
    let m = load();
    let s = new_session(m);
    unsafe { es_model_free(m) };
    let mut r = Recorder::default();
    chat(s, FRANCE, &greedy(48), &mut r);
    assert!(r.text().contains("Paris"), "{}", r.text());
    unsafe { es_session_free(s) };
}

#[test]
fn a_non_zero_callback_return_stops_with_done_cancelled() {
    let m = load();
    let s = new_session(m);
    let mut r = Recorder {
        stop_at_text: Some(1),
        ..Recorder::default()
    };
    assert_eq!(chat(s, FRANCE, &greedy(48), &mut r), ES_OK);
    let kinds: Vec<EsEventKind> = r.events.iter().map(|e| e.0).collect();
    assert_eq!(
        kinds,
        [EsEventKind::Text, EsEventKind::Text, EsEventKind::Done]
    );
    assert_eq!(r.done(), "cancelled");
    unsafe {
        es_session_free(s);
        es_model_free(m);
    }
}

#[test]
fn a_chat_from_inside_the_callback_is_busy_not_a_deadlock() {
    let m = load();
    let s = new_session(m);
    let mut r = Recorder {
        reenter: Some(s),
        ..Recorder::default()
    };
    chat(s, FRANCE, &greedy(8), &mut r);
    let (status, message) = r.reentered.clone().expect("the callback tried");
    assert_eq!(status, ES_ERR_BUSY);
    assert!(message.contains("busy"), "{message}");
    unsafe {
        es_session_free(s);
        es_model_free(m);
    }
}

#[test]
fn es_session_cancel_from_another_thread_stops_a_running_chat() {
    let m = load();
    let s = new_session(m);
    let (said_tx, said_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let handle = s as usize; // raw pointers are not Send; the session is Sync by contract
    let chat_thread = std::thread::spawn(move || {
        let mut r = Recorder {
            first_text: Some((said_tx, go_rx)),
            ..Recorder::default()
        };
        chat(
            handle as *mut EsSession,
            "Count from 1 to 100.",
            &greedy(400),
            &mut r,
        );
        r.events
    });
    // The chat is running (inside its first callback) when the cancel comes.
    said_rx.recv().unwrap();
    unsafe { es_session_cancel(s) };
    go_tx.send(()).unwrap();
    let r = Recorder {
        events: chat_thread.join().unwrap(),
        ..Recorder::default()
    };
    assert_eq!(r.done(), "cancelled");
    assert!(
        r.events.len() <= 3,
        "stopped after the current token: {:?}",
        r.events
    );
    unsafe {
        es_session_free(s);
        es_model_free(m);
    }
}

#[test]
fn es_tokenize_counts_fills_and_refuses_a_small_buffer() {
    let m = load();
    let text = c"The capital of France";
    let mut n = 0usize;
    let mut error = null_mut();
    assert_eq!(
        unsafe { es_tokenize(m, text.as_ptr(), 0, null_mut(), 0, &mut n, &mut error) },
        ES_OK
    );
    assert_eq!(n, 4, "SmolLM2: The / capital / of / France");
    let mut ids = [0u32; 2];
    let status =
        unsafe { es_tokenize(m, text.as_ptr(), 0, ids.as_mut_ptr(), 2, &mut n, &mut error) };
    assert_eq!(status, ES_ERR_BUFFER_TOO_SMALL);
    assert_eq!(n, 4);
    assert!(take(error).contains("4 tokens"));
    let mut ids = [0u32; 8];
    assert_eq!(
        unsafe { es_tokenize(m, text.as_ptr(), 0, ids.as_mut_ptr(), 8, &mut n, &mut error) },
        ES_OK
    );
    assert_eq!(&ids[..n], &[504, 3575, 282, 4649]);
    // A running session does not stand in the way: tokenizing reads a tokenizer of its own.
    let s = new_session(m);
    assert_eq!(
        unsafe { es_tokenize(m, text.as_ptr(), 0, null_mut(), 0, &mut n, &mut error) },
        ES_OK
    );
    unsafe {
        es_session_free(s);
        es_model_free(m);
    }
}

#[test]
fn es_tokenize_and_es_model_info_answer_while_a_chat_runs() {
    let m = load();
    let s = new_session(m);
    let (said_tx, said_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let (handle, model) = (s as usize, m as usize); // raw pointers are not Send
    let chat_thread = std::thread::spawn(move || {
        let mut r = Recorder {
            first_text: Some((said_tx, go_rx)),
            model: Some(model as *const EsModel),
            ..Recorder::default()
        };
        chat(handle as *mut EsSession, FRANCE, &greedy(48), &mut r);
        (r.model_seen.take(), r.text(), r.done().to_string())
    });
    // The chat is inside its first callback on the other thread: this is the first
    // es_tokenize on the model, so it also builds the tokenizer while the chat runs.
    said_rx.recv().unwrap();
    let beside = ask_model(m);
    go_tx.send(()).unwrap();
    let (inside, text, done) = chat_thread.join().unwrap();
    let expected = (ES_OK, TOKENIZED.1.to_vec(), "llama".to_string());
    assert_eq!((beside.tokenize, beside.ids, beside.arch), expected);
    // From inside the callback, on the chat's own thread.
    let inside = inside.expect("the callback asked");
    assert_eq!((inside.tokenize, inside.ids, inside.arch), expected);
    // The chat went on undisturbed.
    assert!(text.contains("Paris"), "{text}");
    assert_eq!(done, "end_of_generation");
    unsafe {
        es_session_free(s);
        es_model_free(m);
    }
}

#[test]
fn a_panic_in_a_status_call_is_es_err_internal_with_its_message() {
    let mut error = null_mut();
    let status = unsafe { status::status_call("f", &mut error, || panic!("boom")) };
    assert_eq!(status, ES_ERR_INTERNAL);
    let message = take(error);
    assert!(
        message.contains("boom") && message.contains(" in f:"),
        "{message}"
    );
    // A formatted panic (a String payload) keeps its text too.
    let status = unsafe { status::status_call("f", &mut error, || panic!("boom {}", 42)) };
    assert_eq!(
        (status, take(error).contains("boom 42")),
        (ES_ERR_INTERNAL, true)
    );
}

#[test]
fn a_panic_in_a_pointer_call_is_null_and_a_message() {
    let mut error = null_mut();
    let p = unsafe { status::pointer_call::<u8>("g", &mut error, || panic!("boom")) };
    assert!(p.is_null());
    let message = take(error);
    assert!(
        message.contains("boom") && message.contains(" in g:"),
        "{message}"
    );
    // Without `error`, the NULL alone.
    let p = unsafe { status::pointer_call::<u8>("g", null_mut(), || panic!("boom")) };
    assert!(p.is_null());
}

#[test]
fn after_a_panic_holding_its_state_a_session_starts_a_fresh_conversation() {
    let m = load();
    let s = new_session(m);
    let mut first = Recorder::default();
    chat(s, FRANCE, &greedy(48), &mut first);
    let summary = |s| {
        let mut out = summary_slot();
        let mut error = null_mut();
        assert_eq!(
            unsafe { es_session_last_summary(s, &mut out, &mut error) },
            ES_OK
        );
        out
    };
    let fresh = summary(s);

    let mut error = null_mut();
    let status = unsafe { crate::session::panic_holding_the_state(s, &mut error) };
    assert_eq!(status, ES_ERR_INTERNAL);
    assert!(take(error).contains("a bug while the session's state is held"));

    // The next call finds the lock poisoned and starts over: no summary, no history
    // (neither the first turn nor the half turn the panic left), an empty KV cache.
    assert_eq!(
        unsafe { es_session_last_summary(s, &mut summary_slot(), &mut error) },
        ES_ERR_INVALID_ARGUMENT
    );
    assert!(take(error).contains("no summary yet"));
    let mut again = Recorder::default();
    chat(s, FRANCE, &greedy(48), &mut again);
    assert!(again.text().contains("Paris"), "{}", again.text());
    let after = summary(s);
    assert_eq!(
        (after.prompt_tokens, after.reused_tokens),
        (fresh.prompt_tokens, 0),
        "the same prompt as the first turn's, nothing reused"
    );
    unsafe {
        es_session_free(s);
        es_model_free(m);
    }
}

/// An EsSummary to be filled.
fn summary_slot() -> EsSummary {
    EsSummary {
        struct_size: std::mem::size_of::<EsSummary>() as u32,
        ..unsafe { std::mem::zeroed() }
    }
}

#[test]
fn es_tokenize_is_es_err_model_when_the_file_is_gone_after_load() {
    // A second name for the model (a hard link, else a copy), removed once loaded: the
    // tokenizer es_tokenize builds on first use cannot be read from it any more.
    let dir = std::env::temp_dir().join(format!("edgeseek-capi-gone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(smollm2_file::FILE);
    let original = smollm2_file::path();
    std::fs::remove_file(&path).ok();
    if std::fs::hard_link(&original, &path).is_err() {
        std::fs::copy(&original, &path).unwrap();
    }
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let mut error = null_mut();
    let m = unsafe { es_model_load(c_path.as_ptr(), null(), &mut error) };
    assert!(!m.is_null(), "load failed: {}", take(error));
    std::fs::remove_dir_all(&dir).unwrap();

    let mut n = 0usize;
    let text = TOKENIZED.0.as_ptr();
    let status = unsafe { es_tokenize(m, text, 0, null_mut(), 0, &mut n, &mut error) };
    let message = take(error);
    assert_eq!(status, ES_ERR_MODEL, "{message}");
    assert!(message.contains(path.to_str().unwrap()), "{message}");
    unsafe { es_model_free(m) };
}
