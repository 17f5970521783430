//! The verifier crate's one error type (a leaf: it imports nothing of the crate).

use std::path::PathBuf;

/// Errors of the verifier crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Talking to the coordinator failed.
    #[error(transparent)]
    Proto(#[from] assay_proto::Error),
    /// The worker loop stopped with an error.
    #[error(transparent)]
    Daemon(#[from] assay_daemon::Error),
    /// The sandbox failed.
    #[error(transparent)]
    Runtime(#[from] assay_runtime::Error),
    /// The coordinator does not serve the verifier RPCs.
    #[error(
        "the coordinator at {url} does not serve verification ({reason}): it is older than this verifier; upgrade it or point --coordinator at one that does"
    )]
    Unsupported {
        /// The coordinator.
        url: String,
        /// Its answer.
        reason: String,
    },
    /// A model parameter is out of range.
    #[error("{0}")]
    Model(String),
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

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
