//! The provider daemon (`assay provider`): sells this machine's compute on
//! the Assay market.
//!
//! 1. **Register** with the coordinator: hardware (CPU cores, memory, GPUs),
//!    price, slots and stake (topping the stake up from its balance).
//! 2. **Heartbeat** on the interval the coordinator asks for; the heartbeat
//!    keeps the provider online and renews its leases. If the coordinator
//!    forgot it (a fresh database), it registers again.
//! 3. **Take leases** while slots are free; each lease is first written to
//!    the lease [`journal`], so a lease is never run twice, even across a
//!    crash and restart.
//! 4. **Run** each lease: fetch the component and inputs by hash into the
//!    local blob cache (checked with blake3), run them with
//!    [`assay_runtime::Runtime::run`] on a blocking thread, upload the
//!    outputs (only those the coordinator lacks) and submit the signed
//!    receipt. A provider fault gives the lease back (no receipt).
//! 5. **Survive** outages: every call retries with exponential backoff (up
//!    to 5 s); a receipt is retried until the coordinator answers it.
//! 6. **Shut down gracefully**: on the shutdown signal it stops taking
//!    leases, gives back those not started, lets running jobs finish for up
//!    to the drain timeout, then gives back the rest.
//!
//! Metrics for Prometheus are in [`metrics`].
//!
//! # Test-only knobs
//!
//! [`Config::cheat`] (`assay provider --cheat-rate F [--inflate-work N]`,
//! hidden flags) makes the provider lie on a deterministic fraction of its
//! leases — corrupted outputs or over-billed work, validly signed — so that
//! end-to-end tests can show that verifiers catch it and the provider is
//! slashed. See [`cheat`]. Never set it on a real provider: a cheated
//! receipt that is sampled costs the stake.

pub mod cheat;
pub mod journal;
pub mod metrics;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assay_proto::cache::{BlobCache, Source};
use assay_proto::client::{self, REQUEST_TTL_MS};
use assay_proto::daemon::{Shutdown, ask_faucet, backoff, refused, retry_signed};
use assay_proto::pb::provider_client::ProviderClient;
use assay_proto::{auth, convert, now_ms, pb};
use assay_protocol::{BlobRef, Hash32, NodeKey};
use assay_runtime::{Inputs, Runtime};
use tonic::transport::Channel;

use crate::cheat::Cheat;
use crate::journal::Journal;
use crate::metrics::Metrics;

/// Errors of the provider daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Talking to the coordinator failed.
    #[error(transparent)]
    Proto(#[from] assay_proto::Error),
    /// The sandbox failed.
    #[error(transparent)]
    Runtime(#[from] assay_runtime::Error),
    /// A local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Something that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The machine as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardware {
    /// CPU cores.
    pub cpu_cores: u32,
    /// RAM bytes.
    pub memory_bytes: u64,
    /// GPUs: (name, memory bytes).
    pub gpus: Vec<(String, u64)>,
}

impl Hardware {
    /// This machine: its cores, its memory (from `/proc/meminfo`) and its
    /// NVIDIA GPUs (through NVML; none without a driver).
    pub fn detect() -> Hardware {
        let cpu_cores = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map_or(4 << 30, |kb| kb * 1024);
        let gpus = assay_host_gpu::telemetry::snapshot()
            .map(|g| {
                g.into_iter()
                    .map(|g| (g.name, g.memory_total_bytes))
                    .collect()
            })
            .unwrap_or_default();
        Hardware {
            cpu_cores,
            memory_bytes,
            gpus,
        }
    }
}

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The coordinator's URL.
    pub coordinator: String,
    /// µcr per million work units.
    pub price: u64,
    /// Stake to hold (topped up from the balance at registration).
    pub stake: u64,
    /// Jobs at once.
    pub slots: u32,
    /// The hardware to register.
    pub hardware: Hardware,
    /// Where the blob cache and the lease journal live.
    pub state_dir: PathBuf,
    /// How often to ask for leases when idle.
    pub poll_interval: Duration,
    /// Where to serve Prometheus metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// How long running jobs may finish after the shutdown signal.
    pub drain_timeout: Duration,
    /// Largest blob to download.
    pub max_blob_bytes: u64,
    /// Devnet: ask the faucet for this many µcr at start (0: don't).
    pub faucet: u64,
    /// Test only: lie on some leases (see [`cheat`]). The default never does.
    pub cheat: Cheat,
}

