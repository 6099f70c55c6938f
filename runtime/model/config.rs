//! Typed hyperparameters. Every GGUF metadata key the model code needs is read here,
//! once, and checked; the rest of the runtime sees only [`Config`].

use crate::error::{Error, Result};
use crate::file::gguf::GgufFile;

/// Architectures edgeseek runs, by their GGUF `general.architecture` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// llama (SmolLM2, DeepSeek-R1-Distill-Llama): adjacent-pair rope.
    Llama,
    /// qwen2 (DeepSeek-R1-Distill-Qwen): q/k/v biases, NEOX rope.
    Qwen2,
    /// qwen3 (DeepSeek-R1-0528-Qwen3): per-head q/k RMSNorm, NEOX rope.
    Qwen3,
}

impl Arch {
    pub fn from_name(name: &str) -> Option<Arch> {
        match name {
            "llama" => Some(Arch::Llama),
            "qwen2" => Some(Arch::Qwen2),
            "qwen3" => Some(Arch::Qwen3),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }

    /// Rotation pairs as llama.cpp's llama_model_rope_type gives them for the arch.
    pub fn rope_neox(self) -> bool {
        matches!(self, Arch::Qwen2 | Arch::Qwen3)
    }

    /// The q, k and v projections carry biases.
    pub fn qkv_bias(self) -> bool {
        matches!(self, Arch::Qwen2)
    }

    /// Per-head RMSNorm of q and k before rope.
    pub fn qk_norm(self) -> bool {
        matches!(self, Arch::Qwen3)
    }
}

/// Hyperparameters of a dense decoder.
#[derive(Clone, Debug)]
pub struct Config {
    pub arch: Arch,
    pub n_embd: u32,
    pub n_layer: u32,
    pub n_head: u32,
    pub n_head_kv: u32,
    pub head_dim: u32,
    pub n_ff: u32,
    pub n_vocab: u32,
    /// Context length the model was trained for.
    pub n_ctx_train: u32,
    pub rms_eps: f32,
    pub rope_base: f32,
    /// Linear rope scaling: positions are multiplied by this (1 / rope.scaling.factor).
    pub rope_freq_scale: f32,
    /// Dimensions of each head that rope rotates.
    pub n_rot: u32,
}

/// Typed access to `{arch}.{key}` with file-named errors.
struct Keys<'a> {
    file: &'a GgufFile,
    arch: &'a str,
}

impl Keys<'_> {
    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }
    fn u32_opt(&self, k: &str) -> Result<Option<u32>> {
        self.file.get_u32(&self.key(k))
    }
    fn u32(&self, k: &str) -> Result<u32> {
        let key = self.key(k);
        self.file.get_u32(&key)?.ok_or_else(|| {
            Error::bad_file(self.file.path(), format!("missing metadata key '{key}'"))
        })
    }
    fn f32_opt(&self, k: &str) -> Result<Option<f32>> {
        self.file.get_f32(&self.key(k))
    }
    fn str_opt(&self, k: &str) -> Result<Option<&str>> {
        self.file.get_str(&self.key(k))
    }
}

