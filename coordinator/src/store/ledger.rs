//! The ledger in the database: posting movements inside the store's
//! transactions, balances, the [`Accounts`] a node sees, and the money
//! movements of the market — escrow refunds, settlement and slashing —
//! whose arithmetic is [`crate::rules::money`]. The chain format and its
//! check are [`crate::ledger`].

use std::collections::{BTreeMap, BTreeSet};

use assay_protocol::{Hash32, NodeId};

use super::sql::{Backend, Conn, Row, Value, int};
use super::sql_store::SqlStore;
use crate::Error;
use crate::config::MarketConfig;
use crate::ledger::{self, Entry, Report, Unit};
use crate::rules::money;
use crate::types::Account;

/// A node's accounts, the devnet faucet, staking, and the ledger itself.
pub trait Accounts {
    /// The devnet faucet: gives the node `amount` of `unit`, once per
    /// `reference` — IO from the `faucet` genesis allocation, IOSD minted by
    /// burning the faucet's IO at the current price (the rule every IOSD
    /// follows). Posts the default genesis first if none was posted.
    ///
    /// # Errors
    ///
    /// [`Error::Precondition`] when the faucet's IO is spent or there is no
    /// fresh IO price; [`Error::Database`].
    fn faucet(
        &self,
        node: &NodeId,
        unit: Unit,
        amount: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Account, Error>;
    /// [`Accounts::faucet`] in IOSD.
    ///
    /// # Errors
    ///
    /// As [`Accounts::faucet`].
    fn mint(
        &self,
        node: &NodeId,
        amount: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Account, Error> {
        self.faucet(node, Unit::Iosd, amount, reference, now_ms)
    }
    /// Moves `amount` µIO from the node's IO balance to its stake, once per
    /// `reference`.
    ///
    /// # Errors
    ///
    /// [`Error::Precondition`] if the balance is too small.
    fn stake(
        &self,
        node: &NodeId,
        amount: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Account, Error>;
    /// The node's accounts.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn account(&self, node: &NodeId) -> Result<Account, Error>;
    /// Ledger entries after `after_seq`, in order.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn ledger_entries(&self, after_seq: u64, limit: u64) -> Result<Vec<Entry>, Error>;
    /// Checks the whole ledger against its chain and the stored balances.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn verify_ledger(&self) -> Result<Report, Error>;
}

impl<B: Backend> Accounts for SqlStore<B> {
    fn faucet(
        &self,
        node: &NodeId,
        unit: Unit,
        amount: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Account, Error> {
        let cfg = self.cfg.economy;
        self.b.write(&mut |c| {
            super::economy::ensure_genesis(c, &super::economy::Genesis::default(), now_ms)?;
            let faucet = ledger::faucet();
            match unit {
                Unit::Io => {
                    post(
                        c,
                        Movement {
                            kind: "faucet",
                            debit: &faucet,
                            credit: &ledger::balance(Unit::Io, node),
                            amount,
                            reference,
                        },
                        now_ms,
                    )?;
                }
                Unit::Iosd => {
                    let price = super::economy::price_in(c, &cfg, now_ms)?;
                    super::economy::convert(
                        c,
                        &faucet,
                        &ledger::balance(Unit::Iosd, node),
                        amount,
                        price,
                        reference,
                        now_ms,
                    )?;
                }
            }
            account_in(c, node)
        })
    }

    fn stake(
        &self,
        node: &NodeId,
        amount: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Account, Error> {
        self.b.write(&mut |c| {
            post(
                c,
                Movement {
                    kind: "stake",
                    debit: &ledger::balance(Unit::Io, node),
                    credit: &ledger::stake(node),
                    amount,
                    reference,
                },
                now_ms,
            )?;
            let a = account_in(c, node)?;
            c.exec(
                "UPDATE providers SET stake = $2 WHERE id = $1",
                &[node.into(), int(a.stake)?],
            )?;
            Ok(a)
        })
    }

    fn account(&self, node: &NodeId) -> Result<Account, Error> {
        self.b.read(&mut |c| account_in(c, node))
    }

    fn ledger_entries(&self, after_seq: u64, limit: u64) -> Result<Vec<Entry>, Error> {
        self.b.read(&mut |c| entries(c, after_seq, limit))
    }

    fn verify_ledger(&self) -> Result<Report, Error> {
        self.b.read(&mut |c| {
            let mut all = Vec::new();
            loop {
                let after = all.last().map_or(0, |e: &Entry| e.seq);
                let page = entries(c, after, 10_000)?;
                if page.is_empty() {
                    break;
                }
                all.extend(page);
            }
            let balances = stored_balances(c)?;
            let head = stored_head(c)?;
            Ok(ledger::verify(&all, Some(&balances), Some(head)))
        })
    }
}

/// A node's accounts, read inside a transaction.
pub(super) fn account_in(c: &mut dyn Conn, node: &NodeId) -> Result<Account, Error> {
    let release = c
        .query_opt(
            "SELECT release_at FROM unbonding WHERE node = $1",
            &[node.into()],
        )?
        .map(|r| r.u64(0))
        .transpose()?;
    Ok(Account {
        balance: non_negative(c, &ledger::balance(Unit::Iosd, node))?,
        stake: non_negative(c, &ledger::stake(node))?,
        earnings: non_negative(c, &ledger::earnings(node))?,
        verifier_earnings: non_negative(c, &ledger::verifier_earnings(node))?,
        io_balance: non_negative(c, &ledger::balance(Unit::Io, node))?,
        unbonding: non_negative(c, &ledger::unbonding(node))?,
        unbonding_release_ms: release,
        rewards: non_negative(c, &ledger::rewards(node))?,
        stake_floor: c
            .query_opt(
                "SELECT stake_floor FROM providers WHERE id = $1",
                &[node.into()],
            )?
            .map(|r| r.u64(0))
            .transpose()?
            .unwrap_or(0),
    })
}

fn non_negative(c: &mut dyn Conn, name: &str) -> Result<u64, Error> {
    let v = balance_of(c, name)?;
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("{name} is negative")))
}

/// A stake account's balance (0 when negative or absent).
pub(super) fn stake_of(c: &mut dyn Conn, node: &NodeId) -> Result<u64, Error> {
    Ok(u64::try_from(balance_of(c, &ledger::stake(node))?).unwrap_or(0))
}

/// Moves what the node's stake lacks of `target` from its balance into
/// its stake; returns the stake now held.
pub(super) fn top_up_stake(
    c: &mut dyn Conn,
    node: &NodeId,
    target: u64,
    now_ms: u64,
) -> Result<u64, Error> {
    let current = stake_of(c, node)?;
    let need = money::stake_top_up(current, target);
    if need > 0 {
        let have = balance_of(c, &ledger::balance(Unit::Io, node))?;
        if have < i64::try_from(need).unwrap_or(i64::MAX) {
            return Err(Error::Precondition(format!(
                "your IO balance of {have} µIO cannot cover a stake of {target} µIO (you hold {current}): \
                 get IO (`assay faucet --unit io` on a devnet) or ask for less stake"
            )));
        }
        // The reference names the ledger's head, so topping up again after
        // a slash (which moved the head) is a new movement; the stake before
        // and after alone repeat when a slash brings the stake back to
        // where it was, and the transfer was skipped as a duplicate.
        let head = c
            .query_one("SELECT seq FROM ledger_head WHERE id = 1", &[])?
            .u64(0)?;
        post(
            c,
            Movement {
                kind: "stake",
                debit: &ledger::balance(Unit::Io, node),
                credit: &ledger::stake(node),
                amount: need,
                reference: &format!("stake/{node}/{head}/{current}/{target}"),
            },
            now_ms,
        )?;
    }
    Ok(current.max(target))
}

/// Gives a failed shard's escrow back to its renter (once per shard).
pub(super) fn refund_shard(
    c: &mut dyn Conn,
    job: &Hash32,
    idx: i64,
    renter: &NodeId,
    amount: u64,
    now_ms: u64,
) -> Result<(), Error> {
    post(
        c,
        Movement {
            kind: "refund",
            debit: &ledger::escrow(job),
            credit: &ledger::balance(Unit::Iosd, renter),
            amount,
            reference: &format!("failed/{job}/{idx}"),
        },
        now_ms,
    )?;
    Ok(())
}

/// What is left of a shard's escrow: the job's escrow per shard less the
/// watchdog fees its attempts paid ([`pay_watchdog_fee`]). A receipt
/// settles, and a failed shard refunds, this much.
pub(super) fn escrow_left(c: &mut dyn Conn, job: &Hash32, idx: i64) -> Result<u64, Error> {
    let r = c.query_one(
        "SELECT j.shard_escrow, s.watchdog_fees FROM shards s JOIN jobs j ON j.id = s.job_id \
         WHERE s.job_id = $1 AND s.idx = $2",
        &[job.into(), Value::Int(idx)],
    )?;
    Ok(r.u64(0)?.saturating_sub(r.u64(1)?))
}

/// Pays the fee of an attempt that the job's own watchdog ended
/// ([`money::watchdog_pay`]: [`MarketConfig::watchdog_fee`], at most what
/// is left of the shard's escrow) to the provider whose slot it held: its
/// part through the device's bonds and note as any pay
/// ([`super::claims::pay_device`]), the protocol fee as on a settlement.
/// The shard's escrow left shrinks by the fee (`shards.watchdog_fees`), so
/// settlement or refund later divides only the rest. References
/// `watchdog/<lease>/{pay,fee}`; the caller charges each lease once (an
/// active lease is given back once). Returns the fee charged.
#[allow(clippy::too_many_arguments)]
pub(super) fn pay_watchdog_fee(
    c: &mut dyn Conn,
    cfg: &MarketConfig,
    lease: &Hash32,
    job: &Hash32,
    idx: i64,
    provider: &NodeId,
    now_ms: u64,
) -> Result<u64, Error> {
    let left = escrow_left(c, job, idx)?;
    let paid_in = c
        .query_one("SELECT paid_in FROM jobs WHERE id = $1", &[job.into()])?
        .text(0)
        .map(Unit::parse)?
        .ok_or_else(|| Error::Corrupt(format!("job {job}: unknown payment unit")))?;
    let (fee_bps, fee_to) = match paid_in {
        Unit::Iosd => (cfg.fee_bps, ledger::FEES.to_string()),
        Unit::Io => (cfg.economy.fee_bps_io, ledger::burned(Unit::Iosd)),
    };
    let w = money::watchdog_pay(cfg.watchdog_fee, left, fee_bps);
    if w.payment == 0 {
        return Ok(0);
    }
    let from = ledger::escrow(job);
    super::claims::pay_device(
        c,
        "pay",
        &from,
        provider,
        Unit::Iosd,
        w.provider(),
        &ledger::earnings(provider),
        &format!("watchdog/{lease}/pay"),
        now_ms,
    )?;
    post(
        c,
        Movement {
            kind: "fee",
            debit: &from,
            credit: &fee_to,
            amount: w.fee,
            reference: &format!("watchdog/{lease}/fee"),
        },
        now_ms,
    )?;
    c.exec(
        "UPDATE shards SET watchdog_fees = watchdog_fees + $3 WHERE job_id = $1 AND idx = $2",
        &[job.into(), Value::Int(idx), int(w.payment)?],
    )?;
    Ok(w.payment)
}

/// Settles a receipt ([`money::settle`]): the provider's payment less the
/// protocol fee, the fee, the verifier's fee when a verifier checked it, and
/// the rest of the shard's escrow back to the renter. The fee of a job paid
/// in IOSD goes to `iosd/fees` at [`MarketConfig::fee_bps`]; of a job paid
/// in IO it is burned, at [`EconomyConfig::fee_bps_io`](crate::config::EconomyConfig).
/// The receipt's work units count toward the provider's block reward in
/// this reward epoch. Returns the payment.
pub(super) fn pay_out(
    c: &mut dyn Conn,
    receipt: &Hash32,
    cfg: &MarketConfig,
    verifier: Option<&NodeId>,
    now_ms: u64,
) -> Result<u64, Error> {
    let row = c.query_one(
        &format!(
            "SELECT {PAY_COLS} FROM receipts r JOIN jobs j ON j.id = r.job_id WHERE r.id = $1"
        ),
        &[receipt.into()],
    )?;
    let mut batch = Batch::open(c, now_ms)?;
    let paid = pay_out_row(c, receipt, &row, 0, cfg, verifier, now_ms, &mut batch)?;
    batch.close(c, cfg, now_ms)?;
    Ok(paid)
}

/// What settling a batch of receipts reads or writes once rather than per
/// receipt: the devices whose pay goes through a note or a bond (the rest
/// are paid directly), and the work units each provider earns toward its
/// block reward (one write per provider at [`Batch::close`]).
pub(super) struct Batch {
    claimed: BTreeSet<NodeId>,
    work: BTreeMap<NodeId, u64>,
}

impl Batch {
    /// Reads the devices with an open bond or a running note.
    pub(super) fn open(c: &mut dyn Conn, now_ms: u64) -> Result<Batch, Error> {
        let claimed = c
            .query(
                "SELECT device FROM bonds WHERE state = 'open' AND matures_at > $1 \
                 UNION SELECT device FROM notes WHERE issued_at <= $1 AND ends_at > $1",
                &[int(now_ms)?],
            )?
            .iter()
            .map(|r| r.node(0))
            .collect::<Result<_, Error>>()?;
        Ok(Batch {
            claimed,
            work: BTreeMap::new(),
        })
    }

    /// Counts the batch's work units toward each provider's reward.
    pub(super) fn close(
        self,
        c: &mut dyn Conn,
        cfg: &MarketConfig,
        now_ms: u64,
    ) -> Result<(), Error> {
        for (provider, units) in self.work {
            super::economy::count_work(c, &cfg.economy, &provider, units, now_ms)?;
        }
        Ok(())
    }
}

/// The columns [`pay_out_row`] reads, from `receipts r JOIN jobs j`.
pub(super) const PAY_COLS: &str =
    "r.job_id, r.provider, r.units, r.price, r.escrow, j.renter, j.paid_in";

/// [`pay_out`] for a receipt whose [`PAY_COLS`] the caller already read,
/// starting at column `at` of `row` (settling a batch reads them all in one
/// query instead of one per receipt), within `batch`.
#[allow(clippy::too_many_arguments)]
pub(super) fn pay_out_row(
    c: &mut dyn Conn,
    receipt: &Hash32,
    row: &Row,
    at: usize,
    cfg: &MarketConfig,
    verifier: Option<&NodeId>,
    now_ms: u64,
    batch: &mut Batch,
) -> Result<u64, Error> {
    let (job, provider, units, price, escrow, renter) = (
        row.hash(at)?,
        row.node(at + 1)?,
        row.u64(at + 2)?,
        row.u64(at + 3)?,
        row.u64(at + 4)?,
        row.node(at + 5)?,
    );
    let paid_in = Unit::parse(row.text(at + 6)?)
        .ok_or_else(|| Error::Corrupt(format!("job {job}: unknown payment unit")))?;
    let (fee_bps, fee_to) = match paid_in {
        Unit::Iosd => (cfg.fee_bps, ledger::FEES.to_string()),
        Unit::Io => (cfg.economy.fee_bps_io, ledger::burned(Unit::Iosd)),
    };
    let s = money::settle(price, units, escrow, fee_bps, verifier.is_some());
    let from = ledger::escrow(&job);
    let mut moves = Vec::with_capacity(4);
    if batch.claimed.contains(&provider) {
        // The provider's pay goes through the device's bonds and note.
        super::claims::pay_device(
            c,
            "pay",
            &from,
            &provider,
            Unit::Iosd,
            s.provider(),
            &ledger::earnings(&provider),
            &format!("settle/{receipt}/pay"),
            now_ms,
        )?;
    } else {
        moves.push(("pay", ledger::earnings(&provider), s.provider()));
    }
    moves.push(("fee", fee_to, s.fee));
    if let Some(v) = verifier {
        moves.push(("verify", ledger::verifier_earnings(v), s.verifier_fee));
    }
    moves.push(("refund", ledger::balance(Unit::Iosd, &renter), s.refund));
    for (kind, to, amount) in moves {
        post(
            c,
            Movement {
                kind,
                debit: &from,
                credit: &to,
                amount,
                reference: &format!("settle/{receipt}/{kind}"),
            },
            now_ms,
        )?;
    }
    let n = c.exec(
        "UPDATE receipts SET settled_at = $2, paid = $3 WHERE id = $1 AND settled_at IS NULL",
        &[receipt.into(), int(now_ms)?, int(s.payment)?],
    )?;
    if n > 0 {
        *batch.work.entry(provider).or_default() += units.max(1);
    }
    Ok(s.payment)
}

/// Takes [`MarketConfig::slash_bps`] of `node`'s stake (its unbonding IO first goes back
/// into the stake: a cooldown is no escape) and shares it out
/// ([`money::slash`]): each `(account, bps)` gets its share of the slash,
/// `rest_to` the remainder. Returns the amount slashed.
pub(super) fn slash(
    c: &mut dyn Conn,
    cfg: &MarketConfig,
    node: &NodeId,
    shares: &[(String, u32)],
    rest_to: &str,
    reference: &str,
    now_ms: u64,
) -> Result<u64, Error> {
    let stake_acct = ledger::stake(node);
    super::economy::cancel_unbonding(c, node, reference, now_ms)?;
    super::economy::mark_failed(c, &cfg.economy, node, now_ms)?;
    let stake = stake_of(c, node)?;
    let bps: Vec<u32> = shares.iter().map(|(_, bps)| *bps).collect();
    let split = money::slash(stake, cfg.slash_bps, &bps);
    for (i, ((to, _), amount)) in shares.iter().zip(&split.shares).enumerate() {
        post(
            c,
            Movement {
                kind: "slash",
                debit: &stake_acct,
                credit: to,
                amount: *amount,
                reference: &format!("{reference}/{i}"),
            },
            now_ms,
        )?;
    }
    post(
        c,
        Movement {
            kind: "slash",
            debit: &stake_acct,
            credit: rest_to,
            amount: split.rest,
            reference: &format!("{reference}/rest"),
        },
        now_ms,
    )?;
    let now_stake = stake_of(c, node)?;
    c.exec(
        "UPDATE providers SET stake = $2 WHERE id = $1",
        &[node.into(), int(now_stake)?],
    )?;
    Ok(split.slashed)
}

/// Outcome of [`post`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Posted {
    /// A new entry.
    New(u64),
    /// The reference existed: nothing changed.
    Duplicate,
    /// A zero amount: nothing to record.
    Nothing,
}

/// The movement to post.
#[derive(Debug, Clone, Copy)]
pub(super) struct Movement<'a> {
    /// Entry kind.
    pub kind: &'a str,
    /// Debited account.
    pub debit: &'a str,
    /// Credited account.
    pub credit: &'a str,
    /// Base units of the unit both accounts hold.
    pub amount: u64,
    /// Unique reference.
    pub reference: &'a str,
}

/// Posts one movement inside the caller's transaction: locks the chain head
/// (so entries are strictly ordered even across PostgreSQL replicas),
/// refuses a debit below zero, updates both balances and appends the entry.
///
/// # Errors
///
/// [`Error::Precondition`] if the debited account lacks the funds (the
/// caller's transaction must then be rolled back, which returning the error
/// does); [`Error::Database`].
pub(super) fn post(c: &mut dyn Conn, m: Movement<'_>, now_ms: u64) -> Result<Posted, Error> {
    if m.amount == 0 {
        return Ok(Posted::Nothing);
    }
    if m.debit == m.credit {
        return Err(Error::Invalid(format!(
            "a movement from {} to itself",
            m.debit
        )));
    }
    let unit = Unit::of_account(m.debit)
        .filter(|u| Unit::of_account(m.credit) == Some(*u))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "a movement from {} to {}: both accounts must hold the same unit",
                m.debit, m.credit
            ))
        })?;
    let head = c.query_one(
        &format!(
            "SELECT seq, hash FROM ledger_head WHERE id = 1{}",
            c.dialect().for_update()
        ),
        &[],
    )?;
    if c.query_opt(
        "SELECT seq FROM ledger WHERE reference = $1",
        &[m.reference.into()],
    )?
    .is_some()
    {
        return Ok(Posted::Duplicate);
    }
    let seq = head.u64(0)? + 1;
    let prev: [u8; 32] = head.hash(1)?.0;
    let amount = int(m.amount)?;
    if m.debit == ledger::issuance(unit) {
        ensure_account(c, m.debit)?;
        c.exec(
            "UPDATE accounts SET balance = balance - $2 WHERE name = $1",
            &[m.debit.into(), amount.clone()],
        )?;
    } else {
        let n = c.exec(
            "UPDATE accounts SET balance = balance - $2 WHERE name = $1 AND balance >= $2",
            &[m.debit.into(), amount.clone()],
        )?;
        if n == 0 {
            let have = c
                .query_opt(
                    "SELECT balance FROM accounts WHERE name = $1",
                    &[m.debit.into()],
                )?
                .map(|r| r.i64(0))
                .transpose()?
                .unwrap_or(0);
            return Err(Error::Precondition(format!(
                "{} holds {have} µ{} but {} µ{} are needed ({})",
                m.debit,
                unit.symbol(),
                m.amount,
                unit.symbol(),
                m.kind
            )));
        }
    }
    ensure_account(c, m.credit)?;
    c.exec(
        "UPDATE accounts SET balance = balance + $2 WHERE name = $1",
        &[m.credit.into(), amount.clone()],
    )?;
    let mut entry = Entry {
        seq,
        format: ledger::FORMAT,
        unit,
        kind: m.kind.to_string(),
        debit: m.debit.to_string(),
        credit: m.credit.to_string(),
        amount: m.amount,
        reference: m.reference.to_string(),
        at_ms: now_ms,
        prev_hash: prev,
        hash: [0; 32],
    };
    entry.hash = entry.computed_hash();
    let hash = entry.hash;
    c.exec(
        "INSERT INTO ledger (seq, kind, debit, credit, amount, reference, at_ms, prev_hash, hash, unit) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            int(seq)?,
            m.kind.into(),
            m.debit.into(),
            m.credit.into(),
            amount,
            m.reference.into(),
            int(now_ms)?,
            Value::Blob(prev.to_vec()),
            Value::Blob(hash.to_vec()),
            unit.as_str().into(),
        ],
    )?;
    c.exec(
        "UPDATE ledger_head SET seq = $1, hash = $2 WHERE id = 1",
        &[int(seq)?, Value::Blob(hash.to_vec())],
    )?;
    Ok(Posted::New(seq))
}

