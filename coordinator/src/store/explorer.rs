//! The explorer's reads: the public read model of [`crate::explorer`],
//! built from every domain's tables. Read-only (one read transaction per
//! call); the web API and pages call nothing else.
//!
//! Lists are read a page at a time where the table can grow without bound
//! (jobs, receipts, ledger lines, epochs); providers (thousands at most)
//! are read whole and aggregated once per call, so a search can match any
//! column.

use std::collections::HashMap;

use assay_protocol::{Hash32, NodeId};

use super::economy::Economy;
use super::rows::{RECEIPT_COLS, receipt_row, unjson, verdicts_of};
use super::sql::{Backend, Conn, Row, Value, int};
use super::sql_store::SqlStore;
use super::{Accounts, Claims, Jobs};
use crate::Error;
use crate::explorer::*;
use crate::ledger::{self, Unit};
use crate::rules::eligibility::{self, Standing};
use crate::rules::matching::reliability_permille;
use crate::state::{HardwareState, JobState, ShardTally};
use crate::types::{ReceiptRecord, VerdictView};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;
/// Uptime slots (reward epochs) a dashboard shows.
const UPTIME_SLOTS: u32 = 48;

/// Filters of the provider list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderFilter {
    /// Case-insensitive text found in the id, class, a GPU model or status.
    pub search: Option<String>,
    /// `online`, `offline` or `suspended`.
    pub status: Option<String>,
}

/// The explorer's reads.
pub trait Explorer {
    /// The network at a glance.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn network(&self, now_ms: u64) -> Result<NetworkSummary, Error>;
    /// Providers, online first, then by earnings.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn provider_list(
        &self,
        filter: &ProviderFilter,
        window: Window,
        now_ms: u64,
    ) -> Result<Page<ProviderSummary>, Error>;
    /// One provider for its dashboard; `None` if unknown.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn provider_detail(&self, node: &NodeId, now_ms: u64) -> Result<Option<ProviderDetail>, Error>;
    /// A provider's device samples since `since_ms`, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn telemetry(&self, node: &NodeId, since_ms: u64) -> Result<Vec<TelemetrySample>, Error>;
    /// Earnings against power at `kwh_price_uiosd` µIOSD per kWh; `None`
    /// if the provider is unknown.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn profitability(
        &self,
        node: &NodeId,
        kwh_price_uiosd: u64,
        now_ms: u64,
    ) -> Result<Option<Profitability>, Error>;
    /// Jobs, newest first; only `renter`'s when given.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn job_list(&self, renter: Option<&NodeId>, window: Window) -> Result<Page<JobSummary>, Error>;
    /// One job in full; `None` if unknown.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn job_detail(&self, id: &Hash32, now_ms: u64) -> Result<Option<JobDetail>, Error>;
    /// Receipts, newest first; only `provider`'s or `job`'s when given.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn receipt_list(
        &self,
        provider: Option<&NodeId>,
        job: Option<&Hash32>,
        window: Window,
    ) -> Result<Page<ReceiptSummary>, Error>;
    /// One receipt; `None` if unknown.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn receipt_detail(&self, id: &Hash32) -> Result<Option<ReceiptDetail>, Error>;
    /// A node's balances and stakes.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn account_view(&self, node: &NodeId) -> Result<AccountView, Error>;
    /// The ledger lines that move a node's own accounts (balances, stake,
    /// unbonding, rewards, earnings), newest first.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn payments(&self, node: &NodeId, window: Window) -> Result<Page<LedgerLine>, Error>;
    /// Closed reward epochs, newest first (without payouts).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn epoch_list(&self, window: Window) -> Result<Page<EpochView>, Error>;
    /// One epoch with its payouts; `None` if not closed (or never).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn epoch_detail(&self, epoch: u64) -> Result<Option<EpochView>, Error>;
    /// A provider's block rewards, newest epoch first.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn provider_rewards(&self, node: &NodeId, window: Window) -> Result<Page<EpochPayout>, Error>;
    /// A compute note; `None` if unknown.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn note_view(&self, id: &Hash32) -> Result<Option<NoteView>, Error>;
    /// A compute bond; `None` if unknown.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn bond_view(&self, id: &Hash32) -> Result<Option<BondView>, Error>;
}

