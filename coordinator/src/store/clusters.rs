//! Reserved clusters: a renter's hold on one slot of each of N providers
//! for a period. Creating one picks its members ([`rules::choose`]) and
//! escrows Σ reserve price × hours into `iosd/cluster:<id>`; the tick
//! ([`Clusters::run_clusters`]) pays members what they accrued (at most
//! every [`rules::ACCRUE_EVERY_MS`], through the device's bonds and note
//! like any pay, less the protocol fee), replaces a member that went
//! offline by one no dearer (or refunds its unused time) and expires
//! clusters whose time ran out; releasing one pays members to the moment
//! and refunds the rest. A cluster's queued shards fail (and are
//! refunded) when it ends. Matching of cluster shards lives with the rest
//! of matching, in `leases.rs`.
//!
//! References: `cluster/<id>/escrow`, `cluster/<id>/extend/<new end>`,
//! `cluster/<id>/<provider>/{pay,fee}/<paid after>` and
//! `cluster/<id>/<provider>/refund` — each member's pay counter only grows
//! and a member leaves once, so every entry is posted once.

use std::collections::BTreeSet;

use assay_protocol::{Hash32, NodeId};

use super::ledger::{Movement, balance_of, escrow_left, post, refund_shard};
use super::rows::{random_id, unjson};
use super::sql::{Backend, Conn, Row, Value, int};
use super::sql_store::SqlStore;
use crate::Error;
use crate::config::MarketConfig;
use crate::ledger::{self as accounts, Unit};
use crate::rules::clusters::{self as rules, Candidate, HOUR_MS, MAX_TOTAL_HOURS, Member, Wanted};
use crate::rules::matching::reliability_permille;
use crate::state::{ClusterState, MemberState, ShardState};
use crate::types::{ClusterMember, ClusterReport, ClusterView, NewJob, Submitted};

/// Whose clusters to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The clusters a renter created.
    Renter(NodeId),
    /// The clusters a provider is or was a member of.
    Provider(NodeId),
}

/// Reserved clusters.
pub trait Clusters {
    /// Reserves `wanted.gpus` providers for `hours` from `now_ms`, escrowing
    /// Σ reserve price × hours from the renter's IOSD balance.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] past the limits ([`rules::validate`]);
    /// [`Error::Precondition`] when fewer providers fit (saying why) or the
    /// balance does not cover the escrow.
    fn create_cluster(
        &self,
        renter: &NodeId,
        wanted: &Wanted,
        hours: u32,
        now_ms: u64,
    ) -> Result<ClusterView, Error>;
    /// Extends an active cluster by `hours`, escrowing its members' reserve
    /// prices × hours more.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::PermissionDenied`] (not its renter),
    /// [`Error::Precondition`] (ended; balance), [`Error::Invalid`].
    fn extend_cluster(
        &self,
        renter: &NodeId,
        id: &Hash32,
        hours: u32,
        now_ms: u64,
    ) -> Result<ClusterView, Error>;
    /// Ends an active cluster now: members paid to now, the rest refunded,
    /// its queued shards failed and refunded.
    ///
    /// # Errors
    ///
    /// As [`Clusters::extend_cluster`].
    fn release_cluster(
        &self,
        renter: &NodeId,
        id: &Hash32,
        now_ms: u64,
    ) -> Result<ClusterView, Error>;
    /// A cluster with its members.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn cluster(&self, id: &Hash32) -> Result<Option<ClusterView>, Error>;
    /// A renter's clusters or a provider's memberships, newest first.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn clusters_of(
        &self,
        party: Party,
        active_only: bool,
        limit: u32,
    ) -> Result<Vec<ClusterView>, Error>;
    /// The active clusters `provider` holds a slot for.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn memberships(&self, provider: &NodeId) -> Result<Vec<Hash32>, Error>;
    /// Sets a registered provider's reserve price (µIOSD per slot-hour;
    /// 0: [`rules::DEFAULT_RESERVE_PRICE`]). Members keep the price they
    /// joined at.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn set_reserve_price(&self, provider: &NodeId, price: u64) -> Result<(), Error>;
    /// Accepts a job that runs only on `cluster`'s members (see
    /// [`crate::store::Jobs::submit_job`] for the escrow).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (no such cluster), [`Error::PermissionDenied`]
    /// (another renter's), [`Error::Precondition`] (ended, or no member
    /// works for the job's max price), and those of a job.
    fn submit_cluster_job(
        &self,
        job: &NewJob,
        cluster: &Hash32,
        now_ms: u64,
    ) -> Result<Submitted, Error>;
    /// The tick's pass: expires clusters whose time ran out, replaces (or
    /// refunds) members that went offline or were suspended, pays members
    /// what they accrued.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn run_clusters(&self, now_ms: u64) -> Result<ClusterReport, Error>;
}

