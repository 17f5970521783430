"""The coordinator client: accounts, blobs, jobs, outputs and receipts.

One transport: the coordinator's gRPC contract, ``proto/assay.proto``
(services ``Renter``, ``Blobs``, ``Economy``).

>>> from assay_client import Client                     # doctest: +SKIP
>>> c = Client("http://127.0.0.1:7700")                 # doctest: +SKIP
>>> c.faucet()                                          # doctest: +SKIP
>>> job = c.publish("hello.wasm", params={"name": "py"}, max_price=100)  # doctest: +SKIP
>>> c.follow(job.job_id, on_progress=print)             # doctest: +SKIP
>>> c.outputs(job.job_id)["greeting.txt"]               # doctest: +SKIP
b'hello, py!\\n'
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import grpc

from . import signing
from ._proto import assay_pb2 as pb
from ._proto import assay_pb2_grpc as pb_grpc
from .canonical import content_id
from .errors import (
    AssayError,
    BlobError,
    JobFailed,
    JobNotDone,
    JobTimeout,
    from_rpc,
)
from .keys import NodeKey
from .receipts import ReceiptLike, verify_receipt

#: Where the CLI looks for a coordinator when none is named.
DEFAULT_COORDINATOR = "http://127.0.0.1:7700"
#: Largest gRPC message sent or accepted (the coordinator's limit).
MAX_MESSAGE_BYTES = 8 << 20
#: Upload chunk size (the coordinator accepts at most 1 MiB per chunk).
CHUNK_BYTES = 1 << 20
#: The longest long poll the coordinator honours.
MAX_WAIT_MS = 30_000

BytesOrPath = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"]


def _read(what: str, v: BytesOrPath) -> bytes:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    try:
        return Path(v).read_bytes()
    except OSError as e:
        raise AssayError(f"cannot read {what} from {v}: {e}") from None


def _job_id(job_id: Union[bytes, str]) -> bytes:
    if isinstance(job_id, str):
        try:
            job_id = bytes.fromhex(job_id)
        except ValueError:
            raise AssayError(f"a job id is 64 hex digits, not {job_id!r}") from None
    if len(job_id) != 32:
        raise AssayError(f"a job id is 32 bytes, got {len(job_id)}")
    return bytes(job_id)


def job_spec(
    *,
    fuel: int = 10_000_000_000,
    memory_bytes: int = 1 << 30,
    gpu_memory_bytes: int = 4 << 30,
    work_budget: int = 100_000_000_000,
    output_bytes: int = 256 << 20,
    log_bytes: int = 64 << 10,
    wall_clock_ms: int = 600_000,
    start_time_ms: int = 1_767_225_600_000,
    params: Optional[Mapping[str, str]] = None,
) -> "pb.JobSpec":
    """A job's limits and parameters (the escrow is ``max_price × (fuel +
    work_budget) / 10⁶`` per shard, twice that when verified).

    The defaults are ``assay_protocol::JobSpec::default()`` (what ``assay
    run`` uses) except ``fuel`` and ``work_budget``, which are a fifth and a
    thousandth of it so that the escrow stays small; a local run matches a
    published one when it is given the same ``--fuel`` and
    ``--work-budget``.

    >>> job_spec(params={"name": "py"}).params["name"]
    'py'
    """
    s = pb.JobSpec(
        fuel=fuel,
        memory_bytes=memory_bytes,
        gpu_memory_bytes=gpu_memory_bytes,
        work_budget=work_budget,
        output_bytes=output_bytes,
        log_bytes=log_bytes,
        wall_clock_ms=wall_clock_ms,
        start_time_ms=start_time_ms,
    )
    s.shard.index, s.shard.count = 0, 1
    for k, v in (params or {}).items():
        s.params[k] = v
    return s


@dataclass(frozen=True)
class Account:
    """A node's balances (base units: µIOSD and µIO)."""

    node_id: bytes
    balance: int
    stake: int
    earnings: int
    verifier_earnings: int
    io_balance: int
    unbonding: int
    unbonding_release_ms: int
    rewards: int
    stake_floor: int

    @classmethod
    def _from(cls, a: "pb.AccountResponse") -> "Account":
        return cls(
            node_id=a.node_id,
            balance=a.balance,
            stake=a.stake,
            earnings=a.earnings,
            verifier_earnings=a.verifier_earnings,
            io_balance=a.io_balance,
            unbonding=a.unbonding,
            unbonding_release_ms=a.unbonding_release_ms,
            rewards=a.rewards,
            stake_floor=a.stake_floor,
        )


