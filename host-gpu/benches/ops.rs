//! Op throughput of the CPU backend: `cargo bench -p assay-host-gpu --bench ops`.
//!
//! Prints two tables: matmul GFLOP/s per SIMD path and thread count, and
//! softmax / layer-norm / gelu against a plain single-threaded scalar loop
//! over the same canonical math. Options (environment):
//!
//! - `ASSAY_BENCH_QUICK=1`: fewer shapes, shorter runs (for a smoke check).
//! - `ASSAY_BENCH_SIMD=avx2`: only that path (default: every supported path).

#[path = "../tests/all/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use assay_host_gpu::{CpuSimd, Device, Session, SessionLimits, Tensor, UnaryOp, math};

/// Seconds of repeated runs per measurement (the best run is reported).
fn budget() -> Duration {
    if quick() {
        Duration::from_millis(150)
    } else {
        Duration::from_millis(600)
    }
}

fn quick() -> bool {
    std::env::var("ASSAY_BENCH_QUICK").as_deref() == Ok("1")
}

/// The fastest of repeated runs of `f` (at least 2, for at least `budget()`).
fn best_of(mut f: impl FnMut()) -> Duration {
    f(); // warm caches and the thread pool
    let start = Instant::now();
    let mut best = Duration::MAX;
    let mut runs = 0;
    while runs < 2 || start.elapsed() < budget() {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
        runs += 1;
    }
    best
}

fn session(simd: CpuSimd, threads: usize) -> Session {
    let device = Device::cpu_with(Some(threads), simd).expect("supported path");
    Session::new(
        device,
        SessionLimits {
            memory_quota: 8 << 30,
            work_budget: u64::MAX,
            max_rank: 8,
        },
    )
}

fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
            (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

fn upload(s: &mut Session, shape: &[usize], seed: u32) -> Tensor {
    s.upload_f32(shape, data(shape.iter().product(), seed))
        .expect("upload")
}

/// OpenBLAS sgemm GFLOP/s for `[m, k] · [k, n]` on `threads` threads,
/// measured in the same run through numpy (PyPI wheel, bundled OpenBLAS) by
/// `benches/blas_peer.py`. `None` (printed "n/a") when python3, numpy or
/// threadpoolctl is missing: `pip install numpy threadpoolctl`.
///
/// OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed for this command only,
/// so OpenBLAS picks its own kernel for this CPU (printed under the table).
fn blas_gflops(m: usize, k: usize, n: usize, threads: usize) -> Option<f64> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/blas_peer.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args([m, k, n, threads].map(|v| v.to_string()))
        .arg(budget().as_secs_f64().to_string())
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut words = text.split_whitespace();
    let gflops = words.next()?.parse().ok()?;
    if let Some(kernel) = words.next() {
        BLAS_KERNEL.get_or_init(|| kernel.to_string());
    }
    Some(gflops)
}

static BLAS_KERNEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn simd_paths() -> Vec<CpuSimd> {
    match std::env::var("ASSAY_BENCH_SIMD") {
        Ok(name) => vec![CpuSimd::parse(&name).expect("ASSAY_BENCH_SIMD")],
        Err(_) => CpuSimd::supported(),
    }
}

fn matmul_table() {
    let mut shapes: Vec<(&str, usize, usize, usize)> = vec![
        ("256³", 256, 256, 256),
        ("BERT qkv/out 128·384·384", 128, 384, 384),
        ("BERT ffn-up 128·384·1536", 128, 384, 1536),
        ("BERT ffn-down 128·1536·384", 128, 1536, 384),
    ];
    if !quick() {
        shapes.push(("1024³", 1024, 1024, 1024));
    }
    println!("\nmatmul [m, k] · [k, n], GFLOP/s (best of repeated runs)");
    println!(
        "{:<28} {:>8} {:>8} {:>10} {:>10} {:>10} {:>9}",
        "shape", "simd", "threads", "ms", "GFLOP/s", "OpenBLAS", "ratio"
    );
    for (name, m, k, n) in shapes {
        for simd in simd_paths() {
            for threads in [1, 2] {
                // The scalar path calls libm's fmaf per step: keep it to the small shapes.
                if simd == CpuSimd::Scalar && m * k * n > 64 << 20 {
                    continue;
                }
                let mut s = session(simd, threads);
                let a = upload(&mut s, &[m, k], 1);
                let b = upload(&mut s, &[k, n], 2);
                let t = best_of(|| {
                    black_box(s.matmul(&a, &b, false, false).expect("matmul"));
                });
                let gflops = 2.0 * (m * k * n) as f64 / t.as_secs_f64() / 1e9;
                let blas = blas_gflops(m, k, n, threads);
                let (blas_text, ratio) = match blas {
                    Some(g) => (format!("{g:.1}"), format!("{:.2}×", gflops / g)),
                    None => ("n/a".to_string(), "n/a".to_string()),
                };
                println!(
                    "{:<28} {:>8} {:>8} {:>10.3} {:>10.1} {:>10} {:>9}",
                    name,
                    simd.name(),
                    threads,
                    t.as_secs_f64() * 1e3,
                    gflops,
                    blas_text,
                    ratio
                );
            }
        }
    }
    match BLAS_KERNEL.get() {
        Some(kernel) => println!("OpenBLAS kernel (numpy, threadpoolctl): {kernel}"),
        None => println!("OpenBLAS peer unavailable: pip install numpy threadpoolctl"),
    }
}

