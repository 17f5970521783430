//! Which definition of a result a node computes.

/// The version of everything a result's bits depend on besides the job
/// itself: the ops' definitions (`host-gpu/SEMANTICS.md`), the deterministic
/// WASI, the outcome classes and the failure record ([`crate::Failure`]).
///
/// It is part of every [`crate::job_id`] and every [`crate::ReceiptBody`], so nodes that
/// define results differently never compare them: a verifier of another
/// version gives a check back instead of calling it a mismatch. Bump it
/// with any change that can move an outputs root, fuel or work.
///
/// History: 1 — failure records `assay/failure/v1` (before, the `error`
/// output held free text and no version was stated). 2 — the bytes the
/// runtime copies between guest and host (readbacks, inputs read, outputs
/// written, log lines, stdout and stderr) are bytes of work
/// (`host-gpu/SEMANTICS.md` section 5).
pub const SEMANTICS_VERSION: u32 = 2;
