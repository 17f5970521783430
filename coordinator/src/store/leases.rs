//! Leases: matching queued shards to a polling provider (in the order of
//! [`crate::rules::matching`], each lease bonding its shard's required stake
//! out of the provider's free stake, [`crate::rules::exposure`]), a lease's
//! details, giving one back (after the job's own watchdog: for a fee),
//! ending the leases a provider's heartbeat says it does not hold, and
//! re-queuing the shards of leases that expired or reached their hard end.
//! A shard is never offered again to a provider that gave its lease back.
//! A reserved cluster's shards go only to its members, into the slot each
//! holds for it, at the work price it locked, before any other shard; the
//! market gets a member's other slots only.

use std::collections::BTreeSet;

use assay_protocol::{Hash32, NodeId};

use super::clusters::reserved_slots;
use super::ledger::{escrow_left, pay_watchdog_fee, refund_shard, stake_of};
use super::providers::exposure_of;
use super::rows::{JobCache, LeaseSlot, PROVIDER_COLS, lease_from, provider_view, random_id};
use super::sql::{Backend, Conn, Row, Value, int};
use super::sql_store::SqlStore;
use crate::Error;
use crate::rules::exposure::Exposure;
use crate::rules::leases::{
    NOT_HELD, charged_on_return, ends_unreported, expires_at, lease_cap, require_holder,
    shard_after_lost_lease,
};
use crate::rules::matching::{Need, Offer, ProviderView, defer_to_better};
use crate::state::{LeaseState, ShardState};
use crate::types::{Lease, LeaseInfo};

/// Leases on shards.
pub trait Leases {
    /// Leases up to `max` queued shards the provider is matched to.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if the provider is not registered.
    fn take_leases(&self, node: &NodeId, max: u32, now_ms: u64) -> Result<Vec<Lease>, Error>;
    /// A lease, whatever its state.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn lease(&self, id: &Hash32) -> Result<Option<LeaseInfo>, Error>;
    /// Gives a lease back and re-queues its shard with its escrow intact
    /// (`fault`: counts against reliability). The shard is not offered to
    /// this provider again.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (no such lease), [`Error::PermissionDenied`]
    /// (another provider's).
    fn return_lease(
        &self,
        node: &NodeId,
        lease: &Hash32,
        fault: bool,
        reason: &str,
        now_ms: u64,
    ) -> Result<(), Error> {
        self.give_back(node, lease, GiveBack::new(fault, false, reason), now_ms)
            .map(|_| ())
    }
    /// Gives a lease back as [`Leases::return_lease`] does; after the job's
    /// own watchdog ended the run (`back.watchdog`) the renter pays
    /// [`crate::config::MarketConfig::watchdog_fee`] out of the shard's escrow to this
    /// provider, and the attempt counts against its reliability only if
    /// someone later completes the shard. Returns the watchdog fee paid.
    ///
    /// # Errors
    ///
    /// As [`Leases::return_lease`].
    fn give_back(
        &self,
        node: &NodeId,
        lease: &Hash32,
        back: GiveBack<'_>,
        now_ms: u64,
    ) -> Result<u64, Error>;
    /// Ends the provider's open leases that its heartbeat's report of the
    /// leases it holds (`held`) leaves out and that were granted more than
    /// [`crate::config::MarketConfig::lease_report_grace_ms`] ago: their shards are
    /// re-queued with their escrow intact, not offered to it again, and the
    /// provider is charged neither a fault nor an expiry (a lost
    /// `TakeLeases` reply is nobody's fault). Returns the leases ended.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn end_unheld(&self, node: &NodeId, held: &[Hash32], now_ms: u64)
    -> Result<Vec<Hash32>, Error>;
    /// Re-queues the shards of leases that expired or reached their hard
    /// end; returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn expire_leases(&self, now_ms: u64) -> Result<u64, Error>;
}

/// How a lease is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GiveBack<'a> {
    /// The provider's machine failed (counts against its reliability).
    pub fault: bool,
    /// The job's own watchdog ended the run: the renter pays the watchdog
    /// fee, and reliability is charged only if the shard is completed later.
    pub watchdog: bool,
    /// Why, in words (kept with the lease).
    pub reason: &'a str,
}

