//! `assay publish`: upload a job's blobs (only those the coordinator lacks),
//! submit it with escrow, and optionally follow it to the end.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use assay_proto::pb::renter_client::RenterClient;
use assay_proto::{client, convert, pb};
use assay_protocol::{BlobRef, Hash32, Outcome};
use clap::Args;
use serde_json::json;
use tonic::transport::Channel;

use super::net::{CoordinatorUrl, amount, rpc, signed};
use crate::Failure;
use crate::spec_args::{SpecArgs, parse_pair};

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The job: a Wasm component for the assay:gpu/job world.
    pub component: PathBuf,
    /// An input blob, NAME=PATH (repeatable).
    #[arg(long = "input", short = 'i', value_name = "NAME=PATH", value_parser = parse_pair)]
    pub inputs: Vec<(String, String)>,
    /// Data-parallel shards (each sees its index/count through job-io).
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    /// Most you pay, µIOSD per million work units (escrow: this × (fuel + work budget) × shards).
    #[arg(long)]
    pub max_price: u64,
    /// Pay from your IOSD balance, or in IO: the escrow's IOSD is minted by
    /// burning your IO at the oracle price in the same transaction (no
    /// protocol fee by default).
    #[arg(long, default_value = "iosd", value_parser = ["iosd", "io"])]
    pub pay_in: String,
    /// Only providers with a GPU.
    #[arg(long)]
    pub gpu: bool,
    /// Split this input by line across the shards (repeatable): each shard
    /// gets only its part of the lines.
    #[arg(long = "split-input", value_name = "NAME")]
    pub split_inputs: Vec<String>,
    /// The probability that each shard's receipt is re-executed by a
    /// verifier, as a fraction (e.g. 0.05, or 1 to check every shard)
    /// [default: the coordinator's rate]. The verifier's fee is escrowed
    /// with the job and refunded when a shard is not checked.
    #[arg(long, value_name = "P", value_parser = parse_rate, conflicts_with = "unverified")]
    pub verify_rate: Option<u32>,
    /// Opt out of verification: no guarantee, no verifier fee.
    #[arg(long)]
    pub unverified: bool,
    /// Run only on this reserved cluster's members (`assay cluster create`),
    /// each at the work price it locked when it joined.
    #[arg(long, value_name = "ID")]
    pub cluster: Option<Hash32>,
    /// Follow the job until every shard has a receipt.
    #[arg(long)]
    pub wait: bool,
    /// Like --wait, then also wait until every shard is settled: verified
    /// by a verifier if sampled, else past the challenge window, and paid.
    #[arg(long)]
    pub wait_settled: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 3_600)]
    pub wait_timeout_s: u64,
    /// Print one JSON object instead of progress lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
    #[command(flatten)]
    pub spec: SpecArgs,
}

