//! The PostgreSQL backend, for deployments where several coordinator
//! replicas share one database: row locks, and leasing with
//! `SELECT … FOR UPDATE SKIP LOCKED` so replicas never hand out one shard
//! twice nor wait on each other.
//!
//! It uses the synchronous `postgres` client (a pool of connections); the
//! gRPC server calls the store from blocking threads.

use std::collections::HashMap;

use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, IsolationLevel, NoTls, Statement};

use super::sql::{Backend, Conn, Dialect, Pool, Row, Value};
use crate::Error;

/// Most connections open at once (per replica).
const POOL: usize = 16;
/// Retries of a transaction that hit a serialization failure or deadlock.
const RETRIES: usize = 20;

/// PostgreSQL through the `postgres` client.
pub struct Postgres {
    url: String,
    schema: Option<String>,
    pool: Pool<Pooled>,
}

/// A connection and its prepared statements (prepared once per connection:
/// a statement then costs one round trip, not two).
struct Pooled {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn db(e: postgres::Error) -> Error {
    let message = match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    };
    Error::Database {
        backend: "postgres",
        message,
    }
}

fn transient(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        matches!(
            c.code(),
            "40001" /* serialization_failure */ | "40P01" /* deadlock_detected */ | "23505" /* unique_violation (racing inserts) */
        )
    })
}

/// Why a transaction ended.
enum Failed {
    /// Retry it.
    Transient(Error),
    /// Give up.
    Fatal(Error),
}

impl Postgres {
    /// Connects to `url` (e.g. `postgres://user@127.0.0.1:5432/assay`).
    /// With `schema`, every connection works in that schema (created if
    /// missing): the tests give each run its own.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] if the server cannot be reached.
    pub fn open(url: &str, schema: Option<&str>) -> Result<Postgres, Error> {
        if let Some(s) = schema
            && !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::Invalid(format!(
                "schema name {s:?}: use letters, digits and _"
            )));
        }
        let p = Postgres {
            url: url.to_string(),
            schema: schema.map(str::to_string),
            pool: Pool::new(POOL),
        };
        let c = p.take()?;
        p.put(c);
        Ok(p)
    }

    fn connect(&self) -> Result<Pooled, Error> {
        let mut c = Client::connect(&self.url, NoTls).map_err(|e| Error::Database {
            backend: "postgres",
            message: format!(
                "cannot connect to {}: {e} (is the server running, and the URL right?)",
                redact(&self.url)
            ),
        })?;
        if let Some(s) = &self.schema {
            c.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {s}; SET search_path TO {s}"
            ))
            .map_err(db)?;
        }
        Ok(Pooled {
            client: c,
            statements: HashMap::new(),
        })
    }

    fn take(&self) -> Result<Pooled, Error> {
        loop {
            let c = self.pool.take(|| self.connect())?;
            if !c.client.is_closed() {
                return Ok(c);
            }
            self.pool.discard();
        }
    }

    fn put(&self, c: Pooled) {
        if c.client.is_closed() {
            self.pool.discard();
        } else {
            self.pool.put(c);
        }
    }

    /// Drops this backend's schema (tests clean up with it).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub fn drop_schema(&self) -> Result<(), Error> {
        let Some(s) = &self.schema else {
            return Ok(());
        };
        let mut c = self.take()?;
        c.client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"))
            .map_err(db)
    }

    fn run<R>(
        &self,
        read_only: bool,
        f: &mut dyn FnMut(&mut dyn Conn) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut attempt = 0;
        loop {
            let mut c = self.take()?;
            let Pooled { client, statements } = &mut c;
            let outcome = (|| {
                let mut builder = client.build_transaction();
                if read_only {
                    builder = builder
                        .read_only(true)
                        .isolation_level(IsolationLevel::RepeatableRead);
                }
                let mut tx = builder.start().map_err(|e| Failed::Fatal(db(e)))?;
                let mut conn = PgConn {
                    tx: &mut tx,
                    statements,
                    transient: false,
                };
                match f(&mut conn) {
                    Ok(r) => {
                        if conn.transient {
                            return Err(Failed::Transient(Error::Database {
                                backend: "postgres",
                                message: "conflict".into(),
                            }));
                        }
                        tx.commit().map_err(|e| {
                            if transient(&e) {
                                Failed::Transient(db(e))
                            } else {
                                Failed::Fatal(db(e))
                            }
                        })?;
                        Ok(r)
                    }
                    Err(e) if conn.transient => Err(Failed::Transient(e)),
                    Err(e) => Err(Failed::Fatal(e)),
                }
            })();
            self.put(c);
            match outcome {
                Ok(r) => return Ok(r),
                Err(Failed::Transient(e)) if attempt < RETRIES => {
                    attempt += 1;
                    tracing::debug!(attempt, error = %e, "retrying a conflicting transaction");
                    std::thread::sleep(std::time::Duration::from_millis(1 + attempt as u64));
                }
                Err(Failed::Transient(e) | Failed::Fatal(e)) => return Err(e),
            }
        }
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Backend for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn write<R>(&self, f: &mut dyn FnMut(&mut dyn Conn) -> Result<R, Error>) -> Result<R, Error> {
        self.run(false, f)
    }

    fn read<R>(&self, f: &mut dyn FnMut(&mut dyn Conn) -> Result<R, Error>) -> Result<R, Error> {
        self.run(true, f)
    }

    fn batch(&self, sql: &str) -> Result<(), Error> {
        let mut c = self.take()?;
        let r = c.client.batch_execute(sql).map_err(db);
        // The schema may have changed under the prepared statements.
        c.statements.clear();
        self.put(c);
        r
    }
}