/// Shared state of the daemon.
struct Daemon {
    cfg: Config,
    runtime: Arc<Runtime>,
    channel: Channel,
    journal: Journal,
    blobs: BlobCache,
    metrics: Arc<Metrics>,
    /// Leases taken and not yet finished: lease id → started running.
    active: Mutex<BTreeMap<Hash32, bool>>,
    shutdown: Shutdown,
}

fn key(d: &Daemon) -> &NodeKey {
    d.runtime.node_key()
}

impl Daemon {
    fn client(&self) -> ProviderClient<Channel> {
        ProviderClient::new(self.channel.clone())
    }

    fn free_slots(&self) -> u32 {
        let busy = self
            .active
            .lock()
            .map(|a| a.len() as u32)
            .unwrap_or(self.cfg.slots);
        self.cfg.slots.saturating_sub(busy)
    }

    fn sign<M: auth::Signed>(&self, m: &mut M) -> Result<(), Error> {
        auth::sign(key(self), m, now_ms(), REQUEST_TTL_MS)?;
        Ok(())
    }

    async fn register(&self) -> Result<pb::RegisterResponse, Error> {
        let mut req = pb::RegisterRequest {
            auth: None,
            hardware: Some(pb::Hardware {
                cpu_cores: self.cfg.hardware.cpu_cores,
                memory_bytes: self.cfg.hardware.memory_bytes,
                gpus: self
                    .cfg
                    .hardware
                    .gpus
                    .iter()
                    .map(|(name, mem)| pb::Gpu {
                        name: name.clone(),
                        memory_bytes: *mem,
                    })
                    .collect(),
            }),
            price: self.cfg.price,
            stake: self.cfg.stake,
            slots: self.cfg.slots,
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        self.sign(&mut req)?;
        let resp = self
            .client()
            .register(req)
            .await
            .map_err(assay_proto::Error::from)?
            .into_inner();
        Metrics::add(&self.metrics.registrations, 1);
        // Leases the coordinator thinks we hold but this process is not
        // running (a restart): give them back so they run elsewhere.
        for l in &resp.active_leases {
            let Ok(id) = convert::hash("active_leases", l) else {
                continue;
            };
            let known = self
                .active
                .lock()
                .map(|a| a.contains_key(&id))
                .unwrap_or(false);
            if !known {
                self.give_back(
                    &id,
                    false,
                    "provider restarted: this lease is not running here",
                )
                .await;
            }
        }
        Ok(resp)
    }

    async fn register_until_ok(&self) -> Option<pb::RegisterResponse> {
        let mut attempt = 0;
        loop {
            if self.shutdown.started() {
                return None;
            }
            match self.register().await {
                Ok(r) => {
                    tracing::info!(
                        coordinator = %self.cfg.coordinator,
                        provider = %key(self).id(),
                        stake = r.stake,
                        reliability = r.reliability_permille,
                        "registered"
                    );
                    return Some(r);
                }
                Err(e) => {
                    Metrics::add(&self.metrics.rpc_errors, 1);
                    tracing::warn!(error = %e, "cannot register; retrying");
                    attempt += 1;
                    self.shutdown.sleep(backoff(attempt)).await;
                }
            }
        }
    }

    async fn give_back(&self, lease: &Hash32, fault: bool, reason: &str) {
        let req = pb::ReturnLeaseRequest {
            auth: None,
            lease_id: lease.0.to_vec(),
            fault,
            reason: reason.to_string(),
        };
        let sent = retry_signed(5, key(self), &req, |req| {
            let mut client = self.client();
            async move {
                client
                    .return_lease(req)
                    .await
                    .map_err(assay_proto::Error::from)
            }
        })
        .await;
        match sent {
            Ok(_) => {
                Metrics::add(&self.metrics.leases_returned, 1);
                tracing::info!(lease = %lease.short(), fault, reason, "lease given back");
            }
            Err(e) => {
                tracing::warn!(lease = %lease.short(), error = %e, "could not give the lease back");
            }
        }
        self.journal.end(lease);
        if let Ok(mut a) = self.active.lock() {
            a.remove(lease);
        }
    }

    /// A blob from the cache, or downloaded into it.
    async fn blob(&self, hash: &Hash32) -> Result<Arc<[u8]>, Error> {
        let (bytes, source) = self.blobs.get(&self.channel, hash).await?;
        match source {
            Source::Cache => Metrics::add(&self.metrics.blob_cache_hits, 1),
            Source::Downloaded => Metrics::add(&self.metrics.bytes_downloaded, bytes.len() as u64),
        }
        Ok(bytes)
    }

    async fn fetch(&self, lease: &pb::Lease) -> Result<(Arc<[u8]>, Inputs), Error> {
        let component = self
            .blob(&convert::hash("component_hash", &lease.component_hash)?)
            .await?;
        let mut inputs = Inputs::new();
        for b in convert::blob_refs("inputs", &lease.inputs)? {
            let bytes = self.blob(&b.hash).await?;
            inputs.insert(b.name, bytes);
        }
        Ok((component, inputs))
    }

    /// Runs one lease to the end: a recorded receipt or a returned lease.
    async fn work(self: Arc<Self>, lease: pb::Lease) {
        let Ok(id) = convert::hash("lease_id", &lease.lease_id) else {
            return;
        };
        if self.shutdown.started() {
            self.give_back(&id, false, "provider shutting down").await;
            return;
        }
        let fetched = match self.fetch(&lease).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(lease = %id.short(), error = %e, "cannot fetch the job's blobs");
                self.give_back(&id, true, &format!("fetching blobs: {e}"))
                    .await;
                return;
            }
        };
        let spec = match convert::spec("spec", lease.spec.as_ref()) {
            Ok(s) => s,
            Err(e) => {
                self.give_back(&id, false, &format!("bad spec: {e}")).await;
                return;
            }
        };
        if self.shutdown.started() {
            self.give_back(&id, false, "provider shutting down").await;
            return;
        }
        if let Ok(mut a) = self.active.lock() {
            a.insert(id, true);
        }
        Metrics::add(&self.metrics.running, 1);
        let runtime = self.runtime.clone();
        let (component, inputs) = fetched;
        tracing::info!(lease = %id.short(), shard = %format!("{}/{}", spec.shard.index, spec.shard.count), "running");
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            let loaded = runtime.load(&component)?;
            runtime.run(&loaded, Arc::new(inputs), &spec)
        })
        .await;
        Metrics::add(
            &self.metrics.run_ms,
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        );
        self.metrics.running.fetch_sub(1, Ordering::Relaxed);
        let report = match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let fault = matches!(e, assay_runtime::Error::ProviderFault { .. });
                if fault {
                    Metrics::add(&self.metrics.provider_faults, 1);
                }
                tracing::warn!(lease = %id.short(), error = %e, "no result");
                self.give_back(&id, fault, &e.to_string()).await;
                return;
            }
            Err(e) => {
                Metrics::add(&self.metrics.provider_faults, 1);
                self.give_back(&id, true, &format!("the run crashed: {e}"))
                    .await;
                return;
            }
        };
        Metrics::add(&self.metrics.fuel_used, report.receipt.body.fuel_used);
        let mut report = report;
        if self.cfg.cheat.chosen(&id) {
            match self
                .cfg
                .cheat
                .apply(key(&self), &mut report.outputs, &mut report.receipt)
            {
                Ok(what) => {
                    Metrics::add(&self.metrics.cheats, 1);
                    tracing::warn!(lease = %id.short(), cheat = what, "test knob: this receipt lies");
                }
                Err(e) => {
                    tracing::error!(lease = %id.short(), error = %e, "test knob: cannot cheat")
                }
            }
        }
        self.deliver(&id, report).await;
        self.journal.end(&id);
        if let Ok(mut a) = self.active.lock() {
            a.remove(&id);
        }
    }

    /// Uploads the outputs and submits the receipt, retrying through outages.
    async fn deliver(&self, id: &Hash32, report: assay_runtime::RunReport) {
        let blobs: Vec<Arc<[u8]>> = report
            .outputs
            .values()
            .map(|b| Arc::from(b.as_slice()))
            .collect();
        let outputs: Vec<BlobRef> = report
            .outputs
            .iter()
            .map(|(name, b)| BlobRef {
                name: name.clone(),
                hash: Hash32::of(b),
                size: b.len() as u64,
            })
            .collect();
        let mut attempt = 0;
        loop {
            let r = async {
                let sent = client::upload_missing(&self.channel, key(self), &blobs).await?;
                Metrics::add(&self.metrics.bytes_uploaded, sent);
                let mut req = pb::SubmitReceiptRequest {
                    auth: None,
                    lease_id: id.0.to_vec(),
                    receipt: Some(pb::Receipt::from(&report.receipt)),
                    outputs: convert::blob_refs_to_pb(&outputs),
                };
                self.sign(&mut req)?;
                let resp = self
                    .client()
                    .submit_receipt(req)
                    .await
                    .map_err(assay_proto::Error::from)?;
                Ok::<_, Error>(resp.into_inner())
            }
            .await;
            match r {
                Ok(resp) => {
                    Metrics::add(&self.metrics.receipts_accepted, 1);
                    let rid = convert::hash("receipt_id", &resp.receipt_id)
                        .map(|h| h.short())
                        .unwrap_or_default();
                    tracing::info!(lease = %id.short(), receipt = %rid, outcome = %report.outcome, "receipt accepted");
                    return;
                }
                Err(Error::Proto(e)) if !refused(&e) => {
                    Metrics::add(&self.metrics.rpc_errors, 1);
                    attempt += 1;
                    if attempt > 200 {
                        tracing::error!(lease = %id.short(), error = %e, "giving up on a receipt");
                        return;
                    }
                    tracing::warn!(lease = %id.short(), error = %e, "coordinator unreachable; will resubmit the receipt");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => {
                    Metrics::add(&self.metrics.receipts_refused, 1);
                    tracing::warn!(lease = %id.short(), error = %e, "receipt refused");
                    return;
                }
            }
        }
    }
}

