#!/usr/bin/env python3
"""edgeseek's examples/bench and llama.cpp on the same GGUF file, machine and token ids,
side by side, with the ratios.

llama.cpp runs through llama-cpp-python's low-level API (the same build the goldens
use): the prompt is decoded as one batch (prefill), then one token per step greedily
(decode), timed by wall clock, median over --repeat runs. Its CPU backend uses
--threads threads. To compare with llama.cpp's Vulkan backend on the same device,
install a Vulkan build of llama-cpp-python in another environment
(CMAKE_ARGS="-DGGML_VULKAN=ON -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON
-DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF
-DGGML_AMX_BF16=OFF" pip install llama-cpp-python; needs glslc and the Vulkan headers)
and pass --llama-gpu-layers 999. On these 2-core machines llama.cpp must be built
without AMX (see tests/fixtures/README.md), or its quantized matmuls die with SIGILL.

Needs the bench binary, numpy and llama-cpp-python; the script checks them and the model
file before it runs anything, and says what to build or install.

Usage (from the repository root, after `cargo build --release --examples`):

    python3 scripts/bench_vs_llama_cpp.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\
        [--prompt-tokens 64] [--gen-tokens 32] [--repeat 3] [--threads 2] [--json]
"""
from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "target" / "release" / "examples" / "bench"
_LOG_CB = None

# tests/fixtures/README.md, "Rerunning" (CPU), and this file's docstring (Vulkan).
CPU_BUILD = ('CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF '
             '-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_TESTS=OFF '
             '-DLLAMA_BUILD_EXAMPLES=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 \\\n'
             '    pip install --no-cache-dir llama-cpp-python==0.3.36')
VULKAN_BUILD = ('CMAKE_ARGS="-DGGML_VULKAN=ON -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON '
                '-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \\\n'
                '    pip install llama-cpp-python   # needs glslc and the Vulkan headers')


def preflight(args) -> None:
    """Everything both runs need, checked before the edgeseek run (which takes minutes on
    the larger models) rather than found missing after it."""
    if not BENCH.exists():
        sys.exit(f"error: {BENCH} is missing: run `cargo build --release --examples` first")
    if not Path(args.model).is_file():
        sys.exit(f"error: {args.model}: no such file (./models/fetch-smollm2.sh fetches SmolLM2; "
                 "models/README.md lists the others)")
    if importlib.util.find_spec("numpy") is None:
        sys.exit("error: numpy is not installed: pip install numpy")
    try:
        import llama_cpp  # noqa: F401  (loads llama.cpp's library: a broken build fails here)
    except Exception as e:  # ImportError, or OSError from a broken shared library
        build = VULKAN_BUILD if args.llama_gpu_layers > 0 else CPU_BUILD
        sys.exit(f"error: llama-cpp-python is not usable ({type(e).__name__}: {e}). Install it "
                 f"built without AMX (on these machines llama.cpp's quantized matmuls otherwise die "
                 f"with SIGILL; tests/fixtures/README.md):\n  {build}")


def prompt_ids(n_vocab: int, n: int) -> list[int]:
    # The same ids as examples/bench.rs prompt_ids.
    span = max(n_vocab - 300, 1)
    return [100 + (i * 7919 + 13) % span for i in range(n)]


def run_edgeseek(args) -> dict:
    cmd = [str(BENCH), "--model", args.model, "--prompt-tokens", str(args.prompt_tokens),
           "--gen-tokens", str(args.gen_tokens), "--repeat", str(args.repeat), "--json"]
    env = dict(os.environ)
    env.setdefault("XDG_RUNTIME_DIR", "/tmp")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"edgeseek bench failed:\n{out.stderr}")
    j = json.loads(out.stdout)
    return {"prefill_tok_s": j["prefill_tok_s"]["median"], "decode_tok_s": j["decode_tok_s"]["median"],
            "adapter": j["adapter"]}


def run_llama(args) -> dict:
    import llama_cpp as lc  # checked by preflight
    import numpy as np
    global _LOG_CB  # ctypes must keep the callback alive
    _LOG_CB = lc.llama_log_callback(lambda *a: None)
    lc.llama_log_set(_LOG_CB, ctypes.c_void_p(0))
    lc.llama_backend_init()
    mp = lc.llama_model_default_params()
    mp.n_gpu_layers = args.llama_gpu_layers
    model = lc.llama_model_load_from_file(args.model.encode(), mp)
    if not model:
        sys.exit(f"llama.cpp could not load {args.model}")
    n_vocab = lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(model))
    ids = prompt_ids(n_vocab, args.prompt_tokens)
    cp = lc.llama_context_default_params()
    cp.n_ctx = args.prompt_tokens + args.gen_tokens + 8
    cp.n_batch = max(args.prompt_tokens, 1)
    cp.n_ubatch = max(args.prompt_tokens, 1)
    cp.n_threads = cp.n_threads_batch = args.threads
    prefill, decode = [], []
    batch = lc.llama_batch_init(len(ids), 0, 1)
    try:
        for _ in range(args.repeat):
            ctx = lc.llama_init_from_model(model, cp)

            def step(tokens, pos0):
                batch.n_tokens = len(tokens)
                for i, t in enumerate(tokens):
                    batch.token[i] = t
                    batch.pos[i] = pos0 + i
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = 0
                    batch.logits[i] = 1 if i == len(tokens) - 1 else 0
                if lc.llama_decode(ctx, batch) != 0:
                    sys.exit("llama_decode failed")
                row = lc.llama_get_logits_ith(ctx, -1)
                return int(np.ctypeslib.as_array(row, shape=(n_vocab,)).argmax())

            t = time.perf_counter()
            nxt = step(ids, 0)
            prefill.append(len(ids) / (time.perf_counter() - t))
            t = time.perf_counter()
            for i in range(args.gen_tokens - 1):
                nxt = step([nxt], len(ids) + i)
            decode.append((args.gen_tokens - 1) / (time.perf_counter() - t))
            lc.llama_free(ctx)
    finally:
        lc.llama_batch_free(batch)
        lc.llama_model_free(model)
    backend = "Vulkan" if args.llama_gpu_layers > 0 else f"CPU, {args.threads} threads"
    return {"prefill_tok_s": statistics.median(prefill), "decode_tok_s": statistics.median(decode),
            "backend": backend, "version": lc.__version__}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--llama-gpu-layers", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    preflight(args)
    ours = run_edgeseek(args)
    ref = run_llama(args)
    ratio = {k: ours[k] / ref[k] for k in ("prefill_tok_s", "decode_tok_s")}
    if args.json:
        print(json.dumps({"model": args.model, "edgeseek": ours, "llama_cpp": ref, "ratio": ratio}))
        return 0
    print(f"{args.model}: prompt {args.prompt_tokens}, generate {args.gen_tokens}, median of {args.repeat}")
    print(f"{'':28s} {'prefill tok/s':>14s} {'decode tok/s':>13s}")
    print(f"{'edgeseek (' + ours['adapter'][:15] + ')':28s} {ours['prefill_tok_s']:14.2f} {ours['decode_tok_s']:13.2f}")
    print(f"{'llama.cpp ' + ref['backend']:28s} {ref['prefill_tok_s']:14.2f} {ref['decode_tok_s']:13.2f}")
    print(f"{'ratio edgeseek / llama.cpp':28s} {ratio['prefill_tok_s']:14.3f} {ratio['decode_tok_s']:13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
