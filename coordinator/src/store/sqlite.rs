//! The embedded SQLite backend (the default): one database file in WAL
//! mode, a small pool of connections, readers concurrent, writers
//! serialised — first by a lock in this process, then by `BEGIN IMMEDIATE`
//! (with a busy timeout, for other processes). The in-process lock matters
//! under load: SQLite's busy handler polls with sleeps, so with thousands of
//! write transactions a second a waiting writer could miss every free
//! moment for the whole timeout and fail with "database is locked"
//! (measured in the leasing benchmark); threads blocked on a mutex are woken
//! as soon as it is free.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::sql::{Backend, Conn, Dialect, Pool, Row, Value};
use crate::Error;

/// Most connections open at once.
const POOL: usize = 16;

/// SQLite through `rusqlite` (SQLite compiled in: nothing to install).
pub struct Sqlite {
    path: PathBuf,
    pool: Pool<Connection>,
    writer: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn db(e: rusqlite::Error) -> Error {
    Error::Database {
        backend: "sqlite",
        message: e.to_string(),
    }
}

impl Sqlite {
    /// Opens (or creates) the database at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] if the file cannot be opened as a database, or
    /// [`Error::Io`] if its directory cannot be created.
    pub fn open(path: &Path) -> Result<Sqlite, Error> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let s = Sqlite {
            path: path.to_owned(),
            pool: Pool::new(POOL),
            writer: std::sync::Mutex::new(()),
        };
        let c = s.take()?;
        // WAL survives in the file; set it once.
        c.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        s.put(c);
        Ok(s)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Connection, Error> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        c.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        // In WAL mode NORMAL syncs at checkpoints: a crash of the machine (not
        // of the process) can lose the last commits, never corrupt the file.
        c.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
        c.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        // Every statement the store runs stays prepared (~300 of them): at
        // 64 the leasing path alone evicted its own statements each call.
        c.set_prepared_statement_cache_capacity(512);
        Ok(c)
    }

    fn take(&self) -> Result<Connection, Error> {
        self.pool.take(|| self.connect())
    }

    fn put(&self, c: Connection) {
        self.pool.put(c);
    }

    fn run<R>(
        &self,
        behavior: TransactionBehavior,
        f: &mut dyn FnMut(&mut dyn Conn) -> Result<R, Error>,
    ) -> Result<R, Error> {
        // A panic elsewhere while holding it leaves nothing half-done in the
        // database (the transaction rolled back), so a poisoned lock is fine.
        let _writing = matches!(behavior, TransactionBehavior::Immediate)
            .then(|| self.writer.lock().unwrap_or_else(|e| e.into_inner()));
        let mut c = self.take()?;
        let result = (|| {
            let tx = c.transaction_with_behavior(behavior).map_err(db)?;
            let mut conn = SqliteConn { tx: &tx };
            let r = f(&mut conn)?;
            tx.commit().map_err(db)?;
            Ok(r)
        })();
        // A failed transaction was rolled back when `tx` dropped; the
        // connection is still good.
        self.put(c);
        result
    }
}

impl Backend for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn write<R>(&self, f: &mut dyn FnMut(&mut dyn Conn) -> Result<R, Error>) -> Result<R, Error> {
        self.run(TransactionBehavior::Immediate, f)
    }

    fn read<R>(&self, f: &mut dyn FnMut(&mut dyn Conn) -> Result<R, Error>) -> Result<R, Error> {
        self.run(TransactionBehavior::Deferred, f)
    }

    fn batch(&self, sql: &str) -> Result<(), Error> {
        let c = self.take()?;
        let r = c.execute_batch(sql).map_err(db);
        self.put(c);
        r
    }
}

struct SqliteConn<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

/// `$1` → `?1` (the queries have no `$` elsewhere).
fn translate(sql: &str) -> String {
    sql.replace('$', "?")
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Blob(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
            Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
        })
    }
}

impl Conn for SqliteConn<'_> {
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        let mut stmt = self.tx.prepare_cached(&translate(sql)).map_err(db)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params.iter()))
            .map_err(db)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error> {
        let mut stmt = self.tx.prepare_cached(&translate(sql)).map_err(db)?;
        let cols = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(db)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(db)? {
            let mut vals = Vec::with_capacity(cols);
            for i in 0..cols {
                vals.push(match r.get_ref(i).map_err(db)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => {
                        return Err(Error::Corrupt(format!("unexpected real {v} in column {i}")));
                    }
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(Row(vals));
        }
        Ok(out)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
}
