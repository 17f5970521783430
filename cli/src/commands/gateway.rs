//! `assay gateway`: the OpenAI-compatible HTTP API (crate `assay-gateway`),
//! paying for jobs from the account in `$ASSAY_HOME`, and `assay gateway
//! key …` to issue, list and revoke its API keys.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use assay_coordinator::ledger::accounts::parse_amount;
use assay_gateway::{
    BatchConfig, Batcher, ChatConfig, ChatMarket, Gateway, KeyStore, Market, MarketConfig,
    ModelCard,
};
use assay_protocol::Hash32;
use clap::{Args, Subcommand};

use super::net::{CoordinatorUrl, amount, node_key, shutdown_signal};
use crate::{Failure, home};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatewayArgs {
    #[command(subcommand)]
    pub command: Option<GatewayCommand>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// API keys (stored hashed in $ASSAY_HOME/gateway.sqlite).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue a key; the key is the last line printed (shown once).
    Create {
        /// A name for people (and for `revoke`).
        #[arg(long, default_value = "default")]
        name: String,
        /// Most it may spend, IOSD (e.g. 25 or 0.5); none: no limit.
        #[arg(long, value_name = "IOSD")]
        spend_limit: Option<String>,
    },
    /// Every key: name, prefix, spent and limit.
    List,
    /// Refuse a key from now on (by name or prefix).
    Revoke { name: String },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The HTTP address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs
    /// --tls-key. Clients then use the https:// base URL.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
    /// Run every job on this reserved cluster (`assay cluster create`).
    #[arg(long, value_name = "ID")]
    pub cluster: Option<String>,
    /// Most the gateway pays, µIOSD per million work units. Keep it near
    /// the providers' prices: a job's escrow, and the stake a provider
    /// bonds while its receipt is unsettled, grow with it.
    #[arg(long, default_value_t = 20)]
    pub max_price: u64,
    /// Sampling rate of its jobs, parts per million (default: the coordinator's).
    #[arg(long, value_name = "PPM")]
    pub verify_rate: Option<u32>,
    /// Requests arriving within this window share one job.
    #[arg(long, default_value_t = 5)]
    pub batch_window_ms: u64,
    /// Most sequences in one job.
    #[arg(long, default_value_t = 256)]
    pub max_batch: usize,
    /// A request that has no result after this long fails with 503.
    #[arg(long, default_value_t = 60)]
    pub timeout_s: u64,
    /// Also serve chat completions (POST /v1/chat/completions) with
    /// SmolLM2-135M-Instruct (fetched like `assay model fetch smollm2`).
    #[arg(long)]
    pub chat: bool,
}

fn key_store() -> Result<KeyStore, Failure> {
    let path = home::dir().join("gateway.sqlite");
    KeyStore::open(&path)
        .with_context(|| format!("opening the key store {}", path.display()))
        .map_err(Failure::fault)
}

pub fn main(args: GatewayArgs) -> Result<u8, Failure> {
    match args.command {
        Some(GatewayCommand::Key { command }) => keys(command),
        None => serve(args.serve),
    }
}

fn keys(command: KeyCommand) -> Result<u8, Failure> {
    let store = key_store()?;
    match command {
        KeyCommand::Create { name, spend_limit } => {
            let limit = spend_limit
                .map(|s| parse_amount(&s))
                .transpose()
                .map_err(|e| Failure::usage(anyhow::anyhow!("--spend-limit: {e}")))?;
            let (secret, key) = store.create(&name, limit).map_err(Failure::fault)?;
            let limit = key
                .spend_limit
                .map_or("no limit".into(), |l| format!("{} IOSD", amount(l)));
            println!(
                "key {:?} ({limit}); clients send `Authorization: Bearer <key>`:",
                key.name
            );
            println!("{secret}");
        }
        KeyCommand::List => {
            for k in store.list().map_err(Failure::fault)? {
                let limit = k.spend_limit.map_or("-".into(), amount);
                let state = if k.revoked { "revoked" } else { "active" };
                println!(
                    "{:<20} {}…  spent {} IOSD  limit {}  {state}",
                    k.name,
                    k.prefix,
                    amount(k.spent),
                    limit
                );
            }
        }
        KeyCommand::Revoke { name } => {
            let n = store.revoke(&name).map_err(Failure::fault)?;
            if n == 0 {
                return Err(Failure::usage(anyhow::anyhow!(
                    "no key named {name:?}: `assay gateway key list` shows them"
                )));
            }
            println!("revoked {n} key(s)");
        }
    }
    Ok(0)
}

