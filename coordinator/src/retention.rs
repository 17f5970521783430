//! Blob retention: a periodic sweep deletes the blobs that nothing needs
//! any more, so the blob store does not grow forever.
//!
//! A blob is kept while any of these holds, else collected once it is
//! older than the retention period ([`Retention::keep_ms`]):
//!
//! - it was stored, stored again, or named by a new job within the period
//!   (its time in the blob store, [`BlobStore::touch`]);
//! - a key uploaded it within the period;
//! - a job that names it (component, inputs, a shard's own inputs,
//!   outputs) was created within the period, has a shard queued or
//!   leased, or has a receipt not yet settled or settled within the period
//!   ([`crate::store::BlobAccess::blob_in_use`]);
//! - it is the public challenge component.
//!
//! So a renter has the retention period after its job settles to download
//! the outputs. A collected blob's uploaders are forgotten: their quota
//! ([`crate::rules::storage`]) is free again.

use std::sync::Arc;
use std::time::Duration;

use assay_proto::now_ms;
use assay_protocol::Hash32;

use crate::Error;
use crate::blobs::BlobStore;
use crate::rules::storage::retained_since;
use crate::store::Store;

/// How long blobs are kept and how often the store is swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// A blob nothing has used for this long is collected.
    pub keep_ms: u64,
    /// Time between sweeps.
    pub sweep_every_ms: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_ms: 7 * 86_400_000,
            sweep_every_ms: 3_600_000,
        }
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Blobs older than the period that a live job or a recent upload
    /// still needs.
    pub kept: u64,
    /// Blobs deleted.
    pub collected: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// One sweep at `now_ms`, keeping what was used within `keep_ms` and
/// `public` (the challenge component) always.
///
/// # Errors
///
/// The store's, or [`Error::Io`] if a blob cannot be deleted.
pub fn sweep(
    blobs: &BlobStore,
    store: &dyn Store,
    now_ms: u64,
    keep_ms: u64,
    public: Option<&Hash32>,
) -> Result<Sweep, Error> {
    let since = retained_since(now_ms, keep_ms);
    let mut done = Sweep::default();
    for (hash, _) in blobs.stored_before(since) {
        if public == Some(&hash) || store.blob_in_use(&hash, since)? {
            done.kept += 1;
            continue;
        }
        match blobs.collect(&hash, since)? {
            Some(size) => {
                store.forget_blob(&hash)?;
                done.collected += 1;
                done.bytes += size;
            }
            None => done.kept += 1,
        }
    }
    Ok(done)
}

/// Sweeps every [`Retention::sweep_every_ms`] until `shutdown` resolves.
pub async fn run(
    blobs: Arc<BlobStore>,
    store: Arc<dyn Store>,
    retention: Retention,
    public: Option<Hash32>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut interval =
        tokio::time::interval(Duration::from_millis(retention.sweep_every_ms.max(100)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = interval.tick() => {}
        }
        let (blobs, store) = (blobs.clone(), store.clone());
        let now = now_ms();
        let done = tokio::task::spawn_blocking(move || {
            sweep(
                &blobs,
                store.as_ref(),
                now,
                retention.keep_ms,
                public.as_ref(),
            )
        })
        .await;
        match done {
            Ok(Ok(s)) if s.collected > 0 => tracing::info!(
                collected = s.collected,
                bytes = s.bytes,
                kept = s.kept,
                "collected blobs past retention"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "blob sweep failed"),
            Err(e) => tracing::error!(error = %e, "blob sweeper failed"),
        }
    }
}
