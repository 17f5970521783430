"""What needs no coordinator: signing, keys, receipts, the stubs, doctests."""

from __future__ import annotations

import doctest
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assay_client import (
    AssayError,
    CoordinatorUnavailable,
    Client,
    KeyFileError,
    NodeKey,
    ReceiptError,
    decode_embeddings,
    sign,
    signing_bytes,
    verify_receipt,
)
from assay_client import signing
from assay_client._proto import assay_pb2 as pb
from assay_client.canonical import Encoder

from conftest import REPO, assay_run, guest_path, skip_or_fail

PROTO_DIR = Path(__file__).resolve().parents[1] / "assay_client" / "_proto"


def test_the_committed_stubs_are_what_generate_sh_makes_from_assay_proto(tmp_path: Path) -> None:
    try:
        import grpc_tools  # noqa: F401
    except ImportError:
        skip_or_fail("grpcio-tools is not installed: cannot check that the committed stubs are fresh "
                     "(python3 -m pip install grpcio-tools)", "ASSAY_REQUIRE_GRPC_TOOLS")
    script = REPO / "python" / "scripts" / "generate.sh"
    r = subprocess.run(
        ["bash", str(script), str(tmp_path)],
        capture_output=True, text=True, env=dict(os.environ, PYTHON=sys.executable),
    )
    assert r.returncode == 0, r.stderr

    # Only what the proto decides counts, not which grpcio-tools/protobuf
    # release wrote the files (their version stamps).
    stamp = re.compile(
        r"(# Protobuf Python Version: .*|GRPC_GENERATED_VERSION = .*|"
        r"_runtime_version\.ValidateProtobufRuntimeVersion\([^)]*\))"
    )
    for name in ("assay_pb2.py", "assay_pb2.pyi", "assay_pb2_grpc.py"):
        fresh = stamp.sub("", (tmp_path / name).read_text())
        committed = stamp.sub("", (PROTO_DIR / name).read_text())
        assert fresh == committed, (
            f"python/assay_client/_proto/{name} is stale: proto/assay.proto changed. "
            "Run python/scripts/generate.sh and commit the result."
        )


#: A coordinator id for signing offline.
HERE = bytes([7]) * 32


def test_a_signed_request_verifies_and_not_after_any_change() -> None:
    key = NodeKey.from_seed(bytes([1]) * 32)
    req = pb.SubmitJobRequest(
        component_hash=bytes([1]) * 32, component_size=10, shards=2, max_price=7,
        inputs=[pb.BlobRef(name="a", hash=bytes([2]) * 32, size=3)],
    )
    req.spec.params["b"] = "2"
    req.spec.params["a"] = "1"
    sign(key, req, coordinator_id=HERE, at_ms=1_000, nonce=42)
    assert signing.verify(req)
    assert req.auth.node_id == key.node_id and req.auth.nonce == 42 and req.auth.expires_at_ms == 61_000
    for change in (
        lambda m: setattr(m, "max_price", 8),
        lambda m: setattr(m.inputs[0], "size", 4),
        lambda m: setattr(m.auth, "nonce", 43),
        lambda m: setattr(m.auth, "coordinator_id", bytes([8]) * 32),
        lambda m: m.spec.params.__setitem__("a", "x"),
        lambda m: m.split_inputs.append("a"),
        lambda m: setattr(m, "unverified", True),
        lambda m: m.ClearField("spec"),
    ):
        changed = pb.SubmitJobRequest()
        changed.CopyFrom(req)
        change(changed)
        assert not signing.verify(changed)


def test_the_signed_bytes_follow_auth_rs_field_by_field() -> None:
    # FaucetRequest: domain, node, coordinator, nonce, expiry, u64 amount,
    # str unit.
    node = bytes(range(32))
    got = signing_bytes(pb.FaucetRequest(amount=5, unit="io"), node, HERE, 9, 10)
    want = Encoder("assay/rpc/FaucetRequest/v2").bytes(node).bytes(HERE).u64(9).u64(10).u64(5).str("io").finish()
    assert got == want
    # A signature for one kind never passes as another.
    a = sign(NodeKey.from_seed(bytes(32)), pb.FaucetRequest(amount=5), coordinator_id=HERE)
    b = pb.StakeRequest(amount=5)
    b.auth.CopyFrom(a.auth)
    assert signing.verify(a) and not signing.verify(b)
    # A cluster id is signed only when set (open-market jobs sign as before).
    job = pb.SubmitJobRequest(component_hash=bytes(32), shards=1)
    plain = signing_bytes(job, node, HERE, 1, 2)
    job.cluster_id = bytes([3]) * 32
    assert signing_bytes(job, node, HERE, 1, 2) == plain + Encoder("").bytes(bytes([3]) * 32).finish()[8:]
    with pytest.raises(TypeError, match="does not sign"):
        signing_bytes(pb.TakeLeasesRequest(max=1), node, HERE, 1, 1)


def test_the_key_file_is_the_clis(tmp_path: Path) -> None:
    path = tmp_path / "home" / "node.key"
    key = NodeKey.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().strip() == key.seed().hex()
    assert NodeKey.load_or_create(path).node_id == key.node_id
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        NodeKey.load(path)
    path.chmod(0o600)
    path.write_text("not hex\n")
    with pytest.raises(KeyFileError, match="64 hex digits"):
        NodeKey.load(path)


def test_a_local_receipt_verifies_and_a_flipped_byte_does_not(assay_bin: Path, tmp_path: Path) -> None:
    hello = guest_path("hello")
    if not hello.is_file():
        skip_or_fail(f"the hello guest is not built at {hello}")
    run = assay_run(assay_bin, tmp_path, hello, {}, params={"name": "x"}, fuel=10**9, work_budget=10**9)
    rid = verify_receipt(run.receipt)
    assert len(rid) == 32
    for field in ("outputs_root", "signature", "provider_id"):
        bad = json.loads(json.dumps(run.receipt))
        raw = bytearray.fromhex(bad[field])
        raw[0] ^= 1
        bad[field] = raw.hex()
        with pytest.raises(ReceiptError):
            verify_receipt(bad)
    bad = dict(run.receipt, fuel_used=run.receipt["fuel_used"] + 1)
    with pytest.raises(ReceiptError, match="does not verify"):
        verify_receipt(bad)


def test_an_unreachable_coordinator_says_what_to_do() -> None:
    with Client("http://127.0.0.1:1", key=NodeKey.from_seed(bytes(32)), timeout=5) as c:
        with pytest.raises(CoordinatorUnavailable, match="assay devnet"):
            c.account()
    with Client("http://127.0.0.1:1", key=NodeKey.from_seed(bytes(32)), timeout=5) as c:
        with pytest.raises(CoordinatorUnavailable, match="assay devnet"):
            c.list_jobs()


def test_embeddings_decode_exactly() -> None:
    import struct

    vals = [1.0, -0.0, 3.4028234663852886e38, 1.401298464324817e-45]
    rows = decode_embeddings(struct.pack("<4f", *vals), 2)
    assert struct.pack("<4f", *(rows[0] + rows[1])) == struct.pack("<4f", *vals)
    with pytest.raises(AssayError):
        decode_embeddings(b"\0" * 12, 2)


@pytest.mark.parametrize(
    "module",
    ["canonical", "keys", "signing", "receipts", "client", "embeddings", "errors"],
)
def test_the_docstring_examples_run(module: str) -> None:
    m = importlib.import_module(f"assay_client.{module}")
    result = doctest.testmod(m, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
