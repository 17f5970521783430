//! The ledger: two units (IO and IOSD) in integer base units,
//! double-entry, hash-chained.
//!
//! Every movement is one [`Entry`] that debits one account and credits
//! another of the same unit by the same amount, so each unit's balances
//! sum to zero. Units come into being only by debiting their issuance
//! account ([`accounts::issuance`]) — the only accounts allowed below zero:
//! IO once, at genesis, for its whole cap (500M to named accounts, 300M to
//! the reward pool emitted epoch by epoch); IOSD only by a `mint` that
//! burns IO at a signed oracle price in the same transaction (see
//! [`supply`]). Every other account is refused a debit that would take it
//! below zero.
//!
//! Entries are chained with SHA-256: `hash = SHA-256(canonical("assay/ledger/v2",
//! prev_hash, seq, unit, kind, debit, credit, amount, reference, at_ms))` with
//! the first entry's `prev_hash` all zeros. (Entries written before units
//! existed keep their `assay/ledger/v1` hash — no unit field, account names
//! without the unit prefix — and are read as IOSD: [`Entry::format`].)
//! Changing, dropping or reordering any entry breaks the chain from there
//! on; [`verify`] recomputes the chain, every balance and the supply
//! invariants from the entries. (Rewriting the whole chain after an entry
//! changes the head hash: anyone who kept an earlier head notices.)
//!
//! Every entry has a unique `reference` (e.g. `settle/<receipt id>/pay`);
//! posting a reference that exists is a no-op, which makes settlement and
//! the other movements idempotent.
//!
//! This module is the ledger's format and its check, with no database:
//! [`crate::store::ledger`] posts entries inside the store's transactions.

pub mod accounts;
pub mod supply;

use std::collections::BTreeMap;

use assay_protocol::canonical::Encoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use accounts::{
    BASE, DECIMALS, FEES, GENESIS_ALLOCATION, IO_CAP, REWARD_POOL, UNEMITTED, Unit, balance,
    bond_escrow, burned, cluster_escrow, earnings, epoch, escrow, faucet, genesis, issuance,
    rewards, stake, unbonding, verifier_earnings,
};
pub use supply::Supply;

/// The entry format written now.
pub const FORMAT: u8 = 2;

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// 2 (units); 1 for an entry of the single-unit ledger (read as IOSD).
    pub format: u8,
    /// What it moves.
    pub unit: Unit,
    /// `genesis`, `emit`, `reward`, `burn`, `mint`, `escrow`, `stake`,
    /// `pay`, `fee`, `refund`, `slash`, …
    pub kind: String,
    /// The account debited.
    pub debit: String,
    /// The account credited.
    pub credit: String,
    /// Base units moved (> 0).
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
        let mut e = if self.format == 1 {
            Encoder::new("assay/ledger/v1")
        } else {
            Encoder::new("assay/ledger/v2")
        };
        e.fixed32(&self.prev_hash).u64(self.seq);
        if self.format != 1 {
            e.str(self.unit.as_str());
        }
        e.str(&self.kind)
            .str(&self.debit)
            .str(&self.credit)
            .u64(self.amount)
            .str(&self.reference)
            .u64(self.at_ms);
        Sha256::digest(e.finish()).into()
    }

    /// The debited account's full name (format-1 names get their `iosd/`).
    pub fn debit_account(&self) -> String {
        self.qualified(&self.debit)
    }

    /// The credited account's full name.
    pub fn credit_account(&self) -> String {
        self.qualified(&self.credit)
    }

    fn qualified(&self, name: &str) -> String {
        if self.format == 1 {
            format!("iosd/{name}")
        } else {
            name.to_string()
        }
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
    /// Balances recomputed from the entries (full account names).
    pub balances: BTreeMap<String, i128>,
    /// Supply of both units recomputed from the entries.
    pub supply: Supply,
}

