//! The ledger: integer micro-credits, double-entry, hash-chained.
//!
//! Every movement is one [`Entry`] that debits one account and credits
//! another by the same amount, so the sum of all balances is always zero.
//! Credits come into being only by a `mint` entry, which debits the
//! [`ISSUANCE`] account — the one account allowed below zero; its negated
//! balance is the total ever minted. Every other account is refused a debit
//! that would take it below zero.
//!
//! Entries are chained with SHA-256: `hash = SHA-256(canonical("assay/ledger/v1",
//! prev_hash, seq, kind, debit, credit, amount, reference, at_ms))` with the
//! first entry's `prev_hash` all zeros. Changing, dropping or reordering any
//! entry breaks the chain from there on; [`verify`] recomputes the chain
//! and every balance from the entries. (Rewriting the whole chain after an
//! entry changes the head hash: anyone who kept an earlier head notices.)
//!
//! Every entry has a unique `reference` (e.g. `settle/<receipt id>/pay`);
//! posting a reference that exists is a no-op, which makes settlement and
//! the other movements idempotent.
//!
//! This module is the ledger's format and its check, with no database:
//! [`crate::store::ledger`] posts entries inside the store's transactions.

use std::collections::BTreeMap;

use assay_protocol::canonical::Encoder;
use assay_protocol::{Hash32, NodeId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where minted credits come from (the only account that may go negative).
pub const ISSUANCE: &str = "issuance";
/// Protocol fees.
pub const FEES: &str = "fees";

/// A node's spendable balance.
pub fn balance(node: &NodeId) -> String {
    format!("balance:{node}")
}
/// A node's stake.
pub fn stake(node: &NodeId) -> String {
    format!("stake:{node}")
}
/// A provider's earnings.
pub fn earnings(node: &NodeId) -> String {
    format!("earnings:{node}")
}
/// A verifier's earnings.
pub fn verifier_earnings(node: &NodeId) -> String {
    format!("verifier:{node}")
}
/// A job's escrow.
pub fn escrow(job: &Hash32) -> String {
    format!("escrow:{job}")
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// `mint`, `escrow`, `stake`, `pay`, `fee`, `refund`, …
    pub kind: String,
    /// The account debited.
    pub debit: String,
    /// The account credited.
    pub credit: String,
    /// µcr moved (> 0).
    pub amount: u64,
    /// Unique key of the movement (idempotency).
    pub reference: String,
    /// When, Unix ms.
    pub at_ms: u64,
    /// The previous entry's hash (zeros for the first).
    pub prev_hash: [u8; 32],
    /// This entry's hash.
    pub hash: [u8; 32],
}

impl Entry {
    /// SHA-256 of this entry's canonical encoding, chained to `prev_hash`
    /// (what `hash` must be).
    pub fn computed_hash(&self) -> [u8; 32] {
        let mut e = Encoder::new("assay/ledger/v1");
        e.fixed32(&self.prev_hash)
            .u64(self.seq)
            .str(&self.kind)
            .str(&self.debit)
            .str(&self.credit)
            .u64(self.amount)
            .str(&self.reference)
            .u64(self.at_ms);
        Sha256::digest(e.finish()).into()
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Entries checked.
    pub entries: u64,
    /// The last entry's hash (zeros for an empty ledger).
    pub head: [u8; 32],
    /// Everything wrong, first problem first; empty if the ledger is sound.
    pub problems: Vec<String>,
    /// Balances recomputed from the entries.
    pub balances: BTreeMap<String, i128>,
}

impl Report {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a whole ledger: the chain (order, links, hashes), amounts, that no
/// account but [`ISSUANCE`] goes below zero at any point, that balances sum
/// to zero, and — given the stored balances and head — that they match the
/// entries. Works on entries from any source (the database, an export).
pub fn verify(
    entries: &[Entry],
    stored_balances: Option<&BTreeMap<String, i128>>,
    stored_head: Option<(u64, [u8; 32])>,
) -> Report {
    let mut r = Report::default();
    let mut prev = [0u8; 32];
    let mut seen_refs = std::collections::BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        let want_seq = i as u64 + 1;
        if e.seq != want_seq {
            r.problems.push(format!(
                "entry {want_seq}: has seq {} (an entry is missing or reordered)",
                e.seq
            ));
        }
        if e.prev_hash != prev {
            r.problems.push(format!(
                "entry {}: prev_hash does not link to the entry before it (changed or reordered history)",
                e.seq
            ));
        }
        if e.computed_hash() != e.hash {
            r.problems.push(format!(
                "entry {}: hash does not match its contents (the entry was altered)",
                e.seq
            ));
        }
        if e.amount == 0 {
            r.problems.push(format!("entry {}: zero amount", e.seq));
        }
        if e.debit == e.credit {
            r.problems.push(format!(
                "entry {}: debits and credits the same account",
                e.seq
            ));
        }
        if !seen_refs.insert(e.reference.clone()) {
            r.problems.push(format!(
                "entry {}: reference {:?} was already used",
                e.seq, e.reference
            ));
        }
        let amount = i128::from(e.amount);
        *r.balances.entry(e.debit.clone()).or_default() -= amount;
        *r.balances.entry(e.credit.clone()).or_default() += amount;
        if e.debit != ISSUANCE && r.balances.get(&e.debit).copied().unwrap_or(0) < 0 {
            r.problems
                .push(format!("entry {}: takes {} below zero", e.seq, e.debit));
        }
        prev = e.hash;
    }
    r.entries = entries.len() as u64;
    r.head = prev;
    let total: i128 = r.balances.values().sum();
    if total != 0 {
        r.problems.push(format!(
            "balances sum to {total}, not zero: credits were created or destroyed"
        ));
    }
    if let Some(stored) = stored_balances {
        for (name, want) in &r.balances {
            let got = stored.get(name).copied().unwrap_or(0);
            if got != *want {
                r.problems.push(format!(
                    "account {name}: stored balance {got} but the entries give {want}"
                ));
            }
        }
        for (name, got) in stored {
            if !r.balances.contains_key(name) && *got != 0 {
                r.problems.push(format!(
                    "account {name}: stored balance {got} but no entry touches it"
                ));
            }
        }
    }
    if let Some((seq, hash)) = stored_head
        && (seq != r.entries || hash != r.head)
    {
        r.problems.push(format!(
            "the stored head (entry {seq}) is not the last entry ({}): entries were dropped or added",
            r.entries
        ));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(moves: &[(&str, &str, u64)]) -> Vec<Entry> {
        let mut prev = [0u8; 32];
        moves
            .iter()
            .enumerate()
            .map(|(i, (d, c, a))| {
                let seq = i as u64 + 1;
                let reference = format!("r{seq}");
                let mut e = Entry {
                    seq,
                    kind: "t".into(),
                    debit: (*d).into(),
                    credit: (*c).into(),
                    amount: *a,
                    reference,
                    at_ms: 5,
                    prev_hash: prev,
                    hash: [0; 32],
                };
                e.hash = e.computed_hash();
                prev = e.hash;
                e
            })
            .collect()
    }

    #[test]
    fn a_sound_chain_verifies_and_any_change_is_found() {
        let entries = chain(&[(ISSUANCE, "a", 10), ("a", "b", 4), ("b", "c", 1)]);
        let r = verify(&entries, None, None);
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.balances["a"], 6);
        assert_eq!(r.balances[ISSUANCE], -10);

        let mut altered = entries.clone();
        altered[1].amount = 5;
        assert!(!verify(&altered, None, None).ok());
        let mut dropped = entries.clone();
        dropped.remove(1);
        assert!(!verify(&dropped, None, None).ok());
        let mut swapped = entries.clone();
        swapped.swap(1, 2);
        assert!(!verify(&swapped, None, None).ok());
        let overdraft = chain(&[(ISSUANCE, "a", 1), ("a", "b", 2)]);
        assert!(!verify(&overdraft, None, None).ok());
        let mut stored = r.balances.clone();
        stored.insert("c".into(), 2);
        assert!(!verify(&entries, Some(&stored), None).ok());
        assert!(!verify(&entries, None, Some((2, entries[1].hash))).ok());
        assert!(verify(&entries, Some(&r.balances), Some((3, entries[2].hash))).ok());
    }
}
