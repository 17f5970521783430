//! Verification in the store: sampling from the committed epoch seed,
//! checks, verdicts, disputes, slashing and the money around them. Every
//! test runs on SQLite and on PostgreSQL (when `ASSAY_TEST_POSTGRES_URL` is
//! set), against real databases, and ends with the ledger verified.

use crate::common::{key, ledger_ok};

use assay_coordinator::ledger::Unit;
use assay_coordinator::rules::disputes::{Answer, Phase, RevealedInput, StepKind};
use assay_coordinator::sql::Backend;
use assay_coordinator::state::{CheckReason, CheckRole, CheckState, JobState};
use assay_coordinator::store::prelude::*;
use assay_coordinator::store::{
    CheckTask, Decision, Lease, NewJob, ProviderInfo, ReceiptSubmission, RunResult,
    VerdictSubmission, VerifierInfo,
};
use assay_coordinator::{Error, MarketConfig, SqlStore};
use assay_protocol::market::{billable_units, cost, escrow_per_shard};
use assay_protocol::trace::{self, Attr, Call, LeafReveal, Step, TraceTree};
use assay_protocol::verification::{RATE_ALWAYS, commitment, is_sampled, required_stake};
use assay_protocol::{BlobRef, Hash32, JobSpec, NodeKey, Outcome, WorkDone, outputs_root};

type Db<'a, B> = &'a dyn Fn(MarketConfig) -> SqlStore<B>;

const EPOCH: u64 = 1_000;
const WINDOW: u64 = 500;
const FEE_BPS: u64 = 1_000;

fn cfg() -> MarketConfig {
    MarketConfig {
        lease_ttl_ms: 100_000,
        provider_liveness_ms: 1_000_000,
        preference_window_ms: 0,
        settlement_delay_ms: WINDOW,
        fee_bps: FEE_BPS,
        max_attempts: 0,
        epoch_ms: EPOCH,
        default_rate_ppm: 50_000,
        check_ttl_ms: 1_000,
        slash_bps: 5_000,
        bounty_bps: 5_000,
        referee_bps: 2_500,
        // w (key 5) is the arbiter; agreements are not re-checked unless a
        // test says so.
        arbiters: vec![key(5).id()],
        recheck_ppm: 0,
        ..MarketConfig::default()
    }
}

fn spec() -> JobSpec {
    JobSpec {
        fuel: 1_000_000,
        work_budget: 9_000_000,
        memory_bytes: 1 << 20,
        gpu_memory_bytes: 1 << 20,
        ..JobSpec::default()
    }
}

fn job(renter: &NodeKey, tag: u8, shards: u32, rate_ppm: u32) -> NewJob {
    crate::common::job(&renter.id(), tag, shards, 100, rate_ppm, spec())
}

fn provider(k: &NodeKey, price: u64) -> ProviderInfo {
    ProviderInfo {
        id: k.id(),
        price,
        cpu_cores: 4,
        memory_bytes: 1 << 30,
        gpus: Vec::new(),
        slots: 64,
        version: "test".into(),
    }
}

fn verifier(k: &NodeKey) -> VerifierInfo {
    VerifierInfo {
        id: k.id(),
        version: "test".into(),
        backend: "cpu".into(),
    }
}

/// The honest result, or a corrupted one.
fn result(honest: bool) -> RunResult {
    RunResult {
        outputs_root: outputs_root([("c", if honest { &b"right"[..] } else { b"wrong" })]),
        outcome: Outcome::Success,
        fuel_used: 500_000,
        work: WorkDone {
            flops: 1_000_000,
            bytes: 500_000,
        },
    }
}

fn receipt<B: Backend>(
    s: &SqlStore<B>,
    lease: &Lease,
    k: &NodeKey,
    honest: bool,
) -> ReceiptSubmission {
    let outputs = vec![BlobRef {
        name: "c".into(),
        hash: Hash32::of(if honest { b"right" } else { b"wrong" }),
        size: 5,
    }];
    crate::common::submission(s, lease, k, &result(honest), outputs)
}

fn verdict(check: &CheckTask, v: &NodeKey, honest: bool) -> VerdictSubmission {
    let r = result(honest);
    VerdictSubmission {
        check_id: check.id,
        receipt_id: check.record.id,
        verifier: v.id(),
        agrees: r == RunResult::of(&check.record.receipt),
        result: r,
        trace_root: None,
        step_output: None,
        nonce: 1,
        expires_at_ms: 10,
        signature: vec![0; 64],
    }
}

/// What one verified shard moves: (provider net, fee, verifier fee, refund).
fn verified_split(price: u64, escrow: u64) -> (u64, u64, u64, u64) {
    let units = billable_units(500_000, &result(true).work);
    let pay = cost(price, units).expect("fits");
    let fee = pay * FEE_BPS / 10_000;
    (pay - fee, fee, pay, escrow - 2 * pay)
}

const STAKE: u64 = 10_000_000;

/// The longest a dispute of these tests' receipts can take: a receipt that
/// was not drawn settles no earlier.
fn worst_dispute() -> u64 {
    let c = cfg();
    assay_coordinator::rules::exposure::worst_case_dispute_ms(
        c.epoch_ms,
        c.check_ttl_ms,
        result(true).work.flops,
    )
}

/// A renter with credits, providers `a` (cheap) and `b`, verifier `v` and
/// the arbiter `w`.
fn market<B: Backend>(s: &SqlStore<B>) -> (NodeKey, NodeKey, NodeKey, NodeKey, NodeKey) {
    let (r, a, b, v, w) = (key(1), key(2), key(3), key(4), key(5));
    s.mint(&r.id(), 100_000_000, "m/r", 0).expect("mint");
    for k in [&a, &b, &v, &w] {
        s.faucet(&k.id(), Unit::Io, STAKE, &format!("m/{}", k.id()), 0)
            .expect("IO faucet");
    }
    s.register(&provider(&a, 50), STAKE, 0).expect("reg a");
    s.register(&provider(&b, 60), STAKE, 0).expect("reg b");
    s.register_verifier(&verifier(&v), STAKE, 0).expect("reg v");
    s.register_verifier(&verifier(&w), STAKE, 0).expect("reg w");
    (r, a, b, v, w)
}

