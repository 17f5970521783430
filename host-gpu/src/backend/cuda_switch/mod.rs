//! The one place the crate asks whether CUDA was built in.
//!
//! Like jiff's `tz/db/bundled/`, this module has two implementations of one
//! small API and picks one by the `cuda-backend` feature (turned on by the
//! `cuda` and `cuda-13` features): `enabled.rs` forwards to the real
//! backend in `backend/cuda/`, `disabled.rs` answers "not built with CUDA"
//! with the same signatures. Everything else — [`crate::Device`],
//! [`crate::cuda_build`] — calls this module without a `cfg` of its own, so
//! both builds type-check the same code paths.
//!
//! The API: [`BUILT`], [`device_count`], [`open`], [`emulated`],
//! [`kernel_source`], [`kernel_names`], [`nvrtc_options`],
//! [`nvrtc_version`], [`driver_version`], [`compile_ptx`].

#[cfg(feature = "cuda-backend")]
#[path = "enabled.rs"]
mod imp;

#[cfg(not(feature = "cuda-backend"))]
#[path = "disabled.rs"]
mod imp;

pub(crate) use imp::{
    BUILT, compile_ptx, device_count, driver_version, emulated, kernel_names, kernel_source,
    nvrtc_options, nvrtc_version, open,
};
