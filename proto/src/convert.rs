//! Domain types ↔ messages, in one place.
//!
//! Encoding (domain → message) cannot fail. Decoding checks every length and
//! range and names the offending field, so a malformed request is answered
//! with `INVALID_ARGUMENT: invalid receipt.job_id: …`.

use assay_protocol::{
    BackendDescriptor, BlobRef, Hash32, JobSpec, NodeId, Outcome, Receipt, ReceiptBody, Shard,
    Signature, TelemetrySummary, WorkDone,
};

use crate::{Error, pb};

/// A 32-byte hash from a `bytes` field.
pub fn hash(field: &'static str, bytes: &[u8]) -> Result<Hash32, Error> {
    fixed::<32>(field, bytes).map(Hash32)
}

/// A node id (32-byte ed25519 public key) from a `bytes` field.
pub fn node_id(field: &'static str, bytes: &[u8]) -> Result<NodeId, Error> {
    fixed::<32>(field, bytes).map(NodeId)
}

/// A 64-byte signature from a `bytes` field.
pub fn signature(field: &'static str, bytes: &[u8]) -> Result<Signature, Error> {
    fixed::<64>(field, bytes).map(Signature)
}

fn fixed<const N: usize>(field: &'static str, bytes: &[u8]) -> Result<[u8; N], Error> {
    bytes
        .try_into()
        .map_err(|_| Error::invalid(field, format!("expected {N} bytes, got {}", bytes.len())))
}

/// A shard message → [`Shard`] (absent: shard 0 of 1).
pub fn shard(field: &'static str, s: Option<&pb::Shard>) -> Result<Shard, Error> {
    let Some(s) = s else {
        return Ok(Shard::default());
    };
    if s.count == 0 || s.index >= s.count {
        return Err(Error::invalid(
            field,
            format!(
                "shard {}/{}: need index < count and count ≥ 1",
                s.index, s.count
            ),
        ));
    }
    Ok(Shard {
        index: s.index,
        count: s.count,
    })
}

impl From<Shard> for pb::Shard {
    fn from(s: Shard) -> Self {
        pb::Shard {
            index: s.index,
            count: s.count,
        }
    }
}

impl From<&JobSpec> for pb::JobSpec {
    fn from(s: &JobSpec) -> Self {
        pb::JobSpec {
            fuel: s.fuel,
            memory_bytes: s.memory_bytes,
            gpu_memory_bytes: s.gpu_memory_bytes,
            work_budget: s.work_budget,
            output_bytes: s.output_bytes,
            log_bytes: s.log_bytes,
            wall_clock_ms: s.wall_clock_ms,
            start_time_ms: s.start_time_ms,
            shard: Some(s.shard.into()),
            params: s.params.clone(),
        }
    }
}

/// A spec message → [`JobSpec`].
pub fn spec(field: &'static str, s: Option<&pb::JobSpec>) -> Result<JobSpec, Error> {
    let s = s.ok_or_else(|| Error::invalid(field, "missing"))?;
    Ok(JobSpec {
        fuel: s.fuel,
        memory_bytes: s.memory_bytes,
        gpu_memory_bytes: s.gpu_memory_bytes,
        work_budget: s.work_budget,
        output_bytes: s.output_bytes,
        log_bytes: s.log_bytes,
        wall_clock_ms: s.wall_clock_ms,
        start_time_ms: s.start_time_ms,
        shard: shard(field, s.shard.as_ref())?,
        params: s.params.clone(),
    })
}

impl From<Outcome> for pb::Outcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Success => pb::Outcome::Success,
            Outcome::GuestError => pb::Outcome::GuestError,
            Outcome::Trap => pb::Outcome::Trap,
            Outcome::FuelExhausted => pb::Outcome::FuelExhausted,
            Outcome::WorkBudgetExhausted => pb::Outcome::WorkBudgetExhausted,
            Outcome::MemoryLimit => pb::Outcome::MemoryLimit,
            Outcome::GpuQuotaExceeded => pb::Outcome::GpuQuotaExceeded,
            Outcome::OutputLimitExceeded => pb::Outcome::OutputLimitExceeded,
        }
    }
}

