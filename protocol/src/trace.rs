//! The trace of a run, and the bisection game that turns a dispute about a
//! whole run into a dispute about one host call.
//!
//! A receipt's `trace_root` commits to every step of the run in call order.
//! When a provider and a verifier disagree, a referee does not re-run the
//! job: it asks both for the Merkle nodes of their traces, one level per
//! round ([`Bisection`]), down to the first step where the traces differ,
//! then has an arbiter recompute that one step from inputs both traces agree
//! on ([`InputEvidence`]). Every op is bit-exact by definition
//! (`host-gpu/SEMANTICS.md`), so the recomputed output names the liar.
//!
//! # Format `assay/trace-step/v1` (frozen)
//!
//! A **step** is one host call the guest made that creates, transforms or
//! reads back a tensor, in the order the guest made them:
//!
//! - every `tensor.*` op that returns a tensor (`tensor.matmul`,
//!   `tensor.reshape`, …), including the guest→host transfers
//!   `tensor.upload-f32`, `tensor.upload-i32`, `tensor.fill`,
//!   `job-io.tensor-from-input` and `job-io.blocks-from-input`;
//! - every host→guest read of a tensor: `tensor.read-f32`,
//!   `tensor.read-i32` and `job-io.write-tensor-output`.
//!
//! Calls that only ask about a handle (`shape`, `dtype`, `numel`, `drop`) or
//! move raw bytes (`job-io.read-input`, `job-io.write-output`, `log`,
//! `param`, `shard`) are not steps. A call the host refuses is still a step
//! (its output is the refusal); a call refused before any operand was found
//! (a dead handle, which ends the run) is not. A trace holds a run's first
//! [`MAX_STEPS`] steps (2²⁰); later ones are left out.
//!
//! Step `i` (from 0) is a **call** and an **output**. The call's canonical
//! bytes ([`Call::encode`]; the encoding of [`crate::canonical`], with no
//! domain tag of its own) are
//!
//! ```text
//! str(name)  u64(#inputs)  u64(input step)…  u64(#attrs)  attr…
//! ```
//!
//! - `name`: the WIT name, `interface.function` (`tensor.linear`);
//! - the **inputs**: for each tensor operand in WIT parameter order (a
//!   `list<borrow<tensor>>` in list order, an absent optional tensor
//!   skipped), the index of the step whose output that tensor is — so the
//!   call can be re-executed from earlier steps' outputs;
//! - the **attrs**: every other parameter in WIT order, each a tag byte and
//!   a value: `0` bool (`u8` 0/1), `1` u32, `2` u64, `3` f32 (its IEEE bits
//!   as a `u32`), `4` list of u32 (`u64` count, then each `u32`), `5` string
//!   (`str`), `6` an enum case (its WIT name as a `str`, e.g. `gelu`, `bf16`),
//!   `7` an option's `none` (a `some` is its value alone). A tuple is its
//!   members in order. The data of an upload is not an attr: it is the
//!   step's output.
//!
//! | call | inputs | attrs |
//! | --- | --- | --- |
//! | `tensor.upload-f32`, `tensor.upload-i32` | — | shape |
//! | `tensor.fill` | — | shape, value |
//! | `job-io.tensor-from-input`, `job-io.blocks-from-input` | — | name, offset (u64), encoding (case), shape |
//! | `tensor.read-f32`, `tensor.read-i32` | x | — |
//! | `job-io.write-tensor-output` | x | name |
//! | `tensor.matmul` | a, b | transpose-a, transpose-b |
//! | `tensor.linear` | x, w, bias | transpose-w, activation (case or none) |
//! | `tensor.attention` | q, k, v | lengths, heads, scale |
//! | `tensor.unary`, `binary`, `reduce` | x (a, b) | op (case) first |
//! | `tensor.conv2d` | x, weight[, bias] | stride h, stride w, padding h, padding w |
//! | others | their tensors | their other parameters, as the WIT lists them |
//!
//! The step's **output** is one 32-byte digest:
//!
//! - a tensor whose bytes were hashed: `blake3("assay/trace-tensor/v1"
//!   framed, u8 dtype, u64 rank, u64 dim…, blake3(bytes))` ([`tensor_digest`]),
//!   with dtype `0` = f32, `1` = i32 and bytes the elements little-endian in
//!   row-major order; or dtype `2` = Q4_0, `3` = Q4_1, `4` = Q8_0 (a tensor
//!   of blocks, `job-io.blocks-from-input`) and bytes its blocks as GGML
//!   stores them (the input range's bytes). A read's output is the tensor
//!   read.
//! - a tensor whose bytes were not hashed: `blake3("assay/trace-unhashed/v1"
//!   framed, u8 dtype, u64 rank, u64 dim…)` ([`unhashed_digest`]). The CUDA
//!   backend records this for ops whose outputs stay on the device: hashing
//!   them there is future work, and downloading every op's output would cost
//!   more than the op. Such a trace commits to the calls and shapes only, so
//!   a CUDA trace and a CPU trace of the same run differ; a dispute bisects
//!   traces of the same kind.
//! - a refusal: `blake3("assay/trace-refused/v1" framed, str(case))`
//!   ([`refused_digest`]), `case` being the WIT `error` case the guest got
//!   (`shape-mismatch`, `quota-exceeded`, …) or, for a call that ended the
//!   run, the outcome it ended it with (`work-budget-exhausted`,
//!   `output-limit-exceeded`).
//!
//! The **leaf** of step `i` is `blake3("assay/trace-step/v1" framed, u64 i,
//! bytes(call), output)` ([`step_leaf`]). The tree over `n` leaves is padded
//! to `P = max(1, next power of two ≥ n)` leaves with the **empty leaf**
//! `E₀ = blake3("assay/trace-empty/v1" framed)`; an inner node is
//! `blake3("assay/trace-node/v1" framed, left, right)` ([`node_hash`]), so an
//! all-empty subtree of height `k` is the constant `Eₖ = node(Eₖ₋₁, Eₖ₋₁)`.
//! Its top is the node of height `log₂ P`, and
//!
//! ```text
//! trace_root = blake3("assay/trace-root/v1" framed, u64 n, top)
//! ```
//!
//! Unlike RFC 6962 (and [`crate::results_root`], which splits at the largest
//! power of two below `n`), the tree is padded: two traces of different
//! lengths then have the same shape once the shorter is extended with empty
//! subtrees, so bisection needs no consistency proofs, and every round of
//! it is one level. Padding costs nothing but `log₂ P` constant hashes.
//!
//! # The bisection game
//!
//! Two parties `A` and `B` (a provider and its verifier) each state their
//! trace's length and top ([`Claim`]), checked against the trace root each
//! signed ([`Party::trace_root`]: a verifier's verdict states it; a
//! provider whose receipt commits to calls only commits to the trace of a
//! re-run with every output hashed when the dispute opens — the first step
//! where the two traces differ is what the game finds and the arbiter
//! recomputes, so a late commitment cannot move it to a step where the
//! other party is wrong). The referee runs the game over the common depth
//! `D = log₂ max(P_A, P_B)` (a shorter trace's top is extended with empty
//! subtrees, [`extend_top`]). Each round it asks both for the two children
//! of the node it holds for each ([`Query::Node`]); each answers with a
//! signed [`NodeReveal`] (domain `assay/trace-reveal/v1`, kind `0`); the
//! referee checks `node(left, right)` against what it holds, then follows the
//! left children if they differ and the right ones otherwise. After `D`
//! rounds (`⌈log₂ n⌉`) it holds the first leaf where the traces differ. Both
//! then reveal that leaf's call and output ([`LeafReveal`], kind `1`); a
//! party whose trace ended before that step reveals nothing and must hold
//! the empty leaf there. A reveal that does not verify, is signed by
//! someone else or answers another question forfeits the dispute.
//!
//! The result ([`Divergence`]):
//!
//! - the calls are equal and the outputs differ: the arbiter recomputes the
//!   call from its inputs. Each input is an earlier step, so both traces
//!   hold the same leaf for it; its tensor is accepted when its digest, with
//!   the input step's call, makes a leaf proven by an [`InclusionProof`]
//!   against either party's root ([`InputEvidence::check`]). [`rule`] then
//!   compares the recomputed output with both claims.
//! - the calls differ (or one trace ended): the guest's own code diverged
//!   between two host calls. The arbiter re-runs the guest up to that step
//!   (the runtime stops a run right after a given step) and compares the
//!   call it makes there with both parties' by [`call_digest`]. Its host
//!   calls are computed, not answered from the agreed prefix: that would
//!   save the arbiter the ops of the prefix, and is not built.
//!
//! # Example
//!
//! ```
//! use assay_protocol::trace::{self, Call, Attr, TraceTree};
//!
//! let call = Call::new("tensor.scale", vec![0], vec![Attr::f32(2.0)]);
//! let bytes = call.encode();
//! assert_eq!(Call::decode(&bytes).unwrap(), call);
//! let out = trace::tensor_digest(trace::Dtype::F32, &[2], &[0u8; 8]);
//! let leaves = vec![trace::step_leaf(0, &[], &out), trace::step_leaf(1, &bytes, &out)];
//! let tree = TraceTree::new(leaves.clone());
//! let proof = tree.prove(1).unwrap();
//! assert!(trace::verify_inclusion(&tree.root(), &leaves[1], &proof));
//! assert_eq!(tree.root(), trace::trace_root(&leaves));
//! ```

