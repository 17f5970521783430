//! The JSON API: every route answers its documented shape; bad ids are
//! 400 and unknown ones 404, in the documented error shape; CSV parses;
//! the OpenAPI document lists every route; the rate limit answers 429.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::{app, get, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_its_shape() {
    let (r, n, _dir) = app(200, 20, 100_000);
    let net = json(&r, "/api/v1/network").await;
    assert_eq!(net["providers_total"], 20);
    assert_eq!(net["jobs"]["total"], 200);
    assert_eq!(net["hourly"].as_array().map(Vec::len), Some(24));
    assert!(net["paid_total_uiosd"].as_u64().is_some_and(|p| p > 0));

    let list = json(&r, "/api/v1/providers?limit=5").await;
    assert_eq!(list["total"], 20);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(5));
    let gpu = json(&r, "/api/v1/providers?q=H100").await;
    assert_eq!(gpu["total"], 5, "a quarter of 20 have H100s");

    let d = json(&r, &format!("/api/v1/providers/{}", n.gpu_provider)).await;
    assert_eq!(d["summary"]["id"], n.gpu_provider.as_str());
    assert!(
        d["install_command"]
            .as_str()
            .is_some_and(|c| c.starts_with("assay provider --coordinator http://127.0.0.1:7700"))
    );
    assert_eq!(d["eligibility"].as_array().map(Vec::len), Some(6));
    let t = json(
        &r,
        &format!("/api/v1/providers/{}/telemetry", n.gpu_provider),
    )
    .await;
    assert!(t.as_array().is_some_and(|a| a.len() > 9), "{t}");
    let p = json(
        &r,
        &format!(
            "/api/v1/providers/{}/profitability?kwh_price=0.12",
            n.gpu_provider
        ),
    )
    .await;
    assert_eq!(p["kwh_price_uiosd"], 120_000);
    assert_eq!(p["energy_per_day_wh"], 8 * 650 * 24, "8 GPUs at 650 W");
    json(&r, &format!("/api/v1/providers/{}/receipts", n.provider)).await;
    json(&r, &format!("/api/v1/providers/{}/rewards", n.provider)).await;

    let jobs = json(&r, &format!("/api/v1/jobs?renter={}", n.renter)).await;
    assert_eq!(jobs["total"], 2, "200 jobs over 100 renters");
    let job = json(&r, &format!("/api/v1/jobs/{}", n.job)).await;
    assert_eq!(job["summary"]["state"], "settled");
    let rc = json(&r, &format!("/api/v1/receipts/{}", n.receipt)).await;
    assert_eq!(rc["summary"]["id"], n.receipt.as_str());
    assert_eq!(rc["outputs"][0]["name"], "c");
    json(&r, &format!("/api/v1/receipts?job={}", n.job)).await;
    let acct = json(&r, &format!("/api/v1/accounts/{}", n.renter)).await;
    assert_eq!(acct["jobs"], 2);
    let pays = json(&r, &format!("/api/v1/accounts/{}/payments", n.renter)).await;
    assert!(pays["total"].as_u64().is_some_and(|t| t >= 3));
    let epochs = json(&r, "/api/v1/epochs").await;
    assert!(epochs["total"].as_u64().is_some_and(|t| t > 0), "{epochs}");
    let e = json(&r, &format!("/api/v1/epochs/{}", n.epoch)).await;
    assert_eq!(e["epoch"], n.epoch);

    let note = json(&r, &format!("/api/v1/notes/{}", n.note)).await;
    assert_eq!(note["id"], n.note.as_str());
    assert_eq!(note["device"], n.provider.as_str());
    assert_eq!(note["shares"], 1_000);
    assert_eq!(note["offers"][0]["shares"], 100);
    let bond = json(&r, &format!("/api/v1/bonds/{}", n.bond)).await;
    assert_eq!(bond["id"], n.bond.as_str());
    assert_eq!(bond["principal_uiosd"], 1_000_000);
    assert_eq!(bond["sold_uiosd"], 400_000);
    assert_eq!(bond["state"], "open");
    assert!(
        bond["holdings"]
            .as_array()
            .is_some_and(|h| h.iter().any(|x| x["holder"] == n.renter.as_str())),
        "{bond}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_unknown_ids_are_refused_in_the_error_shape() {
    let (r, _n, _dir) = app(10, 4, 100_000);
    let unknown = "ab".repeat(32);
    for (path, want) in [
        ("/api/v1/providers/zz".to_string(), StatusCode::BAD_REQUEST),
        (
            format!("/api/v1/providers/{unknown}"),
            StatusCode::NOT_FOUND,
        ),
        (format!("/api/v1/jobs/{unknown}"), StatusCode::NOT_FOUND),
        ("/api/v1/jobs/12".to_string(), StatusCode::BAD_REQUEST),
        (format!("/api/v1/receipts/{unknown}"), StatusCode::NOT_FOUND),
        (format!("/api/v1/notes/{unknown}"), StatusCode::NOT_FOUND),
        (format!("/api/v1/bonds/{unknown}"), StatusCode::NOT_FOUND),
        ("/api/v1/epochs/99999".to_string(), StatusCode::NOT_FOUND),
        ("/api/v1/epochs/x".to_string(), StatusCode::BAD_REQUEST),
        (
            "/api/v1/providers?limit=1000".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/providers?status=sleeping".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/jobs?renter=nope".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/nothing".to_string(), StatusCode::NOT_FOUND),
        (
            format!("/api/v1/providers/{unknown}/profitability?kwh_price=abc"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, ct, body) = get(&r, &path).await;
        assert_eq!(status, want, "{path}: {body}");
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{path}: {body}"
        );
    }
    let (status, ct, body) = get(&r, &format!("/jobs/{unknown}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        ct.starts_with("text/html") && body.contains("no job"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_exports_parse_with_their_headers() {
    let (r, n, _dir) = app(60, 6, 100_000);
    for (path, header, rows) in [
        ("/api/v1/receipts.csv".to_string(), "seq,id,job_id", 48usize),
        ("/api/v1/epochs.csv".to_string(), "epoch,start_ms", 1),
        (
            format!("/api/v1/accounts/{}/payments.csv", n.renter),
            "seq,kind,debit",
            1,
        ),
    ] {
        let (status, ct, body) = get(&r, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(ct.starts_with("text/csv"), "{path}: {ct}");
        let lines: Vec<&str> = body.lines().collect();
        assert!(lines[0].starts_with(header), "{path}: {}", lines[0]);
        let width = lines[0].split(',').count();
        assert!(lines.len() > rows, "{path}: {} lines", lines.len());
        for l in &lines[1..] {
            // No cell here holds a comma or quote (ids, numbers, words).
            assert_eq!(l.split(',').count(), width, "{path}: {l}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route() {
    let (r, _n, _dir) = app(4, 2, 100_000);
    let doc = json(&r, "/api/openapi.json").await;
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/api/v1/network",
        "/api/v1/providers",
        "/api/v1/providers/{node}",
        "/api/v1/providers/{node}/telemetry",
        "/api/v1/providers/{node}/receipts",
        "/api/v1/providers/{node}/rewards",
        "/api/v1/providers/{node}/profitability",
        "/api/v1/jobs",
        "/api/v1/jobs/{id}",
        "/api/v1/receipts",
        "/api/v1/receipts.csv",
        "/api/v1/receipts/{id}",
        "/api/v1/accounts/{node}",
        "/api/v1/accounts/{node}/payments",
        "/api/v1/accounts/{node}/payments.csv",
        "/api/v1/epochs",
        "/api/v1/epochs.csv",
        "/api/v1/epochs/{n}",
        "/api/v1/notes/{id}",
        "/api/v1/bonds/{id}",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for s in ["NetworkSummary", "ProviderDetail", "JobDetail", "ErrorBody"] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_past_its_budget_is_answered_429() {
    let (r, _n, _dir) = app(2, 2, 5);
    for _ in 0..5 {
        assert_eq!(get(&r, "/api/v1/network").await.0, StatusCode::OK);
    }
    let resp = r
        .clone()
        .oneshot(
            Request::get("/api/v1/network")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&wait), "retry after {wait} s");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("rate_limited"), "{body}");
    // Pages are refused too, as HTML.
    let (status, ct, _) = get(&r, "/").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(ct.starts_with("text/html"), "{ct}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_served_from_the_binary_with_cache_headers() {
    let (r, _n, _dir) = app(2, 2, 100_000);
    for (path, ct) in [
        ("/assets/style.css", "text/css"),
        ("/assets/app.js", "text/javascript"),
        ("/favicon.ico", "image/svg+xml"),
    ] {
        let resp = r
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let h = resp.headers();
        let got = h
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(got.starts_with(ct), "{path}: {got}");
        assert!(
            h.get("cache-control")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.contains("max-age")),
            "{path}: no cache header"
        );
    }
    // No page reaches outside the binary: no CDN, no external script.
    let (_, _, html) = get(&r, "/").await;
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
}
