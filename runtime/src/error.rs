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

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FaultKind::Watchdog => "watchdog",
            FaultKind::Device => "device",
            FaultKind::Capacity => "capacity",
            FaultKind::Internal => "internal",
        })
    }
}
