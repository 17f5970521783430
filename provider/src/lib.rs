//! The provider daemon (`assay provider`): sells this machine's compute on
//! the Assay market.
//!
//! 1. **Register** with the coordinator: hardware (CPU cores, memory, GPUs),
//!    price, slots and stake (topping the stake up from its balance).
//! 2. **Heartbeat** on the interval the coordinator asks for; the heartbeat
//!    keeps the provider online, renews its leases and reports the leases it
//!    holds (the coordinator ends any other, e.g. one whose `TakeLeases`
//!    reply was lost). If the coordinator forgot it (a fresh database), it
//!    registers again.
//! 3. **Take leases** while slots are free; each lease is first written to
//!    the lease [`journal`], so a lease is never run twice, even across a
//!    crash and restart.
//! 4. **Run** each lease: fetch the component and inputs by hash into the
//!    local blob cache (checked with blake3), run them with
//!    [`assay_runtime::Runtime::run`] on a blocking thread, upload the
//!    outputs (only those the coordinator lacks) and submit the signed
//!    receipt. A provider fault gives the lease back (no receipt), marked
//!    when the job's own watchdog ended the run (the renter pays a fee for
//!    the slot); so does a receipt the coordinator refuses.
//! 5. **Survive** outages: every call retries with exponential backoff (up
//!    to 5 s); a receipt is retried until the coordinator answers it.
//! 6. **Shut down gracefully**: on the shutdown signal it stops taking
//!    leases, gives back those not started, lets running jobs finish for up
//!    to the drain timeout, then gives back the rest.
//!
//! 7. **Defend its receipts** in disputes: it keeps the trace of each
//!    receipt it submitted (by receipt id, in memory, bounded:
//!    `assay_daemon::dispute::TraceStore`) and answers the coordinator's
//!    questions about it (`TakeQuestions`/`Answer`: the trace's claim, node
//!    and leaf reveals, and the disputed step's input tensors, regained by
//!    running the job again); a receipt whose trace it no longer holds is
//!    answered `unable` and re-executed in full by the arbiter.
//!
//! Steps 1–2 and 5–6, the blob cache and the taking, fetching and giving
//! back of step 3–4 are the worker loop it shares with the verifier
//! (`assay_daemon::Worker`); this crate is the provider's [`Work`]: what to
//! register, the lease [`journal`], the run, the receipt upload, the
//! [`cheat`] knob. Its own Prometheus counters are in [`metrics`].
//!
//! # Test-only knobs
//!
//! [`Config::cheat`] (`assay provider --cheat-rate F [--inflate-work N]`,
//! hidden flags) makes the provider lie on a deterministic fraction of its
//! leases — corrupted outputs or over-billed work, validly signed — so that
//! end-to-end tests can show that verifiers catch it and the provider is
//! slashed. See [`cheat`]. Never set it on a real provider: a cheated
//! receipt that is sampled costs the stake.
//!
//! [`Config::cheat_step`] (`assay provider --cheat-step`, hidden) lies on
//! every lease in a way only bisection pins down: the output digest of one
//! step in the middle of the trace is replaced
//! (`assay_daemon::dispute::corrupt_middle_step`) — in the receipt's trace
//! when it hashes outputs, else in the data trace the provider commits to
//! when disputed — the receipt states a corrupted result (as [`cheat`]
//! corrupts it), and the provider defends the corrupted trace in the
//! dispute, so the arbiter's recompute of that one step convicts it.
//!
//! # Traces
//!
//! A receipt's trace hashes calls, dtypes and shapes only by default
//! ([`Config::trace_hashing`]; about 1 % of a job's time, where hashing
//! every output costs about 10 % on MiniLM). The provider keeps it; when a
//! dispute asks for its claim, it runs the job again with every output
//! hashed (on a CPU: a GPU keeps outputs on the device and cannot), checks
//! the re-run made the same calls, and commits to that data trace
//! (`assay_daemon::dispute`).

#![forbid(unsafe_code)]

pub mod cheat;
mod error;
mod host;
pub mod journal;
pub mod metrics;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use assay_daemon::dispute::{self, KeptTrace, Party, TraceStore};
use assay_daemon::worker::{Context, Fetched};
use assay_daemon::{Conclusion, GiveBack, Prepared, Registered, Settings, Work, Worker};
use assay_proto::pb::provider_client::ProviderClient;
use assay_proto::pb::renter_client::RenterClient;
use assay_proto::{client, convert, pb};
use assay_protocol::{BlobRef, Hash32, JobSpec, NodeKey};
use assay_runtime::{RunReport, Runtime, TraceOptions};
use prometheus_client::registry::Registry;
use tonic::transport::Channel;

pub use crate::error::Error;

