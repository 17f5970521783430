//! The `Blobs` service: content-addressed upload (checked against its
//! blake3 hash and the size limit), ranged download and stat, over
//! [`crate::blobs::BlobStore`].

use assay_proto::pb::blobs_server::Blobs;
use assay_proto::{CHUNK_BYTES, convert, pb};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::{BoxStream, Coordinator, bad};
use crate::Error;

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
        self.authenticate(&header).await?;
        let already = self.blobs.size(&hash).is_some();
        let mut upload = self.blobs.begin(hash, header.size)?;
        while let Some(msg) = stream.next().await {
            let chunk = match msg {
                Ok(pb::UploadRequest {
                    part: Some(pb::upload_request::Part::Chunk(c)),
                }) => c,
                Ok(_) => {
                    upload.abort();
                    return Err(Status::invalid_argument("only one header per upload"));
                }
                Err(e) => {
                    upload.abort();
                    return Err(e);
                }
            };
            if let Err(e) = upload.write(&chunk) {
                upload.abort();
                return Err(e.into());
            }
        }
        let size = header.size;
        let new = tokio::task::spawn_blocking(move || upload.finish())
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
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
        let path = self.blobs.path(&hash);
        let file = std::fs::File::open(&path).map_err(|_| {
            Status::not_found(format!("blob {hash} is not stored on this coordinator"))
        })?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
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
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek, SeekFrom};
            let mut file = file;
            if let Err(e) = file.seek(SeekFrom::Start(req.offset)) {
                let _ = tx.blocking_send(Err(Status::internal(e.to_string())));
                return;
            }
            loop {
                let n = left.min(CHUNK_BYTES as u64) as usize;
                let mut buf = vec![0u8; n];
                if let Err(e) = file.read_exact(&mut buf) {
                    let _ = tx.blocking_send(Err(Status::internal(e.to_string())));
                    return;
                }
                left -= n as u64;
                let msg = pb::DownloadResponse {
                    chunk: buf,
                    total_size: total,
                };
                if tx.blocking_send(Ok(msg)).is_err() || left == 0 {
                    return;
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
        let mut present = Vec::new();
        for h in &request.get_ref().hashes {
            let hash = convert::hash("hashes", h).map_err(bad)?;
            if let Some(size) = self.blobs.size(&hash) {
                present.push(pb::BlobInfo {
                    hash: h.clone(),
                    size,
                });
            }
        }
        Ok(Response::new(pb::StatResponse { present }))
    }
}
