//! The `Renter` service: the devnet faucet, staking, job submission, job
//! status, accounts and the ledger export/check.

use assay_proto::pb::renter_server::Renter;
use assay_proto::{convert, now_ms, pb};
use assay_protocol::{BlobRef, Hash32, JobSpec, NodeId};
use tonic::{Request, Response, Status};

use super::{BoxStream, Coordinator, auth, bad, blocking, inline, long_poll, wire};
use crate::explorer::Window;
use crate::rules::jobs;
use crate::types::NewJob;

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
        let unit = wire::unit(&req.unit)?;
        if req.amount == 0 || req.amount > self.cfg.faucet_max {
            return Err(Status::invalid_argument(format!(
                "faucet amount must be 1..={} µ{unit}",
                self.cfg.faucet_max
            )));
        }
        let nonce = auth::nonce(&req);
        let store = self.store.clone();
        let a = blocking(move || {
            store.faucet(
                &node,
                unit,
                req.amount,
                &format!("faucet/{node}/{nonce}"),
                now_ms(),
            )
        })
        .await?;
        Ok(Response::new(wire::account_response(&node, &a)))
    }

    async fn stake(
        &self,
        request: Request<pb::StakeRequest>,
    ) -> Result<Response<pb::AccountResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let nonce = auth::nonce(&req);
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
        Ok(Response::new(wire::account_response(&node, &a)))
    }

    async fn submit_job(
        &self,
        request: Request<pb::SubmitJobRequest>,
    ) -> Result<Response<pb::SubmitJobResponse>, Status> {
        let mut req = request.into_inner();
        // What the request carries is checked before anything is written
        // (the nonce included).
        let signed = self.signature(&req)?;
        let (spec, inputs) = self.check_terms(&req)?;
        let renter = self.spend_nonce(signed).await?;
        let carried = std::mem::take(&mut req.inline_blobs);
        inline::store(&self.blobs, "inline_blobs", carried).await?;
        let job = self.new_job(renter, &req, spec, inputs).await?;
        let (id, shards) = (job.id, job.shards);
        // A job for a reserved cluster runs only on its members.
        let cluster = (!req.cluster_id.is_empty())
            .then(|| convert::hash("cluster_id", &req.cluster_id))
            .transpose()
            .map_err(bad)?;
        let store = self.store.clone();
        let sub = blocking(move || match &cluster {
            Some(cluster) => store.submit_cluster_job(&job, cluster, now_ms()),
            None => store.submit_job(&job, now_ms()),
        })
        .await?;
        tracing::info!(job = %id.short(), escrow = sub.escrow, shards, "job accepted");
        self.market.changed();
        Ok(Response::new(pb::SubmitJobResponse {
            job_id: id.0.to_vec(),
            escrow: sub.escrow,
            shard_job_ids: sub.shard_job_ids.iter().map(|h| h.0.to_vec()).collect(),
            io_burned: sub.io_burned,
        }))
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::JobStatus>, Status> {
        let req = request.into_inner();
        let id = convert::hash("job_id", &req.job_id).map_err(bad)?;
        if req.inline_outputs_max_bytes > 0 {
            self.may_see_outputs(&req, id).await?;
        }
        let deadline = long_poll::deadline(req.wait_ms);
        let mut sub = self.market.subscribe();
        let first = self.job_status(id).await?;
        if req.wait_ms == 0 || req.seen_state.is_empty() || first.state != req.seen_state {
            return self.with_outputs(first, req.inline_outputs_max_bytes).await;
        }
        let seen = progress(&first);
        let mut last = first;
        while sub.wait(deadline).await {
            last = self.job_status(id).await?;
            if progress(&last) != seen {
                break;
            }
        }
        self.with_outputs(last, req.inline_outputs_max_bytes).await
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let req = request.into_inner();
        let renter = if req.renter.is_empty() {
            None
        } else {
            Some(convert::node_id("renter", &req.renter).map_err(bad)?)
        };
        // The explorer's page bound, so this list costs the store what its
        // pages cost.
        let window = Window::new(Some(req.offset), (req.limit > 0).then_some(req.limit));
        let store = self.store.clone();
        let page = blocking(move || store.job_list(renter.as_ref(), window)).await?;
        Ok(Response::new(pb::ListJobsResponse {
            jobs: page.items.iter().map(wire::job_summary).collect(),
            total: page.total,
        }))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::AccountResponse>, Status> {
        let node = convert::node_id("node_id", &request.get_ref().node_id).map_err(bad)?;
        let store = self.store.clone();
        let a = blocking(move || store.account(&node)).await?;
        Ok(Response::new(wire::account_response(&node, &a)))
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
                    if tx.blocking_send(Ok(wire::ledger_entry(e))).is_err() {
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
        let _one = self
            .transfers
            .ledger_checks
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                Status::resource_exhausted(
                    "a ledger verification is running on this coordinator (one at a time): retry when it is done",
                )
            })?;
        let store = self.store.clone();
        let r = blocking(move || store.verify_ledger()).await?;
        Ok(Response::new(pb::VerifyLedgerResponse {
            ok: r.ok(),
            entries: r.entries,
            head: r.head.to_vec(),
            problems: r.problems,
        }))
    }

    async fn get_coordinator(
        &self,
        _request: Request<pb::GetCoordinatorRequest>,
    ) -> Result<Response<pb::CoordinatorInfo>, Status> {
        Ok(Response::new(pb::CoordinatorInfo {
            coordinator_id: self.store.coordinator_id().0.to_vec(),
            now_ms: now_ms(),
        }))
    }
}

