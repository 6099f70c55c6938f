//! EsSession: one conversation with a model, streamed to a C callback.
//!
//! The session owns an edgeseek `Session<'static>` made from the model cell's pointer,
//! the conversation (user turns and the assistant's answers without their reasoning,
//! so the KV cache's prefix is reused turn after turn), an optional system prompt and
//! the last summary, all behind one mutex. The cancel flag stays outside the lock so
//! that es_session_cancel never waits for, or aliases, a running chat.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use edgeseek_rs::{Event, Message, Prompt, Session, StopReason, Summary};

use crate::model::{model_arc, model_ref, EsModel};
use crate::options::EsGenerateOptions;
use crate::status::{pointer_call, silent_call, status_call, str_arg, Failure};

/// What the callback is told (EsEventKind in the header).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EsEventKind {
    Text = 0,
    ThinkStart = 1,
    ThinkEnd = 2,
    Done = 3,
}

/// `EsEventCallback`: NULL is `None`, which es_session_chat refuses.
pub type EsEventCallback = Option<
    unsafe extern "C" fn(
        kind: EsEventKind,
        text: *const c_char,
        len: usize,
        user_data: *mut c_void,
    ) -> c_int,
>;

// EsStopReason
pub const ES_STOP_END_OF_GENERATION: i32 = 0;
pub const ES_STOP_STOP_STRING: i32 = 1;
pub const ES_STOP_MAX_TOKENS: i32 = 2;
pub const ES_STOP_CANCELLED: i32 = 3;
pub const ES_STOP_CONTEXT_FULL: i32 = 4;

/// How the last es_session_chat went (es_session_last_summary).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EsSummary {
    pub struct_size: u32,
    /// EsStopReason.
    pub stop: i32,
    pub prompt_tokens: u64,
    pub reused_tokens: u64,
    pub generated_tokens: u64,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
}

/// The stop reason's code and the name the DONE event carries.
fn stop_reason(stop: StopReason) -> (i32, &'static CStr) {
    match stop {
        StopReason::EndOfGeneration => (ES_STOP_END_OF_GENERATION, c"end_of_generation"),
        StopReason::StopString => (ES_STOP_STOP_STRING, c"stop_string"),
        StopReason::MaxTokens => (ES_STOP_MAX_TOKENS, c"max_tokens"),
        StopReason::Cancelled => (ES_STOP_CANCELLED, c"cancelled"),
        StopReason::ContextFull => (ES_STOP_CONTEXT_FULL, c"context_full"),
    }
}

impl EsSummary {
    fn from_rust(s: &Summary) -> EsSummary {
        EsSummary {
            struct_size: std::mem::size_of::<EsSummary>() as u32,
            stop: stop_reason(s.stop).0,
            prompt_tokens: s.prompt_tokens as u64,
            reused_tokens: s.reused_tokens as u64,
            generated_tokens: s.generated_tokens as u64,
            prefill_tok_s: s.prefill_tok_s,
            decode_tok_s: s.decode_tok_s,
        }
    }
}

/// Everything a call changes, behind the session's mutex.
struct State {
    /// None only between dropping a session and making its replacement (reset), or
    /// if making it failed.
    session: Option<Session<'static>>,
    system: Option<String>,
    /// User turns and answers, alternating; the system prompt is not in it.
    history: Vec<Message>,
    summary: Option<Summary>,
}

/// Clears the model's live-session mark, then lets go of the session's model
/// reference. A field of EsSession declared after `state`, so that it drops after the
/// edgeseek Session (which holds the `&mut Model`) is gone.
struct Claim(Arc<EsModel>);

impl Drop for Claim {
    fn drop(&mut self) {
        let mut live = self.0.session.lock().unwrap_or_else(|p| p.into_inner());
        *live = 0;
    }
}

/// The heap object behind an `EsSession *` (Box::into_raw; es_session_free frees it).
pub struct EsSession {
    state: Mutex<State>,
    cancel: Arc<AtomicBool>,
    // Declared last: dropped after `state` (see Claim).
    claim: Claim,
}

