//! Reserved clusters in the store: creating one picks the cheapest fitting
//! providers and escrows their reserve prices × hours; the tick pays
//! members pro rata, replaces a member that went offline by one no dearer
//! (or refunds its unused time) and expires the cluster; release pays to
//! the moment and refunds the rest; a cluster's jobs run only on its
//! members, in the slot each holds, at the work price it locked. Every
//! test runs on SQLite and on PostgreSQL (when `ASSAY_TEST_POSTGRES_URL`
//! is set) and ends with the ledger verified and the cluster's books
//! balanced (paid + refunded + escrow left == escrowed, and the escrow
//! account holds exactly what is left).

use crate::common::{key, ledger_ok, receipt_for};

use assay_coordinator::ledger;
use assay_coordinator::rules::clusters::{HOUR_MS, Wanted};
use assay_coordinator::sql::Backend;
use assay_coordinator::state::{ClusterState, MemberState, ShardState};
use assay_coordinator::store::clusters::Party;
use assay_coordinator::store::prelude::*;
use assay_coordinator::store::{ClusterView, NewJob, ProviderInfo};
use assay_coordinator::{Error, MarketConfig, SqlStore};
use assay_protocol::{Hash32, JobSpec, NodeKey};

type Db<'a, B> = &'a dyn Fn(MarketConfig) -> SqlStore<B>;

const IOSD: u64 = 1_000_000;
const FEE_BPS: u64 = 1_000;
const T0: u64 = 1_000_000;
const LIVENESS: u64 = 10 * 60_000;

fn cfg() -> MarketConfig {
    MarketConfig {
        provider_liveness_ms: LIVENESS,
        preference_window_ms: 0,
        fee_bps: FEE_BPS,
        max_attempts: 0,
        ..MarketConfig::default()
    }
}

fn spec() -> JobSpec {
    JobSpec {
        fuel: 1_000_000,
        work_budget: 9_000_000,
        memory_bytes: 1 << 20,
        gpu_memory_bytes: 1 << 20,
        wall_clock_ms: 60_000,
        ..JobSpec::default()
    }
}

/// A provider at work price `price` with `slots` slots and `gpus`,
/// registered at `now` with reserve price `reserve`.
fn provider<B: Backend>(
    s: &SqlStore<B>,
    k: &NodeKey,
    price: u64,
    slots: u32,
    gpus: &[&str],
    reserve: u64,
    now: u64,
) {
    let info = ProviderInfo {
        id: k.id(),
        price,
        cpu_cores: 4,
        memory_bytes: 1 << 30,
        gpus: gpus.iter().map(|g| ((*g).to_string(), 80 << 30)).collect(),
        slots,
        version: "test".into(),
    };
    s.register(&info, 0, now).expect("register");
    s.set_reserve_price(&k.id(), reserve)
        .expect("reserve price");
}

fn wanted(gpus: u32, class: &str, max_price: u64) -> Wanted {
    Wanted {
        gpus,
        gpu_class: class.into(),
        min_reliability_permille: 0,
        max_price,
    }
}

fn funded<B: Backend>(s: &SqlStore<B>, k: &NodeKey, amount: u64) {
    s.mint(&k.id(), amount, &format!("faucet/{}", k.id()), T0)
        .expect("mint");
}

/// The cluster's books balance, against the ledger too.
fn balanced<B: Backend>(s: &SqlStore<B>, v: &ClusterView) {
    assert_eq!(v.paid + v.refunded + v.escrow_left(), v.escrowed, "{v:?}");
    let members_paid: u64 = v.members.iter().map(|m| m.paid).sum();
    assert_eq!(members_paid, v.paid);
    let held = s
        .ledger_entries(0, 1_000_000)
        .expect("entries")
        .iter()
        .fold(0i128, |acc, e| {
            let acct = ledger::cluster_escrow(&v.id);
            if e.credit == acct {
                acc + i128::from(e.amount)
            } else if e.debit == acct {
                acc - i128::from(e.amount)
            } else {
                acc
            }
        });
    assert_eq!(held, i128::from(v.escrow_left()));
    if v.state != ClusterState::Active {
        assert_eq!(v.escrow_left(), 0);
    }
    ledger_ok(s);
}

