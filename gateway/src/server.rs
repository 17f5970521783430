//! The HTTP server: `/v1/models`, `/v1/models/{model}`, `/v1/embeddings`
//! (each behind `Authorization: Bearer KEY`), and `/health`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::Error;
use crate::batching::Batcher;
use crate::keys::{ApiKey, KeyStore};
use crate::openai::{self, Embedded, EmbeddingsRequest, ModelCard};

/// The largest request body, bytes.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// The most requests served at once; more are refused (503).
pub const MAX_IN_FLIGHT: usize = 1024;

/// The response header with the job id.
pub const JOB_HEADER: &str = "x-assay-job";
/// The response header with the receipt id.
pub const RECEIPT_HEADER: &str = "x-assay-receipt";

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Gateway {
    keys: Arc<KeyStore>,
    batcher: Batcher,
    card: Arc<ModelCard>,
    coordinator: String,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Gateway {
    /// A gateway answering for `card` with `keys`, running jobs through
    /// `batcher` on `coordinator`.
    pub fn new(
        keys: Arc<KeyStore>,
        batcher: Batcher,
        card: ModelCard,
        coordinator: String,
    ) -> Gateway {
        Gateway {
            keys,
            batcher,
            card: Arc::new(card),
            coordinator,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<ApiKey, Error> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::Unauthorized(
                    "you didn't provide an API key: send `Authorization: Bearer KEY` (keys come from `assay gateway key create`)".into(),
                )
            })?;
        let secret = value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::Unauthorized("the Authorization header must be `Bearer KEY`".into())
            })?;
        self.keys.authenticate(secret)
    }
}

/// The router.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/v1/models", get(models))
        .route("/v1/models/{*model}", get(model))
        .route("/v1/embeddings", post(embeddings))
        .fallback(not_found)
        .method_not_allowed_fallback(wrong_method)
        .with_state(gateway)
}

async fn not_found(req: Request) -> Error {
    no_route(&req, false)
}

async fn wrong_method(req: Request) -> Error {
    no_route(&req, true)
}

fn no_route(req: &Request, wrong_method: bool) -> Error {
    Error::NoRoute {
        message: format!(
            "invalid URL ({} {}): this gateway serves GET /v1/models, GET /v1/models/{{model}} and POST /v1/embeddings",
            req.method(),
            req.uri().path()
        ),
        wrong_method,
    }
}

async fn models(State(g): State<Gateway>, headers: HeaderMap) -> Result<Response, Error> {
    g.authenticate(&headers)?;
    Ok(axum::Json(g.card.list()).into_response())
}

async fn model(
    State(g): State<Gateway>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    g.authenticate(&headers)?;
    if !g.card.answers_to(&name) {
        return Err(Error::ModelNotFound(name));
    }
    Ok(axum::Json(g.card.entry(&name)).into_response())
}

async fn embeddings(State(g): State<Gateway>, req: Request) -> Result<Response, Error> {
    let key = g.authenticate(req.headers())?;
    let _slot = g.in_flight.clone().try_acquire_owned().map_err(|_| {
        Error::Unavailable(format!(
            "the gateway is serving {MAX_IN_FLIGHT} requests already; retry in a moment"
        ))
    })?;
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|e| Error::BadRequest {
            message: format!("the body could not be read (at most {MAX_BODY_BYTES} bytes): {e}"),
            param: None,
            code: "request_too_large",
        })?;
    let request = EmbeddingsRequest::parse(&body, &g.card)?;
    let share = g.batcher.embed(request.input.clone()).await?;
    g.keys.charge(key.id, share.cost)?;
    let job = &share.job;
    let out = Embedded {
        rows: job.rows[share.rows.clone()].to_vec(),
        prompt_tokens: job.tokens[share.rows.clone()].iter().sum(),
    };
    let assay = json!({
        "job_id": job.job.to_hex(),
        "receipt_id": job.receipt.to_hex(),
        "shard_job_id": job.shard_job.to_hex(),
        "provider": job.provider,
        "outputs_root": job.outputs_root.to_hex(),
        "rows": [share.rows.start, share.rows.end],
        "cost_micro_iosd": share.cost,
        "coordinator": g.coordinator,
        "check": format!("assay job status {} --coordinator {}", job.job.to_hex(), g.coordinator),
    });
    let body = openai::response(&request, &out, assay);
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (JOB_HEADER, job.job.to_hex()),
        (RECEIPT_HEADER, job.receipt.to_hex()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    Ok(response)
}
