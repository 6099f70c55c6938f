#!/usr/bin/env bash
# One short run on a real GPU (issue #16): edgeseek's bench --json on SmolLM2 and the
# synthetic R1-Distill-Qwen-1.5B, beside llama.cpp's llama-bench on the same files where
# one is given, as one table with the ratios and the share of the GPU's memory bandwidth
# that decode reaches.
#
# Usage (from the repository root):
#   scripts/device-bench.sh [--quick]
# Environment (all optional):
#   BENCH=path            a prebuilt examples/bench (default: cargo build --release
#                         --examples here, and target/release/examples/bench)
#   LLAMA_BENCH=path      llama.cpp's llama-bench, built for this GPU (Vulkan or CUDA);
#                         run with -ngl 99. Without it the llama.cpp columns stay empty.
#   PEAK_GBPS=number      the GPU's memory bandwidth in GB/s (H100 SXM 3350, H200 4800),
#                         for the bandwidth column
#   MODELS="a.gguf b.gguf" the files to run (default: SmolLM2 and the synthetic 1.5B files
#                         that exist; the 1.5B F16 file is generated when numpy and gguf
#                         are installed)
# --quick: 1 repeat and fewer tokens (p32 g16) instead of 3 repeats of p64 g32.
# Needs python3 (JSON and the table). Every missing piece is named before anything runs.
set -euo pipefail
cd "$(dirname "$0")/.."

P=64 G=32 R=3
if [[ "${1:-}" == "--quick" ]]; then P=32 G=16 R=1; fi
command -v python3 >/dev/null || { echo "error: device-bench.sh needs python3" >&2; exit 1; }

if [[ -z "${BENCH:-}" ]]; then
    # Built here, always (a no-op when up to date): a stale binary would time old code.
    command -v cargo >/dev/null || {
        echo "error: no cargo to build examples/bench: install Rust (rustup.rs) or pass BENCH=path" >&2
        exit 1
    }
    cargo build --release --examples
    BENCH=target/release/examples/bench
elif [[ ! -x "$BENCH" ]]; then
    echo "error: BENCH=$BENCH is not an executable" >&2
    exit 1
fi

if [[ -z "${MODELS:-}" ]]; then
    MODELS=""
    [[ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ]] && MODELS+=" models/SmolLM2-135M-Instruct.Q4_1.gguf"
    syn=models/synthetic/synthetic-r1-distill-qwen-1.5b
    if [[ ! -f $syn-F16.gguf ]] && python3 -c "import numpy, gguf" 2>/dev/null; then
        python3 tests/fixtures/make_synthetic_r1_1p5b.py --formats '' >&2
    fi
    for f in Q4_K_M Q8_0 F16; do [[ -f $syn-$f.gguf ]] && MODELS+=" $syn-$f.gguf"; done
fi
if [[ -z "${MODELS// /}" ]]; then
    echo "error: no model to run: ./models/fetch-smollm2.sh, or pass MODELS=\"path.gguf ...\"" >&2
    exit 1
fi
if [[ -n "${LLAMA_BENCH:-}" && ! -x "$LLAMA_BENCH" ]]; then
    echo "error: LLAMA_BENCH=$LLAMA_BENCH is not an executable" >&2
    exit 1
fi

out=$(mktemp -d)
for m in $MODELS; do
    name=$(basename "$m" .gguf)
    echo "bench $name ..." >&2
    "$BENCH" --model "$m" --prompt-tokens "$P" --gen-tokens "$G" --repeat "$R" --json \
        | tail -n 1 > "$out/$name.edgeseek.json"
    if [[ -n "${LLAMA_BENCH:-}" ]]; then
        echo "llama-bench $name ..." >&2
        "$LLAMA_BENCH" -m "$m" -ngl 99 -p "$P" -n "$G" -r "$R" -o json > "$out/$name.llama.json"
    fi
done

python3 - "$out" "${PEAK_GBPS:-}" <<'EOF'
import json, pathlib, sys
out, peak = pathlib.Path(sys.argv[1]), sys.argv[2]
rows = []
for e in sorted(out.glob("*.edgeseek.json")):
    j = json.loads(e.read_text())
    name = e.name[: -len(".edgeseek.json")]
    pre, dec = j["prefill_tok_s"]["median"], j["decode_tok_s"]["median"]
    lp = ld = None
    lj = out / f"{name}.llama.json"
    if lj.exists():
        for r in json.loads(lj.read_text()):
            if r["n_prompt"] > 0:
                lp = r["avg_ts"]
            else:
                ld = r["avg_ts"]
    # Decode reads every weight once per token: the file's bytes are the traffic.
    gbps = dec * j["model_file_bytes"] / 1e9
    bw = f"{gbps:.0f} GB/s" + (f" ({100 * gbps / float(peak):.0f} %)" if peak else "")
    ratio = lambda a, b: f"{a / b:.2f}x" if b else "-"
    rows.append(f"| {name} | {j['adapter']} | {pre:.1f} / {dec:.1f} | "
                f"{lp or 0:.1f} / {ld or 0:.1f} | {ratio(pre, lp)} / {ratio(dec, ld)} | {bw} |")
print("| model | adapter | edgeseek prefill / decode tok/s | llama.cpp prefill / decode tok/s "
      "| ratio | decode weight traffic |")
print("|---|---|---|---|---|---|")
print("\n".join(rows))
EOF
