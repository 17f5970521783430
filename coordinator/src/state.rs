//! Every state the market stores, as an enum.
//!
//! The database keeps each state as TEXT; [`as_str`](ShardState::as_str) is
//! that text and `parse` reads it back (an unknown word is
//! [`Error::Corrupt`]). The strings are part of the schema: existing
//! databases hold them, and the SQL in [`crate::store`] spells some of them
//! as literals (`WHERE state = 'queued'`) so that the partial indexes of
//! [`crate::store::schema`] apply. Renaming a variant's text is a migration.
//!
//! This module is a leaf: the rules ([`crate::rules`]), the records
//! ([`crate::types`]) and the store all read it; it reads nothing of theirs.

use crate::Error;

/// Declares a state enum with its stored text, `as_str`, `parse`, `ALL` and
/// `Display`.
macro_rules! stored_state {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every state, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database (and shown to users).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// Reads the stored text back.
            ///
            /// # Errors
            ///
            /// [`Error::Corrupt`] for a word that is not one of the states.
            pub fn parse(s: &str) -> Result<$name, Error> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    other => Err(Error::Corrupt(format!(concat!("unknown ", $what, " {:?}"), other))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_state! {
    /// The state of a shard (`shards.state`).
    ShardState, "shard state" {
        /// Waiting for a provider.
        Queued = "queued",
        /// A provider holds a lease on it.
        Leased = "leased",
        /// Its receipt was recorded.
        Done = "done",
        /// Gave up after too many leases without a receipt (or a hardware
        /// challenge that was not answered); its escrow was refunded.
        Failed = "failed",
    }
}

stored_state! {
    /// The state of a lease (`leases.state`).
    LeaseState, "lease state" {
        /// Held.
        Active = "active",
        /// Its receipt was recorded.
        Done = "done",
        /// It expired; the shard was re-queued.
        Expired = "expired",
        /// The provider gave it back.
        Returned = "returned",
    }
}

stored_state! {
    /// The state of a reserved cluster (`clusters.state`).
    ClusterState, "cluster state" {
        /// Its members' slots are held and paid for.
        Active = "active",
        /// Its renter ended it early: members paid to then, the rest refunded.
        Released = "released",
        /// Its time ran out: members paid in full.
        Expired = "expired",
    }
}

stored_state! {
    /// A cluster member's state (`cluster_members.state`).
    MemberState, "cluster member state" {
        /// Holds one slot for the cluster.
        Active = "active",
        /// Left (went offline, or the cluster ended); paid to then.
        Left = "left",
    }
}

impl LeaseState {
    /// The stored name (the same as [`LeaseState::as_str`]).
    pub fn name(self) -> &'static str {
        self.as_str()
    }
}

stored_state! {
    /// Where a receipt's check stands (`receipts.check_state`); the
    /// transitions are [`crate::rules::checks`].
    CheckState, "check state" {
        /// Its job opted out of verification: settles after the window.
        Unverified = "unverified",
        /// Waits for its epoch's seed to say whether it is checked.
        Pending = "pending",
        /// Not drawn: settles after the window.
        NotSampled = "not-sampled",
        /// Drawn (or audited, or a challenge): a verifier re-runs it.
        Sampled = "sampled",
        /// A verifier disagreed: the arbiter re-runs it.
        Disputed = "disputed",
        /// A verifier agreed and the agreement was drawn for a re-check:
        /// the arbiter re-runs it before anyone is paid.
        Rechecking = "rechecking",
        /// A verifier (or the referee) agreed: paid.
        Verified = "verified",
        /// The referee sided with the verifier: the provider was slashed.
        Rejected = "rejected",
        /// Three different results: nobody is paid or slashed.
        Void = "void",
    }
}

stored_state! {
    /// Why a receipt is checked (`receipts.check_reason`, `checks.reason`;
    /// a receipt that is not checked stores the empty text, see
    /// [`CheckReason::as_stored`]).
    CheckReason, "check reason" {
        /// Drawn by its epoch's seed.
        Sampled = "sampled",
        /// Its provider was caught cheating: every receipt is checked.
        Audit = "audit",
        /// A hardware challenge: always checked.
        Challenge = "challenge",
    }
}

impl CheckReason {
    /// The stored text of an optional reason (`""` for none).
    pub fn as_stored(reason: Option<CheckReason>) -> &'static str {
        reason.map_or("", CheckReason::as_str)
    }

    /// Reads an optional reason back (`""` is none).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] for an unknown word.
    pub fn parse_stored(s: &str) -> Result<Option<CheckReason>, Error> {
        if s.is_empty() {
            Ok(None)
        } else {
            CheckReason::parse(s).map(Some)
        }
    }
}

