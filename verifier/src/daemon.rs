//! The verifier daemon (`assay verifier`): re-executes sampled receipts and
//! signs verdicts.
//!
//! 1. **Register** with the coordinator (`RegisterVerifier`), topping the
//!    stake up to [`Config::stake`] from the balance (on a devnet, after
//!    asking the faucet for [`Config::faucet`] µIO). If the coordinator
//!    forgets the verifier (a fresh database), it registers again.
//! 2. **Watch the beacon** (`GetBeacon`): remember each epoch's commitment
//!    as first published, so a coordinator that later swaps a commitment to
//!    fit a seed is caught.
//! 3. **Take checks** (`TakeChecks`) while slots are free, and for each:
//!    - confirm the sampling (role `verify`, reason `sampled`): the revealed
//!      seed hashes to the epoch's commitment (and to the one seen earlier),
//!      and `is_sampled(receipt id, seed, rate)`; if not, a warning and
//!      [`Metrics::sampling_unconfirmed`] (the check is still done: the
//!      verdict is about the receipt, not the coordinator);
//!    - check the receipt's signature, that its id is the check's, that it
//!      was computed under this verifier's `SEMANTICS_VERSION`, and that
//!      the component, inputs and spec to run are the receipt's job
//!      (`job_id`, `inputs_root`); otherwise the check is given back —
//!      nothing here is the provider's fault ([`examine`]);
//!    - fetch the component and inputs by hash (the blake3-checked blob
//!      cache), re-execute them with [`Runtime::run`] on a blocking
//!      thread — under the job's spec, except that the watchdog is
//!      [`Config::watchdog_scale`] times the job's and never runs past the
//!      check's deadline ([`reexecution_spec`]; a check already past its
//!      deadline has gone to another verifier and is dropped) — and compare
//!      outputs root, outcome, fuel and work with the receipt
//!      ([`crate::verdict`]);
//!    - submit the signed verdict (`SubmitVerdict`), stating the root of
//!      its re-execution's trace, and log its decision.
//!
//!    A re-execution that ends in a fault of this machine
//!    ([`assay_runtime::Error::ProviderFault`]: its watchdog, its device) is
//!    never a mismatch: the check is given back (`ReturnCheck`) with the
//!    reason, and goes to another verifier.
//! 4. **Defend its disagreements**: the trace of each check it disagreed
//!    on is kept (by check id, in memory, bounded:
//!    `assay_daemon::dispute::TraceStore`), and the coordinator's questions
//!    about it are answered (`TakeQuestions`/`Answer`: claim, node and
//!    leaf reveals, and the disputed step's input tensors, regained by
//!    re-executing again); a trace it no longer holds is answered `unable`.
//! 5. **Arbitrate one step** (an arbiter's referee check with `step` set):
//!    fetch only the revealed input tensors, check them against the
//!    parties' trace roots, replay the one call on a CPU device and state
//!    its output ([`crate::step`]); evidence that does not check or a step
//!    that cannot be replayed hands the check back for a full
//!    re-execution.
//! 6. **Survive** outages: calls retry with exponential backoff (up to 5 s).
//! 7. **Shut down gracefully**: on the shutdown signal it takes no new
//!    checks, lets running ones finish for up to the drain timeout, then
//!    gives back the rest.
//!
//! # Test-only knob
//!
//! [`Config::lie_rate`] (`assay verifier --lie-rate F`, a hidden flag) makes
//! the verifier lie on a fraction `F` of its checks: it reports its real
//! result with the first byte of the outputs root flipped and
//! `agrees = false`, even when its run matched. The checks are chosen from
//! `blake3("assay/test/lie/v1" ‖ check id)` (`F = 1`: every check), so a
//! test is reproducible. It exists so that end-to-end tests can show a lying
//! verifier is overruled by the referee and slashed; never set it on a real
//! verifier.
//!
//! [`Config::lie_step`] (`assay verifier --lie-step`, hidden) lies on every
//! first check in a way only bisection pins down: after an honest
//! re-execution it corrupts one step in the middle of its own trace
//! (`assay_daemon::dispute::corrupt_middle_step`), keeps and defends that
//! trace, and submits a disagreeing verdict with a corrupted outputs root
//! and the corrupted trace's root.

