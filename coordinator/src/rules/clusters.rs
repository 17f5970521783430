//! Reserved clusters: a renter holds one slot on each of N providers for a
//! period and pays each member its reserve price (µIOSD per slot-hour) pro
//! rata by the millisecond, out of an escrow taken up front.
//!
//! The money of one member is three integers: its `budget` (the escrow
//! held for it: `⌊price × (ends − joined) / 1 h⌋`), what it was `paid`
//! so far, and — once it leaves — what its budget gave back. Accrual pays
//! `due(now) = ⌊price × served_ms / 1 h⌋ − paid`, so however often (or
//! seldom) it runs the member ends with exactly `⌊price × served / 1 h⌋`
//! and the flooring never accumulates. A member that leaves (offline,
//! release) is paid to that moment and the rest of its budget is released:
//! to a replacement no dearer than it (whose own budget for the remaining
//! time always fits in what was released, see [`replace`]), the difference
//! back to the renter. So `paid + refunded + escrow left == escrowed`
//! always, and after the end the escrow left is 0 (property-tested below).

use std::cmp::Ordering;
use std::collections::BTreeSet;

use assay_protocol::NodeId;

use crate::Error;

/// An hour of reservation, in ms (always a real hour: a devnet compresses
/// reward hours, not rented time).
pub const HOUR_MS: u64 = 3_600_000;
/// A provider that states no reserve price asks this much per slot-hour:
/// 1 IOSD, in µIOSD (about what a mid-range GPU rents for by the hour).
pub const DEFAULT_RESERVE_PRICE: u64 = 1_000_000;
/// The most providers one cluster reserves.
pub const MAX_GPUS: u32 = 64;
/// The longest a cluster is reserved (or extended) in one request: 30 days.
pub const MAX_HOURS: u32 = 24 * 30;
/// The longest a cluster runs in all, however often it is extended: a year.
pub const MAX_TOTAL_HOURS: u64 = 24 * 366;
/// The longest GPU class text a request may carry.
pub const MAX_CLASS_LEN: usize = 64;
/// Members are paid what they accrued at most this often (and at their
/// end), so a cluster writes a few ledger entries an hour, not one a tick.
pub const ACCRUE_EVERY_MS: u64 = 60_000;

/// What a renter asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Providers (one slot each).
    pub gpus: u32,
    /// `""` any, `"cpu"` CPU-only, otherwise a case-insensitive substring
    /// of one of the provider's GPU names.
    pub gpu_class: String,
    /// Least reliability, per mille.
    pub min_reliability_permille: u32,
    /// The most µIOSD per slot-hour paid to any member.
    pub max_price: u64,
}

/// Checks a request's numbers against the limits a stranger may ask for.
///
/// # Errors
///
/// [`Error::Invalid`] naming the limit.
pub fn validate(w: &Wanted, hours: u32) -> Result<(), Error> {
    if w.gpus == 0 || w.gpus > MAX_GPUS {
        return Err(Error::Invalid(format!(
            "--gpus {}: a cluster reserves 1 to {MAX_GPUS} providers",
            w.gpus
        )));
    }
    validate_hours(hours)?;
    if w.min_reliability_permille > 1000 {
        return Err(Error::Invalid(format!(
            "--min-reliability {}‰ is more than 1000‰",
            w.min_reliability_permille
        )));
    }
    if w.gpu_class.len() > MAX_CLASS_LEN || w.gpu_class.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "--gpu-class: at most {MAX_CLASS_LEN} printable characters"
        )));
    }
    if w.max_price == 0 {
        return Err(Error::Invalid(
            "--max-price 0: no provider reserves a slot for nothing".into(),
        ));
    }
    Ok(())
}

/// Checks a reservation's (or extension's) length.
///
/// # Errors
///
/// [`Error::Invalid`] outside 1..=[`MAX_HOURS`].
pub fn validate_hours(hours: u32) -> Result<(), Error> {
    if hours == 0 || hours > MAX_HOURS {
        return Err(Error::Invalid(format!(
            "--hours {hours}: reserve for 1 to {MAX_HOURS} hours at a time (extend for more)"
        )));
    }
    Ok(())
}

