//! Verification benchmark: what spot checks cost and what they catch.
//!
//! ```text
//! cargo bench -p assay-cli --bench verification [-- --receipts 3000 --trials 20000
//!     --only detection|mlp|minilm|cheater --minilm-jobs 4 --minilm-rate 0.048]
//! ```
//!
//! 1. **Detection** of a provider cheating on `f` = 5 % of its jobs at the
//!    default rate `p` = 4.8 %, over 3,000 jobs: a Monte Carlo over `--trials`
//!    providers with the market's own rules — receipts drawn with
//!    `assay_protocol::verification::is_sampled` under fresh epoch seeds,
//!    cheats chosen by the provider's `--cheat-rate` rule — beside the
//!    closed form `1 − (1 − p·f)^n`.
//! 2. **Overhead** on real processes on loopback (coordinator on SQLite, one
//!    provider, one verifier, both on 1 CPU thread): `--receipts` MLP shards
//!    at the default rate; the CPU time (user + system, from /proc) each
//!    daemon spent between publishing and the last settlement, and their
//!    ratio — the verification overhead. The idle cost of each daemon
//!    (polling) over the same wall time is measured first and shown.
//! 3. **A real cheater**: a provider with `--cheat-rate 0.05` alone on the
//!    market at the default `p`: how many receipts it committed before it was
//!    caught (one sample of the geometric law with mean `1/(p·f)` = 400).

#[path = "../tests/all/common.rs"]
mod common;
#[path = "../src/model_store.rs"]
mod model_store;

use std::path::Path;
use std::time::{Duration, Instant};

use assay_protocol::Hash32;
use assay_protocol::verification::{escape_probability, is_sampled};
use assay_provider::cheat::Cheat;
use common::*;
use serde_json::Value;

/// The coordinator's default sampling rate.
const RATE: f64 = 0.048;
const CHEAT: f64 = 0.05;
const JOBS: u64 = 3_000;
/// Provider stake: enough for the jobs here at p = 5 % (38 × their escrow).
const STAKE: &str = "10000000";

struct Args {
    receipts: u32,
    trials: u32,
    /// Only these parts: detection, mlp, minilm, cheater (all when empty).
    only: Vec<String>,
    /// The MiniLM workload's jobs (250 shards each) and sampling rate (with
    /// rate 1 every shard is re-run: a like-for-like check of the cost of a
    /// check against the cost of a job).
    minilm_jobs: u32,
    minilm_rate: String,
}

fn args() -> Args {
    let mut a = Args {
        receipts: 3_000,
        trials: 20_000,
        only: Vec::new(),
        minilm_jobs: 4,
        minilm_rate: "0.048".into(),
    };
    let argv: Vec<String> = std::env::args().collect();
    for w in argv.windows(2) {
        match w[0].as_str() {
            "--receipts" => a.receipts = w[1].parse().unwrap_or(a.receipts),
            "--trials" => a.trials = w[1].parse().unwrap_or(a.trials),
            "--only" => a.only.push(w[1].clone()),
            "--minilm-jobs" => a.minilm_jobs = w[1].parse().unwrap_or(a.minilm_jobs),
            "--minilm-rate" => a.minilm_rate = w[1].clone(),
            _ => {}
        }
    }
    a
}

fn rate_ppm(p: f64) -> u32 {
    (p * 1e6).round() as u32
}

/// A receipt id and a lease id for trial `t`, job `j` (distinct for all).
fn ids(t: u32, j: u64) -> (Hash32, Hash32) {
    let mut b = [0u8; 13];
    b[..4].copy_from_slice(&t.to_le_bytes());
    b[4..12].copy_from_slice(&j.to_le_bytes());
    let receipt = Hash32::of(&b);
    b[12] = 1;
    (receipt, Hash32::of(&b))
}

