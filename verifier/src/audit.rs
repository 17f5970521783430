//! Auditing the coordinator's sampling (`assay verifier audit`).
//!
//! Once an epoch's seed is revealed, anybody can recompute which receipts
//! of that epoch had to be checked. This module does so for the public
//! receipt feed (`ListReceipts`), with the beacon (`GetBeacon`) and each
//! job's status (`GetJob`), and reports every decision that does not follow
//! the rule: a seed that does not hash to its epoch's commitment, a receipt
//! that was drawn but left unchecked (`not-sampled`), and a receipt checked
//! as `sampled` that was not drawn. Checks for other reasons (`audit` of a
//! caught cheater, `challenge`) are allowed on any receipt.
//!
//! # Example
//!
//! ```
//! use assay_protocol::Hash32;
//! use assay_protocol::verification::commitment;
//! use assay_verifier::audit::{Finding, judge};
//!
//! let seed = [3u8; 32];
//! let receipt = Hash32::of(b"receipt");
//! // Rate 100%: the receipt had to be checked, and was.
//! assert_eq!(judge(&receipt, 1_000_000, Some((&commitment(&seed), &seed)), "verified", "sampled"), Finding::Checked);
//! // … but the coordinator let it settle unchecked.
//! assert!(matches!(judge(&receipt, 1_000_000, Some((&commitment(&seed), &seed)), "not-sampled", ""), Finding::Violation(_)));
//! ```

use std::collections::BTreeMap;
use std::fmt;

use assay_proto::pb::renter_client::RenterClient;
use assay_proto::pb::verifier_client::VerifierClient;
use assay_proto::{convert, pb};
use assay_protocol::Hash32;
use assay_protocol::verification::{commitment, is_sampled};
use serde::Serialize;
use tonic::transport::Channel;

use crate::Error;

/// What the audit concluded about one receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", content = "detail", rename_all = "kebab-case")]
pub enum Finding {
    /// The job opted out of verification (rate 0).
    Unverified,
    /// The epoch's seed is not revealed yet.
    Pending,
    /// Drawn, and checked (or being checked).
    Checked,
    /// Not drawn, and not checked as sampled.
    NotDrawn,
    /// Checked for another reason (an audit, a challenge).
    CheckedOtherwise,
    /// The receipt's current state could not be found (its shard moved on).
    Unknown,
    /// The coordinator broke the sampling rule.
    Violation(String),
}

/// States in which a receipt has been (or is being) checked.
const CHECKED: [&str; 6] = [
    "sampled", "checking", "disputed", "verified", "rejected", "void",
];

/// Judges one receipt: its id, its job's rate, its epoch's (commitment,
/// revealed seed) if revealed, and the state and reason the coordinator
/// reports for its check.
pub fn judge(
    receipt: &Hash32,
    rate_ppm: u32,
    beacon: Option<(&Hash32, &[u8; 32])>,
    state: &str,
    reason: &str,
) -> Finding {
    if rate_ppm == 0 {
        return Finding::Unverified;
    }
    let Some((committed, seed)) = beacon else {
        return Finding::Pending;
    };
    if commitment(seed) != *committed {
        return Finding::Violation(
            "the revealed seed does not hash to the epoch's commitment".into(),
        );
    }
    let drawn = is_sampled(receipt, seed, rate_ppm);
    let checked = CHECKED.contains(&state);
    match (drawn, checked, reason) {
        (true, true, _) => Finding::Checked,
        (true, false, _) if state == "not-sampled" => {
            Finding::Violation("drawn by the seed but settled without a check (not-sampled)".into())
        }
        (true, false, _) if state == "pending" => Finding::Pending,
        (true, false, _) => Finding::Unknown,
        (false, true, "sampled") => {
            Finding::Violation("checked as sampled although the seed did not draw it".into())
        }
        (false, true, _) => Finding::CheckedOtherwise,
        (false, false, _) => Finding::NotDrawn,
    }
}