impl Report {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a whole ledger: the chain (order, links, hashes), amounts, units
/// (both accounts of an entry hold its unit), that no account but the
/// issuance accounts goes below zero at any point, that each unit's
/// balances sum to zero, the supply invariants ([`supply::check`]), and —
/// given the stored balances and head — that they match the entries.
/// Works on entries from any source (the database, an export).
pub fn verify(
    entries: &[Entry],
    stored_balances: Option<&BTreeMap<String, i128>>,
    stored_head: Option<(u64, [u8; 32])>,
) -> Report {
    let mut r = Report::default();
    let mut prev = [0u8; 32];
    let mut seen_refs = std::collections::BTreeSet::new();
    let issuers = [issuance(Unit::Io), issuance(Unit::Iosd)];
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
        let (debit, credit) = (e.debit_account(), e.credit_account());
        if debit == credit {
            r.problems.push(format!(
                "entry {}: debits and credits the same account",
                e.seq
            ));
        }
        for name in [&debit, &credit] {
            if Unit::of_account(name) != Some(e.unit) {
                r.problems.push(format!(
                    "entry {}: account {name} does not hold {} (units cannot be mixed)",
                    e.seq, e.unit
                ));
            }
        }
        if !seen_refs.insert(e.reference.clone()) {
            r.problems.push(format!(
                "entry {}: reference {:?} was already used",
                e.seq, e.reference
            ));
        }
        let amount = i128::from(e.amount);
        *r.balances.entry(debit.clone()).or_default() -= amount;
        *r.balances.entry(credit).or_default() += amount;
        if !issuers.contains(&debit) && r.balances.get(&debit).copied().unwrap_or(0) < 0 {
            r.problems
                .push(format!("entry {}: takes {debit} below zero", e.seq));
        }
        prev = e.hash;
    }
    r.entries = entries.len() as u64;
    r.head = prev;
    for unit in Unit::ALL {
        let total: i128 = r
            .balances
            .iter()
            .filter(|(name, _)| Unit::of_account(name) == Some(unit))
            .map(|(_, v)| *v)
            .sum();
        if total != 0 {
            r.problems.push(format!(
                "{unit} balances sum to {total}, not zero: {unit} was created or destroyed"
            ));
        }
    }
    let (supply, problems) = supply::check(entries, &r.balances);
    r.supply = supply;
    r.problems.extend(problems);
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

/// Builds a chain of format-2 entries from `(unit, kind, debit, credit,
/// amount, reference)` moves — for tests and examples.
pub fn chain_of(moves: &[(Unit, &str, &str, &str, u64, &str)]) -> Vec<Entry> {
    let mut prev = [0u8; 32];
    moves
        .iter()
        .enumerate()
        .map(|(i, (unit, kind, debit, credit, amount, reference))| {
            let mut e = Entry {
                seq: i as u64 + 1,
                format: FORMAT,
                unit: *unit,
                kind: (*kind).into(),
                debit: (*debit).into(),
                credit: (*credit).into(),
                amount: *amount,
                reference: (*reference).into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    const IO: Unit = Unit::Io;

    #[test]
    fn a_sound_chain_verifies_and_any_change_is_found() {
        let iss = issuance(IO);
        let entries = chain_of(&[
            (
                IO,
                "genesis",
                &iss,
                "io/genesis:a",
                GENESIS_ALLOCATION,
                "r1",
            ),
            (IO, "genesis", &iss, UNEMITTED, REWARD_POOL, "r2"),
            (IO, "t", "io/genesis:a", "io/b", 4, "r3"),
            (IO, "t", "io/b", "io/c", 1, "r4"),
        ]);
        let r = verify(&entries, None, None);
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.balances["io/b"], 3);
        assert_eq!(r.balances[&iss], -i128::from(IO_CAP));

        let mut altered = entries.clone();
        altered[2].amount = 5;
        assert!(!verify(&altered, None, None).ok());
        let mut dropped = entries.clone();
        dropped.remove(2);
        assert!(!verify(&dropped, None, None).ok());
        let mut swapped = entries.clone();
        swapped.swap(2, 3);
        assert!(!verify(&swapped, None, None).ok());
        let overdraft = chain_of(&[
            (
                IO,
                "genesis",
                &iss,
                "io/genesis:a",
                GENESIS_ALLOCATION,
                "r1",
            ),
            (IO, "genesis", &iss, UNEMITTED, REWARD_POOL, "r2"),
            (IO, "t", "io/b", "io/c", 2, "r3"),
        ]);
        let o = verify(&overdraft, None, None);
        assert!(
            o.problems
                .iter()
                .any(|p| p.contains("takes io/b below zero")),
            "{:?}",
            o.problems
        );
        let mut stored = r.balances.clone();
        stored.insert("io/c".into(), 2);
        assert!(!verify(&entries, Some(&stored), None).ok());
        assert!(!verify(&entries, None, Some((3, entries[2].hash))).ok());
        assert!(verify(&entries, Some(&r.balances), Some((4, entries[3].hash))).ok());
    }

    #[test]
    fn units_cannot_be_mixed_in_one_entry() {
        let bad = chain_of(&[(Unit::Iosd, "t", "io/a", "iosd/b", 1, "r1")]);
        let r = verify(&bad, None, None);
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("units cannot be mixed")),
            "{:?}",
            r.problems
        );
    }

    #[test]
    fn entries_of_the_single_unit_ledger_still_verify_as_iosd() {
        // A format-1 entry: hashed without a unit, names without prefix.
        let mut e = Entry {
            seq: 1,
            format: 1,
            unit: Unit::Iosd,
            kind: "mint".into(),
            debit: "issuance".into(),
            credit: "balance:x".into(),
            amount: 5,
            reference: "faucet/x/1".into(),
            at_ms: 1,
            prev_hash: [0; 32],
            hash: [0; 32],
        };
        e.hash = e.computed_hash();
        let r = verify(std::slice::from_ref(&e), None, None);
        assert_eq!(r.balances["iosd/balance:x"], 5);
        assert_eq!(r.supply.iosd.minted, 5);
        // Legacy mints had no burn: reported as such, not as a broken chain.
        assert!(
            r.problems.iter().all(|p| !p.contains("hash")),
            "{:?}",
            r.problems
        );
    }
}
