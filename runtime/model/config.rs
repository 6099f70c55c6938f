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
    /// qwen3moe (Qwen3-30B-A3B): qwen3 attention, softmax-routed experts.
    Qwen3Moe,
    /// deepseek2 (DeepSeek-V2/V2-Lite/V3/R1): MLA attention, DeepSeekMoE.
    Deepseek2,
}

impl Arch {
    pub fn from_name(name: &str) -> Option<Arch> {
        match name {
            "llama" => Some(Arch::Llama),
            "qwen2" => Some(Arch::Qwen2),
            "qwen3" => Some(Arch::Qwen3),
            "qwen3moe" => Some(Arch::Qwen3Moe),
            "deepseek2" => Some(Arch::Deepseek2),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Qwen3Moe => "qwen3moe",
            Arch::Deepseek2 => "deepseek2",
        }
    }

    /// Rotation pairs as llama.cpp's llama_model_rope_type gives them for the arch.
    pub fn rope_neox(self) -> bool {
        matches!(self, Arch::Qwen2 | Arch::Qwen3 | Arch::Qwen3Moe)
    }

    /// The q, k and v projections carry biases.
    pub fn qkv_bias(self) -> bool {
        matches!(self, Arch::Qwen2)
    }

    /// Per-head RMSNorm of q and k before rope.
    pub fn qk_norm(self) -> bool {
        matches!(self, Arch::Qwen3 | Arch::Qwen3Moe)
    }
}

/// Hyperparameters of a decoder: the dense core, plus MLA attention (deepseek2) and
/// mixture-of-experts FFN layers (deepseek2, qwen3moe) where the file has them.
#[derive(Clone, Debug)]
pub struct Config {
    pub arch: Arch,
    pub n_embd: u32,
    pub n_layer: u32,
    pub n_head: u32,
    pub n_head_kv: u32,
    /// Query/key width of one head (deepseek2: the non-rope plus the rope part).
    pub head_dim: u32,
    /// Feed-forward width of the dense layers.
    pub n_ff: u32,
    pub n_vocab: u32,
    /// Context length the model was trained for.
    pub n_ctx_train: u32,
    pub rms_eps: f32,
    pub rope: Rope,
    /// Dimensions of each head that rope rotates.
    pub n_rot: u32,
    /// Multiplier of q·k in attention (1/sqrt(head_dim), or deepseek2's YaRN-scaled one).
    pub attn_scale: f32,
    pub mla: Option<Mla>,
    pub moe: Option<Moe>,
}

/// Rotary embedding as llama.cpp configures ggml_rope_ext: frequency base, linear or
/// YaRN scaling, and the magnitude factor.
#[derive(Clone, Debug)]
pub struct Rope {
    pub base: f32,
    /// Positions are multiplied by this (1 / rope.scaling.factor).
    pub freq_scale: f32,
    /// 1 with YaRN (mix interpolated and extrapolated angles per pair), else 0.
    pub ext_factor: f32,
    /// `attn_factor` as llama.cpp passes it to ggml_rope_ext.
    pub attn_factor: f32,
    /// Context the YaRN correction range is computed for.
    pub n_ctx_orig: u32,
    pub beta_fast: f32,
    pub beta_slow: f32,
}

impl Rope {
    /// Angle per position of each rotation pair: base^(-2i/n_rot), divided by llama3's
    /// `rope_freqs` factors, scaled linearly or blended as ggml's rope_yarn does.
    /// Computed in f64.
    pub fn inv_freq(&self, n_rot: u32, factors: &[f32]) -> Vec<f32> {
        let half = (n_rot / 2) as usize;
        let base = f64::from(self.base);
        let fs = f64::from(self.freq_scale);
        let [low, high] = self.corr_dims(n_rot);
        (0..half)
            .map(|i| {
                let extrap = base.powf(-2.0 * i as f64 / f64::from(n_rot))
                    / f64::from(factors.get(i).copied().unwrap_or(1.0));
                let mult = if self.ext_factor != 0.0 {
                    // ggml's rope_yarn_ramp, pair index i = i0 / 2.
                    let y = (i as f64 - low) / (high - low).max(0.001);
                    let mix = (1.0 - y.clamp(0.0, 1.0)) * f64::from(self.ext_factor);
                    fs * (1.0 - mix) + mix
                } else {
                    fs
                };
                (extrap * mult) as f32
            })
            .collect()
    }

