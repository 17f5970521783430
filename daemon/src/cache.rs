//! A node's local blob cache: content-addressed files named by their blake3
//! hash, filled from a [`BlobSource`] (the coordinator's `Blobs` service) on
//! a miss.
//!
//! The provider and the verifier daemons both fetch components and inputs by
//! hash; this is the one implementation (the worker loop in
//! [`crate::worker`] retries transient download errors around it). A cached file is re-hashed when it
//! is read from disk, so a corrupted or tampered file is never used (it is
//! downloaded again and replaced). The most recently used blobs (up to
//! [`HOT_BYTES`]) are also kept in memory once checked, so a model used by
//! job after job is not read and hashed again for each (a 90 MB model costs
//! ~0.1 s of CPU per read). Files are written to a unique temporary name and
//! renamed, so two tasks fetching the same blob at once, or a crash half way
//! through a write, never leave a truncated file under a blob's name.
//!
//! # Example
//!
//! ```no_run
//! use assay_daemon::cache::{BlobCache, SignedChannel, Source};
//! use assay_protocol::Hash32;
//!
//! # async fn demo(hash: Hash32) -> Result<(), assay_proto::Error> {
//! let channel = assay_proto::client::channel("http://127.0.0.1:7700")?;
//! let key = assay_protocol::NodeKey::from_seed([7; 32]);
//! let signer = assay_proto::client::signer(&channel, key).await?;
//! let coordinator = SignedChannel::new(channel, signer);
//! let cache = BlobCache::new("/tmp/assay-blobs", 1 << 30);
//! // Not through a job: only blobs this key uploaded (or as an arbiter).
//! let (bytes, source) = cache.get(&coordinator, &hash, None).await?;
//! assert_eq!(Hash32::of(&bytes), hash);
//! if let Source::Downloaded = source {
//!     println!("fetched {} bytes", bytes.len());
//! }
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use assay_proto::{Error, client};
use assay_protocol::Hash32;
use tonic::transport::Channel;

/// A boxed future that can move between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where missing blobs come from: the coordinator ([`SignedChannel`]), or
/// a stand-in in tests.
pub trait BlobSource: Send + Sync {
    /// The bytes of blob `hash`, read through market job `job` if named
    /// (the coordinator hands a blob only to a key with a reason to read
    /// it), at most `max_bytes` of them (not yet checked against `hash`:
    /// the cache does that).
    fn download<'a>(
        &'a self,
        hash: &'a Hash32,
        job: Option<&'a Hash32>,
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, Error>>;
}

/// The coordinator as a [`BlobSource`]: a channel to it and the key that
/// signs each download.
#[derive(Debug, Clone)]
pub struct SignedChannel {
    channel: Channel,
    signer: Arc<assay_proto::auth::Signer>,
}

impl SignedChannel {
    /// Downloads over `channel`, signed by `signer`.
    pub fn new(channel: Channel, signer: assay_proto::auth::Signer) -> SignedChannel {
        SignedChannel {
            channel,
            signer: Arc::new(signer),
        }
    }
}

impl BlobSource for SignedChannel {
    fn download<'a>(
        &'a self,
        hash: &'a Hash32,
        job: Option<&'a Hash32>,
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
        Box::pin(client::download(
            &self.channel,
            &self.signer,
            job,
            hash,
            max_bytes,
        ))
    }
}

/// Where a blob came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The local cache (its bytes re-hashed to the requested hash).
    Cache,
    /// The coordinator (and it is now in the cache).
    Downloaded,
}

/// How many bytes of checked blobs a cache keeps in memory.
pub const HOT_BYTES: u64 = 1 << 30;

/// How many bytes of blobs a cache keeps on disk by default: past it, the
/// blobs used longest ago are deleted (a model used by job after job stays).
pub const DISK_BYTES: u64 = 32 << 30;