@dataclass(frozen=True)
class Submitted:
    """A published job: its id, the escrow taken, each shard's protocol job id."""

    job_id: bytes
    escrow: int
    shard_job_ids: List[bytes]
    io_burned: int
    uploaded_bytes: int

    @property
    def job_id_hex(self) -> str:
        """The job id as 64 hex digits."""
        return self.job_id.hex()


@dataclass(frozen=True)
class Progress:
    """One observed state of a job (what :meth:`Client.watch` yields).

    ``line`` is the CLI's progress line; ``status`` the whole ``JobStatus``.
    """

    state: str
    shards: int
    done: int
    leased: int
    queued: int
    elapsed_s: float
    line: str
    status: "pb.JobStatus" = field(repr=False)


def _progress(s: "pb.JobStatus", elapsed: float) -> Progress:
    n = len(s.shards)
    done = sum(1 for x in s.shards if x.state == "done")
    leased = sum(1 for x in s.shards if x.state == "leased")
    queued = sum(1 for x in s.shards if x.state == "queued")
    checks: Dict[str, int] = {}
    for x in s.shards:
        if x.HasField("verification"):
            checks[x.verification.state] = checks.get(x.verification.state, 0) + 1
    check_text = ", ".join(f"{v} {k}" for k, v in sorted(checks.items()))
    if s.state == "queued":
        why = s.shards[0].why_not_matched if s.shards else ""
        line = f"queued: {n} shard(s) waiting: {why}"
    elif s.state == "running":
        line = f"running: {done}/{n} shards done, {leased} running, {queued} queued"
    elif s.state in ("done", "settled"):
        line = f"{s.state}: {n}/{n} shards; checks: {check_text}"
    else:
        line = s.state
    return Progress(s.state, n, done, leased, queued, elapsed, line, s)


def _fingerprint(s: "pb.JobStatus") -> tuple:
    """What a change worth reporting changes."""
    return (
        s.state,
        tuple(
            (x.state, x.attempts, x.settled, x.verification.state if x.HasField("verification") else "")
            for x in s.shards
        ),
    )


