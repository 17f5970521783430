//! Proof of hardware: the coordinator's side of `assay_protocol::challenge`.
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

use assay_protocol::challenge::{DeviceClass, challenge_spec, spec_for};
use assay_protocol::verification::RATE_ALWAYS;
use assay_protocol::{Hash32, JobSpec, NodeId, inputs_root, job_id};

use crate::Error;
use crate::SqlStore;
use crate::market::{json, random_id};
use crate::sql::{Backend, Conn, Value, int};

/// The renter of challenge jobs: the coordinator itself (it pays nothing).
pub const CHALLENGER: NodeId = NodeId([0; 32]);

/// The spec and the bound for a class (the test override replaces every
/// GPU class's size and bound).
fn sized(
    class: DeviceClass,
    seed: [u8; 32],
    now_ms: u64,
    over: Option<(u32, u32, u64)>,
) -> Result<(JobSpec, u64), Error> {
    match over {
        Some((n, rounds, bound)) if class != DeviceClass::Cpu => {
            let spec = spec_for(n, rounds, seed, now_ms)
                .map_err(|e| Error::Invalid(format!("--challenge-override: {e}")))?;
            Ok((spec, bound))
        }
        _ => Ok((challenge_spec(class, seed, now_ms), class.bound_ms())),
    }
}

/// A 0.5–1.5 × `interval` delay.
fn jitter(interval: u64) -> Result<u64, Error> {
    let r = random_id()?;
    let mut b = [0u8; 8];
    b.copy_from_slice(&r.0[..8]);
    let frac = u64::from_le_bytes(b) % 1_000;
    Ok(interval / 2 + interval / 1_000 * frac)
}

/// Records that `provider` answered its challenge job `job` (called when
/// the receipt is recorded): in time → `answered`, else `failed`.
pub(crate) fn answered(
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
    let (state, note) = if took <= bound {
        (
            "answered",
            format!(
                "{class} challenge answered in {took} ms (bound {bound} ms); awaiting its check"
            ),
        )
    } else {
        (
            "failed",
            format!(
                "{class} challenge answered in {took} ms, over the {bound} ms bound of the class"
            ),
        )
    };
    tracing::info!(provider = %provider, took, bound, state, "hardware challenge answered");
    c.exec(
        "UPDATE providers SET hardware_state = $2, hardware_note = $3 WHERE id = $1",
        &[provider.into(), state.into(), note.into()],
    )?;
    Ok(())
}

/// After a verdict settled a receipt: if it answered a challenge in time,
/// the provider passed; if it was proven wrong, it failed.
pub(crate) fn judged(
    c: &mut dyn Conn,
    receipt: &Hash32,
    correct: bool,
    interval_ms: u64,
    now_ms: u64,
) -> Result<(), Error> {
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
        Some(now_ms.saturating_add(jitter(interval_ms)?))
    } else {
        None
    };
    let (from, to, note) = if correct {
        (
            "answered",
            "passed",
            "challenge answered in time and verified",
        )
    } else {
        (
            "answered",
            "failed",
            "challenge answer proven wrong by re-execution",
        )
    };
    c.exec(
        "UPDATE providers SET hardware_state = $3, hardware_note = $4, next_challenge_at = $5 \
         WHERE id = $1 AND challenge_job = $2 AND hardware_state = $6",
        &[
            (&provider).into(),
            (&job).into(),
            to.into(),
            note.into(),
            next.map(int).transpose()?.unwrap_or(Value::Null),
            from.into(),
        ],
    )?;
    Ok(())
}

/// A challenge shard is never re-queued for someone else: it fails.
pub(crate) fn is_challenge(c: &mut dyn Conn, job: &Hash32) -> Result<bool, Error> {
    Ok(c.query_one(
        "SELECT challenge_for FROM jobs WHERE id = $1",
        &[job.into()],
    )?
    .opt_node(0)?
    .is_some())
}

