//! Receipts: recording a provider's receipt for its lease (and opening its
//! check; the lease's bond moves to the receipt until it settles, and the
//! shard's earlier watchdog attempts are charged as faults now that the job
//! proved it can run), settling receipts whose challenge window passed,
//! and the receipt feed verifiers and auditors read.

use assay_protocol::{Hash32, NodeId};

use super::challenges;
use super::checks::open_check;
use super::epochs::open_epoch;
use super::ledger::{Batch, PAY_COLS, escrow_left, pay_out_row};
use super::rows::{RECEIPT_COLS, json, receipt_row};
use super::sql::{Backend, Conn, Row, Value, int};
use super::sql_store::SqlStore;
use crate::Error;
use crate::rules::checks::initial;
use crate::rules::exposure::{settle_at, worst_case_dispute_ms};
use crate::rules::leases::{ReceiptGate, check_failure_message, receipt_gate, require_holder};
use crate::state::{CheckReason, CheckRole, CheckState, LeaseState};
use crate::types::{ReceiptRecord, ReceiptSubmission};

/// Receipts and their settlement.
pub trait Receipts {
    /// Records the receipt of an active lease; returns its id and when it
    /// settles ([`crate::rules::exposure::settle_at`]: a receipt of a
    /// verified job not before a dispute could end). Submitting the same
    /// receipt again returns the same answer.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (no such lease), [`Error::PermissionDenied`]
    /// (another provider's), [`Error::Precondition`] (expired or returned),
    /// [`Error::Invalid`] (a failure message longer than is kept).
    fn submit_receipt(&self, s: &ReceiptSubmission, now_ms: u64) -> Result<(Hash32, u64), Error>;
    /// Settles receipts whose delay has passed (pay, fee, refund); returns
    /// their ids. Idempotent per receipt.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn settle_due(&self, now_ms: u64) -> Result<Vec<Hash32>, Error>;
    /// Recorded receipts after `after_seq`, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn receipts_after(&self, after_seq: u64, limit: u32) -> Result<Vec<ReceiptRecord>, Error>;
}

