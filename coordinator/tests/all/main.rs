//! The coordinator's integration tests, one binary (one link): the store
//! suite, verification, the economy (IO, IOSD, rewards, notes, bonds), blob
//! retention and quotas, and the ledger's property tests, on real databases
//! (SQLite always, PostgreSQL when `ASSAY_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;
mod clusters;
mod economy;
mod explorer;
mod exposure;
mod ledger_props;
mod retention;
mod store;
mod verification;
