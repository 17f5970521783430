//! Verification in the database: sampling receipts with a committed-then-revealed epoch
//! seed, handing checks to verifiers, acting on their verdicts (settle,
//! dispute, slash) — the coordinator's side of `ARCHITECTURE.md`,
//! "Verification". The transitions and decisions are
//! [`crate::rules::checks`]; the money is [`super::ledger`].
//!
//! A receipt's life:
//!
//! ```text
//!  recorded ─ rate 0 ─────────────────────────────────► unverified ─ window ─► settled
//!     │
//!     └─► pending ─ epoch seed revealed ─┬─ not drawn ─► not-sampled ─ window ─► settled
//!                                        └─ drawn ─────► sampled ── verdict of the assigned verifier ─┐
//!   (a suspended provider's receipts skip to sampled, reason "audit")                                  │
//!        ┌──────────────────────────── agrees ◄───────────────────────────────────────────────────────┤
//!        ├─ not drawn for a re-check ─► verified (paid: provider + verifier)                           │
//!        └─ drawn (q) ─► rechecking ─ arbiter ─┬─ agrees ─► verified (paid)                            │
//!                                              └─ differs ─► rejected; provider and verifier slashed   │
//!                      disagrees ─► disputed ─ arbiter ─┐◄─────────────────────────────────────────────┘
//!                                  ┌────────────────────┘
//!                                  ├─ equals the provider's ─► verified; the verifier is slashed
//!                                  ├─ equals the verifier's ─► rejected; the provider is slashed,
//!                                  │                             the shard re-queued, its other
//!                                  │                             unsettled receipts audited
//!                                  └─ equals neither ────────► rejected; both slashed, the shard re-queued
//! ```
//!
//! Only arbiters (keys named in [`MarketConfig::arbiters`]) take
//! arbitrations and re-checks; first checks go to the verifier the epoch
//! seed assigns among those with stake and room
//! ([`crate::rules::checks::assignee`]).
//!
//! Every money movement is a ledger entry with a reference derived from the
//! receipt (`settle/<receipt>/…`, `slash/<receipt>/…`), so a verdict retried
//! or processed by two replicas at once moves money once.

use assay_protocol::{Hash32, NodeId};

use std::collections::BTreeMap;

use assay_protocol::verification::is_sampled;

use super::challenges;
use super::disputes;
use super::economy::price_in;
use super::ledger::{pay_out, slash, stake_of, top_up_stake};
use super::rows::{
    JobCache, LeaseSlot, epoch_seed, excluded_of, json, lease_from, outcome_text, random_id,
    receipt_record, unjson, verdicts_of,
};
use super::sql::{Backend, Conn, Row, Value, int};
use super::sql_store::SqlStore;
use crate::Error;
use crate::config::MarketConfig;
use crate::ledger::accounts::io_for_iosd;
use crate::ledger::{self as accounts, Unit};
use crate::rules::checks::{self as rules, CheckEvent};
use crate::rules::disputes::{FULL_RE_EXECUTION, StepToRecompute};
use crate::state::{CheckReason, CheckRole, CheckState, CheckStatus, ShardState};
use crate::types::{
    CheckTask, Decision, JobView, ReceiptRecord, RunResult, VerdictSubmission, VerdictView,
    VerifierInfo,
};

/// Verifiers, checks and verdicts.
pub trait Checks {
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
    /// As [`Checks::submit_verdict`].
    fn return_check(
        &self,
        verifier: &NodeId,
        check: &Hash32,
        reason: &str,
        now_ms: u64,
    ) -> Result<(), Error>;
    /// Re-opens checks whose verifier did not answer in time (it may not
    /// take them again); returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn expire_checks(&self, now_ms: u64) -> Result<u64, Error>;
}

