//! Verification: sampling receipts with a committed-then-revealed epoch
//! seed, handing checks to verifiers, acting on their verdicts (settle,
//! dispute, slash) — the coordinator's side of `ARCHITECTURE.md`,
//! "Verification".
//!
//! A receipt's life:
//!
//! ```text
//!  recorded ─ rate 0 ─────────────────────────────────► unverified ─ window ─► settled
//!     │
//!     └─► pending ─ epoch seed revealed ─┬─ not drawn ─► not-sampled ─ window ─► settled
//!                                        └─ drawn ─────► sampled ── verdict ──┐
//!   (a suspended provider's receipts skip to sampled, reason "audit")         │
//!                     ┌───────────────── agrees ◄────────────────────────────┘
//!                     ▼                     disagrees ─► disputed ─ referee ─┐
//!                 verified (paid:           ┌────────────────────────────────┘
//!                 provider + verifier)      ├─ sides with the provider ─► verified; the verifier is slashed
//!                                           ├─ sides with the verifier ─► rejected; the provider is slashed,
//!                                           │                              the shard re-queued, its other
//!                                           │                              unsettled receipts audited
//!                                           └─ sides with neither ─────► void; the shard re-queued
//! ```
//!
//! Every money movement is a ledger entry with a reference derived from the
//! receipt (`settle/<receipt>/…`, `slash/<receipt>/…`), so a verdict retried
//! or processed by two replicas at once moves money once.

use assay_protocol::challenge::VERIFIER_FLOOR_MFLOPS;
use assay_protocol::market::cost;
use assay_protocol::verification::{BPS, commitment, is_sampled};
use assay_protocol::{Hash32, NodeId, Outcome, WorkDone};

use crate::Error;
use crate::ledger::{self, Movement};
use crate::market::{RECEIPT_COLS, json, lease_from, own_inputs, random_id, unjson};
use crate::sql::{Backend, Conn, Row, Value, int};
use crate::store::{
    CheckTask, Decision, EpochSeed, JobView, ReceiptRecord, RunResult, ShardView,
    VerdictSubmission, VerdictView, VerifierInfo,
};
use crate::{SqlStore, market};

/// The epoch a receipt recorded now belongs to, with its commitment
/// published (created if absent). Never an epoch whose seed is already out:
/// a replica with a slow clock moves on to the first unrevealed epoch.
pub(crate) fn open_epoch(c: &mut dyn Conn, epoch_ms: u64, now_ms: u64) -> Result<u64, Error> {
    let mut e = now_ms / epoch_ms.max(1);
    loop {
        // The background tick publishes epochs ahead, so the row is nearly
        // always there: draw a seed only when it is not.
        let row = c.query_opt(
            "SELECT revealed_at FROM epochs WHERE epoch = $1",
            &[int(e)?],
        )?;
        let revealed = match row {
            Some(r) => r.opt_i64(0)?.is_some(),
            None => {
                ensure_epoch(c, e, now_ms)?;
                c.query_one(
                    "SELECT revealed_at FROM epochs WHERE epoch = $1",
                    &[int(e)?],
                )?
                .opt_i64(0)?
                .is_some()
            }
        };
        if !revealed {
            return Ok(e);
        }
        e += 1;
    }
}

fn ensure_epoch(c: &mut dyn Conn, epoch: u64, now_ms: u64) -> Result<(), Error> {
    let seed = random_id()?;
    c.exec(
        "INSERT INTO epochs (epoch, seed, commitment, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (epoch) DO NOTHING",
        &[
            int(epoch)?,
            Value::Blob(seed.0.to_vec()),
            (&commitment(&seed.0)).into(),
            int(now_ms)?,
        ],
    )?;
    Ok(())
}