pub fn main(args: PublishArgs) -> Result<u8, Failure> {
    let component: Arc<[u8]> = std::fs::read(&args.component)
        .with_context(|| format!("reading component {}", args.component.display()))
        .map_err(Failure::usage)?
        .into();
    let mut inputs: Vec<(String, Arc<[u8]>)> = Vec::new();
    for (name, path) in &args.inputs {
        if inputs.iter().any(|(n, _)| n == name) {
            return Err(Failure::usage(anyhow::anyhow!(
                "input {name:?} given twice"
            )));
        }
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading input {name:?} from {path}"))
            .map_err(Failure::usage)?;
        inputs.push((name.clone(), bytes.into()));
    }
    if args.spec.shard.is_some() {
        return Err(Failure::usage(anyhow::anyhow!(
            "--shard picks one shard of a local run; to publish, use --shards N"
        )));
    }
    let spec = args.spec.build().map_err(Failure::usage)?;
    let url = args.coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = args.coordinator.channel(&rt)?;
    let key = super::net::signer(&rt, &channel, &url)?;
    rt.block_on(async {
        let mut blobs = vec![component.clone()];
        blobs.extend(inputs.iter().map(|(_, b)| b.clone()));
        let sent = client::upload_missing(&channel, &key, &blobs)
            .await
            .map_err(super::net::proto(&url))?;
        if !args.json {
            let total: u64 = blobs.iter().map(|b| b.len() as u64).sum();
            println!(
                "uploaded     {sent} of {total} bytes ({} already on the coordinator)",
                total - sent
            );
        }
        let refs: Vec<BlobRef> = inputs
            .iter()
            .map(|(n, b)| BlobRef {
                name: n.clone(),
                hash: Hash32::of(b),
                size: b.len() as u64,
            })
            .collect();
        let req = signed(
            &key,
            pb::SubmitJobRequest {
                inline_blobs: Vec::new(),
                auth: None,
                component_hash: Hash32::of(&component).0.to_vec(),
                component_size: component.len() as u64,
                inputs: convert::blob_refs_to_pb(&refs),
                spec: Some(pb::JobSpec::from(&spec)),
                shards: args.shards,
                max_price: args.max_price,
                requirements: Some(pb::Requirements { gpu: args.gpu }),
                split_inputs: args.split_inputs.clone(),
                verify_rate_ppm: args.verify_rate.unwrap_or(0),
                unverified: args.unverified,
                pay_in: args.pay_in.clone(),
                cluster_id: args.cluster.map(|c| c.0.to_vec()).unwrap_or_default(),
            },
        )?;
        let resp = RenterClient::new(channel.clone())
            .submit_job(req)
            .await
            .map_err(rpc(&url))?
            .into_inner();
        let job = convert::hash("job_id", &resp.job_id).map_err(Failure::fault)?;
        if !args.json {
            println!("job          {job}");
            println!("escrow       {} IOSD", amount(resp.escrow));
            if resp.io_burned > 0 {
                println!("paid in IO   {} IO burned into IOSD", amount(resp.io_burned));
            }
        }
        if !args.wait && !args.wait_settled {
            if args.json {
                println!(
                    "{}",
                    json!({ "job_id": job, "escrow": resp.escrow, "io_burned": resp.io_burned, "uploaded_bytes": sent })
                );
            }
            return Ok(0);
        }
        let status = follow(
            &channel,
            &url,
            &job,
            args.json,
            args.wait_settled,
            Duration::from_secs(args.wait_timeout_s),
        )
        .await?;
        let failed = status.shards.iter().any(|s| {
            s.receipt.as_ref().is_some_and(|r| {
                convert::outcome("outcome", r.outcome).ok() != Some(Outcome::Success)
            })
        });
        if args.json {
            let mut v = status_json(&status);
            v["escrow"] = json!(resp.escrow);
            v["io_burned"] = json!(resp.io_burned);
            v["uploaded_bytes"] = json!(sent);
            println!("{v}");
        }
        Ok(if failed { crate::EXIT_JOB_FAILED } else { 0 })
    })
}

/// Polls the job, printing each change, until every shard has a receipt
/// (and, with `until_settled`, until every shard is settled).
pub async fn follow(
    channel: &Channel,
    url: &str,
    job: &Hash32,
    quiet: bool,
    until_settled: bool,
    timeout: Duration,
) -> Result<pb::JobStatus, Failure> {
    let start = Instant::now();
    let mut last = String::new();
    let mut shown = false;
    let mut seen_state = String::new();
    loop {
        // A long poll: the coordinator answers when the job moves.
        let wait = timeout
            .saturating_sub(start.elapsed())
            .min(Duration::from_secs(10));
        let status = RenterClient::new(channel.clone())
            .get_job(pb::GetJobRequest {
                inline_outputs_max_bytes: 0,
                job_id: job.0.to_vec(),
                wait_ms: u32::try_from(wait.as_millis()).unwrap_or(10_000),
                seen_state: std::mem::take(&mut seen_state),
                auth: None,
            })
            .await
            .map_err(rpc(url))?
            .into_inner();
        seen_state.clone_from(&status.state);
        let line = progress(&status);
        if !quiet && line != last {
            println!("{:>6.1}s      {line}", start.elapsed().as_secs_f64());
            let _ = std::io::stdout().flush();
        }
        last = line;
        if status.state == "failed" {
            let why: Vec<String> = status
                .shards
                .iter()
                .filter(|s| s.state == "failed")
                .map(|s| format!("shard {}: {}", s.index, s.why_not_matched))
                .collect();
            return Err(Failure::fault(anyhow::anyhow!(
                "job {job} failed: {}",
                why.join("; ")
            )));
        }
        let finished = status.state == "done" || status.state == "settled";
        if finished && !shown {
            shown = true;
            if !quiet {
                let root = convert::hash("result_root", &status.result_root)
                    .map(|h| h.to_hex())
                    .unwrap_or_default();
                println!("result root  {root}");
                for s in &status.shards {
                    if let Some(r) = &s.receipt {
                        let outcome = convert::outcome("outcome", r.outcome)
                            .map(|o| o.to_string())
                            .unwrap_or_default();
                        let root = convert::hash("outputs_root", &r.outputs_root)
                            .map(|h| h.short())
                            .unwrap_or_default();
                        let who = convert::node_id("provider", &s.provider)
                            .map(|n| n.to_hex())
                            .unwrap_or_default();
                        println!(
                            "  shard {}    {outcome:<10} outputs {root}  provider {}  fuel {}",
                            s.index,
                            who.get(..12).unwrap_or(""),
                            r.fuel_used
                        );
                    }
                }
            }
        }
        if finished && (!until_settled || status.state == "settled") {
            return Ok(status);
        }
        if start.elapsed() > timeout {
            return Err(Failure::fault(anyhow::anyhow!(
                "job {job} is still {} after {}s: see `assay job status {job}`",
                status.state,
                timeout.as_secs()
            )));
        }
    }
}