impl<B: Backend> Checks for SqlStore<B> {
    fn register_verifier(
        &self,
        v: &VerifierInfo,
        stake_target: u64,
        now_ms: u64,
    ) -> Result<u64, Error> {
        // An arbiter is the coordinator's own: it bonds nothing. Everyone
        // else holds at least the floor.
        let target = if self.cfg.arbiters.contains(&v.id) {
            stake_target
        } else {
            stake_target.max(self.cfg.verifier_stake_floor)
        };
        self.b.write(&mut |c| {
            let stake = top_up_stake(c, &v.id, target, now_ms)?;
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

    fn take_checks(
        &self,
        verifier: &NodeId,
        max: u32,
        now_ms: u64,
    ) -> Result<Vec<CheckTask>, Error> {
        let cfg = &self.cfg;
        let is_arbiter = cfg.arbiters.contains(verifier);
        self.b.write(&mut |c| {
            admit_verifier(c, verifier, now_ms)?;
            if max == 0 {
                return Ok(Vec::new());
            }
            let me = verifier.to_hex();
            let mut pool = if is_arbiter {
                VerifierPool::default()
            } else {
                let pool = VerifierPool::read(c, cfg, now_ms)?;
                let stake = pool.slot(verifier).map_or(0, |v| v.stake);
                if stake < cfg.verifier_stake_floor {
                    return Err(Error::Precondition(format!(
                        "verifier {verifier} holds a stake of {stake} µIO, below the verifiers' floor of {} µIO: \
                         restart it with --stake {} (and IO to cover it)",
                        cfg.verifier_stake_floor, cfg.verifier_stake_floor
                    )));
                }
                pool
            };
            // Checks go out in order of age; a verifier sees those it may
            // take and, for first checks, those the assignment gives it.
            let open = c.query(
                &format!(
                    "SELECT ch.id, ch.receipt_id, ch.role, ch.reason, ch.excluded, r.provider, r.epoch, r.escrow \
                     FROM checks ch JOIN receipts r ON r.id = ch.receipt_id \
                     WHERE ch.state = 'open' ORDER BY ch.created_at LIMIT 500{}",
                    c.dialect().skip_locked("ch")
                ),
                &[],
            )?;
            let mut seeds = BTreeMap::new();
            let mut io_price = None;
            let mut tasks = Vec::new();
            for ch in &open {
                if tasks.len() as u32 >= max {
                    break;
                }
                let role = CheckRole::parse(ch.text(2)?)?;
                if !rules::may_take(role, is_arbiter) {
                    continue;
                }
                let excluded = excluded_of(ch.text(4)?)?;
                if excluded.contains(&me) {
                    continue;
                }
                let check = ch.hash(0)?;
                let bond = if is_arbiter {
                    0
                } else {
                    let epoch = ch.u64(6)?;
                    let seed = match seeds.get(&epoch) {
                        Some(s) => *s,
                        None => {
                            let s = epoch_seed(c, epoch)?.seed.unwrap_or([0; 32]);
                            seeds.insert(epoch, s);
                            s
                        }
                    };
                    let price = match io_price {
                        Some(p) => p,
                        None => {
                            // Without a usable price a bond cannot be priced:
                            // the floor alone stands until one is back.
                            let p = price_in(c, &cfg.economy, now_ms).unwrap_or(0);
                            io_price = Some(p);
                            p
                        }
                    };
                    let bond = bond_of(cfg, ch.u64(7)?, price);
                    let provider = ch.node(5)?;
                    let rules_of = rules::Accountability::of(cfg);
                    let eligible = pool.slots.iter().filter(|v| {
                        v.id != provider
                            && !excluded.contains(&v.id.to_hex())
                            && rules_of.admits(v, bond)
                    });
                    if rules::assignee(&seed, &check, eligible.map(|v| &v.id)) != Some(verifier) {
                        continue;
                    }
                    bond
                };
                if let Some(task) = take_check(c, ch, verifier, bond, cfg.check_ttl_ms, now_ms)? {
                    pool.holds(verifier, bond);
                    tasks.push(task);
                }
            }
            Ok(tasks)
        })
    }

    fn submit_verdict(&self, v: &VerdictSubmission, now_ms: u64) -> Result<Decision, Error> {
        let cfg = self.cfg.clone();
        let outcome = outcome_text(v.result.outcome)?;
        self.b.write(&mut |c| {
            let check = lock_check_for_verdict(c, v)?;
            let (record, _) = receipt_record(c, &check.receipt)?;
            // An arbiter that recomputed one step answers with its output;
            // one that re-executed the job (an older arbiter, or a step it
            // could not recompute) with the job's result.
            let on_step = check
                .step
                .as_ref()
                .and_then(|(_, step)| v.step_output.map(|out| (step, out)));
            let (agrees, step_sides) = match on_step {
                Some((step, out)) => (out == step.outputs[0], Some(out == step.outputs[1])),
                None => (v.result == RunResult::of(&record.receipt), None),
            };
            rules::require_consistent_claim(v.agrees, agrees)?;
            // A referee's verdict ends its dispute's game, and says how the
            // dispute reached the arbiter.
            let arbitration = match check.role {
                CheckRole::Referee => match disputes::close(c, &check.receipt, None, now_ms)? {
                    Some(game) => game.arbitration(on_step.is_some()),
                    None => format!(
                        "{FULL_RE_EXECUTION}no traces to bisect (a verdict or receipt without one)"
                    ),
                },
                _ => String::new(),
            };
            record_verdict(c, v, check.role, agrees, &outcome, &arbitration, now_ms)?;
            let first = match check.role {
                CheckRole::Verify => None,
                CheckRole::Referee => Some(disputing_verdict(c, &check.receipt)?),
                CheckRole::Recheck => Some(agreeing_verdict(c, &check.receipt)?),
            };
            let decision = rules::decide(
                check.role,
                agrees,
                || match step_sides {
                    Some(verifier_right) => verifier_right,
                    None => first.as_ref().is_some_and(|f| f.result == v.result),
                },
                || recheck_drawn(&cfg, &v.check_id),
            );
            act_on(
                c,
                &cfg,
                v,
                &check,
                &record,
                first.as_ref(),
                decision,
                now_ms,
            )?;
            Ok(decision)
        })
    }

    fn return_check(
        &self,
        verifier: &NodeId,
        check: &Hash32,
        reason: &str,
        now_ms: u64,
    ) -> Result<(), Error> {
        self.b.write(&mut |c| {
            let Some(ch) = c.query_opt(
                &format!(
                    "SELECT state, verifier, excluded, step, receipt_id FROM checks WHERE id = $1{}",
                    c.dialect().for_update()
                ),
                &[check.into()],
            )?
            else {
                return Err(Error::NotFound(format!("no check {check}")));
            };
            if CheckStatus::parse(ch.text(0)?)? != CheckStatus::Taken
                || ch.opt_node(1)? != Some(*verifier)
            {
                return Err(Error::PermissionDenied(format!(
                    "check {check} is not held by verifier {verifier}"
                )));
            }
            if ch.opt_text(3)?.is_some() && reason.starts_with(FULL_RE_EXECUTION) {
                // The arbiter could not recompute the step: the same arbiter
                // re-executes the job instead.
                c.exec(
                    "UPDATE checks SET state = 'open', verifier = NULL, deadline = NULL, step = NULL WHERE id = $1",
                    &[check.into()],
                )?;
                disputes::close(c, &ch.hash(4)?, Some(reason), now_ms)?;
                tracing::warn!(check = %check.short(), reason, "the arbiter could not recompute the disputed step: it re-executes the job");
                return Ok(());
            }
            // Another verifier takes it: the same machine would likely fail
            // again (with a single verifier the check waits for a second).
            reopen(c, check, ch.text(2)?, verifier)?;
            tracing::info!(check = %check.short(), verifier = %verifier, reason, "check returned without a verdict");
            Ok(())
        })
    }

    fn expire_checks(&self, now_ms: u64) -> Result<u64, Error> {
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
                reopen(c, &r.hash(0)?, r.text(2)?, &late)?;
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

impl<B: Backend> SqlStore<B> {
    /// Says, for each shard whose receipt is not settled, what its check
    /// waits for (a renter whose job sits in `sampled` wants to know why).
    pub(super) fn explain_checks(&self, view: &mut JobView, now_ms: u64) -> Result<(), Error> {
        let waiting = |s: &crate::types::ShardView| s.receipt.as_ref().is_some_and(rules::waiting);
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
        let arbiters = online
            .iter()
            .filter(|v| self.cfg.arbiters.contains(v))
            .count();
        let cfg = &self.cfg;
        // Online verifiers that cannot hold a sampled check (the floor,
        // their room, their free stake) leave it waiting: read once what
        // saying so needs — the pool, the IO price, the receipts' escrows.
        let sampled = view.shards.iter().any(|s| {
            s.receipt
                .as_ref()
                .is_some_and(|r| r.check_state == CheckState::Sampled)
        });
        let job = view.id;
        let holders = if sampled {
            Some(self.b.read(&mut |c| {
                let escrows = c
                    .query(
                        "SELECT id, escrow FROM receipts WHERE job_id = $1",
                        &[(&job).into()],
                    )?
                    .iter()
                    .map(|r| Ok((r.hash(0)?, r.u64(1)?)))
                    .collect::<Result<BTreeMap<Hash32, u64>, Error>>()?;
                let price = price_in(c, &cfg.economy, now_ms).unwrap_or(0);
                Ok((VerifierPool::read(c, cfg, now_ms)?, price, escrows))
            })?)
        } else {
            None
        };
        let rules_of = rules::Accountability::of(cfg);
        for s in view.shards.iter_mut().filter(|s| waiting(s)) {
            let Some(r) = &s.receipt else { continue };
            let provider = r.receipt.body.provider_id;
            let others = online
                .iter()
                .filter(|v| **v != provider && !cfg.arbiters.contains(v))
                .count();
            s.check_note = rules::note(r, others, arbiters, cfg.epoch_ms);
            if r.check_state == CheckState::Disputed {
                let rid = r.id;
                if let Some((_, game)) = self.b.read(&mut |c| disputes::dispute_of(c, &rid))? {
                    s.check_note = game.status(arbiters > 0);
                }
            }
            let Some((pool, price, escrows)) = &holders else {
                continue;
            };
            if r.check_state != CheckState::Sampled || others == 0 {
                continue;
            }
            let bond = bond_of(cfg, escrows.get(&r.id).copied().unwrap_or(0), *price);
            let able = pool
                .slots
                .iter()
                .filter(|v| v.id != provider && rules_of.admits(v, bond))
                .count();
            if able == 0 {
                s.check_note = format!(
                    "waiting for a verifier that can hold it: a verifier holds at least {} µIO of stake, \
                     fewer than {} checks, and {bond} µIO of free stake to bond this check; none of the \
                     {others} online verifiers can now (start one with a larger `assay verifier --stake`)",
                    cfg.verifier_stake_floor, cfg.verifier_max_in_flight
                );
            }
        }
        Ok(())
    }
}

/// [`rules::transition`], or a corrupt-state error.
pub(super) fn next_state(from: CheckState, event: CheckEvent) -> Result<CheckState, Error> {
    rules::transition(from, event).ok_or_else(|| {
        Error::Corrupt(format!(
            "a receipt in check state {from} cannot take {event:?}"
        ))
    })
}

pub(super) fn set_check(
    c: &mut dyn Conn,
    receipt: &Hash32,
    state: CheckState,
    reason: Option<CheckReason>,
) -> Result<(), Error> {
    c.exec(
        "UPDATE receipts SET check_state = $2, check_reason = $3 WHERE id = $1",
        &[
            receipt.into(),
            state.as_str().into(),
            CheckReason::as_stored(reason).into(),
        ],
    )?;
    Ok(())
}

fn set_check_state(c: &mut dyn Conn, receipt: &Hash32, state: CheckState) -> Result<(), Error> {
    c.exec(
        "UPDATE receipts SET check_state = $2 WHERE id = $1",
        &[receipt.into(), state.as_str().into()],
    )?;
    Ok(())
}

/// Opens a check of a receipt; `excluded` nodes may not take it.
pub(super) fn open_check(
    c: &mut dyn Conn,
    receipt: &Hash32,
    role: CheckRole,
    reason: CheckReason,
    excluded: &[NodeId],
    now_ms: u64,
) -> Result<Hash32, Error> {
    let id = random_id()?;
    let excluded: Vec<String> = excluded.iter().map(NodeId::to_hex).collect();
    c.exec(
        "INSERT INTO checks (id, receipt_id, role, reason, state, excluded, created_at) \
         VALUES ($1, $2, $3, $4, $7, $5, $6)",
        &[
            (&id).into(),
            receipt.into(),
            role.as_str().into(),
            reason.as_str().into(),
            json(&excluded)?.into(),
            int(now_ms)?,
            CheckStatus::Open.as_str().into(),
        ],
    )?;
    Ok(id)
}

/// A registered verifier that is not suspended is marked alive.
fn admit_verifier(c: &mut dyn Conn, verifier: &NodeId, now_ms: u64) -> Result<(), Error> {
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
    Ok(())
}

/// Takes one open check (row `ch`) for `verifier`; `None` if another
/// replica took it first.
fn take_check(
    c: &mut dyn Conn,
    ch: &Row,
    verifier: &NodeId,
    bond: u64,
    ttl_ms: u64,
    now_ms: u64,
) -> Result<Option<CheckTask>, Error> {
    let id = ch.hash(0)?;
    let rid = ch.hash(1)?;
    let (record, _) = receipt_record(c, &rid)?;
    // Big jobs get time to re-run on a CPU verifier.
    let deadline = rules::deadline(now_ms, ttl_ms, record.receipt.body.work.flops);
    let n = c.exec(
        "UPDATE checks SET state = 'taken', verifier = $2, deadline = $3, assigned = $2, bond = $4 \
         WHERE id = $1 AND state = 'open'",
        &[(&id).into(), verifier.into(), int(deadline)?, int(bond)?],
    )?;
    if n != 1 {
        return Ok(None);
    }
    check_task(c, &id, deadline).map(Some)
}

/// Check `id` as a verifier gets it: the receipt, what to re-execute, the
/// beacon, and for a bisected dispute's referee check the step; answer by
/// `deadline_ms`.
pub(super) fn check_task(
    c: &mut dyn Conn,
    id: &Hash32,
    deadline_ms: u64,
) -> Result<CheckTask, Error> {
    let ch = c.query_one(
        "SELECT receipt_id, role, reason, step FROM checks WHERE id = $1",
        &[id.into()],
    )?;
    let rid = ch.hash(0)?;
    let (record, idx) = receipt_record(c, &rid)?;
    let l = c.query_one(
        "SELECT r.lease_id, r.price, s.shard_job_id FROM receipts r \
         JOIN shards s ON s.job_id = r.job_id AND s.idx = r.idx WHERE r.id = $1",
        &[(&rid).into()],
    )?;
    let mut jobs = JobCache::new();
    let (lease, _) = lease_from(
        c,
        &mut jobs,
        LeaseSlot {
            job: record.job_id,
            idx,
            lease_id: l.hash(0)?,
            shard_job_id: l.hash(2)?,
            expires_at_ms: deadline_ms,
            price: l.u64(1)?,
        },
    )?;
    let beacon = epoch_seed(c, record.epoch)?;
    let step = ch
        .opt_text(3)?
        .map(|t| unjson(t, "a referee check's step"))
        .transpose()?;
    Ok(CheckTask {
        id: *id,
        role: CheckRole::parse(ch.text(1)?)?,
        reason: CheckReason::parse(ch.text(2)?)?,
        record,
        lease,
        beacon,
        deadline_ms,
        step,
    })
}

/// A check locked for a verdict.
struct HeldCheck {
    receipt: Hash32,
    role: CheckRole,
    reason: CheckReason,
    /// A bisected dispute's referee check: the dispute and its step.
    step: Option<(Hash32, StepToRecompute)>,
}

/// Locks the check a verdict names and checks that its verifier holds it
/// and that it names the verdict's receipt.
fn lock_check_for_verdict(c: &mut dyn Conn, v: &VerdictSubmission) -> Result<HeldCheck, Error> {
    let Some(ch) = c.query_opt(
        &format!(
            "SELECT receipt_id, role, state, verifier, excluded, reason, step FROM checks WHERE id = $1{}",
            c.dialect().for_update()
        ),
        &[(&v.check_id).into()],
    )?
    else {
        return Err(Error::NotFound(format!("no check {}", v.check_id)));
    };
    rules::require_check_holder(
        &v.check_id,
        CheckStatus::parse(ch.text(2)?)?,
        ch.opt_node(3)?,
        &v.verifier,
        &excluded_of(ch.text(4)?)?,
    )?;
    let rid = ch.hash(0)?;
    if rid != v.receipt_id {
        return Err(Error::Invalid(format!(
            "check {} is about receipt {rid}, not {}",
            v.check_id, v.receipt_id
        )));
    }
    Ok(HeldCheck {
        receipt: rid,
        role: CheckRole::parse(ch.text(1)?)?,
        reason: CheckReason::parse(ch.text(5)?)?,
        step: ch
            .opt_text(6)?
            .map(|t| unjson(t, "a referee check's step"))
            .transpose()?,
    })
}

/// Stores the verdict and closes its check.
fn record_verdict(
    c: &mut dyn Conn,
    v: &VerdictSubmission,
    role: CheckRole,
    agrees: bool,
    outcome: &str,
    arbitration: &str,
    now_ms: u64,
) -> Result<(), Error> {
    let opt = |h: Option<Hash32>| h.map_or(Value::Null, |h| (&h).into());
    c.exec(
        "INSERT INTO verdicts (check_id, receipt_id, verifier, role, agrees, outputs_root, outcome, \
         fuel_used, flops, bytes, nonce, expires_at, signature, at_ms, trace_root, step_output, arbitration) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        &[
            (&v.check_id).into(),
            (&v.receipt_id).into(),
            (&v.verifier).into(),
            role.as_str().into(),
            agrees.into(),
            (&v.result.outputs_root).into(),
            outcome.into(),
            int(v.result.fuel_used)?,
            int(v.result.work.flops)?,
            int(v.result.work.bytes)?,
            Value::Int(v.nonce as i64),
            int(v.expires_at_ms)?,
            Value::Blob(v.signature.clone()),
            int(now_ms)?,
            opt(v.trace_root),
            opt(v.step_output),
            arbitration.into(),
        ],
    )?;
    c.exec(
        "UPDATE checks SET state = $2 WHERE id = $1",
        &[(&v.check_id).into(), CheckStatus::Done.as_str().into()],
    )?;
    c.exec(
        "UPDATE verifiers SET verdicts = verdicts + 1 WHERE id = $1",
        &[(&v.verifier).into()],
    )?;
    Ok(())
}

/// The verdict whose agreement a re-check examines (the latest agreeing
/// first check).
fn agreeing_verdict(c: &mut dyn Conn, receipt: &Hash32) -> Result<VerdictView, Error> {
    verdicts_of(c, receipt)?
        .into_iter()
        .rev()
        .find(|x| x.role == CheckRole::Verify && x.agrees)
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "receipt {receipt}: a re-check without an agreeing verdict"
            ))
        })
}

