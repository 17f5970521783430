#!/usr/bin/env python3
"""Serving benchmark of `assay gateway` (issue #17): embeddings latency and throughput.

Request latency p50/p99 and throughput (sentences/s) for 1 and 32 sentences
per request with 1, 8 and 64 concurrent callers, against three targets:

  onnxruntime   all-MiniLM-L6-v2 run locally (scripts/minilm_onnx.py: the
                graph written by hand from the model's files, no torch), the
                anchor; a request = tokenize + session.run of its sentences;
  publish       `assay gateway` publishing each batch as an open-market job;
  cluster       `assay gateway --cluster ID` on a reserved cluster.

The script starts its own network on loopback in a temporary folder with the
built binary: a coordinator (devnet faucet, a short settlement window), two
providers (`--threads 2` by default, as onnxruntime gets 2 intra-op
threads; two slots each: one reserved by the cluster, one open), a renter that reserves a cluster of the two, and two gateways (each
its own home, IOSD and API key). Everything is stopped at the end, on
Ctrl-C and on errors too.

Before timing anything it checks that onnxruntime computes the function the
network computes: `assay run` of the minilm-embed guest on a few sentences
against the ONNX graph, max |difference| < 1e-4 and cosine > 0.9999 (it
stops otherwise).

Each caller is a thread with its own keep-alive HTTP connection (for
onnxruntime: a thread calling the shared session) sending requests back to
back; sentences are distinct for every request (nothing can be cached).
Latency percentiles are nearest-rank; throughput = sentences answered /
wall time of the cell. A non-200 answer (or a wrong number of rows) is an
error, counted in the table. RTT = p50 of 200 `GET /health` to a gateway on
one keep-alive connection. The goal checked at the end: on the cluster, p50
for one sentence and one caller ≤ 3 × onnxruntime's p50 + RTT.

The targets take turns cell by cell, so that each ratio to onnxruntime
compares runs made minutes apart at most; the table's `load` column is the
1-minute load average as each cell ended (above the core count, something
else shared the CPU: read those rows with care).

Set-up:
    python3 -m venv /tmp/bench-venv
    /tmp/bench-venv/bin/pip install -r scripts/bench_gateway_requirements.txt
    cargo build --release -p assay-cli && target/release/assay model fetch
    /tmp/bench-venv/bin/python scripts/bench_gateway.py            # ~10 min on 2 cores
    /tmp/bench-venv/bin/python scripts/bench_gateway.py --quick    # ~3 min
"""

import argparse
import base64
import http.client
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import minilm_onnx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "all-MiniLM-L6-v2"
# The guest's inputs, by the model file each comes from (cli/src/model_store.rs).
MODEL_INPUTS = {
    "model": "model.safetensors",
    "tokenizer": "tokenizer.json",
    "config": "config.json",
    "sentence_bert_config": "sentence_bert_config.json",
    "pooling_config": "1_Pooling/config.json",
    "modules": "modules.json",
}
# The agreement asked of onnxruntime with the network's function.
MAX_ABS_DIFF = 1e-4
MIN_COSINE = 0.9999
# Per provider: µIO from the faucet, all of it staked. A verified job's
# receipt bonds stake until it settles (after the longest a dispute could
# take), and a gateway job of 256 sequences bonds ~2,500 IO: a million IO
# keeps hundreds of them unsettled without a provider waiting for stake.
PROVIDER_IO = 1_000_000_000_000
# µIOSD each gateway's home gets from the faucet (escrows come back at settlement).
RENTER_IOSD = 1_000_000_000_000


# --- sentences ---------------------------------------------------------------

_SUBJECTS = [
    "The old librarian", "A curious child", "Our new neighbour", "The night nurse", "A tired engineer",
    "The village baker", "My younger sister", "The ship's captain", "A retired teacher", "The street musician",
    "An anxious student", "The museum guard", "A quiet farmer", "The local mayor", "A visiting scientist",
]
_VERBS = [
    "carefully repaired", "quickly painted", "slowly read", "happily described", "proudly showed",
    "secretly borrowed", "patiently explained", "nervously opened", "cheerfully delivered", "quietly studied",
]
_OBJECTS = [
    "a broken wooden clock", "the faded map of the harbour", "an unusual letter from abroad",
    "the heavy box of winter clothes", "a small painting of the mountains", "the recipe for apple bread",
    "an old bicycle with a red bell", "the report about the river floods", "a pair of silver earrings",
    "the notes from yesterday's meeting",
]
_TAILS = [
    "before the sun went down", "while the rain kept falling outside", "during the long train journey",
    "after everyone else had gone home", "in the middle of the busy market", "for the children of the school",
    "without telling anyone about it", "as the festival was about to begin", "near the edge of the quiet lake",
    "on the first cold morning of autumn",
]


