//! The economy on the store, with the clock in the test's hands: the IO
//! price feed, paying in IO, stake floors, reward epochs, unstaking, and
//! notes and bonds routing a device's earnings — each ending with the
//! ledger's own check of every supply invariant.

use crate::common::{key, ledger_ok, receipt_for};

use assay_coordinator::config::{EconomyConfig, PriceSource};
use assay_coordinator::ledger::{self, BASE, Unit, accounts};
use assay_coordinator::rules::{emission, rewards};
use assay_coordinator::sql::Backend;
use assay_coordinator::state::BondStatus;
use assay_coordinator::store::economy::Genesis;
use assay_coordinator::store::prelude::*;
use assay_coordinator::store::{Lease, NewJob, ProviderInfo};
use assay_coordinator::{Error, MarketConfig, SqlStore};
use assay_protocol::oracle::PriceReport;
use assay_protocol::{JobSpec, NodeKey};

type Db<'a, B> = &'a dyn Fn(MarketConfig) -> SqlStore<B>;

/// Epochs and hours of one second, days of 10 ms, IO at `price`.
fn cfg(price: PriceSource) -> MarketConfig {
    MarketConfig {
        lease_ttl_ms: 10_000,
        provider_liveness_ms: 10_000,
        preference_window_ms: 0,
        settlement_delay_ms: 100,
        fee_bps: 1_000,
        max_attempts: 0,
        economy: EconomyConfig {
            hour_ms: 1_000,
            reward_epoch_ms: 1_000,
            price,
            day_ms: 10,
            unstake_cooldown_ms: 5_000,
            ..EconomyConfig::default()
        },
        ..MarketConfig::default()
    }
}

fn fixed() -> MarketConfig {
    cfg(PriceSource::Fixed(BASE))
}

fn provider(k: &NodeKey, price: u64) -> ProviderInfo {
    ProviderInfo {
        id: k.id(),
        price,
        cpu_cores: 4,
        memory_bytes: 1 << 30,
        gpus: Vec::new(),
        slots: 4,
        version: "test".into(),
    }
}

fn job(renter: &NodeKey, tag: u8, max_price: u64) -> NewJob {
    crate::common::job(
        &renter.id(),
        tag,
        1,
        max_price,
        0,
        JobSpec {
            fuel: 1_000_000,
            work_budget: 9_000_000,
            memory_bytes: 1 << 20,
            gpu_memory_bytes: 1 << 20,
            ..JobSpec::default()
        },
    )
}

/// Runs one shard of a queued job on `p` at `now` and submits its receipt.
fn run_one<B: Backend>(s: &SqlStore<B>, p: &NodeKey, now: u64) -> Lease {
    let leases = s.take_leases(&p.id(), 1, now).expect("take");
    let lease = leases.into_iter().next().expect("a lease");
    s.submit_receipt(&receipt_for(s, &lease, p), now)
        .expect("receipt");
    lease
}

fn io(s: &impl Accounts, k: &NodeKey) -> u64 {
    s.account(&k.id()).expect("account").io_balance
}

fn iosd(s: &impl Accounts, k: &NodeKey) -> u64 {
    s.account(&k.id()).expect("account").balance
}

/// Only the configured oracle's fresh, newer reports set the price.
fn the_oracle_price_must_be_signed_fresh_and_newer<B: Backend>(db: Db<'_, B>) {
    let oracle = key(40);
    let s = db(cfg(PriceSource::Oracle {
        key: oracle.id(),
        max_age_ms: 1_000,
    }));
    let e = s.price(0).expect_err("no price yet");
    assert!(e.to_string().contains("no IO price yet"), "{e}");
    let report = PriceReport {
        round: 1,
        micro_iosd_per_io: 2 * BASE,
        at_ms: 100,
    };
    let forged = report.sign(&key(41));
    let e = s
        .post_price(&report, &forged, 150)
        .expect_err("foreign key");
    assert!(matches!(e, Error::PermissionDenied(_)), "{e}");
    s.post_price(&report, &report.sign(&oracle), 150)
        .expect("the oracle's report");
    assert_eq!(s.price(500).expect("fresh").micro_iosd_per_io, 2 * BASE);
    let e = s.price(1_200).expect_err("stale");
    assert!(e.to_string().contains("stale"), "{e}");
    let e = s
        .post_price(&report, &report.sign(&oracle), 200)
        .expect_err("same round");
    assert!(matches!(e, Error::Precondition(_)), "{e}");
    let old = PriceReport {
        round: 2,
        at_ms: 100,
        ..report
    };
    let e = s
        .post_price(&old, &old.sign(&oracle), 5_000)
        .expect_err("stale report");
    assert!(e.to_string().contains("stale"), "{e}");
    // Converting needs the fresh price: the IOSD faucet is refused now.
    let e = s.mint(&key(1).id(), 10, "m", 5_000).expect_err("stale");
    assert!(matches!(e, Error::Precondition(_)), "{e}");
    ledger_ok(&s);
}

