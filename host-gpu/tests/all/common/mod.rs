//! Shared by the integration tests: a seeded PRNG, input generators, and the
//! backends every suite runs on, one test per backend ([`test_device!`]).

#![allow(dead_code)]

use assay_host_gpu::{CpuSimd, Device, Session, SessionLimits, Tensor};

/// Turns a test body `fn name(device_name: &str, device: &Device)` into one
/// test per backend, as candle's `test_device!` does: `name::cpu_scalar`,
/// `name::cpu_avx2`, `name::cpu_avx512` (each CPU path with 1 and 4
/// threads) and `name::cuda` (every accelerator [`Device::accelerators`]
/// lists, the host emulator included under `ASSAY_CUDA_EMULATOR=1`). A
/// backend absent on this machine prints `SKIPPED: <why>` and passes,
/// except the accelerator one under `ASSAY_REQUIRE_GPU=1`, which fails.
#[allow(unused_macros)] // benches/ops.rs includes this file too
macro_rules! test_device {
    ($body:ident) => {
        mod $body {
            use $crate::common::{TestBackend, run_on};

            #[test]
            fn cpu_scalar() {
                run_on(TestBackend::CpuScalar, super::$body);
            }

            #[test]
            fn cpu_avx2() {
                run_on(TestBackend::CpuAvx2, super::$body);
            }

            #[test]
            fn cpu_avx512() {
                run_on(TestBackend::CpuAvx512, super::$body);
            }

            #[test]
            fn cuda() {
                run_on(TestBackend::Cuda, super::$body);
            }
        }
    };
}

/// The backends [`test_device!`] makes a test for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    CpuScalar,
    CpuAvx2,
    CpuAvx512,
    /// Every accelerator backend built in and working (CUDA devices, and
    /// the emulated kernels under `ASSAY_CUDA_EMULATOR=1`).
    Cuda,
}

/// The devices of `backend` on this machine, named as in failure messages
/// (`cpu/avx2/4t`, `cuda/0/NVIDIA H100`), or why there are none.
///
/// # Panics
///
/// For [`TestBackend::Cuda`] with `ASSAY_REQUIRE_GPU=1` and no accelerator.
pub fn devices_of(backend: TestBackend) -> Result<Vec<(String, Device)>, String> {
    let simd = match backend {
        TestBackend::CpuScalar => CpuSimd::Scalar,
        TestBackend::CpuAvx2 => CpuSimd::Avx2,
        TestBackend::CpuAvx512 => CpuSimd::Avx512,
        TestBackend::Cuda => return accelerators(),
    };
    if !simd.is_supported() {
        return Err(format!("this CPU cannot run the {} path", simd.name()));
    }
    Ok([1, 4]
        .into_iter()
        .map(|threads| {
            let device = Device::cpu_with(Some(threads), simd)
                .expect("a supported SIMD path must build a device");
            (format!("cpu/{}/{threads}t", simd.name()), device)
        })
        .collect())
}

/// Every accelerator; with `ASSAY_REQUIRE_GPU=1`, having none is a failure.
fn accelerators() -> Result<Vec<(String, Device)>, String> {
    let probe = Device::probe_accelerators();
    if probe.devices.is_empty() {
        if std::env::var("ASSAY_REQUIRE_GPU").as_deref() == Ok("1") {
            panic!(
                "ASSAY_REQUIRE_GPU=1 but no accelerator backend is built into this crate and \
                 working on this machine; refusing to pass on the CPU alone ({})",
                probe.unavailable.join("; ")
            );
        }
        return Err(format!(
            "no accelerator: {} (ASSAY_REQUIRE_GPU=1 makes this a failure)",
            probe.unavailable.join("; ")
        ));
    }
    Ok(probe
        .devices
        .into_iter()
        .enumerate()
        .map(|(i, device)| {
            let info = device.info();
            (format!("{}/{i}/{}", info.kind, info.device), device)
        })
        .collect())
}

/// Runs `body` on every device of `backend`, or says visibly why it cannot.
pub fn run_on(backend: TestBackend, body: fn(&str, &Device)) {
    match devices_of(backend) {
        Ok(devices) => {
            for (name, device) in &devices {
                body(name, device);
            }
        }
        Err(why) => eprintln!("SKIPPED: {why}"),
    }
}

/// splitmix64: tiny, seedable, the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator seeded from a name (so each case has its own stream).
    pub fn for_name(name: &str) -> Rng {
        let h = blake3::hash(name.as_bytes());
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&h.as_bytes()[..8]);
        Rng(u64::from_le_bytes(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `n` values uniform in [lo, hi).
    pub fn uniform(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.range(lo, hi)).collect()
    }

    /// A special or extreme value: ±0, subnormals, ±inf, NaNs of several
    /// payloads and signs, huge and tiny magnitudes.
    pub fn special(&mut self) -> f32 {
        let sign = if self.next_u64() & 1 == 0 {
            1.0f32
        } else {
            -1.0
        };
        match self.below(12) {
            0 => 0.0 * sign,
            1 => sign * f32::from_bits(1 + self.below(0x7f_ffff) as u32),
            2 => sign * f32::from_bits(1),
            3 => sign * f32::INFINITY,
            4 => f32::from_bits(0x7fc0_0000),
            5 => f32::from_bits(0xffc0_0000 | self.below(0x3f_ffff) as u32),
            6 => f32::from_bits(0x7f80_0001 + self.below(0x3f_fffe) as u32),
            7 => sign * self.range(1e30, 3.4e38),
            8 => sign * f32::MAX,
            9 => sign * self.range(1e-38, 1e-30),
            10 => sign * f32::MIN_POSITIVE,
            _ => sign * self.range(60.0, 120.0),
        }
    }

    /// `n` values: mostly uniform in [-4, 4), with `special_fraction` of them special.
    pub fn edgy(&mut self, n: usize, special_fraction: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                if self.unit() < special_fraction {
                    self.special()
                } else {
                    self.range(-4.0, 4.0)
                }
            })
            .collect()
    }
}

/// A session with generous limits for conformance work.
pub fn session(device: &Device) -> Session {
    Session::new(device.clone(), SessionLimits::default())
}

/// blake3 over dtype, shape and the little-endian element bytes.
pub fn tensor_hash(session: &Session, t: &Tensor) -> String {
    let mut h = blake3::Hasher::new();
    h.update(t.dtype().name().as_bytes());
    for &d in t.shape() {
        h.update(&(d as u64).to_le_bytes());
    }
    h.update(&session.read_bytes(t).expect("read back"));
    h.finalize().to_hex().to_string()
}

/// True when `math::erf` is implemented (it may still be a placeholder that panics).
pub fn erf_is_ready() -> bool {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let ok = std::panic::catch_unwind(|| assay_host_gpu::math::erf(0.5)).is_ok();
    std::panic::set_hook(hook);
    ok
}
