//! Backends execute validated ops on a device.
//!
//! The [`Backend`] trait is the only thing the rest of the crate knows about
//! a device. The CPU backend (`cpu/`) is always built and is the reference;
//! other backends live in their own folders behind cargo features, and their
//! types (cudarc's included) never leave those folders. Whether CUDA is
//! built in is asked in one place, `cuda_switch/` (the only `cfg` on the
//! feature besides the `mod cuda;` line below).

mod contract;
mod cpu;
#[cfg(feature = "cuda-backend")]
mod cuda;
mod cuda_switch;

use std::sync::Arc;

use crate::error::Error;
use crate::resident::{Resident, ResidentStats};

pub use contract::{Backend, BackendInfo, DeviceBuffer, HostElements, TensorRef};
pub(crate) use cpu::CpuBackend;
pub use cpu::CpuSimd;

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
        match cuda_switch::device_count() {
            Ok(n) => {
                for ordinal in 0..n {
                    match cuda_switch::open(ordinal) {
                        Ok(b) => probe.devices.push(Device::from_backend(b)),
                        Err(e) => probe
                            .unavailable
                            .push(format!("cuda device {ordinal}: {e}")),
                    }
                }
            }
            Err(e) => probe.unavailable.push(format!("cuda: {e}")),
        }
        if cuda_switch::BUILT && std::env::var("ASSAY_CUDA_EMULATOR").as_deref() == Ok("1") {
            match cuda_switch::emulated() {
                Ok(b) => probe.devices.push(Device::from_backend(b)),
                Err(e) => probe.unavailable.push(format!("cuda-emulated: {e}")),
            }
        }
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
        if cuda_switch::BUILT {
            cuda_switch::device_count().map_err(Error::Device)?;
        }
        Ok(Device::from_backend(cuda_switch::open(ordinal)?))
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
        Ok(Device::from_backend(cuda_switch::emulated()?))
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
    use crate::backend::cuda_switch;

    /// True when built with the `cuda` (or `cuda-13`) feature.
    pub fn enabled() -> bool {
        cuda_switch::BUILT
    }

    /// The kernels' NVRTC program (canonical.h and kernels/*.cu, concatenated).
    ///
    /// # Errors
    ///
    /// Without the `cuda` feature.
    pub fn kernel_source() -> Result<String, String> {
        cuda_switch::kernel_source()
    }

    /// The kernels the backend launches.
    pub fn kernel_names() -> &'static [&'static str] {
        cuda_switch::kernel_names()
    }

    /// The production NVRTC flags for `arch` (e.g. `compute_90`).
    pub fn nvrtc_options(arch: &str) -> Vec<String> {
        cuda_switch::nvrtc_options(arch)
    }

    /// NVRTC's version, or why it cannot be loaded.
    ///
    /// # Errors
    ///
    /// Without the `cuda` feature or without a loadable libnvrtc.
    pub fn nvrtc_version() -> Result<(i32, i32), String> {
        cuda_switch::nvrtc_version()
    }

    /// The CUDA version the driver supports (e.g. `13.0`), when a driver is loaded.
    pub fn driver_version() -> Option<String> {
        cuda_switch::driver_version()
    }

    /// Compiles `source` to PTX for `arch` with the production flags.
    ///
    /// # Errors
    ///
    /// Without the `cuda` feature, without NVRTC, or with NVRTC's log.
    pub fn compile_ptx(source: &str, arch: &str) -> Result<String, String> {
        cuda_switch::compile_ptx(source, arch)
    }
}
