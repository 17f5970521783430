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
