//! Exposure and the ends of leases, in the store: a provider's stake bonds
//! each lease it holds and each receipt not yet settled; leases end at a
//! hard cap, when their provider's heartbeat says it does not hold them, or
//! when they are given back (after a refused receipt too), and each ended
//! lease re-queues its shard with its escrow intact; an attempt the job's
//! own watchdog ended costs the renter a fee; a shard is not offered again
//! to a provider that gave it back. Every test runs on SQLite and on
//! PostgreSQL (when `ASSAY_TEST_POSTGRES_URL` is set) and ends with the
//! ledger verified.

use crate::common::{key, ledger_ok, receipt_for};

use assay_coordinator::ledger::{self, Unit};
use assay_coordinator::rules::exposure::worst_case_dispute_ms;
use assay_coordinator::rules::leases::NOT_HELD;
use assay_coordinator::sql::{Backend, Value};
use assay_coordinator::state::{LeaseState, ShardState};
use assay_coordinator::store::leases::GiveBack;
use assay_coordinator::store::prelude::*;
use assay_coordinator::store::{Lease, NewJob, ProviderInfo};
use assay_coordinator::{Error, MarketConfig, SqlStore};
use assay_protocol::{Hash32, JobSpec, NodeKey};

type Db<'a, B> = &'a dyn Fn(MarketConfig) -> SqlStore<B>;

const TTL: u64 = 1_000;
const EPOCH: u64 = 1_000;
const WINDOW: u64 = 500;
const CHECK_TTL: u64 = 2_000;
/// The job's watchdog (`wall_clock_ms`).
const WATCHDOG: u64 = 2_000;
const GRACE: u64 = 3_000;
const FEE_BPS: u64 = 1_000;

fn cfg() -> MarketConfig {
    MarketConfig {
        lease_ttl_ms: TTL,
        provider_liveness_ms: 1_000_000,
        preference_window_ms: 0,
        settlement_delay_ms: WINDOW,
        fee_bps: FEE_BPS,
        max_attempts: 0,
        epoch_ms: EPOCH,
        check_ttl_ms: CHECK_TTL,
        lease_cap_factor: 3,
        lease_report_grace_ms: GRACE,
        watchdog_fee: 300,
        ..MarketConfig::default()
    }
}

fn spec() -> JobSpec {
    JobSpec {
        fuel: 1_000_000,
        work_budget: 9_000_000,
        memory_bytes: 1 << 20,
        gpu_memory_bytes: 1 << 20,
        wall_clock_ms: WATCHDOG,
        ..JobSpec::default()
    }
}

/// A job of `shards` shards at max price 100 (escrow 1,000 per shard, twice
/// that when verified), checked at `rate_ppm`.
fn job(renter: &NodeKey, tag: u8, shards: u32, rate_ppm: u32) -> NewJob {
    crate::common::job(&renter.id(), tag, shards, 100, rate_ppm, spec())
}

fn provider(k: &NodeKey, slots: u32) -> ProviderInfo {
    ProviderInfo {
        id: k.id(),
        price: 50,
        cpu_cores: 4,
        memory_bytes: 1 << 30,
        gpus: Vec::new(),
        slots,
        version: "test".into(),
    }
}

/// A renter with credits.
fn renter<B: Backend>(s: &SqlStore<B>) -> NodeKey {
    let r = key(1);
    s.mint(&r.id(), 100_000_000, "m/r", 0).expect("mint");
    r
}

/// Registers `k` with `slots` slots, staking `stake` µIO.
fn staked<B: Backend>(s: &SqlStore<B>, k: &NodeKey, slots: u32, stake: u64) {
    if stake > 0 {
        s.faucet(&k.id(), Unit::Io, stake, &format!("io/{}", k.id()), 0)
            .expect("IO faucet");
    }
    s.register(&provider(k, slots), stake, 0).expect("register");
}

/// An account's balance.
fn balance<B: Backend>(s: &SqlStore<B>, account: &str) -> i128 {
    s.verify_ledger()
        .expect("verify")
        .balances
        .get(account)
        .copied()
        .unwrap_or(0)
}