impl<B: Backend> Clusters for SqlStore<B> {
    fn create_cluster(
        &self,
        renter: &NodeId,
        wanted: &Wanted,
        hours: u32,
        now_ms: u64,
    ) -> Result<ClusterView, Error> {
        rules::validate(wanted, hours)?;
        let id = random_id()?;
        let liveness = self.cfg.provider_liveness_ms;
        let ends = now_ms.saturating_add(u64::from(hours) * HOUR_MS);
        self.b.write(&mut |c| {
            let candidates = candidates(c, liveness, now_ms)?;
            let chosen = rules::choose(
                &candidates,
                wanted,
                wanted.max_price,
                &BTreeSet::new(),
                wanted.gpus as usize,
            );
            if chosen.len() < wanted.gpus as usize {
                return Err(Error::Precondition(rules::why_short(&candidates, wanted)));
            }
            for m in &chosen {
                lock_free_slot(c, &m.id)?;
            }
            let prices: Vec<u64> = chosen.iter().map(|m| m.reserve_price).collect();
            let escrow = rules::escrow(&prices, hours)
                .ok_or_else(|| Error::Invalid("the cluster's escrow overflows".into()))?;
            let balance = accounts::balance(Unit::Iosd, renter);
            let have = balance_of(c, &balance)?;
            if have < escrow as i64 {
                return Err(Error::Precondition(format!(
                    "your balance of {have} µIOSD does not cover the cluster's escrow of {escrow} µIOSD \
                     (reserve prices {prices:?} µIOSD/slot-hour × {hours} h): get IOSD (`assay faucet` \
                     on a devnet), or reserve fewer hours or GPUs"
                )));
            }
            post(
                c,
                Movement {
                    kind: "escrow",
                    debit: &balance,
                    credit: &accounts::cluster_escrow(&id),
                    amount: escrow,
                    reference: &format!("cluster/{id}/escrow"),
                },
                now_ms,
            )?;
            c.exec(
                "INSERT INTO clusters (id, renter, state, gpus, gpu_class, min_reliability, max_price, \
                 starts_at, ends_at, escrowed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    (&id).into(),
                    renter.into(),
                    ClusterState::Active.as_str().into(),
                    int(u64::from(wanted.gpus))?,
                    wanted.gpu_class.as_str().into(),
                    int(u64::from(wanted.min_reliability_permille))?,
                    int(wanted.max_price)?,
                    int(now_ms)?,
                    int(ends)?,
                    int(escrow)?,
                ],
            )?;
            for m in &chosen {
                let member = Member::join(m.reserve_price, now_ms, ends);
                insert_member(c, &id, m, &member)?;
            }
            read_cluster(c, &id)?.ok_or_else(|| Error::Corrupt(format!("cluster {id} vanished")))
        })
    }

    fn extend_cluster(
        &self,
        renter: &NodeId,
        id: &Hash32,
        hours: u32,
        now_ms: u64,
    ) -> Result<ClusterView, Error> {
        rules::validate_hours(hours)?;
        self.b.write(&mut |c| {
            let row = renters_active_cluster(c, renter, id, now_ms)?;
            let (starts, ends) = (row.u64(0)?, row.u64(1)?);
            let new_ends = ends.saturating_add(u64::from(hours) * HOUR_MS);
            if new_ends.saturating_sub(starts) > MAX_TOTAL_HOURS * HOUR_MS {
                return Err(Error::Invalid(format!(
                    "a cluster runs at most {MAX_TOTAL_HOURS} hours in all: create another"
                )));
            }
            let members = active_members(c, id)?;
            let mut more = 0u64;
            for (provider, mut m) in members {
                let add = m
                    .extend(hours)
                    .ok_or_else(|| Error::Invalid("the extension's escrow overflows".into()))?;
                more = more
                    .checked_add(add)
                    .ok_or_else(|| Error::Invalid("the extension's escrow overflows".into()))?;
                c.exec(
                    "UPDATE cluster_members SET budget = $3 WHERE cluster_id = $1 AND provider = $2",
                    &[id.into(), (&provider).into(), int(m.budget)?],
                )?;
            }
            let balance = accounts::balance(Unit::Iosd, renter);
            let have = balance_of(c, &balance)?;
            if have < more as i64 {
                return Err(Error::Precondition(format!(
                    "your balance of {have} µIOSD does not cover the extension's escrow of {more} µIOSD"
                )));
            }
            post(
                c,
                Movement {
                    kind: "escrow",
                    debit: &balance,
                    credit: &accounts::cluster_escrow(id),
                    amount: more,
                    reference: &format!("cluster/{id}/extend/{new_ends}"),
                },
                now_ms,
            )?;
            c.exec(
                "UPDATE clusters SET ends_at = $2, escrowed = escrowed + $3 WHERE id = $1",
                &[id.into(), int(new_ends)?, int(more)?],
            )?;
            read_cluster(c, id)?.ok_or_else(|| Error::Corrupt(format!("cluster {id} vanished")))
        })
    }

    fn release_cluster(
        &self,
        renter: &NodeId,
        id: &Hash32,
        now_ms: u64,
    ) -> Result<ClusterView, Error> {
        let cfg = &self.cfg;
        self.b.write(&mut |c| {
            renters_active_cluster(c, renter, id, now_ms)?;
            end_cluster(c, cfg, id, ClusterState::Released, now_ms, now_ms)?;
            read_cluster(c, id)?.ok_or_else(|| Error::Corrupt(format!("cluster {id} vanished")))
        })
    }

    fn cluster(&self, id: &Hash32) -> Result<Option<ClusterView>, Error> {
        self.b.read(&mut |c| read_cluster(c, id))
    }

    fn clusters_of(
        &self,
        party: Party,
        active_only: bool,
        limit: u32,
    ) -> Result<Vec<ClusterView>, Error> {
        let limit = i64::from(limit.clamp(1, 1000));
        let active = if active_only {
            " AND c.state = 'active'"
        } else {
            ""
        };
        self.b.read(&mut |c| {
            let rows = match party {
                Party::Renter(r) => c.query(
                    &format!(
                        "SELECT c.id FROM clusters c WHERE c.renter = $1{active} \
                         ORDER BY c.starts_at DESC, c.id LIMIT $2"
                    ),
                    &[(&r).into(), Value::Int(limit)],
                )?,
                Party::Provider(p) => c.query(
                    &format!(
                        "SELECT c.id FROM clusters c WHERE c.id IN \
                         (SELECT cluster_id FROM cluster_members WHERE provider = $1){active} \
                         ORDER BY c.starts_at DESC, c.id LIMIT $2"
                    ),
                    &[(&p).into(), Value::Int(limit)],
                )?,
            };
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                if let Some(v) = read_cluster(c, &r.hash(0)?)? {
                    out.push(v);
                }
            }
            Ok(out)
        })
    }

    fn memberships(&self, provider: &NodeId) -> Result<Vec<Hash32>, Error> {
        self.b.read(&mut |c| {
            c.query(
                "SELECT m.cluster_id FROM cluster_members m JOIN clusters c ON c.id = m.cluster_id \
                 WHERE m.provider = $1 AND m.state = 'active' AND c.state = 'active' ORDER BY m.cluster_id",
                &[provider.into()],
            )?
            .iter()
            .map(|r| r.hash(0))
            .collect()
        })
    }

    fn set_reserve_price(&self, provider: &NodeId, price: u64) -> Result<(), Error> {
        let price = if price == 0 {
            rules::DEFAULT_RESERVE_PRICE
        } else {
            price
        };
        self.b.write(&mut |c| {
            c.exec(
                "UPDATE providers SET reserve_price = $2 WHERE id = $1",
                &[provider.into(), int(price)?],
            )?;
            Ok(())
        })
    }

    fn submit_cluster_job(
        &self,
        job: &NewJob,
        cluster: &Hash32,
        now_ms: u64,
    ) -> Result<Submitted, Error> {
        self.accept_job(job, Some(cluster), now_ms)
    }

    fn run_clusters(&self, now_ms: u64) -> Result<ClusterReport, Error> {
        // Only clusters with something to do take a write transaction: one
        // that ended, a member due a payment, or a member gone silent or
        // suspended.
        let accrue_before = now_ms.saturating_sub(rules::ACCRUE_EVERY_MS);
        let seen_before = now_ms.saturating_sub(self.cfg.provider_liveness_ms);
        let ids: Vec<Hash32> = self.b.read(&mut |c| {
            c.query(
                "SELECT id FROM clusters WHERE state = 'active' AND ends_at <= $1 \
                 UNION SELECT m.cluster_id FROM cluster_members m \
                 JOIN clusters k ON k.id = m.cluster_id JOIN providers p ON p.id = m.provider \
                 WHERE m.state = 'active' AND k.state = 'active' \
                 AND (m.accrued_at <= $2 OR p.last_seen < $3 OR p.suspended <> 0)",
                &[int(now_ms)?, int(accrue_before)?, int(seen_before)?],
            )?
            .iter()
            .map(|r| r.hash(0))
            .collect()
        })?;
        let mut report = ClusterReport::default();
        for id in ids {
            let r = self
                .b
                .write(&mut |c| run_cluster(c, &self.cfg, &id, now_ms))?;
            report.paid += r.paid;
            report.dropped += r.dropped;
            report.replaced += r.replaced;
            report.expired += r.expired;
        }
        Ok(report)
    }
}