use serde::{Deserialize, Serialize};

use crate::canonical::Encoder;
use crate::{Error, Hash32, NodeId, NodeKey, Signature};

/// The version in every domain tag of this module (`…/v1`).
pub const TRACE_FORMAT_VERSION: u32 = 1;

/// Deepest tree a trace may have: 2⁴⁸ steps is far beyond any run.
pub const MAX_DEPTH: u32 = 48;

/// Most steps a trace holds: a run's steps after the first 2²⁰ are not in
/// it (so a guest making tiny calls by the million cannot make its host
/// keep gigabytes of trace). A dispute past them needs a full re-execution.
pub const MAX_STEPS: u64 = 1 << 20;

/// A tensor's element type as the trace encodes it (`u8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dtype {
    /// IEEE-754 binary32: code 0.
    F32,
    /// Two's-complement 32-bit integer: code 1.
    I32,
    /// f32 values kept as GGML Q4_0 blocks (`job-io.blocks-from-input`):
    /// code 2. Its bytes are the blocks as GGML stores them.
    Q4_0,
    /// As [`Dtype::Q4_0`], Q4_1 blocks: code 3.
    Q4_1,
    /// As [`Dtype::Q4_0`], Q8_0 blocks: code 4.
    Q8_0,
}

impl Dtype {
    /// The byte the trace writes.
    pub fn code(self) -> u8 {
        match self {
            Dtype::F32 => 0,
            Dtype::I32 => 1,
            Dtype::Q4_0 => 2,
            Dtype::Q4_1 => 3,
            Dtype::Q8_0 => 4,
        }
    }

    /// The element type written as `code`.
    pub fn from_code(code: u8) -> Option<Dtype> {
        match code {
            0 => Some(Dtype::F32),
            1 => Some(Dtype::I32),
            2 => Some(Dtype::Q4_0),
            3 => Some(Dtype::Q4_1),
            4 => Some(Dtype::Q8_0),
            _ => None,
        }
    }
}

/// One parameter of a host call that is not a tensor, in WIT order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Attr {
    /// A `bool` (tag 0).
    Bool(bool),
    /// A `u32` (tag 1).
    U32(u32),
    /// A `u64` (tag 2).
    U64(u64),
    /// An `f32` by its IEEE bits (tag 3), so NaN payloads and −0 survive.
    F32(u32),
    /// A `list<u32>` (tag 4): shapes, axes, lengths.
    U32s(Vec<u32>),
    /// A `string` (tag 5).
    Str(String),
    /// An enum case by its WIT name (tag 6).
    Case(String),
    /// An `option`'s `none` (tag 7).
    Absent,
}

impl Attr {
    /// An `f32` attr.
    pub fn f32(v: f32) -> Attr {
        Attr::F32(v.to_bits())
    }

    /// An enum case attr.
    pub fn case(name: &str) -> Attr {
        Attr::Case(name.to_string())
    }

    fn tag(&self) -> u8 {
        match self {
            Attr::Bool(_) => 0,
            Attr::U32(_) => 1,
            Attr::U64(_) => 2,
            Attr::F32(_) => 3,
            Attr::U32s(_) => 4,
            Attr::Str(_) => 5,
            Attr::Case(_) => 6,
            Attr::Absent => 7,
        }
    }
}

/// A step's call: what the guest asked of the host, re-executable from the
/// outputs of the steps it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Call {
    /// The WIT name, e.g. `tensor.matmul`.
    pub name: String,
    /// For each tensor operand, the step whose output it is.
    pub inputs: Vec<u64>,
    /// The other parameters, in WIT order.
    pub attrs: Vec<Attr>,
}

impl Call {
    /// A call.
    pub fn new(name: &str, inputs: Vec<u64>, attrs: Vec<Attr>) -> Call {
        Call {
            name: name.to_string(),
            inputs,
            attrs,
        }
    }

