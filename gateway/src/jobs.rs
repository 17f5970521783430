//! Running one job on the network and waiting for its receipt: what every
//! model the gateway serves shares. A job's small inputs travel inside the
//! submission and its small outputs inside the final status; larger ones
//! are uploaded and downloaded by hash. The job is paid from the gateway's
//! account at most `max_price`.

use std::sync::Arc;
use std::time::Duration;

use assay_proto::client::{self, REQUEST_TTL_MS};
use assay_proto::pb::renter_client::RenterClient;
use assay_proto::{auth, convert, now_ms, pb};
use assay_protocol::market::{billable_units, cost};
use assay_protocol::{BlobRef, Hash32, JobSpec, Outcome, Receipt};
use tonic::transport::Channel;

use crate::Error;

/// Where and how the gateway's jobs run, whatever the model.
#[derive(Debug, Clone)]
pub(crate) struct Jobs {
    pub(crate) channel: Channel,
    pub(crate) signer: Arc<assay_proto::auth::Signer>,
    /// Most µIOSD per million work units.
    pub(crate) max_price: u64,
    /// The sampling rate, ppm (0: the coordinator's default).
    pub(crate) verify_rate_ppm: u32,
    /// A reserved cluster to run on.
    pub(crate) cluster: Option<Hash32>,
    /// How long a job may take, submission to receipt.
    pub(crate) timeout: Duration,
}

/// A component the jobs run, uploaded once.
#[derive(Debug, Clone)]
pub(crate) struct Component {
    pub(crate) hash: Hash32,
    pub(crate) size: u64,
}

impl Component {
    pub(crate) fn of(bytes: &[u8]) -> Component {
        Component {
            hash: Hash32::of(bytes),
            size: bytes.len() as u64,
        }
    }
}

/// A job that ran to a successful receipt.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub(crate) job: Hash32,
    pub(crate) shard: pb::ShardStatus,
    pub(crate) receipt: Receipt,
    pub(crate) outputs: Vec<BlobRef>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("{what}: {e}"))
}

impl Jobs {
    /// A job input of `bytes`: carried inside the submission when small
    /// (added to `inline`), uploaded first when not.
    ///
    /// # Errors
    ///
    /// [`Error::Coordinator`] if the upload is refused.
    pub(crate) async fn input(
        &self,
        name: &str,
        bytes: Arc<[u8]>,
        inline: &mut Vec<Vec<u8>>,
    ) -> Result<BlobRef, Error> {
        let blob = BlobRef {
            name: name.into(),
            hash: Hash32::of(&bytes),
            size: bytes.len() as u64,
        };
        let carried: u64 = inline.iter().map(|b| b.len() as u64).sum();
        if carried + blob.size <= assay_proto::INLINE_MAX_BYTES {
            inline.push(bytes.to_vec());
        } else {
            client::upload(&self.channel, &self.signer, bytes).await?;
        }
        Ok(blob)
    }