/// Checks inside a job's submit transaction that `renter` may run a job at
/// `max_price` on `cluster` now.
pub(super) fn admit_job(
    c: &mut dyn Conn,
    cluster: &Hash32,
    job: &NewJob,
    now_ms: u64,
) -> Result<(), Error> {
    let Some(row) = c.query_opt(
        "SELECT renter, state, ends_at FROM clusters WHERE id = $1",
        &[cluster.into()],
    )?
    else {
        return Err(Error::NotFound(format!(
            "no cluster {cluster}: see `assay cluster list`"
        )));
    };
    if row.node(0)? != job.renter {
        return Err(Error::PermissionDenied(format!(
            "cluster {cluster} is another renter's: only its renter may run jobs on it"
        )));
    }
    let state = ClusterState::parse(row.text(1)?)?;
    if state != ClusterState::Active || row.u64(2)? <= now_ms {
        return Err(Error::Precondition(format!(
            "cluster {cluster} has ended ({state}): create a new one (`assay cluster create`)"
        )));
    }
    let prices: Vec<u64> = c
        .query(
            "SELECT work_price FROM cluster_members WHERE cluster_id = $1 AND state = 'active' \
             ORDER BY work_price",
            &[cluster.into()],
        )?
        .iter()
        .map(|r| r.u64(0))
        .collect::<Result<_, Error>>()?;
    match prices.first() {
        None => Err(Error::Precondition(format!(
            "cluster {cluster} has no member now (they went offline and none could replace them)"
        ))),
        Some(cheapest) if *cheapest > job.max_price => Err(Error::Precondition(format!(
            "no member of cluster {cluster} works for --max-price {} µIOSD/Munit: its members ask {prices:?} \
             (publish with --max-price {cheapest} or more)",
            job.max_price
        ))),
        Some(_) => Ok(()),
    }
}

