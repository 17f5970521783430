//! Prometheus metrics of the verifier daemon: counters and gauges as
//! atomics, served as the text exposition format at `GET /metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use assay_proto::metrics::sample;

/// The daemon's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Checks taken from the coordinator.
    pub checks_taken: AtomicU64,
    /// Verdicts accepted that said the receipt is right.
    pub verdicts_agree: AtomicU64,
    /// Verdicts accepted that said the receipt is wrong.
    pub verdicts_mismatch: AtomicU64,
    /// Verdicts the coordinator refused.
    pub verdicts_refused: AtomicU64,
    /// What accepted verdicts decided (`verified`, `disputed`, …) → count.
    pub decisions: Mutex<BTreeMap<String, u64>>,
    /// Checks given back without a verdict.
    pub checks_returned: AtomicU64,
    /// Re-executions that ended in a fault of this machine (watchdog, device).
    pub local_faults: AtomicU64,
    /// Sampled checks whose sampling could not be confirmed from the seed.
    pub sampling_unconfirmed: AtomicU64,
    /// Checks whose receipt was not what it claimed (bad signature, wrong
    /// id, or a job that is not the receipt's).
    pub bad_receipts: AtomicU64,
    /// Verdicts the `--lie-rate` test knob made lie.
    pub lies: AtomicU64,
    /// Checks being worked on now.
    pub running: AtomicU64,
    /// Wall time spent re-executing jobs, ms.
    pub reexecution_ms: AtomicU64,
    /// Fuel burnt re-executing jobs.
    pub fuel_used: AtomicU64,
    /// Blob bytes downloaded.
    pub bytes_downloaded: AtomicU64,
    /// Blobs served from the local cache.
    pub blob_cache_hits: AtomicU64,
    /// Failed calls to the coordinator.
    pub rpc_errors: AtomicU64,
    /// Times the daemon (re)registered.
    pub registrations: AtomicU64,
    /// Epoch commitments seen published before their seed was revealed.
    pub commitments_seen: AtomicU64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one accepted verdict's decision.
    pub fn decided(&self, decision: &str) {
        if let Ok(mut d) = self.decisions.lock() {
            *d.entry(decision.to_string()).or_default() += 1;
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut put = |name: &str, kind: &str, help: &str, v: &AtomicU64| {
            sample(
                &mut out,
                "assay_verifier",
                name,
                kind,
                help,
                v.load(Ordering::Relaxed),
            );
        };
        put(
            "checks_taken_total",
            "counter",
            "Checks taken from the coordinator.",
            &self.checks_taken,
        );
        put(
            "verdicts_agree_total",
            "counter",
            "Accepted verdicts that confirmed the receipt.",
            &self.verdicts_agree,
        );
        put(
            "verdicts_mismatch_total",
            "counter",
            "Accepted verdicts that contradicted the receipt.",
            &self.verdicts_mismatch,
        );
        put(
            "verdicts_refused_total",
            "counter",
            "Verdicts the coordinator refused.",
            &self.verdicts_refused,
        );
        put(
            "checks_returned_total",
            "counter",
            "Checks given back without a verdict.",
            &self.checks_returned,
        );
        put(
            "local_faults_total",
            "counter",
            "Re-executions that ended in a fault of this machine (never a mismatch).",
            &self.local_faults,
        );
        put(
            "sampling_unconfirmed_total",
            "counter",
            "Sampled checks whose sampling the revealed seed does not confirm.",
            &self.sampling_unconfirmed,
        );
        put(
            "bad_receipts_total",
            "counter",
            "Checks whose receipt is not what it claims (signature, id, job).",
            &self.bad_receipts,
        );
        put(
            "running_checks",
            "gauge",
            "Checks being worked on now.",
            &self.running,
        );
        put(
            "reexecution_ms_total",
            "counter",
            "Wall time spent re-executing jobs, ms.",
            &self.reexecution_ms,
        );
        put(
            "fuel_used_total",
            "counter",
            "Fuel burnt re-executing jobs.",
            &self.fuel_used,
        );
        put(
            "blob_bytes_downloaded_total",
            "counter",
            "Blob bytes downloaded.",
            &self.bytes_downloaded,
        );
        put(
            "blob_cache_hits_total",
            "counter",
            "Blobs served from the local cache.",
            &self.blob_cache_hits,
        );
        put(
            "rpc_errors_total",
            "counter",
            "Failed calls to the coordinator.",
            &self.rpc_errors,
        );
        put(
            "registrations_total",
            "counter",
            "Times the daemon registered.",
            &self.registrations,
        );
        put(
            "beacon_commitments_seen_total",
            "counter",
            "Epoch commitments seen published before their seed was revealed.",
            &self.commitments_seen,
        );
        if self.lies.load(Ordering::Relaxed) > 0 {
            put(
                "test_lies_total",
                "counter",
                "Verdicts the --lie-rate test knob made lie.",
                &self.lies,
            );
        }
        out.push_str(
            "# HELP assay_verifier_decisions_total What accepted verdicts decided.\n\
             # TYPE assay_verifier_decisions_total counter\n",
        );
        if let Ok(d) = self.decisions.lock() {
            for (decision, n) in d.iter() {
                // Decisions come from the coordinator: keep the label value
                // to characters that need no escaping.
                let label: String = decision
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                out.push_str(&format!(
                    "assay_verifier_decisions_total{{decision=\"{label}\"}} {n}\n"
                ));
            }
        }
        out
    }
}

/// Serves these metrics on `listener` forever (see [`assay_proto::metrics::serve`]).
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    assay_proto::metrics::serve(listener, move || metrics.render()).await;
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
        let t = m.render();
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
