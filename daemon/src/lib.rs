//! The worker loop that both Assay daemons run — `assay provider` (takes
//! leases, submits receipts) and `assay verifier` (takes checks, submits
//! verdicts) — so that each keeps only its own logic.
//!
//! - [`worker`]: [`Worker`] registers (after asking the devnet faucet),
//!   heartbeats, takes work while slots are free, runs each item (fetch its
//!   blobs, run on a blocking thread, report with retries), backs off through
//!   outages, waits out a suspension, registers again when the coordinator
//!   forgot it, drains on shutdown and gives back what it cannot finish. It
//!   is parameterised by the [`Work`] trait: what to take, how to run it,
//!   what to report, how to give it back.
//! - [`cache`]: the blake3-checked local blob cache, filled from a
//!   [`cache::BlobSource`] (the coordinator).
//! - [`retry`]: back-off, refusals versus outages, bounded retries, the
//!   shutdown signal.
//! - [`dispute`]: a party's side of a bisected dispute — the traces it
//!   keeps, its answers to the coordinator's questions, and the task that
//!   polls for them.
//! - [`metrics`]: the counters every daemon keeps (`prometheus-client`,
//!   labelled per device and per outcome) and their HTTP endpoint (axum).
//!
//! One behaviour for both daemons where their copies used to drift: a
//! request that cannot be signed stops the daemon with that error (logged);
//! transient blob download errors are retried with back-off; a give-back
//! the coordinator does not take counts as an RPC error.
//!
//! Neighbours: `assay-proto` (the messages, signing, the blob client)
//! below; `assay-provider` and `assay-verifier` (the two [`Work`]s) above.

#![forbid(unsafe_code)]

pub mod cache;
pub mod dispute;
mod error;
pub mod metrics;
pub mod retry;
mod signing;
pub mod worker;

pub use error::Error;
pub use signing::{bind, sign};
pub use worker::{Blobs, Conclusion, GiveBack, Prepared, Registered, Settings, Work, Worker};
