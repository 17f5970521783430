//! The market's records: what the store takes and returns (jobs, leases,
//! receipts, checks, verdicts, accounts). Plain data with no SQL and no
//! wire format; [`crate::store`] reads and writes them, [`crate::rules`]
//! decides over them, [`crate::service`] turns them into protobuf.

use assay_protocol::{BlobRef, Hash32, JobSpec, NodeId, Receipt};
use serde::{Deserialize, Serialize};

use crate::state::{
    CheckReason, CheckRole, CheckState, HardwareState, JobState, LeaseState, ShardState,
};

/// A node's accounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable IOSD, µIOSD.
    pub balance: u64,
    /// Stake, µIO.
    pub stake: u64,
    /// Provider earnings for verified work, µIOSD.
    pub earnings: u64,
    /// Verifier earnings, µIOSD.
    pub verifier_earnings: u64,
    /// Spendable IO, µIO.
    pub io_balance: u64,
    /// Unstaked IO in its cooldown, µIO.
    pub unbonding: u64,
    /// When the unbonding IO becomes spendable (Unix ms).
    pub unbonding_release_ms: Option<u64>,
    /// Block rewards, µIO.
    pub rewards: u64,
    /// As a provider: the stake below which it is not hired, µIO.
    pub stake_floor: u64,
}

/// A job to accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The market job id.
    pub id: Hash32,
    /// Who pays.
    pub renter: NodeId,
    /// blake3 of the component.
    pub component_hash: Hash32,
    /// Its size.
    pub component_size: u64,
    /// The inputs.
    pub inputs: Vec<BlobRef>,
    /// `inputs_root` of the inputs.
    pub inputs_root: Hash32,
    /// The spec (its shard field is ignored).
    pub spec: JobSpec,
    /// Number of shards (≥ 1).
    pub shards: u32,
    /// µIOSD per million work units.
    pub max_price: u64,
    /// Only GPU providers.
    pub require_gpu: bool,
    /// Each shard's own inputs when some were split by line (one list per
    /// shard, in shard order); empty: every shard gets `inputs`.
    pub shard_inputs: Vec<Vec<BlobRef>>,
    /// Probability that each receipt is re-executed by a verifier, parts
    /// per million (0: unverified, no guarantee and no verifier fee).
    pub verify_rate_ppm: u32,
    /// What the renter pays with: IOSD from its balance, or IO burned
    /// into IOSD at the oracle price in the same transaction.
    pub pay_in: crate::ledger::Unit,
}

/// What accepting a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// µIOSD moved from the renter's balance into escrow.
    pub escrow: u64,
    /// µIO burned to pay for it (jobs paid in IO).
    pub io_burned: u64,
    /// `assay_protocol::job_id` of each shard.
    pub shard_job_ids: Vec<Hash32>,
}

/// A provider's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// Its node id.
    pub id: NodeId,
    /// µIOSD per million work units.
    pub price: u64,
    /// CPU cores.
    pub cpu_cores: u32,
    /// RAM bytes.
    pub memory_bytes: u64,
    /// GPUs: (name, memory bytes).
    pub gpus: Vec<(String, u64)>,
    /// Jobs at once.
    pub slots: u32,
    /// Its software version.
    pub version: String,
}

/// What registering returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The stake now held.
    pub stake: u64,
    /// Leases the store thinks it holds.
    pub active_leases: Vec<Hash32>,
    /// Reliability, per mille.
    pub reliability_permille: u64,
}

/// A lease handed to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease id.
    pub lease_id: Hash32,
    /// The market job.
    pub job_id: Hash32,
    /// `assay_protocol::job_id` of this shard.
    pub shard_job_id: Hash32,
    /// The component.
    pub component_hash: Hash32,
    /// Its size.
    pub component_size: u64,
    /// The inputs.
    pub inputs: Vec<BlobRef>,
    /// The spec with this shard's index/count.
    pub spec: JobSpec,
    /// When it expires unless renewed.
    pub expires_at_ms: u64,
    /// The price the provider is paid at.
    pub price: u64,
}

/// A lease and what a receipt for it must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The lease.
    pub lease: Lease,
    /// Who holds (or held) it.
    pub provider: NodeId,
    /// Its state.
    pub state: LeaseState,
    /// The inputs root of the job.
    pub inputs_root: Hash32,
}

