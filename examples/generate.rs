//! Scriptable generation: token ids in, token ids (and their top logits) out.
//!
//! cargo run --release --example generate -- --model M.gguf --prompt-ids 1,2,3 \
//!     --max-tokens 16 [--temperature T --top-k K --top-p P --min-p P --repeat-penalty R
//!     --seed S] [--top-logprobs K] [--json]
//!     [--adapter NAME] [--no-f16] [--downlevel] [--ctx N] [--max-batch N]

mod common;

use std::time::Instant;

use common::{fail, Args};
use edgeseek::sampler::{top_k, Sampler, SamplerOptions};
use edgeseek::Model;

struct Step {
    id: u32,
    top: Vec<(u32, f32)>,
}

fn main() {
    let mut args = Args::from_env();
    let model_path = args
        .value("--model")
        .unwrap_or_else(|| fail("--model FILE is required"));
    let prompt: Vec<u32> = args
        .value("--prompt-ids")
        .unwrap_or_else(|| fail("--prompt-ids 1,2,3 is required"))
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| fail(&format!("--prompt-ids: cannot read '{s}'")))
        })
        .collect();
    let max_tokens: usize = args.parsed("--max-tokens").unwrap_or(16);
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
    let top_n: usize = args.parsed("--top-logprobs").unwrap_or(0);
    let json = args.flag("--json");
    let opts = args.load_options();
    args.finish();
    let req = Request {
        path: model_path,
        prompt,
        max_tokens,
        sampling,
        top_n,
        json,
    };
    if let Err(e) = run(&req, &opts) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// What to generate, from the command line.
struct Request {
    path: String,
    prompt: Vec<u32>,
    max_tokens: usize,
    sampling: SamplerOptions,
    /// How many of the highest logits to report per step.
    top_n: usize,
    json: bool,
}

fn run(req: &Request, opts: &edgeseek::LoadOptions) -> edgeseek::Result<()> {
    let Request {
        path,
        prompt,
        max_tokens,
        top_n,
        json,
        ..
    } = req;
    let (path, prompt, max_tokens, top_n, json) =
        (path.as_str(), &prompt[..], *max_tokens, *top_n, *json);
    let t0 = Instant::now();
    let mut model = Model::load(path, opts)?;
    let load_s = t0.elapsed().as_secs_f64();
    let mut sampler = Sampler::new(req.sampling.clone())?;
    let mut history = prompt.to_vec();
    let mut steps: Vec<Step> = Vec::with_capacity(max_tokens);

    let t1 = Instant::now();
    let mut logits = model.eval(prompt)?.to_vec();
    let prefill_s = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    for i in 0..max_tokens {
        let id = sampler.sample(&logits, &history);
        history.push(id);
        steps.push(Step {
            id,
            top: top_k(&logits, top_n),
        });
        if !json {
            print!("{id} ");
        }
        if i + 1 < max_tokens {
            logits.copy_from_slice(model.eval(&[id])?);
        }
    }
    let decode_s = t2.elapsed().as_secs_f64();
    let decoded = max_tokens.saturating_sub(1);
    let rss = edgeseek::process::rss().unwrap_or_default();
    let model_file_rss = edgeseek::process::file_rss(std::path::Path::new(path)).unwrap_or(0);
    if !json {
        println!();
        eprintln!(
            "prefill {} tokens: {:.1} tok/s, decode {decoded} tokens: {:.1} tok/s",
            prompt.len(),
            prompt.len() as f64 / prefill_s,
            decoded as f64 / decode_s.max(1e-9)
        );
        return Ok(());
    }
    let mem = model.memory();
    let dev = model.device();
    let ids: Vec<String> = steps.iter().map(|s| s.id.to_string()).collect();
    let steps_json: Vec<String> = steps
        .iter()
        .map(|s| {
            let top: Vec<String> = s
                .top
                .iter()
                .map(|(i, l)| format!("[{i},{}]", json_f32(*l)))
                .collect();
            format!("{{\"id\":{},\"top\":[{}]}}", s.id, top.join(","))
        })
        .collect();
    println!(
        "{{\"ids\":[{}],\"steps\":[{}],\"prompt_tokens\":{},\"load_s\":{:.3},\"prefill_tok_s\":{:.3},\
         \"decode_tok_s\":{:.3},\"peak_rss_bytes\":{},\"anon_rss_bytes\":{},\"file_rss_bytes\":{},\
         \"model_file_rss_bytes\":{},\"model_file_bytes\":{},\
         \"gpu_weights_bytes\":{},\"gpu_kv_bytes\":{},\"gpu_scratch_bytes\":{},\
         \"adapter\":\"{}\",\"f16_kv\":{}}}",
        ids.join(","),
        steps_json.join(","),
        prompt.len(),
        load_s,
        prompt.len() as f64 / prefill_s,
        if decoded > 0 { decoded as f64 / decode_s } else { 0.0 },
        rss.peak,
        rss.anon,
        rss.file,
        model_file_rss,
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        mem.weights,
        mem.kv_cache,
        mem.scratch,
        dev.adapter_name.replace('"', "'"),
        dev.f16
    );
    Ok(())
}

fn json_f32(v: f32) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}