fn sampling_follows_the_committed_seed<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, ..) = market(&s);
    // The commitments of the current and next epoch are out before any receipt.
    s.reveal_epochs(10).expect("reveal");
    let published = s.beacon(0, 10).expect("beacon");
    assert!(
        published.iter().all(|e| e.seed.is_none()),
        "no seed before its epoch ends"
    );
    let rate = 300_000;
    let n = 40u32;
    s.submit_job(&job(&r, 1, n, rate), 10).expect("job");
    let leases = s.take_leases(&a.id(), n, 20).expect("take");
    let mut ids = Vec::new();
    for l in &leases {
        let (rid, _) = s
            .submit_receipt(&receipt(&s, l, &a, true), 30)
            .expect("receipt");
        ids.push(rid);
    }
    let recs = s.receipts_after(0, 100).expect("receipts");
    assert!(
        recs.iter()
            .all(|x| x.check_state == CheckState::Pending && x.epoch == 0)
    );
    assert_eq!(
        s.reveal_epochs(EPOCH - 1).expect("reveal"),
        0,
        "epoch 0 is not over"
    );
    let sampled = s.reveal_epochs(EPOCH).expect("reveal");
    let e0 = &s.beacon(0, 1).expect("beacon")[0];
    let seed = e0.seed.expect("revealed once over");
    assert_eq!(
        commitment(&seed),
        published[0].commitment,
        "the seed matches the commitment published before"
    );
    let recs = s.receipts_after(0, 100).expect("receipts");
    let mut want = 0;
    for x in &recs {
        let drawn = is_sampled(&x.id, &seed, rate);
        want += u64::from(drawn);
        let state = if drawn { "sampled" } else { "not-sampled" };
        assert_eq!(x.check_state.as_str(), state, "receipt {}", x.id);
    }
    assert_eq!(sampled, want);
    assert!(
        want > 0 && want < u64::from(n),
        "{want} of {n} sampled at 30%"
    );
    // A receipt recorded after its epoch's seed is out goes to the next epoch.
    s.submit_job(&job(&r, 2, 1, rate), EPOCH + 10).expect("job");
    let l = s.take_leases(&a.id(), 1, EPOCH + 20).expect("take");
    s.submit_receipt(&receipt(&s, &l[0], &a, true), 10)
        .expect("late clock");
    let last = s
        .receipts_after(recs.last().map_or(0, |x| x.seq), 10)
        .expect("rec");
    assert_eq!(last[0].epoch, 1, "never an epoch whose seed is revealed");
    // Not-sampled receipts settle after the window; sampled ones wait.
    // Not before the worst-case dispute could have ended.
    let settled = s.settle_due(30 + worst_dispute()).expect("settle");
    assert_eq!(settled.len() as u64, u64::from(n) - want);
    ledger_ok(&s);
}

fn unverified_jobs_settle_after_the_window_without_a_verifier_fee<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, ..) = market(&s);
    let sub = s.submit_job(&job(&r, 1, 1, 0), 0).expect("job");
    assert_eq!(sub.escrow, escrow_per_shard(100, &spec()).expect("fits"));
    let l = s.take_leases(&a.id(), 1, 1).expect("take");
    s.submit_receipt(&receipt(&s, &l[0], &a, true), 2)
        .expect("receipt");
    s.reveal_epochs(5 * EPOCH).expect("reveal");
    assert_eq!(s.settle_due(5 * EPOCH).expect("settle").len(), 1);
    let rec = &s.receipts_after(0, 1).expect("r")[0];
    assert_eq!(rec.check_state, CheckState::Unverified);
    ledger_ok(&s);
}

fn an_honest_receipt_is_verified_and_everyone_is_paid_exactly<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, _, v, _) = market(&s);
    let before = s.account(&r.id()).expect("acct").balance;
    let sub = s.submit_job(&job(&r, 1, 1, RATE_ALWAYS), 0).expect("job");
    let base = escrow_per_shard(100, &spec()).expect("fits");
    assert_eq!(sub.escrow, 2 * base, "the verifier's fee is escrowed too");
    let l = s.take_leases(&a.id(), 1, 1).expect("take");
    s.submit_receipt(&receipt(&s, &l[0], &a, true), 2)
        .expect("receipt");
    // The provider may not check its own receipt; nothing is open before the reveal.
    s.register_verifier(&verifier(&a), 0, 3)
        .expect("a as verifier");
    assert!(s.take_checks(&v.id(), 4, 3).expect("take").is_empty());
    let note = |t| {
        s.job(&sub_job(&r, 1), t)
            .expect("job")
            .expect("exists")
            .shards[0]
            .check_note
            .clone()
    };
    assert!(note(3).contains("seed is revealed"), "{}", note(3));
    s.reveal_epochs(EPOCH).expect("reveal");
    assert!(
        note(EPOCH).contains("online verifiers to re-run it"),
        "{}",
        note(EPOCH)
    );
    assert!(
        s.take_checks(&a.id(), 4, EPOCH).expect("take").is_empty(),
        "never its own receipt"
    );
    let checks = s.take_checks(&v.id(), 4, EPOCH).expect("take");
    assert_eq!(checks.len(), 1);
    let c = &checks[0];
    assert_eq!((c.role.as_str(), c.reason.as_str()), ("verify", "sampled"));
    assert_eq!(
        c.lease.spec, l[0].spec,
        "the verifier re-executes the shard's exact spec"
    );
    assert_eq!(c.lease.inputs, l[0].inputs);
    let seed = c.beacon.seed.expect("revealed");
    assert!(is_sampled(&c.record.id, &seed, RATE_ALWAYS));
    // A verdict whose `agrees` contradicts its own result is refused.
    let mut lie = verdict(c, &v, true);
    lie.agrees = false;
    assert!(matches!(
        s.submit_verdict(&lie, EPOCH + 1),
        Err(Error::Invalid(_))
    ));
    // Another verifier cannot answer this check.
    let w = key(5);
    let mut foreign = verdict(c, &w, true);
    foreign.verifier = w.id();
    assert!(matches!(
        s.submit_verdict(&foreign, EPOCH + 1),
        Err(Error::PermissionDenied(_))
    ));
    assert_eq!(
        s.submit_verdict(&verdict(c, &v, true), EPOCH + 1)
            .expect("verdict"),
        Decision::Verified
    );
    assert!(matches!(
        s.submit_verdict(&verdict(c, &v, true), EPOCH + 2),
        Err(Error::AlreadyExists(_))
    ));
    let (net, _fee, vfee, refund) = verified_split(50, 2 * base);
    assert_eq!(s.account(&a.id()).expect("a").earnings, net);
    assert_eq!(s.account(&v.id()).expect("v").verifier_earnings, vfee);
    assert_eq!(
        s.account(&r.id()).expect("r").balance,
        before - 2 * base + refund
    );
    let view = s
        .job(&sub_job(&r, 1), EPOCH + 3)
        .expect("job")
        .expect("exists");
    assert_eq!(view.state(), JobState::Settled);
    assert_eq!(view.shards[0].verdicts.len(), 1);
    assert!(view.shards[0].verdicts[0].agrees);
    ledger_ok(&s);
}

fn sub_job(r: &NodeKey, tag: u8) -> Hash32 {
    job(r, tag, 1, 0).id
}

