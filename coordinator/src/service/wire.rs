//! The store's records as protobuf messages (the requests' decoding is
//! `assay_proto::convert`).

use assay_proto::{convert, pb};
use assay_protocol::NodeId;
use assay_protocol::verification::{escape_probability, rate};

use crate::explorer::JobSummary;
use crate::ledger::{Entry, Unit};
use crate::rules::disputes::RevealedInput;
use crate::state::CheckReason;
use crate::store::claims::{Bond, Note};
use crate::store::disputes::QuestionTask;
use crate::store::economy::{Price, RewardEpoch};
use crate::types::{
    Account, CheckTask, ClusterView, EpochSeed, JobView, Lease, ReceiptRecord, VerdictView,
};

/// A job's status message.
pub(super) fn job_status(view: &JobView, slash_bps: u32) -> pb::JobStatus {
    pb::JobStatus {
        job_id: view.id.0.to_vec(),
        renter: view.renter.0.to_vec(),
        state: view.state().as_str().to_string(),
        shards: view
            .shards
            .iter()
            .map(|s| pb::ShardStatus {
                index: s.index,
                shard_job_id: s.shard_job_id.0.to_vec(),
                state: s.state.as_str().to_string(),
                provider: s.provider.map(|p| p.0.to_vec()).unwrap_or_default(),
                attempts: s.attempts,
                receipt: s.receipt.as_ref().map(|r| pb::Receipt::from(&r.receipt)),
                outputs: s
                    .receipt
                    .as_ref()
                    .map(|r| convert::blob_refs_to_pb(&r.outputs))
                    .unwrap_or_default(),
                why_not_matched: s.why_not_matched.clone(),
                settled: s.receipt.as_ref().is_some_and(|r| r.paid.is_some()),
                paid: s.receipt.as_ref().and_then(|r| r.paid).unwrap_or(0),
                inputs: convert::blob_refs_to_pb(&s.inputs),
                verification: s.receipt.as_ref().map(|r| pb::Verification {
                    state: r.check_state.as_str().to_string(),
                    epoch: r.epoch,
                    reason: CheckReason::as_stored(r.check_reason).to_string(),
                    verdicts: s.verdicts.iter().map(verdict_record).collect(),
                    note: s.check_note.clone(),
                }),
                rejected_receipts: s.rejected_receipts.iter().map(|h| h.0.to_vec()).collect(),
                failure_message: s
                    .receipt
                    .as_ref()
                    .map(|r| r.failure_message.clone())
                    .unwrap_or_default(),
                inline_outputs: Vec::new(),
            })
            .collect(),
        result_root: view.result_root().map(|h| h.0.to_vec()).unwrap_or_default(),
        escrow: view.escrow,
        max_price: view.max_price,
        created_at_ms: view.created_at_ms,
        component_hash: view.component_hash.0.to_vec(),
        inputs: convert::blob_refs_to_pb(&view.inputs),
        spec: Some(pb::JobSpec::from(&view.spec)),
        guarantee: Some(pb::Guarantee {
            rate_ppm: view.verify_rate_ppm,
            slash_bps,
            providers: view
                .providers_at_stake
                .iter()
                .map(|(p, stake, n)| pb::ProviderGuarantee {
                    provider: p.0.to_vec(),
                    stake: *stake,
                    receipts: *n,
                    escape: [0.01, 0.1, 1.0]
                        .iter()
                        .map(|f| pb::EscapeOdds {
                            cheat_fraction: *f,
                            probability: escape_probability(rate(view.verify_rate_ppm), *f, *n),
                        })
                        .collect(),
                })
                .collect(),
        }),
    }
}

pub(super) fn receipt_record(r: &ReceiptRecord) -> pb::ReceiptRecord {
    pb::ReceiptRecord {
        seq: r.seq,
        receipt_id: r.id.0.to_vec(),
        job_id: r.job_id.0.to_vec(),
        receipt: Some(pb::Receipt::from(&r.receipt)),
        outputs: convert::blob_refs_to_pb(&r.outputs),
        committed_at_ms: r.committed_at_ms,
        epoch: r.epoch,
        rate_ppm: r.rate_ppm,
        failure_message: r.failure_message.clone(),
    }
}

pub(super) fn verdict_record(v: &VerdictView) -> pb::VerdictRecord {
    pb::VerdictRecord {
        verifier: v.verifier.0.to_vec(),
        role: v.role.as_str().to_string(),
        agrees: v.agrees,
        outputs_root: v.result.outputs_root.0.to_vec(),
        outcome: pb::Outcome::from(v.result.outcome) as i32,
        fuel_used: v.result.fuel_used,
        work: Some(pb::WorkDone {
            flops: v.result.work.flops,
            bytes: v.result.work.bytes,
        }),
        at_ms: v.at_ms,
        arbitration: v.arbitration.clone(),
    }
}

