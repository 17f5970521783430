//! Client helpers: connecting to a coordinator and moving blobs.

use std::time::Duration;

use assay_protocol::{Hash32, NodeKey};
use tokio_stream::StreamExt;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::pb::blobs_client::BlobsClient;
use crate::{CHUNK_BYTES, Error, auth, convert, now_ms, pb};

/// How long a signed request stays valid.
pub const REQUEST_TTL_MS: u64 = 60_000;

/// Largest gRPC message a client accepts or sends.
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;

/// The environment variable naming a PEM file of the certificate
/// authorities an `https://` coordinator's certificate is checked against
/// (a devnet's own CA: `assay devnet --tls` prints it). Unset: the public
/// web PKI roots.
pub const TLS_CA_ENV: &str = "ASSAY_TLS_CA";

/// A channel to `url` (e.g. `http://127.0.0.1:7700`, or `https://…` for a
/// coordinator serving TLS: its certificate is checked against
/// [`TLS_CA_ENV`]'s authorities, else the web PKI's). The connection is
/// made lazily and re-made after failures, so a coordinator that restarts
/// is picked up again.
///
/// # Errors
///
/// [`Error::Connect`] if `url` is not a valid endpoint, or the CA file
/// cannot be read.
pub fn channel(url: &str) -> Result<Channel, Error> {
    let ca = std::env::var_os(TLS_CA_ENV).map(std::path::PathBuf::from);
    channel_trusting(url, ca.as_deref())
}

/// [`channel`], checking an `https://` coordinator's certificate against
/// the certificate authorities in the PEM file `ca` (`None`: the web
/// PKI's) instead of [`TLS_CA_ENV`]'s.
///
/// # Errors
///
/// As [`channel`].
pub fn channel_trusting(url: &str, ca: Option<&std::path::Path>) -> Result<Channel, Error> {
    let connect = |reason: String| Error::Connect {
        url: url.to_string(),
        reason,
    };
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| {
            connect(format!(
                "not a valid URL ({e}); use e.g. http://127.0.0.1:7700"
            ))
        })?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10));
    if url.starts_with("https://") {
        let tls = match ca {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    connect(format!(
                        "cannot read the certificate authorities in {} ({TLS_CA_ENV}): {e}",
                        path.display()
                    ))
                })?;
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
            }
            None => ClientTlsConfig::new().with_webpki_roots(),
        };
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| connect(format!("TLS: {e}")))?;
    }
    Ok(endpoint.connect_lazy())
}

