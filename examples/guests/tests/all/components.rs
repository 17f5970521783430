//! Every built guest is a valid component of the right world.

use assay_guests::{Guest, matrix};
use wasmparser::{Parser, Payload, Validator, WasmFeatures};

/// The top-level import and export names of a component.
fn top_level_names(bytes: &[u8]) -> (Vec<String>, Vec<String>, bool) {
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut is_component = false;
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("the guest parses") {
            Payload::Version { encoding, .. } => {
                depth += 1;
                if depth == 1 {
                    is_component = matches!(encoding, wasmparser::Encoding::Component);
                }
            }
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(s) if depth == 1 => {
                for import in s {
                    imports.push(import.expect("import").name.name.to_string());
                }
            }
            Payload::ComponentExportSection(s) if depth == 1 => {
                for export in s {
                    exports.push(export.expect("export").name.name.to_string());
                }
            }
            _ => {}
        }
    }
    (imports, exports, is_component)
}

#[test]
fn guests_are_valid_components_of_their_world() {
    for guest in Guest::ALL {
        let bytes = guest.bytes();
        assert_eq!(
            bytes,
            std::fs::read(guest.path())
                .expect("the built guest is on disk")
                .as_slice(),
            "{guest}: embedded bytes differ from the file"
        );
        Validator::new_with_features(WasmFeatures::all())
            .validate_all(bytes)
            .unwrap_or_else(|e| panic!("{guest} does not validate: {e}"));
        let (imports, exports, is_component) = top_level_names(bytes);
        assert!(is_component, "{guest} is a core module, not a component");
        let imports_gpu = imports.iter().any(|i| i == "assay:gpu/tensor@0.1.0");
        let imports_io = imports.iter().any(|i| i == "assay:gpu/job-io@0.1.0");
        if guest.is_job() {
            assert!(imports_gpu && imports_io, "{guest} imports {imports:?}");
            assert_eq!(
                exports,
                vec!["run".to_string()],
                "{guest} exports {exports:?}"
            );
        } else {
            assert!(!imports_gpu && !imports_io, "{guest} imports {imports:?}");
            assert!(
                exports.iter().any(|e| e.starts_with("wasi:cli/run@0.2")),
                "{guest} exports {exports:?}"
            );
            assert!(
                !exports.iter().any(|e| e == "run"),
                "{guest} exports {exports:?}"
            );
        }
        // Nothing outside WASI and assay:gpu.
        for import in &imports {
            assert!(
                import.starts_with("wasi:") || import.starts_with("assay:gpu/"),
                "{guest} imports {import}"
            );
        }
    }
}

#[test]
fn names_round_trip() {
    for guest in Guest::ALL {
        assert_eq!(Guest::from_name(guest.name()), Some(guest));
        assert!(guest.path().starts_with(assay_guests::dir()));
    }
    assert_eq!(Guest::from_name("nope"), None);
}

#[test]
fn matrix_format_round_trips() {
    let bytes = matrix::encode(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).expect("sizes match");
    assert_eq!(bytes.len(), 8 + 24);
    assert_eq!(&bytes[..8], &[2, 0, 0, 0, 3, 0, 0, 0]);
    assert_eq!(
        matrix::decode(&bytes),
        Some((2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    );
    assert_eq!(matrix::decode(&bytes[..31]), None);
    assert_eq!(matrix::encode(2, 2, &[1.0]), None);
    let c = matrix::reference_matmul(2, 2, &[1.0, 2.0, 3.0, 4.0], 2, 1, &[1.0, 1.0]);
    assert_eq!(c, Some(vec![3.0, 7.0]));
}

#[test]
fn half_precision_encodings() {
    use assay_guests::safetensors::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
    for (x, h) in [
        (0.0f32, 0x0000u16),
        (-0.0, 0x8000),
        (1.0, 0x3c00),
        (-2.0, 0xc000),
        (0.5, 0x3800),
        (65504.0, 0x7bff),
        (65520.0, 0x7c00), // rounds up to infinity
        (f32::INFINITY, 0x7c00),
        (6.103_515_6e-5, 0x0400), // smallest normal
        (5.960_464_5e-8, 0x0001), // smallest subnormal
        (2.980_232_2e-8, 0x0000), // half of it: ties to even → 0
        (1.000_488_3, 0x3c00),    // 1 + 2^-11: tie → even (1.0)
        (1.001_464_8, 0x3c02),    // 1 + 3·2^-11: tie → even (up)
    ] {
        assert_eq!(f32_to_f16(x), h, "f16 of {x:e}");
    }
    assert!(f16_to_f32(f32_to_f16(f32::NAN)).is_nan());
    for h in [
        0x0000u16, 0x0001, 0x03ff, 0x0400, 0x3c00, 0x3c01, 0x7bff, 0xc000, 0x8001,
    ] {
        assert_eq!(f32_to_f16(f16_to_f32(h)), h, "round trip {h:#06x}");
    }
    assert_eq!(f32_to_bf16(1.0), 0x3f80);
    assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80); // tie → even
    assert_eq!(f32_to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82); // tie → even (up)
    assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8001)), 0x3f81);
    assert_eq!(bf16_to_f32(0xc040), -3.0);
    assert!(bf16_to_f32(f32_to_bf16(f32::NAN)).is_nan());
}

#[test]
fn safetensors_writer_and_sdk_reader_agree() {
    use assay_guest::safetensors::DataType;
    use assay_guests::safetensors::{Entry, bf16_le, encode, f16_le, f32_le};
    let w = f32_le(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = bf16_le(&[0.5, -0.5]);
    let g = f16_le(&[1.0, 2.0, 3.0]);
    let file = encode(
        &[
            Entry {
                name: "w",
                dtype: "F32",
                shape: &[2, 3],
                data: &w,
            },
            Entry {
                name: "b",
                dtype: "BF16",
                shape: &[2],
                data: &b,
            },
            Entry {
                name: "a \"quoted\" name",
                dtype: "F16",
                shape: &[3],
                data: &g,
            },
        ],
        &[("format", "pt")],
    );
    let n = u64::from_le_bytes(file[..8].try_into().expect("8 bytes"));
    assert_eq!(n % 8, 0, "header padded to 8 bytes");
    let header = &file[8..8 + n as usize];
    let st =
        assay_guest::SafeTensors::parse_header("model", header, file.len() as u64).expect("parses");
    assert_eq!(st.len(), 3);
    assert_eq!(st.metadata().get("format").map(String::as_str), Some("pt"));
    let wi = st.info("w").expect("w");
    assert_eq!(
        (wi.dtype.clone(), wi.shape.clone()),
        (DataType::F32, vec![2, 3])
    );
    let at = wi.offset_in_input as usize;
    assert_eq!(&file[at..at + 24], w.as_slice());
    let bi = st.info("b").expect("b");
    let at = bi.offset_in_input as usize;
    assert_eq!(&file[at..at + 4], b.as_slice());
    assert_eq!(
        st.info("a \"quoted\" name").expect("quoted").dtype,
        DataType::F16
    );
}