/// Every registered provider as a cluster weighs it.
fn candidates(c: &mut dyn Conn, liveness_ms: u64, now_ms: u64) -> Result<Vec<Candidate>, Error> {
    let rows = c.query(
        "SELECT p.id, p.last_seen, p.suspended, p.stake, p.stake_floor, p.hardware, p.completed, \
         p.faults, p.expired, p.reserve_price, p.slots, \
         (SELECT COUNT(*) FROM cluster_members m JOIN clusters k ON k.id = m.cluster_id \
          WHERE m.provider = p.id AND m.state = 'active' AND k.state = 'active') \
         FROM providers p ORDER BY p.id",
        &[],
    )?;
    rows.iter()
        .map(|r| candidate(r, liveness_ms, now_ms))
        .collect()
}

fn candidate(r: &Row, liveness_ms: u64, now_ms: u64) -> Result<Candidate, Error> {
    let gpus: Vec<(String, u64)> = unjson(r.text(5)?, "provider hardware")?;
    Ok(Candidate {
        id: r.node(0)?,
        online: r.u64(1)?.saturating_add(liveness_ms) >= now_ms,
        hireable: r.i64(2)? == 0 && r.u64(3)? >= r.u64(4)?,
        gpu_names: gpus.into_iter().map(|(name, _)| name).collect(),
        reliability_permille: reliability_permille(r.u64(6)?, r.u64(7)?, r.u64(8)?),
        reserve_price: r.u64(9)?,
        unreserved_slots: r.u32(10)?.saturating_sub(r.u32(11)?),
    })
}

