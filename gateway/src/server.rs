//! The HTTP server: `/v1/models`, `/v1/models/{model}`, `/v1/embeddings`,
//! `/v1/chat/completions` when a chat model is served (each behind
//! `Authorization: Bearer KEY`), and `/health`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use assay_protocol::Hash32;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::Error;
use crate::batching::{Batcher, Share};
use crate::chat::{self, ChatMarket, ChatRequest, Completion};
use crate::keys::{ApiKey, Held, KeyStore};
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

/// How often a streamed chat request says it is still waiting for its job.
pub const HEARTBEAT: Duration = Duration::from_secs(3);

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

/// `POST /v1/chat/completions`: one job per request. Whatever goes wrong
/// before the job starts (the key, the body, the spend limit) is a JSON
/// error with its status; then the job runs on its own task
/// ([`run_detached`]), and the answer is a `chat.completion`, or with
/// `stream: true` server-sent events ([`stream_events`]).
async fn chat_completions(State(g): State<Gateway>, req: Request) -> Result<Response, Error> {
    let key = g.authenticate(req.headers())?;
    let chat = g.chat.clone().ok_or_else(|| {
        Error::ModelNotFound(
            "(any chat model: this gateway serves embeddings only; start it with --chat)".into(),
        )
    })?;
    let slot = g.slot()?;
    let body = read_body(req).await?;
    let request = ChatRequest::parse(&body, &chat.card)?;
    let held = g.keys.hold(&key, chat.most_cost(&request))?;
    let job = {
        let request = request.clone();
        run_detached(async move { chat.complete(&request).await }, held, slot)
    };
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let coordinator = g.coordinator.clone();
    if request.stream {
        let render = move |out: &Completion| {
            chat::chunks(&request, out, created, chat_assay(out, &coordinator))
        };
        return Ok(stream_events(job, render, HEARTBEAT));
    }
    let out = joined(job.await)?;
    let assay = chat_assay(&out, &coordinator);
    let mut response = axum::Json(chat::response(&request, &out, created, assay)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (JOB_HEADER, out.job.to_hex()),
        (RECEIPT_HEADER, out.receipt.to_hex()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    Ok(response)
}

/// A chat answer's `assay`: the job, its receipt and what it cost.
fn chat_assay(out: &Completion, coordinator: &str) -> Value {
    let job = out.job.to_hex();
    json!({
        "job_id": job,
        "receipt_id": out.receipt.to_hex(),
        "shard_job_id": out.shard_job.to_hex(),
        "provider": out.provider,
        "outputs_root": out.outputs_root.to_hex(),
        "prompt_ids": out.completion["prompt_ids"],
        "ids": out.completion["ids"],
        "cost_micro_iosd": out.cost,
        "coordinator": coordinator,
        "check": format!("assay job status {job} --coordinator {coordinator}"),
    })
}

/// Runs `job` on its own task, to its end whether or not its client still
/// waits: the job is paid for either way, so the request is charged its
/// cost (`held` settled) when it succeeds, and charged nothing (`held`
/// dropped, so released) when it fails or panics. `slot` counts it among
/// the requests in flight until then.
fn run_detached<F>(
    job: F,
    held: Held,
    slot: OwnedSemaphorePermit,
) -> JoinHandle<Result<Completion, Error>>
where
    F: Future<Output = Result<Completion, Error>> + Send + 'static,
{
    tokio::spawn(async move {
        let _slot = slot;
        let out = job.await?;
        held.settle(out.cost)?;
        Ok(out)
    })
}

/// A detached job's result.
fn joined(
    done: Result<Result<Completion, Error>, tokio::task::JoinError>,
) -> Result<Completion, Error> {
    done.map_err(|e| Error::JobFailed(format!("the request's job failed: {e}")))?
}

/// The server-sent events of a streamed chat request (status 200 at once,
/// `text/event-stream`, `no-cache`): a comment now and every `heartbeat`
/// while `job` runs (`: waiting for the job's verified receipt (6 s)`),
/// then `render`'s chunks as `data:` events and `data: [DONE]`; or, if
/// the job fails, one `data: {"error": …}` event (OpenAI's error object)
/// and the end, without `[DONE]`. A client that goes away stops the events,
/// never the job ([`run_detached`]).
fn stream_events<R>(
    job: JoinHandle<Result<Completion, Error>>,
    render: R,
    heartbeat: Duration,
) -> Response
where
    R: FnOnce(&Completion) -> Vec<Value> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(send_events(tx, job, render, heartbeat));
    let mut response = Sse::new(ReceiverStream::new(rx)).into_response();
    // Proxies that buffer responses (nginx) pass these on as they come.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

async fn send_events<R>(
    tx: mpsc::Sender<Result<Event, Infallible>>,
    mut job: JoinHandle<Result<Completion, Error>>,
    render: R,
    heartbeat: Duration,
) where
    R: FnOnce(&Completion) -> Vec<Value>,
{
    let started = tokio::time::Instant::now();
    let mut beat = tokio::time::interval(heartbeat);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let done = loop {
        tokio::select! {
            biased;
            done = &mut job => break joined(done),
            () = tx.closed() => return,
            _ = beat.tick() => {
                let waiting = format!(
                    "waiting for the job's verified receipt ({} s)",
                    started.elapsed().as_secs()
                );
                if tx.send(Ok(Event::default().comment(waiting))).await.is_err() {
                    return;
                }
            }
        }
    };
    let events = match done {
        Ok(out) => render(&out)
            .into_iter()
            .map(|chunk| Event::default().data(chunk.to_string()))
            .chain([Event::default().data("[DONE]")])
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "a streamed request failed");
            vec![Event::default().data(e.body().to_string())]
        }
    };
    for event in events {
        if tx.send(Ok(event)).await.is_err() {
            return;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    struct Setup {
        keys: Arc<KeyStore>,
        key: ApiKey,
        slots: Arc<tokio::sync::Semaphore>,
        _dir: tempfile::TempDir,
    }

    /// A key with a limit of 100 µIOSD.
    fn setup() -> Setup {
        let dir = tempfile::tempdir().expect("tmp");
        let keys = Arc::new(KeyStore::open(&dir.path().join("k.sqlite")).expect("keys"));
        let (_, key) = keys.create("k", Some(100)).expect("key");
        Setup {
            keys,
            key,
            slots: Arc::new(tokio::sync::Semaphore::new(4)),
            _dir: dir,
        }
    }

    impl Setup {
        /// A request holding 50 of the key's 100, whose job takes `after`
        /// and ends in `result`.
        fn job(
            &self,
            after: Duration,
            result: Result<Completion, Error>,
        ) -> JoinHandle<Result<Completion, Error>> {
            let held = self.keys.hold(&self.key, 50).expect("hold");
            let slot = self.slots.clone().try_acquire_owned().expect("slot");
            run_detached(
                async move {
                    tokio::time::sleep(after).await;
                    result
                },
                held,
                slot,
            )
        }

        fn spent(&self) -> u64 {
            self.keys.list().expect("list")[0].spent
        }

        /// Spent `spent`, nothing held, no request in flight.
        fn settled_at(&self, spent: u64) -> bool {
            self.spent() == spent
                && self.slots.available_permits() == 4
                && self.keys.hold(&self.key, 100 - spent).is_ok()
        }
    }

    fn completion(cost: u64) -> Completion {
        Completion {
            completion: json!({
                "prompt_ids": [1, 2, 3],
                "ids": [4, 5, 6],
                "text": "The sky is blue.",
                "finish_reason": "stop",
            }),
            job: Hash32::of(b"job"),
            shard_job: Hash32::of(b"shard"),
            receipt: Hash32::of(b"receipt"),
            provider: "p".into(),
            outputs_root: Hash32::of(b"root"),
            cost,
        }
    }

    fn render() -> impl FnOnce(&Completion) -> Vec<Value> + Send + 'static {
        let body = json!({
            "model": "SmolLM2-135M-Instruct",
            "messages": [{"role": "user", "content": "x"}],
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let req = ChatRequest::parse(body.to_string().as_bytes(), &chat::ChatCard::smollm2())
            .expect("request");
        move |out: &Completion| chat::chunks(&req, out, 1, chat_assay(out, "http://c"))
    }

    async fn text_of(response: Response) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn a_stream_says_it_waits_then_sends_the_chunks_and_done_and_the_key_is_charged() {
        let s = setup();
        let job = s.job(Duration::from_millis(120), Ok(completion(7)));
        let response = stream_events(job, render(), Duration::from_millis(20));
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let text = text_of(response).await;
        let events: Vec<&str> = text.split_terminator("\n\n").collect();
        assert!(
            events[0].starts_with(": waiting for the job's verified receipt"),
            "{text}"
        );
        let comments = events.iter().take_while(|e| e.starts_with(": ")).count();
        assert!(comments >= 2, "{text}");
        assert_eq!(events.last(), Some(&"data: [DONE]"), "{text}");
        let chunks: Vec<Value> = events[comments..events.len() - 1]
            .iter()
            .map(|e| {
                let data = e.strip_prefix("data: ").expect("a data event");
                serde_json::from_str(data).expect("json")
            })
            .collect();
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "The sky is blue.");
        assert!(chunks.iter().all(|c| c["id"] == chunks[0]["id"]));
        assert_eq!(chunks[chunks.len() - 1]["usage"]["total_tokens"], 6);
        assert!(s.settled_at(7), "charged 7, the rest released");
    }

    #[tokio::test]
    async fn a_client_that_goes_away_mid_stream_is_still_charged_and_its_hold_released() {
        let s = setup();
        let job = s.job(Duration::from_millis(200), Ok(completion(7)));
        let response = stream_events(job, render(), Duration::from_millis(20));
        let mut body = response.into_body();
        let first = body.frame().await.expect("a frame").expect("no error");
        let first = first.into_data().expect("data");
        assert!(first.starts_with(b": waiting"), "{first:?}");
        drop(body);
        assert_eq!(s.spent(), 0, "the job is still running");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !s.settled_at(7) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the job was not charged: spent {}",
                s.spent()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_job_that_fails_mid_stream_ends_it_with_an_openai_error_and_costs_nothing() {
        let s = setup();
        let failed = Err(Error::Unavailable("no provider finished job x".into()));
        let job = s.job(Duration::from_millis(50), failed);
        let text = text_of(stream_events(job, render(), Duration::from_millis(20))).await;
        let events: Vec<&str> = text.split_terminator("\n\n").collect();
        let last = events.last().and_then(|e| e.strip_prefix("data: "));
        let error: Value = serde_json::from_str(last.expect("a data event")).expect("json");
        assert_eq!(error["error"]["code"], "no_capacity", "{text}");
        assert_eq!(error["error"]["type"], "server_error");
        assert_eq!(error["error"]["message"], "no provider finished job x");
        assert!(!text.contains("[DONE]"), "{text}");
        assert!(
            events[..events.len() - 1]
                .iter()
                .all(|e| e.starts_with(": ")),
            "{text}"
        );
        assert!(s.settled_at(0), "a failed request costs nothing");
    }
}
