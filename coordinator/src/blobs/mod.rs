//! The content-addressed blob store: files named by their blake3 hash under
//! `<data dir>/blobs/<first two hex digits>/<hash>`.
//!
//! An upload is written to a temporary file while it is hashed; it is kept
//! (renamed into place, after an fsync) only if it has exactly the declared
//! size, no more than the store's limit, and hashes to the declared hash.
//! Presence on disk is the truth: a coordinator restarted on the same data
//! directory has every blob it had. Replicas share blobs through an
//! S3-compatible bucket ([`SharedBlobs`], `--blob-store s3://…`): then the
//! directory is each replica's copy, every blob kept is also in the
//! bucket, and a blob missing here is fetched from there.
//!
//! A blob's modification time is when it was last stored or named by a new
//! job: storing it again, or a job that names it, [`BlobStore::touch`]es
//! it. Retention ([`crate::retention`]) collects blobs older than its
//! period that no live job names; [`BlobStore::collect`] moves a blob aside
//! before it looks at its time once more, so a blob touched while it was
//! being collected stays (and a touch that comes after finds no blob: the
//! caller is told to upload it again).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use assay_protocol::Hash32;

use crate::Error;

pub mod shared;
pub use shared::SharedBlobs;

/// The blob store.
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    max_bytes: u64,
    counter: AtomicU64,
    shared: Option<SharedBlobs>,
}

/// An upload in progress.
#[derive(Debug)]
pub struct Upload {
    hash: Hash32,
    size: u64,
    written: u64,
    hasher: blake3::Hasher,
    file: std::fs::File,
    tmp: PathBuf,
    dest: PathBuf,
    max_bytes: u64,
    /// Where a kept upload is also put (`None`: a fetch from there).
    shared: Option<SharedBlobs>,
}

