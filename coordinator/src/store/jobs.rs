//! Jobs: accepting one (escrow from the renter's balance, one row per
//! shard) and the renter's view of it (shards, receipts, verdicts, what is
//! at stake, and why a shard waits).

use std::collections::{BTreeMap, BTreeSet};

use assay_protocol::{BlobRef, Hash32, JobSpec, NodeId};

use super::economy::{convert, price_in};
use super::ledger::{Movement, balance_of, post, stake_of};
use super::rows::{RECEIPT_COL_COUNT, RECEIPT_COLS, json, receipt_row, unjson, verdicts_of};
use super::sql::{Backend, Conn, Row, Value, int};
use super::sql_store::SqlStore;
use crate::Error;
use crate::ledger::accounts::io_for_iosd;
use crate::ledger::{self as accounts, Unit};
use crate::rules::jobs::{escrow_not_covered, root_of, shard_job_ids, shard_spec};
use crate::rules::matching::{Need, why_not_matched};
use crate::rules::money::{self, Escrow};
use crate::state::{CheckState, ShardState};
use crate::types::{JobView, NewJob, ReceiptRecord, ShardView, Submitted};

/// Jobs as renters submit and see them.
pub trait Jobs {
    /// Accepts a job: escrows `max price × (fuel + work budget)` per shard
    /// from the renter's balance and queues its shards.
    ///
    /// # Errors
    ///
    /// [`Error::Precondition`] if the balance does not cover the escrow;
    /// [`Error::AlreadyExists`] for a job id already taken.
    fn submit_job(&self, job: &NewJob, now_ms: u64) -> Result<Submitted, Error>;
    /// A job with its shards, receipts and "why not matched".
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn job(&self, id: &Hash32, now_ms: u64) -> Result<Option<JobView>, Error>;
}

impl<B: Backend> Jobs for SqlStore<B> {
    fn submit_job(&self, job: &NewJob, now_ms: u64) -> Result<Submitted, Error> {
        self.accept_job(job, None, now_ms)
    }

    fn job(&self, id: &Hash32, now_ms: u64) -> Result<Option<JobView>, Error> {
        let Some((mut view, need)) = self.b.read(&mut |c| read_job(c, id))? else {
            return Ok(None);
        };
        for s in view.shards.iter_mut().filter(|s| s.inputs.is_empty()) {
            s.inputs.clone_from(&view.inputs);
        }
        for s in view
            .shards
            .iter_mut()
            .filter(|s| s.state == ShardState::Failed)
        {
            s.why_not_matched = format!(
                "gave up after {} leases ended without a receipt (provider faults, timeouts or expired leases); \
                 its escrow (less any watchdog fees) was refunded",
                s.attempts
            );
        }
        self.explain_checks(&mut view, now_ms)?;
        // A reserved cluster's shards wait for a member's slot, not for the
        // market: say so instead of the market's reasons.
        let job = view.id;
        let cluster = self.b.read(&mut |c| {
            c.query_opt(
                "SELECT cluster_id FROM shards WHERE job_id = $1 AND cluster_id IS NOT NULL LIMIT 1",
                &[(&job).into()],
            )?
            .map(|r| r.hash(0))
            .transpose()
        })?;
        if let Some(cluster) = cluster {
            for s in view
                .shards
                .iter_mut()
                .filter(|s| s.state == ShardState::Queued)
            {
                s.why_not_matched = format!(
                    "runs only on reserved cluster {cluster}: waits for a member's reserved slot \
                     (one shard at a time per member; `assay cluster show {cluster}`)"
                );
            }
            return Ok(Some(view));
        }
        if view.shards.iter().any(|s| s.state == ShardState::Queued) {
            let online = self.online(now_ms)?;
            let why = why_not_matched(&need, online.as_slice());
            // A provider that gave a shard back is not offered it again:
            // the reason is about the others.
            let job = view.id;
            let gave_back = self.b.read(&mut |c| {
                let mut gave_back: BTreeMap<u32, BTreeSet<NodeId>> = BTreeMap::new();
                for r in &c.query(
                    "SELECT DISTINCT idx, provider FROM leases WHERE job_id = $1 AND state = 'returned'",
                    &[(&job).into()],
                )? {
                    let idx = u32::try_from(r.u64(0)?)
                        .map_err(|_| Error::Corrupt(format!("job {job}: a shard index past u32")))?;
                    gave_back.entry(idx).or_default().insert(r.node(1)?);
                }
                Ok(gave_back)
            })?;
            let none = BTreeSet::new();
            for s in view
                .shards
                .iter_mut()
                .filter(|s| s.state == ShardState::Queued)
            {
                let gave_back = gave_back.get(&s.index).unwrap_or(&none);
                let excluded = online
                    .iter()
                    .filter(|o| o.provider.online && gave_back.contains(&o.provider.id))
                    .count();
                if excluded == 0 {
                    s.why_not_matched.clone_from(&why);
                    continue;
                }
                let rest: Vec<_> = online
                    .iter()
                    .filter(|o| !gave_back.contains(&o.provider.id))
                    .cloned()
                    .collect();
                s.why_not_matched = format!(
                    "{} ({excluded} online provider{} gave this shard back and {} not offered it again)",
                    why_not_matched(&need, &rest),
                    if excluded == 1 { "" } else { "s" },
                    if excluded == 1 { "is" } else { "are" },
                );
            }
        }
        Ok(Some(view))
    }
}

