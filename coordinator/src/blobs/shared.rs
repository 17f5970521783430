//! Blobs shared by coordinator replicas through an S3-compatible object
//! store ([`object_store`]'s Amazon S3 client: AWS, MinIO, Ceph's radosgw,
//! `s3s-fs`, …), one object per blob at `<prefix>/<hash>`.
//!
//! The local directory stays each replica's copy: an upload is kept
//! locally and put to the bucket before it is acknowledged, and a replica
//! asked for a blob it does not hold fetches it from the bucket into its
//! directory (checked against its hash, as an upload is) first.
//!
//! Every call here blocks its thread until the object store answers: the
//! coordinator calls them from blocking threads (`spawn_blocking`), and
//! the requests run on the runtime the store was opened in.

use std::sync::Arc;

use assay_protocol::Hash32;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::Error;

/// Parts of a multipart upload: 8 MiB (S3's minimum is 5 MiB).
const PART_BYTES: usize = 8 << 20;

/// A bucket (and prefix) that every replica stores its blobs in.
#[derive(Clone)]
pub struct SharedBlobs {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for SharedBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBlobs")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn failed(what: &str, e: object_store::Error) -> Error {
    Error::ObjectStore(format!("{what}: {e}"))
}

impl SharedBlobs {
    /// The bucket at `url` (`s3://BUCKET[/PREFIX]`), with credentials,
    /// region and endpoint from the environment as the AWS tools read them
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL` for a server other than AWS; plain `http://`
    /// endpoints are allowed). Requests run on `runtime`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a URL or settings the client refuses.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # fn f(rt: &tokio::runtime::Runtime) -> Result<(), assay_coordinator::Error> {
    /// // AWS_ENDPOINT_URL=http://127.0.0.1:8014 AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…
    /// let shared = assay_coordinator::blobs::SharedBlobs::s3("s3://assay/blobs", rt.handle().clone())?;
    /// # Ok(()) }
    /// ```
    pub fn s3(url: &str, runtime: tokio::runtime::Handle) -> Result<SharedBlobs, Error> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            Error::Invalid(format!(
                "blob store {url:?}: expected s3://BUCKET[/PREFIX] (credentials and endpoint from AWS_* variables)"
            ))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Invalid(format!(
                "blob store {url:?} names no bucket"
            )));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
        if !endpoint.is_empty() {
            builder = builder
                .with_endpoint(endpoint.clone())
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            builder = builder.with_region("us-east-1");
        }
        let store = builder
            .build()
            .map_err(|e| Error::Invalid(format!("blob store {url:?}: {e}")))?;
        Ok(SharedBlobs {
            store: Arc::new(store),
            prefix: ObjectPath::from(prefix.trim_matches('/')),
            url: url.to_string(),
            runtime,
        })
    }

    /// Runs `f` on the store's runtime and waits for it (from any thread
    /// but one of a current-thread runtime's own).
    fn wait<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .map_err(|_| Error::ObjectStore("the object store's runtime stopped".into()))
    }

    fn key(&self, hash: &Hash32) -> ObjectPath {
        self.prefix.clone().join(hash.to_hex())
    }

    /// The blob's size and when it was stored (ms since the Unix epoch);
    /// `None` if the bucket does not hold it.
    ///
    /// # Errors
    ///
    /// [`Error::ObjectStore`].
    pub fn head(&self, hash: &Hash32) -> Result<Option<(u64, u64)>, Error> {
        let (store, key) = (self.store.clone(), self.key(hash));
        match self.wait(async move { store.head(&key).await })? {
            Ok(meta) => Ok(Some((meta.size, millis(&meta.last_modified)))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(failed(&format!("head of blob {hash}"), e)),
        }
    }

    /// Puts the blob from `file` (its `size` bytes), in parts when large.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] reading the file; [`Error::ObjectStore`].
    pub fn put_file(&self, hash: &Hash32, file: &std::path::Path, size: u64) -> Result<(), Error> {
        let (store, key) = (self.store.clone(), self.key(hash));
        let path = file.to_owned();
        let what = format!("put of blob {hash}");
        self.wait(async move {
            use tokio::io::AsyncReadExt;
            let mut file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| Error::io(&path, e))?;
            if size <= PART_BYTES as u64 {
                let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                file.read_to_end(&mut bytes)
                    .await
                    .map_err(|e| Error::io(&path, e))?;
                store
                    .put(&key, PutPayload::from(bytes))
                    .await
                    .map_err(|e| failed(&what, e))?;
                return Ok(());
            }
            let upload = store
                .put_multipart(&key)
                .await
                .map_err(|e| failed(&what, e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut buf = vec![0u8; PART_BYTES];
            loop {
                // At most two parts in flight: memory stays bounded.
                writer
                    .wait_for_capacity(2)
                    .await
                    .map_err(|e| failed(&what, e))?;
                let n = file.read(&mut buf).await.map_err(|e| Error::io(&path, e))?;
                if n == 0 {
                    break;
                }
                writer.write(&buf[..n]);
            }
            writer.finish().await.map_err(|e| failed(&what, e))?;
            Ok(())
        })?
    }

    /// Puts `bytes` as the blob.
    ///
    /// # Errors
    ///
    /// [`Error::ObjectStore`].
    pub fn put(&self, hash: &Hash32, bytes: &[u8]) -> Result<(), Error> {
        let (store, key) = (self.store.clone(), self.key(hash));
        let payload = PutPayload::from(bytes.to_vec());
        let what = format!("put of blob {hash}");
        self.wait(async move { store.put(&key, payload).await })?
            .map(|_| ())
            .map_err(|e| failed(&what, e))
    }

    /// Streams the blob to `each`, chunk by chunk, on the calling thread
    /// (the download runs on the store's runtime, at most two chunks
    /// ahead); `false` if the bucket does not hold it.
    ///
    /// # Errors
    ///
    /// [`Error::ObjectStore`]; whatever `each` returns (the download stops).
    pub fn fetch(
        &self,
        hash: &Hash32,
        mut each: impl FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<bool, Error> {
        enum Piece {
            Chunk(bytes::Bytes),
            Missing,
            Done,
        }
        let (store, key) = (self.store.clone(), self.key(hash));
        let what = format!("get of blob {hash}");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Piece, Error>>(2);
        self.runtime.spawn(async move {
            let got = match store.get(&key).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => {
                    let _ = tx.send(Ok(Piece::Missing)).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(failed(&what, e))).await;
                    return;
                }
            };
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                let piece = chunk.map(Piece::Chunk).map_err(|e| failed(&what, e));
                let failed = piece.is_err();
                // A receiver gone (its `each` failed) stops the download.
                if tx.send(piece).await.is_err() || failed {
                    return;
                }
            }
            let _ = tx.send(Ok(Piece::Done)).await;
        });
        loop {
            match rx.blocking_recv() {
                Some(Ok(Piece::Chunk(chunk))) => each(&chunk)?,
                Some(Ok(Piece::Done)) => return Ok(true),
                Some(Ok(Piece::Missing)) => return Ok(false),
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(Error::ObjectStore(
                        "the object store's runtime stopped".into(),
                    ));
                }
            }
        }
    }

    /// Every blob in the bucket stored before `before_ms`, with its size.
    ///
    /// # Errors
    ///
    /// [`Error::ObjectStore`].
    pub fn stored_before(&self, before_ms: u64) -> Result<Vec<(Hash32, u64)>, Error> {
        let (store, prefix) = (self.store.clone(), self.prefix.clone());
        self.wait(async move {
            let mut out = Vec::new();
            let mut list = store.list(Some(&prefix));
            while let Some(meta) = list.next().await {
                let meta = meta.map_err(|e| failed("listing the bucket", e))?;
                let Some(hash) = meta
                    .location
                    .filename()
                    .and_then(|n| n.parse::<Hash32>().ok())
                else {
                    continue;
                };
                if millis(&meta.last_modified) < before_ms {
                    out.push((hash, meta.size));
                }
            }
            Ok(out)
        })?
    }

    /// Deletes the blob (no error if it is gone already).
    ///
    /// # Errors
    ///
    /// [`Error::ObjectStore`].
    pub fn delete(&self, hash: &Hash32) -> Result<(), Error> {
        let (store, key) = (self.store.clone(), self.key(hash));
        let what = format!("delete of blob {hash}");
        match self.wait(async move { store.delete(&key).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(failed(&what, e)),
        }
    }
}

fn millis(t: &chrono::DateTime<chrono::Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}
