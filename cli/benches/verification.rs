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
//!
//! Every market here has an arbiter (a verifier whose key the coordinator
//! names with `--arbiter-key`) that decides disputes and re-checks a
//! fraction `q` (`--recheck-rate`, 10 % by default) of agreements; its CPU
//! counts in the overhead, and the detection part also simulates a
//! verifier that agrees with every receipt without re-executing it.

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
/// The coordinator's default re-check rate of agreements.
const RECHECK: f64 = 0.1;
/// Wrong receipts an accomplice verifier agrees with, in the simulation.
const AGREED_LIES: u64 = 66;
const CHEAT: f64 = 0.05;
const JOBS: u64 = 3_000;
/// Provider stake, µIO: every lease and unsettled receipt bonds its shard's
/// required stake (≈ 40 × its escrow at p = 4.8 %) until the worst-case
/// dispute time has passed, so a provider runs as many shards at once as
/// its stake bonds — this is enough for all of these.
const STAKE: &str = "50000000000";
const STAKE_UIO: u64 = 50_000_000_000;
/// The provider's faucet, µIO (covers the stake).
const PROVIDER_FAUCET: &str = "60000000000";
/// Verifier stake, µIO: a check bonds ⌈g·(1 − q)/(q·σ)⌉ (18 × its shard's
/// escrow at q = 10 %) of free stake while it is held.
const VERIFIER_STAKE: &str = "500000000";

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
    accomplice(trials);
}

/// A verifier that agrees with every wrong receipt it is given (a cheat's
/// accomplice): each agreement is re-checked by the arbiter when the
/// coordinator's fresh draw (`is_sampled(check id, random seed, q)`, as
/// `store::checks` draws it) falls under `q`.
fn accomplice(trials: u32) {
    println!(
        "## Detection of an accomplice: q = {RECHECK}, {AGREED_LIES} agreed lies ({trials} simulated verifiers)"
    );
    let mut caught_at: Vec<u64> = Vec::new();
    for t in 0..trials {
        for j in 0..AGREED_LIES {
            let (check, nonce) = ids(t, j);
            if is_sampled(&check, &nonce.0, rate_ppm(RECHECK)) {
                caught_at.push(j + 1);
                break;
            }
        }
    }
    let detected = caught_at.len() as f64 / f64::from(trials);
    let se = (detected * (1.0 - detected) / f64::from(trials)).sqrt();
    let mean = caught_at.iter().sum::<u64>() as f64 / caught_at.len().max(1) as f64;
    println!("| | caught within {AGREED_LIES} agreed lies | agreed lies to the catch (mean) |");
    println!("|---|---|---|");
    println!("| simulation (market rules) | {detected:.4} ± {se:.4} | {mean:.1} |");
    println!(
        "| closed form 1 − (1 − q)^m | {:.4} | {:.1} (1/q, untruncated) |\n",
        1.0 - escape_probability(RECHECK, 1.0, AGREED_LIES),
        1.0 / RECHECK
    );
}

