//! Scriptable generation: a prompt in, tokens and text out, one JSON object with --json.
//!
//! cargo run --release --example generate -- --model M.gguf
//!     (--prompt TEXT | --prompt - | --prompt-ids 1,2,3) [--raw] [--system TEXT]
//!     [--template NAME] [--max-tokens N] [--temperature T --top-k K
//!     --top-p P --min-p P --repeat-penalty R --seed S] [--top-logprobs K] [--json]
//!     [--adapter NAME] [--no-f16] [--downlevel] [--f32-activations] [--ctx N] [--max-batch N]
//!     [--expert-cache-mb N|min] [--eviction lru|frequency] [--prefetch] [--max-resident-mb N]
//!
//! --prompt applies the model's chat template (--raw: the text as is); --prompt-ids
//! feeds token ids and needs no tokenizer. --max-tokens 0 only tokenizes: no weights are
//! loaded, so it works on a vocabulary-only GGUF.

mod common;

use std::io::Read;
use std::time::Instant;

use common::{fail, Args};
use edgeseek::encode_prompt;
use edgeseek::GgufFile;
use edgeseek::{split_think, ChatTemplate, Message};
use edgeseek::{top_k, Sampler, SamplerOptions};
use edgeseek::{Event, GenerateOptions, LoadOptions, Model, Prompt, StopReason, Tokenizer};
use serde_json::{json, Value};

/// What the command line asks for.
struct Request {
    path: String,
    input: Input,
    max_tokens: usize,
    sampling: SamplerOptions,
    /// How many of the highest logits to report per step.
    top_n: usize,
    json: bool,
}

enum Input {
    Ids(Vec<u32>),
    Text {
        text: String,
        raw: bool,
        system: Option<String>,
        template: Option<ChatTemplate>,
    },
}

/// What a run produced, printed as text or JSON.
#[derive(Default)]
struct Output {
    prompt_ids: Vec<u32>,
    ids: Vec<u32>,
    steps: Vec<(u32, Vec<(u32, f32)>)>,
    text: Option<String>,
    prompt_opened_think: bool,
    /// Why generation ended; None when nothing was asked for (--max-tokens 0), which
    /// is the token limit too.
    stop: Option<StopReason>,
    /// GPU bytes held and the device, when weights were loaded.
    memory: Option<edgeseek::MemoryReport>,
    experts: Option<edgeseek::ExpertStats>,
    /// Resident memory while the model was still loaded.
    rss: Option<edgeseek::Rss>,
    adapter: String,
    f16_kv: bool,
    load_s: f64,
    prefill_tok_s: f64,
    decode_tok_s: f64,
}

