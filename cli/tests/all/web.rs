//! The web explorer in a real browser (issue #15): a devnet that did real
//! work — matmul jobs verified and settled, a cheating provider caught and
//! slashed, reward epochs closed, a note and a bond issued and bought —
//! then Debian's headless Chromium (through chromedriver) over every page
//! at 1366 and 390 CSS px wide. On each page: no console errors; every
//! number marked `data-api="<path>#<json pointer>" data-value="<raw JSON>"`
//! equals the API's value (the devnet quiet, the API fetched right after
//! the page; where they differ, the page is reloaded between two fetches
//! and must show a value within theirs: uptime ratios move with the clock
//! and reward epochs keep closing); every local link answers 200, CSV links parse; Tab reaches the
//! skip link first and then visible elements; form controls are labelled,
//! charts and images named, text contrast meets WCAG AA; nothing overflows
//! the viewport's width. A screenshot of each page at each width is kept
//! under `target/web-screenshots/` (CI keeps it as an artifact).
//!
//! Without `/usr/bin/chromedriver` and `/usr/bin/chromium` the test says
//! `SKIPPED` and passes, unless `ASSAY_REQUIRE_BROWSER=1` (CI sets it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};
use webdriver::{Browser, http};

#[path = "webdriver.rs"]
mod webdriver;

const WIDTHS: [u32; 2] = [1366, 390];
const TAB: &str = "\u{E004}";
/// How often a page whose numbers differ from the API is looked at (a
/// reward epoch may close between page and API, ratios over time move).
const NUMBER_TRIES: usize = 4;

/// API answers by path.
type Api = HashMap<String, Result<Value, String>>;

/// A coordinator that also serves the web (`--http-listen`): returns it,
/// its gRPC URL and its web URL (the two lines it prints), and its arbiter. Its stdout is
/// drained for its whole life, its log kept in `root/coordinator.log`.
fn web_market(root: &Path) -> (Proc, String, String, Proc) {
    let (arbiter_home, arbiter) = arbiter_key(root);
    let data = root.join("coordinator");
    std::fs::create_dir_all(&data).expect("data dir");
    let log = File::create(root.join("coordinator.log")).expect("log");
    let mut child = Command::new(BIN)
        .args(["coordinator", "--faucet", "--listen", "127.0.0.1:0"])
        .args(["--http-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--lease-ttl-ms",
            "1500",
            "--heartbeat-ms",
            "300",
            "--preference-window-ms",
            "0",
            "--tick-ms",
            "100",
            "--stake-per-device",
            "0",
            // Every receipt checked (p = 1) unless its job asks less; a
            // receipt settles 1 s after its check agrees.
            "--verify-rate",
            "1",
            "--settlement-delay-ms",
            "1000",
            "--epoch-ms",
            "300",
            // A verified receipt settles after the worst-case dispute (three
            // check deadlines): about 20 s, inside the test's waits.
            "--check-ttl-ms",
            "7000",
            // Reward epochs of 2 s (an hour of the schedule in 6 s): several
            // close while the jobs run.
            "--reward-hour-ms",
            "6000",
            "--reward-epoch-ms",
            "2000",
            "--telemetry-every-ms",
            "500",
            // The test fetches every link of every page.
            "--http-requests-per-minute",
            "1000000",
            // Disputes are the arbiter's.
            "--arbiter-key",
            &arbiter,
        ])
        .env("ASSAY_HOME", &data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn coordinator");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let child = Proc(child);
    let mut urls = Vec::new();
    while urls.len() < 2 {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the coordinator printed {urls:?}, not its two URLs"));
        if let Some(u) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            urls.push(u.to_string());
        }
    }
    let web = urls.pop().expect("web");
    let grpc = urls.pop().expect("grpc");
    let arbiter = verifier(&grpc, &arbiter_home, &[]);
    (child, grpc, web, arbiter)
}

fn publish_matmul(root: &Path, renter: &Path, url: &str, extra: &[&str]) -> String {
    let (component, a, b) = matmul_inputs(root);
    let component = component.to_string_lossy().to_string();
    let mut args = vec![component.as_str(), "--input", &a, "--input", &b];
    args.extend(["--max-price", "100"]);
    args.extend(LIMITS);
    args.extend(extra);
    publish(renter, url, &args)
}

