//! What the verifier decides about a check, as pure functions the daemon
//! ([`crate::daemon`]) calls and tests can call directly: whether the
//! coordinator's draw holds ([`sampling_problem`]), whether the check is the
//! receipt's job and of this verifier's semantics version ([`examine`]),
//! the spec to re-execute under ([`reexecution_spec`]), what the run means
//! ([`decide`], comparing with [`crate::verdict`]), and the `--lie-rate`
//! test knob's choice ([`lies_on`]). Nothing here talks to the network.

use assay_proto::{convert, pb};
use assay_protocol::verification::{commitment, is_sampled};
use assay_protocol::{Hash32, JobSpec, Receipt, SEMANTICS_VERSION, inputs_root, job_id};

use crate::verdict::{Comparison, Observed};

/// True iff the `--lie-rate` knob picks check `check`: the first 8 bytes
/// (little-endian) of `blake3("assay/test/lie/v1" ‖ check)`, as a fraction
/// of 2⁶⁴, are below `rate`.
///
/// # Example
///
/// ```
/// use assay_protocol::Hash32;
/// use assay_verifier::check::lies_on;
///
/// let check = Hash32::of(b"a check");
/// assert!(lies_on(1.0, &check));
/// assert!(!lies_on(0.0, &check));
/// assert_eq!(lies_on(0.3, &check), lies_on(0.3, &check));
/// ```
pub fn lies_on(rate: f64, check: &Hash32) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate.is_nan() || rate <= 0.0 {
        return false;
    }
    let mut h = blake3::Hasher::new();
    h.update(b"assay/test/lie/v1");
    h.update(&check.0);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.finalize().as_bytes()[..8]);
    ((u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64) < rate
}

/// Why the sampling of a check could not be confirmed (`None`: confirmed).
///
/// `seen` is the commitment this verifier saw published for the epoch
/// before the seed came out, if it was watching then.
///
/// # Example
///
/// ```
/// use assay_proto::pb;
/// use assay_protocol::Hash32;
/// use assay_protocol::verification::commitment;
/// use assay_verifier::check::sampling_problem;
///
/// let seed = [5u8; 32];
/// let beacon = pb::EpochBeacon {
///     epoch: 3,
///     commitment: commitment(&seed).0.to_vec(),
///     seed: seed.to_vec(),
/// };
/// let receipt = Hash32::of(b"receipt");
/// assert_eq!(sampling_problem(&receipt, 3, 1_000_000, Some(&beacon), None), None);
/// assert!(sampling_problem(&receipt, 3, 0, Some(&beacon), None).is_some());
/// ```
pub fn sampling_problem(
    receipt_id: &Hash32,
    epoch: u64,
    rate_ppm: u32,
    beacon: Option<&pb::EpochBeacon>,
    seen: Option<&Hash32>,
) -> Option<String> {
    let Some(b) = beacon else {
        return Some("the check carries no beacon".into());
    };
    if b.epoch != epoch {
        return Some(format!(
            "the beacon is for epoch {} but the receipt was recorded in epoch {epoch}",
            b.epoch
        ));
    }
    let Ok(seed) = <[u8; 32]>::try_from(b.seed.as_slice()) else {
        return Some(format!(
            "the epoch seed has {} bytes, not 32 (not revealed?)",
            b.seed.len()
        ));
    };
    let Ok(committed) = convert::hash("beacon.commitment", &b.commitment) else {
        return Some("the beacon's commitment is not 32 bytes".into());
    };
    if commitment(&seed) != committed {
        return Some("the revealed seed does not hash to the epoch's commitment".into());
    }
    if let Some(seen) = seen
        && *seen != committed
    {
        return Some(format!(
            "the coordinator published commitment {} for epoch {epoch} earlier, not {}",
            seen.short(),
            committed.short()
        ));
    }
    if !is_sampled(receipt_id, &seed, rate_ppm) {
        return Some(format!(
            "is_sampled(receipt, seed, {rate_ppm} ppm) is false: this receipt was not drawn"
        ));
    }
    None
}

