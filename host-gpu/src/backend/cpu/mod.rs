//! The CPU reference backend.
//!
//! Its kernels are the executable form of `SEMANTICS.md`: every other backend
//! must reproduce their bits. They are split by op family (`elementwise`,
//! `reduce`, `norm`, `layout`, `matmul`, `conv`, `encode`); the per-element
//! programs they share live in `scalar`.
//!
//! Parallelism (a [`team::Team`] of threads per backend) is only ever
//! across outputs, never inside one output's reduction, so results do not
//! depend on the thread count. Kernels
//! are compiled for several instruction sets (`simd`) and all give the same
//! bits.

mod attention;
mod conv;
mod elementwise;
mod encode;
mod layout;
mod matmul;
mod norm;
mod panel_memory;
mod reduce;
pub(crate) mod scalar;
pub(crate) mod simd;
mod team;

use std::any::Any;
use std::sync::Mutex;

use team::Team;

use crate::backend::{Backend, BackendInfo, DeviceBuffer, TensorRef};
use crate::error::Error;
use crate::op::{Op, SourceEncoding};
use crate::tensor::DType;
pub use simd::CpuSimd;

/// A tensor's elements in host memory.
#[derive(Debug)]
pub(crate) enum Values {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

impl Values {
    fn dtype(&self) -> DType {
        match self {
            Values::F32(_) => DType::F32,
            Values::I32(_) => DType::I32,
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::I32(v) => v.len(),
        }
    }
}

/// Host memory holding a tensor: its elements, and (filled on demand) the
/// packed panels of the matrix when it is a matmul's B operand again and
/// again, as a model's weights are. Tensors are immutable, so the panels
/// never go stale; they are freed with the tensor.
#[derive(Debug)]
pub(crate) struct CpuBuffer {
    values: Values,
    packed: matmul::PackCache,
}

impl From<Values> for CpuBuffer {
    fn from(values: Values) -> CpuBuffer {
        CpuBuffer {
            values,
            packed: matmul::PackCache::default(),
        }
    }
}

impl DeviceBuffer for CpuBuffer {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The reference backend: always built, always available.
#[derive(Debug)]
pub(crate) struct CpuBackend {
    threads: Option<usize>,
    /// The threads ops run on; `None` when only the caller's is used (one
    /// thread asked for, or none could be started).
    team: Option<Team>,
    /// Why no team could be built (shown in [`Backend::info`]).
    team_error: Option<String>,
    simd: CpuSimd,
}

impl CpuBackend {
    /// A backend on the default SIMD path ([`CpuSimd::from_env`]).
    pub(crate) fn new(threads: Option<usize>) -> CpuBackend {
        CpuBackend::with_simd(threads, CpuSimd::from_env())
    }

    /// A backend on `simd`, which the caller has checked is supported;
    /// `threads: None` uses every core.
    pub(crate) fn with_simd(threads: Option<usize>, simd: CpuSimd) -> CpuBackend {
        let simd = if simd.is_supported() {
            simd
        } else {
            CpuSimd::Scalar
        };
        let wanted = threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        let (team, team_error) = if wanted == 1 {
            (None, None)
        } else {
            match Team::new(wanted) {
                Ok(team) => (Some(team), None),
                // One thread computes the same bits; only speed differs.
                Err(e) => (None, Some(e)),
            }
        };
        CpuBackend {
            threads,
            team,
            team_error,
            simd,
        }
    }

    fn threads(&self) -> usize {
        self.ctx().threads()
    }

    /// What the kernels of one op run with.
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            simd: self.simd,
            team: self.team.as_ref(),
        }
    }
}

/// What a kernel needs to know about where it runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) simd: CpuSimd,
    /// The threads an op may use; `None` runs it on the calling thread.
    team: Option<&'a Team>,
}

