//! A populated store for the web's tests and its benchmark: providers
//! (a quarter with 8 GPUs), renters, jobs over the last day (80 % settled,
//! 10 % running, 10 % queued), device samples and closed reward epochs.

use assay_coordinator::SqlStore;
use assay_coordinator::explorer::TelemetrySample;
use assay_coordinator::sql::Backend;
use assay_coordinator::store::economy::Genesis;
use assay_coordinator::store::prelude::*;
use assay_coordinator::store::{NewJob, ProviderInfo, ReceiptSubmission};
use assay_protocol::market::billable_units;
use assay_protocol::{
    BackendDescriptor, BlobRef, Hash32, JobSpec, NodeKey, Outcome, ReceiptBody, WorkDone,
    inputs_root, outputs_root,
};

/// How big a store to make.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Jobs.
    pub jobs: u64,
    /// Providers.
    pub providers: u32,
}

/// An hour and a day, ms.
pub const HOUR: u64 = 3_600_000;
/// A day, ms.
pub const DAY: u64 = 24 * HOUR;

pub fn key(tag: u32, n: u32) -> NodeKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&tag.to_le_bytes());
    seed[4..8].copy_from_slice(&n.to_le_bytes());
    NodeKey::from_seed(seed)
}

pub fn job(n: u64, renter: &NodeKey) -> NewJob {
    let inputs = vec![BlobRef {
        name: "a".into(),
        hash: Hash32::of(&n.to_le_bytes()),
        size: 100,
    }];
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&n.to_le_bytes());
    id[8] = 0x3b;
    NewJob {
        pay_in: assay_coordinator::ledger::Unit::Iosd,
        verify_rate_ppm: 0,
        id: Hash32(id),
        renter: renter.id(),
        component_hash: Hash32([2; 32]),
        component_size: 1000,
        inputs_root: inputs_root(inputs.iter().map(|b| (b.name.as_str(), b.size, &b.hash))),
        inputs,
        spec: JobSpec {
            fuel: 1_000_000,
            work_budget: 1_000_000,
            ..JobSpec::default()
        },
        shards: 1,
        max_price: 100,
        require_gpu: false,
        shard_inputs: vec![],
    }
}

/// The populated store's ids the routes name.
#[derive(Debug)]
pub struct Named {
    pub provider: String,
    pub gpu_provider: String,
    pub renter: String,
    pub job: String,
    pub receipt: String,
    pub epoch: u64,
    /// A compute note on `provider`'s earnings.
    pub note: String,
    /// A compute bond on `provider`'s earnings, part sold to `renter`.
    pub bond: String,
}

