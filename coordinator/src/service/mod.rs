//! The gRPC services of `assay.proto`, served by tonic: one file per
//! service ([`blobs`], [`renter`], [`provider`], [`verifier`], [`arbitration`], [`economy`]). Each handler
//! decodes its request, authenticates it ([`auth`]: signature and expiry
//! window, then the nonce is recorded in the store so a replay is refused
//! with `ALREADY_EXISTS`), checks it against [`crate::rules`] where a rule
//! applies before the store, and makes one [`Store`] call on a blocking
//! thread (store calls are synchronous database transactions); `wire.rs`
//! turns the answer into protobuf. The background work is [`crate::tick`].

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use assay_proto::pb::arbitration_server::ArbitrationServer;
use assay_proto::pb::blobs_server::BlobsServer;
use assay_proto::pb::clusters_server::ClustersServer;
use assay_proto::pb::economy_server::EconomyServer;
use assay_proto::pb::provider_server::ProviderServer;
use assay_proto::pb::renter_server::RenterServer;
use assay_proto::pb::verifier_server::VerifierServer;
use assay_protocol::{BlobRef, Hash32};
use tokio_stream::Stream;
use tonic::Status;

use crate::Error;
use crate::blobs::BlobStore;
use crate::rules::jobs;
use crate::store::Store;

pub mod arbitration;
pub mod auth;
pub mod blobs;
pub mod clusters;
pub mod economy;
mod inline;
pub mod long_poll;
pub mod provider;
pub mod renter;
pub mod verifier;
mod wire;

/// Server settings beyond the market rules.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// A request may expire at most this far ahead of the server's clock.
    pub max_request_ahead_ms: u64,
    /// The devnet faucet is on.
    pub faucet: bool,
    /// Most µIOSD one faucet call mints.
    pub faucet_max: u64,
    /// Heartbeat interval told to providers.
    pub heartbeat_interval_ms: u64,
    /// Background work period.
    pub tick_ms: u64,
    /// Most shards per job.
    pub max_shards: u32,
    /// The most a job's spec may ask for (log and output bytes, memory, …):
    /// a job over them is refused at submission.
    pub caps: assay_protocol::SpecCaps,
    /// How many inputs, of how many bytes, one job may have.
    pub inputs: jobs::InputLimits,
    /// Most blob downloads streaming at once (more are refused with
    /// `RESOURCE_EXHAUSTED`, to retry).
    pub max_downloads: usize,
    /// Most blob uploads streaming at once.
    pub max_uploads: usize,
    /// An upload that sends nothing, or a download whose client reads
    /// nothing, for this long is dropped.
    pub transfer_idle_ms: u64,
    /// Most requests in flight on one connection (more wait their turn).
    pub max_requests_per_connection: usize,
    /// Serve TLS with this certificate (`None`: plaintext).
    pub tls: Option<ServerTls>,
    /// Most signed requests per key (`None`: no limit); more are refused
    /// with `RESOURCE_EXHAUSTED` and the time to wait.
    pub key_rate: Option<crate::rules::rate::Rate>,
    /// Most keys whose rate is tracked at once: past it, a key not yet
    /// seen waits until some are quiet again.
    pub max_rate_keys: usize,
    /// Blobs nothing uses are collected after this (`None`: kept forever).
    pub retention: Option<crate::retention::Retention>,
    /// Most bytes of blobs one key may keep stored (`None`: no quota);
    /// more uploads are refused with `RESOURCE_EXHAUSTED`.
    pub max_stored_bytes_per_key: Option<u64>,
}

/// A server's certificate chain and private key, PEM.
#[derive(Clone)]
pub struct ServerTls {
    /// The certificate chain, leaf first.
    pub cert_pem: Vec<u8>,
    /// The private key.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ServerTls")
            .field("cert_pem_bytes", &self.cert_pem.len())
            .finish_non_exhaustive()
    }
}