/// Whether an agreeing first verdict is re-checked by the arbiter: a fresh
/// coordinator draw (the verifier cannot know it when it answers) below
/// `recheck_ppm`. Without an arbiter there is no one to re-check.
fn recheck_drawn(cfg: &MarketConfig, check: &Hash32) -> bool {
    if cfg.arbiters.is_empty() || cfg.recheck_ppm == 0 {
        return false;
    }
    match random_id() {
        Ok(nonce) => is_sampled(check, &nonce.0, cfg.recheck_ppm),
        // No randomness: re-check rather than skip (costs the arbiter a run).
        Err(_) => true,
    }
}

/// What a verifier bonds to hold a first check of a receipt whose shard
/// escrowed `escrow` µIOSD, at `price` µIOSD per IO (0: unknown, the floor
/// alone stands). A verified shard escrows twice its base: the base is what
/// a wrong result could gain.
fn bond_of(cfg: &MarketConfig, escrow: u64, price: u64) -> u64 {
    let gain = io_for_iosd(escrow / 2, price).unwrap_or(0);
    rules::check_bond(gain, cfg.recheck_ppm, cfg.slash_bps)
}

/// The verifiers a first check may be assigned to: online, not suspended,
/// not arbiters, with their stake and what their held checks bond.
#[derive(Default)]
struct VerifierPool {
    slots: Vec<rules::VerifierSlot>,
}

