//! The small SQL layer both stores share: values, rows, a connection inside
//! a transaction, and the backend that runs transactions.
//!
//! Queries are written once, in PostgreSQL's `$1, $2, …` placeholder style;
//! the SQLite backend rewrites them to SQLite's equivalent `?1, ?2, …`. Only
//! the schema and a few locking clauses differ between the two
//! ([`Dialect`]).
//!
//! Queries on the busy paths (leasing, a job's status) that both constrain
//! a column to a parameter and order their rows say `col IN ($1)`, not
//! `col = $1`, and put their `LIMIT` in the text: for `col = ?` next to an
//! `ORDER BY`, and for `LIMIT ?`, SQLite plans with the bound value and so
//! prepares the statement again at every use (measured: a sixth of the
//! coordinator's time under a gateway's load). The plans are the same.

use assay_protocol::{Hash32, NodeId};

use crate::Error;

/// A parameter or column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (`BIGINT` / `INTEGER`).
    Int(i64),
    /// Bytes (`BYTEA` / `BLOB`).
    Blob(Vec<u8>),
    /// Text.
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}

impl From<&Hash32> for Value {
    fn from(v: &Hash32) -> Self {
        Value::Blob(v.0.to_vec())
    }
}

impl From<&NodeId> for Value {
    fn from(v: &NodeId) -> Self {
        Value::Blob(v.0.to_vec())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// An unsigned amount or count as a column value (refuses ≥ 2⁶³).
pub fn int(v: u64) -> Result<Value, Error> {
    i64::try_from(v)
        .map(Value::Int)
        .map_err(|_| Error::Invalid(format!("{v} is too large (the most is {})", i64::MAX)))
}

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(pub Vec<Value>);

fn corrupt(i: usize, want: &str, got: &Value) -> Error {
    Error::Corrupt(format!("column {i}: expected {want}, found {got:?}"))
}

impl Row {
    fn get(&self, i: usize) -> Result<&Value, Error> {
        self.0
            .get(i)
            .ok_or_else(|| Error::Corrupt(format!("row has no column {i}")))
    }

    /// An integer column.
    pub fn i64(&self, i: usize) -> Result<i64, Error> {
        match self.get(i)? {
            Value::Int(v) => Ok(*v),
            other => Err(corrupt(i, "an integer", other)),
        }
    }

    /// A non-negative integer column.
    pub fn u64(&self, i: usize) -> Result<u64, Error> {
        let v = self.i64(i)?;
        u64::try_from(v).map_err(|_| Error::Corrupt(format!("column {i}: negative value {v}")))
    }

    /// A non-negative integer column that fits a u32.
    pub fn u32(&self, i: usize) -> Result<u32, Error> {
        let v = self.u64(i)?;
        u32::try_from(v)
            .map_err(|_| Error::Corrupt(format!("column {i}: {v} does not fit 32 bits")))
    }

    /// A nullable integer column.
    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, Error> {
        match self.get(i)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            other => Err(corrupt(i, "an integer or NULL", other)),
        }
    }

    /// A bytes column.
    pub fn blob(&self, i: usize) -> Result<&[u8], Error> {
        match self.get(i)? {
            Value::Blob(v) => Ok(v),
            other => Err(corrupt(i, "bytes", other)),
        }
    }

    /// A text column.
    pub fn text(&self, i: usize) -> Result<&str, Error> {
        match self.get(i)? {
            Value::Text(v) => Ok(v),
            other => Err(corrupt(i, "text", other)),
        }
    }

    /// A nullable text column.
    pub fn opt_text(&self, i: usize) -> Result<Option<&str>, Error> {
        match self.get(i)? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v)),
            other => Err(corrupt(i, "text or NULL", other)),
        }
    }

    /// A 32-byte hash column.
    pub fn hash(&self, i: usize) -> Result<Hash32, Error> {
        let b = self.blob(i)?;
        b.try_into().map(Hash32).map_err(|_| {
            Error::Corrupt(format!("column {i}: {} bytes, not a 32-byte hash", b.len()))
        })
    }

    /// A nullable 32-byte hash column.
    pub fn opt_hash(&self, i: usize) -> Result<Option<Hash32>, Error> {
        match self.get(i)? {
            Value::Null => Ok(None),
            _ => self.hash(i).map(Some),
        }
    }

    /// A node id column.
    pub fn node(&self, i: usize) -> Result<NodeId, Error> {
        self.hash(i).map(|h| NodeId(h.0))
    }

    /// A nullable node id column.
    pub fn opt_node(&self, i: usize) -> Result<Option<NodeId>, Error> {
        Ok(self.opt_hash(i)?.map(|h| NodeId(h.0)))
    }
}

