//! The store suite: every test runs on SQLite and on PostgreSQL (when
//! `ASSAY_TEST_POSTGRES_URL` is set), against real databases.

use crate::common::{key, ledger_ok, receipt_for};

use assay_coordinator::ledger::{Entry, Unit};
use assay_coordinator::sql::{Backend, Value};
use assay_coordinator::state::{JobState, ShardState};
use assay_coordinator::store::prelude::*;
use assay_coordinator::store::{Lease, NewJob, ProviderInfo, ReceiptSubmission, RunResult};
use assay_coordinator::{Error, MarketConfig, SqlStore, schema};
use assay_protocol::{BlobRef, Hash32, JobSpec, NodeKey, Outcome, WorkDone, outputs_root};

type Db<'a, B> = &'a dyn Fn(MarketConfig) -> SqlStore<B>;

fn cfg() -> MarketConfig {
    MarketConfig {
        lease_ttl_ms: 1_000,
        provider_liveness_ms: 10_000,
        preference_window_ms: 0,
        settlement_delay_ms: 500,
        fee_bps: 1_000,
        max_attempts: 0,
        ..MarketConfig::default()
    }
}

pub(crate) fn provider(k: &NodeKey, price: u64, memory: u64) -> ProviderInfo {
    ProviderInfo {
        id: k.id(),
        price,
        cpu_cores: 4,
        memory_bytes: memory,
        gpus: Vec::new(),
        slots: 4,
        version: "test".into(),
    }
}

pub(crate) fn spec() -> JobSpec {
    JobSpec {
        fuel: 1_000_000,
        work_budget: 9_000_000,
        memory_bytes: 1 << 20,
        gpu_memory_bytes: 1 << 20,
        ..JobSpec::default()
    }
}

fn new_job(renter: &NodeKey, tag: u8, shards: u32, max_price: u64) -> NewJob {
    crate::common::job(&renter.id(), tag, shards, max_price, 0, spec())
}

fn ledger_mint_stake_and_overdraft<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let a = key(1);
    assert_eq!(
        s.mint(&a.id(), 1_000, "m1", 1).expect("mint").balance,
        1_000
    );
    assert_eq!(
        s.mint(&a.id(), 1_000, "m1", 2).expect("dup").balance,
        1_000,
        "same reference mints once"
    );
    // Stakes are IO.
    let e = s.stake(&a.id(), 1, "s0", 3).expect_err("no IO yet");
    assert!(matches!(e, Error::Precondition(_)), "{e}");
    s.faucet(&a.id(), Unit::Io, 1_000, "io1", 3)
        .expect("IO faucet");
    let acct = s.stake(&a.id(), 400, "s1", 3).expect("stake");
    assert_eq!(
        (acct.io_balance, acct.stake, acct.balance),
        (600, 400, 1_000)
    );
    let e = s.stake(&a.id(), 601, "s2", 4).expect_err("overdraft");
    assert!(matches!(e, Error::Precondition(_)), "{e}");
    assert!(e.to_string().contains("600"), "{e}");
    assert_eq!(
        s.account(&a.id()).expect("account").io_balance,
        600,
        "a refused movement changes nothing"
    );
    ledger_ok(&s);
}

fn escrow_covers_max_price_times_budgets<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let r = key(1);
    s.mint(&r.id(), 1_999, "m", 0).expect("mint");
    // 100 µIOSD/Munit × (1M fuel + 9M work) = 1000 µIOSD per shard.
    let e = s
        .submit_job(&new_job(&r, 1, 2, 100), 1)
        .expect_err("2000 > 1999");
    assert!(matches!(e, Error::Precondition(_)));
    assert!(
        e.to_string().contains("2000") && e.to_string().contains("faucet"),
        "{e}"
    );
    s.mint(&r.id(), 1, "m2", 0).expect("mint");
    let sub = s.submit_job(&new_job(&r, 1, 2, 100), 1).expect("accepted");
    assert_eq!(sub.escrow, 2_000);
    assert_eq!(sub.shard_job_ids.len(), 2);
    assert_ne!(sub.shard_job_ids[0], sub.shard_job_ids[1]);
    assert_eq!(s.account(&r.id()).expect("acct").balance, 0);
    let e = s
        .submit_job(&new_job(&r, 1, 2, 100), 1)
        .expect_err("same id");
    assert!(matches!(e, Error::AlreadyExists(_)), "{e}");
    let view = s
        .job(&new_job(&r, 1, 2, 100).id, 2)
        .expect("job")
        .expect("exists");
    assert_eq!(view.state(), JobState::Queued);
    assert_eq!(view.shards[0].why_not_matched, "no provider is online");
    ledger_ok(&s);
}

