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
pub mod metrics;
pub mod retry;
pub mod worker;

use std::path::PathBuf;

pub use worker::{Conclusion, GiveBack, Prepared, Registered, Settings, Work, Worker};

/// Errors of the worker loop and of the calls a [`Work`] makes for it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the coordinator failed: an outage (retried) or its refusal.
    #[error(transparent)]
    Call(#[from] assay_proto::Error),
    /// A request could not be signed with the node key. The daemon stops
    /// with this error: no request of it would be accepted.
    #[error("cannot sign a request with the node key: {0}")]
    Sign(#[source] assay_proto::Error),
    /// The coordinator does not serve this daemon's service at all.
    #[error("the coordinator at {url} does not serve {service} ({reason})")]
    Unsupported {
        /// The coordinator.
        url: String,
        /// What is missing, e.g. `verification`.
        service: &'static str,
        /// Its answer.
        reason: String,
    },
    /// A local file or socket failed.
    #[error("{path}: {source}")]
    Io {
        /// The file (or address).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Error {
        Error::Call(assay_proto::Error::Rpc(s))
    }
}

impl Error {
    /// An [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Signs `msg` with `key` for [`assay_proto::client::REQUEST_TTL_MS`]; a
/// failure is an [`Error::Sign`], which stops the daemon.
///
/// # Errors
///
/// [`Error::Sign`] when no nonce can be drawn.
pub fn sign<M: assay_proto::auth::Signed>(
    key: &assay_protocol::NodeKey,
    msg: &mut M,
) -> Result<(), Error> {
    assay_proto::auth::sign(
        key,
        msg,
        assay_proto::now_ms(),
        assay_proto::client::REQUEST_TTL_MS,
    )
    .map_err(Error::Sign)
}
