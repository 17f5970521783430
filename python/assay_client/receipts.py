"""Receipts: a provider's signed statement of one run.

The signature covers the receipt's canonical bytes (domain
``assay/receipt/v3``, ``ReceiptBody::signing_bytes`` in Rust), never its
protobuf or JSON form; its id is blake3 over domain ``assay/receipt-id/v1``,
the signed bytes and the signature.

A receipt is either the protobuf message (``JobStatus.shards[i].receipt``)
or the JSON object ``assay run`` writes to ``OUT/.assay/receipt.json``:

>>> import json                                              # doctest: +SKIP
>>> receipt = json.load(open("out/.assay/receipt.json"))     # doctest: +SKIP
>>> verify_receipt(receipt).hex()                            # doctest: +SKIP
'5d0c…'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from ._proto import assay_pb2 as pb
from .canonical import Encoder
from .errors import ReceiptError
from .keys import verify_signature

#: Outcome names (``assay run --json``, ``receipt.json``) in code order: the
#: code is what the signature covers (the protobuf enum is the code + 1).
OUTCOMES = (
    "success",
    "guest-error",
    "trap",
    "fuel-exhausted",
    "work-budget-exhausted",
    "memory-limit",
    "gpu-quota-exceeded",
    "output-limit-exceeded",
)

ReceiptLike = Union["pb.Receipt", Mapping[str, Any]]


@dataclass(frozen=True)
class Telemetry:
    """What the GPU did during the run."""

    samples: int
    max_temperature_c: int
    mean_power_mw: int
    mean_utilization_pct: int


@dataclass(frozen=True)
class ReceiptBody:
    """Everything a receipt states, decoded and checked for shape."""

    semantics: int
    job_id: bytes
    shard_index: int
    shard_count: int
    provider_id: bytes
    component_hash: bytes
    inputs_root: bytes
    outputs_root: bytes
    trace_root: bytes
    outcome: str
    fuel_used: int
    work_flops: int
    work_bytes: int
    backend_kind: str
    backend_device: str
    telemetry: Optional[Telemetry]
    started_at_ms: int
    finished_at_ms: int
    signature: bytes

    def signing_bytes(self) -> bytes:
        """The canonical bytes the provider signed."""
        e = Encoder("assay/receipt/v3")
        e.u32(self.semantics).fixed32(self.job_id).u32(self.shard_index).u32(self.shard_count)
        e.fixed32(self.provider_id).fixed32(self.component_hash).fixed32(self.inputs_root)
        e.fixed32(self.outputs_root).fixed32(self.trace_root)
        e.u8(OUTCOMES.index(self.outcome)).u64(self.fuel_used).u64(self.work_flops).u64(self.work_bytes)
        e.str(self.backend_kind).str(self.backend_device)
        t = self.telemetry
        if t is None:
            e.u8(0)
        else:
            e.u8(1).u32(t.samples).u32(t.max_temperature_c).u64(t.mean_power_mw).u32(t.mean_utilization_pct)
        e.u64(self.started_at_ms).u64(self.finished_at_ms)
        return e.finish()

    def id(self) -> bytes:
        """The receipt id: blake3 of the signed bytes and the signature."""
        e = Encoder("assay/receipt-id/v1")
        e.bytes(self.signing_bytes()).bytes(self.signature)
        return e.hash()


def _fixed(field: str, v: bytes, n: int) -> bytes:
    if len(v) != n:
        raise ReceiptError(f"receipt.{field}: expected {n} bytes, got {len(v)}")
    return bytes(v)


def _hex(field: str, v: Any, n: int) -> bytes:
    if not isinstance(v, str):
        raise ReceiptError(f"receipt.{field}: expected a hex string, got {type(v).__name__}")
    try:
        return _fixed(field, bytes.fromhex(v), n)
    except ValueError as e:
        raise ReceiptError(f"receipt.{field}: not hex ({e})") from None


def _int(d: Mapping[str, Any], field: str) -> int:
    v = d.get(field)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ReceiptError(f"receipt.{field}: expected a non-negative integer, got {v!r}")
    return v


def _shard(index: int, count: int) -> None:
    if count == 0 or index >= count:
        raise ReceiptError(f"receipt.shard {index}/{count}: need index < count and count ≥ 1")


def decode_receipt(receipt: ReceiptLike) -> ReceiptBody:
    """A protobuf ``Receipt`` or a ``receipt.json`` object → :class:`ReceiptBody`.

    Raises :class:`ReceiptError` if a field is missing or malformed.
    """
    if isinstance(receipt, pb.Receipt):
        r = receipt
        index, count = (r.shard.index, r.shard.count) if r.HasField("shard") else (0, 1)
        _shard(index, count)
        if r.outcome <= 0 or r.outcome > len(OUTCOMES):
            raise ReceiptError(f"receipt.outcome: unknown outcome {r.outcome}")
        tel = (
            Telemetry(
                r.telemetry.samples,
                r.telemetry.max_temperature_c,
                r.telemetry.mean_power_mw,
                r.telemetry.mean_utilization_pct,
            )
            if r.HasField("telemetry")
            else None
        )
        return ReceiptBody(
            semantics=r.semantics,
            job_id=_fixed("job_id", r.job_id, 32),
            shard_index=index,
            shard_count=count,
            provider_id=_fixed("provider_id", r.provider_id, 32),
            component_hash=_fixed("component_hash", r.component_hash, 32),
            inputs_root=_fixed("inputs_root", r.inputs_root, 32),
            outputs_root=_fixed("outputs_root", r.outputs_root, 32),
            trace_root=_fixed("trace_root", r.trace_root, 32),
            outcome=OUTCOMES[r.outcome - 1],
            fuel_used=r.fuel_used,
            work_flops=r.work.flops,
            work_bytes=r.work.bytes,
            backend_kind=r.backend.kind,
            backend_device=r.backend.device,
            telemetry=tel,
            started_at_ms=r.started_at_ms,
            finished_at_ms=r.finished_at_ms,
            signature=_fixed("signature", r.signature, 64),
        )
    if not isinstance(receipt, Mapping):
        raise ReceiptError(f"a receipt is a protobuf Receipt or a JSON object, not {type(receipt).__name__}")
    d = receipt
    shard = d.get("shard") or {}
    work = d.get("work") or {}
    backend = d.get("backend") or {}
    if not isinstance(shard, Mapping) or not isinstance(work, Mapping) or not isinstance(backend, Mapping):
        raise ReceiptError("receipt.shard, .work and .backend must be objects")
    index, count = _int(shard, "index"), _int(shard, "count")
    _shard(index, count)
    outcome = d.get("outcome")
    if outcome not in OUTCOMES:
        raise ReceiptError(f"receipt.outcome: unknown outcome {outcome!r}")
    t = d.get("telemetry")
    tel = None
    if t is not None:
        if not isinstance(t, Mapping):
            raise ReceiptError("receipt.telemetry must be an object or null")
        tel = Telemetry(
            _int(t, "samples"), _int(t, "max_temperature_c"), _int(t, "mean_power_mw"), _int(t, "mean_utilization_pct")
        )
    kind, device = backend.get("kind", ""), backend.get("device", "")
    if not isinstance(kind, str) or not isinstance(device, str):
        raise ReceiptError("receipt.backend.kind and .device must be strings")
    return ReceiptBody(
        semantics=_int(d, "semantics"),
        job_id=_hex("job_id", d.get("job_id"), 32),
        shard_index=index,
        shard_count=count,
        provider_id=_hex("provider_id", d.get("provider_id"), 32),
        component_hash=_hex("component_hash", d.get("component_hash"), 32),
        inputs_root=_hex("inputs_root", d.get("inputs_root"), 32),
        outputs_root=_hex("outputs_root", d.get("outputs_root"), 32),
        trace_root=_hex("trace_root", d.get("trace_root"), 32),
        outcome=str(outcome),
        fuel_used=_int(d, "fuel_used"),
        work_flops=_int(work, "flops"),
        work_bytes=_int(work, "bytes"),
        backend_kind=kind,
        backend_device=device,
        telemetry=tel,
        started_at_ms=_int(d, "started_at_ms"),
        finished_at_ms=_int(d, "finished_at_ms"),
        signature=_hex("signature", d.get("signature"), 64),
    )


def receipt_id(receipt: ReceiptLike) -> bytes:
    """The receipt's id (32 bytes), whether or not its signature verifies."""
    return decode_receipt(receipt).id()


def verify_receipt(receipt: ReceiptLike) -> bytes:
    """Checks the receipt's ed25519 signature against the provider it names;
    returns the receipt id.

    Raises :class:`ReceiptError` if any signed byte or the signature was
    changed, or the receipt is malformed.
    """
    body = decode_receipt(receipt)
    if not verify_signature(body.provider_id, body.signing_bytes(), body.signature):
        raise ReceiptError(
            f"the receipt's signature does not verify: it was not signed by provider {body.provider_id.hex()} "
            "or was altered after signing — do not trust its results"
        )
    return body.id()
