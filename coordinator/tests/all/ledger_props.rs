//! Property tests of the ledger on a real (SQLite) store: any sequence of
//! market operations — including duplicated and reordered submissions,
//! returns (some after the job's watchdog, for a fee), expiries, repeated
//! settlement, verification with cheating
//! providers, lying verifiers, disputes and slashing, paying in IO,
//! unstaking, reward epochs, notes and bonds — keeps every supply
//! invariant of both units (checked by `verify_ledger`), keeps every account
//! but issuance non-negative, settles each receipt once and leaves a hash
//! chain that verifies; and any change to any entry is found.

use std::collections::BTreeMap;

use assay_coordinator::config::{EconomyConfig, PriceSource};
use assay_coordinator::ledger::{self, Entry, Unit};
use assay_coordinator::sqlite::Sqlite;
use assay_coordinator::store::leases::GiveBack;
use assay_coordinator::store::prelude::*;
use assay_coordinator::store::{
    Lease, NewJob, ProviderInfo, ReceiptSubmission, RunResult, VerdictSubmission, VerifierInfo,
};
use assay_coordinator::{Error, MarketConfig, SqlStore};
use assay_protocol::{Hash32, JobSpec, NodeKey, Outcome, WorkDone, outputs_root};
use proptest::prelude::*;

fn key(n: u8) -> NodeKey {
    NodeKey::from_seed([n + 1; 32])
}

#[derive(Debug, Clone)]
enum Op {
    Mint {
        node: u8,
        amount: u64,
        reference: u8,
    },
    Stake {
        node: u8,
        amount: u64,
    },
    Submit {
        renter: u8,
        tag: u8,
        shards: u32,
        max_price: u64,
        rate_ppm: u32,
        pay_in_io: bool,
    },
    Unstake {
        node: u8,
        amount: u64,
    },
    /// Provider 3 or 4 issues a note and gives some shares to node 0..3.
    Note {
        provider: u8,
        shares: u64,
        days: u32,
        give: u64,
        to: u8,
    },
    /// Provider 3 or 4 issues a bond; node 0..3 buys some of it.
    Bond {
        provider: u8,
        principal: u64,
        coupon_bps: u32,
        days: u32,
        buyer: u8,
        buy: u64,
    },
    Take {
        provider: u8,
        max: u32,
    },
    Complete {
        pick: usize,
        fuel: u64,
        twice: bool,
        cheat: bool,
    },
    /// Verifier 5 or 6 takes a check and answers it, honestly or not.
    Verify {
        verifier: u8,
        honest: bool,
    },
    /// A lease given back; `watchdog`: the job's own watchdog ended the run
    /// (the renter pays the provider a fee out of the shard's escrow).
    Return {
        pick: usize,
        fault: bool,
        watchdog: bool,
    },
    Advance {
        ms: u64,
    },
    SettleAgain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3, 0u64..20_000, 0u8..4).prop_map(|(node, amount, reference)| Op::Mint {
            node,
            amount,
            reference
        }),
        (0u8..5, 0u64..3_000).prop_map(|(node, amount)| Op::Stake { node, amount }),
        (
            0u8..3,
            0u8..6,
            1u32..4,
            1u64..300,
            prop_oneof![Just(0u32), Just(500_000), Just(1_000_000)],
            any::<bool>(),
        )
            .prop_map(
                |(renter, tag, shards, max_price, rate_ppm, pay_in_io)| Op::Submit {
                    renter,
                    tag,
                    shards,
                    max_price,
                    rate_ppm,
                    pay_in_io,
                }
            ),
        (0u8..7, 0u64..3_000_000).prop_map(|(node, amount)| Op::Unstake { node, amount }),
        (3u8..5, 1u64..200, 1u32..40, 0u64..200, 0u8..3).prop_map(
            |(provider, shares, days, give, to)| Op::Note {
                provider,
                shares,
                days,
                give,
                to
            }
        ),
        (
            3u8..5,
            1u64..5_000,
            0u32..10_000,
            1u32..40,
            0u8..3,
            0u64..5_000
        )
            .prop_map(
                |(provider, principal, coupon_bps, days, buyer, buy)| Op::Bond {
                    provider,
                    principal,
                    coupon_bps,
                    days,
                    buyer,
                    buy
                }
            ),
        (3u8..5, 1u32..4).prop_map(|(provider, max)| Op::Take { provider, max }),
        (
            any::<usize>(),
            0u64..1_000_000,
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(pick, fuel, twice, cheat)| Op::Complete {
                pick,
                fuel,
                twice,
                cheat
            }),
        (5u8..7, any::<bool>()).prop_map(|(verifier, honest)| Op::Verify { verifier, honest }),
        (any::<usize>(), any::<bool>(), any::<bool>()).prop_map(|(pick, fault, watchdog)| {
            Op::Return {
                pick,
                fault,
                watchdog,
            }
        }),
        (0u64..1_500).prop_map(|ms| Op::Advance { ms }),
        Just(Op::SettleAgain),
    ]
}

