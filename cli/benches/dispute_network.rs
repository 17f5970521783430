//! What a dispute costs the arbiter over the network, bisected against
//! re-executed, on the same job in one run.
//!
//! ```text
//! cargo bench -p assay-cli --bench dispute_network [-- --only matmul|minilm --sentences 64]
//! ```
//!
//! Each job is disputed twice on loopback, every node a separate `assay`
//! process (a coordinator on SQLite, one provider, one verifier that
//! lies, and the arbiter), with the job published at `--verify-rate 1`:
//!
//! - **bisected**: the verifier lies about one op's output in the middle of
//!   its trace (`--lie-step`); the coordinator referees the game between
//!   the two traces and the arbiter gets that one step to recompute;
//! - **re-executed**: the verifier lies about the result only
//!   (`--lie-rate 1`); the traces agree, nothing is left to bisect, and the
//!   arbiter re-executes the job — what every dispute cost before.
//!
//! Measured from the arbiter's own metrics: the time it spent running the
//! check (`reexecution_ms`: checking the evidence and replaying the step,
//! or re-executing the job, model loading included; fetching blobs is
//! not) and the bytes it downloaded (the evidence tensors; for a
//! re-execution, the job's component and inputs),
//! with the game's rounds and the bytes the parties revealed (from the
//! referee verdict's `arbitration`), and the wall time from the disputing
//! verdict to the arbiter's. Each arbiter is fresh: it holds no blob and no
//! model resident, as an arbiter that meets a job for the first time.
//!
//! MiniLM needs the model (`assay model fetch`); without it the part
//! prints SKIPPED.

#[path = "../tests/all/common.rs"]
mod common;
#[path = "../src/model_store.rs"]
mod model_store;

use std::path::{Path, PathBuf};

use assay_guests::{Guest, matrix};
use common::*;
use serde_json::Value;

const SENTENCES: &str = include_str!("../src/demo_sentences.txt");

struct Args {
    only: Vec<String>,
    sentences: usize,
}

fn args() -> Args {
    let mut a = Args {
        only: Vec::new(),
        sentences: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--only" => a.only.extend(it.next()),
            "--sentences" => {
                a.sentences = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--sentences N")
            }
            // What cargo bench passes on.
            "--bench" => {}
            other => panic!("unknown argument {other}: --only matmul|minilm, --sentences N"),
        }
    }
    a
}

/// A job as `assay publish` arguments (paths under its folder).
struct Job {
    name: String,
    publish: Vec<String>,
}

fn matmul_job(dir: &Path, n: u32) -> Job {
    std::fs::create_dir_all(dir).expect("dir");
    let component = dir.join("matmul.wasm");
    std::fs::write(&component, Guest::Matmul.bytes()).expect("component");
    let values = |seed: u32| -> Vec<f32> {
        (0..n * n)
            .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    };
    for (name, seed) in [("a", 1), ("b", 2)] {
        let bytes = matrix::encode(n, n, &values(seed)).expect("matrix");
        std::fs::write(dir.join(format!("{name}.bin")), bytes).expect("write");
    }
    let mut publish = vec![component.display().to_string()];
    for name in ["a", "b"] {
        publish.push("--input".into());
        publish.push(format!(
            "{name}={}",
            dir.join(format!("{name}.bin")).display()
        ));
    }
    Job {
        name: format!("matmul {n}×{n}·{n}×{n}"),
        publish,
    }
}

fn minilm_job(dir: &Path, sentences: usize) -> Option<Job> {
    let model = match model_store::load() {
        Ok(m) => m,
        Err(e) => {
            println!("SKIPPED minilm: {e}");
            return None;
        }
    };
    std::fs::create_dir_all(dir).expect("dir");
    let component = dir.join("minilm_embed.wasm");
    std::fs::write(&component, Guest::MinilmEmbed.bytes()).expect("component");
    let mut publish = vec![component.display().to_string()];
    for (name, bytes) in &model.files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("model file");
        publish.push("--input".into());
        publish.push(format!("{name}={}", path.display()));
    }
    let text: Vec<&str> = SENTENCES.lines().cycle().take(sentences).collect();
    let path = dir.join("text.txt");
    std::fs::write(&path, text.join("\n")).expect("text");
    publish.extend([
        "--input".into(),
        format!("text={}", path.display()),
        "--param".into(),
        "batch_size=16".into(),
    ]);
    Some(Job {
        name: format!("MiniLM, {sentences} sentences, batch 16"),
        publish,
    })
}

/// What one dispute cost.
struct Cost {
    arbitration: String,
    arbiter_ms: f64,
    arbiter_bytes: u64,
    wall_ms: u64,
    rounds: Option<u64>,
    revealed: Option<u64>,
}

/// The number just before `word` in `text` ("… 2 rounds, 3826 bytes …").
fn number_before(text: &str, word: &str) -> Option<u64> {
    let words: Vec<&str> = text.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    words
        .windows(2)
        .find(|w| w[1] == word)
        .and_then(|w| w[0].parse().ok())
}

