//! Reductions: over the last axis (`reduce`, `argmax`) and the masked mean
//! over a sequence (`masked_mean_pool`). Owns the last-axis rule that the
//! row-wise norms share.

use crate::dtype::DType;
use crate::error::Error;
use crate::op::{Op, ReduceOp};
use crate::session::Session;
use crate::tensor::Tensor;

impl Session {
    /// Reduction over the last axis: `[..., n]` → `[...]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor or a scalar; quota and
    /// budget errors as usual.
    pub fn reduce(&mut self, op: ReduceOp, x: &Tensor) -> Result<Tensor, Error> {
        let what = reduce_name(op);
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        let (rows, _) = last_axis(what, x)?;
        let mut flops = x.numel() as u128;
        if op == ReduceOp::Mean {
            flops += rows as u128;
        }
        let out_shape = x.shape[..x.shape.len() - 1].to_vec();
        self.op(what, Op::Reduce(op), &[x], out_shape, DType::F32, flops)
    }

    /// Masked mean over the sequence: x `[b, s, d]`, mask `[b, s]` (f32) → `[b, d]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for non-f32 operands or x not of rank 3;
    /// [`Error::ShapeMismatch`] unless the mask is `[b, s]`; quota and budget
    /// errors as usual.
    pub fn masked_mean_pool(&mut self, x: &Tensor, mask: &Tensor) -> Result<Tensor, Error> {
        let what = "masked_mean_pool";
        self.check_inputs(
            what,
            &[("x", x, Some(DType::F32)), ("mask", mask, Some(DType::F32))],
        )?;
        let &[b, s, d] = &*x.shape else {
            return Err(Error::InvalidArgument(format!(
                "{what}: x must be [batch, seq, dim] but it is {:?}",
                x.shape
            )));
        };
        if *mask.shape != [b, s] {
            return Err(Error::ShapeMismatch(format!(
                "{what}: mask must be [batch, seq] = [{b}, {s}] for x {:?} but it is {:?}",
                x.shape, mask.shape
            )));
        }
        let (b, s, d) = (b as u128, s as u128, d as u128);
        let flops = 2 * b * s * d + b * s + b * d;
        self.op(
            what,
            Op::MaskedMeanPool,
            &[x, mask],
            vec![x.shape[0], x.shape[2]],
            DType::F32,
            flops,
        )
    }

    /// Index of the largest element of the last axis (first on ties; the first NaN wins) → i32.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 tensor, a scalar, an empty
    /// last axis, or one longer than i32 can index; quota and budget errors as usual.
    pub fn argmax(&mut self, x: &Tensor) -> Result<Tensor, Error> {
        let what = "argmax";
        self.check_inputs(what, &[("x", x, Some(DType::F32))])?;
        let (_, n) = last_axis(what, x)?;
        if n == 0 || n - 1 > i32::MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "{what}: the last axis of x {:?} has {n} elements; it needs 1 to 2^31",
                x.shape
            )));
        }
        let flops = x.numel() as u128;
        let out_shape = x.shape[..x.shape.len() - 1].to_vec();
        self.op(what, Op::Argmax, &[x], out_shape, DType::I32, flops)
    }
}

/// (rows, n) for an op over the last axis of `x`, which needs rank ≥ 1.
pub(crate) fn last_axis(what: &str, x: &Tensor) -> Result<(usize, usize), Error> {
    match x.shape.split_last() {
        Some((&n, outer)) => Ok((outer.iter().product(), n)),
        None => Err(Error::InvalidArgument(format!(
            "{what}: x is a scalar; the op works along the last axis, so reshape x to [1]"
        ))),
    }
}

pub(crate) fn reduce_name(op: ReduceOp) -> &'static str {
    match op {
        ReduceOp::Sum => "reduce_sum",
        ReduceOp::Mean => "reduce_mean",
        ReduceOp::Max => "reduce_max",
        ReduceOp::Min => "reduce_min",
    }
}
