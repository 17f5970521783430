//! What the network's daemons (the provider and the verifier) share around
//! their calls to the coordinator: back-off, telling a refusal from an
//! outage, a shutdown signal that cuts sleeps short, and a bounded retry
//! (of a request signed afresh for each attempt: [`retry_signed`]).
//!
//! # Example
//!
//! ```
//! use assay_proto::Error;
//! use assay_proto::daemon::retry;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let mut calls = 0;
//! // An outage is retried; the third call gets through.
//! let got = retry(5, || {
//!     calls += 1;
//!     let n = calls;
//!     async move {
//!         if n < 3 { Err(Error::from(tonic::Status::unavailable("down"))) } else { Ok(n) }
//!     }
//! })
//! .await;
//! assert_eq!(got.unwrap(), 3);
//! # });
//! ```

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use assay_protocol::NodeKey;

use crate::Error;
use crate::auth;
use crate::client::REQUEST_TTL_MS;

/// How long to wait before attempt `attempt` + 1: 100 ms doubling, at most 5 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(6)).min(5_000))
}

/// The coordinator answered and said no (as opposed to an outage or a
/// broken connection, after which the same request is worth sending again).
pub fn refused(e: &Error) -> bool {
    use tonic::Code;
    matches!(
        e.code(),
        Code::InvalidArgument
            | Code::NotFound
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::DataLoss
            | Code::OutOfRange
            | Code::Unimplemented
            | Code::Unauthenticated
    )
}

/// A daemon's shutdown signal (`true` once shutdown started).
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Watches `rx`.
    pub fn new(rx: watch::Receiver<bool>) -> Shutdown {
        Shutdown(rx)
    }

    /// Whether shutdown has started.
    pub fn started(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps for `d`, or less when shutdown starts meanwhile.
    pub async fn sleep(&self, d: Duration) {
        let mut rx = self.0.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = rx.wait_for(|v| *v) => {}
        }
    }
}

/// Makes `call` up to `attempts` times, backing off between tries while it
/// fails for a reason other than a [refusal](refused). Used for requests
/// that must reach the coordinator even as the daemon stops (giving work
/// back), so its back-off does not end early on shutdown.
///
/// # Errors
///
/// The refusal, or the last error once the attempts are used up.
pub async fn retry<T, F, Fut>(attempts: u32, mut call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if refused(&e) || attempt + 1 >= attempts.max(1) => return Err(e),
            Err(_) => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
    }
}

/// [`retry`] for a signed request: each attempt signs a fresh copy of `req`
/// with `key` (a new nonce and expiry, so a retry is never refused as a
/// replay or as expired) and hands it to `call`.
///
/// # Errors
///
/// As [`retry`]; a signing failure counts as that attempt's error.
pub async fn retry_signed<M, T, F, Fut>(
    attempts: u32,
    key: &NodeKey,
    req: &M,
    mut call: F,
) -> Result<T, Error>
where
    M: auth::Signed + Clone,
    F: FnMut(M) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    retry(attempts, || {
        let mut req = req.clone();
        let sent = auth::sign(key, &mut req, crate::now_ms(), REQUEST_TTL_MS).map(|()| call(req));
        async move { sent?.await }
    })
    .await
}

/// Devnet: asks the coordinator's faucet for `amount` µcr for `key`,
/// retrying through outages (up to 50 tries, less if shutdown starts) and
/// logging the outcome; a refusal (e.g. the faucet is off) ends it.
pub async fn ask_faucet(
    channel: &tonic::transport::Channel,
    key: &assay_protocol::NodeKey,
    amount: u64,
    shutdown: &Shutdown,
) {
    for attempt in 0..50 {
        if shutdown.started() {
            return;
        }
        let mut req = crate::pb::FaucetRequest { auth: None, amount };
        if crate::auth::sign(
            key,
            &mut req,
            crate::now_ms(),
            crate::client::REQUEST_TTL_MS,
        )
        .is_err()
        {
            return;
        }
        match crate::pb::renter_client::RenterClient::new(channel.clone())
            .faucet(req)
            .await
        {
            Ok(r) => {
                tracing::info!(balance = r.get_ref().balance, "faucet credited");
                return;
            }
            Err(s) if !refused(&Error::from(s.clone())) => shutdown.sleep(backoff(attempt)).await,
            Err(s) => {
                tracing::warn!(error = %s.message(), "faucet refused");
                return;
            }
        }
    }
}
