//! Blob retention and quotas on real databases: which blobs a sweep keeps
//! (recent uploads, a live job's component, inputs and outputs, the public
//! challenge component) and collects (the rest, once the retention period
//! passed), what that frees of a key's quota, and the references of jobs
//! stored before the schema knew them.

use std::time::{Duration, UNIX_EPOCH};

use assay_coordinator::blobs::BlobStore;
use assay_coordinator::retention::{Sweep, sweep};
use assay_coordinator::sql::Backend;
use assay_coordinator::store::prelude::*;
use assay_coordinator::{MarketConfig, SqlStore};
use assay_protocol::Hash32;

use crate::common::{key, ledger_ok, receipt_for};
use crate::store::{provider, spec};

type Db<'a, B> = &'a dyn Fn(MarketConfig) -> SqlStore<B>;

fn cfg() -> MarketConfig {
    MarketConfig {
        lease_ttl_ms: 10_000,
        provider_liveness_ms: 100_000,
        preference_window_ms: 0,
        settlement_delay_ms: 500,
        max_attempts: 0,
        ..MarketConfig::default()
    }
}

/// Stores `bytes` under `hash` (the fixtures name blobs by made-up hashes)
/// as if last used at `at_ms` since the epoch.
fn stored(blobs: &BlobStore, hash: &Hash32, bytes: &[u8], at_ms: u64) {
    let path = blobs.path(hash);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(&path, bytes).expect("write");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open")
        .set_modified(UNIX_EPOCH + Duration::from_millis(at_ms))
        .expect("set time");
}

/// The keeping rules, step by step on a synthetic clock: blob times are
/// set to 0.5 s after the epoch, the store's to a few seconds.
fn a_sweep_keeps_what_live_jobs_need_and_collects_the_rest<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = BlobStore::open(dir.path(), 1 << 20).expect("blobs");
    let (r, p) = (key(1), key(2));
    s.mint(&r.id(), 10_000, "m", 0).expect("mint");
    s.register(&provider(&p, 50, 1 << 30), 0, 0)
        .expect("register");
    let job = crate::common::job(&r.id(), 1, 1, 100, 0, spec());
    let (component, input) = (job.component_hash, job.inputs[0].hash);
    let output = Hash32::of(b"result");
    let (unused, orphan, public) = (Hash32([40; 32]), Hash32([41; 32]), Hash32([42; 32]));
    for (h, bytes) in [
        (&component, &b"component"[..]),
        (&input, b"abc"),
        (&output, b"result"),
        (&unused, b"uploaded, never used"),
        (&orphan, b"nobody's"),
        (&public, b"challenge"),
    ] {
        stored(&blobs, h, bytes, 500);
    }
    s.add_blob_owner(&unused, &r.id(), 20, 100).expect("owner");
    s.add_blob_owner(&component, &r.id(), 9, 100)
        .expect("owner");
    assert_eq!(s.stored_by(&r.id(), &unused).expect("stored"), (29, true));
    assert_eq!(s.stored_by(&r.id(), &orphan).expect("stored"), (29, false));
    s.submit_job(&job, 0).expect("job");
    let lease = s.take_leases(&p.id(), 1, 10).expect("take");
    assert_eq!(lease.len(), 1);
    // The provider uploads its output just before its receipt.
    s.add_blob_owner(&output, &p.id(), 6, 1_500).expect("owner");

    // At 2 s with 1 s of retention: the job is old but its shard is
    // leased; the output was uploaded within the period.
    let swept = sweep(&blobs, &s, 2_000, 1_000, Some(&public)).expect("sweep");
    assert_eq!(
        swept,
        Sweep {
            kept: 4,
            collected: 2,
            bytes: 20 + 8,
        }
    );
    for h in [&unused, &orphan] {
        assert_eq!(blobs.size(h), None, "collected");
    }
    assert_eq!(
        s.stored_by(&r.id(), &unused).expect("stored"),
        (9, false),
        "a collected blob frees its uploader's quota"
    );

    let (_, settle_at) = s
        .submit_receipt(&receipt_for(&s, &lease[0], &p), 1_800)
        .expect("receipt");
    assert_eq!(s.settle_due(settle_at).expect("settle").len(), 1);
    // Settled within the period: the renter may still fetch the output.
    let swept = sweep(&blobs, &s, settle_at + 999, 1_000, Some(&public)).expect("sweep");
    assert_eq!((swept.kept, swept.collected), (4, 0));
    // A period after settlement, only the public component stays.
    let swept = sweep(&blobs, &s, settle_at + 1_001, 1_000, Some(&public)).expect("sweep");
    assert_eq!((swept.kept, swept.collected), (1, 3), "{swept:?}");
    for h in [&component, &input, &output] {
        assert_eq!(blobs.size(h), None, "collected");
    }
    assert_eq!(blobs.size(&public), Some(9));
    assert_eq!(s.stored_by(&r.id(), &component).expect("r").0, 0);
    assert_eq!(s.stored_by(&p.id(), &output).expect("p").0, 0);
    ledger_ok(&s);
}

