//! Tokenized compute in the database: cash-flow notes and bonds on one
//! device (a provider node), and the routing of that device's earnings
//! through them. The arithmetic is [`crate::rules::claims`].
//!
//! - A **note** sells the device's cash flow for a term: during it, every
//!   payment for verified work (IOSD) and every block reward (IO) the
//!   device earns is split `holders_bps` (0.9) to the share holders pro
//!   rata, the rest to the operator. Shares are offered at a price in IO,
//!   bought, and transferred.
//! - A **bond** raises IOSD for the operator now: buyers pay principal,
//!   and until maturity the device's IOSD earnings first pay the coupons
//!   still owed, then fill the principal escrow (`iosd/bond:<id>`); what is
//!   left goes on to the note split and the operator. At maturity a full
//!   escrow repays the holders; a short one is a recorded default, and the
//!   holders take the escrow and the device's whole stake pro rata.
//!
//! Every movement is a ledger entry whose reference extends the earning's
//! own (e.g. `settle/<receipt>/pay/bond/<id>/coupon/<holder>`), so routing
//! is as idempotent as the settlement it is part of.

use assay_protocol::{Hash32, NodeId};
use serde::{Deserialize, Serialize};

use super::economy::{cancel_unbonding, sync_provider_stake};
use super::ledger::{Movement, Posted, balance_of, post, stake_of};
use super::rows::random_id;
use super::sql::{Backend, Conn, Value, int};
use super::sql_store::SqlStore;
use crate::Error;
use crate::config::EconomyConfig;
use crate::ledger::{self, Unit};
use crate::rules::claims::{self as rules, BondState, Maturity};
use crate::state::BondStatus;

/// A share offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Who sells.
    pub seller: NodeId,
    /// How many shares are for sale.
    pub shares: u64,
    /// µIO per share.
    pub price: u64,
}

/// A cash-flow note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Its id.
    pub id: Hash32,
    /// The device (provider node) whose cash flow it sells; its operator.
    pub device: NodeId,
    /// Shares in all.
    pub shares: u64,
    /// The holders' part of each earning, basis points.
    pub holders_bps: u32,
    /// Term, days.
    pub term_days: u32,
    /// Issued, Unix ms.
    pub issued_at: u64,
    /// The term ends, Unix ms.
    pub ends_at: u64,
    /// Who holds how many shares.
    pub holdings: Vec<(NodeId, u64)>,
    /// Shares on offer.
    pub offers: Vec<Offer>,
}

/// A bond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bond {
    /// Its id.
    pub id: Hash32,
    /// The device whose earnings repay it; its operator raised the money.
    pub device: NodeId,
    /// The principal offered, µIOSD.
    pub principal: u64,
    /// The principal sold, µIOSD.
    pub sold: u64,
    /// Coupon, basis points a year.
    pub coupon_bps: u32,
    /// Days to maturity.
    pub maturity_days: u32,
    /// Issued, Unix ms.
    pub issued_at: u64,
    /// Matures, Unix ms.
    pub matures_at: u64,
    /// Coupons owed over its life on what was sold, µIOSD.
    pub coupon_total: u64,
    /// Coupons paid so far, µIOSD.
    pub coupon_paid: u64,
    /// Principal escrowed so far, µIOSD.
    pub escrowed: u64,
    /// `open`, `repaid`, `defaulted` or `expired`.
    pub state: BondStatus,
    /// What the escrow lacked at a default, µIOSD.
    pub shortfall: u64,
    /// Who holds how much principal.
    pub holdings: Vec<(NodeId, u64)>,
}

