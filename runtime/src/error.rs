//! Every error and ending of the runtime, in one leaf module: the crate's
//! [`Error`], the kinds of provider fault, and what a host call can return
//! instead of a value ([`HostError`], [`Ending`]).
//!
//! Nothing here is hashed: the human messages these carry travel beside a
//! run's result. What a failed run hashes is its
//! [`assay_protocol::Failure`] record, built from the structured fields
//! (`call`, `output`) and never from the text.

use std::fmt;
use std::path::PathBuf;

/// Errors of the runtime crate.
///
/// [`Error::BadComponent`] is the user's to fix (exit status 2 in the CLI);
/// [`Error::ProviderFault`] says the run produced no result because of the
/// machine (no receipt; the job goes elsewhere); the rest are set-up errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a component for the `assay:gpu/job` world.
    #[error("{0}")]
    BadComponent(String),
    /// The run ended for a reason that is not a function of the job.
    #[error("provider fault ({kind}): {message}")]
    ProviderFault {
        /// Which kind of fault.
        kind: FaultKind,
        /// What happened.
        message: String,
    },
    /// wasmtime rejected the engine configuration.
    #[error("cannot build the wasm engine: {0}")]
    Engine(String),
    /// The component cache directory could not be used.
    #[error("component cache {path}: {source}")]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Signing the receipt failed.
    #[error(transparent)]
    Protocol(#[from] assay_protocol::Error),
    /// A trace step could not be replayed from its revealed inputs
    /// ([`crate::replay_step`]).
    #[error("cannot replay the step: {0}")]
    Replay(String),
}

/// The kinds of provider fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The wall-clock watchdog fired.
    Watchdog,
    /// The device ran out of memory or the driver failed.
    Device,
    /// No instance slot was free, or another host-side limit was hit.
    Capacity,
    /// A bug or unexpected host error.
    Internal,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Watchdog => "watchdog",
            FaultKind::Device => "device",
            FaultKind::Capacity => "capacity",
            FaultKind::Internal => "internal",
        })
    }
}

/// A deterministic reason a host call ended the run. `call` is the WIT name
/// of the host call (`interface.function`), which goes into the failure
/// record; `message` is for people only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A tensor op would exceed the work budget.
    WorkBudget {
        /// The op.
        call: &'static str,
        /// What the op would have cost against what was left.
        message: String,
    },
    /// Outputs would exceed the output cap.
    OutputLimit {
        /// The write.
        call: &'static str,
        /// The output being written.
        output: String,
        /// The sizes involved.
        message: String,
    },
    /// The guest broke a rule of the interface (e.g. a dead tensor handle).
    HostRule {
        /// The host call it broke it in.
        call: &'static str,
        /// Which rule.
        message: String,
    },
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::WorkBudget { call, message } => {
                write!(f, "work budget exhausted in {call}: {message}")
            }
            Ending::OutputLimit { call, message, .. } => {
                write!(f, "output limit exceeded in {call}: {message}")
            }
            Ending::HostRule { call, message } => write!(f, "{call}: {message}"),
        }
    }
}

/// The cases of the WIT `error` variant (`assay:gpu/tensor.error`): a
/// refusal the guest receives and may handle. `host/tensor.rs` turns one
/// into the generated binding type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCase {
    /// `shape-mismatch`: operand shapes do not fit together.
    ShapeMismatch,
    /// `invalid-argument`: an argument is out of range or of the wrong dtype.
    InvalidArgument,
    /// `quota-exceeded`: past the job's GPU memory quota.
    QuotaExceeded,
    /// `not-found`: no such input or output, or a range outside it.
    NotFound,
    /// `unsupported`: the host does not implement this request.
    Unsupported,
}

impl RefusalCase {
    /// The case's WIT name (frozen by the WIT contract; it goes into
    /// failure records).
    pub fn wit_name(self) -> &'static str {
        match self {
            RefusalCase::ShapeMismatch => "shape-mismatch",
            RefusalCase::InvalidArgument => "invalid-argument",
            RefusalCase::QuotaExceeded => "quota-exceeded",
            RefusalCase::NotFound => "not-found",
            RefusalCase::Unsupported => "unsupported",
        }
    }
}

/// Why a host call failed: an error for the guest, or a reason to end the run.
#[derive(Debug)]
pub enum HostError {
    /// An op or I/O error the guest sees as the WIT `error` variant.
    Guest {
        /// The host call that refused (`interface.function`).
        call: &'static str,
        /// Which WIT error case.
        case: RefusalCase,
        /// The case's text, for the guest (and people; never hashed).
        message: String,
    },
    /// The run must end now with this deterministic outcome.
    End(Ending),
    /// The provider's device failed: not a result.
    Fault(String),
}

impl HostError {
    /// A refusal by host call `call` that the guest receives.
    pub(crate) fn refuse(call: &'static str, case: RefusalCase, message: String) -> HostError {
        HostError::Guest {
            call,
            case,
            message,
        }
    }

    /// Maps a device-layer error of host call `call`.
    pub(crate) fn from_op(call: &'static str, e: assay_host_gpu::Error) -> HostError {
        use assay_host_gpu::Error as E;
        let guest = |case, message| HostError::refuse(call, case, message);
        match e {
            E::ShapeMismatch(m) => guest(RefusalCase::ShapeMismatch, m),
            E::InvalidArgument(m) => guest(RefusalCase::InvalidArgument, m),
            E::QuotaExceeded(m) => guest(RefusalCase::QuotaExceeded, m),
            E::Unsupported(m) => guest(RefusalCase::Unsupported, m),
            E::WorkBudgetExhausted(message) => HostError::End(Ending::WorkBudget { call, message }),
            E::Device(m) => HostError::Fault(m),
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Guest {
                call,
                case,
                message,
            } => write!(f, "{call}: {}: {message}", case.wit_name()),
            HostError::End(e) => write!(f, "{e}"),
            HostError::Fault(e) => write!(f, "device fault: {e}"),
        }
    }
}

impl std::error::Error for HostError {}