/// Why a check is not re-executed: it goes back to the coordinator with
/// this as the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfit {
    /// The receipt or the job is not what the check claims (a bad
    /// signature, another id, a job that is not the receipt's): nothing
    /// here is the provider's fault.
    Inconsistent(String),
    /// The receipt was computed under another semantics version than this
    /// verifier implements.
    OtherSemantics {
        /// The receipt's version.
        receipt: u32,
        /// This verifier's ([`SEMANTICS_VERSION`]).
        ours: u32,
    },
}

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unfit::Inconsistent(why) => f.write_str(why),
            Unfit::OtherSemantics { receipt, ours } => write!(
                f,
                "the receipt was computed under semantics version {receipt} but this verifier implements version {ours}: \
                 its re-execution could differ without anyone cheating, so a verifier of version {receipt} should check it"
            ),
        }
    }
}

impl From<String> for Unfit {
    fn from(why: String) -> Unfit {
        Unfit::Inconsistent(why)
    }
}

impl From<&str> for Unfit {
    fn from(why: &str) -> Unfit {
        Unfit::Inconsistent(why.to_string())
    }
}

/// A check whose receipt and job were examined: ready to run.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The check.
    pub id: Hash32,
    /// `verify` or `referee`.
    pub role: String,
    /// The receipt checked.
    pub receipt_id: Hash32,
    /// The receipt (its signature verified).
    pub receipt: Receipt,
    /// The component to run.
    pub component: Hash32,
    /// The inputs to run it on.
    pub inputs: Vec<assay_protocol::BlobRef>,
    /// The spec to run it under.
    pub spec: JobSpec,
    /// When the check's answer is due, Unix ms (0: no deadline).
    pub deadline_ms: u64,
}

/// Examines a check before running it: the receipt must be validly signed
/// by its provider and have the check's receipt id, and the component,
/// inputs and spec to run must be exactly the receipt's job (its
/// `component_hash`, `inputs_root` and `job_id`) — otherwise a mismatch
/// would blame the provider for the coordinator's mistake. For a sampled
/// check in the `verify` role it also confirms the sampling
/// ([`sampling_problem`]; `seen` gives the commitment this verifier saw
/// published for an epoch, if any).
///
/// Returns the check ready to run and, if the sampling could not be
/// confirmed, why (the check is still worth doing: the verdict is about the
/// receipt, not the coordinator).
///
/// A receipt computed under another [`SEMANTICS_VERSION`] is not re-executed
/// here: this verifier's result could differ from an honest provider's
/// without anyone cheating, so the check goes back for a verifier of that
/// version ([`Unfit::OtherSemantics`]).
///
/// # Errors
///
/// Why the check cannot be answered, as the reason to give it back with.
pub fn examine(
    check: &pb::Check,
    id: Hash32,
    seen: impl Fn(u64) -> Option<Hash32>,
) -> Result<(Prepared, Option<String>), Unfit> {
    let record = check
        .record
        .as_ref()
        .ok_or("the check carries no receipt record")?;
    let receipt = convert::receipt(record.receipt.as_ref())
        .map_err(|e| format!("the check's receipt is malformed: {e}"))?;
    let receipt_id =
        convert::hash("record.receipt_id", &record.receipt_id).map_err(|e| e.to_string())?;
    if let Err(e) = receipt.verify() {
        return Err(Unfit::Inconsistent(format!(
            "the receipt's signature does not verify ({e}): it is not the provider's statement"
        )));
    }
    if receipt.id() != receipt_id {
        return Err(Unfit::Inconsistent(format!(
            "the receipt hashes to id {}, not the check's receipt id {}",
            receipt.id().short(),
            receipt_id.short()
        )));
    }
    if receipt.body.semantics != SEMANTICS_VERSION {
        return Err(Unfit::OtherSemantics {
            receipt: receipt.body.semantics,
            ours: SEMANTICS_VERSION,
        });
    }
    let problem = if check.role == "verify" && check.reason == "sampled" {
        let earlier = check.beacon.as_ref().and_then(|b| seen(b.epoch));
        sampling_problem(
            &receipt_id,
            record.epoch,
            record.rate_ppm,
            check.beacon.as_ref(),
            earlier.as_ref(),
        )
    } else {
        None
    };
    let component =
        convert::hash("component_hash", &check.component_hash).map_err(|e| e.to_string())?;
    let inputs = convert::blob_refs("inputs", &check.inputs).map_err(|e| e.to_string())?;
    let spec = convert::spec("spec", check.spec.as_ref()).map_err(|e| e.to_string())?;
    if component != receipt.body.component_hash {
        return Err(Unfit::Inconsistent(format!(
            "the check names component {} but the receipt component {}",
            component.short(),
            receipt.body.component_hash.short()
        )));
    }
    let root = inputs_root(inputs.iter().map(|b| (b.name.as_str(), b.size, &b.hash)));
    if root != receipt.body.inputs_root {
        return Err(Unfit::Inconsistent(format!(
            "the check's inputs have root {} but the receipt's are {}",
            root.short(),
            receipt.body.inputs_root.short()
        )));
    }
    if job_id(&component, &root, &spec) != receipt.body.job_id {
        return Err("the check's spec is not the one the receipt's job id was made from".into());
    }
    Ok((
        Prepared {
            id,
            role: check.role.clone(),
            receipt_id,
            receipt,
            component,
            inputs,
            spec,
            deadline_ms: check.deadline_ms,
        },
        problem,
    ))
}

