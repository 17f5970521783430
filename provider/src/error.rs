//! The provider crate's one error type (a leaf: it imports nothing of the crate).

use std::path::PathBuf;

/// Errors of the provider daemon.
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
    /// A local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Something that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