/// A receipt to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSubmission {
    /// The lease it completes.
    pub lease_id: Hash32,
    /// The submitting provider.
    pub provider: NodeId,
    /// The receipt (already checked against the lease and the outputs).
    pub receipt: Receipt,
    /// The outputs (already stored).
    pub outputs: Vec<BlobRef>,
    /// Billable units (`fuel_used + flops + bytes`).
    pub units: u64,
    /// For a failed run: what went wrong, for people (empty otherwise). Kept
    /// beside the receipt, never hashed: not part of its id, the outputs
    /// root or any ledger entry.
    pub failure_message: String,
}

/// A recorded receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRecord {
    /// Commit order.
    pub seq: u64,
    /// `Receipt::id`.
    pub id: Hash32,
    /// The market job.
    pub job_id: Hash32,
    /// The receipt.
    pub receipt: Receipt,
    /// The outputs.
    pub outputs: Vec<BlobRef>,
    /// When it was recorded.
    pub committed_at_ms: u64,
    /// When it settles (or settled).
    pub settle_at_ms: u64,
    /// What it paid (once settled).
    pub paid: Option<u64>,
    /// The sampling epoch it was recorded in.
    pub epoch: u64,
    /// Its job's sampling rate, parts per million.
    pub rate_ppm: u32,
    /// Where its check stands.
    pub check_state: CheckState,
    /// Why it was checked (`None`: it was not).
    pub check_reason: Option<CheckReason>,
    /// For a failed run: the provider's message for people (empty
    /// otherwise; never hashed).
    pub failure_message: String,
}

/// One shard of a job, as the renter sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardView {
    /// Index.
    pub index: u32,
    /// `assay_protocol::job_id` of the shard.
    pub shard_job_id: Hash32,
    /// Where it stands.
    pub state: ShardState,
    /// Who holds or ran it.
    pub provider: Option<NodeId>,
    /// Leases handed out so far.
    pub attempts: u32,
    /// The receipt once done.
    pub receipt: Option<ReceiptRecord>,
    /// For a queued shard: why no provider took it yet.
    pub why_not_matched: String,
    /// This shard's inputs.
    pub inputs: Vec<BlobRef>,
    /// The verdicts on the current receipt, in order.
    pub verdicts: Vec<VerdictView>,
    /// Receipts of this shard proven wrong.
    pub rejected_receipts: Vec<Hash32>,
    /// What the current receipt's check waits for, in words.
    pub check_note: String,
}

/// A recorded verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictView {
    /// Who re-executed.
    pub verifier: NodeId,
    /// First check or referee.
    pub role: CheckRole,
    /// Its result equals the receipt's.
    pub agrees: bool,
    /// What it got.
    pub result: RunResult,
    /// When.
    pub at_ms: u64,
    /// A referee's: how the dispute reached it (one step recomputed after
    /// bisection, or why in full); empty for other verdicts.
    pub arbitration: String,
}

/// The deterministic part of a run: what a verifier re-derives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunResult {
    /// Outputs root.
    pub outputs_root: Hash32,
    /// Outcome.
    pub outcome: assay_protocol::Outcome,
    /// Fuel used.
    pub fuel_used: u64,
    /// Work metered.
    pub work: assay_protocol::WorkDone,
}

impl RunResult {
    /// The result a receipt states.
    pub fn of(r: &Receipt) -> RunResult {
        RunResult {
            outputs_root: r.body.outputs_root,
            outcome: r.body.outcome,
            fuel_used: r.body.fuel_used,
            work: r.body.work,
        }
    }
}

/// A verifier's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierInfo {
    /// Its node id.
    pub id: NodeId,
    /// Its software version.
    pub version: String,
    /// The backend it re-executes on.
    pub backend: String,
}

/// An epoch of the sampling beacon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochSeed {
    /// The epoch number (`time / epoch_ms`).
    pub epoch: u64,
    /// `assay_protocol::verification::commitment(seed)`.
    pub commitment: Hash32,
    /// The seed, once the epoch is over.
    pub seed: Option<[u8; 32]>,
}

