//! Element-wise ops: fill, unary, swiglu, binary (numpy broadcasting), scale, cast.

use crate::backend::contract::TensorRef;
use crate::backend::cpu::alloc::{alloc, numel};
use crate::backend::cpu::buffer::{Values, f32s, i32s};
use crate::backend::cpu::ctx::Ctx;
use crate::backend::cpu::scalar::{self, canon};
use crate::backend::cpu::simd::multiversion;
use crate::dtype::DType;
use crate::error::Error;
use crate::math;
use crate::op::{BinaryOp, UnaryOp};

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

/// Where an element-wise program writes: a new output, or its input.
trait Elements {
    /// Applies `f` to every element, canonicalising NaN.
    fn map(self, f: impl Fn(f32) -> f32);
}

/// Each element of `.0` into the same position of `.1`.
struct ToOutput<'a>(&'a [f32], &'a mut [f32]);

/// Each element replaced.
struct InPlace<'a>(&'a mut [f32]);

impl Elements for ToOutput<'_> {
    #[inline(always)]
    fn map(self, f: impl Fn(f32) -> f32) {
        map(self.0, self.1, f);
    }
}

impl Elements for InPlace<'_> {
    #[inline(always)]
    fn map(self, f: impl Fn(f32) -> f32) {
        for v in self.0.iter_mut() {
            *v = canon(f(*v));
        }
    }
}

/// The scalar program of each unary op, run over `elements` (one
/// monomorphic loop per op, so each vectorises on its own).
#[inline(always)]
fn unary_program(op: UnaryOp, elements: impl Elements) {
    match op {
        UnaryOp::Neg => elements.map(|v| -v),
        UnaryOp::Abs => elements.map(f32::abs),
        UnaryOp::Relu => elements.map(scalar::relu),
        UnaryOp::Gelu => elements.map(scalar::gelu),
        UnaryOp::Tanh => elements.map(math::tanh),
        UnaryOp::Sigmoid => elements.map(scalar::sigmoid),
        UnaryOp::Exp => elements.map(math::exp),
        UnaryOp::Log => elements.map(math::log),
        UnaryOp::Sqrt => elements.map(f32::sqrt),
    }
}

multiversion! {
    fn unary_kernel(op: UnaryOp, x: &[f32], out: &mut [f32]) {
        unary_program(op, ToOutput(x, out));
    }
}

multiversion! {
    /// [`unary_kernel`] over `x` in place (the same program per element).
    pub(super) fn unary_in_place(op: UnaryOp, x: &mut [f32]) {
        unary_program(op, InPlace(x));
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
    ctx.new_rows(
        x.len(),
        FLAT_ROW,
        FLAT_ROW * unary_cost(op),
        |row, chunk| {
            let start = row * FLAT_ROW;
            unary_kernel(ctx.simd, op, &x[start..start + chunk.len()], chunk);
        },
    )
}

multiversion! {
    /// `canon((g · sigmoid(g)) · u)` per element.
    fn swiglu_kernel(gate: &[f32], up: &[f32], out: &mut [f32]) {
        for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
            *o = canon((g * scalar::sigmoid(g)) * u);
        }
    }
}

/// `silu(gate) · up`, element by element (same shapes).
pub(super) fn swiglu(ctx: &Ctx<'_>, gate: &[f32], up: &[f32]) -> Result<Vec<f32>, Error> {
    if gate.len() != up.len() {
        return Err(Error::Device(
            "cpu: swiglu operands differ in length".into(),
        ));
    }
    ctx.new_rows(gate.len(), FLAT_ROW, FLAT_ROW * 18, |row, chunk| {
        let start = row * FLAT_ROW;
        let end = start + chunk.len();
        swiglu_kernel(ctx.simd, &gate[start..end], &up[start..end], chunk);
    })
}

multiversion! {
    fn scale_kernel(x: &[f32], factor: f32, out: &mut [f32]) {
        map(x, out, |v| v * factor);
    }
}

/// `x · factor`.
pub(super) fn scale(ctx: &Ctx<'_>, x: &[f32], factor: f32) -> Result<Vec<f32>, Error> {
    ctx.new_rows(x.len(), FLAT_ROW, FLAT_ROW, |row, chunk| {
        let start = row * FLAT_ROW;
        scale_kernel(ctx.simd, &x[start..start + chunk.len()], factor, chunk);
    })
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

/// How a broadcast binary op walks its operands: output rows of `inner`
/// elements over the `outer` dims; per operand, the stride of each outer dim
/// and of the innermost (after coalescing, 1 for a walk or 0 for a broadcast).
struct Walk<'s> {
    inner: usize,
    outer: &'s [usize],
    a_strides: &'s [usize],
    b_strides: &'s [usize],
    a_step: usize,
    b_step: usize,
}

