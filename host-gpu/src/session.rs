//! One job's view of a device: validation, work metering and the memory quota.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::{Device, TensorRef};
use crate::error::Error;
use crate::op::{BinaryOp, Op, ReduceOp, SourceEncoding, UnaryOp};
use crate::tensor::{Allocation, DType, Tensor};

/// Work done by tensor ops, computed from shapes alone (identical on every backend).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Work {
    /// Floating-point operations (an fma counts as 2).
    pub flops: u64,
    /// Bytes read and written by the ops (inputs plus output).
    pub bytes: u64,
}

impl Work {
    /// The billable work units: flops + bytes.
    pub fn units(&self) -> u64 {
        self.flops.saturating_add(self.bytes)
    }
}

/// A job's limits on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Most bytes of tensors alive at once.
    pub memory_quota: u64,
    /// Most work units ([`Work::units`]) over the whole job.
    pub work_budget: u64,
    /// Most dimensions a tensor may have.
    pub max_rank: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            memory_quota: 1 << 30,
            work_budget: u64::MAX,
            max_rank: 8,
        }
    }
}

/// One job's tensor session: every op goes through here.
///
/// A session checks shapes and arguments, computes the op's output shape and
/// work, refuses it if the output would exceed the memory quota or the work
/// would exceed the budget, and only then asks the backend to compute.
#[derive(Debug)]
pub struct Session {
    device: Device,
    limits: SessionLimits,
    work: Work,
    live_bytes: Arc<AtomicU64>,
}

