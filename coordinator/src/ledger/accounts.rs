//! The two units and the accounts that hold them.
//!
//! An account's name starts with its unit (`io/…` or `iosd/…`), so one
//! look at a name says what it holds, and an entry that moves IO into an
//! IOSD account is caught by [`super::verify`].
//!
//! | account | unit | holds |
//! |---|---|---|
//! | `io/issuance` | IO | minus the cap, from genesis on (the only IO account below zero) |
//! | `io/unemitted` | IO | block rewards not yet emitted |
//! | `io/epoch:<n>` | IO | reward epoch `n`'s emission while it is paid out (0 after) |
//! | `io/genesis:<name>` | IO | a named genesis allocation (`treasury`, `ecosystem`, `faucet`, …) |
//! | `io/balance:<node>` | IO | a node's spendable IO |
//! | `io/stake:<node>` | IO | a node's stake (providers: to be hired; renters: priority) |
//! | `io/unbonding:<node>` | IO | stake on its way back to the balance (cooldown) |
//! | `io/rewards:<node>` | IO | a provider's block rewards |
//! | `io/burned` | IO | every IO burned (only ever credited) |
//! | `iosd/issuance` | IOSD | minus all IOSD ever minted (only by burning IO) |
//! | `iosd/burned` | IOSD | every IOSD burned (only ever credited) |
//! | `iosd/balance:<node>` | IOSD | a node's spendable IOSD |
//! | `iosd/escrow:<job>` | IOSD | a job's escrow |
//! | `iosd/earnings:<node>` | IOSD | a provider's pay for verified work |
//! | `iosd/verifier:<node>` | IOSD | a verifier's fees |
//! | `iosd/fees` | IOSD | protocol fees on payments in IOSD |
//! | `iosd/bond:<id>` | IOSD | a bond's principal escrow, filled from its device's earnings |
//! | `iosd/cluster:<id>` | IOSD | a reserved cluster's escrow (its members' pay for held slots) |

use std::fmt;

use assay_protocol::{Hash32, NodeId};
use serde::{Deserialize, Serialize};

/// Both units have six decimals: one IO is 1,000,000 µIO, one IOSD is
/// 1,000,000 µIOSD (the µcr of the single-unit market carried over as µIOSD).
pub const DECIMALS: u32 = 6;
/// Base units per whole unit.
pub const BASE: u64 = 1_000_000;
/// IO's fixed supply: 800,000,000 IO.
pub const IO_CAP: u64 = 800_000_000 * BASE;
/// The part of the cap emitted as block rewards: 300,000,000 IO.
pub const REWARD_POOL: u64 = 300_000_000 * BASE;
/// The part allocated at genesis: 500,000,000 IO.
pub const GENESIS_ALLOCATION: u64 = IO_CAP - REWARD_POOL;

/// What a ledger entry moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// The utility token: fixed supply, block rewards, stakes.
    Io,
    /// The USD-pegged unit: prices, escrow, pay. Minted only by burning IO.
    Iosd,
}

impl Unit {
    /// Both units.
    pub const ALL: [Unit; 2] = [Unit::Io, Unit::Iosd];

