//! Proof of hardware, the arithmetic: how big a class's challenge is, when
//! a provider is challenged again, and what an answer's timing and its
//! check make of its hardware state. The SQL is [`crate::store::challenges`].

use assay_protocol::JobSpec;
use assay_protocol::challenge::{DeviceClass, challenge_spec, spec_for};

use crate::Error;
use crate::state::HardwareState;

/// The spec and the time bound of a class's challenge with `seed` (the test
/// override replaces every GPU class's size and bound).
///
/// # Errors
///
/// [`Error::Invalid`] for an override the challenge guest cannot run.
pub fn sized(
    class: DeviceClass,
    seed: [u8; 32],
    now_ms: u64,
    over: Option<(u32, u32, u64)>,
) -> Result<(JobSpec, u64), Error> {
    match over {
        Some((n, rounds, bound)) if class != DeviceClass::Cpu => {
            let spec = spec_for(n, rounds, seed, now_ms)
                .map_err(|e| Error::Invalid(format!("--challenge-override: {e}")))?;
            Ok((spec, bound))
        }
        _ => Ok((challenge_spec(class, seed, now_ms), class.bound_ms())),
    }
}

/// A 0.5–1.5 × `interval` delay from a random draw.
pub fn jitter(interval: u64, random: u64) -> u64 {
    let frac = random % 1_000;
    interval / 2 + interval / 1_000 * frac
}

/// The hardware state and note of a provider that answered its `class`
/// challenge `took_ms` after the lease was granted, against `bound_ms`.
pub fn answered(class: &str, took_ms: u64, bound_ms: u64) -> (HardwareState, String) {
    if took_ms <= bound_ms {
        (
            HardwareState::Answered,
            format!(
                "{class} challenge answered in {took_ms} ms (bound {bound_ms} ms); awaiting its check"
            ),
        )
    } else {
        (
            HardwareState::Failed,
            format!(
                "{class} challenge answered in {took_ms} ms, over the {bound_ms} ms bound of the class"
            ),
        )
    }
}

/// The hardware state and note after an answered challenge's check.
pub fn judged(correct: bool) -> (HardwareState, &'static str) {
    if correct {
        (
            HardwareState::Passed,
            "challenge answered in time and verified",
        )
    } else {
        (
            HardwareState::Failed,
            "challenge answer proven wrong by re-execution",
        )
    }
}

/// When a provider whose challenge went unanswered is challenged again.
pub fn retry_after_silence(now_ms: u64, interval_ms: u64) -> u64 {
    now_ms.saturating_add(interval_ms.max(60_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_time_await_their_check_and_late_ones_fail() {
        assert_eq!(answered("h100", 10, 10).0, HardwareState::Answered);
        assert_eq!(answered("h100", 11, 10).0, HardwareState::Failed);
        assert_eq!(judged(true).0, HardwareState::Passed);
        assert_eq!(judged(false).0, HardwareState::Failed);
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half_intervals() {
        for r in [0, 1, 499, 999, 1_000, u64::MAX] {
            let j = jitter(10_000, r);
            assert!((5_000..=15_000).contains(&j), "{r}: {j}");
        }
        assert_eq!(retry_after_silence(0, 0), 60_000);
    }
}
