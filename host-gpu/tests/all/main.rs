//! host-gpu's integration tests as one binary (one link instead of eight).
//!
//! Each former `tests/<name>.rs` is a module here; run one with a filter,
//! e.g. `cargo test --release -p assay-host-gpu --test all conformance::`.
//! `common` holds what the suites share, including [`test_device!`], which
//! turns one test body into one test per backend (`<test>::cpu_scalar`,
//! `::cpu_avx2`, `::cpu_avx512`, `::cuda`), each printing `SKIPPED: <why>`
//! when its backend is absent here. The golden hashes stay in
//! `tests/golden/`, found through `CARGO_MANIFEST_DIR`.

#[macro_use]
mod common;
mod math_support;

mod batch_invariance;
mod conformance;
mod cuda_compile;
mod cuda_emulated;
mod math_accuracy;
mod math_c_crosscheck;
mod reference;
mod validation;
