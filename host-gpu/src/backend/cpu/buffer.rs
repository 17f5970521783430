//! A CPU tensor's memory ([`CpuBuffer`]: its [`Values`] and its kept
//! matmul packing) and the typed views the kernels read their inputs
//! through. A leaf below every kernel and the dispatcher.

use std::any::Any;

use crate::backend::contract::{DeviceBuffer, HostElements, TensorRef};
use crate::backend::cpu::alloc::numel;
use crate::backend::cpu::blocks::BlockRows;
use crate::backend::cpu::packed::PackCache;
use crate::dtype::DType;
use crate::error::Error;

/// A tensor's elements in host memory.
#[derive(Debug)]
pub(crate) enum Values {
    F32(Vec<f32>),
    I32(Vec<i32>),
    /// f32 values kept as GGML blocks (`blocks`).
    Blocks(BlockRows),
}

impl Values {
    pub(crate) fn dtype(&self) -> DType {
        match self {
            Values::F32(_) => DType::F32,
            Values::I32(_) => DType::I32,
            Values::Blocks(b) => b.dtype(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::I32(v) => v.len(),
            Values::Blocks(b) => b.len(),
        }
    }
}

/// Host memory holding a tensor: its elements, and (filled on demand) the
/// packed panels of the matrix when it is a matmul's B operand again and
/// again, as a model's weights are. Tensors are immutable, so the panels
/// never go stale; they are freed with the tensor.
#[derive(Debug)]
pub(crate) struct CpuBuffer {
    pub(crate) values: Values,
    pub(crate) packed: PackCache,
}

impl From<Values> for CpuBuffer {
    fn from(values: Values) -> CpuBuffer {
        CpuBuffer {
            values,
            packed: PackCache::default(),
        }
    }
}

impl DeviceBuffer for CpuBuffer {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn host_elements(&self) -> Option<HostElements<'_>> {
        match &self.values {
            Values::F32(v) => Some(HostElements::F32(v)),
            Values::I32(v) => Some(HostElements::I32(v)),
            // Not elements: read them back as GGML bytes (`read_blocks`).
            Values::Blocks(_) => None,
        }
    }
}

/// The CPU buffer behind `x`, checked against its shape.
pub(crate) fn cpu_buffer<'a>(x: &TensorRef<'a>) -> Result<&'a CpuBuffer, Error> {
    let buf = x
        .buffer
        .as_any()
        .downcast_ref::<CpuBuffer>()
        .ok_or_else(|| Error::Device("cpu: got a buffer of another backend".into()))?;
    if buf.values.dtype() != x.dtype || buf.values.len() != numel(x.shape)? {
        return Err(Error::Device(format!(
            "cpu: buffer holds {} {} elements but the tensor is {} {:?}",
            buf.values.len(),
            buf.values.dtype().name(),
            x.dtype.name(),
            x.shape
        )));
    }
    Ok(buf)
}

/// The elements behind `x`, checked against its shape.
pub(crate) fn buffer<'a>(x: &TensorRef<'a>) -> Result<&'a Values, Error> {
    Ok(&cpu_buffer(x)?.values)
}

/// The f32 elements of `x`.
pub(crate) fn f32s<'a>(x: &TensorRef<'a>) -> Result<&'a [f32], Error> {
    match buffer(x)? {
        Values::F32(v) => Ok(v),
        _ => Err(Error::Device("cpu: expected an f32 buffer".into())),
    }
}

/// The i32 elements of `x`.
pub(crate) fn i32s<'a>(x: &TensorRef<'a>) -> Result<&'a [i32], Error> {
    match buffer(x)? {
        Values::I32(v) => Ok(v),
        _ => Err(Error::Device("cpu: expected an i32 buffer".into())),
    }
}

/// Input `i` of an op.
pub(crate) fn input<'a, 'b>(
    inputs: &'b [TensorRef<'a>],
    i: usize,
) -> Result<&'b TensorRef<'a>, Error> {
    inputs
        .get(i)
        .ok_or_else(|| Error::Device(format!("cpu: op is missing input {i}")))
}
