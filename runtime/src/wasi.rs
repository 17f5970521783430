//! Deterministic WASI: nothing about the provider's machine reaches the guest.
//!
//! - the wall clock always reads the job's declared start time;
//! - the monotonic clock advances by [`MONOTONIC_STEP_NS`] per read;
//! - random bytes (secure and insecure) come from a blake3 stream keyed by the
//!   job id, so two runs of the same job see the same bytes;
//! - no environment, no arguments, no preopened directories, no sockets;
//! - stdin is empty; stdout and stderr go to buffers capped at the spec's
//!   `log_bytes` (a write past the cap fails, deterministically).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use assay_protocol::{Hash32, JobSpec};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

/// How far the monotonic clock moves per read, in nanoseconds.
pub const MONOTONIC_STEP_NS: u64 = 1_000;

/// A wall clock stopped at the job's start time.
#[derive(Debug)]
struct FrozenWallClock(Duration);

impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

/// A monotonic clock that ticks once per read.
#[derive(Debug, Default)]
struct StepClock(AtomicU64);

impl HostMonotonicClock for StepClock {
    fn resolution(&self) -> u64 {
        MONOTONIC_STEP_NS
    }

    fn now(&self) -> u64 {
        self.0.fetch_add(MONOTONIC_STEP_NS, Ordering::Relaxed) + MONOTONIC_STEP_NS
    }
}

/// A random stream: blake3 in XOF mode, keyed by the job id and a purpose.
struct SeededRandom(blake3::OutputReader);

impl SeededRandom {
    fn new(job_id: &Hash32, purpose: &str) -> SeededRandom {
        let mut h = blake3::Hasher::new_derive_key(&format!("assay/wasi-random/v1 {purpose}"));
        h.update(&job_id.0);
        SeededRandom(h.finalize_xof())
    }
}

impl rand_core::TryRng for SeededRandom {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dst);
        Ok(())
    }
}

/// The captured standard streams of a run.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

/// A WASI context whose every observable is a function of the job.
pub(crate) fn deterministic_ctx(job_id: &Hash32, spec: &JobSpec) -> (WasiCtx, Captured) {
    let cap = usize::try_from(spec.log_bytes).unwrap_or(usize::MAX);
    let captured = Captured {
        stdout: MemoryOutputPipe::new(cap),
        stderr: MemoryOutputPipe::new(cap),
    };
    let mut seed = [0u8; 16];
    SeededRandom::new(job_id, "insecure-seed").0.fill(&mut seed);
    let mut b = WasiCtxBuilder::new();
    b.stdout(captured.stdout.clone())
        .stderr(captured.stderr.clone())
        .wall_clock(FrozenWallClock(Duration::from_millis(spec.start_time_ms)))
        .monotonic_clock(StepClock::default())
        .secure_random(SeededRandom::new(job_id, "secure"))
        .insecure_random(SeededRandom::new(job_id, "insecure"))
        .insecure_random_seed(u128::from_le_bytes(seed))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .allow_blocking_current_thread(true);
    (b.build(), captured)
}