pub(super) fn epoch_beacon(e: &EpochSeed) -> pb::EpochBeacon {
    pb::EpochBeacon {
        epoch: e.epoch,
        commitment: e.commitment.0.to_vec(),
        seed: e.seed.map(|s| s.to_vec()).unwrap_or_default(),
    }
}

pub(super) fn account_response(node: &NodeId, a: &Account) -> pb::AccountResponse {
    pb::AccountResponse {
        node_id: node.0.to_vec(),
        balance: a.balance,
        stake: a.stake,
        earnings: a.earnings,
        verifier_earnings: a.verifier_earnings,
        io_balance: a.io_balance,
        unbonding: a.unbonding,
        unbonding_release_ms: a.unbonding_release_ms.unwrap_or(0),
        rewards: a.rewards,
        stake_floor: a.stake_floor,
    }
}

pub(super) fn lease(l: &Lease) -> pb::Lease {
    pb::Lease {
        lease_id: l.lease_id.0.to_vec(),
        job_id: l.job_id.0.to_vec(),
        shard_job_id: l.shard_job_id.0.to_vec(),
        component_hash: l.component_hash.0.to_vec(),
        component_size: l.component_size,
        inputs: convert::blob_refs_to_pb(&l.inputs),
        spec: Some(pb::JobSpec::from(&l.spec)),
        expires_at_ms: l.expires_at_ms,
        price: l.price,
        inline_inputs: Vec::new(),
    }
}

pub(super) fn check(t: &CheckTask) -> pb::Check {
    pb::Check {
        check_id: t.id.0.to_vec(),
        role: t.role.as_str().to_string(),
        reason: t.reason.as_str().to_string(),
        record: Some(receipt_record(&t.record)),
        component_hash: t.lease.component_hash.0.to_vec(),
        component_size: t.lease.component_size,
        inputs: convert::blob_refs_to_pb(&t.lease.inputs),
        spec: Some(pb::JobSpec::from(&t.lease.spec)),
        beacon: Some(epoch_beacon(&t.beacon)),
        deadline_ms: t.deadline_ms,
        step: t.step.as_ref().map(|(dispute, s)| pb::DisputedStep {
            dispute_id: dispute.0.to_vec(),
            index: s.index,
            call: s.call.clone(),
            provider_output: s.outputs[0].0.to_vec(),
            verifier_output: s.outputs[1].0.to_vec(),
            provider_trace_root: s.roots[0].0.to_vec(),
            verifier_trace_root: s.roots[1].0.to_vec(),
            inputs: s.inputs.iter().map(step_tensor).collect(),
            kind: s.kind.as_str().to_string(),
            provider_call: s.calls[0].clone().unwrap_or_default(),
            verifier_call: s.calls[1].clone().unwrap_or_default(),
        }),
    }
}

/// A revealed input on the wire.
pub(super) fn step_tensor(t: &RevealedInput) -> pb::StepTensor {
    pb::StepTensor {
        step: t.step,
        call: t.call.clone(),
        trace_steps: t.trace_steps,
        siblings: t.siblings.iter().map(|h| h.0.to_vec()).collect(),
        dtype: u32::from(t.dtype),
        shape: t.shape.clone(),
        tensor: Some(pb::BlobRef {
            name: format!("step-{}", t.step),
            hash: t.blob.0.to_vec(),
            size: t.size,
        }),
    }
}

/// A question on the wire.
pub(super) fn question(q: &QuestionTask) -> pb::Question {
    pb::Question {
        dispute_id: q.dispute.0.to_vec(),
        receipt_id: q.receipt.0.to_vec(),
        check_id: q.check.0.to_vec(),
        kind: q.question.phase.as_str().to_string(),
        level: q.question.level,
        index: q.question.index,
        steps: q.question.steps.clone(),
        deadline_ms: q.deadline_ms,
        rerun: q.rerun.as_ref().map(check),
    }
}

pub(super) fn ledger_entry(e: Entry) -> pb::LedgerEntry {
    pb::LedgerEntry {
        seq: e.seq,
        kind: e.kind,
        debit: e.debit,
        credit: e.credit,
        amount: e.amount,
        reference: e.reference,
        at_ms: e.at_ms,
        prev_hash: e.prev_hash.to_vec(),
        hash: e.hash.to_vec(),
        unit: e.unit.as_str().to_string(),
        format: u32::from(e.format),
    }
}

/// A unit named in a request: `iosd` (or empty) or `io`.
pub(super) fn unit(name: &str) -> Result<Unit, tonic::Status> {
    if name.is_empty() {
        return Ok(Unit::Iosd);
    }
    Unit::parse(name).ok_or_else(|| {
        tonic::Status::invalid_argument(format!("unit {name:?}: use \"io\" or \"iosd\""))
    })
}