fn detection(trials: u32) {
    println!(
        "## Detection: f = {CHEAT}, p = {RATE}, n = {JOBS} jobs ({trials} simulated providers)"
    );
    let cheat = Cheat {
        rate: CHEAT,
        inflate_work: 0,
    };
    let epoch_jobs = 50; // receipts sharing one epoch seed
    let mut caught_at: Vec<u64> = Vec::new();
    let started = Instant::now();
    for t in 0..trials {
        let mut seed = [0u8; 32];
        for j in 0..JOBS {
            if j % epoch_jobs == 0 {
                let mut s = Vec::from(t.to_le_bytes());
                s.extend_from_slice(&j.to_le_bytes());
                seed = Hash32::of(&s).0;
            }
            let (receipt, lease) = ids(t, j);
            if cheat.chosen(&lease) && is_sampled(&receipt, &seed, rate_ppm(RATE)) {
                caught_at.push(j + 1);
                break;
            }
        }
    }
    let detected = caught_at.len() as f64 / f64::from(trials);
    let formula = 1.0 - escape_probability(RATE, CHEAT, JOBS);
    let mean = caught_at.iter().sum::<u64>() as f64 / caught_at.len().max(1) as f64;
    let se = (detected * (1.0 - detected) / f64::from(trials)).sqrt();
    println!(
        "| | detected within {JOBS} jobs | jobs to the first detection (mean, of those caught) |"
    );
    println!("|---|---|---|");
    println!(
        "| simulation (market rules) | {:.4} ± {:.4} | {mean:.0} |",
        detected, se
    );
    println!(
        "| closed form 1 − (1 − p·f)^n | {formula:.4} | {:.0} (1/(p·f), untruncated) |",
        1.0 / (RATE * CHEAT)
    );
    println!(
        "target ≥ 0.999 within 3,000 jobs; {:.1} s\n",
        started.elapsed().as_secs_f64()
    );
}

/// User + system CPU seconds of a running process, from /proc.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// `receipts` MLP shards in jobs of 250 — or, with `warm`, one shard
/// checked for sure (so both daemons have the blobs and the compiled
/// component before anything is measured).
fn publish_all(renter: &Path, url: &str, dir: &Path, receipts: u32, warm: bool) -> Vec<String> {
    let per_job = if warm { 1 } else { 250u32 };
    // d 128, hidden 512, 16 classes, 4 rows per shard.
    let (component, model, x) = mlp_job(dir, 128, 512, 16, 250 * 4);
    let shards = per_job.to_string();
    let jobs = if warm { 1 } else { receipts.div_ceil(per_job) };
    let rate = if warm { "1" } else { "0.048" };
    (0..jobs)
        .map(|_| {
            publish(
                renter,
                url,
                &[
                    &component,
                    "--input",
                    &model,
                    "--input",
                    &x,
                    "--shards",
                    &shards,
                    "--max-price",
                    "100",
                    "--fuel",
                    "200000000",
                    "--work-budget",
                    "200000000",
                    "--verify-rate",
                    rate,
                ],
            )
        })
        .collect()
}

fn statuses(home: &Path, url: &str, jobs: &[String]) -> Vec<Value> {
    jobs.iter()
        .map(|j| json(&ok(assay(home, url, &["job", "status", j, "--json"]))))
        .collect()
}

fn shards(all: &[Value]) -> impl Iterator<Item = &Value> {
    all.iter()
        .flat_map(|s| s["shards"].as_array().map(Vec::as_slice).unwrap_or(&[]))
}

/// A workload: its name, the provider's price, and how to publish it.
struct Workload<'a> {
    name: &'a str,
    price: u64,
    /// (renter, coordinator, dir, warm-up): the jobs published.
    publish: &'a dyn Fn(&Path, &str, &Path, bool) -> Vec<String>,
}

