//! `assay ledger verify`: checks the ledger's hash chain, balances and
//! supply invariants — straight from the database, or from a coordinator's
//! export (recomputed here, so the coordinator need not be trusted).
//! `assay ledger supply`: both units' supply.

use std::path::PathBuf;

use assay_coordinator::ledger::{self, Entry, Unit};
use assay_proto::pb;
use assay_proto::pb::renter_client::RenterClient;
use clap::{Args, Subcommand};
use tokio_stream::StreamExt;

use super::net::{CoordinatorUrl, amount, rpc};
use crate::Failure;

#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    pub command: LedgerCommand,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute the hash chain and every balance; exit 1 if anything is off.
    Verify {
        /// Read the database directly: sqlite://PATH or postgres://… (no coordinator needed).
        #[arg(long, value_name = "URL")]
        database: Option<String>,
        /// Read the SQLite database of this coordinator data directory.
        #[arg(long, value_name = "DIR", conflicts_with = "database")]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        coordinator: CoordinatorUrl,
    },
    /// IO's and IOSD's supply (cap, genesis, emitted, burned, held; minted,
    /// burned, supply) and the IO price, in base units.
    Supply(super::economy::SupplyArgs),
}

fn report(r: &ledger::Report) -> u8 {
    if r.ok() {
        println!(
            "ledger OK    {} entries, head {}, each unit's balances sum to zero",
            r.entries,
            hex::encode(r.head)
        );
        let (io, iosd) = (&r.supply.io, &r.supply.iosd);
        println!(
            "IO           cap {} = genesis {} + emitted {} + unemitted {}; held {} (burned {})",
            amount(io.cap),
            amount(io.genesis),
            amount(io.emitted),
            amount(io.unemitted),
            amount(io.held),
            amount(io.burned)
        );
        println!(
            "IOSD         supply {} = minted {} (each by burning IO) − burned {}",
            amount(iosd.supply),
            amount(iosd.minted),
            amount(iosd.burned)
        );
        0
    } else {
        println!("ledger BROKEN ({} problems):", r.problems.len());
        for p in &r.problems {
            println!("  {p}");
        }
        1
    }
}

pub fn main(args: LedgerArgs) -> Result<u8, Failure> {
    let (database, data_dir, coordinator) = match args.command {
        LedgerCommand::Verify {
            database,
            data_dir,
            coordinator,
        } => (database, data_dir, coordinator),
        LedgerCommand::Supply(a) => return super::economy::supply(a),
    };
    if database.is_some() || data_dir.is_some() {
        let dir = data_dir.unwrap_or_else(|| PathBuf::from("."));
        if database.is_none() && !dir.join("coordinator.db").exists() {
            return Err(Failure::usage(anyhow::anyhow!(
                "no coordinator.db in {}: pass the coordinator's --data-dir",
                dir.display()
            )));
        }
        let store = assay_coordinator::open_store(database.as_deref(), &dir, Default::default())
            .map_err(Failure::usage)?;
        let r = store.verify_ledger().map_err(Failure::fault)?;
        return Ok(report(&r));
    }
    let url = coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = coordinator.channel(&rt)?;
    rt.block_on(async {
        let mut client = RenterClient::new(channel);
        let mut stream = client
            .export_ledger(pb::ExportLedgerRequest {})
            .await
            .map_err(rpc(&url))?
            .into_inner();
        let mut entries = Vec::new();
        let mut unknown = Vec::new();
        while let Some(e) = stream.next().await {
            let e = e.map_err(rpc(&url))?;
            let fixed = |b: &[u8]| <[u8; 32]>::try_from(b).unwrap_or([0; 32]);
            let unit = Unit::parse(&e.unit).unwrap_or_else(|| {
                unknown.push(format!("entry {}: unknown unit {:?}", e.seq, e.unit));
                Unit::Iosd
            });
            entries.push(Entry {
                seq: e.seq,
                format: u8::try_from(e.format).unwrap_or(u8::MAX),
                unit,
                kind: e.kind,
                debit: e.debit,
                credit: e.credit,
                amount: e.amount,
                reference: e.reference,
                at_ms: e.at_ms,
                prev_hash: fixed(&e.prev_hash),
                hash: fixed(&e.hash),
            });
        }
        // Recomputed here from the export …
        let mut r = ledger::verify(&entries, None, None);
        r.problems.extend(unknown);
        // … and the coordinator's own check of its stored balances and head.
        let theirs = client
            .verify_ledger(pb::VerifyLedgerRequest {})
            .await
            .map_err(rpc(&url))?
            .into_inner();
        r.problems
            .extend(theirs.problems.iter().map(|p| format!("coordinator: {p}")));
        if theirs.head != r.head.to_vec() && theirs.problems.is_empty() {
            r.problems
                .push("the coordinator's head is not the exported chain's head".into());
        }
        Ok(report(&r))
    })
}