fn matching_respects_hardware_price_and_prefers_cheapest<B: Backend>(db: Db<'_, B>) {
    let s = db(MarketConfig {
        preference_window_ms: 5_000,
        ..cfg()
    });
    let r = key(1);
    let (small, dear, cheap) = (key(2), key(3), key(4));
    s.mint(&r.id(), 1_000_000, "m", 0).expect("mint");
    s.register(&provider(&small, 1, 1 << 10), 0, 0)
        .expect("reg");
    s.register(&provider(&dear, 500, 1 << 30), 0, 0)
        .expect("reg");
    s.submit_job(&new_job(&r, 1, 1, 100), 10).expect("job");
    assert!(
        s.take_leases(&small.id(), 4, 20).expect("take").is_empty(),
        "too little memory"
    );
    assert!(
        s.take_leases(&dear.id(), 4, 20).expect("take").is_empty(),
        "above max price"
    );
    let view = s
        .job(&new_job(&r, 1, 1, 100).id, 30)
        .expect("job")
        .expect("exists");
    assert!(
        view.shards[0].why_not_matched.contains("max price"),
        "{}",
        view.shards[0].why_not_matched
    );

    s.register(&provider(&dear, 50, 1 << 30), 0, 40)
        .expect("cheaper now");
    s.register(&provider(&cheap, 10, 1 << 30), 0, 40)
        .expect("reg");
    // Within the preference window the cheaper online provider gets it.
    assert!(
        s.take_leases(&dear.id(), 4, 1_000)
            .expect("take")
            .is_empty(),
        "cheap goes first"
    );
    let got = s.take_leases(&cheap.id(), 4, 1_000).expect("take");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].price, 10);
    // Past the window, anyone who fits takes what is left.
    s.submit_job(&new_job(&r, 2, 1, 100), 2_000).expect("job");
    assert!(
        s.take_leases(&dear.id(), 4, 2_100)
            .expect("take")
            .is_empty()
    );
    assert_eq!(s.take_leases(&dear.id(), 4, 7_500).expect("take").len(), 1);
}

fn staked_renters_queue_first<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (plain, staked, a) = (key(1), key(5), key(2));
    s.mint(&plain.id(), 1_000_000, "m1", 0).expect("mint");
    s.mint(&staked.id(), 1_000_000, "m2", 0).expect("mint");
    s.faucet(&staked.id(), Unit::Io, 1, "io", 0).expect("IO");
    s.stake(&staked.id(), 1, "s", 0).expect("stake");
    s.register(&provider(&a, 10, 1 << 30), 0, 0).expect("reg");
    s.submit_job(&new_job(&plain, 1, 1, 100), 10)
        .expect("first in time");
    s.submit_job(&new_job(&staked, 2, 1, 100), 20)
        .expect("staked, later");
    let l = s.take_leases(&a.id(), 1, 30).expect("take");
    assert_eq!(
        l[0].job_id,
        new_job(&staked, 2, 1, 100).id,
        "the staked renter's job goes first"
    );
    let l = s.take_leases(&a.id(), 1, 30).expect("take");
    assert_eq!(l[0].job_id, new_job(&plain, 1, 1, 100).id);
}