/// Below this many element-operations an op runs on the calling thread.
/// Handing work to the team costs about a microsecond, but splitting a
/// small op also leaves half its output in another core's cache for the
/// next op to fetch: at batch size 1 (ops of a few thousand elements)
/// 2¹⁴ made layer norms and permutes slower on two threads than on one;
/// 2¹⁶ measured best (2¹⁸ and 2²⁰ lost at batch size 16).
const PAR_MIN_COST: usize = 1 << 16;

/// How much of an output [`Ctx::new_rows`] zeroes ahead of its kernel (it
/// should still be in L1 when the kernel writes it).
const PIECE_BYTES: usize = 16 << 10;

impl Ctx<'_> {
    /// How many threads an op may use (the caller's included).
    pub(crate) fn threads(&self) -> usize {
        self.team.map_or(1, Team::threads)
    }

    /// This context on the calling thread alone.
    pub(crate) fn serial(&self) -> Self {
        Ctx {
            simd: self.simd,
            team: None,
        }
    }

    /// This context, or [`Ctx::serial`] for work of fewer than
    /// [`PAR_MIN_COST`] element-operations in all.
    pub(crate) fn for_cost(&self, cost: usize) -> Self {
        if cost < PAR_MIN_COST {
            self.serial()
        } else {
            *self
        }
    }

    /// Runs `f(first_row, chunk)` over chunks of whole rows of `out` (rows of
    /// `row_len` elements, each costing about `cost_per_row`), in parallel
    /// when it pays. Which rows share a chunk never changes a result.
    pub(crate) fn rows<T: Send>(
        &self,
        out: &mut [T],
        row_len: usize,
        cost_per_row: usize,
        f: impl Fn(usize, &mut [T]) + Sync + Send,
    ) {
        if out.is_empty() || row_len == 0 {
            return;
        }
        let rows = out.len() / row_len;
        let cost = cost_per_row.max(1);
        if self.threads() <= 1 || rows <= 1 || rows.saturating_mul(cost) < PAR_MIN_COST {
            f(0, out);
            return;
        }
        let min_rows = (PAR_MIN_COST / 4).div_ceil(cost).max(1);
        let per_chunk = rows.div_ceil(self.threads() * 4).max(min_rows);
        // Each chunk is taken by exactly one task (its lock is never contended).
        let chunks: Vec<Mutex<&mut [T]>> = out
            .chunks_mut(per_chunk * row_len)
            .map(Mutex::new)
            .collect();
        self.tasks(chunks.len(), |i| {
            let mut chunk = chunks[i].lock().unwrap_or_else(|p| p.into_inner());
            f(i * per_chunk, &mut chunk);
        });
    }

    /// A new vector of `n` elements (rows of `row_len`, each costing about
    /// `cost_per_row`), written by `f(first_row, chunk)` as in [`Ctx::rows`].
    ///
    /// Each task zeroes a piece of its chunk just before `f` writes it,
    /// instead of the caller zeroing all of it first: the memory is
    /// touched once, while in cache, and on every thread — a whole-output
    /// memset ran on the calling thread alone and cost as much as a small op.
    pub(crate) fn new_rows<T: Copy + Default + Send + Sync>(
        &self,
        n: usize,
        row_len: usize,
        cost_per_row: usize,
        f: impl Fn(usize, &mut [T]) + Sync + Send,
    ) -> Result<Vec<T>, Error> {
        if n == 0 || row_len == 0 {
            return alloc(n);
        }
        let mut v: Vec<T> = uninit(n)?;
        let rows_per_piece = (PIECE_BYTES / (row_len * std::mem::size_of::<T>()).max(1)).max(1);
        let spare = &mut v.spare_capacity_mut()[..n];
        self.rows(spare, row_len, cost_per_row, |first, chunk| {
            for (i, piece) in chunk.chunks_mut(rows_per_piece * row_len).enumerate() {
                piece.fill(std::mem::MaybeUninit::new(T::default()));
                // SAFETY: every element of `piece` was initialised just above,
                // and `MaybeUninit<T>` has the layout of `T`.
                let piece = unsafe { &mut *(std::ptr::from_mut(piece) as *mut [T]) };
                f(first + i * rows_per_piece, piece);
            }
        });
        // SAFETY: `rows` hands every element of `spare` (all `n`) to exactly
        // one call, which initialised it before anything read it.
        unsafe { v.set_len(n) };
        Ok(v)
    }

    /// A new vector of `n` elements written by `f(first_row, chunk)` as in
    /// [`Ctx::rows`], for kernels that copy into every element (data
    /// movement): unlike [`Ctx::new_rows`], nothing is zeroed first.
    ///
    /// # Safety
    ///
    /// `f` must initialise every element of each chunk it is given.
    pub(crate) unsafe fn copied_rows<T: Send + Sync>(
        &self,
        n: usize,
        row_len: usize,
        cost_per_row: usize,
        f: impl Fn(usize, &mut [std::mem::MaybeUninit<T>]) + Sync + Send,
    ) -> Result<Vec<T>, Error> {
        if n > 0 && (row_len == 0 || !n.is_multiple_of(row_len)) {
            return Err(Error::Device(format!(
                "cpu: an output of {n} elements in rows of {row_len}"
            )));
        }
        let mut v: Vec<T> = uninit(n)?;
        if n > 0 {
            self.rows(&mut v.spare_capacity_mut()[..n], row_len, cost_per_row, f);
        }
        // SAFETY: `rows` hands every element of the first `n` to exactly
        // one call of `f`, which initialised it (the caller's promise).
        unsafe { v.set_len(n) };
        Ok(v)
    }

    /// Runs `f(i)` for `i in 0..n`, in parallel when there is more than one
    /// task and more than one thread.
    pub(crate) fn tasks(&self, n: usize, f: impl Fn(usize) + Sync + Send) {
        match self.team {
            Some(team) if n > 1 => team.run(n, &f),
            _ => (0..n).for_each(f),
        }
    }
}

