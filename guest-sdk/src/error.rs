//! The SDK's error type.
//!
//! Every fallible call in this crate returns [`Result<T>`](crate::Result),
//! whose error is [`Error`]. The first five variants mirror the host's
//! `assay:gpu/tensor.error` variant one for one, so a job can react to a
//! specific refusal (for instance retry with a smaller batch on
//! [`Error::QuotaExceeded`]); the others come from the SDK itself.
//!
//! `?` works in every direction a job needs:
//! - host errors (the raw WIT variant) convert into [`Error`];
//! - [`Error`] converts into `String`, so a `run` function returning
//!   `Result<(), String>` can use `?` on SDK calls;
//! - common std errors (UTF-8, integer and float parsing, I/O) and
//!   `serde_json` errors convert too;
//! - `&str` and `String` convert into [`Error::Other`], so
//!   `return Err("no tokens".into())` works in a function returning
//!   [`crate::Result`].

use std::fmt;

use crate::bindings::assay::gpu::tensor::Error as HostError;

/// Why an SDK call failed.
///
/// The message says what went wrong and, where it can, what to fix. The
/// [`Display`](fmt::Display) form (`"shape mismatch: matmul: …"`) is what a
/// job's error output shows when it returns this error from `run`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The host refused: operand shapes do not fit together (e.g. matmul
    /// inner dimensions).
    ShapeMismatch(String),
    /// The host or the SDK refused an argument: out of range or of the
    /// wrong dtype.
    InvalidArgument(String),
    /// The host refused: the tensor would take the job's live tensor bytes
    /// past its GPU memory quota. Dropping tensors returns memory to the quota.
    QuotaExceeded(String),
    /// A named input, output, tensor or byte range does not exist.
    NotFound(String),
    /// The host (or the SDK) does not implement this request, e.g. a
    /// safetensors dtype the host cannot load.
    Unsupported(String),
    /// Input bytes that do not parse: a malformed safetensors header, text
    /// that is not UTF-8, a file in the wrong format.
    Format(String),
    /// A job parameter is missing or does not parse as the requested type.
    Param {
        /// The parameter's name.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// Anything else: an error a job made with [`Error::msg`] or from a string.
    Other(String),
}

impl Error {
    /// An [`Error::Other`] with the given message.
    ///
    /// # Example
    /// ```
    /// use assay_guest::Error;
    /// let e = Error::msg(format_args!("expected {} tokens", 3));
    /// assert_eq!(e.to_string(), "expected 3 tokens");
    /// ```
    pub fn msg(message: impl fmt::Display) -> Self {
        Error::Other(message.to_string())
    }

    /// The message without the kind prefix that [`Display`](fmt::Display) adds.
    pub fn message(&self) -> &str {
        match self {
            Error::ShapeMismatch(m)
            | Error::InvalidArgument(m)
            | Error::QuotaExceeded(m)
            | Error::NotFound(m)
            | Error::Unsupported(m)
            | Error::Format(m)
            | Error::Other(m) => m,
            Error::Param { message, .. } => message,
        }
    }

