//! How `assay` ends: its exit statuses and the error that carries one. A
//! leaf, so every command can use it without importing the binary's root.

/// Exit status for a job that ended in a deterministic failure.
pub const EXIT_JOB_FAILED: u8 = 3;
/// Exit status for bad usage or unusable input.
pub const EXIT_USAGE: u8 = 2;
/// Exit status for a provider fault or an internal error.
pub const EXIT_FAULT: u8 = 1;

/// An error that carries its exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn usage(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            error: error.into(),
        }
    }

    pub fn fault(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: EXIT_FAULT,
            error: error.into(),
        }
    }
}
