//! Element-wise ops: fill, unary, binary (numpy broadcasting), scale, cast.

use crate::backend::TensorRef;
use crate::backend::cpu::scalar::{self, canon};
use crate::backend::cpu::simd::multiversion;
use crate::backend::cpu::{Ctx, Values, alloc, f32s, i32s};
use crate::error::Error;
use crate::math;
use crate::op::{BinaryOp, UnaryOp};
use crate::tensor::DType;

/// Elements per parallel chunk of a flat element-wise op (rows of this length).
const FLAT_ROW: usize = 4096;

/// `n` copies of `value` (canonical if NaN).
pub(super) fn fill(n: usize, value: f32) -> Result<Vec<f32>, Error> {
    let mut out = alloc::<f32>(n)?;
    out.fill(canon(value));
    Ok(out)
}

/// Applies `f` to each element of `x` into `out` (same length), canonicalising NaN.
#[inline(always)]
fn map(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = canon(f(v));
    }
}

multiversion! {
    fn unary_kernel(op: UnaryOp, x: &[f32], out: &mut [f32]) {
        match op {
            UnaryOp::Neg => map(x, out, |v| -v),
            UnaryOp::Abs => map(x, out, f32::abs),
            UnaryOp::Relu => map(x, out, scalar::relu),
            UnaryOp::Gelu => map(x, out, scalar::gelu),
            UnaryOp::Tanh => map(x, out, math::tanh),
            UnaryOp::Sigmoid => map(x, out, scalar::sigmoid),
            UnaryOp::Exp => map(x, out, math::exp),
            UnaryOp::Log => map(x, out, math::log),
            UnaryOp::Sqrt => map(x, out, f32::sqrt),
        }
    }
}

/// Rough cost of one element of a unary op, for parallel chunking only.
fn unary_cost(op: UnaryOp) -> usize {
    match op {
        UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Sqrt => 1,
        _ => 16,
    }
}

/// `op` applied to every element.
pub(super) fn unary(ctx: &Ctx<'_>, op: UnaryOp, x: &[f32]) -> Result<Vec<f32>, Error> {
    let mut out = alloc::<f32>(x.len())?;
    ctx.rows(
        &mut out,
        FLAT_ROW,
        FLAT_ROW * unary_cost(op),
        |row, chunk| {
            let start = row * FLAT_ROW;
            unary_kernel(ctx.simd, op, &x[start..start + chunk.len()], chunk);
        },
    );
    Ok(out)
}

multiversion! {
    fn scale_kernel(x: &[f32], factor: f32, out: &mut [f32]) {
        map(x, out, |v| v * factor);
    }
}

/// `x · factor`.
pub(super) fn scale(ctx: &Ctx<'_>, x: &[f32], factor: f32) -> Result<Vec<f32>, Error> {
    let mut out = alloc::<f32>(x.len())?;
    ctx.rows(&mut out, FLAT_ROW, FLAT_ROW, |row, chunk| {
        let start = row * FLAT_ROW;
        scale_kernel(ctx.simd, &x[start..start + chunk.len()], factor, chunk);
    });
    Ok(out)
}

/// The scalar program of a binary op.
#[inline(always)]
fn apply(op: BinaryOp, a: f32, b: f32) -> f32 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => scalar::max(a, b),
        BinaryOp::Min => scalar::min(a, b),
    }
}

/// One operand of the innermost loop of a broadcast binary op.
#[derive(Clone, Copy)]
enum Operand<'a> {
    /// Walks along the output row.
    Run(&'a [f32]),
    /// Broadcast: the same element for the whole row.
    Splat(f32),
}

impl<'a> Operand<'a> {
    /// Elements `col..col + len` of the output row whose operand row starts
    /// at `off`, walking with `step` (after coalescing, an innermost stride is
    /// 1, a walk, or 0, a broadcast).
    fn at(v: &'a [f32], off: usize, step: usize, col: usize, len: usize) -> Operand<'a> {
        if step == 0 {
            Operand::Splat(v[off])
        } else {
            Operand::Run(&v[off + col..off + col + len])
        }
    }
}

#[inline(always)]
fn binary_row_op(op: BinaryOp, a: Operand<'_>, b: Operand<'_>, out: &mut [f32]) {
    match (a, b) {
        (Operand::Run(a), Operand::Run(b)) => {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = canon(apply(op, x, y));
            }
        }
        (Operand::Run(a), Operand::Splat(y)) => map(a, out, |x| apply(op, x, y)),
        (Operand::Splat(x), Operand::Run(b)) => map(b, out, |y| apply(op, x, y)),
        (Operand::Splat(x), Operand::Splat(y)) => out.fill(canon(apply(op, x, y))),
    }
}

multiversion! {
    fn binary_row(op: BinaryOp, a: Operand<'_>, b: Operand<'_>, out: &mut [f32]) {
        // One monomorphic loop per op so each vectorises on its own.
        match op {
            BinaryOp::Add => binary_row_op(BinaryOp::Add, a, b, out),
            BinaryOp::Sub => binary_row_op(BinaryOp::Sub, a, b, out),
            BinaryOp::Mul => binary_row_op(BinaryOp::Mul, a, b, out),
            BinaryOp::Div => binary_row_op(BinaryOp::Div, a, b, out),
            BinaryOp::Max => binary_row_op(BinaryOp::Max, a, b, out),
            BinaryOp::Min => binary_row_op(BinaryOp::Min, a, b, out),
        }
    }
}