/// A zeroed vector of `n` elements, or a device fault if the host is out of memory
/// (the quota was checked before; running out here says nothing about the job).
pub(crate) fn alloc<T: Copy + Default>(n: usize) -> Result<Vec<T>, Error> {
    let mut v = uninit(n)?;
    v.resize(n, T::default());
    Ok(v)
}

/// An empty vector with room for `n` elements (to be written through
/// `spare_capacity_mut`), or a device fault if the host is out of memory.
pub(crate) fn uninit<T>(n: usize) -> Result<Vec<T>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|e| Error::Device(format!("cpu: cannot allocate {n} elements: {e}")))?;
    Ok(v)
}

/// The number of elements of `shape`, or a device fault on overflow (the
/// session checked every shape, so this is a bug in the caller).
pub(crate) fn numel(shape: &[usize]) -> Result<usize, Error> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::Device(format!("cpu: shape {shape:?} overflows")))
}

/// The CPU buffer behind `x`, checked against its shape.
fn cpu_buffer<'a>(x: &TensorRef<'a>) -> Result<&'a CpuBuffer, Error> {
    let buf = x
        .buffer
        .as_any()
        .downcast_ref::<CpuBuffer>()
        .ok_or_else(|| Error::Device("cpu: got a buffer of another backend".into()))?;
    if buf.values.dtype() != x.dtype || buf.values.len() != numel(x.shape)? {
        return Err(Error::Device(format!(
            "cpu: buffer holds {} {} elements but the tensor is {} {:?}",
            buf.values.len(),
            buf.values.dtype().name(),
            x.dtype.name(),
            x.shape
        )));
    }
    Ok(buf)
}

/// The elements behind `x`, checked against its shape.
fn buffer<'a>(x: &TensorRef<'a>) -> Result<&'a Values, Error> {
    Ok(&cpu_buffer(x)?.values)
}

