//! The CUDA backend: the kernels of `kernels/*.cu` (NVRTC at start), tensors
//! resident on the device, bit for bit the CPU reference (SEMANTICS.md).
//!
//! - `driver.rs`: the real GPU through cudarc (one context per device, shared
//!   by every job; one stream per [`crate::Device`] handle).
//! - `emu.rs`: the same kernels compiled for the host by a C++ compiler and
//!   run on CPU threads, so this file's logic and the kernels' bits are tested
//!   without a GPU (tests/all/cuda_emulated.rs).
//! - `gpu.rs`: the trait both implement; `kernels.rs`: the program and flags.
//!
//! Every output buffer is fully written by its kernel before anything reads
//! it (the one scratch buffer that is not, the gather index check's result,
//! is uploaded), so nothing of one job is ever visible to another.

mod driver;
pub(crate) mod emu;
pub(crate) mod gpu;
pub(crate) mod kernels;

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};

use gpu::{Gpu, Launch, MAX_DIMS, Mem, Param, StridedDims, Window};

use crate::backend::contract::{Backend, BackendInfo, DeviceBuffer, TensorRef};
use crate::dtype::DType;
use crate::error::Error;
use crate::op::{BinaryOp, Op, ReduceOp, SourceEncoding, UnaryOp};

pub(crate) use driver::{compile_ptx, device_count, driver_version, nvrtc_version};

/// Threads per block of the element-wise and row kernels.
const BLOCK: u32 = 256;
/// Rows per block of the row kernels (one warp each): `ASSAY_ROWS_PER_BLOCK`.
const ROWS_PER_BLOCK: u64 = 8;
/// Most blocks of a grid-stride launch (the kernels loop over the rest).
const MAX_BLOCKS: u64 = 1 << 18;
/// Below this many 128×128 output tiles a matmul uses 64×64 tiles, so that
/// small products still spread over every SM.
const BIG_TILE_MIN_TILES: u64 = 264;

/// A tensor's elements in device memory.
#[derive(Debug)]
pub(crate) struct CudaBuffer {
    mem: Mem,
    len: usize,
    dtype: DType,
    /// The backend (stream) that made it.
    owner: u64,
}

impl DeviceBuffer for CudaBuffer {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The CUDA backend over one stream of a GPU (real or emulated).
#[derive(Debug)]
pub(crate) struct CudaBackend {
    gpu: Box<dyn Gpu>,
    id: u64,
    kind: &'static str,
}

impl CudaBackend {
    /// A new stream on CUDA device `ordinal`.
    pub(crate) fn open(ordinal: usize) -> Result<CudaBackend, Error> {
        Ok(CudaBackend::with_gpu(
            Box::new(driver::CudaGpu::open(ordinal)?),
            "cuda",
        ))
    }

    /// The kernels run on the host by the emulator library at `library`.
    pub(crate) fn emulated(library: &std::path::Path) -> Result<CudaBackend, Error> {
        Ok(CudaBackend::with_gpu(
            Box::new(emu::EmuGpu::load(library)?),
            "cuda-emulated",
        ))
    }

    fn with_gpu(gpu: Box<dyn Gpu>, kind: &'static str) -> CudaBackend {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        CudaBackend {
            gpu,
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            kind,
        }
    }

    fn alloc(&self, len: usize, dtype: DType) -> Result<CudaBuffer, Error> {
        let bytes = len
            .checked_mul(dtype.size())
            .ok_or_else(|| Error::Device(format!("cuda: {len} elements overflow")))?;
        Ok(CudaBuffer {
            mem: self.gpu.alloc(bytes)?,
            len,
            dtype,
            owner: self.id,
        })
    }

    fn buffer_from(&self, mem: Mem, len: usize, dtype: DType) -> CudaBuffer {
        CudaBuffer {
            mem,
            len,
            dtype,
            owner: self.id,
        }
    }