fn wait_settled(renter: &Path, url: &str, jobs: &[String], since: Instant) -> Vec<Value> {
    loop {
        let all = statuses(renter, url, jobs);
        if all.iter().all(|s| s["state"] == "settled") {
            return all;
        }
        assert!(
            since.elapsed() < Duration::from_secs(1800),
            "not settled in 30 min"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn overhead(w: &Workload<'_>) {
    println!("### {} (real processes, 1 CPU thread each)", w.name);
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url) = coordinator(
        &root.join("coordinator"),
        "127.0.0.1:0",
        &["--epoch-ms", "500", "--settlement-delay-ms", "2000"],
    );
    let renter = root.join("renter");
    let pid = node_id(&root.join("p"), &url);
    let p = provider_with(
        &url,
        &root.join("p"),
        w.price,
        2,
        &["--poll-ms", "50", "--stake", STAKE],
    );
    let v = verifier(
        &url,
        &root.join("v"),
        &["--threads", "1", "--poll-ms", "500"],
    );
    wait_staked(&renter, &url, &pid, 10_000_000);
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", "1000000000000"],
    ));
    // Warm-up: one shard run and checked, so the one-time costs (downloads,
    // compiling the component) are not counted — a verifier runs for days.
    let warm = (w.publish)(&renter, &url, root, true);
    wait_settled(&renter, &url, &warm, Instant::now());
    // Idle: what the daemons burn polling, over a few seconds.
    let (p0, v0, t0) = (cpu_s(p.0.id()), cpu_s(v.0.id()), Instant::now());
    std::thread::sleep(Duration::from_secs(5));
    let idle_s = t0.elapsed().as_secs_f64();
    let (p_idle, v_idle) = (
        (cpu_s(p.0.id()) - p0) / idle_s,
        (cpu_s(v.0.id()) - v0) / idle_s,
    );
    let (p1, v1, t1) = (cpu_s(p.0.id()), cpu_s(v.0.id()), Instant::now());
    let jobs = (w.publish)(&renter, &url, root, false);
    let all = wait_settled(&renter, &url, &jobs, t1);
    let wall = t1.elapsed().as_secs_f64();
    let (p_cpu, v_cpu) = (cpu_s(p.0.id()) - p1, cpu_s(v.0.id()) - v1);
    let n = shards(&all).count();
    let checked = shards(&all)
        .filter(|x| x["verification"]["state"] == "verified")
        .count();
    let per = |cpu: f64, k: usize| 1e3 * cpu / k.max(1) as f64;
    println!(
        "| receipts | checked | rate realised | provider CPU s (ms/job) | verifier CPU s (ms/check) | overhead (verifier / provider) | same, idle polling taken out | wall s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let (p_busy, v_busy) = (p_cpu - p_idle * wall, v_cpu - v_idle * wall);
    println!(
        "| {n} | {checked} | {:.4} | {p_cpu:.2} ({:.1}) | {v_cpu:.2} ({:.1}) | **{:.2} %** | {:.2} % | {wall:.1} |",
        checked as f64 / n as f64,
        per(p_cpu, n),
        per(v_cpu, checked),
        100.0 * v_cpu / p_cpu,
        100.0 * v_busy / p_busy,
    );
    println!(
        "idle polling: provider {:.1} ms/s, verifier {:.1} ms/s of CPU\n",
        1e3 * p_idle,
        1e3 * v_idle,
    );
}

/// MiniLM: `jobs` jobs of 250 shards, 4 sentences each (split by line).
fn minilm(renter: &Path, url: &str, dir: &Path, jobs: u32, rate: &str, warm: bool) -> Vec<String> {
    let (jobs, shards, lines_per_job, rate) = if warm {
        (1, "1", 4, "1")
    } else {
        (jobs, "250", 1000, rate)
    };
    let model = match model_store::load() {
        Ok(m) => m,
        Err(e) => panic!("the MiniLM workload needs the model: {e} (run `assay model fetch`)"),
    };
    let mut inputs: Vec<String> = Vec::new();
    for (name, bytes) in &model.files {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("model file");
        inputs.push(format!("{name}={}", p.display()));
    }
    let component = dir.join("minilm.wasm");
    std::fs::write(&component, assay_guests::Guest::MinilmEmbed.bytes()).expect("component");
    let sentences = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/minilm-embed/testdata/sentences.txt"),
    )
    .expect("sentences");
    let lines: Vec<&str> = sentences.lines().collect();
    (0..jobs)
        .map(|j| {
            let text: String = (0..lines_per_job)
                .map(|i| format!("{}\n", lines[(i + j as usize * 7) % lines.len()]))
                .collect();
            let path = dir.join(format!("text{j}.txt"));
            std::fs::write(&path, text).expect("text");
            let text = format!("text={}", path.display());
            let component = component.to_string_lossy().to_string();
            let mut args = vec![component.as_str(), "--input", text.as_str()];
            for i in &inputs {
                args.extend(["--input", i.as_str()]);
            }
            args.extend([
                "--split-input",
                "text",
                "--shards",
                shards,
                "--verify-rate",
                rate,
                "--max-price",
                "1",
                "--fuel",
                "20000000000",
                "--work-budget",
                "100000000000",
            ]);
            publish(renter, url, &args)
        })
        .collect()
}