def sentence(n: int) -> str:
    """Sentence `n`: 10–20 words, distinct for every n (a counter word at the end)."""
    r = random.Random(n)
    words = f"{r.choice(_SUBJECTS)} {r.choice(_VERBS)} {r.choice(_OBJECTS)} {r.choice(_TAILS)}"
    return f"{words}, entry {n}."


class Sentences:
    """A thread-safe source of never-repeated sentences."""

    def __init__(self, start: int = 0):
        self._next = start
        self._lock = threading.Lock()

    def take(self, k: int) -> list:
        with self._lock:
            first = self._next
            self._next += k
        return [sentence(first + i) for i in range(k)]


# --- processes ---------------------------------------------------------------


class Network:
    """The `assay` processes of one run; `close()` stops them all."""

    def __init__(self, assay: Path, root: Path):
        self.assay = assay
        self.root = root
        self.procs = []  # (name, Popen)
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.url = None

    def spawn(self, name: str, home: Path, args: list, stdout=subprocess.DEVNULL) -> subprocess.Popen:
        home.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "wb")
        # Own session: a Ctrl-C in the terminal reaches this script, which
        # then stops the daemons in order (providers drain, then the rest).
        p = subprocess.Popen(
            [str(self.assay), *args],
            env=self.env(home),
            stdout=stdout,
            stderr=log,
            start_new_session=True,
        )
        self.procs.append((name, p))
        return p

    def env(self, home: Path) -> dict:
        env = dict(os.environ, ASSAY_HOME=str(home))
        if self.url:
            env["ASSAY_COORDINATOR"] = self.url
        return env

    def cli(self, home: Path, args: list, timeout: float = 120) -> str:
        """`assay ARGS` as the node in `home`; its stdout (fails loudly)."""
        home.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            [str(self.assay), *args], env=self.env(home), capture_output=True, text=True, timeout=timeout
        )
        if out.returncode != 0:
            raise RuntimeError(f"assay {' '.join(args)}: exit {out.returncode}\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def cli_json(self, home: Path, args: list) -> dict:
        return json.loads(self.cli(home, [*args, "--json"]))

    def close(self):
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for _, p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()

    def check_alive(self):
        for name, p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}: see {self.logs / (name + '.log')}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, done, timeout: float, net: Network = None, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = done()
        if v:
            return v
        if net:
            net.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def start_network(net: Network, slots: int, threads: int, gateway_args: list):
    """Coordinator, two providers, a cluster of both, two gateways. Returns
    (plain gateway address, its key, cluster gateway address, its key, cluster id)."""
    r = net.root
    coord = net.spawn(
        "coordinator",
        r / "coordinator",
        [
            "coordinator", "--faucet", "--listen", "127.0.0.1:0", "--data-dir", str(r / "coordinator"),
            "--lease-ttl-ms", "3000", "--heartbeat-ms", "300", "--tick-ms", "100",
            "--preference-window-ms", "0",
            # A short challenge window, epoch and check deadline: verified
            # receipts (the coordinator's default sampling is kept) settle
            # and free their stake in seconds, not minutes.
            "--settlement-delay-ms", "500", "--epoch-ms", "500", "--check-ttl-ms", "3000",
        ],
        stdout=subprocess.PIPE,
    )
    line = coord.stdout.readline().decode()
    urls = [w for w in line.split() if w.startswith("http://")]
    if not urls:
        net.check_alive()
        raise RuntimeError(f"no URL in the coordinator's first line {line!r}")
    net.url = urls[0]
    # Keep reading its stdout so that it never blocks on a full pipe.
    threading.Thread(target=lambda: coord.stdout.read(), daemon=True).start()
    print(f"coordinator  {net.url}", flush=True)

    providers = []
    for name in ("provider-a", "provider-b"):
        home = r / name
        node = net.cli_json(home, ["account"])["node"]
        net.spawn(
            name,
            home,
            [
                "provider", "--coordinator", net.url, "--slots", str(slots), "--threads", str(threads),
                "--poll-ms", "100", "--drain-timeout-ms", "2000",
                "--faucet", str(PROVIDER_IO), "--stake", str(PROVIDER_IO),
            ],
        )
        providers.append((home, node))
    for home, node in providers:
        wait_until(
            f"{home.name} to register with its stake",
            lambda: net.cli_json(r / "renter", ["account", node]).get("stake") == PROVIDER_IO,
            60,
            net,
        )
    print(f"providers    {', '.join(n[:16] for _, n in providers)} ({slots} slots, {threads} thread(s) each)", flush=True)

    gateways = {}
    for name in ("publish", "cluster"):
        home = r / f"gateway-{name}"
        net.cli(home, ["faucet", "--amount", str(RENTER_IOSD)])
        key = net.cli(home, ["gateway", "key", "create", "--name", f"bench-{name}"]).strip().splitlines()[-1].strip()
        gateways[name] = (home, key)

    # The cluster gateway's home reserves one slot on each provider.
    cluster_home = gateways["cluster"][0]
    created = net.cli_json(cluster_home, ["cluster", "create", "--gpus", "2", "--hours", "1", "--max-price", "5"])
    cluster = created["cluster"]

    def active():
        c = net.cli_json(cluster_home, ["cluster", "show", cluster])
        members = [m for m in c["members"] if m["state"] == "active"]
        return c["state"] == "active" and len(members) == 2

    wait_until("the cluster to hold both providers", active, 60, net)
    print(f"cluster      {cluster} (2 members)", flush=True)

    addrs = {}
    for name, (home, _) in gateways.items():
        addr = f"127.0.0.1:{free_port()}"
        extra = ["--cluster", cluster] if name == "cluster" else []
        net.spawn(
            f"gateway-{name}",
            home,
            ["gateway", "--listen", addr, "--coordinator", net.url, *extra, *gateway_args],
        )
        addrs[name] = addr
    for name, addr in addrs.items():
        wait_until(f"gateway {name} on {addr}", lambda: health_ok(addr), 60, net)
    print(f"gateways     publish http://{addrs['publish']}  cluster http://{addrs['cluster']}", flush=True)
    return addrs, {n: k for n, (_, k) in gateways.items()}, cluster


