//! The background work, on a fixed tick: expired leases are re-queued,
//! epochs that ended have their seeds revealed and their receipts sampled,
//! checks past their deadline go to another verifier, hardware challenges
//! are sent and timed out, receipts past their challenge window are
//! settled, reward epochs that ended emit and pay their IO, unstaked IO
//! past its cooldown is released, bonds that are due mature, reserved
//! clusters pay their members, replace those that went offline and
//! expire, spent
//! nonces are purged. Each step is one store call (see
//! [`crate::store`]); the services ([`crate::service`]) start this beside
//! themselves.

use std::sync::Arc;
use std::time::Duration;

use assay_proto::now_ms;

use crate::Error;
use crate::store::Store;

/// Spent nonces are purged at most this often.
const PURGE_EVERY_MS: u64 = 60_000;

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Leases that expired (their shards re-queued).
    pub expired: u64,
    /// Receipts drawn for a check.
    pub sampled: u64,
    /// Checks whose verifier missed its deadline.
    pub late_checks: u64,
    /// Receipts settled.
    pub settled: usize,
    /// Reward epochs closed.
    pub reward_epochs: u64,
    /// Reserved clusters: members paid, dropped, replaced; clusters expired.
    pub clusters: crate::types::ClusterReport,
}

/// One tick's work at `now_ms`; `purge`: also forget spent nonces.
///
/// # Errors
///
/// The store's.
pub fn tick(store: &dyn Store, now_ms: u64, purge: bool) -> Result<TickReport, Error> {
    let expired = store.expire_leases(now_ms)?;
    let sampled = store.reveal_epochs(now_ms)?;
    let late_checks = store.expire_checks(now_ms)?;
    store.expire_disputes(now_ms)?;
    store.run_challenges(now_ms)?;
    let settled = store.settle_due(now_ms)?.len();
    let reward_epochs = store.close_reward_epochs(now_ms)?;
    store.release_unbonded(now_ms)?;
    store.mature_bonds(now_ms)?;
    let clusters = store.run_clusters(now_ms)?;
    if purge {
        store.purge_nonces(now_ms)?;
    }
    Ok(TickReport {
        expired,
        sampled,
        late_checks,
        settled,
        reward_epochs,
        clusters,
    })
}

/// Runs [`tick`] every `tick_ms` (at least 10) until `shutdown` resolves.
pub async fn run(
    store: Arc<dyn Store>,
    tick_ms: u64,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut interval = tokio::time::interval(Duration::from_millis(tick_ms.max(10)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_purge = 0u64;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = interval.tick() => {}
        }
        let store = store.clone();
        let now = now_ms();
        let purge = now.saturating_sub(last_purge) > PURGE_EVERY_MS;
        if purge {
            last_purge = now;
        }
        match tokio::task::spawn_blocking(move || tick(store.as_ref(), now, purge)).await {
            Ok(Ok(r)) if r != TickReport::default() => {
                tracing::info!(
                    expired = r.expired,
                    settled = r.settled,
                    sampled = r.sampled,
                    late_checks = r.late_checks,
                    reward_epochs = r.reward_epochs,
                    cluster_pay = r.clusters.paid,
                    cluster_dropouts = r.clusters.dropped,
                    clusters_expired = r.clusters.expired,
                    "background work"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "background work failed"),
            Err(e) => tracing::error!(error = %e, "background worker failed"),
        }
    }
}