/// One line: queued → matched → running on N providers → done.
fn progress(s: &pb::JobStatus) -> String {
    let n = s.shards.len();
    let done = s.shards.iter().filter(|x| x.state == "done").count();
    let leased: Vec<&pb::ShardStatus> = s.shards.iter().filter(|x| x.state == "leased").collect();
    let mut providers: Vec<&[u8]> = s
        .shards
        .iter()
        .filter(|x| x.state != "queued")
        .map(|x| x.provider.as_slice())
        .collect();
    providers.sort();
    providers.dedup();
    match s.state.as_str() {
        "queued" => {
            let why = s
                .shards
                .first()
                .map(|x| x.why_not_matched.as_str())
                .unwrap_or("");
            format!("queued       {n} shard(s) waiting: {why}")
        }
        "running" if done == 0 && leased.is_empty() => format!("matched      {n} shard(s)"),
        "running" => format!(
            "running      on {} provider(s): {done}/{n} shards done, {} running, {} queued",
            providers.len(),
            leased.len(),
            n - done - leased.len()
        ),
        "done" => format!(
            "done         {n}/{n} shards on {} provider(s); checks: {}",
            providers.len(),
            checks(s)
        ),
        "settled" => format!("settled      {n}/{n} shards paid; checks: {}", checks(s)),
        other => other.to_string(),
    }
}

/// How many shards are in each check state, e.g. `1 verified, 1 not-sampled`.
fn checks(s: &pb::JobStatus) -> String {
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for x in &s.shards {
        if let Some(v) = &x.verification {
            *by.entry(v.state.as_str()).or_default() += 1;
        }
    }
    by.iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The job as JSON.
pub fn status_json(s: &pb::JobStatus) -> serde_json::Value {
    let hex = |b: &[u8]| hex::encode(b);
    json!({
        "job_id": hex(&s.job_id),
        "state": s.state,
        "result_root": hex(&s.result_root),
        "escrow": s.escrow,
        "max_price": s.max_price,
        "shards": s.shards.iter().map(|x| {
            let receipt = x.receipt.as_ref().and_then(|r| convert::receipt(Some(r)).ok());
            json!({
                "index": x.index,
                "state": x.state,
                "shard_job_id": hex(&x.shard_job_id),
                "provider": hex(&x.provider),
                "attempts": x.attempts,
                "why_not_matched": x.why_not_matched,
                "settled": x.settled,
                "paid": x.paid,
                "outcome": receipt.as_ref().map(|r| r.body.outcome),
                "outputs_root": receipt.as_ref().map(|r| r.body.outputs_root),
                "receipt_id": receipt.as_ref().map(|r| r.id()),
                "receipt": receipt,
                // A failed run's message for people (not hashed), whole.
                "message": (!x.failure_message.is_empty()).then_some(&x.failure_message),
                "outputs": x.outputs.iter().map(|o| json!({"name": o.name, "hash": hex(&o.hash), "size": o.size})).collect::<Vec<_>>(),
                "verification": x.verification.as_ref().map(|v| json!({
                    "state": v.state,
                    "epoch": v.epoch,
                    "reason": v.reason,
                    "note": v.note,
                    "verdicts": v.verdicts.iter().map(|d| json!({
                        "verifier": hex(&d.verifier),
                        "role": d.role,
                        "agrees": d.agrees,
                        "outputs_root": hex(&d.outputs_root),
                        "fuel_used": d.fuel_used,
                        "at_ms": d.at_ms,
                        "arbitration": d.arbitration,
                    })).collect::<Vec<_>>(),
                })),
                "rejected_receipts": x.rejected_receipts.iter().map(|r| hex(r)).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
        "guarantee": s.guarantee.as_ref().map(|g| json!({
            "rate": f64::from(g.rate_ppm) / 1e6,
            "slash_bps": g.slash_bps,
            "providers": g.providers.iter().map(|p| json!({
                "provider": hex(&p.provider),
                "stake": p.stake,
                "receipts": p.receipts,
                "escape_probability": p.escape.iter().map(|e| json!({
                    "cheat_fraction": e.cheat_fraction,
                    "probability": e.probability,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })),
    })
}

/// A probability in (0, 1] → parts per million.
fn parse_rate(s: &str) -> Result<u32, String> {
    let p: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number: give a fraction such as 0.05"))?;
    if !(p > 0.0 && p <= 1.0) {
        return Err(format!(
            "{s}: a verification rate is a fraction in (0, 1]; use --unverified to opt out"
        ));
    }
    Ok(((p * 1e6).round() as u32).max(1))
}