/// Locks a chosen provider's row and checks it still has an unreserved
/// slot (another replica may have reserved it since it was read).
fn lock_free_slot(c: &mut dyn Conn, provider: &NodeId) -> Result<(), Error> {
    let slots = c
        .query_one(
            &format!(
                "SELECT slots FROM providers WHERE id = $1{}",
                c.dialect().for_update()
            ),
            &[provider.into()],
        )?
        .u64(0)?;
    let reserved = c
        .query_one(
            "SELECT COUNT(*) FROM cluster_members m JOIN clusters k ON k.id = m.cluster_id \
             WHERE m.provider = $1 AND m.state = 'active' AND k.state = 'active'",
            &[provider.into()],
        )?
        .u64(0)?;
    if reserved >= slots {
        return Err(Error::Precondition(format!(
            "provider {provider}'s last free slot was just reserved by another cluster: try again"
        )));
    }
    Ok(())
}

fn insert_member(
    c: &mut dyn Conn,
    cluster: &Hash32,
    p: &Candidate,
    m: &Member,
) -> Result<(), Error> {
    let work_price = c
        .query_one(
            "SELECT price FROM providers WHERE id = $1",
            &[(&p.id).into()],
        )?
        .u64(0)?;
    c.exec(
        "INSERT INTO cluster_members (cluster_id, provider, reserve_price, work_price, joined_at, \
         state, budget, paid, accrued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $5)",
        &[
            cluster.into(),
            (&p.id).into(),
            int(m.price)?,
            int(work_price)?,
            int(m.joined_ms)?,
            MemberState::Active.as_str().into(),
            int(m.budget)?,
        ],
    )?;
    Ok(())
}

/// The cluster's (starts_at, ends_at), locked, when `renter` may change it.
fn renters_active_cluster(
    c: &mut dyn Conn,
    renter: &NodeId,
    id: &Hash32,
    now_ms: u64,
) -> Result<Row, Error> {
    let Some(row) = c.query_opt(
        &format!(
            "SELECT starts_at, ends_at, renter, state FROM clusters WHERE id = $1{}",
            c.dialect().for_update()
        ),
        &[id.into()],
    )?
    else {
        return Err(Error::NotFound(format!("no cluster {id}")));
    };
    if row.node(2)? != *renter {
        return Err(Error::PermissionDenied(format!(
            "cluster {id} is another renter's: only its renter may change it"
        )));
    }
    let state = ClusterState::parse(row.text(3)?)?;
    if state != ClusterState::Active || row.u64(1)? <= now_ms {
        return Err(Error::Precondition(format!(
            "cluster {id} has ended ({state})"
        )));
    }
    Ok(row)
}

/// The active members of a cluster with their money.
fn active_members(c: &mut dyn Conn, id: &Hash32) -> Result<Vec<(NodeId, Member)>, Error> {
    c.query(
        "SELECT provider, reserve_price, joined_at, budget, paid FROM cluster_members \
         WHERE cluster_id = $1 AND state = 'active' ORDER BY joined_at, provider",
        &[id.into()],
    )?
    .iter()
    .map(|r| {
        Ok((
            r.node(0)?,
            Member {
                price: r.u64(1)?,
                joined_ms: r.u64(2)?,
                budget: r.u64(3)?,
                paid: r.u64(4)?,
            },
        ))
    })
    .collect()
}