//!
//! Registering, taking, fetching, retrying, draining and giving back are
//! the worker loop shared with the provider (`assay_daemon::Worker`); this
//! module is the verifier's `Work` (which RPCs, what a check concludes),
//! over the decisions in [`crate::check`].

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use assay_daemon::dispute::{self, KeptTrace, Party, TraceStore};
use assay_daemon::worker::{Context, Fetched};
use assay_daemon::{Conclusion, GiveBack, Registered, Settings, Work, Worker};
use assay_host_gpu::Device;
use assay_proto::pb::renter_client::RenterClient;
use assay_proto::pb::verifier_client::VerifierClient;
use assay_proto::{client, convert, now_ms, pb};
use assay_protocol::Hash32;
use assay_runtime::{RunReport, Runtime, TraceOptions};
use prometheus_client::registry::Registry;
use tonic::transport::Channel;

use crate::Error;
// The decisions, re-exported where they were before they had a module.
pub use crate::check::{
    Decision, Prepared, Unfit, decide, examine, lies_on, reexecution_spec, sampling_problem,
    watchdog_spec,
};
use crate::metrics::Metrics;
use crate::step::{FULL_REEXECUTION, GuestStep, StepCheck};
use crate::verdict::Observed;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The coordinator's URL.
    pub coordinator: String,
    /// Stake to hold, µIO (topped up from the IO balance at registration).
    pub stake: u64,
    /// Checks worked on at once.
    pub slots: u32,
    /// Where the blob cache lives.
    pub state_dir: PathBuf,
    /// How often to ask for checks when idle.
    pub poll_interval: Duration,
    /// Where to serve Prometheus metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// How long running checks may finish after the shutdown signal.
    pub drain_timeout: Duration,
    /// Largest blob to download.
    pub max_blob_bytes: u64,
    /// Devnet: ask the faucet for this many µIO at start (0: don't).
    pub faucet: u64,
    /// The watchdog of a re-execution is the job's `wall_clock_ms` times
    /// this (at least 1), cut to the time left before the check's deadline.
    /// The watchdog is not part of a job's identity or result, and a
    /// verifier on a CPU may be several times slower than the GPU that ran
    /// the job.
    pub watchdog_scale: u32,
    /// Test only: lie on this fraction of checks (see the module docs).
    pub lie_rate: f64,
    /// Test only: agree with every receipt without re-executing it (a
    /// provider's accomplice; the arbiter's re-checks catch it).
    pub rubber_stamp: bool,
    /// Test only: on every first check, lie about one step of the trace
    /// and disagree (see the module docs).
    pub lie_step: bool,
    /// Test only: as [`Config::lie_step`], but the lie is about the guest's
    /// call at that step (its parameters), not its output: the arbiter
    /// re-runs the guest up to there.
    pub lie_call: bool,
}

impl Config {
    /// A configuration with the CLI's defaults for everything but the
    /// coordinator and the state directory.
    ///
    /// # Example
    ///
    /// ```
    /// let cfg = assay_verifier::Config::new("http://127.0.0.1:7700", "/tmp/v".into());
    /// assert_eq!(cfg.lie_rate, 0.0);
    /// ```
    pub fn new(coordinator: &str, state_dir: PathBuf) -> Config {
        Config {
            coordinator: coordinator.to_string(),
            stake: 0,
            slots: 1,
            state_dir,
            poll_interval: Duration::from_millis(500),
            metrics_listen: None,
            drain_timeout: Duration::from_secs(30),
            max_blob_bytes: 1 << 30,
            faucet: 0,
            watchdog_scale: 4,
            lie_rate: 0.0,
            rubber_stamp: false,
            lie_step: false,
            lie_call: false,
        }
    }
}

/// Where a node keeps its verifier state under its home directory.
pub fn state_dir(home: &Path) -> PathBuf {
    home.join("verifier")
}

/// Beacon commitments remembered (older epochs are forgotten).
const BEACONS_KEPT: usize = 10_000;

/// The verifier's part of the worker loop.
struct Verifier {
    cfg: Config,
    runtime: Arc<Runtime>,
    channel: Channel,
    metrics: Metrics,
    /// Epoch → the commitment first seen published for it.
    beacons: Mutex<BTreeMap<u64, Hash32>>,
    /// The traces of checks this verifier disagreed on, by check id, to
    /// answer disputes.
    traces: TraceStore,
    /// The CPU device disputed steps are replayed on, when the runtime's
    /// device is not one (made on first use).
    cpu: OnceLock<Device>,
    /// A CPU runtime for the traces of a GPU verifier's disagreements and
    /// their disputes' re-runs (made on first use).
    cpu_runtime: OnceLock<Arc<Runtime>>,
    /// The node key (the runtime's), bound to the coordinator.
    signer: assay_proto::auth::Signer,
}

