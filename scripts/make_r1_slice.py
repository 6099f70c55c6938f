#!/usr/bin/env python3
"""Make a random-weight, 3-layer slice of DeepSeek-R1 with the model's true dimensions and
metadata, quantized the way unsloth's "dynamic" DeepSeek-R1-UD-IQ1_S is, written as a
3-part split GGUF (a benchmark input for load, memory and per-layer speed at real size;
its output is noise).

Architecture (HF config.json of deepseek-ai/DeepSeek-R1 = DeepSeek-V3): deepseek2,
hidden 7168, 128 heads, q_lora_rank 1536, kv_lora_rank 512, qk_nope 128, qk_rope 64,
v_head 128, dense FFN intermediate 18432, 256 routed experts (moe_intermediate_size
2048), 8 per token, 1 shared, n_group 8 / topk_group 4, scoring_func sigmoid with
e_score_correction_bias (exp_probs_b), norm_topk_prob true, routed_scaling_factor 2.5,
vocab 129280, max_position_embeddings 163840, rope_theta 10000, rope_scaling yarn
(factor 40, original 4096, beta_fast 32, beta_slow 1, mscale = mscale_all_dim = 1.0),
rms_norm_eps 1e-6, untied lm_head.  The slice keeps 3 of the 61 layers: layer 0 dense
(R1 has 3 dense layers; leading_dense_block_count is 1 here), layers 1 and 2 MoE.

Metadata keys are those the CURRENT convert_hf_to_gguf.py (DeepseekV2Model, which also
converts V3/R1) writes: split MLA tensors attn_k_b / attn_v_b, head_count_kv 1,
key_length 576 (kv_lora + rope), value_length 512, key_length_mla 192, value_length_mla
128, q_lora_rank 1536, expert_group_count 8 / expert_group_used_count 4,
expert_gating_func 2 (sigmoid), expert_weights_scale 2.5, expert_weights_norm true,
rope.scaling.yarn_log_multiplier 0.1 (= 0.1 * mscale_all_dim), yarn_beta_fast 32 /
yarn_beta_slow 1; block_count 3.  The MTP layer (R1's layer 61) is not written, as the
converter drops it.

Tensor types mirror unsloth's DeepSeek-R1-UD-IQ1_S (general.file_type MOSTLY_IQ1_S):
  routed experts   ffn_gate_exps, ffn_up_exps IQ1_S; ffn_down_exps IQ2_XXS
  attention        attn_q_a, attn_q_b, attn_kv_a_mqa, attn_v_b, attn_output Q4_K;
                   attn_k_b Q8_0 (its rows are 128 wide: K-quants need rows that are a
                   multiple of 256.  llama-quantize's own fallback for Q4_K there would be
                   Q5_0; Q8_0 is its fallback for Q6_K)
  shared expert    ffn_gate_shexp, ffn_up_shexp Q4_K; ffn_down_shexp Q6_K
  dense FFN        ffn_gate, ffn_up Q4_K; ffn_down Q6_K
  token_embd Q4_K, output Q6_K; norms, routers ffn_gate_inp and exp_probs_b F32
(unsloth's real file holds three dense layers and 58 MoE layers of these kinds, except
that it keeps ffn_down_exps at IQ1_S in most layers and IQ2_XXS in some — "2.06/1.56 bit"
in its announcement; the slice takes IQ2_XXS for every one, the larger case).

Weights: quant blocks generated directly (quantizing 10 GB of floats to IQ1_S would take
hours): random quant bytes, and f16 scale fields set so that the dequantized values have
an rms of 1/sqrt(fan_in) (the row length), with a random sign per block where the codes
alone are not symmetric, so the mean is ~0.  Per block type (ggml-common.h layouts):
  Q8_0    34 B / 32:  d, int8 qs uniform on -127..127
  Q4_K   144 B / 256: d, dmin = d, all 8 sub-block scales 8 and mins 60, so a value is
                      d (8 q - 60) = 4 d (2 q - 15), q the random nibble (mean exactly 0)
  Q6_K   210 B / 256: random ql / qh, all 16 int8 scales 4, d last (value 4 d (q - 32))
  IQ1_S   50 B / 256: random qs and grid-index bits of qh, sub-block scale field 3 (7 d),
                      random delta sign; value 7 d (grid[-1/0/1] +- 0.125)
  IQ2_XXS 66 B / 256: random grid indices and sign indices, scale field 7 (d 7.5 / 4);
                      value d 1.875 grid(8/25/43) sign
Each type's rms per unit d comes from the code distribution (the IQ grids as gguf-py
holds them); before writing, a few rows of every tensor kind are dequantized with
gguf-py (gguf.quants.dequantize) and their rms and mean printed and checked.  Scales as
make_fixtures.py: token_embd rms 1, output rms 3/sqrt(n_embd), router F32
N(0, 2.5^2/n_embd), exp_probs_b 0.5 x the spread of the router's sigmoid scores times
N(0,1), norms 1 + 0.1 N(0,1).  One seeded numpy generator per tensor ([SEED, tensor
index]); every tensor is generated and written in slabs of ~64 MiB (peak memory a few
hundred MB).

Split: gguf-py's GGUFWriter splits by size into 3 parts (the limit is the smallest that
gives 3 parts), DeepSeek-R1-slice-UD-IQ1_S-0000{1,2,3}-of-00003.gguf; the metadata is in
part 1, every part has split.no / split.count / split.tensors.count, as llama-gguf-split
writes them.  No unsplit file is written.

Tokenizer: gpt2 BPE, 129280 tokens: make_fixtures.py's 384 (renamed so that 0 is
<｜begin▁of▁sentence｜>, 1 <｜end▁of▁sentence｜>, 2 <｜▁pad▁｜>, all CONTROL, as in R1;
then the 256 byte-level symbols and 125 merges) followed by NORMAL filler tokens
"<|tok_N|>" (N = id); tokenizer.ggml.pre "deepseek-v3", bos 0, eos 1, pad 1 (R1's
tokenizer_config pads with the eos token), add_bos_token true.  Content is irrelevant:
benchmarks feed ids.

The script then loads the split with llama.cpp (llama-cpp-python, mmap, CPU; no decode)
and prints the hparams llama.cpp parsed; --no-check skips that, and with it the need for
llama-cpp-python.

Usage (from the repository root; needs numpy and gguf, and llama-cpp-python unless
--no-check; all checked, with the free disk space, before anything is written):

    python3 scripts/make_r1_slice.py [OUT_DIR] [--no-check]

Default OUT_DIR: models/synthetic/ (git-ignored); writes the three parts, 6,815,819,936 B
(6.35 GiB) in all, in about 30 s (the script refuses to start with less than the tensor
data + 1 GiB free, ~7.4 GiB).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
sys.path.insert(0, str(FIXTURES))
import _needs  # noqa: E402  (standard library only: it runs before the imports it checks)

_needs.modules(__doc__, "numpy", "gguf")

import numpy as np  # noqa: E402
import gguf  # noqa: E402

import make_fixtures as mf  # noqa: E402
from make_moe_fixtures import _sigmoid_std  # noqa: E402  (the router-score spread, as the MoE fixtures)

DEFAULT_OUT = REPO / "models" / "synthetic"
STEM = "DeepSeek-R1-slice-UD-IQ1_S"
N_PARTS = 3

ARCH = "deepseek2"
N_LAYER = 3
N_EMBD = 7168
N_HEAD = 128
N_HEAD_KV = 1            # current converter: MLA as MQA over the latent
N_DENSE_LEAD = 1         # R1: 3 (first_k_dense_replace); the slice keeps one dense layer
N_FF = 18432
N_EXPERT = 256
N_EXPERT_USED = 8
N_EXPERT_SHARED = 1
N_FF_EXP = 2048
N_GROUP, TOPK_GROUP = 8, 4
Q_LORA = 1536
KV_LORA = 512
QK_NOPE = 128
QK_ROPE = 64
V_HEAD = 128
N_VOCAB = 129280
N_CTX_TRAIN = 163840
ROPE_THETA = 10000.0
YARN_FACTOR = 40.0
YARN_ORIG_CTX = 4096
YARN_LOG_MUL = 0.1 * 1.0     # converter: 0.1 * mscale_all_dim
RMS_EPS = 1e-6
W_SCALE = 2.5
ROUTER_GAIN = 2.5
BIAS_GAIN = 0.5
BOS, EOS, PAD = 0, 1, 1
SEED = 1701

Q = gguf.GGMLQuantizationType
IQ1S_SCALE = 3      # 3-bit sub-block scale field: multiplier 2*3+1 = 7
IQ2XXS_SCALE = 7    # 4-bit sub-block scale field: multiplier (0.5+7)/4 = 1.875
Q4K_SC, Q4K_M = 8, 60
Q6K_SC = 4           # 8 would make ffn_down's d (fan-in 18432) an f16 subnormal
SLAB_BYTES = 1 << 26  # rows generated and written at a time: ~64 MiB of blocks


# --------------------------------------------------------------------------
# Tensor plan: (name, numpy shape [.., out, in], type, rms)
#   quantized types: blocks whose values have the given rms;  F32 with kind
#   "f32": N(0, rms^2);  "norm": 1 + 0.1 N(0,1)
# --------------------------------------------------------------------------
def tensor_plan() -> list[tuple[str, tuple[int, ...], Q, str, float]]:
    def w(name, shape, qtype):
        return (name, shape, qtype, "q", 1.0 / np.sqrt(shape[-1]))

    def norm(name, n):
        return (name, (n,), Q.F32, "norm", 0.0)

    plan = [("token_embd.weight", (N_VOCAB, N_EMBD), Q.Q4_K, "q", 1.0)]
    for i in range(N_LAYER):
        p = f"blk.{i}."
        plan += [
            norm(p + "attn_norm.weight", N_EMBD),
            w(p + "attn_q_a.weight", (Q_LORA, N_EMBD), Q.Q4_K),
            norm(p + "attn_q_a_norm.weight", Q_LORA),
            w(p + "attn_q_b.weight", (N_HEAD * (QK_NOPE + QK_ROPE), Q_LORA), Q.Q4_K),
            w(p + "attn_kv_a_mqa.weight", (KV_LORA + QK_ROPE, N_EMBD), Q.Q4_K),
            norm(p + "attn_kv_a_norm.weight", KV_LORA),
            w(p + "attn_k_b.weight", (N_HEAD, KV_LORA, QK_NOPE), Q.Q8_0),   # ne [128, 512, 128]
            w(p + "attn_v_b.weight", (N_HEAD, V_HEAD, KV_LORA), Q.Q4_K),    # ne [512, 128, 128]
            w(p + "attn_output.weight", (N_EMBD, N_HEAD * V_HEAD), Q.Q4_K),
            norm(p + "ffn_norm.weight", N_EMBD),
        ]
        if i < N_DENSE_LEAD:
            plan += [
                w(p + "ffn_gate.weight", (N_FF, N_EMBD), Q.Q4_K),
                w(p + "ffn_up.weight", (N_FF, N_EMBD), Q.Q4_K),
                w(p + "ffn_down.weight", (N_EMBD, N_FF), Q.Q6_K),
            ]
        else:
            fs = N_FF_EXP * N_EXPERT_SHARED
            plan += [
                (p + "ffn_gate_inp.weight", (N_EXPERT, N_EMBD), Q.F32, "f32", ROUTER_GAIN / np.sqrt(N_EMBD)),
                (p + "exp_probs_b.bias", (N_EXPERT,), Q.F32, "f32", BIAS_GAIN * _sigmoid_std(ROUTER_GAIN)),
                w(p + "ffn_gate_exps.weight", (N_EXPERT, N_FF_EXP, N_EMBD), Q.IQ1_S),
                w(p + "ffn_up_exps.weight", (N_EXPERT, N_FF_EXP, N_EMBD), Q.IQ1_S),
                w(p + "ffn_down_exps.weight", (N_EXPERT, N_EMBD, N_FF_EXP), Q.IQ2_XXS),
                w(p + "ffn_gate_shexp.weight", (fs, N_EMBD), Q.Q4_K),
                w(p + "ffn_up_shexp.weight", (fs, N_EMBD), Q.Q4_K),
                w(p + "ffn_down_shexp.weight", (N_EMBD, fs), Q.Q6_K),
            ]
    plan += [
        norm("output_norm.weight", N_EMBD),
        ("output.weight", (N_VOCAB, N_EMBD), Q.Q6_K, "q", mf.LOGIT_SCALE / np.sqrt(N_EMBD)),
    ]
    return plan


def block_sizes(qtype: Q) -> tuple[int, int]:
    """(values per block, bytes per block)."""
    return gguf.GGML_QUANT_SIZES[qtype]


def row_bytes(shape, qtype) -> int:
    bs, ts = block_sizes(qtype)
    assert shape[-1] % bs == 0, (shape, qtype.name)
    return shape[-1] // bs * ts


def nbytes(shape, qtype) -> int:
    return int(np.prod(shape[:-1], dtype=np.int64)) * row_bytes(shape, qtype)


def byte_shape(shape, qtype) -> tuple[int, ...]:
    return tuple(shape[:-1]) + (row_bytes(shape, qtype),)


# --------------------------------------------------------------------------
# Quant blocks
# --------------------------------------------------------------------------
def _grid(cls) -> np.ndarray:
    cls.init_grid()
    return cls.grid.reshape(cls.grid_shape)


def unit_rms(qtype: Q) -> float:
    """rms of the dequantized values of this module's random blocks with d = 1."""
    if qtype == Q.Q8_0:
        k = np.arange(-127, 128, dtype=np.float64)
        return float(np.sqrt(np.mean(k * k)))
    if qtype == Q.Q4_K:
        q = np.arange(16, dtype=np.float64)
        return float(np.sqrt(np.mean((Q4K_SC * q - Q4K_M) ** 2)))
    if qtype == Q.Q6_K:
        q = np.arange(64, dtype=np.float64)
        return float(Q6K_SC * np.sqrt(np.mean((q - 32) ** 2)))
    if qtype == Q.IQ1_S:
        g = _grid(gguf.quants.IQ1_S).astype(np.float64)
        delta = gguf.quants.IQ1_S.delta  # +- delta with equal odds: the cross term averages out
        return float((2 * IQ1S_SCALE + 1) * np.sqrt(np.mean(g * g) + delta * delta))
    if qtype == Q.IQ2_XXS:
        g = _grid(gguf.quants.IQ2_XXS).astype(np.float64)
        return float((0.5 + IQ2XXS_SCALE) * 0.25 * np.sqrt(np.mean(g * g)))
    raise ValueError(qtype)


