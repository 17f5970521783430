//! Deterministic tensor ops for Assay guests.
//!
//! Verification in Assay is a hash comparison, so every op here is defined as
//! a scalar program per output element ([`semantics`], the crate's
//! `SEMANTICS.md`) and every backend must reproduce the CPU reference bit for
//! bit. [`semantics`] is the standard a backend meets: reduction orders, fma
//! placement, NaN/±0/inf/subnormal behaviour, broadcasting, dtypes, the work
//! formulas and quota accounting, and the conformance suite.
//!
//! The crate has three layers:
//!
//! - [`Session`]: one per job. It validates shapes and arguments, computes
//!   each op's [`Work`] and output size from shapes alone, enforces the job's
//!   GPU memory quota (live tensor bytes) and work budget *before* launching
//!   anything, and keeps the work meter. `session.rs` holds that order and
//!   the machinery; each op family (`src/ops/matmul.rs`, `elementwise.rs`,
//!   `reduce.rs`, `norm.rs`, `layout.rs`, `conv.rs`, `attention.rs`,
//!   `transfer.rs`) adds its methods, shape rules and work formulas to
//!   `Session` in its own file.
//! - [`Op`]: a validated op with its parameters, handed to a backend.
//! - [`Backend`]: executes ops on a device. The CPU backend is always built;
//!   CUDA is a cargo feature, asked about in one place
//!   (`src/backend/cuda_switch/`). Backend-specific types never leave
//!   `src/backend/<name>/`.
//!
//! With the `cuda` (or `cuda-13`) feature, [`Device::accelerators`] and
//! [`Device::cuda`] give the CUDA backend when a driver and a GPU are
//! present ([`Device::probe_accelerators`] says why not otherwise); its
//! decisions are in [`semantics`] ("The CUDA backend as built").
//! [`telemetry`] reads GPU name, memory, temperature, power, utilisation
//! and clocks through NVML and is simply absent without an NVIDIA driver.
//!
//! A [`Device`] also keeps decoded input tensors from one job to the next
//! ([`resident`]: a provider decodes and packs a model's weights once, not
//! per shard), and every session times its ops ([`Session::op_times`]) for
//! profiles. Neither changes a result or what a job is charged.
//!
//! # Example
//!
//! ```
//! use assay_host_gpu::{Device, Session, SessionLimits};
//!
//! # fn main() -> Result<(), assay_host_gpu::Error> {
//! let device = Device::cpu();
//! let mut session = Session::new(device, SessionLimits::default());
//! let a = session.upload_f32(&[2, 2], vec![1.0, 2.0, 3.0, 4.0])?;
//! let b = session.upload_f32(&[2, 2], vec![1.0, 0.0, 0.0, 1.0])?;
//! let c = session.matmul(&a, &b, false, false)?;
//! assert_eq!(session.read_f32(&c)?, vec![1.0, 2.0, 3.0, 4.0]);
//! assert_eq!(session.work().flops, 2 * 2 * 2 * 2);
//! # Ok(())
//! # }
//! ```

mod backend;
mod dtype;
mod error;

#[doc = include_str!("../SEMANTICS.md")]
pub mod semantics {}
pub mod math;
mod op;
mod ops;
pub mod resident;
mod session;
pub mod telemetry;
mod tensor;

pub use backend::{
    AcceleratorProbe, Backend, BackendInfo, CpuSimd, Device, DeviceBuffer, HostElements, TensorRef,
    cuda_build,
};
pub use dtype::DType;
pub use error::Error;
pub use op::{BinaryOp, Op, ReduceOp, RopePairs, SourceEncoding, UnaryOp};
pub use ops::elementwise::{TRANSCENDENTAL_FLOPS, unary_flops};
pub use session::{OpTime, Session, SessionLimits, Work};
pub use tensor::Tensor;