fn shards_spread_across_providers<B: Backend>(db: Db<'_, B>) {
    let s = db(MarketConfig {
        preference_window_ms: 5_000,
        ..cfg()
    });
    let r = key(1);
    let (a, b) = (key(2), key(3));
    s.mint(&r.id(), 1_000_000, "m", 0).expect("mint");
    s.register(&provider(&a, 10, 1 << 30), 0, 0).expect("reg");
    s.register(&provider(&b, 10, 1 << 30), 0, 0).expect("reg");
    s.submit_job(&new_job(&r, 1, 2, 100), 10).expect("job");
    let first = s.take_leases(&a.id(), 4, 20).expect("a");
    let second = s.take_leases(&b.id(), 4, 20).expect("b");
    assert_eq!((first.len(), second.len()), (1, 1), "one shard each");
    assert_ne!(first[0].spec.shard.index, second[0].spec.shard.index);
    let view = s
        .job(&new_job(&r, 1, 2, 100).id, 30)
        .expect("job")
        .expect("exists");
    assert_eq!(view.state(), JobState::Running);
}

fn expired_lease_requeues_and_only_one_receipt_pays<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let r = key(1);
    let (a, b) = (key(2), key(3));
    s.mint(&r.id(), 10_000, "m", 0).expect("mint");
    s.register(&provider(&a, 50, 1 << 30), 0, 0).expect("reg");
    s.register(&provider(&b, 50, 1 << 30), 0, 0).expect("reg");
    let job = new_job(&r, 1, 2, 100);
    s.submit_job(&job, 0).expect("job");

    let la = s.take_leases(&a.id(), 1, 10).expect("a");
    assert_eq!(la.len(), 1);
    // A heartbeat renews the lease: not expired at 10 + 1000.
    assert!(s.heartbeat(&a.id(), 0, &[], 500).expect("hb").is_some());
    assert_eq!(s.expire_leases(1_100).expect("expire"), 0);
    // A vanishes: at 1_500 + its lease is gone, the shard back in the queue.
    assert_eq!(s.expire_leases(1_600).expect("expire"), 1);
    let e = s
        .submit_receipt(&receipt_for(&s, &la[0], &a), 1_700)
        .expect_err("expired lease");
    assert!(matches!(e, Error::Precondition(_)), "{e}");
    assert!(e.to_string().contains("expired"), "{e}");

    let lb = s.take_leases(&b.id(), 4, 1_700).expect("b");
    assert_eq!(lb.len(), 2, "b takes both shards (no preference window)");
    let mut settle_at = 0;
    for l in &lb {
        let sub = receipt_for(&s, l, &b);
        let (rid, at) = s.submit_receipt(&sub, 1_800).expect("receipt");
        assert_eq!(
            s.submit_receipt(&sub, 1_900).expect("retry"),
            (rid, at),
            "a retry gets the same answer"
        );
        settle_at = at;
    }
    assert_eq!(settle_at, 2_300);
    let view = s.job(&job.id, 2_000).expect("job").expect("exists");
    assert_eq!(view.state(), JobState::Done);
    assert!(view.result_root().is_some());
    assert!(s.settle_due(2_299).expect("early").is_empty());
    assert_eq!(s.settle_due(2_300).expect("settle").len(), 2);
    assert!(
        s.settle_due(9_999).expect("again").is_empty(),
        "settles once"
    );
    assert_eq!(
        s.job(&job.id, 3_000).expect("job").expect("exists").state(),
        JobState::Settled
    );

    // 50 µIOSD/Munit × 2M units = 100 per shard; fee 10% = 10; refund 900 per shard.
    assert_eq!(s.account(&b.id()).expect("b").earnings, 180);
    assert_eq!(s.account(&a.id()).expect("a").earnings, 0);
    assert_eq!(
        s.account(&r.id()).expect("r").balance,
        10_000 - 2_000 + 1_800
    );
    let report = s.verify_ledger().expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.balances.get("iosd/fees").copied(), Some(20));
    assert_eq!(
        report
            .balances
            .get(&format!("iosd/escrow:{}", job.id))
            .copied(),
        Some(0)
    );
    let providers = s.providers(3_000).expect("providers");
    let pa = providers.iter().find(|p| p.id == a.id()).expect("a");
    let pb = providers.iter().find(|p| p.id == b.id()).expect("b");
    assert_eq!((pa.expired, pb.completed), (1, 2));
    assert!(pa.reliability_permille < pb.reliability_permille);
}