/// The spec a check is re-executed under: the job's, with the watchdog
/// scaled by `scale` and cut to end a little before the deadline (a fifth
/// of the time left, at most 2 s, is kept for giving the check back; `None`
/// if no time is left). Only the watchdog changes, and it is not part of the
/// job's identity or result.
///
/// # Example
///
/// ```
/// use assay_protocol::{Hash32, JobSpec};
/// use assay_verifier::check::{Prepared, reexecution_spec};
/// # let key = assay_protocol::NodeKey::from_seed([1; 32]);
/// # let receipt = assay_protocol::ReceiptBody {
/// #     semantics: assay_protocol::SEMANTICS_VERSION,
/// #     job_id: Default::default(), shard: Default::default(), provider_id: key.id(),
/// #     component_hash: Default::default(), inputs_root: Default::default(),
/// #     outputs_root: Default::default(), outcome: assay_protocol::Outcome::Success,
/// #     trace_root: Default::default(),
/// #     fuel_used: 0, work: Default::default(), backend: Default::default(),
/// #     telemetry: None, started_at_ms: 0, finished_at_ms: 0,
/// # }.sign(&key).expect("sign");
///
/// let mut spec = JobSpec::default();
/// spec.wall_clock_ms = 1_000;
/// let p = Prepared {
///     id: Hash32::default(), role: "verify".into(), receipt_id: receipt.id(), receipt,
///     component: Hash32::default(), inputs: vec![], spec, deadline_ms: 10_000,
/// };
/// assert_eq!(reexecution_spec(&p, 4, 0).map(|s| s.wall_clock_ms), Some(4_000));
/// assert_eq!(reexecution_spec(&p, 4, 6_000).map(|s| s.wall_clock_ms), Some(3_200));
/// assert!(reexecution_spec(&p, 4, 10_000).is_none());
/// ```
pub fn reexecution_spec(p: &Prepared, scale: u32, now_ms: u64) -> Option<JobSpec> {
    watchdog_spec(&p.spec, scale, p.deadline_ms, now_ms)
}

