//! The Assay coordinator: the market (not built yet).
//!
//! What comes here: job intake with escrow, a content-addressed blob store,
//! matching jobs to providers, leases with expiry and re-queue, sharding one
//! job across several providers, the double-entry hash-chained ledger, the
//! store (SQLite by default, PostgreSQL for replicas), and the HTTP API and
//! web UI. It depends on `assay-protocol` only.
//!
//! See `ARCHITECTURE.md` and the network issue.
