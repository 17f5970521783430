//! Providers: registration (with stake and the initial hardware state),
//! heartbeats that renew leases (never past their hard end), what each
//! provider's stake is bonded by, and the provider list matching reads
//! through a short-lived snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use assay_protocol::challenge::{DeviceClass, classify};
use assay_protocol::{Hash32, NodeId};

use super::economy::count_uptime;
use super::ledger::{balance_of, stake_of, top_up_stake};
use super::rows::{PROVIDER_COLS, held_leases, json, provider_view};
use super::sql::{Backend, Conn, Value, int};
use super::sql_store::SqlStore;
use crate::Error;
use crate::explorer::TelemetrySample;
use crate::ledger::{self as accounts, Unit};
use crate::rules::exposure::Exposure;
use crate::rules::leases::expires_at;
use crate::rules::matching::{Offer, ProviderView, reliability_permille};
use crate::rules::staking::stake_floor;
use crate::state::HardwareState;
use crate::types::{ProviderInfo, Registered};

/// How old the cached provider list used for matching may be.
const SNAPSHOT_MS: u64 = 250;

/// Providers and their liveness.
pub trait Providers {
    /// Registers or updates a provider and tops its stake up to
    /// `stake_target` — or to its class's stake floor
    /// ([`crate::rules::staking`]) when that is higher and its IO balance
    /// covers it.
    ///
    /// # Errors
    ///
    /// [`Error::Precondition`] if its balance cannot cover the stake.
    fn register(
        &self,
        p: &ProviderInfo,
        stake_target: u64,
        now_ms: u64,
    ) -> Result<Registered, Error>;
    /// Marks the provider alive and renews its leases, each at most to its
    /// hard end ([`crate::rules::leases::renewed_until`]); `None` if unknown.
    /// `samples` (its devices now; `at_ms` is ignored, `now_ms` is used)
    /// become its latest telemetry and, at most once per
    /// [`MarketConfig::telemetry_every_ms`], a row of its history.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn heartbeat(
        &self,
        node: &NodeId,
        free_slots: u32,
        samples: &[TelemetrySample],
        now_ms: u64,
    ) -> Result<Option<Vec<Hash32>>, Error>;
    /// Every registered provider.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn providers(&self, now_ms: u64) -> Result<Vec<ProviderView>, Error>;
}

impl<B: Backend> Providers for SqlStore<B> {
    fn register(
        &self,
        p: &ProviderInfo,
        stake_target: u64,
        now_ms: u64,
    ) -> Result<Registered, Error> {
        let hardware = json(&p.gpus)?;
        // GPU claims are challenged when this coordinator can (CPU claims
        // are not: no job asks for a CPU class, and results are sampled).
        let class = classify(&p.gpus);
        let initial = if self.cfg.challenge_component.is_some() && class != DeviceClass::Cpu {
            HardwareState::Unchecked
        } else {
            HardwareState::Unchallenged
        };
        let floor = stake_floor(
            self.cfg.economy.stake_per_device,
            class,
            u32::try_from(p.gpus.len()).unwrap_or(u32::MAX),
            p.cpu_cores,
        );
        let r = self.b.write(&mut |c| {
            // The floor is topped up when the IO balance covers it; a
            // provider below it registers but is not hired until it stakes.
            let want = stake_target.max(floor);
            let have = u64::try_from(balance_of(c, &accounts::balance(Unit::Io, &p.id))?)
                .unwrap_or(0)
                + stake_of(c, &p.id)?;
            let target = if have >= want { want } else { stake_target };
            let stake = top_up_stake(c, &p.id, target, now_ms)?;
            upsert_provider(c, p, &hardware, class, initial, stake, now_ms)?;
            c.exec(
                "UPDATE providers SET stake_floor = $2, heartbeat_at = $3 WHERE id = $1",
                &[(&p.id).into(), int(floor)?, int(now_ms)?],
            )?;
            let h = c.query_one(
                "SELECT completed, faults, expired FROM providers WHERE id = $1",
                &[(&p.id).into()],
            )?;
            Ok(Registered {
                stake,
                active_leases: held_leases(c, &p.id)?,
                reliability_permille: reliability_permille(h.u64(0)?, h.u64(1)?, h.u64(2)?),
            })
        })?;
        if let Ok(mut g) = self.snapshot.lock() {
            *g = None;
        }
        Ok(r)
    }