/// Opens a check of a receipt; `excluded` nodes may not take it.
pub(crate) fn open_check(
    c: &mut dyn Conn,
    receipt: &Hash32,
    role: &str,
    reason: &str,
    excluded: &[NodeId],
    now_ms: u64,
) -> Result<Hash32, Error> {
    let id = random_id()?;
    let excluded: Vec<String> = excluded.iter().map(NodeId::to_hex).collect();
    c.exec(
        "INSERT INTO checks (id, receipt_id, role, reason, state, excluded, created_at) \
         VALUES ($1, $2, $3, $4, 'open', $5, $6)",
        &[
            (&id).into(),
            receipt.into(),
            role.into(),
            reason.into(),
            json(&excluded)?.into(),
            int(now_ms)?,
        ],
    )?;
    Ok(id)
}

fn outcome_name(o: Outcome) -> Result<String, Error> {
    json(&o)
}

fn outcome_of(s: &str) -> Result<Outcome, Error> {
    unjson(s, "verdict outcome")
}

/// The verdicts recorded on a receipt, in order.
pub(crate) fn verdicts_of(c: &mut dyn Conn, receipt: &Hash32) -> Result<Vec<VerdictView>, Error> {
    c.query(
        "SELECT verifier, role, agrees, outputs_root, outcome, fuel_used, flops, bytes, at_ms \
         FROM verdicts WHERE receipt_id = $1 ORDER BY seq",
        &[receipt.into()],
    )?
    .iter()
    .map(|r| {
        Ok(VerdictView {
            verifier: r.node(0)?,
            role: r.text(1)?.to_string(),
            agrees: r.i64(2)? != 0,
            result: RunResult {
                outputs_root: r.hash(3)?,
                outcome: outcome_of(r.text(4)?)?,
                fuel_used: r.u64(5)?,
                work: WorkDone {
                    flops: r.u64(6)?,
                    bytes: r.u64(7)?,
                },
            },
            at_ms: r.u64(8)?,
        })
    })
    .collect()
}

/// Settles a receipt: the provider's payment less the protocol fee, the
/// fee, the verifier's fee (a re-execution at the provider's price) when a
/// verifier checked it, and the rest of the shard's escrow back to the
/// renter. Returns the provider's payment.
pub(crate) fn pay_out(
    c: &mut dyn Conn,
    receipt: &Hash32,
    fee_bps: u64,
    verifier: Option<&NodeId>,
    now_ms: u64,
) -> Result<u64, Error> {
    let row = c.query_one(
        &format!(
            "SELECT {PAY_COLS} FROM receipts r JOIN jobs j ON j.id = r.job_id WHERE r.id = $1"
        ),
        &[receipt.into()],
    )?;
    pay_out_row(c, receipt, &row, 0, fee_bps, verifier, now_ms)
}

/// The columns [`pay_out_row`] reads, from `receipts r JOIN jobs j`.
pub(crate) const PAY_COLS: &str = "r.job_id, r.provider, r.units, r.price, r.escrow, j.renter";

/// [`pay_out`] for a receipt whose [`PAY_COLS`] the caller already read,
/// starting at column `at` of `row` (settling a batch reads them all in one
/// query instead of one per receipt).
pub(crate) fn pay_out_row(
    c: &mut dyn Conn,
    receipt: &Hash32,
    row: &Row,
    at: usize,
    fee_bps: u64,
    verifier: Option<&NodeId>,
    now_ms: u64,
) -> Result<u64, Error> {
    let (job, provider, units, price, escrow, renter) = (
        row.hash(at)?,
        row.node(at + 1)?,
        row.u64(at + 2)?,
        row.u64(at + 3)?,
        row.u64(at + 4)?,
        row.node(at + 5)?,
    );
    let payment = cost(price, units).unwrap_or(u64::MAX).min(escrow);
    let fee = u64::try_from(u128::from(payment) * u128::from(fee_bps) / 10_000)
        .unwrap_or(payment)
        .min(payment);
    let verifier_fee = match verifier {
        Some(_) => cost(price, units).unwrap_or(u64::MAX).min(escrow - payment),
        None => 0,
    };
    let from = ledger::escrow(&job);
    let mut moves = vec![
        ("pay", ledger::earnings(&provider), payment - fee),
        ("fee", ledger::FEES.to_string(), fee),
    ];
    if let Some(v) = verifier {
        moves.push(("verify", ledger::verifier_earnings(v), verifier_fee));
    }
    moves.push((
        "refund",
        ledger::balance(&renter),
        escrow - payment - verifier_fee,
    ));
    for (kind, to, amount) in moves {
        ledger::post(
            c,
            Movement {
                kind,
                debit: &from,
                credit: &to,
                amount,
                reference: &format!("settle/{receipt}/{kind}"),
            },
            now_ms,
        )?;
    }
    c.exec(
        "UPDATE receipts SET settled_at = $2, paid = $3 WHERE id = $1 AND settled_at IS NULL",
        &[receipt.into(), int(now_ms)?, int(payment)?],
    )?;
    Ok(payment)
}