    /// The buffer behind `x`, checked against its shape and this backend.
    fn buf<'a>(&self, x: &TensorRef<'a>) -> Result<&'a CudaBuffer, Error> {
        let b = x
            .buffer
            .as_any()
            .downcast_ref::<CudaBuffer>()
            .ok_or_else(|| Error::Device("cuda: got a buffer of another backend".into()))?;
        if b.owner != self.id {
            return Err(Error::Device(
                "cuda: got a buffer of another device handle (stream)".into(),
            ));
        }
        if b.dtype != x.dtype || b.len != numel(x.shape)? {
            return Err(Error::Device(format!(
                "cuda: buffer holds {} {} elements but the tensor is {} {:?}",
                b.len,
                b.dtype.name(),
                x.dtype.name(),
                x.shape
            )));
        }
        Ok(b)
    }

    /// The device address of `x`, which must be f32 (or i32 when `dtype` says so).
    fn ptr(&self, x: &TensorRef<'_>, dtype: DType) -> Result<Param, Error> {
        let b = self.buf(x)?;
        if b.dtype != dtype {
            return Err(Error::Device(format!(
                "cuda: expected an {} buffer, got {}",
                dtype.name(),
                b.dtype.name()
            )));
        }
        Ok(Param::Ptr(b.mem.ptr))
    }

    /// The device address of `x`, any dtype (bit copies).
    fn any_ptr(&self, x: &TensorRef<'_>) -> Result<Param, Error> {
        Ok(Param::Ptr(self.buf(x)?.mem.ptr))
    }

    fn launch(&self, kernel: &'static str, shape: Launch, params: &[Param]) -> Result<(), Error> {
        self.gpu.launch(kernel, shape, params)
    }

    /// `kernel` over `n` elements with a grid-stride loop.
    fn launch_flat(&self, kernel: &'static str, n: u64, params: &[Param]) -> Result<(), Error> {
        if n == 0 {
            return Ok(());
        }
        self.launch(kernel, flat(n), params)
    }

    /// `kernel` with one warp per row over `rows` rows.
    fn launch_rows(&self, kernel: &'static str, rows: u64, params: &[Param]) -> Result<(), Error> {
        if rows == 0 {
            return Ok(());
        }
        let blocks = rows.div_ceil(ROWS_PER_BLOCK).min(MAX_BLOCKS) as u32;
        self.launch(
            kernel,
            Launch {
                grid: [blocks, 1, 1],
                block: [BLOCK, 1, 1],
            },
            params,
        )
    }
}

/// A grid-stride launch over `n` elements.
fn flat(n: u64) -> Launch {
    Launch {
        grid: [
            n.div_ceil(u64::from(BLOCK)).clamp(1, MAX_BLOCKS) as u32,
            1,
            1,
        ],
        block: [BLOCK, 1, 1],
    }
}

/// The number of elements of `shape`, or a device fault on overflow (the
/// session checked every shape, so this is a bug in the caller).
fn numel(shape: &[usize]) -> Result<usize, Error> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::Device(format!("cuda: shape {shape:?} overflows")))
}

fn input<'a, 'b>(inputs: &'b [TensorRef<'a>], i: usize) -> Result<&'b TensorRef<'a>, Error> {
    inputs
        .get(i)
        .ok_or_else(|| Error::Device(format!("cuda: op is missing input {i}")))
}

fn u64of(n: usize) -> u64 {
    n as u64
}

fn i64of(n: usize) -> i64 {
    n as i64
}

/// Element strides of `shape` (row-major) seen from an output of `rank`
/// dims: missing leading dims and size-1 dims get 0 (numpy broadcasting).
fn broadcast_strides(shape: &[usize], rank: usize) -> Vec<usize> {
    let mut strides = vec![0; rank];
    let mut stride = 1;
    for (i, &d) in shape.iter().enumerate().rev() {
        strides[rank - shape.len() + i] = if d == 1 { 0 } else { stride };
        stride *= d;
    }
    strides
}

/// Drops size-1 dims and merges neighbours every operand walks contiguously,
/// so kernels see as few dims as possible (at least one).
fn coalesce(dims: &[usize], strides: &[Vec<usize>; 2]) -> (Vec<usize>, [Vec<usize>; 2]) {
    let mut out: Vec<usize> = Vec::new();
    let mut st: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    for (i, &d) in dims.iter().enumerate() {
        if d == 1 {
            continue;
        }
        let merge = !out.is_empty()
            && (0..2).all(|o| st[o].last().is_some_and(|&prev| prev == strides[o][i] * d));
        if merge {
            if let Some(last) = out.last_mut() {
                *last *= d;
            }
            for o in 0..2 {
                if let Some(prev) = st[o].last_mut() {
                    *prev = strides[o][i];
                }
            }
        } else {
            out.push(d);
            for o in 0..2 {
                st[o].push(strides[o][i]);
            }
        }
    }
    if out.is_empty() {
        out.push(1);
        st[0].push(0);
        st[1].push(0);
    }
    (out, st)
}