fn returned_lease_requeues_and_faults_lower_reliability<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let r = key(1);
    let a = key(2);
    s.mint(&r.id(), 10_000, "m", 0).expect("mint");
    s.register(&provider(&a, 50, 1 << 30), 0, 0).expect("reg");
    s.submit_job(&new_job(&r, 1, 1, 100), 0).expect("job");
    let l = s.take_leases(&a.id(), 1, 10).expect("take");
    s.return_lease(&a.id(), &l[0].lease_id, true, "device fault", 20)
        .expect("return");
    let e = s
        .submit_receipt(&receipt_for(&s, &l[0], &a), 30)
        .expect_err("returned");
    assert!(e.to_string().contains("returned"), "{e}");
    // A shard is not offered again to a provider that gave it back.
    assert!(s.take_leases(&a.id(), 1, 35).expect("take").is_empty());
    let b = key(3);
    s.register(&provider(&b, 50, 1 << 30), 0, 36).expect("reg");
    let again = s.take_leases(&b.id(), 1, 40).expect("take again");
    assert_eq!(again.len(), 1);
    assert_ne!(
        again[0].lease_id, l[0].lease_id,
        "a new lease for the second attempt"
    );
    let providers = s.providers(50).expect("providers");
    let p = providers.iter().find(|p| p.id == a.id()).expect("a");
    assert_eq!(p.faults, 1);
    assert!(p.reliability_permille < 500);
}

fn a_shard_that_keeps_failing_is_given_up_and_refunded<B: Backend>(db: Db<'_, B>) {
    let s = db(MarketConfig {
        max_attempts: 2,
        ..cfg()
    });
    let r = key(1);
    let a = key(2);
    s.mint(&r.id(), 10_000, "m", 0).expect("mint");
    s.register(&provider(&a, 50, 1 << 30), 0, 0).expect("reg");
    let job = new_job(&r, 1, 2, 100);
    s.submit_job(&job, 0).expect("job");
    assert_eq!(s.account(&r.id()).expect("acct").balance, 8_000);
    // Shard 0: a fault, then an expired lease → failed. Shard 1 succeeds.
    let l = s.take_leases(&a.id(), 2, 10).expect("take");
    assert_eq!(l.len(), 2);
    let (l0, l1) = if l[0].spec.shard.index == 0 {
        (&l[0], &l[1])
    } else {
        (&l[1], &l[0])
    };
    s.submit_receipt(&receipt_for(&s, l1, &a), 20)
        .expect("receipt");
    s.return_lease(&a.id(), &l0.lease_id, true, "device fault", 30)
        .expect("return");
    // The second attempt goes to another provider (a shard is not offered
    // again to one that gave it back).
    let b = key(3);
    s.register(&provider(&b, 50, 1 << 30), 0, 35).expect("reg");
    let again = s.take_leases(&b.id(), 1, 40).expect("again");
    assert_eq!(again.len(), 1);
    assert_eq!(s.expire_leases(5_000).expect("expire"), 1);
    assert!(
        s.take_leases(&b.id(), 1, 5_100)
            .expect("none left")
            .is_empty()
    );
    let view = s.job(&job.id, 5_200).expect("job").expect("exists");
    assert_eq!(view.shards[0].state, ShardState::Failed);
    assert!(
        view.shards[0].why_not_matched.contains("gave up"),
        "{}",
        view.shards[0].why_not_matched
    );
    assert_eq!(view.state(), JobState::Failed);
    assert!(view.result_root().is_none());
    // The failed shard's escrow came back; the other settles as usual.
    assert_eq!(s.account(&r.id()).expect("acct").balance, 9_000);
    assert_eq!(s.settle_due(10_000).expect("settle").len(), 1);
    assert_eq!(s.account(&r.id()).expect("acct").balance, 9_000 + 900);
    ledger_ok(&s);
}