multiversion! {
    fn binary_chunk(op: BinaryOp, av: &[f32], bv: &[f32], walk: &Walk<'_>, at: usize, out: &mut [f32]) {
        // One monomorphic loop per op so each vectorises on its own.
        match op {
            BinaryOp::Add => walk_rows(BinaryOp::Add, av, bv, walk, at, out),
            BinaryOp::Sub => walk_rows(BinaryOp::Sub, av, bv, walk, at, out),
            BinaryOp::Mul => walk_rows(BinaryOp::Mul, av, bv, walk, at, out),
            BinaryOp::Div => walk_rows(BinaryOp::Div, av, bv, walk, at, out),
            BinaryOp::Max => walk_rows(BinaryOp::Max, av, bv, walk, at, out),
            BinaryOp::Min => walk_rows(BinaryOp::Min, av, bv, walk, at, out),
        }
    }
}

/// Output elements `at..at + out.len()`, row piece by row piece. The first
/// row's operand offsets are computed once; later rows step an odometer over
/// the outer dims (no division per row: short rows, like an attention mask
/// broadcast over heads, made divisions most of the op).
#[inline(always)]
fn walk_rows(op: BinaryOp, av: &[f32], bv: &[f32], walk: &Walk<'_>, at: usize, out: &mut [f32]) {
    let Walk {
        inner,
        outer,
        a_strides,
        b_strides,
        a_step,
        b_step,
    } = *walk;
    let (row, mut col) = (at / inner, at % inner);
    let mut rows = Odometer::at(row, outer, [a_strides, b_strides]);
    let mut rest = out;
    while !rest.is_empty() {
        let take = (inner - col).min(rest.len());
        let (piece, tail) = rest.split_at_mut(take);
        let [oa, ob] = rows.offsets;
        let x = Operand::at(av, oa, a_step, col, take);
        let y = Operand::at(bv, ob, b_step, col, take);
        binary_row_op(op, x, y, piece);
        rest = tail;
        col = 0;
        rows.advance();
    }
}

/// A walk over the rows of a row-major iteration space (`dims`, the outer
/// dims of an op), tracking each operand's element offset of the current
/// row (`strides[k]` are operand k's strides over `dims`). The first row is
/// located with divisions once; each step after is additions only.
pub(super) struct Odometer<'s, const N: usize> {
    dims: &'s [usize],
    strides: [&'s [usize]; N],
    index: Vec<usize>,
    /// Each operand's offset of the current row.
    pub(super) offsets: [usize; N],
}

impl<'s, const N: usize> Odometer<'s, N> {
    /// At row `row`.
    #[inline(always)]
    pub(super) fn at(row: usize, dims: &'s [usize], strides: [&'s [usize]; N]) -> Self {
        let mut index = vec![0usize; dims.len()];
        let mut rest = row;
        for (i, &d) in dims.iter().enumerate().rev() {
            index[i] = rest % d;
            rest /= d;
        }
        let offsets = strides.map(|s| offset_of(row, dims, s));
        Odometer {
            dims,
            strides,
            index,
            offsets,
        }
    }

    /// Moves to the next row (past the last, back to the first).
    #[inline(always)]
    pub(super) fn advance(&mut self) {
        for i in (0..self.dims.len()).rev() {
            self.index[i] += 1;
            for (o, s) in self.offsets.iter_mut().zip(&self.strides) {
                *o += s[i];
            }
            if self.index[i] < self.dims[i] {
                return;
            }
            for (o, s) in self.offsets.iter_mut().zip(&self.strides) {
                *o -= self.dims[i] * s[i];
            }
            self.index[i] = 0;
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
    let n = numel(out_shape)?;
    if n == 0 {
        return alloc(0);
    }
    let rank = out_shape.len();
    let (dims, strides) = coalesce(
        out_shape,
        &[
            broadcast_strides(a.shape, rank),
            broadcast_strides(b.shape, rank),
        ],
    );
    let (sa, sb) = (&strides[0], &strides[1]);
    let walk = Walk {
        inner: dims[dims.len() - 1],
        outer: &dims[..dims.len() - 1],
        a_strides: &sa[..sa.len() - 1],
        b_strides: &sb[..sb.len() - 1],
        a_step: sa[sa.len() - 1],
        b_step: sb[sb.len() - 1],
    };
    // Chunks of FLAT_ROW output elements, each walked as pieces of output
    // rows: a same-shape op coalesces to one long row, which still splits
    // across threads this way.
    ctx.new_rows(n, FLAT_ROW, FLAT_ROW, |first, chunk| {
        binary_chunk(ctx.simd, op, av, bv, &walk, first * FLAT_ROW, chunk);
    })
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
            Values::I32(ctx.new_rows(v.len(), FLAT_ROW, FLAT_ROW, |row, chunk| {
                let start = row * FLAT_ROW;
                f32_to_i32(ctx.simd, &v[start..start + chunk.len()], chunk);
            })?)
        }
        (DType::I32, DType::F32) => {
            let v = i32s(x)?;
            Values::F32(ctx.new_rows(v.len(), FLAT_ROW, FLAT_ROW, |row, chunk| {
                let start = row * FLAT_ROW;
                i32_to_f32(ctx.simd, &v[start..start + chunk.len()], chunk);
            })?)
        }
        // The session refuses blocks to `cast`, and no tensor is cast to blocks.
        _ => return Err(Error::Device("cpu: cast from or to blocks".into())),
    })
}