fn a_cheat_is_caught_slashed_suspended_audited_and_redone<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, b, v, w) = market(&s);
    let before = s.account(&r.id()).expect("acct").balance;
    // Job 1 is checked for sure; job 2's receipt is recorded in the next
    // epoch (still pending when `a` is caught), at a low rate.
    s.submit_job(&job(&r, 1, 1, RATE_ALWAYS), 0).expect("job 1");
    s.submit_job(&job(&r, 2, 1, 10_000), 0).expect("job 2");
    let l = s.take_leases(&a.id(), 2, 1).expect("take");
    assert_eq!(l.len(), 2, "a is cheapest and takes both");
    let (one, two) = if l[0].job_id == sub_job(&r, 1) {
        (&l[0], &l[1])
    } else {
        (&l[1], &l[0])
    };
    s.submit_receipt(&receipt(&s, one, &a, false), 2)
        .expect("cheat");
    s.submit_receipt(&receipt(&s, two, &a, false), EPOCH)
        .expect("cheat");
    s.reveal_epochs(EPOCH).expect("reveal");
    let c = s.take_checks(&v.id(), 4, EPOCH).expect("take");
    assert_eq!(c.len(), 1, "only job 1 was drawn");
    assert_eq!(
        s.submit_verdict(&verdict(&c[0], &v, true), EPOCH + 1)
            .expect("v"),
        Decision::Disputed
    );
    // The referee is someone else: not the provider, not v.
    assert!(
        s.take_checks(&v.id(), 4, EPOCH + 2)
            .expect("v again")
            .is_empty()
    );
    let rc = s.take_checks(&w.id(), 4, EPOCH + 2).expect("w");
    assert_eq!(rc.len(), 1);
    assert_eq!(rc[0].role, CheckRole::Referee);
    assert_eq!(
        s.submit_verdict(&verdict(&rc[0], &w, true), EPOCH + 3)
            .expect("referee"),
        Decision::Rejected
    );
    // a: half its stake gone — half of that to v, a quarter to w, the rest to the renter.
    let slashed = STAKE / 2;
    assert_eq!(s.account(&a.id()).expect("a").stake, STAKE - slashed);
    assert_eq!(
        s.account(&a.id()).expect("a").earnings,
        0,
        "no pay for a wrong result"
    );
    // Stakes are IO, so the shares of a slash are IO.
    assert_eq!(s.account(&v.id()).expect("v").io_balance, slashed / 2);
    assert_eq!(s.account(&w.id()).expect("w").io_balance, slashed / 4);
    // a is out of the market; its other unsettled receipt is audited.
    assert!(matches!(
        s.take_leases(&a.id(), 1, EPOCH + 4),
        Err(Error::PermissionDenied(_))
    ));
    let audit = s.take_checks(&v.id(), 4, EPOCH + 4).expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].reason, CheckReason::Audit);
    // Job 2's receipt is wrong too: disputed, then rejected by w.
    assert_eq!(
        s.submit_verdict(&verdict(&audit[0], &v, true), EPOCH + 5)
            .expect("v"),
        Decision::Disputed
    );
    let rc = s.take_checks(&w.id(), 4, EPOCH + 5).expect("w");
    assert_eq!(
        s.submit_verdict(&verdict(&rc[0], &w, true), EPOCH + 6)
            .expect("w"),
        Decision::Rejected
    );
    // Both shards went back to the queue and b redoes them, honestly.
    let redo = s.take_leases(&b.id(), 4, EPOCH + 7).expect("b");
    assert_eq!(redo.len(), 2);
    for x in &redo {
        s.submit_receipt(&receipt(&s, x, &b, true), EPOCH + 8)
            .expect("honest");
    }
    s.reveal_epochs(3 * EPOCH).expect("reveal");
    for c in s.take_checks(&v.id(), 4, 3 * EPOCH).expect("take") {
        assert_eq!(
            s.submit_verdict(&verdict(&c, &v, true), 3 * EPOCH)
                .expect("v"),
            Decision::Verified
        );
    }
    s.settle_due(EPOCH + 8 + worst_dispute()).expect("settle");
    for tag in [1, 2] {
        let view = s
            .job(&sub_job(&r, tag), 4 * EPOCH)
            .expect("job")
            .expect("exists");
        assert_eq!(view.state(), JobState::Settled, "job {tag}");
        let shard = &view.shards[0];
        assert_eq!(shard.rejected_receipts.len(), 1);
        let rec = shard.receipt.as_ref().expect("receipt");
        assert_eq!(rec.receipt.body.provider_id, b.id());
        assert_eq!(rec.receipt.body.outputs_root, result(true).outputs_root);
    }
    // The renter paid for b's two runs (and one verifier fee on job 1 —
    // maybe two if job 2's redo was drawn) and got the rest of a's slash.
    let after = s.account(&r.id()).expect("acct").balance;
    let units = billable_units(500_000, &result(true).work);
    let pay = cost(60, units).expect("fits");
    // Each proven wrong receipt slashes half of what stake is left.
    let second = (STAKE - slashed) / 2;
    assert_eq!(
        s.account(&a.id()).expect("a").stake,
        STAKE - slashed - second
    );
    // Slashes are IO: the bounties go to the verifier's IO balance, the
    // renter's part to the renter's.
    let bounties = slashed / 2 + second / 2;
    assert_eq!(s.account(&v.id()).expect("v").io_balance, bounties);
    let fees_paid = s.account(&v.id()).expect("v").verifier_earnings;
    assert!(fees_paid == pay || fees_paid == 2 * pay, "{fees_paid}");
    assert_eq!(after, before - 2 * pay - fees_paid);
    assert_eq!(
        s.account(&r.id()).expect("acct").io_balance,
        slashed / 4 + second / 4
    );
    // The reward epoch (an hour) in which `a` was slashed pays it nothing;
    // `b`, which did the work again, is paid.
    assert_eq!(s.close_reward_epochs(3_600_000).expect("close"), 1);
    let epoch = &s.reward_epochs(None, 1).expect("epochs")[0];
    let pa = epoch
        .payouts
        .iter()
        .find(|p| p.provider == a.id())
        .expect("a");
    assert!(pa.failed && pa.amount == 0, "{pa:?}");
    let pb = epoch
        .payouts
        .iter()
        .find(|p| p.provider == b.id())
        .expect("b");
    assert!(!pb.failed && pb.amount > 0, "{pb:?}");
    assert_eq!(epoch.emitted, epoch.scheduled, "b takes the whole emission");
    assert_eq!(s.account(&a.id()).expect("a").rewards, 0);
    ledger_ok(&s);
}

fn a_lying_verifier_is_overruled_and_slashed<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, _, v, w) = market(&s);
    one_sampled_receipt(&s, &r, &a, true);
    let c = s.take_checks(&v.id(), 1, EPOCH).expect("take");
    // v lies: it claims the corrupted result.
    assert_eq!(
        s.submit_verdict(&verdict(&c[0], &v, false), EPOCH + 1)
            .expect("lie"),
        Decision::Disputed
    );
    let rc = s.take_checks(&w.id(), 1, EPOCH + 2).expect("w");
    assert_eq!(
        s.submit_verdict(&verdict(&rc[0], &w, true), EPOCH + 3)
            .expect("referee"),
        Decision::Overruled
    );
    let slashed = STAKE / 2;
    assert_eq!(s.account(&v.id()).expect("v").stake, STAKE - slashed);
    let base = escrow_per_shard(100, &spec()).expect("fits");
    let (net, _, vfee, _) = verified_split(50, 2 * base);
    assert_eq!(s.account(&w.id()).expect("w").verifier_earnings, vfee);
    assert_eq!(s.account(&w.id()).expect("w").io_balance, slashed / 4);
    assert_eq!(
        s.account(&a.id()).expect("a").earnings,
        net,
        "the provider is paid"
    );
    assert_eq!(
        s.account(&a.id()).expect("a").io_balance,
        slashed - slashed / 4,
        "and compensated in IO"
    );
    assert_eq!(
        s.account(&a.id()).expect("a").stake,
        STAKE,
        "the provider keeps its stake"
    );
    assert!(matches!(
        s.take_checks(&v.id(), 1, EPOCH + 4),
        Err(Error::PermissionDenied(_))
    ));
    ledger_ok(&s);
}