fn rejected(s: &Value) -> usize {
    s["shards"].as_array().map_or(0, |x| {
        x.iter()
            .map(|x| x["rejected_receipts"].as_array().map_or(0, Vec::len))
            .sum()
    })
}

fn poll<T>(what: &str, secs: u64, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = found() {
            return t;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The devnet after its work, all daemons stopped: the pages to visit.
struct Devnet {
    _tmp: tempfile::TempDir,
    _coordinator: Proc,
    /// The coordinator's log, shown when a check fails.
    log: PathBuf,
    web: String,
    /// (name, path) of each page.
    pages: Vec<(String, String)>,
}

fn devnet() -> Devnet {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().to_path_buf();
    let (coordinator, url, web, _arbiter) = web_market(&root);
    let renter = root.join("renter");
    let (cheat_home, honest_home) = (root.join("cheater"), root.join("honest"));
    let (cheater, honest) = (node_id(&cheat_home, &url), node_id(&honest_home, &url));
    let renter_id = node_id(&renter, &url);
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", "1000000000000"],
    ));
    ok(assay(
        &renter,
        &url,
        &["faucet", "--unit", "io", "--amount", "10000000"],
    ));
    let v1 = verifier(&url, &root.join("v1"), &["--threads", "2"]);
    let v2 = verifier(&url, &root.join("v2"), &[]);

    // The cheater runs alone: its shards come back wrong, it is caught,
    // slashed and suspended, and the shards wait for an honest provider.
    let cheat = provider_with(&url, &cheat_home, 10, 2, &["--cheat-rate", "1"]);
    wait_registered(&renter, &url, &cheater);
    let caught = publish_matmul(&root, &renter, &url, &["--shards", "2"]);
    poll("the cheater caught", 90, || {
        let s = json(&ok(assay(
            &renter,
            &url,
            &["job", "status", &caught, "--json"],
        )));
        (rejected(&s) > 0).then_some(())
    });
    drop(cheat);

    // The honest provider sells 60 of 100 shares of a note and a bond on
    // its device; the renter buys both.
    let honest_p = provider(&url, &honest_home, 20, 2);
    wait_registered(&renter, &url, &honest);
    let note = json(&ok(assay(
        &honest_home,
        &url,
        &[
            "note",
            "issue",
            "--shares",
            "100",
            "--term-days",
            "30",
            "--json",
        ],
    )))["note"]
        .as_str()
        .expect("note id")
        .to_string();
    ok(assay(
        &honest_home,
        &url,
        &["note", "offer", &note, "--shares", "60", "--price", "0.1"],
    ));
    ok(assay(
        &renter,
        &url,
        &[
            "note",
            "buy",
            &note,
            "--from",
            &honest,
            "--shares",
            "60",
            "--max-price",
            "0.1",
        ],
    ));
    let bond = json(&ok(assay(
        &honest_home,
        &url,
        &[
            "bond",
            "issue",
            "--principal",
            "10",
            "--coupon-bps",
            "1000",
            "--maturity-days",
            "2",
            "--json",
        ],
    )))["bond"]
        .as_str()
        .expect("bond id")
        .to_string();
    ok(assay(
        &renter,
        &url,
        &["bond", "buy", &bond, "--amount", "10"],
    ));

    // More work: every shard checked, and one job sampled at p = 0.5.
    let mut jobs = vec![caught.clone()];
    jobs.push(publish_matmul(&root, &renter, &url, &["--shards", "2"]));
    jobs.push(publish_matmul(
        &root,
        &renter,
        &url,
        &["--verify-rate", "0.5"],
    ));
    for job in &jobs {
        wait_job(&renter, &url, job, 120, |s| s["state"] == "settled");
    }
    // A reward epoch has paid the honest provider IO (its page is the one
    // shown), and one has marked the cheater's as failed.
    let paid_epoch = poll("reward epochs closed", 60, || {
        let r = json(&ok(assay(
            &renter,
            &url,
            &["rewards", "--json", "--limit", "1000"],
        )));
        let epochs = r["epochs"].as_array().cloned().unwrap_or_default();
        let has = |e: &Value, f: &dyn Fn(&Value) -> bool| {
            e["providers"].as_array().is_some_and(|ps| ps.iter().any(f))
        };
        let paid = epochs.iter().find(|e| {
            has(e, &|x| {
                x["provider"] == honest.as_str() && x["amount"].as_u64() > Some(0)
            })
        })?;
        epochs
            .iter()
            .any(|e| {
                has(e, &|x| {
                    x["provider"] == cheater.as_str() && x["failed"] == true
                })
            })
            .then(|| paid["epoch"].as_u64().expect("epoch number"))
    });
    let c = account(&renter, &url, Some(&cheater));
    assert!(c["stake"].as_u64() < Some(1_000_000), "slashed: {c:#}");
    // Quiet from here: no daemon left, only reward epochs keep closing.
    drop((honest_p, v1, v2));
    std::thread::sleep(Duration::from_secs(3));

    let job_html = http("GET", &format!("{web}/jobs/{caught}"), None)
        .expect("job page")
        .text();
    let receipt = first_link(&job_html, "/receipts/")
        .unwrap_or_else(|| panic!("no receipt link on /jobs/{caught}"));
    let pages = [
        ("explorer", "/".to_string()),
        ("worker", format!("/providers/{honest}")),
        ("worker-slashed", format!("/providers/{cheater}")),
        ("renter", format!("/accounts/{renter_id}")),
        ("job", format!("/jobs/{caught}")),
        ("receipt", receipt),
        ("epochs", "/epochs".to_string()),
        ("epoch", format!("/epochs/{paid_epoch}")),
        ("note", format!("/notes/{note}")),
        ("bond", format!("/bonds/{bond}")),
    ]
    .into_iter()
    .map(|(n, p)| (n.to_string(), p))
    .collect();
    Devnet {
        _tmp: tmp,
        _coordinator: coordinator,
        log: root.join("coordinator.log"),
        web,
        pages,
    }
}

