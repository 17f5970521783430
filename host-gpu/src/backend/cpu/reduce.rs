//! Reductions over the last axis (the 32-lane order), argmax, masked mean-pool.

use crate::backend::contract::TensorRef;
use crate::backend::cpu::alloc::alloc;
use crate::backend::cpu::buffer::f32s;
use crate::backend::cpu::ctx::Ctx;
use crate::backend::cpu::scalar::{self, canon};
use crate::backend::cpu::simd::multiversion;
use crate::error::Error;
use crate::op::ReduceOp;

/// Lanes of the canonical row reduction (a CUDA warp).
pub(crate) const LANES: usize = 32;

/// Combines the 32 lane sums pairwise: `s[l] += s[l+16]` for l < 16, then
/// +8, +4, +2, +1; the result is `s[0]`.
#[inline(always)]
pub(crate) fn combine(mut s: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            s[l] += s[l + width];
        }
        width /= 2;
    }
    s[0]
}

/// The canonical row reduction: lane `l` folds `step(acc, x[l + 32·j])` for
/// j ascending from `acc = +0.0`, then the lanes [`combine`].
#[inline(always)]
pub(crate) fn lane_fold(x: &[f32], step: impl Fn(f32, f32) -> f32) -> f32 {
    let mut s = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            s[l] = step(s[l], c[l]);
        }
    }
    for (l, &v) in chunks.remainder().iter().enumerate() {
        s[l] = step(s[l], v);
    }
    combine(s)
}

/// Σ x (32-lane order).
#[inline(always)]
pub(crate) fn lane_sum(x: &[f32]) -> f32 {
    lane_fold(x, |acc, v| acc + v)
}

/// Σ x² with each step `acc = fma(x, x, acc)` (32-lane order).
#[inline(always)]
pub(crate) fn lane_sum_squares(x: &[f32]) -> f32 {
    lane_fold(x, |acc, v| v.mul_add(v, acc))
}

/// Σ (x − c)² with each step `d = x − c; acc = fma(d, d, acc)` (32-lane order).
#[inline(always)]
pub(crate) fn lane_sum_squared_deviations(x: &[f32], c: f32) -> f32 {
    lane_fold(x, |acc, v| {
        let d = v - c;
        d.mul_add(d, acc)
    })
}

/// A non-NaN float's rank in the order max and min use (−0 < +0): its
/// bits as an i32 with a negative's magnitude bits flipped, so integer
/// order is that order. Its own inverse.
#[inline(always)]
fn order_key(bits: i32) -> i32 {
    bits ^ ((bits >> 31) & 0x7fff_ffff)
}

/// Max or min of a row (`pick` on order keys), canonical NaN if any
/// element is NaN, `init` if the row is empty. The result does not depend
/// on the order elements are visited (a total order, and NaN wins), so
/// unlike sums this need not follow the 32-lane order: integer max/min
/// vectorises at any row length, where the float one stayed scalar and
/// branchy on rows shorter than 32 (attention over a short sentence).
#[inline(always)]
fn extreme(x: &[f32], init: f32, pick: impl Fn(i32, i32) -> i32) -> f32 {
    let mut nan = false;
    let mut best = order_key(init.to_bits() as i32);
    for &v in x {
        nan |= v.is_nan();
        best = pick(best, order_key(v.to_bits() as i32));
    }
    if nan {
        scalar::CANONICAL_NAN
    } else {
        f32::from_bits(order_key(best) as u32)
    }
}

/// The maximum of a row (NaN if any is NaN; -inf if empty; +0 over −0).
#[inline(always)]
pub(crate) fn row_max(x: &[f32]) -> f32 {
    extreme(x, f32::NEG_INFINITY, i32::max)
}

multiversion! {
    fn reduce_rows(op: ReduceOp, x: &[f32], n: usize, out: &mut [f32]) {
        for (o, row) in out.iter_mut().zip(x.chunks_exact(n)) {
            *o = canon(match op {
                ReduceOp::Sum => lane_sum(row),
                // n as f32 rounds to nearest for n > 2^24, as the spec says.
                ReduceOp::Mean => lane_sum(row) / n as f32,
                ReduceOp::Max => row_max(row),
                ReduceOp::Min => extreme(row, f32::INFINITY, i32::min),
            });
        }
    }
}

