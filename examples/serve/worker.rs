//! The model's thread: one model, one session, requests served one at a time in the
//! order they were read (a FIFO queue).
//!
//! Why a queue and not interleaved sessions: the library keeps one KV cache per loaded
//! model, so two conversations at once would need the model loaded twice (its weights
//! twice in memory) — the opposite of what a small machine needs. One session also
//! keeps the KV cache of the last conversation: a client that continues it (the usual
//! chat turn) only evaluates the new tokens.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::Arc;

use edgeseek::{ChatTemplate, Event, GenerateOptions, Model, Prompt, Summary};

use crate::openai::ApiError;

/// What to generate from.
pub enum JobInput {
    Chat(Vec<edgeseek::Message>),
    Text(String),
}

impl JobInput {
    /// The request parameter the input came from, for error objects.
    fn param(&self) -> &'static str {
        match self {
            JobInput::Chat(_) => "messages",
            JobInput::Text(_) => "prompt",
        }
    }
}

pub struct Job {
    pub input: JobInput,
    pub opts: GenerateOptions,
    /// Evaluate the whole prompt, whatever the cache holds: the client gave a seed and
    /// expects the same request to give the same text (Session::clear_cache says why a
    /// cached prefix could change it).
    pub repeatable: bool,
    pub cancel: Arc<Cancel>,
    pub reply: Sender<Reply>,
}

/// A job's cancellation, shared by its connection and the model thread.
pub struct Cancel {
    /// Set when the client is gone; the library checks it before every token.
    pub flag: Arc<AtomicBool>,
    /// Tokens sampled so far (the model thread counts them).
    sampled: AtomicU64,
    /// `sampled` when the connection saw its client gone; NOT_SEEN until then.
    sampled_when_gone: AtomicU64,
}

const NOT_SEEN: u64 = u64::MAX;

impl Default for Cancel {
    fn default() -> Self {
        Cancel {
            flag: Arc::default(),
            sampled: AtomicU64::new(0),
            sampled_when_gone: AtomicU64::new(NOT_SEEN),
        }
    }
}

impl Cancel {
    /// The client has gone: note how far generation was, then stop it.
    pub fn client_gone(&self) {
        let _ = self.sampled_when_gone.compare_exchange(
            NOT_SEEN,
            self.sampled.load(Ordering::SeqCst),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.flag.store(true, Ordering::SeqCst);
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// What the model thread tells the connection, in this order: `Started` or `Failed`
/// first, then events, `Done` last (or `Failed` if generation broke).
pub enum Reply {
    Started,
    ThinkStart,
    ThinkEnd,
    Text(String),
    Done(Summary),
    Failed(ApiError),
}

/// Counters for `/health` (and the tests).
#[derive(Default)]
pub struct Stats {
    /// Jobs queued and not yet started.
    pub queued: AtomicUsize,
    /// A job is being generated.
    pub running: AtomicBool,
    pub completed: AtomicU64,
    pub cancelled: AtomicU64,
    pub failed: AtomicU64,
    /// The most tokens a cancelled job sampled after its connection saw the client gone:
    /// how promptly a disconnect stops generation (the token being evaluated at that
    /// moment is the one that can still come).
    pub max_tokens_after_disconnect: AtomicU64,
    /// Tokens the last cancelled job generated in all.
    pub last_cancelled_generated: AtomicU64,
}

/// The queue's sending end.
#[derive(Clone)]
pub struct Queue {
    jobs: SyncSender<Job>,
    pub stats: Arc<Stats>,
}

impl Queue {
    /// Queues a job; a full queue is a 503 for the client to retry.
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        self.stats.queued.fetch_add(1, Ordering::SeqCst);
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.stats.queued.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    TrySendError::Full(_) => {
                        ApiError::server(503, "the server's queue is full; retry later")
                    }
                    TrySendError::Disconnected(_) => {
                        ApiError::server(500, "the model thread has stopped")
                    }
                })
            }
        }
    }
}

/// Starts the model thread on a loaded model, rendering chats with `template` (None:
/// the file's own); `capacity` jobs may wait.
pub fn start(model: Model, template: Option<ChatTemplate>, capacity: usize) -> Queue {
    let (jobs, rx) = mpsc::sync_channel(capacity);
    let stats = Arc::new(Stats::default());
    let thread_stats = stats.clone();
    std::thread::Builder::new()
        .name("model".into())
        .spawn(move || run(model, template, rx, &thread_stats))
        .expect("spawning the model thread");
    Queue { jobs, stats }
}

