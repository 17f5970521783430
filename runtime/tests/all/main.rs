//! The runtime's tests, one binary (as wasmtime-wasi's `tests/all`): the
//! sandbox end to end, the frozen failure records, and the run's trace.
//! Guests come from `assay-guests` (built fresh).

mod failures;
mod sandbox;
mod trace;

use std::sync::Arc;

use assay_guests::{Guest, matrix};
use assay_host_gpu::Device;
use assay_protocol::{JobSpec, NodeKey, Outcome};
use assay_runtime::{Inputs, RunReport, Runtime, RuntimeOptions};

pub(crate) fn runtime_with(cache: Option<&std::path::Path>, device: Device) -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: cache.map(|p| p.to_owned()),
        device,
        key: NodeKey::from_seed([42; 32]),
    })
    .expect("runtime")
}

pub(crate) fn runtime() -> Runtime {
    runtime_with(None, Device::cpu())
}

pub(crate) fn matmul_inputs(m: u32, k: u32, n: u32) -> Inputs {
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 3.0)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 5 % 11) as f32 - 5.0) / 7.0)
        .collect();
    let mut inputs = Inputs::new();
    inputs.insert("a".into(), matrix::encode(m, k, &a).expect("a").into());
    inputs.insert("b".into(), matrix::encode(k, n, &b).expect("b").into());
    inputs
}

pub(crate) fn run(rt: &Runtime, guest: Guest, inputs: Inputs, spec: &JobSpec) -> RunReport {
    let c = rt.load(guest.bytes()).expect("load");
    rt.run(&c, Arc::new(inputs), spec)
        .expect("a deterministic result")
}

pub(crate) fn hostile(rt: &Runtime, mode: &str, spec: &JobSpec) -> RunReport {
    let mut spec = spec.clone();
    spec.params.insert("mode".into(), mode.into());
    run(rt, Guest::Hostile, Inputs::new(), &spec)
}

/// Limits small enough that every hostile mode hits its own one quickly.
pub(crate) fn hostile_spec() -> JobSpec {
    JobSpec {
        fuel: 2_000_000_000,
        memory_bytes: 256 << 20,
        gpu_memory_bytes: 64 << 20,
        work_budget: 1_000_000_000,
        output_bytes: 8 << 20,
        wall_clock_ms: 120_000,
        ..JobSpec::default()
    }
}

pub(crate) fn fingerprint(r: &RunReport) -> (String, Outcome, u64, u64, u64) {
    let b = &r.receipt.body;
    (
        b.outputs_root.to_hex(),
        b.outcome,
        b.fuel_used,
        b.work.flops,
        b.work.bytes,
    )
}
