//! The host side of `assay:gpu`: tensors, job inputs and outputs.
//!
//! Follows wasmtime-wasi's shape: a [`GpuCtx`] holds one job's state, a
//! [`GpuView`] gives the bindings access to it and to the resource table, and
//! [`add_to_linker`] wires both interfaces into a linker.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use assay_host_gpu::{self as hg, Session, Tensor};
use assay_protocol::{Hash32, Shard};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::bindings::{job_io, tensor};

/// The job's inputs: name → bytes, shared (a verifier or a provider may run
/// several jobs over the same model blob).
pub type Inputs = BTreeMap<String, Arc<[u8]>>;

/// Longest output name.
const MAX_OUTPUT_NAME: usize = 128;

/// Why a host call failed: either an error for the guest or a reason to end the run.
#[derive(Debug)]
pub enum HostError {
    /// An op or I/O error the guest sees as the WIT `error` variant.
    Guest(tensor::Error),
    /// The run must end now with this deterministic outcome.
    End(crate::sandbox::Ending),
    /// The provider's device failed: not a result.
    Fault(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Guest(e) => write!(f, "{e:?}"),
            HostError::End(e) => write!(f, "{e}"),
            HostError::Fault(e) => write!(f, "device fault: {e}"),
        }
    }
}

impl std::error::Error for HostError {}

impl From<hg::Error> for HostError {
    fn from(e: hg::Error) -> Self {
        use crate::sandbox::Ending;
        match e {
            hg::Error::ShapeMismatch(m) => HostError::Guest(tensor::Error::ShapeMismatch(m)),
            hg::Error::InvalidArgument(m) => HostError::Guest(tensor::Error::InvalidArgument(m)),
            hg::Error::QuotaExceeded(m) => HostError::Guest(tensor::Error::QuotaExceeded(m)),
            hg::Error::Unsupported(m) => HostError::Guest(tensor::Error::Unsupported(m)),
            hg::Error::WorkBudgetExhausted(m) => HostError::End(Ending::WorkBudget(m)),
            hg::Error::Device(m) => HostError::Fault(m),
        }
    }
}

fn not_found(message: String) -> HostError {
    HostError::Guest(tensor::Error::NotFound(message))
}

fn invalid(message: String) -> HostError {
    HostError::Guest(tensor::Error::InvalidArgument(message))
}

/// One job's state behind the `assay:gpu` interfaces.
#[derive(Debug)]
pub struct GpuCtx {
    pub(crate) session: Session,
    pub(crate) inputs: Arc<Inputs>,
    /// The blake3 of each input (the runtime hashed them for the receipt):
    /// large tensor ranges are named by it to the device's resident store.
    pub(crate) input_hashes: BTreeMap<String, Hash32>,
    pub(crate) outputs: BTreeMap<String, Vec<u8>>,
    pub(crate) output_bytes: u64,
    pub(crate) output_limit: u64,
    pub(crate) max_read: u64,
    pub(crate) params: Arc<BTreeMap<String, String>>,
    pub(crate) shard: Shard,
    pub(crate) log: String,
    pub(crate) log_limit: usize,
    /// Set once a tensor was refused for the memory quota: a failure after
    /// that is classed `gpu-quota-exceeded`.
    pub(crate) quota_refused: bool,
}

impl GpuCtx {
    /// A context for one run. `input_hashes` holds the blake3 of inputs (by
    /// name); a tensor read from a large range of one of them may come from
    /// the device's resident store (the same bits, charged the same).
    pub fn new(
        session: Session,
        inputs: Arc<Inputs>,
        input_hashes: BTreeMap<String, Hash32>,
        params: Arc<BTreeMap<String, String>>,
        spec: &assay_protocol::JobSpec,
    ) -> GpuCtx {
        GpuCtx {
            session,
            inputs,
            input_hashes,
            outputs: BTreeMap::new(),
            output_bytes: 0,
            output_limit: spec.output_bytes,
            max_read: spec.memory_bytes,
            params,
            shard: spec.shard,
            log: String::new(),
            log_limit: spec.log_bytes as usize,
            quota_refused: false,
        }
    }

