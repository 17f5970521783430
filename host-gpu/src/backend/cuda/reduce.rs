//! Row launches over the last axis: reductions, argmax, and the masked mean
//! pool. The CPU reference is `cpu/reduce.rs`.

use super::gpu::Param;
use super::{CudaBackend, CudaBuffer, input, rows_of, u64of};
use crate::backend::contract::TensorRef;
use crate::dtype::DType;
use crate::error::Error;
use crate::op::ReduceOp;

fn reduce_code(op: ReduceOp) -> i32 {
    match op {
        ReduceOp::Sum => 0,
        ReduceOp::Mean => 1,
        ReduceOp::Max => 2,
        ReduceOp::Min => 3,
    }
}

impl CudaBackend {
    pub(super) fn reduce(
        &self,
        op: ReduceOp,
        inputs: &[TensorRef<'_>],
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let xr = input(inputs, 0)?;
        let xp = self.ptr(xr, DType::F32)?;
        let (rows, len) = rows_of(xr.shape)?;
        self.launch_rows(
            "assay_reduce_rows",
            rows,
            &[
                xp,
                o,
                Param::U64(rows),
                Param::U64(len),
                Param::I32(reduce_code(op)),
            ],
        )
    }

    pub(super) fn argmax(&self, inputs: &[TensorRef<'_>], out: &CudaBuffer) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let xr = input(inputs, 0)?;
        let (rows, len) = rows_of(xr.shape)?;
        if len == 0 || len > 1 << 31 {
            return Err(Error::Device(format!(
                "cuda: argmax over rows of {len} elements (the session refuses this)"
            )));
        }
        self.launch_rows(
            "assay_argmax_rows",
            rows,
            &[
                self.ptr(xr, DType::F32)?,
                o,
                Param::U64(rows),
                Param::U64(len),
            ],
        )
    }

    pub(super) fn masked_mean_pool(
        &self,
        inputs: &[TensorRef<'_>],
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let n = u64of(out.len);
        let (xr, mask) = (input(inputs, 0)?, input(inputs, 1)?);
        let &[b, s, d] = xr.shape else {
            return Err(Error::Device(format!(
                "cuda: masked_mean_pool on shape {:?}",
                xr.shape
            )));
        };
        if mask.shape != [b, s] {
            return Err(Error::Device("cuda: masked_mean_pool mask shape".into()));
        }
        self.launch_flat(
            "assay_masked_mean_pool",
            n,
            &[
                self.ptr(xr, DType::F32)?,
                self.ptr(mask, DType::F32)?,
                o,
                Param::U64(u64of(b)),
                Param::U64(u64of(s)),
                Param::U64(u64of(d)),
            ],
        )
    }
}