// ---- plain scalar loops (one thread, no SIMD dispatch), the baseline -----

fn plain_softmax(x: &[f32], n: usize, out: &mut [f32]) {
    for (row, o) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        let mut sum = 0.0;
        for (ov, &v) in o.iter_mut().zip(row) {
            *ov = math::exp(v - m);
            sum += *ov;
        }
        o.iter_mut().for_each(|v| *v /= sum);
    }
}

fn plain_layer_norm(x: &[f32], g: &[f32], b: &[f32], out: &mut [f32]) {
    let n = g.len();
    for (row, o) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        let mean = row.iter().sum::<f32>() / n as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
        let den = (var + 1e-12).sqrt();
        for (((ov, &v), &gv), &bv) in o.iter_mut().zip(row).zip(g).zip(b) {
            *ov = (v - mean) / den * gv + bv;
        }
    }
}

fn plain_gelu(x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = 0.5 * v * (1.0 + math::erf(v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

fn row_ops_table() {
    println!("\nrow ops, µs per call (best of repeated runs); 'plain' is a one-thread scalar loop");
    println!(
        "{:<26} {:>8} {:>8} {:>10} {:>10} {:>9}",
        "op and shape", "simd", "threads", "µs", "plain µs", "speed-up"
    );
    let shapes: [(&str, [usize; 2]); 2] =
        [("[128, 1536]", [128, 1536]), ("[12·128, 128]", [1536, 128])];
    let gelu = common::erf_is_ready();
    if !gelu {
        println!("(gelu skipped: math::erf is not implemented yet)");
    }
    for (label, shape) in shapes {
        let [rows, n] = shape;
        let x = data(rows * n, 3);
        let g = data(n, 4);
        let b = data(n, 5);
        let mut out = vec![0.0; rows * n];
        let plain_softmax_t = best_of(|| plain_softmax(black_box(&x), n, &mut out));
        let plain_ln_t = best_of(|| plain_layer_norm(black_box(&x), &g, &b, &mut out));
        let plain_gelu_t = gelu.then(|| best_of(|| plain_gelu(black_box(&x), &mut out)));
        for simd in simd_paths() {
            for threads in [1, 2] {
                let mut s = session(simd, threads);
                let xt = s.upload_f32(&shape, x.clone()).expect("upload");
                let gt = s.upload_f32(&[n], g.clone()).expect("upload");
                let bt = s.upload_f32(&[n], b.clone()).expect("upload");
                let row = |op: &str, t: Duration, plain: Duration| {
                    println!(
                        "{:<26} {:>8} {:>8} {:>10.1} {:>10.1} {:>8.1}x",
                        format!("{op} {label}"),
                        simd.name(),
                        threads,
                        t.as_secs_f64() * 1e6,
                        plain.as_secs_f64() * 1e6,
                        plain.as_secs_f64() / t.as_secs_f64()
                    );
                };
                let t = best_of(|| {
                    black_box(s.softmax(&xt).expect("softmax"));
                });
                row("softmax", t, plain_softmax_t);
                let t = best_of(|| {
                    black_box(s.layer_norm(&xt, &gt, &bt, 1e-12).expect("layer_norm"));
                });
                row("layer_norm", t, plain_ln_t);
                if let Some(plain) = plain_gelu_t {
                    let t = best_of(|| {
                        black_box(s.unary(UnaryOp::Gelu, &xt).expect("gelu"));
                    });
                    row("gelu", t, plain);
                }
            }
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // then a smoke run of a second is all that is wanted.
    if !std::env::args().any(|a| a == "--bench") {
        println!("ops bench: run with `cargo bench -p assay-host-gpu --bench ops`");
        return;
    }
    println!(
        "assay-host-gpu CPU backend on {}: {}",
        std::env::consts::ARCH,
        Device::cpu().info().device
    );
    matmul_table();
    row_ops_table();
}