def _signed_d(rng, nb: int, d: float) -> np.ndarray:
    """nb f16 scales of magnitude d with random signs, as [nb, 2] bytes."""
    out = np.full(nb, d, dtype=np.float16)
    sign = np.unpackbits(np.frombuffer(rng.bytes((nb + 7) // 8), dtype=np.uint8))[:nb].astype(bool)
    out[sign] = -out[sign]
    return out.view(np.uint8).reshape(nb, 2)


def _random_bytes(rng, nb: int, n: int) -> np.ndarray:
    return np.frombuffer(rng.bytes(nb * n), dtype=np.uint8).reshape(nb, n)


def make_blocks(rng, qtype: Q, nb: int, rms: float) -> np.ndarray:
    """nb blocks of qtype as [nb, bytes per block], values with the given rms, mean ~0."""
    d = rms / unit_rms(qtype)
    assert d >= 6.2e-5, (qtype.name, d)  # a normal f16 (full precision)
    _, ts = block_sizes(qtype)
    b = np.empty((nb, ts), dtype=np.uint8)
    if qtype == Q.Q8_0:
        b[:, :2] = np.full(nb, d, dtype=np.float16).view(np.uint8).reshape(nb, 2)
        b[:, 2:] = rng.integers(-127, 128, size=(nb, 32), dtype=np.int8).view(np.uint8)
    elif qtype == Q.Q4_K:
        dd = np.full(nb, d, dtype=np.float16).view(np.uint8).reshape(nb, 2)
        b[:, 0:2] = dd   # d
        b[:, 2:4] = dd   # dmin = d: min 60 d = 7.5 * 8 d centres the nibbles
        # get_scale_min_k4 packing of 8 x (scale 8, min 60): bytes 0-3 scales of sub-blocks
        # 0-3 (+ top bits of scales 4-7, 0), bytes 4-7 mins 0-3 (+ top bits of mins 4-7:
        # 60 >> 4 = 3), bytes 8-11 low nibbles of scale | min of sub-blocks 4-7
        lo = Q4K_SC | (Q4K_SC >> 4) << 6
        mid = Q4K_M & 63 | (Q4K_M >> 4) << 6
        hi = Q4K_SC & 15 | (Q4K_M & 15) << 4
        b[:, 4:16] = np.array([lo] * 4 + [mid] * 4 + [hi] * 4, dtype=np.uint8)
        b[:, 16:] = _random_bytes(rng, nb, 128)
    elif qtype == Q.Q6_K:
        b[:, :192] = _random_bytes(rng, nb, 192)      # ql[128], qh[64]
        b[:, 192:208] = Q6K_SC                        # int8 scales[16]
        b[:, 208:] = _signed_d(rng, nb, d)            # (q - 32) has mean -0.5: random sign
    elif qtype == Q.IQ1_S:
        b[:, :2] = _signed_d(rng, nb, d)              # the grid is not quite symmetric
        b[:, 2:34] = _random_bytes(rng, nb, 32)       # low 8 bits of 32 grid indices
        qh = _random_bytes(rng, nb, 16).view(np.uint16)
        qh = qh & np.uint16(0x8FFF) | np.uint16(IQ1S_SCALE << 12)  # index bits, delta sign
        b[:, 34:] = qh.view(np.uint8)
    elif qtype == Q.IQ2_XXS:
        b[:, :2] = np.full(nb, d, dtype=np.float16).view(np.uint8).reshape(nb, 2)
        q = _random_bytes(rng, nb, 64).copy().view(np.uint32).reshape(nb, 8, 2)  # per 32 values:
        q[:, :, 1] = q[:, :, 1] & np.uint32(0x0FFFFFFF) | np.uint32(IQ2XXS_SCALE << 28)
        b[:, 2:] = q.reshape(nb, 16).view(np.uint8)   # 4 grid bytes | 4 x 7 sign bits, scale
    else:
        raise ValueError(qtype)
    return b


class Slabs:
    """A tensor generated and written slab by slab: GGUFWriter.write_tensor_data takes it
    for an array (it asks only nbytes and tofile), so no whole tensor is ever in memory."""

    def __init__(self, idx: int, shape: tuple[int, ...], qtype: Q, rms: float):
        self.idx, self.shape, self.qtype, self.rms = idx, shape, qtype, rms
        self.nbytes = nbytes(shape, qtype)

    def tofile(self, fout) -> None:
        rng = np.random.default_rng([SEED, self.idx])
        n_rows = int(np.prod(self.shape[:-1]))
        rb = row_bytes(self.shape, self.qtype)
        per_row = rb // block_sizes(self.qtype)[1]
        step = max(1, SLAB_BYTES // rb)
        for r0 in range(0, n_rows, step):
            rows = min(step, n_rows - r0)
            make_blocks(rng, self.qtype, rows * per_row, self.rms).tofile(fout)


def make_f32(idx: int, shape: tuple[int, ...], kind: str, rms: float) -> np.ndarray:
    rng = np.random.default_rng([SEED, idx])
    if kind == "norm":
        return (1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    x = rng.standard_normal(shape, dtype=np.float32)
    x *= np.float32(rms)
    return x


def check_blocks(plan) -> None:
    """gguf-py's dequantization of a few generated rows of every (type, row length, rms)
    of the plan has the intended rms, and a mean near 0."""
    print("dequantized with gguf-py (a few rows of each kind):")
    seen = set()
    for name, shape, qtype, kind, rms in plan:
        if kind != "q" or (qtype, shape[-1], rms) in seen:
            continue
        seen.add((qtype, shape[-1], rms))
        n = max(2, 2**16 // shape[-1]) * shape[-1]  # >= 65536 values
        bs, _ = block_sizes(qtype)
        blocks = make_blocks(np.random.default_rng([SEED, 10**6, len(seen)]), qtype, n // bs, rms)
        x = gguf.quants.dequantize(blocks, qtype).astype(np.float64).ravel()
        assert x.size == n, (name, x.size, n)
        got, mean = float(np.sqrt(np.mean(x * x))), float(x.mean())
        print(f"  {qtype.name:8s} row {shape[-1]:6d} (as {name}): rms {got:.6f} "
              f"(want {rms:.6f}, ratio {got / rms:.4f}), mean {mean:+.2e} = {mean / rms:+.4f} rms")
        assert abs(got / rms - 1) < 0.02, (name, got, rms)
        assert abs(mean) < 0.03 * rms, (name, mean, rms)


# --------------------------------------------------------------------------
# Metadata and the split
# --------------------------------------------------------------------------
def make_tokenizer():
    tokens, types, merges = mf.make_tokenizer()
    assert tokens[:3] == ["<|pad|>", "<|bos|>", "<|eos|>"]  # no merge uses them
    tokens = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"] + tokens[3:]
    tokens = tokens + [f"<|tok_{i}|>" for i in range(len(tokens), N_VOCAB)]
    types = types + [int(gguf.TokenType.NORMAL)] * (N_VOCAB - len(types))
    assert len(tokens) == N_VOCAB and len(set(tokens)) == N_VOCAB
    return tokens, types, merges


def split_max_size(plan) -> int:
    """The smallest per-part size limit with which GGUFWriter's greedy split (a new part
    when the next tensor would go past the limit) makes N_PARTS parts."""
    sizes = [nbytes(s, t) for _, s, t, _, _ in plan]

    def parts(limit):
        n, cur = 1, 0
        for sz in sizes:
            if cur and cur + sz > limit:
                n, cur = n + 1, 0
            cur += sz
        return n

    lo, hi = max(sizes), sum(sizes)
    while lo < hi:
        mid = (lo + hi) // 2
        if parts(mid) <= N_PARTS:
            hi = mid
        else:
            lo = mid + 1
    assert parts(lo) == N_PARTS
    return lo


def write_split(out: Path, plan) -> list[Path]:
    w = gguf.GGUFWriter(str(out / f"{STEM}.gguf"), ARCH, split_max_size=split_max_size(plan))
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name("DeepSeek R1 slice (edgeseek synthetic, random weights)")
    w.add_basename("DeepSeek-R1")
    w.add_size_label("256x20B")
    w.add_description("edgeseek scripts/make_r1_slice.py: 3 layers (1 dense, 2 MoE) with the shapes "
                      "and hyperparameters of DeepSeek-R1, random weights in unsloth's UD-IQ1_S type "
                      f"mix (seed {SEED}); for speed / memory tests only, generates noise")
    # as convert_hf_to_gguf.py TextModel.set_gguf_parameters + DeepseekV2Model.set_gguf_parameters
    w.add_block_count(N_LAYER)
    w.add_context_length(N_CTX_TRAIN)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    w.add_rope_scaling_factor(YARN_FACTOR)
    w.add_rope_scaling_orig_ctx_len(YARN_ORIG_CTX)
    w.add_rope_scaling_yarn_beta_fast(32.0)
    w.add_rope_scaling_yarn_beta_slow(1.0)
    w.add_rope_freq_base(ROPE_THETA)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_expert_count(N_EXPERT)
    w.add_expert_used_count(N_EXPERT_USED)
    w.add_expert_group_count(N_GROUP)
    w.add_expert_group_used_count(TOPK_GROUP)
    w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
    w.add_leading_dense_block_count(N_DENSE_LEAD)
    w.add_vocab_size(N_VOCAB)
    w.add_q_lora_rank(Q_LORA)
    w.add_kv_lora_rank(KV_LORA)
    w.add_key_length(KV_LORA + QK_ROPE)
    w.add_value_length(KV_LORA)
    w.add_key_length_mla(QK_NOPE + QK_ROPE)
    w.add_value_length_mla(V_HEAD)
    w.add_expert_feed_forward_length(N_FF_EXP)
    w.add_expert_shared_count(N_EXPERT_SHARED)
    w.add_expert_weights_scale(W_SCALE)
    w.add_expert_weights_norm(True)
    w.add_rope_dimension_count(QK_ROPE)
    w.add_rope_scaling_yarn_log_mul(YARN_LOG_MUL)
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_IQ1_S))
    tokens, types, merges = make_tokenizer()
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("deepseek-v3")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(BOS)
    w.add_eos_token_id(EOS)
    w.add_pad_token_id(PAD)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    for name, shape, qtype, kind, _ in plan:
        if qtype == Q.F32:
            w.add_tensor_info(name, shape, np.dtype(np.float32), nbytes(shape, qtype))
        else:
            w.add_tensor_info(name, byte_shape(shape, qtype), np.dtype(np.uint8), nbytes(shape, qtype),
                              raw_dtype=qtype)
    paths = w.format_shard_names(Path(w.path))
    assert len(paths) == N_PARTS, paths
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    t0 = time.time()
    for idx, (name, shape, qtype, kind, rms) in enumerate(plan):
        t = make_f32(idx, shape, kind, rms) if qtype == Q.F32 else Slabs(idx, shape, qtype, rms)
        assert t.nbytes == nbytes(shape, qtype), name
        w.write_tensor_data(t)
        if idx % 10 == 0 or t.nbytes > 2**28:
            print(f"  {idx + 1}/{len(plan)} tensors ({name}), {time.time() - t0:.0f} s", flush=True)
    w.close()
    return paths


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------
def llama_check(path: Path) -> None:
    from _common import llama_load_report
    kv, lines, loader, dt, n_vocab = llama_load_report(path)
    print(f"llama.cpp loaded {path.name} in {dt:.1f} s (mmap, CPU, no decode); n_vocab {n_vocab}; "
          "tensor types and parsed hparams:")
    for ln in loader + lines:
        print("   ", ln)
    want = {"n_layer": "3", "n_embd": "7168", "n_head": "128", "n_head_kv": "1", "n_rot": "64",
            "n_embd_head_k": "576", "n_embd_head_v": "512", "n_expert": "256", "n_expert_used": "8",
            "n_expert_groups": "8", "n_group_used": "4", "n_ff": "18432",
            "n_layer_dense_lead": "1", "n_lora_q": "1536", "n_lora_kv": "512",
            "n_embd_head_k_mla": "192", "n_embd_head_v_mla": "128", "n_ff_exp": "2048",
            "n_expert_shared": "1", "expert_weights_scale": "2.5", "expert_weights_norm": "1",
            "expert_gating_func": "sigmoid", "n_ctx_orig_yarn": "4096", "rope scaling": "yarn",
            "freq_base_train": "10000.0", "freq_scale_train": "0.025",
            # llama.cpp divides the key by 0.1 on load (models/deepseek2.cpp), undoing the converter's factor
            # (TAG_DEEPSEEK2_YARN_LOG_MUL_FIX): 0.1 in the file is mscale_all_dim 1.0
            "rope_yarn_log_mul": "1.0000",
            "n_ctx_train": "163840", "n_vocab": "129280"}
    bad = {k: (kv.get(k), v) for k, v in want.items() if kv.get(k) != v}
    assert not bad, bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", nargs="?", default=str(DEFAULT_OUT), help=f"output directory (default {DEFAULT_OUT})")
    ap.add_argument("--no-check", action="store_true", help="do not load the result with llama.cpp")
    args = ap.parse_args()
    # Everything this run will need, before the 6.6 GB write.
    if not args.no_check:
        _needs.llama_cpp("to load the written file with llama.cpp (the check after writing)",
                         skip="--no-check")
    out = Path(args.out_dir)
    plan = tensor_plan()
    total = sum(nbytes(s, t) for _, s, t, _, _ in plan)
    _needs.disk(out, total + 2**30, f"{STEM}-0000[123]-of-00003.gguf ({total / 2**30:.2f} GiB of tensor data)")

    out.mkdir(parents=True, exist_ok=True)
    print(f"{len(plan)} tensors, {sum(int(np.prod(s)) for _, s, _, _, _ in plan):,} parameters, "
          f"{total / 2**30:.2f} GiB of tensor data; types:")
    by_type: dict[str, list[int]] = {}
    for _, s, t, _, _ in plan:
        e = by_type.setdefault(t.name, [0, 0])
        e[0] += 1
        e[1] += nbytes(s, t)
    for t, (n, b) in by_type.items():
        print(f"  {t:8s} {n:3d} tensors {b / 2**30:7.3f} GiB")
    check_blocks(plan)

    t0 = time.time()
    paths = write_split(out, plan)
    dt = time.time() - t0
    sizes = [p.stat().st_size for p in paths]
    for p, sz in zip(paths, sizes):
        print(f"wrote {p} ({sz:,} B = {sz / 2**30:.2f} GiB)")
    print(f"{len(paths)} parts, {sum(sizes):,} B = {sum(sizes) / 2**30:.2f} GiB in {dt:.0f} s")
    if not args.no_check:
        llama_check(paths[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