fn a_silent_verifier_is_replaced_and_its_late_verdict_refused<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, _, v, w) = market(&s);
    one_sampled_receipt(&s, &r, &a, true);
    assert!(
        s.take_checks(&w.id(), 1, EPOCH).expect("w").is_empty(),
        "the arbiter does not take first checks"
    );
    let c = s.take_checks(&v.id(), 1, EPOCH).expect("take");
    assert_eq!(c.len(), 1);
    // v's deadline passes; x, a second verifier, comes online.
    assert_eq!(s.expire_checks(c[0].deadline_ms).expect("expire"), 1);
    let x = key(6);
    s.faucet(&x.id(), Unit::Io, STAKE, "m/x", 0).expect("IO");
    s.register_verifier(&verifier(&x), STAKE, c[0].deadline_ms)
        .expect("x");
    assert!(
        s.take_checks(&v.id(), 1, c[0].deadline_ms + 1)
            .expect("v")
            .is_empty(),
        "not v again"
    );
    let c2 = s.take_checks(&x.id(), 1, c[0].deadline_ms + 1).expect("x");
    assert_eq!(c2.len(), 1);
    assert!(matches!(
        s.submit_verdict(&verdict(&c[0], &v, true), c[0].deadline_ms + 2),
        Err(Error::Precondition(_))
    ));
    // A verifier-side fault gives the check back without a verdict; it
    // goes to yet another verifier.
    s.return_check(&x.id(), &c2[0].id, "watchdog", c[0].deadline_ms + 3)
        .expect("return");
    assert!(
        s.take_checks(&x.id(), 1, c[0].deadline_ms + 4)
            .expect("x")
            .is_empty()
    );
    let y = key(7);
    s.register_verifier(&verifier(&y), 0, c[0].deadline_ms + 4)
        .expect("y");
    let c3 = s.take_checks(&y.id(), 1, c[0].deadline_ms + 4).expect("y");
    assert_eq!(
        s.submit_verdict(&verdict(&c3[0], &y, true), c[0].deadline_ms + 5)
            .expect("y"),
        Decision::Verified
    );
    ledger_ok(&s);
}

/// Job 1 (one shard, always checked) run by `a`, honestly or not, with its
/// epoch's seed revealed: its check is open.
fn one_sampled_receipt<B: Backend>(s: &SqlStore<B>, r: &NodeKey, a: &NodeKey, honest: bool) {
    s.submit_job(&job(r, 1, 1, RATE_ALWAYS), 0).expect("job");
    let l = s.take_leases(&a.id(), 1, 1).expect("take");
    s.submit_receipt(&receipt(s, &l[0], a, honest), 2)
        .expect("receipt");
    s.reveal_epochs(EPOCH).expect("reveal");
}

/// A result that is neither the honest one nor the provider's corruption.
fn third_result() -> RunResult {
    RunResult {
        outputs_root: outputs_root([("c", &b"third"[..])]),
        ..result(true)
    }
}

/// Takes the next check for whichever of `verifiers` it is assigned to.
fn take_assigned<'k, B: Backend>(
    s: &SqlStore<B>,
    verifiers: &[&'k NodeKey],
    now: u64,
) -> Option<(&'k NodeKey, CheckTask)> {
    for v in verifiers {
        // A suspended verifier is refused: it takes nothing.
        if let Some(c) = s
            .take_checks(&v.id(), 1, now)
            .unwrap_or_default()
            .into_iter()
            .next()
        {
            return Some((v, c));
        }
    }
    None
}

fn colluding_liars_cannot_outvote_the_arbiter<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, _, v, w) = market(&s);
    let x = key(6);
    s.faucet(&x.id(), Unit::Io, STAKE, "m/x", 0).expect("IO");
    s.register_verifier(&verifier(&x), STAKE, 0).expect("x");
    s.submit_job(&job(&r, 1, 4, RATE_ALWAYS), 0).expect("job");
    let leases = s.take_leases(&a.id(), 4, 1).expect("take");
    assert_eq!(leases.len(), 4);
    for l in &leases {
        s.submit_receipt(&receipt(&s, l, &a, true), 2)
            .expect("honest");
    }
    s.reveal_epochs(EPOCH).expect("reveal");
    // v and x, run by one person, dispute every check they are given; the
    // referee role is never theirs.
    let mut now = EPOCH;
    let mut liars_caught = std::collections::BTreeSet::new();
    while let Some((liar, c)) = take_assigned(&s, &[&v, &x], now) {
        assert_eq!(c.role, CheckRole::Verify);
        now += 1;
        assert_eq!(
            s.submit_verdict(&verdict(&c, liar, false), now)
                .expect("lie"),
            Decision::Disputed
        );
        let arb = s.take_checks(&w.id(), 4, now).expect("arbiter");
        assert_eq!(arb.len(), 1);
        assert_eq!(arb[0].role, CheckRole::Referee);
        now += 1;
        assert_eq!(
            s.submit_verdict(&verdict(&arb[0], &w, true), now)
                .expect("arbiter"),
            Decision::Overruled
        );
        liars_caught.insert(liar.id());
    }
    // Each liar lied once, was slashed and suspended; the rest of the
    // checks wait for an honest verifier.
    assert_eq!(liars_caught.len(), 2);
    for liar in [&v, &x] {
        assert_eq!(s.account(&liar.id()).expect("liar").stake, STAKE / 2);
        assert!(matches!(
            s.take_checks(&liar.id(), 1, now),
            Err(Error::PermissionDenied(_))
        ));
    }
    assert_eq!(
        s.account(&a.id()).expect("a").stake,
        STAKE,
        "the honest provider keeps its stake"
    );
    let honest = key(8);
    s.register_verifier(&verifier(&honest), 0, now)
        .expect("honest verifier");
    for c in s.take_checks(&honest.id(), 4, now).expect("take") {
        assert_eq!(
            s.submit_verdict(&verdict(&c, &honest, true), now)
                .expect("v"),
            Decision::Verified
        );
    }
    let view = s.job(&sub_job(&r, 1), now).expect("job").expect("exists");
    assert_eq!(view.state(), JobState::Settled);
    for shard in &view.shards {
        let rec = shard.receipt.as_ref().expect("receipt");
        assert_eq!(rec.receipt.body.outputs_root, result(true).outputs_root);
        assert_eq!(rec.check_state, CheckState::Verified);
    }
    ledger_ok(&s);
}

fn an_accomplice_that_agrees_is_caught_by_the_recheck<B: Backend>(db: Db<'_, B>) {
    let s = db(MarketConfig {
        recheck_ppm: RATE_ALWAYS,
        ..cfg()
    });
    let (r, a, b, v, w) = market(&s);
    one_sampled_receipt(&s, &r, &a, false);
    let c = s.take_checks(&v.id(), 1, EPOCH).expect("v");
    // v is a's accomplice: it states a's (wrong) result and agrees.
    let stamp = verdict(&c[0], &v, false);
    assert!(stamp.agrees);
    assert_eq!(
        s.submit_verdict(&stamp, EPOCH + 1).expect("stamp"),
        Decision::Rechecking
    );
    let view = s
        .job(&sub_job(&r, 1), EPOCH + 1)
        .expect("job")
        .expect("exists");
    let rec = view.shards[0].receipt.as_ref().expect("receipt");
    assert_eq!(rec.check_state, CheckState::Rechecking);
    assert_eq!(rec.paid, None, "nobody is paid before the re-check");
    let rc = s.take_checks(&w.id(), 1, EPOCH + 2).expect("arbiter");
    assert_eq!(rc[0].role, CheckRole::Recheck);
    assert_eq!(
        s.submit_verdict(&verdict(&rc[0], &w, true), EPOCH + 3)
            .expect("arbiter"),
        Decision::Colluded
    );
    for k in [&a, &v] {
        let acct = s.account(&k.id()).expect("account");
        assert_eq!(acct.stake, STAKE / 2, "both slashed");
        assert_eq!(acct.earnings + acct.verifier_earnings, 0, "nobody paid");
    }
    // The arbiter takes its share of both slashes, the renter the rest.
    let half = STAKE / 2;
    assert_eq!(s.account(&w.id()).expect("w").io_balance, 2 * (half / 4));
    assert_eq!(
        s.account(&r.id()).expect("r").io_balance,
        2 * (half - half / 4)
    );
    assert!(matches!(
        s.take_checks(&v.id(), 1, EPOCH + 4),
        Err(Error::PermissionDenied(_))
    ));
    // The shard is redone by b.
    let redo = s.take_leases(&b.id(), 1, EPOCH + 4).expect("b");
    assert_eq!(redo.len(), 1);
    ledger_ok(&s);
}