/// The first `href="<prefix>…"` in `html` (without a fragment or query).
fn first_link(html: &str, prefix: &str) -> Option<String> {
    let at = html.find(&format!("href=\"{prefix}"))? + "href=\"".len();
    let end = html[at..].find(['"', '#', '?'])?;
    Some(html[at..at + end].to_string())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF.
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, '"') => return Err(format!("a stray quote in row {}", rows.len() + 1)),
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("an unclosed quote".into());
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    let header = rows.first().ok_or("empty")?;
    if header.iter().any(String::is_empty) {
        return Err(format!("an empty column name in {header:?}"));
    }
    for (i, r) in rows.iter().enumerate() {
        if r.len() != header.len() {
            return Err(format!(
                "row {i} has {} fields, the header {}",
                r.len(),
                header.len()
            ));
        }
    }
    Ok(rows)
}

/// Whether `path` (no query) is one of the OpenAPI document's paths,
/// `{param}` segments matching any one segment.
fn in_openapi(openapi: &Value, path: &str) -> bool {
    let seg: Vec<&str> = path.split('/').collect();
    openapi["paths"].as_object().is_some_and(|paths| {
        paths.keys().any(|t| {
            let ts: Vec<&str> = t.split('/').collect();
            ts.len() == seg.len()
                && ts
                    .iter()
                    .zip(&seg)
                    .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}')))
        })
    })
}

fn same(page: &Value, api: &Value) -> bool {
    page == api
        || matches!((page.as_f64(), api.as_f64()), (Some(a), Some(b)) if a == b && page.is_number() && api.is_number())
}

const FOCUSED: &str = "const e = document.activeElement; \
    if (!e || e === document.body) return null; \
    const r = e.getBoundingClientRect(), s = getComputedStyle(e); \
    return {tag: e.tagName.toLowerCase(), href: e.getAttribute('href'), \
      text: (e.innerText || e.value || e.getAttribute('aria-label') || '').trim().slice(0, 60), \
      visible: r.width >= 1 && r.height >= 1 && s.visibility !== 'hidden' && s.opacity !== '0' \
        && r.bottom > 0 && r.right > 0 && r.left < innerWidth};";

const UNLABELLED: &str = "return Array.from(document.querySelectorAll('input, select, textarea, button')) \
    .filter(e => e.type !== 'hidden') \
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') \
      && !e.getAttribute('aria-labelledby') && !(e.tagName === 'BUTTON' && e.innerText.trim()) \
      && !(e.type === 'submit' && e.value)) \
    .map(e => e.outerHTML.slice(0, 160));";

