//! The detection and economics model: what spot checks at rate `p` do to a
//! provider that cheats on a fraction `f` of its jobs.
//!
//! # The game
//!
//! Each of a provider's `n` jobs is cheated with probability `f`; each
//! receipt is sampled with probability `p`, independently (the sampling seed
//! is revealed after the receipt is committed, so the provider cannot tell
//! which ones will be checked). A cheated job that is not sampled pays the
//! cheater `g` more than honest work would (at most the job's whole payment:
//! the cheater skipped the work). The first sampled cheat is caught: the
//! provider loses the fraction `σ` of its stake `S` and is suspended, so the
//! game ends there.
//!
//! - Detection within `n` jobs: `P = 1 − (1 − p·f)^n`.
//! - Jobs until the first detection: geometric, mean `1/(p·f)`; cheated jobs
//!   that paid off before it: mean `(1 − p)/p`, whatever `f` is.
//! - Expected gain over the `n` jobs (counting only cheats before the
//!   detection): `g · (1 − p)/p · P`.
//! - Expected loss: `σ·S · P`.
//! - Net expected value: `P · (g·(1 − p)/p − σ·S)`.
//!
//! The last line is the point: the sign does not depend on `f` or `n`, so the
//! per-job rule `S ≥ g·(1 − p)/(p·σ)`
//! ([`assay_protocol::verification::required_stake`]) makes cheating a
//! losing bet for every cheating rate and horizon, not just for a single job.
//! Audits make it worse for the cheater: once caught, its unsettled receipts
//! are all re-executed and the cheated ones refunded, which this model does
//! not count.
//!
//! # Overhead
//!
//! Honest providers cost `p` re-executions per job. A mismatch adds a
//! referee run, so a population in which a fraction `f` of jobs is cheated
//! costs `p·(1 + f)` runs per job.
//!
//! # Example
//!
//! ```
//! use assay_verifier::model::Model;
//!
//! let m = Model::new(0.05, 0.05, 3_000)?.with_gain(1_000).with_slash_bps(5_000);
//! let r = m.report();
//! assert!(r.detection_probability > 0.999);
//! assert_eq!(r.required_stake, Some(38_000));
//! assert!(r.jobs_to_detect_999.is_some_and(|n| n < 3_000));
//! println!("{r}");
//! # Ok::<(), assay_verifier::Error>(())
//! ```

use std::fmt;

use assay_protocol::verification::{BPS, RATE_ALWAYS, escape_probability, required_stake};
use serde::Serialize;

use crate::Error;

/// The model's inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    /// Sampling rate `p` in `[0, 1]`.
    pub rate: f64,
    /// Fraction `f` of its jobs the provider cheats on, in `[0, 1]`.
    pub cheat_fraction: f64,
    /// Jobs `n` the provider runs.
    pub jobs: u64,
    /// What cheating on one job gains, µIOSD (`g`).
    pub gain: u64,
    /// The provider's stake, µIOSD (`S`); `None`: the required stake.
    pub stake: Option<u64>,
    /// Fraction `σ` of the stake a proven cheat loses, basis points.
    pub slash_bps: u32,
    /// Fraction `q` of agreeing verdicts the arbiter re-checks; `None`:
    /// derived, `q = p` (agreeing with a lie is then exactly as bad a bet
    /// for a verifier as cheating is for a provider, for the same stake).
    pub recheck: Option<f64>,
    /// Checks one verifier holds at once (`k`).
    pub max_in_flight: u32,
}