impl VerifierPool {
    fn read(c: &mut dyn Conn, cfg: &MarketConfig, now_ms: u64) -> Result<VerifierPool, Error> {
        let ids = c.query(
            "SELECT id FROM verifiers WHERE suspended = 0 AND last_seen + $2 >= $1",
            &[int(now_ms)?, int(cfg.provider_liveness_ms)?],
        )?;
        let held = c.query(
            "SELECT verifier, COUNT(*), CAST(COALESCE(SUM(bond), 0) AS BIGINT) FROM checks \
             WHERE state = 'taken' AND verifier IS NOT NULL GROUP BY verifier",
            &[],
        )?;
        let mut holding = BTreeMap::new();
        for h in &held {
            holding.insert(h.node(0)?, (h.u64(1)?, h.u64(2)?));
        }
        let mut slots = Vec::with_capacity(ids.len());
        for r in &ids {
            let id = r.node(0)?;
            if cfg.arbiters.contains(&id) {
                continue;
            }
            let (in_flight, bonded) = holding.get(&id).copied().unwrap_or((0, 0));
            slots.push(rules::VerifierSlot {
                id,
                stake: stake_of(c, &id)?,
                bonded,
                in_flight: u32::try_from(in_flight).unwrap_or(u32::MAX),
            });
        }
        Ok(VerifierPool { slots })
    }

