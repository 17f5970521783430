//! The proof-of-hardware challenge guest in the sandbox, with the specs of
//! `assay_protocol::challenge`: it succeeds within its budgets, is
//! deterministic, depends on the seed, meters exactly the work the protocol
//! predicts, keeps its rows apart and never settles, refuses bad params with
//! a guest error, and gives the same bytes on the CUDA backend (a GPU when
//! there is one; the kernels emulated on the host with
//! `ASSAY_CUDA_EMULATOR=1`, built with `--features assay-host-gpu/cuda`).
//! `ASSAY_REQUIRE_GPU=1` / `ASSAY_REQUIRE_EMULATOR=1` turn a skip into a failure.
//!
//! Timing on this machine (ignored by default):
//! `ASSAY_CHALLENGE_N=2048 ASSAY_CHALLENGE_ROUNDS=2 cargo test --release -p assay-guests --test challenge -- --ignored --nocapture`

use std::sync::Arc;
use std::time::Instant;

use assay_guests::Guest;
use assay_host_gpu::Device;
use assay_protocol::challenge::{
    self, ChallengeWork, DeviceClass, OUTPUT_DIGEST, challenge_spec, challenge_work,
    peak_gpu_bytes, spec_for,
};
use assay_protocol::{JobSpec, NodeKey, Outcome};
use assay_runtime::{Inputs, RunReport, Runtime, RuntimeOptions};

const SEED: [u8; 32] = [0x5e; 32];
const T0: u64 = 1_767_225_600_000;

fn runtime(device: Device) -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: None,
        device,
        key: NodeKey::from_seed([9; 32]),
    })
    .expect("runtime")
}

fn run(rt: &Runtime, spec: &JobSpec) -> RunReport {
    let component = rt.load(Guest::Challenge.bytes()).expect("load");
    rt.run(&component, Arc::new(Inputs::new()), spec)
        .expect("a deterministic result")
}

fn seed(i: u8) -> [u8; 32] {
    let mut s = SEED;
    s[31] ^= i;
    s
}