impl<'a> GiveBack<'a> {
    /// A give-back.
    pub fn new(fault: bool, watchdog: bool, reason: &'a str) -> GiveBack<'a> {
        GiveBack {
            fault,
            watchdog,
            reason,
        }
    }
}

impl<B: Backend> Leases for SqlStore<B> {
    fn take_leases(&self, node: &NodeId, max: u32, now_ms: u64) -> Result<Vec<Lease>, Error> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let online = if self.cfg.preference_window_ms > 0 {
            Some(self.online(now_ms)?)
        } else {
            None
        };
        let window = self.cfg.preference_window_ms;
        let expires = expires_at(now_ms, self.cfg.lease_ttl_ms);
        let cap = (self.cfg.lease_cap_factor, self.cfg.lease_ttl_ms);
        self.b.write(&mut |c| {
            // First, so that two takes of one provider (on two replicas)
            // bond its stake one after the other: the row stays locked.
            c.exec(
                "UPDATE providers SET last_seen = $2 WHERE id = $1",
                &[node.into(), int(now_ms)?],
            )?;
            let me = admit_provider(c, node, now_ms)?;
            let held = held_jobs(c, node)?;
            // Each active cluster it is a member of holds one of its slots:
            // that cluster's shards run there, and nothing else does.
            let reserved = reserved_slots(c, node)?;
            let held_reserved: u32 = reserved.iter().map(|r| r.2.min(1)).sum();
            let open = me
                .slots
                .saturating_sub(reserved.len() as u32)
                .saturating_sub((held.len() as u32).saturating_sub(held_reserved));
            let free = open.min(max);
            let free_reserved = reserved.iter().filter(|r| r.2 == 0).count() as u32;
            // Not hired below its stake floor (it learns why from `assay account`
            // and the job's "why not matched").
            if (free == 0 && free_reserved == 0) || me.stake < me.stake_floor {
                return Ok(Vec::new());
            }
            let stake = stake_of(c, node)?;
            // Summed before the candidates are read, so that shards its free
            // stake cannot bond do not crowd out those it can.
            let mut exposure = exposure_of(c, node, stake)?;
            // A cluster's shards first, at the price the member locked, with
            // no preference window: the renter paid for the slot.
            let mut chosen = choose_reserved(c, &me, &mut exposure, &reserved, max)?;
            let free = free.min(max.saturating_sub(chosen.len() as u32));
            let candidates = if free > 0 {
                candidates(c, &me, exposure.free(), free)?
            } else {
                Vec::new()
            };
            let online = online.as_deref().map(Vec::as_slice);
            chosen.extend(choose(
                c,
                &me,
                &mut exposure,
                &candidates,
                free,
                held,
                online,
                window,
                now_ms,
            )?);
            let mut jobs = JobCache::new();
            let mut leases = Vec::with_capacity(chosen.len());
            for shard in chosen {
                if let Some(lease) = grant(c, &mut jobs, &me, &shard, expires, cap, now_ms)? {
                    leases.push(lease);
                }
            }
            Ok(leases)
        })
    }

    fn lease(&self, id: &Hash32) -> Result<Option<LeaseInfo>, Error> {
        self.b.read(&mut |c| {
            let Some(l) = c.query_opt(
                "SELECT l.job_id, l.idx, l.provider, l.price, l.state, s.shard_job_id, s.lease_expires_at \
                 FROM leases l JOIN shards s ON s.job_id = l.job_id AND s.idx = l.idx WHERE l.id = $1",
                &[id.into()],
            )?
            else {
                return Ok(None);
            };
            let (lease, inputs_root) = lease_from(
                c,
                &mut JobCache::new(),
                LeaseSlot {
                    job: l.hash(0)?,
                    idx: l.u32(1)?,
                    lease_id: *id,
                    shard_job_id: l.hash(5)?,
                    expires_at_ms: l.opt_i64(6)?.unwrap_or(0).max(0) as u64,
                    price: l.u64(3)?,
                },
            )?;
            Ok(Some(LeaseInfo {
                lease,
                provider: l.node(2)?,
                state: LeaseState::parse(l.text(4)?)?,
                inputs_root,
            }))
        })
    }

