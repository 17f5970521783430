//! The store: everything the coordinator keeps, in a SQL database, one
//! file per domain.
//!
//! [`Store`] is the whole store as the services see it: one trait per
//! domain ([`Nonces`], [`Accounts`], [`Jobs`], [`Providers`], [`Leases`],
//! [`Receipts`], [`Epochs`], [`Checks`], [`Challenges`]), each declared and implemented
//! for [`SqlStore`] in its own file, over two real databases: embedded
//! SQLite ([`sqlite::Sqlite`], the default) and PostgreSQL
//! ([`postgres::Postgres`], for replicas sharing one database). Every
//! method that changes state is one database transaction, and every method
//! takes the current time as an argument, so tests can drive lease expiry
//! and settlement without sleeping.
//!
//! The layers, each importing only those below it:
//!
//! ```text
//! mod.rs (Store)
//!   jobs.rs ─ leases.rs ─ providers.rs      the domains …
//!   receipts.rs ─► epochs.rs ─► checks.rs ─► challenges.rs
//!   ledger.rs (accounts, settlement, slashing) ─ nonces.rs
//!   rows.rs (row readers, JSON, ids) ─ sql_store.rs (SqlStore)
//!   sql.rs (Backend, Conn) ─ sqlite.rs ─ postgres.rs ─ schema.rs
//! ```
//!
//! Decisions (who may act, state transitions, money arithmetic, matching
//! order) are [`crate::rules`]; this layer reads rows, asks the rules and
//! writes. States are [`crate::state`] enums; SQL keeps their text as
//! literals where a partial index needs it.

pub mod challenges;
pub mod checks;
pub mod epochs;
pub mod jobs;
pub mod leases;
pub mod ledger;
pub mod nonces;
pub mod postgres;
pub mod providers;
pub mod receipts;
mod rows;
pub mod schema;
pub mod sql;
mod sql_store;
pub mod sqlite;

pub use crate::config::MarketConfig;
pub use crate::state::LeaseState;
pub use crate::types::*;
pub use challenges::Challenges;
pub use checks::Checks;
pub use epochs::Epochs;
pub use jobs::Jobs;
pub use leases::Leases;
pub use ledger::Accounts;
pub use nonces::Nonces;
pub use providers::Providers;
pub use receipts::Receipts;
pub use sql_store::SqlStore;

use sql::Backend;

/// Every domain trait, for callers that hold a concrete [`SqlStore`]
/// (`use assay_coordinator::store::prelude::*;`); a `dyn Store` needs none.
pub mod prelude {
    pub use super::{
        Accounts, Challenges, Checks, Epochs, Jobs, Leases, Nonces, Providers, Receipts, Store,
    };
}

/// Everything the coordinator keeps: every domain's trait.
pub trait Store:
    Nonces
    + Accounts
    + Jobs
    + Providers
    + Leases
    + Receipts
    + Epochs
    + Checks
    + Challenges
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend_name(&self) -> &'static str;
    /// The market rules.
    fn config(&self) -> &MarketConfig;
}

impl<B: Backend> Store for SqlStore<B> {
    fn backend_name(&self) -> &'static str {
        self.b.dialect().name()
    }

    fn config(&self) -> &MarketConfig {
        &self.cfg
    }
}