fn cfg() -> MarketConfig {
    MarketConfig {
        lease_ttl_ms: 1_000,
        provider_liveness_ms: 10_000,
        preference_window_ms: 0,
        settlement_delay_ms: 300,
        fee_bps: 250,
        max_attempts: 3,
        epoch_ms: 200,
        check_ttl_ms: 700,
        // Verifier 6 is the arbiter (the property lets it lie too: the
        // books must balance whoever is slashed).
        arbiters: vec![key(6).id()],
        economy: EconomyConfig {
            hour_ms: 400,
            reward_epoch_ms: 300,
            // An IO price that does not divide evenly.
            price: PriceSource::Fixed(1_234_567),
            day_ms: 50,
            unstake_cooldown_ms: 700,
            ..EconomyConfig::default()
        },
        ..MarketConfig::default()
    }
}

/// The true result of every job here, what a cheat claims, what a liar claims.
fn root(what: &[u8]) -> Hash32 {
    outputs_root([("o", what)])
}

fn job(renter: u8, tag: u8, shards: u32, max_price: u64) -> NewJob {
    job_at(renter, tag, shards, max_price, 0)
}

fn job_at(renter: u8, tag: u8, shards: u32, max_price: u64, rate_ppm: u32) -> NewJob {
    let spec = JobSpec {
        fuel: 1_000_000,
        work_budget: 2_000_000,
        ..JobSpec::default()
    };
    crate::common::job(&key(renter).id(), tag, shards, max_price, rate_ppm, spec)
}

fn submission(s: &SqlStore<Sqlite>, lease: &Lease, provider: u8, fuel: u64) -> ReceiptSubmission {
    submission_of(s, lease, provider, fuel, b"x")
}

fn submission_of(
    s: &SqlStore<Sqlite>,
    lease: &Lease,
    provider: u8,
    fuel: u64,
    output: &[u8],
) -> ReceiptSubmission {
    let result = RunResult {
        outputs_root: root(output),
        outcome: Outcome::Success,
        fuel_used: fuel,
        work: WorkDone {
            flops: fuel / 2,
            bytes: 7,
        },
    };
    crate::common::submission(s, lease, &key(provider), &result, vec![])
}