class Client:
    """A renter's client of one coordinator.

    ``url`` is the coordinator's gRPC address (default ``$ASSAY_COORDINATOR``
    or ``http://127.0.0.1:7700``). ``key`` signs requests: a
    :class:`NodeKey`, a key file path, or ``None`` for the CLI's own key
    (``$ASSAY_HOME/node.key``, created when missing).

    >>> c = Client("http://127.0.0.1:7700", key=NodeKey.from_seed(bytes(32)))
    >>> c.node_id.hex()[:8]
    '3b6a27bc'
    >>> c.close()
    """

    def __init__(
        self,
        url: Optional[str] = None,
        key: Union[NodeKey, str, "os.PathLike[str]", None] = None,
        *,
        timeout: float = 60.0,
    ) -> None:
        self.url = url or os.environ.get("ASSAY_COORDINATOR") or DEFAULT_COORDINATOR
        if isinstance(key, NodeKey):
            self.key = key
        else:
            self.key = NodeKey.load_or_create(key)
        self.timeout = timeout
        target = self.url
        tls = target.startswith("https://")
        for scheme in ("http://", "grpc://", "https://"):
            if target.startswith(scheme):
                target = target[len(scheme) :]
        target = target.rstrip("/")
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls:
            # A coordinator with --tls-cert: its certificate is checked
            # against ASSAY_TLS_CA's authorities (a devnet's own CA), else
            # the system's.
            ca_path = os.environ.get("ASSAY_TLS_CA")
            roots = None
            if ca_path:
                try:
                    with open(ca_path, "rb") as f:
                        roots = f.read()
                except OSError as e:
                    raise AssayError(f"cannot read the certificate authorities in {ca_path} (ASSAY_TLS_CA): {e}") from None
            creds = grpc.ssl_channel_credentials(root_certificates=roots)
            self._channel = grpc.secure_channel(target, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._coordinator_id: Optional[bytes] = None
        self._renter = pb_grpc.RenterStub(self._channel)
        self._blobs = pb_grpc.BlobsStub(self._channel)
        self._economy = pb_grpc.EconomyStub(self._channel)

    # ------------------------------------------------------------ plumbing

    def close(self) -> None:
        """Closes the connection."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def node_id(self) -> bytes:
        """This client's node id (its ed25519 public key)."""
        return self.key.node_id

    def _call(self, method: Callable[..., Any], request: Any, timeout: Optional[float] = None) -> Any:
        try:
            return method(request, timeout=timeout or self.timeout)
        except grpc.RpcError as e:
            raise from_rpc(e, self.url) from None

    @property
    def coordinator_id(self) -> bytes:
        """The id of the coordinator this client talks to (32 bytes): every
        request it signs names it. Asked once, on first use."""
        if self._coordinator_id is None:
            info = self._call(self._renter.GetCoordinator, pb.GetCoordinatorRequest())
            if len(info.coordinator_id) != 32:
                raise AssayError(f"the coordinator at {self.url} answered a {len(info.coordinator_id)}-byte id, not 32")
            self._coordinator_id = bytes(info.coordinator_id)
        return self._coordinator_id

    def _signed(self, msg: Any) -> Any:
        return signing.sign(self.key, msg, coordinator_id=self.coordinator_id)

    # ------------------------------------------------------------ accounts

    def faucet(self, amount: int = 1_000_000_000, unit: str = "iosd") -> Account:
        """Devnet only: ``amount`` base units of IOSD (``unit="iosd"``) or IO
        (``unit="io"``) from the faucet. Returns the account after it."""
        return Account._from(self._call(self._renter.Faucet, self._signed(pb.FaucetRequest(amount=amount, unit=unit))))

    def stake(self, amount: int) -> Account:
        """Moves ``amount`` µIO from the IO balance into the stake (a staked
        renter's shards are matched first)."""
        return Account._from(self._call(self._renter.Stake, self._signed(pb.StakeRequest(amount=amount))))

    def unstake(self, amount: int) -> Account:
        """Moves ``amount`` µIO of the stake into the unstake cooldown."""
        return Account._from(self._call(self._economy.Unstake, self._signed(pb.UnstakeRequest(amount=amount))))

    def account(self, node_id: Optional[bytes] = None) -> Account:
        """A node's balances (this client's by default)."""
        return Account._from(self._call(self._renter.GetAccount, pb.GetAccountRequest(node_id=node_id or self.node_id)))

    # ------------------------------------------------------------ blobs

    def stat(self, hashes: Sequence[bytes], *, job_id: Union[bytes, str, None] = None) -> Dict[bytes, int]:
        """Which of these content ids the coordinator stores and this key may
        read (id → size): blobs it uploaded, and with ``job_id`` that job's
        blobs when this key is its renter (or ran or checked it)."""
        req = pb.StatRequest(hashes=list(hashes), job_id=_job_id(job_id) if job_id is not None else b"")
        resp = self._call(self._blobs.Stat, self._signed(req))
        return {b.hash: b.size for b in resp.present}

    def upload_blob(self, data: BytesOrPath, *, force: bool = False) -> bytes:
        """Uploads a blob unless the coordinator has it already; returns its
        content id (blake3 of the bytes).

        >>> c.upload_blob(b"hello").hex()[:8]   # doctest: +SKIP
        'ea8f163d'
        """
        data = _read("a blob", data)
        h = content_id(data)
        if not force and h in self.stat([h]):
            return h
        header = self._signed(pb.UploadHeader(hash=h, size=len(data)))

        def parts() -> Iterator["pb.UploadRequest"]:
            yield pb.UploadRequest(header=header)
            for at in range(0, len(data), CHUNK_BYTES):
                yield pb.UploadRequest(chunk=data[at : at + CHUNK_BYTES])

        # Large blobs take a while on a slow link: give each MiB a few seconds.
        timeout = self.timeout + 5.0 * (len(data) / CHUNK_BYTES)
        self._call(self._blobs.Upload, parts(), timeout=timeout)
        return h

    def download_blob(
        self, hash: bytes, size: Optional[int] = None, *, job_id: Union[bytes, str, None] = None
    ) -> bytes:
        """Downloads a blob and checks that it hashes to ``hash`` (and, when
        given, is ``size`` bytes). The request is signed: the coordinator
        hands a blob to the key that uploaded it, and through ``job_id`` to
        that job's renter (a job's outputs need it); anyone else is
        :class:`~assay_client.errors.Refused`."""
        timeout = self.timeout + 5.0 * ((size or 0) / CHUNK_BYTES)
        req = self._signed(pb.DownloadRequest(hash=hash, job_id=_job_id(job_id) if job_id is not None else b""))
        chunks: List[bytes] = []
        total = 0
        try:
            for part in self._blobs.Download(req, timeout=timeout):
                chunks.append(part.chunk)
                total += len(part.chunk)
                if size is not None and total > size:
                    raise BlobError(f"blob {hash.hex()} is larger than the {size} bytes declared: refusing it")
        except grpc.RpcError as e:
            raise from_rpc(e, self.url) from None
        data = b"".join(chunks)
        if content_id(data) != hash:
            raise BlobError(
                f"blob {hash.hex()} from {self.url} does not hash to its id: the coordinator sent the wrong bytes"
            )
        return data

    # ------------------------------------------------------------ jobs

    def publish(
        self,
        component: BytesOrPath,
        inputs: Optional[Mapping[str, BytesOrPath]] = None,
        *,
        spec: Optional["pb.JobSpec"] = None,
        params: Optional[Mapping[str, str]] = None,
        shards: int = 1,
        split_inputs: Iterable[str] = (),
        max_price: int = 100,
        verify_rate: Optional[float] = None,
        unverified: bool = False,
        gpu: bool = False,
        pay_in: str = "iosd",
        cluster_id: Optional[bytes] = None,
    ) -> Submitted:
        """Uploads the component and inputs the coordinator lacks (by
        content id), then submits the job with escrow.

        ``component`` and each input are bytes or a file path. ``spec``
        defaults to :func:`job_spec`; ``params`` are added to it. ``shards``
        splits the job; each name in ``split_inputs`` is split by line across
        the shards. ``max_price`` is µIOSD per million work units.
        ``verify_rate`` is the probability (0, 1] that each receipt is
        re-executed (``None``: the coordinator's rate); ``unverified`` opts
        out. ``pay_in="io"`` burns IO for the escrow. ``cluster_id`` keeps
        the job on one cluster of providers (when the coordinator supports
        it).

        >>> job = c.publish("matmul.wasm", {"a": a, "b": b}, max_price=100)   # doctest: +SKIP
        """
        comp = _read("the component", component)
        named: List[tuple] = []
        for name, v in (inputs or {}).items():
            named.append((name, _read(f"input {name!r}", v)))
        if verify_rate is not None and unverified:
            raise AssayError("give verify_rate or unverified=True, not both")
        ppm = 0
        if verify_rate is not None:
            if not 0.0 < verify_rate <= 1.0:
                raise AssayError(
                    f"verify_rate {verify_rate}: a verification rate is a fraction in (0, 1]; use unverified=True to opt out"
                )
            ppm = max(1, round(verify_rate * 1e6))
        s = pb.JobSpec()
        s.CopyFrom(spec if spec is not None else job_spec())
        for k, v in (params or {}).items():
            s.params[k] = v
        blobs = [comp] + [b for _, b in named]
        present = self.stat([content_id(b) for b in blobs])
        sent = 0
        seen: set = set()
        for b in blobs:
            h = content_id(b)
            if h in present or h in seen:
                continue
            seen.add(h)
            self.upload_blob(b, force=True)
            sent += len(b)
        req = pb.SubmitJobRequest(
            component_hash=content_id(comp),
            component_size=len(comp),
            inputs=[pb.BlobRef(name=n, hash=content_id(b), size=len(b)) for n, b in named],
            spec=s,
            shards=shards,
            max_price=max_price,
            requirements=pb.Requirements(gpu=gpu),
            split_inputs=list(split_inputs),
            verify_rate_ppm=ppm,
            unverified=unverified,
            pay_in=pay_in,
        )
        if cluster_id:
            if "cluster_id" not in pb.SubmitJobRequest.DESCRIPTOR.fields_by_name:
                raise AssayError(
                    "this SDK's stubs have no SubmitJobRequest.cluster_id: regenerate them "
                    "(python/scripts/generate.sh) from a proto/assay.proto that has it"
                )
            setattr(req, "cluster_id", bytes(cluster_id))
        resp = self._call(self._renter.SubmitJob, self._signed(req))
        return Submitted(
            job_id=resp.job_id,
            escrow=resp.escrow,
            shard_job_ids=list(resp.shard_job_ids),
            io_burned=resp.io_burned,
            uploaded_bytes=sent,
        )

    def job(self, job_id: Union[bytes, str], *, wait_ms: int = 0, seen_state: str = "") -> "pb.JobStatus":
        """The job's status (``JobStatus``: state, shards, receipts, outputs,
        checks). With ``wait_ms`` the coordinator may hold the answer until
        the state differs from ``seen_state`` (a long poll)."""
        wait_ms = max(0, min(wait_ms, MAX_WAIT_MS))
        req = pb.GetJobRequest(job_id=_job_id(job_id), wait_ms=wait_ms, seen_state=seen_state)
        return self._call(self._renter.GetJob, req, timeout=self.timeout + wait_ms / 1000.0)

    def watch(
        self,
        job_id: Union[bytes, str],
        *,
        until: str = "done",
        timeout: float = 3600.0,
        wait_ms: int = 10_000,
        poll_interval: float = 0.2,
    ) -> Iterator[Progress]:
        """Yields a :class:`Progress` each time the job changes, until it is
        ``done`` (every shard has a receipt) or, with ``until="settled"``,
        settled (checked and paid).

        Uses the coordinator's long poll (``GetJobRequest.wait_ms`` and
        ``seen_state``); a coordinator that answers at once is polled every
        ``poll_interval`` seconds instead. Raises :class:`JobFailed` if the
        job fails and :class:`JobTimeout` after ``timeout`` seconds.
        """
        if until not in ("done", "settled"):
            raise AssayError(f"until={until!r}: follow a job until 'done' or 'settled'")
        jid = _job_id(job_id)
        start = time.monotonic()
        last: Optional[tuple] = None
        seen = ""
        while True:
            left = timeout - (time.monotonic() - start)
            status = self.job(jid, wait_ms=int(max(0.0, min(wait_ms / 1000.0, left)) * 1000), seen_state=seen)
            seen = status.state
            fp = _fingerprint(status)
            changed = fp != last
            last = fp
            if changed:
                yield _progress(status, time.monotonic() - start)
            if status.state == "failed":
                why = "; ".join(
                    f"shard {x.index}: {x.why_not_matched or x.failure_message or x.state}"
                    for x in status.shards
                    if x.state == "failed"
                )
                raise JobFailed(f"job {jid.hex()} failed: {why}")
            finished = status.state in ("done", "settled")
            if finished and (until == "done" or status.state == "settled"):
                return
            if time.monotonic() - start > timeout:
                raise JobTimeout(
                    f"job {jid.hex()} is still {status.state} after {timeout:.0f} s: "
                    f"see client.job(...) or `assay job status {jid.hex()}`"
                )
            if not changed:
                # Nothing new: either the long poll ran out, or this
                # coordinator answers at once — then do not spin.
                time.sleep(poll_interval)

    def follow(
        self,
        job_id: Union[bytes, str],
        on_progress: Optional[Callable[[Progress], None]] = None,
        *,
        until: str = "done",
        timeout: float = 3600.0,
        wait_ms: int = 10_000,
        poll_interval: float = 0.2,
    ) -> "pb.JobStatus":
        """Follows the job (see :meth:`watch`), calling ``on_progress`` on
        each change; returns the final ``JobStatus``.

        >>> status = c.follow(job.job_id, on_progress=lambda p: print(p.line))   # doctest: +SKIP
        running: 0/1 shards done, 1 running, 0 queued
        done: 1/1 shards; checks: 1 pending
        """
        final: Optional[Progress] = None
        for p in self.watch(job_id, until=until, timeout=timeout, wait_ms=wait_ms, poll_interval=poll_interval):
            final = p
            if on_progress is not None:
                on_progress(p)
        if final is None:  # watch always yields before returning
            raise AssayError("the job was never observed")
        return final.status

    def shard_outputs(self, job_id: Union[bytes, str]) -> List[Dict[str, bytes]]:
        """Each shard's outputs (name → bytes), in shard order, downloaded
        and checked against their content ids. Raises :class:`JobNotDone`
        before every shard is done."""
        status = self.job(job_id)
        if any(x.state != "done" for x in status.shards):
            raise JobNotDone(
                f"job {status.job_id.hex()} is {status.state}: outputs are ready once every shard is done "
                "(call client.follow(job_id) first)"
            )
        out: List[Dict[str, bytes]] = []
        for x in sorted(status.shards, key=lambda x: x.index):
            out.append({o.name: self.download_blob(o.hash, o.size, job_id=status.job_id) for o in x.outputs})
        return out

    def outputs(self, job_id: Union[bytes, str]) -> Dict[str, bytes]:
        """The job's outputs: each output concatenated over the shards in
        shard order (what ``assay job outputs`` writes)."""
        joined: Dict[str, bytes] = {}
        for shard in self.shard_outputs(job_id):
            for name, data in shard.items():
                joined[name] = joined.get(name, b"") + data
        return joined

    def receipts(self, job_id: Union[bytes, str]) -> List["pb.Receipt"]:
        """The receipts of the shards that have one, in shard order."""
        status = self.job(job_id)
        return [x.receipt for x in sorted(status.shards, key=lambda x: x.index) if x.HasField("receipt")]

    @staticmethod
    def verify_receipt(receipt: ReceiptLike) -> bytes:
        """See :func:`assay_client.verify_receipt`: checks the signature,
        returns the receipt id."""
        return verify_receipt(receipt)

    # ------------------------------------------------------------ listing

    def list_jobs(
        self, *, renter: Union[bytes, str, None] = b"", offset: int = 0, limit: int = 50
    ) -> List[Dict[str, Any]]:
        """Jobs, newest first: this client's own by default, another
        renter's (node id), or everyone's (``renter=None``); at most
        ``limit`` (≤ 200) after skipping ``offset`` (``Renter.ListJobs``).

        Each item has ``id`` and ``renter`` (hex), ``state``, ``shards``,
        ``shards_done``, ``escrow``, ``paid_in``, ``paid_uiosd``,
        ``verify_rate_ppm``, ``verified``, ``rejected``, ``created_at_ms``.
        """
        if renter == b"":
            renter = self.node_id
        if isinstance(renter, str):
            try:
                renter = bytes.fromhex(renter)
            except ValueError:
                raise AssayError(f"renter {renter!r} is not a node id (64 hex digits)") from None
        resp = self._call(
            self._renter.ListJobs,
            pb.ListJobsRequest(renter=renter or b"", offset=offset, limit=limit),
        )
        return [
            {
                "id": j.job_id.hex(),
                "renter": j.renter.hex(),
                "state": j.state,
                "shards": j.shards,
                "shards_done": j.shards_done,
                "escrow": j.escrow,
                "paid_in": j.paid_in,
                "paid_uiosd": j.paid,
                "verify_rate_ppm": j.verify_rate_ppm,
                "verified": j.verified,
                "rejected": j.rejected,
                "created_at_ms": j.created_at_ms,
            }
            for j in resp.jobs
        ]

    # ------------------------------------------------------------ embeddings

    def embeddings(
        self,
        texts: Sequence[str],
        *,
        component: Optional[BytesOrPath] = None,
        model_dir: Union[str, "os.PathLike[str]", None] = None,
        shards: int = 1,
        batch_size: Optional[int] = None,
        max_price: int = 20,
        verify_rate: Optional[float] = None,
        unverified: bool = False,
        timeout: float = 1800.0,
    ) -> List[List[float]]:
        """Sentence embeddings of ``texts`` (one line each) with
        all-MiniLM-L6-v2, computed by a ``minilm-embed`` job on the network:
        one 384-float row per text, bit for bit what ``assay run`` of the
        same guest computes locally.

        ``component`` is the guest (default: ``$ASSAY_MINILM_WASM`` or the
        workspace build, ``target/guests/wasm32-wasip2/release/minilm_embed.wasm``);
        ``model_dir`` the model folder (default: ``assay model fetch``'s
        cache). ``shards`` > 1 splits the texts across providers.

        >>> rows = c.embeddings(["a cat", "a dog"])     # doctest: +SKIP
        >>> len(rows), len(rows[0])                      # doctest: +SKIP
        (2, 384)
        """
        from .embeddings import embed

        return embed(
            self,
            texts,
            component=component,
            model_dir=model_dir,
            shards=shards,
            batch_size=batch_size,
            max_price=max_price,
            verify_rate=verify_rate,
            unverified=unverified,
            timeout=timeout,
        )
