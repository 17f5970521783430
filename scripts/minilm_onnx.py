#!/usr/bin/env python3
"""all-MiniLM-L6-v2 as an ONNX graph written by hand, for onnxruntime, without torch.

The benchmark of the gateway (scripts/bench_gateway.py, issue #17) needs a
local anchor: the same function the minilm-embed guest computes, run by
onnxruntime on this machine's CPU. Exporting from PyTorch would pull a
multi-gigabyte wheel in, so the graph is built here with `onnx.helper` from
the model's own files (`model.safetensors`, `config.json`,
`sentence_bert_config.json`), as sentence-transformers computes it:

  word + position + token-type (type 0) embeddings, LayerNorm;
  per layer: Q/K/V linear, per-head softmax(Q·Kᵀ/√d + mask bias)·V,
  output projection + residual + LayerNorm, GELU (exact erf) feed-forward
  + residual + LayerNorm;
  masked mean pooling (sum / max(count, 1e-9)), L2 normalisation
  (x / max(‖x‖, 1e-12)).

Tokenization: HF `tokenizers` on `tokenizer.json`, with the file's own
truncation (128) and padding replaced, as sentence-transformers does:
`[CLS] … [SEP]`, truncated to `max_seq_length` (256), a batch padded with
id 0 and attention mask 0.

Used as a module (`Embedder(model_dir).embed(sentences)`), or:
    python scripts/minilm_onnx.py --write minilm.onnx     # the graph
    echo "a sentence" | python scripts/minilm_onnx.py      # embeddings as JSON
"""

import argparse
import json
import math
import os
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# The opset: LayerNormalization needs 17; 18 gives every Reduce* its axes as an input.
OPSET = 18
# The additive bias on padded key positions: exp() of it is exactly 0 in
# f32, so a padded token weighs nothing, as in the guest (which computes no
# padding at all).
MASK_BIAS = -1e9
# sentence-transformers' Pooling clamps the token count at 1e-9.
POOL_EPS = 1e-9
# sentence-transformers' Normalize (`F.normalize`) eps.
NORMALIZE_EPS = 1e-12


def model_dir() -> Path:
    """Where `assay model fetch` puts the model (same rules as cli/src/model_store.rs)."""
    root = os.environ.get("ASSAY_MODEL_DIR")
    if not root:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(cache, "assay", "models")
    return Path(root) / "all-MiniLM-L6-v2"


