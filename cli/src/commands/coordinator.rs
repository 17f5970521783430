//! `assay coordinator`: the market server.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use assay_coordinator::MarketConfig;
use assay_coordinator::blobs::BlobStore;
use assay_coordinator::config::{EconomyConfig, PriceSource};
use assay_coordinator::server::{Coordinator, ServerConfig};
use assay_coordinator::store::economy::Genesis;
use clap::Args;

use crate::Failure;
use crate::spec_args::parse_size;

#[derive(Debug, Args)]
pub struct CoordinatorArgs {
    /// Address to serve gRPC on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub listen: SocketAddr,
    /// Where blobs (and the default SQLite database) live [default: $ASSAY_HOME/coordinator].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The store: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite in the data dir].
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Keep every blob in an S3-compatible bucket too, shared by all
    /// replicas on one database: s3://BUCKET[/PREFIX], with credentials and
    /// endpoint from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
    /// and AWS_ENDPOINT_URL [default: the data dir alone].
    #[arg(long, value_name = "URL")]
    pub blob_store: Option<String>,
    /// Turn on the devnet faucet (IO from the `faucet` genesis allocation, IOSD by burning it).
    #[arg(long)]
    pub faucet: bool,
    /// A lease expires this long after the provider's last heartbeat.
    #[arg(long, default_value_t = 30_000)]
    pub lease_ttl_ms: u64,
    /// Heartbeat interval asked of providers (they count as online for 3 intervals).
    #[arg(long, default_value_t = 5_000)]
    pub heartbeat_ms: u64,
    /// The challenge window: a receipt not drawn for verification (or of an
    /// unverified job) settles this long after it is recorded.
    #[arg(long, default_value_t = 10_000)]
    pub settlement_delay_ms: u64,
    /// Sampling rate of jobs that do not choose one, as a fraction (0: jobs
    /// are unverified unless they ask for a rate).
    #[arg(long, default_value_t = 0.048)]
    pub verify_rate: f64,
    /// Length of a sampling epoch: a receipt's sampling seed is revealed when its epoch ends.
    #[arg(long, default_value_t = 2_000)]
    pub epoch_ms: u64,
    /// A verifier has this long to answer a check before it goes to another.
    #[arg(long, default_value_t = 120_000)]
    pub check_ttl_ms: u64,
    /// The fraction of its stake a provider or verifier proven wrong loses, basis points.
    #[arg(long, default_value_t = 5_000)]
    pub slash_bps: u32,
    /// The share of a provider's slash paid to the verifier who caught it, basis points.
    #[arg(long, default_value_t = 5_000)]
    pub bounty_bps: u32,
    /// The arbiter's share of a slash, basis points (the rest goes to the renter,
    /// or to the provider when a verifier is overruled).
    #[arg(long, default_value_t = 2_500)]
    pub referee_bps: u32,
    /// A verifier key (hex) designated as an arbiter: disputes and re-checks
    /// go to arbiters alone and their re-execution decides (repeat for
    /// several). Without one, disputes wait. Run it with `assay verifier`.
    #[arg(long = "arbiter-key", value_name = "HEX")]
    pub arbiter_keys: Vec<assay_protocol::NodeId>,
    /// The fraction of agreeing verdicts an arbiter re-checks before pay (a
    /// verifier that agreed with a wrong result is slashed); it prices the
    /// stake a verifier bonds per check (`assay verifier model`).
    #[arg(long, default_value_t = 0.1)]
    pub recheck_rate: f64,
    /// The least IO stake a verifier holds to be assigned checks, e.g. 100.
    #[arg(long, default_value = "1", value_parser = parse_units)]
    pub verifier_stake: u64,
    /// At most this many checks held by one verifier at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub verifier_max_checks: u32,
    /// How long a fresh shard waits for the best-ranked provider.
    #[arg(long, default_value_t = 1_000)]
    pub preference_window_ms: u64,
    /// Protocol fee on jobs paid in IOSD, basis points of each payment.
    #[arg(long, default_value_t = 200)]
    pub fee_bps: u64,
    /// A shard whose leases end this many times without a receipt fails (escrow refunded); 0: never.
    #[arg(long, default_value_t = 5)]
    pub max_attempts: u32,
    /// A lease's hard end: it lives at most this many times its job's
    /// watchdog (--wall-clock-ms) plus the lease time after it was granted,
    /// however often heartbeats renew it.
    #[arg(long, default_value_t = 3)]
    pub lease_cap_factor: u64,
    /// A provider's heartbeat reports the leases it holds; the coordinator
    /// ends the others once they were granted this long ago (a lost
    /// TakeLeases reply): re-queued, nobody charged.
    #[arg(long, default_value_t = 10_000)]
    pub lease_report_grace_ms: u64,
    /// What an attempt that the job's own watchdog ended costs the renter,
    /// µIOSD, paid to the provider whose slot it held (at most what is left
    /// of the shard's escrow).
    #[arg(long, default_value_t = 1_000)]
    pub watchdog_fee: u64,
    /// Largest blob accepted, e.g. 1GiB.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub max_blob_bytes: u64,
    /// The most a job may capture of each of stdout, stderr and its log
    /// (spec.log_bytes): a job asking more is refused at submission.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub cap_log_bytes: u64,
    /// The most output bytes a job may ask for (spec.output_bytes).
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub cap_output_bytes: u64,
    /// The most guest memory a job may ask for (spec.memory_bytes).
    #[arg(long, default_value = "4GiB", value_parser = parse_size)]
    pub cap_memory_bytes: u64,
    /// The most device memory a job may ask for (spec.gpu_memory_bytes).
    #[arg(long, default_value = "80GiB", value_parser = parse_size)]
    pub cap_gpu_memory_bytes: u64,
    /// The longest watchdog a job may ask for, ms (spec.wall_clock_ms).
    #[arg(long, default_value_t = 86_400_000)]
    pub cap_wall_clock_ms: u64,
    /// The most inputs one job may have.
    #[arg(long, default_value_t = 1024)]
    pub max_inputs: usize,
    /// The most bytes one job's inputs may declare in all.
    #[arg(long, default_value = "64GiB", value_parser = parse_size)]
    pub max_input_bytes: u64,
    /// Serve gRPC (and the web pages of --http-listen) over TLS with this
    /// certificate chain (PEM, leaf first); needs --tls-key. Clients then
    /// use https:// URLs (and, for a certificate of a private CA,
    /// ASSAY_TLS_CA=that CA's PEM).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Most signed requests one key may send per second, sustained (0: no
    /// limit); more are refused with the time to wait.
    #[arg(long, default_value_t = 1_000)]
    pub key_requests_per_second: u32,
    /// Most signed requests one key may send at once after a quiet spell.
    #[arg(long, default_value_t = 2_000)]
    pub key_burst: u32,
    /// Blobs no live job names are deleted after this many ms unused (a
    /// renter has this long after its job settles to fetch the outputs);
    /// 0: kept forever.
    #[arg(long, default_value_t = 7 * 86_400_000)]
    pub blob_retention_ms: u64,
    /// How often the blob store is swept for blobs past retention.
    #[arg(long, default_value_t = 3_600_000)]
    pub blob_sweep_ms: u64,
    /// Most bytes of blobs one key may keep stored (0: no quota); a
    /// collected blob frees its uploaders' quota.
    #[arg(long, default_value_t = assay_coordinator::service::DEFAULT_MAX_STORED_BYTES_PER_KEY)]
    pub max_stored_bytes_per_key: u64,
    /// Most blob downloads streaming at once (more are refused, to retry).
    #[arg(long, default_value_t = 128)]
    pub max_downloads: usize,
    /// Most blob uploads streaming at once.
    #[arg(long, default_value_t = 64)]
    pub max_uploads: usize,
    /// An upload that sends nothing, or a download whose client reads
    /// nothing, for this long (ms) is dropped.
    #[arg(long, default_value_t = 30_000)]
    pub transfer_idle_ms: u64,
    /// Do not challenge providers' GPU claims (proof of hardware): GPU jobs
    /// then match any provider that registered a GPU.
    #[arg(long)]
    pub no_challenges: bool,
    /// A provider that passed its hardware challenge is challenged again
    /// after a random 0.5–1.5 × this (when idle); 0: only at registration.
    #[arg(long, default_value_t = 6 * 3_600_000)]
    pub challenge_interval_ms: u64,
    /// Tests only: every GPU class's challenge as N,ROUNDS,BOUND_MS.
    #[arg(long, hide = true, value_parser = parse_override)]
    pub challenge_override: Option<(u32, u32, u64)>,
    /// Period of lease expiry and settlement.
    #[arg(long, default_value_t = 250)]
    pub tick_ms: u64,
    /// Serve the web explorer, worker dashboard, renter console and JSON API
    /// (`/api/v1`, OpenAPI at `/api/openapi.json`) on this address, e.g.
    /// 127.0.0.1:7780 (port 0: any free port; the URL is printed).
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// Requests per minute one client address may make to the web server
    /// before it is answered 429.
    #[arg(long, default_value_t = 600)]
    pub http_requests_per_minute: u32,
    /// The gRPC URL providers reach this coordinator at, shown in the
    /// dashboard's installation help [default: http://<gRPC listen address>].
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// A provider's device samples (sent with each heartbeat) are kept at
    /// most once per this interval, for 24 hours.
    #[arg(long, default_value_t = 60_000)]
    pub telemetry_every_ms: u64,
    #[command(flatten)]
    pub economy: EconomyArgs,
}