/// The default quota of stored blob bytes per key: 16 GiB.
pub const DEFAULT_MAX_STORED_BYTES_PER_KEY: u64 = 16 << 30;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_request_ahead_ms: 300_000,
            faucet: false,
            faucet_max: 1_000_000_000_000,
            heartbeat_interval_ms: 5_000,
            tick_ms: 250,
            max_shards: 256,
            caps: assay_protocol::SpecCaps::default(),
            inputs: jobs::InputLimits::default(),
            max_downloads: 128,
            max_uploads: 64,
            transfer_idle_ms: 30_000,
            max_requests_per_connection: 256,
            tls: None,
            key_rate: Some(crate::rules::rate::Rate {
                per_second: 1_000,
                burst: 2_000,
            }),
            max_rate_keys: 100_000,
            retention: Some(crate::retention::Retention::default()),
            max_stored_bytes_per_key: Some(DEFAULT_MAX_STORED_BYTES_PER_KEY),
        }
    }
}

/// The coordinator: a store, a blob store and settings.
#[derive(Clone)]
pub struct Coordinator {
    store: Arc<dyn Store>,
    blobs: Arc<BlobStore>,
    cfg: Arc<ServerConfig>,
    market: Arc<long_poll::MarketSignal>,
    transfers: Arc<Transfers>,
    /// Signed requests per key ([`ServerConfig::key_rate`]).
    rates: Option<Arc<std::sync::Mutex<crate::rules::rate::Limiter<assay_protocol::NodeId>>>>,
}

/// Slots for blob streams in flight ([`ServerConfig::max_downloads`],
/// [`ServerConfig::max_uploads`]).
#[derive(Debug)]
struct Transfers {
    downloads: Arc<tokio::sync::Semaphore>,
    uploads: Arc<tokio::sync::Semaphore>,
    /// One ledger verification at a time: it reads and hashes the whole
    /// ledger, and anyone may ask for it.
    ledger_checks: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("backend", &self.store.backend_name())
            .field("blobs", &self.blobs)
            .field("config", &self.cfg)
            .finish()
    }
}

/// Runs a store call on a blocking thread; its error becomes the status.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, Error> + Send + 'static,
) -> Result<R, Status> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| {
            if e.code() == tonic::Code::Internal {
                tracing::error!(error = %e, "request failed");
            }
            Status::from(e)
        }),
        Err(e) => Err(Status::internal(format!("worker failed: {e}"))),
    }
}