/// Runs `ops`; returns the store and the total minted.
fn run(ops: &[Op]) -> (crate::common::SqliteDb, u64) {
    let db = crate::common::SqliteDb::new();
    let s = db.open(cfg());
    let mut now = 1u64;
    let mut minted = 0u64;
    let mut minted_refs = std::collections::BTreeSet::new();
    let mut leases: Vec<(Lease, u8)> = Vec::new();
    let mut cheated = std::collections::BTreeSet::new();
    // Providers 3, 4 and verifiers 5, 6 hold stake (minted for them).
    for n in 3..7u8 {
        s.mint(&key(n).id(), 10_000_000, &format!("seed/{n}"), now)
            .expect("mint");
        minted += 10_000_000;
    }
    // Every node holds IO to stake (renters stake for priority).
    for n in 0..7u8 {
        s.faucet(&key(n).id(), Unit::Io, 10_000_000, &format!("io/{n}"), now)
            .expect("IO faucet");
    }
    for v in 5..7u8 {
        s.register_verifier(
            &VerifierInfo {
                id: key(v).id(),
                version: "t".into(),
                backend: "cpu".into(),
            },
            5_000_000,
            now,
        )
        .expect("register verifier");
    }
    for p in 3..5u8 {
        s.register(
            &ProviderInfo {
                id: key(p).id(),
                price: 10 + u64::from(p),
                cpu_cores: 1,
                memory_bytes: 1 << 40,
                gpus: vec![],
                slots: 3,
                version: "t".into(),
            },
            5_000_000,
            now,
        )
        .expect("register");
    }
    for op in ops {
        match op.clone() {
            Op::Mint {
                node,
                amount,
                reference,
            } => {
                let r = format!("mint/{node}/{reference}");
                s.mint(&key(node).id(), amount, &r, now).expect("mint");
                if amount > 0 && minted_refs.insert(r) {
                    minted += amount;
                }
            }
            Op::Stake { node, amount } => {
                let _ = s.stake(&key(node).id(), amount, &format!("stake/{now}/{node}"), now);
            }
            Op::Submit {
                renter,
                tag,
                shards,
                max_price,
                rate_ppm,
                pay_in_io,
            } => {
                let j = NewJob {
                    pay_in: if pay_in_io { Unit::Io } else { Unit::Iosd },
                    ..job_at(renter, tag, shards, max_price, rate_ppm)
                };
                let _ = s.submit_job(&j, now);
            }
            Op::Unstake { node, amount } => {
                let _ = s.unstake(
                    &key(node).id(),
                    amount,
                    &format!("unstake/{now}/{node}"),
                    now,
                );
            }
            Op::Note {
                provider,
                shares,
                days,
                give,
                to,
            } => {
                if let Ok(n) = s.issue_note(&key(provider).id(), shares, days, now) {
                    let _ = s.transfer_shares(&key(provider).id(), &n.id, &key(to).id(), give);
                }
            }
            Op::Bond {
                provider,
                principal,
                coupon_bps,
                days,
                buyer,
                buy,
            } => {
                if let Ok(b) = s.issue_bond(&key(provider).id(), principal, coupon_bps, days, now) {
                    let _ = s.buy_bond(&key(buyer).id(), &b.id, buy, &format!("bond/{now}"), now);
                }
            }
            Op::Take { provider, max } => {
                match s.take_leases(&key(provider).id(), max, now) {
                    Ok(taken) => leases.extend(taken.into_iter().map(|l| (l, provider))),
                    // A provider caught by the arbiter is suspended from the
                    // market — a cheat, or an honest one the arbiter lied
                    // about (here it may: the books must balance anyway).
                    Err(Error::PermissionDenied(_))
                        if cheated.contains(&provider) || suspended(&s, provider, now) => {}
                    Err(e) => panic!("take by provider {provider}: {e}"),
                }
            }
            Op::Complete {
                pick,
                fuel,
                twice,
                cheat,
            } => {
                if !leases.is_empty() {
                    let (l, p) = leases[pick % leases.len()].clone();
                    let output: &[u8] = if cheat { b"cheat" } else { b"x" };
                    let sub = submission_of(&s, &l, p, fuel, output);
                    let first = s.submit_receipt(&sub, now);
                    if cheat && first.is_ok() {
                        cheated.insert(p);
                    }
                    if twice {
                        let second = s.submit_receipt(&sub, now + 1);
                        if let (Ok(a), Ok(b)) = (&first, &second) {
                            assert_eq!(a, b, "a duplicate submission gets the same answer");
                        }
                    }
                }
            }
            Op::Return {
                pick,
                fault,
                watchdog,
            } => {
                if !leases.is_empty() {
                    let (l, p) = leases[pick % leases.len()].clone();
                    let how = GiveBack::new(fault, watchdog, "test");
                    let _ = s.give_back(&key(p).id(), &l.lease_id, how, now);
                }
            }
            Op::Advance { ms } => {
                now += ms;
                for p in 3..5u8 {
                    if ms % 3 != 0 {
                        let _ = s.heartbeat(&key(p).id(), 1, &[], now);
                    }
                }
                s.expire_leases(now).expect("expire");
                s.reveal_epochs(now).expect("reveal");
                s.expire_checks(now).expect("expire checks");
                s.settle_due(now).expect("settle");
                s.close_reward_epochs(now).expect("rewards");
                s.release_unbonded(now).expect("unbond");
                s.mature_bonds(now).expect("bonds");
            }
            Op::Verify { verifier, honest } => {
                let v = key(verifier).id();
                let Ok(checks) = s.take_checks(&v, 1, now) else {
                    continue; // suspended after being overruled
                };
                for c in checks {
                    // The true result has output "x" and the receipt's fuel and work.
                    let mut result = RunResult::of(&c.record.receipt);
                    result.outputs_root = root(if honest { b"x" } else { b"lie" });
                    let agrees = result == RunResult::of(&c.record.receipt);
                    s.submit_verdict(
                        &VerdictSubmission {
                            check_id: c.id,
                            receipt_id: c.record.id,
                            verifier: v,
                            result,
                            agrees,
                            trace_root: None,
                            step_output: None,
                            nonce: 0,
                            expires_at_ms: now,
                            signature: vec![],
                        },
                        now,
                    )
                    .expect("a verdict on a held check is accepted");
                }
            }
            Op::SettleAgain => {
                s.settle_due(now).expect("settle");
                s.settle_due(now).expect("settle");
            }
        }
    }
    (db, minted)
}