/// One column of a lease's row.
fn lease_col<B: Backend>(s: &SqlStore<B>, lease: &Hash32, col: &str) -> Value {
    s.backend()
        .read(&mut |c| {
            let r = c.query_one(
                &format!("SELECT {col} FROM leases WHERE id = $1"),
                &[lease.into()],
            )?;
            Ok(r.0[0].clone())
        })
        .expect("lease row")
}

/// The stake a lease of the job's shards bonds.
fn shard_bond<B: Backend>(s: &SqlStore<B>, job: &Hash32) -> u64 {
    s.backend()
        .read(&mut |c| {
            c.query_one(
                "SELECT MAX(min_stake) FROM shards WHERE job_id = $1",
                &[job.into()],
            )?
            .u64(0)
        })
        .expect("bond")
}

fn faults_and_expired<B: Backend>(s: &SqlStore<B>, k: &NodeKey) -> (u64, u64) {
    let p = s
        .providers(0)
        .expect("providers")
        .into_iter()
        .find(|p| p.id == k.id())
        .expect("registered");
    (p.faults, p.expired)
}

fn shard_state<B: Backend>(s: &SqlStore<B>, job: &Hash32, now: u64) -> (ShardState, u32) {
    let v = s.job(job, now).expect("job").expect("exists");
    (v.shards[0].state, v.shards[0].attempts)
}

fn bonds_block_over_exposure_and_free_up_on_settlement<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let r = renter(&s);
    let j = job(&r, 1, 6, 500_000);
    s.submit_job(&j, 0).expect("job");
    let bond = shard_bond(&s, &j.id);
    assert!(bond > 0, "a verified shard bonds stake");
    // One shard's stake and 64 slots: one shard at a time, not 64.
    let a = key(2);
    staked(&s, &a, 64, bond);
    let l = s.take_leases(&a.id(), 64, 10).expect("take");
    assert_eq!(l.len(), 1);
    assert_eq!(
        lease_col(&s, &l[0].lease_id, "bond"),
        Value::Int(bond as i64)
    );
    assert!(s.take_leases(&a.id(), 64, 20).expect("take").is_empty());
    let view = s.job(&j.id, 30).expect("job").expect("exists");
    let waiting = view
        .shards
        .iter()
        .find(|x| x.state == ShardState::Queued)
        .expect("a queued shard");
    assert!(
        waiting.why_not_matched.contains("too little stake free"),
        "{}",
        waiting.why_not_matched
    );
    // The receipt keeps the bond until it settles, which is not before a
    // dispute could end.
    let sub = receipt_for(&s, &l[0], &a);
    let flops = sub.receipt.body.work.flops;
    let (_, settle_at) = s.submit_receipt(&sub, 100).expect("receipt");
    let worst = worst_case_dispute_ms(EPOCH, CHECK_TTL, flops);
    assert!(worst > WINDOW);
    assert_eq!(settle_at, 100 + worst);
    assert!(s.take_leases(&a.id(), 64, 200).expect("take").is_empty());
    // Twice the stake: two more shards.
    let b = key(3);
    staked(&s, &b, 64, 2 * bond);
    assert_eq!(s.take_leases(&b.id(), 64, 300).expect("take").len(), 2);
    ledger_ok(&s);

    // An unverified job bonds nothing and settles after the window alone.
    let u = job(&r, 2, 3, 0);
    s.submit_job(&u, 400).expect("job");
    let c = key(4);
    staked(&s, &c, 64, 0);
    let ul = s.take_leases(&c.id(), 64, 410).expect("take");
    assert_eq!(ul.len(), 3);
    let (_, settle_at) = s
        .submit_receipt(&receipt_for(&s, &ul[0], &c), 500)
        .expect("receipt");
    assert_eq!(settle_at, 500 + WINDOW);
    ledger_ok(&s);
}

