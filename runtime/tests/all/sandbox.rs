//! The sandbox end to end: determinism, every hostile-guest ending, bad
//! components, and receipts.

use std::collections::BTreeMap;
use std::sync::Arc;

use assay_guests::{Guest, matrix};
use assay_host_gpu::Device;
use assay_protocol::{JobSpec, Outcome};
use assay_runtime::{CacheHit, Error, FaultKind, Inputs};

use crate::{fingerprint, hostile, hostile_spec, matmul_inputs, run, runtime, runtime_with};

#[test]
fn matmul_is_correct_and_identical_over_20_runs() {
    let rt = runtime();
    let inputs = matmul_inputs(33, 47, 29);
    let first = run(&rt, Guest::Matmul, inputs.clone(), &JobSpec::default());
    assert_eq!(first.outcome, Outcome::Success, "{:?}", first.error);
    let (m, k, a) = matrix::decode(&inputs["a"]).expect("a");
    let (k2, n, b) = matrix::decode(&inputs["b"]).expect("b");
    let want = matrix::reference_matmul(m, k, &a, k2, n, &b).expect("reference");
    let (rows, cols, got) = matrix::decode(&first.outputs["c"]).expect("c is a matrix");
    assert_eq!((rows, cols), (33, 29));
    let same_bits = got
        .iter()
        .zip(&want)
        .all(|(x, y)| x.to_bits() == y.to_bits());
    assert!(
        same_bits,
        "the product must equal the fma reference bit for bit"
    );
    assert!(first.receipt.body.fuel_used > 0);
    assert_eq!(first.receipt.body.work.flops, 2 * 33 * 47 * 29);
    for _ in 0..19 {
        let again = run(&rt, Guest::Matmul, inputs.clone(), &JobSpec::default());
        assert_eq!(fingerprint(&again), fingerprint(&first));
    }
}

/// Found by the load bench: two market jobs of one content, run by one
/// provider within a millisecond, got byte-identical receipts (one receipt
/// id for two leases). Each receipt of a runtime now finishes later than
/// the one before.
#[test]
fn receipts_of_identical_runs_differ() {
    let rt = runtime();
    let receipts: Vec<_> = (0..20)
        .map(|_| run(&rt, Guest::Hello, Inputs::new(), &JobSpec::default()).receipt)
        .collect();
    for pair in receipts.windows(2) {
        assert_eq!(pair[0].body.outputs_root, pair[1].body.outputs_root);
        assert!(pair[1].body.finished_at_ms > pair[0].body.finished_at_ms);
        assert_ne!(pair[0].id(), pair[1].id());
    }
}

#[test]
fn cold_and_warm_component_cache_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = matmul_inputs(8, 8, 8);
    let cold = runtime_with(Some(dir.path()), Device::cpu());
    let loaded = cold.load(Guest::Matmul.bytes()).expect("load");
    assert_eq!(loaded.cache_hit(), CacheHit::Compiled);
    let a = cold
        .run(&loaded, Arc::new(inputs.clone()), &JobSpec::default())
        .expect("run");
    assert_eq!(
        cold.load(Guest::Matmul.bytes()).expect("again").cache_hit(),
        CacheHit::Memory
    );

    let warm = runtime_with(Some(dir.path()), Device::cpu());
    let loaded = warm.load(Guest::Matmul.bytes()).expect("load");
    assert_eq!(
        loaded.cache_hit(),
        CacheHit::Disk,
        "a second runtime loads from disk"
    );
    let b = warm
        .run(&loaded, Arc::new(inputs), &JobSpec::default())
        .expect("run");
    assert_eq!(fingerprint(&a), fingerprint(&b));
}

#[test]
fn inputs_kept_on_the_device_between_jobs_change_nothing() {
    // 160×160 f32 = 100 KiB per matrix: large enough for the resident store.
    let inputs = matmul_inputs(160, 160, 160);
    let device = Device::cpu_with_threads(2);
    let rt = runtime_with(None, device.clone());
    let cold = run(&rt, Guest::Matmul, inputs.clone(), &JobSpec::default());
    assert_eq!(cold.outcome, Outcome::Success, "{:?}", cold.error);
    let before = device.resident_stats();
    assert_eq!((before.hits, before.buffers), (0, 2), "{before:?}");

    // The same content in fresh buffers: served from the store, same receipt.
    let copy: Inputs = inputs
        .iter()
        .map(|(n, b)| (n.clone(), b.to_vec().into()))
        .collect();
    let warm = run(&rt, Guest::Matmul, copy, &JobSpec::default());
    assert_eq!(device.resident_stats().hits, 2);
    assert_eq!(fingerprint(&cold), fingerprint(&warm));
    assert_eq!(cold.outputs, warm.outputs);

    // Other bytes of the same size and name are not mistaken for it.
    let mut other = inputs.clone();
    let (k, n, mut b) = matrix::decode(&inputs["b"]).expect("b");
    b[12_345] += 1.0;
    other.insert("b".into(), matrix::encode(k, n, &b).expect("b").into());
    let changed = run(&rt, Guest::Matmul, other, &JobSpec::default());
    let (m, k, a) = matrix::decode(&inputs["a"]).expect("a");
    let want = matrix::reference_matmul(m, k, &a, k, n, &b).expect("reference");
    let (_, _, got) = matrix::decode(&changed.outputs["c"]).expect("c");
    assert!(
        got.iter()
            .zip(&want)
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );

    // A device that keeps nothing, and a job over its quota on a warm store:
    // the same outcomes, fuel and work as on the warm device.
    let none = runtime_with(None, Device::cpu_with_threads(2).with_resident_limit(0));
    let plain = run(&none, Guest::Matmul, inputs.clone(), &JobSpec::default());
    assert_eq!(fingerprint(&plain), fingerprint(&warm));
    let tight = JobSpec {
        gpu_memory_bytes: 150 << 10,
        ..JobSpec::default()
    };
    let over_warm = run(&rt, Guest::Matmul, inputs.clone(), &tight);
    let over_cold = run(&none, Guest::Matmul, inputs, &tight);
    assert_ne!(over_warm.outcome, Outcome::Success);
    assert_eq!(fingerprint(&over_warm), fingerprint(&over_cold));
}