stored_state! {
    /// The role of a check and of its verdict (`checks.role`, `verdicts.role`).
    CheckRole, "check role" {
        /// The first re-execution of a receipt.
        Verify = "verify",
        /// The arbiter's re-execution after a dispute (the stored word
        /// predates arbiters: any verifier used to break the tie).
        Referee = "referee",
        /// The arbiter's re-execution of an agreement drawn for a re-check.
        Recheck = "recheck",
    }
}

stored_state! {
    /// Where a check (a verifier's task) stands (`checks.state`).
    CheckStatus, "check status" {
        /// Any verifier not excluded may take it.
        Open = "open",
        /// A verifier holds it until its deadline.
        Taken = "taken",
        /// Its verdict was recorded.
        Done = "done",
    }
}

stored_state! {
    /// Where a provider's proof of hardware stands
    /// (`providers.hardware_state`); see [`crate::store::challenges`].
    HardwareState, "hardware state" {
        /// Claims are not challenged (no challenge component, or a CPU claim).
        Unchallenged = "unchallenged",
        /// A GPU claim waiting for its first challenge.
        Unchecked = "unchecked",
        /// A challenge job was sent.
        Challenged = "challenged",
        /// Answered within the class bound; awaits its check.
        Answered = "answered",
        /// Answered in time and verified.
        Passed = "passed",
        /// Too late, no answer, or proven wrong.
        Failed = "failed",
    }
}

stored_state! {
    /// Where a bond stands (`bonds.state`); see [`crate::store::claims`].
    BondStatus, "bond state" {
        /// Selling, and taking coupons and escrow from its device's earnings.
        Open = "open",
        /// Matured with the principal escrowed: the holders were repaid.
        Repaid = "repaid",
        /// Matured short: the holders took the escrow and the device's stake.
        Defaulted = "defaulted",
        /// Matured with nothing sold.
        Expired = "expired",
    }
}

impl HardwareState {
    /// A provider in this state may be matched to jobs that require a GPU.
    pub fn trusted(self) -> bool {
        matches!(self, HardwareState::Passed | HardwareState::Unchallenged)
    }
}

stored_state! {
    /// A job's state as the renter sees it, derived from its shards
    /// ([`crate::types::JobView::state`]; not stored).
    JobState, "job state" {
        /// No shard was leased yet.
        Queued = "queued",
        /// Some shards are leased or done.
        Running = "running",
        /// Every shard has a receipt.
        Done = "done",
        /// Every shard's receipt is settled.
        Settled = "settled",
        /// A shard gave up and none is still queued or leased.
        Failed = "failed",
    }
}

/// How many of a job's shards stand where: what [`JobState::of_tally`]
/// decides on (the store counts these in SQL for whole lists of jobs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardTally {
    /// Shards in all.
    pub shards: u64,
    /// Queued.
    pub queued: u64,
    /// Leased.
    pub leased: u64,
    /// Done (a receipt).
    pub done: u64,
    /// Given up.
    pub failed: u64,
    /// Whose current receipt is settled.
    pub settled: u64,
}