fn suspended(s: &SqlStore<Sqlite>, provider: u8, now: u64) -> bool {
    s.providers(now)
        .expect("providers")
        .iter()
        .any(|p| p.id == key(provider).id() && p.suspended)
}

fn check(s: &SqlStore<Sqlite>, minted: u64) -> Result<(), TestCaseError> {
    let r = s.verify_ledger().expect("verify");
    prop_assert!(r.ok(), "problems: {:?}", r.problems);
    // The faucet and jobs paid in IO mint IOSD, each at least what it asked
    // for (every mint's match with its burn is `verify_ledger`'s check).
    prop_assert!(
        r.supply.iosd.minted >= minted,
        "the faucet minted what it was asked"
    );
    prop_assert_eq!(
        r.supply.iosd.supply,
        r.supply.iosd.minted - r.supply.iosd.burned,
        "IOSD is conserved"
    );
    prop_assert_eq!(r.supply.io.cap, ledger::IO_CAP);
    prop_assert_eq!(
        r.supply.io.held,
        r.supply.io.genesis + r.supply.io.emitted - r.supply.io.burned,
        "IO is conserved"
    );
    prop_assert!(r.supply.io.emitted <= ledger::REWARD_POOL);
    for (name, v) in &r.balances {
        if !name.ends_with("/issuance") {
            prop_assert!(*v >= 0, "{} is negative: {}", name, v);
        }
    }
    prop_assert_eq!(
        s.supply().expect("supply"),
        r.supply,
        "the stored supply is the entries'"
    );
    let entries = s.ledger_entries(0, 1_000_000).expect("entries");
    let mut pays: BTreeMap<String, u32> = BTreeMap::new();
    for e in &entries {
        if let Some(rest) = e.reference.strip_prefix("settle/") {
            *pays.entry(rest.to_string()).or_default() += 1;
        }
    }
    prop_assert!(
        pays.values().all(|n| *n == 1),
        "a receipt settled twice: {:?}",
        pays
    );
    // Every settled receipt paid at most its shard's escrow.
    for rec in s.receipts_after(0, 10_000).expect("receipts") {
        if let Some(paid) = rec.paid {
            prop_assert!(paid <= 3_000_000 * 300 / 1_000_000 + 1, "paid {}", paid);
        }
    }
    Ok(())
}