    fn give_back(
        &self,
        node: &NodeId,
        lease: &Hash32,
        back: GiveBack<'_>,
        now_ms: u64,
    ) -> Result<u64, Error> {
        let cfg = &self.cfg;
        self.b.write(&mut |c| {
            let Some(l) = c.query_opt(
                &format!(
                    "SELECT job_id, idx, provider, state FROM leases WHERE id = $1{}",
                    c.dialect().for_update()
                ),
                &[lease.into()],
            )?
            else {
                return Err(Error::NotFound(format!("no lease {lease}")));
            };
            require_holder(lease, &l.node(2)?, node)?;
            // Done (a receipt was recorded), expired or returned already: a
            // give-back after a refused receipt or a lost reply changes nothing.
            if LeaseState::parse(l.text(3)?)? != LeaseState::Active {
                return Ok(0);
            }
            let (job, idx) = (l.hash(0)?, l.i64(1)?);
            // Before the re-queue: a shard that now fails refunds what the
            // fee left of its escrow.
            let fee = if back.watchdog {
                pay_watchdog_fee(c, cfg, lease, &job, idx, node, now_ms)?
            } else {
                0
            };
            requeue(c, &job, idx, lease, cfg.max_attempts, now_ms)?;
            end_lease(c, lease, LeaseState::Returned, Some(back.reason), now_ms)?;
            if back.watchdog {
                c.exec(
                    "UPDATE leases SET watchdog = 1 WHERE id = $1",
                    &[lease.into()],
                )?;
            }
            if charged_on_return(back.fault, back.watchdog) {
                c.exec(
                    "UPDATE providers SET faults = faults + 1 WHERE id = $1",
                    &[node.into()],
                )?;
            }
            Ok(fee)
        })
    }

    fn end_unheld(
        &self,
        node: &NodeId,
        held: &[Hash32],
        now_ms: u64,
    ) -> Result<Vec<Hash32>, Error> {
        let held: BTreeSet<Hash32> = held.iter().copied().collect();
        let (grace, max_attempts) = (self.cfg.lease_report_grace_ms, self.cfg.max_attempts);
        self.b.write(&mut |c| {
            let open = c.query(
                &format!(
                    "SELECT id, job_id, idx, granted_at FROM leases \
                     WHERE provider = $1 AND ended_at IS NULL{}",
                    c.dialect().for_update()
                ),
                &[node.into()],
            )?;
            let mut ended = Vec::new();
            for l in &open {
                let lease = l.hash(0)?;
                if held.contains(&lease) || !ends_unreported(l.u64(3)?, now_ms, grace) {
                    continue;
                }
                requeue(c, &l.hash(1)?, l.i64(2)?, &lease, max_attempts, now_ms)?;
                end_lease(c, &lease, LeaseState::Returned, Some(NOT_HELD), now_ms)?;
                tracing::info!(lease = %lease.short(), provider = %node, "lease not held by its provider: shard re-queued");
                ended.push(lease);
            }
            Ok(ended)
        })
    }

    fn expire_leases(&self, now_ms: u64) -> Result<u64, Error> {
        let max_attempts = self.cfg.max_attempts;
        self.b.write(&mut |c| {
            let rows = c.query(
                &format!(
                    "SELECT s.job_id, s.idx, s.lease_id, s.provider, l.cap_at FROM shards s \
                     JOIN leases l ON l.id = s.lease_id \
                     WHERE s.state = 'leased' AND s.lease_expires_at <= $1 LIMIT 1000{}",
                    c.dialect().skip_locked("s")
                ),
                &[int(now_ms)?],
            )?;
            let mut n = 0;
            for r in &rows {
                let lease = r.hash(2)?;
                if requeue(c, &r.hash(0)?, r.i64(1)?, &lease, max_attempts, now_ms)? {
                    // Renewals stop at the cap, so a lease past it ends there.
                    let capped = r.opt_i64(4)?.is_some_and(|cap| cap <= int_ms(now_ms));
                    let reason = capped.then_some(CAPPED);
                    end_lease(c, &lease, LeaseState::Expired, reason, now_ms)?;
                    c.exec(
                        "UPDATE providers SET expired = expired + 1 WHERE id = $1",
                        &[r.blob(3)?.into()],
                    )?;
                    tracing::info!(lease = %lease.short(), "lease expired: shard re-queued");
                    n += 1;
                }
            }
            Ok(n)
        })
    }
}

