//! Host bindings for `wit/assay-gpu.wit`, generated once.
//!
//! Every import may trap (`trappable`): a host error that is not the guest's
//! to handle (work budget exhausted, output cap, a device fault) ends the run.
//! WIT `error` results are produced from [`crate::error::HostError`] through
//! `convert_error`, which decides between an error the guest sees and a trap.

wasmtime::component::bindgen!({
    world: "job",
    path: "../wit",
    imports: { default: trappable },
    trappable_error_type: {
        "assay:gpu/tensor.error" => crate::error::HostError,
    },
    with: {
        "assay:gpu/tensor.tensor": assay_host_gpu::Tensor,
    },
});

pub use assay::gpu::{job_io, tensor};