/// The f32 elements of `x`.
pub(crate) fn f32s<'a>(x: &TensorRef<'a>) -> Result<&'a [f32], Error> {
    match buffer(x)? {
        Values::F32(v) => Ok(v),
        Values::I32(_) => Err(Error::Device("cpu: expected an f32 buffer".into())),
    }
}

/// The i32 elements of `x`.
pub(crate) fn i32s<'a>(x: &TensorRef<'a>) -> Result<&'a [i32], Error> {
    match buffer(x)? {
        Values::I32(v) => Ok(v),
        Values::F32(_) => Err(Error::Device("cpu: expected an i32 buffer".into())),
    }
}

/// Input `i` of an op.
fn input<'a, 'b>(inputs: &'b [TensorRef<'a>], i: usize) -> Result<&'b TensorRef<'a>, Error> {
    inputs
        .get(i)
        .ok_or_else(|| Error::Device(format!("cpu: op is missing input {i}")))
}

impl Backend for CpuBackend {
    fn info(&self) -> BackendInfo {
        let mut device = format!(
            "{} {}, {} thread{}",
            std::env::consts::ARCH,
            self.simd,
            self.threads(),
            if self.threads() == 1 { "" } else { "s" }
        );
        if let (Some(asked), Some(err)) = (self.threads, &self.team_error) {
            device.push_str(&format!(" (asked for {asked}: {err})"));
        }
        BackendInfo {
            kind: "cpu".into(),
            device,
        }
    }

    fn upload_f32(&self, data: &[f32]) -> Result<Box<dyn DeviceBuffer>, Error> {
        // Every f32 a tensor holds is canonical, so copies of it are too.
        let mut v = alloc::<f32>(data.len())?;
        for (o, &x) in v.iter_mut().zip(data) {
            *o = scalar::canon(x);
        }
        Ok(Box::new(CpuBuffer::from(Values::F32(v))))
    }

    fn upload_i32(&self, data: &[i32]) -> Result<Box<dyn DeviceBuffer>, Error> {
        let mut v = alloc::<i32>(data.len())?;
        v.copy_from_slice(data);
        Ok(Box::new(CpuBuffer::from(Values::I32(v))))
    }

    fn upload_encoded(
        &self,
        bytes: &[u8],
        encoding: SourceEncoding,
        dtype: DType,
    ) -> Result<Box<dyn DeviceBuffer>, Error> {
        Ok(Box::new(CpuBuffer {
            values: encode::decode(bytes, encoding, dtype)?,
            packed: matmul::PackCache::eager(),
        }))
    }

    fn read_f32(&self, x: TensorRef<'_>) -> Result<Vec<f32>, Error> {
        Ok(f32s(&x)?.to_vec())
    }

    fn read_i32(&self, x: TensorRef<'_>) -> Result<Vec<i32>, Error> {
        Ok(i32s(&x)?.to_vec())
    }

    fn first_index_out_of_range(
        &self,
        indices: TensorRef<'_>,
        bound: usize,
    ) -> Result<Option<(usize, i32)>, Error> {
        Ok(crate::backend::first_index_outside(i32s(&indices)?, bound))
    }

