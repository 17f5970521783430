//! Verification rules every node computes the same way: which receipts are
//! sampled for re-execution, and how much stake makes cheating a losing bet.
//!
//! # Sampling
//!
//! Time is cut into epochs. Before the coordinator records any receipt of
//! epoch `e` it draws a secret seed `s_e` and publishes [`commitment`]`(s_e)`;
//! it reveals `s_e` once the epoch is over. A receipt with id `r` recorded in
//! epoch `e` of a job with sampling rate `p` is checked iff
//! [`is_sampled`]`(r, s_e, p)`, i.e. `blake3("assay/sample/v1", r, s_e)`
//! read as a number in `[0, 1)` is below `p`. A provider signs its receipt
//! before `s_e` exists outside the coordinator, so it cannot grind receipt
//! ids into unsampled ones, and after the reveal anybody can re-check every
//! decision (the seed must hash to the commitment published beforehand).
//!
//! # Assignment
//!
//! A check is not pulled by whoever asks first: among the verifiers
//! eligible for it (staked, online, with room), it goes to the one with the
//! lowest [`assignment_rank`]`(s, check, verifier)` =
//! `blake3("assay/assign/v1", s, check, verifier)`, where `s` is the seed of
//! the epoch its receipt was recorded in (revealed before the check opens)
//! and `check` is the check's id, drawn by the coordinator. Running more
//! verifier keys buys a proportional share of checks, never a chosen one.
//!
//! # Economics
//!
//! A provider who returns garbage instead of running a job gains at most
//! `g` (the job's payment); if the receipt is sampled (probability `p`) it
//! loses `σ·S` (the slashed fraction `σ` of its stake `S`). Cheating on one
//! job has negative expected value iff `(1 − p)·g < p·σ·S`, so the market
//! requires `S ≥ g·(1 − p)/(p·σ)` ([`required_stake`]). This ignores that a
//! provider caught once has every unsettled receipt audited and is
//! suspended, which only makes cheating worse.
//!
//! # Example
//!
//! ```
//! use assay_protocol::verification::{commitment, escape_probability, is_sampled, RATE_ALWAYS};
//! use assay_protocol::Hash32;
//!
//! let seed = [7u8; 32];
//! let receipt = Hash32::of(b"a receipt id");
//! assert!(is_sampled(&receipt, &seed, RATE_ALWAYS));
//! assert!(!is_sampled(&receipt, &seed, 0));
//! assert_ne!(commitment(&seed), Hash32(seed));
//! // p = 5%, a provider cheating on 5% of its jobs, after 3,000 jobs:
//! assert!(escape_probability(0.05, 0.05, 3_000) < 0.001);
//! ```

use crate::Hash32;
use crate::canonical::Encoder;

/// Rates are in parts per million; this one checks every receipt.
pub const RATE_ALWAYS: u32 = 1_000_000;

/// Basis points in one.
pub const BPS: u32 = 10_000;

/// What the coordinator publishes for an epoch before it records receipts
/// in it: `blake3("assay/beacon/v1", seed)`.
pub fn commitment(seed: &[u8; 32]) -> Hash32 {
    let mut e = Encoder::new("assay/beacon/v1");
    e.fixed32(seed);
    e.hash()
}

/// The receipt's draw in `[0, 2⁶⁴)`: the first 8 bytes (little-endian) of
/// `blake3("assay/sample/v1", receipt_id, seed)`.
pub fn draw(receipt_id: &Hash32, seed: &[u8; 32]) -> u64 {
    let mut e = Encoder::new("assay/sample/v1");
    e.fixed32(&receipt_id.0).fixed32(seed);
    let h = e.hash();
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.0[..8]);
    u64::from_le_bytes(b)
}

/// A verifier's rank for a check (lowest wins): `blake3("assay/assign/v1",
/// seed, check, verifier)`.
pub fn assignment_rank(seed: &[u8; 32], check: &Hash32, verifier: &[u8; 32]) -> Hash32 {
    let mut e = Encoder::new("assay/assign/v1");
    e.fixed32(seed).fixed32(&check.0).fixed32(verifier);
    e.hash()
}

/// True iff the receipt is sampled at `rate_ppm` (parts per million) under
/// the epoch seed: `draw / 2⁶⁴ < rate_ppm / 10⁶`, computed exactly.
pub fn is_sampled(receipt_id: &Hash32, seed: &[u8; 32], rate_ppm: u32) -> bool {
    if rate_ppm >= RATE_ALWAYS {
        return true;
    }
    let lhs = u128::from(draw(receipt_id, seed)) * u128::from(RATE_ALWAYS);
    let rhs = u128::from(rate_ppm) << 64;
    lhs < rhs
}

/// The probability that a provider cheating on a fraction `cheat_fraction`
/// of its jobs is never caught in `jobs` jobs at sampling rate `rate`:
/// `(1 − p·f)^n`.
pub fn escape_probability(rate: f64, cheat_fraction: f64, jobs: u64) -> f64 {
    let q = (1.0 - rate.clamp(0.0, 1.0) * cheat_fraction.clamp(0.0, 1.0)).max(0.0);
    q.powf(jobs as f64)
}

