//! `assay run` as a user runs it: separate processes, exit statuses, files.

use std::path::Path;
use std::process::{Command, Output};

use assay_guests::{Guest, matrix};

fn assay(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .env("ASSAY_HOME", home)
        .output()
        .expect("spawn assay")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn write_matrices(dir: &Path) -> (String, String) {
    let a: Vec<f32> = (0..12 * 20).map(|i| (i % 17) as f32 * 0.25 - 2.0).collect();
    let b: Vec<f32> = (0..20 * 9).map(|i| (i % 5) as f32 * 0.5 - 1.0).collect();
    let pa = dir.join("a.bin");
    let pb = dir.join("b.bin");
    std::fs::write(&pa, matrix::encode(12, 20, &a).expect("a")).expect("write a");
    std::fs::write(&pb, matrix::encode(20, 9, &b).expect("b")).expect("write b");
    (format!("a={}", pa.display()), format!("b={}", pb.display()))
}

#[test]
fn run_writes_outputs_and_a_receipt_and_two_processes_agree() {
    let home = tempfile::tempdir().expect("home");
    let work = tempfile::tempdir().expect("work");
    let (a, b) = write_matrices(work.path());
    let wasm = Guest::Matmul
        .path()
        .to_str()
        .expect("utf-8 path")
        .to_string();
    let out1 = work.path().join("out1");
    let out2 = work.path().join("out2");
    let first = assay(
        home.path(),
        &[
            "run",
            &wasm,
            "--input",
            &a,
            "--input",
            &b,
            "--out",
            out1.to_str().expect("p"),
            "--json",
        ],
    );
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = assay(
        home.path(),
        &[
            "run",
            &wasm,
            "-i",
            &a,
            "-i",
            &b,
            "-o",
            out2.to_str().expect("p"),
            "--json",
        ],
    );
    assert_eq!(second.status.code(), Some(0));
    let (j1, j2) = (json(&first), json(&second));
    for key in [
        "outcome",
        "outputs_root",
        "fuel_used",
        "work",
        "outputs",
        "error",
        "receipt",
        "elapsed_ms",
    ] {
        assert!(j1.get(key).is_some(), "--json lacks {key}: {j1}");
    }
    assert_eq!(j1["outcome"], "success");
    assert_eq!(j1["outputs_root"], j2["outputs_root"]);
    assert_eq!(j1["fuel_used"], j2["fuel_used"]);
    assert_eq!(j1["work"], j2["work"]);
    assert_eq!(j1["work"]["flops"], 2 * 12 * 20 * 9);
    let c1 = std::fs::read(out1.join("c")).expect("output c");
    assert_eq!(c1, std::fs::read(out2.join("c")).expect("output c"));
    assert_eq!(j1["outputs"]["c"]["len"], c1.len());

    // The receipt verifies; a flipped digit does not.
    let receipt = out1.join(".assay/receipt.json");
    let ok = assay(home.path(), &["verify", receipt.to_str().expect("p")]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let text = std::fs::read_to_string(&receipt).expect("receipt");
    let fuel = j1["fuel_used"].to_string();
    let tampered = text.replacen(
        &format!("\"fuel_used\": {fuel}"),
        &format!("\"fuel_used\": {}", fuel.parse::<u64>().expect("n") + 1),
        1,
    );
    assert_ne!(tampered, text, "the test must change the receipt");
    std::fs::write(&receipt, tampered).expect("write");
    let bad = assay(home.path(), &["verify", receipt.to_str().expect("p")]);
    assert_eq!(bad.status.code(), Some(3));
}

#[test]
fn a_failing_job_exits_3_and_still_writes_its_result() {
    let home = tempfile::tempdir().expect("home");
    let work = tempfile::tempdir().expect("work");
    let out = work.path().join("out");
    let wasm = Guest::Hostile.path().to_str().expect("p").to_string();
    let r = assay(
        home.path(),
        &[
            "run",
            &wasm,
            "--param",
            "mode=guest-error",
            "--out",
            out.to_str().expect("p"),
            "--json",
        ],
    );
    assert_eq!(
        r.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let j = json(&r);
    assert_eq!(j["outcome"], "guest-error");
    assert!(
        j["error"]
            .as_str()
            .expect("error text")
            .contains("on purpose")
    );
    // The `error` output is the frozen record (hashed); the message rides beside it.
    let written = std::fs::read_to_string(out.join("error")).expect("error output written");
    assert_eq!(written, r#"{"kind":"guest-error","version":1}"#);
    assert_eq!(j["failure"], written.as_str());
    let message = std::fs::read_to_string(out.join(".assay/error.txt")).expect("error.txt");
    assert!(message.contains("on purpose"), "{message}");
}

#[test]
fn unusable_input_exits_2_with_a_message() {
    let home = tempfile::tempdir().expect("home");
    let work = tempfile::tempdir().expect("work");
    let missing = assay(home.path(), &["run", "/nonexistent/job.wasm"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("reading component"));

    let core = work.path().join("core.wasm");
    std::fs::write(&core, wat::parse_str("(module)").expect("wat")).expect("write");
    let r = assay(home.path(), &["run", core.to_str().expect("p")]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("wasm32-wasip2"));

    let wrong = assay(
        home.path(),
        &["run", Guest::WasiCommand.path().to_str().expect("p")],
    );
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("assay:gpu/job"));

    let wasm = Guest::Matmul.path().to_str().expect("p").to_string();
    let bad_input = assay(
        home.path(),
        &["run", &wasm, "--input", "a=/nonexistent/a.bin"],
    );
    assert_eq!(bad_input.status.code(), Some(2));
    let bad_flag = assay(home.path(), &["run", &wasm, "--shard", "4/2"]);
    assert_eq!(bad_flag.status.code(), Some(2));
}

#[test]
fn a_watchdog_fault_exits_1() {
    let home = tempfile::tempdir().expect("home");
    let wasm = Guest::Hostile.path().to_str().expect("p").to_string();
    let r = assay(
        home.path(),
        &[
            "run",
            &wasm,
            "--param",
            "mode=infinite-loop",
            "--fuel",
            "18446744073709551615",
            "--timeout-ms",
            "300",
        ],
    );
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(String::from_utf8_lossy(&r.stderr).contains("watchdog"));
}

#[test]
fn the_node_key_is_created_once_with_private_permissions() {
    let home = tempfile::tempdir().expect("home");
    let wasm = Guest::Hostile.path().to_str().expect("p").to_string();
    let a = json(&assay(
        home.path(),
        &["run", &wasm, "--param", "mode=ok", "--json"],
    ));
    let b = json(&assay(
        home.path(),
        &["run", &wasm, "--param", "mode=ok", "--json"],
    ));
    assert_eq!(a["receipt"]["provider_id"], b["receipt"]["provider_id"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.path().join("node.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
