//! Market definitions shared by every node: blob references, prices and
//! costs, and the result root of a sharded job.
//!
//! # Prices
//!
//! A price is in micro-credits (µIOSD, 10⁻⁶ credit) per million work units
//! ("µIOSD/Munit"). A run's billable units are `fuel_used + work.flops +
//! work.bytes`, all deterministic (a verifier re-derives them), so nobody can
//! inflate them. A shard costs `ceil(price × units / 10⁶)`; the renter escrows
//! the most a shard can cost, `ceil(max_price × (fuel + work_budget) / 10⁶)`,
//! per shard, so a job never costs more than it escrowed.

use serde::{Deserialize, Serialize};

use crate::canonical::Encoder;
use crate::{Hash32, JobSpec, WorkDone};

/// Work units per price unit: prices are per million units.
pub const UNITS_PER_PRICE: u64 = 1_000_000;

/// A named, content-addressed blob (a job input or output).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    /// The input or output name the guest uses.
    pub name: String,
    /// blake3 of the bytes.
    pub hash: Hash32,
    /// Length in bytes.
    pub size: u64,
}

/// The most units a run under `spec` can bill: `fuel + work_budget`
/// (saturating).
pub fn max_units(spec: &JobSpec) -> u64 {
    spec.fuel.saturating_add(spec.work_budget)
}

/// The units a finished run bills: `fuel_used + flops + bytes` (saturating).
pub fn billable_units(fuel_used: u64, work: &WorkDone) -> u64 {
    fuel_used
        .saturating_add(work.flops)
        .saturating_add(work.bytes)
}

/// `ceil(price × units / 10⁶)` in µIOSD, or `None` if it does not fit a `u64`.
pub fn cost(price: u64, units: u64) -> Option<u64> {
    let micro = u128::from(price) * u128::from(units);
    let whole = micro.div_ceil(u128::from(UNITS_PER_PRICE));
    u64::try_from(whole).ok()
}

/// What a renter escrows per shard: [`cost`] of `max_price` over [`max_units`].
pub fn escrow_per_shard(max_price: u64, spec: &JobSpec) -> Option<u64> {
    cost(max_price, max_units(spec))
}

/// The result root of a sharded job: a Merkle tree over the shards' outputs
/// roots in shard order.
///
/// Leaves are `blake3("assay/shard-leaf/v1" framed, u32 index, u32 count,
/// root)`; an inner node is `blake3("assay/shard-node/v1" framed, left,
/// right)`; a tree of `n > 1` leaves splits at the largest power of two below
/// `n` (as RFC 6962 does), so every shard count has one tree. The root of no
/// shards is `blake3("assay/shard-empty/v1" framed)`.
pub fn results_root(shard_roots: &[Hash32]) -> Hash32 {
    let count = u32::try_from(shard_roots.len()).unwrap_or(u32::MAX);
    let leaves: Vec<Hash32> = shard_roots
        .iter()
        .enumerate()
        .map(|(i, root)| {
            let mut e = Encoder::new("assay/shard-leaf/v1");
            e.u32(u32::try_from(i).unwrap_or(u32::MAX))
                .u32(count)
                .fixed32(&root.0);
            e.hash()
        })
        .collect();
    if leaves.is_empty() {
        return Encoder::new("assay/shard-empty/v1").hash();
    }
    merkle(&leaves)
}

fn merkle(nodes: &[Hash32]) -> Hash32 {
    if nodes.len() == 1 {
        return nodes[0];
    }
    let split = nodes.len().next_power_of_two() / 2;
    let (left, right) = nodes.split_at(split);
    let mut e = Encoder::new("assay/shard-node/v1");
    e.fixed32(&merkle(left).0).fixed32(&merkle(right).0);
    e.hash()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u8) -> Hash32 {
        Hash32([i; 32])
    }

    #[test]
    fn results_root_depends_on_order_and_count() {
        let a = results_root(&[h(1), h(2)]);
        assert_ne!(a, results_root(&[h(2), h(1)]));
        assert_ne!(a, results_root(&[h(1), h(2), h(2)]));
        assert_ne!(
            results_root(&[h(1)]),
            h(1),
            "a single shard is still a leaf"
        );
        assert_ne!(results_root(&[]), results_root(&[h(0)]));
        // Every shard count gives a distinct, stable tree.
        let roots: Vec<Hash32> = (0..9).map(h).collect();
        let all: Vec<Hash32> = (1..=9).map(|n| results_root(&roots[..n])).collect();
        for i in 0..all.len() {
            for j in 0..i {
                assert_ne!(all[i], all[j]);
            }
        }
    }

    #[test]
    fn results_root_of_three_is_left_heavy() {
        let leaf = |i: u32, r: Hash32| {
            let mut e = Encoder::new("assay/shard-leaf/v1");
            e.u32(i).u32(3).fixed32(&r.0);
            e.hash()
        };
        let node = |l: Hash32, r: Hash32| {
            let mut e = Encoder::new("assay/shard-node/v1");
            e.fixed32(&l.0).fixed32(&r.0);
            e.hash()
        };
        let want = node(node(leaf(0, h(7)), leaf(1, h(8))), leaf(2, h(9)));
        assert_eq!(results_root(&[h(7), h(8), h(9)]), want);
    }

    #[test]
    fn cost_rounds_up_and_refuses_overflow() {
        assert_eq!(cost(1, 1), Some(1));
        assert_eq!(cost(1, 1_000_000), Some(1));
        assert_eq!(cost(1, 1_000_001), Some(2));
        assert_eq!(cost(0, u64::MAX), Some(0));
        assert_eq!(cost(3, 2_000_000), Some(6));
        assert_eq!(cost(u64::MAX, u64::MAX), None);
        let spec = JobSpec {
            fuel: 1_000_000,
            work_budget: 3_000_000,
            ..JobSpec::default()
        };
        assert_eq!(escrow_per_shard(5, &spec), Some(20));
        assert_eq!(billable_units(5, &WorkDone { flops: 6, bytes: 7 }), 18);
    }
}
