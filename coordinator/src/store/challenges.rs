//! Proof of hardware in the database: the coordinator's side of
//! `assay_protocol::challenge` (the arithmetic is [`crate::rules::challenge`]).
//!
//! A provider that registers a GPU starts `unchecked`. On the next tick the
//! coordinator sends it a challenge: a one-shard job of the `challenge`
//! guest, addressed to that provider only (no other provider may lease it),
//! sized for the device class its GPUs claim, with a fresh random seed, paid
//! nothing and checked at p = 1 (reason `challenge`). Its hardware state then
//! moves:
//!
//! ```text
//! unchecked ─ sent ─► challenged ─ receipt within the class bound ─► answered ─ verified ─► passed
//!                        │         receipt too late ───────────────► failed
//!                        └──────── no receipt by the deadline ─────► failed
//!                                  answered, proven wrong ─────────► failed (and slashed, like any cheat)
//! ```
//!
//! Only `passed` providers are matched to jobs that require a GPU. A passed
//! provider is challenged again at a random time (0.5–1.5 × the interval,
//! and only while it holds no lease, so a busy GPU is not timed); a failed
//! one is challenged again after the interval. The time is measured by the
//! coordinator from granting the lease to recording the receipt; the seed
//! is only in the lease, so nothing can be computed ahead.

use assay_protocol::challenge::DeviceClass;
use assay_protocol::verification::RATE_ALWAYS;
use assay_protocol::{Hash32, JobSpec, NodeId, inputs_root, job_id};

use super::rows::{json, random_id, random_u64};
use super::sql::{Backend, Conn, Value, int};
use super::sql_store::SqlStore;
use crate::Error;
use crate::config::MarketConfig;
use crate::rules::challenge::{self, sized};
use crate::state::HardwareState;

/// The renter of challenge jobs: the coordinator itself (it pays nothing).
pub const CHALLENGER: NodeId = NodeId([0; 32]);

/// Proof of hardware.
pub trait Challenges {
    /// Proof of hardware: sends a challenge to each online GPU provider
    /// whose class is unchecked or due for a random re-check, and fails the
    /// challenges that went unanswered past their deadline. Returns how many
    /// challenges were sent.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn run_challenges(&self, now_ms: u64) -> Result<u64, Error>;
}

impl<B: Backend> Challenges for SqlStore<B> {
    fn run_challenges(&self, now_ms: u64) -> Result<u64, Error> {
        let Some(component) = self.cfg.challenge_component else {
            return Ok(0);
        };
        let cfg = self.cfg.clone();
        self.b.write(&mut |c| {
            fail_unanswered(c, &cfg, now_ms)?;
            let mut sent = 0;
            for (provider, class) in due(c, cfg.provider_liveness_ms, now_ms)? {
                send(c, &cfg, component, &provider, class, now_ms)?;
                sent += 1;
            }
            Ok(sent)
        })
    }
}

/// Challenges unanswered past their deadline fail (and their job with them).
fn fail_unanswered(c: &mut dyn Conn, cfg: &MarketConfig, now_ms: u64) -> Result<(), Error> {
    for p in c.query(
        "SELECT id, challenge_job FROM providers WHERE hardware_state = 'challenged' AND challenge_deadline <= $1",
        &[int(now_ms)?],
    )? {
        let id = p.node(0)?;
        c.exec(
            "UPDATE providers SET hardware_state = $3, hardware_note = 'no answer to its hardware challenge in time', \
             next_challenge_at = $2 WHERE id = $1",
            &[
                (&id).into(),
                int(challenge::retry_after_silence(now_ms, cfg.challenge_interval_ms))?,
                HardwareState::Failed.as_str().into(),
            ],
        )?;
        if let Some(job) = p.opt_hash(1)? {
            c.exec(
                "UPDATE shards SET state = 'failed' WHERE job_id = $1 AND state = 'queued'",
                &[(&job).into()],
            )?;
        }
        super::economy::mark_failed(c, &cfg.economy, &id, now_ms)?;
        tracing::warn!(provider = %id, "hardware challenge unanswered: not matched to GPU jobs");
    }
    Ok(())
}