/// The least stake that makes cheating on a job worth at most `gain` µIOSD a
/// losing bet at sampling rate `rate_ppm` with a slash of `slash_bps` basis
/// points: `⌈gain·(1 − p)/(p·σ)⌉`. `None` when no stake suffices (`p = 0`
/// or `σ = 0` with something to gain) or it overflows `u64`.
pub fn required_stake(gain: u64, rate_ppm: u32, slash_bps: u32) -> Option<u64> {
    if gain == 0 || rate_ppm >= RATE_ALWAYS {
        return Some(0);
    }
    if rate_ppm == 0 || slash_bps == 0 {
        return None;
    }
    let p = u128::from(rate_ppm);
    let sigma = u128::from(slash_bps.min(BPS));
    // gain·(1e6 − p)/1e6 / (p/1e6 · σ/1e4) = gain·(1e6 − p)·1e4 / (p·σ)
    let num = u128::from(gain) * (u128::from(RATE_ALWAYS) - p) * u128::from(BPS);
    let den = p * sigma;
    u64::try_from(num.div_ceil(den)).ok()
}

/// `rate_ppm` as a probability.
pub fn rate(rate_ppm: u32) -> f64 {
    f64::from(rate_ppm.min(RATE_ALWAYS)) / f64::from(RATE_ALWAYS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampled_fraction_matches_the_rate() {
        let seed = [3u8; 32];
        for rate in [10_000u32, 50_000, 500_000] {
            let n = 100_000u32;
            let hits = (0..n)
                .filter(|i| is_sampled(&Hash32::of(&i.to_le_bytes()), &seed, rate))
                .count() as f64;
            let want = f64::from(n) * super::rate(rate);
            let sd = (want * (1.0 - super::rate(rate))).sqrt();
            assert!(
                (hits - want).abs() < 5.0 * sd,
                "rate {rate}: {hits} sampled of {n}, want {want} ± {sd}"
            );
        }
    }

    #[test]
    fn a_different_seed_samples_different_receipts() {
        let ids: Vec<Hash32> = (0..1000u32).map(|i| Hash32::of(&i.to_le_bytes())).collect();
        let a: Vec<bool> = ids
            .iter()
            .map(|r| is_sampled(r, &[1; 32], 500_000))
            .collect();
        let b: Vec<bool> = ids
            .iter()
            .map(|r| is_sampled(r, &[2; 32], 500_000))
            .collect();
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!((400..600).contains(&same), "{same} of 1000 agree");
    }

    #[test]
    fn the_rate_bounds_are_exact() {
        let r = Hash32::of(b"x");
        assert!(!is_sampled(&r, &[0; 32], 0));
        assert!(is_sampled(&r, &[0; 32], RATE_ALWAYS));
        // The threshold sits exactly at draw · 10⁶ < rate · 2⁶⁴.
        let d = draw(&r, &[0; 32]);
        let just_above =
            u32::try_from(((u128::from(d) * 1_000_000) >> 64) + 1).unwrap_or(RATE_ALWAYS);
        assert!(is_sampled(&r, &[0; 32], just_above));
        assert!(!is_sampled(&r, &[0; 32], just_above - 1));
    }

    #[test]
    fn assignment_spreads_checks_over_verifiers() {
        let seed = [3u8; 32];
        let verifiers: Vec<[u8; 32]> = (0u8..4).map(|i| [i; 32]).collect();
        let mut wins = [0u32; 4];
        for i in 0u32..4_000 {
            let check = Hash32::of(&i.to_le_bytes());
            let best = (0..4)
                .min_by_key(|&v| assignment_rank(&seed, &check, &verifiers[v]).0)
                .unwrap_or(0);
            wins[best] += 1;
        }
        // Each of 4 verifiers wins about a quarter (± 5σ ≈ 140).
        for w in wins {
            assert!((860..=1_140).contains(&w), "{wins:?}");
        }
        let check = Hash32::of(b"c");
        assert_ne!(
            assignment_rank(&seed, &check, &verifiers[0]),
            assignment_rank(&[4u8; 32], &check, &verifiers[0])
        );
    }

    #[test]
    fn required_stake_makes_cheating_a_losing_bet() {
        // p = 5%, σ = 50%: S ≥ g · 0.95 / 0.025 = 38 g.
        assert_eq!(required_stake(1_000, 50_000, 5_000), Some(38_000));
        assert_eq!(required_stake(1_000, RATE_ALWAYS, 5_000), Some(0));
        assert_eq!(required_stake(1_000, 0, 5_000), None);
        assert_eq!(required_stake(0, 0, 0), Some(0));
        for (g, p, s) in [
            (777u64, 12_345u32, 2_500u32),
            (1, 1, 1),
            (10_000, 999_999, 10_000),
        ] {
            let stake = required_stake(g, p, s).expect("finite");
            let (pf, sf) = (rate(p), f64::from(s) / 1e4);
            let ev = (1.0 - pf) * g as f64 - pf * sf * stake as f64;
            assert!(ev <= 1e-6 * g as f64, "g {g} p {p} σ {s}: EV {ev}");
        }
        assert_eq!(required_stake(u64::MAX, 1, 1), None);
    }

    #[test]
    fn escape_probability_is_one_minus_pf_to_the_n() {
        assert_eq!(escape_probability(0.1, 0.0, 1000), 1.0);
        assert_eq!(escape_probability(1.0, 1.0, 1), 0.0);
        let p = escape_probability(0.05, 0.05, 3_000);
        assert!((p - (1.0f64 - 0.0025).powi(3000)).abs() < 1e-12);
        assert!(p < 0.001, "{p}");
    }
}
