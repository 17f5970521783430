//! The CUDA switch when built with CUDA: forwards to `backend/cuda/`.

use std::sync::Arc;

use crate::backend::contract::Backend;
use crate::backend::cuda;
use crate::error::Error;

/// True: this build has the CUDA backend.
pub(crate) const BUILT: bool = true;

/// How many CUDA devices the driver sees, or why none can be used (no
/// libcuda, driver init failed).
pub(crate) fn device_count() -> Result<usize, String> {
    cuda::device_count()
}

/// The backend on device `ordinal` (a new stream; context and kernels shared).
pub(crate) fn open(ordinal: usize) -> Result<Arc<dyn Backend>, Error> {
    Ok(Arc::new(cuda::CudaBackend::open(ordinal)?))
}

/// The kernels emulated on the host (a test instrument).
pub(crate) fn emulated() -> Result<Arc<dyn Backend>, Error> {
    let library = cuda::emu::build_library()?;
    Ok(Arc::new(cuda::CudaBackend::emulated(&library)?))
}

/// The kernels' NVRTC program (canonical.h and kernels/*.cu, concatenated).
pub(crate) fn kernel_source() -> Result<String, String> {
    Ok(cuda::kernels::source())
}

/// The kernels the backend launches.
pub(crate) fn kernel_names() -> &'static [&'static str] {
    cuda::kernels::KERNEL_NAMES
}

/// The production NVRTC flags for `arch` (e.g. `compute_90`).
pub(crate) fn nvrtc_options(arch: &str) -> Vec<String> {
    cuda::kernels::nvrtc_options(arch)
}

/// NVRTC's version, or why it cannot be loaded.
pub(crate) fn nvrtc_version() -> Result<(i32, i32), String> {
    cuda::nvrtc_version()
}

/// The CUDA version the driver supports, when a driver is loaded.
pub(crate) fn driver_version() -> Option<String> {
    cuda::device_count()
        .ok()
        .and_then(|_| cuda::driver_version())
}

/// Compiles `source` to PTX for `arch` with the production flags.
pub(crate) fn compile_ptx(source: &str, arch: &str) -> Result<String, String> {
    cuda::compile_ptx(source, arch)
}
