//! The store: everything the coordinator keeps, in a SQL database, one
//! file per domain.
//!
//! [`Store`] is the whole store as the services see it: one trait per
//! domain ([`Nonces`], [`Accounts`], [`Jobs`], [`Providers`], [`Leases`],
//! [`Receipts`], [`Epochs`], [`Checks`], [`Disputes`], [`Challenges`], [`Economy`], [`Claims`], [`Clusters`], [`Explorer`], [`BlobAccess`]), each declared and implemented
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
//!   receipts.rs ─► epochs.rs ─► checks.rs ─► disputes.rs, challenges.rs
//!   ledger.rs (accounts, settlement, slashing) ─ economy.rs (genesis,
//!   IO price, IO→IOSD, unstaking, reward epochs) ─ claims.rs (notes,
//!   bonds, a device's earnings through them) ─ nonces.rs ─ access.rs
//!   (who uploaded which blob, a job's parties)
//!   rows.rs (row readers, JSON, ids) ─ sql_store.rs (SqlStore)
//!   sql.rs (Backend, Conn) ─ sqlite.rs ─ postgres.rs ─ schema.rs
//! ```
//!
//! Decisions (who may act, state transitions, money arithmetic, matching
//! order) are [`crate::rules`]; this layer reads rows, asks the rules and
//! writes. States are [`crate::state`] enums; SQL keeps their text as
//! literals where a partial index needs it.

pub mod access;
pub mod challenges;
pub mod checks;
pub mod claims;
pub mod clusters;
pub mod disputes;
pub mod economy;
pub mod epochs;
pub mod explorer;
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
pub use access::BlobAccess;
pub use challenges::Challenges;
pub use checks::Checks;
pub use claims::Claims;
pub use clusters::Clusters;
pub use disputes::Disputes;
pub use economy::Economy;
pub use epochs::Epochs;
pub use explorer::Explorer;
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
    pub use crate::store::{
        Accounts, BlobAccess, Challenges, Checks, Claims, Clusters, Disputes, Economy, Epochs,
        Explorer, Jobs, Leases, Nonces, Providers, Receipts, Store,
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
    + Disputes
    + Challenges
    + Economy
    + Claims
    + Clusters
    + Explorer
    + BlobAccess
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

#[cfg(test)]
mod tests {
    use crate::state::{
        BondStatus, CheckState, CheckStatus, ClusterState, HardwareState, LeaseState, MemberState,
        ShardState,
    };

    /// The quoted words of a SQL fragment that follows `state ` (`= 'x'`,
    /// `<> 'x'` or `IN ('x', 'y')`).
    fn quoted_after_state(rest: &str) -> Vec<&str> {
        let single = rest.strip_prefix("= '").or(rest.strip_prefix("<> '"));
        if let Some(r) = single {
            return r.split('\'').next().into_iter().collect();
        }
        let Some(r) = rest.strip_prefix("IN (") else {
            return Vec::new();
        };
        r.split(')')
            .next()
            .unwrap_or("")
            .split(',')
            .filter_map(|w| w.trim().strip_prefix('\'')?.split('\'').next())
            .collect()
    }

    /// The SQL spells states as literals (partial indexes need them); every
    /// such literal must be the stored text of a state enum, so renaming a
    /// variant's text cannot leave a query looking for a word nobody writes.
    #[test]
    fn state_literals_in_sql_are_stored_state_words() {
        let sources = [
            include_str!("challenges.rs"),
            include_str!("checks.rs"),
            include_str!("claims.rs"),
            include_str!("clusters.rs"),
            include_str!("epochs.rs"),
            include_str!("explorer.rs"),
            include_str!("jobs.rs"),
            include_str!("leases.rs"),
            include_str!("providers.rs"),
            include_str!("receipts.rs"),
            include_str!("rows.rs"),
            include_str!("schema.rs"),
        ];
        let known = |w: &str| {
            ShardState::parse(w).is_ok()
                || LeaseState::parse(w).is_ok()
                || CheckState::parse(w).is_ok()
                || CheckStatus::parse(w).is_ok()
                || HardwareState::parse(w).is_ok()
                || BondStatus::parse(w).is_ok()
                || ClusterState::parse(w).is_ok()
                || MemberState::parse(w).is_ok()
        };
        let mut seen = 0;
        for src in sources {
            for (at, _) in src.match_indices("state ") {
                for word in quoted_after_state(&src[at + "state ".len()..]) {
                    assert!(known(word), "SQL state literal {word:?} is no state's text");
                    seen += 1;
                }
            }
        }
        assert!(
            seen > 20,
            "found only {seen} state literals: is the scan broken?"
        );
    }
}