/// Why a lease that reached its hard end ended.
const CAPPED: &str = "reached its hard end (lease cap × the job's watchdog after it was granted)";

/// A time as stored.
fn int_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The polling provider, registered and not suspended.
fn admit_provider(c: &mut dyn Conn, node: &NodeId, now_ms: u64) -> Result<ProviderView, Error> {
    let Some(row) = c.query_opt(
        &format!("SELECT {PROVIDER_COLS} FROM providers WHERE id = $1"),
        &[node.into()],
    )?
    else {
        return Err(Error::NotFound(format!(
            "provider {node} is not registered: call Register first"
        )));
    };
    let me = provider_view(&row, now_ms, u64::MAX)?;
    if me.suspended {
        return Err(Error::PermissionDenied(format!(
            "provider {node} was caught returning a wrong result and is suspended from the market"
        )));
    }
    Ok(me)
}

/// The jobs of the shards a provider holds (one entry per shard).
fn held_jobs(c: &mut dyn Conn, node: &NodeId) -> Result<Vec<Hash32>, Error> {
    c.query(
        "SELECT job_id FROM shards WHERE provider = $1 AND state = 'leased'",
        &[node.into()],
    )?
    .iter()
    .map(|r| r.hash(0))
    .collect()
}

/// Queued shards the provider's hardware, price and free stake fit, that
/// it never gave back, in queue order (priority, then job, then shard), a
/// few more than it can take. (A challenge addressed to it is offered
/// again: it has its own deadline.)
fn candidates(
    c: &mut dyn Conn,
    me: &ProviderView,
    free_stake: u64,
    free: u32,
) -> Result<Vec<Row>, Error> {
    c.query(
        &format!(
            "SELECT s.job_id, s.idx, s.shard_job_id, s.queued_at, s.max_price, s.memory_bytes, \
             s.gpu_memory_bytes, s.require_gpu, s.min_stake FROM shards s \
             WHERE s.state = 'queued' AND s.cluster_id IS NULL AND s.memory_bytes <= $2 \
             AND s.gpu_memory_bytes <= $3 AND s.require_gpu <= $4 AND s.min_stake <= $5 \
             AND ((s.only_provider IS NULL AND s.max_price >= $1) OR s.only_provider = $6) \
             AND (s.only_provider = $6 OR NOT EXISTS (SELECT 1 FROM leases l \
               WHERE l.provider = $6 AND l.job_id = s.job_id AND l.idx = s.idx AND l.state = 'returned')) \
             ORDER BY s.priority DESC, s.job_seq, s.idx LIMIT {}{}",
            u64::from(free) * 4 + 16,
            c.dialect().skip_locked("s")
        ),
        &[
            int(me.price)?,
            int(me.memory_bytes)?,
            int(me.device_memory())?,
            Value::Int(i64::from(me.gpu_count > 0 && me.hardware_ok)),
            int(free_stake)?,
            (&me.id).into(),
        ],
    )
}

/// A queued shard chosen for a lease.
struct Chosen {
    job: Hash32,
    idx: u32,
    shard_job_id: Hash32,
    /// The stake its lease bonds (`shards.min_stake`).
    bond: u64,
    /// What the lease pays per million work units: the provider's price,
    /// or the work price it locked when it joined the shard's cluster.
    price: u64,
}

