//! The real GPU: cudarc's driver API (libcuda) and NVRTC (libnvrtc), both
//! loaded at run time.
//!
//! cudarc *panics* when it cannot load a library, so nothing here touches the
//! driver or NVRTC before `is_culib_present()` said the library is there.
//!
//! One context per device (the primary context), created once per process
//! and shared by every job, with the kernels compiled once for the device's
//! architecture. Each [`CudaGpu`] owns one stream: one per `Device` handle,
//! so one per job when the runtime makes a handle per job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, DevicePtr, DriverError};
use cudarc::nvrtc::{CompileOptions, Ptx};

use super::gpu::{Gpu, Launch, Mem, Param, StridedDims, Window};
use super::kernels;
use crate::error::Error;

// SAFETY: both are plain-old-data #[repr(C)] structs that the kernels take by value.
unsafe impl cudarc::driver::DeviceRepr for StridedDims {}
unsafe impl cudarc::driver::DeviceRepr for Window {}

/// Why the CUDA driver cannot be used, or the number of devices it sees.
pub(crate) fn device_count() -> Result<usize, String> {
    // SAFETY: only tries to dlopen the library names cudarc would use.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(
            "no NVIDIA driver found (libcuda could not be loaded); install the NVIDIA \
                    driver, or run on the CPU backend"
                .into(),
        );
    }
    cudarc::driver::result::init().map_err(|e| {
        format!(
            "the NVIDIA driver did not initialise ({}); check `nvidia-smi`",
            describe_err(&e)
        )
    })?;
    let n = CudaContext::device_count()
        .map_err(|e| format!("cannot count CUDA devices: {}", describe_err(&e)))?;
    if n <= 0 {
        return Err(
            "the NVIDIA driver is loaded but sees no CUDA device (check \
                    CUDA_VISIBLE_DEVICES and `nvidia-smi`)"
                .into(),
        );
    }
    Ok(n as usize)
}

/// The driver's version, e.g. `13.0` (the CUDA version it supports).
pub(crate) fn driver_version() -> Option<String> {
    let mut v = 0i32;
    // SAFETY: only called after `device_count` loaded and initialised the driver.
    let r = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
    (r == cudarc::driver::sys::CUresult::CUDA_SUCCESS)
        .then(|| format!("{}.{}", v / 1000, (v % 1000) / 10))
}

/// NVRTC's version, or why it cannot be loaded.
pub(crate) fn nvrtc_version() -> Result<(i32, i32), String> {
    // SAFETY: only tries to dlopen the library names cudarc would use.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(format!(
            "NVRTC (libnvrtc) could not be loaded: cudarc looks for {:?}; install the CUDA \
             toolkit or `pip install nvidia-cuda-nvrtc-cu12` and put its lib folder on \
             LD_LIBRARY_PATH",
            cudarc::get_lib_name_candidates("nvrtc")
        ));
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present (checked above); the out-pointers are valid.
    let r = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if r != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(format!("nvrtcVersion failed: {r:?}"));
    }
    Ok((major, minor))
}

/// Compiles `src` to PTX for `arch` (e.g. `compute_90`) with the production flags.
pub(crate) fn compile_ptx(src: &str, arch: &str) -> Result<String, String> {
    nvrtc_version()?;
    let opts = CompileOptions {
        options: kernels::nvrtc_options(arch),
        name: Some("assay_kernels.cu".into()),
        ..Default::default()
    };
    // cudarc unwraps a few NVRTC calls internally; turn a panic into an error.
    let src = src.to_owned();
    let result = std::panic::catch_unwind(move || cudarc::nvrtc::compile_ptx_with_opts(src, opts))
        .map_err(|_| format!("NVRTC panicked compiling for {arch}"))?;
    match result {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(cudarc::nvrtc::CompileError::CompileError { nvrtc, log, .. }) => Err(format!(
            "NVRTC could not compile the kernels for {arch} ({nvrtc:?}):\n{}",
            log.to_string_lossy()
        )),
        Err(e) => Err(format!("NVRTC failed for {arch}: {e}")),
    }
}