/// Pays `amount` of a member's accrual out of the cluster's escrow: the
/// protocol fee to `iosd/fees`, the rest through the device's bonds and
/// note to its earnings. `paid_after` (its pay counter after this) makes
/// the references unique.
fn pay_member(
    c: &mut dyn Conn,
    cfg: &MarketConfig,
    cluster: &Hash32,
    provider: &NodeId,
    amount: u64,
    paid_after: u64,
    now_ms: u64,
) -> Result<(), Error> {
    if amount == 0 {
        return Ok(());
    }
    let from = accounts::cluster_escrow(cluster);
    let fee = crate::rules::money::protocol_fee(amount, cfg.fee_bps);
    super::claims::pay_device(
        c,
        "pay",
        &from,
        provider,
        Unit::Iosd,
        amount - fee,
        &accounts::earnings(provider),
        &format!("cluster/{cluster}/{provider}/pay/{paid_after}"),
        now_ms,
    )?;
    post(
        c,
        Movement {
            kind: "fee",
            debit: &from,
            credit: accounts::FEES,
            amount: fee,
            reference: &format!("cluster/{cluster}/{provider}/fee/{paid_after}"),
        },
        now_ms,
    )?;
    c.exec(
        "UPDATE cluster_members SET paid = $3, accrued_at = $4 WHERE cluster_id = $1 AND provider = $2",
        &[
            cluster.into(),
            provider.into(),
            int(paid_after)?,
            int(now_ms)?,
        ],
    )?;
    c.exec(
        "UPDATE clusters SET paid = paid + $2 WHERE id = $1",
        &[cluster.into(), int(amount)?],
    )?;
    Ok(())
}

/// Gives `amount` of the cluster's escrow back to its renter.
fn refund(
    c: &mut dyn Conn,
    cluster: &Hash32,
    renter: &NodeId,
    amount: u64,
    reference: &str,
    now_ms: u64,
) -> Result<(), Error> {
    post(
        c,
        Movement {
            kind: "refund",
            debit: &accounts::cluster_escrow(cluster),
            credit: &accounts::balance(Unit::Iosd, renter),
            amount,
            reference,
        },
        now_ms,
    )?;
    c.exec(
        "UPDATE clusters SET refunded = refunded + $2 WHERE id = $1",
        &[cluster.into(), int(amount)?],
    )?;
    Ok(())
}

/// Ends a member's membership at `at_ms`: its last pay, and its row marked
/// left. Returns what its budget released.
#[allow(clippy::too_many_arguments)]
fn leave(
    c: &mut dyn Conn,
    cfg: &MarketConfig,
    cluster: &Hash32,
    provider: &NodeId,
    m: &mut Member,
    at_ms: u64,
    ends_ms: u64,
    why: &str,
    now_ms: u64,
) -> Result<u64, Error> {
    let l = m.leave(at_ms, ends_ms);
    pay_member(c, cfg, cluster, provider, l.pay, m.paid, now_ms)?;
    c.exec(
        "UPDATE cluster_members SET state = $3, left_at = $4, why_left = $5 \
         WHERE cluster_id = $1 AND provider = $2",
        &[
            cluster.into(),
            provider.into(),
            MemberState::Left.as_str().into(),
            int(at_ms)?,
            why.into(),
        ],
    )?;
    Ok(l.released)
}

/// Ends a cluster (released now, or expired at its end `at_ms`): every
/// member paid to `at_ms`, the rest refunded, its queued shards failed and
/// refunded (leased ones run on and settle as usual).
fn end_cluster(
    c: &mut dyn Conn,
    cfg: &MarketConfig,
    id: &Hash32,
    state: ClusterState,
    at_ms: u64,
    now_ms: u64,
) -> Result<(), Error> {
    let row = c.query_one(
        "SELECT renter, ends_at FROM clusters WHERE id = $1",
        &[id.into()],
    )?;
    let (renter, ends) = (row.node(0)?, row.u64(1)?);
    let why = state.as_str();
    let mut released = 0u64;
    for (provider, mut m) in active_members(c, id)? {
        released += leave(c, cfg, id, &provider, &mut m, at_ms, ends, why, now_ms)?;
    }
    refund(
        c,
        id,
        &renter,
        released,
        &format!("cluster/{id}/{why}"),
        now_ms,
    )?;
    c.exec(
        "UPDATE clusters SET state = $2, ended_at = $3 WHERE id = $1",
        &[id.into(), state.as_str().into(), int(at_ms)?],
    )?;
    fail_queued_shards(c, id, now_ms)?;
    tracing::info!(cluster = %id.short(), state = why, refunded = released, "cluster ended");
    Ok(())
}