    fn heartbeat(
        &self,
        node: &NodeId,
        free_slots: u32,
        samples: &[TelemetrySample],
        now_ms: u64,
    ) -> Result<Option<Vec<Hash32>>, Error> {
        let telemetry_json = json(&samples)?;
        let (every, keep) = (self.cfg.telemetry_every_ms, self.cfg.telemetry_keep_ms);
        let expires = expires_at(now_ms, self.cfg.lease_ttl_ms);
        let (economy, liveness) = (self.cfg.economy, self.cfg.provider_liveness_ms);
        self.b.write(&mut |c| {
            // Time online is counted between heartbeats (lease polls, far
            // more frequent, only keep the provider alive).
            let Some(previous) = c
                .query_opt(
                    "SELECT COALESCE(heartbeat_at, registered_at) FROM providers WHERE id = $1",
                    &[node.into()],
                )?
                .map(|r| r.u64(0))
                .transpose()?
            else {
                return Ok(None);
            };
            count_uptime(c, &economy, node, previous, liveness, now_ms)?;
            let n = c.exec(
                "UPDATE providers SET last_seen = $2, heartbeat_at = $2, free_slots = $3, telemetry = $4 WHERE id = $1",
                &[node.into(), int(now_ms)?, int(u64::from(free_slots))?, telemetry_json.as_str().into()],
            )?;
            if n == 0 {
                return Ok(None);
            }
            record_samples(c, node, samples, every, keep, now_ms)?;
            // `rules::leases::renewed_until`, in SQL: one statement renews
            // every lease of the provider, none past its cap.
            c.exec(
                "UPDATE shards SET lease_expires_at = COALESCE((SELECT CASE WHEN l.cap_at < $2 \
                 THEN l.cap_at ELSE $2 END FROM leases l WHERE l.id = shards.lease_id), $2) \
                 WHERE provider = $1 AND state = 'leased'",
                &[node.into(), int(expires)?],
            )?;
            Ok(Some(held_leases(c, node)?))
        })
    }

    fn providers(&self, now_ms: u64) -> Result<Vec<ProviderView>, Error> {
        let liveness = self.cfg.provider_liveness_ms;
        self.b.read(&mut |c| {
            c.query(
                &format!("SELECT {PROVIDER_COLS} FROM providers ORDER BY id"),
                &[],
            )?
            .iter()
            .map(|r| provider_view(r, now_ms, liveness))
            .collect()
        })
    }
}

impl<B: Backend> SqlStore<B> {
    /// Online providers with their free stake, from a snapshot at most
    /// [`SNAPSHOT_MS`] old.
    pub(super) fn online(&self, now_ms: u64) -> Result<Arc<Vec<Offer>>, Error> {
        if let Ok(g) = self.snapshot.lock()
            && let Some((at, v)) = g.as_ref()
            && now_ms >= *at
            && now_ms - *at < SNAPSHOT_MS
        {
            return Ok(v.clone());
        }
        let bonded = self.b.read(&mut bonded_by_provider)?;
        let all: Vec<Offer> = self
            .providers(now_ms)?
            .into_iter()
            .filter(|p| p.online)
            .map(|p| {
                let (leases, receipts) = bonded.get(&p.id).copied().unwrap_or_default();
                let free_stake = Exposure {
                    stake: p.stake,
                    leases,
                    receipts,
                }
                .free();
                Offer {
                    provider: p,
                    free_stake,
                }
            })
            .collect();
        let v = Arc::new(all);
        if let Ok(mut g) = self.snapshot.lock() {
            *g = Some((now_ms, v.clone()));
        }
        Ok(v)
    }
}

/// What a provider's `stake` is bonded by: the bonds of its open leases
/// and of its unsettled receipts (a lease that ended with a receipt counts
/// through the receipt alone).
pub(super) fn exposure_of(c: &mut dyn Conn, node: &NodeId, stake: u64) -> Result<Exposure, Error> {
    let leases = c
        .query_one(
            "SELECT CAST(COALESCE(SUM(bond), 0) AS BIGINT) FROM leases \
             WHERE provider = $1 AND ended_at IS NULL",
            &[node.into()],
        )?
        .u64(0)?;
    let receipts = c
        .query_one(
            "SELECT CAST(COALESCE(SUM(bond), 0) AS BIGINT) FROM receipts \
             WHERE provider = $1 AND settled_at IS NULL",
            &[node.into()],
        )?
        .u64(0)?;
    Ok(Exposure {
        stake,
        leases,
        receipts,
    })
}