    /// The canonical bytes (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        e.str(&self.name).u64(self.inputs.len() as u64);
        for &i in &self.inputs {
            e.u64(i);
        }
        e.u64(self.attrs.len() as u64);
        for a in &self.attrs {
            e.u8(a.tag());
            match a {
                Attr::Bool(v) => {
                    e.u8(u8::from(*v));
                }
                Attr::U32(v) | Attr::F32(v) => {
                    e.u32(*v);
                }
                Attr::U64(v) => {
                    e.u64(*v);
                }
                Attr::U32s(v) => {
                    e.u64(v.len() as u64);
                    for &x in v {
                        e.u32(x);
                    }
                }
                Attr::Str(s) | Attr::Case(s) => {
                    e.str(s);
                }
                Attr::Absent => {}
            }
        }
        e.finish()
    }

    /// Reads a call's canonical bytes (from a peer: every length is checked
    /// against what is left, and trailing bytes are refused).
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] if the bytes are not one encoded call.
    pub fn decode(bytes: &[u8]) -> Result<Call, Error> {
        let mut d = Decoder { rest: bytes };
        let name = d.str()?;
        let n = d.count(8)?;
        let mut inputs = Vec::with_capacity(n);
        for _ in 0..n {
            inputs.push(d.u64()?);
        }
        let n = d.count(1)?;
        let mut attrs = Vec::with_capacity(n);
        for _ in 0..n {
            attrs.push(match d.u8()? {
                0 => match d.u8()? {
                    0 => Attr::Bool(false),
                    1 => Attr::Bool(true),
                    b => return Err(malformed(format!("bool attr {b}"))),
                },
                1 => Attr::U32(d.u32()?),
                2 => Attr::U64(d.u64()?),
                3 => Attr::F32(d.u32()?),
                4 => {
                    let n = d.count(4)?;
                    let mut v = Vec::with_capacity(n);
                    for _ in 0..n {
                        v.push(d.u32()?);
                    }
                    Attr::U32s(v)
                }
                5 => Attr::Str(d.str()?),
                6 => Attr::Case(d.str()?),
                7 => Attr::Absent,
                t => return Err(malformed(format!("attr tag {t}"))),
            });
        }
        if !d.rest.is_empty() {
            return Err(malformed(format!("{} bytes after the call", d.rest.len())));
        }
        Ok(Call {
            name,
            inputs,
            attrs,
        })
    }
}

fn malformed(what: String) -> Error {
    Error::Malformed(format!("trace call: {what}"))
}

/// Reads the canonical encoding back.
struct Decoder<'a> {
    rest: &'a [u8],
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Error> {
        if self.rest.len() < n {
            return Err(malformed(format!(
                "needs {n} more bytes, {} left",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    /// A count of items at least `min_size` bytes each: never more than the
    /// bytes left could hold, so a lying count cannot reserve memory.
    fn count(&mut self, min_size: usize) -> Result<usize, Error> {
        let n = self.u64()?;
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_size) <= self.rest.len() => Ok(n),
            _ => Err(malformed(format!(
                "a count of {n} with {} bytes left",
                self.rest.len()
            ))),
        }
    }

    fn str(&mut self) -> Result<String, Error> {
        let n = self.count(1)?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| malformed(format!("text: {e}")))
    }
}

// ---- digests ---------------------------------------------------------------

fn shape_digest(domain: &str, dtype: Dtype, shape: &[u64]) -> Encoder {
    let mut e = Encoder::new(domain);
    e.u8(dtype.code()).u64(shape.len() as u64);
    for &d in shape {
        e.u64(d);
    }
    e
}

/// The output digest of a tensor from the blake3 of its bytes (`content`):
/// recording and replay both call this, so equal tensors give equal digests
/// whoever computed them.
pub fn tensor_digest_of_content(dtype: Dtype, shape: &[u64], content: &Hash32) -> Hash32 {
    let mut e = shape_digest("assay/trace-tensor/v1", dtype, shape);
    e.fixed32(&content.0);
    e.hash()
}

/// The output digest of a tensor: its dtype, shape and bytes (elements
/// little-endian, row-major).
pub fn tensor_digest(dtype: Dtype, shape: &[u64], bytes: &[u8]) -> Hash32 {
    tensor_digest_of_content(dtype, shape, &Hash32::of(bytes))
}

/// The output digest of a tensor whose bytes were not hashed (they stayed
/// on a GPU): its dtype and shape only.
pub fn unhashed_digest(dtype: Dtype, shape: &[u64]) -> Hash32 {
    shape_digest("assay/trace-unhashed/v1", dtype, shape).hash()
}

/// The output digest of a refused call: the WIT error case, or the outcome
/// the call ended the run with.
pub fn refused_digest(case: &str) -> Hash32 {
    let mut e = Encoder::new("assay/trace-refused/v1");
    e.str(case);
    e.hash()
}

/// What a guest called at a step, for an arbiter's ruling on a
/// [`Divergence::Call`]: `blake3("assay/trace-call/v1" framed, u8 1,
/// bytes(call))`, or `u8 0` alone when the trace ended before the step.
/// The arbiter re-runs the guest up to the step and rules with [`rule`] on
/// these digests of both parties' calls and its own.
pub fn call_digest(call: Option<&[u8]>) -> Hash32 {
    let mut e = Encoder::new("assay/trace-call/v1");
    match call {
        Some(bytes) => {
            e.u8(1).bytes(bytes);
        }
        None => {
            e.u8(0);
        }
    }
    e.hash()
}

/// The leaf of step `index`: its call's canonical bytes and its output digest.
pub fn step_leaf(index: u64, call: &[u8], output: &Hash32) -> Hash32 {
    let mut e = Encoder::new("assay/trace-step/v1");
    e.u64(index).bytes(call).fixed32(&output.0);
    e.hash()
}

/// An inner node of the trace tree.
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut e = Encoder::new("assay/trace-node/v1");
    e.fixed32(&left.0).fixed32(&right.0);
    e.hash()
}

/// `Eₖ`: the node of an all-empty subtree of height `level` (`E₀` is the
/// empty leaf that pads a trace).
pub fn empty_node(level: u32) -> Hash32 {
    let mut node = Encoder::new("assay/trace-empty/v1").hash();
    for _ in 0..level {
        node = node_hash(&node, &node);
    }
    node
}

/// The `trace_root` of a trace of `steps` steps whose tree's top is `top`.
pub fn root_of(steps: u64, top: &Hash32) -> Hash32 {
    let mut e = Encoder::new("assay/trace-root/v1");
    e.u64(steps).fixed32(&top.0);
    e.hash()
}

/// The height of the tree of a trace of `steps` steps: `log₂` of its padded size.
pub fn depth_of(steps: u64) -> u32 {
    steps.max(1).next_power_of_two().trailing_zeros()
}

/// The `trace_root` of the leaves.
pub fn trace_root(leaves: &[Hash32]) -> Hash32 {
    TraceTree::new(leaves.to_vec()).root()
}