use crate::cheat::Cheat;
use crate::journal::Journal;
use crate::metrics::Metrics;

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
    /// µIOSD per million work units.
    pub price: u64,
    /// Stake to hold (topped up from the balance at registration).
    pub stake: u64,
    /// Jobs at once.
    pub slots: u32,
    /// µIOSD per slot-hour a renter pays to reserve one of its slots in a
    /// cluster (0: the coordinator's default).
    pub reserve_price: u64,
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
    /// Devnet: ask the faucet for this many µIO at start, to stake (0: don't).
    pub faucet: u64,
    /// Test only: lie on some leases (see [`cheat`]). The default never does.
    pub cheat: Cheat,
    /// Test only: lie about one step of every lease's trace (see the crate
    /// docs). Takes the place of [`Config::cheat`].
    pub cheat_step: bool,
    /// What receipts' traces hash: `CallsOnly` (the default: calls,
    /// dtypes and shapes; a dispute re-runs the job to commit to its
    /// outputs) or every output (`Inline`, `Beside`).
    pub trace_hashing: assay_runtime::Hashing,
    /// The most a lease's spec may ask for (log and output bytes, memory,
    /// …): a lease over them, or over the memory [`Config::hardware`]
    /// has, is given back before anything is fetched or run.
    pub caps: assay_protocol::SpecCaps,
}

/// The provider's part of the worker loop.
struct Provider {
    cfg: Config,
    runtime: Arc<Runtime>,
    channel: Channel,
    journal: Journal,
    metrics: Metrics,
    /// NVML, opened once; absent without a driver.
    telemetry: Arc<Option<assay_host_gpu::telemetry::Telemetry>>,
    /// Leases a previous process started and never finished: given back
    /// after the first registration.
    unfinished: Mutex<Vec<Hash32>>,
    /// Leases whose run the job's own watchdog ended: their give-back says
    /// so (the loop's give-back carries a reason and a fault flag only).
    watchdog_fired: Mutex<BTreeSet<Hash32>>,
    /// The traces of submitted receipts, by receipt id, to answer disputes.
    traces: TraceStore,
    /// A CPU runtime for disputes' re-runs, made the first time one is
    /// needed when [`Provider::runtime`] is on a GPU.
    cpu_runtime: OnceLock<Arc<Runtime>>,
    /// The reserved clusters its last heartbeat said it holds a slot for.
    reservations: Mutex<BTreeSet<Hash32>>,
    /// The node key (the runtime's), bound to the coordinator.
    signer: assay_proto::auth::Signer,
}

/// A lease ready to run.
struct LeaseJob {
    id: Hash32,
    spec: JobSpec,
}

/// A finished run, its receipt and outputs to deliver.
struct Delivery {
    lease: Hash32,
    report: RunReport,
    blobs: Vec<Arc<[u8]>>,
    outputs: Vec<BlobRef>,
}

impl Provider {
    fn key(&self) -> &NodeKey {
        self.runtime.node_key()
    }

    /// Refuses a spec over this provider's caps or over the memory it
    /// has: guest memory from RAM, device memory from the largest GPU (RAM
    /// on a CPU-only machine).
    fn admits(&self, spec: &assay_protocol::JobSpec) -> Result<(), GiveBack> {
        let hw = &self.cfg.hardware;
        let device = hw
            .gpus
            .iter()
            .map(|(_, m)| *m)
            .max()
            .unwrap_or(hw.memory_bytes);
        let offered = assay_protocol::SpecCaps {
            memory_bytes: self.cfg.caps.memory_bytes.min(hw.memory_bytes),
            gpu_memory_bytes: self.cfg.caps.gpu_memory_bytes.min(device),
            ..self.cfg.caps
        };
        offered
            .check(spec)
            .map_err(|e| GiveBack::new(format!("this provider does not take the lease: {e}")))
    }

    fn client(&self) -> ProviderClient<Channel> {
        ProviderClient::new(self.channel.clone())
    }

    /// One heartbeat, with the leases held when `held` is given.
    async fn beat(
        &self,
        free_slots: u32,
        held: Option<Vec<Hash32>>,
    ) -> Result<bool, assay_daemon::Error> {
        let telemetry = self.telemetry.clone();
        let gpus = tokio::task::spawn_blocking(move || gpu_telemetry(telemetry.as_ref().as_ref()))
            .await
            .unwrap_or_default();
        let mut req = pb::HeartbeatRequest {
            auth: None,
            free_slots,
            gpus,
            host: host::telemetry(self.cfg.hardware.cpu_cores),
            held: held.as_deref().map(convert::lease_report_to_pb),
        };
        assay_daemon::sign(&self.signer, &mut req)?;
        let answer = self.client().heartbeat(req).await?.into_inner();
        self.note_reservations(&answer.clusters);
        Ok(answer.registered)
    }

    /// Says when this provider joins or leaves a reserved cluster (one of
    /// its slots is held for each; `assay cluster show ID` has the terms).
    fn note_reservations(&self, clusters: &[Vec<u8>]) {
        let now: BTreeSet<Hash32> = clusters
            .iter()
            .filter_map(|c| convert::hash("clusters", c).ok())
            .collect();
        let Ok(mut known) = self.reservations.lock() else {
            return;
        };
        for joined in now.difference(&known) {
            tracing::info!(cluster = %joined, "joined a reserved cluster: one slot is held for its jobs");
        }
        for left in known.difference(&now) {
            tracing::info!(cluster = %left, "left a reserved cluster: its slot is open to the market again");
        }
        *known = now;
    }
}