/// Whose the arbiter's result at a disputed step is, of the provider's and
/// the verifier's: whether the provider's (the verdict agrees with the
/// receipt), and in words.
fn whose(result: &Hash32, parties: &[Hash32; 2]) -> (bool, &'static str) {
    match assay_protocol::trace::rule(parties, result) {
        assay_protocol::trace::Ruling::Upheld(assay_protocol::trace::Side::A) => {
            (true, "the provider's")
        }
        assay_protocol::trace::Ruling::Upheld(assay_protocol::trace::Side::B) => {
            (false, "the verifier's")
        }
        assay_protocol::trace::Ruling::BothWrong => (false, "neither party's"),
    }
}

/// An arbiter's verdict on one step: `output`, what it computed there (the
/// receipt's own result is restated; the coordinator decides on `output`).
fn step_verdict(
    p: Prepared,
    agrees: bool,
    comparison: String,
    output: Hash32,
) -> Conclusion<Verdict> {
    Conclusion::Report {
        outcome: if agrees { "agree" } else { "mismatch" }.into(),
        report: Verdict {
            said: Observed::claimed_by(&p.receipt.body),
            check: p,
            agrees,
            comparison,
            trace_root: None,
            step_output: Some(output),
        },
    }
}

/// A check ready to run: a re-execution, or (an arbiter's) one step.
struct CheckJob {
    check: Prepared,
    step: Option<Disputed>,
}

/// An arbiter's referee check of a bisected dispute.
enum Disputed {
    /// Recompute one op from its revealed inputs.
    Op(StepCheck),
    /// Re-run the guest up to the step where the calls differ.
    Guest(GuestStep),
}

/// A verdict to submit.
struct Verdict {
    check: Prepared,
    said: Observed,
    agrees: bool,
    comparison: String,
    /// The root of the re-execution's trace (unset: not re-executed).
    trace_root: Option<Hash32>,
    /// A step check's recomputed output.
    step_output: Option<Hash32>,
}

impl Verifier {
    fn client(&self) -> VerifierClient<Channel> {
        VerifierClient::new(self.channel.clone())
            .max_decoding_message_size(client::MAX_MESSAGE_BYTES)
    }

    /// Records beacon commitments as they are published.
    async fn watch_beacon(self: Arc<Self>, epoch_ms: u64, ctx: Context) {
        // The coordinator publishes each commitment a whole epoch before
        // its epoch starts, and reveals the seed when it ends: one look per
        // epoch sees every commitment before its seed is out.
        let every = Duration::from_millis(epoch_ms.clamp(250, 30_000));
        // Epochs are numbered by Unix time / epoch length; start just before
        // now (every later poll starts from the epoch current at the last).
        let mut from = (now_ms() / epoch_ms.max(1)).saturating_sub(1);
        let mut warned = false;
        while !ctx.shutdown.started() {
            let r = self
                .client()
                .get_beacon(pb::GetBeaconRequest { from_epoch: from })
                .await;
            match r {
                Ok(resp) => {
                    let resp = resp.into_inner();
                    self.remember(&resp.epochs);
                    // The current epoch's commitment may appear later.
                    from = resp.current_epoch.saturating_sub(1);
                }
                Err(s) if s.code() == tonic::Code::Unimplemented => return,
                Err(s) => {
                    ctx.metrics.rpc_errors.inc();
                    if !warned {
                        warned = true;
                        tracing::warn!(error = %s.message(), "cannot read the beacon (will keep trying)");
                    }
                }
            }
            ctx.shutdown.sleep(every).await;
        }
    }

    /// Remembers the commitments of epochs whose seed is not out yet.
    fn remember(&self, epochs: &[pb::EpochBeacon]) {
        let Ok(mut seen) = self.beacons.lock() else {
            return;
        };
        for b in epochs {
            // Only a commitment seen before its seed is out tells anything
            // about the seed.
            if !b.seed.is_empty() {
                continue;
            }
            let Ok(c) = convert::hash("beacon.commitment", &b.commitment) else {
                continue;
            };
            match seen.get(&b.epoch) {
                Some(old) if *old != c => {
                    self.metrics.sampling_unconfirmed.inc();
                    tracing::warn!(epoch = b.epoch, was = %old.short(), now = %c.short(), "the coordinator changed an epoch's commitment");
                }
                Some(_) => {}
                None => {
                    self.metrics.commitments_seen.inc();
                    seen.insert(b.epoch, c);
                }
            }
        }
        while seen.len() > BEACONS_KEPT {
            seen.pop_first();
        }
    }
}