/// The digest's header fields and values.
fn digest(r: &RunReport) -> (u32, u32, [u8; 32], Vec<f32>) {
    assert_eq!(r.outcome, Outcome::Success, "{:?}", r.error);
    let d = &r.outputs[OUTPUT_DIGEST];
    assert_eq!(&d[..8], b"ASSAYCH1");
    let u32_at = |at: usize| u32::from_le_bytes(d[at..at + 4].try_into().expect("4 bytes"));
    let (n, rounds) = (u32_at(8), u32_at(12));
    assert_eq!(
        d.len() as u64,
        challenge::DIGEST_HEADER_BYTES + 4 * u64::from(n)
    );
    let seed: [u8; 32] = d[16..48].try_into().expect("32 bytes");
    let values = d[48..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    (n, rounds, seed, values)
}

fn work(r: &RunReport) -> ChallengeWork {
    ChallengeWork {
        flops: r.receipt.body.work.flops,
        bytes: r.receipt.body.work.bytes,
    }
}

/// Success within the spec's budgets, with exactly the predicted work.
fn check_within_budgets(r: &RunReport, spec: &JobSpec, n: u32, rounds: u32) {
    assert_eq!(r.outcome, Outcome::Success, "{:?}", r.error);
    let body = &r.receipt.body;
    assert!(
        body.fuel_used <= spec.fuel,
        "fuel {} > {}",
        body.fuel_used,
        spec.fuel
    );
    assert_eq!(
        work(r),
        challenge_work(n, rounds).expect("in range"),
        "the meter and assay_protocol::challenge::challenge_work disagree"
    );
    assert!(work(r).units() <= spec.work_budget);
}

fn distinct(values: &[f32]) -> usize {
    let mut bits: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
    bits.sort_unstable();
    bits.dedup();
    bits.len()
}

#[test]
fn cpu_class_challenge_is_deterministic_and_fits_its_budgets() {
    let rt = runtime(Device::cpu());
    let spec = challenge_spec(DeviceClass::Cpu, SEED, T0);
    let p = DeviceClass::Cpu.params();
    let first = run(&rt, &spec);
    check_within_budgets(&first, &spec, p.n, p.rounds);
    let (n, rounds, echoed, values) = digest(&first);
    assert_eq!((n, rounds, echoed), (p.n, p.rounds, SEED));
    assert!(values.iter().all(|v| v.is_finite()));
    assert_eq!(distinct(&values), values.len(), "rows collapsed");

    let again = run(&rt, &spec);
    assert_eq!(again.outputs, first.outputs);
    assert_eq!(
        again.receipt.body.outputs_root,
        first.receipt.body.outputs_root
    );
    assert_eq!(again.receipt.body.fuel_used, first.receipt.body.fuel_used);
    assert_eq!(work(&again), work(&first));

    let other = run(&rt, &challenge_spec(DeviceClass::Cpu, seed(1), T0));
    check_within_budgets(&other, &spec, p.n, p.rounds);
    assert_ne!(
        other.receipt.body.outputs_root,
        first.receipt.body.outputs_root
    );
    // A one-bit change of the seed changes (almost) every value.
    let (_, _, _, other_values) = digest(&other);
    let same = values
        .iter()
        .zip(&other_values)
        .filter(|(a, b)| a.to_bits() == b.to_bits())
        .count();
    assert!(same <= 2, "{same} of {n} values unchanged");

    println!(
        "cpu-class challenge (n = {}, {} rounds): {:.1} ms instantiate + run, fuel {} of {}, work {} of {}",
        p.n,
        p.rounds,
        first.elapsed.as_secs_f64() * 1e3,
        first.receipt.body.fuel_used,
        spec.fuel,
        work(&first).units(),
        spec.work_budget
    );
}

#[test]
fn results_do_not_depend_on_cpu_threads() {
    let spec = challenge_spec(DeviceClass::Cpu, seed(2), T0);
    let one = run(&runtime(Device::cpu_with_threads(1)), &spec);
    let two = run(&runtime(Device::cpu_with_threads(2)), &spec);
    assert_eq!(one.outcome, Outcome::Success, "{:?}", one.error);
    assert_eq!(one.outputs, two.outputs);
}

/// A larger n (GPU-class-shaped, few rounds) on this CPU: same checks.
#[test]
fn larger_challenge_fits_its_budgets() {
    let rt = runtime(Device::cpu());
    let (n, rounds) = (1024, 2);
    let spec = spec_for(n, rounds, SEED, T0).expect("in range");
    let start = Instant::now();
    let first = run(&rt, &spec);
    let secs = start.elapsed().as_secs_f64();
    check_within_budgets(&first, &spec, n, rounds);
    let (_, _, _, values) = digest(&first);
    assert_eq!(distinct(&values), values.len(), "rows collapsed");
    let again = run(&rt, &spec);
    assert_eq!(
        again.receipt.body.outputs_root,
        first.receipt.body.outputs_root
    );
    let other = run(&rt, &spec_for(n, rounds, seed(3), T0).expect("in range"));
    assert_ne!(
        other.receipt.body.outputs_root,
        first.receipt.body.outputs_root
    );
    println!(
        "n = {n}, {rounds} rounds: {secs:.2} s, {:.1} GFLOP/s",
        work(&first).flops as f64 / secs / 1e9
    );
}

/// The GPU classes' specs, on a budget too small for them, end the same
/// way every time (what a CPU provider claiming a GPU could at best do
/// without the time: an honest failure is a result, not a crash).
#[test]
fn gpu_class_specs_exhaust_a_small_budget_deterministically() {
    let rt = runtime(Device::cpu());
    for class in [
        DeviceClass::GpuSmall,
        DeviceClass::GpuMedium,
        DeviceClass::GpuLarge,
    ] {
        let mut spec = challenge_spec(class, SEED, T0);
        assert_eq!(spec.params["n"], class.params().n.to_string());
        spec.work_budget = 1 << 20;
        let a = run(&rt, &spec);
        let b = run(&rt, &spec);
        assert_eq!(
            a.outcome,
            Outcome::WorkBudgetExhausted,
            "{class}: {:?}",
            a.error
        );
        assert_eq!(a.receipt.body.outputs_root, b.receipt.body.outputs_root);
        assert_eq!(a.receipt.body.fuel_used, b.receipt.body.fuel_used);
        assert_eq!(work(&a), work(&b));
    }
}

/// The spec's limits are tight where they are exact: the predicted work and
/// peak memory suffice, one unit less does not.
#[test]
fn predicted_work_and_peak_memory_are_exact() {
    let rt = runtime(Device::cpu());
    for (n, rounds) in [(64, 2), (8, 3), (1, 1)] {
        let base = spec_for(n, rounds, SEED, T0).expect("in range");
        let units = challenge_work(n, rounds).expect("in range").units();
        let peak = peak_gpu_bytes(n).expect("in range");

        let exact = JobSpec {
            work_budget: units,
            gpu_memory_bytes: peak,
            ..base.clone()
        };
        let ok = run(&rt, &exact);
        check_within_budgets(&ok, &exact, n, rounds);

        let short_work = JobSpec {
            work_budget: units - 1,
            ..exact.clone()
        };
        assert_eq!(
            run(&rt, &short_work).outcome,
            Outcome::WorkBudgetExhausted,
            "n = {n}"
        );
        let short_memory = JobSpec {
            gpu_memory_bytes: peak - 1,
            ..exact.clone()
        };
        assert_eq!(
            run(&rt, &short_memory).outcome,
            Outcome::GpuQuotaExceeded,
            "n = {n}"
        );
    }
}

/// The recurrence keeps moving: after many rounds the rows are still
/// distinct and one more round still changes them (no fixed point a
/// cheater could stop at, no collapse onto one row it could copy).
#[test]
fn the_chain_never_settles() {
    let rt = runtime(Device::cpu());
    let (n, rounds) = (48, 600);
    let a = run(&rt, &spec_for(n, rounds, SEED, T0).expect("in range"));
    let b = run(&rt, &spec_for(n, rounds + 1, SEED, T0).expect("in range"));
    let (_, _, _, va) = digest(&a);
    let (_, _, _, vb) = digest(&b);
    assert_eq!(distinct(&va), n as usize, "rows collapsed");
    let moved = va
        .iter()
        .zip(&vb)
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count();
    assert_eq!(
        moved, n as usize,
        "only {moved} of {n} rows moved in one round"
    );
}

/// The guest computes what its docs say: the same recurrence written out
/// with host-gpu's session, from the same blake3 stream, gives the digest's
/// bytes exactly.
#[test]
fn the_guest_computes_what_its_docs_say() {
    use assay_host_gpu::{BinaryOp, DType, Session, SessionLimits, UnaryOp};

    let (n, rounds) = (24usize, 5u32);
    let r = run(
        &runtime(Device::cpu()),
        &spec_for(n as u32, rounds, SEED, T0).expect("in range"),
    );
    let (_, _, _, got) = digest(&r);

    let mut xof = blake3::Hasher::new_derive_key("assay challenge v1")
        .update(&SEED)
        .finalize_xof();
    let mut uniform = |count: usize| -> Vec<f32> {
        let mut bytes = vec![0u8; count * 4];
        xof.fill(&mut bytes);
        bytes
            .chunks_exact(4)
            .map(|b| {
                let x = u32::from_le_bytes(b.try_into().expect("4 bytes"));
                (x >> 8) as f32 * (1.0 / 8_388_608.0) - 1.0
            })
            .collect()
    };
    let mut s = Session::new(Device::cpu(), SessionLimits::default());
    let k = challenge::RANK as usize;
    let dense = |s: &mut Session, a: Vec<f32>, b: Vec<f32>| {
        let a = s.upload_f32(&[n, k], a).expect("a");
        let b = s.upload_f32(&[k, n], b).expect("b");
        let ab = s.matmul(&a, &b, false, false).expect("ab");
        let scaled = s.scale(&ab, 1024.0).expect("scale");
        let int = s.cast(&scaled, DType::I32).expect("trunc");
        let back = s.cast(&int, DType::F32).expect("back");
        s.binary(BinaryOp::Sub, &scaled, &back).expect("frac")
    };
    let (u, v) = (uniform(n * k), uniform(k * n));
    let b = dense(&mut s, u, v);
    let (p, q) = (uniform(n * k), uniform(k * n));
    let drive = dense(&mut s, p, q);
    let w = s.upload_f32(&[n, 1], uniform(n)).expect("w");
    let mut x = drive.clone();
    for _ in 0..rounds {
        let gains = uniform(n).into_iter().map(|u| 2.0 + u).collect();
        let gamma = s.upload_f32(&[n], gains).expect("gamma");
        let y = s.matmul(&x, &b, false, false).expect("x·b");
        let z = s.rms_norm(&y, &gamma, 1e-6).expect("rms_norm");
        let sum = s.binary(BinaryOp::Add, &z, &drive).expect("+ d");
        x = s.unary(UnaryOp::Tanh, &sum).expect("tanh");
    }
    let d = s.matmul(&x, &w, false, false).expect("x·w");
    let want = s.read_f32(&d).expect("read");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&got), bits(&want));
    // The same ops, plus the runtime's host copies: the digest vector read
    // back (4n bytes) and the digest written (48 + 4n).
    let copies = 8 * n as u64 + 48;
    assert_eq!(
        (s.work().flops, s.work().bytes + copies),
        (work(&r).flops, work(&r).bytes),
        "the same ops, so the same metered work"
    );
}

