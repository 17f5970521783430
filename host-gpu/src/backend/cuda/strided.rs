//! Index spaces of strided kernels: numpy broadcasting strides, merging of
//! dims every operand walks contiguously, and splitting a rank larger than a
//! kernel's `MAX_DIMS` into several launches. Used by the element-wise
//! (`elementwise`), layout (`layout`) and batched matmul (`matmul`) launches.

use super::gpu::{MAX_DIMS, StridedDims};
use super::{i64of, numel, u64of};
use crate::error::Error;

/// Element strides of `shape` (row-major) seen from an output of `rank`
/// dims: missing leading dims and size-1 dims get 0 (numpy broadcasting).
pub(super) fn broadcast_strides(shape: &[usize], rank: usize) -> Vec<usize> {
    let mut strides = vec![0; rank];
    let mut stride = 1;
    for (i, &d) in shape.iter().enumerate().rev() {
        strides[rank - shape.len() + i] = if d == 1 { 0 } else { stride };
        stride *= d;
    }
    strides
}

/// Drops size-1 dims and merges neighbours every operand walks contiguously,
/// so kernels see as few dims as possible (at least one).
pub(super) fn coalesce(dims: &[usize], strides: &[Vec<usize>; 2]) -> (Vec<usize>, [Vec<usize>; 2]) {
    let mut out: Vec<usize> = Vec::new();
    let mut st: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    for (i, &d) in dims.iter().enumerate() {
        if d == 1 {
            continue;
        }
        let merge = !out.is_empty()
            && (0..2).all(|o| st[o].last().is_some_and(|&prev| prev == strides[o][i] * d));
        if merge {
            if let Some(last) = out.last_mut() {
                *last *= d;
            }
            for o in 0..2 {
                if let Some(prev) = st[o].last_mut() {
                    *prev = strides[o][i];
                }
            }
        } else {
            out.push(d);
            for o in 0..2 {
                st[o].push(strides[o][i]);
            }
        }
    }
    if out.is_empty() {
        out.push(1);
        st[0].push(0);
        st[1].push(0);
    }
    (out, st)
}

/// Calls `f(dims, n, base0, base1, base_out)` for launches covering the
/// row-major index space `dims` (with operand strides `strides`): one launch
/// when the rank fits a kernel, else one per index of the outer dimensions.
pub(super) fn strided_launches(
    dims: &[usize],
    strides: &[Vec<usize>; 2],
    mut f: impl FnMut(StridedDims, u64, i64, i64, i64) -> Result<(), Error>,
) -> Result<(), Error> {
    let split = dims.len().saturating_sub(MAX_DIMS);
    let (outer, inner) = dims.split_at(split);
    let mut d = StridedDims {
        rank: inner.len() as i32,
        ..StridedDims::default()
    };
    for (i, &dim) in inner.iter().enumerate() {
        d.dims[i] = i64of(dim);
        d.s0[i] = i64of(strides[0][split + i]);
        d.s1[i] = i64of(strides[1][split + i]);
    }
    let n: usize = numel(inner)?;
    let launches: usize = numel(outer)?;
    for o in 0..launches {
        let (mut rest, mut b0, mut b1) = (o, 0usize, 0usize);
        for k in (0..split).rev() {
            let idx = rest % outer[k];
            rest /= outer[k];
            b0 += idx * strides[0][k];
            b1 += idx * strides[1][k];
        }
        f(d, u64of(n), i64of(b0), i64of(b1), i64of(o * n))?;
    }
    Ok(())
}