pub fn populate<B: Backend>(s: &SqlStore<B>, a: Size, now: u64) -> Named {
    let start = now - DAY;
    s.post_genesis(&Genesis::default(), start).expect("genesis");
    let renters: Vec<NodeKey> = (0..100).map(|i| key(1, i)).collect();
    for r in &renters {
        s.mint(&r.id(), 10_000_000_000, &format!("m/{}", r.id()), start)
            .expect("mint");
    }
    let providers: Vec<NodeKey> = (0..a.providers).map(|i| key(2, i)).collect();
    let h100 = ("NVIDIA H100 80GB HBM3".to_string(), 80u64 << 30);
    for (i, p) in providers.iter().enumerate() {
        s.register(
            &ProviderInfo {
                id: p.id(),
                price: 10 + (i as u64 % 7),
                cpu_cores: 32,
                memory_bytes: 1 << 38,
                gpus: if i % 4 == 0 {
                    vec![h100.clone(); 8]
                } else {
                    vec![]
                },
                slots: 64,
                version: "bench".into(),
            },
            0,
            start,
        )
        .expect("register");
    }
    // Jobs spread over the day; each is leased by the next provider round
    // the ring as it arrives and (80 %) settles a few minutes later.
    let step = DAY / a.jobs.max(1);
    let out = b"result";
    let mut first_receipt = None;
    for n in 0..a.jobs {
        let at = start + n * step;
        let renter = &renters[(n % 100) as usize];
        s.submit_job(&job(n, renter), at).expect("submit");
        if n % 10 == 9 {
            continue; // queued
        }
        let p = &providers[(n % u64::from(a.providers)) as usize];
        let leases = s.take_leases(&p.id(), 1, at + 1).expect("take");
        let Some(l) = leases.into_iter().next() else {
            continue;
        };
        if n % 10 == 8 {
            continue; // running
        }
        let info = s.lease(&l.lease_id).expect("lease").expect("exists");
        let receipt = ReceiptBody {
            semantics: assay_protocol::SEMANTICS_VERSION,
            job_id: l.shard_job_id,
            shard: l.spec.shard,
            provider_id: p.id(),
            component_hash: l.component_hash,
            inputs_root: info.inputs_root,
            outputs_root: outputs_root([("c", &out[..])]),
            trace_root: Hash32::ZERO,
            outcome: Outcome::Success,
            fuel_used: 500_000,
            work: WorkDone {
                flops: 1_000_000,
                bytes: 500_000,
            },
            backend: BackendDescriptor {
                kind: "cpu".into(),
                device: "bench".into(),
            },
            telemetry: None,
            started_at_ms: at + 2,
            finished_at_ms: at + 3,
        }
        .sign(p)
        .expect("sign");
        let (id, _) = s
            .submit_receipt(
                &ReceiptSubmission {
                    lease_id: l.lease_id,
                    provider: p.id(),
                    units: billable_units(receipt.body.fuel_used, &receipt.body.work),
                    receipt,
                    outputs: vec![BlobRef {
                        name: "c".into(),
                        hash: Hash32::of(out),
                        size: out.len() as u64,
                    }],
                    failure_message: String::new(),
                },
                at + 4,
            )
            .expect("receipt");
        first_receipt.get_or_insert(id);
        if n % 500 == 0 {
            s.settle_due(at + 5).expect("settle");
        }
    }
    while !s.settle_due(now).expect("settle").is_empty() {}
    // A day of device samples (one a minute, 8 GPUs and the host) for every
    // tenth provider, the last hour's heartbeats for all.
    for (i, p) in providers.iter().enumerate() {
        let samples: Vec<TelemetrySample> = if i % 4 == 0 { 0..8 } else { 0..0 }
            .map(|d| TelemetrySample {
                at_ms: 0,
                device: d,
                temperature_c: 60,
                power_mw: 650_000,
                utilization_pct: 90,
                memory_used_bytes: 40 << 30,
            })
            .chain(std::iter::once(TelemetrySample {
                at_ms: 0,
                device: -1,
                temperature_c: 0,
                power_mw: 0,
                utilization_pct: 35,
                memory_used_bytes: 100 << 30,
            }))
            .collect();
        let (mut t, step) = if i % 10 == 0 {
            (now - DAY, 300_000)
        } else {
            (now, 60_000)
        };
        while t <= now {
            s.heartbeat(&p.id(), 32, &samples, t).expect("heartbeat");
            t += step;
        }
    }
    s.close_reward_epochs(now).expect("epochs");
    // The second provider sells its cash flow: a note (30 days, a tenth
    // of it on offer) and a bond (1 IOSD at 5 %, 90 days) that the first
    // renter buys 0.4 IOSD of.
    let operator = &providers[1 % providers.len()];
    let note = s
        .issue_note(&operator.id(), 1_000, 30, now)
        .expect("issue note");
    s.offer_shares(&operator.id(), &note.id, 100, 50_000)
        .expect("offer shares");
    let bond = s
        .issue_bond(&operator.id(), 1_000_000, 500, 90, now)
        .expect("issue bond");
    s.buy_bond(&renters[0].id(), &bond.id, 400_000, "fixture/bond", now)
        .expect("buy bond");
    Named {
        provider: providers[1].id().to_string(),
        gpu_provider: providers[0].id().to_string(),
        renter: renters[0].id().to_string(),
        job: job(0, &renters[0]).id.to_string(),
        receipt: first_receipt.map(|h| h.to_string()).unwrap_or_default(),
        epoch: 1,
        note: note.id.to_string(),
        bond: bond.id.to_string(),
    }
}
