//! The store: everything the coordinator keeps, behind one trait.
//!
//! [`Store`] is implemented once, by [`crate::SqlStore`], over two real
//! databases: embedded SQLite ([`crate::sqlite::Sqlite`], the default) and
//! PostgreSQL ([`crate::postgres::Postgres`], for replicas sharing one
//! database). Every method that changes state is one database transaction,
//! and every method takes the current time as an argument, so tests can
//! drive lease expiry and settlement without sleeping.

use assay_protocol::{BlobRef, Hash32, JobSpec, NodeId, Receipt};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::ledger::{Entry, Report};
pub use crate::matching::ProviderView;

/// The market's timing and fee rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketConfig {
    /// A lease lasts this long past the provider's last heartbeat.
    pub lease_ttl_ms: u64,
    /// A provider counts as online this long after it was last heard from.
    pub provider_liveness_ms: u64,
    /// How long a fresh shard waits for the best-ranked provider.
    pub preference_window_ms: u64,
    /// The challenge window: a receipt that was not sampled for
    /// verification (or whose job opted out) settles this long after it
    /// was recorded.
    pub settlement_delay_ms: u64,
    /// Protocol fee in basis points of each payment.
    pub fee_bps: u64,
    /// A shard whose lease ended without a receipt this many times
    /// (provider faults, expired or returned leases) fails, and its escrow
    /// goes back to the renter. 0: never give up.
    pub max_attempts: u32,
    /// Length of a sampling epoch: receipts recorded in one epoch are
    /// sampled with the seed revealed when it ends.
    pub epoch_ms: u64,
    /// Sampling rate of jobs that do not choose one, parts per million.
    pub default_rate_ppm: u32,
    /// A verifier has this long to answer a check before it goes to another.
    pub check_ttl_ms: u64,
    /// The fraction of its stake a node proven wrong loses, basis points.
    pub slash_bps: u32,
    /// The share of a provider's slash paid to the verifier who caught it
    /// (basis points of the slash; the referee gets `referee_bps`, the
    /// renter the rest).
    pub bounty_bps: u32,
    /// The referee's share of a slash, basis points.
    pub referee_bps: u32,
    /// Proof of hardware: the challenge component (blake3, size) in the
    /// blob store. `None`: claims are not challenged and GPU jobs match any
    /// provider that registered a GPU.
    pub challenge_component: Option<(Hash32, u64)>,
    /// A provider that passed is challenged again after a random time of
    /// 0.5–1.5 × this (when it holds no lease). 0: only at registration.
    pub challenge_interval_ms: u64,
    /// Tests only: every GPU class's challenge as (n, rounds, bound ms).
    pub challenge_override: Option<(u32, u32, u64)>,
}

impl Default for MarketConfig {
    fn default() -> Self {
        MarketConfig {
            lease_ttl_ms: 30_000,
            provider_liveness_ms: 15_000,
            preference_window_ms: 1_000,
            settlement_delay_ms: 10_000,
            fee_bps: 200,
            max_attempts: 5,
            epoch_ms: 2_000,
            default_rate_ppm: 48_000,
            check_ttl_ms: 60_000,
            slash_bps: 5_000,
            bounty_bps: 5_000,
            referee_bps: 2_500,
            challenge_component: None,
            challenge_interval_ms: 6 * 3_600_000,
            challenge_override: None,
        }
    }
}

/// A node's accounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable balance, µcr.
    pub balance: u64,
    /// Stake, µcr.
    pub stake: u64,
    /// Provider earnings, µcr.
    pub earnings: u64,
    /// Verifier earnings, µcr.
    pub verifier_earnings: u64,
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
    /// µcr per million work units.
    pub max_price: u64,
    /// Only GPU providers.
    pub require_gpu: bool,
    /// Each shard's own inputs when some were split by line (one list per
    /// shard, in shard order); empty: every shard gets `inputs`.
    pub shard_inputs: Vec<Vec<BlobRef>>,
    /// Probability that each receipt is re-executed by a verifier, parts
    /// per million (0: unverified, no guarantee and no verifier fee).
    pub verify_rate_ppm: u32,
}

/// What accepting a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// µcr moved from the renter's balance into escrow.
    pub escrow: u64,
    /// `assay_protocol::job_id` of each shard.
    pub shard_job_ids: Vec<Hash32>,
}

/// A provider's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// Its node id.
    pub id: NodeId,
    /// µcr per million work units.
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

/// The state of a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Held.
    Active,
    /// Its receipt was recorded.
    Done,
    /// It expired; the shard was re-queued.
    Expired,
    /// The provider gave it back.
    Returned,
}