    fn input(&self, name: &str) -> Result<&Arc<[u8]>, HostError> {
        self.inputs.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.inputs.keys().map(String::as_str).collect();
            not_found(format!("no input named {name:?}; the job has {names:?}"))
        })
    }

    fn range<'a>(
        &self,
        bytes: &'a [u8],
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<&'a [u8], HostError> {
        let size = bytes.len() as u64;
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= size)
            .ok_or_else(|| {
                not_found(format!(
                    "bytes {offset}..{offset}+{len} lie outside input {name:?} of {size} bytes"
                ))
            })?;
        Ok(&bytes[offset as usize..end as usize])
    }

    fn put_output(&mut self, name: String, data: Vec<u8>) -> Result<(), HostError> {
        check_output_name(&name)?;
        let replaced = self.outputs.get(&name).map_or(0, |d| d.len() as u64);
        let total = self.output_bytes - replaced + data.len() as u64;
        if total > self.output_limit {
            return Err(HostError::End(crate::sandbox::Ending::OutputLimit(
                format!(
                    "writing {} bytes to output {name:?} would bring outputs to {total} bytes; the spec allows {}",
                    data.len(),
                    self.output_limit
                ),
            )));
        }
        self.output_bytes = total;
        self.outputs.insert(name, data);
        Ok(())
    }

    fn note(&mut self, result: Result<Tensor, hg::Error>) -> Result<Tensor, HostError> {
        if let Err(hg::Error::QuotaExceeded(_)) = &result {
            self.quota_refused = true;
        }
        result.map_err(HostError::from)
    }
}

fn check_output_name(name: &str) -> Result<(), HostError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_OUTPUT_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "output name {name:?} must be 1–{MAX_OUTPUT_NAME} bytes of [A-Za-z0-9._-]"
        )))
    }
}

/// Input ranges at least this large are looked up in the device's resident
/// store (smaller ones decode faster than a lookup pays back).
const RESIDENT_MIN_BYTES: usize = 64 << 10;

/// The name of bytes `offset..offset + len` of the input whose blake3 is
/// `input`: equal names mean equal bytes.
fn resident_key(input: &Hash32, offset: u64, len: usize) -> hg::resident::ContentKey {
    let mut h = blake3::Hasher::new();
    h.update(b"assay/resident-range/v1");
    h.update(&input.0);
    h.update(&offset.to_le_bytes());
    h.update(&(len as u64).to_le_bytes());
    hg::resident::ContentKey(*h.finalize().as_bytes())
}

/// What the bindings borrow from the store for one host call.
pub struct GpuCtxView<'a> {
    /// The job's state.
    pub ctx: &'a mut GpuCtx,
    /// The store's resource table (shared with WASI).
    pub table: &'a mut ResourceTable,
}

impl fmt::Debug for GpuCtxView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuCtxView").finish_non_exhaustive()
    }
}

/// Gives the `assay:gpu` host access to a store's [`GpuCtx`].
pub trait GpuView: Send {
    /// The view for one host call.
    fn gpu(&mut self) -> GpuCtxView<'_>;
}

struct HasGpu;

impl HasData for HasGpu {
    type Data<'a> = GpuCtxView<'a>;
}

/// Adds `assay:gpu/tensor` and `assay:gpu/job-io` to `linker`.
///
/// # Errors
///
/// If the linker already defines them.
pub fn add_to_linker<T: GpuView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    tensor::add_to_linker::<T, HasGpu>(linker, |t| t.gpu())?;
    job_io::add_to_linker::<T, HasGpu>(linker, |t| t.gpu())?;
    Ok(())
}

type R<T> = Result<T, HostError>;

fn dims(shape: &[u32]) -> Vec<usize> {
    shape.iter().map(|&d| d as usize).collect()
}

