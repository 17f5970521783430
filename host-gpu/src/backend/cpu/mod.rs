//! The CPU reference backend.

use std::any::Any;

use crate::backend::{Backend, BackendInfo, DeviceBuffer, TensorRef};
use crate::error::Error;
use crate::op::{Op, SourceEncoding};
use crate::tensor::DType;

/// Host memory holding a tensor's elements.
#[derive(Debug)]
pub(crate) enum CpuBuffer {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

impl DeviceBuffer for CpuBuffer {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The reference backend: always built, always available.
#[derive(Debug)]
pub(crate) struct CpuBackend {
    threads: Option<usize>,
}

impl CpuBackend {
    pub(crate) fn new(threads: Option<usize>) -> CpuBackend {
        CpuBackend { threads }
    }
}

impl Backend for CpuBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "cpu".into(),
            device: format!("{}, {:?} threads", std::env::consts::ARCH, self.threads),
        }
    }

    fn upload_f32(&self, data: &[f32]) -> Result<Box<dyn DeviceBuffer>, Error> {
        Ok(Box::new(CpuBuffer::F32(data.to_vec())))
    }

    fn upload_i32(&self, data: &[i32]) -> Result<Box<dyn DeviceBuffer>, Error> {
        Ok(Box::new(CpuBuffer::I32(data.to_vec())))
    }

    fn upload_encoded(
        &self,
        bytes: &[u8],
        encoding: SourceEncoding,
        dtype: DType,
    ) -> Result<Box<dyn DeviceBuffer>, Error> {
        let _ = (bytes, encoding, dtype);
        unimplemented!("upload_encoded")
    }

    fn read_f32(&self, x: TensorRef<'_>) -> Result<Vec<f32>, Error> {
        let _ = x;
        unimplemented!("read_f32")
    }

    fn read_i32(&self, x: TensorRef<'_>) -> Result<Vec<i32>, Error> {
        let _ = x;
        unimplemented!("read_i32")
    }

    fn execute(
        &self,
        op: &Op,
        inputs: &[TensorRef<'_>],
        out_shape: &[usize],
        out_dtype: DType,
    ) -> Result<Box<dyn DeviceBuffer>, Error> {
        let _ = (op, inputs, out_shape, out_dtype);
        unimplemented!("execute")
    }
}
