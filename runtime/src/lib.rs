//! The Assay sandbox: runs a job's Wasm component deterministically and
//! signs what it produced.
//!
//! A [`Runtime`] holds the process-wide wasmtime engine (configured in one
//! place, [`engine`]), a linker with deterministic WASI and the `assay:gpu`
//! host, the device tensor ops run on, a compiled-component cache, and the
//! node key receipts are signed with.
//!
//! Laid out like wasmtime-wasi: errors and endings in a leaf module
//! ([`Error`], [`HostError`], [`Ending`], [`FaultKind`]); one job's state and
//! its view in [`ctx`]; the host calls in [`host`], one file per WIT
//! interface (`host/tensor.rs`, `host/job_io.rs`); what an ending becomes
//! (outcome, failure record, message) in `outcome.rs`; running a job in
//! `sandbox.rs`; recording the run's trace of host calls (its root is in
//! the receipt) and replaying one step of it in `trace.rs` ([`RunTrace`],
//! [`replay_step`]).
//!
//! A run ends in one of two classes:
//!
//! - a **deterministic result** ([`assay_protocol::Outcome`]): success, guest
//!   error, trap, fuel exhausted, work budget exhausted, memory cap, GPU quota,
//!   output cap. These depend on (component, inputs, spec) alone, so any
//!   verifier reproduces them; they come back as a [`RunReport`] with outputs
//!   and a signed receipt. A failure's only output, `error`, is its frozen
//!   [`assay_protocol::Failure`] record; the human message rides beside it
//!   ([`RunReport::error`]) and is never hashed.
//! - a **provider fault** ([`Error::ProviderFault`]): the watchdog fired, the
//!   device failed, no instance slot was free. No receipt; the job goes
//!   elsewhere.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use assay_host_gpu::Device;
//! use assay_protocol::{JobSpec, NodeKey};
//! use assay_runtime::{Inputs, Runtime, RuntimeOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new(RuntimeOptions {
//!     cache_dir: Some("/tmp/assay-cache".into()),
//!     device: Device::cpu(),
//!     key: NodeKey::generate()?,
//! })?;
//! let component = runtime.load(&std::fs::read("matmul.wasm")?)?;
//! let mut inputs = Inputs::new();
//! inputs.insert("a".into(), std::fs::read("a.bin")?.into());
//! inputs.insert("b".into(), std::fs::read("b.bin")?.into());
//! let report = runtime.run(&component, Arc::new(inputs), &JobSpec::default())?;
//! println!("{} {}", report.outcome, report.receipt.body.outputs_root);
//! # Ok(())
//! # }
//! ```

mod bindings;
mod cache;
pub mod ctx;
pub mod engine;
mod error;
pub mod host;
mod limits;
mod outcome;
mod sandbox;
mod trace;
mod wasi;

pub use cache::CacheHit;
pub use ctx::{GpuCtx, GpuCtxView, GpuView, Inputs};
pub use error::{Ending, Error, FaultKind, HostError, RefusalCase};
pub use host::add_to_linker;
pub use limits::MemoryLimitHit;
pub use sandbox::{LoadedComponent, RunReport, Runtime, RuntimeOptions};
pub use trace::{Hashing, Replayed, RunTrace, TraceOptions, data_runtime, replay_step};