#[test]
fn bad_params_are_guest_errors() {
    let rt = runtime(Device::cpu());
    let good = spec_for(16, 1, SEED, T0).expect("in range");
    let with = |key: &str, value: Option<&str>| {
        let mut spec = good.clone();
        match value {
            Some(v) => spec.params.insert(key.to_owned(), v.to_owned()),
            None => spec.params.remove(key),
        };
        spec
    };
    for (spec, want) in [
        (with("seed", None), "seed"),
        (with("seed", Some("abc")), "64 hex digits"),
        (with("seed", Some(&"zz".repeat(32))), "not hex"),
        (with("n", None), "`n`"),
        (with("n", Some("0")), "out of range"),
        (with("n", Some("65537")), "out of range"),
        (with("n", Some("-3")), "n"),
        (with("rounds", Some("many")), "rounds"),
        (with("rounds", Some("0")), "out of range"),
    ] {
        let r = run(&rt, &spec);
        assert_eq!(
            r.outcome,
            Outcome::GuestError,
            "{:?}: {:?}",
            spec.params,
            r.error
        );
        let text = r.error.clone().unwrap_or_default();
        assert!(text.contains(want), "{:?}: {text}", spec.params);
        assert_eq!(r.outputs.keys().collect::<Vec<_>>(), vec!["error"]);
    }
    // An uppercase seed is the same seed.
    let upper = with("seed", Some(&assay_hex_upper(&SEED)));
    assert_eq!(
        run(&rt, &upper).receipt.body.outputs_root,
        run(&rt, &good).receipt.body.outputs_root
    );
}

