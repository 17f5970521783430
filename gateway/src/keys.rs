//! API keys: issued by `assay gateway key create`, kept in a SQLite file in
//! the gateway's home, only as SHA-256 hashes (a key is 32 random bytes, so
//! a plain hash is as strong as a slow one; a stolen database gives no key).
//!
//! A key may carry a spend limit in µIOSD, which it never passes. What a
//! request is charged is its share (by sequences) of its job's cost at the
//! job's max price — an upper bound on what the providers are paid. Before
//! it runs, a request holds the most it could be charged (its sequences'
//! bound, see [`crate::Batcher::most_cost`]) against what the key has left,
//! counting the holds of its requests in flight; one that does not fit is
//! refused (429) at once. When it is answered it is charged what it cost
//! and its hold is released; a request that fails is charged nothing.
//! Holds live in the gateway's memory: they end with the requests.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

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
    /// µIOSD held by each key's requests in flight.
    holds: Mutex<HashMap<i64, u64>>,
}

/// What a request in flight holds of its key's spend limit; released when
/// dropped, or charged by [`Held::settle`].
#[derive(Debug)]
pub struct Held {
    store: Arc<KeyStore>,
    key: i64,
    amount: u64,
}

impl Held {
    /// Charges the request's `cost` (at most what it held) and releases
    /// the hold.
    ///
    /// # Errors
    ///
    /// [`Error::Keys`] if the store cannot be written (the hold is still
    /// released).
    pub fn settle(self, cost: u64) -> Result<(), Error> {
        self.store.charge(self.key, cost.min(self.amount))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut holds = self.store.holds();
        if let Some(h) = holds.get_mut(&self.key) {
            *h = h.saturating_sub(self.amount);
            if *h == 0 {
                holds.remove(&self.key);
            }
        }
    }
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
            holds: Mutex::new(HashMap::new()),
        })
    }

    fn holds(&self) -> std::sync::MutexGuard<'_, HashMap<i64, u64>> {
        self.holds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds `amount` µIOSD of `key`'s spend limit for a request about to
    /// run (nothing to hold without a limit).
    ///
    /// # Errors
    ///
    /// [`Error::SpendLimit`] when what the key has spent, what its requests
    /// in flight hold and `amount` pass its limit; [`Error::Keys`].
    pub fn hold(self: &Arc<Self>, key: &ApiKey, amount: u64) -> Result<Held, Error> {
        let mut holds = self.holds();
        if let Some(limit) = key.spend_limit {
            let spent = self
                .conn()
                .query_row(
                    "SELECT spent FROM api_keys WHERE id = ?1",
                    params![key.id],
                    |r| r.get::<_, i64>(0),
                )
                .map(to_u64)?;
            let held = holds.get(&key.id).copied().unwrap_or(0);
            let left = limit.saturating_sub(spent).saturating_sub(held);
            if amount > left {
                return Err(Error::SpendLimit(format!(
                    "this request may cost up to {amount} µIOSD and the API key {}… has {left} \
                     of its {limit} µIOSD limit left ({spent} spent, {held} held by requests in \
                     flight); send fewer inputs, or ask the operator to raise the limit",
                    key.prefix
                )));
            }
        }
        *holds.entry(key.id).or_insert(0) += amount;
        Ok(Held {
            store: self.clone(),
            key: key.id,
            amount,
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

    #[test]
    fn requests_in_flight_hold_their_most_cost_and_the_limit_is_never_passed() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Arc::new(KeyStore::open(&dir.path().join("k.sqlite")).expect("open"));
        let (_, key) = store.create("capped", Some(100)).expect("create");
        let first = store.hold(&key, 60).expect("60 of 100");
        // 40 left while the first is in flight.
        assert!(matches!(store.hold(&key, 41), Err(Error::SpendLimit(_))));
        let second = store.hold(&key, 40).expect("the last 40");
        // The first cost 10 of its 60: 50 come back.
        first.settle(10).expect("settle");
        let third = store.hold(&key, 50).expect("50 back");
        // A request that fails is charged nothing: its hold comes back.
        drop(second);
        drop(third);
        assert_eq!(store.list().expect("list")[0].spent, 10);
        assert!(store.hold(&key, 90).is_ok());
        assert!(matches!(store.hold(&key, 91), Err(Error::SpendLimit(_))));
        // Without a limit nothing is refused.
        let (_, free) = store.create("free", None).expect("create");
        assert!(store.hold(&free, u64::MAX).is_ok());
    }
}
