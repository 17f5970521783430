//! Page and API latency of the web explorer with a populated store: p50
//! and p99 per route, on SQLite and on PostgreSQL, over real HTTP on
//! loopback (the server in this process, the client a plain blocking one).
//!
//! ```text
//! cargo bench -p assay-web --bench pages -- [--backend sqlite|postgres]
//!     [--jobs 10000] [--providers 1000] [--requests 200]
//! ```
//!
//! Setup (untimed): P providers register (a quarter with 8 GPUs each, the
//! rest CPU-only; every tenth has a day of device samples every 5 min,
//! the others one heartbeat now), the reward schedule
//! starts a day ago, N one-shard jobs from 100 renters arrive spread over
//! the last 24 hours; 80 % are leased, run and settled, 10 % are running,
//! 10 % wait in the queue; the day's reward epochs close. Timed: each route
//! requested R times in turn (after 5 warm-up requests); the goal is
//! p99 < 100 ms for every page. PostgreSQL reads its URL from
//! `ASSAY_TEST_POSTGRES_URL` (a fresh schema per run, dropped afterwards).

use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_coordinator::postgres::Postgres;
use assay_coordinator::sql::Backend;
use assay_coordinator::sqlite::Sqlite;
use assay_coordinator::{MarketConfig, SqlStore};

#[path = "../tests/all/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

use fixtures::{DAY, Size, populate};

struct Args {
    backend: String,
    jobs: u64,
    providers: u32,
    requests: usize,
}
fn args() -> Args {
    let mut a = Args {
        backend: "sqlite".into(),
        jobs: 10_000,
        providers: 1_000,
        requests: 200,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--backend" => a.backend = val,
            "--jobs" => a.jobs = val.parse().expect("--jobs N"),
            "--providers" => a.providers = val.parse().expect("--providers P"),
            "--requests" => a.requests = val.parse().expect("--requests R"),
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown flag {other}"),
        }
        i += 2;
    }
    a
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn measure(base: &str, routes: &[(String, String)], a: &Args, backend: &str) -> bool {
    let agent = ureq::Agent::new_with_defaults();
    let mut all_ok = true;
    for (label, path) in routes {
        let url = format!("{base}{path}");
        let get = || -> usize {
            let mut resp = agent
                .get(&url)
                .call()
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            resp.body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_vec()
                .unwrap_or_else(|e| panic!("GET {url}: {e}"))
                .len()
        };
        for _ in 0..5 {
            get();
        }
        let mut times = Vec::with_capacity(a.requests);
        let mut bytes = 0;
        for _ in 0..a.requests {
            let t0 = Instant::now();
            bytes = get();
            times.push(t0.elapsed());
        }
        times.sort();
        let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        let page = !path.starts_with("/api");
        let ok = !page || p99 < 100.0;
        all_ok &= ok;
        println!(
            "| {backend} | {label} | `{path}` | {:.2} | {:.2} | {} | {} |",
            p50,
            p99,
            bytes,
            if page {
                if ok { "yes" } else { "**no**" }
            } else {
                "—"
            }
        );
    }
    all_ok
}

fn run<B: Backend>(s: SqlStore<B>, a: &Args) {
    let now = assay_proto::now_ms();
    let t0 = Instant::now();
    let named = populate(
        &s,
        Size {
            jobs: a.jobs,
            providers: a.providers,
        },
        now,
    );
    eprintln!("populated in {:.1} s", t0.elapsed().as_secs_f64());
    let store: Arc<dyn assay_coordinator::Store> = Arc::new(s);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let cfg = assay_web::WebConfig {
        grpc_url: "http://127.0.0.1:7700".into(),
        requests_per_minute: u32::MAX,
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The last reference to the store is dropped here, outside the runtime:
    // PostgreSQL's sync client may not be dropped on an async thread.
    let keep = store.clone();
    let server = rt.spawn(assay_web::serve(listener, store, cfg, None, async move {
        let _ = stop_rx.await;
    }));
    let routes: Vec<(String, String)> = [
        ("explorer", "/".to_string()),
        ("providers, search", "/?q=h100".to_string()),
        (
            "worker dashboard (GPU)",
            format!("/providers/{}", named.gpu_provider),
        ),
        (
            "worker dashboard (CPU)",
            format!("/providers/{}", named.provider),
        ),
        ("renter console", format!("/accounts/{}", named.renter)),
        ("job", format!("/jobs/{}", named.job)),
        ("receipt", format!("/receipts/{}", named.receipt)),
        ("epochs", "/epochs".to_string()),
        ("epoch", format!("/epochs/{}", named.epoch)),
        ("note", format!("/notes/{}", named.note)),
        ("bond", format!("/bonds/{}", named.bond)),
        ("API network", "/api/v1/network".to_string()),
        ("API providers", "/api/v1/providers?limit=50".to_string()),
        (
            "API provider",
            format!("/api/v1/providers/{}", named.gpu_provider),
        ),
        (
            "API telemetry (24 h, 9 devices)",
            format!("/api/v1/providers/{}/telemetry", named.gpu_provider),
        ),
        ("API jobs", "/api/v1/jobs?limit=50".to_string()),
        (
            "API jobs of a renter",
            format!("/api/v1/jobs?renter={}", named.renter),
        ),
        ("API job", format!("/api/v1/jobs/{}", named.job)),
        ("API receipts CSV", "/api/v1/receipts.csv".to_string()),
        (
            "API payments",
            format!("/api/v1/accounts/{}/payments", named.renter),
        ),
        ("API epochs CSV", "/api/v1/epochs.csv".to_string()),
    ]
    .into_iter()
    .map(|(l, p)| (l.to_string(), p))
    .collect();
    let ok = measure(&format!("http://{addr}"), &routes, a, &a.backend);
    let _ = stop_tx.send(());
    let _ = rt.block_on(server);
    drop(rt);
    drop(keep);
    println!();
    println!(
        "every page p99 < 100 ms on {}: {}",
        a.backend,
        if ok { "yes" } else { "NO" }
    );
}

fn main() {
    let a = args();
    let cfg = MarketConfig {
        settlement_delay_ms: 10,
        preference_window_ms: 0,
        lease_ttl_ms: 10 * DAY,
        provider_liveness_ms: 5 * 60_000,
        ..MarketConfig::default()
    };
    println!(
        "web pages · {} jobs · {} providers · {} requests per route · machine: {} cores",
        a.jobs,
        a.providers,
        a.requests,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("| store | route | path | p50 ms | p99 ms | bytes | page p99 < 100 ms |");
    println!("| --- | --- | --- | ---: | ---: | ---: | --- |");
    match a.backend.as_str() {
        "sqlite" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let s = SqlStore::open(
                Sqlite::open(&dir.path().join("bench.db")).expect("sqlite"),
                cfg,
            )
            .expect("store");
            run(s, &a);
        }
        "postgres" => {
            let url = std::env::var("ASSAY_TEST_POSTGRES_URL")
                .expect("set ASSAY_TEST_POSTGRES_URL (eval \"$(bash scripts/ci-postgres.sh)\")");
            let schema = format!("bench_web_{}", std::process::id());
            let b = Postgres::open(&url, Some(&schema)).expect("postgres");
            let s = SqlStore::open(b, cfg).expect("store");
            run(s, &a);
            if let Ok(b) = Postgres::open(&url, Some(&schema)) {
                let _ = b.drop_schema();
            }
        }
        other => panic!("--backend {other}: sqlite or postgres"),
    }
}