fn a_verifier_with_a_third_result_is_slashed_with_the_cheat<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, _, v, w) = market(&s);
    one_sampled_receipt(&s, &r, &a, false);
    let c = s.take_checks(&v.id(), 1, EPOCH).expect("v");
    let mut third = verdict(&c[0], &v, true);
    third.result = third_result();
    assert_eq!(
        s.submit_verdict(&third, EPOCH + 1).expect("v"),
        Decision::Disputed
    );
    let rc = s.take_checks(&w.id(), 1, EPOCH + 2).expect("arbiter");
    assert_eq!(
        s.submit_verdict(&verdict(&rc[0], &w, true), EPOCH + 3)
            .expect("arbiter"),
        Decision::BothWrong
    );
    assert_eq!(s.account(&a.id()).expect("a").stake, STAKE / 2);
    assert_eq!(s.account(&v.id()).expect("v").stake, STAKE / 2);
    ledger_ok(&s);
}

fn checks_are_assigned_by_the_seed_within_stake_and_room<B: Backend>(db: Db<'_, B>) {
    let s = db(MarketConfig {
        verifier_max_in_flight: 2,
        verifier_stake_floor: STAKE / 2,
        ..cfg()
    });
    let (r, a, _, v, _) = market(&s);
    let x = key(6);
    s.faucet(&x.id(), Unit::Io, STAKE, "m/x", 0).expect("IO");
    s.register_verifier(&verifier(&x), STAKE, 0).expect("x");
    // A verifier that cannot hold the floor is refused at registration.
    let poor = key(7);
    assert!(matches!(
        s.register_verifier(&verifier(&poor), 0, 0),
        Err(Error::Precondition(_))
    ));
    s.submit_job(&job(&r, 1, 12, RATE_ALWAYS), 0).expect("job");
    for l in s.take_leases(&a.id(), 12, 1).expect("take") {
        s.submit_receipt(&receipt(&s, &l, &a, true), 2)
            .expect("receipt");
    }
    s.reveal_epochs(EPOCH).expect("reveal");
    // Each takes what the seed assigns it, at most 2 at a time.
    let (tv, tx) = (
        s.take_checks(&v.id(), 8, EPOCH).expect("v"),
        s.take_checks(&x.id(), 8, EPOCH).expect("x"),
    );
    assert!(tv.len() <= 2 && tx.len() <= 2, "{} {}", tv.len(), tx.len());
    assert!(!tv.is_empty() && !tx.is_empty(), "12 checks, both get some");
    // Answering frees room; over all rounds the split follows the ranks.
    let mut taken = [tv.len(), tx.len()];
    let mut now = EPOCH;
    let mut pending: Vec<(NodeKey, CheckTask)> = tv
        .into_iter()
        .map(|c| (key(4), c))
        .chain(tx.into_iter().map(|c| (key(6), c)))
        .collect();
    while !pending.is_empty() {
        now += 1;
        for (k, c) in pending.drain(..) {
            s.submit_verdict(&verdict(&c, &k, true), now)
                .expect("verdict");
        }
        for (i, k) in [&v, &x].into_iter().enumerate() {
            for c in s.take_checks(&k.id(), 8, now).expect("take") {
                taken[i] += 1;
                pending.push((key(if i == 0 { 4 } else { 6 }), c));
            }
        }
    }
    assert_eq!(taken[0] + taken[1], 12, "{taken:?}");
    assert!(taken[0] >= 1 && taken[1] >= 1, "{taken:?}");
    ledger_ok(&s);
}

fn a_check_needs_free_stake_for_its_bond<B: Backend>(db: Db<'_, B>) {
    // At q = 0.1 ppm, agreeing with a lie must cost ~10⁷ × the gain: no
    // verifier here can bond that, so the check waits.
    let s = db(MarketConfig {
        recheck_ppm: 1,
        ..cfg()
    });
    let (r, a, _, v, _) = market(&s);
    one_sampled_receipt(&s, &r, &a, true);
    assert!(s.take_checks(&v.id(), 1, EPOCH).expect("v").is_empty());
    let view = s.job(&sub_job(&r, 1), EPOCH).expect("job").expect("exists");
    assert_eq!(
        view.shards[0].receipt.as_ref().map(|r| r.check_state),
        Some(CheckState::Sampled),
        "the check waits for a verifier that can bond it"
    );
    assert!(
        view.shards[0]
            .check_note
            .contains("free stake to bond this check"),
        "the renter is told why: {}",
        view.shards[0].check_note
    );
    ledger_ok(&s);
}

fn stake_required_follows_the_rate<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, ..) = market(&s);
    let poor = key(9);
    s.faucet(&poor.id(), Unit::Io, 1_000, "m/poor", 0)
        .expect("IO");
    let base = escrow_per_shard(100, &spec()).expect("fits");
    let need = required_stake(base, 50_000, 5_000).expect("finite");
    assert!(need > 1_000 && need <= STAKE, "{need}");
    s.register(&provider(&poor, 1), 1_000, 0).expect("reg");
    s.submit_job(&job(&r, 1, 1, 50_000), 0).expect("job");
    assert!(
        s.take_leases(&poor.id(), 1, 1).expect("take").is_empty(),
        "under-staked"
    );
    // With only the poor provider online the renter is told why.
    let view = s.job(&sub_job(&r, 1), 2).expect("job").expect("exists");
    assert_eq!(view.state(), JobState::Queued);
    assert_eq!(s.take_leases(&a.id(), 1, 3).expect("take").len(), 1);
    // p = 0 is refused only when not explicitly unverified: an unverified
    // job needs no stake.
    s.submit_job(&job(&r, 2, 1, 0), 4).expect("unverified job");
    assert_eq!(s.take_leases(&poor.id(), 1, 5).expect("take").len(), 1);
    ledger_ok(&s);
}

fn gpu_provider(k: &NodeKey) -> ProviderInfo {
    ProviderInfo {
        gpus: vec![("NVIDIA H100 80GB HBM3".into(), 80 << 30)],
        ..provider(k, 40)
    }
}

fn challenge_cfg(bound_ms: u64) -> MarketConfig {
    MarketConfig {
        challenge_component: Some((Hash32([9; 32]), 1234)),
        challenge_override: Some((64, 2, bound_ms)),
        challenge_interval_ms: 0,
        ..cfg()
    }
}

fn gpu_job(renter: &NodeKey, tag: u8) -> NewJob {
    NewJob {
        require_gpu: true,
        ..job(renter, tag, 1, RATE_ALWAYS)
    }
}

fn provider_state<B: Backend>(s: &SqlStore<B>, k: &NodeKey) -> String {
    s.backend()
        .read(&mut |c| {
            c.query_one(
                "SELECT hardware_state FROM providers WHERE id = $1",
                &[(&k.id()).into()],
            )
            .and_then(|r| r.text(0).map(str::to_string))
        })
        .expect("state")
}

