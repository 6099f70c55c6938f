#!/usr/bin/env python3
"""The R1-slice benchmark: edgeseek's examples/bench at four memory budgets, warm and from
a cold page cache, and llama.cpp's llama-bench (CPU) on the same split file, as one table.

The model is the synthetic DeepSeek-R1 slice that scripts/make_r1_slice.py writes (true R1
shapes, 1 dense + 2 MoE layers, the dynamic IQ1_S mix, 3 parts). The budgets:
  all       --expert-cache-mb larger than all expert bytes: every expert resident
  10%       --expert-cache-mb at 10 % of the expert bytes
  min       --expert-cache-mb min: one token's experts of one layer
  25% file  --max-resident-mb at 25 % of the model's bytes (the slice's dense part, 1.3 GiB,
            still fits: the rest of the budget is expert cache)
  15% file  --max-resident-mb at 15 % of the model's bytes: below the dense part, so dense
            layers stream from the file every token as well
Each is run warm (the parts in the page cache; --repeat runs, medians) and cold: every
part's cached pages are dropped first (posix_fadvise DONTNEED on each part, which needs no
root and leaves the rest of the cache alone; fincore confirms 0 pages cached) and one run
is made, load included. The logits digest of every run (FNV-1a over all logits bits) must
be the same at every budget: the script says so, or exits 1.

llama-bench runs on the CPU (-ngl 0) with 2 threads, mmap, the same token counts, warm
and cold (its mmap is MAP_POPULATE: a cold run pays the whole read at load); its peak RSS
comes from GNU time.

Needs (all checked first): target/release/examples/bench (cargo build --release
--examples); the model parts (python3 scripts/make_r1_slice.py); the Python module gguf;
and for the llama.cpp rows GNU time (/usr/bin/time) and llama-bench (--llama-bin DIR or
LLAMA_CPP_BIN; built as tests/fixtures/README.md says, "llama.cpp's tools"), or --no-llama.

Usage (from the repository root):
    python3 scripts/bench_r1_slice.py [--model models/synthetic/DeepSeek-R1-slice-UD-IQ1_S-00001-of-00003.gguf]
        [--prompt-tokens 16] [--gen-tokens 8] [--repeat 2] [--llama-bin DIR] [--no-llama]
        [--only LABEL ...] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import _needs  # noqa: E402  (standard library only: it runs before the imports it checks)

_needs.modules(__doc__, "gguf")

BENCH = REPO / "target" / "release" / "examples" / "bench"
DEFAULT_MODEL = REPO / "models" / "synthetic" / "DeepSeek-R1-slice-UD-IQ1_S-00001-of-00003.gguf"
MIB = 1 << 20


def parts_of(first: Path) -> list[Path]:
    m = re.match(r"(.*)-(\d{5})-of-(\d{5})\.gguf$", first.name)
    if not m:
        return [first]
    n = int(m.group(3))
    return [first.with_name(f"{m.group(1)}-{i:05d}-of-{n:05d}.gguf") for i in range(1, n + 1)]


def drop_cache(parts: list[Path]) -> str:
    """Evicts the parts' pages from the page cache; returns fincore's account of them."""
    for p in parts:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    try:
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "-o", "RES", *map(str, parts)],
                             capture_output=True, text=True, check=True).stdout.split()
        return f"{sum(int(x) for x in out)} bytes cached after eviction"
    except (OSError, subprocess.CalledProcessError, ValueError):
        return "fincore unavailable: eviction not verified"


def expert_bytes(model: Path) -> int:
    """Bytes of all routed-expert tensors (ffn_*_exps), from the GGUF headers."""
    import gguf  # noqa: PLC0415  (checked at the start)
    total = 0
    for p in parts_of(model):
        for t in gguf.GGUFReader(p).tensors:
            if "_exps." in t.name:
                total += int(t.n_bytes)
    return total


def run_bench(model: Path, extra: list[str], args, repeat: int) -> dict:
    cmd = [str(BENCH), "--model", str(model), "--prompt-tokens", str(args.prompt_tokens),
           "--gen-tokens", str(args.gen_tokens), "--repeat", str(repeat), "--json", *extra]
    t = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    j = json.loads(out.stdout.strip().splitlines()[-1])
    j["wall_s"] = time.time() - t
    return j


def run_llama(llama_bin: Path, model: Path, args, repeat: int) -> dict:
    cmd = [str(llama_bin / "llama-bench"), "-m", str(model), "-ngl", "0", "-t", "2", "-p", str(args.prompt_tokens),
           "-n", str(args.gen_tokens), "-r", str(repeat), "-o", "json"]
    env = dict(os.environ, LD_LIBRARY_PATH=str(llama_bin))
    t = time.time()
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    rows = json.loads(out.stdout)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    peak = int(m.group(1)) * 1024 if m else 0
    res = {"wall_s": time.time() - t, "peak_rss_bytes": peak}
    for r in rows:
        key = "prefill_tok_s" if r["n_prompt"] > 0 else "decode_tok_s"
        res[key] = r["avg_ts"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--prompt-tokens", type=int, default=16)
    ap.add_argument("--gen-tokens", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--llama-bin", help="directory of llama-bench (default: $LLAMA_CPP_BIN)")
    ap.add_argument("--no-llama", action="store_true", help="skip llama-bench")
    ap.add_argument("--only", action="append", help="run only the budgets with these labels "
                    "(all experts, 10%% experts, min, 25%% of file, 15%% of file)")
    ap.add_argument("--json", type=Path, help="also write all results here")
    args = ap.parse_args()

    if not BENCH.exists():
        sys.exit(f"error: {BENCH} is missing: cargo build --release --examples")
    parts = parts_of(args.model)
    missing = [p for p in parts if not p.exists()]
    if missing:
        sys.exit("error: model parts missing: " + ", ".join(map(str, missing))
                 + "\nmake them with: python3 scripts/make_r1_slice.py")
    if not args.no_llama:
        args.llama_bin = _needs.llama_tools(args.llama_bin, ["llama-bench"], "for the llama.cpp rows",
                                            "pass --no-llama to bench edgeseek only")
        if not Path("/usr/bin/time").exists():
            sys.exit("error: the llama.cpp rows take peak RSS from GNU time, which is missing:\n"
                     "  apt-get install -y time   (or pass --no-llama)")

    file_bytes = sum(p.stat().st_size for p in parts)
    exp = expert_bytes(args.model)
    budgets = [
        ("all experts", ["--expert-cache-mb", str(exp // MIB + 64)]),
        ("10% experts", ["--expert-cache-mb", str(exp // 10 // MIB)]),
        ("min", ["--expert-cache-mb", "min"]),
        ("25% of file", ["--max-resident-mb", str(file_bytes // 4 // MIB)]),
        ("15% of file", ["--max-resident-mb", str(file_bytes * 15 // 100 // MIB)]),
    ]
    if args.only:
        budgets = [b for b in budgets if b[0] in args.only]
    print(f"model {args.model.name}: {len(parts)} parts, {file_bytes / MIB:.0f} MiB, "
          f"routed experts {exp / MIB:.0f} MiB; p{args.prompt_tokens} g{args.gen_tokens}", flush=True)
    results = []
    for label, extra in budgets:
        for cache in ["warm", "cold"]:
            if cache == "warm":
                run_bench(args.model, extra, args, 1)  # fills the page cache
                note = ""
                j = run_bench(args.model, extra, args, args.repeat)
            else:
                note = drop_cache(parts)
                j = run_bench(args.model, extra, args, 1)
            j.update(label=label, cache=cache, flags=" ".join(extra), note=note)
            results.append(j)
            print(f"  {label} {cache}: decode {j['decode_tok_s']['median']:.2f} tok/s ({note})", flush=True)
    llama = []
    if not args.no_llama:
        for cache in ["warm", "cold"]:
            if cache == "warm":
                run_llama(args.llama_bin, args.model, args, 1)
                note = ""
                r = run_llama(args.llama_bin, args.model, args, args.repeat)
            else:
                note = drop_cache(parts)
                r = run_llama(args.llama_bin, args.model, args, 1)
            r.update(cache=cache, note=note)
            llama.append(r)

    digests = {d for j in results for d in j["logits_digest"]}
    print()
    print("| run | cache | load s | prefill tok/s | decode tok/s | anon RSS MiB | peak RSS MiB "
          "| GPU buffers MiB | expert hit rate | MiB read / token | stall ms / token |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for j in results:
        e = j.get("experts", {})
        gpu = sum(j[k] for k in ["gpu_weights_bytes", "gpu_expert_cache_bytes", "gpu_kv_bytes",
                                 "gpu_scratch_bytes", "gpu_stream_ring_bytes"])
        read = e.get("bytes_read_per_token", 0) + j.get("dense_streamed_per_token", 0)
        print(f"| edgeseek {j['label']} (`{j['flags']}`) | {j['cache']} | {j['load_s']:.1f} "
              f"| {j['prefill_tok_s']['median']:.2f} | {j['decode_tok_s']['median']:.2f} "
              f"| {j['anon_rss_bytes'] / MIB:.0f} | {j['peak_rss_bytes'] / MIB:.0f} | {gpu / MIB:.0f} "
              f"| {100 * e.get('hit_rate', 0):.1f}% | {read / MIB:.1f} "
              f"| {1000 * e.get('stall_s_per_token', 0):.0f} |")
    for r in llama:
        print(f"| llama.cpp CPU, 2 threads, mmap | {r['cache']} | | {r.get('prefill_tok_s', 0):.2f} "
              f"| {r.get('decode_tok_s', 0):.2f} | | {r['peak_rss_bytes'] / MIB:.0f} | | | | |")
    for j in results + llama:
        if j.get("note"):
            print(f"cold run ({j.get('label', 'llama.cpp')}): {j['note']}")
    if args.json:
        args.json.write_text(json.dumps({"edgeseek": results, "llama_cpp": llama}, indent=1))
    if len(digests) != 1:
        print(f"error: logits differ between budgets: digests {sorted(digests)}")
        sys.exit(1)
    print(f"logits bitwise identical in every edgeseek run (digest {digests.pop()})")


if __name__ == "__main__":
    main()