/// Takes `slash_bps` of `node`'s stake and shares it out: each
/// `(account, bps)` gets its share of the slash, `rest_to` the remainder.
/// Returns the amount slashed.
fn slash(
    c: &mut dyn Conn,
    node: &NodeId,
    slash_bps: u32,
    shares: &[(String, u32)],
    rest_to: &str,
    reference: &str,
    now_ms: u64,
) -> Result<u64, Error> {
    let stake_acct = ledger::stake(node);
    let stake = u64::try_from(ledger::balance_of(c, &stake_acct)?).unwrap_or(0);
    let slashed =
        u64::try_from(u128::from(stake) * u128::from(slash_bps.min(BPS)) / u128::from(BPS))
            .unwrap_or(stake);
    let mut left = slashed;
    for (i, (to, bps)) in shares.iter().enumerate() {
        let amount = u64::try_from(u128::from(slashed) * u128::from(*bps) / u128::from(BPS))
            .unwrap_or(0)
            .min(left);
        left -= amount;
        ledger::post(
            c,
            Movement {
                kind: "slash",
                debit: &stake_acct,
                credit: to,
                amount,
                reference: &format!("{reference}/{i}"),
            },
            now_ms,
        )?;
    }
    ledger::post(
        c,
        Movement {
            kind: "slash",
            debit: &stake_acct,
            credit: rest_to,
            amount: left,
            reference: &format!("{reference}/rest"),
        },
        now_ms,
    )?;
    let now_stake = u64::try_from(ledger::balance_of(c, &stake_acct)?).unwrap_or(0);
    c.exec(
        "UPDATE providers SET stake = $2 WHERE id = $1",
        &[node.into(), int(now_stake)?],
    )?;
    Ok(slashed)
}

/// Puts the shard of a receipt that was proven wrong (or void) back in the
/// queue; its escrow stays for the next run.
fn requeue_shard(c: &mut dyn Conn, receipt: &Hash32, now_ms: u64) -> Result<(), Error> {
    let job = c
        .query_one(
            "SELECT job_id FROM receipts WHERE id = $1",
            &[receipt.into()],
        )?
        .hash(0)?;
    // A hardware challenge is addressed to one provider: it is not redone.
    let state = if crate::challenge::is_challenge(c, &job)? {
        "failed"
    } else {
        "queued"
    };
    c.exec(
        "UPDATE shards SET state = $3, queued_at = $2, receipt_id = NULL, lease_id = NULL, \
         provider = NULL, lease_price = NULL, lease_expires_at = NULL \
         WHERE receipt_id = $1 AND state = 'done'",
        &[receipt.into(), int(now_ms)?, state.into()],
    )?;
    Ok(())
}

fn receipt_record(c: &mut dyn Conn, receipt: &Hash32) -> Result<(ReceiptRecord, u32), Error> {
    let r = c.query_one(
        &format!("SELECT {RECEIPT_COLS}, idx FROM receipts WHERE id = $1"),
        &[receipt.into()],
    )?;
    Ok((market::receipt_row(&r)?, r.u32(12)?))
}

