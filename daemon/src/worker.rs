//! The worker loop ([`Worker`]) and what a daemon plugs into it ([`Work`]).
//!
//! ```text
//! faucet? → register ──→ take while slots are free ──→ per item (a task):
//!             ↑  ↑          │ NotFound: register again    admit? → prepare → fetch blobs
//!             │  └──────────┤ PermissionDenied: suspended,   (retrying transient errors)
//!             │             │   ask again rarely           → run (blocking thread)
//!   heartbeat ┘ (forgotten) │ outage: back off            → report (retrying outages)
//!   (with the items held)   ↓ shutdown                      or give back (fault or not;
//!                         drain: let running items finish,   also after a refused report)
//!                         then give back the rest
//! ```
//!
//! The loop owns everything both daemons do the same way; a [`Work`] says
//! only what differs: which RPCs take, report and give back an item (a
//! lease or a check), how an item is examined ([`Work::prepare`]) and what
//! its run concludes ([`Work::run`]). A request that cannot be signed
//! ([`Error::Sign`]) stops the daemon with that error wherever it happens;
//! a give-back the coordinator does not take is counted in `rpc_errors`;
//! transient blob download errors are retried with back-off.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assay_protocol::{BlobRef, Hash32};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::Error;
use crate::cache::{BlobCache, BlobSource, Source};
use crate::metrics::{self, CoreMetrics, Names, RunLabels};
use crate::retry::{Shutdown, backoff, refused, retry, worth_retrying};

/// How many times a transient blob download error is retried.
const FETCH_ATTEMPTS: u32 = 8;

/// How many times a give-back is sent through outages.
const GIVE_BACK_ATTEMPTS: u32 = 5;

/// How many times the faucet is asked through outages.
const FAUCET_ATTEMPTS: u32 = 50;

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The coordinator's URL (for logs and errors).
    pub coordinator: String,
    /// Items worked on at once.
    pub slots: u32,
    /// How often to ask for work when idle.
    pub poll_interval: Duration,
    /// How often a suspended daemon asks again.
    pub suspended_poll: Duration,
    /// How long running items may finish after the shutdown signal.
    pub drain_timeout: Duration,
    /// Devnet: ask the faucet for this many µIOSD at start (0: don't).
    pub faucet: u64,
    /// Where to serve Prometheus metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// The blob cache's directory.
    pub blob_dir: PathBuf,
    /// Largest blob to download.
    pub max_blob_bytes: u64,
}

impl Settings {
    /// The CLI's defaults for everything but the coordinator and the blob
    /// cache's directory.
    pub fn new(coordinator: &str, blob_dir: PathBuf) -> Settings {
        Settings {
            coordinator: coordinator.to_string(),
            slots: 1,
            poll_interval: Duration::from_millis(500),
            suspended_poll: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            faucet: 0,
            metrics_listen: None,
            blob_dir,
            max_blob_bytes: 1 << 30,
        }
    }
}

/// Why an item is handed back to the coordinator without a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiveBack {
    /// Sent to the coordinator and logged.
    pub reason: String,
    /// True if this machine is at fault (its watchdog, its device, its
    /// disk): the coordinator may count it against the node.
    pub fault: bool,
}

impl GiveBack {
    /// A give-back that is nobody's fault here (shutdown, a bad item).
    pub fn new(reason: impl Into<String>) -> GiveBack {
        GiveBack {
            reason: reason.into(),
            fault: false,
        }
    }

    /// A give-back because this machine failed.
    pub fn fault(reason: impl Into<String>) -> GiveBack {
        GiveBack {
            reason: reason.into(),
            fault: true,
        }
    }
}

/// An item examined and ready to run: the daemon's own job data and the
/// blobs the loop fetches for it.
#[derive(Debug, Clone)]
pub struct Prepared<J> {
    /// What [`Work::run`] gets back.
    pub job: J,
    /// The component to fetch (`None`: the run needs none, e.g. an
    /// arbiter recomputing one step of a trace).
    pub component: Option<Hash32>,
    /// The inputs to fetch.
    pub inputs: Vec<BlobRef>,
    /// Bytes of inputs that came with the item (a lease's small inputs):
    /// an input whose hash one of them has is taken from here, not
    /// downloaded.
    pub carried: Vec<Arc<[u8]>>,
    /// The market job the blobs are read through (a lease's or a checked
    /// receipt's job); `None`: as an arbiter, or blobs this node uploaded.
    pub through: Option<Hash32>,
}

