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
pub(super) const MAX_TOTAL_BYTES: u64 = 64 * 1024;
/// Most bytes of one blob a lease carries (larger inputs are downloaded,
/// and cached by the provider).
pub(super) const MAX_LEASE_INPUT_BYTES: u64 = 16 * 1024;

/// Stores the blobs a request carried, after its signature was checked.
///
/// # Errors
///
/// `invalid_argument` over [`MAX_TOTAL_BYTES`]; the store's errors.
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
    let blobs = blobs.clone();
    blocking(move || {
        for bytes in &carried {
            blobs.put(bytes)?;
        }
        Ok(())
    })
    .await
}

/// The bytes of those of `refs` of at most `max_each` bytes, until
/// `max_total` (each blob once; one missing from the store is skipped: the
/// receiver downloads what it does not find inline).
pub(super) async fn read(
    blobs: &Arc<BlobStore>,
    refs: Vec<BlobRef>,
    max_each: u64,
    max_total: u64,
) -> Result<Vec<Vec<u8>>, Status> {
    let blobs = blobs.clone();
    blocking(move || {
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
        Ok(out)
    })
    .await
}