impl BlobStore {
    /// A store in `dir` (created if missing) refusing blobs over `max_bytes`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directories cannot be created.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<BlobStore, Error> {
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let store = BlobStore {
            dir: dir.to_owned(),
            max_bytes,
            counter: AtomicU64::new(0),
            shared: None,
        };
        // Half-written uploads of an earlier process go; a blob it had set
        // aside to collect goes back (the next sweep decides again).
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let aside = e
                    .file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("collect-"))
                    .and_then(|n| n.get(..64))
                    .and_then(|hex| hex.parse::<Hash32>().ok());
                match aside {
                    Some(hash) if store.size(&hash).is_none() => {
                        store.restore(&e.path(), &hash)?;
                    }
                    _ => {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
        Ok(store)
    }

    fn restore(&self, aside: &Path, hash: &Hash32) -> Result<(), Error> {
        let path = self.path(hash);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::rename(aside, &path).map_err(|e| Error::io(&path, e))
    }

    /// The same store, keeping every blob in `shared` too and fetching from
    /// it what this directory lacks.
    pub fn with_shared(mut self, shared: SharedBlobs) -> BlobStore {
        self.shared = Some(shared);
        self
    }

    /// The shared bucket, if any.
    pub fn shared(&self) -> Option<&SharedBlobs> {
        self.shared.as_ref()
    }

    /// The largest blob accepted.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Where blob `hash` lives.
    pub fn path(&self, hash: &Hash32) -> PathBuf {
        let hex = hash.to_hex();
        self.dir.join(&hex[..2]).join(hex)
    }

    /// The blob's size if it is stored (here, or in the shared bucket;
    /// a bucket that does not answer counts as not holding it, logged).
    pub fn size(&self, hash: &Hash32) -> Option<u64> {
        std::fs::metadata(self.path(hash))
            .ok()
            .map(|m| m.len())
            .or_else(|| self.shared_size(hash))
    }

    fn shared_size(&self, hash: &Hash32) -> Option<u64> {
        let shared = self.shared.as_ref()?;
        match shared.head(hash) {
            Ok(found) => found.map(|(size, _)| size),
            Err(e) => {
                tracing::warn!(blob = %hash, error = %e, "the shared blob store did not answer");
                None
            }
        }
    }

    /// Marks the blob as used now (retention counts from here) and returns
    /// its size; `None` if it is not stored. (A blob only in the shared
    /// bucket keeps its time there: object stores have no touch.)
    pub fn touch(&self, hash: &Hash32) -> Option<u64> {
        self.touch_here(hash).or_else(|| self.shared_size(hash))
    }

    /// [`BlobStore::touch`] of this directory's copy only.
    fn touch_here(&self, hash: &Hash32) -> Option<u64> {
        let path = self.path(hash);
        let file = std::fs::OpenOptions::new().write(true).open(&path).ok()?;
        if let Err(e) = file.set_modified(SystemTime::now()) {
            tracing::warn!(path = %path.display(), error = %e, "could not mark a blob as used");
        }
        file.metadata().ok().map(|m| m.len())
    }

    /// The blob's file in this directory, fetched from the shared bucket
    /// first if only the bucket holds it (checked against its hash);
    /// `None` if neither does.
    ///
    /// # Errors
    ///
    /// [`Error::ObjectStore`]; [`Error::DataLoss`] if the bucket's bytes do
    /// not hash to the blob's hash; [`Error::Io`].
    pub fn local(&self, hash: &Hash32) -> Result<Option<PathBuf>, Error> {
        let path = self.path(hash);
        if path.exists() {
            return Ok(Some(path));
        }
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        let Some((size, _)) = shared.head(hash)? else {
            return Ok(None);
        };
        let mut upload = self.begin_within(*hash, size, size)?;
        // From the bucket: not put back there.
        upload.shared = None;
        if !shared.fetch(hash, |chunk| upload.write(chunk))? {
            return Ok(None);
        }
        upload.finish()?;
        Ok(Some(path))
    }

    /// Every stored blob last stored or touched before `before_ms` (ms
    /// since the Unix epoch), with its size. Reads the directories one at
    /// a time; a file whose name is not a hash is left alone.
    pub fn stored_before(&self, before_ms: u64) -> Vec<(Hash32, u64)> {
        let before = UNIX_EPOCH + Duration::from_millis(before_ms);
        let mut out = Vec::new();
        let Ok(top) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for shard in top.flatten() {
            let name = shard.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.len() != 2 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let Ok(files) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for f in files.flatten() {
                let Some(hash) = f
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<Hash32>().ok())
                else {
                    continue;
                };
                let Ok(meta) = f.metadata() else { continue };
                if meta.modified().is_ok_and(|m| m < before) {
                    out.push((hash, meta.len()));
                }
            }
        }
        if let Some(shared) = &self.shared {
            match shared.stored_before(before_ms) {
                Ok(there) => {
                    let here: std::collections::BTreeSet<Hash32> =
                        out.iter().map(|(h, _)| *h).collect();
                    out.extend(there.into_iter().filter(|(h, _)| !here.contains(h)));
                }
                Err(e) => tracing::warn!(error = %e, "could not list the shared blob store"),
            }
        }
        out
    }

    /// Deletes the blob if it was still last stored or touched before
    /// `before_ms`; its size if it was deleted. The blob is renamed aside
    /// first and its time read there: a touch that raced the decision
    /// either shows (the blob is put back) or finds no blob.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if it cannot be moved or deleted.
    pub fn collect(&self, hash: &Hash32, before_ms: u64) -> Result<Option<u64>, Error> {
        let before = UNIX_EPOCH + Duration::from_millis(before_ms);
        let path = self.path(hash);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let aside = self.dir.join("tmp").join(format!(
            "collect-{}-{}-{n}",
            hash.to_hex(),
            std::process::id()
        ));
        let here = match std::fs::rename(&path, &aside) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io(&path, e)),
        };
        // Keeping it puts this directory's copy back.
        let keep = || {
            if here {
                self.put_back(&aside, hash)?;
            }
            Ok(None)
        };
        let mut size = None;
        if here {
            let meta = std::fs::metadata(&aside).map_err(|e| Error::io(&aside, e))?;
            if meta.modified().map_or(true, |m| m >= before) {
                // Used while we decided, or a time we cannot read.
                return keep();
            }
            size = Some(meta.len());
        }
        if let Some(shared) = &self.shared {
            let there = match shared.head(hash) {
                Ok(there) => there,
                Err(e) => {
                    keep()?;
                    return Err(e);
                }
            };
            match there {
                // Stored again through another replica.
                Some((_, stored)) if stored >= before_ms => return keep(),
                Some((len, _)) => {
                    if let Err(e) = shared.delete(hash) {
                        keep()?;
                        return Err(e);
                    }
                    size = size.or(Some(len));
                }
                None => {}
            }
        }
        if here {
            std::fs::remove_file(&aside).map_err(|e| Error::io(&aside, e))?;
        }
        Ok(size)
    }

    /// Puts a blob set aside back in place (or drops it when the same
    /// bytes were stored again meanwhile).
    fn put_back(&self, aside: &Path, hash: &Hash32) -> Result<(), Error> {
        if self.path(hash).exists() {
            let _ = std::fs::remove_file(aside);
            Ok(())
        } else {
            self.restore(aside, hash)
        }
    }

    /// The blob's bytes.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if it is not stored.
    pub fn read(&self, hash: &Hash32) -> Result<Vec<u8>, Error> {
        if self.local(hash)?.is_none() {
            return Err(Error::NotFound(format!(
                "blob {hash} is not stored here: upload it first"
            )));
        }
        std::fs::read(self.path(hash)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(format!("blob {hash} is not stored here: upload it first"))
            } else {
                Error::io(self.path(hash), e)
            }
        })
    }

    /// Starts an upload of `size` bytes declared to hash to `hash`.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] over the limit; [`Error::Io`].
    pub fn begin(&self, hash: Hash32, size: u64) -> Result<Upload, Error> {
        self.begin_within(hash, size, self.max_bytes)
    }

    fn begin_within(&self, hash: Hash32, size: u64, max_bytes: u64) -> Result<Upload, Error> {
        if size > max_bytes {
            return Err(too_large(size, max_bytes));
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp =
            self.dir
                .join("tmp")
                .join(format!("{}-{}-{n}", hash.to_hex(), std::process::id()));
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(Upload {
            hash,
            size,
            written: 0,
            hasher: blake3::Hasher::new(),
            file,
            tmp,
            dest: self.path(&hash),
            max_bytes,
            shared: self.shared.clone(),
        })
    }

    /// Stores `bytes` (for blobs the coordinator makes itself: parts of
    /// split inputs, the challenge component). The upload limit does not
    /// apply: it is about what others send.
    ///
    /// # Errors
    ///
    /// As [`Upload::finish`]; [`Error::Io`].
    pub fn put(&self, bytes: &[u8]) -> Result<Hash32, Error> {
        let hash = Hash32::of(bytes);
        if self.touch_here(&hash).is_some() {
            if let Some(shared) = &self.shared
                && shared.head(&hash)?.is_none()
            {
                shared.put(&hash, bytes)?;
            }
            return Ok(hash);
        }
        let size = bytes.len() as u64;
        let mut u = self.begin_within(hash, size, size)?;
        u.write(bytes)?;
        u.finish()?;
        Ok(hash)
    }
}