/// How long a provider's take of leases waits at the coordinator for a
/// shard (a long poll: a shard published meanwhile is taken at once).
const LONG_POLL_MS: u32 = 5_000;

impl Work for Provider {
    type Item = pb::Lease;
    type Job = LeaseJob;
    type Registration = pb::RegisterResponse;
    type Report = Delivery;

    const NAMES: assay_daemon::metrics::Names = assay_daemon::metrics::Names {
        prefix: "assay_provider",
        taken: "leases_taken",
        returned: "leases_returned",
        running: "running_jobs",
        run_ms: "run_ms",
        faults: "provider_faults",
    };
    const ROLE: &'static str = "provider";
    const ITEM: &'static str = "lease";
    const REPORT_ATTEMPTS: u32 = 200;

    fn device(&self) -> (String, String) {
        let info = self.runtime.device().info();
        (info.kind, info.device)
    }

    fn register_metrics(&self, registry: &mut Registry) {
        self.metrics
            .register(registry, self.cfg.cheat.is_on() || self.cfg.cheat_step);
    }

    async fn faucet(&self, amount: u64) -> Result<u64, assay_daemon::Error> {
        faucet(&self.channel, &self.signer, amount).await
    }

    async fn register(&self) -> Result<Registered<pb::RegisterResponse>, assay_daemon::Error> {
        let hardware = &self.cfg.hardware;
        let mut req = pb::RegisterRequest {
            auth: None,
            hardware: Some(pb::Hardware {
                cpu_cores: hardware.cpu_cores,
                memory_bytes: hardware.memory_bytes,
                gpus: hardware
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
            reserve_price: self.cfg.reserve_price,
        };
        assay_daemon::sign(&self.signer, &mut req)?;
        let answer = self.client().register(req).await?.into_inner();
        tracing::info!(
            provider = %self.key().id(),
            stake = answer.stake,
            reliability = answer.reliability_permille,
            "registered"
        );
        // Leases the coordinator thinks we hold (given back unless this
        // process runs them: a restart), then those a previous process
        // started and never finished.
        let mut stale: Vec<(Hash32, GiveBack)> = answer
            .active_leases
            .iter()
            .filter_map(|l| convert::hash("active_leases", l).ok())
            .map(|id| {
                let why = GiveBack::new("provider restarted: this lease is not running here");
                (id, why)
            })
            .collect();
        let unfinished = self
            .unfinished
            .lock()
            .map(|mut u| std::mem::take(&mut *u))
            .unwrap_or_default();
        for id in unfinished {
            if !stale.iter().any(|(s, _)| *s == id) {
                stale.push((id, GiveBack::new("provider restarted before finishing it")));
            }
        }
        Ok(Registered { answer, stale })
    }

    fn started(self: Arc<Self>, reg: &pb::RegisterResponse, ctx: &Context) -> Option<Duration> {
        let every = self.cfg.poll_interval;
        tokio::spawn(dispute::answer_questions(self.clone(), every, ctx.clone()));
        Some(Duration::from_millis(
            reg.heartbeat_interval_ms.clamp(50, 60_000),
        ))
    }

    async fn heartbeat(&self, free_slots: u32) -> Result<bool, assay_daemon::Error> {
        self.beat(free_slots, None).await
    }

    async fn heartbeat_holding(
        &self,
        free_slots: u32,
        held: Vec<Hash32>,
    ) -> Result<bool, assay_daemon::Error> {
        self.beat(free_slots, Some(held)).await
    }

    const LONG_POLLS: bool = true;

    async fn take(&self, max: u32) -> Result<Vec<pb::Lease>, assay_daemon::Error> {
        let mut req = pb::TakeLeasesRequest {
            auth: None,
            max,
            wait_ms: LONG_POLL_MS,
        };
        assay_daemon::sign(&self.signer, &mut req)?;
        Ok(self.client().take_leases(req).await?.into_inner().leases)
    }

    fn id(&self, lease: &pb::Lease) -> Option<Hash32> {
        convert::hash("lease_id", &lease.lease_id).ok()
    }

    fn admit(&self, id: &Hash32) -> Result<(), GiveBack> {
        match self.journal.start(id) {
            Ok(true) => Ok(()),
            Ok(false) => Err(GiveBack::new("this provider already ran that lease")),
            Err(e) => {
                tracing::error!(error = %e, "cannot journal a lease: not running it");
                Err(GiveBack::fault("provider cannot write its journal"))
            }
        }
    }

    fn prepare(&self, id: Hash32, lease: pb::Lease) -> Result<Prepared<LeaseJob>, GiveBack> {
        let bad = |e: assay_proto::Error| GiveBack::new(format!("bad lease: {e}"));
        let spec = convert::spec("spec", lease.spec.as_ref())
            .map_err(|e| GiveBack::new(format!("bad spec: {e}")))?;
        self.admits(&spec)?;
        Ok(Prepared {
            component: Some(convert::hash("component_hash", &lease.component_hash).map_err(bad)?),
            inputs: convert::blob_refs("inputs", &lease.inputs).map_err(bad)?,
            carried: lease.inline_inputs.into_iter().map(Arc::from).collect(),
            through: Some(convert::hash("job_id", &lease.job_id).map_err(bad)?),
            job: LeaseJob { id, spec },
        })
    }

    fn run(&self, job: LeaseJob, blobs: Fetched) -> Conclusion<Delivery> {
        let LeaseJob { id, spec } = job;
        tracing::info!(lease = %id.short(), shard = %format!("{}/{}", spec.shard.index, spec.shard.count), "running");
        let loaded = self
            .runtime
            .load_hashed(blobs.component_hash, &blobs.component);
        let ran = loaded.and_then(|loaded| {
            let trace = TraceOptions {
                hashing: self.cfg.trace_hashing,
                ..TraceOptions::default()
            };
            self.runtime
                .run_with(&loaded, Arc::new(blobs.inputs), &spec, &trace)
        });
        let mut report = match ran {
            Ok(r) => r,
            Err(e) => {
                let fault = matches!(e, assay_runtime::Error::ProviderFault { .. });
                if let assay_runtime::Error::ProviderFault {
                    kind: assay_runtime::FaultKind::Watchdog,
                    ..
                } = e
                    && let Ok(mut fired) = self.watchdog_fired.lock()
                {
                    fired.insert(id);
                }
                return Conclusion::GiveBack(GiveBack {
                    reason: e.to_string(),
                    fault,
                });
            }
        };
        self.metrics.fuel_used.inc_by(report.receipt.body.fuel_used);
        let lie = if self.cfg.cheat_step {
            self.cheat_step(&id, &mut report)
        } else {
            None
        };
        if !self.cfg.cheat_step && self.cfg.cheat.chosen(&id) {
            match self
                .cfg
                .cheat
                .apply(self.key(), &mut report.outputs, &mut report.receipt)
            {
                Ok(what) => {
                    self.metrics.cheats.inc();
                    tracing::warn!(lease = %id.short(), cheat = what, "test knob: this receipt lies");
                }
                Err(e) => {
                    tracing::error!(lease = %id.short(), error = %e, "test knob: cannot cheat")
                }
            }
        }
        // The trace the receipt states, kept to answer for it in a dispute.
        if report.trace.recorded {
            let steps = std::mem::take(&mut report.trace.steps);
            let leaves = std::mem::take(&mut report.trace.leaves);
            let data = report.trace.data;
            let kept = lie.unwrap_or_else(|| {
                if data {
                    KeptTrace::with_leaves(steps, leaves)
                } else {
                    KeptTrace::calls_only(steps, leaves)
                }
            });
            if !self.traces.keep(report.receipt.id(), kept) {
                tracing::warn!(lease = %id.short(), "this run's trace is too large to keep: a dispute about it is re-executed in full");
            }
        }
        let blobs = report
            .outputs
            .values()
            .map(|b| Arc::from(b.as_slice()))
            .collect();
        let outputs = report
            .outputs
            .iter()
            .map(|(name, b)| BlobRef {
                name: name.clone(),
                hash: Hash32::of(b),
                size: b.len() as u64,
            })
            .collect();
        Conclusion::Report {
            outcome: report.outcome.to_string(),
            report: Delivery {
                lease: id,
                report,
                blobs,
                outputs,
            },
        }
    }

    async fn report(&self, d: &Delivery) -> Result<(), assay_daemon::Error> {
        // Small outputs go with the receipt (one round trip, not two).
        let total: u64 = d.blobs.iter().map(|b| b.len() as u64).sum();
        let inline_outputs = if total <= assay_proto::INLINE_MAX_BYTES {
            d.blobs.iter().map(|b| b.to_vec()).collect()
        } else {
            let sent = client::upload_missing(&self.channel, &self.signer, &d.blobs).await?;
            self.metrics.bytes_uploaded.inc_by(sent);
            Vec::new()
        };
        let mut req = pb::SubmitReceiptRequest {
            auth: None,
            lease_id: d.lease.0.to_vec(),
            receipt: Some(pb::Receipt::from(&d.report.receipt)),
            outputs: convert::blob_refs_to_pb(&d.outputs),
            failure_message: failure_message(&d.report),
            inline_outputs,
        };
        assay_daemon::sign(&self.signer, &mut req)?;
        let resp = self.client().submit_receipt(req).await?.into_inner();
        self.metrics.receipts_accepted.inc();
        let rid = convert::hash("receipt_id", &resp.receipt_id)
            .map(|h| h.short())
            .unwrap_or_default();
        tracing::info!(lease = %d.lease.short(), receipt = %rid, outcome = %d.report.outcome, "receipt accepted");
        Ok(())
    }

    fn report_failed(&self, d: &Delivery, error: &assay_daemon::Error) {
        self.metrics.receipts_refused.inc();
        // Nobody will dispute a receipt that was not recorded.
        self.traces.forget(&d.report.receipt.id());
        tracing::warn!(lease = %d.lease.short(), %error, "receipt refused");
    }

    fn give_back_refused(&self, _d: &Delivery, error: &assay_daemon::Error) -> Option<GiveBack> {
        // The lease would otherwise sit here until it expired, holding the
        // shard, its escrow and a slot.
        Some(GiveBack::new(format!("receipt refused: {error}")))
    }

    async fn give_back(&self, id: &Hash32, why: &GiveBack) -> Result<(), assay_daemon::Error> {
        let watchdog = self
            .watchdog_fired
            .lock()
            .map(|fired| fired.contains(id))
            .unwrap_or(false);
        let mut req = pb::ReturnLeaseRequest {
            auth: None,
            lease_id: id.0.to_vec(),
            fault: why.fault,
            reason: why.reason.clone(),
            watchdog,
        };
        assay_daemon::sign(&self.signer, &mut req)?;
        self.client().return_lease(req).await?;
        Ok(())
    }

    fn finished(&self, id: &Hash32) {
        self.journal.end(id);
        if let Ok(mut fired) = self.watchdog_fired.lock() {
            fired.remove(id);
        }
    }
}

impl Provider {
    /// The `--cheat-step` lie: corrupts one step of the run's trace, states
    /// that trace's root and a corrupted result in the receipt (re-signed),
    /// and returns the trace to defend (`None`: no step to lie about, the
    /// receipt is left honest).
    fn cheat_step(&self, lease: &Hash32, report: &mut RunReport) -> Option<KeptTrace> {
        if !report.trace.recorded {
            return None;
        }
        let mut steps = report.trace.steps.clone();
        let Some(step) = dispute::corrupt_middle_step(&mut steps) else {
            tracing::warn!(lease = %lease.short(), "test knob: no transform step to lie about; this receipt is honest");
            return None;
        };
        // A calls-only trace states no outputs: the lie is told when a
        // dispute asks for the data trace (`Party::commit`).
        let lie = report.trace.data.then(|| KeptTrace::new(steps));
        if let Some(lie) = &lie {
            report.receipt.body.trace_root = lie.root();
        }
        let always = Cheat {
            rate: 1.0,
            inflate_work: 0,
        };
        match always.apply(self.key(), &mut report.outputs, &mut report.receipt) {
            Ok(what) => {
                self.metrics.cheats.inc();
                tracing::warn!(lease = %lease.short(), step, cheat = what, "test knob: this receipt lies about one step of its trace");
                lie
            }
            Err(e) => {
                tracing::error!(lease = %lease.short(), error = %e, "test knob: cannot cheat");
                None
            }
        }
    }
}

impl Provider {
    /// Where a dispute's re-run runs: this provider's runtime if it is on
    /// the CPU, else a CPU runtime made once. A GPU keeps op outputs on the
    /// device and its trace hashes none; the CPU gives the same bits by
    /// definition, so its data trace is the GPU run's. (The re-run's
    /// receipt is never sent: its runtime signs with a key of its own.)
    fn data_runtime(&self) -> Result<Arc<Runtime>, String> {
        assay_runtime::data_runtime(&self.runtime, &self.cpu_runtime).map_err(|e| e.to_string())
    }
}

impl Party for Provider {
    const ROLE: &'static str = "provider";

    fn signer(&self) -> &assay_proto::auth::Signer {
        &self.signer
    }

    fn channel(&self) -> &Channel {
        &self.channel
    }

    fn traces(&self) -> &TraceStore {
        &self.traces
    }

    fn trace_id(&self, q: &dispute::Question) -> Option<Hash32> {
        q.receipt
    }

    /// The lease's run again, under the job's own spec as the lease gave it,
    /// every output hashed.
    fn rerun(
        &self,
        rerun: &dispute::Rerun,
        _deadline_ms: u64,
        keep: BTreeSet<u64>,
        blobs: Fetched,
    ) -> Result<dispute::RerunTrace, String> {
        let options = TraceOptions {
            keep,
            hashing: assay_runtime::Hashing::Inline,
            ..TraceOptions::default()
        };
        let runtime = self.data_runtime()?;
        let report = runtime
            .load_hashed(blobs.component_hash, &blobs.component)
            .and_then(|loaded| {
                runtime.run_with(&loaded, Arc::new(blobs.inputs), &rerun.spec, &options)
            })
            .map_err(|e| e.to_string())?;
        Ok(dispute::RerunTrace {
            data: report.trace.data,
            steps: report.trace.steps,
            kept: report.trace.kept,
        })
    }

    /// `--cheat-step` on a calls-only receipt: the data trace it defends
    /// has the lie the receipt's result was made with.
    fn commit(&self, steps: &mut Vec<assay_protocol::trace::Step>) {
        if self.cfg.cheat_step
            && let Some(step) = dispute::corrupt_middle_step(steps)
        {
            tracing::warn!(
                step,
                "test knob: committing to a data trace that lies about one step"
            );
        }
    }
}

/// What a failed run's renter reads beside the failure record (never hashed),
/// cut to what the coordinator keeps; empty for a success.
fn failure_message(report: &RunReport) -> String {
    match (&report.receipt.body.outcome, &report.error) {
        (assay_protocol::Outcome::Success, _) | (_, None) => String::new(),
        (_, Some(message)) => assay_proto::failure_message(message).to_owned(),
    }
}

/// Asks the devnet faucet for `amount` µIO (to stake) for `key`; answers
/// the IO balance.
/// (The verifier asks the same way.)
async fn faucet(
    channel: &Channel,
    signer: &assay_proto::auth::Signer,
    amount: u64,
) -> Result<u64, assay_daemon::Error> {
    let mut req = pb::FaucetRequest {
        auth: None,
        amount,
        unit: "io".into(),
    };
    assay_daemon::sign(signer, &mut req)?;
    Ok(RenterClient::new(channel.clone())
        .faucet(req)
        .await?
        .into_inner()
        .balance)
}

/// Runs the daemon until `shutdown` resolves, then drains.
///
/// # Errors
///
/// [`Error::Io`] if the state directory or journal cannot be used;
/// [`Error::Proto`] for a bad coordinator URL; [`Error::Daemon`] if the
/// metrics address cannot be bound or a request cannot be signed.
pub async fn run(
    cfg: Config,
    runtime: Arc<Runtime>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), Error> {
    std::fs::create_dir_all(&cfg.state_dir).map_err(|e| Error::io(&cfg.state_dir, e))?;
    let journal = Journal::open(&cfg.state_dir.join("leases.journal"))?;
    if cfg.cheat.is_on() {
        tracing::warn!(
            rate = cfg.cheat.rate,
            inflate_work = cfg.cheat.inflate_work,
            "TEST KNOB: this provider cheats on a fraction of its leases and will be slashed"
        );
    }
    let channel = client::channel(&cfg.coordinator)?;
    let settings = Settings {
        coordinator: cfg.coordinator.clone(),
        slots: cfg.slots,
        poll_interval: cfg.poll_interval,
        suspended_poll: Duration::from_secs(30),
        drain_timeout: cfg.drain_timeout,
        faucet: cfg.faucet,
        metrics_listen: cfg.metrics_listen,
        blob_dir: cfg.state_dir.join("blobs"),
        max_blob_bytes: cfg.max_blob_bytes,
    };
    if cfg.cheat_step {
        tracing::warn!(
            "TEST KNOB: this provider lies about one step of every lease's trace and will be slashed"
        );
    }
    let mut shutdown = std::pin::pin!(shutdown);
    let signer = tokio::select! {
        signer = assay_daemon::bind(&channel, runtime.node_key().clone(), &cfg.coordinator) => signer?,
        () = &mut shutdown => return Ok(()),
    };
    // Downloads are signed: a blob goes only to a key with a reason to read it.
    let blob_source = Arc::new(assay_daemon::cache::SignedChannel::new(
        channel.clone(),
        signer.clone(),
    ));
    let provider = Provider {
        traces: TraceStore::default(),
        cpu_runtime: OnceLock::new(),
        reservations: Mutex::new(BTreeSet::new()),
        unfinished: Mutex::new(journal.unfinished()),
        watchdog_fired: Mutex::new(BTreeSet::new()),
        telemetry: Arc::new(assay_host_gpu::telemetry::Telemetry::open().ok()),
        metrics: Metrics::default(),
        journal,
        channel: channel.clone(),
        signer,
        runtime,
        cfg,
    };
    Worker::new(provider, settings, blob_source)
        .run(shutdown)
        .await?;
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

/// Where a node keeps its provider state under its home directory.
pub fn state_dir(home: &Path) -> PathBuf {
    home.join("provider")
}

#[cfg(test)]
mod tests {
    //! The provider's own decisions inside the shared loop (the loop itself
    //! is tested against a fake coordinator in `assay-daemon`).

    use std::collections::BTreeMap;

    use assay_host_gpu::Device;
    use assay_runtime::RuntimeOptions;

    use super::*;

    fn provider(dir: &Path) -> Provider {
        let runtime = Runtime::new(RuntimeOptions {
            cache_dir: None,
            device: Device::cpu(),
            key: NodeKey::from_seed([4; 32]),
        })
        .expect("runtime");
        let cfg = Config {
            coordinator: "http://127.0.0.1:1".into(),
            price: 10,
            stake: 0,
            slots: 1,
            hardware: Hardware {
                cpu_cores: 1,
                memory_bytes: 1 << 30,
                gpus: Vec::new(),
            },
            state_dir: dir.to_owned(),
            poll_interval: Duration::from_millis(10),
            metrics_listen: None,
            drain_timeout: Duration::from_secs(1),
            max_blob_bytes: 1 << 20,
            faucet: 0,
            cheat: Cheat::default(),
            cheat_step: false,
            trace_hashing: assay_runtime::Hashing::Inline,
            reserve_price: 0,
            caps: assay_protocol::SpecCaps::default(),
        };
        let journal = Journal::open(&dir.join("leases.journal")).expect("journal");
        Provider {
            channel: client::channel(&cfg.coordinator).expect("channel"),
            signer: assay_proto::auth::Signer::new(runtime.node_key().clone(), Hash32([5; 32])),
            runtime: Arc::new(runtime),
            unfinished: Mutex::new(journal.unfinished()),
            watchdog_fired: Mutex::new(BTreeSet::new()),
            traces: TraceStore::default(),
            cpu_runtime: OnceLock::new(),
            reservations: Mutex::new(BTreeSet::new()),
            journal,
            metrics: Metrics::default(),
            telemetry: Arc::new(None),
            cfg,
        }
    }

    // The coordinator's channel (never used here) needs a tokio runtime.
    #[tokio::test]
    async fn a_lease_is_admitted_once_even_across_restarts() {
        let dir = tempfile::tempdir().expect("tmp");
        let lease = Hash32([7; 32]);
        let p = provider(dir.path());
        assert_eq!(p.admit(&lease), Ok(()));
        let again = p.admit(&lease).expect_err("never twice");
        assert!(
            !again.fault && again.reason.contains("already ran"),
            "{again:?}"
        );
        drop(p);
        // A new process gives the unfinished lease back at its first
        // registration, and still refuses to run it.
        let p = provider(dir.path());
        assert_eq!(*p.unfinished.lock().expect("unfinished"), vec![lease]);
        assert!(p.admit(&lease).is_err());
        p.finished(&lease);
        assert!(
            provider(dir.path())
                .unfinished
                .lock()
                .expect("unfinished")
                .is_empty()
        );
    }

    /// A finished run of upload, upload, matmul, read, with its trace.
    fn finished_run(key: &NodeKey) -> RunReport {
        use assay_protocol::trace::{Attr, Call, Step};
        let call =
            |name: &str, inputs: Vec<u64>| Call::new(name, inputs, vec![Attr::U32(2)]).encode();
        let steps = vec![
            Step {
                call: call("tensor.upload-f32", vec![]),
                output: Hash32([1; 32]),
            },
            Step {
                call: call("tensor.upload-f32", vec![]),
                output: Hash32([2; 32]),
            },
            Step {
                call: call("tensor.matmul", vec![0, 1]),
                output: Hash32([3; 32]),
            },
            Step {
                call: call("tensor.read-f32", vec![2]),
                output: Hash32([3; 32]),
            },
        ];
        let honest = KeptTrace::new(steps.clone());
        let mut outputs = BTreeMap::new();
        outputs.insert("y".to_string(), vec![1, 2, 3, 4]);
        let receipt = assay_protocol::ReceiptBody {
            semantics: assay_protocol::SEMANTICS_VERSION,
            job_id: Hash32([1; 32]),
            shard: assay_protocol::Shard::default(),
            provider_id: key.id(),
            component_hash: Hash32([2; 32]),
            inputs_root: Hash32([3; 32]),
            outputs_root: assay_protocol::outputs_root(
                outputs.iter().map(|(n, b)| (n.as_str(), &b[..])),
            ),
            trace_root: honest.root(),
            outcome: assay_protocol::Outcome::Success,
            fuel_used: 1,
            work: assay_protocol::WorkDone::default(),
            backend: assay_protocol::BackendDescriptor::default(),
            telemetry: None,
            started_at_ms: 1,
            finished_at_ms: 2,
        }
        .sign(key)
        .expect("sign");
        RunReport {
            job_id: Hash32([1; 32]),
            outcome: assay_protocol::Outcome::Success,
            outputs,
            failure: None,
            error: None,
            receipt,
            stdout: Vec::new(),
            stderr: Vec::new(),
            log: String::new(),
            elapsed: Duration::ZERO,
            op_times: BTreeMap::new(),
            trace: assay_runtime::RunTrace {
                recorded: true,
                data: true,
                leaves: honest.tree().leaves().to_vec(),
                root: honest.root(),
                steps,
                ..Default::default()
            },
        }
    }

    #[tokio::test]
    async fn a_disputes_re_run_is_on_the_cpu_even_for_a_gpu_provider() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = provider(dir.path());
        let same = p.data_runtime().expect("a runtime");
        assert!(
            Arc::ptr_eq(&same, &p.runtime),
            "a CPU provider re-runs on its own runtime"
        );
        // A provider on the CUDA backend (its kernels emulated on the host
        // here) re-runs disputes on a CPU runtime of its own.
        let gpu = match Device::cuda_emulated() {
            Ok(d) => d,
            // A build without the CUDA backend has no emulator either; one
            // with it must have it where the environment says so.
            Err(e @ assay_host_gpu::Error::Device(_))
                if std::env::var("ASSAY_REQUIRE_EMULATOR").is_ok_and(|v| v == "1") =>
            {
                panic!("the CUDA emulator is required: {e}")
            }
            Err(e) => {
                println!(
                    "SKIPPED a_disputes_re_run_is_on_the_cpu_even_for_a_gpu_provider (GPU part): {e}"
                );
                return;
            }
        };
        let mut p = provider(dir.path());
        p.runtime = Arc::new(
            Runtime::new(RuntimeOptions {
                cache_dir: None,
                device: gpu,
                key: NodeKey::from_seed([4; 32]),
            })
            .expect("runtime"),
        );
        assert_ne!(p.runtime.device().info().kind, "cpu");
        let cpu = p.data_runtime().expect("a CPU runtime");
        assert_eq!(cpu.device().info().kind, "cpu");
        assert!(
            Arc::ptr_eq(&cpu, &p.data_runtime().expect("again")),
            "made once"
        );
    }

    #[tokio::test]
    async fn on_a_calls_only_receipt_the_step_cheat_lies_in_the_data_trace_it_commits_to() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut p = provider(dir.path());
        p.cfg.cheat_step = true;
        let mut report = finished_run(p.key());
        report.trace.data = false;
        let honest = report.receipt.clone();
        assert!(p.cheat_step(&Hash32([5; 32]), &mut report).is_none());
        assert_eq!(
            report.receipt.body.trace_root, honest.body.trace_root,
            "calls stay honest"
        );
        assert_ne!(
            report.receipt.body.outputs_root, honest.body.outputs_root,
            "the result lies"
        );
        let mut steps = report.trace.steps.clone();
        p.commit(&mut steps);
        assert_eq!(steps[..2], report.trace.steps[..2]);
        assert_ne!(
            steps[2].output, report.trace.steps[2].output,
            "the data trace lies at the matmul"
        );
        // An honest provider commits to its re-run as it is.
        p.cfg.cheat_step = false;
        let mut same = report.trace.steps.clone();
        p.commit(&mut same);
        assert_eq!(same, report.trace.steps);
    }

    #[tokio::test]
    async fn the_step_cheat_states_the_corrupted_trace_it_defends() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = provider(dir.path());
        let mut report = finished_run(p.key());
        let honest = report.receipt.clone();
        let lie = p
            .cheat_step(&Hash32([5; 32]), &mut report)
            .expect("a step to lie about");
        assert_eq!(report.receipt.body.trace_root, lie.root());
        assert_ne!(lie.root(), honest.body.trace_root);
        // Step 2 (the matmul) is the lie; the steps before it are honest.
        assert_eq!(lie.tree().leaves()[..2], report.trace.leaves[..2]);
        assert_ne!(lie.tree().leaves()[2], report.trace.leaves[2]);
        // The result is wrong too, and the receipt is validly signed.
        assert_ne!(report.receipt.body.outputs_root, honest.body.outputs_root);
        report.receipt.verify().expect("re-signed");
        assert_eq!(p.metrics.cheats.get(), 1);
        // Nothing to lie about: the receipt stays honest.
        let mut uploads = finished_run(p.key());
        uploads.trace.steps.truncate(2);
        assert!(p.cheat_step(&Hash32([5; 32]), &mut uploads).is_none());
        assert_eq!(uploads.receipt, finished_run(p.key()).receipt);
    }

