//! `assay verifier`: the verifier daemon; `assay verifier model`: the
//! detection and economics model of spot checks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use assay_verifier::Config;
use assay_verifier::model::Model;
use clap::{Args, Subcommand};

use super::net::CoordinatorUrl;
use super::provider::parse_fraction;
use crate::Failure;
use crate::spec_args::{DeviceArgs, parse_size};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct VerifierArgs {
    #[command(subcommand)]
    pub command: Option<VerifierCommand>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, Subcommand)]
pub enum VerifierCommand {
    /// Print what spot checks at rate p do to a cheating provider: detection odds, its expected gain and loss, the stake that makes cheating lose, the overhead.
    Model(ModelArgs),
    /// Recompute, from the revealed epoch seeds, which receipts the coordinator had to check, and report any it skipped or checked without a draw (exit status 3 if any).
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
    /// Start after this position of the receipt feed.
    #[arg(long, default_value_t = 0)]
    pub after_seq: u64,
    /// Receipts to audit at most.
    #[arg(long, default_value_t = 10_000)]
    pub limit: u32,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
    /// Stake to hold, µIO (topped up from this node's IO balance; a verifier proven to lie loses part of it).
    #[arg(long, default_value_t = 0)]
    pub stake: u64,
    /// Checks to re-execute at once [default: cores / 2, at least 1].
    #[arg(long)]
    pub slots: Option<u32>,
    /// How often to ask for checks when idle, ms.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
    /// Serve Prometheus metrics here (e.g. 127.0.0.1:9102).
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// On shutdown, how long running checks may finish, ms.
    #[arg(long, default_value_t = 30_000)]
    pub drain_timeout_ms: u64,
    /// Largest blob to download, e.g. 2GiB.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub max_blob_bytes: u64,
    /// Devnet: ask the faucet for this many µIO first (e.g. to cover --stake).
    #[arg(long, default_value_t = 0)]
    pub faucet: u64,
    /// Re-executions may run this many times the job's wall-clock limit
    /// (a CPU verifier is slower than a GPU provider; the limit is not part
    /// of the result), and never past the check's deadline.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub watchdog_scale: u32,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// TEST ONLY: lie on this fraction of checks (0..=1), chosen from the
    /// check id: report a corrupted outputs root and disagree. The referee
    /// overrules the lies and this node is slashed.
    #[arg(long, hide = true, default_value_t = 0.0, value_parser = parse_fraction)]
    pub lie_rate: f64,
    /// TEST ONLY: agree with every receipt without re-executing it (a
    /// cheating provider's accomplice). The arbiter's re-checks catch it.
    #[arg(long, hide = true)]
    pub rubber_stamp: bool,
    /// TEST ONLY: on every first check, lie about one step in the middle of
    /// the re-execution's trace and disagree, then defend that trace when
    /// disputed; the arbiter's recompute of the step convicts this node.
    #[arg(long, hide = true)]
    pub lie_step: bool,
    /// TEST ONLY: as --lie-step, but lie about the guest's call at that step
    /// (a parameter it never passed); the arbiter re-runs the guest up to
    /// there and convicts this node.
    #[arg(long, hide = true)]
    pub lie_call: bool,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Sampling rate p: the probability that a receipt is re-executed (0..=1).
    #[arg(long, value_parser = parse_fraction)]
    pub p: f64,
    /// Fraction f of its jobs the provider cheats on (0..=1).
    #[arg(long, value_parser = parse_fraction)]
    pub cheat_rate: f64,
    /// Jobs n the provider runs.
    #[arg(long, default_value_t = 1_000)]
    pub jobs: u64,
    /// What cheating on one job gains, µIOSD (at most the job's payment).
    #[arg(long, default_value_t = 1_000)]
    pub gain: u64,
    /// The provider's stake, µIOSD [default: the required stake].
    #[arg(long)]
    pub stake: Option<u64>,
    /// Fraction of the stake a proven cheat loses, basis points.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub slash_bps: u32,
    /// Re-check rate q: the fraction of agreeing verdicts the arbiter
    /// re-executes (0..=1) [default: p, so agreeing with a lie is as bad a
    /// bet for a verifier as cheating is for a provider].
    #[arg(long, value_parser = parse_fraction)]
    pub recheck_rate: Option<f64>,
    /// Checks one verifier holds at once (k): its stake floor is k bonds.
    #[arg(long, default_value_t = 4)]
    pub max_checks: u32,
    /// Print one JSON object (amounts in µIOSD) instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn main(args: VerifierArgs) -> Result<u8, Failure> {
    match args.command {
        Some(VerifierCommand::Model(m)) => model(m),
        Some(VerifierCommand::Audit(a)) => audit(a),
        None => daemon(args.daemon),
    }
}

fn model(args: ModelArgs) -> Result<u8, Failure> {
    let mut m = Model::new(args.p, args.cheat_rate, args.jobs)
        .map_err(Failure::usage)?
        .with_gain(args.gain)
        .with_slash_bps(args.slash_bps)
        .with_max_in_flight(args.max_checks);
    if let Some(s) = args.stake {
        m = m.with_stake(s);
    }
    if let Some(q) = args.recheck_rate {
        m = m.with_recheck(q).map_err(Failure::usage)?;
    }
    let report = m.report();
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::fault(anyhow::anyhow!("encoding the report: {e}")))?;
        println!("{text}");
    } else {
        print!("{report}");
    }
    Ok(0)
}

fn audit(args: AuditArgs) -> Result<u8, Failure> {
    let url = args.coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = args.coordinator.channel(&rt)?;
    let report = rt
        .block_on(assay_verifier::audit::audit(
            &channel,
            args.after_seq,
            args.limit,
        ))
        .map_err(|e| match e {
            assay_verifier::Error::Proto(p) => super::net::proto(&url)(p),
            other => Failure::fault(other),
        })?;
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::fault(anyhow::anyhow!("encoding the report: {e}")))?;
        println!("{text}");
    } else {
        print!("{report}");
    }
    Ok(if report.violations().next().is_some() {
        crate::EXIT_JOB_FAILED
    } else {
        0
    })
}

fn daemon(args: DaemonArgs) -> Result<u8, Failure> {
    let device = args.device.device().map_err(Failure::usage)?;
    let runtime = Arc::new(super::runtime(device)?);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let slots = args.slots.unwrap_or((cores / 2).max(1)).max(1);
    let cfg = Config {
        coordinator: args.coordinator.coordinator.clone(),
        stake: args.stake,
        slots,
        state_dir: assay_verifier::state_dir(&crate::home::dir()),
        poll_interval: Duration::from_millis(args.poll_ms.max(10)),
        metrics_listen: args.metrics_listen,
        drain_timeout: Duration::from_millis(args.drain_timeout_ms),
        max_blob_bytes: args.max_blob_bytes,
        faucet: args.faucet,
        watchdog_scale: args.watchdog_scale,
        lie_rate: args.lie_rate,
        rubber_stamp: args.rubber_stamp,
        lie_step: args.lie_step,
        lie_call: args.lie_call,
    };
    eprintln!(
        "assay verifier {} → {} (stake {} µIOSD, {slots} slots, backend {})",
        runtime.node_key().id(),
        cfg.coordinator,
        cfg.stake,
        runtime.device().info().kind,
    );
    let rt = super::net::tokio()?;
    rt.block_on(assay_verifier::run(
        cfg,
        runtime,
        super::net::shutdown_signal(),
    ))
    .map_err(|e| match e {
        assay_verifier::Error::Unsupported { .. } => Failure::usage(e),
        other => Failure::fault(other),
    })?;
    eprintln!("assay verifier stopped");
    Ok(0)
}