fn receipts_are_checked_against_the_lease<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let r = key(1);
    let (a, b) = (key(2), key(3));
    s.mint(&r.id(), 10_000, "m", 0).expect("mint");
    s.register(&provider(&a, 50, 1 << 30), 0, 0).expect("reg");
    s.register(&provider(&b, 50, 1 << 30), 0, 0).expect("reg");
    s.submit_job(&new_job(&r, 1, 1, 100), 0).expect("job");
    let l = s.take_leases(&a.id(), 1, 10).expect("take");
    let mut stolen = receipt_for(&s, &l[0], &b);
    let e = s.submit_receipt(&stolen, 20).expect_err("not b's lease");
    assert!(matches!(e, Error::PermissionDenied(_)), "{e}");
    stolen.lease_id = Hash32([9; 32]);
    let e = s.submit_receipt(&stolen, 20).expect_err("no such lease");
    assert!(matches!(e, Error::NotFound(_)), "{e}");
    let e = s
        .return_lease(&b.id(), &l[0].lease_id, false, "", 20)
        .expect_err("not b's");
    assert!(matches!(e, Error::PermissionDenied(_)), "{e}");
    assert!(s.take_leases(&key(9).id(), 1, 20).is_err(), "unregistered");
}

/// Found by the load bench: two market jobs of one content, leased to one
/// provider, answered with one byte-identical receipt — the second insert
/// was a database error (a unique key) that the provider retried for
/// minutes as an outage. Now it is refused: one receipt answers one lease.
fn one_receipt_answers_one_lease<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a) = (key(1), key(2));
    s.mint(&r.id(), 10_000, "m", 0).expect("mint");
    s.register(&provider(&a, 50, 1 << 30), 0, 0).expect("reg");
    let first = new_job(&r, 1, 1, 100);
    let second = NewJob {
        id: Hash32([77; 32]),
        ..first.clone()
    };
    s.submit_job(&first, 0).expect("job");
    s.submit_job(&second, 0).expect("the same work again");
    let l = s.take_leases(&a.id(), 2, 10).expect("take");
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].shard_job_id, l[1].shard_job_id, "one content");
    let answer = receipt_for(&s, &l[0], &a);
    s.submit_receipt(&answer, 20).expect("first lease");
    let mut reused = receipt_for(&s, &l[1], &a);
    assert_eq!(reused.receipt.id(), answer.receipt.id(), "byte-identical");
    let e = s
        .submit_receipt(&reused, 20)
        .expect_err("one receipt, two leases");
    assert!(matches!(e, Error::AlreadyExists(_)), "{e}");
    // A receipt of its own run (a later finish) is taken.
    reused.receipt.body.finished_at_ms += 1;
    reused.receipt = reused.receipt.body.clone().sign(&a).expect("sign");
    s.submit_receipt(&reused, 21)
        .expect("second lease, own receipt");
    ledger_ok(&s);
}

/// `k`'s receipt for `lease` of a run that ran out of fuel, with `message`
/// beside it.
fn failed_receipt_for<B: Backend>(
    store: &SqlStore<B>,
    lease: &Lease,
    k: &NodeKey,
    message: &str,
) -> ReceiptSubmission {
    let record = br#"{"error":"fuel-exhausted","kind":"fuel-exhausted","version":1}"#;
    let result = RunResult {
        outputs_root: outputs_root([("error", &record[..])]),
        outcome: Outcome::FuelExhausted,
        fuel_used: 1_000_000,
        work: WorkDone::default(),
    };
    let outputs = vec![BlobRef {
        name: "error".into(),
        hash: Hash32::of(record),
        size: record.len() as u64,
    }];
    let mut sub = crate::common::submission(store, lease, k, &result, outputs);
    sub.failure_message = message.to_owned();
    sub
}

