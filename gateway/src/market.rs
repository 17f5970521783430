//! Running embeddings on the network: one job of the minilm-embed guest per
//! batch of sequences, paid from the gateway's account, followed to its
//! receipt with long polls, its outputs fetched and checked.
//!
//! The gateway tokenizes (with `assay-tokenizer`, the code the guest itself
//! tokenizes with, so the ids are the same) and sends the guest whole token
//! sequences: a job then does not read the model's 700 KB `tokenizer.json`,
//! which was most of a one-sentence job's time in the sandbox.

use std::sync::Arc;
use std::time::Duration;

use assay_proto::client;
use assay_proto::pb;
use assay_proto::pb::clusters_client::ClustersClient;
use assay_protocol::market::cost;
use assay_protocol::{BlobRef, Hash32, JobSpec, NodeKey};
use assay_tokenizer::Encoder;

use crate::Error;
use crate::jobs::{Component, Finished, Jobs};
use crate::openai::Sequence;

/// Work units a job may use per sequence: a 256-token sequence (MiniLM's
/// longest) measured 6.2 G. The budget bounds the escrow (and the stake a
/// provider needs to take the job); a job pays only what it used.
const WORK_PER_SEQUENCE: u64 = 12_000_000_000;
/// Work units of a job besides its sequences (weights, pooling): 0.2 G
/// measured for one short sentence.
const WORK_PER_JOB: u64 = 2_000_000_000;
/// Fuel (guest instructions) per job and per sequence: 33 M measured for
/// one sentence with the tokenizer read in the guest, 72 M for 32 long
/// ones; the gateway's jobs, given token ids, use far less.
const FUEL_PER_JOB: u64 = 500_000_000;
const FUEL_PER_SEQUENCE: u64 = 20_000_000;

/// Where and how the gateway's jobs run.
#[derive(Debug, Clone)]
pub struct MarketConfig {
    /// The coordinator's URL.
    pub coordinator: String,
    /// The minilm-embed component.
    pub component: Arc<[u8]>,
    /// The model's files, by the guest's input names (`model`, `tokenizer`,
    /// `config`, …). The gateway tokenizes with `tokenizer`; the jobs get
    /// the others.
    pub model: Vec<(String, Arc<[u8]>)>,
    /// Most µIOSD per million work units.
    pub max_price: u64,
    /// The jobs' sampling rate, ppm (0: the coordinator's default).
    pub verify_rate_ppm: u32,
    /// A reserved cluster to run on.
    pub cluster: Option<Hash32>,
    /// How long a job may take, submission to receipt.
    pub timeout: Duration,
}

/// One finished job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobResult {
    /// One row per sequence (little-endian f32 bytes).
    pub rows: Vec<Vec<u8>>,
    /// Tokens per sequence, `[CLS]`/`[SEP]` included.
    pub tokens: Vec<u64>,
    /// The market job.
    pub job: Hash32,
    /// The receipt's job id (its one shard).
    pub shard_job: Hash32,
    /// The receipt.
    pub receipt: Hash32,
    /// Who ran it.
    pub provider: String,
    /// The receipt's outputs root.
    pub outputs_root: Hash32,
    /// What it costs at most (max price × units used), µIOSD.
    pub cost: u64,
}

/// The gateway's side of the market.
#[derive(Debug)]
pub struct Market {
    cfg: MarketConfig,
    jobs: Jobs,
    component: Component,
    model_refs: Vec<BlobRef>,
    tokenizer: Arc<Tokenizer>,
}

/// The model's tokenizer as the guest would use it.
#[derive(Debug)]
struct Tokenizer {
    encoder: Encoder,
    max_seq_length: usize,
}

/// Most rounds of warm-up jobs on a cluster ([`Market::warm_up`]).
const WARM_UP_ROUNDS: usize = 4;

/// Tokenizing runs on the blocking pool above this many bytes of text.
const INLINE_TOKENIZING_BYTES: usize = 16 * 1024;

