//! Tokenized compute: the arithmetic of claims on one device's earnings.
//!
//! Two kinds of claim are sold on a device (a provider node):
//!
//! - A **cash-flow note**: the device is cut into `shares` shares. For the
//!   note's term, each amount the device earns is split: `holders_bps` of it
//!   (by default [`NOTE_HOLDERS_BPS`], 90 %) goes to the share holders pro
//!   rata by shares held, the rest to the operator. The operator starts with
//!   every share and sells some; whatever shares it still holds are paid
//!   like anyone else's ([`split_note`]).
//! - A **bond**: buyers pay IOSD principal now; the device's IOSD earnings
//!   then pay, before the operator sees any of them, first the coupons owed
//!   over the bond's whole life, then into an escrow until it holds the
//!   principal ([`waterfall`]). At maturity a full escrow repays the holders;
//!   a short one, plus the device's whole stake, goes to the holders instead
//!   ([`mature`]).
//!
//! Everything here is integer arithmetic in base units (µIOSD for IOSD, µIO
//! for IO, both 6 decimals) with `u128` intermediates: no floats, no clock,
//! no I/O. Every function that divides an amount returns parts that sum to
//! exactly that amount, and says who takes the rounding remainder; the
//! property tests at the bottom check each sum, so the ledger postings built
//! from these parts balance.

use crate::Error;

/// The default part of a device's earnings that goes to its note's share
/// holders: 9000 basis points, 90 %. The rest (10 %, plus rounding dust) is
/// the operator's. A note may set another value (0..=10000); it is part of
/// the note's terms, fixed when the note is issued.
pub const NOTE_HOLDERS_BPS: u32 = 9_000;

/// Basis points in 100 %.
const BPS: u32 = 10_000;
/// The most shares a note may have.
const MAX_SHARES: u64 = 1_000_000_000;
/// The longest term (a note) or maturity (a bond): ten years.
const MAX_DAYS: u32 = 3_650;
/// Milliseconds in a day.
const DAY_MS: u64 = 86_400_000;
/// Days in a coupon year.
const YEAR_DAYS: u128 = 365;
/// The largest amount the ledger holds (its columns are `i64`).
const MAX_AMOUNT: u64 = i64::MAX as u64;

/// `a × b` as a 256-bit number `(high, low)`, built from 64-bit halves so
/// that nothing overflows.
fn widening_mul(a: u128, b: u128) -> (u128, u128) {
    const LOW: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & LOW);
    let (b1, b0) = (b >> 64, b & LOW);
    let ll = a0 * b0;
    let lh = a0 * b1;
    let hl = a1 * b0;
    let hh = a1 * b1;
    // Each term is below 2^64, so the sum is below 3 × 2^64.
    let mid = (ll >> 64) + (lh & LOW) + (hl & LOW);
    let low = (ll & LOW) | ((mid & LOW) << 64);
    let high = hh + (lh >> 64) + (hl >> 64) + (mid >> 64);
    (high, low)
}

/// `floor(a × b / c)`, exact even when `a × b` does not fit in `u128`.
///
/// The caller ensures `c > 0` and that the quotient fits in `u128` (here it
/// always does: every call has `b <= c`, so the quotient is at most `a`).
/// The common case is one multiplication and one division; only a product
/// above 2^128 takes the bit-by-bit long division.
fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    debug_assert!(c > 0);
    if let Some(product) = a.checked_mul(b) {
        return product / c;
    }
    let (high, low) = widening_mul(a, b);
    let mut quotient: u128 = 0;
    let mut rem: u128 = 0;
    for i in (0..256u32).rev() {
        let bit = if i >= 128 {
            (high >> (i - 128)) & 1
        } else {
            (low >> i) & 1
        };
        // rem < c, so 2·rem + bit < 2c; when it overflows u128 it is above c,
        // and the wrapping subtraction lands on the true value (< c).
        let carry = rem >> 127;
        rem = (rem << 1) | bit;
        if carry == 1 || rem >= c {
            rem = rem.wrapping_sub(c);
            if i < 128 {
                quotient |= 1 << i;
            }
        }
    }
    quotient
}

