//! Data movement: permute, slice, concat, gather. Elements are copied bit for
//! bit (any dtype), so these ops never round and never create a NaN.

use std::mem::MaybeUninit;

use crate::backend::contract::{TensorRef, first_index_outside};
use crate::backend::cpu::alloc::{alloc, numel};
use crate::backend::cpu::buffer::{Values, buffer};
use crate::backend::cpu::ctx::Ctx;
use crate::backend::cpu::elementwise::Odometer;
use crate::error::Error;

/// Runs `$body` with `$v` bound to the elements of `$buf` (f32 or i32) and
/// wraps the resulting vector back in the same variant.
macro_rules! per_dtype {
    ($buf:expr, |$v:ident| $body:expr) => {
        match $buf {
            Values::F32($v) => Values::F32($body),
            Values::I32($v) => Values::I32($body),
            // The session refuses blocks to every layout op.
            Values::Blocks(_) => {
                return Err(Error::Device(
                    "cpu: a layout op on a tensor of blocks".into(),
                ))
            }
        }
    };
}

/// Output dimension i is input dimension `axes[i]`.
pub(super) fn permute(ctx: &Ctx<'_>, x: &TensorRef<'_>, axes: &[usize]) -> Result<Values, Error> {
    let rank = x.shape.len();
    if axes.len() != rank || axes.iter().any(|&a| a >= rank) {
        return Err(Error::Device(format!("cpu: permute axes {axes:?}")));
    }
    let mut in_strides = vec![0; rank];
    let mut stride = 1;
    for i in (0..rank).rev() {
        in_strides[i] = stride;
        stride *= x.shape[i];
    }
    let out_dims: Vec<usize> = axes.iter().map(|&a| x.shape[a]).collect();
    let strides: Vec<usize> = axes.iter().map(|&a| in_strides[a]).collect();
    let (dims, strides) = super::elementwise::coalesce(&out_dims, &[strides]);
    let strides = &strides[0];
    Ok(per_dtype!(buffer(x)?, |v| strided_copy(
        ctx, v, &dims, strides
    )?))
}

/// Copies the elements of `x` at `strides` over `dims` (row-major) into a new vector.
fn strided_copy<T: Copy + Default + Send + Sync>(
    ctx: &Ctx<'_>,
    x: &[T],
    dims: &[usize],
    strides: &[usize],
) -> Result<Vec<T>, Error> {
    let n = numel(dims)?;
    if n == 0 {
        return alloc(0);
    }
    let inner = dims[dims.len() - 1];
    let step = strides[strides.len() - 1];
    let (outer_dims, outer_strides) = (&dims[..dims.len() - 1], &strides[..strides.len() - 1]);
    let copy = |first: usize, chunk: &mut [MaybeUninit<T>]| {
        // The chunk's first row is located once; later rows step an odometer
        // over the outer dimensions (no division per row).
        let mut rows = Odometer::at(first, outer_dims, [outer_strides]);
        for row in chunk.chunks_exact_mut(inner) {
            let [off] = rows.offsets;
            if step == 1 {
                row.write_copy_of_slice(&x[off..off + inner]);
            } else {
                for (j, o) in row.iter_mut().enumerate() {
                    o.write(x[off + j * step]);
                }
            }
            rows.advance();
        }
    };
    // SAFETY: every row of every chunk is written whole.
    unsafe { ctx.copied_rows(n, inner, inner, copy) }
}

/// Elements `start..end` of `axis`.
pub(super) fn slice(
    ctx: &Ctx<'_>,
    x: &TensorRef<'_>,
    axis: usize,
    start: usize,
    end: usize,
) -> Result<Values, Error> {
    let dim = x.shape.get(axis).copied().unwrap_or(0);
    if start > end || end > dim {
        return Err(Error::Device(format!("cpu: slice {start}..{end} of {dim}")));
    }
    let outer: usize = x.shape[..axis].iter().product();
    let inner: usize = x.shape[axis + 1..].iter().product();
    let (run, skip) = ((end - start) * inner, dim * inner);
    Ok(per_dtype!(buffer(x)?, |v| {
        let copy = |first: usize, chunk: &mut [MaybeUninit<_>]| {
            for (r, o) in chunk.chunks_mut(run).enumerate() {
                let at = (first + r) * skip + start * inner;
                o.write_copy_of_slice(&v[at..at + run]);
            }
        };
        // SAFETY: every row (`run` elements) of every chunk is written whole.
        unsafe { ctx.copied_rows(outer * run, run, run, copy)? }
    }))
}