/// A driver error with its name and description.
fn describe_err(e: &DriverError) -> String {
    let name = e.error_name().map(|s| s.to_string_lossy().into_owned());
    let text = e.error_string().map(|s| s.to_string_lossy().into_owned());
    match (name, text) {
        (Ok(n), Ok(t)) => format!("{n}: {t}"),
        _ => format!("{:?}", e.0),
    }
}

/// A driver error as a provider fault.
fn fault(what: &str, e: DriverError) -> Error {
    let out_of_memory = e.0 == cudarc::driver::sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY;
    Error::Device(format!(
        "cuda: {what}: {}{}",
        describe_err(&e),
        if out_of_memory {
            " (the device is out of memory: a provider fault; the job goes elsewhere)"
        } else {
            ""
        }
    ))
}

/// What every stream on one device shares: the context and the compiled kernels.
#[derive(Debug)]
struct Shared {
    ctx: Arc<CudaContext>,
    _module: Arc<CudaModule>,
    functions: HashMap<&'static str, CudaFunction>,
    description: String,
}

/// The shared state of each device ordinal (created on first use, kept for the process).
fn shared(ordinal: usize) -> Result<Arc<Shared>, Error> {
    static SHARED: OnceLock<Mutex<HashMap<usize, Arc<Shared>>>> = OnceLock::new();
    let map = SHARED.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map
        .lock()
        .map_err(|_| Error::Device("cuda: a thread panicked while opening a device".into()))?;
    if let Some(s) = map.get(&ordinal) {
        return Ok(s.clone());
    }
    let s = Arc::new(open_shared(ordinal)?);
    map.insert(ordinal, s.clone());
    Ok(s)
}

fn open_shared(ordinal: usize) -> Result<Shared, Error> {
    let count = device_count().map_err(Error::Device)?;
    if ordinal >= count {
        return Err(Error::Device(format!(
            "cuda: there is no device {ordinal}; this machine has {count}"
        )));
    }
    let ctx = CudaContext::new(ordinal).map_err(|e| fault("creating the context", e))?;
    // Every buffer is only ever used on the stream of the handle that made it,
    // so cudarc's per-buffer events (which cost a record per launch) are not needed.
    // SAFETY: no stream or buffer exists on this context yet.
    unsafe { ctx.disable_event_tracking() };
    let name = ctx
        .name()
        .map_err(|e| fault("reading the device name", e))?;
    let (major, minor) = ctx
        .compute_capability()
        .map_err(|e| fault("reading the compute capability", e))?;
    let src = kernels::source();
    // PTX for the device's own architecture; an NVRTC older than the device
    // cannot target it, and PTX of an older architecture runs on newer GPUs.
    let mut errors = Vec::new();
    let mut compiled = None;
    for arch in [
        format!("compute_{major}{minor}"),
        "compute_90".into(),
        "compute_80".into(),
    ] {
        match compile_ptx(&src, &arch) {
            Ok(ptx) => {
                compiled = Some((arch, ptx));
                break;
            }
            Err(e) => errors.push(e),
        }
    }
    let Some((arch, ptx)) = compiled else {
        return Err(Error::Device(format!(
            "cuda: cannot compile the kernels: {}",
            errors.join("; ")
        )));
    };
    let module = ctx
        .load_module(Ptx::from_src(ptx))
        .map_err(|e| fault("loading the compiled kernels", e))?;
    let mut functions = HashMap::new();
    for &k in kernels::KERNEL_NAMES {
        let f = module
            .load_function(k)
            .map_err(|e| fault(&format!("finding kernel {k}"), e))?;
        functions.insert(k, f);
    }
    let nvrtc = nvrtc_version()
        .map(|(a, b)| format!(", NVRTC {a}.{b}"))
        .unwrap_or_default();
    let driver = driver_version()
        .map(|v| format!(", driver CUDA {v}"))
        .unwrap_or_default();
    Ok(Shared {
        ctx,
        _module: module,
        functions,
        description: format!("{name} (sm_{major}{minor}, kernels {arch}{nvrtc}{driver})"),
    })
}

/// One stream on a shared device context.
#[derive(Debug)]
pub(crate) struct CudaGpu {
    shared: Arc<Shared>,
    stream: Arc<CudaStream>,
}