/// Found by the property below: a provider a verifier caught cheating is
/// refused further leases, and the books still balance.
#[test]
fn a_provider_caught_cheating_is_refused_leases_and_the_books_balance() {
    let ops = [
        Op::Mint {
            node: 1,
            amount: 2034,
            reference: 0,
        },
        Op::Submit {
            renter: 1,
            tag: 0,
            shards: 1,
            max_price: 14,
            rate_ppm: 1_000_000,
            pay_in_io: false,
        },
        Op::Take {
            provider: 4,
            max: 1,
        },
        Op::Complete {
            pick: 0,
            fuel: 0,
            twice: false,
            cheat: true,
        },
        Op::Advance { ms: 199 },
        Op::Verify {
            verifier: 5,
            honest: true,
        },
        Op::Verify {
            verifier: 6,
            honest: true,
        },
        Op::Take {
            provider: 4,
            max: 1,
        },
    ];
    let (db, minted) = run(&ops);
    let s = db.open(cfg());
    let refused = s.take_leases(&key(4).id(), 1, 1_000);
    assert!(
        matches!(refused, Err(Error::PermissionDenied(_))),
        "a caught provider takes no lease: {refused:?}"
    );
    check(&s, minted).expect("the books balance");
}

/// Watchdog fees come out of a shard's escrow (the second one capped by
/// what is left), a later receipt settles what they left, and the books
/// balance.
#[test]
fn watchdog_fees_come_out_of_the_escrow_and_the_books_balance() {
    let ops = [
        Op::Mint {
            node: 0,
            amount: 10_000,
            reference: 0,
        },
        Op::Submit {
            renter: 0,
            tag: 0,
            shards: 1,
            max_price: 20,
            rate_ppm: 0,
            pay_in_io: false,
        },
        Op::Take {
            provider: 3,
            max: 1,
        },
        Op::Return {
            pick: 0,
            fault: true,
            watchdog: true,
        },
        Op::Take {
            provider: 4,
            max: 1,
        },
        Op::Return {
            pick: 1,
            fault: true,
            watchdog: true,
        },
        Op::Submit {
            renter: 1,
            tag: 1,
            shards: 1,
            max_price: 299,
            rate_ppm: 500_000,
            pay_in_io: true,
        },
        Op::Take {
            provider: 3,
            max: 1,
        },
        Op::Return {
            pick: 2,
            fault: false,
            watchdog: true,
        },
        Op::Take {
            provider: 4,
            max: 1,
        },
        Op::Complete {
            pick: 3,
            fuel: 900_000,
            twice: true,
            cheat: false,
        },
        Op::Advance { ms: 1_400 },
        Op::Advance { ms: 1_400 },
    ];
    let (db, minted) = run(&ops);
    let s = db.open(cfg());
    let fees: u64 = s
        .ledger_entries(0, 1_000_000)
        .expect("entries")
        .iter()
        .filter(|e| e.reference.starts_with("watchdog/"))
        .map(|e| e.amount)
        .sum();
    // 60 µIOSD of escrow (20 × 3M units): the first fee takes it all, the
    // second finds nothing; the second job pays one 1,000 fee.
    assert_eq!(fees, 60 + 1_000, "the fees paid");
    check(&s, minted).expect("the books balance");
    s.expire_leases(u64::MAX / 4).expect("expire");
    s.settle_due(u64::MAX / 4).expect("settle");
    check(&s, minted).expect("the books balance after draining");
}

