//! A receipt's check: its state transitions, what a verdict decides, and
//! who may answer a check. The diagram is [`crate::store::checks`]'s; this
//! module is its arithmetic, without SQL.

use assay_protocol::challenge::VERIFIER_FLOOR_MFLOPS;
use assay_protocol::verification::{assignment_rank, required_stake};
use assay_protocol::{Hash32, NodeId};

use crate::Error;
use crate::config::MarketConfig;
use crate::state::{CheckReason, CheckRole, CheckState, CheckStatus};
use crate::types::{Decision, ReceiptRecord};

/// What happens to a receipt's check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckEvent {
    /// Its epoch's seed was revealed: drawn or not.
    Revealed {
        /// The seed drew it.
        drawn: bool,
    },
    /// Its provider was proven to cheat: every unsettled receipt is checked.
    Audited,
    /// A verdict decided.
    Decided(Decision),
}

/// The check state and reason of a receipt when it is recorded: a hardware
/// challenge and a suspended provider's receipts are always checked; a job
/// at rate 0 is never; the rest wait for their epoch's seed.
pub fn initial(
    rate_ppm: u32,
    provider_suspended: bool,
    challenge: bool,
) -> (CheckState, Option<CheckReason>) {
    match (rate_ppm, provider_suspended) {
        _ if challenge => (CheckState::Sampled, Some(CheckReason::Challenge)),
        (_, true) => (CheckState::Sampled, Some(CheckReason::Audit)),
        (0, false) => (CheckState::Unverified, None),
        (_, false) => (CheckState::Pending, None),
    }
}

/// The state after `event`, or `None` when `event` cannot happen in `from`.
pub fn transition(from: CheckState, event: CheckEvent) -> Option<CheckState> {
    use CheckState::*;
    match (from, event) {
        (Pending, CheckEvent::Revealed { drawn: true }) => Some(Sampled),
        (Pending, CheckEvent::Revealed { drawn: false }) => Some(NotSampled),
        (Pending | NotSampled, CheckEvent::Audited) => Some(Sampled),
        (Sampled, CheckEvent::Decided(d)) => match d {
            Decision::Verified | Decision::Disputed | Decision::Rechecking => Some(d.check_state()),
            _ => None,
        },
        (Disputed, CheckEvent::Decided(d)) => match d {
            Decision::Overruled | Decision::Rejected | Decision::BothWrong => Some(d.check_state()),
            _ => None,
        },
        (Rechecking, CheckEvent::Decided(d)) => match d {
            Decision::Confirmed | Decision::Colluded => Some(d.check_state()),
            _ => None,
        },
        _ => None,
    }
}

/// States whose receipts settle when the challenge window ends (the
/// store's `settle_due` selects exactly these).
pub fn settles_after_window(state: CheckState) -> bool {
    matches!(state, CheckState::Unverified | CheckState::NotSampled)
}

/// What a verdict decides. `agrees`: the verdict's result equals the
/// receipt's; `same_as_first`: for an arbitration, whether the arbiter's
/// result equals the disputing verifier's; `recheck_drawn`: for a first
/// agreeing verdict, whether the agreement was drawn for a re-check.
pub fn decide(
    role: CheckRole,
    agrees: bool,
    same_as_first: impl FnOnce() -> bool,
    recheck_drawn: impl FnOnce() -> bool,
) -> Decision {
    match (role, agrees) {
        (CheckRole::Verify, true) if recheck_drawn() => Decision::Rechecking,
        (CheckRole::Verify, true) => Decision::Verified,
        (CheckRole::Verify, false) => Decision::Disputed,
        (CheckRole::Referee, true) => Decision::Overruled,
        (CheckRole::Referee, false) if same_as_first() => Decision::Rejected,
        (CheckRole::Referee, false) => Decision::BothWrong,
        (CheckRole::Recheck, true) => Decision::Confirmed,
        (CheckRole::Recheck, false) => Decision::Colluded,
    }
}

