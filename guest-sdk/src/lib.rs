//! # assay-guest: write an Assay GPU job in Rust
//!
//! An Assay job is a WebAssembly component (`wasm32-wasip2`) that a provider
//! runs in a sandbox. The job reaches the provider's GPU only through the
//! `assay:gpu` interface: it holds handles to tensors that live on the device
//! and calls a fixed catalogue of ops whose kernels belong to the host. Every
//! op is defined bit for bit, so the same job gives the same output bytes on
//! a CUDA GPU and on a verifier's CPU.
//!
//! This crate is everything a job author touches:
//!
//! | module | what |
//! | --- | --- |
//! | [`tensor`] | [`Tensor`]: device arrays with every op of the interface as a method |
//! | [`io`] | inputs, outputs, job parameters, shard, log |
//! | [`safetensors`] | [`SafeTensors`]: load model weights straight from an input to the device |
//! | [`error`] | [`Error`] and [`Result`] |
//! | [`job!`] | exports your `run` function as the component's entry point |
//! | [`bindings`] | the raw `wit-bindgen` bindings, for what the wrappers do not cover |
//!
//! ## A complete job
//!
//! `Cargo.toml`:
//! ```toml
//! [package]
//! name = "classify"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! assay-guest = "0.1"
//! ```
//!
//! `src/lib.rs`: a two-layer MLP whose weights come from a safetensors input
//! `model`, applied to a batch of f32 rows from input `x`:
//! ```no_run
//! use assay_guest::prelude::*;
//!
//! fn run() -> Result<()> {
//!     // Weights: only the safetensors header passes through guest memory.
//!     let model = SafeTensors::open("model")?;
//!     let w1 = model.load("fc1.weight")?; // [hidden, 784], PyTorch Linear layout
//!     let b1 = model.load("fc1.bias")?; // [hidden]
//!     let w2 = model.load("fc2.weight")?; // [10, hidden]
//!     let b2 = model.load("fc2.bias")?; // [10]
//!
//!     // The batch: raw little-endian f32, 784 values per row.
//!     let rows = input_size("x")? / (784 * 4);
//!     let x = Tensor::from_input("x", 0, Encoding::F32, &[rows, 784])?;
//!
//!     // x · w1ᵀ + b1 → GELU → · w2ᵀ + b2 → softmax
//!     let h = x.matmul_t(&w1, false, true)?.add(&b1)?.gelu()?;
//!     let probs = h.matmul_t(&w2, false, true)?.add(&b2)?.softmax()?;
//!
//!     // Outputs are hashed into the receipt.
//!     write_tensor_output("probs", &probs)?; // [rows, 10] f32 LE, no guest copy
//!     let classes = probs.argmax()?.to_vec_i32()?;
//!     write_output("classes.txt", format!("{classes:?}"))?;
//!     log!("classified {} rows", classes.len());
//!     Ok(())
//! }
//!
//! assay_guest::job!(run);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the
//! component is `target/wasm32-wasip2/release/classify.wasm`. The
//! repository's `examples/mlp` is this job (plus sharding), and
//! `examples/matmul`, `examples/hello` and `examples/minilm-embed` show
//! raw inputs, WASI and a real BERT-family model.
//!
//! To implement the generated trait yourself instead of using [`job!`]:
//! `impl assay_guest::bindings::Guest for MyJob { fn run() -> Result<(), String> { … } }`
//! and `assay_guest::bindings::export!(MyJob);`.
//!
//! ## Errors
//! Every fallible call returns [`Result<T>`]. The host refuses bad requests
//! (shapes that do not fit, a tensor past the job's GPU memory quota, a
//! missing input) with an error the job can handle: see [`Error`]. Returning
//! `Err` from `run` ends the job as a *guest error* whose text is its output.
//! Some limits are not errors but end the job at once: the fuel budget
//! (guest instructions), the work budget (FLOPs and bytes of tensor ops),
//! the guest memory cap, and the output size cap.
//!
//! ## Determinism
//! The sandbox is deterministic: the wall clock is the job's declared start
//! time, the monotonic clock advances by a fixed step per read, random bytes
//! are seeded from the job id, and there are no files, sockets or
//! environment. A job's outputs are a function of its component, inputs and
//! spec alone, which is what lets a verifier reproduce them bit for bit.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

/// The raw bindings `wit-bindgen` generates for the `assay:gpu` world `job`
/// (`wit/assay-gpu.wit`).
///
/// The wrappers in this crate cover all of it; use these for anything they
/// do not. [`job!`] uses [`bindings::Guest`] and [`bindings::export!`].
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "job",
        path: "../wit",
        pub_export_macro: true,
        default_bindings_module: "assay_guest::bindings",
    });
}

pub mod error;
pub mod gguf;
pub mod io;
pub mod safetensors;
pub mod shape;
pub mod tensor;

pub use error::{Context, Error};
pub use gguf::{GgmlType, Gguf, GgufTensor};
pub use io::{
    Input, Shard, input_size, inputs, log, param, param_opt, param_or, param_str, read_input,
    read_input_range, read_input_to_string, shard, write_output, write_tensor_output,
};
pub use safetensors::{SafeTensors, TensorInfo};
pub use shape::{Dim, Dims};
pub use tensor::{BinaryOp, BlockFormat, Dtype, Encoding, ReduceOp, Tensor, UnaryOp};

/// `Result<T, assay_guest::Error>`.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything a job usually needs: `use assay_guest::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Context, Dtype, Encoding, Error, Result, SafeTensors, Shard, Tensor, input_size, inputs,
        job, log, param, param_opt, param_or, read_input, read_input_range, read_input_to_string,
        shard, write_output, write_tensor_output,
    };
}

/// Appends a formatted line to the job's log, like `println!`.
///
/// # Example
/// ```no_run
/// let n = 3;
/// assay_guest::log!("loaded {n} tensors");
/// ```
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::io::log(&::std::format!($($arg)*))
    };
}

/// Exports a function as the job's entry point (the `run` export of the
/// `assay:gpu` world `job`).
///
/// The function takes no arguments and returns either `()` or
/// `Result<(), E>` for any `E: Display` — [`Error`], `String`,
/// `Box<dyn std::error::Error>`, … An `Err` ends the job as a guest error
/// whose text (the `Display` form) is its output; a panic ends it as a trap.
/// Use the macro once per component, at the crate's top level.
///
/// # Example
/// ```no_run
/// fn run() -> assay_guest::Result<()> {
///     assay_guest::write_output("hello.txt", "hello, world")?;
///     Ok(())
/// }
/// assay_guest::job!(run);
/// ```
///
/// A closure works too: `assay_guest::job!(|| Ok::<(), String>(()));`.
#[macro_export]
macro_rules! job {
    ($run:expr $(,)?) => {
        const _: () = {
            struct AssayJob;
            impl $crate::bindings::Guest for AssayJob {
                fn run() -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::IntoJobResult::into_job_result(($run)())
                }
            }
    $crate::bindings::export!(AssayJob with_types_in $crate::bindings);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    use std::fmt::Display;

    /// What a job function may return.
    pub trait IntoJobResult {
        fn into_job_result(self) -> Result<(), String>;
    }

    impl IntoJobResult for () {
        fn into_job_result(self) -> Result<(), String> {
            Ok(())
        }
    }

    impl<E: Display> IntoJobResult for Result<(), E> {
        fn into_job_result(self) -> Result<(), String> {
            self.map_err(|e| e.to_string())
        }
    }
}
