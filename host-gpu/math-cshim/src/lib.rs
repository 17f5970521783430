//! Test-only bindings to `host-gpu/kernels/canonical.h`, compiled on the host
//! as C99 ([`c`]), as C++17 ([`cxx`]) and as C++17 down the header's NVRTC
//! path ([`rtc`]: no standard headers, CUDA bit-cast intrinsics) by this crate's build script with
//! `-ffp-contract=off` and without fast-math. Used by
//! `host-gpu/tests/all/math_c_crosscheck.rs` to check the C against the Rust in
//! `host-gpu/src/math.rs` bit for bit. This crate is only ever a
//! dev-dependency: the `assay-host-gpu` library links no C.

mod ffi {
    unsafe extern "C" {
        pub safe fn assay_c_exp(x: f32) -> f32;
        pub safe fn assay_c_log(x: f32) -> f32;
        pub safe fn assay_c_erf(x: f32) -> f32;
        pub safe fn assay_c_tanh(x: f32) -> f32;
        pub safe fn assay_cxx_exp(x: f32) -> f32;
        pub safe fn assay_cxx_log(x: f32) -> f32;
        pub safe fn assay_cxx_erf(x: f32) -> f32;
        pub safe fn assay_cxx_tanh(x: f32) -> f32;
        pub safe fn assay_rtc_exp(x: f32) -> f32;
        pub safe fn assay_rtc_log(x: f32) -> f32;
        pub safe fn assay_rtc_erf(x: f32) -> f32;
        pub safe fn assay_rtc_tanh(x: f32) -> f32;
    }
}

/// Plain Rust wrappers (`fn(f32) -> f32`) around one build's four functions.
macro_rules! wrappers {
    ($exp:ident, $log:ident, $erf:ident, $tanh:ident) => {
        /// Canonical e^x from the header.
        pub fn exp(x: f32) -> f32 {
            super::ffi::$exp(x)
        }
        /// Canonical natural logarithm from the header.
        pub fn log(x: f32) -> f32 {
            super::ffi::$log(x)
        }
        /// Canonical error function from the header.
        pub fn erf(x: f32) -> f32 {
            super::ffi::$erf(x)
        }
        /// Canonical hyperbolic tangent from the header.
        pub fn tanh(x: f32) -> f32 {
            super::ffi::$tanh(x)
        }
    };
}

/// The header compiled as C99.
pub mod c {
    wrappers!(assay_c_exp, assay_c_log, assay_c_erf, assay_c_tanh);
}

/// The header compiled as C++17.
pub mod cxx {
    wrappers!(assay_cxx_exp, assay_cxx_log, assay_cxx_erf, assay_cxx_tanh);
}

/// The header compiled as C++17 in an emulated NVRTC environment
/// (`__CUDACC_RTC__`, `__CUDA_ARCH__`, no standard headers).
pub mod rtc {
    wrappers!(assay_rtc_exp, assay_rtc_log, assay_rtc_erf, assay_rtc_tanh);
}
