//! Ops that move elements without arithmetic: `gather` (embedding
//! lookup; indices checked before anything is charged), `reshape` (shares
//! the buffer: no copy, quota or work), `permute`, `slice`, `concat`. Their
//! work is bytes moved only.

use crate::dtype::DType;
use crate::error::Error;
use crate::op::Op;
use crate::session::{Session, tensor_ref, too_large};
use crate::tensor::Tensor;

impl Session {
    /// Embedding lookup: table `[v, d]` (f32 or i32), i32 indices `[...]` → `[..., d]`.
    /// A table of blocks ([`DType::Q4_0`], …) gives f32 rows, each the
    /// decoded values of its blocks.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if the table is not rank 2, the indices are
    /// not i32, or an index is negative or ≥ v (checked before anything is
    /// charged); quota and budget errors as usual.
    pub fn gather(&mut self, table: &Tensor, indices: &Tensor) -> Result<Tensor, Error> {
        let what = "gather";
        let table_dtype = table.dtype.is_blocks().then_some(table.dtype);
        self.check_inputs(
            what,
            &[
                ("table", table, table_dtype),
                ("indices", indices, Some(DType::I32)),
            ],
        )?;
        let out_dtype = if table.dtype.is_blocks() {
            DType::F32
        } else {
            table.dtype
        };
        let &[rows, d] = &*table.shape else {
            return Err(Error::InvalidArgument(format!(
                "{what}: the table must be [rows, dim] but it is {:?}",
                table.shape
            )));
        };
        let mut out_shape = indices.shape.to_vec();
        out_shape.push(d);
        self.check_rank(what, &out_shape)?;
        if let Some((at, v)) = self
            .device()
            .backend()
            .first_index_out_of_range(tensor_ref(indices), rows)?
        {
            return Err(Error::InvalidArgument(format!(
                "{what}: index {v} at position {at} is outside the table's {rows} rows (valid: 0..{rows})"
            )));
        }
        let (_, out_bytes) = self.checked_size(what, &out_shape, out_dtype)?;
        // Reads the indices and the picked rows, writes the output.
        let read = indices.byte_len() as u128 + out_bytes as u128;
        self.op_with_read(
            what,
            Op::Gather,
            &[table, indices],
            out_shape,
            out_dtype,
            0,
            read,
        )
    }

    /// Same elements, new shape (shares the buffer: no copy, no quota, no work).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the element counts differ;
    /// [`Error::InvalidArgument`] for a shape past the rank limit or a tensor
    /// of another session.
    pub fn reshape(&mut self, x: &Tensor, shape: &[usize]) -> Result<Tensor, Error> {
        let what = "reshape";
        self.check_inputs(what, &[("x", x, None)])?;
        let (numel, _) = self.checked_size(what, shape, x.dtype)?;
        if numel != x.numel() {
            return Err(Error::ShapeMismatch(format!(
                "{what}: x is {:?} ({} elements) but {shape:?} holds {numel}; the element counts must agree",
                x.shape,
                x.numel()
            )));
        }
        Ok(Tensor {
            shape: shape.into(),
            dtype: x.dtype,
            buffer: x.buffer.clone(),
        })
    }

    /// Reorders dimensions: output dimension i is input dimension `axes[i]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] unless `axes` is a permutation of
    /// `0..rank`; quota and budget errors as usual.
    pub fn permute(&mut self, x: &Tensor, axes: &[usize]) -> Result<Tensor, Error> {
        let what = "permute";
        self.check_inputs(what, &[("x", x, None)])?;
        let rank = x.shape.len();
        let mut seen = vec![false; rank];
        let valid = axes.len() == rank
            && axes
                .iter()
                .all(|&a| a < rank && !std::mem::replace(&mut seen[a], true));
        if !valid {
            return Err(Error::InvalidArgument(format!(
                "{what}: axes {axes:?} are not a permutation of 0..{rank} (x is {:?})",
                x.shape
            )));
        }
        let out_shape = axes.iter().map(|&a| x.shape[a]).collect();
        self.op(
            what,
            Op::Permute {
                axes: axes.to_vec(),
            },
            &[x],
            out_shape,
            x.dtype,
            0,
        )
    }

    /// Elements `start..end` of `axis`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `axis` is not below the rank or
    /// `start..end` is not inside it; quota and budget errors as usual.
    pub fn slice(
        &mut self,
        x: &Tensor,
        axis: usize,
        start: usize,
        end: usize,
    ) -> Result<Tensor, Error> {
        let what = "slice";
        self.check_inputs(what, &[("x", x, None)])?;
        let dim = axis_len(what, x, axis)?;
        if start > end || end > dim {
            return Err(Error::InvalidArgument(format!(
                "{what}: {start}..{end} is not inside axis {axis} of x {:?} (length {dim}); need start ≤ end ≤ {dim}",
                x.shape
            )));
        }
        let mut out_shape = x.shape.to_vec();
        out_shape[axis] = end - start;
        let (_, out_bytes) = self.checked_size(what, &out_shape, x.dtype)?;
        self.op_with_read(
            what,
            Op::Slice { axis, start, end },
            &[x],
            out_shape,
            x.dtype,
            0,
            out_bytes as u128,
        )
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an empty list, mixed dtypes or ranks,
    /// or an axis not below the rank; [`Error::ShapeMismatch`] if another
    /// dimension differs; quota and budget errors as usual.
    pub fn concat(&mut self, xs: &[&Tensor], axis: usize) -> Result<Tensor, Error> {
        let what = "concat";
        let Some(&first) = xs.first() else {
            return Err(Error::InvalidArgument(format!(
                "{what}: needs at least one tensor"
            )));
        };
        for (i, x) in xs.iter().enumerate() {
            self.check_owned(what, &format!("xs[{i}]"), x)?;
            if x.dtype != first.dtype || x.shape.len() != first.shape.len() {
                return Err(Error::InvalidArgument(format!(
                    "{what}: xs[{i}] is {} {:?} but xs[0] is {} {:?}; all must share dtype and rank",
                    x.dtype.name(),
                    x.shape,
                    first.dtype.name(),
                    first.shape
                )));
            }
        }
        axis_len(what, first, axis)?;
        let mut out_shape = first.shape.to_vec();
        let mut total: usize = 0;
        for (i, x) in xs.iter().enumerate() {
            let differs = x
                .shape
                .iter()
                .zip(first.shape.iter())
                .enumerate()
                .any(|(d, (a, b))| d != axis && a != b);
            if differs {
                return Err(Error::ShapeMismatch(format!(
                    "{what}: xs[{i}] is {:?} but xs[0] is {:?}; every dimension except axis {axis} must agree",
                    x.shape, first.shape
                )));
            }
            total = total
                .checked_add(x.shape[axis])
                .ok_or_else(|| too_large(what))?;
        }
        out_shape[axis] = total;
        self.op(what, Op::Concat { axis }, xs, out_shape, first.dtype, 0)
    }
}

/// The length of `axis` of `x`.
pub(crate) fn axis_len(what: &str, x: &Tensor, axis: usize) -> Result<usize, Error> {
    x.shape.get(axis).copied().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{what}: axis {axis} does not exist in x {:?} (rank {})",
            x.shape,
            x.shape.len()
        ))
    })
}
