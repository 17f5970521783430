//! Disputes in the database: a disputing verdict opens a bisection game
//! ([`crate::rules::disputes`]) between the provider and that verifier
//! instead of sending the job to the arbiter at once; the parties' answers
//! move it on; when it ends, the arbiter gets a referee check — of one
//! step, or of the whole job.
//!
//! Each dispute is one row: its phase and deadline as columns (the tick
//! times out open games with one indexed query) and the game itself as
//! JSON, locked and rewritten per answer, so two replicas answering at
//! once play one game.

use assay_protocol::{Hash32, NodeId};

use super::checks::{check_task, open_check};
use super::rows::{json, random_id, unjson};
use super::sql::{Backend, Conn, Row, int};
use super::sql_store::SqlStore;
use crate::Error;
use crate::rules::disputes::{Answer, Game, Phase};
use crate::state::{CheckReason, CheckRole};
use crate::types::CheckTask;

/// A question addressed to one party.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionTask {
    /// The dispute.
    pub dispute: Hash32,
    /// The disputed receipt.
    pub receipt: Hash32,
    /// The disputing verifier's check.
    pub check: Hash32,
    /// What is asked.
    pub question: crate::rules::disputes::Question,
    /// Answer by then (the game's deadline).
    pub deadline_ms: u64,
    /// `inputs`: the run to repeat to regain the tensors.
    pub rerun: Option<CheckTask>,
}

/// The games of disputes.
pub trait Disputes {
    /// The open questions addressed to `party`.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn take_questions(&self, party: &NodeId, now_ms: u64) -> Result<Vec<QuestionTask>, Error>;

    /// A dispute's game as it stands (`None`: no such dispute).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn dispute(&self, id: &Hash32) -> Result<Option<Game>, Error>;

    /// Records `party`'s answer and moves the game on; when it ends, the
    /// arbiter's referee check is opened.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown dispute; [`Error::PermissionDenied`]
    /// for a node that is not a party; [`Error::Precondition`] for an answer
    /// the game does not ask for now.
    fn answer_question(
        &self,
        party: &NodeId,
        dispute: &Hash32,
        answer: Answer,
        now_ms: u64,
    ) -> Result<(), Error>;

    /// Games whose deadline passed with a question open go to a full
    /// re-execution; how many.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn expire_disputes(&self, now_ms: u64) -> Result<u64, Error>;
}

impl<B: Backend> Disputes for SqlStore<B> {
    fn take_questions(&self, party: &NodeId, now_ms: u64) -> Result<Vec<QuestionTask>, Error> {
        self.b.write(&mut |c| {
            let rows = c.query(
                "SELECT id, receipt_id, check_id, deadline, game FROM disputes \
                 WHERE phase IN ('claim', 'node', 'leaf', 'inputs') AND deadline > $2 \
                 AND (provider = $1 OR verifier = $1) ORDER BY opened_at LIMIT 64",
                &[party.into(), int(now_ms)?],
            )?;
            let mut tasks = Vec::new();
            for r in &rows {
                let game: Game = unjson(r.text(4)?, "dispute game")?;
                let Some(side) = game.side_of(party) else {
                    continue;
                };
                if !game.awaits(side) {
                    continue;
                }
                let check = r.hash(2)?;
                let deadline_ms = r.u64(3)?;
                // The provider's claim may need the job run again (a
                // calls-only receipt's trace is replaced by its data
                // trace; a verifier's trace is one already), and the
                // inputs always do.
                let rerun =
                    if game.phase == Phase::Inputs || (game.phase == Phase::Claim && side == 0) {
                        Some(check_task(c, &check, deadline_ms)?)
                    } else {
                        None
                    };
                tasks.push(QuestionTask {
                    dispute: r.hash(0)?,
                    receipt: r.hash(1)?,
                    check,
                    question: game.question.clone(),
                    deadline_ms,
                    rerun,
                });
            }
            Ok(tasks)
        })
    }

    fn dispute(&self, id: &Hash32) -> Result<Option<Game>, Error> {
        self.b.read(&mut |c| {
            c.query_opt("SELECT game FROM disputes WHERE id = $1", &[id.into()])?
                .map(|r| unjson(r.text(0)?, "dispute game"))
                .transpose()
        })
    }

    fn answer_question(
        &self,
        party: &NodeId,
        dispute: &Hash32,
        answer: Answer,
        now_ms: u64,
    ) -> Result<(), Error> {
        self.b.write(&mut |c| {
            let Some(r) = c.query_opt(
                &format!(
                    "SELECT receipt_id, deadline, game FROM disputes WHERE id = $1{}",
                    c.dialect().for_update()
                ),
                &[dispute.into()],
            )?
            else {
                return Err(Error::NotFound(format!("no dispute {dispute}")));
            };
            let mut game: Game = unjson(r.text(2)?, "dispute game")?;
            let side = game.side_of(party).ok_or_else(|| {
                Error::PermissionDenied(format!("{party} is not a party to dispute {dispute}"))
            })?;
            if r.u64(1)? <= now_ms {
                return Err(Error::Precondition(format!(
                    "dispute {dispute} is past its deadline: the arbiter re-executes the job"
                )));
            }
            game.answer(side, answer.clone())
                .map_err(Error::Precondition)?;
            save(c, dispute, &r.hash(0)?, &game, now_ms)
        })
    }

