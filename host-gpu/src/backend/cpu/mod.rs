//! The CPU reference backend.
//!
//! Its kernels are the executable form of `SEMANTICS.md`: every other backend
//! must reproduce their bits. They are split by op family (`elementwise`,
//! `reduce`, `norm`, `layout`, `matmul`, `attention`, `conv`, `encode`);
//! the per-element programs they share live in `scalar`.
//!
//! This file only builds the backend and dispatches each op to its kernel.
//! What every kernel needs lives in leaf modules that import nothing from
//! the kernels or from this file, so no module here imports another in a
//! circle: `alloc` (host allocation), `buffer` (a tensor's memory and typed
//! views of it), `ctx` (SIMD path and threads, and splitting an output
//! across them), `shared_out` (an output written by several tasks),
//! `packed` (a buffer's kept matmul packing), `team`, `simd`, `scalar`.
//!
//! Parallelism (a [`team::Team`] of threads per backend) is only ever
//! across outputs, never inside one output's reduction, so results do not
//! depend on the thread count. Kernels
//! are compiled for several instruction sets (`simd`) and all give the same
//! bits.

mod alloc;
mod buffer;
mod ctx;
mod packed;
mod panel_memory;
pub(crate) mod scalar;
mod shared_out;
pub(crate) mod simd;
mod team;

mod attention;
mod blocks;
mod conv;
mod elementwise;
mod encode;
mod layout;
mod matmul;
mod norm;
mod reduce;
mod rotary;

use crate::backend::contract::{
    Backend, BackendInfo, DeviceBuffer, TensorRef, first_index_outside,
};
use crate::backend::cpu::alloc::{alloc, numel};
use crate::backend::cpu::buffer::{CpuBuffer, Values, f32s, i32s, input};
use crate::backend::cpu::ctx::Ctx;
use crate::backend::cpu::packed::PackCache;
use crate::backend::cpu::team::Team;
use crate::dtype::DType;
use crate::error::Error;
use crate::op::{Op, SourceEncoding};
pub use simd::CpuSimd;

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
            packed: PackCache::eager(),
        }))
    }

    fn upload_blocks(
        &self,
        bytes: &[u8],
        encoding: SourceEncoding,
        row_len: usize,
    ) -> Result<Box<dyn DeviceBuffer>, Error> {
        Ok(Box::new(CpuBuffer::from(Values::Blocks(
            blocks::BlockRows::from_ggml(bytes, encoding, row_len)?,
        ))))
    }

    fn read_blocks(&self, x: TensorRef<'_>) -> Result<Vec<u8>, Error> {
        blocks::block_rows(&x)?.to_ggml()
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
        Ok(first_index_outside(i32s(&indices)?, bound))
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
                DType::I32 => Values::I32(Vec::new()),
                // No op makes a tensor of blocks.
                _ => Values::F32(Vec::new()),
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
        Op::Matmul { .. } if input(inputs, 1)?.dtype.is_blocks() => {
            Values::F32(blocks::product(ctx, x()?, input(inputs, 1)?, None)?)
        }
        Op::Linear { activation, .. } if input(inputs, 1)?.dtype.is_blocks() => {
            Values::F32(blocks::product(
                ctx,
                x()?,
                input(inputs, 1)?,
                Some((f32s(input(inputs, 2)?)?, *activation)),
            )?)
        }
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
        Op::CausalAttention {
            blocks,
            heads,
            kv_heads,
            scale,
        } => {
            let blocks = *blocks;
            if inputs.len() != 1 + 2 * blocks {
                return Err(Error::Device("cpu: causal attention's blocks".into()));
            }
            Values::F32(attention::causal_attention(
                ctx,
                x()?,
                (&inputs[1..=blocks], &inputs[1 + blocks..]),
                (*heads, *kv_heads),
                *scale,
            )?)
        }
        Op::Rope { heads, pairs } => Values::F32(rotary::rope(
            ctx,
            x()?,
            f32s(input(inputs, 1)?)?,
            f32s(input(inputs, 2)?)?,
            *heads,
            *pairs,
        )?),
        Op::Swiglu => Values::F32(elementwise::swiglu(
            ctx,
            f32s(x()?)?,
            f32s(input(inputs, 1)?)?,
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
        Op::Gather if x()?.dtype.is_blocks() => {
            Values::F32(blocks::gather(ctx, x()?, i32s(input(inputs, 1)?)?)?)
        }
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