impl<B: Backend> SqlStore<B> {
    /// Accepts a job ([`Jobs::submit_job`]); with `cluster`, one that runs
    /// only on that reserved cluster's members, checked in the same
    /// transaction ([`super::clusters::admit_job`]).
    pub(super) fn accept_job(
        &self,
        job: &NewJob,
        cluster: Option<&Hash32>,
        now_ms: u64,
    ) -> Result<Submitted, Error> {
        let plan = plan(job, self.cfg.slash_bps)?;
        let economy = self.cfg.economy;
        let io_burned = self.b.write(&mut |c| {
            if c.query_opt("SELECT seq FROM jobs WHERE id = $1", &[(&job.id).into()])?
                .is_some()
            {
                return Err(Error::AlreadyExists(format!(
                    "job {} exists already",
                    job.id
                )));
            }
            // The IO price, read once, when the job needs it: the
            // verified-shard stake floor is priced in IOSD (stakes are IO),
            // and paying in IO burns it at the price.
            let price = if plan.escrow.min_stake > 0 || job.pay_in == Unit::Io {
                price_in(c, &economy, now_ms)?
            } else {
                0
            };
            let min_stake_io = if plan.escrow.min_stake > 0 {
                io_for_iosd(plan.escrow.min_stake, price).ok_or_else(|| {
                    Error::Invalid("the required stake overflows at the IO price".into())
                })?
            } else {
                0
            };
            let io_burned = match job.pay_in {
                Unit::Iosd => 0,
                Unit::Io => {
                    convert(
                        c,
                        &accounts::balance(Unit::Io, &job.renter),
                        &accounts::balance(Unit::Iosd, &job.renter),
                        plan.escrow.total,
                        price,
                        &format!("pay/{}", job.id),
                        now_ms,
                    )?
                    .0
                }
            };
            if let Some(cluster) = cluster {
                super::clusters::admit_job(c, cluster, job, now_ms)?;
            }
            escrow_from_balance(c, job, plan.escrow.total, now_ms)?;
            let priority = i64::from(balance_of(c, &accounts::stake(&job.renter))? > 0);
            let seq = insert_job(c, job, &plan, priority, now_ms)?;
            insert_shards(c, job, &plan, min_stake_io, seq, priority, now_ms)?;
            let named = std::iter::once(&job.component_hash)
                .chain(job.inputs.iter().map(|b| &b.hash))
                .chain(job.shard_inputs.iter().flatten().map(|b| &b.hash));
            super::access::add_refs(c, &job.id, named)?;
            if let Some(cluster) = cluster {
                c.exec(
                    "UPDATE shards SET cluster_id = $2 WHERE job_id = $1",
                    &[(&job.id).into(), cluster.into()],
                )?;
            }
            Ok(io_burned)
        })?;
        Ok(Submitted {
            io_burned,
            escrow: plan.escrow.total,
            shard_job_ids: plan.shard_job_ids,
        })
    }
}

/// What accepting a job writes, worked out before the transaction.
struct Plan {
    escrow: Escrow,
    /// Each shard's own inputs (JSON) and inputs root; `None`: the job's.
    own: Vec<Option<(String, Hash32)>>,
    shard_job_ids: Vec<Hash32>,
    inputs_json: String,
    spec_json: String,
}