impl Coordinator {
    /// `status` with the bytes of its shards' outputs of at most
    /// `max_each` bytes (0: none), [`inline::MAX_TOTAL_BYTES`] in all.
    async fn with_outputs(
        &self,
        mut status: pb::JobStatus,
        max_each: u32,
    ) -> Result<Response<pb::JobStatus>, Status> {
        let mut left = inline::MAX_TOTAL_BYTES;
        for shard in &mut status.shards {
            if max_each == 0 || shard.outputs.is_empty() {
                continue;
            }
            let refs = convert::blob_refs("outputs", &shard.outputs).map_err(bad)?;
            shard.inline_outputs =
                inline::read(&self.blobs, refs, u64::from(max_each), &mut left).await?;
        }
        Ok(Response::new(status))
    }

    /// Refuses a request for a job's output bytes unless it is signed by
    /// the job's renter, one of its providers or verifiers, or an arbiter.
    async fn may_see_outputs(&self, req: &pb::GetJobRequest, id: Hash32) -> Result<(), Status> {
        let node = self.reader(req).map_err(|e| {
            Status::new(
                e.code(),
                format!(
                    "{}: the bytes of a job's outputs (inline_outputs_max_bytes) are the renter's; \
                     sign the request with the renter's key, or ask for hashes only",
                    e.message()
                ),
            )
        })?;
        if self.store.config().arbiters.contains(&node) {
            return Ok(());
        }
        let store = self.store.clone();
        match blocking(move || store.job_parties(&id, &node)).await? {
            Some(p) if !p.includes(&node) => Err(Status::permission_denied(format!(
                "key {node} takes no part in job {id}: the bytes of its outputs are for its renter, \
                 its providers and its verifiers; ask without inline_outputs_max_bytes for hashes only"
            ))),
            _ => Ok(()),
        }
    }

    async fn job_status(&self, id: Hash32) -> Result<pb::JobStatus, Status> {
        let store = self.store.clone();
        match blocking(move || store.job(&id, now_ms())).await? {
            Some(v) => Ok(wire::job_status(&v, self.store.config().slash_bps)),
            None => Err(Status::not_found(format!(
                "no job {id} on this coordinator"
            ))),
        }
    }

    /// The checks on a job request that need nothing stored: shard count,
    /// price, the spec against the caps, the inputs against their limits.
    /// Returns the spec and inputs it decoded, for [`Coordinator::new_job`].
    fn check_terms(&self, req: &pb::SubmitJobRequest) -> Result<(JobSpec, Vec<BlobRef>), Status> {
        if req.shards == 0 || req.shards > self.cfg.max_shards {
            return Err(Status::invalid_argument(format!(
                "shards must be 1..={}",
                self.cfg.max_shards
            )));
        }
        if req.max_price == 0 {
            return Err(Status::invalid_argument(
                "max_price must be at least 1 µIOSD per million work units",
            ));
        }
        // Counted before anything is decoded.
        jobs::check_input_count(&self.cfg.inputs, req.inputs.len())?;
        let spec = convert::spec("spec", req.spec.as_ref()).map_err(bad)?;
        self.cfg
            .caps
            .check(&spec)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let inputs = convert::blob_refs("inputs", &req.inputs).map_err(bad)?;
        jobs::check_inputs(&self.cfg.inputs, &inputs, &req.split_inputs)?;
        Ok((spec, inputs))
    }

