//! `assay note …` and `assay bond …`: tokenized compute. A note sells a
//! device's cash flow for a term (0.9 of what it earns to the share
//! holders); a bond raises IOSD now, repaid from the device's earnings.
//! Both are issued with the device's own key (run them with the
//! provider's `ASSAY_HOME`).

use assay_coordinator::ledger::accounts::parse_amount;
use assay_proto::pb;
use assay_proto::pb::economy_client::EconomyClient;
use assay_protocol::{Hash32, NodeId};
use clap::{Args, Subcommand};
use serde_json::json;

use super::net::{CoordinatorUrl, amount, rpc, signed};
use crate::Failure;

#[derive(Debug, Args)]
pub struct NoteArgs {
    #[command(subcommand)]
    pub command: NoteCommand,
    /// Print JSON (amounts in base units).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
}

#[derive(Debug, Subcommand)]
pub enum NoteCommand {
    /// Sell this device's cash flow for a term as N shares (you hold them all).
    Issue {
        /// The device: this node (a note is issued with the device's own key).
        #[arg(long)]
        device: Option<NodeId>,
        #[arg(long)]
        shares: u64,
        #[arg(long)]
        term_days: u32,
    },
    /// Offer some of your shares at a price in IO each (0 shares withdraws).
    Offer {
        note: Hash32,
        #[arg(long)]
        shares: u64,
        /// IO per share, e.g. 0.5.
        #[arg(long, value_parser = parse_amount)]
        price: u64,
    },
    /// Buy shares from a holder's offer, paying IO.
    Buy {
        note: Hash32,
        /// The seller.
        #[arg(long)]
        from: NodeId,
        #[arg(long)]
        shares: u64,
        /// The most IO a share you pay.
        #[arg(long, value_parser = parse_amount)]
        max_price: u64,
    },
    /// Give shares to another node.
    Transfer {
        note: Hash32,
        #[arg(long)]
        to: NodeId,
        #[arg(long)]
        shares: u64,
    },
    /// A note: terms, holders, offers.
    Show { note: Hash32 },
}

#[derive(Debug, Args)]
pub struct BondArgs {
    #[command(subcommand)]
    pub command: BondCommand,
    /// Print JSON (amounts in base units).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
}

#[derive(Debug, Subcommand)]
pub enum BondCommand {
    /// Raise IOSD for this device: a bond repaid from its earnings.
    Issue {
        /// The device: this node (a bond is issued with the device's own key).
        #[arg(long)]
        device: Option<NodeId>,
        /// IOSD to raise, e.g. 500.
        #[arg(long, value_parser = parse_amount)]
        principal: u64,
        /// Coupon, basis points a year.
        #[arg(long)]
        coupon_bps: u32,
        #[arg(long)]
        maturity_days: u32,
    },
    /// Buy principal of a bond, paying IOSD to its operator.
    Buy {
        bond: Hash32,
        /// IOSD, e.g. 100.
        #[arg(long, value_parser = parse_amount)]
        amount: u64,
    },
    /// A bond: terms, escrow, coupons, holders, state.
    Show { bond: Hash32 },
}

fn own_device(device: Option<NodeId>, me: NodeId) -> Result<(), Failure> {
    match device {
        Some(d) if d != me => Err(Failure::usage(anyhow::anyhow!(
            "--device {d} is not this node ({me}): issue it with the device's own key (ASSAY_HOME of its provider)"
        ))),
        _ => Ok(()),
    }
}

pub fn note(args: NoteArgs) -> Result<u8, Failure> {
    let url = args.coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = args.coordinator.channel(&rt)?;
    let key = super::net::signer(&rt, &channel, &url)?;
    rt.block_on(async {
        let mut client = EconomyClient::new(channel);
        let r = match args.command {
            NoteCommand::Issue {
                device,
                shares,
                term_days,
            } => {
                own_device(device, key.id())?;
                let req = signed(
                    &key,
                    pb::IssueNoteRequest {
                        auth: None,
                        shares,
                        term_days,
                    },
                )?;
                client.issue_note(req).await
            }
            NoteCommand::Offer {
                note,
                shares,
                price,
            } => {
                let req = signed(
                    &key,
                    pb::OfferSharesRequest {
                        auth: None,
                        note_id: note.0.to_vec(),
                        shares,
                        price,
                    },
                )?;
                client.offer_shares(req).await
            }
            NoteCommand::Buy {
                note,
                from,
                shares,
                max_price,
            } => {
                let req = signed(
                    &key,
                    pb::BuySharesRequest {
                        auth: None,
                        note_id: note.0.to_vec(),
                        seller: from.0.to_vec(),
                        shares,
                        max_price,
                    },
                )?;
                client.buy_shares(req).await
            }
            NoteCommand::Transfer { note, to, shares } => {
                let req = signed(
                    &key,
                    pb::TransferSharesRequest {
                        auth: None,
                        note_id: note.0.to_vec(),
                        to: to.0.to_vec(),
                        shares,
                    },
                )?;
                client.transfer_shares(req).await
            }
            NoteCommand::Show { note } => {
                client
                    .get_note(pb::GetNoteRequest {
                        note_id: note.0.to_vec(),
                    })
                    .await
            }
        }
        .map_err(rpc(&url))?
        .into_inner();
        if args.json {
            println!("{}", note_json(&r));
        } else {
            print_note(&r);
        }
        Ok(0)
    })
}

