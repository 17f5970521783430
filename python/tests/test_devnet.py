"""The SDK against a real devnet: signing, jobs, outputs, receipts, listing,
embeddings — each result compared with a local `assay run`."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import List

import grpc
import pytest

from assay_client import (
    AuthError,
    Client,
    NodeKey,
    ReceiptError,
    content_id,
    decode_receipt,
    job_spec,
    load_model,
    model_dir,
    receipt_id,
    sign,
    verify_receipt,
)
from assay_client._proto import assay_pb2 as pb
from assay_client._proto import assay_pb2_grpc as pb_grpc

from conftest import Devnet, assay_run, cli_json, skip_or_fail

FUEL = 1_000_000_000
WORK = 10_000_000_000


def small_spec(**params: str) -> pb.JobSpec:
    return job_spec(fuel=FUEL, work_budget=WORK, params=params)


def test_signed_requests_are_accepted_and_a_tampered_one_is_refused(devnet: Devnet, tmp_path: Path) -> None:
    key = NodeKey.load_or_create(tmp_path / "node.key")
    with Client(devnet.url, key=key) as c:
        before = c.account()
        after = c.faucet(5_000_000)
        # IOSD is minted by burning the faucet's IO at the oracle price
        # (rounded in the renter's favour).
        assert after.balance - before.balance in range(5_000_000, 5_000_010)
        assert c.faucet(7_000_000, unit="io").io_balance == 7_000_000
        assert c.stake(2_000_000).stake == 2_000_000

        stub = pb_grpc.RenterStub(grpc.insecure_channel(devnet.url.removeprefix("http://")))
        flipped = sign(key, pb.FaucetRequest(amount=1_000), coordinator_id=c.coordinator_id)
        flipped.auth.signature = bytes([flipped.auth.signature[0] ^ 1]) + flipped.auth.signature[1:]
        changed = sign(key, pb.FaucetRequest(amount=1_000), coordinator_id=c.coordinator_id)
        changed.amount = 2_000_000
        for bad in (flipped, changed):
            with pytest.raises(grpc.RpcError) as e:
                stub.Faucet(bad, timeout=30)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, e.value.details()
        # The SDK's own error for it says what to do.
        with pytest.raises(AuthError, match="signature"):
            c._call(c._renter.Faucet, flipped)
        # A replay of a request that was accepted is refused.
        once = sign(key, pb.FaucetRequest(amount=1_000), coordinator_id=c.coordinator_id)
        stub.Faucet(once, timeout=30)
        with pytest.raises(grpc.RpcError) as e:
            stub.Faucet(once, timeout=30)
        assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert c.account().balance - after.balance in range(1_000, 1_010)
        # One signed for another coordinator is refused, saying which.
        elsewhere = sign(key, pb.FaucetRequest(amount=1_000), coordinator_id=bytes([1]) * 32)
        with pytest.raises(grpc.RpcError) as e:
            stub.Faucet(elsewhere, timeout=30)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "GetCoordinator" in (e.value.details() or ""), e.value.details()


def test_blobs_are_uploaded_once_by_content_id(renter: Client) -> None:
    data = os.urandom(3 << 20)  # several chunks
    h = renter.upload_blob(data)
    assert h == content_id(data)
    assert renter.stat([h]) == {h: len(data)}
    assert renter.upload_blob(data) == h
    assert renter.download_blob(h, len(data)) == data


def test_hello_in_two_shards_matches_local_runs_and_its_receipts_verify(
    devnet: Devnet, renter: Client, guest, tmp_path: Path
) -> None:
    hello = guest("hello")
    job = renter.publish(hello, spec=small_spec(name="python"), shards=2, max_price=100, verify_rate=1.0)
    seen: List[str] = []
    status = renter.follow(job.job_id, on_progress=lambda p: seen.append(p.state), timeout=300)
    assert status.state in ("done", "settled") and seen[-1] == status.state, seen
    assert len(status.shards) == 2

    local = [
        assay_run(devnet.bin, tmp_path / f"shard{i}", hello, {}, params={"name": "python"},
                  fuel=FUEL, work_budget=WORK, shard=(i, 2))
        for i in range(2)
    ]
    # Each shard is its local run; the job's outputs are them in shard order.
    per_shard = renter.shard_outputs(job.job_id)
    for i in range(2):
        assert per_shard[i] == local[i].outputs
    joined = renter.outputs(job.job_id)
    for name in local[0].outputs:
        assert joined[name] == local[0].outputs[name] + local[1].outputs[name]
    assert joined["greeting.txt"] == b"hello, python!\nhello, python!\n"

    # Receipts: signed by the provider that ran each shard, over what the
    # local run computed; ids as the CLI computes them.
    receipts = renter.receipts(job.job_id)
    cli = cli_json(devnet, tmp_path / "cli", ["job", "status", job.job_id.hex(), "--json"])
    for i, r in enumerate(receipts):
        rid = verify_receipt(r)
        assert rid.hex() == cli["shards"][i]["receipt_id"]
        body = decode_receipt(r)
        assert body.outputs_root.hex() == local[i].result["outputs_root"]
        assert body.job_id == job.shard_job_ids[i]
        assert body.provider_id == status.shards[i].provider
        assert body.outcome == "success"
        for field in ("outputs_root", "job_id", "signature"):
            bad = pb.Receipt()
            bad.CopyFrom(r)
            raw = bytearray(getattr(bad, field))
            raw[len(raw) // 2] ^= 0x80
            setattr(bad, field, bytes(raw))
            with pytest.raises(ReceiptError, match="does not verify"):
                verify_receipt(bad)
            assert receipt_id(bad) != rid
        bad = pb.Receipt()
        bad.CopyFrom(r)
        bad.fuel_used += 1
        with pytest.raises(ReceiptError):
            verify_receipt(bad)


def test_matmul_matches_a_local_run_and_reuploads_nothing(
    devnet: Devnet, renter: Client, guest, tmp_path: Path
) -> None:
    matmul = guest("matmul")

    def matrix(rows: int, cols: int, f) -> bytes:
        return struct.pack("<II", rows, cols) + struct.pack(
            f"<{rows * cols}f", *(f(i) for i in range(rows * cols))
        )

    a = matrix(16, 24, lambda i: (i % 7) - 3.0)
    b = matrix(24, 8, lambda i: (i % 5) * 0.5)
    job = renter.publish(matmul, {"a": a, "b": b}, spec=small_spec(), max_price=100, unverified=True)
    renter.follow(job.job_id, timeout=300)
    out = renter.outputs(job.job_id)
    local = assay_run(devnet.bin, tmp_path, matmul, {"a": a, "b": b}, fuel=FUEL, work_budget=WORK)
    assert out == local.outputs
    assert out["c"][:8] == struct.pack("<II", 16, 8)
    # The same blobs again: the coordinator has them all.
    again = renter.publish(matmul, {"a": a, "b": b}, spec=small_spec(), max_price=100, unverified=True)
    assert again.uploaded_bytes == 0


def test_list_jobs_shows_this_renters_jobs(renter: Client) -> None:
    job = renter.publish(b"\0asm\x01\0\0\0", spec=small_spec(), max_price=1, unverified=True)
    mine = renter.list_jobs(limit=200)
    assert job.job_id.hex() in {j["id"] for j in mine}
    assert all(j["renter"] == renter.node_id.hex() for j in mine)
    assert renter.list_jobs(renter=bytes(32)) == []


def test_embeddings_equal_a_local_run_bit_for_bit(devnet: Devnet, renter: Client, guest, tmp_path: Path) -> None:
    try:
        model = load_model()
    except Exception as e:  # ModelError
        skip_or_fail(f"the MiniLM model is not usable ({e}); run `assay model fetch`", "ASSAY_REQUIRE_MODEL")
    component = guest("minilm_embed")
    texts = ["The cat sits on the mat.", "A dog runs in the park.", "", "Assay makes results trustworthy."]
    rows = renter.embeddings(texts, component=component, model_dir=model_dir(), shards=2, verify_rate=1.0, timeout=900)
    assert len(rows) == len(texts) and all(len(r) == 384 for r in rows)

    inputs = dict(model)
    inputs["text"] = "".join(t + "\n" for t in texts).encode()
    local = assay_run(devnet.bin, tmp_path, component, inputs, fuel=50_000_000_000, work_budget=1_000_000_000_000)
    flat = [v for r in rows for v in r]
    assert struct.pack(f"<{len(flat)}f", *flat) == local.outputs["embeddings"]
