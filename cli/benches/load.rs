//! The market under load: 10,000 jobs through a real coordinator and real
//! providers while 1,000 simulated providers heartbeat, with each job's
//! publish→settled time and the coordinator's memory and CPU.
//!
//! ```text
//! cargo bench -p assay-cli --bench load -- [--jobs 10000] [--rate 60]
//!     [--minilm-every 50] [--sim-providers 1000] [--providers 2] [--slots 2]
//!     [--postgres]
//! ```
//!
//! Every node is a separate `assay` process on loopback except the
//! simulated providers and the renter, which are async tasks of this
//! bench speaking gRPC: a coordinator (SQLite in a temporary directory, or
//! PostgreSQL from `ASSAY_TEST_POSTGRES_URL` with `--postgres`),
//! `--providers` real providers (`--slots` each, one thread per run), and
//! `--sim-providers` registered keys that heartbeat every 5 s (the
//! coordinator's heartbeat interval) at a price no job pays, so they load
//! the coordinator without taking work. The renter publishes `--jobs`
//! one-shard jobs at `--rate` per second: every `--minilm-every`-th embeds
//! 8 sentences with MiniLM (the model from `assay model fetch`; without it
//! all jobs are tiny and the report says so), the others run the `hello`
//! guest (a few WASI calls and two small outputs). Jobs are unverified and
//! settle 500 ms after their receipt.
//!
//! Publish→settled is read from the coordinator's database (the job's
//! creation to its receipt's settlement, both on the coordinator's clock).
//! The coordinator's resident memory (VmRSS) and CPU time (utime + stime)
//! are sampled from `/proc` every second. All processes share this
//! machine's cores, as the report says.

#[path = "../tests/all/common.rs"]
mod common;
#[path = "../src/model_store.rs"]
mod model_store;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use assay_proto::auth::Signer;
use assay_proto::pb;
use assay_proto::pb::provider_client::ProviderClient;
use assay_proto::pb::renter_client::RenterClient;
use assay_protocol::{Hash32, JobSpec, NodeKey};
use common::*;

const SENTENCES: &str = include_str!("../src/demo_sentences.txt");

struct Args {
    jobs: u64,
    rate: u64,
    minilm_every: u64,
    sim_providers: u64,
    providers: u32,
    slots: u32,
    postgres: bool,
}

fn args() -> Args {
    let mut a = Args {
        jobs: 10_000,
        rate: 60,
        minilm_every: 50,
        sim_providers: 1_000,
        providers: 2,
        slots: 2,
        postgres: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = || -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--jobs" => a.jobs = num(),
            "--rate" => a.rate = num().max(1),
            "--minilm-every" => a.minilm_every = num(),
            "--sim-providers" => a.sim_providers = num(),
            "--providers" => a.providers = num() as u32,
            "--slots" => a.slots = num() as u32,
            "--postgres" => a.postgres = true,
            "--bench" => {}
            other => panic!("unknown argument {other} (see the bench's doc comment)"),
        }
    }
    a
}

fn signed<M: assay_proto::auth::Signed>(key: &Signer, mut m: M) -> M {
    assay_proto::auth::sign(key, &mut m, assay_proto::now_ms(), 60_000).expect("sign");
    m
}

