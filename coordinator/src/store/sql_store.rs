//! [`SqlStore`]: the one implementation of [`Store`], over either backend.
//! The market logic (escrow, matching, leases, settlement) lives here once;
//! the backends only run SQL.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use assay_protocol::challenge::{DeviceClass, classify};
use assay_protocol::market::escrow_per_shard;
use assay_protocol::verification::{RATE_ALWAYS, required_stake};
use assay_protocol::{BlobRef, Hash32, JobSpec, NodeId, Receipt, Shard, job_id};

use crate::Error;
use crate::ledger::{self, Movement};
use crate::matching::{self, Need, ProviderView, reliability_permille};
use crate::schema;
use crate::sql::{Backend, Conn, Row, Value, int};
use crate::store::*;

/// How long the cached provider list used for matching may be.
const SNAPSHOT_MS: u64 = 250;

/// The store over a SQL backend.
pub struct SqlStore<B: Backend> {
    pub(crate) b: B,
    pub(crate) cfg: MarketConfig,
    snapshot: Mutex<Option<(u64, Arc<Vec<ProviderView>>)>>,
}

impl<B: Backend + std::fmt::Debug> std::fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.b)
            .field("config", &self.cfg)
            .finish_non_exhaustive()
    }
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Corrupt(format!("encoding JSON: {e}")))
}

pub(crate) fn unjson<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T, Error> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("stored {what}: {e}")))
}

pub(crate) fn random_id() -> Result<Hash32, Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| Error::Corrupt(format!("random source: {e}")))?;
    Ok(Hash32(b))
}

fn shard_spec(spec: &JobSpec, index: u32, count: u32) -> JobSpec {
    let mut s = spec.clone();
    s.shard = Shard { index, count };
    s
}

const PROVIDER_COLS: &str = "id, price, cpu_cores, memory_bytes, gpu_count, gpu_memory_bytes, slots, \
     free_slots, stake, last_seen, completed, faults, expired, suspended, hardware_state";

fn provider_view(r: &Row, now_ms: u64, liveness_ms: u64) -> Result<ProviderView, Error> {
    let last_seen_ms = r.u64(9)?;
    let (completed, faults, expired) = (r.u64(10)?, r.u64(11)?, r.u64(12)?);
    Ok(ProviderView {
        id: r.node(0)?,
        price: r.u64(1)?,
        cpu_cores: r.u32(2)?,
        memory_bytes: r.u64(3)?,
        gpu_count: r.u32(4)?,
        gpu_memory_bytes: r.u64(5)?,
        slots: r.u32(6)?,
        free_slots: r.u32(7)?,
        stake: r.u64(8)?,
        reliability_permille: reliability_permille(completed, faults, expired),
        last_seen_ms,
        online: last_seen_ms.saturating_add(liveness_ms) >= now_ms,
        completed,
        faults,
        expired,
        suspended: r.i64(13)? != 0,
        hardware_ok: matches!(r.text(14)?, "passed" | "unchallenged"),
        hardware_state: r.text(14)?.to_string(),
    })
}

/// A shard's own inputs (parts of inputs split by line), if it has any.
pub(crate) fn own_inputs(
    c: &mut dyn Conn,
    job: &Hash32,
    idx: u32,
) -> Result<Option<(Vec<BlobRef>, Hash32)>, Error> {
    let r = c.query_one(
        "SELECT inputs, inputs_root FROM shards WHERE job_id = $1 AND idx = $2",
        &[job.into(), Value::Int(i64::from(idx))],
    )?;
    match r.0.first() {
        Some(Value::Text(t)) => Ok(Some((unjson(t, "shard inputs")?, r.hash(1)?))),
        _ => Ok(None),
    }
}

/// Builds a lease from a shard, loading (and caching) its job.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub(crate) fn lease_from(
    c: &mut dyn Conn,
    jobs: &mut HashMap<Hash32, (Hash32, u64, Vec<BlobRef>, JobSpec, u32, Hash32)>,
    job: Hash32,
    idx: u32,
    lease_id: Hash32,
    shard_job_id: Hash32,
    expires_at_ms: u64,
    price: u64,
    own_inputs: Option<(Vec<BlobRef>, Hash32)>,
) -> Result<(Lease, Hash32), Error> {
    if let std::collections::hash_map::Entry::Vacant(slot) = jobs.entry(job) {
        let r = c.query_one(
            "SELECT component_hash, component_size, inputs, spec, shards, inputs_root FROM jobs WHERE id = $1",
            &[(&job).into()],
        )?;
        slot.insert((
            r.hash(0)?,
            r.u64(1)?,
            unjson(r.text(2)?, "inputs")?,
            unjson(r.text(3)?, "spec")?,
            r.u32(4)?,
            r.hash(5)?,
        ));
    }
    let (component_hash, component_size, inputs, spec, count, inputs_root) = jobs
        .get(&job)
        .cloned()
        .ok_or_else(|| Error::Corrupt("job vanished".into()))?;
    let (inputs, inputs_root) = own_inputs.unwrap_or((inputs, inputs_root));
    Ok((
        Lease {
            lease_id,
            job_id: job,
            shard_job_id,
            component_hash,
            component_size,
            inputs,
            spec: shard_spec(&spec, idx, count),
            expires_at_ms,
            price,
        },
        inputs_root,
    ))
}

impl<B: Backend> SqlStore<B> {
    /// Opens the store on `b`, migrating the schema.
    ///
    /// # Errors
    ///
    /// [`Error::Database`], or [`Error::Corrupt`] for a database newer than this build.
    pub fn open(b: B, cfg: MarketConfig) -> Result<SqlStore<B>, Error> {
        schema::migrate(&b)?;
        Ok(SqlStore {
            b,
            cfg,
            snapshot: Mutex::new(None),
        })
    }