/// A check handed to a verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckTask {
    /// The check id.
    pub id: Hash32,
    /// First check or referee.
    pub role: CheckRole,
    /// Why the receipt is checked.
    pub reason: CheckReason,
    /// The receipt to check.
    pub record: ReceiptRecord,
    /// What to re-execute (the shard's component, inputs and spec).
    pub lease: Lease,
    /// The receipt's epoch (its seed revealed).
    pub beacon: EpochSeed,
    /// Answer by then.
    pub deadline_ms: u64,
    /// A referee check of a bisected dispute: the dispute and the one step
    /// to recompute (`None`: re-execute the job).
    pub step: Option<(Hash32, crate::rules::disputes::StepToRecompute)>,
}

/// A verdict to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictSubmission {
    /// The check.
    pub check_id: Hash32,
    /// The receipt it names.
    pub receipt_id: Hash32,
    /// Who re-executed (the request's signer).
    pub verifier: NodeId,
    /// What the re-execution gave.
    pub result: RunResult,
    /// The verifier's claim that it matches the receipt.
    pub agrees: bool,
    /// The root of the trace of its re-execution (a disputing verdict is
    /// bisected against the receipt's).
    pub trace_root: Option<Hash32>,
    /// An arbiter's verdict on one step: the output digest it recomputed.
    pub step_output: Option<Hash32>,
    /// The signed request's nonce, expiry and signature (kept for audit).
    pub nonce: u64,
    /// See `nonce`.
    pub expires_at_ms: u64,
    /// See `nonce`.
    pub signature: Vec<u8>,
}

/// What a verdict decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The receipt matched: provider and verifier paid.
    Verified,
    /// The receipt matched and the agreement was drawn for a re-check: the
    /// arbiter re-runs it before anyone is paid.
    Rechecking,
    /// A mismatch: an arbitration was opened.
    Disputed,
    /// The arbiter agreed with the verifier: the provider was slashed and
    /// the shard re-queued.
    Rejected,
    /// The arbiter agreed with the provider: the verifier was slashed and
    /// the receipt settled.
    Overruled,
    /// The arbiter agreed with neither: both were slashed and the shard
    /// re-queued.
    BothWrong,
    /// The arbiter's re-check confirmed an agreement: paid.
    Confirmed,
    /// The arbiter's re-check found a wrong result a verifier had agreed
    /// with: provider and verifier slashed, the shard re-queued.
    Colluded,
}

impl Decision {
    /// The name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Verified => "verified",
            Decision::Rechecking => "rechecking",
            Decision::Disputed => "disputed",
            Decision::Rejected => "rejected",
            Decision::Overruled => "overruled",
            Decision::BothWrong => "both-wrong",
            Decision::Confirmed => "confirmed",
            Decision::Colluded => "colluded",
        }
    }
}

/// A job, as the renter sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    /// The market job id.
    pub id: Hash32,
    /// Who pays.
    pub renter: NodeId,
    /// The component.
    pub component_hash: Hash32,
    /// Its size.
    pub component_size: u64,
    /// The inputs.
    pub inputs: Vec<BlobRef>,
    /// The spec (shard 0 of N).
    pub spec: JobSpec,
    /// µIOSD per million units.
    pub max_price: u64,
    /// Escrowed µIOSD.
    pub escrow: u64,
    /// When it was accepted.
    pub created_at_ms: u64,
    /// The shards in order.
    pub shards: Vec<ShardView>,
    /// Its sampling rate, parts per million (0: unverified).
    pub verify_rate_ppm: u32,
    /// What the providers that hold or ran its shards have at stake:
    /// (provider, stake, receipts committed).
    pub providers_at_stake: Vec<(NodeId, u64, u64)>,
}

impl JobView {
    /// `queued`, `running`, `done` (every shard has a receipt), `settled`,
    /// or `failed` (a shard gave up and none is still queued or leased).
    pub fn state(&self) -> JobState {
        let shards: Vec<(ShardState, bool)> = self
            .shards
            .iter()
            .map(|s| {
                (
                    s.state,
                    s.receipt.as_ref().is_some_and(|r| r.paid.is_some()),
                )
            })
            .collect();
        JobState::of(&shards)
    }

    /// The result root once every shard is done.
    pub fn result_root(&self) -> Option<Hash32> {
        let roots: Option<Vec<Hash32>> = self
            .shards
            .iter()
            .map(|s| s.receipt.as_ref().map(|r| r.receipt.body.outputs_root))
            .collect();
        roots.map(|r| assay_protocol::results_root(&r))
    }
}