fn plan(job: &NewJob, slash_bps: u32) -> Result<Plan, Error> {
    if job.shards == 0 {
        return Err(Error::Invalid("a job needs at least one shard".into()));
    }
    if job.verify_rate_ppm > assay_protocol::verification::RATE_ALWAYS {
        return Err(Error::Invalid(format!(
            "a verification rate of {} ppm is more than always ({})",
            job.verify_rate_ppm,
            assay_protocol::verification::RATE_ALWAYS
        )));
    }
    // A verified job also escrows the verifier's fee (a re-execution at
    // the provider's price): a sampled shard pays it, the rest comes back.
    let escrow = money::escrow(
        job.max_price,
        &job.spec,
        job.verify_rate_ppm,
        job.shards,
        slash_bps,
    )?;
    if !job.shard_inputs.is_empty() && job.shard_inputs.len() != job.shards as usize {
        return Err(Error::Invalid(format!(
            "{} shard input lists for {} shards",
            job.shard_inputs.len(),
            job.shards
        )));
    }
    let mut own: Vec<Option<(String, Hash32)>> = Vec::with_capacity(job.shards as usize);
    for list in &job.shard_inputs {
        own.push(Some((json(list)?, root_of(list))));
    }
    own.resize(job.shards as usize, None);
    let shard_job_ids = shard_job_ids(&job.component_hash, &job.spec, job.shards, |i| {
        own[i as usize].as_ref().map_or(job.inputs_root, |o| o.1)
    });
    Ok(Plan {
        escrow,
        own,
        shard_job_ids,
        inputs_json: json(&job.inputs)?,
        spec_json: json(&shard_spec(&job.spec, 0, job.shards))?,
    })
}

/// Moves the job's escrow out of the renter's balance.
fn escrow_from_balance(
    c: &mut dyn Conn,
    job: &NewJob,
    escrow: u64,
    now_ms: u64,
) -> Result<(), Error> {
    let balance_acct = accounts::balance(Unit::Iosd, &job.renter);
    let have = balance_of(c, &balance_acct)?;
    if have < escrow as i64 {
        return Err(escrow_not_covered(
            have,
            escrow,
            job.max_price,
            &job.spec,
            job.shards,
        ));
    }
    post(
        c,
        Movement {
            kind: "escrow",
            debit: &balance_acct,
            credit: &accounts::escrow(&job.id),
            amount: escrow,
            reference: &format!("escrow/{}", job.id),
        },
        now_ms,
    )?;
    Ok(())
}

fn insert_job(
    c: &mut dyn Conn,
    job: &NewJob,
    plan: &Plan,
    priority: i64,
    now_ms: u64,
) -> Result<i64, Error> {
    c.query_one(
        "INSERT INTO jobs (id, renter, component_hash, component_size, inputs, inputs_root, spec, \
         shards, max_price, require_gpu, priority, escrow, shard_escrow, created_at, verify_rate_ppm, paid_in) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING seq",
        &[
            (&job.id).into(),
            (&job.renter).into(),
            (&job.component_hash).into(),
            int(job.component_size)?,
            plan.inputs_json.as_str().into(),
            (&job.inputs_root).into(),
            plan.spec_json.as_str().into(),
            int(u64::from(job.shards))?,
            int(job.max_price)?,
            job.require_gpu.into(),
            Value::Int(priority),
            int(plan.escrow.total)?,
            int(plan.escrow.per_shard)?,
            int(now_ms)?,
            Value::Int(i64::from(job.verify_rate_ppm)),
            job.pay_in.as_str().into(),
        ],
    )?
    .i64(0)
}

fn insert_shards(
    c: &mut dyn Conn,
    job: &NewJob,
    plan: &Plan,
    min_stake_io: u64,
    seq: i64,
    priority: i64,
    now_ms: u64,
) -> Result<(), Error> {
    for (i, sid) in plan.shard_job_ids.iter().enumerate() {
        let own = plan.own[i].as_ref();
        c.exec(
            "INSERT INTO shards (job_id, idx, job_seq, shard_job_id, state, priority, max_price, \
             memory_bytes, gpu_memory_bytes, require_gpu, queued_at, inputs, inputs_root, min_stake) \
             VALUES ($1, $2, $3, $4, $14, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                (&job.id).into(),
                Value::Int(i as i64),
                Value::Int(seq),
                sid.into(),
                Value::Int(priority),
                int(job.max_price)?,
                int(job.spec.memory_bytes)?,
                int(job.spec.gpu_memory_bytes)?,
                job.require_gpu.into(),
                int(now_ms)?,
                own.map(|o| o.0.clone()).into(),
                own.map(|o| o.1.0.to_vec()).map_or(Value::Null, Value::Blob),
                int(min_stake_io)?,
                ShardState::Queued.as_str().into(),
            ],
        )?;
    }
    Ok(())
}

