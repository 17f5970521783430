//! `wasi-command`: an ordinary `fn main` program. Built for `wasm32-wasip2`
//! it is a `wasi:cli/command` component, a world other than `assay:gpu/job`:
//! it exports `wasi:cli/run` and no `run` function, and does not import
//! `assay:gpu`. The host's tests use it to check that such a component is
//! refused with a clear message instead of being run.

#![forbid(unsafe_code)]

fn main() {
    println!("hello from a wasi:cli/command component, which is not an Assay job");
}