/// What the model predicts (every amount in µIOSD).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `p`.
    pub rate: f64,
    /// `p` in parts per million (what the network uses).
    pub rate_ppm: u32,
    /// `f`.
    pub cheat_fraction: f64,
    /// `n`.
    pub jobs: u64,
    /// `g`.
    pub gain_per_job: u64,
    /// `S` (the required stake when none was given).
    pub stake: u64,
    /// True if `stake` is the required stake (none was given).
    pub stake_is_required: bool,
    /// `σ`, basis points.
    pub slash_bps: u32,
    /// `(1 − p·f)^n`.
    pub escape_probability: f64,
    /// `1 − (1 − p·f)^n`.
    pub detection_probability: f64,
    /// `1/(p·f)` (`None`: never detected, `p·f = 0`).
    pub expected_jobs_to_detection: Option<f64>,
    /// `(1 − p)/p`: cheats that pay off before the first detection (`None`: `p = 0`).
    pub expected_cheats_before_detection: Option<f64>,
    /// Jobs after which a cheater is caught with probability ≥ 99.9%.
    pub jobs_to_detect_999: Option<u64>,
    /// Cheated jobs over the horizon that paid off, expected.
    pub expected_undetected_cheats: f64,
    /// `g` × that.
    pub expected_gain: f64,
    /// `σ·S·P`.
    pub expected_loss: f64,
    /// Gain − loss.
    pub net_expected_value: f64,
    /// `⌈g·(1 − p)/(p·σ)⌉` (`None`: no stake suffices).
    pub required_stake: Option<u64>,
    /// Expected value of cheating on one single job: `(1 − p)·g − p·σ·S`.
    pub single_job_expected_value: f64,
    /// Re-executions per job: `p` (verifiers), `p·f` (arbitrations of
    /// disputes) and `p·(1 − f)·q` (the arbiter's re-checks of agreements).
    pub overhead_runs_per_job: f64,
    /// `q`, the re-check rate of agreements.
    pub recheck_rate: f64,
    /// `q` in parts per million.
    pub recheck_rate_ppm: u32,
    /// What a verifier bonds per check it holds, `⌈g·(1 − q)/(q·σ)⌉`
    /// (`None`: `q = 0`, an agreement is never examined).
    pub verifier_bond_per_check: Option<u64>,
    /// `k`.
    pub verifier_max_in_flight: u32,
    /// The least stake for a verifier to hold `k` checks: `k` bonds.
    pub verifier_stake_floor: Option<u64>,
    /// Lies a rubber-stamping verifier agrees with before the arbiter
    /// catches it with probability ≥ 99.9%.
    pub accomplice_agreements_to_detect_999: Option<u64>,
    /// Re-executions by the arbiter per job: `p·f + p·(1 − f)·q`.
    pub arbiter_runs_per_job: f64,
}

fn unit(name: &'static str, v: f64) -> Result<f64, Error> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(Error::Model(format!(
            "{name} must be a probability between 0 and 1, got {v} (e.g. 0.05 for 5%)"
        )))
    }
}

impl Model {
    /// A model with sampling rate `rate`, cheating fraction `cheat_fraction`
    /// and `jobs` jobs; gain 1,000 µIOSD per job, a 50% slash, and the
    /// required stake until set otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::Model`] if a rate is not in `[0, 1]`.
    ///
    /// # Example
    ///
    /// ```
    /// use assay_verifier::model::Model;
    ///
    /// assert!(Model::new(1.5, 0.1, 10).is_err());
    /// let m = Model::new(0.1, 0.1, 10)?;
    /// assert!((m.detection_probability() - (1.0 - 0.99f64.powi(10))).abs() < 1e-12);
    /// # Ok::<(), assay_verifier::Error>(())
    /// ```
    pub fn new(rate: f64, cheat_fraction: f64, jobs: u64) -> Result<Model, Error> {
        Ok(Model {
            rate: unit("the sampling rate p", rate)?,
            cheat_fraction: unit("the cheat rate f", cheat_fraction)?,
            jobs,
            gain: 1_000,
            stake: None,
            slash_bps: 5_000,
            recheck: None,
            max_in_flight: 4,
        })
    }

    /// Sets the re-check rate `q` of agreements.
    ///
    /// # Errors
    ///
    /// [`Error::Model`] if it is not in `[0, 1]`.
    pub fn with_recheck(mut self, q: f64) -> Result<Model, Error> {
        self.recheck = Some(unit("the re-check rate q", q)?);
        Ok(self)
    }

    /// Sets `k`, the checks one verifier holds at once.
    pub fn with_max_in_flight(mut self, k: u32) -> Model {
        self.max_in_flight = k.max(1);
        self
    }

    /// `q`: the one set, else `p`.
    pub fn recheck_rate(&self) -> f64 {
        self.recheck.unwrap_or(self.rate)
    }

    /// Sets the gain per cheated job, µIOSD.
    pub fn with_gain(mut self, gain: u64) -> Model {
        self.gain = gain;
        self
    }

