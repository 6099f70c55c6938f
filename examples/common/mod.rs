//! Flags every example shares, parsed without a CLI crate.

use edgeseek::{DeviceOptions, Eviction, ExpertBudget, LoadOptions};

/// Command-line arguments as `--name value` pairs and bare `--flag`s.
pub struct Args {
    items: Vec<String>,
}

impl Args {
    pub fn from_env() -> Args {
        Args {
            items: std::env::args().skip(1).collect(),
        }
    }

    /// The value after `--name`, removed from the list.
    pub fn value(&mut self, name: &str) -> Option<String> {
        let i = self.items.iter().position(|a| a == name)?;
        if i + 1 >= self.items.len() {
            fail(&format!("{name} needs a value"));
        }
        self.items.remove(i);
        Some(self.items.remove(i))
    }

    pub fn parsed<T: std::str::FromStr>(&mut self, name: &str) -> Option<T> {
        let v = self.value(name)?;
        Some(
            v.parse()
                .unwrap_or_else(|_| fail(&format!("{name}: cannot read '{v}'"))),
        )
    }

    pub fn flag(&mut self, name: &str) -> bool {
        match self.items.iter().position(|a| a == name) {
            Some(i) => {
                self.items.remove(i);
                true
            }
            None => false,
        }
    }

    /// Device and load flags: --adapter NAME, --no-f16, --downlevel, --f32-activations,
    /// --buffer-weights, --ctx N,
    /// --max-batch N, --expert-cache-mb N|min (decimals allowed), --eviction lru|frequency, --prefetch,
    /// --max-resident-mb N (decimals allowed).
    pub fn load_options(&mut self) -> LoadOptions {
        let mut o = LoadOptions {
            device: DeviceOptions {
                adapter: self.value("--adapter"),
                no_f16: self.flag("--no-f16"),
                downlevel: self.flag("--downlevel"),
                f32_activations: self.flag("--f32-activations"),
                buffer_weights: self.flag("--buffer-weights"),
            },
            ..LoadOptions::default()
        };
        o.n_ctx = self.parsed("--ctx");
        if let Some(b) = self.parsed("--max-batch") {
            o.max_batch = b;
        }
        if let Some(v) = self.value("--expert-cache-mb") {
            o.expert_cache_bytes = match v.as_str() {
                "min" => ExpertBudget::Min,
                mb => match mb.parse::<f64>() {
                    Ok(mb) if mb.is_finite() && mb >= 0.0 => {
                        ExpertBudget::Bytes((mb * 1024.0 * 1024.0) as u64)
                    }
                    _ => fail(&format!(
                        "--expert-cache-mb: '{v}' is not a size in MiB or 'min'"
                    )),
                },
            };
        }
        o.prefetch = self.flag("--prefetch");
        if let Some(v) = self.value("--max-resident-mb") {
            o.max_resident_bytes = match v.parse::<f64>() {
                Ok(mb) if mb.is_finite() && mb > 0.0 => Some((mb * 1024.0 * 1024.0) as u64),
                _ => fail(&format!("--max-resident-mb: '{v}' is not a size in MiB")),
            };
        }
        if let Some(v) = self.value("--eviction") {
            o.eviction = match v.as_str() {
                "lru" => Eviction::Lru,
                "frequency" => Eviction::Frequency,
                _ => fail(&format!("--eviction: '{v}' (lru or frequency)")),
            };
        }
        o
    }

    /// `--template NAME`: a chat template by name, instead of the one the file names.
    #[allow(dead_code)] // not every example renders chats
    pub fn template(&mut self) -> Option<edgeseek::ChatTemplate> {
        self.value("--template").map(|n| {
            edgeseek::ChatTemplate::from_name(&n).unwrap_or_else(|| {
                let known: Vec<&str> = edgeseek::ChatTemplate::ALL
                    .iter()
                    .map(|t| t.name())
                    .collect();
                fail(&format!(
                    "--template: unknown template '{n}' (known: {})",
                    known.join(", ")
                ))
            })
        })
    }

    /// Fails on anything not consumed: a typo must not be silently ignored.
    pub fn finish(self) {
        if let Some(a) = self.items.first() {
            fail(&format!("unknown argument '{a}'"));
        }
    }
}

pub fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

/// Adds to the JSON object `j` a model's GPU memory by kind and, for MoE models, its
/// expert cache counters (`experts`, rates per token over `tokens` generated tokens).
#[allow(dead_code)] // not every example reports memory
pub fn add_memory_json(
    j: &mut serde_json::Value,
    mem: &edgeseek::MemoryReport,
    experts: Option<&edgeseek::ExpertStats>,
) {
    j["gpu_weights_bytes"] = mem.weights.into();
    j["gpu_expert_cache_bytes"] = mem.expert_cache.into();
    j["gpu_kv_bytes"] = mem.kv_cache.into();
    j["gpu_scratch_bytes"] = mem.scratch.into();
    j["gpu_stream_ring_bytes"] = mem.stream_ring.into();
    if let Some(e) = experts {
        let per_token = |v: u64| v as f64 / e.tokens.max(1) as f64;
        j["experts"] = serde_json::json!({
            "tokens": e.tokens,
            "hits": e.hits,
            "misses": e.misses,
            "evictions": e.evictions,
            "hit_rate": e.hit_rate(),
            "bytes_read": e.bytes_read,
            // A byte count, so whole bytes.
            "bytes_read_per_token": per_token(e.bytes_read).round(),
            "stall_s": e.stall_ns as f64 * 1e-9,
            "stall_s_per_token": per_token(e.stall_ns) * 1e-9,
            "prediction_accuracy": e.prediction_accuracy(),
            "prefetched": e.prefetched,
            "prefetch_used": e.prefetch_used,
            "prefetch_s": e.prefetch_ns as f64 * 1e-9,
        });
    }
}

/// The files a model is read from — one, or every part of a split model — and their
/// total size in bytes (for the JSON's `model_file_bytes` and `model_file_rss_bytes`).
#[allow(dead_code)] // chat has no JSON
pub fn model_files(path: &std::path::Path) -> (Vec<std::path::PathBuf>, u64) {
    match edgeseek::GgufFile::open(path) {
        Ok(f) => (
            f.part_paths().map(|p| p.to_path_buf()).collect(),
            f.file_size(),
        ),
        Err(_) => (
            vec![path.to_path_buf()],
            std::fs::metadata(path).map_or(0, |m| m.len()),
        ),
    }
}

/// Resident bytes of the model's file mappings, over all its parts.
#[allow(dead_code)]
pub fn model_file_rss(files: &[std::path::PathBuf]) -> u64 {
    files.iter().filter_map(|f| edgeseek::file_rss(f)).sum()
}