/// An outcome enum value → [`Outcome`].
pub fn outcome(field: &'static str, v: i32) -> Result<Outcome, Error> {
    let o = pb::Outcome::try_from(v)
        .map_err(|_| Error::invalid(field, format!("unknown outcome {v}")))?;
    Ok(match o {
        pb::Outcome::Unspecified => return Err(Error::invalid(field, "outcome not set")),
        pb::Outcome::Success => Outcome::Success,
        pb::Outcome::GuestError => Outcome::GuestError,
        pb::Outcome::Trap => Outcome::Trap,
        pb::Outcome::FuelExhausted => Outcome::FuelExhausted,
        pb::Outcome::WorkBudgetExhausted => Outcome::WorkBudgetExhausted,
        pb::Outcome::MemoryLimit => Outcome::MemoryLimit,
        pb::Outcome::GpuQuotaExceeded => Outcome::GpuQuotaExceeded,
        pb::Outcome::OutputLimitExceeded => Outcome::OutputLimitExceeded,
    })
}

impl From<&Receipt> for pb::Receipt {
    fn from(r: &Receipt) -> Self {
        let b = &r.body;
        pb::Receipt {
            job_id: b.job_id.0.to_vec(),
            shard: Some(b.shard.into()),
            provider_id: b.provider_id.0.to_vec(),
            component_hash: b.component_hash.0.to_vec(),
            inputs_root: b.inputs_root.0.to_vec(),
            outputs_root: b.outputs_root.0.to_vec(),
            trace_root: b.trace_root.0.to_vec(),
            outcome: pb::Outcome::from(b.outcome) as i32,
            fuel_used: b.fuel_used,
            work: Some(pb::WorkDone {
                flops: b.work.flops,
                bytes: b.work.bytes,
            }),
            backend: Some(pb::Backend {
                kind: b.backend.kind.clone(),
                device: b.backend.device.clone(),
            }),
            telemetry: b.telemetry.as_ref().map(|t| pb::TelemetrySummary {
                samples: t.samples,
                max_temperature_c: t.max_temperature_c,
                mean_power_mw: t.mean_power_mw,
                mean_utilization_pct: t.mean_utilization_pct,
            }),
            started_at_ms: b.started_at_ms,
            finished_at_ms: b.finished_at_ms,
            signature: r.signature.0.to_vec(),
            semantics: b.semantics,
        }
    }
}

/// A receipt message → [`Receipt`] (the signature is decoded, not checked:
/// call [`Receipt::verify`]).
pub fn receipt(r: Option<&pb::Receipt>) -> Result<Receipt, Error> {
    let r = r.ok_or_else(|| Error::invalid("receipt", "missing"))?;
    let work = r.work.unwrap_or_default();
    let backend = r.backend.clone().unwrap_or_default();
    Ok(Receipt {
        body: ReceiptBody {
            semantics: r.semantics,
            job_id: hash("receipt.job_id", &r.job_id)?,
            shard: shard("receipt.shard", r.shard.as_ref())?,
            provider_id: node_id("receipt.provider_id", &r.provider_id)?,
            component_hash: hash("receipt.component_hash", &r.component_hash)?,
            inputs_root: hash("receipt.inputs_root", &r.inputs_root)?,
            outputs_root: hash("receipt.outputs_root", &r.outputs_root)?,
            trace_root: hash("receipt.trace_root", &r.trace_root)?,
            outcome: outcome("receipt.outcome", r.outcome)?,
            fuel_used: r.fuel_used,
            work: WorkDone {
                flops: work.flops,
                bytes: work.bytes,
            },
            backend: BackendDescriptor {
                kind: backend.kind,
                device: backend.device,
            },
            telemetry: r.telemetry.map(|t| TelemetrySummary {
                samples: t.samples,
                max_temperature_c: t.max_temperature_c,
                mean_power_mw: t.mean_power_mw,
                mean_utilization_pct: t.mean_utilization_pct,
            }),
            started_at_ms: r.started_at_ms,
            finished_at_ms: r.finished_at_ms,
        },
        signature: signature("receipt.signature", &r.signature)?,
    })
}

impl From<&BlobRef> for pb::BlobRef {
    fn from(b: &BlobRef) -> Self {
        pb::BlobRef {
            name: b.name.clone(),
            hash: b.hash.0.to_vec(),
            size: b.size,
        }
    }
}

