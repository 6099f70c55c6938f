//! Speed and memory of one model on one device: load time, time to first token,
//! prefill and decode tok/s (median, min, max over repeats), resident memory, and with
//! --profile the GPU time of every kernel in one prefill step and one decode step.
//!
//! cargo run --release --example bench -- --model M.gguf [--prompt-tokens 64]
//!     [--gen-tokens 32] [--repeat 3] [--json] [--profile]
//!     [--adapter NAME] [--no-f16] [--downlevel] [--f32-activations] [--ctx N] [--max-batch N]
//!     [--expert-cache-mb N|min] [--eviction lru|frequency] [--prefetch]
//!     [--max-resident-mb N]
//!
//! The prompt is fixed pseudo-random token ids, decoding is greedy: the numbers do not
//! depend on a tokenizer or on sampling.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use common::{fail, Args};
use edgeseek::argmax;
use edgeseek::DispatchTime;
use edgeseek::{ExpertStats, Model};
use serde_json::{json, Value};

struct Run {
    prefill_tok_s: f64,
    decode_tok_s: f64,
    ttft_s: f64,
    /// Expert cache counters of the decode part (MoE models).
    experts: Option<ExpertStats>,
    /// Dense weight bytes streamed per decoded token (under --max-resident-mb).
    dense_streamed_per_token: u64,
    /// FNV-1a over the bits of the logits every eval of the run returned (the prefill's
    /// last position and each decode step): equal digests at different memory budgets
    /// mean bitwise-equal logits.
    logits_digest: u64,
}

