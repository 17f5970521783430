//! Test-only knobs that make this provider cheat, so that end-to-end tests
//! can show that verification catches it (`assay provider --cheat-rate F
//! [--inflate-work N]`, hidden flags).
//!
//! A cheat is decided per lease, deterministically: lease `l` is cheated iff
//! the first 8 bytes (little-endian) of `blake3("assay/test/cheat/v1" ‖ l)`,
//! read as a fraction of 2⁶⁴, are below `F` (so `F = 1` cheats on every
//! lease and `F = 0` on none, and a test that replays the same leases cheats
//! on the same ones). On a cheated lease the provider either
//!
//! - **corrupts its result** (the default): flips the lowest bit of the first
//!   byte of the first non-empty output (in name order), recomputes the
//!   outputs root, and uploads the corrupted outputs so that they match the
//!   receipt — exactly what a provider returning made-up results would do; or
//! - with `inflate_work = N > 0`, **over-bills**: keeps the honest outputs
//!   and claims `N` more FLOPs than the run metered.
//!
//! Either way the receipt is re-signed with the node key, so its signature is
//! valid and only re-execution can expose the lie.
//!
//! # Example
//!
//! ```
//! use assay_protocol::Hash32;
//! use assay_provider::cheat::Cheat;
//!
//! let always = Cheat { rate: 1.0, inflate_work: 0 };
//! let never = Cheat::default();
//! let lease = Hash32::of(b"a lease id");
//! assert!(always.chosen(&lease));
//! assert!(!never.chosen(&lease));
//! ```

use std::collections::BTreeMap;

use assay_protocol::{Hash32, NodeKey, Receipt, outputs_root};

use crate::Error;

/// How (and how often) to cheat. The default never cheats.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cheat {
    /// Fraction of leases to cheat on, in `[0, 1]`.
    pub rate: f64,
    /// `0`: corrupt the outputs of cheated leases. `N > 0`: leave the
    /// outputs honest and add `N` to the receipt's `work.flops` instead.
    pub inflate_work: u64,
}

/// `id`'s draw in `[0, 1)` under `domain`: blake3 of the domain and the id.
pub(crate) fn draw(domain: &str, id: &Hash32) -> f64 {
    let mut h = blake3::Hasher::new();
    h.update(domain.as_bytes());
    h.update(&id.0);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.finalize().as_bytes()[..8]);
    // The top 53 bits: exactly representable, uniform in [0, 1).
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

impl Cheat {
    /// True if this provider cheats at all.
    pub fn is_on(&self) -> bool {
        self.rate > 0.0
    }

    /// True iff lease `lease` is one to cheat on.
    pub fn chosen(&self, lease: &Hash32) -> bool {
        self.rate >= 1.0 || (self.rate > 0.0 && draw("assay/test/cheat/v1", lease) < self.rate)
    }

