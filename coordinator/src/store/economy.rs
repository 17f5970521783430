//! The economy in the database: genesis, the IO price feed, converting IO
//! into IOSD, unstaking with a cooldown, and the reward epochs. The
//! arithmetic is [`crate::rules::emission`], [`crate::rules::rewards`] and
//! [`crate::ledger::accounts`]; the invariants it keeps are checked by
//! [`crate::ledger::supply`].

use assay_protocol::oracle::PriceReport;
use assay_protocol::{NodeId, Signature};
use serde::{Deserialize, Serialize};

use super::ledger::{Movement, account_in, balance_of, post, stake_of};
use super::sql::{Backend, Conn, Value, int};
use super::sql_store::SqlStore;
use crate::Error;
use crate::config::{EconomyConfig, PriceSource};
use crate::ledger::supply::conversion_reference;
use crate::ledger::{self, GENESIS_ALLOCATION, REWARD_POOL, Supply, Unit};
use crate::rules::{emission, rewards};
use crate::types::Account;

/// IO's genesis allocation: named accounts and their µIO, summing to
/// exactly [`GENESIS_ALLOCATION`] (the reward pool is added by genesis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// `(account name, µIO)`: names of `[a-z0-9-]`, e.g. `treasury`.
    pub allocations: Vec<(String, u64)>,
}

impl Default for Genesis {
    /// The allocation a coordinator posts when given none: 200M treasury,
    /// 150M ecosystem, 100M contributors, 50M faucet (devnets hand it out).
    fn default() -> Self {
        let io = |n: u64| n * ledger::BASE;
        Genesis {
            allocations: vec![
                ("treasury".into(), io(200_000_000)),
                ("ecosystem".into(), io(150_000_000)),
                ("contributors".into(), io(100_000_000)),
                ("faucet".into(), io(50_000_000)),
            ],
        }
    }
}

impl Genesis {
    /// Reads a genesis file: `{"allocations": {"treasury": "200000000", …}}`
    /// with amounts in IO as decimal strings (or integers).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming what is wrong: not JSON, a bad name or
    /// amount, or a total other than 500,000,000 IO.
    pub fn from_json(text: &str) -> Result<Genesis, Error> {
        #[derive(Deserialize)]
        struct File {
            allocations: std::collections::BTreeMap<String, serde_json::Value>,
        }
        let f: File = serde_json::from_str(text).map_err(|e| {
            Error::Invalid(format!(
                "genesis file: {e} (expected {{\"allocations\": {{\"treasury\": \"200000000\", …}}}})"
            ))
        })?;
        let mut allocations = Vec::with_capacity(f.allocations.len());
        for (name, v) in f.allocations {
            let text = match &v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => {
                    return Err(Error::Invalid(format!(
                        "genesis allocation {name:?}: write the IO amount as a string or integer"
                    )));
                }
            };
            let amount = ledger::accounts::parse_amount(&text)
                .map_err(|e| Error::Invalid(format!("genesis allocation {name:?}: {e}")))?;
            allocations.push((name, amount));
        }
        let g = Genesis { allocations };
        g.validate()?;
        Ok(g)
    }

    /// Checks names and the total.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`].
    pub fn validate(&self) -> Result<(), Error> {
        let mut total: u128 = 0;
        for (name, amount) in &self.allocations {
            if name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(Error::Invalid(format!(
                    "genesis account name {name:?}: use 1–64 of a-z, 0-9 and -"
                )));
            }
            if *amount == 0 {
                return Err(Error::Invalid(format!(
                    "genesis allocation {name:?} is zero: leave it out"
                )));
            }
            total += u128::from(*amount);
        }
        if total != u128::from(GENESIS_ALLOCATION) {
            return Err(Error::Invalid(format!(
                "genesis allocates {} IO; it must allocate exactly {} IO (the other {} IO are the reward pool)",
                ledger::accounts::format_amount(u64::try_from(total).unwrap_or(u64::MAX)),
                ledger::accounts::format_amount(GENESIS_ALLOCATION),
                ledger::accounts::format_amount(REWARD_POOL),
            )));
        }
        Ok(())
    }
}

