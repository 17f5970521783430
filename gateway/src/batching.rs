//! Requests that arrive within a short window are batched into one job:
//! the first request opens a batch, which closes when the window ends or
//! it holds [`BatchConfig::max_sequences`] sequences; each request then
//! gets its own rows back. When no job of this gateway is running, a batch
//! does not wait out the window: it takes what is already queued and goes
//! (a lone request would only lose the window); requests that arrive while
//! jobs run are batched for the window. A sequence's embedding does not depend on its
//! batch-mates (the guest is batch-invariant, bit for bit), so batching
//! changes only how many jobs are paid for, never a result.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::Error;
use crate::market::{JobResult, Market};

/// What runs a batch: the [`Market`] (a job on the network), or a stand-in
/// in tests.
pub trait Embedder: Send + Sync + 'static {
    /// Embeds `sequences` in one job.
    fn embed(
        &self,
        sequences: &[Sequence],
    ) -> impl std::future::Future<Output = Result<JobResult, Error>> + Send;

    /// The most one sequence's share of a job can cost, µIOSD: a bound on
    /// [`Share::cost`] per sequence, whatever the batch (see
    /// [`Market::max_cost_per_sequence`]).
    fn max_cost_per_sequence(&self) -> u64;
}

impl Embedder for Market {
    async fn embed(&self, sequences: &[Sequence]) -> Result<JobResult, Error> {
        Market::embed(self, sequences).await
    }

    fn max_cost_per_sequence(&self) -> u64 {
        Market::max_cost_per_sequence(self)
    }
}
use crate::openai::Sequence;

/// How requests are grouped into jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// How long a batch stays open after its first request.
    pub window: Duration,
    /// Most sequences in one job.
    pub max_sequences: usize,
    /// Most sequences waiting for a batch or running; more are refused (503).
    pub max_pending: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            window: Duration::from_millis(5),
            max_sequences: 256,
            max_pending: 16_384,
        }
    }
}

/// One request's part of a job.
#[derive(Debug, Clone)]
pub struct Share {
    /// The whole job's result.
    pub job: Arc<JobResult>,
    /// This request's rows in it.
    pub rows: std::ops::Range<usize>,
    /// This request's share of the job's cost, µIOSD (rounded up).
    pub cost: u64,
}

struct Pending {
    sequences: Vec<Sequence>,
    reply: oneshot::Sender<Result<Share, Error>>,
}

/// The batching queue in front of the [`Market`].
#[derive(Debug, Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Pending>,
    pending: Arc<tokio::sync::Semaphore>,
    cfg: BatchConfig,
    max_cost_per_sequence: u64,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("sequences", &self.sequences.len())
            .finish()
    }
}

impl Batcher {
    /// Starts the batching task over `market`.
    pub fn start<E: Embedder>(market: Arc<E>, cfg: BatchConfig) -> Batcher {
        let (tx, rx) = mpsc::channel(1024);
        let max_cost_per_sequence = market.max_cost_per_sequence();
        tokio::spawn(run(rx, market, cfg));
        Batcher {
            tx,
            pending: Arc::new(tokio::sync::Semaphore::new(cfg.max_pending)),
            cfg,
            max_cost_per_sequence,
        }
    }

    /// The most a request of `sequences` can be charged, µIOSD: each
    /// sequence's bound, plus one for the rounding up of each job's share
    /// (a request runs as one job per [`Batcher::max_sequences`]).
    pub fn most_cost(&self, sequences: usize) -> u64 {
        let parts = sequences.div_ceil(self.max_sequences()) as u64;
        (sequences as u64)
            .saturating_mul(self.max_cost_per_sequence)
            .saturating_add(parts)
    }

    /// The most sequences one job takes.
    pub fn max_sequences(&self) -> usize {
        self.cfg.max_sequences.max(1)
    }

    /// Embeds `sequences` in the next batch.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when too much is already waiting, or the
    /// job's error.
    pub async fn embed(&self, sequences: Vec<Sequence>) -> Result<Share, Error> {
        let n = u32::try_from(sequences.len()).unwrap_or(u32::MAX);
        let _permit = self
            .pending
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| {
                Error::Unavailable(format!(
                    "the gateway has {} sequences waiting already; retry in a moment",
                    self.cfg.max_pending
                ))
            })?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending { sequences, reply })
            .await
            .map_err(|_| Error::Unavailable("the gateway is shutting down".into()))?;
        rx.await
            .map_err(|_| Error::Unavailable("the gateway is shutting down".into()))?
    }
}

