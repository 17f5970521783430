//! Backends execute validated ops on a device.
//!
//! The [`Backend`] trait is the only thing the rest of the crate knows about
//! a device. The CPU backend (`cpu/`) is always built and is the reference;
//! other backends live in their own folders behind cargo features, and their
//! types (cudarc's included) never leave those folders.

mod cpu;
#[cfg(feature = "cuda-backend")]
mod cuda;

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use crate::error::Error;
use crate::op::{Op, SourceEncoding};
use crate::resident::{Resident, ResidentStats};
use crate::tensor::DType;

pub(crate) use cpu::CpuBackend;
pub use cpu::CpuSimd;

/// A buffer owned by a backend (host memory for the CPU, device memory for a GPU).
pub trait DeviceBuffer: Any + Send + Sync + Debug {
    /// For the owning backend to get its own type back.
    fn as_any(&self) -> &dyn Any;
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

/// A shareable handle to one backend instance (one per process and device),
/// and the input tensors it keeps decoded between jobs ([`crate::resident`]).
#[derive(Debug, Clone)]
pub struct Device {
    backend: Arc<dyn Backend>,
    resident: Arc<Resident>,
}

impl Device {
    /// The CPU reference backend, using every core the machine has.
    pub fn cpu() -> Device {
        Device::from_backend(Arc::new(CpuBackend::new(None)))
    }

    /// The CPU reference backend running each op on `threads` threads, the
    /// caller's included (results do not depend on it; tests use it to
    /// prove that).
    pub fn cpu_with_threads(threads: usize) -> Device {
        Device::from_backend(Arc::new(CpuBackend::new(Some(threads))))
    }

    /// The CPU reference backend on a chosen SIMD path (`threads: None` uses
    /// every core). Tests use it to run every path; production code uses
    /// [`Device::cpu`], whose path comes from [`CpuSimd::from_env`].
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] if this machine cannot run `simd`.
    pub fn cpu_with(threads: Option<usize>, simd: CpuSimd) -> Result<Device, Error> {
        if !simd.is_supported() {
            return Err(Error::Unsupported(format!(
                "this CPU cannot run the {} path; supported: {:?}",
                simd.name(),
                CpuSimd::supported()
            )));
        }
        Ok(Device::from_backend(Arc::new(CpuBackend::with_simd(
            threads, simd,
        ))))
    }

    /// Every accelerator backend built into this crate that works on this
    /// machine: each CUDA device when built with the `cuda` feature and a
    /// driver is present (one new stream per call). The conformance suite
    /// runs on each of them beside the CPU. [`Device::probe_accelerators`]
    /// also says why there are none.
    pub fn accelerators() -> Vec<Device> {
        Device::probe_accelerators().devices
    }

    /// The accelerators of [`Device::accelerators`], and a line for each
    /// backend that is not available, saying why (not built in, no driver,
    /// no device, kernels failed to compile). With `ASSAY_CUDA_EMULATOR=1`
    /// (tests only) the CUDA kernels emulated on the host are added.
    pub fn probe_accelerators() -> AcceleratorProbe {
        let mut probe = AcceleratorProbe::default();
        #[cfg(feature = "cuda-backend")]
        {
            match cuda::device_count() {
                Ok(n) => {
                    for ordinal in 0..n {
                        match cuda::CudaBackend::open(ordinal) {
                            Ok(b) => probe.devices.push(Device::from_backend(Arc::new(b))),
                            Err(e) => probe
                                .unavailable
                                .push(format!("cuda device {ordinal}: {e}")),
                        }
                    }
                }
                Err(e) => probe.unavailable.push(format!("cuda: {e}")),
            }
            if std::env::var("ASSAY_CUDA_EMULATOR").as_deref() == Ok("1") {
                match cuda::emu::build_library().and_then(|p| cuda::CudaBackend::emulated(&p)) {
                    Ok(b) => probe.devices.push(Device::from_backend(Arc::new(b))),
                    Err(e) => probe.unavailable.push(format!("cuda-emulated: {e}")),
                }
            }
        }
        #[cfg(not(feature = "cuda-backend"))]
        probe.unavailable.push(
            "cuda: this binary was built without the `cuda` feature (rebuild with \
             `--features cuda`)"
                .into(),
        );
        probe
    }

    /// A new handle (its own CUDA stream) on CUDA device `ordinal`. The
    /// device's context and compiled kernels are made once per process and
    /// shared; make one handle per job.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when built without the `cuda` feature;
    /// [`Error::Device`] without a driver or device, or when the kernels do
    /// not compile (the message says which).
    pub fn cuda(ordinal: usize) -> Result<Device, Error> {
        #[cfg(feature = "cuda-backend")]
        {
            cuda::device_count().map_err(Error::Device)?;
            Ok(Device::from_backend(Arc::new(cuda::CudaBackend::open(
                ordinal,
            )?)))
        }
        #[cfg(not(feature = "cuda-backend"))]
        {
            let _ = ordinal;
            Err(Error::Unsupported(
                "this binary was built without the `cuda` feature; rebuild with `--features cuda` \
                 (or `cuda-13` for a CUDA 13 toolkit)"
                    .into(),
            ))
        }
    }

