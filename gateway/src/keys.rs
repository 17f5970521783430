//! API keys: issued by `assay gateway key create`, kept in a SQLite file in
//! the gateway's home, only as SHA-256 hashes (a key is 32 random bytes, so
//! a plain hash is as strong as a slow one; a stolen database gives no key).
//!
//! A key may carry a spend limit in µIOSD. What a request is charged is its
//! share (by sequences) of its job's cost at the job's max price — an upper
//! bound on what the providers are paid. A key whose spending has reached
//! its limit is refused (429); the request that crosses the limit is still
//! served, so a key can exceed its limit by at most one request.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::Error;

/// What every key starts with (and how a log or a user recognises one).
pub const KEY_PREFIX: &str = "sk-assay-";

/// A key as the store knows it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Its row id.
    pub id: i64,
    /// Its name (for people).
    pub name: String,
    /// The first characters of the secret, to tell keys apart.
    pub prefix: String,
    /// Most µIOSD it may spend (`None`: no limit).
    pub spend_limit: Option<u64>,
    /// µIOSD charged so far.
    pub spent: u64,
    /// When it was made, Unix ms.
    pub created_at_ms: u64,
    /// Refused from now on.
    pub revoked: bool,
}

/// The key store.
#[derive(Debug)]
pub struct KeyStore {
    conn: Mutex<Connection>,
}

fn hash_of(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn now_ms() -> u64 {
    assay_proto::now_ms()
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl KeyStore {
    /// Opens (creating) the store at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Keys`] if SQLite cannot open or set it up.
    pub fn open(path: &Path) -> Result<KeyStore, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS api_keys (
                 id INTEGER PRIMARY KEY,
                 name TEXT NOT NULL,
                 prefix TEXT NOT NULL,
                 secret_sha256 TEXT NOT NULL UNIQUE,
                 spend_limit INTEGER,
                 spent INTEGER NOT NULL DEFAULT 0,
                 created_at_ms INTEGER NOT NULL,
                 revoked INTEGER NOT NULL DEFAULT 0
             );",
        )?;
        Ok(KeyStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (every
        // change is one statement), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes a key; returns its secret (shown once, never stored) and record.
    ///
    /// # Errors
    ///
    /// [`Error::Keys`]; [`Error::Io`] if the OS has no random source.
    pub fn create(&self, name: &str, spend_limit: Option<u64>) -> Result<(String, ApiKey), Error> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
        let secret = format!("{KEY_PREFIX}{}", hex::encode(raw));
        let prefix: String = secret.chars().take(KEY_PREFIX.len() + 6).collect();
        let now = now_ms();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO api_keys (name, prefix, secret_sha256, spend_limit, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, prefix, hash_of(&secret), spend_limit.map(to_i64), to_i64(now)],
        )?;
        let id = conn.last_insert_rowid();
        Ok((
            secret,
            ApiKey {
                id,
                name: name.to_owned(),
                prefix,
                spend_limit,
                spent: 0,
                created_at_ms: now,
                revoked: false,
            },
        ))
    }

    /// The key whose secret is `secret`, if it may be used.
    ///
    /// # Errors
    ///
    /// [`Error::Unauthorized`] for an unknown or revoked key;
    /// [`Error::SpendLimit`] when its spending reached its limit.
    pub fn authenticate(&self, secret: &str) -> Result<ApiKey, Error> {
        let key = self
            .by_hash(&hash_of(secret))?
            .ok_or_else(|| {
                Error::Unauthorized(format!(
                    "incorrect API key provided: {}…; ask this gateway's operator for a key (`assay gateway key create`)",
                    secret.chars().take(KEY_PREFIX.len() + 6).collect::<String>()
                ))
            })?;
        if key.revoked {
            return Err(Error::Unauthorized(format!(
                "the API key {}… was revoked",
                key.prefix
            )));
        }
        if let Some(limit) = key.spend_limit
            && key.spent >= limit
        {
            return Err(Error::SpendLimit(format!(
                "the API key {}… has spent {} of its {} µIOSD limit; ask the operator to raise it",
                key.prefix, key.spent, limit
            )));
        }
        Ok(key)
    }

    fn by_hash(&self, hash: &str) -> Result<Option<ApiKey>, Error> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, name, prefix, spend_limit, spent, created_at_ms, revoked FROM api_keys WHERE secret_sha256 = ?1",
                params![hash],
                row,
            )
            .optional()?)
    }

    /// Adds `amount` µIOSD to what key `id` has spent.
    ///
    /// # Errors
    ///
    /// [`Error::Keys`].
    pub fn charge(&self, id: i64, amount: u64) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE api_keys SET spent = MIN(spent + ?2, 9223372036854775807) WHERE id = ?1",
            params![id, to_i64(amount)],
        )?;
        Ok(())
    }

    /// Every key, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Keys`].
    pub fn list(&self) -> Result<Vec<ApiKey>, Error> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, name, prefix, spend_limit, spent, created_at_ms, revoked FROM api_keys ORDER BY id",
        )?;
        let keys = stmt.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(keys)
    }

    /// Revokes the key named `name` (or whose prefix is `name`); returns
    /// how many keys it revoked.
    ///
    /// # Errors
    ///
    /// [`Error::Keys`].
    pub fn revoke(&self, name: &str) -> Result<usize, Error> {
        Ok(self.conn().execute(
            "UPDATE api_keys SET revoked = 1 WHERE name = ?1 OR prefix = ?1",
            params![name],
        )?)
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: r.get(0)?,
        name: r.get(1)?,
        prefix: r.get(2)?,
        spend_limit: r.get::<_, Option<i64>>(3)?.map(to_u64),
        spent: to_u64(r.get(4)?),
        created_at_ms: to_u64(r.get(5)?),
        revoked: r.get::<_, i64>(6)? != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_stored_only_as_its_hash_and_authenticates() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("gateway.sqlite");
        let store = KeyStore::open(&path).expect("open");
        let (secret, key) = store.create("ci", None).expect("create");
        assert!(secret.starts_with(KEY_PREFIX));
        assert_eq!(store.authenticate(&secret).expect("auth").id, key.id);
        assert!(matches!(
            store.authenticate("sk-assay-nope"),
            Err(Error::Unauthorized(_))
        ));
        drop(store);
        let bytes = std::fs::read(&path).expect("db");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&secret[KEY_PREFIX.len() + 6..]),
            "the secret is not in the file"
        );
        // Reopened, the key still works.
        let store = KeyStore::open(&path).expect("reopen");
        assert!(store.authenticate(&secret).is_ok());
        assert_eq!(store.revoke("ci").expect("revoke"), 1);
        assert!(matches!(
            store.authenticate(&secret),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn a_key_at_its_spend_limit_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = KeyStore::open(&dir.path().join("k.sqlite")).expect("open");
        let (secret, key) = store.create("capped", Some(100)).expect("create");
        store.charge(key.id, 99).expect("charge");
        assert!(store.authenticate(&secret).is_ok());
        store.charge(key.id, 5).expect("charge");
        assert!(matches!(
            store.authenticate(&secret),
            Err(Error::SpendLimit(_))
        ));
        assert_eq!(store.list().expect("list")[0].spent, 104);
    }
}
