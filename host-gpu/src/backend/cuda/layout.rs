//! Data movement launches: permute (a strided copy), slice, concat, gather
//! (runs of `assay_copy_runs`). Elements are copied bit for bit, any dtype.
//! The CPU reference is `cpu/layout.rs`.

use super::gpu::Param;
use super::strided::{coalesce, strided_launches};
use super::{CudaBackend, CudaBuffer, input, numel, u64of};
use crate::backend::contract::TensorRef;
use crate::dtype::DType;
use crate::error::Error;

impl CudaBackend {
    pub(super) fn gather(&self, inputs: &[TensorRef<'_>], out: &CudaBuffer) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let n = u64of(out.len);
        let (table, idx) = (input(inputs, 0)?, input(inputs, 1)?);
        let &[v, d] = table.shape else {
            return Err(Error::Device(format!(
                "cuda: gather table {:?}",
                table.shape
            )));
        };
        let count = numel(idx.shape)?;
        if count.checked_mul(d) != Some(out.len) || table.dtype != out.dtype {
            return Err(Error::Device("cuda: gather sizes".into()));
        }
        self.launch_flat(
            "assay_gather_rows",
            n,
            &[
                self.any_ptr(table)?,
                self.ptr(idx, DType::I32)?,
                o,
                Param::U64(u64of(count)),
                Param::U64(u64of(d)),
                Param::U64(u64of(v)),
            ],
        )
    }

    pub(super) fn slice(
        &self,
        inputs: &[TensorRef<'_>],
        (axis, start, end): (usize, usize, usize),
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let xr = input(inputs, 0)?;
        let dim = xr.shape.get(axis).copied().unwrap_or(0);
        if start > end || end > dim {
            return Err(Error::Device(format!(
                "cuda: slice {start}..{end} of {dim}"
            )));
        }
        let outer = numel(&xr.shape[..axis])?;
        let inner = numel(&xr.shape[axis + 1..])?;
        let run = (end - start) * inner;
        if outer * run != out.len {
            return Err(Error::Device("cuda: slice sizes".into()));
        }
        self.copy_runs(
            self.any_ptr(xr)?,
            o,
            [outer, run, dim * inner, start * inner, run, 0],
        )
    }

    pub(super) fn concat(
        &self,
        inputs: &[TensorRef<'_>],
        axis: usize,
        out_shape: &[usize],
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let outer = numel(&out_shape[..axis])?;
        let inner = numel(&out_shape[axis + 1..])?;
        let row = out_shape[axis] * inner;
        let mut at = 0;
        for t in inputs {
            let len = t.shape.get(axis).copied().unwrap_or(0) * inner;
            if t.dtype != out.dtype {
                return Err(Error::Device("cuda: concat of mixed dtypes".into()));
            }
            let src = self.any_ptr(t)?;
            if len > 0 {
                self.copy_runs(src, o, [outer, len, len, 0, row, at])?;
            }
            at += len;
        }
        if at != row {
            return Err(Error::Device("cuda: concat sizes".into()));
        }
        Ok(())
    }

    pub(super) fn permute(
        &self,
        x: &TensorRef<'_>,
        axes: &[usize],
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let rank = x.shape.len();
        if axes.len() != rank || axes.iter().any(|&a| a >= rank) {
            return Err(Error::Device(format!("cuda: permute axes {axes:?}")));
        }
        let mut in_strides = vec![0; rank];
        let mut stride = 1;
        for i in (0..rank).rev() {
            in_strides[i] = stride;
            stride *= x.shape[i];
        }
        let dims: Vec<usize> = axes.iter().map(|&a| x.shape[a]).collect();
        let strides: Vec<usize> = axes.iter().map(|&a| in_strides[a]).collect();
        let zeros = vec![0; rank];
        let (dims, strides) = coalesce(&dims, &[strides, zeros]);
        let xp = self.any_ptr(x)?;
        strided_launches(&dims, &strides, |d, n, bx, _, bo| {
            self.launch_flat(
                "assay_strided_copy",
                n,
                &[
                    xp,
                    Param::Ptr(out.mem.ptr),
                    Param::Dims(d),
                    Param::U64(n),
                    Param::I64(bx),
                    Param::I64(bo),
                ],
            )
        })
    }

    /// `assay_copy_runs` with [rows, run, in_row, in_at, out_row, out_at].
    pub(super) fn copy_runs(&self, src: Param, dst: Param, g: [usize; 6]) -> Result<(), Error> {
        let total = g[0]
            .checked_mul(g[1])
            .ok_or_else(|| Error::Device("cuda: copy size overflows".into()))?;
        let mut params = vec![src, dst];
        params.extend(g.iter().map(|&v| Param::U64(u64of(v))));
        self.launch_flat("assay_copy_runs", u64of(total), &params)
    }
}