fn main() {
    let mut args = Args::from_env();
    let path = args
        .value("--model")
        .unwrap_or_else(|| fail("--model FILE is required"));
    let prompt_tokens: usize = args.parsed("--prompt-tokens").unwrap_or(64);
    let gen_tokens: usize = args.parsed("--gen-tokens").unwrap_or(32);
    let repeat: usize = args.parsed("--repeat").unwrap_or(3);
    let json = args.flag("--json");
    let profile = args.flag("--profile");
    let mut opts = args.load_options();
    args.finish();
    if prompt_tokens == 0 || gen_tokens == 0 || repeat == 0 {
        fail("--prompt-tokens, --gen-tokens and --repeat must be at least 1");
    }
    opts.n_ctx = Some(opts.n_ctx.unwrap_or((prompt_tokens + gen_tokens) as u32));
    if let Err(e) = bench(
        &path,
        prompt_tokens,
        gen_tokens,
        repeat,
        json,
        profile,
        &opts,
    ) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn bench(
    path: &str,
    prompt_tokens: usize,
    gen_tokens: usize,
    repeat: usize,
    json: bool,
    profile: bool,
    opts: &edgeseek::LoadOptions,
) -> edgeseek::Result<()> {
    let t = Instant::now();
    let mut model = Model::load(path, opts)?;
    let load_s = t.elapsed().as_secs_f64();
    let prompt = prompt_ids(model.config().n_vocab, prompt_tokens);

    let mut runs = Vec::new();
    for _ in 0..repeat {
        runs.push(one_run(&mut model, &prompt, gen_tokens)?);
    }
    let profiles = if profile {
        model.reset();
        let batch = prompt.len().min(opts.max_batch as usize);
        let prefill = model.eval_profiled(&prompt[..batch])?;
        let decode = model.eval_profiled(&[prompt[0]])?;
        Some((by_kernel(&prefill), by_kernel(&decode)))
    } else {
        None
    };
    let rss = edgeseek::rss().unwrap_or_default();
    let mem = model.memory();
    let (_, file_bytes) = common::model_files(std::path::Path::new(path));
    // Decode counters summed over the repeats.
    let experts = runs
        .iter()
        .filter_map(|r| r.experts)
        .reduce(|a, b| a.add(&b));
    let stat = |f: fn(&Run) -> f64| Stat::of(runs.iter().map(f).collect());
    let (prefill, decode, ttft) = (
        stat(|r| r.prefill_tok_s),
        stat(|r| r.decode_tok_s),
        stat(|r| r.ttft_s),
    );
    let digests: Vec<String> = runs
        .iter()
        .map(|r| format!("{:016x}", r.logits_digest))
        .collect();

    if !json {
        println!("{path} on {}", model.device().adapter_name);
        println!(
            "load {load_s:.2} s, time to first token {:.3} s (median)",
            ttft.median
        );
        println!("prefill {prompt_tokens} tokens: {}", prefill.text("tok/s"));
        println!("decode {gen_tokens} tokens: {}", decode.text("tok/s"));
        println!("logits digest per run: {}", digests.join(" "));
        println!(
            "GPU: weights {} MiB, expert cache {} MiB, KV {} MiB, scratch {} MiB; anonymous RSS {} MiB ({:.1}% of the {} MiB file), peak RSS {} MiB",
            mem.weights >> 20,
            mem.expert_cache >> 20,
            mem.kv_cache >> 20,
            mem.scratch >> 20,
            rss.anon >> 20,
            100.0 * rss.anon as f64 / file_bytes.max(1) as f64,
            file_bytes >> 20,
            rss.peak >> 20
        );
        println!("{}", model.plan().describe());
        if let Some(r) = runs.first().filter(|r| r.dense_streamed_per_token > 0) {
            println!(
                "dense weights streamed per decoded token: {:.1} MiB",
                r.dense_streamed_per_token as f64 / (1 << 20) as f64
            );
        }
        if let Some((slots, all)) = model.expert_slots() {
            println!("expert cache: {slots} slots for {all} experts");
        }
        if let Some(e) = &experts {
            let n = e.tokens.max(1) as f64;
            println!(
                "experts (decode): hit rate {:.1}%, {:.1} MiB read and {:.1} ms stalled per token, {} evictions",
                100.0 * e.hit_rate(),
                e.bytes_read as f64 / n / (1 << 20) as f64,
                e.stall_ns as f64 / n * 1e-6,
                e.evictions
            );
            if e.predicted > 0 {
                println!(
                    "prefetch: {:.1}% of predicted experts chosen, {} loaded ahead ({} used), {:.1} ms per token loading ahead",
                    100.0 * e.prediction_accuracy(),
                    e.prefetched,
                    e.prefetch_used,
                    e.prefetch_ns as f64 / n * 1e-6
                );
            }
        }
        if let Some((p, d)) = &profiles {
            print_profile("prefill step", p);
            print_profile("decode step", d);
        }
        return Ok(());
    }
    let plan = model.plan();
    let mut j = json!({
        "model": path,
        "adapter": model.device().adapter_name,
        "prompt_tokens": prompt_tokens,
        "gen_tokens": gen_tokens,
        "repeat": repeat,
        "load_s": load_s,
        "ttft_s": ttft.json(),
        "prefill_tok_s": prefill.json(),
        "decode_tok_s": decode.json(),
        "anon_rss_bytes": rss.anon,
        "peak_rss_bytes": rss.peak,
        "model_file_bytes": file_bytes,
        "plan": {
            "budget_bytes": plan.budget,
            "dense_resident_bytes": plan.dense_resident,
            "dense_streamed_bytes_per_token": plan.dense_streamed,
            "stream_buffers_bytes": plan.stream_buffers,
            "streamed_layers": plan.streamed_layers.len(),
            "output_streamed": plan.output_streamed,
        },
        "dense_streamed_per_token": runs.iter().map(|r| r.dense_streamed_per_token).max().unwrap_or(0),
        "logits_digest": digests,
    });
    common::add_memory_json(&mut j, &mem, experts.as_ref());
    if let Some((p, d)) = &profiles {
        j["profile"] = json!({ "prefill": profile_json(p), "decode": profile_json(d) });
    }
    println!("{j}");
    Ok(())
}

/// Prefill the prompt, take the greedy token, decode `gen_tokens - 1` more.
fn one_run(model: &mut Model, prompt: &[u32], gen_tokens: usize) -> edgeseek::Result<Run> {
    model.reset();
    let t = Instant::now();
    let logits = model.eval(prompt)?;
    let mut next = argmax(logits);
    let mut digest = fnv1a(FNV_OFFSET, logits);
    let prefill_s = t.elapsed().as_secs_f64();
    model.reset_expert_stats();
    let streamed0 = model.bytes_streamed();
    let t = Instant::now();
    for _ in 1..gen_tokens {
        let logits = model.eval(&[next])?;
        next = argmax(logits);
        // Inside the timing: one multiply per logit (a word-wise FNV), well under a
        // millisecond for 129k logits against the step's hundreds.
        digest = fnv1a(digest, logits);
    }
    let decode_s = t.elapsed().as_secs_f64();
    let experts = model.expert_stats();
    let decoded = gen_tokens - 1;
    let streamed = model.bytes_streamed() - streamed0;
    Ok(Run {
        prefill_tok_s: prompt.len() as f64 / prefill_s,
        decode_tok_s: if decoded > 0 {
            decoded as f64 / decode_s
        } else {
            0.0
        },
        ttft_s: prefill_s,
        experts,
        dense_streamed_per_token: streamed / decoded.max(1) as u64,
        logits_digest: digest,
    })
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a taking a logit's 32 bits at a time (not bytewise: a quarter of the multiplies).
fn fnv1a(mut h: u64, logits: &[f32]) -> u64 {
    for v in logits {
        h = (h ^ u64::from(v.to_bits())).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Deterministic ids away from the special tokens at both ends of most vocabularies.
fn prompt_ids(n_vocab: u32, n: usize) -> Vec<u32> {
    let span = u64::from(n_vocab.saturating_sub(300).max(1));
    (0..n as u64)
        .map(|i| (100 + (i * 7919 + 13) % span) as u32)
        .collect()
}

struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

impl Stat {
    fn of(mut v: Vec<f64>) -> Stat {
        v.sort_by(f64::total_cmp);
        Stat {
            median: v[v.len() / 2],
            min: v[0],
            max: v[v.len() - 1],
        }
    }
    fn text(&self, unit: &str) -> String {
        format!(
            "{:.2} {unit} (median; min {:.2}, max {:.2})",
            self.median, self.min, self.max
        )
    }
    fn json(&self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }
}

/// GPU time summed per kernel role: "blk.7.ffn_down[1]" counts as "ffn_down".
fn by_kernel(times: &[DispatchTime]) -> Vec<(String, usize, f64)> {
    let mut m: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for t in times {
        let mut role = t.name.as_str();
        if let Some(rest) = role.strip_prefix("blk.") {
            role = rest.split_once('.').map_or(rest, |(_, r)| r);
        }
        let role = role.split('[').next().unwrap_or(role);
        let e = m.entry(role.to_string()).or_default();
        e.0 += 1;
        e.1 += t.ns;
    }
    let mut v: Vec<(String, usize, f64)> =
        m.into_iter().map(|(k, (c, ns))| (k, c, ns / 1e6)).collect();
    v.sort_by(|a, b| b.2.total_cmp(&a.2));
    v
}

fn print_profile(what: &str, rows: &[(String, usize, f64)]) {
    let total: f64 = rows.iter().map(|r| r.2).sum();
    println!("\nGPU time per kernel, one {what}: {total:.2} ms");
    println!(
        "  {:<16} {:>6} {:>10} {:>7}",
        "kernel", "calls", "ms", "share"
    );
    for (k, calls, ms) in rows {
        println!(
            "  {k:<16} {calls:>6} {ms:>10.3} {:>6.1}%",
            100.0 * ms / total.max(1e-12)
        );
    }
}

fn profile_json(rows: &[(String, usize, f64)]) -> Value {
    rows.iter()
        .map(|(k, c, ms)| json!({ "kernel": k, "calls": c, "ms": ms }))
        .collect()
}