/// A failed run's message is kept beside its receipt and read back with it
/// (the receipt feed and the job view); one longer than is kept is refused
/// and records nothing; a success has none.
fn a_failure_message_is_kept_beside_the_receipt<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let r = key(1);
    let a = key(2);
    s.mint(&r.id(), 10_000, "m", 0).expect("mint");
    s.register(&provider(&a, 50, 1 << 30), 0, 0).expect("reg");
    let job = new_job(&r, 1, 3, 100);
    s.submit_job(&job, 0).expect("job");
    let l = s.take_leases(&a.id(), 3, 10).expect("take");
    assert_eq!(l.len(), 3);

    let max = assay_proto::FAILURE_MESSAGE_MAX_BYTES;
    let too_long = failed_receipt_for(&s, &l[0], &a, &"x".repeat(max + 1));
    let e = s.submit_receipt(&too_long, 20).expect_err("too long");
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.to_string().contains("failure message"), "{e}");
    assert!(s.receipts_after(0, 10).expect("receipts").is_empty());

    let message = format!(
        "fuel exhausted: wasm trap: all fuel consumed
{}",
        "é".repeat(100)
    );
    let failed = failed_receipt_for(&s, &l[0], &a, &message);
    let id = failed.receipt.id();
    s.submit_receipt(&failed, 20).expect("failed receipt");
    s.submit_receipt(&receipt_for(&s, &l[1], &a), 20)
        .expect("success");
    let at_limit = "y".repeat(max);
    s.submit_receipt(&failed_receipt_for(&s, &l[2], &a, &at_limit), 20)
        .expect("a message of exactly the limit");

    let feed = s.receipts_after(0, 10).expect("receipts");
    assert_eq!(feed.len(), 3);
    assert_eq!(feed[0].id, id);
    assert_eq!(feed[0].failure_message, message);
    assert_eq!(feed[1].failure_message, "");
    assert_eq!(feed[2].failure_message, at_limit);
    let view = s.job(&job.id, 30).expect("job").expect("exists");
    let shard_message = |i: usize| {
        view.shards[i]
            .receipt
            .as_ref()
            .map(|r| r.failure_message.clone())
    };
    assert_eq!(shard_message(0), Some(message.clone()));
    assert_eq!(shard_message(1), Some(String::new()));
    // Never hashed: the receipt's id is the signed body's alone.
    assert_eq!(id, failed.receipt.id());
    ledger_ok(&s);
}

/// A database made by the previous schema (v4: no failure_message column)
/// is brought up to date on open, and keeps its receipts.
/// A database of the single-unit market (schema v5: a credits ledger
/// hashed as format 1, account names without a unit) upgrades: its credits
/// are IOSD, its chain still verifies, and it goes on working (a failed run
/// keeps its message, the v5 column).
fn a_v5_credits_ledger_upgrades_to_iosd<B: Backend>(raw: B, db: Db<'_, B>) {
    let (r, a) = (key(1), key(2));
    schema::migrate_to(&raw, 5).expect("a v5 database");
    // One faucet mint of 10,000 µIOSD, as a v5 coordinator wrote it.
    let mut e = Entry {
        seq: 1,
        format: 1,
        unit: Unit::Iosd,
        kind: "mint".into(),
        debit: "issuance".into(),
        credit: format!("balance:{}", r.id()),
        amount: 10_000,
        reference: "faucet/r/1".into(),
        at_ms: 1,
        prev_hash: [0; 32],
        hash: [0; 32],
    };
    e.hash = e.computed_hash();
    raw.write(&mut |c| {
        c.exec(
            "INSERT INTO ledger (seq, kind, debit, credit, amount, reference, at_ms, prev_hash, hash) \
             VALUES (1, 'mint', 'issuance', $1, 10000, 'faucet/r/1', 1, $2, $3)",
            &[
                e.credit.as_str().into(),
                Value::Blob(vec![0; 32]),
                Value::Blob(e.hash.to_vec()),
            ],
        )?;
        c.exec(
            "INSERT INTO accounts (name, balance) VALUES ('issuance', -10000), ($1, 10000)",
            &[e.credit.as_str().into()],
        )?;
        c.exec(
            "UPDATE ledger_head SET seq = 1, hash = $1 WHERE id = 1",
            &[Value::Blob(e.hash.to_vec())],
        )
    })
    .expect("write the v5 ledger");
    drop(raw);
    let s = db(cfg());
    assert_eq!(s.account(&r.id()).expect("account").balance, 10_000);
    let report = s.verify_ledger().expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.supply.iosd.legacy_minted, 10_000);
    assert_eq!(report.supply.iosd.supply, 10_000);
    s.register(&provider(&a, 50, 1 << 30), 0, 0).expect("reg");
    s.submit_job(&new_job(&r, 1, 2, 100), 0).expect("job");
    let l = s.take_leases(&a.id(), 1, 30).expect("take");
    s.submit_receipt(&failed_receipt_for(&s, &l[0], &a, "boom"), 40)
        .expect("failed receipt");
    let all = s.receipts_after(0, 10).expect("receipts");
    assert_eq!(all[0].failure_message, "boom");
    ledger_ok(&s);
}