fn a_not_sampled_receipt_frees_its_bond_when_it_settles<B: Backend>(db: Db<'_, B>) {
    // A rate so low no receipt is drawn: receipts settle after the worst
    // case of a dispute, then their bond is free again.
    let s = db(cfg());
    let r = renter(&s);
    let j = job(&r, 1, 2, 1);
    s.submit_job(&j, 0).expect("job");
    let bond = shard_bond(&s, &j.id);
    let a = key(2);
    staked(&s, &a, 8, bond);
    let l = s.take_leases(&a.id(), 8, 10).expect("take");
    assert_eq!(l.len(), 1);
    let (rid, settle_at) = s
        .submit_receipt(&receipt_for(&s, &l[0], &a), 20)
        .expect("receipt");
    s.reveal_epochs(settle_at - 1).expect("reveal");
    assert!(s.settle_due(settle_at - 1).expect("settle").is_empty());
    assert!(
        s.take_leases(&a.id(), 8, settle_at - 1)
            .expect("take")
            .is_empty()
    );
    assert_eq!(s.settle_due(settle_at).expect("settle"), vec![rid]);
    assert_eq!(
        s.take_leases(&a.id(), 8, settle_at + 1)
            .expect("take")
            .len(),
        1
    );
    ledger_ok(&s);
}

fn a_lease_ends_at_its_cap_however_often_heartbeats_renew_it<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let r = renter(&s);
    let j = job(&r, 1, 1, 0);
    s.submit_job(&j, 0).expect("job");
    let escrow = balance(&s, &ledger::escrow(&j.id));
    let a = key(2);
    staked(&s, &a, 1, 0);
    let granted = 100;
    let l = s.take_leases(&a.id(), 1, granted).expect("take");
    let cap = granted + 3 * WATCHDOG + TTL;
    assert_eq!(
        lease_col(&s, &l[0].lease_id, "cap_at"),
        Value::Int(cap as i64)
    );
    // Heartbeats every 200 ms keep renewing; the lease still ends at its cap.
    let mut now = granted;
    let mut ended_at = None;
    while now < cap + 2 * TTL {
        now += 200;
        let held = s.heartbeat(&a.id(), 0, &[], now).expect("heartbeat");
        if s.expire_leases(now).expect("expire") > 0 {
            ended_at = Some(now);
            break;
        }
        assert_eq!(held.map(|h| h.len()), Some(1), "renewed at {now}");
    }
    let ended_at = ended_at.expect("the lease ended");
    assert!(
        ended_at >= cap && ended_at < cap + 200,
        "ended at {ended_at}, cap {cap}"
    );
    let info = s.lease(&l[0].lease_id).expect("lease").expect("exists");
    assert_eq!(info.state, LeaseState::Expired);
    let reason = lease_col(&s, &l[0].lease_id, "reason");
    assert!(
        matches!(&reason, Value::Text(t) if t.contains("hard end")),
        "{reason:?}"
    );
    // Re-queued with its escrow intact, counted as an expiry.
    assert_eq!(shard_state(&s, &j.id, now), (ShardState::Queued, 1));
    assert_eq!(balance(&s, &ledger::escrow(&j.id)), escrow);
    assert_eq!(faults_and_expired(&s, &a), (0, 1));
    ledger_ok(&s);
}

