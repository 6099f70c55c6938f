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

    /// Device and load flags: --adapter NAME, --no-f16, --downlevel, --f32-activations, --ctx N,
    /// --max-batch N, --expert-cache-mb N|min (decimals allowed), --eviction lru|frequency, --prefetch,
    /// --max-resident-mb N (decimals allowed).
    pub fn load_options(&mut self) -> LoadOptions {
        let mut o = LoadOptions {
            device: DeviceOptions {
                adapter: self.value("--adapter"),
                no_f16: self.flag("--no-f16"),
                downlevel: self.flag("--downlevel"),
                f32_activations: self.flag("--f32-activations"),
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

/// JSON fields (`"name":value,...`, no braces) for a model's memory by kind and, for
/// MoE models, its expert cache counters over `tokens` generated tokens.
#[allow(dead_code)] // not every example reports memory
pub fn memory_and_experts_json(
    mem: &edgeseek::MemoryReport,
    experts: Option<&edgeseek::ExpertStats>,
) -> String {
    let mut j = format!(
        "\"gpu_weights_bytes\":{},\"gpu_expert_cache_bytes\":{},\"gpu_kv_bytes\":{},\"gpu_scratch_bytes\":{},\"gpu_stream_ring_bytes\":{}",
        mem.weights, mem.expert_cache, mem.kv_cache, mem.scratch, mem.stream_ring
    );
    if let Some(e) = experts {
        let per_token = |v: u64| v as f64 / e.tokens.max(1) as f64;
        j.push_str(&format!(
            ",\"experts\":{{\"tokens\":{},\"hits\":{},\"misses\":{},\"evictions\":{},\"hit_rate\":{:.4},\
             \"bytes_read\":{},\"bytes_read_per_token\":{:.0},\"stall_s\":{:.4},\"stall_s_per_token\":{:.6},\
             \"prediction_accuracy\":{:.4},\"prefetched\":{},\"prefetch_used\":{},\"prefetch_s\":{:.4}}}",
            e.tokens,
            e.hits,
            e.misses,
            e.evictions,
            e.hit_rate(),
            e.bytes_read,
            per_token(e.bytes_read),
            e.stall_ns as f64 * 1e-9,
            per_token(e.stall_ns) * 1e-9,
            e.prediction_accuracy(),
            e.prefetched,
            e.prefetch_used,
            e.prefetch_ns as f64 * 1e-9
        ));
    }
    j
}