/// Picks, for each of the provider's reserved slots that holds no shard
/// of its cluster, the first queued shard of that cluster its hardware
/// fits, whose max price covers the member's locked work price, that it
/// never gave back and whose bond its free stake covers.
fn choose_reserved(
    c: &mut dyn Conn,
    me: &ProviderView,
    exposure: &mut Exposure,
    reserved: &[(Hash32, u64, u32)],
    max: u32,
) -> Result<Vec<Chosen>, Error> {
    let mut chosen = Vec::new();
    for (cluster, work_price, held) in reserved {
        if *held > 0 || chosen.len() as u32 >= max {
            continue;
        }
        let rows = c.query(
            &format!(
                "SELECT s.job_id, s.idx, s.shard_job_id, s.min_stake FROM shards s \
                 WHERE s.state = 'queued' AND s.cluster_id IN ($1) AND s.memory_bytes <= $2 \
                 AND s.gpu_memory_bytes <= $3 AND s.require_gpu <= $4 AND s.max_price >= $5 \
                 AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.provider = $6 AND l.job_id = s.job_id \
                   AND l.idx = s.idx AND l.state = 'returned') \
                 ORDER BY s.priority DESC, s.job_seq, s.idx LIMIT 8{}",
                c.dialect().skip_locked("s")
            ),
            &[
                cluster.into(),
                int(me.memory_bytes)?,
                int(me.device_memory())?,
                Value::Int(i64::from(me.gpu_count > 0 && me.hardware_ok)),
                int(*work_price)?,
                (&me.id).into(),
            ],
        )?;
        for r in &rows {
            let bond = r.u64(3)?;
            if !exposure.can_bond(bond) {
                continue;
            }
            exposure.bond_lease(bond);
            chosen.push(Chosen {
                job: r.hash(0)?,
                idx: r.u32(1)?,
                shard_job_id: r.hash(2)?,
                bond,
                price: *work_price,
            });
            break;
        }
    }
    Ok(chosen)
}

/// Picks up to `free` of the candidates while the free stake covers their
/// bonds: a shard still inside its preference window goes to this provider
/// only if it holds no shard of that job and no better-ranked provider
/// should have it first.
#[allow(clippy::too_many_arguments)]
fn choose(
    c: &mut dyn Conn,
    me: &ProviderView,
    exposure: &mut Exposure,
    candidates: &[Row],
    free: u32,
    held: Vec<Hash32>,
    online: Option<&[Offer]>,
    window_ms: u64,
    now_ms: u64,
) -> Result<Vec<Chosen>, Error> {
    let mut held: BTreeSet<Hash32> = held.into_iter().collect();
    let mut chosen = Vec::new();
    for r in candidates {
        if chosen.len() as u32 >= free {
            break;
        }
        let bond = r.u64(8)?;
        if !exposure.can_bond(bond) {
            continue;
        }
        let job = r.hash(0)?;
        let fresh = now_ms.saturating_sub(r.u64(3)?) < window_ms && r.u64(4)? > 0;
        if fresh {
            // One shard of a job per provider while others could take the rest.
            if held.contains(&job) {
                continue;
            }
            let need = Need {
                max_price: r.u64(4)?,
                memory_bytes: r.u64(5)?,
                gpu_memory_bytes: r.u64(6)?,
                require_gpu: r.i64(7)? != 0,
                min_stake: bond,
            };
            if let Some(online) = online
                && defer_to_better(me, &need, online, || job_holders(c, &job))?
            {
                continue;
            }
        }
        held.insert(job);
        exposure.bond_lease(bond);
        chosen.push(Chosen {
            job,
            idx: r.u32(1)?,
            shard_job_id: r.hash(2)?,
            bond,
            price: me.price,
        });
    }
    Ok(chosen)
}

/// The providers holding leases on a job's shards.
fn job_holders(c: &mut dyn Conn, job: &Hash32) -> Result<BTreeSet<NodeId>, Error> {
    Ok(c.query(
        "SELECT provider FROM shards WHERE job_id = $1 AND state = 'leased'",
        &[job.into()],
    )?
    .iter()
    .filter_map(|r| r.opt_node(0).ok().flatten())
    .collect())
}

