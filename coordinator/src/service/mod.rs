//! The gRPC services of `assay.proto`, served by tonic.
//!
//! Every handler authenticates state-changing requests first
//! ([`assay_proto::auth::verify`]: signature and expiry window, then the
//! nonce is recorded in the store so a replay is refused with
//! `ALREADY_EXISTS`), then calls the [`Store`] on a blocking thread (store
//! calls are synchronous database transactions).
//!
//! Background work, on a fixed tick: expired leases are re-queued, epochs
//! that ended have their seeds revealed and their receipts sampled, checks
//! past their deadline go to another verifier, hardware challenges are
//! sent and timed out, receipts past their challenge window are settled,
//! spent nonces are purged.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use assay_proto::auth::{self, Signed};
use assay_proto::pb::blobs_server::{Blobs, BlobsServer};
use assay_proto::pb::provider_server::{Provider, ProviderServer};
use assay_proto::pb::renter_server::{Renter, RenterServer};
use assay_proto::pb::verifier_server::{Verifier, VerifierServer};
use assay_proto::{CHUNK_BYTES, convert, now_ms, pb};
use assay_protocol::canonical::Encoder;
use assay_protocol::market::billable_units;
use assay_protocol::verification::{RATE_ALWAYS, escape_probability, rate};
use assay_protocol::{BlobRef, Hash32, NodeId, inputs_root, job_id};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::blobs::BlobStore;
use crate::store::{
    EpochSeed, JobView, NewJob, ProviderInfo, ReceiptRecord, ReceiptSubmission, RunResult,
    VerdictSubmission, VerdictView, VerifierInfo,
};
use crate::{Error, Store};

/// Server settings beyond the market rules.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// A request may expire at most this far ahead of the server's clock.
    pub max_request_ahead_ms: u64,
    /// The devnet faucet is on.
    pub faucet: bool,
    /// Most µcr one faucet call mints.
    pub faucet_max: u64,
    /// Heartbeat interval told to providers.
    pub heartbeat_interval_ms: u64,
    /// Background work period.
    pub tick_ms: u64,
    /// Most shards per job.
    pub max_shards: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_request_ahead_ms: 300_000,
            faucet: false,
            faucet_max: 1_000_000_000_000,
            heartbeat_interval_ms: 5_000,
            tick_ms: 250,
            max_shards: 256,
        }
    }
}

/// The coordinator: a store, a blob store and settings.
#[derive(Clone)]
pub struct Coordinator {
    store: Arc<dyn Store>,
    blobs: Arc<BlobStore>,
    cfg: Arc<ServerConfig>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("backend", &self.store.backend_name())
            .field("blobs", &self.blobs)
            .field("config", &self.cfg)
            .finish()
    }
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, Error> + Send + 'static,
) -> Result<R, Status> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| {
            if e.code() == tonic::Code::Internal {
                tracing::error!(error = %e, "request failed");
            }
            Status::from(e)
        }),
        Err(e) => Err(Status::internal(format!("worker failed: {e}"))),
    }
}

fn bad(e: assay_proto::Error) -> Status {
    Status::from(e)
}