/// The IO price in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// µIOSD per IO.
    pub micro_iosd_per_io: u64,
    /// `oracle` or `fixed`.
    pub source: &'static str,
    /// The oracle's key (oracle prices).
    pub oracle: Option<NodeId>,
    /// The report's round (0 for a fixed price).
    pub round: u64,
    /// When the oracle observed it (0 for a fixed price).
    pub at_ms: u64,
}

/// One provider's part of a reward epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardPayout {
    /// The provider.
    pub provider: NodeId,
    /// Work units of its receipts settled in the epoch.
    pub work_units: u64,
    /// Milliseconds online in the epoch.
    pub uptime_ms: u64,
    /// Slashed or failed a challenge in the epoch (paid nothing).
    pub failed: bool,
    /// µIO paid.
    pub amount: u64,
}

/// A closed reward epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardEpoch {
    /// Its number, from genesis.
    pub epoch: u64,
    /// Start, Unix ms.
    pub start_ms: u64,
    /// End (exclusive), Unix ms.
    pub end_ms: u64,
    /// What the schedule gives the epoch, µIO.
    pub scheduled: u64,
    /// What it emitted (= paid; 0 when no provider was eligible, and the
    /// schedule's part stays in the pool), µIO.
    pub emitted: u64,
    /// Providers with work or uptime in it.
    pub nominated: u64,
    /// Providers paid.
    pub paid: u64,
    /// Providers slashed or failing a challenge in it.
    pub failed: u64,
    /// When it was closed, Unix ms.
    pub closed_at: u64,
    /// Each nominated provider.
    pub payouts: Vec<RewardPayout>,
}

/// The economy: genesis, the price, supply, unstaking and reward epochs.
pub trait Economy {
    /// Posts IO's genesis — each allocation, then the reward pool — and
    /// starts the reward schedule now. Idempotent: a database that has a
    /// genesis keeps it (and one that differs from `genesis` is an error).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a bad allocation; [`Error::Precondition`]
    /// when the database holds another genesis; [`Error::Database`].
    fn post_genesis(&self, genesis: &Genesis, now_ms: u64) -> Result<u64, Error>;
    /// Takes a price report signed by the configured oracle.
    ///
    /// # Errors
    ///
    /// [`Error::PermissionDenied`] when this coordinator has no oracle or
    /// the signature is not the oracle's; [`Error::Precondition`] for a
    /// stale report, a round not after the last, or a time in the future;
    /// [`Error::Invalid`] for a zero price.
    fn post_price(
        &self,
        report: &PriceReport,
        signature: &Signature,
        now_ms: u64,
    ) -> Result<Price, Error>;
    /// The IO price now.
    ///
    /// # Errors
    ///
    /// [`Error::Precondition`] when there is no fresh price.
    fn price(&self, now_ms: u64) -> Result<Price, Error>;
    /// Both units' supply, from the stored balances.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn supply(&self) -> Result<Supply, Error>;
    /// Moves `amount` µIO of the node's stake into its cooldown; it becomes
    /// spendable after [`EconomyConfig::unstake_cooldown_ms`] (each unstake
    /// restarts the cooldown of everything unbonding).
    ///
    /// # Errors
    ///
    /// [`Error::Precondition`] when the stake is smaller.
    fn unstake(
        &self,
        node: &NodeId,
        amount: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Account, Error>;
    /// Returns unbonded IO whose cooldown is over; how many nodes.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn release_unbonded(&self, now_ms: u64) -> Result<u64, Error>;
    /// Closes the reward epochs that are over: emits and pays each one.
    /// Returns how many were closed.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn close_reward_epochs(&self, now_ms: u64) -> Result<u64, Error>;
    /// Closed reward epochs, newest first, before `before` (all when `None`).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn reward_epochs(&self, before: Option<u64>, limit: u32) -> Result<Vec<RewardEpoch>, Error>;
}

impl<B: Backend> Economy for SqlStore<B> {
    fn post_genesis(&self, genesis: &Genesis, now_ms: u64) -> Result<u64, Error> {
        genesis.validate()?;
        self.b.write(&mut |c| {
            if !ensure_genesis(c, genesis, now_ms)? {
                let rows = c.query(
                    "SELECT credit, amount FROM ledger WHERE kind = 'genesis' AND credit <> $1",
                    &[ledger::UNEMITTED.into()],
                )?;
                let mut have: Vec<(String, u64)> = rows
                    .iter()
                    .map(|r| Ok((r.text(0)?.to_string(), r.u64(1)?)))
                    .collect::<Result<_, Error>>()?;
                let mut want: Vec<(String, u64)> = genesis
                    .allocations
                    .iter()
                    .map(|(n, a)| (ledger::genesis(n), *a))
                    .collect();
                have.sort();
                want.sort();
                if have != want {
                    return Err(Error::Precondition(
                        "this database already holds a different genesis: start a new data directory to use this genesis file".into(),
                    ));
                }
            }
            genesis_ms(c)?.ok_or_else(|| Error::Corrupt("genesis without a start time".into()))
        })
    }