struct PgConn<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    statements: &'a mut HashMap<String, Statement>,
    /// A statement failed with a conflict: the transaction must be retried.
    transient: bool,
}

impl PgConn<'_, '_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql).map_err(|e| self.fail(e))?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    fn fail(&mut self, e: postgres::Error) -> Error {
        if transient(&e) {
            self.transient = true;
        }
        db(e)
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => {
                if *ty == Type::INT4 {
                    i32::try_from(*v)?.to_sql(ty, out)
                } else if *ty == Type::INT2 {
                    i16::try_from(*v)?.to_sql(ty, out)
                } else {
                    v.to_sql(ty, out)
                }
            }
            Value::Blob(v) => v.as_slice().to_sql(ty, out),
            Value::Text(v) => v.as_str().to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl std::fmt::Debug for PgConn<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgConn")
    }
}

fn params(p: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    p.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Conn for PgConn<'_, '_> {
    fn exec(&mut self, sql: &str, p: &[Value]) -> Result<u64, Error> {
        let stmt = self.statement(sql)?;
        let r = self.tx.execute(&stmt, &params(p));
        r.map_err(|e| self.fail(e))
    }

    fn query(&mut self, sql: &str, p: &[Value]) -> Result<Vec<Row>, Error> {
        let stmt = self.statement(sql)?;
        let rows = self.tx.query(&stmt, &params(p));
        let rows = rows.map_err(|e| self.fail(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut vals = Vec::with_capacity(r.len());
            for (i, col) in r.columns().iter().enumerate() {
                let ty = col.type_();
                let v = if *ty == Type::INT8 {
                    r.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int))
                } else if *ty == Type::INT4 {
                    r.try_get::<_, Option<i32>>(i)
                        .map(|v| v.map(|v| Value::Int(v.into())))
                } else if *ty == Type::INT2 {
                    r.try_get::<_, Option<i16>>(i)
                        .map(|v| v.map(|v| Value::Int(v.into())))
                } else if *ty == Type::BOOL {
                    r.try_get::<_, Option<bool>>(i).map(|v| v.map(Value::from))
                } else if *ty == Type::BYTEA {
                    r.try_get::<_, Option<Vec<u8>>>(i)
                        .map(|v| v.map(Value::Blob))
                } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME {
                    r.try_get::<_, Option<String>>(i)
                        .map(|v| v.map(Value::Text))
                } else {
                    return Err(Error::Corrupt(format!(
                        "column {} has type {ty}, which the store does not read",
                        col.name()
                    )));
                };
                vals.push(v.map_err(db)?.unwrap_or(Value::Null));
            }
            out.push(Row(vals));
        }
        Ok(out)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