/// Who may take a check of `role`: disputes and re-checks are the
/// arbiters' alone (a count of verifiers never decides one); first checks
/// go to staked verifiers that are not arbiters, so arbiters stay free to
/// arbitrate.
pub fn may_take(role: CheckRole, is_arbiter: bool) -> bool {
    match role {
        CheckRole::Verify => !is_arbiter,
        CheckRole::Referee | CheckRole::Recheck => is_arbiter,
    }
}

impl Decision {
    /// The receipt's check state after this decision.
    pub fn check_state(self) -> CheckState {
        match self {
            Decision::Verified | Decision::Overruled | Decision::Confirmed => CheckState::Verified,
            Decision::Disputed => CheckState::Disputed,
            Decision::Rechecking => CheckState::Rechecking,
            Decision::Rejected | Decision::BothWrong | Decision::Colluded => CheckState::Rejected,
        }
    }

    /// The receipt is paid (provider and verifier).
    pub fn pays(self) -> bool {
        matches!(
            self,
            Decision::Verified | Decision::Overruled | Decision::Confirmed
        )
    }

    /// The check is over (nothing more is re-run for this receipt).
    pub fn is_final(self) -> bool {
        !matches!(self, Decision::Disputed | Decision::Rechecking)
    }
}

/// A verifier as the assignment sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierSlot {
    /// Its key.
    pub id: NodeId,
    /// Its IO stake.
    pub stake: u64,
    /// IO bonded by the checks it holds.
    pub bonded: u64,
    /// Checks it holds.
    pub in_flight: u32,
}

/// The rules a verifier must meet to be handed a first check: the stake
/// floor, at most `max_in_flight` checks at once, and free stake (stake
/// less what its held checks bond) covering the check's bond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accountability {
    /// The least stake a verifier holds to be assigned any check.
    pub stake_floor: u64,
    /// At most this many checks in flight per verifier.
    pub max_in_flight: u32,
}

impl Accountability {
    /// The market's rules for verifiers.
    pub fn of(cfg: &MarketConfig) -> Accountability {
        Accountability {
            stake_floor: cfg.verifier_stake_floor,
            max_in_flight: cfg.verifier_max_in_flight,
        }
    }

    /// Whether `v` may be assigned a check that bonds `bond`.
    pub fn admits(&self, v: &VerifierSlot, bond: u64) -> bool {
        v.stake >= self.stake_floor
            && v.in_flight < self.max_in_flight
            && v.stake.saturating_sub(v.bonded) >= bond
    }
}

/// The verifier a check goes to: among `candidates` (already filtered for
/// eligibility), the lowest [`assignment_rank`] under `seed`.
pub fn assignee<'a>(
    seed: &[u8; 32],
    check: &Hash32,
    candidates: impl IntoIterator<Item = &'a NodeId>,
) -> Option<&'a NodeId> {
    candidates
        .into_iter()
        .min_by_key(|v| assignment_rank(seed, check, &v.0).0)
}

/// What a verifier bonds while it holds a first check of a receipt whose
/// provider could gain `gain_io` (µIO) by a wrong result: the stake that
/// makes agreeing with a wrong result a losing bet when a fraction
/// `recheck_ppm` of agreements is re-checked and a caught verifier loses
/// `slash_bps` of its stake, `⌈g·(1 − q)/(q·σ)⌉`. Without re-checks
/// (`q = 0`) an agreement is never examined and no bond can price it: 0.
pub fn check_bond(gain_io: u64, recheck_ppm: u32, slash_bps: u32) -> u64 {
    if recheck_ppm == 0 {
        return 0;
    }
    required_stake(gain_io, recheck_ppm, slash_bps).unwrap_or(u64::MAX)
}

