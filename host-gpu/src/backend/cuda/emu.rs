//! The CUDA kernels on the host: a [`Gpu`] whose memory is host memory and
//! whose launches run the kernels, compiled by the system C++ compiler with
//! a small CUDA emulation prelude (`emu/cuda_emu.h`: fibers for threads,
//! barriers, warp shuffles). It exists so the backend's host logic and the
//! kernels' bits are tested against the CPU reference on machines without a
//! GPU (tests/all/cuda_emulated.rs; `ASSAY_CUDA_EMULATOR=1` adds it to
//! `Device::accelerators()` so the conformance suite runs on it unchanged).
//! It is a test instrument, slow, and never chosen on its own.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::gpu::{Gpu, Launch, Mem, Param};
use super::kernels;
use crate::error::Error;

const PRELUDE: &str = include_str!("emu/cuda_emu.h");
const RUNTIME: &str = include_str!("emu/runtime.h");

/// The kernels' entry points with their parameter lists, as written in the source.
fn entry_points(src: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out = Vec::new();
    let marker = "extern \"C\" __global__ void";
    let mut rest = src;
    while let Some(at) = rest.find(marker) {
        rest = &rest[at + marker.len()..];
        let open = rest.find('(').ok_or("a kernel without a parameter list")?;
        let name = rest[..open].trim().to_string();
        let close = rest[open..].find(')').ok_or("an unclosed parameter list")? + open;
        let params: Vec<String> = rest[open + 1..close]
            .replace('\\', " ")
            .split(',')
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|p| !p.is_empty())
            .collect();
        if name.starts_with("__launch_bounds__") {
            // The SGEMM entry macro: `__launch_bounds__(..) name(params)`.
            continue;
        }
        out.push((name, params));
    }
    // The SGEMM entries share the parameter list of the macro's `name(...)`.
    let mac = src
        .find("#define ASSAY_SGEMM_ENTRY")
        .ok_or("the SGEMM entry macro is missing")?;
    let body = &src[mac..];
    let open = body.find("name(").ok_or("the SGEMM macro has no name(")? + 4;
    let close = body[open..]
        .find(')')
        .ok_or("the SGEMM macro is unclosed")?
        + open;
    let params: Vec<String> = body[open + 1..close]
        .replace('\\', " ")
        .split(',')
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    for name in kernels::KERNEL_NAMES
        .iter()
        .filter(|n| n.starts_with("assay_sgemm"))
    {
        out.push((name.to_string(), params.clone()));
    }
    Ok(out)
}

/// The type of a C parameter declaration (`const float *x` → `const float *`).
fn param_type(decl: &str) -> String {
    let decl = decl.trim();
    let cut = decl
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    decl[..cut].trim().to_string()
}

/// The emulator's whole C++ source: prelude, kernels, trampolines, runtime.
pub(crate) fn emulator_source() -> Result<String, String> {
    let kernels = kernels::source();
    let mut src = String::from(PRELUDE);
    src.push_str(&kernels);
    src.push_str("\n#line 1 \"assay_emu_trampolines\"\nnamespace assay_emu {\nstruct KernelEntry {\n    const char *name;\n    void (*run)(void **);\n};\n}\n");
    let entries = entry_points(&kernels)?;
    for (name, params) in &entries {
        let args: Vec<String> = params
            .iter()
            .enumerate()
            .map(|(i, p)| format!("*({} *)p[{i}]", param_type(p)))
            .collect();
        src.push_str(&format!(
            "static void assay_tramp_{name}(void **p) {{\n    (void)p;\n    {name}({});\n}}\n",
            args.join(", ")
        ));
    }
    src.push_str("static const assay_emu::KernelEntry assay_emu_kernels[] = {\n");
    for (name, _) in &entries {
        src.push_str(&format!("    {{\"{name}\", assay_tramp_{name}}},\n"));
    }
    src.push_str("    {nullptr, nullptr},\n};\n");
    src.push_str(RUNTIME);
    Ok(src)
}

