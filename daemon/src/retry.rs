//! Waiting and trying again: the back-off every call to the coordinator
//! uses, telling a refusal from an outage, a bounded retry, and the
//! daemon's shutdown signal (which cuts sleeps short).
//!
//! # Example
//!
//! ```
//! use assay_daemon::Error;
//! use assay_daemon::retry::retry;
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

use crate::Error;

/// How long to wait before attempt `attempt` + 1: 100 ms doubling, at most 5 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(6)).min(5_000))
}

/// The coordinator answered and said no (as opposed to an outage or a
/// broken connection, after which the same request is worth sending again).
pub fn refused(e: &assay_proto::Error) -> bool {
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

/// True if `e` is worth another try: a call that failed for a reason other
/// than a [refusal](refused). Signing failures, missing services and local
/// errors are not.
pub fn worth_retrying(e: &Error) -> bool {
    matches!(e, Error::Call(c) if !refused(c))
}

/// A daemon's shutdown signal (`true` once shutdown started).
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal and the sender that starts it.
    pub fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// Whether shutdown has started.
    pub fn started(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown has started.
    pub async fn stopped(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|v| *v).await;
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
/// fails in a way [worth retrying](worth_retrying). Used for requests that
/// must reach the coordinator even as the daemon stops (giving work back),
/// so its back-off does not end early on shutdown. `call` builds (and
/// signs) a fresh request for each attempt, so a retry is never refused as
/// a replay or as expired.
///
/// # Errors
///
/// The first error not worth retrying, or the last one once the attempts
/// are used up.
pub async fn retry<T, F, Fut>(attempts: u32, mut call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if !worth_retrying(&e) || attempt + 1 >= attempts.max(1) => return Err(e),
            Err(_) => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
    }
}