/// IO, IOSD and block rewards.
#[derive(Debug, Args)]
pub struct EconomyArgs {
    /// IO's genesis allocation, a JSON file: {"allocations": {"treasury": "200000000", …}}
    /// summing to 500,000,000 IO [default: treasury 200M, ecosystem 150M,
    /// contributors 100M, faucet 50M]. Posted once, when the ledger is new.
    #[arg(long, value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// Take the IO price from reports signed by this oracle key (hex); without
    /// it the price is --io-price.
    #[arg(long, value_name = "HEX")]
    pub oracle_key: Option<assay_protocol::NodeId>,
    /// An oracle report is usable this long after it was observed.
    #[arg(long, default_value_t = 600_000)]
    pub oracle_max_age_ms: u64,
    /// A fixed IO price in IOSD (no oracle), e.g. 1.5.
    #[arg(long, default_value = "1", conflicts_with = "oracle_key", value_parser = parse_units)]
    pub io_price: u64,
    /// The length of one hour of the block-reward schedule (a devnet compresses it).
    #[arg(long, default_value_t = 3_600_000)]
    pub reward_hour_ms: u64,
    /// The length of a reward epoch (each emits its part of the schedule).
    #[arg(long, default_value_t = 3_600_000)]
    pub reward_epoch_ms: u64,
    /// The share of each epoch's emission paid by verified work (the rest by uptime), basis points.
    #[arg(long, default_value_t = 7_000)]
    pub reward_work_bps: u32,
    /// Protocol fee on jobs paid in IO, basis points (burned).
    #[arg(long, default_value_t = 0)]
    pub fee_bps_io: u64,
    /// IO a provider stakes per GPU of the reference class (× its class
    /// multiplier; CPU providers by 16-core class) to be hired; 0: no floor.
    #[arg(long, default_value = "200", value_parser = parse_units)]
    pub stake_per_device: u64,
    /// Unstaked IO is spendable after this long (and can be slashed meanwhile).
    #[arg(long, default_value_t = 14 * 86_400_000)]
    pub unstake_cooldown_ms: u64,
    /// The length of a day for notes' terms and bonds' maturities (a devnet compresses it).
    #[arg(long, default_value_t = 86_400_000)]
    pub claims_day_ms: u64,
}

