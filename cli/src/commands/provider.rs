//! `assay provider`: the provider daemon.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use assay_provider::cheat::Cheat;
use assay_provider::{Config, Hardware};
use clap::Args;

use super::net::CoordinatorUrl;
use crate::Failure;
use crate::spec_args::{DeviceArgs, parse_size};

#[derive(Debug, Args)]
pub struct ProviderArgs {
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
    /// Asking price, µIOSD per million work units.
    #[arg(long, default_value_t = 10)]
    pub price: u64,
    /// Stake to hold, µIO (topped up from this node's IO balance) (0: the floor of 200 IO × its class, when its IO balance covers it).
    #[arg(long, default_value_t = 0)]
    pub stake: u64,
    /// Jobs to run at once [default: cores / 2, at least 1].
    #[arg(long)]
    pub slots: Option<u32>,
    /// What a renter pays to reserve one of your slots in a cluster, IOSD
    /// per slot-hour (pro rata by the millisecond; `assay cluster`).
    #[arg(long, default_value = "1", value_parser = assay_coordinator::ledger::accounts::parse_amount)]
    pub reserve_price: u64,
    /// Memory to offer, e.g. 8GiB [default: all of this machine's].
    #[arg(long, value_parser = parse_size)]
    pub memory: Option<u64>,
    /// How often to ask for work when idle, ms.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
    /// Serve Prometheus metrics here (e.g. 127.0.0.1:9101).
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// On shutdown, how long running jobs may finish, ms.
    #[arg(long, default_value_t = 30_000)]
    pub drain_timeout_ms: u64,
    /// Largest blob to download, e.g. 2GiB.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub max_blob_bytes: u64,
    /// Devnet: ask the faucet for this many µIO first (e.g. to cover --stake).
    #[arg(long, default_value_t = 0)]
    pub faucet: u64,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// What a receipt's trace commits to: `calls` (each host call and its
    /// output's dtype and shape; about 1 % of a job's time) or `outputs`
    /// (every output's bytes hashed too; about 10 % on MiniLM). With
    /// `calls`, a disputed receipt's job is run again, on this machine's
    /// CPU, to commit to a trace of its outputs (see ARCHITECTURE.md,
    /// "Disputes are bisected").
    #[arg(long, default_value = "calls", value_parser = ["calls", "outputs"])]
    pub trace: String,
    /// TEST ONLY: lie on this fraction of leases (0..=1), chosen from the
    /// lease id (see assay_provider::cheat); the lies get this node slashed.
    #[arg(long, hide = true, default_value_t = 0.0, value_parser = parse_fraction)]
    pub cheat_rate: f64,
    /// TEST ONLY: on the leases --cheat-rate picks, keep the outputs honest
    /// and claim this many extra FLOPs instead of corrupting the outputs.
    #[arg(long, hide = true, default_value_t = 0)]
    pub inflate_work: u64,
    /// TEST ONLY: lie about one step in the middle of every lease's trace
    /// (and corrupt the result), then defend that trace when disputed; the
    /// arbiter's recompute of the step convicts this node.
    #[arg(long, hide = true)]
    pub cheat_step: bool,
    /// TEST ONLY: register this GPU (NAME:BYTES) whatever the machine has,
    /// to show that a false claim fails its hardware challenge.
    #[arg(long, hide = true, value_parser = parse_gpu)]
    pub claim_gpu: Option<(String, u64)>,
}

/// `NAME:BYTES` (e.g. `NVIDIA H100:85899345920`).
fn parse_gpu(s: &str) -> Result<(String, u64), String> {
    let (name, bytes) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?}: expected NAME:BYTES"))?;
    let bytes = parse_size(bytes).map_err(|e| format!("{s:?}: {e}"))?;
    Ok((name.to_string(), bytes))
}

/// A fraction in `[0, 1]` (a test knob's rate).
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!(
            "{s:?} is not a fraction between 0 and 1 (e.g. 0.1)"
        )),
    }
}

pub fn main(args: ProviderArgs) -> Result<u8, Failure> {
    let device = args.device.device().map_err(Failure::usage)?;
    let runtime = Arc::new(super::runtime(device)?);
    let mut hardware = Hardware::detect();
    if let Some(m) = args.memory {
        hardware.memory_bytes = m;
    }
    if let Some(g) = args.claim_gpu.clone() {
        hardware.gpus = vec![g];
    }
    let slots = args
        .slots
        .unwrap_or_else(|| (hardware.cpu_cores / 2).max(1))
        .max(1);
    let cfg = Config {
        coordinator: args.coordinator.coordinator.clone(),
        price: args.price,
        stake: args.stake,
        slots,
        reserve_price: args.reserve_price,
        hardware,
        state_dir: assay_provider::state_dir(&crate::home::dir()),
        poll_interval: Duration::from_millis(args.poll_ms.max(10)),
        metrics_listen: args.metrics_listen,
        drain_timeout: Duration::from_millis(args.drain_timeout_ms),
        max_blob_bytes: args.max_blob_bytes,
        faucet: args.faucet,
        cheat: Cheat {
            rate: args.cheat_rate,
            inflate_work: args.inflate_work,
        },
        cheat_step: args.cheat_step,
        trace_hashing: if args.trace == "outputs" {
            assay_runtime::Hashing::Inline
        } else {
            assay_runtime::Hashing::CallsOnly
        },
        caps: assay_protocol::SpecCaps::default(),
    };
    eprintln!(
        "assay provider {} → {} (price {} µIOSD/Munit, {slots} slots)",
        runtime.node_key().id(),
        cfg.coordinator,
        cfg.price
    );
    let rt = super::net::tokio()?;
    rt.block_on(assay_provider::run(
        cfg,
        runtime,
        super::net::shutdown_signal(),
    ))
    .map_err(Failure::fault)?;
    eprintln!("assay provider stopped");
    Ok(0)
}
