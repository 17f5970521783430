#!/usr/bin/env python3
"""cuBLAS SGEMM (FP32, TF32 off) through PyTorch on the shapes of
host-gpu/benches/cuda_matmul.rs. Prints `RESULT <shape> <tflops>` lines, or
`SKIPPED ...` when torch or a CUDA device is missing (exit 0 either way)."""
import sys
import time

SHAPES = [  # name, batch, m, k, n, transpose_b (as in cuda_matmul.rs)
    ("square_4096", 1, 4096, 4096, 4096, False),
    ("bert_base_qkv", 1, 4096, 768, 2304, False),
    ("bert_base_ffn_up", 1, 4096, 768, 3072, False),
    ("bert_base_ffn_down", 1, 4096, 3072, 768, False),
    ("bert_attn_scores", 384, 128, 64, 128, True),
    ("minilm_ffn_up", 1, 4096, 384, 1536, False),
    ("minilm_ffn_down", 1, 4096, 1536, 384, False),
]


def main():
    try:
        import torch
    except ImportError:
        print("SKIPPED cublas: torch is not importable (pip install torch)")
        return
    if not torch.cuda.is_available():
        print("SKIPPED cublas: torch sees no CUDA device")
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    print(f"device: {torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})")
    for name, batch, m, k, n, tb in SHAPES:
        a = torch.rand((batch, m, k) if batch > 1 else (m, k), device="cuda", dtype=torch.float32)
        if tb:
            b = torch.rand((batch, n, k) if batch > 1 else (n, k), device="cuda").transpose(-1, -2)
        else:
            b = torch.rand((batch, k, n) if batch > 1 else (k, n), device="cuda")
        for _ in range(3):
            torch.matmul(a, b)
        torch.cuda.synchronize()
        flops = 2.0 * batch * m * n * k
        reps = max(5, min(200, int(2e12 / flops)))
        t = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b)
        torch.cuda.synchronize()
        secs = (time.perf_counter() - t) / reps
        tflops = flops / secs / 1e12
        print(f"{name:<20} {secs * 1e3:8.3f} ms  {tflops:7.2f} TFLOP/s")
        print(f"RESULT {name} {tflops:.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