fn blobs(channel: &Channel) -> BlobsClient<Channel> {
    BlobsClient::new(channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// The id of the coordinator behind `channel`: what every request signed
/// for it names ([`auth::Signer`]).
///
/// # Errors
///
/// The call's status as [`Error::Rpc`]; [`Error::Invalid`] if the answer is
/// not a 32-byte id.
pub async fn coordinator_id(channel: &Channel) -> Result<Hash32, Error> {
    let info = crate::pb::renter_client::RenterClient::new(channel.clone())
        .get_coordinator(pb::GetCoordinatorRequest {})
        .await?
        .into_inner();
    convert::hash("coordinator_id", &info.coordinator_id)
}

/// `key`, bound to the coordinator behind `channel` (one call to learn its
/// id): what signs requests for it.
///
/// # Errors
///
/// As [`coordinator_id`].
pub async fn signer(channel: &Channel, key: NodeKey) -> Result<auth::Signer, Error> {
    Ok(auth::Signer::new(key, coordinator_id(channel).await?))
}

/// Which of `hashes` the coordinator stores and `key` may read (through
/// `job` if named: see `DownloadRequest` in `assay.proto`), hash → size.
///
/// # Errors
///
/// The call's status as [`Error::Rpc`]; [`Error::Random`] if no nonce
/// could be drawn.
pub async fn stat(
    channel: &Channel,
    signer: &auth::Signer,
    job: Option<&Hash32>,
    hashes: &[Hash32],
) -> Result<std::collections::BTreeMap<Hash32, u64>, Error> {
    let mut req = pb::StatRequest {
        hashes: hashes.iter().map(|h| h.0.to_vec()).collect(),
        auth: None,
        job_id: job.map(|j| j.0.to_vec()).unwrap_or_default(),
    };
    auth::sign(signer, &mut req, now_ms(), REQUEST_TTL_MS)?;
    let resp = blobs(channel).stat(req).await?.into_inner();
    let mut out = std::collections::BTreeMap::new();
    for b in resp.present {
        out.insert(convert::hash("present.hash", &b.hash)?, b.size);
    }
    Ok(out)
}

/// Uploads `bytes` as a blob, signed by `key`, in [`CHUNK_BYTES`] chunks.
///
/// # Errors
///
/// The coordinator's refusal (size limit, hash mismatch, bad signature) as
/// [`Error::Rpc`].
pub async fn upload(
    channel: &Channel,
    signer: &auth::Signer,
    bytes: std::sync::Arc<[u8]>,
) -> Result<pb::UploadResponse, Error> {
    let hash = Hash32::of(&bytes);
    upload_declared(channel, signer, bytes, hash).await
}

/// Uploads `bytes` declaring `hash` as their hash (tests use a wrong one to
/// check that the coordinator refuses it).
///
/// # Errors
///
/// As [`upload`].
pub async fn upload_declared(
    channel: &Channel,
    signer: &auth::Signer,
    bytes: std::sync::Arc<[u8]>,
    hash: Hash32,
) -> Result<pb::UploadResponse, Error> {
    let header = signed_header(signer, &bytes, hash)?;
    send(channel.clone(), header, bytes).await
}

/// The signed header of an upload of `bytes` declared as `hash`.
fn signed_header(
    signer: &auth::Signer,
    bytes: &[u8],
    hash: Hash32,
) -> Result<pb::UploadHeader, Error> {
    let mut header = pb::UploadHeader {
        auth: None,
        hash: hash.0.to_vec(),
        size: bytes.len() as u64,
    };
    auth::sign(signer, &mut header, now_ms(), REQUEST_TTL_MS)?;
    Ok(header)
}

/// Streams `bytes` after their signed `header`.
async fn send(
    channel: Channel,
    header: pb::UploadHeader,
    bytes: std::sync::Arc<[u8]>,
) -> Result<pb::UploadResponse, Error> {
    let chunks = (0..bytes.len().div_ceil(CHUNK_BYTES)).map(move |i| {
        let end = ((i + 1) * CHUNK_BYTES).min(bytes.len());
        pb::UploadRequest {
            part: Some(pb::upload_request::Part::Chunk(
                bytes[i * CHUNK_BYTES..end].to_vec(),
            )),
        }
    });
    let first = pb::UploadRequest {
        part: Some(pb::upload_request::Part::Header(header)),
    };
    let stream = tokio_stream::iter(std::iter::once(first).chain(chunks));
    Ok(blobs(&channel).upload(stream).await?.into_inner())
}

/// Uploads whichever of `blobs` the coordinator lacks; returns how many
/// bytes were sent (0 when it had them all).
///
/// # Errors
///
/// As [`stat`] and [`upload`].
pub async fn upload_missing(
    channel: &Channel,
    signer: &auth::Signer,
    blobs: &[std::sync::Arc<[u8]>],
) -> Result<u64, Error> {
    let hashes: Vec<Hash32> = blobs.iter().map(|b| Hash32::of(b)).collect();
    let present = stat(channel, signer, None, &hashes).await?;
    let mut sent = 0u64;
    let mut done = std::collections::BTreeSet::new();
    // At once: each upload waits on the coordinator's fsync of its blob.
    let mut uploads = tokio::task::JoinSet::new();
    for (blob, hash) in blobs.iter().zip(&hashes) {
        if present.contains_key(hash) || !done.insert(*hash) {
            continue;
        }
        let header = signed_header(signer, blob, *hash)?;
        uploads.spawn(send(channel.clone(), header, blob.clone()));
        sent += blob.len() as u64;
    }
    while let Some(done) = uploads.join_next().await {
        done.map_err(|e| Error::Blob {
            hash: String::new(),
            reason: format!("an upload task failed: {e}"),
        })??;
    }
    Ok(sent)
}

/// Downloads blob `hash` as `key`, through `job` if named (who may read
/// what: `DownloadRequest` in `assay.proto`), refusing more than
/// `max_bytes`, and checks that the bytes hash to `hash`.
///
/// # Errors
///
/// [`Error::Rpc`] (e.g. not found, or `PERMISSION_DENIED` for a key that
/// may not read it), [`Error::Blob`] if the bytes do not match or are too
/// many; [`Error::Random`] if no nonce could be drawn.
pub async fn download(
    channel: &Channel,
    signer: &auth::Signer,
    job: Option<&Hash32>,
    hash: &Hash32,
    max_bytes: u64,
) -> Result<Vec<u8>, Error> {
    let mut req = pb::DownloadRequest {
        hash: hash.0.to_vec(),
        offset: 0,
        length: 0,
        auth: None,
        job_id: job.map(|j| j.0.to_vec()).unwrap_or_default(),
    };
    auth::sign(signer, &mut req, now_ms(), REQUEST_TTL_MS)?;
    let mut stream = blobs(channel).download(req).await?.into_inner();
    let mut out = Vec::new();
    let mut hasher = blake3::Hasher::new();
    while let Some(msg) = stream.next().await {
        let msg = msg?;
        if msg.total_size > max_bytes || (out.len() + msg.chunk.len()) as u64 > max_bytes {
            return Err(Error::Blob {
                hash: hash.to_hex(),
                reason: format!("larger than the {max_bytes} bytes allowed"),
            });
        }
        if out.is_empty() {
            out.reserve(usize::try_from(msg.total_size).unwrap_or(0));
        }
        hasher.update(&msg.chunk);
        out.extend_from_slice(&msg.chunk);
    }
    let got = Hash32::from(hasher.finalize());
    if got != *hash {
        return Err(Error::Blob {
            hash: hash.to_hex(),
            reason: format!("the {} bytes received hash to {got}", out.len()),
        });
    }
    Ok(out)
}