// An `EsSession *` is used from any thread (one call at a time, but es_session_cancel
// beside a running chat, and es_session_free on another thread than the chats): the
// session must be Send and Sync with no `unsafe impl` to vouch for it. That needs the
// edgeseek Session, the conversation and the summary Send (Mutex<State>: Sync), and
// the model cell Send + Sync (its Arc in Claim).
const _: () = {
    const fn send<T: Send>() {}
    const fn sync<T: Sync>() {}
    send::<Session<'static>>();
    send::<Message>();
    send::<Summary>();
    send::<EsModel>();
    sync::<EsModel>();
    send::<EsSession>();
    sync::<EsSession>();
};

impl EsSession {
    /// A fresh edgeseek Session on the model (which resets the model's KV cache).
    fn open(cell: &EsModel) -> Result<Session<'static>, Failure> {
        // SAFETY: the Model lives in an Arc'd cell that never moves and that this
        // EsSession keeps alive (Claim) for longer than the Session (field order). No
        // other `&mut Model` exists: the cell admits one live session (its `session`
        // claim), that session makes at most one edgeseek Session at a time (an old one
        // is dropped before `open` runs again, under the state lock), and the model's
        // info functions read only what was captured at load, never the Model.
        let model: &'static mut edgeseek_rs::Model = unsafe { &mut *cell.model.get() };
        model.session().map_err(Failure::load)
    }

    /// The state, or ES_ERR_BUSY while another call holds it. A call that panicked
    /// left the lock poisoned and the state half-updated: it is started afresh (a new
    /// edgeseek Session, an empty conversation) rather than trusted.
    fn lock(&self, function: &str) -> Result<MutexGuard<'_, State>, Failure> {
        match self.state.try_lock() {
            Ok(guard) => Ok(guard),
            Err(TryLockError::WouldBlock) => Err(Failure::busy(format!(
                "{function}: the session is busy in another call (es_session_chat on \
                 another thread or from its own callback); one call at a time per session"
            ))),
            Err(TryLockError::Poisoned(poisoned)) => {
                let mut guard = poisoned.into_inner();
                self.state.clear_poison();
                guard.summary = None;
                guard.history.clear();
                self.restart(&mut guard)?;
                Ok(guard)
            }
        }
    }

    /// Drops the edgeseek Session and makes a new one: an empty KV cache.
    fn restart(&self, state: &mut State) -> Result<(), Failure> {
        state.session = None;
        state.session = Some(EsSession::open(&self.claim.0)?);
        Ok(())
    }
}

/// The session behind a C handle, borrowed for the call.
///
/// # Safety
/// `s` is NULL or a pointer es_session_new returned that es_session_free has not freed.
unsafe fn session_ref<'a>(s: *const EsSession) -> Result<&'a EsSession, Failure> {
    // SAFETY: by the caller's promise the box behind `s` is alive for the call.
    unsafe { s.as_ref() }.ok_or_else(|| Failure::invalid("session is NULL"))
}

/// # Safety
/// `model` is NULL or a live handle from es_model_load; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn es_session_new(
    model: *mut EsModel,
    error: *mut *mut c_char,
) -> *mut EsSession {
    unsafe {
        pointer_call("es_session_new", error, || {
            let cell = model_ref(model, "model")?;
            let mut live = cell.session.lock().unwrap_or_else(|p| p.into_inner());
            if *live != 0 {
                return Err(Failure::busy(format!(
                    "the model already has a live session (EsSession {:#x}): free it \
                     first (es_session_free), reset it (es_session_reset), or load the \
                     model again for a second conversation",
                    *live
                )));
            }
            let session = EsSession::open(cell)?;
            let boxed = Box::new(EsSession {
                state: Mutex::new(State {
                    session: Some(session),
                    system: None,
                    history: Vec::new(),
                    summary: None,
                }),
                cancel: Arc::new(AtomicBool::new(false)),
                claim: Claim(model_arc(model)),
            });
            let ptr = Box::into_raw(boxed);
            *live = ptr as usize;
            Ok(ptr)
        })
    }
}

