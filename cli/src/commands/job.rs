//! `assay job status|outputs|receipt ID`.

use std::path::PathBuf;

use anyhow::Context;
use assay_proto::pb::renter_client::RenterClient;
use assay_proto::{client, convert, pb};
use assay_protocol::Hash32;
use clap::{Args, Subcommand};

use super::net::{CoordinatorUrl, amount, rpc};
use super::write_message;
use crate::Failure;

#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(subcommand)]
    pub command: JobCommand,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// State, shards, providers, receipts, payments, "why not matched".
    Status {
        /// The job id.
        id: Hash32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download the outputs (as the job's renter: this node's key) — each
    /// output concatenated over the shards in shard order into DIR/NAME,
    /// each shard's own copy in DIR/.assay/shard-I/.
    Outputs {
        /// The job id.
        id: Hash32,
        /// Where to write them.
        #[arg(long, short = 'o', value_name = "DIR")]
        out: PathBuf,
    },
    /// Print the signed receipts (JSON), one per shard.
    Receipt {
        /// The job id.
        id: Hash32,
        /// Only this shard.
        #[arg(long)]
        shard: Option<u32>,
    },
}

async fn get(
    channel: &tonic::transport::Channel,
    url: &str,
    id: &Hash32,
) -> Result<pb::JobStatus, Failure> {
    Ok(RenterClient::new(channel.clone())
        .get_job(pb::GetJobRequest {
            inline_outputs_max_bytes: 0,
            job_id: id.0.to_vec(),
            ..Default::default()
        })
        .await
        .map_err(rpc(url))?
        .into_inner())
}

pub fn main(args: JobArgs) -> Result<u8, Failure> {
    let url = args.coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = args.coordinator.channel(&rt)?;
    rt.block_on(async {
        match args.command {
            JobCommand::Status { id, json } => {
                let s = get(&channel, &url, &id).await?;
                if json {
                    println!("{}", super::publish::status_json(&s));
                    return Ok(0);
                }
                println!("job          {id}");
                println!("state        {}", s.state);
                println!(
                    "escrow       {} IOSD (max price {} µIOSD/Munit)",
                    amount(s.escrow),
                    s.max_price
                );
                if !s.result_root.is_empty() {
                    println!("result root  {}", hex::encode(&s.result_root));
                }
                for x in &s.shards {
                    let who = hex::encode(&x.provider);
                    let mut line = format!(
                        "  shard {:<3} {:<7} attempts {}  provider {}",
                        x.index,
                        x.state,
                        x.attempts,
                        if who.is_empty() {
                            "-"
                        } else {
                            who.get(..12).unwrap_or("")
                        }
                    );
                    if let Some(r) = x
                        .receipt
                        .as_ref()
                        .and_then(|r| convert::receipt(Some(r)).ok())
                    {
                        line.push_str(&format!(
                            "  {}  outputs {}  receipt {}",
                            r.body.outcome,
                            r.body.outputs_root.short(),
                            r.id().short()
                        ));
                        if x.settled {
                            line.push_str(&format!("  paid {} IOSD", amount(x.paid)));
                        }
                    }
                    if let Some(first) = x.failure_message.lines().next() {
                        line.push_str(&format!("\n              message: {first}"));
                    }
                    if !x.why_not_matched.is_empty() {
                        line.push_str(&format!(
                            "\n              why not matched: {}",
                            x.why_not_matched
                        ));
                    }
                    if let Some(v) = &x.verification {
                        line.push_str(&format!("\n              check: {}", v.state));
                        if !v.reason.is_empty() {
                            line.push_str(&format!(" ({})", v.reason));
                        }
                        if !v.note.is_empty() {
                            line.push_str(&format!(" — {}", v.note));
                        }
                        for d in &v.verdicts {
                            line.push_str(&format!(
                                "; {} {} by {}",
                                d.role,
                                if d.agrees { "agreed" } else { "disagreed" },
                                hex::encode(&d.verifier).get(..12).unwrap_or("")
                            ));
                            if !d.arbitration.is_empty() {
                                line.push_str(&format!(" ({})", d.arbitration));
                            }
                        }
                    }
                    if !x.rejected_receipts.is_empty() {
                        line.push_str(&format!(
                            "\n              {} earlier receipt(s) proven wrong: their provider was slashed and the shard redone",
                            x.rejected_receipts.len()
                        ));
                    }
                    println!("{line}");
                }
                if let Some(g) = &s.guarantee {
                    print_guarantee(g);
                }
                Ok(0)
            }
            JobCommand::Outputs { id, out } => {
                // Signed: a job's outputs go only to its renter (and the
                // nodes that ran or checked it).
                let key = super::net::bind(&channel, &url).await?;
                let s = get(&channel, &url, &id).await?;
                if s.shards.iter().any(|x| x.state != "done") {
                    return Err(Failure::usage(anyhow::anyhow!(
                        "job {id} is {}: outputs are ready once every shard is done",
                        s.state
                    )));
                }
                let mut joined: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
                let mut messages = Vec::new();
                for x in &s.shards {
                    let dir = out.join(".assay").join(format!("shard-{}", x.index));
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("creating {}", dir.display()))
                        .map_err(Failure::usage)?;
                    for o in convert::blob_refs("outputs", &x.outputs).map_err(Failure::fault)? {
                        let bytes = client::download(&channel, &key, Some(&id), &o.hash, o.size)
                            .await
                            .map_err(super::net::proto(&url))?;
                        std::fs::write(dir.join(&o.name), &bytes)
                            .map_err(|e| Failure::fault(anyhow::anyhow!("{e}")))?;
                        joined.entry(o.name).or_default().extend_from_slice(&bytes);
                    }
                    if let Some(r) = x
                        .receipt
                        .as_ref()
                        .and_then(|r| convert::receipt(Some(r)).ok())
                    {
                        let text = serde_json::to_vec_pretty(&r)
                            .map_err(|e| Failure::fault(anyhow::anyhow!("{e}")))?;
                        std::fs::write(dir.join("receipt.json"), text)
                            .map_err(|e| Failure::fault(anyhow::anyhow!("{e}")))?;
                    }
                    write_message(&dir, &x.failure_message).map_err(Failure::usage)?;
                    if !x.failure_message.is_empty() {
                        messages.push((x.index, x.failure_message.as_str()));
                    }
                }
                write_message(&out.join(".assay"), &failure_messages(s.shards.len(), &messages))
                    .map_err(Failure::usage)?;
                for (name, bytes) in &joined {
                    std::fs::write(out.join(name), bytes)
                        .with_context(|| format!("writing {}", out.join(name).display()))
                        .map_err(Failure::usage)?;
                    println!(
                        "  {name:<20} {:>12} bytes  {}",
                        bytes.len(),
                        Hash32::of(bytes).short()
                    );
                }
                println!(
                    "written to   {}/ (per shard in {}/.assay/)",
                    out.display(),
                    out.display()
                );
                Ok(0)
            }
            JobCommand::Receipt { id, shard } => {
                let s = get(&channel, &url, &id).await?;
                let mut receipts = Vec::new();
                for x in &s.shards {
                    if shard.is_some_and(|i| i != x.index) {
                        continue;
                    }
                    match x.receipt.as_ref().map(|r| convert::receipt(Some(r))) {
                        Some(Ok(r)) => receipts.push(r),
                        Some(Err(e)) => return Err(Failure::fault(e)),
                        None => {
                            return Err(Failure::usage(anyhow::anyhow!(
                                "shard {} of job {id} has no receipt yet ({})",
                                x.index,
                                x.state
                            )));
                        }
                    }
                }
                let text = if receipts.len() == 1 && shard.is_some() {
                    serde_json::to_string_pretty(&receipts[0])
                } else {
                    serde_json::to_string_pretty(&receipts)
                }
                .map_err(|e| Failure::fault(anyhow::anyhow!("{e}")))?;
                println!("{text}");
                Ok(0)
            }
        }
    })
}

