//! Stake bonded per exposure.
//!
//! A provider's stake answers for everything it could still be caught
//! cheating on: each open lease and each unsettled receipt bonds its shard's
//! required stake (`shards.min_stake`, 0 for an unverified job). A lease is
//! granted only while the stake left free covers the shard's bond, so one
//! shard's worth of stake with many self-declared slots no longer covers
//! many shards at once. A receipt's bond is released when it settles, and a
//! receipt that a dispute could still reach settles only after the longest a
//! dispute can take ([`worst_case_dispute_ms`]): an audit opened by another
//! of the provider's receipts reaches it before its pay leaves the escrow.

use crate::rules::checks::deadline;

/// What a provider's stake answers for, µIO.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Its IO stake.
    pub stake: u64,
    /// The bonds of its open leases.
    pub leases: u64,
    /// The bonds of its unsettled receipts.
    pub receipts: u64,
}

impl Exposure {
    /// The stake bonded by open leases and unsettled receipts.
    pub fn bonded(&self) -> u64 {
        self.leases.saturating_add(self.receipts)
    }

    /// The stake no exposure bonds yet (0 when a slash left it short).
    pub fn free(&self) -> u64 {
        self.stake.saturating_sub(self.bonded())
    }

    /// Whether the free stake covers one more shard bonding `bond`.
    pub fn can_bond(&self, bond: u64) -> bool {
        self.free() >= bond
    }

    /// Counts a lease just granted (several are granted per take).
    pub fn bond_lease(&mut self, bond: u64) {
        self.leases = self.leases.saturating_add(bond);
    }
}

/// The longest a dispute about a receipt can take after it was recorded:
/// its epoch and the next end (a seed is revealed only once its epoch is
/// over, and an audit starts from another receipt's draw), then a
/// verification, the bisection game of the dispute and an arbitration,
/// each within its deadline for a receipt of `flops`
/// ([`crate::rules::checks::deadline`]; a game that runs out of time goes
/// to the arbiter as it stands).
pub fn worst_case_dispute_ms(epoch_ms: u64, check_ttl_ms: u64, flops: u64) -> u64 {
    epoch_ms
        .saturating_mul(2)
        .saturating_add(deadline(0, check_ttl_ms, flops).saturating_mul(3))
}

/// When a receipt recorded at `created_at_ms` settles if no check holds
/// it: after the challenge window, and — for a receipt of a verified job,
/// which an audit can still reach — not before a dispute could end.
/// Unverified receipts are never checked (they bond nothing), so the window
/// alone applies.
pub fn settle_at(
    created_at_ms: u64,
    settlement_delay_ms: u64,
    verified: bool,
    worst_case_dispute_ms: u64,
) -> u64 {
    let delay = if verified {
        settlement_delay_ms.max(worst_case_dispute_ms)
    } else {
        settlement_delay_ms
    };
    created_at_ms.saturating_add(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_stake_is_what_leases_and_unsettled_receipts_leave() {
        let mut e = Exposure {
            stake: 1_000,
            leases: 300,
            receipts: 200,
        };
        assert_eq!((e.bonded(), e.free()), (500, 500));
        assert!(e.can_bond(500));
        assert!(!e.can_bond(501));
        e.bond_lease(500);
        assert_eq!(e.free(), 0);
        assert!(e.can_bond(0), "an unverified shard bonds nothing");
        assert!(!e.can_bond(1));
        // A slash can leave the stake below what is bonded: nothing is free.
        let short = Exposure {
            stake: 100,
            leases: 300,
            receipts: u64::MAX,
        };
        assert_eq!((short.bonded(), short.free()), (u64::MAX, 0));
    }

    #[test]
    fn one_shards_stake_with_many_slots_covers_one_shard() {
        let bond = 400;
        let mut e = Exposure {
            stake: bond,
            ..Exposure::default()
        };
        let mut granted = 0;
        for _ in 0..500 {
            if e.can_bond(bond) {
                e.bond_lease(bond);
                granted += 1;
            }
        }
        assert_eq!(granted, 1);
    }

    #[test]
    fn a_disputable_receipt_waits_out_a_verification_a_game_and_an_arbitration() {
        let (epoch, ttl) = (2_000, 60_000);
        assert_eq!(
            worst_case_dispute_ms(epoch, ttl, 0),
            2 * epoch + 3 * deadline(0, ttl, 0)
        );
        // A bigger receipt gives its verifiers more time, and so waits longer.
        let big = 10u64.pow(15);
        assert_eq!(
            worst_case_dispute_ms(epoch, ttl, big),
            2 * epoch + 3 * deadline(0, ttl, big)
        );
        assert!(worst_case_dispute_ms(epoch, ttl, big) > worst_case_dispute_ms(epoch, ttl, 0));
        assert_eq!(
            worst_case_dispute_ms(u64::MAX, u64::MAX, u64::MAX),
            u64::MAX
        );
        let worst = worst_case_dispute_ms(epoch, ttl, 0);
        assert_eq!(settle_at(1_000, 10_000, true, worst), 1_000 + worst);
        assert_eq!(
            settle_at(1_000, 10 * worst, true, worst),
            1_000 + 10 * worst,
            "a longer window still applies"
        );
        assert_eq!(settle_at(1_000, 10_000, false, worst), 11_000);
        assert_eq!(settle_at(u64::MAX, 1, true, worst), u64::MAX);
    }
}
