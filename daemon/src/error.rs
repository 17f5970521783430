//! The crate's one error type (a leaf: it imports nothing of the crate).

use std::path::PathBuf;

/// Errors of the worker loop and of the calls a [`crate::Work`] makes for it.
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