/// Calls `f(dims, n, base0, base1, base_out)` for launches covering the
/// row-major index space `dims` (with operand strides `strides`): one launch
/// when the rank fits a kernel, else one per index of the outer dimensions.
fn strided_launches(
    dims: &[usize],
    strides: &[Vec<usize>; 2],
    mut f: impl FnMut(StridedDims, u64, i64, i64, i64) -> Result<(), Error>,
) -> Result<(), Error> {
    let split = dims.len().saturating_sub(MAX_DIMS);
    let (outer, inner) = dims.split_at(split);
    let mut d = StridedDims {
        rank: inner.len() as i32,
        ..StridedDims::default()
    };
    for (i, &dim) in inner.iter().enumerate() {
        d.dims[i] = i64of(dim);
        d.s0[i] = i64of(strides[0][split + i]);
        d.s1[i] = i64of(strides[1][split + i]);
    }
    let n: usize = numel(inner)?;
    let launches: usize = numel(outer)?;
    for o in 0..launches {
        let (mut rest, mut b0, mut b1) = (o, 0usize, 0usize);
        for k in (0..split).rev() {
            let idx = rest % outer[k];
            rest /= outer[k];
            b0 += idx * strides[0][k];
            b1 += idx * strides[1][k];
        }
        f(d, u64of(n), i64of(b0), i64of(b1), i64of(o * n))?;
    }
    Ok(())
}

/// The kernel's code for a unary op (the order of `ASSAY_U_*`).
fn unary_code(op: UnaryOp) -> i32 {
    match op {
        UnaryOp::Neg => 0,
        UnaryOp::Abs => 1,
        UnaryOp::Relu => 2,
        UnaryOp::Gelu => 3,
        UnaryOp::Tanh => 4,
        UnaryOp::Sigmoid => 5,
        UnaryOp::Exp => 6,
        UnaryOp::Log => 7,
        UnaryOp::Sqrt => 8,
    }
}

fn binary_code(op: BinaryOp) -> i32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Max => 4,
        BinaryOp::Min => 5,
    }
}

fn reduce_code(op: ReduceOp) -> i32 {
    match op {
        ReduceOp::Sum => 0,
        ReduceOp::Mean => 1,
        ReduceOp::Max => 2,
        ReduceOp::Min => 3,
    }
}

/// `x` canonicalised (`0x7fc00000` for any NaN), as SEMANTICS.md's `canon`.
fn canon_bits(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x7fff_ffff > 0x7f80_0000 {
        0x7fc0_0000
    } else {
        b
    }
}

/// The elements of `data` as bytes (the device is little-endian, like every host we build for).
fn as_bytes<T: Copy>(data: &[T]) -> &[u8] {
    // SAFETY: f32/i32 have no padding and any byte is a valid u8; the length
    // covers exactly the slice's memory.
    unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), std::mem::size_of_val(data)) }
}

/// `rows` (all dims but the last) and `n` (the last) of a row-wise op's input.
fn rows_of(shape: &[usize]) -> Result<(u64, u64), Error> {
    let n = shape.last().copied().unwrap_or(1);
    let rows = numel(&shape[..shape.len().saturating_sub(1)])?;
    Ok((u64of(rows), u64of(n)))
}