impl Coordinator {
    /// A coordinator over `store` and `blobs`.
    pub fn new(store: Arc<dyn Store>, blobs: Arc<BlobStore>, cfg: ServerConfig) -> Coordinator {
        Coordinator {
            store,
            blobs,
            cfg: Arc::new(cfg),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Checks signature and expiry, then records the nonce.
    async fn authenticate<M: Signed>(&self, msg: &M) -> Result<NodeId, Status> {
        let v = auth::verify(msg, now_ms(), self.cfg.max_request_ahead_ms).map_err(bad)?;
        let store = self.store.clone();
        blocking(move || store.use_nonce(&v.node, v.nonce, v.expires_at_ms)).await?;
        Ok(v.node)
    }

    /// Runs the background work until `shutdown` resolves.
    pub async fn background(self, shutdown: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.cfg.tick_ms.max(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_purge = 0u64;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            let store = self.store.clone();
            let now = now_ms();
            let purge = now.saturating_sub(last_purge) > 60_000;
            if purge {
                last_purge = now;
            }
            let r = blocking(move || {
                let expired = store.expire_leases(now)?;
                let sampled = store.reveal_epochs(now)?;
                let late = store.expire_checks(now)?;
                store.run_challenges(now)?;
                let settled = store.settle_due(now)?;
                if purge {
                    store.purge_nonces(now)?;
                }
                Ok((expired, settled.len(), sampled, late))
            })
            .await;
            match r {
                Ok((e, s, sampled, late)) if e > 0 || s > 0 || sampled > 0 || late > 0 => {
                    tracing::info!(
                        expired = e,
                        settled = s,
                        sampled,
                        late_checks = late,
                        "background work"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "background work failed"),
            }
        }
    }

    /// Serves every service on `listener` until `shutdown` resolves.
    ///
    /// # Errors
    ///
    /// The transport's error.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let bg = tokio::spawn(self.clone().background({
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|v| *v).await;
            }
        }));
        let max = assay_proto::client::MAX_MESSAGE_BYTES;
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let r = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(
                BlobsServer::new(self.clone())
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(RenterServer::new(self.clone()))
            .add_service(ProviderServer::new(self.clone()))
            .add_service(VerifierServer::new(self.clone()))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
        let _ = stop_tx.send(true);
        let _ = bg.await;
        r
    }

    /// A job's status message.
    fn job_status(view: &JobView, slash_bps: u32) -> pb::JobStatus {
        pb::JobStatus {
            job_id: view.id.0.to_vec(),
            renter: view.renter.0.to_vec(),
            state: view.state().to_string(),
            shards: view
                .shards
                .iter()
                .map(|s| pb::ShardStatus {
                    index: s.index,
                    shard_job_id: s.shard_job_id.0.to_vec(),
                    state: s.state.clone(),
                    provider: s.provider.map(|p| p.0.to_vec()).unwrap_or_default(),
                    attempts: s.attempts,
                    receipt: s.receipt.as_ref().map(|r| pb::Receipt::from(&r.receipt)),
                    outputs: s
                        .receipt
                        .as_ref()
                        .map(|r| convert::blob_refs_to_pb(&r.outputs))
                        .unwrap_or_default(),
                    why_not_matched: s.why_not_matched.clone(),
                    settled: s.receipt.as_ref().is_some_and(|r| r.paid.is_some()),
                    paid: s.receipt.as_ref().and_then(|r| r.paid).unwrap_or(0),
                    inputs: convert::blob_refs_to_pb(&s.inputs),
                    verification: s.receipt.as_ref().map(|r| pb::Verification {
                        state: r.check_state.clone(),
                        epoch: r.epoch,
                        reason: r.check_reason.clone(),
                        verdicts: s.verdicts.iter().map(verdict_record).collect(),
                        note: s.check_note.clone(),
                    }),
                    rejected_receipts: s.rejected_receipts.iter().map(|h| h.0.to_vec()).collect(),
                })
                .collect(),
            result_root: view.result_root().map(|h| h.0.to_vec()).unwrap_or_default(),
            escrow: view.escrow,
            max_price: view.max_price,
            created_at_ms: view.created_at_ms,
            component_hash: view.component_hash.0.to_vec(),
            inputs: convert::blob_refs_to_pb(&view.inputs),
            spec: Some(pb::JobSpec::from(&view.spec)),
            guarantee: Some(pb::Guarantee {
                rate_ppm: view.verify_rate_ppm,
                slash_bps,
                providers: view
                    .providers_at_stake
                    .iter()
                    .map(|(p, stake, n)| pb::ProviderGuarantee {
                        provider: p.0.to_vec(),
                        stake: *stake,
                        receipts: *n,
                        escape: [0.01, 0.1, 1.0]
                            .iter()
                            .map(|f| pb::EscapeOdds {
                                cheat_fraction: *f,
                                probability: escape_probability(rate(view.verify_rate_ppm), *f, *n),
                            })
                            .collect(),
                    })
                    .collect(),
            }),
        }
    }

    /// Checks that a blob is stored with the given size.
    fn require_blob(&self, what: &str, b: &BlobRef) -> Result<(), Status> {
        match self.blobs.size(&b.hash) {
            None => Err(Status::failed_precondition(format!(
                "{what} {:?} (blob {}) is not uploaded: upload it first",
                b.name, b.hash
            ))),
            Some(size) if size != b.size => Err(Status::invalid_argument(format!(
                "{what} {:?}: declared {} bytes but blob {} has {size}",
                b.name, b.size, b.hash
            ))),
            Some(_) => Ok(()),
        }
    }
}