fn excluded_of(text: &str) -> Result<Vec<String>, Error> {
    unjson(text, "check exclusions")
}

fn epoch_seed(c: &mut dyn Conn, epoch: u64) -> Result<EpochSeed, Error> {
    let r = c.query_one(
        "SELECT commitment, seed, revealed_at FROM epochs WHERE epoch = $1",
        &[int(epoch)?],
    )?;
    let seed = match r.opt_i64(2)? {
        Some(_) => {
            let b = r.blob(1)?;
            Some(
                b.try_into()
                    .map_err(|_| Error::Corrupt(format!("epoch {epoch}: seed is not 32 bytes")))?,
            )
        }
        None => None,
    };
    Ok(EpochSeed {
        epoch,
        commitment: r.hash(0)?,
        seed,
    })
}

impl<B: Backend> SqlStore<B> {
    /// Says, for each shard whose receipt is not settled, what its check
    /// waits for (a renter whose job sits in `sampled` wants to know why).
    pub(crate) fn explain_checks(&self, view: &mut JobView, now_ms: u64) -> Result<(), Error> {
        let waiting = |s: &ShardView| {
            s.receipt
                .as_ref()
                .is_some_and(|r| r.paid.is_none() && r.check_state != "rejected")
        };
        if !view.shards.iter().any(waiting) {
            return Ok(());
        }
        let liveness = self.cfg.provider_liveness_ms.max(self.cfg.check_ttl_ms);
        let online: Vec<NodeId> = self.b.read(&mut |c| {
            c.query(
                "SELECT id FROM verifiers WHERE suspended = 0 AND last_seen + $2 >= $1",
                &[int(now_ms)?, int(liveness)?],
            )?
            .iter()
            .map(|r| r.node(0))
            .collect()
        })?;
        let epoch_ms = self.cfg.epoch_ms.max(1);
        for s in view.shards.iter_mut().filter(|s| waiting(s)) {
            let Some(r) = &s.receipt else { continue };
            let provider = r.receipt.body.provider_id;
            let others = online.iter().filter(|v| **v != provider).count();
            s.check_note = match r.check_state.as_str() {
                "pending" => format!(
                    "recorded in sampling epoch {}: whether it is checked is decided when that epoch's seed is revealed at {} ms",
                    r.epoch,
                    (r.epoch + 1).saturating_mul(epoch_ms)
                ),
                "not-sampled" => format!(
                    "not drawn for a check: settles when the challenge window ends at {} ms",
                    r.settle_at_ms
                ),
                "unverified" => format!(
                    "the job opted out of verification: settles at {} ms",
                    r.settle_at_ms
                ),
                "sampled" if others == 0 => {
                    "waiting for a verifier: none is online (start one with `assay verifier`, or publish with --unverified)".into()
                }
                "sampled" => format!("waiting for one of {others} online verifiers to re-run it"),
                "disputed" if others < 2 => {
                    "disputed: waiting for a referee, a second verifier that must be online".into()
                }
                "disputed" => "disputed: a referee re-runs it".into(),
                _ => String::new(),
            };
        }
        Ok(())
    }

    pub(crate) fn register_verifier_impl(
        &self,
        v: &VerifierInfo,
        stake_target: u64,
        now_ms: u64,
    ) -> Result<u64, Error> {
        self.b.write(&mut |c| {
            let stake = market::top_up_stake(c, &v.id, stake_target, now_ms)?;
            c.exec(
                "INSERT INTO verifiers (id, version, backend, registered_at, last_seen) \
                 VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, backend = excluded.backend, \
                 last_seen = excluded.last_seen",
                &[
                    (&v.id).into(),
                    v.version.as_str().into(),
                    v.backend.as_str().into(),
                    int(now_ms)?,
                ],
            )?;
            Ok(stake)
        })
    }

