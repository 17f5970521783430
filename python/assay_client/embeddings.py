"""Sentence embeddings with all-MiniLM-L6-v2, computed on the network.

:func:`embed` publishes a ``minilm-embed`` job (the guest of
``examples/minilm-embed``) with the model files as inputs and decodes its
``embeddings`` output: little-endian f32, one row per sentence.

The model files come from the cache ``assay model fetch`` fills
(``$ASSAY_MODEL_DIR/all-MiniLM-L6-v2``, else
``$XDG_CACHE_HOME/assay/models/all-MiniLM-L6-v2``, else
``~/.cache/assay/models/all-MiniLM-L6-v2``); each is checked against the
SHA-256 pinned in ``cli/src/model_store.rs`` before it is sent.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

from .client import BytesOrPath, _read, job_spec
from .errors import AssayError, ModelError

if TYPE_CHECKING:
    from .client import Client

#: The model's name (the cache folder).
MODEL = "all-MiniLM-L6-v2"

#: (file in the model folder, the job input it becomes, SHA-256, size) —
#: ``FILES`` in ``cli/src/model_store.rs``.
MODEL_FILES: Tuple[Tuple[str, str, str, int], ...] = (
    ("model.safetensors", "model", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", 90_868_376),
    ("tokenizer.json", "tokenizer", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037", 466_247),
    ("config.json", "config", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41", 612),
    (
        "sentence_bert_config.json",
        "sentence_bert_config",
        "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
        53,
    ),
    ("1_Pooling/config.json", "pooling_config", "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23", 190),
    ("modules.json", "modules", "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf", 349),
)

#: Where the workspace build puts the guest, relative to the repository.
GUEST_PATH = "target/guests/wasm32-wasip2/release/minilm_embed.wasm"


def model_dir() -> Path:
    """Where ``assay model fetch`` caches the model (see the module doc)."""
    if os.environ.get("ASSAY_MODEL_DIR"):
        return Path(os.environ["ASSAY_MODEL_DIR"]) / MODEL
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "assay" / "models" / MODEL
    return Path.home() / ".cache" / "assay" / "models" / MODEL


def load_model(directory: Union[str, "os.PathLike[str]", None] = None) -> Dict[str, bytes]:
    """The model's files as job inputs (input name → bytes), each checked
    against its pinned SHA-256. Raises :class:`ModelError` (run ``assay
    model fetch``) if one is missing or different."""
    d = Path(directory) if directory is not None else model_dir()
    out: Dict[str, bytes] = {}
    for path, name, sha, size in MODEL_FILES:
        p = d / path
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise ModelError(
                f"the model {MODEL} is not installed ({path} is missing in {d}): run `assay model fetch`"
            ) from None
        except OSError as e:
            raise ModelError(f"cannot read {p}: {e}") from None
        actual = hashlib.sha256(data).hexdigest()
        if len(data) != size or actual != sha:
            raise ModelError(
                f"{p} is not the pinned file (SHA-256 {actual}, expected {sha}): "
                "delete the folder and run `assay model fetch` again"
            )
        out[name] = data
    return out


def find_guest() -> Path:
    """The minilm-embed component: ``$ASSAY_MINILM_WASM``, else
    :data:`GUEST_PATH` under the current folder or one above it."""
    env = os.environ.get("ASSAY_MINILM_WASM")
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        p = d / GUEST_PATH
        if p.is_file():
            return p
    raise AssayError(
        "cannot find the minilm-embed component: pass component=PATH (built by `cargo build --release` "
        f"in the Assay workspace as {GUEST_PATH}) or set ASSAY_MINILM_WASM"
    )


def text_input(texts: Sequence[str]) -> bytes:
    """The ``text`` input: one sentence per line.

    >>> text_input(["a", "b c"])
    b'a\\nb c\\n'
    """
    for i, t in enumerate(texts):
        if "\n" in t or "\r" in t:
            raise AssayError(f"text {i} contains a line break: each text must be one line (the job embeds lines)")
    return "".join(t + "\n" for t in texts).encode("utf-8")


def decode_embeddings(data: bytes, dim: int) -> List[List[float]]:
    """Little-endian f32 rows of ``dim`` → lists of floats (exact: every
    f32 is a Python float).

    >>> decode_embeddings(struct.pack("<4f", 1, 2, 3, 4), 2)
    [[1.0, 2.0], [3.0, 4.0]]
    """
    if dim <= 0 or len(data) % (4 * dim):
        raise AssayError(f"the embeddings output is {len(data)} bytes, not rows of {dim} f32s")
    flat = struct.unpack(f"<{len(data) // 4}f", data)
    return [list(flat[i : i + dim]) for i in range(0, len(flat), dim)]


def embed(
    client: "Client",
    texts: Sequence[str],
    *,
    component: Optional[BytesOrPath] = None,
    model_dir: Union[str, "os.PathLike[str]", None] = None,
    shards: int = 1,
    batch_size: Optional[int] = None,
    max_price: int = 20,
    fuel: int = 50_000_000_000,
    work_budget: int = 1_000_000_000_000,
    verify_rate: Optional[float] = None,
    unverified: bool = False,
    timeout: float = 1800.0,
) -> List[List[float]]:
    """See :meth:`Client.embeddings`."""
    if not texts:
        return []
    comp = _read("the component", component) if component is not None else find_guest().read_bytes()
    inputs: Dict[str, BytesOrPath] = dict(load_model(model_dir))
    if any("\n" in t or "\r" in t for t in texts):
        # Texts with line breaks go as the guest's `texts` input (a JSON
        # array, one row per item), which cannot be split by line.
        if shards > 1:
            raise AssayError("texts with line breaks cannot be split across shards: use shards=1")
        inputs["texts"] = json.dumps(list(texts)).encode("utf-8")
    else:
        inputs["text"] = text_input(texts)
    params = {"batch_size": str(batch_size)} if batch_size is not None else {}
    shards = max(1, min(shards, len(texts)))
    job = client.publish(
        comp,
        inputs,
        spec=job_spec(fuel=fuel, work_budget=work_budget, params=params),
        shards=shards,
        split_inputs=["text"] if shards > 1 else [],
        max_price=max_price,
        verify_rate=verify_rate,
        unverified=unverified,
    )
    status = client.follow(job.job_id, timeout=timeout)
    for x in status.shards:
        if x.receipt.outcome != 1:  # OUTCOME_SUCCESS
            why = x.failure_message or "see the shard's `error` output (client.shard_outputs(job_id))"
            raise AssayError(f"the minilm-embed job {job.job_id.hex()} failed on shard {x.index}: {why}")
    shard_outputs = client.shard_outputs(job.job_id)
    rows: List[List[float]] = []
    for out in shard_outputs:
        try:
            info = json.loads(out["info.json"])
            dim = int(info["dim"])
        except (KeyError, ValueError, TypeError) as e:
            raise AssayError(f"the job's info.json is not what minilm-embed writes ({e})") from None
        rows.extend(decode_embeddings(out["embeddings"], dim))
    if len(rows) != len(texts):
        raise AssayError(f"the job returned {len(rows)} embeddings for {len(texts)} texts")
    return rows
