use tonic::{Code, Status};

/// Errors of the coordinator. Each maps to one gRPC status code and says
/// what the caller can do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or asks for something impossible.
    #[error("{0}")]
    Invalid(String),
    /// The thing asked about does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this (e.g. a lease held by another provider).
    #[error("{0}")]
    PermissionDenied(String),
    /// The state does not allow it now (e.g. not enough balance, lease expired).
    #[error("{0}")]
    Precondition(String),
    /// A request was replayed, or the thing exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// A blob's bytes do not match what was declared.
    #[error("{0}")]
    DataLoss(String),
    /// A size limit was hit.
    #[error("{0}")]
    TooLarge(String),
    /// A signature, expiry or replay check failed.
    #[error(transparent)]
    Auth(#[from] assay_proto::Error),
    /// The database failed.
    #[error("database ({backend}): {message}")]
    Database {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// What failed.
        message: String,
    },
    /// The data directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Stored data is inconsistent (a bug or tampering).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The object store that replicas share blobs through (S3) failed or
    /// cannot be reached.
    #[error("object store: {0}")]
    ObjectStore(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The gRPC status code for this error.
    pub fn code(&self) -> Code {
        match self {
            Error::Invalid(_) => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::Precondition(_) => Code::FailedPrecondition,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::DataLoss(_) => Code::DataLoss,
            Error::TooLarge(_) => Code::ResourceExhausted,
            Error::Auth(e) => e.code(),
            Error::Database { .. } | Error::Io { .. } | Error::Corrupt(_) => Code::Internal,
            Error::ObjectStore(_) => Code::Unavailable,
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        Status::new(e.code(), e.to_string())
    }
}