    pub(crate) fn reveal_epochs_impl(&self, now_ms: u64) -> Result<u64, Error> {
        let epoch_ms = self.cfg.epoch_ms.max(1);
        self.b.write(&mut |c| {
            let current = now_ms / epoch_ms;
            // Commitments are out at least one epoch ahead.
            ensure_epoch(c, current, now_ms)?;
            ensure_epoch(c, current + 1, now_ms)?;
            let due = c.query(
                &format!(
                    "SELECT e.epoch, e.seed FROM epochs e WHERE e.revealed_at IS NULL AND e.epoch < $1 \
                     ORDER BY e.epoch LIMIT 100{}",
                    c.dialect().skip_locked("e")
                ),
                &[int(current)?],
            )?;
            let mut sampled = 0;
            for e in &due {
                let epoch = e.u64(0)?;
                let seed: [u8; 32] = e
                    .blob(1)?
                    .try_into()
                    .map_err(|_| Error::Corrupt(format!("epoch {epoch}: seed is not 32 bytes")))?;
                c.exec(
                    "UPDATE epochs SET revealed_at = $2 WHERE epoch = $1",
                    &[int(epoch)?, int(now_ms)?],
                )?;
                for r in c.query(
                    "SELECT id, provider, rate_ppm FROM receipts WHERE epoch = $1 AND check_state = 'pending'",
                    &[int(epoch)?],
                )? {
                    let rid = r.hash(0)?;
                    if is_sampled(&rid, &seed, r.u32(2)?) {
                        c.exec(
                            "UPDATE receipts SET check_state = 'sampled', check_reason = 'sampled' WHERE id = $1",
                            &[(&rid).into()],
                        )?;
                        open_check(c, &rid, "verify", "sampled", &[r.node(1)?], now_ms)?;
                        sampled += 1;
                    } else {
                        c.exec(
                            "UPDATE receipts SET check_state = 'not-sampled' WHERE id = $1",
                            &[(&rid).into()],
                        )?;
                    }
                }
            }
            Ok(sampled)
        })
    }

    pub(crate) fn beacon_impl(&self, from_epoch: u64, limit: u32) -> Result<Vec<EpochSeed>, Error> {
        self.b.read(&mut |c| {
            let rows = c.query(
                "SELECT epoch FROM epochs WHERE epoch >= $1 ORDER BY epoch LIMIT $2",
                &[
                    Value::Int(i64::try_from(from_epoch).unwrap_or(i64::MAX)),
                    Value::Int(i64::from(limit.min(1000))),
                ],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(epoch_seed(c, r.u64(0)?)?);
            }
            Ok(out)
        })
    }

