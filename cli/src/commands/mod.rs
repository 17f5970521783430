//! One module per subcommand.

pub mod chat;
pub mod demo;
pub mod devices;
pub mod model;
pub mod run;
pub mod verify;

// The network: coordinator, provider daemon, renter commands, devnet.
pub mod claims;
pub mod cluster;
pub mod coordinator;
pub mod devnet;
pub mod economy;
pub mod faucet;
pub mod gateway;
pub mod job;
pub mod ledger;
pub mod net;
pub mod provider;
pub mod publish;
pub mod verifier;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use assay_host_gpu::Device;
use assay_protocol::{Hash32, JobSpec, NodeKey};
use assay_runtime::{Error as RuntimeError, Inputs, RunReport, Runtime, RuntimeOptions};
use serde_json::json;

use crate::Failure;

/// A runtime with this node's key and component cache.
pub fn runtime(device: Device) -> Result<Runtime, Failure> {
    let key = NodeKey::load_or_create(&crate::home::key_file()).map_err(Failure::usage)?;
    Runtime::new(RuntimeOptions {
        cache_dir: Some(crate::home::component_cache()),
        device,
        key,
    })
    .map_err(Failure::fault)
}

/// Loads and runs a component, mapping runtime errors to exit statuses.
pub fn execute(
    runtime: &Runtime,
    component: &[u8],
    inputs: Inputs,
    spec: &JobSpec,
) -> Result<RunReport, Failure> {
    let loaded = runtime.load(component).map_err(|e| match e {
        RuntimeError::BadComponent(_) => Failure::usage(e),
        other => Failure::fault(other),
    })?;
    runtime
        .run(&loaded, Arc::new(inputs), spec)
        .map_err(Failure::fault)
}

/// Writes outputs into `dir` and the run's metadata into `dir/.assay/`.
pub fn write_results(dir: &Path, report: &RunReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join(".assay"))
        .with_context(|| format!("creating {}", dir.display()))?;
    for (name, bytes) in &report.outputs {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    let meta = dir.join(".assay");
    let receipt = serde_json::to_vec_pretty(&report.receipt)?;
    std::fs::write(meta.join("receipt.json"), receipt)?;
    std::fs::write(meta.join("stdout"), &report.stdout)?;
    std::fs::write(meta.join("stderr"), &report.stderr)?;
    std::fs::write(meta.join("log"), &report.log)?;
    write_message(&meta, report.error.as_deref().unwrap_or(""))
}

/// Writes a failure's message for people to `dir/error.txt` (as `assay run`
/// does: beside the hashed record in `error`, never in it), or removes a
/// stale one when there is none.
pub fn write_message(dir: &std::path::Path, message: &str) -> anyhow::Result<()> {
    let path = dir.join("error.txt");
    if !message.is_empty() {
        std::fs::write(&path, message).with_context(|| format!("writing {}", path.display()))?;
    } else if path.exists() {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// The run as one JSON object (the `--json` output).
pub fn report_json(report: &RunReport) -> serde_json::Value {
    let outputs: serde_json::Map<String, serde_json::Value> = report
        .outputs
        .iter()
        .map(|(name, bytes)| {
            (
                name.clone(),
                json!({ "len": bytes.len(), "blake3": Hash32::of(bytes).to_hex() }),
            )
        })
        .collect();
    let body = &report.receipt.body;
    json!({
        "job_id": report.job_id,
        "outcome": report.outcome,
        "outputs_root": body.outputs_root,
        "fuel_used": body.fuel_used,
        "work": { "flops": body.work.flops, "bytes": body.work.bytes },
        "outputs": outputs,
        "error": report.error,
        "failure": report.failure.as_ref().map(|f| f.to_canonical_json()),
        "receipt": report.receipt,
        "backend": body.backend,
        "elapsed_ms": report.elapsed.as_secs_f64() * 1e3,
    })
}

/// The exit status for a finished run.
pub fn exit_code(report: &RunReport) -> u8 {
    if report.outcome.is_success() {
        0
    } else {
        crate::EXIT_JOB_FAILED
    }
}

/// A human summary of a run.
pub fn print_summary(report: &RunReport, out: Option<&Path>) {
    let body = &report.receipt.body;
    println!("outcome       {}", report.outcome);
    if let Some(err) = &report.error {
        println!("error         {}", err.lines().next().unwrap_or(""));
    }
    println!("outputs root  {}", body.outputs_root);
    for (name, bytes) in &report.outputs {
        println!(
            "  {name:<20} {:>12} bytes  {}",
            bytes.len(),
            Hash32::of(bytes).short()
        );
    }
    println!("fuel used     {}", body.fuel_used);
    println!(
        "work          {} flops, {} bytes",
        body.work.flops, body.work.bytes
    );
    println!(
        "backend       {} ({})",
        body.backend.kind, body.backend.device
    );
    println!("job id        {}", report.job_id);
    println!("receipt       signed by {}", body.provider_id);
    println!("elapsed       {:.2} ms", report.elapsed.as_secs_f64() * 1e3);
    if let Some(dir) = out {
        println!(
            "written to    {}/ (receipt in {}/.assay/receipt.json)",
            dir.display(),
            dir.display()
        );
    }
}