fn ensure_account(c: &mut dyn Conn, name: &str) -> Result<(), Error> {
    c.exec(
        "INSERT INTO accounts (name, balance) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
        &[name.into()],
    )?;
    Ok(())
}

/// An account's balance (0 if it never existed).
///
/// # Errors
///
/// [`Error::Database`].
pub(super) fn balance_of(c: &mut dyn Conn, name: &str) -> Result<i64, Error> {
    Ok(c.query_opt(
        "SELECT balance FROM accounts WHERE name = $1",
        &[name.into()],
    )?
    .map(|r| r.i64(0))
    .transpose()?
    .unwrap_or(0))
}

/// Entries with `seq > after`, in order, at most `limit`.
///
/// # Errors
///
/// [`Error::Database`], [`Error::Corrupt`].
pub(super) fn entries(c: &mut dyn Conn, after: u64, limit: u64) -> Result<Vec<Entry>, Error> {
    let rows = c.query(
        "SELECT seq, kind, debit, credit, amount, reference, at_ms, prev_hash, hash, unit \
         FROM ledger WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[int(after)?, int(limit)?],
    )?;
    rows.iter()
        .map(|r| {
            // NULL: an entry of the single-unit ledger (format 1, IOSD).
            let (format, unit) = match r.opt_text(9)? {
                None => (1, Unit::Iosd),
                Some(u) => (
                    ledger::FORMAT,
                    Unit::parse(u).ok_or_else(|| Error::Corrupt(format!("ledger unit {u:?}")))?,
                ),
            };
            Ok(Entry {
                seq: r.u64(0)?,
                format,
                unit,
                kind: r.text(1)?.to_string(),
                debit: r.text(2)?.to_string(),
                credit: r.text(3)?.to_string(),
                amount: r.u64(4)?,
                reference: r.text(5)?.to_string(),
                at_ms: r.u64(6)?,
                prev_hash: r.hash(7)?.0,
                hash: r.hash(8)?.0,
            })
        })
        .collect()
}