fn job(renter: &NodeKey, tag: u8, shards: u32, max_price: u64) -> NewJob {
    crate::common::job(&renter.id(), tag, shards, max_price, 0, spec())
}

fn a_cluster_reserves_the_cheapest_fitting_providers<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (renter, a, b, c, h) = (key(1), key(2), key(3), key(4), key(5));
    provider(&s, &a, 10, 1, &[], 2 * IOSD, T0);
    provider(&s, &b, 10, 1, &[], IOSD, T0);
    provider(&s, &c, 10, 1, &[], 3 * IOSD, T0);
    provider(&s, &h, 10, 2, &["NVIDIA H100 80GB HBM3"], 4 * IOSD, T0);
    funded(&s, &renter, 100 * IOSD);
    let v = s
        .create_cluster(&renter.id(), &wanted(2, "", 5 * IOSD / 2), 3, T0)
        .expect("cluster");
    let members: Vec<_> = v.members.iter().map(|m| m.provider).collect();
    assert!(
        members.contains(&a.id()) && members.contains(&b.id()),
        "{members:?}"
    );
    assert_eq!(v.escrowed, (IOSD + 2 * IOSD) * 3);
    assert_eq!(v.ends_ms, T0 + 3 * HOUR_MS);
    assert_eq!(
        s.account(&renter.id()).expect("account").balance,
        100 * IOSD - 9 * IOSD
    );
    // The cheap ones now have no unreserved slot; c is too dear.
    let e = s
        .create_cluster(&renter.id(), &wanted(1, "cpu", 5 * IOSD / 2), 1, T0)
        .expect_err("none left");
    assert!(
        matches!(e, Error::Precondition(ref m) if m.contains("only 0 of the 1")),
        "{e}"
    );
    // A GPU class matches a substring of the GPU's name, any case.
    let g = s
        .create_cluster(&renter.id(), &wanted(1, "h100", 4 * IOSD), 1, T0)
        .expect("gpu cluster");
    assert_eq!(g.members[0].provider, h.id());
    // Limits a stranger may not pass.
    assert!(matches!(
        s.create_cluster(&renter.id(), &wanted(65, "", IOSD), 1, T0),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        s.create_cluster(&renter.id(), &wanted(1, "", IOSD), 721, T0),
        Err(Error::Invalid(_))
    ));
    // A renter without the balance.
    let poor = key(9);
    let e = s
        .create_cluster(&poor.id(), &wanted(1, "h100", 4 * IOSD), 1, T0)
        .expect_err("no balance");
    assert!(
        matches!(e, Error::Precondition(ref m) if m.contains("balance")),
        "{e}"
    );
    let mine = s
        .clusters_of(Party::Renter(renter.id()), false, 100)
        .expect("list");
    assert_eq!(mine.len(), 2);
    let theirs = s
        .clusters_of(Party::Provider(a.id()), true, 100)
        .expect("list");
    assert_eq!(theirs.len(), 1);
    assert_eq!(s.memberships(&h.id()).expect("memberships"), vec![g.id]);
    balanced(&s, &v);
    balanced(&s, &g);
}

