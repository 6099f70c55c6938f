//! Interactive chat. Streams the answer as it is generated, shows the reasoning span
//! dimmed (or folded with --hide-think), keeps the conversation across turns.
//!
//! cargo run --release --example chat -- [--model FILE] [--hide-think] [--system TEXT]
//!     [--max-tokens N] [--temperature T] [--seed S] [--adapter NAME] [--no-f16]
//!     [--downlevel] [--ctx N] [--expert-cache-mb N|min] [--eviction lru|frequency]
//!     [--prefetch] [--max-resident-mb N]
//! In the chat: /reset starts over, /exit (or Ctrl-D) quits, Ctrl-C stops the answer.

mod common;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{fail, Args};
use edgeseek::Message;
use edgeseek::SamplerOptions;
use edgeseek::{CatalogEntry, Event, GenerateOptions, Model, Prompt, StopReason, DEFAULT_MODEL};

const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

fn main() {
    let mut args = Args::from_env();
    let model_path = args
        .value("--model")
        .map(PathBuf::from)
        .unwrap_or_else(default_model);
    let hide_think = args.flag("--hide-think");
    let system = args.value("--system");
    let d = SamplerOptions::default();
    let sampler = SamplerOptions {
        temperature: args.parsed("--temperature").unwrap_or(d.temperature),
        seed: args.parsed("--seed").unwrap_or(0),
        ..d
    };
    let max_tokens: usize = args.parsed("--max-tokens").unwrap_or(2048);
    let opts = args.load_options();
    args.finish();

    let mut progress = |done: u64, total: u64| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        eprint!(
            "\rloading {} {pct:3}% ({} / {} MiB)",
            model_path.display(),
            done >> 20,
            total >> 20
        );
    };
    let mut model = Model::load_with_progress(&model_path, &opts, &mut progress)
        .unwrap_or_else(|e| fail(&e.to_string()));
    eprintln!(
        "\r{}: ready on {}.{:30}",
        model_path.display(),
        model.device().adapter_name,
        ""
    );
    if opts.max_resident_bytes.is_some() || model.expert_slots().is_some() {
        eprintln!("{}", model.plan().describe());
    }
    eprintln!("/reset starts over, /exit quits, Ctrl-C stops an answer.");

    // Ctrl-C during an answer stops it; Ctrl-C at the prompt quits.
    let cancel = Arc::new(AtomicBool::new(false));
    let generating = Arc::new(AtomicBool::new(false));
    {
        let (cancel, generating) = (cancel.clone(), generating.clone());
        ctrlc::set_handler(move || {
            if generating.load(Ordering::SeqCst) {
                cancel.store(true, Ordering::SeqCst);
            } else {
                std::process::exit(130);
            }
        })
        .unwrap_or_else(|e| fail(&format!("cannot catch Ctrl-C: {e}")));
    }

    let n_ctx = model.n_ctx() as usize;
    let mut session = model.session().unwrap_or_else(|e| fail(&e.to_string()));
    let mut history: Vec<Message> = system.iter().map(Message::system).collect();
    let stdin = std::io::stdin();
    loop {
        print!("\n> ");
        std::io::stdout().flush().ok();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        match line.trim() {
            "" => continue,
            "/exit" => break,
            "/reset" => {
                history.retain(|m| m.role == edgeseek::Role::System);
                println!("(new conversation)");
                continue;
            }
            text => history.push(Message::user(text)),
        }
        // The whole conversation is the prompt: once it outgrows the context, only a
        // new conversation helps. (An encoding error is reported by generate below.)
        if let Ok((ids, _)) = session.encode(Prompt::Chat(&history)) {
            if ids.len() > n_ctx {
                println!(
                    "(the conversation is {} tokens, the context holds {n_ctx}: /reset starts a new one)",
                    ids.len()
                );
                history.pop();
                continue;
            }
        }
        cancel.store(false, Ordering::SeqCst);
        generating.store(true, Ordering::SeqCst);
        let gen_opts = GenerateOptions {
            max_tokens,
            sampler: sampler.clone(),
            cancel: Some(cancel.clone()),
            ..Default::default()
        };
        let answer = stream(&mut session, &history, gen_opts, hide_think);
        generating.store(false, Ordering::SeqCst);
        match answer {
            Ok(text) => history.push(Message::assistant(&text)),
            Err(e) => {
                eprintln!("\nerror: {e}");
                history.pop();
            }
        }
    }
}

/// Streams one answer; returns the reply as the model wrote it, think span included
/// (the R1 template drops earlier think spans from the history itself).
fn stream(
    session: &mut edgeseek::Session<'_>,
    history: &[Message],
    opts: GenerateOptions,
    hide_think: bool,
) -> edgeseek::Result<String> {
    let mut reply = String::new();
    let mut thinking = false;
    let out = &mut std::io::stdout();
    for event in session.generate(Prompt::Chat(history), opts)? {
        match event? {
            Event::ThinkStart => {
                thinking = true;
                if !reply.is_empty() {
                    reply.push_str("<think>");
                }
                print!("{DIM}{}", if hide_think { "(thinking…)" } else { "" });
            }
            Event::ThinkEnd => {
                thinking = false;
                reply.push_str("</think>");
                println!("{RESET}");
            }
            Event::Text(t) => {
                if !(thinking && hide_think) {
                    print!("{t}");
                }
                reply.push_str(&t);
            }
            Event::Token { .. } => {}
            Event::Done(s) => {
                let why = match s.stop {
                    StopReason::Cancelled => " (stopped)",
                    StopReason::MaxTokens => " (token limit)",
                    StopReason::ContextFull => " (context full: /reset)",
                    _ => "",
                };
                print!("{RESET}{why}");
                eprintln!(
                    "\n{DIM}[{} tokens, prefill {:.1} tok/s, decode {:.1} tok/s]{RESET}",
                    s.generated_tokens, s.prefill_tok_s, s.decode_tok_s
                );
            }
        }
        out.flush().ok();
    }
    Ok(reply)
}

/// The catalog's default model under models/, or exactly what to do to get it.
fn default_model() -> PathBuf {
    let entry = CatalogEntry::find(DEFAULT_MODEL).expect("default model is in the catalog");
    let path = PathBuf::from("models").join(entry.file);
    if !path.exists() {
        fail(&format!(
            "no --model given and {} is missing.\nDownload {} (about {:.1} GB) from {}\n\
             and put it at {}, or pass --model FILE (e.g. models/SmolLM2-135M-Instruct.Q4_1.gguf \
             after ./models/fetch-smollm2.sh).",
            path.display(),
            entry.file,
            entry.approx_bytes as f64 / 1e9,
            entry.source,
            path.display()
        ));
    }
    path
}
