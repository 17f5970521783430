//! Signing a request: the one place a daemon's key meets a message, and
//! binding that key to its coordinator.

use std::time::Duration;

use assay_proto::auth::Signer;
use tonic::transport::Channel;

use crate::error::Error;

/// Signs `msg` as `signer` for [`assay_proto::client::REQUEST_TTL_MS`]; a
/// failure is an [`Error::Sign`], which stops the daemon.
///
/// # Errors
///
/// [`Error::Sign`] when no nonce can be drawn.
pub fn sign<M: assay_proto::auth::Signed>(signer: &Signer, msg: &mut M) -> Result<(), Error> {
    assay_proto::auth::sign(
        signer,
        msg,
        assay_proto::now_ms(),
        assay_proto::client::REQUEST_TTL_MS,
    )
    .map_err(Error::Sign)
}

/// `key` bound to the coordinator behind `channel` (its id, which every
/// signed request names). A daemon may start before its coordinator, so an
/// unreachable coordinator is asked again, every few seconds, until it
/// answers.
///
/// # Errors
///
/// [`Error::Call`] when the coordinator answers but refuses (e.g. an older
/// coordinator without `GetCoordinator`).
pub async fn bind(
    channel: &Channel,
    key: assay_protocol::NodeKey,
    url: &str,
) -> Result<Signer, Error> {
    let mut wait = Duration::from_millis(200);
    loop {
        match assay_proto::client::coordinator_id(channel).await {
            Ok(id) => {
                tracing::info!(coordinator = %id.short(), "signing for the coordinator at {url}");
                return Ok(Signer::new(key, id));
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "waiting for the coordinator at {url}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(Error::Call(e)),
        }
    }
}