fn receipt_record(r: &ReceiptRecord) -> pb::ReceiptRecord {
    pb::ReceiptRecord {
        seq: r.seq,
        receipt_id: r.id.0.to_vec(),
        job_id: r.job_id.0.to_vec(),
        receipt: Some(pb::Receipt::from(&r.receipt)),
        outputs: convert::blob_refs_to_pb(&r.outputs),
        committed_at_ms: r.committed_at_ms,
        epoch: r.epoch,
        rate_ppm: r.rate_ppm,
    }
}

fn verdict_record(v: &VerdictView) -> pb::VerdictRecord {
    pb::VerdictRecord {
        verifier: v.verifier.0.to_vec(),
        role: v.role.clone(),
        agrees: v.agrees,
        outputs_root: v.result.outputs_root.0.to_vec(),
        outcome: pb::Outcome::from(v.result.outcome) as i32,
        fuel_used: v.result.fuel_used,
        work: Some(pb::WorkDone {
            flops: v.result.work.flops,
            bytes: v.result.work.bytes,
        }),
        at_ms: v.at_ms,
    }
}

fn epoch_beacon(e: &EpochSeed) -> pb::EpochBeacon {
    pb::EpochBeacon {
        epoch: e.epoch,
        commitment: e.commitment.0.to_vec(),
        seed: e.seed.map(|s| s.to_vec()).unwrap_or_default(),
    }
}