fn real_cheater(receipts: u32) {
    println!("## A real cheater: --cheat-rate {CHEAT}, p = {RATE}, alone on the market");
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url) = coordinator(
        &root.join("coordinator"),
        "127.0.0.1:0",
        &[
            "--verify-rate",
            "0.048",
            "--epoch-ms",
            "500",
            "--settlement-delay-ms",
            "600000",
        ],
    );
    let renter = root.join("renter");
    let pid = node_id(&root.join("p"), &url);
    let _p = provider_with(
        &url,
        &root.join("p"),
        10,
        2,
        &["--poll-ms", "50", "--cheat-rate", "0.05", "--stake", STAKE],
    );
    let _v1 = verifier(&url, &root.join("v1"), &[]);
    let _v2 = verifier(&url, &root.join("v2"), &[]);
    wait_staked(&renter, &url, &pid, 10_000_000);
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", "1000000000000"],
    ));
    let jobs = publish_all(&renter, &url, root, receipts, false);
    let started = Instant::now();
    // Until the cheater is caught (its stake drops) and its audits end, or
    // every shard is done without a catch.
    loop {
        let all = statuses(&renter, &url, &jobs);
        let stake = account(&renter, &url, Some(&pid))["stake"]
            .as_u64()
            .unwrap_or(0);
        let queued = shards(&all).filter(|x| x["state"] == "queued").count();
        let open = shards(&all)
            .filter(|x| {
                let st = &x["verification"]["state"];
                st == "sampled" || st == "disputed" || st == "pending"
            })
            .count();
        let ran: usize = shards(&all)
            .map(|x| {
                x["rejected_receipts"].as_array().map_or(0, Vec::len)
                    + usize::from(x["provider"].as_str() == Some(pid.as_str()))
            })
            .sum();
        let rejected: usize = shards(&all)
            .map(|x| x["rejected_receipts"].as_array().map_or(0, Vec::len))
            .sum();
        if stake < 10_000_000 && open == 0 {
            println!(
                "caught: the cheater committed {ran} receipts before it was suspended \
                 (expected 1/(p·f) = {:.0} on average; geometric, so any single run varies widely); \
                 {rejected} of its receipts were proven wrong (the sampled one and the audited rest), {queued} shards wait for an honest provider; {:.0} s",
                1.0 / (RATE * CHEAT),
                started.elapsed().as_secs_f64()
            );
            return;
        }
        if queued == 0
            && open == 0
            && stake == 1_000_000
            && all.iter().all(|s| s["state"] != "running")
        {
            println!(
                "not caught in {ran} receipts (probability {:.4})",
                escape_probability(RATE, CHEAT, ran as u64)
            );
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "no end in 30 min"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn main() {
    let a = args();
    println!(
        "machine: {} cores; {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::process::Command::new("uname")
            .arg("-m")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    );
    let on = |part: &str| a.only.is_empty() || a.only.iter().any(|o| o == part);
    if on("detection") {
        detection(a.trials);
    }
    println!("## Overhead");
    let receipts = a.receipts;
    if on("mlp") {
        overhead(&Workload {
            name: &format!(
                "{receipts} MLP shards (tiny: the per-job fixed costs dominate), p = {RATE}"
            ),
            price: 10,
            publish: &|r, u, d, warm| publish_all(r, u, d, receipts, warm),
        });
    }
    if on("minilm") {
        let (jobs, rate) = (a.minilm_jobs, a.minilm_rate.as_str());
        overhead(&Workload {
            name: &format!(
                "{} MiniLM shards of 4 sentences (compute dominates), p = {rate}",
                jobs * 250
            ),
            price: 1,
            publish: &|r, u, d, warm| minilm(r, u, d, jobs, rate, warm),
        });
    }
    if on("cheater") {
        real_cheater(a.receipts);
    }
}