impl<B: Backend> Explorer for SqlStore<B> {
    fn network(&self, now_ms: u64) -> Result<NetworkSummary, Error> {
        let liveness = self.cfg.provider_liveness_ms;
        let io_price = self.price(now_ms).ok().map(|p| p.micro_iosd_per_io);
        self.b.read(&mut |c| {
            let leased = leased_by_provider(c)?;
            let mut groups: HashMap<(String, String), (u64, u64)> = HashMap::new();
            let (mut total, mut online, mut suspended) = (0, 0, 0);
            let (mut cpu_online, mut cpu_hired) = (0, 0);
            let (mut passed, mut failed) = (0, 0);
            for r in c.query(
                "SELECT id, hardware, hardware_class, hardware_state, last_seen, suspended FROM providers",
                &[],
            )? {
                total += 1;
                match HardwareState::parse(r.text(3)?)? {
                    HardwareState::Passed => passed += 1,
                    HardwareState::Failed => failed += 1,
                    _ => {}
                }
                if !is_online(r.u64(4)?, now_ms, liveness) {
                    continue;
                }
                online += 1;
                if r.i64(5)? != 0 {
                    suspended += 1;
                }
                let gpus: Vec<(String, u64)> = unjson(r.text(1)?, "hardware")?;
                let busy = leased.get(&r.node(0)?).copied().unwrap_or(0);
                if gpus.is_empty() {
                    cpu_online += 1;
                    cpu_hired += u64::from(busy > 0);
                    continue;
                }
                let class = r.text(2)?.to_string();
                let mut hire_left = busy;
                for (model, _) in gpus {
                    let g = groups.entry((model, class.clone())).or_default();
                    g.0 += 1;
                    if hire_left > 0 {
                        g.1 += 1;
                        hire_left -= 1;
                    }
                }
            }
            let mut gpus: Vec<GpuGroup> = groups
                .into_iter()
                .map(|((model, class), (total, hired))| GpuGroup {
                    model,
                    class,
                    total,
                    hired,
                })
                .collect();
            gpus.sort_by(|a, b| b.total.cmp(&a.total).then(a.model.cmp(&b.model)));

            let jobs = job_counts(c)?;
            let today = day_start_ms(now_ms);
            let paid = c.query_one(
                "SELECT CAST(COALESCE(SUM(units), 0) AS BIGINT), CAST(COALESCE(SUM(paid), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN settled_at >= $1 THEN paid ELSE 0 END), 0) AS BIGINT) \
                 FROM receipts WHERE settled_at >= 0",
                &[int(today)?],
            )?;
            let emitted = c.query_one(
                "SELECT CAST(COALESCE(SUM(emitted), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN closed_at >= $1 THEN emitted ELSE 0 END), 0) AS BIGINT), \
                 COUNT(*) FROM reward_epochs",
                &[int(today)?],
            )?;
            let count = |c: &mut dyn Conn, sql: &str| -> Result<u64, Error> {
                c.query_one(sql, &[])?.u64(0)
            };
            let verification = VerificationCounts {
                checks: count(c, "SELECT COUNT(*) FROM checks")?,
                verified: count(
                    c,
                    "SELECT COUNT(*) FROM receipts WHERE check_state = 'verified'",
                )?,
                disputes: count(c, "SELECT COUNT(*) FROM checks WHERE role = 'referee'")?,
                rejected: count(
                    c,
                    "SELECT COUNT(*) FROM receipts WHERE check_state = 'rejected'",
                )?,
                slashes: count(c, "SELECT COUNT(*) FROM ledger WHERE kind = 'slash'")?,
                challenges_passed: passed,
                challenges_failed: failed,
            };
            Ok(NetworkSummary {
                at_ms: now_ms,
                providers_total: total,
                providers_online: online,
                providers_suspended: suspended,
                verifiers_total: count(c, "SELECT COUNT(*) FROM verifiers")?,
                gpus,
                cpu_providers_online: cpu_online,
                cpu_providers_hired: cpu_hired,
                jobs,
                work_units_total: paid.u64(0)?,
                paid_total_uiosd: paid.u64(1)?,
                paid_today_uiosd: paid.u64(2)?,
                emitted_total_uio: emitted.u64(0)?,
                emitted_today_uio: emitted.u64(1)?,
                epochs_closed: emitted.u64(2)?,
                io_price_uiosd: io_price,
                verification,
                hourly: hourly(c, now_ms)?,
            })
        })
    }