/// The sum of `values`, in `u128` so that it cannot overflow.
fn sum(values: &[u64]) -> u128 {
    values.iter().map(|v| u128::from(*v)).sum()
}

// ---------------------------------------------------------------------------
// Cash-flow notes
// ---------------------------------------------------------------------------

/// How one amount a device earned divides under its note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSplit {
    /// Each holder's part, in the order the holdings were given.
    pub holders: Vec<u64>,
    /// The operator's part: its `10000 − holders_bps` plus every holder's
    /// rounding dust. When the operator also holds shares, its entry in
    /// `holders` is paid on top of this.
    pub operator: u64,
}

/// Splits `amount` (one payment the device earned) under a note of
/// `total_shares` shares that pays `holders_bps` to its holders.
///
/// Each holder gets `floor(amount × holders_bps × shares / (10000 ×
/// total_shares))`, its exact pro-rata part rounded down, so it is never
/// paid more than it is owed and at most 1 base unit less. The operator
/// gets the rest: `amount − Σ holders`. `Σ holders + operator == amount`.
///
/// `holdings` are the shares of each holder, the operator included when it
/// still holds some (it then gets that entry as well as `operator`).
///
/// # Errors
///
/// [`Error::Invalid`] when `total_shares` is 0, `holders_bps` is above
/// 10000, or the holdings do not add up to `total_shares` (a caller that
/// read the holdings while a transfer was half done).
pub fn split_note(
    amount: u64,
    holders_bps: u32,
    holdings: &[u64],
    total_shares: u64,
) -> Result<NoteSplit, Error> {
    if total_shares == 0 {
        return Err(Error::Invalid(
            "a note has at least 1 share: issue it with --shares 1 or more".into(),
        ));
    }
    if holders_bps > BPS {
        return Err(Error::Invalid(format!(
            "the holders' part of a note is at most 10000 bps (100 %), not {holders_bps}: pick 0 to 10000"
        )));
    }
    let held = sum(holdings);
    if held != u128::from(total_shares) {
        return Err(Error::Invalid(format!(
            "the holdings add up to {held} shares but the note has {total_shares}: re-read the holdings and retry"
        )));
    }
    // amount × bps < 2^78 and 10000 × total < 2^78; shares <= total, so each
    // part is at most amount × bps / 10000 <= amount and fits in u64.
    let pool = u128::from(amount) * u128::from(holders_bps);
    let denominator = u128::from(BPS) * u128::from(total_shares);
    let holders: Vec<u64> = holdings
        .iter()
        .map(|shares| {
            let part = mul_div(pool, u128::from(*shares), denominator);
            u64::try_from(part).unwrap_or(amount).min(amount)
        })
        .collect();
    // Σ floor(x_i) <= floor(Σ x_i) = floor(amount × bps / 10000) <= amount.
    let paid = holders.iter().fold(0u64, |acc, p| acc.saturating_add(*p));
    Ok(NoteSplit {
        holders,
        operator: amount.saturating_sub(paid),
    })
}

/// When a note issued at `issued_at_ms` (Unix milliseconds) for `term_days`
/// days ends; `None` when that overflows (a caller's bad input). Earnings
/// at or after this instant are the operator's alone. Serves a bond's
/// maturity date too.
pub fn note_term_end(issued_at_ms: u64, term_days: u32) -> Option<u64> {
    u64::from(term_days)
        .checked_mul(DAY_MS)
        .and_then(|term| issued_at_ms.checked_add(term))
}

