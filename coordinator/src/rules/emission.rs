//! The block-reward schedule: how much IO each reward epoch emits.
//!
//! io.net's schedule, in integers: the first hour emits
//! 500,000,000 × 8 % / 8,760 ≈ 4,566.210045 IO, each hour
//! 0.0013886952 % less than the one before, for 175,319 hours, emitting
//! the whole reward pool (300,000,000 IO). Defined exactly, so every
//! coordinator and every auditor computes the same µIO:
//!
//! - `r = 10¹⁸ − 13,886,952 × 10⁶` is the hourly factor `1 − 0.000013886952`
//!   in fixed point (scale 10¹⁸); `rʰ` is computed by squaring, flooring
//!   after every product ([`decay`]).
//! - `K = ⌊40,000,000 × 10⁶ × 10¹² / (8,760 × 13,886,952)⌋` µIO is the
//!   geometric series' limit (first hour ÷ hourly decay).
//! - The emission of the first `h` hours is `S(h) = ⌊K × (10¹⁸ − rʰ) / 10¹⁸⌋`,
//!   and from hour 175,319 on it is the whole pool (the last hour emits
//!   what is left: 393.575424 IO instead of the series' 400.129911).
//! - Time inside an hour counts linearly: after `t` ms with hours of
//!   `hour_ms`, `C(t) = S(h) + (S(h+1) − S(h)) × (t mod hour_ms) / hour_ms`
//!   with `h = ⌊t / hour_ms⌋`.
//! - Reward epoch `n` (of `epoch_ms`) emits `C((n+1)·epoch_ms) − C(n·epoch_ms)`.
//!
//! So epochs of any length emit the same curve (a devnet that compresses
//! an hour to seconds sees the production schedule's shape), their sum is
//! `C` at the end of the last one, and no epoch emits past the pool.

use crate::ledger::{BASE, REWARD_POOL};

/// Hours over which the pool is emitted.
pub const HOURS: u64 = 175_319;
/// Fixed-point scale of [`decay`].
pub const SCALE: u128 = 1_000_000_000_000_000_000;
/// The hourly decay 0.000013886952 in parts per 10¹².
pub const DECAY_PER_TRILLION: u128 = 13_886_952;
/// The hourly factor `1 − decay` at [`SCALE`].
pub const FACTOR: u128 = SCALE - DECAY_PER_TRILLION * 1_000_000;
/// The series' limit in µIO: first hour ÷ decay.
pub const LIMIT: u128 =
    40_000_000 * BASE as u128 * 1_000_000_000_000 / (8_760 * DECAY_PER_TRILLION);

/// `FACTORʰ` at [`SCALE`], flooring after each product.
pub fn decay(mut h: u64) -> u128 {
    let (mut result, mut base) = (SCALE, FACTOR);
    while h > 0 {
        if h & 1 == 1 {
            result = result * base / SCALE;
        }
        base = base * base / SCALE;
        h >>= 1;
    }
    result
}

/// µIO emitted by the end of hour `h` (the first `h` hours).
pub fn emitted_by_hour(h: u64) -> u64 {
    if h >= HOURS {
        return REWARD_POOL;
    }
    let s = LIMIT * (SCALE - decay(h)) / SCALE;
    u64::try_from(s).unwrap_or(REWARD_POOL).min(REWARD_POOL)
}

/// µIO emitted `t_ms` after genesis, with hours of `hour_ms` (≥ 1).
pub fn emitted_by(t_ms: u64, hour_ms: u64) -> u64 {
    let hour_ms = hour_ms.max(1);
    let (h, into) = (t_ms / hour_ms, t_ms % hour_ms);
    let (start, end) = (emitted_by_hour(h), emitted_by_hour(h.saturating_add(1)));
    let part = u128::from(end - start) * u128::from(into) / u128::from(hour_ms);
    start + u64::try_from(part).unwrap_or(0)
}

/// What reward epoch `n` emits, with epochs of `epoch_ms` and hours of
/// `hour_ms` (both ≥ 1). 0 past the end of the schedule.
pub fn epoch_emission(n: u64, epoch_ms: u64, hour_ms: u64) -> u64 {
    let epoch_ms = epoch_ms.max(1);
    let start = n.saturating_mul(epoch_ms);
    let end = n.saturating_add(1).saturating_mul(epoch_ms);
    emitted_by(end, hour_ms) - emitted_by(start, hour_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_schedule_is_io_nets() {
        // The first hour: 500M × 8 % / 8,760 IO.
        assert_eq!(emitted_by_hour(1), 4_566_210_045);
        // Each hour 0.0013886952 % less than the last (to the µIO).
        let (h0, h1) = (emitted_by_hour(1), emitted_by_hour(2) - emitted_by_hour(1));
        let want = u128::from(h0) * (1_000_000_000_000 - DECAY_PER_TRILLION) / 1_000_000_000_000;
        assert!(u128::from(h1).abs_diff(want) <= 1, "{h1} vs {want}");
        // The pool is emitted over exactly 175,319 hours.
        assert!(emitted_by_hour(HOURS - 1) < REWARD_POOL);
        assert_eq!(emitted_by_hour(HOURS), REWARD_POOL);
        assert_eq!(emitted_by_hour(HOURS + 10), REWARD_POOL);
        assert_eq!(REWARD_POOL - emitted_by_hour(HOURS - 1), 393_575_424);
    }

    #[test]
    fn a_compressed_hour_has_the_same_shape() {
        // An hour of 10 s split into epochs of 2 s: five epochs emit one hour.
        let five: u64 = (0..5).map(|n| epoch_emission(n, 2_000, 10_000)).sum();
        assert_eq!(five, emitted_by_hour(1));
        // Epochs of an hour emit hour by hour.
        assert_eq!(epoch_emission(0, 3_600_000, 3_600_000), 4_566_210_045);
        assert_eq!(
            epoch_emission(7, 3_600_000, 3_600_000),
            emitted_by_hour(8) - emitted_by_hour(7)
        );
        assert_eq!(epoch_emission(HOURS + 1, 1_000, 1_000), 0);
    }

    proptest! {
        #[test]
        fn epochs_telescope_and_never_pass_the_pool(
            epoch_ms in 1u64..10_000_000,
            hour_ms in 1u64..10_000_000,
            first in 0u64..1_000_000,
            count in 1u64..50,
        ) {
            let sum: u128 = (first..first + count)
                .map(|n| u128::from(epoch_emission(n, epoch_ms, hour_ms)))
                .sum();
            let want = emitted_by((first + count) * epoch_ms, hour_ms) - emitted_by(first * epoch_ms, hour_ms);
            prop_assert_eq!(sum, u128::from(want));
            prop_assert!(emitted_by((first + count) * epoch_ms, hour_ms) <= REWARD_POOL);
        }

        #[test]
        fn the_curve_never_goes_down(t in 0u64..1u64 << 50, dt in 0u64..1u64 << 30, hour_ms in 1u64..10_000_000) {
            prop_assert!(emitted_by(t, hour_ms) <= emitted_by(t + dt, hour_ms));
        }
    }
}
