//! Who may read a blob. A blob's bytes are its owner's data (a renter's
//! inputs and outputs, a provider's trace): the coordinator hands them only
//! to keys with a reason to hold them, and never says whether a blob it
//! will not hand out exists.
//!
//! A key may read a blob when
//! - it uploaded the blob (it proved it holds the bytes),
//! - it is one of the coordinator's arbiters (they re-execute anything),
//! - the blob is the coordinator's own challenge component (public), or
//! - through a job it names: the blob is that job's component, an input (a
//!   shard's split part too) or an output, and the key is the job's renter,
//!   a provider that holds or held a lease on it or signed a receipt of it,
//!   or a verifier assigned one of its checks.

use std::collections::BTreeSet;

use assay_protocol::{Hash32, NodeId};

/// A job's blobs and the keys that take part in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobParties {
    /// Who pays.
    pub renter: NodeId,
    /// Providers with a lease or a receipt, verifiers with a check.
    pub workers: BTreeSet<NodeId>,
    /// The component, every input (shared and per shard) and every output.
    pub blobs: BTreeSet<Hash32>,
}

impl JobParties {
    /// Whether `node` takes part in the job.
    pub fn includes(&self, node: &NodeId) -> bool {
        self.renter == *node || self.workers.contains(node)
    }
}

/// Why a key may read a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// It uploaded the blob.
    Uploader,
    /// It is an arbiter.
    Arbiter,
    /// The blob is public (the challenge component).
    Public,
    /// It takes part in the named job, which uses the blob.
    Party,
}

/// What the coordinator knows about one read.
#[derive(Debug, Clone, Copy)]
pub struct Read<'a> {
    /// The signer.
    pub node: &'a NodeId,
    /// The blob.
    pub hash: &'a Hash32,
    /// The signer uploaded it.
    pub uploaded: bool,
    /// The coordinator's arbiters.
    pub arbiters: &'a [NodeId],
    /// The coordinator's public blob, if any.
    pub public: Option<&'a Hash32>,
    /// The job the request names, as the store found it.
    pub job: Option<&'a JobParties>,
}

/// Why `read.node` may read `read.hash`, or `None`: it may not.
pub fn grant(read: &Read<'_>) -> Option<Grant> {
    if read.uploaded {
        Some(Grant::Uploader)
    } else if read.arbiters.contains(read.node) {
        Some(Grant::Arbiter)
    } else if read.public == Some(read.hash) {
        Some(Grant::Public)
    } else if read
        .job
        .is_some_and(|j| j.blobs.contains(read.hash) && j.includes(read.node))
    {
        Some(Grant::Party)
    } else {
        None
    }
}

/// The refusal's text: the same whether or not the blob exists.
pub fn refusal(node: &NodeId, hash: &Hash32, job: Option<&Hash32>) -> String {
    let through = match job {
        Some(j) => format!(" through job {j}"),
        None => String::new(),
    };
    format!(
        "key {node} may not read blob {hash}{through}: a blob is readable by whoever uploaded it, \
         the arbiters, and through a job (name it in job_id) by that job's renter, its providers \
         and its verifiers; sign with such a key"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(b: u8) -> NodeId {
        NodeId([b; 32])
    }

    fn hash(b: u8) -> Hash32 {
        Hash32([b; 32])
    }

    fn read<'a>(n: &'a NodeId, h: &'a Hash32, job: Option<&'a JobParties>) -> Read<'a> {
        Read {
            node: n,
            hash: h,
            uploaded: false,
            arbiters: &[],
            public: None,
            job,
        }
    }

    #[test]
    fn a_stranger_reads_nothing_and_each_grant_opens_only_its_blobs() {
        let job = JobParties {
            renter: node(1),
            workers: [node(2), node(3)].into(),
            blobs: [hash(10), hash(11)].into(),
        };
        let (stranger, renter, worker) = (node(9), node(1), node(2));
        let (used, other) = (hash(10), hash(99));
        assert_eq!(grant(&read(&stranger, &used, Some(&job))), None);
        assert_eq!(grant(&read(&stranger, &used, None)), None);
        assert_eq!(grant(&read(&renter, &used, Some(&job))), Some(Grant::Party));
        assert_eq!(grant(&read(&worker, &used, Some(&job))), Some(Grant::Party));
        // A party of one job reads only that job's blobs, and only by naming it.
        assert_eq!(grant(&read(&renter, &other, Some(&job))), None);
        assert_eq!(grant(&read(&renter, &used, None)), None);
        let uploaded = Read {
            uploaded: true,
            ..read(&stranger, &other, None)
        };
        assert_eq!(grant(&uploaded), Some(Grant::Uploader));
        let arbiters = [node(7)];
        let arbiter = Read {
            arbiters: &arbiters,
            ..read(&arbiters[0], &other, None)
        };
        assert_eq!(grant(&arbiter), Some(Grant::Arbiter));
        let public = Read {
            public: Some(&other),
            ..read(&stranger, &other, None)
        };
        assert_eq!(grant(&public), Some(Grant::Public));
    }
}