fn run(mut model: Model, template: Option<ChatTemplate>, jobs: Receiver<Job>, stats: &Stats) {
    let n_ctx = model.n_ctx() as usize;
    loop {
        let mut session = match model.session() {
            Ok(s) => s,
            Err(e) => {
                // Checked at startup (main makes a session before serving).
                eprintln!("serve: {e}");
                std::process::exit(1);
            }
        };
        if let Some(t) = &template {
            session.set_template(t.clone());
        }
        // A panic in a generation is a bug in edgeseek; it fails that request (its
        // connection sees the reply channel close and answers 500) and the server goes
        // on with a fresh session rather than dying with every queued request.
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for job in jobs.iter() {
                serve_job(&mut session, job, stats, n_ctx);
            }
        }));
        if served.is_ok() {
            return; // every sender is gone: the server is shutting down
        }
        stats.failed.fetch_add(1, Ordering::SeqCst);
        stats.running.store(false, Ordering::SeqCst);
        eprintln!("serve: a generation panicked (a bug in edgeseek); starting a new session");
    }
}

/// One request, start to end: checks, generation, replies, counts.
fn serve_job(session: &mut edgeseek::Session<'_>, job: Job, stats: &Stats, n_ctx: usize) {
    stats.queued.fetch_sub(1, Ordering::SeqCst);
    if job.cancel.is_set() {
        // The client left while the job waited.
        stats.cancelled.fetch_add(1, Ordering::SeqCst);
        return;
    }
    if job.repeatable {
        session.clear_cache();
    }
    let prompt = match &job.input {
        JobInput::Chat(messages) => Prompt::Chat(messages),
        JobInput::Text(text) => Prompt::Raw(text),
    };
    // Tokenized here, once, so that a prompt over the context gets OpenAI's code.
    let (ids, opened_think) = match session.encode(prompt) {
        Ok(encoded) => encoded,
        Err(e) => {
            let error = ApiError::invalid(Some(job.input.param()), e.to_string());
            return fail(&job, stats, error);
        }
    };
    if ids.len() > n_ctx {
        let error = ApiError::invalid(
            Some(job.input.param()),
            format!(
                "the prompt has {} tokens; this model's context holds {n_ctx}",
                ids.len()
            ),
        )
        .with_code("context_length_exceeded");
        return fail(&job, stats, error);
    }
    let mut opts = job.opts.clone();
    opts.starts_in_think |= opened_think;
    let generation = match session.generate(Prompt::Ids(&ids), opts) {
        Ok(g) => g,
        Err(e) => return fail(&job, stats, error_reply(e)),
    };
    stats.running.store(true, Ordering::SeqCst);
    if job.reply.send(Reply::Started).is_err() {
        job.cancel.client_gone();
    }
    for event in generation {
        let reply = match event {
            Ok(Event::Token { .. }) => {
                job.cancel.sampled.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            Ok(Event::Text(t)) => Reply::Text(t),
            Ok(Event::ThinkStart) => Reply::ThinkStart,
            Ok(Event::ThinkEnd) => Reply::ThinkEnd,
            Ok(Event::Done(s)) => {
                // Counted before the client hears of it: a client that reads /health
                // after its answer sees its request counted.
                stats.running.store(false, Ordering::SeqCst);
                if s.stop == edgeseek::StopReason::Cancelled {
                    record_cancel(stats, &job.cancel, s.generated_tokens as u64);
                } else {
                    stats.completed.fetch_add(1, Ordering::SeqCst);
                }
                Reply::Done(s)
            }
            Err(e) => {
                // The Generation ends after an error.
                stats.running.store(false, Ordering::SeqCst);
                fail(&job, stats, error_reply(e));
                break;
            }
        };
        if job.reply.send(reply).is_err() {
            // The connection is gone: stop after this token.
            job.cancel.client_gone();
        }
    }
}

fn record_cancel(stats: &Stats, cancel: &Cancel, generated: u64) {
    stats.cancelled.fetch_add(1, Ordering::SeqCst);
    stats
        .last_cancelled_generated
        .store(generated, Ordering::SeqCst);
    let seen = cancel.sampled_when_gone.load(Ordering::SeqCst);
    if seen != NOT_SEEN {
        stats
            .max_tokens_after_disconnect
            .fetch_max(generated.saturating_sub(seen), Ordering::SeqCst);
    }
}

fn fail(job: &Job, stats: &Stats, error: ApiError) {
    stats.failed.fetch_add(1, Ordering::SeqCst);
    let _ = job.reply.send(Reply::Failed(error));
}

/// An edgeseek error as the client sees it: its input's fault (400) or ours (500).
fn error_reply(e: edgeseek::Error) -> ApiError {
    match e {
        edgeseek::Error::Invalid(_) => ApiError::invalid(None, e.to_string()),
        _ => ApiError::server(500, e.to_string()),
    }
}