/// The job's failure messages as one text: a one-shard job's message as is
/// (what `assay run` writes); for several shards, each under its index.
fn failure_messages(shards: usize, messages: &[(u32, &str)]) -> String {
    match messages {
        [(_, only)] if shards == 1 => (*only).to_string(),
        _ => messages
            .iter()
            .map(|(i, m)| format!("shard {i}:\n{m}\n"))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// The guarantee in force, in words.
fn print_guarantee(g: &pb::Guarantee) {
    if g.rate_ppm == 0 {
        println!("guarantee    none: the job opted out of verification");
        return;
    }
    let p = f64::from(g.rate_ppm) / 1e6;
    println!(
        "guarantee    each receipt re-executed with probability p = {p}; a provider proven wrong loses {}% of its stake",
        g.slash_bps / 100
    );
    for x in &g.providers {
        let odds: Vec<String> = x
            .escape
            .iter()
            .map(|e| format!("f={}: {:.3e}", e.cheat_fraction, e.probability))
            .collect();
        println!(
            "  provider {}  stake {} IO at risk, {} receipts; chance a cheat on a fraction f of its jobs is still undetected (1 − p·f)^n: {}",
            hex::encode(&x.provider).get(..12).unwrap_or(""),
            amount(x.stake),
            x.receipts,
            odds.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::failure_messages;

    #[test]
    fn one_failed_shard_of_one_is_its_message_and_several_are_headed() {
        assert_eq!(
            failure_messages(1, &[(0, "fuel exhausted")]),
            "fuel exhausted"
        );
        assert_eq!(
            failure_messages(3, &[(0, "a\nb"), (2, "c")]),
            "shard 0:\na\nb\n\nshard 2:\nc\n"
        );
        assert_eq!(failure_messages(4, &[(1, "only")]), "shard 1:\nonly\n");
        assert_eq!(failure_messages(2, &[]), "");
    }
}