#[test]
fn results_do_not_depend_on_cpu_threads() {
    let inputs = matmul_inputs(64, 96, 80);
    let one = run(
        &runtime_with(None, Device::cpu_with_threads(1)),
        Guest::Matmul,
        inputs.clone(),
        &JobSpec::default(),
    );
    let two = run(
        &runtime_with(None, Device::cpu_with_threads(2)),
        Guest::Matmul,
        inputs,
        &JobSpec::default(),
    );
    assert_eq!(fingerprint(&one), fingerprint(&two));
}

#[test]
fn hello_sees_a_deterministic_wasi() {
    let rt = runtime();
    let a = run(&rt, Guest::Hello, Inputs::new(), &JobSpec::default());
    assert_eq!(a.outcome, Outcome::Success, "{:?}", a.error);
    let b = run(&runtime(), Guest::Hello, Inputs::new(), &JobSpec::default());
    assert_eq!(
        a.outputs, b.outputs,
        "same WASI view across runs and runtimes"
    );
    assert_eq!(a.stdout, b.stdout);
    assert!(!a.stdout.is_empty(), "stdout is captured");
    let wasi: serde_json::Value =
        serde_json::from_slice(&a.outputs["wasi.json"]).expect("wasi.json is JSON");
    let text = wasi.to_string();
    // The wall clock is the spec's start time (2026-01-01).
    assert!(
        text.contains("1767225600"),
        "wall clock frozen at the start time: {text}"
    );

    // A different job (different params) sees different random bytes.
    let mut spec = JobSpec::default();
    spec.params.insert("name".into(), "other".into());
    let c = run(&rt, Guest::Hello, Inputs::new(), &spec);
    let wasi_c: serde_json::Value = serde_json::from_slice(&c.outputs["wasi.json"]).expect("json");
    assert_ne!(
        wasi.get("random"),
        wasi_c.get("random"),
        "random is seeded by the job id"
    );
}

#[test]
fn receipts_verify_and_tampering_fails() {
    let rt = runtime();
    let report = run(
        &rt,
        Guest::Matmul,
        matmul_inputs(4, 4, 4),
        &JobSpec::default(),
    );
    report
        .receipt
        .verify()
        .expect("verifies with the node's key");
    assert_eq!(report.receipt.body.provider_id, rt.node_key().id());
    let mut tampered = report.receipt.clone();
    tampered.body.outputs_root.0[0] ^= 1;
    assert!(tampered.verify().is_err());
    let mut tampered = report.receipt.clone();
    tampered.body.fuel_used -= 1;
    assert!(tampered.verify().is_err());
}

#[test]
fn hostile_guests_end_in_the_right_outcome_and_the_host_keeps_serving() {
    let rt = runtime();
    let spec = hostile_spec();
    let cases: &[(&str, Outcome, &str)] = &[
        ("infinite-loop", Outcome::FuelExhausted, "fuel"),
        ("memory-bomb", Outcome::MemoryLimit, "memory limit"),
        ("deep-recursion", Outcome::Trap, "stack"),
        ("huge-output", Outcome::OutputLimitExceeded, "output limit"),
        ("quota-bomb", Outcome::GpuQuotaExceeded, "quota"),
        ("tensor-hoard", Outcome::GpuQuotaExceeded, "quota"),
        ("missing-input", Outcome::GuestError, "does-not-exist"),
        ("bad-output-name", Outcome::GuestError, "output name"),
        ("panic", Outcome::Trap, "panicked"),
        ("guest-error", Outcome::GuestError, "on purpose"),
        ("work-bomb", Outcome::WorkBudgetExhausted, "work budget"),
        // Host-side copies are work: a guest that floods the log past its
        // cap is stopped by the budget, not after the fuel runs out.
        ("log-flood", Outcome::WorkBudgetExhausted, "job-io.log"),
    ];
    for (mode, outcome, needle) in cases {
        let r = hostile(&rt, mode, &spec);
        let err = r.error.clone().unwrap_or_default();
        assert_eq!(r.outcome, *outcome, "mode {mode}: {err}");
        assert!(
            err.to_lowercase().contains(needle),
            "mode {mode}: the message should mention {needle:?}: {err}"
        );
        assert_eq!(
            r.outputs.keys().collect::<Vec<_>>(),
            ["error"],
            "mode {mode}"
        );
        r.receipt.verify().expect("failures are signed results too");
        // The same runtime keeps serving.
        let ok = hostile(&rt, "ok", &spec);
        assert_eq!(ok.outcome, Outcome::Success, "after {mode}: {:?}", ok.error);
        // And the failure is deterministic.
        let again = hostile(&rt, mode, &spec);
        assert_eq!(
            fingerprint(&again),
            fingerprint(&r),
            "mode {mode} is deterministic"
        );
    }
}

