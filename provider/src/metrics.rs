//! Prometheus metrics: counters and gauges as atomics, served as the text
//! exposition format at `GET /metrics` by a minimal HTTP/1.1 responder.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use assay_proto::metrics::sample;

/// The daemon's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Leases taken.
    pub leases_taken: AtomicU64,
    /// Receipts the coordinator accepted.
    pub receipts_accepted: AtomicU64,
    /// Receipts the coordinator refused.
    pub receipts_refused: AtomicU64,
    /// Runs that ended in a provider fault.
    pub provider_faults: AtomicU64,
    /// Leases given back (shutdown, restart, refused to run twice).
    pub leases_returned: AtomicU64,
    /// Jobs running now.
    pub running: AtomicU64,
    /// Blob bytes downloaded.
    pub bytes_downloaded: AtomicU64,
    /// Blob bytes uploaded.
    pub bytes_uploaded: AtomicU64,
    /// Blobs served from the local cache.
    pub blob_cache_hits: AtomicU64,
    /// Fuel burnt by finished runs.
    pub fuel_used: AtomicU64,
    /// Wall time of finished runs (load + run), ms: with the verifier's
    /// `reexecution_ms_total`, the verification overhead.
    pub run_ms: AtomicU64,
    /// Failed calls to the coordinator.
    pub rpc_errors: AtomicU64,
    /// Times the daemon (re)registered.
    pub registrations: AtomicU64,
    /// Receipts the test knob made lie (see [`crate::cheat`]).
    pub cheats: AtomicU64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut put = |name: &str, kind: &str, help: &str, v: &AtomicU64| {
            sample(
                &mut out,
                "assay_provider",
                name,
                kind,
                help,
                v.load(Ordering::Relaxed),
            );
        };
        put(
            "leases_taken_total",
            "counter",
            "Leases taken.",
            &self.leases_taken,
        );
        put(
            "receipts_accepted_total",
            "counter",
            "Receipts accepted by the coordinator.",
            &self.receipts_accepted,
        );
        put(
            "receipts_refused_total",
            "counter",
            "Receipts refused by the coordinator.",
            &self.receipts_refused,
        );
        put(
            "provider_faults_total",
            "counter",
            "Runs that ended in a provider fault.",
            &self.provider_faults,
        );
        put(
            "leases_returned_total",
            "counter",
            "Leases given back.",
            &self.leases_returned,
        );
        put("running_jobs", "gauge", "Jobs running now.", &self.running);
        put(
            "blob_bytes_downloaded_total",
            "counter",
            "Blob bytes downloaded.",
            &self.bytes_downloaded,
        );
        put(
            "blob_bytes_uploaded_total",
            "counter",
            "Blob bytes uploaded.",
            &self.bytes_uploaded,
        );
        put(
            "blob_cache_hits_total",
            "counter",
            "Blobs served from the local cache.",
            &self.blob_cache_hits,
        );
        put(
            "fuel_used_total",
            "counter",
            "Fuel burnt by finished runs.",
            &self.fuel_used,
        );
        put(
            "run_ms_total",
            "counter",
            "Wall time of runs (load + run), ms.",
            &self.run_ms,
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
        if self.cheats.load(Ordering::Relaxed) > 0 {
            put(
                "test_cheats_total",
                "counter",
                "Receipts the --cheat-rate test knob made lie.",
                &self.cheats,
            );
        }
        out
    }
}

/// Serves these metrics on `listener` forever (see [`assay_proto::metrics::serve`]).
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    assay_proto::metrics::serve(listener, move || metrics.render()).await;
}
