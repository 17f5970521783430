//! Assay's shared domain types: what a job is, what running it produced, and
//! who vouches for it.
//!
//! Every node — the renter's CLI, a provider's daemon, a verifier, the
//! coordinator — speaks in these types:
//!
//! - [`JobSpec`]: the limits and parameters a renter sets for a job.
//! - [`Outcome`]: how a run ended, for runs that are *deterministic results*
//!   (functions of component, inputs and spec alone, hence verifiable).
//! - [`Receipt`]: the signed statement of a run — which component, which
//!   inputs, which outputs (by [`outputs_root`]), how much fuel and work.
//! - [`NodeKey`] / [`NodeId`]: ed25519 identities.
//! - [`Hash32`]: blake3 digests as content ids.
//! - [`Failure`]: the frozen record a failed run hashes instead of prose, and
//!   [`SEMANTICS_VERSION`], which every job id and receipt states.
//! - [`trace`]: the frozen trace of a run's host calls, whose root a receipt
//!   states, and the bisection game that narrows a dispute to one step.
//!
//! Hashes and signatures are over a canonical binary encoding ([`canonical`]),
//! never over JSON, so any implementation that follows the encoding agrees.
//!
//! # Example
//!
//! ```
//! use assay_protocol::{outputs_root, Hash32};
//!
//! let a = outputs_root([("b", &b"2"[..]), ("a", &b"1"[..])]);
//! let b = outputs_root([("a", &b"1"[..]), ("b", &b"2"[..])]);
//! assert_eq!(a, b); // sorted by name: order of writing does not matter
//! assert_ne!(a, Hash32::of(b""));
//! ```

#![forbid(unsafe_code)]

pub mod canonical;
mod caps;
pub mod challenge;
mod error;
mod failure;
mod hash;
mod identity;
pub mod market;
pub mod oracle;
mod outcome;
mod receipt;
mod roots;
mod semantics;
mod spec;
pub mod trace;
pub mod verification;

pub use caps::{OverCap, SpecCaps};
pub use error::Error;
pub use failure::{FAILURE_RECORD_VERSION, Failure, TrapCode};
pub use hash::Hash32;
pub use identity::{NodeId, NodeKey, Signature};
pub use market::{BlobRef, results_root};
pub use outcome::Outcome;
pub use receipt::{BackendDescriptor, Receipt, ReceiptBody, TelemetrySummary, WorkDone};
pub use roots::{inputs_root, outputs_root};
pub use semantics::SEMANTICS_VERSION;
pub use spec::{JobSpec, Shard, job_id};
