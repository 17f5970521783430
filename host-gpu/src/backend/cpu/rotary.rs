//! `rope` (SEMANTICS.md): each head's pairs of columns rotated by their
//! row's cosines and sines, in parallel over rows. A pair's two products
//! are rounded before their sum (no fma), on every path.

use crate::backend::contract::TensorRef;
use crate::backend::cpu::buffer::f32s;
use crate::backend::cpu::ctx::Ctx;
use crate::backend::cpu::scalar::canon;
use crate::backend::cpu::simd::multiversion;
use crate::error::Error;
use crate::op::RopePairs;

/// `x` `[rows, heads·d]` rotated by `cos`, `sin` `[rows, d/2]`.
pub(super) fn rope(
    ctx: &Ctx<'_>,
    x: &TensorRef<'_>,
    cos: &[f32],
    sin: &[f32],
    heads: usize,
    pairs: RopePairs,
) -> Result<Vec<f32>, Error> {
    let xv = f32s(x)?;
    let &[_, width] = x.shape else {
        return Err(Error::Device("cpu: rope's x must be a matrix".into()));
    };
    if heads == 0 || !width.is_multiple_of(2 * heads) {
        return Err(Error::Device("cpu: rope's heads".into()));
    }
    let half = width / heads / 2;
    ctx.new_rows(xv.len(), width, 3 * width, |first, chunk| {
        for (r, out) in chunk.chunks_exact_mut(width).enumerate() {
            let row = first + r;
            let angles = (&cos[row * half..][..half], &sin[row * half..][..half]);
            let x = &xv[row * width..][..width];
            for (x, out) in x.chunks_exact(2 * half).zip(out.chunks_exact_mut(2 * half)) {
                match pairs {
                    RopePairs::Adjacent => rotate_adjacent(ctx.simd, x, angles, out),
                    RopePairs::Halves => rotate_halves(ctx.simd, x, angles, out),
                }
            }
        }
    })
}

/// One pair: `(a·c − b·s, a·s + b·c)`, each product rounded, then each sum.
#[inline(always)]
fn rotate(a: f32, b: f32, c: f32, s: f32) -> (f32, f32) {
    (canon(a * c - b * s), canon(a * s + b * c))
}

multiversion! {
    /// One head, pairs `(2i, 2i + 1)`.
    fn rotate_adjacent(x: &[f32], angles: (&[f32], &[f32]), out: &mut [f32]) {
        let (cos, sin) = angles;
        for (((x, out), &c), &s) in x.chunks_exact(2).zip(out.chunks_exact_mut(2)).zip(cos).zip(sin) {
            (out[0], out[1]) = rotate(x[0], x[1], c, s);
        }
    }
}

multiversion! {
    /// One head, pairs `(i, i + d/2)`.
    fn rotate_halves(x: &[f32], angles: (&[f32], &[f32]), out: &mut [f32]) {
        let (cos, sin) = angles;
        let half = cos.len();
        let (lo, hi) = x.split_at(half);
        let (out_lo, out_hi) = out.split_at_mut(half);
        for i in 0..half {
            (out_lo[i], out_hi[i]) = rotate(lo[i], hi[i], cos[i], sin[i]);
        }
    }
}
