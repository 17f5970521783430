//! The supply of both units, recomputed from the entries, and the rules
//! that tie it together.
//!
//! - IO: `io/issuance` is debited once per genesis allocation and never
//!   again, so its balance is minus the cap; genesis puts exactly
//!   [`GENESIS_ALLOCATION`] into named accounts and [`REWARD_POOL`] into
//!   `io/unemitted`. Then `genesis + emitted + unemitted = cap` and the IO
//!   held anywhere else (balances, stakes, escrows, rewards) is
//!   `genesis + emitted − burned`.
//! - Each reward epoch moves its emission from `io/unemitted` into
//!   `io/epoch:<n>` and pays all of it out in the same transaction, so every
//!   epoch account is back at zero.
//! - IOSD: only a `mint` debits `iosd/issuance`, and every mint is one
//!   half of a conversion whose reference names its price,
//!   `convert/<id>@<µIOSD per IO>/mint`; the other half,
//!   `convert/<id>@<price>/burn`, burns IO into `io/burned`, and the mint is
//!   exactly [`iosd_for_io`]`(burned, price)`. So IOSD supply = minted −
//!   burned, and every µIOSD is backed by IO burned at a recorded price.
//! - Nothing ever leaves a `…/burned` account.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Entry;
use super::accounts::{
    GENESIS_ALLOCATION, IO_CAP, REWARD_POOL, UNEMITTED, Unit, burned, iosd_for_io, issuance,
};

/// IO's supply, in µIO.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoSupply {
    /// Minus `io/issuance`: the cap once genesis happened, 0 before.
    pub cap: u64,
    /// Allocated to named accounts at genesis.
    pub genesis: u64,
    /// Emitted as block rewards so far.
    pub emitted: u64,
    /// Still to be emitted.
    pub unemitted: u64,
    /// Burned (paying in IO, minting IOSD, fees in IO).
    pub burned: u64,
    /// In every other account (balances, stakes, rewards, …).
    pub held: u64,
}

/// IOSD's supply, in µIOSD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IosdSupply {
    /// Ever minted (by burning IO, plus any single-unit-ledger credits).
    pub minted: u64,
    /// Burned.
    pub burned: u64,
    /// Held: `minted − burned`.
    pub supply: u64,
    /// Of `minted`: credits of the single-unit ledger (format-1 entries),
    /// minted before IOSD could only come from IO.
    pub legacy_minted: u64,
}

/// Both units' supply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supply {
    /// IO.
    pub io: IoSupply,
    /// IOSD.
    pub iosd: IosdSupply,
}

/// The reference of one half of a conversion: `convert/<id>@<price>/<half>`.
pub fn conversion_reference(id: &str, price: u64, half: &str) -> String {
    format!("convert/{id}@{price}/{half}")
}

fn parse_conversion(reference: &str) -> Option<(&str, u64, &str)> {
    let rest = reference.strip_prefix("convert/")?;
    let (head, half) = rest.rsplit_once('/')?;
    let (id, price) = head.rsplit_once('@')?;
    Some((id, price.parse().ok()?, half))
}

fn clamp(v: i128) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

