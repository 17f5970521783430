"""Signed requests: the ``Auth`` every state-changing request carries.

The signature covers (``assay_proto::auth`` in Rust)::

    canonical( domain "assay/rpc/<Message>/v2",
               node id (bytes), coordinator id (bytes),
               u64 nonce, u64 expires_at_ms,
               then the request's other fields in field order )

The coordinator id (32 bytes, ``Renter.GetCoordinator``; :class:`Client`
asks for it once) names the coordinator a request is for: every other
coordinator refuses it, so it cannot be replayed there.

with the field encodings of ``proto/src/auth.rs`` (its ``signed!`` bodies),
never protobuf's own bytes. Only the messages this SDK sends are
implemented; :func:`signing_bytes` raises ``TypeError`` for others.

>>> from assay_client._proto import assay_pb2 as pb
>>> from assay_client.keys import NodeKey
>>> here = bytes([7]) * 32
>>> req = sign(NodeKey.from_seed(bytes(32)), pb.FaucetRequest(amount=5), coordinator_id=here, at_ms=1_000)
>>> req.auth.expires_at_ms, len(req.auth.signature)
(61000, 64)
"""

from __future__ import annotations

import os
import struct
import time
from typing import Callable, Dict, Optional, TypeVar

from google.protobuf.message import Message

from ._proto import assay_pb2 as pb
from .canonical import Encoder
from .keys import NodeKey, verify_signature

#: How long a signed request stays valid (the coordinator accepts at most 5 min).
REQUEST_TTL_MS = 60_000

M = TypeVar("M", bound=Message)


def _shard(e: Encoder, m: Message, field: str) -> None:
    if not m.HasField(field):
        e.u8(0)
        return
    s = getattr(m, field)
    e.u8(1).u32(s.index).u32(s.count)


def _spec(e: Encoder, m: Message) -> None:
    if not m.HasField("spec"):
        e.u8(0)
        return
    s = m.spec
    e.u8(1).u64(s.fuel).u64(s.memory_bytes).u64(s.gpu_memory_bytes).u64(s.work_budget)
    e.u64(s.output_bytes).u64(s.log_bytes).u64(s.wall_clock_ms).u64(s.start_time_ms)
    _shard(e, s, "shard")
    # Rust keeps params in a BTreeMap: sorted by key, byte-wise (UTF-8 order
    # is code point order, which is what sorting Python strs gives).
    e.u64(len(s.params))
    for k in sorted(s.params):
        e.str(k).str(s.params[k])


def _blob_refs(e: Encoder, refs: "list[pb.BlobRef]") -> None:  # type: ignore[name-defined]
    e.u64(len(refs))
    for r in refs:
        e.str(r.name).bytes(r.hash).u64(r.size)


def _upload_header(m: pb.UploadHeader, e: Encoder) -> None:
    e.bytes(m.hash).u64(m.size)


def _faucet(m: pb.FaucetRequest, e: Encoder) -> None:
    e.u64(m.amount).str(m.unit)


def _amount(m: Message, e: Encoder) -> None:
    e.u64(m.amount)  # type: ignore[attr-defined]


def _submit_job(m: pb.SubmitJobRequest, e: Encoder) -> None:
    e.bytes(m.component_hash).u64(m.component_size)
    _blob_refs(e, list(m.inputs))
    _spec(e, m)
    e.u32(m.shards).u64(m.max_price)
    if m.HasField("requirements"):
        e.u8(1).u8(1 if m.requirements.gpu else 0)
    else:
        e.u8(0)
    e.u64(len(m.split_inputs))
    for name in m.split_inputs:
        e.str(name)
    e.u32(m.verify_rate_ppm).u8(1 if m.unverified else 0)
    e.str(m.pay_in)
    # Added after the first release: encoded only when set, so a request
    # without it signs what it signed before the field existed.
    cluster_id = getattr(m, "cluster_id", b"")
    if cluster_id:
        e.bytes(cluster_id)


def _download(m: pb.DownloadRequest, e: Encoder) -> None:
    e.bytes(m.hash).u64(m.offset).u64(m.length).bytes(m.job_id)


def _stat(m: pb.StatRequest, e: Encoder) -> None:
    e.u64(len(m.hashes))
    for h in m.hashes:
        e.bytes(h)
    e.bytes(m.job_id)


def _get_job(m: pb.GetJobRequest, e: Encoder) -> None:
    e.bytes(m.job_id).u32(m.wait_ms).str(m.seen_state).u32(m.inline_outputs_max_bytes)


_BODIES: Dict[str, Callable[..., None]] = {
    "DownloadRequest": _download,
    "StatRequest": _stat,
    "GetJobRequest": _get_job,
    "UploadHeader": _upload_header,
    "FaucetRequest": _faucet,
    "StakeRequest": _amount,
    "UnstakeRequest": _amount,
    "SubmitJobRequest": _submit_job,
}


def signing_bytes(msg: Message, node_id: bytes, coordinator_id: bytes, nonce: int, expires_at_ms: int) -> bytes:
    """The bytes a request's signature covers (its ``auth`` is ignored)."""
    kind = msg.DESCRIPTOR.name
    body = _BODIES.get(kind)
    if body is None:
        raise TypeError(f"the SDK does not sign {kind} requests (it signs {', '.join(sorted(_BODIES))})")
    e = Encoder(f"assay/rpc/{kind}/v2")
    e.bytes(node_id).bytes(coordinator_id).u64(nonce).u64(expires_at_ms)
    body(msg, e)
    return e.finish()


def now_ms() -> int:
    """The current Unix time in milliseconds."""
    return time.time_ns() // 1_000_000


def sign(
    key: NodeKey,
    msg: M,
    *,
    coordinator_id: bytes,
    at_ms: Optional[int] = None,
    ttl_ms: int = REQUEST_TTL_MS,
    nonce: Optional[int] = None,
) -> M:
    """Fills ``msg.auth``: ``key``'s node id, the coordinator it is for
    (``coordinator_id``, 32 bytes), a random nonce (unless given), expiry
    ``at_ms + ttl_ms`` (``at_ms`` defaults to now), and the signature.
    Returns ``msg``."""
    if len(coordinator_id) != 32:
        raise ValueError(f"a coordinator id is 32 bytes, not {len(coordinator_id)} (Client.coordinator_id gives it)")
    if at_ms is None:
        at_ms = now_ms()
    if nonce is None:
        nonce = struct.unpack("<Q", os.urandom(8))[0]
    expires = at_ms + ttl_ms
    msg.ClearField("auth")  # type: ignore[arg-type]
    sig = key.sign(signing_bytes(msg, key.node_id, coordinator_id, nonce, expires))
    auth = msg.auth  # type: ignore[attr-defined]
    auth.node_id = key.node_id
    auth.coordinator_id = coordinator_id
    auth.nonce = nonce
    auth.expires_at_ms = expires
    auth.signature = sig
    return msg


def verify(msg: Message) -> bool:
    """True iff ``msg.auth`` is a valid signature of ``msg`` (expiry not checked)."""
    if not msg.HasField("auth"):  # type: ignore[arg-type]
        return False
    a = msg.auth  # type: ignore[attr-defined]
    return verify_signature(a.node_id, signing_bytes(msg, a.node_id, a.coordinator_id, a.nonce, a.expires_at_ms), a.signature)
