#!/usr/bin/env python3
"""Benchmark: SmolLM2-135M-Instruct (GGUF, Q4_1) on the CPU, Assay vs llama.cpp vs candle.

Prefill and greedy decode tokens/s at 1 and 2 threads, on one prompt (the
chat prompt of cli/benches/llm.rs, "Write a short poem about the ocean.",
tokenized by the guest) and 64 decode steps. Every engine runs in its own
process, one after another (never two at once), and reports its own peak
RSS:

- assay: `cargo bench -p assay-cli --bench llm -- --threads T --json`, the
  llm-generate guest in the sandbox with the weights resident (a warm-up
  job first). Prefill tokens/s is the prompt over a 1-token job, decode
  tokens/s is 64 / (t(65 tokens) − t(1 token)); best of 3 each. Its
  prompt ids (from the 1-thread run) are what the peers are given.
- candle (when built, scripts/bench_llm_candle): candle-transformers'
  quantized llama on the same GGUF file, `--prompt-ids`, 64 greedy decode
  steps, best of --reps.
- llama.cpp: scripts/bench_llm_llamacpp.py with this interpreter, llama.cpp
  compiled from the llama-cpp-python source package (-march=native, CPU
  only): `Llama.eval(prompt)` then 64 × `Llama.eval([argmax])`, best of
  --reps; the model loaded before timing.

All three are greedy on the same prompt ids; the report says how many of
the first ids each peer shares with Assay. llama.cpp quantises the
activations to 8 bits (Q8_1) for its Q4_1 dot products, and so does
candle's CPU quantized matmul (a port of ggml's), so their ids may part
from Assay's after some tokens: informational, not a failure.

candle 0.11's x86 path has no SIMD kernel for Q4_1 (its Q4_1 dot product
is the scalar fallback; Q4_0 and Q8_0 have AVX2 ones), so its default
build is slow on this model; build it with RUSTFLAGS="-C target-cpu=native"
for its best numbers and say which build a table comes from.

Usage (from the repository root; the model from `assay model fetch smollm2`
or --model / ASSAY_SMOLLM2_GGUF):
    python3 -m venv /tmp/llm-bench-venv
    # llama-cpp-python from source: see scripts/bench_llm_requirements.txt
    cargo build --release --manifest-path scripts/bench_llm_candle/Cargo.toml   # optional peer
    /tmp/llm-bench-venv/bin/python scripts/bench_llm.py
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent
THREADS = (1, 2)
CANDLE = SCRIPTS / "bench_llm_candle" / "target" / "release" / "bench-llm-candle"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model() -> Path:
    """ASSAY_SMOLLM2_GGUF, else where `assay model fetch smollm2` puts it (cli/src/model_store.rs)."""
    env = os.environ.get("ASSAY_SMOLLM2_GGUF")
    if env:
        return Path(env)
    root = os.environ.get("ASSAY_MODEL_DIR")
    if not root:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(cache, "assay", "models")
    return Path(root) / "SmolLM2-135M-Instruct" / GGUF


def result_line(name: str, r: subprocess.CompletedProcess) -> dict:
    """The JSON line with "peer" in a peer's stdout (other lines are ignored)."""
    if r.returncode != 0:
        sys.exit(f"{name} failed ({r.returncode}):\n{r.stderr[-4000:]}\n{r.stdout[-2000:]}")
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                v = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(v, dict) and "peer" in v:
                return v
    sys.exit(f"{name} printed no result line:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def run_assay(model: Path, threads: int) -> dict:
    cmd = ["cargo", "bench", "-p", "assay-cli", "--bench", "llm", "--", "--threads", str(threads), "--json"]
    print(f"assay, {threads} thread(s): {' '.join(cmd)}", file=sys.stderr)
    env = dict(os.environ, ASSAY_SMOLLM2_GGUF=str(model))
    return result_line("assay (cargo bench --bench llm)", subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True))


def peer_args(model: Path, threads: int, prompt_ids, decode: int, reps: int) -> list:
    return ["--model", str(model), "--threads", str(threads), "--prompt-ids", ",".join(map(str, prompt_ids)),
            "--decode", str(decode), "--reps", str(reps)]