/// Every stored balance.
///
/// # Errors
///
/// [`Error::Database`].
pub(super) fn stored_balances(c: &mut dyn Conn) -> Result<BTreeMap<String, i128>, Error> {
    let rows = c.query("SELECT name, balance FROM accounts", &[])?;
    rows.iter()
        .map(|r| Ok((r.text(0)?.to_string(), i128::from(r.i64(1)?))))
        .collect()
}

/// The stored chain head `(seq, hash)`.
///
/// # Errors
///
/// [`Error::Database`].
pub(super) fn stored_head(c: &mut dyn Conn) -> Result<(u64, [u8; 32]), Error> {
    let r = c.query_one("SELECT seq, hash FROM ledger_head WHERE id = 1", &[])?;
    Ok((r.u64(0)?, r.hash(1)?.0))
}

#[cfg(test)]
mod stake_tests {
    use super::*;
    use crate::store::sqlite::Sqlite;

    /// Found: the top-up's reference named only the stake before and
    /// after, so after a slash back to zero the same top-up was a
    /// "duplicate", skipped, and the provider counted as staked.
    #[test]
    fn a_stake_topped_up_again_after_a_slash_is_moved_again() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SqlStore::open(
            Sqlite::open(&dir.path().join("db.sqlite")).expect("sqlite"),
            MarketConfig::default(),
        )
        .expect("store");
        let node = assay_protocol::NodeKey::from_seed([5; 32]).id();
        let cfg = MarketConfig::default();
        store
            .b
            .write(&mut |c| {
                post(
                    c,
                    Movement {
                        kind: "genesis",
                        debit: &ledger::issuance(Unit::Io),
                        credit: &ledger::balance(Unit::Io, &node),
                        amount: 1_000,
                        reference: "test/mint",
                    },
                    1,
                )?;
                assert_eq!(top_up_stake(c, &node, 100, 2)?, 100);
                assert_eq!(stake_of(c, &node)?, 100);
                // Slashed to nothing: all of it burned.
                let mut burned = cfg.clone();
                burned.slash_bps = 10_000;
                slash(
                    c,
                    &burned,
                    &node,
                    &[],
                    &ledger::burned(Unit::Io),
                    "test/slash",
                    3,
                )?;
                assert_eq!(stake_of(c, &node)?, 0);
                assert_eq!(top_up_stake(c, &node, 100, 4)?, 100);
                assert_eq!(stake_of(c, &node)?, 100, "the second top-up moved IO");
                assert_eq!(
                    balance_of(c, &ledger::balance(Unit::Io, &node))?,
                    800,
                    "two top-ups paid"
                );
                Ok(())
            })
            .expect("ledger");
    }
}