impl JobState {
    /// A job's state from its shards' states and whether each one's receipt
    /// is settled.
    pub fn of(shards: &[(ShardState, bool)]) -> JobState {
        let count = |s: ShardState| shards.iter().filter(|(x, _)| *x == s).count() as u64;
        JobState::of_tally(ShardTally {
            shards: shards.len() as u64,
            queued: count(ShardState::Queued),
            leased: count(ShardState::Leased),
            done: count(ShardState::Done),
            failed: count(ShardState::Failed),
            settled: shards.iter().filter(|(_, settled)| *settled).count() as u64,
        })
    }

    /// A job's state from how many of its shards stand where.
    pub fn of_tally(t: ShardTally) -> JobState {
        let active = t.queued + t.leased > 0;
        if !active && t.failed > 0 {
            return JobState::Failed;
        }
        let done = t.done == t.shards;
        if done && t.settled >= t.shards {
            JobState::Settled
        } else if done {
            JobState::Done
        } else if t.queued < t.shards {
            JobState::Running
        } else {
            JobState::Queued
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_as_far_as_its_shards() {
        use ShardState::*;
        assert_eq!(
            JobState::of(&[(Queued, false), (Queued, false)]),
            JobState::Queued
        );
        assert_eq!(
            JobState::of(&[(Leased, false), (Queued, false)]),
            JobState::Running
        );
        assert_eq!(JobState::of(&[(Done, false), (Done, true)]), JobState::Done);
        assert_eq!(
            JobState::of(&[(Done, true), (Done, true)]),
            JobState::Settled
        );
        assert_eq!(
            JobState::of(&[(Failed, false), (Done, true)]),
            JobState::Failed
        );
        // A failed shard while another still runs: running, not failed.
        assert_eq!(
            JobState::of(&[(Failed, false), (Leased, false)]),
            JobState::Running
        );
    }

    /// The stored words are the schema: these are the strings existing
    /// databases hold.
    #[test]
    fn stored_text_is_frozen_and_round_trips() {
        fn words<T: Copy>(all: &[T], text: fn(T) -> &'static str) -> Vec<&'static str> {
            all.iter().map(|s| text(*s)).collect()
        }
        assert_eq!(
            words(ShardState::ALL, ShardState::as_str),
            ["queued", "leased", "done", "failed"]
        );
        assert_eq!(
            words(LeaseState::ALL, LeaseState::as_str),
            ["active", "done", "expired", "returned"]
        );
        assert_eq!(
            words(CheckState::ALL, CheckState::as_str),
            [
                "unverified",
                "pending",
                "not-sampled",
                "sampled",
                "disputed",
                "rechecking",
                "verified",
                "rejected",
                "void"
            ]
        );
        assert_eq!(
            words(CheckReason::ALL, CheckReason::as_str),
            ["sampled", "audit", "challenge"]
        );
        assert_eq!(
            words(CheckRole::ALL, CheckRole::as_str),
            ["verify", "referee", "recheck"]
        );
        assert_eq!(
            words(CheckStatus::ALL, CheckStatus::as_str),
            ["open", "taken", "done"]
        );
        assert_eq!(
            words(HardwareState::ALL, HardwareState::as_str),
            [
                "unchallenged",
                "unchecked",
                "challenged",
                "answered",
                "passed",
                "failed"
            ]
        );
        for s in CheckState::ALL {
            assert_eq!(CheckState::parse(s.as_str()).ok(), Some(*s));
        }
        for s in HardwareState::ALL {
            assert_eq!(HardwareState::parse(s.as_str()).ok(), Some(*s));
        }
        assert!(matches!(ShardState::parse("gone"), Err(Error::Corrupt(_))));
        assert_eq!(CheckReason::parse_stored("").ok(), Some(None));
        assert_eq!(
            CheckReason::parse_stored("audit").ok(),
            Some(Some(CheckReason::Audit))
        );
        assert_eq!(CheckReason::as_stored(None), "");
    }
}
