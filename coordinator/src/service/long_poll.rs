//! Long polls: a provider waiting for work and a renter waiting for its job
//! are answered when something changes instead of polling on a timer.
//!
//! Every change that can make a shard takeable or move a job along (a job
//! published, a receipt, a lease given back or ended) bumps one counter, the
//! [`MarketSignal`]. A waiter subscribes *before* it looks at the store, so a
//! change between its look and its wait is never missed; after each wake it
//! looks again. Changes made by the background tick (expired leases,
//! settlement) are not signalled: waiters also look again every
//! [`RECHECK`], so those are seen within it.

use std::time::Duration;

use tokio::sync::watch;

/// The longest a long poll is held, whatever the caller asks.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// How often a waiter looks again without a signal (tick-driven changes).
pub const RECHECK: Duration = Duration::from_millis(250);

/// "The market changed": a counter that every change bumps.
#[derive(Debug)]
pub struct MarketSignal {
    changes: watch::Sender<u64>,
}

impl Default for MarketSignal {
    fn default() -> Self {
        MarketSignal {
            changes: watch::channel(0).0,
        }
    }
}

impl MarketSignal {
    /// Wakes every waiter.
    pub fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A subscription: take it before looking at the store.
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.changes.subscribe(),
        }
    }
}

/// One waiter's view of the [`MarketSignal`].
#[derive(Debug)]
pub struct Subscription {
    rx: watch::Receiver<u64>,
}

impl Subscription {
    /// Waits for a change, [`RECHECK`], or `deadline`, whichever comes
    /// first. Returns false once `deadline` has passed (stop waiting).
    pub async fn wait(&mut self, deadline: tokio::time::Instant) -> bool {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return false;
        }
        let until = deadline.min(now + RECHECK);
        // A closed channel cannot happen while the coordinator lives; if it
        // did, the timer still ends the wait.
        let _ = tokio::time::timeout_at(until, self.rx.changed()).await;
        tokio::time::Instant::now() < deadline
    }
}

/// The deadline of a long poll that asked for `wait_ms`.
pub fn deadline(wait_ms: u32) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_millis(u64::from(wait_ms)).min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_after_subscribing_wakes_the_waiter_at_once() {
        let signal = MarketSignal::default();
        let mut sub = signal.subscribe();
        signal.changed();
        let started = tokio::time::Instant::now();
        assert!(sub.wait(deadline(10_000)).await);
        assert!(started.elapsed() < RECHECK);
    }

    #[tokio::test]
    async fn without_a_change_the_waiter_looks_again_after_the_recheck_and_stops_at_the_deadline() {
        let signal = MarketSignal::default();
        let mut sub = signal.subscribe();
        let end = deadline(600);
        let started = tokio::time::Instant::now();
        assert!(sub.wait(end).await);
        assert!(started.elapsed() >= RECHECK);
        assert!(started.elapsed() < end - started);
        while sub.wait(end).await {}
        assert!(started.elapsed() >= Duration::from_millis(600));
        assert!(!sub.wait(end).await);
    }

    #[test]
    fn a_wait_is_capped() {
        let d = deadline(u32::MAX) - tokio::time::Instant::now();
        assert!(d <= MAX_WAIT);
    }
}