/// A trace's top seen as the top of a deeper tree (`to_depth ≥ from_depth`):
/// its own top followed by empty subtrees, as the game extends a shorter trace.
pub fn extend_top(top: &Hash32, from_depth: u32, to_depth: u32) -> Hash32 {
    let mut node = *top;
    for level in from_depth..to_depth {
        node = node_hash(&node, &empty_node(level));
    }
    node
}

/// One recorded step: its call's canonical bytes and its output digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// [`Call::encode`] of the call.
    pub call: Vec<u8>,
    /// Its output digest.
    pub output: Hash32,
}

impl Step {
    /// This step's leaf at position `index`.
    pub fn leaf(&self, index: u64) -> Hash32 {
        step_leaf(index, &self.call, &self.output)
    }
}

/// The Merkle tree of a trace: every node kept, so a party answers any
/// reveal or proof at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceTree {
    steps: u64,
    /// `levels[k]`: the nodes of height `k` that cover at least one leaf
    /// (`levels[0]` the leaves); the rest of the level is `Eₖ`.
    levels: Vec<Vec<Hash32>>,
    empties: Vec<Hash32>,
}

impl TraceTree {
    /// The tree over `leaves` (in step order).
    pub fn new(leaves: Vec<Hash32>) -> TraceTree {
        let steps = leaves.len() as u64;
        let depth = depth_of(steps);
        let mut empties = Vec::with_capacity(depth as usize + 1);
        empties.push(empty_node(0));
        for k in 0..depth as usize {
            empties.push(node_hash(&empties[k], &empties[k]));
        }
        let mut levels = vec![leaves];
        for k in 0..depth as usize {
            let below = &levels[k];
            let above: Vec<Hash32> = below
                .chunks(2)
                .map(|pair| node_hash(&pair[0], pair.get(1).unwrap_or(&empties[k])))
                .collect();
            levels.push(above);
        }
        TraceTree {
            steps,
            levels,
            empties,
        }
    }

    /// How many steps the trace has.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// `log₂` of the padded size.
    pub fn depth(&self) -> u32 {
        depth_of(self.steps)
    }

    /// The leaves, in step order.
    pub fn leaves(&self) -> &[Hash32] {
        &self.levels[0]
    }

    /// The node of height `depth()`.
    pub fn top(&self) -> Hash32 {
        self.node(self.depth(), 0)
    }

    /// The trace's root, as the receipt states it.
    pub fn root(&self) -> Hash32 {
        root_of(self.steps, &self.top())
    }

    /// What this party states to open a game.
    pub fn claim(&self) -> Claim {
        Claim {
            steps: self.steps,
            top: self.top(),
        }
    }

    /// The node of height `level` at position `index`, of this tree
    /// extended with empty subtrees to any height.
    pub fn node(&self, level: u32, index: u64) -> Hash32 {
        let depth = self.depth();
        if level > depth {
            return if index == 0 {
                extend_top(&self.node(depth, 0), depth, level)
            } else {
                empty_node(level)
            };
        }
        let stored = usize::try_from(index)
            .ok()
            .and_then(|i| self.levels[level as usize].get(i));
        match stored {
            Some(h) => *h,
            None => self.empties[level as usize],
        }
    }

    /// The proof that leaf `index` is in this tree, or `None` past its end.
    pub fn prove(&self, index: u64) -> Option<InclusionProof> {
        if index >= self.steps {
            return None;
        }
        let siblings = (0..self.depth())
            .map(|level| self.node(level, (index >> level) ^ 1))
            .collect();
        Some(InclusionProof {
            index,
            steps: self.steps,
            siblings,
        })
    }

    /// This party's signed answer to [`Query::Node`]: the children of node
    /// (`level` ≥ 1, `index`).
    pub fn reveal_node(
        &self,
        key: &NodeKey,
        dispute: &Hash32,
        level: u32,
        index: u64,
    ) -> NodeReveal {
        let below = level.saturating_sub(1);
        let left = self.node(below, index.saturating_mul(2));
        let right = self.node(below, index.saturating_mul(2).saturating_add(1));
        NodeReveal::sign(key, dispute, level, index, left, right)
    }
}

/// The siblings on the path from one leaf to the top, lowest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The leaf's step.
    pub index: u64,
    /// How many steps the trace has (fixes the tree's depth).
    pub steps: u64,
    /// One sibling per level, from the leaves up.
    pub siblings: Vec<Hash32>,
}

/// Whether `leaf` is step `proof.index` of the trace whose root is `root`.
pub fn verify_inclusion(root: &Hash32, leaf: &Hash32, proof: &InclusionProof) -> bool {
    if proof.index >= proof.steps || proof.siblings.len() != depth_of(proof.steps) as usize {
        return false;
    }
    let mut node = *leaf;
    for (level, sibling) in proof.siblings.iter().enumerate() {
        node = if (proof.index >> level) & 1 == 0 {
            node_hash(&node, sibling)
        } else {
            node_hash(sibling, &node)
        };
    }
    root_of(proof.steps, &node) == *root
}

// ---- the game --------------------------------------------------------------

/// One of the two parties of a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    /// The first party (by convention, the provider).
    A,
    /// The second party (by convention, the verifier that disputed).
    B,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

const SIDES: [Side; 2] = [Side::A, Side::B];

/// What a party states to open a game: its trace's length and top, which
/// must hash to the `trace_root` of its receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Steps in its trace.
    pub steps: u64,
    /// Its tree's top.
    pub top: Hash32,
}

/// Kinds of reveal, the byte after the domain tag.
const REVEAL_NODE: u8 = 0;
const REVEAL_LEAF: u8 = 1;

/// A party's signed answer to [`Query::Node`]: the two children of node
/// (`level`, `index`) of its tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReveal {
    /// The dispute this answers (the referee's id for it).
    pub dispute: Hash32,
    /// Who answers.
    pub party: NodeId,
    /// Height of the node whose children these are (≥ 1).
    pub level: u32,
    /// Its position at that height.
    pub index: u64,
    /// Its left child.
    pub left: Hash32,
    /// Its right child.
    pub right: Hash32,
    /// By `party` over [`NodeReveal::signing_bytes`].
    pub signature: Signature,
}

impl NodeReveal {
    /// `key`'s signed reveal.
    pub fn sign(
        key: &NodeKey,
        dispute: &Hash32,
        level: u32,
        index: u64,
        left: Hash32,
        right: Hash32,
    ) -> NodeReveal {
        let mut r = NodeReveal {
            dispute: *dispute,
            party: key.id(),
            level,
            index,
            left,
            right,
            signature: Signature([0; 64]),
        };
        r.signature = key.sign(&r.signing_bytes());
        r
    }

