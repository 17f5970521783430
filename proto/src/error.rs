use tonic::{Code, Status};

/// Errors of the proto crate: malformed messages, refused signatures, and
/// failed calls.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field is missing, has the wrong length, or is out of range.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, e.g. `receipt.job_id`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A state-changing request came without an `auth`.
    #[error(
        "request is not signed: every state-changing request must carry `auth` (node id, nonce, expiry, signature)"
    )]
    Unsigned,
    /// The signature does not verify against the node id in `auth`.
    #[error(
        "bad signature: the request is not signed by node {node} (wrong key, or the request was altered); sign with the node key of that id"
    )]
    BadSignature {
        /// The claimed signer.
        node: String,
    },
    /// The request is signed for another coordinator.
    #[error(
        "request signed for coordinator {signed_for}, not this one ({here}): sign for the coordinator you send it to (Renter.GetCoordinator gives its id)"
    )]
    OtherCoordinator {
        /// The coordinator id the request names.
        signed_for: String,
        /// This coordinator's id.
        here: String,
    },
    /// The request's expiry has passed.
    #[error(
        "request expired at {expires_at_ms} ms but the coordinator's clock reads {now_ms} ms: send a fresh request (and check this machine's clock)"
    )]
    Expired {
        /// When it expired.
        expires_at_ms: u64,
        /// The verifier's clock.
        now_ms: u64,
    },
    /// The request's expiry is further ahead than the verifier allows.
    #[error(
        "request expires {ahead_ms} ms ahead, more than the {max_ms} ms the coordinator accepts: use a shorter expiry (and check this machine's clock)"
    )]
    TooFarAhead {
        /// How far ahead it expires.
        ahead_ms: u64,
        /// The most allowed.
        max_ms: u64,
    },
    /// The nonce was already used by this node: a replayed request.
    #[error("replayed request refused: node {node} already used nonce {nonce}")]
    Replayed {
        /// The signer.
        node: String,
        /// The reused nonce.
        nonce: u64,
    },
    /// The coordinator could not be reached.
    #[error(
        "cannot reach the coordinator at {url}: {reason} (is `assay coordinator` running there?)"
    )]
    Connect {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The remote node refused the call.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Rpc(#[from] Status),
    /// A downloaded blob does not match its hash or size.
    #[error("blob {hash}: {reason}")]
    Blob {
        /// The blob's hash (hex).
        hash: String,
        /// What is wrong.
        reason: String,
    },
    /// The random source failed (for nonces).
    #[error("random source: {0}")]
    Random(String),
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown error",
        Code::InvalidArgument => "invalid argument",
        Code::DeadlineExceeded => "deadline exceeded",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "permission denied",
        Code::ResourceExhausted => "resource exhausted",
        Code::FailedPrecondition => "failed precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out of range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal error",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

impl Error {
    /// An [`Error::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// The gRPC status code this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            Error::Invalid { .. } => Code::InvalidArgument,
            Error::Unsigned
            | Error::BadSignature { .. }
            | Error::OtherCoordinator { .. }
            | Error::Expired { .. }
            | Error::TooFarAhead { .. } => Code::Unauthenticated,
            Error::Replayed { .. } => Code::AlreadyExists,
            Error::Connect { .. } => Code::Unavailable,
            Error::Rpc(s) => s.code(),
            Error::Blob { .. } => Code::DataLoss,
            Error::Random(_) => Code::Internal,
        }
    }

    /// True if a retry later may succeed (the coordinator is down or busy).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.code(),
            Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::ResourceExhausted
        ) || matches!(self, Error::Rpc(s) if s.code() == Code::Unknown && s.message().contains("transport"))
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        match e {
            Error::Rpc(s) => s,
            other => Status::new(other.code(), other.to_string()),
        }
    }
}
