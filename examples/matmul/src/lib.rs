//! `matmul`: `c = a · b` for two f32 matrices given as inputs.
//!
//! # The matrix file format
//! ```text
//! offset  size            field
//! 0       4               rows  (u32, little-endian)
//! 4       4               cols  (u32, little-endian)
//! 8       rows·cols·4     the elements, f32 little-endian, row-major
//! ```
//! A file is exactly `8 + rows·cols·4` bytes. `assay_guests::matrix` (the
//! host-side crate that builds the guests) encodes and decodes it.
//!
//! - Inputs: `a` (`m × k`) and `b` (`k × n`), both in the format above.
//! - Params: none.
//! - Outputs: `c` (`m × n`), in the same format.
//!
//! The data of `a` and `b` goes from the inputs to the device with
//! `tensor-from-input` (only the 8-byte headers pass through guest memory);
//! the product is read back to prepend its header.
//!
//! Errors (the job's error output): a missing input, a file whose size does
//! not match its header, or inner dimensions that differ (the host's
//! `shape-mismatch`).

#![forbid(unsafe_code)]

use assay_guest::prelude::*;

/// Loads a matrix input onto the device; returns it with its dimensions.
fn load_matrix(name: &str) -> Result<(u32, u32, Tensor)> {
    let size = input_size(name)?;
    let header = read_input_range(name, 0, 8)?;
    let (Some(rows), Some(cols)) = (le_u32(&header, 0), le_u32(&header, 4)) else {
        return Err(Error::Format(format!(
            "input `{name}` is {size} bytes: too short for the 8-byte matrix header"
        )));
    };
    let want = 8 + u64::from(rows) * u64::from(cols) * 4;
    if size != want {
        return Err(Error::Format(format!(
            "input `{name}`: the header says {rows}×{cols} ({want} bytes with the header) but the input is {size} bytes"
        )));
    }
    let t = Tensor::from_input(name, 8, Encoding::F32, &[rows, cols])
        .context(format_args!("loading `{name}`"))?;
    Ok((rows, cols, t))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

fn run() -> Result<()> {
    let (m, k, a) = load_matrix("a")?;
    let (k2, n, b) = load_matrix("b")?;
    let c = a
        .matmul(&b)
        .context(format_args!("a is {m}×{k}, b is {k2}×{n}"))?;
    let data = c.to_vec_f32()?;
    let mut out = Vec::with_capacity(8 + data.len() * 4);
    out.extend_from_slice(&m.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    for v in &data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    write_output("c", &out)?;
    log!("matmul: {m}×{k} · {k2}×{n} → c");
    Ok(())
}

assay_guest::job!(run);