fn account_response(node: &NodeId, a: &crate::store::Account) -> pb::AccountResponse {
    pb::AccountResponse {
        node_id: node.0.to_vec(),
        balance: a.balance,
        stake: a.stake,
        earnings: a.earnings,
        verifier_earnings: a.verifier_earnings,
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

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

#[tonic::async_trait]
impl Renter for Coordinator {
    async fn faucet(
        &self,
        request: Request<pb::FaucetRequest>,
    ) -> Result<Response<pb::AccountResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        if !self.cfg.faucet {
            return Err(Status::permission_denied(
                "the faucet is off: this coordinator is not a devnet (start it with --faucet)",
            ));
        }
        if req.amount == 0 || req.amount > self.cfg.faucet_max {
            return Err(Status::invalid_argument(format!(
                "faucet amount must be 1..={} µcr",
                self.cfg.faucet_max
            )));
        }
        let nonce = req.auth.as_ref().map_or(0, |a| a.nonce);
        let store = self.store.clone();
        let a = blocking(move || {
            store.mint(
                &node,
                req.amount,
                &format!("faucet/{node}/{nonce}"),
                now_ms(),
            )
        })
        .await?;
        Ok(Response::new(account_response(&node, &a)))
    }

    async fn stake(
        &self,
        request: Request<pb::StakeRequest>,
    ) -> Result<Response<pb::AccountResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let nonce = req.auth.as_ref().map_or(0, |a| a.nonce);
        let store = self.store.clone();
        let a = blocking(move || {
            store.stake(
                &node,
                req.amount,
                &format!("stake/{node}/n{nonce}"),
                now_ms(),
            )
        })
        .await?;
        Ok(Response::new(account_response(&node, &a)))
    }

    async fn submit_job(
        &self,
        request: Request<pb::SubmitJobRequest>,
    ) -> Result<Response<pb::SubmitJobResponse>, Status> {
        let req = request.into_inner();
        let renter = self.authenticate(&req).await?;
        let component_hash = convert::hash("component_hash", &req.component_hash).map_err(bad)?;
        let inputs = convert::blob_refs("inputs", &req.inputs).map_err(bad)?;
        let mut spec = convert::spec("spec", req.spec.as_ref()).map_err(bad)?;
        if req.shards == 0 || req.shards > self.cfg.max_shards {
            return Err(Status::invalid_argument(format!(
                "shards must be 1..={}",
                self.cfg.max_shards
            )));
        }
        if req.max_price == 0 {
            return Err(Status::invalid_argument(
                "max_price must be at least 1 µcr per million work units",
            ));
        }
        self.require_blob(
            "component",
            &BlobRef {
                name: "component".into(),
                hash: component_hash,
                size: req.component_size,
            },
        )?;
        for b in &inputs {
            self.require_blob("input", b)?;
        }
        let root = inputs_root(inputs.iter().map(|b| (b.name.as_str(), b.size, &b.hash)));
        spec.shard = assay_protocol::Shard {
            index: 0,
            count: req.shards,
        };
        // Inputs split by line: one part per shard, stored as blobs of their own.
        let mut shard_inputs: Vec<Vec<BlobRef>> = Vec::new();
        if !req.split_inputs.is_empty() {
            for name in &req.split_inputs {
                if !inputs.iter().any(|b| &b.name == name) {
                    return Err(Status::invalid_argument(format!(
                        "split input {name:?} is not one of the job's inputs"
                    )));
                }
            }
            let blobs = self.blobs.clone();
            let (names, all, shards) = (req.split_inputs.clone(), inputs.clone(), req.shards);
            shard_inputs = blocking(move || {
                let mut per: Vec<Vec<BlobRef>> = vec![all.clone(); shards as usize];
                for b in all.iter().filter(|b| names.contains(&b.name)) {
                    let bytes = blobs.read(&b.hash)?;
                    let lines: Vec<&[u8]> = bytes.split_inclusive(|c| *c == b'\n').collect();
                    let n = lines.len();
                    for (i, list) in per.iter_mut().enumerate() {
                        let (lo, hi) = (i * n / shards as usize, (i + 1) * n / shards as usize);
                        let part: Vec<u8> = lines[lo..hi].concat();
                        let hash = blobs.put(&part)?;
                        if let Some(slot) = list.iter_mut().find(|x| x.name == b.name) {
                            slot.hash = hash;
                            slot.size = part.len() as u64;
                        }
                    }
                }
                Ok(per)
            })
            .await?;
        }
        let nonce = req.auth.as_ref().map_or(0, |a| a.nonce);
        let require_gpu = req.requirements.as_ref().is_some_and(|r| r.gpu);
        let mut e = Encoder::new("assay/market-job/v1");
        e.fixed32(&renter.0)
            .u64(nonce)
            .fixed32(&job_id(&component_hash, &root, &spec).0)
            .u64(spec.wall_clock_ms)
            .u32(req.shards)
            .u64(req.max_price)
            .u8(u8::from(require_gpu))
            .u64(req.split_inputs.len() as u64);
        for name in &req.split_inputs {
            e.str(name);
        }
        let verify_rate_ppm = match (req.unverified, req.verify_rate_ppm) {
            (true, 0) => 0,
            (true, _) => {
                return Err(Status::invalid_argument(
                    "a job is either unverified or has a verification rate, not both",
                ));
            }
            (false, 0) => self.store.config().default_rate_ppm,
            (false, r) if r > RATE_ALWAYS => {
                return Err(Status::invalid_argument(format!(
                    "verify_rate_ppm {r} is more than {RATE_ALWAYS} (every receipt)"
                )));
            }
            (false, r) => r,
        };
        e.u32(verify_rate_ppm);
        let job = NewJob {
            id: e.hash(),
            renter,
            component_hash,
            component_size: req.component_size,
            inputs,
            inputs_root: root,
            spec,
            shards: req.shards,
            max_price: req.max_price,
            require_gpu,
            shard_inputs,
            verify_rate_ppm,
        };
        let store = self.store.clone();
        let id = job.id;
        let sub = blocking(move || store.submit_job(&job, now_ms())).await?;
        tracing::info!(job = %id.short(), escrow = sub.escrow, shards = req.shards, "job accepted");
        Ok(Response::new(pb::SubmitJobResponse {
            job_id: id.0.to_vec(),
            escrow: sub.escrow,
            shard_job_ids: sub.shard_job_ids.iter().map(|h| h.0.to_vec()).collect(),
        }))
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::JobStatus>, Status> {
        let id = convert::hash("job_id", &request.get_ref().job_id).map_err(bad)?;
        let store = self.store.clone();
        let view = blocking(move || store.job(&id, now_ms())).await?;
        match view {
            Some(v) => Ok(Response::new(Self::job_status(
                &v,
                self.store.config().slash_bps,
            ))),
            None => Err(Status::not_found(format!(
                "no job {id} on this coordinator"
            ))),
        }
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::AccountResponse>, Status> {
        let node = convert::node_id("node_id", &request.get_ref().node_id).map_err(bad)?;
        let store = self.store.clone();
        let a = blocking(move || store.account(&node)).await?;
        Ok(Response::new(account_response(&node, &a)))
    }

    type ExportLedgerStream = BoxStream<pb::LedgerEntry>;

    async fn export_ledger(
        &self,
        _request: Request<pb::ExportLedgerRequest>,
    ) -> Result<Response<Self::ExportLedgerStream>, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut after = 0;
            loop {
                let page = match store.ledger_entries(after, 1000) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(Status::from(e)));
                        return;
                    }
                };
                if page.is_empty() {
                    return;
                }
                for e in page {
                    after = e.seq;
                    let msg = pb::LedgerEntry {
                        seq: e.seq,
                        kind: e.kind,
                        debit: e.debit,
                        credit: e.credit,
                        amount: e.amount,
                        reference: e.reference,
                        at_ms: e.at_ms,
                        prev_hash: e.prev_hash.to_vec(),
                        hash: e.hash.to_vec(),
                    };
                    if tx.blocking_send(Ok(msg)).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn verify_ledger(
        &self,
        _request: Request<pb::VerifyLedgerRequest>,
    ) -> Result<Response<pb::VerifyLedgerResponse>, Status> {
        let store = self.store.clone();
        let r = blocking(move || store.verify_ledger()).await?;
        Ok(Response::new(pb::VerifyLedgerResponse {
            ok: r.ok(),
            entries: r.entries,
            head: r.head.to_vec(),
            problems: r.problems,
        }))
    }
}

#[tonic::async_trait]
impl Provider for Coordinator {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let hw = req.hardware.unwrap_or_default();
        if req.slots == 0 {
            return Err(Status::invalid_argument("slots must be at least 1"));
        }
        let info = ProviderInfo {
            id: node,
            price: req.price,
            cpu_cores: hw.cpu_cores,
            memory_bytes: hw.memory_bytes,
            gpus: hw
                .gpus
                .iter()
                .map(|g| (g.name.clone(), g.memory_bytes))
                .collect(),
            slots: req.slots,
            version: req.version,
        };
        let store = self.store.clone();
        let stake = req.stake;
        let r = blocking(move || store.register(&info, stake, now_ms())).await?;
        tracing::info!(provider = %node.to_hex().get(..12).unwrap_or(""), price = req.price, slots = req.slots, "provider registered");
        Ok(Response::new(pb::RegisterResponse {
            lease_ttl_ms: self.store.config().lease_ttl_ms,
            heartbeat_interval_ms: self.cfg.heartbeat_interval_ms,
            stake: r.stake,
            active_leases: r.active_leases.iter().map(|h| h.0.to_vec()).collect(),
            reliability_permille: r.reliability_permille,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let telemetry: Vec<[u64; 5]> = req
            .gpus
            .iter()
            .map(|g| {
                [
                    u64::from(g.index),
                    u64::from(g.temperature_c),
                    g.power_mw,
                    u64::from(g.utilization_pct),
                    g.memory_used_bytes,
                ]
            })
            .collect();
        let telemetry = serde_json::to_string(&telemetry).unwrap_or_else(|_| "[]".into());
        let store = self.store.clone();
        let free = req.free_slots;
        let leases = blocking(move || store.heartbeat(&node, free, &telemetry, now_ms())).await?;
        Ok(Response::new(pb::HeartbeatResponse {
            lease_ttl_ms: self.store.config().lease_ttl_ms,
            registered: leases.is_some(),
            active_leases: leases
                .unwrap_or_default()
                .iter()
                .map(|h| h.0.to_vec())
                .collect(),
        }))
    }

    async fn take_leases(
        &self,
        request: Request<pb::TakeLeasesRequest>,
    ) -> Result<Response<pb::TakeLeasesResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let max = req.max.min(64);
        let store = self.store.clone();
        let leases = blocking(move || store.take_leases(&node, max, now_ms())).await?;
        Ok(Response::new(pb::TakeLeasesResponse {
            leases: leases
                .iter()
                .map(|l| pb::Lease {
                    lease_id: l.lease_id.0.to_vec(),
                    job_id: l.job_id.0.to_vec(),
                    shard_job_id: l.shard_job_id.0.to_vec(),
                    component_hash: l.component_hash.0.to_vec(),
                    component_size: l.component_size,
                    inputs: convert::blob_refs_to_pb(&l.inputs),
                    spec: Some(pb::JobSpec::from(&l.spec)),
                    expires_at_ms: l.expires_at_ms,
                    price: l.price,
                })
                .collect(),
        }))
    }

    async fn submit_receipt(
        &self,
        request: Request<pb::SubmitReceiptRequest>,
    ) -> Result<Response<pb::SubmitReceiptResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let lease_id = convert::hash("lease_id", &req.lease_id).map_err(bad)?;
        let receipt = convert::receipt(req.receipt.as_ref()).map_err(bad)?;
        let outputs = convert::blob_refs("outputs", &req.outputs).map_err(bad)?;
        receipt.verify().map_err(|e| {
            Status::unauthenticated(format!("the receipt's signature does not verify: {e}"))
        })?;
        let body = &receipt.body;
        if body.provider_id != node {
            return Err(Status::permission_denied(format!(
                "the receipt names provider {} but the request is signed by {node}",
                body.provider_id
            )));
        }
        let store = self.store.clone();
        let info = blocking(move || store.lease(&lease_id))
            .await?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no lease {lease_id}: a provider submits receipts only for leases it was given"
                ))
            })?;
        if info.provider != node {
            return Err(Status::permission_denied(format!(
                "lease {lease_id} is held by provider {}, not by {node}",
                info.provider
            )));
        }
        let l = &info.lease;
        let mismatch = |what: &str, got: String, want: String| {
            Status::invalid_argument(format!(
                "the receipt's {what} is {got} but lease {lease_id} is for {want}"
            ))
        };
        if body.job_id != l.shard_job_id {
            return Err(mismatch(
                "job id",
                body.job_id.to_hex(),
                l.shard_job_id.to_hex(),
            ));
        }
        if body.shard != l.spec.shard {
            return Err(mismatch(
                "shard",
                format!("{}/{}", body.shard.index, body.shard.count),
                format!("{}/{}", l.spec.shard.index, l.spec.shard.count),
            ));
        }
        if body.component_hash != l.component_hash {
            return Err(mismatch(
                "component",
                body.component_hash.to_hex(),
                l.component_hash.to_hex(),
            ));
        }
        if body.inputs_root != info.inputs_root {
            return Err(mismatch(
                "inputs root",
                body.inputs_root.to_hex(),
                info.inputs_root.to_hex(),
            ));
        }
        if body.fuel_used > l.spec.fuel {
            return Err(Status::invalid_argument(format!(
                "the receipt claims {} fuel but the spec allows {}",
                body.fuel_used, l.spec.fuel
            )));
        }
        if body.work.flops.saturating_add(body.work.bytes) > l.spec.work_budget {
            return Err(Status::invalid_argument(format!(
                "the receipt claims {} work units but the spec allows {}",
                body.work.flops.saturating_add(body.work.bytes),
                l.spec.work_budget
            )));
        }
        let total: u64 = outputs.iter().map(|o| o.size).sum();
        if total > l.spec.output_bytes.max(64 << 10) {
            return Err(Status::invalid_argument(format!(
                "outputs total {total} bytes, over the spec's {}",
                l.spec.output_bytes
            )));
        }
        for o in &outputs {
            self.require_blob("output", o)?;
        }
        let blobs = self.blobs.clone();
        let outs = outputs.clone();
        let root = blocking(move || {
            let mut data = Vec::with_capacity(outs.len());
            for o in &outs {
                data.push((o.name.clone(), blobs.read(&o.hash)?));
            }
            Ok(assay_protocol::outputs_root(
                data.iter().map(|(n, b)| (n.as_str(), b.as_slice())),
            ))
        })
        .await?;
        if root != body.outputs_root {
            return Err(Status::invalid_argument(format!(
                "the uploaded outputs hash to outputs root {root} but the receipt says {}",
                body.outputs_root
            )));
        }
        let units = billable_units(body.fuel_used, &body.work);
        let sub = ReceiptSubmission {
            lease_id,
            provider: node,
            receipt: receipt.clone(),
            outputs,
            units,
        };
        let store = self.store.clone();
        let (rid, settle_at) = blocking(move || store.submit_receipt(&sub, now_ms())).await?;
        tracing::info!(receipt = %rid.short(), lease = %lease_id.short(), units, "receipt recorded");
        Ok(Response::new(pb::SubmitReceiptResponse {
            receipt_id: rid.0.to_vec(),
            settle_at_ms: settle_at,
        }))
    }

    async fn return_lease(
        &self,
        request: Request<pb::ReturnLeaseRequest>,
    ) -> Result<Response<pb::ReturnLeaseResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let lease = convert::hash("lease_id", &req.lease_id).map_err(bad)?;
        let store = self.store.clone();
        let (fault, reason) = (req.fault, req.reason);
        tracing::info!(lease = %lease.short(), fault, reason = %reason, "lease returned");
        blocking(move || store.return_lease(&node, &lease, fault, &reason, now_ms())).await?;
        Ok(Response::new(pb::ReturnLeaseResponse {}))
    }
}

