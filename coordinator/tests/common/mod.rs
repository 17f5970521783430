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
        let b = Sqlite::open(&self.dir.path().join("db.sqlite")).expect("open sqlite");
        SqlStore::open(b, cfg).expect("migrate sqlite")
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
        let b = Postgres::open(&self.url, Some(&self.schema)).expect("connect to postgres");
        SqlStore::open(b, cfg).expect("migrate postgres")
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
