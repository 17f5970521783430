//! `mlp`: a two-layer MLP classifier with its weights in a safetensors input:
//! the SDK's crate-level example as a real job.
//!
//! `probs = softmax(gelu(x · fc1.weightᵀ + fc1.bias) · fc2.weightᵀ + fc2.bias)`
//!
//! - Inputs:
//!   - `model`: safetensors with `fc1.weight [h, d]`, `fc1.bias [h]`,
//!     `fc2.weight [c, h]`, `fc2.bias [c]` (PyTorch `Linear` layout), each
//!     F32, F16 or BF16. Only the header passes through guest memory.
//!   - `x`: the batch, raw f32 little-endian, `d` values per row (no header).
//! - Params: none.
//! - Sharding: shard `i` of `n` takes its contiguous part of the rows
//!   (`Shard::split`) and loads only those bytes of `x`.
//! - Outputs:
//!   - `probs`: `[rows, c]` f32 little-endian (this shard's rows).
//!   - `classes.txt`: the argmax of each row, one per line.

#![forbid(unsafe_code)]

use assay_guest::prelude::*;

fn run() -> Result<()> {
    let model = SafeTensors::open("model")?;
    let w1 = model.load("fc1.weight")?;
    let b1 = model.load("fc1.bias")?;
    let w2 = model.load("fc2.weight")?;
    let b2 = model.load("fc2.bias")?;
    let d = match model.info("fc1.weight")?.shape.as_slice() {
        [_, d] => *d,
        other => {
            return Err(Error::Format(format!(
                "fc1.weight has shape {other:?}; expected [hidden, inputs]"
            )));
        }
    };

    let row_bytes = d * 4;
    let size = input_size("x")?;
    if row_bytes == 0 || size % row_bytes != 0 {
        return Err(Error::Format(format!(
            "input `x` is {size} bytes, not a whole number of {d}-value f32 rows"
        )));
    }
    let rows = usize::try_from(size / row_bytes).map_err(|_| {
        Error::InvalidArgument(format!(
            "input `x` has too many rows ({})",
            size / row_bytes
        ))
    })?;
    let mine = shard().split(rows);
    let x = Tensor::from_input(
        "x",
        mine.start as u64 * row_bytes,
        Encoding::F32,
        &[mine.len() as u64, d],
    )?;

    let h = x.matmul_t(&w1, false, true)?.add(&b1)?.gelu()?;
    let probs = h.matmul_t(&w2, false, true)?.add(&b2)?.softmax()?;
    write_tensor_output("probs", &probs)?;

    let classes = probs.argmax()?.to_vec_i32()?;
    let text: String = classes.iter().map(|c| format!("{c}\n")).collect();
    write_output("classes.txt", text)?;
    log!("mlp: rows {:?} of {rows}, {d} inputs", mine);
    Ok(())
}

assay_guest::job!(run);
