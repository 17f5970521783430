//! The economy from the command line: `assay ledger supply`, `assay
//! rewards`, `assay stake` / `assay unstake`, and `assay oracle` (the
//! signed IO price feed).

use std::io::Write;
use std::time::Duration;

use assay_coordinator::ledger::accounts::parse_amount;
use assay_proto::pb::economy_client::EconomyClient;
use assay_proto::pb::renter_client::RenterClient;
use assay_proto::{now_ms, pb};
use assay_protocol::oracle::PriceReport;
use clap::{Args, Subcommand};
use serde_json::json;

use super::net::{CoordinatorUrl, amount, node_key, rpc, signed};
use crate::Failure;

#[derive(Debug, Args)]
pub struct SupplyArgs {
    /// Print JSON (base units).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
}

#[derive(Debug, Args)]
pub struct RewardsArgs {
    /// Only this epoch.
    #[arg(long)]
    pub epoch: Option<u64>,
    /// At most this many epochs, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV: one row per provider paid (or nominated) per epoch.
    #[arg(long)]
    pub csv: bool,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
}

#[derive(Debug, Args)]
pub struct StakeArgs {
    /// IO to move from your IO balance into your stake (or back, with
    /// `unstake`: it is spendable after the cooldown), e.g. 200 or 0.5.
    #[arg(value_parser = parse_amount)]
    pub amount: u64,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
}

#[derive(Debug, Args)]
pub struct OracleArgs {
    #[command(subcommand)]
    pub command: OracleCommand,
}

#[derive(Debug, Subcommand)]
pub enum OracleCommand {
    /// Print this node's key: pass it to `assay coordinator --oracle-key`.
    Id,
    /// Sign one price report with this node's key and post it.
    Post {
        /// IOSD per IO, e.g. 1.5.
        #[arg(long, value_parser = parse_amount)]
        price: u64,
        #[command(flatten)]
        coordinator: CoordinatorUrl,
    },
    /// Post a fixed price every interval until stopped (a devnet's feed).
    Run {
        /// IOSD per IO, e.g. 1.5.
        #[arg(long, value_parser = parse_amount)]
        price: u64,
        /// How often, ms.
        #[arg(long, default_value_t = 5_000)]
        every_ms: u64,
        #[command(flatten)]
        coordinator: CoordinatorUrl,
    },
}

pub fn supply(args: SupplyArgs) -> Result<u8, Failure> {
    let url = args.coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = args.coordinator.channel(&rt)?;
    rt.block_on(async {
        let s = EconomyClient::new(channel)
            .get_supply(pb::GetSupplyRequest {})
            .await
            .map_err(rpc(&url))?
            .into_inner();
        let oracle = match &s.price {
            Some(p) => json!({
                "micro_iosd_per_io": p.micro_iosd_per_io,
                "source": p.source,
                "key": hex::encode(&p.oracle),
                "round": p.round,
                "at_ms": p.at_ms,
            }),
            None => json!({ "error": s.price_error }),
        };
        if args.json {
            println!(
                "{}",
                json!({
                    "decimals": assay_coordinator::ledger::DECIMALS,
                    "io": {
                        "cap": s.io_cap,
                        "genesis": s.io_genesis,
                        "emitted": s.io_emitted,
                        "unemitted": s.io_unemitted,
                        "burned": s.io_burned,
                        "held": s.io_held,
                    },
                    "iosd": {
                        "minted": s.iosd_minted,
                        "burned": s.iosd_burned,
                        "supply": s.iosd_supply,
                        "legacy_minted": s.iosd_legacy_minted,
                    },
                    "oracle": oracle,
                })
            );
            return Ok(0);
        }
        println!("IO    cap        {}", amount(s.io_cap));
        println!("      genesis    {}", amount(s.io_genesis));
        println!(
            "      emitted    {}   (block rewards)",
            amount(s.io_emitted)
        );
        println!("      unemitted  {}", amount(s.io_unemitted));
        println!("      burned     {}", amount(s.io_burned));
        println!("      held       {}", amount(s.io_held));
        println!(
            "IOSD  minted     {}   (only by burning IO)",
            amount(s.iosd_minted)
        );
        println!("      burned     {}", amount(s.iosd_burned));
        println!("      supply     {}", amount(s.iosd_supply));
        match &s.price {
            Some(p) => println!(
                "price {} IOSD per IO ({}{})",
                amount(p.micro_iosd_per_io),
                p.source,
                if p.round > 0 {
                    format!(", round {}", p.round)
                } else {
                    String::new()
                }
            ),
            None => println!("price none: {}", s.price_error),
        }
        Ok(0)
    })
}

