//! Sandbox overheads: compiled-component cache hit, instantiate + trivial
//! run, one host call, and the per-op overhead of a tiny matmul.
//!
//! Run: `cargo bench -p assay-runtime --bench sandbox`
//! Prints medians over many runs, and each against its goal. Times are the
//! calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`): the guest runs on
//! that thread, and CPU time is far less disturbed than wall time when other
//! work shares the machine. The wall-clock medians are printed beside them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_guests::Guest;
use assay_host_gpu::Device;
use assay_protocol::{JobSpec, NodeKey};
use assay_runtime::{Inputs, Runtime, RuntimeOptions};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// CPU time consumed by the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Times `f` by thread CPU time and by wall time.
fn both<T>(f: impl FnOnce() -> T) -> (T, Duration, Duration) {
    let (c, w) = (thread_cpu(), Instant::now());
    let out = f();
    (out, thread_cpu() - c, w.elapsed())
}

fn runtime(cache: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.to_owned()),
        device: Device::cpu_with_threads(1),
        key: NodeKey::from_seed([1; 32]),
    })
    .expect("runtime")
}

fn spec(mode: &str, n: u64) -> JobSpec {
    let mut s = JobSpec::default();
    s.params.insert("mode".into(), mode.into());
    s.params.insert("n".into(), n.to_string());
    s
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = Guest::Microbench.bytes();
    // Warm the disk cache.
    runtime(dir.path()).load(bytes).expect("compile");

    // 1. Cache hit from disk: deserialize + link (a fresh runtime each time).
    let mut loads = Vec::new();
    let mut load_walls = Vec::new();
    for _ in 0..200 {
        let rt = runtime(dir.path());
        let (c, cpu, wall) = both(|| rt.load(bytes).expect("load"));
        loads.push(cpu);
        load_walls.push(wall);
        assert_eq!(c.cache_hit(), assay_runtime::CacheHit::Disk);
    }
    let load = (median(loads), median(load_walls));

    let rt = runtime(dir.path());
    let c = rt.load(bytes).expect("load");
    let inputs = Arc::new(Inputs::new());
    // Instantiate + run as `RunReport::elapsed` defines it, minus the rest of
    // `run` (input hashing, receipt signing), which is measured separately.
    let timed_both = |mode: &str, n: u64, reps: usize| -> (Duration, Duration) {
        let s = spec(mode, n);
        let mut cpu = Vec::with_capacity(reps);
        let mut wall = Vec::with_capacity(reps);
        for _ in 0..reps {
            let (r, c_all, _) = both(|| rt.run(&c, inputs.clone(), &s).expect("run"));
            assert!(r.outcome.is_success(), "{mode}: {:?}", r.error);
            // r.elapsed covers instantiate + run; scale CPU time to that share.
            wall.push(r.elapsed);
            cpu.push(c_all);
        }
        (median(cpu), median(wall))
    };
    let timed = |mode: &str, n: u64, reps: usize| -> Duration { timed_both(mode, n, reps).0 };

    // 2. Instantiate + trivial run (context set-up included; receipt signing
    //    excluded): wall time from RunReport::elapsed; CPU time of the whole
    //    `run` call, signing included, as an upper bound.
    let (trivial_cpu_whole_run, trivial) = timed_both("trivial", 0, 2000);
    // 3. One host call: (n calls − 0 calls) / n.
    let n_calls = 1_000_000;
    let calls = timed("host-calls", n_calls, 15);
    let base_calls = timed("host-calls", 0, 200);
    let per_call = calls.saturating_sub(base_calls).as_secs_f64() / n_calls as f64;
    let plain_calls = timed("host-calls-plain", n_calls, 15);
    let base_plain = timed("host-calls-plain", 0, 200);
    let per_plain_call = plain_calls.saturating_sub(base_plain).as_secs_f64() / n_calls as f64;
    let scalar_calls = timed("host-calls-scalar", n_calls, 15);
    let base_scalar = timed("host-calls-scalar", 0, 200);
    let per_scalar_call = scalar_calls.saturating_sub(base_scalar).as_secs_f64() / n_calls as f64;
    // 4. Tiny matmul [4,4]·[4,4] per op.
    let n_ops = 100_000;
    let ops = timed("tiny-matmul", n_ops, 7);
    let base_ops = timed("tiny-matmul", 0, 200);
    let per_op = ops.saturating_sub(base_ops).as_secs_f64() / n_ops as f64;

    println!("| measurement | median | goal | ratio to goal |");
    println!("|---|---|---|---|");
    let row = |name: &str, secs: f64, goal: f64, unit: f64, label: &str| {
        println!(
            "| {name} | {:.2} {label} | {:.2} {label} | {:.2}× |",
            secs * unit,
            goal * unit,
            secs / goal
        );
    };
    row(
        "compiled-component cache hit (disk → InstancePre), CPU",
        load.0.as_secs_f64(),
        0.5e-3,
        1e3,
        "ms",
    );
    row(
        "compiled-component cache hit (disk → InstancePre), wall",
        load.1.as_secs_f64(),
        0.5e-3,
        1e3,
        "ms",
    );
    row(
        "instantiate + trivial run, wall",
        trivial.as_secs_f64(),
        25e-6,
        1e6,
        "µs",
    );
    println!(
        "| whole `Runtime::run` of the trivial job incl. input hashing + ed25519 receipt, CPU | {:.2} µs | — | — |",
        trivial_cpu_whole_run.as_secs_f64() * 1e6
    );
    row(
        "one host call without a resource (job-io.shard)",
        per_plain_call,
        60e-9,
        1e9,
        "ns",
    );
    row(
        "one host call on a tensor handle returning a u64 (tensor.numel)",
        per_scalar_call,
        60e-9,
        1e9,
        "ns",
    );
    row(
        "one host call returning a list (tensor.shape)",
        per_call,
        60e-9,
        1e9,
        "ns",
    );
    println!(
        "| tiny matmul [4,4]·[4,4], per op (call + alloc + kernel) | {:.0} ns | — | — |",
        per_op * 1e9
    );
    println!();
    println!(
        "component: microbench.wasm ({} bytes); cpu backend, 1 thread",
        bytes.len()
    );
}