    pub(crate) fn take_checks_impl(
        &self,
        verifier: &NodeId,
        max: u32,
        now_ms: u64,
    ) -> Result<Vec<CheckTask>, Error> {
        let ttl = self.cfg.check_ttl_ms;
        self.b.write(&mut |c| {
            let Some(v) = c.query_opt(
                "SELECT suspended FROM verifiers WHERE id = $1",
                &[verifier.into()],
            )?
            else {
                return Err(Error::NotFound(format!(
                    "verifier {verifier} is not registered: call RegisterVerifier first"
                )));
            };
            if v.i64(0)? != 0 {
                return Err(Error::PermissionDenied(format!(
                    "verifier {verifier} was overruled by a referee and is suspended"
                )));
            }
            c.exec(
                "UPDATE verifiers SET last_seen = $2 WHERE id = $1",
                &[verifier.into(), int(now_ms)?],
            )?;
            if max == 0 {
                return Ok(Vec::new());
            }
            let me = verifier.to_hex();
            let open = c.query(
                &format!(
                    "SELECT ch.id, ch.receipt_id, ch.role, ch.reason, ch.excluded FROM checks ch \
                     WHERE ch.state = 'open' ORDER BY ch.created_at LIMIT $1{}",
                    c.dialect().skip_locked("ch")
                ),
                &[int(u64::from(max) * 4 + 16)?],
            )?;
            let mut jobs = std::collections::HashMap::new();
            let mut tasks = Vec::new();
            for ch in &open {
                if tasks.len() as u32 >= max {
                    break;
                }
                if excluded_of(ch.text(4)?)?.contains(&me) {
                    continue;
                }
                let id = ch.hash(0)?;
                let rid = ch.hash(1)?;
                let (record, idx) = receipt_record(c, &rid)?;
                // Big jobs get time to re-run on a CPU verifier: the TTL
                // plus their FLOPs at the verifier floor (a GPU-class
                // challenge is ~10¹⁴ FLOPs: minutes on a CPU).
                let deadline = now_ms
                    .saturating_add(ttl)
                    .saturating_add(record.receipt.body.work.flops / VERIFIER_FLOOR_MFLOPS / 1_000);
                let n = c.exec(
                    "UPDATE checks SET state = 'taken', verifier = $2, deadline = $3 \
                     WHERE id = $1 AND state = 'open'",
                    &[(&id).into(), verifier.into(), int(deadline)?],
                )?;
                if n != 1 {
                    continue;
                }
                let l = c.query_one(
                    "SELECT r.lease_id, r.price, s.shard_job_id FROM receipts r \
                     JOIN shards s ON s.job_id = r.job_id AND s.idx = r.idx WHERE r.id = $1",
                    &[(&rid).into()],
                )?;
                let own = own_inputs(c, &record.job_id, idx)?;
                let (lease, _) = lease_from(
                    c,
                    &mut jobs,
                    record.job_id,
                    idx,
                    l.hash(0)?,
                    l.hash(2)?,
                    deadline,
                    l.u64(1)?,
                    own,
                )?;
                let beacon = epoch_seed(c, record.epoch)?;
                tasks.push(CheckTask {
                    id,
                    role: ch.text(2)?.to_string(),
                    reason: ch.text(3)?.to_string(),
                    record,
                    lease,
                    beacon,
                    deadline_ms: deadline,
                });
            }
            Ok(tasks)
        })
    }