fn main() {
    let mut args = Args::from_env();
    let path = args
        .value("--model")
        .unwrap_or_else(|| fail("--model FILE is required"));
    let ids = args.value("--prompt-ids");
    let text = args.value("--prompt");
    let raw = args.flag("--raw");
    let system = args.value("--system");
    let template = args.template();
    let input = match (ids, text) {
        (Some(ids), None) => Input::Ids(parse_ids(&ids)),
        (None, Some(t)) => Input::Text {
            text: read_prompt(t),
            raw,
            system,
            template,
        },
        _ => fail("give either --prompt TEXT (or - for stdin) or --prompt-ids 1,2,3"),
    };
    let d = SamplerOptions::default();
    let sampling = SamplerOptions {
        temperature: args.parsed("--temperature").unwrap_or(0.0),
        top_k: args.parsed("--top-k").unwrap_or(d.top_k),
        top_p: args.parsed("--top-p").unwrap_or(d.top_p),
        min_p: args.parsed("--min-p").unwrap_or(d.min_p),
        repeat_penalty: args.parsed("--repeat-penalty").unwrap_or(d.repeat_penalty),
        repeat_last_n: d.repeat_last_n,
        seed: args.parsed("--seed").unwrap_or(0),
    };
    let max_tokens = args.parsed("--max-tokens").unwrap_or(16);
    let top_n = args.parsed("--top-logprobs").unwrap_or(0);
    let json = args.flag("--json");
    let opts = args.load_options();
    args.finish();
    let req = Request {
        path,
        input,
        max_tokens,
        sampling,
        top_n,
        json,
    };
    match run(&req, &opts) {
        Ok(out) => print(&req, &out),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn parse_ids(s: &str) -> Vec<u32> {
    s.split(',')
        .map(|x| {
            x.trim()
                .parse()
                .unwrap_or_else(|_| fail(&format!("--prompt-ids: cannot read '{x}'")))
        })
        .collect()
}

fn read_prompt(arg: String) -> String {
    if arg != "-" {
        return arg;
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .unwrap_or_else(|e| fail(&format!("reading stdin: {e}")));
    s
}

/// The conversation a text prompt stands for: an optional system message and the user's.
fn messages(system: &Option<String>, text: &str) -> Vec<Message> {
    let mut msgs: Vec<Message> = system.iter().map(Message::system).collect();
    msgs.push(Message::user(text));
    msgs
}

fn run(req: &Request, opts: &LoadOptions) -> edgeseek::Result<Output> {
    if req.max_tokens == 0 {
        return tokenize_only(req);
    }
    let t0 = Instant::now();
    let mut model = Model::load(&req.path, opts)?;
    if opts.max_resident_bytes.is_some() {
        eprintln!("{}", model.plan().describe());
    }
    let load_s = t0.elapsed().as_secs_f64();
    let mut out = match &req.input {
        Input::Ids(ids) => run_ids(&mut model, ids, req)?,
        Input::Text { .. } => run_text(&mut model, req)?,
    };
    out.load_s = load_s;
    out.memory = Some(model.memory());
    out.experts = model.expert_stats();
    out.rss = edgeseek::rss();
    out.adapter = model.device().adapter_name.clone();
    out.f16_kv = model.device().f16;
    Ok(out)
}

/// Only the tokenizer and template: nothing else is read from the file.
fn tokenize_only(req: &Request) -> edgeseek::Result<Output> {
    let (text, raw, system, template) = match &req.input {
        Input::Ids(ids) => {
            let prompt_ids = ids.clone();
            return Ok(Output {
                prompt_ids,
                ..Default::default()
            });
        }
        Input::Text {
            text,
            raw,
            system,
            template,
        } => (text, raw, system, template),
    };
    let file = GgufFile::open(std::path::Path::new(&req.path))?;
    let tok = Tokenizer::from_gguf(&file)?;
    let msgs = messages(system, text);
    let prompt = if *raw {
        Prompt::Raw(text)
    } else {
        Prompt::Chat(&msgs)
    };
    let template = match template {
        Some(t) => Some(t.clone()),
        None => ChatTemplate::from_gguf(&file)?,
    };
    if template.is_none() && !raw {
        let hint = "the model has no chat template we know: pass --template or --raw";
        return Err(edgeseek::Error::Invalid(hint.into()));
    }
    let (prompt_ids, opened) = encode_prompt(&tok, template.as_ref(), prompt)?;
    Ok(Output {
        prompt_ids,
        text: Some(String::new()),
        prompt_opened_think: opened,
        ..Default::default()
    })
}

/// Token ids in and out through the model alone (no tokenizer needed).
fn run_ids(model: &mut Model, prompt: &[u32], req: &Request) -> edgeseek::Result<Output> {
    let n_ctx = model.n_ctx() as usize;
    if prompt.len() > n_ctx {
        return Err(edgeseek::Error::Invalid(format!(
            "the prompt has {} tokens; the context holds {n_ctx} (--ctx)",
            prompt.len()
        )));
    }
    let mut sampler = Sampler::new(req.sampling.clone())?;
    let mut history = prompt.to_vec();
    let mut out = Output {
        prompt_ids: prompt.to_vec(),
        ..Default::default()
    };
    let t1 = Instant::now();
    let mut logits = model.eval(prompt)?.to_vec();
    out.prefill_tok_s = prompt.len() as f64 / t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    // As a Session does: the last token sampled is never evaluated, so it needs no
    // room in the context; a full context ends generation and keeps what it produced.
    let mut stop = StopReason::MaxTokens;
    for i in 0..req.max_tokens {
        let id = sampler.sample(&logits, &history);
        history.push(id);
        out.ids.push(id);
        out.steps.push((id, top_k(&logits, req.top_n)));
        if i + 1 == req.max_tokens {
            break;
        }
        if model.position() as usize >= n_ctx {
            stop = StopReason::ContextFull;
            break;
        }
        logits.copy_from_slice(model.eval(&[id])?);
    }
    out.stop = Some(stop);
    let decoded = out.ids.len().saturating_sub(1);
    out.decode_tok_s = if decoded > 0 {
        decoded as f64 / t2.elapsed().as_secs_f64()
    } else {
        0.0
    };
    Ok(out)
}

/// Text through a session: the chat template, streaming, think spans.
fn run_text(model: &mut Model, req: &Request) -> edgeseek::Result<Output> {
    let Input::Text {
        text,
        raw,
        system,
        template,
    } = &req.input
    else {
        unreachable!()
    };
    let msgs = messages(system, text);
    let prompt = if *raw {
        Prompt::Raw(text)
    } else {
        Prompt::Chat(&msgs)
    };
    let mut session = model.session()?;
    if let Some(t) = template {
        session.set_template(t.clone());
    }
    let (prompt_ids, opened) = session.encode(prompt)?;
    let mut out = Output {
        prompt_ids,
        prompt_opened_think: opened,
        ..Default::default()
    };
    let opts = GenerateOptions {
        max_tokens: req.max_tokens,
        sampler: req.sampling.clone(),
        top_logprobs: req.top_n,
        ..Default::default()
    };
    let mut text = String::new();
    for ev in session.generate(prompt, opts)? {
        match ev? {
            Event::Token { id, top } => {
                out.ids.push(id);
                out.steps.push((id, top));
            }
            Event::Text(t) => {
                if !req.json {
                    print!("{t}");
                    std::io::Write::flush(&mut std::io::stdout()).ok();
                }
                text.push_str(&t);
            }
            // Spans are kept in the text as the model wrote them; split_think separates them.
            Event::ThinkStart if !opened || !text.is_empty() => text.push_str("<think>"),
            Event::ThinkStart => {}
            Event::ThinkEnd => text.push_str("</think>"),
            Event::Done(s) => {
                out.prefill_tok_s = s.prefill_tok_s;
                out.decode_tok_s = s.decode_tok_s;
                out.stop = Some(s.stop);
            }
        }
    }
    out.text = Some(text);
    Ok(out)
}

fn print(req: &Request, out: &Output) {
    let stop = out.stop.unwrap_or(StopReason::MaxTokens);
    if !req.json {
        if out.text.is_none() {
            let ids: Vec<String> = out.ids.iter().map(|i| i.to_string()).collect();
            println!("{}", ids.join(" "));
        } else {
            println!();
        }
        // The token limit and the model's own end need no explanation.
        if !matches!(stop, StopReason::MaxTokens | StopReason::EndOfGeneration) {
            eprintln!(
                "stopped after {} tokens: {}",
                out.ids.len(),
                stop_name(stop).replace('_', " ")
            );
        }
        eprintln!(
            "prefill {} tokens: {:.1} tok/s, decode: {:.1} tok/s",
            out.prompt_ids.len(),
            out.prefill_tok_s,
            out.decode_tok_s
        );
        return;
    }
    let rss = out.rss.or_else(edgeseek::rss).unwrap_or_default();
    let path = std::path::Path::new(&req.path);
    let (files, file_bytes) = common::model_files(path);
    let steps: Vec<Value> = out
        .steps
        .iter()
        .map(|(id, top)| json!({ "id": id, "top": top }))
        .collect();
    let mut j = json!({
        "ids": out.ids,
        "prompt_ids": out.prompt_ids,
        "steps": steps,
        "prompt_tokens": out.prompt_ids.len(),
        "stop": stop_name(stop),
        "load_s": out.load_s,
        "prefill_tok_s": out.prefill_tok_s,
        "decode_tok_s": out.decode_tok_s,
        "peak_rss_bytes": rss.peak,
        "anon_rss_bytes": rss.anon,
        "file_rss_bytes": rss.file,
        "model_file_rss_bytes": common::model_file_rss(&files),
        "model_file_bytes": file_bytes,
    });
    if let Some(m) = &out.memory {
        j["adapter"] = json!(out.adapter);
        j["f16_kv"] = json!(out.f16_kv);
        common::add_memory_json(&mut j, m, out.experts.as_ref());
    }
    if let Some(text) = &out.text {
        let split = split_think(text, out.prompt_opened_think);
        j["text"] = json!(text);
        j["reasoning"] = json!(split.reasoning);
        j["answer"] = json!(split.answer);
    }
    println!("{j}");
}

/// The JSON name of a stop reason: its variant in snake case.
fn stop_name(stop: StopReason) -> &'static str {
    match stop {
        StopReason::MaxTokens => "max_tokens",
        StopReason::EndOfGeneration => "end_of_generation",
        StopReason::StopString => "stop_string",
        StopReason::Cancelled => "cancelled",
        StopReason::ContextFull => "context_full",
    }
}
