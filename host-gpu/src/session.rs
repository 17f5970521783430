//! One job's view of a device: validation, work metering and the memory quota.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::backend::{Device, TensorRef};
use crate::dtype::DType;
use crate::error::Error;
use crate::op::{BinaryOp, Op, ReduceOp, SourceEncoding, UnaryOp};
use crate::resident::ContentKey;
use crate::tensor::{Allocation, Tensor};

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
    op_times: BTreeMap<&'static str, OpTime>,
}

/// The device time a session spent on one kind of op: wall clock around
/// each call (the op and its allocation), for profiles; never part of a
/// result.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OpTime {
    /// Calls that ran (refused ones are not counted).
    pub calls: u64,
    /// Their time in all.
    pub time: Duration,
    /// Their metered FLOPs.
    pub flops: u64,
}

impl Session {
    /// A new session on `device` with `limits`.
    pub fn new(device: Device, limits: SessionLimits) -> Session {
        Session {
            device,
            limits,
            work: Work::default(),
            live_bytes: Arc::new(AtomicU64::new(0)),
            op_times: BTreeMap::new(),
        }
    }

    /// Where this session's device time went, per op name (`matmul`,
    /// `add`, `from_encoded`, …), in name order.
    pub fn op_times(&self) -> &BTreeMap<&'static str, OpTime> {
        &self.op_times
    }

    /// Adds one call of `what` that took since `start` and metered `flops`.
    fn record(&mut self, what: &'static str, start: Instant, flops: u64) {
        let t = self.op_times.entry(what).or_default();
        t.calls += 1;
        t.time += start.elapsed();
        t.flops += flops;
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
    /// [`Error::InvalidArgument`] for a shape past the rank limit or too large
    /// to address; [`Error::QuotaExceeded`] / [`Error::WorkBudgetExhausted`]
    /// past the limits.
    pub fn upload_f32(&mut self, shape: &[usize], data: Vec<f32>) -> Result<Tensor, Error> {
        let what = "upload_f32";
        let bytes = self.check_upload(what, shape, data.len(), DType::F32)?;
        let buffer = self.device.backend().upload_f32(&data)?;
        Ok(self.adopt(buffer, shape.to_vec(), DType::F32, bytes))
    }

    /// An i32 tensor from host data.
    ///
    /// # Errors
    ///
    /// As [`Session::upload_f32`].
    pub fn upload_i32(&mut self, shape: &[usize], data: Vec<i32>) -> Result<Tensor, Error> {
        let what = "upload_i32";
        let bytes = self.check_upload(what, shape, data.len(), DType::I32)?;
        let buffer = self.device.backend().upload_i32(&data)?;
        Ok(self.adopt(buffer, shape.to_vec(), DType::I32, bytes))
    }

    /// A tensor from little-endian bytes in `encoding` (f32/f16/bf16 → f32, i32/i64 → i32).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `bytes` is not exactly `shape`'s element
    /// count times the encoded size; [`Error::InvalidArgument`] for an i64
    /// outside i32 (checked before anything is charged) or a bad shape;
    /// quota and budget errors as usual.
    pub fn from_encoded(
        &mut self,
        shape: &[usize],
        encoding: SourceEncoding,
        bytes: &[u8],
    ) -> Result<Tensor, Error> {
        self.decode(shape, encoding, bytes, None)
    }

    /// As [`Session::from_encoded`], but the device may hand back the buffer
    /// an earlier job decoded from the same content, and keeps this one for
    /// later jobs (see [`crate::resident`]). `key` must name the content of
    /// `bytes`: equal keys for different bytes would give a job another
    /// job's values. Work and quota are charged exactly as for a decode, so
    /// a job's outcome and receipt do not depend on what the device kept.
    ///
    /// # Errors
    ///
    /// As [`Session::from_encoded`].
    ///
    /// # Example
    ///
    /// ```
    /// use assay_host_gpu::resident::ContentKey;
    /// use assay_host_gpu::{Device, Session, SessionLimits, SourceEncoding};
    ///
    /// let device = Device::cpu();
    /// let bytes: Vec<u8> = [1.0f32, 2.0, 3.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    /// let key = ContentKey(*b"three floats: 1, 2 and 3........");
    /// for _job in 0..2 {
    ///     let mut s = Session::new(device.clone(), SessionLimits::default());
    ///     let t = s.from_encoded_resident(&[3], SourceEncoding::F32, &bytes, key)?;
    ///     assert_eq!(s.read_f32(&t)?, [1.0, 2.0, 3.0]);
    /// }
    /// assert_eq!(device.resident_stats().hits, 1);
    /// # Ok::<(), assay_host_gpu::Error>(())
    /// ```
    pub fn from_encoded_resident(
        &mut self,
        shape: &[usize],
        encoding: SourceEncoding,
        bytes: &[u8],
        key: ContentKey,
    ) -> Result<Tensor, Error> {
        self.decode(shape, encoding, bytes, Some(key))
    }

    fn decode(
        &mut self,
        shape: &[usize],
        encoding: SourceEncoding,
        bytes: &[u8],
        key: Option<ContentKey>,
    ) -> Result<Tensor, Error> {
        let what = "from_encoded";
        let dtype = encoding.dtype();
        let (numel, out_bytes) = self.checked_size(what, shape, dtype)?;
        let expected = (numel as u128) * encoding.size() as u128;
        if bytes.len() as u128 != expected {
            return Err(Error::ShapeMismatch(format!(
                "{what}: shape {shape:?} as {encoding:?} needs {expected} bytes ({numel} elements of {} bytes) but the range holds {}",
                encoding.size(),
                bytes.len()
            )));
        }
        if encoding == SourceEncoding::I64
            && let Some((at, v)) = first_i64_outside_i32(bytes)
        {
            return Err(Error::InvalidArgument(format!(
                "{what}: i64 element {at} is {v}, which does not fit in i32; only i32-sized values can be narrowed"
            )));
        }
        let work = to_work(what, 0, bytes.len() as u128 + out_bytes as u128)?;
        self.charge(what, work, out_bytes)?;
        let start = Instant::now();
        let resident = self.device.resident();
        let kept = key.and_then(|k| resident.get(k, encoding, bytes.len()));
        let buffer = match kept {
            Some(buffer) => buffer,
            None => {
                let buffer: Arc<dyn crate::backend::DeviceBuffer> = Arc::from(
                    self.device
                        .backend()
                        .upload_encoded(bytes, encoding, dtype)?,
                );
                if let Some(k) = key {
                    resident.keep(k, encoding, bytes.len(), Arc::clone(&buffer), out_bytes);
                }
                buffer
            }
        };
        let t = self.adopt_shared(buffer, shape.to_vec(), dtype, out_bytes);
        self.record(what, start, 0);
        Ok(t)
    }

    /// A tensor with every element equal to `value` (a NaN is stored canonical).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a bad shape; quota and budget errors as usual.
    pub fn fill(&mut self, shape: &[usize], value: f32) -> Result<Tensor, Error> {
        let what = "fill";
        self.op(what, Op::Fill { value }, &[], shape.to_vec(), DType::F32, 0)
    }

    /// The elements of an f32 tensor.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for another dtype or a tensor of another
    /// session; [`Error::Device`] if the device fails.
    pub fn read_f32(&self, x: &Tensor) -> Result<Vec<f32>, Error> {
        self.check_read("read_f32", x, DType::F32)?;
        self.device.backend().read_f32(tensor_ref(x))
    }

    /// The elements of an i32 tensor.
    ///
    /// # Errors
    ///
    /// As [`Session::read_f32`].
    pub fn read_i32(&self, x: &Tensor) -> Result<Vec<i32>, Error> {
        self.check_read("read_i32", x, DType::I32)?;
        self.device.backend().read_i32(tensor_ref(x))
    }

    /// The tensor's elements as little-endian bytes (for outputs).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a tensor of another session;
    /// [`Error::Device`] if the device fails.
    pub fn read_bytes(&self, x: &Tensor) -> Result<Vec<u8>, Error> {
        self.check_read("read_bytes", x, x.dtype)?;
        Ok(match x.dtype {
            DType::F32 => self
                .read_f32(x)?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            DType::I32 => self
                .read_i32(x)?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        })
    }

    // ---- the op catalogue --------------------------------------------------------

    /// Batched matmul `[..., m, k] · [..., k, n]`, batch dims broadcast;
    /// `transpose_a`/`transpose_b` read an operand as its transpose over the
    /// last two dims.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 operand or one of rank < 2;
    /// [`Error::ShapeMismatch`] if the inner dimensions differ or the batch
    /// dimensions do not broadcast; quota and budget errors as usual.
    pub fn matmul(
        &mut self,
        a: &Tensor,
        b: &Tensor,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<Tensor, Error> {
        let what = "matmul";
        let (out_shape, flops) = self.matmul_shape(what, a, b, transpose_a, transpose_b)?;
        self.op(
            what,
            Op::Matmul {
                transpose_a,
                transpose_b,
            },
            &[a, b],
            out_shape,
            DType::F32,
            flops,
        )
    }

    /// A dense layer: `matmul(x, w, false, transpose_w)` plus `bias`, a
    /// vector as long as the output's last dimension, added to every row,
    /// then `activation` if given — bit for bit `binary(Add, matmul(..),
    /// bias)` then [`Session::unary`] (each output is the dot product
    /// rounded, then the sum rounded, then the function), in one op with no
    /// intermediate tensors. A layer stored as PyTorch's `Linear` (`[out,
    /// in]`) passes `transpose_w = true`.
    ///
    /// # Errors
    ///
    /// As [`Session::matmul`]; [`Error::ShapeMismatch`] if `bias` is not a
    /// vector of the output's last dimension.
    ///
    /// # Example
    ///
    /// ```
    /// # use assay_host_gpu::{Device, Session, SessionLimits};
    /// let mut s = Session::new(Device::cpu(), SessionLimits::default());
    /// let x = s.upload_f32(&[1, 2], vec![1.0, 2.0])?;
    /// let w = s.upload_f32(&[3, 2], vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0])?;
    /// let b = s.upload_f32(&[3], vec![0.5, 0.5, 0.5])?;
    /// let y = s.linear(&x, &w, &b, true, None)?;
    /// assert_eq!(s.read_f32(&y)?, vec![1.5, 2.5, 3.5]);
    /// # Ok::<(), assay_host_gpu::Error>(())
    /// ```
    pub fn linear(
        &mut self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        transpose_w: bool,
        activation: Option<UnaryOp>,
    ) -> Result<Tensor, Error> {
        let what = "linear";
        self.check_inputs(what, &[("bias", bias, Some(DType::F32))])?;
        let (out_shape, flops) = self.matmul_shape(what, x, w, false, transpose_w)?;
        let n = out_shape[out_shape.len() - 1];
        if bias.shape[..] != [n] {
            return Err(Error::ShapeMismatch(format!(
                "{what}: bias must be a vector of the output's last dimension [{n}] but it is {:?}",
                bias.shape
            )));
        }
        let per_output = 1 + activation.map_or(0, unary_flops);
        let epilogue = product(out_shape.iter().copied()).saturating_mul(u128::from(per_output));
        self.op(
            what,
            Op::Linear {
                transpose_b: transpose_w,
                activation,
            },
            &[x, w, bias],
            out_shape,
            DType::F32,
            flops.saturating_add(epilogue),
        )
    }

    /// The output shape and flops of `a · b` (as [`Session::matmul`] checks them).
    fn matmul_shape(
        &self,
        what: &str,
        a: &Tensor,
        b: &Tensor,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<(Vec<usize>, u128), Error> {
        self.check_inputs(
            what,
            &[("a", a, Some(DType::F32)), ("b", b, Some(DType::F32))],
        )?;
        for (name, t) in [("a", a), ("b", b)] {
            if t.shape.len() < 2 {
                return Err(Error::InvalidArgument(format!(
                    "{what}: {name} must have rank ≥ 2 ([..., rows, cols]) but it is {:?}; reshape a vector to [1, n] or [n, 1]",
                    t.shape
                )));
            }
        }
        let (ra, rb) = (a.shape.len(), b.shape.len());
        let (m, ka) = if transpose_a {
            (a.shape[ra - 1], a.shape[ra - 2])
        } else {
            (a.shape[ra - 2], a.shape[ra - 1])
        };
        let (kb, n) = if transpose_b {
            (b.shape[rb - 1], b.shape[rb - 2])
        } else {
            (b.shape[rb - 2], b.shape[rb - 1])
        };
        if ka != kb {
            let t = |on: bool| if on { " transposed" } else { "" };
            return Err(Error::ShapeMismatch(format!(
                "{what}: inner dimensions differ: a is {:?}{} (k={ka}), b is {:?}{} (k={kb})",
                a.shape,
                t(transpose_a),
                b.shape,
                t(transpose_b)
            )));
        }
        let mut out_shape = broadcast_shapes(what, &a.shape[..ra - 2], &b.shape[..rb - 2])
            .map_err(|e| match e {
                Error::ShapeMismatch(m) => Error::ShapeMismatch(format!(
                    "{m} (the batch dimensions of a {:?} and b {:?})",
                    a.shape, b.shape
                )),
                e => e,
            })?;
        out_shape.extend([m, n]);
        let flops = product(out_shape.iter().copied().chain([ka, 2]));
        Ok((out_shape, flops))
    }

    /// An element-wise function (f32 only).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor; quota and budget errors as usual.
    pub fn unary(&mut self, op: UnaryOp, x: &Tensor) -> Result<Tensor, Error> {
        let what = unary_name(op);
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        let flops = x.numel() as u128 * unary_flops(op) as u128;
        self.op(
            what,
            Op::Unary(op),
            &[x],
            x.shape.to_vec(),
            DType::F32,
            flops,
        )
    }

    /// An element-wise function of two f32 tensors with numpy broadcasting.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 operand;
    /// [`Error::ShapeMismatch`] if the shapes do not broadcast; quota and
    /// budget errors as usual.
    pub fn binary(&mut self, op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor, Error> {
        let what = binary_name(op);
        self.check_inputs(
            what,
            &[("a", a, Some(DType::F32)), ("b", b, Some(DType::F32))],
        )?;
        let out_shape = broadcast_shapes(what, &a.shape, &b.shape)?;
        let flops = product(out_shape.iter().copied());
        self.op(what, Op::Binary(op), &[a, b], out_shape, DType::F32, flops)
    }

    /// x · factor.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor; quota and budget errors as usual.
    pub fn scale(&mut self, x: &Tensor, factor: f32) -> Result<Tensor, Error> {
        let what = "scale";
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        let flops = x.numel() as u128;
        self.op(
            what,
            Op::Scale { factor },
            &[x],
            x.shape.to_vec(),
            DType::F32,
            flops,
        )
    }

    /// Reduction over the last axis: `[..., n]` → `[...]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor or a scalar; quota and
    /// budget errors as usual.
    pub fn reduce(&mut self, op: ReduceOp, x: &Tensor) -> Result<Tensor, Error> {
        let what = reduce_name(op);
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        let (rows, _) = last_axis(what, x)?;
        let mut flops = x.numel() as u128;
        if op == ReduceOp::Mean {
            flops += rows as u128;
        }
        let out_shape = x.shape[..x.shape.len() - 1].to_vec();
        self.op(what, Op::Reduce(op), &[x], out_shape, DType::F32, flops)
    }

    /// Scaled dot-product attention over sequences packed back to back,
    /// without padding: `q` and `k` are `[tokens, heads·d]`, `v` is
    /// `[tokens, heads·dv]`, and `lengths` (each ≥ 1) split the rows into
    /// sequences. For each sequence of `n` rows starting at row `o` and each
    /// head `h`, with `Q`, `K`, `V` the sequence's rows and the head's columns
    /// (`h·d..(h+1)·d`, `h·dv..(h+1)·dv`):
    /// `out[o..o+n, h·dv..(h+1)·dv] = matmul(softmax(scale(matmul(Q, K, false,
    /// true), scale)), V)`, bit for bit those ops (SEMANTICS.md). Tokens
    /// attend only within their own sequence, so no mask is needed and no
    /// padding is computed. Output `[tokens, heads·dv]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for non-f32 or non-matrix operands, zero
    /// `heads`, widths not divisible by `heads` or a zero length;
    /// [`Error::ShapeMismatch`] when `q`, `k` and `v` disagree in rows, `q`
    /// and `k` in width, or `lengths` do not sum to the rows; quota (the
    /// scores of the longest sequence count as a temporary `[tokens, heads,
    /// longest]` tensor) and budget errors as usual.
    ///
    /// # Example
    ///
    /// ```
    /// # use assay_host_gpu::{Device, Session, SessionLimits};
    /// let mut s = Session::new(Device::cpu(), SessionLimits::default());
    /// // Two sequences (2 tokens, then 1), one head of width 2.
    /// let q = s.upload_f32(&[3, 2], vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0])?;
    /// let v = s.upload_f32(&[3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
    /// let out = s.attention(&q, &q, &v, &[2, 1], 1, 0.5)?;
    /// let y = s.read_f32(&out)?;
    /// // A sequence of one token attends to itself alone.
    /// assert_eq!(&y[4..], &[5.0, 6.0]);
    /// # Ok::<(), assay_host_gpu::Error>(())
    /// ```
    pub fn attention(
        &mut self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        lengths: &[usize],
        heads: usize,
        scale: f32,
    ) -> Result<Tensor, Error> {
        let what = "attention";
        self.check_inputs(
            what,
            &[
                ("q", q, Some(DType::F32)),
                ("k", k, Some(DType::F32)),
                ("v", v, Some(DType::F32)),
            ],
        )?;
        for (name, t) in [("q", q), ("k", k), ("v", v)] {
            if t.shape.len() != 2 {
                return Err(Error::InvalidArgument(format!(
                    "{what}: {name} must be [tokens, heads·width] but it is {:?}",
                    t.shape
                )));
            }
        }
        let (tokens, width, v_width) = (q.shape[0], q.shape[1], v.shape[1]);
        if k.shape[..] != q.shape[..] || v.shape[0] != tokens {
            return Err(Error::ShapeMismatch(format!(
                "{what}: q {:?} and k {:?} must have the same shape, and v {:?} as many rows",
                q.shape, k.shape, v.shape
            )));
        }
        if heads == 0 || !width.is_multiple_of(heads) || !v_width.is_multiple_of(heads) {
            return Err(Error::InvalidArgument(format!(
                "{what}: {heads} heads must divide the widths of q ({width}) and v ({v_width})"
            )));
        }
        if let Some(at) = lengths.iter().position(|&n| n == 0) {
            return Err(Error::InvalidArgument(format!(
                "{what}: sequence {at} has length 0; leave empty sequences out (they have no rows)"
            )));
        }
        let total = lengths
            .iter()
            .try_fold(0usize, |sum, &n| sum.checked_add(n));
        if total != Some(tokens) {
            return Err(Error::ShapeMismatch(format!(
                "{what}: the {} sequence lengths must add up to the {tokens} rows of q",
                lengths.len()
            )));
        }
        let longest = lengths.iter().copied().max().unwrap_or(0);
        let (_, scores_bytes) = self.checked_size(what, &[tokens, heads, longest], DType::F32)?;
        let (_, out_bytes) = self.checked_size(what, &[tokens, v_width], DType::F32)?;
        let live = self.live_bytes();
        if live.saturating_add(out_bytes).saturating_add(scores_bytes) > self.limits.memory_quota {
            return Err(Error::QuotaExceeded(format!(
                "{what} needs {out_bytes} bytes for its output and {scores_bytes} for its \
                 scores with {live} bytes alive; the job's quota is {} bytes",
                self.limits.memory_quota
            )));
        }
        // Per sequence and head: the two products (2·n²·d and 2·n²·dv), the
        // scale (n²) and the softmax (n²·(T + 4)).
        let (d, dv) = ((width / heads) as u128, (v_width / heads) as u128);
        let per_score = 2 * d + 2 * dv + 1 + TRANSCENDENTAL_FLOPS as u128 + 4;
        let flops = lengths.iter().fold(0u128, |f, &n| {
            f.saturating_add(
                (n as u128)
                    .saturating_mul(n as u128)
                    .saturating_mul(heads as u128)
                    .saturating_mul(per_score),
            )
        });
        self.op(
            what,
            Op::Attention {
                lengths: lengths.to_vec(),
                heads,
                scale,
            },
            &[q, k, v],
            vec![tokens, v_width],
            DType::F32,
            flops,
        )
    }

    /// Softmax over the last axis.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor or a scalar; quota and
    /// budget errors as usual.
    pub fn softmax(&mut self, x: &Tensor) -> Result<Tensor, Error> {
        let what = "softmax";
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        last_axis(what, x)?;
        let flops = x.numel() as u128 * (TRANSCENDENTAL_FLOPS as u128 + 4);
        self.op(what, Op::Softmax, &[x], x.shape.to_vec(), DType::F32, flops)
    }

    /// Layer norm over the last axis: `(x − mean) / sqrt(var + eps) · gamma + beta`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor, a scalar `x`, or an
    /// `eps` that is negative or not finite; [`Error::ShapeMismatch`] unless
    /// gamma and beta are `[n]` for x `[..., n]`; quota and budget errors as usual.
    pub fn layer_norm(
        &mut self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<Tensor, Error> {
        let what = "layer_norm";
        self.check_inputs(
            what,
            &[
                ("x", x, Some(DType::F32)),
                ("gamma", gamma, Some(DType::F32)),
                ("beta", beta, Some(DType::F32)),
            ],
        )?;
        let (rows, _) = last_axis(what, x)?;
        row_param(what, "gamma", gamma, x)?;
        row_param(what, "beta", beta, x)?;
        check_eps(what, eps)?;
        let flops = 8 * x.numel() as u128 + 4 * rows as u128;
        self.op(
            what,
            Op::LayerNorm { eps },
            &[x, gamma, beta],
            x.shape.to_vec(),
            DType::F32,
            flops,
        )
    }

    /// RMS norm over the last axis: `x / sqrt(mean(x²) + eps) · gamma`.
    ///
    /// # Errors
    ///
    /// As [`Session::layer_norm`] (gamma must be `[n]`).
    pub fn rms_norm(&mut self, x: &Tensor, gamma: &Tensor, eps: f32) -> Result<Tensor, Error> {
        let what = "rms_norm";
        self.check_inputs(
            what,
            &[
                ("x", x, Some(DType::F32)),
                ("gamma", gamma, Some(DType::F32)),
            ],
        )?;
        let (rows, _) = last_axis(what, x)?;
        row_param(what, "gamma", gamma, x)?;
        check_eps(what, eps)?;
        let flops = 4 * x.numel() as u128 + 3 * rows as u128;
        self.op(
            what,
            Op::RmsNorm { eps },
            &[x, gamma],
            x.shape.to_vec(),
            DType::F32,
            flops,
        )
    }

    /// Embedding lookup: table `[v, d]` (f32 or i32), i32 indices `[...]` → `[..., d]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if the table is not rank 2, the indices are
    /// not i32, or an index is negative or ≥ v (checked before anything is
    /// charged); quota and budget errors as usual.
    pub fn gather(&mut self, table: &Tensor, indices: &Tensor) -> Result<Tensor, Error> {
        let what = "gather";
        self.check_inputs(
            what,
            &[
                ("table", table, None),
                ("indices", indices, Some(DType::I32)),
            ],
        )?;
        let &[rows, d] = &*table.shape else {
            return Err(Error::InvalidArgument(format!(
                "{what}: the table must be [rows, dim] but it is {:?}",
                table.shape
            )));
        };
        let mut out_shape = indices.shape.to_vec();
        out_shape.push(d);
        self.check_rank(what, &out_shape)?;
        if let Some((at, v)) = self
            .device
            .backend()
            .first_index_out_of_range(tensor_ref(indices), rows)?
        {
            return Err(Error::InvalidArgument(format!(
                "{what}: index {v} at position {at} is outside the table's {rows} rows (valid: 0..{rows})"
            )));
        }
        let (_, out_bytes) = self.checked_size(what, &out_shape, table.dtype)?;
        // Reads the indices and the picked rows, writes the output.
        let read = indices.byte_len() as u128 + out_bytes as u128;
        self.op_with_read(
            what,
            Op::Gather,
            &[table, indices],
            out_shape,
            table.dtype,
            0,
            read,
        )
    }

    /// Same elements, new shape (shares the buffer: no copy, no quota, no work).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the element counts differ;
    /// [`Error::InvalidArgument`] for a shape past the rank limit or a tensor
    /// of another session.
    pub fn reshape(&mut self, x: &Tensor, shape: &[usize]) -> Result<Tensor, Error> {
        let what = "reshape";
        self.check_inputs(what, &[("x", x, None)])?;
        let (numel, _) = self.checked_size(what, shape, x.dtype)?;
        if numel != x.numel() {
            return Err(Error::ShapeMismatch(format!(
                "{what}: x is {:?} ({} elements) but {shape:?} holds {numel}; the element counts must agree",
                x.shape,
                x.numel()
            )));
        }
        Ok(Tensor {
            shape: shape.into(),
            dtype: x.dtype,
            buffer: x.buffer.clone(),
        })
    }

    /// Reorders dimensions: output dimension i is input dimension `axes[i]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] unless `axes` is a permutation of
    /// `0..rank`; quota and budget errors as usual.
    pub fn permute(&mut self, x: &Tensor, axes: &[usize]) -> Result<Tensor, Error> {
        let what = "permute";
        self.check_inputs(what, &[("x", x, None)])?;
        let rank = x.shape.len();
        let mut seen = vec![false; rank];
        let valid = axes.len() == rank
            && axes
                .iter()
                .all(|&a| a < rank && !std::mem::replace(&mut seen[a], true));
        if !valid {
            return Err(Error::InvalidArgument(format!(
                "{what}: axes {axes:?} are not a permutation of 0..{rank} (x is {:?})",
                x.shape
            )));
        }
        let out_shape = axes.iter().map(|&a| x.shape[a]).collect();
        self.op(
            what,
            Op::Permute {
                axes: axes.to_vec(),
            },
            &[x],
            out_shape,
            x.dtype,
            0,
        )
    }

    /// Elements `start..end` of `axis`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `axis` is not below the rank or
    /// `start..end` is not inside it; quota and budget errors as usual.
    pub fn slice(
        &mut self,
        x: &Tensor,
        axis: usize,
        start: usize,
        end: usize,
    ) -> Result<Tensor, Error> {
        let what = "slice";
        self.check_inputs(what, &[("x", x, None)])?;
        let dim = axis_len(what, x, axis)?;
        if start > end || end > dim {
            return Err(Error::InvalidArgument(format!(
                "{what}: {start}..{end} is not inside axis {axis} of x {:?} (length {dim}); need start ≤ end ≤ {dim}",
                x.shape
            )));
        }
        let mut out_shape = x.shape.to_vec();
        out_shape[axis] = end - start;
        let (_, out_bytes) = self.checked_size(what, &out_shape, x.dtype)?;
        self.op_with_read(
            what,
            Op::Slice { axis, start, end },
            &[x],
            out_shape,
            x.dtype,
            0,
            out_bytes as u128,
        )
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an empty list, mixed dtypes or ranks,
    /// or an axis not below the rank; [`Error::ShapeMismatch`] if another
    /// dimension differs; quota and budget errors as usual.
    pub fn concat(&mut self, xs: &[&Tensor], axis: usize) -> Result<Tensor, Error> {
        let what = "concat";
        let Some(&first) = xs.first() else {
            return Err(Error::InvalidArgument(format!(
                "{what}: needs at least one tensor"
            )));
        };
        for (i, x) in xs.iter().enumerate() {
            self.check_owned(what, &format!("xs[{i}]"), x)?;
            if x.dtype != first.dtype || x.shape.len() != first.shape.len() {
                return Err(Error::InvalidArgument(format!(
                    "{what}: xs[{i}] is {} {:?} but xs[0] is {} {:?}; all must share dtype and rank",
                    x.dtype.name(),
                    x.shape,
                    first.dtype.name(),
                    first.shape
                )));
            }
        }
        axis_len(what, first, axis)?;
        let mut out_shape = first.shape.to_vec();
        let mut total: usize = 0;
        for (i, x) in xs.iter().enumerate() {
            let differs = x
                .shape
                .iter()
                .zip(first.shape.iter())
                .enumerate()
                .any(|(d, (a, b))| d != axis && a != b);
            if differs {
                return Err(Error::ShapeMismatch(format!(
                    "{what}: xs[{i}] is {:?} but xs[0] is {:?}; every dimension except axis {axis} must agree",
                    x.shape, first.shape
                )));
            }
            total = total
                .checked_add(x.shape[axis])
                .ok_or_else(|| too_large(what))?;
        }
        out_shape[axis] = total;
        self.op(what, Op::Concat { axis }, xs, out_shape, first.dtype, 0)
    }

    /// Masked mean over the sequence: x `[b, s, d]`, mask `[b, s]` (f32) → `[b, d]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for non-f32 operands or x not of rank 3;
    /// [`Error::ShapeMismatch`] unless the mask is `[b, s]`; quota and budget
    /// errors as usual.
    pub fn masked_mean_pool(&mut self, x: &Tensor, mask: &Tensor) -> Result<Tensor, Error> {
        let what = "masked_mean_pool";
        self.check_inputs(
            what,
            &[("x", x, Some(DType::F32)), ("mask", mask, Some(DType::F32))],
        )?;
        let &[b, s, d] = &*x.shape else {
            return Err(Error::InvalidArgument(format!(
                "{what}: x must be [batch, seq, dim] but it is {:?}",
                x.shape
            )));
        };
        if *mask.shape != [b, s] {
            return Err(Error::ShapeMismatch(format!(
                "{what}: mask must be [batch, seq] = [{b}, {s}] for x {:?} but it is {:?}",
                x.shape, mask.shape
            )));
        }
        let (b, s, d) = (b as u128, s as u128, d as u128);
        let flops = 2 * b * s * d + b * s + b * d;
        self.op(
            what,
            Op::MaskedMeanPool,
            &[x, mask],
            vec![x.shape[0], x.shape[2]],
            DType::F32,
            flops,
        )
    }

    /// x / max(‖x‖₂, eps) over the last axis.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor, a scalar, or an `eps`
    /// that is negative or not finite; quota and budget errors as usual.
    pub fn l2_normalize(&mut self, x: &Tensor, eps: f32) -> Result<Tensor, Error> {
        let what = "l2_normalize";
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        let (rows, _) = last_axis(what, x)?;
        check_eps(what, eps)?;
        let flops = 3 * x.numel() as u128 + 2 * rows as u128;
        self.op(
            what,
            Op::L2Normalize { eps },
            &[x],
            x.shape.to_vec(),
            DType::F32,
            flops,
        )
    }

    /// Index of the largest element of the last axis (first on ties; the first NaN wins) → i32.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor, a scalar, an empty
    /// last axis, or one longer than i32 can index; quota and budget errors as usual.
    pub fn argmax(&mut self, x: &Tensor) -> Result<Tensor, Error> {
        let what = "argmax";
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        let (_, n) = last_axis(what, x)?;
        if n == 0 || n - 1 > i32::MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "{what}: the last axis of x {:?} has {n} elements; it needs 1 to 2^31",
                x.shape
            )));
        }
        let flops = x.numel() as u128;
        let out_shape = x.shape[..x.shape.len() - 1].to_vec();
        self.op(what, Op::Argmax, &[x], out_shape, DType::I32, flops)
    }

    /// 2-D convolution, NCHW: x `[n, c, h, w]`, weight `[o, c, kh, kw]`,
    /// optional bias `[o]` → `[n, o, (h + 2·ph − kh) / sh + 1, (w + 2·pw − kw) / sw + 1]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for non-f32 operands, wrong ranks, a zero
    /// kernel size or stride; [`Error::ShapeMismatch`] if the channels or the
    /// bias do not match or the kernel is larger than the padded input;
    /// quota and budget errors as usual.
    pub fn conv2d(
        &mut self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor, Error> {
        let what = "conv2d";
        self.check_inputs(
            what,
            &[
                ("x", x, Some(DType::F32)),
                ("weight", weight, Some(DType::F32)),
            ],
        )?;
        let (&[n, c, h, w], &[o, wc, kh, kw]) = (&*x.shape, &*weight.shape) else {
            return Err(Error::InvalidArgument(format!(
                "{what}: x must be [n, c, h, w] and weight [o, c, kh, kw]; they are {:?} and {:?}",
                x.shape, weight.shape
            )));
        };
        if c != wc {
            return Err(Error::ShapeMismatch(format!(
                "{what}: x {:?} has {c} channels but weight {:?} expects {wc}",
                x.shape, weight.shape
            )));
        }
        if let Some(bias) = bias {
            self.check_inputs(what, &[("bias", bias, Some(DType::F32))])?;
            if *bias.shape != [o] {
                return Err(Error::ShapeMismatch(format!(
                    "{what}: bias must be [{o}] (one per output channel of weight {:?}) but it is {:?}",
                    weight.shape, bias.shape
                )));
            }
        }
        let (ho, wo) = window_out(what, (h, w), (kh, kw), stride, padding)?;
        let out_shape = vec![n, o, ho, wo];
        let outputs = product([n, o, ho, wo]);
        let mut flops = product([n, o, ho, wo, c, kh, kw, 2]);
        let mut inputs = vec![x, weight];
        if let Some(bias) = bias {
            flops = flops.saturating_add(outputs);
            inputs.push(bias);
        }
        self.op(
            what,
            Op::Conv2d {
                stride,
                padding,
                has_bias: bias.is_some(),
            },
            &inputs,
            out_shape,
            DType::F32,
            flops,
        )
    }

    /// 2-D max pooling, NCHW; padded positions never win.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 or non-rank-4 x, an empty
    /// image, a zero kernel size or stride, or padding above half the kernel
    /// (a window must hold a real element); [`Error::ShapeMismatch`] if the
    /// kernel is larger than the padded input; quota and budget errors as usual.
    pub fn max_pool2d(
        &mut self,
        x: &Tensor,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor, Error> {
        let what = "max_pool2d";
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        let &[n, c, h, w] = &*x.shape else {
            return Err(Error::InvalidArgument(format!(
                "{what}: x must be [n, c, h, w] but it is {:?}",
                x.shape
            )));
        };
        if h == 0 || w == 0 {
            return Err(Error::InvalidArgument(format!(
                "{what}: x {:?} has an empty image; height and width must be at least 1",
                x.shape
            )));
        }
        if padding.0 > kernel.0 / 2 || padding.1 > kernel.1 / 2 {
            return Err(Error::InvalidArgument(format!(
                "{what}: padding {padding:?} is more than half the kernel {kernel:?}; a window could hold only padding"
            )));
        }
        let (ho, wo) = window_out(what, (h, w), kernel, stride, padding)?;
        let flops = product([n, c, ho, wo, kernel.0, kernel.1]);
        self.op(
            what,
            Op::MaxPool2d {
                kernel,
                stride,
                padding,
            },
            &[x],
            vec![n, c, ho, wo],
            DType::F32,
            flops,
        )
    }

    /// Converts between dtypes: f32 → i32 truncates toward zero and
    /// saturates (NaN → 0); i32 → f32 rounds to nearest even.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a tensor of another session; quota and
    /// budget errors as usual.
    pub fn cast(&mut self, x: &Tensor, to: DType) -> Result<Tensor, Error> {
        let what = "cast";
        self.check_inputs(what, &[("x", x, None)])?;
        let flops = if x.dtype == to { 0 } else { x.numel() as u128 };
        self.op(what, Op::Cast { to }, &[x], x.shape.to_vec(), to, flops)
    }

    // ---- shared machinery ------------------------------------------------------

    /// Validates the output, charges and launches an op that reads its inputs whole.
    fn op(
        &mut self,
        what: &'static str,
        op: Op,
        inputs: &[&Tensor],
        out_shape: Vec<usize>,
        out_dtype: DType,
        flops: u128,
    ) -> Result<Tensor, Error> {
        let read = inputs.iter().map(|t| t.byte_len() as u128).sum();
        self.op_with_read(what, op, inputs, out_shape, out_dtype, flops, read)
    }

    /// As [`Session::op`] for an op that reads `read` bytes of its inputs.
    #[allow(clippy::too_many_arguments)]
    fn op_with_read(
        &mut self,
        what: &'static str,
        op: Op,
        inputs: &[&Tensor],
        out_shape: Vec<usize>,
        out_dtype: DType,
        flops: u128,
        read: u128,
    ) -> Result<Tensor, Error> {
        let (_, out_bytes) = self.checked_size(what, &out_shape, out_dtype)?;
        let work = to_work(what, flops, read + out_bytes as u128)?;
        self.charge(what, work, out_bytes)?;
        let start = Instant::now();
        let t = self.launch(&op, inputs, out_shape, out_dtype, out_bytes)?;
        self.record(what, start, work.flops);
        Ok(t)
    }

    /// The element count and byte size of `shape`, refusing ranks past the
    /// limit and counts that overflow (a guest controls every dimension).
    fn checked_size(
        &self,
        what: &str,
        shape: &[usize],
        dtype: DType,
    ) -> Result<(usize, u64), Error> {
        self.check_rank(what, shape)?;
        let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let bytes = numel
            .and_then(|n| u64::try_from(n).ok())
            .and_then(|n| n.checked_mul(dtype.size() as u64));
        match (numel, bytes) {
            (Some(numel), Some(bytes)) => Ok((numel, bytes)),
            _ => Err(Error::InvalidArgument(format!(
                "{what}: shape {shape:?} has more elements than can be addressed"
            ))),
        }
    }

    fn check_rank(&self, what: &str, shape: &[usize]) -> Result<(), Error> {
        if shape.len() > self.limits.max_rank {
            return Err(Error::InvalidArgument(format!(
                "{what}: shape {shape:?} has rank {}, above this job's limit of {}",
                shape.len(),
                self.limits.max_rank
            )));
        }
        Ok(())
    }

    /// Checks an upload of `len` elements as `shape` and charges it; returns its bytes.
    fn check_upload(
        &mut self,
        what: &str,
        shape: &[usize],
        len: usize,
        dtype: DType,
    ) -> Result<u64, Error> {
        let (numel, bytes) = self.checked_size(what, shape, dtype)?;
        if len != numel {
            return Err(Error::ShapeMismatch(format!(
                "{what}: shape {shape:?} holds {numel} elements but {len} were given"
            )));
        }
        // Reads the guest's data and writes the tensor.
        let work = to_work(what, 0, 2 * bytes as u128)?;
        self.charge(what, work, bytes)?;
        Ok(bytes)
    }

    /// Refuses a tensor made by another session (its buffer may live on another device).
    fn check_owned(&self, what: &str, name: &str, t: &Tensor) -> Result<(), Error> {
        if !Arc::ptr_eq(&t.buffer.live_bytes, &self.live_bytes) {
            return Err(Error::InvalidArgument(format!(
                "{what}: {name} belongs to another session"
            )));
        }
        Ok(())
    }

    /// Checks each named input's session and, where given, its dtype.
    fn check_inputs(
        &self,
        what: &str,
        inputs: &[(&str, &Tensor, Option<DType>)],
    ) -> Result<(), Error> {
        for &(name, t, dtype) in inputs {
            self.check_owned(what, name, t)?;
            if let Some(want) = dtype
                && t.dtype != want
            {
                return Err(Error::InvalidArgument(format!(
                    "{what}: {name} must be {} but it is {}; cast it first",
                    want.name(),
                    t.dtype.name()
                )));
            }
        }
        Ok(())
    }

    fn check_read(&self, what: &str, x: &Tensor, dtype: DType) -> Result<(), Error> {
        self.check_inputs(what, &[("x", x, Some(dtype))])
    }

    /// Charges `work` and reserves `out_bytes` of quota, or refuses.
    fn charge(&mut self, what: &str, work: Work, out_bytes: u64) -> Result<(), Error> {
        // The quota comes first: a tensor that can never fit is an error the
        // guest may handle (e.g. by retrying smaller), and it costs no work.
        let live = self.live_bytes();
        if live.saturating_add(out_bytes) > self.limits.memory_quota {
            return Err(Error::QuotaExceeded(format!(
                "{what} needs {out_bytes} bytes with {live} bytes alive; the job's quota is {} bytes",
                self.limits.memory_quota
            )));
        }
        let units = self.work.units().saturating_add(work.units());
        if units > self.limits.work_budget {
            return Err(Error::WorkBudgetExhausted(format!(
                "{what} needs {} work units; {} of the budget of {} are used",
                work.units(),
                self.work.units(),
                self.limits.work_budget
            )));
        }
        self.work.flops = self.work.flops.saturating_add(work.flops);
        self.work.bytes = self.work.bytes.saturating_add(work.bytes);
        Ok(())
    }

    /// Runs a validated op and wraps its buffer as a tensor holding quota.
    fn launch(
        &mut self,
        op: &Op,
        inputs: &[&Tensor],
        out_shape: Vec<usize>,
        out_dtype: DType,
        out_bytes: u64,
    ) -> Result<Tensor, Error> {
        let refs: Vec<TensorRef<'_>> = inputs.iter().map(|t| tensor_ref(t)).collect();
        let buffer = self
            .device
            .backend()
            .execute(op, &refs, &out_shape, out_dtype)?;
        Ok(self.adopt(buffer, out_shape, out_dtype, out_bytes))
    }

    /// Wraps a fresh backend buffer of `bytes` (whose quota was already checked).
    fn adopt(
        &self,
        buffer: Box<dyn crate::backend::DeviceBuffer>,
        shape: Vec<usize>,
        dtype: DType,
        bytes: u64,
    ) -> Tensor {
        self.adopt_shared(Arc::from(buffer), shape, dtype, bytes)
    }

    /// Wraps a backend buffer, possibly shared with other sessions, charging
    /// this session `bytes` of quota while its handles live.
    fn adopt_shared(
        &self,
        buffer: Arc<dyn crate::backend::DeviceBuffer>,
        shape: Vec<usize>,
        dtype: DType,
        bytes: u64,
    ) -> Tensor {
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

/// FLOPs charged for one evaluation of a canonical function (`exp`, `log`,
/// `tanh`, `erf`): a fixed number, so work depends on shapes alone.
pub const TRANSCENDENTAL_FLOPS: u64 = 16;

/// FLOPs per element of a unary op (see SEMANTICS.md).
pub fn unary_flops(op: UnaryOp) -> u64 {
    match op {
        UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Sqrt => 1,
        UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh => TRANSCENDENTAL_FLOPS,
        // -x, exp, 1 + e, 1 / d
        UnaryOp::Sigmoid => TRANSCENDENTAL_FLOPS + 3,
        // x · (1/√2), erf, 0.5 · x, 1 + e, h · t
        UnaryOp::Gelu => TRANSCENDENTAL_FLOPS + 4,
    }
}

fn tensor_ref(t: &Tensor) -> TensorRef<'_> {
    TensorRef {
        shape: &t.shape,
        dtype: t.dtype,
        buffer: &*t.buffer.buffer,
    }
}

fn too_large(what: &str) -> Error {
    Error::InvalidArgument(format!("{what}: the op is too large to meter"))
}

/// The product of `factors`, saturating: a guest can make dimensions whose
/// product overflows even u128 (zero-size tensors may have huge other
/// dimensions), and a saturated count is then refused by [`to_work`].
fn product(factors: impl IntoIterator<Item = usize>) -> u128 {
    factors
        .into_iter()
        .fold(1u128, |acc, f| acc.saturating_mul(f as u128))
}

/// Work from wide counts, refusing what does not fit the meter.
fn to_work(what: &str, flops: u128, bytes: u128) -> Result<Work, Error> {
    match (u64::try_from(flops), u64::try_from(bytes)) {
        (Ok(flops), Ok(bytes)) => Ok(Work { flops, bytes }),
        _ => Err(too_large(what)),
    }
}

/// The numpy broadcast of two shapes.
fn broadcast_shapes(what: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>, Error> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < a.len() { a[a.len() - 1 - i] } else { 1 };
        let db = if i < b.len() { b[b.len() - 1 - i] } else { 1 };
        out[rank - 1 - i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            (x, y) => {
                return Err(Error::ShapeMismatch(format!(
                    "{what}: shapes {a:?} and {b:?} do not broadcast: dimension -{} is {x} vs {y}; each pair must be equal or one of them 1",
                    i + 1
                )));
            }
        };
    }
    Ok(out)
}

/// (rows, n) for an op over the last axis of `x`, which needs rank ≥ 1.
fn last_axis(what: &str, x: &Tensor) -> Result<(usize, usize), Error> {
    match x.shape.split_last() {
        Some((&n, outer)) => Ok((outer.iter().product(), n)),
        None => Err(Error::InvalidArgument(format!(
            "{what}: x is a scalar; the op works along the last axis, so reshape x to [1]"
        ))),
    }
}

/// The length of `axis` of `x`.
fn axis_len(what: &str, x: &Tensor, axis: usize) -> Result<usize, Error> {
    x.shape.get(axis).copied().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{what}: axis {axis} does not exist in x {:?} (rank {})",
            x.shape,
            x.shape.len()
        ))
    })
}