/// The job's row, shards and receipts, and what its shards need of a
/// provider; `None` for an unknown job.
fn read_job(c: &mut dyn Conn, id: &Hash32) -> Result<Option<(JobView, Need)>, Error> {
    let Some(j) = c.query_opt(
        "SELECT renter, component_hash, component_size, inputs, spec, max_price, escrow, created_at, require_gpu, \
         verify_rate_ppm FROM jobs WHERE id = $1",
        &[id.into()],
    )?
    else {
        return Ok(None);
    };
    let spec: JobSpec = unjson(j.text(4)?, "spec")?;
    let mut need = Need {
        max_price: j.u64(5)?,
        memory_bytes: spec.memory_bytes,
        gpu_memory_bytes: spec.gpu_memory_bytes,
        require_gpu: j.i64(8)? != 0,
        min_stake: 0,
    };
    let (mut receipts, mut rejected) = read_receipts(c, id)?;
    let mut shards = Vec::new();
    for s in c.query(
        "SELECT idx, shard_job_id, state, provider, attempts, receipt_id, inputs, min_stake FROM shards \
         WHERE job_id IN ($1) ORDER BY idx",
        &[id.into()],
    )? {
        need.min_stake = need.min_stake.max(s.u64(7)?);
        shards.push(shard_view(c, &s, &mut receipts, &mut rejected)?);
    }
    let providers_at_stake = at_stake(c, &shards)?;
    Ok(Some((
        JobView {
            id: *id,
            renter: j.node(0)?,
            component_hash: j.hash(1)?,
            component_size: j.u64(2)?,
            inputs: unjson(j.text(3)?, "inputs")?,
            spec,
            max_price: j.u64(5)?,
            escrow: j.u64(6)?,
            created_at_ms: j.u64(7)?,
            shards,
            verify_rate_ppm: j.u32(9)?,
            providers_at_stake,
        },
        need,
    )))
}

type ByShard = BTreeMap<u32, Vec<Hash32>>;

/// A job's receipts by id, and the ids of those proven wrong (or void) by shard.
fn read_receipts(
    c: &mut dyn Conn,
    job: &Hash32,
) -> Result<(BTreeMap<Hash32, ReceiptRecord>, ByShard), Error> {
    let mut receipts = BTreeMap::new();
    let mut rejected = ByShard::new();
    for r in c.query(
        &format!("SELECT {RECEIPT_COLS}, idx FROM receipts WHERE job_id IN ($1) ORDER BY seq"),
        &[job.into()],
    )? {
        let rec = receipt_row(&r)?;
        if matches!(rec.check_state, CheckState::Rejected | CheckState::Void) {
            rejected
                .entry(r.u32(RECEIPT_COL_COUNT)?)
                .or_default()
                .push(rec.id);
        }
        receipts.insert(rec.id, rec);
    }
    Ok((receipts, rejected))
}

fn shard_view(
    c: &mut dyn Conn,
    s: &Row,
    receipts: &mut BTreeMap<Hash32, ReceiptRecord>,
    rejected: &mut ByShard,
) -> Result<ShardView, Error> {
    let receipt = match s.opt_hash(5)? {
        Some(rid) => receipts.get(&rid).cloned(),
        None => None,
    };
    let verdicts = match &receipt {
        Some(r) => verdicts_of(c, &r.id)?,
        None => Vec::new(),
    };
    let index = s.u32(0)?;
    let inputs: Vec<BlobRef> = match s.0.get(6) {
        Some(Value::Text(t)) => unjson(t, "shard inputs")?,
        _ => Vec::new(),
    };
    Ok(ShardView {
        index,
        shard_job_id: s.hash(1)?,
        state: ShardState::parse(s.text(2)?)?,
        provider: s.opt_node(3)?,
        attempts: s.u32(4)?,
        receipt,
        why_not_matched: String::new(),
        inputs,
        verdicts,
        rejected_receipts: rejected.remove(&index).unwrap_or_default(),
        check_note: String::new(),
    })
}

/// What the providers that hold or ran the shards have at stake:
/// (provider, stake, receipts committed).
fn at_stake(c: &mut dyn Conn, shards: &[ShardView]) -> Result<Vec<(NodeId, u64, u64)>, Error> {
    let holders: BTreeSet<NodeId> = shards
        .iter()
        .filter_map(|s| {
            s.receipt
                .as_ref()
                .map(|r| r.receipt.body.provider_id)
                .or(s.provider)
        })
        .collect();
    let mut out = Vec::with_capacity(holders.len());
    for p in holders {
        let stake = stake_of(c, &p)?;
        let n = c
            .query_one(
                "SELECT COUNT(*) FROM receipts WHERE provider = $1",
                &[(&p).into()],
            )?
            .u64(0)?;
        out.push((p, stake, n));
    }
    Ok(out)
}