    /// ggml_rope_yarn_corr_dims: the pairs between which YaRN blends.
    fn corr_dims(&self, n_rot: u32) -> [f64; 2] {
        let n = f64::from(n_rot);
        let dim = |beta: f32| {
            let ctx = f64::from(self.n_ctx_orig);
            n * (ctx / (f64::from(beta) * 2.0 * std::f64::consts::PI)).ln()
                / (2.0 * f64::from(self.base).ln())
        };
        let start = dim(self.beta_fast).floor().max(0.0);
        let end = dim(self.beta_slow).ceil().min(n - 1.0);
        [start, end]
    }

    /// Factor on cos and sin (ggml's rope_yarn mscale).
    pub fn magnitude(&self) -> f32 {
        if self.ext_factor != 0.0 {
            self.attn_factor * (1.0 + 0.1 * (1.0 / self.freq_scale).ln())
        } else {
            self.attn_factor
        }
    }
}

/// Multi-head latent attention (deepseek2): queries (optionally through a low-rank
/// q_a/q_b pair), one compressed KV latent per token plus a shared rope key.
#[derive(Clone, Debug)]
pub struct Mla {
    /// 0: a plain `attn_q` projection.
    pub q_lora_rank: u32,
    pub kv_lora_rank: u32,
    pub qk_nope: u32,
    pub qk_rope: u32,
    pub v_head: u32,
    /// The file has `attn_k_b`/`attn_v_b` (else the legacy unsplit `attn_kv_b`).
    pub split_kv_b: bool,
}

impl Mla {
    /// One cached row per token: the normalised latent and the roped key.
    pub fn cache_dim(&self) -> u32 {
        self.kv_lora_rank + self.qk_rope
    }
}

/// How the router turns logits into expert choices and weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gating {
    Softmax,
    Sigmoid,
}

/// Mixture-of-experts FFN layers.
#[derive(Clone, Debug)]
pub struct Moe {
    pub n_expert: u32,
    pub n_expert_used: u32,
    pub n_expert_shared: u32,
    pub n_ff_exp: u32,
    /// Layers before this one have a dense FFN.
    pub n_dense_lead: u32,
    pub gating: Gating,
    /// Selection bias `exp_probs_b` (deepseek V3): used to choose, not to weigh.
    pub selection_bias: bool,
    /// Divide the chosen weights by their sum.
    pub norm_weights: bool,
    /// Multiply the chosen weights by this (1: none).
    pub weights_scale: f32,
    /// Expert groups (0 or 1: none) and how many of them a token may use.
    pub n_groups: u32,
    pub n_groups_used: u32,
}

/// Most experts one token may use (fixed-capacity routing buffers).
pub const MAX_EXPERTS_USED: u32 = 16;
/// Most experts a layer may have (llama.cpp's LLAMA_MAX_EXPERTS).
pub const MAX_EXPERTS: u32 = 512;

impl Moe {
    pub fn is_moe_layer(&self, layer: u32) -> bool {
        layer >= self.n_dense_lead
    }
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
    fn bool_opt(&self, k: &str) -> Result<Option<bool>> {
        self.file.get_bool(&self.key(k))
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
                format!(
                    "architecture '{arch_name}' (supported: llama, qwen2, qwen3, qwen3moe, deepseek2)"
                ),
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
        let n_ff = k.u32_opt("feed_forward_length")?.unwrap_or(0);
        let n_ctx_train = k.u32("context_length")?;
        if n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(Error::bad_file(
                path,
                format!("{n_head} attention heads cannot share {n_head_kv} KV heads"),
            ));
        }
        let key_length = k.u32_opt("attention.key_length")?;
        let mla = if arch == Arch::Deepseek2 {
            Some(read_mla(&k, key_length)?)
        } else {
            None
        };
        let head_dim = match (&mla, key_length) {
            (Some(m), _) => m.qk_nope + m.qk_rope,
            (None, Some(d)) => d,
            (None, None) if n_embd % n_head == 0 => n_embd / n_head,
            (None, None) => {
                return Err(Error::bad_file(
                    path,
                    format!("embedding length {n_embd} is not a multiple of {n_head} heads"),
                ))
            }
        };
        if mla.is_none() {
            if let Some(v) = k.u32_opt("attention.value_length")? {
                if v != head_dim {
                    return Err(Error::unsupported(
                        path,
                        format!("value length {v} different from key length {head_dim}"),
                    ));
                }
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
        let n_rot = k.u32_opt("rope.dimension_count")?.unwrap_or(head_dim);
        let (rope, yarn_log_mul) = read_rope(&k, arch, n_ctx_train)?;
        let attn_scale = match &mla {
            // llama.cpp's deepseek2 graph: undo the YaRN attn_factor adjustment, then
            // scale q·k by mscale^2 (DeepSeek's softmax_scale * mscale^2).
            Some(_) => {
                let ln_inv_fs = (1.0 / rope.freq_scale).ln();
                let attn_factor_org = rope.attn_factor * (1.0 + 0.1 * ln_inv_fs);
                let mscale = attn_factor_org * (1.0 + 0.1 * yarn_log_mul * ln_inv_fs);
                mscale * mscale / (head_dim as f32).sqrt()
            }
            None => 1.0 / (head_dim as f32).sqrt(),
        };
        let mut moe = read_moe(&k, arch)?;
        if let Some(m) = &mut moe {
            let bias = super::names::layer(m.n_dense_lead, super::names::LayerTensor::ExpProbsBias);
            m.selection_bias = file.tensor(&bias).is_some();
        }
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
            rope,
            n_rot,
            attn_scale,
            mla,
            moe,
        };
        cfg.check(file)?;
        Ok(cfg)
    }

