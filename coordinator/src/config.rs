//! [`MarketConfig`]: the market's timing, fee and slashing rules, and
//! [`EconomyConfig`]: the units' rules (reward epochs, the IO price, stake
//! floors). A leaf: the rules, the store and the services all read it.

use assay_protocol::{Hash32, NodeId};

use crate::ledger::BASE;

/// Where the IO price comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource {
    /// Reports signed by this oracle key (`PostPrice`), each usable for
    /// `max_age_ms` after it was observed; a stale, unsigned or foreign
    /// price is refused.
    Oracle {
        /// The oracle's public key.
        key: NodeId,
        /// How long a report stays usable.
        max_age_ms: u64,
    },
    /// A price the operator set (µIOSD per IO): embedded stores and
    /// single-operator test networks with no feed.
    Fixed(u64),
}

/// The two units' rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EconomyConfig {
    /// The length of one hour of the reward schedule (3,600,000 in
    /// production; a devnet compresses it to seconds).
    pub hour_ms: u64,
    /// The length of a reward epoch; each emits its part of the schedule
    /// ([`crate::rules::emission::epoch_emission`]).
    pub reward_epoch_ms: u64,
    /// The share of an epoch's emission paid by verified work (the rest by
    /// uptime), basis points.
    pub reward_work_bps: u32,
    /// The IO price.
    pub price: PriceSource,
    /// Protocol fee on jobs paid in IO, basis points (collected by burning).
    pub fee_bps_io: u64,
    /// IO a provider stakes per device of the reference class (×
    /// [`crate::rules::staking::class_multiplier_bps`]); 0: no floor.
    pub stake_per_device: u64,
    /// Unstaked IO waits this long before it is spendable (and can still
    /// be slashed meanwhile).
    pub unstake_cooldown_ms: u64,
    /// The length of a day for notes' terms and bonds' maturities
    /// (86,400,000; a devnet compresses it).
    pub day_ms: u64,
}

impl Default for EconomyConfig {
    fn default() -> Self {
        EconomyConfig {
            hour_ms: 3_600_000,
            reward_epoch_ms: 3_600_000,
            reward_work_bps: crate::rules::rewards::WORK_BPS,
            price: PriceSource::Fixed(BASE),
            fee_bps_io: 0,
            stake_per_device: 0,
            unstake_cooldown_ms: 14 * 86_400_000,
            day_ms: 86_400_000,
        }
    }
}

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
    /// Protocol fee in basis points of each payment of a job paid in IOSD
    /// (jobs paid in IO: [`EconomyConfig::fee_bps_io`]).
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
    /// The arbiter's share of a slash, basis points (the stored name
    /// predates arbiters).
    pub referee_bps: u32,
    /// Verifier keys the coordinator designates as arbiters: disputes and
    /// re-checks go to them alone, and their re-execution decides (a count
    /// of verifiers never does). Empty: disputes and re-checks wait.
    pub arbiters: Vec<NodeId>,
    /// The fraction of first agreeing verdicts an arbiter re-checks before
    /// anyone is paid, parts per million (a verifier that agreed with a
    /// wrong result is slashed). It prices the bond a verifier holds per
    /// check ([`crate::rules::checks::check_bond`]).
    pub recheck_ppm: u32,
    /// The least IO stake (µIO) a verifier holds to be assigned checks.
    pub verifier_stake_floor: u64,
    /// At most this many checks held by one verifier at once.
    pub verifier_max_in_flight: u32,
    /// Proof of hardware: the challenge component (blake3, size) in the
    /// blob store. `None`: claims are not challenged and GPU jobs match any
    /// provider that registered a GPU.
    pub challenge_component: Option<(Hash32, u64)>,
    /// A provider that passed is challenged again after a random time of
    /// 0.5–1.5 × this (when it holds no lease). 0: only at registration.
    pub challenge_interval_ms: u64,
    /// Tests only: every GPU class's challenge as (n, rounds, bound ms).
    pub challenge_override: Option<(u32, u32, u64)>,
    /// IO, IOSD, rewards and stakes.
    pub economy: EconomyConfig,
    /// A provider's device samples (sent with every heartbeat) are kept at
    /// most once per this interval, so the table grows with time, not with
    /// the heartbeat rate.
    pub telemetry_every_ms: u64,
    /// Device samples older than this are deleted.
    pub telemetry_keep_ms: u64,
    /// A lease's hard end: it lives at most this many times its job's
    /// watchdog (`wall_clock_ms`), plus [`MarketConfig::lease_ttl_ms`],
    /// after it was granted, however often heartbeats renew it.
    pub lease_cap_factor: u64,
    /// A provider's heartbeat that reports the leases it holds ends those
    /// it does not hold — once they were granted this long ago (a reply to
    /// `TakeLeases` may still be on its way).
    pub lease_report_grace_ms: u64,
    /// What an attempt ended by the job's own watchdog costs the renter,
    /// µIOSD, paid to the provider whose slot it held (at most what is left
    /// of the shard's escrow).
    pub watchdog_fee: u64,
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
            arbiters: Vec::new(),
            recheck_ppm: 100_000,
            verifier_stake_floor: 0,
            verifier_max_in_flight: 4,
            challenge_component: None,
            challenge_interval_ms: 6 * 3_600_000,
            challenge_override: None,
            economy: EconomyConfig::default(),
            telemetry_every_ms: 60_000,
            telemetry_keep_ms: 86_400_000,
            lease_cap_factor: 3,
            lease_report_grace_ms: 10_000,
            watchdog_fee: 1_000,
        }
    }
}