impl<B: Backend> Receipts for SqlStore<B> {
    fn submit_receipt(&self, s: &ReceiptSubmission, now_ms: u64) -> Result<(Hash32, u64), Error> {
        check_failure_message(&s.failure_message)?;
        let rid = s.receipt.id();
        let cfg = &self.cfg;
        let worst_dispute =
            worst_case_dispute_ms(cfg.epoch_ms, cfg.check_ttl_ms, s.receipt.body.work.flops);
        let receipt_json = json(&s.receipt)?;
        let outputs_json = json(&s.outputs)?;
        let epoch_ms = self.cfg.epoch_ms;
        // Never hashed: stored beside the receipt (NULL when there is none).
        let failure_message = match s.failure_message.as_str() {
            "" => Value::Null,
            m => Value::Text(m.to_owned()),
        };
        self.b.write(&mut |c| {
            let lease = lock_lease(c, s)?;
            if receipt_gate(&s.lease_id, lease.state)? == ReceiptGate::AlreadyDone {
                return answer_retry(c, &rid, &s.lease_id);
            }
            // One receipt answers one lease: the same signed receipt for
            // another lease (identical work) is refused, not a key clash.
            if let Some(other) = c.query_opt(
                "SELECT lease_id FROM receipts WHERE id = $1",
                &[(&rid).into()],
            )? {
                return Err(Error::AlreadyExists(format!(
                    "receipt {rid} already answers lease {}: sign a receipt of this lease's own run",
                    other.hash(0)?
                )));
            }
            let terms = job_terms(c, &lease.job, lease.idx)?;
            let settle_at = settle_at(
                now_ms,
                cfg.settlement_delay_ms,
                terms.rate_ppm > 0,
                worst_dispute,
            );
            if terms.challenge {
                challenges::answered(c, &s.provider, &lease.job, &s.lease_id, now_ms)?;
            }
            let epoch = open_epoch(c, epoch_ms, now_ms)?;
            // A provider caught cheating has every later receipt checked too.
            let (check_state, check_reason) =
                initial(terms.rate_ppm, is_suspended(c, &s.provider)?, terms.challenge);
            close_shard(c, &lease, &s.lease_id, &rid)?;
            c.exec(
                "INSERT INTO receipts (id, job_id, idx, provider, lease_id, receipt, outputs, outputs_root, \
                 units, price, escrow, created_at, settle_at, epoch, rate_ppm, check_state, check_reason, \
                 failure_message, bond) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
                &[
                    (&rid).into(),
                    (&lease.job).into(),
                    Value::Int(lease.idx),
                    (&s.provider).into(),
                    (&s.lease_id).into(),
                    receipt_json.clone().into(),
                    outputs_json.clone().into(),
                    (&s.receipt.body.outputs_root).into(),
                    int(s.units)?,
                    int(lease.price)?,
                    int(terms.escrow)?,
                    int(now_ms)?,
                    int(settle_at)?,
                    int(epoch)?,
                    Value::Int(i64::from(terms.rate_ppm)),
                    check_state.as_str().into(),
                    CheckReason::as_stored(check_reason).into(),
                    failure_message.clone(),
                    int(lease.bond)?,
                ],
            )?;
            super::access::add_refs(c, &lease.job, s.outputs.iter().map(|b| &b.hash))?;
            if let (CheckState::Sampled, Some(reason)) = (check_state, check_reason) {
                open_check(c, &rid, CheckRole::Verify, reason, &[s.provider], now_ms)?;
            }
            c.exec(
                "UPDATE leases SET state = 'done', ended_at = $2 WHERE id = $1",
                &[(&s.lease_id).into(), int(now_ms)?],
            )?;
            c.exec(
                "UPDATE providers SET completed = completed + 1 WHERE id = $1",
                &[(&s.provider).into()],
            )?;
            charge_watchdog_attempts(c, &lease)?;
            Ok((rid, settle_at))
        })
    }

    fn settle_due(&self, now_ms: u64) -> Result<Vec<Hash32>, Error> {
        let cfg = self.cfg.clone();
        self.b.write(&mut |c| {
            // The states of `rules::checks::settles_after_window`.
            let rows = c.query(
                &format!(
                    "SELECT r.id, {PAY_COLS} FROM receipts r JOIN jobs j ON j.id = r.job_id \
                     WHERE r.settled_at IS NULL AND r.settle_at <= $1 \
                     AND r.check_state IN ('unverified', 'not-sampled') ORDER BY r.seq LIMIT 500{}",
                    c.dialect().skip_locked("r")
                ),
                &[int(now_ms)?],
            )?;
            let mut settled = Vec::with_capacity(rows.len());
            let mut batch = Batch::open(c, now_ms)?;
            for r in &rows {
                let rid = r.hash(0)?;
                pay_out_row(c, &rid, r, 1, &cfg, None, now_ms, &mut batch)?;
                settled.push(rid);
            }
            batch.close(c, &cfg, now_ms)?;
            Ok(settled)
        })
    }

    fn receipts_after(&self, after_seq: u64, limit: u32) -> Result<Vec<ReceiptRecord>, Error> {
        self.b.read(&mut |c| {
            c.query(
                &format!(
                    "SELECT {RECEIPT_COLS} FROM receipts WHERE seq > $1 ORDER BY seq LIMIT $2"
                ),
                &[int(after_seq)?, Value::Int(i64::from(limit))],
            )?
            .iter()
            .map(receipt_row)
            .collect()
        })
    }
}

/// The lease a receipt completes, locked.
struct LockedLease {
    job: Hash32,
    idx: i64,
    price: u64,
    state: LeaseState,
    /// The stake it bonds (the receipt bonds it next).
    bond: u64,
}