/// A blob used again (stored again, or named by a new job) between the
/// sweep's listing and its deletion is kept.
fn a_blob_used_during_a_sweep_is_kept<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = BlobStore::open(dir.path(), 1 << 20).expect("blobs");
    let h = blobs.put(b"popular").expect("put");
    stored(&blobs, &h, b"popular", 1_000);
    assert_eq!(blobs.stored_before(5_000).len(), 1);
    // Named by a job now: its time moves to the wall clock.
    assert_eq!(blobs.touch(&h), Some(7));
    assert_eq!(blobs.collect(&h, 5_000).expect("collect"), None);
    assert_eq!(blobs.size(&h), Some(7), "kept and back in place");
    let swept = sweep(&blobs, &s, 6_000, 1_000, None).expect("sweep");
    assert_eq!(swept, Sweep::default(), "not even listed");
}

/// Jobs, shards and receipts stored before schema v13 name their blobs
/// after the upgrade.
fn references_of_older_jobs_are_filled_in_on_upgrade<B: Backend>(db: Db<'_, B>) {
    let s = db(cfg());
    let (r, p) = (key(1), key(2));
    s.mint(&r.id(), 10_000, "m", 0).expect("mint");
    s.register(&provider(&p, 50, 1 << 30), 0, 0)
        .expect("register");
    let job = crate::common::job(&r.id(), 1, 1, 100, 0, spec());
    s.submit_job(&job, 0).expect("job");
    let lease = s.take_leases(&p.id(), 1, 10).expect("take");
    s.submit_receipt(&receipt_for(&s, &lease[0], &p), 20)
        .expect("receipt");
    // Back to v12: what v13 added is gone.
    s.backend()
        .write(&mut |c| {
            for stmt in [
                "DROP TABLE blob_refs",
                "DROP INDEX blob_owners_by_node",
                "DROP INDEX receipts_settled",
                "ALTER TABLE blob_owners DROP COLUMN size",
                "ALTER TABLE blob_owners DROP COLUMN uploaded_at",
                "UPDATE meta SET value = '12' WHERE key = 'schema_version'",
            ] {
                c.exec(stmt, &[])?;
            }
            Ok(())
        })
        .expect("downgrade");
    drop(s);
    let s = db(cfg());
    // The job is created long before the period and its receipt unsettled:
    // each of its blobs is in use through it.
    for h in [
        &job.component_hash,
        &job.inputs[0].hash,
        &Hash32::of(b"result"),
    ] {
        assert!(s.blob_in_use(h, 1_000_000).expect("in use"), "{h}");
    }
    assert!(
        !s.blob_in_use(&Hash32([40; 32]), 1_000_000)
            .expect("unknown")
    );
}

both_backends!(
    a_sweep_keeps_what_live_jobs_need_and_collects_the_rest,
    a_blob_used_during_a_sweep_is_kept,
    references_of_older_jobs_are_filled_in_on_upgrade,
);
