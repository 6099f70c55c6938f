//! GPU time of one weight-matrix kernel per weight format, alone: the decode matvec (1
//! token) and the prefill matmul (--tokens N), on random valid blocks, timed with
//! timestamp queries. What docs/performance.md's per-format figures come from.
//!
//!   cargo run --release --example kernel_bench -- [--formats all|Q4_0,Q6_K,...]
//!       [--rows 8960] [--cols 1536] [--tokens 1] [--reps 10] [--json]
//!       [--weights auto|buffer|texture] [--rows-order auto|file|groups|groups=N]
//!       [--adapter NAME] [--no-f16] [--downlevel] [--f32-activations] [--buffer-weights]
//!
//! --weights: where the 8-bit kernels read the weights from: as a model's load puts
//! them (auto: textures on CPU-backed devices), or a buffer or a texture for every
//! format with an 8-bit kernel.
//! --rows-order: the order of the weight rows the 8-bit kernels read: as a model's load
//! lays them out (auto: groups of the format's size on CPU-backed devices), the file's,
//! or groups of 64 (or N) rows for every format with an 8-bit kernel.
//!
//! Needs an adapter with timestamp queries (lavapipe has them). Weight bytes over GPU
//! time is the bandwidth the kernel reaches: a decode matvec reads every weight once.

mod common;

use common::{fail, Args};
use edgeseek::kernel_bench::{KernelBench, MAX_TOKENS};
use edgeseek::WeightFormat;

fn main() {
    let mut args = Args::from_env();
    let formats = args.value("--formats").unwrap_or_else(|| "all".into());
    let rows: u32 = args.parsed("--rows").unwrap_or(8960);
    let cols: u32 = args.parsed("--cols").unwrap_or(1536);
    let tokens: u32 = args.parsed("--tokens").unwrap_or(1);
    let reps: u32 = args.parsed("--reps").unwrap_or(10);
    let json = args.flag("--json");
    let textures = match args.value("--weights").as_deref() {
        None | Some("auto") => None,
        Some("buffer") => Some(false),
        Some("texture") => Some(true),
        Some(other) => fail(&format!(
            "--weights: auto, buffer or texture, not '{other}'"
        )),
    };
    let groups = match args.value("--rows-order").as_deref() {
        None | Some("auto") => None,
        Some("file") => Some(1),
        Some("groups") => Some(64),
        Some(other) => match other.strip_prefix("groups=").map(str::parse::<u32>) {
            Some(Ok(n)) if n.is_power_of_two() && (2..=64).contains(&n) => Some(n),
            _ => fail(&format!(
                "--rows-order: auto, file, groups or groups=N (N = 2, 4, ... 64), not '{other}'"
            )),
        },
    };
    let device = args.load_options().device;
    args.finish();
    if textures == Some(true) && device.f32_activations {
        fail("--weights texture: the f32 kernels (--f32-activations) read buffers only");
    }
    if groups.is_some_and(|n| n > 1) && device.f32_activations {
        fail("--rows-order groups: the f32 kernels (--f32-activations) read the file's order only");
    }
    if !(1..=MAX_TOKENS).contains(&tokens) || reps == 0 || rows == 0 {
        fail(&format!(
            "--tokens 1..={MAX_TOKENS}, --reps and --rows above 0"
        ));
    }
    let formats: Vec<WeightFormat> = if formats == "all" {
        WeightFormat::ALL.to_vec()
    } else {
        formats
            .split(',')
            .map(|name| {
                WeightFormat::ALL
                    .into_iter()
                    .find(|f| f.name().eq_ignore_ascii_case(name.trim()))
                    .unwrap_or_else(|| fail(&format!("--formats: unknown format '{name}'")))
            })
            .collect()
    };
    let mut bench = KernelBench::new(&device).unwrap_or_else(|e| {
        eprintln!("kernel_bench: {e}");
        std::process::exit(1)
    });
    if !json {
        println!(
            "{}: {rows} x {cols}, {tokens} token(s), median of {reps}",
            bench.adapter()
        );
        println!(
            "{:<8} {:<22} {:>10} {:>10} {:>9} {:>12}",
            "format", "kernel", "MiB", "GPU us", "GB/s", "quantize us"
        );
    }
    let mut rows_json = Vec::new();
    for f in formats {
        if cols % f.block_elems() != 0 {
            eprintln!(
                "{}: skipped, {cols} columns are not whole {}-weight blocks",
                f.name(),
                f.block_elems()
            );
            continue;
        }
        let t = bench
            .time_mat(f, [rows, cols], tokens, reps, textures, groups)
            .unwrap_or_else(|e| {
                eprintln!("kernel_bench: {}: {e}", f.name());
                std::process::exit(1)
            });
        let gbps = t.weight_bytes as f64 / t.mat_s * 1e-9;
        if json {
            rows_json.push(serde_json::json!({
                "format": f.name(),
                "kernel": t.kernel,
                "weight_bytes": t.weight_bytes,
                "gpu_s": t.mat_s,
                "weight_gb_s": gbps,
                "quantize_s": t.quantize_s,
            }));
        } else {
            println!(
                "{:<8} {:<22} {:>10.2} {:>10.1} {:>9.2} {:>12.1}",
                f.name(),
                t.kernel,
                t.weight_bytes as f64 / (1 << 20) as f64,
                t.mat_s * 1e6,
                gbps,
                t.quantize_s * 1e6
            );
        }
    }
    if json {
        let out = serde_json::json!({
            "adapter": bench.adapter(),
            "rows": rows,
            "cols": cols,
            "tokens": tokens,
            "reps": reps,
            "kernels": rows_json,
        });
        println!("{out}");
    }
}
