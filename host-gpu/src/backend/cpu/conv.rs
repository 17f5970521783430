//! NCHW convolution (as a GEMM over an implicit im2col matrix) and max pooling.

use crate::backend::contract::TensorRef;
use crate::backend::cpu::alloc::{alloc, numel, uninit};
use crate::backend::cpu::buffer::f32s;
use crate::backend::cpu::ctx::Ctx;
use crate::backend::cpu::matmul::{SourceB, Strided, for_each_part, gemm};
use crate::backend::cpu::scalar::{self, canon};
use crate::backend::cpu::simd::multiversion;
use crate::error::Error;

/// The geometry of one conv2d or max-pool2d.
#[derive(Debug, Clone, Copy)]
struct Window {
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    ho: usize,
    wo: usize,
}

impl Window {
    /// The input row and column under window offset (ki, kj) of output (oy, ox),
    /// or `None` in the padding.
    #[inline(always)]
    fn at(&self, oy: usize, ox: usize, ki: usize, kj: usize) -> Option<(usize, usize)> {
        // Below the padding the subtraction wraps to a huge value, which the bound rejects.
        let iy = (oy * self.sh + ki).wrapping_sub(self.ph);
        let ix = (ox * self.sw + kj).wrapping_sub(self.pw);
        (iy < self.h && ix < self.w).then_some((iy, ix))
    }
}

/// The im2col matrix of one image `[c, h, w]`, never materialised: row
/// `(ci·kh + ki)·kw + kj`, column `oy·wo + ox` holds
/// `x[ci, oy·sh + ki − ph, ox·sw + kj − pw]`, or +0.0 in the padding.
struct Im2col<'a> {
    x: &'a [f32],
    win: Window,
}

impl SourceB for Im2col<'_> {
    fn pack_panel(
        &self,
        k0: usize,
        kc: usize,
        j0: usize,
        width: usize,
        nr: usize,
        dst: &mut [f32],
    ) {
        let win = &self.win;
        let plane = win.h * win.w;
        for (kk, row) in dst.chunks_exact_mut(nr).take(kc).enumerate() {
            let t = k0 + kk;
            let (kj, ki, ci) = (t % win.kw, (t / win.kw) % win.kh, t / (win.kw * win.kh));
            let x = &self.x[ci * plane..(ci + 1) * plane];
            let (mut oy, mut ox) = (j0 / win.wo, j0 % win.wo);
            for o in row[..width].iter_mut() {
                *o = win
                    .at(oy, ox, ki, kj)
                    .map_or(0.0, |(iy, ix)| x[iy * win.w + ix]);
                ox += 1;
                if ox == win.wo {
                    ox = 0;
                    oy += 1;
                }
            }
            row[width..].fill(0.0);
        }
    }
}

/// The window geometry of x `[n, c, h, w]` with a `(kh, kw)` kernel into `out_shape`.
fn window(
    x: &[usize],
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    out_shape: &[usize],
) -> Result<Window, Error> {
    match (x, out_shape) {
        (&[_, _, h, w], &[_, _, ho, wo]) => Ok(Window {
            h,
            w,
            kh: kernel.0,
            kw: kernel.1,
            sh: stride.0,
            sw: stride.1,
            ph: padding.0,
            pw: padding.1,
            ho,
            wo,
        }),
        _ => Err(Error::Device(format!(
            "cpu: window op on {x:?} → {out_shape:?}"
        ))),
    }
}

multiversion! {
    fn add_bias_rows(out: &mut [f32], plane: usize, first_row: usize, bias: &[f32]) {
        for (r, row) in out.chunks_exact_mut(plane).enumerate() {
            let b = bias[(first_row + r) % bias.len()];
            for v in row.iter_mut() {
                *v = canon(*v + b);
            }
        }
    }
}