impl<B: Backend> SqlStore<B> {
    pub(crate) fn run_challenges_impl(&self, now_ms: u64) -> Result<u64, Error> {
        let Some((component, size)) = self.cfg.challenge_component else {
            return Ok(0);
        };
        let cfg = self.cfg.clone();
        let liveness = cfg.provider_liveness_ms;
        self.b.write(&mut |c| {
            // Unanswered past the deadline: failed.
            for p in c.query(
                "SELECT id, challenge_job FROM providers WHERE hardware_state = 'challenged' AND challenge_deadline <= $1",
                &[int(now_ms)?],
            )? {
                let id = p.node(0)?;
                c.exec(
                    "UPDATE providers SET hardware_state = 'failed', hardware_note = 'no answer to its hardware challenge in time', \
                     next_challenge_at = $2 WHERE id = $1",
                    &[(&id).into(), int(now_ms.saturating_add(cfg.challenge_interval_ms.max(60_000)))?],
                )?;
                if let Some(job) = p.opt_hash(1)? {
                    c.exec(
                        "UPDATE shards SET state = 'failed' WHERE job_id = $1 AND state = 'queued'",
                        &[(&job).into()],
                    )?;
                }
                tracing::warn!(provider = %id, "hardware challenge unanswered: not matched to GPU jobs");
            }
            // Due: unchecked ones, and passed/failed ones whose time came
            // (only while idle, so a busy GPU is not timed).
            let due = c.query(
                "SELECT p.id, p.hardware_class FROM providers p \
                 WHERE p.last_seen + $2 >= $1 AND p.hardware_class <> 'cpu' AND p.suspended = 0 AND ( \
                   p.hardware_state = 'unchecked' OR \
                   (p.hardware_state IN ('passed', 'failed') AND p.next_challenge_at IS NOT NULL AND p.next_challenge_at <= $1 \
                    AND NOT EXISTS (SELECT 1 FROM shards s WHERE s.provider = p.id AND s.state = 'leased'))) \
                 LIMIT 100",
                &[int(now_ms)?, int(liveness)?],
            )?;
            let mut sent = 0;
            for p in &due {
                let provider = p.node(0)?;
                let class = DeviceClass::from_name(p.text(1)?).ok_or_else(|| {
                    Error::Corrupt(format!("provider {provider}: unknown class {:?}", p.text(1)))
                })?;
                let seed = random_id()?;
                let (spec, bound) = sized(class, seed.0, now_ms, cfg.challenge_override)?;
                let job = random_id()?;
                let root = inputs_root(std::iter::empty::<(&str, u64, &Hash32)>());
                let shard_id = job_id(&component, &root, &spec);
                let spec_json = json(&spec)?;
                let seq = c
                    .query_one(
                        "INSERT INTO jobs (id, renter, component_hash, component_size, inputs, inputs_root, spec, \
                         shards, max_price, require_gpu, priority, escrow, shard_escrow, created_at, verify_rate_ppm, \
                         challenge_for) \
                         VALUES ($1, $2, $3, $4, '[]', $5, $6, 1, 0, 0, 2, 0, 0, $7, $8, $9) RETURNING seq",
                        &[
                            (&job).into(),
                            (&CHALLENGER).into(),
                            (&component).into(),
                            int(size)?,
                            (&root).into(),
                            spec_json.into(),
                            int(now_ms)?,
                            Value::Int(i64::from(RATE_ALWAYS)),
                            (&provider).into(),
                        ],
                    )?
                    .i64(0)?;
                c.exec(
                    "INSERT INTO shards (job_id, idx, job_seq, shard_job_id, state, priority, max_price, \
                     memory_bytes, gpu_memory_bytes, require_gpu, queued_at, min_stake, only_provider) \
                     VALUES ($1, 0, $2, $3, 'queued', 2, 0, $4, $5, 0, $6, 0, $7)",
                    &[
                        (&job).into(),
                        Value::Int(seq),
                        (&shard_id).into(),
                        int(spec.memory_bytes)?,
                        int(spec.gpu_memory_bytes)?,
                        int(now_ms)?,
                        (&provider).into(),
                    ],
                )?;
                // Time to poll for the lease, plus the bound itself.
                let deadline = now_ms
                    .saturating_add(cfg.lease_ttl_ms)
                    .saturating_add(bound);
                c.exec(
                    "UPDATE providers SET hardware_state = 'challenged', challenge_job = $2, challenge_bound_ms = $3, \
                     challenge_deadline = $4, hardware_note = $5 WHERE id = $1",
                    &[
                        (&provider).into(),
                        (&job).into(),
                        int(bound)?,
                        int(deadline)?,
                        format!("{} challenge sent (n {}, bound {bound} ms)", class.name(), spec.params.get("n").map_or("?", String::as_str)).into(),
                    ],
                )?;
                tracing::info!(provider = %provider, class = class.name(), bound, "hardware challenge sent");
                sent += 1;
            }
            Ok(sent)
        })
    }
}