fn bad(e: assay_proto::Error) -> Status {
    Status::from(e)
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl Coordinator {
    /// A coordinator over `store` and `blobs`.
    pub fn new(store: Arc<dyn Store>, blobs: Arc<BlobStore>, cfg: ServerConfig) -> Coordinator {
        let transfers = Arc::new(Transfers {
            downloads: Arc::new(tokio::sync::Semaphore::new(cfg.max_downloads)),
            uploads: Arc::new(tokio::sync::Semaphore::new(cfg.max_uploads)),
            ledger_checks: Arc::new(tokio::sync::Semaphore::new(1)),
        });
        let rates = cfg.key_rate.map(|rate| {
            Arc::new(std::sync::Mutex::new(crate::rules::rate::Limiter::new(
                rate,
                cfg.max_rate_keys,
            )))
        });
        Coordinator {
            store,
            blobs,
            cfg: Arc::new(cfg),
            market: Arc::new(long_poll::MarketSignal::default()),
            transfers,
            rates,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Runs the background work ([`crate::tick`]) and blob retention
    /// ([`crate::retention`]) until `shutdown` resolves.
    pub async fn background(self, shutdown: impl std::future::Future<Output = ()>) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let sweeper = self.cfg.retention.map(|retention| {
            let public = self
                .store
                .config()
                .challenge_component
                .as_ref()
                .map(|(h, _)| *h);
            let mut stopped = stopped.clone();
            tokio::spawn(crate::retention::run(
                self.blobs.clone(),
                self.store.clone(),
                retention,
                public,
                async move {
                    let _ = stopped.wait_for(|v| *v).await;
                },
            ))
        });
        crate::tick::run(self.store, self.cfg.tick_ms, shutdown).await;
        let _ = stop.send(true);
        if let Some(s) = sweeper {
            let _ = s.await;
        }
    }

    /// Serves every service on `listener` until `shutdown` resolves, over
    /// TLS when [`ServerConfig::tls`] is set.
    ///
    /// # Errors
    ///
    /// The transport's error (a certificate or key that does not load).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        // A certificate that does not load stops here, before anything runs.
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = &self.cfg.tls {
            // tonic's server takes the process's default provider; the
            // S3 client links a second one (aws-lc-rs), so there is no
            // default until one is chosen. Ours is ring, as everywhere.
            let _ = rustls::crypto::ring::default_provider().install_default();
            server = server.tls_config(tonic::transport::ServerTlsConfig::new().identity(
                tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem),
            ))?;
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let bg = tokio::spawn(self.clone().background({
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|v| *v).await;
            }
        }));
        let max = assay_proto::client::MAX_MESSAGE_BYTES;
        // The builder's `tcp_nodelay` applies only to listeners it binds
        // itself: on these sockets Nagle's algorithm held every small
        // streamed reply (a blob download's trailers) for the client's
        // delayed ACK, ~40 ms each.
        let incoming = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            |conn| {
                conn.inspect(|s| {
                    if let Err(e) = s.set_nodelay(true) {
                        tracing::warn!(error = %e, "could not turn Nagle's algorithm off");
                    }
                })
            },
        );
        // A peer that vanished is noticed (keepalive pings), and one
        // connection cannot hold more than its share of requests.
        let r = server
            .tcp_nodelay(true)
            .tcp_keepalive(Some(std::time::Duration::from_secs(60)))
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(20)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
            .concurrency_limit_per_connection(self.cfg.max_requests_per_connection)
            .max_concurrent_streams(
                u32::try_from(self.cfg.max_requests_per_connection).unwrap_or(u32::MAX),
            )
            .add_service(
                BlobsServer::new(self.clone())
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(RenterServer::new(self.clone()))
            .add_service(ProviderServer::new(self.clone()))
            .add_service(VerifierServer::new(self.clone()))
            .add_service(EconomyServer::new(self.clone()))
            .add_service(ClustersServer::new(self.clone()))
            .add_service(
                // An answer can carry hundreds of proofs (a concat's inputs).
                ArbitrationServer::new(self.clone())
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
        let _ = stop_tx.send(true);
        let _ = bg.await;
        r
    }

    /// Checks that each blob (`what` names them) is stored with its
    /// declared size, and marks it used now (retention counts from the
    /// last job that names it); on a blocking thread (the shared bucket is
    /// asked about a blob this replica lacks).
    async fn require_blobs(&self, what: &'static str, refs: Vec<BlobRef>) -> Result<(), Status> {
        let blobs = self.blobs.clone();
        blocking(move || {
            for b in &refs {
                match blobs.touch(&b.hash) {
                    None => {
                        return Err(Error::Precondition(format!(
                            "{what} {:?} (blob {}) is not uploaded: upload it first",
                            b.name, b.hash
                        )));
                    }
                    Some(size) if size != b.size => {
                        return Err(Error::Invalid(format!(
                            "{what} {:?}: declared {} bytes but blob {} has {size}",
                            b.name, b.size, b.hash
                        )));
                    }
                    Some(_) => {}
                }
            }
            Ok(())
        })
        .await
    }
}

/// Binds `addr` (use port 0 for any free port).
///
/// # Errors
///
/// [`Error::Io`] if the address cannot be bound.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("listen address {addr}"), e))
}

/// The content id a client computes for a job's component and inputs
/// (exposed for clients that want to predict shard job ids).
pub fn shard_job_ids(
    component: &Hash32,
    inputs: &[BlobRef],
    spec: &assay_protocol::JobSpec,
    shards: u32,
) -> Vec<Hash32> {
    let root = jobs::root_of(inputs);
    jobs::shard_job_ids(component, spec, shards, |_| root)
}