/// A job paid in IO burns exactly the IO whose price buys its escrow.
fn paying_in_io_burns_it_at_the_price<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg(PriceSource::Fixed(3 * BASE)));
    let r = key(1);
    s.faucet(&r.id(), Unit::Io, 1_000 * BASE, "io", 0)
        .expect("IO");
    let j = NewJob {
        pay_in: Unit::Io,
        ..job(&r, 1, 100)
    };
    let sub = s.submit_job(&j, 1).expect("job");
    let burned = accounts::io_for_iosd(sub.escrow, 3 * BASE).expect("fits");
    assert_eq!(sub.io_burned, burned);
    assert_eq!(io(&s, &r), 1_000 * BASE - burned);
    let supply = s.supply().expect("supply");
    assert_eq!(supply.io.burned, burned);
    assert_eq!(
        supply.iosd.minted,
        accounts::iosd_for_io(burned, 3 * BASE).expect("fits")
    );
    // What the conversion minted beyond the escrow stays the renter's.
    assert_eq!(iosd(&s, &r), supply.iosd.minted - sub.escrow);
    let e = s
        .submit_job(
            &NewJob {
                pay_in: Unit::Io,
                ..job(&key(2), 2, 100)
            },
            2,
        )
        .expect_err("no IO");
    assert!(e.to_string().contains("burns"), "{e}");
    ledger_ok(&s);
    assert_eq!(
        s.verify_ledger().expect("verify").supply,
        s.supply().expect("supply")
    );
}

/// A provider below its devices' floor registers but is not hired.
fn providers_below_the_stake_floor_are_not_hired<B: Backend>(db: Db<'_, B>) {
    let mut c = fixed();
    c.economy.stake_per_device = 200 * BASE;
    let s = db(c);
    let (rich, poor, r) = (key(2), key(3), key(1));
    s.faucet(&rich.id(), Unit::Io, 1_000 * BASE, "io/rich", 0)
        .expect("IO");
    s.faucet(&poor.id(), Unit::Io, 5 * BASE, "io/poor", 0)
        .expect("IO");
    // 4 cores: one 16-core class, ×0.05 of 200 IO.
    assert_eq!(
        s.register(&provider(&rich, 10), 0, 0).expect("rich").stake,
        10 * BASE
    );
    assert_eq!(
        s.register(&provider(&poor, 5), 0, 0).expect("poor").stake,
        0
    );
    assert_eq!(s.account(&poor.id()).expect("poor").stake_floor, 10 * BASE);
    s.mint(&r.id(), 1_000 * BASE, "m", 0).expect("IOSD");
    s.submit_job(&job(&r, 1, 100), 1).expect("job");
    assert!(s.take_leases(&poor.id(), 1, 2).expect("poor").is_empty());
    assert_eq!(s.take_leases(&rich.id(), 1, 3).expect("rich").len(), 1);
    ledger_ok(&s);
}