/// # Safety
/// `s` is NULL or a live handle from es_session_new, not used again by the caller.
#[no_mangle]
pub unsafe extern "C" fn es_session_free(s: *mut EsSession) {
    if s.is_null() {
        return;
    }
    silent_call("es_session_free", || {
        // SAFETY: Box::into_raw made it; the caller gives it up.
        drop(unsafe { Box::from_raw(s) });
    });
}

/// # Safety
/// `s` is NULL or a live handle from es_session_new.
#[no_mangle]
pub unsafe extern "C" fn es_session_cancel(s: *mut EsSession) {
    // Only the atomic: callable while es_session_chat runs on another thread (both see
    // the EsSession through shared references; nothing here takes the lock).
    if let Some(session) = unsafe { s.as_ref() } {
        session.cancel.store(true, Ordering::Relaxed);
    }
}

/// Test hook: a bug that panics halfway through changing a session's state (the user's
/// message in the history, no answer), as a panic inside generation would. The lock is
/// left poisoned; the next call must start the conversation afresh.
///
/// # Safety
/// As es_session_reset.
#[cfg(test)]
pub(crate) unsafe fn panic_holding_the_state(s: *mut EsSession, error: *mut *mut c_char) -> c_int {
    unsafe {
        status_call("panic_holding_the_state", error, || {
            let session = session_ref(s)?;
            let mut state = session.lock("panic_holding_the_state")?;
            state.history.push(Message::user("half a turn"));
            panic!("a bug while the session's state is held");
        })
    }
}

/// # Safety
/// `s` a live handle; `system` NULL or a C string; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn es_session_set_system(
    s: *mut EsSession,
    system: *const c_char,
    error: *mut *mut c_char,
) -> c_int {
    unsafe {
        status_call("es_session_set_system", error, || {
            let session = session_ref(s)?;
            let system = if system.is_null() {
                None
            } else {
                Some(str_arg(system, "system")?.to_string())
            };
            session.lock("es_session_set_system")?.system = system;
            Ok(())
        })
    }
}

/// # Safety
/// `s` a live handle; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn es_session_reset(s: *mut EsSession, error: *mut *mut c_char) -> c_int {
    unsafe {
        status_call("es_session_reset", error, || {
            let session = session_ref(s)?;
            let mut state = session.lock("es_session_reset")?;
            state.history.clear();
            state.summary = None;
            session.restart(&mut state)
        })
    }
}

/// # Safety
/// `s` a live handle; `out` NULL or a writable EsSummary whose struct_size the caller
/// set; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn es_session_last_summary(
    s: *mut EsSession,
    out: *mut EsSummary,
    error: *mut *mut c_char,
) -> c_int {
    unsafe {
        status_call("es_session_last_summary", error, || {
            let session = session_ref(s)?;
            if out.is_null() {
                return Err(Failure::invalid("out is NULL"));
            }
            // Read the field alone: the rest of the caller's struct may be uninitialized.
            let size = std::ptr::addr_of!((*out).struct_size).read();
            let expected = std::mem::size_of::<EsSummary>();
            if size as usize != expected {
                return Err(Failure::invalid(format!(
                    "EsSummary.struct_size is {size} but this library's EsSummary has \
                     {expected} bytes: set it to sizeof(EsSummary)"
                )));
            }
            let state = session.lock("es_session_last_summary")?;
            let summary = state.summary.as_ref().ok_or_else(|| {
                Failure::invalid("no summary yet: es_session_chat has not completed")
            })?;
            out.write(EsSummary::from_rust(summary));
            Ok(())
        })
    }
}

