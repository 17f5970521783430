#!/usr/bin/env python3
"""The llama.cpp peer of scripts/bench_llm.py: prefill and greedy decode speed.

llama.cpp as built from the llama-cpp-python source package (see
scripts/bench_llm_requirements.txt; installed with --no-binary, so the
library is compiled on this machine, -march=native, CPU backend only).
The model is loaded once (`load_s`), then each of --reps repetitions:

- resets the state (`Llama.reset()` and the KV cache cleared);
- prefill: `Llama.eval(prompt_ids)`, the prompt ids as given (no BOS
  added, no tokenizer involved), one batch (n_batch = 512);
- decode: the first token is the argmax of the prefill's last logits, then
  --decode times: `Llama.eval([token])` and the argmax of its logits, so
  --decode + 1 greedy ids in all, like Assay's 65 for 64 decode steps.
  The decode time is those --decode steps (evals and argmaxes).

Best of the reps for each phase. Prints one JSON line:
{"peer": "llama.cpp", "threads", "prompt_tokens", "decode_tokens",
"prefill_tok_s", "decode_tok_s", "load_s", "rss_mib" (peak RSS of this
process), "ids" (the greedy ids), "version" (llama_cpp.__version__)}.

With logits_all=False, llama-cpp-python (0.3.x) no longer copies the logits
into `Llama.scores` in `eval`, so the logits are read straight from the
context (`llama_get_logits_ith(ctx, -1)`: the last token's row).

Usage:
    /tmp/llm-bench-venv/bin/python scripts/bench_llm_llamacpp.py \\
        --model ~/.cache/assay/models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --threads 1 --prompt-ids 1,9690,198 --decode 64 --reps 3
"""

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--prompt-ids", required=True, help="comma-separated token ids")
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import llama_cpp

    prompt = [int(t) for t in args.prompt_ids.split(",") if t.strip()]
    n_ctx = 512
    if not prompt or len(prompt) + args.decode + 1 > n_ctx:
        print(f"prompt of {len(prompt)} tokens + {args.decode} does not fit n_ctx {n_ctx}", file=sys.stderr)
        return 2
    if not args.model.is_file():
        print(f"no model at {args.model}", file=sys.stderr)
        return 2

    t = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=str(args.model),
        n_threads=args.threads,
        n_threads_batch=args.threads,
        n_ctx=n_ctx,
        n_batch=512,
        logits_all=False,
        verbose=False,
    )
    load_s = time.perf_counter() - t
    n_vocab = llm.n_vocab()

    def argmax_last() -> int:
        ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return int(np.argmax(np.ctypeslib.as_array(ptr, shape=(n_vocab,))))

    def reset() -> None:
        llm.reset()
        # reset() only clears the memory of recurrent models; clear the KV cache too.
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)

    prefill_s = decode_s = float("inf")
    ids = None
    for _ in range(args.reps):
        reset()
        t = time.perf_counter()
        llm.eval(prompt)
        tok = argmax_last()
        t_prefill = time.perf_counter() - t
        out = [tok]
        t = time.perf_counter()
        for _ in range(args.decode):
            llm.eval([tok])
            tok = argmax_last()
            out.append(tok)
        t_decode = time.perf_counter() - t
        if ids is not None and out != ids:
            print(f"greedy ids differ between reps: {ids} vs {out}", file=sys.stderr)
            return 1
        ids = out
        prefill_s = min(prefill_s, t_prefill)
        decode_s = min(decode_s, t_decode)

    print(
        json.dumps(
            {
                "peer": "llama.cpp",
                "threads": args.threads,
                "prompt_tokens": len(prompt),
                "decode_tokens": args.decode,
                "prefill_tok_s": len(prompt) / prefill_s,
                "decode_tok_s": args.decode / decode_s,
                "load_s": load_s,
                "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "ids": ids,
                "version": llama_cpp.__version__,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