/// Leases one queued shard to `me`, bonding its stake and setting its hard
/// end (`cap`: [`crate::config::MarketConfig::lease_cap_factor`] and the lease time);
/// `None` if another replica leased it first.
fn grant(
    c: &mut dyn Conn,
    jobs: &mut JobCache,
    me: &ProviderView,
    shard: &Chosen,
    expires: u64,
    (cap_factor, ttl_ms): (u64, u64),
    now_ms: u64,
) -> Result<Option<Lease>, Error> {
    let Chosen {
        job,
        idx,
        shard_job_id,
        bond,
        price,
    } = *shard;
    let lease_id = random_id()?;
    let n = c.exec(
        "UPDATE shards SET state = 'leased', lease_id = $3, provider = $4, lease_price = $5, \
         lease_expires_at = $6, attempts = attempts + 1 \
         WHERE job_id = $1 AND idx = $2 AND state = 'queued'",
        &[
            (&job).into(),
            Value::Int(i64::from(idx)),
            (&lease_id).into(),
            (&me.id).into(),
            int(price)?,
            int(expires)?,
        ],
    )?;
    if n != 1 {
        return Ok(None);
    }
    let (lease, _) = lease_from(
        c,
        jobs,
        LeaseSlot {
            job,
            idx,
            lease_id,
            shard_job_id,
            expires_at_ms: expires,
            price,
        },
    )?;
    let cap_at = lease_cap(now_ms, cap_factor, lease.spec.wall_clock_ms, ttl_ms);
    c.exec(
        "INSERT INTO leases (id, job_id, idx, provider, price, granted_at, state, bond, cap_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            (&lease_id).into(),
            (&job).into(),
            Value::Int(i64::from(idx)),
            (&me.id).into(),
            int(price)?,
            int(now_ms)?,
            LeaseState::Active.as_str().into(),
            int(bond)?,
            Value::Int(int_ms(cap_at)),
        ],
    )?;
    Ok(Some(lease))
}

/// Marks a lease ended (`reason`: why it was given back).
fn end_lease(
    c: &mut dyn Conn,
    lease: &Hash32,
    state: LeaseState,
    reason: Option<&str>,
    now_ms: u64,
) -> Result<(), Error> {
    match reason {
        Some(reason) => c.exec(
            "UPDATE leases SET state = $3, ended_at = $2, reason = $4 WHERE id = $1",
            &[
                lease.into(),
                int(now_ms)?,
                state.as_str().into(),
                reason.into(),
            ],
        )?,
        None => c.exec(
            "UPDATE leases SET state = $3, ended_at = $2 WHERE id = $1",
            &[lease.into(), int(now_ms)?, state.as_str().into()],
        )?,
    };
    Ok(())
}

/// Re-queues one leased shard (after expiry or return) with its escrow
/// intact — or, after `max_attempts` leases without a receipt, fails it and
/// refunds what is left of its escrow to the renter. Returns whether the
/// shard was still on this lease.
fn requeue(
    c: &mut dyn Conn,
    job: &Hash32,
    idx: i64,
    lease: &Hash32,
    max_attempts: u32,
    now_ms: u64,
) -> Result<bool, Error> {
    let Some(row) = c.query_opt(
        "SELECT s.attempts, j.renter FROM shards s JOIN jobs j ON j.id = s.job_id \
         WHERE s.job_id = $1 AND s.idx = $2 AND s.lease_id = $3 AND s.state = 'leased'",
        &[job.into(), Value::Int(idx), lease.into()],
    )?
    else {
        return Ok(false);
    };
    let state = shard_after_lost_lease(row.u64(0)?, max_attempts);
    let n = c.exec(
        "UPDATE shards SET state = $5, queued_at = $4, lease_id = NULL, provider = NULL, \
         lease_price = NULL, lease_expires_at = NULL \
         WHERE job_id = $1 AND idx = $2 AND lease_id = $3 AND state = 'leased'",
        &[
            job.into(),
            Value::Int(idx),
            lease.into(),
            int(now_ms)?,
            state.as_str().into(),
        ],
    )?;
    if n == 1 && state == ShardState::Failed {
        let left = escrow_left(c, job, idx)?;
        refund_shard(c, job, idx, &row.node(1)?, left, now_ms)?;
        tracing::warn!(job = %job.short(), shard = idx, attempts = max_attempts, "shard failed: escrow refunded");
    }
    Ok(n == 1)
}
