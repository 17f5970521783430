use std::sync::Arc;

use assay_gateway::batching::Embedder;
use assay_gateway::market::JobResult;
use assay_gateway::openai::Sequence;
use assay_gateway::{BatchConfig, Batcher, Error, Gateway, KeyStore, ModelCard, router};
use assay_protocol::Hash32;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Row `i` of a job is `[i, i, i, i]` as f32; every sequence is 3 tokens.
struct Rows;

impl Embedder for Rows {
    async fn embed(&self, sequences: &[Sequence]) -> Result<JobResult, Error> {
        Ok(JobResult {
            rows: (0..sequences.len())
                .map(|i| [i as f32; 4].iter().flat_map(|v| v.to_le_bytes()).collect())
                .collect(),
            tokens: vec![3; sequences.len()],
            job: Hash32::of(b"job"),
            shard_job: Hash32::of(b"shard"),
            receipt: Hash32::of(b"receipt"),
            provider: "p".into(),
            outputs_root: Hash32::of(b"root"),
            cost: 5,
        })
    }

    fn max_cost_per_sequence(&self) -> u64 {
        5
    }
}

struct Setup {
    app: axum::Router,
    key: String,
    keys: Arc<KeyStore>,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    setup_with(BatchConfig::default())
}

fn setup_with(cfg: BatchConfig) -> Setup {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = Arc::new(KeyStore::open(&dir.path().join("keys.sqlite")).expect("keys"));
    let (key, _) = keys.create("test", None).expect("key");
    let batcher = Batcher::start(Arc::new(Rows), cfg);
    let gateway = Gateway::new(
        keys.clone(),
        batcher,
        ModelCard::minilm(30522),
        "http://c".into(),
    );
    Setup {
        app: router(gateway),
        key,
        keys,
        _dir: dir,
    }
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let req = req
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, value)
}

#[tokio::test]
async fn every_route_needs_a_key_and_answers_in_openais_format() {
    let s = setup();
    let (status, _, body) = call(&s.app, "GET", "/v1/models", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let (status, _, body) = call(&s.app, "GET", "/v1/models", Some("sk-assay-wrong"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let (status, _, body) = call(&s.app, "GET", "/v1/models", Some(&s.key), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"][1]["id"],
        "sentence-transformers/all-MiniLM-L6-v2"
    );
    let (status, _, body) = call(
        &s.app,
        "GET",
        "/v1/models/sentence-transformers/all-MiniLM-L6-v2",
        Some(&s.key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], "sentence-transformers/all-MiniLM-L6-v2");
    let (status, _, body) = call(&s.app, "GET", "/v1/models/gpt-4", Some(&s.key), None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("model_not_found"))
    );

    let (status, _, body) = call(&s.app, "GET", "/v1/embeddings", Some(&s.key), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "unknown_url");
    let (status, _, body) = call(
        &s.app,
        "POST",
        "/v1/chat/completions",
        Some(&s.key),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let (status, _, _) = call(&s.app, "GET", "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn embeddings_come_back_in_order_as_floats_or_base64_with_the_jobs_ids() {
    let s = setup();
    let req = json!({"model": "all-MiniLM-L6-v2", "input": ["a", "b\nc", [101, 102]]});
    let (status, headers, body) =
        call(&s.app, "POST", "/v1/embeddings", Some(&s.key), Some(req)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "all-MiniLM-L6-v2");
    assert_eq!(body["usage"]["prompt_tokens"], 9);
    assert_eq!(body["data"][2]["index"], 2);
    assert_eq!(body["data"][2]["embedding"], json!([2.0, 2.0, 2.0, 2.0]));
    assert_eq!(body["assay"]["job_id"], Hash32::of(b"job").to_hex());
    assert_eq!(headers["x-assay-job"], Hash32::of(b"job").to_hex().as_str());
    assert_eq!(
        headers["x-assay-receipt"],
        Hash32::of(b"receipt").to_hex().as_str()
    );

    let req = json!({"model": "all-MiniLM-L6-v2", "input": "one", "encoding_format": "base64"});
    let (status, _, body) = call(&s.app, "POST", "/v1/embeddings", Some(&s.key), Some(req)).await;
    assert_eq!(status, StatusCode::OK);
    let b64 = body["data"][0]["embedding"]
        .as_str()
        .expect("base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    assert_eq!(
        bytes,
        [0f32; 4]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
    );
}

#[tokio::test]
async fn bad_bodies_are_400_and_a_spent_key_is_429() {
    let s = setup();
    for (body, param) in [
        (json!({"model": "all-MiniLM-L6-v2"}), "input"),
        (
            json!({"model": "all-MiniLM-L6-v2", "input": "x", "dimensions": 3}),
            "dimensions",
        ),
        (
            json!({"model": "all-MiniLM-L6-v2", "input": [[-1]]}),
            "input",
        ),
    ] {
        let (status, _, out) =
            call(&s.app, "POST", "/v1/embeddings", Some(&s.key), Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
        assert_eq!(out["error"]["param"], param);
    }
    let req = Request::builder()
        .method("POST")
        .uri("/v1/embeddings")
        .header("authorization", format!("Bearer {}", s.key))
        .body(Body::from("{not json"))
        .expect("request");
    let resp = s.app.clone().oneshot(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // A request may cost up to 5 per sequence + 1 (the stand-in's bound):
    // two sequences cannot fit a limit of 6, and are refused before they
    // run, charging nothing.
    let (capped, record) = s.keys.create("capped", Some(6)).expect("key");
    let two = json!({"model": "all-MiniLM-L6-v2", "input": ["x", "y"]});
    let (status, _, body) = call(&s.app, "POST", "/v1/embeddings", Some(&capped), Some(two)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "insufficient_quota");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("may cost up to 11"), "{message}");
    let req = json!({"model": "all-MiniLM-L6-v2", "input": "x"});
    let (status, _, _) = call(
        &s.app,
        "POST",
        "/v1/embeddings",
        Some(&capped),
        Some(req.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        s.keys
            .list()
            .expect("list")
            .iter()
            .find(|k| k.id == record.id)
            .map(|k| k.spent),
        Some(5),
        "charged what it cost, not what it held"
    );
    // 1 left: the next may cost 6 and is refused, so the key never passes
    // its limit.
    let (status, _, body) = call(&s.app, "POST", "/v1/embeddings", Some(&capped), Some(req)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "insufficient_quota");
}

#[tokio::test]
async fn a_request_larger_than_a_batch_runs_as_several_jobs_its_rows_in_order() {
    let s = setup_with(BatchConfig {
        max_sequences: 2,
        ..BatchConfig::default()
    });
    let input: Vec<String> = (0..5).map(|i| format!("sentence {i}")).collect();
    let req = json!({"model": "all-MiniLM-L6-v2", "input": input, "encoding_format": "float"});
    let (status, headers, body) =
        call(&s.app, "POST", "/v1/embeddings", Some(&s.key), Some(req)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Row i of each job is i: jobs of 2, 2 and 1 sequences, in order.
    let firsts: Vec<f64> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["embedding"][0].as_f64().expect("float"))
        .collect();
    assert_eq!(firsts, vec![0.0, 1.0, 0.0, 1.0, 0.0]);
    assert_eq!(body["assay"]["jobs"].as_array().map(Vec::len), Some(3));
    assert_eq!(body["usage"]["prompt_tokens"], 15);
    assert_eq!(
        headers["x-assay-job"]
            .to_str()
            .expect("ascii")
            .split(", ")
            .count(),
        3
    );
}
