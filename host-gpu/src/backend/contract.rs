//! What a backend is: the [`Backend`] trait, the buffers it owns and the
//! inputs it is handed. A leaf: the CPU and CUDA backends, tensors and the
//! resident store import it; it imports none of them.

use std::any::Any;
use std::fmt::Debug;

use crate::dtype::DType;
use crate::error::Error;
use crate::op::{Op, SourceEncoding};

/// A buffer owned by a backend (host memory for the CPU, device memory for a GPU).
pub trait DeviceBuffer: Any + Send + Sync + Debug {
    /// For the owning backend to get its own type back.
    fn as_any(&self) -> &dyn Any;

    /// The elements where they are, when that is host memory (the CPU
    /// backend): a reader such as the runtime's trace hashes them without a
    /// copy. `None` for device memory, which would take a download.
    fn host_elements(&self) -> Option<HostElements<'_>> {
        None
    }
}

/// A tensor's elements in host memory, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum HostElements<'a> {
    /// f32 elements.
    F32(&'a [f32]),
    /// i32 elements.
    I32(&'a [i32]),
}

impl<'a> HostElements<'a> {
    /// The elements' little-endian bytes without a copy, on a little-endian
    /// machine (`None` elsewhere: convert element by element).
    #[cfg(target_endian = "little")]
    pub fn le_bytes(&self) -> Option<&'a [u8]> {
        let (ptr, len) = match *self {
            HostElements::F32(v) => (v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)),
            HostElements::I32(v) => (v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)),
        };
        // SAFETY: f32 and i32 have no padding and any byte is a valid u8;
        // the slice covers exactly the borrowed elements for the same
        // lifetime, and on a little-endian machine their memory is their
        // little-endian bytes.
        Some(unsafe { std::slice::from_raw_parts(ptr, len) })
    }

    /// The elements' little-endian bytes without a copy (`None` on a
    /// big-endian machine: convert element by element).
    #[cfg(not(target_endian = "little"))]
    pub fn le_bytes(&self) -> Option<&'a [u8]> {
        None
    }
}

/// An input of an op: its shape, dtype and buffer.
#[derive(Debug, Clone, Copy)]
pub struct TensorRef<'a> {
    pub shape: &'a [usize],
    pub dtype: DType,
    pub buffer: &'a dyn DeviceBuffer,
}

/// What a backend is, for receipts and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    /// `cpu` or `cuda`.
    pub kind: String,
    /// e.g. `x86_64 avx2+fma, 2 threads` or `NVIDIA H100 80GB HBM3`.
    pub device: String,
}

/// A device that executes validated ops.
///
/// Every method receives inputs whose shapes and dtypes the [`crate::Session`]
/// has already checked, and the output shape it computed; a backend only
/// computes. It must produce exactly the bits `SEMANTICS.md` defines.
///
/// # Errors
///
/// Only [`Error::Device`] (a provider fault) or [`Error::Unsupported`].
pub trait Backend: Send + Sync + Debug {
    /// What this backend is.
    fn info(&self) -> BackendInfo;

    /// Copies f32 elements to the device.
    fn upload_f32(&self, data: &[f32]) -> Result<Box<dyn DeviceBuffer>, Error>;

    /// Copies i32 elements to the device.
    fn upload_i32(&self, data: &[i32]) -> Result<Box<dyn DeviceBuffer>, Error>;

    /// Decodes little-endian `bytes` in `encoding` to `dtype` elements on the
    /// device. `bytes.len()` is exactly the element count times the encoded
    /// size. f16/bf16 widen exactly; i64 values outside i32 are an
    /// [`Error::InvalidArgument`] (the only deterministic error a backend returns).
    fn upload_encoded(
        &self,
        bytes: &[u8],
        encoding: SourceEncoding,
        dtype: DType,
    ) -> Result<Box<dyn DeviceBuffer>, Error>;

    /// A buffer that keeps `bytes`, whole GGML blocks in `encoding`
    /// (Q4_0, Q4_1 or Q8_0) making rows of `row_len` values (the tensor's
    /// last dimension), in whatever layout the backend's kernels read
    /// best; its values are the decoded ones (SEMANTICS.md, "Tensors of
    /// blocks"), read only by `matmul`/`linear` as the transposed `b` and
    /// by `gather` as the table.
    fn upload_blocks(
        &self,
        bytes: &[u8],
        encoding: SourceEncoding,
        row_len: usize,
    ) -> Result<Box<dyn DeviceBuffer>, Error>;

    /// The blocks of a buffer made by [`Backend::upload_blocks`], as GGML
    /// stores them (the bytes it was made from).
    fn read_blocks(&self, x: TensorRef<'_>) -> Result<Vec<u8>, Error>;

    /// Copies an f32 buffer back to the host.
    fn read_f32(&self, x: TensorRef<'_>) -> Result<Vec<f32>, Error>;

    /// Copies an i32 buffer back to the host.
    fn read_i32(&self, x: TensorRef<'_>) -> Result<Vec<i32>, Error>;

    /// The first element of the i32 tensor `indices` that is negative or not
    /// below `bound`, as (position in row-major order, value); `None` when
    /// all are in range. The session calls it before a gather is charged or
    /// launched, so the error is the same on every backend. The default reads
    /// the indices back; a backend may check them where they are.
    ///
    /// # Errors
    ///
    /// Only [`Error::Device`] or [`Error::Unsupported`].
    fn first_index_out_of_range(
        &self,
        indices: TensorRef<'_>,
        bound: usize,
    ) -> Result<Option<(usize, i32)>, Error> {
        Ok(first_index_outside(&self.read_i32(indices)?, bound))
    }

    /// Executes `op` on `inputs`, producing a new buffer of `out_shape`/`out_dtype`.
    fn execute(
        &self,
        op: &Op,
        inputs: &[TensorRef<'_>],
        out_shape: &[usize],
        out_dtype: DType,
    ) -> Result<Box<dyn DeviceBuffer>, Error>;
}

/// The first index that is negative or not below `bound`, with its position.
pub(crate) fn first_index_outside(indices: &[i32], bound: usize) -> Option<(usize, i32)> {
    indices
        .iter()
        .enumerate()
        .find(|&(_, &i)| usize::try_from(i).map_or(true, |i| i >= bound))
        .map(|(p, &i)| (p, i))
}