/// Each epoch emits its part of the schedule, split by work and uptime,
/// and pays all of it.
fn reward_epochs_pay_their_emission_by_work_and_uptime<B: Backend>(db: Db<'_, B>) {
    let s = db(fixed());
    s.post_genesis(&Genesis::default(), 0).expect("genesis");
    let (a, b, r) = (key(2), key(3), key(1));
    s.register(&provider(&a, 10), 0, 0).expect("a");
    s.register(&provider(&b, 10), 0, 0).expect("b");
    s.mint(&r.id(), 1_000 * BASE, "m", 0).expect("IOSD");
    s.submit_job(&job(&r, 1, 100), 1).expect("job");
    run_one(&s, &a, 10);
    s.heartbeat(&a.id(), 4, &[], 400).expect("hb");
    s.heartbeat(&b.id(), 4, &[], 800).expect("hb");
    assert_eq!(s.settle_due(300).expect("settle").len(), 1);
    assert_eq!(s.close_reward_epochs(999).expect("not yet"), 0);
    assert_eq!(s.close_reward_epochs(1_000).expect("close"), 1);
    let e = &s.reward_epochs(None, 10).expect("epochs")[0];
    assert_eq!(e.epoch, 0);
    assert_eq!(e.scheduled, emission::epoch_emission(0, 1_000, 1_000));
    assert_eq!(e.scheduled, emission::emitted_by_hour(1));
    assert_eq!(e.emitted, e.scheduled);
    assert_eq!((e.nominated, e.paid, e.failed), (2, 2, 0));
    let cands: Vec<rewards::Candidate> = e
        .payouts
        .iter()
        .map(|p| rewards::Candidate {
            work_units: p.work_units,
            uptime_ms: p.uptime_ms,
            hardware_ok: true,
            failed: p.failed,
        })
        .collect();
    let want = rewards::split(e.scheduled, &cands, rewards::WORK_BPS);
    for (p, amount) in e.payouts.iter().zip(&want) {
        assert_eq!(p.amount, *amount);
        assert_eq!(s.account(&p.provider).expect("acct").rewards, *amount);
    }
    let pa = e.payouts.iter().find(|p| p.provider == a.id()).expect("a");
    assert!(pa.work_units > 0 && pa.uptime_ms == 400, "{pa:?}");
    let pb = e.payouts.iter().find(|p| p.provider == b.id()).expect("b");
    assert!(pb.work_units == 0 && pb.uptime_ms == 800, "{pb:?}");
    assert!(pa.amount > pb.amount, "work earns the larger pool");
    // Closing again (another replica) changes nothing.
    assert_eq!(s.close_reward_epochs(1_500).expect("again"), 0);
    let supply = s.supply().expect("supply");
    assert_eq!(supply.io.emitted, e.emitted);
    ledger_ok(&s);
}

