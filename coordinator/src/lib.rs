//! The Assay coordinator: the market.
//!
//! The crate is four layers, each importing only those below it:
//!
//! ```text
//! service/  one file per gRPC service of assay.proto: decode, authenticate, one call
//! tick      the background work (lease expiry, sampling, settlement, reward
//!    │      epochs, unbonding, bond maturity, …)
//! store/    the SQL, one file per domain, each with its trait: jobs, leases,
//!    │      receipts, epochs, checks, challenges, ledger (accounts), economy
//!    │      (genesis, IO price, reward epochs), claims (notes, bonds),
//!    │      providers, nonces; rows.rs (row readers) under them;
//!    │      sql/sqlite/postgres/schema at the bottom
//! rules/    the market's decisions as pure functions: money, checks, leases,
//!    │      jobs, matching, challenge, emission, rewards, staking, claims —
//!    │      no SQL, no gRPC, unit-tested
//! types, state, config, ledger, error
//!           records, state enums (stored as TEXT), the market and economy
//!           rules' numbers, the ledger's units, hash chain and supply
//!           invariants, the error enum
//! ```
//!
//! - [`Store`] ([`store`]): everything the coordinator keeps — nonces,
//!   providers, jobs and their shards, leases, receipts, accounts and the
//!   ledger — one trait per domain ([`store::Jobs`], [`store::Leases`],
//!   [`store::Receipts`], [`store::Checks`], …) gathered by [`Store`], and
//!   implemented by [`SqlStore`] over two real databases: embedded SQLite
//!   ([`sqlite`], WAL, the default) and PostgreSQL ([`postgres`], so several
//!   replicas share one database; leasing uses `SELECT … FOR UPDATE SKIP
//!   LOCKED`). Migrations are in [`schema`]. Every state change is one
//!   transaction. A new store method goes in its domain's file, trait and
//!   impl side by side. A `dyn Store` has every method; code holding a
//!   concrete [`SqlStore`] imports the traits with
//!   `use assay_coordinator::store::prelude::*`.
//! - [`rules`]: what the store and the services decide — escrow, pay and
//!   slash splits ([`rules::money`]), a receipt's check-state transitions
//!   and verdict decisions ([`rules::checks`]), a receipt against its lease
//!   ([`rules::leases`]), job ids and split inputs ([`rules::jobs`]),
//!   matching order and "why not matched" ([`matching`]), proof-of-hardware
//!   timing ([`rules::challenge`]), the reward schedule and its split
//!   ([`rules::emission`], [`rules::rewards`]), stake floors
//!   ([`rules::staking`]), notes and bonds ([`rules::claims`]). A new rule
//!   goes here, with its test.
//! - [`state`]: every stored state as an enum ([`state::ShardState`],
//!   [`state::LeaseState`], [`state::CheckState`], [`state::CheckStatus`],
//!   [`state::HardwareState`], …), with `as_str`/`parse` for the TEXT the
//!   database keeps.
//! - [`ledger`]: IO and IOSD in integer base units, double-entry, SHA-256 hash chain,
//!   idempotent by reference; [`ledger::verify`] checks a whole history
//!   (posting is [`store::ledger`]).
//! - [`blobs`]: the content-addressed blob store on disk (blake3 checked on
//!   upload, size limits); [`retention`] collects the blobs no live job
//!   needs after a retention period.
//! - [`service`] (also [`server`]): the gRPC services of `assay.proto`
//!   (tonic) — [`service::blobs`], [`service::renter`], [`service::provider`],
//!   [`service::verifier`] — each handler decoding its request,
//!   authenticating it ([`service::auth`]: signatures, expiry, replayed
//!   nonces) and making one store call; [`tick`] is the background work
//!   (lease expiry, settlement, nonce purge).
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
//! (prices are µIOSD per million work units, see
//! [`assay_protocol::market`]), twice that when the job is verified (the
//! second half covers a verifier's fee). A receipt settles when a verifier
//! agrees with it, or — when its epoch's seed did not draw it — after the
//! challenge window: the provider's earnings get `price × billable units`
//! less the protocol fee, the fee account gets the fee, a verifier that
//! checked it gets the same pay, and the rest of the shard's escrow goes
//! back to the renter ([`rules::money::settle`]). A receipt proven wrong
//! pays nothing and its provider's stake is slashed ([`store::checks`] has
//! the life of a check, [`rules::money::slash`] the split). Each
//! movement is a ledger entry keyed by the receipt id, so a receipt settles
//! at most once however often it is submitted or however settlement is
//! retried.
//!
//! # Verification and proof of hardware
//!
//! [`store::checks`] samples receipts with a committed-then-revealed epoch
//! seed, hands checks to verifiers and acts on their verdicts (settle,
//! dispute, slash); [`store::challenges`] sends providers that claim a GPU
//! a seeded challenge job and matches them to GPU jobs only once they pass.
//!
//! # Example
//!
//! ```
//! use assay_coordinator::store::Accounts;
//! use assay_coordinator::{MarketConfig, SqlStore, sqlite::Sqlite};
//! use assay_protocol::NodeKey;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqlStore::open(Sqlite::open(&dir.path().join("db.sqlite")).unwrap(), MarketConfig::default()).unwrap();
//! let renter = NodeKey::from_seed([1; 32]).id();
//! let account = store.mint(&renter, 1_000_000, "faucet/1", 0).unwrap();
//! assert_eq!(account.balance, 1_000_000);
//! assert!(store.verify_ledger().unwrap().ok());
//! ```

#![forbid(unsafe_code)]

pub mod blobs;
pub mod config;
mod error;
pub mod explorer;
pub mod ledger;
pub mod retention;
pub mod rules;
pub mod service;
pub mod state;
pub mod store;
pub mod tick;
pub mod types;

pub use error::Error;
pub use rules::matching;
pub use service as server;
pub use store::{MarketConfig, SqlStore, Store, postgres, schema, sql, sqlite};

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