    fn execute(
        &self,
        op: &Op,
        inputs: &[TensorRef<'_>],
        out_shape: &[usize],
        out_dtype: DType,
    ) -> Result<Box<dyn DeviceBuffer>, Error> {
        if numel(out_shape)? == 0 {
            // Nothing to compute. Returning here also keeps kernels from
            // deriving strides of zero-size inputs, whose other dimensions may
            // be as large as a guest likes (their products can overflow).
            return Ok(Box::new(CpuBuffer::from(match out_dtype {
                DType::F32 => Values::F32(Vec::new()),
                DType::I32 => Values::I32(Vec::new()),
            })));
        }
        let out = run(&self.ctx(), op, inputs, out_shape)?;
        if out.dtype() != out_dtype || out.len() != numel(out_shape)? {
            return Err(Error::Device(format!(
                "cpu: {op:?} produced {} {} elements for {} {out_shape:?}",
                out.len(),
                out.dtype().name(),
                out_dtype.name()
            )));
        }
        Ok(Box::new(CpuBuffer::from(out)))
    }
}

/// Executes one op.
fn run(
    ctx: &Ctx<'_>,
    op: &Op,
    inputs: &[TensorRef<'_>],
    out_shape: &[usize],
) -> Result<Values, Error> {
    let x = || input(inputs, 0);
    Ok(match op {
        Op::Fill { value } => Values::F32(elementwise::fill(numel(out_shape)?, *value)?),
        Op::Matmul {
            transpose_a,
            transpose_b,
        } => Values::F32(matmul::matmul(
            ctx,
            x()?,
            input(inputs, 1)?,
            (*transpose_a, *transpose_b),
            None,
            out_shape,
        )?),
        Op::Linear {
            transpose_b,
            activation,
        } => Values::F32(matmul::matmul(
            ctx,
            x()?,
            input(inputs, 1)?,
            (false, *transpose_b),
            Some((f32s(input(inputs, 2)?)?, *activation)),
            out_shape,
        )?),
        Op::Attention {
            lengths,
            heads,
            scale,
        } => Values::F32(attention::attention(
            ctx,
            x()?,
            input(inputs, 1)?,
            input(inputs, 2)?,
            lengths,
            *heads,
            *scale,
        )?),
        Op::Unary(u) => Values::F32(elementwise::unary(ctx, *u, f32s(x()?)?)?),
        Op::Binary(b) => Values::F32(elementwise::binary(
            ctx,
            *b,
            x()?,
            input(inputs, 1)?,
            out_shape,
        )?),
        Op::Scale { factor } => Values::F32(elementwise::scale(ctx, f32s(x()?)?, *factor)?),
        Op::Reduce(r) => Values::F32(reduce::reduce(ctx, *r, x()?)?),
        Op::Softmax => Values::F32(norm::softmax(ctx, x()?)?),
        Op::LayerNorm { eps } => Values::F32(norm::layer_norm(
            ctx,
            x()?,
            f32s(input(inputs, 1)?)?,
            f32s(input(inputs, 2)?)?,
            *eps,
        )?),
        Op::RmsNorm { eps } => {
            Values::F32(norm::rms_norm(ctx, x()?, f32s(input(inputs, 1)?)?, *eps)?)
        }
        Op::L2Normalize { eps } => Values::F32(norm::l2_normalize(ctx, x()?, *eps)?),
        Op::Gather => layout::gather(ctx, x()?, i32s(input(inputs, 1)?)?)?,
        Op::Permute { axes } => layout::permute(ctx, x()?, axes)?,
        Op::Slice { axis, start, end } => layout::slice(ctx, x()?, *axis, *start, *end)?,
        Op::Concat { axis } => layout::concat(ctx, inputs, *axis, out_shape)?,
        Op::MaskedMeanPool => Values::F32(reduce::masked_mean_pool(
            ctx,
            x()?,
            f32s(input(inputs, 1)?)?,
        )?),
        Op::Argmax => Values::I32(reduce::argmax(ctx, x()?)?),
        Op::Conv2d {
            stride,
            padding,
            has_bias,
        } => {
            let bias = if *has_bias {
                Some(f32s(input(inputs, 2)?)?)
            } else {
                None
            };
            Values::F32(conv::conv2d(
                ctx,
                x()?,
                input(inputs, 1)?,
                bias,
                *stride,
                *padding,
                out_shape,
            )?)
        }
        Op::MaxPool2d {
            kernel,
            stride,
            padding,
        } => Values::F32(conv::max_pool2d(
            ctx,
            x()?,
            *kernel,
            *stride,
            *padding,
            out_shape,
        )?),
        Op::Cast { to } => elementwise::cast(ctx, x()?, *to)?,
    })
}