/// Every provider's bonds: (open leases, unsettled receipts).
fn bonded_by_provider(c: &mut dyn Conn) -> Result<BTreeMap<NodeId, (u64, u64)>, Error> {
    let mut out: BTreeMap<NodeId, (u64, u64)> = BTreeMap::new();
    for r in c.query(
        "SELECT provider, CAST(SUM(bond) AS BIGINT) FROM leases WHERE ended_at IS NULL \
         GROUP BY provider",
        &[],
    )? {
        out.entry(r.node(0)?).or_default().0 = r.u64(1)?;
    }
    for r in c.query(
        "SELECT provider, CAST(SUM(bond) AS BIGINT) FROM receipts WHERE settled_at IS NULL \
         GROUP BY provider",
        &[],
    )? {
        out.entry(r.node(0)?).or_default().1 = r.u64(1)?;
    }
    Ok(out)
}

/// Inserts or updates a provider's row. A re-registration with the same
/// hardware class keeps its challenge state (unless either side is
/// unchallenged).
fn upsert_provider(
    c: &mut dyn Conn,
    p: &ProviderInfo,
    hardware_json: &str,
    class: DeviceClass,
    initial: HardwareState,
    stake: u64,
    now_ms: u64,
) -> Result<(), Error> {
    let gpu_count = p.gpus.len() as u64;
    let gpu_mem = p.gpus.iter().map(|g| g.1).max().unwrap_or(0);
    c.exec(
        "INSERT INTO providers (id, price, cpu_cores, memory_bytes, gpu_count, gpu_memory_bytes, hardware, \
         slots, free_slots, version, registered_at, last_seen, stake, hardware_class, hardware_state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $10, $11, $12, $13) \
         ON CONFLICT (id) DO UPDATE SET price = excluded.price, cpu_cores = excluded.cpu_cores, \
         memory_bytes = excluded.memory_bytes, gpu_count = excluded.gpu_count, \
         gpu_memory_bytes = excluded.gpu_memory_bytes, hardware = excluded.hardware, \
         slots = excluded.slots, free_slots = excluded.free_slots, version = excluded.version, \
         last_seen = excluded.last_seen, stake = excluded.stake, \
         hardware_state = CASE WHEN providers.hardware_class = excluded.hardware_class \
           AND providers.hardware_state <> 'unchallenged' AND excluded.hardware_state <> 'unchallenged' \
           THEN providers.hardware_state ELSE excluded.hardware_state END, \
         hardware_class = excluded.hardware_class",
        &[
            (&p.id).into(),
            int(p.price)?,
            int(u64::from(p.cpu_cores))?,
            int(p.memory_bytes)?,
            int(gpu_count)?,
            int(gpu_mem)?,
            hardware_json.into(),
            int(u64::from(p.slots))?,
            p.version.as_str().into(),
            int(now_ms)?,
            int(stake)?,
            class.name().into(),
            initial.as_str().into(),
        ],
    )?;
    Ok(())
}

/// Keeps `samples` as history when the provider's last kept ones are at
/// least `every` ms old, and drops its samples older than `keep` ms.
fn record_samples(
    c: &mut dyn Conn,
    node: &NodeId,
    samples: &[TelemetrySample],
    every: u64,
    keep: u64,
    now_ms: u64,
) -> Result<(), Error> {
    if samples.is_empty() {
        return Ok(());
    }
    // One conditional update claims the slot, so two replicas cannot both
    // write this interval's samples.
    let claimed = c.exec(
        "UPDATE providers SET telemetry_at = $2 WHERE id = $1 AND telemetry_at <= $3",
        &[
            node.into(),
            int(now_ms)?,
            int(now_ms.saturating_sub(every))?,
        ],
    )?;
    if claimed == 0 {
        return Ok(());
    }
    // A device named twice keeps its first sample (the key is per device).
    let mut seen = std::collections::HashSet::new();
    for s in samples.iter().filter(|s| seen.insert(s.device)) {
        c.exec(
            "INSERT INTO telemetry (provider, at_ms, device, temperature_c, power_mw, utilization_pct, memory_used_bytes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                node.into(),
                int(now_ms)?,
                Value::from(i64::from(s.device)),
                int(u64::from(s.temperature_c))?,
                int(s.power_mw)?,
                int(u64::from(s.utilization_pct))?,
                int(s.memory_used_bytes)?,
            ],
        )?;
    }
    c.exec(
        "DELETE FROM telemetry WHERE provider = $1 AND at_ms < $2",
        &[node.into(), int(now_ms.saturating_sub(keep))?],
    )?;
    Ok(())
}
