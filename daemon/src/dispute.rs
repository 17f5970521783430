//! A party's side of a bisected dispute (`assay_protocol::trace`), shared
//! by both daemons: the provider defends its receipts' traces, the verifier
//! the traces of the checks it disagreed on.
//!
//! - [`TraceStore`]: the traces a party keeps to answer for, by id (the
//!   provider's by receipt id, the verifier's by check id), bounded by
//!   entries and total steps (oldest evicted first). It lives in memory: a
//!   restarted or evicted trace is answered [`unable`], and the coordinator
//!   sends the dispute to a full re-execution instead.
//! - [`answer`]: the answers that need only the trace — `claim` (step count
//!   and top), `node` (a signed [`assay_protocol::trace::NodeReveal`]) and
//!   `leaf` (a signed [`LeafReveal`], or `ended` past the trace's end).
//! - [`step_tensors`]: the `inputs` answer from a re-run that kept the
//!   asked steps' output tensors, each proven against the kept trace.
//! - [`answer_questions`]: the background task a daemon starts from
//!   `Work::started`: poll `TakeQuestions` every interval, answer each
//!   question once (`Answer`), re-running the job through the daemon's
//!   [`Party::rerun`] for `inputs` questions and for the `claim` of a
//!   calls-only trace (the party then commits to the re-run's data trace,
//!   [`Party::commit`]). Errors are logged and counted,
//!   never fatal; a coordinator without the `Arbitration` service is asked
//!   again rarely.
//! - [`corrupt_middle_step`]: the test knobs' lie (`assay provider
//!   --cheat-step`, `assay verifier --lie-step`): the output of the
//!   [`middle_transform_step`] replaced, so bisection lands on it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assay_proto::pb::arbitration_client::ArbitrationClient;
use assay_proto::{client, convert, pb};
use assay_protocol::trace::{Call, LeafReveal, MAX_DEPTH, RevealedTensor, Step, TraceTree};
use assay_protocol::{BlobRef, Hash32, JobSpec, NodeKey};
use tonic::transport::Channel;

use crate::metrics::AnswerLabels;
use crate::worker::{Context, Fetched};

/// Traces a party keeps at most.
pub const MAX_KEPT_TRACES: usize = 1_024;

/// Steps of all kept traces together at most (a step costs about 150 bytes
/// kept: its call, output, leaf and share of the tree).
pub const MAX_KEPT_STEPS: u64 = 4_000_000;

/// How often a coordinator without the `Arbitration` service is asked again.
const UNSUPPORTED_POLL: Duration = Duration::from_secs(60);

/// A run's trace kept to answer for it: its steps and Merkle tree.
#[derive(Debug, Clone)]
pub struct KeptTrace {
    steps: Vec<Step>,
    tree: TraceTree,
    /// Every tensor output is hashed (not a calls-only trace): the trace a
    /// party can play a dispute with. A calls-only trace (a provider's
    /// receipt, by default) is replaced by a re-run's data trace when a
    /// dispute asks for the claim.
    data: bool,
}

impl KeptTrace {
    /// The trace of `steps` (its leaves computed here).
    pub fn new(steps: Vec<Step>) -> KeptTrace {
        let leaves = steps
            .iter()
            .enumerate()
            .map(|(i, s)| s.leaf(i as u64))
            .collect();
        KeptTrace {
            steps,
            tree: TraceTree::new(leaves),
            data: true,
        }
    }

    /// A calls-only trace (`Hashing::CallsOnly`, or a GPU's): its outputs
    /// are dtypes and shapes, so a dispute about it needs a re-run that
    /// hashes them ([`KeptTrace::is_data`]).
    pub fn calls_only(steps: Vec<Step>, leaves: Vec<Hash32>) -> KeptTrace {
        KeptTrace {
            data: false,
            ..KeptTrace::with_leaves(steps, leaves)
        }
    }

    /// Whether every tensor output of it is hashed.
    pub fn is_data(&self) -> bool {
        self.data
    }

    /// The trace of `steps` whose leaves the recorder already computed
    /// (`leaves[i]` must be `steps[i].leaf(i)`; a mismatch computes them).
    pub fn with_leaves(steps: Vec<Step>, leaves: Vec<Hash32>) -> KeptTrace {
        if leaves.len() != steps.len() {
            return KeptTrace::new(steps);
        }
        KeptTrace {
            steps,
            tree: TraceTree::new(leaves),
            data: true,
        }
    }

    /// The steps, in call order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The Merkle tree.
    pub fn tree(&self) -> &TraceTree {
        &self.tree
    }

    /// The trace root a receipt or verdict states.
    pub fn root(&self) -> Hash32 {
        self.tree.root()
    }
}

/// The traces a party keeps, by id, bounded by entry count and total steps
/// (the oldest go first). Thread-safe.
#[derive(Debug)]
pub struct TraceStore {
    max_traces: usize,
    max_steps: u64,
    inner: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    by_id: HashMap<Hash32, Arc<KeptTrace>>,
    /// Ids oldest first.
    order: VecDeque<Hash32>,
    steps: u64,
}

impl Default for TraceStore {
    fn default() -> TraceStore {
        TraceStore::new(MAX_KEPT_TRACES, MAX_KEPT_STEPS)
    }
}

impl TraceStore {
    /// A store of at most `max_traces` traces of `max_steps` steps in all.
    pub fn new(max_traces: usize, max_steps: u64) -> TraceStore {
        TraceStore {
            max_traces,
            max_steps,
            inner: Mutex::new(Kept::default()),
        }
    }