async fn run<E: Embedder>(mut rx: mpsc::Receiver<Pending>, market: Arc<E>, cfg: BatchConfig) {
    let mut carried: Option<Pending> = None;
    // Jobs of this gateway running now.
    let running = Arc::new(AtomicUsize::new(0));
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut size = first.sequences.len();
        let mut batch = vec![first];
        let idle = running.load(Ordering::Acquire) == 0;
        let close = tokio::time::Instant::now() + cfg.window;
        while size < cfg.max_sequences {
            let next = if idle {
                // Only what is queued already.
                rx.try_recv().ok()
            } else {
                tokio::time::timeout_at(close, rx.recv())
                    .await
                    .ok()
                    .flatten()
            };
            match next {
                Some(p) if size + p.sequences.len() <= cfg.max_sequences => {
                    size += p.sequences.len();
                    batch.push(p);
                }
                // Too big for this batch: it opens the next one.
                Some(p) => {
                    carried = Some(p);
                    break;
                }
                None => break,
            }
        }
        running.fetch_add(1, Ordering::AcqRel);
        let running = running.clone();
        let market = market.clone();
        tokio::spawn(async move {
            run_batch(market, batch).await;
            running.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

async fn run_batch<E: Embedder>(market: Arc<E>, batch: Vec<Pending>) {
    let sequences: Vec<Sequence> = batch
        .iter()
        .flat_map(|p| p.sequences.iter().cloned())
        .collect();
    let total = sequences.len();
    match market.embed(&sequences).await {
        Ok(job) => {
            let job = Arc::new(job);
            let mut start = 0;
            for p in batch {
                let rows = start..start + p.sequences.len();
                start = rows.end;
                let cost = share_of(job.cost, rows.len(), total);
                // A caller that went away no longer wants its rows.
                let _ = p.reply.send(Ok(Share {
                    job: job.clone(),
                    rows,
                    cost,
                }));
            }
        }
        Err(e) => {
            let message = e.to_string();
            for p in batch {
                let _ = p.reply.send(Err(same_kind(&e, &message)));
            }
        }
    }
}

/// `part` of `total` sequences' share of `cost`, rounded up.
pub fn share_of(cost: u64, part: usize, total: usize) -> u64 {
    if total == 0 {
        return 0;
    }
    let num = u128::from(cost) * part as u128;
    u64::try_from(num.div_ceil(total as u128)).unwrap_or(u64::MAX)
}

/// The error every request of a failed batch gets: the same status.
fn same_kind(e: &Error, message: &str) -> Error {
    match e {
        Error::JobFailed(_) | Error::Keys(_) | Error::Io(_) => Error::JobFailed(message.to_owned()),
        _ => Error::Unavailable(message.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_protocol::Hash32;

    /// Records each batch's size; each job takes 50 ms.
    #[derive(Default)]
    struct Recorder {
        batches: std::sync::Mutex<Vec<usize>>,
    }

    impl Embedder for Recorder {
        async fn embed(&self, sequences: &[Sequence]) -> Result<JobResult, Error> {
            self.batches
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(sequences.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(JobResult {
                rows: sequences.iter().map(|_| vec![0; 4]).collect(),
                tokens: vec![2; sequences.len()],
                job: Hash32::of(b"job"),
                shard_job: Hash32::of(b"shard"),
                receipt: Hash32::of(b"receipt"),
                provider: String::new(),
                outputs_root: Hash32::of(b"root"),
                cost: 10,
            })
        }

        fn max_cost_per_sequence(&self) -> u64 {
            10
        }
    }

    fn one(text: &str) -> Vec<Sequence> {
        vec![Sequence::Text(text.into())]
    }

    #[tokio::test]
    async fn a_lone_request_goes_at_once_and_requests_during_a_job_share_the_next() {
        let recorder = Arc::new(Recorder::default());
        let cfg = BatchConfig {
            window: Duration::from_millis(20),
            ..BatchConfig::default()
        };
        let batcher = Batcher::start(recorder.clone(), cfg);
        let started = tokio::time::Instant::now();
        let first = batcher.embed(one("alone")).await.expect("first");
        assert_eq!(first.rows, 0..1);
        assert!(
            started.elapsed() < Duration::from_millis(50 + 15),
            "no window when idle"
        );

        // One request starts a job; five more arrive while it runs and
        // share the next one, each getting its own rows.
        let lead = tokio::spawn({
            let b = batcher.clone();
            async move { b.embed(one("lead")).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut rest = Vec::new();
        for i in 0..5 {
            let b = batcher.clone();
            rest.push(tokio::spawn(async move {
                b.embed(vec![Sequence::Text(format!("{i}")); 2]).await
            }));
        }
        lead.await.expect("join").expect("lead");
        let mut rows = Vec::new();
        for r in rest {
            let share = r.await.expect("join").expect("share");
            assert_eq!(share.rows.len(), 2);
            assert_eq!(share.cost, share_of(10, 2, 10));
            rows.push(share.rows);
        }
        rows.sort_by_key(|r| r.start);
        assert_eq!(rows, vec![0..2, 2..4, 4..6, 6..8, 8..10]);
        let batches = recorder
            .batches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        assert_eq!(batches, vec![1, 1, 10]);
    }

    #[tokio::test]
    async fn too_many_waiting_sequences_are_refused() {
        let cfg = BatchConfig {
            max_pending: 3,
            ..BatchConfig::default()
        };
        let batcher = Batcher::start(Arc::new(Recorder::default()), cfg);
        let four = vec![Sequence::Text("x".into()); 4];
        assert!(matches!(
            batcher.embed(four).await,
            Err(Error::Unavailable(_))
        ));
    }

    #[test]
    fn shares_round_up_and_cover_the_cost() {
        assert_eq!(share_of(10, 1, 3), 4);
        assert_eq!(share_of(10, 3, 3), 10);
        assert_eq!(share_of(0, 1, 3), 0);
        assert_eq!(share_of(u64::MAX, 2, 2), u64::MAX);
        let parts = [1usize, 2, 3, 4];
        let total: usize = parts.iter().sum();
        let sum: u64 = parts.iter().map(|&p| share_of(997, p, total)).sum();
        assert!(sum >= 997);
    }
}