#[tonic::async_trait]
impl Verifier for Coordinator {
    async fn list_receipts(
        &self,
        request: Request<pb::ListReceiptsRequest>,
    ) -> Result<Response<pb::ListReceiptsResponse>, Status> {
        let req = request.into_inner();
        let store = self.store.clone();
        let limit = req.limit.clamp(1, 1000);
        let rs = blocking(move || store.receipts_after(req.after_seq, limit)).await?;
        Ok(Response::new(pb::ListReceiptsResponse {
            receipts: rs.iter().map(receipt_record).collect(),
        }))
    }

    async fn submit_verdict(
        &self,
        request: Request<pb::SubmitVerdictRequest>,
    ) -> Result<Response<pb::SubmitVerdictResponse>, Status> {
        let req = request.into_inner();
        let verifier = self.authenticate(&req).await?;
        let auth = req.auth.clone().unwrap_or_default();
        let v = VerdictSubmission {
            check_id: convert::hash("check_id", &req.check_id).map_err(bad)?,
            receipt_id: convert::hash("receipt_id", &req.receipt_id).map_err(bad)?,
            verifier,
            result: RunResult {
                outputs_root: convert::hash("outputs_root", &req.outputs_root).map_err(bad)?,
                outcome: convert::outcome("outcome", req.outcome).map_err(bad)?,
                fuel_used: req.fuel_used,
                work: req
                    .work
                    .map(|w| assay_protocol::WorkDone {
                        flops: w.flops,
                        bytes: w.bytes,
                    })
                    .unwrap_or_default(),
            },
            agrees: req.agrees,
            nonce: auth.nonce,
            expires_at_ms: auth.expires_at_ms,
            signature: auth.signature,
        };
        let store = self.store.clone();
        let decision = blocking(move || store.submit_verdict(&v, now_ms())).await?;
        tracing::info!(receipt = %convert::hash("receipt_id", &req.receipt_id).map(|h| h.short()).unwrap_or_default(),
            verifier = %verifier, agrees = req.agrees, decision = decision.name(), "verdict");
        Ok(Response::new(pb::SubmitVerdictResponse {
            decision: decision.name().to_string(),
        }))
    }

