//! The HTTP server: `/v1/models`, `/v1/models/{model}`, `/v1/embeddings`,
//! `/v1/chat/completions` when a chat model is served (each behind
//! `Authorization: Bearer KEY`), and `/health`.

use std::sync::Arc;

use assay_protocol::Hash32;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::Error;
use crate::batching::{Batcher, Share};
use crate::chat::{self, ChatMarket, ChatRequest};
use crate::keys::{ApiKey, KeyStore};
use crate::market::JobResult;
use crate::openai::{self, Embedded, EmbeddingsRequest, ModelCard, Sequence};

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
    chat: Option<Arc<ChatMarket>>,
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
            chat: None,
            coordinator,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// Also answers `POST /v1/chat/completions` with `chat`'s model.
    pub fn with_chat(mut self, chat: Arc<ChatMarket>) -> Gateway {
        self.chat = Some(chat);
        self
    }

    /// Every model name served, with who made it.
    fn model_names(&self) -> Vec<(&str, &str)> {
        let mut names: Vec<(&str, &str)> = self
            .card
            .names
            .iter()
            .map(|n| (n.as_str(), self.card.owned_by.as_str()))
            .collect();
        if let Some(chat) = &self.chat {
            names.extend(
                chat.card
                    .names
                    .iter()
                    .map(|n| (n.as_str(), chat.card.owned_by.as_str())),
            );
        }
        names
    }

    /// A slot among the requests in flight, or 503.
    fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        self.in_flight.clone().try_acquire_owned().map_err(|_| {
            Error::Unavailable(format!(
                "the gateway is serving {MAX_IN_FLIGHT} requests already; retry in a moment"
            ))
        })
    }

    /// Embeds `input` in parts of at most a batch each, at once: a request
    /// larger than a batch becomes several jobs (one job's escrow, and the
    /// stake a provider bonds for it, stay bounded), its rows in order.
    async fn embed_in_parts(&self, input: &[Sequence]) -> Result<Vec<Share>, Error> {
        let mut parts = tokio::task::JoinSet::new();
        for (n, chunk) in input.chunks(self.batcher.max_sequences()).enumerate() {
            let batcher = self.batcher.clone();
            let chunk = chunk.to_vec();
            parts.spawn(async move { (n, batcher.embed(chunk).await) });
        }
        let mut shares: Vec<Option<Share>> = vec![None; parts.len()];
        while let Some(done) = parts.join_next().await {
            let (n, share) =
                done.map_err(|e| Error::JobFailed(format!("a part of the request failed: {e}")))?;
            if let Some(slot) = shares.get_mut(n) {
                *slot = Some(share?);
            }
        }
        Ok(shares.into_iter().flatten().collect())
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
        .route("/v1/chat/completions", post(chat_completions))
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
            "invalid URL ({} {}): this gateway serves GET /v1/models, GET /v1/models/{{model}}, POST /v1/embeddings and POST /v1/chat/completions",
            req.method(),
            req.uri().path()
        ),
        wrong_method,
    }
}

async fn models(State(g): State<Gateway>, headers: HeaderMap) -> Result<Response, Error> {
    g.authenticate(&headers)?;
    let data: Vec<Value> = g
        .model_names()
        .into_iter()
        .map(|(name, owner)| model_entry(name, owner))
        .collect();
    Ok(axum::Json(json!({ "object": "list", "data": data })).into_response())
}

fn model_entry(name: &str, owned_by: &str) -> Value {
    json!({ "id": name, "object": "model", "created": 0, "owned_by": owned_by })
}

async fn model(
    State(g): State<Gateway>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    g.authenticate(&headers)?;
    let (found, owner) = g
        .model_names()
        .into_iter()
        .find(|(n, _)| *n == name)
        .ok_or(Error::ModelNotFound(name))?;
    Ok(axum::Json(model_entry(found, owner)).into_response())
}

