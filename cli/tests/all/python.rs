//! The Python SDK (`python/`, package `assay_client`) against a real
//! devnet: runs its pytest suite with `ASSAY_BIN` set to this build's
//! `assay`. Without python3, pytest or grpcio it prints SKIPPED and passes,
//! unless `ASSAY_REQUIRE_PYTHON=1` (CI, which installs them with
//! `python3 -m pip install ./python pytest grpcio-tools`).

use std::path::PathBuf;
use std::process::Command;

use crate::common::BIN;

fn required() -> bool {
    std::env::var("ASSAY_REQUIRE_PYTHON").as_deref() == Ok("1")
}

/// Why the suite cannot run here, if it cannot.
fn missing() -> Option<String> {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import pytest, grpc, google.protobuf, cryptography, blake3",
        ])
        .output();
    match probe {
        Err(e) => Some(format!("python3 cannot be run ({e})")),
        Ok(out) if !out.status.success() => Some(format!(
            "python3 lacks the SDK's packages ({}); install them with \
             `python3 -m pip install ./python pytest`",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Ok(_) => None,
    }
}

#[test]
fn python_sdk_suite_passes_against_a_devnet() {
    if let Some(why) = missing() {
        assert!(!required(), "ASSAY_REQUIRE_PYTHON=1 but {why}");
        eprintln!("SKIPPED: the Python SDK tests: {why}");
        return;
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = repo.join("python");
    // Importable whether or not it was pip-installed: the tests prefer an
    // installed package and fall back to this checkout.
    let path = match std::env::var_os("PYTHONPATH") {
        Some(p) if !p.is_empty() => {
            let mut v = python.clone().into_os_string();
            v.push(":");
            v.push(p);
            v
        }
        _ => python.clone().into_os_string(),
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let status = Command::new("python3")
        .args(["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"])
        .arg(python.join("tests"))
        .current_dir(&repo)
        .env("ASSAY_BIN", BIN)
        .env("PYTHONPATH", path)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("ASSAY_HOME", tmp.path().join("home"))
        .status()
        .expect("run pytest");
    assert!(status.success(), "the Python SDK's tests failed: {status}");
}