/// Locks the lease and checks that the submitter holds it.
fn lock_lease(c: &mut dyn Conn, s: &ReceiptSubmission) -> Result<LockedLease, Error> {
    let Some(l) = c.query_opt(
        &format!(
            "SELECT job_id, idx, provider, price, state, bond FROM leases WHERE id = $1{}",
            c.dialect().for_update()
        ),
        &[(&s.lease_id).into()],
    )?
    else {
        return Err(Error::NotFound(format!(
            "no lease {}: a provider submits receipts only for leases it was given",
            s.lease_id
        )));
    };
    require_holder(&s.lease_id, &l.node(2)?, &s.provider)?;
    Ok(LockedLease {
        job: l.hash(0)?,
        idx: l.i64(1)?,
        price: l.u64(3)?,
        state: LeaseState::parse(l.text(4)?)?,
        bond: l.u64(5)?,
    })
}

/// A retry of a receipt that was recorded gets the same answer; another
/// receipt for a done lease is refused.
fn answer_retry(c: &mut dyn Conn, rid: &Hash32, lease: &Hash32) -> Result<(Hash32, u64), Error> {
    if let Some(r) = c.query_opt(
        "SELECT settle_at FROM receipts WHERE id = $1 AND lease_id = $2",
        &[rid.into(), lease.into()],
    )? {
        return Ok((*rid, r.u64(0)?));
    }
    Err(Error::AlreadyExists(format!(
        "lease {lease} already has a different receipt"
    )))
}

/// What a receipt inherits from its job.
struct ReceiptTerms {
    /// What is left of the shard's escrow (less earlier watchdog fees).
    escrow: u64,
    rate_ppm: u32,
    challenge: bool,
}

fn job_terms(c: &mut dyn Conn, job: &Hash32, idx: i64) -> Result<ReceiptTerms, Error> {
    let j: Row = c.query_one(
        "SELECT verify_rate_ppm, challenge_for FROM jobs WHERE id = $1",
        &[job.into()],
    )?;
    Ok(ReceiptTerms {
        escrow: escrow_left(c, job, idx)?,
        rate_ppm: j.u32(0)?,
        challenge: j.opt_node(1)?.is_some(),
    })
}

/// The shard got a receipt, so the job can run: its attempts that ended in
/// the job's watchdog are charged as faults to their providers now (once
/// each; a shard whose every attempt timed out charges no one).
fn charge_watchdog_attempts(c: &mut dyn Conn, lease: &LockedLease) -> Result<(), Error> {
    let charged = c.query(
        "UPDATE leases SET fault_charged = 1 \
         WHERE job_id = $1 AND idx = $2 AND watchdog = 1 AND fault_charged = 0 RETURNING provider",
        &[(&lease.job).into(), Value::Int(lease.idx)],
    )?;
    for r in &charged {
        c.exec(
            "UPDATE providers SET faults = faults + 1 WHERE id = $1",
            &[r.blob(0)?.into()],
        )?;
    }
    Ok(())
}

fn is_suspended(c: &mut dyn Conn, provider: &NodeId) -> Result<bool, Error> {
    Ok(c.query_one(
        "SELECT suspended FROM providers WHERE id = $1",
        &[provider.into()],
    )?
    .i64(0)?
        != 0)
}

/// Marks the lease's shard done with this receipt.
fn close_shard(
    c: &mut dyn Conn,
    lease: &LockedLease,
    lease_id: &Hash32,
    rid: &Hash32,
) -> Result<(), Error> {
    let n = c.exec(
        "UPDATE shards SET state = 'done', receipt_id = $4, lease_expires_at = NULL \
         WHERE job_id = $1 AND idx = $2 AND lease_id = $3 AND state = 'leased'",
        &[
            (&lease.job).into(),
            Value::Int(lease.idx),
            lease_id.into(),
            rid.into(),
        ],
    )?;
    if n != 1 {
        return Err(Error::Precondition(format!(
            "lease {lease_id} is no longer current for its shard"
        )));
    }
    Ok(())
}
