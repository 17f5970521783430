//! Deterministic matmul throughput on each CUDA GPU (needs `--features cuda`
//! and a GPU; prints SKIPPED otherwise):
//!
//! ```text
//! cargo bench -p assay-host-gpu --features cuda --bench cuda_matmul
//! ```
//!
//! For each shape (4096³ and the matmuls of BERT-base / all-MiniLM-L6-v2 at
//! batch 32 × 128 tokens) it prints TFLOP/s, plus a bit-exactness check of
//! a 257×515×333 product against the CPU reference. Lines starting with
//! `RESULT` are machine-readable (`RESULT <shape> <tflops>`), as are those of
//! `scripts/cublas_sgemm.py`, which measures cuBLAS SGEMM (TF32 off) on the
//! same shapes; `scripts/gpu-check.sh` joins the two.

use std::time::Instant;

use assay_host_gpu::{Device, Session, SessionLimits, Tensor};

/// (name, batch, m, k, n, transpose_b)
const SHAPES: [(&str, usize, usize, usize, usize, bool); 7] = [
    ("square_4096", 1, 4096, 4096, 4096, false),
    ("bert_base_qkv", 1, 4096, 768, 2304, false),
    ("bert_base_ffn_up", 1, 4096, 768, 3072, false),
    ("bert_base_ffn_down", 1, 4096, 3072, 768, false),
    ("bert_attn_scores", 384, 128, 64, 128, true),
    ("minilm_ffn_up", 1, 4096, 384, 1536, false),
    ("minilm_ffn_down", 1, 4096, 1536, 384, false),
];

fn limits() -> SessionLimits {
    SessionLimits {
        memory_quota: 8 << 30,
        ..SessionLimits::default()
    }
}

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Waits for everything queued on the session's stream (a read is stream-ordered).
fn sync(s: &mut Session) -> Result<(), assay_host_gpu::Error> {
    let t = s.fill(&[1], 0.0)?;
    s.read_f32(&t)?;
    Ok(())
}

fn hash(s: &Session, t: &Tensor) -> Result<blake3::Hash, assay_host_gpu::Error> {
    Ok(blake3::hash(&s.read_bytes(t)?))
}

fn bench(device: &Device) -> Result<(), assay_host_gpu::Error> {
    // bit-exactness against the CPU reference
    let (m, k, n) = (257, 515, 333);
    let run = |d: &Device| -> Result<blake3::Hash, assay_host_gpu::Error> {
        let mut s = Session::new(d.clone(), limits());
        let a = s.upload_f32(&[m, k], data(m * k, 1))?;
        let b = s.upload_f32(&[k, n], data(k * n, 2))?;
        let c = s.matmul(&a, &b, false, false)?;
        hash(&s, &c)
    };
    let exact = run(device)? == run(&Device::cpu())?;
    println!(
        "RESULT bit_exact_vs_cpu {}",
        if exact { "yes" } else { "NO" }
    );

    for (name, batch, m, k, n, tb) in SHAPES {
        let mut s = Session::new(device.clone(), limits());
        let (sa, sb) = if batch == 1 {
            (vec![m, k], if tb { vec![n, k] } else { vec![k, n] })
        } else {
            (
                vec![batch, m, k],
                if tb {
                    vec![batch, n, k]
                } else {
                    vec![batch, k, n]
                },
            )
        };
        let a = s.upload_f32(&sa, data(sa.iter().product(), 3))?;
        let b = s.upload_f32(&sb, data(sb.iter().product(), 4))?;
        // warm up (first launch, clocks)
        for _ in 0..3 {
            drop(s.matmul(&a, &b, false, tb)?);
        }
        sync(&mut s)?;
        let flops = 2.0 * (batch * m * n * k) as f64;
        let reps = ((2e12 / flops) as usize).clamp(5, 200);
        let t = Instant::now();
        for _ in 0..reps {
            drop(s.matmul(&a, &b, false, tb)?);
        }
        sync(&mut s)?;
        let secs = t.elapsed().as_secs_f64() / reps as f64;
        let tflops = flops / secs / 1e12;
        println!(
            "{name:<20} batch {batch:>3}  {m:>5} x {k:>5} x {n:>5}  {:>8.3} ms  {tflops:>7.2} TFLOP/s",
            secs * 1e3
        );
        println!("RESULT {name} {tflops:.3}");
    }
    Ok(())
}

fn main() {
    let probe = Device::probe_accelerators();
    let gpus: Vec<Device> = probe
        .devices
        .into_iter()
        .filter(|d| d.info().kind == "cuda")
        .collect();
    if gpus.is_empty() {
        println!(
            "SKIPPED cuda_matmul: no CUDA device: {}",
            probe.unavailable.join("; ")
        );
        return;
    }
    for d in &gpus {
        println!("device: {}", d.info().device);
        if let Err(e) = bench(d) {
            println!("FAILED: {e}");
            std::process::exit(1);
        }
    }
}