fn dtype_from_wit(d: tensor::Dtype) -> hg::DType {
    match d {
        tensor::Dtype::F32 => hg::DType::F32,
        tensor::Dtype::I32 => hg::DType::I32,
    }
}

fn dtype_to_wit(d: hg::DType) -> tensor::Dtype {
    match d {
        hg::DType::F32 => tensor::Dtype::F32,
        hg::DType::I32 => tensor::Dtype::I32,
    }
}

impl GpuCtxView<'_> {
    /// The tensor behind a handle the guest passed in.
    fn get(&self, r: &Resource<Tensor>) -> R<Tensor> {
        self.table.get(r).cloned().map_err(table_trap)
    }

    /// Hands an op's result to the guest: notes a quota refusal, then puts
    /// the tensor in the table.
    fn hand_out(&mut self, result: Result<Tensor, hg::Error>) -> R<Resource<Tensor>> {
        let t = self.ctx.note(result)?;
        self.table.push(t).map_err(table_trap)
    }

    /// Runs an op on borrowed operands and hands the result to the guest.
    fn op<const N: usize>(
        &mut self,
        operands: [&Resource<Tensor>; N],
        f: impl FnOnce(&mut Session, [&Tensor; N]) -> Result<Tensor, hg::Error>,
    ) -> R<Resource<Tensor>> {
        let mut held = Vec::with_capacity(N);
        for r in operands {
            held.push(self.get(r)?);
        }
        let refs: [&Tensor; N] = std::array::from_fn(|i| &held[i]);
        let result = f(&mut self.ctx.session, refs);
        self.hand_out(result)
    }
}

/// Resource-table errors are about the guest's handles, not the machine:
/// a deterministic trap, never a provider fault.
fn table_trap(e: impl fmt::Display) -> HostError {
    HostError::End(crate::sandbox::Ending::Trap(format!(
        "bad tensor handle: {e}"
    )))
}

impl tensor::HostTensor for GpuCtxView<'_> {
    fn shape(&mut self, x: Resource<Tensor>) -> wasmtime::Result<Vec<u32>> {
        let t = self.table.get(&x)?;
        Ok(t.shape().iter().map(|&d| d as u32).collect())
    }

    fn dtype(&mut self, x: Resource<Tensor>) -> wasmtime::Result<tensor::Dtype> {
        Ok(dtype_to_wit(self.table.get(&x)?.dtype()))
    }

    fn numel(&mut self, x: Resource<Tensor>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&x)?.numel() as u64)
    }

    fn read_f32(&mut self, x: Resource<Tensor>) -> R<Vec<f32>> {
        let t = self.get(&x)?;
        Ok(self.ctx.session.read_f32(&t)?)
    }

    fn read_i32(&mut self, x: Resource<Tensor>) -> R<Vec<i32>> {
        let t = self.get(&x)?;
        Ok(self.ctx.session.read_i32(&t)?)
    }

    fn drop(&mut self, x: Resource<Tensor>) -> wasmtime::Result<()> {
        self.table.delete(x)?;
        Ok(())
    }
}

