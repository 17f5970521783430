//! [`SqlStore`]: the store over a SQL backend. The struct and its opening
//! live here; each domain's file (`jobs.rs`, `leases.rs`, …) implements its
//! own trait for it, so this file knows none of them.

use std::sync::{Arc, Mutex};

use super::schema;
use super::sql::Backend;
use crate::Error;
use crate::config::MarketConfig;
use crate::rules::matching::Offer;

/// The store over a SQL backend.
pub struct SqlStore<B: Backend> {
    pub(super) b: B,
    pub(super) cfg: MarketConfig,
    /// The online providers and their free stake at a time (see
    /// `providers.rs`, `online`).
    pub(super) snapshot: Mutex<Option<(u64, Arc<Vec<Offer>>)>>,
    /// The coordinator's id (`meta.coordinator_id`, see `schema.rs`).
    pub(super) id: assay_protocol::Hash32,
}

impl<B: Backend + std::fmt::Debug> std::fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.b)
            .field("config", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> SqlStore<B> {
    /// Opens the store on `b`, migrating the schema.
    ///
    /// # Errors
    ///
    /// [`Error::Database`], or [`Error::Corrupt`] for a database newer than this build.
    pub fn open(b: B, cfg: MarketConfig) -> Result<SqlStore<B>, Error> {
        schema::migrate(&b)?;
        let id = schema::coordinator_id(&b)?;
        Ok(SqlStore {
            b,
            cfg,
            snapshot: Mutex::new(None),
            id,
        })
    }

    /// The backend (tests use it to tamper with rows).
    pub fn backend(&self) -> &B {
        &self.b
    }
}
