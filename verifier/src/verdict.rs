//! Comparing a re-execution with the receipt it checks.
//!
//! Every field a verifier compares is deterministic — a function of
//! (component, inputs, spec) alone — so two honest runs agree bit for bit on
//! any backend, and any difference means one side is wrong. Backend,
//! telemetry and times are informational and never compared.
//!
//! # Example
//!
//! ```
//! use assay_protocol::{Hash32, Outcome, WorkDone};
//! use assay_verifier::verdict::{Field, Observed};
//!
//! let claimed = Observed {
//!     outputs_root: Hash32([1; 32]),
//!     outcome: Outcome::Success,
//!     fuel_used: 1_000,
//!     work: WorkDone { flops: 64, bytes: 96 },
//! };
//! let mut rerun = claimed;
//! assert!(rerun.compare(&claimed).agrees());
//! rerun.work.flops = 60; // the receipt claims 4 FLOPs too many
//! let c = rerun.compare(&claimed);
//! assert!(!c.agrees());
//! assert_eq!(c.mismatches, vec![Field::WorkFlops]);
//! ```

use std::fmt;

use assay_protocol::{Hash32, Outcome, ReceiptBody, WorkDone};

/// The deterministic result of a run: what a verdict states and compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// [`assay_protocol::outputs_root`] of the outputs.
    pub outputs_root: Hash32,
    /// How the run ended.
    pub outcome: Outcome,
    /// Fuel burnt.
    pub fuel_used: u64,
    /// Work metered by the tensor ops.
    pub work: WorkDone,
}

/// A field that differs between a re-execution and a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// The outputs root.
    OutputsRoot,
    /// The outcome.
    Outcome,
    /// Fuel used.
    FuelUsed,
    /// `work.flops`.
    WorkFlops,
    /// `work.bytes`.
    WorkBytes,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::OutputsRoot => "outputs_root",
            Field::Outcome => "outcome",
            Field::FuelUsed => "fuel_used",
            Field::WorkFlops => "work.flops",
            Field::WorkBytes => "work.bytes",
        })
    }
}

/// The result of [`Observed::compare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The fields that differ, in [`Field`] order (empty: the runs agree).
    pub mismatches: Vec<Field>,
}

impl Comparison {
    /// True iff nothing differs.
    pub fn agrees(&self) -> bool {
        self.mismatches.is_empty()
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.agrees() {
            return f.write_str("agrees");
        }
        f.write_str("differs in ")?;
        for (i, m) in self.mismatches.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl Observed {
    /// What a receipt claims.
    pub fn claimed_by(body: &ReceiptBody) -> Observed {
        Observed {
            outputs_root: body.outputs_root,
            outcome: body.outcome,
            fuel_used: body.fuel_used,
            work: body.work,
        }
    }

    /// Compares this run with what `claimed` says.
    pub fn compare(&self, claimed: &Observed) -> Comparison {
        let mut mismatches = Vec::new();
        if self.outputs_root != claimed.outputs_root {
            mismatches.push(Field::OutputsRoot);
        }
        if self.outcome != claimed.outcome {
            mismatches.push(Field::Outcome);
        }
        if self.fuel_used != claimed.fuel_used {
            mismatches.push(Field::FuelUsed);
        }
        if self.work.flops != claimed.work.flops {
            mismatches.push(Field::WorkFlops);
        }
        if self.work.bytes != claimed.work.bytes {
            mismatches.push(Field::WorkBytes);
        }
        Comparison { mismatches }
    }

    /// The lie the `--lie-rate` test knob tells: this run with the first
    /// byte of its outputs root flipped, so it can never equal an honest
    /// receipt's root.
    pub fn corrupted(&self) -> Observed {
        let mut lie = *self;
        lie.outputs_root.0[0] ^= 0xff;
        lie
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Observed {
        Observed {
            outputs_root: Hash32::of(b"outputs"),
            outcome: Outcome::Success,
            fuel_used: 12_345,
            work: WorkDone {
                flops: 1 << 20,
                bytes: 1 << 16,
            },
        }
    }

    #[test]
    fn identical_runs_agree() {
        let c = base().compare(&base());
        assert!(c.agrees());
        assert_eq!(c.to_string(), "agrees");
    }

    #[test]
    fn every_field_is_compared() {
        type Change = fn(&mut Observed);
        let cases: [(Change, Field); 5] = [
            (|o| o.outputs_root.0[31] ^= 1, Field::OutputsRoot),
            (|o| o.outcome = Outcome::Trap, Field::Outcome),
            (|o| o.fuel_used += 1, Field::FuelUsed),
            (|o| o.work.flops += 1, Field::WorkFlops),
            (|o| o.work.bytes -= 1, Field::WorkBytes),
        ];
        for (change, field) in cases {
            let mut claimed = base();
            change(&mut claimed);
            let c = base().compare(&claimed);
            assert_eq!(c.mismatches, vec![field]);
            assert!(!c.agrees());
        }
        let mut all = base();
        all.outcome = Outcome::FuelExhausted;
        all.fuel_used = 0;
        all.work.bytes = 0;
        assert_eq!(
            base().compare(&all).to_string(),
            "differs in outcome, fuel_used, work.bytes"
        );
    }

    #[test]
    fn a_receipt_claims_its_body() {
        let key = assay_protocol::NodeKey::from_seed([4; 32]);
        let b = base();
        let body = ReceiptBody {
            semantics: assay_protocol::SEMANTICS_VERSION,
            job_id: Hash32([1; 32]),
            shard: assay_protocol::Shard::default(),
            provider_id: key.id(),
            component_hash: Hash32([2; 32]),
            inputs_root: Hash32([3; 32]),
            outputs_root: b.outputs_root,
            trace_root: Hash32::ZERO,
            outcome: b.outcome,
            fuel_used: b.fuel_used,
            work: b.work,
            backend: assay_protocol::BackendDescriptor {
                kind: "cuda".into(),
                device: "some GPU".into(),
            },
            telemetry: None,
            started_at_ms: 5,
            finished_at_ms: 9,
        };
        // Backend and times differ from the verifier's run; it still agrees.
        assert!(b.compare(&Observed::claimed_by(&body)).agrees());
    }

    #[test]
    fn the_lie_never_matches() {
        let b = base();
        let lie = b.corrupted();
        assert_eq!(lie.compare(&b).mismatches, vec![Field::OutputsRoot]);
        assert_eq!(lie.outputs_root.0[1..], b.outputs_root.0[1..]);
    }
}