/// Runs the daemon until `shutdown` resolves, then drains.
///
/// # Errors
///
/// [`Error::Io`] if the state directory or journal cannot be used;
/// [`Error::Proto`] for a bad coordinator URL or metrics address.
pub async fn run(
    cfg: Config,
    runtime: Arc<Runtime>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), Error> {
    std::fs::create_dir_all(&cfg.state_dir).map_err(|e| Error::io(&cfg.state_dir, e))?;
    let journal = Journal::open(&cfg.state_dir.join("leases.journal"))?;
    let blobs = BlobCache::new(cfg.state_dir.join("blobs"), cfg.max_blob_bytes);
    if cfg.cheat.is_on() {
        tracing::warn!(
            rate = cfg.cheat.rate,
            inflate_work = cfg.cheat.inflate_work,
            "TEST KNOB: this provider cheats on a fraction of its leases and will be slashed"
        );
    }
    let channel = client::channel(&cfg.coordinator)?;
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = cfg.metrics_listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io(format!("metrics address {addr}"), e))?;
        let local = l
            .local_addr()
            .map_err(|e| Error::io("metrics address", e))?;
        tracing::info!(%local, "metrics at http://{local}/metrics");
        tokio::spawn(metrics::serve(l, metrics.clone()));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let d = Arc::new(Daemon {
        cfg,
        runtime,
        channel,
        journal,
        blobs,
        metrics,
        active: Mutex::new(BTreeMap::new()),
        shutdown: Shutdown::new(stop_rx),
    });
    let unfinished = d.journal.unfinished();

    let main = {
        let d = d.clone();
        async move {
            if d.cfg.faucet > 0 {
                ask_faucet(&d.channel, key(&d), d.cfg.faucet, &d.shutdown).await;
            }
            let Some(reg) = d.register_until_ok().await else {
                return;
            };
            // Leases a previous process started and never finished.
            for l in unfinished {
                d.give_back(&l, false, "provider restarted before finishing it")
                    .await;
            }
            let hb = Duration::from_millis(reg.heartbeat_interval_ms.clamp(50, 60_000));
            tokio::spawn(heartbeats(d.clone(), hb));
            let mut jobs = tokio::task::JoinSet::new();
            let mut attempt = 0;
            let mut suspended = false;
            while !d.shutdown.started() {
                let free = d.free_slots();
                if free == 0 {
                    d.shutdown.sleep(d.cfg.poll_interval).await;
                    continue;
                }
                let mut req = pb::TakeLeasesRequest {
                    auth: None,
                    max: free,
                };
                if d.sign(&mut req).is_err() {
                    break;
                }
                match d.client().take_leases(req).await {
                    Ok(resp) => {
                        attempt = 0;
                        suspended = false;
                        let leases = resp.into_inner().leases;
                        let got = !leases.is_empty();
                        for l in leases {
                            let Ok(id) = convert::hash("lease_id", &l.lease_id) else {
                                continue;
                            };
                            Metrics::add(&d.metrics.leases_taken, 1);
                            match d.journal.start(&id) {
                                Ok(true) => {
                                    if let Ok(mut a) = d.active.lock() {
                                        a.insert(id, false);
                                    }
                                    jobs.spawn(d.clone().work(l));
                                }
                                Ok(false) => {
                                    d.give_back(&id, false, "this provider already ran that lease")
                                        .await;
                                }
                                Err(e) => {
                                    tracing::error!(error = %e, "cannot journal a lease: not running it");
                                    d.give_back(&id, true, "provider cannot write its journal")
                                        .await;
                                }
                            }
                        }
                        while jobs.try_join_next().is_some() {}
                        if !got {
                            d.shutdown.sleep(d.cfg.poll_interval).await;
                        }
                    }
                    Err(s) => {
                        Metrics::add(&d.metrics.rpc_errors, 1);
                        if s.code() == tonic::Code::NotFound {
                            // The coordinator forgot us (new database): register again.
                            let _ = d.register_until_ok().await;
                        } else if s.code() == tonic::Code::PermissionDenied {
                            // Suspended (caught cheating): no leases until an
                            // operator lifts it. Say so once, then ask rarely.
                            if !suspended {
                                suspended = true;
                                tracing::error!(error = %s.message(), "this provider gets no leases; asking again every 30 s (stop it with Ctrl-C)");
                            }
                            d.shutdown.sleep(Duration::from_secs(30)).await;
                        } else {
                            attempt += 1;
                            tracing::warn!(error = %s.message(), "cannot take leases; backing off");
                            d.shutdown.sleep(backoff(attempt)).await;
                        }
                    }
                }
            }
            // Draining: let running jobs finish, then give back the rest.
            let drain = d.cfg.drain_timeout;
            if tokio::time::timeout(drain, async { while jobs.join_next().await.is_some() {} })
                .await
                .is_err()
            {
                jobs.abort_all();
                let left: Vec<Hash32> = d
                    .active
                    .lock()
                    .map(|a| a.keys().copied().collect())
                    .unwrap_or_default();
                for l in left {
                    d.give_back(&l, false, "provider shut down before the job finished")
                        .await;
                }
            }
        }
    };
    tokio::pin!(main);
    tokio::select! {
        _ = &mut main => {}
        _ = shutdown => {
            tracing::info!("shutting down: no new leases; draining running jobs");
            let _ = stop_tx.send(true);
            main.await;
        }
    }
    Ok(())
}

