//! Recording a run's trace ([`assay_protocol::trace`], format
//! `assay/trace-step/v1`) as the host serves the guest, and replaying one
//! step of it: the arbiter's one-op recompute in a dispute.
//!
//! Every host call that is a step (see the format) reports here from
//! `host/tensor.rs` and `host/job_io.rs`: its WIT name, the steps its tensor
//! operands came from (a handle's producer is remembered by the handle's
//! slot in the resource table), its other parameters as
//! [`assay_protocol::trace::Attr`]s, and its result. The output digest is
//! computed where the bytes are:
//!
//! - **CPU backend:** the output's elements are hashed in host memory, in
//!   place (`Tensor::host_elements`), once per op, on the job's thread or
//!   on a thread beside the ops ([`Hashing`]). A `reshape` reuses its
//!   input's hash (same bytes), a read reuses its tensor's, and a tensor
//!   decoded from a large input range (≥ 64 KiB, a model's weights) is
//!   hashed once per runtime and then remembered by the range's content
//!   name, as the device keeps the decoded tensor itself.
//! - **CUDA backend:** op outputs stay on the device, and downloading every
//!   one would cost more than the op, so only the call and the output's
//!   dtype and shape are recorded (`unhashed_digest`); reads (which download
//!   anyway) are hashed. Hashing on the device is future work. Until then a
//!   CUDA trace commits to the calls only, differs from a CPU trace of the
//!   same run, and cannot settle an output dispute by itself.
//!
//! [`replay_step`] re-executes one recorded call on the CPU backend from its
//! revealed inputs and returns its output digest and leaf, computed by the
//! same functions the recorder uses.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, mpsc};

use assay_host_gpu::{self as hg, Device, Session, SessionLimits, Tensor};
use assay_protocol::Hash32;
use assay_protocol::trace::{
    Attr, Call, Dtype, MAX_STEPS, RevealedTensor, Step, TraceTree, refused_digest, step_leaf,
    tensor_digest_of_content, unhashed_digest,
};

use crate::ctx::Inputs;
use crate::error::{Ending, Error, HostError};

/// WIT names of the `unary-op` cases.
pub(crate) const UNARY: [(hg::UnaryOp, &str); 9] = [
    (hg::UnaryOp::Neg, "neg"),
    (hg::UnaryOp::Abs, "abs"),
    (hg::UnaryOp::Relu, "relu"),
    (hg::UnaryOp::Gelu, "gelu"),
    (hg::UnaryOp::Tanh, "tanh"),
    (hg::UnaryOp::Sigmoid, "sigmoid"),
    (hg::UnaryOp::Exp, "exp"),
    (hg::UnaryOp::Log, "log"),
    (hg::UnaryOp::Sqrt, "sqrt"),
];

/// WIT names of the `binary-op` cases.
pub(crate) const BINARY: [(hg::BinaryOp, &str); 6] = [
    (hg::BinaryOp::Add, "add"),
    (hg::BinaryOp::Sub, "sub"),
    (hg::BinaryOp::Mul, "mul"),
    (hg::BinaryOp::Div, "div"),
    (hg::BinaryOp::Max, "max"),
    (hg::BinaryOp::Min, "min"),
];

/// WIT names of the `reduce-op` cases.
pub(crate) const REDUCE: [(hg::ReduceOp, &str); 4] = [
    (hg::ReduceOp::Sum, "sum"),
    (hg::ReduceOp::Mean, "mean"),
    (hg::ReduceOp::Max, "max"),
    (hg::ReduceOp::Min, "min"),
];

/// WIT names of the `encoding` and `block-format` cases (`job-io`).
pub(crate) const ENCODING: [(hg::SourceEncoding, &str); 8] = [
    (hg::SourceEncoding::F32, "f32"),
    (hg::SourceEncoding::F16, "f16"),
    (hg::SourceEncoding::Bf16, "bf16"),
    (hg::SourceEncoding::I32, "i32"),
    (hg::SourceEncoding::I64, "i64"),
    (hg::SourceEncoding::Q4_0, "q40"),
    (hg::SourceEncoding::Q4_1, "q41"),
    (hg::SourceEncoding::Q8_0, "q80"),
];

/// WIT names of the `dtype` cases.
pub(crate) const DTYPE: [(hg::DType, &str); 2] = [(hg::DType::F32, "f32"), (hg::DType::I32, "i32")];