/// [`reexecution_spec`] of any run due by `deadline_ms` (0: no deadline),
/// e.g. a dispute's re-run to regain step tensors.
pub fn watchdog_spec(spec: &JobSpec, scale: u32, deadline_ms: u64, now_ms: u64) -> Option<JobSpec> {
    let mut spec = spec.clone();
    spec.wall_clock_ms = spec.wall_clock_ms.saturating_mul(u64::from(scale.max(1)));
    if deadline_ms > 0 {
        // Stop early enough to give the check back before the deadline: a
        // check that is handed back is reassigned at once, and a missed
        // deadline counts against this verifier.
        let left = deadline_ms.saturating_sub(now_ms);
        let margin = (left / 5).min(DEADLINE_MARGIN_MS);
        let budget = left.saturating_sub(margin);
        if budget == 0 {
            return None;
        }
        spec.wall_clock_ms = spec.wall_clock_ms.min(budget);
    }
    Some(spec)
}

/// What to do with a check once the re-execution is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Submit a verdict stating `said`.
    Verdict {
        /// What the verdict states (the run's result, or the lie).
        said: Observed,
        /// Whether the verdict agrees with the receipt.
        agrees: bool,
        /// How the run really compares with the receipt.
        comparison: Comparison,
        /// True if the `--lie-rate` knob made this verdict lie.
        lie: bool,
    },
    /// Give the check back without a verdict.
    GiveBack {
        /// Why (sent to the coordinator).
        reason: String,
        /// True if this machine failed (watchdog, device, crash).
        local_fault: bool,
    },
}

/// Turns a re-execution into a [`Decision`]. A run that produced no result
/// — a fault of this machine ([`assay_runtime::Error::ProviderFault`]: its
/// watchdog, its device) or a component it cannot load — is never a
/// mismatch: the check is given back and goes to another verifier. With
/// `lie` (the test knob), the verdict states the run's result with a
/// corrupted outputs root and disagrees, whatever the run gave.
///
/// # Example
///
/// ```
/// use assay_runtime::{Error, FaultKind};
/// use assay_verifier::check::{decide, Decision};
/// # let key = assay_protocol::NodeKey::from_seed([1; 32]);
/// # let receipt = assay_protocol::ReceiptBody {
/// #     semantics: assay_protocol::SEMANTICS_VERSION,
/// #     job_id: Default::default(), shard: Default::default(), provider_id: key.id(),
/// #     component_hash: Default::default(), inputs_root: Default::default(),
/// #     outputs_root: Default::default(), outcome: assay_protocol::Outcome::Success,
/// #     trace_root: Default::default(),
/// #     fuel_used: 0, work: Default::default(), backend: Default::default(),
/// #     telemetry: None, started_at_ms: 0, finished_at_ms: 0,
/// # }.sign(&key).expect("sign");
///
/// let watchdog = Err(Error::ProviderFault { kind: FaultKind::Watchdog, message: "too slow".into() });
/// assert!(matches!(decide(&watchdog, &receipt, false), Decision::GiveBack { local_fault: true, .. }));
/// ```
pub fn decide(
    run: &Result<assay_runtime::RunReport, assay_runtime::Error>,
    receipt: &Receipt,
    lie: bool,
) -> Decision {
    let report = match run {
        Ok(r) => r,
        Err(e) => {
            return Decision::GiveBack {
                reason: format!("verifier's re-execution produced no result: {e}"),
                local_fault: matches!(e, assay_runtime::Error::ProviderFault { .. }),
            };
        }
    };
    let got = Observed::claimed_by(&report.receipt.body);
    let comparison = got.compare(&Observed::claimed_by(&receipt.body));
    if lie {
        Decision::Verdict {
            said: got.corrupted(),
            agrees: false,
            comparison,
            lie,
        }
    } else {
        Decision::Verdict {
            said: got,
            agrees: comparison.agrees(),
            comparison,
            lie,
        }
    }
}