    /// Keeps `trace` under `id` (replacing one kept under it), evicting the
    /// oldest past the bounds. A trace larger than the whole budget is not
    /// kept (`false`).
    pub fn keep(&self, id: Hash32, trace: KeptTrace) -> bool {
        let n = trace.tree.steps();
        if n > self.max_steps || self.max_traces == 0 {
            return false;
        }
        let Ok(mut k) = self.inner.lock() else {
            return false;
        };
        if let Some(old) = k.by_id.remove(&id) {
            k.steps -= old.tree.steps();
            k.order.retain(|x| *x != id);
        }
        k.by_id.insert(id, Arc::new(trace));
        k.order.push_back(id);
        k.steps += n;
        while k.by_id.len() > self.max_traces || k.steps > self.max_steps {
            let Some(oldest) = k.order.pop_front() else {
                break;
            };
            if let Some(t) = k.by_id.remove(&oldest) {
                k.steps -= t.tree.steps();
            }
        }
        true
    }

    /// The trace kept under `id`.
    pub fn get(&self, id: &Hash32) -> Option<Arc<KeptTrace>> {
        self.inner.lock().ok()?.by_id.get(id).cloned()
    }

    /// Forgets the trace kept under `id` (e.g. its receipt was refused).
    pub fn forget(&self, id: &Hash32) {
        if let Ok(mut k) = self.inner.lock()
            && let Some(t) = k.by_id.remove(id)
        {
            k.steps -= t.tree.steps();
            k.order.retain(|x| x != id);
        }
    }

    /// Traces kept.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|k| k.by_id.len()).unwrap_or(0)
    }

    /// True when none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Steps kept, all traces together.
    pub fn steps(&self) -> u64 {
        self.inner.lock().map(|k| k.steps).unwrap_or(0)
    }
}

/// The job to run again to regain step tensors (a question's `rerun`).
#[derive(Debug, Clone)]
pub struct Rerun {
    /// The component.
    pub component: Hash32,
    /// The inputs.
    pub inputs: Vec<BlobRef>,
    /// The job's spec.
    pub spec: JobSpec,
    /// The market job its blobs are read through (the checked receipt's).
    pub job: Option<Hash32>,
}

/// What a question asks.
#[derive(Debug, Clone)]
pub enum Asked {
    /// The trace's step count and top; `rerun`, the job to run again when
    /// the kept trace is calls-only.
    Claim {
        /// The job (sent with a claim question).
        rerun: Option<Rerun>,
    },
    /// The children of node (`level` ≥ 1, `index`).
    Node {
        /// Its height.
        level: u32,
        /// Its position.
        index: u64,
    },
    /// Step `index`'s call and output.
    Leaf {
        /// The step.
        index: u64,
    },
    /// The output tensors of `steps`, regained by running `rerun` again.
    Inputs {
        /// The steps, as asked.
        steps: Vec<u64>,
        /// The job.
        rerun: Rerun,
    },
}

impl Asked {
    /// The question's kind on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Asked::Claim { .. } => "claim",
            Asked::Node { .. } => "node",
            Asked::Leaf { .. } => "leaf",
            Asked::Inputs { .. } => "inputs",
        }
    }
}

/// A question, read.
#[derive(Debug, Clone)]
pub struct Question {
    /// The dispute (named in every reveal).
    pub dispute: Hash32,
    /// The disputed receipt (the provider's trace).
    pub receipt: Option<Hash32>,
    /// The disputing verifier's check (the verifier's trace).
    pub check: Option<Hash32>,
    /// When the answer is due, Unix ms (0: no deadline).
    pub deadline_ms: u64,
    /// What it asks.
    pub asked: Asked,
}

fn optional_hash(field: &'static str, bytes: &[u8]) -> Result<Option<Hash32>, String> {
    if bytes.is_empty() {
        return Ok(None);
    }
    convert::hash(field, bytes)
        .map(Some)
        .map_err(|e| e.to_string())
}

impl Question {
    /// Reads a question from the coordinator.
    ///
    /// # Errors
    ///
    /// Why it cannot be read (answered [`unable`] when its dispute id is
    /// readable).
    pub fn parse(q: &pb::Question) -> Result<Question, String> {
        let dispute = convert::hash("dispute_id", &q.dispute_id).map_err(|e| e.to_string())?;
        let rerun = || -> Result<Option<Rerun>, String> {
            let Some(check) = q.rerun.as_ref() else {
                return Ok(None);
            };
            Ok(Some(Rerun {
                component: convert::hash("rerun.component_hash", &check.component_hash)
                    .map_err(|e| e.to_string())?,
                inputs: convert::blob_refs("rerun.inputs", &check.inputs)
                    .map_err(|e| e.to_string())?,
                spec: convert::spec("rerun.spec", check.spec.as_ref())
                    .map_err(|e| e.to_string())?,
                job: check
                    .record
                    .as_ref()
                    .filter(|r| !r.job_id.is_empty())
                    .map(|r| convert::hash("rerun.record.job_id", &r.job_id))
                    .transpose()
                    .map_err(|e| e.to_string())?,
            }))
        };
        let asked = match q.kind.as_str() {
            "claim" => Asked::Claim { rerun: rerun()? },
            "node" => Asked::Node {
                level: q.level,
                index: q.index,
            },
            "leaf" => Asked::Leaf { index: q.index },
            "inputs" => Asked::Inputs {
                steps: q.steps.clone(),
                rerun: rerun()?.ok_or("an inputs question without the job to re-run")?,
            },
            other => return Err(format!("unknown question kind {other:?}")),
        };
        Ok(Question {
            dispute,
            receipt: optional_hash("receipt_id", &q.receipt_id)?,
            check: optional_hash("check_id", &q.check_id)?,
            deadline_ms: q.deadline_ms,
            asked,
        })
    }
}