/// The WIT name of `value` in `table`.
pub(crate) fn case<T: PartialEq + Copy>(table: &[(T, &'static str)], value: T) -> Attr {
    let name = table
        .iter()
        .find(|(v, _)| *v == value)
        .map_or("?", |(_, n)| *n);
    Attr::case(name)
}

fn from_case<T: Copy>(table: &[(T, &'static str)], name: &str) -> Option<T> {
    table.iter().find(|(_, n)| *n == name).map(|(v, _)| *v)
}

/// A `list<u32>` attr from host dimensions.
pub(crate) fn dims_attr(dims: &[u32]) -> Attr {
    Attr::U32s(dims.to_vec())
}

fn dtype(d: hg::DType) -> Dtype {
    match d {
        hg::DType::F32 => Dtype::F32,
        hg::DType::I32 => Dtype::I32,
        hg::DType::Q4_0 => Dtype::Q4_0,
        hg::DType::Q4_1 => Dtype::Q4_1,
        hg::DType::Q8_0 => Dtype::Q8_0,
    }
}

/// The block encoding of a trace dtype (`None` for f32 and i32).
fn blocks_encoding(d: Dtype) -> Option<hg::SourceEncoding> {
    match d {
        Dtype::Q4_0 => Some(hg::SourceEncoding::Q4_0),
        Dtype::Q4_1 => Some(hg::SourceEncoding::Q4_1),
        Dtype::Q8_0 => Some(hg::SourceEncoding::Q8_0),
        Dtype::F32 | Dtype::I32 => None,
    }
}

fn shape(t: &Tensor) -> Vec<u64> {
    t.shape().iter().map(|&d| d as u64).collect()
}

/// blake3 of elements where they are.
fn hash_elements(elements: hg::HostElements<'_>) -> Hash32 {
    if let Some(bytes) = elements.le_bytes() {
        return Hash32::of(bytes);
    }
    let mut h = blake3::Hasher::new();
    match elements {
        hg::HostElements::F32(v) => v.iter().for_each(|x| {
            h.update(&x.to_le_bytes());
        }),
        hg::HostElements::I32(v) => v.iter().for_each(|x| {
            h.update(&x.to_le_bytes());
        }),
    }
    h.finalize().into()
}

/// blake3 of a tensor's bytes where they are, or `None` when they are on a
/// device (see the module docs).
fn host_content(t: &Tensor) -> Option<Hash32> {
    t.host_elements().map(hash_elements)
}

/// As [`host_content`], and for a tensor of blocks the blake3 of its
/// blocks as GGML stores them (read back: replays only).
fn replayed_content(s: &Session, t: &Tensor) -> Option<Hash32> {
    if t.dtype().is_blocks() {
        return s.read_bytes(t).ok().map(|b| Hash32::of(&b));
    }
    host_content(t)
}

/// What a refused call's output digest names: the WIT error case, or the
/// outcome the call ended the run with.
fn refusal_case(e: &HostError) -> &'static str {
    match e {
        HostError::Guest { case, .. } => case.wit_name(),
        HostError::End(Ending::WorkBudget { .. }) => "work-budget-exhausted",
        HostError::End(Ending::OutputLimit { .. }) => "output-limit-exceeded",
        HostError::End(Ending::HostRule { .. }) => "host-rule",
        HostError::Fault(_) => "device-fault",
    }
}

/// Where the bytes hash of a new tensor comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Content {
    /// Hash the tensor's bytes.
    Hash,
    /// The same bytes as operand `n` (a reshape).
    SameAs(usize),
    /// Decoded from a job input range named by this key: remembered.
    Range([u8; 32]),
    /// Already known (a tensor of blocks: the blake3 of its input range).
    Known(Hash32),
}

/// The blake3 of tensors decoded from large input ranges, by the range's
/// content name and encoding, shared by a runtime's runs (a provider decodes
/// one model's weights shard after shard; their bytes hash is the same).
#[derive(Debug, Default)]
pub(crate) struct RangeHashes(Mutex<HashMap<[u8; 32], Hash32>>);

impl RangeHashes {
    /// Entries kept (a MiniLM has ~100 weight tensors); past it the memo
    /// starts over.
    const KEPT: usize = 4096;

    fn get(&self, key: &[u8; 32]) -> Option<Hash32> {
        self.0.lock().ok()?.get(key).copied()
    }

    fn put(&self, key: [u8; 32], content: Hash32) {
        if let Ok(mut memo) = self.0.lock() {
            if memo.len() >= Self::KEPT {
                memo.clear();
            }
            memo.insert(key, content);
        }
    }
}

/// Where a run hashes its op outputs (CPU backend; a GPU's stay unhashed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
///
/// Hashing every output costs what blake3 costs on those bytes (about
/// 5 GB/s a core): on MiniLM about 95 MiB a run, 8–10 % of its CPU time on
/// one thread (BENCHMARKS.md, "Arbitration by trace bisection"). Beside
/// the ops it leaves the job's thread but costs more CPU (the outputs have
/// left the cache), so it only pays where a core would otherwise idle.
pub enum Hashing {
    /// Every output on the job's thread, right after its op (while it may
    /// still be in cache).
    #[default]
    Inline,
    /// Outputs of 64 KiB or more on a thread of the run's own beside the
    /// ops (smaller ones at once): the job's thread only hands them over.
    Beside,
    /// None: calls, dtypes and shapes only, as on a GPU. The trace then
    /// commits to no data and is the CUDA backend's trace bit for bit;
    /// recording it costs about 2 % (at the noise of the measurement).
    CallsOnly,
}

/// How a run records its trace.
#[derive(Debug, Clone, Default)]
pub struct TraceOptions {
    /// Do not record (the receipt then states `Hash32::ZERO`): for
    /// measuring what recording costs, never for a receipt that may be
    /// disputed.
    pub off: bool,
    /// Where op outputs are hashed.
    pub hashing: Hashing,
    /// Steps whose output tensors to keep ([`RunTrace::kept`]), to reveal
    /// them in a dispute.
    pub keep: BTreeSet<u64>,
    /// End the run right after step `n` is recorded (the next host call
    /// that makes a step, or step `n` itself when it is refused or read
    /// back, ends it with a host-rule ending): an arbiter re-runs a guest
    /// up to the step where two traces' calls differ.
    pub stop_after: Option<u64>,
}

/// A run's trace: every step, its leaves and root, and the tensors kept.
#[derive(Debug, Clone, Default)]
pub struct RunTrace {
    /// Whether it was recorded (see [`TraceOptions::off`]).
    pub recorded: bool,
    /// Whether every tensor output's digest is of its bytes (none
    /// recorded by dtype and shape only: [`Hashing::CallsOnly`], or a
    /// GPU's outputs). Only such a trace can settle a dispute about an
    /// op's output; a party plays the bisection game with no other.
    pub data: bool,
    /// The steps, in call order (at most `trace::MAX_STEPS`).
    pub steps: Vec<Step>,
    /// Steps the run made past `trace::MAX_STEPS`, left out of the trace.
    pub left_out: u64,
    /// Their leaves.
    pub leaves: Vec<Hash32>,
    /// The trace root the receipt states.
    pub root: Hash32,
    /// The output tensors of the steps asked for in [`TraceOptions::keep`].
    pub kept: BTreeMap<u64, RevealedTensor>,
}

impl RunTrace {
    /// The Merkle tree, to answer reveals and prove leaves.
    pub fn tree(&self) -> TraceTree {
        TraceTree::new(self.leaves.clone())
    }
}

/// Steps of a handle the recorder never saw (a bug, not a guest's doing):
/// recorded as this impossible step rather than failing the run.
const UNKNOWN_STEP: u64 = u64::MAX;

/// Outputs at least this large are hashed beside the ops ([`Hashing::Beside`]).
const BESIDE_MIN_BYTES: u64 = 64 << 10;

/// Most bytes of outputs handed over and not yet hashed: past it the job's
/// thread waits, so the buffers held beyond the quota stay bounded.
const BESIDE_MAX_IN_FLIGHT: u64 = 128 << 20;

/// A step's output as far as it is known while the run goes on.
#[derive(Debug, Clone)]
enum Output {
    /// The digest is final (a refusal).
    Final(Hash32),
    /// A tensor whose bytes hash is …
    Tensor {
        dtype: Dtype,
        shape: Vec<u64>,
        content: Pending,
        /// The range memo key to fill once the hash is known.
        range: Option<[u8; 32]>,
    },
}

/// A tensor's bytes hash while the run goes on.
#[derive(Debug, Clone, Copy)]
enum Pending {
    Known(Hash32),
    /// On the hasher thread.
    Beside,
    /// The same bytes as an earlier step's output.
    SameAs(u64),
    /// Not hashed (device memory, or [`Hashing::CallsOnly`]).
    Unhashed,
}

/// The thread a run hashes large outputs on, beside its ops.
#[derive(Debug)]
struct BesideHasher {
    jobs: mpsc::Sender<(u64, Arc<dyn hg::DeviceBuffer>, u64)>,
    done: std::thread::JoinHandle<Vec<(u64, Hash32)>>,
    /// Bytes handed over and not yet hashed.
    in_flight: Arc<(Mutex<u64>, Condvar)>,
}

impl BesideHasher {
    fn spawn() -> Option<BesideHasher> {
        let (jobs, rx) = mpsc::channel::<(u64, Arc<dyn hg::DeviceBuffer>, u64)>();
        let in_flight: Arc<(Mutex<u64>, Condvar)> = Arc::default();
        let flight = in_flight.clone();
        let done = std::thread::Builder::new()
            .name("assay-trace-hash".into())
            .spawn(move || {
                let mut hashed = Vec::new();
                for (step, buffer, bytes) in rx {
                    if let Some(elements) = buffer.host_elements() {
                        hashed.push((step, hash_elements(elements)));
                    }
                    drop(buffer);
                    let (lock, cv) = &*flight;
                    if let Ok(mut n) = lock.lock() {
                        *n = n.saturating_sub(bytes);
                    }
                    cv.notify_all();
                }
                hashed
            })
            .ok()?;
        Some(BesideHasher {
            jobs,
            done,
            in_flight,
        })
    }

    /// Hands `buffer` over; `false` if the thread is gone (hash it here).
    fn submit(&self, step: u64, buffer: Arc<dyn hg::DeviceBuffer>, bytes: u64) -> bool {
        let (lock, cv) = &*self.in_flight;
        if let Ok(mut n) = lock.lock() {
            while *n > 0 && *n + bytes > BESIDE_MAX_IN_FLIGHT {
                match cv.wait(n) {
                    Ok(g) => n = g,
                    Err(_) => return false,
                }
            }
            *n += bytes;
        }
        self.jobs.send((step, buffer, bytes)).is_ok()
    }

    fn finish(self) -> Vec<(u64, Hash32)> {
        drop(self.jobs);
        self.done.join().unwrap_or_default()
    }
}

/// One run's recorder, kept in its [`crate::GpuCtx`].
#[derive(Debug)]
pub(crate) struct Recorder {
    on: bool,
    hashing: Hashing,
    calls: Vec<Vec<u8>>,
    outputs: Vec<Output>,
    /// The step that made the tensor in each resource-table slot.
    producers: HashMap<u32, u64>,
    ranges: Arc<RangeHashes>,
    beside: Option<BesideHasher>,
    keep: BTreeSet<u64>,
    kept: BTreeMap<u64, RevealedTensor>,
    /// Steps past [`MAX_STEPS`], not recorded.
    left_out: u64,
    stop_after: Option<u64>,
}

impl Recorder {
    pub(crate) fn new(options: &TraceOptions, ranges: Arc<RangeHashes>) -> Recorder {
        Recorder {
            on: !options.off,
            hashing: options.hashing,
            calls: Vec::new(),
            outputs: Vec::new(),
            producers: HashMap::new(),
            ranges,
            beside: None,
            keep: options.keep.clone(),
            kept: BTreeMap::new(),
            left_out: 0,
            stop_after: options.stop_after,
        }
    }

    /// Whether the run is to end now: the step it was to stop after is
    /// recorded ([`TraceOptions::stop_after`]).
    pub(crate) fn stop_due(&self) -> Option<u64> {
        self.stop_after
            .filter(|n| self.on && self.calls.len() as u64 > *n)
    }

    /// Whether this call is recorded: the recorder is on and the trace is
    /// not full (a call past it is counted instead).
    fn records(&mut self) -> bool {
        if !self.on {
            return false;
        }
        if self.calls.len() as u64 >= MAX_STEPS {
            self.left_out += 1;
            return false;
        }
        true
    }

    /// A recorder that records nothing.
    pub(crate) fn off() -> Recorder {
        Recorder::new(
            &TraceOptions {
                off: true,
                ..TraceOptions::default()
            },
            Arc::default(),
        )
    }

    pub(crate) fn is_on(&self) -> bool {
        self.on
    }

    /// Whether outputs' bytes are hashed (on, and not calls only).
    pub(crate) fn hashes_data(&self) -> bool {
        self.on && self.hashing != Hashing::CallsOnly
    }

    /// The hash remembered under `key` (shared by a runtime's runs), or
    /// `compute`'s, remembered now.
    pub(crate) fn remembered(&self, key: [u8; 32], compute: impl FnOnce() -> Hash32) -> Hash32 {
        if let Some(h) = self.ranges.get(&key) {
            return h;
        }
        let h = compute();
        self.ranges.put(key, h);
        h
    }

    /// The step whose output is the tensor in table slot `rep`.
    pub(crate) fn producer(&self, rep: u32) -> u64 {
        self.producers.get(&rep).copied().unwrap_or(UNKNOWN_STEP)
    }

    fn push(&mut self, call: Call, output: Output) -> u64 {
        let index = self.calls.len() as u64;
        self.calls.push(call.encode());
        self.outputs.push(output);
        index
    }

    /// The bytes hash of step `step`'s output, as far as known.
    fn content_of(&self, step: u64) -> Pending {
        let output = usize::try_from(step).ok().and_then(|s| self.outputs.get(s));
        match output {
            Some(Output::Tensor { content, .. }) => match content {
                Pending::Beside => Pending::SameAs(step),
                other => *other,
            },
            _ => Pending::Unhashed,
        }
    }

    /// A call the host refused (or that ended the run).
    pub(crate) fn refused(
        &mut self,
        name: &str,
        inputs: Vec<u64>,
        attrs: Vec<Attr>,
        e: &HostError,
    ) {
        if self.records() {
            let output = Output::Final(refused_digest(refusal_case(e)));
            self.push(Call::new(name, inputs, attrs), output);
        }
    }

    /// A call that made tensor `t`; returns its step (bind it to the
    /// handle with [`Recorder::bind`]).
    pub(crate) fn produced(
        &mut self,
        name: &str,
        inputs: Vec<u64>,
        attrs: Vec<Attr>,
        t: &Tensor,
        content: Content,
    ) -> u64 {
        if !self.records() {
            return UNKNOWN_STEP;
        }
        let step = self.calls.len() as u64;
        let mut range = None;
        let pending = match content {
            _ if self.hashing == Hashing::CallsOnly => Pending::Unhashed,
            Content::SameAs(n) => inputs
                .get(n)
                .map_or(Pending::Unhashed, |&s| self.content_of(s)),
            Content::Range(key) => match self.ranges.get(&key) {
                Some(h) => Pending::Known(h),
                None => {
                    range = Some(key);
                    self.hash(step, t)
                }
            },
            Content::Hash => self.hash(step, t),
            Content::Known(h) => Pending::Known(h),
        };
        let output = Output::Tensor {
            dtype: dtype(t.dtype()),
            shape: shape(t),
            content: pending,
            range,
        };
        self.push(Call::new(name, inputs, attrs), output)
    }

    /// Hashes `t`, the output of `step`: at once, or beside the ops.
    fn hash(&mut self, step: u64, t: &Tensor) -> Pending {
        if t.host_elements().is_none() {
            return Pending::Unhashed;
        }
        if self.hashing == Hashing::Beside && t.byte_len() >= BESIDE_MIN_BYTES {
            if self.beside.is_none() {
                self.beside = BesideHasher::spawn();
            }
            if let Some(b) = &self.beside
                && b.submit(step, t.shared_buffer(), t.byte_len())
            {
                return Pending::Beside;
            }
        }
        host_content(t).map_or(Pending::Unhashed, Pending::Known)
    }

    /// Remembers that table slot `rep` holds the output of `step`.
    pub(crate) fn bind(&mut self, rep: u32, step: u64) {
        if self.on {
            self.producers.insert(rep, step);
        }
    }

    /// A host→guest read of `t` (the output of step `input`); `bytes`
    /// gives the hash of the bytes read when the tensor's own is not known
    /// (a GPU).
    pub(crate) fn read(
        &mut self,
        name: &str,
        input: u64,
        attrs: Vec<Attr>,
        t: &Tensor,
        bytes: impl FnOnce() -> Hash32,
    ) {
        if !self.records() {
            return;
        }
        let content = match self.content_of(input) {
            Pending::Unhashed => Pending::Known(bytes()),
            known => known,
        };
        let output = Output::Tensor {
            dtype: dtype(t.dtype()),
            shape: shape(t),
            content,
            range: None,
        };
        self.push(Call::new(name, vec![input], attrs), output);
    }

    /// Whether the output of `step` is to be kept.
    pub(crate) fn wants(&self, step: u64) -> bool {
        self.on && self.keep.contains(&step)
    }

    /// Keeps the output of `step` (its bytes read back by the caller).
    pub(crate) fn keep(&mut self, step: u64, t: &Tensor, bytes: Vec<u8>) {
        self.kept.insert(
            step,
            RevealedTensor {
                dtype: dtype(t.dtype()),
                shape: shape(t),
                bytes,
            },
        );
    }

    /// The finished trace (waits for the hashes still being computed).
    pub(crate) fn finish(mut self) -> RunTrace {
        if !self.on {
            return RunTrace::default();
        }
        let beside: HashMap<u64, Hash32> = self
            .beside
            .take()
            .map(BesideHasher::finish)
            .unwrap_or_default()
            .into_iter()
            .collect();
        // Resolved in call order: a step refers only to earlier ones.
        let mut contents: Vec<Option<Hash32>> = Vec::with_capacity(self.outputs.len());
        let mut steps = Vec::with_capacity(self.outputs.len());
        let mut data = true;
        for (i, (call, output)) in self.calls.into_iter().zip(&self.outputs).enumerate() {
            let (digest, content) = match output {
                Output::Final(d) => (*d, None),
                Output::Tensor {
                    dtype,
                    shape,
                    content,
                    range,
                } => {
                    let known = match content {
                        Pending::Known(h) => Some(*h),
                        Pending::Beside => beside.get(&(i as u64)).copied(),
                        Pending::SameAs(s) => usize::try_from(*s)
                            .ok()
                            .and_then(|s| contents.get(s).copied().flatten()),
                        Pending::Unhashed => None,
                    };
                    if let (Some(key), Some(h)) = (range, known) {
                        self.ranges.put(*key, h);
                    }
                    let digest = match &known {
                        Some(h) => tensor_digest_of_content(*dtype, shape, h),
                        None => {
                            data = false;
                            unhashed_digest(*dtype, shape)
                        }
                    };
                    (digest, known)
                }
            };
            contents.push(content);
            steps.push(Step {
                call,
                output: digest,
            });
        }
        let leaves: Vec<Hash32> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| s.leaf(i as u64))
            .collect();
        let root = assay_protocol::trace::trace_root(&leaves);
        RunTrace {
            recorded: true,
            data,
            left_out: self.left_out,
            steps,
            leaves,
            root,
            kept: self.kept,
        }
    }
}

/// Every call that is a step, by its WIT name.
const STEP_CALLS: [&str; 32] = [
    "tensor.upload-f32",
    "tensor.upload-i32",
    "tensor.fill",
    "job-io.tensor-from-input",
    "job-io.blocks-from-input",
    "tensor.read-f32",
    "tensor.read-i32",
    "job-io.write-tensor-output",
    "tensor.matmul",
    "tensor.linear",
    "tensor.attention",
    "tensor.causal-attention",
    "tensor.rope",
    "tensor.swiglu",
    "tensor.unary",
    "tensor.binary",
    "tensor.scale",
    "tensor.reduce",
    "tensor.softmax",
    "tensor.layer-norm",
    "tensor.rms-norm",
    "tensor.gather",
    "tensor.reshape",
    "tensor.permute",
    "tensor.slice",
    "tensor.concat",
    "tensor.masked-mean-pool",
    "tensor.l2-normalize",
    "tensor.argmax",
    "tensor.conv2d",
    "tensor.max-pool2d",
    "tensor.cast",
];

/// A runtime whose traces hash every output ([`RunTrace::data`]), for a
/// dispute: `runtime` itself when it runs on the CPU, else a CPU runtime
/// made once into `cpu` — a GPU keeps op outputs on the device and hashes
/// none, and the CPU gives the same bits by definition. The CPU runtime
/// signs with a key of its own: its runs' receipts are for traces only.
///
/// # Errors
///
/// [`Error::Protocol`] without a random source for its key, or what
/// [`crate::Runtime::new`] returns.
pub fn data_runtime(
    runtime: &Arc<crate::Runtime>,
    cpu: &std::sync::OnceLock<Arc<crate::Runtime>>,
) -> Result<Arc<crate::Runtime>, Error> {
    if runtime.device().info().kind == "cpu" {
        return Ok(runtime.clone());
    }
    if let Some(r) = cpu.get() {
        return Ok(r.clone());
    }
    let made = crate::Runtime::new(crate::RuntimeOptions {
        cache_dir: None,
        device: Device::cpu(),
        key: assay_protocol::NodeKey::generate()?,
    })?;
    Ok(cpu.get_or_init(|| Arc::new(made)).clone())
}

/// What replaying one step gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// The output digest.
    pub output: Hash32,
    /// The step's leaf with that output.
    pub leaf: Hash32,
}