fn a_lease_its_provider_does_not_hold_is_ended_and_requeued_with_escrow_intact<B: Backend>(
    db: Db<'_, B>,
) {
    let s = db(cfg());
    let r = renter(&s);
    let j = job(&r, 1, 2, 0);
    s.submit_job(&j, 0).expect("job");
    let escrow = balance(&s, &ledger::escrow(&j.id));
    let (a, b) = (key(2), key(3));
    staked(&s, &a, 4, 0);
    let l = s.take_leases(&a.id(), 2, 100).expect("take");
    assert_eq!(l.len(), 2);
    let (kept, lost) = (&l[0], &l[1]);
    // Within the grace the reply may still be on its way: nothing ends.
    assert!(
        s.end_unheld(&a.id(), &[kept.lease_id], 100 + GRACE)
            .expect("report")
            .is_empty()
    );
    let ended = s
        .end_unheld(&a.id(), &[kept.lease_id], 101 + GRACE)
        .expect("report");
    assert_eq!(ended, vec![lost.lease_id]);
    let info = s.lease(&lost.lease_id).expect("lease").expect("exists");
    assert_eq!(info.state, LeaseState::Returned);
    assert_eq!(
        lease_col(&s, &lost.lease_id, "reason"),
        Value::Text(NOT_HELD.into())
    );
    assert_eq!(
        s.lease(&kept.lease_id)
            .expect("lease")
            .expect("exists")
            .state,
        LeaseState::Active
    );
    // Nobody is charged; the escrow is intact; the heartbeat answer lists
    // only the lease kept.
    assert_eq!(faults_and_expired(&s, &a), (0, 0));
    assert_eq!(balance(&s, &ledger::escrow(&j.id)), escrow);
    let held = s
        .heartbeat(&a.id(), 0, &[], 101 + GRACE)
        .expect("heartbeat");
    assert_eq!(held, Some(vec![kept.lease_id]));
    // Its receipt is refused; the shard goes to another provider, not back
    // to this one.
    let e = s
        .submit_receipt(&receipt_for(&s, lost, &a), 200 + GRACE)
        .expect_err("ended");
    assert!(matches!(e, Error::Precondition(_)), "{e}");
    assert!(
        s.take_leases(&a.id(), 4, 300 + GRACE)
            .expect("take")
            .is_empty()
    );
    staked(&s, &b, 4, 0);
    let again = s.take_leases(&b.id(), 4, 400 + GRACE).expect("take");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].spec.shard, lost.spec.shard);
    for (l, k) in [(kept, &a), (&again[0], &b)] {
        s.submit_receipt(&receipt_for(&s, l, k), 500 + GRACE)
            .expect("receipt");
    }
    assert_eq!(s.settle_due(500 + GRACE + WINDOW).expect("settle").len(), 2);
    assert_eq!(balance(&s, &ledger::escrow(&j.id)), 0);
    ledger_ok(&s);
}

fn a_refused_receipt_is_given_back_and_its_shard_requeued<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let r = renter(&s);
    let j = job(&r, 1, 1, 0);
    s.submit_job(&j, 0).expect("job");
    let escrow = balance(&s, &ledger::escrow(&j.id));
    let (a, b) = (key(2), key(3));
    staked(&s, &a, 1, 0);
    staked(&s, &b, 1, 0);
    let l = s.take_leases(&a.id(), 1, 10).expect("take");
    let mut refused = receipt_for(&s, &l[0], &a);
    refused.failure_message = "x".repeat(assay_proto::FAILURE_MESSAGE_MAX_BYTES + 1);
    let e = s.submit_receipt(&refused, 20).expect_err("too long");
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    // The provider gives the lease back; the coordinator takes it.
    s.return_lease(
        &a.id(),
        &l[0].lease_id,
        false,
        &format!("receipt refused: {e}"),
        30,
    )
    .expect("given back");
    assert_eq!(shard_state(&s, &j.id, 40), (ShardState::Queued, 1));
    assert_eq!(balance(&s, &ledger::escrow(&j.id)), escrow);
    assert_eq!(faults_and_expired(&s, &a), (0, 0));
    // A give-back after a recorded receipt (a refused retry of it) changes nothing.
    let l2 = s.take_leases(&b.id(), 1, 50).expect("take");
    assert_eq!(l2.len(), 1);
    s.submit_receipt(&receipt_for(&s, &l2[0], &b), 60)
        .expect("receipt");
    s.return_lease(&b.id(), &l2[0].lease_id, false, "receipt refused: late", 70)
        .expect("a no-op");
    assert_eq!(
        s.lease(&l2[0].lease_id)
            .expect("lease")
            .expect("exists")
            .state,
        LeaseState::Done
    );
    assert_eq!(s.settle_due(60 + WINDOW).expect("settle").len(), 1);
    assert_eq!(balance(&s, &ledger::escrow(&j.id)), 0);
    ledger_ok(&s);
}