/// Notes and bonds.
pub trait Claims {
    /// The operator (the device's own key) issues a note of `shares`
    /// shares for `term_days`; it holds them all.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for bad terms; [`Error::Precondition`] when the
    /// device is not a registered provider or already has a note running.
    fn issue_note(
        &self,
        operator: &NodeId,
        shares: u64,
        term_days: u32,
        now_ms: u64,
    ) -> Result<Note, Error>;
    /// Offers `shares` of the seller's shares at `price` µIO each
    /// (replacing its previous offer; 0 shares withdraws it).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::Precondition`] when it holds fewer.
    fn offer_shares(
        &self,
        seller: &NodeId,
        note: &Hash32,
        shares: u64,
        price: u64,
    ) -> Result<Note, Error>;
    /// Buys `shares` from `seller`'s offer, paying in IO, at most
    /// `max_price` µIO a share; once per `reference`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::Precondition`] when the offer is
    /// smaller, dearer, or the buyer's IO balance too small.
    #[allow(clippy::too_many_arguments)]
    fn buy_shares(
        &self,
        buyer: &NodeId,
        note: &Hash32,
        seller: &NodeId,
        shares: u64,
        max_price: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Note, Error>;
    /// Gives `shares` of the sender's shares to `to`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::Precondition`] when it holds fewer.
    fn transfer_shares(
        &self,
        from: &NodeId,
        note: &Hash32,
        to: &NodeId,
        shares: u64,
    ) -> Result<Note, Error>;
    /// A note.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn note(&self, id: &Hash32) -> Result<Option<Note>, Error>;
    /// The operator (the device's own key) offers a bond.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for bad terms; [`Error::Precondition`] when the
    /// device is not a registered provider.
    fn issue_bond(
        &self,
        operator: &NodeId,
        principal: u64,
        coupon_bps: u32,
        maturity_days: u32,
        now_ms: u64,
    ) -> Result<Bond, Error>;
    /// Buys `amount` µIOSD of a bond's principal, paid to the operator;
    /// once per `reference`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::Precondition`] when the bond is
    /// matured, sold out, or the buyer's IOSD balance too small.
    fn buy_bond(
        &self,
        buyer: &NodeId,
        bond: &Hash32,
        amount: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Bond, Error>;
    /// A bond.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn bond(&self, id: &Hash32) -> Result<Option<Bond>, Error>;
    /// Matures the bonds that are due: repaid or defaulted. How many.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn mature_bonds(&self, now_ms: u64) -> Result<u64, Error>;
}

impl<B: Backend> Claims for SqlStore<B> {
    fn issue_note(
        &self,
        operator: &NodeId,
        shares: u64,
        term_days: u32,
        now_ms: u64,
    ) -> Result<Note, Error> {
        rules::validate_note(shares, term_days, rules::NOTE_HOLDERS_BPS)?;
        let ends_at = term_end(&self.cfg.economy, now_ms, term_days)?;
        let id = random_id()?;
        self.b.write(&mut |c| {
            require_provider(c, operator)?;
            if c.query_opt(
                "SELECT id FROM notes WHERE device = $1 AND ends_at > $2",
                &[operator.into(), int(now_ms)?],
            )?
            .is_some()
            {
                return Err(Error::Precondition(format!(
                    "device {operator} already has a note running: one note per device at a time"
                )));
            }
            c.exec(
                "INSERT INTO notes (id, device, shares, holders_bps, term_days, issued_at, ends_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    (&id).into(),
                    operator.into(),
                    int(shares)?,
                    Value::Int(i64::from(rules::NOTE_HOLDERS_BPS)),
                    Value::Int(i64::from(term_days)),
                    int(now_ms)?,
                    int(ends_at)?,
                ],
            )?;
            c.exec(
                "INSERT INTO note_holdings (note_id, holder, shares) VALUES ($1, $2, $3)",
                &[(&id).into(), operator.into(), int(shares)?],
            )?;
            read_note(c, &id)?.ok_or_else(|| Error::Corrupt("the note just issued".into()))
        })
    }

    fn offer_shares(
        &self,
        seller: &NodeId,
        note: &Hash32,
        shares: u64,
        price: u64,
    ) -> Result<Note, Error> {
        self.b.write(&mut |c| {
            let held = shares_of(c, note, seller)?;
            if held < shares {
                return Err(Error::Precondition(format!(
                    "you hold {held} shares of note {note} and cannot offer {shares}"
                )));
            }
            rules::share_price_total(price, shares)?;
            c.exec(
                "DELETE FROM note_offers WHERE note_id = $1 AND seller = $2",
                &[note.into(), seller.into()],
            )?;
            if shares > 0 {
                c.exec(
                    "INSERT INTO note_offers (note_id, seller, shares, price) VALUES ($1, $2, $3, $4)",
                    &[note.into(), seller.into(), int(shares)?, int(price)?],
                )?;
            }
            read_note(c, note)?.ok_or_else(|| Error::NotFound(format!("no note {note}")))
        })
    }

    fn buy_shares(
        &self,
        buyer: &NodeId,
        note: &Hash32,
        seller: &NodeId,
        shares: u64,
        max_price: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Note, Error> {
        if buyer == seller {
            return Err(Error::Invalid("you cannot buy your own shares".into()));
        }
        if shares == 0 {
            return Err(Error::Invalid("buy at least one share".into()));
        }
        self.b.write(&mut |c| {
            let Some(offer) = c.query_opt(
                "SELECT shares, price FROM note_offers WHERE note_id = $1 AND seller = $2",
                &[note.into(), seller.into()],
            )?
            else {
                return Err(Error::NotFound(format!(
                    "{seller} offers no shares of note {note}: see `assay note show`"
                )));
            };
            let (offered, price) = (offer.u64(0)?, offer.u64(1)?);
            if offered < shares {
                return Err(Error::Precondition(format!(
                    "{seller} offers {offered} shares, not {shares}"
                )));
            }
            if price > max_price {
                return Err(Error::Precondition(format!(
                    "the offer asks {price} µIO a share, more than your --max-price of {max_price}"
                )));
            }
            let total = rules::share_price_total(price, shares)?;
            let posted = post(
                c,
                Movement {
                    kind: "note-sale",
                    debit: &ledger::balance(Unit::Io, buyer),
                    credit: &ledger::balance(Unit::Io, seller),
                    amount: total,
                    reference,
                },
                now_ms,
            )?;
            if posted != Posted::Duplicate {
                move_shares(c, note, seller, buyer, shares)?;
                c.exec(
                    "UPDATE note_offers SET shares = shares - $3 WHERE note_id = $1 AND seller = $2",
                    &[note.into(), seller.into(), int(shares)?],
                )?;
                c.exec(
                    "DELETE FROM note_offers WHERE note_id = $1 AND shares <= 0",
                    &[note.into()],
                )?;
            }
            read_note(c, note)?.ok_or_else(|| Error::NotFound(format!("no note {note}")))
        })
    }

    fn transfer_shares(
        &self,
        from: &NodeId,
        note: &Hash32,
        to: &NodeId,
        shares: u64,
    ) -> Result<Note, Error> {
        if from == to || shares == 0 {
            return Err(Error::Invalid(
                "transfer at least one share to another node".into(),
            ));
        }
        self.b.write(&mut |c| {
            move_shares(c, note, from, to, shares)?;
            // An offer cannot sell more than is left.
            let left = shares_of(c, note, from)?;
            c.exec(
                "UPDATE note_offers SET shares = $3 WHERE note_id = $1 AND seller = $2 AND shares > $3",
                &[note.into(), from.into(), int(left)?],
            )?;
            c.exec(
                "DELETE FROM note_offers WHERE note_id = $1 AND shares <= 0",
                &[note.into()],
            )?;
            read_note(c, note)?.ok_or_else(|| Error::NotFound(format!("no note {note}")))
        })
    }

    fn note(&self, id: &Hash32) -> Result<Option<Note>, Error> {
        self.b.read(&mut |c| read_note(c, id))
    }

    fn issue_bond(
        &self,
        operator: &NodeId,
        principal: u64,
        coupon_bps: u32,
        maturity_days: u32,
        now_ms: u64,
    ) -> Result<Bond, Error> {
        rules::validate_bond(principal, coupon_bps, maturity_days)?;
        let matures_at = term_end(&self.cfg.economy, now_ms, maturity_days)?;
        let id = random_id()?;
        self.b.write(&mut |c| {
            require_provider(c, operator)?;
            c.exec(
                "INSERT INTO bonds (id, device, principal, coupon_bps, maturity_days, issued_at, matures_at, state) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    (&id).into(),
                    operator.into(),
                    int(principal)?,
                    Value::Int(i64::from(coupon_bps)),
                    Value::Int(i64::from(maturity_days)),
                    int(now_ms)?,
                    int(matures_at)?,
                    BondStatus::Open.as_str().into(),
                ],
            )?;
            read_bond(c, &id)?.ok_or_else(|| Error::Corrupt("the bond just issued".into()))
        })
    }

    fn buy_bond(
        &self,
        buyer: &NodeId,
        bond: &Hash32,
        amount: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Bond, Error> {
        if amount == 0 {
            return Err(Error::Invalid("buy a positive amount of µIOSD".into()));
        }
        self.b.write(&mut |c| {
            let Some(b) = read_bond(c, bond)? else {
                return Err(Error::NotFound(format!("no bond {bond}")));
            };
            if b.state != BondStatus::Open || now_ms >= b.matures_at {
                return Err(Error::Precondition(format!(
                    "bond {bond} has matured: it sells no more"
                )));
            }
            if &b.device == buyer {
                return Err(Error::Invalid("an operator cannot buy its own bond".into()));
            }
            let left = b.principal - b.sold;
            if amount > left {
                return Err(Error::Precondition(format!(
                    "bond {bond} has {left} µIOSD of principal left, not {amount}"
                )));
            }
            let posted = post(
                c,
                Movement {
                    kind: "bond-sale",
                    debit: &ledger::balance(Unit::Iosd, buyer),
                    credit: &ledger::balance(Unit::Iosd, &b.device),
                    amount,
                    reference,
                },
                now_ms,
            )?;
            if posted != Posted::Duplicate {
                let sold = b.sold + amount;
                let coupon_total = rules::coupon_total(sold, b.coupon_bps, b.maturity_days)?;
                c.exec(
                    "UPDATE bonds SET sold = $2, coupon_total = $3 WHERE id = $1",
                    &[bond.into(), int(sold)?, int(coupon_total)?],
                )?;
                c.exec(
                    "INSERT INTO bond_holdings (bond_id, holder, principal) VALUES ($1, $2, $3) \
                     ON CONFLICT (bond_id, holder) DO UPDATE SET principal = bond_holdings.principal + excluded.principal",
                    &[bond.into(), buyer.into(), int(amount)?],
                )?;
            }
            read_bond(c, bond)?.ok_or_else(|| Error::NotFound(format!("no bond {bond}")))
        })
    }

    fn bond(&self, id: &Hash32) -> Result<Option<Bond>, Error> {
        self.b.read(&mut |c| read_bond(c, id))
    }

    fn mature_bonds(&self, now_ms: u64) -> Result<u64, Error> {
        self.b.write(&mut |c| {
            let due = c.query(
                "SELECT id FROM bonds WHERE state = 'open' AND matures_at <= $1 LIMIT 100",
                &[int(now_ms)?],
            )?;
            for r in &due {
                mature(c, &r.hash(0)?, now_ms)?;
            }
            Ok(due.len() as u64)
        })
    }
}

fn term_end(cfg: &EconomyConfig, now_ms: u64, days: u32) -> Result<u64, Error> {
    u64::from(days)
        .checked_mul(cfg.day_ms.max(1))
        .and_then(|t| now_ms.checked_add(t))
        .ok_or_else(|| Error::Invalid(format!("a term of {days} days overflows")))
}

fn require_provider(c: &mut dyn Conn, node: &NodeId) -> Result<(), Error> {
    if c.query_opt("SELECT id FROM providers WHERE id = $1", &[node.into()])?
        .is_none()
    {
        return Err(Error::Precondition(format!(
            "{node} is not a registered provider: a note or bond is issued by the device's own key (run it as `assay provider` first)"
        )));
    }
    Ok(())
}

fn shares_of(c: &mut dyn Conn, note: &Hash32, holder: &NodeId) -> Result<u64, Error> {
    Ok(c.query_opt(
        "SELECT shares FROM note_holdings WHERE note_id = $1 AND holder = $2",
        &[note.into(), holder.into()],
    )?
    .map(|r| r.u64(0))
    .transpose()?
    .unwrap_or(0))
}

fn move_shares(
    c: &mut dyn Conn,
    note: &Hash32,
    from: &NodeId,
    to: &NodeId,
    shares: u64,
) -> Result<(), Error> {
    if c.query_opt("SELECT id FROM notes WHERE id = $1", &[note.into()])?
        .is_none()
    {
        return Err(Error::NotFound(format!("no note {note}")));
    }
    let held = shares_of(c, note, from)?;
    if held < shares {
        return Err(Error::Precondition(format!(
            "{from} holds {held} shares of note {note}, not {shares}"
        )));
    }
    c.exec(
        "UPDATE note_holdings SET shares = shares - $3 WHERE note_id = $1 AND holder = $2",
        &[note.into(), from.into(), int(shares)?],
    )?;
    c.exec(
        "INSERT INTO note_holdings (note_id, holder, shares) VALUES ($1, $2, $3) \
         ON CONFLICT (note_id, holder) DO UPDATE SET shares = note_holdings.shares + excluded.shares",
        &[note.into(), to.into(), int(shares)?],
    )?;
    c.exec(
        "DELETE FROM note_holdings WHERE note_id = $1 AND shares <= 0",
        &[note.into()],
    )?;
    Ok(())
}

/// `(holder, amount)` rows of a note's or a bond's holdings query.
fn holdings(c: &mut dyn Conn, sql: &str, id: &Hash32) -> Result<Vec<(NodeId, u64)>, Error> {
    c.query(sql, &[id.into()])?
        .iter()
        .map(|h| Ok((h.node(0)?, h.u64(1)?)))
        .collect()
}

fn read_note(c: &mut dyn Conn, id: &Hash32) -> Result<Option<Note>, Error> {
    let Some(r) = c.query_opt(
        "SELECT device, shares, holders_bps, term_days, issued_at, ends_at FROM notes WHERE id = $1",
        &[id.into()],
    )?
    else {
        return Ok(None);
    };
    let holdings = holdings(
        c,
        "SELECT holder, shares FROM note_holdings WHERE note_id = $1 ORDER BY holder",
        id,
    )?;
    let offers = c
        .query(
            "SELECT seller, shares, price FROM note_offers WHERE note_id = $1 ORDER BY price, seller",
            &[id.into()],
        )?
        .iter()
        .map(|o| {
            Ok(Offer {
                seller: o.node(0)?,
                shares: o.u64(1)?,
                price: o.u64(2)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Some(Note {
        id: *id,
        device: r.node(0)?,
        shares: r.u64(1)?,
        holders_bps: r.u32(2)?,
        term_days: r.u32(3)?,
        issued_at: r.u64(4)?,
        ends_at: r.u64(5)?,
        holdings,
        offers,
    }))
}

fn read_bond(c: &mut dyn Conn, id: &Hash32) -> Result<Option<Bond>, Error> {
    let Some(r) = c.query_opt(
        "SELECT device, principal, sold, coupon_bps, maturity_days, issued_at, matures_at, \
         coupon_total, coupon_paid, state, shortfall FROM bonds WHERE id = $1",
        &[id.into()],
    )?
    else {
        return Ok(None);
    };
    let holdings = holdings(
        c,
        "SELECT holder, principal FROM bond_holdings WHERE bond_id = $1 ORDER BY holder",
        id,
    )?;
    let escrowed = u64::try_from(balance_of(c, &ledger::bond_escrow(id))?).unwrap_or(0);
    Ok(Some(Bond {
        id: *id,
        device: r.node(0)?,
        principal: r.u64(1)?,
        sold: r.u64(2)?,
        coupon_bps: r.u32(3)?,
        maturity_days: r.u32(4)?,
        issued_at: r.u64(5)?,
        matures_at: r.u64(6)?,
        coupon_total: r.u64(7)?,
        coupon_paid: r.u64(8)?,
        escrowed,
        state: BondStatus::parse(r.text(9)?)?,
        shortfall: r.u64(10)?,
        holdings,
    }))
}

/// Matures one bond ([`rules::mature`]).
fn mature(c: &mut dyn Conn, id: &Hash32, now_ms: u64) -> Result<(), Error> {
    let Some(b) = read_bond(c, id)? else {
        return Ok(());
    };
    let escrow = ledger::bond_escrow(id);
    if b.sold == 0 {
        c.exec(
            "UPDATE bonds SET state = $2 WHERE id = $1",
            &[id.into(), BondStatus::Expired.as_str().into()],
        )?;
        return Ok(());
    }
    let weights: Vec<u64> = b.holdings.iter().map(|(_, p)| *p).collect();
    let reference = format!("bond/{id}/mature");
    cancel_unbonding(c, &b.device, &reference, now_ms)?;
    let stake = stake_of(c, &b.device)?;
    let state = BondState {
        principal: b.sold,
        coupon_total: b.coupon_total,
        coupon_paid: b.coupon_paid,
        escrowed: b.escrowed,
    };
    match rules::mature(&state, &weights, stake)? {
        Maturity::Repaid { to_holders } => {
            for ((holder, _), amount) in b.holdings.iter().zip(&to_holders) {
                post(
                    c,
                    Movement {
                        kind: "bond-repay",
                        debit: &escrow,
                        credit: &ledger::balance(Unit::Iosd, holder),
                        amount: *amount,
                        reference: &format!("{reference}/repay/{holder}"),
                    },
                    now_ms,
                )?;
            }
            c.exec(
                "UPDATE bonds SET state = $2 WHERE id = $1",
                &[id.into(), BondStatus::Repaid.as_str().into()],
            )?;
        }
        Maturity::Default {
            escrow_to_holders,
            stake_to_holders,
            shortfall,
        } => {
            let stake_account = ledger::stake(&b.device);
            for (i, (holder, _)) in b.holdings.iter().enumerate() {
                post(
                    c,
                    Movement {
                        kind: "bond-default",
                        debit: &escrow,
                        credit: &ledger::balance(Unit::Iosd, holder),
                        amount: escrow_to_holders.get(i).copied().unwrap_or(0),
                        reference: &format!("{reference}/escrow/{holder}"),
                    },
                    now_ms,
                )?;
                post(
                    c,
                    Movement {
                        kind: "bond-default",
                        debit: &stake_account,
                        credit: &ledger::balance(Unit::Io, holder),
                        amount: stake_to_holders.get(i).copied().unwrap_or(0),
                        reference: &format!("{reference}/stake/{holder}"),
                    },
                    now_ms,
                )?;
            }
            sync_provider_stake(c, &b.device)?;
            c.exec(
                "UPDATE bonds SET state = $2, shortfall = $3 WHERE id = $1",
                &[
                    id.into(),
                    BondStatus::Defaulted.as_str().into(),
                    int(shortfall)?,
                ],
            )?;
            tracing::warn!(bond = %id.short(), device = %b.device, shortfall, "bond defaulted: its holders took the escrow and the device's stake");
        }
    }
    Ok(())
}

/// Pays `amount` of `unit` that `device` earned out of `from`: through its
/// open bonds (IOSD: coupons owed, then the principal escrow) and its
/// running note (the holders' part, pro rata), the rest to `to` (the
/// device's earnings or rewards account). Each part is an entry whose
/// reference extends `reference`; the rest keeps `reference` itself.
#[allow(clippy::too_many_arguments)]
pub(super) fn pay_device(
    c: &mut dyn Conn,
    kind: &str,
    from: &str,
    device: &NodeId,
    unit: Unit,
    amount: u64,
    to: &str,
    reference: &str,
    now_ms: u64,
) -> Result<(), Error> {
    let mut rest = amount;
    if unit == Unit::Iosd && rest > 0 {
        let bonds = c.query(
            "SELECT id FROM bonds WHERE device = $1 AND state = 'open' AND matures_at > $2 \
             ORDER BY issued_at, id",
            &[device.into(), int(now_ms)?],
        )?;
        for r in &bonds {
            let Some(b) = read_bond(c, &r.hash(0)?)? else {
                continue;
            };
            let w = rules::waterfall(
                rest,
                &BondState {
                    principal: b.sold,
                    coupon_total: b.coupon_total,
                    coupon_paid: b.coupon_paid,
                    escrowed: b.escrowed,
                },
            );
            let weights: Vec<u64> = b.holdings.iter().map(|(_, p)| *p).collect();
            let mut coupon_paid = 0;
            for ((holder, _), part) in b.holdings.iter().zip(rules::pro_rata(w.coupon, &weights)) {
                let posted = post(
                    c,
                    Movement {
                        kind: "coupon",
                        debit: from,
                        credit: &ledger::balance(Unit::Iosd, holder),
                        amount: part,
                        reference: &format!("{reference}/bond/{}/coupon/{holder}", b.id),
                    },
                    now_ms,
                )?;
                if matches!(posted, Posted::New(_)) {
                    coupon_paid += part;
                }
            }
            if coupon_paid > 0 {
                c.exec(
                    "UPDATE bonds SET coupon_paid = coupon_paid + $2 WHERE id = $1",
                    &[(&b.id).into(), int(coupon_paid)?],
                )?;
            }
            post(
                c,
                Movement {
                    kind: "bond-escrow",
                    debit: from,
                    credit: &ledger::bond_escrow(&b.id),
                    amount: w.escrow,
                    reference: &format!("{reference}/bond/{}/escrow", b.id),
                },
                now_ms,
            )?;
            rest = w.rest;
        }
    }
    if rest > 0
        && let Some(n) = c.query_opt(
            "SELECT id FROM notes WHERE device = $1 AND issued_at <= $2 AND ends_at > $2",
            &[device.into(), int(now_ms)?],
        )?
        && let Some(note) = read_note(c, &n.hash(0)?)?
    {
        let weights: Vec<u64> = note.holdings.iter().map(|(_, s)| *s).collect();
        let split = rules::split_note(rest, note.holders_bps, &weights, note.shares)?;
        for ((holder, _), part) in note.holdings.iter().zip(&split.holders) {
            post(
                c,
                Movement {
                    kind: "note-share",
                    debit: from,
                    credit: &ledger::balance(unit, holder),
                    amount: *part,
                    reference: &format!("{reference}/note/{}/{holder}", note.id),
                },
                now_ms,
            )?;
        }
        rest = split.operator;
    }
    post(
        c,
        Movement {
            kind,
            debit: from,
            credit: to,
            amount: rest,
            reference,
        },
        now_ms,
    )?;
    Ok(())
}