    /// The CUDA kernels emulated on the host (a test instrument: slow, never
    /// chosen on its own). Builds the emulator with the system C++ compiler.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] without the `cuda` feature; [`Error::Device`]
    /// when the emulator cannot be built or loaded.
    #[doc(hidden)]
    pub fn cuda_emulated() -> Result<Device, Error> {
        #[cfg(feature = "cuda-backend")]
        {
            let lib = cuda::emu::build_library()?;
            Ok(Device::from_backend(Arc::new(cuda::CudaBackend::emulated(
                &lib,
            )?)))
        }
        #[cfg(not(feature = "cuda-backend"))]
        Err(Error::Unsupported(
            "built without the `cuda` feature".into(),
        ))
    }

    /// Wraps any backend (keeping up to [`crate::resident::DEFAULT_LIMIT`]
    /// bytes of decoded inputs between jobs).
    pub fn from_backend(backend: Arc<dyn Backend>) -> Device {
        Device {
            backend,
            resident: Arc::new(Resident::new(crate::resident::DEFAULT_LIMIT)),
        }
    }

    /// This device keeping at most `bytes` of decoded inputs between jobs
    /// (0: none). Clones made before this keep the old store.
    pub fn with_resident_limit(self, bytes: u64) -> Device {
        Device {
            backend: self.backend,
            resident: Arc::new(Resident::new(bytes)),
        }
    }

    /// How the decoded inputs this device keeps are doing.
    pub fn resident_stats(&self) -> ResidentStats {
        self.resident.stats()
    }

    pub(crate) fn resident(&self) -> &Resident {
        &self.resident
    }

    /// The backend behind this device.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// What this device is.
    pub fn info(&self) -> BackendInfo {
        self.backend.info()
    }
}

/// What [`Device::probe_accelerators`] found.
#[derive(Debug, Clone, Default)]
pub struct AcceleratorProbe {
    /// The accelerators that work.
    pub devices: Vec<Device>,
    /// One line per backend (or device) that does not, saying why.
    pub unavailable: Vec<String>,
}

/// Facts about the CUDA build, for tests and tools (the compile check,
/// `assay devices`). Everything works without the `cuda` feature and then
/// says so.
#[doc(hidden)]
pub mod cuda_build {
    /// True when built with the `cuda` (or `cuda-13`) feature.
    pub fn enabled() -> bool {
        cfg!(feature = "cuda-backend")
    }

    /// The kernels' NVRTC program (canonical.h and kernels/*.cu, concatenated).
    ///
    /// # Errors
    ///
    /// Without the `cuda` feature.
    pub fn kernel_source() -> Result<String, String> {
        #[cfg(feature = "cuda-backend")]
        return Ok(super::cuda::kernels::source());
        #[cfg(not(feature = "cuda-backend"))]
        Err(not_built())
    }

    /// The kernels the backend launches.
    pub fn kernel_names() -> &'static [&'static str] {
        #[cfg(feature = "cuda-backend")]
        return super::cuda::kernels::KERNEL_NAMES;
        #[cfg(not(feature = "cuda-backend"))]
        &[]
    }

    /// The production NVRTC flags for `arch` (e.g. `compute_90`).
    pub fn nvrtc_options(arch: &str) -> Vec<String> {
        #[cfg(feature = "cuda-backend")]
        return super::cuda::kernels::nvrtc_options(arch);
        #[cfg(not(feature = "cuda-backend"))]
        {
            let _ = arch;
            Vec::new()
        }
    }

    /// NVRTC's version, or why it cannot be loaded.
    ///
    /// # Errors
    ///
    /// Without the `cuda` feature or without a loadable libnvrtc.
    pub fn nvrtc_version() -> Result<(i32, i32), String> {
        #[cfg(feature = "cuda-backend")]
        return super::cuda::nvrtc_version();
        #[cfg(not(feature = "cuda-backend"))]
        Err(not_built())
    }

    /// The CUDA version the driver supports (e.g. `13.0`), when a driver is loaded.
    pub fn driver_version() -> Option<String> {
        #[cfg(feature = "cuda-backend")]
        return super::cuda::device_count()
            .ok()
            .and_then(|_| super::cuda::driver_version());
        #[cfg(not(feature = "cuda-backend"))]
        None
    }

    /// Compiles `source` to PTX for `arch` with the production flags.
    ///
    /// # Errors
    ///
    /// Without the `cuda` feature, without NVRTC, or with NVRTC's log.
    pub fn compile_ptx(source: &str, arch: &str) -> Result<String, String> {
        #[cfg(feature = "cuda-backend")]
        return super::cuda::compile_ptx(source, arch);
        #[cfg(not(feature = "cuda-backend"))]
        {
            let _ = (source, arch);
            Err(not_built())
        }
    }

    #[cfg(not(feature = "cuda-backend"))]
    fn not_built() -> String {
        "built without the `cuda` feature (rebuild with `--features cuda`)".into()
    }
}