    fn slot(&self, id: &NodeId) -> Option<&rules::VerifierSlot> {
        self.slots.iter().find(|v| v.id == *id)
    }

    /// `id` took a check bonding `bond`.
    fn holds(&mut self, id: &NodeId, bond: u64) {
        if let Some(v) = self.slots.iter_mut().find(|v| v.id == *id) {
            v.in_flight = v.in_flight.saturating_add(1);
            v.bonded = v.bonded.saturating_add(bond);
        }
    }
}

/// The verdict that disputed a receipt (the latest disagreeing first check).
fn disputing_verdict(c: &mut dyn Conn, receipt: &Hash32) -> Result<VerdictView, Error> {
    verdicts_of(c, receipt)?
        .into_iter()
        .rev()
        .find(|x| x.role == CheckRole::Verify && !x.agrees)
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "receipt {receipt}: a referee check without a dispute"
            ))
        })
}

/// Carries out a decision: pays, opens an arbitration or a re-check,
/// slashes, re-queues.
#[allow(clippy::too_many_arguments)]
fn act_on(
    c: &mut dyn Conn,
    cfg: &MarketConfig,
    v: &VerdictSubmission,
    check: &HeldCheck,
    record: &ReceiptRecord,
    first: Option<&VerdictView>,
    decision: Decision,
    now_ms: u64,
) -> Result<(), Error> {
    let rid = check.receipt;
    let provider = record.receipt.body.provider_id;
    let first_verifier = || {
        first.map(|f| f.verifier).ok_or_else(|| {
            Error::Corrupt(format!(
                "receipt {rid}: an arbitration without a first verdict"
            ))
        })
    };
    match decision {
        Decision::Verified => {
            pay_out(c, &rid, cfg, Some(&v.verifier), now_ms)?;
        }
        Decision::Rechecking => {
            open_check(
                c,
                &rid,
                CheckRole::Recheck,
                check.reason,
                &[provider, v.verifier],
                now_ms,
            )?;
            tracing::info!(receipt = %rid.short(), verifier = %v.verifier, "agreement drawn for a re-check: the arbiter re-executes");
        }
        Decision::Disputed => {
            let provider_root = record.receipt.body.trace_root;
            match v.trace_root {
                Some(verifier_root)
                    if verifier_root != Hash32::ZERO && provider_root != Hash32::ZERO =>
                {
                    // Both recorded a trace: bisect them first, so the
                    // arbiter recomputes one step instead of the job.
                    let deadline =
                        rules::deadline(now_ms, cfg.check_ttl_ms, record.receipt.body.work.flops);
                    disputes::open_dispute(
                        c,
                        &rid,
                        &v.check_id,
                        [provider, v.verifier],
                        [provider_root, verifier_root],
                        deadline,
                        now_ms,
                    )?;
                    tracing::warn!(receipt = %rid.short(), verifier = %v.verifier, "mismatch: bisecting the provider's and the verifier's traces");
                }
                _ => {
                    open_check(
                        c,
                        &rid,
                        CheckRole::Referee,
                        check.reason,
                        &[provider, v.verifier],
                        now_ms,
                    )?;
                    tracing::warn!(receipt = %rid.short(), verifier = %v.verifier, "mismatch without two traces to bisect: the arbiter re-executes");
                }
            }
        }
        Decision::Overruled => {
            let wrong = first_verifier()?;
            punish_verifier(
                c,
                cfg,
                &rid,
                &wrong,
                &v.verifier,
                &accounts::balance(Unit::Io, &provider),
                now_ms,
            )?;
            pay_out(c, &rid, cfg, Some(&v.verifier), now_ms)?;
            tracing::warn!(receipt = %rid.short(), verifier = %wrong, "the arbiter overruled the verifier: verifier slashed");
        }
        Decision::Confirmed => {
            // The agreeing verifier did its work: it is paid as the verifier.
            pay_out(c, &rid, cfg, Some(&first_verifier()?), now_ms)?;
        }
        Decision::Rejected | Decision::BothWrong | Decision::Colluded => {
            c.exec(
                "UPDATE receipts SET settled_at = $2, paid = 0 WHERE id = $1",
                &[(&rid).into(), int(now_ms)?],
            )?;
            requeue_shard(c, &rid, now_ms)?;
        }
    }
    if decision.is_final() {
        challenges::judged(c, cfg, &rid, decision.pays(), now_ms)?;
    }
    set_check_state(c, &rid, decision.check_state())?;
    let arbiter = v.verifier;
    match decision {
        Decision::Rejected => {
            // The verifier who caught it earns the bounty.
            let caught_by = first_verifier()?;
            punish_provider(
                c,
                cfg,
                record,
                &provider,
                Some(&caught_by),
                &arbiter,
                now_ms,
            )?;
        }
        Decision::BothWrong | Decision::Colluded => {
            // Both were wrong: no bounty; the arbiter's share, the rest to
            // the renter.
            let wrong = first_verifier()?;
            let renter = renter_of(c, record)?;
            punish_provider(c, cfg, record, &provider, None, &arbiter, now_ms)?;
            punish_verifier(
                c,
                cfg,
                &rid,
                &wrong,
                &arbiter,
                &accounts::balance(Unit::Io, &renter),
                now_ms,
            )?;
            tracing::warn!(receipt = %rid.short(), verifier = %wrong, decision = decision.name(), "the arbiter found the receipt and its verifier wrong: both slashed");
        }
        _ => {}
    }
    Ok(())
}