/// Builds the emulator library with the system C++ compiler (`$CXX`, else
/// `c++`) into the temp directory, keyed by a hash of its source, and
/// returns its path. Reuses an earlier build of the same source.
pub(crate) fn build_library() -> Result<PathBuf, Error> {
    // One build at a time in this process (tests run in parallel threads).
    static BUILD: Mutex<()> = Mutex::new(());
    let _one = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let src = emulator_source().map_err(|e| Error::Device(format!("cuda-emulated: {e}")))?;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in src.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let dir = std::env::temp_dir().join(format!("assay-cuda-emu-{hash:016x}"));
    let lib = dir.join("libassay_cuda_emu.so");
    if lib.exists() {
        return Ok(lib);
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Device(format!("cuda-emulated: creating {}: {e}", dir.display())))?;
    let cpp = dir.join("assay_cuda_emu.cpp");
    std::fs::write(&cpp, &src)
        .map_err(|e| Error::Device(format!("cuda-emulated: writing {}: {e}", cpp.display())))?;
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let tmp = dir.join(format!("libassay_cuda_emu.{}.so", std::process::id()));
    let mut cmd = std::process::Command::new(&cxx);
    // The host flags of the determinism contract (as for canonical.h's C
    // cross-check): IEEE binary32 in SSE registers, no contraction, no fast-math.
    cmd.args(["-std=c++17", "-O2", "-shared", "-fPIC", "-w"])
        .args(["-ffp-contract=off", "-fno-fast-math"]);
    #[cfg(target_arch = "x86_64")]
    cmd.args(["-msse2", "-mfpmath=sse"]);
    cmd.arg("-o").arg(&tmp).arg(&cpp);
    let out = cmd.output().map_err(|e| {
        Error::Device(format!(
            "cuda-emulated: cannot run the C++ compiler `{cxx}` ({e}); install g++ or set CXX"
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Device(format!(
            "cuda-emulated: `{cxx}` failed on {}:\n{}",
            cpp.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    std::fs::rename(&tmp, &lib).map_err(|e| Error::Device(format!("cuda-emulated: {e}")))?;
    Ok(lib)
}

type LaunchFn = unsafe extern "C" fn(
    name: *const std::ffi::c_char,
    grid: *const u32,
    block: *const u32,
    params: *const *const std::ffi::c_void,
    err: *mut std::ffi::c_char,
    err_len: std::ffi::c_ulong,
) -> i32;

/// The emulated GPU.
#[derive(Debug)]
pub(crate) struct EmuGpu {
    launch: LaunchFn,
    _lib: libloading::Library,
    path: PathBuf,
}

impl EmuGpu {
    pub(crate) fn load(path: &Path) -> Result<EmuGpu, Error> {
        // SAFETY: the library is the emulator this module built (or one the
        // caller pointed to on purpose); loading runs no initialisers of note.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| {
            Error::Device(format!("cuda-emulated: loading {}: {e}", path.display()))
        })?;
        // SAFETY: `assay_emu_launch` has exactly the `LaunchFn` signature (runtime.h).
        let launch = unsafe { lib.get::<LaunchFn>(b"assay_emu_launch\0") }
            .map(|f| *f)
            .map_err(|e| Error::Device(format!("cuda-emulated: {}: {e}", path.display())))?;
        Ok(EmuGpu {
            launch,
            _lib: lib,
            path: path.to_path_buf(),
        })
    }

    /// Checks that `mem` is host memory of an emulated GPU.
    fn host(mem: &Mem) -> Result<&Vec<u128>, Error> {
        mem._owner
            .downcast_ref::<Vec<u128>>()
            .ok_or_else(|| Error::Device("cuda-emulated: memory of another GPU".into()))
    }
}

impl Gpu for EmuGpu {
    fn describe(&self) -> String {
        format!(
            "CUDA kernels emulated on the host ({})",
            self.path.display()
        )
    }

    fn alloc(&self, bytes: usize) -> Result<Mem, Error> {
        if bytes == 0 {
            return Ok(Mem::empty());
        }
        // Poisoned (0xa5 bytes), so a kernel that reads an
        // output before writing it shows up in the results.
        let words = bytes.div_ceil(16);
        let v = vec![u128::from_ne_bytes([0xa5; 16]); words];
        let ptr = v.as_ptr() as u64;
        Ok(Mem {
            ptr,
            bytes,
            _owner: Box::new(v),
        })
    }

    fn upload(&self, data: &[u8]) -> Result<Mem, Error> {
        let mem = self.alloc(data.len())?;
        if !data.is_empty() {
            // SAFETY: `mem` is a live host allocation of at least data.len() bytes.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), mem.ptr as *mut u8, data.len()) };
        }
        Ok(mem)
    }

    fn download(&self, mem: &Mem, out: &mut [u8]) -> Result<(), Error> {
        if out.len() > mem.bytes {
            return Err(Error::Device(
                "cuda-emulated: read past an allocation".into(),
            ));
        }
        if !out.is_empty() {
            Self::host(mem)?;
            // SAFETY: `mem` is a live host allocation of at least out.len() bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(mem.ptr as *const u8, out.as_mut_ptr(), out.len())
            };
        }
        Ok(())
    }

    fn launch(&self, kernel: &'static str, shape: Launch, params: &[Param]) -> Result<(), Error> {
        let name = std::ffi::CString::new(kernel)
            .map_err(|_| Error::Device("cuda-emulated: bad kernel name".into()))?;
        let ptrs: Vec<*const std::ffi::c_void> = params.iter().map(Param::as_ptr).collect();
        let mut err = vec![0 as std::ffi::c_char; 512];
        // SAFETY: `params` match the kernel's signature (as for the real GPU)
        // and every pointer in them is a live host allocation of this GPU.
        let rc = unsafe {
            (self.launch)(
                name.as_ptr(),
                shape.grid.as_ptr(),
                shape.block.as_ptr(),
                ptrs.as_ptr(),
                err.as_mut_ptr(),
                err.len() as std::ffi::c_ulong,
            )
        };
        if rc != 0 {
            // SAFETY: the emulator writes a NUL-terminated message into `err`.
            let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
            return Err(Error::Device(format!(
                "cuda-emulated: {kernel}: {}",
                msg.to_string_lossy()
            )));
        }
        Ok(())
    }
}
