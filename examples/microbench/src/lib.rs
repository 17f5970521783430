//! `microbench`: workloads for the host's benchmarks, chosen by the job
//! param `mode`. Writes no outputs.
//!
//! | `mode` | what it does |
//! | --- | --- |
//! | `trivial` | returns `Ok` at once: instantiation + call overhead |
//! | `host-calls` | makes one `[1]` tensor, then calls `tensor.shape()` on it `n` times: per-host-call cost of a call returning a list (the host calls back into the guest's allocator) |
//! | `host-calls-plain` | `job-io.shard()` `n` times: a host call with no resource handle |
//! | `host-calls-scalar` | the same with `tensor.numel()`, which returns a `u64`: the bare cost of a host call |
//! | `tiny-matmul` | `n` matmuls of `[4,4]·[4,4]`: per-op overhead |
//!
//! `n` is the job param `n` (default 1000).

#![forbid(unsafe_code)]

use std::hint::black_box;

use assay_guest::prelude::*;

fn run() -> Result<()> {
    let mode: String = param("mode")?;
    match mode.as_str() {
        "trivial" => Ok(()),
        "host-calls" => {
            let n: u64 = param_or("n", 1000)?;
            let t = Tensor::fill(&[1], 0.0)?;
            let raw = t.as_raw();
            for _ in 0..n {
                black_box(raw.shape());
            }
            Ok(())
        }
        "host-calls-plain" => {
            let n: u64 = param_or("n", 1000)?;
            for _ in 0..n {
                black_box(assay_guest::shard());
            }
            Ok(())
        }
        "host-calls-scalar" => {
            let n: u64 = param_or("n", 1000)?;
            let t = Tensor::fill(&[1], 0.0)?;
            let raw = t.as_raw();
            for _ in 0..n {
                black_box(raw.numel());
            }
            Ok(())
        }
        "tiny-matmul" => {
            let n: u64 = param_or("n", 1000)?;
            let a = Tensor::fill(&[4, 4], 0.25)?;
            let b = Tensor::fill(&[4, 4], 2.0)?;
            for _ in 0..n {
                black_box(a.matmul(&b)?);
            }
            Ok(())
        }
        other => Err(Error::Param {
            name: "mode".into(),
            message: format!(
                "unknown mode {other:?}; one of: trivial, host-calls, host-calls-plain, host-calls-scalar, tiny-matmul"
            ),
        }),
    }
}

assay_guest::job!(run);
