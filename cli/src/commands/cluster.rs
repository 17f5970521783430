//! `assay cluster …`: reserved clusters. A renter holds one slot on each of
//! N providers for a period, paying each its reserve price per slot-hour
//! pro rata; `assay publish --cluster ID` runs a job only on the members.
//! Providers see their reservations with `assay cluster list --provider
//! NODE`.

use assay_coordinator::ledger::accounts::parse_amount;
use assay_proto::pb;
use assay_proto::pb::clusters_client::ClustersClient;
use assay_protocol::{Hash32, NodeId};
use clap::{Args, Subcommand};
use serde_json::json;

use super::net::{CoordinatorUrl, amount, rpc, signed};
use crate::Failure;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
    /// Print JSON (amounts in µIOSD).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Reserve one slot on each of N providers for some hours; escrows
    /// their reserve prices × hours from your IOSD balance.
    Create {
        /// Providers to reserve (1..=64), one slot each.
        #[arg(long)]
        gpus: u32,
        /// "cpu" for CPU-only providers, or part of a GPU's name ("H100",
        /// "4090", any case); empty: any provider.
        #[arg(long, default_value = "")]
        gpu_class: String,
        /// Least reliability of a member, a fraction (e.g. 0.9).
        #[arg(long, default_value = "0", value_parser = parse_permille)]
        min_reliability: u32,
        /// Hours to reserve (1..=720; extend for more).
        #[arg(long, default_value_t = 1)]
        hours: u32,
        /// The most you pay a member, IOSD per slot-hour (e.g. 2.5).
        #[arg(long, value_parser = parse_amount)]
        max_price: u64,
    },
    /// Your clusters, or a provider's reservations (--provider).
    List {
        /// A provider: the clusters it holds (or held) a slot for.
        #[arg(long, conflicts_with = "renter")]
        provider: Option<NodeId>,
        /// A renter [default: this node].
        #[arg(long)]
        renter: Option<NodeId>,
        /// Only active clusters.
        #[arg(long)]
        active: bool,
    },
    /// A cluster: its members, their prices and pay, its escrow.
    Show { cluster: Hash32 },
    /// Extend an active cluster by some hours (escrows the members'
    /// reserve prices × hours more).
    Extend {
        cluster: Hash32,
        #[arg(long)]
        hours: u32,
    },
    /// End an active cluster now: members are paid to now, the rest of the
    /// escrow comes back; its queued shards fail and are refunded.
    Release { cluster: Hash32 },
}

/// A fraction with at most three decimals as per mille ("0.95" → 950).
fn parse_permille(s: &str) -> Result<u32, String> {
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    let bad = || format!("{s:?} is not a fraction between 0 and 1 (at most 3 decimals, e.g. 0.95)");
    if frac.len() > 3
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (whole.is_empty() && frac.is_empty())
    {
        return Err(bad());
    }
    let whole: u32 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}").parse().map_err(|_| bad())?
    };
    let v = whole.checked_mul(1000).and_then(|w| w.checked_add(frac));
    v.filter(|v| *v <= 1000).ok_or_else(bad)
}

pub fn main(args: ClusterArgs) -> Result<u8, Failure> {
    let url = args.coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = args.coordinator.channel(&rt)?;
    let key = super::net::signer(&rt, &channel, &url)?;
    rt.block_on(async {
        let mut client = ClustersClient::new(channel);
        let one = match args.command {
            ClusterCommand::Create {
                gpus,
                gpu_class,
                min_reliability,
                hours,
                max_price,
            } => {
                let req = signed(
                    &key,
                    pb::CreateClusterRequest {
                        auth: None,
                        gpus,
                        gpu_class,
                        min_reliability_permille: min_reliability,
                        hours,
                        max_price,
                    },
                )?;
                client.create_cluster(req).await
            }
            ClusterCommand::Extend { cluster, hours } => {
                let req = signed(
                    &key,
                    pb::ExtendClusterRequest {
                        auth: None,
                        cluster_id: cluster.0.to_vec(),
                        hours,
                    },
                )?;
                client.extend_cluster(req).await
            }
            ClusterCommand::Release { cluster } => {
                let req = signed(
                    &key,
                    pb::ReleaseClusterRequest {
                        auth: None,
                        cluster_id: cluster.0.to_vec(),
                    },
                )?;
                client.release_cluster(req).await
            }
            ClusterCommand::Show { cluster } => {
                client
                    .get_cluster(pb::GetClusterRequest {
                        cluster_id: cluster.0.to_vec(),
                    })
                    .await
            }
            ClusterCommand::List {
                provider,
                renter,
                active,
            } => {
                let (renter, provider) = match provider {
                    Some(p) => (Vec::new(), p.0.to_vec()),
                    None => (renter.unwrap_or(key.id()).0.to_vec(), Vec::new()),
                };
                let list = client
                    .list_clusters(pb::ListClustersRequest {
                        renter,
                        provider,
                        active_only: active,
                        limit: 0,
                    })
                    .await
                    .map_err(rpc(&url))?
                    .into_inner();
                if args.json {
                    let all: Vec<_> = list.clusters.iter().map(cluster_json).collect();
                    println!("{}", serde_json::Value::Array(all));
                } else if list.clusters.is_empty() {
                    println!("no clusters");
                } else {
                    for c in &list.clusters {
                        print_line(c);
                    }
                }
                return Ok(0);
            }
        }
        .map_err(rpc(&url))?
        .into_inner();
        if args.json {
            println!("{}", cluster_json(&one));
        } else {
            print_cluster(&one);
        }
        Ok(0)
    })
}

