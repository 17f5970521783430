#!/usr/bin/env python3
"""Independent NumPy reference for the SmolLM2-135M-Instruct forward pass.

This is a reference used to check Assay's exact-arithmetic Wasm implementation
of SmolLM2: greedy tokens and logits from that implementation are compared
against the output of this script. It shares no code with the Rust
implementation: weights are read with the `gguf` Python package, dequantised
to float32 by `gguf.quants.dequantize`, and all arithmetic is done in float64.

Model: llama architecture (30 layers, hidden 576, 9 query heads sharing 3 KV
heads, head dim 64, SwiGLU FFN 1536, RMSNorm, RoPE in GGML "normal" mode with
adjacent pairs (x[2i], x[2i+1]), output projection tied to `token_embd`).

Usage:
    python3 scripts/smollm2_reference.py --ids '[1, 4093, 198]' \\
        --max-tokens 64 [--gguf PATH] [--eos ID] [--json] [--logits] [--show]
    python3 scripts/smollm2_reference.py --ids-file completion.json ...

`--ids-file` takes a JSON array of token ids or an object with `prompt_ids`.
The model path defaults to $ASSAY_SMOLLM2_GGUF. Generation is greedy (argmax,
lowest index on ties) and stops after `--max-tokens` tokens or once the eos
token (default: `tokenizer.ggml.eos_token_id`) was generated; the eos id is
included in the returned ids. `--show` decodes prompt and completion with the
GGUF byte-level BPE vocabulary (no tokenizer library needed).

JSON result: `ids` (generated ids), `margins` (per generated step, top-1
minus top-2 logit), `first_close_step` (first step with margin < 0.05, or
null) and, with `--logits`, `prompt_last_logits` (the logits after the
prompt, rounded to float32).

Library use:
    from smollm2_reference import load
    model = load(path)
    model.generate(prompt_ids, max_tokens)  # -> dict as printed with --json
    model.logits(ids)                       # -> last position's logits
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass

import gguf
import numpy as np

CLOSE_MARGIN = 0.05


@dataclass
class Layer:
    """Weights of one transformer block; linear weights are [out, in]."""

    attn_norm: np.ndarray
    wq: np.ndarray
    wk: np.ndarray
    wv: np.ndarray
    wo: np.ndarray
    ffn_norm: np.ndarray
    w_gate: np.ndarray
    w_up: np.ndarray
    w_down: np.ndarray


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode table."""
    printable = (list(range(ord("!"), ord("~") + 1))
                 + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


class Model:
    """SmolLM2 weights (float64) plus the metadata needed to run them."""

    def __init__(self, reader: gguf.GGUFReader) -> None:
        def meta(key: str) -> object:
            return reader.fields[key].contents()

        tensors = {t.name: t for t in reader.tensors}

        def weight(name: str) -> np.ndarray:
            t = tensors[name]
            data = gguf.quants.dequantize(t.data, t.tensor_type)
            return data.astype(np.float64)

        self.n_layers = int(meta("llama.block_count"))
        self.n_heads = int(meta("llama.attention.head_count"))
        self.n_kv_heads = int(meta("llama.attention.head_count_kv"))
        self.hidden = int(meta("llama.embedding_length"))
        self.head_dim = self.hidden // self.n_heads
        self.eps = float(meta("llama.attention.layer_norm_rms_epsilon"))
        self.rope_base = float(meta("llama.rope.freq_base"))
        self.eos_id = int(meta("tokenizer.ggml.eos_token_id"))
        self.tokens: list[str] = list(meta("tokenizer.ggml.tokens"))
        self.token_types: list[int] = list(meta("tokenizer.ggml.token_type"))
        # [vocab, hidden]; also the (tied) output projection.
        self.embed = weight("token_embd.weight")
        self.output_norm = weight("output_norm.weight")
        self.layers = [
            Layer(*(weight(f"blk.{i}.{n}.weight") for n in (
                "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")))
            for i in range(self.n_layers)
        ]
        assert self.embed.shape == (len(self.tokens), self.hidden)
        assert "output.weight" not in tensors

    def rope(self, x: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Rotate adjacent pairs of x [heads, seq, head_dim] (GGML mode 0)."""
        i = np.arange(self.head_dim // 2, dtype=np.float64)
        freq = self.rope_base ** (-2.0 * i / self.head_dim)
        theta = positions[:, None] * freq
        cos, sin = np.cos(theta), np.sin(theta)
        even, odd = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = even * sin + odd * cos
        return out

    def heads(self, x: np.ndarray) -> np.ndarray:
        """Split [seq, heads * head_dim] into [heads, seq, head_dim]."""
        return x.reshape(x.shape[0], -1, self.head_dim).transpose(1, 0, 2)

    def forward(self, ids: list[int],
                cache: list[list[np.ndarray]]) -> np.ndarray:
        """Run `ids` after the positions held in `cache`; return [seq, vocab].

        `cache` holds one [keys, values] pair per layer, each of shape
        [kv_heads, past, head_dim], and is extended in place.
        """
        n, d = len(ids), self.head_dim
        past = cache[0][0].shape[1] if cache else 0
        if not cache:
            empty = np.zeros((self.n_kv_heads, 0, d))
            cache.extend([empty, empty] for _ in self.layers)
        positions = np.arange(past, past + n, dtype=np.float64)
        total = past + n
        # Query at position past+j may attend to keys 0..past+j.
        mask = np.arange(total)[None, :] > (past + np.arange(n))[:, None]
        group = self.n_heads // self.n_kv_heads
        x = self.embed[ids]
        for layer, kv in zip(self.layers, cache):
            h = rms_norm(x, layer.attn_norm, self.eps)
            q = self.heads(h @ layer.wq.T)
            k = self.heads(h @ layer.wk.T)
            v = self.heads(h @ layer.wv.T)
            kv[0] = np.concatenate([kv[0], self.rope(k, positions)], axis=1)
            kv[1] = np.concatenate([kv[1], v], axis=1)
            q = self.rope(q, positions)
            # Query head h uses KV head h // group.
            keys = np.repeat(kv[0], group, axis=0)
            values = np.repeat(kv[1], group, axis=0)
            scores = q @ keys.transpose(0, 2, 1) / np.sqrt(d)
            scores = np.where(mask, -np.inf, scores)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs = scores / scores.sum(axis=-1, keepdims=True)
            attn = (probs @ values).transpose(1, 0, 2).reshape(n, self.hidden)
            x = x + attn @ layer.wo.T
            h = rms_norm(x, layer.ffn_norm, self.eps)
            gated = silu(h @ layer.w_gate.T) * (h @ layer.w_up.T)
            x = x + gated @ layer.w_down.T
        return rms_norm(x, self.output_norm, self.eps) @ self.embed.T

    def logits(self, ids: list[int]) -> np.ndarray:
        """Logits of the last position after running `ids` from scratch."""
        return self.forward(ids, [])[-1]

    def generate(self, ids: list[int], max_tokens: int,
                 eos_id: int | None = None,
                 with_logits: bool = False) -> dict:
        """Greedy decoding; result keys as in the module docstring."""
        eos = self.eos_id if eos_id is None else eos_id
        cache: list[list[np.ndarray]] = []
        logits = self.forward(list(ids), cache)[-1]
        result: dict = {}
        if with_logits:
            result["prompt_last_logits"] = [
                float(str(v)) for v in logits.astype(np.float32)]
        out: list[int] = []
        margins: list[float] = []
        while len(out) < max_tokens:
            top = int(np.argmax(logits))  # first index on ties
            runner_up = np.max(np.delete(logits, top))
            out.append(top)
            margins.append(float(logits[top] - runner_up))
            if top == eos or len(out) == max_tokens:
                break
            logits = self.forward([top], cache)[-1]
        close = [i for i, m in enumerate(margins) if m < CLOSE_MARGIN]
        result.update(ids=out, margins=margins,
                      first_close_step=close[0] if close else None)
        return result

    def decode(self, ids: list[int]) -> str:
        """Byte-level BPE detokenisation; control tokens are kept verbatim."""
        table = byte_decoder()
        data = bytearray()
        for i in ids:
            token = self.tokens[i]
            if self.token_types[i] == gguf.TokenType.CONTROL:
                data += token.encode()
            else:
                data += bytes(table[c] for c in token)
        return data.decode("utf-8", errors="replace")


def load(path: str) -> Model:
    return Model(gguf.GGUFReader(path))


def read_ids(args: argparse.Namespace) -> list[int]:
    if args.ids is not None:
        value = json.loads(args.ids)
    else:
        with open(args.ids_file, encoding="utf-8") as f:
            value = json.load(f)
    if isinstance(value, dict):
        value = value["prompt_ids"]
    return [int(i) for i in value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ids", help="prompt token ids as a JSON array")
    source.add_argument("--ids-file",
                        help="JSON array, or object with prompt_ids")
    parser.add_argument("--max-tokens", type=int, required=True)
    parser.add_argument("--gguf", default=os.environ.get("ASSAY_SMOLLM2_GGUF"))
    parser.add_argument("--eos", type=int,
                        help="stop token (default: from GGUF)")
    parser.add_argument("--json", action="store_true", help="JSON to stdout")
    parser.add_argument("--logits", action="store_true",
                        help="include prompt_last_logits in the JSON")
    parser.add_argument("--show", action="store_true",
                        help="print decoded text")
    args = parser.parse_args()
    if not args.gguf:
        parser.error("--gguf or $ASSAY_SMOLLM2_GGUF is required")
    ids = read_ids(args)
    info = sys.stderr if args.json else sys.stdout

    start = time.perf_counter()
    model = load(args.gguf)
    loaded = time.perf_counter()
    eos = model.eos_id if args.eos is None else args.eos
    print(f"eos token {eos} = {model.tokens[eos]!r}; loaded in "
          f"{loaded - start:.1f}s", file=info)
    result = model.generate(ids, args.max_tokens, eos, args.logits)
    print(f"{len(ids)} prompt + {len(result['ids'])} generated tokens in "
          f"{time.perf_counter() - loaded:.1f}s", file=info)

    if args.show:
        print(f"prompt: {model.decode(ids)!r}", file=info)
        print(f"completion: {model.decode(result['ids'])!r}", file=info)
    if args.json:
        json.dump(result, sys.stdout)
        print()
    else:
        print(f"ids: {result['ids']}")
        print(f"margins: {[round(m, 4) for m in result['margins']]}")
        print(f"first_close_step: {result['first_close_step']}")


if __name__ == "__main__":
    main()