    fn provider_list(
        &self,
        filter: &ProviderFilter,
        window: Window,
        now_ms: u64,
    ) -> Result<Page<ProviderSummary>, Error> {
        let liveness = self.cfg.provider_liveness_ms;
        let all = self.b.read(&mut |c| summaries(c, None, now_ms, liveness))?;
        let needle = filter.search.as_deref().map(str::to_lowercase);
        let mut rows: Vec<ProviderSummary> = all
            .into_iter()
            .filter(|p| filter.status.as_deref().is_none_or(|s| p.status == s))
            .filter(|p| {
                needle.as_deref().is_none_or(|n| {
                    p.id.contains(n)
                        || p.class.to_lowercase().contains(n)
                        || p.status.contains(n)
                        || p.gpus.iter().any(|g| g.to_lowercase().contains(n))
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            (a.status != "online")
                .cmp(&(b.status != "online"))
                .then(b.earnings_uiosd.cmp(&a.earnings_uiosd))
                .then(a.id.cmp(&b.id))
        });
        Ok(window.page_of(rows))
    }

    fn provider_detail(&self, node: &NodeId, now_ms: u64) -> Result<Option<ProviderDetail>, Error> {
        let liveness = self.cfg.provider_liveness_ms;
        self.b.read(&mut |c| {
            let Some(summary) = summaries(c, Some(node), now_ms, liveness)?.pop() else {
                return Ok(None);
            };
            let r = c.query_one(
                "SELECT hardware, memory_bytes, version, faults, expired, hardware_note, \
                 next_challenge_at, stake_floor, suspended FROM providers WHERE id = $1",
                &[node.into()],
            )?;
            let gpus: Vec<(String, u64)> = unjson(r.text(0)?, "hardware")?;
            let memory_bytes = r.u64(1)?;
            let mut devices: Vec<DeviceInfo> = gpus
                .iter()
                .enumerate()
                .map(|(i, (model, mem))| DeviceInfo {
                    index: i32::try_from(i).unwrap_or(i32::MAX),
                    model: model.clone(),
                    memory_bytes: *mem,
                })
                .collect();
            devices.push(DeviceInfo {
                index: -1,
                model: format!("host: {} CPU cores", summary.cpu_cores),
                memory_bytes,
            });
            let leased_now = c
                .query_one(
                    "SELECT COUNT(*) FROM shards WHERE provider = $1 AND state = 'leased'",
                    &[node.into()],
                )?
                .u64(0)?;
            let slashes = ledger_lines(
                c,
                "kind = 'slash' AND debit IN ($1, $2)",
                &[
                    ledger::stake(node).into(),
                    ledger::unbonding(node).into(),
                ],
                Window::new(None, Some(MAX_PAGE)),
            )?
            .items;
            let offer = c.query_one(
                "SELECT COUNT(*), CAST(COALESCE(MAX(max_price), 0) AS BIGINT) FROM shards WHERE state = 'queued'",
                &[],
            )?;
            let hardware_note = r.text(5)?.to_string();
            let standing = Standing {
                online: summary.status != "offline",
                silent_ms: now_ms.saturating_sub(summary.last_seen_ms),
                suspended: r.i64(8)? != 0,
                hardware: HardwareState::parse(&summary.hardware_state)?,
                hardware_note: hardware_note.clone(),
                stake: summary.stake_uio,
                stake_floor: r.u64(7)?,
                price: summary.price_uiosd,
                queued: offer.u64(0)?,
                best_offer: offer.u64(1)?,
                free_slots: summary.free_slots,
                slots: summary.slots,
            };
            let eligibility = eligibility::checklist(&standing)
                .into_iter()
                .map(|(check, ok, detail)| EligibilityItem {
                    check: check.into(),
                    ok,
                    detail,
                })
                .collect();
            let day_ago = now_ms.saturating_sub(DAY_MS);
            let (paid_24h, rewards_24h) = earned_since(c, node, day_ago)?;
            Ok(Some(ProviderDetail {
                devices,
                memory_bytes,
                version: r.text(2)?.to_string(),
                leased_now,
                faults: r.u64(3)?,
                expired: r.u64(4)?,
                slashes,
                hardware_note,
                next_challenge_at_ms: r.opt_i64(6)?.map(|v| v.max(0) as u64),
                eligibility,
                uptime: uptime_slots(c, node, now_ms)?,
                paid_24h_uiosd: paid_24h,
                rewards_24h_uio: rewards_24h,
                mean_power_mw: mean_power(c, node, day_ago)?,
                install_command: String::new(),
                summary,
            }))
        })
    }

    fn telemetry(&self, node: &NodeId, since_ms: u64) -> Result<Vec<TelemetrySample>, Error> {
        self.b.read(&mut |c| {
            c.query(
                "SELECT at_ms, device, temperature_c, power_mw, utilization_pct, memory_used_bytes \
                 FROM telemetry WHERE provider = $1 AND at_ms >= $2 ORDER BY at_ms, device",
                &[node.into(), int(since_ms)?],
            )?
            .iter()
            .map(|r| {
                Ok(TelemetrySample {
                    at_ms: r.u64(0)?,
                    device: i32::try_from(r.i64(1)?).unwrap_or(-1),
                    temperature_c: r.u32(2)?,
                    power_mw: r.u64(3)?,
                    utilization_pct: r.u32(4)?,
                    memory_used_bytes: r.u64(5)?,
                })
            })
            .collect()
        })
    }

    fn profitability(
        &self,
        node: &NodeId,
        kwh_price_uiosd: u64,
        now_ms: u64,
    ) -> Result<Option<Profitability>, Error> {
        let io_price = self
            .price(now_ms)
            .ok()
            .map(|p| p.micro_iosd_per_io)
            .unwrap_or(0);
        let day_ago = now_ms.saturating_sub(DAY_MS);
        let Some((paid, rewards, power)) = self.b.read(&mut |c| {
            if c.query_opt("SELECT 1 FROM providers WHERE id = $1", &[node.into()])?
                .is_none()
            {
                return Ok(None);
            }
            let (paid, rewards) = earned_since(c, node, day_ago)?;
            Ok(Some((paid, rewards, mean_power(c, node, day_ago)?)))
        })?
        else {
            return Ok(None);
        };
        Ok(Some(profit(
            kwh_price_uiosd,
            paid,
            ledger::accounts::iosd_for_io(rewards, io_price).unwrap_or(u64::MAX),
            power,
        )))
    }

    fn job_list(&self, renter: Option<&NodeId>, window: Window) -> Result<Page<JobSummary>, Error> {
        self.b.read(&mut |c| {
            let (filter, mut params): (&str, Vec<Value>) = match renter {
                Some(r) => ("WHERE renter = $1", vec![r.into()]),
                None => ("", Vec::new()),
            };
            let total = c
                .query_one(&format!("SELECT COUNT(*) FROM jobs {filter}"), &params)?
                .u64(0)?;
            let n = params.len();
            params.push(int(u64::from(window.limit))?);
            params.push(int(window.offset)?);
            let items = job_summaries(
                c,
                &format!(
                    "j.id IN (SELECT id FROM jobs {filter} ORDER BY seq DESC LIMIT ${} OFFSET ${})",
                    n + 1,
                    n + 2
                ),
                &params,
            )?;
            Ok(window.page(items, total))
        })
    }

    fn job_detail(&self, id: &Hash32, now_ms: u64) -> Result<Option<JobDetail>, Error> {
        let Some(view) = self.job(id, now_ms)? else {
            return Ok(None);
        };
        let Some(summary) = self
            .b
            .read(&mut |c| job_summaries(c, "j.id = $1", &[id.into()]))?
            .pop()
        else {
            return Ok(None);
        };
        let rate = view.verify_rate_ppm;
        Ok(Some(JobDetail {
            component_hash: view.component_hash.to_string(),
            component_size: view.component_size,
            inputs: blob_infos(&view.inputs),
            max_price_uiosd: view.max_price,
            result_root: view.result_root().map(|h| h.to_string()),
            shard_list: view
                .shards
                .iter()
                .map(|s| ShardDetail {
                    index: s.index,
                    state: s.state.as_str().into(),
                    provider: s.provider.map(|p| p.to_string()),
                    attempts: s.attempts,
                    receipt: s.receipt.as_ref().map(receipt_summary),
                    verdicts: s.verdicts.iter().map(verdict).collect(),
                    why_not_matched: s.why_not_matched.clone(),
                    check_note: s.check_note.clone(),
                    rejected_receipts: s.rejected_receipts.iter().map(|h| h.to_string()).collect(),
                })
                .collect(),
            slash_bps: self.cfg.slash_bps,
            guarantee: view
                .providers_at_stake
                .iter()
                .map(|(p, stake, n)| ProviderGuarantee {
                    provider: p.to_string(),
                    stake_uio: *stake,
                    receipts: *n,
                    escape_ppb: [10, 100, 1000]
                        .into_iter()
                        .map(|f| EscapeOdds {
                            cheat_fraction_permille: f,
                            probability_ppb: escape_ppb(rate, f, *n),
                        })
                        .collect(),
                })
                .collect(),
            summary,
        }))
    }

    fn receipt_list(
        &self,
        provider: Option<&NodeId>,
        job: Option<&Hash32>,
        window: Window,
    ) -> Result<Page<ReceiptSummary>, Error> {
        self.b.read(&mut |c| {
            let mut clauses = Vec::new();
            let mut params: Vec<Value> = Vec::new();
            if let Some(p) = provider {
                params.push(p.into());
                clauses.push(format!("provider = ${}", params.len()));
            }
            if let Some(j) = job {
                params.push(j.into());
                clauses.push(format!("job_id = ${}", params.len()));
            }
            let filter = if clauses.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", clauses.join(" AND "))
            };
            let total = c
                .query_one(&format!("SELECT COUNT(*) FROM receipts {filter}"), &params)?
                .u64(0)?;
            let n = params.len();
            params.push(int(u64::from(window.limit))?);
            params.push(int(window.offset)?);
            let items = c
                .query(
                    &format!(
                        "SELECT {RECEIPT_COLS} FROM receipts {filter} ORDER BY seq DESC LIMIT ${} OFFSET ${}",
                        n + 1,
                        n + 2
                    ),
                    &params,
                )?
                .iter()
                .map(|r| Ok(receipt_summary(&receipt_row(r)?)))
                .collect::<Result<Vec<_>, Error>>()?;
            Ok(window.page(items, total))
        })
    }

    fn receipt_detail(&self, id: &Hash32) -> Result<Option<ReceiptDetail>, Error> {
        self.b.read(&mut |c| {
            let Some(r) = c.query_opt(
                &format!("SELECT {RECEIPT_COLS} FROM receipts WHERE id = $1"),
                &[id.into()],
            )?
            else {
                return Ok(None);
            };
            let rec = receipt_row(&r)?;
            let body = &rec.receipt.body;
            Ok(Some(ReceiptDetail {
                component_hash: body.component_hash.to_string(),
                inputs_root: body.inputs_root.to_string(),
                outputs_root: body.outputs_root.to_string(),
                outputs: blob_infos(&rec.outputs),
                fuel_used: body.fuel_used,
                flops: body.work.flops,
                bytes: body.work.bytes,
                backend: body.backend.kind.clone(),
                device: body.backend.device.clone(),
                telemetry: body.telemetry.as_ref().map(|t| ReceiptTelemetry {
                    samples: t.samples,
                    max_temperature_c: t.max_temperature_c,
                    mean_power_mw: t.mean_power_mw,
                    mean_utilization_pct: t.mean_utilization_pct,
                }),
                check_reason: rec.check_reason.map(|r| r.as_str()).unwrap_or("").into(),
                epoch: rec.epoch,
                verdicts: verdicts_of(c, id)?.iter().map(verdict).collect(),
                signature: hex::encode(rec.receipt.signature.0),
                failure_message: rec.failure_message.clone(),
                summary: receipt_summary(&rec),
            }))
        })
    }

    fn account_view(&self, node: &NodeId) -> Result<AccountView, Error> {
        let a = self.account(node)?;
        let (jobs, is_provider) = self.b.read(&mut |c| {
            let jobs = c
                .query_one(
                    "SELECT COUNT(*) FROM jobs WHERE renter = $1",
                    &[node.into()],
                )?
                .u64(0)?;
            let p = c
                .query_opt("SELECT 1 FROM providers WHERE id = $1", &[node.into()])?
                .is_some();
            Ok((jobs, p))
        })?;
        Ok(AccountView {
            node: node.to_string(),
            balance_uiosd: a.balance,
            balance_uio: a.io_balance,
            stake_uio: a.stake,
            unbonding_uio: a.unbonding,
            unbonding_release_ms: a.unbonding_release_ms,
            earnings_uiosd: a.earnings,
            verifier_earnings_uiosd: a.verifier_earnings,
            rewards_uio: a.rewards,
            jobs,
            is_provider,
        })
    }

    fn payments(&self, node: &NodeId, window: Window) -> Result<Page<LedgerLine>, Error> {
        let own: Vec<Value> = [
            ledger::balance(Unit::Iosd, node),
            ledger::balance(Unit::Io, node),
            ledger::stake(node),
            ledger::unbonding(node),
            ledger::rewards(node),
            ledger::earnings(node),
            ledger::verifier_earnings(node),
        ]
        .into_iter()
        .map(Value::from)
        .collect();
        self.b.read(&mut |c| {
            ledger_lines(
                c,
                "debit IN ($1, $2, $3, $4, $5, $6, $7) OR credit IN ($1, $2, $3, $4, $5, $6, $7)",
                &own,
                window,
            )
        })
    }

    fn epoch_list(&self, window: Window) -> Result<Page<EpochView>, Error> {
        self.b.read(&mut |c| {
            let total = c.query_one("SELECT COUNT(*) FROM reward_epochs", &[])?.u64(0)?;
            let items = c
                .query(
                    &format!(
                        "SELECT {EPOCH_COLS} FROM reward_epochs ORDER BY epoch DESC LIMIT $1 OFFSET $2"
                    ),
                    &[int(u64::from(window.limit))?, int(window.offset)?],
                )?
                .iter()
                .map(epoch_view)
                .collect::<Result<Vec<_>, Error>>()?;
            Ok(window.page(items, total))
        })
    }

    fn epoch_detail(&self, epoch: u64) -> Result<Option<EpochView>, Error> {
        self.b.read(&mut |c| {
            let Some(r) = c.query_opt(
                &format!("SELECT {EPOCH_COLS} FROM reward_epochs WHERE epoch = $1"),
                &[int(epoch)?],
            )?
            else {
                return Ok(None);
            };
            let mut e = epoch_view(&r)?;
            e.payouts = c
                .query(
                    &format!(
                        "SELECT {PAYOUT_COLS} FROM reward_payouts WHERE epoch = $1 ORDER BY amount DESC, provider"
                    ),
                    &[int(epoch)?],
                )?
                .iter()
                .map(payout)
                .collect::<Result<_, Error>>()?;
            Ok(Some(e))
        })
    }

    fn provider_rewards(&self, node: &NodeId, window: Window) -> Result<Page<EpochPayout>, Error> {
        self.b.read(&mut |c| {
            let total = c
                .query_one(
                    "SELECT COUNT(*) FROM reward_payouts WHERE provider = $1",
                    &[node.into()],
                )?
                .u64(0)?;
            let items = c
                .query(
                    &format!(
                        "SELECT {PAYOUT_COLS} FROM reward_payouts WHERE provider = $1 \
                         ORDER BY epoch DESC LIMIT $2 OFFSET $3"
                    ),
                    &[
                        node.into(),
                        int(u64::from(window.limit))?,
                        int(window.offset)?,
                    ],
                )?
                .iter()
                .map(payout)
                .collect::<Result<_, Error>>()?;
            Ok(window.page(items, total))
        })
    }

    fn note_view(&self, id: &Hash32) -> Result<Option<NoteView>, Error> {
        Ok(self.note(id)?.map(|n| NoteView {
            id: n.id.to_string(),
            device: n.device.to_string(),
            shares: n.shares,
            holders_bps: n.holders_bps,
            term_days: n.term_days,
            issued_at_ms: n.issued_at,
            ends_at_ms: n.ends_at,
            holdings: holdings(&n.holdings),
            offers: n
                .offers
                .iter()
                .map(|o| ShareOffer {
                    seller: o.seller.to_string(),
                    shares: o.shares,
                    price_uio: o.price,
                })
                .collect(),
        }))
    }

    fn bond_view(&self, id: &Hash32) -> Result<Option<BondView>, Error> {
        Ok(self.bond(id)?.map(|b| BondView {
            id: b.id.to_string(),
            device: b.device.to_string(),
            state: b.state.as_str().into(),
            principal_uiosd: b.principal,
            sold_uiosd: b.sold,
            coupon_bps: b.coupon_bps,
            maturity_days: b.maturity_days,
            issued_at_ms: b.issued_at,
            matures_at_ms: b.matures_at,
            coupon_total_uiosd: b.coupon_total,
            coupon_paid_uiosd: b.coupon_paid,
            escrowed_uiosd: b.escrowed,
            holdings: holdings(&b.holdings),
        }))
    }
}

/// Earnings against power cost (pure arithmetic, integers): energy per
/// day in Wh from the mean power, its cost at `kwh_price` µIOSD per kWh.
pub fn profit(kwh_price: u64, paid: u64, rewards_iosd: u64, mean_power_mw: u64) -> Profitability {
    // mW × 24 h = mW·h ×24; Wh = mW × 24 / 1000.
    let energy_wh = mean_power_mw.saturating_mul(24) / 1000;
    let cost = u64::try_from(u128::from(mean_power_mw) * 24 * u128::from(kwh_price) / 1_000_000)
        .unwrap_or(u64::MAX);
    let earned = i128::from(paid) + i128::from(rewards_iosd);
    let day = earned - i128::from(cost);
    let clamp = |v: i128| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
    Profitability {
        kwh_price_uiosd: kwh_price,
        paid_per_day_uiosd: paid,
        rewards_per_day_uiosd: rewards_iosd,
        energy_per_day_wh: energy_wh,
        power_cost_per_day_uiosd: cost,
        profit_per_day_uiosd: clamp(day),
        profit_per_month_uiosd: clamp(day * 30),
    }
}

fn is_online(last_seen: u64, now_ms: u64, liveness: u64) -> bool {
    now_ms.saturating_sub(last_seen) <= liveness
}

/// Shards each provider holds now.
fn leased_by_provider(c: &mut dyn Conn) -> Result<HashMap<NodeId, u64>, Error> {
    c.query(
        "SELECT provider, COUNT(*) FROM shards WHERE state = 'leased' AND provider IS NOT NULL GROUP BY provider",
        &[],
    )?
    .iter()
    .map(|r| Ok((r.node(0)?, r.u64(1)?)))
    .collect()
}

/// `provider → sum` of one aggregate query (`SELECT provider, SUM(…) … GROUP BY provider`).
fn per_provider(
    c: &mut dyn Conn,
    sql: &str,
    params: &[Value],
) -> Result<HashMap<NodeId, u64>, Error> {
    c.query(sql, params)?
        .iter()
        .map(|r| Ok((r.node(0)?, r.opt_i64(1)?.unwrap_or(0).max(0) as u64)))
        .collect()
}

/// Every provider's summary, or one's.
fn summaries(
    c: &mut dyn Conn,
    only: Option<&NodeId>,
    now_ms: u64,
    liveness: u64,
) -> Result<Vec<ProviderSummary>, Error> {
    let (filter, params): (&str, Vec<Value>) = match only {
        Some(n) => ("WHERE provider = $1", vec![n.into()]),
        None => ("", Vec::new()),
    };
    let earnings = per_provider(
        c,
        &format!(
            "SELECT provider, CAST(SUM(paid) AS BIGINT) FROM receipts {filter} {} GROUP BY provider",
            if only.is_some() {
                "AND paid IS NOT NULL"
            } else {
                "WHERE paid IS NOT NULL"
            }
        ),
        &params,
    )?;
    let rewards = per_provider(
        c,
        &format!(
            "SELECT provider, CAST(SUM(amount) AS BIGINT) FROM reward_payouts {filter} GROUP BY provider"
        ),
        &params,
    )?;
    let closed_uptime = per_provider(
        c,
        &format!(
            "SELECT provider, CAST(SUM(uptime_ms) AS BIGINT) FROM reward_payouts {filter} GROUP BY provider"
        ),
        &params,
    )?;
    let open_uptime = per_provider(
        c,
        &format!(
            "SELECT provider, CAST(SUM(uptime_ms) AS BIGINT) FROM reward_shares {filter} GROUP BY provider"
        ),
        &params,
    )?;
    let mut lease_params = params.clone();
    lease_params.push(int(now_ms)?);
    let hired = per_provider(
        c,
        &format!(
            "SELECT provider, CAST(SUM(COALESCE(ended_at, ${n}) - granted_at) AS BIGINT) FROM leases {filter} GROUP BY provider",
            n = lease_params.len()
        ),
        &lease_params,
    )?;
    let rows = c.query(
        &format!(
            "SELECT id, price, cpu_cores, hardware, hardware_class, slots, free_slots, stake, stake_floor, \
             last_seen, registered_at, completed, faults, expired, suspended, hardware_state \
             FROM providers {}",
            if only.is_some() { "WHERE id = $1" } else { "" }
        ),
        &params,
    )?;
    rows.iter()
        .map(|r| {
            let id = r.node(0)?;
            let last_seen = r.u64(9)?;
            let registered = r.u64(10)?;
            let age = now_ms.saturating_sub(registered).max(1);
            let slots = r.u32(5)?;
            let gpus: Vec<(String, u64)> = unjson(r.text(3)?, "hardware")?;
            let status = if r.i64(14)? != 0 {
                "suspended"
            } else if is_online(last_seen, now_ms, liveness) {
                "online"
            } else {
                "offline"
            };
            let get = |m: &HashMap<NodeId, u64>| m.get(&id).copied().unwrap_or(0);
            let uptime = get(&closed_uptime).saturating_add(get(&open_uptime));
            let slot_time = u128::from(age) * u128::from(slots.max(1));
            Ok(ProviderSummary {
                id: id.to_string(),
                status: status.into(),
                class: r.text(4)?.to_string(),
                gpus: gpus.into_iter().map(|g| g.0).collect(),
                cpu_cores: r.u32(2)?,
                price_uiosd: r.u64(1)?,
                stake_uio: r.u64(7)?,
                stake_floor_uio: r.u64(8)?,
                reliability_permille: reliability_permille(r.u64(11)?, r.u64(12)?, r.u64(13)?),
                uptime_permille: (uptime.saturating_mul(1000) / age).min(1000),
                hire_rate_permille: u64::try_from(
                    (u128::from(get(&hired)) * 1000 / slot_time).min(1000),
                )
                .unwrap_or(1000),
                earnings_uiosd: get(&earnings),
                rewards_uio: get(&rewards),
                completed: r.u64(11)?,
                slots,
                free_slots: r.u32(6)?,
                hardware_state: r.text(15)?.to_string(),
                last_seen_ms: last_seen,
                registered_at_ms: registered,
            })
        })
        .collect()
}

/// Jobs by state, from one pass over the shards.
fn job_counts(c: &mut dyn Conn) -> Result<JobCounts, Error> {
    let mut n = JobCounts {
        total: 0,
        queued: 0,
        running: 0,
        done: 0,
        settled: 0,
        failed: 0,
    };
    for r in c.query(&format!("{SHARD_TALLY} GROUP BY s.job_id"), &[])? {
        n.total += 1;
        match tally_state(&r, 1)? {
            JobState::Queued => n.queued += 1,
            JobState::Running => n.running += 1,
            JobState::Done => n.done += 1,
            JobState::Settled => n.settled += 1,
            JobState::Failed => n.failed += 1,
        }
    }
    Ok(n)
}

/// Per job: shards, queued, leased, done, failed, receipts paid, paid,
/// verified, rejected (columns 1–9 after the job id).
const SHARD_TALLY: &str = "SELECT s.job_id, COUNT(*), \
     SUM(CASE WHEN s.state = 'queued' THEN 1 ELSE 0 END), \
     SUM(CASE WHEN s.state = 'leased' THEN 1 ELSE 0 END), \
     SUM(CASE WHEN s.state = 'done' THEN 1 ELSE 0 END), \
     SUM(CASE WHEN s.state = 'failed' THEN 1 ELSE 0 END), \
     SUM(CASE WHEN r.paid IS NOT NULL THEN 1 ELSE 0 END), \
     CAST(COALESCE(SUM(r.paid), 0) AS BIGINT), \
     SUM(CASE WHEN r.check_state = 'verified' THEN 1 ELSE 0 END), \
     SUM(CASE WHEN r.check_state = 'rejected' THEN 1 ELSE 0 END) \
     FROM shards s LEFT JOIN receipts r ON r.id = s.receipt_id";

/// A job's state from its [`SHARD_TALLY`] columns starting at `at`.
fn tally_state(r: &Row, at: usize) -> Result<JobState, Error> {
    Ok(JobState::of_tally(ShardTally {
        shards: r.u64(at)?,
        queued: r.u64(at + 1)?,
        leased: r.u64(at + 2)?,
        done: r.u64(at + 3)?,
        failed: r.u64(at + 4)?,
        settled: r.u64(at + 5)?,
    }))
}

/// Job summaries of the jobs `clause` selects (as `j`), newest first.
fn job_summaries(
    c: &mut dyn Conn,
    clause: &str,
    params: &[Value],
) -> Result<Vec<JobSummary>, Error> {
    let sql = format!(
        "SELECT j.id, j.renter, j.escrow, j.paid_in, j.verify_rate_ppm, j.created_at, j.seq, t.* \
         FROM jobs j JOIN ({SHARD_TALLY} WHERE s.job_id IN (SELECT j.id FROM jobs j WHERE {clause}) GROUP BY s.job_id) t \
         ON t.job_id = j.id ORDER BY j.seq DESC"
    );
    c.query(&sql, params)?
        .iter()
        .map(|r| {
            Ok(JobSummary {
                id: r.hash(0)?.to_string(),
                renter: r.node(1)?.to_string(),
                escrow: r.u64(2)?,
                paid_in: r.text(3)?.to_string(),
                verify_rate_ppm: r.u32(4)?,
                created_at_ms: r.u64(5)?,
                // column 7 is the tally's job id
                state: tally_state(r, 8)?.as_str().into(),
                shards: r.u64(8)?,
                shards_done: r.u64(11)?,
                paid_uiosd: r.u64(14)?,
                verified: r.u64(15)?,
                rejected: r.u64(16)?,
            })
        })
        .collect()
}

fn hourly(c: &mut dyn Conn, now_ms: u64) -> Result<Vec<HourBucket>, Error> {
    let first = (now_ms / HOUR_MS).saturating_sub(23) * HOUR_MS;
    let mut buckets: Vec<HourBucket> = (0..24)
        .map(|i| HourBucket {
            start_ms: first + i * HOUR_MS,
            jobs: 0,
            work_units: 0,
            paid_uiosd: 0,
        })
        .collect();
    let mut add = |at: u64, f: &mut dyn FnMut(&mut HourBucket)| {
        if at >= first
            && let Some(b) =
                buckets.get_mut(usize::try_from((at - first) / HOUR_MS).unwrap_or(usize::MAX))
        {
            f(b);
        }
    };
    let since = int(first)?;
    // (hour, sum) rows of one aggregate, from `first` on.
    let mut per_hour = |sql: &str| -> Result<Vec<(u64, u64)>, Error> {
        c.query(sql, std::slice::from_ref(&since))?
            .iter()
            .map(|r| {
                Ok((
                    r.u64(0)? * HOUR_MS,
                    r.opt_i64(1)?.unwrap_or(0).max(0) as u64,
                ))
            })
            .collect()
    };
    for (at, n) in per_hour(
        "SELECT created_at / 3600000, COUNT(*) FROM jobs WHERE created_at >= $1 GROUP BY created_at / 3600000",
    )? {
        add(at, &mut |b| b.jobs += n);
    }
    for (at, n) in per_hour(
        "SELECT created_at / 3600000, CAST(SUM(units) AS BIGINT) FROM receipts WHERE created_at >= $1 \
         GROUP BY created_at / 3600000",
    )? {
        add(at, &mut |b| b.work_units += n);
    }
    for (at, n) in per_hour(
        "SELECT settled_at / 3600000, CAST(SUM(paid) AS BIGINT) FROM receipts WHERE settled_at >= $1 \
         GROUP BY settled_at / 3600000",
    )? {
        add(at, &mut |b| b.paid_uiosd += n);
    }
    Ok(buckets)
}

/// IOSD paid (µIOSD) and IO rewards (µIO) to `node` since `since_ms`.
fn earned_since(c: &mut dyn Conn, node: &NodeId, since_ms: u64) -> Result<(u64, u64), Error> {
    let paid = c
        .query_one(
            "SELECT CAST(COALESCE(SUM(paid), 0) AS BIGINT) FROM receipts WHERE provider = $1 AND settled_at >= $2",
            &[node.into(), int(since_ms)?],
        )?
        .u64(0)?;
    let rewards = c
        .query_one(
            "SELECT CAST(COALESCE(SUM(p.amount), 0) AS BIGINT) FROM reward_payouts p \
             JOIN reward_epochs e ON e.epoch = p.epoch WHERE p.provider = $1 AND e.closed_at >= $2",
            &[node.into(), int(since_ms)?],
        )?
        .u64(0)?;
    Ok((paid, rewards))
}

/// Mean power of all GPUs together over the samples since `since_ms`, mW.
fn mean_power(c: &mut dyn Conn, node: &NodeId, since_ms: u64) -> Result<u64, Error> {
    let rows = c.query(
        "SELECT at_ms, CAST(SUM(power_mw) AS BIGINT) FROM telemetry \
         WHERE provider = $1 AND at_ms >= $2 AND device >= 0 GROUP BY at_ms",
        &[node.into(), int(since_ms)?],
    )?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut sum: u128 = 0;
    for r in &rows {
        sum += u128::from(r.opt_i64(1)?.unwrap_or(0).max(0) as u64);
    }
    Ok(u64::try_from(sum / rows.len() as u128).unwrap_or(u64::MAX))
}

/// Time online per reward epoch: the last closed ones and the open one.
fn uptime_slots(c: &mut dyn Conn, node: &NodeId, now_ms: u64) -> Result<Vec<UptimeSlot>, Error> {
    let mut slots: Vec<UptimeSlot> = c
        .query(
            "SELECT e.epoch, e.start_ms, e.end_ms, COALESCE(p.uptime_ms, 0) FROM reward_epochs e \
             LEFT JOIN reward_payouts p ON p.epoch = e.epoch AND p.provider = $1 \
             ORDER BY e.epoch DESC LIMIT $2",
            &[node.into(), int(u64::from(UPTIME_SLOTS))?],
        )?
        .iter()
        .map(|r| {
            Ok(UptimeSlot {
                epoch: Some(r.u64(0)?),
                start_ms: r.u64(1)?,
                end_ms: r.u64(2)?,
                online_ms: r.u64(3)?,
            })
        })
        .collect::<Result<_, Error>>()?;
    slots.reverse();
    let open_start = slots.last().map_or(now_ms, |s| s.end_ms);
    if let Some(r) = c.query_opt(
        "SELECT CAST(COALESCE(SUM(uptime_ms), 0) AS BIGINT) FROM reward_shares WHERE provider = $1",
        &[node.into()],
    )? && open_start < now_ms
    {
        slots.push(UptimeSlot {
            epoch: None,
            start_ms: open_start,
            end_ms: now_ms,
            online_ms: r.u64(0)?.min(now_ms - open_start),
        });
    }
    Ok(slots)
}

/// Ledger lines matching `clause`, newest first.
fn ledger_lines(
    c: &mut dyn Conn,
    clause: &str,
    params: &[Value],
    window: Window,
) -> Result<Page<LedgerLine>, Error> {
    let total = c
        .query_one(
            &format!("SELECT COUNT(*) FROM ledger WHERE {clause}"),
            params,
        )?
        .u64(0)?;
    let mut p = params.to_vec();
    let n = p.len();
    p.push(int(u64::from(window.limit))?);
    p.push(int(window.offset)?);
    let items = c
        .query(
            &format!(
                "SELECT seq, kind, debit, credit, amount, unit, reference, at_ms FROM ledger WHERE {clause} \
                 ORDER BY seq DESC LIMIT ${} OFFSET ${}",
                n + 1,
                n + 2
            ),
            &p,
        )?
        .iter()
        .map(|r| {
            Ok(LedgerLine {
                seq: r.u64(0)?,
                kind: r.text(1)?.to_string(),
                debit: r.text(2)?.to_string(),
                credit: r.text(3)?.to_string(),
                amount: r.u64(4)?,
                // NULL: an entry of the single-unit ledger (IOSD).
                unit: r.opt_text(5)?.unwrap_or(Unit::Iosd.as_str()).to_string(),
                reference: r.text(6)?.to_string(),
                at_ms: r.u64(7)?,
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(window.page(items, total))
}

const EPOCH_COLS: &str =
    "epoch, start_ms, end_ms, scheduled, emitted, nominated, paid, failed, closed_at";

fn epoch_view(r: &Row) -> Result<EpochView, Error> {
    Ok(EpochView {
        epoch: r.u64(0)?,
        start_ms: r.u64(1)?,
        end_ms: r.u64(2)?,
        scheduled_uio: r.u64(3)?,
        emitted_uio: r.u64(4)?,
        nominated: r.u64(5)?,
        paid: r.u64(6)?,
        failed: r.u64(7)?,
        closed_at_ms: r.u64(8)?,
        payouts: Vec::new(),
    })
}

const PAYOUT_COLS: &str = "epoch, provider, work_units, uptime_ms, failed, amount";

fn payout(r: &Row) -> Result<EpochPayout, Error> {
    Ok(EpochPayout {
        epoch: r.u64(0)?,
        provider: r.node(1)?.to_string(),
        work_units: r.u64(2)?,
        uptime_ms: r.u64(3)?,
        failed: r.i64(4)? != 0,
        amount_uio: r.u64(5)?,
    })
}

fn receipt_summary(r: &ReceiptRecord) -> ReceiptSummary {
    let body = &r.receipt.body;
    ReceiptSummary {
        seq: r.seq,
        id: r.id.to_string(),
        job_id: r.job_id.to_string(),
        shard: body.shard.index,
        provider: body.provider_id.to_string(),
        units: assay_protocol::market::billable_units(body.fuel_used, &body.work),
        paid_uiosd: r.paid,
        outcome: body.outcome.name().into(),
        check_state: r.check_state.as_str().into(),
        committed_at_ms: r.committed_at_ms,
        settle_at_ms: r.settle_at_ms,
    }
}

fn verdict(v: &VerdictView) -> Verdict {
    Verdict {
        verifier: v.verifier.to_string(),
        role: v.role.as_str().into(),
        agrees: v.agrees,
        outputs_root: v.result.outputs_root.to_string(),
        at_ms: v.at_ms,
    }
}

fn blob_infos(refs: &[assay_protocol::BlobRef]) -> Vec<BlobInfo> {
    refs.iter()
        .map(|b| BlobInfo {
            name: b.name.clone(),
            hash: b.hash.to_string(),
            size: b.size,
        })
        .collect()
}

fn holdings(h: &[(NodeId, u64)]) -> Vec<Holding> {
    h.iter()
        .map(|(who, amount)| Holding {
            holder: who.to_string(),
            amount: *amount,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profit_is_earnings_minus_power_at_the_kwh_price() {
        // 500 W for a day = 12 kWh; at 0.10 IOSD/kWh = 1.2 IOSD.
        let p = profit(100_000, 3_000_000, 500_000, 500_000);
        assert_eq!(p.energy_per_day_wh, 12_000);
        assert_eq!(p.power_cost_per_day_uiosd, 1_200_000);
        assert_eq!(p.profit_per_day_uiosd, 2_300_000);
        assert_eq!(p.profit_per_month_uiosd, 69_000_000);
        let loss = profit(100_000, 0, 0, 500_000);
        assert_eq!(loss.profit_per_day_uiosd, -1_200_000);
    }
}