/// What the store knows of a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderView {
    /// Its node id.
    pub id: NodeId,
    /// µIOSD per million work units.
    pub price: u64,
    /// CPU cores.
    pub cpu_cores: u32,
    /// RAM.
    pub memory_bytes: u64,
    /// Number of GPUs.
    pub gpu_count: u32,
    /// The largest GPU's memory.
    pub gpu_memory_bytes: u64,
    /// Jobs it runs at once.
    pub slots: u32,
    /// Free slots at its last heartbeat.
    pub free_slots: u32,
    /// Its stake, µIO.
    pub stake: u64,
    /// The stake it must hold to be hired at all (its devices' floor), µIO.
    pub stake_floor: u64,
    /// Reliability, per mille.
    pub reliability_permille: u64,
    /// Last heard from, Unix ms.
    pub last_seen_ms: u64,
    /// Heard from within the liveness window.
    pub online: bool,
    /// Shards completed.
    pub completed: u64,
    /// Runs that ended in a provider fault.
    pub faults: u64,
    /// Leases that expired.
    pub expired: u64,
    /// Caught cheating: never matched again.
    pub suspended: bool,
    /// Its GPU claim passed the hardware challenge (or claims are not
    /// challenged on this coordinator).
    pub hardware_ok: bool,
    /// Where its hardware challenge stands.
    pub hardware_state: HardwareState,
}

impl ProviderView {
    /// Memory tensors live in: the GPU's, or RAM for a CPU-only provider.
    pub fn device_memory(&self) -> u64 {
        if self.gpu_count > 0 {
            self.gpu_memory_bytes
        } else {
            self.memory_bytes
        }
    }
}

/// A reserved cluster as its renter and its members see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// Its id.
    pub id: Hash32,
    /// Who pays.
    pub renter: NodeId,
    /// Active, released or expired.
    pub state: crate::state::ClusterState,
    /// What the renter asked for (`gpus`, class, reliability, max price).
    pub wanted: crate::rules::clusters::Wanted,
    /// When it started and when it ends (or ended, if expired), Unix ms.
    pub starts_ms: u64,
    /// When its reservation ends.
    pub ends_ms: u64,
    /// When it was released or expired.
    pub ended_ms: Option<u64>,
    /// µIOSD escrowed in all (creation and extensions).
    pub escrowed: u64,
    /// µIOSD paid to members (their pay and the protocol fee on it).
    pub paid: u64,
    /// µIOSD given back to the renter.
    pub refunded: u64,
    /// Its members, present and past, in the order they joined.
    pub members: Vec<ClusterMember>,
}

impl ClusterView {
    /// µIOSD still in escrow: `escrowed − paid − refunded`.
    pub fn escrow_left(&self) -> u64 {
        self.escrowed
            .saturating_sub(self.paid)
            .saturating_sub(self.refunded)
    }

    /// The members holding a slot now.
    pub fn active_members(&self) -> impl Iterator<Item = &ClusterMember> {
        self.members
            .iter()
            .filter(|m| m.state == crate::state::MemberState::Active)
    }
}

/// A provider's membership of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMember {
    /// The provider.
    pub provider: NodeId,
    /// µIOSD per slot-hour, fixed when it joined.
    pub reserve_price: u64,
    /// µIOSD per million work units the cluster's jobs pay it, fixed when it joined.
    pub work_price: u64,
    /// When it joined.
    pub joined_ms: u64,
    /// When it left.
    pub left_ms: Option<u64>,
    /// Holding its slot, or left.
    pub state: crate::state::MemberState,
    /// Why it left (`offline`, `suspended`, `released`, `expired`).
    pub why_left: String,
    /// The escrow held for it.
    pub budget: u64,
    /// Paid to it so far (with the protocol fee on it).
    pub paid: u64,
}

/// What one pass over the clusters did (the tick's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterReport {
    /// µIOSD paid to members.
    pub paid: u64,
    /// Members that went offline and left.
    pub dropped: u64,
    /// Of those, how many were replaced.
    pub replaced: u64,
    /// Clusters whose time ran out.
    pub expired: u64,
}
