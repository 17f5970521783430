//! Small blobs carried inside messages instead of uploaded or downloaded on
//! their own: a request may bring its few-KB inputs or outputs
//! (`inline_blobs`, `inline_outputs`), and a lease or a job's status may
//! carry the bytes of small ones (`inline_inputs`, `inline_outputs`). Each
//! saves a round trip on the path of a short job, where round trips are
//! most of the time; every blob is still stored, and named, by its hash.

use std::collections::BTreeSet;
use std::sync::Arc;

use assay_protocol::{BlobRef, Hash32};
use tonic::Status;

use super::blocking;
use crate::blobs::BlobStore;

/// Most bytes of blobs one message carries.
pub(super) const MAX_TOTAL_BYTES: u64 = assay_proto::INLINE_MAX_BYTES;
/// Most bytes of one blob a lease carries (larger inputs are downloaded,
/// and cached by the provider).
pub(super) const MAX_LEASE_INPUT_BYTES: u64 = 16 * 1024;

/// Stores the blobs a request carried, after its signature was checked.
///
/// # Errors
///
/// `invalid_argument` over [`MAX_TOTAL_BYTES`], `resource_exhausted` for
/// a blob over the upload limit; the store's errors.
pub(super) async fn store(
    blobs: &Arc<BlobStore>,
    field: &str,
    carried: Vec<Vec<u8>>,
) -> Result<(), Status> {
    if carried.is_empty() {
        return Ok(());
    }
    let total: u64 = carried.iter().map(|b| b.len() as u64).sum();
    if total > MAX_TOTAL_BYTES {
        return Err(Status::invalid_argument(format!(
            "{field} carries {total} bytes; at most {MAX_TOTAL_BYTES} may come inline: upload larger blobs first"
        )));
    }
    // What a stranger sends inline obeys the upload limit too.
    if let Some(big) = carried.iter().find(|b| b.len() as u64 > blobs.max_bytes()) {
        return Err(Status::resource_exhausted(format!(
            "a blob in {field} is {} bytes, over this coordinator's limit of {} bytes (--max-blob-bytes)",
            big.len(),
            blobs.max_bytes()
        )));
    }
    let blobs = blobs.clone();
    blocking(move || {
        for bytes in &carried {
            blobs.put(bytes)?;
        }
        Ok(())
    })
    .await
}

/// The bytes of those of `refs` of at most `max_each` bytes, while they fit
/// in `budget`, which shrinks by what they take (each blob once; one missing
/// from the store is skipped: the receiver downloads what it does not find
/// inline).
pub(super) async fn read(
    blobs: &Arc<BlobStore>,
    refs: Vec<BlobRef>,
    max_each: u64,
    budget: &mut u64,
) -> Result<Vec<Vec<u8>>, Status> {
    if *budget == 0 {
        return Ok(Vec::new());
    }
    let blobs = blobs.clone();
    let max_total = *budget;
    let (out, left) = blocking(move || {
        let mut seen: BTreeSet<Hash32> = BTreeSet::new();
        let mut left = max_total;
        let mut out = Vec::new();
        for r in refs {
            if r.size > max_each || r.size > left || !seen.insert(r.hash) {
                continue;
            }
            if let Ok(bytes) = blobs.read(&r.hash) {
                left -= r.size;
                out.push(bytes);
            }
        }
        Ok((out, left))
    })
    .await?;
    *budget = left;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_of(max_bytes: u64) -> (tempfile::TempDir, Arc<BlobStore>) {
        let dir = tempfile::tempdir().expect("tmp");
        let blobs = BlobStore::open(dir.path(), max_bytes).expect("blob store");
        (dir, Arc::new(blobs))
    }

    #[tokio::test]
    async fn carried_blobs_are_stored_by_hash_within_both_limits() {
        let (_dir, blobs) = store_of(4096);
        store(&blobs, "inline_blobs", vec![b"small".to_vec()])
            .await
            .expect("stored");
        assert_eq!(blobs.size(&Hash32::of(b"small")), Some(5));
        // Over the coordinator's upload limit, as an upload would be.
        let e = store(&blobs, "inline_blobs", vec![vec![1; 5000]])
            .await
            .expect_err("over --max-blob-bytes");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e}");
        // Over what one message may carry.
        let (_dir, roomy) = store_of(1 << 20);
        let e = store(&roomy, "inline_outputs", vec![vec![2; 40 << 10]; 2])
            .await
            .expect_err("over 64 KiB");
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        assert!(e.message().contains("upload larger blobs first"), "{e}");
    }

    #[tokio::test]
    async fn a_message_carries_small_stored_blobs_once_within_its_budget() {
        let (_dir, blobs) = store_of(1 << 20);
        let refs: Vec<BlobRef> = [vec![1u8; 100], vec![2; 3000], vec![3; 200]]
            .iter()
            .map(|b| {
                blobs.put(b).expect("put");
                BlobRef {
                    name: format!("b{}", b[0]),
                    hash: Hash32::of(b),
                    size: b.len() as u64,
                }
            })
            .collect();
        let mut asked = refs.clone();
        asked.push(refs[0].clone()); // twice: carried once
        asked.push(BlobRef {
            name: "missing".into(),
            hash: Hash32::of(b"never stored"),
            size: 3,
        });
        // Each at most 1000 bytes, 250 in all: the 100-byte one only.
        let mut budget = 250;
        let carried = read(&blobs, asked.clone(), 1000, &mut budget)
            .await
            .expect("read");
        assert_eq!(carried, vec![vec![1u8; 100]]);
        assert_eq!(budget, 150, "what it took is gone from the budget");
        // Room for all: the 3000-byte one is over max_each.
        let mut budget = 1 << 20;
        let carried = read(&blobs, asked, 1000, &mut budget).await.expect("read");
        assert_eq!(carried, vec![vec![1u8; 100], vec![3; 200]]);
    }
}