fn assay_hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The CUDA backend gives the CPU's bytes: the CPU-class challenge on a GPU
/// when there is one, a small one on the emulated kernels (slow).
#[test]
fn cuda_backend_gives_the_cpu_bytes() {
    let flag = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
    let mut runs: Vec<(&str, Device, JobSpec)> = Vec::new();
    match Device::cuda(0) {
        Ok(gpu) => runs.push(("cuda", gpu, challenge_spec(DeviceClass::Cpu, SEED, T0))),
        Err(e) => {
            assert!(!flag("ASSAY_REQUIRE_GPU"), "ASSAY_REQUIRE_GPU=1 but: {e}");
            println!("SKIPPED cuda_backend_gives_the_cpu_bytes on a GPU: {e}");
        }
    }
    if flag("ASSAY_CUDA_EMULATOR") {
        match Device::cuda_emulated() {
            Ok(emu) => {
                // n = 40: no multiple of any tile or warp; then the CPU class.
                runs.push((
                    "cuda (emulated)",
                    emu.clone(),
                    spec_for(40, 3, SEED, T0).expect("in range"),
                ));
                runs.push((
                    "cuda (emulated)",
                    emu,
                    challenge_spec(DeviceClass::Cpu, SEED, T0),
                ));
            }
            Err(e) => {
                assert!(
                    !flag("ASSAY_REQUIRE_EMULATOR"),
                    "ASSAY_REQUIRE_EMULATOR=1 but: {e}"
                );
                println!("SKIPPED cuda_backend_gives_the_cpu_bytes on the emulator: {e}");
            }
        }
    } else {
        println!(
            "SKIPPED cuda_backend_gives_the_cpu_bytes on the emulator: ASSAY_CUDA_EMULATOR is not 1"
        );
    }
    let cpu = runtime(Device::cpu_with_threads(2));
    for (what, device, spec) in runs {
        let want = run(&cpu, &spec);
        assert_eq!(want.outcome, Outcome::Success, "{:?}", want.error);
        let start = Instant::now();
        let got = run(&runtime(device), &spec);
        assert_eq!(
            got.outputs, want.outputs,
            "{what}: the digest differs from the CPU's"
        );
        assert_eq!(
            got.receipt.body.outputs_root,
            want.receipt.body.outputs_root
        );
        assert_eq!(got.receipt.body.fuel_used, want.receipt.body.fuel_used);
        assert_eq!(work(&got), work(&want));
        println!(
            "challenge on {what} (n = {}, {} rounds): bit-identical to the CPU ({:.2} s)",
            spec.params["n"],
            spec.params["rounds"],
            start.elapsed().as_secs_f64()
        );
    }
}

