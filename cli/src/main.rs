//! `assay`: run Assay jobs locally in the sandbox.
//!
//! Exit status: 0 success; 3 the job ended in a deterministic failure (its
//! result is still written); 2 bad usage or unusable input; 1 provider fault
//! or internal error.

mod commands;
mod exit;
mod home;
mod model_store;
mod spec_args;
mod tls;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use exit::{EXIT_FAULT, EXIT_JOB_FAILED, EXIT_USAGE, Failure};

#[derive(Debug, Parser)]
#[command(
    name = "assay",
    version,
    about = "WebAssembly-sandboxed, verifiable GPU jobs"
)]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a job component locally and write its outputs and signed receipt.
    Run(commands::run::RunArgs),
    /// Run the built-in demo job end to end (no files needed).
    Demo(commands::demo::DemoArgs),
    /// Ask SmolLM2-135M-Instruct a question in the sandbox (the chat demo).
    Chat(commands::chat::ChatArgs),
    /// Check a receipt's signature.
    Verify(commands::verify::VerifyArgs),
    /// Fetch or check the models the demos and example jobs use (all-MiniLM-L6-v2, SmolLM2-135M-Instruct).
    Model(commands::model::ModelArgs),
    /// List this machine's GPUs (NVML telemetry) and the CUDA backend's state.
    Devices(commands::devices::DevicesArgs),
    /// Publish a job to the market: upload its blobs, escrow, optionally follow it.
    Publish(commands::publish::PublishArgs),
    /// A published job: status, outputs, receipts.
    Job(commands::job::JobArgs),
    /// Devnet IOSD or IO for this node.
    Faucet(commands::faucet::FaucetArgs),
    /// A node's IOSD and IO: balances, stake, earnings, block rewards.
    Account(commands::faucet::AccountArgs),
    /// Stake IO (providers: to be hired; renters: their shards go first).
    Stake(commands::economy::StakeArgs),
    /// Move staked IO into its cooldown; spendable when it ends.
    Unstake(commands::economy::StakeArgs),
    /// The block-reward epochs: emission and what each provider was paid.
    Rewards(commands::economy::RewardsArgs),
    /// The IO price feed: sign and post prices as the oracle.
    Oracle(commands::economy::OracleArgs),
    /// Cash-flow notes: sell a device's earnings for a term as shares.
    Note(commands::claims::NoteArgs),
    /// Bonds: raise IOSD now, repaid from a device's earnings.
    Bond(commands::claims::BondArgs),
    /// Reserved clusters: hold a slot on each of N providers for some hours (`publish --cluster`).
    Cluster(commands::cluster::ClusterArgs),
    /// The market's ledger: verify its hash chain, balances and supply; show the supply.
    Ledger(commands::ledger::LedgerArgs),
    /// Run the market: job queue, matching, leases, ledger, blob store (gRPC).
    Coordinator(Box<commands::coordinator::CoordinatorArgs>),
    /// Sell this machine's compute: take leases, run jobs, submit receipts.
    Provider(commands::provider::ProviderArgs),
    /// Check providers: re-execute sampled receipts and sign verdicts (`assay verifier model`: the economics).
    Verifier(commands::verifier::VerifierArgs),
    /// A coordinator and providers on this machine, as separate processes.
    Devnet(commands::devnet::DevnetArgs),
    /// An OpenAI-compatible HTTP API (embeddings) that runs each request as a verified job (`assay gateway key create`: API keys).
    Gateway(commands::gateway::GatewayArgs),
}

/// Keeps freed memory in the process instead of handing it back to the
/// kernel at once (glibc). Tensor ops allocate and free buffers of megabytes
/// hundreds of times a second; with glibc's defaults many of them were
/// fresh `mmap`s or regrown heap, so every op paid page faults and the
/// kernel's page zeroing (≈ 15 % of a MiniLM job's CPU time). Up to 512 MiB
/// of free heap stays for reuse; blocks of 32 MiB and more still map.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    init_logging(cli.log_json);
    let result = match cli.command {
        Command::Run(args) => commands::run::main(args),
        Command::Demo(args) => commands::demo::main(args),
        Command::Chat(args) => commands::chat::main(args),
        Command::Verify(args) => commands::verify::main(args),
        Command::Model(args) => commands::model::main(args),
        Command::Devices(args) => commands::devices::main(args),
        Command::Publish(args) => commands::publish::main(args),
        Command::Job(args) => commands::job::main(args),
        Command::Faucet(args) => commands::faucet::main(args),
        Command::Account(args) => commands::faucet::account(args),
        Command::Stake(args) => commands::economy::stake(args, false),
        Command::Unstake(args) => commands::economy::stake(args, true),
        Command::Rewards(args) => commands::economy::rewards(args),
        Command::Oracle(args) => commands::economy::oracle(args),
        Command::Note(args) => commands::claims::note(args),
        Command::Bond(args) => commands::claims::bond(args),
        Command::Cluster(args) => commands::cluster::main(args),
        Command::Ledger(args) => commands::ledger::main(args),
        Command::Coordinator(args) => commands::coordinator::main(*args),
        Command::Provider(args) => commands::provider::main(args),
        Command::Verifier(args) => commands::verifier::main(args),
        Command::Devnet(args) => commands::devnet::main(args),
        Command::Gateway(args) => commands::gateway::main(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ASSAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