    /// Sets the provider's stake, µIOSD.
    pub fn with_stake(mut self, stake: u64) -> Model {
        self.stake = Some(stake);
        self
    }

    /// Sets the slash, basis points (capped at 10,000).
    pub fn with_slash_bps(mut self, slash_bps: u32) -> Model {
        self.slash_bps = slash_bps.min(BPS);
        self
    }

    /// `p` in parts per million, rounded to the nearest.
    pub fn rate_ppm(&self) -> u32 {
        // In [0, 1e6] by construction: the cast cannot truncate.
        (self.rate * f64::from(RATE_ALWAYS)).round() as u32
    }

    fn sigma(&self) -> f64 {
        f64::from(self.slash_bps.min(BPS)) / f64::from(BPS)
    }

    /// `1 − (1 − p·f)^n`.
    pub fn detection_probability(&self) -> f64 {
        1.0 - escape_probability(self.rate, self.cheat_fraction, self.jobs)
    }

    /// The required stake (see [`required_stake`]).
    pub fn required_stake(&self) -> Option<u64> {
        required_stake(self.gain, self.rate_ppm(), self.slash_bps)
    }

    /// The stake in play: the one set, else the required one (0 if none
    /// suffices).
    pub fn stake(&self) -> u64 {
        self.stake
            .unwrap_or_else(|| self.required_stake().unwrap_or(0))
    }

    /// Expected number of cheated jobs that pay off within the horizon,
    /// stopping at the first detection: `Σ_{k<n} (1 − p·f)^k · f·(1 − p)`.
    pub fn expected_undetected_cheats(&self) -> f64 {
        let (p, f) = (self.rate, self.cheat_fraction);
        let pf = p * f;
        if pf == 0.0 {
            // Never caught: every cheat pays.
            return self.jobs as f64 * f;
        }
        (1.0 - p) / p * self.detection_probability()
    }

    /// Smallest `n` with `(1 − p·f)^n ≤ 1 − confidence` (`None` if never).
    pub fn jobs_to_detect(&self, confidence: f64) -> Option<u64> {
        let pf = self.rate * self.cheat_fraction;
        if pf <= 0.0 || !(0.0..1.0).contains(&confidence) {
            return None;
        }
        if pf >= 1.0 {
            return Some(1);
        }
        let target = 1.0 - confidence;
        // ln_1p keeps tiny p·f exact enough; past 2⁵³ jobs the count means
        // nothing (and no float can step through it).
        let n = (target.ln() / (-pf).ln_1p()).ceil();
        if !n.is_finite() || n >= 2f64.powi(53) {
            return None;
        }
        // Guard the float: step to the first n that really reaches it (a
        // step or two at most; bounded so that it always ends).
        let escape = |n: u64| escape_probability(self.rate, self.cheat_fraction, n);
        let mut n = (n as u64).max(1);
        for _ in 0..64 {
            if n > 1 && escape(n - 1) <= target {
                n -= 1;
            } else {
                break;
            }
        }
        for _ in 0..64 {
            if escape(n) > target {
                n += 1;
            } else {
                break;
            }
        }
        Some(n)
    }