/// Most time kept between a re-execution's watchdog and the check's
/// deadline, for giving the check back in time.
const DEADLINE_MARGIN_MS: u64 = 2_000;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use assay_protocol::NodeKey;

    use super::*;

    #[test]
    fn the_lie_choice_is_deterministic_and_follows_the_rate() {
        let ids: Vec<Hash32> = (0..20_000u32)
            .map(|i| Hash32::of(&i.to_le_bytes()))
            .collect();
        let picks: Vec<bool> = ids.iter().map(|i| lies_on(0.25, i)).collect();
        let again: Vec<bool> = ids.iter().map(|i| lies_on(0.25, i)).collect();
        assert_eq!(picks, again);
        let n = picks.iter().filter(|b| **b).count();
        // 5,000 expected; σ ≈ 61.
        assert!((4_700..5_300).contains(&n), "{n}");
        assert!(ids.iter().all(|i| lies_on(1.0, i)));
        assert!(!ids.iter().any(|i| lies_on(0.0, i) || lies_on(f64::NAN, i)));
    }

    /// A check of a validly signed receipt of a real job, sampled at 100%.
    fn good_check() -> pb::Check {
        let key = NodeKey::from_seed([6; 32]);
        let component = Hash32::of(b"component bytes");
        let inputs = vec![assay_protocol::BlobRef {
            name: "x".into(),
            hash: Hash32::of(b"input"),
            size: 5,
        }];
        let spec = JobSpec::default();
        let root = inputs_root(inputs.iter().map(|b| (b.name.as_str(), b.size, &b.hash)));
        let receipt = assay_protocol::ReceiptBody {
            semantics: assay_protocol::SEMANTICS_VERSION,
            job_id: job_id(&component, &root, &spec),
            shard: spec.shard,
            provider_id: key.id(),
            component_hash: component,
            inputs_root: root,
            outputs_root: Hash32::of(b"outputs"),
            trace_root: Hash32::ZERO,
            outcome: assay_protocol::Outcome::Success,
            fuel_used: 1,
            work: assay_protocol::WorkDone::default(),
            backend: assay_protocol::BackendDescriptor::default(),
            telemetry: None,
            started_at_ms: 1,
            finished_at_ms: 2,
        }
        .sign(&key)
        .expect("sign");
        pb::Check {
            check_id: vec![1; 32],
            role: "verify".into(),
            reason: "sampled".into(),
            record: Some(pb::ReceiptRecord {
                seq: 1,
                receipt_id: receipt.id().0.to_vec(),
                job_id: vec![0; 32],
                receipt: Some(pb::Receipt::from(&receipt)),
                outputs: Vec::new(),
                committed_at_ms: 1,
                epoch: 7,
                rate_ppm: 1_000_000,
                failure_message: String::new(),
            }),
            component_hash: component.0.to_vec(),
            component_size: 15,
            inputs: convert::blob_refs_to_pb(&inputs),
            spec: Some(pb::JobSpec::from(&spec)),
            beacon: Some(beacon([2; 32], 7)),
            deadline_ms: 0,
            step: None,
        }
    }

    #[test]
    fn a_consistent_check_is_run() {
        let c = good_check();
        let (p, problem) = examine(&c, Hash32([1; 32]), |_| None).expect("runs");
        assert_eq!(problem, None);
        assert_eq!(p.role, "verify");
        assert_eq!(p.inputs.len(), 1);
        // The commitment seen earlier is consulted.
        let (_, problem) =
            examine(&c, Hash32([1; 32]), |_| Some(Hash32([0; 32]))).expect("still runs");
        assert!(problem.is_some_and(|p| p.contains("earlier")));
    }

    #[test]
    fn a_check_that_is_not_the_receipts_job_is_given_back() {
        type Break = fn(&mut pb::Check);
        let cases: [(Break, &str); 6] = [
            (
                |c| {
                    if let Some(r) = c.record.as_mut().and_then(|r| r.receipt.as_mut()) {
                        r.fuel_used += 1;
                    }
                },
                "signature does not verify",
            ),
            (
                |c| {
                    if let Some(r) = c.record.as_mut() {
                        r.receipt_id = vec![9; 32];
                    }
                },
                "not the check's receipt id",
            ),
            (|c| c.component_hash = vec![3; 32], "names component"),
            (|c| c.inputs[0].size += 1, "inputs have root"),
            (
                |c| {
                    if let Some(s) = c.spec.as_mut() {
                        s.fuel += 1;
                    }
                },
                "job id",
            ),
            (|c| c.record = None, "no receipt record"),
        ];
        for (change, why) in cases {
            let mut c = good_check();
            change(&mut c);
            let e = examine(&c, Hash32([1; 32]), |_| None).expect_err(why);
            assert!(matches!(e, Unfit::Inconsistent(_)), "{why}: {e}");
            assert!(e.to_string().contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn a_receipt_of_another_semantics_version_is_given_back_not_judged() {
        // A validly signed receipt of the same job, but computed under the
        // next semantics version: before, it was re-executed (and a
        // differing result would have been a mismatch verdict).
        let mut c = good_check();
        let mut receipt = claimed();
        receipt.body.semantics = SEMANTICS_VERSION + 1;
        let receipt = receipt
            .body
            .sign(&NodeKey::from_seed([6; 32]))
            .expect("sign");
        if let Some(r) = c.record.as_mut() {
            r.receipt_id = receipt.id().0.to_vec();
            r.receipt = Some(pb::Receipt::from(&receipt));
            // Sampled at 100%, so the draw itself is no reason to refuse.
        }
        let e = examine(&c, Hash32([1; 32]), |_| None).expect_err("given back");
        assert_eq!(
            e,
            Unfit::OtherSemantics {
                receipt: SEMANTICS_VERSION + 1,
                ours: SEMANTICS_VERSION
            }
        );
        let reason = e.to_string();
        assert!(
            reason.contains(&format!("semantics version {}", SEMANTICS_VERSION + 1))
                && reason.contains(&format!("implements version {SEMANTICS_VERSION}")),
            "{reason}"
        );
    }

    #[test]
    fn only_sampled_verify_checks_confirm_the_sampling() {
        let mut c = good_check();
        if let Some(r) = c.record.as_mut() {
            r.rate_ppm = 0;
        }
        let (_, problem) = examine(&c, Hash32([1; 32]), |_| None).expect("runs");
        assert!(problem.is_some_and(|p| p.contains("not drawn")));
        for (role, reason) in [("referee", "sampled"), ("verify", "audit")] {
            c.role = role.into();
            c.reason = reason.into();
            let (_, problem) = examine(&c, Hash32([1; 32]), |_| None).expect("runs");
            assert_eq!(problem, None, "{role}/{reason}");
        }
    }

    /// A run whose receipt (signed by the verifier) states `root`.
    fn rerun(claimed: &Receipt, root: Hash32) -> assay_runtime::RunReport {
        let key = NodeKey::from_seed([7; 32]);
        let mut body = claimed.body.clone();
        body.provider_id = key.id();
        body.outputs_root = root;
        body.backend.kind = "cpu".into();
        assay_runtime::RunReport {
            job_id: body.job_id,
            outcome: body.outcome,
            outputs: BTreeMap::new(),
            failure: None,
            error: None,
            receipt: body.sign(&key).expect("sign"),
            stdout: Vec::new(),
            stderr: Vec::new(),
            log: String::new(),
            elapsed: Duration::ZERO,
            op_times: BTreeMap::new(),
            trace: Default::default(),
        }
    }

    fn claimed() -> Receipt {
        let c = good_check();
        convert::receipt(c.record.as_ref().and_then(|r| r.receipt.as_ref())).expect("receipt")
    }

    #[test]
    fn a_matching_run_agrees_and_a_different_one_does_not() {
        let receipt = claimed();
        let same = Ok(rerun(&receipt, receipt.body.outputs_root));
        match decide(&same, &receipt, false) {
            Decision::Verdict {
                said, agrees, lie, ..
            } => {
                assert!(agrees && !lie);
                assert_eq!(said, Observed::claimed_by(&receipt.body));
            }
            other => panic!("{other:?}"),
        }
        let other = Ok(rerun(&receipt, Hash32([5; 32])));
        match decide(&other, &receipt, false) {
            Decision::Verdict {
                said,
                agrees,
                comparison,
                ..
            } => {
                assert!(!agrees);
                assert_eq!(said.outputs_root, Hash32([5; 32]));
                assert_eq!(comparison.to_string(), "differs in outputs_root");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_lie_disagrees_with_a_corrupted_root_even_on_a_match() {
        let receipt = claimed();
        let same = Ok(rerun(&receipt, receipt.body.outputs_root));
        match decide(&same, &receipt, true) {
            Decision::Verdict {
                said,
                agrees,
                comparison,
                lie,
            } => {
                assert!(lie && !agrees);
                assert!(comparison.agrees(), "the run really matched");
                assert_ne!(said.outputs_root, receipt.body.outputs_root);
                assert_eq!(said.outputs_root.0[1..], receipt.body.outputs_root.0[1..]);
                assert_eq!(said.fuel_used, receipt.body.fuel_used);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_run_without_a_result_is_never_a_mismatch() {
        let receipt = claimed();
        type MakeError = fn() -> assay_runtime::Error;
        let cases: [(MakeError, bool); 3] = [
            (
                || assay_runtime::Error::ProviderFault {
                    kind: assay_runtime::FaultKind::Watchdog,
                    message: "wall clock".into(),
                },
                true,
            ),
            (
                || assay_runtime::Error::ProviderFault {
                    kind: assay_runtime::FaultKind::Device,
                    message: "out of memory".into(),
                },
                true,
            ),
            (|| assay_runtime::Error::BadComponent("no".into()), false),
        ];
        for (make, local) in cases {
            // Not even the lie knob turns a fault into a verdict.
            for lie in [false, true] {
                match decide(&Err(make()), &receipt, lie) {
                    Decision::GiveBack {
                        reason,
                        local_fault,
                    } => {
                        assert_eq!(local_fault, local, "{reason}");
                        assert!(reason.contains("no result"), "{reason}");
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    fn beacon(seed: [u8; 32], epoch: u64) -> pb::EpochBeacon {
        pb::EpochBeacon {
            epoch,
            commitment: commitment(&seed).0.to_vec(),
            seed: seed.to_vec(),
        }
    }

    #[test]
    fn sampling_is_confirmed_only_from_a_consistent_beacon() {
        let seed = [8u8; 32];
        let b = beacon(seed, 4);
        // Find receipts on both sides of a 50% draw.
        let ids: Vec<Hash32> = (0..64u32).map(|i| Hash32::of(&i.to_le_bytes())).collect();
        let drawn = ids
            .iter()
            .find(|r| is_sampled(r, &seed, 500_000))
            .expect("some receipt is drawn");
        let not = ids
            .iter()
            .find(|r| !is_sampled(r, &seed, 500_000))
            .expect("some receipt is not");
        assert_eq!(sampling_problem(drawn, 4, 500_000, Some(&b), None), None);
        let p = sampling_problem(not, 4, 500_000, Some(&b), None).expect("not drawn");
        assert!(p.contains("not drawn"), "{p}");
        // Wrong epoch, no beacon, unrevealed seed, a seed that is not the
        // committed one, a commitment that changed since it was published.
        assert!(sampling_problem(drawn, 5, 500_000, Some(&b), None).is_some());
        assert!(sampling_problem(drawn, 4, 500_000, None, None).is_some());
        let mut hidden = b.clone();
        hidden.seed.clear();
        assert!(sampling_problem(drawn, 4, 500_000, Some(&hidden), None).is_some());
        let mut swapped = b.clone();
        swapped.seed = vec![9; 32];
        let p = sampling_problem(drawn, 4, 500_000, Some(&swapped), None).expect("bad seed");
        assert!(p.contains("does not hash"), "{p}");
        let earlier = Hash32([1; 32]);
        let p = sampling_problem(drawn, 4, 500_000, Some(&b), Some(&earlier)).expect("swapped");
        assert!(p.contains("earlier"), "{p}");
        let same = commitment(&seed);
        assert_eq!(
            sampling_problem(drawn, 4, 500_000, Some(&b), Some(&same)),
            None
        );
    }
}
