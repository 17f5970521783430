//! The market's rules as pure functions: no SQL, no gRPC, no clock, no
//! randomness (callers pass the time and any random draw). The store
//! ([`crate::store`]) reads rows, asks these functions what to do, and
//! writes the answer; the services ([`crate::service`]) use them to check
//! requests before a store call.
//!
//! - [`money`]: escrow, settlement (pay, fee, verifier fee, refund) and
//!   slash splits — each sums to what it divides.
//! - [`checks`]: a receipt's check-state transitions and what a verdict
//!   decides.
//! - [`leases`]: who may act on a lease, what a lease's state allows, and a
//!   receipt checked against its lease.
//! - [`jobs`]: a job's id, verification rate, shards and split inputs.
//! - [`matching`]: which provider fits which shard, their order, and "why
//!   not matched".
//! - [`challenge`]: proof of hardware — challenge sizing, timing and
//!   outcomes.
//! - [`clusters`]: reserved clusters — who may join, the escrow, pay by
//!   the millisecond, a leaver's settlement and its replacement.
//! - [`claims`]: tokenized compute — note splits, bond waterfall, maturity.
//! - [`emission`]: the block-reward schedule (IO per reward epoch).
//! - [`rewards`]: an epoch's emission split by verified work and uptime.
//! - [`staking`]: the IO a provider stakes per device to be hired.
//! - [`eligibility`]: why a provider is or is not hired, item by item.
//! - [`disputes`]: a dispute's bisection game between rounds — the
//!   question asked, what answers move it to, when the arbiter recomputes
//!   one step and when it re-executes in full.
//! - [`rate`]: how many signed requests a key may send (a token bucket
//!   per key, a bound on the keys tracked).
//! - [`storage`]: the bytes of blobs a key may keep, and when retention
//!   starts to count.
//! - [`access`]: who may read a blob (its uploader, the arbiters, and a
//!   job's renter, providers and verifiers through that job).
//! - [`exposure`]: the stake a provider's open leases and unsettled
//!   receipts bond, and how long a disputable receipt waits to settle.

pub mod access;
pub mod challenge;
pub mod checks;
pub mod claims;
pub mod clusters;
pub mod disputes;
pub mod eligibility;
pub mod emission;
pub mod exposure;
pub mod jobs;
pub mod leases;
pub mod matching;
pub mod money;
pub mod rate;
pub mod rewards;
pub mod staking;
pub mod storage;
