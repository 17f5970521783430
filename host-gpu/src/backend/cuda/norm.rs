//! Row launches of the normalisations over the last axis: softmax,
//! layer-norm, rms-norm, l2-normalize (one warp per row). The CPU reference
//! is `cpu/norm.rs`.

use super::gpu::Param;
use super::{CudaBackend, CudaBuffer, input, rows_of, u64of};
use crate::backend::contract::TensorRef;
use crate::dtype::DType;
use crate::error::Error;

impl CudaBackend {
    pub(super) fn softmax(&self, inputs: &[TensorRef<'_>], out: &CudaBuffer) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let xr = input(inputs, 0)?;
        let (rows, len) = rows_of(xr.shape)?;
        let xp = self.ptr(xr, DType::F32)?;
        self.launch_rows(
            "assay_softmax_rows",
            rows,
            &[xp, o, Param::U64(rows), Param::U64(len)],
        )
    }

    pub(super) fn layer_norm(
        &self,
        inputs: &[TensorRef<'_>],
        eps: f32,
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let xr = input(inputs, 0)?;
        let (rows, len) = rows_of(xr.shape)?;
        let (g, b) = (input(inputs, 1)?, input(inputs, 2)?);
        self.check_row_param(g, len)?;
        self.check_row_param(b, len)?;
        self.launch_rows(
            "assay_layer_norm_rows",
            rows,
            &[
                self.ptr(xr, DType::F32)?,
                self.ptr(g, DType::F32)?,
                self.ptr(b, DType::F32)?,
                o,
                Param::U64(rows),
                Param::U64(len),
                Param::F32(eps),
            ],
        )
    }

    pub(super) fn rms_norm(
        &self,
        inputs: &[TensorRef<'_>],
        eps: f32,
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let xr = input(inputs, 0)?;
        let (rows, len) = rows_of(xr.shape)?;
        let g = input(inputs, 1)?;
        self.check_row_param(g, len)?;
        self.launch_rows(
            "assay_rms_norm_rows",
            rows,
            &[
                self.ptr(xr, DType::F32)?,
                self.ptr(g, DType::F32)?,
                o,
                Param::U64(rows),
                Param::U64(len),
                Param::F32(eps),
            ],
        )
    }

    pub(super) fn l2_normalize(
        &self,
        inputs: &[TensorRef<'_>],
        eps: f32,
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let xr = input(inputs, 0)?;
        let (rows, len) = rows_of(xr.shape)?;
        self.launch_rows(
            "assay_l2_normalize_rows",
            rows,
            &[
                self.ptr(xr, DType::F32)?,
                o,
                Param::U64(rows),
                Param::U64(len),
                Param::F32(eps),
            ],
        )
    }

    fn check_row_param(&self, p: &TensorRef<'_>, n: u64) -> Result<(), Error> {
        if p.shape.len() != 1 || u64of(p.shape[0]) != n {
            return Err(Error::Device(format!(
                "cuda: norm parameter {:?} does not match rows of {n}",
                p.shape
            )));
        }
        Ok(())
    }
}