    /// The backend (tests use it to tamper with rows).
    pub fn backend(&self) -> &B {
        &self.b
    }

    /// Online providers, from a snapshot at most [`SNAPSHOT_MS`] old.
    fn online(&self, now_ms: u64) -> Result<Arc<Vec<ProviderView>>, Error> {
        if let Ok(g) = self.snapshot.lock()
            && let Some((at, v)) = g.as_ref()
            && now_ms >= *at
            && now_ms - *at < SNAPSHOT_MS
        {
            return Ok(v.clone());
        }
        let all: Vec<ProviderView> = self
            .providers(now_ms)?
            .into_iter()
            .filter(|p| p.online)
            .collect();
        let v = Arc::new(all);
        if let Ok(mut g) = self.snapshot.lock() {
            *g = Some((now_ms, v.clone()));
        }
        Ok(v)
    }

    fn account_in(c: &mut dyn Conn, node: &NodeId) -> Result<Account, Error> {
        let get = |c: &mut dyn Conn, name: String| -> Result<u64, Error> {
            let v = ledger::balance_of(c, &name)?;
            u64::try_from(v).map_err(|_| Error::Corrupt(format!("{name} is negative")))
        };
        Ok(Account {
            balance: get(c, ledger::balance(node))?,
            stake: get(c, ledger::stake(node))?,
            earnings: get(c, ledger::earnings(node))?,
            verifier_earnings: get(c, ledger::verifier_earnings(node))?,
        })
    }

    fn receipt_row(r: &Row) -> Result<ReceiptRecord, Error> {
        receipt_row(r)
    }
}

/// Moves what the node's stake lacks of `target` from its balance into
/// its stake; returns the stake now held.
pub(crate) fn top_up_stake(
    c: &mut dyn Conn,
    node: &NodeId,
    target: u64,
    now_ms: u64,
) -> Result<u64, Error> {
    let current = u64::try_from(ledger::balance_of(c, &ledger::stake(node))?).unwrap_or(0);
    if target > current {
        let have = ledger::balance_of(c, &ledger::balance(node))?;
        let need = target - current;
        if have < i64::try_from(need).unwrap_or(i64::MAX) {
            return Err(Error::Precondition(format!(
                "your balance of {have} µcr cannot cover a stake of {target} µcr (you hold {current}): \
                 add credits (`assay faucet` on a devnet) or ask for less stake"
            )));
        }
        // The reference names the stake before and after, so topping up
        // again after a slash is a new movement, and a retry is not.
        ledger::post(
            c,
            Movement {
                kind: "stake",
                debit: &ledger::balance(node),
                credit: &ledger::stake(node),
                amount: need,
                reference: &format!("stake/{node}/{current}/{target}"),
            },
            now_ms,
        )?;
    }
    Ok(current.max(target))
}

/// A receipt row read with [`RECEIPT_COLS`].
pub(crate) fn receipt_row(r: &Row) -> Result<ReceiptRecord, Error> {
    {
        let receipt: Receipt = unjson(r.text(3)?, "receipt")?;
        Ok(ReceiptRecord {
            seq: r.u64(0)?,
            id: r.hash(1)?,
            job_id: r.hash(2)?,
            receipt,
            outputs: unjson(r.text(4)?, "outputs")?,
            committed_at_ms: r.u64(5)?,
            settle_at_ms: r.u64(6)?,
            paid: r.opt_i64(7)?.map(|v| v.max(0) as u64),
            epoch: r.u64(8)?,
            rate_ppm: r.u32(9)?,
            check_state: r.text(10)?.to_string(),
            check_reason: r.text(11)?.to_string(),
        })
    }
}

impl<B: Backend> SqlStore<B> {
    /// Re-queues one leased shard (after expiry or return) — or, after
    /// `max_attempts` leases without a receipt, fails it and refunds its
    /// escrow to the renter.
    fn requeue(
        c: &mut dyn Conn,
        job: &Hash32,
        idx: i64,
        lease: &Hash32,
        max_attempts: u32,
        now_ms: u64,
    ) -> Result<bool, Error> {
        let Some(row) = c.query_opt(
            "SELECT s.attempts, j.renter, j.shard_escrow FROM shards s JOIN jobs j ON j.id = s.job_id \
             WHERE s.job_id = $1 AND s.idx = $2 AND s.lease_id = $3 AND s.state = 'leased'",
            &[job.into(), Value::Int(idx), lease.into()],
        )?
        else {
            return Ok(false);
        };
        let give_up = max_attempts > 0 && row.u64(0)? >= u64::from(max_attempts);
        let state = if give_up { "failed" } else { "queued" };
        let n = c.exec(
            "UPDATE shards SET state = $5, queued_at = $4, lease_id = NULL, provider = NULL, \
             lease_price = NULL, lease_expires_at = NULL \
             WHERE job_id = $1 AND idx = $2 AND lease_id = $3 AND state = 'leased'",
            &[
                job.into(),
                Value::Int(idx),
                lease.into(),
                int(now_ms)?,
                state.into(),
            ],
        )?;
        if n == 1 && give_up {
            ledger::post(
                c,
                Movement {
                    kind: "refund",
                    debit: &ledger::escrow(job),
                    credit: &ledger::balance(&row.node(1)?),
                    amount: row.u64(2)?,
                    reference: &format!("failed/{job}/{idx}"),
                },
                now_ms,
            )?;
            tracing::warn!(job = %job.short(), shard = idx, attempts = max_attempts, "shard failed: escrow refunded");
        }
        Ok(n == 1)
    }
}