/// Resident memory (bytes) and CPU time (ms) of process `pid`.
fn usage(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (u64, u64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    // Clock ticks are 100 per second on Linux.
    Some((rss_kb * 1024, (utime + stime) * 10))
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Rows of one integer column pair from the coordinator's database.
fn db_pairs(data: &Path, pg_url: Option<&str>, sql: &str) -> Vec<(i64, i64)> {
    use assay_coordinator::sql::Value;
    db_rows(data, pg_url, sql)
        .into_iter()
        .filter_map(|r| match (r.first(), r.get(1)) {
            (Some(Value::Int(a)), Some(Value::Int(b))) => Some((*a, *b)),
            _ => None,
        })
        .collect()
}

struct Kind {
    component: Vec<u8>,
    inputs: Vec<(String, Vec<u8>)>,
    spec: JobSpec,
}

fn main() {
    let a = args();
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let data = root.join("coordinator");
    let stores = if a.postgres {
        stores("load")
    } else {
        Vec::new()
    };
    let pg = stores.iter().find(|s| s.name == "postgres");
    if a.postgres && pg.is_none() {
        panic!("--postgres needs ASSAY_TEST_POSTGRES_URL");
    }
    let mut flags: Vec<&str> = pg
        .map(|s| s.flags.iter().map(String::as_str).collect())
        .unwrap_or_default();
    flags.extend([
        "--heartbeat-ms",
        "5000",
        "--lease-ttl-ms",
        "30000",
        "--settlement-delay-ms",
        "500",
        "--key-requests-per-second",
        "0",
        "--no-challenges",
    ]);
    let (coordinator, url) = coordinator(&data, "127.0.0.1:0", &flags);
    let pid = coordinator.0.id();
    let _providers: Vec<Proc> = (0..a.providers)
        .map(|i| provider(&url, &root.join(format!("p{i}")), 10, a.slots))
        .collect();

    let model = if a.minilm_every > 0 {
        match model_store::load() {
            Ok(m) => Some(m),
            Err(e) => {
                println!("SKIPPED the MiniLM jobs ({e}): every job is tiny");
                None
            }
        }
    } else {
        None
    };
    let tiny = Kind {
        component: assay_guests::Guest::Hello.bytes().to_vec(),
        inputs: Vec::new(),
        spec: JobSpec {
            fuel: 50_000_000,
            work_budget: 10_000_000,
            memory_bytes: 64 << 20,
            gpu_memory_bytes: 64 << 20,
            ..JobSpec::default()
        },
    };
    let minilm = model.as_ref().map(|m| {
        let text: Vec<&str> = SENTENCES.lines().cycle().take(8).collect();
        let mut inputs: Vec<(String, Vec<u8>)> = m
            .files
            .iter()
            .map(|(n, b)| (n.to_string(), b.clone()))
            .collect();
        inputs.push(("text".into(), text.join("\n").into_bytes()));
        let mut spec = JobSpec {
            fuel: 20_000_000_000,
            work_budget: 20_000_000_000,
            ..JobSpec::default()
        };
        spec.params.insert("batch_size".into(), "8".into());
        Kind {
            component: assay_guests::Guest::MinilmEmbed.bytes().to_vec(),
            inputs,
            spec,
        }
    });

    // The coordinator's memory and CPU, sampled every second from here on.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let (mut peak, mut first, mut last) = (0u64, None, 0u64);
            let started = Instant::now();
            while sampling.load(Ordering::Relaxed) {
                if let Some((rss, cpu)) = usage(pid) {
                    peak = peak.max(rss);
                    first.get_or_insert(cpu);
                    last = cpu;
                }
                std::thread::sleep(Duration::from_millis(1_000));
            }
            (peak, last - first.unwrap_or(last), started.elapsed())
        })
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let stop = Arc::new(AtomicBool::new(false));
    let beats = Arc::new(AtomicU64::new(0));
    let beat_errors = Arc::new(AtomicU64::new(0));
    let (published_ms, publish_errors) = rt.block_on(async {
        let ch = assay_proto::client::channel(&url).expect("channel");
        // The simulated providers: registered at a price no job pays, then
        // a heartbeat each every 5 s, spread over the interval.
        let mut sims = Vec::new();
        for i in 0..a.sim_providers {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            seed[31] = 0xAA;
            let key = assay_proto::client::signer(&ch, NodeKey::from_seed(seed))
                .await
                .expect("signer");
            let mut pc = ProviderClient::new(ch.clone());
            pc.register(signed(
                &key,
                pb::RegisterRequest {
                    hardware: Some(pb::Hardware {
                        cpu_cores: 8,
                        memory_bytes: 32 << 30,
                        gpus: vec![],
                    }),
                    price: 1_000_000_000,
                    slots: 4,
                    version: "load-bench".into(),
                    ..Default::default()
                },
            ))
            .await
            .expect("register a simulated provider");
            let (stop, beats, errors) = (stop.clone(), beats.clone(), beat_errors.clone());
            let offset = Duration::from_millis(5_000 * i / a.sim_providers.max(1));
            sims.push(tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                let mut every = tokio::time::interval(Duration::from_secs(5));
                while !stop.load(Ordering::Relaxed) {
                    every.tick().await;
                    let req = signed(
                        &key,
                        pb::HeartbeatRequest {
                            free_slots: 4,
                            ..Default::default()
                        },
                    );
                    match pc.heartbeat(req).await {
                        Ok(_) => beats.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
        println!(
            "{} simulated providers registered; publishing {} jobs at {}/s",
            a.sim_providers, a.jobs, a.rate
        );

        let renter = assay_proto::client::signer(&ch, NodeKey::from_seed([0xBB; 32]))
            .await
            .expect("renter");
        let mut rc = RenterClient::new(ch.clone());
        rc.faucet(signed(
            &renter,
            pb::FaucetRequest {
                amount: 1_000_000_000_000,
                ..Default::default()
            },
        ))
        .await
        .expect("faucet");
        let mut kinds = vec![&tiny];
        kinds.extend(minilm.as_ref());
        let mut requests = Vec::new();
        for kind in &kinds {
            let component: Arc<[u8]> = kind.component.clone().into();
            assay_proto::client::upload(&ch, &renter, component.clone())
                .await
                .expect("upload the component");
            let mut inputs = Vec::new();
            for (name, bytes) in &kind.inputs {
                let b: Arc<[u8]> = bytes.clone().into();
                assay_proto::client::upload(&ch, &renter, b)
                    .await
                    .expect("upload an input");
                inputs.push(pb::BlobRef {
                    name: name.clone(),
                    hash: Hash32::of(bytes).0.to_vec(),
                    size: bytes.len() as u64,
                });
            }
            requests.push(pb::SubmitJobRequest {
                component_hash: Hash32::of(&component).0.to_vec(),
                component_size: component.len() as u64,
                inputs,
                spec: Some(pb::JobSpec::from(&kind.spec)),
                shards: 1,
                max_price: 10,
                unverified: true,
                ..Default::default()
            });
        }
        let started = Instant::now();
        let mut errors = 0u64;
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / a.rate));
        let mut in_flight = Vec::new();
        for n in 0..a.jobs {
            tick.tick().await;
            let which = if minilm.is_some() && a.minilm_every > 0 && n % a.minilm_every == 0 {
                1
            } else {
                0
            };
            let req = signed(&renter, requests[which].clone());
            let mut rc = rc.clone();
            in_flight.push(tokio::spawn(
                async move { rc.submit_job(req).await.is_ok() },
            ));
        }
        for f in in_flight {
            if !f.await.unwrap_or(false) {
                errors += 1;
            }
        }
        (started.elapsed().as_millis() as u64, errors)
    });

    // Wait for every job to settle, sampling the coordinator.
    let pg_url = pg.and_then(|s| s.flags.get(1).cloned());
    let expected = (a.jobs - publish_errors) as i64;
    let wall = Instant::now();
    let (mut settled, mut progress_at) = (0i64, Instant::now());
    loop {
        let n = db_pairs(
            &data,
            pg_url.as_deref(),
            "SELECT COUNT(*), 0 FROM receipts WHERE settled_at IS NOT NULL",
        )
        .first()
        .map_or(0, |p| p.0);
        if n > settled {
            (settled, progress_at) = (n, Instant::now());
        }
        // Done, or stuck: nothing settled for two minutes (reported below).
        if n >= expected || progress_at.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    stop.store(true, Ordering::Relaxed);
    sampling.store(false, Ordering::Relaxed);
    let (peak_rss, cpu_ms, sampled) = sampler.join().expect("sampler");
    let total_s = (published_ms as f64 + wall.elapsed().as_millis() as f64) / 1000.0;
    // Publish→settled of the jobs whose component has `size` bytes (`=`)
    // or not (`<>`).
    let latencies = |op: &str| {
        let mut lat: Vec<u64> = db_pairs(
            &data,
            pg_url.as_deref(),
            &format!(
                "SELECT j.created_at, MAX(r.settled_at) FROM jobs j JOIN receipts r ON r.job_id = j.id \
                 WHERE r.settled_at IS NOT NULL AND j.component_size {op} {} \
                 GROUP BY j.id, j.created_at",
                tiny.component.len()
            ),
        )
        .iter()
        .map(|(c, s)| u64::try_from(s - c).unwrap_or(0))
        .collect();
        lat.sort_unstable();
        lat
    };
    let (tiny_lat, minilm_lat) = (latencies("="), latencies("<>"));
    let mut lat: Vec<u64> = tiny_lat.iter().chain(&minilm_lat).copied().collect();
    lat.sort_unstable();
    let minilm_jobs = if minilm.is_some() && a.minilm_every > 0 {
        a.jobs.div_ceil(a.minilm_every)
    } else {
        0
    };
    println!();
    println!("| what | value |");
    println!("| --- | --- |");
    println!(
        "| jobs | {} published in {:.1} s ({} MiniLM, {} tiny; {} refused) |",
        a.jobs,
        published_ms as f64 / 1000.0,
        minilm_jobs,
        a.jobs - minilm_jobs,
        publish_errors
    );
    println!(
        "| settled | {} in {:.1} s from the first publish{} |",
        lat.len(),
        total_s,
        if (lat.len() as i64) < expected {
            format!(", {} never settled", expected - lat.len() as i64)
        } else {
            String::new()
        }
    );
    println!(
        "| publish→settled p50 / p99 / max | {} / {} / {} ms |",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0)
    );
    for (kind, l) in [("tiny", &tiny_lat), ("MiniLM", &minilm_lat)] {
        if !l.is_empty() {
            println!(
                "| {kind} jobs: publish→settled p50 / p99 | {} / {} ms |",
                percentile(l, 0.5),
                percentile(l, 0.99)
            );
        }
    }
    println!(
        "| simulated providers | {} ({} heartbeats, {} refused) |",
        a.sim_providers,
        beats.load(Ordering::Relaxed),
        beat_errors.load(Ordering::Relaxed)
    );
    println!("| real providers | {} × {} slots |", a.providers, a.slots);
    println!(
        "| coordinator peak RSS | {:.0} MiB |",
        peak_rss as f64 / (1 << 20) as f64
    );
    println!(
        "| coordinator CPU | {:.1} s in {:.1} s ({:.0} % of one core on average) |",
        cpu_ms as f64 / 1000.0,
        sampled.as_secs_f64(),
        100.0 * cpu_ms as f64 / sampled.as_millis().max(1) as f64
    );
    println!(
        "| store | {} |",
        if pg.is_some() { "PostgreSQL" } else { "SQLite" }
    );
    println!(
        "| cores | {} shared by every process |",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
