use thiserror::Error as ThisError;

/// Everything that can go wrong in a tensor op.
///
/// The first five variants are *deterministic*: they follow from the job's
/// shapes, arguments and limits alone, so every backend reports the same one.
/// [`Error::Device`] is a *provider fault* (out of device memory, a driver
/// error): it says nothing about the job and must never become a job result.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
pub enum Error {
    /// Operand shapes do not fit together.
    #[error("shape mismatch: {0}")]
    ShapeMismatch(String),
    /// An argument is out of range or of the wrong dtype.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The op's output would take live tensor bytes past the job's quota.
    #[error("GPU memory quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The op's work would take the job past its work budget.
    #[error("work budget exhausted: {0}")]
    WorkBudgetExhausted(String),
    /// The backend does not implement this op or dtype.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The device failed (out of memory, driver error): a provider fault.
    #[error("device fault: {0}")]
    Device(String),
}

impl Error {
    /// True when the error is a function of the job alone (same on every backend).
    pub fn is_deterministic(&self) -> bool {
        !matches!(self, Error::Device(_))
    }
}