    /// Shapes our kernels take, reported as unsupported rather than failing on the GPU
    /// (the kernels' size limits are checked at load: `model::loader::check_kernel_limits`).
    fn check(&self, file: &GgufFile) -> Result<()> {
        let path = file.path();
        // First: the layer loop below runs n_layer times.
        if self.n_layer == 0 || self.n_layer > 1024 {
            return Err(Error::bad_file(
                path,
                format!("block count {}", self.n_layer),
            ));
        }
        if self.head_dim == 0 || self.head_dim % 8 != 0 {
            return Err(Error::unsupported(
                path,
                format!(
                    "head dimension {} (must be a positive multiple of 8)",
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
        // Every layer of a MoE model without leading dense blocks is MoE: no n_ff needed.
        let dense_ffn = (0..self.n_layer).any(|l| !self.is_moe_layer(l));
        let n_ff = if dense_ffn { self.n_ff } else { 32 };
        for (what, n) in [
            ("embedding length", self.n_embd),
            ("feed-forward length", n_ff),
        ] {
            if n == 0 || n % 32 != 0 {
                return Err(Error::unsupported(
                    path,
                    format!("{what} {n} (must be a positive multiple of 32)"),
                ));
            }
        }
        self.check_widths(path)?;
        if self.rms_eps.is_nan()
            || self.rms_eps <= 0.0
            || self.rope.base.is_nan()
            || self.rope.base <= 0.0
        {
            return Err(Error::bad_file(
                path,
                format!("rms eps {} / rope base {}", self.rms_eps, self.rope.base),
            ));
        }
        Ok(())
    }

    /// The model code sizes buffers and strides as heads x per-head width (and shared
    /// experts x expert width) in u32; a file whose counts overflow that is refused here.
    fn check_widths(&self, path: &std::path::Path) -> Result<()> {
        let mut per_head = vec![("head dimension", u64::from(self.head_dim))];
        if let Some(m) = &self.mla {
            let (latent, nope, v) = (m.kv_lora_rank, m.qk_nope, m.v_head);
            per_head.extend([
                (
                    "MLA latent + rope width",
                    u64::from(latent) + u64::from(m.qk_rope),
                ),
                ("MLA value width", u64::from(v)),
                ("MLA key + value width", u64::from(nope) + u64::from(v)),
            ]);
        }
        for (what, width) in per_head {
            if u64::from(self.n_head) * width > u64::from(u32::MAX) {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "{} attention heads of {what} {width} overflow 32 bits",
                        self.n_head
                    ),
                ));
            }
        }
        if let Some(m) = &self.moe {
            if u64::from(m.n_ff_exp) * u64::from(m.n_expert_shared) > u64::from(u32::MAX) {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "{} shared experts of feed-forward length {} overflow 32 bits",
                        m.n_expert_shared, m.n_ff_exp
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn q_dim(&self) -> u32 {
        self.n_head * self.head_dim
    }

    /// The layer's FFN is a mixture of experts.
    pub fn is_moe_layer(&self, layer: u32) -> bool {
        self.moe.as_ref().is_some_and(|m| m.is_moe_layer(layer))
    }

    pub fn kv_dim(&self) -> u32 {
        self.n_head_kv * self.head_dim
    }
}

/// deepseek2's attention shapes. A file with `key_length_mla` stores the split
/// `attn_k_b`/`attn_v_b` (llama.cpp's MLA layout; key_length is then the latent + rope
/// width); without it, the legacy `attn_kv_b` (key_length = nope + rope).
fn read_mla(k: &Keys<'_>, key_length: Option<u32>) -> Result<Mla> {
    let path = k.file.path();
    let q_lora_rank = k.u32_opt("attention.q_lora_rank")?.unwrap_or(0);
    let kv_lora_rank = k.u32("attention.kv_lora_rank")?;
    let qk_rope = k.u32("rope.dimension_count")?;
    let k_mla = k.u32_opt("attention.key_length_mla")?;
    let v_mla = k.u32_opt("attention.value_length_mla")?;
    let value_length = k.u32_opt("attention.value_length")?;
    let (split_kv_b, k_head, v_head) = match (k_mla, v_mla) {
        (Some(kh), Some(vh)) if kh != 0 && vh != 0 => (true, kh, vh),
        _ => {
            let need = |v: Option<u32>, key: &str| {
                v.ok_or_else(|| {
                    Error::bad_file(path, format!("missing metadata key 'deepseek2.{key}'"))
                })
            };
            (
                false,
                need(key_length, "attention.key_length")?,
                need(value_length, "attention.value_length")?,
            )
        }
    };
    if k_head <= qk_rope || qk_rope == 0 {
        return Err(Error::bad_file(
            path,
            format!("key length {k_head} must exceed the rope dimension count {qk_rope}"),
        ));
    }
    let mla = Mla {
        q_lora_rank,
        kv_lora_rank,
        qk_nope: k_head - qk_rope,
        qk_rope,
        v_head,
        split_kv_b,
    };
    let dims = [mla.kv_lora_rank, mla.qk_nope, mla.v_head, mla.qk_rope];
    // In u64: both come from the file, and `cache_dim` may be called only once this holds
    // (its size limit is the kernels', checked at load).
    let cache_dim = u64::from(mla.kv_lora_rank) + u64::from(mla.qk_rope);
    if cache_dim > u64::from(u32::MAX) || dims.iter().any(|&d| d == 0 || d % 8 != 0) {
        return Err(Error::unsupported(
            path,
            format!(
                "MLA shapes kv_lora_rank {} / nope {} / rope {} / v {} (positive multiples of 8, latent + rope within 32 bits)",
                mla.kv_lora_rank, mla.qk_nope, mla.qk_rope, mla.v_head
            ),
        ));
    }
    if q_lora_rank % 32 != 0 {
        return Err(Error::unsupported(
            path,
            format!("q_lora_rank {q_lora_rank} (must be a multiple of 32)"),
        ));
    }
    Ok(mla)
}

/// Rope scaling keys, resolved as llama.cpp's llama_context does (YaRN's attention
/// factor included). Also returns `rope_yarn_log_mul` as deepseek2's graph uses it.
fn read_rope(k: &Keys<'_>, arch: Arch, n_ctx_train: u32) -> Result<(Rope, f32)> {
    let path = k.file.path();
    let base = k.f32_opt("rope.freq_base")?.unwrap_or(10_000.0);
    let factor = match k.f32_opt("rope.scaling.factor")? {
        Some(f) => f,
        None => k.f32_opt("rope.scale_linear")?.unwrap_or(0.0),
    };
    if factor.is_nan() || factor < 0.0 {
        return Err(Error::bad_file(
            path,
            format!("rope scaling factor {factor}"),
        ));
    }
    let scaling = k.str_opt("rope.scaling.type")?.unwrap_or("linear");
    let mut freq_scale = if factor == 0.0 { 1.0 } else { 1.0 / factor };
    let yarn = match scaling {
        "none" => {
            freq_scale = 1.0;
            false
        }
        "linear" => false,
        "yarn" => true,
        other => {
            return Err(Error::unsupported(
                path,
                format!("rope scaling type '{other}'"),
            ))
        }
    };
    let mut yarn_log_mul = k
        .f32_opt("rope.scaling.yarn_log_multiplier")?
        .unwrap_or(0.0);
    if arch == Arch::Deepseek2 && yarn_log_mul != 0.0 {
        // llama.cpp cancels the 0.1 its converter folds into the key.
        yarn_log_mul /= 0.1;
    }
    let get_mscale = |scale: f32, m: f32| {
        if scale <= 1.0 {
            1.0
        } else {
            0.1 * m * scale.ln() + 1.0
        }
    };
    let mut attn_factor = 1.0f32;
    if yarn {
        let factor = 1.0 / freq_scale;
        attn_factor = if yarn_log_mul != 0.0 {
            let mscale = if arch == Arch::Deepseek2 && yarn_log_mul != 1.0 {
                yarn_log_mul
            } else {
                1.0
            };
            get_mscale(factor, mscale) / get_mscale(factor, yarn_log_mul)
        } else {
            get_mscale(factor, 1.0)
        };
        attn_factor *= 1.0 / (1.0 + 0.1 * factor.ln());
    }
    attn_factor *= k.f32_opt("rope.scaling.attn_factor")?.unwrap_or(1.0);
    let n_ctx_orig = match k.u32_opt("rope.scaling.original_context_length")? {
        Some(n) if n > 0 => n,
        _ => n_ctx_train,
    };
    let rope = Rope {
        base,
        freq_scale,
        ext_factor: if yarn { 1.0 } else { 0.0 },
        attn_factor,
        n_ctx_orig,
        beta_fast: 32.0,
        beta_slow: 1.0,
    };
    Ok((rope, yarn_log_mul))
}

/// The expert keys of MoE architectures, checked against llama.cpp's own asserts.
fn read_moe(k: &Keys<'_>, arch: Arch) -> Result<Option<Moe>> {
    let path = k.file.path();
    let (gating, norm_weights, shared, lead) = match arch {
        Arch::Qwen3Moe => (Gating::Softmax, true, 0, 0),
        Arch::Deepseek2 => {
            let gating = match k.u32_opt("expert_gating_func")?.unwrap_or(0) {
                // 0: not set; llama.cpp treats V2/V2.5 files without the key as softmax.
                0 | 1 => Gating::Softmax,
                2 => Gating::Sigmoid,
                other => {
                    return Err(Error::unsupported(
                        path,
                        format!("expert gating function {other}"),
                    ))
                }
            };
            (
                gating,
                k.bool_opt("expert_weights_norm")?.unwrap_or(false),
                k.u32("expert_shared_count")?,
                k.u32_opt("leading_dense_block_count")?.unwrap_or(0),
            )
        }
        _ => return Ok(None),
    };
    let n_expert = k.u32("expert_count")?;
    let n_expert_used = k.u32("expert_used_count")?;
    let n_ff_exp = k.u32("expert_feed_forward_length")?;
    let n_groups = k.u32_opt("expert_group_count")?.unwrap_or(0);
    let n_groups_used = k.u32_opt("expert_group_used_count")?.unwrap_or(0);
    let weights_scale = match k.f32_opt("expert_weights_scale")?.unwrap_or(0.0) {
        0.0 => 1.0,
        s => s,
    };
    let bad = |what: String| Err(Error::bad_file(path, what));
    if n_expert == 0 || n_expert > MAX_EXPERTS {
        return bad(format!("expert count {n_expert} (1..={MAX_EXPERTS})"));
    }
    if n_expert_used == 0 || n_expert_used > n_expert {
        return bad(format!(
            "expert used count {n_expert_used} with an expert count of {n_expert}"
        ));
    }
    if n_expert_used > MAX_EXPERTS_USED {
        return Err(Error::unsupported(
            path,
            format!("{n_expert_used} experts per token (at most {MAX_EXPERTS_USED})"),
        ));
    }
    if n_groups > 1 {
        if n_groups >= n_expert || n_expert % n_groups != 0 {
            return bad(format!(
                "{n_expert} experts cannot form {n_groups} expert groups"
            ));
        }
        if n_groups_used == 0 || n_groups_used >= n_groups {
            return bad(format!(
                "expert group used count {n_groups_used} of {n_groups} groups"
            ));
        }
        let per_group = n_expert / n_groups;
        if n_groups_used * per_group < n_expert_used {
            return bad(format!(
                "{n_groups_used} groups of {per_group} experts cannot supply {n_expert_used} experts"
            ));
        }
    }
    if n_ff_exp == 0 || n_ff_exp % 32 != 0 {
        return Err(Error::unsupported(
            path,
            format!("expert feed-forward length {n_ff_exp} (a positive multiple of 32)"),
        ));
    }
    Ok(Some(Moe {
        n_expert,
        n_expert_used,
        n_expert_shared: shared,
        n_ff_exp,
        n_dense_lead: lead,
        gating,
        selection_bias: false,
        norm_weights,
        weights_scale,
        n_groups,
        n_groups_used,
    }))
}