impl Backend for CudaBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: self.kind.into(),
            device: self.gpu.describe(),
        }
    }

    fn upload_f32(&self, data: &[f32]) -> Result<Box<dyn DeviceBuffer>, Error> {
        let mem = self.gpu.upload(as_bytes(data))?;
        // Every f32 a tensor holds is canonical.
        self.launch_flat(
            "assay_canon_f32",
            u64of(data.len()),
            &[Param::Ptr(mem.ptr), Param::U64(u64of(data.len()))],
        )?;
        Ok(Box::new(self.buffer_from(mem, data.len(), DType::F32)))
    }

    fn upload_i32(&self, data: &[i32]) -> Result<Box<dyn DeviceBuffer>, Error> {
        let mem = self.gpu.upload(as_bytes(data))?;
        Ok(Box::new(self.buffer_from(mem, data.len(), DType::I32)))
    }

    fn upload_encoded(
        &self,
        bytes: &[u8],
        encoding: SourceEncoding,
        dtype: DType,
    ) -> Result<Box<dyn DeviceBuffer>, Error> {
        let size = encoding.size();
        if !bytes.len().is_multiple_of(size) || encoding.dtype() != dtype {
            return Err(Error::Device(format!(
                "cuda: {} bytes of {encoding:?} cannot become {} elements",
                bytes.len(),
                dtype.name()
            )));
        }
        let n = bytes.len() / size;
        if encoding == SourceEncoding::I64 {
            for (at, c) in bytes.chunks_exact(8).enumerate() {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                let v = i64::from_le_bytes(b);
                if i32::try_from(v).is_err() {
                    return Err(Error::InvalidArgument(format!(
                        "i64 element {at} is {v}, outside the i32 range; only values that fit in i32 can be narrowed"
                    )));
                }
            }
        }
        let enc = match encoding {
            SourceEncoding::F32 => 0,
            SourceEncoding::F16 => 1,
            SourceEncoding::Bf16 => 2,
            SourceEncoding::I32 => 3,
            SourceEncoding::I64 => 4,
        };
        // The encoded bytes go to the device as they are (half the traffic
        // for f16/bf16) and are decoded there.
        let src = self.gpu.upload(bytes)?;
        let out = self.alloc(n, dtype)?;
        self.launch_flat(
            "assay_decode",
            u64of(n),
            &[
                Param::Ptr(src.ptr),
                Param::Ptr(out.mem.ptr),
                Param::U64(u64of(n)),
                Param::I32(enc),
            ],
        )?;
        Ok(Box::new(out))
    }

    fn read_f32(&self, x: TensorRef<'_>) -> Result<Vec<f32>, Error> {
        let b = self.buf(&x)?;
        if b.dtype != DType::F32 {
            return Err(Error::Device("cuda: expected an f32 buffer".into()));
        }
        let mut out = vec![0f32; b.len];
        // SAFETY: any bytes are a valid f32; the slice covers exactly `out`.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), b.len * 4) };
        self.gpu.download(&b.mem, bytes)?;
        Ok(out)
    }

    fn read_i32(&self, x: TensorRef<'_>) -> Result<Vec<i32>, Error> {
        let b = self.buf(&x)?;
        if b.dtype != DType::I32 {
            return Err(Error::Device("cuda: expected an i32 buffer".into()));
        }
        let mut out = vec![0i32; b.len];
        // SAFETY: any bytes are a valid i32; the slice covers exactly `out`.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), b.len * 4) };
        self.gpu.download(&b.mem, bytes)?;
        Ok(out)
    }

    fn first_index_out_of_range(
        &self,
        indices: TensorRef<'_>,
        bound: usize,
    ) -> Result<Option<(usize, i32)>, Error> {
        let idx = self.ptr(&indices, DType::I32)?;
        let n = numel(indices.shape)?;
        if n == 0 {
            return Ok(None);
        }
        // The check runs where the indices are; only 8 bytes come back.
        let result = self.gpu.upload(&u64::MAX.to_le_bytes())?;
        self.launch_flat(
            "assay_first_bad_index",
            u64of(n),
            &[
                idx,
                Param::U64(u64of(n)),
                Param::U64(u64of(bound)),
                Param::Ptr(result.ptr),
            ],
        )?;
        let mut first = [0u8; 8];
        self.gpu.download(&result, &mut first)?;
        let first = u64::from_le_bytes(first);
        if first == u64::MAX {
            return Ok(None);
        }
        // Rare (the job fails): read the indices to name the value.
        let all = self.read_i32(indices)?;
        let at = usize::try_from(first)
            .ok()
            .filter(|&p| p < all.len())
            .ok_or_else(|| Error::Device(format!("cuda: index check returned {first}")))?;
        Ok(Some((at, all[at])))
    }

    fn execute(
        &self,
        op: &Op,
        inputs: &[TensorRef<'_>],
        out_shape: &[usize],
        out_dtype: DType,
    ) -> Result<Box<dyn DeviceBuffer>, Error> {
        let n = numel(out_shape)?;
        let out = self.alloc(n, out_dtype)?;
        if n > 0 {
            self.run(op, inputs, out_shape, &out)?;
        }
        Ok(Box::new(out))
    }
}

