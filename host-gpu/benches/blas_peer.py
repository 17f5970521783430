"""OpenBLAS sgemm peer for `cargo bench -p assay-host-gpu --bench ops`.

Usage: python3 blas_peer.py M K N THREADS SECONDS
Prints one line: GFLOP/s of the best run of numpy float32 matmul (OpenBLAS,
as bundled in numpy's PyPI wheel), then the BLAS kernel in use.
"""
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

m, k, n, threads = (int(v) for v in sys.argv[1:5])
budget = float(sys.argv[5])
rng = np.random.default_rng(0)
a = rng.random((m, k), dtype=np.float32) - 0.5
b = rng.random((k, n), dtype=np.float32) - 0.5
with threadpool_limits(limits=threads):
    a @ b  # warm up
    best = float("inf")
    start = time.perf_counter()
    runs = 0
    while runs < 2 or time.perf_counter() - start < budget:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
        runs += 1
info = [p for p in threadpool_info() if p.get("user_api") == "blas"]
kernel = f"{info[0].get('internal_api')}-{info[0].get('architecture')}" if info else "unknown"
print(f"{2 * m * k * n / best / 1e9:.3f} {kernel}")
