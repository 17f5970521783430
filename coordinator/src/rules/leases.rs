//! Leases: who may act on one, what its state allows, when it expires, what
//! happens to its shard when it ends without a receipt, and a receipt
//! checked against the lease it completes (and the failure message beside
//! it).

use assay_protocol::{BlobRef, Hash32, NodeId, ReceiptBody};

use crate::Error;
use crate::state::{LeaseState, ShardState};
use crate::types::LeaseInfo;

/// Only the provider holding a lease may complete or return it.
///
/// # Errors
///
/// [`Error::PermissionDenied`] for anyone else.
pub fn require_holder(lease: &Hash32, holder: &NodeId, node: &NodeId) -> Result<(), Error> {
    if holder == node {
        return Ok(());
    }
    Err(Error::PermissionDenied(format!(
        "lease {lease} is held by provider {holder}, not by {node}"
    )))
}

/// What a receipt for a lease in `state` may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptGate {
    /// The lease is active: record the receipt.
    Record,
    /// A receipt was recorded already: a retry of the same one gets the
    /// same answer, another one is refused.
    AlreadyDone,
}

/// Whether a receipt is accepted for a lease in `state`.
///
/// # Errors
///
/// [`Error::Precondition`] for an expired or returned lease.
pub fn receipt_gate(lease: &Hash32, state: LeaseState) -> Result<ReceiptGate, Error> {
    match state {
        LeaseState::Active => Ok(ReceiptGate::Record),
        LeaseState::Done => Ok(ReceiptGate::AlreadyDone),
        LeaseState::Expired => Err(Error::Precondition(format!(
            "lease {lease} expired (no heartbeat within the lease time) and its shard went back to the queue: \
             the result is not accepted"
        ))),
        LeaseState::Returned => Err(Error::Precondition(format!(
            "lease {lease} was returned: the result is not accepted"
        ))),
    }
}

/// When a lease granted or renewed at `now_ms` expires.
pub fn expires_at(now_ms: u64, ttl_ms: u64) -> u64 {
    now_ms.saturating_add(ttl_ms)
}

/// A lease's hard end: `factor` times its job's watchdog (`wall_clock_ms`)
/// after it was granted, plus one lease time — a provider that heartbeats
/// forever still cannot sit on a shard and its escrow.
pub fn lease_cap(granted_at_ms: u64, factor: u64, wall_clock_ms: u64, ttl_ms: u64) -> u64 {
    granted_at_ms
        .saturating_add(factor.saturating_mul(wall_clock_ms))
        .saturating_add(ttl_ms)
}

/// When a lease renewed at `now_ms` expires: a lease time later, never past
/// its hard end (`None`: a lease granted before leases had one).
pub fn renewed_until(now_ms: u64, ttl_ms: u64, cap_at_ms: Option<u64>) -> u64 {
    let renewed = expires_at(now_ms, ttl_ms);
    cap_at_ms.map_or(renewed, |cap| renewed.min(cap))
}

/// Why a lease a provider's heartbeat did not report was ended.
pub const NOT_HELD: &str = "not held by the provider (lost TakeLeases reply?)";

/// Whether an open lease missing from its provider's report of the leases
/// it holds is ended: only once it was granted more than `grace_ms` ago (the
/// `TakeLeases` reply may still be on its way, or the report was composed
/// just before the take).
pub fn ends_unreported(granted_at_ms: u64, now_ms: u64, grace_ms: u64) -> bool {
    now_ms.saturating_sub(granted_at_ms) > grace_ms
}

/// Whether giving a lease back counts against the provider's reliability
/// now: a fault of its machine does, unless the job's own watchdog ended the
/// run — that is charged only if someone later completes the shard (the
/// job could be run after all), and never when every attempt timed out.
pub fn charged_on_return(fault: bool, watchdog: bool) -> bool {
    fault && !watchdog
}

/// Where a shard goes when its lease ended without a receipt, after
/// `attempts` leases: back to the queue, or — after `max_attempts` (0:
/// never) — failed, its escrow refunded.
pub fn shard_after_lost_lease(attempts: u64, max_attempts: u32) -> ShardState {
    if max_attempts > 0 && attempts >= u64::from(max_attempts) {
        ShardState::Failed
    } else {
        ShardState::Queued
    }
}