async fn embeddings(State(g): State<Gateway>, req: Request) -> Result<Response, Error> {
    let key = g.authenticate(req.headers())?;
    let _slot = g.slot()?;
    let body = read_body(req).await?;
    let request = EmbeddingsRequest::parse(&body, &g.card)?;
    let held = g
        .keys
        .hold(&key, g.batcher.most_cost(request.input.len()))?;
    let shares = g.embed_in_parts(&request.input).await?;
    let cost: u64 = shares.iter().map(|s| s.cost).fold(0, u64::saturating_add);
    held.settle(cost)?;
    let mut out = Embedded {
        rows: Vec::with_capacity(request.input.len()),
        prompt_tokens: 0,
    };
    for share in &shares {
        let job = &share.job;
        out.rows.extend_from_slice(&job.rows[share.rows.clone()]);
        out.prompt_tokens += job.tokens[share.rows.clone()].iter().sum::<u64>();
    }
    let parts: Vec<Value> = shares.iter().map(job_part).collect();
    // The first job's ids at the top (most requests are one job), every
    // job under `jobs`.
    let Some(Value::Object(mut assay)) = parts.first().cloned() else {
        return Err(Error::JobFailed("no job ran for this request".into()));
    };
    let first = assay
        .get("job_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    assay.insert("jobs".into(), Value::Array(parts));
    assay.insert("cost_micro_iosd".into(), json!(cost));
    assay.insert("coordinator".into(), json!(g.coordinator));
    assay.insert(
        "check".into(),
        json!(format!(
            "assay job status {first} --coordinator {}",
            g.coordinator
        )),
    );
    let assay = Value::Object(assay);
    let body = openai::response(&request, &out, assay);
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    let ids = |f: fn(&JobResult) -> Hash32| {
        shares
            .iter()
            .map(|s| f(&s.job).to_hex())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (name, value) in [
        (JOB_HEADER, ids(|j| j.job)),
        (RECEIPT_HEADER, ids(|j| j.receipt)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    Ok(response)
}

/// The request's body, at most [`MAX_BODY_BYTES`].
async fn read_body(req: Request) -> Result<axum::body::Bytes, Error> {
    axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|e| Error::BadRequest {
            message: format!("the body could not be read (at most {MAX_BODY_BYTES} bytes): {e}"),
            param: None,
            code: "request_too_large",
        })
}

async fn chat_completions(State(g): State<Gateway>, req: Request) -> Result<Response, Error> {
    let key = g.authenticate(req.headers())?;
    let chat = g.chat.clone().ok_or_else(|| {
        Error::ModelNotFound(
            "(any chat model: this gateway serves embeddings only; start it with --chat)".into(),
        )
    })?;
    let _slot = g.slot()?;
    let body = read_body(req).await?;
    let request = ChatRequest::parse(&body, &chat.card)?;
    let held = g.keys.hold(&key, chat.most_cost(&request))?;
    let out = chat.complete(&request).await?;
    held.settle(out.cost)?;
    let job = out.job.to_hex();
    let assay = json!({
        "job_id": job,
        "receipt_id": out.receipt.to_hex(),
        "shard_job_id": out.shard_job.to_hex(),
        "provider": out.provider,
        "outputs_root": out.outputs_root.to_hex(),
        "prompt_ids": out.completion["prompt_ids"],
        "ids": out.completion["ids"],
        "cost_micro_iosd": out.cost,
        "coordinator": g.coordinator,
        "check": format!("assay job status {job} --coordinator {}", g.coordinator),
    });
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut response = axum::Json(chat::response(&request, &out, created, assay)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [(JOB_HEADER, job), (RECEIPT_HEADER, out.receipt.to_hex())] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    Ok(response)
}

/// One job's part of a response: its ids and the request's rows in it.
fn job_part(share: &Share) -> Value {
    let job = &share.job;
    json!({
        "job_id": job.job.to_hex(),
        "receipt_id": job.receipt.to_hex(),
        "shard_job_id": job.shard_job.to_hex(),
        "provider": job.provider,
        "outputs_root": job.outputs_root.to_hex(),
        "rows": [share.rows.start, share.rows.end],
    })
}