    /// The same error with `context` put in front of its message, keeping
    /// its variant (so a caller can still match on it).
    ///
    /// # Example
    /// ```
    /// use assay_guest::Error;
    /// let e = Error::NotFound("no input named `x`".into()).context("loading the prompt");
    /// assert!(matches!(e, Error::NotFound(_)));
    /// assert_eq!(e.to_string(), "not found: loading the prompt: no input named `x`");
    /// ```
    #[must_use]
    pub fn context(self, context: impl fmt::Display) -> Self {
        let wrap = |m: String| format!("{context}: {m}");
        match self {
            Error::ShapeMismatch(m) => Error::ShapeMismatch(wrap(m)),
            Error::InvalidArgument(m) => Error::InvalidArgument(wrap(m)),
            Error::QuotaExceeded(m) => Error::QuotaExceeded(wrap(m)),
            Error::NotFound(m) => Error::NotFound(wrap(m)),
            Error::Unsupported(m) => Error::Unsupported(wrap(m)),
            Error::Format(m) => Error::Format(wrap(m)),
            Error::Param { name, message } => Error::Param {
                name,
                message: wrap(message),
            },
            Error::Other(m) => Error::Other(wrap(m)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch(m) => write!(f, "shape mismatch: {m}"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::QuotaExceeded(m) => write!(f, "GPU memory quota exceeded: {m}"),
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::Format(m) => write!(f, "bad format: {m}"),
            Error::Param { name, message } => write!(f, "job parameter `{name}`: {message}"),
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<HostError> for Error {
    fn from(e: HostError) -> Self {
        match e {
            HostError::ShapeMismatch(m) => Error::ShapeMismatch(m),
            HostError::InvalidArgument(m) => Error::InvalidArgument(m),
            HostError::QuotaExceeded(m) => Error::QuotaExceeded(m),
            HostError::NotFound(m) => Error::NotFound(m),
            HostError::Unsupported(m) => Error::Unsupported(m),
        }
    }
}

impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.to_string()
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::Other(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::Other(message.to_owned())
    }
}

impl From<std::string::FromUtf8Error> for Error {
    fn from(e: std::string::FromUtf8Error) -> Self {
        Error::Format(format!("not valid UTF-8: {e}"))
    }
}

impl From<std::str::Utf8Error> for Error {
    fn from(e: std::str::Utf8Error) -> Self {
        Error::Format(format!("not valid UTF-8: {e}"))
    }
}

impl From<std::num::ParseIntError> for Error {
    fn from(e: std::num::ParseIntError) -> Self {
        Error::Format(format!("not an integer: {e}"))
    }
}

impl From<std::num::ParseFloatError> for Error {
    fn from(e: std::num::ParseFloatError) -> Self {
        Error::Format(format!("not a number: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Format(format!("JSON: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Other(format!("I/O: {e}"))
    }
}

/// Adds context to the error of a [`Result`](crate::Result), keeping its variant.
///
/// # Example
/// ```no_run
/// use assay_guest::{Context, SafeTensors};
/// # fn f() -> assay_guest::Result<()> {
/// let model = SafeTensors::open("model").context("opening the model")?;
/// # Ok(()) }
/// ```
pub trait Context<T> {
    /// On error, puts `context` in front of the message.
    ///
    /// # Errors
    /// The original error, with the context added.
    fn context(self, context: impl fmt::Display) -> Result<T, Error>;

    /// Like [`Context::context`], computing the context only on error.
    ///
    /// # Errors
    /// The original error, with the context added.
    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T, Error>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, context: impl fmt::Display) -> Result<T, Error> {
        self.map_err(|e| e.into().context(context))
    }

    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T, Error> {
        self.map_err(|e| e.into().context(context()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_errors_keep_their_variant() {
        let e: Error = HostError::QuotaExceeded("needs 16 GiB".into()).into();
        assert_eq!(e, Error::QuotaExceeded("needs 16 GiB".into()));
        assert_eq!(e.to_string(), "GPU memory quota exceeded: needs 16 GiB");
        assert_eq!(e.message(), "needs 16 GiB");
    }

    #[test]
    fn question_mark_into_string() {
        fn run() -> Result<(), String> {
            Err(Error::ShapeMismatch("matmul [2,3]·[4,5]".into()))?;
            Ok(())
        }
        assert_eq!(run(), Err("shape mismatch: matmul [2,3]·[4,5]".to_string()));
    }

    #[test]
    fn context_keeps_variant() {
        let r: Result<(), Error> = Err(Error::Param {
            name: "n".into(),
            message: "missing".into(),
        });
        let e = r.context("setting up").err();
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("job parameter `n`: setting up: missing".to_string())
        );
    }
}