/// The element strides of `shape` (row-major) as seen from an output of rank
/// `rank`: missing leading dims and size-1 dims get stride 0 (numpy broadcasting).
pub(super) fn broadcast_strides(shape: &[usize], rank: usize) -> Vec<usize> {
    let mut strides = vec![0; rank];
    let mut stride = 1;
    for (i, &d) in shape.iter().enumerate().rev() {
        let at = rank - shape.len() + i;
        strides[at] = if d == 1 { 0 } else { stride };
        stride *= d;
    }
    strides
}

/// Merges adjacent output dims that every operand walks contiguously
/// (stride[i] == stride[i+1] · dim[i+1]), so the innermost run is as long as possible.
pub(super) fn coalesce(dims: &[usize], strides: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_dims: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for (i, &d) in dims.iter().enumerate() {
        if d == 1 {
            continue;
        }
        let mergeable = out_dims.last().is_some_and(|_| {
            strides
                .iter()
                .zip(&out_strides)
                .all(|(s, o)| o.last().is_some_and(|&prev| prev == s[i] * d))
        });
        if mergeable {
            if let Some(last) = out_dims.last_mut() {
                *last *= d;
            }
            for (s, o) in strides.iter().zip(&mut out_strides) {
                if let Some(prev) = o.last_mut() {
                    *prev = s[i];
                }
            }
        } else {
            out_dims.push(d);
            for (s, o) in strides.iter().zip(&mut out_strides) {
                o.push(s[i]);
            }
        }
    }
    if out_dims.is_empty() {
        out_dims.push(1);
        for o in &mut out_strides {
            o.push(0);
        }
    }
    (out_dims, out_strides)
}

/// The offset in an operand with `strides` of the element at row-major
/// position `index` over `dims`.
pub(super) fn offset_of(mut index: usize, dims: &[usize], strides: &[usize]) -> usize {
    let mut off = 0;
    for (&d, &s) in dims.iter().zip(strides).rev() {
        off += (index % d) * s;
        index /= d;
    }
    off
}

/// `a op b` with numpy broadcasting into `out_shape`.
pub(super) fn binary(
    ctx: &Ctx<'_>,
    op: BinaryOp,
    a: &TensorRef<'_>,
    b: &TensorRef<'_>,
    out_shape: &[usize],
) -> Result<Vec<f32>, Error> {
    let (av, bv) = (f32s(a)?, f32s(b)?);
    let n = super::numel(out_shape)?;
    let mut out = alloc::<f32>(n)?;
    if n == 0 {
        return Ok(out);
    }
    let rank = out_shape.len();
    let (dims, strides) = coalesce(
        out_shape,
        &[
            broadcast_strides(a.shape, rank),
            broadcast_strides(b.shape, rank),
        ],
    );
    let inner = dims[dims.len() - 1];
    let outer = &dims[..dims.len() - 1];
    let (sa, sb) = (&strides[0], &strides[1]);
    let (ia, ib) = (sa[sa.len() - 1], sb[sb.len() - 1]);
    // Chunks of FLAT_ROW output elements, each walked as pieces of output
    // rows: a same-shape op coalesces to one long row, which still splits
    // across threads this way.
    ctx.rows(&mut out, FLAT_ROW, FLAT_ROW, |first, chunk| {
        let mut at = first * FLAT_ROW;
        let mut rest = chunk;
        while !rest.is_empty() {
            let (row, col) = (at / inner, at % inner);
            let take = (inner - col).min(rest.len());
            let (piece, tail) = rest.split_at_mut(take);
            let x = Operand::at(av, offset_of(row, outer, sa), ia, col, take);
            let y = Operand::at(bv, offset_of(row, outer, sb), ib, col, take);
            binary_row(ctx.simd, op, x, y, piece);
            at += take;
            rest = tail;
        }
    });
    Ok(out)
}

multiversion! {
    fn f32_to_i32(x: &[f32], out: &mut [i32]) {
        // Rust's `as` is the spec: truncate toward zero, saturate, NaN → 0.
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v as i32;
        }
    }
}

multiversion! {
    fn i32_to_f32(x: &[i32], out: &mut [f32]) {
        // Round to nearest, ties to even (exact below 2^24).
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v as f32;
        }
    }
}

/// Converts `x` to `to`.
pub(super) fn cast(ctx: &Ctx<'_>, x: &TensorRef<'_>, to: DType) -> Result<Values, Error> {
    Ok(match (x.dtype, to) {
        (DType::F32, DType::F32) => Values::F32(f32s(x)?.to_vec()),
        (DType::I32, DType::I32) => Values::I32(i32s(x)?.to_vec()),
        (DType::F32, DType::I32) => {
            let v = f32s(x)?;
            let mut out = alloc::<i32>(v.len())?;
            ctx.rows(&mut out, FLAT_ROW, FLAT_ROW, |row, chunk| {
                let start = row * FLAT_ROW;
                f32_to_i32(ctx.simd, &v[start..start + chunk.len()], chunk);
            });
            Values::I32(out)
        }
        (DType::I32, DType::F32) => {
            let v = i32s(x)?;
            let mut out = alloc::<f32>(v.len())?;
            ctx.rows(&mut out, FLAT_ROW, FLAT_ROW, |row, chunk| {
                let start = row * FLAT_ROW;
                i32_to_f32(ctx.simd, &v[start..start + chunk.len()], chunk);
            });
            Values::F32(out)
        }
    })
}
