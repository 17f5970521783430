//! Signing a request: the one place a daemon's key meets a message.

use crate::error::Error;

/// Signs `msg` with `key` for [`assay_proto::client::REQUEST_TTL_MS`]; a
/// failure is an [`Error::Sign`], which stops the daemon.
///
/// # Errors
///
/// [`Error::Sign`] when no nonce can be drawn.
pub fn sign<M: assay_proto::auth::Signed>(
    key: &assay_protocol::NodeKey,
    msg: &mut M,
) -> Result<(), Error> {
    assay_proto::auth::sign(
        key,
        msg,
        assay_proto::now_ms(),
        assay_proto::client::REQUEST_TTL_MS,
    )
    .map_err(Error::Sign)
}