/// Which SQL dialect a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (writers serialise on `BEGIN IMMEDIATE`; no row locks).
    Sqlite,
    /// PostgreSQL (row locks, `SKIP LOCKED`).
    Postgres,
}

impl Dialect {
    /// The backend's name.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// A clause that locks the selected rows for this transaction (empty
    /// on SQLite, whose write transactions are already exclusive).
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// ` FOR SHARE` on PostgreSQL: the row read stays as read until the
    /// transaction ends (a writer waits or skips it). SQLite's write
    /// transactions are serial already.
    pub fn for_share(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR SHARE",
        }
    }

    /// Locks the selected rows and skips rows other transactions hold, so
    /// replicas lease different shards at once.
    pub fn skip_locked(self, table: &str) -> String {
        match self {
            Dialect::Sqlite => String::new(),
            Dialect::Postgres => format!(" FOR UPDATE OF {table} SKIP LOCKED"),
        }
    }
}

/// A connection inside a transaction.
pub trait Conn {
    /// Runs a statement; returns the number of rows changed.
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error>;
    /// Runs a query; returns every row.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, Error>;
    /// The dialect.
    fn dialect(&self) -> Dialect;

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, Error> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Exactly one row.
    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row, Error> {
        self.query_opt(sql, params)?
            .ok_or_else(|| Error::Corrupt(format!("no row for: {sql}")))
    }
}

/// A database that runs transactions.
pub trait Backend: Send + Sync + 'static {
    /// The dialect.
    fn dialect(&self) -> Dialect;

    /// Runs `f` in a write transaction and commits if it returns `Ok`
    /// (rolls back otherwise). Retries on transient conflicts, so `f` may
    /// run more than once and must not have effects outside the database.
    ///
    /// # Errors
    ///
    /// `f`'s error, or [`Error::Database`].
    fn write<R>(&self, f: &mut dyn FnMut(&mut dyn Conn) -> Result<R, Error>) -> Result<R, Error>;

    /// Runs `f` in a read-only transaction (a consistent snapshot).
    ///
    /// # Errors
    ///
    /// `f`'s error, or [`Error::Database`].
    fn read<R>(&self, f: &mut dyn FnMut(&mut dyn Conn) -> Result<R, Error>) -> Result<R, Error>;

    /// Runs a script of statements outside any transaction wrapper (migrations).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn batch(&self, sql: &str) -> Result<(), Error>;
}

/// A bounded pool of connections: at most `max` open at once; a caller
/// waits for a free one instead of opening more (PostgreSQL refuses
/// clients past `max_connections`).
pub(crate) struct Pool<T> {
    state: std::sync::Mutex<(Vec<T>, usize)>,
    freed: std::sync::Condvar,
    max: usize,
}

impl<T> Pool<T> {
    pub(crate) fn new(max: usize) -> Pool<T> {
        Pool {
            state: std::sync::Mutex::new((Vec::new(), 0)),
            freed: std::sync::Condvar::new(),
            max: max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<T>, usize)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection, a new one (under the limit), or the next one freed.
    pub(crate) fn take(&self, connect: impl Fn() -> Result<T, Error>) -> Result<T, Error> {
        let mut g = self.lock();
        loop {
            if let Some(c) = g.0.pop() {
                return Ok(c);
            }
            if g.1 < self.max {
                g.1 += 1;
                drop(g);
                return connect().inspect_err(|_| self.discard());
            }
            g = self.freed.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Returns a connection for reuse.
    pub(crate) fn put(&self, c: T) {
        self.lock().0.push(c);
        self.freed.notify_one();
    }

    /// Forgets a connection that was closed or broken.
    pub(crate) fn discard(&self) {
        let mut g = self.lock();
        g.1 = g.1.saturating_sub(1);
        drop(g);
        self.freed.notify_one();
    }
}