/// Disputes `job` once with a verifier lying by `knob`.
fn dispute(root: &Path, job: &Job, knob: &[&str]) -> Cost {
    let (arbiter_home, arbiter) = arbiter_key(root);
    let (_c, url) = coordinator(
        &root.join("coordinator"),
        "127.0.0.1:0",
        &[
            "--epoch-ms",
            "300",
            "--verify-rate",
            "1",
            "--check-ttl-ms",
            "120000",
            "--arbiter-key",
            &arbiter,
        ],
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _arbiter = verifier(
        &url,
        &arbiter_home,
        &["--metrics-listen", &listen, "--slots", "1"],
    );
    let renter = root.join("renter");
    let p_home = root.join("provider");
    let p = node_id(&p_home, &url);
    let _p = provider_with(&url, &p_home, 10, 1, &["--threads", "1"]);
    let liar_home = root.join("liar");
    let liar = node_id(&liar_home, &url);
    // A check bonds stake in proportion to what the job escrows: the liar
    // holds plenty, so that it is the one assigned.
    let mut flags = vec!["--faucet", "100000000000", "--stake", "50000000000"];
    flags.extend_from_slice(knob);
    let _liar = verifier(&url, &liar_home, &flags);
    wait_registered(&renter, &url, &p);
    wait_staked(&renter, &url, &liar, 50_000_000_000);
    ok(assay(
        &renter,
        &url,
        &["faucet", "--amount", "1000000000000"],
    ));
    let mut args: Vec<&str> = job.publish.iter().map(String::as_str).collect();
    args.extend([
        "--max-price",
        "100",
        "--fuel",
        "100000000000",
        "--work-budget",
        "1000000000000",
    ]);
    let id = publish(&renter, &url, &args);
    let done = wait_job(&renter, &url, &id, 600, |s| {
        s["shards"][0]["verification"]["verdicts"]
            .as_array()
            .is_some_and(|v| v.iter().any(|d| d["role"] == "referee"))
    });
    let verdicts: &Vec<Value> = done["shards"][0]["verification"]["verdicts"]
        .as_array()
        .expect("verdicts");
    let first = &verdicts[0];
    let last = verdicts.last().expect("the arbiter's");
    assert_eq!(first["agrees"], false, "the liar disputed: {done:#}");
    assert_eq!(
        last["agrees"], true,
        "the arbiter upheld the provider: {done:#}"
    );
    let arbitration = last["arbitration"].as_str().unwrap_or_default().to_string();
    let m = metrics(port);
    let wall = last["at_ms"].as_u64().unwrap_or(0) - first["at_ms"].as_u64().unwrap_or(0);
    let evidence = metric(&m, "assay_verifier_evidence_bytes_total") as u64;
    let fetched = metric(&m, "assay_verifier_blob_bytes_downloaded_total") as u64;
    Cost {
        rounds: number_before(&arbitration, "rounds"),
        revealed: number_before(&arbitration, "bytes"),
        arbitration,
        arbiter_ms: metric(&m, "assay_verifier_reexecution_ms_total"),
        arbiter_bytes: evidence.max(fetched),
        wall_ms: wall,
    }
}

fn mib(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.2} MiB", bytes as f64 / (1 << 20) as f64)
    }
}

fn main() {
    let a = args();
    let on = |part: &str| a.only.is_empty() || a.only.iter().any(|o| o == part);
    let tmp = tempfile::tempdir().expect("tmp");
    let mut jobs: Vec<Job> = Vec::new();
    if on("matmul") {
        jobs.push(matmul_job(&tmp.path().join("matmul"), 512));
    }
    if on("minilm")
        && let Some(j) = minilm_job(&tmp.path().join("minilm"), a.sentences)
    {
        jobs.push(j);
    }
    let mut rows = Vec::new();
    for (k, job) in jobs.iter().enumerate() {
        let root = |case: &str| -> PathBuf { tmp.path().join(format!("{k}-{case}")) };
        eprintln!("{}: bisected …", job.name);
        let step = dispute(&root("step"), job, &["--lie-step"]);
        eprintln!("  {}", step.arbitration);
        eprintln!("{}: re-executed …", job.name);
        let full = dispute(&root("full"), job, &["--lie-rate", "1"]);
        eprintln!("  {}", full.arbitration);
        assert!(
            !step.arbitration.starts_with("full re-execution"),
            "the lie about one step was not bisected: {}",
            step.arbitration
        );
        assert!(full.arbitration.starts_with("full re-execution"));
        rows.push(format!(
            "| {} | {:.0} ms, {} fetched | {} | {} | {:.1} ms, {} fetched | **{:.1} %** | {:.1} s → {:.1} s |",
            job.name,
            full.arbiter_ms,
            mib(full.arbiter_bytes),
            step.rounds.map_or("?".into(), |r| r.to_string()),
            step.revealed.map_or("?".into(), mib),
            step.arbiter_ms,
            mib(step.arbiter_bytes),
            100.0 * step.arbiter_ms / full.arbiter_ms.max(f64::MIN_POSITIVE),
            full.wall_ms as f64 / 1e3,
            step.wall_ms as f64 / 1e3,
        ));
    }
    println!(
        "\nA dispute over the network (loopback, separate processes; the arbiter fresh, CPU, its default threads):\n"
    );
    println!(
        "| job | arbiter, re-executing | rounds | revealed by the parties | arbiter, one step | arbiter time ÷ re-execution | dispute to decision: re-executed → bisected |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!("{r}");
    }
}
