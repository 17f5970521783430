#!/usr/bin/env python3
"""Benchmark: all-MiniLM-L6-v2 sentence embeddings, Assay vs onnxruntime.

Sentences/s on the fixed 64-sentence set of `assay demo`
(cli/src/demo_sentences.txt) at batch sizes 1, 16, 64 with 1 and 2 threads:

- assay: `assay demo --json --threads T --batch-size B` (the minilm-embed
  guest in the sandbox, CPU backend). The time is the job's wall time:
  instantiate, parse tokenizer.json, tokenize, the weights from the inputs,
  all batches, pooling, outputs. The demo runs the job twice on one
  runtime: "cold" is the first run (weights decoded and packed inside the
  job's time), "warm" the second (weights resident on the device, as on a
  provider running shards of one model; comparable to onnxruntime, whose
  session is built before timing). Best of --reps invocations each.
- onnxruntime: the same model exported to ONNX (torch.onnx.export of the
  transformers BertModel + mean pooling + L2 normalisation, made once and
  cached), CPUExecutionProvider with intra_op_num_threads=T,
  inter_op_num_threads=1; the time is tokenization (HF `tokenizers`, same
  truncation, batches sorted by length like the guest) + all batches of
  session.run; the session is built before timing. Best of --reps.
- candle (0.11, when --candle points at the built peer,
  scripts/bench_minilm_candle): candle-transformers' BertModel + mean
  pooling + L2 normalisation, timed like onnxruntime (tokenization + every
  batch; model loading not timed), RAYON_NUM_THREADS=T. Best of --reps.

The ONNX model is checked first against reference.json (the
sentence-transformers embeddings of the test set), so the peer is known to
compute the same function.

Usage (after `cargo build --release -p assay-cli` and `assay model fetch`):
    python3 -m venv /tmp/minilm-venv
    /tmp/minilm-venv/bin/pip install -r scripts/minilm_requirements.txt
    cargo build --release --manifest-path scripts/bench_minilm_candle/Cargo.toml   # optional peer
    /tmp/minilm-venv/bin/python scripts/bench_minilm.py --assay target/release/assay \
        --candle scripts/bench_minilm_candle/target/release/bench-minilm-candle
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from minilm_reference import model_dir, read_lines  # noqa: E402

SENTENCES = ROOT / "cli" / "src" / "demo_sentences.txt"
TESTDATA = ROOT / "examples" / "minilm-embed" / "testdata"
BATCHES = (1, 16, 64)
THREADS = (1, 2)


def export_onnx(model: Path, path: Path) -> None:
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(model), attn_implementation="eager").eval()

    class Embed(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, ids, mask):
            h = self.m(input_ids=ids, attention_mask=mask).last_hidden_state
            mf = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * mf).sum(1) / mf.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    # A dummy batch WITH padding, so that no "mask is all ones" shortcut is traced.
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 102, 0, 0]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.long)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        Embed(bert),
        (ids, mask),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["embeddings"],
        dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}, "embeddings": {0: "b"}},
        opset_version=17,
        dynamo=False,
    )


class Ort:
    def __init__(self, onnx_path: Path, model: Path, threads: int):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.tok = Tokenizer.from_file(str(model / "tokenizer.json"))
        self.tok.no_padding()
        max_len = json.loads((model / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.tok.enable_truncation(max_len)

    def embed(self, sentences, batch):
        import numpy as np

        ids = [e.ids for e in self.tok.encode_batch(sentences)]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out = np.zeros((len(ids), 384), dtype=np.float32)
        for at in range(0, len(order), batch):
            chunk = order[at : at + batch]
            s = max(len(ids[i]) for i in chunk)
            x = np.zeros((len(chunk), s), dtype=np.int64)
            m = np.zeros((len(chunk), s), dtype=np.int64)
            for r, i in enumerate(chunk):
                x[r, : len(ids[i])] = ids[i]
                m[r, : len(ids[i])] = 1
            (e,) = self.sess.run(None, {"input_ids": x, "attention_mask": m})
            out[chunk] = e
        return out


def assay_rate(assay: str, threads: int, batch: int, reps: int, n: int):
    """Sentences/s of the job in the sandbox, as (warm, warm per CPU-s, cold, cold per CPU-s).

    Each `assay demo` runs the job twice on one runtime. Cold is the first
    run: the weights are decoded from the input and packed for matmul inside
    the job's time. Warm is the second: the weights are resident on the
    device (as on a provider running shard after shard of one model), which
    is what onnxruntime's timing is comparable to (its session, with the
    weights loaded and prepacked, is built before timing). Per CPU-s only
    with one thread, where every host op runs on the job's thread.
    """
    warm = cold = warm_cpu = cold_cpu = float("inf")
    for _ in range(reps):
        r = subprocess.run(
            [assay, "demo", "--json", "--no-fetch", "--backend", "cpu", "--threads", str(threads), "--batch-size", str(batch)],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            sys.exit(f"assay demo failed ({r.returncode}):\n{r.stderr}")
        v = json.loads(r.stdout)
        assert v["sentences"] == n and v["rerun_identical"], v
        cold = min(cold, v["seconds"])
        warm = min(warm, v["rerun_seconds"])
        if v.get("cpu_seconds"):
            cold_cpu = min(cold_cpu, v["cpu_seconds"])
        if v.get("rerun_cpu_seconds"):
            warm_cpu = min(warm_cpu, v["rerun_cpu_seconds"])

    def per_cpu(t):
        return n / t if threads == 1 and t < float("inf") else None

    return n / warm, per_cpu(warm_cpu), n / cold, per_cpu(cold_cpu)


def candle_rate(candle: str, model: Path, threads: int, batch: int, reps: int, n: int, reference=None):
    """(sentences per wall second, per CPU second or None, max |diff| vs reference or None)."""
    args = [candle, str(model), str(SENTENCES), str(batch), str(reps)]
    if reference:
        args.append(str(reference))
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"the candle peer failed ({r.returncode}):\n{r.stderr}")
    v = json.loads(r.stdout)
    return n / v["seconds"], (n / v["cpu_seconds"] if threads == 1 else None), v.get("max_abs_diff")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assay", default=str(ROOT / "target" / "release" / "assay"))
    ap.add_argument("--model", type=Path, default=model_dir())
    ap.add_argument("--onnx", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "assay-bench" / "minilm.onnx")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--candle", help="the built scripts/bench_minilm_candle binary (optional peer)")
    args = ap.parse_args()

    import numpy as np
    import onnxruntime

    if not (args.model / "model.safetensors").is_file():
        sys.exit(f"no model in {args.model}: run `assay model fetch` first")
    if not args.onnx.is_file():
        print(f"exporting the ONNX model to {args.onnx}", file=sys.stderr)
        export_onnx(args.model, args.onnx)

    # The peer computes the same function: check it on the reference set.
    ref = json.loads((TESTDATA / "reference.json").read_text())
    ort1 = Ort(args.onnx, args.model, 2)
    got = ort1.embed(ref["sentences"], 16)
    want = np.asarray(ref["embeddings"], dtype=np.float32)
    diff = float(np.abs(got - want).max())
    print(f"onnxruntime {onnxruntime.__version__} vs reference.json: max |diff| {diff:.2e}")
    if diff > 1e-4:
        sys.exit("the ONNX export does not match the reference; not benchmarking it")

    if args.candle:
        _, _, d = candle_rate(args.candle, args.model, 2, 16, 1, 64, TESTDATA / "reference.json")
        print(f"candle vs reference.json: max |diff| {d:.2e}")
        if d > 1e-4:
            sys.exit("the candle peer does not match the reference; not benchmarking it")

    sentences = read_lines(SENTENCES)
    n = len(sentences)
    load_before = os.getloadavg()
    rows = []
    for threads in THREADS:
        ort_t = Ort(args.onnx, args.model, threads)
        for batch in BATCHES:
            ort_t.embed(sentences, batch)  # warm-up
            best = best_cpu = float("inf")
            for _ in range(args.reps):
                t, c = time.perf_counter(), time.process_time()
                ort_t.embed(sentences, batch)
                best = min(best, time.perf_counter() - t)
                best_cpu = min(best_cpu, time.process_time() - c)
            ort_rate = n / best
            ort_cpu = n / best_cpu if threads == 1 else None
            a_rate, a_cpu, cold_rate, cold_cpu = assay_rate(args.assay, threads, batch, args.reps, n)
            c_rate = c_cpu = None
            if args.candle:
                c_rate, c_cpu, _ = candle_rate(args.candle, args.model, threads, batch, args.reps, n)
            rows.append((batch, threads, a_rate, ort_rate, c_rate, a_cpu, ort_cpu, c_cpu, cold_rate, cold_cpu))
            print(f"batch {batch:>2} threads {threads}: assay {a_rate:8.1f}/s (cold {cold_rate:.1f}/s)  onnxruntime {ort_rate:8.1f}/s  ratio {a_rate / ort_rate:.2f}", file=sys.stderr)

    load_after = os.getloadavg()
    print()
    print(
        f"{n} sentences (cli/src/demo_sentences.txt), sentences/s, best of {args.reps}; ratio = assay / onnxruntime; "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print()
    def num(v):
        return f"{v:.1f}" if v else "—"

    def ratio(a, b):
        return f"{a / b:.2f}" if a and b else "—"

    print("| batch | threads | assay (sandbox, warm) | onnxruntime | candle | ÷ onnxruntime | ÷ candle "
          "| assay per CPU-s | onnxruntime per CPU-s | candle per CPU-s | ÷ onnxruntime (CPU) | ÷ candle (CPU) "
          "| assay cold | cold ÷ onnxruntime | cold per CPU-s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for batch, threads, a, o, c, ac, oc, cc, cold, cold_c in rows:
        print(f"| {batch} | {threads} | {num(a)} | {num(o)} | {num(c)} | {ratio(a, o)} | {ratio(a, c)} "
              f"| {num(ac)} | {num(oc)} | {num(cc)} | {ratio(ac, oc)} | {ratio(ac, cc)} "
              f"| {num(cold)} | {ratio(cold, o)} | {num(cold_c)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
