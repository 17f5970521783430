//! Assay verifier nodes: spot checks by exact re-execution, disputes, and
//! the economics that make cheating a losing bet.
//!
//! Ops in Assay are bit-exact across backends, so checking a provider's
//! receipt is a hash comparison: re-run the job (on a CPU is fine) and
//! compare outputs root, outcome, fuel used and work with the receipt. This
//! crate holds the verifier daemon ([`daemon`], run by `assay verifier`: its
//! part of the worker loop it shares with the provider, `assay-daemon`),
//! the comparison ([`verdict`]), the detection/economics model
//! ([`model`], printed by `assay verifier model`), an audit of the
//! coordinator's sampling decisions ([`audit`], `assay verifier audit`) and
//! the arbiter's recompute of one disputed step ([`step`]).
//!
//! # The sampling rule
//!
//! Time is cut into epochs. Before the coordinator records any receipt of
//! epoch `e`, it draws a secret seed `s_e` and publishes its commitment
//! `blake3("assay/beacon/v1", s_e)`; it reveals `s_e` once the epoch is over.
//! A receipt with id `r` of a job with sampling rate `p` (parts per million;
//! the renter may pay for `p = 1`) is checked iff
//! `blake3("assay/sample/v1", r, s_e)`, read as a number in `[0, 1)`, is
//! below `p` ([`assay_protocol::verification::is_sampled`]). A provider
//! signs its receipt before `s_e` exists outside the coordinator, so it
//! cannot know — or grind its way into — which of its receipts will be
//! checked. Every check a verifier takes carries the revealed seed, and the
//! verifier confirms the draw ([`check::sampling_problem`]): the seed must
//! hash to the commitment the verifier saw published before the epoch ended,
//! and the receipt must really have been drawn. Unsampled receipts settle
//! after a challenge window.
//!
//! ```
//! use assay_protocol::verification::{commitment, is_sampled};
//! use assay_protocol::Hash32;
//!
//! let seed = [42u8; 32]; // revealed after the epoch
//! let published = commitment(&seed); // known before any receipt of it
//! let receipt = Hash32::of(b"some receipt id");
//! assert_eq!(commitment(&seed), published);
//! // At p = 100% every receipt is checked; at p = 0 none is.
//! assert!(is_sampled(&receipt, &seed, 1_000_000));
//! assert!(!is_sampled(&receipt, &seed, 0));
//! ```
//!
//! # The dispute rules
//!
//! - A verifier re-executes the sampled job with the receipt's exact
//!   component, inputs and spec, fetched by hash, and signs a verdict saying
//!   what it got and whether it agrees ([`verdict::Observed::compare`]).
//! - Agreement: the receipt is verified; the provider is paid for its work
//!   (price × the work units in the receipt, which the verifier re-derived,
//!   so inflated work is a mismatch) and the verifier earns a fee.
//! - Disagreement: a referee — a second verifier, never one already involved
//!   — re-executes. If it sides with the first verifier, the provider's stake
//!   is slashed by the configured fraction, the renter refunded, the job
//!   re-run on another provider, and the verifier paid a bounty from the
//!   slash. If it sides with the provider, the first verifier is slashed.
//! - A run that fails because of the verifier's own machine (its watchdog,
//!   its device) is never a verdict: the check is given back and goes to
//!   another verifier. A verifier that does not answer before the check's
//!   deadline is replaced.
//!
//! ```
//! use assay_protocol::{Hash32, Outcome, WorkDone};
//! use assay_verifier::verdict::Observed;
//!
//! let receipt = Observed {
//!     outputs_root: Hash32::of(b"what the provider claims"),
//!     outcome: Outcome::Success,
//!     fuel_used: 5_000,
//!     work: WorkDone { flops: 1 << 20, bytes: 1 << 12 },
//! };
//! let rerun = Observed { outputs_root: Hash32::of(b"what the job really gives"), ..receipt };
//! let c = rerun.compare(&receipt);
//! assert!(!c.agrees());
//! assert_eq!(c.to_string(), "differs in outputs_root");
//! ```
//!
//! # The economics
//!
//! A cheated job that escapes the check gains the cheater at most `g` (the
//! job's payment); a caught one costs it `σ·S` (the slashed fraction of its
//! stake) and ends its cheating. Over any number of jobs and at any cheating
//! rate, cheating's expected value is
//! `P(detected) · (g·(1 − p)/p − σ·S)`, so a stake of
//! `S ≥ g·(1 − p)/(p·σ)` ([`assay_protocol::verification::required_stake`])
//! makes it a losing bet. Detection is fast: a provider cheating on a
//! fraction `f` of its jobs escapes `n` jobs with probability
//! `(1 − p·f)^n`. Verification costs `p` re-executions per job, plus the
//! arbiter's runs: one per dispute and a fraction `q` of the agreements
//! (re-checks, `q = p` unless set). See [`model`].
//!
//! ```
//! use assay_verifier::model::Model;
//!
//! // p = 5%, a provider cheating on 10% of 1,000 jobs, 1,000 µIOSD a job, σ = 50%.
//! let r = Model::new(0.05, 0.1, 1_000)?.with_gain(1_000).with_slash_bps(5_000).report();
//! assert!(r.detection_probability > 0.99);
//! assert_eq!(r.required_stake, Some(38_000));
//! assert!(r.net_expected_value <= 0.0); // at the required stake, cheating does not pay
//! // p·(1 + f) + p·(1 − f)·q with q = p: 0.05 · 1.1 + 0.05 · 0.9 · 0.05.
//! assert!((r.overhead_runs_per_job - 0.05725).abs() < 1e-12);
//! # Ok::<(), assay_verifier::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod audit;
pub mod check;
pub mod daemon;
mod error;
pub mod metrics;
pub mod model;
pub mod step;
pub mod verdict;

pub use daemon::{Config, run, state_dir};
pub use error::Error;