/// A GPU claim is challenged; answered in time and verified, it passes and
/// the provider is matched to GPU jobs; before that, it is not.
fn a_gpu_claim_passes_its_challenge_and_then_gets_gpu_jobs<B: Backend>(db: Db<'_, B>) {
    let s = db(challenge_cfg(60_000));
    let (r, a, _, v, _) = market(&s);
    let g = key(8);
    s.faucet(&g.id(), Unit::Io, STAKE, "m/g", 0).expect("IO");
    s.register(&gpu_provider(&g), STAKE, 0).expect("reg g");
    assert_eq!(provider_state(&s, &g), "unchecked");
    s.submit_job(&gpu_job(&r, 1), 0).expect("gpu job");
    let view = s.job(&sub_job(&r, 1), 1).expect("job").expect("exists");
    assert!(
        view.shards[0]
            .why_not_matched
            .contains("hardware challenge"),
        "{}",
        view.shards[0].why_not_matched
    );
    assert!(
        s.take_leases(&g.id(), 4, 1)
            .expect("take")
            .iter()
            .all(|l| l.job_id != sub_job(&r, 1))
    );
    assert_eq!(s.run_challenges(2).expect("challenge"), 1);
    assert_eq!(provider_state(&s, &g), "challenged");
    // The challenge is addressed to g alone.
    assert!(s.take_leases(&a.id(), 4, 3).expect("a").is_empty());
    let l = s.take_leases(&g.id(), 4, 3).expect("g");
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].spec.params.get("n").map(String::as_str), Some("64"));
    assert_eq!(l[0].price, 40);
    s.submit_receipt(&receipt(&s, &l[0], &g, true), 10)
        .expect("answer");
    assert_eq!(provider_state(&s, &g), "answered");
    // Checked at once, whatever the epoch: reason "challenge".
    let c = s.take_checks(&v.id(), 4, 11).expect("take");
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].reason, CheckReason::Challenge);
    assert_eq!(
        s.submit_verdict(&verdict(&c[0], &v, true), 12).expect("v"),
        Decision::Verified
    );
    assert_eq!(provider_state(&s, &g), "passed");
    let l = s.take_leases(&g.id(), 4, 13).expect("g");
    assert_eq!(l.len(), 1, "now matched to the GPU job");
    assert_eq!(l[0].job_id, sub_job(&r, 1));
    assert_eq!(
        s.account(&g.id()).expect("g").earnings,
        0,
        "a challenge pays nothing"
    );
    ledger_ok(&s);
}

/// Wrong, too slow or silent: the claim fails (and a wrong answer is
/// slashed like any wrong result).
fn a_gpu_claim_that_is_wrong_slow_or_silent_fails<B: Backend>(db: Db<'_, B>) {
    let s = db(challenge_cfg(60_000));
    let (_, _, _, v, w) = market(&s);
    let (wrong, slow, silent) = (key(10), key(11), key(12));
    for k in [&wrong, &slow, &silent] {
        s.faucet(&k.id(), Unit::Io, STAKE, &format!("m/{}", k.id()), 0)
            .expect("IO");
    }
    // Wrong: answers in time with a wrong result, which the verifiers prove.
    s.register(&gpu_provider(&wrong), STAKE, 0).expect("reg");
    assert_eq!(s.run_challenges(1).expect("challenge"), 1);
    let l = s.take_leases(&wrong.id(), 1, 3).expect("wrong");
    s.submit_receipt(&receipt(&s, &l[0], &wrong, false), 4)
        .expect("wrong answer");
    assert_eq!(provider_state(&s, &wrong), "answered");
    let c = s.take_checks(&v.id(), 4, 5).expect("v");
    assert_eq!(
        s.submit_verdict(&verdict(&c[0], &v, true), 6).expect("v"),
        Decision::Disputed
    );
    let rc = s.take_checks(&w.id(), 4, 7).expect("w");
    assert_eq!(
        s.submit_verdict(&verdict(&rc[0], &w, true), 8).expect("w"),
        Decision::Rejected
    );
    assert_eq!(provider_state(&s, &wrong), "failed");
    assert_eq!(
        s.account(&wrong.id()).expect("acct").stake,
        STAKE / 2,
        "slashed"
    );
    // The same database under a 5 ms bound.
    let s = db(challenge_cfg(5));
    s.register(&gpu_provider(&slow), STAKE, 10).expect("reg");
    s.register(&gpu_provider(&silent), STAKE, 10).expect("reg");
    assert_eq!(
        s.run_challenges(10).expect("challenge"),
        2,
        "not the failed one again"
    );
    // Slow: the answer comes 50 ms after the lease.
    let l = s.take_leases(&slow.id(), 1, 11).expect("slow");
    s.submit_receipt(&receipt(&s, &l[0], &slow, true), 61)
        .expect("late answer");
    assert_eq!(provider_state(&s, &slow), "failed");
    // Silent: never answers; past the lease time plus the bound it fails.
    s.run_challenges(10 + 100_000 + 4).expect("not yet");
    assert_eq!(provider_state(&s, &silent), "challenged");
    s.run_challenges(10 + 100_000 + 5).expect("deadline");
    assert_eq!(provider_state(&s, &silent), "failed");
    ledger_ok(&s);
}

/// Over many receipts the coordinator's draws come out at the job's rate.
fn the_sampled_fraction_is_the_rate<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, ..) = market(&s);
    let (rate, jobs, shards) = (100_000u32, 8u8, 250u32);
    // Every lease and unsettled receipt bonds stake: a stake for all 2,000.
    s.faucet(&a.id(), Unit::Io, 1_000 * STAKE, "m/a-more", 0)
        .expect("IO");
    s.register(&provider(&a, 50), 1_000 * STAKE, 1)
        .expect("re-register");
    let mut now = 10;
    for tag in 0..jobs {
        s.submit_job(&job(&r, tag, shards, rate), now).expect("job");
        let leases = s.take_leases(&a.id(), shards, now).expect("take");
        assert_eq!(leases.len() as u32, shards.min(64));
        for l in &leases {
            s.submit_receipt(&receipt(&s, l, &a, true), now)
                .expect("receipt");
        }
        now += EPOCH / 3;
        let rest = s.take_leases(&a.id(), shards, now).expect("take");
        for l in &rest {
            s.submit_receipt(&receipt(&s, l, &a, true), now)
                .expect("receipt");
        }
        now += EPOCH / 3;
    }
    s.reveal_epochs(now + 2 * EPOCH).expect("reveal");
    let all = s.receipts_after(0, 100_000).expect("receipts");
    let n = all.len() as f64;
    let k = all
        .iter()
        .filter(|x| x.check_state == CheckState::Sampled)
        .count() as f64;
    assert!(
        all.iter().all(
            |x| x.check_state == CheckState::Sampled || x.check_state == CheckState::NotSampled
        )
    );
    let p = f64::from(rate) / 1e6;
    let sd = (n * p * (1.0 - p)).sqrt();
    eprintln!("{k} of {n} receipts sampled at p = {p}");
    assert!(
        (k - n * p).abs() < 5.0 * sd,
        "{k} of {n} sampled at p = {p}: expected {} ± {sd}",
        n * p
    );
}

both_backends!(
    the_sampled_fraction_is_the_rate,
    a_gpu_claim_passes_its_challenge_and_then_gets_gpu_jobs,
    a_gpu_claim_that_is_wrong_slow_or_silent_fails,
    sampling_follows_the_committed_seed,
    unverified_jobs_settle_after_the_window_without_a_verifier_fee,
    an_honest_receipt_is_verified_and_everyone_is_paid_exactly,
    a_cheat_is_caught_slashed_suspended_audited_and_redone,
    a_lying_verifier_is_overruled_and_slashed,
    a_silent_verifier_is_replaced_and_its_late_verdict_refused,
    colluding_liars_cannot_outvote_the_arbiter,
    an_accomplice_that_agrees_is_caught_by_the_recheck,
    a_verifier_with_a_third_result_is_slashed_with_the_cheat,
    checks_are_assigned_by_the_seed_within_stake_and_room,
    a_check_needs_free_stake_for_its_bond,
    stake_required_follows_the_rate,
    a_dispute_is_bisected_to_one_step_that_the_arbiter_recomputes,
    a_cheat_bisected_to_its_wrong_step_is_slashed,
    a_dispute_the_parties_do_not_play_goes_to_a_full_re_execution,
    a_step_the_arbiter_cannot_recompute_comes_back_to_it_in_full,
    a_call_the_guest_did_not_make_is_found_by_re_running_it,
);

