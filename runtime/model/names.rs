//! GGUF tensor names, as llama.cpp's converter writes them.

pub const TOKEN_EMBD: &str = "token_embd.weight";
pub const OUTPUT_NORM: &str = "output_norm.weight";
pub const OUTPUT: &str = "output.weight";
/// llama3-style per-frequency rope divisors (DeepSeek-R1-Distill-Llama-8B has them).
pub const ROPE_FREQS: &str = "rope_freqs.weight";

/// Tensors of one decoder block, `blk.{i}.{suffix}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerTensor {
    AttnNorm,
    AttnQ,
    AttnK,
    AttnV,
    AttnQBias,
    AttnKBias,
    AttnVBias,
    AttnQNorm,
    AttnKNorm,
    AttnOutput,
    FfnNorm,
    FfnGate,
    FfnUp,
    FfnDown,
    // deepseek2 MLA
    AttnQA,
    AttnQANorm,
    AttnQB,
    AttnKvAMqa,
    AttnKvANorm,
    AttnKvB,
    AttnKB,
    AttnVB,
    // mixture of experts
    FfnGateInp,
    ExpProbsBias,
    FfnGateExps,
    FfnUpExps,
    FfnDownExps,
    FfnGateShexp,
    FfnUpShexp,
    FfnDownShexp,
}

impl LayerTensor {
    pub fn suffix(self) -> &'static str {
        match self {
            LayerTensor::AttnNorm => "attn_norm.weight",
            LayerTensor::AttnQ => "attn_q.weight",
            LayerTensor::AttnK => "attn_k.weight",
            LayerTensor::AttnV => "attn_v.weight",
            LayerTensor::AttnQBias => "attn_q.bias",
            LayerTensor::AttnKBias => "attn_k.bias",
            LayerTensor::AttnVBias => "attn_v.bias",
            LayerTensor::AttnQNorm => "attn_q_norm.weight",
            LayerTensor::AttnKNorm => "attn_k_norm.weight",
            LayerTensor::AttnOutput => "attn_output.weight",
            LayerTensor::FfnNorm => "ffn_norm.weight",
            LayerTensor::FfnGate => "ffn_gate.weight",
            LayerTensor::FfnUp => "ffn_up.weight",
            LayerTensor::FfnDown => "ffn_down.weight",
            LayerTensor::AttnQA => "attn_q_a.weight",
            LayerTensor::AttnQANorm => "attn_q_a_norm.weight",
            LayerTensor::AttnQB => "attn_q_b.weight",
            LayerTensor::AttnKvAMqa => "attn_kv_a_mqa.weight",
            LayerTensor::AttnKvANorm => "attn_kv_a_norm.weight",
            LayerTensor::AttnKvB => "attn_kv_b.weight",
            LayerTensor::AttnKB => "attn_k_b.weight",
            LayerTensor::AttnVB => "attn_v_b.weight",
            LayerTensor::FfnGateInp => "ffn_gate_inp.weight",
            LayerTensor::ExpProbsBias => "exp_probs_b.bias",
            LayerTensor::FfnGateExps => "ffn_gate_exps.weight",
            LayerTensor::FfnUpExps => "ffn_up_exps.weight",
            LayerTensor::FfnDownExps => "ffn_down_exps.weight",
            LayerTensor::FfnGateShexp => "ffn_gate_shexp.weight",
            LayerTensor::FfnUpShexp => "ffn_up_shexp.weight",
            LayerTensor::FfnDownShexp => "ffn_down_shexp.weight",
        }
    }
}

pub fn layer(i: u32, t: LayerTensor) -> String {
    format!("blk.{i}.{}", t.suffix())
}

/// The matrices that per-head products read (MLA's attn_k_b and attn_v_b, or a legacy
/// attn_kv_b): the loader keeps them in storage buffers (`MatrixUse::Heads`).
pub fn is_per_head_matrix(name: &str) -> bool {
    [
        LayerTensor::AttnKB,
        LayerTensor::AttnVB,
        LayerTensor::AttnKvB,
    ]
    .iter()
    .any(|t| name.ends_with(t.suffix()))
}

/// Routed expert tensors (3-D, one matrix per expert), which are never uploaded at load.
pub fn is_expert_tensor(name: &str) -> bool {
    name.ends_with("_exps.weight")
}

/// The three projections of every routed expert of layer `i`, in slot order (gate, up,
/// down).
pub fn expert_tensors(i: u32) -> [String; 3] {
    [
        LayerTensor::FfnGateExps,
        LayerTensor::FfnUpExps,
        LayerTensor::FfnDownExps,
    ]
    .map(|t| layer(i, t))
}