impl EconomyArgs {
    fn config(&self) -> EconomyConfig {
        EconomyConfig {
            hour_ms: self.reward_hour_ms.max(1),
            reward_epoch_ms: self.reward_epoch_ms.max(1),
            reward_work_bps: self.reward_work_bps.min(10_000),
            price: match self.oracle_key {
                Some(key) => PriceSource::Oracle {
                    key,
                    max_age_ms: self.oracle_max_age_ms,
                },
                None => PriceSource::Fixed(self.io_price.max(1)),
            },
            fee_bps_io: self.fee_bps_io.min(10_000),
            stake_per_device: self.stake_per_device,
            unstake_cooldown_ms: self.unstake_cooldown_ms,
            day_ms: self.claims_day_ms.max(1),
        }
    }

    fn genesis(&self) -> Result<Genesis, Failure> {
        match &self.genesis {
            None => Ok(Genesis::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the genesis file {}", path.display()))
                    .map_err(Failure::usage)?;
                Genesis::from_json(&text)
                    .with_context(|| path.display().to_string())
                    .map_err(Failure::usage)
            }
        }
    }
}

/// A decimal amount of IO or IOSD in base units.
fn parse_units(s: &str) -> Result<u64, String> {
    assay_coordinator::ledger::accounts::parse_amount(s)
}