    async fn register_verifier(
        &self,
        request: Request<pb::RegisterVerifierRequest>,
    ) -> Result<Response<pb::RegisterVerifierResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let info = VerifierInfo {
            id: node,
            version: req.version.clone(),
            backend: req.backend.clone(),
        };
        let store = self.store.clone();
        let stake = blocking(move || store.register_verifier(&info, req.stake, now_ms())).await?;
        tracing::info!(verifier = %node, stake, "verifier registered");
        Ok(Response::new(pb::RegisterVerifierResponse {
            stake,
            check_ttl_ms: self.store.config().check_ttl_ms,
            epoch_ms: self.store.config().epoch_ms,
        }))
    }

    async fn get_beacon(
        &self,
        request: Request<pb::GetBeaconRequest>,
    ) -> Result<Response<pb::GetBeaconResponse>, Status> {
        let req = request.into_inner();
        let store = self.store.clone();
        let epochs = blocking(move || store.beacon(req.from_epoch, 1000)).await?;
        let epoch_ms = self.store.config().epoch_ms.max(1);
        Ok(Response::new(pb::GetBeaconResponse {
            epoch_ms,
            current_epoch: now_ms() / epoch_ms,
            epochs: epochs.iter().map(epoch_beacon).collect(),
        }))
    }

    async fn take_checks(
        &self,
        request: Request<pb::TakeChecksRequest>,
    ) -> Result<Response<pb::TakeChecksResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let store = self.store.clone();
        let max = req.max.min(64);
        let tasks = blocking(move || store.take_checks(&node, max, now_ms())).await?;
        Ok(Response::new(pb::TakeChecksResponse {
            checks: tasks
                .iter()
                .map(|t| pb::Check {
                    check_id: t.id.0.to_vec(),
                    role: t.role.clone(),
                    reason: t.reason.clone(),
                    record: Some(receipt_record(&t.record)),
                    component_hash: t.lease.component_hash.0.to_vec(),
                    component_size: t.lease.component_size,
                    inputs: convert::blob_refs_to_pb(&t.lease.inputs),
                    spec: Some(pb::JobSpec::from(&t.lease.spec)),
                    beacon: Some(epoch_beacon(&t.beacon)),
                    deadline_ms: t.deadline_ms,
                })
                .collect(),
        }))
    }

    async fn return_check(
        &self,
        request: Request<pb::ReturnCheckRequest>,
    ) -> Result<Response<pb::ReturnCheckResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let check = convert::hash("check_id", &req.check_id).map_err(bad)?;
        let store = self.store.clone();
        blocking(move || store.return_check(&node, &check, &req.reason, now_ms())).await?;
        Ok(Response::new(pb::ReturnCheckResponse {}))
    }
}

/// Binds `addr` (use port 0 for any free port).
///
/// # Errors
///
/// [`Error::Io`] if the address cannot be bound.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("listen address {addr}"), e))
}

/// The content id a client computes for a job's component and inputs
/// (exposed for clients that want to predict shard job ids).
pub fn shard_job_ids(
    component: &Hash32,
    inputs: &[BlobRef],
    spec: &assay_protocol::JobSpec,
    shards: u32,
) -> Vec<Hash32> {
    let root = inputs_root(inputs.iter().map(|b| (b.name.as_str(), b.size, &b.hash)));
    (0..shards)
        .map(|i| {
            let mut s = spec.clone();
            s.shard = assay_protocol::Shard {
                index: i,
                count: shards,
            };
            job_id(component, &root, &s)
        })
        .collect()
}