    /// Submits one job of one shard and waits for its receipt, which must
    /// say it succeeded.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the coordinator refuses the job (the
    /// gateway's account cannot pay, the cluster is gone) or no provider
    /// finishes it within the timeout; [`Error::JobFailed`] when it ran and
    /// failed.
    pub(crate) async fn run(
        &self,
        component: &Component,
        inputs: Vec<BlobRef>,
        inline_blobs: Vec<Vec<u8>>,
        spec: &JobSpec,
    ) -> Result<Finished, Error> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut req = pb::SubmitJobRequest {
            auth: None,
            component_hash: component.hash.0.to_vec(),
            component_size: component.size,
            inputs: convert::blob_refs_to_pb(&inputs),
            spec: Some(pb::JobSpec::from(spec)),
            shards: 1,
            max_price: self.max_price,
            requirements: Some(pb::Requirements { gpu: false }),
            split_inputs: vec![],
            verify_rate_ppm: self.verify_rate_ppm,
            unverified: false,
            pay_in: String::new(),
            cluster_id: self.cluster.map(|c| c.0.to_vec()).unwrap_or_default(),
            inline_blobs,
        };
        auth::sign(&self.signer, &mut req, now_ms(), REQUEST_TTL_MS)?;
        let resp = RenterClient::new(self.channel.clone())
            .submit_job(req)
            .await
            .map_err(|s| unavailable("the coordinator refused the job", s.message()))?
            .into_inner();
        let job = convert::hash("job_id", &resp.job_id)?;
        let status = self.wait_done(&job, deadline).await?;
        let shard = status
            .shards
            .into_iter()
            .next()
            .ok_or_else(|| Error::JobFailed(format!("job {job} has no shard")))?;
        let receipt = convert::receipt(shard.receipt.as_ref())?;
        if receipt.body.outcome != Outcome::Success {
            return Err(Error::JobFailed(format!(
                "job {job} ended in {}: {}",
                receipt.body.outcome, shard.failure_message
            )));
        }
        let outputs = convert::blob_refs("outputs", &shard.outputs)?;
        Ok(Finished {
            job,
            shard,
            receipt,
            outputs,
        })
    }

    /// The bytes of output `name` of a finished job: carried in its status
    /// when small, else downloaded (by hash, so checked either way).
    ///
    /// # Errors
    ///
    /// [`Error::JobFailed`] when the job has no such output, or the
    /// coordinator's errors.
    pub(crate) async fn output(&self, done: &Finished, name: &str) -> Result<Vec<u8>, Error> {
        let blob = done
            .outputs
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| Error::JobFailed(format!("job {} has no `{name}` output", done.job)))?;
        let carried = done
            .shard
            .inline_outputs
            .iter()
            .find(|b| Hash32::of(b) == blob.hash);
        match carried {
            Some(bytes) => Ok(bytes.clone()),
            None => Ok(client::download(
                &self.channel,
                &self.signer,
                Some(&done.job),
                &blob.hash,
                blob.size,
            )
            .await?),
        }
    }

    /// What a finished job costs at most (max price × units used), µIOSD.
    pub(crate) fn cost(&self, done: &Finished) -> u64 {
        let body = &done.receipt.body;
        cost(self.max_price, billable_units(body.fuel_used, &body.work)).unwrap_or(u64::MAX)
    }

    async fn wait_done(
        &self,
        job: &Hash32,
        deadline: tokio::time::Instant,
    ) -> Result<pb::JobStatus, Error> {
        let mut seen = String::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let wait = left.min(Duration::from_secs(10));
            // Signed: the outputs' bytes come back only to the renter.
            let mut req = pb::GetJobRequest {
                job_id: job.0.to_vec(),
                wait_ms: u32::try_from(wait.as_millis()).unwrap_or(10_000),
                seen_state: std::mem::take(&mut seen),
                inline_outputs_max_bytes: u32::try_from(assay_proto::INLINE_MAX_BYTES)
                    .unwrap_or(u32::MAX),
                auth: None,
            };
            auth::sign(&self.signer, &mut req, now_ms(), REQUEST_TTL_MS)?;
            let status = RenterClient::new(self.channel.clone())
                .get_job(req)
                .await
                .map_err(|s| unavailable("the coordinator did not answer", s.message()))?
                .into_inner();
            match status.state.as_str() {
                "done" | "settled" => return Ok(status),
                "failed" => {
                    let why: Vec<&str> = status
                        .shards
                        .iter()
                        .map(|s| s.why_not_matched.as_str())
                        .collect();
                    return Err(Error::JobFailed(format!(
                        "job {job} failed: {}",
                        why.join("; ")
                    )));
                }
                _ => {}
            }
            if left.is_zero() {
                let why = status
                    .shards
                    .first()
                    .map(|s| s.why_not_matched.clone())
                    .filter(|w| !w.is_empty())
                    .unwrap_or_else(|| format!("it is {}", status.state));
                return Err(Error::Unavailable(format!(
                    "no provider finished job {job} within {} s ({why}); retry later",
                    self.timeout.as_secs()
                )));
            }
            seen = status.state;
        }
    }
}
