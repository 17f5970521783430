//! The Assay sandbox: runs a job's Wasm component deterministically and
//! signs what it produced.
//!
//! A [`Runtime`] holds the process-wide wasmtime engine (configured in one
//! place, [`engine`]), a linker with deterministic WASI and the `assay:gpu`
//! host ([`gpu`]), the device tensor ops run on, a compiled-component cache,
//! and the node key receipts are signed with.
//!
//! A run ends in one of two classes:
//!
//! - a **deterministic result** ([`assay_protocol::Outcome`]): success, guest
//!   error, trap, fuel exhausted, work budget exhausted, memory cap, GPU quota,
//!   output cap. These depend on (component, inputs, spec) alone, so any
//!   verifier reproduces them; they come back as a [`RunReport`] with outputs
//!   and a signed receipt.
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
pub mod engine;
mod error;
pub mod gpu;
mod limits;
mod sandbox;
mod wasi;

pub use cache::CacheHit;
pub use error::{Error, FaultKind};
pub use gpu::Inputs;
pub use limits::MemoryLimitHit;
pub use sandbox::{Ending, LoadedComponent, RunReport, Runtime, RuntimeOptions};