/// The blobs of a [`Prepared`] item, checked against their hashes.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The component's bytes (empty when none was asked for).
    pub component: Arc<[u8]>,
    /// Their BLAKE3 hash, checked when they were fetched, so a runtime
    /// need not hash them again (`Runtime::load_hashed`).
    pub component_hash: Hash32,
    /// Input name → bytes.
    pub inputs: BTreeMap<String, Arc<[u8]>>,
}

/// What a run concludes.
#[derive(Debug)]
pub enum Conclusion<R> {
    /// Report `report` to the coordinator; `outcome` labels the run in the
    /// `runs` metric (`success`, `trap`, `agree`, `mismatch`, …).
    Report {
        /// What to report.
        report: R,
        /// The run's outcome, for the metric.
        outcome: String,
    },
    /// Give the item back.
    GiveBack(GiveBack),
    /// Neither: the item has already gone elsewhere (a check past its
    /// deadline), so it is only forgotten.
    Drop {
        /// Logged.
        reason: String,
    },
}

/// A registration: the coordinator's answer, and the items it believes this
/// node holds that this process is not working on (given back at once).
#[derive(Debug)]
pub struct Registered<A> {
    /// The answer.
    pub answer: A,
    /// Items to give back unless this process is working on them.
    pub stale: Vec<(Hash32, GiveBack)>,
}

/// What the loop hands a daemon's background tasks.
#[derive(Debug, Clone)]
pub struct Context {
    /// The shutdown signal.
    pub shutdown: Shutdown,
    /// The shared metrics (e.g. to count `rpc_errors`).
    pub metrics: CoreMetrics,
    /// The loop's blob cache (e.g. to re-run a job in a dispute).
    pub blobs: Blobs,
}

/// The blob cache and where its misses come from: the loop fetches each
/// item's blobs through it, and a daemon's background tasks through the
/// same one (so a blob is downloaded once). Cloning shares it.
#[derive(Clone)]
pub struct Blobs {
    cache: Arc<BlobCache>,
    source: Arc<dyn BlobSource>,
    metrics: CoreMetrics,
    shutdown: Shutdown,
}

impl fmt::Debug for Blobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blobs")
            .field("dir", &self.cache.dir())
            .finish_non_exhaustive()
    }
}

impl Blobs {
    /// A blob from the cache, or downloaded into it (through market job
    /// `job` if named: the coordinator hands a blob only to a key with a
    /// reason to read it).
    ///
    /// # Errors
    ///
    /// As [`BlobCache::get`].
    pub async fn get(
        &self,
        hash: &Hash32,
        job: Option<&Hash32>,
    ) -> Result<Arc<[u8]>, assay_proto::Error> {
        let (bytes, source) = self.cache.get(self.source.as_ref(), hash, job).await?;
        match source {
            Source::Cache => self.metrics.blob_cache_hits.inc(),
            Source::Downloaded => self.metrics.bytes_downloaded.inc_by(bytes.len() as u64),
        };
        Ok(bytes)
    }

    /// The component (if any) and inputs, read through market job `job`
    /// if named, retrying transient errors with back-off (until shutdown).
    ///
    /// # Errors
    ///
    /// The first error that is not transient, or the last one.
    pub async fn fetch(
        &self,
        component: Option<&Hash32>,
        inputs: &[BlobRef],
        job: Option<&Hash32>,
    ) -> Result<Fetched, assay_proto::Error> {
        self.fetch_with(component, inputs, &[], job).await
    }