/// Reduces the last axis of `x`.
pub(super) fn reduce(ctx: &Ctx<'_>, op: ReduceOp, x: &TensorRef<'_>) -> Result<Vec<f32>, Error> {
    let v = f32s(x)?;
    let n = x.shape.last().copied().unwrap_or(1);
    let rows = x.shape[..x.shape.len().saturating_sub(1)].iter().product();
    let mut out = alloc::<f32>(rows)?;
    if n == 0 {
        // Empty rows: the identity of each op (mean: 0/0, NaN).
        out.fill(canon(match op {
            ReduceOp::Sum => 0.0,
            ReduceOp::Mean => f32::NAN,
            ReduceOp::Max => f32::NEG_INFINITY,
            ReduceOp::Min => f32::INFINITY,
        }));
        return Ok(out);
    }
    ctx.rows(&mut out, 1, n, |first, chunk| {
        let rows = &v[first * n..(first + chunk.len()) * n];
        reduce_rows(ctx.simd, op, rows, n, chunk);
    });
    Ok(out)
}

/// Index of the first maximum of `row`; the first NaN wins. `row` is not empty.
#[inline(always)]
fn argmax_row(row: &[f32]) -> usize {
    let mut best = 0;
    let mut best_value = row[0];
    if best_value.is_nan() {
        return 0;
    }
    for (i, &v) in row.iter().enumerate().skip(1) {
        if v.is_nan() {
            return i;
        }
        if v > best_value {
            best = i;
            best_value = v;
        }
    }
    best
}

/// Index of the largest element of each last-axis row, as i32.
pub(super) fn argmax(ctx: &Ctx<'_>, x: &TensorRef<'_>) -> Result<Vec<i32>, Error> {
    let v = f32s(x)?;
    let n = x.shape.last().copied().unwrap_or(1);
    let rows = x.shape[..x.shape.len().saturating_sub(1)].iter().product();
    let mut out = alloc::<i32>(rows)?;
    if n == 0 || i32::try_from(n - 1).is_err() {
        return Err(Error::Device(format!(
            "cpu: argmax over rows of {n} elements (the session refuses this)"
        )));
    }
    ctx.rows(&mut out, 1, n, |first, chunk| {
        for (r, o) in chunk.iter_mut().enumerate() {
            let at = (first + r) * n;
            // Fits: n - 1 fits in i32 (checked above).
            *o = argmax_row(&v[at..at + n]) as i32;
        }
    });
    Ok(out)
}

multiversion! {
    /// One batch row of masked mean-pool: x `[s, d]`, mask `[s]` → out `[d]`.
    fn pool_one(x: &[f32], mask: &[f32], d: usize, out: &mut [f32]) {
        // `out` starts at +0.0 and accumulates `fma(w, x, acc)` over s
        // ascending; positions with w == ±0 are skipped, so masked padding
        // (whatever it holds, NaN included) never changes a result.
        let mut count = 0.0f32;
        for (s, &w) in mask.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            count += w;
            let row = &x[s * d..(s + 1) * d];
            for (acc, &v) in out.iter_mut().zip(row) {
                *acc = w.mul_add(v, *acc);
            }
        }
        if count == 0.0 {
            out.fill(0.0);
        } else {
            for acc in out.iter_mut() {
                *acc = canon(*acc / count);
            }
        }
    }
}

/// Masked mean over the sequence: x `[b, s, d]`, mask `[b, s]` → `[b, d]`.
pub(super) fn masked_mean_pool(
    ctx: &Ctx<'_>,
    x: &TensorRef<'_>,
    mask: &[f32],
) -> Result<Vec<f32>, Error> {
    let v = f32s(x)?;
    let &[b, s, d] = x.shape else {
        return Err(Error::Device(format!(
            "cpu: masked_mean_pool on shape {:?}",
            x.shape
        )));
    };
    if mask.len() != b * s {
        return Err(Error::Device("cpu: masked_mean_pool mask size".into()));
    }
    ctx.new_rows(b * d, d, s * d, |first, chunk| {
        for (r, o) in chunk.chunks_mut(d).enumerate() {
            let bi = first + r;
            pool_one(
                ctx.simd,
                &v[bi * s * d..(bi + 1) * s * d],
                &mask[bi * s..(bi + 1) * s],
                d,
                o,
            );
        }
    })
}