mod upgrade {
    #[test]
    fn sqlite() {
        let db = crate::common::SqliteDb::new();
        super::a_v5_credits_ledger_upgrades_to_iosd(db.raw(), &|cfg| db.open(cfg));
    }

    #[test]
    fn postgres() {
        let Some(db) = crate::common::PgDb::new("v5_upgrade") else {
            return;
        };
        super::a_v5_credits_ledger_upgrades_to_iosd(db.raw(), &|cfg| db.open(cfg));
    }
}

fn replayed_nonce_is_refused<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let a = key(1).id();
    s.use_nonce(&a, 42, 1_000).expect("first");
    let e = s.use_nonce(&a, 42, 1_000).expect_err("replay");
    assert!(e.to_string().contains("replayed"), "{e}");
    assert_eq!(e.code(), tonic::Code::AlreadyExists);
    s.use_nonce(&key(2).id(), 42, 1_000)
        .expect("another node's nonce is its own");
    assert_eq!(s.purge_nonces(2_000).expect("purge"), 2);
}

fn tampering_is_detected<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let a = key(1).id();
    s.mint(&a, 1_000, "m1", 1).expect("mint");
    s.faucet(&a, Unit::Io, 1_000, "io", 1).expect("IO");
    s.stake(&a, 100, "s1", 2).expect("stake");
    s.mint(&a, 5, "m2", 3).expect("mint");
    ledger_ok(&s);
    let tamper = |sql: &str, params: Vec<Value>| {
        s.backend()
            .write(&mut |c| c.exec(sql, &params))
            .expect("tamper");
    };
    let seq = s
        .ledger_entries(0, 100)
        .expect("entries")
        .iter()
        .find(|e| e.reference == "s1")
        .map(|e| e.seq)
        .expect("the stake entry");
    tamper(
        "UPDATE ledger SET amount = 99 WHERE reference = 's1'",
        vec![],
    );
    let r = s.verify_ledger().expect("verify");
    assert!(!r.ok());
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains(&format!("entry {seq}:"))),
        "{:?}",
        r.problems
    );
    tamper(
        "UPDATE ledger SET amount = 100 WHERE reference = 's1'",
        vec![],
    );
    ledger_ok(&s);
    tamper(
        "UPDATE accounts SET balance = balance + 1 WHERE name = $1",
        vec![Value::Text(format!("iosd/balance:{a}"))],
    );
    assert!(
        !s.verify_ledger().expect("verify").ok(),
        "a balance changed behind the ledger's back"
    );
    tamper(
        "UPDATE accounts SET balance = balance - 1 WHERE name = $1",
        vec![Value::Text(format!("iosd/balance:{a}"))],
    );
    ledger_ok(&s);
    tamper("DELETE FROM ledger WHERE seq = 3", vec![]);
    assert!(!s.verify_ledger().expect("verify").ok(), "a dropped entry");
}

