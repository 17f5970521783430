//! Sliding-window ops on NCHW images: `conv2d` (optional bias) and
//! `max_pool2d`. Owns the window rule (output height and width from kernel,
//! stride and padding), as candle's `conv.rs` owns conv's parameters.

use crate::dtype::DType;
use crate::error::Error;
use crate::op::Op;
use crate::session::{Session, product, too_large};
use crate::tensor::Tensor;

impl Session {
    /// 2-D convolution, NCHW: x `[n, c, h, w]`, weight `[o, c, kh, kw]`,
    /// optional bias `[o]` → `[n, o, (h + 2·ph − kh) / sh + 1, (w + 2·pw − kw) / sw + 1]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for non-f32 operands, wrong ranks, a zero
    /// kernel size or stride; [`Error::ShapeMismatch`] if the channels or the
    /// bias do not match or the kernel is larger than the padded input;
    /// quota and budget errors as usual.
    pub fn conv2d(
        &mut self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor, Error> {
        let what = "conv2d";
        self.check_inputs(
            what,
            &[
                ("x", x, Some(DType::F32)),
                ("weight", weight, Some(DType::F32)),
            ],
        )?;
        let (&[n, c, h, w], &[o, wc, kh, kw]) = (&*x.shape, &*weight.shape) else {
            return Err(Error::InvalidArgument(format!(
                "{what}: x must be [n, c, h, w] and weight [o, c, kh, kw]; they are {:?} and {:?}",
                x.shape, weight.shape
            )));
        };
        if c != wc {
            return Err(Error::ShapeMismatch(format!(
                "{what}: x {:?} has {c} channels but weight {:?} expects {wc}",
                x.shape, weight.shape
            )));
        }
        if let Some(bias) = bias {
            self.check_inputs(what, &[("bias", bias, Some(DType::F32))])?;
            if *bias.shape != [o] {
                return Err(Error::ShapeMismatch(format!(
                    "{what}: bias must be [{o}] (one per output channel of weight {:?}) but it is {:?}",
                    weight.shape, bias.shape
                )));
            }
        }
        let (ho, wo) = window_out(what, (h, w), (kh, kw), stride, padding)?;
        let out_shape = vec![n, o, ho, wo];
        let outputs = product([n, o, ho, wo]);
        let mut flops = product([n, o, ho, wo, c, kh, kw, 2]);
        let mut inputs = vec![x, weight];
        if let Some(bias) = bias {
            flops = flops.saturating_add(outputs);
            inputs.push(bias);
        }
        self.op(
            what,
            Op::Conv2d {
                stride,
                padding,
                has_bias: bias.is_some(),
            },
            &inputs,
            out_shape,
            DType::F32,
            flops,
        )
    }

    /// 2-D max pooling, NCHW; padded positions never win.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 or non-rank-4 x, an empty
    /// image, a zero kernel size or stride, or padding above half the kernel
    /// (a window must hold a real element); [`Error::ShapeMismatch`] if the
    /// kernel is larger than the padded input; quota and budget errors as usual.
    pub fn max_pool2d(
        &mut self,
        x: &Tensor,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor, Error> {
        let what = "max_pool2d";
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        let &[n, c, h, w] = &*x.shape else {
            return Err(Error::InvalidArgument(format!(
                "{what}: x must be [n, c, h, w] but it is {:?}",
                x.shape
            )));
        };
        if h == 0 || w == 0 {
            return Err(Error::InvalidArgument(format!(
                "{what}: x {:?} has an empty image; height and width must be at least 1",
                x.shape
            )));
        }
        if padding.0 > kernel.0 / 2 || padding.1 > kernel.1 / 2 {
            return Err(Error::InvalidArgument(format!(
                "{what}: padding {padding:?} is more than half the kernel {kernel:?}; a window could hold only padding"
            )));
        }
        let (ho, wo) = window_out(what, (h, w), kernel, stride, padding)?;
        let flops = product([n, c, ho, wo, kernel.0, kernel.1]);
        self.op(
            what,
            Op::MaxPool2d {
                kernel,
                stride,
                padding,
            },
            &[x],
            vec![n, c, ho, wo],
            DType::F32,
            flops,
        )
    }
}

/// The output height and width of a sliding window (conv2d, max-pool2d).
pub(crate) fn window_out(
    what: &str,
    (h, w): (usize, usize),
    (kh, kw): (usize, usize),
    (sh, sw): (usize, usize),
    (ph, pw): (usize, usize),
) -> Result<(usize, usize), Error> {
    if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
        return Err(Error::InvalidArgument(format!(
            "{what}: kernel ({kh}, {kw}) and stride ({sh}, {sw}) must be at least 1"
        )));
    }
    let side = |size: usize, k: usize, s: usize, p: usize| -> Result<usize, Error> {
        let padded = p
            .checked_mul(2)
            .and_then(|p2| size.checked_add(p2))
            .ok_or_else(|| too_large(what))?;
        if padded < k {
            return Err(Error::ShapeMismatch(format!(
                "{what}: the kernel ({kh}, {kw}) is larger than the padded input ({} + 2·{ph}, {} + 2·{pw})",
                h, w
            )));
        }
        Ok((padded - k) / s + 1)
    };
    Ok((side(h, kh, sh, ph)?, side(w, kw, sw, pw)?))
}