/// An answer saying this party cannot answer (its trace is gone, the
/// question is malformed): the coordinator re-executes the job in full.
pub fn unable(dispute: &Hash32, kind: &str, why: impl Into<String>) -> pb::AnswerRequest {
    pb::AnswerRequest {
        dispute_id: dispute.0.to_vec(),
        kind: kind.to_string(),
        unable: why.into(),
        ..Default::default()
    }
}

/// The answer to a `claim`, `node` or `leaf` question from `trace` (unsigned:
/// the caller signs the request). An `inputs` question needs a re-run
/// ([`step_tensors`]) and is answered [`unable`] here.
pub fn answer(
    key: &NodeKey,
    dispute: &Hash32,
    trace: &KeptTrace,
    asked: &Asked,
) -> pb::AnswerRequest {
    let mut a = pb::AnswerRequest {
        dispute_id: dispute.0.to_vec(),
        kind: asked.kind().to_string(),
        ..Default::default()
    };
    match asked {
        Asked::Claim { .. } => {
            if !trace.data {
                return unable(dispute, "claim", "a calls-only trace needs a re-run");
            }
            let claim = trace.tree.claim();
            a.trace_steps = claim.steps;
            a.trace_top = claim.top.0.to_vec();
        }
        Asked::Node { level, index } => {
            // Level 0 is a leaf (asked with `leaf`); above MAX_DEPTH no
            // trace reaches, and extending the top that far would be work
            // for nothing.
            if *level == 0 || *level > MAX_DEPTH + 1 {
                return unable(dispute, "node", format!("no node at level {level}"));
            }
            let r = trace.tree.reveal_node(key, dispute, *level, *index);
            a.level = r.level;
            a.index = r.index;
            a.left = r.left.0.to_vec();
            a.right = r.right.0.to_vec();
            a.reveal_signature = r.signature.0.to_vec();
        }
        Asked::Leaf { index } => {
            a.index = *index;
            match usize::try_from(*index)
                .ok()
                .and_then(|i| trace.steps.get(i))
            {
                Some(step) => {
                    let r = LeafReveal::sign(key, dispute, *index, step);
                    a.call = r.call;
                    a.output = r.output.0.to_vec();
                    a.reveal_signature = r.signature.0.to_vec();
                }
                None => a.ended = true,
            }
        }
        Asked::Inputs { .. } => {
            return unable(dispute, "inputs", "the tensors need a re-run");
        }
    }
    a
}

/// The `inputs` answer: for each asked step, its tensor (from a re-run that
/// kept it) with its call and inclusion proof in `trace`, and the bytes to
/// upload. The tensor must be that step's output in `trace` (its leaf, made
/// from the tensor's digest, is the trace's leaf): otherwise the re-run did
/// not reproduce the trace there (another machine, a trace that commits to
/// shapes only) and the answer would not verify.
///
/// # Errors
///
/// Why a step cannot be answered (the party then answers [`unable`]).
pub fn step_tensors(
    trace: &KeptTrace,
    asked: &[u64],
    kept: &BTreeMap<u64, RevealedTensor>,
) -> Result<Vec<StepReveal>, String> {
    let mut out = Vec::with_capacity(asked.len());
    for &step in asked {
        let Some((s, proof)) = usize::try_from(step)
            .ok()
            .and_then(|i| trace.steps.get(i))
            .zip(trace.tree.prove(step))
        else {
            return Err(format!(
                "step {step} is past the end of this trace ({} steps)",
                trace.steps.len()
            ));
        };
        let t = kept
            .get(&step)
            .ok_or_else(|| format!("the re-run did not reach step {step}"))?;
        let leaf = assay_protocol::trace::step_leaf(step, &s.call, &t.digest());
        if trace.tree.leaves().get(step as usize) != Some(&leaf) {
            return Err(format!(
                "the re-run's output of step {step} is not the one in the kept trace"
            ));
        }
        let bytes: Arc<[u8]> = Arc::from(t.bytes.as_slice());
        out.push(StepReveal {
            message: pb::StepTensor {
                step,
                call: s.call.clone(),
                trace_steps: proof.steps,
                siblings: proof.siblings.iter().map(|h| h.0.to_vec()).collect(),
                dtype: u32::from(t.dtype.code()),
                shape: t.shape.clone(),
                tensor: Some(pb::BlobRef {
                    name: format!("step-{step}"),
                    hash: Hash32::of(&bytes).0.to_vec(),
                    size: bytes.len() as u64,
                }),
            },
            bytes,
        });
    }
    Ok(out)
}

/// One asked step's tensor as an `inputs` answer states it, and its bytes
/// (uploaded before the answer).
#[derive(Debug, Clone)]
pub struct StepReveal {
    /// The answer's entry.
    pub message: pb::StepTensor,
    /// The tensor's bytes (the blob `message.tensor` names).
    pub bytes: Arc<[u8]>,
}

/// Calls whose output comes from the guest or a constant, not from other
/// steps: never the test knobs' lie (the arbiter cannot recompute them).
const NOT_TRANSFORMS: [&str; 3] = ["tensor.upload-f32", "tensor.upload-i32", "tensor.fill"];

/// The test knobs' step: the step closest to the middle of the trace
/// (`steps.len() / 2`, the earlier on a tie) whose call has at least one
/// input and is not an upload or fill; `None` if there is none.
pub fn middle_transform_step(steps: &[Step]) -> Option<u64> {
    let mid = (steps.len() / 2) as u64;
    steps
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            Call::decode(&s.call)
                .is_ok_and(|c| !c.inputs.is_empty() && !NOT_TRANSFORMS.contains(&c.name.as_str()))
        })
        .map(|(i, _)| i as u64)
        .min_by_key(|&i| (i.abs_diff(mid), i))
}

