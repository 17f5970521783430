//! Row helpers shared by every domain of the store: JSON columns, random
//! ids, and the readers that turn a row into a record. A leaf: it reads the
//! SQL layer ([`super::sql`]), the records and the rules, and none of the
//! store's domain modules.

use std::collections::HashMap;

use assay_protocol::{BlobRef, Hash32, JobSpec, Outcome, Receipt, WorkDone};

use super::sql::{Conn, Row, Value, int};
use crate::Error;
use crate::rules::jobs::shard_spec;
use crate::rules::matching::{ProviderView, reliability_permille};
use crate::state::{CheckReason, CheckRole, CheckState, HardwareState};
use crate::types::{EpochSeed, Lease, ReceiptRecord, RunResult, VerdictView};

/// A value as a JSON column.
pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Corrupt(format!("encoding JSON: {e}")))
}

/// A JSON column read back; `what` names it in the error.
pub(super) fn unjson<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T, Error> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("stored {what}: {e}")))
}

/// 32 random bytes (lease, check and challenge ids, epoch seeds).
pub(super) fn random_id() -> Result<Hash32, Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| Error::Corrupt(format!("random source: {e}")))?;
    Ok(Hash32(b))
}

/// A random `u64`.
pub(super) fn random_u64() -> Result<u64, Error> {
    let r = random_id()?;
    let mut b = [0u8; 8];
    b.copy_from_slice(&r.0[..8]);
    Ok(u64::from_le_bytes(b))
}

/// The columns [`provider_view`] reads.
pub(super) const PROVIDER_COLS: &str = "id, price, cpu_cores, memory_bytes, gpu_count, gpu_memory_bytes, slots, \
     free_slots, stake, last_seen, completed, faults, expired, suspended, hardware_state, stake_floor";

/// A provider row read with [`PROVIDER_COLS`].
pub(super) fn provider_view(r: &Row, now_ms: u64, liveness_ms: u64) -> Result<ProviderView, Error> {
    let last_seen_ms = r.u64(9)?;
    let (completed, faults, expired) = (r.u64(10)?, r.u64(11)?, r.u64(12)?);
    let hardware_state = HardwareState::parse(r.text(14)?)?;
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
        stake_floor: r.u64(15)?,
        reliability_permille: reliability_permille(completed, faults, expired),
        last_seen_ms,
        online: last_seen_ms.saturating_add(liveness_ms) >= now_ms,
        completed,
        faults,
        expired,
        suspended: r.i64(13)? != 0,
        hardware_ok: hardware_state.trusted(),
        hardware_state,
    })
}

/// The columns [`receipt_row`] reads.
pub(super) const RECEIPT_COLS: &str = "seq, id, job_id, receipt, outputs, created_at, settle_at, paid, \
     epoch, rate_ppm, check_state, check_reason, failure_message";

/// How many columns [`RECEIPT_COLS`] names (a query's next column is at this index).
pub(super) const RECEIPT_COL_COUNT: usize = 13;

/// A receipt row read with [`RECEIPT_COLS`].
pub(super) fn receipt_row(r: &Row) -> Result<ReceiptRecord, Error> {
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
        check_state: CheckState::parse(r.text(10)?)?,
        check_reason: CheckReason::parse_stored(r.text(11)?)?,
        failure_message: r.opt_text(12)?.unwrap_or_default().to_owned(),
    })
}

/// A recorded receipt and its shard index.
pub(super) fn receipt_record(
    c: &mut dyn Conn,
    receipt: &Hash32,
) -> Result<(ReceiptRecord, u32), Error> {
    let r = c.query_one(
        &format!("SELECT {RECEIPT_COLS}, idx FROM receipts WHERE id = $1"),
        &[receipt.into()],
    )?;
    Ok((receipt_row(&r)?, r.u32(RECEIPT_COL_COUNT)?))
}

