//! Element-wise launches: fill, unary, swiglu, rope, scale, binary (numpy broadcasting
//! through `strided`), cast. The CPU reference is `cpu/elementwise.rs`.

use super::gpu::Param;
use super::strided::{broadcast_strides, coalesce, strided_launches};
use super::{CudaBackend, CudaBuffer, input, u64of};
use crate::backend::contract::TensorRef;
use crate::dtype::DType;
use crate::error::Error;
use crate::op::{BinaryOp, RopePairs, UnaryOp};

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

/// `x` canonicalised (`0x7fc00000` for any NaN), as SEMANTICS.md's `canon`.
fn canon_bits(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x7fff_ffff > 0x7f80_0000 {
        0x7fc0_0000
    } else {
        b
    }
}

impl CudaBackend {
    /// Every element of `out` set to `value` (canonicalised).
    pub(super) fn fill(&self, value: f32, out: &CudaBuffer) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let n = u64of(out.len);
        self.launch_flat(
            "assay_fill_u32",
            n,
            &[o, Param::U64(n), Param::U32(canon_bits(value))],
        )
    }

    pub(super) fn scale(
        &self,
        inputs: &[TensorRef<'_>],
        factor: f32,
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let n = u64of(out.len);
        let xp = self.ptr(input(inputs, 0)?, DType::F32)?;
        self.launch_flat(
            "assay_scale_f32",
            n,
            &[xp, o, Param::U64(n), Param::F32(factor)],
        )
    }

    /// f32 ↔ i32 conversions; a cast to the same dtype is a bit copy.
    pub(super) fn cast(
        &self,
        inputs: &[TensorRef<'_>],
        to: DType,
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let n = u64of(out.len);
        let xr = input(inputs, 0)?;
        match (xr.dtype, to) {
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

    /// `op` over the `n` f32s at `x` into `out` (which may be `x`: each
    /// thread reads its element before writing it).
    pub(super) fn unary(&self, op: UnaryOp, x: Param, out: Param, n: u64) -> Result<(), Error> {
        self.launch_flat(
            "assay_unary_f32",
            n,
            &[x, out, Param::U64(n), Param::I32(unary_code(op))],
        )
    }

    /// `swiglu` (SEMANTICS.md): one thread per element.
    pub(super) fn swiglu(&self, inputs: &[TensorRef<'_>], out: &CudaBuffer) -> Result<(), Error> {
        let (gate, up) = (input(inputs, 0)?, input(inputs, 1)?);
        if gate.shape != up.shape {
            return Err(Error::Device(
                "cuda: swiglu operands differ in shape".into(),
            ));
        }
        let n = u64of(out.len);
        self.launch_flat(
            "assay_swiglu_f32",
            n,
            &[
                self.ptr(gate, DType::F32)?,
                self.ptr(up, DType::F32)?,
                Param::Ptr(out.mem.ptr),
                Param::U64(n),
            ],
        )
    }

    /// `rope` (SEMANTICS.md): one thread per pair.
    pub(super) fn rope(
        &self,
        inputs: &[TensorRef<'_>],
        heads: usize,
        pairs: RopePairs,
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let (x, cos, sin) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        let &[rows, width] = x.shape else {
            return Err(Error::Device("cuda: rope's x must be a matrix".into()));
        };
        if heads == 0 || !width.is_multiple_of(2 * heads) {
            return Err(Error::Device("cuda: rope's heads".into()));
        }
        let half = width / heads / 2;
        self.launch_flat(
            "assay_rope_f32",
            u64of(rows * heads * half),
            &[
                self.ptr(x, DType::F32)?,
                self.ptr(cos, DType::F32)?,
                self.ptr(sin, DType::F32)?,
                Param::Ptr(out.mem.ptr),
                Param::U64(u64of(rows)),
                Param::U64(u64of(heads)),
                Param::U64(u64of(half)),
                Param::I32(i32::from(pairs == RopePairs::Halves)),
            ],
        )
    }

    pub(super) fn binary(
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
}