fn too_large(size: u64, max: u64) -> Error {
    Error::TooLarge(format!(
        "blob of {size} bytes is over this coordinator's limit of {max} bytes (--max-blob-bytes): split the input or raise the limit"
    ))
}

impl Upload {
    /// Appends a chunk.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] once more bytes arrive than declared or allowed.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let written = self.written + chunk.len() as u64;
        if written > self.max_bytes {
            return Err(too_large(written, self.max_bytes));
        }
        if written > self.size {
            return Err(Error::Invalid(format!(
                "blob {}: more bytes than the {} declared",
                self.hash, self.size
            )));
        }
        self.hasher.update(chunk);
        self.file
            .write_all(chunk)
            .map_err(|e| Error::io(&self.tmp, e))?;
        self.written = written;
        Ok(())
    }

    /// Checks size and hash and moves the blob into place. Returns `true` if
    /// it was new.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a short upload; [`Error::DataLoss`] if the
    /// bytes hash to something else; [`Error::Io`].
    pub fn finish(self) -> Result<bool, Error> {
        // Every way out leaves no temporary file: `Drop` removes it (after
        // the rename it is gone already).
        if self.written != self.size {
            return Err(Error::Invalid(format!(
                "blob {}: {} bytes received but {} declared",
                self.hash, self.written, self.size
            )));
        }
        let got = Hash32::from(self.hasher.finalize());
        if got != self.hash {
            return Err(Error::DataLoss(format!(
                "blob hash mismatch: declared {} but the {} bytes received hash to {got}; upload the right bytes or declare their blake3",
                self.hash, self.written
            )));
        }
        let new = if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&self.dest) {
            // Stored already: used again now.
            let _ = file.set_modified(SystemTime::now());
            false
        } else {
            self.file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
            if let Some(parent) = self.dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            std::fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
            true
        };
        // Acknowledged only once every replica can read it.
        if let Some(shared) = &self.shared
            && shared.head(&self.hash)?.is_none()
        {
            shared.put_file(&self.hash, &self.dest, self.size)?;
        }
        Ok(new)
    }
}