fn a_watchdog_attempt_pays_its_provider_a_fee_out_of_the_escrow<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let r = renter(&s);
    let j = job(&r, 1, 1, 0);
    s.submit_job(&j, 0).expect("job");
    let escrow = balance(&s, &ledger::escrow(&j.id));
    assert_eq!(escrow, 1_000);
    let (a, b) = (key(2), key(3));
    staked(&s, &a, 1, 0);
    staked(&s, &b, 1, 0);
    let l = s.take_leases(&a.id(), 1, 10).expect("take");
    let why = "provider fault (watchdog): the wall-clock watchdog fired";
    let fee = s
        .give_back(&a.id(), &l[0].lease_id, GiveBack::new(true, true, why), 20)
        .expect("given back");
    assert_eq!(fee, 300);
    // 300 out of the escrow: 270 to the provider, 30 protocol fee.
    assert_eq!(balance(&s, &ledger::escrow(&j.id)), escrow - 300);
    assert_eq!(balance(&s, &ledger::earnings(&a.id())), 270);
    assert_eq!(balance(&s, ledger::FEES), 30);
    assert_eq!(faults_and_expired(&s, &a), (0, 0), "not charged yet");
    assert_eq!(lease_col(&s, &l[0].lease_id, "watchdog"), Value::Int(1));
    // A second give-back of the same lease pays nothing more.
    assert_eq!(
        s.give_back(&a.id(), &l[0].lease_id, GiveBack::new(true, true, why), 25)
            .expect("again"),
        0
    );
    // Another provider completes it: the watchdog attempt is charged now,
    // and settlement divides what the fee left of the escrow.
    let l2 = s.take_leases(&b.id(), 1, 30).expect("take");
    let sub = receipt_for(&s, &l2[0], &b);
    s.submit_receipt(&sub, 40).expect("receipt");
    assert_eq!(faults_and_expired(&s, &a), (1, 0));
    assert_eq!(faults_and_expired(&s, &b), (0, 0));
    let before = balance(&s, &ledger::balance(Unit::Iosd, &r.id()));
    assert_eq!(s.settle_due(40 + WINDOW).expect("settle").len(), 1);
    let paid = s.receipts_after(0, 10).expect("receipts")[0]
        .paid
        .expect("settled");
    assert_eq!(balance(&s, &ledger::escrow(&j.id)), 0);
    assert_eq!(
        balance(&s, &ledger::balance(Unit::Iosd, &r.id())) - before,
        i128::from(700 - paid),
        "the refund is what the fee and the pay left"
    );
    ledger_ok(&s);
}

fn a_shard_whose_every_attempt_timed_out_charges_no_one<B: Backend>(db: Db<'_, B>) {
    let s = db(MarketConfig {
        max_attempts: 3,
        watchdog_fee: 400,
        ..cfg()
    });
    let r = renter(&s);
    let j = job(&r, 1, 1, 0);
    s.submit_job(&j, 0).expect("job");
    let start = balance(&s, &ledger::balance(Unit::Iosd, &r.id()));
    let ks = [key(2), key(3), key(4)];
    for (i, k) in ks.iter().enumerate() {
        staked(&s, k, 1, 0);
        let now = 10 + 10 * i as u64;
        let l = s.take_leases(&k.id(), 1, now).expect("take");
        assert_eq!(l.len(), 1, "attempt {i}");
        let fee = s
            .give_back(
                &k.id(),
                &l[0].lease_id,
                GiveBack::new(true, true, "watchdog"),
                now + 1,
            )
            .expect("given back");
        // 400, 400, then what is left of the 1,000.
        assert_eq!(fee, [400, 400, 200][i]);
    }
    let (state, attempts) = shard_state(&s, &j.id, 100);
    assert_eq!((state, attempts), (ShardState::Failed, 3));
    for k in &ks {
        assert_eq!(faults_and_expired(&s, k), (0, 0), "no one is charged");
    }
    // The renter paid the slots it held and got nothing more back.
    assert_eq!(balance(&s, &ledger::escrow(&j.id)), 0);
    assert_eq!(balance(&s, &ledger::balance(Unit::Iosd, &r.id())), start);
    ledger_ok(&s);

    // Two timeouts then a fault that is not a watchdog: the shard fails with
    // the rest of its escrow refunded; only the plain fault is charged.
    let j2 = job(&r, 2, 1, 0);
    s.submit_job(&j2, 200).expect("job");
    let before = balance(&s, &ledger::balance(Unit::Iosd, &r.id()));
    for (i, k) in ks.iter().enumerate() {
        let now = 210 + 10 * i as u64;
        let l = s.take_leases(&k.id(), 1, now).expect("take");
        let watchdog = i < 2;
        s.give_back(
            &k.id(),
            &l[0].lease_id,
            GiveBack::new(true, watchdog, "fault"),
            now + 1,
        )
        .expect("given back");
    }
    assert_eq!(shard_state(&s, &j2.id, 300).0, ShardState::Failed);
    assert_eq!(
        balance(&s, &ledger::balance(Unit::Iosd, &r.id())) - before,
        1_000 - 800,
        "what the fees left"
    );
    assert_eq!(faults_and_expired(&s, &ks[2]), (1, 0));
    assert_eq!(faults_and_expired(&s, &ks[0]), (0, 0));
    ledger_ok(&s);
}

