//! Request authentication: a state-changing request is signed by its node
//! for this coordinator and expires soon; its nonce is recorded so a replay
//! is refused (`ALREADY_EXISTS`), and a request signed for another
//! coordinator is refused (`UNAUTHENTICATED`).

use assay_proto::auth::{self, Signed};
use assay_proto::now_ms;
use assay_protocol::NodeId;
use tonic::Status;

use super::{Coordinator, bad, blocking};

impl Coordinator {
    /// Checks signature and expiry, then records the nonce; returns the
    /// signer.
    pub(super) async fn authenticate<M: Signed>(&self, msg: &M) -> Result<NodeId, Status> {
        let v = self.signature(msg)?;
        self.spend_nonce(v).await
    }

    /// Checks signature, coordinator and expiry only: a handler that can refuse the
    /// request on what it carries does so before [`Coordinator::spend_nonce`]
    /// writes anything.
    pub(super) fn signature<M: Signed>(&self, msg: &M) -> Result<auth::Verified, Status> {
        let v = auth::verify(msg, now_ms(), self.cfg.max_request_ahead_ms)
            .and_then(|v| v.for_coordinator(&self.store.coordinator_id()))
            .map_err(bad)?;
        self.within_rate(&v.node)?;
        Ok(v)
    }

    /// Counts a signed request against its key's rate
    /// ([`ServerConfig::key_rate`](super::ServerConfig)).
    fn within_rate(&self, node: &NodeId) -> Result<(), Status> {
        let Some(rates) = &self.rates else {
            return Ok(());
        };
        let checked = match rates.lock() {
            Ok(mut l) => l.check(*node, now_ms()),
            // A panic elsewhere while holding it: count nothing rather
            // than refuse everyone.
            Err(_) => Ok(()),
        };
        checked.map_err(|r| {
            if r.too_many_keys {
                Status::resource_exhausted(format!(
                    "more than {} keys are sending at once: retry in a second",
                    self.cfg.max_rate_keys
                ))
            } else {
                let rate = self.cfg.key_rate.map_or(0, |r| r.per_second);
                Status::resource_exhausted(format!(
                    "key {} sent more than {rate} signed requests per second: retry in {} ms",
                    &node.to_hex()[..12],
                    r.retry_after_ms
                ))
            }
        })
    }

    /// Records a verified request's nonce (a replay is refused); returns
    /// the signer.
    pub(super) async fn spend_nonce(&self, v: auth::Verified) -> Result<NodeId, Status> {
        let store = self.store.clone();
        blocking(move || store.use_nonce(&v.node, v.nonce, v.expires_at_ms)).await?;
        Ok(v.node)
    }
}

impl Coordinator {
    /// Checks a read's signature, coordinator and expiry; returns the
    /// signer. A read changes nothing, so its nonce is not spent (no write
    /// per read).
    pub(super) fn reader<M: Signed>(&self, msg: &M) -> Result<NodeId, Status> {
        self.signature(msg).map(|v| v.node)
    }
}

/// The nonce of a request [`Coordinator::authenticate`] accepted: unique per
/// signer, so a ledger reference built from it names one movement and a
/// retried request cannot repeat it.
pub(super) fn nonce<M: Signed>(msg: &M) -> u64 {
    msg.auth().map_or(0, |a| a.nonce)
}