/// Checks a note's terms before it is issued.
///
/// # Errors
///
/// [`Error::Invalid`] unless `shares` is 1..=1 000 000 000, `term_days` is
/// 1..=3650 (ten years) and `holders_bps` is at most 10000.
pub fn validate_note(shares: u64, term_days: u32, holders_bps: u32) -> Result<(), Error> {
    if !(1..=MAX_SHARES).contains(&shares) {
        return Err(Error::Invalid(format!(
            "a note has 1 to {MAX_SHARES} shares, not {shares}: pick a share count in that range"
        )));
    }
    if !(1..=MAX_DAYS).contains(&term_days) {
        return Err(Error::Invalid(format!(
            "a note's term is 1 to {MAX_DAYS} days, not {term_days}: pick a term in that range"
        )));
    }
    if holders_bps > BPS {
        return Err(Error::Invalid(format!(
            "the holders' part of a note is at most 10000 bps (100 %), not {holders_bps}: pick 0 to 10000"
        )));
    }
    Ok(())
}

/// What a buyer pays for `shares` shares at `price_per_share`.
///
/// # Errors
///
/// [`Error::Invalid`] when the total is above what the ledger holds
/// (`i64::MAX` base units).
pub fn share_price_total(price_per_share: u64, shares: u64) -> Result<u64, Error> {
    price_per_share
        .checked_mul(shares)
        .filter(|total| *total <= MAX_AMOUNT)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{shares} shares at {price_per_share} each overflow: buy fewer shares or lower the price"
            ))
        })
}

// ---------------------------------------------------------------------------
// Bonds
// ---------------------------------------------------------------------------

/// The total coupon a bond of `principal` at `coupon_bps` a year owes over
/// `maturity_days`: `floor(principal × coupon_bps × maturity_days / (10000
/// × 365))`, simple interest, rounded down once (in the issuer's favour by
/// less than 1 base unit).
///
/// # Errors
///
/// [`Error::Invalid`] when the total is above what the ledger holds
/// (`i64::MAX` base units).
pub fn coupon_total(principal: u64, coupon_bps: u32, maturity_days: u32) -> Result<u64, Error> {
    // < 2^64 × 2^32 × 2^32: fits in u128.
    let owed = u128::from(principal) * u128::from(coupon_bps) * u128::from(maturity_days)
        / (u128::from(BPS) * YEAR_DAYS);
    u64::try_from(owed)
        .ok()
        .filter(|owed| *owed <= MAX_AMOUNT)
        .ok_or_else(|| {
            Error::Invalid(
                "the bond's total coupon overflows: lower the principal, the coupon or the maturity"
                    .into(),
            )
        })
}

/// Where a bond stands: what it raised, what it owes and what it has paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BondState {
    /// The principal sold (µIOSD): what the holders paid, what they are owed
    /// back at maturity.
    pub principal: u64,
    /// The coupon owed over the bond's whole life ([`coupon_total`]).
    pub coupon_total: u64,
    /// The coupon paid so far.
    pub coupon_paid: u64,
    /// What the principal escrow holds so far.
    pub escrowed: u64,
}

impl BondState {
    /// The coupon still owed (0 once all is paid).
    pub fn coupon_owed(&self) -> u64 {
        self.coupon_total.saturating_sub(self.coupon_paid)
    }

    /// What the escrow still lacks to hold the principal (0 once full).
    pub fn escrow_needed(&self) -> u64 {
        self.principal.saturating_sub(self.escrowed)
    }
}

/// How one IOSD amount the device earned divides under its bond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waterfall {
    /// To the holders as coupon (the caller splits it with [`pro_rata`]).
    pub coupon: u64,
    /// Into the principal escrow.
    pub escrow: u64,
    /// What is left: the operator's, or the note's to split
    /// ([`split_note`]), as the caller decides.
    pub rest: u64,
}

/// Runs `amount` through bond `b`'s waterfall: first the coupon still owed,
/// then the escrow until it holds the principal, then the rest.
///
/// Never pays more coupon than is owed nor escrows beyond the principal;
/// `coupon + escrow + rest == amount`. The caller adds `coupon` to
/// `coupon_paid` and `escrow` to `escrowed` before the next amount.
pub fn waterfall(amount: u64, b: &BondState) -> Waterfall {
    let coupon = amount.min(b.coupon_owed());
    let after_coupon = amount - coupon;
    let escrow = after_coupon.min(b.escrow_needed());
    Waterfall {
        coupon,
        escrow,
        rest: after_coupon - escrow,
    }
}