    /// [`Blobs::fetch`], taking inputs found in `carried` (by hash) from
    /// there.
    ///
    /// # Errors
    ///
    /// As [`Blobs::fetch`].
    pub async fn fetch_with(
        &self,
        component: Option<&Hash32>,
        inputs: &[BlobRef],
        carried: &[Arc<[u8]>],
        job: Option<&Hash32>,
    ) -> Result<Fetched, assay_proto::Error> {
        let carried: BTreeMap<Hash32, Arc<[u8]>> =
            carried.iter().map(|b| (Hash32::of(b), b.clone())).collect();
        let mut attempt = 0;
        loop {
            let fetched = async {
                let bytes = match component {
                    Some(c) => self.get(c, job).await?,
                    None => Arc::from(&[][..]),
                };
                let mut by_name = BTreeMap::new();
                for b in inputs {
                    let bytes = match carried.get(&b.hash) {
                        Some(bytes) => bytes.clone(),
                        None => self.get(&b.hash, job).await?,
                    };
                    by_name.insert(b.name.clone(), bytes);
                }
                Ok::<_, assay_proto::Error>(Fetched {
                    component: bytes,
                    component_hash: component.copied().unwrap_or_else(|| Hash32::of(&[])),
                    inputs: by_name,
                })
            }
            .await;
            match fetched {
                Err(e)
                    if e.is_transient() && attempt < FETCH_ATTEMPTS && !self.shutdown.started() =>
                {
                    self.metrics.rpc_errors.inc();
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "cannot fetch a blob; retrying");
                    self.shutdown.sleep(backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }
}

/// A daemon's own logic, which the [`Worker`] loop runs. Each `async`
/// method makes one call to the coordinator (signing its request with
/// [`crate::sign`]); the loop decides about retries.
pub trait Work: Send + Sync + Sized + 'static {
    /// What one take hands out (a lease, a check).
    type Item: Send + 'static;
    /// An item examined and ready to run.
    type Job: Send + 'static;
    /// What registering answers.
    type Registration: Send + Sync + 'static;
    /// What a finished item reports (a receipt, a verdict).
    type Report: Send + Sync + 'static;

    /// The daemon's metric names.
    const NAMES: Names;
    /// The daemon, in logs and reasons: `provider`, `verifier`.
    const ROLE: &'static str;
    /// An item, in logs and reasons: `lease`, `check`.
    const ITEM: &'static str;
    /// Attempts to report an item through outages before giving up.
    const REPORT_ATTEMPTS: u32;

    /// The backend kind and device that run items (the `runs` labels).
    fn device(&self) -> (String, String);

    /// Registers the daemon's own metrics beside the loop's.
    fn register_metrics(&self, registry: &mut Registry);

    /// Asks the devnet faucet for `amount` µIOSD; answers the balance.
    fn faucet(&self, amount: u64) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Registers with the coordinator.
    fn register(
        &self,
    ) -> impl Future<Output = Result<Registered<Self::Registration>, Error>> + Send;

    /// Called once, after the first registration: starts the daemon's own
    /// background tasks and says how often to heartbeat (`None`: never).
    fn started(
        self: Arc<Self>,
        registration: &Self::Registration,
        ctx: &Context,
    ) -> Option<Duration>;

    /// One heartbeat; `false` if the coordinator no longer knows this node.
    fn heartbeat(&self, free_slots: u32) -> impl Future<Output = Result<bool, Error>> + Send;

    /// One heartbeat that also reports the items this process holds (taken
    /// and not finished: preparing, fetching, running or reporting), so the
    /// coordinator can end those it handed out but this process never got
    /// (a lost take reply). The default reports nothing: [`Work::heartbeat`].
    fn heartbeat_holding(
        &self,
        free_slots: u32,
        held: Vec<Hash32>,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let _ = held;
        self.heartbeat(free_slots)
    }

    /// Whether [`Work::take`] is a long poll (the coordinator holds it until
    /// there is work or its wait ends), so an empty answer is followed by
    /// the next take at once rather than after the poll interval.
    const LONG_POLLS: bool = false;

    /// Takes up to `max` items.
    fn take(&self, max: u32) -> impl Future<Output = Result<Vec<Self::Item>, Error>> + Send;

    /// An item's id (`None`: malformed, ignored).
    fn id(&self, item: &Self::Item) -> Option<Hash32>;

    /// Whether this process may start the item (the provider's journal
    /// refuses a lease that ever started before).
    ///
    /// # Errors
    ///
    /// The give-back when it may not.
    fn admit(&self, _id: &Hash32) -> Result<(), GiveBack> {
        Ok(())
    }

    /// Examines an item before anything is fetched.
    ///
    /// # Errors
    ///
    /// The give-back when the item cannot be run.
    fn prepare(&self, id: Hash32, item: Self::Item) -> Result<Prepared<Self::Job>, GiveBack>;

    /// Runs a job on its blobs (on a blocking thread) and concludes.
    fn run(&self, job: Self::Job, blobs: Fetched) -> Conclusion<Self::Report>;

    /// Reports a finished item once.
    fn report(&self, report: &Self::Report) -> impl Future<Output = Result<(), Error>> + Send;

    /// Counts and logs a report the coordinator refused (or that could not
    /// get through in [`Work::REPORT_ATTEMPTS`]).
    fn report_failed(&self, report: &Self::Report, error: &Error);

    /// After the coordinator refused a report (it answered, with an error
    /// that a retry would not change): the give-back that hands the item
    /// back, so it does not sit with this node until it expires; `None`
    /// (the default): the item is only forgotten.
    fn give_back_refused(&self, _report: &Self::Report, _error: &Error) -> Option<GiveBack> {
        None
    }

    /// Gives an item back once.
    fn give_back(
        &self,
        id: &Hash32,
        why: &GiveBack,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Called when the loop is done with an item (reported, given back or
    /// dropped).
    fn finished(&self, _id: &Hash32) {}
}

/// The worker loop of one daemon.
pub struct Worker<W: Work> {
    work: Arc<W>,
    settings: Settings,
    blobs: Blobs,
    metrics: CoreMetrics,
    registry: Arc<Registry>,
    device: (String, String),
    /// Items taken and not yet finished.
    active: Mutex<BTreeSet<Hash32>>,
    shutdown: Shutdown,
    stop: watch::Sender<bool>,
    /// The error that stops the daemon, once one has.
    fatal: Mutex<Option<Error>>,
}

impl<W: Work> fmt::Debug for Worker<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("role", &W::ROLE)
            .field("settings", &self.settings)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl<W: Work> Worker<W> {
    /// A worker for `work`, fetching missing blobs from `source` (the
    /// coordinator's channel).
    pub fn new(work: W, settings: Settings, source: Arc<dyn BlobSource>) -> Arc<Worker<W>> {
        let metrics = CoreMetrics::default();
        let mut registry = Registry::with_prefix(W::NAMES.prefix);
        metrics.register(&W::NAMES, &mut registry);
        work.register_metrics(&mut registry);
        let (stop, shutdown) = Shutdown::new();
        let blobs = Blobs {
            cache: Arc::new(BlobCache::new(
                settings.blob_dir.clone(),
                settings.max_blob_bytes,
            )),
            source,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        };
        Arc::new(Worker {
            device: work.device(),
            work: Arc::new(work),
            blobs,
            settings,
            metrics,
            registry: Arc::new(registry),
            active: Mutex::new(BTreeSet::new()),
            shutdown,
            stop,
            fatal: Mutex::new(None),
        })
    }

    /// The daemon's logic.
    pub fn work(&self) -> &Arc<W> {
        &self.work
    }

    /// The loop's metrics.
    pub fn metrics(&self) -> &CoreMetrics {
        &self.metrics
    }

    /// Every metric of the daemon, as served.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// What background tasks get.
    pub fn context(&self) -> Context {
        Context {
            shutdown: self.shutdown.clone(),
            metrics: self.metrics.clone(),
            blobs: self.blobs.clone(),
        }
    }

    /// Runs the daemon until `shutdown` resolves (or an error stops it),
    /// then drains.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the metrics address cannot be bound;
    /// [`Error::Sign`] if a request could not be signed;
    /// [`Error::Unsupported`] if the coordinator does not serve this daemon.
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        if let Some(addr) = self.settings.metrics_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Error::io(format!("metrics address {addr}"), e))?;
            let local = listener
                .local_addr()
                .map_err(|e| Error::io("metrics address", e))?;
            tracing::info!(%local, "metrics at http://{local}/metrics");
            tokio::spawn(metrics::serve(listener, self.registry.clone()));
        }
        let main = self.clone().main();
        tokio::pin!(main);
        tokio::select! {
            r = &mut main => r,
            _ = shutdown => {
                tracing::info!("shutting down: no new {}s; draining running ones", W::ITEM);
                let _ = self.stop.send(true);
                main.await
            }
        }
    }

    async fn main(self: Arc<Self>) -> Result<(), Error> {
        if self.settings.faucet > 0 {
            self.ask_faucet().await;
        }
        let registration = match self.register_until_ok().await {
            Ok(Some(r)) => r,
            Ok(None) => return self.outcome(),
            Err(e) => {
                self.fail(e);
                return self.outcome();
            }
        };
        if let Some(every) = self.work.clone().started(&registration, &self.context()) {
            tokio::spawn(self.clone().heartbeats(every));
        }
        let mut jobs = tokio::task::JoinSet::new();
        let mut attempt = 0;
        let mut suspended = false;
        while !self.shutdown.started() {
            let free = self.free_slots();
            if free == 0 {
                // A finished item frees a slot: wait for one, or poll.
                if jobs.is_empty() {
                    self.shutdown.sleep(self.settings.poll_interval).await;
                } else {
                    tokio::select! {
                        _ = jobs.join_next() => {}
                        _ = self.shutdown.sleep(self.settings.poll_interval) => {}
                    }
                }
                continue;
            }
            let taken = tokio::select! {
                taken = self.work.take(free) => taken,
                // A long poll would hold shutdown up; what it may still be
                // granted is ended by the coordinator's lease expiry.
                () = self.shutdown.stopped() => break,
            };
            match taken {
                Ok(items) => {
                    attempt = 0;
                    suspended = false;
                    let got = !items.is_empty();
                    for item in items {
                        let Some(id) = self.work.id(&item) else {
                            tracing::warn!("a {} without a valid id: ignored", W::ITEM);
                            continue;
                        };
                        self.metrics.taken.inc();
                        match self.work.admit(&id) {
                            Ok(()) => {
                                self.activate(id);
                                jobs.spawn(self.clone().work_on(id, item));
                            }
                            Err(why) => self.give_back(&id, &why).await,
                        }
                    }
                    while jobs.try_join_next().is_some() {}
                    if !got && !W::LONG_POLLS {
                        self.shutdown.sleep(self.settings.poll_interval).await;
                    }
                }
                Err(Error::Call(e)) => {
                    self.metrics.rpc_errors.inc();
                    match e.code() {
                        tonic::Code::NotFound => {
                            // The coordinator forgot us (a new database).
                            tracing::warn!(error = %e, "the coordinator does not know this {}: registering again", W::ROLE);
                            match self.register_until_ok().await {
                                Ok(Some(_)) => {}
                                Ok(None) => break,
                                Err(e) => {
                                    self.fail(e);
                                    break;
                                }
                            }
                        }
                        tonic::Code::PermissionDenied => {
                            // Suspended (caught lying): nothing until an
                            // operator lifts it. Say so once, then ask rarely.
                            if !suspended {
                                suspended = true;
                                tracing::error!(error = %e, "this {} gets no {}s; asking again every {} s (stop it with Ctrl-C)", W::ROLE, W::ITEM, self.settings.suspended_poll.as_secs());
                            }
                            self.shutdown.sleep(self.settings.suspended_poll).await;
                        }
                        _ => {
                            attempt += 1;
                            tracing::warn!(error = %e, "cannot take {}s; backing off", W::ITEM);
                            self.shutdown.sleep(backoff(attempt)).await;
                        }
                    }
                }
                Err(e) => {
                    self.fail(e);
                    break;
                }
            }
        }
        // Draining: let running items finish, then give back the rest.
        if tokio::time::timeout(self.settings.drain_timeout, async {
            while jobs.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            jobs.abort_all();
            let left: Vec<Hash32> = self
                .active
                .lock()
                .map(|a| a.iter().copied().collect())
                .unwrap_or_default();
            let why = GiveBack::new(format!(
                "{} shut down before finishing the {}",
                W::ROLE,
                W::ITEM
            ));
            for id in left {
                self.give_back(&id, &why).await;
            }
        }
        self.outcome()
    }

    /// Stops the daemon with `e` (the first such error wins).
    fn fail(&self, e: Error) {
        tracing::error!(error = %e, "stopping the {}", W::ROLE);
        if let Ok(mut f) = self.fatal.lock()
            && f.is_none()
        {
            *f = Some(e);
        }
        let _ = self.stop.send(true);
    }

    fn outcome(&self) -> Result<(), Error> {
        match self.fatal.lock().ok().and_then(|mut f| f.take()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The items taken and not finished.
    fn held(&self) -> Vec<Hash32> {
        self.active
            .lock()
            .map(|a| a.iter().copied().collect())
            .unwrap_or_default()
    }

    fn free_slots(&self) -> u32 {
        let busy = self
            .active
            .lock()
            .map(|a| a.len() as u32)
            .unwrap_or(self.settings.slots);
        self.settings.slots.saturating_sub(busy)
    }

    fn activate(&self, id: Hash32) {
        if let Ok(mut a) = self.active.lock() {
            a.insert(id);
            self.metrics.running.set(a.len() as i64);
        }
    }

    fn finish(&self, id: &Hash32) {
        self.work.finished(id);
        if let Ok(mut a) = self.active.lock() {
            a.remove(id);
            self.metrics.running.set(a.len() as i64);
        }
    }

    async fn ask_faucet(&self) {
        for attempt in 0..FAUCET_ATTEMPTS {
            if self.shutdown.started() {
                return;
            }
            match self.work.faucet(self.settings.faucet).await {
                Ok(balance) => {
                    tracing::info!(balance, "faucet credited");
                    return;
                }
                Err(e) if worth_retrying(&e) => self.shutdown.sleep(backoff(attempt)).await,
                Err(e @ Error::Sign(_)) => {
                    self.fail(e);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "faucet refused");
                    return;
                }
            }
        }
    }

    /// Registers, retrying through outages and refusals (e.g. a balance
    /// short of the stake, until the faucet or a transfer fills it), then
    /// gives back the stale items. `None` on shutdown.
    async fn register_until_ok(&self) -> Result<Option<W::Registration>, Error> {
        let mut attempt = 0;
        loop {
            if self.shutdown.started() {
                return Ok(None);
            }
            match self.work.register().await {
                Ok(r) => {
                    self.metrics.registrations.inc();
                    tracing::info!(coordinator = %self.settings.coordinator, "registered as a {}", W::ROLE);
                    for (id, why) in &r.stale {
                        let working = self.active.lock().map(|a| a.contains(id)).unwrap_or(true);
                        if !working {
                            self.give_back(id, why).await;
                        }
                    }
                    return Ok(Some(r.answer));
                }
                Err(Error::Call(e)) if e.code() == tonic::Code::Unimplemented => {
                    return Err(Error::Unsupported {
                        url: self.settings.coordinator.clone(),
                        service: W::ROLE,
                        reason: e.to_string(),
                    });
                }
                Err(e @ Error::Call(_)) => {
                    self.metrics.rpc_errors.inc();
                    tracing::warn!(error = %e, "cannot register as a {}; retrying", W::ROLE);
                    attempt += 1;
                    self.shutdown.sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn heartbeats(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Keep renewing while draining; stop once nothing runs.
            let idle = self.active.lock().map(|a| a.is_empty()).unwrap_or(true);
            if self.shutdown.started() && idle {
                return;
            }
            let held = self.held();
            match self.work.heartbeat_holding(self.free_slots(), held).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        "the coordinator does not know this {}: registering again",
                        W::ROLE
                    );
                    if let Err(e) = self.register_until_ok().await {
                        self.fail(e);
                        return;
                    }
                }
                Err(e @ Error::Call(_)) => {
                    self.metrics.rpc_errors.inc();
                    tracing::warn!(error = %e, "heartbeat failed");
                }
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
    }

    /// Gives an item back (retrying through outages) and forgets it.
    async fn give_back(&self, id: &Hash32, why: &GiveBack) {
        self.send_give_back(id, why).await;
        self.finish(id);
    }

    /// Gives an item back (retrying through outages); the caller finishes it.
    async fn send_give_back(&self, id: &Hash32, why: &GiveBack) {
        let sent = retry(GIVE_BACK_ATTEMPTS, || self.work.give_back(id, why)).await;
        match sent {
            Ok(()) => {
                self.metrics.returned.inc();
                tracing::info!(item = %id.short(), fault = why.fault, reason = %why.reason, "{} given back", W::ITEM);
            }
            Err(e @ Error::Sign(_)) => self.fail(e),
            Err(e) => {
                self.metrics.rpc_errors.inc();
                tracing::warn!(item = %id.short(), error = %e, "could not give the {} back", W::ITEM);
            }
        }
    }

    /// Works one item to the end: reported, given back or dropped.
    async fn work_on(self: Arc<Self>, id: Hash32, item: W::Item) {
        let started = Instant::now();
        if let Some(report) = self.attempt(id, item).await {
            let ran = started.elapsed();
            self.deliver(&id, report).await;
            self.finish(&id);
            tracing::debug!(
                item = %id.short(),
                ran_ms = ran.as_secs_f64() * 1e3,
                reported_ms = started.elapsed().as_secs_f64() * 1e3,
                "{} finished", W::ITEM
            );
        }
    }

    /// Prepares, fetches and runs an item; `None` when it was given back or
    /// dropped (and so is finished).
    async fn attempt(&self, id: Hash32, item: W::Item) -> Option<W::Report> {
        let shutting_down = || GiveBack::new(format!("{} shutting down", W::ROLE));
        if self.shutdown.started() {
            self.give_back(&id, &shutting_down()).await;
            return None;
        }
        let prepared = match self.work.prepare(id, item) {
            Ok(p) => p,
            Err(why) => {
                tracing::warn!(item = %id.short(), reason = %why.reason, "not running this {}", W::ITEM);
                self.give_back(&id, &why).await;
                return None;
            }
        };
        let blobs = match self
            .blobs
            .fetch_with(
                prepared.component.as_ref(),
                &prepared.inputs,
                &prepared.carried,
                prepared.through.as_ref(),
            )
            .await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(item = %id.short(), error = %e, "cannot fetch the job's blobs");
                let why = GiveBack::fault(format!("{} cannot fetch the job's blobs: {e}", W::ROLE));
                self.give_back(&id, &why).await;
                return None;
            }
        };
        if self.shutdown.started() {
            self.give_back(&id, &shutting_down()).await;
            return None;
        }
        let work = self.work.clone();
        let job = prepared.job;
        let started = Instant::now();
        tracing::debug!(item = %id.short(), "{} fetched", W::ITEM);
        let ran = tokio::task::spawn_blocking(move || work.run(job, blobs)).await;
        self.metrics
            .run_ms
            .inc_by(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        let conclusion = ran.unwrap_or_else(|e| {
            Conclusion::GiveBack(GiveBack::fault(format!("the run crashed: {e}")))
        });
        let outcome = match &conclusion {
            Conclusion::Report { outcome, .. } => outcome.as_str(),
            Conclusion::GiveBack(why) if why.fault => "fault",
            Conclusion::GiveBack(_) => "no-result",
            Conclusion::Drop { .. } => "dropped",
        };
        let (backend, device) = &self.device;
        self.metrics
            .runs
            .get_or_create(&RunLabels::new(backend, device, outcome))
            .inc();
        match conclusion {
            Conclusion::Report { report, .. } => Some(report),
            Conclusion::GiveBack(why) => {
                if why.fault {
                    self.metrics.faults.inc();
                }
                tracing::warn!(item = %id.short(), reason = %why.reason, "the run produced no result");
                self.give_back(&id, &why).await;
                None
            }
            Conclusion::Drop { reason } => {
                tracing::warn!(item = %id.short(), reason, "dropped");
                self.finish(&id);
                None
            }
        }
    }

    /// Reports a finished item, retrying through outages; a refused report
    /// may give the item back ([`Work::give_back_refused`]).
    async fn deliver(&self, id: &Hash32, report: W::Report) {
        let mut attempt = 0;
        loop {
            match self.work.report(&report).await {
                Ok(()) => return,
                Err(e @ Error::Sign(_)) => {
                    self.fail(e);
                    return;
                }
                Err(e) if worth_retrying(&e) && attempt < W::REPORT_ATTEMPTS => {
                    self.metrics.rpc_errors.inc();
                    attempt += 1;
                    tracing::warn!(item = %id.short(), error = %e, "coordinator unreachable; will report again");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => {
                    self.work.report_failed(&report, &e);
                    // Refused (not an outage that outlasted the retries): hand
                    // the item back at once.
                    if matches!(&e, Error::Call(c) if refused(c))
                        && let Some(why) = self.work.give_back_refused(&report, &e)
                    {
                        self.send_give_back(id, &why).await;
                    }
                    return;
                }
            }
        }
    }
}