/// A shard's own inputs (parts of inputs split by line), if it has any.
pub(super) fn own_inputs(
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

/// What a lease repeats of its job.
#[derive(Debug, Clone)]
pub(super) struct JobTerms {
    component_hash: Hash32,
    component_size: u64,
    inputs: Vec<BlobRef>,
    spec: JobSpec,
    shards: u32,
    inputs_root: Hash32,
}

/// Jobs already read while building several leases in one transaction.
pub(super) type JobCache = HashMap<Hash32, JobTerms>;

/// Where a lease is in its job, and what it pays.
#[derive(Debug, Clone, Copy)]
pub(super) struct LeaseSlot {
    /// The market job.
    pub job: Hash32,
    /// The shard's index.
    pub idx: u32,
    /// The lease id.
    pub lease_id: Hash32,
    /// `assay_protocol::job_id` of the shard.
    pub shard_job_id: Hash32,
    /// When it expires.
    pub expires_at_ms: u64,
    /// Its price.
    pub price: u64,
}

/// Builds a lease from a shard, loading (and caching) its job; returns it
/// with its inputs root.
pub(super) fn lease_from(
    c: &mut dyn Conn,
    jobs: &mut JobCache,
    slot: LeaseSlot,
) -> Result<(Lease, Hash32), Error> {
    let own = own_inputs(c, &slot.job, slot.idx)?;
    if let std::collections::hash_map::Entry::Vacant(vacant) = jobs.entry(slot.job) {
        let r = c.query_one(
            "SELECT component_hash, component_size, inputs, spec, shards, inputs_root FROM jobs WHERE id = $1",
            &[(&slot.job).into()],
        )?;
        vacant.insert(JobTerms {
            component_hash: r.hash(0)?,
            component_size: r.u64(1)?,
            inputs: unjson(r.text(2)?, "inputs")?,
            spec: unjson(r.text(3)?, "spec")?,
            shards: r.u32(4)?,
            inputs_root: r.hash(5)?,
        });
    }
    let job = jobs
        .get(&slot.job)
        .cloned()
        .ok_or_else(|| Error::Corrupt("job vanished".into()))?;
    let (inputs, inputs_root) = own.unwrap_or((job.inputs, job.inputs_root));
    Ok((
        Lease {
            lease_id: slot.lease_id,
            job_id: slot.job,
            shard_job_id: slot.shard_job_id,
            component_hash: job.component_hash,
            component_size: job.component_size,
            inputs,
            spec: shard_spec(&job.spec, slot.idx, job.shards),
            expires_at_ms: slot.expires_at_ms,
            price: slot.price,
        },
        inputs_root,
    ))
}

/// How a verdict's outcome is stored.
pub(super) fn outcome_text(o: Outcome) -> Result<String, Error> {
    json(&o)
}

/// The verdicts recorded on a receipt, in order.
pub(super) fn verdicts_of(c: &mut dyn Conn, receipt: &Hash32) -> Result<Vec<VerdictView>, Error> {
    c.query(
        "SELECT verifier, role, agrees, outputs_root, outcome, fuel_used, flops, bytes, at_ms, arbitration \
         FROM verdicts WHERE receipt_id IN ($1) ORDER BY seq",
        &[receipt.into()],
    )?
    .iter()
    .map(|r| {
        Ok(VerdictView {
            verifier: r.node(0)?,
            role: CheckRole::parse(r.text(1)?)?,
            agrees: r.i64(2)? != 0,
            result: RunResult {
                outputs_root: r.hash(3)?,
                outcome: unjson(r.text(4)?, "verdict outcome")?,
                fuel_used: r.u64(5)?,
                work: WorkDone {
                    flops: r.u64(6)?,
                    bytes: r.u64(7)?,
                },
            },
            at_ms: r.u64(8)?,
            arbitration: r.text(9)?.to_string(),
        })
    })
    .collect()
}

/// A check's `excluded` column: the verifiers (hex) that may not take it.
pub(super) fn excluded_of(text: &str) -> Result<Vec<String>, Error> {
    unjson(text, "check exclusions")
}

/// An epoch's commitment, and its seed once revealed.
pub(super) fn epoch_seed(c: &mut dyn Conn, epoch: u64) -> Result<EpochSeed, Error> {
    let r = c.query_one(
        "SELECT commitment, seed, revealed_at FROM epochs WHERE epoch = $1",
        &[int(epoch)?],
    )?;
    let seed = match r.opt_i64(2)? {
        Some(_) => Some(seed_of(epoch, r.blob(1)?)?),
        None => None,
    };
    Ok(EpochSeed {
        epoch,
        commitment: r.hash(0)?,
        seed,
    })
}

/// A stored 32-byte epoch seed.
pub(super) fn seed_of(epoch: u64, b: &[u8]) -> Result<[u8; 32], Error> {
    b.try_into()
        .map_err(|_| Error::Corrupt(format!("epoch {epoch}: seed is not 32 bytes")))
}

/// Lease ids of the shards a provider holds.
pub(super) fn held_leases(
    c: &mut dyn Conn,
    node: &assay_protocol::NodeId,
) -> Result<Vec<Hash32>, Error> {
    c.query(
        "SELECT lease_id FROM shards WHERE provider = $1 AND state = 'leased'",
        &[node.into()],
    )?
    .iter()
    .map(|r| r.hash(0))
    .collect()
}
