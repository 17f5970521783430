//! The sampling beacon: each epoch's seed is committed (its hash
//! published) before receipts are recorded in it and revealed when it is
//! over; the revealed seed draws which of the epoch's receipts are checked
//! (`assay_protocol::verification::is_sampled`). A drawn receipt gets a
//! check ([`super::checks`]); the others settle after the window.

use assay_protocol::verification::{commitment, is_sampled};

use super::checks::{next_state, open_check, set_check};
use super::rows::{epoch_seed, random_id, seed_of};
use super::sql::{Backend, Conn, Value, int};
use super::sql_store::SqlStore;
use crate::Error;
use crate::rules::checks::CheckEvent;
use crate::state::{CheckReason, CheckRole, CheckState};
use crate::types::EpochSeed;

/// The epochs of the sampling beacon.
pub trait Epochs {
    /// Reveals the seeds of epochs that are over and samples their
    /// receipts; publishes the commitment of the next epoch. Returns how
    /// many receipts were sampled.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn reveal_epochs(&self, now_ms: u64) -> Result<u64, Error>;
    /// Epochs from `from_epoch` on (at most `limit`): commitments, and seeds
    /// of those that are over.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn beacon(&self, from_epoch: u64, limit: u32) -> Result<Vec<EpochSeed>, Error>;
}

impl<B: Backend> Epochs for SqlStore<B> {
    fn reveal_epochs(&self, now_ms: u64) -> Result<u64, Error> {
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
                let seed = seed_of(epoch, e.blob(1)?)?;
                sampled += reveal(c, epoch, &seed, now_ms)?;
            }
            Ok(sampled)
        })
    }

    fn beacon(&self, from_epoch: u64, limit: u32) -> Result<Vec<EpochSeed>, Error> {
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
}

/// The epoch a receipt recorded now belongs to, with its commitment
/// published (created if absent). Never an epoch whose seed is already out:
/// a replica with a slow clock moves on to the first unrevealed epoch.
pub(super) fn open_epoch(c: &mut dyn Conn, epoch_ms: u64, now_ms: u64) -> Result<u64, Error> {
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

/// Reveals one epoch's seed and samples its pending receipts; returns how
/// many were drawn.
fn reveal(c: &mut dyn Conn, epoch: u64, seed: &[u8; 32], now_ms: u64) -> Result<u64, Error> {
    c.exec(
        "UPDATE epochs SET revealed_at = $2 WHERE epoch = $1",
        &[int(epoch)?, int(now_ms)?],
    )?;
    let mut sampled = 0;
    for r in c.query(
        "SELECT id, provider, rate_ppm FROM receipts WHERE epoch = $1 AND check_state = 'pending'",
        &[int(epoch)?],
    )? {
        let rid = r.hash(0)?;
        let drawn = is_sampled(&rid, seed, r.u32(2)?);
        let to = next_state(CheckState::Pending, CheckEvent::Revealed { drawn })?;
        if drawn {
            set_check(c, &rid, to, Some(CheckReason::Sampled))?;
            open_check(
                c,
                &rid,
                CheckRole::Verify,
                CheckReason::Sampled,
                &[r.node(1)?],
                now_ms,
            )?;
            sampled += 1;
        } else {
            c.exec(
                "UPDATE receipts SET check_state = $2 WHERE id = $1",
                &[(&rid).into(), to.as_str().into()],
            )?;
        }
    }
    Ok(sampled)
}
