//! Money arithmetic: escrow, settlement and slashing, in integer µIOSD.
//!
//! Each function divides an amount and returns the parts; the parts always
//! sum to the whole (the property tests in this module check it), so the
//! ledger's postings of them balance. The store ([`crate::store::ledger`])
//! posts each part as one ledger entry.

use assay_protocol::JobSpec;
use assay_protocol::market::{cost, escrow_per_shard};
use assay_protocol::verification::{BPS, required_stake};

use crate::Error;

/// What a job escrows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escrow {
    /// Per shard: `max price × (fuel + work budget)`, twice that when the
    /// job is verified (the second half covers a verifier's fee).
    pub per_shard: u64,
    /// `per_shard × shards`.
    pub total: u64,
    /// The least stake a provider must hold to be matched (0: unverified).
    pub min_stake: u64,
}

/// The escrow of a job of `shards` shards at `max_price` and sampling rate
/// `verify_rate_ppm`.
///
/// # Errors
///
/// [`Error::Invalid`] when an amount overflows, or when no stake makes
/// cheating a losing bet at this rate.
pub fn escrow(
    max_price: u64,
    spec: &JobSpec,
    verify_rate_ppm: u32,
    shards: u32,
    slash_bps: u32,
) -> Result<Escrow, Error> {
    let base = escrow_per_shard(max_price, spec).ok_or_else(|| {
        Error::Invalid(
            "max price × (fuel + work budget) overflows: lower --max-price or the budgets".into(),
        )
    })?;
    let verified = verify_rate_ppm > 0;
    let per_shard = if verified {
        base.checked_mul(2)
    } else {
        Some(base)
    }
    .ok_or_else(|| {
        Error::Invalid("the escrow overflows: lower --max-price or the budgets".into())
    })?;
    let min_stake = if verified {
        required_stake(base, verify_rate_ppm, slash_bps).ok_or_else(|| {
            Error::Invalid(format!(
                "at a verification rate of {verify_rate_ppm} ppm no provider stake makes cheating on this job a losing bet: raise --verify-rate"
            ))
        })?
    } else {
        0
    };
    let total = per_shard
        .checked_mul(u64::from(shards))
        .filter(|e| *e <= i64::MAX as u64)
        .ok_or_else(|| {
            Error::Invalid(
                "the escrow overflows: lower --max-price, the budgets or --shards".into(),
            )
        })?;
    Ok(Escrow {
        per_shard,
        total,
        min_stake,
    })
}

/// How a settled receipt divides its shard's escrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// What the receipt is paid: `price × units`, at most the escrow.
    pub payment: u64,
    /// The protocol fee, taken out of `payment`.
    pub fee: u64,
    /// The verifier's fee (a re-execution at the provider's price), when a
    /// verifier checked the receipt.
    pub verifier_fee: u64,
    /// The rest of the escrow, back to the renter.
    pub refund: u64,
}

impl Settlement {
    /// What the provider's earnings get: the payment less the fee.
    pub fn provider(&self) -> u64 {
        self.payment - self.fee
    }
}

/// Settles `units` at `price` out of `escrow`, taking `fee_bps` of the
/// payment as the protocol fee, and a verifier's fee when `verified`.
/// `provider() + fee + verifier_fee + refund == escrow`.
pub fn settle(price: u64, units: u64, escrow: u64, fee_bps: u64, verified: bool) -> Settlement {
    let full = cost(price, units).unwrap_or(u64::MAX);
    let payment = full.min(escrow);
    let fee = protocol_fee(payment, fee_bps);
    let verifier_fee = if verified {
        full.min(escrow - payment)
    } else {
        0
    };
    Settlement {
        payment,
        fee,
        verifier_fee,
        refund: escrow - payment - verifier_fee,
    }
}

/// The protocol fee on a payment: `fee_bps` of it, at most all of it.
pub(crate) fn protocol_fee(payment: u64, fee_bps: u64) -> u64 {
    u64::try_from(u128::from(payment) * u128::from(fee_bps) / 10_000)
        .unwrap_or(payment)
        .min(payment)
}

