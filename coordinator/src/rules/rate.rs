//! Request rates per signing key: a token bucket per key, so that one key
//! cannot take the coordinator's store for itself, and a bound on how many
//! keys are tracked at once, so that a flood of fresh keys cannot grow the
//! table without end.
//!
//! Pure: the caller passes the clock; tokens are counted in thousandths of
//! a request, in integers.
//!
//! # Example
//!
//! ```
//! use assay_coordinator::rules::rate::{Limiter, Rate};
//!
//! let mut l = Limiter::new(Rate { per_second: 10, burst: 2 }, 1_000);
//! assert!(l.check("a", 0).is_ok());
//! assert!(l.check("a", 0).is_ok());
//! // The burst is spent: the next one is 100 ms away at 10 per second.
//! assert_eq!(l.check("a", 0).unwrap_err().retry_after_ms, 100);
//! assert!(l.check("a", 100).is_ok());
//! // Another key has its own bucket.
//! assert!(l.check("b", 0).is_ok());
//! ```

use std::collections::HashMap;
use std::hash::Hash;

/// A rate: `per_second` requests on average, in bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per second, sustained (at least 1).
    pub per_second: u32,
    /// Requests at once after a quiet spell (at least 1).
    pub burst: u32,
}

/// A request refused by a [`Limiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// When the key may send again, in ms from now (0 when the refusal is
    /// for too many keys at once: retry soon).
    pub retry_after_ms: u64,
    /// Whether the table of keys is full (a flood of keys, not this key's
    /// rate).
    pub too_many_keys: bool,
}

/// One key's bucket: thousandths of a request available at `at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    milli: u64,
    at_ms: u64,
}

impl Bucket {
    fn refilled(self, rate: Rate, now_ms: u64) -> Bucket {
        let elapsed = now_ms.saturating_sub(self.at_ms);
        // per_second requests per 1000 ms = per_second thousandths per ms.
        let milli = self
            .milli
            .saturating_add(elapsed.saturating_mul(u64::from(rate.per_second.max(1))))
            .min(capacity(rate));
        Bucket {
            milli,
            at_ms: self.at_ms.max(now_ms),
        }
    }
}

fn capacity(rate: Rate) -> u64 {
    u64::from(rate.burst.max(1)) * 1000
}

/// Token buckets for up to `max_keys` keys.
#[derive(Debug)]
pub struct Limiter<K> {
    rate: Rate,
    max_keys: usize,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// At most `rate` per key, `max_keys` keys tracked at once.
    pub fn new(rate: Rate, max_keys: usize) -> Limiter<K> {
        Limiter {
            rate,
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes one request of `key` at `now_ms`.
    ///
    /// # Errors
    ///
    /// A [`Refusal`]: the key's bucket is empty (retry after the time
    /// given), or `max_keys` other keys are mid-burst and none can be
    /// forgotten.
    pub fn check(&mut self, key: K, now_ms: u64) -> Result<(), Refusal> {
        let rate = self.rate;
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_keys {
            // A full bucket is what a new key would get: forgetting those
            // loses nothing.
            let cap = capacity(rate);
            self.buckets
                .retain(|_, b| b.refilled(rate, now_ms).milli < cap);
            if self.buckets.len() >= self.max_keys {
                return Err(Refusal {
                    retry_after_ms: 0,
                    too_many_keys: true,
                });
            }
        }
        let b = self.buckets.entry(key).or_insert(Bucket {
            milli: capacity(rate),
            at_ms: now_ms,
        });
        let now = b.refilled(rate, now_ms);
        if now.milli >= 1000 {
            *b = Bucket {
                milli: now.milli - 1000,
                at_ms: now.at_ms,
            };
            Ok(())
        } else {
            *b = now;
            let per_ms = u64::from(rate.per_second.max(1));
            Err(Refusal {
                retry_after_ms: (1000 - now.milli).div_ceil(per_ms),
                too_many_keys: false,
            })
        }
    }

    /// Keys tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_its_rate_and_no_more() {
        let rate = Rate {
            per_second: 100,
            burst: 5,
        };
        let mut l = Limiter::new(rate, 10);
        for _ in 0..5 {
            assert!(l.check(1, 1_000).is_ok());
        }
        let r = l.check(1, 1_000).expect_err("burst spent");
        assert_eq!(r.retry_after_ms, 10);
        assert!(!r.too_many_keys);
        // Over ten seconds at a steady 1,000 asks per second, 100 per second
        // pass (plus the burst), never more.
        let mut passed = 0;
        for ms in 1_000..11_000 {
            if l.check(1, ms).is_ok() {
                passed += 1;
            }
        }
        assert!((995..=1_005).contains(&passed), "{passed}");
        // A clock that goes back refills nothing and breaks nothing.
        assert!(l.check(1, 500).is_err());
    }

    #[test]
    fn a_flood_of_fresh_keys_is_bounded_and_quiet_keys_are_forgotten() {
        let rate = Rate {
            per_second: 1,
            burst: 2,
        };
        let mut l = Limiter::new(rate, 3);
        for k in 0..3 {
            assert!(l.check(k, 0).is_ok());
        }
        // Three keys mid-burst: a fourth is refused, the table stays small.
        let r = l.check(3, 0).expect_err("too many keys");
        assert!(r.too_many_keys);
        assert_eq!(l.tracked(), 3);
        // Once their buckets are full again they are forgotten.
        assert!(l.check(3, 1_000).is_ok());
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn no_overflow_at_the_ends_of_the_clock_and_the_rate() {
        let rate = Rate {
            per_second: u32::MAX,
            burst: u32::MAX,
        };
        let mut l = Limiter::new(rate, 1);
        assert!(l.check((), 0).is_ok());
        assert!(l.check((), u64::MAX).is_ok());
        let zero = Rate {
            per_second: 0,
            burst: 0,
        };
        let mut l = Limiter::new(zero, 0);
        assert!(l.check((), 0).is_ok());
        assert_eq!(
            l.check((), 0).expect_err("one per second").retry_after_ms,
            1_000
        );
    }
}
