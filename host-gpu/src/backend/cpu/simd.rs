//! Which instruction set the CPU kernels are compiled for, chosen at run time.
//!
//! Every path computes the same bits: the per-element programs of
//! `SEMANTICS.md` fix the order of every rounding, vector FMA instructions
//! round each lane exactly once (like `f32::mul_add`), and the compiler never
//! reassociates or contracts float arithmetic. The paths differ only in speed.
//! The conformance suite runs every path the machine supports to prove it.

use std::sync::OnceLock;

use crate::error::Error;

/// The instruction set used by the CPU backend's kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuSimd {
    /// The target's baseline instructions (SSE2 on x86-64). `f32::mul_add`
    /// becomes a call to the C library's correctly rounded `fmaf`.
    Scalar,
    /// x86-64 AVX2 + FMA (8-wide vectors).
    Avx2,
    /// x86-64 AVX-512 F/VL/DQ/BW (16-wide vectors), plus AVX2 + FMA.
    Avx512,
}

/// The environment variable that picks the default path: `scalar`, `avx2` or `avx512`.
pub(crate) const SIMD_ENV: &str = "ASSAY_CPU_SIMD";

impl CpuSimd {
    /// Every path, slowest first.
    pub const ALL: [CpuSimd; 3] = [CpuSimd::Scalar, CpuSimd::Avx2, CpuSimd::Avx512];

    /// The lowercase name (`scalar`, `avx2`, `avx512`), as `ASSAY_CPU_SIMD` spells it.
    pub fn name(self) -> &'static str {
        match self {
            CpuSimd::Scalar => "scalar",
            CpuSimd::Avx2 => "avx2",
            CpuSimd::Avx512 => "avx512",
        }
    }

    /// Parses a name as [`CpuSimd::name`] writes it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for any other string.
    pub fn parse(name: &str) -> Result<CpuSimd, Error> {
        CpuSimd::ALL
            .into_iter()
            .find(|s| s.name() == name.trim())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown CPU SIMD path {name:?}; expected scalar, avx2 or avx512"
                ))
            })
    }

    /// True when this machine can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            CpuSimd::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            CpuSimd::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            CpuSimd::Avx512 => {
                CpuSimd::Avx2.is_supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512bw")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The paths this machine supports, slowest first.
    pub fn supported() -> Vec<CpuSimd> {
        CpuSimd::ALL
            .into_iter()
            .filter(|s| s.is_supported())
            .collect()
    }

    /// The fastest supported path.
    pub fn best() -> CpuSimd {
        CpuSimd::supported().pop().unwrap_or(CpuSimd::Scalar)
    }

    /// The default path: `ASSAY_CPU_SIMD` if set (read once per process), else
    /// [`CpuSimd::best`]. A requested path the machine lacks, or an unknown
    /// name, falls back to the fastest supported path below it, so a
    /// misconfigured provider still computes the same bits.
    pub fn from_env() -> CpuSimd {
        static CHOICE: OnceLock<CpuSimd> = OnceLock::new();
        *CHOICE.get_or_init(|| {
            let wanted = std::env::var(SIMD_ENV)
                .ok()
                .and_then(|v| CpuSimd::parse(&v).ok())
                .unwrap_or(CpuSimd::Avx512);
            CpuSimd::ALL
                .into_iter()
                .rfind(|s| *s as u8 <= wanted as u8 && s.is_supported())
                .unwrap_or(CpuSimd::Scalar)
        })
    }
}

impl std::fmt::Display for CpuSimd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CpuSimd::Scalar => "scalar (baseline, libm fmaf)",
            CpuSimd::Avx2 => "avx2+fma",
            CpuSimd::Avx512 => "avx512f+avx2+fma",
        })
    }
}

/// Defines `fn name(simd: CpuSimd, args…)` that runs `body` compiled three
/// times: for the baseline target, with AVX2+FMA, and with AVX-512. The body
/// is plain Rust; the compiler vectorises it for the enabled features without
/// changing any result (it never reassociates float arithmetic).
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(simd: $crate::backend::cpu::simd::CpuSimd, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn avx512($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            match simd {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: a backend holds `Avx2` only after `is_supported` detected AVX2 and FMA.
                $crate::backend::cpu::simd::CpuSimd::Avx2 => unsafe { avx2($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: a backend holds `Avx512` only after `is_supported` detected every feature enabled here.
                $crate::backend::cpu::simd::CpuSimd::Avx512 => unsafe { avx512($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}

pub(crate) use multiversion;