#[test]
fn a_shape_mismatch_is_an_error_the_guest_can_handle() {
    let r = hostile(&runtime(), "shape-mismatch", &JobSpec::default());
    assert_eq!(r.outcome, Outcome::Success, "{:?}", r.error);
    let text = String::from_utf8_lossy(&r.outputs["recovered"]).to_string();
    assert!(
        text.contains("inner dimensions") || text.contains("shape"),
        "{text}"
    );
}

#[test]
fn the_watchdog_is_a_provider_fault_not_a_result() {
    let rt = runtime();
    let spec = JobSpec {
        fuel: u64::MAX,
        wall_clock_ms: 300,
        ..JobSpec::default()
    };
    let mut spec = spec;
    spec.params.insert("mode".into(), "infinite-loop".into());
    let c = rt.load(Guest::Hostile.bytes()).expect("load");
    let t = std::time::Instant::now();
    match rt.run(&c, Arc::new(Inputs::new()), &spec) {
        Err(Error::ProviderFault {
            kind: FaultKind::Watchdog,
            ..
        }) => {}
        other => panic!("expected a watchdog fault, got {other:?}"),
    }
    assert!(
        t.elapsed().as_secs() < 30,
        "the watchdog fired late: {:?}",
        t.elapsed()
    );
    // Still serving.
    let ok = JobSpec {
        params: BTreeMap::from([("mode".to_string(), "ok".to_string())]),
        ..JobSpec::default()
    };
    assert_eq!(
        rt.run(&c, Arc::new(Inputs::new()), &ok)
            .expect("ok")
            .outcome,
        Outcome::Success
    );
}

fn bad_component(bytes: &[u8]) -> String {
    match runtime().load(bytes) {
        Err(Error::BadComponent(m)) => m,
        Err(other) => panic!("expected BadComponent, got {other}"),
        Ok(_) => panic!("accepted a bad component"),
    }
}

#[test]
fn bad_components_are_refused_with_a_clear_message() {
    let core = wat::parse_str("(module (func (export \"run\")))").expect("wat");
    assert!(bad_component(&core).contains("core WebAssembly module"));

    let wrong_world = bad_component(Guest::WasiCommand.bytes());
    assert!(wrong_world.contains("assay:gpu/job"), "{wrong_world}");

    let mut state = 0x1234_5678_u64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    assert!(bad_component(&random).contains("not a WebAssembly file"));

    let full = Guest::Matmul.bytes();
    let truncated = &full[..full.len() / 2];
    assert!(bad_component(truncated).contains("malformed or truncated"));
    assert!(bad_component(&[]).contains("not a WebAssembly file"));
}

#[test]
fn the_resident_store_keeps_to_its_limit_and_drops_the_oldest() {
    // Each matmul input is 100 KiB decoded; room for three.
    let device = Device::cpu_with_threads(1).with_resident_limit(300 << 10);
    let rt = runtime_with(None, device.clone());
    let first = matmul_inputs(160, 160, 160);
    let cold = run(&rt, Guest::Matmul, first.clone(), &JobSpec::default());
    assert_eq!(device.resident_stats().buffers, 2);
    // Other content (a and b both differ): the store stays within its
    // limit by dropping the oldest.
    let mut other = first.clone();
    for name in ["a", "b"] {
        let (r, c, mut v) = matrix::decode(&first[name]).expect("matrix");
        v[0] += 1.0;
        other.insert(
            name.into(),
            matrix::encode(r, c, &v).expect("encode").into(),
        );
    }
    run(&rt, Guest::Matmul, other, &JobSpec::default());
    let stats = device.resident_stats();
    assert!(stats.bytes <= stats.limit, "{stats:?}");
    assert_eq!(stats.buffers, 3, "{stats:?}");
    // The first job again: whatever was dropped is decoded anew, same receipt.
    let again = run(&rt, Guest::Matmul, first, &JobSpec::default());
    assert_eq!(fingerprint(&cold), fingerprint(&again));
    assert!(device.resident_stats().bytes <= 300 << 10);
}