/// The test knobs' lie (`--cheat-step`, `--lie-step`): replaces the output
/// of the [`middle_transform_step`] with blake3 of it, so the trace differs
/// from an honest one first at that step. Returns the step (`None`: no
/// such step, nothing changed); rebuild the [`KeptTrace`] from the steps.
pub fn corrupt_middle_step(steps: &mut [Step]) -> Option<u64> {
    let i = middle_transform_step(steps)?;
    let s = steps.get_mut(i as usize)?;
    s.output = Hash32::of(&s.output.0);
    Some(i)
}

/// The `--lie-call` lie: the [`middle_transform_step`]'s call gains a
/// parameter the guest never passed, so the trace differs from an honest
/// one first in a call — as if the guest's own code had run differently.
/// Returns the step (`None`: nothing changed).
pub fn corrupt_middle_call(steps: &mut [Step]) -> Option<u64> {
    let i = middle_transform_step(steps)?;
    let s = steps.get_mut(i as usize)?;
    let mut call = Call::decode(&s.call).ok()?;
    call.attrs.push(assay_protocol::trace::Attr::Absent);
    s.call = call.encode();
    Some(i)
}

/// A daemon's side of the disputes it is a party to.
pub trait Party: Send + Sync + 'static {
    /// `provider` or `verifier`, in logs.
    const ROLE: &'static str;

    /// The key that signs answers and reveals, bound to the coordinator.
    fn signer(&self) -> &assay_proto::auth::Signer;

    /// The coordinator.
    fn channel(&self) -> &Channel;

    /// The traces kept.
    fn traces(&self) -> &TraceStore;

    /// The id a question's trace is kept under (the provider's receipt id,
    /// the verifier's check id).
    fn trace_id(&self, q: &Question) -> Option<Hash32>;

    /// Runs `rerun` again on its `blobs` (on a blocking thread) with every
    /// output hashed, keeping the output tensors of the steps in `keep`,
    /// with the same limits as the first run and no later than
    /// `deadline_ms` (0: none).
    ///
    /// # Errors
    ///
    /// Why it produced no trace.
    fn rerun(
        &self,
        rerun: &Rerun,
        deadline_ms: u64,
        keep: BTreeSet<u64>,
        blobs: Fetched,
    ) -> Result<RerunTrace, String>;

    /// The data trace this party commits to when a dispute asks for the
    /// claim of a calls-only trace, from its re-run's steps. Honest
    /// parties commit to them as they are (the default); the provider's
    /// `--cheat-step` test knob lies here.
    fn commit(&self, steps: &mut Vec<Step>) {
        let _ = steps;
    }
}

/// What a re-run recorded.
#[derive(Debug, Clone, Default)]
pub struct RerunTrace {
    /// Its steps.
    pub steps: Vec<Step>,
    /// Every tensor output hashed (a CPU run): a trace a dispute can use.
    pub data: bool,
    /// The output tensors of the steps asked to keep.
    pub kept: BTreeMap<u64, RevealedTensor>,
}

/// `inputs` questions being answered (`None`) or answered lately (when):
/// the coordinator offers a question until its answer is in, so one taken
/// again while (or just after) it is answered is not re-run.
type InFlight = Arc<Mutex<HashMap<(Hash32, String), Option<Instant>>>>;

/// How long an answered `inputs` question is not answered again.
const ANSWERED_FOR: Duration = Duration::from_secs(30);

/// Polls `TakeQuestions` every `every` until shutdown and answers each
/// question once. Started by a daemon from `Work::started`.
pub async fn answer_questions<P: Party>(party: Arc<P>, every: Duration, ctx: Context) {
    let in_flight: InFlight = Arc::default();
    let mut warned = false;
    while !ctx.shutdown.started() {
        let pause = match take(party.as_ref()).await {
            Ok(questions) => {
                warned = false;
                for q in questions {
                    handle(&party, q, &ctx, &in_flight).await;
                }
                every
            }
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                if !warned {
                    warned = true;
                    tracing::warn!(
                        role = P::ROLE,
                        "the coordinator does not referee disputes by bisection (no Arbitration service); asking again every {} s",
                        UNSUPPORTED_POLL.as_secs()
                    );
                }
                UNSUPPORTED_POLL
            }
            Err(s) => {
                ctx.metrics.rpc_errors.inc();
                if !warned {
                    warned = true;
                    tracing::warn!(role = P::ROLE, error = %s, "cannot take dispute questions (will keep trying)");
                }
                every
            }
        };
        ctx.shutdown.sleep(pause).await;
    }
}

async fn take<P: Party>(party: &P) -> Result<Vec<pb::Question>, tonic::Status> {
    let mut req = pb::TakeQuestionsRequest { auth: None };
    crate::sign(party.signer(), &mut req).map_err(|e| tonic::Status::internal(e.to_string()))?;
    Ok(ArbitrationClient::new(party.channel().clone())
        .max_decoding_message_size(client::MAX_MESSAGE_BYTES)
        .take_questions(req)
        .await?
        .into_inner()
        .questions)
}