    /// Everything the model predicts.
    pub fn report(&self) -> Report {
        let (p, f) = (self.rate, self.cheat_fraction);
        // In [0, 1e6] by construction: the cast cannot truncate.
        let q_ppm = (self.recheck_rate() * f64::from(RATE_ALWAYS)).round() as u32;
        let bond = (q_ppm > 0)
            .then(|| required_stake(self.gain, q_ppm, self.slash_bps))
            .flatten();
        let stake = self.stake();
        let detect = self.detection_probability();
        let undetected = self.expected_undetected_cheats();
        let gain = self.gain as f64 * undetected;
        let loss = self.sigma() * stake as f64 * detect;
        Report {
            rate: p,
            rate_ppm: self.rate_ppm(),
            cheat_fraction: f,
            jobs: self.jobs,
            gain_per_job: self.gain,
            stake,
            stake_is_required: self.stake.is_none(),
            slash_bps: self.slash_bps,
            escape_probability: 1.0 - detect,
            detection_probability: detect,
            expected_jobs_to_detection: (p * f > 0.0).then(|| 1.0 / (p * f)),
            expected_cheats_before_detection: (p > 0.0).then(|| (1.0 - p) / p),
            jobs_to_detect_999: self.jobs_to_detect(0.999),
            expected_undetected_cheats: undetected,
            expected_gain: gain,
            expected_loss: loss,
            net_expected_value: gain - loss,
            required_stake: self.required_stake(),
            single_job_expected_value: (1.0 - p) * self.gain as f64
                - p * self.sigma() * stake as f64,
            overhead_runs_per_job: p * (1.0 + f) + p * (1.0 - f) * self.recheck_rate(),
            recheck_rate: self.recheck_rate(),
            recheck_rate_ppm: q_ppm,
            verifier_bond_per_check: bond,
            verifier_max_in_flight: self.max_in_flight,
            verifier_stake_floor: bond.and_then(|b| b.checked_mul(u64::from(self.max_in_flight))),
            accomplice_agreements_to_detect_999: Model::new(self.recheck_rate(), 1.0, 1)
                .ok()
                .and_then(|m| m.jobs_to_detect(0.999)),
            arbiter_runs_per_job: p * f + p * (1.0 - f) * self.recheck_rate(),
        }
    }
}

fn opt<T: fmt::Display>(v: Option<T>, none: &str) -> String {
    v.map_or_else(|| none.to_string(), |v| v.to_string())
}