fn state_survives_reopen<B: Backend>(db: Db<'_, B>) {
    let r = key(1);
    let a = key(2);
    let job = new_job(&r, 1, 2, 100);
    {
        let s = db(cfg());
        s.mint(&r.id(), 10_000, "m", 0).expect("mint");
        s.register(&provider(&a, 50, 1 << 30), 0, 0).expect("reg");
        s.submit_job(&job, 0).expect("job");
        let l = s.take_leases(&a.id(), 1, 10).expect("take");
        s.submit_receipt(&receipt_for(&s, &l[0], &a), 20)
            .expect("receipt");
    }
    let s = db(cfg());
    let view = s.job(&job.id, 30).expect("job").expect("still there");
    assert_eq!(view.shards[0].state, ShardState::Done);
    assert_eq!(view.shards[1].state, ShardState::Queued);
    assert_eq!(s.account(&r.id()).expect("acct").balance, 8_000);
    assert_eq!(s.receipts_after(0, 10).expect("receipts").len(), 1);
    ledger_ok(&s);
    // Genesis (four allocations and the reward pool), the faucet's
    // conversion (burn and mint), the escrow.
    assert_eq!(s.verify_ledger().expect("verify").entries, 8);
    // Genesis (four allocations and the reward pool), the faucet's
    // conversion (burn and mint), the escrow.
    assert_eq!(s.verify_ledger().expect("verify").entries, 8);
}

/// One background tick expires the lease of a provider that vanished and,
/// once the challenge window passes, settles the receipts that are due.
fn a_tick_expires_lost_leases_and_settles_due_receipts<B: Backend>(db: Db<'_, B>) {
    use assay_coordinator::tick::{TickReport, tick};
    let s = db(cfg());
    let r = key(1);
    let (a, b) = (key(2), key(3));
    s.mint(&r.id(), 10_000, "m", 0).expect("mint");
    s.register(&provider(&a, 50, 1 << 30), 0, 0).expect("reg");
    s.register(&provider(&b, 50, 1 << 30), 0, 0).expect("reg");
    let job = new_job(&r, 1, 1, 100);
    s.submit_job(&job, 0).expect("job");
    assert_eq!(s.take_leases(&a.id(), 1, 10).expect("a").len(), 1);
    assert_eq!(tick(&s, 20, true).expect("tick"), TickReport::default());
    let expired = tick(&s, 1_600, false).expect("tick");
    assert_eq!(expired.expired, 1, "{expired:?}");
    let lb = s.take_leases(&b.id(), 1, 1_700).expect("b");
    assert_eq!(lb.len(), 1);
    let (_, settle_at) = s
        .submit_receipt(&receipt_for(&s, &lb[0], &b), 1_800)
        .expect("receipt");
    assert_eq!(tick(&s, settle_at - 1, false).expect("tick").settled, 0);
    assert_eq!(tick(&s, settle_at, false).expect("tick").settled, 1);
    assert_eq!(
        s.job(&job.id, settle_at)
            .expect("job")
            .expect("exists")
            .state(),
        JobState::Settled
    );
    ledger_ok(&s);
}

both_backends!(
    ledger_mint_stake_and_overdraft,
    a_tick_expires_lost_leases_and_settles_due_receipts,
    escrow_covers_max_price_times_budgets,
    matching_respects_hardware_price_and_prefers_cheapest,
    shards_spread_across_providers,
    staked_renters_queue_first,
    expired_lease_requeues_and_only_one_receipt_pays,
    returned_lease_requeues_and_faults_lower_reliability,
    receipts_are_checked_against_the_lease,
    one_receipt_answers_one_lease,
    a_failure_message_is_kept_beside_the_receipt,
    a_shard_that_keeps_failing_is_given_up_and_refunded,
    replayed_nonce_is_refused,
    tampering_is_detected,
    state_survives_reopen,
);
