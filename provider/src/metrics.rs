//! The provider's own Prometheus counters, served beside the worker loop's
//! (`assay_daemon::metrics`: leases taken and returned, `running_jobs`,
//! `run_ms`, `provider_faults`, RPC errors, blob traffic, runs per device
//! and outcome) under the prefix `assay_provider`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

/// The provider's counters. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Receipts the coordinator accepted.
    pub receipts_accepted: Counter,
    /// Receipts the coordinator refused.
    pub receipts_refused: Counter,
    /// Blob bytes uploaded.
    pub bytes_uploaded: Counter,
    /// Fuel burnt by finished runs.
    pub fuel_used: Counter,
    /// Receipts the test knob made lie (see [`crate::cheat`]).
    pub cheats: Counter,
}

impl Metrics {
    /// Registers the counters in `registry`; the test knob's only when it
    /// is on (`cheating`).
    pub fn register(&self, registry: &mut Registry, cheating: bool) {
        registry.register(
            "receipts_accepted",
            "Receipts accepted by the coordinator.",
            self.receipts_accepted.clone(),
        );
        registry.register(
            "receipts_refused",
            "Receipts refused by the coordinator.",
            self.receipts_refused.clone(),
        );
        registry.register(
            "blob_bytes_uploaded",
            "Blob bytes uploaded.",
            self.bytes_uploaded.clone(),
        );
        registry.register(
            "fuel_used",
            "Fuel burnt by finished runs.",
            self.fuel_used.clone(),
        );
        if cheating {
            registry.register(
                "test_cheats",
                "Receipts the --cheat-rate test knob made lie.",
                self.cheats.clone(),
            );
        }
    }
}