/// Joins `inputs` along `axis` into `out_shape`.
pub(super) fn concat(
    ctx: &Ctx<'_>,
    inputs: &[TensorRef<'_>],
    axis: usize,
    out_shape: &[usize],
) -> Result<Values, Error> {
    let first = inputs
        .first()
        .ok_or_else(|| Error::Device("cpu: concat of nothing".into()))?;
    let outer: usize = out_shape[..axis].iter().product();
    let inner: usize = out_shape[axis + 1..].iter().product();
    let row = out_shape[axis] * inner;
    // Each input contributes one run of `shape[axis] · inner` elements per outer row.
    let parts: Vec<(&Values, usize)> = inputs
        .iter()
        .map(|t| Ok((buffer(t)?, t.shape.get(axis).copied().unwrap_or(0) * inner)))
        .collect::<Result<_, Error>>()?;
    if parts.iter().map(|p| p.1).sum::<usize>() != row {
        return Err(Error::Device("cpu: concat sizes".into()));
    }
    macro_rules! join {
        ($variant:ident) => {{
            let srcs: Vec<(&[_], usize)> = parts
                .iter()
                .map(|(b, len)| match b {
                    Values::$variant(v) => Ok((v.as_slice(), *len)),
                    _ => Err(Error::Device("cpu: concat of mixed dtypes".into())),
                })
                .collect::<Result<_, Error>>()?;
            let copy = |first: usize, chunk: &mut [MaybeUninit<_>]| {
                for (r, o) in chunk.chunks_mut(row).enumerate() {
                    let mut at = 0;
                    for (src, len) in &srcs {
                        let from = (first + r) * len;
                        o[at..at + len].write_copy_of_slice(&src[from..from + len]);
                        at += len;
                    }
                }
            };
            // SAFETY: the parts' runs add up to `row` (checked above), so
            // every row of every chunk is written whole.
            let out = unsafe { ctx.copied_rows(outer * row, row, row, copy)? };
            Values::$variant(out)
        }};
    }
    Ok(match buffer(first)? {
        Values::F32(_) => join!(F32),
        Values::I32(_) => join!(I32),
        Values::Blocks(_) => return Err(Error::Device("cpu: concat of blocks".into())),
    })
}

/// Rows of `table` `[v, d]` picked by `indices` → `[..., d]`.
pub(super) fn gather(
    ctx: &Ctx<'_>,
    table: &TensorRef<'_>,
    indices: &[i32],
) -> Result<Values, Error> {
    let &[rows, d] = table.shape else {
        return Err(Error::Device(format!(
            "cpu: gather table {:?}",
            table.shape
        )));
    };
    if let Some((at, i)) = first_index_outside(indices, rows) {
        // The session checks first; this keeps a direct caller from reading out of bounds.
        return Err(Error::InvalidArgument(format!(
            "gather: index {i} at position {at} is outside the table's {rows} rows"
        )));
    }
    Ok(per_dtype!(buffer(table)?, |v| {
        let copy = |first: usize, chunk: &mut [MaybeUninit<_>]| {
            for (o, &i) in chunk.chunks_mut(d).zip(&indices[first..]) {
                // In range: checked above.
                let at = i as usize * d;
                o.write_copy_of_slice(&v[at..at + d]);
            }
        };
        // SAFETY: a chunk of `r` rows meets `r` indices (the output has one
        // row per index), and each row is written whole.
        unsafe { ctx.copied_rows(indices.len() * d, d, d, copy)? }
    }))
}
