"""Fixtures: a real devnet (`assay devnet`) for the session, the guests the
workspace builds, and `assay run` for local reference runs.

Environment:
- ``ASSAY_BIN``: the ``assay`` binary (default ``target/release/assay`` in
  the repository). Missing: the devnet tests are skipped, or fail when
  ``ASSAY_REQUIRE_PYTHON=1``.
- ``ASSAY_REQUIRE_MODEL=1``: the MiniLM test fails instead of skipping
  when the model is not cached (``assay model fetch``).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

REPO = Path(__file__).resolve().parents[2]
try:
    import assay_client  # noqa: F401  (pip-installed: test what was installed)
except ImportError:
    sys.path.insert(0, str(REPO / "python"))

from assay_client import Client, NodeKey  # noqa: E402


def required(var: str) -> bool:
    return os.environ.get(var) == "1"


def skip_or_fail(reason: str, require_var: str = "ASSAY_REQUIRE_PYTHON") -> None:
    """Skips visibly, or fails when ``require_var`` is 1."""
    if required(require_var):
        pytest.fail(f"{require_var}=1 but {reason}")
    print(f"SKIPPED: {reason}", file=sys.stderr)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def assay_bin() -> Path:
    path = Path(os.environ.get("ASSAY_BIN") or REPO / "target" / "release" / "assay")
    if not path.is_file():
        skip_or_fail(f"no assay binary at {path}: build it with `cargo build --release -p assay-cli` or set ASSAY_BIN")
    return path


def guest_path(name: str) -> Path:
    base = Path(os.environ.get("ASSAY_GUESTS_DIR") or REPO / "target" / "guests" / "wasm32-wasip2" / "release")
    return base / f"{name}.wasm"


@pytest.fixture(scope="session")
def guest():
    def find(name: str) -> Path:
        p = guest_path(name)
        if not p.is_file():
            skip_or_fail(f"the {name} guest is not built at {p}: run `cargo build --release` in the workspace")
        return p

    return find


@dataclass
class Devnet:
    url: str
    explorer_url: str
    dir: Path
    bin: Path
    lines: List[str]

    def logs(self) -> str:
        """The tail of each node's log, for failure messages."""
        out = []
        for p in sorted((self.dir / "logs").glob("*.log")):
            text = p.read_text(errors="replace")
            out.append(f"--- {p.name}\n{text[-2000:]}")
        return "\n".join(out)


def _reader(stream, q: "queue.Queue[Optional[str]]", lines: List[str]) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))
        q.put(line)
    q.put(None)


@pytest.fixture(scope="session")
def devnet(assay_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """`assay devnet` on free ports in a temporary ASSAY_HOME: a
    coordinator (faucet, oracle, web API), two providers, one verifier and
    the arbiter. Stopped (SIGTERM, then SIGKILL of its process group) at
    the end of the session."""
    home = tmp_path_factory.mktemp("devnet-home")
    env = dict(os.environ, ASSAY_HOME=str(home))
    proc = subprocess.Popen(
        [
            str(assay_bin),
            "devnet",
            "--dir",
            str(home / "devnet"),
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--providers",
            "2",
            "--verifiers",
            "1",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    q: "queue.Queue[Optional[str]]" = queue.Queue()
    lines: List[str] = []
    threading.Thread(target=_reader, args=(proc.stdout, q, lines), daemon=True).start()
    url = explorer = ""
    deadline = time.monotonic() + 120
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("the devnet did not come up in 120 s")
            try:
                line = q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"the devnet exited ({proc.wait()}) before it was up")
            words = line.split()
            if words[:1] == ["coordinator"] and len(words) > 1:
                url = words[1]
            if words[:1] == ["explorer"] and len(words) > 1:
                explorer = words[1]
            if line.startswith("devnet running"):
                break
        if not url.startswith("http://"):
            raise RuntimeError(f"no coordinator URL in the devnet's output: {lines}")
        net = Devnet(url=url, explorer_url=explorer, dir=home / "devnet", bin=assay_bin, lines=lines)
        yield net
    except RuntimeError as e:
        logs = ""
        for p in sorted((home / "devnet" / "logs").glob("*.log")):
            logs += f"\n--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
        pytest.fail(f"{e}\noutput: {lines}{logs}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the devnet's own process group.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


@pytest.fixture(scope="session")
def renter(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """A renter with a fresh key (saved like the CLI's) and 1,000 IOSD."""
    home = tmp_path_factory.mktemp("renter-home")
    key = NodeKey.load_or_create(home / "node.key")
    with Client(devnet.url, key=key) as c:
        c.faucet(1_000_000_000)
        yield c


@dataclass
class LocalRun:
    outputs: Dict[str, bytes]
    result: dict
    receipt: dict


def assay_run(
    bin: Path,
    work: Path,
    component: Path,
    inputs: Dict[str, bytes],
    *,
    params: Optional[Dict[str, str]] = None,
    fuel: int,
    work_budget: int,
    shard: Optional[Tuple[int, int]] = None,
) -> LocalRun:
    """`assay run` of ``component`` on ``inputs``, in ``work``; the outputs
    it wrote (name → bytes), its JSON result and its receipt."""
    work.mkdir(parents=True, exist_ok=True)
    args: List[str] = [str(bin), "run", str(component), "--json", "--out", str(work / "out")]
    for name, data in inputs.items():
        p = work / f"input-{name}"
        p.write_bytes(data)
        args += ["--input", f"{name}={p}"]
    for k, v in (params or {}).items():
        args += ["--param", f"{k}={v}"]
    args += ["--fuel", str(fuel), "--work-budget", str(work_budget)]
    if shard is not None:
        args += ["--shard", f"{shard[0]}/{shard[1]}"]
    env = dict(os.environ, ASSAY_HOME=str(work / "home"))
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"assay run failed ({r.returncode}): {r.stderr[-3000:]}"
    out = work / "out"
    outputs = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    receipt = json.loads((out / ".assay" / "receipt.json").read_text())
    return LocalRun(outputs=outputs, result=json.loads(r.stdout), receipt=receipt)


def cli_json(devnet: Devnet, home: Path, args: Sequence[str]) -> dict:
    """`assay ARGS` against the devnet, parsed as JSON."""
    env = dict(os.environ, ASSAY_HOME=str(home), ASSAY_COORDINATOR=devnet.url)
    r = subprocess.run([str(devnet.bin), *args], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"assay {' '.join(args)} failed: {r.stderr[-2000:]}"
    return json.loads(r.stdout)
