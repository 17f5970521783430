//! Prefill and decode speed of the chat job (`llm-generate`,
//! SmolLM2-135M-Instruct) in the sandbox, at 1 and 2 threads, with the
//! weights resident (a warm-up run first), and the process's peak RSS.
//!
//! `cargo bench -p assay-cli --bench llm` (the model from
//! `ASSAY_SMOLLM2_GGUF` or the cache of `assay model fetch smollm2`).
//! Decode tokens/s is `(N − 1) / (t(N) − t(1))` from a run of N = 65
//! greedy tokens and one of 1 token on the same prompt (the prompt forces
//! no early stop: a poem); prefill tokens/s is the prompt's tokens over
//! the 1-token run. `-- --threads T --json` measures one thread count and
//! prints it as a JSON line (for `scripts/bench_llm.py`, which puts it
//! beside llama.cpp and candle).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use assay_host_gpu::Device;
use assay_protocol::{JobSpec, NodeKey};
use assay_runtime::{Inputs, Runtime, RuntimeOptions};

#[path = "../src/model_store.rs"]
mod model_store;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let path = std::env::var_os("ASSAY_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            model_store::SMOLLM2
                .dir()
                .join(model_store::SMOLLM2.files[0].path)
        });
    let Ok(model) = std::fs::read(&path) else {
        eprintln!(
            "no SmolLM2 at {}: run `assay model fetch smollm2` or set ASSAY_SMOLLM2_GGUF",
            path.display()
        );
        std::process::exit(2);
    };
    let model: Arc<[u8]> = Arc::from(model);
    // `-- --threads T` runs one thread count (a process per count gives
    // each its own peak RSS: one provider's); `--json` prints one line per
    // count for scripts/bench_llm.py. Other arguments (cargo's `--bench`)
    // are ignored.
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let counts: Vec<usize> = match args.iter().position(|a| a == "--threads") {
        Some(i) => vec![
            args.get(i + 1)
                .and_then(|t| t.parse().ok())
                .expect("--threads takes a count"),
        ],
        None => vec![1, 2],
    };
    let messages = br#"[{"role": "user", "content": "Write a short poem about the ocean."}]"#;
    if !json {
        println!(
            "| threads | prompt tokens | prefill tokens/s | decode tokens/s | first job (weights loaded), s |"
        );
        println!("| ---: | ---: | ---: | ---: | ---: |");
    }
    for threads in counts {
        let rt = Runtime::new(RuntimeOptions {
            cache_dir: None,
            device: Device::cpu_with_threads(threads),
            key: NodeKey::generate().expect("node key"),
        })
        .expect("runtime");
        let component = rt.load(assay_guests::LLM_GENERATE_WASM).expect("guest");
        let run = |max_tokens: u32| {
            let mut inputs = Inputs::new();
            inputs.insert("model".into(), model.clone());
            inputs.insert("messages".into(), Arc::from(&messages[..]));
            let mut spec = JobSpec::default();
            spec.params
                .insert("max_tokens".into(), max_tokens.to_string());
            let start = Instant::now();
            let r = rt.run(&component, Arc::new(inputs), &spec).expect("runs");
            assert!(r.outcome.is_success(), "{:?} {}", r.error, r.log);
            let c: serde_json::Value =
                serde_json::from_slice(&r.outputs["completion.json"]).expect("completion");
            (start.elapsed().as_secs_f64(), c)
        };
        let (cold, _) = run(1);
        let best = |n: u32| {
            (0..3)
                .map(|_| run(n))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .expect("runs")
        };
        let (t1, c1) = best(1);
        let (tn, cn) = best(65);
        let generated = cn["ids"].as_array().map_or(0, Vec::len);
        assert_eq!(generated, 65, "the poem stopped early: {cn}");
        let prompt = c1["prompt_ids"].as_array().map_or(0, Vec::len);
        let (prefill, decode) = (prompt as f64 / t1, 64.0 / (tn - t1));
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "peer": "assay",
                    "threads": threads,
                    "prompt_ids": c1["prompt_ids"],
                    "prompt_tokens": prompt,
                    "decode_tokens": 64,
                    "prefill_tok_s": prefill,
                    "decode_tok_s": decode,
                    "load_s": cold,
                    "rss_mib": peak_rss_mib(),
                    "ids": cn["ids"],
                })
            );
        } else {
            println!("| {threads} | {prompt} | {prefill:.1} | {decode:.1} | {cold:.2} |");
        }
    }
    if !json {
        println!();
        println!(
            "peak RSS of this process (every runtime above, weights kept as blocks): {:.0} MiB",
            peak_rss_mib()
        );
    }
}