/// One audited receipt.
#[derive(Debug, Clone, Serialize)]
pub struct Audited {
    /// Its place in the feed.
    pub seq: u64,
    /// The receipt.
    pub receipt: Hash32,
    /// Its market job.
    pub job: Hash32,
    /// Its epoch.
    pub epoch: u64,
    /// Its job's rate, ppm.
    pub rate_ppm: u32,
    /// The check state the coordinator reports.
    pub state: String,
    /// What the audit concluded.
    #[serde(flatten)]
    pub finding: Finding,
}

/// The audit of a stretch of the receipt feed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Every receipt audited, in feed order.
    pub receipts: Vec<Audited>,
    /// The feed position to continue from.
    pub next_seq: u64,
}

impl Report {
    /// Receipts with a given kind of finding.
    pub fn count(&self, f: impl Fn(&Finding) -> bool) -> usize {
        self.receipts.iter().filter(|a| f(&a.finding)).count()
    }

    /// The violations found.
    pub fn violations(&self) -> impl Iterator<Item = &Audited> {
        self.receipts
            .iter()
            .filter(|a| matches!(a.finding, Finding::Violation(_)))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |k: fn(&Finding) -> bool| self.count(k);
        writeln!(f, "receipts audited   {}", self.receipts.len())?;
        writeln!(
            f,
            "drawn and checked  {}",
            n(|x| matches!(x, Finding::Checked))
        )?;
        writeln!(
            f,
            "not drawn          {}",
            n(|x| matches!(x, Finding::NotDrawn))
        )?;
        writeln!(
            f,
            "checked otherwise  {} (audits of caught cheaters, challenges)",
            n(|x| matches!(x, Finding::CheckedOtherwise))
        )?;
        writeln!(
            f,
            "seed not out yet   {}",
            n(|x| matches!(x, Finding::Pending))
        )?;
        writeln!(
            f,
            "unverified jobs    {}",
            n(|x| matches!(x, Finding::Unverified))
        )?;
        writeln!(
            f,
            "state unknown      {}",
            n(|x| matches!(x, Finding::Unknown))
        )?;
        let bad: Vec<&Audited> = self.violations().collect();
        writeln!(f, "violations         {}", bad.len())?;
        for a in bad {
            if let Finding::Violation(why) = &a.finding {
                writeln!(
                    f,
                    "  receipt {} (seq {}, epoch {}, state {}): {why}",
                    a.receipt, a.seq, a.epoch, a.state
                )?;
            }
        }
        Ok(())
    }
}

/// The state and reason the coordinator reports for receipt `id` of shard
/// `index` of `job`.
fn state_of(job: &pb::JobStatus, index: u32, id: &Hash32) -> (String, String) {
    let Some(shard) = job.shards.iter().find(|s| s.index == index) else {
        return (String::new(), String::new());
    };
    if shard.rejected_receipts.iter().any(|r| r.as_slice() == id.0) {
        return ("rejected".into(), String::new());
    }
    let current = convert::receipt(shard.receipt.as_ref()).map(|r| r.id());
    match (&current, &shard.verification) {
        (Ok(c), Some(v)) if c == id => (v.state.clone(), v.reason.clone()),
        _ => (String::new(), String::new()),
    }
}

