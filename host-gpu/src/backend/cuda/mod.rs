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
//! This file holds the backend, its buffers, the launch helpers every op
//! uses, and the dispatch of each op to its family's launch code, split like
//! the CPU reference (`cpu/`): `matmul` (matmul, linear), `attention`,
//! `elementwise` (fill, unary, scale, binary, cast), `reduce` (reductions,
//! argmax, masked mean pool), `norm` (softmax and the normalisations),
//! `layout` (permute, slice, concat, gather), `conv` (conv2d, max-pool),
//! `encode` (decoding uploaded bytes). `strided` (broadcast strides and
//! strided launches) is shared by several families. The families import
//! from this file, never it from them (it only calls their methods).
//!
//! Every output buffer is fully written by its kernel before anything reads
//! it (the one scratch buffer that is not, the gather index check's result,
//! is uploaded), so nothing of one job is ever visible to another.

mod driver;
pub(crate) mod emu;
pub(crate) mod gpu;
pub(crate) mod kernels;

mod attention;
mod conv;
mod elementwise;
mod encode;
mod layout;
mod matmul;
mod norm;
mod reduce;
mod strided;

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};

use gpu::{Gpu, Launch, Mem, Param};

use crate::backend::contract::{Backend, BackendInfo, DeviceBuffer, TensorRef};
use crate::dtype::DType;
use crate::error::Error;
use crate::op::{Op, SourceEncoding};

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
        let bytes = u64::try_from(len)
            .ok()
            .and_then(|n| dtype.byte_len(n))
            .and_then(|b| usize::try_from(b).ok())
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
        Ok(Box::new(self.decode_on_device(bytes, encoding, dtype)?))
    }

    fn upload_blocks(
        &self,
        bytes: &[u8],
        encoding: SourceEncoding,
        _row_len: usize,
    ) -> Result<Box<dyn DeviceBuffer>, Error> {
        Ok(Box::new(self.upload_blocks_as_they_are(bytes, encoding)?))
    }

    fn read_blocks(&self, x: TensorRef<'_>) -> Result<Vec<u8>, Error> {
        let b = self.buf(&x)?;
        let len = u64::try_from(b.len)
            .ok()
            .filter(|_| b.dtype.is_blocks())
            .and_then(|n| b.dtype.byte_len(n))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| Error::Device("cuda: expected a buffer of blocks".into()))?;
        let mut out = vec![0u8; len];
        self.gpu.download(&b.mem, &mut out)?;
        Ok(out)
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
        // A product with a matrix of blocks decodes it for the op's length.
        if matches!(op, Op::Matmul { .. } | Op::Linear { .. })
            && let Some(w) = inputs.get(1).filter(|w| w.dtype.is_blocks())
        {
            let decoded = self.decoded_blocks(w)?;
            let mut with_decoded = inputs.to_vec();
            with_decoded[1] = TensorRef {
                shape: w.shape,
                dtype: DType::F32,
                buffer: &decoded,
            };
            return self.run(op, &with_decoded, out_shape, out);
        }
        if matches!(op, Op::Gather)
            && let (Some(table), Some(idx)) = (inputs.first(), inputs.get(1))
            && table.dtype.is_blocks()
        {
            return self.gather_blocks(table, idx, out);
        }
        match op {
            Op::Fill { value } => self.fill(*value, out),
            Op::Matmul {
                transpose_a,
                transpose_b,
            } => self.matmul(
                input(inputs, 0)?,
                input(inputs, 1)?,
                *transpose_a,
                *transpose_b,
                out_shape,
                out,
            ),
            Op::Linear {
                transpose_b,
                activation,
            } => self.linear(inputs, *transpose_b, *activation, out_shape, out),
            Op::Attention {
                lengths,
                heads,
                scale,
            } => self.attention(
                [input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?],
                lengths,
                *heads,
                *scale,
                out,
            ),
            Op::CausalAttention {
                blocks,
                heads,
                kv_heads,
                scale,
            } => {
                let blocks = *blocks;
                if inputs.len() != 1 + 2 * blocks {
                    return Err(Error::Device("cuda: causal attention's blocks".into()));
                }
                self.causal_attention(
                    input(inputs, 0)?,
                    (&inputs[1..=blocks], &inputs[1 + blocks..]),
                    (*heads, *kv_heads),
                    *scale,
                    out,
                )
            }
            Op::Rope { heads, pairs } => self.rope(inputs, *heads, *pairs, out),
            Op::Swiglu => self.swiglu(inputs, out),
            Op::Unary(u) => self.unary(
                *u,
                self.ptr(input(inputs, 0)?, DType::F32)?,
                Param::Ptr(out.mem.ptr),
                u64of(out.len),
            ),
            Op::Scale { factor } => self.scale(inputs, *factor, out),
            Op::Binary(b) => self.binary(*b, input(inputs, 0)?, input(inputs, 1)?, out_shape, out),
            Op::Reduce(r) => self.reduce(*r, inputs, out),
            Op::Softmax => self.softmax(inputs, out),
            Op::LayerNorm { eps } => self.layer_norm(inputs, *eps, out),
            Op::RmsNorm { eps } => self.rms_norm(inputs, *eps, out),
            Op::L2Normalize { eps } => self.l2_normalize(inputs, *eps, out),
            Op::Argmax => self.argmax(inputs, out),
            Op::MaskedMeanPool => self.masked_mean_pool(inputs, out),
            Op::Gather => self.gather(inputs, out),
            Op::Permute { axes } => self.permute(input(inputs, 0)?, axes, out),
            Op::Slice { axis, start, end } => self.slice(inputs, (*axis, *start, *end), out),
            Op::Concat { axis } => self.concat(inputs, *axis, out_shape, out),
            Op::Cast { to } => self.cast(inputs, *to, out),
            Op::Conv2d {
                stride,
                padding,
                has_bias,
            } => self.conv2d(inputs, (*stride, *padding, *has_bias), out_shape, out),
            Op::MaxPool2d {
                kernel,
                stride,
                padding,
            } => self.max_pool2d(inputs, (*kernel, *stride, *padding), out_shape, out),
        }
    }
}