impl Config {
    pub fn from_gguf(file: &GgufFile) -> Result<Config> {
        let path = file.path();
        let arch_name = file.architecture()?;
        let arch = Arch::from_name(arch_name).ok_or_else(|| {
            Error::unsupported(
                path,
                format!("architecture '{arch_name}' (supported: llama, qwen2, qwen3)"),
            )
        })?;
        let k = Keys {
            file,
            arch: arch_name,
        };
        let n_embd = k.u32("embedding_length")?;
        let n_layer = k.u32("block_count")?;
        let n_head = k.u32("attention.head_count")?;
        let n_head_kv = k.u32_opt("attention.head_count_kv")?.unwrap_or(n_head);
        let n_ff = k.u32("feed_forward_length")?;
        let n_ctx_train = k.u32("context_length")?;
        if n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(Error::bad_file(
                path,
                format!("{n_head} attention heads cannot share {n_head_kv} KV heads"),
            ));
        }
        let head_dim = match k.u32_opt("attention.key_length")? {
            Some(d) => d,
            None if n_embd % n_head == 0 => n_embd / n_head,
            None => {
                return Err(Error::bad_file(
                    path,
                    format!("embedding length {n_embd} is not a multiple of {n_head} heads"),
                ))
            }
        };
        if let Some(v) = k.u32_opt("attention.value_length")? {
            if v != head_dim {
                return Err(Error::unsupported(
                    path,
                    format!("value length {v} different from key length {head_dim}"),
                ));
            }
        }
        let rms_eps = k
            .f32_opt("attention.layer_norm_rms_epsilon")?
            .ok_or_else(|| {
                Error::bad_file(
                    path,
                    format!("missing metadata key '{arch_name}.attention.layer_norm_rms_epsilon'"),
                )
            })?;
        let rope_base = k.f32_opt("rope.freq_base")?.unwrap_or(10_000.0);
        let n_rot = k.u32_opt("rope.dimension_count")?.unwrap_or(head_dim);
        let rope_freq_scale = match k.str_opt("rope.scaling.type")? {
            None | Some("none") => 1.0,
            Some("linear") => {
                let factor = k.f32_opt("rope.scaling.factor")?.unwrap_or(1.0);
                if factor.is_nan() || factor <= 0.0 {
                    return Err(Error::bad_file(
                        path,
                        format!("rope scaling factor {factor}"),
                    ));
                }
                1.0 / factor
            }
            Some(other) => {
                return Err(Error::unsupported(
                    path,
                    format!("rope scaling type '{other}'"),
                ))
            }
        };
        let embd = file.tensor(super::names::TOKEN_EMBD).ok_or_else(|| {
            Error::bad_file(
                path,
                format!("missing tensor '{}'", super::names::TOKEN_EMBD),
            )
        })?;
        if embd.dims.len() != 2 || embd.dims[0] != u64::from(n_embd) {
            return Err(Error::bad_file(
                path,
                format!(
                    "tensor '{}' has shape {:?}, expected [{n_embd}, n_vocab]",
                    embd.name, embd.dims
                ),
            ));
        }
        let n_vocab = u32::try_from(embd.dims[1])
            .map_err(|_| Error::bad_file(path, format!("vocabulary of {} tokens", embd.dims[1])))?;
        let cfg = Config {
            arch,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            n_ff,
            n_vocab,
            n_ctx_train,
            rms_eps,
            rope_base,
            rope_freq_scale,
            n_rot,
        };
        cfg.check(file)?;
        Ok(cfg)
    }

    /// Limits of our kernels, reported as unsupported rather than failing on the GPU.
    fn check(&self, file: &GgufFile) -> Result<()> {
        let path = file.path();
        let kmax = crate::gpu::kernels::MAX_HEAD_DIM;
        if self.head_dim == 0 || self.head_dim > kmax || self.head_dim % 8 != 0 {
            return Err(Error::unsupported(
                path,
                format!(
                    "head dimension {} (8..={kmax}, multiple of 8)",
                    self.head_dim
                ),
            ));
        }
        if self.n_rot > self.head_dim || self.n_rot % 2 != 0 {
            return Err(Error::unsupported(
                path,
                format!("rope dimension count {}", self.n_rot),
            ));
        }
        for (what, n) in [
            ("embedding length", self.n_embd),
            ("feed-forward length", self.n_ff),
        ] {
            if n == 0 || n % 32 != 0 {
                return Err(Error::unsupported(
                    path,
                    format!("{what} {n} (must be a positive multiple of 32)"),
                ));
            }
        }
        if self.n_layer == 0 || self.n_layer > 1024 {
            return Err(Error::bad_file(
                path,
                format!("block count {}", self.n_layer),
            ));
        }
        if self.rms_eps.is_nan()
            || self.rms_eps <= 0.0
            || self.rope_base.is_nan()
            || self.rope_base <= 0.0
        {
            return Err(Error::bad_file(
                path,
                format!("rms eps {} / rope base {}", self.rms_eps, self.rope_base),
            ));
        }
        Ok(())
    }

    pub fn q_dim(&self) -> u32 {
        self.n_head * self.head_dim
    }

    pub fn kv_dim(&self) -> u32 {
        self.n_head_kv * self.head_dim
    }
}
