//! Requests that arrive within a short window are batched into one job:
//! the first request opens a batch, which closes when the window ends or
//! it holds [`BatchConfig::max_sequences`] sequences; each request then
//! gets its own rows back. A sequence's embedding does not depend on its
//! batch-mates (the guest is batch-invariant, bit for bit), so batching
//! changes only how many jobs are paid for, never a result.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::Error;
use crate::market::{JobResult, Market};
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
    pub fn start(market: Arc<Market>, cfg: BatchConfig) -> Batcher {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(run(rx, market, cfg));
        Batcher {
            tx,
            pending: Arc::new(tokio::sync::Semaphore::new(cfg.max_pending)),
            cfg,
        }
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

async fn run(mut rx: mpsc::Receiver<Pending>, market: Arc<Market>, cfg: BatchConfig) {
    let mut carried: Option<Pending> = None;
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
        let close = tokio::time::Instant::now() + cfg.window;
        while size < cfg.max_sequences {
            match tokio::time::timeout_at(close, rx.recv()).await {
                Ok(Some(p)) if size + p.sequences.len() <= cfg.max_sequences => {
                    size += p.sequences.len();
                    batch.push(p);
                }
                // Too big for this batch: it opens the next one.
                Ok(Some(p)) => {
                    carried = Some(p);
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        tokio::spawn(run_batch(market.clone(), batch));
    }
}

async fn run_batch(market: Arc<Market>, batch: Vec<Pending>) {
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
