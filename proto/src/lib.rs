//! `assay.proto` — the gRPC contract between Assay nodes — and everything a
//! node needs to speak it:
//!
//! - [`pb`]: the prost messages and tonic clients/servers generated from
//!   `proto/assay.proto` at build time (protox compiles the file, so no
//!   `protoc` binary is needed).
//! - [`convert`]: the one place where domain types (`assay_protocol`) become
//!   messages and back; decoding checks lengths and ranges and names the
//!   offending field.
//! - [`auth`]: signed requests. Every state-changing request carries an
//!   [`pb::Auth`] (node id, coordinator id, nonce, expiry, ed25519
//!   signature) over a canonical encoding with a domain tag per message
//!   kind.
//! - [`client`]: connecting, and streaming blobs up and down in chunks.
//!
//! What the provider and verifier daemons share above this — the worker
//! loop, retries, the blob cache and metrics — is the `assay-daemon` crate.
//!
//! # Example
//!
//! ```
//! use assay_proto::{auth, pb};
//! use assay_protocol::{Hash32, NodeKey};
//!
//! // In a client: `assay_proto::client::signer(&channel, key)` asks the
//! // coordinator for its id.
//! let signer = auth::Signer::new(NodeKey::from_seed([7; 32]), Hash32([1; 32]));
//! let mut req = pb::TakeLeasesRequest { auth: None, max: 4, ..Default::default() };
//! auth::sign(&signer, &mut req, 1_000, 30_000).unwrap();
//! let who = auth::verify(&req, 1_500, 300_000).unwrap();
//! assert_eq!(who.node, signer.id());
//! req.max = 5; // any change breaks the signature
//! assert!(auth::verify(&req, 1_500, 300_000).is_err());
//! ```

#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod convert;
mod error;

pub use error::Error;

/// Messages and services generated from `proto/assay.proto` (package `assay.v1`).
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms
)]
pub mod pb {
    tonic::include_proto!("assay.v1");
}

/// Largest chunk of a blob in one stream message.
pub const CHUNK_BYTES: usize = 1 << 20;

/// The most bytes of blobs one message carries inline
/// (`SubmitJobRequest.inline_blobs`, `SubmitReceiptRequest.inline_outputs`,
/// a lease's `inline_inputs`, a job status's `inline_outputs`): a sender
/// uploads more as blobs of their own, the coordinator refuses more.
pub const INLINE_MAX_BYTES: u64 = 64 * 1024;

/// The most bytes of a failed run's message for people
/// (`SubmitReceiptRequest.failure_message`): a provider cuts it to this, the
/// coordinator refuses more.
pub const FAILURE_MESSAGE_MAX_BYTES: usize = 4096;

/// `message` cut to at most [`FAILURE_MESSAGE_MAX_BYTES`], on a char boundary.
pub fn failure_message(message: &str) -> &str {
    if message.len() <= FAILURE_MESSAGE_MAX_BYTES {
        return message;
    }
    let mut end = FAILURE_MESSAGE_MAX_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// Current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