/// Fails the queued shards of an ended cluster and refunds their escrow.
fn fail_queued_shards(c: &mut dyn Conn, id: &Hash32, now_ms: u64) -> Result<(), Error> {
    let rows = c.query(
        "SELECT s.job_id, s.idx, j.renter FROM shards s JOIN jobs j ON j.id = s.job_id \
         WHERE s.cluster_id = $1 AND s.state = 'queued'",
        &[id.into()],
    )?;
    for r in &rows {
        let (job, idx) = (r.hash(0)?, r.i64(1)?);
        let n = c.exec(
            "UPDATE shards SET state = $3 WHERE job_id = $1 AND idx = $2 AND state = 'queued'",
            &[
                (&job).into(),
                Value::Int(idx),
                ShardState::Failed.as_str().into(),
            ],
        )?;
        if n == 1 {
            let left = escrow_left(c, &job, idx)?;
            refund_shard(c, &job, idx, &r.node(2)?, left, now_ms)?;
        }
    }
    Ok(())
}

/// One cluster's tick, in its own transaction: expiry, dropouts (with a
/// replacement when one fits), accrual.
fn run_cluster(
    c: &mut dyn Conn,
    cfg: &MarketConfig,
    id: &Hash32,
    now_ms: u64,
) -> Result<ClusterReport, Error> {
    let mut report = ClusterReport::default();
    let Some(row) = c.query_opt(
        &format!(
            "SELECT renter, ends_at, gpus, gpu_class, min_reliability, max_price FROM clusters \
             WHERE id = $1 AND state = 'active'{}",
            c.dialect().for_update()
        ),
        &[id.into()],
    )?
    else {
        return Ok(report);
    };
    let (renter, ends) = (row.node(0)?, row.u64(1)?);
    if ends <= now_ms {
        let before = c
            .query_one("SELECT paid FROM clusters WHERE id = $1", &[id.into()])?
            .u64(0)?;
        end_cluster(c, cfg, id, ClusterState::Expired, ends, now_ms)?;
        let after = c
            .query_one("SELECT paid FROM clusters WHERE id = $1", &[id.into()])?
            .u64(0)?;
        report.paid += after - before;
        report.expired += 1;
        return Ok(report);
    }
    let wanted = Wanted {
        gpus: row.u32(2)?,
        gpu_class: row.text(3)?.to_string(),
        min_reliability_permille: row.u32(4)?,
        max_price: row.u64(5)?,
    };
    let members = c.query(
        "SELECT m.provider, m.reserve_price, m.joined_at, m.budget, m.paid, m.accrued_at, \
         p.last_seen, p.suspended FROM cluster_members m JOIN providers p ON p.id = m.provider \
         WHERE m.cluster_id = $1 AND m.state = 'active' ORDER BY m.joined_at, m.provider",
        &[id.into()],
    )?;
    for r in &members {
        let provider = r.node(0)?;
        let mut m = Member {
            price: r.u64(1)?,
            joined_ms: r.u64(2)?,
            budget: r.u64(3)?,
            paid: r.u64(4)?,
        };
        let online = r.u64(6)?.saturating_add(cfg.provider_liveness_ms) >= now_ms;
        let suspended = r.i64(7)? != 0;
        if online && !suspended {
            if now_ms.saturating_sub(r.u64(5)?) >= rules::ACCRUE_EVERY_MS {
                let due = m.accrue(now_ms, ends);
                pay_member(c, cfg, id, &provider, due, m.paid, now_ms)?;
                report.paid += due;
            }
            continue;
        }
        let why = if suspended { "suspended" } else { "offline" };
        let before = m.paid;
        let released = leave(c, cfg, id, &provider, &mut m, now_ms, ends, why, now_ms)?;
        report.paid += m.paid - before;
        report.dropped += 1;
        // Anyone who ever held a slot of this cluster is not asked again.
        let exclude: BTreeSet<NodeId> = c
            .query(
                "SELECT provider FROM cluster_members WHERE cluster_id = $1",
                &[id.into()],
            )?
            .iter()
            .map(|r| r.node(0))
            .collect::<Result<_, Error>>()?;
        let all = candidates(c, cfg.provider_liveness_ms, now_ms)?;
        let cap = m.price.min(wanted.max_price);
        let pick = rules::choose(&all, &wanted, cap, &exclude, 1)
            .first()
            .map(|p| (*p).clone());
        let refunded = match pick {
            Some(p) => {
                let (new, back) = rules::replace(released, p.reserve_price, now_ms, ends);
                insert_member(c, id, &p, &new)?;
                report.replaced += 1;
                tracing::info!(cluster = %id.short(), left = %provider, joined = %p.id, "cluster member went {why}: replaced");
                back
            }
            None => {
                tracing::warn!(cluster = %id.short(), left = %provider, "cluster member went {why}: no replacement fits, unused time refunded");
                released
            }
        };
        refund(
            c,
            id,
            &renter,
            refunded,
            &format!("cluster/{id}/{provider}/refund"),
            now_ms,
        )?;
    }
    Ok(report)
}