    fn expire_disputes(&self, now_ms: u64) -> Result<u64, Error> {
        self.b.write(&mut |c| {
            let rows = c.query(
                &format!(
                    "SELECT id, receipt_id, game FROM disputes \
                     WHERE phase IN ('claim', 'node', 'leaf', 'inputs') AND deadline <= $1 LIMIT 100{}",
                    c.dialect().skip_locked("disputes")
                ),
                &[int(now_ms)?],
            )?;
            for r in &rows {
                let mut game: Game = unjson(r.text(2)?, "dispute game")?;
                game.time_out();
                save(c, &r.hash(0)?, &r.hash(1)?, &game, now_ms)?;
            }
            Ok(rows.len() as u64)
        })
    }
}

/// Opens the game of a dispute: the provider's receipt's trace root
/// against the disputing verdict's (`check` is that verdict's check).
/// Answers have until `deadline_ms` in all.
#[allow(clippy::too_many_arguments)]
pub(super) fn open_dispute(
    c: &mut dyn Conn,
    receipt: &Hash32,
    check: &Hash32,
    parties: [NodeId; 2],
    roots: [Hash32; 2],
    deadline_ms: u64,
    now_ms: u64,
) -> Result<Hash32, Error> {
    let id = random_id()?;
    let game = Game::open(id, parties, roots);
    c.exec(
        "INSERT INTO disputes (id, receipt_id, check_id, provider, verifier, phase, deadline, game, opened_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            (&id).into(),
            receipt.into(),
            check.into(),
            (&parties[0]).into(),
            (&parties[1]).into(),
            game.phase.as_str().into(),
            int(deadline_ms)?,
            json(&game)?.into(),
            int(now_ms)?,
        ],
    )?;
    Ok(id)
}

/// Writes a game back; a game that just ended opens the arbiter's check.
fn save(
    c: &mut dyn Conn,
    id: &Hash32,
    receipt: &Hash32,
    game: &Game,
    now_ms: u64,
) -> Result<(), Error> {
    c.exec(
        "UPDATE disputes SET phase = $2, game = $3 WHERE id = $1",
        &[id.into(), game.phase.as_str().into(), json(game)?.into()],
    )?;
    match game.phase {
        Phase::Step | Phase::Full => {
            let (provider, verifier) = (game.parties[0], game.parties[1]);
            let reason = dispute_reason(c, receipt)?;
            let check = open_check(
                c,
                receipt,
                CheckRole::Referee,
                reason,
                &[provider, verifier],
                now_ms,
            )?;
            if let Some(step) = game.step.as_ref().filter(|_| game.phase == Phase::Step) {
                c.exec(
                    "UPDATE checks SET step = $2 WHERE id = $1",
                    &[(&check).into(), json(&(id, step))?.into()],
                )?;
                tracing::info!(receipt = %receipt.short(), note = %game.note, bytes = game.revealed_bytes, "dispute bisected: the arbiter recomputes one step");
            } else {
                tracing::warn!(receipt = %receipt.short(), why = %game.note, "dispute not settled by bisection: the arbiter re-executes the job");
            }
        }
        Phase::Decided => {
            c.exec(
                "UPDATE disputes SET closed_at = $2 WHERE id = $1",
                &[id.into(), int(now_ms)?],
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// The reason the disputed receipt was checked (the referee check keeps it).
fn dispute_reason(c: &mut dyn Conn, receipt: &Hash32) -> Result<CheckReason, Error> {
    let r = c.query_one(
        "SELECT check_reason FROM receipts WHERE id = $1",
        &[receipt.into()],
    )?;
    CheckReason::parse_stored(r.text(0)?).map(|r| r.unwrap_or(CheckReason::Sampled))
}

/// The open dispute of a receipt, if any: its id and game.
pub(super) fn dispute_of(
    c: &mut dyn Conn,
    receipt: &Hash32,
) -> Result<Option<(Hash32, Game)>, Error> {
    c.query_opt(
        "SELECT id, game FROM disputes WHERE receipt_id = $1 ORDER BY opened_at DESC LIMIT 1",
        &[receipt.into()],
    )?
    .map(|r: Row| Ok((r.hash(0)?, unjson(r.text(1)?, "dispute game")?)))
    .transpose()
}

/// The arbiter's verdict ended the dispute of `receipt` (or it could not
/// recompute the step: `failed`).
pub(super) fn close(
    c: &mut dyn Conn,
    receipt: &Hash32,
    failed: Option<&str>,
    now_ms: u64,
) -> Result<Option<Game>, Error> {
    let Some((id, mut game)) = dispute_of(c, receipt)? else {
        return Ok(None);
    };
    match failed {
        Some(why) => {
            game.step_failed(why);
            c.exec(
                "UPDATE disputes SET phase = $2, game = $3 WHERE id = $1",
                &[
                    (&id).into(),
                    game.phase.as_str().into(),
                    json(&game)?.into(),
                ],
            )?;
        }
        None => {
            game.decided();
            save(c, &id, receipt, &game, now_ms)?;
        }
    }
    Ok(Some(game))
}