impl Session {
    /// A new session on `device` with `limits`.
    pub fn new(device: Device, limits: SessionLimits) -> Session {
        Session {
            device,
            limits,
            work: Work::default(),
            live_bytes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Work metered so far.
    pub fn work(&self) -> Work {
        self.work
    }

    /// Bytes of tensors alive now.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes.load(Ordering::Relaxed)
    }

    /// The limits this session enforces.
    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// The device this session runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    // ---- creation and readback -------------------------------------------------

    /// An f32 tensor from host data.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `data.len()` is not the product of `shape`;
    /// [`Error::QuotaExceeded`] / [`Error::WorkBudgetExhausted`] past the limits.
    pub fn upload_f32(&mut self, shape: &[usize], data: Vec<f32>) -> Result<Tensor, Error> {
        let _ = (shape, data);
        unimplemented!("upload_f32")
    }

    /// An i32 tensor from host data. Errors as [`Session::upload_f32`].
    pub fn upload_i32(&mut self, shape: &[usize], data: Vec<i32>) -> Result<Tensor, Error> {
        let _ = (shape, data);
        unimplemented!("upload_i32")
    }

    /// A tensor from little-endian bytes in `encoding` (f32/f16/bf16 → f32, i32/i64 → i32).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `bytes` is not exactly `shape`'s element
    /// count times the encoded size; [`Error::InvalidArgument`] for an i64
    /// outside i32; quota and budget errors as usual.
    pub fn from_encoded(
        &mut self,
        shape: &[usize],
        encoding: SourceEncoding,
        bytes: &[u8],
    ) -> Result<Tensor, Error> {
        let _ = (shape, encoding, bytes);
        unimplemented!("from_encoded")
    }

    /// A tensor with every element equal to `value`.
    pub fn fill(&mut self, shape: &[usize], value: f32) -> Result<Tensor, Error> {
        let _ = (shape, value);
        unimplemented!("fill")
    }

    /// The elements of an f32 tensor. [`Error::InvalidArgument`] for another dtype.
    pub fn read_f32(&self, x: &Tensor) -> Result<Vec<f32>, Error> {
        let _ = x;
        unimplemented!("read_f32")
    }

    /// The elements of an i32 tensor. [`Error::InvalidArgument`] for another dtype.
    pub fn read_i32(&self, x: &Tensor) -> Result<Vec<i32>, Error> {
        let _ = x;
        unimplemented!("read_i32")
    }

    /// The tensor's elements as little-endian bytes (for outputs).
    pub fn read_bytes(&self, x: &Tensor) -> Result<Vec<u8>, Error> {
        let _ = x;
        unimplemented!("read_bytes")
    }

    // ---- the op catalogue --------------------------------------------------------

    /// Batched matmul `[..., m, k] · [..., k, n]`, batch dims broadcast.
    pub fn matmul(
        &mut self,
        a: &Tensor,
        b: &Tensor,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<Tensor, Error> {
        let _ = (a, b, transpose_a, transpose_b);
        unimplemented!("matmul")
    }

    /// An element-wise function (f32 only).
    pub fn unary(&mut self, op: UnaryOp, x: &Tensor) -> Result<Tensor, Error> {
        let _ = (op, x);
        unimplemented!("unary")
    }

    /// An element-wise function of two tensors with numpy broadcasting.
    pub fn binary(&mut self, op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor, Error> {
        let _ = (op, a, b);
        unimplemented!("binary")
    }

    /// x · factor.
    pub fn scale(&mut self, x: &Tensor, factor: f32) -> Result<Tensor, Error> {
        let _ = (x, factor);
        unimplemented!("scale")
    }

    /// Reduction over the last axis.
    pub fn reduce(&mut self, op: ReduceOp, x: &Tensor) -> Result<Tensor, Error> {
        let _ = (op, x);
        unimplemented!("reduce")
    }

    /// Softmax over the last axis.
    pub fn softmax(&mut self, x: &Tensor) -> Result<Tensor, Error> {
        let _ = x;
        unimplemented!("softmax")
    }

    /// Layer norm over the last axis.
    pub fn layer_norm(
        &mut self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<Tensor, Error> {
        let _ = (x, gamma, beta, eps);
        unimplemented!("layer_norm")
    }

    /// RMS norm over the last axis.
    pub fn rms_norm(&mut self, x: &Tensor, gamma: &Tensor, eps: f32) -> Result<Tensor, Error> {
        let _ = (x, gamma, eps);
        unimplemented!("rms_norm")
    }

    /// Embedding lookup.
    pub fn gather(&mut self, table: &Tensor, indices: &Tensor) -> Result<Tensor, Error> {
        let _ = (table, indices);
        unimplemented!("gather")
    }

    /// Same elements, new shape (shares the buffer: no copy, no quota).
    pub fn reshape(&mut self, x: &Tensor, shape: &[usize]) -> Result<Tensor, Error> {
        let _ = (x, shape);
        unimplemented!("reshape")
    }

    /// Reorders dimensions.
    pub fn permute(&mut self, x: &Tensor, axes: &[usize]) -> Result<Tensor, Error> {
        let _ = (x, axes);
        unimplemented!("permute")
    }

    /// Elements `start..end` of `axis`.
    pub fn slice(&mut self, x: &Tensor, axis: usize, start: usize, end: usize) -> Result<Tensor, Error> {
        let _ = (x, axis, start, end);
        unimplemented!("slice")
    }

    /// Joins tensors along `axis`.
    pub fn concat(&mut self, xs: &[&Tensor], axis: usize) -> Result<Tensor, Error> {
        let _ = (xs, axis);
        unimplemented!("concat")
    }

    /// Masked mean over the sequence axis.
    pub fn masked_mean_pool(&mut self, x: &Tensor, mask: &Tensor) -> Result<Tensor, Error> {
        let _ = (x, mask);
        unimplemented!("masked_mean_pool")
    }

    /// x / max(‖x‖₂, eps) over the last axis.
    pub fn l2_normalize(&mut self, x: &Tensor, eps: f32) -> Result<Tensor, Error> {
        let _ = (x, eps);
        unimplemented!("l2_normalize")
    }

    /// Index of the largest element of the last axis.
    pub fn argmax(&mut self, x: &Tensor) -> Result<Tensor, Error> {
        let _ = x;
        unimplemented!("argmax")
    }

    /// 2-D convolution, NCHW.
    pub fn conv2d(
        &mut self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor, Error> {
        let _ = (x, weight, bias, stride, padding);
        unimplemented!("conv2d")
    }

    /// 2-D max pooling, NCHW.
    pub fn max_pool2d(
        &mut self,
        x: &Tensor,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor, Error> {
        let _ = (x, kernel, stride, padding);
        unimplemented!("max_pool2d")
    }

    /// Converts between dtypes.
    pub fn cast(&mut self, x: &Tensor, to: DType) -> Result<Tensor, Error> {
        let _ = (x, to);
        unimplemented!("cast")
    }

    // ---- shared machinery ------------------------------------------------------

    /// Charges `work` and reserves `out_bytes` of quota, or refuses.
    #[allow(dead_code)]
    fn charge(&mut self, what: &str, work: Work, out_bytes: u64) -> Result<(), Error> {
        let units = self.work.units().saturating_add(work.units());
        if units > self.limits.work_budget {
            return Err(Error::WorkBudgetExhausted(format!(
                "{what} needs {} work units; {} of the budget of {} are used",
                work.units(),
                self.work.units(),
                self.limits.work_budget
            )));
        }
        let live = self.live_bytes();
        if live.saturating_add(out_bytes) > self.limits.memory_quota {
            return Err(Error::QuotaExceeded(format!(
                "{what} needs {out_bytes} bytes with {live} bytes alive; the job's quota is {} bytes",
                self.limits.memory_quota
            )));
        }
        self.work.flops = self.work.flops.saturating_add(work.flops);
        self.work.bytes = self.work.bytes.saturating_add(work.bytes);
        Ok(())
    }

    /// Runs a validated op and wraps its buffer as a tensor holding quota.
    #[allow(dead_code)]
    fn launch(
        &mut self,
        op: &Op,
        inputs: &[&Tensor],
        out_shape: Vec<usize>,
        out_dtype: DType,
    ) -> Result<Tensor, Error> {
        let refs: Vec<TensorRef<'_>> = inputs
            .iter()
            .map(|t| TensorRef {
                shape: &t.shape,
                dtype: t.dtype,
                buffer: &*t.buffer.buffer,
            })
            .collect();
        let buffer = self
            .device
            .backend()
            .execute(op, &refs, &out_shape, out_dtype)?;
        Ok(self.adopt(buffer, out_shape, out_dtype))
    }

    /// Wraps a fresh backend buffer (whose quota was already checked).
    #[allow(dead_code)]
    fn adopt(
        &self,
        buffer: Box<dyn crate::backend::DeviceBuffer>,
        shape: Vec<usize>,
        dtype: DType,
    ) -> Tensor {
        let bytes = shape.iter().product::<usize>() as u64 * dtype.size() as u64;
        self.live_bytes.fetch_add(bytes, Ordering::Relaxed);
        Tensor {
            shape: shape.into(),
            dtype,
            buffer: Arc::new(Allocation {
                buffer,
                bytes,
                live_bytes: self.live_bytes.clone(),
            }),
        }
    }
}