/// The arbiter's one-step recompute: re-executes `call`, step `index` of a
/// trace, on `device` (a CPU device: its outputs are hashed in place) from
/// `inputs`, the revealed outputs of the steps `call.inputs` names (checked
/// against their leaves beforehand, `InputEvidence::check`). A
/// `job-io.tensor-from-input` reads the job's `job_inputs`.
///
/// The step runs in a session of its own without the job's GPU quota or
/// work budget: a refusal that depends on what the run held or spent
/// before (`quota-exceeded`, `work-budget-exhausted`, `output-limit-exceeded`)
/// is not reproduced, and needs the meters of the agreed prefix (future
/// work); every other refusal is.
///
/// # Errors
///
/// [`Error::Replay`] if the call cannot be replayed from its inputs (an
/// upload, whose data came from the guest: deciding it means re-running the
/// guest), names an unknown op, or its inputs or parameters do not fit it.
pub fn replay_step(
    device: &Device,
    index: u64,
    call: &Call,
    inputs: &[RevealedTensor],
    job_inputs: &Inputs,
) -> Result<Replayed, Error> {
    let output = replay(device, call, inputs, job_inputs)?;
    Ok(Replayed {
        output,
        leaf: step_leaf(index, &call.encode(), &output),
    })
}

fn bad(call: &Call, why: impl std::fmt::Display) -> Error {
    Error::Replay(format!("{}: {why}", call.name))
}