const UNNAMED_GRAPHICS: &str = "const named = e => { \
      if (e.getAttribute('aria-hidden') === 'true' || ['presentation', 'none'].includes(e.getAttribute('role'))) return true; \
      if ((e.getAttribute('aria-label') || '').trim()) return true; \
      const by = e.getAttribute('aria-labelledby'); \
      if (by && by.split(/\\s+/).some(id => { const t = document.getElementById(id); return t && t.textContent.trim(); })) return true; \
      if (e.tagName.toLowerCase() === 'img') return (e.getAttribute('alt') || '').trim() !== ''; \
      const t = Array.from(e.children).find(c => c.tagName.toLowerCase() === 'title'); \
      return !!(t && t.textContent.trim()); }; \
    return Array.from(document.querySelectorAll('img, svg, [role=img]')) \
      .filter(e => !(e.parentElement && e.parentElement.closest('svg'))) \
      .filter(e => !named(e)).map(e => e.outerHTML.slice(0, 160));";

/// Text whose contrast with its background is below WCAG AA (4.5:1, 3:1
/// for large text); backgrounds composed from the ancestors' colours.
const LOW_CONTRAST: &str = "const parse = c => { const m = /^rgba?\\(([^)]+)\\)$/.exec(c); if (!m) return null; \
      const p = m[1].split(/[\\s,\\/]+/).filter(x => x).map(parseFloat); \
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; }; \
    const over = (t, b) => [0, 1, 2].map(i => t[i] * t[3] + b[i] * (1 - t[3])).concat([1]); \
    const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; \
      return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); }; \
    const background = el => { const layers = []; \
      for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); \
        if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } } \
      let bg = [255, 255, 255, 1]; for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg); return bg; }; \
    const bad = []; \
    for (const el of document.querySelectorAll('body *')) { \
      if (el.closest('svg') || ['SCRIPT', 'STYLE', 'NOSCRIPT', 'OPTION'].includes(el.tagName) || el.disabled) continue; \
      if (!Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())) continue; \
      const r = el.getBoundingClientRect(), s = getComputedStyle(el); \
      if (r.width <= 1 || r.height <= 1 || r.bottom < 0 || r.right < 0 || s.visibility === 'hidden') continue; \
      const c = parse(s.color); if (!c) continue; \
      const bg = background(el), fg = over(c, bg); \
      const a = lum(fg), b = lum(bg), ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); \
      const size = parseFloat(s.fontSize), large = size >= 24 || (size >= 18.66 && parseInt(s.fontWeight) >= 700); \
      if (ratio < (large ? 3 : 4.5)) bad.push(el.tagName.toLowerCase() + ' \"' + el.textContent.trim().slice(0, 40) \
        + '\" ' + s.color + ' on rgb(' + bg.slice(0, 3).map(Math.round).join(',') + ') ' + ratio.toFixed(2) + ':1'); } \
    return bad.slice(0, 12);";

/// Drives the browser over the pages and collects every finding.
struct Checker {
    browser: Browser,
    web: String,
    shots: PathBuf,
    openapi: Value,
    /// Each local link fetched once: its status (and CSV verdict).
    links: HashMap<String, Result<(), String>>,
    csv: BTreeMap<String, usize>,
    findings: Vec<String>,
}

impl Checker {
    fn fail(&mut self, page: &str, width: u32, what: String) {
        eprintln!("  FAIL {page} @{width}: {what}");
        self.findings.push(format!("{page} @{width}px: {what}"));
    }

    fn fetch_link(&mut self, href: &str) -> Result<(), String> {
        let path = href.split('#').next().unwrap_or(href);
        if let Some(r) = self.links.get(path) {
            return r.clone();
        }
        let got = http("GET", &format!("{}{path}", self.web), None);
        let verdict = match got {
            Err(e) => Err(e),
            Ok(r) if r.status != 200 => Err(format!("{path} answers {}", r.status)),
            Ok(r) => {
                let bare = path.split('?').next().unwrap_or(path);
                if bare.ends_with(".csv") || r.content_type.starts_with("text/csv") {
                    match parse_csv(&r.text()) {
                        Ok(rows) => {
                            self.csv.insert(path.to_string(), rows.len() - 1);
                            Ok(())
                        }
                        Err(e) => Err(format!("{path}: CSV does not parse: {e}")),
                    }
                } else {
                    Ok(())
                }
            }
        };
        self.links.insert(path.to_string(), verdict.clone());
        verdict
    }

