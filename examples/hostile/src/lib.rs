//! `hostile`: one component that misbehaves in the way the job param `mode`
//! chooses, so the host's tests can check each limit of the sandbox.
//!
//! | `mode` | what it does | expected outcome |
//! | --- | --- | --- |
//! | `ok` | writes output `ok.txt` (`ok\n`) | success |
//! | `infinite-loop` | spins forever (a loop the optimiser cannot remove) | fuel exhausted (or the watchdog) |
//! | `memory-bomb` | allocates 64 MiB chunks and keeps them all | guest memory cap (a trap) |
//! | `deep-recursion` | non-tail recursion without end | trap (call stack exhausted) |
//! | `huge-output` | writes 1 MiB outputs `bulk-000000`, `bulk-000001`, … forever | output limit exceeded |
//! | `quota-bomb` | asks for a `[16384, 16384, 16]` f32 tensor (16 GiB) | guest error carrying the host's `quota-exceeded` text |
//! | `tensor-hoard` | keeps `[1024, 1024]` tensors (4 MiB each) alive until the host refuses | guest error carrying the host's `quota-exceeded` text |
//! | `shape-mismatch` | `[2,3]·[4,5]`; checks it gets the `shape-mismatch` variant, then writes output `recovered` (the error text) | success |
//! | `missing-input` | reads input `does-not-exist` | guest error carrying the host's `not-found` text |
//! | `bad-output-name` | writes an output named `../escape` | guest error carrying the host's `invalid-argument` text |
//! | `panic` | panics | trap |
//! | `guest-error` | returns `Err("hostile guest-error: returned an error on purpose")` | guest error |
//! | `work-bomb` | multiplies `[size, size]` matrices forever (param `size`, default 1024) | work budget exhausted |
//! | `wild-pointer` | loads from an address past the end of linear memory | trap (memory out of bounds) |
//! | `unwrap-refusal` | `unwrap`s the host's `not-found` for input `does-not-exist` | trap (a panic), naming the refused call |
//! | `log-flood` | passes the same 1 MiB line to `log` forever (the log keeps only its cap) | work budget exhausted: every byte handed to the host is work |
//!
//! A missing or unknown `mode` is a guest error that lists the modes.

use std::hint::black_box;

use assay_guest::prelude::*;

const MODES: &str = "ok, infinite-loop, memory-bomb, deep-recursion, huge-output, quota-bomb, tensor-hoard, \
                     shape-mismatch, missing-input, bad-output-name, panic, guest-error, work-bomb, wild-pointer, \
                     unwrap-refusal, log-flood";

fn run() -> Result<()> {
    let Some(mode) = assay_guest::param_str("mode") else {
        return Err(Error::Param {
            name: "mode".into(),
            message: format!("missing; one of: {MODES}"),
        });
    };
    log!("hostile: mode {mode}");
    match mode.as_str() {
        "ok" => write_output("ok.txt", "ok\n"),
        "infinite-loop" => infinite_loop(),
        "memory-bomb" => memory_bomb(),
        "deep-recursion" => {
            let r = recurse(0, black_box(u64::MAX));
            Err(Error::msg(format_args!("deep-recursion returned ({r})")))
        }
        "huge-output" => huge_output(),
        "quota-bomb" => quota_bomb(),
        "tensor-hoard" => tensor_hoard(),
        "shape-mismatch" => shape_mismatch(),
        "missing-input" => read_input_range("does-not-exist", 0, 16).map(drop),
        "bad-output-name" => write_output("../escape", "x"),
        "panic" => panic!("hostile guest panicked on purpose"),
        "guest-error" => Err(Error::msg(
            "hostile guest-error: returned an error on purpose",
        )),
        "work-bomb" => work_bomb(),
        "wild-pointer" => wild_pointer(),
        "log-flood" => log_flood(),
        "unwrap-refusal" => {
            #[allow(clippy::unwrap_used)] // the point: a panic right after a refusal
            read_input_range("does-not-exist", 0, 16).unwrap();
            Ok(())
        }
        other => Err(Error::Param {
            name: "mode".into(),
            message: format!("unknown mode {other:?}; one of: {MODES}"),
        }),
    }
}