    /// Refuses a job whose renter's IOSD balance cannot cover its escrow,
    /// before splitting its inputs writes blobs (the store checks again,
    /// in the transaction that takes the escrow).
    async fn check_balance(&self, renter: NodeId, job: &NewJob) -> Result<(), Status> {
        if job.pay_in != crate::ledger::Unit::Iosd {
            return Ok(());
        }
        let escrow = crate::rules::money::escrow(
            job.max_price,
            &job.spec,
            job.verify_rate_ppm,
            job.shards,
            self.store.config().slash_bps,
        )?
        .total;
        let store = self.store.clone();
        let have = blocking(move || store.account(&renter)).await?.balance;
        if have < escrow {
            let have = i64::try_from(have).unwrap_or(i64::MAX);
            return Err(jobs::escrow_not_covered(
                have,
                escrow,
                job.max_price,
                &job.spec,
                job.shards,
            )
            .into());
        }
        Ok(())
    }

    /// Decodes a job request into the job the store accepts: shard count
    /// and price bounds, every blob uploaded, inputs split by line stored
    /// as blobs of their own, the verification rate, the market job id.
    async fn new_job(
        &self,
        renter: NodeId,
        req: &pb::SubmitJobRequest,
        mut spec: JobSpec,
        inputs: Vec<BlobRef>,
    ) -> Result<NewJob, Status> {
        let component_hash = convert::hash("component_hash", &req.component_hash).map_err(bad)?;
        self.require_blobs(
            "component",
            vec![BlobRef {
                name: "component".into(),
                hash: component_hash,
                size: req.component_size,
            }],
        )
        .await?;
        self.require_blobs("input", inputs.clone()).await?;
        let root = jobs::root_of(&inputs);
        spec.shard = assay_protocol::Shard {
            index: 0,
            count: req.shards,
        };
        let nonce = auth::nonce(req);
        let require_gpu = req.requirements.as_ref().is_some_and(|r| r.gpu);
        let verify_rate_ppm = jobs::verify_rate(
            req.unverified,
            req.verify_rate_ppm,
            self.store.config().default_rate_ppm,
        )?;
        let id = jobs::market_job_id(&jobs::JobTerms {
            renter: &renter,
            nonce,
            component: &component_hash,
            inputs_root: &root,
            spec: &spec,
            shards: req.shards,
            max_price: req.max_price,
            require_gpu,
            split_inputs: &req.split_inputs,
            verify_rate_ppm,
        });
        let mut job = NewJob {
            id,
            renter,
            component_hash,
            component_size: req.component_size,
            inputs,
            inputs_root: root,
            spec,
            shards: req.shards,
            max_price: req.max_price,
            require_gpu,
            shard_inputs: Vec::new(),
            verify_rate_ppm,
            pay_in: wire::unit(&req.pay_in)?,
        };
        if !req.split_inputs.is_empty() {
            // Splitting reads and writes blobs: only for a renter who can pay.
            self.check_balance(renter, &job).await?;
            job.shard_inputs = self
                .split_inputs(&job.inputs, &req.split_inputs, req.shards)
                .await?;
        }
        Ok(job)
    }

    /// Inputs split by line: one part per shard, stored as blobs of their own.
    async fn split_inputs(
        &self,
        inputs: &[BlobRef],
        names: &[String],
        shards: u32,
    ) -> Result<Vec<Vec<BlobRef>>, Status> {
        // The names were checked (`jobs::check_inputs`).
        let blobs = self.blobs.clone();
        let (names, all) = (names.to_vec(), inputs.to_vec());
        blocking(move || {
            let mut per: Vec<Vec<BlobRef>> = vec![all.clone(); shards as usize];
            for b in all.iter().filter(|b| names.contains(&b.name)) {
                let bytes = blobs.read(&b.hash)?;
                for (list, part) in per.iter_mut().zip(jobs::split_by_lines(&bytes, shards)) {
                    let hash = blobs.put(&part)?;
                    if let Some(slot) = list.iter_mut().find(|x| x.name == b.name) {
                        slot.hash = hash;
                        slot.size = part.len() as u64;
                    }
                }
            }
            Ok(per)
        })
        .await
    }
}

/// A shard's state, its receipt's signature, and whether it settled.
type ShardProgress = (String, Option<Vec<u8>>, bool);

/// What a long-polling renter waits to see change: the job's state and each
/// shard's state, receipt and settlement.
fn progress(job: &pb::JobStatus) -> (String, Vec<ShardProgress>) {
    let shards = job
        .shards
        .iter()
        .map(|s| {
            (
                s.state.clone(),
                s.receipt.as_ref().map(|r| r.signature.clone()),
                s.settled,
            )
        })
        .collect();
    (job.state.clone(), shards)
}