/// Who may give a verdict on a check: the verifier holding it. A verifier
/// that held it before and missed its deadline (`excluded`) is told so.
///
/// # Errors
///
/// [`Error::AlreadyExists`] (its verdict is in), [`Error::Precondition`]
/// (the check went to another verifier), [`Error::PermissionDenied`].
pub fn require_check_holder(
    check: &impl std::fmt::Display,
    status: CheckStatus,
    holder: Option<NodeId>,
    verifier: &NodeId,
    excluded: &[String],
) -> Result<(), Error> {
    match (status, holder) {
        (CheckStatus::Taken, Some(h)) if h == *verifier => Ok(()),
        (CheckStatus::Done, Some(h)) if h == *verifier => Err(Error::AlreadyExists(format!(
            "check {check} already has your verdict"
        ))),
        _ if excluded.contains(&verifier.to_hex()) => Err(Error::Precondition(format!(
            "check {check} passed its deadline and went to another verifier: the verdict is not accepted"
        ))),
        _ => Err(Error::PermissionDenied(format!(
            "check {check} is not held by verifier {verifier}"
        ))),
    }
}

/// A verdict's `agrees` must say what its result says.
///
/// # Errors
///
/// [`Error::Invalid`] when they differ.
pub fn require_consistent_claim(claimed: bool, agrees: bool) -> Result<(), Error> {
    if claimed == agrees {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "the verdict says agrees = {claimed} but the result it reports {} the receipt's",
        if agrees { "equals" } else { "differs from" }
    )))
}

/// When a check taken now must be answered: the TTL plus the receipt's
/// FLOPs at the verifier floor (a GPU-class challenge is ~10¹⁴ FLOPs:
/// minutes on a CPU).
pub fn deadline(now_ms: u64, ttl_ms: u64, flops: u64) -> u64 {
    now_ms
        .saturating_add(ttl_ms)
        .saturating_add(flops / VERIFIER_FLOOR_MFLOPS / 1_000)
}

/// The receipt waits on its check (not paid, not proven wrong).
pub fn waiting(record: &ReceiptRecord) -> bool {
    record.paid.is_none() && record.check_state != CheckState::Rejected
}

