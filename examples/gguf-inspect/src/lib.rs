//! `gguf-inspect`: what a GGUF model file holds, and any of its tensors as
//! the device sees them.
//!
//! - Inputs: `model`, a GGUF file (read with [`assay_guest::Gguf`]: only the
//!   header passes through guest memory).
//! - Params: `tensors` (optional): tensor names separated by commas.
//! - Outputs: `header.json` — the version, every metadata entry but arrays
//!   (an array appears as its length, e.g. a tokenizer's vocabulary) and
//!   every tensor's type, shape, offset and size, in the file's order; and
//!   for each tensor asked for, `<name>.f32`: its values as the device
//!   holds them (little-endian f32; Q4_0, Q4_1 and Q8_0 blocks decoded by
//!   the host as its SEMANTICS.md defines).
//!
//! Errors: a missing `model`, a file that is not GGUF (the reader says what
//! is wrong and where), an unknown tensor name, a type the host cannot load.

#![forbid(unsafe_code)]

use assay_guest::gguf::Value as Meta;
use assay_guest::prelude::*;
use assay_guest::{Gguf, write_tensor_output};
use serde_json::{Value, json};

/// A metadata value as JSON; an array as its element count.
fn meta_json(v: &Meta) -> Value {
    match v {
        Meta::U8(x) => json!(x),
        Meta::I8(x) => json!(x),
        Meta::U16(x) => json!(x),
        Meta::I16(x) => json!(x),
        Meta::U32(x) => json!(x),
        Meta::I32(x) => json!(x),
        Meta::F32(x) => json!(x),
        Meta::Bool(x) => json!(x),
        Meta::String(x) => json!(x),
        Meta::Array(a) => json!({ "array_of": a.len() }),
        Meta::U64(x) => json!(x),
        Meta::I64(x) => json!(x),
        Meta::F64(x) => json!(x),
        _ => Value::Null,
    }
}

fn run() -> Result<()> {
    let model = Gguf::open("model")?;
    let metadata: serde_json::Map<String, Value> = model
        .metadata()
        .iter()
        .map(|(k, v)| (k.clone(), meta_json(v)))
        .collect();
    let tensors: Vec<Value> = model
        .iter()
        .map(|(name, t)| {
            json!({
                "name": name,
                "type": t.ggml_type.to_string(),
                "shape": t.shape,
                "offset": t.offset_in_input,
                "bytes": t.byte_len,
            })
        })
        .collect();
    let header = json!({
        "version": model.version(),
        "alignment": model.alignment(),
        "metadata": metadata,
        "tensors": tensors,
    });
    write_output("header.json", header.to_string())?;
    let wanted: String = param_or("tensors", String::new())?;
    for name in wanted.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let t = model.load(name)?;
        write_tensor_output(&format!("{name}.f32"), &t)?;
        log!("gguf-inspect: {name}: {:?}", t.shape());
    }
    Ok(())
}

assay_guest::job!(run);
