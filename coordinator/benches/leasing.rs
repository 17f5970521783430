//! Coordinator throughput: jobs matched and leased per second with 100
//! simulated providers, and the latency from publish to lease, on SQLite
//! and on PostgreSQL (one or two replicas sharing the database).
//!
//! ```text
//! cargo bench -p assay-coordinator --bench leasing -- [--backend sqlite|postgres]
//!     [--jobs N] [--providers P] [--batch B] [--threads T] [--replicas R]
//!     [--rate JOBS_PER_S] [--seconds S] [--window-ms MS] [--grpc]
//! ```
//!
//! PostgreSQL reads its URL from `ASSAY_TEST_POSTGRES_URL` (each run uses a
//! fresh schema, dropped afterwards).
//!
//! Phase 1 (throughput): N one-shard jobs are queued, then T threads drive
//! the P providers, each `take_leases` asking for up to B leases, until
//! every job is leased. Phase 2 (latency): a publisher submits jobs at a
//! steady rate for S seconds while the providers poll; each lease's
//! publish→lease latency is recorded.
//!
//! By default this drives the store directly (the matching and leasing
//! transactions). With `--grpc` it goes through the real gRPC server (one per
//! replica, in this process, on loopback): every publish and every
//! `TakeLeases` is a signed request whose nonce is recorded, and the 100
//! providers are concurrent gRPC clients.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assay_coordinator::postgres::Postgres;
use assay_coordinator::sqlite::Sqlite;
use assay_coordinator::store::{NewJob, ProviderInfo};
use assay_coordinator::{MarketConfig, SqlStore, Store};
use assay_protocol::{BlobRef, Hash32, JobSpec, NodeKey, inputs_root};

struct Args {
    backend: String,
    jobs: u64,
    providers: u32,
    batch: u32,
    threads: usize,
    replicas: usize,
    rate: u64,
    seconds: u64,
    window_ms: u64,
    grpc: bool,
}