impl Tokenizer {
    /// Reads `tokenizer.json` and the longest sequence the model takes, as
    /// the guest does: `sentence_bert_config.json`'s `max_seq_length`, else
    /// `config.json`'s `max_position_embeddings`.
    fn of(model: &[(String, Arc<[u8]>)]) -> Result<Tokenizer, Error> {
        let file = |name: &str| {
            model
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, bytes)| bytes.clone())
        };
        let bad = |what: String| Error::Model(what);
        let json = |name: &str| -> Result<Option<serde_json::Value>, Error> {
            file(name)
                .map(|bytes| {
                    serde_json::from_slice(&bytes)
                        .map_err(|e| bad(format!("the model's `{name}` is not JSON: {e}")))
                })
                .transpose()
        };
        let positive = |v: &serde_json::Value, key: &str| {
            v.get(key)
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
        };
        let config = json("config")?.ok_or_else(|| bad("the model has no `config`".into()))?;
        let max_seq_length = match json("sentence_bert_config")? {
            Some(v) => positive(&v, "max_seq_length"),
            None => positive(&config, "max_position_embeddings"),
        }
        .filter(|&n| n >= 2)
        .ok_or_else(|| bad("the model's files do not say its max_seq_length".into()))?;
        let bytes = file("tokenizer").ok_or_else(|| bad("the model has no `tokenizer`".into()))?;
        // Kept for the gateway's lifetime: the vocabulary borrows from it.
        let bytes: &'static [u8] = Vec::from(&bytes[..]).leak();
        let encoder = Encoder::read(bytes, max_seq_length)
            .map_err(|e| bad(format!("the model's tokenizer: {e}")))?;
        Ok(Tokenizer {
            encoder,
            max_seq_length,
        })
    }

    /// Each sequence as the model reads it: `[CLS] … [SEP]`, truncated.
    fn sequences(&self, sequences: &[Sequence]) -> Result<Vec<Vec<u32>>, Error> {
        sequences
            .iter()
            .enumerate()
            .map(|(n, s)| {
                match s {
                    Sequence::Text(text) => self.encoder.ids(text),
                    Sequence::Tokens(ids) => self.encoder.wrap_ids(ids, self.max_seq_length),
                }
                .map_err(|e| Error::BadRequest {
                    message: format!("input[{n}] cannot be tokenized: {e}"),
                    param: Some("input"),
                    code: "invalid_input",
                })
            })
            .collect()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("{what}: {e}"))
}

impl Market {
    /// Connects to the coordinator and uploads the component and the model
    /// files it lacks.
    ///
    /// # Errors
    ///
    /// [`Error::Coordinator`] if it cannot be reached or refuses an upload.
    pub async fn connect(cfg: MarketConfig, key: NodeKey) -> Result<Market, Error> {
        let channel = client::channel(&cfg.coordinator)?;
        let signer = client::signer(&channel, key).await?;
        let mut blobs = vec![cfg.component.clone()];
        blobs.extend(cfg.model.iter().map(|(_, b)| b.clone()));
        client::upload_missing(&channel, &signer, &blobs).await?;
        let tokenizer = Arc::new(Tokenizer::of(&cfg.model)?);
        let model_refs = cfg
            .model
            .iter()
            .filter(|(name, _)| name != "tokenizer")
            .map(|(name, bytes)| BlobRef {
                name: name.clone(),
                hash: Hash32::of(bytes),
                size: bytes.len() as u64,
            })
            .collect();
        Ok(Market {
            jobs: Jobs {
                channel,
                signer: Arc::new(signer),
                max_price: cfg.max_price,
                verify_rate_ppm: cfg.verify_rate_ppm,
                cluster: cfg.cluster,
                timeout: cfg.timeout,
            },
            component: Component::of(&cfg.component),
            cfg,
            model_refs,
            tokenizer,
        })
    }

    /// The node that pays.
    pub fn payer(&self) -> String {
        self.jobs.signer.id().to_hex()
    }

    /// The most one sequence's share of a job can cost, µIOSD, whatever
    /// the job's size: a job of `N` sequences costs at most
    /// `cost(p, J + N·S)` (its run cannot pass the spec's budgets; `J`, `S`
    /// the per-job and per-sequence fuel and work), so `n` of them, their
    /// share rounded up, at most `n · (cost(p, J + S) + 1) + 1`. The `+ 1`
    /// per request is [`crate::Batcher::most_cost`]'s.
    pub fn max_cost_per_sequence(&self) -> u64 {
        let units = FUEL_PER_JOB
            .saturating_add(WORK_PER_JOB)
            .saturating_add(FUEL_PER_SEQUENCE)
            .saturating_add(WORK_PER_SEQUENCE);
        cost(self.cfg.max_price, units).map_or(u64::MAX, |c| c.saturating_add(1))
    }

    /// The job's spec for `n` sequences.
    pub fn spec(n: usize) -> JobSpec {
        let n = n as u64;
        let mut spec = JobSpec {
            fuel: FUEL_PER_JOB.saturating_add(FUEL_PER_SEQUENCE.saturating_mul(n)),
            work_budget: WORK_PER_JOB.saturating_add(WORK_PER_SEQUENCE.saturating_mul(n)),
            wall_clock_ms: 120_000,
            ..JobSpec::default()
        };
        spec.params.insert("batch_size".into(), "32".into());
        spec
    }

    /// The guest's `sequences` input: whole token-id sequences.
    pub fn sequences_input(sequences: &[Vec<u32>]) -> Vec<u8> {
        serde_json::to_vec(sequences).unwrap_or_else(|_| b"[]".to_vec())
    }

    /// `sequences` tokenized, on the blocking pool when they are long.
    async fn tokenize(&self, sequences: &[Sequence]) -> Result<Vec<Vec<u32>>, Error> {
        let text_bytes: usize = sequences
            .iter()
            .map(|s| match s {
                Sequence::Text(t) => t.len(),
                Sequence::Tokens(ids) => ids.len(),
            })
            .sum();
        if text_bytes <= INLINE_TOKENIZING_BYTES {
            return self.tokenizer.sequences(sequences);
        }
        let tokenizer = self.tokenizer.clone();
        let sequences = sequences.to_vec();
        tokio::task::spawn_blocking(move || tokenizer.sequences(&sequences))
            .await
            .map_err(|e| Error::JobFailed(format!("tokenizing failed: {e}")))?
    }