/// Divides `amount` among holders in proportion to `weights` (e.g. the
/// principal each holds): each gets `floor(amount × weight / Σ weights)`,
/// and the rounding remainder (less than the number of holders) goes to the
/// first holder with a non-zero weight. The result has one entry per weight
/// and sums to `amount`.
///
/// When the weights sum to 0 (no holders, or all hold nothing) there is no
/// one to pay: every entry is 0 and the parts do NOT sum to `amount`. The
/// caller must check `Σ weights > 0` before distributing, and keep the
/// amount otherwise.
pub fn pro_rata(amount: u64, weights: &[u64]) -> Vec<u64> {
    let total = sum(weights);
    if total == 0 {
        return vec![0; weights.len()];
    }
    // weight <= total, so each part is at most amount.
    let mut parts: Vec<u64> = weights
        .iter()
        .map(|w| {
            let part = mul_div(u128::from(amount), u128::from(*w), total);
            u64::try_from(part).unwrap_or(amount).min(amount)
        })
        .collect();
    let paid = parts.iter().fold(0u64, |acc, p| acc.saturating_add(*p));
    let remainder = amount.saturating_sub(paid);
    if let Some(first) = weights.iter().position(|w| *w > 0) {
        parts[first] += remainder;
    }
    parts
}

/// What a bond does at maturity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Maturity {
    /// The escrow holds the principal: each holder gets back the principal
    /// it holds (µIOSD, from the escrow), in the order given.
    Repaid {
        /// Each holder's repayment; sums to the principal.
        to_holders: Vec<u64>,
    },
    /// The escrow is short: the holders take all of it and the device's
    /// whole stake, each pro rata by principal held.
    Default {
        /// Each holder's part of the escrow (µIOSD); sums to `escrowed`.
        escrow_to_holders: Vec<u64>,
        /// Each holder's part of the stake (µIO); sums to the stake.
        stake_to_holders: Vec<u64>,
        /// What the escrow lacked: `principal − escrowed` (µIOSD).
        shortfall: u64,
    },
}

/// Matures bond `b`, whose holders hold `holdings` of principal each and
/// whose device has `stake` µIO staked.
///
/// When the escrow holds the principal the bond is repaid: each holder gets
/// exactly what it holds. The waterfall never escrows beyond the principal;
/// were the escrow to hold more anyway, the surplus (`escrowed −
/// principal`) is not the holders' and the caller keeps it (returns it to
/// the operator). Otherwise the bond defaults: the holders split the escrow
/// and the whole stake pro rata ([`pro_rata`]: the first holder with
/// principal takes each rounding remainder), and `shortfall` says what they
/// lost in IOSD.
///
/// # Errors
///
/// [`Error::Invalid`] when `holdings` do not add up to `b.principal`.
pub fn mature(b: &BondState, holdings: &[u64], stake: u64) -> Result<Maturity, Error> {
    let held = sum(holdings);
    if held != u128::from(b.principal) {
        return Err(Error::Invalid(format!(
            "the holdings add up to {held} µIOSD but the bond's principal is {}: re-read the holdings and retry",
            b.principal
        )));
    }
    if b.escrowed >= b.principal {
        // Pro rata of the principal by principal held is each holding itself.
        return Ok(Maturity::Repaid {
            to_holders: holdings.to_vec(),
        });
    }
    // escrowed < principal, so principal > 0 and the weights sum above 0:
    // both splits sum exactly.
    Ok(Maturity::Default {
        escrow_to_holders: pro_rata(b.escrowed, holdings),
        stake_to_holders: pro_rata(stake, holdings),
        shortfall: b.principal - b.escrowed,
    })
}

