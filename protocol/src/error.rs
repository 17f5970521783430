use std::path::PathBuf;

/// Errors of the protocol crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A hex string could not be decoded or had the wrong length.
    #[error("invalid {what}: {reason}")]
    InvalidEncoding {
        /// What was being decoded.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A signature did not verify against the signer's public key.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The node key file could not be read or written.
    #[error("node key {path}: {source}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The node key file exists but is not a key (or is readable by others).
    #[error("node key {path}: {reason}")]
    BadKeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// Bytes that claim to be a frozen format are not in it.
    #[error("malformed {0}")]
    Malformed(String),
    /// A move in a dispute game that the game's state does not allow, or
    /// evidence it refuses.
    #[error("dispute: {0}")]
    Dispute(String),
    /// The operating system's random source failed.
    #[error("random source: {0}")]
    Random(String),
}