pub(super) fn price(p: &Price) -> pb::PriceResponse {
    pb::PriceResponse {
        micro_iosd_per_io: p.micro_iosd_per_io,
        source: p.source.to_string(),
        oracle: p.oracle.map(|k| k.0.to_vec()).unwrap_or_default(),
        round: p.round,
        at_ms: p.at_ms,
    }
}

pub(super) fn reward_epoch(e: &RewardEpoch) -> pb::RewardEpoch {
    pb::RewardEpoch {
        epoch: e.epoch,
        start_ms: e.start_ms,
        end_ms: e.end_ms,
        scheduled: e.scheduled,
        emitted: e.emitted,
        nominated: e.nominated,
        paid: e.paid,
        failed: e.failed,
        closed_at: e.closed_at,
        payouts: e
            .payouts
            .iter()
            .map(|p| pb::RewardPayout {
                provider: p.provider.0.to_vec(),
                work_units: p.work_units,
                uptime_ms: p.uptime_ms,
                failed: p.failed,
                amount: p.amount,
            })
            .collect(),
    }
}

fn holdings(h: &[(NodeId, u64)]) -> Vec<pb::Holding> {
    h.iter()
        .map(|(holder, amount)| pb::Holding {
            holder: holder.0.to_vec(),
            amount: *amount,
        })
        .collect()
}

pub(super) fn note(n: &Note) -> pb::NoteResponse {
    pb::NoteResponse {
        note_id: n.id.0.to_vec(),
        device: n.device.0.to_vec(),
        shares: n.shares,
        holders_bps: n.holders_bps,
        term_days: n.term_days,
        issued_at: n.issued_at,
        ends_at: n.ends_at,
        holdings: holdings(&n.holdings),
        offers: n
            .offers
            .iter()
            .map(|o| pb::ShareOffer {
                seller: o.seller.0.to_vec(),
                shares: o.shares,
                price: o.price,
            })
            .collect(),
    }
}

pub(super) fn bond(b: &Bond) -> pb::BondResponse {
    pb::BondResponse {
        bond_id: b.id.0.to_vec(),
        device: b.device.0.to_vec(),
        principal: b.principal,
        sold: b.sold,
        coupon_bps: b.coupon_bps,
        maturity_days: b.maturity_days,
        issued_at: b.issued_at,
        matures_at: b.matures_at,
        coupon_total: b.coupon_total,
        coupon_paid: b.coupon_paid,
        escrowed: b.escrowed,
        state: b.state.as_str().to_string(),
        shortfall: b.shortfall,
        holdings: holdings(&b.holdings),
    }
}

/// A job of the explorer's job list as `Renter.ListJobs` carries it.
pub(super) fn job_summary(j: &JobSummary) -> pb::JobSummary {
    pb::JobSummary {
        job_id: hex::decode(&j.id).unwrap_or_default(),
        renter: hex::decode(&j.renter).unwrap_or_default(),
        state: j.state.clone(),
        shards: j.shards,
        shards_done: j.shards_done,
        escrow: j.escrow,
        paid_in: j.paid_in.clone(),
        paid: j.paid_uiosd,
        verify_rate_ppm: j.verify_rate_ppm,
        verified: j.verified,
        rejected: j.rejected,
        created_at_ms: j.created_at_ms,
    }
}

/// A cluster as the wire carries it.
pub(super) fn cluster(v: &ClusterView) -> pb::Cluster {
    pb::Cluster {
        cluster_id: v.id.0.to_vec(),
        renter: v.renter.0.to_vec(),
        state: v.state.as_str().to_string(),
        gpus: v.wanted.gpus,
        gpu_class: v.wanted.gpu_class.clone(),
        min_reliability_permille: v.wanted.min_reliability_permille,
        max_price: v.wanted.max_price,
        starts_ms: v.starts_ms,
        ends_ms: v.ends_ms,
        escrow_left: v.escrow_left(),
        paid: v.paid,
        refunded: v.refunded,
        members: v
            .members
            .iter()
            .map(|m| pb::ClusterMember {
                provider: m.provider.0.to_vec(),
                reserve_price: m.reserve_price,
                work_price: m.work_price,
                joined_ms: m.joined_ms,
                left_ms: m.left_ms.unwrap_or(0),
                state: m.state.as_str().to_string(),
                why_left: m.why_left.clone(),
                paid: m.paid,
                budget: m.budget,
            })
            .collect(),
        escrowed: v.escrowed,
        ended_ms: v.ended_ms.unwrap_or(0),
    }
}