    /// `assay/trace-reveal/v1` framed, u8 0, dispute, party, u32 level,
    /// u64 index, left, right.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new("assay/trace-reveal/v1");
        e.u8(REVEAL_NODE)
            .fixed32(&self.dispute.0)
            .fixed32(&self.party.0)
            .u32(self.level)
            .u64(self.index)
            .fixed32(&self.left.0)
            .fixed32(&self.right.0);
        e.finish()
    }

    /// Bytes a reveal takes on the wire, as the benches count them.
    pub const WIRE_BYTES: u64 = 32 + 32 + 4 + 8 + 32 + 32 + 64;
}

/// A party's signed answer to [`Query::Leaf`]: the call and output of the
/// step its trace holds there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafReveal {
    /// The dispute this answers.
    pub dispute: Hash32,
    /// Who answers.
    pub party: NodeId,
    /// The step.
    pub index: u64,
    /// [`Call::encode`] of its call.
    pub call: Vec<u8>,
    /// Its output digest.
    pub output: Hash32,
    /// By `party` over [`LeafReveal::signing_bytes`].
    pub signature: Signature,
}

impl LeafReveal {
    /// `key`'s signed reveal of `step` at `index`.
    pub fn sign(key: &NodeKey, dispute: &Hash32, index: u64, step: &Step) -> LeafReveal {
        let mut r = LeafReveal {
            dispute: *dispute,
            party: key.id(),
            index,
            call: step.call.clone(),
            output: step.output,
            signature: Signature([0; 64]),
        };
        r.signature = key.sign(&r.signing_bytes());
        r
    }

    /// `assay/trace-reveal/v1` framed, u8 1, dispute, party, u64 index,
    /// bytes(call), output.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new("assay/trace-reveal/v1");
        e.u8(REVEAL_LEAF)
            .fixed32(&self.dispute.0)
            .fixed32(&self.party.0)
            .u64(self.index)
            .bytes(&self.call)
            .fixed32(&self.output.0);
        e.finish()
    }

    /// Bytes it takes on the wire, as the benches count them.
    pub fn wire_bytes(&self) -> u64 {
        32 + 32 + 8 + 8 + self.call.len() as u64 + 32 + 64
    }
}

/// What the referee asks both parties next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// The children of node (`level`, `index`): a [`NodeReveal`] each.
    Node {
        /// Height of the node.
        level: u32,
        /// Its position.
        index: u64,
    },
    /// The call and output of step `index`: a [`LeafReveal`] each (none
    /// from a party whose trace is shorter).
    Leaf {
        /// The first step where the traces differ.
        index: u64,
    },
}

/// The outcome of a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Ask [`Bisection::query`] again.
    Continue,
    /// A party's answer did not verify: it loses the dispute.
    Forfeit(Side, String),
}

/// A bisection game in progress (the referee's state: two nodes and where
/// they are). It serialises so a referee can keep it between rounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bisection {
    dispute: Hash32,
    parties: [NodeId; 2],
    claims: [Claim; 2],
    roots: [Hash32; 2],
    level: u32,
    index: u64,
    nodes: [Hash32; 2],
    rounds: u32,
}

/// How a game opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// Bisect (boxed: the game is ten times the size of the other answers).
    Game(Box<Bisection>),
    /// The traces are the same: the dispute is not about the trace.
    Agree,
    /// A party's claim does not hash to its receipt's `trace_root`, or is
    /// deeper than any trace: it loses.
    Forfeit(Side, String),
}

/// One party as the referee knows it when a game opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Party {
    /// Who (its reveals must be signed by this key).
    pub id: NodeId,
    /// The `trace_root` of its signed receipt.
    pub trace_root: Hash32,
    /// What it states.
    pub claim: Claim,
}

impl Bisection {
    /// Opens a game between `a` and `b` about `dispute`.
    pub fn open(dispute: Hash32, a: Party, b: Party) -> Opening {
        for (side, p) in SIDES.iter().zip([&a, &b]) {
            if root_of(p.claim.steps, &p.claim.top) != p.trace_root {
                return Opening::Forfeit(
                    *side,
                    "its claim does not hash to its receipt's trace_root".into(),
                );
            }
            if depth_of(p.claim.steps) > MAX_DEPTH {
                return Opening::Forfeit(*side, format!("a trace of {} steps", p.claim.steps));
            }
        }
        if a.claim == b.claim {
            return Opening::Agree;
        }
        let level = depth_of(a.claim.steps).max(depth_of(b.claim.steps));
        let nodes = [a.claim, b.claim].map(|c| extend_top(&c.top, depth_of(c.steps), level));
        Opening::Game(Box::new(Bisection {
            dispute,
            parties: [a.id, b.id],
            claims: [a.claim, b.claim],
            roots: [a.trace_root, b.trace_root],
            level,
            index: 0,
            nodes,
            rounds: 0,
        }))
    }

    /// The next question for both parties.
    pub fn query(&self) -> Query {
        if self.level == 0 {
            Query::Leaf { index: self.index }
        } else {
            Query::Node {
                level: self.level,
                index: self.index,
            }
        }
    }

    /// Rounds of node reveals played so far.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// The `trace_root` each party's receipt states.
    pub fn roots(&self) -> [Hash32; 2] {
        self.roots
    }

    /// Plays one round: both answers to [`Query::Node`].
    ///
    /// # Errors
    ///
    /// [`Error::Dispute`] if the game is not at a node (call
    /// [`Bisection::judge_leaves`]).
    pub fn reveal_nodes(&mut self, a: &NodeReveal, b: &NodeReveal) -> Result<Progress, Error> {
        if self.level == 0 {
            return Err(Error::Dispute(
                "the game is at a leaf: reveal leaves".into(),
            ));
        }
        for (side, r) in SIDES.iter().zip([a, b]) {
            if let Some(why) = self.refuse_node(*side, r) {
                return Ok(Progress::Forfeit(*side, why));
            }
        }
        // Both children match their parents, which differ: at least one
        // pair of children differs, and the leftmost differing pair holds
        // the first differing leaf.
        let (go_right, nodes) = if a.left != b.left {
            (0, [a.left, b.left])
        } else {
            (1, [a.right, b.right])
        };
        self.level -= 1;
        self.index = self.index * 2 + go_right;
        self.nodes = nodes;
        self.rounds += 1;
        Ok(Progress::Continue)
    }

    fn refuse_node(&self, side: Side, r: &NodeReveal) -> Option<String> {
        let i = side.index();
        if r.party != self.parties[i] {
            return Some(format!("a reveal signed as {}", r.party));
        }
        if r.dispute != self.dispute || r.level != self.level || r.index != self.index {
            return Some(format!(
                "answered node ({}, {}) of dispute {} instead of ({}, {})",
                r.level,
                r.index,
                r.dispute.short(),
                self.level,
                self.index
            ));
        }
        if let Err(e) = r.party.verify(&r.signing_bytes(), &r.signature) {
            return Some(e.to_string());
        }
        if node_hash(&r.left, &r.right) != self.nodes[i] {
            return Some(format!(
                "children of node ({}, {}) that do not hash to it",
                self.level, self.index
            ));
        }
        None
    }

