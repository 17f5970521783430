//! The daemons' Prometheus metrics: the counters the worker loop keeps for
//! both daemons ([`CoreMetrics`], named per daemon by [`Names`]), kept with
//! `prometheus-client` and served over HTTP by axum at `GET /metrics`
//! ([`serve`]). Each daemon registers its own counters beside these in the
//! same [`Registry`] (see `Work::register_metrics` in [`crate::worker`]).
//!
//! Counters are registered without the `_total` suffix, which the
//! exposition adds: `leases_taken` under the prefix `assay_provider` is
//! scraped as `assay_provider_leases_taken_total`.
//!
//! # Example
//!
//! ```
//! use assay_daemon::metrics::{CoreMetrics, Names, RunLabels};
//! use prometheus_client::registry::Registry;
//!
//! let names = Names {
//!     prefix: "assay_provider",
//!     taken: "leases_taken",
//!     returned: "leases_returned",
//!     running: "running_jobs",
//!     run_ms: "run_ms",
//!     faults: "provider_faults",
//! };
//! let mut registry = Registry::with_prefix(names.prefix);
//! let m = CoreMetrics::default();
//! m.register(&names, &mut registry);
//! m.taken.inc();
//! m.runs.get_or_create(&RunLabels::new("cpu", "x86_64", "success")).inc();
//! let text = assay_daemon::metrics::render(&registry);
//! assert!(text.contains("assay_provider_leases_taken_total 1\n"), "{text}");
//! assert!(text.contains("# TYPE assay_provider_running_jobs gauge\n"), "{text}");
//! assert!(text.contains(
//!     r#"assay_provider_runs_total{backend="cpu",device="x86_64",outcome="success"} 1"#
//! ), "{text}");
//! ```

use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// What one daemon calls the metrics every daemon has.
#[derive(Debug, Clone, Copy)]
pub struct Names {
    /// Prefix of every metric, e.g. `assay_provider`.
    pub prefix: &'static str,
    /// Work items taken, e.g. `leases_taken`.
    pub taken: &'static str,
    /// Work items given back, e.g. `leases_returned`.
    pub returned: &'static str,
    /// The gauge of items being worked on, e.g. `running_jobs`.
    pub running: &'static str,
    /// Wall time of runs in ms, e.g. `run_ms`.
    pub run_ms: &'static str,
    /// Runs that ended in a fault of this machine, e.g. `provider_faults`.
    pub faults: &'static str,
}

/// The labels of a finished run: which device ran it and how it ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    /// `cpu` or `cuda`.
    pub backend: String,
    /// The device, e.g. `NVIDIA H100 80GB HBM3`.
    pub device: String,
    /// How the run ended: the job's outcome (`success`, `trap`, …) or what
    /// the daemon concluded (`agree`, `mismatch`, `fault`, `no-result`, …).
    pub outcome: String,
}

impl RunLabels {
    /// Labels for one run.
    pub fn new(backend: &str, device: &str, outcome: &str) -> RunLabels {
        RunLabels {
            backend: backend.to_string(),
            device: device.to_string(),
            outcome: outcome.to_string(),
        }
    }
}

/// The metrics the worker loop keeps for every daemon. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct CoreMetrics {
    /// Work items taken from the coordinator.
    pub taken: Counter,
    /// Work items given back without a result.
    pub returned: Counter,
    /// Work items being worked on now (taken and not finished).
    pub running: Gauge,
    /// Wall time of runs (load + run), ms.
    pub run_ms: Counter,
    /// Runs that ended in a fault of this machine (watchdog, device, crash).
    pub faults: Counter,
    /// Failed calls to the coordinator.
    pub rpc_errors: Counter,
    /// Times the daemon (re)registered.
    pub registrations: Counter,
    /// Blob bytes downloaded.
    pub bytes_downloaded: Counter,
    /// Blobs served from the local cache.
    pub blob_cache_hits: Counter,
    /// Finished runs per device and outcome.
    pub runs: Family<RunLabels, Counter>,
    /// Answers to dispute questions, per kind and result.
    pub dispute_answers: Family<AnswerLabels, Counter>,
}

/// The labels of an answer to a dispute question (`crate::dispute`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnswerLabels {
    /// `claim`, `node`, `leaf` or `inputs`.
    pub kind: String,
    /// `answered`, `unable` (the trace is gone) or `failed` (not sent).
    pub result: String,
}

impl CoreMetrics {
    /// Registers these metrics in `registry` under `names`.
    pub fn register(&self, names: &Names, registry: &mut Registry) {
        registry.register(
            names.taken,
            "Work items taken from the coordinator.",
            self.taken.clone(),
        );
        registry.register(
            names.returned,
            "Work items given back without a result.",
            self.returned.clone(),
        );
        registry.register(
            names.running,
            "Work items being worked on now.",
            self.running.clone(),
        );
        registry.register(
            names.run_ms,
            "Wall time of runs (load + run), ms.",
            self.run_ms.clone(),
        );
        registry.register(
            names.faults,
            "Runs that ended in a fault of this machine (watchdog, device, crash).",
            self.faults.clone(),
        );
        registry.register(
            "rpc_errors",
            "Failed calls to the coordinator.",
            self.rpc_errors.clone(),
        );
        registry.register(
            "registrations",
            "Times the daemon registered.",
            self.registrations.clone(),
        );
        registry.register(
            "blob_bytes_downloaded",
            "Blob bytes downloaded.",
            self.bytes_downloaded.clone(),
        );
        registry.register(
            "blob_cache_hits",
            "Blobs served from the local cache.",
            self.blob_cache_hits.clone(),
        );
        registry.register(
            "runs",
            "Finished runs, per device and outcome.",
            self.runs.clone(),
        );
        registry.register(
            "dispute_answers",
            "Answers to dispute questions, per kind and result (answered, unable, failed).",
            self.dispute_answers.clone(),
        );
    }
}

/// The exposition text (OpenMetrics) of everything in `registry`.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::warn!(error = %e, "cannot encode the metrics");
    }
    out
}

/// The HTTP endpoint: `GET /metrics` answers [`render`]; anything else is
/// a 404 naming the path that works.
pub fn router(registry: Arc<Registry>) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let registry = registry.clone();
                async move {
                    (
                        [
                            (
                                header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            ),
                            // One scrape per connection, as Prometheus does;
                            // a client reading to the end gets an end.
                            (header::CONNECTION, "close"),
                        ],
                        render(&registry),
                    )
                }
            }),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                [(header::CONNECTION, "close")],
                "metrics are at /metrics\n",
            )
                .into_response()
        })
}

/// Serves [`router`] on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, registry: Arc<Registry>) {
    if let Err(e) = axum::serve(listener, router(registry)).await {
        tracing::warn!(error = %e, "the metrics endpoint stopped");
    }
}
