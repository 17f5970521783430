//! Verification benchmark: what spot checks cost and what they catch.
//!
//! ```text
//! cargo bench -p assay-cli --bench verification [-- --receipts 3000 --trials 2000]
//! ```
//!
//! 1. **Detection** of a provider cheating on `f` = 5 % of its jobs at the
//!    default rate `p` = 5 %, over 3,000 jobs: a Monte Carlo over `--trials`
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
//!    market at `p` = 5 %: how many receipts it committed before it was
//!    caught (one sample of the geometric law with mean `1/(p·f)` = 400).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use assay_guests::safetensors::{Entry, encode, f32_le};
use assay_protocol::Hash32;
use assay_protocol::verification::{escape_probability, is_sampled};
use assay_provider::cheat::Cheat;
use common::*;
use serde_json::Value;

const RATE: f64 = 0.05;
const CHEAT: f64 = 0.05;
const JOBS: u64 = 3_000;

struct Args {
    receipts: u32,
    trials: u32,
}

fn args() -> Args {
    let mut a = Args {
        receipts: 3_000,
        trials: 20_000,
    };
    let argv: Vec<String> = std::env::args().collect();
    for w in argv.windows(2) {
        match w[0].as_str() {
            "--receipts" => a.receipts = w[1].parse().unwrap_or(a.receipts),
            "--trials" => a.trials = w[1].parse().unwrap_or(a.trials),
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

/// An MLP job of `shards` shards, 4 rows each (d 128, hidden 512, 16 classes).
fn mlp(dir: &Path, shards: u32) -> (String, String, String) {
    let (d, h, c) = (128usize, 512usize, 16usize);
    let values = |n: usize, seed: usize| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    };
    let (w1, b1, w2, b2) = (
        f32_le(&values(h * d, 1)),
        f32_le(&values(h, 2)),
        f32_le(&values(c * h, 3)),
        f32_le(&values(c, 4)),
    );
    let entry = |name, shape: &'static [u64], data| Entry {
        name,
        dtype: "F32",
        shape,
        data,
    };
    let model = encode(
        &[
            entry("fc1.weight", &[512, 128], &w1),
            entry("fc1.bias", &[512], &b1),
            entry("fc2.weight", &[16, 512], &w2),
            entry("fc2.bias", &[16], &b2),
        ],
        &[],
    );
    std::fs::write(dir.join("mlp.wasm"), assay_guests::Guest::Mlp.bytes()).expect("component");
    std::fs::write(dir.join("model.safetensors"), model).expect("model");
    std::fs::write(
        dir.join("x.bin"),
        f32_le(&values(shards as usize * 4 * d, 5)),
    )
    .expect("x");
    (
        dir.join("mlp.wasm").to_string_lossy().to_string(),
        format!("model={}", dir.join("model.safetensors").display()),
        format!("x={}", dir.join("x.bin").display()),
    )
}

fn publish_all(renter: &Path, url: &str, dir: &Path, receipts: u32) -> Vec<String> {
    let per_job = 250u32;
    let (component, model, x) = mlp(dir, per_job);
    let shards = per_job.to_string();
    (0..receipts.div_ceil(per_job))
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

fn overhead(receipts: u32) {
    println!(
        "## Overhead: {receipts} MLP shards at p = {RATE} (real processes, 1 CPU thread each)"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_c, url) = coordinator(
        &root.join("coordinator"),
        "127.0.0.1:0",
        &[
            "--verify-rate",
            "0.05",
            "--epoch-ms",
            "500",
            "--settlement-delay-ms",
            "2000",
        ],
    );
    let renter = root.join("renter");
    let pid = node_id(&root.join("p"), &url);
    let p = provider_with(&url, &root.join("p"), 10, 2, &["--poll-ms", "50"]);
    let v = verifier(
        &url,
        &root.join("v"),
        &["--threads", "1", "--poll-ms", "500"],
    );
    wait_registered(&renter, &url, &pid);
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", "1000000000000"],
    ));
    // Idle: what the daemons burn polling, over a few seconds.
    let (p0, v0, t0) = (cpu_s(p.0.id()), cpu_s(v.0.id()), Instant::now());
    std::thread::sleep(Duration::from_secs(5));
    let idle_s = t0.elapsed().as_secs_f64();
    let (p_idle, v_idle) = (
        (cpu_s(p.0.id()) - p0) / idle_s,
        (cpu_s(v.0.id()) - v0) / idle_s,
    );
    let (p1, v1, t1) = (cpu_s(p.0.id()), cpu_s(v.0.id()), Instant::now());
    let jobs = publish_all(&renter, &url, root, receipts);
    let all = loop {
        let all = statuses(&renter, &url, &jobs);
        if all.iter().all(|s| s["state"] == "settled") {
            break all;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(1800),
            "not settled in 30 min"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let wall = t1.elapsed().as_secs_f64();
    let (p_cpu, v_cpu) = (cpu_s(p.0.id()) - p1, cpu_s(v.0.id()) - v1);
    let n = shards(&all).count();
    let checked = shards(&all)
        .filter(|x| x["verification"]["state"] == "verified")
        .count();
    println!(
        "| receipts | checked | rate realised | provider CPU s | verifier CPU s | overhead (verifier / provider) | wall s |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {checked} | {:.4} | {p_cpu:.2} | {v_cpu:.2} | **{:.2} %** | {wall:.1} |",
        checked as f64 / n as f64,
        100.0 * v_cpu / p_cpu
    );
    println!(
        "idle polling: provider {:.1} ms/s, verifier {:.1} ms/s of CPU (included above: over {wall:.0} s that is {:.2} s and {:.2} s)",
        1e3 * p_idle,
        1e3 * v_idle,
        p_idle * wall,
        v_idle * wall
    );
    println!("target ≤ 5 %\n");
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
            "0.05",
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
        &["--poll-ms", "50", "--cheat-rate", "0.05"],
    );
    let _v1 = verifier(&url, &root.join("v1"), &[]);
    let _v2 = verifier(&url, &root.join("v2"), &[]);
    wait_registered(&renter, &url, &pid);
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", "1000000000000"],
    ));
    let jobs = publish_all(&renter, &url, root, receipts);
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
        if stake < 1_000_000 && open == 0 {
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
    detection(a.trials);
    overhead(a.receipts);
    real_cheater(a.receipts);
}