    fn post_price(
        &self,
        report: &PriceReport,
        signature: &Signature,
        now_ms: u64,
    ) -> Result<Price, Error> {
        let PriceSource::Oracle { key, max_age_ms } = self.cfg.economy.price else {
            return Err(Error::PermissionDenied(
                "this coordinator uses a fixed IO price and takes no oracle reports (start it with --oracle-key)".into(),
            ));
        };
        report.verify(&key, signature).map_err(|_| {
            Error::PermissionDenied(format!(
                "the price report is not signed by this coordinator's oracle {key}: sign it with the oracle's key"
            ))
        })?;
        if report.micro_iosd_per_io == 0 {
            return Err(Error::Invalid(
                "an IO price of 0 µIOSD cannot be used".into(),
            ));
        }
        if report.at_ms > now_ms.saturating_add(60_000) {
            return Err(Error::Precondition(format!(
                "the price report is dated {} ms in the future: check the oracle's clock",
                report.at_ms - now_ms
            )));
        }
        if now_ms.saturating_sub(report.at_ms) > max_age_ms {
            return Err(Error::Precondition(format!(
                "the price report is stale: observed {} s ago, older than the {} s this coordinator accepts",
                now_ms.saturating_sub(report.at_ms) / 1000,
                max_age_ms / 1000
            )));
        }
        self.b.write(&mut |c| {
            let last = c
                .query_one("SELECT COALESCE(MAX(round), 0) FROM prices", &[])?
                .u64(0)?;
            if report.round <= last {
                return Err(Error::Precondition(format!(
                    "price round {} is not after the last round {last}: rounds must increase",
                    report.round
                )));
            }
            c.exec(
                "INSERT INTO prices (round, price, at_ms, oracle, signature, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    int(report.round)?,
                    int(report.micro_iosd_per_io)?,
                    int(report.at_ms)?,
                    (&key).into(),
                    Value::Blob(signature.0.to_vec()),
                    int(now_ms)?,
                ],
            )?;
            Ok(())
        })?;
        Ok(Price {
            micro_iosd_per_io: report.micro_iosd_per_io,
            source: "oracle",
            oracle: Some(key),
            round: report.round,
            at_ms: report.at_ms,
        })
    }

    fn price(&self, now_ms: u64) -> Result<Price, Error> {
        let cfg = self.cfg.economy;
        self.b.read(&mut |c| current_price(c, &cfg, now_ms))
    }