fn members_are_paid_pro_rata_and_release_refunds_the_rest<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (renter, a, b) = (key(1), key(2), key(3));
    provider(&s, &a, 10, 1, &[], IOSD, T0);
    provider(&s, &b, 10, 1, &[], 2 * IOSD, T0);
    funded(&s, &renter, 100 * IOSD);
    let v = s
        .create_cluster(&renter.id(), &wanted(2, "", 2 * IOSD), 1, T0)
        .expect("cluster");
    let half = T0 + HOUR_MS / 2;
    for k in [&a, &b] {
        s.heartbeat(&k.id(), 1, &[], half).expect("alive");
    }
    let r = s.run_clusters(half).expect("tick");
    assert_eq!(r.paid, 3 * IOSD / 2);
    assert_eq!(r.dropped, 0);
    // Less the protocol fee (10 %), to each provider's earnings.
    assert_eq!(s.account(&a.id()).expect("a").earnings, IOSD / 2 * 9 / 10);
    assert_eq!(s.account(&b.id()).expect("b").earnings, IOSD * 9 / 10);
    // Within a minute of the last payment nothing more is posted.
    let r = s.run_clusters(half + 1_000).expect("tick");
    assert_eq!(r.paid, 0);
    balanced(&s, &s.cluster(&v.id).expect("read").expect("exists"));

    let stranger = key(8);
    assert!(matches!(
        s.release_cluster(&stranger.id(), &v.id, half),
        Err(Error::PermissionDenied(_))
    ));
    let at = T0 + 3 * HOUR_MS / 4;
    let done = s.release_cluster(&renter.id(), &v.id, at).expect("release");
    assert_eq!(done.state, ClusterState::Released);
    assert_eq!(done.paid, 3 * IOSD * 3 / 4);
    assert_eq!(done.refunded, 3 * IOSD / 4);
    assert_eq!(
        s.account(&renter.id()).expect("renter").balance,
        100 * IOSD - 3 * IOSD + 3 * IOSD / 4
    );
    assert!(done.members.iter().all(|m| m.state == MemberState::Left
        && m.why_left == "released"
        && m.left_ms == Some(at)));
    assert!(matches!(
        s.release_cluster(&renter.id(), &v.id, at),
        Err(Error::Precondition(_))
    ));
    assert!(s.memberships(&a.id()).expect("none").is_empty());
    balanced(&s, &done);
}

fn an_extended_cluster_expires_with_its_members_paid_in_full<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (renter, a) = (key(1), key(2));
    provider(&s, &a, 10, 1, &[], 1_234_567, T0);
    funded(&s, &renter, 100 * IOSD);
    let v = s
        .create_cluster(&renter.id(), &wanted(1, "", 2 * IOSD), 1, T0)
        .expect("cluster");
    let stranger = key(8);
    assert!(matches!(
        s.extend_cluster(&stranger.id(), &v.id, 1, T0),
        Err(Error::PermissionDenied(_))
    ));
    let x = s
        .extend_cluster(&renter.id(), &v.id, 2, T0 + 10)
        .expect("extend");
    assert_eq!(x.ends_ms, T0 + 3 * HOUR_MS);
    assert_eq!(x.escrowed, 3 * 1_234_567);
    assert_eq!(x.members[0].budget, 3 * 1_234_567);
    // Paid along the way, expired at the end: all of it paid, none refunded.
    for t in [T0 + HOUR_MS / 7, T0 + 2 * HOUR_MS + 13] {
        s.heartbeat(&a.id(), 1, &[], t).expect("alive");
        s.run_clusters(t).expect("tick");
    }
    s.heartbeat(&a.id(), 1, &[], T0 + 3 * HOUR_MS - 1)
        .expect("alive");
    let r = s.run_clusters(T0 + 3 * HOUR_MS + 5).expect("tick");
    assert_eq!(r.expired, 1);
    let done = s.cluster(&v.id).expect("read").expect("exists");
    assert_eq!(done.state, ClusterState::Expired);
    assert_eq!(done.paid, done.escrowed);
    assert_eq!(done.refunded, 0);
    assert_eq!(done.ended_ms, Some(T0 + 3 * HOUR_MS));
    assert!(matches!(
        s.extend_cluster(&renter.id(), &v.id, 1, T0 + 3 * HOUR_MS + 6),
        Err(Error::Precondition(_))
    ));
    balanced(&s, &done);
}

