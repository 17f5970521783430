//! `rope`: rotary position embedding, the rotation of each head's pairs of
//! columns by angles the caller gives per row. Owns its shape rules and
//! its work formula. The angles' cosines and sines are operands, not
//! computed here: the guest makes its table once (in Wasm, where `sin` and
//! `cos` are the same bits on every machine) and gathers the rows of its
//! positions, so the op itself is products and sums only.

use crate::dtype::DType;
use crate::error::Error;
use crate::op::{Op, RopePairs};
use crate::session::Session;
use crate::tensor::Tensor;

impl Session {
    /// Rotates each head's pairs of columns of `x` `[rows, heads·d]` by the
    /// angles of its row: with `c = cos[r, i]`, `s = sin[r, i]` (both
    /// `[rows, d/2]`) and `(a, b)` the pair `i` of a head in row `r`
    /// (columns `2i, 2i+1` for [`RopePairs::Adjacent`], `i, i + d/2` for
    /// [`RopePairs::Halves`]), the pair becomes `(a·c − b·s, a·s + b·c)`,
    /// each product rounded, then the sum (SEMANTICS.md, `rope`). Every
    /// head of a row uses the same angles. Output: `x`'s shape.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for non-f32 operands, an `x` that is not
    /// a matrix, zero `heads`, or a head width that `heads` does not give
    /// or that is odd; [`Error::ShapeMismatch`] when `cos` or `sin` is not
    /// `[rows, d/2]`; quota and budget errors as usual.
    ///
    /// # Example
    ///
    /// ```
    /// # use assay_host_gpu::{Device, RopePairs, Session, SessionLimits};
    /// let mut s = Session::new(Device::cpu(), SessionLimits::default());
    /// // One row, one head of width 2, turned a quarter: (1, 2) → (−2, 1).
    /// let x = s.upload_f32(&[1, 2], vec![1.0, 2.0])?;
    /// let cos = s.upload_f32(&[1, 1], vec![0.0])?;
    /// let sin = s.upload_f32(&[1, 1], vec![1.0])?;
    /// let y = s.rope(&x, &cos, &sin, 1, RopePairs::Adjacent)?;
    /// assert_eq!(s.read_f32(&y)?, [-2.0, 1.0]);
    /// # Ok::<(), assay_host_gpu::Error>(())
    /// ```
    pub fn rope(
        &mut self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        heads: usize,
        pairs: RopePairs,
    ) -> Result<Tensor, Error> {
        let what = "rope";
        self.check_inputs(
            what,
            &[
                ("x", x, Some(DType::F32)),
                ("cos", cos, Some(DType::F32)),
                ("sin", sin, Some(DType::F32)),
            ],
        )?;
        let &[rows, width] = &x.shape[..] else {
            return Err(Error::InvalidArgument(format!(
                "{what}: x must be [rows, heads·d] but it is {:?}",
                x.shape
            )));
        };
        if heads == 0 || !width.is_multiple_of(heads) || !(width / heads).is_multiple_of(2) {
            return Err(Error::InvalidArgument(format!(
                "{what}: {heads} heads must split x's {width} columns into heads of an even width"
            )));
        }
        let half = width / heads / 2;
        for (name, t) in [("cos", cos), ("sin", sin)] {
            if t.shape[..] != [rows, half] {
                return Err(Error::ShapeMismatch(format!(
                    "{what}: {name} must be [rows, d/2] = [{rows}, {half}] but it is {:?}",
                    t.shape
                )));
            }
        }
        // Per pair: four products and two sums.
        let flops = (rows as u128) * (width as u128) * 3;
        self.op(
            what,
            Op::Rope { heads, pairs },
            &[x, cos, sin],
            x.shape.to_vec(),
            DType::F32,
            flops,
        )
    }
}