def run_candle(candle: str, model: Path, threads: int, prompt_ids, decode: int, reps: int) -> dict:
    print(f"candle, {threads} thread(s)", file=sys.stderr)
    cmd = [candle] + peer_args(model, threads, prompt_ids, decode, reps)
    return result_line("the candle peer", subprocess.run(cmd, capture_output=True, text=True))


def run_llamacpp(model: Path, threads: int, prompt_ids, decode: int, reps: int) -> dict:
    print(f"llama.cpp, {threads} thread(s)", file=sys.stderr)
    cmd = [sys.executable, str(SCRIPTS / "bench_llm_llamacpp.py")] + peer_args(model, threads, prompt_ids, decode, reps)
    return result_line("the llama.cpp peer", subprocess.run(cmd, capture_output=True, text=True))


def shared_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=default_model(), help="the SmolLM2-135M-Instruct Q4_1 GGUF file")
    ap.add_argument("--candle", default=str(CANDLE), help="the built scripts/bench_llm_candle binary (skipped if absent)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of the peers (best of)")
    args = ap.parse_args()

    if not args.model.is_file():
        sys.exit(f"no SmolLM2 at {args.model}: run `assay model fetch smollm2` or pass --model / set ASSAY_SMOLLM2_GGUF")
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        sys.exit(f"{sys.executable} has no llama_cpp: install scripts/bench_llm_requirements.txt (see its comment)")
    candle = args.candle if args.candle and Path(args.candle).is_file() else None
    if not candle:
        print(f"no candle peer at {args.candle} (cargo build --release --manifest-path "
              "scripts/bench_llm_candle/Cargo.toml): skipped", file=sys.stderr)

    load_before = os.getloadavg()
    rows = []  # (threads, result)
    prompt_ids = None
    decode = None
    for threads in THREADS:
        a = run_assay(args.model, threads)
        if prompt_ids is None:
            prompt_ids, decode = a["prompt_ids"], a["decode_tokens"]
        elif a["prompt_ids"] != prompt_ids:
            sys.exit(f"assay's prompt ids changed between thread counts: {prompt_ids} vs {a['prompt_ids']}")
        rows.append((threads, a))
        if candle:
            rows.append((threads, run_candle(candle, args.model, threads, prompt_ids, decode, args.reps)))
        rows.append((threads, run_llamacpp(args.model, threads, prompt_ids, decode, args.reps)))
    load_after = os.getloadavg()

    versions = {r["peer"]: r.get("version") for _, r in rows if r.get("version")}
    print()
    print(
        f"SmolLM2-135M-Instruct Q4_1 ({args.model.name}), {len(prompt_ids)} prompt tokens, {decode} greedy decode steps; "
        f"tokens/s, best of 3 (assay) / {args.reps} (peers); "
        + (", ".join(f"{p} {v}" for p, v in versions.items()) + "; " if versions else "")
        + f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print()

    def num(v):
        return f"{v:.1f}" if v else "—"

    def ratio(a, b):
        return f"{a / b:.2f}" if a and b else "—"

    assay = {t: r for t, r in rows if r["peer"] == "assay"}
    print("| threads | engine | prompt tokens | prefill tok/s | decode tok/s | Assay decode ÷ engine decode "
          "| Assay prefill ÷ engine prefill | RSS MiB |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for threads, r in rows:
        a = assay[threads]
        print(f"| {threads} | {r['peer']} | {r['prompt_tokens']} | {num(r['prefill_tok_s'])} | {num(r['decode_tok_s'])} "
              f"| {ratio(a['decode_tok_s'], r['decode_tok_s'])} | {ratio(a['prefill_tok_s'], r['prefill_tok_s'])} "
              f"| {r['rss_mib']:.0f} |")
    print()
    for threads, r in rows:
        if r["peer"] == "assay":
            continue
        a_ids = assay[threads]["ids"]
        n = shared_prefix(a_ids, r["ids"])
        print(f"- {threads} thread(s): {r['peer']} shares the first {n} of Assay's {len(a_ids)} greedy ids"
              + (" (all)" if n == len(a_ids) == len(r["ids"]) else ""))
    print()
    print("(llama.cpp, and candle's CPU quantized matmul, quantise the activations to 8 bits in their Q4_1 "
          "dot products, so their ids may part from Assay's: informational.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