/// A per-column parameter (gamma, beta) must be `[n]` for x `[..., n]`.
fn row_param(what: &str, name: &str, p: &Tensor, x: &Tensor) -> Result<(), Error> {
    let n = x.shape.last().copied().unwrap_or(0);
    if *p.shape != [n] {
        return Err(Error::ShapeMismatch(format!(
            "{what}: {name} must be [{n}] (the last dimension of x {:?}) but it is {:?}",
            x.shape, p.shape
        )));
    }
    Ok(())
}

fn check_eps(what: &str, eps: f32) -> Result<(), Error> {
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(Error::InvalidArgument(format!(
            "{what}: eps is {eps}; it must be finite and ≥ 0 (1e-5 and 1e-12 are usual)"
        )));
    }
    Ok(())
}

/// The output height and width of a sliding window (conv2d, max-pool2d).
fn window_out(
    what: &str,
    (h, w): (usize, usize),
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    (ph, pw): (usize, usize),
) -> Result<(usize, usize), Error> {
    if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
        return Err(Error::InvalidArgument(format!(
            "{what}: kernel ({kh}, {kw}) and stride ({sh}, {sw}) must be at least 1"
        )));
    }
    let side = |size: usize, k: usize, s: usize, p: usize| -> Result<usize, Error> {
        let padded = p
            .checked_mul(2)
            .and_then(|p2| size.checked_add(p2))
            .ok_or_else(|| too_large(what))?;
        if padded < k {
            return Err(Error::ShapeMismatch(format!(
                "{what}: the kernel ({kh}, {kw}) is larger than the padded input ({} + 2·{ph}, {} + 2·{pw})",
                h, w
            )));
        }
        Ok((padded - k) / s + 1)
    };
    Ok((side(h, kh, sh, ph)?, side(w, kw, sw, pw)?))
}