/// The receipt's body names the provider that signs the request.
///
/// # Errors
///
/// [`Error::PermissionDenied`] otherwise.
pub fn require_signer(body: &ReceiptBody, node: &NodeId) -> Result<(), Error> {
    if body.provider_id == *node {
        return Ok(());
    }
    Err(Error::PermissionDenied(format!(
        "the receipt names provider {} but the request is signed by {node}",
        body.provider_id
    )))
}

/// A failed run's message for people fits what the coordinator keeps
/// ([`assay_proto::FAILURE_MESSAGE_MAX_BYTES`]; providers cut it to that).
///
/// # Errors
///
/// [`Error::Invalid`] if it is longer.
pub fn check_failure_message(message: &str) -> Result<(), Error> {
    let max = assay_proto::FAILURE_MESSAGE_MAX_BYTES;
    if message.len() <= max {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "the failure message is {} bytes but at most {max} are kept: cut it on a char boundary \
         (assay_proto::failure_message)",
        message.len()
    )))
}

/// Outputs smaller than this are accepted whatever the spec's output limit.
const OUTPUT_FLOOR_BYTES: u64 = 64 << 10;

/// Checks a receipt (and its outputs' sizes) against the lease it
/// completes: held by `node`, the same shard job, shard, component and
/// inputs root, fuel and work within the spec, outputs within its limit.
///
/// # Errors
///
/// [`Error::PermissionDenied`] (another provider's lease),
/// [`Error::Invalid`] (a mismatch, or a budget exceeded).
pub fn check_receipt(
    info: &LeaseInfo,
    node: &NodeId,
    body: &ReceiptBody,
    outputs: &[BlobRef],
) -> Result<(), Error> {
    let l = &info.lease;
    let lease_id = l.lease_id;
    require_holder(&lease_id, &info.provider, node)?;
    let mismatch = |what: &str, got: String, want: String| {
        Err(Error::Invalid(format!(
            "the receipt's {what} is {got} but lease {lease_id} is for {want}"
        )))
    };
    if body.job_id != l.shard_job_id {
        return mismatch("job id", body.job_id.to_hex(), l.shard_job_id.to_hex());
    }
    if body.shard != l.spec.shard {
        return mismatch(
            "shard",
            format!("{}/{}", body.shard.index, body.shard.count),
            format!("{}/{}", l.spec.shard.index, l.spec.shard.count),
        );
    }
    if body.component_hash != l.component_hash {
        return mismatch(
            "component",
            body.component_hash.to_hex(),
            l.component_hash.to_hex(),
        );
    }
    if body.inputs_root != info.inputs_root {
        return mismatch(
            "inputs root",
            body.inputs_root.to_hex(),
            info.inputs_root.to_hex(),
        );
    }
    if body.fuel_used > l.spec.fuel {
        return Err(Error::Invalid(format!(
            "the receipt claims {} fuel but the spec allows {}",
            body.fuel_used, l.spec.fuel
        )));
    }
    let work = body.work.flops.saturating_add(body.work.bytes);
    if work > l.spec.work_budget {
        return Err(Error::Invalid(format!(
            "the receipt claims {work} work units but the spec allows {}",
            l.spec.work_budget
        )));
    }
    let total: u64 = outputs.iter().map(|o| o.size).sum();
    if total > l.spec.output_bytes.max(OUTPUT_FLOOR_BYTES) {
        return Err(Error::Invalid(format!(
            "outputs total {total} bytes, over the spec's {}",
            l.spec.output_bytes
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Lease;
    use assay_protocol::{BackendDescriptor, JobSpec, Outcome, Shard, WorkDone};

    fn info(provider: NodeId) -> LeaseInfo {
        LeaseInfo {
            lease: Lease {
                lease_id: Hash32([9; 32]),
                job_id: Hash32([1; 32]),
                shard_job_id: Hash32([2; 32]),
                component_hash: Hash32([3; 32]),
                component_size: 10,
                inputs: Vec::new(),
                spec: JobSpec {
                    fuel: 100,
                    work_budget: 50,
                    output_bytes: 1 << 20,
                    shard: Shard { index: 1, count: 2 },
                    ..JobSpec::default()
                },
                expires_at_ms: 0,
                price: 1,
            },
            provider,
            state: LeaseState::Active,
            inputs_root: Hash32([4; 32]),
        }
    }

    fn body(provider: NodeId) -> ReceiptBody {
        ReceiptBody {
            semantics: assay_protocol::SEMANTICS_VERSION,
            job_id: Hash32([2; 32]),
            shard: Shard { index: 1, count: 2 },
            provider_id: provider,
            component_hash: Hash32([3; 32]),
            inputs_root: Hash32([4; 32]),
            outputs_root: Hash32([5; 32]),
            trace_root: Hash32::ZERO,
            outcome: Outcome::Success,
            fuel_used: 100,
            work: WorkDone {
                flops: 25,
                bytes: 25,
            },
            backend: BackendDescriptor::default(),
            telemetry: None,
            started_at_ms: 0,
            finished_at_ms: 0,
        }
    }

    #[test]
    fn a_receipt_must_match_its_lease() {
        let me = NodeId([7; 32]);
        let info = info(me);
        assert!(check_receipt(&info, &me, &body(me), &[]).is_ok());
        assert!(matches!(
            check_receipt(&info, &NodeId([8; 32]), &body(me), &[]),
            Err(Error::PermissionDenied(_))
        ));
        let cases: [fn(&mut ReceiptBody); 6] = [
            |b| b.job_id = Hash32([0; 32]),
            |b| b.shard.index = 0,
            |b| b.component_hash = Hash32([0; 32]),
            |b| b.inputs_root = Hash32([0; 32]),
            |b| b.fuel_used = 101,
            |b| b.work.bytes = 26,
        ];
        for (i, change) in cases.iter().enumerate() {
            let mut b = body(me);
            change(&mut b);
            assert!(
                matches!(check_receipt(&info, &me, &b, &[]), Err(Error::Invalid(_))),
                "case {i}"
            );
        }
        let big = BlobRef {
            name: "out".into(),
            hash: Hash32([0; 32]),
            size: (1 << 20) + 1,
        };
        assert!(matches!(
            check_receipt(&info, &me, &body(me), &[big]),
            Err(Error::Invalid(_))
        ));
        assert!(require_signer(&body(me), &me).is_ok());
        assert!(matches!(
            require_signer(&body(me), &NodeId([8; 32])),
            Err(Error::PermissionDenied(_))
        ));
    }

    #[test]
    fn a_lease_state_gates_its_receipt_and_lost_leases_give_up() {
        let id = Hash32([1; 32]);
        assert_eq!(
            receipt_gate(&id, LeaseState::Active).ok(),
            Some(ReceiptGate::Record)
        );
        assert_eq!(
            receipt_gate(&id, LeaseState::Done).ok(),
            Some(ReceiptGate::AlreadyDone)
        );
        assert!(matches!(
            receipt_gate(&id, LeaseState::Expired),
            Err(Error::Precondition(_))
        ));
        assert!(matches!(
            receipt_gate(&id, LeaseState::Returned),
            Err(Error::Precondition(_))
        ));
        assert_eq!(shard_after_lost_lease(4, 5), ShardState::Queued);
        assert_eq!(shard_after_lost_lease(5, 5), ShardState::Failed);
        assert_eq!(shard_after_lost_lease(500, 0), ShardState::Queued);
        assert_eq!(expires_at(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn a_lease_ends_at_its_cap_however_often_it_is_renewed() {
        // Granted at 1 s, watchdog 10 s, 3×, lease time 2 s: ends at 33 s.
        let cap = lease_cap(1_000, 3, 10_000, 2_000);
        assert_eq!(cap, 33_000);
        assert_eq!(renewed_until(5_000, 2_000, Some(cap)), 7_000);
        assert_eq!(renewed_until(32_000, 2_000, Some(cap)), cap);
        assert_eq!(renewed_until(40_000, 2_000, Some(cap)), cap);
        assert_eq!(renewed_until(40_000, 2_000, None), 42_000);
        assert_eq!(lease_cap(u64::MAX, 3, u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn unreported_leases_end_after_the_grace_and_watchdogs_are_not_charged_on_return() {
        assert!(!ends_unreported(1_000, 11_000, 10_000));
        assert!(ends_unreported(1_000, 11_001, 10_000));
        assert!(!ends_unreported(5_000, 1_000, 0), "a clock step back");
        assert!(charged_on_return(true, false));
        assert!(!charged_on_return(true, true));
        assert!(!charged_on_return(false, true));
        assert!(!charged_on_return(false, false));
    }
}
