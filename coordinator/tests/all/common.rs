//! Opening real stores for the shared suite: SQLite in a temporary
//! directory; PostgreSQL from `ASSAY_TEST_POSTGRES_URL`, one fresh schema per
//! test (dropped afterwards). Without the URL the PostgreSQL tests say they
//! are skipped; with `ASSAY_REQUIRE_POSTGRES=1` they fail instead.

#![allow(dead_code)]

use assay_coordinator::postgres::Postgres;
use assay_coordinator::sqlite::Sqlite;
use assay_coordinator::{MarketConfig, SqlStore};

pub struct SqliteDb {
    pub dir: tempfile::TempDir,
}

impl SqliteDb {
    pub fn new() -> SqliteDb {
        SqliteDb {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn open(&self, cfg: MarketConfig) -> SqlStore<Sqlite> {
        SqlStore::open(self.raw(), cfg).expect("migrate sqlite")
    }

    /// The database without migrating it.
    pub fn raw(&self) -> Sqlite {
        Sqlite::open(&self.dir.path().join("db.sqlite")).expect("open sqlite")
    }
}

pub struct PgDb {
    url: String,
    schema: String,
}

impl PgDb {
    /// A fresh schema, or `None` (after saying so) when no server is configured.
    pub fn new(test: &str) -> Option<PgDb> {
        match std::env::var("ASSAY_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => {
                let mut r = [0u8; 4];
                getrandom::fill(&mut r).expect("random");
                Some(PgDb {
                    url,
                    schema: format!("t_{}_{}", test, hex::encode(r)),
                })
            }
            _ => {
                if std::env::var("ASSAY_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                    panic!("ASSAY_REQUIRE_POSTGRES=1 but ASSAY_TEST_POSTGRES_URL is not set");
                }
                eprintln!(
                    "SKIPPED {test} on PostgreSQL: set ASSAY_TEST_POSTGRES_URL (see scripts/ci-postgres.sh)"
                );
                None
            }
        }
    }

    pub fn open(&self, cfg: MarketConfig) -> SqlStore<Postgres> {
        SqlStore::open(self.raw(), cfg).expect("migrate postgres")
    }

    /// The database without migrating it.
    pub fn raw(&self) -> Postgres {
        Postgres::open(&self.url, Some(&self.schema)).expect("connect to postgres")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(b) = Postgres::open(&self.url, Some(&self.schema)) {
            let _ = b.drop_schema();
        }
    }
}

/// Generates `mod sqlite { #[test] fn name() }` and `mod postgres { … }`
/// for each generic test `fn name<B: Backend>(db: &dyn Fn(MarketConfig) -> SqlStore<B>)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let db = $crate::common::SqliteDb::new();
                    super::$name(&|cfg| db.open(cfg));
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let Some(db) = $crate::common::PgDb::new(stringify!($name)) else { return };
                    super::$name(&|cfg| db.open(cfg));
                }
            )*
        }
    };
}

// ---- market fixtures shared by the suites ------------------------------------

use assay_coordinator::sql::Backend;
use assay_coordinator::store::prelude::*;
use assay_coordinator::store::{Lease, NewJob, ReceiptSubmission, RunResult};
use assay_protocol::market::billable_units;
use assay_protocol::{
    BackendDescriptor, BlobRef, Hash32, JobSpec, NodeId, NodeKey, ReceiptBody, inputs_root,
};

/// The node key of seed `n` (tests name nodes by small numbers).
pub fn key(n: u8) -> NodeKey {
    NodeKey::from_seed([n; 32])
}

/// A job by `renter` of `shards` shards over one small input that `tag`
/// makes unique (so is the job id), at most `max_price` per unit, checked
/// at `rate_ppm`.
pub fn job(
    renter: &NodeId,
    tag: u8,
    shards: u32,
    max_price: u64,
    rate_ppm: u32,
    spec: JobSpec,
) -> NewJob {
    let inputs = vec![BlobRef {
        name: "a".into(),
        hash: Hash32([tag; 32]),
        size: 3,
    }];
    NewJob {
        pay_in: assay_coordinator::ledger::Unit::Iosd,
        id: Hash32([tag.wrapping_add(100); 32]),
        renter: *renter,
        component_hash: Hash32([7; 32]),
        component_size: 10,
        inputs_root: inputs_root(inputs.iter().map(|b| (b.name.as_str(), b.size, &b.hash))),
        inputs,
        spec,
        shards,
        max_price,
        require_gpu: false,
        shard_inputs: vec![],
        verify_rate_ppm: rate_ppm,
    }
}

/// `k`'s signed receipt for `lease` stating `result`, as it is submitted
/// (with `outputs` as the uploaded blobs).
pub fn submission<B: Backend>(
    store: &SqlStore<B>,
    lease: &Lease,
    k: &NodeKey,
    result: &RunResult,
    outputs: Vec<BlobRef>,
) -> ReceiptSubmission {
    traced_submission(
        store,
        lease,
        k,
        result,
        outputs,
        assay_protocol::Hash32::ZERO,
    )
}

/// [`submission`] of a run whose trace root is `trace_root`.
pub fn traced_submission<B: Backend>(
    store: &SqlStore<B>,
    lease: &Lease,
    k: &NodeKey,
    result: &RunResult,
    outputs: Vec<BlobRef>,
    trace_root: assay_protocol::Hash32,
) -> ReceiptSubmission {
    let info = store
        .lease(&lease.lease_id)
        .expect("lease")
        .expect("exists");
    let receipt = ReceiptBody {
        semantics: assay_protocol::SEMANTICS_VERSION,
        job_id: lease.shard_job_id,
        shard: lease.spec.shard,
        provider_id: k.id(),
        component_hash: lease.component_hash,
        inputs_root: info.inputs_root,
        outputs_root: result.outputs_root,
        trace_root,
        outcome: result.outcome,
        fuel_used: result.fuel_used,
        work: result.work,
        backend: BackendDescriptor {
            kind: "cpu".into(),
            device: "test".into(),
        },
        telemetry: None,
        started_at_ms: 1,
        finished_at_ms: 2,
    }
    .sign(k)
    .expect("sign");
    ReceiptSubmission {
        lease_id: lease.lease_id,
        provider: k.id(),
        units: billable_units(receipt.body.fuel_used, &receipt.body.work),
        receipt,
        outputs,
        failure_message: String::new(),
    }
}

/// `k`'s receipt for `lease`: a successful run with one output `c` =
/// `result` (500k fuel, 1M FLOPs, 500k bytes), as the suites' honest
/// providers submit it.
pub fn receipt_for<B: Backend>(
    store: &SqlStore<B>,
    lease: &Lease,
    k: &NodeKey,
) -> ReceiptSubmission {
    const OUT: &[u8] = b"result";
    let result = RunResult {
        outputs_root: assay_protocol::outputs_root([("c", OUT)]),
        outcome: assay_protocol::Outcome::Success,
        fuel_used: 500_000,
        work: assay_protocol::WorkDone {
            flops: 1_000_000,
            bytes: 500_000,
        },
    };
    let outputs = vec![BlobRef {
        name: "c".into(),
        hash: Hash32::of(OUT),
        size: OUT.len() as u64,
    }];
    submission(store, lease, k, &result, outputs)
}

/// Fails the test unless the ledger verifies (chain, balances, head).
pub fn ledger_ok<B: Backend>(s: &SqlStore<B>) {
    let r = s.verify_ledger().expect("verify");
    assert!(r.ok(), "ledger problems: {:?}", r.problems);
}
