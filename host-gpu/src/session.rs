//! One job's view of a device: the order of checks, the work meter, the
//! memory quota, and the machinery every op goes through.
//!
//! Each op family lives in `crate::ops` (`ops/matmul.rs`, `ops/norm.rs`,
//! …) as an `impl Session` block that owns the family's shape rules, its
//! work formula and its public methods. A family method checks its inputs
//! ([`Session::check_inputs`]), computes the output shape and FLOPs from
//! shapes alone, and hands them to [`Session::op`]; from there this file
//! does the rest in a fixed order: the output's size (rank limit,
//! overflow), the quota, then the work budget ([`Session::charge`]), and
//! only then the launch, the quota held by the new tensor and the timing.
//! A refused op charges nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::backend::{Device, TensorRef};
use crate::dtype::DType;
use crate::error::Error;
use crate::op::Op;
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
    pub(crate) fn record(&mut self, what: &'static str, start: Instant, flops: u64) {
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

    // ---- shared machinery: what every op family calls -------------------------

    /// Validates the output, charges and launches an op that reads its inputs whole.
    pub(crate) fn op(
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
    pub(crate) fn op_with_read(
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
    pub(crate) fn checked_size(
        &self,
        what: &str,
        shape: &[usize],
        dtype: DType,
    ) -> Result<(usize, u64), Error> {
        self.check_rank(what, shape)?;
        let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let bytes = numel
            .and_then(|n| u64::try_from(n).ok())
            .and_then(|n| dtype.byte_len(n));
        match (numel, bytes) {
            (Some(numel), Some(bytes)) => Ok((numel, bytes)),
            _ => Err(Error::InvalidArgument(format!(
                "{what}: shape {shape:?} has more elements than can be addressed"
            ))),
        }
    }

    pub(crate) fn check_rank(&self, what: &str, shape: &[usize]) -> Result<(), Error> {
        if shape.len() > self.limits.max_rank {
            return Err(Error::InvalidArgument(format!(
                "{what}: shape {shape:?} has rank {}, above this job's limit of {}",
                shape.len(),
                self.limits.max_rank
            )));
        }
        Ok(())
    }

    /// Refuses a tensor made by another session (its buffer may live on another device).
    pub(crate) fn check_owned(&self, what: &str, name: &str, t: &Tensor) -> Result<(), Error> {
        if !Arc::ptr_eq(&t.buffer.live_bytes, &self.live_bytes) {
            return Err(Error::InvalidArgument(format!(
                "{what}: {name} belongs to another session"
            )));
        }
        Ok(())
    }

    /// Checks each named input's session and, where given, its dtype.
    pub(crate) fn check_inputs(
        &self,
        what: &str,
        inputs: &[(&str, &Tensor, Option<DType>)],
    ) -> Result<(), Error> {
        for &(name, t, dtype) in inputs {
            self.check_owned(what, name, t)?;
            if let Some(want) = dtype
                && t.dtype != want
            {
                if t.dtype.is_blocks() {
                    return Err(blocks_refused(what, name, t.dtype));
                }
                return Err(Error::InvalidArgument(format!(
                    "{what}: {name} must be {} but it is {}; cast it first",
                    want.name(),
                    t.dtype.name()
                )));
            }
            if dtype.is_none() && t.dtype.is_blocks() {
                return Err(blocks_refused(what, name, t.dtype));
            }
        }
        Ok(())
    }

    /// Charges `bytes` that the runtime copies between host and guest
    /// outside any op — a readback, an input read, an output written, a log
    /// line — as bytes of work (SEMANTICS.md section 5), or refuses with
    /// [`Error::WorkBudgetExhausted`], charging nothing.
    ///
    /// # Errors
    ///
    /// [`Error::WorkBudgetExhausted`] past the budget.
    pub fn charge_copy(&mut self, what: &str, bytes: u64) -> Result<(), Error> {
        self.charge(what, Work { flops: 0, bytes }, 0)
    }

    /// Adds `bytes` of copies counted only once the run is over (the
    /// captured standard streams, at most twice the job's log cap), even
    /// past the budget: the run is done, and payment is capped by the
    /// escrow anyway.
    pub fn add_copied_after_run(&mut self, bytes: u64) {
        self.work.bytes = self.work.bytes.saturating_add(bytes);
    }

    /// Charges `work` and reserves `out_bytes` of quota, or refuses.
    pub(crate) fn charge(&mut self, what: &str, work: Work, out_bytes: u64) -> Result<(), Error> {
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
    pub(crate) fn adopt(
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
    pub(crate) fn adopt_shared(
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

pub(crate) fn tensor_ref(t: &Tensor) -> TensorRef<'_> {
    TensorRef {
        shape: &t.shape,
        dtype: t.dtype,
        buffer: &*t.buffer.buffer,
    }
}

pub(crate) fn too_large(what: &str) -> Error {
    Error::InvalidArgument(format!("{what}: the op is too large to meter"))
}

/// The product of `factors`, saturating: a guest can make dimensions whose
/// product overflows even u128 (zero-size tensors may have huge other
/// dimensions), and a saturated count is then refused by [`to_work`].
pub(crate) fn product(factors: impl IntoIterator<Item = usize>) -> u128 {
    factors
        .into_iter()
        .fold(1u128, |acc, f| acc.saturating_mul(f as u128))
}

/// Work from wide counts, refusing what does not fit the meter.
pub(crate) fn to_work(what: &str, flops: u128, bytes: u128) -> Result<Work, Error> {
    match (u64::try_from(flops), u64::try_from(bytes)) {
        (Ok(flops), Ok(bytes)) => Ok(Work { flops, bytes }),
        _ => Err(too_large(what)),
    }
}

/// The refusal of a tensor of blocks as an operand of `what`, which only
/// `matmul`/`linear` (as `b`) and `gather` (as the table) read.
pub(crate) fn blocks_refused(what: &str, name: &str, dtype: DType) -> Error {
    Error::InvalidArgument(format!(
        "{what}: {name} is a tensor of {}, which only matmul and linear (as the transposed b) \
         and gather (as the table) read; decode the blocks to f32 to use them here",
        dtype.name()
    ))
}