/// A verifier was proven wrong by the arbiter: it loses σ of its stake (the
/// arbiter gets its share, `rest_to` the rest) and is suspended.
fn punish_verifier(
    c: &mut dyn Conn,
    cfg: &MarketConfig,
    rid: &Hash32,
    wrong: &NodeId,
    arbiter: &NodeId,
    rest_to: &str,
    now_ms: u64,
) -> Result<(), Error> {
    slash(
        c,
        cfg,
        wrong,
        &[(accounts::balance(Unit::Io, arbiter), cfg.referee_bps)],
        rest_to,
        &format!("slash/{rid}/verifier"),
        now_ms,
    )?;
    c.exec(
        "UPDATE verifiers SET overruled = overruled + 1, slashed = slashed + 1, suspended = 1 WHERE id = $1",
        &[wrong.into()],
    )?;
    Ok(())
}

fn renter_of(c: &mut dyn Conn, record: &ReceiptRecord) -> Result<NodeId, Error> {
    c.query_one(
        "SELECT j.renter FROM jobs j WHERE j.id = $1",
        &[(&record.job_id).into()],
    )?
    .node(0)
}

/// The provider was proven wrong: slashed (the verifier who caught it, if
/// any, and the arbiter share the slash, the renter gets the rest),
/// suspended, and every unsettled receipt of it audited.
fn punish_provider(
    c: &mut dyn Conn,
    cfg: &MarketConfig,
    record: &ReceiptRecord,
    provider: &NodeId,
    caught_by: Option<&NodeId>,
    arbiter: &NodeId,
    now_ms: u64,
) -> Result<(), Error> {
    let rid = record.id;
    let renter = renter_of(c, record)?;
    let mut shares = vec![(accounts::balance(Unit::Io, arbiter), cfg.referee_bps)];
    if let Some(v) = caught_by {
        shares.insert(0, (accounts::balance(Unit::Io, v), cfg.bounty_bps));
    }
    slash(
        c,
        cfg,
        provider,
        &shares,
        &accounts::balance(Unit::Io, &renter),
        &format!("slash/{rid}/provider"),
        now_ms,
    )?;
    c.exec(
        "UPDATE providers SET suspended = 1, slashed = slashed + 1 WHERE id = $1",
        &[provider.into()],
    )?;
    // Every unsettled receipt of a proven cheat is checked.
    let others = c.query(
        "SELECT id, check_state FROM receipts WHERE provider = $1 AND settled_at IS NULL \
         AND check_state IN ('pending', 'not-sampled')",
        &[provider.into()],
    )?;
    for o in &others {
        let oid = o.hash(0)?;
        let to = next_state(CheckState::parse(o.text(1)?)?, CheckEvent::Audited)?;
        set_check(c, &oid, to, Some(CheckReason::Audit))?;
        open_check(
            c,
            &oid,
            CheckRole::Verify,
            CheckReason::Audit,
            &[*provider],
            now_ms,
        )?;
    }
    tracing::warn!(receipt = %rid.short(), provider = %provider, audited = others.len(), "the provider was wrong: slashed, suspended, shard re-queued");
    Ok(())
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
    let state = if challenges::is_challenge(c, &job)? {
        ShardState::Failed
    } else {
        ShardState::Queued
    };
    c.exec(
        "UPDATE shards SET state = $3, queued_at = $2, receipt_id = NULL, lease_id = NULL, \
         provider = NULL, lease_price = NULL, lease_expires_at = NULL \
         WHERE receipt_id = $1 AND state = 'done'",
        &[receipt.into(), int(now_ms)?, state.as_str().into()],
    )?;
    Ok(())
}

/// Re-opens a taken check without `verifier` (it may not take it again).
fn reopen(
    c: &mut dyn Conn,
    check: &Hash32,
    excluded: &str,
    verifier: &NodeId,
) -> Result<(), Error> {
    let mut excluded = excluded_of(excluded)?;
    excluded.push(verifier.to_hex());
    c.exec(
        "UPDATE checks SET state = 'open', verifier = NULL, deadline = NULL, excluded = $2 WHERE id = $1",
        &[check.into(), json(&excluded)?.into()],
    )?;
    Ok(())
}