    /// Embeds `sequences` in one job and waits for its receipt.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the coordinator refuses the job (the
    /// gateway's account cannot pay, the cluster is gone) or no provider
    /// finishes it within the timeout; [`Error::JobFailed`] when it ran and
    /// failed.
    pub async fn embed(&self, sequences: &[Sequence]) -> Result<JobResult, Error> {
        let started = tokio::time::Instant::now();
        let ids = self.tokenize(sequences).await?;
        let mut inline = Vec::new();
        let mut inputs = self.model_refs.clone();
        let sequences_input = Self::sequences_input(&ids).into();
        inputs.push(
            self.jobs
                .input("sequences", sequences_input, &mut inline)
                .await?,
        );
        let spec = Self::spec(sequences.len());
        let done = self
            .jobs
            .run(&self.component, inputs, inline, &spec)
            .await?;
        let finished = started.elapsed();
        let result = self.result(&done, &ids).await;
        tracing::debug!(
            job = %done.job.short(),
            sequences = sequences.len(),
            done_ms = finished.as_secs_f64() * 1e3,
            fetched_ms = started.elapsed().as_secs_f64() * 1e3,
            "job finished"
        );
        result
    }

    /// On a reserved cluster: checks that it is active and runs warm-up
    /// jobs until every active member has run one (at most
    /// [`WARM_UP_ROUNDS`] rounds of one job per member not yet warm, all
    /// at once), so that the model is resident on the members before the
    /// first request: a member's first job decodes and packs the weights,
    /// seconds, against milliseconds after. Returns the members warmed
    /// (0 off a cluster); a member that stays cold is logged.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the cluster is unknown or has ended.
    pub async fn warm_up(self: &Arc<Self>) -> Result<usize, Error> {
        let Some(cluster) = self.cfg.cluster else {
            return Ok(0);
        };
        let status = ClustersClient::new(self.jobs.channel.clone())
            .get_cluster(pb::GetClusterRequest {
                cluster_id: cluster.0.to_vec(),
            })
            .await
            .map_err(|s| unavailable(&format!("cluster {cluster}"), s.message()))?
            .into_inner();
        if status.state != "active" {
            return Err(Error::Unavailable(format!(
                "cluster {cluster} is {}: reserve another with `assay cluster create`",
                status.state
            )));
        }
        let mut cold: std::collections::BTreeSet<String> = status
            .members
            .iter()
            .filter(|m| m.state == "active")
            .map(|m| hex::encode(&m.provider))
            .collect();
        let members = cold.len();
        for round in 0..WARM_UP_ROUNDS {
            if cold.is_empty() {
                break;
            }
            // A member's one reserved slot holds one job at a time, so
            // jobs sent at once spread over the members.
            let mut jobs = tokio::task::JoinSet::new();
            for i in 0..cold.len() {
                let market = self.clone();
                jobs.spawn(async move {
                    let warm = [Sequence::Text(format!("warm-up {round}.{i}"))];
                    market.embed(&warm).await
                });
            }
            while let Some(done) = jobs.join_next().await {
                match done {
                    Ok(Ok(r)) => {
                        cold.remove(&r.provider);
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "a warm-up job failed"),
                    Err(e) => tracing::warn!(error = %e, "a warm-up job panicked"),
                }
            }
        }
        for member in &cold {
            tracing::warn!(member = %member, "a cluster member ran no warm-up job: its first request will be slow");
        }
        Ok(members - cold.len())
    }

    async fn result(&self, done: &Finished, sequences: &[Vec<u32>]) -> Result<JobResult, Error> {
        let n = sequences.len();
        // The job's tokens.json lists the sequences it was given; the
        // receipt's outputs root covers it, so it is not fetched.
        let bytes = self.jobs.output(done, "embeddings").await?;
        if n == 0 || bytes.len() % (4 * n) != 0 {
            return Err(Error::JobFailed(format!(
                "job {} returned {} bytes for {n} sequences",
                done.job,
                bytes.len(),
            )));
        }
        let width = bytes.len() / n;
        let body = &done.receipt.body;
        Ok(JobResult {
            rows: bytes.chunks_exact(width).map(<[u8]>::to_vec).collect(),
            tokens: sequences.iter().map(|r| r.len() as u64).collect(),
            job: done.job,
            shard_job: body.job_id,
            receipt: done.receipt.id(),
            provider: body.provider_id.to_hex(),
            outputs_root: body.outputs_root,
            cost: self.jobs.cost(done),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequences_input_is_one_array_of_ids_per_sequence() {
        let input = Market::sequences_input(&[vec![101, 7592, 102], vec![101, 102]]);
        assert_eq!(input, b"[[101,7592,102],[101,102]]".to_vec());
    }

    #[test]
    fn the_work_budget_grows_with_the_sequences() {
        assert!(Market::spec(64).work_budget > Market::spec(1).work_budget);
        assert_eq!(
            Market::spec(1).params.get("batch_size").map(String::as_str),
            Some("32")
        );
    }
}