/// Reads attr `i` of `call`.
struct Attrs<'a>(&'a Call);

impl Attrs<'_> {
    fn get(&self, i: usize) -> Result<&Attr, Error> {
        self.0
            .attrs
            .get(i)
            .ok_or_else(|| bad(self.0, format!("no parameter {i}")))
    }

    fn bool(&self, i: usize) -> Result<bool, Error> {
        match self.get(i)? {
            Attr::Bool(v) => Ok(*v),
            a => Err(bad(self.0, format!("parameter {i} is {a:?}, not a bool"))),
        }
    }

    fn u32(&self, i: usize) -> Result<u32, Error> {
        match self.get(i)? {
            Attr::U32(v) => Ok(*v),
            a => Err(bad(self.0, format!("parameter {i} is {a:?}, not a u32"))),
        }
    }

    fn usize(&self, i: usize) -> Result<usize, Error> {
        Ok(self.u32(i)? as usize)
    }

    fn u64(&self, i: usize) -> Result<u64, Error> {
        match self.get(i)? {
            Attr::U64(v) => Ok(*v),
            a => Err(bad(self.0, format!("parameter {i} is {a:?}, not a u64"))),
        }
    }

    fn f32(&self, i: usize) -> Result<f32, Error> {
        match self.get(i)? {
            Attr::F32(v) => Ok(f32::from_bits(*v)),
            a => Err(bad(self.0, format!("parameter {i} is {a:?}, not an f32"))),
        }
    }

    fn dims(&self, i: usize) -> Result<Vec<usize>, Error> {
        match self.get(i)? {
            Attr::U32s(v) => Ok(v.iter().map(|&d| d as usize).collect()),
            a => Err(bad(self.0, format!("parameter {i} is {a:?}, not a list"))),
        }
    }

    fn str(&self, i: usize) -> Result<&str, Error> {
        match self.get(i)? {
            Attr::Str(v) => Ok(v),
            a => Err(bad(self.0, format!("parameter {i} is {a:?}, not a string"))),
        }
    }

    fn case<T: Copy>(&self, i: usize, table: &[(T, &'static str)]) -> Result<T, Error> {
        match self.get(i)? {
            Attr::Case(name) => from_case(table, name)
                .ok_or_else(|| bad(self.0, format!("no case {name:?} for parameter {i}"))),
            a => Err(bad(self.0, format!("parameter {i} is {a:?}, not a case"))),
        }
    }

    fn option_case<T: Copy>(
        &self,
        i: usize,
        table: &[(T, &'static str)],
    ) -> Result<Option<T>, Error> {
        match self.get(i)? {
            Attr::Absent => Ok(None),
            _ => self.case(i, table).map(Some),
        }
    }
}

fn upload(session: &mut Session, t: &RevealedTensor) -> Result<Tensor, hg::Error> {
    let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    let words = t.bytes.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
    match t.dtype {
        Dtype::F32 => session.upload_f32(&shape, words.map(f32::from_le_bytes).collect()),
        Dtype::I32 => session.upload_i32(&shape, words.map(i32::from_le_bytes).collect()),
        Dtype::Q4_0 | Dtype::Q4_1 | Dtype::Q8_0 => {
            let encoding = blocks_encoding(t.dtype).unwrap_or(hg::SourceEncoding::Q8_0);
            session.blocks_from_encoded(&shape, encoding, &t.bytes, None)
        }
    }
}

fn replay(
    device: &Device,
    call: &Call,
    inputs: &[RevealedTensor],
    job_inputs: &Inputs,
) -> Result<Hash32, Error> {
    if inputs.len() != call.inputs.len() {
        return Err(bad(
            call,
            format!("{} inputs revealed for {}", inputs.len(), call.inputs.len()),
        ));
    }
    let mut s = Session::new(
        device.clone(),
        SessionLimits {
            memory_quota: u64::MAX,
            work_budget: u64::MAX,
            ..SessionLimits::default()
        },
    );
    let mut xs = Vec::with_capacity(inputs.len());
    for t in inputs {
        if blocks_encoding(t.dtype).is_none() && t.bytes.len() % 4 != 0 {
            return Err(bad(
                call,
                "a revealed tensor's bytes are not whole elements",
            ));
        }
        xs.push(upload(&mut s, t).map_err(|e| bad(call, format!("revealed input: {e}")))?);
    }
    let Some(name) = STEP_CALLS.iter().copied().find(|n| *n == call.name) else {
        return Err(bad(call, "not a step of the trace format"));
    };
    let a = Attrs(call);
    let x = |i: usize| -> Result<&Tensor, Error> {
        xs.get(i)
            .ok_or_else(|| bad(call, format!("needs input {i}")))
    };
    let result: Result<Tensor, HostError> = match name {
        "tensor.upload-f32" | "tensor.upload-i32" => {
            return Err(bad(
                call,
                "an upload's data came from the guest: re-run the guest to this step",
            ));
        }
        "tensor.read-f32" | "tensor.read-i32" | "job-io.write-tensor-output" => {
            let t = x(0)?;
            let refused = match name {
                "tensor.read-f32" => s.read_f32(t).err(),
                "tensor.read-i32" => s.read_i32(t).err(),
                _ => None,
            };
            if let Some(e) = refused {
                return Ok(refused_digest(refusal_case(&HostError::from_op(name, e))));
            }
            if name == "job-io.write-tensor-output"
                && let Err(e) = crate::host::check_output_name(name, a.str(0)?)
            {
                return Ok(refused_digest(refusal_case(&e)));
            }
            let content = replayed_content(&s, t).ok_or_else(|| bad(call, "not a host tensor"))?;
            return Ok(tensor_digest_of_content(
                dtype(t.dtype()),
                &shape(t),
                &content,
            ));
        }
        "job-io.tensor-from-input" => {
            let encoding = a.case(2, &ENCODING)?;
            let dims = a.dims(3)?;
            match crate::host::input_range(name, job_inputs, a.str(0)?, a.u64(1)?, encoding, &dims)
            {
                Ok(range) => s
                    .from_encoded(&dims, encoding, range)
                    .map_err(|e| HostError::from_op(name, e)),
                Err(e) => Err(e),
            }
        }
        "job-io.blocks-from-input" => {
            let encoding = a.case(2, &ENCODING)?;
            let dims = a.dims(3)?;
            let made =
                crate::host::input_range(name, job_inputs, a.str(0)?, a.u64(1)?, encoding, &dims)
                    .and_then(|range| {
                        s.blocks_from_encoded(&dims, encoding, range, None)
                            .map(|t| (t, Hash32::of(range)))
                            .map_err(|e| HostError::from_op(name, e))
                    });
            return Ok(match made {
                Ok((t, content)) => {
                    tensor_digest_of_content(dtype(t.dtype()), &shape(&t), &content)
                }
                Err(e) => refused_digest(refusal_case(&e)),
            });
        }
        _ => match op(&mut s, name, &a, &xs, x) {
            Ok(t) => Ok(t),
            Err(Replay::Op(e)) => Err(HostError::from_op(name, e)),
            Err(Replay::Bad(e)) => return Err(e),
        },
    };
    Ok(match result {
        Ok(t) => {
            let content = replayed_content(&s, &t).ok_or_else(|| bad(call, "not a host tensor"))?;
            tensor_digest_of_content(dtype(t.dtype()), &shape(&t), &content)
        }
        Err(e) => refused_digest(refusal_case(&e)),
    })
}

/// Why an op could not be replayed: the op refused (a result like any
/// other) or the call does not describe it.
enum Replay {
    Op(hg::Error),
    Bad(Error),
}

impl From<Error> for Replay {
    fn from(e: Error) -> Replay {
        Replay::Bad(e)
    }
}

fn op<'t>(
    s: &mut Session,
    name: &str,
    a: &Attrs<'_>,
    xs: &'t [Tensor],
    x: impl Fn(usize) -> Result<&'t Tensor, Error>,
) -> Result<Tensor, Replay> {
    let r = match name {
        "tensor.fill" => s.fill(&a.dims(0)?, a.f32(1)?),
        "tensor.matmul" => s.matmul(x(0)?, x(1)?, a.bool(0)?, a.bool(1)?),
        "tensor.linear" => s.linear(x(0)?, x(1)?, x(2)?, a.bool(0)?, a.option_case(1, &UNARY)?),
        "tensor.attention" => s.attention(x(0)?, x(1)?, x(2)?, &a.dims(0)?, a.usize(1)?, a.f32(2)?),
        "tensor.causal-attention" => {
            let blocks = a.usize(0)?;
            if xs.len() != 1 + 2 * blocks {
                return Err(Replay::Bad(Error::Replay(format!(
                    "{name}: {} inputs for {blocks} blocks",
                    xs.len()
                ))));
            }
            let keys: Vec<&Tensor> = xs[1..=blocks].iter().collect();
            let values: Vec<&Tensor> = xs[1 + blocks..].iter().collect();
            s.causal_attention(x(0)?, &keys, &values, a.usize(1)?, a.usize(2)?, a.f32(3)?)
        }
        "tensor.rope" => {
            let pairs = if a.bool(1)? {
                hg::RopePairs::Halves
            } else {
                hg::RopePairs::Adjacent
            };
            s.rope(x(0)?, x(1)?, x(2)?, a.usize(0)?, pairs)
        }
        "tensor.swiglu" => s.swiglu(x(0)?, x(1)?),
        "tensor.unary" => s.unary(a.case(0, &UNARY)?, x(0)?),
        "tensor.binary" => s.binary(a.case(0, &BINARY)?, x(0)?, x(1)?),
        "tensor.scale" => s.scale(x(0)?, a.f32(0)?),
        "tensor.reduce" => s.reduce(a.case(0, &REDUCE)?, x(0)?),
        "tensor.softmax" => s.softmax(x(0)?),
        "tensor.layer-norm" => s.layer_norm(x(0)?, x(1)?, x(2)?, a.f32(0)?),
        "tensor.rms-norm" => s.rms_norm(x(0)?, x(1)?, a.f32(0)?),
        "tensor.gather" => s.gather(x(0)?, x(1)?),
        "tensor.reshape" => s.reshape(x(0)?, &a.dims(0)?),
        "tensor.permute" => s.permute(x(0)?, &a.dims(0)?),
        "tensor.slice" => s.slice(x(0)?, a.usize(0)?, a.usize(1)?, a.usize(2)?),
        "tensor.concat" => {
            let refs: Vec<&Tensor> = xs.iter().collect();
            s.concat(&refs, a.usize(0)?)
        }
        "tensor.masked-mean-pool" => s.masked_mean_pool(x(0)?, x(1)?),
        "tensor.l2-normalize" => s.l2_normalize(x(0)?, a.f32(0)?),
        "tensor.argmax" => s.argmax(x(0)?),
        "tensor.conv2d" => s.conv2d(
            x(0)?,
            x(1)?,
            xs.get(2),
            (a.usize(0)?, a.usize(1)?),
            (a.usize(2)?, a.usize(3)?),
        ),
        "tensor.max-pool2d" => s.max_pool2d(
            x(0)?,
            (a.usize(0)?, a.usize(1)?),
            (a.usize(2)?, a.usize(3)?),
            (a.usize(4)?, a.usize(5)?),
        ),
        "tensor.cast" => s.cast(x(0)?, a.case(0, &DTYPE)?),
        _ => return Err(Replay::Bad(Error::Replay(format!("{name}: not an op")))),
    };
    r.map_err(Replay::Op)
}
