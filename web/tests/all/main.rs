//! The web crate's one test binary: the API and the pages over a real
//! SQLite store (and PostgreSQL when `ASSAY_TEST_POSTGRES_URL` is set),
//! driven through the router in process.

mod api;
mod fixtures;
mod pages;

use std::sync::Arc;

use assay_coordinator::{MarketConfig, SqlStore, Store};
use assay_web::{WebConfig, router};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A router over a store populated with `jobs` jobs and `providers`
/// providers (kept alive by the returned directory).
pub fn app(
    jobs: u64,
    providers: u32,
    per_minute: u32,
) -> (Router, fixtures::Named, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = MarketConfig {
        settlement_delay_ms: 10,
        preference_window_ms: 0,
        lease_ttl_ms: 10 * fixtures::DAY,
        provider_liveness_ms: 5 * 60_000,
        ..MarketConfig::default()
    };
    let s = SqlStore::open(
        assay_coordinator::sqlite::Sqlite::open(&dir.path().join("web.db")).expect("sqlite"),
        cfg,
    )
    .expect("store");
    let named = fixtures::populate(
        &s,
        fixtures::Size { jobs, providers },
        assay_proto::now_ms(),
    );
    let store: Arc<dyn Store> = Arc::new(s);
    let r = router(
        store,
        WebConfig {
            grpc_url: "http://127.0.0.1:7700".into(),
            requests_per_minute: per_minute,
        },
    );
    (r, named, dir)
}

/// GET `path`: status, content type, body.
pub async fn get(r: &Router, path: &str) -> (StatusCode, String, String) {
    let resp = r
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, ct, String::from_utf8_lossy(&body).into_owned())
}

/// GET `path` as JSON, which must answer 200.
pub async fn json(r: &Router, path: &str) -> serde_json::Value {
    let (status, ct, body) = get(r, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    assert!(ct.starts_with("application/json"), "{path}: {ct}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}