    pub(crate) fn submit_verdict_impl(
        &self,
        v: &VerdictSubmission,
        now_ms: u64,
    ) -> Result<Decision, Error> {
        let cfg = self.cfg.clone();
        let outcome = outcome_name(v.result.outcome)?;
        self.b.write(&mut |c| {
            let Some(ch) = c.query_opt(
                &format!(
                    "SELECT receipt_id, role, state, verifier, excluded, reason FROM checks WHERE id = $1{}",
                    c.dialect().for_update()
                ),
                &[(&v.check_id).into()],
            )?
            else {
                return Err(Error::NotFound(format!("no check {}", v.check_id)));
            };
            let holder = ch.opt_node(3)?;
            match (ch.text(2)?, holder) {
                ("taken", Some(h)) if h == v.verifier => {}
                ("done", Some(h)) if h == v.verifier => {
                    return Err(Error::AlreadyExists(format!(
                        "check {} already has your verdict",
                        v.check_id
                    )));
                }
                _ if excluded_of(ch.text(4)?)?.contains(&v.verifier.to_hex()) => {
                    return Err(Error::Precondition(format!(
                        "check {} passed its deadline and went to another verifier: the verdict is not accepted",
                        v.check_id
                    )));
                }
                _ => {
                    return Err(Error::PermissionDenied(format!(
                        "check {} is not held by verifier {}",
                        v.check_id, v.verifier
                    )));
                }
            }
            let rid = ch.hash(0)?;
            if rid != v.receipt_id {
                return Err(Error::Invalid(format!(
                    "check {} is about receipt {rid}, not {}",
                    v.check_id, v.receipt_id
                )));
            }
            let role = ch.text(1)?.to_string();
            let reason = ch.text(5)?.to_string();
            let (record, _) = receipt_record(c, &rid)?;
            let stated = RunResult::of(&record.receipt);
            let agrees = v.result == stated;
            if v.agrees != agrees {
                return Err(Error::Invalid(format!(
                    "the verdict says agrees = {} but the result it reports {} the receipt's",
                    v.agrees,
                    if agrees { "equals" } else { "differs from" }
                )));
            }
            c.exec(
                "INSERT INTO verdicts (check_id, receipt_id, verifier, role, agrees, outputs_root, outcome, \
                 fuel_used, flops, bytes, nonce, expires_at, signature, at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                &[
                    (&v.check_id).into(),
                    (&rid).into(),
                    (&v.verifier).into(),
                    role.as_str().into(),
                    agrees.into(),
                    (&v.result.outputs_root).into(),
                    outcome.as_str().into(),
                    int(v.result.fuel_used)?,
                    int(v.result.work.flops)?,
                    int(v.result.work.bytes)?,
                    Value::Int(v.nonce as i64),
                    int(v.expires_at_ms)?,
                    Value::Blob(v.signature.clone()),
                    int(now_ms)?,
                ],
            )?;
            c.exec(
                "UPDATE checks SET state = 'done' WHERE id = $1",
                &[(&v.check_id).into()],
            )?;
            c.exec(
                "UPDATE verifiers SET verdicts = verdicts + 1 WHERE id = $1",
                &[(&v.verifier).into()],
            )?;
            let provider = record.receipt.body.provider_id;
            let set_state = |c: &mut dyn Conn, state: &str| {
                c.exec(
                    "UPDATE receipts SET check_state = $2 WHERE id = $1",
                    &[(&rid).into(), state.into()],
                )
            };
            if role == "verify" {
                if agrees {
                    pay_out(c, &rid, cfg.fee_bps, Some(&v.verifier), now_ms)?;
                    set_state(c, "verified")?;
                    crate::challenge::judged(c, &rid, true, cfg.challenge_interval_ms, now_ms)?;
                    return Ok(Decision::Verified);
                }
                set_state(c, "disputed")?;
                open_check(c, &rid, "referee", &reason, &[provider, v.verifier], now_ms)?;
                tracing::warn!(receipt = %rid.short(), verifier = %v.verifier, "mismatch: a referee re-executes");
                return Ok(Decision::Disputed);
            }
            // The referee: which side does it agree with?
            let first = verdicts_of(c, &rid)?
                .into_iter()
                .rev()
                .find(|x| x.role == "verify" && !x.agrees)
                .ok_or_else(|| Error::Corrupt(format!("receipt {rid}: a referee check without a dispute")))?;
            if agrees {
                // The first verifier was wrong.
                let referee = ledger::verifier_earnings(&v.verifier);
                slash(
                    c,
                    &first.verifier,
                    cfg.slash_bps,
                    &[(referee, cfg.referee_bps)],
                    &ledger::earnings(&provider),
                    &format!("slash/{rid}/verifier"),
                    now_ms,
                )?;
                c.exec(
                    "UPDATE verifiers SET overruled = overruled + 1, suspended = 1 WHERE id = $1",
                    &[(&first.verifier).into()],
                )?;
                pay_out(c, &rid, cfg.fee_bps, Some(&v.verifier), now_ms)?;
                set_state(c, "verified")?;
                crate::challenge::judged(c, &rid, true, cfg.challenge_interval_ms, now_ms)?;
                tracing::warn!(receipt = %rid.short(), verifier = %first.verifier, "the referee overruled the verifier: verifier slashed");
                return Ok(Decision::Overruled);
            }
            c.exec(
                "UPDATE receipts SET settled_at = $2, paid = 0 WHERE id = $1",
                &[(&rid).into(), int(now_ms)?],
            )?;
            requeue_shard(c, &rid, now_ms)?;
            crate::challenge::judged(c, &rid, false, cfg.challenge_interval_ms, now_ms)?;
            if v.result != first.result {
                set_state(c, "void")?;
                tracing::error!(receipt = %rid.short(), "three different results for one receipt (a determinism failure?): receipt void, shard re-queued, nobody slashed");
                return Ok(Decision::Inconclusive);
            }
            // The provider was wrong.
            set_state(c, "rejected")?;
            let renter = c
                .query_one(
                    "SELECT j.renter FROM jobs j WHERE j.id = $1",
                    &[(&record.job_id).into()],
                )?
                .node(0)?;
            slash(
                c,
                &provider,
                cfg.slash_bps,
                &[
                    (ledger::verifier_earnings(&first.verifier), cfg.bounty_bps),
                    (ledger::verifier_earnings(&v.verifier), cfg.referee_bps),
                ],
                &ledger::balance(&renter),
                &format!("slash/{rid}/provider"),
                now_ms,
            )?;
            c.exec(
                "UPDATE providers SET suspended = 1, slashed = slashed + 1 WHERE id = $1",
                &[(&provider).into()],
            )?;
            // Every unsettled receipt of a proven cheat is checked.
            let others = c.query(
                "SELECT id FROM receipts WHERE provider = $1 AND settled_at IS NULL \
                 AND check_state IN ('pending', 'not-sampled')",
                &[(&provider).into()],
            )?;
            for o in &others {
                let oid = o.hash(0)?;
                c.exec(
                    "UPDATE receipts SET check_state = 'sampled', check_reason = 'audit' WHERE id = $1",
                    &[(&oid).into()],
                )?;
                open_check(c, &oid, "verify", "audit", &[provider], now_ms)?;
            }
            tracing::warn!(receipt = %rid.short(), provider = %provider, audited = others.len(), "the provider was wrong: slashed, suspended, shard re-queued");
            Ok(Decision::Rejected)
        })
    }

    pub(crate) fn return_check_impl(
        &self,
        verifier: &NodeId,
        check: &Hash32,
        reason: &str,
        _now_ms: u64,
    ) -> Result<(), Error> {
        self.b.write(&mut |c| {
            let Some(ch) = c.query_opt(
                &format!(
                    "SELECT state, verifier, excluded FROM checks WHERE id = $1{}",
                    c.dialect().for_update()
                ),
                &[check.into()],
            )?
            else {
                return Err(Error::NotFound(format!("no check {check}")));
            };
            if ch.text(0)? != "taken" || ch.opt_node(1)? != Some(*verifier) {
                return Err(Error::PermissionDenied(format!(
                    "check {check} is not held by verifier {verifier}"
                )));
            }
            // Another verifier takes it: the same machine would likely fail
            // again (with a single verifier the check waits for a second).
            let mut excluded = excluded_of(ch.text(2)?)?;
            excluded.push(verifier.to_hex());
            c.exec(
                "UPDATE checks SET state = 'open', verifier = NULL, deadline = NULL, excluded = $2 WHERE id = $1",
                &[check.into(), json(&excluded)?.into()],
            )?;
            tracing::info!(check = %check.short(), verifier = %verifier, reason, "check returned without a verdict");
            Ok(())
        })
    }

    pub(crate) fn expire_checks_impl(&self, now_ms: u64) -> Result<u64, Error> {
        self.b.write(&mut |c| {
            let rows = c.query(
                &format!(
                    "SELECT ch.id, ch.verifier, ch.excluded FROM checks ch \
                     WHERE ch.state = 'taken' AND ch.deadline <= $1 LIMIT 500{}",
                    c.dialect().skip_locked("ch")
                ),
                &[int(now_ms)?],
            )?;
            for r in &rows {
                let late = r.node(1)?;
                let mut excluded = excluded_of(r.text(2)?)?;
                excluded.push(late.to_hex());
                c.exec(
                    "UPDATE checks SET state = 'open', verifier = NULL, deadline = NULL, excluded = $2 \
                     WHERE id = $1",
                    &[r.blob(0)?.into(), json(&excluded)?.into()],
                )?;
                c.exec(
                    "UPDATE verifiers SET missed = missed + 1 WHERE id = $1",
                    &[(&late).into()],
                )?;
                tracing::warn!(verifier = %late, "a verifier missed its deadline: the check goes to another");
            }
            Ok(rows.len() as u64)
        })
    }
}