/// Checks a bond's terms before it is issued, including that its total
/// coupon fits in the ledger.
///
/// # Errors
///
/// [`Error::Invalid`] unless `principal` is 1..=`i64::MAX`, `coupon_bps` is
/// at most 10000 (100 % a year), `maturity_days` is 1..=3650 (ten years),
/// and [`coupon_total`] does not overflow.
pub fn validate_bond(principal: u64, coupon_bps: u32, maturity_days: u32) -> Result<(), Error> {
    if !(1..=MAX_AMOUNT).contains(&principal) {
        return Err(Error::Invalid(format!(
            "a bond's principal is 1 to {MAX_AMOUNT} µIOSD, not {principal}: pick a principal in that range"
        )));
    }
    if coupon_bps > BPS {
        return Err(Error::Invalid(format!(
            "a bond's coupon is at most 10000 bps (100 %) a year, not {coupon_bps}: pick 0 to 10000"
        )));
    }
    if !(1..=MAX_DAYS).contains(&maturity_days) {
        return Err(Error::Invalid(format!(
            "a bond's maturity is 1 to {MAX_DAYS} days, not {maturity_days}: pick a maturity in that range"
        )));
    }
    coupon_total(principal, coupon_bps, maturity_days).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sum128(values: &[u64]) -> u128 {
        values.iter().map(|v| u128::from(*v)).sum()
    }

    #[test]
    fn a_note_pays_its_holders_90_percent_pro_rata_and_the_operator_the_rest() {
        // 1 000 000 µIOSD, 100 shares held 60/40 by two buyers; the operator
        // holds none.
        let s = split_note(1_000_000, NOTE_HOLDERS_BPS, &[60, 40], 100).expect("split");
        assert_eq!(
            s,
            NoteSplit {
                holders: vec![540_000, 360_000],
                operator: 100_000
            }
        );
        // The operator kept 50 of 100 shares (first entry): it gets 450 as a
        // holder plus 101 as operator (100 + 1 of rounding dust).
        let s = split_note(1_001, NOTE_HOLDERS_BPS, &[50, 30, 20], 100).expect("split");
        assert_eq!(
            s,
            NoteSplit {
                holders: vec![450, 270, 180],
                operator: 101
            }
        );
        // 100 % to holders, one holder: it gets everything.
        let s = split_note(7, 10_000, &[3], 3).expect("split");
        assert_eq!((s.holders, s.operator), (vec![7], 0));
        // 0 % to holders: the operator gets everything.
        let s = split_note(7, 0, &[1, 2], 3).expect("split");
        assert_eq!((s.holders, s.operator), (vec![0, 0], 7));
    }

    #[test]
    fn a_note_split_refuses_bad_inputs() {
        assert!(matches!(
            split_note(1, 9_000, &[], 0),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            split_note(1, 10_001, &[1], 1),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            split_note(1, 9_000, &[60, 30], 100),
            Err(Error::Invalid(_))
        ));
        // Holdings whose sum overflows u64 are compared in u128, not wrapped.
        assert!(matches!(
            split_note(1, 9_000, &[u64::MAX, 2], 1),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn note_terms_and_share_sales_are_checked() {
        assert_eq!(note_term_end(1_000, 1), Some(86_401_000));
        assert_eq!(note_term_end(0, 3_650), Some(3_650 * 86_400_000));
        assert_eq!(note_term_end(u64::MAX, 1), None);
        assert_eq!(note_term_end(u64::MAX, 0), Some(u64::MAX));

        assert!(validate_note(100, 365, NOTE_HOLDERS_BPS).is_ok());
        assert!(validate_note(1, 1, 0).is_ok());
        assert!(validate_note(1_000_000_000, 3_650, 10_000).is_ok());
        for (shares, days, bps) in [
            (0, 365, 9_000),
            (1_000_000_001, 365, 9_000),
            (100, 0, 9_000),
            (100, 3_651, 9_000),
            (100, 365, 10_001),
        ] {
            assert!(
                matches!(validate_note(shares, days, bps), Err(Error::Invalid(_))),
                "{shares} {days} {bps}"
            );
        }

        assert_eq!(share_price_total(3, 4).expect("total"), 12);
        assert_eq!(share_price_total(5, 0).expect("total"), 0);
        assert_eq!(
            share_price_total(i64::MAX as u64, 1).expect("total"),
            i64::MAX as u64
        );
        assert!(matches!(
            share_price_total(i64::MAX as u64 + 1, 1),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            share_price_total(u64::MAX, 2),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn a_bond_owes_simple_interest_rounded_down() {
        // 1 000 µIOSD at 10 % a year for a year: 100.
        assert_eq!(coupon_total(1_000, 1_000, 365).expect("coupon"), 100);
        // For 180 days: 49.31… → 49.
        assert_eq!(coupon_total(1_000, 1_000, 180).expect("coupon"), 49);
        assert_eq!(coupon_total(1_000, 0, 365).expect("coupon"), 0);
        // Ten years at 100 % of i64::MAX: ten times what the ledger holds.
        assert!(matches!(
            coupon_total(i64::MAX as u64, 10_000, 3_650),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn the_waterfall_pays_coupon_then_escrow_then_the_rest() {
        let mut b = BondState {
            principal: 1_000,
            coupon_total: coupon_total(1_000, 1_000, 365).expect("coupon"),
            coupon_paid: 0,
            escrowed: 0,
        };
        let mut apply = |amount: u64| {
            let w = waterfall(amount, &b);
            b.coupon_paid += w.coupon;
            b.escrowed += w.escrow;
            w
        };
        assert_eq!(
            apply(50),
            Waterfall {
                coupon: 50,
                escrow: 0,
                rest: 0
            }
        );
        assert_eq!(
            apply(100),
            Waterfall {
                coupon: 50,
                escrow: 50,
                rest: 0
            }
        );
        assert_eq!(
            apply(2_000),
            Waterfall {
                coupon: 0,
                escrow: 950,
                rest: 1_050
            }
        );
        assert_eq!(
            apply(10),
            Waterfall {
                coupon: 0,
                escrow: 0,
                rest: 10
            }
        );
        assert_eq!((b.coupon_paid, b.escrowed), (100, 1_000));
    }

    #[test]
    fn pro_rata_gives_the_remainder_to_the_first_real_holder() {
        assert_eq!(pro_rata(10, &[0, 1, 1, 1]), vec![0, 4, 3, 3]);
        assert_eq!(pro_rata(100, &[600, 400]), vec![60, 40]);
        assert_eq!(pro_rata(10, &[0, 0]), vec![0, 0]);
        assert_eq!(pro_rata(10, &[]), Vec::<u64>::new());
        assert_eq!(pro_rata(u64::MAX, &[u64::MAX, u64::MAX]).len(), 2);
        assert_eq!(
            sum128(&pro_rata(u64::MAX, &[u64::MAX, u64::MAX, 1])),
            u128::from(u64::MAX)
        );
    }

    #[test]
    fn a_full_escrow_repays_and_a_short_one_defaults_with_the_stake() {
        let full = BondState {
            principal: 1_000,
            coupon_total: 100,
            coupon_paid: 100,
            escrowed: 1_000,
        };
        assert_eq!(
            mature(&full, &[600, 400], 3).expect("mature"),
            Maturity::Repaid {
                to_holders: vec![600, 400]
            }
        );
        let short = BondState {
            escrowed: 500,
            ..full
        };
        assert_eq!(
            mature(&short, &[600, 400], 3).expect("mature"),
            Maturity::Default {
                escrow_to_holders: vec![300, 200],
                // 1.8 and 1.2 round down to 1 and 1; the first takes the 1 left.
                stake_to_holders: vec![2, 1],
                shortfall: 500,
            }
        );
        assert!(matches!(
            mature(&full, &[600, 300], 3),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn bond_terms_are_checked() {
        assert!(validate_bond(1_000, 1_000, 365).is_ok());
        assert!(validate_bond(1, 0, 1).is_ok());
        // A large principal whose ten-year coupon still fits.
        assert!(validate_bond(i64::MAX as u64 / 20, 10_000, 3_650).is_ok());
        for (principal, bps, days) in [
            (0, 1_000, 365),
            (i64::MAX as u64 + 1, 1_000, 365),
            (1_000, 10_001, 365),
            (1_000, 1_000, 0),
            (1_000, 1_000, 3_651),
            (i64::MAX as u64, 10_000, 3_650),
        ] {
            assert!(
                matches!(validate_bond(principal, bps, days), Err(Error::Invalid(_))),
                "{principal} {bps} {days}"
            );
        }
    }

    #[test]
    fn mul_div_is_exact_past_u128() {
        assert_eq!(widening_mul(1 << 127, 2), (1, 0));
        assert_eq!(widening_mul(u128::MAX, u128::MAX), (u128::MAX - 1, 1));
        assert_eq!(mul_div(u128::MAX, 3, 3), u128::MAX);
        assert_eq!(mul_div(1 << 100, 1 << 100, 1 << 80), 1 << 120);
        assert_eq!(mul_div(u128::MAX, u128::MAX - 1, u128::MAX), u128::MAX - 1);
    }

    /// Holdings whose sum fits in u64 and is above 0.
    fn holdings(max: u64) -> impl Strategy<Value = Vec<u64>> {
        proptest::collection::vec(0u64..=max, 1..8)
            .prop_filter("some shares", |h| h.iter().any(|s| *s > 0))
    }

    proptest! {
        #[test]
        fn mul_div_floors_the_exact_quotient(
            a: u128,
            b: u128,
            extra: u128,
        ) {
            // c >= b keeps the quotient at most a.
            let c = b.saturating_add(extra).max(1);
            let q = mul_div(a, b, c);
            prop_assert!(q <= a);
            let product = widening_mul(a, b);
            prop_assert!(widening_mul(q, c) <= product);
            if let Some(next) = q.checked_add(1) {
                prop_assert!(widening_mul(next, c) > product);
            }
        }

        #[test]
        fn note_parts_sum_to_the_amount_and_floor_each_exact_share(
            amount: u64,
            bps in 0u32..=10_000,
            held in holdings(1 << 40),
        ) {
            let total = held.iter().sum::<u64>();
            let s = split_note(amount, bps, &held, total).expect("split");
            prop_assert_eq!(s.holders.len(), held.len());
            prop_assert_eq!(sum128(&s.holders) + u128::from(s.operator), u128::from(amount));
            // The operator gets at least its own part.
            let pool = u128::from(amount) * u128::from(bps) / 10_000;
            prop_assert!(u128::from(s.operator) >= u128::from(amount) - pool);
            for (part, shares) in s.holders.iter().zip(&held) {
                // part <= exact < part + 1, with exact = amount·bps·shares / (10000·total):
                // everything below 2^64 · 2^14 · 2^43 fits in u128.
                let exact_num = u128::from(amount) * u128::from(bps) * u128::from(*shares);
                let den = 10_000 * u128::from(total);
                prop_assert!(u128::from(*part) * den <= exact_num);
                prop_assert!((u128::from(*part) + 1) * den > exact_num);
                if *shares == 0 {
                    prop_assert_eq!(*part, 0);
                }
            }
        }

        #[test]
        fn note_parts_sum_to_the_amount_for_any_share_counts(
            amount: u64,
            bps in 0u32..=10_000,
            held in holdings(u64::MAX / 8),
        ) {
            let total = held.iter().sum::<u64>();
            let s = split_note(amount, bps, &held, total).expect("split");
            prop_assert_eq!(sum128(&s.holders) + u128::from(s.operator), u128::from(amount));
            for (part, shares) in s.holders.iter().zip(&held) {
                if *shares == 0 {
                    prop_assert_eq!(*part, 0);
                }
            }
        }

        #[test]
        fn pro_rata_sums_to_the_amount_when_anyone_holds(
            amount: u64,
            weights in proptest::collection::vec(any::<u64>(), 0..8),
        ) {
            let parts = pro_rata(amount, &weights);
            prop_assert_eq!(parts.len(), weights.len());
            if weights.iter().any(|w| *w > 0) {
                prop_assert_eq!(sum128(&parts), u128::from(amount));
                let first = weights.iter().position(|w| *w > 0).unwrap_or(0);
                let total = sum128(&weights);
                for (i, (part, w)) in parts.iter().zip(&weights).enumerate() {
                    if *w == 0 {
                        prop_assert_eq!(*part, 0);
                    } else if i != first {
                        // Everyone but the first is paid its share rounded down.
                        prop_assert_eq!(
                            u128::from(*part),
                            mul_div(u128::from(amount), u128::from(*w), total)
                        );
                    }
                }
            } else {
                prop_assert!(parts.iter().all(|p| *p == 0));
            }
        }

        #[test]
        fn a_waterfall_sums_to_the_amount_and_fills_in_order(
            amount: u64,
            principal: u64,
            coupon_total: u64,
            coupon_paid: u64,
            escrowed: u64,
        ) {
            let b = BondState { principal, coupon_total, coupon_paid, escrowed };
            let w = waterfall(amount, &b);
            prop_assert_eq!(
                u128::from(w.coupon) + u128::from(w.escrow) + u128::from(w.rest),
                u128::from(amount)
            );
            prop_assert!(w.coupon <= b.coupon_owed());
            prop_assert!(w.escrow <= b.escrow_needed());
            if w.escrow > 0 {
                prop_assert_eq!(w.coupon, b.coupon_owed());
            }
            if w.rest > 0 {
                prop_assert_eq!(w.coupon, b.coupon_owed());
                prop_assert_eq!(w.escrow, b.escrow_needed());
            }
        }

        #[test]
        fn a_run_of_earnings_never_overpays_a_bond(
            principal in 1u64..=1_000_000_000_000,
            coupon_bps in 0u32..=10_000,
            days in 1u32..=3_650,
            earnings in proptest::collection::vec(0u64..=1_000_000_000_000, 0..16),
        ) {
            let mut b = BondState {
                principal,
                coupon_total: coupon_total(principal, coupon_bps, days).expect("coupon"),
                coupon_paid: 0,
                escrowed: 0,
            };
            let mut rest = 0u128;
            for amount in &earnings {
                let w = waterfall(*amount, &b);
                b.coupon_paid += w.coupon;
                b.escrowed += w.escrow;
                rest += u128::from(w.rest);
                prop_assert!(b.coupon_paid <= b.coupon_total);
                prop_assert!(b.escrowed <= b.principal);
            }
            prop_assert_eq!(
                u128::from(b.coupon_paid) + u128::from(b.escrowed) + rest,
                sum128(&earnings)
            );
        }

        #[test]
        fn maturity_splits_sum_to_what_they_divide(
            held in holdings(u64::MAX / 8),
            escrow_fraction in 0u64..=1_200,
            stake: u64,
        ) {
            let principal = held.iter().sum::<u64>();
            // 0 % to 120 % of the principal (above 100 % is not reachable by
            // the waterfall, but must still repay).
            let escrowed = u64::try_from(
                u128::from(principal) * u128::from(escrow_fraction) / 1_000
            ).unwrap_or(u64::MAX);
            let b = BondState { principal, coupon_total: 0, coupon_paid: 0, escrowed };
            match mature(&b, &held, stake).expect("mature") {
                Maturity::Repaid { to_holders } => {
                    prop_assert!(escrowed >= principal);
                    prop_assert_eq!(&to_holders, &held);
                }
                Maturity::Default { escrow_to_holders, stake_to_holders, shortfall } => {
                    prop_assert!(escrowed < principal);
                    prop_assert_eq!(sum128(&escrow_to_holders), u128::from(escrowed));
                    prop_assert_eq!(sum128(&stake_to_holders), u128::from(stake));
                    prop_assert_eq!(shortfall, principal - escrowed);
                    prop_assert_eq!(escrow_to_holders.len(), held.len());
                    prop_assert_eq!(stake_to_holders.len(), held.len());
                }
            }
        }
    }
}