impl tensor::Host for GpuCtxView<'_> {
    fn convert_error(&mut self, err: HostError) -> wasmtime::Result<tensor::Error> {
        match err {
            HostError::Guest(e) => Ok(e),
            other => Err(wasmtime::Error::new(other)),
        }
    }

    fn upload_f32(&mut self, shape: Vec<u32>, data: Vec<f32>) -> R<Resource<Tensor>> {
        let r = self.ctx.session.upload_f32(&dims(&shape), data);
        self.hand_out(r)
    }

    fn upload_i32(&mut self, shape: Vec<u32>, data: Vec<i32>) -> R<Resource<Tensor>> {
        let r = self.ctx.session.upload_i32(&dims(&shape), data);
        self.hand_out(r)
    }

    fn fill(&mut self, shape: Vec<u32>, value: f32) -> R<Resource<Tensor>> {
        let r = self.ctx.session.fill(&dims(&shape), value);
        self.hand_out(r)
    }

    fn matmul(
        &mut self,
        a: Resource<Tensor>,
        b: Resource<Tensor>,
        transpose_a: bool,
        transpose_b: bool,
    ) -> R<Resource<Tensor>> {
        self.op([&a, &b], |s, [a, b]| {
            s.matmul(a, b, transpose_a, transpose_b)
        })
    }

    fn linear(
        &mut self,
        x: Resource<Tensor>,
        w: Resource<Tensor>,
        bias: Resource<Tensor>,
        transpose_w: bool,
        activation: Option<tensor::UnaryOp>,
    ) -> R<Resource<Tensor>> {
        let activation = activation.map(unary_op);
        self.op([&x, &w, &bias], |s, [x, w, bias]| {
            s.linear(x, w, bias, transpose_w, activation)
        })
    }

    fn attention(
        &mut self,
        q: Resource<Tensor>,
        k: Resource<Tensor>,
        v: Resource<Tensor>,
        lengths: Vec<u32>,
        heads: u32,
        scale: f32,
    ) -> R<Resource<Tensor>> {
        let lengths = dims(&lengths);
        self.op([&q, &k, &v], |s, [q, k, v]| {
            s.attention(q, k, v, &lengths, heads as usize, scale)
        })
    }

    fn unary(&mut self, op: tensor::UnaryOp, x: Resource<Tensor>) -> R<Resource<Tensor>> {
        let op = unary_op(op);
        self.op([&x], |s, [x]| s.unary(op, x))
    }

    fn binary(
        &mut self,
        op: tensor::BinaryOp,
        a: Resource<Tensor>,
        b: Resource<Tensor>,
    ) -> R<Resource<Tensor>> {
        use tensor::BinaryOp as W;
        let op = match op {
            W::Add => hg::BinaryOp::Add,
            W::Sub => hg::BinaryOp::Sub,
            W::Mul => hg::BinaryOp::Mul,
            W::Div => hg::BinaryOp::Div,
            W::Max => hg::BinaryOp::Max,
            W::Min => hg::BinaryOp::Min,
        };
        self.op([&a, &b], |s, [a, b]| s.binary(op, a, b))
    }

    fn scale(&mut self, x: Resource<Tensor>, factor: f32) -> R<Resource<Tensor>> {
        self.op([&x], |s, [x]| s.scale(x, factor))
    }

    fn reduce(&mut self, op: tensor::ReduceOp, x: Resource<Tensor>) -> R<Resource<Tensor>> {
        use tensor::ReduceOp as W;
        let op = match op {
            W::Sum => hg::ReduceOp::Sum,
            W::Mean => hg::ReduceOp::Mean,
            W::Max => hg::ReduceOp::Max,
            W::Min => hg::ReduceOp::Min,
        };
        self.op([&x], |s, [x]| s.reduce(op, x))
    }

    fn softmax(&mut self, x: Resource<Tensor>) -> R<Resource<Tensor>> {
        self.op([&x], |s, [x]| s.softmax(x))
    }

    fn layer_norm(
        &mut self,
        x: Resource<Tensor>,
        gamma: Resource<Tensor>,
        beta: Resource<Tensor>,
        eps: f32,
    ) -> R<Resource<Tensor>> {
        self.op([&x, &gamma, &beta], |s, [x, g, b]| {
            s.layer_norm(x, g, b, eps)
        })
    }

    fn rms_norm(
        &mut self,
        x: Resource<Tensor>,
        gamma: Resource<Tensor>,
        eps: f32,
    ) -> R<Resource<Tensor>> {
        self.op([&x, &gamma], |s, [x, g]| s.rms_norm(x, g, eps))
    }

    fn gather(
        &mut self,
        table: Resource<Tensor>,
        indices: Resource<Tensor>,
    ) -> R<Resource<Tensor>> {
        self.op([&table, &indices], |s, [t, i]| s.gather(t, i))
    }

    fn reshape(&mut self, x: Resource<Tensor>, shape: Vec<u32>) -> R<Resource<Tensor>> {
        let shape = dims(&shape);
        self.op([&x], |s, [x]| s.reshape(x, &shape))
    }

    fn permute(&mut self, x: Resource<Tensor>, axes: Vec<u32>) -> R<Resource<Tensor>> {
        let axes = dims(&axes);
        self.op([&x], |s, [x]| s.permute(x, &axes))
    }

    fn slice(
        &mut self,
        x: Resource<Tensor>,
        axis: u32,
        start: u32,
        end: u32,
    ) -> R<Resource<Tensor>> {
        self.op([&x], |s, [x]| {
            s.slice(x, axis as usize, start as usize, end as usize)
        })
    }

    fn concat(&mut self, xs: Vec<Resource<Tensor>>, axis: u32) -> R<Resource<Tensor>> {
        let mut held = Vec::with_capacity(xs.len());
        for r in &xs {
            held.push(self.get(r)?);
        }
        let refs: Vec<&Tensor> = held.iter().collect();
        let r = self.ctx.session.concat(&refs, axis as usize);
        self.hand_out(r)
    }

    fn masked_mean_pool(
        &mut self,
        x: Resource<Tensor>,
        mask: Resource<Tensor>,
    ) -> R<Resource<Tensor>> {
        self.op([&x, &mask], |s, [x, m]| s.masked_mean_pool(x, m))
    }

    fn l2_normalize(&mut self, x: Resource<Tensor>, eps: f32) -> R<Resource<Tensor>> {
        self.op([&x], |s, [x]| s.l2_normalize(x, eps))
    }

    fn argmax(&mut self, x: Resource<Tensor>) -> R<Resource<Tensor>> {
        self.op([&x], |s, [x]| s.argmax(x))
    }

    fn conv2d(
        &mut self,
        x: Resource<Tensor>,
        weight: Resource<Tensor>,
        bias: Option<Resource<Tensor>>,
        stride: (u32, u32),
        padding: (u32, u32),
    ) -> R<Resource<Tensor>> {
        let stride = (stride.0 as usize, stride.1 as usize);
        let padding = (padding.0 as usize, padding.1 as usize);
        match bias {
            Some(b) => self.op([&x, &weight, &b], |s, [x, w, b]| {
                s.conv2d(x, w, Some(b), stride, padding)
            }),
            None => self.op([&x, &weight], |s, [x, w]| {
                s.conv2d(x, w, None, stride, padding)
            }),
        }
    }

    fn max_pool2d(
        &mut self,
        x: Resource<Tensor>,
        kernel: (u32, u32),
        stride: (u32, u32),
        padding: (u32, u32),
    ) -> R<Resource<Tensor>> {
        let k = (kernel.0 as usize, kernel.1 as usize);
        let st = (stride.0 as usize, stride.1 as usize);
        let p = (padding.0 as usize, padding.1 as usize);
        self.op([&x], |s, [x]| s.max_pool2d(x, k, st, p))
    }

    fn cast(&mut self, x: Resource<Tensor>, to: tensor::Dtype) -> R<Resource<Tensor>> {
        let to = dtype_from_wit(to);
        self.op([&x], |s, [x]| s.cast(x, to))
    }
}