fn log_flood() -> Result<()> {
    // Built once: each call costs the guest a little fuel and the host a
    // 1 MiB copy.
    let line = "x".repeat(1 << 20);
    loop {
        assay_guest::io::log(black_box(&line));
    }
}

fn wild_pointer() -> Result<()> {
    // Past any memory the guest can have (wasm32 addresses stop at 4 GiB).
    let address = black_box(u32::MAX as usize - 7);
    // SAFETY: none — the point is an access the sandbox must trap.
    let value = unsafe { std::ptr::read_volatile(address as *const u64) };
    Err(Error::msg(format_args!("wild-pointer read {value}")))
}

fn infinite_loop() -> Result<()> {
    let mut x: u64 = black_box(1);
    loop {
        // black_box hides the value from the optimiser, so the loop stays.
        x = black_box(
            x.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        );
    }
}

fn memory_bomb() -> Result<()> {
    const CHUNK: usize = 64 << 20;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        // Touch one byte per 64 KiB page so the memory is really used.
        for i in (0..CHUNK).step_by(65536) {
            chunk[i] = black_box(hoard.len() as u8);
        }
        hoard.push(black_box(chunk));
        black_box(&hoard);
    }
}

/// Non-tail recursion the optimiser can neither flatten nor bound (`limit`
/// comes through `black_box`). It keeps its state in wasm locals, not on
/// Rust's shadow stack in linear memory, so it exhausts the engine's call
/// stack ("call stack exhausted") rather than running off linear memory.
#[inline(never)]
fn recurse(depth: u64, limit: u64) -> u64 {
    if depth >= limit {
        return depth;
    }
    let below = recurse(depth + 1, limit);
    below.rotate_left(7) ^ depth.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn huge_output() -> Result<()> {
    let chunk: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    let mut i: u64 = 0;
    loop {
        write_output(&format!("bulk-{i:06}"), &chunk)?;
        i += 1;
    }
}

fn quota_bomb() -> Result<()> {
    match Tensor::fill(&[16384, 16384, 16], 1.0) {
        Ok(t) => Err(Error::msg(format_args!(
            "quota-bomb: a 16 GiB tensor was allowed (numel {})",
            t.numel()
        ))),
        Err(e @ Error::QuotaExceeded(_)) => Err(e),
        Err(other) => Err(Error::msg(format_args!(
            "quota-bomb: expected quota-exceeded, got: {other}"
        ))),
    }
}

fn tensor_hoard() -> Result<()> {
    let mut hoard = Vec::new();
    loop {
        match Tensor::fill(&[1024, 1024], 1.0) {
            Ok(t) => hoard.push(t),
            Err(e @ Error::QuotaExceeded(_)) => {
                return Err(e.context(format_args!("after {} tensors of 4 MiB", hoard.len())));
            }
            Err(other) => return Err(other),
        }
    }
}

fn shape_mismatch() -> Result<()> {
    let a = Tensor::fill(&[2, 3], 1.0)?;
    let b = Tensor::fill(&[4, 5], 1.0)?;
    match a.matmul(&b) {
        Err(e @ Error::ShapeMismatch(_)) => {
            write_output("recovered", e.to_string())?;
            Ok(())
        }
        Err(other) => Err(Error::msg(format_args!(
            "shape-mismatch: expected shape-mismatch, got: {other}"
        ))),
        Ok(_) => Err(Error::msg("shape-mismatch: [2,3]·[4,5] was accepted")),
    }
}

fn work_bomb() -> Result<()> {
    let size: u32 = param_or("size", 1024)?;
    let a = Tensor::fill(&[size, size], 0.5)?;
    let mut rounds: u64 = 0;
    loop {
        let c = a.matmul(&a)?;
        black_box(&c);
        rounds += 1;
        black_box(rounds);
    }
}

assay_guest::job!(run);
