//! The coordinator's web face: the **explorer** (the network for everyone
//! to watch), the **worker dashboard** (a provider's machines, earnings
//! and why it is or is not hired), the **renter console** (a renter's jobs,
//! balances and payments), and the **JSON API** they are built from.
//!
//! `assay coordinator --http-listen ADDR` serves it beside the gRPC port
//! (the devnet on 127.0.0.1:7780). Routes:
//!
//! | page | API |
//! | --- | --- |
//! | `/` explorer | `/api/v1/network`, `/api/v1/providers`, `/api/v1/jobs`, `/api/v1/epochs` |
//! | `/providers/{node}` worker dashboard | `/api/v1/providers/{node}` (+ `/telemetry`, `/receipts`, `/rewards`, `/profitability`) |
//! | `/accounts/{node}` renter console | `/api/v1/accounts/{node}` (+ `/payments`, `.csv`), `/api/v1/jobs?renter=` |
//! | `/jobs/{id}`, `/receipts/{id}` | `/api/v1/jobs/{id}`, `/api/v1/receipts/{id}` (`/api/v1/receipts.csv`) |
//! | `/epochs`, `/epochs/{n}` | `/api/v1/epochs` (`.csv`), `/api/v1/epochs/{n}` |
//! | `/notes/{id}`, `/bonds/{id}` | `/api/v1/notes/{id}`, `/api/v1/bonds/{id}` |
//!
//! The OpenAPI document, generated from the handlers, is `/api/openapi.json`.
//!
//! # How a page and the API agree
//!
//! Each thing shown has one function in [`data`] (parse the ids, call the
//! store on a blocking thread, turn "unknown" into 404). The API handler
//! ([`api`]) answers its record as JSON; the page handler ([`pages`])
//! renders the same record through an askama template, and marks each
//! number with the API path and JSON pointer it came from
//! (`data-api="/api/v1/network#/providers_online" data-value="3"`), which is
//! what the browser test compares. Records are
//! [`assay_coordinator::explorer`]'s: public data only (hashes, never blob
//! contents; no keys).
//!
//! # Limits
//!
//! Per client address, a token bucket of
//! [`WebConfig::requests_per_minute`] ([`limits`]; 429 with `Retry-After`);
//! every request has a 10 s deadline; lists are pages of at most 200 and
//! CSV exports at most 10,000 rows; query strings at most 2 KiB. Assets are
//! compiled into the binary: nothing is fetched at run time.

use std::future::Future;
use std::sync::Arc;

use assay_coordinator::Store;
use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};

pub mod api;
mod assets;
mod charts;
pub mod csv;
pub mod data;
mod error;
mod format;
pub mod limits;
pub mod pages;
pub mod params;

pub use error::{ApiError, ErrorBody, PageError, WebError};

/// How the web server is set up.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The coordinator's gRPC URL as providers reach it (the dashboard's
    /// installation command), e.g. `http://127.0.0.1:7700`.
    pub grpc_url: String,
    /// Requests per minute per client address before 429.
    pub requests_per_minute: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            grpc_url: "http://127.0.0.1:7700".into(),
            requests_per_minute: 600,
        }
    }
}

/// What every handler shares.
pub struct App {
    /// The coordinator's store.
    pub store: Arc<dyn Store>,
    /// The configuration.
    pub cfg: WebConfig,
    /// Per-address request budgets.
    pub limiter: limits::RateLimiter,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("backend", &self.store.backend_name())
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Every route: pages, API, assets, with the limits around them.
pub fn router(store: Arc<dyn Store>, cfg: WebConfig) -> Router {
    let app = Arc::new(App {
        store,
        limiter: limits::RateLimiter::new(cfg.requests_per_minute),
        cfg,
    });
    Router::new()
        .merge(api::routes())
        .merge(pages::routes())
        .merge(assets::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            limits::guard,
        ))
        .with_state(app)
}

async fn not_found(req: Request) -> Response {
    if req.uri().path().starts_with("/api") {
        api::not_found().await.into_response()
    } else {
        PageError(WebError::NotFound(format!(
            "no page at {}",
            req.uri().path().chars().take(200).collect::<String>()
        )))
        .into_response()
    }
}

/// Serves [`router`] on `listener` until `shutdown` completes: HTTPS with
/// `tls` (see `assay_https`), else plain HTTP.
///
/// # Errors
///
/// The listener's I/O error.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    cfg: WebConfig,
    tls: Option<Arc<assay_https::rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(store, cfg).into_make_service_with_connect_info::<assay_https::Peer>();
    match tls {
        Some(tls) => {
            axum::serve(assay_https::TlsListener::new(listener, tls)?, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}
