//! GGUF end to end (#18's model format): the `gguf-inspect` guest reads a
//! GGUF file's header in the sandbox and loads its tensors through the
//! host, GGML's Q4_0, Q4_1 and Q8_0 blocks decoded as `host-gpu/SEMANTICS.md`
//! defines. Checked against values worked out by that definition on a
//! small file written here, and against the `gguf` Python package (the
//! reader and dequantiser llama.cpp ships) on the SmolLM2-135M-Instruct
//! file when `ASSAY_SMOLLM2_GGUF` names it (skipped visibly otherwise; a
//! failure with `ASSAY_REQUIRE_SMOLLM2=1`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use assay_host_gpu::Device;
use assay_protocol::{JobSpec, NodeKey};
use assay_runtime::{Inputs, RunReport, Runtime, RuntimeOptions};
use serde_json::Value;

use crate::common::assert_succeeded;

fn runtime(threads: usize) -> Runtime {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gguf-component-cache");
    Runtime::new(RuntimeOptions {
        cache_dir: Some(cache),
        device: Device::cpu_with_threads(threads),
        key: NodeKey::generate().expect("node key"),
    })
    .expect("runtime")
}

fn inspect(rt: &Runtime, model: Arc<[u8]>, tensors: &str) -> RunReport {
    let component = rt
        .load(assay_guests::GGUF_INSPECT_WASM)
        .expect("the guest loads");
    let mut inputs = Inputs::new();
    inputs.insert("model".into(), model);
    let mut spec = JobSpec {
        output_bytes: 512 << 20,
        ..JobSpec::default()
    };
    spec.params.insert("tensors".into(), tensors.into());
    rt.run(&component, Arc::new(inputs), &spec)
        .expect("a deterministic result")
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A GGUF v3 file: `general.architecture`, then `tensors` (name, GGML
/// dimensions innermost first, type id, data), data aligned to 32.
fn gguf_file(tensors: &[(&str, &[u64], u32, Vec<u8>)]) -> Vec<u8> {
    let string = |out: &mut Vec<u8>, s: &str| {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    };
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend(1u64.to_le_bytes());
    string(&mut out, "general.architecture");
    out.extend(8u32.to_le_bytes());
    string(&mut out, "test");
    let mut offset = 0u64;
    for (name, ne, ty, data) in tensors {
        string(&mut out, name);
        out.extend((ne.len() as u32).to_le_bytes());
        for d in *ne {
            out.extend(d.to_le_bytes());
        }
        out.extend(ty.to_le_bytes());
        out.extend(offset.to_le_bytes());
        offset += (data.len() as u64).div_ceil(32) * 32;
    }
    out.resize(out.len().div_ceil(32) * 32, 0);
    for (_, _, _, data) in tensors {
        out.extend(data);
        out.resize(out.len().div_ceil(32) * 32, 0);
    }
    out
}

#[test]
fn quantised_tensors_load_as_the_semantics_define_them() {
    // Q4_1, 2 rows of 64: block k has d = 0.5 (f16 0x3800), m = k − 2, and
    // byte j holds j (low nibble) and 15 − j (high): value j = 0.5·j + m,
    // value j + 16 = 0.5·(15 − j) + m.
    let mut q41 = Vec::new();
    for k in 0..4u16 {
        let m: [u8; 2] = match k {
            0 => 0xc000u16, // -2
            1 => 0xbc00,    // -1
            2 => 0x0000,    // 0
            _ => 0x3c00,    // 1
        }
        .to_le_bytes();
        q41.extend([0x00, 0x38, m[0], m[1]]);
        q41.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    }
    // Q4_0, 1 row of 32: d = 2, every byte 0x8f → 2·(15 − 8) and 2·(8 − 8).
    let mut q40 = vec![0x00, 0x40];
    q40.extend([0x8f; 16]);
    // Q8_0, 1 row of 32: d = 0.25, q = j − 16.
    let mut q80 = vec![0x00, 0x34];
    q80.extend((0..32i32).map(|j| (j - 16) as i8 as u8));
    let norm: Vec<u8> = [1.5f32, -0.0, 3.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let file: Arc<[u8]> = gguf_file(&[
        ("q41", &[64, 2], 3, q41),
        ("q40", &[32], 2, q40),
        ("q80", &[32, 1], 8, q80),
        ("norm", &[3], 0, norm),
    ])
    .into();

    let rt = runtime(2);
    let report = inspect(&rt, file.clone(), "q41, q40,q80,norm");
    assert_succeeded(&report);
    let header: Value =
        serde_json::from_slice(&report.outputs["header.json"]).expect("header.json");
    assert_eq!(header["version"], 3);
    assert_eq!(header["metadata"]["general.architecture"], "test");
    let shapes: Vec<(String, String, Value)> = header["tensors"]
        .as_array()
        .expect("tensors")
        .iter()
        .map(|t| {
            (
                t["name"].to_string(),
                t["type"].to_string(),
                t["shape"].clone(),
            )
        })
        .collect();
    assert_eq!(shapes[0].1, "\"Q4_1\"");
    assert_eq!(shapes[0].2, serde_json::json!([2, 64]), "outermost first");

    let q41 = floats(&report.outputs["q41.f32"]);
    assert_eq!(q41.len(), 128);
    for (k, block) in q41.chunks_exact(32).enumerate() {
        let m = k as f32 - 2.0;
        for j in 0..16 {
            assert_eq!(block[j], 0.5 * j as f32 + m, "block {k} value {j}");
            assert_eq!(
                block[j + 16],
                0.5 * (15 - j) as f32 + m,
                "block {k} value {}",
                j + 16
            );
        }
    }
    let q40 = floats(&report.outputs["q40.f32"]);
    assert_eq!((q40[0], q40[16]), (14.0, 0.0));
    let q80 = floats(&report.outputs["q80.f32"]);
    assert_eq!(
        q80,
        (0..32).map(|j| 0.25 * (j - 16) as f32).collect::<Vec<_>>()
    );
    assert_eq!(floats(&report.outputs["norm.f32"]), [1.5, -0.0, 3.0]);

    // The same bits and receipt body on one thread.
    let again = inspect(&runtime(1), file.clone(), "q41, q40,q80,norm");
    assert_eq!(
        again.receipt.body.deterministic_part(),
        report.receipt.body.deterministic_part()
    );

    // Rows that are not whole blocks are the guest's error, not a crash.
    let bad: Arc<[u8]> = gguf_file(&[("odd", &[48], 3, vec![0; 40])]).into();
    let report = inspect(&rt, bad, "odd");
    assert!(!report.outcome.is_success());
    let error = report.error.as_deref().unwrap_or("");
    assert!(error.contains("whole Q4_1 blocks"), "{error}");
}

#[test]
fn smollm2_tensors_load_as_llama_cpps_gguf_package_dequantises_them() {
    const TEST: &str = "smollm2_tensors_load_as_llama_cpps_gguf_package_dequantises_them";
    let required = std::env::var("ASSAY_REQUIRE_SMOLLM2").as_deref() == Ok("1");
    let Some(path) = std::env::var_os("ASSAY_SMOLLM2_GGUF") else {
        assert!(
            !required,
            "ASSAY_REQUIRE_SMOLLM2=1 but ASSAY_SMOLLM2_GGUF names no file"
        );
        println!("SKIPPED {TEST}: set ASSAY_SMOLLM2_GGUF to SmolLM2-135M-Instruct.Q4_1.gguf");
        return;
    };
    let has_gguf = Command::new("python3")
        .args(["-c", "import gguf, numpy"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_gguf {
        assert!(
            !required,
            "ASSAY_REQUIRE_SMOLLM2=1 but python3 cannot import gguf (pip install gguf)"
        );
        println!("SKIPPED {TEST}: python3 cannot import gguf (pip install gguf)");
        return;
    }
    // One tensor of each type the model has: Q4_1, Q8_0 (the embedding), F32.
    let names = [
        "blk.0.attn_k.weight",
        "token_embd.weight",
        "output_norm.weight",
    ];
    let dir = tempfile::tempdir().expect("tmp");
    let script = r#"
import sys, gguf
from gguf.quants import dequantize
path, out, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
reader = gguf.GGUFReader(path)
by_name = {t.name: t for t in reader.tensors}
for name in names:
    t = by_name[name]
    values = dequantize(t.data, t.tensor_type).astype("<f4")
    values.tofile(f"{out}/{name}.f32")
"#;
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .arg(dir.path())
        .arg(names.join(","))
        .status()
        .expect("python3");
    assert!(status.success(), "the gguf package's dequantisation failed");

    let file: Arc<[u8]> = std::fs::read(&path).expect("the GGUF file").into();
    let report = inspect(&runtime(2), file, &names.join(","));
    assert_succeeded(&report);
    for name in names {
        let ours = &report.outputs[&format!("{name}.f32")];
        let theirs = std::fs::read(dir.path().join(format!("{name}.f32"))).expect("theirs");
        assert_eq!(ours.len(), theirs.len(), "{name}");
        let differ = floats(ours)
            .iter()
            .zip(floats(&theirs))
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(
            differ, 0,
            "{name}: {differ} values differ from the gguf package's"
        );
    }
}
