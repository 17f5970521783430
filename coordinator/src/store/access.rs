//! Who may read which blob: the keys that uploaded each blob, and a job's
//! parties and blobs, for [`crate::rules::access`] to decide.

use std::collections::BTreeSet;

use assay_protocol::{BlobRef, Hash32, NodeId};

use super::rows::unjson;
use super::sql::{Backend, Conn};
use super::sql_store::SqlStore;
use crate::Error;
use crate::rules::access::JobParties;

/// Blob owners and a job's parties.
pub trait BlobAccess {
    /// Records that `node` uploaded blob `hash` (it proved it holds the
    /// bytes); again is a no-op.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn add_blob_owner(&self, hash: &Hash32, node: &NodeId) -> Result<(), Error>;
    /// Which of `hashes` `node` uploaded.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn uploaded_by(&self, node: &NodeId, hashes: &[Hash32]) -> Result<BTreeSet<Hash32>, Error>;
    /// Job `job`'s blobs and the keys that take part in it, if `node` is
    /// one of them (else the parties are left empty: a stranger learns
    /// nothing about the job's blobs). `None`: no such job.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn job_parties(&self, job: &Hash32, node: &NodeId) -> Result<Option<JobParties>, Error>;
}

impl<B: Backend> BlobAccess for SqlStore<B> {
    fn add_blob_owner(&self, hash: &Hash32, node: &NodeId) -> Result<(), Error> {
        self.b.write(&mut |c| {
            c.exec(
                "INSERT INTO blob_owners (hash, node) VALUES ($1, $2) \
                 ON CONFLICT (hash, node) DO NOTHING",
                &[hash.into(), node.into()],
            )
        })?;
        Ok(())
    }

    fn uploaded_by(&self, node: &NodeId, hashes: &[Hash32]) -> Result<BTreeSet<Hash32>, Error> {
        self.b.read(&mut |c| {
            let mut out = BTreeSet::new();
            for h in hashes {
                if c.query_opt(
                    "SELECT 1 FROM blob_owners WHERE hash = $1 AND node = $2",
                    &[h.into(), node.into()],
                )?
                .is_some()
                {
                    out.insert(*h);
                }
            }
            Ok(out)
        })
    }

    fn job_parties(&self, job: &Hash32, node: &NodeId) -> Result<Option<JobParties>, Error> {
        self.b.read(&mut |c| read_parties(c, job, node))
    }
}

fn read_parties(
    c: &mut dyn Conn,
    job: &Hash32,
    node: &NodeId,
) -> Result<Option<JobParties>, Error> {
    let Some(j) = c.query_opt(
        "SELECT renter, component_hash, inputs FROM jobs WHERE id = $1",
        &[job.into()],
    )?
    else {
        return Ok(None);
    };
    let renter = j.node(0)?;
    let mut parties = JobParties {
        renter,
        workers: BTreeSet::new(),
        blobs: BTreeSet::new(),
    };
    // Only the signer's own part is looked up: its leases (an index on
    // provider, job), its receipts and its checks.
    if renter != *node {
        if !works_on(c, job, node)? {
            return Ok(Some(parties));
        }
        parties.workers.insert(*node);
    }
    parties.blobs.insert(j.hash(1)?);
    let inputs: Vec<BlobRef> = unjson(j.text(2)?, "inputs")?;
    parties.blobs.extend(inputs.iter().map(|b| b.hash));
    for s in c.query(
        "SELECT inputs FROM shards WHERE job_id = $1 AND inputs IS NOT NULL",
        &[job.into()],
    )? {
        let own: Vec<BlobRef> = unjson(s.text(0)?, "shard inputs")?;
        parties.blobs.extend(own.iter().map(|b| b.hash));
    }
    for r in c.query(
        "SELECT outputs FROM receipts WHERE job_id = $1",
        &[job.into()],
    )? {
        let outputs: Vec<BlobRef> = unjson(r.text(0)?, "outputs")?;
        parties.blobs.extend(outputs.iter().map(|b| b.hash));
    }
    Ok(Some(parties))
}

/// Whether `node` holds or held a lease on `job`, signed a receipt of it or
/// was assigned one of its checks (each an index lookup on the signer's own
/// rows).
fn works_on(c: &mut dyn Conn, job: &Hash32, node: &NodeId) -> Result<bool, Error> {
    let queries = [
        "SELECT 1 FROM leases WHERE provider = $1 AND job_id = $2 LIMIT 1",
        "SELECT 1 FROM receipts WHERE provider = $1 AND job_id = $2 LIMIT 1",
        "SELECT 1 FROM receipts r JOIN checks k ON k.receipt_id = r.id \
         WHERE k.verifier = $1 AND r.job_id = $2 LIMIT 1",
    ];
    for q in queries {
        if c.query_opt(q, &[node.into(), job.into()])?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}