impl LeaseState {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            LeaseState::Active => "active",
            LeaseState::Done => "done",
            LeaseState::Expired => "expired",
            LeaseState::Returned => "returned",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<LeaseState, Error> {
        Ok(match s {
            "active" => LeaseState::Active,
            "done" => LeaseState::Done,
            "expired" => LeaseState::Expired,
            "returned" => LeaseState::Returned,
            other => return Err(Error::Corrupt(format!("unknown lease state {other:?}"))),
        })
    }
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
    /// Where its check stands: `unverified`, `pending`, `not-sampled`,
    /// `sampled`, `disputed`, `verified`, `rejected` or `void`.
    pub check_state: String,
    /// Why it was checked: `sampled`, `audit` or `challenge` (empty if not).
    pub check_reason: String,
}

/// One shard of a job, as the renter sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardView {
    /// Index.
    pub index: u32,
    /// `assay_protocol::job_id` of the shard.
    pub shard_job_id: Hash32,
    /// `queued`, `leased`, `done` or `failed` (gave up after too many attempts).
    pub state: String,
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
    /// `verify` or `referee`.
    pub role: String,
    /// Its result equals the receipt's.
    pub agrees: bool,
    /// What it got.
    pub result: RunResult,
    /// When.
    pub at_ms: u64,
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
    /// `verify` or `referee`.
    pub role: String,
    /// `sampled`, `audit` or `challenge`.
    pub reason: String,
    /// The receipt to check.
    pub record: ReceiptRecord,
    /// What to re-execute (the shard's component, inputs and spec).
    pub lease: Lease,
    /// The receipt's epoch (its seed revealed).
    pub beacon: EpochSeed,
    /// Answer by then.
    pub deadline_ms: u64,
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
    /// A mismatch: a referee check was opened.
    Disputed,
    /// The referee agreed with the verifier: the provider was slashed and
    /// the shard re-queued.
    Rejected,
    /// The referee agreed with the provider: the verifier was slashed and
    /// the receipt settled.
    Overruled,
    /// The referee agreed with neither (a determinism failure): the receipt
    /// is void and the shard re-queued, nobody slashed.
    Inconclusive,
}

impl Decision {
    /// The name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Verified => "verified",
            Decision::Disputed => "disputed",
            Decision::Rejected => "rejected",
            Decision::Overruled => "overruled",
            Decision::Inconclusive => "inconclusive",
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
    /// µcr per million units.
    pub max_price: u64,
    /// Escrowed µcr.
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
    pub fn state(&self) -> &'static str {
        let active = self
            .shards
            .iter()
            .any(|s| s.state == "queued" || s.state == "leased");
        if !active && self.shards.iter().any(|s| s.state == "failed") {
            return "failed";
        }
        let done = self.shards.iter().all(|s| s.state == "done");
        let settled = self
            .shards
            .iter()
            .all(|s| s.receipt.as_ref().is_some_and(|r| r.paid.is_some()));
        if done && settled {
            "settled"
        } else if done {
            "done"
        } else if self.shards.iter().any(|s| s.state != "queued") {
            "running"
        } else {
            "queued"
        }
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

/// Everything the coordinator keeps.
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend_name(&self) -> &'static str;
    /// The market rules.
    fn config(&self) -> &MarketConfig;

    /// Records a request nonce until it expires.
    ///
    /// # Errors
    ///
    /// [`Error::Auth`] (`Replayed`) if this node used it already.
    fn use_nonce(&self, node: &NodeId, nonce: u64, expires_at_ms: u64) -> Result<(), Error>;
    /// Forgets nonces whose requests have expired.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn purge_nonces(&self, now_ms: u64) -> Result<u64, Error>;