/// A coordinator for these runs, with an arbiter: (coordinator, URL,
/// arbiter process).
fn market(root: &Path, extra: &[&str]) -> (Proc, String, Proc) {
    let home = root.join("arbiter");
    std::fs::create_dir_all(&home).expect("arbiter home");
    let key = assay_protocol::NodeKey::load_or_create(&home.join("node.key"))
        .expect("arbiter key")
        .id()
        .to_string();
    let mut args = vec!["--arbiter-key", key.as_str()];
    args.extend_from_slice(extra);
    let (c, url) = coordinator(&root.join("coordinator"), "127.0.0.1:0", &args);
    let arbiter = verifier(&url, &home, &["--threads", "1", "--poll-ms", "500"]);
    (c, url, arbiter)
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
    let (_c, url, arbiter) = market(
        root,
        &[
            "--epoch-ms",
            "500",
            "--settlement-delay-ms",
            "2000",
            // Receipts settle after the worst-case dispute (two check
            // deadlines): keep the run short.
            "--check-ttl-ms",
            "10000",
        ],
    );
    let renter = root.join("renter");
    let pid = node_id(&root.join("p"), &url);
    let p = provider_with(
        &url,
        &root.join("p"),
        w.price,
        2,
        &[
            "--poll-ms",
            "50",
            "--stake",
            STAKE,
            "--faucet",
            PROVIDER_FAUCET,
        ],
    );
    let v = verifier(
        &url,
        &root.join("v"),
        &[
            "--threads",
            "1",
            "--poll-ms",
            "500",
            "--stake",
            VERIFIER_STAKE,
        ],
    );
    wait_staked(&renter, &url, &pid, STAKE_UIO);
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
    // The verifier's side is the verifier and the arbiter together.
    let checkers = |f: &dyn Fn(u32) -> f64| f(v.0.id()) + f(arbiter.0.id());
    let (p0, v0, t0) = (cpu_s(p.0.id()), checkers(&cpu_s), Instant::now());
    std::thread::sleep(Duration::from_secs(5));
    let idle_s = t0.elapsed().as_secs_f64();
    let (p_idle, v_idle) = (
        (cpu_s(p.0.id()) - p0) / idle_s,
        (checkers(&cpu_s) - v0) / idle_s,
    );
    let (p1, v1, a1, t1) = (
        cpu_s(p.0.id()),
        checkers(&cpu_s),
        cpu_s(arbiter.0.id()),
        Instant::now(),
    );
    let jobs = (w.publish)(&renter, &url, root, false);
    let all = wait_settled(&renter, &url, &jobs, t1);
    let wall = t1.elapsed().as_secs_f64();
    let (p_cpu, v_cpu, a_cpu) = (
        cpu_s(p.0.id()) - p1,
        checkers(&cpu_s) - v1,
        cpu_s(arbiter.0.id()) - a1,
    );
    let n = shards(&all).count();
    let checked = shards(&all)
        .filter(|x| x["verification"]["state"] == "verified")
        .count();
    let rechecked = shards(&all)
        .filter(|x| {
            x["verification"]["verdicts"]
                .as_array()
                .is_some_and(|v| v.iter().any(|d| d["role"] == "recheck"))
        })
        .count();
    let per = |cpu: f64, k: usize| 1e3 * cpu / k.max(1) as f64;
    println!(
        "| receipts | checked | rate realised | re-checked by the arbiter | provider CPU s (ms/job) | verifier + arbiter CPU s (ms/check) | of which arbiter s | overhead (checkers / provider) | same, idle polling taken out | wall s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let (p_busy, v_busy) = (p_cpu - p_idle * wall, v_cpu - v_idle * wall);
    println!(
        "| {n} | {checked} | {:.4} | {rechecked} | {p_cpu:.2} ({:.1}) | {v_cpu:.2} ({:.1}) | {a_cpu:.2} | **{:.2} %** | {:.2} % | {wall:.1} |",
        checked as f64 / n as f64,
        per(p_cpu, n),
        per(v_cpu, checked + rechecked),
        100.0 * v_cpu / p_cpu,
        100.0 * v_busy / p_busy,
    );
    println!(
        "idle polling: provider {:.1} ms/s, verifier + arbiter {:.1} ms/s of CPU\n",
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
    let (_c, url, _arbiter) = market(
        root,
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
        &[
            "--poll-ms",
            "50",
            "--cheat-rate",
            "0.05",
            "--stake",
            STAKE,
            "--faucet",
            PROVIDER_FAUCET,
        ],
    );
    let _v1 = verifier(&url, &root.join("v1"), &["--stake", VERIFIER_STAKE]);
    let _v2 = verifier(&url, &root.join("v2"), &["--stake", VERIFIER_STAKE]);
    wait_staked(&renter, &url, &pid, STAKE_UIO);
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
                st == "sampled" || st == "disputed" || st == "rechecking" || st == "pending"
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
        if stake < STAKE_UIO && open == 0 {
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
            && stake == STAKE_UIO
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