    /// Applies the cheat to a finished run's outputs and receipt, re-signing
    /// the receipt with `key`. Returns what was done, for the log.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if `key` is not the key that signed the receipt.
    pub fn apply(
        &self,
        key: &NodeKey,
        outputs: &mut BTreeMap<String, Vec<u8>>,
        receipt: &mut Receipt,
    ) -> Result<&'static str, Error> {
        let mut body = receipt.body.clone();
        let what = if self.inflate_work > 0 {
            body.work.flops = body.work.flops.saturating_add(self.inflate_work);
            "inflated work"
        } else {
            let Some(first) = outputs.values_mut().find(|b| !b.is_empty()) else {
                // Nothing to corrupt (every output is empty): claim work
                // instead, so the receipt is still a lie.
                body.work.flops = body.work.flops.saturating_add(1);
                *receipt = body
                    .sign(key)
                    .map_err(|e| Error::Internal(format!("re-signing a receipt: {e}")))?;
                return Ok("inflated work (no output bytes to corrupt)");
            };
            first[0] ^= 1;
            body.outputs_root = outputs_root(outputs.iter().map(|(n, b)| (n.as_str(), &b[..])));
            "corrupted outputs"
        };
        *receipt = body
            .sign(key)
            .map_err(|e| Error::Internal(format!("re-signing a receipt: {e}")))?;
        Ok(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_protocol::{BackendDescriptor, Outcome, ReceiptBody, Shard, WorkDone};

    #[test]
    fn the_choice_is_deterministic_and_follows_the_rate() {
        let ids: Vec<Hash32> = (0..20_000u32)
            .map(|i| Hash32::of(&i.to_le_bytes()))
            .collect();
        let c = Cheat {
            rate: 0.1,
            inflate_work: 0,
        };
        let first: Vec<bool> = ids.iter().map(|i| c.chosen(i)).collect();
        let again: Vec<bool> = ids.iter().map(|i| c.chosen(i)).collect();
        assert_eq!(first, again, "same leases, same choices");
        let hits = first.iter().filter(|b| **b).count();
        // 2,000 expected; σ ≈ 42.
        assert!((1_800..2_200).contains(&hits), "{hits} of 20,000 at 10%");
        let all = Cheat {
            rate: 1.0,
            inflate_work: 0,
        };
        assert!(ids.iter().all(|i| all.chosen(i)));
        assert!(!ids.iter().any(|i| Cheat::default().chosen(i)));
        // A higher rate cheats on a superset of the leases of a lower one.
        let half = Cheat {
            rate: 0.5,
            inflate_work: 0,
        };
        assert!(ids.iter().all(|i| !c.chosen(i) || half.chosen(i)));
    }

    fn run(key: &NodeKey) -> (BTreeMap<String, Vec<u8>>, Receipt) {
        let mut outputs = BTreeMap::new();
        outputs.insert("a".to_string(), Vec::new());
        outputs.insert("b".to_string(), vec![0x10, 0x20]);
        let receipt = ReceiptBody {
            semantics: assay_protocol::SEMANTICS_VERSION,
            job_id: Hash32([1; 32]),
            shard: Shard::default(),
            provider_id: key.id(),
            component_hash: Hash32([2; 32]),
            inputs_root: Hash32([3; 32]),
            outputs_root: outputs_root(outputs.iter().map(|(n, b)| (n.as_str(), &b[..]))),
            trace_root: Hash32::ZERO,
            outcome: Outcome::Success,
            fuel_used: 10,
            work: WorkDone {
                flops: 100,
                bytes: 200,
            },
            backend: BackendDescriptor::default(),
            telemetry: None,
            started_at_ms: 1,
            finished_at_ms: 2,
        }
        .sign(key)
        .expect("sign");
        (outputs, receipt)
    }

    #[test]
    fn a_corrupted_result_is_consistent_and_validly_signed() {
        let key = NodeKey::from_seed([9; 32]);
        let (mut outputs, mut receipt) = run(&key);
        let honest = receipt.clone();
        let what = Cheat {
            rate: 1.0,
            inflate_work: 0,
        }
        .apply(&key, &mut outputs, &mut receipt)
        .expect("cheat");
        assert_eq!(what, "corrupted outputs");
        assert_eq!(outputs["b"], vec![0x11, 0x20], "first non-empty output");
        assert_ne!(receipt.body.outputs_root, honest.body.outputs_root);
        assert_eq!(
            receipt.body.outputs_root,
            outputs_root(outputs.iter().map(|(n, b)| (n.as_str(), &b[..]))),
            "the receipt matches the uploaded outputs"
        );
        assert_eq!(receipt.body.work, honest.body.work);
        receipt.verify().expect("re-signed");
    }

    #[test]
    fn inflated_work_keeps_the_outputs() {
        let key = NodeKey::from_seed([9; 32]);
        let (mut outputs, mut receipt) = run(&key);
        let honest = (outputs.clone(), receipt.clone());
        Cheat {
            rate: 1.0,
            inflate_work: 5_000,
        }
        .apply(&key, &mut outputs, &mut receipt)
        .expect("cheat");
        assert_eq!(outputs, honest.0);
        assert_eq!(receipt.body.outputs_root, honest.1.body.outputs_root);
        assert_eq!(receipt.body.work.flops, 5_100);
        receipt.verify().expect("re-signed");
        let other = NodeKey::from_seed([8; 32]);
        assert!(
            Cheat {
                rate: 1.0,
                inflate_work: 0
            }
            .apply(&other, &mut outputs, &mut receipt)
            .is_err()
        );
    }
}