/// Recomputes the supply from `entries` and their `balances` and lists
/// every rule above that they break.
pub fn check(entries: &[Entry], balances: &BTreeMap<String, i128>) -> (Supply, Vec<String>) {
    let mut problems = Vec::new();
    let bal = |name: &str| balances.get(name).copied().unwrap_or(0);
    let (io_issuance, iosd_issuance) = (issuance(Unit::Io), issuance(Unit::Iosd));
    let (io_burned, iosd_burned) = (burned(Unit::Io), burned(Unit::Iosd));
    let mut s = Supply::default();
    let mut pool: u128 = 0;
    let mut genesis: u128 = 0;
    let mut emitted: u128 = 0;
    let mut legacy: u128 = 0;
    let mut burns: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut mints: Vec<(u64, String, u64, u64)> = Vec::new();
    for e in entries {
        let (debit, credit) = (e.debit_account(), e.credit_account());
        if debit == io_burned || debit == iosd_burned {
            problems.push(format!("entry {}: takes units back out of {debit}", e.seq));
        }
        if debit == io_issuance {
            if e.kind != "genesis" {
                problems.push(format!(
                    "entry {}: IO issued by a {:?} entry: IO is issued only at genesis",
                    e.seq, e.kind
                ));
            }
            if credit == UNEMITTED {
                pool += u128::from(e.amount);
            } else {
                genesis += u128::from(e.amount);
            }
        }
        if debit == UNEMITTED {
            emitted += u128::from(e.amount);
            if e.kind != "emit" || !credit.starts_with("io/epoch:") {
                problems.push(format!(
                    "entry {}: rewards leave io/unemitted only as an epoch's emission",
                    e.seq
                ));
            }
        }
        if debit == iosd_issuance {
            if e.format == 1 {
                legacy += u128::from(e.amount);
            } else if e.kind != "mint" {
                problems.push(format!(
                    "entry {}: IOSD issued by a {:?} entry: IOSD is minted only by burning IO",
                    e.seq, e.kind
                ));
            } else {
                match parse_conversion(&e.reference) {
                    Some((id, price, "mint")) => {
                        mints.push((e.seq, id.to_string(), price, e.amount));
                    }
                    _ => problems.push(format!(
                        "entry {}: an IOSD mint without a conversion reference (convert/<id>@<price>/mint)",
                        e.seq
                    )),
                }
            }
        }
        if credit == io_burned
            && let Some((id, price, "burn")) = parse_conversion(&e.reference)
        {
            burns.insert(id.to_string(), (price, e.amount));
        }
    }
    for (seq, id, price, amount) in mints {
        match burns.get(&id) {
            Some((p, io)) if *p == price => {
                if iosd_for_io(*io, price) != Some(amount) {
                    problems.push(format!(
                        "entry {seq}: mints {amount} µIOSD for {io} µIO burned at {price} µIOSD/IO (that buys {:?})",
                        iosd_for_io(*io, price)
                    ));
                }
            }
            _ => problems.push(format!(
                "entry {seq}: an IOSD mint (conversion {id}) with no IO burned at its price"
            )),
        }
    }
    for (name, v) in balances {
        if name.starts_with("io/epoch:") && *v != 0 {
            problems.push(format!(
                "{name} holds {v}: an epoch must pay out exactly its emission"
            ));
        }
    }
    s.io.cap = clamp(-bal(&io_issuance));
    s.io.genesis = u64::try_from(genesis).unwrap_or(u64::MAX);
    s.io.emitted = u64::try_from(emitted).unwrap_or(u64::MAX);
    s.io.unemitted = clamp(bal(UNEMITTED));
    s.io.burned = clamp(bal(&io_burned));
    let held: i128 = balances
        .iter()
        .filter(|(n, _)| {
            Unit::of_account(n) == Some(Unit::Io)
                && **n != io_issuance
                && n.as_str() != UNEMITTED
                && **n != io_burned
        })
        .map(|(_, v)| *v)
        .sum();
    s.io.held = clamp(held);
    if s.io.cap != 0 || pool != 0 || genesis != 0 {
        if s.io.cap != IO_CAP {
            problems.push(format!(
                "IO issued {} µIO, not the cap of {IO_CAP}",
                s.io.cap
            ));
        }
        if genesis != u128::from(GENESIS_ALLOCATION) || pool != u128::from(REWARD_POOL) {
            problems.push(format!(
                "genesis allocated {genesis} µIO and a reward pool of {pool} µIO, not {GENESIS_ALLOCATION} and {REWARD_POOL}"
            ));
        }
    }
    let io_total = u128::from(s.io.genesis) + u128::from(s.io.emitted) + u128::from(s.io.unemitted);
    if io_total != u128::from(s.io.cap) {
        problems.push(format!(
            "genesis {} + emitted {} + unemitted {} ≠ cap {}",
            s.io.genesis, s.io.emitted, s.io.unemitted, s.io.cap
        ));
    }
    if i128::from(s.io.genesis) + i128::from(s.io.emitted) - i128::from(s.io.burned) != held {
        problems.push(format!(
            "IO held {held} ≠ genesis {} + emitted {} − burned {}",
            s.io.genesis, s.io.emitted, s.io.burned
        ));
    }
    s.iosd.minted = clamp(-bal(&iosd_issuance));
    s.iosd.burned = clamp(bal(&iosd_burned));
    s.iosd.legacy_minted = u64::try_from(legacy).unwrap_or(u64::MAX);
    let iosd_held: i128 = balances
        .iter()
        .filter(|(n, _)| {
            Unit::of_account(n) == Some(Unit::Iosd) && **n != iosd_issuance && **n != iosd_burned
        })
        .map(|(_, v)| *v)
        .sum();
    s.iosd.supply = clamp(iosd_held);
    if i128::from(s.iosd.minted) - i128::from(s.iosd.burned) != iosd_held {
        problems.push(format!(
            "IOSD held {iosd_held} ≠ minted {} − burned {}",
            s.iosd.minted, s.iosd.burned
        ));
    }
    (s, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{chain_of, verify};

    const IO: Unit = Unit::Io;
    const IOSD: Unit = Unit::Iosd;

    fn genesis_moves() -> Vec<(Unit, &'static str, String, String, u64, String)> {
        vec![
            (
                IO,
                "genesis",
                issuance(IO),
                "io/genesis:treasury".into(),
                GENESIS_ALLOCATION,
                "genesis/treasury".into(),
            ),
            (
                IO,
                "genesis",
                issuance(IO),
                UNEMITTED.into(),
                REWARD_POOL,
                "genesis/rewards".into(),
            ),
        ]
    }

    fn run(extra: &[(Unit, &str, &str, &str, u64, &str)]) -> crate::ledger::Report {
        let g = genesis_moves();
        let mut moves: Vec<(Unit, &str, &str, &str, u64, &str)> = g
            .iter()
            .map(|(u, k, d, c, a, r)| (*u, *k, d.as_str(), c.as_str(), *a, r.as_str()))
            .collect();
        moves.extend_from_slice(extra);
        verify(&chain_of(&moves), None, None)
    }

    #[test]
    fn a_conversion_mints_exactly_what_the_burn_buys() {
        let burn = conversion_reference("c1", 1_500_000, "burn");
        let mint = conversion_reference("c1", 1_500_000, "mint");
        let iss = issuance(IOSD);
        let r = run(&[
            (
                IO,
                "grant",
                "io/genesis:treasury",
                "io/balance:r",
                10_000_000,
                "g1",
            ),
            (IO, "burn", "io/balance:r", "io/burned", 2_000_000, &burn),
            (IOSD, "mint", &iss, "iosd/balance:r", 3_000_000, &mint),
        ]);
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.supply.io.burned, 2_000_000);
        assert_eq!(r.supply.io.held, GENESIS_ALLOCATION - 2_000_000);
        assert_eq!(r.supply.iosd.minted, 3_000_000);
        assert_eq!(r.supply.iosd.supply, 3_000_000);

        let greedy = run(&[
            (
                IO,
                "grant",
                "io/genesis:treasury",
                "io/balance:r",
                10_000_000,
                "g1",
            ),
            (IO, "burn", "io/balance:r", "io/burned", 2_000_000, &burn),
            (IOSD, "mint", &iss, "iosd/balance:r", 3_000_001, &mint),
        ]);
        assert!(!greedy.ok());
        let unbacked = run(&[(IOSD, "mint", &iss, "iosd/balance:r", 1, &mint)]);
        assert!(
            unbacked.problems.iter().any(|p| p.contains("no IO burned")),
            "{:?}",
            unbacked.problems
        );
    }

    #[test]
    fn io_is_issued_only_at_genesis_and_epochs_pay_out_their_emission() {
        let iss = issuance(IO);
        let printed = run(&[(IO, "grant", &iss, "io/balance:x", 1, "oops")]);
        assert!(!printed.ok());
        let paid = run(&[
            (IO, "emit", UNEMITTED, "io/epoch:0", 100, "emit/0"),
            (
                IO,
                "reward",
                "io/epoch:0",
                "io/rewards:p",
                100,
                "reward/0/p",
            ),
        ]);
        assert!(paid.ok(), "{:?}", paid.problems);
        assert_eq!(paid.supply.io.emitted, 100);
        assert_eq!(paid.supply.io.unemitted, REWARD_POOL - 100);
        let kept = run(&[
            (IO, "emit", UNEMITTED, "io/epoch:0", 100, "emit/0"),
            (IO, "reward", "io/epoch:0", "io/rewards:p", 99, "reward/0/p"),
        ]);
        assert!(
            kept.problems
                .iter()
                .any(|p| p.contains("exactly its emission")),
            "{:?}",
            kept.problems
        );
        let unburned = run(&[
            (IO, "burn", "io/genesis:treasury", "io/burned", 5, "b"),
            (IO, "t", "io/burned", "io/balance:x", 5, "back"),
        ]);
        assert!(!unburned.ok());
    }
}