/// conv2d NCHW: x `[n, c, h, w]`, weight `[o, c, kh, kw]`, optional bias `[o]`.
pub(super) fn conv2d(
    ctx: &Ctx<'_>,
    x: &TensorRef<'_>,
    weight: &TensorRef<'_>,
    bias: Option<&[f32]>,
    stride: (usize, usize),
    padding: (usize, usize),
    out_shape: &[usize],
) -> Result<Vec<f32>, Error> {
    let (xv, wv) = (f32s(x)?, f32s(weight)?);
    let &[o, c, kh, kw] = weight.shape else {
        return Err(Error::Device(format!(
            "cpu: conv2d weight {:?}",
            weight.shape
        )));
    };
    let win = window(x.shape, (kh, kw), stride, padding, out_shape)?;
    let images = x.shape[0];
    let k = c * kh * kw;
    let cols = win.ho * win.wo;
    let len = numel(out_shape)?;
    if len != images * o * cols || xv.len() != images * c * win.h * win.w {
        return Err(Error::Device("cpu: conv2d sizes".into()));
    }
    let image = c * win.h * win.w;
    let mut out = uninit::<f32>(len)?;
    let parts = &mut out.spare_capacity_mut()[..len];
    for_each_part(ctx, parts, images, 2 * o * k * cols, |ctx, i, part| {
        let a = Strided {
            data: wv,
            off: 0,
            rs: k,
            cs: 1,
        };
        let b = Im2col {
            x: &xv[i * image..(i + 1) * image],
            win,
        };
        gemm(ctx, o, cols, k, &a, &b, None, None, part)
    })?;
    // SAFETY: each image's gemm returned Ok, so wrote every one of its
    // elements, and the images cover all `len`.
    unsafe { out.set_len(len) };
    if let Some(bias) = bias.filter(|b| !b.is_empty() && cols > 0) {
        if bias.len() != o {
            return Err(Error::Device("cpu: conv2d bias size".into()));
        }
        ctx.rows(&mut out, cols, cols, |first, chunk| {
            add_bias_rows(ctx.simd, chunk, cols, first, bias);
        });
    }
    Ok(out)
}

multiversion! {
    fn pool_planes(x: &[f32], win: Window, out: &mut [f32]) {
        let plane = win.h * win.w;
        for (xp, op) in x.chunks_exact(plane).zip(out.chunks_exact_mut(win.ho * win.wo)) {
            for oy in 0..win.ho {
                for ox in 0..win.wo {
                    // Padding is skipped, so it never wins; the session makes
                    // sure every window holds at least one real element.
                    let mut m = f32::NEG_INFINITY;
                    for ki in 0..win.kh {
                        for kj in 0..win.kw {
                            if let Some((iy, ix)) = win.at(oy, ox, ki, kj) {
                                m = scalar::max(m, xp[iy * win.w + ix]);
                            }
                        }
                    }
                    op[oy * win.wo + ox] = canon(m);
                }
            }
        }
    }
}

/// max-pool2d NCHW.
pub(super) fn max_pool2d(
    ctx: &Ctx<'_>,
    x: &TensorRef<'_>,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    out_shape: &[usize],
) -> Result<Vec<f32>, Error> {
    let xv = f32s(x)?;
    let win = window(x.shape, kernel, stride, padding, out_shape)?;
    let (plane_in, plane_out) = (win.h * win.w, win.ho * win.wo);
    let mut out = alloc::<f32>(numel(out_shape)?)?;
    if out.is_empty() {
        return Ok(out);
    }
    if plane_in == 0 || xv.len() / plane_in != out.len() / plane_out {
        return Err(Error::Device("cpu: max_pool2d sizes".into()));
    }
    ctx.rows(
        &mut out,
        plane_out,
        plane_out * win.kh * win.kw,
        |first, chunk| {
            let planes = chunk.len() / plane_out;
            let xs = &xv[first * plane_in..(first + planes) * plane_in];
            pool_planes(ctx.simd, xs, win, chunk);
        },
    );
    Ok(out)
}