/// A cluster and its members; `None` if unknown.
fn read_cluster(c: &mut dyn Conn, id: &Hash32) -> Result<Option<ClusterView>, Error> {
    let Some(r) = c.query_opt(
        "SELECT renter, state, gpus, gpu_class, min_reliability, max_price, starts_at, ends_at, \
         ended_at, escrowed, paid, refunded FROM clusters WHERE id = $1",
        &[id.into()],
    )?
    else {
        return Ok(None);
    };
    let members = c
        .query(
            "SELECT provider, reserve_price, work_price, joined_at, left_at, state, why_left, budget, paid \
             FROM cluster_members WHERE cluster_id = $1 ORDER BY joined_at, provider",
            &[id.into()],
        )?
        .iter()
        .map(|m| {
            Ok(ClusterMember {
                provider: m.node(0)?,
                reserve_price: m.u64(1)?,
                work_price: m.u64(2)?,
                joined_ms: m.u64(3)?,
                left_ms: m.opt_i64(4)?.map(|v| v.max(0) as u64),
                state: MemberState::parse(m.text(5)?)?,
                why_left: m.text(6)?.to_string(),
                budget: m.u64(7)?,
                paid: m.u64(8)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Some(ClusterView {
        id: *id,
        renter: r.node(0)?,
        state: ClusterState::parse(r.text(1)?)?,
        wanted: Wanted {
            gpus: r.u32(2)?,
            gpu_class: r.text(3)?.to_string(),
            min_reliability_permille: r.u32(4)?,
            max_price: r.u64(5)?,
        },
        starts_ms: r.u64(6)?,
        ends_ms: r.u64(7)?,
        ended_ms: r.opt_i64(8)?.map(|v| v.max(0) as u64),
        escrowed: r.u64(9)?,
        paid: r.u64(10)?,
        refunded: r.u64(11)?,
        members,
    }))
}

/// The reserved slots of a provider in matching: per active cluster it is
/// an active member of, the cluster, the work price it locked, and how
/// many of that cluster's shards it holds now.
pub(super) fn reserved_slots(
    c: &mut dyn Conn,
    provider: &NodeId,
) -> Result<Vec<(Hash32, u64, u32)>, Error> {
    c.query(
        "SELECT m.cluster_id, m.work_price, \
         (SELECT COUNT(*) FROM shards s WHERE s.provider = m.provider AND s.state = 'leased' \
          AND s.cluster_id = m.cluster_id) \
         FROM cluster_members m JOIN clusters k ON k.id = m.cluster_id \
         WHERE m.provider IN ($1) AND m.state = 'active' AND k.state = 'active' \
         ORDER BY k.starts_at, k.id",
        &[provider.into()],
    )?
    .iter()
    .map(|r| Ok((r.hash(0)?, r.u64(1)?, r.u32(2)?)))
    .collect()
}
