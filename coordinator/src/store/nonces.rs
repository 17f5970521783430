//! Request nonces: a signed request's nonce is recorded until the request
//! expires, so a replay is refused.

use assay_protocol::NodeId;

use super::sql::{Backend, Value, int};
use super::sql_store::SqlStore;
use crate::Error;

/// Spent request nonces, and the coordinator id requests are signed for.
pub trait Nonces {
    /// The coordinator's id (drawn when the database was created): every
    /// signed request must name it.
    fn coordinator_id(&self) -> assay_protocol::Hash32;
    /// Records a request nonce until it expires.
    ///
    /// # Errors
    ///
    /// [`Error::Auth`] (`Replayed`) if this node used it already.
    fn use_nonce(&self, node: &NodeId, nonce: u64, expires_at_ms: u64) -> Result<(), Error>;
    /// Forgets nonces whose requests have expired.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn purge_nonces(&self, now_ms: u64) -> Result<u64, Error>;
}

impl<B: Backend> Nonces for SqlStore<B> {
    fn coordinator_id(&self) -> assay_protocol::Hash32 {
        self.id
    }

    fn use_nonce(&self, node: &NodeId, nonce: u64, expires_at_ms: u64) -> Result<(), Error> {
        let n = self.b.write(&mut |c| {
            c.exec(
                "INSERT INTO nonces (node, nonce, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (node, nonce) DO NOTHING",
                &[node.into(), Value::Int(nonce as i64), int(expires_at_ms)?],
            )
        })?;
        if n == 0 {
            return Err(Error::Auth(assay_proto::Error::Replayed {
                node: node.to_hex(),
                nonce,
            }));
        }
        Ok(())
    }

    fn purge_nonces(&self, now_ms: u64) -> Result<u64, Error> {
        self.b
            .write(&mut |c| c.exec("DELETE FROM nonces WHERE expires_at < $1", &[int(now_ms)?]))
    }
}
