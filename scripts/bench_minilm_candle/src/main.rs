//! all-MiniLM-L6-v2 sentence embeddings with candle (BertModel + masked mean
//! pooling + L2 normalisation), timed like the onnxruntime peer of
//! `scripts/bench_minilm.py`: tokenization + every batch (sorted by length,
//! padded to the longest), model loading not timed; best of `--reps`.
//!
//! Usage: bench-minilm-candle MODEL_DIR SENTENCES BATCH REPS [REFERENCE_JSON]
//! Threads: `RAYON_NUM_THREADS` (candle's CPU matmul runs on rayon).
//! Prints one JSON object: {"seconds", "cpu_seconds", "max_abs_diff"}.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
        t(u.ru_utime) + t(u.ru_stime)
    }
}

struct Embedder {
    model: BertModel,
    tok: Tokenizer,
    dev: Device,
}

impl Embedder {
    fn embed(&self, sentences: &[String], batch: usize) -> Res<Vec<Vec<f32>>> {
        let ids: Vec<Vec<u32>> = sentences
            .iter()
            .map(|s| Ok(self.tok.encode(s.as_str(), true)?.get_ids().to_vec()))
            .collect::<Result<_, tokenizers::Error>>()
            .map_err(|e| e.to_string())?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(batch) {
            let s = chunk.iter().map(|&i| ids[i].len()).max().unwrap_or(0);
            let (mut x, mut m) = (Vec::new(), Vec::new());
            for &i in chunk {
                x.extend(ids[i].iter().copied());
                x.resize(x.len() + s - ids[i].len(), 0);
                m.extend(std::iter::repeat_n(1u32, ids[i].len()));
                m.resize(m.len() + s - ids[i].len(), 0);
            }
            let b = chunk.len();
            let x = Tensor::from_vec(x, (b, s), &self.dev)?;
            let mask = Tensor::from_vec(m, (b, s), &self.dev)?;
            let types = x.zeros_like()?;
            let h = self.model.forward(&x, &types, Some(&mask))?;
            let mf = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let sum = h.broadcast_mul(&mf)?.sum(1)?;
            let count = mf.sum(1)?.clamp(1e-9, f64::INFINITY)?;
            let pooled = sum.broadcast_div(&count)?;
            let norm = pooled
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .clamp(1e-12, f64::INFINITY)?;
            let e = pooled.broadcast_div(&norm)?.to_vec2::<f32>()?;
            for (r, &i) in chunk.iter().enumerate() {
                out[i] = e[r].clone();
            }
        }
        Ok(out)
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err(
            "usage: bench-minilm-candle MODEL_DIR SENTENCES BATCH REPS [REFERENCE_JSON]".into(),
        );
    }
    let dir = std::path::Path::new(&args[1]);
    let text = std::fs::read_to_string(&args[2])?;
    let sentences: Vec<String> = text.lines().map(str::to_owned).collect();
    let batch: usize = args[3].parse()?;
    let reps: usize = args[4].parse()?;

    let dev = Device::Cpu;
    let config: Config = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let weights = std::fs::read(dir.join("model.safetensors"))?;
    let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &dev)?;
    let model = BertModel::load(vb, &config)?;
    let mut tok = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| e.to_string())?;
    let sbert: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        dir.join("sentence_bert_config.json"),
    )?)?;
    let max_len = sbert["max_seq_length"].as_u64().ok_or("max_seq_length")? as usize;
    tok.with_padding(None);
    tok.with_truncation(Some(TruncationParams {
        max_length: max_len,
        ..TruncationParams::default()
    }))
    .map_err(|e| e.to_string())?;
    let e = Embedder { model, tok, dev };

    let mut max_abs_diff = serde_json::Value::Null;
    if let Some(path) = args.get(5) {
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let sents: Vec<String> = serde_json::from_value(r["sentences"].clone())?;
        let want: Vec<Vec<f64>> = serde_json::from_value(r["embeddings"].clone())?;
        let got = e.embed(&sents, 16)?;
        let mut d = 0.0f64;
        for (g, w) in got.iter().zip(&want) {
            for (a, b) in g.iter().zip(w) {
                d = d.max((f64::from(*a) - b).abs());
            }
        }
        max_abs_diff = d.into();
    }

    e.embed(&sentences, batch)?; // warm-up
    let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..reps {
        let (t, c) = (Instant::now(), cpu_seconds());
        e.embed(&sentences, batch)?;
        best = best.min(t.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(cpu_seconds() - c);
    }
    println!(
        "{}",
        serde_json::json!({ "seconds": best, "cpu_seconds": best_cpu, "max_abs_diff": max_abs_diff })
    );
    Ok(())
}
