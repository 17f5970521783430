//! Row-wise normalisations over the last axis: `softmax`, `layer_norm`,
//! `rms_norm`, `l2_normalize`. Owns the rules for their per-column
//! parameters (gamma, beta) and for `eps`.

use crate::dtype::DType;
use crate::error::Error;
use crate::op::Op;
use crate::ops::elementwise::TRANSCENDENTAL_FLOPS;
use crate::ops::reduce::last_axis;
use crate::session::Session;
use crate::tensor::Tensor;

impl Session {
    /// Softmax over the last axis.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor or a scalar; quota and
    /// budget errors as usual.
    pub fn softmax(&mut self, x: &Tensor) -> Result<Tensor, Error> {
        let what = "softmax";
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        last_axis(what, x)?;
        let flops = x.numel() as u128 * (TRANSCENDENTAL_FLOPS as u128 + 4);
        self.op(what, Op::Softmax, &[x], x.shape.to_vec(), DType::F32, flops)
    }

    /// Layer norm over the last axis: `(x − mean) / sqrt(var + eps) · gamma + beta`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor, a scalar `x`, or an
    /// `eps` that is negative or not finite; [`Error::ShapeMismatch`] unless
    /// gamma and beta are `[n]` for x `[..., n]`; quota and budget errors as usual.
    pub fn layer_norm(
        &mut self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<Tensor, Error> {
        let what = "layer_norm";
        self.check_inputs(
            what,
            &[
                ("x", x, Some(DType::F32)),
                ("gamma", gamma, Some(DType::F32)),
                ("beta", beta, Some(DType::F32)),
            ],
        )?;
        let (rows, _) = last_axis(what, x)?;
        row_param(what, "gamma", gamma, x)?;
        row_param(what, "beta", beta, x)?;
        check_eps(what, eps)?;
        let flops = 8 * x.numel() as u128 + 4 * rows as u128;
        self.op(
            what,
            Op::LayerNorm { eps },
            &[x, gamma, beta],
            x.shape.to_vec(),
            DType::F32,
            flops,
        )
    }

    /// RMS norm over the last axis: `x / sqrt(mean(x²) + eps) · gamma`.
    ///
    /// # Errors
    ///
    /// As [`Session::layer_norm`] (gamma must be `[n]`).
    pub fn rms_norm(&mut self, x: &Tensor, gamma: &Tensor, eps: f32) -> Result<Tensor, Error> {
        let what = "rms_norm";
        self.check_inputs(
            what,
            &[
                ("x", x, Some(DType::F32)),
                ("gamma", gamma, Some(DType::F32)),
            ],
        )?;
        let (rows, _) = last_axis(what, x)?;
        row_param(what, "gamma", gamma, x)?;
        check_eps(what, eps)?;
        let flops = 4 * x.numel() as u128 + 3 * rows as u128;
        self.op(
            what,
            Op::RmsNorm { eps },
            &[x, gamma],
            x.shape.to_vec(),
            DType::F32,
            flops,
        )
    }

    /// x / max(‖x‖₂, eps) over the last axis.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor, a scalar, or an `eps`
    /// that is negative or not finite; quota and budget errors as usual.
    pub fn l2_normalize(&mut self, x: &Tensor, eps: f32) -> Result<Tensor, Error> {
        let what = "l2_normalize";
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        let (rows, _) = last_axis(what, x)?;
        check_eps(what, eps)?;
        let flops = 3 * x.numel() as u128 + 2 * rows as u128;
        self.op(
            what,
            Op::L2Normalize { eps },
            &[x],
            x.shape.to_vec(),
            DType::F32,
            flops,
        )
    }
}

/// A per-column parameter (gamma, beta) must be `[n]` for x `[..., n]`.
pub(crate) fn row_param(what: &str, name: &str, p: &Tensor, x: &Tensor) -> Result<(), Error> {
    let n = x.shape.last().copied().unwrap_or(0);
    if *p.shape != [n] {
        return Err(Error::ShapeMismatch(format!(
            "{what}: {name} must be [{n}] (the last dimension of x {:?}) but it is {:?}",
            x.shape, p.shape
        )));
    }
    Ok(())
}

pub(crate) fn check_eps(what: &str, eps: f32) -> Result<(), Error> {
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(Error::InvalidArgument(format!(
            "{what}: eps is {eps}; it must be finite and ≥ 0 (1e-5 and 1e-12 are usual)"
        )));
    }
    Ok(())
}
