use std::sync::Arc;

use crate::backend::{DeviceBuffer, HostElements};
use crate::dtype::DType;

/// A handle to a contiguous, row-major tensor on a session's device.
///
/// Cloning is cheap (the buffer is shared). Views that keep the bytes
/// unchanged (reshape) share the buffer, so they cost no quota. The quota
/// charge of a buffer is released when the last handle to it is dropped.
#[derive(Debug, Clone)]
pub struct Tensor {
    pub(crate) shape: Arc<[usize]>,
    pub(crate) dtype: DType,
    pub(crate) buffer: Arc<Allocation>,
}

/// A device buffer and the quota it holds.
#[derive(Debug)]
pub(crate) struct Allocation {
    /// Shared with the device's resident inputs when it came from there.
    pub(crate) buffer: Arc<dyn DeviceBuffer>,
    pub(crate) bytes: u64,
    pub(crate) live_bytes: Arc<std::sync::atomic::AtomicU64>,
}

impl Drop for Allocation {
    fn drop(&mut self) {
        self.live_bytes
            .fetch_sub(self.bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Tensor {
    /// The dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Size of the elements in bytes.
    pub fn byte_len(&self) -> u64 {
        // A live tensor's size was checked when it was made.
        self.dtype.byte_len(self.numel() as u64).unwrap_or(u64::MAX)
    }

    /// The elements where they are, if that is host memory (the CPU
    /// backend); `None` on a GPU, where reading them takes a download.
    pub fn host_elements(&self) -> Option<HostElements<'_>> {
        self.buffer.buffer.host_elements()
    }

    /// The buffer itself, shared, for a reader on another thread (the
    /// runtime hashes outputs beside the ops). Holding it keeps the memory
    /// alive but not the quota: the job's quota is released when the last
    /// `Tensor` goes, so a holder must let go soon.
    pub fn shared_buffer(&self) -> Arc<dyn DeviceBuffer> {
        self.buffer.buffer.clone()
    }
}