// ---- bisected disputes -------------------------------------------------

/// A party's trace: ten steps, a fill then scales of the step before; the
/// output of step `wrong` (if any) corrupted.
struct Traced {
    steps: Vec<Step>,
    tree: TraceTree,
}

fn traced(wrong: Option<usize>) -> Traced {
    let steps: Vec<Step> = (0..10u64)
        .map(|i| {
            let call = if i == 0 {
                Call::new(
                    "tensor.fill",
                    vec![],
                    vec![Attr::U32s(vec![2]), Attr::f32(1.0)],
                )
            } else {
                Call::new("tensor.scale", vec![i - 1], vec![Attr::f32(2.0)])
            };
            let bytes = if wrong == Some(i as usize) {
                [9u8; 8]
            } else {
                [i as u8; 8]
            };
            Step {
                call: call.encode(),
                output: trace::tensor_digest(trace::Dtype::F32, &[2], &bytes),
            }
        })
        .collect();
    let leaves = steps
        .iter()
        .enumerate()
        .map(|(i, s)| s.leaf(i as u64))
        .collect();
    Traced {
        tree: TraceTree::new(leaves),
        steps,
    }
}

/// Job 1 run by `a` with trace `t` (its result honest or not), drawn.
fn traced_receipt<B: Backend>(s: &SqlStore<B>, r: &NodeKey, a: &NodeKey, honest: bool, t: &Traced) {
    s.submit_job(&job(r, 1, 1, RATE_ALWAYS), 0).expect("job");
    let l = s.take_leases(&a.id(), 1, 1).expect("take");
    let outputs = vec![BlobRef {
        name: "c".into(),
        hash: Hash32::of(if honest { b"right" } else { b"wrong" }),
        size: 5,
    }];
    let sub =
        crate::common::traced_submission(s, &l[0], a, &result(honest), outputs, t.tree.root());
    s.submit_receipt(&sub, 2).expect("receipt");
    s.reveal_epochs(EPOCH).expect("reveal");
}

/// Job 1 run by `a` with its trace (its result honest or not), and `v`'s
/// verdict disputing it with its own trace (its result honest or not):
/// the dispute's game is open. Returns `v`'s check.
fn disputed<B: Backend>(
    s: &SqlStore<B>,
    r: &NodeKey,
    (a, a_trace, a_honest): (&NodeKey, &Traced, bool),
    (v, v_trace, v_honest): (&NodeKey, &Traced, bool),
) -> Vec<CheckTask> {
    traced_receipt(s, r, a, a_honest, a_trace);
    let c = s.take_checks(&v.id(), 1, EPOCH).expect("take");
    let disputing = VerdictSubmission {
        trace_root: Some(v_trace.tree.root()),
        ..verdict(&c[0], v, v_honest)
    };
    assert_eq!(
        s.submit_verdict(&disputing, EPOCH + 1).expect("verdict"),
        Decision::Disputed
    );
    c
}

/// Both parties answer every question from their traces until the game
/// asks for inputs or ends; the node rounds played.
fn play<B: Backend>(s: &SqlStore<B>, parties: [(&NodeKey, &Traced); 2], now: u64) -> u32 {
    let mut rounds = 0;
    for _ in 0..64 {
        let mut asked = false;
        for (k, t) in parties {
            for q in s.take_questions(&k.id(), now).expect("questions") {
                let d = q.dispute;
                let qu = &q.question;
                let answer = match qu.phase {
                    Phase::Claim => Answer::Claim(t.tree.claim()),
                    Phase::Node => {
                        rounds += 1;
                        Answer::Node(t.tree.reveal_node(k, &d, qu.level, qu.index))
                    }
                    Phase::Leaf => Answer::Leaf(
                        t.steps
                            .get(qu.index as usize)
                            .map(|st| LeafReveal::sign(k, &d, qu.index, st)),
                    ),
                    _ => continue,
                };
                asked = true;
                s.answer_question(&k.id(), &d, answer, now).expect("answer");
            }
        }
        if !asked {
            break;
        }
    }
    rounds / 2
}

/// The output of `step` of `t` as a revealed input (the service checks the
/// tensor against the traces before the store sees it).
fn revealed(t: &Traced, step: u64) -> RevealedInput {
    let proof = t.tree.prove(step).expect("in the trace");
    RevealedInput {
        step,
        call: t.steps[step as usize].call.clone(),
        trace_steps: proof.steps,
        siblings: proof.siblings,
        dtype: 0,
        shape: vec![2],
        blob: Hash32([step as u8; 32]),
        size: 8,
    }
}

/// The renter's view of a check's job (one shard).
fn job_view<B: Backend>(
    s: &SqlStore<B>,
    c: &CheckTask,
    now: u64,
) -> assay_coordinator::store::JobView {
    s.job(&c.record.job_id, now).expect("view").expect("exists")
}

fn step_verdict(check: &CheckTask, w: &NodeKey, output: Hash32) -> VerdictSubmission {
    let (_, step) = check.step.as_ref().expect("a step check");
    VerdictSubmission {
        step_output: Some(output),
        agrees: output == step.outputs[0],
        result: RunResult::of(&check.record.receipt),
        ..verdict(check, w, true)
    }
}

fn a_dispute_is_bisected_to_one_step_that_the_arbiter_recomputes<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, _, v, w) = market(&s);
    let (honest, lie) = (traced(None), traced(Some(6)));
    traced_receipt(&s, &r, &a, true, &honest);
    let c = s.take_checks(&v.id(), 1, EPOCH).expect("take");
    // v lies about step 6 (and so about the result).
    let disputing = VerdictSubmission {
        trace_root: Some(lie.tree.root()),
        ..verdict(&c[0], &v, false)
    };
    assert_eq!(
        s.submit_verdict(&disputing, EPOCH + 1).expect("lie"),
        Decision::Disputed
    );
    assert!(
        s.take_checks(&w.id(), 1, EPOCH + 2).expect("w").is_empty(),
        "the arbiter waits for the game"
    );
    let rounds = play(&s, [(&a, &honest), (&v, &lie)], EPOCH + 2);
    assert_eq!(rounds, 4, "⌈log₂ 10⌉ node rounds");
    // Step 6 scales step 5: both are asked for step 5's output; the
    // provider reveals it (the verifier says nothing).
    let q = s.take_questions(&a.id(), EPOCH + 3).expect("q");
    assert_eq!(q.len(), 1);
    assert_eq!(
        (q[0].question.phase, q[0].question.steps.clone()),
        (Phase::Inputs, vec![5])
    );
    assert!(
        q[0].rerun
            .as_ref()
            .is_some_and(|rerun| rerun.record.id == c[0].record.id && rerun.step.is_none()),
        "with the disputed receipt's run to repeat"
    );
    s.answer_question(
        &a.id(),
        &q[0].dispute,
        Answer::Inputs(vec![revealed(&honest, 5)]),
        EPOCH + 3,
    )
    .expect("inputs");
    assert!(
        s.take_questions(&v.id(), EPOCH + 3).expect("q").is_empty(),
        "the game is over"
    );
    let rc = s.take_checks(&w.id(), 1, EPOCH + 4).expect("w");
    let (_, step) = rc[0].step.clone().expect("one step to recompute");
    assert_eq!((step.index, step.inputs.len()), (6, 1));
    assert_eq!(step.outputs, [honest.steps[6].output, lie.steps[6].output]);
    // The arbiter's recompute is the provider's output: v is overruled.
    assert_eq!(
        s.submit_verdict(&step_verdict(&rc[0], &w, honest.steps[6].output), EPOCH + 5)
            .expect("step verdict"),
        Decision::Overruled
    );
    assert_eq!(s.account(&v.id()).expect("v").stake, STAKE / 2);
    assert_eq!(s.account(&a.id()).expect("a").stake, STAKE);
    let view = job_view(&s, &c[0], EPOCH + 6);
    let verdicts = &view.shards[0].verdicts;
    let note = &verdicts.last().expect("referee").arbitration;
    assert!(
        note.starts_with("step 6 (tensor.scale) after 4 rounds"),
        "{note}"
    );
    ledger_ok(&s);
}

