//! Splitting a reward epoch's emission among providers.
//!
//! The emission ([`super::emission`]) is split in two pools: `work_bps` of
//! it by verified work (work units of the provider's receipts settled in
//! the epoch), the rest by availability (milliseconds online in the epoch,
//! counted from heartbeats) among providers whose hardware claim stands (a
//! passed challenge, or a CPU provider that is not challenged). A provider
//! slashed or failing a challenge in the epoch gets nothing. When one
//! pool has no one to pay, the other takes the whole emission; when
//! neither has, the epoch pays nothing and its emission stays in the pool.
//! Flooring leaves a few µIO over; they go to the provider with the most
//! weight in that pool, so what is paid is exactly the emission.

/// One provider's record for an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Work units of its receipts settled in the epoch.
    pub work_units: u64,
    /// Milliseconds it was online in the epoch.
    pub uptime_ms: u64,
    /// Its hardware claim stands (passed a challenge, or not challenged).
    pub hardware_ok: bool,
    /// Slashed or failed a challenge in the epoch.
    pub failed: bool,
}

/// Default share of the emission paid by verified work, basis points.
pub const WORK_BPS: u32 = 7_000;

/// Splits `emission` among `candidates` (same order out). The parts sum to
/// `emission` when anyone is eligible, else all are 0.
pub fn split(emission: u64, candidates: &[Candidate], work_bps: u32) -> Vec<u64> {
    let work: Vec<u64> = candidates
        .iter()
        .map(|c| if c.failed { 0 } else { c.work_units })
        .collect();
    let uptime: Vec<u64> = candidates
        .iter()
        .map(|c| {
            if c.failed || !c.hardware_ok {
                0
            } else {
                c.uptime_ms
            }
        })
        .collect();
    let has = |w: &[u64]| w.iter().any(|x| *x > 0);
    let work_share =
        u64::try_from(u128::from(emission) * u128::from(work_bps.min(10_000)) / 10_000)
            .unwrap_or(emission);
    let (work_pool, uptime_pool) = match (has(&work), has(&uptime)) {
        (true, true) => (work_share, emission - work_share),
        (true, false) => (emission, 0),
        (false, true) => (0, emission),
        (false, false) => (0, 0),
    };
    let a = pro_rata(work_pool, &work);
    let b = pro_rata(uptime_pool, &uptime);
    a.iter().zip(&b).map(|(x, y)| x + y).collect()
}

/// `amount` split by `weights`, flooring; the rest to the largest weight
/// (the first of equals). All 0 when the weights are.
fn pro_rata(amount: u64, weights: &[u64]) -> Vec<u64> {
    let total: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    if total == 0 || amount == 0 {
        return vec![0; weights.len()];
    }
    let mut parts: Vec<u64> = weights
        .iter()
        .map(|w| u64::try_from(u128::from(amount) * u128::from(*w) / total).unwrap_or(0))
        .collect();
    let paid: u64 = parts.iter().sum();
    let top = weights
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i);
    parts[top] += amount - paid;
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(work_units: u64, uptime_ms: u64, hardware_ok: bool, failed: bool) -> Candidate {
        Candidate {
            work_units,
            uptime_ms,
            hardware_ok,
            failed,
        }
    }

    #[test]
    fn work_and_availability_share_the_emission() {
        // 70 % by work (3:1), 30 % by uptime (1:1).
        let s = split(
            1_000,
            &[c(3, 10, true, false), c(1, 10, true, false)],
            7_000,
        );
        assert_eq!(s, vec![525 + 150, 175 + 150]);
        // A slashed provider gets nothing; the other takes both pools.
        let s = split(1_000, &[c(3, 10, true, true), c(1, 10, true, false)], 7_000);
        assert_eq!(s, vec![0, 1_000]);
        // Unchecked hardware earns no availability share.
        let s = split(
            1_000,
            &[c(0, 10, false, false), c(0, 10, true, false)],
            7_000,
        );
        assert_eq!(s, vec![0, 1_000]);
        // No one eligible: nothing paid.
        assert_eq!(split(1_000, &[c(0, 0, true, false)], 7_000), vec![0]);
    }

    proptest! {
        #[test]
        fn an_epoch_pays_exactly_its_emission(
            emission in 0u64..=1u64 << 50,
            cs in proptest::collection::vec((0u64..1u64 << 40, 0u64..1u64 << 30, any::<bool>(), any::<bool>()), 0..8),
            work_bps in 0u32..=10_000,
        ) {
            let cands: Vec<Candidate> = cs.iter().map(|(w, u, h, f)| c(*w, *u, *h, *f)).collect();
            let s = split(emission, &cands, work_bps);
            let eligible = cands.iter().any(|c| !c.failed && (c.work_units > 0 || (c.hardware_ok && c.uptime_ms > 0)));
            let paid: u128 = s.iter().map(|x| u128::from(*x)).sum();
            prop_assert_eq!(paid, if eligible { u128::from(emission) } else { 0 });
            for (c, x) in cands.iter().zip(&s) {
                if c.failed { prop_assert_eq!(*x, 0); }
            }
        }
    }
}