fn a_returned_shard_is_not_offered_again_to_its_provider<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let r = renter(&s);
    let j = job(&r, 1, 2, 0);
    s.submit_job(&j, 0).expect("job");
    let (a, b) = (key(2), key(3));
    staked(&s, &a, 1, 0);
    let first = s.take_leases(&a.id(), 1, 10).expect("take");
    s.return_lease(&a.id(), &first[0].lease_id, false, "shutting down", 20)
        .expect("return");
    // It gets the job's other shard, never the one it gave back.
    let next = s.take_leases(&a.id(), 1, 30).expect("take");
    assert_eq!(next.len(), 1);
    assert_ne!(next[0].spec.shard, first[0].spec.shard);
    s.submit_receipt(&receipt_for(&s, &next[0], &a), 40)
        .expect("receipt");
    assert!(s.take_leases(&a.id(), 1, 50).expect("take").is_empty());
    // The renter is told why the shard waits.
    let view = s.job(&j.id, 50).expect("job").expect("exists");
    let queued = view
        .shards
        .iter()
        .find(|x| x.state == ShardState::Queued)
        .expect("the shard it gave back waits");
    assert!(
        queued
            .why_not_matched
            .ends_with("(1 online provider gave this shard back and is not offered it again)"),
        "{}",
        queued.why_not_matched
    );
    assert!(
        queued.why_not_matched.starts_with("no provider is online"),
        "{}",
        queued.why_not_matched
    );
    staked(&s, &b, 1, 0);
    let other = s.take_leases(&b.id(), 1, 60).expect("take");
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].spec.shard, first[0].spec.shard);
    ledger_ok(&s);
}

/// A lease whose provider sends no report is never ended by the report rule.
fn leases_are_ended_only_by_a_report<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let r = renter(&s);
    s.submit_job(&job(&r, 1, 1, 0), 0).expect("job");
    let a = key(2);
    staked(&s, &a, 1, 0);
    let l: Vec<Lease> = s.take_leases(&a.id(), 1, 10).expect("take");
    for now in (100..10 * GRACE).step_by(500) {
        s.heartbeat(&a.id(), 0, &[], now).expect("heartbeat");
    }
    assert_eq!(
        s.lease(&l[0].lease_id)
            .expect("lease")
            .expect("exists")
            .state,
        LeaseState::Active
    );
    ledger_ok(&s);
}

both_backends!(
    bonds_block_over_exposure_and_free_up_on_settlement,
    a_not_sampled_receipt_frees_its_bond_when_it_settles,
    a_lease_ends_at_its_cap_however_often_heartbeats_renew_it,
    a_lease_its_provider_does_not_hold_is_ended_and_requeued_with_escrow_intact,
    a_refused_receipt_is_given_back_and_its_shard_requeued,
    a_watchdog_attempt_pays_its_provider_a_fee_out_of_the_escrow,
    a_shard_whose_every_attempt_timed_out_charges_no_one,
    a_returned_shard_is_not_offered_again_to_its_provider,
    leases_are_ended_only_by_a_report,
);
