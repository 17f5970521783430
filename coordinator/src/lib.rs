//! The Assay coordinator: the market.
//!
//! - [`Store`] ([`store`]): everything the coordinator keeps — nonces,
//!   providers, jobs and their shards, leases, receipts, accounts and the
//!   ledger — behind one trait, implemented once by [`SqlStore`] over two
//!   real databases: embedded SQLite ([`sqlite`], WAL, the default) and
//!   PostgreSQL ([`postgres`], so several replicas share one database;
//!   leasing uses `SELECT … FOR UPDATE SKIP LOCKED`). Migrations are in
//!   [`schema`]. Every state change is one transaction.
//! - [`ledger`]: integer micro-credits, double-entry, SHA-256 hash chain,
//!   idempotent by reference; [`ledger::verify`] checks a whole history.
//! - [`blobs`]: the content-addressed blob store on disk (blake3 checked on
//!   upload, size limits).
//! - [`matching`]: which provider fits which shard, ranking (cheapest, then
//!   stake, then reliability), reliability scores, "why not matched".
//! - [`server`]: the gRPC services of `assay.proto` (tonic), request
//!   authentication (signatures, expiry, replayed nonces), and the
//!   background work (lease expiry, settlement, nonce purge).
//!
//! # Why `rusqlite` + `postgres` (and not one async layer)
//!
//! Both stores share one implementation ([`SqlStore`]) over a ~100-line SQL
//! layer ([`sql`]): queries are written once with `$n` placeholders; only the
//! schema's column types and two locking clauses differ. The store trait is
//! synchronous (each method is one transaction) and the server calls it on
//! blocking threads. `rusqlite` (SQLite compiled in) is the fastest embedded
//! path (prepared-statement cache, no per-query thread hop) and the sync
//! `postgres` client gives PostgreSQL with row locks and `SKIP LOCKED` at the
//! cost of one more small dependency tree; prepared statements are cached
//! per connection.
//!
//! # Shards that never finish
//!
//! A shard whose leases end [`MarketConfig::max_attempts`] times without a
//! receipt (provider faults, expired or returned leases — e.g. a component no
//! provider can load) is marked `failed` and its escrow is refunded, so a
//! bad job cannot circulate forever.
//!
//! # Money
//!
//! A renter's job escrows `max price × (fuel + work budget)` per shard
//! (prices are µcr per million work units, see
//! [`assay_protocol::market`]), twice that when the job is verified (the
//! second half covers a verifier's fee). A receipt settles when a verifier
//! agrees with it, or — when its epoch's seed did not draw it — after the
//! challenge window: the provider's earnings get `price × billable units`
//! less the protocol fee, the fee account gets the fee, a verifier that
//! checked it gets the same pay, and the rest of the shard's escrow goes
//! back to the renter. A receipt proven wrong pays nothing and its
//! provider's stake is slashed ([`verification`] has the rules). Each
//! movement is a ledger entry keyed by the receipt id, so a receipt settles
//! at most once however often it is submitted or however settlement is
//! retried.
//!
//! # Verification and proof of hardware
//!
//! [`verification`] samples receipts with a committed-then-revealed epoch
//! seed, hands checks to verifiers and acts on their verdicts (settle,
//! dispute, slash); [`challenge`] sends providers that claim a GPU a
//! seeded challenge job and matches them to GPU jobs only once they pass.
//!
//! # Example
//!
//! ```
//! use assay_coordinator::{MarketConfig, SqlStore, Store, sqlite::Sqlite};
//! use assay_protocol::NodeKey;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqlStore::open(Sqlite::open(&dir.path().join("db.sqlite")).unwrap(), MarketConfig::default()).unwrap();
//! let renter = NodeKey::from_seed([1; 32]).id();
//! let account = store.mint(&renter, 1_000_000, "faucet/1", 0).unwrap();
//! assert_eq!(account.balance, 1_000_000);
//! assert!(store.verify_ledger().unwrap().ok());
//! ```

pub mod blobs;
pub mod challenge;
mod error;
pub mod ledger;
mod market;
pub mod matching;
pub mod postgres;
pub mod schema;
pub mod server;
pub mod sql;
pub mod sqlite;
pub mod store;
pub mod verification;

pub use error::Error;
pub use market::SqlStore;
pub use store::{MarketConfig, Store};

use std::path::Path;
use std::sync::Arc;

/// Opens the store named by `database`: `sqlite://PATH` (or a bare path),
/// or `postgres://…` / `postgresql://…`. `None` means the SQLite file
/// `coordinator.db` in `data_dir`.
///
/// # Errors
///
/// [`Error::Invalid`] for an unknown scheme; the backend's errors.
pub fn open_store(
    database: Option<&str>,
    data_dir: &Path,
    cfg: MarketConfig,
) -> Result<Arc<dyn Store>, Error> {
    match database {
        None => Ok(Arc::new(SqlStore::open(
            sqlite::Sqlite::open(&data_dir.join("coordinator.db"))?,
            cfg,
        )?)),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(
            Arc::new(SqlStore::open(postgres::Postgres::open(url, None)?, cfg)?),
        ),
        Some(url) => {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"));
            match path {
                Some(p) if !p.is_empty() => Ok(Arc::new(SqlStore::open(
                    sqlite::Sqlite::open(Path::new(p))?,
                    cfg,
                )?)),
                _ => Err(Error::Invalid(format!(
                    "--database {url:?}: use sqlite://PATH or postgres://USER@HOST:PORT/DB"
                ))),
            }
        }
    }
}