/// Answers one question: at once from the kept trace, or (`inputs`) from
/// a task that re-runs the job.
async fn handle<P: Party>(party: &Arc<P>, q: pb::Question, ctx: &Context, in_flight: &InFlight) {
    let question = match Question::parse(&q) {
        Ok(question) => question,
        Err(why) => {
            tracing::warn!(role = P::ROLE, kind = %q.kind, %why, "a malformed dispute question");
            if let Ok(dispute) = convert::hash("dispute_id", &q.dispute_id) {
                let a = unable(&dispute, &q.kind, format!("malformed question: {why}"));
                send(party.as_ref(), a, ctx).await;
            }
            return;
        }
    };
    if question.deadline_ms > 0 && question.deadline_ms < assay_proto::now_ms() {
        tracing::debug!(role = P::ROLE, dispute = %question.dispute.short(), "a dispute question past its deadline: not answered");
        return;
    }
    let trace = match immediate(party.as_ref(), &question) {
        Immediate::Answer(a) => {
            send(party.as_ref(), *a, ctx).await;
            return;
        }
        Immediate::Rerun(trace) => trace,
    };
    let job = match &question.asked {
        Asked::Inputs { steps, rerun } => RerunFor::Inputs(steps.clone(), rerun.clone()),
        Asked::Claim { rerun: Some(rerun) } => RerunFor::Claim(rerun.clone()),
        Asked::Claim { rerun: None } => {
            let why = "a calls-only trace, and the question names no job to re-run";
            send(party.as_ref(), unable(&question.dispute, "claim", why), ctx).await;
            return;
        }
        _ => return,
    };
    let Some(id) = party.trace_id(&question) else {
        return;
    };
    let flight = (question.dispute, question.asked.kind().to_string());
    let fresh = in_flight.lock().is_ok_and(|mut f| {
        f.retain(|_, at| at.is_none_or(|t| t.elapsed() < ANSWERED_FOR));
        if f.contains_key(&flight) {
            return false;
        }
        f.insert(flight.clone(), None);
        true
    });
    if !fresh {
        return;
    }
    let (party, ctx, in_flight) = (party.clone(), ctx.clone(), in_flight.clone());
    let (dispute, deadline_ms) = (question.dispute, question.deadline_ms);
    tokio::spawn(async move {
        let a = match job {
            RerunFor::Inputs(steps, rerun) => {
                inputs(&party, &ctx, &dispute, &trace, &steps, rerun, deadline_ms).await
            }
            RerunFor::Claim(rerun) => {
                data_claim(&party, &ctx, &dispute, id, &trace, rerun, deadline_ms).await
            }
        };
        if let Some(a) = a {
            send(party.as_ref(), a, &ctx).await;
        }
        if let Ok(mut f) = in_flight.lock() {
            f.insert(flight, Some(Instant::now()));
        }
    });
}

/// Runs `rerun` again through `party` ([`Party::rerun`], on a blocking
/// thread), its blobs from the loop's cache, keeping the outputs of `keep`.
async fn run_again<P: Party>(
    party: &Arc<P>,
    ctx: &Context,
    rerun: Rerun,
    deadline_ms: u64,
    keep: BTreeSet<u64>,
) -> Result<RerunTrace, String> {
    let blobs = ctx
        .blobs
        .fetch(Some(&rerun.component), &rerun.inputs, rerun.job.as_ref())
        .await
        .map_err(|e| format!("cannot fetch the job's blobs: {e}"))?;
    let runner = party.clone();
    tokio::task::spawn_blocking(move || runner.rerun(&rerun, deadline_ms, keep, blobs))
        .await
        .map_err(|e| format!("the re-run crashed: {e}"))?
        .map_err(|why| format!("the re-run failed: {why}"))
}

/// Why a question needs the job run again.
enum RerunFor {
    /// To regain these steps' output tensors.
    Inputs(Vec<u64>, Rerun),
    /// To commit to a data trace in place of a calls-only one.
    Claim(Rerun),
}

/// The `claim` answer for a calls-only trace (a provider's receipt, by
/// default): re-run the job with every output hashed, check it made the
/// kept trace's calls, keep the data trace in its place ([`Party::commit`]
/// says which) and state that. The claim is this party's signed
/// commitment: the game bisects it against the other party's, and the
/// first step where they differ is recomputed — the commitment cannot
/// move that step to one where the other party is wrong.
async fn data_claim<P: Party>(
    party: &Arc<P>,
    ctx: &Context,
    dispute: &Hash32,
    id: Hash32,
    trace: &Arc<KeptTrace>,
    rerun: Rerun,
    deadline_ms: u64,
) -> Option<pb::AnswerRequest> {
    let no = |why: String| {
        tracing::warn!(role = P::ROLE, dispute = %dispute.short(), %why, "cannot commit to a data trace");
        Some(unable(dispute, "claim", why))
    };
    let started = Instant::now();
    let ran = match run_again(party, ctx, rerun, deadline_ms, BTreeSet::new()).await {
        Ok(r) => r,
        Err(why) => return no(why),
    };
    if !ran.data {
        return no("the re-run's trace holds no tensor digests".into());
    }
    let same_calls = ran.steps.len() == trace.steps.len()
        && ran
            .steps
            .iter()
            .zip(&trace.steps)
            .all(|(a, b)| a.call == b.call);
    if !same_calls {
        return no("the re-run made other calls than the run the receipt records".into());
    }
    let mut steps = ran.steps;
    party.commit(&mut steps);
    let data = KeptTrace::new(steps);
    let a = answer(
        party.signer().key(),
        dispute,
        &data,
        &Asked::Claim { rerun: None },
    );
    if !party.traces().keep(id, data) {
        return no("the data trace is too large to keep".into());
    }
    tracing::info!(role = P::ROLE, dispute = %dispute.short(), rerun_ms = started.elapsed().as_millis() as u64, "committed to a data trace for the dispute");
    Some(a)
}