fn a_cheat_bisected_to_its_wrong_step_is_slashed<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, _, v, w) = market(&s);
    // The provider's step 3 is wrong; the verifier's trace is honest.
    let (cheat, honest) = (traced(Some(3)), traced(None));
    disputed(&s, &r, (&a, &cheat, false), (&v, &honest, true));
    play(&s, [(&a, &cheat), (&v, &honest)], EPOCH + 2);
    // The cheat cannot reveal; the verifier's evidence is enough.
    let q = s.take_questions(&a.id(), EPOCH + 3).expect("q");
    s.answer_question(
        &a.id(),
        &q[0].dispute,
        Answer::Unable("no".into()),
        EPOCH + 3,
    )
    .expect("unable");
    assert!(s.take_checks(&w.id(), 1, EPOCH + 3).expect("w").is_empty());
    s.answer_question(
        &v.id(),
        &q[0].dispute,
        Answer::Inputs(vec![revealed(&honest, 2)]),
        EPOCH + 3,
    )
    .expect("inputs");
    let rc = s.take_checks(&w.id(), 1, EPOCH + 4).expect("w");
    assert_eq!(rc[0].step.as_ref().map(|(_, st)| st.index), Some(3));
    assert_eq!(
        s.submit_verdict(&step_verdict(&rc[0], &w, honest.steps[3].output), EPOCH + 5)
            .expect("step verdict"),
        Decision::Rejected
    );
    assert_eq!(s.account(&a.id()).expect("a").stake, STAKE / 2);
    assert_eq!(s.account(&v.id()).expect("v").stake, STAKE);
    ledger_ok(&s);
}

fn a_call_the_guest_did_not_make_is_found_by_re_running_it<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, _, v, w) = market(&s);
    // v claims the guest made another call at step 3.
    let honest = traced(None);
    let mut steps = honest.steps.clone();
    steps[3].call = Call::new("tensor.scale", vec![2], vec![Attr::f32(3.0)]).encode();
    let leaves = steps
        .iter()
        .enumerate()
        .map(|(i, st)| st.leaf(i as u64))
        .collect();
    let lie = Traced {
        tree: TraceTree::new(leaves),
        steps,
    };
    let c = disputed(&s, &r, (&a, &honest, true), (&v, &lie, false));
    play(&s, [(&a, &honest), (&v, &lie)], EPOCH + 2);
    let rc = s.take_checks(&w.id(), 1, EPOCH + 3).expect("w");
    let (_, step) = rc[0].step.clone().expect("a step to decide");
    assert_eq!((step.kind, step.index), (StepKind::Call, 3));
    assert_eq!(
        step.calls,
        [
            Some(honest.steps[3].call.clone()),
            Some(lie.steps[3].call.clone())
        ]
    );
    // The arbiter's re-run made the provider's call.
    let made = trace::call_digest(Some(&honest.steps[3].call));
    assert_eq!(
        s.submit_verdict(&step_verdict(&rc[0], &w, made), EPOCH + 4)
            .expect("call verdict"),
        Decision::Overruled
    );
    assert_eq!(s.account(&v.id()).expect("v").stake, STAKE / 2);
    let view = job_view(&s, &c[0], EPOCH + 5);
    let note = &view.shards[0].verdicts.last().expect("referee").arbitration;
    assert!(
        note.starts_with("the guest's calls at step 3") && note.contains("re-ran the guest"),
        "{note}"
    );
    ledger_ok(&s);
}

fn a_dispute_the_parties_do_not_play_goes_to_a_full_re_execution<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, _, v, w) = market(&s);
    let (honest, lie) = (traced(None), traced(Some(6)));
    let c = disputed(&s, &r, (&a, &honest, true), (&v, &lie, false));
    let q = s.take_questions(&v.id(), EPOCH + 2).expect("q");
    assert_eq!(q[0].question.phase, Phase::Claim);
    // Nobody answers: at the deadline the arbiter re-executes the job.
    assert_eq!(s.expire_disputes(q[0].deadline_ms - 1).expect("early"), 0);
    assert_eq!(s.expire_disputes(q[0].deadline_ms).expect("expire"), 1);
    let view = job_view(&s, &c[0], q[0].deadline_ms);
    let note = &view.shards[0].check_note;
    assert!(
        note.contains("re-executes the job") && note.contains("did not answer"),
        "{note}"
    );
    let now = q[0].deadline_ms + 1;
    let rc = s.take_checks(&w.id(), 1, now).expect("w");
    assert!(rc[0].step.is_none(), "a full re-execution");
    assert!(matches!(
        s.answer_question(
            &a.id(),
            &q[0].dispute,
            Answer::Claim(honest.tree.claim()),
            now
        ),
        Err(Error::Precondition(_))
    ));
    assert_eq!(
        s.submit_verdict(&verdict(&rc[0], &w, true), now + 1)
            .expect("full"),
        Decision::Overruled
    );
    ledger_ok(&s);
}

fn a_step_the_arbiter_cannot_recompute_comes_back_to_it_in_full<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, a, _, v, w) = market(&s);
    let (honest, lie) = (traced(None), traced(Some(6)));
    let c = disputed(&s, &r, (&a, &honest, true), (&v, &lie, false));
    play(&s, [(&a, &honest), (&v, &lie)], EPOCH + 2);
    let q = s.take_questions(&a.id(), EPOCH + 3).expect("q");
    s.answer_question(
        &a.id(),
        &q[0].dispute,
        Answer::Inputs(vec![revealed(&honest, 5)]),
        EPOCH + 3,
    )
    .expect("inputs");
    let rc = s.take_checks(&w.id(), 1, EPOCH + 4).expect("w");
    assert!(rc[0].step.is_some());
    s.return_check(
        &w.id(),
        &rc[0].id,
        "full re-execution: no CPU device",
        EPOCH + 5,
    )
    .expect("return");
    let again = s.take_checks(&w.id(), 1, EPOCH + 6).expect("w again");
    assert_eq!(again.len(), 1, "the same arbiter takes it back");
    assert!(again[0].step.is_none());
    assert_eq!(
        s.submit_verdict(&verdict(&again[0], &w, true), EPOCH + 7)
            .expect("full"),
        Decision::Overruled
    );
    let view = job_view(&s, &c[0], EPOCH + 8);
    let verdicts = &view.shards[0].verdicts;
    let note = &verdicts.last().expect("referee").arbitration;
    assert!(
        note.starts_with("full re-execution: ") && note.contains("no CPU device"),
        "{note}"
    );
    ledger_ok(&s);
}