impl CudaGpu {
    /// A new stream on device `ordinal` (opening the device and compiling the
    /// kernels the first time).
    pub(crate) fn open(ordinal: usize) -> Result<CudaGpu, Error> {
        let shared = shared(ordinal)?;
        let stream = shared
            .ctx
            .new_stream()
            .map_err(|e| fault("creating a stream", e))?;
        Ok(CudaGpu { shared, stream })
    }

    fn bind(&self) -> Result<(), Error> {
        self.shared
            .ctx
            .bind_to_thread()
            .map_err(|e| fault("binding the context", e))
    }
}

impl Gpu for CudaGpu {
    fn describe(&self) -> String {
        self.shared.description.clone()
    }

    fn alloc(&self, bytes: usize) -> Result<Mem, Error> {
        if bytes == 0 {
            return Ok(Mem::empty());
        }
        // SAFETY: the contents are unspecified; every caller fully writes or zeroes them.
        let slice = unsafe { self.stream.alloc::<u8>(bytes) }
            .map_err(|e| fault(&format!("allocating {bytes} bytes"), e))?;
        let ptr = {
            let (ptr, _sync) = slice.device_ptr(&self.stream);
            ptr
        };
        Ok(Mem {
            ptr,
            bytes,
            _owner: Box::new(slice),
        })
    }

    fn upload(&self, data: &[u8]) -> Result<Mem, Error> {
        let mem = self.alloc(data.len())?;
        if data.is_empty() {
            return Ok(mem);
        }
        self.bind()?;
        // SAFETY: `mem` holds data.len() bytes; a copy from pageable memory has
        // read `data` by the time the call returns.
        unsafe {
            cudarc::driver::result::memcpy_htod_async(mem.ptr, data, self.stream.cu_stream())
        }
        .map_err(|e| fault(&format!("copying {} bytes to the device", data.len()), e))?;
        Ok(mem)
    }

    fn download(&self, mem: &Mem, out: &mut [u8]) -> Result<(), Error> {
        if out.len() > mem.bytes {
            return Err(Error::Device(format!(
                "cuda: reading {} bytes from an allocation of {}",
                out.len(),
                mem.bytes
            )));
        }
        if out.is_empty() {
            return Ok(());
        }
        self.bind()?;
        // SAFETY: `mem` holds at least out.len() bytes; the stream is synchronised
        // before `out` is used.
        unsafe { cudarc::driver::result::memcpy_dtoh_async(out, mem.ptr, self.stream.cu_stream()) }
            .map_err(|e| fault(&format!("copying {} bytes from the device", out.len()), e))?;
        self.stream
            .synchronize()
            .map_err(|e| fault("waiting for the device", e))
    }

    fn launch(&self, kernel: &'static str, shape: Launch, params: &[Param]) -> Result<(), Error> {
        use cudarc::driver::{LaunchConfig, PushKernelArg};
        let f = self
            .shared
            .functions
            .get(kernel)
            .ok_or_else(|| Error::Device(format!("cuda: kernel {kernel} is not loaded")))?;
        let mut b = self.stream.launch_builder(f);
        for p in params {
            match p {
                Param::Ptr(v) | Param::U64(v) => b.arg(v),
                Param::I64(v) => b.arg(v),
                Param::U32(v) => b.arg(v),
                Param::I32(v) => b.arg(v),
                Param::F32(v) => b.arg(v),
                Param::Dims(v) => b.arg(v),
                Param::Window(v) => b.arg(v),
            };
        }
        let cfg = LaunchConfig {
            grid_dim: (shape.grid[0], shape.grid[1], shape.grid[2]),
            block_dim: (shape.block[0], shape.block[1], shape.block[2]),
            shared_mem_bytes: 0,
        };
        // SAFETY: `params` match the kernel's signature (ops.rs builds each
        // launch from the kernel's declaration) and every pointer is a live
        // allocation of this context large enough for the launch.
        unsafe { b.launch(cfg) }
            .map(|_| ())
            .map_err(|e| fault(&format!("launching {kernel}"), e))
    }
}