def health_ok(addr: str) -> bool:
    try:
        c = http.client.HTTPConnection(addr, timeout=2)
        c.request("GET", "/health")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


# --- the check against the network's function -------------------------------


def check_anchor(net: Network, embedder, model: Path, component: Path):
    """onnxruntime against `assay run` of the minilm-embed guest; raises unless they agree."""
    sentences = [
        "The quick brown fox jumps over the lazy dog.",
        "Assay makes the result trustworthy: a hash comparison, not a tolerance argument.",
        "",
        "Ünïcödé, emoji 🙂 and punctuation!?",
        " ".join(sentence(i) for i in range(30)),  # longer than 256 tokens: truncated
    ] + [sentence(1_000_000 + i) for i in range(11)]
    work = net.root / "anchor-check"
    work.mkdir(parents=True, exist_ok=True)
    (work / "text.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    args = ["run", str(component)]
    for name, rel in MODEL_INPUTS.items():
        args += ["--input", f"{name}={model / rel}"]
    args += ["--input", f"text={work / 'text.txt'}", "--out", str(work / "out")]
    net.cli(work / "home", args, timeout=300)
    guest = np.frombuffer((work / "out" / "embeddings").read_bytes(), dtype="<f4").reshape(len(sentences), -1)
    ours = embedder.embed(sentences)
    diff = float(np.abs(guest - ours).max())
    cos = float(((guest * ours).sum(1) / (np.linalg.norm(guest, axis=1) * np.linalg.norm(ours, axis=1))).min())
    line = f"onnxruntime vs `assay run` (minilm-embed) on {len(sentences)} sentences: max |diff| {diff:.2e}, min cosine {cos:.7f}"
    if not (diff < MAX_ABS_DIFF and cos > MIN_COSINE):
        raise RuntimeError(f"{line}: NOT the same function (need < {MAX_ABS_DIFF} and > {MIN_COSINE})")
    print(f"{line}: same function", flush=True)


# --- load --------------------------------------------------------------------


def nearest_rank(sorted_values, p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[k - 1]


class Cell:
    def __init__(self, target, per_request, callers):
        self.target, self.per_request, self.callers = target, per_request, callers
        self.latencies = []  # seconds, successful requests
        self.errors = 0
        self.error_samples = []
        self.sentences = 0
        self.jobs = set()
        self.wall = 0.0
        self.load = float("nan")  # 1-minute load average when the cell ended
        self.lock = threading.Lock()

    def record(self, seconds, ok, n=0, job=None, error=None):
        with self.lock:
            if ok:
                self.latencies.append(seconds)
                self.sentences += n
                if job:
                    self.jobs.add(job)
            else:
                self.errors += 1
                if len(self.error_samples) < 3:
                    self.error_samples.append(error)

    @property
    def requests(self):
        return len(self.latencies) + self.errors

    def p(self, q):
        return nearest_rank(sorted(self.latencies), q) * 1000


class GatewayCaller:
    def __init__(self, addr, key, timeout):
        self.addr, self.timeout = addr, timeout
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.conn = None

    def call(self, sentences):
        """(ok, the response's `assay` object, error) for one request of `sentences`."""
        body = json.dumps(
            {"model": MODEL_NAME, "input": sentences if len(sentences) > 1 else sentences[0], "encoding_format": "base64"}
        )
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.addr, timeout=self.timeout)
                self.conn.connect()
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.conn.request("POST", "/v1/embeddings", body=body, headers=self.headers)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection the server closed: reconnect once.
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        if resp.status != 200:
            return False, None, f"{resp.status} {data[:200]!r}"
        doc = json.loads(data)
        rows = doc.get("data", [])
        if len(rows) != len(sentences) or any(len(base64.b64decode(r["embedding"])) != 384 * 4 for r in rows):
            return False, None, f"200 with {len(rows)} rows for {len(sentences)} sentences"
        return True, doc.get("assay", {}), None

    def close(self):
        if self.conn:
            self.conn.close()


def run_cell(cell: Cell, make_caller, source: Sentences, min_requests, min_seconds, max_seconds):
    """`cell.callers` threads sending back to back until at least
    `min_requests` were started and `min_seconds` passed (or `max_seconds`)."""
    started = [0]
    lock = threading.Lock()
    t0 = time.perf_counter()
    last_done = [t0]

    def more():
        with lock:
            elapsed = time.perf_counter() - t0
            if elapsed >= max_seconds or (started[0] >= min_requests and elapsed >= min_seconds):
                return False
            started[0] += 1
            return True

    def worker():
        caller = make_caller()
        try:
            while more():
                sentences = source.take(cell.per_request)
                t = time.perf_counter()
                try:
                    ok, assay, err = caller.call(sentences)
                except Exception as e:  # a failed request is an error of the cell, not of the run
                    ok, assay, err = False, None, f"{type(e).__name__}: {e}"
                done = time.perf_counter()
                cell.record(done - t, ok, len(sentences), (assay or {}).get("job_id"), err)
                with lock:
                    last_done[0] = max(last_done[0], done)
        finally:
            caller.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(cell.callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cell.wall = last_done[0] - t0


class OnnxCaller:
    def __init__(self, embedder):
        self.embedder = embedder

    def call(self, sentences):
        out = self.embedder.embed(sentences)
        return out.shape == (len(sentences), 384), None, None

    def close(self):
        pass


def rtt_ms(addr: str, n: int = 200) -> float:
    c = http.client.HTTPConnection(addr, timeout=10)
    c.connect()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        c.request("GET", "/health")
        r = c.getresponse()
        r.read()
        times.append(time.perf_counter() - t)
        if r.status != 200:
            raise RuntimeError(f"GET /health: {r.status}")
    c.close()
    return nearest_rank(sorted(times), 50) * 1000


def warm_up(name, addr, key, source, providers_wanted=2, timeout=120):
    """Requests (not timed) until every provider ran at least two jobs, so
    each has the model resident; returns {provider: jobs seen}."""
    seen = {}
    lock = threading.Lock()
    failures = []

    def burst():
        c = GatewayCaller(addr, key, 120)
        try:
            for _ in range(3):
                ok, assay, err = c.call(source.take(1))
                if not ok:
                    failures.append(err)
                    return
                with lock:
                    seen.setdefault(assay.get("provider"), set()).add(assay.get("job_id"))
        finally:
            c.close()

    # Concurrent callers make concurrent jobs, which spread over the providers.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        threads = [threading.Thread(target=burst) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise RuntimeError(f"warm-up request to the {name} gateway failed: {failures[0]}")
        if len(seen) >= providers_wanted and min(len(j) for j in seen.values()) >= 2:
            break
    if len(seen) < providers_wanted:
        print(f"  warning: the {name} gateway's warm-up reached only {len(seen)} provider(s)", flush=True)
    return {p: len(j) for p, j in seen.items()}


# --- report ------------------------------------------------------------------


def fmt(v, digits=1):
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def report(cells, rtt, loads):
    anchor = {(c.per_request, c.callers): c for c in cells if c.target == "onnxruntime"}
    print()
    print("| target | sentences/request | callers | requests | p50 ms | p99 ms | sentences/s | p50 ÷ onnxruntime | throughput ÷ onnxruntime | errors | load |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in cells:
        a = anchor.get((c.per_request, c.callers))
        tput = c.sentences / c.wall if c.wall > 0 else float("nan")
        a_tput = a.sentences / a.wall if a and a.wall > 0 else float("nan")
        p50 = c.p(50)
        ratio_p50 = p50 / a.p(50) if a and a.latencies and c.latencies else float("nan")
        ratio_tput = tput / a_tput if a_tput and a_tput == a_tput else float("nan")
        print(
            f"| {c.target} | {c.per_request} | {c.callers} | {c.requests} | {fmt(p50)} | {fmt(c.p(99))} | "
            f"{fmt(tput)} | {fmt(ratio_p50, 2)} | {fmt(ratio_tput, 2)} | {c.errors} | {fmt(c.load, 2)} |"
        )
    print()
    print(f"RTT (loopback, p50 of 200 GET /health on one keep-alive connection): {rtt:.3f} ms")
    ort1 = anchor.get((1, 1))
    cl1 = next((c for c in cells if c.target == "cluster" and c.per_request == 1 and c.callers == 1), None)
    if ort1 and cl1 and ort1.latencies and cl1.latencies:
        bound = 3 * ort1.p(50) + rtt
        met = cl1.p(50) <= bound
        print(
            f"Goal (cluster p50, 1 sentence, 1 caller ≤ 3 × onnxruntime p50 + RTT): "
            f"{cl1.p(50):.1f} ms vs 3 × {ort1.p(50):.2f} + {rtt:.2f} = {bound:.1f} ms: "
            f"{'MET' if met else 'NOT MET'} ({cl1.p(50) / bound:.1f}× the bound; "
            f"load {ort1.load:.2f} and {cl1.load:.2f} as the two cells ended)"
        )
    print()
    print("Batching (requests arriving within the gateway's window share a job; jobs = distinct assay.job_id):")
    print()
    print("| target | sentences/request | callers | requests | jobs | requests per job | sentences per job |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in cells:
        if c.target == "onnxruntime":
            continue
        jobs = len(c.jobs)
        ok = len(c.latencies)
        print(
            f"| {c.target} | {c.per_request} | {c.callers} | {c.requests} | {jobs} | "
            f"{fmt(ok / jobs if jobs else float('nan'), 2)} | {fmt(c.sentences / jobs if jobs else float('nan'), 1)} |"
        )
    errs = [(c, e) for c in cells for e in c.error_samples]
    if errs:
        print()
        print("Errors (first of each cell):")
        for c, e in errs:
            print(f"- {c.target} {c.per_request}×{c.callers}: {e}")
    print()
    print(
        f"load = the machine's 1-minute load average as the cell ended ({os.cpu_count()} cores; "
        + ", ".join(f"{k} {v:.2f}" for k, v in loads)
        + "): above the core count, other processes shared the CPU with the cell"
    )


# --- main --------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assay", type=Path, default=ROOT / "target" / "release" / "assay")
    ap.add_argument("--model", type=Path, default=minilm_onnx.model_dir())
    ap.add_argument(
        "--component", type=Path, default=ROOT / "target" / "guests" / "wasm32-wasip2" / "release" / "minilm_embed.wasm"
    )
    ap.add_argument("--targets", default="onnxruntime,publish,cluster")
    ap.add_argument("--sizes", default="1,32", help="sentences per request")
    ap.add_argument("--callers", default="1,8,64")
    ap.add_argument("--min-requests-1", type=int, default=40, help="per cell, 1 sentence per request")
    ap.add_argument("--min-seconds-1", type=float, default=10.0)
    ap.add_argument("--min-requests-32", type=int, default=16, help="per cell, 32 sentences per request")
    ap.add_argument("--min-seconds-32", type=float, default=6.0)
    ap.add_argument("--max-seconds", type=float, default=40.0, help="a cell stops starting requests after this")
    ap.add_argument("--quick", action="store_true", help="short cells (~3 minutes in all)")
    ap.add_argument("--ort-threads", type=int, default=2)
    ap.add_argument("--provider-threads", type=int, default=2, help="each provider's --threads (onnxruntime: --ort-threads)")
    ap.add_argument("--slots", type=int, default=2, help="per provider (the cluster reserves one)")
    ap.add_argument("--batch-window-ms", type=int, default=5)
    ap.add_argument("--max-batch", type=int, default=256)
    ap.add_argument("--timeout-s", type=int, default=60)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, homes)")
    args = ap.parse_args()
    if args.quick:
        args.min_requests_1, args.min_seconds_1 = 12, 3.0
        args.min_requests_32, args.min_seconds_32 = 6, 2.0
        args.max_seconds = 15.0

    if not args.assay.is_file():
        print(f"no binary at {args.assay}: cargo build --release -p assay-cli", file=sys.stderr)
        return 2
    if not (args.model / "model.safetensors").is_file():
        print(f"no model in {args.model}: run `{args.assay} model fetch`", file=sys.stderr)
        return 2
    if not args.component.is_file():
        print(f"no guest at {args.component}: cargo build --release -p assay-cli builds it", file=sys.stderr)
        return 2
    targets = args.targets.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    callers = [int(c) for c in args.callers.split(",")]

    # SIGTERM stops the run the way Ctrl-C does (the finally below cleans up).
    def on_sigterm(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    root = Path(tempfile.mkdtemp(prefix="assay-bench-gateway-"))
    net = Network(args.assay, root)
    loads = [("start", os.getloadavg()[0])]
    cells = []
    rtt = float("nan")
    failed = True
    try:
        print(f"cores {os.cpu_count()}, load average {os.getloadavg()}, folder {root}", flush=True)
        t = time.perf_counter()
        embedder = minilm_onnx.Embedder(args.model, threads=args.ort_threads)
        print(f"onnxruntime session built in {time.perf_counter() - t:.1f} s ({args.ort_threads} threads)", flush=True)
        check_anchor(net, embedder, args.model, args.component)

        gateway_args = [
            "--batch-window-ms", str(args.batch_window_ms), "--max-batch", str(args.max_batch),
            "--timeout-s", str(args.timeout_s),
        ]
        addrs, keys, _cluster = start_network(net, args.slots, args.provider_threads, gateway_args)
        source = Sentences()
        for name in ("publish", "cluster"):
            if name in targets:
                seen = warm_up(name, addrs[name], keys[name], source)
                print(f"warm-up      {name}: jobs per provider {sorted(seen.values())}", flush=True)
        for _ in range(5):
            embedder.embed(source.take(1))
            embedder.embed(source.take(32))
        rtt = rtt_ms(addrs["cluster"])
        print(f"RTT          {rtt:.3f} ms", flush=True)

        # The targets take turns cell by cell (not target after target): the
        # machine's load changes over minutes (other builds), and each ratio
        # to onnxruntime should compare runs made under the same load.
        for per_request in sizes:
            for n in callers:
                for target in targets:
                    cell = Cell(target, per_request, n)
                    if target == "onnxruntime":
                        make = lambda: OnnxCaller(embedder)  # noqa: E731
                    else:
                        addr, key = addrs[target], keys[target]
                        make = lambda addr=addr, key=key: GatewayCaller(addr, key, args.timeout_s + 30)  # noqa: E731
                    one = per_request == 1
                    run_cell(
                        cell,
                        make,
                        source,
                        args.min_requests_1 if one else args.min_requests_32,
                        args.min_seconds_1 if one else args.min_seconds_32,
                        args.max_seconds,
                    )
                    cell.load = os.getloadavg()[0]
                    cells.append(cell)
                    net.check_alive()
                    print(
                        f"  {target:<11} {per_request:>2} × {n:>2} callers: {cell.requests:>4} requests, "
                        f"p50 {cell.p(50):8.1f} ms, p99 {cell.p(99):8.1f} ms, "
                        f"{cell.sentences / cell.wall if cell.wall else 0:8.1f} sentences/s, {cell.errors} errors, "
                        f"load {cell.load:.2f}",
                        flush=True,
                    )
        loads.append(("end", os.getloadavg()[0]))
        cells.sort(key=lambda c: (targets.index(c.target), c.per_request, c.callers))
        report(cells, rtt, loads)
        failed = False
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        if cells:
            cells.sort(key=lambda c: (targets.index(c.target), c.per_request, c.callers))
            report(cells, rtt, loads)
        return 130
    finally:
        net.close()
        if args.keep or failed:
            print(f"kept {root} (logs in {root / 'logs'})", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