fn an_offline_member_is_replaced_by_one_no_dearer_or_refunded<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (renter, a, b, c) = (key(1), key(2), key(3), key(4));
    provider(&s, &a, 10, 1, &[], IOSD / 2, T0);
    provider(&s, &b, 10, 1, &[], IOSD, T0);
    funded(&s, &renter, 100 * IOSD);
    let v = s
        .create_cluster(&renter.id(), &wanted(2, "", 2 * IOSD), 2, T0)
        .expect("cluster");
    // c joins the market later, dearer than a, cheaper than b.
    let t1 = T0 + LIVENESS + 1;
    provider(&s, &c, 10, 1, &[], 4 * IOSD / 5, t1);
    s.heartbeat(&a.id(), 1, &[], t1).expect("a alive");
    // b went silent: it leaves, paid to now, and c takes its slot.
    let r = s.run_clusters(t1).expect("tick");
    assert_eq!((r.dropped, r.replaced), (1, 1));
    let v1 = s.cluster(&v.id).expect("read").expect("exists");
    let b_row = v1.members.iter().find(|m| m.provider == b.id()).expect("b");
    assert_eq!(b_row.state, MemberState::Left);
    assert_eq!(b_row.why_left, "offline");
    assert_eq!(
        b_row.paid,
        assay_coordinator::rules::clusters::worth(IOSD, t1 - T0)
    );
    let c_row = v1.members.iter().find(|m| m.provider == c.id()).expect("c");
    assert_eq!(c_row.state, MemberState::Active);
    assert_eq!(
        c_row.budget,
        assay_coordinator::rules::clusters::worth(4 * IOSD / 5, T0 + 2 * HOUR_MS - t1)
    );
    assert!(
        v1.refunded > 0,
        "the cheaper replacement's difference comes back"
    );
    balanced(&s, &v1);
    assert_eq!(s.memberships(&c.id()).expect("c"), vec![v.id]);

    // a goes silent: nobody asks ≤ 0.5 IOSD, so its unused time is refunded.
    let t2 = t1 + LIVENESS + 1;
    s.heartbeat(&c.id(), 1, &[], t2).expect("c alive");
    let r = s.run_clusters(t2).expect("tick");
    assert_eq!((r.dropped, r.replaced), (1, 0));
    let v2 = s.cluster(&v.id).expect("read").expect("exists");
    assert_eq!(v2.active_members().count(), 1);
    balanced(&s, &v2);
    // The rest expires normally.
    s.heartbeat(&c.id(), 1, &[], T0 + 2 * HOUR_MS - 1)
        .expect("c alive");
    s.run_clusters(T0 + 2 * HOUR_MS).expect("tick");
    balanced(&s, &s.cluster(&v.id).expect("read").expect("exists"));
}

fn a_cluster_job_runs_only_on_its_members_at_their_locked_price<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (renter, member, outsider) = (key(1), key(2), key(3));
    // The member has two slots: one reserved, one for the market.
    provider(&s, &member, 50, 2, &[], IOSD, T0);
    provider(&s, &outsider, 10, 4, &[], 5 * IOSD, T0);
    funded(&s, &renter, 100 * IOSD);
    let v = s
        .create_cluster(&renter.id(), &wanted(1, "", IOSD), 1, T0)
        .expect("cluster");
    assert_eq!(v.members[0].provider, member.id());
    assert_eq!(v.members[0].work_price, 50);
    // A new price later does not change what the cluster pays.
    provider(&s, &member, 70, 2, &[], IOSD, T0 + 1);

    // Who may submit, and to what.
    let other = key(7);
    funded(&s, &other, 100 * IOSD);
    assert!(matches!(
        s.submit_cluster_job(&job(&other, 1, 1, 100), &v.id, T0 + 2),
        Err(Error::PermissionDenied(_))
    ));
    assert!(matches!(
        s.submit_cluster_job(&job(&renter, 2, 1, 100), &Hash32([9; 32]), T0 + 2),
        Err(Error::NotFound(_))
    ));
    let e = s
        .submit_cluster_job(&job(&renter, 3, 1, 49), &v.id, T0 + 2)
        .expect_err("too cheap");
    assert!(
        matches!(e, Error::Precondition(ref m) if m.contains("--max-price 50")),
        "{e}"
    );

    let cj = job(&renter, 4, 2, 100);
    s.submit_cluster_job(&cj, &v.id, T0 + 3)
        .expect("cluster job");
    let market = job(&renter, 5, 2, 100);
    s.submit_job(&market, T0 + 4).expect("market job");

    // The outsider, cheaper, gets only market shards.
    let out = s.take_leases(&outsider.id(), 4, T0 + 5).expect("take");
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|l| l.job_id == market.id));
    // The member: one cluster shard in its reserved slot, at its locked
    // price, and a market shard in its open slot.
    let market2 = job(&renter, 8, 1, 100);
    s.submit_job(&market2, T0 + 5).expect("market job");
    let got = s.take_leases(&member.id(), 4, T0 + 6).expect("take");
    assert_eq!(got.len(), 2, "{got:?}");
    let cluster_lease = got
        .iter()
        .find(|l| l.job_id == cj.id)
        .expect("a cluster shard");
    assert_eq!(cluster_lease.price, 50);
    assert!(got.iter().any(|l| l.job_id == market2.id && l.price == 70));
    // Its reserved slot is busy: the second cluster shard waits for it,
    // and its job says so.
    let waiting = s.job(&cj.id, T0 + 7).expect("job").expect("exists");
    let queued = waiting
        .shards
        .iter()
        .find(|sh| sh.state == ShardState::Queued)
        .expect("a queued shard");
    assert!(
        queued.why_not_matched.contains("reserved cluster"),
        "{}",
        queued.why_not_matched
    );
    assert!(
        s.take_leases(&member.id(), 4, T0 + 7)
            .expect("take")
            .is_empty()
    );
    s.submit_receipt(&receipt_for(&s, cluster_lease, &member), T0 + 8)
        .expect("receipt");
    let next = s.take_leases(&member.id(), 4, T0 + 9).expect("take");
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].job_id, cj.id);
    assert!(
        s.take_leases(&outsider.id(), 4, T0 + 9)
            .expect("take")
            .is_empty()
    );

    // A third cluster shard is queued when the cluster is released: it
    // fails and its escrow comes back; the leased one runs on.
    let late = job(&renter, 6, 1, 100);
    s.submit_cluster_job(&late, &v.id, T0 + 10)
        .expect("late job");
    let done = s
        .release_cluster(&renter.id(), &v.id, T0 + 11)
        .expect("release");
    let view = s.job(&late.id, T0 + 12).expect("job").expect("exists");
    assert_eq!(view.shards[0].state, ShardState::Failed);
    assert_eq!(
        s.account(&renter.id()).expect("renter").balance
            + ledger_balance(&s, &ledger::escrow(&cj.id))
            + ledger_balance(&s, &ledger::escrow(&market.id))
            + ledger_balance(&s, &ledger::escrow(&market2.id))
            + done.paid,
        100 * IOSD,
        "the late job's escrow and the cluster's unused time came back"
    );
    assert!(matches!(
        s.submit_cluster_job(&job(&renter, 7, 1, 100), &v.id, T0 + 12),
        Err(Error::Precondition(ref m)) if m.contains("ended")
    ));
    // With the cluster gone the member's slot is the market's again.
    let again = s.take_leases(&member.id(), 4, T0 + 13).expect("take");
    assert!(again.is_empty(), "nothing queued for it: {again:?}");
    balanced(&s, &done);
}