impl Verifier {
    /// A re-execution's trace, taken out of its report (`None`: not
    /// recorded).
    fn trace_of(&self, report: &mut RunReport) -> Option<KeptTrace> {
        // Only a trace of outputs can settle a dispute: a GPU's, which
        // hashes none, is not stated (the dispute is re-executed in full).
        if !report.trace.recorded || !report.trace.data {
            return None;
        }
        let steps = std::mem::take(&mut report.trace.steps);
        let leaves = std::mem::take(&mut report.trace.leaves);
        Some(KeptTrace::with_leaves(steps, leaves))
    }

    /// The `--lie-step` lie: the honest trace with one step corrupted
    /// (`None`: nothing to lie about, the verdict stays honest).
    fn lie_step(&self, check: &Hash32, honest: Option<&KeptTrace>) -> Option<KeptTrace> {
        let mut steps = honest?.steps().to_vec();
        let lied = if self.cfg.lie_call {
            dispute::corrupt_middle_call(&mut steps)
        } else {
            dispute::corrupt_middle_step(&mut steps)
        };
        match lied {
            Some(step) => {
                tracing::warn!(check = %check.short(), step, "test knob: lying about one step of this trace");
                Some(KeptTrace::new(steps))
            }
            None => {
                tracing::warn!(check = %check.short(), "test knob: no transform step to lie about; this verdict is honest");
                None
            }
        }
    }

    /// Where disputed steps are replayed: the runtime's device if it is a
    /// CPU (outputs hashed in place), else a CPU device of its own.
    fn replay_device(&self) -> Device {
        let device = self.runtime.device();
        if device.info().kind == "cpu" {
            return device.clone();
        }
        self.cpu.get_or_init(Device::cpu).clone()
    }

    /// An arbiter's check of a dispute about the guest's calls: re-run the
    /// job up to the step and state the digest of the call it made there.
    fn run_guest_step(&self, p: Prepared, step: &GuestStep, blobs: Fetched) -> Conclusion<Verdict> {
        let Some(spec) = reexecution_spec(&p, self.cfg.watchdog_scale, now_ms()) else {
            return Conclusion::Drop {
                reason: "the check's deadline passed before it could run".into(),
            };
        };
        let options = TraceOptions {
            stop_after: Some(step.index),
            // Only the calls matter here.
            hashing: assay_runtime::Hashing::CallsOnly,
            ..TraceOptions::default()
        };
        let started = std::time::Instant::now();
        let loaded = self
            .runtime
            .load_hashed(blobs.component_hash, &blobs.component);
        let run = loaded.and_then(|loaded| {
            self.runtime
                .run_with(&loaded, Arc::new(blobs.inputs), &spec, &options)
        });
        let report = match run {
            Ok(r) => r,
            Err(e) => {
                self.metrics.step_fallbacks.inc();
                return Conclusion::GiveBack(GiveBack::new(format!(
                    "{FULL_REEXECUTION}the guest could not be re-run up to step {}: {e}",
                    step.index
                )));
            }
        };
        let made = step.made(&report);
        let run_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.metrics.step_replays.inc();
        self.metrics.step_replay_ms.inc_by(run_ms);
        let (agrees, sides) = whose(&made, &step.outputs);
        tracing::info!(
            check = %p.id.short(),
            dispute = %step.dispute.short(),
            step = step.index,
            run_ms,
            steps_run = report.trace.steps.len(),
            "re-ran the guest up to the disputed step: it made {sides} call"
        );
        step_verdict(
            p,
            agrees,
            format!("the guest's call at step {} is {sides}", step.index),
            made,
        )
    }

    /// An arbiter's step check: recompute the disputed step and state its
    /// output, or hand the check back for a full re-execution.
    fn run_step(&self, p: Prepared, step: &StepCheck, blobs: &Fetched) -> Conclusion<Verdict> {
        if p.deadline_ms > 0 && now_ms() >= p.deadline_ms {
            return Conclusion::Drop {
                reason: "the check's deadline passed before it could run".into(),
            };
        }
        let recomputed = match step.recompute(&self.replay_device(), &blobs.inputs, &p.inputs) {
            Ok(r) => r,
            Err(why) => {
                self.metrics.step_fallbacks.inc();
                tracing::warn!(check = %p.id.short(), step = step.index, call = %step.call.name, %why, "cannot decide the disputed step alone");
                return Conclusion::GiveBack(GiveBack::new(format!("{FULL_REEXECUTION}{why}")));
            }
        };
        self.metrics.step_replays.inc();
        self.metrics.step_replay_ms.inc_by(recomputed.replay_ms);
        self.metrics
            .evidence_bytes
            .inc_by(recomputed.evidence_bytes);
        let (agrees, sides) = whose(
            &recomputed.output,
            &[step.provider_output, step.verifier_output],
        );
        tracing::info!(
            check = %p.id.short(),
            dispute = %step.dispute.short(),
            step = step.index,
            call = %step.call.name,
            replay_ms = recomputed.replay_ms,
            evidence_bytes = recomputed.evidence_bytes,
            output = %recomputed.output.short(),
            "recomputed the disputed step: {sides} output"
        );
        step_verdict(
            p,
            agrees,
            format!(
                "step {} ({}) recomputed: {sides} output",
                step.index, step.call.name
            ),
            recomputed.output,
        )
    }
}