fn serve(args: ServeArgs) -> Result<u8, Failure> {
    let cluster = args
        .cluster
        .as_deref()
        .map(str::parse::<Hash32>)
        .transpose()
        .map_err(|e| Failure::usage(anyhow::anyhow!("--cluster: {e}")))?;
    let model = super::model::load_or_fetch(
        crate::model_store::MINILM,
        false,
        "The gateway (it serves all-MiniLM-L6-v2)",
    )?;
    let vocab = model
        .files
        .iter()
        .find(|(name, _)| *name == "config")
        .and_then(|(_, bytes)| serde_json::from_slice::<serde_json::Value>(bytes).ok())
        .and_then(|c| c["vocab_size"].as_u64())
        .ok_or_else(|| {
            Failure::usage(anyhow::anyhow!("the model's config.json has no vocab_size"))
        })?;
    let cfg = MarketConfig {
        coordinator: args.coordinator.coordinator.clone(),
        component: Arc::from(assay_guests::MINILM_EMBED_WASM),
        model: model
            .files
            .into_iter()
            .map(|(name, bytes)| (name.to_string(), Arc::from(bytes)))
            .collect(),
        max_price: args.max_price,
        verify_rate_ppm: args.verify_rate.unwrap_or(0),
        cluster,
        timeout: Duration::from_secs(args.timeout_s.max(1)),
    };
    let batching = BatchConfig {
        window: Duration::from_millis(args.batch_window_ms),
        max_sequences: args.max_batch.max(1),
        ..BatchConfig::default()
    };
    let chat = if args.chat {
        let model = super::model::load_or_fetch(
            crate::model_store::SMOLLM2,
            false,
            "The gateway's chat completions (SmolLM2-135M-Instruct)",
        )?;
        let (_, gguf) = model
            .files
            .into_iter()
            .next()
            .ok_or_else(|| Failure::usage(anyhow::anyhow!("the chat model has no file")))?;
        Some((
            ChatConfig {
                coordinator: cfg.coordinator.clone(),
                component: Arc::from(assay_guests::LLM_GENERATE_WASM),
                model: Arc::from(gguf),
                max_price: cfg.max_price,
                verify_rate_ppm: cfg.verify_rate_ppm,
                cluster,
                // A completion takes longer than an embedding.
                timeout: cfg.timeout.max(Duration::from_secs(300)),
            },
            node_key()?,
        ))
    } else {
        None
    };
    let keys = Arc::new(key_store()?);
    let key = node_key()?;
    let rt = super::net::tokio()?;
    rt.block_on(async move {
        let coordinator = cfg.coordinator.clone();
        let market = Market::connect(cfg, key)
            .await
            .with_context(|| format!("connecting to the coordinator at {coordinator}"))
            .map_err(Failure::fault)?;
        let payer = market.payer();
        let market = Arc::new(market);
        if cluster.is_some() {
            let warmed = market.warm_up().await.map_err(Failure::usage)?;
            println!("warmed up    {warmed} member(s): the model is resident on them");
        }
        let batcher = Batcher::start(market, batching);
        let mut gateway =
            Gateway::new(keys, batcher, ModelCard::minilm(vocab), coordinator.clone());
        let mut routes = "/v1/models, /v1/embeddings";
        if let Some((cfg, key)) = chat {
            let chat = ChatMarket::connect(cfg, key)
                .await
                .with_context(|| format!("uploading the chat model to {coordinator}"))
                .map_err(Failure::fault)?;
            gateway = gateway.with_chat(Arc::new(chat));
            routes = "/v1/models, /v1/embeddings, /v1/chat/completions";
        }
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))
            .map_err(Failure::usage)?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::fault(anyhow::anyhow!(e)))?;
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(
                assay_https::server_config_from_files(cert, key)
                    .context("--tls-cert/--tls-key")
                    .map_err(Failure::usage)?,
            ),
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("gateway      {scheme}://{addr}/v1  (OpenAI API: {routes})");
        println!("coordinator  {coordinator}  paid by {payer}");
        if let Some(c) = cluster {
            println!("cluster      {c}");
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let app = assay_gateway::router(gateway);
        match tls {
            Some(tls) => {
                let listener = assay_https::TlsListener::new(listener, tls)
                    .map_err(|e| Failure::fault(anyhow::anyhow!("TLS listener: {e}")))?;
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown_signal())
                    .await
            }
            None => {
                // Small JSON replies: no reason to let Nagle's algorithm hold them.
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown_signal())
                    .await
            }
        }
        .map_err(|e| Failure::fault(anyhow::anyhow!("serving: {e}")))?;
        Ok(0)
    })
}