fn args() -> Args {
    let mut a = Args {
        backend: "sqlite".into(),
        jobs: 20_000,
        providers: 100,
        batch: 8,
        threads: 4,
        replicas: 1,
        rate: 2_000,
        seconds: 5,
        window_ms: MarketConfig::default().preference_window_ms,
        grpc: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        let num = || {
            val.parse::<u64>()
                .unwrap_or_else(|_| panic!("{} needs a number", v[i]))
        };
        match v[i].as_str() {
            "--backend" => a.backend = val.clone(),
            "--jobs" => a.jobs = num(),
            "--providers" => a.providers = num() as u32,
            "--batch" => a.batch = num() as u32,
            "--threads" => a.threads = num() as usize,
            "--replicas" => a.replicas = num() as usize,
            "--rate" => a.rate = num(),
            "--seconds" => a.seconds = num(),
            "--window-ms" => a.window_ms = num(),
            "--grpc" => {
                a.grpc = true;
                i += 1;
                continue;
            }
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

fn now_ms() -> u64 {
    assay_proto::now_ms()
}

fn job(n: u64, renter: &NodeKey) -> NewJob {
    let inputs = vec![BlobRef {
        name: "x".into(),
        hash: Hash32([1; 32]),
        size: 100,
    }];
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&n.to_le_bytes());
    id[8] = 0xbe;
    NewJob {
        pay_in: assay_coordinator::ledger::Unit::Iosd,
        verify_rate_ppm: 0,
        id: Hash32(id),
        renter: renter.id(),
        component_hash: Hash32([2; 32]),
        component_size: 1000,
        inputs_root: inputs_root(inputs.iter().map(|b| (b.name.as_str(), b.size, &b.hash))),
        inputs,
        spec: JobSpec {
            fuel: 1_000_000,
            work_budget: 1_000_000,
            ..JobSpec::default()
        },
        shards: 1,
        max_price: 100,
        require_gpu: false,
        shard_inputs: vec![],
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn run<S: Store>(stores: Vec<Arc<S>>, a: &Args) {
    let s0 = stores[0].clone();
    let renter = NodeKey::from_seed([9; 32]);
    s0.mint(&renter.id(), 1_000_000_000_000, "bench", now_ms())
        .expect("mint");
    let providers: Vec<NodeKey> = (0..a.providers)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            seed[31] = 7;
            NodeKey::from_seed(seed)
        })
        .collect();
    for (i, p) in providers.iter().enumerate() {
        s0.register(
            &ProviderInfo {
                id: p.id(),
                price: 10 + (i as u64 % 10),
                cpu_cores: 16,
                memory_bytes: 64 << 30,
                gpus: vec![],
                slots: 1_000_000,
                version: "bench".into(),
            },
            0,
            now_ms(),
        )
        .expect("register");
    }

    // Phase 1: throughput.
    let t = Instant::now();
    for n in 0..a.jobs {
        s0.submit_job(&job(n, &renter), now_ms()).expect("submit");
    }
    let publish_s = t.elapsed().as_secs_f64();
    let leased = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    std::thread::scope(|scope| {
        for th in 0..a.threads {
            let store = stores[th % stores.len()].clone();
            let mine: Vec<&NodeKey> = providers.iter().skip(th).step_by(a.threads).collect();
            let (leased, calls) = (leased.clone(), calls.clone());
            let (total, batch) = (a.jobs, a.batch);
            scope.spawn(move || {
                let mut idle = 0;
                while leased.load(Ordering::Relaxed) < total && idle < 1_000 {
                    for p in &mine {
                        let got = store.take_leases(&p.id(), batch, now_ms()).expect("take");
                        calls.fetch_add(1, Ordering::Relaxed);
                        if got.is_empty() {
                            idle += 1;
                        } else {
                            idle = 0;
                            leased.fetch_add(got.len() as u64, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let lease_s = t.elapsed().as_secs_f64();
    let n = leased.load(Ordering::Relaxed);
    println!(
        "throughput  {} jobs published in {publish_s:.2}s ({:.0} jobs/s); {n} leased in {lease_s:.2}s = {:.0} leases/s ({:.0} take_leases calls/s, batch ≤ {})",
        a.jobs,
        a.jobs as f64 / publish_s,
        n as f64 / lease_s,
        calls.load(Ordering::Relaxed) as f64 / lease_s,
        a.batch
    );

    // Phase 2: latency at a steady publish rate.
    let submitted: Arc<Mutex<HashMap<Hash32, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let total = a.rate * a.seconds;
    std::thread::scope(|scope| {
        {
            let (s0, submitted, stop) = (s0.clone(), submitted.clone(), stop.clone());
            let renter = &renter;
            let (rate, jobs) = (a.rate, a.jobs);
            scope.spawn(move || {
                let start = Instant::now();
                for k in 0..total {
                    let due = start + Duration::from_secs_f64(k as f64 / rate as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let j = job(jobs + 1 + k, renter);
                    submitted.lock().expect("lock").insert(j.id, Instant::now());
                    s0.submit_job(&j, now_ms()).expect("submit");
                }
                std::thread::sleep(Duration::from_millis(500));
                stop.store(true, Ordering::Relaxed);
            });
        }
        for th in 0..a.threads {
            let store = stores[th % stores.len()].clone();
            let mine: Vec<&NodeKey> = providers.iter().skip(th).step_by(a.threads).collect();
            let (submitted, latencies, stop) = (submitted.clone(), latencies.clone(), stop.clone());
            let batch = a.batch;
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for p in &mine {
                        for l in store.take_leases(&p.id(), batch, now_ms()).expect("take") {
                            let at = submitted.lock().expect("lock").remove(&l.job_id);
                            if let Some(at) = at {
                                latencies
                                    .lock()
                                    .expect("lock")
                                    .push(at.elapsed().as_secs_f64() * 1e3);
                            }
                        }
                    }
                }
            });
        }
    });
    let mut lat = latencies.lock().expect("lock").clone();
    lat.sort_by(|x, y| x.total_cmp(y));
    println!(
        "latency     {} jobs at {}/s for {}s: {} leased; publish→lease p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        total,
        a.rate,
        a.seconds,
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
}

fn main() {
    let a = args();
    let cfg = MarketConfig {
        preference_window_ms: a.window_ms,
        ..MarketConfig::default()
    };
    println!(
        "backend {} · {} providers · {} threads · {} replica(s) · preference window {} ms · machine: {} cores",
        a.backend,
        a.providers,
        a.threads,
        a.replicas,
        a.window_ms,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    match a.backend.as_str() {
        "sqlite" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let stores: Vec<Arc<SqlStore<Sqlite>>> = (0..a.replicas)
                .map(|_| {
                    Arc::new(
                        SqlStore::open(
                            Sqlite::open(&dir.path().join("bench.db")).expect("sqlite"),
                            cfg.clone(),
                        )
                        .expect("store"),
                    )
                })
                .collect();
            if a.grpc {
                run_grpc(
                    stores.into_iter().map(|s| s as Arc<dyn Store>).collect(),
                    &a,
                );
            } else {
                run(stores, &a);
            }
        }
        "postgres" => {
            let url = std::env::var("ASSAY_TEST_POSTGRES_URL")
                .expect("set ASSAY_TEST_POSTGRES_URL (eval \"$(bash scripts/ci-postgres.sh)\")");
            let schema = format!("bench_{}", std::process::id());
            let stores: Vec<Arc<SqlStore<Postgres>>> = (0..a.replicas)
                .map(|_| {
                    Arc::new(
                        SqlStore::open(
                            Postgres::open(&url, Some(&schema)).expect("postgres"),
                            cfg.clone(),
                        )
                        .expect("store"),
                    )
                })
                .collect();
            if a.grpc {
                run_grpc(
                    stores.into_iter().map(|s| s as Arc<dyn Store>).collect(),
                    &a,
                );
            } else {
                run(stores, &a);
            }
            let _ = Postgres::open(&url, Some(&schema)).and_then(|p| p.drop_schema());
        }
        other => panic!("--backend {other}: sqlite or postgres"),
    }
}

/// The same two phases through the gRPC server.
fn run_grpc(stores: Vec<Arc<dyn Store>>, a: &Args) {
    use assay_coordinator::blobs::BlobStore;
    use assay_coordinator::server::{Coordinator, ServerConfig};
    use assay_proto::auth::Signer;
    use assay_proto::pb;
    use assay_proto::pb::provider_client::ProviderClient;
    use assay_proto::pb::renter_client::RenterClient;

    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = Arc::new(BlobStore::open(&dir.path().join("blobs"), 1 << 30).expect("blobs"));
    // One server per replica, each on its own runtime thread.
    let mut urls = Vec::new();
    for store in &stores {
        let (tx, rx) = std::sync::mpsc::channel();
        // A benchmark's few keys send far more than any one key may.
        let cfg = ServerConfig {
            key_rate: None,
            ..ServerConfig::default()
        };
        let c = Coordinator::new(store.clone(), blobs.clone(), cfg);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let _ = tx.send(format!("http://{}", l.local_addr().expect("addr")));
                let _ = c.serve(l, std::future::pending()).await;
            });
        });
        urls.push(rx.recv().expect("server up"));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads)
        .enable_all()
        .build()
        .expect("client runtime");
    let sign = |k: &Signer, mut m: pb::TakeLeasesRequest| {
        assay_proto::auth::sign(k, &mut m, now_ms(), 60_000).expect("sign");
        m
    };
    // The coordinators share one database, so one id.
    let here = stores[0].coordinator_id();
    let renter = Arc::new(Signer::new(NodeKey::from_seed([9; 32]), here));
    stores[0]
        .mint(&renter.id(), 1_000_000_000_000, "bench", now_ms())
        .expect("mint");
    let providers: Vec<Arc<Signer>> = (0..a.providers)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            seed[31] = 8;
            Arc::new(Signer::new(NodeKey::from_seed(seed), here))
        })
        .collect();
    let channels: Vec<tonic::transport::Channel> = rt.block_on(async {
        let mut v = Vec::new();
        for u in &urls {
            v.push(assay_proto::client::channel(u).expect("channel"));
        }
        v
    });
    let component: Arc<[u8]> = vec![0u8; 1000].into();
    let input: Arc<[u8]> = vec![1u8; 100].into();
    let submit = {
        let (renter, channel) = (renter.clone(), channels[0].clone());
        let (ch, ih) = (Hash32::of(&component), Hash32::of(&input));
        move || {
            let mut m = pb::SubmitJobRequest {
                inline_blobs: Vec::new(),
                pay_in: String::new(),
                unverified: true,
                verify_rate_ppm: 0,
                auth: None,
                component_hash: ch.0.to_vec(),
                component_size: 1000,
                inputs: vec![pb::BlobRef {
                    name: "x".into(),
                    hash: ih.0.to_vec(),
                    size: 100,
                }],
                spec: Some(pb::JobSpec::from(&JobSpec {
                    fuel: 1_000_000,
                    work_budget: 1_000_000,
                    ..JobSpec::default()
                })),
                shards: 1,
                max_price: 100,
                requirements: None,
                split_inputs: vec![],
                cluster_id: vec![],
            };
            assay_proto::auth::sign(&renter, &mut m, now_ms(), 60_000).expect("sign");
            let mut c = RenterClient::new(channel.clone());
            async move {
                let r = c.submit_job(m).await.expect("submit").into_inner();
                let mut id = [0u8; 32];
                id.copy_from_slice(&r.job_id);
                Hash32(id)
            }
        }
    };
    rt.block_on(async {
        assay_proto::client::upload(&channels[0], &renter, component.clone())
            .await
            .expect("upload");
        assay_proto::client::upload(&channels[0], &renter, input.clone())
            .await
            .expect("upload");
        for (i, p) in providers.iter().enumerate() {
            let mut m = pb::RegisterRequest {
                auth: None,
                hardware: Some(pb::Hardware {
                    cpu_cores: 16,
                    memory_bytes: 64 << 30,
                    gpus: vec![],
                }),
                price: 10 + (i as u64 % 10),
                stake: 0,
                slots: 1_000_000,
                version: "bench".into(),
                reserve_price: 0,
            };
            assay_proto::auth::sign(p, &mut m, now_ms(), 60_000).expect("sign");
            ProviderClient::new(channels[i % channels.len()].clone())
                .register(m)
                .await
                .expect("register");
        }
    });

    // Phase 1.
    let t = Instant::now();
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        let per = a.jobs / 16;
        for _ in 0..16 {
            let submit = submit.clone();
            set.spawn(async move {
                for _ in 0..per {
                    submit().await;
                }
            });
        }
        while set.join_next().await.is_some() {}
    });
    let queued = a.jobs / 16 * 16;
    let publish_s = t.elapsed().as_secs_f64();
    let leased = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (i, p) in providers.iter().enumerate() {
            let (p, leased, calls) = (p.clone(), leased.clone(), calls.clone());
            let mut client = ProviderClient::new(channels[i % channels.len()].clone());
            let batch = a.batch;
            set.spawn(async move {
                let mut idle = 0;
                while leased.load(Ordering::Relaxed) < queued && idle < 200 {
                    let r = client
                        .take_leases(sign(
                            &p,
                            pb::TakeLeasesRequest {
                                auth: None,
                                max: batch,
                                ..Default::default()
                            },
                        ))
                        .await
                        .expect("take")
                        .into_inner();
                    calls.fetch_add(1, Ordering::Relaxed);
                    if r.leases.is_empty() {
                        idle += 1;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    } else {
                        idle = 0;
                        leased.fetch_add(r.leases.len() as u64, Ordering::Relaxed);
                    }
                }
            });
        }
        while set.join_next().await.is_some() {}
    });
    let lease_s = t.elapsed().as_secs_f64();
    let n = leased.load(Ordering::Relaxed);
    println!(
        "grpc throughput  {queued} jobs published in {publish_s:.2}s ({:.0} jobs/s); {n} leased in {lease_s:.2}s = {:.0} leases/s ({:.0} TakeLeases calls/s, batch ≤ {})",
        queued as f64 / publish_s,
        n as f64 / lease_s,
        calls.load(Ordering::Relaxed) as f64 / lease_s,
        a.batch
    );

    // Phase 2.
    let submitted: Arc<Mutex<HashMap<Hash32, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let total = a.rate * a.seconds;
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        {
            let (submitted, stop, submit) = (submitted.clone(), stop.clone(), submit.clone());
            let rate = a.rate;
            set.spawn(async move {
                let start = Instant::now();
                let mut inflight = tokio::task::JoinSet::new();
                for k in 0..total {
                    let due = start + Duration::from_secs_f64(k as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                    let (submit, submitted) = (submit.clone(), submitted.clone());
                    inflight.spawn(async move {
                        let at = Instant::now();
                        let id = submit().await;
                        submitted.lock().expect("lock").insert(id, at);
                    });
                }
                while inflight.join_next().await.is_some() {}
                tokio::time::sleep(Duration::from_millis(500)).await;
                stop.store(true, Ordering::Relaxed);
            });
        }
        for (i, p) in providers.iter().enumerate() {
            let (p, submitted, latencies, stop) = (
                p.clone(),
                submitted.clone(),
                latencies.clone(),
                stop.clone(),
            );
            let mut client = ProviderClient::new(channels[i % channels.len()].clone());
            let batch = a.batch;
            set.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let r = client
                        .take_leases(sign(
                            &p,
                            pb::TakeLeasesRequest {
                                auth: None,
                                max: batch,
                                ..Default::default()
                            },
                        ))
                        .await
                        .expect("take")
                        .into_inner();
                    if r.leases.is_empty() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    for l in r.leases {
                        let mut id = [0u8; 32];
                        id.copy_from_slice(&l.job_id);
                        // The submit may not have returned yet: wait for its record.
                        for _ in 0..1000 {
                            let at = submitted.lock().expect("lock").remove(&Hash32(id));
                            if let Some(at) = at {
                                latencies
                                    .lock()
                                    .expect("lock")
                                    .push(at.elapsed().as_secs_f64() * 1e3);
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                }
            });
        }
        while set.join_next().await.is_some() {}
    });
    let mut lat = latencies.lock().expect("lock").clone();
    lat.sort_by(|x, y| x.total_cmp(y));
    println!(
        "grpc latency     {} jobs at {}/s for {}s: {} leased; publish→lease p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        total,
        a.rate,
        a.seconds,
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
}