    #[tokio::test]
    async fn a_lease_without_a_spec_is_given_back_as_nobodys_fault() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = provider(dir.path());
        let lease = pb::Lease {
            inline_inputs: Vec::new(),
            lease_id: vec![1; 32],
            component_hash: vec![2; 32],
            spec: None,
            ..Default::default()
        };
        let why = p
            .prepare(Hash32([1; 32]), lease)
            .map(|_| ())
            .expect_err("no spec");
        assert!(!why.fault && why.reason.contains("bad spec"), "{why:?}");
    }

    #[tokio::test]
    async fn a_lease_over_the_providers_caps_or_memory_is_given_back_before_it_runs() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = provider(dir.path());
        let lease = |spec: assay_protocol::JobSpec| pb::Lease {
            lease_id: vec![1; 32],
            job_id: vec![3; 32],
            component_hash: vec![2; 32],
            spec: Some(pb::JobSpec::from(&spec)),
            ..Default::default()
        };
        let fits = assay_protocol::JobSpec {
            memory_bytes: 1 << 20,
            gpu_memory_bytes: 1 << 20,
            ..Default::default()
        };
        assert!(p.prepare(Hash32([1; 32]), lease(fits.clone())).is_ok());
        // A log of 1 TiB would grow this process until it is killed.
        for (over, field) in [
            (
                assay_protocol::JobSpec {
                    log_bytes: 1 << 40,
                    ..fits.clone()
                },
                "log_bytes",
            ),
            // More guest memory than the machine registered (1 GiB).
            (
                assay_protocol::JobSpec {
                    memory_bytes: 2 << 30,
                    ..fits.clone()
                },
                "memory_bytes",
            ),
            (
                assay_protocol::JobSpec {
                    gpu_memory_bytes: 2 << 30,
                    ..fits.clone()
                },
                "gpu_memory_bytes",
            ),
        ] {
            let why = p
                .prepare(Hash32([1; 32]), lease(over))
                .map(|_| ())
                .expect_err(field);
            assert!(!why.fault && why.reason.contains(field), "{why:?}");
        }
    }

    #[tokio::test]
    async fn a_component_that_does_not_load_is_given_back_without_a_receipt() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = provider(dir.path());
        let job = LeaseJob {
            id: Hash32([1; 32]),
            spec: JobSpec::default(),
        };
        let blobs = Fetched {
            component: Arc::from(&b"not a component"[..]),
            component_hash: Hash32::of(b"not a component"),
            inputs: BTreeMap::new(),
        };
        match p.run(job, blobs) {
            Conclusion::GiveBack(why) => {
                // The renter's bad component is not this machine's fault.
                assert!(!why.fault, "{why:?}");
                assert!(why.reason.contains("WebAssembly"), "{why:?}");
            }
            Conclusion::Report { outcome, .. } => panic!("a receipt ({outcome})"),
            Conclusion::Drop { reason } => panic!("dropped: {reason}"),
        }
        assert_eq!(p.metrics.fuel_used.get(), 0);
    }
}
