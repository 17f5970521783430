//! Row-wise normalisations over the last axis: softmax, layer-norm, rms-norm, l2-normalize.

use crate::backend::contract::TensorRef;
use crate::backend::cpu::buffer::f32s;
use crate::backend::cpu::ctx::Ctx;
use crate::backend::cpu::reduce::{
    LANES, combine, lane_sum, lane_sum_squared_deviations, lane_sum_squares, row_max,
};
use crate::backend::cpu::scalar::{self, canon};
use crate::backend::cpu::simd::multiversion;
use crate::error::Error;
use crate::math;

/// Runs `kernel` over the rows of `x` (last axis) into a fresh output.
fn by_rows(
    ctx: &Ctx<'_>,
    x: &TensorRef<'_>,
    cost_per_element: usize,
    kernel: impl Fn(&[f32], &mut [f32]) + Sync + Send,
) -> Result<Vec<f32>, Error> {
    let v = f32s(x)?;
    let n = x.shape.last().copied().unwrap_or(1);
    ctx.new_rows(v.len(), n, n * cost_per_element, |first, chunk| {
        kernel(&v[first * n..first * n + chunk.len()], chunk);
    })
}

multiversion! {
    pub(super) fn softmax_rows(x: &[f32], n: usize, out: &mut [f32]) {
        // x − max per row, then exp over the whole chunk in one pass: rows
        // shorter than a vector (attention over a 15-token sentence) kept
        // exp scalar when it ran row by row.
        for (row, o) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let m = row_max(row);
            for (ov, &xv) in o.iter_mut().zip(row) {
                *ov = xv - m;
            }
        }
        for v in out.iter_mut() {
            *v = math::exp(*v);
        }
        // Σ e in the 32-lane order, then one division per row.
        for o in out.chunks_exact_mut(n) {
            let mut s = [0.0f32; LANES];
            for chunk in o.chunks(LANES) {
                for (acc, &e) in s.iter_mut().zip(chunk) {
                    *acc += e;
                }
            }
            let inv = 1.0 / combine(s);
            for ov in o.iter_mut() {
                *ov = canon(*ov * inv);
            }
        }
    }
}

/// Softmax over the last axis: `exp(x − max) · (1 / Σ exp(x − max))`: one
/// division per row, a multiplication per element (a division per element
/// costs several times more on every backend).
pub(super) fn softmax(ctx: &Ctx<'_>, x: &TensorRef<'_>) -> Result<Vec<f32>, Error> {
    let n = x.shape.last().copied().unwrap_or(1);
    by_rows(ctx, x, 20, |rows, out| softmax_rows(ctx.simd, rows, n, out))
}

multiversion! {
    fn layer_norm_rows(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
        let n = gamma.len();
        let nf = n as f32;
        for (row, o) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let mean = lane_sum(row) / nf;
            let var = lane_sum_squared_deviations(row, mean) / nf;
            let rstd = 1.0 / (var + eps).sqrt();
            for (((ov, &xv), &g), &b) in o.iter_mut().zip(row).zip(gamma).zip(beta) {
                *ov = canon(((xv - mean) * rstd).mul_add(g, b));
            }
        }
    }
}

/// Layer norm over the last axis (see SEMANTICS.md for the rounding order).
pub(super) fn layer_norm(
    ctx: &Ctx<'_>,
    x: &TensorRef<'_>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> Result<Vec<f32>, Error> {
    check_row_params(x, &[gamma, beta])?;
    by_rows(ctx, x, 8, |rows, out| {
        layer_norm_rows(ctx.simd, rows, gamma, beta, eps, out)
    })
}

multiversion! {
    fn rms_norm_rows(x: &[f32], gamma: &[f32], eps: f32, out: &mut [f32]) {
        let n = gamma.len();
        let nf = n as f32;
        for (row, o) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let rstd = 1.0 / (lane_sum_squares(row) / nf + eps).sqrt();
            for ((ov, &xv), &g) in o.iter_mut().zip(row).zip(gamma) {
                *ov = canon((xv * rstd) * g);
            }
        }
    }
}

/// RMS norm over the last axis: `(x · (1 / sqrt(Σx²/n + eps))) · gamma`.
pub(super) fn rms_norm(
    ctx: &Ctx<'_>,
    x: &TensorRef<'_>,
    gamma: &[f32],
    eps: f32,
) -> Result<Vec<f32>, Error> {
    check_row_params(x, &[gamma])?;
    by_rows(ctx, x, 4, |rows, out| {
        rms_norm_rows(ctx.simd, rows, gamma, eps, out)
    })
}

multiversion! {
    fn l2_rows(x: &[f32], n: usize, eps: f32, out: &mut [f32]) {
        for (row, o) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let inv = 1.0 / scalar::max(lane_sum_squares(row).sqrt(), eps);
            for (ov, &xv) in o.iter_mut().zip(row) {
                *ov = canon(xv * inv);
            }
        }
    }
}

/// `x · (1 / max(sqrt(Σx²), eps))` over the last axis.
pub(super) fn l2_normalize(ctx: &Ctx<'_>, x: &TensorRef<'_>, eps: f32) -> Result<Vec<f32>, Error> {
    let n = x.shape.last().copied().unwrap_or(1);
    by_rows(ctx, x, 3, |rows, out| l2_rows(ctx.simd, rows, n, eps, out))
}

/// Per-column parameters (gamma, beta) must have the row length.
fn check_row_params(x: &TensorRef<'_>, params: &[&[f32]]) -> Result<(), Error> {
    let n = x.shape.last().copied().unwrap_or(1);
    if params.iter().any(|p| p.len() != n) {
        return Err(Error::Device(format!(
            "cpu: norm parameters do not match rows of {n}"
        )));
    }
    Ok(())
}