impl Work for Verifier {
    type Item = pb::Check;
    type Job = CheckJob;
    type Registration = pb::RegisterVerifierResponse;
    type Report = Verdict;

    const NAMES: assay_daemon::metrics::Names = assay_daemon::metrics::Names {
        prefix: "assay_verifier",
        taken: "checks_taken",
        returned: "checks_returned",
        running: "running_checks",
        run_ms: "reexecution_ms",
        faults: "local_faults",
    };
    const ROLE: &'static str = "verifier";
    const ITEM: &'static str = "check";
    const REPORT_ATTEMPTS: u32 = 20;

    fn device(&self) -> (String, String) {
        let info = self.runtime.device().info();
        (info.kind, info.device)
    }

    fn register_metrics(&self, registry: &mut Registry) {
        self.metrics.register(
            registry,
            self.cfg.lie_rate > 0.0
                || self.cfg.rubber_stamp
                || self.cfg.lie_step
                || self.cfg.lie_call,
        );
    }

    async fn faucet(&self, amount: u64) -> Result<u64, assay_daemon::Error> {
        let mut req = pb::FaucetRequest {
            auth: None,
            amount,
            unit: "io".into(),
        };
        assay_daemon::sign(&self.signer, &mut req)?;
        Ok(RenterClient::new(self.channel.clone())
            .faucet(req)
            .await?
            .into_inner()
            .io_balance)
    }

    async fn register(
        &self,
    ) -> Result<Registered<pb::RegisterVerifierResponse>, assay_daemon::Error> {
        let mut req = pb::RegisterVerifierRequest {
            auth: None,
            stake: self.cfg.stake,
            version: env!("CARGO_PKG_VERSION").to_string(),
            backend: self.runtime.device().info().kind,
        };
        assay_daemon::sign(&self.signer, &mut req)?;
        let answer = self.client().register_verifier(req).await?.into_inner();
        tracing::info!(
            verifier = %self.signer.id(),
            stake = answer.stake,
            check_ttl_ms = answer.check_ttl_ms,
            epoch_ms = answer.epoch_ms,
            "registered as a verifier"
        );
        Ok(Registered {
            answer,
            stale: Vec::new(),
        })
    }

    fn started(
        self: Arc<Self>,
        reg: &pb::RegisterVerifierResponse,
        ctx: &Context,
    ) -> Option<Duration> {
        let every = self.cfg.poll_interval;
        tokio::spawn(dispute::answer_questions(self.clone(), every, ctx.clone()));
        tokio::spawn(self.watch_beacon(reg.epoch_ms, ctx.clone()));
        // Verifiers do not heartbeat: a check's deadline is its lease.
        None
    }

    async fn heartbeat(&self, _free_slots: u32) -> Result<bool, assay_daemon::Error> {
        Ok(true)
    }

    async fn take(&self, max: u32) -> Result<Vec<pb::Check>, assay_daemon::Error> {
        let mut req = pb::TakeChecksRequest { auth: None, max };
        assay_daemon::sign(&self.signer, &mut req)?;
        Ok(self.client().take_checks(req).await?.into_inner().checks)
    }

    fn id(&self, check: &pb::Check) -> Option<Hash32> {
        convert::hash("check_id", &check.check_id).ok()
    }

