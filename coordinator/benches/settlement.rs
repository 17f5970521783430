//! Settlement throughput: receipts settled and ledger entries posted per
//! second, on SQLite and on PostgreSQL — plain, or with every provider's
//! earnings routed through a cash-flow note or a bond.
//!
//! ```text
//! cargo bench -p assay-coordinator --bench settlement -- [--backend sqlite|postgres]
//!     [--receipts N] [--providers P] [--claims none|note|bond]
//! ```
//!
//! Setup (untimed): P providers register, a renter publishes N one-shard
//! unverified jobs, the providers lease them all and submit a receipt for
//! each at the same instant. Timed: `settle_due` (500 receipts a
//! transaction, as the coordinator's tick calls it) until every receipt is
//! paid. Each settlement posts the provider's pay, the protocol fee and the
//! renter's refund; a note adds the holders' parts, a bond its coupons and
//! escrow. PostgreSQL reads its URL from `ASSAY_TEST_POSTGRES_URL` (a fresh
//! schema per run, dropped afterwards).

use std::time::Instant;

use assay_coordinator::postgres::Postgres;
use assay_coordinator::sql::Backend;
use assay_coordinator::sqlite::Sqlite;
use assay_coordinator::store::prelude::*;
use assay_coordinator::store::{NewJob, ProviderInfo, ReceiptSubmission};
use assay_coordinator::{MarketConfig, SqlStore};
use assay_protocol::market::billable_units;
use assay_protocol::{
    BackendDescriptor, BlobRef, Hash32, JobSpec, NodeKey, Outcome, ReceiptBody, WorkDone,
    inputs_root, outputs_root,
};

struct Args {
    backend: String,
    receipts: u64,
    providers: u32,
    claims: String,
}

fn args() -> Args {
    let mut a = Args {
        backend: "sqlite".into(),
        receipts: 20_000,
        providers: 50,
        claims: "none".into(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--backend" => a.backend = val,
            "--receipts" => a.receipts = val.parse().expect("--receipts N"),
            "--providers" => a.providers = val.parse().expect("--providers P"),
            "--claims" => a.claims = val,
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown flag {other}"),
        }
        i += 2;
    }
    a
}

fn key(tag: u32, n: u32) -> NodeKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&tag.to_le_bytes());
    seed[4..8].copy_from_slice(&n.to_le_bytes());
    NodeKey::from_seed(seed)
}

fn job(n: u64, renter: &NodeKey) -> NewJob {
    // Inputs of its own: identical jobs would give a provider identical
    // receipts.
    let inputs = vec![BlobRef {
        name: "a".into(),
        hash: Hash32::of(&n.to_le_bytes()),
        size: 100,
    }];
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&n.to_le_bytes());
    id[8] = 0x5e;
    NewJob {
        // bench-pay-in
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

// claims-begin
/// Every provider sells half its cash flow (a note, half the shares to a
/// holder) or raises a bond large enough that every settlement pays a
/// coupon.
fn setup_claims<B: Backend>(s: &SqlStore<B>, providers: &[NodeKey], claims: &str) {
    use assay_coordinator::ledger::BASE;
    let holder = key(3, 0);
    s.mint(&holder.id(), 1_000_000 * BASE, "holder", 0)
        .expect("mint");
    for p in providers {
        match claims {
            "note" => {
                let note = s.issue_note(&p.id(), 100, 3_650, 0).expect("note");
                s.transfer_shares(&p.id(), &note.id, &holder.id(), 50)
                    .expect("transfer");
            }
            "bond" => {
                let bond = s
                    .issue_bond(&p.id(), 1_000 * BASE, 10_000, 3_650, 0)
                    .expect("bond");
                s.buy_bond(
                    &holder.id(),
                    &bond.id,
                    1_000 * BASE,
                    &format!("b/{}", p.id()),
                    0,
                )
                .expect("buy");
            }
            "none" => {}
            other => panic!("--claims {other}: none, note or bond"),
        }
    }
}
// claims-end

fn run<B: Backend>(s: SqlStore<B>, a: &Args) {
    let renter = key(1, 0);
    let providers: Vec<NodeKey> = (0..a.providers).map(|i| key(2, i)).collect();
    s.mint(&renter.id(), 1_000_000_000_000, "renter", 0)
        .expect("mint");
    let slots = u32::try_from(a.receipts.div_ceil(u64::from(a.providers))).expect("slots");
    for p in &providers {
        s.register(
            &ProviderInfo {
                id: p.id(),
                price: 10,
                cpu_cores: 4,
                memory_bytes: 1 << 40,
                gpus: vec![],
                slots,
                version: "bench".into(),
            },
            0,
            0,
        )
        .expect("register");
    }
    // claims-call
    setup_claims(&s, &providers, &a.claims);
    for n in 0..a.receipts {
        s.submit_job(&job(n, &renter), 1).expect("submit");
    }
    let out = b"result";
    let mut submitted = 0u64;
    let mut leases = Vec::new();
    loop {
        let before = leases.len();
        for p in &providers {
            for l in s.take_leases(&p.id(), 32, 2).expect("take") {
                leases.push((p, l));
            }
        }
        if leases.len() == before {
            break;
        }
    }
    {
        for (p, l) in leases {
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
                started_at_ms: 1,
                finished_at_ms: 2,
            }
            .sign(p)
            .expect("sign");
            s.submit_receipt(
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
                3,
            )
            .expect("receipt");
            submitted += 1;
        }
    }
    assert_eq!(submitted, a.receipts, "every job leased");
    let before = s.verify_ledger().expect("verify").entries;
    let due = 3 + s.config().settlement_delay_ms;
    let t0 = Instant::now();
    let mut settled = 0u64;
    loop {
        let n = s.settle_due(due).expect("settle").len() as u64;
        if n == 0 {
            break;
        }
        settled += n;
    }
    let secs = t0.elapsed().as_secs_f64();
    let report = s.verify_ledger().expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    let entries = report.entries - before;
    println!(
        "| {} | {} | {} | {:.0} | {:.0} | {:.1} |",
        a.backend,
        a.claims,
        settled,
        settled as f64 / secs,
        entries as f64 / secs,
        entries as f64 / settled.max(1) as f64
    );
}

fn main() {
    let a = args();
    let cfg = MarketConfig {
        settlement_delay_ms: 10,
        preference_window_ms: 0,
        ..MarketConfig::default()
    };
    println!(
        "settlement · {} receipts · {} providers · machine: {} cores",
        a.receipts,
        a.providers,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("| store | claims | receipts | receipts/s | ledger entries/s | entries per receipt |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    match a.backend.as_str() {
        "sqlite" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let s = SqlStore::open(
                Sqlite::open(&dir.path().join("bench.db")).expect("sqlite"),
                cfg,
            )
            .expect("store");
            run(s, &a);
        }
        "postgres" => {
            let url = std::env::var("ASSAY_TEST_POSTGRES_URL")
                .expect("set ASSAY_TEST_POSTGRES_URL (eval \"$(bash scripts/ci-postgres.sh)\")");
            let schema = format!("bench_settle_{}", std::process::id());
            let b = Postgres::open(&url, Some(&schema)).expect("postgres");
            let s = SqlStore::open(b, cfg).expect("store");
            run(s, &a);
            if let Ok(b) = Postgres::open(&url, Some(&schema)) {
                let _ = b.drop_schema();
            }
        }
        other => panic!("--backend {other}: sqlite or postgres"),
    }
}