impl fmt::Display for Report {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |out: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(out, "{k:<44} {v}");
        row(
            out,
            "sampling rate p",
            format!("{:.4}% ({} ppm)", self.rate * 100.0, self.rate_ppm),
        )?;
        row(
            out,
            "cheat rate f",
            format!("{:.4}%", self.cheat_fraction * 100.0),
        )?;
        row(out, "jobs n", self.jobs.to_string())?;
        row(
            out,
            "gain per cheated job g",
            format!("{} µIOSD", self.gain_per_job),
        )?;
        row(
            out,
            "stake S",
            format!(
                "{} µIOSD{}",
                self.stake,
                if self.stake_is_required {
                    " (the required stake)"
                } else {
                    ""
                }
            ),
        )?;
        row(
            out,
            "slash σ",
            format!("{:.2}%", f64::from(self.slash_bps) / 100.0),
        )?;
        writeln!(out)?;
        row(
            out,
            "detection probability 1 − (1 − p·f)^n",
            format!("{:.6}", self.detection_probability),
        )?;
        row(
            out,
            "escape probability (1 − p·f)^n",
            format!("{:.6e}", self.escape_probability),
        )?;
        row(
            out,
            "jobs until detected, mean 1/(p·f)",
            opt(
                self.expected_jobs_to_detection.map(|v| format!("{v:.1}")),
                "never",
            ),
        )?;
        row(
            out,
            "jobs to detect with 99.9% probability",
            opt(self.jobs_to_detect_999, "never"),
        )?;
        row(
            out,
            "cheats paid before detection, mean (1 − p)/p",
            opt(
                self.expected_cheats_before_detection
                    .map(|v| format!("{v:.2}")),
                "all of them",
            ),
        )?;
        writeln!(out)?;
        row(
            out,
            "expected gain of the cheater",
            format!(
                "{:.0} µIOSD ({:.2} paid cheats)",
                self.expected_gain, self.expected_undetected_cheats
            ),
        )?;
        row(
            out,
            "expected loss σ·S·P",
            format!("{:.0} µIOSD", self.expected_loss),
        )?;
        let net = self.net_expected_value;
        row(
            out,
            "net expected value of cheating",
            if net.abs() < 0.5 {
                "0 µIOSD (break-even: does not pay)".to_string()
            } else if net < 0.0 {
                format!("{net:.0} µIOSD (does not pay)")
            } else {
                format!("+{net:.0} µIOSD (PAYS: raise the stake or p)")
            },
        )?;
        let single = self.single_job_expected_value;
        row(
            out,
            "required stake g·(1 − p)/(p·σ)",
            opt(
                self.required_stake.map(|s| format!("{s} µIOSD")),
                "none suffices (p = 0 or σ = 0)",
            ),
        )?;
        row(
            out,
            "EV of cheating on a single job",
            if single.abs() < 0.5 {
                "0 µIOSD".to_string()
            } else {
                format!("{single:+.0} µIOSD")
            },
        )?;
        row(
            out,
            "verification overhead p·(1 + f) + p·(1 − f)·q",
            format!(
                "{:.4} runs per job ({:.2}%)",
                self.overhead_runs_per_job,
                self.overhead_runs_per_job * 100.0
            ),
        )?;
        writeln!(out)?;
        row(
            out,
            "re-check rate of agreements q",
            format!(
                "{:.4}% ({} ppm)",
                self.recheck_rate * 100.0,
                self.recheck_rate_ppm
            ),
        )?;
        row(
            out,
            "verifier's bond per check g·(1 − q)/(q·σ)",
            opt(
                self.verifier_bond_per_check.map(|s| format!("{s} µIOSD")),
                "none (q = 0: agreements are never examined)",
            ),
        )?;
        row(
            out,
            &format!(
                "verifier stake floor for k = {}",
                self.verifier_max_in_flight
            ),
            opt(
                self.verifier_stake_floor.map(|s| format!("{s} µIOSD")),
                "none",
            ),
        )?;
        row(
            out,
            "agreed lies until an accomplice is caught (99.9%)",
            opt(self.accomplice_agreements_to_detect_999, "never"),
        )?;
        row(
            out,
            "arbiter runs per job p·f + p·(1 − f)·q",
            format!(
                "{:.5} ({:.3}%)",
                self.arbiter_runs_per_job,
                self.arbiter_runs_per_job * 100.0
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn detection_is_one_minus_escape() {
        let m = Model::new(0.05, 0.1, 1_000).expect("model");
        let want = 1.0 - (1.0 - 0.005f64).powi(1_000);
        assert!(close(m.detection_probability(), want));
        let r = m.report();
        assert!(close(r.escape_probability + r.detection_probability, 1.0));
        assert_eq!(r.rate_ppm, 50_000);
        assert!(close(r.expected_jobs_to_detection.expect("finite"), 200.0));
        assert!(close(
            r.expected_cheats_before_detection.expect("finite"),
            19.0
        ));
    }

    #[test]
    fn the_issue_target_is_met_at_five_percent() {
        // p = 5%, f = 5%: ≥ 99.9% detection within 3,000 jobs.
        let m = Model::new(0.05, 0.05, 3_000).expect("model");
        assert!(m.detection_probability() >= 0.999);
        let n = m.jobs_to_detect(0.999).expect("finite");
        assert!(n <= 3_000, "{n}");
        // n is the least such: one fewer is not enough.
        let at = |n| 1.0 - escape_probability(0.05, 0.05, n);
        assert!(at(n) >= 0.999 && at(n - 1) < 0.999, "{n}");
        assert_eq!(n, 2_760);
    }

    #[test]
    fn tiny_rates_end_with_an_answer() {
        // p·f below f64's resolution around 1: no loop may spin forever.
        let m = Model::new(1e-9, 1e-9, 10).expect("model");
        assert_eq!(m.jobs_to_detect(0.999), None);
        let m = Model::new(1e-6, 1e-3, 10).expect("model");
        let n = m.jobs_to_detect(0.999).expect("finite");
        let want = (0.001f64.ln() / (-1e-9f64).ln_1p()).ceil() as u64;
        assert!(n.abs_diff(want) <= 64, "{n} vs {want}");
        assert_eq!(
            Model::new(1.0, 1.0, 1)
                .expect("model")
                .jobs_to_detect(0.999),
            Some(1)
        );
    }

    #[test]
    fn undetected_cheats_match_a_direct_sum() {
        for (p, f, n) in [(0.05, 0.1, 1_000u64), (0.5, 1.0, 7), (0.01, 0.3, 50)] {
            let m = Model::new(p, f, n).expect("model");
            let direct: f64 = (0..n)
                .map(|k| (1.0 - p * f).powi(k as i32) * f * (1.0 - p))
                .sum();
            assert!(close(m.expected_undetected_cheats(), direct), "{p} {f} {n}");
        }
        // Never sampled: every cheat pays.
        let m = Model::new(0.0, 0.5, 100).expect("model");
        assert!(close(m.expected_undetected_cheats(), 50.0));
        assert_eq!(m.report().jobs_to_detect_999, None);
    }

    #[test]
    fn the_required_stake_makes_cheating_lose_for_every_f_and_n() {
        for (p, f, n) in [
            (0.05, 0.1, 1_000u64),
            (0.05, 1.0, 1),
            (0.01, 0.01, 100_000),
            (0.2, 0.5, 3),
        ] {
            let m = Model::new(p, f, n)
                .expect("model")
                .with_gain(1_234)
                .with_slash_bps(2_500);
            let r = m.report();
            assert!(r.stake_is_required);
            assert_eq!(Some(r.stake), r.required_stake);
            assert!(
                r.net_expected_value <= 1e-6,
                "{p} {f} {n}: {}",
                r.net_expected_value
            );
            assert!(r.single_job_expected_value <= 1e-6);
            // One µIOSD less stake than required and cheating pays (whenever
            // there is a chance of detection at all).
            let less = m.with_stake(r.stake - 1).report();
            assert!(less.net_expected_value > 0.0, "{p} {f} {n}");
        }
    }

    #[test]
    fn without_stake_cheating_pays() {
        let r = Model::new(0.05, 0.1, 1_000)
            .expect("model")
            .with_stake(0)
            .report();
        assert!(r.net_expected_value > 0.0);
        assert!(close(r.expected_loss, 0.0));
        assert!(r.to_string().contains("PAYS"), "{r}");
    }

    #[test]
    fn overhead_counts_arbiter_runs() {
        let r = Model::new(0.05, 0.1, 10)
            .and_then(|m| m.with_recheck(0.0))
            .expect("model")
            .report();
        assert!(close(r.overhead_runs_per_job, 0.055));
        let honest = Model::new(0.05, 0.0, 10)
            .and_then(|m| m.with_recheck(0.1))
            .expect("model")
            .report();
        assert!(close(honest.overhead_runs_per_job, 0.055));
        assert!(close(honest.arbiter_runs_per_job, 0.005));
    }

    #[test]
    fn the_recheck_rate_prices_a_verifiers_bond() {
        // Derived q = p: a verifier's bond per check is the provider's stake.
        let m = Model::new(0.05, 0.05, 3_000).expect("model");
        let r = m.report();
        assert_eq!(r.recheck_rate_ppm, 50_000);
        assert_eq!(r.verifier_bond_per_check, r.required_stake);
        assert_eq!(
            r.verifier_stake_floor,
            r.verifier_bond_per_check.map(|b| 4 * b)
        );
        // q = 10 %, σ = 50 %: 18 g per check; caught within 66 agreed lies.
        let r = m
            .with_recheck(0.1)
            .expect("q")
            .with_max_in_flight(2)
            .report();
        assert_eq!(r.verifier_bond_per_check, Some(18_000));
        assert_eq!(r.verifier_stake_floor, Some(36_000));
        assert_eq!(r.accomplice_agreements_to_detect_999, Some(66));
        let none = Model::new(0.05, 0.05, 10)
            .and_then(|m| m.with_recheck(0.0))
            .expect("model")
            .report();
        assert_eq!(none.verifier_bond_per_check, None);
        assert!(none.to_string().contains("never examined"), "{none}");
    }

    #[test]
    fn bad_inputs_are_refused_with_a_hint() {
        let e = Model::new(5.0, 0.1, 1).expect_err("p > 1");
        assert!(e.to_string().contains("0.05 for 5%"), "{e}");
        assert!(Model::new(0.1, -0.1, 1).is_err());
        assert!(Model::new(f64::NAN, 0.1, 1).is_err());
        // No sampling: no stake suffices.
        assert_eq!(
            Model::new(0.0, 0.1, 1).expect("model").required_stake(),
            None
        );
    }

    #[test]
    fn the_table_names_every_figure() {
        let t = Model::new(0.05, 0.1, 1_000)
            .expect("model")
            .report()
            .to_string();
        for k in [
            "detection probability",
            "escape probability",
            "expected gain",
            "expected loss",
            "net expected value",
            "required stake",
            "verification overhead",
        ] {
            assert!(t.contains(k), "{k} missing from\n{t}");
        }
    }
}
