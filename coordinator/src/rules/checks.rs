//! A receipt's check: its state transitions, what a verdict decides, and
//! who may answer a check. The diagram is [`crate::store::checks`]'s; this
//! module is its arithmetic, without SQL.

use assay_protocol::NodeId;
use assay_protocol::challenge::VERIFIER_FLOOR_MFLOPS;

use crate::Error;
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
        (Sampled, CheckEvent::Decided(Decision::Verified)) => Some(Verified),
        (Sampled, CheckEvent::Decided(Decision::Disputed)) => Some(Disputed),
        (Disputed, CheckEvent::Decided(d)) => match d {
            Decision::Overruled => Some(Verified),
            Decision::Rejected => Some(Rejected),
            Decision::Inconclusive => Some(Void),
            Decision::Verified | Decision::Disputed => None,
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
/// receipt's; `same_as_first`: for a referee, whether its result equals the
/// disputing verifier's.
pub fn decide(role: CheckRole, agrees: bool, same_as_first: impl FnOnce() -> bool) -> Decision {
    match (role, agrees) {
        (CheckRole::Verify, true) => Decision::Verified,
        (CheckRole::Verify, false) => Decision::Disputed,
        (CheckRole::Referee, true) => Decision::Overruled,
        (CheckRole::Referee, false) if same_as_first() => Decision::Rejected,
        (CheckRole::Referee, false) => Decision::Inconclusive,
    }
}

impl Decision {
    /// The receipt's check state after this decision.
    pub fn check_state(self) -> CheckState {
        match self {
            Decision::Verified | Decision::Overruled => CheckState::Verified,
            Decision::Disputed => CheckState::Disputed,
            Decision::Rejected => CheckState::Rejected,
            Decision::Inconclusive => CheckState::Void,
        }
    }

    /// The receipt is paid (provider and verifier).
    pub fn pays(self) -> bool {
        matches!(self, Decision::Verified | Decision::Overruled)
    }
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
/// `other_verifiers` are the online verifiers other than its provider.
pub fn note(record: &ReceiptRecord, other_verifiers: usize, epoch_ms: u64) -> String {
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
        CheckState::Disputed if other_verifiers < 2 => {
            "disputed: waiting for a referee, a second verifier that must be online".into()
        }
        CheckState::Disputed => "disputed: a referee re-runs it".into(),
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
            transition(Disputed, decided(Decision::Inconclusive)),
            Some(Void)
        );
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
            (Disputed, Decision::Inconclusive),
        ] {
            assert_eq!(transition(from, decided(d)), Some(d.check_state()));
        }
        assert!(settles_after_window(Unverified) && settles_after_window(NotSampled));
        assert!(!settles_after_window(Pending) && !settles_after_window(Sampled));
    }

    #[test]
    fn a_verdict_decides_by_role_and_agreement() {
        assert_eq!(
            decide(CheckRole::Verify, true, || unreachable!()),
            Decision::Verified
        );
        assert_eq!(
            decide(CheckRole::Verify, false, || unreachable!()),
            Decision::Disputed
        );
        assert_eq!(
            decide(CheckRole::Referee, true, || unreachable!()),
            Decision::Overruled
        );
        assert_eq!(
            decide(CheckRole::Referee, false, || true),
            Decision::Rejected
        );
        assert_eq!(
            decide(CheckRole::Referee, false, || false),
            Decision::Inconclusive
        );
        assert!(Decision::Overruled.pays() && !Decision::Rejected.pays());
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
