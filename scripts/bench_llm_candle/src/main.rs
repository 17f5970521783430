//! SmolLM2-135M-Instruct (a llama-architecture GGUF, e.g. the Q4_1 file) on
//! the CPU with candle-transformers' quantized llama
//! (`quantized_llama::ModelWeights::from_gguf`): the candle peer of the
//! SmolLM2 prefill/decode benchmark.
//!
//! Measures, batch 1, greedy, no sampling, no tokenizer (the caller passes ids):
//! - `load_s`: reading the GGUF (metadata + every tensor) and building the
//!   model, once.
//! - per rep, on a fresh model state (a clone of the loaded model: shared
//!   weights, empty KV cache, empty mask cache):
//!   - prefill: one forward of all prompt ids at `index_pos` 0, returning the
//!     last position's logits; `prefill_tok_s = prompt_tokens / seconds`;
//!   - decode: argmax of those logits, then `--decode` single-token forwards
//!     (`index_pos` = prompt_tokens, +1, ...), each followed by its argmax;
//!     `decode_tok_s = decode_tokens / seconds` of that loop (forwards +
//!     argmaxes).
//!
//!   Best of `--reps` for each rate, separately. Lazily built weight repacks
//!   (candle packs some quant types on their first matmul) fall into rep 1.
//! - `rss_mib`: peak resident set (`VmHWM` of /proc/self/status) at the end.
//! - `ids`: the greedy ids of the last rep: 1 (from the prefill logits) +
//!   `--decode` (one per decode forward).
//!
//! Threads: candle 0.11 runs CPU work on three pools, all sized once, lazily,
//! from the environment: its barrier pool (quantized matmul, elementwise ops;
//! `CANDLE_NUM_THREADS`, else `RAYON_NUM_THREADS`, else the physical core
//! count; the calling thread plus n-1 workers), its private rayon pool
//! (`Device::with_context`; `RAYON_NUM_THREADS`) and gemm's rayon parallelism
//! (`RAYON_NUM_THREADS`). So `--threads T` sets both variables before any
//! candle or rayon use, and every forward runs inside `Device::with_context`,
//! so at most T threads compute at once.
//!
//! Build flags matter: candle 0.11 has no SIMD kernel for Q4_1 on x86 (its
//! `vec_dot` is the generic scalar loop, ~85% of the time), so the default
//! x86-64 baseline build runs ~3x slower than one with
//! `RUSTFLAGS="-C target-cpu=native"`, which lets LLVM vectorise that loop.
//! Candle's own dispatch (AVX2 Q4_0/Q8_0/k-quant kernels) is runtime-detected
//! either way. Say which build a number came from.
//!
//! Usage: bench-llm-candle --model GGUF --threads T --prompt-ids 1,2,3
//!        [--decode 64] [--reps 3]
//! Prints one JSON line: {"peer", "threads", "prompt_tokens", "decode_tokens",
//! "prefill_tok_s", "decode_tok_s", "load_s", "rss_mib", "ids"}.

use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const USAGE: &str =
    "usage: bench-llm-candle --model GGUF --threads T --prompt-ids 1,2,3 [--decode 64] [--reps 3]";

struct Args {
    model: String,
    threads: usize,
    prompt_ids: Vec<u32>,
    decode: usize,
    reps: usize,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        model: String::new(),
        threads: 0,
        prompt_ids: Vec::new(),
        decode: 64,
        reps: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--model" => a.model = v,
            "--threads" => a.threads = v.parse()?,
            "--prompt-ids" => {
                a.prompt_ids = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--decode" => a.decode = v.parse()?,
            "--reps" => a.reps = v.parse()?,
            _ => return Err(format!("unknown flag {flag}\n{USAGE}").into()),
        }
    }
    if a.model.is_empty() || a.threads == 0 || a.prompt_ids.is_empty() || a.reps == 0 {
        return Err(USAGE.into());
    }
    Ok(a)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn argmax(logits: &Tensor) -> Res<u32> {
    Ok(logits.squeeze(0)?.argmax(0)?.to_scalar::<u32>()?)
}

struct Rep {
    prefill_s: f64,
    decode_s: f64,
    ids: Vec<u32>,
}

fn run_rep(model: &mut ModelWeights, prompt: &[u32], decode: usize, dev: &Device) -> Res<Rep> {
    let x = Tensor::new(prompt, dev)?.unsqueeze(0)?;
    let t = Instant::now();
    let logits = model.forward(&x, 0)?;
    let prefill_s = t.elapsed().as_secs_f64();

    let mut ids = Vec::with_capacity(decode + 1);
    let mut next = argmax(&logits)?;
    ids.push(next);
    let t = Instant::now();
    for i in 0..decode {
        let x = Tensor::new(&[next], dev)?.unsqueeze(0)?;
        let logits = model.forward(&x, prompt.len() + i)?;
        next = argmax(&logits)?;
        ids.push(next);
    }
    let decode_s = t.elapsed().as_secs_f64();
    Ok(Rep {
        prefill_s,
        decode_s,
        ids,
    })
}

fn main() -> Res<()> {
    let a = parse_args()?;
    // SAFETY: no other thread exists yet; candle and rayon read these lazily,
    // on their first parallel section, which comes later.
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", a.threads.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", a.threads.to_string());
    }
    let dev = Device::Cpu;

    let t = Instant::now();
    let mut file = std::fs::File::open(&a.model)?;
    let content = gguf_file::Content::read(&mut file).map_err(|e| e.with_path(&a.model))?;
    let base = ModelWeights::from_gguf(content, &mut file, &dev)?;
    let load_s = t.elapsed().as_secs_f64();

    let n = a.prompt_ids.len();
    let d = a.decode;
    let (mut best_prefill, mut best_decode) = (f64::INFINITY, f64::INFINITY);
    let mut ids = Vec::new();
    for _ in 0..a.reps {
        let mut model = base.clone();
        let r = dev.with_context(|| {
            run_rep(&mut model, &a.prompt_ids, d, &dev).map_err(|e| e.to_string())
        })?;
        best_prefill = best_prefill.min(r.prefill_s);
        best_decode = best_decode.min(r.decode_s);
        if !ids.is_empty() && ids != r.ids {
            eprintln!("warning: greedy ids differ between reps");
        }
        ids = r.ids;
    }
    let os_threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    eprintln!("os threads at exit: {os_threads} (main + barrier-pool workers + rayon workers)");

    println!(
        "{}",
        serde_json::json!({
            "peer": "candle",
            "threads": a.threads,
            "prompt_tokens": n,
            "decode_tokens": d,
            "prefill_tok_s": n as f64 / best_prefill,
            "decode_tok_s": if d == 0 { serde_json::Value::Null } else { (d as f64 / best_decode).into() },
            "load_s": load_s,
            "rss_mib": peak_rss_mib(),
            "ids": ids,
        })
    );
    Ok(())
}