/// What an attempt ended by the job's own watchdog pays the provider whose
/// slot it held, out of what is left of the shard's escrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchdogPay {
    /// The watchdog fee, at most the escrow left.
    pub payment: u64,
    /// The protocol fee, taken out of `payment` as out of any pay.
    pub fee: u64,
}

impl WatchdogPay {
    /// What the provider's earnings get: the payment less the fee.
    pub fn provider(&self) -> u64 {
        self.payment - self.fee
    }
}

/// Charges the renter `watchdog_fee` for an attempt its job's watchdog
/// ended, out of the `escrow_left` of its shard (what later settlement or
/// refund divides is what remains), taking `fee_bps` of it as the protocol
/// fee. `provider() + fee == payment <= escrow_left`.
pub fn watchdog_pay(watchdog_fee: u64, escrow_left: u64, fee_bps: u64) -> WatchdogPay {
    let payment = watchdog_fee.min(escrow_left);
    WatchdogPay {
        payment,
        fee: protocol_fee(payment, fee_bps),
    }
}

/// How a slash divides what it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashSplit {
    /// `slash_bps` of the stake.
    pub slashed: u64,
    /// Each share's part, in the order the shares were given.
    pub shares: Vec<u64>,
    /// What is left for the remainder's account.
    pub rest: u64,
}

/// Takes `slash_bps` (at most 100 %) of `stake` and gives each share its
/// basis points of it, in order, while any is left; the rest goes to the
/// remainder. `shares.sum() + rest == slashed <= stake`.
pub fn slash(stake: u64, slash_bps: u32, share_bps: &[u32]) -> SlashSplit {
    let slashed =
        u64::try_from(u128::from(stake) * u128::from(slash_bps.min(BPS)) / u128::from(BPS))
            .unwrap_or(stake);
    let mut left = slashed;
    let shares = share_bps
        .iter()
        .map(|bps| {
            let amount = u64::try_from(u128::from(slashed) * u128::from(*bps) / u128::from(BPS))
                .unwrap_or(0)
                .min(left);
            left -= amount;
            amount
        })
        .collect();
    SlashSplit {
        slashed,
        shares,
        rest: left,
    }
}