/// Failing cases are kept in `ledger_props.proptest-regressions` beside
/// this file and replayed first (`WithSource`: this binary's `main.rs`
/// would otherwise send proptest's default to a `proptest-regressions/`
/// folder).
fn regressions() -> Option<Box<dyn proptest::test_runner::FailurePersistence>> {
    Some(Box::new(
        proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
    ))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: regressions(), ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_conserves_credits_and_verifies(ops in proptest::collection::vec(op(), 1..40)) {
        let (db, minted) = run(&ops);
        let s = db.open(cfg());
        check(&s, minted)?;
        // Drain: everything due settles, and escrow of fully settled jobs is empty.
        s.expire_leases(u64::MAX / 4).expect("expire");
        s.settle_due(u64::MAX / 4).expect("settle");
        check(&s, minted)?;
    }

    #[test]
    fn settlement_does_not_depend_on_submission_order(
        order in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle(),
        dups in proptest::collection::vec(0usize..6, 0..6),
        fuels in proptest::collection::vec(0u64..1_000_000, 6),
    ) {
        // The same six receipts, submitted in order 0..6 vs shuffled with duplicates.
        let final_balances = |seq: Vec<usize>| {
            let db = crate::common::SqliteDb::new();
            let s = db.open(cfg());
            s.mint(&key(0).id(), 1_000_000_000, "m", 0).expect("mint");
            s.register(&ProviderInfo {
                id: key(3).id(), price: 17, cpu_cores: 1, memory_bytes: 1 << 40,
                gpus: vec![], slots: 8, version: "t".into(),
            }, 0, 0).expect("reg");
            s.submit_job(&job(0, 1, 6, 50), 0).expect("job");
            let mut leases = s.take_leases(&key(3).id(), 8, 1).expect("take");
            leases.sort_by_key(|l| l.spec.shard.index);
            for (t, i) in seq.iter().enumerate() {
                let sub = submission(&s, &leases[*i], 3, fuels[*i]);
                s.submit_receipt(&sub, 10 + t as u64).expect("receipt");
                s.settle_due(10 + t as u64).expect("settle");
            }
            s.settle_due(1_000_000).expect("settle");
            let r = s.verify_ledger().expect("verify");
            assert!(r.ok(), "{:?}", r.problems);
            r.balances
        };
        let mut shuffled = order.clone();
        shuffled.extend(dups);
        prop_assert_eq!(final_balances((0..6).collect()), final_balances(shuffled));
    }

    #[test]
    fn any_change_to_any_entry_is_detected(
        amounts in proptest::collection::vec(1u64..1_000, 2..20),
        victim in any::<usize>(),
        field in 0u8..6,
        delta in 1u64..50,
    ) {
        // A valid chain: genesis, then transfers a → b.
        let mut entries: Vec<Entry> = Vec::new();
        let mut prev = [0u8; 32];
        let genesis = [ledger::GENESIS_ALLOCATION, ledger::REWARD_POOL];
        for (i, amount) in genesis.into_iter().chain(amounts.iter().copied().map(|a| a / 2 + 1)).enumerate() {
            let (kind, debit, credit) = match i {
                0 => ("genesis", ledger::issuance(Unit::Io), "io/genesis:a".to_string()),
                1 => ("genesis", ledger::issuance(Unit::Io), ledger::UNEMITTED.to_string()),
                _ => ("t", "io/genesis:a".into(), "io/b".into()),
            };
            let mut e = Entry {
                seq: i as u64 + 1, format: ledger::FORMAT, unit: Unit::Io, kind: kind.into(), debit, credit, amount,
                reference: format!("r{i}"), at_ms: i as u64, prev_hash: prev, hash: [0; 32],
            };
            e.hash = e.computed_hash();
            prev = e.hash;
            entries.push(e);
        }
        prop_assert!(ledger::verify(&entries, None, None).ok());
        let v = victim % entries.len();
        let e = &mut entries[v];
        match field {
            0 => e.amount += delta,
            1 => e.kind.push('x'),
            2 => e.debit.push('x'),
            3 => e.reference.push('x'),
            4 => e.at_ms += delta,
            _ => e.seq += delta,
        }
        let r = ledger::verify(&entries, None, None);
        prop_assert!(!r.ok(), "changing field {} of entry {} went unnoticed", field, v + 1);
    }
}