    /// The last step: both parties' answers to [`Query::Leaf`] (`None` from
    /// a party whose trace ended before this step).
    ///
    /// # Errors
    ///
    /// [`Error::Dispute`] if the game has not reached a leaf.
    pub fn judge_leaves(
        &self,
        a: Option<&LeafReveal>,
        b: Option<&LeafReveal>,
    ) -> Result<Divergence, Error> {
        if self.level != 0 {
            return Err(Error::Dispute(format!(
                "the game is at height {}: reveal nodes",
                self.level
            )));
        }
        let index = self.index;
        let mut calls: [Option<Vec<u8>>; 2] = [None, None];
        let mut outputs = [Hash32::ZERO; 2];
        for (side, r) in SIDES.iter().zip([a, b]) {
            let i = side.index();
            let ended = index >= self.claims[i].steps;
            match (r, ended) {
                (None, true) => {
                    if self.nodes[i] != empty_node(0) {
                        return Ok(Divergence::Forfeit(
                            *side,
                            "a leaf past the end of its trace".into(),
                        ));
                    }
                }
                (None, false) => {
                    return Ok(Divergence::Forfeit(
                        *side,
                        format!("no reveal of step {index}"),
                    ));
                }
                (Some(_), true) => {
                    return Ok(Divergence::Forfeit(
                        *side,
                        format!("a reveal of step {index}, past the end of its trace"),
                    ));
                }
                (Some(r), false) => {
                    if let Some(why) = self.refuse_leaf(*side, r) {
                        return Ok(Divergence::Forfeit(*side, why));
                    }
                    calls[i] = Some(r.call.clone());
                    outputs[i] = r.output;
                }
            }
        }
        match (&calls[0], &calls[1]) {
            (Some(ca), Some(cb)) if ca == cb => match Call::decode(ca) {
                Ok(call) => Ok(Divergence::Output {
                    index,
                    call,
                    outputs,
                }),
                // Both signed the same garbage: neither trace is a real run's.
                Err(e) => Ok(Divergence::Call {
                    index,
                    calls,
                    reason: e.to_string(),
                }),
            },
            _ => Ok(Divergence::Call {
                index,
                calls,
                reason: "the calls differ".into(),
            }),
        }
    }

    fn refuse_leaf(&self, side: Side, r: &LeafReveal) -> Option<String> {
        let i = side.index();
        if r.party != self.parties[i] {
            return Some(format!("a reveal signed as {}", r.party));
        }
        if r.dispute != self.dispute || r.index != self.index {
            return Some(format!(
                "answered step {} instead of {}",
                r.index, self.index
            ));
        }
        if let Err(e) = r.party.verify(&r.signing_bytes(), &r.signature) {
            return Some(e.to_string());
        }
        if step_leaf(r.index, &r.call, &r.output) != self.nodes[i] {
            return Some(format!("a step that is not leaf {} of its trace", r.index));
        }
        None
    }
}

/// Where two traces first differ, and what that means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Divergence {
    /// A party's leaf reveal did not verify: it loses.
    Forfeit(Side, String),
    /// Both made the same call and got different outputs: recompute it.
    Output {
        /// The step.
        index: u64,
        /// The call both made (its inputs are earlier, agreed steps).
        call: Call,
        /// What each party says it produced.
        outputs: [Hash32; 2],
    },
    /// The calls differ, or one trace ended here: the guest's own code
    /// diverged after the last agreed step. Deciding it means re-running the
    /// guest up to here with host calls answered from the agreed prefix.
    Call {
        /// The step.
        index: u64,
        /// Each party's call bytes (`None`: its trace ended).
        calls: [Option<Vec<u8>>; 2],
        /// Why this is not an output divergence.
        reason: String,
    },
}

/// A tensor a party reveals: an input of the disputed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevealedTensor {
    /// Its element type.
    pub dtype: Dtype,
    /// Its shape.
    pub shape: Vec<u64>,
    /// Its elements, little-endian, row-major.
    pub bytes: Vec<u8>,
}

impl RevealedTensor {
    /// Its output digest ([`tensor_digest`]).
    pub fn digest(&self) -> Hash32 {
        tensor_digest(self.dtype, &self.shape, &self.bytes)
    }
}

/// An input of the disputed step with what proves it: the tensor, the call
/// of the step that produced it, and that step's inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputEvidence {
    /// The producing step's call bytes.
    pub call: Vec<u8>,
    /// Its leaf's proof (its `index` is the producing step).
    pub proof: InclusionProof,
    /// The tensor.
    pub tensor: RevealedTensor,
}

impl InputEvidence {
    /// Bytes it takes on the wire, as the benches count them: the tensor,
    /// its call and the proof.
    pub fn wire_bytes(&self) -> u64 {
        1 + 8 * (1 + self.tensor.shape.len() as u64)
            + 8
            + self.tensor.bytes.len() as u64
            + 8
            + self.call.len() as u64
            + 16
            + 32 * self.proof.siblings.len() as u64
    }

    /// Checks this is the output of step `step`, an agreed step before the
    /// divergence at `divergence`: its leaf must be proven against either
    /// root (both traces hold the same leaves before `divergence`).
    ///
    /// # Errors
    ///
    /// [`Error::Dispute`] saying why the evidence is refused.
    pub fn check(&self, step: u64, divergence: u64, roots: &[Hash32; 2]) -> Result<(), Error> {
        if self.proof.index != step || step >= divergence {
            return Err(Error::Dispute(format!(
                "evidence for step {} where step {step} (before {divergence}) was asked",
                self.proof.index
            )));
        }
        let leaf = step_leaf(step, &self.call, &self.tensor.digest());
        if roots
            .iter()
            .any(|r| verify_inclusion(r, &leaf, &self.proof))
        {
            Ok(())
        } else {
            Err(Error::Dispute(format!(
                "the tensor revealed for step {step} is not that step's output"
            )))
        }
    }
}

/// The arbiter's ruling on an output divergence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ruling {
    /// This side's output is the recomputed one: the other loses.
    Upheld(Side),
    /// Neither output is the recomputed one: both lose.
    BothWrong,
}

