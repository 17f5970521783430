//! Migrations: numbered, applied in order, recorded in `meta.schema_version`.
//! The two dialects differ only in column types and auto-increment keys.

use super::sql::{Backend, Dialect, Value};
use crate::Error;

/// The version the code expects.
pub const SCHEMA_VERSION: i64 = 13;

fn migrations(d: Dialect) -> Vec<String> {
    let (blob, serial) = match d {
        Dialect::Sqlite => ("BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        Dialect::Postgres => ("BYTEA", "BIGSERIAL PRIMARY KEY"),
    };
    let v1 = format!(
        "
CREATE TABLE nonces (
    node {blob} NOT NULL,
    nonce BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (node, nonce)
);
CREATE INDEX nonces_expiry ON nonces (expires_at);
CREATE TABLE providers (
    id {blob} PRIMARY KEY,
    price BIGINT NOT NULL,
    cpu_cores BIGINT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    gpu_count BIGINT NOT NULL,
    gpu_memory_bytes BIGINT NOT NULL,
    hardware TEXT NOT NULL,
    slots BIGINT NOT NULL,
    free_slots BIGINT NOT NULL,
    version TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    completed BIGINT NOT NULL DEFAULT 0,
    faults BIGINT NOT NULL DEFAULT 0,
    expired BIGINT NOT NULL DEFAULT 0,
    telemetry TEXT NOT NULL DEFAULT '[]',
    stake BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE jobs (
    seq {serial},
    id {blob} NOT NULL UNIQUE,
    renter {blob} NOT NULL,
    component_hash {blob} NOT NULL,
    component_size BIGINT NOT NULL,
    inputs TEXT NOT NULL,
    inputs_root {blob} NOT NULL,
    spec TEXT NOT NULL,
    shards BIGINT NOT NULL,
    max_price BIGINT NOT NULL,
    require_gpu BIGINT NOT NULL,
    priority BIGINT NOT NULL,
    escrow BIGINT NOT NULL,
    shard_escrow BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE shards (
    job_id {blob} NOT NULL,
    idx BIGINT NOT NULL,
    job_seq BIGINT NOT NULL,
    shard_job_id {blob} NOT NULL,
    state TEXT NOT NULL,
    priority BIGINT NOT NULL,
    max_price BIGINT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    gpu_memory_bytes BIGINT NOT NULL,
    require_gpu BIGINT NOT NULL,
    queued_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_id {blob},
    provider {blob},
    lease_price BIGINT,
    lease_expires_at BIGINT,
    receipt_id {blob},
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX shards_queued ON shards (priority DESC, job_seq, idx) WHERE state = 'queued';
CREATE INDEX shards_by_provider ON shards (provider) WHERE state = 'leased';
CREATE INDEX shards_by_expiry ON shards (lease_expires_at) WHERE state = 'leased';
CREATE INDEX shards_by_lease ON shards (lease_id);
CREATE TABLE leases (
    id {blob} PRIMARY KEY,
    job_id {blob} NOT NULL,
    idx BIGINT NOT NULL,
    provider {blob} NOT NULL,
    price BIGINT NOT NULL,
    granted_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    ended_at BIGINT,
    reason TEXT
);
CREATE TABLE receipts (
    seq {serial},
    id {blob} NOT NULL UNIQUE,
    job_id {blob} NOT NULL,
    idx BIGINT NOT NULL,
    provider {blob} NOT NULL,
    lease_id {blob} NOT NULL,
    receipt TEXT NOT NULL,
    outputs TEXT NOT NULL,
    outputs_root {blob} NOT NULL,
    units BIGINT NOT NULL,
    price BIGINT NOT NULL,
    escrow BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    settle_at BIGINT NOT NULL,
    settled_at BIGINT,
    paid BIGINT
);
CREATE INDEX receipts_due ON receipts (settle_at) WHERE settled_at IS NULL;
CREATE TABLE accounts (
    name TEXT PRIMARY KEY,
    balance BIGINT NOT NULL
);
CREATE TABLE ledger (
    seq BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    debit TEXT NOT NULL,
    credit TEXT NOT NULL,
    amount BIGINT NOT NULL,
    reference TEXT NOT NULL UNIQUE,
    at_ms BIGINT NOT NULL,
    prev_hash {blob} NOT NULL,
    hash {blob} NOT NULL
);
CREATE TABLE ledger_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash {blob} NOT NULL
)"
    );
    // v2: shards may have inputs of their own (parts of inputs split by line).
    let v2 = format!(
        "
ALTER TABLE shards ADD COLUMN inputs TEXT;
ALTER TABLE shards ADD COLUMN inputs_root {blob}"
    );
    // v3: verification — epoch seeds (commit–reveal), sampling state per
    // receipt, verifiers, checks and signed verdicts, suspended providers.
    let v3 = format!(
        "
ALTER TABLE jobs ADD COLUMN verify_rate_ppm BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shards ADD COLUMN min_stake BIGINT NOT NULL DEFAULT 0;
ALTER TABLE receipts ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE receipts ADD COLUMN rate_ppm BIGINT NOT NULL DEFAULT 0;
ALTER TABLE receipts ADD COLUMN check_state TEXT NOT NULL DEFAULT 'unverified';
ALTER TABLE receipts ADD COLUMN check_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX receipts_pending ON receipts (epoch) WHERE check_state = 'pending';
CREATE INDEX receipts_by_provider ON receipts (provider) WHERE settled_at IS NULL;
ALTER TABLE providers ADD COLUMN suspended BIGINT NOT NULL DEFAULT 0;
ALTER TABLE providers ADD COLUMN slashed BIGINT NOT NULL DEFAULT 0;
CREATE TABLE epochs (
    epoch BIGINT PRIMARY KEY,
    seed {blob} NOT NULL,
    commitment {blob} NOT NULL,
    created_at BIGINT NOT NULL,
    revealed_at BIGINT
);
CREATE TABLE verifiers (
    id {blob} PRIMARY KEY,
    version TEXT NOT NULL,
    backend TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    verdicts BIGINT NOT NULL DEFAULT 0,
    missed BIGINT NOT NULL DEFAULT 0,
    overruled BIGINT NOT NULL DEFAULT 0,
    suspended BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE checks (
    id {blob} PRIMARY KEY,
    receipt_id {blob} NOT NULL,
    role TEXT NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL,
    verifier {blob},
    deadline BIGINT,
    excluded TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX checks_open ON checks (created_at) WHERE state = 'open';
CREATE INDEX checks_taken ON checks (deadline) WHERE state = 'taken';
CREATE INDEX checks_by_receipt ON checks (receipt_id);
CREATE TABLE verdicts (
    seq {serial},
    check_id {blob} NOT NULL UNIQUE,
    receipt_id {blob} NOT NULL,
    verifier {blob} NOT NULL,
    role TEXT NOT NULL,
    agrees BIGINT NOT NULL,
    outputs_root {blob} NOT NULL,
    outcome TEXT NOT NULL,
    fuel_used BIGINT NOT NULL,
    flops BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    nonce BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    signature {blob} NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX verdicts_by_receipt ON verdicts (receipt_id)"
    );
    // v4: proof of hardware — each provider's claimed device class and the
    // state of its challenge; challenge jobs are addressed to one provider.
    let v4 = format!(
        "
ALTER TABLE providers ADD COLUMN hardware_class TEXT NOT NULL DEFAULT 'cpu';
ALTER TABLE providers ADD COLUMN hardware_state TEXT NOT NULL DEFAULT 'unchecked';
ALTER TABLE providers ADD COLUMN hardware_note TEXT NOT NULL DEFAULT '';
ALTER TABLE providers ADD COLUMN challenge_job {blob};
ALTER TABLE providers ADD COLUMN challenge_bound_ms BIGINT;
ALTER TABLE providers ADD COLUMN challenge_deadline BIGINT;
ALTER TABLE providers ADD COLUMN next_challenge_at BIGINT;
ALTER TABLE jobs ADD COLUMN challenge_for {blob};
ALTER TABLE shards ADD COLUMN only_provider {blob}"
    );
    // v5: a failed run's message for people, kept beside its receipt (never
    // hashed). NULL for successes and for receipts recorded before v5.
    let v5 = "
ALTER TABLE receipts ADD COLUMN failure_message TEXT"
        .to_string();
    // v6: two units. Entries carry their unit (NULL: an entry of the
    // single-unit ledger, hashed as format 1 and read as IOSD); account
    // names carry it as a prefix, so the old credits become IOSD (stakes
    // too: they stay in `iosd/stake:…` and no longer count for matching,
    // which reads IO stakes). The IO
    // price feed, unstaking cooldowns, stake floors, jobs paid in IO, and
    // the reward epochs with each provider's work and uptime in them;
    // tokenized compute: cash-flow notes and bonds on a device.
    let v6 = format!(
        "
ALTER TABLE ledger ADD COLUMN unit TEXT;
UPDATE accounts SET name = 'iosd/' || name;
UPDATE providers SET stake = 0;
ALTER TABLE jobs ADD COLUMN paid_in TEXT NOT NULL DEFAULT 'iosd';
ALTER TABLE providers ADD COLUMN stake_floor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE providers ADD COLUMN heartbeat_at BIGINT;
CREATE TABLE prices (
    round BIGINT PRIMARY KEY,
    price BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    oracle {blob} NOT NULL,
    signature {blob} NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE TABLE unbonding (
    node {blob} PRIMARY KEY,
    release_at BIGINT NOT NULL
);
CREATE TABLE reward_shares (
    epoch BIGINT NOT NULL,
    provider {blob} NOT NULL,
    work_units BIGINT NOT NULL DEFAULT 0,
    uptime_ms BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (epoch, provider)
);
CREATE TABLE reward_epochs (
    epoch BIGINT PRIMARY KEY,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    scheduled BIGINT NOT NULL,
    emitted BIGINT NOT NULL,
    nominated BIGINT NOT NULL,
    paid BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    closed_at BIGINT NOT NULL
);
CREATE TABLE reward_payouts (
    epoch BIGINT NOT NULL,
    provider {blob} NOT NULL,
    work_units BIGINT NOT NULL,
    uptime_ms BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (epoch, provider)
);
CREATE TABLE notes (
    id {blob} PRIMARY KEY,
    device {blob} NOT NULL,
    shares BIGINT NOT NULL,
    holders_bps BIGINT NOT NULL,
    term_days BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL
);
CREATE INDEX notes_by_device ON notes (device, ends_at);
CREATE TABLE note_holdings (
    note_id {blob} NOT NULL,
    holder {blob} NOT NULL,
    shares BIGINT NOT NULL,
    PRIMARY KEY (note_id, holder)
);
CREATE TABLE note_offers (
    note_id {blob} NOT NULL,
    seller {blob} NOT NULL,
    shares BIGINT NOT NULL,
    price BIGINT NOT NULL,
    PRIMARY KEY (note_id, seller)
);
CREATE TABLE bonds (
    id {blob} PRIMARY KEY,
    device {blob} NOT NULL,
    principal BIGINT NOT NULL,
    sold BIGINT NOT NULL DEFAULT 0,
    coupon_bps BIGINT NOT NULL,
    maturity_days BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    matures_at BIGINT NOT NULL,
    coupon_total BIGINT NOT NULL DEFAULT 0,
    coupon_paid BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    shortfall BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX bonds_by_device ON bonds (device) WHERE state = 'open';
CREATE TABLE bond_holdings (
    bond_id {blob} NOT NULL,
    holder {blob} NOT NULL,
    principal BIGINT NOT NULL,
    PRIMARY KEY (bond_id, holder)
)"
    );
    // v7: the explorer — device samples from heartbeats (bounded by age and
    // rate, see `providers.rs`), and the indexes its pages read by (several
    // cover their queries, so a tally over every receipt reads the index,
    // not the rows with their receipt JSON).
    let v7 = format!(
        "
CREATE TABLE telemetry (
    provider {blob} NOT NULL,
    at_ms BIGINT NOT NULL,
    device BIGINT NOT NULL,
    temperature_c BIGINT NOT NULL,
    power_mw BIGINT NOT NULL,
    utilization_pct BIGINT NOT NULL,
    memory_used_bytes BIGINT NOT NULL,
    PRIMARY KEY (provider, at_ms, device)
);
ALTER TABLE providers ADD COLUMN telemetry_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_by_renter ON jobs (renter, seq);
CREATE INDEX jobs_by_time ON jobs (created_at);
CREATE INDEX shards_tally ON shards (job_id, state, receipt_id);
CREATE INDEX receipts_by_provider_seq ON receipts (provider, seq);
CREATE INDEX receipts_by_job ON receipts (job_id);
CREATE INDEX receipts_tally ON receipts (id, paid, check_state);
CREATE INDEX receipts_by_time ON receipts (created_at, units);
CREATE INDEX receipts_by_settlement ON receipts (settled_at, paid, units);
CREATE INDEX receipts_by_check ON receipts (check_state);
CREATE INDEX receipts_earnings ON receipts (provider, paid);
CREATE INDEX leases_by_provider ON leases (provider, granted_at, ended_at);
CREATE INDEX ledger_by_debit ON ledger (debit);
CREATE INDEX ledger_by_credit ON ledger (credit);
CREATE INDEX ledger_by_kind ON ledger (kind);
CREATE INDEX reward_payouts_by_provider ON reward_payouts (provider, epoch)"
    );
    // v8: trust that cannot be outvoted — stake bonded per exposure (a
    // lease held, a receipt unsettled, a check in flight), leases with a
    // hard end, checks assigned to one verifier by the epoch seed, and
    // verifiers' slashes counted; an attempt ended by the job's watchdog
    // (charged as a fault only once the shard gets a receipt) and the fees
    // such attempts took out of the shard's escrow.
    let v8 = format!(
        "
ALTER TABLE leases ADD COLUMN bond BIGINT NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN cap_at BIGINT;
ALTER TABLE receipts ADD COLUMN bond BIGINT NOT NULL DEFAULT 0;
CREATE INDEX leases_by_provider_shard ON leases (provider, job_id, idx);
CREATE INDEX receipts_unsettled_by_provider ON receipts (provider) WHERE settled_at IS NULL;
ALTER TABLE checks ADD COLUMN assigned {blob};
ALTER TABLE checks ADD COLUMN bond BIGINT NOT NULL DEFAULT 0;
CREATE INDEX checks_by_verifier ON checks (verifier) WHERE state = 'taken';
ALTER TABLE verifiers ADD COLUMN slashed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN watchdog BIGINT NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN fault_charged BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shards ADD COLUMN watchdog_fees BIGINT NOT NULL DEFAULT 0;
CREATE INDEX leases_open_by_provider ON leases (provider) WHERE ended_at IS NULL"
    );
    // v9: disputes bisected before the arbiter runs — a verdict's trace
    // root (and, from the arbiter, the step output it recomputed), the game
    // of each dispute (its state as JSON, `rules::disputes::Game`), and a
    // referee check's one step to recompute.
    let v9 = format!(
        "
ALTER TABLE verdicts ADD COLUMN trace_root {blob};
ALTER TABLE verdicts ADD COLUMN step_output {blob};
ALTER TABLE verdicts ADD COLUMN arbitration TEXT NOT NULL DEFAULT '';
ALTER TABLE checks ADD COLUMN step TEXT;
CREATE TABLE disputes (
    id {blob} PRIMARY KEY,
    receipt_id {blob} NOT NULL,
    check_id {blob} NOT NULL,
    provider {blob} NOT NULL,
    verifier {blob} NOT NULL,
    phase TEXT NOT NULL,
    deadline BIGINT NOT NULL,
    game TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX disputes_by_receipt ON disputes (receipt_id);
CREATE INDEX disputes_asking ON disputes (deadline) WHERE phase IN ('claim', 'node', 'leaf', 'inputs')"
    );
    // v10: reserved clusters — a renter's hold on one slot of each of N
    // providers for a period (`rules::clusters`), its members with their
    // locked prices and what each was paid, each provider's reserve price
    // per slot-hour, and the cluster a shard may run on (NULL: the market).
    let v10 = format!(
        "
CREATE TABLE clusters (
    id {blob} PRIMARY KEY,
    renter {blob} NOT NULL,
    state TEXT NOT NULL,
    gpus BIGINT NOT NULL,
    gpu_class TEXT NOT NULL,
    min_reliability BIGINT NOT NULL,
    max_price BIGINT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    escrowed BIGINT NOT NULL,
    paid BIGINT NOT NULL DEFAULT 0,
    refunded BIGINT NOT NULL DEFAULT 0,
    ended_at BIGINT
);
CREATE INDEX clusters_by_renter ON clusters (renter, starts_at);
CREATE INDEX clusters_active ON clusters (ends_at) WHERE state = 'active';
CREATE TABLE cluster_members (
    cluster_id {blob} NOT NULL,
    provider {blob} NOT NULL,
    reserve_price BIGINT NOT NULL,
    work_price BIGINT NOT NULL,
    joined_at BIGINT NOT NULL,
    left_at BIGINT,
    state TEXT NOT NULL,
    why_left TEXT NOT NULL DEFAULT '',
    budget BIGINT NOT NULL,
    paid BIGINT NOT NULL DEFAULT 0,
    accrued_at BIGINT NOT NULL,
    PRIMARY KEY (cluster_id, provider)
);
CREATE INDEX cluster_members_by_provider ON cluster_members (provider, joined_at);
CREATE INDEX cluster_members_active ON cluster_members (provider) WHERE state = 'active';
ALTER TABLE providers ADD COLUMN reserve_price BIGINT NOT NULL DEFAULT {default_reserve};
ALTER TABLE shards ADD COLUMN cluster_id {blob};
CREATE INDEX shards_queued_by_cluster ON shards (cluster_id, priority DESC, job_seq, idx) WHERE state = 'queued'",
        default_reserve = crate::rules::clusters::DEFAULT_RESERVE_PRICE
    );
    // v11: a provider's bonds summed from an index alone (leasing sums
    // them at every lease, over every unsettled receipt): (provider, bond)
    // over open leases and over unsettled receipts replace the
    // provider-only indexes.
    let v11 = "
DROP INDEX receipts_by_provider;
DROP INDEX receipts_unsettled_by_provider;
DROP INDEX leases_open_by_provider;
CREATE INDEX receipts_unsettled_bonds ON receipts (provider, bond) WHERE settled_at IS NULL;
CREATE INDEX leases_open_bonds ON leases (provider, bond) WHERE ended_at IS NULL"
        .to_string();
    // v12: who uploaded which blob (a blob is readable by its uploaders,
    // rules::access).
    let v12 = format!(
        "
CREATE TABLE blob_owners (
    hash {blob} NOT NULL,
    node {blob} NOT NULL,
    PRIMARY KEY (hash, node)
)"
    );
    // v13: blob retention and quotas (`crate::retention`) — each
    // upload's size and time (a key's stored bytes are summed from an
    // index), and which jobs name which blob (filled from the jobs, shards
    // and receipts already stored by `backfill_blob_refs`).
    let v13 = format!(
        "
ALTER TABLE blob_owners ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE blob_owners ADD COLUMN uploaded_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX blob_owners_by_node ON blob_owners (node, size);
CREATE TABLE blob_refs (
    hash {blob} NOT NULL,
    job_id {blob} NOT NULL,
    PRIMARY KEY (hash, job_id)
);
CREATE INDEX receipts_settled ON receipts (settled_at) WHERE settled_at IS NOT NULL"
    );
    vec![v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13]
}

/// Brings the database to [`SCHEMA_VERSION`] (creating it if empty). Safe
/// to run from several replicas at once (PostgreSQL: an advisory lock).
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Corrupt`] if the database is newer than
/// this build.
pub fn migrate<B: Backend>(b: &B) -> Result<(), Error> {
    migrate_to(b, SCHEMA_VERSION)
}

/// The coordinator's id: 32 random bytes drawn the first time a database
/// is opened and kept in `meta.coordinator_id`. Every signed request names
/// it, so one signed for another coordinator (another database) is refused;
/// replicas on one database share it, as they share the spent nonces.
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Corrupt`] if the stored id is not 64 hex
/// digits.
pub fn coordinator_id<B: Backend>(b: &B) -> Result<assay_protocol::Hash32, Error> {
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh).map_err(|e| Error::Database {
        backend: b.dialect().name(),
        message: format!("drawing the coordinator id from the OS random source: {e}"),
    })?;
    let mut id = String::new();
    b.write(&mut |c| {
        // Two replicas opening a new database at once: the first insert
        // wins and both read it back.
        c.exec(
            "INSERT INTO meta (key, value) VALUES ('coordinator_id', $1) ON CONFLICT (key) DO NOTHING",
            &[Value::Text(assay_protocol::Hash32(fresh).to_hex())],
        )?;
        let row = c
            .query_opt("SELECT value FROM meta WHERE key = 'coordinator_id'", &[])?
            .ok_or_else(|| Error::Corrupt("meta.coordinator_id vanished".into()))?;
        id = row.text(0)?.to_string();
        Ok(())
    })?;
    id.parse::<assay_protocol::Hash32>()
        .map_err(|_| Error::Corrupt(format!("meta.coordinator_id {id:?} is not 64 hex digits")))
}

/// Brings the database to schema version `target` (≤ [`SCHEMA_VERSION`]):
/// what [`migrate`] does, stopping early — tests build the databases of
/// older releases with it and check that they upgrade.
///
/// # Errors
///
/// As [`migrate`].
pub fn migrate_to<B: Backend>(b: &B, target: i64) -> Result<(), Error> {
    let d = b.dialect();
    let target = target.min(SCHEMA_VERSION);
    b.write(&mut |c| {
        if d == Dialect::Postgres {
            c.exec("SELECT pg_advisory_xact_lock(770077)", &[])?;
        }
        c.exec(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            &[],
        )?;
        let version: i64 = match c.query_opt(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            &[],
        )? {
            Some(r) => r
                .text(0)?
                .parse()
                .map_err(|_| Error::Corrupt("meta.schema_version is not a number".into()))?,
            None => 0,
        };
        if version > SCHEMA_VERSION {
            return Err(Error::Corrupt(format!(
                "the database is at schema version {version}, newer than this coordinator's {SCHEMA_VERSION}: upgrade assay"
            )));
        }
        for (i, m) in migrations(d).iter().enumerate() {
            let v = i as i64 + 1;
            if v <= version || v > target {
                continue;
            }
            for stmt in m.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                c.exec(stmt, &[])?;
            }
            if v == 1 {
                c.exec(
                    "INSERT INTO ledger_head (id, seq, hash) VALUES (1, 0, $1)",
                    &[Value::Blob(vec![0; 32])],
                )?;
            }
            if v == 13 {
                super::access::backfill_blob_refs(c)?;
            }
            tracing::info!(version = v, backend = d.name(), "migrated the store");
        }
        c.exec(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[Value::Text(version.max(target).to_string())],
        )?;
        Ok(())
    })
}