/// During a note's term, 0.9 of the device's block rewards and pay go to
/// the share holders pro rata.
fn a_note_sends_nine_tenths_of_the_device_earnings_to_its_holders<B: Backend>(db: Db<'_, B>) {
    let s = db(fixed());
    s.post_genesis(&Genesis::default(), 0).expect("genesis");
    let (a, h, r) = (key(2), key(5), key(1));
    s.register(&provider(&a, 200), 0, 0).expect("a");
    // 150 days of 10 ms: the term ends at 1,500.
    let note = s.issue_note(&a.id(), 100, 150, 0).expect("note");
    assert_eq!(note.holdings, vec![(a.id(), 100)]);
    let e = s.issue_note(&a.id(), 10, 30, 0).expect_err("one at a time");
    assert!(matches!(e, Error::Precondition(_)), "{e}");
    // a sells 60 shares to h at 0.1 IO each.
    s.offer_shares(&a.id(), &note.id, 60, BASE / 10)
        .expect("offer");
    s.faucet(&h.id(), Unit::Io, 100 * BASE, "io/h", 0)
        .expect("IO");
    let e = s
        .buy_shares(&h.id(), &note.id, &a.id(), 60, BASE / 20, "buy0", 0)
        .expect_err("dearer than the buyer's limit");
    assert!(matches!(e, Error::Precondition(_)), "{e}");
    let note = s
        .buy_shares(&h.id(), &note.id, &a.id(), 60, BASE / 10, "buy1", 0)
        .expect("buy");
    assert_eq!(io(&s, &h), 100 * BASE - 6 * BASE);
    assert_eq!(io(&s, &a), 6 * BASE);
    assert!(note.holdings.contains(&(h.id(), 60)));
    assert!(note.offers.is_empty(), "the offer is sold out");
    // Pay for a receipt.
    s.mint(&r.id(), 1_000 * BASE, "m", 0).expect("IOSD");
    s.submit_job(&job(&r, 1, 1_000), 1).expect("job");
    run_one(&s, &a, 10);
    s.settle_due(250).expect("settle");
    let (earn, a_iosd, h_iosd) = (
        s.account(&a.id()).expect("a").earnings,
        iosd(&s, &a),
        iosd(&s, &h),
    );
    let pay = earn + a_iosd + h_iosd;
    assert!(pay > 0);
    assert_eq!(h_iosd, pay * 9 * 60 / 1_000, "0.9 × 60/100 to h");
    assert_eq!(a_iosd, pay * 9 * 40 / 1_000, "0.9 × 40/100 to a as holder");
    // And the epoch's block reward.
    s.close_reward_epochs(1_000).expect("close");
    let paid = s.reward_epochs(None, 1).expect("epochs")[0].payouts[0].amount;
    assert!(paid > 0);
    assert_eq!(io(&s, &h), 94 * BASE + paid * 9 * 60 / 1_000);
    // After the term the operator keeps everything.
    s.submit_job(&job(&r, 2, 1_000), 2_000).expect("job");
    run_one(&s, &a, 2_000);
    s.settle_due(2_200).expect("settle");
    assert_eq!(iosd(&s, &h), h_iosd, "the term is over");
    assert!(s.account(&a.id()).expect("a").earnings > earn);
    ledger_ok(&s);
}

/// A bond's coupons and principal come out of the device's pay before the
/// operator's; a full escrow repays the holders at maturity.
fn a_bond_is_repaid_from_the_device_earnings<B: Backend>(db: Db<'_, B>) {
    let s = db(fixed());
    let (a, b, r) = (key(2), key(6), key(1));
    s.register(&provider(&a, 200), 0, 0).expect("a");
    // 100 µIOSD at 10 %/year for 365 days (3,650 ms): 10 of coupons.
    let bond = s.issue_bond(&a.id(), 100, 1_000, 365, 0).expect("bond");
    s.mint(&b.id(), 1_000, "mb", 0).expect("IOSD");
    let e = s
        .buy_bond(&b.id(), &bond.id, 101, "x", 0)
        .expect_err("over");
    assert!(matches!(e, Error::Precondition(_)), "{e}");
    let bond = s.buy_bond(&b.id(), &bond.id, 100, "buy", 0).expect("buy");
    assert_eq!((bond.sold, bond.coupon_total), (100, 10));
    assert_eq!(iosd(&s, &a), 100, "the operator raised 100 µIOSD");
    s.mint(&r.id(), 1_000 * BASE, "m", 0).expect("IOSD");
    s.submit_job(&job(&r, 1, 1_000), 1).expect("job");
    run_one(&s, &a, 10);
    s.settle_due(300).expect("settle");
    let bond = s.bond(&bond.id).expect("read").expect("bond");
    assert_eq!((bond.coupon_paid, bond.escrowed), (10, 100));
    assert_eq!(iosd(&s, &b), 1_000 - 100 + 10, "the coupon");
    assert_eq!(s.mature_bonds(3_000).expect("not yet"), 0);
    assert_eq!(s.mature_bonds(3_650).expect("mature"), 1);
    let bond = s.bond(&bond.id).expect("read").expect("bond");
    assert_eq!(bond.state, BondStatus::Repaid);
    assert_eq!(iosd(&s, &b), 1_000 + 10, "principal back, plus the coupon");
    ledger_ok(&s);
}

