//! The CUDA switch when built without CUDA: the same API as `enabled.rs`,
//! every answer saying how to get the backend.

use std::sync::Arc;

use crate::backend::contract::Backend;
use crate::error::Error;

/// False: this build has no CUDA backend.
pub(crate) const BUILT: bool = false;

const NOT_BUILT: &str = "this binary was built without the `cuda` feature; rebuild with \
                         `--features cuda` (or `cuda-13` for a CUDA 13 toolkit)";

/// Never any device: the backend is not built in.
pub(crate) fn device_count() -> Result<usize, String> {
    Err(NOT_BUILT.into())
}

/// Always [`Error::Unsupported`].
pub(crate) fn open(ordinal: usize) -> Result<Arc<dyn Backend>, Error> {
    let _ = ordinal;
    Err(Error::Unsupported(NOT_BUILT.into()))
}

/// Always [`Error::Unsupported`].
pub(crate) fn emulated() -> Result<Arc<dyn Backend>, Error> {
    Err(Error::Unsupported(
        "built without the `cuda` feature".into(),
    ))
}

/// Always an error: there is no kernel program in this build.
pub(crate) fn kernel_source() -> Result<String, String> {
    Err(not_built())
}

/// No kernels.
pub(crate) fn kernel_names() -> &'static [&'static str] {
    &[]
}

/// No flags.
pub(crate) fn nvrtc_options(arch: &str) -> Vec<String> {
    let _ = arch;
    Vec::new()
}

/// Always an error: NVRTC is not used in this build.
pub(crate) fn nvrtc_version() -> Result<(i32, i32), String> {
    Err(not_built())
}

/// None: the driver is never loaded in this build.
pub(crate) fn driver_version() -> Option<String> {
    None
}

/// Always an error.
pub(crate) fn compile_ptx(source: &str, arch: &str) -> Result<String, String> {
    let _ = (source, arch);
    Err(not_built())
}

fn not_built() -> String {
    "built without the `cuda` feature (rebuild with `--features cuda`)".into()
}