/// The `inputs` answer: re-run, check, upload. `None`: nothing to send
/// now (an upload failed; the question is offered again).
async fn inputs<P: Party>(
    party: &Arc<P>,
    ctx: &Context,
    dispute: &Hash32,
    trace: &Arc<KeptTrace>,
    steps: &[u64],
    rerun: Rerun,
    deadline_ms: u64,
) -> Option<pb::AnswerRequest> {
    let no = |why: String| {
        tracing::warn!(role = P::ROLE, dispute = %dispute.short(), %why, "cannot reveal the disputed step's inputs");
        Some(unable(dispute, "inputs", why))
    };
    if let Some(&bad) = steps.iter().find(|&&s| s >= trace.tree.steps()) {
        return no(format!(
            "step {bad} is past the end of this trace ({} steps)",
            trace.tree.steps()
        ));
    }
    let keep: BTreeSet<u64> = steps.iter().copied().collect();
    let started = Instant::now();
    let kept = match run_again(party, ctx, rerun, deadline_ms, keep).await {
        Ok(r) => r.kept,
        Err(why) => return no(why),
    };
    let tensors = match step_tensors(trace, steps, &kept) {
        Ok(t) => t,
        Err(why) => return no(why),
    };
    let blobs: Vec<Arc<[u8]>> = tensors.iter().map(|t| t.bytes.clone()).collect();
    match client::upload_missing(party.channel(), party.signer(), &blobs).await {
        Ok(sent) => {
            tracing::info!(role = P::ROLE, dispute = %dispute.short(), steps = ?steps, rerun_ms = started.elapsed().as_millis() as u64, uploaded_bytes = sent, "revealed the disputed step's inputs");
        }
        Err(e) => {
            ctx.metrics.rpc_errors.inc();
            count(ctx, "inputs", "failed");
            tracing::warn!(role = P::ROLE, dispute = %dispute.short(), error = %e, "cannot upload the disputed step's inputs (will answer when asked again)");
            return None;
        }
    }
    Some(pb::AnswerRequest {
        dispute_id: dispute.0.to_vec(),
        kind: "inputs".into(),
        tensors: tensors.into_iter().map(|t| t.message).collect(),
        ..Default::default()
    })
}

fn count(ctx: &Context, kind: &str, result: &str) {
    ctx.metrics
        .dispute_answers
        .get_or_create(&AnswerLabels {
            kind: kind.to_string(),
            result: result.to_string(),
        })
        .inc();
}

/// Signs and sends an answer; failures are logged and counted.
async fn send<P: Party>(party: &P, mut a: pb::AnswerRequest, ctx: &Context) {
    let result = if a.unable.is_empty() {
        "answered"
    } else {
        "unable"
    };
    let kind = a.kind.clone();
    if let Err(e) = crate::sign(party.signer(), &mut a) {
        ctx.metrics.rpc_errors.inc();
        count(ctx, &kind, "failed");
        tracing::error!(role = P::ROLE, error = %e, "cannot sign an answer");
        return;
    }
    let dispute = convert::hash("dispute_id", &a.dispute_id)
        .map(|h| h.short())
        .unwrap_or_default();
    match ArbitrationClient::new(party.channel().clone())
        .max_encoding_message_size(client::MAX_MESSAGE_BYTES)
        .answer(a)
        .await
    {
        Ok(_) => {
            count(ctx, &kind, result);
            tracing::debug!(role = P::ROLE, %dispute, %kind, result, "answered a dispute question");
        }
        Err(s) => {
            ctx.metrics.rpc_errors.inc();
            count(ctx, &kind, "failed");
            tracing::warn!(role = P::ROLE, %dispute, %kind, error = %s, "the coordinator refused an answer");
        }
    }
}

/// What a question gets without re-running anything.
#[derive(Debug)]
pub enum Immediate {
    /// This answer (from the kept trace, or [`unable`] without it).
    Answer(Box<pb::AnswerRequest>),
    /// An `inputs` question about this kept trace, or a `claim` about a
    /// calls-only one: re-run the job.
    Rerun(Arc<KeptTrace>),
}