/// A short escrow at maturity is a default: the holders take the escrow
/// and the device's whole stake — unbonding IO included — pro rata.
fn a_bond_in_default_hands_the_stake_to_its_holders<B: Backend>(db: Db<'_, B>) {
    let s = db(fixed());
    let (a, h1, h2) = (key(2), key(7), key(8));
    s.faucet(&a.id(), Unit::Io, 1_000, "io/a", 0).expect("IO");
    s.register(&provider(&a, 200), 1_000, 0).expect("a");
    let acct = s.unstake(&a.id(), 400, "unstake", 1).expect("unstake");
    assert_eq!((acct.stake, acct.unbonding), (600, 400));
    let bond = s.issue_bond(&a.id(), 300, 0, 10, 0).expect("bond");
    for (k, amount) in [(&h1, 200), (&h2, 100)] {
        s.mint(&k.id(), amount, &format!("m/{}", k.id()), 0)
            .expect("IOSD");
        s.buy_bond(&k.id(), &bond.id, amount, &format!("buy/{}", k.id()), 0)
            .expect("buy");
    }
    assert_eq!(s.mature_bonds(100).expect("mature"), 1);
    let bond = s.bond(&bond.id).expect("read").expect("bond");
    assert_eq!(bond.state, BondStatus::Defaulted);
    assert_eq!(bond.shortfall, 300);
    // 2/3 and 1/3 of the 1,000 µIO staked and unbonding; the rounding µIO
    // goes to one of them.
    assert_eq!(io(&s, &h1) + io(&s, &h2), 1_000);
    assert!((666..=667).contains(&io(&s, &h1)), "{}", io(&s, &h1));
    let acct = s.account(&a.id()).expect("a");
    assert_eq!((acct.stake, acct.unbonding), (0, 0));
    ledger_ok(&s);
}

/// Unstaked IO waits out the cooldown, then is spendable.
fn unstaked_io_is_released_after_the_cooldown<B: Backend>(db: Db<'_, B>) {
    let s = db(fixed());
    let a = key(2);
    s.faucet(&a.id(), Unit::Io, 1_000, "io", 0).expect("IO");
    s.stake(&a.id(), 1_000, "stake", 0).expect("stake");
    let e = s
        .unstake(&a.id(), 1_001, "u0", 1)
        .expect_err("more than staked");
    assert!(matches!(e, Error::Precondition(_)), "{e}");
    let acct = s.unstake(&a.id(), 250, "u1", 1).expect("unstake");
    assert_eq!(acct.unbonding_release_ms, Some(5_001));
    assert_eq!(s.release_unbonded(5_000).expect("early"), 0);
    assert_eq!(io(&s, &a), 0);
    assert_eq!(s.release_unbonded(5_001).expect("release"), 1);
    let acct = s.account(&a.id()).expect("a");
    assert_eq!((acct.io_balance, acct.stake, acct.unbonding), (250, 750, 0));
    ledger_ok(&s);
}

/// The whole genesis is posted once and a different one is refused.
fn genesis_is_posted_once<B: Backend>(db: Db<'_, B>) {
    let s = db(fixed());
    s.post_genesis(&Genesis::default(), 7).expect("genesis");
    assert_eq!(s.post_genesis(&Genesis::default(), 9).expect("again"), 7);
    let other = Genesis {
        allocations: vec![("treasury".into(), ledger::GENESIS_ALLOCATION)],
    };
    let e = s.post_genesis(&other, 9).expect_err("another genesis");
    assert!(matches!(e, Error::Precondition(_)), "{e}");
    let supply = s.supply().expect("supply");
    assert_eq!(supply.io.cap, ledger::IO_CAP);
    assert_eq!(supply.io.genesis, ledger::GENESIS_ALLOCATION);
    assert_eq!(supply.io.unemitted, ledger::REWARD_POOL);
    ledger_ok(&s);
}

both_backends!(
    the_oracle_price_must_be_signed_fresh_and_newer,
    paying_in_io_burns_it_at_the_price,
    providers_below_the_stake_floor_are_not_hired,
    reward_epochs_pay_their_emission_by_work_and_uptime,
    a_note_sends_nine_tenths_of_the_device_earnings_to_its_holders,
    a_bond_is_repaid_from_the_device_earnings,
    a_bond_in_default_hands_the_stake_to_its_holders,
    unstaked_io_is_released_after_the_cooldown,
    genesis_is_posted_once,
);