/// Providers due for a challenge: unchecked ones, and passed/failed ones
/// whose time came (only while idle, so a busy GPU is not timed).
fn due(
    c: &mut dyn Conn,
    liveness_ms: u64,
    now_ms: u64,
) -> Result<Vec<(NodeId, DeviceClass)>, Error> {
    c.query(
        "SELECT p.id, p.hardware_class FROM providers p \
         WHERE p.last_seen + $2 >= $1 AND p.hardware_class <> 'cpu' AND p.suspended = 0 AND ( \
           p.hardware_state = 'unchecked' OR \
           (p.hardware_state IN ('passed', 'failed') AND p.next_challenge_at IS NOT NULL AND p.next_challenge_at <= $1 \
            AND NOT EXISTS (SELECT 1 FROM shards s WHERE s.provider = p.id AND s.state = 'leased'))) \
         LIMIT 100",
        &[int(now_ms)?, int(liveness_ms)?],
    )?
    .iter()
    .map(|p| {
        let provider = p.node(0)?;
        let class = DeviceClass::from_name(p.text(1)?).ok_or_else(|| {
            Error::Corrupt(format!("provider {provider}: unknown class {:?}", p.text(1)))
        })?;
        Ok((provider, class))
    })
    .collect()
}

/// Queues a one-shard challenge job addressed to `provider` and marks it
/// challenged.
fn send(
    c: &mut dyn Conn,
    cfg: &MarketConfig,
    (component, size): (Hash32, u64),
    provider: &NodeId,
    class: DeviceClass,
    now_ms: u64,
) -> Result<(), Error> {
    let seed = random_id()?;
    let (spec, bound) = sized(class, seed.0, now_ms, cfg.challenge_override)?;
    let job = random_id()?;
    insert_challenge_job(c, &job, (component, size), &spec, provider, now_ms)?;
    // Time to poll for the lease, plus the bound itself.
    let deadline = now_ms
        .saturating_add(cfg.lease_ttl_ms)
        .saturating_add(bound);
    c.exec(
        "UPDATE providers SET hardware_state = $6, challenge_job = $2, challenge_bound_ms = $3, \
         challenge_deadline = $4, hardware_note = $5 WHERE id = $1",
        &[
            provider.into(),
            (&job).into(),
            int(bound)?,
            int(deadline)?,
            format!(
                "{} challenge sent (n {}, bound {bound} ms)",
                class.name(),
                spec.params.get("n").map_or("?", String::as_str)
            )
            .into(),
            HardwareState::Challenged.as_str().into(),
        ],
    )?;
    tracing::info!(provider = %provider, class = class.name(), bound, "hardware challenge sent");
    Ok(())
}

/// The challenge job: paid nothing, checked always, leased only by `provider`.
fn insert_challenge_job(
    c: &mut dyn Conn,
    job: &Hash32,
    (component, size): (Hash32, u64),
    spec: &JobSpec,
    provider: &NodeId,
    now_ms: u64,
) -> Result<(), Error> {
    let root = inputs_root(std::iter::empty::<(&str, u64, &Hash32)>());
    let shard_id = job_id(&component, &root, spec);
    let seq = c
        .query_one(
            "INSERT INTO jobs (id, renter, component_hash, component_size, inputs, inputs_root, spec, \
             shards, max_price, require_gpu, priority, escrow, shard_escrow, created_at, verify_rate_ppm, \
             challenge_for) \
             VALUES ($1, $2, $3, $4, '[]', $5, $6, 1, 0, 0, 2, 0, 0, $7, $8, $9) RETURNING seq",
            &[
                job.into(),
                (&CHALLENGER).into(),
                (&component).into(),
                int(size)?,
                (&root).into(),
                json(spec)?.into(),
                int(now_ms)?,
                Value::Int(i64::from(RATE_ALWAYS)),
                provider.into(),
            ],
        )?
        .i64(0)?;
    c.exec(
        "INSERT INTO shards (job_id, idx, job_seq, shard_job_id, state, priority, max_price, \
         memory_bytes, gpu_memory_bytes, require_gpu, queued_at, min_stake, only_provider) \
         VALUES ($1, 0, $2, $3, 'queued', 2, 0, $4, $5, 0, $6, 0, $7)",
        &[
            job.into(),
            Value::Int(seq),
            (&shard_id).into(),
            int(spec.memory_bytes)?,
            int(spec.gpu_memory_bytes)?,
            int(now_ms)?,
            provider.into(),
        ],
    )?;
    Ok(())
}

