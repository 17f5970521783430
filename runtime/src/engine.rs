//! The one place the wasmtime engine is configured.
//!
//! Every choice here either makes a run a function of (component, inputs,
//! spec) alone, or keeps host calls cheap:
//!
//! - **fuel** meters the guest's own instructions; it decides the
//!   `fuel-exhausted` outcome, so it must be deterministic (it is: wasmtime
//!   charges per wasm operator, independent of the machine).
//! - **epoch interruption** is only a wall-clock watchdog: a ticker thread
//!   bumps the epoch every [`EPOCH_TICK`]; a run that outlives its watchdog is
//!   a *provider fault*, never a result.
//! - **NaN canonicalisation** and **deterministic relaxed SIMD** remove the
//!   two places where wasm float results may differ between CPUs.
//! - **no threads** (wasmtime is built without its `threads` feature), a fixed wasm stack size, backtraces off (trap messages
//!   must not depend on anything but the guest).
//! - the **pooling allocator** makes instantiation a few microseconds.
//! - wasmtime is built without `component-model-async` (see the workspace
//!   `Cargo.toml`), which keeps a host call at tens of nanoseconds.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::Error;

/// How often the watchdog's epoch advances.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Largest guest linear memory any job may ask for (wasm32's 4 GiB).
pub const MAX_GUEST_MEMORY: u64 = 4 << 30;

/// The wasm stack every guest gets, in bytes. Fixed so that stack overflow
/// happens at the same depth on every provider of the same architecture.
pub const WASM_STACK: usize = 1 << 20;

/// Jobs that may run at once in one engine (pooling allocator slots).
pub const MAX_CONCURRENT_JOBS: u32 = 32;

/// The engine's configuration. Public so that a verifier can print it.
pub fn config() -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .max_wasm_stack(WASM_STACK)
        .wasm_backtrace_max_frames(None)
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(true);
    // For `perf`: names the guest's compiled functions in /tmp/perf-<pid>.map
    // (BENCHMARKS.md, "Profiling"). Changes nothing a job computes.
    if std::env::var_os("ASSAY_PERF_MAP").is_some_and(|v| v == "1") {
        c.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }

    let mut pool = PoolingAllocationConfig::default();
    // wasm32-wasip2 components hold a handful of core instances (the
    // program plus wasm-component-ld's shims) and one or two memories.
    pool.total_component_instances(MAX_CONCURRENT_JOBS)
        .total_core_instances(MAX_CONCURRENT_JOBS * 16)
        .total_memories(MAX_CONCURRENT_JOBS * 2)
        .total_tables(MAX_CONCURRENT_JOBS * 8)
        .max_core_instances_per_component(16)
        .max_memories_per_component(2)
        .max_tables_per_component(8)
        .max_memory_size(MAX_GUEST_MEMORY as usize)
        .table_elements(100_000);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}

/// The process-wide engine, with its watchdog ticker running.
///
/// # Errors
///
/// [`Error::Engine`] if wasmtime rejects the configuration (e.g. the
/// machine cannot reserve the pooling allocator's virtual memory).
pub fn shared() -> Result<Engine, Error> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let engine = Engine::new(&config()).map_err(|e| format!("{e:#}"))?;
            start_ticker(Arc::new(engine.weak()));
            Ok(engine)
        })
        .clone()
        .map_err(Error::Engine)
}

/// A thread that advances the engine's epoch every [`EPOCH_TICK`] while the
/// engine lives.
fn start_ticker(engine: Arc<wasmtime::EngineWeak>) {
    let spawned = std::thread::Builder::new()
        .name("assay-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the watchdog thread ({e}); wall-clock limits will not fire");
    }
}

/// Epoch ticks for a watchdog of `ms` milliseconds (at least one).
pub fn watchdog_ticks(ms: u64) -> u64 {
    (ms / EPOCH_TICK.as_millis() as u64).max(1)
}

/// A stable fingerprint of this engine's compilation settings (wasmtime
/// version, target, flags): part of the compiled-component cache key.
pub fn fingerprint(engine: &Engine) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}
