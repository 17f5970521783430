//! Who may read which blob: the keys that uploaded each blob, and a job's
//! parties and blobs, for [`crate::rules::access`] to decide. Also what
//! blob retention asks ([`crate::retention`]): the bytes a key has stored,
//! and whether a live job still names a blob.

use std::collections::BTreeSet;

use assay_protocol::{BlobRef, Hash32, NodeId};

use super::rows::unjson;
use super::sql::{Backend, Conn, int};
use super::sql_store::SqlStore;
use crate::Error;
use crate::rules::access::JobParties;

/// Blob owners and a job's parties.
pub trait BlobAccess {
    /// Records that `node` uploaded blob `hash` of `size` bytes at
    /// `now_ms` (it proved it holds the bytes); again only moves the time.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn add_blob_owner(
        &self,
        hash: &Hash32,
        node: &NodeId,
        size: u64,
        now_ms: u64,
    ) -> Result<(), Error>;
    /// The bytes of the blobs `node` uploaded that are still stored, and
    /// whether `hash` is one of them (uploading it again costs nothing).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn stored_by(&self, node: &NodeId, hash: &Hash32) -> Result<(u64, bool), Error>;
    /// Whether blob `hash` must be kept at a sweep whose retention began at
    /// `since_ms`: uploaded since then, or named by a job created since
    /// then, one with a shard queued or leased, or one with a receipt not
    /// settled or settled since then.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn blob_in_use(&self, hash: &Hash32, since_ms: u64) -> Result<bool, Error>;
    /// Forgets a collected blob: its uploaders (their quota is free again)
    /// and which jobs named it.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn forget_blob(&self, hash: &Hash32) -> Result<(), Error>;
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
    fn add_blob_owner(
        &self,
        hash: &Hash32,
        node: &NodeId,
        size: u64,
        now_ms: u64,
    ) -> Result<(), Error> {
        self.b.write(&mut |c| {
            c.exec(
                "INSERT INTO blob_owners (hash, node, size, uploaded_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (hash, node) DO UPDATE SET uploaded_at = excluded.uploaded_at, size = excluded.size",
                &[hash.into(), node.into(), int(size)?, int(now_ms)?],
            )
        })?;
        Ok(())
    }

    fn stored_by(&self, node: &NodeId, hash: &Hash32) -> Result<(u64, bool), Error> {
        self.b.read(&mut |c| {
            let total = c
                .query_one(
                    "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blob_owners WHERE node = $1",
                    &[node.into()],
                )?
                .u64(0)?;
            let owned = c
                .query_opt(
                    "SELECT 1 FROM blob_owners WHERE hash = $1 AND node = $2",
                    &[hash.into(), node.into()],
                )?
                .is_some();
            Ok((total, owned))
        })
    }

    fn blob_in_use(&self, hash: &Hash32, since_ms: u64) -> Result<bool, Error> {
        self.b.read(&mut |c| {
            let since = int(since_ms)?;
            if c.query_opt(
                "SELECT 1 FROM blob_owners WHERE hash = $1 AND uploaded_at >= $2 LIMIT 1",
                &[hash.into(), since.clone()],
            )?
            .is_some()
            {
                return Ok(true);
            }
            Ok(c.query_opt(
                "SELECT 1 FROM blob_refs r JOIN jobs j ON j.id = r.job_id WHERE r.hash = $1 AND ( \
                   j.created_at >= $2 \
                   OR EXISTS (SELECT 1 FROM shards s WHERE s.job_id = j.id AND s.state IN ('queued', 'leased')) \
                   OR EXISTS (SELECT 1 FROM receipts k WHERE k.job_id = j.id \
                              AND (k.settled_at IS NULL OR k.settled_at >= $2))) \
                 LIMIT 1",
                &[hash.into(), since],
            )?
            .is_some())
        })
    }

    fn forget_blob(&self, hash: &Hash32) -> Result<(), Error> {
        self.b.write(&mut |c| {
            c.exec("DELETE FROM blob_owners WHERE hash = $1", &[hash.into()])?;
            c.exec("DELETE FROM blob_refs WHERE hash = $1", &[hash.into()])?;
            Ok(())
        })
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

/// Records that job `job` names each of `blobs` (its component, inputs,
/// its shards' own inputs, its outputs), inside the transaction that
/// stores them.
///
/// # Errors
///
/// [`Error::Database`].
pub(super) fn add_refs<'a>(
    c: &mut dyn Conn,
    job: &Hash32,
    blobs: impl IntoIterator<Item = &'a Hash32>,
) -> Result<(), Error> {
    let unique: BTreeSet<&Hash32> = blobs.into_iter().collect();
    // One statement per job (a round trip on the path of every submission),
    // in rows of at most 500.
    let unique: Vec<&Hash32> = unique.into_iter().collect();
    for rows in unique.chunks(500) {
        let mut sql = String::from("INSERT INTO blob_refs (hash, job_id) VALUES ");
        let mut params = vec![job.into()];
        for (i, hash) in rows.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, $1)", i + 2));
            params.push((*hash).into());
        }
        sql.push_str(" ON CONFLICT (hash, job_id) DO NOTHING");
        c.exec(&sql, &params)?;
    }
    Ok(())
}

/// Fills `blob_refs` from the jobs, shards and receipts stored before it
/// existed (schema v13).
///
/// # Errors
///
/// [`Error::Database`]; [`Error::Corrupt`] for a stored list that does
/// not parse.
pub(super) fn backfill_blob_refs(c: &mut dyn Conn) -> Result<(), Error> {
    let mut named: Vec<(Hash32, Vec<Hash32>)> = Vec::new();
    for j in c.query("SELECT id, component_hash, inputs FROM jobs", &[])? {
        let inputs: Vec<BlobRef> = unjson(j.text(2)?, "inputs")?;
        let mut blobs = vec![j.hash(1)?];
        blobs.extend(inputs.iter().map(|b| b.hash));
        named.push((j.hash(0)?, blobs));
    }
    for s in c.query(
        "SELECT job_id, inputs FROM shards WHERE inputs IS NOT NULL",
        &[],
    )? {
        let own: Vec<BlobRef> = unjson(s.text(1)?, "shard inputs")?;
        named.push((s.hash(0)?, own.iter().map(|b| b.hash).collect()));
    }
    for r in c.query("SELECT job_id, outputs FROM receipts", &[])? {
        let outputs: Vec<BlobRef> = unjson(r.text(1)?, "outputs")?;
        named.push((r.hash(0)?, outputs.iter().map(|b| b.hash).collect()));
    }
    for (job, blobs) in &named {
        add_refs(c, job, blobs)?;
    }
    Ok(())
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