    /// Mints `amount` into the node's balance (devnet faucet), once per `reference`.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn mint(
        &self,
        node: &NodeId,
        amount: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Account, Error>;
    /// Moves `amount` from the node's balance to its stake, once per `reference`.
    ///
    /// # Errors
    ///
    /// [`Error::Precondition`] if the balance is too small.
    fn stake(
        &self,
        node: &NodeId,
        amount: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Account, Error>;
    /// The node's accounts.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn account(&self, node: &NodeId) -> Result<Account, Error>;

    /// Accepts a job: escrows `max price × (fuel + work budget)` per shard
    /// from the renter's balance and queues its shards.
    ///
    /// # Errors
    ///
    /// [`Error::Precondition`] if the balance does not cover the escrow;
    /// [`Error::AlreadyExists`] for a job id already taken.
    fn submit_job(&self, job: &NewJob, now_ms: u64) -> Result<Submitted, Error>;
    /// A job with its shards, receipts and "why not matched".
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn job(&self, id: &Hash32, now_ms: u64) -> Result<Option<JobView>, Error>;

    /// Registers or updates a provider and tops its stake up to `stake_target`.
    ///
    /// # Errors
    ///
    /// [`Error::Precondition`] if its balance cannot cover the stake.
    fn register(
        &self,
        p: &ProviderInfo,
        stake_target: u64,
        now_ms: u64,
    ) -> Result<Registered, Error>;
    /// Marks the provider alive and renews its leases; `None` if unknown.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn heartbeat(
        &self,
        node: &NodeId,
        free_slots: u32,
        telemetry_json: &str,
        now_ms: u64,
    ) -> Result<Option<Vec<Hash32>>, Error>;
    /// Leases up to `max` queued shards the provider is matched to.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if the provider is not registered.
    fn take_leases(&self, node: &NodeId, max: u32, now_ms: u64) -> Result<Vec<Lease>, Error>;
    /// A lease, whatever its state.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn lease(&self, id: &Hash32) -> Result<Option<LeaseInfo>, Error>;
    /// Records the receipt of an active lease; returns its id and when it
    /// settles. Submitting the same receipt again returns the same answer.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (no such lease), [`Error::PermissionDenied`]
    /// (another provider's), [`Error::Precondition`] (expired or returned).
    fn submit_receipt(&self, s: &ReceiptSubmission, now_ms: u64) -> Result<(Hash32, u64), Error>;
    /// Gives a lease back and re-queues its shard (`fault`: counts against reliability).
    ///
    /// # Errors
    ///
    /// As [`Store::submit_receipt`].
    fn return_lease(
        &self,
        node: &NodeId,
        lease: &Hash32,
        fault: bool,
        reason: &str,
        now_ms: u64,
    ) -> Result<(), Error>;
    /// Re-queues the shards of leases that expired; returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn expire_leases(&self, now_ms: u64) -> Result<u64, Error>;
    /// Settles receipts whose delay has passed (pay, fee, refund); returns
    /// their ids. Idempotent per receipt.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn settle_due(&self, now_ms: u64) -> Result<Vec<Hash32>, Error>;
    /// Recorded receipts after `after_seq`, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn receipts_after(&self, after_seq: u64, limit: u32) -> Result<Vec<ReceiptRecord>, Error>;
    /// Ledger entries after `after_seq`, in order.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn ledger_entries(&self, after_seq: u64, limit: u64) -> Result<Vec<Entry>, Error>;
    /// Checks the whole ledger against its chain and the stored balances.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn verify_ledger(&self) -> Result<Report, Error>;
    /// Every registered provider.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn providers(&self, now_ms: u64) -> Result<Vec<ProviderView>, Error>;

    /// Registers or updates a verifier and tops its stake up to `stake_target`.
    ///
    /// # Errors
    ///
    /// [`Error::Precondition`] if its balance cannot cover the stake.
    fn register_verifier(
        &self,
        v: &VerifierInfo,
        stake_target: u64,
        now_ms: u64,
    ) -> Result<u64, Error>;
    /// Reveals the seeds of epochs that are over and samples their
    /// receipts; publishes the commitment of the next epoch. Returns how
    /// many receipts were sampled.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn reveal_epochs(&self, now_ms: u64) -> Result<u64, Error>;
    /// Epochs from `from_epoch` on (at most `limit`): commitments, and seeds
    /// of those that are over.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn beacon(&self, from_epoch: u64, limit: u32) -> Result<Vec<EpochSeed>, Error>;
    /// Up to `max` open checks for this verifier (never its own receipts,
    /// never a dispute it is part of).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if it is not registered; [`Error::PermissionDenied`]
    /// if it was suspended.
    fn take_checks(
        &self,
        verifier: &NodeId,
        max: u32,
        now_ms: u64,
    ) -> Result<Vec<CheckTask>, Error>;
    /// Records a verdict and acts on it (settle, dispute, slash).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (no such check), [`Error::PermissionDenied`]
    /// (another verifier's check), [`Error::Precondition`] (the check
    /// expired), [`Error::Invalid`] (the receipt id or `agrees` does not
    /// match).
    fn submit_verdict(&self, v: &VerdictSubmission, now_ms: u64) -> Result<Decision, Error>;
    /// Gives a check back without a verdict.
    ///
    /// # Errors
    ///
    /// As [`Store::submit_verdict`].
    fn return_check(
        &self,
        verifier: &NodeId,
        check: &Hash32,
        reason: &str,
        now_ms: u64,
    ) -> Result<(), Error>;
    /// Proof of hardware: sends a challenge to each online GPU provider
    /// whose class is unchecked or due for a random re-check, and fails the
    /// challenges that went unanswered past their deadline. Returns how many
    /// challenges were sent.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn run_challenges(&self, now_ms: u64) -> Result<u64, Error>;
    /// Re-opens checks whose verifier did not answer in time (it may not
    /// take them again); returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn expire_checks(&self, now_ms: u64) -> Result<u64, Error>;
}