_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def read_safetensors(path: Path) -> dict:
    """Every tensor of a safetensors file as a numpy array (f16 widened to f32)."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(meta["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has dtype {meta['dtype']}, not one of {list(_DTYPES)}")
        start, end = meta["data_offsets"]
        arr = np.frombuffer(data, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize, offset=base + start)
        arr = arr.reshape(meta["shape"])
        out[name] = arr.astype(np.float32) if dtype == np.float16 else arr.copy()
    return out


def max_seq_length(model: Path, config: dict) -> int:
    sbert = model / "sentence_bert_config.json"
    if sbert.is_file():
        return int(json.loads(sbert.read_text())["max_seq_length"])
    return int(config["max_position_embeddings"])


def build_model(model: Path) -> onnx.ModelProto:
    """The BERT encoder + mean pooling + L2 normalisation as an ONNX model.

    Inputs `input_ids` and `attention_mask` (int64, [batch, seq]); output
    `embeddings` (f32, [batch, hidden])."""
    config = json.loads((model / "config.json").read_text())
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"hidden_act {config.get('hidden_act')!r}: only exact-erf gelu is written here")
    w = read_safetensors(model / "model.safetensors")
    # Some exports prefix every name with "bert.".
    if "embeddings.word_embeddings.weight" not in w:
        w = {k[len("bert.") :]: v for k, v in w.items() if k.startswith("bert.")}
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    head_dim = hidden // heads

    nodes, inits = [], []
    counter = [0]

    def name(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(value, prefix="c") -> str:
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.asarray(value), n))
        return n

    def op(kind: str, inputs, prefix=None, **attrs) -> str:
        out = name(prefix or kind.lower())
        nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def linear(x: str, prefix: str) -> str:
        # y = x · Wᵀ + b, with Wᵀ stored once (contiguous) as the initializer.
        wt = const(np.ascontiguousarray(w[f"{prefix}.weight"].T), "w")
        b = const(w[f"{prefix}.bias"], "b")
        return op("Add", [op("MatMul", [x, wt]), b])

    def layer_norm(x: str, prefix: str) -> str:
        g = const(w[f"{prefix}.weight"], "ln_g")
        b = const(w[f"{prefix}.bias"], "ln_b")
        return op("LayerNormalization", [x, g, b], axis=-1, epsilon=eps)

    # Embeddings: word + position (0..seq) + token type 0.
    word = op("Gather", [const(w["embeddings.word_embeddings.weight"], "word_emb"), "input_ids"], axis=0)
    seq = op("Slice", [op("Shape", ["input_ids"]), const(np.array([1], np.int64)), const(np.array([2], np.int64))])
    pos = op(
        "Slice",
        [const(w["embeddings.position_embeddings.weight"], "pos_emb"), const(np.array([0], np.int64)), seq, const(np.array([0], np.int64))],
    )
    token_type = const(w["embeddings.token_type_embeddings.weight"][0], "type_emb")
    x = layer_norm(op("Add", [op("Add", [word, pos]), token_type]), "embeddings.LayerNorm")

    # The attention mask as an additive bias on the keys: [batch, 1, 1, seq].
    mask_f = op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask_bias = op(
        "Mul",
        [op("Sub", [const(np.float32(1.0)), op("Unsqueeze", [mask_f, const(np.array([1, 2], np.int64))])]), const(np.float32(MASK_BIAS))],
    )
    split_heads = const(np.array([0, 0, heads, head_dim], np.int64), "shape")
    merge_heads = const(np.array([0, 0, hidden], np.int64), "shape")
    scale = const(np.float32(1.0 / math.sqrt(head_dim)), "scale")
    inv_sqrt2 = const(np.float32(1.0 / math.sqrt(2.0)))
    half, one = const(np.float32(0.5)), const(np.float32(1.0))

    for i in range(layers):
        p = f"encoder.layer.{i}"
        q = op("Transpose", [op("Reshape", [linear(x, f"{p}.attention.self.query"), split_heads])], perm=[0, 2, 1, 3])
        k = op("Transpose", [op("Reshape", [linear(x, f"{p}.attention.self.key"), split_heads])], perm=[0, 2, 3, 1])
        v = op("Transpose", [op("Reshape", [linear(x, f"{p}.attention.self.value"), split_heads])], perm=[0, 2, 1, 3])
        scores = op("Add", [op("Mul", [op("MatMul", [q, k]), scale]), mask_bias])
        ctx = op("MatMul", [op("Softmax", [scores], axis=-1), v])
        ctx = op("Reshape", [op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_heads])
        x = layer_norm(op("Add", [linear(ctx, f"{p}.attention.output.dense"), x]), f"{p}.attention.output.LayerNorm")
        h = linear(x, f"{p}.intermediate.dense")
        # GELU, exact: 0.5 · h · (1 + erf(h / √2)).
        h = op("Mul", [op("Mul", [h, half]), op("Add", [op("Erf", [op("Mul", [h, inv_sqrt2])]), one])])
        x = layer_norm(op("Add", [linear(h, f"{p}.output.dense"), x]), f"{p}.output.LayerNorm")

    # Masked mean pooling over the real tokens, then L2 normalisation.
    mask3 = op("Unsqueeze", [mask_f, const(np.array([2], np.int64))])
    summed = op("ReduceSum", [op("Mul", [x, mask3]), const(np.array([1], np.int64))], keepdims=0)
    count = op("Max", [op("ReduceSum", [mask3, const(np.array([1], np.int64))], keepdims=0), const(np.float32(POOL_EPS))])
    pooled = op("Div", [summed, count])
    norm = op("Max", [op("ReduceL2", [pooled, const(np.array([1], np.int64))], keepdims=1), const(np.float32(NORMALIZE_EPS))])
    nodes.append(helper.make_node("Div", [pooled, norm], ["embeddings"]))

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", hidden])],
        initializer=inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="assay scripts/minilm_onnx.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


class Embedder:
    """Tokenizer + onnxruntime session; `embed(sentences)` is one request."""

    def __init__(self, model: Path, threads: int = 2):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        config = json.loads((model / "config.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
        # As sentence-transformers: no fixed padding, truncation at max_seq_length.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_seq_length(model, config))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            build_model(model).SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def tokenize(self, sentences):
        encs = self.tokenizer.encode_batch(list(sentences))
        width = max((len(e.ids) for e in encs), default=0)
        ids = np.zeros((len(encs), width), np.int64)
        mask = np.zeros((len(encs), width), np.int64)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        return ids, mask

    def embed(self, sentences) -> np.ndarray:
        """[n, hidden] float32, L2-normalised."""
        ids, mask = self.tokenize(sentences)
        (out,) = self.session.run(["embeddings"], {"input_ids": ids, "attention_mask": mask})
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=model_dir())
    ap.add_argument("--write", type=Path, help="write the ONNX model here and stop")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not (args.model / "model.safetensors").is_file():
        print(f"no model in {args.model}: run `assay model fetch` first", file=sys.stderr)
        return 2
    if args.write:
        onnx.save(build_model(args.model), str(args.write))
        print(f"wrote {args.write}")
        return 0
    lines = [l for l in sys.stdin.read().split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    emb = Embedder(args.model, args.threads).embed(lines)
    print(json.dumps([[float(v) for v in row] for row in emb]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
