//! The `Blobs` service: content-addressed upload (checked against its
//! blake3 hash and the size limit), ranged download and stat, over
//! [`crate::blobs::BlobStore`]. Downloads and stats are signed, and answer
//! only for blobs the signer may read ([`crate::rules::access`]); an upload
//! makes its signer an owner of the blob, within its quota of stored bytes
//! ([`crate::rules::storage`]).

use std::time::Duration;

use assay_proto::pb::blobs_server::Blobs;
use assay_proto::{CHUNK_BYTES, convert, pb};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::{BoxStream, Coordinator, bad, blocking};
use crate::Error;
use crate::rules::{access, storage};

/// Most hashes one `Stat` asks about (a job has at most a few hundred
/// blobs).
pub const MAX_STAT_HASHES: usize = 4096;

#[tonic::async_trait]
impl Blobs for Coordinator {
    async fn upload(
        &self,
        request: Request<Streaming<pb::UploadRequest>>,
    ) -> Result<Response<pb::UploadResponse>, Status> {
        let mut stream = request.into_inner();
        let header = match stream.next().await {
            Some(Ok(pb::UploadRequest {
                part: Some(pb::upload_request::Part::Header(h)),
            })) => h,
            Some(Err(e)) => return Err(e),
            _ => {
                return Err(Status::invalid_argument(
                    "an upload starts with an UploadHeader (hash, size, auth)",
                ));
            }
        };
        let hash = convert::hash("header.hash", &header.hash).map_err(bad)?;
        if header.size > self.blobs.max_bytes() {
            return Err(Error::TooLarge(format!(
                "blob of {} bytes is over this coordinator's limit of {} bytes (--max-blob-bytes): split the input or raise the limit",
                header.size,
                self.blobs.max_bytes()
            ))
            .into());
        }
        let uploader = self.authenticate(&header).await?;
        if let Some(quota) = self.cfg.max_stored_bytes_per_key {
            let store = self.store.clone();
            let (stored, owned) = blocking(move || store.stored_by(&uploader, &hash)).await?;
            storage::admit_upload(stored, owned, header.size, Some(quota))
                .map_err(Status::resource_exhausted)?;
        }
        let _slot = self
            .transfers
            .uploads
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                Status::resource_exhausted(format!(
                    "{} uploads are in flight on this coordinator: retry in a moment",
                    self.cfg.max_uploads
                ))
            })?;
        let blobs = self.blobs.clone();
        let already = blocking(move || Ok(blobs.size(&hash).is_some())).await?;
        // Dropped on every early return (an error, or the client gone):
        // its temporary file goes with it.
        let mut upload = self.blobs.begin(hash, header.size)?;
        let idle = Duration::from_millis(self.cfg.transfer_idle_ms);
        loop {
            let msg = match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(_) => {
                    return Err(Status::deadline_exceeded(format!(
                        "no bytes of blob {hash} for {} ms: the upload was dropped; send it again",
                        self.cfg.transfer_idle_ms
                    )));
                }
            };
            let chunk = match msg? {
                pb::UploadRequest {
                    part: Some(pb::upload_request::Part::Chunk(c)),
                } => c,
                _ => return Err(Status::invalid_argument("only one header per upload")),
            };
            upload.write(&chunk)?;
        }
        let size = header.size;
        let new = tokio::task::spawn_blocking(move || upload.finish())
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        let store = self.store.clone();
        blocking(move || store.add_blob_owner(&hash, &uploader, size, assay_proto::now_ms()))
            .await?;
        tracing::debug!(blob = %hash.short(), size, new, "blob uploaded");
        Ok(Response::new(pb::UploadResponse {
            hash: hash.0.to_vec(),
            size,
            already_present: already || !new,
        }))
    }

    type DownloadStream = BoxStream<pb::DownloadResponse>;

    async fn download(
        &self,
        request: Request<pb::DownloadRequest>,
    ) -> Result<Response<Self::DownloadStream>, Status> {
        let req = request.into_inner();
        let hash = convert::hash("hash", &req.hash).map_err(bad)?;
        let job = self.named_job(&req.job_id)?;
        let node = self.reader(&req)?;
        if self.readable(node, vec![hash], job).await?.is_empty() {
            return Err(Status::permission_denied(access::refusal(
                &node,
                &hash,
                job.as_ref(),
            )));
        }
        let slot = self
            .transfers
            .downloads
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                Status::resource_exhausted(format!(
                    "{} downloads are in flight on this coordinator: retry in a moment",
                    self.cfg.max_downloads
                ))
            })?;
        // Fetched from the shared bucket first when only it holds the blob.
        let blobs = self.blobs.clone();
        let path = blocking(move || blobs.local(&hash))
            .await?
            .unwrap_or_else(|| self.blobs.path(&hash));
        let mut file = tokio::fs::File::open(&path).await.map_err(|_| {
            Status::not_found(format!(
                "blob {hash} is not stored on this coordinator (blobs no live job names are collected after the retention period): upload it again"
            ))
        })?;
        let total = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        if req.offset > total {
            return Err(Status::out_of_range(format!(
                "offset {} is past the end of blob {hash} ({total} bytes)",
                req.offset
            )));
        }
        let mut left = if req.length == 0 {
            total - req.offset
        } else {
            req.length.min(total - req.offset)
        };
        // One chunk ahead of the reader, on an async task: a client that
        // stops reading holds one chunk and no thread, and is dropped
        // after the idle time.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let idle = Duration::from_millis(self.cfg.transfer_idle_ms);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = file.seek(std::io::SeekFrom::Start(req.offset)).await {
                let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                return;
            }
            while left > 0 {
                let n = left.min(CHUNK_BYTES as u64) as usize;
                let mut buf = vec![0u8; n];
                if let Err(e) = file.read_exact(&mut buf).await {
                    let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                    return;
                }
                left -= n as u64;
                let msg = pb::DownloadResponse {
                    chunk: buf,
                    total_size: total,
                };
                match tokio::time::timeout(idle, tx.send(Ok(msg))).await {
                    Ok(Ok(())) => {}
                    // Gone, or not reading.
                    _ => return,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn stat(
        &self,
        request: Request<pb::StatRequest>,
    ) -> Result<Response<pb::StatResponse>, Status> {
        let req = request.into_inner();
        if req.hashes.len() > MAX_STAT_HASHES {
            return Err(Status::invalid_argument(format!(
                "{} hashes in one stat: ask for at most {MAX_STAT_HASHES} at a time",
                req.hashes.len()
            )));
        }
        let hashes = req
            .hashes
            .iter()
            .map(|h| convert::hash("hashes", h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let job = self.named_job(&req.job_id)?;
        let node = self.reader(&req)?;
        let readable = self.readable(node, hashes, job).await?;
        let blobs = self.blobs.clone();
        let present = blocking(move || {
            Ok(readable
                .into_iter()
                .filter_map(|hash| {
                    blobs.size(&hash).map(|size| pb::BlobInfo {
                        hash: hash.0.to_vec(),
                        size,
                    })
                })
                .collect())
        })
        .await?;
        Ok(Response::new(pb::StatResponse { present }))
    }
}

impl Coordinator {
    /// The job a read names (`job_id`), if any.
    pub(super) fn named_job(
        &self,
        job_id: &[u8],
    ) -> Result<Option<assay_protocol::Hash32>, Status> {
        if job_id.is_empty() {
            return Ok(None);
        }
        convert::hash("job_id", job_id).map(Some).map_err(bad)
    }

    /// Which of `hashes` `node` may read, through `job` if named
    /// ([`access::grant`]).
    pub(super) async fn readable(
        &self,
        node: assay_protocol::NodeId,
        hashes: Vec<assay_protocol::Hash32>,
        job: Option<assay_protocol::Hash32>,
    ) -> Result<std::collections::BTreeSet<assay_protocol::Hash32>, Status> {
        let store = self.store.clone();
        blocking(move || {
            let cfg = store.config();
            let uploaded = store.uploaded_by(&node, &hashes)?;
            let parties = match &job {
                Some(j) => store.job_parties(j, &node)?,
                None => None,
            };
            let public = cfg.challenge_component.as_ref().map(|(h, _)| h);
            Ok(hashes
                .iter()
                .filter(|h| {
                    access::grant(&access::Read {
                        node: &node,
                        hash: h,
                        uploaded: uploaded.contains(h),
                        arbiters: &cfg.arbiters,
                        public,
                        job: parties.as_ref(),
                    })
                    .is_some()
                })
                .copied()
                .collect())
        })
        .await
    }
}