pub fn main(args: CoordinatorArgs) -> Result<u8, Failure> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| crate::home::dir().join("coordinator"));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))
        .map_err(Failure::usage)?;
    let rt = super::net::tokio()?;
    let mut blobs =
        BlobStore::open(&data_dir.join("blobs"), args.max_blob_bytes).map_err(Failure::usage)?;
    if let Some(url) = &args.blob_store {
        let shared = assay_coordinator::blobs::SharedBlobs::s3(url, rt.handle().clone())
            .map_err(Failure::usage)?;
        blobs = blobs.with_shared(shared);
    }
    let blobs = Arc::new(blobs);
    // Proof of hardware: the challenge guest is a blob like any component.
    let challenge_component = if args.no_challenges {
        None
    } else {
        let bytes = assay_guests::CHALLENGE_WASM;
        let hash = blobs
            .put(bytes)
            .map_err(|e| Failure::fault(anyhow::anyhow!("storing the challenge component: {e}")))?;
        Some((hash, bytes.len() as u64))
    };
    let market = MarketConfig {
        lease_ttl_ms: args.lease_ttl_ms,
        provider_liveness_ms: args.heartbeat_ms.saturating_mul(3),
        preference_window_ms: args.preference_window_ms,
        settlement_delay_ms: args.settlement_delay_ms,
        fee_bps: args.fee_bps.min(10_000),
        max_attempts: args.max_attempts,
        epoch_ms: args.epoch_ms.max(1),
        default_rate_ppm: rate_ppm("--verify-rate", args.verify_rate)?,
        check_ttl_ms: args.check_ttl_ms,
        slash_bps: args.slash_bps.min(10_000),
        bounty_bps: args.bounty_bps.min(10_000),
        referee_bps: args.referee_bps.min(10_000 - args.bounty_bps.min(10_000)),
        arbiters: args.arbiter_keys.clone(),
        recheck_ppm: rate_ppm("--recheck-rate", args.recheck_rate)?,
        verifier_stake_floor: args.verifier_stake,
        verifier_max_in_flight: args.verifier_max_checks,
        challenge_component,
        challenge_interval_ms: args.challenge_interval_ms,
        challenge_override: args.challenge_override,
        economy: args.economy.config(),
        telemetry_every_ms: args.telemetry_every_ms,
        lease_cap_factor: args.lease_cap_factor,
        lease_report_grace_ms: args.lease_report_grace_ms,
        watchdog_fee: args.watchdog_fee,
        ..MarketConfig::default()
    };
    let genesis = args.economy.genesis()?;
    // Opened before the async runtime starts (the PostgreSQL client blocks).
    let store = assay_coordinator::open_store(args.database.as_deref(), &data_dir, market)
        .map_err(Failure::usage)?;
    let started = store
        .post_genesis(&genesis, assay_proto::now_ms())
        .map_err(Failure::usage)?;
    tracing::info!(reward_schedule_start_ms = started, "IO genesis in place");
    let backend = store.backend_name();
    let web_store = store.clone();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let read = |p: &PathBuf| {
                std::fs::read(p)
                    .with_context(|| format!("reading {}", p.display()))
                    .map_err(Failure::usage)
            };
            Some(assay_coordinator::server::ServerTls {
                cert_pem: read(cert)?,
                key_pem: read(key)?,
            })
        }
        _ => None,
    };
    let coordinator = Coordinator::new(
        store,
        blobs,
        ServerConfig {
            faucet: args.faucet,
            heartbeat_interval_ms: args.heartbeat_ms,
            tick_ms: args.tick_ms,
            caps: assay_protocol::SpecCaps {
                log_bytes: args.cap_log_bytes,
                output_bytes: args.cap_output_bytes,
                memory_bytes: args.cap_memory_bytes,
                gpu_memory_bytes: args.cap_gpu_memory_bytes,
                wall_clock_ms: args.cap_wall_clock_ms,
                ..assay_protocol::SpecCaps::default()
            },
            inputs: assay_coordinator::rules::jobs::InputLimits {
                max_inputs: args.max_inputs,
                max_input_bytes: args.max_input_bytes,
                ..Default::default()
            },
            key_rate: (args.key_requests_per_second > 0).then_some(
                assay_coordinator::rules::rate::Rate {
                    per_second: args.key_requests_per_second,
                    burst: args.key_burst,
                },
            ),
            max_downloads: args.max_downloads,
            max_uploads: args.max_uploads,
            transfer_idle_ms: args.transfer_idle_ms,
            tls: tls.clone(),
            retention: (args.blob_retention_ms > 0).then_some(
                assay_coordinator::retention::Retention {
                    keep_ms: args.blob_retention_ms,
                    sweep_every_ms: args.blob_sweep_ms,
                },
            ),
            max_stored_bytes_per_key: (args.max_stored_bytes_per_key > 0)
                .then_some(args.max_stored_bytes_per_key),
            ..ServerConfig::default()
        },
    );
    let scheme = if tls.is_some() { "https" } else { "http" };
    rt.block_on(async move {
        let listener = assay_coordinator::server::bind(args.listen)
            .await
            .map_err(Failure::usage)?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::fault(anyhow::anyhow!("listen address: {e}")))?;
        println!(
            "assay coordinator listening on {scheme}://{addr} (store: {backend}, data: {}{})",
            data_dir.display(),
            if args.faucet { ", faucet on" } else { "" }
        );
        let _ = std::io::stdout().flush();
        if let Some(http) = args.http_listen {
            let web = tokio::net::TcpListener::bind(http)
                .await
                .with_context(|| format!("--http-listen {http}"))
                .map_err(Failure::usage)?;
            let at = web
                .local_addr()
                .map_err(|e| Failure::fault(anyhow::anyhow!("web listen address: {e}")))?;
            let web_tls = match &tls {
                Some(t) => Some(
                    assay_https::server_config(&t.cert_pem, &t.key_pem)
                        .context("--tls-cert/--tls-key for the web pages")
                        .map_err(Failure::usage)?,
                ),
                None => None,
            };
            let web_scheme = if web_tls.is_some() { "https" } else { "http" };
            let cfg = assay_web::WebConfig {
                grpc_url: args
                    .public_url
                    .clone()
                    .unwrap_or_else(|| format!("{scheme}://{addr}")),
                requests_per_minute: args.http_requests_per_minute,
            };
            println!("assay web listening on {web_scheme}://{at}");
            let _ = std::io::stdout().flush();
            tokio::spawn(async move {
                if let Err(e) =
                    assay_web::serve(web, web_store, cfg, web_tls, super::net::shutdown_signal())
                        .await
                {
                    tracing::error!("web server: {e}");
                }
            });
        }
        coordinator
            .serve(listener, super::net::shutdown_signal())
            .await
            .map_err(|e| Failure::fault(anyhow::anyhow!("serving: {e}")))?;
        eprintln!("assay coordinator stopped");
        Ok(0)
    })
}

fn rate_ppm(flag: &str, p: f64) -> Result<u32, Failure> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Failure::usage(anyhow::anyhow!(
            "{flag} {p}: give a fraction in [0, 1]"
        )));
    }
    Ok((p * 1e6).round() as u32)
}

/// `N,ROUNDS,BOUND_MS`.
fn parse_override(s: &str) -> Result<(u32, u32, u64), String> {
    let parts: Vec<&str> = s.split(',').collect();
    match parts.as_slice() {
        [n, r, b] => Ok((
            n.parse()
                .map_err(|_| format!("{n:?} is not a matrix size"))?,
            r.parse()
                .map_err(|_| format!("{r:?} is not a round count"))?,
            b.parse()
                .map_err(|_| format!("{b:?} is not milliseconds"))?,
        )),
        _ => Err(format!("{s:?}: expected N,ROUNDS,BOUND_MS")),
    }
}