    /// `io` or `iosd`, as stored and as account-name prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Io => "io",
            Unit::Iosd => "iosd",
        }
    }

    /// `IO` or `IOSD`, for people.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Io => "IO",
            Unit::Iosd => "IOSD",
        }
    }

    /// Parses `io` / `iosd` (any case).
    pub fn parse(s: &str) -> Option<Unit> {
        match s.to_ascii_lowercase().as_str() {
            "io" => Some(Unit::Io),
            "iosd" => Some(Unit::Iosd),
            _ => None,
        }
    }

    /// The unit an account name belongs to (its prefix).
    pub fn of_account(name: &str) -> Option<Unit> {
        let (prefix, rest) = name.split_once('/')?;
        (!rest.is_empty()).then_some(())?;
        Unit::parse(prefix).filter(|u| u.as_str() == prefix)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Formats base units as a decimal amount (`1234567` → `1.234567`).
pub fn format_amount(base_units: u64) -> String {
    format!("{}.{:06}", base_units / BASE, base_units % BASE)
}

/// Parses a decimal amount (`200`, `1.5`, `0.000001`) into base units,
/// without floats.
///
/// # Errors
///
/// A message naming the problem: not a number, more than six decimals, too large.
pub fn parse_amount(s: &str) -> Result<u64, String> {
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    let bad =
        || format!("{s:?} is not an amount: write e.g. 200 or 1.5 (at most {DECIMALS} decimals)");
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > DECIMALS as usize
    {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac_units: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().map_err(|_| bad())?
    };
    whole
        .checked_mul(BASE)
        .and_then(|w| w.checked_add(frac_units))
        .filter(|v| *v <= i64::MAX as u64)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Where a unit comes from: minus the cap (IO) or minus everything minted (IOSD).
pub fn issuance(unit: Unit) -> String {
    format!("{}/issuance", unit.as_str())
}
/// Block rewards not yet emitted.
pub const UNEMITTED: &str = "io/unemitted";
/// Protocol fees on IOSD payments.
pub const FEES: &str = "iosd/fees";
/// Every unit burned (only ever credited).
pub fn burned(unit: Unit) -> String {
    format!("{}/burned", unit.as_str())
}
/// A named genesis allocation.
pub fn genesis(name: &str) -> String {
    format!("io/genesis:{name}")
}
/// The faucet's genesis allocation (devnets).
pub fn faucet() -> String {
    genesis("faucet")
}
/// Reward epoch `n` while its emission is paid out.
pub fn epoch(n: u64) -> String {
    format!("io/epoch:{n}")
}
/// A node's spendable balance in `unit`.
pub fn balance(unit: Unit, node: &NodeId) -> String {
    format!("{}/balance:{node}", unit.as_str())
}
/// A node's stake (IO).
pub fn stake(node: &NodeId) -> String {
    format!("io/stake:{node}")
}
/// A node's stake in its unstake cooldown (IO).
pub fn unbonding(node: &NodeId) -> String {
    format!("io/unbonding:{node}")
}
/// A provider's block rewards (IO).
pub fn rewards(node: &NodeId) -> String {
    format!("io/rewards:{node}")
}
/// A provider's pay for verified work (IOSD).
pub fn earnings(node: &NodeId) -> String {
    format!("iosd/earnings:{node}")
}
/// A verifier's fees (IOSD).
pub fn verifier_earnings(node: &NodeId) -> String {
    format!("iosd/verifier:{node}")
}
/// A bond's principal escrow (IOSD).
pub fn bond_escrow(bond: &Hash32) -> String {
    format!("iosd/bond:{bond}")
}
/// A job's escrow (IOSD).
pub fn escrow(job: &Hash32) -> String {
    format!("iosd/escrow:{job}")
}
/// A reserved cluster's escrow (IOSD).
pub fn cluster_escrow(cluster: &Hash32) -> String {
    format!("iosd/cluster:{cluster}")
}

/// The IOSD that burning `io` µIO at `price` (µIOSD per IO) mints:
/// `floor(io × price / 10⁶)`. `None` on overflow.
pub fn iosd_for_io(io: u64, price: u64) -> Option<u64> {
    u64::try_from(u128::from(io) * u128::from(price) / u128::from(BASE)).ok()
}

/// The least µIO whose burn at `price` mints at least `iosd` µIOSD:
/// `ceil(iosd × 10⁶ / price)`. `None` when the price is 0 or on overflow.
pub fn io_for_iosd(iosd: u64, price: u64) -> Option<u64> {
    if price == 0 {
        return None;
    }
    let n = u128::from(iosd) * u128::from(BASE);
    u64::try_from(n.div_ceil(u128::from(price))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn amounts_parse_and_print_without_floats() {
        assert_eq!(parse_amount("200"), Ok(200 * BASE));
        assert_eq!(parse_amount("1.5"), Ok(1_500_000));
        assert_eq!(parse_amount(".000001"), Ok(1));
        assert!(parse_amount("1.0000001").is_err());
        assert!(parse_amount("-1").is_err());
        assert!(parse_amount("").is_err());
        assert!(parse_amount("1e6").is_err());
        assert_eq!(format_amount(4_566_210_045), "4566.210045");
    }

    #[test]
    fn account_names_carry_their_unit() {
        let n = NodeId([7; 32]);
        assert_eq!(Unit::of_account(&stake(&n)), Some(Unit::Io));
        assert_eq!(Unit::of_account(&earnings(&n)), Some(Unit::Iosd));
        assert_eq!(Unit::of_account(FEES), Some(Unit::Iosd));
        assert_eq!(Unit::of_account("balance:x"), None);
        assert_eq!(Unit::of_account("IO/x"), None);
        assert_eq!(GENESIS_ALLOCATION, 500_000_000 * BASE);
    }

    proptest! {
        #[test]
        fn buying_iosd_with_io_never_mints_less_than_asked(
            iosd in 0u64..=1u64 << 50,
            price in 1u64..=1u64 << 40,
        ) {
            let io = io_for_iosd(iosd, price).expect("fits");
            let minted = iosd_for_io(io, price).expect("fits");
            prop_assert!(minted >= iosd);
            // One µIO less would not have been enough.
            if io > 0 {
                prop_assert!(iosd_for_io(io - 1, price).expect("fits") < iosd);
            }
        }
    }
}