/// Timing on this machine: `ASSAY_CHALLENGE_N`, `ASSAY_CHALLENGE_ROUNDS`
/// (default: the CPU class), optionally `ASSAY_CHALLENGE_THREADS`.
#[test]
#[ignore = "timing; run with --ignored --nocapture"]
fn timing_on_this_cpu() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
    let cpu = DeviceClass::Cpu.params();
    let n = env("ASSAY_CHALLENGE_N").unwrap_or(cpu.n);
    let rounds = env("ASSAY_CHALLENGE_ROUNDS").unwrap_or(cpu.rounds);
    let device = match env("ASSAY_CHALLENGE_THREADS") {
        Some(t) => Device::cpu_with_threads(t as usize),
        None => Device::cpu(),
    };
    let rt = runtime(device);
    let start = Instant::now();
    let component = rt.load(Guest::Challenge.bytes()).expect("load");
    let compile = start.elapsed();
    let spec = spec_for(n, rounds, SEED, T0).expect("in range");
    let mut best = f64::INFINITY;
    let mut fuel = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let r = rt
            .run(&component, Arc::new(Inputs::new()), &spec)
            .expect("a deterministic result");
        best = best.min(start.elapsed().as_secs_f64());
        assert_eq!(r.outcome, Outcome::Success, "{:?}", r.error);
        fuel = r.receipt.body.fuel_used;
    }
    let flops = challenge_work(n, rounds).expect("in range").flops as f64;
    println!(
        "TIMING challenge n = {n}, rounds = {rounds}: compile {:.0} ms, best run {:.1} ms, {:.1} GFLOP/s, fuel {fuel}",
        compile.as_secs_f64() * 1e3,
        best * 1e3,
        flops / best / 1e9
    );
}