/// Records that `provider` answered its challenge job `job` (called when
/// the receipt is recorded): in time → `answered`, else `failed`.
pub(super) fn answered(
    c: &mut dyn Conn,
    provider: &NodeId,
    job: &Hash32,
    lease: &Hash32,
    now_ms: u64,
) -> Result<(), Error> {
    let Some(p) = c.query_opt(
        "SELECT challenge_bound_ms, hardware_class FROM providers \
         WHERE id = $1 AND challenge_job = $2 AND hardware_state = 'challenged'",
        &[provider.into(), job.into()],
    )?
    else {
        return Ok(());
    };
    let bound = p.u64(0)?;
    let class = p.text(1)?.to_string();
    let granted = c
        .query_one(
            "SELECT granted_at FROM leases WHERE id = $1",
            &[lease.into()],
        )?
        .u64(0)?;
    let took = now_ms.saturating_sub(granted);
    let (state, note) = challenge::answered(&class, took, bound);
    tracing::info!(provider = %provider, took, bound, state = state.as_str(), "hardware challenge answered");
    c.exec(
        "UPDATE providers SET hardware_state = $2, hardware_note = $3 WHERE id = $1",
        &[provider.into(), state.as_str().into(), note.into()],
    )?;
    Ok(())
}

/// After a verdict settled a receipt: if it answered a challenge in time,
/// the provider passed; if it was proven wrong, it failed.
pub(super) fn judged(
    c: &mut dyn Conn,
    cfg: &MarketConfig,
    receipt: &Hash32,
    correct: bool,
    now_ms: u64,
) -> Result<(), Error> {
    let interval_ms = cfg.challenge_interval_ms;
    let Some(r) = c.query_opt(
        "SELECT j.challenge_for, r.job_id FROM receipts r JOIN jobs j ON j.id = r.job_id WHERE r.id = $1",
        &[receipt.into()],
    )?
    else {
        return Ok(());
    };
    let Some(provider) = r.opt_node(0)? else {
        return Ok(());
    };
    let job = r.hash(1)?;
    let next = if interval_ms > 0 {
        Some(now_ms.saturating_add(challenge::jitter(interval_ms, random_u64()?)))
    } else {
        None
    };
    let (to, note) = challenge::judged(correct);
    c.exec(
        "UPDATE providers SET hardware_state = $3, hardware_note = $4, next_challenge_at = $5 \
         WHERE id = $1 AND challenge_job = $2 AND hardware_state = $6",
        &[
            (&provider).into(),
            (&job).into(),
            to.as_str().into(),
            note.into(),
            next.map(int).transpose()?.unwrap_or(Value::Null),
            HardwareState::Answered.as_str().into(),
        ],
    )?;
    if !correct {
        super::economy::mark_failed(c, &cfg.economy, &provider, now_ms)?;
    }
    Ok(())
}

/// A challenge shard is never re-queued for someone else: it fails.
pub(super) fn is_challenge(c: &mut dyn Conn, job: &Hash32) -> Result<bool, Error> {
    Ok(c.query_one(
        "SELECT challenge_for FROM jobs WHERE id = $1",
        &[job.into()],
    )?
    .opt_node(0)?
    .is_some())
}