/// A provider as a cluster weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The provider.
    pub id: NodeId,
    /// Heard from within the liveness window.
    pub online: bool,
    /// Not suspended, and staked to its floor (else it is never hired).
    pub hireable: bool,
    /// Its GPUs' names (empty: a CPU-only provider).
    pub gpu_names: Vec<String>,
    /// Reliability, per mille ([`crate::rules::matching::reliability_permille`]).
    pub reliability_permille: u64,
    /// µIOSD per slot-hour.
    pub reserve_price: u64,
    /// Its slots not reserved by an active cluster.
    pub unreserved_slots: u32,
}

/// Whether a provider with these GPUs is of the class: `""` any, `"cpu"` a
/// CPU-only provider, otherwise a case-insensitive substring of a GPU name.
pub fn fits_class(class: &str, gpu_names: &[String]) -> bool {
    let class = class.trim();
    if class.is_empty() {
        return true;
    }
    if class.eq_ignore_ascii_case("cpu") {
        return gpu_names.is_empty();
    }
    let class = class.to_lowercase();
    gpu_names
        .iter()
        .any(|name| name.to_lowercase().contains(&class))
}

/// Whether the candidate may join a cluster that wants `w`, at a reserve
/// price of at most `price_cap`.
pub fn eligible(c: &Candidate, w: &Wanted, price_cap: u64) -> bool {
    c.online
        && c.hireable
        && c.unreserved_slots > 0
        && fits_class(&w.gpu_class, &c.gpu_names)
        && c.reliability_permille >= u64::from(w.min_reliability_permille)
        && c.reserve_price <= price_cap
}

/// Orders candidates best first: cheapest, then most reliable, then node id.
pub fn rank(a: &Candidate, b: &Candidate) -> Ordering {
    a.reserve_price
        .cmp(&b.reserve_price)
        .then(b.reliability_permille.cmp(&a.reliability_permille))
        .then(a.id.cmp(&b.id))
}

/// Up to `n` eligible candidates, best first, none of `exclude` (members
/// now or before: a provider holds at most one slot of a cluster).
pub fn choose<'a>(
    candidates: &'a [Candidate],
    w: &Wanted,
    price_cap: u64,
    exclude: &BTreeSet<NodeId>,
    n: usize,
) -> Vec<&'a Candidate> {
    let mut fit: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !exclude.contains(&c.id) && eligible(c, w, price_cap))
        .collect();
    fit.sort_by(|a, b| rank(a, b));
    fit.truncate(n);
    fit
}

/// Why fewer than `w.gpus` providers fit, in words for the renter.
pub fn why_short(candidates: &[Candidate], w: &Wanted) -> String {
    let online: Vec<&Candidate> = candidates.iter().filter(|c| c.online).collect();
    let class: Vec<&&Candidate> = online
        .iter()
        .filter(|c| fits_class(&w.gpu_class, &c.gpu_names))
        .collect();
    let reliable: Vec<&&&Candidate> = class
        .iter()
        .filter(|c| c.reliability_permille >= u64::from(w.min_reliability_permille))
        .collect();
    let priced = reliable
        .iter()
        .filter(|c| c.reserve_price <= w.max_price)
        .count();
    let free = candidates
        .iter()
        .filter(|c| eligible(c, w, w.max_price))
        .count();
    let class_name = if w.gpu_class.is_empty() {
        "any class".to_string()
    } else {
        format!("class {:?}", w.gpu_class)
    };
    format!(
        "only {free} of the {} wanted providers fit: {} online, {} of {class_name}, {} with reliability ≥ {}‰, \
         {priced} asking at most {} µIOSD/slot-hour, {free} of those with an unreserved slot and hireable \
         (staked, not suspended)",
        w.gpus,
        online.len(),
        class.len(),
        reliable.len(),
        w.min_reliability_permille,
        w.max_price
    )
}

/// `⌊price × ms / 1 h⌋`: what `ms` of a slot at `price` per hour is worth.
pub fn worth(price: u64, ms: u64) -> u64 {
    u64::try_from(u128::from(price) * u128::from(ms) / u128::from(HOUR_MS)).unwrap_or(u64::MAX)
}

/// `price × hours`, `None` on overflow (or past what the database keeps).
pub fn for_hours(price: u64, hours: u64) -> Option<u64> {
    price.checked_mul(hours).filter(|v| *v <= i64::MAX as u64)
}

