//! What the CUDA backend needs from a GPU: memory, copies and kernel launches.
//!
//! The backend's host logic (`ops.rs`) is written against this trait. The
//! real implementation is `driver.rs` (cudarc); `emu.rs` runs the very same
//! kernels compiled for the host, so the whole backend can be tested bit for
//! bit on a machine without a GPU.

use std::any::Any;
use std::fmt::Debug;

use crate::error::Error;

/// A device allocation: its address, its size, and whatever owns it.
#[derive(Debug)]
pub(crate) struct Mem {
    /// The device address (0 for an empty allocation).
    pub(crate) ptr: u64,
    /// Its size in bytes.
    pub(crate) bytes: usize,
    /// The owner that frees it when dropped.
    pub(crate) _owner: Box<dyn Any + Send + Sync>,
}

impl Mem {
    /// An allocation of nothing (no device call, nothing to free).
    pub(crate) fn empty() -> Mem {
        Mem {
            ptr: 0,
            bytes: 0,
            _owner: Box::new(()),
        }
    }
}

/// Up to this many coalesced dimensions go to a kernel in one launch.
pub(crate) const MAX_DIMS: usize = 8;

/// `StridedDims` of `kernels/common.cuh`: row-major dims and the element
/// strides of two operands over them.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StridedDims {
    pub(crate) rank: i32,
    pub(crate) pad: i32,
    pub(crate) dims: [i64; MAX_DIMS],
    pub(crate) s0: [i64; MAX_DIMS],
    pub(crate) s1: [i64; MAX_DIMS],
}

/// `AssayWindow` of `kernels/conv.cu`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Window {
    pub(crate) n: i64,
    pub(crate) c: i64,
    pub(crate) h: i64,
    pub(crate) w: i64,
    pub(crate) o: i64,
    pub(crate) kh: i64,
    pub(crate) kw: i64,
    pub(crate) sh: i64,
    pub(crate) sw: i64,
    pub(crate) ph: i64,
    pub(crate) pw: i64,
    pub(crate) ho: i64,
    pub(crate) wo: i64,
}

/// One kernel argument, by value as the kernel declares it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param {
    /// A device pointer.
    Ptr(u64),
    U64(u64),
    I64(i64),
    U32(u32),
    I32(i32),
    F32(f32),
    Dims(StridedDims),
    Window(Window),
}

impl Param {
    /// A pointer to the argument's bytes, as `cuLaunchKernel` takes it.
    pub(crate) fn as_ptr(&self) -> *const std::ffi::c_void {
        match self {
            Param::Ptr(v) | Param::U64(v) => v as *const u64 as *const _,
            Param::I64(v) => v as *const i64 as *const _,
            Param::U32(v) => v as *const u32 as *const _,
            Param::I32(v) => v as *const i32 as *const _,
            Param::F32(v) => v as *const f32 as *const _,
            Param::Dims(v) => v as *const StridedDims as *const _,
            Param::Window(v) => v as *const Window as *const _,
        }
    }
}

/// A launch shape: blocks per grid and threads per block (x, y, z).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Launch {
    pub(crate) grid: [u32; 3],
    pub(crate) block: [u32; 3],
}

/// A GPU with one stream: everything submitted runs in submission order.
pub(crate) trait Gpu: Send + Sync + Debug {
    /// e.g. `NVIDIA H100 80GB HBM3 (sm_90, driver 580.65)`.
    fn describe(&self) -> String;

    /// `bytes` of device memory with unspecified contents: the caller writes
    /// every byte before anything reads it (every kernel writes its whole output).
    fn alloc(&self, bytes: usize) -> Result<Mem, Error>;

    /// A new allocation holding `data`.
    fn upload(&self, data: &[u8]) -> Result<Mem, Error>;

    /// Copies the first `out.len()` bytes of `mem` to `out`, after all work
    /// submitted before has finished.
    fn download(&self, mem: &Mem, out: &mut [u8]) -> Result<(), Error>;

    /// Queues `kernel` with `params`.
    fn launch(&self, kernel: &'static str, shape: Launch, params: &[Param]) -> Result<(), Error>;
}