impl job_io::Host for GpuCtxView<'_> {
    fn list_inputs(&mut self) -> wasmtime::Result<Vec<job_io::InputInfo>> {
        Ok(self
            .ctx
            .inputs
            .iter()
            .map(|(name, bytes)| job_io::InputInfo {
                name: name.clone(),
                size: bytes.len() as u64,
            })
            .collect())
    }

    fn read_input(&mut self, name: String, offset: u64, len: u64) -> R<Vec<u8>> {
        if len > self.ctx.max_read {
            return Err(invalid(format!(
                "read-input of {len} bytes is larger than the job's memory ({} bytes); read in pieces",
                self.ctx.max_read
            )));
        }
        let bytes = self.ctx.input(&name)?.clone();
        let size = bytes.len() as u64;
        if offset > size {
            return Err(not_found(format!(
                "offset {offset} lies outside input {name:?} of {size} bytes"
            )));
        }
        // A short read only at the end of the input.
        let len = len.min(size - offset);
        Ok(self.ctx.range(&bytes, &name, offset, len)?.to_vec())
    }

    fn tensor_from_input(
        &mut self,
        name: String,
        offset: u64,
        encoding: job_io::Encoding,
        shape: Vec<u32>,
    ) -> R<Resource<Tensor>> {
        use job_io::Encoding as W;
        let (encoding, width) = match encoding {
            W::F32 => (hg::SourceEncoding::F32, 4u64),
            W::F16 => (hg::SourceEncoding::F16, 2),
            W::Bf16 => (hg::SourceEncoding::Bf16, 2),
            W::I32 => (hg::SourceEncoding::I32, 4),
            W::I64 => (hg::SourceEncoding::I64, 8),
        };
        let shape = dims(&shape);
        let count = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .and_then(|n| n.checked_mul(width))
            .ok_or_else(|| invalid(format!("shape {shape:?} is too large")))?;
        let bytes = self.ctx.input(&name)?.clone();
        let range = self.ctx.range(&bytes, &name, offset, count)?;
        let r = match self.ctx.input_hashes.get(&name) {
            Some(input) if range.len() >= RESIDENT_MIN_BYTES => {
                let key = resident_key(input, offset, range.len());
                self.ctx
                    .session
                    .from_encoded_resident(&shape, encoding, range, key)
            }
            _ => self.ctx.session.from_encoded(&shape, encoding, range),
        };
        self.hand_out(r)
    }

    fn write_output(&mut self, name: String, data: Vec<u8>) -> R<()> {
        self.ctx.put_output(name, data)
    }

    fn write_tensor_output(&mut self, name: String, x: Resource<Tensor>) -> R<()> {
        check_output_name(&name)?;
        let t = self.get(&x)?;
        // Refuse before reading the tensor back if it cannot fit.
        let replaced = self.ctx.outputs.get(&name).map_or(0, |d| d.len() as u64);
        let total = self.ctx.output_bytes - replaced + t.byte_len();
        if total > self.ctx.output_limit {
            return Err(HostError::End(crate::sandbox::Ending::OutputLimit(
                format!(
                    "writing tensor output {name:?} of {} bytes would bring outputs to {total} bytes; the spec allows {}",
                    t.byte_len(),
                    self.ctx.output_limit
                ),
            )));
        }
        let bytes = self.ctx.session.read_bytes(&t)?;
        self.ctx.put_output(name, bytes)
    }

    fn param(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.ctx.params.get(&name).cloned())
    }

    fn shard(&mut self) -> wasmtime::Result<job_io::ShardInfo> {
        Ok(job_io::ShardInfo {
            index: self.ctx.shard.index,
            count: self.ctx.shard.count,
        })
    }

    fn log(&mut self, message: String) -> wasmtime::Result<()> {
        let room = self.ctx.log_limit.saturating_sub(self.ctx.log.len());
        if room > 0 {
            let mut end = message.len().min(room.saturating_sub(1));
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            self.ctx.log.push_str(&message[..end]);
            self.ctx.log.push('\n');
        }
        Ok(())
    }
}

/// The host's name for a WIT unary op.
fn unary_op(op: tensor::UnaryOp) -> hg::UnaryOp {
    use tensor::UnaryOp as W;
    match op {
        W::Neg => hg::UnaryOp::Neg,
        W::Abs => hg::UnaryOp::Abs,
        W::Relu => hg::UnaryOp::Relu,
        W::Gelu => hg::UnaryOp::Gelu,
        W::Tanh => hg::UnaryOp::Tanh,
        W::Sigmoid => hg::UnaryOp::Sigmoid,
        W::Exp => hg::UnaryOp::Exp,
        W::Log => hg::UnaryOp::Log,
        W::Sqrt => hg::UnaryOp::Sqrt,
    }
}
