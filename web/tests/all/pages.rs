//! The pages: each renders, is public data only, and every number marked
//! with `data-api` equals the API's value at that JSON pointer.

use std::collections::HashMap;

use axum::Router;
use axum::http::StatusCode;

use crate::{app, get, json};

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every `data-api="…" data-value="…"` pair of a page.
pub fn marks(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("data-api=\"") {
        rest = &rest[i + 10..];
        let Some(end) = rest.find('"') else { break };
        let source = unescape(&rest[..end]);
        rest = &rest[end..];
        let Some(j) = rest.find("data-value=\"") else {
            break;
        };
        let v = &rest[j + 12..];
        let Some(vend) = v.find('"') else { break };
        out.push((source, unescape(&v[..vend])));
        rest = &v[vend..];
    }
    out
}

/// The site-local links (`href="/…"`) of a page.
fn hrefs(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|h| h.starts_with('/') && !h.starts_with("//"))
        .map(unescape)
        .collect()
}

/// Checks a page's marks against the API; returns how many were checked.
async fn check_page(r: &Router, path: &str) -> usize {
    let (status, ct, html) = get(r, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {html}");
    assert!(ct.starts_with("text/html"), "{path}: {ct}");
    assert!(html.contains("<html lang=\"en\">") && html.contains("<main id=\"main\""));
    let mut apis: HashMap<String, serde_json::Value> = HashMap::new();
    let m = marks(&html);
    for (source, value) in &m {
        let (api, pointer) = source.split_once('#').expect("path#pointer");
        if !apis.contains_key(api) {
            apis.insert(api.to_string(), json(r, api).await);
        }
        let got = apis[api]
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{path}: {source} points at nothing"));
        let got = match got {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(&got, value, "{path}: {source}");
    }
    m.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_shows_the_apis_numbers() {
    let (r, n, _dir) = app(120, 12, 100_000);
    let pages = [
        "/".to_string(),
        "/?q=h100&status=online".to_string(),
        format!("/providers/{}", n.gpu_provider),
        format!("/providers/{}?kwh_price=0.2", n.provider),
        format!("/accounts/{}", n.renter),
        format!("/jobs/{}", n.job),
        format!("/receipts/{}", n.receipt),
        "/epochs".to_string(),
        format!("/epochs/{}", n.epoch),
        format!("/notes/{}", n.note),
        format!("/bonds/{}", n.bond),
    ];
    let mut links = std::collections::BTreeSet::new();
    for p in &pages {
        let checked = check_page(&r, p).await;
        assert!(checked >= 5, "{p}: only {checked} numbers marked");
        let (_, _, html) = get(&r, p).await;
        links.extend(hrefs(&html).into_iter().map(|h| (p.clone(), h)));
    }
    // Every link on these pages resolves (ids link to their pages).
    let mut seen = std::collections::HashSet::new();
    for (from, href) in links {
        let target = href.split('#').next().unwrap_or("").to_string();
        if target.is_empty() || !seen.insert(target.clone()) {
            continue;
        }
        let (status, _, body) = get(&r, &target).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{from} links to {target}: {}",
            body.chars().take(300).collect::<String>()
        );
    }
    assert!(seen.len() >= 20, "only {} distinct links", seen.len());
    // The search of epochs redirects to the epoch.
    let (status, _, _) = get(&r, &format!("/epochs?epoch={}", n.epoch)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_explains_itself_and_charts_its_devices() {
    let (r, n, _dir) = app(40, 8, 100_000);
    let (_, _, html) = get(&r, &format!("/providers/{}", n.gpu_provider)).await;
    for needle in [
        "GPU temperature",
        "GPU power",
        "GPU utilisation",
        "GPU memory in use",
        "CPU load",
        "Reward eligibility",
        "Uptime by reward epoch",
        "assay provider --coordinator http://127.0.0.1:7700",
        "<label for=\"kwh_price\">",
        "role=\"img\"",
    ] {
        assert!(html.contains(needle), "dashboard lacks {needle:?}");
    }
    // Public data only: outputs appear as hashes, no blob route exists.
    let (status, _, _) = get(&r, "/blobs/x").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