pub(crate) const RECEIPT_COLS: &str = "seq, id, job_id, receipt, outputs, created_at, settle_at, paid, \
     epoch, rate_ppm, check_state, check_reason";

impl<B: Backend> Store for SqlStore<B> {
    fn backend_name(&self) -> &'static str {
        self.b.dialect().name()
    }

    fn config(&self) -> &MarketConfig {
        &self.cfg
    }

    fn use_nonce(&self, node: &NodeId, nonce: u64, expires_at_ms: u64) -> Result<(), Error> {
        let n = self.b.write(&mut |c| {
            c.exec(
                "INSERT INTO nonces (node, nonce, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (node, nonce) DO NOTHING",
                &[node.into(), Value::Int(nonce as i64), int(expires_at_ms)?],
            )
        })?;
        if n == 0 {
            return Err(Error::Auth(assay_proto::Error::Replayed {
                node: node.to_hex(),
                nonce,
            }));
        }
        Ok(())
    }

    fn purge_nonces(&self, now_ms: u64) -> Result<u64, Error> {
        self.b
            .write(&mut |c| c.exec("DELETE FROM nonces WHERE expires_at < $1", &[int(now_ms)?]))
    }

    fn mint(
        &self,
        node: &NodeId,
        amount: u64,
        reference: &str,
        now_ms: u64,
    ) -> Result<Account, Error> {
        self.b.write(&mut |c| {
            ledger::post(
                c,
                Movement {
                    kind: "mint",
                    debit: ledger::ISSUANCE,
                    credit: &ledger::balance(node),
                    amount,
                    reference,
                },
                now_ms,
            )?;
            Self::account_in(c, node)
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
            ledger::post(
                c,
                Movement {
                    kind: "stake",
                    debit: &ledger::balance(node),
                    credit: &ledger::stake(node),
                    amount,
                    reference,
                },
                now_ms,
            )?;
            let a = Self::account_in(c, node)?;
            c.exec(
                "UPDATE providers SET stake = $2 WHERE id = $1",
                &[node.into(), int(a.stake)?],
            )?;
            Ok(a)
        })
    }

    fn account(&self, node: &NodeId) -> Result<Account, Error> {
        self.b.read(&mut |c| Self::account_in(c, node))
    }

    fn submit_job(&self, job: &NewJob, now_ms: u64) -> Result<Submitted, Error> {
        if job.shards == 0 {
            return Err(Error::Invalid("a job needs at least one shard".into()));
        }
        let base = escrow_per_shard(job.max_price, &job.spec).ok_or_else(|| {
            Error::Invalid(
                "max price × (fuel + work budget) overflows: lower --max-price or the budgets"
                    .into(),
            )
        })?;
        if job.verify_rate_ppm > RATE_ALWAYS {
            return Err(Error::Invalid(format!(
                "a verification rate of {} ppm is more than always ({RATE_ALWAYS})",
                job.verify_rate_ppm
            )));
        }
        // A verified job also escrows the verifier's fee (a re-execution at
        // the provider's price): a sampled shard pays it, the rest comes back.
        let verified = job.verify_rate_ppm > 0;
        let per_shard = if verified {
            base.checked_mul(2)
        } else {
            Some(base)
        }
        .ok_or_else(|| {
            Error::Invalid("the escrow overflows: lower --max-price or the budgets".into())
        })?;
        let min_stake = if verified {
            required_stake(base, job.verify_rate_ppm, self.cfg.slash_bps).ok_or_else(|| {
                Error::Invalid(format!(
                    "at a verification rate of {} ppm no provider stake makes cheating on this job a losing bet: raise --verify-rate",
                    job.verify_rate_ppm
                ))
            })?
        } else {
            0
        };
        let escrow = per_shard
            .checked_mul(u64::from(job.shards))
            .filter(|e| *e <= i64::MAX as u64)
            .ok_or_else(|| {
                Error::Invalid(
                    "the escrow overflows: lower --max-price, the budgets or --shards".into(),
                )
            })?;
        if !job.shard_inputs.is_empty() && job.shard_inputs.len() != job.shards as usize {
            return Err(Error::Invalid(format!(
                "{} shard input lists for {} shards",
                job.shard_inputs.len(),
                job.shards
            )));
        }
        // Each shard's own inputs and inputs root (NULL in the row: the job's).
        let mut own: Vec<Option<(String, Hash32)>> = Vec::with_capacity(job.shards as usize);
        for list in &job.shard_inputs {
            let root = assay_protocol::inputs_root(
                list.iter().map(|b| (b.name.as_str(), b.size, &b.hash)),
            );
            own.push(Some((json(list)?, root)));
        }
        own.resize(job.shards as usize, None);
        let shard_job_ids: Vec<Hash32> = (0..job.shards)
            .map(|i| {
                let root = own[i as usize].as_ref().map_or(job.inputs_root, |o| o.1);
                job_id(
                    &job.component_hash,
                    &root,
                    &shard_spec(&job.spec, i, job.shards),
                )
            })
            .collect();
        let spec = shard_spec(&job.spec, 0, job.shards);
        let inputs = json(&job.inputs)?;
        let spec_json = json(&spec)?;
        self.b.write(&mut |c| {
            if c
                .query_opt("SELECT seq FROM jobs WHERE id = $1", &[(&job.id).into()])?
                .is_some()
            {
                return Err(Error::AlreadyExists(format!("job {} exists already", job.id)));
            }
            let balance_acct = ledger::balance(&job.renter);
            let have = ledger::balance_of(c, &balance_acct)?;
            if have < escrow as i64 {
                return Err(Error::Precondition(format!(
                    "your balance of {have} µcr does not cover the escrow of {escrow} µcr \
                     (max price {} µcr/Munit × (fuel {} + work budget {}) × {} shards): \
                     add credits (`assay faucet` on a devnet) or lower --max-price, --fuel or --work-budget",
                    job.max_price, job.spec.fuel, job.spec.work_budget, job.shards
                )));
            }
            ledger::post(
                c,
                Movement {
                    kind: "escrow",
                    debit: &balance_acct,
                    credit: &ledger::escrow(&job.id),
                    amount: escrow,
                    reference: &format!("escrow/{}", job.id),
                },
                now_ms,
            )?;
            let priority = i64::from(ledger::balance_of(c, &ledger::stake(&job.renter))? > 0);
            let seq = c
                .query_one(
                    "INSERT INTO jobs (id, renter, component_hash, component_size, inputs, inputs_root, spec, \
                     shards, max_price, require_gpu, priority, escrow, shard_escrow, created_at, verify_rate_ppm) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING seq",
                    &[
                        (&job.id).into(),
                        (&job.renter).into(),
                        (&job.component_hash).into(),
                        int(job.component_size)?,
                        inputs.clone().into(),
                        (&job.inputs_root).into(),
                        spec_json.clone().into(),
                        int(u64::from(job.shards))?,
                        int(job.max_price)?,
                        job.require_gpu.into(),
                        Value::Int(priority),
                        int(escrow)?,
                        int(per_shard)?,
                        int(now_ms)?,
                        Value::Int(i64::from(job.verify_rate_ppm)),
                    ],
                )?
                .i64(0)?;
            for (i, sid) in shard_job_ids.iter().enumerate() {
                c.exec(
                    "INSERT INTO shards (job_id, idx, job_seq, shard_job_id, state, priority, max_price, \
                     memory_bytes, gpu_memory_bytes, require_gpu, queued_at, inputs, inputs_root, min_stake) \
                     VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    &[
                        (&job.id).into(),
                        Value::Int(i as i64),
                        Value::Int(seq),
                        sid.into(),
                        Value::Int(priority),
                        int(job.max_price)?,
                        int(job.spec.memory_bytes)?,
                        int(job.spec.gpu_memory_bytes)?,
                        job.require_gpu.into(),
                        int(now_ms)?,
                        own[i].as_ref().map(|o| o.0.clone()).into(),
                        own[i].as_ref().map(|o| o.1.0.to_vec()).map_or(Value::Null, Value::Blob),
                        int(min_stake)?,
                    ],
                )?;
            }
            Ok(())
        })?;
        Ok(Submitted {
            escrow,
            shard_job_ids,
        })
    }

    fn job(&self, id: &Hash32, now_ms: u64) -> Result<Option<JobView>, Error> {
        let view = self.b.read(&mut |c| {
            let Some(j) = c.query_opt(
                "SELECT renter, component_hash, component_size, inputs, spec, max_price, escrow, created_at, require_gpu, \
                 verify_rate_ppm FROM jobs WHERE id = $1",
                &[id.into()],
            )?
            else {
                return Ok(None);
            };
            let spec: JobSpec = unjson(j.text(4)?, "spec")?;
            let mut need = Need {
                max_price: j.u64(5)?,
                memory_bytes: spec.memory_bytes,
                gpu_memory_bytes: spec.gpu_memory_bytes,
                require_gpu: j.i64(8)? != 0,
                min_stake: 0,
            };
            let mut receipts: BTreeMap<Hash32, ReceiptRecord> = BTreeMap::new();
            let mut rejected: BTreeMap<u32, Vec<Hash32>> = BTreeMap::new();
            for r in c.query(
                &format!("SELECT {RECEIPT_COLS}, idx FROM receipts WHERE job_id = $1 ORDER BY seq"),
                &[id.into()],
            )? {
                let rec = Self::receipt_row(&r)?;
                if rec.check_state == "rejected" || rec.check_state == "void" {
                    rejected.entry(r.u32(12)?).or_default().push(rec.id);
                }
                receipts.insert(rec.id, rec);
            }
            let mut shards = Vec::new();
            for s in c.query(
                "SELECT idx, shard_job_id, state, provider, attempts, receipt_id, inputs, min_stake FROM shards \
                 WHERE job_id = $1 ORDER BY idx",
                &[id.into()],
            )? {
                need.min_stake = need.min_stake.max(s.u64(7)?);
                let receipt = match s.opt_hash(5)? {
                    Some(rid) => receipts.get(&rid).cloned(),
                    None => None,
                };
                let verdicts = match &receipt {
                    Some(r) => crate::verification::verdicts_of(c, &r.id)?,
                    None => Vec::new(),
                };
                let index = s.u32(0)?;
                shards.push(ShardView {
                    index,
                    shard_job_id: s.hash(1)?,
                    state: s.text(2)?.to_string(),
                    provider: s.opt_node(3)?,
                    attempts: s.u32(4)?,
                    receipt,
                    why_not_matched: String::new(),
                    inputs: match s.0.get(6) {
                        Some(Value::Text(t)) => unjson(t, "shard inputs")?,
                        _ => Vec::new(),
                    },
                    verdicts,
                    rejected_receipts: rejected.remove(&index).unwrap_or_default(),
                    check_note: String::new(),
                });
            }
            let mut at_stake = Vec::new();
            let holders: BTreeSet<NodeId> = shards
                .iter()
                .filter_map(|s| {
                    s.receipt
                        .as_ref()
                        .map(|r| r.receipt.body.provider_id)
                        .or(s.provider)
                })
                .collect();
            for p in holders {
                let stake = u64::try_from(ledger::balance_of(c, &ledger::stake(&p))?).unwrap_or(0);
                let n = c
                    .query_one(
                        "SELECT COUNT(*) FROM receipts WHERE provider = $1",
                        &[(&p).into()],
                    )?
                    .u64(0)?;
                at_stake.push((p, stake, n));
            }
            Ok(Some((
                JobView {
                    id: *id,
                    renter: j.node(0)?,
                    component_hash: j.hash(1)?,
                    component_size: j.u64(2)?,
                    inputs: unjson(j.text(3)?, "inputs")?,
                    spec,
                    max_price: j.u64(5)?,
                    escrow: j.u64(6)?,
                    created_at_ms: j.u64(7)?,
                    shards,
                    verify_rate_ppm: j.u32(9)?,
                    providers_at_stake: at_stake,
                },
                need,
            )))
        })?;
        let Some((mut view, need)) = view else {
            return Ok(None);
        };
        for s in view.shards.iter_mut().filter(|s| s.inputs.is_empty()) {
            s.inputs.clone_from(&view.inputs);
        }
        for s in view.shards.iter_mut().filter(|s| s.state == "failed") {
            s.why_not_matched = format!(
                "gave up after {} leases ended without a receipt (provider faults or expired leases); its escrow was refunded",
                s.attempts
            );
        }
        self.explain_checks(&mut view, now_ms)?;
        if view.shards.iter().any(|s| s.state == "queued") {
            let online = self.online(now_ms)?;
            let why = matching::why_not_matched(&need, &online);
            for s in view.shards.iter_mut().filter(|s| s.state == "queued") {
                s.why_not_matched.clone_from(&why);
            }
        }
        Ok(Some(view))
    }

    fn register(
        &self,
        p: &ProviderInfo,
        stake_target: u64,
        now_ms: u64,
    ) -> Result<Registered, Error> {
        let gpu_count = p.gpus.len() as u64;
        let gpu_mem = p.gpus.iter().map(|g| g.1).max().unwrap_or(0);
        let hardware = json(&p.gpus)?;
        // GPU claims are challenged when this coordinator can (CPU claims
        // are not: no job asks for a CPU class, and results are sampled).
        let class = classify(&p.gpus);
        let initial_state = if self.cfg.challenge_component.is_some() && class != DeviceClass::Cpu {
            "unchecked"
        } else {
            "unchallenged"
        };
        let r = self.b.write(&mut |c| {
            let stake = top_up_stake(c, &p.id, stake_target, now_ms)?;
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
                    hardware.clone().into(),
                    int(u64::from(p.slots))?,
                    p.version.as_str().into(),
                    int(now_ms)?,
                    int(stake)?,
                    class.name().into(),
                    initial_state.into(),
                ],
            )?;
            let active = c
                .query(
                    "SELECT lease_id FROM shards WHERE provider = $1 AND state = 'leased'",
                    &[(&p.id).into()],
                )?
                .iter()
                .map(|r| r.hash(0))
                .collect::<Result<Vec<_>, _>>()?;
            let h = c.query_one(
                "SELECT completed, faults, expired FROM providers WHERE id = $1",
                &[(&p.id).into()],
            )?;
            Ok(Registered {
                stake,
                active_leases: active,
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
        telemetry_json: &str,
        now_ms: u64,
    ) -> Result<Option<Vec<Hash32>>, Error> {
        let expires = now_ms.saturating_add(self.cfg.lease_ttl_ms);
        self.b.write(&mut |c| {
            let n = c.exec(
                "UPDATE providers SET last_seen = $2, free_slots = $3, telemetry = $4 WHERE id = $1",
                &[node.into(), int(now_ms)?, int(u64::from(free_slots))?, telemetry_json.into()],
            )?;
            if n == 0 {
                return Ok(None);
            }
            c.exec(
                "UPDATE shards SET lease_expires_at = $2 WHERE provider = $1 AND state = 'leased'",
                &[node.into(), int(expires)?],
            )?;
            let leases = c
                .query(
                    "SELECT lease_id FROM shards WHERE provider = $1 AND state = 'leased'",
                    &[node.into()],
                )?
                .iter()
                .map(|r| r.hash(0))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(leases))
        })
    }

    fn take_leases(&self, node: &NodeId, max: u32, now_ms: u64) -> Result<Vec<Lease>, Error> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let online = if self.cfg.preference_window_ms > 0 {
            Some(self.online(now_ms)?)
        } else {
            None
        };
        let window = self.cfg.preference_window_ms;
        let expires = now_ms.saturating_add(self.cfg.lease_ttl_ms);
        self.b.write(&mut |c| {
            let Some(row) = c.query_opt(
                &format!("SELECT {PROVIDER_COLS} FROM providers WHERE id = $1"),
                &[node.into()],
            )?
            else {
                return Err(Error::NotFound(format!(
                    "provider {node} is not registered: call Register first"
                )));
            };
            let me = provider_view(&row, now_ms, u64::MAX)?;
            if me.suspended {
                return Err(Error::PermissionDenied(format!(
                    "provider {node} was caught returning a wrong result and is suspended from the market"
                )));
            }
            let active = c
                .query(
                    "SELECT job_id FROM shards WHERE provider = $1 AND state = 'leased'",
                    &[node.into()],
                )?
                .iter()
                .map(|r| r.hash(0))
                .collect::<Result<Vec<_>, _>>()?;
            let free = me.slots.saturating_sub(active.len() as u32).min(max);
            c.exec(
                "UPDATE providers SET last_seen = $2 WHERE id = $1",
                &[node.into(), int(now_ms)?],
            )?;
            if free == 0 {
                return Ok(Vec::new());
            }
            let mut held: BTreeSet<Hash32> = active.into_iter().collect();
            let candidates = c.query(
                &format!(
                    "SELECT s.job_id, s.idx, s.shard_job_id, s.queued_at, s.max_price, s.memory_bytes, \
                     s.gpu_memory_bytes, s.require_gpu, s.min_stake FROM shards s \
                     WHERE s.state = 'queued' AND s.memory_bytes <= $2 \
                     AND s.gpu_memory_bytes <= $3 AND s.require_gpu <= $4 AND s.min_stake <= $6 \
                     AND ((s.only_provider IS NULL AND s.max_price >= $1) OR s.only_provider = $7) \
                     ORDER BY s.priority DESC, s.job_seq, s.idx LIMIT $5{}",
                    c.dialect().skip_locked("s")
                ),
                &[
                    int(me.price)?,
                    int(me.memory_bytes)?,
                    int(me.device_memory())?,
                    Value::Int(i64::from(me.gpu_count > 0 && me.hardware_ok)),
                    int(u64::from(free) * 4 + 16)?,
                    int(me.stake)?,
                    node.into(),
                ],
            )?;
            let mut chosen: Vec<(Hash32, u32, Hash32)> = Vec::new();
            for r in &candidates {
                if chosen.len() as u32 >= free {
                    break;
                }
                let job = r.hash(0)?;
                let fresh = now_ms.saturating_sub(r.u64(3)?) < window && r.u64(4)? > 0;
                if fresh {
                    // One shard of a job per provider while others could take the rest.
                    if held.contains(&job) {
                        continue;
                    }
                    let need = Need {
                        max_price: r.u64(4)?,
                        memory_bytes: r.u64(5)?,
                        gpu_memory_bytes: r.u64(6)?,
                        require_gpu: r.i64(7)? != 0,
                        min_stake: r.u64(8)?,
                    };
                    if let Some(online) = &online {
                        let better: Vec<&ProviderView> = online
                            .iter()
                            .filter(|q| {
                                q.id != me.id
                                    && q.free_slots > 0
                                    && matching::fits(q, &need)
                                    && matching::rank(q, &me).is_lt()
                            })
                            .collect();
                        if !better.is_empty() {
                            let holders: BTreeSet<NodeId> = c
                                .query(
                                    "SELECT provider FROM shards WHERE job_id = $1 AND state = 'leased'",
                                    &[(&job).into()],
                                )?
                                .iter()
                                .filter_map(|r| r.opt_node(0).ok().flatten())
                                .collect();
                            if better.iter().any(|q| !holders.contains(&q.id)) {
                                continue;
                            }
                        }
                    }
                }
                held.insert(job);
                chosen.push((job, r.u32(1)?, r.hash(2)?));
            }
            let mut jobs = HashMap::new();
            let mut leases = Vec::with_capacity(chosen.len());
            for (job, idx, shard_job_id) in chosen {
                let lease_id = random_id()?;
                let n = c.exec(
                    "UPDATE shards SET state = 'leased', lease_id = $3, provider = $4, lease_price = $5, \
                     lease_expires_at = $6, attempts = attempts + 1 \
                     WHERE job_id = $1 AND idx = $2 AND state = 'queued'",
                    &[
                        (&job).into(),
                        Value::Int(i64::from(idx)),
                        (&lease_id).into(),
                        node.into(),
                        int(me.price)?,
                        int(expires)?,
                    ],
                )?;
                if n != 1 {
                    continue;
                }
                c.exec(
                    "INSERT INTO leases (id, job_id, idx, provider, price, granted_at, state) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'active')",
                    &[
                        (&lease_id).into(),
                        (&job).into(),
                        Value::Int(i64::from(idx)),
                        node.into(),
                        int(me.price)?,
                        int(now_ms)?,
                    ],
                )?;
                let own = own_inputs(c, &job, idx)?;
                let (lease, _) =
                    lease_from(c, &mut jobs, job, idx, lease_id, shard_job_id, expires, me.price, own)?;
                leases.push(lease);
            }
            Ok(leases)
        })
    }

    fn lease(&self, id: &Hash32) -> Result<Option<LeaseInfo>, Error> {
        self.b.read(&mut |c| {
            let Some(l) = c.query_opt(
                "SELECT l.job_id, l.idx, l.provider, l.price, l.state, s.shard_job_id, s.lease_expires_at \
                 FROM leases l JOIN shards s ON s.job_id = l.job_id AND s.idx = l.idx WHERE l.id = $1",
                &[id.into()],
            )?
            else {
                return Ok(None);
            };
            let mut jobs = HashMap::new();
            let expires = l.opt_i64(6)?.unwrap_or(0).max(0) as u64;
            let own = own_inputs(c, &l.hash(0)?, l.u32(1)?)?;
            let (lease, inputs_root) = lease_from(
                c,
                &mut jobs,
                l.hash(0)?,
                l.u32(1)?,
                *id,
                l.hash(5)?,
                expires,
                l.u64(3)?,
                own,
            )?;
            Ok(Some(LeaseInfo {
                lease,
                provider: l.node(2)?,
                state: LeaseState::parse(l.text(4)?)?,
                inputs_root,
            }))
        })
    }

    fn submit_receipt(&self, s: &ReceiptSubmission, now_ms: u64) -> Result<(Hash32, u64), Error> {
        let rid = s.receipt.id();
        let settle_at = now_ms.saturating_add(self.cfg.settlement_delay_ms);
        let receipt_json = json(&s.receipt)?;
        let outputs_json = json(&s.outputs)?;
        self.b.write(&mut |c| {
            let Some(l) = c.query_opt(
                &format!(
                    "SELECT job_id, idx, provider, price, state FROM leases WHERE id = $1{}",
                    c.dialect().for_update()
                ),
                &[(&s.lease_id).into()],
            )?
            else {
                return Err(Error::NotFound(format!(
                    "no lease {}: a provider submits receipts only for leases it was given",
                    s.lease_id
                )));
            };
            let holder = l.node(2)?;
            if holder != s.provider {
                return Err(Error::PermissionDenied(format!(
                    "lease {} is held by provider {holder}, not by {}",
                    s.lease_id, s.provider
                )));
            }
            let job = l.hash(0)?;
            let idx = l.i64(1)?;
            match LeaseState::parse(l.text(4)?)? {
                LeaseState::Active => {}
                LeaseState::Done => {
                    // A retry of a receipt that was recorded: same answer.
                    if let Some(r) = c.query_opt(
                        "SELECT settle_at FROM receipts WHERE id = $1 AND lease_id = $2",
                        &[(&rid).into(), (&s.lease_id).into()],
                    )? {
                        return Ok((rid, r.u64(0)?));
                    }
                    return Err(Error::AlreadyExists(format!(
                        "lease {} already has a different receipt",
                        s.lease_id
                    )));
                }
                LeaseState::Expired => {
                    return Err(Error::Precondition(format!(
                        "lease {} expired (no heartbeat within the lease time) and its shard went back to the queue: \
                         the result is not accepted",
                        s.lease_id
                    )));
                }
                LeaseState::Returned => {
                    return Err(Error::Precondition(format!(
                        "lease {} was returned: the result is not accepted",
                        s.lease_id
                    )));
                }
            }
            let j = c.query_one(
                "SELECT shard_escrow, verify_rate_ppm, challenge_for FROM jobs WHERE id = $1",
                &[(&job).into()],
            )?;
            let (escrow, rate_ppm) = (j.u64(0)?, j.u32(1)?);
            let challenge = j.opt_node(2)?.is_some();
            if challenge {
                crate::challenge::answered(c, &s.provider, &job, &s.lease_id, now_ms)?;
            }
            let epoch = crate::verification::open_epoch(c, self.cfg.epoch_ms, now_ms)?;
            let suspended = c
                .query_one("SELECT suspended FROM providers WHERE id = $1", &[(&s.provider).into()])?
                .i64(0)?
                != 0;
            // A provider caught cheating has every later receipt checked too.
            let (check_state, check_reason) = match (rate_ppm, suspended) {
                _ if challenge => ("sampled", "challenge"),
                (_, true) => ("sampled", "audit"),
                (0, false) => ("unverified", ""),
                (_, false) => ("pending", ""),
            };
            let n = c.exec(
                "UPDATE shards SET state = 'done', receipt_id = $4, lease_expires_at = NULL \
                 WHERE job_id = $1 AND idx = $2 AND lease_id = $3 AND state = 'leased'",
                &[(&job).into(), Value::Int(idx), (&s.lease_id).into(), (&rid).into()],
            )?;
            if n != 1 {
                return Err(Error::Precondition(format!(
                    "lease {} is no longer current for its shard",
                    s.lease_id
                )));
            }
            c.exec(
                "INSERT INTO receipts (id, job_id, idx, provider, lease_id, receipt, outputs, outputs_root, \
                 units, price, escrow, created_at, settle_at, epoch, rate_ppm, check_state, check_reason) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                &[
                    (&rid).into(),
                    (&job).into(),
                    Value::Int(idx),
                    (&s.provider).into(),
                    (&s.lease_id).into(),
                    receipt_json.clone().into(),
                    outputs_json.clone().into(),
                    (&s.receipt.body.outputs_root).into(),
                    int(s.units)?,
                    int(l.u64(3)?)?,
                    int(escrow)?,
                    int(now_ms)?,
                    int(settle_at)?,
                    int(epoch)?,
                    Value::Int(i64::from(rate_ppm)),
                    check_state.into(),
                    check_reason.into(),
                ],
            )?;
            if check_state == "sampled" {
                crate::verification::open_check(c, &rid, "verify", check_reason, &[s.provider], now_ms)?;
            }
            c.exec(
                "UPDATE leases SET state = 'done', ended_at = $2 WHERE id = $1",
                &[(&s.lease_id).into(), int(now_ms)?],
            )?;
            c.exec(
                "UPDATE providers SET completed = completed + 1 WHERE id = $1",
                &[(&s.provider).into()],
            )?;
            Ok((rid, settle_at))
        })
    }

    fn return_lease(
        &self,
        node: &NodeId,
        lease: &Hash32,
        fault: bool,
        reason: &str,
        now_ms: u64,
    ) -> Result<(), Error> {
        let max_attempts = self.cfg.max_attempts;
        self.b.write(&mut |c| {
            let Some(l) = c.query_opt(
                &format!(
                    "SELECT job_id, idx, provider, state FROM leases WHERE id = $1{}",
                    c.dialect().for_update()
                ),
                &[lease.into()],
            )?
            else {
                return Err(Error::NotFound(format!("no lease {lease}")));
            };
            let holder = l.node(2)?;
            if holder != *node {
                return Err(Error::PermissionDenied(format!(
                    "lease {lease} is held by provider {holder}, not by {node}"
                )));
            }
            if LeaseState::parse(l.text(3)?)? != LeaseState::Active {
                return Ok(());
            }
            Self::requeue(c, &l.hash(0)?, l.i64(1)?, lease, max_attempts, now_ms)?;
            c.exec(
                "UPDATE leases SET state = 'returned', ended_at = $2, reason = $3 WHERE id = $1",
                &[lease.into(), int(now_ms)?, reason.into()],
            )?;
            if fault {
                c.exec(
                    "UPDATE providers SET faults = faults + 1 WHERE id = $1",
                    &[node.into()],
                )?;
            }
            Ok(())
        })
    }

    fn expire_leases(&self, now_ms: u64) -> Result<u64, Error> {
        let max_attempts = self.cfg.max_attempts;
        self.b.write(&mut |c| {
            let rows = c.query(
                &format!(
                    "SELECT s.job_id, s.idx, s.lease_id, s.provider FROM shards s \
                     WHERE s.state = 'leased' AND s.lease_expires_at <= $1 LIMIT 1000{}",
                    c.dialect().skip_locked("s")
                ),
                &[int(now_ms)?],
            )?;
            let mut n = 0;
            for r in &rows {
                let lease = r.hash(2)?;
                if Self::requeue(c, &r.hash(0)?, r.i64(1)?, &lease, max_attempts, now_ms)? {
                    c.exec(
                        "UPDATE leases SET state = 'expired', ended_at = $2 WHERE id = $1",
                        &[(&lease).into(), int(now_ms)?],
                    )?;
                    c.exec(
                        "UPDATE providers SET expired = expired + 1 WHERE id = $1",
                        &[r.blob(3)?.into()],
                    )?;
                    tracing::info!(lease = %lease.short(), "lease expired: shard re-queued");
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    fn settle_due(&self, now_ms: u64) -> Result<Vec<Hash32>, Error> {
        let fee_bps = self.cfg.fee_bps;
        self.b.write(&mut |c| {
            let rows = c.query(
                &format!(
                    "SELECT r.id, {} FROM receipts r JOIN jobs j ON j.id = r.job_id \
                     WHERE r.settled_at IS NULL AND r.settle_at <= $1 \
                     AND r.check_state IN ('unverified', 'not-sampled') ORDER BY r.seq LIMIT 500{}",
                    crate::verification::PAY_COLS,
                    c.dialect().skip_locked("r")
                ),
                &[int(now_ms)?],
            )?;
            let mut settled = Vec::with_capacity(rows.len());
            for r in &rows {
                let rid = r.hash(0)?;
                crate::verification::pay_out_row(c, &rid, r, 1, fee_bps, None, now_ms)?;
                settled.push(rid);
            }
            Ok(settled)
        })
    }

    fn receipts_after(&self, after_seq: u64, limit: u32) -> Result<Vec<ReceiptRecord>, Error> {
        self.b.read(&mut |c| {
            c.query(
                &format!(
                    "SELECT {RECEIPT_COLS} FROM receipts WHERE seq > $1 ORDER BY seq LIMIT $2"
                ),
                &[int(after_seq)?, Value::Int(i64::from(limit))],
            )?
            .iter()
            .map(Self::receipt_row)
            .collect()
        })
    }

    fn ledger_entries(&self, after_seq: u64, limit: u64) -> Result<Vec<ledger::Entry>, Error> {
        self.b.read(&mut |c| ledger::entries(c, after_seq, limit))
    }

    fn verify_ledger(&self) -> Result<ledger::Report, Error> {
        self.b.read(&mut |c| {
            let mut all = Vec::new();
            loop {
                let after = all.last().map_or(0, |e: &ledger::Entry| e.seq);
                let page = ledger::entries(c, after, 10_000)?;
                if page.is_empty() {
                    break;
                }
                all.extend(page);
            }
            let balances = ledger::stored_balances(c)?;
            let head = ledger::stored_head(c)?;
            Ok(ledger::verify(&all, Some(&balances), Some(head)))
        })
    }

    fn register_verifier(
        &self,
        v: &VerifierInfo,
        stake_target: u64,
        now_ms: u64,
    ) -> Result<u64, Error> {
        self.register_verifier_impl(v, stake_target, now_ms)
    }

    fn reveal_epochs(&self, now_ms: u64) -> Result<u64, Error> {
        self.reveal_epochs_impl(now_ms)
    }

    fn beacon(&self, from_epoch: u64, limit: u32) -> Result<Vec<EpochSeed>, Error> {
        self.beacon_impl(from_epoch, limit)
    }

    fn take_checks(
        &self,
        verifier: &NodeId,
        max: u32,
        now_ms: u64,
    ) -> Result<Vec<CheckTask>, Error> {
        self.take_checks_impl(verifier, max, now_ms)
    }

    fn submit_verdict(&self, v: &VerdictSubmission, now_ms: u64) -> Result<Decision, Error> {
        self.submit_verdict_impl(v, now_ms)
    }

    fn return_check(
        &self,
        verifier: &NodeId,
        check: &Hash32,
        reason: &str,
        now_ms: u64,
    ) -> Result<(), Error> {
        self.return_check_impl(verifier, check, reason, now_ms)
    }

    fn expire_checks(&self, now_ms: u64) -> Result<u64, Error> {
        self.expire_checks_impl(now_ms)
    }

    fn run_challenges(&self, now_ms: u64) -> Result<u64, Error> {
        self.run_challenges_impl(now_ms)
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