    /// The page's `(data-api, data-value)` pairs.
    fn pairs(&self) -> Vec<(String, Option<String>)> {
        let pairs = self.browser.script(
            "return Array.from(document.querySelectorAll('[data-api]')) \
               .map(e => [e.getAttribute('data-api'), e.getAttribute('data-value')]);",
            json!([]),
        );
        pairs
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p[0].as_str().unwrap_or("").to_string(),
                    p[1].as_str().map(str::to_string),
                )
            })
            .collect()
    }

    /// Each API path the pairs name, fetched once, now.
    fn fetch_apis(&self, pairs: &[(String, Option<String>)]) -> Api {
        let mut apis = Api::new();
        for (api, _) in pairs {
            let path = api.split('#').next().unwrap_or(api);
            apis.entry(path.to_string()).or_insert_with(|| {
                http("GET", &format!("{}{path}", self.web), None).and_then(|r| {
                    if r.status == 200 {
                        r.json()
                    } else {
                        Err(format!("answers {}", r.status))
                    }
                })
            });
        }
        apis
    }

    /// Every `data-api` number on the page against the API: fetched right
    /// after the page (`after`) and, on a second look, also right before
    /// it (`before`), when the page may show anything the API said in
    /// between (a value computed against the clock, such as an uptime
    /// ratio, moves even on a quiet network). Returns the mismatches.
    fn numbers(
        &self,
        pairs: &[(String, Option<String>)],
        before: Option<&Api>,
        after: &Api,
    ) -> Vec<String> {
        let mut bad = Vec::new();
        if pairs.is_empty() {
            bad.push("no data-api numbers on the page".into());
        }
        let at = |apis: &Api, path: &str, pointer: &str| -> Result<Value, String> {
            match apis.get(path) {
                None => Err(format!("{path}: not fetched")),
                Some(Err(e)) => Err(format!("{path}: {e}")),
                Some(Ok(doc)) => doc
                    .pointer(&percent_decode(pointer))
                    .cloned()
                    .ok_or_else(|| {
                        format!("{path}#{pointer}: no such pointer in the API's answer")
                    }),
            }
        };
        for (api, raw) in pairs {
            let (path, pointer) = api.split_once('#').unwrap_or((api, ""));
            let Some(raw) = raw else {
                bad.push(format!("{api}: no data-value"));
                continue;
            };
            let shown = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()));
            let late = match at(after, path, pointer) {
                Ok(v) => v,
                Err(e) => {
                    bad.push(e);
                    continue;
                }
            };
            let early = before.and_then(|b| at(b, path, pointer).ok());
            let between = match (&early, shown.as_f64(), late.as_f64()) {
                (Some(e), Some(x), Some(l)) if shown.is_number() => {
                    e.as_f64().is_some_and(|e| e.min(l) <= x && x <= e.max(l))
                }
                _ => false,
            };
            if !(same(&shown, &late) || early.as_ref().is_some_and(|e| same(&shown, e)) || between)
            {
                let was = early
                    .map(|e| format!(" (and {e} just before the page)"))
                    .unwrap_or_default();
                bad.push(format!("{api}: page shows {raw}, the API says {late}{was}"));
            }
        }
        bad
    }

    fn page(&mut self, name: &str, path: &str, width: u32) {
        let started = Instant::now();
        let url = format!("{}{path}", self.web);
        match http("GET", &url, None) {
            Ok(r) if r.status == 200 && r.content_type.starts_with("text/html") => {
                if !r.text().contains("data-api=") {
                    self.fail(
                        name,
                        width,
                        "the HTML (no JavaScript) shows no data-api number".into(),
                    );
                }
            }
            Ok(r) => self.fail(
                name,
                width,
                format!("{path} answers {} {}", r.status, r.content_type),
            ),
            Err(e) => self.fail(name, width, e),
        }
        let _ = self.browser.console();
        self.browser.goto(&url);

        // Keyboard: the first Tab lands on the skip link, then on visible
        // elements.
        let start = self.browser.script(FOCUSED, json!([]));
        if !start.is_null() {
            self.fail(
                name,
                width,
                format!("focus starts on {start}, not the document"),
            );
        }
        for i in 0..4 {
            self.browser.key(TAB);
            let f = self.browser.script(FOCUSED, json!([]));
            if f.is_null() {
                self.fail(name, width, format!("Tab #{} focuses nothing", i + 1));
                break;
            }
            if f["visible"] != true {
                self.fail(
                    name,
                    width,
                    format!("Tab #{} focuses an invisible {f}", i + 1),
                );
            }
            if i == 0 {
                let target = f["href"].as_str().unwrap_or("");
                let skip = f["tag"] == "a"
                    && target.starts_with('#')
                    && f["text"]
                        .as_str()
                        .unwrap_or("")
                        .to_lowercase()
                        .contains("skip");
                let exists = skip
                    && self
                        .browser
                        .script(
                            "return !!document.getElementById(arguments[0]);",
                            json!([&target[1..]]),
                        )
                        .as_bool()
                        == Some(true);
                if !exists {
                    self.fail(
                        name,
                        width,
                        format!(
                            "the first Tab focuses {f}, not a skip link to an element on the page"
                        ),
                    );
                }
            }
        }
        self.browser.script(
            "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);",
            json!([]),
        );

        // Layout: the viewport is exactly `width`, nothing wider.
        let layout = self.browser.script(
            "return {inner: innerWidth, scroll: document.documentElement.scrollWidth, \
               lang: document.documentElement.lang, title: document.title};",
            json!([]),
        );
        if layout["inner"].as_u64() != Some(u64::from(width)) {
            self.fail(
                name,
                width,
                format!(
                    "the layout viewport is {} px (no viewport meta?)",
                    layout["inner"]
                ),
            );
        }
        if layout["scroll"].as_u64() > Some(u64::from(width)) {
            self.fail(
                name,
                width,
                format!(
                    "the page is {} px wide: it scrolls sideways",
                    layout["scroll"]
                ),
            );
        }
        if layout["lang"].as_str().is_none_or(str::is_empty)
            || layout["title"].as_str().is_none_or(str::is_empty)
        {
            self.fail(name, width, format!("no <html lang> or <title>: {layout}"));
        }

        // Numbers: the page's against the API's, fetched right after; if
        // they differ, again with the API fetched just before a reload too.
        let mut pairs = self.pairs();
        let mut after = self.fetch_apis(&pairs);
        let mut bad = self.numbers(&pairs, None, &after);
        for _ in 1..NUMBER_TRIES {
            if bad.is_empty() {
                break;
            }
            let before = self.fetch_apis(&pairs);
            self.browser.goto(&url);
            pairs = self.pairs();
            after = self.fetch_apis(&pairs);
            bad = self.numbers(&pairs, Some(&before), &after);
        }
        let count = if bad.is_empty() { pairs.len() } else { 0 };
        for b in bad {
            self.fail(name, width, b);
        }
        let apis: BTreeSet<String> = after.into_keys().collect();
        for api in &apis {
            let bare = api.split('?').next().unwrap_or(api);
            if !in_openapi(&self.openapi, bare) {
                self.fail(name, width, format!("{bare} is not in /api/openapi.json"));
            }
        }

        // Labels, names of graphics, contrast.
        for (what, js) in [
            ("a form control without a label", UNLABELLED),
            (
                "a chart or image without an accessible name",
                UNNAMED_GRAPHICS,
            ),
            ("text below WCAG AA contrast", LOW_CONTRAST),
        ] {
            let bad = self.browser.script(js, json!([]));
            for b in bad.as_array().into_iter().flatten() {
                self.fail(name, width, format!("{what}: {}", b.as_str().unwrap_or("")));
            }
        }

        // Links: every local one answers 200; CSV parses.
        let hrefs = self.browser.script(
            "return Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')) \
               .filter(h => h.startsWith('/') && !h.startsWith('//'));",
            json!([]),
        );
        let hrefs: BTreeSet<String> = hrefs
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h.as_str().map(str::to_string))
            .collect();
        for h in &hrefs {
            if let Err(e) = self.fetch_link(h) {
                self.fail(name, width, format!("link {h}: {e}"));
            }
        }

        let file = self.shots.join(format!("{name}-{width}.png"));
        let (w, h) = self.browser.screenshot(&file, 12_000);
        if w != width {
            self.fail(name, width, format!("the screenshot is {w} px wide"));
        }

        // Console: nothing logged at SEVERE while the page loaded and was driven.
        let mut seen = BTreeSet::new();
        for e in self.browser.console() {
            let (level, message) = (e["level"].as_str().unwrap_or(""), e["message"].to_string());
            if !seen.insert((level.to_string(), message.clone())) {
                continue;
            }
            if level == "SEVERE" {
                self.fail(name, width, format!("console error: {message}"));
            } else if level == "WARNING" {
                eprintln!("  note {name} @{width}: console warning {message}");
            }
        }
        eprintln!(
            "  {name:<15} @{width:>4}  {path}: {count} numbers from {} API paths, {} links, screenshot {w}x{h}, {} ms",
            apis.len(),
            hrefs.len(),
            started.elapsed().as_millis()
        );
    }
}

fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        let d = PathBuf::from(d);
        return if d.is_absolute() {
            d
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(d)
        };
    }
    // target/<profile>/deps/all-<hash>
    std::env::current_exe()
        .expect("test executable")
        .ancestors()
        .nth(3)
        .expect("target dir")
        .to_path_buf()
}

#[test]
fn the_explorer_dashboard_and_console_pass_in_a_real_browser() {
    let started = Instant::now();
    let browser = match Browser::start() {
        Ok(b) => b,
        Err(e) => {
            assert_ne!(
                std::env::var("ASSAY_REQUIRE_BROWSER").as_deref(),
                Ok("1"),
                "ASSAY_REQUIRE_BROWSER=1 but {e}"
            );
            eprintln!("SKIPPED web browser test: {e}");
            return;
        }
    };
    let net = devnet();
    eprintln!(
        "devnet done in {} s: {} pages",
        started.elapsed().as_secs(),
        net.pages.len()
    );
    let openapi = http("GET", &format!("{}/api/openapi.json", net.web), None)
        .and_then(|r| r.json())
        .expect("/api/openapi.json");
    assert!(
        openapi["openapi"].is_string() && openapi["paths"].is_object(),
        "not an OpenAPI document: {openapi:#}"
    );
    let shots = target_dir().join("web-screenshots");
    let mut check = Checker {
        browser,
        web: net.web.clone(),
        shots: shots.clone(),
        openapi,
        links: HashMap::new(),
        csv: BTreeMap::new(),
        findings: Vec::new(),
    };
    for width in WIDTHS {
        check.browser.set_width(width);
        for (name, path) in &net.pages {
            check.page(name, path, width);
        }
    }
    if check.csv.is_empty() {
        check.findings.push("no page links to a CSV".into());
    } else if check.csv.values().all(|&rows| rows == 0) {
        check
            .findings
            .push(format!("every CSV is empty: {:?}", check.csv));
    }
    eprintln!("CSV (data rows): {:?}", check.csv);
    eprintln!(
        "{} links fetched; screenshots in {}; {} s in all",
        check.links.len(),
        shots.display(),
        started.elapsed().as_secs()
    );
    if !check.findings.is_empty() {
        let log = std::fs::read_to_string(&net.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!("coordinator log (last lines):");
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
    }
    assert!(
        check.findings.is_empty(),
        "{} findings:\n{}",
        check.findings.len(),
        check.findings.join("\n")
    );
}

#[test]
fn csv_parsing_accepts_quotes_and_rejects_ragged_rows() {
    let rows = parse_csv("a,b\r\n1,\"x, \"\"y\"\"\"\n2,3\n").expect("parses");
    assert_eq!(rows[1], ["1", "x, \"y\""]);
    assert!(parse_csv("a,b\n1\n").is_err());
    assert!(parse_csv("a,b\n\"1,2\n").is_err());
    assert_eq!(percent_decode("/a%7Eb/c"), "/a~b/c");
    assert_eq!(
        first_link("<a href=\"/epochs/7?x=1\">", "/epochs/").as_deref(),
        Some("/epochs/7")
    );
}