/// A reserved slot is not the market's: a member with one slot runs only
/// its cluster's shards.
fn a_members_reserved_slot_is_not_the_markets<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (renter, member) = (key(1), key(2));
    provider(&s, &member, 10, 1, &[], IOSD, T0);
    funded(&s, &renter, 100 * IOSD);
    let market = job(&renter, 1, 1, 100);
    s.submit_job(&market, T0).expect("market job");
    let v = s
        .create_cluster(&renter.id(), &wanted(1, "", IOSD), 1, T0)
        .expect("cluster");
    assert!(
        s.take_leases(&member.id(), 1, T0 + 1)
            .expect("take")
            .is_empty()
    );
    s.release_cluster(&renter.id(), &v.id, T0 + 2)
        .expect("release");
    assert_eq!(
        s.take_leases(&member.id(), 1, T0 + 3).expect("take").len(),
        1
    );
    balanced(&s, &s.cluster(&v.id).expect("read").expect("exists"));
}

fn ledger_balance<B: Backend>(s: &SqlStore<B>, account: &str) -> u64 {
    s.ledger_entries(0, 1_000_000)
        .expect("entries")
        .iter()
        .fold(0i128, |acc, e| {
            if e.credit == account {
                acc + i128::from(e.amount)
            } else if e.debit == account {
                acc - i128::from(e.amount)
            } else {
                acc
            }
        })
        .try_into()
        .expect("non-negative")
}

both_backends!(
    a_cluster_reserves_the_cheapest_fitting_providers,
    members_are_paid_pro_rata_and_release_refunds_the_rest,
    an_extended_cluster_expires_with_its_members_paid_in_full,
    an_offline_member_is_replaced_by_one_no_dearer_or_refunded,
    a_cluster_job_runs_only_on_its_members_at_their_locked_price,
    a_members_reserved_slot_is_not_the_markets,
);