pub fn rewards(args: RewardsArgs) -> Result<u8, Failure> {
    let url = args.coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = args.coordinator.channel(&rt)?;
    rt.block_on(async {
        let epochs = EconomyClient::new(channel)
            .list_reward_epochs(pb::ListRewardEpochsRequest {
                before: 0,
                limit: args.limit,
                epoch: args.epoch.unwrap_or(0),
                has_epoch: args.epoch.is_some(),
            })
            .await
            .map_err(rpc(&url))?
            .into_inner()
            .epochs;
        if args.json {
            let list: Vec<_> = epochs.iter().map(epoch_json).collect();
            println!("{}", json!({ "epochs": list }));
        } else if args.csv {
            println!(
                "epoch,start_ms,end_ms,scheduled,emitted,nominated,paid,failed,provider,work_units,uptime_ms,provider_failed,amount"
            );
            for e in &epochs {
                let head = format!(
                    "{},{},{},{},{},{},{},{}",
                    e.epoch,
                    e.start_ms,
                    e.end_ms,
                    e.scheduled,
                    e.emitted,
                    e.nominated,
                    e.paid,
                    e.failed
                );
                if e.payouts.is_empty() {
                    println!("{head},,,,,");
                }
                for p in &e.payouts {
                    println!(
                        "{head},{},{},{},{},{}",
                        hex::encode(&p.provider),
                        p.work_units,
                        p.uptime_ms,
                        p.failed,
                        p.amount
                    );
                }
            }
        } else {
            if epochs.is_empty() {
                println!("no reward epoch has closed yet");
            }
            for e in &epochs {
                println!(
                    "epoch {:>6}  emitted {} IO of {} scheduled  nominated {}  paid {}  failed {}",
                    e.epoch,
                    amount(e.emitted),
                    amount(e.scheduled),
                    e.nominated,
                    e.paid,
                    e.failed
                );
                for p in &e.payouts {
                    println!(
                        "    {}  {} IO  (work {} units, online {} ms{})",
                        hex::encode(&p.provider),
                        amount(p.amount),
                        p.work_units,
                        p.uptime_ms,
                        if p.failed { ", slashed or failed a challenge" } else { "" }
                    );
                }
            }
        }
        Ok(0)
    })
}

fn epoch_json(e: &pb::RewardEpoch) -> serde_json::Value {
    json!({
        "epoch": e.epoch,
        "start_ms": e.start_ms,
        "end_ms": e.end_ms,
        "scheduled": e.scheduled,
        "emitted": e.emitted,
        "nominated": e.nominated,
        "paid": e.paid,
        "failed": e.failed,
        "closed_at": e.closed_at,
        "providers": e.payouts.iter().map(|p| json!({
            "provider": hex::encode(&p.provider),
            "work_units": p.work_units,
            "uptime_ms": p.uptime_ms,
            "failed": p.failed,
            "amount": p.amount,
        })).collect::<Vec<_>>(),
    })
}

pub fn stake(args: StakeArgs, unstake: bool) -> Result<u8, Failure> {
    let url = args.coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = args.coordinator.channel(&rt)?;
    let key = super::net::signer(&rt, &channel, &url)?;
    rt.block_on(async {
        let a = if unstake {
            let req = signed(
                &key,
                pb::UnstakeRequest {
                    auth: None,
                    amount: args.amount,
                },
            )?;
            EconomyClient::new(channel).unstake(req).await
        } else {
            let req = signed(
                &key,
                pb::StakeRequest {
                    auth: None,
                    amount: args.amount,
                },
            )?;
            RenterClient::new(channel).stake(req).await
        }
        .map_err(rpc(&url))?
        .into_inner();
        super::faucet::print(&a);
        Ok(0)
    })
}

pub fn oracle(args: OracleArgs) -> Result<u8, Failure> {
    let key = node_key()?;
    let (price, every, coordinator) = match args.command {
        OracleCommand::Id => {
            println!("{}", key.id());
            return Ok(0);
        }
        OracleCommand::Post { price, coordinator } => (price, None, coordinator),
        OracleCommand::Run {
            price,
            every_ms,
            coordinator,
        } => (price, Some(every_ms.max(100)), coordinator),
    };
    let url = coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = coordinator.channel(&rt)?;
    rt.block_on(async {
        let mut client = EconomyClient::new(channel);
        loop {
            let at = now_ms();
            // Rounds increase with time, so a restarted feed goes on.
            let report = PriceReport {
                round: at,
                micro_iosd_per_io: price,
                at_ms: at,
            };
            let r = client
                .post_price(pb::PostPriceRequest {
                    round: report.round,
                    micro_iosd_per_io: report.micro_iosd_per_io,
                    at_ms: report.at_ms,
                    signature: report.sign(&key).0.to_vec(),
                })
                .await;
            let Some(every) = every else {
                // `post`: one report, and its answer.
                let p = r.map_err(rpc(&url))?.into_inner();
                println!(
                    "posted {} IOSD per IO (round {})",
                    amount(p.micro_iosd_per_io),
                    p.round
                );
                return Ok(0);
            };
            // `run`: a refused report is reported, and the feed goes on.
            if let Err(e) = r {
                eprintln!("oracle: {}", assay_proto::Error::from(e));
                let _ = std::io::stderr().flush();
            }
            tokio::select! {
                _ = super::net::shutdown_signal() => return Ok(0),
                _ = tokio::time::sleep(Duration::from_millis(every)) => {}
            }
        }
    })
}