/// What a node must move from its balance to its stake to hold `target`
/// when it holds `current` (0 when it holds enough).
pub fn stake_top_up(current: u64, target: u64) -> u64 {
    target.saturating_sub(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_settlement_pays_price_times_units_and_refunds_the_rest() {
        // 1000 µIOSD/Munit × 2M units = 2000 µIOSD; a 2 % fee.
        let s = settle(1_000, 2_000_000, 10_000, 200, false);
        assert_eq!(
            s,
            Settlement {
                payment: 2_000,
                fee: 40,
                verifier_fee: 0,
                refund: 8_000
            }
        );
        assert_eq!(s.provider(), 1_960);
        let v = settle(1_000, 2_000_000, 10_000, 200, true);
        assert_eq!((v.verifier_fee, v.refund), (2_000, 6_000));
        // The escrow caps everything.
        let capped = settle(1_000, 20_000_000, 10_000, 200, true);
        assert_eq!(
            (capped.payment, capped.verifier_fee, capped.refund),
            (10_000, 0, 0)
        );
    }

    #[test]
    fn a_watchdog_fee_is_capped_by_the_escrow_left_and_pays_the_protocol_fee() {
        let w = watchdog_pay(1_000, 10_000, 200);
        assert_eq!(
            w,
            WatchdogPay {
                payment: 1_000,
                fee: 20
            }
        );
        assert_eq!(w.provider(), 980);
        assert_eq!(watchdog_pay(1_000, 300, 200).payment, 300);
        assert_eq!(watchdog_pay(1_000, 0, 200).payment, 0);
        assert_eq!(
            watchdog_pay(0, 10_000, 200),
            WatchdogPay { payment: 0, fee: 0 }
        );
    }

    #[test]
    fn a_slash_shares_out_in_order_and_the_rest_takes_the_remainder() {
        let s = slash(1_000, 5_000, &[5_000, 2_500]);
        assert_eq!(
            s,
            SlashSplit {
                slashed: 500,
                shares: vec![250, 125],
                rest: 125
            }
        );
        // More than 100 % is 100 %; shares over 100 % are cut to what is left.
        let all = slash(1_000, 20_000, &[8_000, 8_000]);
        assert_eq!(
            all,
            SlashSplit {
                slashed: 1_000,
                shares: vec![800, 200],
                rest: 0
            }
        );
    }

    #[test]
    fn escrow_doubles_for_verified_jobs_and_refuses_overflow() {
        let spec = JobSpec {
            fuel: 1_000_000,
            work_budget: 1_000_000,
            ..JobSpec::default()
        };
        let plain = escrow(1_000, &spec, 0, 3, 5_000).expect("escrow");
        let verified = escrow(1_000, &spec, 48_000, 3, 5_000).expect("escrow");
        assert_eq!(verified.per_shard, 2 * plain.per_shard);
        assert_eq!(plain.total, 3 * plain.per_shard);
        assert_eq!(plain.min_stake, 0);
        assert!(verified.min_stake > 0);
        assert!(matches!(
            escrow(u64::MAX, &spec, 0, 1, 5_000),
            Err(Error::Invalid(_))
        ));
    }

    proptest! {
        #[test]
        fn settlement_parts_sum_to_the_escrow(
            price in 0u64..=u64::MAX,
            units in 0u64..=u64::MAX,
            escrow in 0u64..=i64::MAX as u64,
            fee_bps in 0u64..=20_000,
            verified: bool,
        ) {
            let s = settle(price, units, escrow, fee_bps, verified);
            prop_assert!(s.fee <= s.payment);
            prop_assert_eq!(
                u128::from(s.provider()) + u128::from(s.fee) + u128::from(s.verifier_fee) + u128::from(s.refund),
                u128::from(escrow)
            );
            if !verified {
                prop_assert_eq!(s.verifier_fee, 0);
            }
        }

        #[test]
        fn watchdog_pay_stays_within_the_escrow_left(
            watchdog_fee in 0u64..=u64::MAX,
            escrow_left in 0u64..=i64::MAX as u64,
            fee_bps in 0u64..=20_000,
        ) {
            let w = watchdog_pay(watchdog_fee, escrow_left, fee_bps);
            prop_assert!(w.payment <= escrow_left && w.payment <= watchdog_fee);
            prop_assert!(w.fee <= w.payment);
            prop_assert_eq!(w.provider() + w.fee, w.payment);
        }

        #[test]
        fn slash_splits_sum_to_the_slashed_amount(
            stake in 0u64..=u64::MAX,
            slash_bps in 0u32..=20_000,
            shares in proptest::collection::vec(0u32..=20_000, 0..4),
        ) {
            let s = slash(stake, slash_bps, &shares);
            prop_assert!(s.slashed <= stake);
            prop_assert_eq!(s.shares.len(), shares.len());
            prop_assert_eq!(
                s.shares.iter().map(|x| u128::from(*x)).sum::<u128>() + u128::from(s.rest),
                u128::from(s.slashed)
            );
        }

        #[test]
        fn escrow_is_per_shard_times_shards(
            max_price in 1u64..1_000_000,
            fuel in 0u64..1_000_000_000,
            work in 0u64..1_000_000_000,
            rate in prop_oneof![Just(0u32), 1u32..=1_000_000],
            shards in 1u32..256,
        ) {
            let spec = JobSpec { fuel, work_budget: work, ..JobSpec::default() };
            if let Ok(e) = escrow(max_price, &spec, rate, shards, 5_000) {
                prop_assert_eq!(u128::from(e.total), u128::from(e.per_shard) * u128::from(shards));
                let base = escrow_per_shard(max_price, &spec).unwrap_or(0);
                prop_assert_eq!(e.per_shard, if rate > 0 { base * 2 } else { base });
            }
        }
    }
}