/// A directory of blobs named by their hash (hex).
#[derive(Debug)]
pub struct BlobCache {
    dir: PathBuf,
    max_bytes: u64,
    disk_bytes: u64,
    tmp_counter: AtomicU64,
    /// Checked blobs in memory, least recently used first.
    hot: Mutex<Vec<(Hash32, Arc<[u8]>)>>,
}

impl BlobCache {
    /// A cache in `dir` (created on the first write) that refuses to
    /// download blobs larger than `max_bytes`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> BlobCache {
        BlobCache {
            dir: dir.into(),
            max_bytes,
            disk_bytes: DISK_BYTES.max(max_bytes),
            tmp_counter: AtomicU64::new(0),
            hot: Mutex::new(Vec::new()),
        }
    }

    /// Keeps at most `bytes` of blobs on disk (at least one blob of the
    /// largest size it downloads).
    pub fn with_disk_budget(mut self, bytes: u64) -> BlobCache {
        self.disk_bytes = bytes.max(self.max_bytes);
        self
    }

    /// Deletes the blobs used longest ago (by modification time, which a
    /// read renews) until the directory holds at most the disk budget;
    /// `keep` is never deleted.
    fn evict(dir: &Path, budget: u64, keep: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                let m = e.metadata().ok().filter(std::fs::Metadata::is_file)?;
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= budget {
                break;
            }
            if path != keep && std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }

    fn hot_get(&self, hash: &Hash32) -> Option<Arc<[u8]>> {
        let mut hot = self.hot.lock().ok()?;
        let i = hot.iter().position(|(h, _)| h == hash)?;
        let entry = hot.remove(i);
        let bytes = entry.1.clone();
        hot.push(entry);
        Some(bytes)
    }

    fn hot_put(&self, hash: Hash32, bytes: Arc<[u8]>) {
        if bytes.len() as u64 > HOT_BYTES {
            return;
        }
        if let Ok(mut hot) = self.hot.lock() {
            hot.retain(|(h, _)| *h != hash);
            hot.push((hash, bytes));
            let mut total: u64 = hot.iter().map(|(_, b)| b.len() as u64).sum();
            while total > HOT_BYTES && !hot.is_empty() {
                total -= hot.remove(0).1.len() as u64;
            }
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where blob `hash` lives in the cache.
    pub fn path(&self, hash: &Hash32) -> PathBuf {
        self.dir.join(hash.to_hex())
    }

    /// The cached bytes of `hash`, if the cache holds a good copy.
    pub async fn cached(&self, hash: &Hash32) -> Option<Arc<[u8]>> {
        if let Some(bytes) = self.hot_get(hash) {
            return Some(bytes);
        }
        let path = self.path(hash);
        let bytes = tokio::fs::read(&path).await.ok()?;
        // Hashing a large blob takes a while: keep it off the async threads.
        let want = *hash;
        let (ok, bytes) = tokio::task::spawn_blocking(move || {
            // Used now: the last to be evicted.
            if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                let _ = f.set_modified(std::time::SystemTime::now());
            }
            (Hash32::of(&bytes) == want, bytes)
        })
        .await
        .ok()?;
        let bytes: Arc<[u8]> = ok.then(|| bytes.into())?;
        self.hot_put(*hash, bytes.clone());
        Some(bytes)
    }

    /// Blob `hash`: from the cache, or downloaded from `source` through
    /// market job `job` (checked against `hash`) and stored in the cache.
    ///
    /// # Errors
    ///
    /// [`Error::Rpc`] if the coordinator does not have the blob or cannot be
    /// reached; [`Error::Blob`] if the downloaded bytes do not hash to `hash`,
    /// are larger than the cache's limit, or cannot be written to the cache
    /// directory.
    pub async fn get(
        &self,
        source: &dyn BlobSource,
        hash: &Hash32,
        job: Option<&Hash32>,
    ) -> Result<(Arc<[u8]>, Source), Error> {
        if let Some(bytes) = self.cached(hash).await {
            return Ok((bytes, Source::Cache));
        }
        let bytes = source.download(hash, job, self.max_bytes).await?;
        self.store(hash, &bytes).await?;
        let bytes: Arc<[u8]> = bytes.into();
        self.hot_put(*hash, bytes.clone());
        Ok((bytes, Source::Downloaded))
    }

    /// Writes `bytes` (whose hash is `hash`) into the cache.
    ///
    /// # Errors
    ///
    /// [`Error::Blob`] if the bytes do not hash to `hash` or the directory
    /// cannot be written.
    pub async fn store(&self, hash: &Hash32, bytes: &[u8]) -> Result<(), Error> {
        if Hash32::of(bytes) != *hash {
            return Err(Error::Blob {
                hash: hash.to_hex(),
                reason: "refusing to cache bytes that hash to something else".into(),
            });
        }
        let io = |what: &str, path: &Path, e: std::io::Error| Error::Blob {
            hash: hash.to_hex(),
            reason: format!(
                "cannot {what} the blob cache at {}: {e} (check its permissions and free space)",
                path.display()
            ),
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| io("create", &self.dir, e))?;
        let path = self.path(hash);
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".{}.tmp{}-{n}", hash.to_hex(), std::process::id()));
        if let Err(e) = tokio::fs::write(&tmp, bytes).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io("write to", &tmp, e));
        }
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io("rename into", &path, e))?;
        let (dir, budget) = (self.dir.clone(), self.disk_bytes);
        let _ = tokio::task::spawn_blocking(move || BlobCache::evict(&dir, budget, &path)).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "assay-daemon-cache-{name}-{}-{}",
            std::process::id(),
            assay_proto::now_ms()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn a_stored_blob_is_served_and_a_tampered_one_is_not() {
        let dir = scratch("tamper");
        let cache = BlobCache::new(&dir, 1 << 20);
        let bytes = b"some input".to_vec();
        let hash = Hash32::of(&bytes);
        assert!(cache.cached(&hash).await.is_none());
        cache.store(&hash, &bytes).await.expect("store");
        assert_eq!(cache.cached(&hash).await.as_deref(), Some(&bytes[..]));
        std::fs::write(cache.path(&hash), b"other bytes").expect("tamper");
        // The checked copy in memory is still good; a fresh process reads
        // the file again and re-hashes it.
        assert_eq!(cache.cached(&hash).await.as_deref(), Some(&bytes[..]));
        let fresh = BlobCache::new(&dir, 1 << 20);
        assert!(fresh.cached(&hash).await.is_none(), "re-hashed on read");
        // Only the blob itself is left in the directory (no temporary files).
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(hash.to_hex())]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn past_its_disk_budget_the_cache_deletes_the_blobs_used_longest_ago() {
        let dir = scratch("budget");
        let cache = BlobCache::new(&dir, 100).with_disk_budget(250);
        let blob = |b: u8| vec![b; 100];
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        for b in [1u8, 2] {
            cache
                .store(&Hash32::of(&blob(b)), &blob(b))
                .await
                .expect("store");
            let f = std::fs::File::options()
                .append(true)
                .open(cache.path(&Hash32::of(&blob(b))))
                .expect("open");
            f.set_modified(old + Duration::from_secs(u64::from(b)))
                .expect("age");
        }
        // Blob 1 is read again (from disk: a fresh cache), so 2 is the oldest.
        let fresh = BlobCache::new(&dir, 100).with_disk_budget(250);
        assert!(fresh.cached(&Hash32::of(&blob(1))).await.is_some());
        fresh
            .store(&Hash32::of(&blob(3)), &blob(3))
            .await
            .expect("store");
        let on_disk = |b: u8| fresh.path(&Hash32::of(&blob(b))).exists();
        assert!(on_disk(1) && !on_disk(2) && on_disk(3));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn bytes_that_do_not_match_their_hash_are_refused() {
        let dir = scratch("mismatch");
        let cache = BlobCache::new(&dir, 1 << 20);
        let e = cache
            .store(&Hash32::of(b"a"), b"b")
            .await
            .expect_err("wrong hash");
        assert!(e.to_string().contains("hash to something else"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