fn note_json(n: &pb::NoteResponse) -> serde_json::Value {
    json!({
        "note": hex::encode(&n.note_id),
        "device": hex::encode(&n.device),
        "shares": n.shares,
        "holders_bps": n.holders_bps,
        "term_days": n.term_days,
        "issued_at": n.issued_at,
        "ends_at": n.ends_at,
        "holders": n.holdings.iter().map(|h| json!({"holder": hex::encode(&h.holder), "shares": h.amount})).collect::<Vec<_>>(),
        "offers": n.offers.iter().map(|o| json!({"seller": hex::encode(&o.seller), "shares": o.shares, "price": o.price})).collect::<Vec<_>>(),
    })
}

fn print_note(n: &pb::NoteResponse) {
    println!("note     {}", hex::encode(&n.note_id));
    println!("device   {}", hex::encode(&n.device));
    println!(
        "terms    {} shares, {} days; {}.{:02} % of what the device earns goes to the holders",
        n.shares,
        n.term_days,
        n.holders_bps / 100,
        n.holders_bps % 100
    );
    for h in &n.holdings {
        println!("holder   {}  {} shares", hex::encode(&h.holder), h.amount);
    }
    for o in &n.offers {
        println!(
            "offer    {}  {} shares at {} IO",
            hex::encode(&o.seller),
            o.shares,
            amount(o.price)
        );
    }
}

pub fn bond(args: BondArgs) -> Result<u8, Failure> {
    let url = args.coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = args.coordinator.channel(&rt)?;
    let key = super::net::signer(&rt, &channel, &url)?;
    rt.block_on(async {
        let mut client = EconomyClient::new(channel);
        let r = match args.command {
            BondCommand::Issue {
                device,
                principal,
                coupon_bps,
                maturity_days,
            } => {
                own_device(device, key.id())?;
                let req = signed(
                    &key,
                    pb::IssueBondRequest {
                        auth: None,
                        principal,
                        coupon_bps,
                        maturity_days,
                    },
                )?;
                client.issue_bond(req).await
            }
            BondCommand::Buy { bond, amount } => {
                let req = signed(
                    &key,
                    pb::BuyBondRequest {
                        auth: None,
                        bond_id: bond.0.to_vec(),
                        amount,
                    },
                )?;
                client.buy_bond(req).await
            }
            BondCommand::Show { bond } => {
                client
                    .get_bond(pb::GetBondRequest {
                        bond_id: bond.0.to_vec(),
                    })
                    .await
            }
        }
        .map_err(rpc(&url))?
        .into_inner();
        if args.json {
            println!(
                "{}",
                json!({
                    "bond": hex::encode(&r.bond_id),
                    "device": hex::encode(&r.device),
                    "principal": r.principal,
                    "sold": r.sold,
                    "coupon_bps": r.coupon_bps,
                    "maturity_days": r.maturity_days,
                    "issued_at": r.issued_at,
                    "matures_at": r.matures_at,
                    "coupon_total": r.coupon_total,
                    "coupon_paid": r.coupon_paid,
                    "escrowed": r.escrowed,
                    "state": r.state,
                    "shortfall": r.shortfall,
                    "holders": r.holdings.iter().map(|h| json!({"holder": hex::encode(&h.holder), "principal": h.amount})).collect::<Vec<_>>(),
                })
            );
        } else {
            println!("bond     {}  ({})", hex::encode(&r.bond_id), r.state);
            println!("device   {}", hex::encode(&r.device));
            println!(
                "terms    {} IOSD ({} sold), {} bps a year, {} days",
                amount(r.principal),
                amount(r.sold),
                r.coupon_bps,
                r.maturity_days
            );
            println!(
                "coupons  {} of {} IOSD paid; escrow {} IOSD",
                amount(r.coupon_paid),
                amount(r.coupon_total),
                amount(r.escrowed)
            );
            if r.shortfall > 0 {
                println!(
                    "default  {} IOSD short: the holders took the escrow and the device's stake",
                    amount(r.shortfall)
                );
            }
            for h in &r.holdings {
                println!(
                    "holder   {}  {} IOSD",
                    hex::encode(&h.holder),
                    amount(h.amount)
                );
            }
        }
        Ok(0)
    })
}