fn unary_name(op: UnaryOp) -> &'static str {
    match op {
        UnaryOp::Neg => "neg",
        UnaryOp::Abs => "abs",
        UnaryOp::Relu => "relu",
        UnaryOp::Gelu => "gelu",
        UnaryOp::Tanh => "tanh",
        UnaryOp::Sigmoid => "sigmoid",
        UnaryOp::Exp => "exp",
        UnaryOp::Log => "log",
        UnaryOp::Sqrt => "sqrt",
    }
}

fn binary_name(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::Div => "div",
        BinaryOp::Max => "max",
        BinaryOp::Min => "min",
    }
}

fn reduce_name(op: ReduceOp) -> &'static str {
    match op {
        ReduceOp::Sum => "reduce_sum",
        ReduceOp::Mean => "reduce_mean",
        ReduceOp::Max => "reduce_max",
        ReduceOp::Min => "reduce_min",
    }
}

/// The first little-endian i64 in `bytes` that does not fit in i32.
fn first_i64_outside_i32(bytes: &[u8]) -> Option<(usize, i64)> {
    bytes.chunks_exact(8).enumerate().find_map(|(at, c)| {
        let v = i64::from_le_bytes(c.try_into().ok()?);
        i32::try_from(v).is_err().then_some((at, v))
    })
}