impl CudaBackend {
    /// Launches the kernels of `op`, writing every element of `out`.
    fn run(
        &self,
        op: &Op,
        inputs: &[TensorRef<'_>],
        out_shape: &[usize],
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let n = u64of(out.len);
        let x = || input(inputs, 0);
        match op {
            Op::Fill { value } => self.launch_flat(
                "assay_fill_u32",
                n,
                &[o, Param::U64(n), Param::U32(canon_bits(*value))],
            ),
            Op::Matmul {
                transpose_a,
                transpose_b,
            } => self.matmul(
                x()?,
                input(inputs, 1)?,
                *transpose_a,
                *transpose_b,
                out_shape,
                out,
            ),
            Op::Linear {
                transpose_b,
                activation,
            } => {
                self.matmul(x()?, input(inputs, 1)?, false, *transpose_b, out_shape, out)?;
                // The bias added, then the activation applied, in place: each
                // kernel reads an output element before writing it, at the
                // same index.
                let product = TensorRef {
                    shape: out_shape,
                    dtype: DType::F32,
                    buffer: out,
                };
                self.binary(BinaryOp::Add, &product, input(inputs, 2)?, out_shape, out)?;
                match activation {
                    Some(u) => self.unary(*u, o, o, n),
                    None => Ok(()),
                }
            }
            Op::Attention {
                lengths,
                heads,
                scale,
            } => self.attention(
                [x()?, input(inputs, 1)?, input(inputs, 2)?],
                lengths,
                *heads,
                *scale,
                out,
            ),
            Op::Unary(u) => self.unary(*u, self.ptr(x()?, DType::F32)?, o, n),
            Op::Scale { factor } => {
                let xp = self.ptr(x()?, DType::F32)?;
                self.launch_flat(
                    "assay_scale_f32",
                    n,
                    &[xp, o, Param::U64(n), Param::F32(*factor)],
                )
            }
            Op::Binary(b) => self.binary(*b, x()?, input(inputs, 1)?, out_shape, out),
            Op::Reduce(r) => {
                let xr = x()?;
                let xp = self.ptr(xr, DType::F32)?;
                let (rows, len) = rows_of(xr.shape)?;
                self.launch_rows(
                    "assay_reduce_rows",
                    rows,
                    &[
                        xp,
                        o,
                        Param::U64(rows),
                        Param::U64(len),
                        Param::I32(reduce_code(*r)),
                    ],
                )
            }
            Op::Softmax => {
                let xr = x()?;
                let (rows, len) = rows_of(xr.shape)?;
                let xp = self.ptr(xr, DType::F32)?;
                self.launch_rows(
                    "assay_softmax_rows",
                    rows,
                    &[xp, o, Param::U64(rows), Param::U64(len)],
                )
            }
            Op::LayerNorm { eps } => {
                let xr = x()?;
                let (rows, len) = rows_of(xr.shape)?;
                let (g, b) = (input(inputs, 1)?, input(inputs, 2)?);
                self.check_row_param(g, len)?;
                self.check_row_param(b, len)?;
                self.launch_rows(
                    "assay_layer_norm_rows",
                    rows,
                    &[
                        self.ptr(xr, DType::F32)?,
                        self.ptr(g, DType::F32)?,
                        self.ptr(b, DType::F32)?,
                        o,
                        Param::U64(rows),
                        Param::U64(len),
                        Param::F32(*eps),
                    ],
                )
            }
            Op::RmsNorm { eps } => {
                let xr = x()?;
                let (rows, len) = rows_of(xr.shape)?;
                let g = input(inputs, 1)?;
                self.check_row_param(g, len)?;
                self.launch_rows(
                    "assay_rms_norm_rows",
                    rows,
                    &[
                        self.ptr(xr, DType::F32)?,
                        self.ptr(g, DType::F32)?,
                        o,
                        Param::U64(rows),
                        Param::U64(len),
                        Param::F32(*eps),
                    ],
                )
            }
            Op::L2Normalize { eps } => {
                let xr = x()?;
                let (rows, len) = rows_of(xr.shape)?;
                self.launch_rows(
                    "assay_l2_normalize_rows",
                    rows,
                    &[
                        self.ptr(xr, DType::F32)?,
                        o,
                        Param::U64(rows),
                        Param::U64(len),
                        Param::F32(*eps),
                    ],
                )
            }
            Op::Argmax => {
                let xr = x()?;
                let (rows, len) = rows_of(xr.shape)?;
                if len == 0 || len > 1 << 31 {
                    return Err(Error::Device(format!(
                        "cuda: argmax over rows of {len} elements (the session refuses this)"
                    )));
                }
                self.launch_rows(
                    "assay_argmax_rows",
                    rows,
                    &[
                        self.ptr(xr, DType::F32)?,
                        o,
                        Param::U64(rows),
                        Param::U64(len),
                    ],
                )
            }
            Op::MaskedMeanPool => {
                let (xr, mask) = (x()?, input(inputs, 1)?);
                let &[b, s, d] = xr.shape else {
                    return Err(Error::Device(format!(
                        "cuda: masked_mean_pool on shape {:?}",
                        xr.shape
                    )));
                };
                if mask.shape != [b, s] {
                    return Err(Error::Device("cuda: masked_mean_pool mask shape".into()));
                }
                self.launch_flat(
                    "assay_masked_mean_pool",
                    n,
                    &[
                        self.ptr(xr, DType::F32)?,
                        self.ptr(mask, DType::F32)?,
                        o,
                        Param::U64(u64of(b)),
                        Param::U64(u64of(s)),
                        Param::U64(u64of(d)),
                    ],
                )
            }
            Op::Gather => {
                let (table, idx) = (x()?, input(inputs, 1)?);
                let &[v, d] = table.shape else {
                    return Err(Error::Device(format!(
                        "cuda: gather table {:?}",
                        table.shape
                    )));
                };
                let count = numel(idx.shape)?;
                if count.checked_mul(d) != Some(out.len) || table.dtype != out.dtype {
                    return Err(Error::Device("cuda: gather sizes".into()));
                }
                self.launch_flat(
                    "assay_gather_rows",
                    n,
                    &[
                        self.any_ptr(table)?,
                        self.ptr(idx, DType::I32)?,
                        o,
                        Param::U64(u64of(count)),
                        Param::U64(u64of(d)),
                        Param::U64(u64of(v)),
                    ],
                )
            }
            Op::Permute { axes } => self.permute(x()?, axes, out),
            Op::Slice { axis, start, end } => {
                let xr = x()?;
                let dim = xr.shape.get(*axis).copied().unwrap_or(0);
                if start > end || *end > dim {
                    return Err(Error::Device(format!(
                        "cuda: slice {start}..{end} of {dim}"
                    )));
                }
                let outer = numel(&xr.shape[..*axis])?;
                let inner = numel(&xr.shape[axis + 1..])?;
                let run = (end - start) * inner;
                if outer * run != out.len {
                    return Err(Error::Device("cuda: slice sizes".into()));
                }
                self.copy_runs(
                    self.any_ptr(xr)?,
                    o,
                    [outer, run, dim * inner, start * inner, run, 0],
                )
            }
            Op::Concat { axis } => {
                let outer = numel(&out_shape[..*axis])?;
                let inner = numel(&out_shape[axis + 1..])?;
                let row = out_shape[*axis] * inner;
                let mut at = 0;
                for t in inputs {
                    let len = t.shape.get(*axis).copied().unwrap_or(0) * inner;
                    if t.dtype != out.dtype {
                        return Err(Error::Device("cuda: concat of mixed dtypes".into()));
                    }
                    let src = self.any_ptr(t)?;
                    if len > 0 {
                        self.copy_runs(src, o, [outer, len, len, 0, row, at])?;
                    }
                    at += len;
                }
                if at != row {
                    return Err(Error::Device("cuda: concat sizes".into()));
                }
                Ok(())
            }
            Op::Cast { to } => {
                let xr = x()?;
                match (xr.dtype, *to) {
                    (DType::F32, DType::I32) => self.launch_flat(
                        "assay_f32_to_i32",
                        n,
                        &[self.ptr(xr, DType::F32)?, o, Param::U64(n)],
                    ),
                    (DType::I32, DType::F32) => self.launch_flat(
                        "assay_i32_to_f32",
                        n,
                        &[self.ptr(xr, DType::I32)?, o, Param::U64(n)],
                    ),
                    _ => self.copy_runs(self.any_ptr(xr)?, o, [1, out.len, 0, 0, 0, 0]),
                }
            }
            Op::Conv2d {
                stride,
                padding,
                has_bias,
            } => {
                let (xr, w) = (x()?, input(inputs, 1)?);
                let &[o_ch, c, kh, kw] = w.shape else {
                    return Err(Error::Device(format!("cuda: conv2d weight {:?}", w.shape)));
                };
                let g = window(xr.shape, out_shape, (kh, kw), *stride, *padding, o_ch)?;
                if xr.shape[1] != c {
                    return Err(Error::Device("cuda: conv2d channels".into()));
                }
                let bias = if *has_bias {
                    let b = input(inputs, 2)?;
                    if b.shape != [o_ch] {
                        return Err(Error::Device("cuda: conv2d bias shape".into()));
                    }
                    self.ptr(b, DType::F32)?
                } else {
                    Param::Ptr(0)
                };
                self.launch_flat(
                    "assay_conv2d",
                    n,
                    &[
                        self.ptr(xr, DType::F32)?,
                        self.ptr(w, DType::F32)?,
                        bias,
                        o,
                        Param::Window(g),
                        Param::I32(i32::from(*has_bias)),
                    ],
                )
            }
            Op::MaxPool2d {
                kernel,
                stride,
                padding,
            } => {
                let xr = x()?;
                let g = window(xr.shape, out_shape, *kernel, *stride, *padding, 0)?;
                self.launch_flat(
                    "assay_max_pool2d",
                    n,
                    &[self.ptr(xr, DType::F32)?, o, Param::Window(g)],
                )
            }
        }
    }

    fn check_row_param(&self, p: &TensorRef<'_>, n: u64) -> Result<(), Error> {
        if p.shape.len() != 1 || u64of(p.shape[0]) != n {
            return Err(Error::Device(format!(
                "cuda: norm parameter {:?} does not match rows of {n}",
                p.shape
            )));
        }
        Ok(())
    }

    /// `assay_copy_runs` with [rows, run, in_row, in_at, out_row, out_at].
    fn copy_runs(&self, src: Param, dst: Param, g: [usize; 6]) -> Result<(), Error> {
        let total = g[0]
            .checked_mul(g[1])
            .ok_or_else(|| Error::Device("cuda: copy size overflows".into()))?;
        let mut params = vec![src, dst];
        params.extend(g.iter().map(|&v| Param::U64(u64of(v))));
        self.launch_flat("assay_copy_runs", u64of(total), &params)
    }

    /// `op` over the `n` f32s at `x` into `out` (which may be `x`: each
    /// thread reads its element before writing it).
    fn unary(&self, op: UnaryOp, x: Param, out: Param, n: u64) -> Result<(), Error> {
        self.launch_flat(
            "assay_unary_f32",
            n,
            &[x, out, Param::U64(n), Param::I32(unary_code(op))],
        )
    }

    fn binary(
        &self,
        op: BinaryOp,
        a: &TensorRef<'_>,
        b: &TensorRef<'_>,
        out_shape: &[usize],
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let (ap, bp) = (self.ptr(a, DType::F32)?, self.ptr(b, DType::F32)?);
        let rank = out_shape.len();
        if a.shape.len() > rank || b.shape.len() > rank {
            return Err(Error::Device("cuda: binary operand rank".into()));
        }
        let (dims, strides) = coalesce(
            out_shape,
            &[
                broadcast_strides(a.shape, rank),
                broadcast_strides(b.shape, rank),
            ],
        );
        strided_launches(&dims, &strides, |d, n, ba, bb, bo| {
            self.launch_flat(
                "assay_binary_f32",
                n,
                &[
                    ap,
                    bp,
                    Param::Ptr(out.mem.ptr),
                    Param::Dims(d),
                    Param::U64(n),
                    Param::I64(ba),
                    Param::I64(bb),
                    Param::I64(bo),
                    Param::I32(binary_code(op)),
                ],
            )
        })
    }

    /// `attention` (SEMANTICS.md): one warp per query row and head, the
    /// row's scores in a scratch buffer the session counted against the quota.
    fn attention(
        &self,
        [q, k, v]: [&TensorRef<'_>; 3],
        lengths: &[usize],
        heads: usize,
        scale: f32,
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let (&[tokens, width], &[_, v_width]) = (q.shape, v.shape) else {
            return Err(Error::Device(
                "cuda: attention operands must be matrices".into(),
            ));
        };
        if heads == 0 || k.shape != q.shape || v.shape[0] != tokens {
            return Err(Error::Device("cuda: attention shapes".into()));
        }
        let too_big = || Error::Device(format!("cuda: attention over {tokens} rows"));
        let mut starts = Vec::with_capacity(tokens);
        let mut lens = Vec::with_capacity(tokens);
        let mut first = 0usize;
        for &len in lengths {
            let at = u32::try_from(first).map_err(|_| too_big())?;
            let n = u32::try_from(len).map_err(|_| too_big())?;
            starts.extend(std::iter::repeat_n(at, len));
            lens.extend(std::iter::repeat_n(n, len));
            first += len;
        }
        if first != tokens {
            return Err(Error::Device("cuda: attention lengths".into()));
        }
        let longest = lengths.iter().copied().max().unwrap_or(0);
        let scratch_len = tokens
            .checked_mul(heads)
            .and_then(|r| r.checked_mul(longest))
            .ok_or_else(too_big)?;
        let scratch = self.alloc(scratch_len, DType::F32)?;
        let starts = self.gpu.upload(as_bytes(&starts))?;
        let lens = self.gpu.upload(as_bytes(&lens))?;
        self.launch_rows(
            "assay_attention_rows",
            u64of(tokens * heads),
            &[
                self.ptr(q, DType::F32)?,
                self.ptr(k, DType::F32)?,
                self.ptr(v, DType::F32)?,
                Param::Ptr(starts.ptr),
                Param::Ptr(lens.ptr),
                Param::Ptr(scratch.mem.ptr),
                Param::Ptr(out.mem.ptr),
                Param::U64(u64of(tokens)),
                Param::U64(u64of(heads)),
                Param::U64(u64of(width / heads)),
                Param::U64(u64of(v_width / heads)),
                Param::U64(u64of(longest)),
                Param::F32(scale),
            ],
        )
    }

    fn permute(&self, x: &TensorRef<'_>, axes: &[usize], out: &CudaBuffer) -> Result<(), Error> {
        let rank = x.shape.len();
        if axes.len() != rank || axes.iter().any(|&a| a >= rank) {
            return Err(Error::Device(format!("cuda: permute axes {axes:?}")));
        }
        let mut in_strides = vec![0; rank];
        let mut stride = 1;
        for i in (0..rank).rev() {
            in_strides[i] = stride;
            stride *= x.shape[i];
        }
        let dims: Vec<usize> = axes.iter().map(|&a| x.shape[a]).collect();
        let strides: Vec<usize> = axes.iter().map(|&a| in_strides[a]).collect();
        let zeros = vec![0; rank];
        let (dims, strides) = coalesce(&dims, &[strides, zeros]);
        let xp = self.any_ptr(x)?;
        strided_launches(&dims, &strides, |d, n, bx, _, bo| {
            self.launch_flat(
                "assay_strided_copy",
                n,
                &[
                    xp,
                    Param::Ptr(out.mem.ptr),
                    Param::Dims(d),
                    Param::U64(n),
                    Param::I64(bx),
                    Param::I64(bo),
                ],
            )
        })
    }

    fn matmul(
        &self,
        a: &TensorRef<'_>,
        b: &TensorRef<'_>,
        ta: bool,
        tb: bool,
        out_shape: &[usize],
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let (ap, bp) = (self.ptr(a, DType::F32)?, self.ptr(b, DType::F32)?);
        let (ra, rb, r) = (a.shape.len(), b.shape.len(), out_shape.len());
        if ra < 2 || rb < 2 || r < 2 {
            return Err(Error::Device("cuda: matmul operands of rank < 2".into()));
        }
        let (m, n) = (out_shape[r - 2], out_shape[r - 1]);
        let (am, k) = if ta {
            (a.shape[ra - 1], a.shape[ra - 2])
        } else {
            (a.shape[ra - 2], a.shape[ra - 1])
        };
        let (bk, bn) = if tb {
            (b.shape[rb - 1], b.shape[rb - 2])
        } else {
            (b.shape[rb - 2], b.shape[rb - 1])
        };
        if am != m || bk != k || bn != n {
            return Err(Error::Device("cuda: matmul shapes".into()));
        }
        // Batch strides in elements: each batch matrix is contiguous.
        let batch = &out_shape[..r - 2];
        let scale = |s: Vec<usize>, per: usize| s.into_iter().map(|v| v * per).collect();
        let sa: Vec<usize> = scale(broadcast_strides(&a.shape[..ra - 2], r - 2), m * k);
        let sb: Vec<usize> = scale(broadcast_strides(&b.shape[..rb - 2], r - 2), k * n);
        let (dims, strides) = coalesce(batch, &[sa, sb]);
        let o = Param::Ptr(out.mem.ptr);
        strided_launches(&dims, &strides, |d, batches, ba, bb, bo| {
            let tiles = |t: usize| u64of(m.div_ceil(t)) * u64of(n.div_ceil(t)) * batches;
            let big = tiles(128) >= BIG_TILE_MIN_TILES;
            let tile = if big { 128 } else { 64 };
            let kernel = match (big, ta, tb) {
                (true, false, false) => "assay_sgemm128_nn",
                (true, false, true) => "assay_sgemm128_nt",
                (true, true, false) => "assay_sgemm128_tn",
                (true, true, true) => "assay_sgemm128_tt",
                (false, false, false) => "assay_sgemm64_nn",
                (false, false, true) => "assay_sgemm64_nt",
                (false, true, false) => "assay_sgemm64_tn",
                (false, true, true) => "assay_sgemm64_tt",
            };
            let shape = Launch {
                grid: [
                    u64of(n.div_ceil(tile)).clamp(1, 1 << 30) as u32,
                    u64of(m.div_ceil(tile)).clamp(1, 65535) as u32,
                    batches.clamp(1, 65535) as u32,
                ],
                block: [BLOCK, 1, 1],
            };
            self.launch(
                kernel,
                shape,
                &[
                    ap,
                    bp,
                    o,
                    Param::I64(i64of(m)),
                    Param::I64(i64of(n)),
                    Param::I64(i64of(k)),
                    Param::Dims(d),
                    Param::U64(batches),
                    Param::I64(ba),
                    Param::I64(bb),
                    // the kernel adds z·m·n for each batch of this launch
                    Param::I64(bo * i64of(m) * i64of(n)),
                ],
            )
        })
    }
}

/// The window geometry of x `[n, c, h, w]` → `[n, o|c, ho, wo]`.
fn window(
    x: &[usize],
    out: &[usize],
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    o: usize,
) -> Result<Window, Error> {
    let (&[n, c, h, w], &[_, _, ho, wo]) = (x, out) else {
        return Err(Error::Device(format!("cuda: window op on {x:?} → {out:?}")));
    };
    Ok(Window {
        n: i64of(n),
        c: i64of(c),
        h: i64of(h),
        w: i64of(w),
        o: i64of(o),
        kh: i64of(kernel.0),
        kw: i64of(kernel.1),
        sh: i64of(stride.0),
        sw: i64of(stride.1),
        ph: i64of(padding.0),
        pw: i64of(padding.1),
        ho: i64of(ho),
        wo: i64of(wo),
    })
}
