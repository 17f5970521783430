//! The matrix products: `matmul` (batched, batch dims broadcast, either
//! operand read transposed) and `linear` (matmul, row bias and an optional
//! activation in one op, bit for bit that composition). Shape rule: inner
//! dimensions agree, batch dims broadcast; work: 2 FLOPs per fma, plus one
//! per output for the bias and the activation's FLOPs for `linear`. The
//! kernels are `backend/cpu/matmul.rs` and the CUDA `matmul` kernels.

use crate::dtype::DType;
use crate::error::Error;
use crate::op::{Op, UnaryOp};
use crate::ops::elementwise::{broadcast_shapes, unary_flops};
use crate::session::{Session, product};
use crate::tensor::Tensor;

impl Session {
    /// Batched matmul `[..., m, k] · [..., k, n]`, batch dims broadcast;
    /// `transpose_a`/`transpose_b` read an operand as its transpose over the
    /// last two dims.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a non-f32 operand or one of rank < 2;
    /// [`Error::ShapeMismatch`] if the inner dimensions differ or the batch
    /// dimensions do not broadcast; quota and budget errors as usual.
    pub fn matmul(
        &mut self,
        a: &Tensor,
        b: &Tensor,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<Tensor, Error> {
        let what = "matmul";
        let (out_shape, flops) = self.matmul_shape(what, a, b, transpose_a, transpose_b)?;
        self.op(
            what,
            Op::Matmul {
                transpose_a,
                transpose_b,
            },
            &[a, b],
            out_shape,
            DType::F32,
            flops,
        )
    }

    /// A dense layer: `matmul(x, w, false, transpose_w)` plus `bias`, a
    /// vector as long as the output's last dimension, added to every row,
    /// then `activation` if given — bit for bit `binary(Add, matmul(..),
    /// bias)` then [`Session::unary`] (each output is the dot product
    /// rounded, then the sum rounded, then the function), in one op with no
    /// intermediate tensors. A layer stored as PyTorch's `Linear` (`[out,
    /// in]`) passes `transpose_w = true`.
    ///
    /// # Errors
    ///
    /// As [`Session::matmul`]; [`Error::ShapeMismatch`] if `bias` is not a
    /// vector of the output's last dimension.
    ///
    /// # Example
    ///
    /// ```
    /// # use assay_host_gpu::{Device, Session, SessionLimits};
    /// let mut s = Session::new(Device::cpu(), SessionLimits::default());
    /// let x = s.upload_f32(&[1, 2], vec![1.0, 2.0])?;
    /// let w = s.upload_f32(&[3, 2], vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0])?;
    /// let b = s.upload_f32(&[3], vec![0.5, 0.5, 0.5])?;
    /// let y = s.linear(&x, &w, &b, true, None)?;
    /// assert_eq!(s.read_f32(&y)?, vec![1.5, 2.5, 3.5]);
    /// # Ok::<(), assay_host_gpu::Error>(())
    /// ```
    pub fn linear(
        &mut self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        transpose_w: bool,
        activation: Option<UnaryOp>,
    ) -> Result<Tensor, Error> {
        let what = "linear";
        self.check_inputs(what, &[("bias", bias, Some(DType::F32))])?;
        let (out_shape, flops) = self.matmul_shape(what, x, w, false, transpose_w)?;
        let n = out_shape[out_shape.len() - 1];
        if bias.shape[..] != [n] {
            return Err(Error::ShapeMismatch(format!(
                "{what}: bias must be a vector of the output's last dimension [{n}] but it is {:?}",
                bias.shape
            )));
        }
        let per_output = 1 + activation.map_or(0, unary_flops);
        let epilogue = product(out_shape.iter().copied()).saturating_mul(u128::from(per_output));
        self.op(
            what,
            Op::Linear {
                transpose_b: transpose_w,
                activation,
            },
            &[x, w, bias],
            out_shape,
            DType::F32,
            flops.saturating_add(epilogue),
        )
    }

    /// The output shape and flops of `a · b` (as [`Session::matmul`] checks them).
    fn matmul_shape(
        &self,
        what: &str,
        a: &Tensor,
        b: &Tensor,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<(Vec<usize>, u128), Error> {
        // A matrix of blocks is read as a model keeps its weights: `[n, k]`,
        // each row whole blocks along k, multiplied transposed.
        let b_dtype = if b.dtype.is_blocks() {
            if !transpose_b || transpose_a || b.shape.len() != 2 {
                return Err(Error::InvalidArgument(format!(
                    "{what}: b is a matrix of {} {:?}, which is read only as the transposed b \
                     of a 2-D weight ([n, k], transpose_b = true) with a not transposed",
                    b.dtype.name(),
                    b.shape
                )));
            }
            b.dtype
        } else {
            DType::F32
        };
        self.check_inputs(what, &[("a", a, Some(DType::F32)), ("b", b, Some(b_dtype))])?;
        for (name, t) in [("a", a), ("b", b)] {
            if t.shape.len() < 2 {
                return Err(Error::InvalidArgument(format!(
                    "{what}: {name} must have rank ≥ 2 ([..., rows, cols]) but it is {:?}; reshape a vector to [1, n] or [n, 1]",
                    t.shape
                )));
            }
        }
        let (ra, rb) = (a.shape.len(), b.shape.len());
        let (m, ka) = if transpose_a {
            (a.shape[ra - 1], a.shape[ra - 2])
        } else {
            (a.shape[ra - 2], a.shape[ra - 1])
        };
        let (kb, n) = if transpose_b {
            (b.shape[rb - 1], b.shape[rb - 2])
        } else {
            (b.shape[rb - 2], b.shape[rb - 1])
        };
        if ka != kb {
            let t = |on: bool| if on { " transposed" } else { "" };
            return Err(Error::ShapeMismatch(format!(
                "{what}: inner dimensions differ: a is {:?}{} (k={ka}), b is {:?}{} (k={kb})",
                a.shape,
                t(transpose_a),
                b.shape,
                t(transpose_b)
            )));
        }
        let mut out_shape = broadcast_shapes(what, &a.shape[..ra - 2], &b.shape[..rb - 2])
            .map_err(|e| match e {
                Error::ShapeMismatch(m) => Error::ShapeMismatch(format!(
                    "{m} (the batch dimensions of a {:?} and b {:?})",
                    a.shape, b.shape
                )),
                e => e,
            })?;
        out_shape.extend([m, n]);
        let flops = product(out_shape.iter().copied().chain([ka, 2]));
        Ok((out_shape, flops))
    }
}