/// The escrow of a cluster of members at `prices` for `hours`: Σ price × hours.
pub fn escrow(prices: &[u64], hours: u32) -> Option<u64> {
    prices.iter().try_fold(0u64, |sum, p| {
        sum.checked_add(for_hours(*p, u64::from(hours))?)
            .filter(|v| *v <= i64::MAX as u64)
    })
}

/// One member's terms and money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// µIOSD per slot-hour.
    pub price: u64,
    /// When it joined.
    pub joined_ms: u64,
    /// The escrow held for it: `⌊price × (ends − joined) / 1 h⌋`.
    pub budget: u64,
    /// Paid to it so far.
    pub paid: u64,
}

impl Member {
    /// A member joining at `joined_ms` a cluster that ends at `ends_ms`.
    pub fn join(price: u64, joined_ms: u64, ends_ms: u64) -> Member {
        Member {
            price,
            joined_ms,
            budget: worth(price, ends_ms.saturating_sub(joined_ms)),
            paid: 0,
        }
    }

    /// What it earned by `at_ms` (never past its budget).
    pub fn earned(&self, at_ms: u64) -> u64 {
        worth(self.price, at_ms.saturating_sub(self.joined_ms)).min(self.budget)
    }

    /// What is due to it at `now_ms` in a cluster that ends at `ends_ms`:
    /// `⌊price × served / 1 h⌋ − paid`.
    pub fn due(&self, now_ms: u64, ends_ms: u64) -> u64 {
        self.earned(now_ms.min(ends_ms)).saturating_sub(self.paid)
    }

    /// Pays what is due (the caller posts it); returns the amount.
    pub fn accrue(&mut self, now_ms: u64, ends_ms: u64) -> u64 {
        let due = self.due(now_ms, ends_ms);
        self.paid += due;
        due
    }

    /// The cluster was extended by `hours` (its end moved by whole hours):
    /// its budget grows by exactly `price × hours`. `None` on overflow.
    pub fn extend(&mut self, hours: u32) -> Option<u64> {
        let more = for_hours(self.price, u64::from(hours))?;
        self.budget = self.budget.checked_add(more)?;
        Some(more)
    }

    /// Ends its membership at `at_ms` (≤ the cluster's end): the last pay
    /// due, and what its budget releases.
    pub fn leave(&mut self, at_ms: u64, ends_ms: u64) -> Leaving {
        let pay = self.accrue(at_ms, ends_ms);
        let released = self.budget - self.paid;
        Leaving { pay, released }
    }
}

/// What a leaving member's settlement moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaving {
    /// Paid to it now (its last accrual).
    pub pay: u64,
    /// Its budget not earned: to a replacement or back to the renter.
    pub released: u64,
}