/// A heartbeat's report of the leases a provider holds → their ids.
pub fn lease_report(field: &'static str, report: &pb::LeaseReport) -> Result<Vec<Hash32>, Error> {
    report.lease_ids.iter().map(|id| hash(field, id)).collect()
}

/// Lease ids → a heartbeat's report of the leases a provider holds.
pub fn lease_report_to_pb(ids: &[Hash32]) -> pb::LeaseReport {
    pb::LeaseReport {
        lease_ids: ids.iter().map(|id| id.0.to_vec()).collect(),
    }
}

/// Blob references → [`BlobRef`]s; names must be non-empty and unique
/// (checked in O(n log n): a message may carry a hundred thousand).
pub fn blob_refs(field: &'static str, refs: &[pb::BlobRef]) -> Result<Vec<BlobRef>, Error> {
    let mut out: Vec<BlobRef> = Vec::with_capacity(refs.len());
    let mut names = std::collections::BTreeSet::new();
    for r in refs {
        if r.name.is_empty() {
            return Err(Error::invalid(field, "a blob has an empty name"));
        }
        if !names.insert(r.name.as_str()) {
            return Err(Error::invalid(
                field,
                format!("name {:?} appears twice", r.name),
            ));
        }
        out.push(BlobRef {
            name: r.name.clone(),
            hash: hash(field, &r.hash)?,
            size: r.size,
        });
    }
    Ok(out)
}

/// [`BlobRef`]s → messages.
pub fn blob_refs_to_pb(refs: &[BlobRef]) -> Vec<pb::BlobRef> {
    refs.iter().map(pb::BlobRef::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_protocol::NodeKey;

    fn sample_receipt() -> Receipt {
        let key = NodeKey::from_seed([3; 32]);
        ReceiptBody {
            semantics: assay_protocol::SEMANTICS_VERSION,
            job_id: Hash32([1; 32]),
            shard: Shard { index: 1, count: 2 },
            provider_id: key.id(),
            component_hash: Hash32([2; 32]),
            inputs_root: Hash32([3; 32]),
            outputs_root: Hash32([4; 32]),
            trace_root: Hash32([7; 32]),
            outcome: Outcome::Trap,
            fuel_used: 99,
            work: WorkDone { flops: 5, bytes: 6 },
            backend: BackendDescriptor {
                kind: "cpu".into(),
                device: "test".into(),
            },
            telemetry: Some(TelemetrySummary {
                samples: 3,
                max_temperature_c: 70,
                mean_power_mw: 250_000,
                mean_utilization_pct: 90,
            }),
            started_at_ms: 10,
            finished_at_ms: 20,
        }
        .sign(&key)
        .expect("sign")
    }

    #[test]
    fn receipt_round_trips_and_still_verifies() {
        let r = sample_receipt();
        let back = receipt(Some(&pb::Receipt::from(&r))).expect("decode");
        assert_eq!(back, r);
        back.verify().expect("signature survives the round trip");
    }

    #[test]
    fn every_outcome_round_trips() {
        for o in Outcome::ALL {
            assert_eq!(outcome("o", pb::Outcome::from(o) as i32).expect("known"), o);
        }
        assert!(outcome("o", 0).is_err());
        assert!(outcome("o", 99).is_err());
    }

    #[test]
    fn spec_round_trips() {
        let mut s = JobSpec::default();
        s.params.insert("n".into(), "3".into());
        s.shard = Shard { index: 2, count: 3 };
        assert_eq!(
            spec("spec", Some(&pb::JobSpec::from(&s))).expect("decode"),
            s
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let mut m = pb::Receipt::from(&sample_receipt());
        m.job_id.pop();
        let e = receipt(Some(&m)).expect_err("short id");
        assert!(e.to_string().contains("receipt.job_id"), "{e}");
        let e = shard("spec.shard", Some(&pb::Shard { index: 2, count: 2 })).expect_err("range");
        assert!(e.to_string().contains("index < count"), "{e}");
        let dup = vec![
            pb::BlobRef {
                name: "a".into(),
                hash: vec![0; 32],
                size: 1,
            },
            pb::BlobRef {
                name: "a".into(),
                hash: vec![0; 32],
                size: 1,
            },
        ];
        assert!(blob_refs("inputs", &dup).is_err());
    }
}