    /// [`examine`]s a check, counting and logging what it finds.
    fn prepare(
        &self,
        id: Hash32,
        check: pb::Check,
    ) -> Result<assay_daemon::Prepared<CheckJob>, GiveBack> {
        let examined = examine(&check, id, |epoch| {
            self.beacons
                .lock()
                .ok()
                .and_then(|m| m.get(&epoch).copied())
        });
        let (p, problem) = match examined {
            Ok(e) => e,
            Err(unfit) => {
                match unfit {
                    Unfit::Inconsistent(_) => self.metrics.bad_receipts.inc(),
                    Unfit::OtherSemantics { .. } => self.metrics.other_semantics.inc(),
                };
                return Err(GiveBack::new(unfit.to_string()));
            }
        };
        if let Some(problem) = problem {
            self.metrics.sampling_unconfirmed.inc();
            tracing::warn!(
                check = %id.short(),
                receipt = %p.receipt_id.short(),
                problem,
                "cannot confirm that this receipt was sampled; checking it anyway"
            );
        }
        // The checked receipt's market job: the verifier reads its blobs
        // through it.
        let through = check
            .record
            .as_ref()
            .and_then(|r| convert::hash("record.job_id", &r.job_id).ok());
        if let Some(disputed) = &check.step {
            let full = |why: String| {
                self.metrics.step_fallbacks.inc();
                tracing::warn!(check = %id.short(), %why, "cannot recompute the disputed step alone");
                GiveBack::new(format!("{FULL_REEXECUTION}{why}"))
            };
            if disputed.kind == "call" {
                let step = GuestStep::parse(disputed).map_err(full)?;
                return Ok(assay_daemon::Prepared {
                    component: Some(p.component),
                    inputs: p.inputs.clone(),
                    carried: Vec::new(),
                    through,
                    job: CheckJob {
                        check: p,
                        step: Some(Disputed::Guest(step)),
                    },
                });
            }
            let step = StepCheck::parse(disputed).map_err(full)?;
            // The provider's root is the data trace it committed to in the
            // game (its receipt may state a calls-only trace): the
            // coordinator checked its claim against it.
            return Ok(assay_daemon::Prepared {
                component: None,
                inputs: step.blobs(&p.inputs),
                carried: Vec::new(),
                through,
                job: CheckJob {
                    check: p,
                    step: Some(Disputed::Op(step)),
                },
            });
        }
        Ok(assay_daemon::Prepared {
            component: Some(p.component),
            inputs: p.inputs.clone(),
            carried: Vec::new(),
            through,
            job: CheckJob {
                check: p,
                step: None,
            },
        })
    }

    fn run(&self, job: CheckJob, blobs: Fetched) -> Conclusion<Verdict> {
        let p = job.check;
        match job.step {
            Some(Disputed::Op(step)) => return self.run_step(p, &step, &blobs),
            Some(Disputed::Guest(step)) => return self.run_guest_step(p, &step, blobs),
            None => {}
        }
        if self.cfg.rubber_stamp {
            self.metrics.lies.inc();
            tracing::warn!(check = %p.id.short(), "test knob: agreeing without re-executing");
            return Conclusion::Report {
                outcome: "lie".into(),
                report: Verdict {
                    said: Observed::claimed_by(&p.receipt.body),
                    check: p,
                    agrees: true,
                    comparison: "not re-executed (rubber stamp)".into(),
                    trace_root: None,
                    step_output: None,
                },
            };
        }
        let Some(spec) = reexecution_spec(&p, self.cfg.watchdog_scale, now_ms()) else {
            // The check has gone to another verifier: running it is waste.
            return Conclusion::Drop {
                reason: "the check's deadline passed before it could run".into(),
            };
        };
        let inputs = Arc::new(blobs.inputs);
        let run = self
            .runtime
            .load_hashed(blobs.component_hash, &blobs.component)
            .and_then(|loaded| self.runtime.run(&loaded, inputs.clone(), &spec));
        if let Ok(r) = &run {
            self.metrics.fuel_used.inc_by(r.receipt.body.fuel_used);
        }
        match decide(&run, &p.receipt, lies_on(self.cfg.lie_rate, &p.id)) {
            Decision::GiveBack {
                reason,
                local_fault,
            } => Conclusion::GiveBack(GiveBack {
                reason,
                fault: local_fault,
            }),
            Decision::Verdict {
                mut said,
                mut agrees,
                comparison,
                mut lie,
            } => {
                let Ok(mut report) = run else {
                    // `decide` gives a verdict only for a run with a result.
                    return Conclusion::GiveBack(GiveBack::fault(
                        "the re-execution left no report",
                    ));
                };
                let mut trace = self.trace_of(&mut report);
                if trace.is_none() && !agrees && report.trace.recorded {
                    // A GPU re-execution hashes no outputs: a disagreement
                    // states the trace of the same run on the CPU (the same
                    // bits by definition), so its dispute can be bisected.
                    trace = self.cpu_trace(&p.id, &blobs.component, inputs, &spec, &report);
                }
                if (self.cfg.lie_step || self.cfg.lie_call)
                    && p.role == "verify"
                    && let Some(lying) = self.lie_step(&p.id, trace.as_ref())
                {
                    said = Observed::claimed_by(&report.receipt.body).corrupted();
                    agrees = false;
                    lie = true;
                    trace = Some(lying);
                }
                let trace_root = trace.as_ref().map(KeptTrace::root);
                if !agrees
                    && let Some(t) = trace
                    && !self.traces.keep(p.id, t)
                {
                    tracing::warn!(check = %p.id.short(), "this re-execution's trace is too large to keep: a dispute about it is re-executed in full");
                }
                if lie {
                    self.metrics.lies.inc();
                    tracing::warn!(check = %p.id.short(), really = %comparison, "test knob: this verdict lies");
                }
                let outcome = match (lie, agrees) {
                    (true, _) => "lie",
                    (false, true) => "agree",
                    (false, false) => "mismatch",
                };
                Conclusion::Report {
                    outcome: outcome.into(),
                    report: Verdict {
                        check: p,
                        said,
                        agrees,
                        comparison: comparison.to_string(),
                        trace_root,
                        step_output: None,
                    },
                }
            }
        }
    }