impl Drop for Upload {
    /// An upload dropped before it finished (an error, or its client gone
    /// mid-stream) leaves no temporary file behind; after a finish the file
    /// was renamed away or removed already.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_checked_before_they_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path(), 10).expect("open");
        let h = store.put(b"hello").expect("put");
        assert_eq!(store.read(&h).expect("read"), b"hello");
        assert_eq!(store.size(&h), Some(5));

        let e = store.begin(Hash32::of(b"x"), 11).expect_err("too large");
        assert!(matches!(e, Error::TooLarge(_)), "{e}");
        // The coordinator's own blobs (e.g. the challenge component) are not
        // uploads: the limit does not apply to them.
        let own = store.put(b"longer than ten bytes").expect("own blob");
        assert_eq!(store.size(&own), Some(21));

        let mut u = store.begin(Hash32::of(b"abc"), 3).expect("begin");
        u.write(b"abd").expect("write");
        let e = u.finish().expect_err("mismatch");
        assert!(e.to_string().contains("hash mismatch"), "{e}");
        assert!(store.size(&Hash32::of(b"abc")).is_none());
        assert!(store.size(&Hash32::of(b"abd")).is_none());

        let mut u = store.begin(Hash32::of(b"abc"), 3).expect("begin");
        assert!(u.write(b"abcd").is_err(), "more than declared");
    }

    #[test]
    fn an_upload_dropped_half_way_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path(), 1 << 20).expect("open");
        let temporary = || {
            std::fs::read_dir(dir.path().join("tmp"))
                .expect("tmp")
                .count()
        };
        let mut u = store.begin(Hash32::of(b"abcdef"), 6).expect("begin");
        u.write(b"abc").expect("write");
        assert_eq!(temporary(), 1);
        // The client went away: the handler's future, and the upload, dropped.
        drop(u);
        assert_eq!(temporary(), 0);
        let mut u = store.begin(Hash32::of(b"abcdef"), 6).expect("begin");
        u.write(b"abcdef").expect("write");
        assert!(u.finish().expect("finish"), "new");
        assert_eq!(temporary(), 0);
        assert_eq!(store.read(&Hash32::of(b"abcdef")).expect("kept"), b"abcdef");
    }
}