    fn supply(&self) -> Result<Supply, Error> {
        self.b.read(&mut |c| {
            let sum = |c: &mut dyn Conn, sql: &str, p: &[Value]| -> Result<u64, Error> {
                Ok(u64::try_from(c.query_one(sql, p)?.opt_i64(0)?.unwrap_or(0)).unwrap_or(0))
            };
            let mut s = Supply::default();
            let neg = |v: i64| u64::try_from(-v).unwrap_or(0);
            let pos = |v: i64| u64::try_from(v).unwrap_or(0);
            s.io.cap = neg(balance_of(c, &ledger::issuance(Unit::Io))?);
            s.io.genesis = sum(
                c,
                "SELECT CAST(SUM(amount) AS BIGINT) FROM ledger WHERE kind = 'genesis' AND credit <> $1",
                &[ledger::UNEMITTED.into()],
            )?;
            s.io.emitted = sum(
                c,
                "SELECT CAST(SUM(amount) AS BIGINT) FROM ledger WHERE debit = $1",
                &[ledger::UNEMITTED.into()],
            )?;
            s.io.unemitted = pos(balance_of(c, ledger::UNEMITTED)?);
            s.io.burned = pos(balance_of(c, &ledger::burned(Unit::Io))?);
            s.io.held = sum(
                c,
                "SELECT CAST(SUM(balance) AS BIGINT) FROM accounts WHERE name LIKE 'io/%' AND name NOT IN ($1, $2, $3)",
                &[
                    ledger::issuance(Unit::Io).into(),
                    ledger::UNEMITTED.into(),
                    ledger::burned(Unit::Io).into(),
                ],
            )?;
            s.iosd.minted = neg(balance_of(c, &ledger::issuance(Unit::Iosd))?);
            s.iosd.burned = pos(balance_of(c, &ledger::burned(Unit::Iosd))?);
            s.iosd.supply = sum(
                c,
                "SELECT CAST(SUM(balance) AS BIGINT) FROM accounts WHERE name LIKE 'iosd/%' AND name NOT IN ($1, $2)",
                &[
                    ledger::issuance(Unit::Iosd).into(),
                    ledger::burned(Unit::Iosd).into(),
                ],
            )?;
            s.iosd.legacy_minted = sum(
                c,
                "SELECT CAST(SUM(amount) AS BIGINT) FROM ledger WHERE unit IS NULL AND debit = 'issuance'",
                &[],
            )?;
            Ok(s)
        })
    }