    async fn report(&self, v: &Verdict) -> Result<(), assay_daemon::Error> {
        let (p, said) = (&v.check, &v.said);
        let mut req = pb::SubmitVerdictRequest {
            auth: None,
            check_id: p.id.0.to_vec(),
            receipt_id: p.receipt_id.0.to_vec(),
            outputs_root: said.outputs_root.0.to_vec(),
            outcome: pb::Outcome::from(said.outcome) as i32,
            fuel_used: said.fuel_used,
            work: Some(pb::WorkDone {
                flops: said.work.flops,
                bytes: said.work.bytes,
            }),
            agrees: v.agrees,
            trace_root: v.trace_root.map(|h| h.0.to_vec()).unwrap_or_default(),
            step_output: v.step_output.map(|h| h.0.to_vec()).unwrap_or_default(),
        };
        assay_daemon::sign(&self.signer, &mut req)?;
        let decision = self
            .client()
            .submit_verdict(req)
            .await?
            .into_inner()
            .decision;
        if v.agrees {
            self.metrics.verdicts_agree.inc();
        } else {
            self.metrics.verdicts_mismatch.inc();
        }
        self.metrics.decided(&decision);
        let provider = p.receipt.body.provider_id.to_hex();
        let provider = provider.get(..12).unwrap_or(&provider);
        if v.agrees {
            tracing::info!(receipt = %p.receipt_id.short(), provider, role = %p.role, agrees = v.agrees, decision = %decision, "verdict");
        } else {
            tracing::warn!(receipt = %p.receipt_id.short(), provider, role = %p.role, agrees = v.agrees, comparison = %v.comparison, decision = %decision, "verdict");
        }
        Ok(())
    }

    fn report_failed(&self, v: &Verdict, error: &assay_daemon::Error) {
        self.metrics.verdicts_refused.inc();
        // A verdict that was not recorded is never disputed.
        self.traces.forget(&v.check.id);
        tracing::warn!(check = %v.check.id.short(), receipt = %v.check.receipt_id.short(), %error, "verdict refused");
    }

    async fn give_back(&self, id: &Hash32, why: &GiveBack) -> Result<(), assay_daemon::Error> {
        let mut req = pb::ReturnCheckRequest {
            auth: None,
            check_id: id.0.to_vec(),
            reason: why.reason.clone(),
        };
        assay_daemon::sign(&self.signer, &mut req)?;
        self.client().return_check(req).await?;
        Ok(())
    }
}

impl Verifier {
    /// This verifier's runtime if it is on the CPU, else a CPU runtime
    /// made once (its runs' receipts are never sent).
    fn data_runtime(&self) -> Result<Arc<Runtime>, String> {
        assay_runtime::data_runtime(&self.runtime, &self.cpu_runtime).map_err(|e| e.to_string())
    }

    /// The data trace of `report`'s run, made again on the CPU; `None` (the
    /// dispute is then re-executed in full) if that fails or, which would
    /// be a fault of this machine, gives another result.
    fn cpu_trace(
        &self,
        check: &Hash32,
        component: &[u8],
        inputs: Arc<assay_runtime::Inputs>,
        spec: &assay_protocol::JobSpec,
        report: &RunReport,
    ) -> Option<KeptTrace> {
        let runtime = self
            .data_runtime()
            .inspect_err(|e| tracing::warn!(check = %check.short(), error = %e, "no CPU runtime for the disagreement's trace"))
            .ok()?;
        let mut cpu = runtime
            .load(component)
            .and_then(|loaded| runtime.run(&loaded, inputs, spec))
            .inspect_err(|e| tracing::warn!(check = %check.short(), error = %e, "the CPU run for the disagreement's trace failed"))
            .ok()?;
        let (a, b) = (&cpu.receipt.body, &report.receipt.body);
        if (a.outputs_root, a.outcome, a.fuel_used, a.work)
            != (b.outputs_root, b.outcome, b.fuel_used, b.work)
        {
            tracing::error!(check = %check.short(), "this GPU and the CPU give different results for the same run: a fault of this machine");
            return None;
        }
        self.trace_of(&mut cpu)
    }
}