/// A replacement for a member that left at `at_ms`, releasing `released`:
/// it joins at `at_ms` at `price` (≤ the leaver's, which the caller's
/// choice guarantees); its budget comes out of what was released and the
/// rest goes back to the renter. Returns the new member and the refund.
///
/// Why it fits: the leaver's budget `⌊p·(e−j)⌋` less what it earned
/// `⌊p·(t−j)⌋` is at least `⌊p·(e−t)⌋`, which is at least the
/// replacement's `⌊p'·(e−t)⌋` when `p' ≤ p` (all over one hour).
pub fn replace(released: u64, price: u64, at_ms: u64, ends_ms: u64) -> (Member, u64) {
    let mut m = Member::join(price, at_ms, ends_ms);
    // Only a dearer replacement (which the caller never picks) could
    // exceed what was released; never hold more than there is.
    m.budget = m.budget.min(released);
    (m, released - m.budget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(b: u8) -> NodeId {
        NodeId([b; 32])
    }

    fn cand(b: u8, price: u64, rel: u64, gpus: &[&str]) -> Candidate {
        Candidate {
            id: node(b),
            online: true,
            hireable: true,
            gpu_names: gpus.iter().map(|s| (*s).to_string()).collect(),
            reliability_permille: rel,
            reserve_price: price,
            unreserved_slots: 1,
        }
    }

    fn wanted(gpus: u32, class: &str, rel: u32, max: u64) -> Wanted {
        Wanted {
            gpus,
            gpu_class: class.into(),
            min_reliability_permille: rel,
            max_price: max,
        }
    }

    #[test]
    fn a_class_is_any_cpu_or_a_gpu_name_substring() {
        let h100 = vec!["NVIDIA H100 80GB HBM3".to_string()];
        assert!(fits_class("", &h100));
        assert!(fits_class("", &[]));
        assert!(fits_class("cpu", &[]));
        assert!(fits_class("CPU", &[]));
        assert!(!fits_class("cpu", &h100));
        assert!(fits_class("h100", &h100));
        assert!(fits_class("H100 80GB", &h100));
        assert!(!fits_class("a100", &h100));
        assert!(!fits_class("h100", &[]));
    }

    #[test]
    fn members_are_the_cheapest_then_most_reliable_then_lowest_id_that_fit() {
        let mut offline = cand(1, 1, 900, &["H100"]);
        offline.online = false;
        let mut full = cand(2, 1, 900, &["H100"]);
        full.unreserved_slots = 0;
        let mut suspended = cand(3, 1, 900, &["H100"]);
        suspended.hireable = false;
        let all = vec![
            offline,
            full,
            suspended,
            cand(4, 5, 600, &["H100"]),
            cand(5, 5, 700, &["H100"]),
            cand(6, 3, 500, &["H100"]),
            cand(7, 3, 500, &["A100"]),
            cand(8, 9, 900, &["H100"]),
            cand(9, 2, 100, &["H100"]),
            cand(10, 11, 900, &["H100"]),
        ];
        let w = wanted(3, "h100", 400, 10);
        let got: Vec<NodeId> = choose(&all, &w, w.max_price, &BTreeSet::new(), 3)
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(got, vec![node(6), node(5), node(4)]);
        let exclude: BTreeSet<NodeId> = [node(6)].into();
        let got: Vec<NodeId> = choose(&all, &w, w.max_price, &exclude, 3)
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(got, vec![node(5), node(4), node(8)]);
        // A replacement asks no more than the member it replaces.
        assert!(choose(&all, &w, 4, &exclude, 1).is_empty());
        let why = why_short(&all, &wanted(5, "h100", 400, 10));
        assert!(why.contains("only 4 of the 5"), "{why}");
    }

    #[test]
    fn the_limits_refuse_what_a_stranger_should_not_ask() {
        assert!(validate(&wanted(1, "", 0, 1), 1).is_ok());
        assert!(validate(&wanted(0, "", 0, 1), 1).is_err());
        assert!(validate(&wanted(MAX_GPUS + 1, "", 0, 1), 1).is_err());
        assert!(validate(&wanted(1, "", 1001, 1), 1).is_err());
        assert!(validate(&wanted(1, "", 0, 0), 1).is_err());
        assert!(validate(&wanted(1, "", 0, 1), 0).is_err());
        assert!(validate(&wanted(1, "", 0, 1), MAX_HOURS + 1).is_err());
        assert!(validate(&wanted(1, &"x".repeat(65), 0, 1), 1).is_err());
    }

    #[test]
    fn accrual_is_pro_rata_by_the_millisecond_and_floors_once() {
        let mut m = Member::join(1_000_000, 0, 2 * HOUR_MS);
        assert_eq!(m.budget, 2_000_000);
        // 1 ms at 1 IOSD/h is 0.277… µIOSD: nothing yet, but not lost.
        assert_eq!(m.accrue(1, 2 * HOUR_MS), 0);
        assert_eq!(m.accrue(3_600, 2 * HOUR_MS), 1_000);
        assert_eq!(m.accrue(HOUR_MS, 2 * HOUR_MS), 999_000);
        // Past the end nothing more accrues.
        assert_eq!(m.accrue(10 * HOUR_MS, 2 * HOUR_MS), 1_000_000);
        assert_eq!(m.paid, m.budget);
        assert_eq!(escrow(&[3, 5], 4), Some(32));
        assert_eq!(escrow(&[u64::MAX, 1], 2), None);
    }

    #[test]
    fn a_leaver_is_paid_to_the_moment_and_a_cheaper_replacement_refunds_the_difference() {
        let ends = 10 * HOUR_MS;
        let mut m = Member::join(7_777, 0, ends);
        m.accrue(HOUR_MS / 3, ends);
        let l = m.leave(4 * HOUR_MS + 17, ends);
        assert_eq!(m.paid, worth(7_777, 4 * HOUR_MS + 17));
        assert_eq!(m.paid + l.released, m.budget);
        let (r, refund) = replace(l.released, 5_000, 4 * HOUR_MS + 17, ends);
        assert_eq!(r.budget, worth(5_000, ends - 4 * HOUR_MS - 17));
        assert_eq!(r.budget + refund, l.released);
    }

    /// A member's life in a simulated cluster: events in random order.
    #[derive(Debug, Clone)]
    enum Event {
        Tick(u64),
        Extend(u32),
        Drop {
            member: usize,
            replace_price: Option<u64>,
        },
        Release(u64),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            4 => (1u64..2 * HOUR_MS).prop_map(Event::Tick),
            1 => (1u32..5).prop_map(Event::Extend),
            2 => (0usize..4, proptest::option::of(0u64..=2_000_000))
                .prop_map(|(member, replace_price)| Event::Drop { member, replace_price }),
            1 => (0u64..HOUR_MS).prop_map(Event::Release),
        ]
    }

    proptest! {
        /// paid + refunded + escrow left == escrowed at every step, and
        /// once the cluster ends nothing is left in escrow.
        #[test]
        fn the_escrow_is_always_exactly_paid_refunded_or_held(
            prices in proptest::collection::vec(1u64..=2_000_000, 1..4),
            hours in 1u32..6,
            events in proptest::collection::vec(event(), 0..30),
        ) {
            let start = 1_000u64;
            let mut ends = start + u64::from(hours) * HOUR_MS;
            let mut escrowed = escrow(&prices, hours).expect("fits");
            let mut members: Vec<Member> = prices.iter().map(|p| Member::join(*p, start, ends)).collect();
            let mut left: Vec<Member> = Vec::new();
            let (mut paid, mut refunded) = (0u64, 0u64);
            let mut now = start;
            let mut ended = false;
            let held = |members: &[Member]| -> u64 { members.iter().map(|m| m.budget - m.paid).sum() };
            prop_assert_eq!(held(&members), escrowed);
            for e in events {
                if ended { break; }
                match e {
                    Event::Tick(dt) => {
                        now = (now + dt).min(ends);
                        for m in &mut members { paid += m.accrue(now, ends); }
                    }
                    Event::Extend(h) => {
                        ends += u64::from(h) * HOUR_MS;
                        for m in &mut members { escrowed += m.extend(h).expect("fits"); }
                    }
                    Event::Drop { member, replace_price } => {
                        if members.is_empty() { continue; }
                        let i = member % members.len();
                        let mut m = members.remove(i);
                        let l = m.leave(now, ends);
                        paid += l.pay;
                        match replace_price.filter(|p| *p <= m.price) {
                            Some(p) => {
                                let (r, refund) = replace(l.released, p, now, ends);
                                // A replacement no dearer always fits in full.
                                prop_assert_eq!(r.budget, worth(p, ends - now));
                                refunded += refund;
                                members.push(r);
                            }
                            None => refunded += l.released,
                        }
                        left.push(m);
                    }
                    Event::Release(dt) => {
                        now = (now + dt).min(ends);
                        for m in &mut members {
                            let l = m.leave(now, ends);
                            paid += l.pay;
                            refunded += l.released;
                        }
                        members.clear();
                        ended = true;
                    }
                }
                prop_assert_eq!(paid + refunded + held(&members), escrowed);
            }
            // Expiry: whoever is left is paid to the end.
            for m in &mut members {
                let l = m.leave(ends, ends);
                prop_assert_eq!(l.released, 0);
                paid += l.pay;
            }
            prop_assert_eq!(paid + refunded, escrowed);
            for m in left.iter().chain(&members) {
                prop_assert!(m.paid <= m.budget);
            }
        }

        /// However often accrual runs, a member ends with ⌊price × served⌋.
        #[test]
        fn accrual_in_any_steps_pays_the_same(
            price in 0u64..=10_000_000,
            steps in proptest::collection::vec(0u64..HOUR_MS, 0..20),
            served in 0u64..3 * HOUR_MS,
        ) {
            let ends = 3 * HOUR_MS;
            let mut m = Member::join(price, 0, ends);
            let mut t = 0;
            for s in steps {
                t = (t + s).min(served);
                m.accrue(t, ends);
            }
            m.accrue(served, ends);
            prop_assert_eq!(m.paid, worth(price, served));
        }
    }
}