/// Answers `q` from `party`'s kept trace, or says a re-run is needed.
pub fn immediate<P: Party>(party: &P, q: &Question) -> Immediate {
    let kind = q.asked.kind();
    let Some(trace) = party.trace_id(q).and_then(|id| party.traces().get(&id)) else {
        let why = format!(
            "this {} no longer holds the trace (restarted or evicted)",
            P::ROLE
        );
        return Immediate::Answer(Box::new(unable(&q.dispute, kind, why)));
    };
    match &q.asked {
        Asked::Inputs { .. } => Immediate::Rerun(trace),
        Asked::Claim { .. } if !trace.data => Immediate::Rerun(trace),
        _ => Immediate::Answer(Box::new(answer(
            party.signer().key(),
            &q.dispute,
            &trace,
            &q.asked,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_protocol::trace::{Attr, Dtype, NodeReveal, tensor_digest};

    fn step(name: &str, inputs: Vec<u64>, seed: u8) -> Step {
        Step {
            call: Call::new(name, inputs, vec![Attr::U32(u32::from(seed))]).encode(),
            output: Hash32([seed; 32]),
        }
    }

    /// upload, upload, matmul, unary, read.
    fn steps() -> Vec<Step> {
        vec![
            step("tensor.upload-f32", vec![], 0),
            step("tensor.upload-f32", vec![], 1),
            step("tensor.matmul", vec![0, 1], 2),
            step("tensor.unary", vec![2], 3),
            step("tensor.read-f32", vec![3], 4),
        ]
    }

    #[test]
    fn the_store_keeps_within_its_bounds_oldest_out_first() {
        let store = TraceStore::new(3, 12);
        let t = |n: u8| KeptTrace::new((0..n).map(|i| step("tensor.fill", vec![], i)).collect());
        for id in 0..3u8 {
            assert!(store.keep(Hash32([id; 32]), t(2)));
        }
        assert_eq!((store.len(), store.steps()), (3, 6));
        // A fourth entry evicts the oldest.
        assert!(store.keep(Hash32([3; 32]), t(2)));
        assert!(store.get(&Hash32([0; 32])).is_none());
        assert!(store.get(&Hash32([1; 32])).is_some());
        assert_eq!((store.len(), store.steps()), (3, 6));
        // A big one evicts by steps: 6 + 10 > 12 leaves only it and [3].
        assert!(store.keep(Hash32([4; 32]), t(10)));
        assert_eq!(
            store.len(),
            1 + usize::from(store.get(&Hash32([3; 32])).is_some())
        );
        assert!(store.steps() <= 12);
        assert!(store.get(&Hash32([4; 32])).is_some());
        // Larger than the whole budget: not kept, nothing evicted.
        let before = store.len();
        assert!(!store.keep(Hash32([5; 32]), t(13)));
        assert_eq!(store.len(), before);
        // Replacing an id counts it once; forgetting frees its steps.
        assert!(store.keep(Hash32([4; 32]), t(1)));
        assert!(store.steps() <= 3);
        store.forget(&Hash32([4; 32]));
        assert!(store.get(&Hash32([4; 32])).is_none());
        let left = store.len();
        assert_eq!(store.steps(), 2 * left as u64);
    }

    #[test]
    fn node_and_leaf_answers_verify_and_the_end_is_ended() {
        let key = NodeKey::from_seed([3; 32]);
        let dispute = Hash32([8; 32]);
        let trace = KeptTrace::new(steps());
        let claim = answer(&key, &dispute, &trace, &Asked::Claim { rerun: None });
        assert_eq!(claim.trace_steps, 5);
        assert_eq!(claim.trace_top, trace.tree().top().0.to_vec());
        assert_eq!(
            assay_protocol::trace::root_of(5, &trace.tree().top()),
            trace.root()
        );
        // A node reveal: its signature verifies and its children hash to
        // the node.
        let a = answer(&key, &dispute, &trace, &Asked::Node { level: 2, index: 1 });
        let reveal = NodeReveal {
            dispute,
            party: key.id(),
            level: a.level,
            index: a.index,
            left: convert::hash("left", &a.left).expect("left"),
            right: convert::hash("right", &a.right).expect("right"),
            signature: convert::signature("sig", &a.reveal_signature).expect("sig"),
        };
        key.id()
            .verify(&reveal.signing_bytes(), &reveal.signature)
            .expect("the reveal verifies");
        assert_eq!(
            assay_protocol::trace::node_hash(&reveal.left, &reveal.right),
            trace.tree().node(2, 1)
        );
        assert!(a.unable.is_empty());
        // Level 0 or absurd levels are refused, not computed.
        for level in [0, MAX_DEPTH + 2, u32::MAX] {
            let a = answer(&key, &dispute, &trace, &Asked::Node { level, index: 0 });
            assert!(!a.unable.is_empty(), "level {level}");
        }
        // A leaf reveal is the step, signed.
        let a = answer(&key, &dispute, &trace, &Asked::Leaf { index: 2 });
        assert_eq!(a.call, trace.steps()[2].call);
        let reveal = LeafReveal {
            dispute,
            party: key.id(),
            index: 2,
            call: a.call.clone(),
            output: convert::hash("output", &a.output).expect("output"),
            signature: convert::signature("sig", &a.reveal_signature).expect("sig"),
        };
        key.id()
            .verify(&reveal.signing_bytes(), &reveal.signature)
            .expect("the leaf reveal verifies");
        assert!(!a.ended);
        // Past the end: ended, nothing revealed.
        for index in [5, u64::MAX] {
            let a = answer(&key, &dispute, &trace, &Asked::Leaf { index });
            assert!(a.ended && a.call.is_empty() && a.reveal_signature.is_empty());
            assert!(a.unable.is_empty());
        }
    }

    struct Fake {
        signer: assay_proto::auth::Signer,
        channel: Channel,
        traces: TraceStore,
    }

    impl Party for Fake {
        const ROLE: &'static str = "test";
        fn signer(&self) -> &assay_proto::auth::Signer {
            &self.signer
        }
        fn channel(&self) -> &Channel {
            &self.channel
        }
        fn traces(&self) -> &TraceStore {
            &self.traces
        }
        fn trace_id(&self, q: &Question) -> Option<Hash32> {
            q.receipt
        }
        fn rerun(
            &self,
            _rerun: &Rerun,
            _deadline_ms: u64,
            _keep: BTreeSet<u64>,
            _blobs: Fetched,
        ) -> Result<RerunTrace, String> {
            Err("not here".into())
        }
    }

    #[tokio::test]
    async fn a_question_about_a_trace_not_kept_is_answered_unable() {
        let fake = Fake {
            signer: assay_proto::auth::Signer::new(NodeKey::from_seed([1; 32]), Hash32([2; 32])),
            channel: client::channel("http://127.0.0.1:1").expect("channel"),
            traces: TraceStore::default(),
        };
        let q = pb::Question {
            dispute_id: vec![7; 32],
            receipt_id: vec![9; 32],
            kind: "claim".into(),
            ..Default::default()
        };
        let question = Question::parse(&q).expect("a question");
        let Immediate::Answer(a) = immediate(&fake, &question) else {
            panic!("answered at once");
        };
        assert_eq!(a.dispute_id, vec![7; 32]);
        assert!(!a.unable.is_empty());
        fake.traces.keep(Hash32([9; 32]), KeptTrace::new(steps()));
        let Immediate::Answer(a) = immediate(&fake, &question) else {
            panic!("answered at once");
        };
        assert!(a.unable.is_empty());
        assert_eq!(a.trace_steps, 5);
        let inputs = Question {
            asked: Asked::Inputs {
                steps: vec![0],
                rerun: Rerun {
                    component: Hash32::ZERO,
                    inputs: Vec::new(),
                    spec: JobSpec::default(),
                    job: None,
                },
            },
            ..question
        };
        assert!(matches!(immediate(&fake, &inputs), Immediate::Rerun(_)));
        // A calls-only trace is no claim: the job is run again first.
        let t = KeptTrace::new(steps());
        let leaves = t.tree().leaves().to_vec();
        fake.traces
            .keep(Hash32([9; 32]), KeptTrace::calls_only(steps(), leaves));
        assert!(matches!(immediate(&fake, &question), Immediate::Rerun(_)));
        assert!(
            !answer(
                fake.signer().key(),
                &Hash32([7; 32]),
                &KeptTrace::calls_only(steps(), Vec::new()),
                &Asked::Claim { rerun: None }
            )
            .unable
            .is_empty()
        );
        // An unknown kind, or an inputs question without its job, is refused.
        let bad = pb::Question {
            kind: "gossip".into(),
            ..q.clone()
        };
        assert!(Question::parse(&bad).is_err());
        let bad = pb::Question {
            kind: "inputs".into(),
            ..q
        };
        assert!(Question::parse(&bad).is_err());
    }

    #[test]
    fn the_middle_transform_step_skips_uploads_and_fills() {
        // 5 steps, middle 2: the matmul.
        assert_eq!(middle_transform_step(&steps()), Some(2));
        // Closest to the middle, the earlier on a tie.
        let mut s = steps();
        s[2] = step("tensor.fill", vec![], 2);
        // 3 (unary) is at distance 1; 1 is an upload.
        assert_eq!(middle_transform_step(&s), Some(3));
        let s = vec![
            step("tensor.upload-f32", vec![], 0),
            step("tensor.scale", vec![0], 1),
            step("tensor.fill", vec![], 2),
            step("tensor.scale", vec![0], 3),
        ];
        assert_eq!(middle_transform_step(&s), Some(1));
        // Nothing but uploads (or nothing at all): no step.
        assert_eq!(middle_transform_step(&steps()[..2]), None);
        assert_eq!(middle_transform_step(&[]), None);
        // A step whose call does not decode is never chosen.
        let garbage = vec![Step {
            call: vec![1, 2, 3],
            output: Hash32::ZERO,
        }];
        assert_eq!(middle_transform_step(&garbage), None);
    }

    #[test]
    fn the_corrupted_trace_differs_first_at_the_chosen_step() {
        let honest = KeptTrace::new(steps());
        let mut s = steps();
        assert_eq!(corrupt_middle_step(&mut s), Some(2));
        let lie = KeptTrace::new(s);
        assert_ne!(lie.root(), honest.root());
        let first = (0..5).find(|&i| lie.tree().leaves()[i] != honest.tree().leaves()[i]);
        assert_eq!(first, Some(2));
        assert_eq!(lie.steps()[2].call, honest.steps()[2].call);
        let mut none = steps()[..2].to_vec();
        assert_eq!(corrupt_middle_step(&mut none), None);
        assert_eq!(none, steps()[..2].to_vec());
    }

    #[test]
    fn step_tensors_are_proven_against_the_kept_trace() {
        let x = RevealedTensor {
            dtype: Dtype::F32,
            shape: vec![2],
            bytes: vec![0, 0, 128, 63, 0, 0, 0, 64],
        };
        let mut s = steps();
        s[0].output = x.digest();
        let trace = KeptTrace::new(s);
        let mut kept = BTreeMap::new();
        kept.insert(0, x.clone());
        let out = step_tensors(&trace, &[0], &kept).expect("step 0");
        let StepReveal { message: t, bytes } = &out[0];
        assert_eq!((t.step, t.trace_steps, t.dtype), (0, 5, 0));
        assert_eq!(t.siblings.len(), 3);
        assert_eq!(&bytes[..], &x.bytes[..]);
        let blob = t.tensor.as_ref().expect("blob");
        assert_eq!(blob.name, "step-0");
        assert_eq!(blob.hash, Hash32::of(&x.bytes).0.to_vec());
        // The proof verifies against the trace's root.
        let proof = trace.tree().prove(0).expect("proof");
        let ev = assay_protocol::trace::InputEvidence {
            call: t.call.clone(),
            proof,
            tensor: x.clone(),
        };
        ev.check(0, 2, &[trace.root(), Hash32::ZERO])
            .expect("evidence");
        // Another tensor, a step not kept, or one past the end: refused.
        let mut other = kept.clone();
        other.insert(
            0,
            RevealedTensor {
                bytes: vec![0; 8],
                ..x.clone()
            },
        );
        assert!(step_tensors(&trace, &[0], &other).is_err());
        assert!(step_tensors(&trace, &[1], &kept).is_err());
        assert!(step_tensors(&trace, &[9], &kept).is_err());
        assert_ne!(tensor_digest(Dtype::F32, &[2], &[0; 8]), x.digest());
    }
}