fn cluster_json(c: &pb::Cluster) -> serde_json::Value {
    json!({
        "cluster": hex::encode(&c.cluster_id),
        "renter": hex::encode(&c.renter),
        "state": c.state,
        "gpus": c.gpus,
        "gpu_class": c.gpu_class,
        "min_reliability_permille": c.min_reliability_permille,
        "max_price": c.max_price,
        "starts_ms": c.starts_ms,
        "ends_ms": c.ends_ms,
        "ended_ms": c.ended_ms,
        "escrowed": c.escrowed,
        "escrow_left": c.escrow_left,
        "paid": c.paid,
        "refunded": c.refunded,
        "members": c.members.iter().map(|m| json!({
            "provider": hex::encode(&m.provider),
            "state": m.state,
            "reserve_price": m.reserve_price,
            "work_price": m.work_price,
            "joined_ms": m.joined_ms,
            "left_ms": m.left_ms,
            "why_left": m.why_left,
            "budget": m.budget,
            "paid": m.paid,
        })).collect::<Vec<_>>(),
    })
}

fn print_line(c: &pb::Cluster) {
    let active = c.members.iter().filter(|m| m.state == "active").count();
    println!(
        "{}  {:<8} {active}/{} members  ends {}  escrow left {} IOSD",
        hex::encode(&c.cluster_id),
        c.state,
        c.gpus,
        c.ends_ms,
        amount(c.escrow_left)
    );
}

fn print_cluster(c: &pb::Cluster) {
    println!("cluster      {}", hex::encode(&c.cluster_id));
    println!("renter       {}", hex::encode(&c.renter));
    println!("state        {}", c.state);
    let class = if c.gpu_class.is_empty() {
        "any"
    } else {
        &c.gpu_class
    };
    println!(
        "wanted       {} providers, class {class}, reliability ≥ {}‰, at most {} IOSD/slot-hour",
        c.gpus,
        c.min_reliability_permille,
        amount(c.max_price)
    );
    println!("period       {} → {} (Unix ms)", c.starts_ms, c.ends_ms);
    println!(
        "escrow       {} IOSD: {} paid, {} refunded, {} left",
        amount(c.escrowed),
        amount(c.paid),
        amount(c.refunded),
        amount(c.escrow_left)
    );
    for m in &c.members {
        let left = if m.state == "active" {
            String::new()
        } else {
            format!(", left at {} ({})", m.left_ms, m.why_left)
        };
        println!(
            "member       {}  {}  {} IOSD/slot-hour, work at {} µIOSD/Munit, paid {} of {} IOSD{left}",
            hex::encode(&m.provider),
            m.state,
            amount(m.reserve_price),
            m.work_price,
            amount(m.paid),
            amount(m.budget)
        );
    }
    if c.state == "active" {
        println!(
            "run a job    assay publish JOB.wasm --cluster {} --max-price P …",
            hex::encode(&c.cluster_id)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_permille;

    #[test]
    fn reliability_fractions_parse_to_per_mille_without_floats() {
        assert_eq!(parse_permille("0.95"), Ok(950));
        assert_eq!(parse_permille("1"), Ok(1000));
        assert_eq!(parse_permille(".5"), Ok(500));
        assert_eq!(parse_permille("0"), Ok(0));
        assert!(parse_permille("1.001").is_err());
        assert!(parse_permille("0.9999").is_err());
        assert!(parse_permille("-1").is_err());
        assert!(parse_permille("").is_err());
    }
}
