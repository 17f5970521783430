//! Assay verifier nodes (not built yet).
//!
//! What comes here: sampling committed receipts with a seed revealed only
//! after the receipt is committed, re-executing sampled jobs through
//! `assay-runtime` on whatever backend the node has, comparing outputs root,
//! outcome, fuel and work, signing verdicts, the referee protocol for
//! disputes, and the economics model (stake required for a sampling rate `p`,
//! and the probability `(1 − p·f)^n` that a provider cheating on a fraction
//! `f` of its jobs escapes detection after `n` jobs).
//!
//! See `ARCHITECTURE.md` and the verifier issue.