/// Rules on an [`Divergence::Output`]: whose output is `recomputed`.
pub fn rule(outputs: &[Hash32; 2], recomputed: &Hash32) -> Ruling {
    if outputs[0] == *recomputed {
        Ruling::Upheld(Side::A)
    } else if outputs[1] == *recomputed {
        Ruling::Upheld(Side::B)
    } else {
        Ruling::BothWrong
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64, seed: u8) -> Vec<Hash32> {
        (0..n)
            .map(|i| step_leaf(i, &[seed], &Hash32([seed; 32])))
            .collect()
    }

    #[test]
    fn a_call_round_trips_and_garbage_is_refused() {
        let call = Call::new(
            "tensor.linear",
            vec![3, 7, u64::MAX],
            vec![
                Attr::Bool(true),
                Attr::U32(9),
                Attr::U64(1 << 40),
                Attr::f32(-0.0),
                Attr::F32(0x7fc0_0001),
                Attr::U32s(vec![1, 2, 3]),
                Attr::Str("model".into()),
                Attr::case("gelu"),
                Attr::Absent,
            ],
        );
        let bytes = call.encode();
        assert_eq!(Call::decode(&bytes).expect("decodes"), call);
        for cut in 0..bytes.len() {
            assert!(Call::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Call::decode(&longer).is_err());
        // A count that claims more than the bytes hold is refused before
        // anything is reserved.
        let mut e = Encoder::default();
        e.str("x").u64(u64::MAX);
        assert!(Call::decode(&e.finish()).is_err());
    }

    #[test]
    fn a_call_digest_tells_calls_and_an_ended_trace_apart() {
        let a = Call::new("tensor.scale", vec![1], vec![Attr::f32(2.0)]).encode();
        let b = Call::new("tensor.scale", vec![1], vec![Attr::f32(3.0)]).encode();
        assert_ne!(call_digest(Some(&a)), call_digest(Some(&b)));
        assert_ne!(call_digest(Some(&[])), call_digest(None));
        assert_eq!(call_digest(Some(&a)), call_digest(Some(&a.clone())));
        assert_eq!(
            rule(
                &[call_digest(Some(&a)), call_digest(None)],
                &call_digest(None)
            ),
            Ruling::Upheld(Side::B)
        );
    }

    #[test]
    fn the_encoding_is_frozen() {
        let call = Call::new("tensor.scale", vec![1], vec![Attr::f32(2.0)]);
        let out = tensor_digest(Dtype::F32, &[2], &[0, 0, 128, 63, 0, 0, 0, 64]);
        let leaf = step_leaf(5, &call.encode(), &out);
        assert_eq!(
            hex::encode(call.encode()),
            "0c0000000000000074656e736f722e7363616c650100000000000000010000000000000001000000000000000300000040"
        );
        // The bytes of a leaf and a root never change (a change is a new
        // format version).
        assert_eq!(
            leaf.to_hex(),
            "8375d5c43b267edc3bb5813d0a5769f711ef9a11de60046ea1bdebb74a9896c9"
        );
        assert_eq!(
            trace_root(&[leaf, leaf]).to_hex(),
            "ff29f3b263f04c8618a9b0184ad73d74d403d33372e4caf2823c016e205aa6a9"
        );
        assert_ne!(leaf, step_leaf(4, &call.encode(), &out));
        assert_ne!(
            out,
            tensor_digest(Dtype::I32, &[2], &[0, 0, 128, 63, 0, 0, 0, 64])
        );
        assert_ne!(
            out,
            tensor_digest(Dtype::F32, &[1, 2], &[0, 0, 128, 63, 0, 0, 0, 64])
        );
        assert_ne!(unhashed_digest(Dtype::F32, &[2]), out);
        assert_ne!(
            refused_digest("shape-mismatch"),
            refused_digest("quota-exceeded")
        );
    }

    #[test]
    fn roots_commit_to_length_and_order() {
        let l = leaves(5, 1);
        let root = trace_root(&l);
        assert_ne!(root, trace_root(&l[..4]));
        let mut swapped = l.clone();
        swapped.swap(0, 1);
        assert_ne!(root, trace_root(&swapped));
        // A trace padded by hand with the empty leaf is still a shorter one.
        let mut padded = l[..3].to_vec();
        padded.push(empty_node(0));
        assert_ne!(trace_root(&l[..3]), trace_root(&padded));
        assert_eq!(
            TraceTree::new(l[..3].to_vec()).top(),
            TraceTree::new(padded).top()
        );
        // No steps: a root all the same.
        assert_eq!(trace_root(&[]), root_of(0, &empty_node(0)));
        // Three leaves: ((0,1),(2,E)).
        let want = node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &empty_node(0)));
        assert_eq!(TraceTree::new(l[..3].to_vec()).top(), want);
    }

    #[test]
    fn every_leaf_proves_and_nothing_else_does() {
        for n in 1..=17u64 {
            let l = leaves(n, 2);
            let tree = TraceTree::new(l.clone());
            let root = tree.root();
            for i in 0..n {
                let proof = tree.prove(i).expect("a leaf");
                assert!(verify_inclusion(&root, &l[i as usize], &proof));
                assert!(!verify_inclusion(&root, &empty_node(0), &proof));
                let mut other = proof.clone();
                other.index = (i + 1) % n.max(2);
                assert!(n == 1 || !verify_inclusion(&root, &l[i as usize], &other));
            }
            assert!(tree.prove(n).is_none());
        }
    }

    #[test]
    fn extended_tops_match_deeper_trees_of_the_same_leaves() {
        let l = leaves(3, 3);
        let small = TraceTree::new(l.clone());
        assert_eq!(small.node(5, 0), extend_top(&small.top(), 2, 5));
        assert_eq!(small.node(5, 1), empty_node(5));
    }

    /// Plays a game between honest parties holding `a` and `b`.
    pub(super) fn play(a: &[Hash32], b: &[Hash32]) -> (Option<u64>, u32) {
        let keys = [NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32])];
        let trees = [TraceTree::new(a.to_vec()), TraceTree::new(b.to_vec())];
        let dispute = Hash32([9; 32]);
        let party = |i: usize| Party {
            id: keys[i].id(),
            trace_root: trees[i].root(),
            claim: trees[i].claim(),
        };
        let mut game = match Bisection::open(dispute, party(0), party(1)) {
            Opening::Game(g) => g,
            Opening::Agree => return (None, 0),
            Opening::Forfeit(s, why) => panic!("{s:?} forfeits: {why}"),
        };
        loop {
            match game.query() {
                Query::Node { level, index } => {
                    let ra = trees[0].reveal_node(&keys[0], &dispute, level, index);
                    let rb = trees[1].reveal_node(&keys[1], &dispute, level, index);
                    assert!(matches!(
                        game.reveal_nodes(&ra, &rb),
                        Ok(Progress::Continue)
                    ));
                }
                Query::Leaf { index } => return (Some(index), game.rounds()),
            }
        }
    }

    #[test]
    fn bisection_finds_the_first_difference_and_judges_it() {
        let a = leaves(10, 4);
        let mut b = a.clone();
        b[6] = step_leaf(6, &[9], &Hash32([9; 32]));
        b[8] = step_leaf(8, &[9], &Hash32([9; 32]));
        assert_eq!(play(&a, &b), (Some(6), 4));
        assert_eq!(play(&a, &a), (None, 0));
        // One trace is a prefix of the other: the first step only one has.
        assert_eq!(play(&a[..7], &a), (Some(7), 4));
        assert_eq!(play(&a, &a[..3]), (Some(3), 4));
        assert_eq!(play(&[], &a[..1]), (Some(0), 0));
    }

    #[test]
    fn a_full_dispute_recomputes_one_step() {
        let keys = [NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32])];
        let x = RevealedTensor {
            dtype: Dtype::F32,
            shape: vec![2],
            bytes: [1f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        let upload = Call::new("tensor.upload-f32", vec![], vec![Attr::U32s(vec![2])]);
        let scale = Call::new("tensor.scale", vec![0], vec![Attr::f32(2.0)]);
        let right = tensor_digest(Dtype::F32, &[2], &[0, 0, 0, 64, 0, 0, 128, 64]);
        let wrong = tensor_digest(Dtype::F32, &[2], &[0; 8]);
        let step0 = Step {
            call: upload.encode(),
            output: x.digest(),
        };
        let honest = vec![
            step0.clone(),
            Step {
                call: scale.encode(),
                output: right,
            },
        ];
        let mut liar = honest.clone();
        liar[1].output = wrong;
        let tree = |s: &[Step]| {
            TraceTree::new(
                s.iter()
                    .enumerate()
                    .map(|(i, s)| s.leaf(i as u64))
                    .collect(),
            )
        };
        let trees = [tree(&liar), tree(&honest)];
        let dispute = Hash32([7; 32]);
        let party = |i: usize| Party {
            id: keys[i].id(),
            trace_root: trees[i].root(),
            claim: trees[i].claim(),
        };
        let Opening::Game(mut game) = Bisection::open(dispute, party(0), party(1)) else {
            panic!("a game");
        };
        // A reveal by the wrong key, or of the wrong node, forfeits.
        let good = trees[1].reveal_node(&keys[1], &dispute, 1, 0);
        let forged = trees[0].reveal_node(&keys[1], &dispute, 1, 0);
        assert!(matches!(
            game.clone().reveal_nodes(&forged, &good),
            Ok(Progress::Forfeit(Side::A, _))
        ));
        let lying = NodeReveal::sign(&keys[0], &dispute, 1, 0, Hash32::ZERO, Hash32::ZERO);
        assert!(matches!(
            game.clone().reveal_nodes(&lying, &good),
            Ok(Progress::Forfeit(Side::A, _))
        ));
        let ra = trees[0].reveal_node(&keys[0], &dispute, 1, 0);
        assert!(matches!(
            game.reveal_nodes(&ra, &good),
            Ok(Progress::Continue)
        ));
        assert_eq!(game.query(), Query::Leaf { index: 1 });
        let la = LeafReveal::sign(&keys[0], &dispute, 1, &liar[1]);
        let lb = LeafReveal::sign(&keys[1], &dispute, 1, &honest[1]);
        let div = game.judge_leaves(Some(&la), Some(&lb)).expect("at a leaf");
        let Divergence::Output {
            index,
            call,
            outputs,
        } = div
        else {
            panic!("an output divergence: {div:?}");
        };
        assert_eq!((index, &call), (1, &scale));
        // The input: step 0's tensor, proven against either root.
        let evidence = InputEvidence {
            call: step0.call.clone(),
            proof: trees[1].prove(0).expect("leaf 0"),
            tensor: x.clone(),
        };
        evidence.check(0, 1, &game.roots()).expect("agreed input");
        let mut forged = evidence.clone();
        forged.tensor.bytes[0] ^= 1;
        assert!(forged.check(0, 1, &game.roots()).is_err());
        assert!(evidence.check(0, 0, &game.roots()).is_err(), "not before");
        // The arbiter doubles [1, 2] and gets the honest party's output.
        assert_eq!(rule(&outputs, &right), Ruling::Upheld(Side::B));
        assert_eq!(rule(&outputs, &Hash32::ZERO), Ruling::BothWrong);
        // A party cannot reveal a leaf its tree does not hold.
        let lie = LeafReveal::sign(&keys[0], &dispute, 1, &honest[1]);
        assert!(matches!(
            game.judge_leaves(Some(&lie), Some(&lb)),
            Ok(Divergence::Forfeit(Side::A, _))
        ));
    }

    #[test]
    fn a_claim_that_is_not_the_receipts_root_forfeits() {
        let trees = [TraceTree::new(leaves(4, 1)), TraceTree::new(leaves(4, 2))];
        let key = NodeKey::from_seed([1; 32]);
        let a = Party {
            id: key.id(),
            trace_root: trees[0].root(),
            claim: trees[0].claim(),
        };
        let mut b = Party {
            id: key.id(),
            trace_root: trees[1].root(),
            claim: trees[1].claim(),
        };
        b.claim.steps = 5;
        assert!(matches!(
            Bisection::open(Hash32::ZERO, a, b),
            Opening::Forfeit(Side::B, _)
        ));
        assert_eq!(Bisection::open(Hash32::ZERO, a, a), Opening::Agree);
    }

    proptest::proptest! {
        /// Two honest parties whose traces share a prefix and then differ
        /// anywhere (or one ends): the game lands on the first differing
        /// leaf in exactly ⌈log₂ n⌉ rounds.
        #[test]
        fn bisection_always_finds_the_first_differing_leaf(
            common in 0u64..300,
            tail_a in 0u64..40,
            tail_b in 0u64..40,
            scatter in proptest::collection::vec(0u64..400, 0..4),
        ) {
            let shared = leaves(common, 1);
            let mut a = shared.clone();
            a.extend((common..common + tail_a).map(|i| step_leaf(i, &[2], &Hash32([2; 32]))));
            let mut b = shared;
            b.extend((common..common + tail_b).map(|i| step_leaf(i, &[3], &Hash32([3; 32]))));
            // Later differences never move the first one.
            for &i in &scatter {
                if let Some(l) = b.get_mut(i as usize) && i > common {
                    *l = step_leaf(i, &[4], &Hash32([4; 32]));
                }
            }
            let first = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i));
            let (found, rounds) = play(&a, &b);
            proptest::prop_assert_eq!(found, first.map(|i| i as u64));
            if found.is_some() {
                let n = a.len().max(b.len()) as u64;
                proptest::prop_assert_eq!(rounds, depth_of(n));
                proptest::prop_assert_eq!(u64::from(rounds), n.max(1).next_power_of_two().ilog2() as u64);
            }
        }
    }
}