    fn unstake(
        &self,
        node: &NodeId,
        amount: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Account, Error> {
        if amount == 0 {
            return Err(Error::Invalid("unstake a positive amount of µIO".into()));
        }
        let release_at = now_ms.saturating_add(self.cfg.economy.unstake_cooldown_ms);
        self.b.write(&mut |c| {
            let have = stake_of(c, node)?;
            if have < amount {
                return Err(Error::Precondition(format!(
                    "you stake {have} µIO and cannot unstake {amount} µIO"
                )));
            }
            post(
                c,
                Movement {
                    kind: "unstake",
                    debit: &ledger::stake(node),
                    credit: &ledger::unbonding(node),
                    amount,
                    reference,
                },
                now_ms,
            )?;
            c.exec(
                "INSERT INTO unbonding (node, release_at) VALUES ($1, $2) \
                 ON CONFLICT (node) DO UPDATE SET release_at = excluded.release_at",
                &[node.into(), int(release_at)?],
            )?;
            sync_provider_stake(c, node)?;
            account_in(c, node)
        })
    }

    fn release_unbonded(&self, now_ms: u64) -> Result<u64, Error> {
        self.b.write(&mut |c| {
            let due = c.query(
                "SELECT node, release_at FROM unbonding WHERE release_at <= $1 LIMIT 500",
                &[int(now_ms)?],
            )?;
            for r in &due {
                let (node, at) = (r.node(0)?, r.u64(1)?);
                let amount = u64::try_from(balance_of(c, &ledger::unbonding(&node))?).unwrap_or(0);
                post(
                    c,
                    Movement {
                        kind: "unbond",
                        debit: &ledger::unbonding(&node),
                        credit: &ledger::balance(Unit::Io, &node),
                        amount,
                        reference: &format!("unbond/{node}/{at}"),
                    },
                    now_ms,
                )?;
                c.exec("DELETE FROM unbonding WHERE node = $1", &[(&node).into()])?;
            }
            Ok(due.len() as u64)
        })
    }

    fn close_reward_epochs(&self, now_ms: u64) -> Result<u64, Error> {
        let cfg = self.cfg.economy;
        let epoch_ms = cfg.reward_epoch_ms.max(1);
        self.b.write(&mut |c| {
            let Some(start) = genesis_ms(c)? else {
                return Ok(0);
            };
            let next = c
                .query_one("SELECT COALESCE(MAX(epoch) + 1, 0) FROM reward_epochs", &[])?
                .u64(0)?;
            let mut closed = 0;
            for n in next..next.saturating_add(200) {
                let end = start.saturating_add(n.saturating_add(1).saturating_mul(epoch_ms));
                if end > now_ms {
                    break;
                }
                close_epoch(c, &cfg, n, end - epoch_ms, end, now_ms)?;
                closed += 1;
            }
            Ok(closed)
        })
    }

    fn reward_epochs(&self, before: Option<u64>, limit: u32) -> Result<Vec<RewardEpoch>, Error> {
        self.b.read(&mut |c| {
            let rows = c.query(
                "SELECT epoch, start_ms, end_ms, scheduled, emitted, nominated, paid, failed, closed_at \
                 FROM reward_epochs WHERE epoch < $1 ORDER BY epoch DESC LIMIT $2",
                &[
                    int(before.unwrap_or(i64::MAX as u64))?,
                    Value::Int(i64::from(limit.clamp(1, 1000))),
                ],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let epoch = r.u64(0)?;
                let payouts = c
                    .query(
                        "SELECT provider, work_units, uptime_ms, failed, amount FROM reward_payouts \
                         WHERE epoch = $1 ORDER BY amount DESC, provider",
                        &[int(epoch)?],
                    )?
                    .iter()
                    .map(|p| {
                        Ok(RewardPayout {
                            provider: p.node(0)?,
                            work_units: p.u64(1)?,
                            uptime_ms: p.u64(2)?,
                            failed: p.i64(3)? != 0,
                            amount: p.u64(4)?,
                        })
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                out.push(RewardEpoch {
                    epoch,
                    start_ms: r.u64(1)?,
                    end_ms: r.u64(2)?,
                    scheduled: r.u64(3)?,
                    emitted: r.u64(4)?,
                    nominated: r.u64(5)?,
                    paid: r.u64(6)?,
                    failed: r.u64(7)?,
                    closed_at: r.u64(8)?,
                    payouts,
                });
            }
            Ok(out)
        })
    }
}

/// Emits and pays reward epoch `n` ([`rewards::split`]); a replica that
/// finds it closed does nothing.
fn close_epoch(
    c: &mut dyn Conn,
    cfg: &EconomyConfig,
    n: u64,
    start_ms: u64,
    end_ms: u64,
    now_ms: u64,
) -> Result<(), Error> {
    let claimed = c.exec(
        "INSERT INTO reward_epochs (epoch, start_ms, end_ms, scheduled, emitted, nominated, paid, failed, closed_at) \
         VALUES ($1, $2, $3, 0, 0, 0, 0, 0, $4) ON CONFLICT (epoch) DO NOTHING",
        &[int(n)?, int(start_ms)?, int(end_ms)?, int(now_ms)?],
    )?;
    if claimed == 0 {
        return Ok(());
    }
    let scheduled = emission::epoch_emission(n, cfg.reward_epoch_ms, cfg.hour_ms);
    let pool = u64::try_from(balance_of(c, ledger::UNEMITTED)?).unwrap_or(0);
    let rows = c.query(
        "SELECT s.provider, s.work_units, s.uptime_ms, s.failed, p.hardware_state, p.suspended \
         FROM reward_shares s LEFT JOIN providers p ON p.id = s.provider \
         WHERE s.epoch = $1 ORDER BY s.provider",
        &[int(n)?],
    )?;
    let mut who = Vec::with_capacity(rows.len());
    let mut candidates = Vec::with_capacity(rows.len());
    for r in &rows {
        let hardware = r.opt_text(4)?.unwrap_or("unchecked");
        who.push(r.node(0)?);
        candidates.push(rewards::Candidate {
            work_units: r.u64(1)?,
            uptime_ms: r.u64(2)?,
            // A provider suspended for a proven cheat earns nothing either.
            failed: r.i64(3)? != 0 || r.opt_i64(5)?.unwrap_or(0) != 0,
            hardware_ok: matches!(hardware, "passed" | "unchallenged"),
        });
    }
    let amounts = rewards::split(scheduled.min(pool), &candidates, cfg.reward_work_bps);
    let emitted: u64 = amounts.iter().sum();
    let account = ledger::epoch(n);
    post(
        c,
        Movement {
            kind: "emit",
            debit: ledger::UNEMITTED,
            credit: &account,
            amount: emitted,
            reference: &format!("emit/{n}"),
        },
        now_ms,
    )?;
    for ((node, cand), amount) in who.iter().zip(&candidates).zip(&amounts) {
        // Through the device's note, if it sold its cash flow.
        super::claims::pay_device(
            c,
            "reward",
            &account,
            node,
            Unit::Io,
            *amount,
            &ledger::rewards(node),
            &format!("reward/{n}/{node}"),
            now_ms,
        )?;
        c.exec(
            "INSERT INTO reward_payouts (epoch, provider, work_units, uptime_ms, failed, amount) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                int(n)?,
                node.into(),
                int(cand.work_units)?,
                int(cand.uptime_ms)?,
                Value::from(cand.failed),
                int(*amount)?,
            ],
        )?;
    }
    c.exec(
        "UPDATE reward_epochs SET scheduled = $2, emitted = $3, nominated = $4, paid = $5, failed = $6 \
         WHERE epoch = $1",
        &[
            int(n)?,
            int(scheduled)?,
            int(emitted)?,
            int(candidates.len() as u64)?,
            int(amounts.iter().filter(|a| **a > 0).count() as u64)?,
            int(candidates.iter().filter(|c| c.failed).count() as u64)?,
        ],
    )?;
    c.exec("DELETE FROM reward_shares WHERE epoch = $1", &[int(n)?])?;
    Ok(())
}

/// Posts `genesis` if IO was never issued; true when it did. Records the
/// start of the reward schedule.
pub(super) fn ensure_genesis(
    c: &mut dyn Conn,
    genesis: &Genesis,
    now_ms: u64,
) -> Result<bool, Error> {
    if balance_of(c, &ledger::issuance(Unit::Io))? != 0 {
        return Ok(false);
    }
    let issuance = ledger::issuance(Unit::Io);
    for (name, amount) in &genesis.allocations {
        post(
            c,
            Movement {
                kind: "genesis",
                debit: &issuance,
                credit: &ledger::genesis(name),
                amount: *amount,
                reference: &format!("genesis/{name}"),
            },
            now_ms,
        )?;
    }
    post(
        c,
        Movement {
            kind: "genesis",
            debit: &issuance,
            credit: ledger::UNEMITTED,
            amount: REWARD_POOL,
            reference: "genesis/rewards",
        },
        now_ms,
    )?;
    c.exec(
        "INSERT INTO meta (key, value) VALUES ('genesis_ms', $1) ON CONFLICT (key) DO NOTHING",
        &[Value::Text(now_ms.to_string())],
    )?;
    Ok(true)
}

/// When the reward schedule started (genesis), if it did.
pub(super) fn genesis_ms(c: &mut dyn Conn) -> Result<Option<u64>, Error> {
    c.query_opt("SELECT value FROM meta WHERE key = 'genesis_ms'", &[])?
        .map(|r| {
            r.text(0)?
                .parse()
                .map_err(|_| Error::Corrupt("meta.genesis_ms is not a number".into()))
        })
        .transpose()
}

/// The IO price now, or why there is none.
pub(super) fn current_price(
    c: &mut dyn Conn,
    cfg: &EconomyConfig,
    now_ms: u64,
) -> Result<Price, Error> {
    match cfg.price {
        PriceSource::Fixed(p) => Ok(Price {
            micro_iosd_per_io: p,
            source: "fixed",
            oracle: None,
            round: 0,
            at_ms: 0,
        }),
        PriceSource::Oracle { key, max_age_ms } => {
            let Some(r) = c.query_opt(
                "SELECT round, price, at_ms FROM prices ORDER BY round DESC LIMIT 1",
                &[],
            )?
            else {
                return Err(Error::Precondition(format!(
                    "no IO price yet: the oracle {key} has posted none, so IO cannot be converted to IOSD until it does"
                )));
            };
            let (round, price, at_ms) = (r.u64(0)?, r.u64(1)?, r.u64(2)?);
            let age = now_ms.saturating_sub(at_ms);
            if age > max_age_ms {
                return Err(Error::Precondition(format!(
                    "the IO price is stale: the oracle's last report (round {round}) is {} s old, older than the {} s this coordinator accepts; the oracle must post a fresh price",
                    age / 1000,
                    max_age_ms / 1000
                )));
            }
            Ok(Price {
                micro_iosd_per_io: price,
                source: "oracle",
                oracle: Some(key),
                round,
                at_ms,
            })
        }
    }
}

/// [`current_price`]'s µIOSD per IO.
pub(super) fn price_in(c: &mut dyn Conn, cfg: &EconomyConfig, now_ms: u64) -> Result<u64, Error> {
    Ok(current_price(c, cfg, now_ms)?.micro_iosd_per_io)
}

/// Burns IO from `from` (an IO account) to mint at least `iosd` µIOSD into
/// `to` (an IOSD account) at `price`; both halves name the price in their
/// reference. Returns `(µIO burned, µIOSD minted)`.
pub(super) fn convert(
    c: &mut dyn Conn,
    from: &str,
    to: &str,
    iosd: u64,
    price: u64,
    id: &str,
    now_ms: u64,
) -> Result<(u64, u64), Error> {
    let io = ledger::accounts::io_for_iosd(iosd, price)
        .ok_or_else(|| Error::Invalid(format!("{iosd} µIOSD at {price} µIOSD/IO overflows")))?;
    let minted = ledger::accounts::iosd_for_io(io, price)
        .ok_or_else(|| Error::Invalid(format!("{io} µIO at {price} µIOSD/IO overflows")))?;
    post(
        c,
        Movement {
            kind: "burn",
            debit: from,
            credit: &ledger::burned(Unit::Io),
            amount: io,
            reference: &conversion_reference(id, price, "burn"),
        },
        now_ms,
    )
    .map_err(|e| match e {
        Error::Precondition(m) => Error::Precondition(format!(
            "{m}: paying {iosd} µIOSD in IO burns {io} µIO at {} IOSD per IO",
            ledger::accounts::format_amount(price)
        )),
        other => other,
    })?;
    post(
        c,
        Movement {
            kind: "mint",
            debit: &ledger::issuance(Unit::Iosd),
            credit: to,
            amount: minted,
            reference: &conversion_reference(id, price, "mint"),
        },
        now_ms,
    )?;
    Ok((io, minted))
}

/// The reward epoch `now_ms` falls in (none before genesis).
fn reward_epoch_at(
    c: &mut dyn Conn,
    cfg: &EconomyConfig,
    now_ms: u64,
) -> Result<Option<u64>, Error> {
    Ok(genesis_ms(c)?.and_then(|g| {
        now_ms
            .checked_sub(g)
            .map(|t| t / cfg.reward_epoch_ms.max(1))
    }))
}

fn add_share(
    c: &mut dyn Conn,
    cfg: &EconomyConfig,
    provider: &NodeId,
    column: &str,
    amount: u64,
    now_ms: u64,
) -> Result<(), Error> {
    let Some(n) = reward_epoch_at(c, cfg, now_ms)? else {
        return Ok(());
    };
    c.exec(
        &format!(
            "INSERT INTO reward_shares (epoch, provider, {column}) VALUES ($1, $2, $3) \
             ON CONFLICT (epoch, provider) DO UPDATE SET {column} = reward_shares.{column} + excluded.{column}"
        ),
        &[int(n)?, provider.into(), int(amount)?],
    )?;
    Ok(())
}

/// Counts work units of settled receipts (each at least 1) toward their
/// provider's reward.
pub(super) fn count_work(
    c: &mut dyn Conn,
    cfg: &EconomyConfig,
    provider: &NodeId,
    units: u64,
    now_ms: u64,
) -> Result<(), Error> {
    add_share(c, cfg, provider, "work_units", units, now_ms)
}

/// Counts time online since the provider's previous heartbeat (at most
/// `cap_ms`: a silent provider is not online in between).
pub(super) fn count_uptime(
    c: &mut dyn Conn,
    cfg: &EconomyConfig,
    provider: &NodeId,
    previous_ms: u64,
    cap_ms: u64,
    now_ms: u64,
) -> Result<(), Error> {
    let online = now_ms.saturating_sub(previous_ms).min(cap_ms);
    add_share(c, cfg, provider, "uptime_ms", online, now_ms)
}

/// Marks the provider as slashed or failing a challenge in this reward
/// epoch: it gets no reward for it.
pub(super) fn mark_failed(
    c: &mut dyn Conn,
    cfg: &EconomyConfig,
    provider: &NodeId,
    now_ms: u64,
) -> Result<(), Error> {
    let Some(n) = reward_epoch_at(c, cfg, now_ms)? else {
        return Ok(());
    };
    c.exec(
        "INSERT INTO reward_shares (epoch, provider, failed) VALUES ($1, $2, 1) \
         ON CONFLICT (epoch, provider) DO UPDATE SET failed = 1",
        &[int(n)?, provider.into()],
    )?;
    Ok(())
}

/// Puts the node's unbonding IO back into its stake (it is about to be
/// slashed: a cooldown is no escape).
pub(super) fn cancel_unbonding(
    c: &mut dyn Conn,
    node: &NodeId,
    reference: &str,
    now_ms: u64,
) -> Result<(), Error> {
    let amount = u64::try_from(balance_of(c, &ledger::unbonding(node))?).unwrap_or(0);
    post(
        c,
        Movement {
            kind: "restake",
            debit: &ledger::unbonding(node),
            credit: &ledger::stake(node),
            amount,
            reference: &format!("{reference}/restake"),
        },
        now_ms,
    )?;
    c.exec("DELETE FROM unbonding WHERE node = $1", &[node.into()])?;
    Ok(())
}

/// Copies the node's stake into `providers.stake` (what matching reads).
pub(super) fn sync_provider_stake(c: &mut dyn Conn, node: &NodeId) -> Result<(), Error> {
    let stake = stake_of(c, node)?;
    c.exec(
        "UPDATE providers SET stake = $2 WHERE id = $1",
        &[node.into(), int(stake)?],
    )?;
    Ok(())
}