impl Party for Verifier {
    const ROLE: &'static str = "verifier";

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
        q.check
    }

    /// The re-execution again, under the same watchdog rule, due by the
    /// question's deadline.
    fn rerun(
        &self,
        rerun: &dispute::Rerun,
        deadline_ms: u64,
        keep: BTreeSet<u64>,
        blobs: Fetched,
    ) -> Result<dispute::RerunTrace, String> {
        let spec = watchdog_spec(&rerun.spec, self.cfg.watchdog_scale, deadline_ms, now_ms())
            .ok_or("the question's deadline has passed")?;
        let options = TraceOptions {
            keep,
            ..TraceOptions::default()
        };
        let runtime = self.data_runtime()?;
        let report = runtime
            .load_hashed(blobs.component_hash, &blobs.component)
            .and_then(|loaded| runtime.run_with(&loaded, Arc::new(blobs.inputs), &spec, &options))
            .map_err(|e| e.to_string())?;
        Ok(dispute::RerunTrace {
            data: report.trace.data,
            steps: report.trace.steps,
            kept: report.trace.kept,
        })
    }
}

/// Runs the verifier until `shutdown` resolves, then drains. Verdicts are
/// signed with `runtime`'s node key and jobs re-executed on its device.
///
/// # Errors
///
/// [`Error::Io`] if the state directory cannot be created;
/// [`Error::Proto`] for a bad coordinator URL; [`Error::Unsupported`] if
/// the coordinator does not serve verification; [`Error::Daemon`] if the
/// metrics address cannot be bound or a request cannot be signed.
///
/// # Example
///
/// ```no_run
/// use std::sync::Arc;
/// use assay_host_gpu::Device;
/// use assay_protocol::NodeKey;
/// use assay_runtime::{Runtime, RuntimeOptions};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = Arc::new(Runtime::new(RuntimeOptions {
///     cache_dir: None,
///     device: Device::cpu(),
///     key: NodeKey::generate()?,
/// })?);
/// let mut cfg = assay_verifier::Config::new("http://127.0.0.1:7700", "/tmp/verifier".into());
/// cfg.stake = 50_000_000;
/// cfg.faucet = 100_000_000;
/// assay_verifier::run(cfg, runtime, async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await?;
/// # Ok(())
/// # }
/// ```
pub async fn run(
    cfg: Config,
    runtime: Arc<Runtime>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    std::fs::create_dir_all(&cfg.state_dir).map_err(|e| Error::io(&cfg.state_dir, e))?;
    let channel = client::channel(&cfg.coordinator)?;
    if cfg.rubber_stamp {
        tracing::warn!(
            "TEST KNOB: this verifier agrees with every receipt without re-executing it and will be slashed when re-checked"
        );
    }
    if cfg.lie_call {
        tracing::warn!(
            "TEST KNOB: this verifier lies about one call of its trace on every check and will be slashed"
        );
    }
    if cfg.lie_step {
        tracing::warn!(
            "TEST KNOB: this verifier lies about one step of its trace on every check and will be slashed"
        );
    }
    if cfg.lie_rate > 0.0 {
        tracing::warn!(
            rate = cfg.lie_rate,
            "TEST KNOB: this verifier lies on a fraction of its checks and will be slashed"
        );
    }
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
    let verifier = Verifier {
        cfg,
        runtime,
        channel: channel.clone(),
        metrics: Metrics::default(),
        beacons: Mutex::new(BTreeMap::new()),
        traces: TraceStore::default(),
        cpu: OnceLock::new(),
        cpu_runtime: OnceLock::new(),
        signer,
    };
    match Worker::new(verifier, settings, blob_source)
        .run(shutdown)
        .await
    {
        Ok(()) => Ok(()),
        Err(assay_daemon::Error::Unsupported { url, reason, .. }) => {
            Err(Error::Unsupported { url, reason })
        }
        Err(e) => Err(e.into()),
    }
}