/// # Safety
/// See include/edgeseek.h: `s` a live handle, `user_message` a C string, `opts` NULL or
/// an initialized EsGenerateOptions, `cb` a function safe to call with `user_data`,
/// `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn es_session_chat(
    s: *mut EsSession,
    user_message: *const c_char,
    opts: *const EsGenerateOptions,
    cb: EsEventCallback,
    user_data: *mut c_void,
    error: *mut *mut c_char,
) -> c_int {
    unsafe {
        status_call("es_session_chat", error, || {
            let session = session_ref(s)?;
            let message = str_arg(user_message, "user_message")?;
            let cb = cb.ok_or_else(|| Failure::invalid("callback is NULL"))?;
            let mut options = EsGenerateOptions::read(opts)?;
            let mut state = session.lock("es_session_chat")?;
            // A cancel that came before this call belongs to an earlier one.
            session.cancel.store(false, Ordering::Relaxed);
            options.cancel = Some(session.cancel.clone());
            let sink = Callback {
                cb,
                user_data,
                cancel: &session.cancel,
                stopped: false,
            };
            chat(&mut state, message, options, sink)
        })
    }
}

/// The C callback, and whether it asked to stop.
struct Callback<'a> {
    cb: unsafe extern "C" fn(EsEventKind, *const c_char, usize, *mut c_void) -> c_int,
    user_data: *mut c_void,
    cancel: &'a AtomicBool,
    /// The callback returned non-zero: it gets nothing more but DONE.
    stopped: bool,
}

impl Callback<'_> {
    /// Calls back with `kind` and `text` (which the callback may not keep); a non-zero
    /// return stops generation after the current token, through the cancel flag.
    /// Returns whether the event was delivered.
    fn send(&mut self, kind: EsEventKind, text: &str) -> bool {
        if self.stopped && kind != EsEventKind::Done {
            return false;
        }
        // SAFETY: the caller of es_session_chat promised `cb` may be called with
        // `user_data`; `text` is valid for the call and `len` bytes long.
        let ret = unsafe { (self.cb)(kind, text.as_ptr().cast(), text.len(), self.user_data) };
        if ret != 0 && kind != EsEventKind::Done {
            self.stopped = true;
            self.cancel.store(true, Ordering::Relaxed);
        }
        true
    }
}

/// One turn: the user's message in, the streamed answer out and into the history.
fn chat(
    state: &mut State,
    message: &str,
    options: edgeseek_rs::GenerateOptions,
    mut sink: Callback<'_>,
) -> Result<(), Failure> {
    let State {
        session,
        system,
        history,
        summary: last_summary,
    } = state;
    let session = session
        .as_mut()
        .ok_or_else(|| Failure::invalid("the session could not be restarted earlier; free it"))?;
    let mut messages = Vec::with_capacity(history.len() + 2);
    messages.extend(system.iter().map(|s| Message::system(s.clone())));
    messages.extend(history.iter().cloned());
    messages.push(Message::user(message));

    let mut answer = String::new();
    let mut in_think = false;
    let mut summary = None;
    let events = session
        .generate(Prompt::Chat(&messages), options)
        .map_err(Failure::generation)?;
    for event in events {
        match event.map_err(Failure::generation)? {
            Event::Text(piece) => {
                // The history keeps what the caller saw, outside think spans: the
                // templates drop earlier reasoning anyway.
                if sink.send(EsEventKind::Text, &piece) && !in_think {
                    answer.push_str(&piece);
                }
            }
            Event::ThinkStart => {
                in_think = true;
                sink.send(EsEventKind::ThinkStart, "");
            }
            Event::ThinkEnd => {
                in_think = false;
                sink.send(EsEventKind::ThinkEnd, "");
            }
            Event::Done(s) => summary = Some(s),
            Event::Token { .. } => {}
        }
    }
    let summary = summary.ok_or_else(|| {
        Failure::generation(edgeseek_rs::Error::Internal(
            "generation ended without its summary".into(),
        ))
    })?;
    // Only a turn that completed enters the history: on an error above, the user's
    // message was never added, and the conversation stays as it was.
    history.push(Message::user(message));
    history.push(Message::assistant(answer));
    let name = stop_reason(summary.stop).1;
    *last_summary = Some(summary);
    sink.send(
        EsEventKind::Done,
        name.to_str().expect("stop reason names are ASCII"),
    );
    Ok(())
}