fn gpu_telemetry(t: Option<&assay_host_gpu::telemetry::Telemetry>) -> Vec<pb::GpuTelemetry> {
    t.map(|t| {
        t.snapshot()
            .into_iter()
            .map(|g| pb::GpuTelemetry {
                index: g.index,
                temperature_c: g.temperature_c.unwrap_or(0),
                power_mw: u64::from(g.power_draw_mw.unwrap_or(0)),
                utilization_pct: g.utilization_gpu_pct.unwrap_or(0),
                memory_used_bytes: g.memory_used_bytes,
            })
            .collect()
    })
    .unwrap_or_default()
}

async fn heartbeats(d: Arc<Daemon>, every: Duration) {
    // NVML, opened once; absent without a driver.
    let telemetry = std::sync::Arc::new(assay_host_gpu::telemetry::Telemetry::open().ok());
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Keep renewing leases while draining; stop once nothing runs.
        if d.shutdown.started() && d.active.lock().map(|a| a.is_empty()).unwrap_or(true) {
            return;
        }
        let mut req = pb::HeartbeatRequest {
            auth: None,
            free_slots: d.free_slots(),
            gpus: {
                let t = telemetry.clone();
                tokio::task::spawn_blocking(move || gpu_telemetry(t.as_ref().as_ref()))
                    .await
                    .unwrap_or_default()
            },
        };
        if d.sign(&mut req).is_err() {
            return;
        }
        match d.client().heartbeat(req).await {
            Ok(r) if !r.get_ref().registered => {
                tracing::warn!("the coordinator does not know this provider: registering again");
                let _ = d.register_until_ok().await;
            }
            Ok(_) => {}
            Err(s) => {
                Metrics::add(&d.metrics.rpc_errors, 1);
                tracing::warn!(error = %s.message(), "heartbeat failed");
            }
        }
    }
}

/// Where a node keeps its provider state under its home directory.
pub fn state_dir(home: &Path) -> PathBuf {
    home.join("provider")
}