/// Audits up to `limit` receipts of the feed after `after_seq`.
///
/// # Errors
///
/// [`Error::Proto`] if the coordinator cannot be reached or answers with
/// something malformed.
pub async fn audit(channel: &Channel, after_seq: u64, limit: u32) -> Result<Report, Error> {
    let mut verifier = VerifierClient::new(channel.clone())
        .max_decoding_message_size(assay_proto::client::MAX_MESSAGE_BYTES);
    let mut renter = RenterClient::new(channel.clone())
        .max_decoding_message_size(assay_proto::client::MAX_MESSAGE_BYTES);
    let mut report = Report {
        next_seq: after_seq,
        ..Report::default()
    };
    let mut beacons: BTreeMap<u64, Option<(Hash32, [u8; 32])>> = BTreeMap::new();
    let mut jobs: BTreeMap<Hash32, pb::JobStatus> = BTreeMap::new();
    let mut left = limit;
    while left > 0 {
        let page = verifier
            .list_receipts(pb::ListReceiptsRequest {
                after_seq: report.next_seq,
                limit: left.min(1000),
            })
            .await
            .map_err(assay_proto::Error::from)?
            .into_inner()
            .receipts;
        if page.is_empty() {
            break;
        }
        left = left.saturating_sub(page.len() as u32);
        for r in page {
            report.next_seq = report.next_seq.max(r.seq);
            let id = convert::hash("receipt_id", &r.receipt_id)?;
            let job = convert::hash("job_id", &r.job_id)?;
            let receipt = convert::receipt(r.receipt.as_ref())?;
            if !beacons.contains_key(&r.epoch) {
                let resp = verifier
                    .get_beacon(pb::GetBeaconRequest {
                        from_epoch: r.epoch,
                    })
                    .await
                    .map_err(assay_proto::Error::from)?
                    .into_inner();
                for b in resp.epochs {
                    let revealed = match (
                        convert::hash("beacon.commitment", &b.commitment),
                        <[u8; 32]>::try_from(b.seed.as_slice()),
                    ) {
                        (Ok(c), Ok(s)) => Some((c, s)),
                        _ => None,
                    };
                    beacons.insert(b.epoch, revealed);
                }
                beacons.entry(r.epoch).or_insert(None);
            }
            if let std::collections::btree_map::Entry::Vacant(slot) = jobs.entry(job) {
                let status = renter
                    .get_job(pb::GetJobRequest {
                        job_id: job.0.to_vec(),
                        ..Default::default()
                    })
                    .await
                    .map_err(assay_proto::Error::from)?
                    .into_inner();
                slot.insert(status);
            }
            let (state, reason) = jobs
                .get(&job)
                .map(|j| state_of(j, receipt.body.shard.index, &id))
                .unwrap_or_default();
            let beacon = beacons
                .get(&r.epoch)
                .and_then(|b| b.as_ref())
                .map(|(c, s)| (c, s));
            let finding = judge(&id, r.rate_ppm, beacon, &state, &reason);
            report.receipts.push(Audited {
                seq: r.seq,
                receipt: id,
                job,
                epoch: r.epoch,
                rate_ppm: r.rate_ppm,
                state,
                finding,
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<Hash32> {
        (0..200u32).map(|i| Hash32::of(&i.to_le_bytes())).collect()
    }

    #[test]
    fn the_rule_is_applied_both_ways() {
        let seed = [4u8; 32];
        let c = commitment(&seed);
        let b = Some((&c, &seed));
        let ids = ids();
        let drawn = ids
            .iter()
            .find(|r| is_sampled(r, &seed, 300_000))
            .expect("one drawn");
        let not = ids
            .iter()
            .find(|r| !is_sampled(r, &seed, 300_000))
            .expect("one not");
        assert_eq!(
            judge(drawn, 300_000, b, "verified", "sampled"),
            Finding::Checked
        );
        assert_eq!(
            judge(drawn, 300_000, b, "checking", "sampled"),
            Finding::Checked
        );
        assert!(matches!(
            judge(drawn, 300_000, b, "not-sampled", ""),
            Finding::Violation(_)
        ));
        assert_eq!(judge(not, 300_000, b, "not-sampled", ""), Finding::NotDrawn);
        assert!(matches!(
            judge(not, 300_000, b, "verified", "sampled"),
            Finding::Violation(_)
        ));
        assert_eq!(
            judge(not, 300_000, b, "verified", "audit"),
            Finding::CheckedOtherwise
        );
        assert_eq!(judge(drawn, 300_000, None, "pending", ""), Finding::Pending);
        assert_eq!(judge(drawn, 0, b, "unverified", ""), Finding::Unverified);
    }

    #[test]
    fn a_seed_that_is_not_the_committed_one_is_a_violation() {
        let seed = [4u8; 32];
        let other = commitment(&[5u8; 32]);
        let f = judge(
            &Hash32([1; 32]),
            1_000_000,
            Some((&other, &seed)),
            "verified",
            "sampled",
        );
        assert!(
            matches!(f, Finding::Violation(ref w) if w.contains("commitment")),
            "{f:?}"
        );
    }
}