/// What a waiting receipt's check waits for, in words for the renter;
/// `other_verifiers` are the online verifiers other than its provider,
/// `arbiters` the online arbiters.
pub fn note(
    record: &ReceiptRecord,
    other_verifiers: usize,
    arbiters: usize,
    epoch_ms: u64,
) -> String {
    let epoch_ms = epoch_ms.max(1);
    match record.check_state {
        CheckState::Pending => format!(
            "recorded in sampling epoch {}: whether it is checked is decided when that epoch's seed is revealed at {} ms",
            record.epoch,
            (record.epoch + 1).saturating_mul(epoch_ms)
        ),
        CheckState::NotSampled => format!(
            "not drawn for a check: settles when the challenge window ends at {} ms",
            record.settle_at_ms
        ),
        CheckState::Unverified => format!(
            "the job opted out of verification: settles at {} ms",
            record.settle_at_ms
        ),
        CheckState::Sampled if other_verifiers == 0 => {
            "waiting for a verifier: none is online (start one with `assay verifier`, or publish with --unverified)".into()
        }
        CheckState::Sampled => {
            format!("waiting for one of {other_verifiers} online verifiers to re-run it")
        }
        CheckState::Disputed if arbiters == 0 => {
            "disputed: waiting for the arbiter, which is not online (the coordinator names it with --arbiter-key; start it with `assay verifier`)".into()
        }
        CheckState::Disputed => "disputed: the arbiter decides it".into(),
        CheckState::Rechecking if arbiters == 0 => {
            "a verifier agreed and the agreement was drawn for a re-check: waiting for the arbiter, which is not online".into()
        }
        CheckState::Rechecking => {
            "a verifier agreed and the agreement was drawn for a re-check: the arbiter re-runs it".into()
        }
        CheckState::Verified | CheckState::Rejected | CheckState::Void => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_starts_where_its_job_and_provider_put_it() {
        assert_eq!(initial(0, false, false), (CheckState::Unverified, None));
        assert_eq!(initial(48_000, false, false), (CheckState::Pending, None));
        assert_eq!(
            initial(0, true, false),
            (CheckState::Sampled, Some(CheckReason::Audit))
        );
        assert_eq!(
            initial(0, true, true),
            (CheckState::Sampled, Some(CheckReason::Challenge))
        );
    }

    #[test]
    fn the_transitions_follow_the_diagram() {
        use CheckState::*;
        let decided = |d| CheckEvent::Decided(d);
        assert_eq!(
            transition(Pending, CheckEvent::Revealed { drawn: true }),
            Some(Sampled)
        );
        assert_eq!(
            transition(Pending, CheckEvent::Revealed { drawn: false }),
            Some(NotSampled)
        );
        assert_eq!(transition(NotSampled, CheckEvent::Audited), Some(Sampled));
        assert_eq!(
            transition(Sampled, decided(Decision::Verified)),
            Some(Verified)
        );
        assert_eq!(
            transition(Sampled, decided(Decision::Disputed)),
            Some(Disputed)
        );
        assert_eq!(
            transition(Disputed, decided(Decision::Overruled)),
            Some(Verified)
        );
        assert_eq!(
            transition(Disputed, decided(Decision::Rejected)),
            Some(Rejected)
        );
        assert_eq!(
            transition(Disputed, decided(Decision::BothWrong)),
            Some(Rejected)
        );
        assert_eq!(
            transition(Sampled, decided(Decision::Rechecking)),
            Some(Rechecking)
        );
        assert_eq!(
            transition(Rechecking, decided(Decision::Confirmed)),
            Some(Verified)
        );
        assert_eq!(
            transition(Rechecking, decided(Decision::Colluded)),
            Some(Rejected)
        );
        // An arbitration's outcomes do not apply to a first check, nor the
        // reverse.
        assert_eq!(transition(Sampled, decided(Decision::Overruled)), None);
        assert_eq!(transition(Disputed, decided(Decision::Verified)), None);
        assert_eq!(transition(Rechecking, decided(Decision::Rejected)), None);
        // Final states stay final; a verdict needs a check.
        for from in [Verified, Rejected, Void, Unverified] {
            for e in [
                CheckEvent::Revealed { drawn: true },
                CheckEvent::Audited,
                decided(Decision::Verified),
                decided(Decision::Rejected),
            ] {
                assert_eq!(transition(from, e), None, "{from} {e:?}");
            }
        }
        assert_eq!(transition(Pending, decided(Decision::Verified)), None);
        // What a decision writes is where the transition leads.
        for (from, d) in [
            (Sampled, Decision::Verified),
            (Sampled, Decision::Disputed),
            (Disputed, Decision::Overruled),
            (Disputed, Decision::Rejected),
            (Disputed, Decision::BothWrong),
            (Sampled, Decision::Rechecking),
            (Rechecking, Decision::Confirmed),
            (Rechecking, Decision::Colluded),
        ] {
            assert_eq!(transition(from, decided(d)), Some(d.check_state()));
        }
        assert!(settles_after_window(Unverified) && settles_after_window(NotSampled));
        assert!(!settles_after_window(Pending) && !settles_after_window(Sampled));
    }

    #[test]
    fn a_verdict_decides_by_role_and_agreement() {
        let never = || -> bool { unreachable!() };
        assert_eq!(
            decide(CheckRole::Verify, true, never, || false),
            Decision::Verified
        );
        assert_eq!(
            decide(CheckRole::Verify, true, never, || true),
            Decision::Rechecking
        );
        assert_eq!(
            decide(CheckRole::Verify, false, never, never),
            Decision::Disputed
        );
        assert_eq!(
            decide(CheckRole::Referee, true, never, never),
            Decision::Overruled
        );
        assert_eq!(
            decide(CheckRole::Referee, false, || true, never),
            Decision::Rejected
        );
        assert_eq!(
            decide(CheckRole::Referee, false, || false, never),
            Decision::BothWrong
        );
        assert_eq!(
            decide(CheckRole::Recheck, true, never, never),
            Decision::Confirmed
        );
        assert_eq!(
            decide(CheckRole::Recheck, false, never, never),
            Decision::Colluded
        );
        assert!(Decision::Overruled.pays() && !Decision::Rejected.pays());
        assert!(Decision::Confirmed.pays() && !Decision::Rechecking.pays());
        assert!(!Decision::Colluded.pays() && !Decision::BothWrong.pays());
        assert!(!Decision::Disputed.is_final() && !Decision::Rechecking.is_final());
    }

    #[test]
    fn arbiters_arbitrate_and_verifiers_verify() {
        assert!(may_take(CheckRole::Verify, false) && !may_take(CheckRole::Verify, true));
        for role in [CheckRole::Referee, CheckRole::Recheck] {
            assert!(may_take(role, true) && !may_take(role, false));
        }
    }

    #[test]
    fn a_verifier_is_assigned_only_with_stake_room_and_free_bond() {
        let rules = Accountability {
            stake_floor: 100,
            max_in_flight: 2,
        };
        let v = |stake, bonded, in_flight| VerifierSlot {
            id: NodeId([1; 32]),
            stake,
            bonded,
            in_flight,
        };
        assert!(rules.admits(&v(100, 0, 0), 100));
        assert!(!rules.admits(&v(99, 0, 0), 0), "below the floor");
        assert!(!rules.admits(&v(1_000, 0, 2), 0), "k in flight");
        assert!(!rules.admits(&v(300, 250, 1), 100), "bond not covered");
        assert!(rules.admits(&v(300, 200, 1), 100));
        assert!(
            !rules.admits(&v(50, 100, 0), 0),
            "below the floor, over-bonded"
        );
    }

    #[test]
    fn the_assignee_is_the_lowest_rank_and_stable() {
        let seed = [9u8; 32];
        let check = Hash32::of(b"check");
        let all: Vec<NodeId> = (1u8..=5).map(|i| NodeId([i; 32])).collect();
        let first = assignee(&seed, &check, &all).copied();
        assert_eq!(first, assignee(&seed, &check, all.iter().rev()).copied());
        let Some(first) = first else {
            panic!("five candidates, no assignee")
        };
        // Without the winner, the check goes to someone else; with none, to nobody.
        let rest: Vec<NodeId> = all.iter().filter(|v| **v != first).copied().collect();
        assert_ne!(assignee(&seed, &check, &rest).copied(), Some(first));
        assert_eq!(assignee(&seed, &check, &[]), None);
    }

    #[test]
    fn a_check_bond_makes_agreeing_with_a_lie_a_losing_bet() {
        // q = 10 %, σ = 50 %: B ≥ g · 0.9 / 0.05 = 18 g.
        assert_eq!(check_bond(1_000, 100_000, 5_000), 18_000);
        assert_eq!(check_bond(1_000, 1_000_000, 5_000), 0);
        assert_eq!(check_bond(1_000, 0, 5_000), 0);
        assert_eq!(check_bond(0, 100_000, 5_000), 0);
    }

    #[test]
    fn only_the_holder_answers_a_check() {
        let (me, other) = (NodeId([1; 32]), NodeId([2; 32]));
        let id = "c1";
        assert!(require_check_holder(&id, CheckStatus::Taken, Some(me), &me, &[]).is_ok());
        assert!(matches!(
            require_check_holder(&id, CheckStatus::Done, Some(me), &me, &[]),
            Err(Error::AlreadyExists(_))
        ));
        assert!(matches!(
            require_check_holder(&id, CheckStatus::Taken, Some(other), &me, &[me.to_hex()]),
            Err(Error::Precondition(_))
        ));
        assert!(matches!(
            require_check_holder(&id, CheckStatus::Open, None, &me, &[]),
            Err(Error::PermissionDenied(_))
        ));
        assert!(require_consistent_claim(true, true).is_ok());
        assert!(matches!(
            require_consistent_claim(true, false),
            Err(Error::Invalid(_))
        ));
        assert_eq!(deadline(10, 5, 0), 15);
    }
}
