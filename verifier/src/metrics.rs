//! The verifier's own Prometheus counters, served beside the worker loop's
//! (`assay_daemon::metrics`: checks taken and returned, `running_checks`,
//! `reexecution_ms`, `local_faults`, RPC errors, blob traffic, runs per
//! device and outcome) under the prefix `assay_verifier`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// The label of an accepted verdict's decision.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// What the coordinator decided (`verified`, `disputed`, …).
    pub decision: String,
}

/// The verifier's counters. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Verdicts accepted that said the receipt is right.
    pub verdicts_agree: Counter,
    /// Verdicts accepted that said the receipt is wrong.
    pub verdicts_mismatch: Counter,
    /// Verdicts the coordinator refused.
    pub verdicts_refused: Counter,
    /// What accepted verdicts decided.
    pub decisions: Family<DecisionLabels, Counter>,
    /// Sampled checks whose sampling could not be confirmed from the seed.
    pub sampling_unconfirmed: Counter,
    /// Checks whose receipt was not what it claimed (bad signature, wrong
    /// id, or a job that is not the receipt's).
    pub bad_receipts: Counter,
    /// Checks given back because their receipt was computed under another
    /// semantics version.
    pub other_semantics: Counter,
    /// Verdicts the `--lie-rate` test knob made lie.
    pub lies: Counter,
    /// Fuel burnt re-executing jobs.
    pub fuel_used: Counter,
    /// Epoch commitments seen published before their seed was revealed.
    pub commitments_seen: Counter,
    /// Disputed steps recomputed alone (an arbiter's step checks).
    pub step_replays: Counter,
    /// Time spent replaying them, ms.
    pub step_replay_ms: Counter,
    /// Bytes of evidence (revealed tensors, job inputs) they fetched.
    pub evidence_bytes: Counter,
    /// Step checks handed back for a full re-execution (evidence that did
    /// not check, a step that cannot be replayed).
    pub step_fallbacks: Counter,
}

impl Metrics {
    /// Counts one accepted verdict's decision.
    pub fn decided(&self, decision: &str) {
        // Decisions come from the coordinator: keep the label value to
        // characters any scraper reads back unchanged.
        let decision: String = decision
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        self.decisions
            .get_or_create(&DecisionLabels { decision })
            .inc();
    }

    /// Registers the counters in `registry`; the test knob's only when it
    /// is on (`lying`).
    pub fn register(&self, registry: &mut Registry, lying: bool) {
        let counters = [
            (
                "verdicts_agree",
                "Accepted verdicts that confirmed the receipt.",
                &self.verdicts_agree,
            ),
            (
                "verdicts_mismatch",
                "Accepted verdicts that contradicted the receipt.",
                &self.verdicts_mismatch,
            ),
            (
                "verdicts_refused",
                "Verdicts the coordinator refused.",
                &self.verdicts_refused,
            ),
            (
                "sampling_unconfirmed",
                "Sampled checks whose sampling the revealed seed does not confirm.",
                &self.sampling_unconfirmed,
            ),
            (
                "bad_receipts",
                "Checks whose receipt is not what it claims (signature, id, job).",
                &self.bad_receipts,
            ),
            (
                "other_semantics",
                "Checks given back: their receipt was computed under another semantics version.",
                &self.other_semantics,
            ),
            (
                "fuel_used",
                "Fuel burnt re-executing jobs.",
                &self.fuel_used,
            ),
            (
                "beacon_commitments_seen",
                "Epoch commitments seen published before their seed was revealed.",
                &self.commitments_seen,
            ),
            (
                "step_replays",
                "Disputed steps recomputed alone (arbiter step checks).",
                &self.step_replays,
            ),
            (
                "step_replay_ms",
                "Time spent replaying disputed steps, ms.",
                &self.step_replay_ms,
            ),
            (
                "evidence_bytes",
                "Bytes of evidence fetched to recompute disputed steps.",
                &self.evidence_bytes,
            ),
            (
                "step_fallbacks",
                "Step checks handed back for a full re-execution.",
                &self.step_fallbacks,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        if lying {
            registry.register(
                "test_lies",
                "Verdicts the --lie-rate test knob made lie.",
                self.lies.clone(),
            );
        }
        registry.register(
            "decisions",
            "What accepted verdicts decided.",
            self.decisions.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_labelled_and_labels_are_sanitised() {
        let m = Metrics::default();
        m.decided("verified");
        m.decided("verified");
        m.decided("bad\"label\n");
        let mut registry = Registry::with_prefix("assay_verifier");
        m.register(&mut registry, false);
        let t = assay_daemon::metrics::render(&registry);
        assert!(
            t.contains("assay_verifier_decisions_total{decision=\"verified\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("assay_verifier_decisions_total{decision=\"badlabel\"} 1"),
            "{t}"
        );
        assert!(!t.contains("test_lies_total"), "{t}");
    }
}
